"""The only module that knows SQL: schema, migrations, writes and the read queries.

Connections are short-lived: DuckDB lets one process hold a file for writing, and a connection kept open
by the engine would lock the dashboard out (and the other way round). Every open retries on the lock
error for a bounded time. Writes of one result are one transaction, so a crash never leaves half a result.
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from engine import database
from engine.config import BenchError

SCHEMA_VERSION = 11
LOCK_WAIT_S = 60.0
SHARED_SCHEMA_ATTEMPTS = 10

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE machines (
            machine_id VARCHAR PRIMARY KEY,
            label VARCHAR,
            cpu_model VARCHAR,
            arch VARCHAR,
            physical_cores INTEGER,
            logical_cores INTEGER,
            ram_gb INTEGER,
            isa_flags VARCHAR[],
            gpus VARCHAR[],
            os VARCHAR,
            python VARCHAR,
            fingerprint JSON,
            first_seen TIMESTAMPTZ
        )""",
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            status VARCHAR NOT NULL,
            machine_id VARCHAR NOT NULL,
            machine_label VARCHAR,
            model VARCHAR,
            model_sha256 VARCHAR,
            model_source VARCHAR,
            weights_trained BOOLEAN,
            imgsz INTEGER,
            images JSON,
            config JSON,
            libraries JSON,
            pid INTEGER,
            error VARCHAR
        )""",
        """CREATE TABLE results (
            result_id VARCHAR PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            runtime VARCHAR NOT NULL,
            precision VARCHAR NOT NULL,
            batch INTEGER NOT NULL,
            status VARCHAR NOT NULL,
            error VARCHAR,
            imgsz INTEGER,
            input_shape INTEGER[],
            threads INTEGER,
            settings JSON,
            export_cached BOOLEAN,
            export_s DOUBLE,
            load_s DOUBLE,
            warmup INTEGER,
            iterations INTEGER,
            finished_at TIMESTAMPTZ
        )""",
        """CREATE TABLE samples (
            result_id VARCHAR NOT NULL,
            iteration INTEGER NOT NULL,
            decode_ns BIGINT,
            pre_ns BIGINT,
            infer_ns BIGINT,
            post_ns BIGINT
        )""",
        """CREATE TABLE stats (
            result_id VARCHAR NOT NULL,
            stage VARCHAR NOT NULL,
            n INTEGER,
            mean_ms DOUBLE,
            median_ms DOUBLE,
            p90_ms DOUBLE,
            p99_ms DOUBLE,
            min_ms DOUBLE,
            max_ms DOUBLE,
            stdev_ms DOUBLE,
            ci_low_ms DOUBLE,
            ci_high_ms DOUBLE,
            cv DOUBLE
        )""",
        """CREATE TABLE detections (
            result_id VARCHAR NOT NULL,
            image VARCHAR NOT NULL,
            det_index INTEGER NOT NULL,
            class_id INTEGER,
            class_name VARCHAR,
            score DOUBLE,
            x1 DOUBLE, y1 DOUBLE, x2 DOUBLE, y2 DOUBLE
        )""",
    ],
    2: [
        # v2: annotated images get their own table, and a result remembers the file it ran.
        """CREATE TABLE result_images (
            result_id VARCHAR NOT NULL,
            image VARCHAR NOT NULL,
            annotated_path VARCHAR,
            detections INTEGER
        )""",
        "ALTER TABLE results ADD COLUMN model_file VARCHAR",
    ],
    3: [
        # v3: parity with the reference (engine/parity.py), the reference's own boxes, and mAP on labelled data.
        """CREATE TABLE parity (
            result_id VARCHAR PRIMARY KEY,
            reference VARCHAR,
            iou_threshold DOUBLE,
            verdict VARCHAR,
            reason VARCHAR,
            raw_max_abs DOUBLE,
            raw_mean_abs DOUBLE,
            raw_rel_mean DOUBLE,
            score_max_abs DOUBLE,
            box_max_abs DOUBLE,
            raw_images INTEGER,
            reference_boxes INTEGER,
            candidate_boxes INTEGER,
            matched INTEGER,
            missed INTEGER,
            extra INTEGER,
            mean_iou DOUBLE,
            max_score_diff DOUBLE
        )""",
        """CREATE TABLE reference_detections (
            run_id VARCHAR NOT NULL,
            reference VARCHAR,
            image VARCHAR NOT NULL,
            det_index INTEGER NOT NULL,
            class_id INTEGER,
            class_name VARCHAR,
            score DOUBLE,
            x1 DOUBLE, y1 DOUBLE, x2 DOUBLE, y2 DOUBLE
        )""",
        # The reference box (det_index in reference_detections) a detection matched; NULL: an extra box.
        "ALTER TABLE detections ADD COLUMN reference_index INTEGER",
        """CREATE TABLE accuracy (
            result_id VARCHAR PRIMARY KEY,
            data VARCHAR,
            images INTEGER,
            instances INTEGER,
            map50 DOUBLE,
            map50_95 DOUBLE,
            precision DOUBLE,
            recall DOUBLE,
            error VARCHAR
        )""",
    ],
    4: [
        # v4: the pipeline mode of a result (lean: the engine's pipeline; ultralytics: its predictor), the
        # predictor's time outside its own stage figures, and what efficiency figures need: the model's GFLOPs
        # at the run's image size and each machine's measured peak (engine/peak.py).
        "ALTER TABLE results ADD COLUMN mode VARCHAR DEFAULT 'lean'",
        "ALTER TABLE samples ADD COLUMN other_ns BIGINT",
        "ALTER TABLE runs ADD COLUMN model_gflops DOUBLE",
        """CREATE TABLE machine_peaks (
            machine_id VARCHAR NOT NULL,
            measured_at TIMESTAMPTZ NOT NULL,
            threads INTEGER NOT NULL,
            gflops_fp32 DOUBLE NOT NULL,
            method VARCHAR
        )""",
    ],
    5: [
        # v5: throughput with several requests in flight (--in-flight), beside the one-at-a-time latency.
        "ALTER TABLE results ADD COLUMN in_flight INTEGER",
        "ALTER TABLE results ADD COLUMN in_flight_ips DOUBLE",
    ],
    6: [
        # v6: the bf16 and int8 peaks where the CPU has them (engine/peak.py); bf16 and int8 results are set
        # against them, fp32 ones (and bf16 on a CPU without bf16, which runs fp32) against the fp32 peak.
        "ALTER TABLE machine_peaks ADD COLUMN gflops_bf16 DOUBLE",
        "ALTER TABLE machine_peaks ADD COLUMN gops_int8 DOUBLE",
    ],
    7: [
        # v7: where a result ran, 'cpu' or 'gpu' (NULL before: CPU). The measured peaks are the CPU's, so a GPU
        # result gets no peak, share of peak or floor time in results_summary rather than the CPU's.
        "ALTER TABLE results ADD COLUMN device VARCHAR"
    ],
    8: [
        # v8: the worker's peak resident memory (host RAM, MiB) over one batch size's load, warm-up, measurement
        # and detections (engine/measure.py peak_memory_mb); NULL before, and where the OS does not say.
        "ALTER TABLE results ADD COLUMN peak_memory_mb DOUBLE"
    ],
    9: [
        # v9: the model's size on disk as its runtime loads it (MiB: the .onnx, OpenVINO's .xml + .bin, the
        # SavedModel folder without its .tflite files...), from Runtime.artifact_mb; NULL before.
        "ALTER TABLE results ADD COLUMN model_mb DOUBLE"
    ],
    10: [
        # v10: no table changes; the results_summary view, made again after every migration, calls a result
        # `stable` only where it has the samples for a 95% interval of its median (NULL: too few to judge).
    ],
    11: [
        # v11: a result's per-layer profile (`run --profile N`, engine/profiles.py): per module and op type, the
        # runtime's own profiler's ms per call; the profiler and its calls are in results.settings' "profile".
        """CREATE TABLE profiles (
            result_id VARCHAR NOT NULL,
            module VARCHAR,
            module_type VARCHAR,
            stage VARCHAR,
            op_type VARCHAR,
            ms DOUBLE,
            ops INTEGER,
            names VARCHAR
        )"""
    ],
}

RESULTS_SUMMARY_VIEW = """
CREATE OR REPLACE VIEW results_summary AS
SELECT
    r.run_id, u.started_at, u.status AS run_status, u.machine_id, u.machine_label,
    u.model, u.weights_trained, r.result_id, r.runtime, r.precision, r.batch, r.mode,
    r.run_id || '|' || r.runtime || '|' || r.precision || '|' || r.batch || '|' || r.mode AS key,
    r.imgsz, r.threads, r.status, r.error,
    decode.median_ms AS decode_ms,
    pre.median_ms AS pre_ms,
    infer.median_ms AS infer_ms,
    post.median_ms AS post_ms,
    total.median_ms AS total_ms,
    infer.ci_low_ms AS infer_ci_low_ms,
    infer.ci_high_ms AS infer_ci_high_ms,
    infer.p90_ms AS infer_p90_ms,
    infer.p99_ms AS infer_p99_ms,
    infer.cv AS infer_cv,
    infer.n AS iterations,
    CASE WHEN total.median_ms > 0 THEN 1000.0 / total.median_ms END AS throughput_ips,
    CASE WHEN infer.ci_low_ms IS NOT NULL THEN infer.cv <= {unstable_cv} END AS stable,
    r.export_cached, r.settings, r.finished_at,
    p.verdict AS parity_verdict, p.reason AS parity_reason, p.reference AS parity_reference,
    p.raw_max_abs AS parity_raw_max_abs, p.raw_mean_abs AS parity_raw_mean_abs,
    p.score_max_abs AS parity_score_max_abs, p.matched AS parity_matched, p.missed AS parity_missed,
    p.extra AS parity_extra, p.mean_iou AS parity_mean_iou, p.max_score_diff AS parity_max_score_diff,
    a.map50, a.map50_95, a.data AS map_data, a.error AS map_error,
    other.median_ms AS other_ms,
    u.model_gflops, pk.peak_gflops, CASE WHEN r.device = 'gpu' THEN 'gpu' ELSE pk.peak_kind END AS peak_kind,
    -- engine/peak.py efficiency(): achieved = GFLOPs per image / infer s; floor = GFLOPs / peak
    CASE WHEN infer.median_ms > 0 THEN u.model_gflops / (infer.median_ms / 1000.0) END AS achieved_gflops,
    CASE WHEN infer.median_ms > 0 AND pk.peak_gflops > 0
         THEN u.model_gflops / (infer.median_ms / 1000.0) / pk.peak_gflops END AS peak_fraction,
    CASE WHEN pk.peak_gflops > 0 THEN u.model_gflops / pk.peak_gflops * 1000.0 END AS floor_ms,
    coalesce(r.device, 'cpu') AS device,
    r.in_flight, r.in_flight_ips, r.peak_memory_mb, r.model_mb
