"""--in-flight N: after the one-at-a-time latency, images/s with N requests in flight, for the runtimes that
offer it (OpenVINO: THROUGHPUT hint + AsyncInferQueue; ONNX Runtime: a session per request on its own thread),
stored with the result and shown on the dashboard."""

import json

import pytest

from engine import api
from tests.conftest import engine_run
from tests.dashboard_app import open_page


@pytest.fixture(scope="module")
def in_flight_run(tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("in-flight") / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime,openvino,torchscript", "--iters", "2", "--in-flight", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"db": db, "table": done.stdout}  # the CLI's closing table on stdout


@pytest.fixture(scope="module")
def in_flight_db(in_flight_run):
    return in_flight_run["db"]


def test_runtimes_that_offer_it_report_images_per_second_in_flight(in_flight_db):
    summary = api.results_summary(in_flight_db).set_index("runtime")
    for runtime in ("onnxruntime", "openvino"):
        row = summary.loc[runtime]
        assert row["in_flight"] == 2 and row["in_flight_ips"] > 0, runtime
        assert json.loads(row["settings"])["in_flight"], f"{runtime} records how the requests were run"
    assert json.loads(summary.loc["openvino", "settings"])["in_flight"]["performance_hint"] == "THROUGHPUT"
    assert summary.loc["torchscript", ["in_flight", "in_flight_ips"]].isna().all(), "not offered: nothing made up"


def test_the_cli_table_has_a_column_for_images_per_second_in_flight(in_flight_run):
    """The figures were only on progress lines, gone from the table a user reads at the end."""
    lines = in_flight_run["table"].splitlines()
    header = lines[0].split()
    assert "x2" in header, lines[0]
    column = header.index("x2") - 1  # "img/s x2" is two words; rows have one value per column
    summary = api.results_summary(in_flight_run["db"]).set_index("runtime")
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.split() and line.split()[0] in summary.index}
    for runtime in ("onnxruntime", "openvino"):
        assert float(rows[runtime][column]) == pytest.approx(summary.loc[runtime, "in_flight_ips"], abs=0.05)
    assert rows["torchscript"][column] == "-", "not offered: nothing made up"
    (legend,) = [line for line in lines if line.startswith("(medians")]
    assert "with 2 requests in flight" in legend


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
    assert f"{summary.set_index('runtime').loc['openvino', 'in_flight_ips']:.1f}" in report
    one_at_a_time = summary.assign(in_flight=None, in_flight_ips=None)  # a run without --in-flight
    assert "in flight" not in run_report(run, None, one_at_a_time, api.result_images(in_flight_db, run["run_id"]))
    assert "<th>peak MB</th>" in report, "the worker's peak memory, as on the dashboard"
    assert "<th>model MB</th>" in report, "the model's size on disk, as on the dashboard"
    before_v8 = summary.assign(peak_memory_mb=None, model_mb=None)
    older = run_report(run, None, before_v8, api.result_images(in_flight_db, run["run_id"]))
    assert "peak MB" not in older and "model MB" not in older
