"""Streamlit pieces every page uses: the shared sidebar, the run picker, empty states and error display."""

from __future__ import annotations

import json
import traceback
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from dashboard import charts, data
from engine import api, database, models
from engine.api import BenchError, told_apart
from engine.paths import DB_ENV, DEFAULT_DB, default_db

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


def current_db() -> str:
    return (st.session_state.get("db_path") or default_db()).strip()


def model_and_weights(model: str, trained) -> str:
    """The model's name with its weights named once (see engine.models.model_and_weights); NA = unknown."""
    return models.model_and_weights(model, None if pd.isna(trained) else bool(trained))


def current_filters() -> dict:
    """The sidebar's machine and model choices as engine.api filters; empty choices mean everything."""
    filters = {"machine_id": st.session_state.get("machine_filter"), "model": st.session_state.get("model_filter")}
    return {key: list(values) for key, values in filters.items() if values}


def _keep_known(key: str, options: list) -> None:
    """A database switch can remove options a multiselect still holds; drop those instead of failing."""
    if key in st.session_state:
        st.session_state[key] = [value for value in st.session_state[key] if value in options]


def sidebar() -> None:
    st.session_state.setdefault("db_path", default_db())
    with st.sidebar:
        st.text_input(
            "Results database",
            key="db_path",
            help="A DuckDB file written by the engine, or a fleet's "
            f"shared store ({database.SCHEME}://USER@HOST:PORT/DBNAME?data_path=/shared/folder). "
            f"The default comes from ${DB_ENV}, else {DEFAULT_DB} in the working folder.",
        )
        db = current_db()
        with errors_as_messages():
            if database.is_shared(db):
                st.caption(f"Shared store (DuckLake): `{database.display(db)}`")
            if not database.exists(db):
                st.caption("No database there yet: the first run creates it.")
                return
            machines = data.machines(db)
            labels = dict(
                zip(
                    machines["machine_id"],
                    told_apart([(row.machine_id, f"{row.label} · {row.cpu_model}") for row in machines.itertuples()]),
                )
            )
            _keep_known("machine_filter", list(labels))
            st.multiselect(
                "Machines",
                list(labels),
                format_func=lambda machine_id: labels[machine_id],
                key="machine_filter",
                placeholder="All machines",
            )
            models = data.run_models(db) if labels else []
            _keep_known("model_filter", models)
            st.multiselect("Models", models, key="model_filter", placeholder="All models")


@contextmanager
def errors_as_messages():
    """A page (or a part of one) that fails shows a message, never a traceback; the rest still renders."""
    try:
        yield
    except BenchError as error:
        st.error(str(error))
    except Exception as error:  # noqa: BLE001 - the dashboard must outlive any one failure
        traceback.print_exc()
        st.error(f"Something went wrong here: {type(error).__name__}: {error}. The server log has the details.")


def empty_state(db: str, what: str) -> None:
    """Tells the user why the page is empty and where to go next."""
    if not database.exists(db):
        st.info(
            f"There is no results database at `{db}` yet. Start a benchmark on the **Run** page "
            f"(or `python -m engine run --db {db}` in a terminal); {what} will appear here."
        )
    elif current_filters():
        st.info(f"No results match the machines and models chosen in the sidebar. Clear those filters to see {what}.")
    elif kept := len(api.deleted_runs(db)):  # a user who deleted the only run and left the page finds it again
        st.info(
            f"`{database.display(db)}` holds no results: its {kept} run(s) were deleted, and their bundles are "
            f"kept. Restore them on the **Machines** page, or start a benchmark on the **Run** page; {what} "
            "will appear here."
        )
        st.page_link("pages/views/machines.py", label="Go to the Machines page", icon=":material/restore:")
    else:
        st.info(
            f"`{database.display(db)}` holds no results yet. Start a benchmark on the **Run** page; {what} "
            "will appear here."
        )
    st.page_link("pages/views/run.py", label="Go to the Run page", icon=":material/play_arrow:")


def run_label(run: pd.Series) -> str:
    """What tells runs apart, first (a half-width selectbox cuts the rest): when, where, what model at what size;
    the status only when it is not "completed"."""
    status = "" if run["status"] == "completed" else f" · {run['status']}"
    return (
        f"{run['started_at']:%Y-%m-%d %H:%M:%S} · {run['machine_label']} · {run['model']} · {run['imgsz']} px"
        f"{status} · {run['run_id']}"
    )


