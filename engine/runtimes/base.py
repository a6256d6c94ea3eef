"""The interface every runtime file implements.

A runtime module must not import its library at module level: the registry (and so the dashboard)
imports every runtime module to list names and availability, and must stay light.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def ultralytics_export(format: str, imgsz: int, batch: int, quantize: int | None = None) -> dict:
    """Ultralytics export arguments: the format at this size and batch, with quantize (16, 8) where one is asked."""
    return {"format": format, "imgsz": imgsz, "batch": batch, **({"quantize": quantize} if quantize else {})}


class Runtime:
    name: str = ""
    description: str = ""
    precisions: tuple[str, ...] = ("fp32",)
    requires: tuple[str, ...] = ()  # importable module names
    layout: str = "nchw"  # input layout the model wants: "nchw" or "nhwc"
    onnx_file_precisions: tuple[str, ...] = ()  # the precisions that run an .onnx file given directly as the model
    device: str = "cpu"  # "gpu": the machine's measured peak rates are the CPU's, and do not apply to it
    settle_calls: int = 1  # untimed calls before the runtime runs at its steady speed, whatever --warmup says
    ultralytics_arguments: dict = {}  # what Ultralytics' predictor needs to load the artifact this runtime's way

    @classmethod
    def warmup_calls(cls, requested: int) -> int:
        """The untimed calls made before measuring: the warm-up asked for, but never fewer than settle_calls."""
        return max(requested, cls.settle_calls)

    def __init__(self, model_path: Path, precision: str, threads: int, batch: int, imgsz: int):
        self.model_path = Path(model_path)
        self.precision = precision
        self.threads = threads
        self.batch = batch
        self.imgsz = imgsz

    # What the registry asks, without loading anything heavy.
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        missing = [module for module in cls.requires if importlib.util.find_spec(module) is None]
        if missing:
            return False, f"Python package(s) not installed: {', '.join(missing)}"
        return True, ""

    @classmethod
    def export_only(cls) -> str | None:
        """Why this machine exports the model (size, export time) but cannot run it, or None where it runs."""
        return None

    @classmethod
    def export_request(cls, precision: str, batch: int, imgsz: int) -> dict | None:
        """Ultralytics export arguments for this precision and batch, or None when the .pt runs as is."""
        return None

    @classmethod
    def artifact(cls, export_output: Path, precision: str) -> Path:
        """The file or folder to load, given what Ultralytics export returned."""
        return export_output

    @classmethod
    def ultralytics_artifact(cls, artifact: Path) -> Path:
        """What Ultralytics' YOLO() loads for the same model (the ultralytics pipeline mode)."""
        return artifact

    @classmethod
    def artifact_files(cls, artifact: Path) -> list[Path]:
        """The files loading the artifact reads: the file itself, or everything in its folder."""
        artifact = Path(artifact)
        return sorted(p for p in artifact.rglob("*") if p.is_file()) if artifact.is_dir() else [artifact]

    @classmethod
    def artifact_mb(cls, artifact: Path) -> float | None:
        """The model's size on disk as this runtime deploys it (MiB); None when a file is missing."""
        try:
            return sum(p.stat().st_size for p in cls.artifact_files(artifact)) / 2**20
        except OSError:
            return None

    @staticmethod
    def configure_process(threads: int) -> None:
        """Called in the fresh worker process before any runtime library is imported."""

    def load(self) -> None:
        raise NotImplementedError

    # The lean pipeline's stages: numpy and OpenCV unless the runtime has a more natural array type.
    def preprocess(self, frames: list[np.ndarray]) -> tuple[object, list]:
        """Decoded BGR frames -> the batch infer() takes in the lean pipeline, and each image's letterbox."""
        from engine.pipeline import preprocess

        return preprocess(frames, self.imgsz, self.layout)

    def postprocess(self, raw, placements: list, conf: float, iou: float) -> list[list]:
        """infer()'s output for the lean pipeline's batch -> each image's detections in its own pixels."""
        from engine.pipeline import postprocess

        return postprocess(raw, placements, conf, iou)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Raw model output (B, 4 + classes, anchors), boxes as xywh in input pixels."""
        raise NotImplementedError

    @staticmethod
    def raw_to_host(raw) -> np.ndarray:
        """infer()'s output as a float32 numpy array, for parity and mAP (a GPU pipeline leaves it on the GPU)."""
        return raw if isinstance(raw, np.ndarray) else raw.float().cpu().numpy()

    offers_in_flight = False  # throughput() below: several batches at once, end to end

    def throughput(
        self, batches: list[list[np.ndarray]], requests: int, seconds: float, conf: float, iou: float
    ) -> dict:
        """Images/s end to end with `requests` batches in flight for about `seconds`, after load() and the latency
        measurement: batches of decoded frames, taken in turn, each preprocessed, inferred and postprocessed as
        one at a time, several at once. {"in_flight": requests, "in_flight_ips": images/s, "in_flight_settings":
        {how it was done, with engine.in_flight.IN_FLIGHT_MEASURES}, "found": {index in batches: the detections of
        its last run}}, which the worker checks against the one-at-a-time pipeline's."""
        raise NotImplementedError

    def settings(self) -> dict:
        """Settings read back from the loaded runtime, stored with the result."""
        return {"threads_requested": self.threads}

    # Why profile() raises engine.profiles.ProfileNotOffered: said on the result instead of a profile.
    profile_unavailable = "its Python API gives no per-op timing"

    @classmethod
    def offers_profile(cls) -> bool:
        return cls.profile is not Runtime.profile

    def profile(self, batch, calls: int, layout) -> tuple[list, str]:
        """After the measurement, `calls` more calls on the batch infer() takes, under this runtime's own profiler:
        each op's name, type and mean ms per call (engine.profiles.OpTime) in execution order, and the profiler's
        name and version. layout: the model's engine.profiles.ModuleLayout."""
        from engine.profiles import ProfileNotOffered

        raise ProfileNotOffered(f"{self.name}: {self.profile_unavailable}")