FROM results r
JOIN runs u USING (run_id)
LEFT JOIN (
    -- each machine's latest peak per thread count, as the rate of each precision: bf16 and int8 where the
    -- CPU has them (else that precision runs on the fp32 units), fp32 for the rest
    SELECT machine_id, threads, kind.precision,
           CASE WHEN kind.precision = 'bf16' AND bf16 IS NOT NULL THEN 'bf16'
                WHEN kind.precision = 'int8' AND int8 IS NOT NULL THEN 'int8' ELSE 'fp32' END AS peak_kind,
           CASE peak_kind WHEN 'bf16' THEN bf16 WHEN 'int8' THEN int8 ELSE fp32 END AS peak_gflops
    FROM (SELECT machine_id, threads, arg_max(gflops_fp32, measured_at) AS fp32,
                 arg_max(gflops_bf16, measured_at) AS bf16, arg_max(gops_int8, measured_at) AS int8
          FROM machine_peaks GROUP BY machine_id, threads) latest
    CROSS JOIN (VALUES ('fp32'), ('bf16'), ('int8'), ('fp16')) kind(precision)
) pk ON pk.machine_id = u.machine_id AND pk.threads = r.threads AND pk.precision = r.precision
      AND coalesce(r.device, 'cpu') = 'cpu'  -- the peaks are the CPU's: a GPU result gets none
LEFT JOIN stats other ON other.result_id = r.result_id AND other.stage = 'other'
LEFT JOIN stats decode ON decode.result_id = r.result_id AND decode.stage = 'decode'
LEFT JOIN stats pre ON pre.result_id = r.result_id AND pre.stage = 'pre'
LEFT JOIN stats infer ON infer.result_id = r.result_id AND infer.stage = 'infer'
LEFT JOIN stats post ON post.result_id = r.result_id AND post.stage = 'post'
LEFT JOIN stats total ON total.result_id = r.result_id AND total.stage = 'total'
LEFT JOIN parity p ON p.result_id = r.result_id
LEFT JOIN accuracy a ON a.result_id = r.result_id
"""


def now() -> datetime:
    return datetime.now(UTC)


def _is_lock_error(error: Exception) -> bool:
    return "lock" in str(error).lower()


@contextmanager
def connect(db: str | Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S):
    """A short-lived connection; waits (bounded) while another process holds the file. A shared store
    (engine/database.py) takes many writers at once and needs no waiting."""
    if database.is_shared(db):
        with database.open_shared(db) as con:
            yield con
        return
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(db), read_only=read_only)
            break
        except duckdb.IOException as error:
            if not _is_lock_error(error):
                raise BenchError(f"database {db} cannot be opened: {error}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"database {db} is held by another process for over {wait_s:g} s: {error}") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        except duckdb.Error as error:
            raise BenchError(f"database {db} cannot be opened: {error}") from None
    try:
        yield con
    finally:
        con.close()


def _tables(con) -> set[str]:
    """This database's own tables (a shared store's connection also sees its PostgreSQL catalog's)."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = current_schema()"
    ).fetchall()
    return {row[0] for row in rows}