def machines_shown(names: dict[str, str], key: str, shown: int = 3) -> list[str]:
    """A few machines at a time, those that ran last first (names: machine id -> name, in that order), and a
    picker for the rest; the URL carries the choice."""
    if len(names) <= shown:
        return list(names)
    return st.multiselect(
        f"Machines shown, of {len(names)} (those that ran last come first)",
        list(names),
        default=list(names)[:shown],
        format_func=names.get,
        key=key,
        bind="query-params",
    )


def named_runs(*keys: str) -> tuple:
    """The runs a page's pickers must offer even when older than the newest it lists: a link's, the one picked
    before on any page, and those the given picker keys hold."""
    return (st.query_params.get("run"), st.session_state.get("selected_run"), *(st.session_state.get(k) for k in keys))


def pick_run(
    runs: pd.DataFrame, label: str = "Run", key: str = "run_picker", default_index: int = 0, shared: bool = True
) -> str:
    """A run chooser; with shared=True the choice follows the user across pages and into the URL (?run=)."""
    options = runs["run_id"].tolist()
    labels = {run["run_id"]: run_label(run) for _, run in runs.iterrows()}
    if st.session_state.get(key) not in options:
        linked = st.query_params.get("run") if shared else None
        wanted = (linked or st.session_state.get("selected_run")) if shared else None
        st.session_state[key] = wanted if wanted in options else options[min(default_index, len(options) - 1)]
        if linked and linked not in options:  # a shared link to a run since deleted, or in another database
            st.info(
                f"Run `{linked}` from the link is not among these runs (deleted, in another database, or "
                "outside the sidebar's filters); showing another.",
                icon=":material/link_off:",
            )
    chosen = st.selectbox(label, options, format_func=labels.get, key=key)
    if runs["matching"].iloc[0] > len(runs):
        st.caption(f"The newest {len(runs)} of {runs['matching'].iloc[0]} runs; pick older ones in History's table.")
    if shared:
        st.session_state["selected_run"] = chosen
        st.query_params["run"] = chosen
    return chosen


def weights_warning(trained_values) -> None:
    """Says plainly when timings come from a model whose boxes mean nothing."""
    values = {None if pd.isna(value) else bool(value) for value in trained_values}
    if False in values:
        st.warning(
            "These results come from **untrained weights** (random or synthetic weights of the architecture, "
            "such as the offline fallback when the trained checkpoint cannot be downloaded). Timings are "
            "representative of the architecture; boxes and scores mean nothing.",
            icon=":material/warning:",
        )
    elif None in values:
        st.info("Whether these weights are trained is unknown (an ONNX file given directly).")


def csv_download(frame: pd.DataFrame, file_name: str, label: str = "Download CSV", key: str | None = None) -> None:
    st.download_button(
        label,
        frame.to_csv(index=False).encode(),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=key or f"csv-{file_name}",
        on_click="ignore",
    )


def csv_download_later(read, file_name: str, label: str) -> None:
    """A CSV download whose rows are read only when it is clicked: a fleet's whole history is too much to read and
    write out at every rerun."""
    st.download_button(
        label,
        lambda: read().to_csv(index=False).encode(),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        key=f"csv-{file_name}",
        on_click="ignore",
    )


def utc(value) -> str:
    return "" if pd.isna(value) else f"{pd.Timestamp(value):{TIME_FORMAT}}"


