"""History: metrics over time, batch-size scaling and machines side by side, for any selection of results."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, ui
from dashboard.deletion import delete_button, fresh_key, show_deleted

db, filters = ui.page_header(
    "History",
    "Every completed result in the database; the sidebar picks machines and models, the filters below the rest.",
)
show_deleted(db)
everything = data.results(db, filters)
ui.stop_when_empty(everything, db, "charts over time")

runtime_column, precision_column, batch_column, dates_column = st.columns(4)
filters["runtime"] = runtime_column.multiselect(
    "Runtimes", sorted(everything["runtime"].unique()), key="history_runtimes", placeholder="All runtimes"
)
filters["precision"] = precision_column.multiselect(
    "Precisions", sorted(everything["precision"].unique()), key="history_precisions", placeholder="All precisions"
)
filters["batch"] = batch_column.multiselect(
    "Batch sizes", sorted(everything["batch"].unique().tolist()), key="history_batches", placeholder="All batch sizes"
)
first_day, last_day = everything["started_at"].min().date(), everything["started_at"].max().date()
days = dates_column.date_input("Dates (UTC)", (first_day, last_day), key="history_dates")
if len(days) == 2:
    filters["since"] = pd.Timestamp(days[0], tz="UTC")
    filters["until"] = pd.Timestamp(days[1], tz="UTC") + pd.Timedelta(days=1)
selection = data.results(db, filters)
st.session_state["history_filters"] = filters
completed = charts.completed(selection)
if completed.empty:
    st.info("No completed result matches these filters. Widen them to see charts.")
    st.stop()
ui.weights_warning(completed["weights_trained"])

over_time, by_batch, by_machine = st.tabs(["Over time", "Batch size", "Machines"])
with over_time:
    metric_column, split_column = st.columns([1, 2])
    metric = metric_column.selectbox(
        "Metric", list(charts.METRICS), format_func=charts.METRICS.get, key="history_metric"
    )
    varying = [name for name, column in charts.SPLITS.items() if completed[column].nunique() > 1]
    split_by = split_column.multiselect(
        "One line per",
        list(charts.SPLITS),
        key="history_split",
        default=["runtime", "precision", "batch"]
        + [name for name in ("mode", "image size", "threads", "machine") if name in varying],
    )
    if completed[metric].isna().all():
        st.info(
            f"No selected result has a figure for '{charts.METRICS[metric]}': the engine records it "
            "since schema v8; run the benchmark again to get it."
        )
    else:
        # against each machine's run before, shown or not: a date range starting on an upgrade still marks it
        steps = data.library_steps(db)
        steps = steps[steps["run_id"].isin(completed["run_id"])]
        st.plotly_chart(charts.history_lines(completed, metric, split_by, steps), key="history_chart")
    if completed["run_id"].nunique() == 1:
        st.caption("One run so far: each line is a single point until more runs are added.")
with by_batch:
    st.plotly_chart(charts.batch_scaling(completed), key="batch_chart")
    st.caption("Medians over the selected runs. On few cores, batching rarely lowers the time per image.")
with by_machine:
    if completed["machine_id"].nunique() < 2:
        st.info(
            "All selected results come from one machine. Run the engine on another machine into a copy of "
            "this database (or point both at one file) to compare machines here."
        )
    models = sorted(completed["model"].unique())
    model = st.selectbox("Model", models, key="machines_model") if len(models) > 1 else models[0]
    for_model = completed[completed["model"] == model]
    st.plotly_chart(charts.machines_bars(for_model, metric), key="machines_chart")
    latest = charts.latest_per_machine_variant(for_model)
    if latest["machine_label"].nunique() > 1:  # one machine has nothing to be normalised against
        machine_column, variant_column = st.columns(2)
        reference_machine = machine_column.selectbox(
            "Normalise by machine", sorted(latest["machine_label"].unique()), key="reference_machine"
        )
        reference_variant = variant_column.selectbox(
            "and runtime",
            sorted(latest.loc[latest["machine_label"] == reference_machine, "variant"].unique()),
            key="reference_variant",
        )
        normalised = charts.machines_normalised(for_model, metric, reference_machine, reference_variant)
        if normalised is not None:
            st.plotly_chart(normalised, key="machines_normalised_chart")

st.subheader(f"{len(selection)} results, newest first")
newest_first = selection.sort_values("started_at", ascending=False, kind="stable")  # each run's own order kept
picked = ui.results_table(
    newest_first,
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
if picked is None:
    st.caption(
        "Pick a row to act on its run: see its detections, share its report, or delete it (one measured on a "
        "busy machine, say; its bundle is kept)."
    )
else:
    actions, picked_run = st.container(horizontal=True), picked["run_id"]
    actions.page_link(
        "pages/views/detections.py",
        label=f"See run {picked_run}'s detections",
        icon=":material/image_search:",
        query_params={"run": picked_run},
    )
    actions.page_link(
        "pages/views/share.py",
        label="Share its report",
        icon=":material/share:",
        query_params={"run": picked_run, "share": "run"},
    )
    with actions:
        delete_button(db, picked_run, int((everything["run_id"] == picked_run).sum()), "Delete it")
ui.failures(selection)
ui.csv_download(selection, "results-history.csv", "Download these results as CSV")
