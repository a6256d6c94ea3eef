"""Orchestrates a run: validate, prepare the model, export and measure each variant in its own process, store.

This process never imports a runtime library. Every child gets a timeout; a child that crashes, hangs or
raises costs its own results only, which are stored as failed with the reason.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine import models, store, worker
from engine.config import IMAGE_SUFFIXES, MAX_ITERS, BenchError, RunConfig, Variant, expand_variants, validate
from engine.names import new_id
from engine.paths import artifacts_dir, cache_dir, sample_images
from engine.reference_cache import (key_of, partial_folder, publish, reference_folder, reference_material,
                                    stored_detections)
from engine.stop_signals import StopSignals

IMAGE_TYPES = "/".join(IMAGE_SUFFIXES)  # for messages: ".jpg/.jpeg/.png/..."
MAX_IMAGE_SIDE = 16384
MAX_IMAGES = 500
OUTPUT_CLOSED = "its output was closed: the program reading it exited"  # a run's stored reason

EventSink = Callable[[dict], None]


class JobFailed(Exception):
    pass


class Cancelled(Exception):
    pass


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


def describe_exit(code: int | None) -> str:
    if code is None:
        return "worker process did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory or by a signal)" if name == "SIGKILL" else ""
        return f"worker process crashed with {name}{hint}"
    return f"worker process exited with code {code} without a result"


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        return sum(member.memory_info().rss for member in members) / 2**20
    except psutil.Error:
        return 0.0


def run_job(job: str, params: dict, timeout_s: float, on_message: Callable[[str, dict], None] | None = None,
            should_cancel: Callable[[], bool] = lambda: False, memory_limit_mb: float = 0):
    """Run one job in a fresh spawned process; return its 'done' payload or raise JobFailed / Cancelled.

    The process (with its children) is killed when its resident memory passes memory_limit_mb (0: no limit).
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=worker.entry, args=(job, params, sender), name=f"bench-{job}")
    process.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    step = None  # {"seconds", "step", "until"} while the worker runs a step with its own limit
    try:
        while True:
            if should_cancel():
                raise Cancelled()
            if memory_limit_mb and (used_mb := _tree_rss_mb(process.pid)) > memory_limit_mb:
                raise JobFailed(f"used {used_mb:.0f} MB, over the memory limit of {memory_limit_mb:g} MB "
                                "(the process was killed; raise --memory-limit)")
            if receiver.poll(0.2):
                try:
                    kind, payload = receiver.recv()
                except (EOFError, OSError):
                    break
                if kind == "done":
                    process.join(30)
                    return payload
                if kind == "error":
                    raise JobFailed(payload)
                if kind == "deadline":  # the worker's next step should take at most this long (None: it ended)
                    step = None if payload["seconds"] is None else {
                        **payload, "until": time.monotonic() + payload["seconds"]}
                    continue
                if on_message:
                    on_message(kind, payload)
                continue
            if not process.is_alive():
                if receiver.poll(0):
                    continue
                break
            if time.monotonic() > deadline:
                raise JobFailed(f"timed out after {timeout_s:g} s (the process was killed)"
                                + _log_tail(params.get("log_path")))
            if step and time.monotonic() > step["until"]:
                raise JobFailed(f"{step['step']} did not end within {step['seconds']:.0f} s (the process was killed)"
                                + _log_tail(params.get("log_path")))
        process.join(5)
        if should_cancel():  # Ctrl-C reaches the whole process group: a worker still starting dies of it
            raise Cancelled()
        raise JobFailed(describe_exit(process.exitcode) + _log_tail(params.get("log_path")))
    finally:
        if process.is_alive():
            process.kill()
            process.join(5)
        receiver.close()


def _log_tail(log_path: str | None, lines: int = 3) -> str:
    try:
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-lines:]
    except (OSError, TypeError):
        return ""
    return ("; last log lines: " + " | ".join(line.strip()[:200] for line in tail)) if tail else ""


