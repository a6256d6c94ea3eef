"""Deleting a run, e.g. one measured while the machine was busy: its medians would widen the regression watch's
noise floor for good. Nothing is lost for good: the run's bundle is written first, and `import` (or restore_run)
brings it back."""

from __future__ import annotations

import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

from engine import store
from engine.bundle import import_bundle, write_bundle
from engine.config import BenchError
from engine.database import artifacts_root
from engine.names import is_id, require_id
from engine.paths import artifacts_dir
from engine.supervise import pid_alive


def kept_folder(db: str) -> Path:
    """Where deleted runs' bundles are kept: beside the runs' annotated images."""
    return artifacts_root(db) / "deleted"


def kept_bundle(db: str, run_id: str) -> Path:
    return kept_folder(db) / f"{require_id(run_id)}.zip"


def delete_run(db: str, run_id: str) -> tuple[Path, int]:
    """Writes the run's bundle, then deletes its rows and annotated images; returns the bundle and the number of
    results deleted. A run still being measured is refused: its worker would go on writing results."""
    store.require_run(db, run_id)
    store.mark_interrupted_runs(db, pid_alive, socket.gethostname())
    (run,) = store.runs(db, {"run_id": [run_id]}).to_dict("records")
    if run["status"] == "running":
        raise BenchError(
            f"run {run_id} is still running (started {run['started_at']:%Y-%m-%d %H:%M} UTC on "
            f"{run['machine_label']}): cancel it, or wait for it to end, before deleting it"
        )
    bundle = write_bundle(db, run_id, str(kept_bundle(db, run_id)))
    results = store.delete_run_rows(db, run_id)
    shutil.rmtree(artifacts_dir(db, run_id), ignore_errors=True)  # the bundle holds its images
    return bundle, results


def deleted_runs(db: str) -> list[dict]:
    """The kept bundles of deleted runs, newest deletion first."""
    folder = kept_folder(db)
    found = (
        sorted(
            (path for path in folder.glob("*.zip") if is_id(path.stem)),
            key=lambda path: path.stat().st_mtime,
            reverse=True,
        )
        if folder.is_dir()
        else []
    )
    return [
        {
            "run_id": path.stem,
            "path": path,
            "size_mb": path.stat().st_size / 2**20,
            "deleted_at": datetime.fromtimestamp(path.stat().st_mtime, UTC),
        }
        for path in found
    ]


def restore_run(db: str, run_id: str) -> str:
    """Imports a deleted run's kept bundle, then removes the bundle (the database holds the run again). The kept
    bundle gets every check an imported one does; one refused stays where it is."""
    bundle = kept_bundle(db, run_id)
    if not bundle.is_file():
        raise BenchError(f"no deleted run {run_id} is kept in {bundle.parent}")
    outcome = import_bundle(db, str(bundle))
    bundle.unlink()
    return outcome
