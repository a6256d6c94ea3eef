"""Profiles: why one runtime is slower than another, module by module: each runtime's own profiler, charged to the
model's modules (`run --profile N` takes them)."""

import streamlit as st

from dashboard import charts, data, ui
from engine.profiles import module_table, totals_by

db, filters = ui.page_header(
    "Profiles",
    "Each runtime's own profiler, charged to the model's modules (model.0 to model.22) with their type and stage: "
    "which block runs slowly on which runtime. Runs take profiles with `--profile N` or the Run page's checkbox.",
)
runs = data.runs_with_results(db, {**filters, "status": "completed"}, ui.named_runs("run_picker"))
ui.stop_when_empty(runs, db, "profiles")
run_id = ui.pick_run(runs)
settings = data.profile_settings(db, run_id)
if settings.empty:
    st.info(
        "This run took no profiles. Start one with `python -m engine run --profile 10` (or tick **Profile** on "
        "the Run page); profiling runs after the measurement and changes none of its figures."
    )
    st.stop()
rows = data.profiles(db, run_id)
summary = ui.profile_summary(settings, rows)
st.dataframe(summary, hide_index=True, key="profile_summary", placeholder=ui.MISSING)
if rows.empty:
    st.info("No runtime of this run offers a profile; the table above says why for each.")
    st.stop()
by_stage, by_type = st.columns(2)
by_stage.plotly_chart(charts.profile_bars(totals_by(rows, "stage"), "stage"), key="profile_stages")
by_type.plotly_chart(charts.profile_bars(totals_by(rows, "module_type"), "module type"), key="profile_types")

st.subheader("Module by module")
st.caption("Each runtime's ms per call on each module, and its ratio to the fastest runtime on that module.")
table = module_table(rows)
st.dataframe(
    table,
    hide_index=True,
    key="profile_modules",
    column_config={
        column: st.column_config.NumberColumn(format="%.2fx" if column.endswith("fastest") else "%.3f")
        for column in table.columns
        if column not in ("module", "module_type", "stage")
    },
)
st.subheader("The op types that take the time")
st.caption("Each runtime's own names: a reorder or layout conversion shows here under its runtime's name for it.")
op_types = totals_by(rows, "op_type")
for column, variant in zip(st.columns(min(4, len(op_types.columns))) * len(op_types.columns), op_types.columns):
    top = op_types[variant].sort_values(ascending=False).head(5)
    column.markdown(f"**{variant}**  \n" + "  \n".join(f"{name}: {ms:.2f} ms" for name, ms in top.items()))
