"""The lean pipeline (the engine's own) and the ultralytics pipeline (Ultralytics' predictor on the same
artifact) find the same boxes on the same inputs, for every CPU runtime at fp32. OpenVINO also runs at bf16 in
both modes (the precision its CPU plugin picks by default where the CPU has bf16, so the one most Ultralytics
users get there): bf16 moves this model's boxes in both (parity 'drift' against the fp32 reference, by rounding
that differs with where the /255 scale lands), so there the test is that each row ran the precision it names.

Both modes see the same square letterbox: the engine's ultralytics mode passes rect=False, which Ultralytics
honours for every format (static exports are square anyway; .pt and TorchScript would otherwise be padded
to the smallest stride multiple). The model is tests/detecting_model.py's, so there are boxes to compare.

TFLite runs the same boxes in both modes because engine.export writes its .tflite files with Ultralytics'
normalised boxes: onnx2tf's pixel-box file made Ultralytics' LiteRT backend multiply every box by the input
size again, so every box landed in the image's far corner (this test was a strict xfail then).
"""

import duckdb
import pytest

from engine.parity import match_detections
from tests.conftest import engine_run, parse_json_output

CPU_RUNTIMES = ("pytorch", "torchscript", "onnxruntime", "openvino", "tensorflow", "tflite")
SAME_BOX_IOU = 0.9


@pytest.fixture(scope="module")
def modes_run(tmp_path_factory, detecting_model):
    db = tmp_path_factory.mktemp("modes") / "results.duckdb"
    runtimes = ",".join((*CPU_RUNTIMES, "openvino:bf16"))
    # "both", as the help offers it (it was once refused as an unknown mode): every row below has both modes
    done = engine_run(
        db, "--model", str(detecting_model), "--runtimes", runtimes, "--modes", "both", "--iters", "2", "--json"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"db": db, "run_id": parse_json_output(done)["run_id"]}


def boxes(db, run_id: str, runtime: str, mode: str) -> dict[str, list[dict]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            """SELECT d.image, d.x1, d.y1, d.x2, d.y2, d.score, d.class_id FROM detections d
               JOIN results r USING (result_id)
               WHERE r.run_id = ? AND r.runtime = ? AND r.precision = 'fp32' AND r.mode = ?
               ORDER BY d.image, d.det_index""",
            [run_id, runtime, mode],
        ).fetchall()
    found: dict[str, list[dict]] = {}
    for image, x1, y1, x2, y2, score, class_id in rows:
        found.setdefault(image, []).append(
            {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": score, "class_id": class_id}
        )
    return found


def summary(db, run_id: str):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            """SELECT runtime, precision, mode, status, error, parity_verdict, parity_reason, other_ms, total_ms,
                      pre_ms + infer_ms + post_ms, peak_fraction, achieved_gflops, floor_ms
               FROM results_summary WHERE run_id = ?""",
            [run_id],
        ).fetchall()


@pytest.mark.parametrize("runtime", CPU_RUNTIMES)
def test_lean_and_ultralytics_modes_find_the_same_boxes(modes_run, runtime):
    lean = boxes(modes_run["db"], modes_run["run_id"], runtime, "lean")
    ultralytics = boxes(modes_run["db"], modes_run["run_id"], runtime, "ultralytics")
    assert sum(map(len, lean.values())) > 0, "the detecting model finds boxes, so there is something to compare"
    assert lean.keys() == ultralytics.keys()
    for image, lean_boxes in lean.items():
        matches = match_detections(lean_boxes, ultralytics[image], SAME_BOX_IOU)
        assert len(lean_boxes) == len(ultralytics[image]) == len(matches), (
            f"{runtime} {image}: {len(lean_boxes)} lean boxes, {len(ultralytics[image])} ultralytics boxes, "
            f"{len(matches)} matched at IoU >= {SAME_BOX_IOU} and the same class"
        )


def test_every_result_completes_with_mode_parity_and_efficiency(modes_run):
    rows = summary(modes_run["db"], modes_run["run_id"])
    assert {(runtime, precision, mode) for runtime, precision, mode, *_ in rows} == {
        (r, p, m)
        for r, p in [(r, "fp32") for r in CPU_RUNTIMES] + [("openvino", "bf16")]
        for m in ("lean", "ultralytics")
    }
    for (
        runtime,
        precision,
        mode,
        status,
        error,
        verdict,
        reason,
        other_ms,
        total_ms,
        stage_sum,
        fraction,
        achieved,
        floor,
    ) in rows:
        assert status == "completed", f"{runtime} {mode}: {error}"
        assert 0 < fraction < 1.5 and achieved > 0 and floor > 0, f"{runtime} {mode}: efficiency {fraction}"
        if mode == "ultralytics":
            assert "raw output not available in ultralytics mode" in reason
            expected = {"pass", "drift"} if precision == "bf16" else {"pass"}
            assert verdict in expected, f"{runtime} {precision}: {reason}"
            assert other_ms is not None and total_ms == pytest.approx(stage_sum + other_ms, rel=0.2)
        else:
            assert other_ms is None