RESULT_COLUMNS = {
    "runtime": st.column_config.TextColumn("Runtime"),
    "precision": st.column_config.TextColumn("Precision"),
    "batch": st.column_config.NumberColumn("Batch"),
    "mode": st.column_config.TextColumn(
        "Mode", help="lean: the engine's own pipeline; ultralytics: the same model file through Ultralytics' predictor"
    ),
    "pre_ms": st.column_config.NumberColumn("Pre ms", format="%.2f"),
    "infer_ms": st.column_config.NumberColumn("Infer ms", format="%.2f"),
    "post_ms": st.column_config.NumberColumn("Post ms", format="%.2f"),
    "total_ms": st.column_config.NumberColumn("Total ms", format="%.2f"),
    "throughput_ips": st.column_config.NumberColumn(
        "Images/s", format="%.1f", help="One request at a time: 1000 / total ms"
    ),
    # whether the fast one is still right, beside its speed: last, it was off screen in a 1280 px window
    "parity_verdict": st.column_config.TextColumn(
        "Parity", help="Outputs against the reference runtime: pass, drift (works, not identically) or fail"
    ),
    "map50": st.column_config.NumberColumn("mAP50", format="%.3f", help="On the labelled data given to the run"),
    "in_flight_ips": st.column_config.NumberColumn(
        "Images/s in flight",
        format="%.1f",
        help="End to end (preprocess, inference, postprocess of "
        "decoded frames) with several batches in flight (run "
        "with --in-flight N); inference alone where an older "
        "engine measured it",
    ),
    "in_flight": st.column_config.NumberColumn("In flight", help="Requests in flight for the figure before"),
    "peak_memory_mb": st.column_config.NumberColumn(
        "Peak MB",
        format="%.0f",
        help="The worker process's peak "
        "resident memory (host RAM) for this batch size: Python, the "
        "runtime and the model over load, warm-up and measurement",
    ),
    "model_mb": st.column_config.NumberColumn(
        "Model MB",
        format="%.1f",
        help="The model's size on disk as "
        "this runtime loads it: the .onnx, OpenVINO's .xml + .bin, the "
        "SavedModel folder, the .tflite...",
    ),
    "infer_p99_ms": st.column_config.NumberColumn(
        "Infer p99 ms", format="%.2f", help="Meaningful with about 300 iterations or more"
    ),
    "stability": st.column_config.TextColumn(
        "Stability", help="Coefficient of variation of inference; above 10% the result is flagged unstable"
    ),
    "achieved_gflops": st.column_config.NumberColumn(
        "GFLOP/s", format="%.1f", help="The model's GFLOPs per image over the inference median"
    ),
    "peak_share": st.column_config.TextColumn(
        "% of peak",
        help="Achieved GFLOP/s over this machine's measured "
        "peak rate at the result's thread count and precision: fp32, or "
        "the bf16 / int8 dot-product rate where the CPU has one (named; AMX's tile "
        "rate where the CPU has AMX)",
    ),
    "floor": st.column_config.TextColumn(
        "Floor ms",
        help="The inference time the model's GFLOPs would take at "
        "the machine's peak rate: the least any runtime could reach",
    ),
    "iterations": st.column_config.NumberColumn("Iterations"),
}
# shown only when some result has them (peak memory: results from schema v8 on; model size from v9)
OPTIONAL_COLUMNS = ("parity_verdict", "map50", "in_flight_ips", "in_flight", "peak_memory_mb", "model_mb")
MISSING = "—"  # a table's empty cell (Streamlit's own is a grey "None"), as the stability column says it
PEAK_MISSING = "peak not measured"
GPU_PEAK_MISSING = "no GPU peak measured"  # the machine's measured peaks are its CPU's
FLOPS_MISSING = "model FLOPs unknown"


def some_of(names: list[str], shown: int = 6) -> str:
    """'a, b, c' or, past `shown` names, 'a, b, c, d, e, f and 29 more'."""
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def efficiency(results: pd.DataFrame) -> pd.DataFrame:
    """Share of the measured peak and floor time as text; where a figure is missing, why, never a guess."""
    kinds = results["peak_kind"] if "peak_kind" in results else pd.Series("fp32", index=results.index)

    def text(values, form: str) -> list[str]:
        return [
            (GPU_PEAK_MISSING if kind == "gpu" else PEAK_MISSING)
            if pd.isna(peak)
            else FLOPS_MISSING
            if pd.isna(value)
            else form.format(value)
            for peak, value, kind in zip(results["peak_gflops"], values, kinds)
        ]

    share = text(results["peak_fraction"], "{:.0%}")
    # a bf16 or int8 result set against that precision's own peak says so
    share = [
        f"{value} of {kind}" if kind in ("bf16", "int8") and value.endswith("%") else value
        for value, kind in zip(share, kinds)
    ]
    return pd.DataFrame({"peak_share": share, "floor": text(results["floor_ms"], "{:.1f}")}, index=results.index)


def peak_words(results: pd.DataFrame) -> str:
    """The measured peak behind a run's efficiency figures, or that there is none."""
    measured = results.dropna(subset=["peak_gflops"])
    if measured.empty and "peak_kind" in results and (results["peak_kind"] == "gpu").all():
        return (
            "Efficiency: no GPU peak is measured (`python -m engine peak` measures the CPU's), so GPU results "
            "show their achieved GFLOP/s only."
        )
    if measured.empty:
        return f"Efficiency: {PEAK_MISSING} on this machine (`python -m engine peak --store` measures it)."
    measured = measured.assign(kind=measured.get("peak_kind", "fp32"))
    rates = ", ".join(
        f"{row.kind} {row.peak_gflops:.0f} {'GOP/s' if row.kind == 'int8' else 'GFLOP/s'} on {row.threads} thread(s)"
        for row in measured.drop_duplicates(["kind", "threads"]).itertuples()
    )
    gflops = results["model_gflops"].iloc[0]
    need = "its FLOPs are unknown" if pd.isna(gflops) else f"it needs {gflops:.2f} GFLOPs per image"
    return f"Efficiency: this machine's measured peak rates: {rates}; the model: {need}."


