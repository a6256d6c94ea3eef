"""Real runs through the CLI: every runtime and precision, the export cache, JSON output, table export."""

import io
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from engine.cli_output import progress_printer
from tests.conftest import NO_NETWORK, engine, engine_run

ALL_RUNTIMES = "pytorch,torchscript,onnxruntime,openvino,tensorflow,tflite"


def summary(db, run_id):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT * FROM results_summary WHERE run_id = ? ORDER BY runtime, precision, batch", [run_id]
        ).df()


@pytest.fixture(scope="module")
def every_runtime(tmp_path_factory):
    """Every CPU runtime at every precision it offers, run twice: the second run must export nothing."""
    db = tmp_path_factory.mktemp("all") / "results.duckdb"
    runs, progress = [], []
    for _ in range(2):
        done = engine_run(
            db,
            "--model",
            "yolov8n.pt",
            "--runtimes",
            ALL_RUNTIMES,
            "--precisions",
            "all",
            "--batch",
            "1",
            "--iters",
            "3",
            "--json",
            timeout=1500,
            env=NO_NETWORK,  # the offline fallback is what this test checks, whatever network the machine has
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout))
        progress.append(done.stderr)
    return {"db": db, "first": runs[0], "second": runs[1], "second_progress": progress[1]}


def test_every_runtime_and_precision_completes(every_runtime):
    table = summary(every_runtime["db"], every_runtime["first"]["run_id"])
    got = set(zip(table.runtime, table.precision))
    assert got == {
        ("pytorch", "fp32"),
        ("torchscript", "fp32"),
        ("onnxruntime", "fp32"),
        ("onnxruntime", "int8"),
        ("openvino", "fp32"),
        ("openvino", "bf16"),
        ("openvino", "int8"),
        ("tensorflow", "fp32"),
        ("tflite", "fp32"),
        ("tflite", "int8"),
    }
    assert (table.status == "completed").all(), table[["runtime", "precision", "error"]]
    assert (table.infer_ms > 0).all() and (table.pre_ms > 0).all() and (table.post_ms > 0).all()
    assert (table.imgsz == 160).all()
    assert not table.weights_trained.any(), "offline, the default model is the untrained fallback"
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        runs = con.execute("SELECT model, model_source FROM runs").fetchall()
    assert {model for model, _ in runs} == {"yolov8n (untrained weights, seed 0)"}, runs
    assert all("yolov8n.pt could not be downloaded (offline?)" in source for _, source in runs), runs
    for number, run in enumerate((every_runtime["first"], every_runtime["second"]), start=1):
        watch = run["regression_watch"]  # --json carries the regression watch's verdict on each result
        assert sorted(v["result_id"] for v in watch) == sorted(r["result_id"] for r in run["results"])
        assert {(v["verdict"], v["history"]) for v in watch} == {("not enough history", number - 1)}


def test_settings_are_read_back_and_recorded(every_runtime):
    table = summary(every_runtime["db"], every_runtime["first"]["run_id"]).set_index(["runtime", "precision"])
    settings = {key: json.loads(value) for key, value in table.settings.items()}
    for key, values in settings.items():
        assert values.get("threads") == table.loc[key, "threads"], key
    assert settings[("openvino", "fp32")]["inference_precision"] == "f32"
    assert settings[("openvino", "fp32")]["performance_hint"] == "LATENCY"
    assert settings[("tflite", "int8")]["model_file"].endswith("_int8.tflite")
    assert (
        settings[("pytorch", "fp32")]["memory_format"]
        == settings[("torchscript", "fp32")]["memory_format"]
        == ("channels_last")
    )
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        shapes = con.execute("SELECT DISTINCT input_shape FROM results").fetchall()
    assert {tuple(s[0]) for s in shapes} <= {(1, 3, 160, 160), (1, 160, 160, 3)}


def test_each_result_records_its_worker_peak_memory(every_runtime, tmp_path):
    """The worker's own peak (VmHWM), not getrusage's, which keeps the parent's size from before exec and
    gave ONNX Runtime and TensorFlow alike about the runner's 740 MB."""
    table = summary(every_runtime["db"], every_runtime["first"]["run_id"]).set_index(["runtime", "precision"])
    memory = table["peak_memory_mb"]
    assert memory.notna().all() and (memory > 30).all() and (memory < 8000).all(), memory
    assert memory[("onnxruntime", "fp32")] < memory[("tensorflow", "fp32")] / 2, memory
    printed = engine_run(tmp_path / "results.duckdb", "--runtimes", "onnxruntime", "--iters", "2")
    first, header = printed.stdout.splitlines()[:2]  # the run's line and the table's header, as `show` prints them
    assert first.startswith("run ") and "boxes and scores mean nothing" in first, printed.stdout
    assert "peak MB" in header, printed.stdout
    assert "fastest: onnxruntime:fp32 b1, " in printed.stdout.splitlines()[-2], printed.stdout