def _version(con) -> int:
    tables = _tables(con)
    if "schema_version" not in tables:
        return 0 if not tables else -1
    rows = con.execute("SELECT max(version) FROM schema_version").fetchall()
    return int(rows[0][0] or 0)


def _usable_version(con, db) -> int:
    """The schema version, or a clear refusal: tables of something else, or a newer engine's schema."""
    version = _version(con)
    name = database.display(db)
    if version == -1:
        raise BenchError(f"{name} holds tables that are not a results database: choose another --db")
    if version > SCHEMA_VERSION:
        raise BenchError(
            f"{name} has schema version {version}, newer than this engine's {SCHEMA_VERSION}: upgrade the engine"
        )
    return version


def ensure_schema(db: str | Path) -> None:
    """Create or migrate the schema; back the file up before migrating existing data. In a shared store several
    machines may start at once: one creates the schema, the others' commits conflict and they find it made."""
    if database.is_shared(db):
        for attempt in range(SHARED_SCHEMA_ATTEMPTS):
            try:
                _migrate(db)
                return
            except (duckdb.TransactionException, duckdb.CatalogException) as error:
                # A commit conflict, or a table another machine's migration committed after this one's
                # snapshot ("already exists"): the next attempt reads the version again and finds it made.
                lost_race = isinstance(error, duckdb.TransactionException) or "already exists" in str(error)
                if not lost_race or attempt == SHARED_SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
    _migrate(db)


def _migrate(db) -> None:
    from engine.config import UNSTABLE_CV

    shared = database.is_shared(db)
    existed = not shared and Path(db).exists() and Path(db).stat().st_size > 0
    with connect(db) as con:
        version = _usable_version(con, db)
        if version == SCHEMA_VERSION:
            return
        if existed and version > 0:
            con.execute("CHECKPOINT")
    if existed and version > 0:
        # A shared store needs no copy: DuckLake keeps the snapshot before the migration readable.
        shutil.copyfile(db, Path(db).with_name(f"{Path(db).name}.bak-v{version}"))
    with connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            version = _usable_version(con, db)  # again, in this transaction: another writer may have migrated
            if version == SCHEMA_VERSION:
                con.execute("ROLLBACK")
                return
            if version == 0:
                con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    con.execute(_for_store(statement, shared))
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [target, now()])
            con.execute(RESULTS_SUMMARY_VIEW.format(unstable_cv=UNSTABLE_CV))
            con.execute("COMMIT")
        except Exception:
            _rollback(con)
            raise


def _for_store(statement: str, shared: bool) -> str:
    """DuckLake has no PRIMARY KEY: ids are generated unique (uuid) and imports check identity themselves."""
    return statement.replace(" PRIMARY KEY", " NOT NULL") if shared else statement


def apply_migrations_up_to(db: str | Path, version: int) -> None:
    """Build an old schema on purpose (tests of the migration path)."""
    with connect(db) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        for target in range(1, version + 1):
            for statement in MIGRATIONS[target]:
                con.execute(_for_store(statement, database.is_shared(db)))
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [target, now()])


def check_readable(db: str | Path) -> None:
    """Fail early, writing nothing, when the file is from a newer engine or not a results DB."""
    if not database.exists(db):
        return
    with connect(db, read_only=True) as con:
        _usable_version(con, db)


# Writes. In a shared store two machines' commits can touch the same Parquet file (finishing two runs, say):
# DuckLake refuses the second with a conflict, and the whole write is simply done again on the new snapshot.

SHARED_WRITE_ATTEMPTS = 20


def _rollback(con) -> None:
    """Undo an open transaction; after a failed COMMIT there is none left, and the commit's error is the one to
    report (retry_conflicts reads it)."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass


def retry_conflicts(write):
    """Re-runs a write whose DuckLake commit conflicted; a failed commit wrote nothing, so running again is safe."""

    @functools.wraps(write)
    def retried(db, *args, **kwargs):
        for attempt in range(SHARED_WRITE_ATTEMPTS):
            try:
                return write(db, *args, **kwargs)
            except duckdb.TransactionException as error:
                if (
                    not database.is_shared(db)
                    or "conflict" not in str(error).lower()
                    or attempt == SHARED_WRITE_ATTEMPTS - 1
                ):
                    raise
                time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
        raise AssertionError("unreachable")

    return retried


@retry_conflicts
def upsert_machine(db, fingerprint: dict) -> None:
    with connect(db) as con:
        exists = con.execute("SELECT 1 FROM machines WHERE machine_id = ?", [fingerprint["machine_id"]]).fetchall()
        if exists:
            con.execute(
                "UPDATE machines SET label = ?, os = ?, python = ?, fingerprint = ? WHERE machine_id = ?",
                [
                    fingerprint["label"],
                    fingerprint["os"],
                    fingerprint["python"],
                    json.dumps(fingerprint),
                    fingerprint["machine_id"],
                ],
            )
            return
        con.execute(
            "INSERT INTO machines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                fingerprint["machine_id"],
                fingerprint["label"],
                fingerprint["cpu_model"],
                fingerprint["arch"],
                fingerprint["physical_cores"],
                fingerprint["logical_cores"],
                fingerprint["ram_gb"],
                fingerprint["isa_flags"],
                fingerprint["gpus"],
                fingerprint["os"],
                fingerprint["python"],
                json.dumps(fingerprint),
                now(),
            ],
        )


@retry_conflicts
def insert_run(db, run: dict) -> None:
    with connect(db) as con:
        con.execute(
            """INSERT INTO runs (run_id, started_at, status, machine_id, machine_label, model, model_sha256,
                   model_source, weights_trained, imgsz, images, config, libraries, pid, model_gflops)
               VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                run["run_id"],
                run["started_at"],
                run["machine_id"],
                run["machine_label"],
                run["model"],
                run["model_sha256"],
                run["model_source"],
                run["weights_trained"],
                run["imgsz"],
                json.dumps(run["images"]),
                json.dumps(run["config"]),
                json.dumps(run["libraries"]),
                run["pid"],
                run.get("model_gflops"),
            ],
        )


