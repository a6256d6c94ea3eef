"""The small surface the dashboard pages and the CLI use. Imports no runtime library.

Reads return pandas DataFrames (empty when the database does not exist yet); filters are passed as
parameters to the store, never pasted into SQL.
"""

from __future__ import annotations

import functools
from pathlib import Path

from engine import jobs, store
from engine.compare import COMPARED as COMPARED_METRICS
from engine.compare import Comparison, baseline_for, compare, library_changes, library_steps
from engine.config import (
    IMAGE_SUFFIXES,
    MAX_BATCH,
    MAX_IMGSZ,
    MAX_IN_FLIGHT,
    MAX_ITERS,
    MAX_MIN_DURATION_S,
    MAX_TIMEOUT_S,
    MAX_WARMUP,
    MIN_IMGSZ,
    MODES,
    BenchError,
    RunConfig,
    usable_cpus,
    validate,
)
from engine.machine import told_apart
from engine.measure import MIN_CI_SAMPLES
from engine.records import EXPORTED
from engine.runtimes import registry
from engine.store import json_column, status_and_reason

__all__ = [
    "BenchError",
    "EXPORTED",
    "RunConfig",
    "MODES",
    "MAX_IN_FLIGHT",
    "IMAGE_SUFFIXES",
    "usable_cpus",
    "runtimes",
    "start_run",
    "MIN_CI_SAMPLES",
    "MAX_BATCH",
    "MIN_IMGSZ",
    "MAX_IMGSZ",
    "MAX_WARMUP",
    "MAX_ITERS",
    "MAX_MIN_DURATION_S",
    "MAX_TIMEOUT_S",
    "job_status",
    "cancel",
    "list_jobs",
    "log_tail",
    "results_summary",
    "runs",
    "machines",
    "detections",
    "reference_detections",
    "result_images",
    "iteration_times",
    "export_run",
    "write_bundle",
    "delete_run",
    "deleted_runs",
    "restore_run",
    "import_bundle",
    "regressions",
    "regressions_of_run",
    "compare_runs",
    "COMPARED_METRICS",
    "baseline_for",
    "library_steps",
    "status_and_reason",
    "json_column",
    "told_apart",
    "cache_summary",
    "prune_cache",
    "original_images",
]


def runtimes() -> list[registry.RuntimeInfo]:
    return registry.describe()


def start_run(config: RunConfig) -> str:
    """Validate, then launch the run in a background process; returns a job id to poll."""
    validate(config)
    return jobs.start(config)


def job_status(job_id: str) -> dict:
    return jobs.status(job_id)


def cancel(job_id: str) -> None:
    jobs.cancel(job_id)


def list_jobs(limit: int = 20) -> list[dict]:
    return jobs.list_jobs(limit)


def log_tail(job_id: str, lines: int = 30) -> str:
    return jobs.log_tail(job_id, lines)


def results_summary(db: str, filters: dict | None = None):
    return store.results_summary(db, filters)


def runs(db: str, filters: dict | None = None):
    return store.runs(db, filters)


def machines(db: str):
    return store.machines(db)


def run_models(db: str) -> list[str]:
    return store.run_models(db)


def history_choices(db: str, filters: dict | None = None):
    return store.history_choices(db, filters)


def latest_runs(db: str, filters: dict | None = None, per_model: bool = False):
    return store.latest_runs(db, filters, per_model)


def runs_with_results(db: str, filters: dict | None, limit: int, include: tuple[str, ...] = ()):
    return store.runs_with_results(db, filters, limit, include)


def fastest_candidates(db: str, filters: dict | None = None):
    return store.fastest_candidates(db, filters)


def history_points(db: str, filters: dict | None, metric: str, splits: list[str], max_points: int):
    return store.history_points(db, filters, metric, splits, max_points)


def results_page(db: str, filters: dict | None, limit: int, offset: int):
    return store.results_page(db, filters, limit, offset)