def with_efficiency(results: pd.DataFrame) -> pd.DataFrame:
    """The rows plus efficiency()'s text columns peak_share and floor."""
    return results.assign(**efficiency(results))


def results_table(
    results: pd.DataFrame, extra: dict | None = None, key: str | None = None, selectable: bool = False
) -> pd.Series | None:
    """Results with their mode, stage medians, throughput, efficiency, stability flag, and parity and mAP where
    measured; selectable: one row can be picked, and is returned."""
    shown = with_efficiency(results).assign(stability=charts.stability(results))
    columns = {**(extra or {}), **RESULT_COLUMNS}
    for column in OPTIONAL_COLUMNS:
        if column not in shown or shown[column].isna().all():
            columns.pop(column)
    picking = {"on_select": "rerun", "selection_mode": "single-row"} if selectable else {}
    event = st.dataframe(
        shown,
        column_order=list(columns),
        column_config=columns,
        hide_index=True,
        key=key,
        placeholder=MISSING,
        **picking,
    )
    rows = event.selection.rows if selectable else []
    return shown.iloc[rows[0]] if rows else None


MODE_COST_COLUMNS = {
    "runtime": st.column_config.TextColumn("Runtime"),
    "precision": st.column_config.TextColumn("Precision"),
    "batch": st.column_config.NumberColumn("Batch"),
    "lean_ms": st.column_config.NumberColumn("Lean ms", format="%.2f", help="The engine's own pipeline"),
    "ultralytics_ms": st.column_config.NumberColumn(
        "Ultralytics ms", format="%.2f", help="The same model through Ultralytics' predictor"
    ),
    "added_ms": st.column_config.NumberColumn("Added ms", format="%+.2f", help="Ultralytics ms - lean ms"),
    "ratio": st.column_config.NumberColumn("Ultralytics / lean", format="%.2fx"),
    "added_mb": st.column_config.NumberColumn(
        "Added peak MB",
        format="%+.0f",
        help="Ultralytics' worker's peak resident memory - lean's: the predictor imports PyTorch",
    ),
}


def mode_costs(results: pd.DataFrame, key: str | None = None) -> None:
    """What Ultralytics' predictor costs next to the lean pipeline, where results ran in both modes."""
    costs = charts.mode_costs(results)
    if costs.empty:
        return
    st.markdown("**What Ultralytics' predictor adds**")
    st.caption(
        "The same exported model in both pipeline modes (`--modes lean,ultralytics`, or both on the Run "
        "page): end-to-end medians "
        "per image, decoded frame to final boxes, and the peak memory it adds to the worker. Ultralytics "
        "keeps its own threads and pre/post-processing; both get the same square input and precision."
    )
    shown = [column for column in MODE_COST_COLUMNS if column != "added_mb" or costs[column].notna().any()]
    st.dataframe(
        costs, column_order=shown, column_config=MODE_COST_COLUMNS, hide_index=True, key=key, placeholder=MISSING
    )


def failures(results: pd.DataFrame) -> None:
    """Failed results with their reasons, and completed ones whose in-flight figure could not be measured."""
    failed = results[results["status"] != "completed"]
    if not failed.empty:
        with st.expander(f"{len(failed)} result(s) failed", icon=":material/error:"):
            for row in failed.itertuples():
                st.error(f"**{row.runtime}:{row.precision} batch {row.batch}**: {row.error}")
    if "in_flight" not in results:
        return
    no_figure = results[
        (results["status"] == "completed") & results["in_flight"].notna() & results["in_flight_ips"].isna()
    ]
    for row in no_figure.itertuples():
        reason = json.loads(row.settings or "{}").get("in_flight", {}).get("error", "no reason recorded")
        st.warning(
            f"**{row.runtime}:{row.precision} batch {row.batch}** has no figure with {row.in_flight:.0f} "
            f"requests in flight: {reason}. Its one-at-a-time figures are measured and kept."
        )
    measured = results[(results["status"] == "completed") & results["in_flight_ips"].notna()]
    for row in measured.itertuples():
        boxes = json.loads(row.settings or "{}").get("in_flight", {}).get("boxes") or {}
        if not boxes.get("same_as_one_at_a_time", True):
            st.warning(
                f"**{row.runtime}:{row.precision} batch {row.batch}** with {row.in_flight:.0f} requests in "
                f"flight did not find the boxes it finds one at a time ({boxes.get('difference')}): its "
                f"images/s in flight are not those of the same pipeline."
            )


