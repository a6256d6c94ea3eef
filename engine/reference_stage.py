"""The parity reference of a run: PyTorch fp32 on the checkpoint (--reference, else --model), or ONNX Runtime fp32
when only an .onnx was given, computed in its own process and kept for later runs by what shapes it
(engine/reference_cache.py). A failure leaves the results without a verdict, with the reason."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine import store
from engine.config import RunConfig
from engine.inputs import image_key
from engine.reference_cache import (
    key_of,
    partial_folder,
    publish,
    reference_folder,
    reference_material,
    stored_detections,
)
from engine.supervise import JobFailed, run_job


@dataclass(frozen=True)
class ParityReference:
    name: str | None  # None: there is no reference (error says why, or nothing was asked)
    detections: dict = field(default_factory=dict)  # image path -> its detections (Detection fields)
    folder: str | None = None  # the raw outputs, one .npy per image
    error: str | None = None


def compute_reference(
    config: RunConfig,
    run_id: str,
    model: dict,
    reference_model: dict | None,
    images: list[str],
    log_folder: Path,
    emit: Callable[..., None],
    should_cancel: Callable[[], bool],
) -> ParityReference:
    """The reference, kept or computed now; its boxes are stored with the run either way."""
    source = reference_model or model
    if source["kind"] == "pt":
        runtime, name = "pytorch", f"pytorch:fp32 {Path(source['path']).name}"
    else:
        runtime, name = "onnxruntime", f"onnxruntime:fp32 {Path(source['path']).name} (no PyTorch model given)"
    material = reference_material(runtime, source["sha256"], images, config.imgsz, config.conf, config.iou)
    folder = reference_folder(key_of(material))
    detections = stored_detections(folder)
    if detections is not None:
        emit(
            "stage",
            stage="reference",
            message=f"parity reference: {name}, kept from an earlier run with the same model, images and settings",
        )
    else:
        emit("stage", stage="reference", message=f"computing the parity reference: {name}")
        partial = partial_folder(folder, run_id)
        try:
            payload = run_job(
                "reference",
                {
                    "runtime": runtime,
                    "model_path": source["path"],
                    "images": images,
                    "imgsz": config.imgsz,
                    "threads": config.effective_threads,
                    "conf": config.conf,
                    "iou": config.iou,
                    "folder": str(partial),
                    "log_path": str(log_folder / "reference.log"),
                },
                config.timeout_s,
                should_cancel=should_cancel,
                memory_limit_mb=config.effective_memory_limit_mb,
            )
        except JobFailed as error:
            shutil.rmtree(partial, ignore_errors=True)
            reason = f"no parity reference: {name} failed: {str(error).splitlines()[0]}"
            emit("stage", stage="reference", message=reason)
            return ParityReference(name=None, error=reason)
        except BaseException:  # cancelled or interrupted: leave no partial folder behind
            shutil.rmtree(partial, ignore_errors=True)
            raise
        publish(partial, folder, material)
        detections = payload["detections"]
    store.insert_reference_detections(config.db, run_id, name, _rows(model, images, detections))
    return ParityReference(name=name, detections=dict(zip(images, detections)), folder=str(folder))


def _rows(model: dict, images: list[str], detections: list[list[dict]]) -> list[dict]:
    names = {int(k): v for k, v in model["names"].items()}
    return [
        {
            **det,
            "image": image_key(index, path),
            "det_index": i,
            "class_name": names.get(det["class_id"], str(det["class_id"])),
        }
        for index, path in enumerate(images)
        for i, det in enumerate(detections[index])
    ]
