"""Orchestrates a run: it sequences the stages and owns the run's status.

The stages, each a module with one job: inputs (images and models, checked before anything is written), the parity
reference (reference_stage), exports (export_stage), measuring in a supervised worker process per batch size
(supervise, worker), and recording (statistics, parity, detections, the stored result). This process never imports
a runtime library; a child that crashes, hangs or raises costs its own results only, stored as failed with the
reason.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine import models, store
from engine.config import BenchError, RunConfig, Variant, expand_variants, not_measured, runnable_on_onnx, validate
from engine.export_stage import prepare_artifacts, refusal_of
from engine.inputs import IMAGE_TYPES, resolve_images, resolve_model, resolve_reference_model
from engine.measure_stage import MeasureStage
from engine.names import new_id
from engine.paths import cache_dir
from engine.recording import Recorder
from engine.records import EXPORTED
from engine.reference_stage import compute_reference
from engine.stop_signals import StopSignals
from engine.supervise import Cancelled, pid_alive

OUTPUT_CLOSED = "its output was closed: the program reading it exited"  # a run's stored reason

EventSink = Callable[[dict], None]


def _onnx_runtimes() -> list[str]:
    from engine.runtimes import registry

    return [name for name in registry.names() if registry.get(name).onnx_file_precisions]


class OutputClosed(BrokenPipeError):
    """The run's progress could not be written: its reader went away (`engine run ... | head`)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a run: the run is stored as cancelled with the results measured before; the
    caller gets them here."""

    def __init__(self, outcome: RunOutcome):
        super().__init__()
        self.outcome = outcome


@dataclass
class RunOutcome:
    run_id: str
    status: str
    results: list[dict] = field(default_factory=list)

    @property
    def all_completed(self) -> bool:
        return self.status == "completed"


class Runner:
    def __init__(
        self, config: RunConfig, on_event: EventSink | None = None, should_cancel: Callable[[], bool] = lambda: False
    ):
        self.config = config
        self.on_event = on_event or (lambda event: None)
        self.cancel_requested = should_cancel  # the dashboard's Cancel
        self.stop_signals = StopSignals()  # Ctrl-C and SIGTERM, while run() runs
        self.run_id = new_id()
        self.log_folder = cache_dir() / "logs" / self.run_id
        self.reference_model: dict | None = None  # --reference, resolved in prepare()
        self.recorder = Recorder(config, self.run_id, self.emit)

    @property
    def results(self) -> list[dict]:
        return self.recorder.summaries

    def emit(self, kind: str, **payload) -> None:
        try:
            self.on_event({"event": kind, "run_id": self.run_id, "time": time.time(), **payload})
        except BrokenPipeError:  # told apart from a worker's pipe that broke
            raise OutputClosed() from None

    def should_cancel(self) -> bool:
        """Polled every 0.2 s while a job runs and before each batch size: raises KeyboardInterrupt for Ctrl-C or
        SIGTERM (engine/stop_signals.py); True when the dashboard's Cancel was pressed."""
        return self.stop_signals.check() or self.cancel_requested()

    def prepare(self) -> tuple[list[Variant], list[str], dict]:
        """Everything that can reject the input, before anything is written."""
        config = self.config
        validate(config)
        variants = expand_variants(config)
        images, left_out = resolve_images(config.images)
        store.check_readable(config.db)
        if left_out:
            names = ", ".join(os.path.basename(p) for p in left_out[:5]) + (" …" if len(left_out) > 5 else "")
            self.emit(
                "stage",
                stage="images",
                message=f"{len(images)} images; left out {len(left_out)} file(s) that are not {IMAGE_TYPES}: {names}",
            )
        for said in not_measured(config, variants):
            self.emit("stage", stage="plan", message=said)
        check = self.stop_signals.check
        model = resolve_model(config.model, config, self.log_folder / "prepare.log", self.emit, check)
        if model["kind"] == "onnx":
            variants = self.onnx_variants(variants)
        models.check_fixed_input(model, config.imgsz, config.batch_sizes)
        if config.reference:
            self.reference_model = resolve_reference_model(
                model, config, self.log_folder / "prepare-reference.log", self.emit, check
            )
        if config.data:
            from engine.accuracy import prepare_labelled_data

            self.emit("stage", stage="check labels", message=f"checking the labels of {config.data}")
            self.recorder.labelled = prepare_labelled_data(config.data, len(model["names"]) or None)
        return variants, images, model

    def onnx_variants(self, variants: list[Variant]) -> list[Variant]:
        """An .onnx model runs on the runtimes that take the file; the others are named, not stored as failures."""
        takes, cannot = runnable_on_onnx(variants)
        if not takes:
            raise BenchError(f"none of the chosen runtimes ({', '.join(cannot)}) runs an .onnx file given directly: "
                             f"choose one of {', '.join(_onnx_runtimes())}, or give the .pt model")  # fmt: skip
        if cannot:
            measured = ", ".join(sorted({v.runtime for v in takes}))
            self.emit("stage", stage="plan", message=f"an .onnx model: measuring {measured}; not {', '.join(cannot)}, "
                      "which need the .pt model")  # fmt: skip
        return takes

    def run(self) -> RunOutcome:
        with self.stop_signals:
            return self._run()

    def _run(self) -> RunOutcome:
        variants, images, model = self.prepare()
        self.start_run(model, images, variants)
        outcome = RunOutcome(self.run_id, "running", self.results)  # grows as results are stored
        db = self.config.db
        try:
            self.recorder.reference = compute_reference(
                self.config,
                self.run_id,
                model,
                self.reference_model,
                images,
                self.log_folder,
                self.emit,
                self.should_cancel,
            )
            for variant in variants:
                self.run_variant(variant, model, images)
        except (Cancelled, KeyboardInterrupt) as stop:
            # The configurations not measured get no row: a "failed" one would read as a runtime that broke
            # (the regression watch's "stopped working").
            reason = "cancelled by the user" if isinstance(stop, Cancelled) else "interrupted by Ctrl-C or SIGTERM"
            store.finish_run(db, self.run_id, "cancelled", reason)
            outcome.status = "cancelled"
            self.emit("run_finished", status="cancelled")
            if isinstance(stop, Cancelled):
                return outcome
            raise Interrupted(outcome) from None
        except OutputClosed:  # `engine run ... | head`: its reader had what it wanted, a stop as Ctrl-C is
            store.finish_run(db, self.run_id, "cancelled", OUTPUT_CLOSED)
            outcome.status = "cancelled"
            raise
        except BaseException as error:
            store.finish_run(db, self.run_id, "failed", f"{type(error).__name__}: {error}")
            raise
        failed = sum(1 for r in outcome.results if r["status"] not in ("completed", EXPORTED))
        outcome.status = "completed" if not failed else ("failed" if failed == len(outcome.results) else "partial")
        store.finish_run(db, self.run_id, outcome.status, f"{failed} result(s) failed" if failed else None)
        self.emit("run_finished", status=outcome.status, failed=failed, total=len(outcome.results))
        return outcome

    def start_run(self, model: dict, images: list[str], variants: list[Variant]) -> None:
        """The run's row, with its machine and that machine's peak rates, once the input is accepted."""
        from engine.machine import fingerprint

        config, db = self.config, self.config.db
        store.ensure_schema(db)
        store.mark_interrupted_runs(db, pid_alive, socket.gethostname())
        machine = fingerprint(config.machine_label)
        store.upsert_machine(db, machine)
        self.ensure_machine_peak(machine["machine_id"])
        self.recorder.insert_run(machine, model, images)
        self.emit(
            "run_started",
            variants=[v.label for v in variants],
            batch_sizes=config.batch_sizes,
            model=model["display_name"],
            weights_trained=model["trained"],
            machine=machine["label"],
        )

    def ensure_machine_peak(self, machine_id: str) -> None:
        """This machine's peak rates in the database before any worker runs (engine/peak.py)."""
        from engine.peak import ensure_stored_peak

        ensure_stored_peak(
            self.config.db,
            machine_id,
            self.config.effective_threads,
            lambda message: self.emit("stage", stage="peak", message=message),
        )

    def run_variant(self, variant: Variant, model: dict, images: list[str]) -> list[dict]:
        """One configuration at each batch size: its exports, then a worker process per batch size."""
        from engine.runtimes import registry

        runtime_class = registry.get(variant.runtime)
        self.emit("variant_started", variant=variant.label)
        base = self.recorder.base(variant, runtime_class)
        refusal = refusal_of(variant, runtime_class)
        if refusal:
            return [self.recorder.failed(base, batch, refusal) for batch in self.config.batch_sizes]
        artifacts, failures = prepare_artifacts(
            variant, runtime_class, model, images, self.config, self.log_folder, self.emit, self.should_cancel
        )
        stored = [self.recorder.failed(base, f.batch, f.reason, export_cached=f.export_cached) for f in failures]
        export_only = runtime_class.export_only()
        if export_only:
            return stored + [self.recorder.exported(base, artifact, export_only) for artifact in artifacts.values()]
        measuring = MeasureStage(self.config, self.recorder, self.emit, self.should_cancel, self.log_folder)
        for batch in (b for b in self.config.batch_sizes if b in artifacts):
            measuring.measure(variant, base, batch, artifacts[batch], model, images, stored)
        return stored
