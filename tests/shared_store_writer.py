"""One writer of the multi-writer test: `python -m tests.shared_store_writer ADDRESS NAME RUNS`.

It writes through the engine's own write path (engine/store.py), as a benchmark on one machine of a fleet does:
create the schema if no one has, record the machine, then append runs, each with three results and their
samples, stats and detections, and finish them. It prints the run ids it wrote, as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from engine import store
from engine.machine import fingerprint
from engine.measure import Stats
from engine.records import DetectionRow, ResultRecord, StageSample

RESULTS_PER_RUN = 3
SAMPLES_PER_RESULT = 20
DETECTIONS_PER_RESULT = 4


def write_run(db: str, writer: str, machine: dict, index: int) -> str:
    run_id = f"{writer}-{index:03d}-{uuid.uuid4().hex[:8]}"
    store.insert_run(
        db,
        {
            "run_id": run_id,
            "started_at": store.now(),
            "machine_id": machine["machine_id"],
            "machine_label": machine["label"],
            "model": "yolov8n.yaml",
            "model_sha256": "test",
            "model_source": "test",
            "weights_trained": False,
            "imgsz": 160,
            "images": ["00-bus.jpg"],
            "config": {"host": writer},
            "libraries": {},
            "pid": os.getpid(),
            "model_gflops": 0.55,
        },
    )
    for k in range(RESULTS_PER_RUN):
        result_id = f"{run_id}-r{k}"
        samples = tuple(
            StageSample(decode=1_000, pre=2_000, infer=3_000_000 + i, post=4_000) for i in range(SAMPLES_PER_RESULT)
        )
        stats = {
            "infer": Stats(
                n=SAMPLES_PER_RESULT,
                mean=3.0,
                median=3.0,
                p90=3.0,
                p99=3.0,
                min=3.0,
                max=3.0,
                stdev=0.0,
                ci_low=3.0,
                ci_high=3.0,
                cv=0.0,
            )
        }
        detections = tuple(
            DetectionRow(
                image="00-bus.jpg",
                det_index=d,
                class_id=0,
                class_name="person",
                score=0.9,
                x1=1.0,
                y1=2.0,
                x2=3.0,
                y2=4.0,
            )
            for d in range(DETECTIONS_PER_RESULT)
        )
        store.insert_result(
            db,
            ResultRecord(
                result_id=result_id,
                run_id=run_id,
                runtime=f"runtime{k}",
                precision="fp32",
                batch=1,
                status="ok",
                imgsz=160,
                threads=1,
                samples=samples,
                stats=stats,
                detections=detections,
            ),
        )
    store.finish_run(db, run_id, "completed")
    return run_id


def write_runs(db: str, writer: str, runs: int) -> list[str]:
    store.ensure_schema(db)  # every writer races to create it: one does, the others find it made
    machine = {**fingerprint(), "label": writer}
    store.upsert_machine(db, machine)  # the same hardware for all: they race on the machine's row too
    return [write_run(db, writer, machine, i) for i in range(runs)]


if __name__ == "__main__":
    print(json.dumps(write_runs(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
