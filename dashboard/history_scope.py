"""What the History page draws, one question at a time: the scope (a machine and a model, or every machine in panels
of its own), the chart over time from points reduced in the database, the machines side by side and the results
table one page at a time. Every choice is carried in the page's URL."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from dashboard.deletion import fresh_key
from engine.machine import told_apart

EVERY_MACHINE = "every"
MAX_LINES = 12  # more lines than this in one chart cannot be told apart: the runtimes get a panel each
MAX_PANELS = 12
MAX_MACHINES = 20  # side by side: bars of more machines than this cannot be read, nor drawn in time
MAX_POINTS = 150  # per line: about what a chart's width can show; past it, consecutive runs share a point
PAGE_ROWS = 100
FILTERS = ("runtime", "precision", "batch")


@dataclass(frozen=True)
class Scope:
    """The results one History view is about: the filters its reads take, its machines and model, its
    configurations (history_choices rows) and its result rows (for the batch chart)."""

    filters: dict
    machine_ids: tuple[str, ...]
    model: str
    panels: bool
    configurations: pd.DataFrame
    results: pd.DataFrame


@dataclass(frozen=True)
class TablePage:
    rows: pd.DataFrame
    picked: pd.Series | None


def _narrowed(choices: pd.DataFrame, filters: dict) -> pd.DataFrame:
    """The configurations left by the page's filters (runtime, precision, batch and dates)."""
    kept = choices
    for column in FILTERS:
        if filters.get(column):
            kept = kept[kept[column].isin(filters[column])]
    if "since" in filters:
        kept = kept[(kept["last_at"] >= filters["since"]) & (kept["first_at"] <= filters["until"])]
    return kept


def pick(db: str, choices: pd.DataFrame, filters: dict) -> Scope | None:
    """The machine and model pickers: the newest machine and its newest model unless the URL or a click says
    otherwise. None when the filters leave nothing."""
    left = _narrowed(choices, filters)
    if left.empty:
        return None
    named = list(dict.fromkeys(zip(left["machine_id"], left["machine_label"])))  # the machine that ran last first
    machines = [machine_id for machine_id, _ in named]
    labels = dict(zip(machines, told_apart(named)))
    machine_column, model_column = st.columns(2)
    options = machines if len(machines) == 1 else [EVERY_MACHINE, *machines]
    machine = machine_column.selectbox(
        "Machine",
        options,
        index=0 if len(machines) == 1 else 1,
        format_func=lambda value: "Every machine, a panel each" if value == EVERY_MACHINE else labels[value],
        key="history_machine",
        bind="query-params",
    )
    shown = machines[:MAX_PANELS] if machine == EVERY_MACHINE else [machine]
    on_them = left[left["machine_id"].isin(shown)].sort_values("last_at", ascending=False)
    models = list(dict.fromkeys(on_them["model"]))  # newest first
    model = model_column.selectbox("Model", models, key="history_model", bind="query-params")
    if machine == EVERY_MACHINE and len(machines) > MAX_PANELS:
        st.caption(
            f"The {MAX_PANELS} machines that ran last, of {len(machines)}: pick others in the sidebar's Machines."
        )
    scoped = {**filters, "machine_id": shown, "model": [model]}
    return Scope(
        filters=scoped,
        machine_ids=tuple(shown),
        model=model,
        panels=machine == EVERY_MACHINE,
        configurations=on_them[on_them["model"] == model],
        results=charts.completed(data.results(db, scoped)),
    )


def _lines_and_panels(scope: Scope) -> tuple[list[str], str | None]:
    """The 'One line per' picker (its default: whatever varies among the scope's configurations), and the panel
    each line goes in: a machine each, or a runtime each where one chart would hold too many lines."""
    varying = [name for name, column in charts.SPLITS.items() if scope.configurations[column].nunique() > 1]
    default = ["runtime", "precision", "batch"] + [n for n in ("mode", "image size", "threads") if n in varying]
    split_by = st.multiselect(
        "One line per", list(charts.SPLITS), key="history_split", default=default, bind="query-params"
    )
    if scope.panels:
        return split_by, "machine"
    lines = scope.configurations.groupby([charts.SPLITS[name] for name in split_by]).ngroups if split_by else 1
    if lines > MAX_LINES and "runtime" in varying:
        st.caption(f"{lines} lines are too many for one chart: each runtime gets a panel of its own.")
        return split_by, "runtime"
    return split_by, None


