"""How well each runtime's profile accounts for its measured inference: a real run with `--profile N` on the
runtimes that offer one, then per result the share of the profiled time charged to a module and the profiled
total over the measured inference median (issue targets: at least 95%, and within 25%). Prints a Markdown table
and writes it to docs/results/ (benchmarks/publish.py).

    .venv/bin/python benchmarks/profile_coverage.py [--imgsz 640] [--batch 1] [--iters 30] [--profile 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.publish import publish  # noqa: E402 - after the path line above

RUNTIMES = ("pytorch", "torchscript", "onnxruntime", "openvino")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", default="1")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--profile", type=int, default=20)
    parser.add_argument("--model", default="yolov8n.pt")
    parser.add_argument("--out", default="", help="a file to write the table to, instead of docs/results/")
    args = parser.parse_args()

    from engine import api
    from engine.cli_output import profile_lines
    from engine.machine import fingerprint

    db = str(Path(tempfile.mkdtemp(prefix="profile-coverage-")) / "results.duckdb")
    command = [sys.executable, "-m", "engine", "run", "--db", db, "--model", args.model, "--runtimes",
               ",".join(RUNTIMES), "--imgsz", str(args.imgsz), "--batch", args.batch, "--iters", str(args.iters),
               "--profile", str(args.profile)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the run failed:\n{done.stderr[-3000:]}")
    run_id = api.runs(db)["run_id"].iloc[0]
    lines = profile_lines(api.profile_settings(db, run_id), api.profiles(db, run_id))
    machine = fingerprint()
    rows = []
    for line in lines:
        if line["error"]:
            rows.append(f"| {line['name']} | — | — | — | — | {line['error']} |")
            continue
        infer = line["profiled_ms"] / line["of_inference"]
        within = abs(line["of_inference"] - 1) <= 0.25 and line["mapped_share"] >= 0.95
        rows.append(
            f"| {line['name']} | {line['profiler']} | {line['profiled_ms']:.2f} | {infer:.2f} | "
            f"{line['of_inference']:.0%} | {line['mapped_share']:.1%} | {'yes' if within else 'NO'} |"
        )
    table = [
        f"# Profile coverage ({time.strftime('%Y-%m-%d')}, {machine['cpu_model']}, {machine['logical_cores']} logical "
        "cores)",
        "",
        f"`benchmarks/profile_coverage.py`: `python -m engine run --model {args.model} --imgsz {args.imgsz} --batch "
        f"{args.batch} --iters {args.iters} --profile {args.profile}` on {', '.join(RUNTIMES)} (run {run_id}). "
        "Profiled: the runtime's own profile, ms per call; inference: the run's measured median per call; "
        "targets: within 25% of it, and at least 95% charged to a module.",
        "",
        "| result | profiler | profiled ms | inference median ms | profiled / inference | charged to a module | "
        "within targets |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    publish(table, Path(args.out).resolve() if args.out else "profile_coverage.md")


if __name__ == "__main__":
    main()
