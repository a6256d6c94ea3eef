"""--in-flight N: after the one-at-a-time latency, images/s with N requests in flight, for the runtimes that
offer it (OpenVINO: THROUGHPUT hint + AsyncInferQueue; ONNX Runtime: a session per request on its own thread),
stored with the result and shown on the dashboard."""

import json

import pytest

from engine import api
from tests.conftest import engine_run
from tests.dashboard_app import open_page


@pytest.fixture(scope="module")
def in_flight_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("in-flight") / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime,openvino,torchscript", "--iters", "2", "--in-flight", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return db


def test_runtimes_that_offer_it_report_images_per_second_in_flight(in_flight_db):
    summary = api.results_summary(in_flight_db).set_index("runtime")
    for runtime in ("onnxruntime", "openvino"):
        row = summary.loc[runtime]
        assert row["in_flight"] == 2 and row["in_flight_ips"] > 0, runtime
        assert json.loads(row["settings"])["in_flight"], f"{runtime} records how the requests were run"
    assert json.loads(summary.loc["openvino", "settings"])["in_flight"]["performance_hint"] == "THROUGHPUT"
    assert summary.loc["torchscript", ["in_flight", "in_flight_ips"]].isna().all(), "not offered: nothing made up"


def test_the_leaderboard_shows_images_per_second_in_flight(in_flight_db):
    app = open_page(in_flight_db)
    assert not app.exception
    table = app.dataframe[0].value.set_index("runtime")
    assert table.loc["openvino", "in_flight_ips"] > 0


def test_in_flight_out_of_range_is_refused_before_anything_runs(tmp_path):
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "openvino", "--in-flight", "65")
    assert done.returncode == 2 and "requests in flight 65 is out of range" in done.stderr
    assert not db.exists()


def test_the_shared_report_carries_the_in_flight_figures(in_flight_db):
    from dashboard.report import run_report

    summary = api.results_summary(in_flight_db)
    run = api.runs(in_flight_db).iloc[0]
    report = run_report(run, None, summary, api.result_images(in_flight_db, run["run_id"]))
    assert "images/s in flight" in report
    assert f"{summary.set_index('runtime').loc['openvino', 'in_flight_ips']:.2f}" in report
    one_at_a_time = summary.assign(in_flight=None, in_flight_ips=None)  # a run without --in-flight
    assert "in flight" not in run_report(run, None, one_at_a_time, api.result_images(in_flight_db, run["run_id"]))
    assert "<th>peak MB</th>" in report, "the worker's peak memory, as on the dashboard"
    before_v8 = summary.assign(peak_memory_mb=None)
    assert "peak MB" not in run_report(run, None, before_v8, api.result_images(in_flight_db, run["run_id"]))