def machine_peak(db, machine_id: str, threads: int) -> dict | None:
    """The latest peak measured on this machine with this many threads, or None."""
    with connect(db, read_only=True) as con:
        rows = con.execute(
            "SELECT gflops_fp32, gflops_bf16, gops_int8, method, CAST(measured_at AS VARCHAR) FROM machine_peaks "
            "WHERE machine_id = ? AND threads = ? ORDER BY measured_at DESC LIMIT 1",
            [machine_id, threads],
        ).fetchall()
    if not rows:
        return None
    return dict(zip(("gflops_fp32", "gflops_bf16", "gops_int8", "method", "measured_at"), rows[0]))


@retry_conflicts
def insert_machine_peak(db, machine_id: str, peak: dict) -> None:
    """peak's `measured_at` (ISO text, as engine.peak keeps it) is when it was measured; without one, now."""
    measured_at = datetime.fromisoformat(peak["measured_at"]) if peak.get("measured_at") else now()
    with connect(db) as con:
        con.execute(
            "INSERT INTO machine_peaks (machine_id, measured_at, threads, gflops_fp32, method, gflops_bf16, "
            "gops_int8) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                machine_id,
                measured_at,
                peak["threads"],
                peak["gflops_fp32"],
                peak["method"],
                peak.get("gflops_bf16"),
                peak.get("gops_int8"),
            ],
        )


@retry_conflicts
def record_in_flight(db, result_id: str, requests: int, images_per_s: float | None, how: dict) -> None:
    """Add the in-flight figure (or, with images_per_s None, why there is none) to a stored result."""
    with connect(db) as con:
        settings = json.loads(
            con.execute("SELECT settings FROM results WHERE result_id = ?", [result_id]).fetchone()[0] or "{}"
        )
        con.execute(
            "UPDATE results SET in_flight = ?, in_flight_ips = ?, settings = ? WHERE result_id = ?",
            [requests, images_per_s, json.dumps({**settings, "in_flight": how}), result_id],
        )


@retry_conflicts
def record_profile(db, result_id: str, figure) -> None:
    """A stored result's profile (an engine.profiles.ProfileFigure): its rows, and in its settings the profiler, the
    calls and any error, in one transaction."""
    with connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            settings = json.loads(
                con.execute("SELECT settings FROM results WHERE result_id = ?", [result_id]).fetchone()[0] or "{}"
            )
            how = {"profiler": figure.profiler, "calls": figure.calls, "error": figure.error}
            con.execute(
                "UPDATE results SET settings = ? WHERE result_id = ?",
                [json.dumps({**settings, "profile": how}), result_id],
            )
            _insert_dataclass_rows(con, "profiles", result_id, figure.rows)
            con.execute("COMMIT")
        except Exception:
            _rollback(con)
            raise


def profiles(db, run_id: str):
    """A run's profiles: each result's rows with its runtime, precision, batch, mode and inference median."""
    return _query(
        db,
        """SELECT p.*, s.runtime, s.precision, s.batch, s.mode, s.infer_ms,
                  json_extract_string(s.settings, '$.profile.profiler') AS profiler
           FROM profiles p JOIN results_summary s USING (result_id) WHERE s.run_id = ?
           ORDER BY s.runtime, s.precision, s.batch, s.mode, p.module, p.op_type""",
        [run_id],
        min_version=11,
    )


def profile_settings(db, run_id: str):
    """Each completed result's profile settings (profiler, calls, error) where a profile was asked for."""
    return _query(
        db,
        """SELECT result_id, runtime, precision, batch, mode, infer_ms,
                  json_extract_string(settings, '$.profile.profiler') AS profiler,
                  json_extract(settings, '$.profile.calls')::INTEGER AS calls,
                  json_extract_string(settings, '$.profile.error') AS error
           FROM results_summary WHERE run_id = ? AND json_extract(settings, '$.profile') IS NOT NULL
           ORDER BY runtime, precision, batch, mode""",
        [run_id],
    )


@retry_conflicts
def finish_run(db, run_id: str, status: str, error: str | None = None) -> None:
    with connect(db) as con:
        con.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE run_id = ?", [status, now(), error, run_id]
        )


def json_column(value, empty=None):
    """A JSON column's value as DuckDB returns it (text), parsed; one already parsed as it is; NULL (None, or
    pandas' NaN) as `empty`."""
    if isinstance(value, str):
        return json.loads(value)
    return value if isinstance(value, (dict, list)) else empty


def status_and_reason(status: str, error: str | None) -> str:
    """A run's status as people read it: "completed", or with the reason finish_run stored, "cancelled
    (interrupted by Ctrl-C or SIGTERM)", "partial (1 result(s) failed)"."""
    return f"{status} ({error})" if status != "completed" and isinstance(error, str) and error else status


@retry_conflicts
def insert_reference_detections(db, run_id: str, reference: str, detections: list[dict]) -> None:
    """The parity reference's final boxes of a run, what missed boxes are drawn from."""
    if not detections:
        return
    with connect(db) as con:
        con.executemany(
            "INSERT INTO reference_detections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    run_id,
                    reference,
                    d["image"],
                    d["det_index"],
                    d["class_id"],
                    d["class_name"],
                    d["score"],
                    d["x1"],
                    d["y1"],
                    d["x2"],
                    d["y2"],
                ]
                for d in detections
            ],
        )


# ResultRecord's fields and the results table's columns, one by one (tests/test_records.py holds them together);
# the store itself fills the two it owns.
RESULT_COLUMNS = {
    "result_id": "result_id",
    "run_id": "run_id",
    "runtime": "runtime",
    "precision": "precision",
    "batch": "batch",
    "status": "status",
    "mode": "mode",
    "device": "device",
    "error": "error",
    "imgsz": "imgsz",
    "input_shape": "input_shape",
    "threads": "threads",
    "settings": "settings",
    "export_cached": "export_cached",
    "export_s": "export_s",
    "load_s": "load_s",
    "warmup": "warmup",
    "model_file": "model_file",
    "in_flight": "in_flight",
    "in_flight_ips": "in_flight_ips",
    "peak_memory_mb": "peak_memory_mb",
    "model_mb": "model_mb",
}
RESULT_COLUMNS_FILLED_BY_STORE = ("iterations", "finished_at")
STATS_COLUMNS = {
    "n": "n",
    "mean": "mean_ms",
    "median": "median_ms",
    "p90": "p90_ms",
    "p99": "p99_ms",
    "min": "min_ms",
    "max": "max_ms",
    "stdev": "stdev_ms",
    "ci_low": "ci_low_ms",
    "ci_high": "ci_high_ms",
    "cv": "cv",
}  # measure.Stats' fields and the stats table's columns


def _result_values(record) -> list:
    values = []
    for name in RESULT_COLUMNS:
        value = getattr(record, name)
        if name == "settings":
            value = json.dumps(value or {})
        elif name == "input_shape" and value is not None:
            value = list(value)
        values.append(value)
    return values + [len(record.samples), now()]


