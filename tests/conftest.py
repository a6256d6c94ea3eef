"""Shared fixtures: real small runs, real databases, real images. Nothing here mocks a runtime."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# No download can succeed: tests of the offline fallback test it, not the machine's network
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "YOLO_OFFLINE": "1"}
TEST_IMGSZ = 160  # small input keeps every real runtime quick on 2 cores


@pytest.fixture(scope="session", autouse=True)
def isolated_jobs(tmp_path_factory):
    """Background jobs of the tests go to a folder of their own; exports stay in the shared cache."""
    os.environ["YOLO_BENCH_JOBS"] = str(tmp_path_factory.mktemp("jobs"))
    yield


def engine(*args: str, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would: a fresh process, text output."""
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def engine_run(db: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """A small run; without --model, of the file the default name gives here (default_model_file)."""
    model = () if "--model" in args else ("--model", default_model_file())
    return engine("run", "--db", str(db), "--imgsz", str(TEST_IMGSZ), "--warmup", "1", *model, *args, **kwargs)


@functools.cache
def default_model_file() -> str:
    """The file the default model name resolves to offline (the untrained fallback, on every machine), resolved
    once and kept. A run of the default name spawns a worker that imports torch to try the download (3 s
    of a 6 s test run); a run of this path reads what was kept of it. The default name's own path stays tested where
    a run is started without --model: every runtime's CLI run, the dashboard's and the browser's runs."""
    code = "from engine import models; info = models.resolve(''); models.keep(info.to_dict()); print(info.path)"
    env = {key: value for key, value in os.environ.items() if key != "YOLO_BENCH_CACHE"}  # the lasting cache
    env.update(NO_NETWORK)  # the untrained fallback on every machine, so tests that name it hold everywhere
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def sample_images() -> list[Path]:
    from engine.paths import sample_images as shipped

    images = shipped()
    assert images, "ultralytics ships bus.jpg and zidane.jpg"
    return images


@pytest.fixture(scope="session")
def detecting_model(tmp_path_factory, sample_images) -> Path:
    """tests/detecting_model.py's model, which outputs boxes: built once; its exports are shared by the tests."""
    from tests.detecting_model import build_detecting_model

    return build_detecting_model(tmp_path_factory.mktemp("model") / "detecting.pt", sample_images, TEST_IMGSZ)


@pytest.fixture(scope="session")
def filled_db(tmp_path_factory) -> Path:
    """A database filled by one real small run (ONNX Runtime and OpenVINO, batch 1 and 2)."""
    db = tmp_path_factory.mktemp("filled") / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime,openvino", "--batch", "1,2", "--iters", "6", "--json")
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="session")
def filled_run(filled_db) -> dict:
    import duckdb

    with duckdb.connect(str(filled_db), read_only=True) as con:
        run_id = con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
    return {"db": filled_db, "run_id": run_id}


@pytest.fixture
def empty_db(tmp_path) -> Path:
    """A path where no database exists yet."""
    return tmp_path / "results.duckdb"


def database_at_version(db: Path, version: int) -> None:
    """An older engine's database holding one completed run with one result (run 'old', result 'old-r')."""
    import duckdb

    from engine import store

    store.apply_migrations_up_to(db, version)
    with duckdb.connect(str(db)) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, machine_id) VALUES ('old', now(), 'completed', 'm')")
        con.execute(
            "INSERT INTO results (result_id, run_id, runtime, precision, batch, status) "
            "VALUES ('old-r', 'old', 'onnxruntime', 'fp32', 1, 'completed')"
        )


def parse_json_output(done: subprocess.CompletedProcess) -> dict:
    return json.loads(done.stdout)
