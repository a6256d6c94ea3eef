"""The store survives the engine being killed anywhere, and concurrent runs and readers do not collide."""

import json
import multiprocessing
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import duckdb
import psutil
import pytest

from engine import store
from engine.config import RunConfig
from engine.runner import Runner
from engine.supervise import Cancelled, run_job
from tests.conftest import ROOT, TEST_IMGSZ, default_model_file, engine

# The minimum duration keeps batch 2 measuring for a while after batch 1's result (the Ctrl-C test stops it there).
RUN_ARGS = [
    "--runtimes",
    "onnxruntime,openvino",
    "--batch",
    "1,2",
    "--iters",
    "15",
    "--min-duration",
    "2",
    "--warmup",
    "1",
    "--imgsz",
    str(TEST_IMGSZ),
]
# The kills wait for what they aim at, and the concurrent runs need no time of measuring: no minimum duration.
QUICK_ARGS = [arg for arg in RUN_ARGS if arg not in ("--min-duration", "2")]


@dataclass
class Kill:
    """Where a SIGKILL lands: after the first progress line that holds `line` (None: the engine's start), then,
    with `write`, at the next change to the database's files (DuckDB's file or its WAL: inside the next write),
    then `after` seconds more. `runs` and `results`: what the database may hold of the killed run."""

    phase: str
    line: str | None
    write: bool = False
    after: float = 0.0
    runs: tuple = (1,)
    results: tuple = (0,)


# Named by phase rather than spread over seconds: spread over 0.3-14 s, 19 of 20 kills landed before the run's
# row existed (a fresh cache measures the machine's peak for 8 s first, and each killed run measured it again).
COLD_CACHE_KILLS = [
    Kill("the engine starting", None, after=0.3, runs=(0,)),
    Kill("model preparation", "resolving ", after=1.0, runs=(0,)),
    Kill("the peak measurement", "measuring this machine's peak", after=1.0, runs=(0,)),
    Kill("the writes of the peak and the run's row", "measuring this machine's peak", write=True, runs=(0, 1)),
    Kill("the parity reference", "computing the parity reference", after=1.0),
    Kill("an export", "onnxruntime:fp32 exporting onnx (batch 1)", after=2.0),
]
WARM_CACHE_KILLS = [  # DuckDB writes a result's transaction to its WAL at commit, then checkpoints into the file
    Kill("the first result's write", "parity reference", write=True, results=(0, 1)),
    Kill("the second result's write, 10 ms in", "onnxruntime:fp32 b1:", write=True, after=0.01, results=(1, 2)),
    Kill("the next measurement, between writes", "onnxruntime:fp32 b1:", after=0.1, results=(1, 2)),
    Kill("the last result's write, 20 ms in", "openvino:fp32 b1:", write=True, after=0.02, results=(3, 4)),
    Kill("the write that ends the run", "openvino:fp32 b2:", write=True, results=(4,)),
]


def start_engine(db, cache, *extra, args=RUN_ARGS, progress: bool = False):
    env = {**os.environ, "YOLO_BENCH_CACHE": str(cache)}
    model = ("--model", default_model_file())
    return subprocess.Popen(
        [sys.executable, "-m", "engine", "run", "--db", str(db), *model, *args, *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL if progress else subprocess.PIPE,
        stderr=subprocess.PIPE if progress else subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )


def check_consistent(db, results_of_completed: dict | None = None) -> list[tuple]:
    """Every run marked completed has all its results (4, or as given per run id), each with its samples;
    returns the runs."""
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not tables:  # killed before the schema's transaction committed: an empty file, nothing half-written
            return []
        runs = con.execute("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
        for run_id, status in runs:
            results = con.execute(
                "SELECT result_id, status, iterations FROM results WHERE run_id = ?", [run_id]
            ).fetchall()
            if status == "completed":
                expected = (results_of_completed or {}).get(run_id, 4)
                assert len(results) == expected, f"run {run_id} says completed with {len(results)} of {expected}"
            for result_id, result_status, iterations in results:
                stored = con.execute("SELECT count(*) FROM samples WHERE result_id = ?", [result_id]).fetchall()[0][0]
                assert stored == iterations, f"{result_id}: {stored} samples stored, {iterations} declared"
                if result_status == "completed":
                    assert iterations >= 15
    return runs


def database_files(db) -> tuple:
    def state(path):
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return found.st_size, found.st_mtime_ns

    return state(db), state(f"{db}.wal")


def kill_at(db, cache, kill: Kill) -> None:
    """Start the engine and SIGKILL its process group (workers too) at the kill's point."""
    process = start_engine(db, cache, args=QUICK_ARGS, progress=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stderr] + [lines.put(None)], daemon=True
    ).start()
    deadline = time.monotonic() + 300
    try:
        while kill.line is not None:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, f"the engine ended before {kill.line!r}, aiming at {kill.phase}"
            if kill.line in line:
                break
        if kill.write:
            before = database_files(db)
            while database_files(db) == before:
                assert time.monotonic() < deadline, f"no write came, aiming at {kill.phase}"
                time.sleep(0.001)
        time.sleep(kill.after)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)


