"""Starting engine runs from a page and following them: the job id lives in the session and in the URL (?job=),
so a reload or a second tab finds the run again. The run itself is a background process (engine.api)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.ui import errors_as_messages
from engine import api, database
from engine.api import EXPORTED, BenchError, RunConfig

ACTIVE_STATES = ("queued", "running")
QUICK_RUNTIMES = ("onnxruntime", "openvino")


def followed_job() -> str | None:
    """The job this session watches: the URL wins, so a reloaded or shared link shows its run."""
    job_id = st.query_params.get("job") or st.session_state.get("job_id")
    if job_id:
        follow(job_id)  # back into the URL after a visit to another page cleared it
    return job_id


def follow(job_id: str) -> None:
    st.session_state["job_id"] = job_id
    st.query_params["job"] = job_id


def quick_config(db: str) -> RunConfig:
    available = [info.name for info in data.runtimes() if info.available]
    chosen = [name for name in QUICK_RUNTIMES if name in available] or available[:2]
    return RunConfig(
        runtimes=chosen, batch_sizes=[1], imgsz=320, warmup=2, iters=10, db=db, note="quick run from the dashboard"
    )


def quick_run_button(db: str) -> None:
    """The empty state's way forward: one click starts a small default run and opens its progress."""
    config = quick_config(db)
    label = f"Start a quick run ({' + '.join(config.runtimes)}, batch 1, {config.imgsz} px, {config.iters} iterations)"
    if st.button(label, type="primary", icon=":material/rocket_launch:", disabled=not config.runtimes):
        try:
            job_id = api.start_run(config)
        except BenchError as error:
            st.error(str(error))
            return
        follow(job_id)
        st.switch_page("pages/views/run.py", query_params={"job": job_id})


STATE_BADGES = {
    "queued": ("Queued", "blue", ":material/hourglass_top:"),
    "running": ("Running", "blue", ":material/progress_activity:"),
    "finished": ("Finished", "green", ":material/check_circle:"),
    "failed": ("Failed", "red", ":material/error:"),
    "cancelled": ("Cancelled", "orange", ":material/cancel:"),
    "died": ("Died", "red", ":material/error:"),
}


def _variant_row(variant: dict, active: bool) -> None:
    # the name column fits "onnxruntime:fp32" on one line at 1280 px (at [2, 3, 3, 4] it broke as "fp3 2")
    name, stage, progress, outcome = st.columns([3, 2, 3, 4], vertical_alignment="center")
    name.markdown(f"**{variant['variant']}**")
    results = variant.get("results", [])
    if variant.get("stage") == "done" or (results and not active):  # not its last stage while the next one runs
        stage.markdown("done")
    else:
        batch = f" · batch {variant['batch']}" if variant.get("batch") else ""
        stage.markdown(f"{variant.get('stage', 'waiting')}{batch}  \n:gray[{variant.get('message') or ''}]")
        done, total = variant.get("done"), variant.get("total")
        if total:
            kind = "warm-up" if variant.get("stage") == "warmup" else "measured"
            elapsed = f" · {variant['elapsed_s']:.1f} s" if variant.get("elapsed_s") is not None else ""
            count = f"{done} of {total}" if done <= total else f"{done} ({total} asked, more for the minimum time)"
            progress.progress(min(done / total, 1.0), text=f"{count} {kind} iterations{elapsed}")
    lines = []
    for result in results:
        if result["status"] == "completed":
            lines.append(
                f":green[batch {result['batch']}: {result['infer_ms']:.2f} ms infer, "
                f"{result['total_ms']:.2f} ms total per image]"
            )
        elif result["status"] == EXPORTED:
            lines.append(f":gray[batch {result['batch']}: exported and stored, not run: {result.get('error')}]")
        else:
            lines.append(f":red[batch {result['batch']}: {(result.get('error') or 'failed').splitlines()[0]}]")
    outcome.markdown("  \n".join(lines) or ":gray[no result yet]")


def _finished_links(run_id: str) -> None:
    st.session_state["selected_run"] = run_id
    overview, detections, history = st.columns(3)
    overview.page_link("pages/views/overview.py", label="See the leaderboard", icon=":material/leaderboard:")
    detections.page_link(
        "pages/views/detections.py",
        label="See its detections",
        icon=":material/image_search:",
        query_params={"run": run_id},
    )
    history.page_link("pages/views/history.py", label="See it in the history", icon=":material/timeline:")


def draw_job(job_id: str, status: dict) -> None:
    """One job's state, per-variant progress, outcome and, once it is over, where to look next."""
    state = status.get("state", "unknown")
    label, color, icon = STATE_BADGES.get(state, (state, "gray", ":material/help:"))
    title, badge = st.columns([5, 1], vertical_alignment="center")
    title.subheader(f"Job {job_id}")
    badge.badge(label, color=color, icon=icon)
    if status.get("run_id"):
        st.caption(f"Run `{status['run_id']}`")
    if state == "queued":
        st.info("Waiting for the run before it to finish: one benchmark measures at a time on this machine.")
    for variant in status.get("variants", []):
        _variant_row(variant, state in ACTIVE_STATES)
    if state in ACTIVE_STATES:
        if st.button("Cancel run", icon=":material/stop_circle:", key=f"cancel-{job_id}"):
            api.cancel(job_id)
            st.toast("Cancelling: the run stops at its next check.")
        return
    if state == "finished":
        outcome = status.get("run_status")
        message = f"Run {status.get('run_id')} finished: {outcome}."
        (st.success if outcome == "completed" else st.warning)(message)
        _finished_links(status["run_id"])
    elif state == "cancelled":
        st.warning(f"Run {status.get('run_id') or ''} was cancelled; results measured before that are kept.")
    else:
        st.error(status.get("error") or f"The run ended in state {state}.")
        with st.expander("Engine log"):
            st.code(api.log_tail(job_id, 40) or "(empty)", language=None)


