"""torch.compile (inductor) on the CPU: the model compiled in load(), so the compile is the load time and the
timed calls run compiled code, with the eager model's outputs (parity against PyTorch)."""

from __future__ import annotations

import json

import duckdb

from tests.conftest import engine_run, parse_json_output


def test_torch_compile_runs_compiled_and_its_compile_is_its_load_time(tmp_path):
    db = tmp_path / "results.duckdb"
    done = engine_run(db, "--runtimes", "pytorch,torch-compile", "--batch", "1", "--iters", "6", "--json", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = parse_json_output(done)["run_id"]
    with duckdb.connect(str(db), read_only=True) as con:
        rows = {
            runtime: (status, verdict, load_s, json.loads(settings))
            for runtime, status, verdict, load_s, settings in con.execute(
                "SELECT r.runtime, r.status, s.parity_verdict, r.load_s, r.settings FROM results r "
                "JOIN results_summary s USING (result_id) WHERE r.run_id = ?",
                [run_id],
            ).fetchall()
        }
    status, verdict, load_s, settings = rows["torch-compile"]
    assert (status, verdict) == ("completed", "pass")
    assert settings["compile"] == {"backend": "inductor", "dynamic": False} and settings["threads"] > 0
    assert load_s > rows["pytorch"][2] + 1, "inductor compiles in load(): seconds, not the eager load's"
