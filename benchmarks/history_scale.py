"""History at scale: 10,000 runs and 1,000,000 samples across 20 machines, then the History page's reads.

The history is synthetic (generated in bulk by DuckDB into the real schema, 4 results of 25 samples per
run); the timed part is what the History page reads (dashboard/history_scope.py) and the Plotly figures built
from it, each cold (no cache). What a person waits for is benchmarks/dashboard_scale.py's to measure. Prints a
Markdown table and writes it to docs/results/ (benchmarks/publish.py). Target: each step under 1 s, the database
under 200 MB.

    .venv/bin/python benchmarks/history_scale.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.publish import publish  # noqa: E402 - after the path line above

RUNTIMES = ("onnxruntime", "openvino", "tflite", "pytorch")
SAMPLES_PER_RESULT = 25


def generate(db: Path, runs: int, machines: int) -> None:
    """Run i: on machine i % machines, batch 1 + i % 4, yolov8s in every third group of four runs (else yolov8n),
    so that with a machine count that is a multiple of 4 each run's baseline (its machine's run before it of its
    model) measured its batch size, from 10 runs on."""
    import duckdb

    from engine import store

    store.ensure_schema(db)
    con = duckdb.connect(str(db))
    con.execute(f"""INSERT INTO machines (machine_id, label, cpu_model, arch, physical_cores, logical_cores, ram_gb,
                       isa_flags, gpus, os, python, fingerprint, first_seen)
                    SELECT 'm' || i, 'machine-' || i, 'CPU ' || i, 'x86_64', 2 + i % 8, 4 + i % 8, 16, ['avx2'], [],
                           'Linux', '3.11', '{{}}', TIMESTAMPTZ '2026-01-01'
                    FROM range({machines}) t(i)""")
    con.execute(f"""INSERT INTO runs (run_id, started_at, finished_at, status, machine_id, machine_label, model,
                       model_sha256, model_source, weights_trained, imgsz, images, config, libraries, pid)
                    SELECT 'run' || i, TIMESTAMPTZ '2026-01-01' + i * INTERVAL 30 MINUTE,
                           TIMESTAMPTZ '2026-01-01' + i * INTERVAL 30 MINUTE + INTERVAL 2 MINUTE, 'completed',
                           'm' || (i % {machines}), 'machine-' || (i % {machines}),
                           CASE WHEN i // 4 % 3 = 0 THEN 'yolov8s' ELSE 'yolov8n' END, 'sha', 'synthetic', true, 640,
                           '[]', '{{}}', '{{"openvino": "2026.' || (i // 1000) || '.0", "numpy": "2.1.3"}}', 0
                    FROM range({runs}) t(i)""")  # an OpenVINO upgrade every 1,000 runs, on every machine
    runtimes = "[" + ", ".join(f"'{r}'" for r in RUNTIMES) + "]"
    con.execute(f"""INSERT INTO results (result_id, run_id, runtime, precision, batch, status, imgsz, threads,
                       settings, export_cached, warmup, iterations, finished_at)
                    SELECT 'run' || i || '-' || j, 'run' || i, {runtimes}[j + 1], 'fp32', 1 + (i % 4), 'completed',
                           640, 2, '{{}}', true, 3, {SAMPLES_PER_RESULT}, TIMESTAMPTZ '2026-01-01'
                    FROM range({runs}) a(i), range({len(RUNTIMES)}) b(j)""")
    con.execute(f"""INSERT INTO samples (result_id, iteration, decode_ns, pre_ns, infer_ns, post_ns)
                    SELECT result_id, k, 3000000, 2000000 + (hash(result_id, k) % 200000),
                           40000000 + (hash(result_id, k, 1) % 8000000), 900000
                    FROM results, range({SAMPLES_PER_RESULT}) c(k)""")
    for stage, column in (
        ("decode", "decode_ns"),
        ("pre", "pre_ns"),
        ("infer", "infer_ns"),
        ("post", "post_ns"),
        ("total", "pre_ns + infer_ns + post_ns"),
    ):
        con.execute(f"""INSERT INTO stats
                        SELECT result_id, '{stage}', count(*), avg({column}) / 1e6, median({column}) / 1e6,
                               quantile_cont({column}, 0.9) / 1e6, quantile_cont({column}, 0.99) / 1e6,
                               min({column}) / 1e6, max({column}) / 1e6, stddev({column}) / 1e6,
                               quantile_disc({column}, 0.3) / 1e6, quantile_disc({column}, 0.7) / 1e6,
                               stddev({column}) / avg({column})
                        FROM samples GROUP BY result_id""")
    con.execute("CHECKPOINT")
    con.close()


def timed(step, repeats: int = 5) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--machines", type=int, default=20)
    parser.add_argument("--out", default="", help="a file to write the table to, instead of docs/results/")
    args = parser.parse_args()

    from dashboard import charts
    from engine import api
    from engine.machine import fingerprint

    db = Path(tempfile.mkdtemp(prefix="history-scale-")) / "results.duckdb"
    started = time.perf_counter()
    generate(db, args.runs, args.machines)
    generate_s = time.perf_counter() - started
    summary = api.results_summary(str(db))
    newest = api.runs(str(db)).iloc[0]
    scope = {"machine_id": [newest["machine_id"]], "model": [newest["model"]]}
    splits = ["runtime", "precision", "batch"]
    steps = {  # what the History page reads: history_scope.py
        "history_choices (the filters and the scope's pickers)": lambda: api.history_choices(str(db)),
        "history_points, newest machine and model, reduced": lambda: api.history_points(
            str(db), scope, "infer_ms", splits, 150
        ),
        "history_points, every machine": lambda: api.history_points(
            str(db), {"model": [newest["model"]]}, "infer_ms", ["machine_label", *splits], 150
        ),
        "results_page (100 rows, newest first, and the count)": lambda: api.results_page(str(db), {}, 100, 0),
        "results_summary, one machine and model (the batch chart's rows)": lambda: api.results_summary(str(db), scope),
        "latest_runs per machine and model (machines side by side)": lambda: api.latest_runs(str(db), {}, True),
        "results_summary, whole history (CSV download only)": lambda: api.results_summary(str(db)),
        "chart: infer median over time, one machine, library upgrades marked": lambda: charts.history_figure(
            api.history_points(str(db), scope, "infer_ms", splits, 150),
            "infer_ms",
            splits,
            api.library_steps(api.runs(str(db), {"machine_id": scope["machine_id"]})),
        ),
        "chart: latency and throughput against batch": lambda: charts.batch_scaling(summary),
        "chart: machines compared": lambda: charts.machines_bars(summary, "infer_ms"),
    }
    rows = [(name, timed(step)) for name, step in steps.items()]
    size_mb = db.stat().st_size / 1e6
    with_samples = f"{len(summary):,} results, {len(summary) * SAMPLES_PER_RESULT:,} samples"
    machine = fingerprint()
    lines = [
        f"# History at scale ({time.strftime('%Y-%m-%d')}, {machine['cpu_model']}, {machine['physical_cores']} cores)",
        "",
        f"`benchmarks/history_scale.py --runs {args.runs}`: {args.runs:,} runs on {args.machines} machines "
        f"({with_samples}), generated in {generate_s:.1f} s. Median of 5 per step; target under 1 s each.",
        "",
        "| step (what the History page calls) | median s | under 1 s |",
        "|---|---|---|",
        *[f"| {name} | {seconds:.3f} | {'yes' if seconds < 1 else 'NO'} |" for name, seconds in rows],
        f"| database file size | {size_mb:.0f} MB | {'under' if size_mb < 200 else 'OVER'} 200 MB |",
    ]
    publish(lines, Path(args.out).resolve() if args.out else "history_scale.md")


if __name__ == "__main__":
    main()
