"""Child-process side: model preparation, one export, or one runtime's measurement, reported over a pipe.

Each job runs in a freshly spawned process (see runner.py): runtimes interfere inside one process, and a
crash or hang must cost one result, not the run. Messages are (kind, payload) tuples:
("progress", {...}), ("result", {...}) once per batch size (then ("in_flight", {...}) for it when asked),
then ("done", payload) or ("error", text). ("deadline", {"seconds", "step"}) gives the next step its own time
limit within the job's timeout; ("deadline", {"seconds": None}) ends it.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import time
import traceback
from functools import partial
from pathlib import Path

from engine.config import BenchError
from engine.in_flight import same_boxes

IN_FLIGHT_S = 2.0  # seconds of requests in flight per result, after the latency measurement
IN_FLIGHT_SPARE_S = 30.0  # on top of IN_FLIGHT_S and compiling the model again, before the step counts as hung
IN_FLIGHT_FRAMES = 8  # decoded frames the in-flight step cycles through, in distinct batches where it can


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


def entry(job: str, params: dict, conn) -> None:
    """Spawned process target."""
    # Ctrl-C reaches the terminal's whole process group: the parent decides what it means, and kills this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _redirect_output(params.get("log_path"))
    _quiet_libraries()
    try:
        if job == "prepare":
            from engine.models import resolve

            conn.send(("done", resolve(params["model"]).to_dict()))
        elif job == "export":
            from engine.export import run_export

            output = run_export(params["model_path"], params["model_sha256"], params["names"],
                                params["request"], params["images"])
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


def measure(params: dict, conn) -> None:
    from engine.measure import reset_peak_memory
    from engine.runtimes import registry

    runtime_class = registry.get(params["runtime"])
    ultralytics_mode = params.get("mode") == "ultralytics"
    if not ultralytics_mode:  # in the ultralytics mode Ultralytics sets threads itself, as users get it
        runtime_class.configure_process(params["threads"])
    for batch in params["batch_sizes"]:
        artifact = params["artifacts"].get(str(batch)) or params["artifacts"].get(batch)
        in_flight = None
        reset_peak_memory()  # each batch size's own peak: load, warm-up, measurement and detections
        try:
            if ultralytics_mode:
                payload, in_flight = measure_batch_ultralytics(runtime_class, params, batch, Path(artifact), conn)
            else:
                payload, in_flight = measure_batch(runtime_class, params, batch, Path(artifact), conn)
        except BenchError as error:
            payload = {"batch": batch, "status": "failed", "error": str(error)}
        except Exception as error:
            payload = {"batch": batch, "status": "failed",
                       "error": f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"}
        conn.send(("result", payload))
        # The in-flight figure comes after the result is stored: AsyncInferQueue has hung on AMD EPYC CPUs
        # (ultralytics/ultralytics#25923), and a crash or hang there must not cost what was measured.
        if in_flight is not None:
            conn.send(("progress", {"batch": batch, "stage": "in flight", "requests": params["in_flight"]}))
            # it compiles the model once more (about load_s) and runs IN_FLIGHT_S: waiting the job's whole
            # timeout for a hang would stall a sweep for minutes per result
            limit_s = IN_FLIGHT_S + 4 * payload["load_s"] + IN_FLIGHT_SPARE_S
            conn.send(("deadline", {"seconds": limit_s, "step": "the in-flight measurement"}))
            conn.send(("in_flight", {"batch": batch, **measure_in_flight(in_flight, params["in_flight"])}))
            conn.send(("deadline", {"seconds": None}))  # the next batch, if any, has the job's timeout again
        gc.collect()


def _batches(paths: list[str], batch: int, index: int) -> list[str]:
    start = index * batch
    return [paths[(start + j) % len(paths)] for j in range(batch)]


def measure_batch(runtime_class, params: dict, batch: int, artifact: Path, conn) -> dict:
    from engine.measure import StageTimer, peak_memory_mb
    from engine.pipeline import decode_image

    images, imgsz = params["images"], params["imgsz"]
    conf, iou = params["conf"], params["iou"]

    def progress(stage: str, **extra) -> None:
        conn.send(("progress", {"batch": batch, "stage": stage, **extra}))

    progress("load")
    started = time.perf_counter()
    runtime = runtime_class(artifact, params["precision"], params["threads"], batch, imgsz)
    runtime.load()
    load_s = time.perf_counter() - started

    def one_iteration(paths: list[str], timer: StageTimer):
        with timer.stage("decode"):
            frames = [decode_image(p) for p in paths]
        with timer.stage("pre"):
            tensor, placements = runtime.preprocess(frames)
        with timer.stage("infer"):
            raw = runtime.infer(tensor)
        with timer.stage("post"):
            found = runtime.postprocess(raw, placements, conf, iou)
        return tensor, raw, found

    warmup = runtime_class.warmup_calls(params["warmup"])  # at least one: its output's shape is checked below
    progress("warmup", done=0, total=warmup)
    for i in range(warmup):
        tensor, raw, _ = one_iteration(_batches(images, batch, i), StageTimer())
        progress("warmup", done=i + 1, total=warmup)
    expected = (batch, 4 + len(params["names"])) if params["names"] else (batch,)
    if tuple(raw.shape[: len(expected)]) != expected or raw.ndim != 3:
        raise BenchError(f"model output shape {tuple(raw.shape)} is not a YOLO detection output for batch {batch}")

    def timed(paths: list[str]) -> dict:
        timer = StageTimer()
        one_iteration(paths, timer)
        return timer.ns

    samples = _measure_loop(params, batch, timed, progress)
    settings = runtime.settings()

    progress("detections")
    per_image, raw_diff = _detections_per_image(images, batch, one_iteration, params.get("reference_raw"))
    payload = {
        "batch": batch,
        "status": "completed",
        "samples": samples,
        "settings": settings,
        "input_shape": list(tensor.shape),
        "load_s": load_s,
        "model_file": str(artifact),
        "detections": per_image,
        "raw_diff": raw_diff.to_dict() if raw_diff else None,
        "peak_memory_mb": peak_memory_mb(),  # before mAP: Ultralytics' validator would add PyTorch's share
    }
    if params.get("data_yaml"):
        progress("mAP")
        payload["accuracy"] = _accuracy(runtime, params, batch)
    in_flight = None  # measured later by measure(), once this payload is sent
    if params.get("in_flight") and runtime.offers_in_flight:
        in_flight = partial(_in_flight_step, runtime, params, batch, one_iteration)
    return payload, in_flight


def _in_flight_step(runtime, params: dict, batch: int, one_iteration) -> tuple[dict, list]:
    """The runtime's throughput() on decoded batches, and the detections the one-at-a-time pipeline finds in
    each. The batches differ where the images allow (up to IN_FLIGHT_FRAMES frames), so a request that
    postprocessed with another batch's placements would show."""
    from engine.measure import StageTimer
    from engine.pipeline import decode_image

    chunks = _in_flight_chunks(params["images"], batch)
    expected = [one_iteration(chunk, StageTimer())[2] for chunk in chunks]
    batches = [[decode_image(path) for path in chunk] for chunk in chunks]  # decoding stays out, as one at a time
    return runtime.throughput(batches, params["in_flight"], IN_FLIGHT_S, params["conf"], params["iou"]), expected


