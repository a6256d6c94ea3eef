"""Compare: two runs side by side, with the ratio B / A per runtime x precision x batch x mode."""

import streamlit as st

from dashboard import charts, data, ui
from engine import api

KEYS = ["runtime", "precision", "batch", "mode"]
COMPARED = ["infer_ms", "total_ms", "throughput_ips"]
SETTINGS = {"model": "model", "imgsz": "image size", "threads": "threads"}


def keys(results) -> set[tuple]:
    return set(map(tuple, results[KEYS].itertuples(index=False)))


def named(key: tuple, with_mode: bool) -> str:
    runtime, precision, batch, mode = key
    return f"{runtime}:{precision} · b{batch}" + (f" · {mode}" if with_mode else "")


db, filters = ui.page_header("Compare two runs", "A is the baseline. A ratio B / A under 1 means B takes less time; "
                              "for images/s, over 1 means B is faster.")
runs = data.runs_with_results(db, {**filters, "status": "completed"})
ui.stop_when_empty(runs, db, "two runs to compare")
if len(runs) < 2:
    st.info("There is only one run here. Start another on the Run page (another runtime, precision or setting), "
            "then compare them.")
    st.page_link("pages/views/run.py", label="Go to the Run page", icon=":material/play_arrow:")
    st.stop()

column_a, column_b = st.columns(2)
with column_a:
    run_a = ui.pick_run(runs, "Run A (baseline)", key="compare_a", default_index=1, shared=False)
with column_b:
    run_b = ui.pick_run(runs, "Run B", key="compare_b", default_index=0, shared=False)

every_a, every_b = (data.results(db, {"run_id": run}) for run in (run_a, run_b))
results_a, results_b = (ui.with_efficiency(charts.completed(every)) for every in (every_a, every_b))
both = not results_a.empty and not results_b.empty
setting_changes = [f"{label}: {results_a[name].iloc[0]} → {results_b[name].iloc[0]}" for name, label in SETTINGS.items()
                   if both and results_a[name].iloc[0] != results_b[name].iloc[0]]
if both:  # a machine is its hardware fingerprint (machine_id); its label is only a name a run gave it
    (id_a, label_a), (id_b, label_b) = (tuple(map(str, every[["machine_id", "machine_label"]].iloc[0]))
                                        for every in (results_a, results_b))
    if id_a != id_b:  # two runners both labelled "ci" are still two machines
        setting_changes.insert(0, f"machine: {label_a} ({id_a[:8]}) → {label_b} ({id_b[:8]})" if label_a == label_b
                               else f"machine: {label_a} → {label_b}")
    elif label_a != label_b:
        st.caption(f"The same machine ({id_a[:12]}) under two labels: {label_a} → {label_b}.")
if setting_changes:
    st.warning("These runs differ in more than the runtimes: " + "; ".join(setting_changes))

# what the ratios leave out is named: a runtime that failed in B would otherwise just vanish from them
with_mode = len({key[3] for key in keys(results_a) | keys(results_b)}) > 1
failed = []
for name, mine, other, theirs, their_every in (("A", results_a, "B", results_b, every_b),
                                               ("B", results_b, "A", results_a, every_a)):
    missing = sorted(keys(mine) - keys(theirs))
    failed_there = keys(their_every) - keys(theirs)
    failed += [f"{named(key, with_mode)} failed in run {other}" for key in missing if key in failed_there]
    alone = [named(key, with_mode) for key in missing if key not in failed_there]
    if alone:
        st.caption(f"Only in run {name}, so not compared: {', '.join(alone)}.")
if failed:
    st.warning("Not compared: " + "; ".join(failed) + ".")

shown = KEYS + COMPARED + ["peak_share", "parity_verdict"]
compared = results_a[shown].merge(results_b[shown], on=KEYS, suffixes=("_a", "_b"))
if compared.empty:
    st.info("These two runs share no runtime x precision x batch that completed in both. Pick runs that measured "
            "the same runtimes.")
    st.stop()
# faster means little if the detections changed: a library upgrade that breaks an export keeps its speed
worse = [f"{named(tuple(row[KEYS]), with_mode)} {row['parity_verdict_a']} → {row['parity_verdict_b']}"
         for _, row in compared.iterrows() if api.parity_got_worse(row["parity_verdict_a"], row["parity_verdict_b"])]
if worse:
    st.error("Detections changed: parity is worse in run B for " + "; ".join(worse) + ".", icon=":material/rule:")
for metric in COMPARED:
    compared[f"{metric}_ratio"] = compared[f"{metric}_b"] / compared[f"{metric}_a"]
compared["label"] = compared["runtime"] + ":" + compared["precision"] + " · b" + compared["batch"].astype(str)
if compared["mode"].nunique() > 1:
    compared["label"] += " · " + compared["mode"]

metric = st.segmented_control("Ratio of", COMPARED, format_func=charts.METRICS.get, default="infer_ms",
                              key="compare_metric", required=True)
st.plotly_chart(charts.ratio_bars(compared, metric), key="ratio_chart")
number = st.column_config.NumberColumn
st.dataframe(compared, hide_index=True, key="compare_table", column_order=[
    "runtime", "precision", "batch", "mode", "parity_verdict_a", "parity_verdict_b", "infer_ms_a", "infer_ms_b",
    "infer_ms_ratio", "total_ms_a", "total_ms_b", "total_ms_ratio", "throughput_ips_a", "throughput_ips_b",
    "throughput_ips_ratio", "peak_share_a", "peak_share_b"], column_config={
    "runtime": "Runtime", "precision": "Precision", "batch": "Batch", "mode": "Mode",
    "parity_verdict_a": "Parity A", "parity_verdict_b": "Parity B",
    "infer_ms_a": number("Infer ms A", format="%.2f"), "infer_ms_b": number("Infer ms B", format="%.2f"),
    "infer_ms_ratio": number("Infer B / A", format="%.2fx"), "total_ms_a": number("Total ms A", format="%.2f"),
    "total_ms_b": number("Total ms B", format="%.2f"), "total_ms_ratio": number("Total B / A", format="%.2fx"),
    "throughput_ips_a": number("Images/s A", format="%.1f"), "throughput_ips_b": number("Images/s B", format="%.1f"),
    "throughput_ips_ratio": number("Images/s B / A", format="%.2fx"),
    "peak_share_a": st.column_config.TextColumn("% of peak A", help="Inference GFLOP/s over the machine's peak"),
    "peak_share_b": st.column_config.TextColumn("% of peak B", help="Inference GFLOP/s over the machine's peak")})
ui.csv_download(compared.drop(columns=["label"]), f"compare-{run_a}-vs-{run_b}.csv", "Download the comparison as CSV")
