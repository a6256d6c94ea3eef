"""The two pipelines a worker measures, behind one small interface, so one measurement loop serves both:

- LeanPipeline: the engine's own stages around the runtime (decode, the runtime's preprocess, infer, postprocess),
  each timed apart, with the raw output at hand for parity;
- PredictorPipeline: the same artifact through Ultralytics' predictor, as most users call it (boxes only; its own
  stage figures, and the call's time outside them as "other").
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

from engine.config import BenchError
from engine.measure import StageTimer
from engine.records import MeasureJob, StageSample

IN_FLIGHT_S = 2.0  # seconds of requests in flight per result, after the latency measurement
IN_FLIGHT_FRAMES = 8  # decoded frames the in-flight step cycles through, in distinct batches where it can


def batch_of(paths: list[str] | tuple[str, ...], batch: int, index: int) -> list[str]:
    """The index-th batch of image files, cycling through them."""
    start = index * batch
    return [paths[(start + j) % len(paths)] for j in range(batch)]


def in_flight_chunks(images, batch: int) -> list[list[str]]:
    """The image files of the batches in flight: as many distinct batches as the images make, up to
    IN_FLIGHT_FRAMES frames, at least one."""
    count = max(1, min(len(images) // math.gcd(len(images), batch), IN_FLIGHT_FRAMES // batch))
    return [batch_of(images, batch, i) for i in range(count)]


def in_flight_batches(pipeline, job: MeasureJob) -> tuple[list[list], list]:
    """Decoded batches for the in-flight step (distinct where the images allow, so a request postprocessed with
    another batch's placements would show), and the detections the pipeline finds in each one at a time. Decoding
    stays out of the figure, as in the one-at-a-time measurement."""
    from engine.pipeline import decode_image

    chunks = in_flight_chunks(job.images, job.batch)
    expected = [pipeline.detect(chunk)[1] for chunk in chunks]
    return [[decode_image(path) for path in chunk] for chunk in chunks], expected


class LeanPipeline:
    """The runtime's own preprocess, infer and postprocess, timed stage by stage."""

    warmup_loads = False  # load() loads the model: warm-up is not part of the load time
    gives_raw = True

    def __init__(self, runtime_class, job: MeasureJob):
        self.job = job
        self.runtime_class = runtime_class
        self.runtime = None
        self.model_file = job.artifact
        self.input_shape: tuple[int, ...] | None = None

    def load(self) -> None:
        job = self.job
        self.runtime = self.runtime_class(Path(job.artifact), job.precision, job.threads, job.batch, job.imgsz)
        self.runtime.load()

    def _call(self, paths: list[str], timer: StageTimer):
        from engine.pipeline import decode_image

        with timer.stage("decode"):
            frames = [decode_image(p) for p in paths]
        with timer.stage("pre"):
            tensor, placements = self.runtime.preprocess(frames)
        with timer.stage("infer"):
            raw = self.runtime.infer(tensor)
        with timer.stage("post"):
            found = self.runtime.postprocess(raw, placements, self.job.conf, self.job.iou)
        self.input_shape = tuple(tensor.shape)
        return raw, found

    def warm(self, paths: list[str]) -> None:
        raw, _ = self._call(paths, StageTimer())
        expected = (self.job.batch, 4 + len(self.job.names)) if self.job.names else (self.job.batch,)
        if tuple(raw.shape[: len(expected)]) != expected or raw.ndim != 3:
            raise BenchError(
                f"model output shape {tuple(raw.shape)} is not a YOLO detection output for batch {self.job.batch}"
            )

    def timed(self, paths: list[str]) -> StageSample:
        timer = StageTimer()
        self._call(paths, timer)
        return StageSample(**timer.ns)

    def detect(self, paths: list[str]):
        """(raw output on the host, detections per image) of one untimed call."""
        raw, found = self._call(paths, StageTimer())
        return self.runtime.raw_to_host(raw), found

    def settings(self) -> dict:
        return self.runtime.settings()

    def accuracy(self, save_dir: Path) -> dict:
        """mAP with the loaded runtime; a failure here is recorded, the timing result stands."""
        from engine.accuracy import evaluate

        try:
            return evaluate(self.runtime, self.job.data_yaml, self.job.batch, self.job.names, save_dir)
        except Exception as error:
            return {"error": f"{type(error).__name__}: {error}"}

    def in_flight_step(self):
        """The runtime's throughput() on decoded batches with the detections the one-at-a-time pipeline finds in
        each, to take once the result is sent; None where the runtime offers none."""
        if not (self.job.in_flight and self.runtime.offers_in_flight):
            return None
        return partial(self._in_flight, self.job)

    def _in_flight(self, job: MeasureJob) -> tuple[dict, list]:
        batches, expected = in_flight_batches(self, job)
        return self.runtime.throughput(batches, job.in_flight, IN_FLIGHT_S, job.conf, job.iou), expected

    def profile(self, layout) -> tuple[list, str]:
        """The runtime's own profiler over job.profile calls on the first batch of images, as infer() takes it."""
        from engine.pipeline import decode_image

        frames = [decode_image(path) for path in batch_of(self.job.images, self.job.batch, 0)]
        tensor, _ = self.runtime.preprocess(frames)
        return self.runtime.profile(tensor, self.job.profile, layout)


class PredictorPipeline:
    """Ultralytics' predictor on the same artifact: boxes, no raw tensor."""

    warmup_loads = True  # the first call also loads the model inside Ultralytics
    gives_raw = False
    input_shape = None

    def __init__(self, runtime_class, job: MeasureJob):
        self.job = job
        self.runtime_class = runtime_class
        self.predictor = None
        self.model_file = str(runtime_class.ultralytics_artifact(Path(job.artifact)))

    def load(self) -> None:
        from engine.ultralytics_mode import UltralyticsPipeline

        job = self.job
        device = "0" if self.runtime_class.device == "gpu" else "cpu"  # a GPU runtime's row must not run on the CPU
        self.predictor = UltralyticsPipeline(
            Path(self.model_file),
            job.imgsz,
            job.conf,
            job.iou,
            job.precision,
            device,
            self.runtime_class.ultralytics_arguments,
        )

    def warm(self, paths: list[str]) -> None:
        self.predictor.iteration(paths)

    def timed(self, paths: list[str]) -> StageSample:
        return StageSample(**self.predictor.iteration(paths)[0])

    def detect(self, paths: list[str]):
        return None, self.predictor.iteration(paths)[1]

    def settings(self) -> dict:
        return self.predictor.settings()

    def accuracy(self, save_dir: Path) -> None:
        return None  # mAP goes through the engine's own pipeline

    def profile(self, layout) -> tuple[list, str]:
        from engine.profiles import ProfileNotOffered

        raise ProfileNotOffered("profiles are taken in the lean mode, where the engine holds the runtime itself")

    def in_flight_step(self):
        if not (self.job.in_flight and self.runtime_class.device == "cpu"):
            return None
        return partial(self._in_flight, self.job)

    def _in_flight(self, job: MeasureJob) -> tuple[dict, list]:
        batches, expected = in_flight_batches(self, job)
        return self.predictor.throughput(batches, job.in_flight, IN_FLIGHT_S), expected


def pipeline_for(runtime_class, job: MeasureJob):
    return PredictorPipeline(runtime_class, job) if job.mode == "ultralytics" else LeanPipeline(runtime_class, job)
