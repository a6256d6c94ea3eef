"""Plotly figures built from results_summary rows. No Streamlit here: the HTML report draws the same figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine import ranking

METRICS = {
    "infer_ms": "Inference, median (ms/image)",
    "total_ms": "Total pre + infer + post, median (ms/image)",
    "pre_ms": "Pre-process, median (ms/image)",
    "post_ms": "Post-process, median (ms/image)",
    "infer_p99_ms": "Inference, p99 (ms/image)",
    "throughput_ips": "Throughput (images/s)",
    "peak_memory_mb": "Peak memory of the worker (MB)",
}
STAGES = {
    "pre_ms": ("Pre-process", "#8fb8de"),
    "infer_ms": ("Inference", "#1f6feb"),
    "post_ms": ("Post-process", "#f0a202"),
}
SPLITS = {
    "runtime": "runtime",
    "precision": "precision",
    "batch": "batch",
    "mode": "mode",
    "image size": "imgsz",
    "threads": "threads",
    "machine": "machine_label",
}  # the regression watch's configuration, machine by label
PALETTE = px.colors.qualitative.Safe
DASHES = ("solid", "dash", "dot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x")


def line_style(index: int) -> dict:
    """The index-th line's colour, dash and marker. The palette has 11 colours; History split by runtime, precision,
    batch and mode drew 36 lines in them, three to a colour. Past the palette a colour comes back with another dash,
    past 33 lines with another marker, so no two lines look alike up to 165; up to 11 lines are solid circles."""
    turn = index // len(PALETTE)
    return dict(
        line=dict(color=PALETTE[index % len(PALETTE)], dash=DASHES[turn % len(DASHES)]),
        marker=dict(symbol=SYMBOLS[turn // len(DASHES) % len(SYMBOLS)]),
    )


def completed(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "completed"].copy()


def stability(results: pd.DataFrame) -> list[str]:
    """Each result's inference stability in words, for the dashboard's tables and the report alike."""
    return [
        "—"
        if pd.isna(cv)
        else f"too few samples (cv {cv:.0%})"
        if pd.isna(ok)
        else f"stable (cv {cv:.0%})"
        if ok
        else f"⚠ unstable (cv {cv:.0%})"
        for ok, cv in zip(results["stable"], results["infer_cv"])
    ]


def variant(results: pd.DataFrame) -> pd.Series:
    """runtime:precision, plus the pipeline mode, the input size and the threads when the rows mix them (their
    timings differ in what they include, or do not compare)."""
    label = results["runtime"] + ":" + results["precision"]
    if results["mode"].nunique() > 1:
        label = label + " · " + results["mode"]
    if results["imgsz"].nunique() > 1:
        label = label + " · " + results["imgsz"].astype(str) + " px"
    if results["threads"].nunique() > 1:
        label = label + " · " + thread_count(results["threads"])
    return label


def thread_count(threads: pd.Series) -> pd.Series:
    """ "1 thread", "2 threads"."""
    return threads.astype(str) + " thread" + threads.ne(1).map({True: "s", False: ""})


def variant_batch(results: pd.DataFrame, short: bool = False) -> pd.Series:
    """The variant and its batch size, as bars and images are named: "openvino:int8 · batch 8" ("· b8" short)."""
    return variant(results) + (" · b" if short else " · batch ") + results["batch"].astype(str)


# A legend on top of the plot shares the top margin with the chart's title: one row fits under the title, a second
# row runs into it. On top only while its entries fit one row of the narrowest chart (the Overview's at a 1000 px
# window); Plotly gives an entry ~40 px of symbol and gaps before its text, and its legend title a place in the row.
LEGEND_ON_TOP_PX, LEGEND_ENTRY_PX = 480.0, 40.0


def legend_px(figure: go.Figure) -> float:
    """About how wide the figure's legend is laid out in one row, in pixels."""
    names = [trace.name for trace in figure.data if trace.showlegend is not False and trace.name]
    title = figure.layout.legend.title.text or ""
    return sum(LEGEND_ENTRY_PX + CHARACTER_PX * len(name) for name in names) + CHARACTER_PX * len(title)