def test_a_run_ends_with_the_regression_watch_on_its_results(tmp_path):
    """As the Overview flags it: a nightly log says whether this run got slower than its history."""
    db = tmp_path / "results.duckdb"
    first = engine_run(db, "--runtimes", "onnxruntime", "--iters", "6")
    assert first.stdout.splitlines()[-1] == "regression watch: a configuration needs 3 runs before changes are flagged"
    # two earlier runs like it, and all three a hundred times faster: beyond any noise between two runs of six
    # iterations (a clean clone's first run once measured 3.4x slower than its second, and three times faster
    # read as an improvement)
    with duckdb.connect(str(db)) as con:
        (run_id,) = con.execute("SELECT run_id FROM runs").fetchone()
        for copy in ("-a", "-b"):
            con.execute(
                "INSERT INTO runs SELECT * REPLACE (run_id || ? AS run_id, started_at - INTERVAL 1 DAY AS "
                "started_at) FROM runs WHERE run_id = ?",
                [copy, run_id],
            )
            con.execute(
                "INSERT INTO stats SELECT * REPLACE (result_id || ? AS result_id) FROM stats WHERE "
                "result_id IN (SELECT result_id FROM results WHERE run_id = ?)",
                [copy, run_id],
            )
            con.execute(
                "INSERT INTO results SELECT * REPLACE (result_id || ? AS result_id, run_id || ? AS run_id) "
                "FROM results WHERE run_id = ?",
                [copy, copy, run_id],
            )
        con.execute(
            "UPDATE stats SET median_ms = median_ms / 100, ci_low_ms = ci_low_ms / 100, "
            "ci_high_ms = ci_high_ms / 100 WHERE stage = 'infer'"
        )
    second = engine_run(db, "--runtimes", "onnxruntime", "--iters", "6", "--fail-on-regression")
    last = second.stdout.splitlines()[-1]
    assert last.startswith("regression: onnxruntime:fp32 b1 infers in ") and "over its 3 earlier run(s)" in last, last
    assert second.returncode == 1 and first.returncode == 0, "asked to, it fails the CI job"


def test_each_result_records_the_size_of_the_model_its_runtime_loads(every_runtime):
    """Deploying on a phone or an edge box is decided on the file's size too: int8 files are a quarter of fp32."""
    run_id = every_runtime["first"]["run_id"]
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        files = dict(
            con.execute(
                "SELECT runtime || ':' || precision, model_file FROM results WHERE run_id = ?", [run_id]
            ).fetchall()
        )
    table = summary(every_runtime["db"], run_id)
    size = dict(zip(table.runtime + ":" + table.precision, table.model_mb))
    mib = lambda *paths: sum(Path(p).stat().st_size for p in paths) / 2**20  # noqa: E731
    assert size["onnxruntime:fp32"] == pytest.approx(mib(files["onnxruntime:fp32"]))
    assert size["pytorch:fp32"] == pytest.approx(mib(files["pytorch:fp32"]))
    xml = Path(files["openvino:fp32"])
    assert size["openvino:fp32"] == pytest.approx(mib(xml, xml.with_suffix(".bin"))) == size["openvino:bf16"]
    assert size["openvino:int8"] < size["openvino:fp32"] / 2 and size["tflite:int8"] < size["tflite:fp32"] / 2
    saved_model = Path(files["tensorflow:fp32"])
    assert size["tensorflow:fp32"] == pytest.approx(
        mib(*(p for p in saved_model.rglob("*") if p.is_file() and p.suffix != ".tflite"))
    ), "not the .tflite beside it"
    shown = engine("show", run_id, "--db", str(every_runtime["db"]))
    assert "model MB" in shown.stdout.splitlines()[1], shown.stdout
    onnx_line = next(line for line in shown.stdout.splitlines() if line.startswith("onnxruntime "))
    assert f"{size['onnxruntime:fp32']:.1f}" in onnx_line.split(), onnx_line
    smallest = min(size, key=size.get)
    assert shown.stdout.splitlines()[-2].startswith(
        f"smallest on disk: {smallest}, {size[smallest]:.1f} MB; least memory: "
    ), "the Overview's line, before fastest:"
    assert (
        every_runtime["first"]["smallest"]
        == table.set_index(table.runtime + ":" + table.precision).loc[smallest, "result_id"]
    ), "--json names it as it names the fastest"