def leanest(results: pd.DataFrame) -> None:
    """Beside the fastest: the smallest model on disk and the least memory, among results whose parity did not
    fail. Deploying to a phone or a small box is decided on those too."""
    parts = [f"{what}: **{name}** ({value})" for what, name, value in charts.leanest(results, charts.variant(results))]
    if parts:
        line = " · ".join(parts)
        st.caption(f"{line[0].upper()}{line[1:]}, among results whose detections did not fail parity.")


def passed_over(results: pd.DataFrame, among: pd.DataFrame) -> None:
    """The faster results `charts.fastest` did not name fastest, each with the reason its parity failed; named as
    among the rows they were picked from (with their mode where those mix modes)."""
    if results.empty:
        return
    names = charts.variant_batch(among).loc[results.index]
    if among["machine_label"].nunique() > 1:
        names = results["machine_label"] + " · " + names
    lines = [
        f"- **{name}**, {row.total_ms:.2f} ms: {row.parity_reason}" for name, row in zip(names, results.itertuples())
    ]
    st.warning(
        f"Faster, but not named fastest: {'its' if len(results) == 1 else 'their'} detections failed "
        "parity with the reference.\n" + "\n".join(lines),
        icon=":material/rule:",
    )


def as_list(values) -> list:
    """A DuckDB list column arrives as a numpy array, or None (NA where an aggregate over no rows made it)."""
    return [] if values is None or values is pd.NA else list(values)


def page_header(title: str, caption: str) -> tuple[str, dict]:
    """A page's title and caption; returns the sidebar's database path and filters."""
    st.title(title)
    st.caption(caption)
    return current_db(), current_filters()


def stop_when_empty(frame: pd.DataFrame, db: str, what: str) -> None:
    """Ends the page with the empty state when there is nothing to show."""
    if frame.empty:
        empty_state(db, what)
        st.stop()


def since_the_run_before(verdict) -> str:
    """ ". Since the run before: openvino 2026.3.0 → 2026.4.1" where library versions changed, else ""."""
    return f". Since the run before: {'; '.join(verdict.library_changes)}" if verdict.library_changes else ""


def regression_watch(verdicts: list) -> None:
    """The regression watch's verdicts on these results: flags only where the interval clears the noise, and
    parity worse than the run before."""

    def name(v) -> str:
        return f"{v.runtime}:{v.precision} batch {v.batch}" + ("" if v.mode == "lean" else f" ({v.mode} mode)")

    flagged = [v for v in verdicts if v.flagged]
    for v in flagged:
        if v.verdict == "stopped working":
            text = (
                f"**stopped working**: {name(v)} failed in this run; it completed in its {v.history} earlier "
                f"run(s), median {v.baseline_ms:.2f} ms. {v.error.splitlines()[0]}"
            )
        else:
            text = (
                f"**{v.verdict}**: {name(v)} infers in {v.infer_ms:.2f} ms against {v.baseline_ms:.2f} ms over "
                f"its {v.history} earlier runs (noise floor {v.noise_floor:.0%})"
            )
        text += since_the_run_before(v)
        (st.success if v.verdict == "improvement" else st.error)(text, icon=":material/monitoring:")
    changed = [v for v in verdicts if v.parity_change]
    for v in changed:
        st.error(
            f"**detections changed**: {name(v)} parity went {v.parity_change.replace('->', '→')} against the "
            f"run before: {v.parity_reason}" + since_the_run_before(v),
            icon=":material/rule:",
        )
    judged = [v for v in verdicts if v.judged]
    if not flagged and not changed:
        st.caption(
            f"Regression watch: no change beyond the noise floor in {len(judged)} configuration(s) with history"
            if judged
            else "Regression watch: each configuration needs three runs before "
            "changes are flagged (`python -m engine check-regressions` does the same in CI)."
        )


def profile_summary(settings: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Each result of a run that asked for profiles: its profiler and calls, its profiled ms per call, the share
    charged to a module and the profiled total over the measured inference median; or why it has none."""
    from engine.cli_output import profile_lines

    return pd.DataFrame(
        [
            {
                "result": line["name"],
                "profiler": line["profiler"] or MISSING,
                "calls": line["calls"],
                "profiled ms/call": None if line["error"] else round(line["profiled_ms"], 3),
                "charged to a module": None
                if line["error"] or line["mapped_share"] is None
                else f"{line['mapped_share']:.0%}",
                "of the inference median": None
                if line["error"] or line["of_inference"] is None
                else f"{line['of_inference']:.0%}",
                "why none": line["error"] or "",
            }
            for line in profile_lines(settings, rows)
        ]
    )