def _insert_dataclass_rows(con, table: str, result_id: str, rows) -> None:
    """Rows of one dataclass type, each column its field of the same name, after the result's id."""
    from dataclasses import fields

    rows = list(rows)
    if not rows:
        return
    columns = [f.name for f in fields(rows[0])]
    con.executemany(
        f"INSERT INTO {table} (result_id, {', '.join(columns)}) VALUES (?{', ?' * len(columns)})",
        [[result_id, *(getattr(row, column) for column in columns)] for row in rows],
    )


@retry_conflicts
def insert_result(db, record) -> None:
    """One result (an engine.records.ResultRecord) with everything measured for it, in one transaction."""
    columns = [*RESULT_COLUMNS.values(), *RESULT_COLUMNS_FILLED_BY_STORE]
    with connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"INSERT INTO results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                _result_values(record),
            )
            if record.samples:
                con.executemany(
                    "INSERT INTO samples (result_id, iteration, decode_ns, pre_ns, infer_ns, post_ns, other_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        [record.result_id, i, s.decode, s.pre, s.infer, s.post, s.other]
                        for i, s in enumerate(record.samples)
                    ],
                )
            for stage, stats in record.stats.items():
                con.execute(
                    f"INSERT INTO stats (result_id, stage, {', '.join(STATS_COLUMNS.values())}) "
                    f"VALUES (?, ?{', ?' * len(STATS_COLUMNS)})",
                    [record.result_id, stage, *(getattr(stats, name) for name in STATS_COLUMNS)],
                )
            _insert_dataclass_rows(con, "detections", record.result_id, record.detections)
            _insert_dataclass_rows(con, "result_images", record.result_id, record.images)
            _insert_dataclass_rows(con, "parity", record.result_id, [record.parity] if record.parity else [])
            _insert_dataclass_rows(con, "accuracy", record.result_id, [record.accuracy] if record.accuracy else [])
            con.execute("COMMIT")
        except Exception:
            _rollback(con)
            raise


@retry_conflicts
def mark_interrupted_runs(db, is_alive, host: str) -> list[str]:
    """This host's runs left 'running' by a process that no longer exists are marked 'interrupted'. Runs of
    other hosts (a shared store, imported bundles) are theirs to judge: their pids mean nothing here."""
    with connect(db) as con:
        rows = con.execute(
            "SELECT run_id, pid, json_extract_string(config, '$.host') FROM runs WHERE status = 'running'"
        ).fetchall()
        dead = [run_id for run_id, pid, run_host in rows if run_host in (None, host) and not is_alive(pid)]
        for run_id in dead:
            con.execute(
                "UPDATE runs SET status = 'interrupted', error = 'the engine process stopped before the run ended' "
                "WHERE run_id = ?",
                [run_id],
            )
    return dead


# Reads: each returns a pandas DataFrame; filters are always parameters, never pasted into SQL.

SUMMARY_FILTERS = {
    "run_id": "run_id",
    "machine_id": "machine_id",
    "model": "model",
    "runtime": "runtime",
    "precision": "precision",
    "batch": "batch",
    "status": "status",
}