def test_torchscript_settles_before_it_is_measured(every_runtime):
    """torch.jit profiles on its first call and optimises on its second (each about twice the steady time), so
    TorchScript gets two untimed calls even when --warmup 1 asks for one; the stored warm-up says what was done."""
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        warmups = dict(
            con.execute(
                "SELECT runtime || ':' || precision, warmup FROM results WHERE run_id = ?",
                [every_runtime["first"]["run_id"]],
            ).fetchall()
        )
    assert warmups.pop("torchscript:fp32") == 2
    assert set(warmups.values()) == {1}, warmups  # the --warmup 1 that tests.conftest.engine_run asks for


def test_second_identical_run_exports_nothing_and_takes_the_reference_it_computed(every_runtime):
    table = summary(every_runtime["db"], every_runtime["second"]["run_id"])
    exported = table[table.runtime != "pytorch"]
    assert exported.export_cached.all(), exported[["runtime", "precision", "export_cached"]]
    progress = every_runtime["second_progress"]
    assert (
        "parity reference: pytorch:fp32 yolov8n-untrained-seed0.pt, kept from an earlier run with the same "
        "model, images and settings"
        in progress
        and "computing the parity reference" not in progress
    ), progress
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        boxes = [
            con.execute(
                "SELECT * EXCLUDE (run_id) FROM reference_detections WHERE run_id = ? ORDER BY ALL",
                [every_runtime[run]["run_id"]],
            ).fetchall()
            for run in ("first", "second")
        ]
    assert boxes[0] == boxes[1]


def model_files(db, run_id) -> dict:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT runtime, precision, batch, model_file, export_cached FROM results WHERE run_id = ?", [run_id]
        ).fetchall()
    return {(runtime, precision, batch): (Path(file), cached) for runtime, precision, batch, file, cached in rows}