def killed_run(db, runs_before: list, kill: Kill, results_of_completed: dict) -> str | None:
    """The killed run's id (None when it left no row), after checking what it left against the kill's."""
    runs = check_consistent(db, results_of_completed) if db.exists() else []
    new = [(run_id, status) for run_id, status in runs if run_id not in dict(runs_before)]
    assert len(new) in kill.runs, f"killed in {kill.phase}: {len(new)} new run(s)"
    if not new:
        return None
    ((run_id, status),) = new
    results = len(store.results_summary(db, {"run_id": run_id}))
    assert results in kill.results, f"killed in {kill.phase}: {results} result(s) stored"
    assert status == "running" or (status == "completed" and results == 4), (kill.phase, status)
    return run_id


def test_killed_anywhere_the_store_stays_consistent(tmp_path):
    """A SIGKILL in each phase of a run: the database always opens, no run says completed with results missing,
    each result has all its samples, a killed export is redone, and the next start marks killed runs."""
    db = tmp_path / "results.duckdb"
    cold = tmp_path / "cold-cache"  # nothing exported, no peak, no reference: the phases before measuring
    killed = {}
    for kill in COLD_CACHE_KILLS:
        before = check_consistent(db) if db.exists() else []
        kill_at(db, cold, kill)
        killed[kill.phase] = killed_run(db, before, kill, {})
    unfinished = [folder for folder in (cold / "exports").iterdir() if not (folder / "done.json").exists()]
    assert len(unfinished) == 1, "the export killed midway is left unmarked"
    redone = start_engine(db, cold, "--runtimes", "onnxruntime", "--batch", "1", "--json", args=QUICK_ARGS)
    out, _ = redone.communicate(timeout=600)
    assert redone.returncode == 0
    redone_run = json.loads(out)
    assert [r["status"] for r in redone_run["results"]] == ["completed"]
    assert (unfinished[0] / "done.json").exists(), "the next run exported it again, whole"
    one_result = {redone_run["run_id"]: 1}
    for kill in WARM_CACHE_KILLS:  # the exports and the reference kept from earlier runs: measuring and writes
        before = check_consistent(db, one_result)
        kill_at(db, ROOT / ".cache", kill)
        killed[kill.phase] = killed_run(db, before, kill, one_result)
    with duckdb.connect(str(db), read_only=True) as con:  # the killed runs left whole rows in every table
        for table in ("runs", "results", "samples", "stats"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] >= 1, table
    # The next start finds the killed runs and marks them interrupted; a full run then completes.
    finished = start_engine(db, ROOT / ".cache", "--json", args=QUICK_ARGS)
    out, _ = finished.communicate(timeout=600)
    assert finished.returncode == 0
    runs = dict(check_consistent(db, one_result))
    assert runs[json.loads(out)["run_id"]] == runs[redone_run["run_id"]] == "completed"
    statuses = {phase: runs[run_id] for phase, run_id in killed.items() if run_id}
    ended = "the write that ends the run"
    assert statuses.pop(ended) in {"interrupted", "completed"}, "completed when the kill came after its last write"
    assert set(statuses.values()) == {"interrupted"}, statuses
    assert {phase for phase, run_id in killed.items() if run_id} >= {
        "the parity reference",
        "an export",
        *(kill.phase for kill in WARM_CACHE_KILLS),
    }