def _where(filters: dict | None, columns: dict) -> tuple[str, list]:
    clauses, params = [], []
    for key, values in (filters or {}).items():
        if values is None or key not in columns and key not in ("since", "until"):
            continue
        if key == "since":
            clauses.append("started_at >= ?")
            params.append(values)
            continue
        if key == "until":
            clauses.append("started_at <= ?")
            params.append(values)
            continue
        values = values if isinstance(values, (list, tuple, set)) else [values]
        if not values:
            continue
        clauses.append(f"{columns[key]} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _query(db, sql: str, params: list | None = None, min_version: int = 1):
    import pandas as pd

    if not database.exists(db):
        return pd.DataFrame()
    with connect(db, read_only=True) as con:
        if _version(con) < min_version:
            return pd.DataFrame()
        return con.execute(sql, params or []).df()


def results_summary(db, filters: dict | None = None):
    where, params = _where(filters, SUMMARY_FILTERS)
    return _query(db, f"SELECT * FROM results_summary{where} ORDER BY started_at, runtime, precision, batch", params)


def runs(db, filters: dict | None = None):
    where, params = _where(filters, {"run_id": "run_id", "machine_id": "machine_id", "status": "status"})
    return _query(db, f"SELECT * FROM runs{where} ORDER BY started_at DESC", params)


# A shared store has no primary keys: two machines of the same hardware seen first at the same moment can both
# insert their row. Reads take the first one seen.
UNIQUE_MACHINES = (
    "SELECT * FROM machines QUALIFY row_number() OVER (PARTITION BY machine_id ORDER BY first_seen, label) = 1"
)


def machines(db):
    return _query(
        db,
        f"""SELECT m.*, nullif(json_extract_string(m.fingerprint, '$.cpu_id'), '') AS cpu_id,
                  count(r.run_id) AS runs, min(r.started_at) AS first_run, max(r.started_at) AS last_run,
                  list(DISTINCT r.machine_label ORDER BY r.machine_label)
                      FILTER (WHERE r.machine_label IS NOT NULL) AS run_labels
           FROM ({UNIQUE_MACHINES}) m LEFT JOIN runs r USING (machine_id)
           GROUP BY ALL ORDER BY last_run DESC NULLS LAST""",
    )


def detections(db, run_id: str):
    return _query(
        db,
        """SELECT d.*, r.runtime, r.precision, r.batch FROM detections d JOIN results r USING (result_id)
           WHERE r.run_id = ? ORDER BY r.runtime, r.precision, r.batch, d.image, d.det_index""",
        [run_id],
    )


def result_images(db, run_id: str):
    return _query(
        db,
        """SELECT i.*, r.runtime, r.precision, r.batch FROM result_images i JOIN results r USING (result_id)
           WHERE r.run_id = ? ORDER BY r.runtime, r.precision, i.image""",
        [run_id],
    )


def reference_detections(db, run_id: str):
    """The parity reference's boxes; a result's missed boxes are those no detection's reference_index names."""
    return _query(
        db, "SELECT * FROM reference_detections WHERE run_id = ? ORDER BY image, det_index", [run_id], min_version=3
    )


def iteration_times(db, run_id: str):
    """Each measured iteration of a run's results: its total per image as the results' medians count it (pre +
    infer + post, plus the predictor's time outside those in ultralytics mode; engine/runner.py)."""
    return _query(
        db,
        """SELECT s.result_id, s.iteration,
                  (s.pre_ns + s.infer_ns + s.post_ns + coalesce(s.other_ns, 0)) / r.batch / 1e6 AS total_ms
           FROM samples s JOIN results r USING (result_id) WHERE r.run_id = ? ORDER BY s.result_id, s.iteration""",
        [run_id],
        min_version=4,  # other_ns since v4
    )


# Reads shaped for the pages at fleet scale: each returns what a page draws, aggregated here, so that 100,000 runs
# cost a page no more rows than 10 do.
HISTORY_METRICS = frozenset(
    ("infer_ms", "total_ms", "pre_ms", "post_ms", "infer_p99_ms", "throughput_ips", "peak_memory_mb")
)
HISTORY_SPLITS = frozenset(("runtime", "precision", "batch", "mode", "imgsz", "threads", "machine_label", "machine_id"))


def run_models(db) -> list[str]:
    """Every model a run names, for the sidebar's picker."""
    models = _query(db, "SELECT DISTINCT model FROM runs WHERE model IS NOT NULL ORDER BY model")
    return [] if models.empty else models["model"].tolist()


def history_choices(db, filters: dict | None = None):
    """One row per configuration (machine, model, runtime, precision, batch, mode, image size, threads) with a
    completed result: the machine's newest label, the first and last run's start and the number of results; the
    machine that ran last first."""
    where, params = _where({**(filters or {}), "status": ["completed"]}, SUMMARY_FILTERS)
    return _query(
        db,
        f"""SELECT machine_id, arg_max(machine_label, last_at) OVER (PARTITION BY machine_id) AS machine_label,
                  model, runtime, precision, batch, mode, imgsz, threads, first_at, last_at, results
           FROM (SELECT machine_id, arg_max(machine_label, started_at) AS machine_label, model, runtime, precision,
                        batch, mode, imgsz, threads, min(started_at) AS first_at, max(started_at) AS last_at,
                        count(*) AS results
                 FROM results_summary{where}
                 GROUP BY machine_id, model, runtime, precision, batch, mode, imgsz, threads)
           ORDER BY max(last_at) OVER (PARTITION BY machine_id) DESC, machine_id, last_at DESC""",
        params,
    )


def latest_runs(db, filters: dict | None = None, per_model: bool = False):
    """Each machine's newest run that completed a result (its runs row), or each machine's newest of each model;
    the machine that ran last first."""
    where, params = _where({**(filters or {}), "status": ["completed"]}, SUMMARY_FILTERS)
    return _query(
        db,
        f"""SELECT * FROM runs WHERE run_id IN (
                SELECT arg_max(run_id, started_at) FROM results_summary{where}
                GROUP BY machine_id{", model" if per_model else ""})
            ORDER BY started_at DESC""",
        params,
    )


def runs_with_results(db, filters: dict | None, limit: int, include: tuple[str, ...] = ()):
    """The runs (newest first) with a result that matches: the newest `limit` of them and those `include` names,
    each with `matching`, how many runs match in all."""
    where, params = _where(filters, SUMMARY_FILTERS)
    named = f" OR run_id IN ({', '.join('?' for _ in include)})" if include else ""
    return _query(
        db,
        f"""SELECT * FROM (
                SELECT *, count(*) OVER () AS matching, row_number() OVER (ORDER BY started_at DESC) AS newest
                FROM runs WHERE run_id IN (SELECT run_id FROM results_summary{where}))
            WHERE newest <= ?{named} ORDER BY started_at DESC""",
        [*params, limit, *include],
    ).drop(columns=["newest"], errors="ignore")


def fastest_candidates(db, filters: dict | None = None):
    """The completed results engine.ranking.fastest could pick per machine label, model and image size: the fastest
    whose parity did not fail and the faster ones whose parity failed (where every one failed, the fastest), in
    results_summary's order; results_at_size counts every completed result of the model at that size."""
    where, params = _where({**(filters or {}), "status": ["completed"]}, SUMMARY_FILTERS)  # never empty
    return _query(
        db,
        f"""WITH done AS (
                SELECT *, count(*) OVER (PARTITION BY model, imgsz) AS results_at_size
                FROM results_summary{where} AND isfinite(total_ms)),
            best AS (
                SELECT machine_label, model, imgsz, min(total_ms) AS any_ms,
                       min(total_ms) FILTER (WHERE parity_verdict IS DISTINCT FROM 'fail') AS trusted_ms
                FROM done GROUP BY machine_label, model, imgsz)
            SELECT done.* FROM done JOIN best USING (machine_label, model, imgsz)
            WHERE done.total_ms <= coalesce(best.trusted_ms, best.any_ms)
            ORDER BY started_at, runtime, precision, batch""",
        params,
    )


def machine_ids_named(db, name: str) -> list[str]:
    """The machines a name means: a machine id or its start, or a label the machine or one of its runs carries."""
    found = _query(
        db,
        """SELECT machine_id FROM runs WHERE machine_label = ? OR starts_with(machine_id, ?)
           UNION SELECT machine_id FROM machines WHERE label = ? OR starts_with(machine_id, ?)
           ORDER BY machine_id""",
        [name] * 4,
    )
    return [] if found.empty else found["machine_id"].tolist()


def recommend_candidates(db, filters: dict | None = None):
    """Each configuration's latest completed result (machine, model, image size, runtime, precision, batch, mode,
    threads, device), with its total per image's p99 and 95% interval of the median: what a recommendation weighs."""
    where, params = _where({**(filters or {}), "status": ["completed"]}, SUMMARY_FILTERS)
    return _query(
        db,
        f"""SELECT s.*, t.p99_ms AS total_p99_ms, t.ci_low_ms AS total_ci_low_ms, t.ci_high_ms AS total_ci_high_ms
            FROM results_summary s LEFT JOIN stats t ON t.result_id = s.result_id AND t.stage = 'total'{where}
            QUALIFY row_number() OVER (
                PARTITION BY machine_id, model, imgsz, runtime, precision, batch, mode, threads, device
                ORDER BY started_at DESC, s.result_id) = 1
            ORDER BY total_ms""",
        params,
    )


def history_points(db, filters: dict | None, metric: str, splits: list[str], max_points: int):
    """A metric over time, one series per combination of the split columns: a run's median per series. Where a
    series has more runs than max_points, each point takes as many consecutive runs as it needs to stay within
    max_points: the median of their values, their minimum and maximum as low and high. A point of one run names it
    in run_id; runs counts each point's runs."""
    if metric not in HISTORY_METRICS or not set(splits) <= HISTORY_SPLITS:
        raise ValueError(f"no history of {metric} split by {splits}")
    where, params = _where({**(filters or {}), "status": ["completed"]}, SUMMARY_FILTERS)  # never empty
    where += f" AND {metric} IS NOT NULL"
    keys = "".join(f"{column}, " for column in splits)
    series = f"PARTITION BY {', '.join(splits)}" if splits else ""
    return _query(
        db,
        f"""WITH per_run AS (
                SELECT {keys}run_id, machine_id, started_at, median({metric}) AS value FROM results_summary{where}
                GROUP BY {keys}run_id, machine_id, started_at),
            numbered AS (
                SELECT *, (row_number() OVER ({series} ORDER BY started_at, run_id) - 1)
                          // ceil(count(*) OVER ({series}) / ?)::BIGINT AS bucket FROM per_run)
            SELECT {keys}quantile_disc(started_at, 0.5) AS started_at, median(value) AS value, min(value) AS low,
                   max(value) AS high, count(*) AS runs, CASE WHEN count(*) = 1 THEN any_value(run_id) END AS run_id,
                   count(DISTINCT machine_id) AS machines
            FROM numbered GROUP BY {keys}bucket ORDER BY {keys}started_at""",
        [*params, max_points],
    )


def results_page(db, filters: dict | None, limit: int, offset: int):
    """One page of the results that match, newest run first (each run's own order kept), and how many match."""
    where, params = _where(filters, SUMMARY_FILTERS)
    page = _query(
        db,
        f"""SELECT * FROM results_summary{where}
            ORDER BY started_at DESC, run_id, runtime, precision, batch LIMIT ? OFFSET ?""",
        [*params, limit, offset],
    )
    matching = _query(db, f"SELECT count(*) AS n FROM results_summary{where}", params)
    return page, 0 if matching.empty else int(matching["n"].iloc[0])


def run_table(db, run_id: str, table: str):
    """A run's rows of one table, for exports."""
    queries = {
        "results_summary": "SELECT * FROM results_summary WHERE run_id = ?",
        "runs": "SELECT * FROM runs WHERE run_id = ?",
        "results": "SELECT * FROM results WHERE run_id = ?",
        "samples": "SELECT s.* FROM samples s JOIN results r USING (result_id) WHERE r.run_id = ?",
        "stats": "SELECT s.* FROM stats s JOIN results r USING (result_id) WHERE r.run_id = ?",
        "detections": "SELECT d.* FROM detections d JOIN results r USING (result_id) WHERE r.run_id = ?",
    }
    return _query(db, queries[table], [run_id])


# Bundles: a run's rows of every table, written out and merged into another database.

BUNDLE_TABLES = {
    "machines": f"SELECT m.* FROM ({UNIQUE_MACHINES}) m JOIN runs r USING (machine_id) WHERE r.run_id = ?",
    "machine_peaks": "SELECT p.* FROM machine_peaks p JOIN runs r USING (machine_id) WHERE r.run_id = ?",
    "runs": "SELECT * FROM runs WHERE run_id = ?",
    "results": "SELECT * FROM results WHERE run_id = ?",
    "samples": "SELECT s.* FROM samples s JOIN results r USING (result_id) WHERE r.run_id = ?",
    "stats": "SELECT s.* FROM stats s JOIN results r USING (result_id) WHERE r.run_id = ?",
    "detections": "SELECT d.* FROM detections d JOIN results r USING (result_id) WHERE r.run_id = ?",
    "result_images": "SELECT i.* FROM result_images i JOIN results r USING (result_id) WHERE r.run_id = ?",
    "parity": "SELECT p.* FROM parity p JOIN results r USING (result_id) WHERE r.run_id = ?",
    "accuracy": "SELECT a.* FROM accuracy a JOIN results r USING (result_id) WHERE r.run_id = ?",
    "profiles": "SELECT p.* FROM profiles p JOIN results r USING (result_id) WHERE r.run_id = ?",
    "reference_detections": "SELECT * FROM reference_detections WHERE run_id = ?",
}
RUN_IDENTITY = ("run_id", "started_at", "machine_id", "model_sha256")
# A run's own rows, which delete_run_rows removes: keyed by result, then by run (results after the rows naming them).
# The machine's rows stay (other runs share them); a table added to bundles must be added here too.
RESULT_TABLES = ("samples", "stats", "detections", "result_images", "parity", "accuracy", "profiles")
RUN_TABLES = ("results", "reference_detections", "runs")
assert set(BUNDLE_TABLES) == {"machines", "machine_peaks", *RESULT_TABLES, *RUN_TABLES}


def export_run_arrow(db, run_id: str) -> dict:
    """Every table's rows of one run as Arrow tables (tables this file's schema lacks are left out)."""
    with connect(db, read_only=True) as con:
        present = _tables(con)
        return {
            table: con.execute(query, [run_id]).fetch_arrow_table()
            for table, query in BUNDLE_TABLES.items()
            if table in present
        }


def require_run(db, run_id: str) -> None:
    """Refuses a database that is not there, or a run that is not in it; a shared store named without its
    password (export printed the address as given)."""
    from engine.config import BenchError

    if not database.exists(db):
        raise BenchError(f"database {database.display(db)} does not exist")
    if run_identity(db, run_id) is None:
        raise BenchError(f"run {run_id} is not in {database.display(db)}: `python -m engine runs` lists the runs there")


def run_identity(db, run_id: str) -> tuple | None:
    with connect(db, read_only=True) as con:
        if "runs" not in _tables(con):  # a store no run has written to yet
            return None
        columns = ", ".join(f"CAST({column} AS VARCHAR)" for column in RUN_IDENTITY)  # text: no pytz needed
        rows = con.execute(f"SELECT {columns} FROM runs WHERE run_id = ?", [run_id]).fetchall()
    return tuple(str(value) for value in rows[0]) if rows else None


# What a table's rows must name: the run's id, one of its results' ids, or its machine's id.
OWNER_COLUMN = {
    "runs": "run_id",
    "results": "run_id",
    "reference_detections": "run_id",
    "machines": "machine_id",
    "machine_peaks": "machine_id",
    **dict.fromkeys(RESULT_TABLES, "result_id"),
}
REQUIRED_BUNDLE_TABLES = ("machines", "runs", "results")


@functools.cache
def table_columns() -> dict[str, tuple[tuple[str, ...], frozenset[str]]]:
    """Each bundle table's columns in this schema, and the ones it was created with (every bundle of it has
    those; later columns may be missing from an older engine's bundle), from the migrations themselves."""
    created: dict[str, frozenset[str]] = {}
    with duckdb.connect(":memory:") as con:
        for version in range(1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            for table in BUNDLE_TABLES:
                if table in _tables(con) and table not in created:
                    created[table] = frozenset(_columns(con, table))
        return {table: (tuple(_columns(con, table)), created[table]) for table in BUNDLE_TABLES}


def _columns(con, table: str) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position", [table]
        ).fetchall()
    ]