def _layout(figure: go.Figure, title: str, height: int = 420, legend_below: bool = False) -> go.Figure:
    entries = sum(1 for trace in figure.data if trace.showlegend is not False and trace.name)
    if legend_px(figure) > LEGEND_ON_TOP_PX and not legend_below:
        legend_below = True
        height += 22 * ((entries + 2) // 3)  # about three entries per legend row
    # Below: at the bottom of the whole figure, where Plotly makes room for it under the axis titles. Placed at
    # y=-0.22 of the plot instead, its first row covered the "batch size" titles when the plot came out short.
    legend = (
        dict(orientation="h", yref="container", yanchor="bottom", y=0.0, xanchor="left", x=0.0)
        if legend_below
        else dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)
    )
    figure.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=60, b=10), legend=legend)
    figure.update_xaxes(automargin=True)
    figure.update_yaxes(automargin=True)  # room for long category names outside Streamlit's theme too
    return figure


def stage_bars(results: pd.DataFrame, title: str = "Where the time goes, per image") -> go.Figure:
    """Leaderboard: one stacked bar per runtime x precision x batch, fastest on top."""
    rows = completed(results)
    rows["label"] = variant_batch(rows)
    if rows["run_id"].nunique() > 1:  # the same variant from several runs gets a bar each
        rows["label"] += " · run of " + rows["started_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    rows = rows.sort_values("total_ms", ascending=False)
    figure = go.Figure()
    for column, (name, color) in STAGES.items():
        figure.add_bar(
            y=rows["label"],
            x=rows[column],
            name=name,
            orientation="h",
            marker_color=color,
            hovertemplate="%{y}<br>" + name + ": %{x:.2f} ms<extra></extra>",
        )
    stacked = rows[list(STAGES)].sum(axis=1)
    x_max = stacked.max() * 1.4 if len(rows) else 1
    texts = [f"total {total:.1f} ms · {ips:.0f} img/s" for total, ips in zip(rows["total_ms"], rows["throughput_ips"])]
    outside = _fits_beside_bar(stacked.tolist(), texts, x_max, rows["label"].str.len().max() if len(rows) else 0)
    figure.add_scatter(
        y=rows["label"],
        x=stacked,
        mode="text",
        showlegend=False,
        hoverinfo="skip",
        text=[f"  {text}" if beside else f"{text}  " for text, beside in zip(texts, outside)],
        textposition=["middle right" if beside else "middle left" for beside in outside],
        textfont_color=["#555" if beside else "white" for beside in outside],
    )
    figure.update_layout(barmode="stack", xaxis_title="milliseconds per image (median)", xaxis_range=[0, x_max])
    return _layout(figure, title, height=140 + 48 * len(rows))


# The Overview's bar chart at a 1000 px window with the sidebar open is about 540 px wide; the bar names take
# their length on the left. A total's label that does not fit right of its bar goes inside the bar's end instead:
# the slowest bars' labels ran off the chart there ("total 79.0 ms · 1", screenshot).
BARS_FIGURE_PX = 540.0


def _fits_beside_bar(totals: list[float], texts: list[str], x_max: float, name_chars: int) -> list[bool]:
    plot_px = max(BARS_FIGURE_PX - CHARACTER_PX * name_chars - 30, 100.0)
    return [CHARACTER_PX * (len(text) + 2) <= (1 - total / x_max) * plot_px for total, text in zip(totals, texts)]


def iteration_spread(results: pd.DataFrame, times: pd.DataFrame) -> go.Figure | None:
    """Every measured iteration's total per image, one box per result in the leaderboard's order: the medians the
    bars show hide a runtime that is fast on most calls and slow on some (jitter, a late warm-up, throttling)."""
    rows = completed(results)
    rows["label"] = variant_batch(rows)
    if times.empty or rows.empty:
        return None
    figure = go.Figure()
    for _, row in rows.sort_values("total_ms", ascending=False).iterrows():
        iterations = times[times["result_id"] == row["result_id"]]
        figure.add_box(
            x=iterations["total_ms"],
            name=row["label"],
            orientation="h",
            boxpoints="all",
            jitter=0.4,
            pointpos=0,
            marker=dict(size=4, color="#1f6feb", opacity=0.6),
            line=dict(color="#555", width=1),
            fillcolor="rgba(143, 184, 222, 0.35)",
            showlegend=False,
            customdata=iterations["iteration"],
            hovertemplate="%{y}<br>iteration %{customdata}: %{x:.2f} ms<extra></extra>",
        )
    figure.update_layout(xaxis_title="ms per image, each measured iteration")  # longer ran off at 1000 px
    return _layout(figure, "Every measured iteration", height=140 + 48 * len(rows))


def series_labels(rows: pd.DataFrame, split_by: list[str]) -> pd.Series:
    if not split_by:
        return pd.Series("all results", index=rows.index)
    prefixes = {"batch": "b"}
    suffixes = {"image size": " px"}
    parts = [
        thread_count(rows["threads"])
        if name == "threads"
        else prefixes.get(name, "") + rows[SPLITS[name]].astype(str) + suffixes.get(name, "")
        for name in split_by
    ]
    label = parts[0]
    for part in parts[1:]:
        label = label + " · " + part
    return label


WEBGL_POINTS = 1000  # past this many points a figure draws with WebGL: SVG slows the browser to a crawl
PANEL_PX = 200


def history_points(results: pd.DataFrame, metric: str, split_by: list[str]) -> pd.DataFrame:
    """Result rows as the points History draws (engine's history_points shape, no run sharing a point): each run's
    median per series."""
    rows = completed(results).dropna(subset=[metric])  # peak memory: none on results older than schema v8
    keys = [SPLITS[name] for name in split_by]
    points = rows.groupby([*keys, "run_id", "started_at"], as_index=False, dropna=False)[metric].median()
    points = points.rename(columns={metric: "value"}).assign(runs=1)
    return points.assign(low=points["value"], high=points["value"])


def history_lines(
    results: pd.DataFrame, metric: str, split_by: list[str], library_steps: pd.DataFrame | None = None
) -> go.Figure:
    """A chosen metric over time from result rows, one line per combination of the chosen split columns."""
    machines = results["machine_id"].nunique() if "machine_id" in results else 1
    return history_figure(history_points(results, metric, split_by), metric, split_by, library_steps, machines > 1)


def history_figure(
    points: pd.DataFrame,
    metric: str,
    split_by: list[str],
    library_steps: pd.DataFrame | None = None,
    name_machines: bool = False,
    panel_by: str | None = None,
) -> go.Figure:
    """History's points (history_points, or engine's reduced ones) as lines over time, one per series; a point that
    stands for several runs gets a band from their minimum to their maximum. panel_by: one panel per value of that
    SPLITS column (small multiples). library_steps (engine's library_steps): a dotted line at each run whose library
    versions changed, the usual cause of a step."""
    points = points.assign(series=series_labels(points, split_by)).sort_values(["series", "started_at"])
    panel = SPLITS[panel_by] if panel_by else None
    figure = px.line(
        points,
        x="started_at",
        y="value",
        color="series",
        facet_row=panel,
        facet_row_spacing=0.04 if panel else None,
        markers=True,
        hover_data=["run_id", "runs"] if (points["runs"] > 1).any() else ["run_id"],
        labels={"started_at": "run started (UTC)", "value": METRICS[metric], "series": "", "runs": "runs"},
        color_discrete_sequence=PALETTE,
        render_mode="webgl" if len(points) > WEBGL_POINTS else "svg",
    )
    for index, trace in enumerate(figure.data):
        trace.update(**line_style(index))
    _add_bands(figure, points, panel)
    if panel:  # each panel named on its side; the metric is in the title, not beside every panel
        figure.for_each_annotation(lambda note: note.update(text=note.text.split("=", 1)[-1]))
        figure.update_yaxes(title_text="")
    first, last = points["started_at"].min(), points["started_at"].max()
    if last - first < pd.Timedelta(minutes=1):
        # Runs started within a minute: Plotly would zoom to fractions of a second (ticks like 03:18:21.4745).
        figure.update_xaxes(range=[first - pd.Timedelta(hours=1), last + pd.Timedelta(hours=1)])
    if library_steps is not None and not library_steps.empty:
        span = max(last - first, pd.Timedelta(hours=2))
        _mark_library_steps(figure, library_steps, points["high"].max(), name_machines, span)
    panels = points[panel].nunique() if panel else 1
    return _layout(figure, f"{METRICS[metric]} over time", height=420 if panels == 1 else 120 + PANEL_PX * panels)


def _add_bands(figure: go.Figure, points: pd.DataFrame, panel: str | None) -> None:
    """Behind each line whose points stand for several runs, a band from their minimum to their maximum."""
    lines = list(figure.data)
    for trace in lines:
        rows = points[points["series"] == trace.name]
        if panel:
            rows = rows[rows[panel].astype(str) == _panel_of(trace, panel)]
        if not (rows["runs"] > 1).any():
            continue
        figure.add_scatter(
            x=pd.concat([rows["started_at"], rows["started_at"][::-1]]),
            y=pd.concat([rows["high"], rows["low"][::-1]]),
            fill="toself",
            fillcolor=trace.line.color,
            opacity=0.2,
            line=dict(width=0),
            mode="lines",
            name=trace.name,
            legendgroup=trace.legendgroup,
            showlegend=False,
            hoverinfo="skip",
            xaxis=trace.xaxis,
            yaxis=trace.yaxis,
        )


def _panel_of(trace, panel: str) -> str:
    """The facet value a Plotly Express trace was drawn in, from its hover template ("...<br>panel=value<br>...")."""
    return next(part for part in trace.hovertemplate.split("<br>") if part.startswith(f"{panel}="))[len(panel) + 1 :]


def _top_axes(figure: go.Figure) -> dict:
    """The x and y axis names of the panel drawn highest, where a figure-wide mark goes."""
    names = [name for name in figure.layout if name.startswith("yaxis")]
    top = max(names, key=lambda name: figure.layout[name].domain[1] if figure.layout[name].domain else 1)
    return {"xaxis": "x" + top[len("yaxis") :], "yaxis": "y" + top[len("yaxis") :]}


def _mark_library_steps(
    figure: go.Figure, steps: pd.DataFrame, top: float, name_machines: bool, span: pd.Timedelta
) -> None:
    """A dotted line at each step, a marker on top labelled with its first new version (unless it would overlap
    the label before: within an eighth of the time axis), every change on hover."""
    figure.update_layout(
        shapes=[  # at once: add_shape one by one took 2.6 s for 180 steps
            dict(type="line", x0=at, x1=at, y0=0, y1=1, yref="paper", line=dict(color="grey", dash="dot", width=1))
            for at in steps["started_at"]
        ]
    )

    def short(changes: list[str]) -> str:  # "onnxruntime 1.31.0 → 1.32.0" -> "onnxruntime 1.32.0"
        name, _, versions = changes[0].partition(" ")
        return f"{name} {versions.split(' → ')[-1]}" + (f" +{len(changes) - 1}" if len(changes) > 1 else "")

    labels, labelled_at = [], None
    for step in steps.itertuples():
        crowded = labelled_at is not None and step.started_at - labelled_at < span / 8
        labels.append("" if crowded else short(step.changes))
        labelled_at = labelled_at if crowded else step.started_at
    hover = [
        "<br>".join(step.changes) + (f"<br>on {step.machine_label}" if name_machines else "") + f"<br>run {step.run_id}"
        for step in steps.itertuples()
    ]
    figure.add_scatter(
        x=steps["started_at"],
        y=[top] * len(steps),
        mode="markers+text",
        name="library versions changed",
        text=labels,
        textposition="top center",
        textfont=dict(size=10, color="grey"),
        cliponaxis=False,
        hovertext=hover,
        hoverinfo="text",
        marker=dict(symbol="diamond-open", size=10, color="grey"),
        **_top_axes(figure),
    )


def batch_scaling(results: pd.DataFrame) -> go.Figure:
    """Latency and throughput against batch size, per runtime x precision (median over the selected runs)."""
    rows = completed(results)
    rows["variant"] = variant(rows)
    points = rows.groupby(["variant", "batch"], as_index=False)[["total_ms", "infer_ms", "throughput_ips"]].median()
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Latency per image (total, median)", "Throughput"))
    for index, (name, group) in enumerate(points.sort_values("batch").groupby("variant")):
        style = line_style(index)
        figure.add_scatter(
            x=group["batch"],
            y=group["total_ms"],
            name=name,
            mode="lines+markers",
            legendgroup=name,
            row=1,
            col=1,
            **style,
        )
        figure.add_scatter(
            x=group["batch"],
            y=group["throughput_ips"],
            name=name,
            mode="lines+markers",
            legendgroup=name,
            showlegend=False,
            row=1,
            col=2,
            **style,
        )
    batches = sorted(points["batch"].unique().tolist())
    figure.update_xaxes(title_text="batch size", tickvals=batches)
    figure.update_yaxes(title_text="ms per image", rangemode="tozero", row=1, col=1)
    figure.update_yaxes(title_text="images per second", rangemode="tozero", row=1, col=2)
    return _layout(figure, "Batch size: latency and throughput", height=460, legend_below=True)


def machines_bars(results: pd.DataFrame, metric: str) -> go.Figure:
    """Each machine's latest result per runtime x precision x batch, side by side."""
    rows = completed(results).sort_values("started_at")
    rows["variant"] = variant_batch(rows, short=True)
    latest = rows.groupby(["machine_label", "variant"], as_index=False).last()
    figure = px.bar(
        latest.sort_values("variant"),
        x="variant",
        y=metric,
        color="machine_label",
        barmode="group",
        labels={"variant": "", metric: METRICS[metric], "machine_label": "machine"},
        hover_data=["model", "run_id"],
        color_discrete_sequence=PALETTE,
    )
    return _layout(figure, f"Machines compared: {METRICS[metric]}")


def ratio_bars(compared: pd.DataFrame, metric: str) -> go.Figure:
    """B / A per runtime x precision x batch; for a latency, a bar short of the line at 1 means B is faster."""
    column = f"{metric}_ratio"
    rows = compared.dropna(subset=[column]).sort_values("label", ascending=False)
    figure = go.Figure(go.Bar(y=rows["label"], x=rows[column], orientation="h", marker_color="#1f6feb"))
    figure.add_vline(x=1.0, line_dash="dash", line_color="#666")
    # Each ratio right of its bar's end or of the line at 1, whichever is further ("0.98x" sat on the line).
    for label, value in zip(rows["label"], rows[column]):
        figure.add_annotation(
            x=max(value, 1.0),
            y=label,
            text=f"{value:.2f}x",
            showarrow=False,
            xanchor="left",
            xshift=4,
            font=dict(size=12),
        )
    figure.update_xaxes(title_text="run B / run A", rangemode="tozero", range=[0, max(1.0, rows[column].max()) * 1.2])
    return _layout(figure, f"Ratio of {METRICS[metric]}: B / A", height=140 + 48 * len(rows))


VERDICT_COLORS = {"pass": "#28a745", "drift": "#f0a202", "fail": "#dc143c", "no verdict": "#8c8c8c"}


def agreement_measure(results: pd.DataFrame) -> tuple[str, pd.Series, bool]:
    """The best agreement figure these rows have: mAP with labels, else the share of boxes that agree with the
    reference, else the raw output difference (untrained weights give no boxes). Returns label, values, log axis."""
    if "map50_95" in results and results["map50_95"].notna().any():
        return "mAP50-95 on the labelled data", results["map50_95"], False
    boxes = results.get("parity_matched", 0) + results.get("parity_missed", 0) + results.get("parity_extra", 0)
    if "parity_matched" in results and (boxes > 0).any():
        return "boxes agreeing with the reference<br>(matched / all)", results["parity_matched"] / boxes, False
    if "parity_raw_mean_abs" in results and results["parity_raw_mean_abs"].notna().any():
        # two lines: as one, the axis title ran past the plot into the chart's title (seen in a screenshot)
        return (
            "raw output difference from the reference<br>(mean |diff|, lower is closer)",
            results["parity_raw_mean_abs"],
            True,
        )
    return "", pd.Series(dtype=float), False


def speed_vs_agreement(results: pd.DataFrame) -> go.Figure | None:
    """Each runtime:precision as a point: end-to-end time against agreement with the reference. Points are named
    by labels beside them where each label finds a free place, else by colour and a legend (seven runtimes that
    all find the reference's boxes sit on one line at 1.0, a few pixels apart)."""
    rows = completed(results)
    label, values, log_y = agreement_measure(rows)
    if not label:
        return None
    rows = rows.assign(agreement=values).dropna(subset=["agreement"])
    if rows.empty:
        return None
    # Name a point by what tells it apart from the others here: the mode and the batch only when they differ.
    names = variant_batch(rows, short=True) if rows["batch"].nunique() > 1 else variant(rows)
    frame = pd.DataFrame(
        {
            "variant": names,
            "total_ms": rows["total_ms"],
            "agreement": rows["agreement"],
            "verdict": rows.get("parity_verdict", pd.Series(index=rows.index)).fillna("no verdict"),
        }
    )
    x_range, y_range, positions = _agreement_layout(frame, log_y)
    axis_labels = {"total_ms": "pre + infer + post, median (ms/image)", "agreement": label}
    if positions is not None:
        figure = px.scatter(
            frame,
            x="total_ms",
            y="agreement",
            color="verdict",
            text="variant",
            color_discrete_map=VERDICT_COLORS,
            log_y=log_y,
            labels=axis_labels,
        )
        by_name = dict(zip(frame["variant"], positions))
        for trace in figure.data:
            trace.textposition = [by_name[name] for name in trace.text]
    else:
        figure = px.scatter(
            frame,
            x="total_ms",
            y="agreement",
            color="variant",
            symbol="verdict",
            symbol_map=VERDICT_SYMBOLS,
            hover_name="variant",
            log_y=log_y,
            labels=axis_labels,
        )
    figure.update_traces(marker=dict(size=12))
    if log_y:  # whole decades, labelled 10^-8: Plotly's default labelled minor ticks "3, 4, 10n, 2" (screenshot)
        figure.update_yaxes(dtick=1, exponentformat="power")
    figure.update_yaxes(range=y_range)
    figure.update_xaxes(range=x_range)
    return _layout(figure, "Speed against agreement with the reference", height=420)


def _agreement_layout(frame: pd.DataFrame, log_y: bool) -> tuple[list, list, list | None]:
    """The axes' ranges, with room for labels, and each point's label position (None: labels would collide).
    On a log axis identical outputs are clipped to 1e-9 (log(0) has no place)."""
    if log_y:
        frame["agreement"] = frame["agreement"].clip(lower=1e-9)
        decades = np.log10(frame["agreement"])
        low, high = np.floor(decades.min()), np.ceil(decades.max())
        room = 0.1 + 0.1 * (high - low)  # a label's height above the top decade and below the bottom one
        y_range, y_plot = [low - room, high + room], decades
    else:  # a share of boxes and a mAP both live in [0, 1]; the same room for labels
        y_range, y_plot = [-0.1, 1.12], frame["agreement"]
    low, high = frame["total_ms"].min(), frame["total_ms"].max()
    pad = max((high - low) * 0.2, high * 0.05)  # room for the labels of the outermost points
    x_range = [low - pad, high + pad]
    positions = label_positions(
        frame["total_ms"].to_numpy(), y_plot.to_numpy(), frame["variant"].tolist(), x_range, y_range
    )
    return x_range, y_range, positions


VERDICT_SYMBOLS = {"pass": "circle", "drift": "diamond", "fail": "x", "no verdict": "circle-open"}


# What label_positions assumes of a scatter plot's drawing area and its labels, in pixels: the Overview's plot is
# about 400 px wide in a 1000 px window with the sidebar open (850 px at 1400) and 300 px high at height 420;
# Plotly's 12 px labels average ~6.5 px a character. A plot wider than assumed only spreads labels more than needed.
PLOT_PX = (400.0, 300.0)
CHARACTER_PX, LINE_PX, MARKER_PX = 6.5, 14.0, 6.0
LABEL_PLACES = (
    "top center",
    "bottom center",
    "middle right",
    "middle left",
    "top right",
    "top left",
    "bottom right",
    "bottom left",
)


def label_positions(x: np.ndarray, y: np.ndarray, texts: list[str], x_range, y_range) -> list[str] | None:
    """A Plotly textposition for each point's label such that labels cover neither each other nor a marker and
    stay inside the plot, or None where some label finds no such place (points with the same reference difference
    printed their labels over one another, seen in a screenshot). Points are taken from left to right, each
    label in the first free place of LABEL_PLACES."""
    width, height = PLOT_PX
    px_x = (np.asarray(x, float) - x_range[0]) / (x_range[1] - x_range[0]) * width
    px_y = (np.asarray(y, float) - y_range[0]) / (y_range[1] - y_range[0]) * height
    markers = [(cx - MARKER_PX, cy - MARKER_PX, cx + MARKER_PX, cy + MARKER_PX) for cx, cy in zip(px_x, px_y)]
    placed: list[tuple] = []
    chosen = [""] * len(texts)
    for index in np.argsort(px_x, kind="stable"):
        cx, cy, w = px_x[index], px_y[index], CHARACTER_PX * len(texts[index])
        others = placed + [marker for j, marker in enumerate(markers) if j != index]
        for place in LABEL_PLACES:
            box = _label_box(place, cx, cy, w)
            inside = box[0] >= 0 and box[2] <= width and box[1] >= 0 and box[3] <= height
            if inside and not any(_crossing(box, other) for other in others):
                chosen[index] = place
                placed.append(box)
                break
        else:
            return None
    return chosen


def _label_box(place: str, cx: float, cy: float, w: float) -> tuple[float, float, float, float]:
    vertical, horizontal = place.split()
    gap = MARKER_PX + 1
    x0 = {"center": cx - w / 2, "right": cx + gap, "left": cx - gap - w}[horizontal]
    if vertical == "middle":
        y0 = cy - LINE_PX / 2
    else:
        lift = gap if horizontal == "center" else 2.0  # a corner label starts beside the marker, not above it
        y0 = cy + lift if vertical == "top" else cy - lift - LINE_PX
    return (x0, y0, x0 + w, y0 + LINE_PX)


def _crossing(a: tuple, b: tuple) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def latest_per_machine_variant(results: pd.DataFrame) -> pd.DataFrame:
    """Each machine's latest completed result per runtime x precision x batch."""
    rows = completed(results).sort_values("started_at")
    rows["variant"] = variant_batch(rows, short=True)
    return rows.groupby(["machine_label", "variant"], as_index=False).last()


def machines_normalised(
    results: pd.DataFrame, metric: str, reference_machine: str, reference_variant: str
) -> go.Figure | None:
    """Each machine's figures as a multiple of one reference (machine, runtime x precision x batch)."""
    latest = latest_per_machine_variant(results)
    reference = latest[(latest["machine_label"] == reference_machine) & (latest["variant"] == reference_variant)]
    if reference.empty or not reference[metric].iloc[0]:
        return None
    latest["relative"] = latest[metric] / reference[metric].iloc[0]
    figure = px.bar(
        latest.sort_values("variant"),
        x="variant",
        y="relative",
        color="machine_label",
        barmode="group",
        color_discrete_sequence=PALETTE,
        hover_data=[metric, "run_id"],
        labels={"variant": "", "relative": f"x {reference_machine} · {reference_variant}", "machine_label": "machine"},
    )
    figure.add_hline(y=1.0, line_dash="dot", line_color="#555")
    return _layout(figure, f"{METRICS[metric]}, relative to {reference_machine} · {reference_variant}")


def fastest(results: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """engine.ranking.fastest over these rows: the fastest completed result whose parity did not fail, and the
    faster ones passed over because theirs did."""
    rows = completed(results)
    best, passed_over = ranking.fastest(rows.assign(_row=rows.index).to_dict("records"))
    return rows.loc[best["_row"]], rows.loc[[r["_row"] for r in passed_over]]


def least(results: pd.DataFrame, column: str) -> pd.Series | None:
    """engine.ranking.least over these rows: the smallest figure among results whose parity did not fail."""
    rows = completed(results)
    pick = ranking.least(rows.assign(_row=rows.index).to_dict("records"), column)
    return None if pick is None else rows.loc[pick["_row"]]


LEANEST = (("smallest on disk", "model_mb", "{:.1f} MB"), ("least memory", "peak_memory_mb", "{:.0f} MB"))


def leanest(results: pd.DataFrame, names: pd.Series) -> list[tuple[str, str, str]]:
    """("smallest on disk", "tflite:int8", "3.0 MB") and ("least memory", its name in `names`, "91 MB"), where
    measured, among results whose parity did not fail. A file is named runtime:precision: both pipeline modes load
    the same one."""
    picks = []
    for what, column, form in LEANEST:
        pick = least(results, column) if column in results else None
        if pick is not None:
            name = f"{pick['runtime']}:{pick['precision']}" if column == "model_mb" else names[pick.name]
            picks.append((what, name, form.format(pick[column])))
    return picks


def fastest_per_machine(results: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """For each machine, its fastest result as `fastest` picks it, fastest machine first; and the faster results
    passed over because they failed parity."""
    rows = completed(results)
    by_machine: dict[str, list[dict]] = {}
    for record in rows.assign(_row=rows.index).to_dict("records"):  # one conversion, not one per machine
        by_machine.setdefault(record["machine_label"], []).append(record)
    picks = [ranking.fastest(by_machine[label]) for label in sorted(by_machine)]
    best = rows.loc[[pick["_row"] for pick, _ in picks if pick is not None]]
    passed_over = rows.loc[[record["_row"] for _, passed in picks for record in passed]]
    return best.sort_values("total_ms", kind="stable").reset_index(drop=True), passed_over


def mode_costs(results: pd.DataFrame) -> pd.DataFrame:
    """Where a runtime x precision x batch ran in both pipeline modes: the end-to-end median per image of each,
    what Ultralytics' predictor adds to the same model (milliseconds, and peak memory where measured), and the
    ratio, largest ratio first."""
    rows = completed(results)
    keys = ["runtime", "precision", "batch"]
    per_mode = rows.groupby([*keys, "mode"])["total_ms"].median().unstack("mode")
    if not {"lean", "ultralytics"} <= set(per_mode.columns):
        return pd.DataFrame(columns=[*keys, "lean_ms", "ultralytics_ms", "added_ms", "ratio", "added_mb"])
    both = (
        per_mode[["lean", "ultralytics"]].dropna().rename(columns={"lean": "lean_ms", "ultralytics": "ultralytics_ms"})
    )
    both = both.assign(
        added_ms=both["ultralytics_ms"] - both["lean_ms"], ratio=both["ultralytics_ms"] / both["lean_ms"]
    )
    memory = (
        rows.groupby([*keys, "mode"])["peak_memory_mb"]
        .median()
        .unstack("mode")
        .reindex(columns=["lean", "ultralytics"])
        if "peak_memory_mb" in rows
        else None
    )
    both["added_mb"] = (memory["ultralytics"] - memory["lean"]) if memory is not None else float("nan")
    return both.sort_values("ratio", ascending=False).reset_index().rename_axis(columns=None)


def recommend_scatter(recommendation) -> go.Figure:
    """Each configuration's p99 per call against its images/s: those that fit the budget and those out of it, a
    ring around each on the Pareto front, the pick as a star."""
    out = {r.candidate.result_id: r.broke for r in recommendation.rejected}
    every = [c for c in [*recommendation.fitting, *(r.candidate for r in recommendation.rejected)] if c.p99_ms]
    figure = go.Figure()
    for fits, name, color in ((True, "meets the budget", "#28a745"), (False, "out of the budget", "#8c8c8c")):
        shown = [c for c in every if (c.result_id not in out) == fits]
        figure.add_scatter(
            x=[c.p99_ms for c in shown],
            y=[c.images_per_s for c in shown],
            mode="markers",
            name=name,
            marker=dict(color=color, size=10),
            hovertext=[c.name + "".join(f"<br>{words}" for words in out.get(c.result_id, ())) for c in shown],
            hoverinfo="text",
        )
    front = [c for c in recommendation.front if c.p99_ms is not None]
    figure.add_scatter(
        x=[c.p99_ms for c in front],
        y=[c.images_per_s for c in front],
        mode="markers",
        name="on the Pareto front",
        marker=dict(symbol="circle-open", size=20, color="#1f6feb", line=dict(width=2)),
        hoverinfo="skip",
    )
    pick = recommendation.pick
    if pick and pick.p99_ms is not None:
        figure.add_scatter(
            x=[pick.p99_ms],
            y=[pick.images_per_s],
            mode="markers+text",
            name="the pick",
            text=[f"{pick.runtime}:{pick.precision} b{pick.batch}"],
            textposition="bottom center",
            marker=dict(symbol="star", size=18, color="#f0a202", line=dict(color="black", width=1)),
            hovertext=[pick.name],
            hoverinfo="text",
        )
    figure.update_xaxes(title_text="p99 latency per call (ms)", rangemode="tozero")
    figure.update_yaxes(title_text="images per second", rangemode="tozero")
    return _layout(figure, "Latency against throughput: the front and the pick")


def profile_bars(totals: pd.DataFrame, by: str) -> go.Figure:
    """Each profiled result's ms per call as one stacked bar, split by stage or module type (engine.profiles
    totals_by): where each runtime spends, side by side."""
    figure = go.Figure()
    order = totals.sum(axis=1).sort_values(ascending=False).index  # the largest part first, at the bars' left
    for index, part in enumerate(order):
        figure.add_bar(
            y=list(totals.columns),
            x=totals.loc[part].tolist(),
            name=str(part) or "—",
            orientation="h",
            marker_color=PALETTE[index % len(PALETTE)],
            hovertemplate=f"{part}: %{{x:.2f}} ms<extra>%{{y}}</extra>",
        )
    figure.update_layout(barmode="stack")
    figure.update_xaxes(title_text="ms per call (profiled)", rangemode="tozero")
    return _layout(
        figure, f"Where each runtime spends, by {by}", height=200 + 40 * len(totals.columns), legend_below=True
    )
