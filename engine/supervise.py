"""Supervising a worker process: one job in a freshly spawned process, with a timeout, a memory limit, a step
deadline the worker can ask for, cancellation, and a one-line description of how it ended.

A child that crashes, hangs or raises costs its own result only: the caller gets JobFailed with the reason.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from engine import worker


class JobFailed(Exception):
    pass


class Cancelled(Exception):
    pass


def describe_exit(code: int | None) -> str:
    if code is None:
        return "worker process did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory or by a signal)" if name == "SIGKILL" else ""
        return f"worker process crashed with {name}{hint}"
    return f"worker process exited with code {code} without a result"


def _tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        return sum(member.memory_info().rss for member in members) / 2**20
    except psutil.Error:
        return 0.0


def run_job(
    job: str,
    params,
    timeout_s: float,
    on_message: Callable[[str, dict], None] | None = None,
    should_cancel: Callable[[], bool] = lambda: False,
    memory_limit_mb: float = 0,
):
    """Run one job in a fresh spawned process; return its 'done' payload or raise JobFailed / Cancelled. params: a
    dict, or a MeasureJob for "measure"; its log_path, where it has one, gives the log's last lines to a failure.

    The process (with its children) is killed when its resident memory passes memory_limit_mb (0: no limit).
    """
    context = multiprocessing.get_context("spawn")
    # duplex: the parent tells the worker when it has recorded a result (RECORDED), so that what the worker
    # measures next (in flight, a profile) does not share the CPU with the parent's parity check and writes
    receiver, sender = context.Pipe(duplex=True)
    process = context.Process(target=worker.entry, args=(job, params, sender), name=f"bench-{job}")
    process.start()
    sender.close()
    log_path = params.get("log_path") if isinstance(params, dict) else getattr(params, "log_path", None)
    deadline = time.monotonic() + timeout_s
    step = None  # {"seconds", "step", "until"} while the worker runs a step with its own limit
    try:
        while True:
            _check_running(process, should_cancel, memory_limit_mb)
            if receiver.poll(0.2):
                try:
                    kind, payload = receiver.recv()
                except (EOFError, OSError):
                    break
                if kind == "done":
                    process.join(30)
                    return payload
                step = _handled(kind, payload, step, on_message)
                if kind == "result":
                    _tell(receiver, RECORDED)
                continue
            if not process.is_alive():
                if receiver.poll(0):
                    continue
                break
            _check_time(deadline, timeout_s, step, log_path)
        process.join(5)
        if should_cancel():  # Ctrl-C reaches the whole process group: a worker still starting dies of it
            raise Cancelled()
        raise JobFailed(describe_exit(process.exitcode) + _log_tail(log_path))
    finally:
        if process.is_alive():
            process.kill()
            process.join(5)
        receiver.close()


RECORDED = "recorded"  # the parent's answer to a worker's "result": it is stored, the CPU is the worker's again


def _tell(conn, message: str) -> None:
    try:
        conn.send(message)
    except (BrokenPipeError, OSError):
        pass  # the worker is gone: the loop finds out and says how


def _check_running(process, should_cancel: Callable[[], bool], memory_limit_mb: float) -> None:
    """Cancelled when asked; JobFailed past the memory limit (the process and its children together)."""
    if should_cancel():
        raise Cancelled()
    if memory_limit_mb and (used_mb := _tree_rss_mb(process.pid)) > memory_limit_mb:
        raise JobFailed(
            f"used {used_mb:.0f} MB, over the memory limit of {memory_limit_mb:g} MB "
            "(the process was killed; raise --memory-limit)"
        )


def _handled(kind: str, payload, step: dict | None, on_message) -> dict | None:
    """One message from the worker; returns the step deadline in force after it ("deadline": the worker's next step
    should take at most this long; None seconds: it ended). An "error" is the job's failure."""
    if kind == "error":
        raise JobFailed(payload)
    if kind == "deadline":
        return None if payload["seconds"] is None else {**payload, "until": time.monotonic() + payload["seconds"]}
    if on_message:
        on_message(kind, payload)
    return step


def _check_time(deadline: float, timeout_s: float, step: dict | None, log_path: str | None) -> None:
    if time.monotonic() > deadline:
        raise JobFailed(f"timed out after {timeout_s:g} s (the process was killed)" + _log_tail(log_path))
    if step and time.monotonic() > step["until"]:
        raise JobFailed(
            f"{step['step']} did not end within {step['seconds']:.0f} s (the process was killed)" + _log_tail(log_path)
        )


def _log_tail(log_path: str | None, lines: int = 3) -> str:
    try:
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-lines:]
    except (OSError, TypeError):
        return ""
    return ("; last log lines: " + " | ".join(line.strip()[:200] for line in tail)) if tail else ""


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
