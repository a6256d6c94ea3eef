"""The `ultralytics` pipeline mode: the model called through Ultralytics' own predictor, as most users do.

Ultralytics chooses threads itself here; that is the point of the mode. The precision is the result's:
OpenVINO's CPU plugin runs bf16 by default on CPUs that have it (Ultralytics pins f32 only on Windows), so
an "fp32" row would otherwise hold a bf16 run (whose boxes drift from the fp32 reference's). The engine adds
the row's precision hint (f32 or bf16) to the compile Ultralytics does, and reads back the precision that
ran; a bf16 row is thus what Ultralytics does by default on such a CPU.
Letterboxing is the other exception: `rect=False` gives it the same square input the lean pipeline gets (by
default it pads .pt and dynamic models to the smallest stride multiple, 640x480 for bus.jpg, a quarter less
work), so the two modes compare pipelines, not input sizes.
Its per-image speed figures give preprocess, inference and postprocess; what the call took beyond
them (the predictor's own bookkeeping) is kept as `other`, so stages still add up to the whole call.
With requests in flight (--in-flight N) it runs N predictors at once, each its own YOLO model made on its own
thread, the way Ultralytics' thread-safe inference guide has it: the predictor itself runs one batch at a time.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from engine.in_flight import IN_FLIGHT_MEASURES, on_threads
from engine.pipeline import Detection, decode_image
from engine.runtimes.openvino import PRECISION_HINTS as OPENVINO_PRECISION_HINTS  # int8 is in the IR itself


class UltralyticsPipeline:
    def __init__(
        self,
        artifact: Path,
        imgsz: int,
        conf: float,
        iou: float,
        precision: str = "fp32",
        device: str = "cpu",
        arguments: dict | None = None,
    ):
        """device: Ultralytics' name for where it runs, "cpu" or "0" (the first CUDA GPU, for GPU runtimes).
        arguments: the runtime's own predictor arguments (Runtime.ultralytics_arguments: dnn=True for OpenCV DNN)."""
        from ultralytics import YOLO

        self.model = YOLO(str(artifact), task="detect")
        self.artifact, self.precision, self.device = Path(artifact), precision, device
        self.arguments = dict(arguments or {})
        self.imgsz, self.conf, self.iou = imgsz, conf, iou
        self.model.add_callback("on_predict_start", self._pin_openvino_precision)

    def _pin_openvino_precision(self, predictor) -> None:
        """Recompile Ultralytics' OpenVINO model once, with its own config plus the precision hint."""
        backend = getattr(predictor.model, "backend", None)
        hint = OPENVINO_PRECISION_HINTS.get(self.precision)
        if hint is None or not hasattr(backend, "ov_compiled_model") or getattr(backend, "_bench_pinned", False):
            return
        compile_model = backend.compile_model  # partial(core.compile_model, device_name=..., config=...)
        config = {**compile_model.keywords.get("config", {}), "INFERENCE_PRECISION_HINT": hint}
        backend.compile_model = functools.partial(compile_model, config=config)
        xml = next(self.artifact.glob("*.xml")) if self.artifact.is_dir() else self.artifact
        backend.ov_compiled_model = backend.compile_model(compile_model.func.__self__.read_model(str(xml)))
        backend._bench_pinned = True

    def iteration(self, paths: list[str]) -> tuple[dict[str, int], list[list[Detection]]]:
        """One timed pass over a batch of image files: stage nanoseconds for the batch, and the detections."""
        start = time.perf_counter_ns()
        frames = [decode_image(p) for p in paths]
        decoded = time.perf_counter_ns()
        results = self._predict(frames)
        call_ns = time.perf_counter_ns() - decoded
        speed = results[0].speed  # milliseconds per image, for the whole batch
        stages = {
            name: int(speed[key] * 1e6 * len(frames))
            for name, key in (("pre", "preprocess"), ("infer", "inference"), ("post", "postprocess"))
        }
        stages["decode"] = decoded - start
        stages["other"] = max(0, call_ns - stages["pre"] - stages["infer"] - stages["post"])
        return stages, [_detections(result) for result in results]

    def _predict(self, frames: list) -> list:
        return self.model.predict(
            frames,
            imgsz=self.imgsz,
            conf=self.conf,
            iou=self.iou,
            batch=len(frames),
            rect=False,
            device=self.device,
            verbose=False,
            **self.arguments,
        )

    def throughput(self, batches: list[list], requests: int, seconds: float) -> dict:
        """Images/s end to end with `requests` predictors at once, each its own YOLO model made on its own thread,
        as Ultralytics' thread-safe inference guide has it; batches of decoded frames taken in turn. The same
        dict as a runtime's throughput(), "found" holding each batch's detections of its last run."""

        def prepare(worker: int) -> UltralyticsPipeline:
            pipeline = UltralyticsPipeline(
                self.artifact, self.imgsz, self.conf, self.iou, self.precision, self.device, self.arguments
            )
            pipeline._predict(batches[0])  # loads the model inside Ultralytics, and warms it
            return pipeline

        def run_batch(pipeline: UltralyticsPipeline, frames: list) -> list:
            return [_detections(result) for result in pipeline._predict(frames)]

        done, found, elapsed = on_threads(requests, batches, seconds, prepare, run_batch)
        return {
            "in_flight": requests,
            "in_flight_ips": done * len(batches[0]) / elapsed,
            "found": found,
            "in_flight_settings": {
                "measures": IN_FLIGHT_MEASURES,
                "predictors": requests,
                "threading": "a YOLO model per thread (Ultralytics' thread-safe inference)",
            },
        }

    def settings(self) -> dict:
        predictor = self.model.predictor
        settings = {
            "pipeline": "ultralytics predictor",
            "rect": bool(getattr(predictor.args, "rect", False)),
            "device": str(predictor.device),
            **({"predictor_arguments": self.arguments} if self.arguments else {}),
        }
        try:
            import torch

            settings["torch_threads"] = torch.get_num_threads()
        except ImportError:
            pass
        compiled = getattr(getattr(predictor.model, "backend", None), "ov_compiled_model", None)
        if compiled is not None:
            settings["inference_precision"] = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        return settings


def _detections(result) -> list[Detection]:
    boxes = result.boxes
    return [
        Detection(float(x1), float(y1), float(x2), float(y2), float(score), int(cls))
        for (x1, y1, x2, y2), score, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]
