"""Starting, following and cancelling real background runs from the dashboard (small: ONNX Runtime, 160 px)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from dashboard.jobs import uploads_folder
from engine import api
from engine.api import RunConfig
from tests.conftest import TEST_IMGSZ
from tests.dashboard_app import figures, open_page, text_of, wait_for_job


def small_config(db, **changes) -> RunConfig:
    settings = dict(runtimes=["onnxruntime"], batch_sizes=[1], imgsz=TEST_IMGSZ, warmup=1, iters=3, db=str(db))
    return RunConfig(**{**settings, **changes})


def run_in_db(db, run_id: str) -> dict:
    return api.runs(str(db), {"run_id": run_id}).iloc[0].to_dict()


def fill_small_run(app) -> None:
    """The Run form set to a small run: ONNX Runtime alone, TEST_IMGSZ, 1 warm-up, 3 iterations."""
    for info in api.runtimes():
        if info.available and info.name != "onnxruntime":
            app.checkbox(key=f"runtime-{info.name}").uncheck()
    app.number_input(key="imgsz").set_value(TEST_IMGSZ)
    app.number_input(key="warmup").set_value(1)
    app.number_input(key="iters").set_value(3)


def test_run_page_starts_a_run_that_finishes_and_survives_a_reload(tmp_path):
    db = tmp_path / "results.duckdb"
    app = open_page(db, "run")
    fill_small_run(app)
    app.button(key="start_run").click().run()
    assert not app.exception
    assert not app.error
    job_id = app.session_state["job_id"]
    assert app.query_params["job"] == job_id, "the job id is in the URL, so a reload finds it"

    status = wait_for_job(job_id)
    assert status["state"] == "finished", status
    assert status["run_status"] == "completed"
    assert [variant["variant"] for variant in status["variants"]] == ["onnxruntime:fp32"]
    assert (status["variants"][0].get("done"), status["variants"][0].get("total")) == (3, 3), (
        "the progress ends on the last measured count, not on the last of the twice-a-second reports"
    )

    app.run()
    assert f"Run {status['run_id']} finished: completed." in text_of(app.success)
    reloaded = open_page(db, "run", query_params={"job": job_id})
    assert f"Run {status['run_id']} finished: completed." in text_of(reloaded.success)
    assert "batch 1:" in text_of(reloaded.markdown), "the per-variant result line is shown"
    (recent,) = [table.value for table in reloaded.dataframe if "job" in table.value]
    listed = recent.set_index("job").loc[job_id]
    what = f"yolov8n.pt · onnxruntime · fp32 · batch 1 · {TEST_IMGSZ} px"
    assert (listed["what"], listed["database"]) == (what, str(db)), "which job measured what, and where it wrote"

    app.switch_page("pages/views/overview.py").run()
    assert status["run_id"] in text_of(app.caption)
    bars = next(trace for trace in figures(app)[0].data if trace.type == "bar")
    assert list(bars.y) == ["onnxruntime:fp32 · batch 1"]


def test_run_page_runs_both_pipeline_modes_and_requests_in_flight(tmp_path):
    """What the CLI's --modes and --in-flight do, from the browser: the Overview then shows the predictor's cost."""
    db = tmp_path / "results.duckdb"
    app = open_page(db, "run")
    fill_small_run(app)
    app.multiselect(key="modes").set_value(["lean", "ultralytics"])
    app.number_input(key="in_flight").set_value(2)
    app.button(key="start_run").click().run()
    assert not app.exception and not app.error
    status = wait_for_job(app.session_state["job_id"])
    assert status["run_status"] == "completed", status

    shown = {variant["variant"]: [r["mode"] for r in variant.get("results", [])] for variant in status["variants"]}
    assert shown == {"onnxruntime:fp32": ["lean"], "onnxruntime:fp32/ultralytics": ["ultralytics"]}, (
        "each mode's result is listed on its own progress row"
    )
    assert status["variants"][0]["stage"] == "done", "a variant is done once the next one starts"
    results = api.results_summary(str(db), {"run_id": status["run_id"]}).set_index("mode")
    assert sorted(results.index) == ["lean", "ultralytics"]
    assert results.loc["lean", "in_flight"] == 2 and results.loc["lean", "in_flight_ips"] > 0
    overview = open_page(db)
    assert "What Ultralytics' predictor adds" in text_of(overview.markdown)


def test_run_page_with_an_unknown_job_in_the_url_says_so(tmp_path):
    for job_id in ("20200101-000000-abcdef", "../etc"):
        app = open_page(tmp_path / "results.duckdb", "run", query_params={"job": job_id})
        assert not app.exception
        assert f"Job {job_id} is not known on this server" in text_of(app.warning)


def test_run_page_rejects_bad_input_with_a_message(tmp_path):
    app = open_page(tmp_path / "results.duckdb", "run")
    app.multiselect(key="batch_sizes").set_value([])
    app.button(key="start_run").click().run()
    assert not app.exception
    assert "no batch size given" in text_of(app.error)
    assert "job_id" not in app.session_state


def test_quick_run_from_the_empty_overview_opens_its_progress_and_can_be_cancelled(tmp_path):
    db = tmp_path / "results.duckdb"
    app = open_page(db)
    next(button for button in app.button if button.label.startswith("Start a quick run")).click().run()
    assert not app.exception
    job_id = app.session_state["job_id"]
    assert f"Job {job_id}" in text_of(app.subheader), "the Run page now follows the new job"
    api.cancel(job_id)
    status = wait_for_job(job_id)
    assert status["state"] == "cancelled", status
    app.run()
    assert "was cancelled" in text_of(app.warning)


def test_cancel_stops_a_measuring_run_and_it_shows_as_cancelled(tmp_path):
    db = tmp_path / "results.duckdb"
    job_id = api.start_run(small_config(db, iters=100_000))
    wait_for_job(job_id, until=lambda status: any(v.get("done") for v in status.get("variants", [])), timeout_s=300)
    app = open_page(db, "run", query_params={"job": job_id})
    app.button(key=f"cancel-{job_id}").click().run()
    status = wait_for_job(job_id, timeout_s=60)
    assert status["state"] == "cancelled", status
    assert run_in_db(db, status["run_id"])["status"] == "cancelled"
    assert api.results_summary(str(db), {"run_id": status["run_id"]}).empty, (
        "the configuration it was measuring gets no 'failed' row: the regression watch would say it stopped working"
    )
    app.run()
    assert "was cancelled" in text_of(app.warning)


def test_two_runs_started_within_a_second_both_complete_one_after_the_other(tmp_path):
    db = tmp_path / "results.duckdb"
    first = api.start_run(small_config(db))
    second = api.start_run(small_config(db))
    statuses = [wait_for_job(first), wait_for_job(second)]
    assert [status["state"] for status in statuses] == ["finished", "finished"], statuses
    stored = sorted((run_in_db(db, status["run_id"]) for status in statuses), key=lambda run: run["started_at"])
    assert [run["status"] for run in stored] == ["completed", "completed"]
    earlier, later = stored
    assert later["started_at"] >= earlier["finished_at"], "the second measured only after the first ended"


def test_an_uploaded_model_and_image_are_benchmarked(tmp_path, filled_run, sample_images):
    with duckdb.connect(str(filled_run["db"]), read_only=True) as con:
        onnx_file = con.execute(
            "SELECT model_file FROM results WHERE runtime = 'onnxruntime' AND batch = 1"
        ).fetchall()[0][0]  # the real YOLO export the filled run measured
    db = tmp_path / "results.duckdb"
    app = open_page(db, "run")
    app.radio(key="model_source").set_value("Upload a model").run()
    app.radio(key="images_source").set_value("Upload images").run()
    app.file_uploader(key="model_upload").upload("street-detector.onnx", Path(onnx_file).read_bytes())
    app.file_uploader(key="image_uploads").upload("my-street.jpg", sample_images[0].read_bytes(), "image/jpeg")
    fill_small_run(app)
    app.button(key="start_run").click().run()
    assert not app.error, text_of(app.error)
    status = wait_for_job(app.session_state["job_id"])
    assert status["run_status"] == "completed", status

    run = run_in_db(db, status["run_id"])
    assert run["model"].endswith("-street-detector.onnx"), "a generated name that keeps the user's stem"
    app.run()
    (recent,) = [table.value for table in app.dataframe if "job" in table.value]
    assert recent.set_index("job").loc[status["job_id"], "what"].startswith(f"{run['model']} · onnxruntime"), (
        "the recent jobs name the model as its results do"
    )
    image = Path(json.loads(run["images"])[0])
    assert image.parent.parent == uploads_folder() and image.name == "my-street.jpg", image
    app.switch_page("pages/views/detections.py").run()
    assert app.selectbox(key="detections_image").value == "00-my-street.jpg", "the user's name, no hash"
    assert "Whether these weights are trained is unknown" in text_of(app.info)
