"""Where the engine keeps its caches, artifacts and job folders."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Exports and model files; shared by every run on this machine. YOLO_BENCH_CACHE overrides it."""
    path = Path(os.environ.get("YOLO_BENCH_CACHE") or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(db: str | Path, run_id: str) -> Path:
    """Annotated images of a run, beside the database file (results.duckdb -> results.artifacts/<run_id>/), or in
    a shared store's data folder."""
    from engine.database import artifacts_root

    return artifacts_root(db) / run_id


def sample_images() -> list[Path]:
    """The test images Ultralytics ships inside its package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return []
    assets = Path(list(spec.submodule_search_locations)[0]) / "assets"
    return sorted(p for p in assets.glob("*.jpg"))