def over_time(db: str, scope: Scope) -> str:
    """The metric picker and the chart over time; returns the metric."""
    metric_column, split_column = st.columns([1, 2])
    metric = metric_column.selectbox(
        "Metric", list(charts.METRICS), format_func=charts.METRICS.get, key="history_metric", bind="query-params"
    )
    with split_column:
        split_by, panel_by = _lines_and_panels(scope)
    columns = [charts.SPLITS[name] for name in split_by]
    if panel_by and charts.SPLITS[panel_by] not in columns:
        columns.append(charts.SPLITS[panel_by])
    points = data.history_points(db, scope.filters, metric, columns, MAX_POINTS)
    if points.empty:
        st.info(
            f"No selected result has a figure for '{charts.METRICS[metric]}': the engine records it "
            "since schema v8; run the benchmark again to get it."
        )
        return metric
    figure = charts.history_figure(points, metric, split_by, _steps(db, scope), len(scope.machine_ids) > 1, panel_by)
    st.plotly_chart(figure, key="history_chart")
    if (points["runs"] > 1).any():
        st.caption(
            f"Each point stands for up to {points['runs'].max()} consecutive runs: their median, in a band from "
            "the lowest to the highest. A line holds more runs than the chart can show; narrow the dates to see "
            "each run."
        )
    if scope.results["run_id"].nunique() == 1:
        st.caption("One run so far: each line is a single point until more runs are added.")
    return metric


def _steps(db: str, scope: Scope) -> pd.DataFrame:
    """Library upgrades on the scope's machines, each against its machine's run before, shown or not (a date range
    starting on an upgrade still marks it), whatever model the run measured: an upgrade changes them all."""
    steps = data.library_steps(db, scope.machine_ids)
    if "since" in scope.filters:
        steps = steps[steps["started_at"].between(scope.filters["since"], scope.filters["until"])]
    return steps


def machines_side_by_side(db: str, scope: Scope, metric: str) -> None:
    """Each machine's latest run of a model, its results side by side, and normalised by one machine's. The model
    at first: the one most machines ran, the page's own among equals."""
    filters = {key: value for key, value in scope.filters.items() if key not in ("machine_id", "model")}
    if (sidebar := ui.current_filters()).get("machine_id"):
        filters["machine_id"] = sidebar["machine_id"]
    if sidebar.get("model"):
        filters["model"] = sidebar["model"]
    latest = data.latest_runs(db, filters, True)
    machines_per_model = latest.groupby("model")["machine_id"].nunique()
    models = sorted(machines_per_model.index, key=lambda name: (-machines_per_model[name], name != scope.model, name))
    model = st.selectbox("Model", models, key="machines_model") if len(models) > 1 else models[0]
    of_model = latest["run_id"][latest["model"] == model].tolist()
    if len(of_model) > MAX_MACHINES:
        st.caption(f"The {MAX_MACHINES} machines that ran last, of {len(of_model)}: pick others in the sidebar.")
        of_model = of_model[:MAX_MACHINES]
    rows = charts.completed(data.results(db, {**filters, "model": [model], "run_id": of_model}))
    if rows["machine_id"].nunique() < 2:
        st.info(
            "All selected results come from one machine. Run the engine on another machine into a copy of "
            "this database (or point both at one file) to compare machines here."
        )
    st.plotly_chart(charts.machines_bars(rows, metric), key="machines_chart")
    newest = charts.latest_per_machine_variant(rows)
    if newest["machine_label"].nunique() < 2:  # one machine has nothing to be normalised against
        return
    machine_column, variant_column = st.columns(2)
    reference_machine = machine_column.selectbox(
        "Normalise by machine", sorted(newest["machine_label"].unique()), key="reference_machine"
    )
    reference_variant = variant_column.selectbox(
        "and runtime",
        sorted(newest.loc[newest["machine_label"] == reference_machine, "variant"].unique()),
        key="reference_variant",
    )
    normalised = charts.machines_normalised(rows, metric, reference_machine, reference_variant)
    if normalised is not None:
        st.plotly_chart(normalised, key="machines_normalised_chart")


def results_table_page(db: str, filters: dict) -> TablePage:
    """The results that match, newest first, PAGE_ROWS at a time; one row can be picked."""
    page_key = "history_table_page"
    page = st.session_state.get(page_key, 1)
    rows, total = data.results_page(db, filters, PAGE_ROWS, (page - 1) * PAGE_ROWS)
    pages = max(1, math.ceil(total / PAGE_ROWS))
    if page > pages:  # the filters narrowed under the page shown
        st.session_state[page_key] = page = pages
        rows, total = data.results_page(db, filters, PAGE_ROWS, (page - 1) * PAGE_ROWS)
    st.subheader(f"{total} results, newest first")
    if pages > 1:
        st.number_input(f"Page of {PAGE_ROWS} rows (of {pages})", min_value=1, max_value=pages, key=page_key, width=220)
    picked = ui.results_table(
        rows,
        key=fresh_key("history_table"),
        selectable=True,
        extra={
            "started_at": st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm"),
            "machine_label": st.column_config.TextColumn("Machine"),
            "model": st.column_config.TextColumn("Model"),
            "imgsz": st.column_config.NumberColumn("Size px"),
            "threads": st.column_config.NumberColumn("Threads"),
        },
    )
    return TablePage(rows=rows, picked=picked)
