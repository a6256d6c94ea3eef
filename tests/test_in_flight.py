"""--in-flight N: after the one-at-a-time latency, images/s end to end (preprocess, inference, postprocess of
decoded frames) with N batches in flight, for the runtimes that offer it (OpenVINO: THROUGHPUT hint +
AsyncInferQueue; ONNX Runtime: a session per request on its own thread), checked to find the boxes found one
at a time, stored with the result and shown on the dashboard."""

import json

import pytest

from engine import api
from engine.in_flight import IN_FLIGHT_MEASURES, same_boxes
from engine.pipeline import Detection
from tests.conftest import engine_run
from tests.dashboard_app import open_page


@pytest.fixture(scope="module")
def in_flight_run(tmp_path_factory, detecting_model) -> dict:
    """Of the model that finds boxes, so that the in-flight pipeline's boxes can be checked."""
    db = tmp_path_factory.mktemp("in-flight") / "results.duckdb"
    done = engine_run(
        db,
        "--model",
        str(detecting_model),
        "--runtimes",
        "onnxruntime,openvino,torchscript",
        "--iters",
        "2",
        "--in-flight",
        "2",
    )
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


def test_the_in_flight_figure_is_end_to_end_and_finds_the_same_boxes(in_flight_db):
    """Inference alone in flight was a runtime's ceiling, not what a stream of frames gets: each batch in flight
    is preprocessed and postprocessed too, and its boxes are those the one-at-a-time pipeline found."""
    summary = api.results_summary(in_flight_db).set_index("runtime")
    for runtime in ("onnxruntime", "openvino"):
        how = json.loads(summary.loc[runtime, "settings"])["in_flight"]
        assert how["measures"] == IN_FLIGHT_MEASURES, runtime
        boxes = how["boxes"]
        assert boxes["same_as_one_at_a_time"], (runtime, boxes)
        assert boxes["batches"] == 2 and boxes["boxes"] > 0, f"{runtime}: both images' batches checked, with boxes"


def detection(x1: float, class_id: int = 0) -> Detection:
    return Detection(x1, 10.0, x1 + 50.0, 90.0, 0.8, class_id)


def test_same_boxes_names_a_batch_whose_boxes_differ():
    expected = [[[detection(10.0)]], [[detection(200.0), detection(300.0, 2)]]]
    assert same_boxes(expected, {0: [[detection(10.5)]], 1: [[detection(200.0), detection(300.0, 2)]]}) == {
        "same_as_one_at_a_time": True,
        "batches": 2,
        "boxes": 3,
    }
    swapped = same_boxes(expected, {0: expected[1][0:1], 1: expected[0]})  # another batch's detections
    assert not swapped["same_as_one_at_a_time"] and swapped["difference"].startswith("batch 0 image 0")
    other_class = same_boxes(expected, {0: [[detection(10.0, 5)]], 1: expected[1]})
    assert not other_class["same_as_one_at_a_time"]
    slow = same_boxes(expected, {1: expected[1]})  # batch 0 never came round: left out, not failed
    assert slow == {"same_as_one_at_a_time": True, "batches": 1, "boxes": 2}


def test_the_cli_table_has_a_column_for_images_per_second_in_flight(in_flight_run):
    """The figures were only on progress lines, gone from the table a user reads at the end."""
    lines = in_flight_run["table"].splitlines()[1:]  # after the run's line, as `show` prints it
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


def test_the_ultralytics_mode_runs_predictors_in_flight_each_with_its_own_model(tmp_path, detecting_model):
    """The fastest-vs-fastest comparison is fair only if the predictor gets its own way of running several at
    once: a YOLO model per thread, as Ultralytics' thread-safe inference guide has it."""
    db = tmp_path / "results.duckdb"
    done = engine_run(
        db,
        "--model",
        str(detecting_model),
        "--runtimes",
        "openvino",
        "--modes",
        "ultralytics",
        "--iters",
        "2",
        "--in-flight",
        "2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = api.results_summary(db).iloc[0]
    assert row["mode"] == "ultralytics" and row["in_flight"] == 2 and row["in_flight_ips"] > 0
    how = json.loads(row["settings"])["in_flight"]
    assert how["measures"] == IN_FLIGHT_MEASURES and how["predictors"] == 2
    assert how["boxes"]["same_as_one_at_a_time"] and how["boxes"]["batches"] == 2 and how["boxes"]["boxes"] > 0