def resolve_images(specs: list[str]) -> tuple[list[str], list[str]]:
    """Files and folders -> (image files that decode, files in the folders left out for their suffix);
    a clear error for anything else."""
    from PIL import Image

    paths: list[Path] = []
    left_out: list[str] = []
    for spec in specs or [str(p) for p in sample_images()]:
        path = Path(spec).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            left_out.extend(str(p) for p in files if p.suffix.lower() not in IMAGE_SUFFIXES)
            if not found:
                raise BenchError(f"image folder {path} holds no {IMAGE_TYPES} images")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise BenchError(f"image {spec} does not exist")
    if not paths:
        raise BenchError("no images: pass --images with files or a folder (or install ultralytics for its samples)")
    if len(paths) > MAX_IMAGES:
        raise BenchError(f"{len(paths)} images given; at most {MAX_IMAGES} per run")
    for path in paths:
        _check_image(path, Image)
    return [str(p.resolve()) for p in paths], left_out


def _check_image(path: Path, Image) -> None:
    import cv2

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise BenchError(f"image {path} is too large: sides must be 8 to {MAX_IMAGE_SIDE} pixels") from None
    except Exception:
        raise BenchError(f"image {path} cannot be read: it is not an image file or it is corrupt") from None
    if width < 8 or height < 8 or max(width, height) > MAX_IMAGE_SIDE:
        raise BenchError(f"image {path} is {width}x{height}: sides must be 8 to {MAX_IMAGE_SIDE} pixels")
    try:  # a full decode: OpenCV would accept a truncated JPEG and fill the rest with grey
        with Image.open(path) as image:
            image.load()
    except Exception:
        raise BenchError(f"image {path} cannot be decoded: the file is truncated or corrupt") from None
    if cv2.imread(str(path), cv2.IMREAD_COLOR) is None:
        raise BenchError(f"image {path} cannot be decoded by OpenCV: convert it to JPEG or PNG")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runner:
    def __init__(self, config: RunConfig, on_event: EventSink | None = None,
                 should_cancel: Callable[[], bool] = lambda: False):
        self.config = config
        self.on_event = on_event or (lambda event: None)
        self.cancel_requested = should_cancel  # the dashboard's Cancel
        self.stop_signals = StopSignals()  # Ctrl-C and SIGTERM, while run() runs
        self.run_id = new_id()
        self.log_folder = cache_dir() / "logs" / self.run_id
        self.reference_model: dict | None = None  # --reference, resolved in prepare()
        self.labelled = None  # accuracy.LabelledData when --data is given, checked in prepare()
        self.reference: dict = {}  # name, detections per image, folder of raw outputs; or name None and error
        self.results: list[dict] = []  # every result stored so far, in order

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
            names = ", ".join(Path(p).name for p in left_out[:5]) + (" …" if len(left_out) > 5 else "")
            self.emit("stage", stage="images", message=f"{len(images)} images; left out {len(left_out)} "
                      f"file(s) that are not {IMAGE_TYPES}: {names}")
        model = self.resolve_model(config.model, "prepare.log")
        models.check_fixed_input(model, config.imgsz, config.batch_sizes)
        if config.reference:
            self.reference_model = self.prepare_reference_model(model)
        if config.data:
            from engine.accuracy import prepare_labelled_data

            self.emit("stage", stage="check labels", message=f"checking the labels of {config.data}")
            self.labelled = prepare_labelled_data(config.data, len(model["names"]) or None)
        return variants, images, model

    def resolve_model(self, spec: str, log_name: str) -> dict:
        """--model or --reference: a .pt file resolved before is read from what was kept (models.kept); else a
        worker loads it (it imports torch and unpickles the file)."""
        known = models.kept(spec)
        if known is not None:
            self.emit("stage", stage="prepare model",
                      message=f"resolving {spec}: known from an earlier run (the same file contents)")
            return known.to_dict()
        self.emit("stage", stage="prepare model", message=f"resolving {spec}")
        config = self.config
        try:
            model = run_job("prepare", {"model": spec, "log_path": str(self.log_folder / log_name)},
                            timeout_s=min(config.timeout_s, 600), memory_limit_mb=config.effective_memory_limit_mb,
                            should_cancel=self.stop_signals.check)  # nothing to cancel yet: Ctrl-C stops it
        except JobFailed as error:
            raise BenchError(str(error).splitlines()[0]) from None
        models.keep(model)
        return model

    def prepare_reference_model(self, model: dict) -> dict:
        config = self.config
        try:
            reference = self.resolve_model(config.reference, "prepare-reference.log")
        except BenchError as error:
            raise BenchError(f"reference model: {error}") from None
        if model["names"] and len(reference["names"]) != len(model["names"]):
            raise BenchError(f"reference model {config.reference} has {len(reference['names'])} classes and "
                             f"model {config.model} {len(model['names'])}: they cannot be compared")
        return reference

    def run_reference(self, model: dict, images: list[str]) -> dict:
        """The parity reference in its own process: PyTorch fp32 on the checkpoint (--reference, else --model),
        or ONNX Runtime fp32 when only an .onnx was given; kept for later runs by what shapes it
        (engine/reference_cache.py). A failure leaves results without a verdict."""
        config = self.config
        source = self.reference_model or model
        if source["kind"] == "pt":
            runtime, name = "pytorch", f"pytorch:fp32 {Path(source['path']).name}"
        else:
            runtime, name = "onnxruntime", f"onnxruntime:fp32 {Path(source['path']).name} (no PyTorch model given)"
        material = reference_material(runtime, source["sha256"], images, config.imgsz, config.conf, config.iou)
        folder = reference_folder(key_of(material))
        detections = stored_detections(folder)
        if detections is not None:
            self.emit("stage", stage="reference", message=f"parity reference: {name}, kept from an earlier run "
                      "with the same model, images and settings")
        else:
            self.emit("stage", stage="reference", message=f"computing the parity reference: {name}")
            partial = partial_folder(folder, self.run_id)
            try:
                payload = run_job("reference", {
                    "runtime": runtime, "model_path": source["path"], "images": images, "imgsz": config.imgsz,
                    "threads": config.effective_threads, "conf": config.conf, "iou": config.iou,
                    "folder": str(partial), "log_path": str(self.log_folder / "reference.log"),
                }, config.timeout_s, should_cancel=self.should_cancel, memory_limit_mb=config.effective_memory_limit_mb)
            except JobFailed as error:
                shutil.rmtree(partial, ignore_errors=True)
                reason = f"no parity reference: {name} failed: {str(error).splitlines()[0]}"
                self.emit("stage", stage="reference", message=reason)
                return {"name": None, "error": reason}
            except BaseException:  # cancelled or interrupted: leave no partial folder behind
                shutil.rmtree(partial, ignore_errors=True)
                raise
            publish(partial, folder, material)
            detections = payload["detections"]
        names = {int(k): v for k, v in model["names"].items()}
        rows = []
        for index, path in enumerate(images):
            for i, det in enumerate(detections[index]):
                rows.append({**det, "image": self.image_key(index, path), "det_index": i,
                             "class_name": names.get(det["class_id"], str(det["class_id"]))})
        store.insert_reference_detections(config.db, self.run_id, name, rows)
        return {"name": name, "detections": dict(zip(images, detections)), "folder": str(folder)}

    @staticmethod
    def image_key(index: int, path: str) -> str:
        return f"{index:02d}-{Path(path).name}"

    def run(self) -> RunOutcome:
        with self.stop_signals:
            return self._run()

    def _run(self) -> RunOutcome:
        from engine.machine import fingerprint

        variants, images, model = self.prepare()
        config = self.config
        db = config.db
        store.ensure_schema(db)
        store.mark_interrupted_runs(db, pid_alive, socket.gethostname())
        machine = fingerprint(config.machine_label)
        store.upsert_machine(db, machine)
        self.ensure_machine_peak(machine["machine_id"])
        gflops_640 = model.get("gflops_640")
        store.insert_run(db, {
            "run_id": self.run_id, "started_at": store.now(), "machine_id": machine["machine_id"],
            "machine_label": machine["label"], "model": model["display_name"] or config.model,
            "model_sha256": model["sha256"], "model_source": model["source"], "weights_trained": model["trained"],
            "imgsz": config.imgsz, "images": images,
            "config": {**config.to_dict(), "host": socket.gethostname()},  # whose pid it is, in a shared store
            "libraries": machine["libraries"], "pid": os.getpid(),
            "model_gflops": gflops_640 * (config.imgsz / 640) ** 2 if gflops_640 else None,  # FLOPs scale with pixels
        })
        self.emit("run_started", variants=[v.label for v in variants], batch_sizes=config.batch_sizes,
                  model=model["display_name"], weights_trained=model["trained"], machine=machine["label"])
        outcome = RunOutcome(self.run_id, "running", self.results)  # grows as results are stored
        try:
            self.reference = self.run_reference(model, images)
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
        failed = sum(1 for r in outcome.results if r["status"] != "completed")
        outcome.status = "completed" if not failed else ("failed" if failed == len(outcome.results) else "partial")
        store.finish_run(db, self.run_id, outcome.status, f"{failed} result(s) failed" if failed else None)
        self.emit("run_finished", status=outcome.status, failed=failed, total=len(outcome.results))
        return outcome

    def ensure_machine_peak(self, machine_id: str) -> None:
        """Measure this machine's peaks once per thread count (~3-8 s, no runtime library), before any worker runs;
        a database new to this machine gets the peak measured here before (engine/peak.py keeps it)."""
        from engine.peak import keep_peak, kept_peak, lacks_rates, measure_peak

        threads = self.config.effective_threads
        stored = store.machine_peak(self.config.db, machine_id, threads)
        if stored and not lacks_rates(stored):
            return
        kept = kept_peak(machine_id, threads)
        if not kept or lacks_rates(kept):
            self.emit("stage", stage="peak", message=f"measuring this machine's peak rates on {threads} thread(s)")
            kept = keep_peak(machine_id, measure_peak(threads).to_dict(), store.now())
        store.insert_machine_peak(self.config.db, machine_id, kept)

    def run_variant(self, variant: Variant, model: dict, images: list[str]) -> list[dict]:
        from engine import export
        from engine.runtimes import registry

        config = self.config
        runtime_class = registry.get(variant.runtime)
        self.emit("variant_started", variant=variant.label)
        base = {"runtime": variant.runtime, "precision": variant.precision, "mode": variant.mode,
                "device": runtime_class.device, "imgsz": config.imgsz,
                "threads": config.effective_threads, "warmup": runtime_class.warmup_calls(config.warmup)}
        stored: list[dict] = []

        def fail(batch: int, reason: str, **extra) -> None:
            stored.append(self.store_result({**base, **extra, "batch": batch, "status": "failed", "error": reason}))

        available, reason = runtime_class.availability()
        if not available:
            for batch in config.batch_sizes:
                fail(batch, f"{variant.runtime} is unavailable on this machine: {reason}")
            return stored
        if model["kind"] == "onnx" and not runtime_class.accepts_onnx:
            for batch in config.batch_sizes:
                fail(batch, f"{variant.runtime} cannot run an .onnx file given directly; give the .pt model")
            return stored

        artifacts: dict[int, dict] = {}
        for batch in config.batch_sizes:
            if self.should_cancel():
                raise Cancelled()
            request = runtime_class.export_request(variant.precision, batch, config.imgsz)
            if model["kind"] == "onnx" or request is None:
                artifacts[batch] = {"path": model["path"], "export_cached": None, "export_s": 0.0,
                                    "model_mb": runtime_class.artifact_mb(Path(model["path"]))}
                continue
            key = export.export_key(model["sha256"], request)
            output = export.cached(key)
            export_s, was_cached = 0.0, output is not None
            if output is None:
                self.emit("stage", variant=variant.label, batch=batch, stage="export",
                          message=f"exporting {request['format']} (batch {batch})")
                started = time.perf_counter()
                try:
                    output = Path(run_job(
                        "export",
                        {"model_path": model["path"], "model_sha256": model["sha256"], "names": model["names"],
                         "request": request, "images": images,
                         "log_path": str(self.log_folder / f"export-{variant.runtime}-{variant.precision}-b{batch}.log")},
                        config.timeout_s, should_cancel=self.should_cancel,
                        memory_limit_mb=config.effective_memory_limit_mb))
                except JobFailed as error:
                    fail(batch, f"export to {request['format']} failed: {error}", export_cached=False)
                    continue
                export_s = time.perf_counter() - started
            try:
                path = runtime_class.artifact(output, variant.precision)
            except Exception as error:
                fail(batch, f"export output unusable: {error}", export_cached=was_cached)
                continue
            artifacts[batch] = {"path": str(path), "export_cached": was_cached, "export_s": export_s,
                                "model_mb": runtime_class.artifact_mb(path)}
        if not artifacts:
            return stored

        pending = [b for b in config.batch_sizes if b in artifacts]
        params = {
            "runtime": variant.runtime, "precision": variant.precision, "mode": variant.mode,
            "threads": config.effective_threads,
            "batch_sizes": pending, "artifacts": {str(b): a["path"] for b, a in artifacts.items()},
            "images": images, "imgsz": config.imgsz, "warmup": config.warmup, "iters": config.iters,
            "min_duration_s": config.min_duration_s, "max_iters": MAX_ITERS, "conf": config.conf,
            "iou": config.iou, "names": model["names"], "reference_raw": self.reference.get("folder"),
            "data_yaml": self.labelled.yaml_path if self.labelled else None, "in_flight": config.in_flight,
        }

        in_flight_started: set[int] = set()  # batches whose stored result waits for its in-flight figure

        def on_message(kind: str, payload: dict) -> None:
            if kind == "progress":
                if payload.get("stage") == "in flight":
                    in_flight_started.add(payload["batch"])
                self.emit("progress", variant=variant.label, **payload)
            elif kind == "result":
                batch = payload["batch"]
                pending.remove(batch)
                stored.append(self.store_result({**base, **artifacts[batch], **payload}, images, model))
            elif kind == "in_flight":
                in_flight_started.discard(payload["batch"])
                self.store_in_flight(variant.label, stored, payload["batch"], payload["in_flight"],
                                     payload["in_flight_ips"], payload["in_flight_settings"])

        # One process per batch size too: a second session in the same process ran 2x slower (measured).
        for batch in list(pending):
            try:
                log_path = str(self.log_folder / f"measure-{variant.runtime}-{variant.precision}-{variant.mode}"
                                                 f"-b{batch}.log")
                run_job("measure", {**params, "batch_sizes": [batch], "log_path": log_path}, config.timeout_s,
                        on_message, self.should_cancel, memory_limit_mb=config.effective_memory_limit_mb)
            except JobFailed as error:
                if batch in pending:
                    fail(batch, f"measurement failed: {error}", **artifacts[batch])
                    pending.remove(batch)
                elif batch in in_flight_started:  # its result is stored; only the in-flight step was lost
                    self.store_in_flight(variant.label, stored, batch, config.in_flight, None,
                                         {"error": f"the process failed measuring it: {error}"})
        return stored

    def store_in_flight(self, variant_label: str, stored: list[dict], batch: int, requests: int,
                        images_per_s: float | None, how: dict) -> None:
        """The in-flight figure, measured after its result was stored: added to that result, or why it is not."""
        result = next(r for r in stored if r["batch"] == batch)
        store.record_in_flight(self.config.db, result["result_id"], requests, images_per_s, how)
        result.update(in_flight=requests, in_flight_ips=images_per_s)
        message = f"b{batch} in flight ({requests} requests): " + (
            f"{images_per_s:.1f} img/s end to end" if images_per_s is not None
            else f"no figure ({how.get('error')}); the one-at-a-time result is kept")
        boxes = how.get("boxes") or {}
        if not boxes.get("same_as_one_at_a_time", True):
            message += f"; NOT the boxes found one at a time ({boxes.get('difference')})"
        self.emit("stage", variant=variant_label, batch=batch, stage="in flight", message=message)

    def store_result(self, result: dict, images: list[str] | None = None, model: dict | None = None) -> dict:
        from engine.measure import Stats

        result = dict(result)
        mode = result.setdefault("mode", "lean")
        result["result_id"] = (f"{self.run_id}-{result['runtime']}-{result['precision']}-b{result['batch']}"
                               + ("" if mode == "lean" else f"-{mode}"))  # lean keeps the ids of schema v3
        result["run_id"] = self.run_id
        result["model_file"] = result.get("model_file") or result.get("path")
        result["settings"] = {**(result.get("settings") or {}), "timeout_s": self.config.timeout_s,
                              "memory_limit_mb": self.config.effective_memory_limit_mb}
        samples = result.pop("samples", None) or []
        found = result.pop("detections", None) or {}
        stats, detection_rows, image_rows, parity_row = {}, [], [], None
        if samples:
            batch = result["batch"]
            stages = ("decode", "pre", "infer", "post") + (("other",) if "other" in samples[0] else ())
            per_image = {stage: [s[stage] / batch / 1e6 for s in samples] for stage in stages}
            # other: the ultralytics predictor's time outside its own stage figures, part of the call's cost
            per_image["total"] = [
                (s["pre"] + s["infer"] + s["post"] + s.get("other", 0)) / batch / 1e6 for s in samples
            ]
            stats = {stage: Stats.from_values(values).to_dict() for stage, values in per_image.items()}
            names = {int(k): v for k, v in (model or {}).get("names", {}).items()}
            report = self.parity(result, found)
            parity_row = report.row() if report else {"verdict": None, "reason": self.reference.get("error")}
            detection_rows, image_rows = self.detection_rows(result, found, images or [], names, model or {},
                                                             report.matches if report else {})
        accuracy_row = self.accuracy_row(result.pop("accuracy", None))
        result.pop("raw_diff", None)
        store.insert_result(self.config.db, result, samples, stats, detection_rows, image_rows, parity_row, accuracy_row)
        summary = {key: result.get(key)
                   for key in ("result_id", "runtime", "precision", "batch", "mode", "status", "error")}
        if stats:
            summary.update({f"{stage}_ms": stats[stage]["median"] for stage in stats})
            summary["throughput_ips"] = 1000.0 / stats["total"]["median"] if stats["total"]["median"] else None
            summary["infer_cv"] = stats["infer"]["cv"]
            summary["peak_memory_mb"] = result.get("peak_memory_mb")
            summary["model_mb"] = result.get("model_mb")
            summary["settings"] = result.get("settings")
            summary["parity_verdict"] = parity_row.get("verdict")
            summary["parity_reason"] = parity_row.get("reason")
            if accuracy_row:
                summary.update({key: accuracy_row.get(key) for key in ("map50", "map50_95")})
        self.results.append(summary)
        self.emit("result", **summary)
        return summary

    def parity(self, result: dict, found: dict):
        """The result against the reference (engine/parity.py); None without a reference."""
        from engine.parity import RawDiff, compare

        if not self.reference.get("name"):
            return None
        if result["mode"] == "ultralytics":  # the predictor hands back boxes only, no raw tensor
            raw = RawDiff(unavailable="raw output not available in ultralytics mode")
        else:
            raw = RawDiff.from_dict(result.get("raw_diff") or {})
        return compare(self.reference["name"], self.reference["detections"], found, raw, self.config.imgsz,
                       self.config.parity_iou)

    def accuracy_row(self, accuracy: dict | None) -> dict | None:
        if not self.labelled or accuracy is None:
            return None
        return {**accuracy, "data": self.labelled.source, "images": self.labelled.images,
                "instances": self.labelled.instances}

    def detection_rows(self, result: dict, found: dict, images: list[str], names: dict, model: dict,
                       matches: dict):
        import cv2

        from engine.pipeline import Detection, annotate

        detection_rows, image_rows = [], []
        smallest = result["batch"] == min(self.config.batch_sizes)
        folder = artifacts_dir(self.config.db, self.run_id)
        for index, path in enumerate(images):
            image_key = self.image_key(index, path)
            dets = [Detection(**d) for d in found.get(path, [])]
            for i, det in enumerate(dets):
                detection_rows.append({
                    "image": image_key, "det_index": i, "class_id": det.class_id,
                    "class_name": names.get(det.class_id, str(det.class_id)), "score": det.score,
                    "x1": det.x1, "y1": det.y1, "x2": det.x2, "y2": det.y2,
                    "reference_index": matches.get(path, {}).get(i),
                })
            annotated_path = None
            if smallest:
                folder.mkdir(parents=True, exist_ok=True)
                frame = cv2.imread(path, cv2.IMREAD_COLOR)
                mode = "" if result["mode"] == "lean" else f" {result['mode']}"
                title = f"{result['runtime']} {result['precision']} b{result['batch']}{mode}"
                picture = annotate(frame, dets, names, model.get("trained"), title)
                target = folder / (f"{result['runtime']}-{result['precision']}-b{result['batch']}"
                                   f"{mode.replace(' ', '-')}-{image_key}.jpg")
                cv2.imwrite(str(target), picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
                annotated_path = str(target)
            image_rows.append({"image": image_key, "annotated_path": annotated_path, "detections": len(dets)})
        return detection_rows, image_rows
