"""The CLI keeps the README's word: YOLO_BENCH_DB for every command, --conf and --iou, restore, one JSON shape
for run and show, no work dropped in silence, exports under the results, and a hint for a near-miss name."""

from __future__ import annotations

import json

import pytest

from engine import api
from tests.conftest import engine, engine_run
from tests.test_fixture_bundle import FIXTURES


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory):
    """A database holding the kept fixture run, made by importing its bundle (no measuring)."""
    db = tmp_path_factory.mktemp("promises") / "elsewhere.duckdb"
    assert api.import_bundle(str(db), str(FIXTURES / "run-before-typed-records.zip")) == "imported"
    return db


def test_every_command_reads_yolo_bench_db(fixture_db, tmp_path):
    env = {"YOLO_BENCH_DB": str(fixture_db)}
    listed = engine("runs", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)
    for command in (["show", run["run_id"]], ["check-regressions"], ["export", run["run_id"]],
                    ["bundle", run["run_id"], "--out", str(tmp_path / "b.zip")]):  # fmt: skip
        done = engine(*command, env=env)
        assert done.returncode == 0, (command, done.stderr)
    missing = engine("runs", env={"YOLO_BENCH_DB": str(tmp_path / "nowhere.duckdb")})
    assert missing.returncode == 2 and "nowhere.duckdb does not exist" in missing.stderr


def test_export_without_out_writes_beside_the_results_not_here(fixture_db):
    run_id = api.runs(str(fixture_db))["run_id"].iloc[0]
    done = engine("export", run_id, "--db", str(fixture_db))
    written = done.stdout.split()
    folder = fixture_db.parent / "elsewhere.artifacts" / "exports" / run_id
    assert done.returncode == 0 and written and all(path.startswith(str(folder)) for path in written), done.stdout


@pytest.mark.parametrize("typo, meant", [("openvno", "openvino"), ("onnxrutime", "onnxruntime")])
def test_a_near_miss_runtime_gets_a_did_you_mean(typo, meant, tmp_path):
    done = engine("run", "--runtimes", typo, "--db", str(tmp_path / "r.duckdb"))
    assert done.returncode == 2 and f"did you mean {meant!r}?" in done.stderr, done.stderr
    assert not (tmp_path / "r.duckdb").exists()


@pytest.fixture(scope="module")
def thin_run(tmp_path_factory):
    """A run of 3 iterations, with --conf and --iou, as JSON."""
    db = tmp_path_factory.mktemp("thin") / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime", "--iters", "3", "--conf", "0.5", "--iou", "0.6", "--json")
    assert done.returncode == 0, done.stderr
    return {"db": db, "done": done, "document": json.loads(done.stdout)}


def test_run_warns_when_its_iterations_give_no_verdict(thin_run):
    assert "warning: --iters 3 is too few for a 95% interval" in thin_run["done"].stderr
    (verdict,) = thin_run["document"]["regression_watch"]
    assert verdict["verdict"] == "not enough history", "a first run: no history either"


def test_run_and_show_print_one_document(thin_run):
    shown = engine("show", thin_run["document"]["run_id"], "--db", str(thin_run["db"]), "--json")
    assert shown.returncode == 0, shown.stderr
    document = {key: value for key, value in thin_run["document"].items() if key != "regression_watch"}
    assert json.loads(shown.stdout) == document
    assert {"model", "weights_trained", "imgsz"} <= set(document) and document["imgsz"] == 160
    (result,) = document["results"]
    assert {"infer_ms", "total_ms", "throughput_ips", "parity_verdict", "infer_ci_low_ms"} <= set(result)


def test_conf_and_iou_reach_the_run(thin_run):
    config = json.loads(api.runs(str(thin_run["db"]))["config"].iloc[0])
    assert (config["conf"], config["iou"]) == (0.5, 0.6)


def test_what_a_request_names_but_cannot_run_is_named_before_it_starts(tmp_path):
    """--precisions int8 ran openvino:int8 and never named onnxruntime; --in-flight said nothing where it is not
    offered."""
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "openvino,torchscript", "--precisions", "int8", "--iters", "6")
    assert done.returncode == 0, done.stderr
    assert "not measured: torchscript:int8 (torchscript offers fp32" in done.stderr, done.stderr
    assert done.stderr.index("not measured") < done.stderr.index("run "), "before the run starts"
    flight = engine_run(db, "--runtimes", "onnxruntime,torchscript", "--in-flight", "2", "--iters", "6")
    assert flight.returncode == 0, flight.stderr
    assert "not measured in flight: torchscript:fp32" in flight.stderr and "onnxruntime:fp32 in flight" not in (
        flight.stderr
    )


def test_an_onnx_model_with_the_default_runtimes_runs_those_that_take_it(filled_run, tmp_path):
    """It stored a failed run of "pytorch cannot run an .onnx file given directly" rows."""
    import duckdb

    with duckdb.connect(str(filled_run["db"]), read_only=True) as con:
        (onnx_file,) = con.execute(
            "SELECT model_file FROM results WHERE runtime = 'onnxruntime' AND batch = 1"
        ).fetchall()[0]
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--model", onnx_file, "--iters", "6", "--json")
    assert done.returncode == 0, done.stderr
    assert "an .onnx model: measuring onnxruntime, openvino; not pytorch, tensorflow, tflite, torchscript" in (
        done.stderr
    ), done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "completed"
    assert sorted(r["runtime"] for r in document["results"]) == ["onnxruntime", "openvino"]
