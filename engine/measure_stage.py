"""The measuring stage: one configuration's batch size in a supervised worker process (engine/supervise.py,
engine/worker.py), its messages turned into progress events and, through the recorder, stored results.

One process per batch size: two runtime sessions in one process slow each other down, so nothing shares a
process. A worker that fails before its result costs that result; one that fails in the in-flight step after it
costs only the in-flight figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config import MAX_ITERS, RunConfig, Variant
from engine.export_stage import Artifact
from engine.recording import Recorder
from engine.records import InFlightFigure, MeasureJob
from engine.supervise import JobFailed, run_job


@dataclass
class MeasureStage:
    config: RunConfig
    recorder: Recorder
    emit: Callable[..., None]
    should_cancel: Callable[[], bool]
    log_folder: Path

    def job(self, variant: Variant, batch: int, artifact: Artifact, model: dict, images: list[str]) -> MeasureJob:
        config, recorder = self.config, self.recorder
        log_name = f"measure-{variant.runtime}-{variant.precision}-{variant.mode}-b{batch}.log"
        return MeasureJob(
            runtime=variant.runtime,
            precision=variant.precision,
            mode=variant.mode,
            batch=batch,
            artifact=artifact.path,
            images=tuple(images),
            imgsz=config.imgsz,
            threads=config.effective_threads,
            warmup=config.warmup,
            iters=config.iters,
            min_duration_s=config.min_duration_s,
            max_iters=MAX_ITERS,
            conf=config.conf,
            iou=config.iou,
            names=model["names"],
            reference_raw=recorder.reference.folder,
            data_yaml=recorder.labelled.yaml_path if recorder.labelled else None,
            in_flight=config.in_flight or 0,
            log_path=str(self.log_folder / log_name),
            profile=config.profile,
            model_path=model.get("path"),
        )

    def measure(
        self,
        variant: Variant,
        base: dict,
        batch: int,
        artifact: Artifact,
        model: dict,
        images: list[str],
        stored: list[dict],
    ) -> None:
        """One batch size in its own worker; what it measured is appended to stored."""
        job = self.job(variant, batch, artifact, model, images)
        state = {"result": None, "in_flight": False}

        def on_message(kind: str, payload) -> None:
            if kind == "progress":
                state["in_flight"] = state["in_flight"] or payload.get("stage") == "in flight"
                self.emit("progress", variant=variant.label, **payload)
            elif kind == "result":
                state["result"] = self.recorder.measured(base, artifact, payload, images, model)
                stored.append(state["result"])
            elif kind == "in_flight":
                state["in_flight"] = False
                self.recorder.in_flight(variant, stored, payload)
            elif kind == "profile":
                self.recorder.profile(variant, stored, payload)

        limit_mb = self.config.effective_memory_limit_mb
        try:
            run_job("measure", job, self.config.timeout_s, on_message, self.should_cancel, memory_limit_mb=limit_mb)
        except JobFailed as error:
            if state["result"] is None:
                stored.append(self.recorder.failed(base, job.batch, f"measurement failed: {error}", artifact))
            elif state["in_flight"]:  # its result is stored; only the in-flight step was lost
                lost = InFlightFigure(
                    job.batch, job.in_flight, None, {"error": f"the process failed measuring it: {error}"}
                )
                self.recorder.in_flight(variant, stored, lost)
