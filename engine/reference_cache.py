"""Where the parity reference's outputs are kept: one folder per model, images and settings, not one per run.

A reference (PyTorch fp32 on the checkpoint, or ONNX Runtime fp32 for a lone .onnx) is a pure function of the
model file, the images' contents, the input size, the confidence and IoU thresholds, the libraries and the
engine's own code below. A run like an earlier one takes its detections and raw outputs from
`.cache/reference/<key>/` instead of computing them again (a spawned process that imports torch: several
seconds on every run). A folder per run grew the cache by each run's raw outputs for good (a few MB per image
at 640).

A folder is complete when its detections.json exists: the job writes into a partial folder of its own, which
is renamed into place only when whole, so a killed run or two runs at once never leave half a reference.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from engine.machine import library_versions
from engine.models import file_sha256
from engine.paths import cache_dir, mark_used, read_json, write_json_whole

KEY_LIBRARIES = ("ultralytics", "torch", "torchvision", "onnxruntime", "numpy", "opencv-python")
# The engine's own code that computes a reference: an update that changes the letterbox or the box decode must
# not be held against a reference computed the old way (worker.py holds the loop that computes it).
KEY_SOURCES = ("pipeline.py", "worker.py", "runtimes/base.py", "runtimes/pytorch.py", "runtimes/onnxruntime.py")
ENGINE = Path(__file__).resolve().parent
DETECTIONS_FILE = "detections.json"
KEY_FILE = "key.json"  # what the key was made from, for `python -m engine cache`
# Part of every key: raise it when what a reference folder holds changes.
RECIPE = 1


def current_makers() -> dict:
    """The part of a key that no later run can match once the libraries or the engine's code change."""
    versions = library_versions()
    return {
        "recipe": RECIPE,
        "versions": {name: versions.get(name, "") for name in KEY_LIBRARIES},
        "code": [file_sha256(ENGINE / name) for name in KEY_SOURCES],
    }


def reference_material(runtime: str, model_sha256: str, images: list[str], imgsz: int, conf: float, iou: float) -> dict:
    return {
        "runtime": runtime,
        "model": model_sha256,
        "imgsz": imgsz,
        "conf": conf,
        "iou": iou,
        "images": [file_sha256(path) for path in images],  # contents, in the run's order: a path can be rewritten
        **current_makers(),
    }


def key_of(material: dict) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def reference_key(runtime: str, model_sha256: str, images: list[str], imgsz: int, conf: float, iou: float) -> str:
    return key_of(reference_material(runtime, model_sha256, images, imgsz, conf, iou))


def made_by_others(folder: Path, makers: dict) -> bool:
    """Whether a kept reference was computed by other library versions or engine code than current_makers()'s
    (never read again); False where its folder does not say (one kept before key.json was written)."""
    material = read_json(folder / KEY_FILE)
    return bool(material) and any(material.get(name) != value for name, value in makers.items())


def reference_folder(key: str) -> Path:
    return cache_dir() / "reference" / key


def stored_detections(folder: Path) -> list[list[dict]] | None:
    """Each image's detections in the run's order, or None where the folder is missing or not whole."""
    try:
        detections = json.loads((folder / DETECTIONS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(detections, list):
        return None
    mark_used(folder / DETECTIONS_FILE)
    return detections


def partial_folder(folder: Path, run_id: str) -> Path:
    return folder.with_name(f"{folder.name}.partial-{run_id}")


def publish(partial: Path, folder: Path, material: dict) -> None:
    """Move a finished partial folder into place, with what its key was made from; where another run got there
    first, keep its folder."""
    write_json_whole(partial / KEY_FILE, material)
    try:
        partial.rename(folder)
    except OSError:
        if stored_detections(folder) is None:
            shutil.rmtree(folder, ignore_errors=True)  # not whole (a file deleted by hand): replace it
            try:
                partial.rename(folder)
                return
            except OSError:
                pass
        shutil.rmtree(partial, ignore_errors=True)
