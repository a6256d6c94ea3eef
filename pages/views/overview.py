"""Overview: each machine's latest run as a leaderboard of runtime x precision."""

import streamlit as st

from dashboard import charts, data, ui
from dashboard.deletion import delete_button, show_deleted
from dashboard.jobs import quick_run_button
from engine import api

MACHINES_SHOWN = 3  # a few cards at a time: a fleet of 20 stacked 40 charts on one page

db, filters = ui.page_header(
    "Overview", "Each machine's latest run: where every runtime spends its time per image, fastest first."
)
show_deleted(db)
newest = data.latest_runs(db, filters)  # each machine's newest run with a completed result, newest first
if newest.empty:
    some = data.results_page(db, filters, 500, 0)[0]
    if some.empty:
        ui.empty_state(db, "the leaderboard")
        quick_run_button(db)
    else:
        st.warning("No result has completed yet. The failures are listed below; the Run page shows each run's log.")
        ui.failures(some)
    st.stop()

names = dict(zip(newest["machine_id"], api.told_apart(list(zip(newest["machine_id"], newest["machine_label"])))))
shown = ui.machines_shown(names, "overview_machines", MACHINES_SHOWN)
newest = newest[newest["machine_id"].isin(shown)]
summary = data.results(db, {**filters, "run_id": newest["run_id"].tolist()})
for run_row in newest.itertuples():
    machine_id, this_run = run_row.machine_id, summary[summary["run_id"] == run_row.run_id]
    rows = charts.completed(this_run)
    run = rows.iloc[0]
    status = api.status_and_reason(run_row.status, run_row.error)
    with st.container(border=True):
        st.subheader(f":material/computer: {names[machine_id]}")
        st.caption(
            f"Run `{run['run_id']}` started {ui.utc(run['started_at'])} · model "
            f"**{ui.model_and_weights(run['model'], run['weights_trained'])}** · "
            f"{run['imgsz']} px · {run['threads']} thread{'' if run['threads'] == 1 else 's'} · run "
            f"{status}"
        )
        delete_button(db, run["run_id"], int((summary["run_id"] == run["run_id"]).sum()))
        ui.weights_warning(rows["weights_trained"])
        batches = sorted(rows["batch"].unique().tolist())
        batch = batches[0]
        if len(batches) > 1:
            batch = st.segmented_control(
                "Batch size", batches, default=batches[0], key=f"batch-{machine_id}", required=True
            )
        shown = rows[rows["batch"] == batch]
        best, passed_over = charts.fastest(shown)
        # a row that wraps, each metric as wide as its value: in five fixed columns a 1100-1280 px window
        # cut 'onnxruntime:fp32' to 'onnxruntime:f…' and '7.26 ms' to '7.2…'
        metrics = st.container(horizontal=True, gap="medium")
        verdict = best.get("parity_verdict")
        metrics.metric(
            "Fastest",
            f"{best['runtime']}:{best['precision']}",
            f"{best['mode']} mode" + (f" · parity {verdict}" if isinstance(verdict, str) else ""),
            delta_color="off",
            delta_arrow="off",
            width="content",
            help="Lowest total per image among results whose detections did not fail parity",
        )
        metrics.metric(
            "Total per image",
            f"{best['total_ms']:.2f} ms",
            width="content",
            help="Median of pre-process + inference + post-process",
        )
        metrics.metric(
            "Images/s",
            f"{best['throughput_ips']:.0f}",
            width="content",
            help="1000 / total per image: one request at a time",
        )
        peak_share = ui.efficiency(shown.loc[[best.name]])["peak_share"].iloc[0]
        # too long for a metric: the reason goes below
        missing = peak_share in (ui.PEAK_MISSING, ui.GPU_PEAK_MISSING, ui.FLOPS_MISSING)
        value, _, kind = peak_share.partition(" of ")  # "40% of int8": the precision's own peak goes below too
        metrics.metric(
            "Its share of peak",
            "—" if missing else value,
            peak_share if missing else (f"of the {kind} peak" if kind else None),
            delta_color="off",
            delta_arrow="off",
            width="content",
            help="Its inference GFLOP/s over this machine's measured peak rate at its precision "
            "(fp32, or the bf16 / int8 rate where the CPU has one)",
        )
        judged = shown["stable"].notna()  # a result with too few samples for an interval is not judged
        metrics.metric(
            "Stable results",
            f"{int(shown['stable'].fillna(False).sum())} of {int(judged.sum())}",
            width="content",
            help=None
            if judged.all()
            else f"{int((~judged).sum())} result(s) had too few iterations (fewer than 6) to judge",
        )
        ui.leanest(shown)
        ui.passed_over(passed_over, among=shown)
        st.caption(ui.peak_words(rows))
        st.plotly_chart(charts.stage_bars(shown), key=f"stages-{machine_id}")
        ui.results_table(shown.sort_values("total_ms"), key=f"table-{machine_id}")
        ui.mode_costs(shown, key=f"modes-{machine_id}")
        judged = set(this_run[this_run["batch"] == batch]["result_id"])  # failed ones too: "stopped working"
        ui.regression_watch([v for v in data.regressions(db, {"machine_id": [machine_id]}) if v.result_id in judged])
        agreement = charts.speed_vs_agreement(shown)
        if agreement is not None:
            st.plotly_chart(agreement, key=f"agreement-{machine_id}")
        spread = charts.iteration_spread(shown, data.iteration_times(db, run["run_id"]))
        if spread is not None:
            st.plotly_chart(spread, key=f"iterations-{machine_id}")
        ui.failures(this_run)
