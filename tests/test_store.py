"""The DuckDB store: schema creation, forward migration with a backup, refusal of newer files, locks."""

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from engine import store
from engine.config import BenchError
from engine.records import ResultRecord, StageSample
from tests.conftest import database_at_version
from tests.rows import flat_stats, result_record, run_row

SAMPLES = (StageSample(decode=1_000_000, pre=2_000_000, infer=3_000_000, post=500_000),) * 3
STATS = {"infer": flat_stats(3.0, 3)}


def _result(result_id="r1", run_id="run1", **changes) -> ResultRecord:
    return result_record(
        result_id, run_id, **{"settings": {"threads": 2}, "samples": SAMPLES, "stats": STATS, **changes}
    )


def _run(run_id="run1"):
    return run_row(run_id)


def test_new_database_gets_current_schema_and_view(empty_db):
    store.ensure_schema(empty_db)
    with duckdb.connect(str(empty_db), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == store.SCHEMA_VERSION
        columns = {row[0] for row in con.execute("DESCRIBE results_summary").fetchall()}
    required = {
        "run_id",
        "started_at",
        "machine_id",
        "machine_label",
        "model",
        "weights_trained",
        "runtime",
        "precision",
        "batch",
        "imgsz",
        "threads",
        "status",
        "error",
        "pre_ms",
        "infer_ms",
        "post_ms",
        "infer_p90_ms",
        "infer_p99_ms",
        "throughput_ips",
        "stable",
    }
    assert required <= columns


def test_migration_from_version_1_keeps_data_and_backs_up(empty_db):
    store.apply_migrations_up_to(empty_db, 1)
    with duckdb.connect(str(empty_db)) as con:
        con.execute("INSERT INTO runs (run_id, started_at, status, machine_id) VALUES ('old', now(), 'completed', 'm')")
    store.ensure_schema(empty_db)
    backup = empty_db.with_name(empty_db.name + ".bak-v1")
    assert backup.exists()
    with duckdb.connect(str(empty_db), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == store.SCHEMA_VERSION
        assert con.execute("SELECT run_id FROM runs").fetchall() == [("old",)]
        con.execute("SELECT model_file FROM results").fetchall()  # the column version 2 added
        con.execute("SELECT * FROM result_images").fetchall()
    with duckdb.connect(str(backup), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == 1


def test_newer_schema_is_refused_and_left_untouched(empty_db):
    with duckdb.connect(str(empty_db)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (99, now())")
    before = hashlib.sha256(empty_db.read_bytes()).hexdigest()
    with pytest.raises(BenchError, match="newer"):
        store.check_readable(empty_db)
    with pytest.raises(BenchError, match="newer"):
        store.ensure_schema(empty_db)
    assert hashlib.sha256(empty_db.read_bytes()).hexdigest() == before


def test_foreign_database_is_refused(empty_db):
    with duckdb.connect(str(empty_db)) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(BenchError, match="not a results database"):
        store.ensure_schema(empty_db)


def test_result_is_written_whole_or_not_at_all(empty_db):
    """A result whose last rows fail leaves none of its rows: not its results row, samples or stats (written
    first), which a write without its transaction would keep."""
    from engine.records import DetectionRow

    store.ensure_schema(empty_db)
    store.insert_run(empty_db, _run())
    store.insert_result(empty_db, _result())
    broken = DetectionRow(image=None, det_index=0, class_id=0, class_name="person", score=0.9, x1=0, y1=0, x2=1, y2=1)
    with pytest.raises(duckdb.Error):  # a detection without its image violates NOT NULL, after the other rows
        store.insert_result(empty_db, _result("r2", detections=(broken,)))
    with duckdb.connect(str(empty_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results").fetchall()[0][0] == 1, "r2's row was rolled back"
        assert con.execute("SELECT count(*) FROM samples").fetchall()[0][0] == 3
        assert con.execute("SELECT count(*) FROM stats").fetchall()[0][0] == 1
    summary = store.results_summary(empty_db)
    assert summary.loc[0, "infer_ms"] == 3.0 and pd.isna(summary.loc[0, "stable"]), "3 samples: too few to judge"


def test_filters_are_parameters_not_sql(empty_db):
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, _run())
    store.insert_result(empty_db, _result())
    assert len(store.results_summary(empty_db, {"runtime": ["onnxruntime"]})) == 1
    hostile = "x' OR '1'='1"
    assert store.results_summary(empty_db, {"runtime": hostile}).empty
    assert store.results_summary(empty_db, {"model": ["'; DROP TABLE runs; --"]}).empty
    assert len(store.runs(empty_db)) == 1


def test_reads_of_a_missing_database_are_empty(empty_db):
    assert store.results_summary(empty_db).empty
    assert not empty_db.exists()


def test_writer_waits_for_a_lock_held_by_another_process(empty_db):
    store.ensure_schema(empty_db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            ("import duckdb, time, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(3)"),
            str(empty_db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    store.insert_run(empty_db, _run("waited"))
    waited = time.monotonic() - started
    holder.wait(10)
    assert waited > 1.0, "the write had to wait for the other process"
    assert store.runs(empty_db)["run_id"].tolist() == ["waited"]


def test_interrupted_runs_are_marked(empty_db):
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, {**_run("gone"), "pid": 999_999_999})
    assert store.mark_interrupted_runs(empty_db, lambda pid: False, "this-host") == ["gone"]
    assert store.runs(empty_db).loc[0, "status"] == "interrupted"


def test_runs_of_other_hosts_are_left_running(empty_db):
    """In a shared store another machine's pid means nothing here: only this host's dead runs are interrupted."""
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, {**_run("elsewhere"), "pid": 999_999_999, "config": {"host": "other-host"}})
    store.insert_run(empty_db, {**_run("here"), "pid": 999_999_999, "config": {"host": "this-host"}})
    assert store.mark_interrupted_runs(empty_db, lambda pid: False, "this-host") == ["here"]
    status = store.runs(empty_db).set_index("run_id")["status"]
    assert status["elsewhere"] == "running" and status["here"] == "interrupted"


def test_migration_from_version_3_adds_modes_and_efficiency(empty_db):
    database_at_version(empty_db, 3)
    store.ensure_schema(empty_db)
    assert empty_db.with_name(empty_db.name + ".bak-v3").exists()
    summary = store.results_summary(empty_db)
    assert summary.loc[0, "mode"] == "lean", "results from before modes were the engine's own pipeline"
    assert summary.loc[0, "key"] == "old|onnxruntime|fp32|1|lean"
    assert {"other_ms", "model_gflops", "achieved_gflops", "peak_fraction", "floor_ms"} <= set(summary.columns)
    with duckdb.connect(str(empty_db), read_only=True) as con:
        con.execute("SELECT other_ns FROM samples").fetchall()
        con.execute("SELECT machine_id, measured_at, threads, gflops_fp32, method FROM machine_peaks").fetchall()


def test_efficiency_columns_come_from_the_machine_peak(empty_db):
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, {**_run(), "model_gflops": 0.5})
    store.insert_machine_peak(empty_db, "m1", {"threads": 2, "gflops_fp32": 200.0, "method": "test"})
    store.insert_result(
        empty_db, _result(mode="ultralytics", samples=tuple(replace(s, other=100_000) for s in SAMPLES))
    )
    row = store.results_summary(empty_db).iloc[0]
    assert row["mode"] == "ultralytics"
    assert row["achieved_gflops"] == pytest.approx(0.5 / 0.003)
    assert row["peak_fraction"] == pytest.approx(0.5 / 0.003 / 200.0)
    assert row["floor_ms"] == pytest.approx(2.5)
    assert store.machine_peak(empty_db, "m1", 2)["gflops_fp32"] == 200.0
    assert store.machine_peak(empty_db, "m1", 4) is None


def test_bf16_and_int8_results_are_set_against_their_own_peak_where_the_cpu_has_one(empty_db):
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, {**_run(), "model_gflops": 0.5})
    store.insert_machine_peak(
        empty_db, "m1", {"threads": 2, "gflops_fp32": 200.0, "method": "test", "gflops_bf16": 400.0, "gops_int8": None}
    )
    for precision in ("fp32", "bf16", "int8"):
        store.insert_result(empty_db, _result(precision, "run1", precision=precision))
    rows = store.results_summary(empty_db).set_index("precision")
    assert rows.loc["bf16", "peak_gflops"] == 400.0 and rows.loc["bf16", "peak_kind"] == "bf16"
    assert rows.loc["bf16", "peak_fraction"] == pytest.approx(0.5 / 0.003 / 400.0)
    assert rows.loc["int8", "peak_gflops"] == 200.0 and rows.loc["int8", "peak_kind"] == "fp32", "no int8 peak"
    assert rows.loc["fp32", "peak_gflops"] == 200.0 and rows.loc["fp32", "peak_kind"] == "fp32"
    assert store.machine_peak(empty_db, "m1", 2)["gflops_bf16"] == 400.0


def test_a_gpu_result_is_not_set_against_the_cpu_peak(empty_db):
    from dashboard import ui

    store.ensure_schema(empty_db)
    store.insert_run(empty_db, {**_run(), "model_gflops": 0.5})
    store.insert_machine_peak(empty_db, "m1", {"threads": 2, "gflops_fp32": 200.0, "method": "test"})
    store.insert_result(empty_db, _result(device="cpu"))
    store.insert_result(empty_db, _result("fp16", "run1", precision="fp16", runtime="tensorrt", device="gpu"))
    rows = store.results_summary(empty_db).set_index("runtime")
    assert rows.loc["onnxruntime", "device"] == "cpu" and rows.loc["onnxruntime", "peak_gflops"] == 200.0
    gpu = rows.loc["tensorrt"]
    assert gpu["device"] == "gpu" and gpu["peak_kind"] == "gpu"
    assert pd.isna(gpu["peak_gflops"]) and pd.isna(gpu["peak_fraction"]) and pd.isna(gpu["floor_ms"])
    assert gpu["achieved_gflops"] == pytest.approx(0.5 / 0.003), "what it achieved needs no peak"
    shown = ui.efficiency(rows.reset_index())
    assert shown["peak_share"].tolist() == [f"{0.5 / 0.003 / 200:.0%}", ui.GPU_PEAK_MISSING]


def test_migration_from_version_7_adds_peak_memory(empty_db):
    """Results from before v8 have no memory figure (NULL, not 0); new ones carry the worker's peak."""
    database_at_version(empty_db, 7)
    store.ensure_schema(empty_db)
    assert empty_db.with_name(empty_db.name + ".bak-v7").exists()
    store.insert_run(empty_db, _run())
    store.insert_result(empty_db, _result(peak_memory_mb=212.5))
    memory = store.results_summary(empty_db).set_index("result_id")["peak_memory_mb"]
    assert pd.isna(memory["old-r"]) and memory["r1"] == 212.5


def test_migration_from_version_8_adds_the_model_size(empty_db):
    """Results from before v9 have no model size (NULL, not 0); new ones carry it."""
    database_at_version(empty_db, 8)
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, _run())
    store.insert_result(empty_db, _result(model_mb=12.3))
    size = store.results_summary(empty_db).set_index("result_id")["model_mb"]
    assert pd.isna(size["old-r"]) and size["r1"] == 12.3


def test_a_duckdb_file_refuses_a_result_id_twice(empty_db):
    """A file's ids are primary keys: a second result under an id already there is refused, not doubled."""
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, _run())
    store.insert_result(empty_db, _result())
    with pytest.raises(duckdb.ConstraintException):
        store.insert_result(empty_db, _result())
    assert store.results_summary(empty_db)["result_id"].tolist() == ["r1"]


def test_a_lake_schema_keeps_ids_not_null_without_primary_keys():
    """DuckLake has no PRIMARY KEY: a shared store's tables are created with each id NOT NULL instead."""
    with duckdb.connect(":memory:") as con:
        for version in range(1, store.SCHEMA_VERSION + 1):
            for statement in store.MIGRATIONS[version]:
                shared = store._for_store(statement, True)
                assert "PRIMARY KEY" not in shared.upper()
                con.execute(shared)
        assert (
            con.execute("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'").fetchall()[
                0
            ][0]
            == 0
        )
        nullable = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, is_nullable FROM information_schema.columns"
            ).fetchall()
        )
    assert {
        nullable[column]
        for column in (
            "machines.machine_id",
            "runs.run_id",
            "results.result_id",
            "parity.result_id",
            "accuracy.result_id",
        )
    } == {"NO"}
    assert nullable["runs.model"] == "YES"


