"""Cached reads through engine.api. Each cache entry is keyed on the database's change stamp, so a
finished run shows at once; the TTL only bounds memory."""

from __future__ import annotations

import functools
import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import api, database

CACHE_TTL_S = 300
RUNTIMES_TTL_S = 60
_READERS: dict[str, Callable] = {}


def db_stamp(db: str) -> tuple:
    """Changes whenever the engine writes results (engine/database.py)."""
    return database.change_stamp(db)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=200)
def _cached(reader: str, db: str, stamp: tuple, *args):
    return _READERS[reader](db, *args)


def per_database_state(reader: Callable) -> Callable:
    """Caches reader(db, *args) until the database file changes."""
    name = f"{reader.__module__}.{reader.__qualname__}"
    _READERS[name] = reader

    @functools.wraps(reader)
    def cached(db: str, *args):
        return _cached(name, db, db_stamp(db), *args)

    return cached


results = per_database_state(api.results_summary)
runs = per_database_state(api.runs)
machines = per_database_state(api.machines)
detections = per_database_state(api.detections)
reference_detections = per_database_state(api.reference_detections)
regressions = per_database_state(api.regressions)
result_images = per_database_state(api.result_images)
iteration_times = per_database_state(api.iteration_times)


@st.cache_data(ttl=RUNTIMES_TTL_S, show_spinner=False)
def runtimes() -> list:
    return api.runtimes()


def runs_with_results(db: str, filters: dict) -> pd.DataFrame:
    """Runs (newest first) that match the sidebar filters and hold at least one result."""
    summary = results(db, filters)
    if summary.empty:
        return pd.DataFrame()
    return runs(db, {"run_id": sorted(summary["run_id"].unique())}).reset_index(drop=True)


@per_database_state
def library_steps(db: str) -> pd.DataFrame:
    """Every run whose library versions differ from its machine's run before (engine's library_steps), computed
    once per database change rather than at each click on the History page."""
    return api.library_steps(runs(db))


def latest_run_per_machine(summary: pd.DataFrame) -> pd.DataFrame:
    """Each machine's newest run that completed at least one result, its completed results; the machine that ran
    last comes first (a retired runner's last run goes below the ones measuring now)."""
    completed = summary[summary["status"] == "completed"]
    if completed.empty:
        return completed
    latest = completed.groupby("machine_id")["started_at"].transform("max")
    return completed[completed["started_at"] == latest].sort_values("started_at", ascending=False, kind="stable")


@per_database_state
def run_report(db: str, run_id: str) -> str:
    """One run as a self-contained HTML page."""
    from dashboard.report import run_report as build

    run = runs(db, {"run_id": run_id}).iloc[0]
    known = machines(db)
    machine = known[known["machine_id"] == run["machine_id"]]
    return build(
        run,
        None if machine.empty else machine.iloc[0],
        results(db, {"run_id": run_id}),
        result_images(db, run_id),
        iteration_times(db, run_id),
    )


@per_database_state
def selection_report(db: str, filters: dict, description: str) -> str:
    """Several runs' results as a self-contained HTML page."""
    from dashboard.report import selection_report as build

    return build(results(db, filters), description)


@per_database_state
def run_tables_zip(db: str, run_id: str) -> bytes:
    """Every table of one run (results, stats, every sample, detections) as CSV files in one zip."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in api.export_run(db, run_id, "csv", folder):
            archive.write(path, path.name)
    return buffer.getvalue()


@per_database_state
def run_bundle(db: str, run_id: str) -> bytes:
    """The run as a bundle another machine's dashboard or `python -m engine import` merges."""
    with tempfile.TemporaryDirectory() as folder:
        return api.write_bundle(db, run_id, str(Path(folder) / "run.zip")).read_bytes()