def test_one_export_serves_what_it_can(every_runtime):
    """TensorFlow and both TFLite precisions share one SavedModel export; one TorchScript trace runs any batch."""
    first = model_files(every_runtime["db"], every_runtime["first"]["run_id"])
    saved_model, _ = first[("tensorflow", "fp32", 1)]
    for precision in ("fp32", "int8"):
        tflite, cached = first[("tflite", precision, 1)]
        assert tflite.parent == saved_model and cached, "the tensorflow variant exported it first"
    table = summary(every_runtime["db"], every_runtime["first"]["run_id"]).set_index(["runtime", "precision"])
    assert json.loads(table.loc[("tflite", "int8"), "settings"])["quantization"].startswith("dynamic range")
    done = engine_run(every_runtime["db"], "--runtimes", "torchscript", "--batch", "2", "--iters", "2", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = json.loads(done.stdout)["run_id"]
    batch2 = summary(every_runtime["db"], run_id).iloc[0]
    assert batch2.status == "completed" and batch2.parity_verdict == "pass", batch2.error
    assert model_files(every_runtime["db"], run_id)[("torchscript", "fp32", 2)] == (
        first[("torchscript", "fp32", 1)][0],
        True,
    )


def test_exports_agree_with_pytorch_on_detections(every_runtime):
    """Untrained weights detect nothing; every fp32 export must agree on that (int8 may drift)."""
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        counts = con.execute(
            """SELECT r.runtime, r.precision, sum(i.detections) FROM result_images i JOIN results r USING (result_id)
               WHERE r.run_id = ? GROUP BY ALL""",
            [every_runtime["first"]["run_id"]],
        ).fetchall()
    fp32 = {runtime: n for runtime, precision, n in counts if precision == "fp32"}
    assert len(set(fp32.values())) == 1, fp32


def test_every_completed_result_has_a_parity_verdict(every_runtime):
    """Untrained weights detect nothing, so the raw tensors decide; fp32 exports agree with PyTorch."""
    table = summary(every_runtime["db"], every_runtime["first"]["run_id"])
    assert table.parity_verdict.notna().all(), table[["runtime", "precision", "parity_reason"]]
    assert table.parity_reference.str.startswith("pytorch:fp32 ").all()
    fp32 = table[table.precision == "fp32"]
    assert (fp32.parity_verdict == "pass").all(), fp32[["runtime", "parity_reason"]]
    assert (fp32.parity_raw_max_abs < 0.01).all()
    int8 = table[table.precision == "int8"]
    assert len(int8) == 3 and int8.parity_raw_max_abs.notna().all() and int8.parity_raw_mean_abs.notna().all()
    assert (table.parity_matched + table.parity_missed + table.parity_extra == 0).all()
    assert table.map50.isna().all() and table.map_data.isna().all(), "no labelled data"


def test_annotated_images_exist_and_say_untrained(every_runtime):
    with duckdb.connect(str(every_runtime["db"]), read_only=True) as con:
        paths = [row[0] for row in con.execute("SELECT annotated_path FROM result_images").fetchall()]
    from pathlib import Path

    assert paths and all(Path(p).is_file() for p in paths)


def test_json_document_lists_every_result(every_runtime):
    document = every_runtime["first"]
    assert document["status"] == "completed"
    assert len(document["results"]) == 10
    assert all(r["status"] == "completed" and r["infer_ms"] > 0 for r in document["results"])


def test_batch_sizes_give_per_image_figures(filled_run):
    table = summary(filled_run["db"], filled_run["run_id"])
    assert sorted(table.batch.unique()) == [1, 2]
    assert (table.throughput_ips > 0).all()
    assert (table.iterations == 6).all()


def test_export_run_to_parquet_and_csv(filled_run, tmp_path):
    for fmt in ("parquet", "csv"):
        done = engine(
            "export",
            "--run",
            filled_run["run_id"],
            "--format",
            fmt,
            "--db",
            str(filled_run["db"]),
            "--out",
            str(tmp_path / fmt),
        )
        assert done.returncode == 0, done.stderr
        files = done.stdout.split()
        assert any(f.endswith(f"results_summary.{fmt}") for f in files)
    samples = pd.read_parquet(tmp_path / "parquet" / f"{filled_run['run_id']}-samples.parquet")
    assert len(samples) == 4 * 6  # 2 runtimes x 2 batch sizes x 6 iterations


def test_export_of_unknown_run_is_refused(filled_run, tmp_path):
    done = engine("export", "--run", "no-such-run", "--db", str(filled_run["db"]), "--out", str(tmp_path))
    assert done.returncode == 2 and "no-such-run is not in" in done.stderr


def test_export_and_bundle_take_the_run_id_as_show_and_compare_do(filled_run, tmp_path):
    """`export RUN_ID` was refused ("unrecognized arguments") while `show RUN_ID` took it; --run still works."""
    db, run_id = str(filled_run["db"]), filled_run["run_id"]
    done = engine("export", run_id, "--format", "csv", "--db", db, "--out", str(tmp_path / "csv"))
    assert done.returncode == 0 and (tmp_path / "csv" / f"{run_id}-results_summary.csv").is_file(), done.stderr
    done = engine("bundle", run_id, "--db", db, "--out", str(tmp_path / "run.zip"))
    assert done.returncode == 0 and (tmp_path / "run.zip").is_file(), done.stderr
    for command in (["export", "--out", str(tmp_path)], ["bundle", "--out", str(tmp_path / "x.zip")]):
        done = engine(*command, "--db", db)
        assert done.returncode == 2 and f"python -m engine {command[0]} RUN_ID" in done.stderr, done.stderr
        done = engine(*command, run_id, "--run", "another-run", "--db", db)
        assert done.returncode == 2 and "two run ids given" in done.stderr, done.stderr


def test_modes_all_and_both_mean_both_pipelines_as_precisions_all_does():
    """The help said "lean, ultralytics, or both", and --modes both was refused as an unknown mode (a real run
    with --modes both: tests/test_pipeline_modes.py's)."""
    from engine.config import parse_modes

    assert parse_modes("all") == parse_modes("both") == parse_modes("lean,ultralytics")


def test_runtimes_listing():
    done = engine("runtimes", "--json")
    listed = {r["name"]: r for r in json.loads(done.stdout)}
    assert {"pytorch", "torchscript", "onnxruntime", "openvino", "tensorflow", "tflite"} <= set(listed)
    assert listed["openvino"]["precisions"] == ["fp32", "bf16", "int8"]


def test_progress_names_the_weights_once():
    stream = io.StringIO()
    show = progress_printer(stream)
    event = {"event": "run_started", "run_id": "r1", "machine": "vm", "variants": ["openvino:fp32"]}
    show({**event, "model": "yolov8n (untrained weights, seed 0)", "weights_trained": False})
    show({**event, "model": "yolov8n", "weights_trained": True})
    first, second = stream.getvalue().splitlines()
    assert first.lower().count("untrained") == 1, first
    assert "yolov8n (trained weights) on vm" in second
