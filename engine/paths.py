"""Where the engine keeps its caches, artifacts and job folders, and how it writes and reads its JSON files there."""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DB_ENV = "YOLO_BENCH_DB"
DEFAULT_DB = "results.duckdb"


def default_db() -> str:
    """The database a command or the dashboard uses when none is named: $YOLO_BENCH_DB, else results.duckdb in the
    working folder."""
    return os.environ.get(DB_ENV) or DEFAULT_DB


def cache_dir() -> Path:
    """Exports and model files; shared by every run on this machine. YOLO_BENCH_CACHE overrides it."""
    path = Path(os.environ.get("YOLO_BENCH_CACHE") or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(db: str | Path, run_id: str) -> Path:
    """Annotated images of a run, beside the database file (results.duckdb -> results.artifacts/<run_id>/), or in
    a shared store's data folder. The run id must have the engine's shape: it may come from outside (a bundle, a
    command line), and it names a folder."""
    from engine.database import artifacts_root
    from engine.names import require_id

    return artifacts_root(db) / require_id(run_id)


def is_annotated_image(path, run_id: str | None = None) -> bool:
    """Whether a stored path has the shape of an annotated image the engine wrote, <x>.artifacts/<run id>/<n>.jpg
    (a shared store's: artifacts/<run id>/<n>.jpg), of run_id where given. A database copied elsewhere still names
    its first folder's images, which pass; a path from a row of unknown origin (a server file, a photo folder)
    does not."""
    from engine.names import is_id

    if not isinstance(path, str) or not path:
        return False
    file = Path(path)
    folder = file.parent
    return (
        file.suffix.lower() == ".jpg"
        and ".." not in file.parts
        and is_id(folder.name)
        and (run_id is None or folder.name == run_id)
        and (folder.parent.name.endswith(".artifacts") or folder.parent.name == "artifacts")
    )


def sample_images() -> list[Path]:
    """The test images Ultralytics ships inside its package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return []
    assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
    return sorted(p for p in assets.glob("*.jpg"))


def write_json_whole(path: Path, document) -> None:
    """Write to a file of this process's own, then rename it into place: a reader, or another process writing the
    same file, never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(document))
    partial.replace(path)


def read_json(path: Path) -> dict:
    """The file's document; {} when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mark_used(path: Path) -> None:
    """Set a cached entry's marker file's time to now: `python -m engine cache --unused-days` goes by it (reading
    a file changes no time a program can rely on)."""
    try:
        os.utime(path)
    except OSError:
        pass  # a read-only cache still serves
