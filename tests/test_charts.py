"""Chart layout rules that screenshots showed to matter."""

import pandas as pd

from dashboard import charts


def history(series: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "status": "completed",
            "run_id": [f"run{i}" for i in range(series)],
            "runtime": [f"rt{i}" for i in range(series)],
            "precision": "fp32",
            "batch": 1,
            "imgsz": 640,
            "machine_label": "box",
            "infer_ms": 10.0,
            "started_at": pd.Timestamp("2026-11-25", tz="UTC"),
        }
    )


def test_a_long_legend_goes_below_the_plot_instead_of_over_the_title():
    crowded = charts.history_lines(history(12), "infer_ms", ["runtime"])
    assert crowded.layout.legend.yref == "container" and crowded.layout.legend.y == 0 and crowded.layout.height > 420
    few = charts.history_lines(history(2), "infer_ms", ["runtime"])
    assert few.layout.legend.y == 1.0 and few.layout.height == 420


def test_one_moment_of_history_gets_an_axis_of_hours_not_fractions_of_a_second():
    single = charts.history_lines(history(3), "infer_ms", ["runtime"])
    start, end = (pd.Timestamp(bound) for bound in single.layout.xaxis.range)
    assert end - start == pd.Timedelta(hours=2)
    spread = history(3).assign(started_at=pd.date_range("2026-11-20", periods=3, freq="D", tz="UTC"))
    assert charts.history_lines(spread, "infer_ms", ["runtime"]).layout.xaxis.range is None, "Plotly's own range"


def test_mode_costs_pair_each_configuration_run_in_both_modes():
    rows = pd.DataFrame(
        {
            "status": ["completed"] * 5 + ["failed"],
            "runtime": ["openvino", "openvino", "pytorch", "pytorch", "onnxruntime", "onnxruntime"],
            "precision": "fp32",
            "batch": 1,
            "mode": ["lean", "ultralytics", "lean", "ultralytics", "lean", "ultralytics"],
            "total_ms": [10.0, 12.0, 30.0, 66.0, 25.0, None],
            "peak_memory_mb": [190.0, 850.0, 650.0, 800.0, 195.0, None],
        }
    )
    costs = charts.mode_costs(rows)
    assert costs["runtime"].tolist() == ["pytorch", "openvino"], "onnxruntime's ultralytics result failed"
    assert costs[["lean_ms", "ultralytics_ms", "added_ms", "ratio"]].iloc[0].tolist() == [30.0, 66.0, 36.0, 2.2]
    assert costs["added_mb"].tolist() == [150.0, 660.0], "the predictor's memory: it imports PyTorch"
    assert charts.mode_costs(rows.drop(columns=["peak_memory_mb"]))["added_mb"].isna().all(), "before schema v8"
    assert charts.mode_costs(rows[rows["mode"] == "lean"]).empty


def test_raw_output_differences_get_one_labelled_tick_per_decade():
    rows = pd.DataFrame(
        {
            "status": "completed",
            "runtime": ["openvino", "onnxruntime"],
            "precision": "fp32",
            "batch": 1,
            "imgsz": 640,
            "threads": 2,
            "mode": "lean",
            "total_ms": [23.3, 26.9],
            "parity_raw_mean_abs": [3.2e-9, 5.1e-8],
            "parity_verdict": "pass",
        }
    )
    axis = charts.speed_vs_agreement(rows).layout.yaxis
    assert axis.type == "log" and axis.dtick == 1 and axis.exponentformat == "power"
    low, high = axis.range
    assert -9.5 < low < -9 and -7 < high < -6.5, "whole decades around 3e-9 .. 5e-8, and room for a label"


def test_fastest_passes_over_failed_parity_but_not_drift():
    rows = pd.DataFrame(
        {
            "status": ["completed", "completed", "completed", "failed"],
            "runtime": ["openvino", "tflite", "onnxruntime", "tensorflow"],
            "precision": ["int8", "int8", "fp32", "fp32"],
            "total_ms": [5.0, 7.0, 20.0, None],
            "parity_verdict": ["fail", "drift", "pass", None],
        }
    )
    best, passed_over = charts.fastest(rows)
    assert best["runtime"] == "tflite", "drift works, not identically: still a candidate"
    assert passed_over["runtime"].tolist() == ["openvino"]
    every_one_failed = rows.assign(parity_verdict="fail")
    best, passed_over = charts.fastest(every_one_failed)
    assert best["runtime"] == "openvino" and passed_over.empty
    unknown = rows.assign(parity_verdict=None)
    assert charts.fastest(unknown)[0]["runtime"] == "openvino", "no verdict (no reference) is no failure"


