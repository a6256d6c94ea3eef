"""Child-process side: model preparation, one export, or one runtime's measurement, reported over a pipe.

Each job runs in a freshly spawned process (see supervise.py): runtimes interfere inside one process, and a
crash or hang must cost one result, not the run. Messages are (kind, payload) tuples: ("progress", {...}),
("result", BatchMeasurement) for the job's batch size (then ("in_flight", InFlightFigure) when asked), then
("done", payload) or ("error", text). ("deadline", {"seconds", "step"}) gives the next step its own time
limit within the job's timeout; ("deadline", {"seconds": None}) ends it.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import traceback
from pathlib import Path

from engine.config import BenchError
from engine.in_flight import same_boxes
from engine.measured_pipelines import IN_FLIGHT_S, batch_of, pipeline_for
from engine.records import BatchMeasurement, InFlightFigure, MeasureJob, StageSample

IN_FLIGHT_SPARE_S = 30.0  # on top of IN_FLIGHT_S and compiling the model again, before the step counts as hung


def _quiet_libraries() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("YOLO_VERBOSE", "False")


def _redirect_output(log_path: str | None) -> None:
    """Native libraries (TensorFlow above all) write to fd 1 and 2 directly: send both to the job's log."""
    if not log_path:
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def entry(job: str, params, conn) -> None:
    """Spawned process target; params: a dict, or a MeasureJob for "measure"."""
    # Ctrl-C reaches the terminal's whole process group: the parent decides what it means, and kills this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_output(params.get("log_path") if isinstance(params, dict) else params.log_path)
    _quiet_libraries()
    try:
        if job == "prepare":
            from engine.models import resolve

            conn.send(("done", resolve(params["model"]).to_dict()))
        elif job == "export":
            from engine.export import run_export

            output = run_export(
                params["model_path"], params["model_sha256"], params["names"], params["request"], params["images"]
            )
            conn.send(("done", str(output)))
        elif job == "reference":
            conn.send(("done", reference(params)))
        elif job == "measure":
            measure(params, conn)
            conn.send(("done", None))
        else:
            conn.send(("error", f"unknown job {job}"))
    except BenchError as error:
        conn.send(("error", str(error)))
    except BaseException as error:  # report every failure, then exit: the parent stores it as the result's error
        detail = traceback.format_exc(limit=6)
        conn.send(("error", f"{type(error).__name__}: {error}\n{detail}"))
    finally:
        conn.close()


def reference_raw_path(folder: str | Path, index: int) -> Path:
    """Where the reference job saves image `index`'s raw output (4 + classes, anchors), float32."""
    return Path(folder) / f"{index:04d}.npy"


