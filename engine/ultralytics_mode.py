"""The `ultralytics` pipeline mode: the model called through Ultralytics' own predictor, as most users do.

Ultralytics chooses threads and precision itself here; that is the point of the mode. Letterboxing is
the exception: `rect=False` gives it the same square input the lean pipeline gets (by default it pads .pt
and dynamic models to the smallest stride multiple, 640x480 for bus.jpg, ~25% less work), so the two modes
compare pipelines, not input sizes.
Its per-image speed figures give preprocess, inference and postprocess; what the call took beyond
them (the predictor's own bookkeeping) is kept as `other`, so stages still add up to the whole call.
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.pipeline import Detection, decode_image


class UltralyticsPipeline:
    def __init__(self, artifact: Path, imgsz: int, conf: float, iou: float):
        from ultralytics import YOLO

        self.model = YOLO(str(artifact), task="detect")
        self.imgsz, self.conf, self.iou = imgsz, conf, iou

    def iteration(self, paths: list[str]) -> tuple[dict[str, int], list[list[Detection]]]:
        """One timed pass over a batch of image files: stage nanoseconds for the batch, and the detections."""
        start = time.perf_counter_ns()
        frames = [decode_image(p) for p in paths]
        decoded = time.perf_counter_ns()
        results = self.model.predict(frames, imgsz=self.imgsz, conf=self.conf, iou=self.iou, batch=len(frames),
                                     rect=False, device="cpu", verbose=False)
        call_ns = time.perf_counter_ns() - decoded
        speed = results[0].speed  # milliseconds per image, for the whole batch
        stages = {name: int(speed[key] * 1e6 * len(frames))
                  for name, key in (("pre", "preprocess"), ("infer", "inference"), ("post", "postprocess"))}
        stages["decode"] = decoded - start
        stages["other"] = max(0, call_ns - stages["pre"] - stages["infer"] - stages["post"])
        return stages, [_detections(result) for result in results]

    def settings(self) -> dict:
        predictor = self.model.predictor
        settings = {"pipeline": "ultralytics predictor", "rect": bool(getattr(predictor.args, "rect", False))}
        try:
            import torch

            settings["torch_threads"] = torch.get_num_threads()
        except ImportError:
            pass
        return settings


def _detections(result) -> list[Detection]:
    boxes = result.boxes
    return [
        Detection(float(x1), float(y1), float(x2), float(y2), float(score), int(cls))
        for (x1, y1, x2, y2), score, cls in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())
    ]
