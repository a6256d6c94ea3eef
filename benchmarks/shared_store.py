"""Shared store reads as small files pile up, and after `compact`: a real PostgreSQL (started here, as the tests
do) holds the DuckLake catalog; one writer appends runs through the engine's write path (tests/shared_store_writer.py).

    python benchmarks/shared_store.py [--runs 100]

Prints and writes to docs/results/ (benchmarks/publish.py): data files, and the median of 5 results_summary reads,
before and after compacting.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.publish import publish  # noqa: E402 - after the path line above


def read_s(db: str) -> float:
    from engine import store

    times = []
    for _ in range(5):
        started = time.perf_counter()
        store.results_summary(db)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()

    from engine import database, store
    from engine.machine import fingerprint
    from tests import postgres_server, shared_store_writer

    server = postgres_server.start()
    try:
        server.create_database("bench")
        db = server.address("bench", Path(tempfile.mkdtemp(prefix="shared-store-")) / "data")
        started = time.perf_counter()
        shared_store_writer.write_runs(db, "writer", args.runs)
        write_s = time.perf_counter() - started
        before_read = read_s(db)
        started = time.perf_counter()
        before_files, after_files = store.compact_shared(db)
        compact_s = time.perf_counter() - started
        after_read = read_s(db)
        database.forget(db)
    finally:
        server.stop()

    machine = fingerprint()
    per_run = shared_store_writer.RESULTS_PER_RUN
    publish(
        [
            f"# Shared store ({time.strftime('%Y-%m-%d %H:%M')}, {machine['cpu_model']}, "
            f"{machine['physical_cores']} cores)",
            "",
            f"`benchmarks/shared_store.py --runs {args.runs}`: one writer appended {args.runs} runs of {per_run} "
            "results "
            f"(with samples, stats and detections) to a DuckLake store in {write_s:.1f} s; PostgreSQL 127.0.0.1.",
            "",
            "| state | data files | results_summary read, median of 5 (s) |",
            "|---|---|---|",
            f"| as written | {before_files:,} | {before_read:.3f} |",
            f"| after `compact` ({compact_s:.1f} s) | {after_files:,} | {after_read:.3f} |",
        ],
        "shared_store.md",
    )


if __name__ == "__main__":
    main()
