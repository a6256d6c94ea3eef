"""Ultralytics export with an on-disk cache, and the offline calibration data exports ask for.

The cache key is the model file's hash, the export arguments and the library versions that shape the
output, so a second run with the same inputs exports nothing. An export is complete only when its
done.json exists: a crash mid-export leaves a folder that is redone, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from engine.machine import library_versions
from engine.paths import cache_dir, mark_used

KEY_LIBRARIES = ("ultralytics", "torch", "onnx", "onnxslim", "openvino", "nncf", "tensorflow", "onnx2tf")
# The converters of one format only: their versions key that format's exports and no other's.
FORMAT_LIBRARIES = {
    "ncnn": ("ncnn", "pnnx"),
    "mnn": ("MNN",),
    "paddle": ("paddlepaddle", "x2paddle"),
    "executorch": ("executorch",),
    "coreml": ("coremltools",),
}
TF_FORMATS = ("saved_model", "pb")  # onnx2tf looks for its calibration file in the working directory
CALIBRATION_IMAGES = 32
TF_CALIBRATION_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
# Part of every cache key: raise it when what an export folder holds changes, so older folders are not used.
# 2: the SavedModel export also holds <stem>_int8.tflite, converted here from the SavedModel (see below).
# 3: both .tflite files made here, with Ultralytics' normalised boxes (write_tflite_files).
EXPORT_RECIPE = 3


def export_key(model_sha256: str, request: dict) -> str:
    versions = library_versions()
    libraries = KEY_LIBRARIES + FORMAT_LIBRARIES.get(request.get("format"), ())
    material = {
        "model": model_sha256,
        "recipe": EXPORT_RECIPE,
        "request": request,
        "versions": {name: versions.get(name, "") for name in libraries},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def export_folder(key: str) -> Path:
    return cache_dir() / "exports" / key


def cached(key: str) -> Path | None:
    done = export_folder(key) / "done.json"
    if not done.is_file():
        return None
    output = export_folder(key) / json.loads(done.read_text())["output"]
    if not output.exists():
        return None
    mark_used(done)
    return output


def run_export(model_path: str, model_sha256: str, names: dict, request: dict, images: list[str]) -> Path:
    """Export in this (worker) process; returns the output Ultralytics wrote. Imports ultralytics."""
    key = export_key(model_sha256, request)
    folder = export_folder(key)
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier attempt
    folder.mkdir(parents=True)
    source = folder / ("model" + Path(model_path).suffix)
    shutil.copyfile(model_path, source)
    arguments = {"device": "cpu", **request}  # GPU formats (TensorRT) name their device in the request
    calibration = None
    if calibrates(request):
        calibration = calibration_dataset(images, names)
        arguments["data"] = str(calibration)
    if arguments["format"] in TF_FORMATS:
        write_tf_calibration(images, folder / TF_CALIBRATION_FILE)

    from ultralytics import YOLO

    started = time.perf_counter()
    previous = os.getcwd()
    os.chdir(folder)  # the SavedModel export looks for its calibration file in the working directory
    try:
        output = Path(YOLO(str(source), task="detect").export(verbose=False, **arguments))
    finally:
        os.chdir(previous)
    output = output if output.is_absolute() else folder / output
    if arguments["format"] == "saved_model" and not arguments.get("int8"):
        write_tflite_files(output)
    (folder / "done.json").write_text(
        json.dumps(
            {
                "output": str(output.relative_to(folder)),
                "request": request,
                "model_sha256": model_sha256,
                "seconds": time.perf_counter() - started,
                "calibration": calibration_record(calibration, images) if calibration else None,
            }
        )
    )
    return output


def calibrates(request: dict) -> bool:
    """Whether the export quantises activations from calibration images: OpenVINO's int8 (NNCF), TensorRT's and
    ONNX Runtime's static int8 (quantize=8 on an ONNX export)."""
    return bool(request.get("int8")) or (request.get("format") == "onnx" and request.get("quantize") == 8)


def calibration_record(data_yaml: Path, images: list[str]) -> dict:
    """What an int8 export was calibrated on, kept with it (done.json) and with its results (settings)."""
    return {
        "images": [Path(image).name for image in images],
        "augmented_copies": CALIBRATION_IMAGES,
        "dataset": str(data_yaml.parent.name),
    }


def calibration_of(artifact: Path) -> dict | None:
    """The calibration record of the export folder holding artifact, or None (not calibrated, or not an export)."""
    for folder in (artifact, *artifact.parents):
        done = folder / "done.json"
        if done.is_file():
            return json.loads(done.read_text()).get("calibration")
    return None