def looks(figure) -> list[tuple]:
    return [
        (trace.line.color, trace.line.dash, trace.marker.symbol)
        for trace in figure.data
        if trace.showlegend is not False
    ]


def test_no_two_lines_look_alike_past_the_palette():
    """History split by runtime, precision, batch and mode drew 36 lines in the palette's 11 colours (screenshot)."""
    many = looks(charts.history_lines(history(36), "infer_ms", ["runtime"]))
    assert len(many) == len(set(many)) == 36
    few = looks(charts.history_lines(history(5), "infer_ms", ["runtime"]))
    assert {(dash, symbol) for _, dash, symbol in few} == {("solid", "circle")} and len({c for c, *_ in few}) == 5
    rows = pd.DataFrame(
        [
            {
                "status": "completed",
                "runtime": f"rt{i}",
                "precision": "fp32",
                "mode": "lean",
                "imgsz": 640,
                "threads": 2,
                "batch": batch,
                "total_ms": 10.0,
                "infer_ms": 9.0,
                "throughput_ips": 100.0,
            }
            for i in range(14)
            for batch in (1, 4)
        ]
    )
    scaling = charts.batch_scaling(rows)
    assert len(set(looks(scaling))) == 14
    assert all(trace.line.color for trace in scaling.data), "both panels colour their lines"


def test_library_steps_are_the_runs_whose_versions_differ_from_their_machines_run_before():
    from engine.api import library_steps

    runs = pd.DataFrame(
        {
            "run_id": ["a1", "b1", "a2", "b2", "a3"],
            "machine_id": ["A", "B", "A", "B", "A"],
            "machine_label": ["lab", "ci", "lab", "ci", "lab"],
            "started_at": pd.date_range("2026-11-20", periods=5, freq="D", tz="UTC"),
            "libraries": [
                '{"openvino": "2026.3.0", "numpy": "2.1.3"}',
                '{"openvino": "2026.4.1"}',
                '{"openvino": "2026.3.0", "numpy": "2.1.3"}',
                '{"openvino": "2026.4.1"}',
                '{"openvino": "2026.4.1", "numpy": "2.1.3", "onnx": "1.22.0"}',
            ],
        }
    )
    steps = library_steps(runs)  # machine B's first run is no step, though its versions differ from A's
    assert steps[["run_id", "machine_label"]].values.tolist() == [["a3", "lab"]]
    assert steps["changes"].iloc[0] == ["openvino 2026.3.0 → 2026.4.1", "onnx absent → 1.22.0"]
    assert library_steps(runs.iloc[:0]).empty
    unrecorded = runs.assign(libraries=["{}", None, '{"openvino": "2026.3.0"}', "{}", "{}"])
    assert library_steps(unrecorded).empty, "a run that recorded no versions is no step, nor are the runs after it"


def test_history_marks_library_steps_with_a_label_each_unless_crowded():
    spread = history(3).assign(machine_id="A", started_at=pd.date_range("2026-11-20", periods=3, freq="D", tz="UTC"))
    at = pd.to_datetime(["2026-11-21 00:00", "2026-11-21 02:00", "2026-11-22 00:00"], utc=True)
    steps = pd.DataFrame(
        {
            "started_at": at,
            "run_id": ["run1", "run1b", "run2"],
            "machine_label": "box",
            "changes": [
                ["openvino 2026.3.0 → 2026.4.1"],
                ["numpy 2.1.3 → 2.2.0"],
                ["onnxruntime 1.31.0 → 1.32.0", "numpy 2.2.0 → 2.3.0"],
            ],
        }
    )
    figure = charts.history_lines(spread, "infer_ms", ["runtime"], steps)
    assert [shape.line.dash for shape in figure.layout.shapes] == ["dot"] * 3, "a dotted line at each step"
    (marks,) = [trace for trace in figure.data if trace.name == "library versions changed"]
    assert list(marks.text) == ["openvino 2026.4.1", "", "onnxruntime 1.32.0 +1"], "two hours after a label: none"
    assert marks.hovertext[2] == "onnxruntime 1.31.0 → 1.32.0<br>numpy 2.2.0 → 2.3.0<br>run run2"
    assert not [t for t in charts.history_lines(spread, "infer_ms", ["runtime"]).data if t.name.startswith("library")]
