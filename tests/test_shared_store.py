"""The fleet's shared store: DuckLake with its catalog in a real PostgreSQL server and its rows as Parquet files.

Many writer processes at once, the engine's own runs, bundles in and out, the dashboard's views and bad
addresses, all against a server these tests start on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from engine import database, store
from engine.config import BenchError
from tests import postgres_server, shared_store_writer
from tests.conftest import ROOT, engine, engine_run
from tests.dashboard_app import open_page, text_of
from tests.rows import run_row

WRITERS = 4
RUNS_PER_WRITER = 6


@pytest.fixture(scope="module")
def server():
    started = postgres_server.start()
    yield started
    started.stop()


@pytest.fixture
def lake(server, tmp_path, request):
    """A fresh shared store: its own PostgreSQL database and data folder."""
    name = "lake_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    server.create_database(name)
    address = server.address(name, tmp_path / "lake-data")
    yield address
    database.forget(address)


def summary(db) -> pd.DataFrame:
    frame = store.results_summary(db).drop(columns=["settings"])
    return frame.sort_values("result_id").reset_index(drop=True)


def test_four_writers_at_once_lose_nothing_and_duplicate_nothing(lake):
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.shared_store_writer", lake, f"writer{i}", str(RUNS_PER_WRITER)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    written = []
    for writer in writers:
        out, err = writer.communicate(timeout=600)
        assert writer.returncode == 0, err
        written += json.loads(out.strip().splitlines()[-1])
    assert len(written) == WRITERS * RUNS_PER_WRITER

    runs = store.runs(lake)
    assert sorted(runs["run_id"]) == sorted(written), "every run arrived, once"
    assert set(runs["status"]) == {"completed"}
    results = summary(lake)
    assert len(results) == len(written) * shared_store_writer.RESULTS_PER_RUN
    assert results["result_id"].is_unique
    assert (results["iterations"] == shared_store_writer.SAMPLES_PER_RESULT).all()
    for run_id in written[::RUNS_PER_WRITER]:  # one run per writer, read back whole
        samples = store.run_table(lake, run_id, "samples")
        assert len(samples) == shared_store_writer.RESULTS_PER_RUN * shared_store_writer.SAMPLES_PER_RESULT
        detections = store.detections(lake, run_id)
        assert len(detections) == shared_store_writer.RESULTS_PER_RUN * shared_store_writer.DETECTIONS_PER_RESULT
    machines = store.machines(lake)
    assert len(machines) == 1 and machines.loc[0, "runs"] == len(written), (
        "the writers share one hardware id: one machine row however the race went"
    )

    before, after = store.compact_shared(lake)  # upkeep merges the many small files and loses nothing
    assert after < before
    pd.testing.assert_frame_equal(summary(lake), results)


def test_an_engine_run_lands_in_the_shared_store_with_its_images(lake, tmp_path):
    done = engine_run(lake, "--runtimes", "onnxruntime", "--iters", "3", "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    rows = summary(lake)
    assert rows["run_id"].tolist() == [run_id] and rows.loc[0, "status"] == "completed"
    assert rows.loc[0, "run_status"] == "completed" and rows.loc[0, "infer_ms"] > 0
    images = store.result_images(lake, run_id)
    data_path = database.parse_shared(lake).data_path
    assert len(images) and all(str(data_path / "artifacts" / run_id) in path for path in images["annotated_path"])
    assert all(__import__("pathlib").Path(path).exists() for path in images["annotated_path"])
    assert list((data_path / "main").rglob("*.parquet")) or list(data_path.rglob("*.parquet")), (
        "rows are Parquet files in the data folder"
    )


def test_bundles_carry_runs_between_a_file_and_the_shared_store(filled_run, lake, tmp_path):
    bundle = tmp_path / "run.zip"
    assert (
        engine("bundle", "--run", filled_run["run_id"], "--db", str(filled_run["db"]), "--out", str(bundle)).returncode
        == 0
    )
    into_lake = engine("import", str(bundle), "--db", lake)
    assert into_lake.returncode == 0 and "imported" in into_lake.stdout, into_lake.stderr
    again = engine("import", str(bundle), "--db", lake)
    assert again.returncode == 0 and "already present" in again.stdout, "importing twice adds nothing"
    local = summary(filled_run["db"])
    pd.testing.assert_frame_equal(summary(lake), local)

    back = tmp_path / "back.zip"
    assert engine("bundle", "--run", filled_run["run_id"], "--db", lake, "--out", str(back)).returncode == 0
    gathered = tmp_path / "gathered.duckdb"
    assert engine("import", str(back), "--db", str(gathered)).returncode == 0
    pd.testing.assert_frame_equal(summary(gathered), local)

    with_password = lake.replace(f"{postgres_server.USER}@", f"{postgres_server.USER}:s3cret@")
    deleted = engine("delete", filled_run["run_id"], "--db", with_password)  # out of the store, kept as a bundle
    assert deleted.returncode == 0 and "s3cret" not in deleted.stdout and "import" in deleted.stdout, deleted.stderr
    assert store.results_summary(lake).empty and store.runs(lake).empty
    kept = tmp_path / "lake-data" / "artifacts" / "deleted" / f"{filled_run['run_id']}.zip"
    assert engine("import", str(kept), "--db", lake).returncode == 0
    pd.testing.assert_frame_equal(summary(lake), local)


def test_the_dashboard_reads_the_shared_store_with_the_same_views(filled_run, lake, tmp_path):
    bundle = tmp_path / "run.zip"
    engine("bundle", "--run", filled_run["run_id"], "--db", str(filled_run["db"]), "--out", str(bundle))
    assert engine("import", str(bundle), "--db", lake).returncode == 0
    app = open_page(lake)
    assert not app.exception
    assert "Shared store (DuckLake)" in text_of(app.sidebar.caption)
    leaderboard = app.dataframe[0].value
    assert set(leaderboard["runtime"]) == {"onnxruntime", "openvino"}, "the Overview shows the imported run"
    history = open_page(lake, "history")
    assert not history.exception and len(history.get("plotly_chart")) > 0
    machines = open_page(lake, "machines")
    assert not machines.exception and len(machines.dataframe) > 0


@pytest.mark.parametrize(
    "address, message",
    [
        ("ducklake+postgres://bench@127.0.0.1:5432/lake", "needs data_path"),
        ("ducklake+postgres://bench@127.0.0.1:5432/lake?data_path=relative/folder", "needs data_path"),
        ("ducklake+postgres://bench@127.0.0.1:notaport/lake?data_path=/tmp/x", "port"),
        ("ducklake+postgres:///lake?data_path=/tmp/x", "not of the form"),
        ("ducklake+postgres://bench@127.0.0.1:5432/lake?data_path=/tmp/x&mode=rw", "unknown options"),
        (
            "ducklake+postgres://bench:s3cret@127.0.0.1:notaport/lake?data_path=/tmp/x",
            "bench:\\*\\*\\*@127.0.0.1:notaport",
        ),
        ("ducklake+postgres://bench:s3cret@127.0.0.1:5432/lake", "needs data_path"),
    ],
)
def test_a_malformed_address_is_refused_with_a_clear_message(address, message):
    with pytest.raises(BenchError, match=message) as refused:
        database.parse_shared(address)
    assert "s3cret" not in str(refused.value), "messages end up in CI logs"


def test_an_unreachable_server_is_a_clear_message_without_the_password(tmp_path):
    address = f"ducklake+postgres://bench:s3cret@127.0.0.1:1/lake?data_path={tmp_path}/data"
    done = engine_run(address, "--runtimes", "onnxruntime", "--iters", "3")
    assert done.returncode != 0
    assert "cannot be reached" in done.stderr and "Traceback" not in done.stderr
    assert "s3cret" not in done.stderr and "s3cret" not in done.stdout


def test_a_run_missing_from_the_store_is_named_without_the_password(filled_run, lake, tmp_path):
    """export printed the store's address as given, password and all, when the run was not there."""
    bundle = tmp_path / "run.zip"
    engine("bundle", "--run", filled_run["run_id"], "--db", str(filled_run["db"]), "--out", str(bundle))
    with_password = lake.replace(f"{postgres_server.USER}@", f"{postgres_server.USER}:s3cret@")
    assert engine("import", str(bundle), "--db", with_password).returncode == 0, "the server trusts any password"
    for command in (
        ["export", "--run", "no-such-run", "--out", str(tmp_path)],
        ["show", "no-such-run"],
        ["bundle", "--run", "no-such-run", "--out", str(tmp_path / "x.zip")],
    ):
        done = engine(*command, "--db", with_password)
        assert done.returncode == 2 and "no-such-run is not in" in done.stderr, done.stderr
        assert "s3cret" not in done.stderr + done.stdout, command