def test_two_runs_at_once_and_readers_polling(tmp_path):
    db = tmp_path / "results.duckdb"
    cache = ROOT / ".cache"
    reader_errors: list[str] = []
    reads = 0
    stop = threading.Event()

    def poll():
        nonlocal reads
        while not stop.is_set():
            try:
                store.results_summary(db)
                store.runs(db)
                reads += 1
            except Exception as error:  # a reader must never see an error
                reader_errors.append(f"{type(error).__name__}: {error}")
            time.sleep(0.2)  # five times as often as the dashboard polls; every 0.05 s, three readers took
            # a core of the two from the engines and the test ran 71 s instead of 47 s

    readers = [threading.Thread(target=poll) for _ in range(3)]
    for reader in readers:
        reader.start()
    first = start_engine(db, cache, "--json", args=QUICK_ARGS)
    second = start_engine(db, cache, "--json", args=QUICK_ARGS)
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    stop.set()
    for reader in readers:
        reader.join(30)
    assert first.returncode == 0 and second.returncode == 0
    run_ids = {json.loads(out)["run_id"] for out in outputs}
    assert len(run_ids) == 2
    runs = dict(check_consistent(db))
    assert {runs[r] for r in run_ids} == {"completed"}
    assert not reader_errors, reader_errors[:3]
    assert reads > 20


