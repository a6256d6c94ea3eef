"""`runs` and `show`: what a headless machine has stored, read back without the dashboard."""

import json
import os
import shutil
import subprocess
import sys

import duckdb

from engine import ranking
from tests.conftest import ROOT, engine


def test_runs_lists_the_stored_runs_with_their_result_counts(filled_run):
    done = engine("runs", "--db", str(filled_run["db"]))
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith(filled_run["run_id"])]
    assert "completed" in line and "4/4" in line, "onnxruntime and openvino at batch 1 and 2, all completed"
    assert line.lower().count("untrained") == 1, f"the offline fallback is named, once: {line}"
    with duckdb.connect(str(filled_run["db"]), read_only=True) as con:
        threads = con.execute(
            "SELECT any_value(threads) FROM results WHERE run_id = ?", [filled_run["run_id"]]
        ).fetchone()[0]
    assert f" px · {threads} thread" in line, f"a run on other threads is told apart: {line}"

    listed = json.loads(engine("runs", "--db", str(filled_run["db"]), "--json").stdout)
    (run,) = [run for run in listed if run["run_id"] == filled_run["run_id"]]
    assert (run["results"], run["completed"], run["status"], run["threads"]) == (4, 4, "completed", threads)


def test_runs_tells_two_machines_of_one_label_apart(filled_run, tmp_path):
    """Two CI runners both run with --label ci: their runs' lines must not read as one machine's."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(filled_run["db"], db)
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE runs SET machine_label = 'ci'")
        machine_id = con.execute("SELECT machine_id FROM runs").fetchone()[0]
        con.execute(
            "INSERT INTO runs SELECT * REPLACE ('20261101-000000-other0' AS run_id, "
            "'f00dfeed0000' AS machine_id) FROM runs"
        )
    lines = engine("runs", "--db", str(db)).stdout.splitlines()
    assert [line for line in lines if f"ci ({machine_id[:8]}) / " in line and line.startswith(filled_run["run_id"])]
    assert [line for line in lines if "ci (f00dfeed) / " in line and line.startswith("20261101-000000-other0")]
    listed = json.loads(engine("runs", "--db", str(db), "--json").stdout)
    assert {run["machine_id"] for run in listed} == {machine_id, "f00dfeed0000"}


def test_show_prints_a_stored_run_as_the_run_printed_it(filled_run):
    done = engine("show", filled_run["run_id"], "--db", str(filled_run["db"]))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"run {filled_run['run_id']}: completed")
    assert lines[0].lower().count("untrained") == 1 and lines[0].endswith("boxes and scores mean nothing"), lines[0]
    rows = [line.split() for line in lines if line.startswith(("onnxruntime ", "openvino "))]
    assert sorted((row[0], row[2]) for row in rows) == [
        ("onnxruntime", "1"),
        ("onnxruntime", "2"),
        ("openvino", "1"),
        ("openvino", "2"),
    ]
    assert all(row[-1] == "ok" and float(row[4]) > 0 for row in rows), "each row with its inference median"

    shown = json.loads(engine("show", filled_run["run_id"], "--db", str(filled_run["db"]), "--json").stdout)
    best, _ = ranking.fastest(shown["results"])
    assert shown["fastest"] == best["result_id"]
    assert lines[-1].startswith(f"fastest: {best['runtime']}:{best['precision']} b{best['batch']}, ")


def test_show_and_runs_name_what_is_missing(filled_run, tmp_path):
    unknown = engine("show", "no-such-run", "--db", str(filled_run["db"]))
    assert unknown.returncode == 2 and "run no-such-run is not in" in unknown.stderr and "engine runs" in unknown.stderr
    missing = tmp_path / "nowhere.duckdb"
    for command in (["runs"], ["show", filled_run["run_id"]]):
        done = engine(*command, "--db", str(missing))
        assert done.returncode == 2 and "does not exist" in done.stderr, done.stderr
    assert not missing.exists(), "reading creates no database"


def test_output_piped_into_a_reader_that_stops_ends_without_a_traceback(filled_run):
    """`python -m engine show RUN | head -1` printed a BrokenPipeError traceback: the reader here is gone at once."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "show", filled_run["run_id"], "--db", str(filled_run["db"])],
            cwd=ROOT,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
