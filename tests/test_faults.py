"""A runtime that crashes, is killed, hangs or raises costs its own result, not the run."""

import json
import time

import duckdb

from tests.conftest import engine_run
from tests.dashboard_app import open_page, text_of

FAULTS = {"YOLO_BENCH_EXTRA_RUNTIMES": "tests.fault_runtimes"}


def test_faulty_runtimes_fail_alone(tmp_path):
    db = tmp_path / "results.duckdb"
    done = engine_run(
        db,
        "--runtimes",
        "fault-segfault,fault-killed,fault-hang,fault-raise,fault-corrupt-export,onnxruntime",
        "--batch",
        "1",
        "--iters",
        "3",
        "--timeout",
        "25",
        "--json",
        env=FAULTS,
        timeout=600,
    )
    assert done.returncode == 1, "a run with failed results exits non-zero"
    document = json.loads(done.stdout)
    by_runtime = {r["runtime"]: r for r in document["results"]}
    assert by_runtime["onnxruntime"]["status"] == "completed"
    assert "crashed with SIGSEGV" in by_runtime["fault-segfault"]["error"]
    assert "crashed with SIGKILL" in by_runtime["fault-killed"]["error"]
    assert "timed out after 25 s" in by_runtime["fault-hang"]["error"]
    assert "injected failure in infer" in by_runtime["fault-raise"]["error"]
    assert "INVALID_PROTOBUF" in by_runtime["fault-corrupt-export"]["error"]
    assert "corrupt.onnx" in by_runtime["fault-corrupt-export"]["error"]
    with duckdb.connect(str(db), read_only=True) as con:
        stored = dict(con.execute("SELECT runtime, status FROM results_summary").fetchall())
        run_status = con.execute("SELECT status FROM runs").fetchall()[0][0]
    assert stored == {
        "fault-segfault": "failed",
        "fault-killed": "failed",
        "fault-hang": "failed",
        "fault-raise": "failed",
        "fault-corrupt-export": "failed",
        "onnxruntime": "completed",
    }
    assert run_status == "partial"

    overview = open_page(db)  # the dashboard stays up and says what happened to each
    assert not overview.exception
    failures = text_of(overview.error)
    for runtime, reason in [
        ("fault-segfault", "SIGSEGV"),
        ("fault-killed", "SIGKILL"),
        ("fault-hang", "timed out"),
        ("fault-raise", "injected failure"),
        ("fault-corrupt-export", "corrupt.onnx"),
    ]:
        assert f"{runtime}:fp32 batch 1" in failures and reason in failures, runtime
    assert len(overview.dataframe) > 0, "the completed ONNX Runtime result is still on the leaderboard"


def test_memory_hog_is_killed_at_its_limit_and_the_limit_is_recorded(tmp_path):
    db = tmp_path / "results.duckdb"
    done = engine_run(
        db,
        "--runtimes",
        "fault-memory,onnxruntime",
        "--iters",
        "3",
        "--memory-limit",
        "1500",
        "--json",
        env=FAULTS,
        timeout=600,
    )
    assert done.returncode == 1
    by_runtime = {r["runtime"]: r for r in json.loads(done.stdout)["results"]}
    assert "over the memory limit of 1500 MB" in by_runtime["fault-memory"]["error"]
    assert by_runtime["onnxruntime"]["status"] == "completed"
    with duckdb.connect(str(db), read_only=True) as con:
        settings = [json.loads(row[0]) for row in con.execute("SELECT settings FROM results").fetchall()]
    assert all(s["memory_limit_mb"] == 1500 and s["timeout_s"] == 600 for s in settings)
    failures = text_of(open_page(db).error)
    assert "fault-memory:fp32 batch 1" in failures and "memory limit" in failures


def test_a_crash_or_hang_in_flight_keeps_the_one_at_a_time_result(tmp_path):
    """The in-flight figure is measured after the result is stored; when it hangs, crashes or raises, the
    result stays completed with its latency, and says why it has no in-flight figure."""
    db = tmp_path / "results.duckdb"
    faults = {
        "fault-in-flight-hang": "the in-flight measurement did not end within 3",  # ~33 s, not --timeout
        "fault-in-flight-crash": "crashed with SIGSEGV",
        "fault-in-flight-raise": "injected failure in flight",
    }
    started = time.monotonic()
    done = engine_run(
        db,
        "--runtimes",
        ",".join([*faults, "onnxruntime"]),
        "--iters",
        "3",
        "--in-flight",
        "2",
        "--timeout",
        "600",
        "--json",
        env=FAULTS,
        timeout=600,
    )
    assert time.monotonic() - started < 300, "the hang cost its in-flight allowance, not the job's 600 s timeout"
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(r["status"] == "completed" for r in json.loads(done.stdout)["results"])
    with duckdb.connect(str(db), read_only=True) as con:
        rows = {
            row[0]: row[1:]
            for row in con.execute(
                "SELECT runtime, infer_ms, in_flight, in_flight_ips, settings FROM results_summary"
            ).fetchall()
        }
    assert rows["onnxruntime"][2] > 0
    for runtime, reason in faults.items():
        infer_ms, in_flight, in_flight_ips, settings = rows[runtime]
        assert infer_ms > 0 and in_flight == 2 and in_flight_ips is None, runtime
        assert reason in json.loads(settings)["in_flight"]["error"], runtime
        assert f"{runtime}:fp32 b1 in flight (2 requests): no figure" in done.stderr

    warnings = text_of(open_page(db).warning)
    for runtime, reason in faults.items():
        assert f"**{runtime}:fp32 batch 1** has no figure with 2 requests in flight" in warnings and reason in warnings
