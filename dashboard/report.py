"""One self-contained HTML file per run or selection: charts with plotly.js inlined, images as data: URIs,
settings and machine. It opens offline, for people without the dashboard."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd
from plotly.offline import get_plotlyjs

from dashboard import charts
from dashboard.images import image_index, in_run_order, jpeg_data_uri
from engine.api import json_column

REPORT_IMAGES = 6  # images of a run shown in its report, each through every runtime

TABLE_COLUMNS = {
    "runtime": "runtime",
    "precision": "precision",
    "batch": "batch",
    "mode": "mode",
    "pre_ms": "pre ms",
    "infer_ms": "infer ms",
    "post_ms": "post ms",
    "total_ms": "total ms",
    "infer_p99_ms": "infer p99 ms",
    "throughput_ips": "images/s",
    "in_flight_ips": "images/s in flight",
    "in_flight": "requests in flight",
    "peak_memory_mb": "peak MB",
    "model_mb": "model MB",
    "iterations": "iterations",
    "stability": "stability",
    "parity_verdict": "parity",
    "status": "status",
    "error": "error",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #1f2328; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } .muted { color: #59636e; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; padding: .6rem 1rem; border-radius: 6px; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .9rem; }
th, td { border-bottom: 1px solid #d1d9e0; padding: .3rem .6rem; text-align: left; }
.images { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure img { width: 100%; border: 1px solid #d1d9e0; } figcaption { font-size: .85rem; }
pre { background: #f6f8fa; padding: 1rem; overflow-x: auto; font-size: .8rem; }
.wide { overflow-x: auto; }
"""


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return "" if value is None or value is pd.NA else str(value)


def _formatted(frame: pd.DataFrame, formats: dict[str, str]) -> pd.DataFrame:
    """Columns given as text the way the dashboard prints them; other floats get _cell's two decimals."""
    return frame.assign(
        **{
            column: [form.format(value) if pd.notna(value) else "" for value in frame[column]]
            for column, form in formats.items()
            if column in frame
        }
    )


def _table(frame: pd.DataFrame) -> str:
    return frame.map(_cell).to_html(index=False, border=0)


# only when some result has them, as on the dashboard
OPTIONAL_COLUMNS = ("in_flight_ips", "in_flight", "peak_memory_mb", "model_mb", "error")
FORMATS = {"throughput_ips": "{:.1f}", "in_flight_ips": "{:.1f}", "peak_memory_mb": "{:.0f}", "model_mb": "{:.1f}"}


def _results_table(results: pd.DataFrame, order: list[str]) -> str:
    """Fastest first within `order`'s groups, failed results last, as the Overview lists them; wider than the
    page, it scrolls inside it."""
    results = results.assign(stability=charts.stability(results))  # words, as on the dashboard, not True/False
    columns = [
        column
        for column in TABLE_COLUMNS
        if column in results and (column not in OPTIONAL_COLUMNS or results[column].notna().any())
    ]
    shown = _formatted(results.sort_values([*order, "total_ms"], na_position="last")[columns], FORMATS)
    return f'<div class="wide">{_table(shown.rename(columns=TABLE_COLUMNS))}</div>'


def _mode_costs(results: pd.DataFrame) -> list[tuple[str, str]]:
    """The section on what Ultralytics' predictor adds, where results ran in both pipeline modes."""
    costs = charts.mode_costs(results)
    if costs.empty:
        return []
    if costs["added_mb"].isna().all():  # results from before peak memory was measured
        costs = costs.drop(columns=["added_mb"])
    costs = _formatted(costs, {"added_ms": "{:+.2f}", "ratio": "{:.2f}x", "added_mb": "{:+.0f}"})  # as on the Overview
    costs = costs.rename(
        columns={
            "lean_ms": "lean ms",
            "ultralytics_ms": "ultralytics ms",
            "added_ms": "added ms",
            "ratio": "ultralytics / lean",
            "added_mb": "added peak MB",
        }
    )
    return [("What Ultralytics' predictor adds (end-to-end medians per image)", _table(costs))]


def _charts(results: pd.DataFrame, iterations: pd.DataFrame | None = None) -> list[str]:
    if charts.completed(results).empty:
        return ["<p>No result completed, so there is nothing to chart.</p>"]
    figures = [charts.stage_bars(results)]
    spread = charts.iteration_spread(results, iterations) if iterations is not None else None
    if spread is not None:  # one run's report: its every iteration, as on the Overview
        figures.append(spread)
    if results["batch"].nunique() > 1:
        figures.append(charts.batch_scaling(results))
    if results["run_id"].nunique() > 1:
        figures.append(charts.history_lines(results, "infer_ms", ["runtime", "precision", "batch"]))
    if results["machine_id"].nunique() > 1:
        figures.append(charts.machines_bars(results, "infer_ms"))
    return [figure.to_html(full_html=False, include_plotlyjs=False) for figure in figures]


def _weights_note(results: pd.DataFrame) -> str:
    if (results["weights_trained"] == False).any():  # noqa: E712 - NULL (unknown) must not count
        return (
            '<p class="warning">Measured with <b>untrained weights</b> (random weights of the same architecture):'
            " timings are representative, detections are not.</p>"
        )
    return ""


