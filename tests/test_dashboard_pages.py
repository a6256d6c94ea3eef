"""Every dashboard page, rendered by Streamlit's AppTest from the real app against real databases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dashboard.images import OVERLAY_COLOR, PARITY_COLORS, overlay_boxes, parity_diff
from engine import api
from tests.conftest import TEST_IMGSZ, engine, engine_run
from tests.dashboard_app import HEAVY_MODULES, PAGES, ROOT, elements, figures, open_page, table_with, text_of, values_of

FAULTS = {"YOLO_BENCH_EXTRA_RUNTIMES": "tests.fault_runtimes"}


@pytest.fixture(scope="module")
def two_runs_db(filled_db, tmp_path_factory) -> Path:
    """A copy of the filled database plus a second real run: another model (its ONNX export given directly),
    ONNX Runtime beside a runtime whose worker crashes with SIGSEGV."""
    db = tmp_path_factory.mktemp("two-runs") / "results.duckdb"
    shutil.copyfile(filled_db, db)
    with duckdb.connect(str(db), read_only=True) as con:
        onnx_file = con.execute(
            "SELECT model_file FROM results WHERE runtime = 'onnxruntime' AND batch = 1"
        ).fetchall()[0][0]
    done = engine_run(db, "--model", onnx_file, "--runtimes", "onnxruntime,fault-segfault", "--iters", "6", env=FAULTS)
    assert done.returncode == 1, done.stderr  # one result failed on purpose
    return db


@pytest.fixture(scope="module")
def detecting_db(tmp_path_factory, detecting_model) -> Path:
    """A real run of a model that outputs boxes (tests/detecting_model.py), so overlays have something to draw."""
    db = tmp_path_factory.mktemp("detecting") / "results.duckdb"
    done = engine_run(db, "--model", str(detecting_model), "--runtimes", "onnxruntime,openvino", "--iters", "3")
    assert done.returncode == 0, done.stderr
    return db


@pytest.mark.parametrize("page", PAGES)
def test_page_on_a_missing_database_says_what_to_do(empty_db, page):
    app = open_page(empty_db, page)
    assert not app.exception
    assert not app.error
    if page == "run":
        assert app.button(key="start_run").label == "Start run"
    else:
        assert "Start a benchmark on the **Run** page" in text_of(app.info)
    assert not empty_db.exists(), "opening the dashboard creates no database"


def test_overview_on_an_empty_database_offers_a_quick_run(empty_db):
    app = open_page(empty_db)
    quick = [button for button in app.button if button.label.startswith("Start a quick run")]
    assert len(quick) == 1
    assert "onnxruntime + openvino, batch 1, 320 px" in quick[0].label


@pytest.mark.parametrize("page", PAGES)
def test_page_on_a_filled_database_renders_without_errors(filled_db, page):
    app = open_page(filled_db, page)
    assert not app.exception
    assert not app.error


def test_overview_shows_the_leaderboard_and_the_untrained_weights(filled_run):
    app = open_page(filled_run["db"])
    figure = figures(app)[0]
    stages = {trace.name for trace in figure.data if trace.type == "bar"}
    assert stages == {"Pre-process", "Inference", "Post-process"}
    bars = next(trace for trace in figure.data if trace.type == "bar")
    assert sorted(bars.y) == ["onnxruntime:fp32 · batch 1", "openvino:fp32 · batch 1"]
    assert "untrained weights" in text_of(app.warning)
    assert filled_run["run_id"] in text_of(app.caption)
    run_line = next(caption.value for caption in app.caption if filled_run["run_id"] in caption.value)
    assert run_line.lower().count("untrained") == 1, f"the weights are named once: {run_line}"
    table = app.dataframe[0].value
    assert set(table["runtime"]) == {"onnxruntime", "openvino"}
    assert (table["model_mb"] > 0.1).all(), "each runtime's model size on disk, beside its speed"
    smallest, least_memory = (table.loc[table[column].idxmin()] for column in ("model_mb", "peak_memory_mb"))
    assert (
        f"Smallest on disk: **{smallest['runtime']}:{smallest['precision']}** ({smallest['model_mb']:.1f} MB) "
        f"· least memory: **{least_memory['runtime']}:{least_memory['precision']}** "
        f"({least_memory['peak_memory_mb']:.0f} MB)"
    ) in text_of(app.caption)


def test_overview_shows_each_result_mode_and_efficiency_against_the_measured_peak(filled_run):
    app = open_page(filled_run["db"])
    table = app.dataframe[0].value.set_index("result_id")
    summary = api.results_summary(filled_run["db"], {"run_id": filled_run["run_id"], "batch": 1})
    assert summary["peak_gflops"].notna().all(), "every run measures the machine's peak before its workers"
    for row in summary.itertuples():
        shown = table.loc[row.result_id]
        assert shown["mode"] == "lean"
        assert shown["achieved_gflops"] == pytest.approx(row.model_gflops / (row.infer_ms / 1000))
        assert shown["peak_share"] == f"{row.peak_fraction:.0%}"
        assert shown["floor"] == f"{row.floor_ms:.1f}"
    assert f"measured peak rates: fp32 {summary['peak_gflops'].iloc[0]:.0f} GFLOP/s" in text_of(app.caption)
    assert [metric.value for metric in app.metric if metric.label == "Its share of peak"][0].endswith("%")


def test_overview_shows_every_measured_iteration_around_the_medians(filled_run):
    """The bars give medians; each measured iteration is shown beside them, and the box's median is the bar's."""
    app = open_page(filled_run["db"])
    (spread,) = [figure for figure in figures(app) if figure.layout.title.text == "Every measured iteration"]
    summary = api.results_summary(filled_run["db"], {"run_id": filled_run["run_id"], "batch": 1})
    boxes = {trace.name: values_of(trace.x) for trace in spread.data if trace.type == "box"}
    assert list(boxes) == [
        f"{runtime}:fp32 · batch 1" for runtime in summary.sort_values("total_ms", ascending=False)["runtime"]
    ], "the leaderboard's order"
    for row in summary.itertuples():
        iterations = boxes[f"{row.runtime}:fp32 · batch 1"]
        assert len(iterations) == row.iterations
        assert pd.Series(iterations).median() == pytest.approx(row.total_ms, rel=1e-9)


def test_efficiency_says_peak_not_measured_where_there_is_none(filled_db, tmp_path):
    db = tmp_path / "no-peak.duckdb"
    shutil.copyfile(filled_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM machine_peaks")
    app = open_page(db)
    assert not app.exception
    table = app.dataframe[0].value
    assert set(table["peak_share"]) == set(table["floor"]) == {"peak not measured"}
    assert table["achieved_gflops"].notna().all(), "achieved GFLOP/s needs only the model's FLOPs"
    share = [metric for metric in app.metric if metric.label == "Its share of peak"][0]
    assert (share.value, share.delta) == ("—", "peak not measured"), "the reason fits under the metric, untruncated"
    assert "peak not measured on this machine" in text_of(app.caption)
    history = open_page(db, "history").dataframe[0].value
    assert set(history["peak_share"]) == {"peak not measured"}


def test_overview_says_why_the_latest_run_did_not_complete(filled_run, tmp_path):
    """A run stopped with Ctrl-C shows the results it kept; the caption says why there are not more."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(filled_run["db"], db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET status = 'cancelled', error = 'interrupted by Ctrl-C or SIGTERM'")
    assert "run cancelled (interrupted by Ctrl-C or SIGTERM)" in text_of(open_page(db).caption)
    assert "run completed" in text_of(open_page(filled_run["db"]).caption)