def _in_flight_chunks(images: list[str], batch: int) -> list[list[str]]:
    """The image files of the batches in flight: as many distinct batches as the images make, up to
    IN_FLIGHT_FRAMES frames, at least one."""
    count = max(1, min(len(images) // math.gcd(len(images), batch), IN_FLIGHT_FRAMES // batch))
    return [_batches(images, batch, i) for i in range(count)]


def measure_in_flight(step, requests: int) -> dict:
    """The in-flight figure, measured after the batch's result was sent: {"in_flight", "in_flight_ips",
    "in_flight_settings"}, the settings saying whether the boxes were those found one at a time; an exception
    becomes the settings' "error", with no figure."""
    try:
        measured, expected = step()
    except Exception as error:
        return {"in_flight": requests, "in_flight_ips": None,
                "in_flight_settings": {"error": f"{type(error).__name__}: {error}"}}
    measured["in_flight_settings"]["boxes"] = same_boxes(expected, measured.pop("found"))
    return measured


def _measure_loop(params: dict, batch: int, iteration, progress) -> list[dict]:
    """Iterate until both the iteration count and the minimum duration are reached; one stage dict each."""
    samples = []
    iters, min_duration = params["iters"], params["min_duration_s"]
    begin = last_report = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - begin
        if len(samples) >= iters and elapsed >= min_duration:
            break
        if len(samples) >= params["max_iters"]:
            break
        samples.append(iteration(_batches(params["images"], batch, len(samples))))
        if time.perf_counter() - last_report > 0.5:
            last_report = time.perf_counter()
            progress("measure", done=len(samples), total=iters, elapsed_s=round(elapsed, 1))
    # the final count too: the throttled reports above left the Run page at '16 of 20' for the rest of the batch
    progress("measure", done=len(samples), total=iters, elapsed_s=round(time.perf_counter() - begin, 1))
    return samples


def measure_batch_ultralytics(runtime_class, params: dict, batch: int, artifact: Path, conn) -> tuple[dict, object]:
    """The same artifact through Ultralytics' predictor (engine/ultralytics_mode.py): boxes, no raw tensor; and,
    as measure_batch, the in-flight step to take once the payload is sent (on the CPU), or None."""
    from engine.measure import peak_memory_mb
    from engine.ultralytics_mode import UltralyticsPipeline

    def progress(stage: str, **extra) -> None:
        conn.send(("progress", {"batch": batch, "stage": stage, **extra}))

    progress("load")
    started = time.perf_counter()
    source = runtime_class.ultralytics_artifact(artifact)
    device = "0" if runtime_class.device == "gpu" else "cpu"  # a GPU runtime's row must not run on the CPU
    pipeline = UltralyticsPipeline(source, params["imgsz"], params["conf"], params["iou"], params["precision"],
                                   device)
    warmup = runtime_class.warmup_calls(params["warmup"])  # the first call also loads the model inside Ultralytics
    progress("warmup", done=0, total=warmup)
    for i in range(warmup):
        pipeline.iteration(_batches(params["images"], batch, i))
        progress("warmup", done=i + 1, total=warmup)
    load_s = time.perf_counter() - started
    samples = _measure_loop(params, batch, lambda paths: pipeline.iteration(paths)[0], progress)
    progress("detections")
    images = params["images"]
    found: dict[str, list] = {}
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        _, detections = pipeline.iteration(chunk + [chunk[-1]] * (batch - len(chunk)))
        for path, dets in zip(chunk, detections):
            found[path] = [d.__dict__ for d in dets]
    payload = {
        "batch": batch, "status": "completed", "samples": samples, "settings": pipeline.settings(),
        "input_shape": None, "load_s": load_s, "model_file": str(source), "detections": found, "raw_diff": None,
        "peak_memory_mb": peak_memory_mb(),
    }
    in_flight = None
    if params.get("in_flight") and runtime_class.device == "cpu":
        in_flight = partial(_in_flight_step_ultralytics, pipeline, params, batch)
    return payload, in_flight


def _in_flight_step_ultralytics(pipeline, params: dict, batch: int) -> tuple[dict, list]:
    """_in_flight_step's twin for the predictor: UltralyticsPipeline.throughput() on decoded batches, and the
    detections one predictor finds in each, one at a time."""
    from engine.pipeline import decode_image

    chunks = _in_flight_chunks(params["images"], batch)
    expected = [pipeline.iteration(chunk)[1] for chunk in chunks]
    batches = [[decode_image(path) for path in chunk] for chunk in chunks]
    return pipeline.throughput(batches, params["in_flight"], IN_FLIGHT_S), expected


def _detections_per_image(images: list[str], batch: int, one_iteration, reference_raw: str | None):
    """Each distinct image once, in batches of the measured size (padded by repetition); with a reference,
    each image's raw output is compared with the reference's as it goes."""
    import numpy as np

    from engine.measure import StageTimer
    from engine.parity import RawDiff

    found: dict[str, list] = {}
    raw_diff = RawDiff() if reference_raw else None
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        padded = chunk + [chunk[-1]] * (batch - len(chunk))
        _, raw, detections = one_iteration(padded, StageTimer())
        for offset, (path, dets) in enumerate(zip(chunk, detections)):
            found[path] = [d.__dict__ for d in dets]
            if raw_diff is not None:
                raw_diff.add(np.load(reference_raw_path(reference_raw, start + offset)), raw[offset])
    return found, raw_diff


def _accuracy(runtime, params: dict, batch: int) -> dict:
    """mAP after timing, with the loaded runtime; a failure here is recorded, the timing result stands."""
    import tempfile

    from engine.accuracy import evaluate

    save_dir = Path(params["log_path"]).with_suffix(".val") if params.get("log_path") else Path(tempfile.mkdtemp())
    try:
        return evaluate(runtime, params["data_yaml"], batch, params["names"], save_dir)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}