def detections(db: str, run_id: str):
    return store.detections(db, run_id)


def reference_detections(db: str, run_id: str):
    """The parity reference's boxes of a run; a result's missed boxes are those none of its detections matched."""
    return store.reference_detections(db, run_id)


def result_images(db: str, run_id: str):
    """A run's annotated images; a path that is not an annotated image in a run's folder of an artifacts folder
    reads as none: a row of a database filled before bundles were checked may name any file, and the pages and
    reports show these. (A database copied elsewhere still names its first folder's images: those stay.)"""
    from engine.paths import is_annotated_image

    frame = store.result_images(db, run_id)
    if not frame.empty:
        frame["annotated_path"] = [
            path if is_annotated_image(path, run_id) else None for path in frame["annotated_path"]
        ]
    return frame


def iteration_times(db: str, run_id: str):
    """The total milliseconds per image of each measured iteration of a run's results."""
    return store.iteration_times(db, run_id)


EXPORT_TABLES = ("results_summary", "runs", "results", "stats", "samples", "detections")


def export_run(db: str, run_id: str, fmt: str, out_dir: str = "") -> list[Path]:
    """Write one run's tables as Parquet or CSV files; returns the files written. Without out_dir: exports/<run
    id>/ in the database's artifacts folder, not the working folder (a repository's root, say)."""
    if fmt not in ("parquet", "csv"):
        raise BenchError(f"unknown export format {fmt!r}: use parquet or csv")
    from engine.names import require_id

    store.require_run(db, run_id)
    require_id(run_id)  # it names the files
    from engine.database import artifacts_root

    folder = Path(out_dir) if out_dir else artifacts_root(db) / "exports" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in EXPORT_TABLES:
        frame = store.run_table(db, run_id, table)
        target = folder / f"{run_id}-{table}.{fmt}"
        if fmt == "csv":
            frame.to_csv(target, index=False)
        else:
            frame.to_parquet(target, index=False)
        written.append(target)
    return written


def write_bundle(db: str, run_id: str, out_path: str) -> Path:
    """One run as a self-contained zip (rows as Parquet, images, manifest with checksums)."""
    from engine.bundle import write_bundle as write

    return write(db, run_id, out_path)


def delete_run(db: str, run_id: str) -> tuple[Path, int]:
    """Delete a run after writing its bundle (import brings it back); returns the bundle and its result count."""
    from engine.deletion import delete_run as delete

    return delete(db, run_id)


def deleted_runs(db: str) -> list[dict]:
    """Deleted runs whose bundles are kept: run_id, path, size_mb, deleted_at; newest deletion first."""
    from engine.deletion import deleted_runs as kept

    return kept(db)


def restore_run(db: str, run_id: str) -> str:
    """Bring a deleted run back from its kept bundle."""
    from engine.deletion import restore_run as restore

    return restore(db, run_id)


@functools.cache
def _this_machine_id() -> str:
    from engine.machine import fingerprint

    return fingerprint()["machine_id"]


def original_images(run: dict) -> list[Path | None]:
    """The images a run measured, where they can be opened: only for a run made on this machine (its machine and
    host); an imported run's paths name files of the machine that made it, and mean nothing here."""
    import socket

    paths = json_column(run.get("images")) or []
    host = (json_column(run.get("config")) or {}).get("host")
    if run.get("machine_id") != _this_machine_id() or host != socket.gethostname():
        return [None] * len(paths)
    return [Path(path) if isinstance(path, str) and Path(path).is_file() else None for path in paths]


def import_bundle(db: str, bundle_path: str, name: str | None = None) -> str:
    """Merge a bundle into db: 'imported' or 'already present'; a tampered, damaged or conflicting bundle raises
    BenchError (one line naming the bundle, or name where given) and leaves no trace."""
    from engine.bundle import import_bundle as merge

    return merge(db, bundle_path, name)


def profiles(db: str, run_id: str):
    return store.profiles(db, run_id)