def test_overview_batch_choice_changes_the_leaderboard(filled_db):
    app = open_page(filled_db)
    batch_control = list(app.get("button_group"))[0]
    batch_control.set_value(2).run()
    assert not app.exception
    assert set(app.dataframe[0].value["batch"]) == {2}


def test_detections_show_each_runtime_image_and_its_timings(filled_run):
    app = open_page(filled_run["db"], "detections")
    images = elements(app, "image")
    assert len(images) == 2, "one annotated image per runtime for the chosen image"
    summary = api.results_summary(filled_run["db"], {"run_id": filled_run["run_id"], "batch": 1})
    shown = text_of(app.markdown)
    for infer_ms in summary["infer_ms"]:
        assert f"infer **{infer_ms:.2f}**" in shown
    app.selectbox(key="detections_image").set_value("01-zidane.jpg").run()
    assert len(elements(app, "image")) == 2


def test_a_run_over_a_folder_of_many_images_lists_them_in_order_and_its_report_shows_a_few(filled_run, tmp_path):
    """A run over 120 photos: "100-..." sorted between "10-..." and "11-...", the picker showed the engine's keys,
    and the shared report inlined every picture of every runtime."""
    from dashboard import data

    db = tmp_path / "results.duckdb"
    shutil.copyfile(filled_run["db"], db)
    run_id = filled_run["run_id"]
    with duckdb.connect(str(db)) as con:
        given = json.loads(con.execute("SELECT images FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0])
        photos = [given[i % len(given)] for i in range(120)]
        con.execute("UPDATE runs SET images = ? WHERE run_id = ?", [json.dumps(photos), run_id])
        rows = con.execute(
            "SELECT result_id, annotated_path FROM result_images WHERE annotated_path IS NOT NULL "
            "AND image = '00-bus.jpg'"
        ).fetchall()
        con.execute("DELETE FROM result_images")
        for result_id, path in rows:
            for index, photo in enumerate(photos):
                con.execute(
                    "INSERT INTO result_images VALUES (?, ?, ?, 0)",
                    [result_id, f"{index:02d}-{Path(photo).name}", path],
                )
    app = open_page(db, "detections")
    assert not app.exception
    picker = app.selectbox(key="detections_image")
    assert [int(label.split("(")[1].split(" of ")[0]) for label in picker.options] == list(range(1, 121)), (
        "the run's own order"
    )
    assert picker.options[101] == "zidane.jpg (102 of 120)", "the file's name, not the engine's key"
    report = data.run_report(str(db), run_id)
    assert "The first 6 of the run's 120 images; the dashboard's Detections page shows every one." in report
    assert report.count("<figure>") == 6 * len(rows), "six images, each through every runtime"


def test_detections_overlay_toggle_draws_one_runtime_over_another(filled_db):
    app = open_page(filled_db, "detections")
    app.toggle(key="overlay").set_value(True).run()
    assert not app.exception
    assert len(elements(app, "image")) == 3, "the overlay comes on top of the side-by-side images"
    assert "no boxes to compare" in text_of(app.info), "untrained weights find nothing, and the page says so"


def test_overlay_of_a_model_with_boxes_shows_both_runtimes_boxes_and_parity(detecting_db):
    app = open_page(detecting_db, "detections")
    app.toggle(key="overlay").set_value(True).run()
    assert not app.exception
    run_id = api.runs(detecting_db)["run_id"].iloc[0]
    boxes = api.detections(detecting_db, run_id)
    on_bus = boxes[boxes["image"] == "00-bus.jpg"].groupby("runtime").size().to_dict()
    assert on_bus["openvino"] > 0
    assert app.selectbox(key="reference").value.endswith("onnxruntime-fp32-b1")
    overlay_caption = app.get("image")[-1].proto.imgs[0].caption
    assert (
        f"onnxruntime:fp32 · batch 1 ({on_bus['onnxruntime']} boxes, its own colours) with "
        f"openvino:fp32 · batch 1 ({on_bus['openvino']} boxes, in magenta)"
    ) == overlay_caption
    assert [metric.label for metric in app.metric] == ["Parity of the overlaid runtime"]
    assert len(app.dataframe) == 2, "each runtime's boxes as a table under its image"


def test_overlay_draws_the_other_runtime_boxes_in_magenta(sample_images):
    boxes = pd.DataFrame([{"x1": 50.0, "y1": 60.0, "x2": 300.0, "y2": 400.0, "class_name": "person", "score": 0.9}])
    drawn = overlay_boxes(sample_images[0], boxes)
    assert drawn.getpixel((50, 200)) == OVERLAY_COLOR, "left edge of the box"
    assert drawn.getpixel((175, 60)) == OVERLAY_COLOR, "top edge of the box"
    assert drawn.getpixel((175, 200)) != OVERLAY_COLOR, "inside stays the image"


def test_overview_plots_speed_against_agreement(detecting_db, filled_db):
    title = "Speed against agreement with the reference"

    def agreement_figure(db):
        app = open_page(db, "overview")
        assert not app.exception
        found = [figure for figure in figures(app) if figure.layout.title.text == title]
        assert found, "the Overview plots speed against agreement"
        return found[0]

    with_boxes = agreement_figure(detecting_db)
    assert "boxes agreeing" in with_boxes.layout.yaxis.title.text
    assert all(y == 1.0 for trace in with_boxes.data for y in values_of(trace.y)), "fp32 exports agree on every box"
    untrained = agreement_figure(filled_db)
    assert untrained.layout.yaxis.type == "log" and "raw output difference" in untrained.layout.yaxis.title.text
    assert "<br>" in untrained.layout.yaxis.title.text, "on one line it ran into the chart title"


def test_a_faster_result_that_failed_parity_is_not_named_fastest(detecting_db, tmp_path):
    """A converted model that loses the reference's boxes is no deployment answer, however fast. The real run's
    fastest result is given a failed parity verdict in a copy of its database."""
    db = tmp_path / "fastest-failed.duckdb"
    shutil.copyfile(detecting_db, db)
    summary = api.results_summary(str(db))
    fastest, runner_up = summary.sort_values("total_ms").head(2).itertuples()
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE parity SET verdict = 'fail', reason = 'found 3 of the reference''s 42 boxes' WHERE result_id = ?",
            [fastest.result_id],
        )
    overview = open_page(db)
    assert not overview.exception
    named = [(metric.value, metric.delta) for metric in overview.metric if metric.label == "Fastest"]
    assert named == [(f"{runner_up.runtime}:{runner_up.precision}", "lean mode · parity pass")]
    warning = text_of(overview.warning)
    assert f"{fastest.runtime}:{fastest.precision}" in warning and "found 3 of the reference's 42 boxes" in warning
    machines = open_page(db, "machines")
    assert not machines.exception
    assert table_with(machines, "runtime")["runtime"].tolist() == [runner_up.runtime]
    assert "failed parity" in text_of(machines.warning)
    from dashboard.report import run_report

    run = api.runs(str(db)).iloc[0]
    report = run_report(run, None, api.results_summary(str(db)), api.result_images(str(db), run["run_id"]))
    assert (
        f"<td>fastest</td>\n      <td>{runner_up.runtime}:{runner_up.precision} · batch 1: "
        f"{runner_up.total_ms:.2f} ms per image end to end, parity pass</td>"
    ) in report
    assert (
        f"<td>faster, failed parity</td>\n      <td>{fastest.runtime}:{fastest.precision} · batch 1: "
        f"{fastest.total_ms:.2f} ms, found 3 of the reference's 42 boxes</td>"
    ) in report


def test_the_results_table_shows_parity_beside_the_speed(detecting_db):
    """Last of 17 columns, Parity was off screen in a 1280 px window: whether a result is right sits by its speed."""
    order = list(open_page(detecting_db).dataframe[0].proto.column_order)
    assert order.index("parity_verdict") == order.index("throughput_ips") + 1, order


def test_each_detection_card_says_whether_its_boxes_are_the_reference_s(detecting_db):
    app = open_page(detecting_db, "detections")
    assert not app.exception
    cards = [caption for caption in app.caption if "detection(s)" in str(caption.value)]
    assert len(cards) == 2 and all(str(card.value).endswith(" · parity **pass**") for card in cards), [
        card.value for card in cards
    ]


def test_parity_diff_shows_the_verdict_over_the_original_image(detecting_db):
    app = open_page(detecting_db, "detections")
    app.toggle(key="parity_diff").set_value(True).run()
    assert not app.exception
    caption = app.get("image")[-1].proto.imgs[0].caption
    assert "matched in green, extra in orange, missed in red" in caption
    verdict = [metric for metric in app.metric if metric.label == "Parity verdict"]
    assert verdict and verdict[0].value == "pass", "an identical fp32 export matches the PyTorch reference"


def test_parity_diff_draws_matched_extra_and_missed_boxes_apart(sample_images):
    box = {"class_name": "person", "score": 0.9}
    candidate = pd.DataFrame(
        [
            {**box, "x1": 50.0, "y1": 60.0, "x2": 300.0, "y2": 400.0, "reference_index": 0},
            {**box, "x1": 400.0, "y1": 500.0, "x2": 600.0, "y2": 700.0, "reference_index": None},
        ]
    )
    reference = pd.DataFrame(
        [
            {**box, "det_index": 0, "x1": 50.0, "y1": 60.0, "x2": 300.0, "y2": 400.0},
            {**box, "det_index": 1, "x1": 100.0, "y1": 800.0, "x2": 250.0, "y2": 1000.0},
        ]
    )
    drawn = parity_diff(sample_images[0], candidate, reference)
    assert drawn.getpixel((50, 200)) == PARITY_COLORS["matched"]
    assert drawn.getpixel((600, 650)) == PARITY_COLORS["extra"], "right edge of the extra box"
    assert drawn.getpixel((250, 900)) == PARITY_COLORS["missed"], "right edge of the missed reference box"


def test_boxes_are_drawn_on_a_phone_photo_turned_as_the_engine_saw_it(sample_images, tmp_path):
    """A portrait photo stored sideways with an EXIF orientation tag: OpenCV (the engine) turns it upright, so
    its boxes are upright pixels; drawing them on the stored pixels put every box on a sideways picture."""
    import cv2
    import numpy as np
    from PIL import Image

    sideways = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to display"
    Image.open(sample_images[0]).transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif, quality=95)
    engine_saw = cv2.cvtColor(cv2.imread(str(sideways), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    box = {"class_name": "person", "score": 0.9, "x1": 50.0, "y1": 60.0, "x2": 300.0, "y2": 400.0}
    drawings = {
        "parity diff": parity_diff(
            sideways, pd.DataFrame([{**box, "reference_index": 0}]), pd.DataFrame([{**box, "det_index": 0}])
        ),
        "overlay": overlay_boxes(sideways, pd.DataFrame([box])),
    }
    for name, drawn in drawings.items():
        pixels = np.asarray(drawn, dtype=np.float32)
        assert pixels.shape == engine_saw.shape, f"{name}: drawn on the stored, sideways pixels"
        assert np.abs(pixels[500:] - engine_saw[500:]).mean() < 8, f"{name}: below the box, the engine's picture"


def test_history_filters_narrow_the_charts_and_the_table(filled_db):
    app = open_page(filled_db, "history")
    assert len(figures(app)) == 3
    assert set(app.dataframe[0].value["runtime"]) == {"onnxruntime", "openvino"}
    app.multiselect(key="history_runtimes").set_value(["openvino"]).run()
    assert set(app.dataframe[0].value["runtime"]) == {"openvino"}
    assert {trace.name for trace in figures(app)[0].data} == {"openvino · fp32 · b1", "openvino · fp32 · b2"}
    app.multiselect(key="history_batches").set_value([2]).run()
    assert app.dataframe[0].value[["runtime", "batch"]].values.tolist() == [["openvino", 2]]


def test_history_draws_other_thread_counts_as_lines_of_their_own(filled_db, tmp_path):
    """The regression watch judges each thread count apart; one line through both looked like a slowdown, and the
    batch chart took one median of both."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(filled_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE results SET threads = batch WHERE runtime = 'openvino'")
    app = open_page(db, "history")
    app.multiselect(key="history_runtimes").set_value(["openvino"]).run()
    names = {trace.name for trace in figures(app)[0].data}
    assert names == {"openvino · fp32 · b1 · 1 thread", "openvino · fp32 · b2 · 2 threads"}
    scaling = {trace.name for trace in figures(app)[1].data}  # no median across thread counts either
    assert scaling == {"openvino:fp32 · 1 thread", "openvino:fp32 · 2 threads"}
    assert sorted(app.dataframe[0].value["threads"]) == [1, 2]
    assert "threads" in app.dataframe[0].proto.column_order, "the table says which is which"


def test_the_overview_deletes_a_run_and_keeps_its_bundle(filled_run, tmp_path):
    db = tmp_path / "results.duckdb"
    shutil.copyfile(filled_run["db"], db)
    shutil.copytree(filled_run["db"].with_suffix(".artifacts"), tmp_path / "results.artifacts")
    run_id = filled_run["run_id"]
    app = open_page(db)
    app.button(key=f"delete-{run_id}").click().run()
    assert not app.exception and not app.error
    kept = tmp_path / "results.artifacts" / "deleted" / f"{run_id}.zip"
    assert (
        f"Deleted run `{run_id}` and its 4 result(s); its bundle is kept: `python -m engine import {kept}`"
        in text_of(app.success)
    ), text_of(app.success)
    assert kept.is_file() and not (tmp_path / "results.artifacts" / run_id).exists()
    assert api.runs(str(db)).empty, "the run is gone"
    assert [b.label for b in app.button if b.label.startswith("Start a quick run")], "the empty Overview follows"

    app.button(key=f"undo-{run_id}").click().run()  # and straight back
    assert not app.exception and f"Restored run `{run_id}`." in text_of(app.success)
    assert api.runs(str(db))["run_id"].tolist() == [run_id] and not kept.exists(), "its bundle is in the DB again"
    assert (tmp_path / "results.artifacts" / run_id).is_dir(), "with its images"
    app.button(key=f"delete-{run_id}")  # the Overview shows the run again

    api.delete_run(str(db), run_id)  # deleted from the CLI, say: the Machines page lists it, and restores it
    overview = open_page(db)
    assert "its 1 run(s) were deleted, and their bundles are kept. Restore them on the **Machines** page" in text_of(
        overview.info
    ), text_of(overview.info)
    machines = open_page(db, "machines")
    assert not machines.error, "a machine with no run left (its list of run labels empty) broke the page"
    assert "**last seen:** no run stored" in text_of(machines.markdown)
    assert "Deleted runs (1), kept as bundles" in [e.label for e in machines.expander]
    machines.button(key=f"restore-{run_id}").click().run()
    assert not machines.exception and f"Restored run `{run_id}`." in text_of(machines.success)
    assert api.runs(str(db))["run_id"].tolist() == [run_id] and api.deleted_runs(str(db)) == []

    api.delete_run(str(db), run_id)
    machines = open_page(db, "machines")
    kept.unlink()  # gone between the listing and the click: an error, not a green "Restored"
    machines.button(key=f"restore-{run_id}").click().run()
    assert f"Run `{run_id}` could not be restored: no deleted run {run_id} is kept" in text_of(machines.error)
    assert not machines.success


@pytest.mark.parametrize("page", ["detections", "share"])
def test_a_link_to_a_run_not_here_says_so(filled_run, page):
    """A teammate's ?run= link to a run since deleted opened another run without a word."""
    app = open_page(filled_run["db"], page, query_params={"run": "20261101-000000-gone00"})
    assert not app.exception
    assert "Run `20261101-000000-gone00` from the link is not among these runs" in text_of(app.info), text_of(app.info)
    linked = open_page(filled_run["db"], page, query_params={"run": filled_run["run_id"]})
    assert "from the link" not in text_of(linked.info)


def test_history_deletes_the_run_of_a_picked_row(two_runs_db, tmp_path):
    """The run that widened the noise floor is rarely the latest one, which the Overview offers to delete."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    app = open_page(db, "history")
    assert "Pick a row to act on its run" in text_of(app.caption)
    table = app.dataframe[0].value
    newest = api.runs(str(db))["run_id"].iloc[0]
    assert table["run_id"].iloc[0] == newest and table["started_at"].is_monotonic_decreasing, (
        "newest first: after months of runs, the one just made is not at the bottom of a scrolled table"
    )
    older = table["run_id"].iloc[-1]
    app.session_state["history_table-0"] = {"selection": {"rows": [len(table) - 1], "columns": [], "cells": []}}
    app.run()
    links = {link.proto.page: link.proto.query_string for link in app.get("page_link")}
    assert links == {"detections": f"run={older}", "share": f"run={older}&share=run"}, "a click away"
    app.button(key=f"delete-{older}").click().run()
    assert not app.exception and f"Deleted run `{older}`" in text_of(app.success)
    assert older not in set(api.runs(str(db))["run_id"]) and len(api.runs(str(db))) == 1, "the other run stays"
    assert older not in set(app.dataframe[0].value["run_id"])
    assert "Pick a row to act on its run" in text_of(app.caption), "no other run is picked in its place"


def test_a_link_to_one_run_shares_that_run(filled_run):
    app = open_page(filled_run["db"], "share")
    app.radio(key="share_source").set_value("The History selection").run()
    assert app.radio(key="share_source").value == "The History selection"
    app.query_params.update({"run": filled_run["run_id"], "share": "run"})  # History's "Share its report"
    app.run()
    assert (
        app.radio(key="share_source").value == "One run"
        and app.selectbox(key="run_picker").value == filled_run["run_id"]
    )


def test_history_marks_the_run_where_library_versions_changed(two_runs_db, tmp_path):
    """A step in a line is explained at a glance: the run where an upgrade came in is marked on the time axis."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    newer, older = api.runs(db)["run_id"].tolist()
    with duckdb.connect(str(db)) as con:
        was = json.loads(con.execute("SELECT libraries FROM runs WHERE run_id = ?", [older]).fetchall()[0][0])
        con.execute(
            "UPDATE runs SET libraries = ? WHERE run_id = ?", [json.dumps({**was, "openvino": "2099.1.0"}), newer]
        )
    app = open_page(db, "history")
    assert not app.exception
    (marks,) = [trace for trace in figures(app)[0].data if trace.name == "library versions changed"]
    assert list(marks.text) == ["openvino 2099.1.0"]
    assert marks.hovertext[0] == f"openvino {was['openvino']} → 2099.1.0<br>run {newer}"
    older_day = api.runs(db)["started_at"].iloc[1]  # against the machine's run before, even when it is not shown
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET started_at = started_at + INTERVAL 2 DAY WHERE run_id = ?", [newer])
    app.date_input(key="history_dates").set_value(
        (older_day.date() + pd.Timedelta(days=1), older_day.date() + pd.Timedelta(days=3))
    ).run()
    assert set(app.dataframe[0].value["run_id"]) == {newer}
    assert [trace.text for trace in figures(app)[0].data if trace.name == "library versions changed"] == [
        ("openvino 2099.1.0",)
    ]
    unchanged = open_page(two_runs_db, "history")
    assert not [trace for trace in figures(unchanged)[0].data if trace.name == "library versions changed"]


def test_history_metric_choice_changes_the_chart(filled_db):
    app = open_page(filled_db, "history")
    app.selectbox(key="history_metric").set_value("throughput_ips").run()
    figure = figures(app)[0]
    assert figure.layout.title.text == "Throughput (images/s) over time"
    summary = api.results_summary(filled_db)
    plotted = sorted(value for trace in figure.data for value in values_of(trace.y))
    assert plotted == pytest.approx(sorted(summary["throughput_ips"]))


def test_peak_memory_is_charted_and_its_absence_explained(filled_db, tmp_path):
    app = open_page(filled_db, "history")
    app.selectbox(key="history_metric").set_value("peak_memory_mb").run()
    plotted = sorted(value for trace in figures(app)[0].data for value in values_of(trace.y))
    assert plotted == pytest.approx(sorted(api.results_summary(filled_db)["peak_memory_mb"]))
    assert "peak_memory_mb" in open_page(filled_db).dataframe[0].proto.column_order, "the Overview's table shows it"
    older = tmp_path / "results.duckdb"  # as if every result came from before schema v8
    shutil.copyfile(filled_db, older)
    with duckdb.connect(str(older)) as con:
        con.execute("UPDATE results SET peak_memory_mb = NULL")
    app = open_page(older, "history")
    app.selectbox(key="history_metric").set_value("peak_memory_mb").run()
    assert not app.exception and "the engine records it since schema v8" in text_of(app.info)


def test_sidebar_model_filter_carries_across_pages(two_runs_db):
    runs = api.runs(two_runs_db)
    onnx_run = runs[runs["model"] == "model.onnx"].iloc[0]
    first_run = runs[runs["model"] != "model.onnx"].iloc[0]
    app = open_page(two_runs_db)
    assert onnx_run["run_id"] in text_of(app.caption), "the newest run leads the overview"
    app.multiselect(key="model_filter").set_value([first_run["model"]]).run()
    assert first_run["run_id"] in text_of(app.caption)
    assert onnx_run["run_id"] not in text_of(app.caption)
    app.switch_page("pages/views/history.py").run()
    assert set(app.dataframe[0].value["run_id"]) == {first_run["run_id"]}


def test_a_crashed_runtime_shows_as_a_message_not_a_traceback(two_runs_db):
    app = open_page(two_runs_db)
    assert not app.exception
    failures = text_of(app.error)
    assert "fault-segfault:fp32 batch 1" in failures
    assert "SIGSEGV" in failures
    assert "weights of unknown training" in text_of(app.caption)


@pytest.mark.parametrize("page", ["overview", "history", "machines", "compare"])
def test_empty_cells_of_results_tables_read_as_a_dash(two_runs_db, page):
    """A parity not judged or a figure not measured showed as a grey "None", which reads as a broken value."""
    tables = list(open_page(two_runs_db, page).dataframe)
    assert tables and [table.proto.placeholder for table in tables] == ["—"] * len(tables)


def test_compare_gives_the_ratio_of_each_shared_result(two_runs_db):
    app = open_page(two_runs_db, "compare")
    assert not app.exception
    compared = app.dataframe[0].value
    assert compared[["runtime", "precision", "batch", "mode"]].values.tolist() == [["onnxruntime", "fp32", 1, "lean"]]
    assert compared["peak_share_a"].iloc[0].endswith("%")
    assert compared["peak_share_b"].iloc[0] == "model FLOPs unknown", "B ran an .onnx given directly"
    summary = api.results_summary(two_runs_db, {"runtime": "onnxruntime", "batch": 1}).sort_values("started_at")
    older, newer = summary["infer_ms"].tolist()
    assert compared["infer_ms_ratio"].iloc[0] == pytest.approx(newer / older)
    assert "model: " in text_of(app.warning), "the page warns that the two runs used different models"
    assert "Only in run A, so not compared: onnxruntime:fp32 · b2, openvino:fp32 · b1, openvino:fp32 · b2." in text_of(
        app.caption
    ), "what the ratios leave out is named"
    left_out = next(caption for caption in app.caption if caption.value.startswith("Only in run A"))
    assert left_out.proto.help == "onnxruntime:fp32 · b2, openvino:fp32 · b1, openvino:fp32 · b2"


def test_compare_names_library_upgrades_and_other_weights_under_the_same_name(two_runs_db, tmp_path):
    """A library upgrade is the usual cause of a step in speed or parity that nothing else explains, and a
    retrained model keeps its name: the page and the CLI say what changed between the runs."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    newer, older = api.runs(db)["run_id"].tolist()
    with duckdb.connect(str(db)) as con:
        ((libraries, model, sha),) = con.execute(
            "SELECT libraries, model, model_sha256 FROM runs WHERE run_id = ?", [older]
        ).fetchall()
        was = json.loads(libraries)
        upgraded = {name: version for name, version in was.items() if name != "tensorflow"} | {"onnxruntime": "9.9.9"}
        con.execute(
            "UPDATE runs SET libraries = ?, model = ?, model_sha256 = ? WHERE run_id = ?",
            [json.dumps(upgraded), model, "f" * 64, newer],
        )
    expected = [f"onnxruntime {was['onnxruntime']} → 9.9.9", f"tensorflow {was['tensorflow']} → absent"]
    app = open_page(db, "compare")
    assert not app.exception
    assert "Library versions differ: " + "; ".join(expected) + "." in text_of(app.info), text_of(app.info)
    assert f"model file: {model} {sha[:8]} → ffffffff (the same name, other weights)" in text_of(app.warning)
    assert "model: " not in text_of(app.warning)
    headless = engine("compare", older, newer, "--db", str(db), "--json")  # other weights: no baseline by itself
    assert json.loads(headless.stdout)["library_changes"] == expected, headless.stderr
    assert "library versions differ: " + "; ".join(expected) in engine("compare", older, newer, "--db", str(db)).stdout
    alone = json.loads(engine("compare", newer, "--db", str(db), "--json").stdout)
    assert alone["run_a"] is None and alone["no_baseline"].startswith("no run before"), alone
    unchanged = open_page(two_runs_db, "compare")
    assert "Library versions differ" not in text_of(unchanged.info), "nothing said when nothing changed"


def test_a_long_list_of_what_compare_leaves_out_is_cut_short():
    """A full sweep against a one-runtime run named 35 configurations in a wall of text; all are on hover."""
    from dashboard import ui

    assert ui.some_of([f"r{i}" for i in range(35)]) == "r0, r1, r2, r3, r4, r5 and 29 more"
    assert ui.some_of(["a", "b", "c"]) == "a, b, c"


def test_the_cli_compare_gives_what_the_compare_page_gives(two_runs_db):
    """`python -m engine compare A B`: the page's ratios and what it leaves out, headless (engine/compare.py)."""
    page = open_page(two_runs_db, "compare")
    runs = api.runs(two_runs_db)["run_id"].tolist()  # newest first: the page's default A is the older run
    done = engine("compare", runs[1], runs[0], "--db", str(two_runs_db), "--json")
    assert done.returncode == 0, done.stderr
    headless = json.loads(done.stdout)
    (row,) = headless["compared"]
    assert row["infer_ms_ratio"] == pytest.approx(page.dataframe[0].value["infer_ms_ratio"].iloc[0])
    assert headless["only_in"] == {"A": ["onnxruntime:fp32 · b2", "openvino:fp32 · b1", "openvino:fp32 · b2"]}
    assert any(change.startswith("model: ") for change in headless["setting_changes"])
    text = engine("compare", runs[1], runs[0], "--db", str(two_runs_db)).stdout
    assert "onnxruntime:fp32 · b1  pass → pass" in text and f"{row['infer_ms_ratio']:.2f}x" in text, text
    assert "only in run A, so not compared: onnxruntime:fp32 · b2, openvino:fp32 · b1, openvino:fp32 · b2" in text
    ratio = row["infer_ms_ratio"]
    gate = engine("compare", runs[1], runs[0], "--db", str(two_runs_db), "--fail-above", f"{ratio * 0.99:.4f}")
    assert gate.returncode == 1 and "slower than --fail-above" in gate.stdout, "a CI gate on B's slowdown"
    assert (
        engine("compare", runs[1], runs[0], "--db", str(two_runs_db), "--fail-above", f"{ratio * 1.01:.4f}").returncode
        == 0
    )


def test_the_cli_compare_gate_fails_on_a_configuration_that_failed_in_b(two_runs_db, tmp_path):
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    older, newer = api.runs(db)["run_id"].tolist()[::-1]
    with duckdb.connect(str(db)) as con:  # the candidate's ONNX Runtime batch 1 crashed
        con.execute(
            "UPDATE results SET status = 'failed', error = 'worker crashed' WHERE runtime = 'onnxruntime' "
            "AND batch = 1 AND run_id = ?",
            [newer],
        )
    gate = engine("compare", older, newer, "--db", str(db), "--fail-above", "100")
    assert gate.returncode == 1 and "not compared, failed in run B: onnxruntime:fp32 · b1" in gate.stdout, gate.stdout
    assert engine("compare", older, newer, "--db", str(db)).returncode == 0, "without --fail-above: no gate"


def test_compare_names_a_result_that_failed_in_one_run(two_runs_db, tmp_path):
    """A runtime that completed in one run and failed in the other must not just vanish from the ratios."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    with duckdb.connect(str(db)) as con:  # the baseline's ONNX Runtime batch 1 failed, as a crash leaves it
        con.execute(
            "UPDATE results SET status = 'failed', error = 'worker crashed' WHERE runtime = 'onnxruntime' "
            "AND batch = 1 AND run_id = (SELECT min(run_id) FROM runs)"
        )
    app = open_page(db, "compare")
    assert not app.exception
    assert "Not compared: onnxruntime:fp32 · b1 failed in run A." in text_of(app.warning)


def test_two_machines_of_one_label_are_told_apart_by_their_fingerprint(two_runs_db, tmp_path):
    """Two CI runners both run with --label ci are two machines (Compare, the Overview's cards, the sidebar's
    filter); one machine relabelled is still one."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(two_runs_db, db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET machine_label = 'ci'")
        machine_id = con.execute("SELECT any_value(machine_id) FROM runs").fetchone()[0]
    app = open_page(db, "compare")
    assert not any("machine" in warning for warning in text_of(app.warning).split(";")), "one machine, one label"
    with duckdb.connect(str(db)) as con:  # run A came from another runner
        con.execute("UPDATE runs SET machine_id = 'f00dfeed0000' WHERE run_id = (SELECT min(run_id) FROM runs)")
        con.execute("INSERT INTO machines SELECT 'f00dfeed0000', * EXCLUDE (machine_id) FROM machines")
        con.execute("UPDATE machines SET label = 'ci'")
    app = open_page(db, "compare")
    assert not app.exception
    assert f"machine: ci (f00dfeed) → ci ({machine_id[:8]})" in text_of(app.warning)
    overview = open_page(db)  # two cards, and two entries of the sidebar's machine filter, that would read the same
    cards = [header.value.split(": ")[-1] for header in overview.subheader if "computer" in header.value]
    assert cards == [f"ci ({machine_id[:8]})", "ci (f00dfeed)"], "the machine that ran last first"
    assert sorted(overview.sidebar.multiselect[0].options) == sorted(
        f"ci · {cpu} ({machine[:8]})" for machine, cpu in api.machines(str(db))[["machine_id", "cpu_model"]].values
    )
    with duckdb.connect(str(db)) as con:  # the same machine, relabelled between the runs
        con.execute("UPDATE runs SET machine_id = ?", [machine_id])
        con.execute("UPDATE runs SET machine_label = 'ci-2' WHERE run_id = (SELECT max(run_id) FROM runs)")
    app = open_page(db, "compare")
    assert "machine:" not in text_of(app.warning)
    assert f"The same machine ({machine_id[:12]}) under two labels: ci → ci-2." in text_of(app.caption)


def test_compare_names_a_configuration_whose_parity_got_worse(detecting_db, detecting_model, tmp_path):
    """A second real run of the detecting model; its ONNX Runtime result is given a failed parity verdict in the
    copy, as a broken export would get: a ratio near 1 must not read as 'nothing changed'."""
    db = tmp_path / "parity-changed.duckdb"
    shutil.copyfile(detecting_db, db)
    with duckdb.connect(str(db), read_only=True) as con:
        ((first_run,),) = con.execute("SELECT run_id FROM runs").fetchall()
    done = engine_run(db, "--model", str(detecting_model), "--runtimes", "onnxruntime", "--iters", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE parity SET verdict = 'fail', reason = 'found 3 of the reference''s 42 boxes' WHERE "
            "result_id IN (SELECT result_id FROM results WHERE run_id <> ?)",
            [first_run],
        )
    app = open_page(db, "compare")
    assert not app.exception
    assert "parity is worse in run B for onnxruntime:fp32 · b1 pass → fail" in text_of(app.error)
    table = app.dataframe[0].value.set_index("runtime")
    assert (table.loc["onnxruntime", "parity_verdict_a"], table.loc["onnxruntime", "parity_verdict_b"]) == (
        "pass",
        "fail",
    )
    second_run = next(run for run in api.runs(db)["run_id"] if run != first_run)
    gate = engine("compare", first_run, second_run, "--db", str(db), "--fail-above", "100")
    assert gate.returncode == 1, "however fast, an export that lost its boxes fails the gate"
    assert "parity is worse in run B for onnxruntime:fp32 · b1 pass → fail" in gate.stdout


@pytest.fixture(scope="module")
def three_runs_db(filled_run, tmp_path_factory) -> Path:
    """The filled run (ONNX Runtime, OpenVINO), then PyTorch alone, then ONNX Runtime alone."""
    db = tmp_path_factory.mktemp("three-runs") / "results.duckdb"
    shutil.copyfile(filled_run["db"], db)
    for runtimes in ("pytorch", "onnxruntime"):
        assert engine_run(db, "--runtimes", runtimes, "--iters", "2").returncode == 0
    return db


def test_compare_holds_the_newest_run_against_the_newest_that_shares_a_configuration(filled_run, three_runs_db):
    """The run just before may have measured other runtimes: Compare opened on "these runs share nothing"."""
    db = three_runs_db
    newest, pytorch_run = api.runs(db)["run_id"].iloc[:2]
    app = open_page(db, "compare")
    assert (app.selectbox(key="compare_a").value, app.selectbox(key="compare_b").value) == (
        filled_run["run_id"],
        newest,
    )
    assert app.dataframe[0].value["runtime"].tolist() == ["onnxruntime"], "something to compare, at once"
    label = app.selectbox(key="compare_b").options[0]  # half-width: what tells runs apart comes first
    assert label.endswith(f" · {TEST_IMGSZ} px · {newest}") and "completed" not in label, label
    assert api.baseline_for(pytorch_run, api.results_summary(db)) is None, "no earlier run measured PyTorch"


def test_the_default_baseline_has_the_same_thread_count_where_one_does():
    """A CI job's two-thread run was held against the one-thread run tried just before it ("threads: 1 → 2")."""
    runs = [("r1", 2), ("r2", 1), ("r3", 2), ("r4", 1)]
    results = pd.DataFrame(
        [
            {
                "run_id": run_id,
                "threads": threads,
                "status": "completed",
                "runtime": "onnxruntime",
                "precision": "fp32",
                "batch": 1,
                "mode": "lean",
                "model": "yolov8n",
                "imgsz": 640,
                "machine_id": "m1",
                "started_at": pd.Timestamp("2026-11-20") + pd.Timedelta(days=day),
            }
            for day, (run_id, threads) in enumerate(runs)
        ]
    )
    assert api.baseline_for("r3", results) == "r1" and api.baseline_for("r4", results) == "r2"
    assert api.baseline_for("r2", results) == "r1", "no earlier one-thread run: the newest on the machine"


def test_the_default_baseline_is_a_run_of_the_same_model_file_size_and_machine():
    """compare RUN_B once held an untrained yolov8n against a trained YOLOv8s ("detections changed", 2.53x slower,
    exit 1 under --fail-above): a first run of a new model failed the CI gate."""
    rows = [("a", "m1", "yolov8n", "sha-n", 640), ("b", "m2", "yolov8n", "sha-n", 640),
            ("c", "m1", "yolov8n", "sha-n", 320), ("d", "m1", "yolov8n", "sha-other", 640),
            ("e", "m1", "yolov8n", "sha-n", 640)]  # fmt: skip
    results = pd.DataFrame([
        {"run_id": run_id, "threads": 2, "status": "completed", "runtime": "onnxruntime", "precision": "fp32",
         "batch": 1, "mode": "lean", "model": model, "imgsz": imgsz, "machine_id": machine,
         "started_at": pd.Timestamp("2026-11-20") + pd.Timedelta(days=day)}
        for day, (run_id, machine, model, _, imgsz) in enumerate(rows)
    ])  # fmt: skip
    runs = pd.DataFrame({"run_id": [r[0] for r in rows], "model_sha256": [r[3] for r in rows]})
    assert api.baseline_for("e", results, runs) == "a", "not b (another machine), c (320 px) nor d (another file)"
    assert api.baseline_for("d", results, runs) is None, "the first run of that file has no baseline"
    assert api.baseline_for("b", results, runs) is None, "nor the first run on a machine"


def test_the_cli_compare_given_run_b_alone_chooses_the_baseline_as_the_page_does(filled_run, three_runs_db):
    newest, pytorch_run = api.runs(three_runs_db)["run_id"].iloc[:2]
    done = engine("compare", newest, "--db", str(three_runs_db), "--json")
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["run_a"], json.loads(done.stdout)["run_b"]) == (filled_run["run_id"], newest)
    done = engine("compare", pytorch_run, "--db", str(three_runs_db), "--fail-above", "1.5")
    assert done.returncode == 0 and done.stdout.startswith("no baseline: "), done.stderr
    assert f"python -m engine compare RUN_A {pytorch_run}" in done.stdout


