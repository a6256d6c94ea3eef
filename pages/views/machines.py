"""Machines: each machine's fingerprint, how many runs it made, first and last seen."""

import pandas as pd
import streamlit as st

from dashboard import data, ui
from dashboard.cache_panel import show_cache
from dashboard.charts import fastest_per_machine
from dashboard.deletion import deleted_runs_list, show_deleted
from dashboard.jobs import save_upload
from engine import api

MACHINES_SHOWN = 6  # cards at a time, those that ran last first; the table below lists every machine

db, filters = ui.page_header(
    "Machines", "Every machine that wrote to this database, identified by a hash of its hardware."
)
show_deleted(db)
with st.expander("Import run bundles from other machines", icon=":material/move_to_inbox:"):
    st.caption(
        "A bundle is a zip written by `python -m engine bundle`, `run --bundle`, or the Share page. "
        "Importing one twice adds nothing."
    )
    bundles = st.file_uploader("Bundles", type=["zip"], accept_multiple_files=True, key="bundle_uploads")
    if st.button("Import", disabled=not bundles, key="import_bundles"):
        for upload in bundles:  # each on its own: one refused bundle does not stop the others
            with ui.errors_as_messages():
                st.success(f"{upload.name}: {api.import_bundle(db, save_upload(upload), name=upload.name)}")
deleted_runs_list(db)
show_cache()

machines = data.machines(db)
ui.stop_when_empty(machines, db, "the machines that ran benchmarks")
chosen = filters.get("machine_id")
if chosen:
    machines = machines[machines["machine_id"].isin(chosen)]

# "vm (30c5d48e)" where labels repeat
names = dict(zip(machines["machine_id"], api.told_apart(list(zip(machines["machine_id"], machines["label"])))))
shown = ui.machines_shown(names, "machines_shown", MACHINES_SHOWN)
for machine in machines[machines["machine_id"].isin(shown)].itertuples():
    name = names[machine.machine_id]
    with st.container(border=True):
        st.subheader(f":material/computer: {name}")
        cpu = f"{machine.cpu_model} ({machine.cpu_id})" if isinstance(machine.cpu_id, str) else machine.cpu_model
        st.caption(f"machine id `{machine.machine_id}` · {cpu} · {machine.arch} · {machine.os}")
        other_labels = [label for label in ui.as_list(machine.run_labels) if label != machine.label]
        if other_labels:
            st.caption(
                f"Its runs also carry the label(s) {', '.join(f'**{label}**' for label in other_labels)} "
                "(`--label`; History and the fastest-machine table name a machine by its runs' label)."
            )
        cores, memory, runs = st.columns(3)
        cores.metric(
            "Cores",
            f"{machine.physical_cores} physical",
            f"{machine.logical_cores} logical",
            delta_color="off",
            delta_arrow="off",
        )
        memory.metric("Memory", f"{machine.ram_gb} GiB")
        runs.metric("Runs", int(machine.runs))
        st.markdown(
            f"**First seen:** {ui.utc(machine.first_run) or ui.utc(machine.first_seen)} · "
            f"**last seen:** {ui.utc(machine.last_run) or 'no run stored'}  \n"
            f"**Instruction sets:** {', '.join(ui.as_list(machine.isa_flags)) or 'none recorded'}  \n"
            f"**GPUs:** {', '.join(ui.as_list(machine.gpus)) or 'none'} · **Python:** {machine.python}"
        )
        with st.expander("Full fingerprint"):
            st.json(api.json_column(machine.fingerprint))

st.subheader("Fastest machine and runtime for a model")
done = data.fastest_candidates(db, filters)  # the rows the pick is made from, not every result
if done.empty:
    st.caption("No completed result yet.")
else:
    models = sorted(done["model"].unique())
    model = st.selectbox("Model", models, key="fastest_model")
    of_model = done[done["model"] == model]
    # a smaller input is faster, not better: results are compared at one image size
    sizes = of_model.groupby("imgsz")["results_at_size"].first().sort_values(ascending=False, kind="stable")
    imgsz = int(sizes.index[0])  # the size with the most results
    if len(sizes) > 1:
        imgsz = st.segmented_control(
            "Image size",
            sorted(int(size) for size in sizes.index),
            default=imgsz,
            key=f"fastest_imgsz-{model}",
            required=True,
            format_func=lambda size: f"{size} px",
        )
    at_size = of_model[of_model["imgsz"] == imgsz]
    best, passed_over = fastest_per_machine(at_size)
    winner = best.iloc[0]
    interval = (
        "no 95% interval: too few iterations"
        if pd.isna(winner["infer_ci_low_ms"])
        else f"inference 95% interval {winner['infer_ci_low_ms']:.2f} to {winner['infer_ci_high_ms']:.2f} ms"
    )
    st.markdown(
        f"**{winner['machine_label']}** with **{winner['runtime']}:{winner['precision']}** at batch "
        f"{winner['batch']}, {imgsz} px: **{winner['total_ms']:.2f} ms** per image ({interval}, "
        f"{winner['iterations']} iterations, run `{winner['run_id']}` of {ui.utc(winner['started_at'])})."
    )
    ui.passed_over(passed_over, among=at_size)
    st.dataframe(
        best,
        hide_index=True,
        key="fastest_table",
        placeholder=ui.MISSING,
        column_order=[
            "machine_label",
            "runtime",
            "precision",
            "batch",
            "mode",
            "imgsz",
            "total_ms",
            "parity_verdict",
            "infer_ms",
            "infer_ci_low_ms",
            "infer_ci_high_ms",
            "throughput_ips",
            "iterations",
            "started_at",
            "run_id",
        ],
        column_config={
            "machine_label": "Machine",
            "runtime": "Runtime",
            "precision": "Precision",
            "batch": "Batch",
            "mode": "Mode",
            "parity_verdict": "Parity",
            "imgsz": "Image size",
            "total_ms": st.column_config.NumberColumn("Total ms", format="%.2f"),
            "infer_ms": st.column_config.NumberColumn("Infer ms", format="%.2f"),
            "infer_ci_low_ms": st.column_config.NumberColumn("Infer CI low", format="%.2f"),
            "infer_ci_high_ms": st.column_config.NumberColumn("Infer CI high", format="%.2f"),
            "throughput_ips": st.column_config.NumberColumn("Images/s", format="%.1f"),
            "iterations": "Iterations",
            "started_at": "Started",
            "run_id": "Run",
        },
    )

table = machines.drop(columns=["fingerprint"])
table.insert(table.columns.get_loc("cpu_model") + 1, "cpu_id", table.pop("cpu_id"))
st.dataframe(
    table,
    hide_index=True,
    key="machines_table",
    placeholder=ui.MISSING,
    column_config={
        "machine_id": "Machine id",
        "label": "Label",
        "cpu_model": "CPU",
        "cpu_id": "CPU id",
        "arch": "Arch",
        "physical_cores": "Cores",
        "logical_cores": "Threads",
        "ram_gb": "RAM GiB",
        "isa_flags": "Instruction sets",
        "gpus": "GPUs",
        "os": "OS",
        "python": "Python",
        "first_seen": "First seen",
        "runs": "Runs",
        "run_labels": "Labels of its runs",
        "first_run": "First run",
        "last_run": "Last run",
    },
)
ui.csv_download(table, "machines.csv", "Download machines as CSV")
