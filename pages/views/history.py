"""History: metrics over time, batch-size scaling and machines side by side. It opens on one question, the newest
machine and model; every read is shaped for what is drawn, so a fleet's 100,000 runs open as fast as 10."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, history_scope, ui
from dashboard.deletion import delete_button, show_deleted
from engine import api

db, filters = ui.page_header(
    "History",
    "Every completed result in the database; the sidebar picks machines and models, the filters below the rest.",
)
show_deleted(db)
choices = data.history_choices(db, filters)
if choices.empty:
    if data.results_page(db, filters, 1, 0)[1]:
        st.info("No result has completed yet; the Run page shows each run's log.")
    else:
        ui.empty_state(db, "charts over time")
    st.stop()

runtime_column, precision_column, batch_column, dates_column = st.columns(4)
filters["runtime"] = runtime_column.multiselect(
    "Runtimes",
    sorted(choices["runtime"].unique()),
    key="history_runtimes",
    bind="query-params",
    placeholder="All runtimes",
)
filters["precision"] = precision_column.multiselect(
    "Precisions",
    sorted(choices["precision"].unique()),
    key="history_precisions",
    bind="query-params",
    placeholder="All precisions",
)
filters["batch"] = batch_column.multiselect(
    "Batch sizes",
    sorted(choices["batch"].unique().tolist()),
    key="history_batches",
    bind="query-params",
    placeholder="All batch sizes",
)
first_day, last_day = choices["first_at"].min().date(), choices["last_at"].max().date()
days = dates_column.date_input("Dates (UTC)", (first_day, last_day), key="history_dates", bind="query-params")
if len(days) == 2:
    filters["since"] = pd.Timestamp(days[0], tz="UTC")
    filters["until"] = pd.Timestamp(days[1], tz="UTC") + pd.Timedelta(days=1)
scope = history_scope.pick(db, choices, filters)
# what Share's "History selection" reports: the question the charts answer, not a fleet's every result
st.session_state["history_filters"] = filters if scope is None else scope.filters
if scope is None:
    st.info("No completed result matches these filters. Widen them to see charts.")
else:
    ui.weights_warning(scope.results["weights_trained"])
    over_time, by_batch, by_machine = st.tabs(["Over time", "Batch size", "Machines"])
    with over_time:
        metric = history_scope.over_time(db, scope)
    with by_batch:
        st.plotly_chart(charts.batch_scaling(scope.results), key="batch_chart")
        st.caption("Medians over the selected runs. On few cores, batching rarely lowers the time per image.")
    with by_machine:
        history_scope.machines_side_by_side(db, scope, metric)

table = history_scope.results_table_page(db, filters)
if table.picked is None:
    st.caption(
        "Pick a row to act on its run: see its detections, share its report, or delete it (one measured on a "
        "busy machine, say; its bundle is kept)."
    )
else:
    actions, picked_run = st.container(horizontal=True), table.picked["run_id"]
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
        delete_button(db, picked_run, len(data.results(db, {"run_id": [picked_run]})), "Delete it")
ui.failures(table.rows)
ui.csv_download_later(lambda: api.results_summary(db, filters), "results-history.csv", "Download these results as CSV")