def reference(params: dict) -> dict:
    """The parity reference: each image once at batch 1 in fp32; raw outputs saved, detections returned and
    saved, a list in the images' order (reference_cache keeps the folder for later runs with other paths)."""
    import json

    import numpy as np

    from engine.pipeline import decode_image
    from engine.reference_cache import DETECTIONS_FILE
    from engine.runtimes import registry

    runtime_class = registry.get(params["runtime"])
    runtime_class.configure_process(params["threads"])
    runtime = runtime_class(Path(params["model_path"]), "fp32", params["threads"], 1, params["imgsz"])
    runtime.load()
    folder = Path(params["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    detections = []
    for index, path in enumerate(params["images"]):
        # The reference runtime's own lean stages: its lean result is then the reference to the bit, whatever
        # form its preprocessing hands over (PyTorch's folded batch, say)
        tensor, placements = runtime.preprocess([decode_image(path)])
        raw = runtime.infer(tensor)
        np.save(reference_raw_path(folder, index), np.ascontiguousarray(raw[0], dtype=np.float32))
        found = runtime.postprocess(raw, placements, params["conf"], params["iou"])[0]
        detections.append([d.__dict__ for d in found])
    (folder / DETECTIONS_FILE).write_text(json.dumps(detections))
    return {"detections": detections, "input_shape": list(tensor.shape), "settings": runtime.settings()}


def wait_until_recorded(conn, limit_s: float = 600) -> None:
    """Until the parent has stored the result just sent (engine.supervise.RECORDED): its parity check, images
    and writes would otherwise share the CPU with what this process measures next. Past limit_s, or when the parent
    sends nothing, it goes on: the parent's own deadlines still hold."""
    try:
        if conn.poll(limit_s):
            conn.recv()
    except (EOFError, OSError):
        pass


def measure(job: MeasureJob, conn) -> None:
    """One batch size of one runtime: the result, then (when asked and offered) its in-flight figure."""
    from engine.measure import reset_peak_memory
    from engine.runtimes import registry

    runtime_class = registry.get(job.runtime)
    if job.mode != "ultralytics":  # in the ultralytics mode Ultralytics sets threads itself, as users get it
        runtime_class.configure_process(job.threads)
    reset_peak_memory()  # the batch size's own peak: load, warm-up, measurement and detections
    in_flight = None
    try:
        pipeline = pipeline_for(runtime_class, job)
        result = measure_batch(pipeline, job, conn)
        in_flight = pipeline.in_flight_step()
    except BenchError as error:
        result = BatchMeasurement(batch=job.batch, status="failed", error=str(error))
    except Exception as error:
        result = BatchMeasurement(
            batch=job.batch, status="failed", error=f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
        )
    conn.send(("result", result))
    if result.status == "completed" and (in_flight is not None or job.profile):
        wait_until_recorded(conn)
    # The in-flight figure comes after the result is stored: AsyncInferQueue has hung on AMD EPYC CPUs
    # (ultralytics/ultralytics#25923), and a crash or hang there must not cost what was measured.
    if in_flight is not None and result.status == "completed":
        conn.send(("progress", {"batch": job.batch, "stage": "in flight", "requests": job.in_flight}))
        # it compiles the model once more (about load_s) and runs IN_FLIGHT_S: waiting the job's whole
        # timeout for a hang would stall a sweep for minutes per result
        limit_s = IN_FLIGHT_S + 4 * result.load_s + IN_FLIGHT_SPARE_S
        conn.send(("deadline", {"seconds": limit_s, "step": "the in-flight measurement"}))
        conn.send(("in_flight", measure_in_flight(in_flight, job)))
        conn.send(("deadline", {"seconds": None}))
    if job.profile and result.status == "completed":
        conn.send(("progress", {"batch": job.batch, "stage": "profile", "calls": job.profile}))
        conn.send(("profile", measure_profile(pipeline, job)))
    gc.collect()


def measure_profile(pipeline, job: MeasureJob):
    """The runtime's own profile, charged to the model's modules, after everything else was sent: a runtime that
    offers none, or fails here, says why and loses nothing measured."""
    from engine.profiles import ProfileFigure, ProfileNotOffered, layout_of, rows_of

    try:
        layout = layout_of(job.model_path) if job.model_path and job.model_path.endswith((".pt", ".yaml")) else None
        ops, profiler = pipeline.profile(layout)
        return ProfileFigure(job.batch, job.profile, profiler, rows_of(ops, layout))
    except ProfileNotOffered as reason:
        return ProfileFigure(job.batch, job.profile, None, error=f"not offered: {reason}")
    except Exception as error:
        return ProfileFigure(job.batch, job.profile, None, error=f"{type(error).__name__}: {error}")


def measure_batch(pipeline, job: MeasureJob, conn) -> BatchMeasurement:
    """Load, warm up, measure until both the iteration count and the minimum duration are reached, then find each
    image's detections once (comparing raw outputs with the reference's as it goes) and mAP where asked."""
    from engine.measure import peak_memory_mb

    def progress(stage: str, **extra) -> None:
        conn.send(("progress", {"batch": job.batch, "stage": stage, **extra}))

    progress("load")
    started = time.perf_counter()
    pipeline.load()
    load_s = time.perf_counter() - started
    warmup = pipeline.runtime_class.warmup_calls(job.warmup)  # at least one: the output's shape is checked there
    progress("warmup", done=0, total=warmup)
    for i in range(warmup):
        pipeline.warm(batch_of(job.images, job.batch, i))
        progress("warmup", done=i + 1, total=warmup)
    if pipeline.warmup_loads:
        load_s = time.perf_counter() - started
    on_gpu = pipeline.runtime_class.device == "gpu"
    if on_gpu:
        from engine import gpu_monitor

        monitor, no_monitor = gpu_monitor.start()  # energy, clocks, temperature, throttling over the timed window
    samples = _measure_loop(job, pipeline.timed, progress)
    settings = pipeline.settings()
    if on_gpu:
        images = len(samples) * job.batch
        settings["gpu_window"] = monitor.stop(images).to_dict() if monitor else {"unavailable": no_monitor}
    progress("detections")
    found, raw_diff = _detections_per_image(pipeline, job)
    memory = peak_memory_mb()  # before mAP: Ultralytics' validator would add PyTorch's share
    accuracy = None
    if job.data_yaml and pipeline.gives_raw:
        progress("mAP")
        accuracy = pipeline.accuracy(_validation_folder(job))
    return BatchMeasurement(
        batch=job.batch,
        status="completed",
        samples=tuple(samples),
        settings=settings,
        input_shape=pipeline.input_shape,
        load_s=load_s,
        model_file=pipeline.model_file,
        detections=found,
        raw_diff=raw_diff.to_dict() if raw_diff else None,
        peak_memory_mb=memory,
        accuracy=accuracy,
    )


def measure_in_flight(step, job: MeasureJob) -> InFlightFigure:
    """The in-flight figure, measured after the batch's result was sent, its settings saying whether the boxes
    were those found one at a time; an exception becomes the settings' "error", with no figure."""
    try:
        measured, expected = step()
    except Exception as error:
        return InFlightFigure(job.batch, job.in_flight, None, {"error": f"{type(error).__name__}: {error}"})
    settings = measured["in_flight_settings"]
    settings["boxes"] = same_boxes(expected, measured.pop("found"))
    return InFlightFigure(job.batch, measured["in_flight"], measured["in_flight_ips"], settings)


def _measure_loop(job: MeasureJob, timed, progress) -> list[StageSample]:
    """Iterate until both the iteration count and the minimum duration are reached; one StageSample each."""
    samples: list[StageSample] = []
    begin = last_report = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - begin
        if len(samples) >= job.iters and elapsed >= job.min_duration_s:
            break
        if len(samples) >= job.max_iters:
            break
        samples.append(timed(batch_of(job.images, job.batch, len(samples))))
        if time.perf_counter() - last_report > 0.5:
            last_report = time.perf_counter()
            progress("measure", done=len(samples), total=job.iters, elapsed_s=round(elapsed, 1))
    # the final count too: the throttled reports above left the Run page at '16 of 20' for the rest of the batch
    progress("measure", done=len(samples), total=job.iters, elapsed_s=round(time.perf_counter() - begin, 1))
    return samples


def _detections_per_image(pipeline, job: MeasureJob):
    """Each distinct image once, in batches of the measured size (padded by repetition); with a reference and a
    raw output, each image's raw output is compared with the reference's as it goes."""
    import numpy as np

    from engine.parity import RawDiff

    found: dict[str, list] = {}
    compare = job.reference_raw and pipeline.gives_raw
    raw_diff = RawDiff() if compare else None
    images = list(job.images)
    for start in range(0, len(images), job.batch):
        chunk = images[start : start + job.batch]
        raw, detections = pipeline.detect(chunk + [chunk[-1]] * (job.batch - len(chunk)))
        for offset, (path, dets) in enumerate(zip(chunk, detections)):
            found[path] = [d.__dict__ for d in dets]
            if raw_diff is not None:
                raw_diff.add(np.load(reference_raw_path(job.reference_raw, start + offset)), raw[offset])
    return found, raw_diff


def _validation_folder(job: MeasureJob) -> Path:
    import tempfile

    return Path(job.log_path).with_suffix(".val") if job.log_path else Path(tempfile.mkdtemp())