def test_ctrl_c_or_sigterm_keeps_what_was_measured_and_marks_the_run_cancelled(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) or SIGTERM (a CI job's timeout, `kill`) to `run`: the
    run is stored as cancelled, not failed or left running; the configuration it was measuring gets no
    "failed" row (the regression watch would read it as a runtime that stopped working); no worker is left."""
    db = tmp_path / "results.duckdb"
    for stop in ("SIGINT to the group", "SIGTERM to the engine"):
        # as from a terminal: a shell that starts a job in the background (CI's, say) sets SIGINT to be ignored,
        # and Python then raises no KeyboardInterrupt
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--db", str(db), "--model", default_model_file(), *RUN_ARGS],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        for line in process.stderr:  # the progress lines: wait until batch 1 is stored, batch 2 measuring
            if "onnxruntime:fp32 b1:" in line:
                break
        workers = psutil.Process(process.pid).children(recursive=True)
        if stop.startswith("SIGINT"):
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, (stop, err[-2000:])
        run_id = store.runs(db).iloc[0]["run_id"]
        assert f"interrupted: run {run_id} is stored as cancelled with the 1 result(s) measured before" in err, stop
        assert "onnxruntime" in out, "the table of what was kept is printed"
        shown = engine("show", run_id, "--db", str(db)).stdout
        assert shown.startswith(f"run {run_id}: cancelled (interrupted by Ctrl-C or SIGTERM), started"), shown
        run = store.runs(db, {"run_id": run_id}).iloc[0]
        assert (run["status"], run["error"]) == ("cancelled", "interrupted by Ctrl-C or SIGTERM"), stop
        results = store.results_summary(db, {"run_id": run_id})
        assert list(zip(results.runtime, results.batch, results.status)) == [("onnxruntime", 1, "completed")], stop
        psutil.wait_procs(workers, timeout=10)
        assert not [worker.pid for worker in workers if worker.is_running()], f"{stop}: a worker outlived the run"


def test_a_run_whose_output_is_closed_is_stored_as_cancelled(tmp_path):
    """`engine run ... 2>&1 | head -3`: the reader exits and the next progress line meets a closed pipe. The run
    stops as at Ctrl-C, exit 141 as a shell reports SIGPIPE, with what it measured; it was stored as failed with
    "BrokenPipeError: [Errno 32] Broken pipe", which the Overview showed as if a runtime had failed."""
    db = tmp_path / "results.duckdb"
    process = start_engine(db, ROOT / ".cache", args=QUICK_ARGS, progress=True)
    for line in process.stderr:
        if "onnxruntime:fp32 b1:" in line:
            break
    workers = psutil.Process(process.pid).children(recursive=True)
    process.stderr.close()
    assert process.wait(timeout=60) == 141
    run = store.runs(db).iloc[0]
    assert (run["status"], run["error"]) == ("cancelled", "its output was closed: the program reading it exited")
    shown = engine("show", run["run_id"], "--db", str(db)).stdout
    assert shown.startswith(f"run {run['run_id']}: cancelled (its output was closed: the program reading it exited)")
    results = store.results_summary(db, {"run_id": run["run_id"]})
    assert ("onnxruntime", 1, "completed") in set(zip(results.runtime, results.batch, results.status))
    assert set(results.status) == {"completed"}, "nothing it was measuring is stored as failed"
    check_consistent(db)
    psutil.wait_procs(workers, timeout=10)
    assert not [worker.pid for worker in workers if worker.is_running()], "a worker outlived the run"


class Handle:
    """Stands for a finished job's pipe or process handle, which multiprocessing closes from a finalizer."""


def test_a_ctrl_c_that_lands_in_a_finalizer_still_stops_the_run(tmp_path):
    """Python's own handler raises KeyboardInterrupt wherever the main thread is; inside a finalizer Python prints
    "Exception ignored" and drops it, and a run so interrupted (once in a clean clone's test above) measured on to
    its end and exited 0. The run's handler records it for the runner's next check instead."""
    runner = Runner(RunConfig(db=str(tmp_path / "results.duckdb")))
    # as in a terminal: `make test` started in the background by a shell has SIGINT ignored, and the run leaves it so
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with runner.stop_signals:
        handle = Handle()
        weakref.finalize(handle, os.kill, os.getpid(), signal.SIGINT)
        del handle  # the finalizer runs, and the signal lands in it
        with pytest.raises(KeyboardInterrupt):
            runner.should_cancel()  # polled every 0.2 s while a job runs, and before each batch size
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # asked again: at once, wherever the run is
            time.sleep(5)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "Python's handler again after the run"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a job a shell started in the background
    try:
        with runner.stop_signals:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN, "not Ctrl-C's to stop"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_worker_that_dies_once_the_run_was_asked_to_stop_is_not_reported_as_failed():
    """Ctrl-C reaches the whole process group, and a worker still starting (Python's own SIGINT handler not yet
    replaced) dies of it: that is the stop, not a runtime's crash. A clean clone's Ctrl-C test once stored
    "onnxruntime:fp32 b2: FAILED: worker process crashed with SIGINT" for the configuration being measured."""
    stop = threading.Event()

    def stop_the_run():
        time.sleep(0.5)  # the worker is importing torch
        stop.set()  # the run's flag, then the worker's death, as the one signal does both
        worker = next(p for p in multiprocessing.active_children() if p.name == "bench-prepare")
        os.kill(worker.pid, signal.SIGKILL)

    threading.Thread(target=stop_the_run).start()
    with pytest.raises(Cancelled):
        run_job("prepare", {"model": "yolov8n.yaml"}, timeout_s=60, should_cancel=stop.is_set)


def test_a_worker_measures_on_only_once_its_result_is_recorded():
    """What a worker measures after its result (in flight, a profile) waits for the parent's RECORDED: the parent's
    parity check and writes would otherwise share the CPU with it (profiles came out 1.4-3x the inference)."""
    from engine.supervise import RECORDED, _tell
    from engine.worker import wait_until_recorded

    parent, child = multiprocessing.Pipe(duplex=True)
    resumed = []

    def worker():
        child.send(("result", None))
        wait_until_recorded(child)
        resumed.append(time.monotonic())

    thread = threading.Thread(target=worker)
    thread.start()
    assert parent.recv() == ("result", None)
    time.sleep(0.3)  # the parent recording
    told = time.monotonic()
    _tell(parent, RECORDED)
    thread.join(5)
    assert resumed and resumed[0] >= told
    parent.close()  # a parent gone: the worker goes on at once, as it does past the limit
    started = time.monotonic()
    wait_until_recorded(child)
    wait_until_recorded(multiprocessing.Pipe(duplex=True)[0], limit_s=0.2)
    assert time.monotonic() - started < 2