def profile_settings(db: str, run_id: str):
    return store.profile_settings(db, run_id)


def recommend_candidates(db: str, filters: dict | None = None):
    return store.recommend_candidates(db, filters)


def machine_ids_named(db: str, name: str) -> list[str]:
    return store.machine_ids_named(db, name)


def recommend(db: str, budget, machine: str | None = None, model: str | None = None):
    """What to ship under the budget (engine/recommend.py) from the stored results of one machine (an id or a
    label; None: every machine) and one model (None: the newest run's)."""
    from engine.recommend import recommend as pick

    filters = {}
    if machine:
        filters["machine_id"] = machine_ids_named(db, machine)
        if not filters["machine_id"]:
            raise BenchError(f"no machine named {machine!r} here: `python -m engine runs` names the machines")
    if not model:
        newest = store.latest_runs(db, filters)
        model = None if newest.empty else newest["model"].iloc[0]
    rows = store.recommend_candidates(db, {**filters, "model": [model]}) if model else None
    return pick([] if rows is None or rows.empty else rows.to_dict("records"), budget), model


def regressions(db: str, filters: dict | None = None) -> list:
    """Each configuration's newest result against its history (engine/regressions.py)."""
    from engine.regressions import check

    summary = store.results_summary(db, filters)
    if summary.empty:
        return []
    verdicts = check(summary)
    compared = [v for v in verdicts if v.previous_run_id]  # what changed since the run before: the usual cause
    wanted = sorted({run for v in compared for run in (v.previous_run_id, v.run_id)})  # not every run's row
    libraries = dict(store.runs(db, {"run_id": wanted})[["run_id", "libraries"]].values) if wanted else {}
    for verdict in compared:
        verdict.library_changes = library_changes(
            *(json_column(libraries.get(run), {}) for run in (verdict.previous_run_id, verdict.run_id))
        )
    return verdicts


def regressions_of_run(db: str, run_id: str) -> tuple[list, int]:
    """The verdicts on one run's results, and how many of its results a newer run has superseded (each
    configuration's verdict is on its newest result)."""
    store.require_run(db, run_id)
    (machine_id,) = store.runs(db, {"run_id": [run_id]})["machine_id"]
    mine = set(store.results_summary(db, {"run_id": [run_id]})["result_id"])
    verdicts = [v for v in regressions(db, {"machine_id": [machine_id]}) if v.result_id in mine]
    return verdicts, len(mine) - len(verdicts)


def compare_runs(every_a, every_b, carry: tuple[str, ...] = (), runs: tuple[dict, dict] | None = None) -> Comparison:
    """Run B against baseline A from their results_summary rows and, where given, their runs rows (for library
    versions and the model file's hash; engine/compare.py)."""
    return compare(every_a, every_b, carry, runs)


def cache_summary(unused_days: float | None = None) -> dict:
    """What this machine's cache holds, by kind, and what of it can go (engine/cache_contents.py)."""
    from engine import cache_contents
    from engine.paths import cache_dir

    _check_unused_days(unused_days)
    entries = cache_contents.survey()
    return {"cache": str(cache_dir()), "entries": len(entries), "kinds": cache_contents.summary(entries, unused_days)}


def prune_cache(unused_days: float | None = None, wait: bool = True, on_wait=None) -> list[dict] | None:
    """Remove what no run can use again (and, with unused_days, what none read for that long), holding the
    benchmark lock: a run measuring now may be writing what looks unfinished. None where wait is False and a
    benchmark is measuring."""
    from engine import cache_contents

    _check_unused_days(unused_days)
    with jobs.benchmark_lock(on_wait=on_wait, wait=wait) as held:
        if not held:
            return None
        return [entry.to_dict() for entry in cache_contents.prune(cache_contents.survey(), unused_days)]


def _check_unused_days(unused_days: float | None) -> None:
    if unused_days is not None and unused_days < 0:
        raise BenchError(f"--unused-days {unused_days:g} is out of range: use 0 or more")
