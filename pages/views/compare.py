"""Compare: two runs side by side, with the ratio B / A per runtime x precision x batch x mode."""

import streamlit as st

from dashboard import charts, data, ui
from engine import api

db, filters = ui.page_header(
    "Compare two runs",
    "A is the baseline. A ratio B / A under 1 means B takes less time; for images/s, over 1 means B is faster.",
)
runs = data.runs_with_results(db, {**filters, "status": "completed"}, ui.named_runs("compare_a", "compare_b"))
ui.stop_when_empty(runs, db, "two runs to compare")
if len(runs) < 2:
    st.info(
        "There is only one run here. Start another on the Run page (another runtime, precision or setting), "
        "then compare them."
    )
    st.page_link("pages/views/run.py", label="Go to the Run page", icon=":material/play_arrow:")
    st.stop()

column_a, column_b = st.columns(2)
with column_b:
    run_b = ui.pick_run(runs, "Run B", key="compare_b", default_index=0, shared=False)
with column_a:  # by default the newest earlier run that measured something B measured
    on_its_machine = {**filters, "machine_id": runs.loc[runs["run_id"] == run_b, "machine_id"].tolist()}
    baseline = api.baseline_for(run_b, data.results(db, on_its_machine), data.runs(db, on_its_machine))
    options = runs["run_id"].tolist()
    run_a = ui.pick_run(
        runs,
        "Run A (baseline)",
        key="compare_a",
        shared=False,
        default_index=options.index(baseline) if baseline in options else 1,
    )

every_a, every_b = (ui.with_efficiency(data.results(db, {"run_id": run})) for run in (run_a, run_b))
rows = [runs[runs["run_id"] == run].iloc[0].to_dict() for run in (run_a, run_b)]
comparison = api.compare_runs(every_a, every_b, carry=("peak_share",), runs=(rows[0], rows[1]))
if comparison.setting_changes:
    st.warning("These runs differ in more than the runtimes: " + "; ".join(comparison.setting_changes))
if comparison.library_changes:  # the usual explanation of a step that nothing else explains
    st.info("Library versions differ: " + "; ".join(comparison.library_changes) + ".", icon=":material/upgrade:")
if comparison.relabelled:
    machine_id = every_a["machine_id"].iloc[0]
    st.caption(f"The same machine ({machine_id[:12]}) under two labels: {comparison.relabelled}.")
# what the ratios leave out is named: a runtime that failed in B would otherwise just vanish from them
for name, alone in comparison.only_in.items():  # a full sweep against a one-runtime run: 35 names, on hover
    st.caption(f"Only in run {name}, so not compared: {ui.some_of(alone)}.", help=", ".join(alone))
failed = [f"{name} failed in run {run}" for run, names in sorted(comparison.failed_in.items()) for name in names]
if failed:
    st.warning("Not compared: " + "; ".join(failed) + ".")
compared = comparison.table
if compared.empty:
    st.info(
        "These two runs share no runtime x precision x batch that completed in both. Pick runs that measured "
        "the same runtimes."
    )
    st.stop()
if comparison.parity_worse:
    st.error(
        "Detections changed: parity is worse in run B for " + "; ".join(comparison.parity_worse) + ".",
        icon=":material/rule:",
    )

metric = st.segmented_control(
    "Ratio of",
    api.COMPARED_METRICS,
    format_func=charts.METRICS.get,
    default="infer_ms",
    key="compare_metric",
    required=True,
)
st.plotly_chart(charts.ratio_bars(compared, metric), key="ratio_chart")
number = st.column_config.NumberColumn
st.dataframe(
    compared,
    hide_index=True,
    key="compare_table",
    placeholder=ui.MISSING,
    column_order=[
        "runtime",
        "precision",
        "batch",
        "mode",
        "parity_verdict_a",
        "parity_verdict_b",
        "infer_ms_a",
        "infer_ms_b",
        "infer_ms_ratio",
        "total_ms_a",
        "total_ms_b",
        "total_ms_ratio",
        "throughput_ips_a",
        "throughput_ips_b",
        "throughput_ips_ratio",
        "peak_share_a",
        "peak_share_b",
    ],
    column_config={
        "runtime": "Runtime",
        "precision": "Precision",
        "batch": "Batch",
        "mode": "Mode",
        "parity_verdict_a": "Parity A",
        "parity_verdict_b": "Parity B",
        "infer_ms_a": number("Infer ms A", format="%.2f"),
        "infer_ms_b": number("Infer ms B", format="%.2f"),
        "infer_ms_ratio": number("Infer B / A", format="%.2fx"),
        "total_ms_a": number("Total ms A", format="%.2f"),
        "total_ms_b": number("Total ms B", format="%.2f"),
        "total_ms_ratio": number("Total B / A", format="%.2fx"),
        "throughput_ips_a": number("Images/s A", format="%.1f"),
        "throughput_ips_b": number("Images/s B", format="%.1f"),
        "throughput_ips_ratio": number("Images/s B / A", format="%.2fx"),
        "peak_share_a": st.column_config.TextColumn("% of peak A", help="Inference GFLOP/s over the machine's peak"),
        "peak_share_b": st.column_config.TextColumn("% of peak B", help="Inference GFLOP/s over the machine's peak"),
    },
)
ui.csv_download(compared.drop(columns=["label"]), f"compare-{run_a}-vs-{run_b}.csv", "Download the comparison as CSV")
