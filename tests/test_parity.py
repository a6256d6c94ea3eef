"""Parity with the reference and mAP on labelled data: real runs of a model that really outputs boxes.

The model is yolov8n.yaml with seeded weights made to output a few dozen boxes on the shipped images
(tests/detecting_model.py); it is not trained, and the engine records it so.
"""

import json
import shutil

import duckdb
import numpy as np
import pytest

from engine import parity, store
from engine.accuracy import prepare_labelled_data
from engine.config import BenchError
from tests.conftest import TEST_IMGSZ, database_at_version, engine_run
from tests.detecting_model import build_detecting_model, torch_threads

NAMES = {i: str(i) for i in range(80)}


def summary(db, run_id=None):
    with duckdb.connect(str(db), read_only=True) as con:
        run_id = run_id or con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()[0][0]
        table = con.execute("SELECT * FROM results_summary WHERE run_id = ?", [run_id]).df()
    return table.set_index(["runtime", "precision"])


def yolo_label_lines(detections, width: int, height: int) -> str:
    return "".join(
        f"{d.class_id} {(d.x1 + d.x2) / 2 / width:.6f} {(d.y1 + d.y2) / 2 / height:.6f} "
        f"{(d.x2 - d.x1) / width:.6f} {(d.y2 - d.y1) / height:.6f}\n"
        for d in detections
    )


@pytest.fixture(scope="module")
def labelled_data(tmp_path_factory, detecting_model, sample_images):
    """The two shipped images, labelled with the detecting model's own PyTorch boxes, and a dataset yaml."""
    from engine.pipeline import decode_image, postprocess, preprocess
    from engine.runtimes.pytorch import PyTorchRuntime

    root = tmp_path_factory.mktemp("labelled")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    runtime = PyTorchRuntime(detecting_model, "fp32", 2, 1, TEST_IMGSZ)
    runtime.load()
    for image in sample_images:
        frame = decode_image(image)
        tensor, placements = preprocess([frame], TEST_IMGSZ, "nchw")
        found = postprocess(runtime.infer(tensor), placements, 0.25, 0.45)[0]
        shutil.copyfile(image, root / "images" / image.name)
        (root / "labels" / f"{image.stem}.txt").write_text(yolo_label_lines(found, frame.shape[1], frame.shape[0]))
    names = "\n".join(f"  {i}: '{i}'" for i in range(80))
    yaml_path = root / "data.yaml"
    yaml_path.write_text(f"path: {root}\ntrain: images\nval: images\nnames:\n{names}\n")
    return yaml_path


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, detecting_model, labelled_data):
    """PyTorch, ONNX Runtime and OpenVINO (fp32 and int8) against the PyTorch reference, with mAP."""
    db = tmp_path_factory.mktemp("parity") / "results.duckdb"
    done = engine_run(
        db,
        "--model",
        str(detecting_model),
        "--runtimes",
        "pytorch,onnxruntime,openvino",
        "--precisions",
        "fp32,int8",
        "--iters",
        "2",
        "--data",
        str(labelled_data),
        "--json",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"db": db, "document": json.loads(done.stdout), "table": summary(db)}


def test_the_detecting_model_outputs_a_few_dozen_boxes_and_is_not_called_trained(parity_run):
    with duckdb.connect(str(parity_run["db"]), read_only=True) as con:
        per_image = dict(con.execute("SELECT image, count(*) FROM reference_detections GROUP BY image").fetchall())
    assert len(per_image) == 2 and 10 <= sum(per_image.values()) <= 60, per_image
    assert not parity_run["table"].weights_trained.any()


def test_the_detecting_model_is_the_same_bytes_whatever_torch_s_thread_count(detecting_model, sample_images, tmp_path):
    """The tests that run it share its exports through the cache only if every build gives the same file."""
    import torch

    from engine.models import file_sha256

    with torch_threads(1 if torch.get_num_threads() > 1 else 2):
        again = build_detecting_model(tmp_path / "detecting.pt", sample_images, TEST_IMGSZ)
    assert file_sha256(again) == file_sha256(detecting_model)