def write_tflite_files(saved_model: Path) -> dict[str, Path]:
    """<stem>_float32.tflite and <stem>_int8.tflite in the SavedModel folder, both with Ultralytics' TFLite boxes.

    Ultralytics' TFLite convention is box coordinates divided by the input width and height (its own TFLite
    export writes them so; its LiteRT backend multiplies them back). The SavedModel export's onnx2tf .tflite
    keeps pixel boxes, which Ultralytics' predictor then scaled by 640 a second time. So both files are made here
    from the SavedModel's serving function with the four box rows divided by the input size, and onnx2tf's
    float32 file is replaced. Converter settings are onnx2tf's: float32 plain, int8 its dynamic range (int8
    weights, float activations), the file Ultralytics' int8 SavedModel export ships as *_int8.tflite, made in
    seconds rather than the minutes that export spends per batch size calibrating variants it then deletes or
    does not use (benchmarks/tflite_int8_export.py; docs/results/). Against onnx2tf's pixel files: the same boxes
    once multiplied back, the same scores and speed. Ultralytics' metadata (a
    metadata.json zip member appended to the file) is copied from onnx2tf's file.
    """
    import zipfile

    import tensorflow as tf

    onnx2tf_file = next(saved_model.glob("*_float32.tflite"))
    metadata = None
    if zipfile.is_zipfile(onnx2tf_file):
        with zipfile.ZipFile(onnx2tf_file) as source:
            if "metadata.json" in source.namelist():
                metadata = source.read("metadata.json")
    loaded = tf.saved_model.load(str(saved_model))
    serve = loaded.signatures["serving_default"]
    (input_spec,) = serve.structured_input_signature[1].values()
    output_name = next(iter(serve.structured_outputs))
    _, height, width, _ = input_spec.shape
    rows = serve.structured_outputs[output_name].shape[1]
    scale = np.ones((1, rows, 1), np.float32)
    scale[0, [0, 2]], scale[0, [1, 3]] = 1 / width, 1 / height

    @tf.function(input_signature=[tf.TensorSpec(input_spec.shape, tf.float32, name=input_spec.name)])
    def normalised(images):
        return {output_name: serve(images)[output_name] * tf.constant(scale)}

    written = {}
    for precision, suffix in (("fp32", "_float32.tflite"), ("int8", "_int8.tflite")):
        converter = tf.lite.TFLiteConverter.from_concrete_functions([normalised.get_concrete_function()], loaded)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        if precision == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = []
        target = onnx2tf_file.with_name(onnx2tf_file.name.replace("_float32.tflite", suffix))
        target.write_bytes(converter.convert())
        if metadata is not None:
            with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as copy:
                copy.writestr("metadata.json", metadata)
        written[precision] = target
    return written


def _load_rgb(path: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode calibration image {path}")
    return image


def _augmented(images: list[str], count: int, seed: int = 0):
    """Deterministic crops, flips and scales of the given images: calibration material without a download."""
    import cv2

    rng = np.random.default_rng(seed)
    frames = [_load_rgb(p) for p in images]
    for i in range(count):
        frame = frames[i % len(frames)]
        height, width = frame.shape[:2]
        crop = rng.uniform(0.6, 1.0)
        ch, cw = int(height * crop), int(width * crop)
        y, x = rng.integers(0, height - ch + 1), rng.integers(0, width - cw + 1)
        out = frame[y : y + ch, x : x + cw]
        if rng.random() < 0.5:
            out = out[:, ::-1]
        out = cv2.convertScaleAbs(out, alpha=rng.uniform(0.8, 1.2), beta=rng.uniform(-20, 20))
        yield np.ascontiguousarray(out)


def calibration_dataset(images: list[str], names: dict) -> Path:
    """A folder of augmented copies of the images and a dataset yaml Ultralytics accepts for int8 calibration."""
    import cv2

    digest = hashlib.sha256(json.dumps(sorted(images)).encode()).hexdigest()[:16]
    folder = cache_dir() / "calibration" / digest
    yaml_path = folder / "data.yaml"
    if yaml_path.is_file():
        mark_used(yaml_path)
        return yaml_path
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(_augmented(images, CALIBRATION_IMAGES)):
        cv2.imwrite(str(image_dir / f"calib_{i:03d}.jpg"), frame)
    names = names or {i: str(i) for i in range(80)}
    lines = [f"path: {folder}", "train: images", "val: images", "names:"]
    lines += [f"  {int(k)}: {json.dumps(str(v))}" for k, v in sorted(names.items())]
    yaml_path.write_text("\n".join(lines) + "\n")
    return yaml_path


def write_tf_calibration(images: list[str], target: Path) -> None:
    """The (20, 128, 128, 3) float32 array onnx2tf otherwise downloads, made from the given images."""
    import cv2

    frames = [cv2.resize(frame, (128, 128))[..., ::-1] for frame in _augmented(images, 20, seed=1)]
    np.save(target, np.stack(frames).astype(np.float32) / 255.0)