def parquet_columns(path: Path) -> list[str]:
    """A Parquet file's column names; duckdb.Error when it is not readable Parquet."""
    with duckdb.connect(":memory:") as con:
        return [row[0] for row in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()]


def stage_bundle_rows(files: dict[str, Path]):
    """A bundle's tables loaded into an in-memory database of this schema (with its primary keys, whatever the
    target), so rows that do not fit (a type, a NULL, a key twice) fail here and never in the target. Returns the
    connection; the caller closes it. duckdb.Error where the rows do not fit, naming the table."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        for version in range(1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
        for table, path in files.items():
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)", [str(path)])
            except duckdb.Error as error:
                raise BundleRowsError(table, error) from None
        return con
    except Exception:
        con.close()
        raise


class BundleRowsError(Exception):
    def __init__(self, table: str, error: Exception):
        super().__init__(f"tables/{table}.parquet holds rows this schema cannot take: {error}")


def foreign_rows(con, run_id: str) -> list[str]:
    """What in staged rows does not belong to the run: a row of another run, of a result not the run's, of a
    machine not the run's, and a run that is not exactly one row."""
    problems = []
    ((runs, machine_id),) = con.execute("SELECT count(*), any_value(machine_id) FROM runs").fetchall()
    if runs != 1 or con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0] != 1:
        problems.append(f"tables/runs.parquet holds {runs} run(s), not the one run its manifest names")
    owners = {
        "run_id": ("= ?", [run_id]),
        "machine_id": ("IS NOT DISTINCT FROM ?", [machine_id]),
        "result_id": ("IN (SELECT result_id FROM results WHERE run_id = ?)", [run_id]),
    }
    for table, column in OWNER_COLUMN.items():
        condition, params = owners[column]
        stray = con.execute(
            f"SELECT count(*) FROM {table} WHERE {column} IS NULL OR NOT ({column} {condition})", params
        ).fetchall()[0][0]
        if stray:
            problems.append(f"tables/{table}.parquet holds {stray} row(s) of another {column.removesuffix('_id')}")
    if con.execute("SELECT count(*) FROM machines").fetchall()[0][0] > 1:
        problems.append("tables/machines.parquet holds more than the run's machine")
    return problems


