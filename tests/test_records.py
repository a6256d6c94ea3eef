"""The typed records and the store's explicit mapping: a field renamed on one side fails here, not as a NULL."""

import json
from dataclasses import fields

import duckdb

from engine import store
from engine.measure import Stats
from engine.records import ResultRecord, StageSample
from tests.rows import run_row


def _columns(table: str) -> set[str]:
    with duckdb.connect(":memory:") as con:
        for version in range(1, store.SCHEMA_VERSION + 1):
            for statement in store.MIGRATIONS[version]:
                con.execute(statement)
        return {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
            ).fetchall()
        }


def test_every_result_field_has_a_column_and_every_column_a_field():
    assert set(store.RESULT_COLUMNS) == set(ResultRecord.column_fields()), "a record field without a column"
    assert set(store.RESULT_COLUMNS.values()) | set(store.RESULT_COLUMNS_FILLED_BY_STORE) == _columns("results"), (
        "a results column without a field"
    )


def test_every_stats_field_has_a_column():
    assert set(store.STATS_COLUMNS) == {f.name for f in fields(Stats)}
    assert set(store.STATS_COLUMNS.values()) | {"result_id", "stage"} == _columns("stats")


def test_the_child_rows_are_their_tables_columns():
    from engine.records import AccuracyRow, DetectionRow, ImageRow, ParityRow

    for record, table in (
        (DetectionRow, "detections"),
        (ImageRow, "result_images"),
        (ParityRow, "parity"),
        (AccuracyRow, "accuracy"),
    ):
        assert {f.name for f in fields(record)} | {"result_id"} == _columns(table), table
    assert {f.name for f in fields(StageSample)} == {c.removesuffix("_ns") for c in _columns("samples")} - {
        "result_id",
        "iteration",
    }


def test_a_record_round_trips_through_the_store(tmp_path):
    db = tmp_path / "results.duckdb"
    store.ensure_schema(db)
    store.insert_run(db, run_row())
    record = ResultRecord(
        result_id="r1",
        run_id="run1",
        runtime="onnxruntime",
        precision="fp32",
        batch=2,
        status="completed",
        mode="lean",
        device="cpu",
        imgsz=160,
        input_shape=(2, 3, 160, 160),
        threads=2,
        settings={"threads": 2},
        export_cached=True,
        export_s=1.5,
        load_s=0.25,
        warmup=1,
        model_file="m.onnx",
        in_flight=2,
        in_flight_ips=40.0,
        peak_memory_mb=200.0,
        model_mb=12.0,
        samples=(StageSample(1, 2, 3, 4),) * 6,
        stats={"infer": Stats.from_values([3.0] * 6)},
    )
    store.insert_result(db, record)
    with duckdb.connect(str(db), read_only=True) as con:
        query = "SELECT * EXCLUDE (finished_at) FROM results"  # a time with a zone would need pytz
        row = dict(zip([c[0] for c in con.execute(query).description], con.execute(query).fetchall()[0]))
    for name, column in store.RESULT_COLUMNS.items():
        expected = getattr(record, name)
        expected = list(expected) if name == "input_shape" else expected
        actual = row[column] if name != "settings" else json.loads(row[column])
        assert actual == expected, name
    assert row["iterations"] == 6


def test_statistics_are_per_image_whatever_the_batch():
    """A batch of 4 measured in 8 ms is 2 ms per image in every stage and in the total."""
    from engine.recording import _stats
    from engine.records import BatchMeasurement

    sample = StageSample(decode=4_000_000, pre=4_000_000, infer=8_000_000, post=4_000_000, other=None)
    stats = _stats(BatchMeasurement(batch=4, status="completed", samples=(sample,) * 6))
    assert {stage: s.median for stage, s in stats.items()} == {
        "decode": 1.0, "pre": 1.0, "infer": 2.0, "post": 1.0, "total": 4.0}  # fmt: skip
    assert stats["infer"].n == 6 and stats["infer"].ci_low == 2.0