def test_identical_exports_pass(parity_run):
    table = parity_run["table"]
    for variant in [("pytorch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32")]:
        row = table.loc[variant]
        assert row.parity_verdict == "pass", (variant, row.parity_reason)
        assert row.parity_reference == "pytorch:fp32 detecting.pt"
        assert row.parity_missed == 0 and row.parity_extra == 0 and row.parity_matched >= 10
        assert row.parity_raw_max_abs < 0.01 and row.parity_mean_iou > 0.999
    assert table.loc[("pytorch", "fp32")].parity_raw_max_abs == 0.0, "the same code on the same input"


def test_int8_shows_its_drift(parity_run):
    int8, fp32 = parity_run["table"].loc[("openvino", "int8")], parity_run["table"].loc[("openvino", "fp32")]
    assert int8.parity_verdict in ("drift", "fail"), int8.parity_reason
    assert int8.parity_raw_max_abs > 100 * fp32.parity_raw_max_abs
    assert int8.parity_score_max_abs > parity.PASS_MAX_SCORE_ABS
    assert int8.parity_missed + int8.parity_extra > 0 or int8.parity_mean_iou < parity.PASS_MIN_MEAN_IOU
    json_rows = {(r["runtime"], r["precision"]): r for r in parity_run["document"]["results"]}
    assert json_rows[("openvino", "int8")]["parity_verdict"] == int8.parity_verdict


def test_the_json_names_the_fastest_result_that_did_not_fail_parity(parity_run):
    table = parity_run["table"]
    trusted = table[table.parity_verdict != "fail"]
    assert parity_run["document"]["fastest"] == trusted.loc[trusted.total_ms.idxmin(), "result_id"]


def test_each_detection_names_the_reference_box_it_matched(parity_run):
    with duckdb.connect(str(parity_run["db"]), read_only=True) as con:
        rows = con.execute(
            """SELECT r.runtime, r.precision, count(d.reference_index), count(*) - count(d.reference_index)
               FROM detections d JOIN results r USING (result_id) GROUP BY ALL"""
        ).fetchall()
        references = con.execute("SELECT count(*) FROM reference_detections").fetchall()[0][0]
    table = parity_run["table"]
    for runtime, precision, matched, extra in rows:
        row = table.loc[(runtime, precision)]
        assert (matched, extra) == (row.parity_matched, row.parity_extra)
        assert row.parity_matched + row.parity_missed == references