def identity_matches(con, identity: list) -> bool:
    """Whether a run's row has the identity a manifest names (run_id, started_at, machine_id, model_sha256), its
    start compared as an instant: two machines write the same instant in different time zones."""
    run_id, started_at, machine_id, model_sha256 = identity
    rows = con.execute(
        "SELECT count(*) FROM runs WHERE run_id = ? AND started_at = TRY_CAST(? AS TIMESTAMPTZ) "
        "AND CAST(machine_id AS VARCHAR) = ? AND coalesce(CAST(model_sha256 AS VARCHAR), 'None') = ?",
        [run_id, started_at, machine_id, model_sha256],
    ).fetchall()
    return rows[0][0] == 1


def run_with_identity(db, identity: list) -> bool:
    with connect(db, read_only=True) as con:
        return identity_matches(con, identity)


def relocate_images(con, paths: dict[str, str]) -> None:
    """Point a staged run's annotated images at where they are written here (by file name); a path to an image the
    bundle does not carry means nothing on this machine and becomes NULL."""
    con.execute(
        "CREATE TEMP TABLE relocated AS SELECT unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[]) AS path",
        [list(paths), list(paths.values())],
    )
    con.execute(
        "UPDATE result_images SET annotated_path = (SELECT path FROM relocated "
        "WHERE name = regexp_extract(annotated_path, '[^/\\\\]*$'))"
    )


def write_staged(con, folder: Path) -> dict[str, Path]:
    """Every staged table as a Parquet file in folder: what the import reads is what was checked."""
    written = {}
    for table in BUNDLE_TABLES:
        target = folder / f"{table}.parquet"
        literal = str(target).replace("'", "''")  # COPY takes no parameter for its file
        con.execute(f"COPY {table} TO '{literal}' (FORMAT parquet)")
        written[table] = target
    return written


def result_ids_present(db, result_ids: list[str]) -> int:
    """How many of these result ids the database already holds (a shared store has no primary key to refuse them)."""
    if not database.exists(db) or not result_ids:
        return 0
    with connect(db, read_only=True) as con:
        if "results" not in _tables(con):
            return 0
        return con.execute(
            "SELECT count(*) FROM results WHERE result_id IN (SELECT unnest(?))", [result_ids]
        ).fetchall()[0][0]


@retry_conflicts
def import_run_parquet(db, files: dict[str, Path]) -> None:
    """Merge one run's checked Parquet files (write_staged) in one transaction; the machine and its peaks only
    where new."""
    with connect(db) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for table, path in files.items():
                if table not in BUNDLE_TABLES:
                    raise BenchError(f"bundle names an unknown table {table!r}")
                if table == "machines":
                    con.execute(
                        "INSERT INTO machines BY NAME SELECT * FROM read_parquet(?) "
                        "WHERE machine_id NOT IN (SELECT machine_id FROM machines)",
                        [str(path)],
                    )
                elif table == "machine_peaks":  # a machine's peaks travel with each of its runs: add only new ones
                    con.execute(
                        "INSERT INTO machine_peaks BY NAME SELECT * FROM read_parquet(?) p WHERE NOT EXISTS "
                        "(SELECT 1 FROM machine_peaks q WHERE q.machine_id = p.machine_id "
                        "AND q.measured_at = p.measured_at AND q.threads = p.threads)",
                        [str(path)],
                    )
                else:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)", [str(path)])
            con.execute("COMMIT")
        except Exception:
            _rollback(con)
            raise


@retry_conflicts
def delete_run_rows(db, run_id: str) -> int:
    """Every row of one run, in one transaction (its machine and the machine's peaks stay: other runs share them);
    returns how many results it had. engine/deletion.py writes the run's bundle first."""
    with connect(db) as con:
        present = _tables(con)
        con.execute("BEGIN TRANSACTION")
        try:
            results = con.execute("SELECT count(*) FROM results WHERE run_id = ?", [run_id]).fetchone()[0]
            for table in RESULT_TABLES:
                if table in present:
                    con.execute(
                        f"DELETE FROM {table} WHERE result_id IN (SELECT result_id FROM results WHERE run_id = ?)",
                        [run_id],
                    )
            for table in RUN_TABLES:
                if table in present:
                    con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            con.execute("COMMIT")
        except Exception:
            _rollback(con)
            raise
    return results


# Shared-store upkeep: each committed write adds Parquet files (one per table it touches); reads slow down as
# they pile up (100 runs: 8,000 files, a results_summary read of 0.5 s). Merging them is DuckLake's own job.


def compact_shared(db) -> tuple[int, int]:
    """Merge the store's small data files and delete the replaced ones; returns the file counts before, after."""
    count = f"SELECT count(*) FROM ducklake_list_files('{database.LAKE}', ?)"
    with connect(db) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
                "AND table_schema = current_schema() AND table_type = 'BASE TABLE'"
            ).fetchall()
        ]

        def files() -> int:
            return sum(con.execute(count, [table]).fetchone()[0] for table in tables)

        before = files()
        con.execute(f"CALL ducklake_merge_adjacent_files('{database.LAKE}')")
        con.execute(f"CALL ducklake_cleanup_old_files('{database.LAKE}', cleanup_all => true)")
        return before, files()
