"""Chart layout rules that screenshots showed to matter."""

import pandas as pd

from dashboard import charts


def history(series: int) -> pd.DataFrame:
    return pd.DataFrame({
        "status": "completed", "run_id": [f"run{i}" for i in range(series)], "runtime": [f"rt{i}" for i in range(series)],
        "precision": "fp32", "batch": 1, "imgsz": 640, "machine_label": "box", "infer_ms": 10.0,
        "started_at": pd.Timestamp("2026-11-25", tz="UTC"),
    })


def test_a_long_legend_goes_below_the_plot_instead_of_over_the_title():
    crowded = charts.history_lines(history(12), "infer_ms", ["runtime"])
    assert crowded.layout.legend.y < 0 and crowded.layout.height > 420
    few = charts.history_lines(history(2), "infer_ms", ["runtime"])
    assert few.layout.legend.y == 1.0 and few.layout.height == 420
