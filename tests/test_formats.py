"""The formats a deployer weighs beside the default six, each run for real at a small image size: NCNN, MNN,
PaddlePaddle, ExecuTorch, TensorFlow GraphDef, OpenCV DNN and ONNX Runtime's static int8; CoreML exported and
stored, and on Linux not run, with its reason. The model is tests/detecting_model.py's, so parity compares boxes.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from engine.parity import VERDICTS
from tests.conftest import engine, engine_run, parse_json_output

NEW_RUNTIMES = ("ncnn", "mnn", "paddle", "executorch", "tf-graphdef", "opencv-dnn", "onnxruntime:int8")
# fp16 and int8 variants of the mobile runtimes: parity may drift there, and must still be judged
OTHER_PRECISIONS = ("ncnn:fp16", "mnn:fp16", "mnn:int8")
THREADS = 2
# Runtimes whose library gives the thread count back (MNN's Python API sets it and has no getter)
READS_THREADS_BACK = {"ncnn", "paddle", "executorch", "tf-graphdef", "opencv-dnn", "onnxruntime"}


def _results(db, run_id: str) -> list[dict]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute(
            """SELECT r.runtime, r.precision, r.batch, r.mode, r.status, r.error, r.export_cached, r.export_s,
                      r.model_mb, r.settings, s.parity_verdict, s.parity_reason
               FROM results r JOIN results_summary s USING (result_id) WHERE r.run_id = ?
               ORDER BY r.runtime, r.precision, r.mode, r.batch""",
            [run_id],
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def formats_run(tmp_path_factory, detecting_model):
    db = tmp_path_factory.mktemp("formats") / "results.duckdb"
    runtimes = ",".join((*NEW_RUNTIMES, *OTHER_PRECISIONS))
    done = engine_run(
        db, "--model", str(detecting_model), "--runtimes", runtimes, "--batch", "1,2", "--iters", "2",
        "--threads", str(THREADS), "--json", timeout=1500,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return {"db": db, "run_id": parse_json_output(done)["run_id"], "stderr": done.stderr}


def test_every_new_runtime_completes_both_batch_sizes_with_a_parity_verdict(formats_run):
    rows = _results(formats_run["db"], formats_run["run_id"])
    expected = {(*name.split(":"), batch) for name in NEW_RUNTIMES + OTHER_PRECISIONS for batch in (1, 2)}
    expected = {(r[0], r[1] if len(r) == 3 else "fp32", r[-1]) for r in expected}
    assert {(r["runtime"], r["precision"], r["batch"]) for r in rows} == expected
    for row in rows:
        label = f"{row['runtime']}:{row['precision']} b{row['batch']}"
        assert row["status"] == "completed", f"{label}: {row['error']}"
        assert row["parity_verdict"] in VERDICTS, f"{label}: {row['parity_reason']}"
        if row["precision"] == "fp32":
            assert row["parity_verdict"] == "pass", f"{label}: {row['parity_reason']}"
        assert row["model_mb"] > 0, label


def test_each_runtime_sets_its_threads_and_reads_them_back(formats_run):
    for row in _results(formats_run["db"], formats_run["run_id"]):
        settings = json.loads(row["settings"])
        assert settings["threads"] == THREADS, f"{row['runtime']}: {settings}"
        assert settings.get("threads_read_back", True) is (row["runtime"] in READS_THREADS_BACK), row["runtime"]


def test_onnxruntime_int8_is_static_and_stored_with_its_calibration(formats_run, sample_images):
    (row, _) = [r for r in _results(formats_run["db"], formats_run["run_id"]) if r["runtime"] == "onnxruntime"]
    settings = json.loads(row["settings"])
    assert settings["quantization"].startswith("static int8")
    calibration = settings["calibration"]
    assert calibration["augmented_copies"] > 0
    assert set(calibration["images"]) == {image.name for image in sample_images}, "the run's own images"
    assert row["model_mb"] < 0.5 * next(
        r["model_mb"] for r in _results(formats_run["db"], formats_run["run_id"]) if r["runtime"] == "opencv-dnn"
    ), "int8 weights: a quarter of the fp32 ONNX file's size, and some graph"


def test_a_second_identical_run_exports_nothing_and_the_predictor_runs_each_format(formats_run, detecting_model):
    """The same artifacts again, through Ultralytics' predictor at batch 1 (it loads every one of these formats,
    OpenCV DNN's through dnn=True): every export comes from the cache."""
    db = formats_run["db"]
    done = engine_run(
        db, "--model", str(detecting_model), "--runtimes", ",".join(NEW_RUNTIMES), "--batch", "1",
        "--iters", "2", "--threads", str(THREADS), "--modes", "ultralytics", "--json", timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exporting" not in done.stderr, done.stderr
    rows = _results(db, parse_json_output(done)["run_id"])
    assert len(rows) == len(NEW_RUNTIMES)
    for row in rows:
        label = f"{row['runtime']}:{row['precision']}/{row['mode']}"
        assert row["status"] == "completed", f"{label}: {row['error']}"
        assert row["export_cached"] is True, label
        assert row["parity_verdict"] in VERDICTS, f"{label}: {row['parity_reason']}"
    dnn = next(r for r in rows if r["runtime"] == "opencv-dnn" and r["mode"] == "ultralytics")
    assert json.loads(dnn["settings"])["predictor_arguments"] == {"dnn": True}


def test_coreml_is_exported_and_stored_and_says_why_it_does_not_run_here(tmp_path, detecting_model):
    listed = {info["name"]: info for info in json.loads(engine("runtimes", "--json").stdout)}
    assert listed["coreml"]["available"] and listed["coreml"]["export_only"] == "CoreML runs on macOS only"
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--model", str(detecting_model), "--runtimes", "coreml", "--batch", "1", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exported and stored, not run: CoreML runs on macOS only" in done.stderr
    document = parse_json_output(done)
    assert document["status"] == "completed"
    (row,) = _results(db, document["run_id"])
    assert (row["status"], row["error"]) == ("exported", "CoreML runs on macOS only")
    assert row["model_mb"] > 1 and (row["export_s"] > 0 or row["export_cached"])
    assert engine("check-regressions", "--db", str(db)).returncode == 0


def test_the_default_runtimes_stay_the_six():
    from engine.config import DEFAULT_RUNTIMES, RunConfig

    assert RunConfig().runtimes == list(DEFAULT_RUNTIMES)
    assert DEFAULT_RUNTIMES == ("pytorch", "torchscript", "onnxruntime", "openvino", "tensorflow", "tflite")