def test_map_matches_ultralytics_val_for_the_pytorch_row(parity_run, detecting_model, labelled_data, tmp_path):
    """Ultralytics' YOLO.val defaults to rect batches (160x128 here); the engine gives every runtime the same
    square 160x160 input, so the figure to match is val with rect=False. (This synthetic model's boxes
    change completely with the input shape: rect=True gives a different number, not a worse engine.)"""
    from ultralytics import YOLO

    metrics = YOLO(str(detecting_model)).val(
        data=str(labelled_data),
        imgsz=TEST_IMGSZ,
        batch=1,
        device="cpu",
        rect=False,
        plots=False,
        verbose=False,
        project=str(tmp_path),
    )
    table = parity_run["table"]
    pytorch = table.loc[("pytorch", "fp32")]
    assert abs(pytorch.map50 - metrics.box.map50) <= 0.01
    assert abs(pytorch.map50_95 - metrics.box.map) <= 0.01
    assert pytorch.map50 > 0.5, "labels made from the model's own boxes"
    for variant in [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")]:
        row = table.loc[variant]
        assert row.map_error is None and 0 <= row.map50_95 <= row.map50 <= 1, (variant, row.map_error)
        assert row.map_data == str(labelled_data)
    assert abs(table.loc[("onnxruntime", "fp32")].map50 - pytorch.map50) <= 0.01
    memory = table["peak_memory_mb"]
    assert memory[("onnxruntime", "fp32")] < memory[("pytorch", "fp32")] / 2, (
        "peak memory is read before mAP: Ultralytics' validator would add PyTorch to every runtime's figure"
    )


@pytest.mark.parametrize("noise, verdict", [(0.02, "fail"), (0.002, "drift")])
def test_weights_changed_after_export_do_not_pass(parity_run, detecting_model, tmp_path, noise, verdict):
    """The ONNX export of the model, its conv weights changed afterwards by multiplicative noise, checked against
    the original .pt: 2% loses nearly every box, 0.2% a quarter of them."""
    import onnx
    from onnx import numpy_helper

    exported = parity_run["table"].loc[("onnxruntime", "fp32")]
    with duckdb.connect(str(parity_run["db"]), read_only=True) as con:
        onnx_file = con.execute("SELECT model_file FROM results WHERE result_id = ?", [exported.result_id]).fetchall()[
            0
        ][0]
    proto = onnx.load(onnx_file)
    rng = np.random.default_rng(0)
    for tensor in proto.graph.initializer:
        weights = numpy_helper.to_array(tensor)
        if weights.dtype == np.float32 and weights.ndim == 4:  # conv kernels
            noisy = weights * (1 + noise * rng.standard_normal(weights.shape)).astype(np.float32)
            tensor.CopyFrom(numpy_helper.from_array(noisy, tensor.name))
    perturbed = tmp_path / "perturbed.onnx"
    onnx.save(proto, str(perturbed))
    db = tmp_path / "results.duckdb"
    done = engine_run(
        db, "--model", str(perturbed), "--reference", str(detecting_model), "--runtimes", "onnxruntime", "--iters", "2"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resolving {detecting_model}: known from an earlier run (the same file contents)" in done.stderr, (
        "the parity run resolved this checkpoint: no worker imports torch to read it again"
    )
    row = summary(db).loc[("onnxruntime", "fp32")]
    assert row.parity_reference == "pytorch:fp32 detecting.pt"
    assert row.parity_verdict == verdict, row.parity_reason
    assert row.parity_raw_max_abs > 1.0 and row.parity_missed > 0


def test_an_onnx_file_alone_is_its_own_reference(parity_run, tmp_path):
    with duckdb.connect(str(parity_run["db"]), read_only=True) as con:
        onnx_file = con.execute("SELECT model_file FROM results WHERE runtime = 'onnxruntime'").fetchall()[0][0]
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--model", onnx_file, "--runtimes", "onnxruntime,openvino", "--iters", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    table = summary(db)
    assert table.parity_reference.str.startswith("onnxruntime:fp32").all()
    assert table.parity_reference.str.contains("no PyTorch model given").all()
    assert (table.parity_verdict == "pass").all(), table.parity_reason.tolist()
    assert table.map50.isna().all() and table.map_data.isna().all(), "no labels, no mAP"


def test_bad_labels_stop_the_run_naming_file_and_line(tmp_path, sample_images):
    data = tmp_path / "data"
    data.mkdir()
    for image in sample_images:
        shutil.copyfile(image, data / image.name)
        (data / f"{image.stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (data / "zidane.txt").write_text("0 0.5 0.5 0.2 0.2\n3 0.5 oops 0.1 0.1\n")
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "onnxruntime", "--iters", "1", "--data", str(data))
    assert done.returncode == 2
    assert f"{data / 'zidane.txt'}, line 2" in done.stderr and "not numeric" in done.stderr
    assert not db.exists(), "nothing stored"


@pytest.mark.parametrize(
    "content, message",
    [
        ("0 0.5 0.5 0.2\n", "line 1: 4 values"),
        ("0 0.5 0.5 0.2 0.2\n80 0.5 0.5 0.2 0.2\n", "line 2: class 80 is out of range"),
        ("-1 0.5 0.5 0.2 0.2\n", "line 1: class -1 is not a class index"),
        ("1.5 0.5 0.5 0.2 0.2\n", "line 1: class 1.5 is not a class index"),
        ("0 0.5 0.5 1.2 0.2\n", "line 1: box 0.5 0.5 1.2 0.2 is not normalized"),
        ("\n\n0 0.5 0.5 0 0.2\n", "line 3: box"),
    ],
)
def test_malformed_label_lines_are_named(tmp_path, sample_images, content, message):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for image in sample_images:
        shutil.copyfile(image, tmp_path / "images" / image.name)
        (tmp_path / "labels" / f"{image.stem}.txt").write_text("")
    (tmp_path / "labels" / "bus.txt").write_text(content)
    with pytest.raises(BenchError, match=message) as error:
        prepare_labelled_data(str(tmp_path), 80)
    assert str(tmp_path / "labels" / "bus.txt") in str(error.value)


def test_an_image_without_labels_is_named(tmp_path, sample_images):
    for image in sample_images:
        shutil.copyfile(image, tmp_path / image.name)
    (tmp_path / "bus.txt").write_text("5 0.5 0.5 0.2 0.2\n")
    with pytest.raises(BenchError, match="zidane.jpg has no label file .*zidane.txt"):
        prepare_labelled_data(str(tmp_path), 80)
    (tmp_path / "zidane.txt").write_text("")  # an empty file: an image with no objects
    (tmp_path / "._bus.jpg").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork: hidden, not an image
    data = prepare_labelled_data(str(tmp_path), 80)
    assert (data.images, data.instances) == (2, 1)


def test_dataset_yaml_classes_bound_the_label_ids(tmp_path, sample_images):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    shutil.copyfile(sample_images[0], tmp_path / "images" / "a.jpg")
    (tmp_path / "labels" / "a.txt").write_text("2 0.5 0.5 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text("path: .\nval: images\nnames: [person, bicycle]\n")
    with pytest.raises(BenchError, match="class 2 is out of range: the model and data have 2 classes"):
        prepare_labelled_data(str(tmp_path / "data.yaml"), 80)
    (tmp_path / "data.yaml").write_text("path: .\nval: missing\nnames: [person]\n")
    with pytest.raises(BenchError, match="split missing .* does not exist"):
        prepare_labelled_data(str(tmp_path / "data.yaml"), 80)


def test_migration_to_version_3_backs_up_and_adds_parity(empty_db):
    database_at_version(empty_db, 2)
    store.ensure_schema(empty_db)
    assert empty_db.with_name(empty_db.name + ".bak-v2").exists()
    table = store.results_summary(empty_db)
    assert table.result_id.tolist() == ["old-r"]
    assert table.parity_verdict.isna().all() and table.map50.isna().all()
    assert {
        "parity_verdict",
        "parity_raw_max_abs",
        "parity_raw_mean_abs",
        "parity_matched",
        "parity_missed",
        "parity_extra",
        "parity_mean_iou",
        "parity_max_score_diff",
        "parity_reference",
        "map50",
        "map50_95",
    } <= set(table.columns)
    assert store.reference_detections(empty_db, "old").empty


def test_the_reference_is_kept_by_its_images_contents_and_settings_not_their_paths(
    tmp_path, sample_images, monkeypatch
):
    from engine import reference_cache
    from engine.reference_cache import partial_folder, publish, reference_folder, reference_key, stored_detections

    copy = tmp_path / "elsewhere.jpg"
    shutil.copyfile(sample_images[0], copy)
    both = [str(p) for p in sample_images[:2]]

    def key_of(runtime="pytorch", model="abc", images=both, imgsz=160, conf=0.25, iou=0.45):
        return reference_key(runtime, model, images, imgsz, conf, iou)

    key = key_of()
    assert key_of(images=[str(copy), both[1]]) == key, "a copy elsewhere"
    others = [
        key_of(model="abd"),
        key_of(imgsz=320),
        key_of(conf=0.3),
        key_of(iou=0.5),
        key_of(runtime="onnxruntime"),
        key_of(images=both[::-1]),
    ]
    copy.write_bytes(sample_images[1].read_bytes())  # the same path, other contents
    others.append(key_of(images=[str(copy), both[1]]))
    engine_copy = tmp_path / "engine"  # an engine update that changes the letterbox
    shutil.copytree(reference_cache.ENGINE, engine_copy)
    (engine_copy / "pipeline.py").write_text((engine_copy / "pipeline.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(reference_cache, "ENGINE", engine_copy)
    others.append(key_of())
    monkeypatch.undo()
    assert len({key, *others}) == 1 + len(others)

    monkeypatch.setenv("YOLO_BENCH_CACHE", str(tmp_path / "cache"))
    folder = reference_folder(key)
    assert stored_detections(folder) is None
    for run_id, found in (("first", [[{"x1": 1.0}], []]), ("second", [[{"x1": 2.0}], []])):  # two runs at once
        partial = partial_folder(folder, run_id)
        partial.mkdir(parents=True)
        (partial / "detections.json").write_text(json.dumps(found))
        publish(partial, folder, {"run": run_id})
        assert not partial.exists()
    assert stored_detections(folder) == [[{"x1": 1.0}], []], "the first whole folder stays"
    assert json.loads((folder / "key.json").read_text()) == {"run": "first"}, "with what its key was made from"
