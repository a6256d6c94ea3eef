"""Pipeline modes: what each runtime's bare inference costs next to the two pipelines around it.

One engine run measures every CPU runtime at fp32, 640, batch 1 in both pipeline modes: `lean` (the engine's
own pipeline, its threads) and `ultralytics` (Ultralytics' predictor on the same artifact, its threads, with
rect=False so both see the same square input). The lean results also measure inference with IN_FLIGHT requests
in flight where the runtime offers it (--in-flight). Prints a Markdown table and writes it to
benchmarks/results/pipeline_modes.md.

    .venv/bin/python benchmarks/pipeline_modes.py [--iters 30] [--runtimes pytorch,onnxruntime,...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above

RUNTIMES = "pytorch,torchscript,onnxruntime,openvino,tensorflow,tflite"
IN_FLIGHT = 2  # one request per core here


def run_engine(db: Path, runtimes: str, iters: int, warmup: int) -> tuple[list[str], str]:
    command = [sys.executable, "-m", "engine", "run", "--runtimes", runtimes, "--precisions", "fp32", "--batch", "1",
               "--imgsz", "640", "--modes", "lean,ultralytics", "--iters", str(iters), "--warmup", str(warmup),
               "--in-flight", str(IN_FLIGHT), "--db", str(db), "--json"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"engine run failed:\n{done.stderr[-3000:]}")
    return command, json.loads(done.stdout)["run_id"]


def ratio(numerator, denominator) -> str:
    return f"{numerator / denominator:.2f}" if numerator and denominator else "-"


def ms(value) -> str:
    return f"{value:.1f}" if value == value and value is not None else "-"


def verdict(value) -> str:
    return value if isinstance(value, str) else "unknown (no boxes on either side)"


def table(summary) -> list[str]:
    lines = ["| runtime | bare infer ms | lean end-to-end ms | ultralytics end-to-end ms | lean / bare "
             f"| ultralytics / lean | decode ms | infer % of peak | lean img/s, 1 at a time | infer img/s, "
             f"{IN_FLIGHT} in flight | ultralytics parity |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_key = {(row.runtime, row.mode): row for row in summary.itertuples()}
    for runtime in dict.fromkeys(summary["runtime"]):
        lean, ultra = by_key.get((runtime, "lean")), by_key.get((runtime, "ultralytics"))
        if lean is None or ultra is None or lean.status != "completed" or ultra.status != "completed":
            lines.append(f"| {runtime} | failed: {(lean.error if lean is not None else '') or ultra.error} |"
                         " | | | | | | | | |")
            continue
        lines.append(
            f"| {runtime} | {ms(lean.infer_ms)} | {ms(lean.total_ms)} | {ms(ultra.total_ms)} "
            f"| {ratio(lean.total_ms, lean.infer_ms)} | {ratio(ultra.total_ms, lean.total_ms)} "
            f"| {ms(lean.decode_ms)} | {lean.peak_fraction:.0%} | {ms(lean.throughput_ips)} "
            f"| {ms(lean.in_flight_ips)} | {verdict(ultra.parity_verdict)} |")
    return lines


def headline(summary) -> list[str]:
    done = summary[summary["status"] == "completed"]
    lean, ultra = done[done["mode"] == "lean"], done[done["mode"] == "ultralytics"]
    lines = []
    if not lean.empty and not ultra.empty:
        best_lean, best_ultra = lean.loc[lean["total_ms"].idxmin()], ultra.loc[ultra["total_ms"].idxmin()]
        lines.append(f"- Fastest lean: {best_lean.runtime} {best_lean.total_ms:.1f} ms; fastest ultralytics: "
                     f"{best_ultra.runtime} {best_ultra.total_ms:.1f} ms; ratio "
                     f"{ratio(best_ultra.total_ms, best_lean.total_ms)} (target >= 1.3).")
    torch_lean = lean[lean["runtime"] == "pytorch"]
    torch_ultra = ultra[ultra["runtime"] == "pytorch"]
    if not torch_lean.empty and not torch_ultra.empty:
        a, b = torch_lean.iloc[0], torch_ultra.iloc[0]
        lean_threads = (a.settings and json.loads(a.settings).get("threads")) or a.threads
        ultra_threads = b.settings and json.loads(b.settings).get("torch_threads")
        lines.append(f"- PyTorch lean ({lean_threads} threads, the engine's) {a.total_ms:.1f} ms vs Ultralytics' "
                     f"default PyTorch path ({ultra_threads} thread(s)) {b.total_ms:.1f} ms: "
                     f"{ratio(b.total_ms, a.total_ms)}x (target >= 1.8).")
    if not lean.empty:
        worst = lean.assign(overhead=lean["total_ms"] / lean["infer_ms"]).sort_values("overhead").iloc[-1]
        lines.append(f"- Largest lean end-to-end / bare inference: {worst.runtime} {worst.overhead:.2f} "
                     "(target <= 1.10).")
    return lines


def main() -> None:
    from engine import store
    from engine.machine import fingerprint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=RUNTIMES)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "results.duckdb"
        command, run_id = run_engine(db, args.runtimes, args.iters, args.warmup)
        summary = store.results_summary(db, {"run_id": run_id})
    machine = fingerprint()
    shown = " ".join(part if " " not in part else f"'{part}'" for part in command[1:])
    shown = shown.replace(str(db), "<tmp>.duckdb")
    lines = [
        f"`benchmarks/pipeline_modes.py --iters {args.iters}` on {machine['cpu_model']} "
        f"({machine['physical_cores']} cores), {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
        f"one engine run, {time.time() - started:.0f} s wall: `python {shown}`.",
        "",
        "Medians in ms per image, fp32, 640x640, batch 1. bare infer: the engine's inference stage alone (lean "
        "mode); end-to-end: decoded frame to final boxes (pre + infer + post, plus the predictor's other time "
        "in the ultralytics mode); decode (JPEG read) is the same for both and kept out. The machine is shared "
        "and noisy: compare rows of one run, not across runs. lean img/s: 1000 / lean end-to-end, one request at "
        f"a time; in flight: inference alone with {IN_FLIGHT} requests in flight for 2 s (OpenVINO THROUGHPUT "
        "hint + AsyncInferQueue, ONNX Runtime a session per request on its own thread; '-': not offered).",
        "",
        *table(summary),
        "",
        *headline(summary),
    ]
    publish(lines, "pipeline_modes.md")


if __name__ == "__main__":
    main()
