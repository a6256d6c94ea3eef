"""Rows that tests store by hand: a run's row with plausible values, changed where a test needs it."""

from engine import store


def run_row(run_id: str = "run1", **changes) -> dict:
    """A run's row as store.insert_run takes it (the engine's Recorder.insert_run writes the same keys)."""
    row = {
        "run_id": run_id, "started_at": store.now(), "machine_id": "m1", "machine_label": "box", "model": "m",
        "model_sha256": "abc", "model_source": "test", "weights_trained": False, "imgsz": 160, "images": [],
        "config": {}, "libraries": {}, "pid": 1,
    }  # fmt: skip
    return {**row, **changes}


def result_record(result_id: str = "r1", run_id: str = "run1", **changes):
    """A completed ONNX Runtime result of run_id as the store writes it, changed where a test needs it."""
    from dataclasses import replace

    from engine.records import ResultRecord

    record = ResultRecord(result_id=result_id, run_id=run_id, runtime="onnxruntime", precision="fp32", batch=1,
                          status="completed", imgsz=160, threads=2)  # fmt: skip
    return replace(record, **changes)


def flat_stats(value_ms: float, n: int):
    """Statistics of n samples all equal to value_ms; the median's 95% interval only from 6 samples on."""
    from engine.measure import MIN_CI_SAMPLES, Stats

    ci = value_ms if n >= MIN_CI_SAMPLES else None
    return Stats(n=n, mean=value_ms, median=value_ms, p90=value_ms, p99=value_ms, min=value_ms, max=value_ms,
                 stdev=0.0, ci_low=ci, ci_high=ci, cv=0.0)  # fmt: skip


def plant_run(db, run_id: str, started_at, results: list[dict], machine_id: str = "m1", **run_changes) -> None:
    """A completed run with the given results, each a dict of ResultRecord fields plus total_ms and infer_ms
    (stored as flat statistics of `n` samples, 10 unless given; total_p99_ms and total_ci, a (low, high) pair, change
    the total's) and verdict (its parity row, if given)."""
    from dataclasses import replace

    from engine.records import ParityRow

    store.insert_run(db, run_row(run_id, started_at=started_at, machine_id=machine_id, **run_changes))
    for number, result in enumerate(results):
        result = dict(result)
        total, infer, n = result.pop("total_ms", 10.0), result.pop("infer_ms", 8.0), result.pop("n", 10)
        verdict = result.pop("verdict", None)
        total_stats = flat_stats(total, n)
        if "total_p99_ms" in result:
            total_stats = replace(total_stats, p99=result.pop("total_p99_ms"))
        if "total_ci" in result:
            low, high = result.pop("total_ci")
            total_stats = replace(total_stats, ci_low=low, ci_high=high)
        record = result_record(f"{run_id}-{number}", run_id, **result)
        stats = {"total": total_stats, "infer": flat_stats(infer, n)} if record.status == "completed" else {}
        parity = ParityRow(verdict=verdict, reason=f"planted {verdict}") if verdict else None
        store.insert_result(db, replace(record, stats=stats, parity=parity))
    store.finish_run(db, run_id, "completed")