SHARED = "ducklake+postgres:dbname=lake host=nowhere"  # never opened: the migration itself is replaced below


def _racing_migration(monkeypatch, errors: list) -> list:
    """store._migrate replaced by one that raises each of errors in turn (another machine's commit winning the
    race), then succeeds; returns the list of stores it was called with. The waits between attempts are recorded,
    not slept."""
    calls, waits = [], []

    def migrate(db):
        calls.append(db)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]

    monkeypatch.setattr(store, "_migrate", migrate)
    monkeypatch.setattr(store.time, "sleep", waits.append)
    return calls, waits


def test_a_machine_that_loses_the_shared_schema_race_finds_the_schema_made(monkeypatch):
    lost = [duckdb.TransactionException("commit conflict"), duckdb.CatalogException('Table "runs" already exists')]
    calls, waits = _racing_migration(monkeypatch, lost)
    store.ensure_schema(SHARED)
    assert calls == [SHARED] * 3
    assert 0 < waits[0] <= 0.25 and waits[0] < waits[1], "a short wait, longer each time"


def test_another_catalog_error_of_the_shared_schema_is_raised_at_once(monkeypatch):
    calls, _ = _racing_migration(monkeypatch, [duckdb.CatalogException("Schema lake does not exist")])
    with pytest.raises(duckdb.CatalogException, match="does not exist"):
        store.ensure_schema(SHARED)
    assert calls == [SHARED]