def test_ultralytics_mode_runs_openvino_at_the_precision_its_row_names(modes_run):
    """OpenVINO's CPU plugin would run bf16 on a CPU that has it; the fp32 row must hold an fp32 run, and the
    bf16 row a bf16 run where the CPU has bf16 (f32 elsewhere, as the lean row does)."""
    import json

    from engine.machine import fingerprint

    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(fingerprint()["isa_flags"]))
    with duckdb.connect(str(modes_run["db"]), read_only=True) as con:
        rows = con.execute(
            "SELECT precision, mode, settings FROM results WHERE run_id = ? AND runtime = 'openvino'",
            [modes_run["run_id"]],
        ).fetchall()
    ran = {(precision, mode): json.loads(settings)["inference_precision"] for precision, mode, settings in rows}
    assert ran[("fp32", "ultralytics")] == ran[("fp32", "lean")] == "f32"
    devices = {(precision, mode): json.loads(settings).get("device") for precision, mode, settings in rows}
    assert devices[("fp32", "ultralytics")] == devices[("bf16", "ultralytics")] == "cpu"
    assert ran[("bf16", "ultralytics")] == ran[("bf16", "lean")] == ("bf16" if has_bf16 else "f32")


def test_the_overview_shows_what_the_predictor_adds_to_each_runtime(modes_run):
    from dashboard import charts, data
    from engine import api
    from tests.dashboard_app import open_page, text_of

    app = open_page(modes_run["db"])
    assert not app.exception and not app.error
    shown = next(frame.value for frame in app.dataframe if "ultralytics_ms" in frame.value)
    expected = charts.mode_costs(api.results_summary(modes_run["db"], {"run_id": modes_run["run_id"]}))
    assert len(shown) == len(CPU_RUNTIMES) + 1  # every runtime at fp32, and OpenVINO at bf16
    assert shown["ratio"].tolist() == pytest.approx(expected["ratio"].tolist())
    assert shown["added_ms"].tolist() == pytest.approx((shown["ultralytics_ms"] - shown["lean_ms"]).tolist())
    assert (shown["added_mb"] > 100).all(), shown[["runtime", "added_mb"]]  # the predictor imports PyTorch
    assert "What Ultralytics' predictor adds" in text_of(app.markdown)
    report = data.run_report(str(modes_run["db"]), modes_run["run_id"])
    assert "<h2>What Ultralytics&#x27; predictor adds" in report, "the shared HTML report has the same table"


def test_detections_name_the_ultralytics_mode_beside_its_lean_twin(modes_run):
    from tests.dashboard_app import open_page

    app = open_page(modes_run["db"], "detections")
    assert not app.exception and not app.error
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert "onnxruntime:fp32 · lean · batch 1" in captions
    lean_at = captions.index("onnxruntime:fp32 · lean · batch 1")
    assert captions[lean_at + 1] == "onnxruntime:fp32 · ultralytics · batch 1", (
        "each runtime's ultralytics-mode image follows its lean one, named as on the Overview's bars"
    )
    assert len(set(captions)) == len(captions)


def test_detections_show_only_the_runtimes_picked(modes_run):
    """Fourteen cards (seven configurations in two modes) make a long page; "Show" narrows it to those compared."""
    from tests.dashboard_app import open_page

    app = open_page(modes_run["db"], "detections")
    show = next(
        control for control in app.get("button_group") if control.key == f"detections_shown-{modes_run['run_id']}"
    )
    assert len(show.value) == len(app.get("image")) == 2 * (len(CPU_RUNTIMES) + 1), "all of them at first"
    picked = [result_id for result_id in show.value if result_id.endswith(("openvino-fp32-b1", "tflite-fp32-b1"))]
    show.set_value(picked).run()
    assert not app.exception
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert captions == ["openvino:fp32 · lean · batch 1", "tflite:fp32 · lean · batch 1"]
    show.set_value([]).run()
    assert not app.get("image") and "Pick at least one runtime" in app.info[0].value
    app.toggle(key="overlay").set_value(True).run()
    assert not app.exception and len(app.get("image")) == 1, "the overlay still offers every runtime of the run"


def test_a_result_passed_over_for_failed_parity_is_named_with_its_mode(modes_run, tmp_path):
    """In a run of both modes, "openvino:fp32 · batch 1" names two results: the warning and the report say which.
    The fastest result is given a failed parity verdict in a copy of the real run's database."""
    import shutil

    from dashboard.report import run_report
    from engine import api
    from tests.dashboard_app import open_page, text_of

    db = tmp_path / "results.duckdb"
    shutil.copyfile(modes_run["db"], db)
    fastest = api.results_summary(str(db)).sort_values("total_ms").iloc[0]
    with duckdb.connect(str(db)) as con:
        con.execute(
            "UPDATE parity SET verdict = 'fail', reason = 'made to fail' WHERE result_id = ?", [fastest.result_id]
        )
    named = f"{fastest.runtime}:{fastest.precision} · {fastest['mode']} · batch 1"
    app = open_page(db)
    assert not app.exception
    assert f"{named}**, {fastest.total_ms:.2f} ms: made to fail" in text_of(app.warning)
    run = api.runs(str(db)).iloc[0]
    report = run_report(run, None, api.results_summary(str(db)), api.result_images(str(db), run["run_id"]))
    assert f"<td>{named}: {fastest.total_ms:.2f} ms, made to fail</td>" in report
