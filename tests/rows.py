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
