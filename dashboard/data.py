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
RUN_CHOICES = 500  # a run picker's newest runs: a fleet's 100,000 in one list would be megabytes at every rerun
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
run_models = per_database_state(api.run_models)
_runs_with_results = per_database_state(api.runs_with_results)
fastest_candidates = per_database_state(api.fastest_candidates)
recommend_candidates = per_database_state(api.recommend_candidates)
recommendation = per_database_state(api.recommend)
profiles = per_database_state(api.profiles)
profile_settings = per_database_state(api.profile_settings)
history_choices = per_database_state(api.history_choices)
latest_runs = per_database_state(api.latest_runs)
history_points = per_database_state(api.history_points)
results_page = per_database_state(api.results_page)


@st.cache_data(ttl=RUNTIMES_TTL_S, show_spinner=False)
def runtimes() -> list:
    return api.runtimes()


def runs_with_results(db: str, filters: dict, include: tuple = ()) -> pd.DataFrame:
    """Runs (newest first) that match the sidebar filters and hold at least one result: the newest RUN_CHOICES, and
    those include names (a link's run, the one picked before), which may be older."""
    named = tuple(sorted({run_id for run_id in include if isinstance(run_id, str)}))
    return _runs_with_results(db, filters, RUN_CHOICES, named).reset_index(drop=True)


@per_database_state
def library_steps(db: str, machine_ids: tuple[str, ...]) -> pd.DataFrame:
    """The machines' runs whose library versions differ from the machine's run before (engine's library_steps),
    computed once per database change rather than at each click on the History page."""
    return api.library_steps(runs(db, {"machine_id": list(machine_ids)}))


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