def show_job(job_id: str) -> None:
    """Polls the job every second while it is queued or running; a rerun of the page picks it up again."""
    try:
        status = api.job_status(job_id)
    except ValueError:  # a hand-edited ?job= that cannot name a job folder
        status = {"state": "unknown"}
    if status.get("state") == "unknown":
        st.warning(f"Job {job_id} is not known on this server (its folder is gone). Start a new run below.")
        return
    active = status["state"] in ACTIVE_STATES

    @st.fragment(run_every="1s" if active else None)
    def live() -> None:
        current = api.job_status(job_id) if active else status
        with st.container(border=True), errors_as_messages():
            draw_job(job_id, current)
        if active and current.get("state") not in ACTIVE_STATES:
            st.rerun()  # the whole page, so polling stops and the links to the results appear

    live()


UPLOAD_SUFFIXES = {".onnx", ".pt", ".zip", *api.IMAGE_SUFFIXES}


def uploads_folder() -> Path:
    """A folder only this user can read, outside the project: uploads are not the project's files."""
    folder = Path(
        os.environ.get("YOLO_BENCH_UPLOADS") or Path(tempfile.gettempdir()) / f"yolo-bench-uploads-{os.getuid()}"
    )
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def upload_allowed(name: str, trust_pt: bool) -> bool:
    """A .pt (a pickle: code) only when the user has said they trust it; ONNX and images always."""
    suffix = Path(name).suffix.lower()
    return suffix in UPLOAD_SUFFIXES and (suffix != ".pt" or bool(trust_pt))


def check_model_upload(upload, trust_pt) -> None:
    """The server's own check of an uploaded model, after the uploader's: a request made by hand can carry a .pt
    whatever the uploader allows, and a .pt runs code when loaded."""
    if upload is not None and not upload_allowed(upload.name, trust_pt):
        raise BenchError(
            f"{upload.name} is a .pt file, which runs code when loaded: switch on 'Trust uploaded .pt files' to use "
            "it, or upload an .onnx"
        )


def upload_name(name: str, payload: bytes) -> str:
    """A generated name: the content's hash, a short sanitised stem for people, the (allowed) suffix."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise BenchError(f"uploaded file type {suffix or '(none)'} is not accepted: use .onnx or an image")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40].strip("_") or "upload"
    return f"{hashlib.sha256(payload).hexdigest()[:16]}-{stem}{suffix}"


def save_upload(upload, own_folder: bool = False) -> str:
    """An uploaded file kept in the private uploads folder under a generated name, for the run to read later.
    own_folder: the name without its hash, in a folder named by the hash. Images take it: their names label a
    run's Detections cards and report. A model keeps the hash in its name, which its results are filed under:
    two different uploads called model.onnx must not share one history."""
    payload = upload.getvalue()
    name = upload_name(upload.name, payload)
    digest, _, plain = name.partition("-")
    target = uploads_folder() / digest / plain if own_folder else uploads_folder() / name
    target.parent.mkdir(mode=0o700, exist_ok=True)
    if not target.exists():
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_bytes(payload)
        partial.chmod(0o600)
        partial.replace(target)
    return str(target)


def recent_jobs(limit: int = 10) -> pd.DataFrame:
    """The newest jobs on this machine, each with what it measures and where it writes: ten job ids alone did not
    say which one was the OpenVINO sweep, nor that one wrote to another database."""
    rows = [
        {
            "job": job.get("job_id"),
            "state": job.get("state"),
            "outcome": job.get("run_status"),
            "what": _job_summary(job.get("config") or {}),
            "database": database.display((job.get("config") or {}).get("db") or ""),  # no password shown
            "run": job.get("run_id"),
            "created": pd.to_datetime(job.get("created_at"), unit="s", utc=True),
        }
        for job in api.list_jobs(limit)
    ]
    return pd.DataFrame(rows)


def _job_summary(config: dict) -> str:
    """ "yolov8n.pt · onnxruntime, openvino · fp32 · batch 1, 4 · 640 px" from a job's RunConfig settings; the
    model by its file name, as the results name it (an upload keeps its generated name)."""
    if not config:
        return ""
    modes = config.get("modes") or ["lean"]
    return " · ".join(
        [
            Path(config.get("model") or "").name,
            ", ".join(config.get("runtimes", [])),
            ", ".join(config.get("precisions", [])),
            "batch " + ", ".join(map(str, config.get("batch_sizes", []))),
            f"{config.get('imgsz')} px",
            *([] if modes == ["lean"] else [" + ".join(modes) + (" modes" if len(modes) > 1 else " mode")]),
        ]
    )
