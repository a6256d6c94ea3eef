"""Recommend: what to ship under a budget, from the stored results alone: the pick and why, the Pareto front, and
why each other configuration is out. The URL carries the question."""

import math

import streamlit as st

from dashboard import charts, data, ui
from engine.machine import told_apart
from engine.recommend import PARITY_RULES, Budget

EVERY_MACHINE = "every"

db, filters = ui.page_header(
    "Recommend",
    "What to ship under your budget, from the stored results: the fastest configuration that meets every limit, "
    "what no other beats (the Pareto front), and why each other one is out. Nothing is measured here.",
)
newest = data.latest_runs(db, filters)
ui.stop_when_empty(newest, db, "recommendations")

names = dict(zip(newest["machine_id"], told_apart(list(zip(newest["machine_id"], newest["machine_label"])))))
machine_column, model_column = st.columns(2)
machine = machine_column.selectbox(
    "Machine",
    [EVERY_MACHINE, *names],
    index=1,
    format_func=lambda value: "Every machine" if value == EVERY_MACHINE else names[value],
    key="recommend_machine",
    bind="query-params",
)
scope = {**filters} if machine == EVERY_MACHINE else {**filters, "machine_id": [machine]}
models = list(dict.fromkeys(data.latest_runs(db, scope, True)["model"]))  # newest first
model = model_column.selectbox("Model", models, key="recommend_model", bind="query-params")
rows = data.recommend_candidates(db, {**scope, "model": [model]})


def top(values, step: float) -> float:
    """A slider's right end: just above the largest value, where it means no limit."""
    found = [v for v in values if v == v and v is not None]
    return max(step, math.ceil(max(found, default=step) * 1.1 / step) * step)


def limit(label: str, values, step: float, key: str, lower_is_open: bool = False) -> float | None:
    """A slider whose open end (right, or left for a floor) means no limit."""
    end, start = top(values, step), 0.0 if lower_is_open else step  # a ceiling of 0 is no budget anything meets
    value = st.slider(label, start, end, start if lower_is_open else end, step, key=key, bind="query-params")
    return None if value == (start if lower_is_open else end) else value


p99_per_call = rows["total_p99_ms"] * rows["batch"]
images_per_s = rows[["throughput_ips", "in_flight_ips"]].max(axis=1)
left, middle, right = st.columns(3)
with left:
    max_p99 = limit("p99 per call at most (ms)", p99_per_call, 1.0, "recommend_p99")
    min_ips = limit("Images/s at least", images_per_s, 1.0, "recommend_ips", lower_is_open=True)
with middle:
    max_memory = limit("Peak memory at most (MB)", rows["peak_memory_mb"], 10.0, "recommend_memory")
    max_model = limit("Model file at most (MB)", rows["model_mb"], 1.0, "recommend_model_mb")
with right:
    parity = st.segmented_control(
        "Parity", PARITY_RULES, default="pass", key="recommend_parity", required=True, bind="query-params",
        format_func={"pass": "must pass", "drift": "drift allowed", "any": "anything"}.get,
    )  # fmt: skip
    precisions = st.multiselect(
        "Precisions", sorted(rows["precision"].unique()), key="recommend_precisions", placeholder="All precisions",
        bind="query-params",
    )  # fmt: skip
    gpu = st.toggle("GPU results may be picked", key="recommend_gpu", bind="query-params")
st.caption("A slider at its open end sets no limit. p99 is per call: a batch of N waits for its last image.")

budget = Budget(max_p99, min_ips, parity, max_memory, max_model, tuple(precisions), gpu)
recommendation, _ = data.recommendation(db, budget, None if machine == EVERY_MACHINE else machine, model)
if recommendation.pick:
    st.success(f"**Ship** {recommendation.reason}", icon=":material/recommend:")
else:
    st.warning(recommendation.reason[:1].upper() + recommendation.reason[1:], icon=":material/block:")
if recommendation.tie_within_noise:
    st.info("A tie within noise: measure both again with more iterations before you choose.", icon=":material/balance:")
st.caption(f"Evidence: {recommendation.evidence}.")
st.plotly_chart(charts.recommend_scatter(recommendation), key="recommend_chart")

st.subheader("The Pareto front")
st.caption("No other configuration is better on p99, images/s, parity and peak memory together.")
out = {r.candidate.result_id for r in recommendation.rejected}
front = [
    {"configuration": c.name, "fits": "no" if c.result_id in out else "yes", "total ms/image": c.total_ms,
     "p99 ms/call": c.p99_ms, "images/s": c.images_per_s, "parity": c.parity_verdict or ui.MISSING,
     "peak MB": c.peak_memory_mb, "run": c.run_id}
    for c in recommendation.front
]  # fmt: skip
decimals = {
    column: st.column_config.NumberColumn(format="%.1f")
    for column in ("total ms/image", "p99 ms/call", "images/s", "peak MB")
}
st.dataframe(front, hide_index=True, key="recommend_front", placeholder=ui.MISSING, column_config=decimals)
if recommendation.rejected:
    st.subheader(f"Out of the budget ({len(recommendation.rejected)})")
    st.dataframe(
        [{"configuration": r.candidate.name, "why": "; ".join(r.broke)} for r in recommendation.rejected],
        hide_index=True, key="recommend_rejected",
    )  # fmt: skip
