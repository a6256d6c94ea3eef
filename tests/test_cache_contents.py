"""`python -m engine cache`: what the cache holds, and pruning what no run can use again without touching what a
run still reads."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

import duckdb

from tests.conftest import ROOT, engine, engine_run

DAY_S = 86400


def kinds(listing: subprocess.CompletedProcess) -> dict:
    assert listing.returncode == 0, listing.stderr
    return {row["kind"]: row for row in json.loads(listing.stdout)["kinds"]}


def new_cache_that_knows_this_machine(cache):
    """A new cache with the lasting one's measured peaks and kept model records: its first run then skips the peak
    measurement and the model's worker (9 and 3 s here), which are not what these tests are about."""
    for kept in ("peak", "models/resolved"):
        if (ROOT / ".cache" / kept).is_dir():
            shutil.copytree(ROOT / ".cache" / kept, cache / kept)
    return cache


def test_prune_removes_what_an_upgrade_and_stopped_runs_left_and_the_next_run_still_finds_the_rest(tmp_path):
    cache, db = new_cache_that_knows_this_machine(tmp_path / "cache"), tmp_path / "results.duckdb"
    env = {"YOLO_BENCH_CACHE": str(cache), "YOLO_BENCH_LOCK": str(tmp_path / "lock")}
    first = engine_run(db, "--runtimes", "onnxruntime", "--iters", "2", env=env)
    assert first.returncode == 0, first.stderr
    (export,) = (cache / "exports").iterdir()
    (reference,) = (cache / "reference").iterdir()
    assert json.loads((reference / "key.json").read_text())["versions"]["onnxruntime"], "what its key was made of"
    assert kinds(engine("cache", "--json", env=env))["exports"]["removable"] == 0

    # What an upgrade leaves: the same export and reference, made under other library versions.
    shutil.copytree(export, cache / "exports" / ("0" * 24))
    older = cache / "reference" / ("1" * 24)
    shutil.copytree(reference, older)
    material = json.loads((older / "key.json").read_text())
    (older / "key.json").write_text(json.dumps({**material, "versions": {**material["versions"], "torch": "1.0"}}))
    # What stopped runs leave, and a reference kept per run before references were kept by key.
    (cache / "exports" / ("2" * 24)).mkdir()
    shutil.copytree(reference, cache / "reference" / f"{reference.name}.partial-20261202-000000-abcdef")
    shutil.copytree(reference, cache / "reference" / "20261129-101010-abcdef")

    listed = kinds(engine("cache", "--json", env=env))
    assert (listed["exports"]["entries"], listed["exports"]["removable"]) == (3, 2)
    assert (listed["reference"]["entries"], listed["reference"]["removable"]) == (4, 3)
    assert "1 made by other library versions" in listed["exports"]["why"]
    assert "1 unfinished" in listed["exports"]["why"]
    assert listed["models"]["removable"] == listed["peak"]["removable"] == 0

    pruned = engine("cache", "--prune", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("removed 5 entries")
    assert [p.name for p in (cache / "exports").iterdir()] == [export.name]
    assert [p.name for p in (cache / "reference").iterdir()] == [reference.name]

    second = engine_run(db, "--runtimes", "onnxruntime", "--iters", "2", env=env)
    assert second.returncode == 0, second.stderr
    assert "kept from an earlier run" in second.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        cached = con.execute(
            "SELECT export_cached FROM results JOIN runs USING (run_id) ORDER BY runs.started_at DESC LIMIT 1"
        ).fetchone()[0]
    assert cached, "the export kept through the prune served the next run"


def test_unused_days_go_by_when_a_run_last_read_an_entry(tmp_path, monkeypatch):
    from engine import cache_contents, export
    from engine.models import file_sha256
    from engine.reference_cache import stored_detections

    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path))
    long_ago = time.time() - 40 * DAY_S
    keys = []
    for weights in (b"weights a", b"weights b"):
        (tmp_path / "model.pt").write_bytes(weights)
        request = {"format": "onnx", "imgsz": 160}
        key = export.export_key(file_sha256(tmp_path / "model.pt"), request)
        folder = export.export_folder(key)
        folder.mkdir(parents=True)
        shutil.move(tmp_path / "model.pt", folder / "model.pt")
        (folder / "model.onnx").write_bytes(b"onnx")
        (folder / "done.json").write_text(json.dumps({"output": "model.onnx", "request": request}))
        os.utime(folder / "done.json", (long_ago, long_ago))
        keys.append(key)
    reference = tmp_path / "reference" / ("3" * 24)
    reference.mkdir(parents=True)
    (reference / "detections.json").write_text("[[]]")
    for path in (
        reference / "detections.json",
        tmp_path / "peak" / "machine-2threads.json",
        tmp_path / "models" / "yolov8n.pt",
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        os.utime(path, (long_ago, long_ago))

    assert export.cached(keys[0]) is not None  # a run reads the first export and the reference
    assert stored_detections(reference) == [[]]
    entries = cache_contents.survey()
    assert not [entry for entry in entries if entry.stale]
    assert cache_contents.prune(entries) == [], "nothing is stale; without --unused-days nothing goes"
    removed = cache_contents.prune(cache_contents.survey(), unused_days=30)
    assert [entry.path for entry in removed] == [export.export_folder(keys[1])]
    assert (tmp_path / "models" / "yolov8n.pt").exists() and (tmp_path / "peak" / "machine-2threads.json").exists()


def test_pruning_waits_for_the_benchmark_measuring_now(tmp_path):
    cache, lock = tmp_path / "cache", tmp_path / "lock"
    unfinished = cache / "exports" / ("2" * 24)  # as a run exporting now has it
    unfinished.mkdir(parents=True)
    env = {**os.environ, "YOLO_BENCH_CACHE": str(cache), "YOLO_BENCH_LOCK": str(lock)}
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        pruning = subprocess.Popen(
            [sys.executable, "-m", "engine", "cache", "--prune"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert "pruning waits for it" in pruning.stderr.readline()
        assert unfinished.exists()
    out, _ = pruning.communicate(timeout=60)
    assert pruning.returncode == 0 and out.startswith("removed 1 entry,")
    assert not unfinished.exists()


def test_a_negative_unused_days_is_refused(tmp_path):
    for prune in (("--prune",), ()):
        refused = engine("cache", *prune, "--unused-days", "-1", env={"YOLO_BENCH_CACHE": str(tmp_path)})
        assert refused.returncode == 2
        assert "--unused-days -1 is out of range" in refused.stderr


def test_a_file_a_run_removes_while_the_survey_walks_is_left_out(tmp_path, monkeypatch):
    from engine import cache_contents

    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path))
    partial = tmp_path / "reference" / f"{'4' * 24}.partial-20261202-000000-abcdef"
    partial.mkdir(parents=True)
    for name in ("00.npy", "01.npy"):
        (partial / name).write_bytes(b"x" * 1000)
    walk = os.walk

    def walk_while_a_run_publishes(top, *args, **kwargs):  # the run's rename lands between listing and lstat
        for root, folders, files in walk(top, *args, **kwargs):
            if files:
                os.remove(os.path.join(root, files[0]))
            yield root, folders, files

    monkeypatch.setattr(cache_contents.os, "walk", walk_while_a_run_publishes)
    (entry,) = cache_contents.survey()
    assert (entry.size_bytes, entry.stale) == (1000, cache_contents.UNFINISHED)
