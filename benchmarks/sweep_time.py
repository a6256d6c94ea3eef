"""Wall time of the default sweep, cold (empty export cache) and warm (every export cached).

The default matrix: six CPU runtimes, every precision each offers, batch 1/2/4/8, 640x640, iteration
counts set by a minimum duration. Prints a Markdown table and writes benchmarks/results/sweep_time.md.

    .venv/bin/python benchmarks/sweep_time.py [--min-duration 1.0] [--batch 1,2,4,8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNTIMES = "pytorch,torchscript,onnxruntime,openvino,tensorflow,tflite"


def sweep(db: Path, cache: Path, args) -> tuple[float, dict]:
    env = {**os.environ, "YOLO_BENCH_CACHE": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--runtimes", RUNTIMES, "--precisions", "all", "--batch", args.batch,
         "--iters", str(args.iters), "--min-duration", str(args.min_duration), "--warmup", "2", "--db", str(db),
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", default="1,2,4,8")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--min-duration", type=float, default=1.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep_time.md"))
    args = parser.parse_args()

    from engine.machine import fingerprint

    work = Path(tempfile.mkdtemp(prefix="sweep-"))
    cache = work / "cache"
    cold_s, cold = sweep(work / "results.duckdb", cache, args)
    warm_s, warm = sweep(work / "results.duckdb", cache, args)
    machine = fingerprint()

    def row(name: str, seconds: float, document: dict, target_min: float) -> str:
        results = document["results"]
        completed = sum(r["status"] == "completed" for r in results)
        verdict = "meets" if seconds <= target_min * 60 else "misses"
        return (f"| {name} | {seconds / 60:.1f} min ({seconds:.0f} s) | {completed}/{len(results)} | "
                f"<= {target_min:g} min: {verdict} |")

    lines = [
        f"# Sweep time ({time.strftime('%Y-%m-%d')}, {machine['cpu_model']}, {machine['physical_cores']} cores)",
        "",
        f"`python -m engine run --runtimes {RUNTIMES} --precisions all --batch {args.batch} --iters {args.iters} "
        f"--min-duration {args.min_duration}` (640x640), once with an empty export cache, then again.",
        "",
        "| sweep | wall time | results completed | target |",
        "|---|---|---|---|",
        row("cold", cold_s, cold, 10),
        row("warm", warm_s, warm, 4),
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
