"""Background runs: a job is a folder with its config, an event log and a status file.

`python -m engine job DIR` runs one. A machine-wide lock file lets one benchmark measure at a time;
a job started while another runs waits in the queue. Cancelling is a file the job looks for.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from engine.config import RunConfig, Variant
from engine.names import is_id, new_id, shown
from engine.paths import PROJECT_ROOT, read_json, write_json_whole


def jobs_dir() -> Path:
    path = Path(os.environ.get("YOLO_BENCH_JOBS") or PROJECT_ROOT / ".jobs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_folder(job_id: str) -> Path:
    if not is_id(job_id):  # it may come from a URL's ?job=
        raise ValueError(f"bad job id {shown(job_id)}")
    return jobs_dir() / job_id


def lock_path() -> Path:
    """Machine-wide, whatever the jobs folder or database: two benchmarks at once would skew each other."""
    return Path(os.environ.get("YOLO_BENCH_LOCK") or Path(tempfile.gettempdir()) / "yolo-bench-benchmark.lock")


@contextmanager
def benchmark_lock(on_wait=None, wait: bool = True):
    """Held while measuring; a second run waits here (that is the queue). Yields whether it is held: with
    wait=False, False at once where a benchmark holds it."""
    handle = open(lock_path(), "w")  # noqa: SIM115 - held across the yield, closed in the finally below
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if on_wait:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield True
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def write_status(folder: Path, **fields) -> None:
    path = folder / "status.json"
    current = read_json(path)
    current.update(fields, updated_at=time.time())
    write_json_whole(path, current)


def append_event(folder: Path, event: dict) -> None:
    with open(folder / "events.jsonl", "a") as handle:
        handle.write(json.dumps(event, default=str) + "\n")


def read_events(folder: Path) -> list[dict]:
    try:
        lines = (folder / "events.jsonl").read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return events


def start(config: RunConfig) -> str:
    """Create the job folder and launch the engine in its own process session; returns the job id."""
    job_id = new_id()
    folder = job_folder(job_id)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    write_status(folder, state="queued", job_id=job_id, created_at=time.time())
    log = open(folder / "log.txt", "w")  # noqa: SIM115 - the child process writes it; closed once handed over
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "job", str(folder)],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    write_status(folder, pid=process.pid)
    return job_id


def cancel(job_id: str) -> None:
    folder = job_folder(job_id)
    if folder.is_dir():
        (folder / "cancel").touch()


def cancel_requested(folder: Path) -> bool:
    return (folder / "cancel").exists()


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        return Path(f"/proc/{int(pid)}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def status(job_id: str) -> dict:
    """The job's state, with a per-variant progress summary built from its events."""
    folder = job_folder(job_id)
    state = read_json(folder / "status.json")
    if not state:
        return {"job_id": job_id, "state": "unknown"}
    if state.get("state") in ("queued", "running") and not _alive(state.get("pid")):
        state["state"] = "died"
        state.setdefault("error", "the engine process stopped unexpectedly; see its log")
    events = read_events(folder)
    variants: dict[str, dict] = {}
    current = None  # variants run one after another: the one before a new one has finished
    for event in events:
        label = event.get("variant")
        if event["event"] == "run_started":
            for name in event.get("variants", []):
                variants.setdefault(name, {"variant": name, "stage": "waiting"})
        if not label:
            continue
        entry = variants.setdefault(label, {"variant": label, "stage": "waiting"})
        if event["event"] in ("stage", "progress"):
            entry.update(
                {k: event[k] for k in ("stage", "batch", "done", "total", "elapsed_s", "message") if k in event}
            )
        elif event["event"] == "variant_started":
            if current and current != label:
                variants[current]["stage"] = "done"
            current = label
            entry["stage"] = "starting"
            entry["started"] = event["time"]
    for event in events:
        if event["event"] == "result":  # named as the variant's own events are (ultralytics mode: ".../ultralytics")
            label = Variant(event["runtime"], event["precision"], event.get("mode") or "lean").label
            entry = variants.setdefault(label, {"variant": label})
            entry.setdefault("results", []).append(event)
    state["variants"] = list(variants.values())
    state["events"] = len(events)
    return state


def list_jobs(limit: int = 20) -> list[dict]:
    """The newest jobs' status, each with the settings it was started with (`config`)."""
    folders = sorted((p for p in jobs_dir().iterdir() if p.is_dir()), reverse=True)[:limit]
    return [{**status(p.name), "config": read_json(p / "config.json")} for p in folders]


def log_tail(job_id: str, lines: int = 30) -> str:
    try:
        return "\n".join((job_folder(job_id) / "log.txt").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