def test_compact_refuses_a_plain_file(tmp_path):
    done = engine("compact", "--db", str(tmp_path / "results.duckdb"))
    assert done.returncode == 2 and "for a shared store" in done.stderr


def test_a_migration_keeps_the_store_s_old_snapshot_readable(lake):
    """A shared store is not copied before a migration (a file is): DuckLake keeps the snapshot before it, which
    an older engine's reader, or a person undoing the upgrade, can still query."""
    store.apply_migrations_up_to(lake, store.SCHEMA_VERSION - 1)
    store.insert_run(lake, run_row("before-upgrade"))
    with store.connect(lake, read_only=True) as con:
        (before,) = con.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{database.LAKE}')").fetchone()
    store.ensure_schema(lake)
    with store.connect(lake, read_only=True) as con:
        now = con.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        then = con.execute(f"SELECT max(version) FROM schema_version AT (VERSION => {before})").fetchone()[0]
        runs = con.execute(f"SELECT run_id FROM runs AT (VERSION => {before})").fetchall()
    assert (now, then) == (store.SCHEMA_VERSION, store.SCHEMA_VERSION - 1)
    assert runs == [("before-upgrade",)], "the rows as they were before the migration"
    assert store.runs(lake)["run_id"].tolist() == ["before-upgrade"], "and as they are after it"
