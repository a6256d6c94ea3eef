"""Every command the README's CLI section shows exists, takes the options shown, and runs (at a small size):
the README named --conf, --iou and a restore that the CLI did not have."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest

from engine.__main__ import build_parser
from tests import postgres_server
from tests.conftest import ROOT, TEST_IMGSZ, default_model_file, engine

SMALL_RUNTIMES = ("onnxruntime", "openvino")  # the README's runtimes, cut to two quick ones


def readme_commands() -> list[list[str]]:
    """The CLI block's commands as token lists: continuation lines joined, comments and brackets dropped, the
    first of alternatives (parquet|csv) taken."""
    block = re.search(r"## CLI\n\n```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    commands, current = [], ""
    for line in block.splitlines():
        code = line.split("#", 1)[0].rstrip()
        if code.startswith("python -m engine"):
            current = code
        elif current and code.strip():
            current += " " + code.strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1]
            continue
        tokens = [token.strip("[]").split("|")[0] for token in shlex.split(current)[3:]]
        commands.append([token for token in tokens if token])
        current = ""
    return commands


def test_the_readme_shows_every_command():
    shown = {tokens[0] for tokens in readme_commands()}
    commands = build_parser()._subparsers._group_actions[0].choices
    assert shown == set(commands) - {"job", "peak"}, "job is internal; peak is in docs/cli.md"


@pytest.mark.parametrize("tokens", readme_commands(), ids=lambda tokens: " ".join(tokens)[:60])
def test_each_readme_option_exists(tokens):
    subparser = build_parser()._subparsers._group_actions[0].choices[tokens[0]]
    known = {option for action in subparser._actions for option in action.option_strings}
    assert {token for token in tokens if token.startswith("--")} <= known, tokens


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    server = postgres_server.start()
    server.create_database("lake_readme")
    yield server.address("lake_readme", tmp_path_factory.mktemp("lake-data"))
    server.stop()


def small(tokens: list[str], images) -> list[str]:
    """A `run` at test size: two quick runtimes, a small input, two iterations, the default model's file."""
    out, skip = [], False
    for index, token in enumerate(tokens):
        if skip:
            skip = False
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token == "--runtimes":
            chosen = [name for name in following.split(",") if name in SMALL_RUNTIMES] or ["onnxruntime"]
            out += [token, ",".join(chosen)]
            skip = True
        elif token == "--iters":
            out += [token, "2"]
            skip = True
        elif token == "--images":
            out += [token, str(images)]
            skip = True
        else:
            out.append(token)
    return out + ["--imgsz", str(TEST_IMGSZ), "--warmup", "1", "--model", default_model_file()]


def test_every_readme_command_runs(tmp_path, lake, sample_images):
    """In the README's order, placeholders filled in: RUN_ID the run just made, files in a temporary folder, the
    database from YOLO_BENCH_DB where a line names none (and a fresh cache for `cache --prune`)."""
    db = tmp_path / "results.duckdb"
    images = tmp_path / "my_photos"
    images.mkdir()
    shutil.copy(sample_images[0], images)
    env = {"YOLO_BENCH_DB": str(db)}
    run_ids: list[str] = []
    for tokens in readme_commands():
        command = tokens[0]
        if command == "run":
            tokens = small(tokens, images)
        ids = (run_ids or ["none"])[-2:]
        filled = {"RUN_ID": ids[-1], "RUN_B": ids[-1], "RUN_A": ids[0], "DIR": str(tmp_path / "exported"),
                  "run.zip": str(tmp_path / "run.zip"), "results.duckdb": str(db),
                  "lab1.zip": str(tmp_path / "run.zip"), "lab2.zip": str(tmp_path / "run.zip"),
                  "ducklake+postgres://...": lake}  # fmt: skip
        tokens = [filled.get(token, token) for token in tokens]
        cache_env = {"YOLO_BENCH_CACHE": str(tmp_path / "cache")} if command == "cache" else {}
        if command == "compact":
            assert engine("import", str(tmp_path / "run.zip"), "--db", lake).returncode == 0
        done = engine(*tokens, env={**env, **cache_env})
        if command == "compare" and "--fail-above" in tokens and done.returncode == 1:
            # the gate doing its job: two tiny runs of the same configuration can differ by more than 10%
            assert json.loads(done.stdout)["slower"], (tokens, done.stdout[-2000:], done.stderr[-2000:])
            continue
        assert done.returncode == 0, (tokens, done.stdout[-2000:], done.stderr[-2000:])
        if command == "run":
            run_ids.append(json.loads(engine("runs", "--json", env=env).stdout)[0]["run_id"])
    assert len(run_ids) == 4 and (tmp_path / "exported").is_dir()
