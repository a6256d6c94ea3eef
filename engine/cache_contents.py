"""What the cache (`.cache/`, YOLO_BENCH_CACHE) holds, what of it no run can use again, and removing that.

Exports are kept by model, export arguments and library versions, and parity references by model, images,
settings, libraries and engine code: after an upgrade the old ones are never read again, and a run stopped
mid-export or mid-reference leaves a folder that is redone, never read. Those can always go (`--prune`). What is
remade when needed (exports, references, calibration images, datasets, logs) can also go when unused for a while
(`--unused-days`); model files and the machine's measured peaks are never removed here.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.export import export_key
from engine.models import file_sha256
from engine.paths import cache_dir, read_json
from engine.reference_cache import DETECTIONS_FILE, current_makers, made_by_others

REMADE_WHEN_NEEDED = ("exports", "reference", "calibration", "datasets", "logs")
UNFINISHED = "unfinished (a run stopped while making it; redone, never read)"
OTHER_MAKERS = "made by other library versions or engine code than this environment's (it never reads them)"
PER_RUN_REFERENCE = "one run's own reference, from before references were kept by key (never read)"
KEY_NAME = re.compile(r"[0-9a-f]{24}")


@dataclass
class Entry:
    kind: str  # the cache's folder it sits in: exports, reference, calibration, datasets, logs, models, peak, ...
    path: Path
    size_bytes: int
    last_used: float  # epoch seconds: when a run last read it (exports, references, calibration, datasets)
    stale: str = ""  # why no run can use it again; "" where one can

    def removable(self, unused_days: float | None, now: float) -> str:
        """Why --prune removes it; "" where it stays."""
        if self.stale:
            return self.stale
        if unused_days is not None and self.kind in REMADE_WHEN_NEEDED and now - self.last_used > unused_days * 86400:
            return f"not used for {unused_days:g} days"
        return ""

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def survey() -> list[Entry]:
    """Every entry of the cache, one per export, reference, dataset, run's logs, model file, ..."""
    entries = []
    makers = current_makers()  # hashes the engine's files: once, not per reference
    for top in sorted(cache_dir().iterdir()):
        kind = top.name if top.is_dir() else "other"
        try:
            children = sorted(top.iterdir()) if top.is_dir() else [top]
        except OSError:
            continue  # removed since it was listed
        for path in children:
            try:
                entries.append(Entry(kind, path, _size_bytes(path), _mtime(path), _stale(kind, path, makers)))
            except OSError:
                pass  # a run removed or renamed it while this looked (its partial folder, published)
    return entries


def prune(entries: list[Entry], unused_days: float | None = None) -> list[Entry]:
    """Remove the entries that can go; returns them. Call it holding the benchmark lock: a run measuring now may be
    writing an unfinished entry."""
    now = time.time()
    removed = [entry for entry in entries if entry.removable(unused_days, now)]
    for entry in removed:
        if entry.path.is_dir() and not entry.path.is_symlink():
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            entry.path.unlink(missing_ok=True)
    return removed


def summary(entries: list[Entry], unused_days: float | None = None) -> list[dict]:
    """One row per kind: entries and size, and of them what --prune would remove and why."""
    now = time.time()
    rows = []
    for kind in dict.fromkeys(entry.kind for entry in entries):
        mine = [entry for entry in entries if entry.kind == kind]
        going = [entry for entry in mine if entry.removable(unused_days, now)]
        reasons = Counter(entry.removable(unused_days, now) for entry in going)
        rows.append(
            {
                "kind": kind,
                "entries": len(mine),
                "mb": _mb(mine),
                "removable": len(going),
                "removable_mb": _mb(going),
                "why": "; ".join(f"{n} {why}" for why, n in reasons.items()),
            }
        )
    return rows


def entries_text(count: int) -> str:
    return f"{count} entr{'y' if count == 1 else 'ies'}"


def removed_text(removed: list[dict]) -> str:
    """What a prune removed (api.prune_cache's list), as the CLI and the Machines page say it: "2 entries, 3.1 MB"."""
    return f"{entries_text(len(removed))}, {sum(entry['size_bytes'] for entry in removed) / 2**20:.1f} MB"


def _stale(kind: str, path: Path, makers: dict) -> str:
    if kind == "exports":
        return _stale_export(path)
    if kind == "reference":
        if ".partial-" in path.name:
            return UNFINISHED
        if not KEY_NAME.fullmatch(path.name):
            return PER_RUN_REFERENCE
        if not (path / DETECTIONS_FILE).is_file():
            return UNFINISHED
        return OTHER_MAKERS if made_by_others(path, makers) else ""
    if kind in ("calibration", "datasets"):
        return "" if (path / "data.yaml").is_file() else UNFINISHED
    return ""


def _stale_export(folder: Path) -> str:
    done = read_json(folder / "done.json")
    if not done.get("output") or not (folder / done["output"]).exists():
        return UNFINISHED
    source = folder / "model.pt"  # the checkpoint it was exported from, copied in (export.run_export)
    model_sha256 = done.get("model_sha256") or (file_sha256(source) if source.is_file() else None)
    if model_sha256 is None or "request" not in done:
        return ""  # nothing to judge it by: keep it
    return "" if export_key(model_sha256, done["request"]) == folder.name else OTHER_MAKERS


def _mtime(path: Path) -> float:
    """When a run last used it: its marker file's time (paths.mark_used), else the newest of its files'."""
    for marker in ("done.json", DETECTIONS_FILE, "data.yaml"):
        if (path / marker).is_file():
            return (path / marker).stat().st_mtime
    return max((status.st_mtime for status in _statuses(path)), default=0.0)


def _size_bytes(path: Path) -> int:
    return sum(status.st_size for status in _statuses(path) if not stat.S_ISDIR(status.st_mode))


def _statuses(path: Path) -> list[os.stat_result]:
    """lstat of the path and, for a folder, of every file under it (links, a dataset's images, count as links).
    A run may remove or rename files while this walks (a finished partial reference): those are left out."""
    paths = [str(path)]
    if path.is_dir() and not path.is_symlink():
        paths += [os.path.join(root, name) for root, _, files in os.walk(path) for name in files]
    statuses = []
    for name in paths:
        try:
            statuses.append(os.lstat(name))
        except OSError:
            pass
    return statuses


def _mb(entries: list[Entry]) -> float:
    return sum(entry.size_bytes for entry in entries) / 2**20