def _page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    body = "\n".join(f"<h2>{html.escape(heading)}</h2>\n{content}" for heading, content in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="muted">{html.escape(subtitle)}</p>{body}</body></html>'
    )


def _images(images: pd.DataFrame) -> str:
    """The first REPORT_IMAGES images of the run, each through every runtime: a run over a folder of 200 photos
    would otherwise inline 200 pictures per runtime (25 MB each)."""
    annotated = images.dropna(subset=["annotated_path"])
    keys = in_run_order(annotated["image"])
    kept = annotated[annotated["image"].isin(keys[:REPORT_IMAGES])].assign(order=lambda f: f["image"].map(image_index))
    figures = []
    for row in kept.sort_values(["order", "runtime", "precision"]).itertuples():
        if not Path(row.annotated_path).is_file():
            continue
        caption = f"{row.image}: {row.runtime} {row.precision} batch {row.batch}, {row.detections} detections"
        figures.append(
            f'<figure><img src="{jpeg_data_uri(row.annotated_path)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if not figures:
        return "<p>No annotated images were saved.</p>"
    left_out = (
        (
            f"<p class=\"muted\">The first {REPORT_IMAGES} of the run's {len(keys)} images; the dashboard's "
            "Detections page shows every one.</p>"
        )
        if len(keys) > REPORT_IMAGES
        else ""
    )
    return f'{left_out}<div class="images">{"".join(figures)}</div>'


def _fastest(results: pd.DataFrame) -> pd.DataFrame:
    """Rows for the run's table: the fastest result whose parity did not fail, faster ones that failed, and the
    smallest model and least memory among those that did not fail."""
    if charts.completed(results).empty:
        return pd.DataFrame(columns=["", " "])
    best, passed_over = charts.fastest(results)
    names = charts.variant_batch(results)  # with the mode where the run mixes modes
    verdict = f", parity {best['parity_verdict']}" if isinstance(best["parity_verdict"], str) else ""
    rows = [("fastest", f"{names[best.name]}: {best['total_ms']:.2f} ms per image end to end{verdict}")]
    rows += [
        ("faster, failed parity", f"{names[index]}: {row.total_ms:.2f} ms, {row.parity_reason}")
        for index, row in zip(passed_over.index, passed_over.itertuples())
    ]
    rows += [(what, f"{name}: {value}") for what, name, value in charts.leanest(results, names)]  # as the Overview
    return pd.DataFrame(rows, columns=["", " "])


def run_report(
    run: pd.Series,
    machine: pd.Series | None,
    results: pd.DataFrame,
    images: pd.DataFrame,
    iterations: pd.DataFrame | None = None,
) -> str:
    """A whole run: results, charts (with each measured iteration when given), annotated images, the settings it
    ran with and the machine."""
    config, libraries = json_column(run["config"]), json_column(run["libraries"])
    overview = pd.DataFrame(
        {
            "": ["run", "status", "started", "model", "model source", "image size", "machine"],
            " ": [
                run["run_id"],
                run["status"],
                f"{run['started_at']:%Y-%m-%d %H:%M UTC}",
                run["model"],
                run["model_source"],
                run["imgsz"],
                run["machine_label"],
            ],
        }
    )
    overview = pd.concat([overview, _fastest(results)], ignore_index=True)
    sections = [
        ("Run", _weights_note(results) + _table(overview)),
        ("Results (medians per image, fastest first)", _results_table(results, [])),
        *_mode_costs(results),
        ("Charts", "\n".join(_charts(results, iterations))),
        ("Detections", _images(images)),
    ]
    if machine is not None:
        fingerprint = {
            key: machine[key]
            for key in (
                "label",
                "cpu_model",
                "cpu_id",
                "arch",
                "physical_cores",
                "logical_cores",
                "ram_gb",
                "os",
                "python",
            )
        }
        fingerprint["isa_flags"] = ", ".join(list(machine["isa_flags"]) if machine["isa_flags"] is not None else [])
        sections.append(("Machine", _table(pd.DataFrame({"": list(fingerprint), " ": list(fingerprint.values())}))))
    settings = {
        "config": config,
        "libraries": libraries,
        "runtime settings": {
            f"{row.runtime}:{row.precision} b{row.batch}": json.loads(row.settings or "{}")
            for row in results.itertuples()
        },
    }
    sections.append(("Settings", f"<pre>{html.escape(json.dumps(settings, indent=2, default=str))}</pre>"))
    return _page(f"YOLO runtime benchmark: run {run['run_id']}", f"{run['model']} on {run['machine_label']}", sections)


def selection_report(results: pd.DataFrame, description: str) -> str:
    """Several runs (a History selection): results and charts across them."""
    runs = results.drop_duplicates("run_id")[["run_id", "started_at", "machine_label", "model", "run_status"]]
    sections = [
        ("Runs", _weights_note(results) + _table(runs)),
        ("Charts", "\n".join(_charts(results))),
        ("Results (medians per image; each run's fastest first)", _results_table(results, ["started_at", "run_id"])),
    ]
    return _page("YOLO runtime benchmark: selected results", description, sections)