def test_compare_with_one_run_asks_for_another(filled_db):
    app = open_page(filled_db, "compare")
    assert "only one run" in text_of(app.info)


def test_machines_lists_the_fingerprint_and_run_count(two_runs_db):
    app = open_page(two_runs_db, "machines")
    machine = api.machines(two_runs_db).iloc[0]
    assert machine["label"] in text_of(app.subheader)
    assert [metric.value for metric in app.metric if metric.label == "Runs"] == ["2"]


def test_the_fastest_machine_is_judged_at_one_image_size(filled_db, tmp_path):
    """A smaller input is faster, not better: a 96 px run must not win over the 160 px results."""
    db = tmp_path / "two-sizes.duckdb"
    shutil.copyfile(filled_db, db)
    done = engine_run(db, "--runtimes", "onnxruntime", "--imgsz", "96", "--iters", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    app = open_page(db, "machines")
    assert not app.exception
    assert set(table_with(app, "imgsz")["imgsz"]) == {TEST_IMGSZ}, "the size with the most results first"
    app.get("button_group")[0].set_value(96).run()
    assert not app.exception
    assert table_with(app, "imgsz")["imgsz"].tolist() == [96]
    assert "at batch 1, 96 px" in text_of(app.markdown)


def test_share_builds_a_report_and_csv_downloads(filled_run):
    app = open_page(filled_run["db"], "share")
    labels = [button.proto.label for button in elements(app, "download_button")]
    assert labels == [
        "Download the HTML report",
        "Results as CSV",
        "Every table of the run (CSV, zip)",
        "Bundle for another machine's dashboard (zip)",
    ]
    app.radio(key="share_source").set_value("The History selection").run()
    assert not app.exception
    assert "Selection: " in text_of(app.caption)


def report_results(report: str) -> list[dict]:
    """The rows of a report's results table, as {header: cell text}."""
    import re

    section = report.split("<h2>Results", 1)[1].split("<h2>", 1)[0]
    rows = [
        re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", section, re.S)
    ]
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def test_the_report_lists_results_fastest_first_and_failures_last(filled_run, two_runs_db):
    """As the Overview's table: a reader looks for the one to deploy at the top."""
    from dashboard import data

    report = data.run_report(filled_run["db"], filled_run["run_id"])
    rows = report_results(report)
    assert [float(row["total ms"]) for row in rows] == sorted(float(row["total ms"]) for row in rows)
    assert "error" not in rows[0], "no result failed: no empty error column"
    smallest = min(rows, key=lambda row: float(row["model MB"]))
    assert (
        f"<td>smallest on disk</td>\n      <td>{smallest['runtime']}:{smallest['precision']}: "
        f"{smallest['model MB']} MB</td>"
    ) in report, "named as on the Overview"
    assert all(row["peak MB"].isdigit() for row in rows), "whole MB, as on the dashboard"
    assert all(row["stability"].split(" (cv ")[0] in ("stable", "⚠ unstable") for row in rows), "words, not True"
    failing_run = api.runs(two_runs_db)["run_id"].iloc[0]  # onnxruntime beside a runtime that crashes
    rows = report_results(data.run_report(two_runs_db, failing_run))
    assert [row["status"] for row in rows] == ["completed", "failed"] and rows[1]["runtime"] == "fault-segfault"
    assert "crashed with SIGSEGV" in rows[1]["error"], rows[1]


def test_the_share_preview_lists_results_as_the_report_does(two_runs_db):
    """Fastest first, failures last: the run beside a crashing runtime listed its failure ("fault-...") first."""
    from dashboard import data

    app = open_page(two_runs_db, "share")
    shown = app.dataframe[0].value
    assert shown["status"].tolist() == ["completed", "failed"], shown[["runtime", "status"]]
    in_report = [row["runtime"] for row in report_results(data.run_report(two_runs_db, app.selectbox[0].value))]
    assert shown["runtime"].tolist() == in_report


def test_an_unreadable_database_shows_an_error_on_every_page(tmp_path):
    not_a_database = tmp_path / "notes.duckdb"
    not_a_database.write_text("these are notes, not a DuckDB file\n" * 100)
    for page in PAGES:
        app = open_page(not_a_database, page)
        assert not app.exception, page
        if page != "run":
            assert "cannot be opened" in text_of(app.error), page


def test_the_server_process_never_imports_a_runtime(filled_db):
    """Every page, rendered in a fresh interpreter as the server would; then look at what got imported."""
    script = (
        "import sys\n"
        "from tests.dashboard_app import PAGES, open_page\n"
        f"for page in PAGES:\n"
        f"    app = open_page({str(filled_db)!r}, page)\n"
        "    assert not app.exception, page\n"
        f"print(sorted(name for name in {HEAVY_MODULES!r} if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