def test_a_shared_schema_race_lost_every_time_is_given_up(monkeypatch):
    monkeypatch.setattr(store, "SHARED_SCHEMA_ATTEMPTS", 3)
    calls, waits = _racing_migration(monkeypatch, [duckdb.TransactionException("commit conflict")] * 5)
    with pytest.raises(duckdb.TransactionException):
        store.ensure_schema(SHARED)
    assert len(calls) == 3 and len(waits) == 2


def test_a_migration_another_writer_finished_first_is_left_as_it_is(empty_db, monkeypatch):
    """Two processes open an old file at once: the second, inside its transaction, finds the schema current (the
    first one migrated it in between) and rolls back, adding nothing."""
    store.ensure_schema(empty_db)
    with duckdb.connect(str(empty_db), read_only=True) as con:
        before = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    usable, seen = store._usable_version, []

    def seen_before_the_other_writer(con, db):
        seen.append(db)
        return 1 if len(seen) == 1 else usable(con, db)  # outside the transaction: still version 1

    monkeypatch.setattr(store, "_usable_version", seen_before_the_other_writer)
    store.ensure_schema(empty_db)
    assert seen == [empty_db, empty_db]
    with duckdb.connect(str(empty_db), read_only=True) as con:
        assert con.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == before


def test_a_newer_file_is_refused_by_name_before_any_migration(empty_db):
    with duckdb.connect(str(empty_db)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (?, now())", [store.SCHEMA_VERSION + 1])
    with pytest.raises(BenchError, match=f"^{empty_db} has schema version {store.SCHEMA_VERSION + 1}, newer"):
        store.ensure_schema(empty_db)


def test_a_database_file_that_holds_nothing_yet_is_filled_without_a_backup(empty_db):
    duckdb.connect(str(empty_db)).close()  # made by another tool, or an engine stopped before the schema
    assert empty_db.stat().st_size > 0
    store.ensure_schema(empty_db)
    assert store.results_summary(empty_db).empty
    assert [path.name for path in empty_db.parent.iterdir()] == [empty_db.name], "nothing to back up"


def test_a_migration_that_fails_leaves_the_file_as_it_was_with_the_database_s_error(empty_db):
    """A version-1 file that already holds a table version 2 creates (edited by hand, say): the migration stops
    with DuckDB's own error, and the file stays at version 1 without any of version 2's changes."""
    database_at_version(empty_db, 1)
    with duckdb.connect(str(empty_db)) as con:
        con.execute("CREATE TABLE result_images (note VARCHAR)")
    with pytest.raises(duckdb.CatalogException, match="result_images"):
        store.ensure_schema(empty_db)
    with duckdb.connect(str(empty_db), read_only=True) as con:
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == 1
        columns = {row[0] for row in con.execute("DESCRIBE results").fetchall()}
    assert "model_file" not in columns


def test_settings_of_any_shape_and_none_are_stored_as_json(empty_db):
    """A runtime's settings are whatever it reports (lists of mixed types, say): stored as JSON text, and a result
    that reported none holds an empty object, not NULL."""
    store.ensure_schema(empty_db)
    store.insert_run(empty_db, _run())
    mixed = {"input": [1, "dynamic", None], "providers": {"cpu": {"arena": True}}}
    store.insert_result(empty_db, _result("r1", settings=mixed, input_shape=(1, 3, 160, 160)))
    store.insert_result(empty_db, _result("r2", settings=None))
    with duckdb.connect(str(empty_db), read_only=True) as con:
        stored = dict(con.execute("SELECT result_id, settings::VARCHAR FROM results ORDER BY result_id").fetchall())
        shape = con.execute("SELECT input_shape FROM results WHERE result_id = 'r1'").fetchone()[0]
    assert json.loads(stored["r1"]) == mixed and stored["r2"] == "{}"
    assert list(shape) == [1, 3, 160, 160]
