"""The store's reads, on a database of a few hand-made runs: which rows each filter and query returns, in what order,
what an older schema's file answers, and that reading never takes the write lock another process would need."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from engine import store
from engine.config import BenchError
from engine.records import AccuracyRow, DetectionRow, ImageRow, ParityRow, StageSample
from tests.conftest import database_at_version
from tests.rows import flat_stats, result_record, run_row

DAY = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SAMPLES = (StageSample(decode=1_000_000, pre=2_000_000, infer=4_000_000, post=1_000_000, other=1_000_000),) * 2


def _box(image: str, index: int, score: float, reference_index: int | None = None) -> DetectionRow:
    return DetectionRow(image=image, det_index=index, class_id=0, class_name="person", score=score, x1=1.0, y1=2.0,
                        x2=30.0, y2=40.0, reference_index=reference_index)  # fmt: skip


def _fingerprint(machine_id: str, label: str, cpu_id: str = "") -> dict:
    return {"machine_id": machine_id, "label": label, "cpu_model": "Test CPU", "arch": "x86_64", "physical_cores": 2,
            "logical_cores": 4, "ram_gb": 8, "isa_flags": ["avx2"], "gpus": [], "os": "Linux", "python": "3.11",
            "cpu_id": cpu_id}  # fmt: skip


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """run1 (m1, day 0, completed, ONNX Runtime fp32 b1 and OpenVINO fp32 b2 with detections), run2 (m2, day 1,
    running, ONNX Runtime int8), run3 (m1, day 2, failed, OpenVINO fp32 b1). The tests only read it."""
    db = tmp_path_factory.mktemp("three-runs") / "results.duckdb"
    store.ensure_schema(db)
    store.upsert_machine(db, _fingerprint("m1", "box", cpu_id="cpu-1"))
    store.upsert_machine(db, _fingerprint("m2", "other"))
    runs = (("run1", "m1", 0, "completed"), ("run2", "m2", 1, None), ("run3", "m1", 2, "failed"))
    for run_id, machine, day, status in runs:
        label = "box" if machine == "m1" else "other"
        started = DAY + timedelta(days=day)
        store.insert_run(db, run_row(run_id, machine_id=machine, machine_label=label, started_at=started))
        if status:
            store.finish_run(db, run_id, status, None if status == "completed" else "1 result(s) failed")
    store.insert_result(
        db,
        result_record("r1a", "run1", samples=SAMPLES, stats={"infer": flat_stats(4.0, 2), "total": flat_stats(8.0, 2)},
                      settings={"threads": 2}, input_shape=(1, 3, 160, 160),
                      detections=(_box("b.jpg", 0, 0.8, 0), _box("a.jpg", 1, 0.7), _box("a.jpg", 0, 0.9, 1)),
                      images=(ImageRow("b.jpg", "/x/b.jpg", 1), ImageRow("a.jpg", None, 2)),
                      parity=ParityRow("drift", reason="scores differ", reference="pytorch", matched=2, extra=1),
                      accuracy=AccuracyRow(data="coco8.yaml", map50=0.5, map50_95=0.25)),
    )  # fmt: skip
    store.insert_result(db, result_record("r1b", "run1", runtime="openvino", batch=2, samples=SAMPLES,
                                          detections=(_box("a.jpg", 0, 0.6),)))  # fmt: skip
    store.insert_result(db, result_record("r2", "run2", precision="int8", samples=SAMPLES[:1]))
    store.insert_result(db, result_record("r3", "run3", runtime="openvino", status="failed", error="it broke"))
    store.insert_reference_detections(
        db, "run1", "pytorch", [vars(_box(image, index, 0.9)) for image, index in
                                (("b.jpg", 1), ("a.jpg", 0), ("b.jpg", 0))],
    )  # fmt: skip
    return db


def _ids(frame, column="result_id") -> list:
    return frame[column].tolist()


@pytest.mark.parametrize(
    "filters, expected",
    [
        (None, ["r1a", "r1b", "r2", "r3"]),
        ({"run_id": "run2"}, ["r2"]),  # one value, not a list: not taken letter by letter
        ({"run_id": ("run1", "run3")}, ["r1a", "r1b", "r3"]),
        ({"machine_id": {"m1"}}, ["r1a", "r1b", "r3"]),
        ({"model": ["m"], "runtime": ["openvino"]}, ["r1b", "r3"]),
        ({"precision": ["int8"]}, ["r2"]),
        ({"batch": [2]}, ["r1b"]),
        ({"status": ["failed"]}, ["r3"]),
        ({"since": DAY + timedelta(days=1)}, ["r2", "r3"]),
        ({"until": DAY + timedelta(days=1)}, ["r1a", "r1b", "r2"]),
        ({"since": DAY + timedelta(hours=1), "until": DAY + timedelta(days=1, hours=1)}, ["r2"]),
        # a filter without a value, an empty choice or a key that is no filter narrows nothing, and stops nothing
        ({"model": None, "run_id": ["run2"]}, ["r2"]),
        ({"colour": "red", "run_id": ["run2"]}, ["r2"]),
        ({"runtime": [], "run_id": ["run2"]}, ["r2"]),
        ({"since": None, "until": None}, ["r1a", "r1b", "r2", "r3"]),
        ({"until": DAY + timedelta(days=1), "run_id": ["run1"]}, ["r1a", "r1b"]),
        ({"since": DAY + timedelta(days=1), "runtime": ["openvino"]}, ["r3"]),
    ],
)
def test_each_summary_filter_selects_its_rows(three_runs, filters, expected):
    assert sorted(_ids(store.results_summary(three_runs, filters))) == expected


def test_the_summary_is_in_start_then_runtime_precision_batch_order(three_runs):
    assert _ids(store.results_summary(three_runs)) == ["r1a", "r1b", "r2", "r3"]
    assert _ids(store.results_summary(three_runs, {"run_id": ["run1"]}), "batch") == [1, 2]


def test_the_summary_carries_what_the_result_stored(three_runs):
    row = store.results_summary(three_runs, {"run_id": ["run1"], "runtime": ["onnxruntime"]}).iloc[0]
    assert row["key"] == "run1|onnxruntime|fp32|1|lean" and row["status"] == "completed"
    assert json.loads(row["settings"]) == {"threads": 2}
    assert row["infer_ms"] == 4.0 and row["total_ms"] == 8.0 and row["throughput_ips"] == 125.0
    assert (row["parity_verdict"], row["parity_reason"], row["parity_matched"]) == ("drift", "scores differ", 2)
    assert (row["map50"], row["map_data"]) == (0.5, "coco8.yaml")
    failed = store.results_summary(three_runs, {"run_id": ["run3"]}).iloc[0]
    assert (failed["status"], failed["error"], failed["run_status"]) == ("failed", "it broke", "failed")


def test_the_results_row_keeps_settings_shape_and_iteration_count(three_runs):
    results = store.run_table(three_runs, "run1", "results").set_index("result_id")
    assert json.loads(results.loc["r1a", "settings"]) == {"threads": 2}
    assert json.loads(results.loc["r1b", "settings"]) == {}, "no settings: an empty object, not NULL"
    assert list(results.loc["r1a", "input_shape"]) == [1, 3, 160, 160]
    assert pd.isna(results.loc["r1b", "input_shape"])
    assert results.loc["r1a", "iterations"] == 2 and results.loc["r1b", "iterations"] == 2
    assert results.loc["r1a", "finished_at"].tzinfo is not None


@pytest.mark.parametrize(
    "filters, expected",
    [
        (None, ["run3", "run2", "run1"]),  # newest first
        ({"run_id": "run2"}, ["run2"]),
        ({"machine_id": ["m1"]}, ["run3", "run1"]),
        ({"status": ["running"]}, ["run2"]),
        ({"status": ["completed", "failed"], "machine_id": ["m1"]}, ["run3", "run1"]),
        ({"model": ["other"]}, ["run3", "run2", "run1"]),  # not a filter of runs
    ],
)
def test_each_runs_filter_selects_its_runs(three_runs, filters, expected):
    assert _ids(store.runs(three_runs, filters), "run_id") == expected


def test_finished_runs_keep_their_status_and_reason(three_runs):
    runs = store.runs(three_runs).set_index("run_id")
    shown = {run_id: store.status_and_reason(row["status"], row["error"]) for run_id, row in runs.iterrows()}
    assert shown == {"run1": "completed", "run2": "running", "run3": "failed (1 result(s) failed)"}


@pytest.mark.parametrize(
    "status, error, shown",
    [
        ("completed", None, "completed"),
        ("completed", "a stale reason", "completed"),
        ("cancelled", "interrupted by Ctrl-C or SIGTERM", "cancelled (interrupted by Ctrl-C or SIGTERM)"),
        ("failed", None, "failed"),
        ("failed", "", "failed"),
        ("interrupted", math.nan, "interrupted"),  # pandas' NULL
    ],
)
def test_a_status_is_shown_with_its_reason(status, error, shown):
    assert store.status_and_reason(status, error) == shown


@pytest.mark.parametrize(
    "value, empty, parsed",
    [
        ('{"a": 1}', None, {"a": 1}),
        ("[1, 2]", None, [1, 2]),
        ({"a": 1}, None, {"a": 1}),
        ([1], None, [1]),
        (None, {}, {}),
        (math.nan, [], []),
    ],
)
def test_a_json_column_is_parsed_once(value, empty, parsed):
    assert store.json_column(value, empty) == parsed


def test_machines_are_listed_with_their_runs(three_runs):
    machines = store.machines(three_runs).set_index("machine_id")
    assert machines.loc["m1", "runs"] == 2 and machines.loc["m2", "runs"] == 1
    assert machines.loc["m1", "cpu_id"] == "cpu-1" and pd.isna(machines.loc["m2", "cpu_id"]), "'' is no CPU id"
    assert list(machines.loc["m1", "run_labels"]) == ["box"]
    assert list(machines.index) == ["m1", "m2"], "the machine of the latest run first"


def test_a_machine_seen_again_is_updated_not_doubled(empty_db):
    store.ensure_schema(empty_db)
    store.upsert_machine(empty_db, _fingerprint("m2", "other"))
    store.upsert_machine(empty_db, {**_fingerprint("m2", "renamed"), "os": "Linux 6"})
    machines = store.machines(empty_db)
    assert (len(machines), machines.loc[0, "label"], machines.loc[0, "os"]) == (1, "renamed", "Linux 6")


def test_detections_images_and_reference_boxes_of_a_run(three_runs):
    found = store.detections(three_runs, "run1")
    assert list(zip(found["result_id"], found["image"], found["det_index"])) == [
        ("r1a", "a.jpg", 0), ("r1a", "a.jpg", 1), ("r1a", "b.jpg", 0), ("r1b", "a.jpg", 0),
    ]  # fmt: skip
    assert found["reference_index"].head(3).fillna(-1).tolist() == [1, -1, 0], "the reference box each one matched"
    assert store.detections(three_runs, "run2").empty
    images = store.result_images(three_runs, "run1")
    assert list(zip(images["image"], images["detections"])) == [("a.jpg", 2), ("b.jpg", 1)]
    reference = store.reference_detections(three_runs, "run1")
    assert list(zip(reference["image"], reference["det_index"])) == [("a.jpg", 0), ("b.jpg", 0), ("b.jpg", 1)]
    assert store.reference_detections(three_runs, "run2").empty


def test_iteration_times_are_per_image_totals(three_runs):
    times = store.iteration_times(three_runs, "run1")
    assert list(times.columns) == ["result_id", "iteration", "total_ms"]
    assert times["result_id"].tolist() == ["r1a", "r1a", "r1b", "r1b"]
    # pre 2 + infer 4 + post 1 + other 1 ms = 8 ms a call; batch 2: 4 ms an image (decode is not in the total)
    assert times["total_ms"].tolist() == [8.0, 8.0, 4.0, 4.0]


@pytest.mark.parametrize(
    "table, rows",
    [("results_summary", 2), ("runs", 1), ("results", 2), ("samples", 4), ("stats", 2), ("detections", 4)],
)
def test_a_run_s_table_for_export_holds_its_rows_only(three_runs, table, rows):
    frame = store.run_table(three_runs, "run1", table)
    assert len(frame) == rows
    if "run_id" in frame:
        assert set(frame["run_id"]) == {"run1"}
    if "result_id" in frame:
        assert set(frame["result_id"]) <= {"r1a", "r1b"}


def test_the_latest_peak_of_a_thread_count_is_the_machine_s_peak(empty_db):
    store.ensure_schema(empty_db)
    earlier = {"threads": 2, "gflops_fp32": 100.0, "method": "old", "measured_at": "2026-01-01T00:00:00+00:00"}
    later = {"threads": 2, "gflops_fp32": 150.0, "gflops_bf16": 300.0, "gops_int8": 600.0, "method": "numpy",
             "measured_at": "2026-02-01T00:00:00+00:00"}  # fmt: skip
    store.insert_machine_peak(empty_db, "m1", later)
    store.insert_machine_peak(empty_db, "m1", earlier)
    store.insert_machine_peak(empty_db, "m1", {"threads": 4, "gflops_fp32": 250.0, "method": "numpy"})
    store.insert_machine_peak(empty_db, "m2", {"threads": 2, "gflops_fp32": 999.0, "method": "numpy"})
    peak = store.machine_peak(empty_db, "m1", 2)
    assert {key: value for key, value in peak.items() if key != "measured_at"} == {
        "gflops_fp32": 150.0, "gflops_bf16": 300.0, "gops_int8": 600.0, "method": "numpy",
    }  # fmt: skip
    assert datetime.fromisoformat(peak["measured_at"]) == datetime(2026, 2, 1, tzinfo=UTC)
    assert store.machine_peak(empty_db, "m1", 4)["gflops_fp32"] == 250.0
    assert store.machine_peak(empty_db, "m3", 2) is None


def test_a_run_s_identity_and_its_refusals(three_runs, tmp_path):
    run_id, started_at, machine_id, model_sha256 = store.run_identity(three_runs, "run2")
    assert (run_id, machine_id, model_sha256) == ("run2", "m2", "abc")
    assert datetime.fromisoformat(started_at) == DAY + timedelta(days=1)
    assert store.run_identity(three_runs, "run9") is None
    store.require_run(three_runs, "run2")
    with pytest.raises(BenchError, match=f"run run9 is not in {three_runs}: "):
        store.require_run(three_runs, "run9")
    missing = tmp_path / "missing.duckdb"
    with pytest.raises(BenchError, match=f"database {missing} does not exist"):
        store.require_run(missing, "run2")
    assert not missing.exists()
    unwritten = tmp_path / "unwritten.duckdb"
    store.apply_migrations_up_to(unwritten, 0)  # a store no run has written to yet: no runs table
    assert store.run_identity(unwritten, "run2") is None
    with pytest.raises(BenchError, match="is not in"):
        store.require_run(unwritten, "run2")


def test_result_ids_already_present_are_counted(three_runs, tmp_path):
    assert store.result_ids_present(three_runs, ["r1a", "r3", "new"]) == 2
    assert store.result_ids_present(three_runs, ["new"]) == 0
    assert store.result_ids_present(three_runs, []) == 0
    assert store.result_ids_present(tmp_path / "missing.duckdb", ["r1a"]) == 0
    unwritten = tmp_path / "unwritten.duckdb"
    store.apply_migrations_up_to(unwritten, 0)
    assert store.result_ids_present(unwritten, ["r1a"]) == 0


def test_a_run_exports_as_its_rows_of_each_table(three_runs):
    tables = store.export_run_arrow(three_runs, "run1")
    assert set(tables) == set(store.BUNDLE_TABLES)
    counts = {table: rows.num_rows for table, rows in tables.items()}
    assert counts == {"machines": 1, "machine_peaks": 0, "runs": 1, "results": 2, "samples": 4, "stats": 2,
                      "detections": 4, "result_images": 2, "parity": 1, "accuracy": 1,
                      "reference_detections": 3, "profiles": 0}  # fmt: skip
    assert tables["machines"].column("machine_id").to_pylist() == ["m1"]


def test_an_older_file_is_read_as_it_is(empty_db):
    """Before its migration an older engine's file answers what its schema holds: its runs, no reference boxes
    before version 3, no iteration times before version 4 (the predictor's own time came then)."""
    database_at_version(empty_db, 2)
    assert store.runs(empty_db)["run_id"].tolist() == ["old"]
    assert store.reference_detections(empty_db, "old").empty
    assert store.iteration_times(empty_db, "old").empty
    assert set(store.export_run_arrow(empty_db, "old")) == {
        "machines", "runs", "results", "samples", "stats", "detections", "result_images",
    }  # fmt: skip


def test_the_runs_of_a_version_1_file_are_listed(empty_db):
    database_at_version(empty_db, 1)
    assert store.runs(empty_db)["run_id"].tolist() == ["old"]
    assert store.run_identity(empty_db, "old")[0] == "old"


def test_reference_boxes_of_a_version_3_file_and_iteration_times_of_a_version_4_file(tmp_path):
    v3, v4 = tmp_path / "v3.duckdb", tmp_path / "v4.duckdb"
    database_at_version(v3, 3)
    database_at_version(v4, 4)
    with duckdb.connect(str(v3)) as con:
        con.execute("INSERT INTO reference_detections VALUES ('old', 'pt', 'a.jpg', 0, 0, 'person', 0.9, 1, 2, 3, 4)")
    with duckdb.connect(str(v4)) as con:
        con.execute("INSERT INTO samples VALUES ('old-r', 0, 1000000, 1000000, 2000000, 1000000, NULL)")
    assert store.reference_detections(v3, "old")["image"].tolist() == ["a.jpg"]
    assert store.iteration_times(v4, "old")["total_ms"].tolist() == [4.0]


def test_a_file_whose_schema_was_never_filled_reads_as_empty(empty_db):
    store.apply_migrations_up_to(empty_db, 0)  # the version table, no version in it yet
    assert store.runs(empty_db).empty and store.results_summary(empty_db).empty


def test_refusals_name_the_file(tmp_path):
    foreign = tmp_path / "invoices.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(BenchError, match=f"^{foreign} holds tables that are not a results database"):
        store.check_readable(foreign)
    newer = tmp_path / "newer.duckdb"
    with duckdb.connect(str(newer)) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        con.execute("INSERT INTO schema_version VALUES (?, now())", [store.SCHEMA_VERSION + 1])
    with pytest.raises(BenchError, match=f"^{newer} has schema version {store.SCHEMA_VERSION + 1}, newer than"):
        store.check_readable(newer)
    current = tmp_path / "current.duckdb"
    store.ensure_schema(current)
    store.check_readable(current)  # this engine's own version: readable
    missing = tmp_path / "missing.duckdb"
    store.check_readable(missing)
    assert not missing.exists(), "checking a file that is not there creates none"


def test_a_file_that_is_not_a_database_is_refused_at_once(tmp_path):
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database\n" * 100)
    with pytest.raises(BenchError, match="cannot be opened"):
        store.runs(text)


def test_times_are_stored_with_their_time_zone():
    assert store.now().utcoffset() == timedelta(0)


def test_reads_take_no_write_lock(three_runs):
    """While another process reads the file (a second dashboard), every read here goes through without waiting for
    it: a read that opened the file for writing would wait until that process let go."""
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); "
         "print('reading', flush=True); time.sleep(8)", str(three_runs)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert reader.stdout.readline().strip() == "reading"
        assert len(store.runs(three_runs)) == 3
        assert store.machine_peak(three_runs, "m1", 2) is None
        assert store.run_identity(three_runs, "run1")[0] == "run1"
        assert store.run_with_identity(three_runs, list(store.run_identity(three_runs, "run1")))
        assert store.result_ids_present(three_runs, ["r1a"]) == 1
        assert len(store.export_run_arrow(three_runs, "run1")["results"]) == 2
        store.check_readable(three_runs)
        assert reader.poll() is None, "the reads waited for the other process to end"
    finally:
        reader.kill()
        reader.wait()


def test_each_bundle_table_s_columns_now_and_as_it_was_created():
    """What a bundle's tables must have (the columns each table was created with) and may have (every column
    since), computed afresh from the migrations."""
    store.table_columns.cache_clear()
    columns = store.table_columns()
    assert set(columns) == set(store.BUNDLE_TABLES)
    current, created = columns["results"]
    assert current[:4] == ("result_id", "run_id", "runtime", "precision"), "in the order of the table"
    assert {"mode", "device", "model_mb"} <= set(current) - created and {"runtime", "batch", "status"} <= created
    current, created = columns["machine_peaks"]
    assert created == {"machine_id", "measured_at", "threads", "gflops_fp32", "method"}
    assert current[-2:] == ("gflops_bf16", "gops_int8")
