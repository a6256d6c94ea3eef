"""Wall time of the default sweep, cold (empty export cache) and warm (every export cached).

The default matrix: six CPU runtimes, every precision each offers, batch 1/2/4/8, 640x640, iteration
counts set by a minimum duration. Prints a Markdown table and writes it to docs/results/.
The load average at each sweep's start goes into the table: on a shared 2-core machine it moves the result.

    .venv/bin/python benchmarks/sweep_time.py [--min-duration 1.0] [--iters 6] [--batch 1,2,4,8]
    .venv/bin/python benchmarks/sweep_time.py --warm-cache DIR   # warm only, on a cache a cold sweep filled
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

from benchmarks.publish import publish  # noqa: E402 - after the path line above

RUNTIMES = "pytorch,torchscript,onnxruntime,openvino,tensorflow,tflite"


def sweep(db: Path, cache: Path, args) -> dict:
    env = {**os.environ, "YOLO_BENCH_CACHE": str(cache)}
    load = os.getloadavg()[0]
    print(f"sweep starts at load average {load:.2f}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "--runtimes",
            RUNTIMES,
            "--precisions",
            "all",
            "--batch",
            args.batch,
            "--iters",
            str(args.iters),
            "--min-duration",
            str(args.min_duration),
            "--warmup",
            "2",
            "--db",
            str(db),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if not done.stdout.strip():
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    from engine import store

    document = json.loads(done.stdout)
    summary = store.results_summary(str(db), {"run_id": document["run_id"]})
    with store.connect(str(db), read_only=True) as con:  # the export time of each result (its run's JSON has none)
        export_s = con.execute(
            "SELECT coalesce(sum(export_s), 0) FROM results WHERE run_id = ?", [document["run_id"]]
        ).fetchone()[0]
    return {"seconds": seconds, "load": load, "document": document, "summary": summary, "export_s": export_s}


def row(name: str, measured: dict, target_min: float) -> str:
    seconds, summary = measured["seconds"], measured["summary"]
    completed = summary[summary["status"] == "completed"]
    verdict = "meets" if seconds <= target_min * 60 else f"misses by {seconds / 60 - target_min:.1f} min"
    return (
        f"| {name} | {seconds / 60:.1f} min ({seconds:.0f} s) | {len(completed)}/{len(summary)} | "
        f"{int(completed['stable'].fillna(False).sum())} | {measured['export_s']:.0f} s | {measured['load']:.2f} | "
        f"<= {target_min:g} min: {verdict} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,2,4,8")
    parser.add_argument("--iters", type=int, default=6, help="at least; 6 is the fewest giving the median a 95%% CI")
    parser.add_argument("--min-duration", type=float, default=1.0)
    parser.add_argument("--warm-cache", default="", help="skip the cold sweep: a cache folder a cold sweep filled")
    parser.add_argument(
        "--out", default="sweep_time.md", help="its section in docs/results/<date>-<machine>.md, or an absolute path"
    )
    args = parser.parse_args()

    from engine.machine import fingerprint

    work = Path(tempfile.mkdtemp(prefix="sweep-"))
    rows = []
    if args.warm_cache:
        cache = Path(args.warm_cache)
    else:
        cache = work / "cache"
        rows.append(row("cold", sweep(work / "results.duckdb", cache, args), 10))
    rows.append(row("warm", sweep(work / "results.duckdb", cache, args), 4))
    machine = fingerprint()
    publish(
        [
            f"Sweep time ({time.strftime('%Y-%m-%d %H:%M')}, {machine['cpu_model']}, "
            f"{machine['physical_cores']} cores): "
            f"`python -m engine run --runtimes {RUNTIMES} --precisions all --batch {args.batch} --iters {args.iters} "
            f"--min-duration {args.min_duration} --warmup 2` (640x640), "
            + (
                "on an export cache a cold sweep filled."
                if args.warm_cache
                else "once with an empty export cache (cold), then again (warm)."
            ),
            "",
            "| sweep | wall time | results completed | stable (inference cv <= 10%) | exports | load average at start "
            "| target |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ],
        args.out,
    )
    print(f"cache: {cache}", file=sys.stderr)


if __name__ == "__main__":
    main()
