"""Share: a run or the History selection as one self-contained HTML report, and its tables as CSV."""

import streamlit as st

from dashboard import charts, data, ui

db, filters = ui.page_header(
    "Share",
    "One HTML file that opens anywhere, offline: its charts, detection images, "
    "settings and machine travel inside it. Tables come as CSV.",
)
runs = data.runs_with_results(db, filters, ui.named_runs("run_picker"))
ui.stop_when_empty(runs, db, "reports to share")

if st.query_params.get("share") == "run":  # History's "Share its report": that run, whatever was shared before
    st.session_state["share_source"] = "One run"
    del st.query_params["share"]
source = st.radio("What to share", ["One run", "The History selection"], horizontal=True, key="share_source")
if source == "One run":
    run_id = ui.pick_run(runs)
    results = data.results(db, {"run_id": run_id})
    with st.spinner("Building the report…"):
        report = data.run_report(db, run_id)
    name = f"yolo-bench-{run_id}"
else:
    chosen = st.session_state.get("history_filters") or filters
    described = {key: value for key, value in chosen.items() if value not in (None, [], ())}
    description = "Selection: " + ("; ".join(f"{key} = {value}" for key, value in described.items()) or "everything")
    st.caption(description + " (set it on the History page)")
    results = data.results(db, chosen)
    if results.empty:
        st.info("The History selection is empty: widen its filters on the History page.")
        st.stop()
    with st.spinner("Building the report…"):
        report = data.selection_report(db, chosen, description)
    name = "yolo-bench-selection"

ui.weights_warning(results["weights_trained"])
completed = int((results["status"] == "completed").sum())
st.markdown(
    f"The report holds **{results['run_id'].nunique()} run(s)**, **{completed} completed result(s)** "
    f"of {len(results)}, and weighs {len(report) / 1e6:.1f} MB (plotly.js is inside it)."
)
buttons = st.container(horizontal=True)  # in three columns the fourth button sat alone on a row below
with buttons:
    st.download_button(
        "Download the HTML report",
        report.encode(),
        file_name=f"{name}.html",
        mime="text/html",
        type="primary",
        icon=":material/description:",
        on_click="ignore",
        key="report_download",
    )
    ui.csv_download(results, f"{name}-results.csv", "Results as CSV")
    if source == "One run":
        st.download_button(
            "Every table of the run (CSV, zip)",
            data.run_tables_zip(db, run_id),
            file_name=f"{name}-tables.zip",
            mime="application/zip",
            on_click="ignore",
            icon=":material/folder_zip:",
            key="tables_download",
        )
        st.download_button(
            "Bundle for another machine's dashboard (zip)",
            data.run_bundle(db, run_id),
            file_name=f"{name}-bundle.zip",
            mime="application/zip",
            on_click="ignore",
            icon=":material/move_to_inbox:",
            key="bundle_download",
            help="Import it on the Machines page of another dashboard, or with "
            "`python -m engine import FILE --db results.duckdb`",
        )
st.subheader("What it shows")
if completed:
    st.plotly_chart(charts.stage_bars(results), key="share_preview")
# in the report's order: each run's fastest first, failures last
ui.results_table(results.sort_values(["started_at", "run_id", "total_ms"], na_position="last"), key="share_table")
ui.failures(results)
