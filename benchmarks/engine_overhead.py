"""Engine overhead: the engine's inference median next to the same model called bare in a fresh process.

For ONNX Runtime and OpenVINO (fp32, batch 1, 640), rounds alternate engine and bare measurements so
drift hits both alike. Prints a Markdown table and writes it to docs/results/ (benchmarks/publish.py).

    .venv/bin/python benchmarks/engine_overhead.py [--rounds 3] [--iters 60]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.publish import publish  # noqa: E402 - after the path line above

BARE = r"""
import json, sys, time
import numpy as np
runtime, model_file, input_file, threads, iters, warmup = sys.argv[1:7]
threads, iters, warmup = int(threads), int(iters), int(warmup)
batch = np.load(input_file)
if runtime == "onnxruntime":
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model_file, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    call = lambda: session.run(None, {name: batch})
else:  # the engine folds preprocessing into the model and feeds it uint8 NHWC: so does the bare call
    import openvino as ov
    from engine.runtimes.openvino import fold_preprocessing
    core = ov.Core()
    compiled = core.compile_model(fold_preprocessing(core.read_model(model_file)), "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    call = lambda: request.infer({0: batch})
for _ in range(warmup):
    call()
samples = []
for _ in range(iters):
    start = time.perf_counter_ns()
    call()
    samples.append(time.perf_counter_ns() - start)
print(json.dumps(samples))
"""


def engine_round(db: Path, iters: int, warmup: int) -> dict[str, dict]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "--runtimes",
            "onnxruntime,openvino",
            "--batch",
            "1",
            "--iters",
            str(iters),
            "--warmup",
            str(warmup),
            "--db",
            str(db),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(done.stdout)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        files = dict(
            con.execute("SELECT runtime, model_file FROM results WHERE run_id = ?", [document["run_id"]]).fetchall()
        )
    return {
        r["runtime"]: {
            "infer_ms": r["infer_ms"],
            "threads": r["settings"]["threads"],
            "model_file": files[r["runtime"]],
        }
        for r in document["results"]
    }


def bare_round(runtime: str, model_file: str, input_file: Path, threads: int, iters: int, warmup: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BARE, runtime, model_file, str(input_file), str(threads), str(iters), str(warmup)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return statistics.median(json.loads(done.stdout)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--out", default="", help="a file to write the table to, instead of docs/results/")
    args = parser.parse_args()

    import numpy as np

    from engine.machine import fingerprint
    from engine.paths import sample_images
    from engine.pipeline import decode_image, letterbox_batch, preprocess

    work = Path(tempfile.mkdtemp(prefix="overhead-"))
    db = work / "results.duckdb"
    input_file = work / "input.npy"
    frame = decode_image(sample_images()[0])
    tensor, _ = preprocess([frame], 640, "nchw")
    np.save(input_file, tensor)
    letterboxed, _ = letterbox_batch([frame], 640)  # what the engine hands OpenVINO's folded model
    np.save(work / "input_uint8_nhwc.npy", letterboxed)
    inputs = {"onnxruntime": input_file, "openvino": work / "input_uint8_nhwc.npy"}

    engine_ms: dict[str, list[float]] = {"onnxruntime": [], "openvino": []}
    bare_ms: dict[str, list[float]] = {"onnxruntime": [], "openvino": []}
    for round_index in range(args.rounds):
        measured = engine_round(db, args.iters, args.warmup)
        for runtime, figures in measured.items():
            engine_ms[runtime].append(figures["infer_ms"])
            bare_ms[runtime].append(
                bare_round(runtime, figures["model_file"], inputs[runtime], figures["threads"], args.iters, args.warmup)
            )
        print(
            f"round {round_index + 1}/{args.rounds}: "
            + ", ".join(f"{r} engine {engine_ms[r][-1]:.2f} / bare {bare_ms[r][-1]:.2f} ms" for r in engine_ms),
            file=sys.stderr,
        )

    machine = fingerprint()
    lines = [
        f"# Engine overhead ({time.strftime('%Y-%m-%d')}, {machine['cpu_model']}, {machine['physical_cores']} cores, "
        f"{platform.system()})",
        "",
        f"YOLOv8n (untrained weights where offline), 640x640, batch 1, fp32, {args.rounds} alternating rounds of "
        f"{args.iters} iterations after {args.warmup} warm-up. Each figure is the median over rounds of each "
        "round's median inference time. OpenVINO's bare call compiles the same model with the engine's "
        "preprocessing folded in and takes the same uint8 NHWC input.",
        "",
        "| runtime | engine infer ms | bare infer ms | engine / bare |",
        "|---|---|---|---|",
    ]
    for runtime in engine_ms:
        engine_median = statistics.median(engine_ms[runtime])
        bare_median = statistics.median(bare_ms[runtime])
        lines.append(f"| {runtime} | {engine_median:.2f} | {bare_median:.2f} | {engine_median / bare_median:.3f} |")
    publish(lines, Path(args.out).resolve() if args.out else "engine_overhead.md")


if __name__ == "__main__":
    main()
