"""Pipeline modes: what each runtime's bare inference costs next to the two pipelines around it.

One engine run measures every CPU runtime that runs here (the default six and the other formats: TF GraphDef,
OpenCV DNN, NCNN, MNN, Paddle, ExecuTorch; CoreML on macOS) at 640, batch 1, at every precision it offers
(fp32; OpenVINO bf16 and int8; TFLite, ONNX Runtime and MNN int8; NCNN and MNN fp16) in both pipeline modes:
`lean` (the engine's own pipeline, its threads) and `ultralytics` (Ultralytics' predictor on the same artifact,
its threads, with rect=False so both see the same square input, and OpenVINO pinned to the row's precision).
The lean results also measure images/s end to end (pre, infer, post of decoded frames) with IN_FLIGHT batches
in flight where offered (--in-flight), at every batch size, and so do the ultralytics results (IN_FLIGHT
predictors, a YOLO model per thread, as Ultralytics' thread-safe inference guide has it): configurations of
their own, on both sides of the fastest-vs-fastest ratio. Prints a
Markdown table and writes it to docs/results/ (benchmarks/publish.py).

    .venv/bin/python benchmarks/pipeline_modes.py [--iters 30] [--rounds 3] [--runtimes pytorch,onnxruntime,...]
        [--precisions all|fp32]

With --rounds N both engine runs are repeated N times one after the other, and each figure is the median
of the N runs' medians: on a noisy VM the fastest-vs-fastest ratio moved by 0.2 between single runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import publish  # noqa: E402 - after the path line above


def cpu_runtimes() -> str:
    """Every CPU runtime that runs on this machine (CoreML is exported but not run off macOS)."""
    from engine.runtimes import registry

    runtimes = [registry.get(name) for name in registry.names()]
    return ",".join(r.name for r in runtimes if r.device == "cpu" and r.availability()[0] and not r.export_only())


IN_FLIGHT = 2  # one request per core here
TORCH_RUNTIMES = ("pytorch", "torchscript", "torch-compile", "executorch")  # they import torch in the lean mode too
SEARCH_RUNTIME = "openvino"  # the fastest at every precision here: the one whose batch sizes are searched too
KEYS = ["runtime", "precision", "batch", "mode"]
PER_ROUND = [
    "decode_ms",
    "pre_ms",
    "infer_ms",
    "post_ms",
    "total_ms",
    "throughput_ips",
    "in_flight_ips",
    "peak_fraction",
    "peak_memory_mb",
]  # the figures the tables show, each the median over rounds


def run_engine(
    db: Path, runtimes: str, precisions: str, batches: str, iters: int, warmup: int, in_flight: int
) -> tuple[list[str], str]:
    command = [
        sys.executable,
        "-m",
        "engine",
        "run",
        "--runtimes",
        runtimes,
        "--precisions",
        precisions,
        "--batch",
        batches,
        "--imgsz",
        "640",
        "--modes",
        "lean,ultralytics",
        "--iters",
        str(iters),
        "--warmup",
        str(warmup),
        "--in-flight",
        str(in_flight),
        "--db",
        str(db),
        "--json",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"engine run failed:\n{done.stderr[-3000:]}")
    return command, json.loads(done.stdout)["run_id"]


def shown(command: list[str], db: Path) -> str:
    text = " ".join(part if " " not in part else f"'{part}'" for part in command[1:])
    return text.replace(str(db), "<tmp>.duckdb")


def ratio(numerator, denominator) -> str:
    return f"{numerator / denominator:.2f}" if numerator and denominator else "-"


def ms(value) -> str:
    return f"{value:.1f}" if value == value and value is not None else "-"


def megabytes(value) -> str:
    return f"{value:.0f}" if value == value and value is not None else "-"


def verdict(value) -> str:
    return value if isinstance(value, str) else "unknown (no boxes on either side)"


def ran_as(row) -> str:
    """The precision the runtime reports it ran (OpenVINO's effective hint), else the row's own."""
    settings = json.loads(row.settings) if row.settings else {}
    return settings.get("inference_precision", row.precision)


def table(summary) -> list[str]:
    lines = [
        "| runtime | precision (lean / ultralytics ran) | bare infer ms | lean end-to-end ms "
        "| ultralytics end-to-end ms | lean / bare | ultralytics / lean | ultralytics - lean ms | decode ms "
        f"| infer % of peak | lean img/s, 1 at a time | lean img/s, {IN_FLIGHT} in flight "
        f"| ultralytics img/s, 1 at a time | ultralytics img/s, {IN_FLIGHT} in flight | ultralytics parity "
        "| peak MB lean / ultralytics |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(row.runtime, row.precision, row.mode): row for row in summary.itertuples()}
    for runtime, precision in dict.fromkeys(zip(summary["runtime"], summary["precision"])):
        lean, ultra = by_key.get((runtime, precision, "lean")), by_key.get((runtime, precision, "ultralytics"))
        if lean is None or ultra is None or lean.status != "completed" or ultra.status != "completed":
            error = (lean.error if lean is not None else "") or (ultra.error if ultra is not None else "missing")
            lines.append(f"| {runtime} | {precision} | failed: {error} | | | | | | | | | | | | | |")
            continue
        lines.append(
            f"| {runtime} | {precision} ({ran_as(lean)} / {ran_as(ultra)}) | {ms(lean.infer_ms)} "
            f"| {ms(lean.total_ms)} | {ms(ultra.total_ms)} | {ratio(lean.total_ms, lean.infer_ms)} "
            f"| {ratio(ultra.total_ms, lean.total_ms)} "
            f"| {ms(ultra.total_ms - lean.total_ms)} | {ms(lean.decode_ms)} | {lean.peak_fraction:.0%} of "
            f"{lean.peak_kind} | {ms(lean.throughput_ips)} | {ms(lean.in_flight_ips)} "
            f"| {ms(ultra.throughput_ips)} | {ms(ultra.in_flight_ips)} "
            f"| {verdict(ultra.parity_verdict)} "
            f"| {megabytes(lean.peak_memory_mb)} / {megabytes(ultra.peak_memory_mb)} |"
        )
    return lines


def batch_table(search) -> list[str]:
    """The batch sizes the search run adds: end-to-end per image in each mode, and their ratio."""
    lines = [
        "| runtime | precision | batch | lean end-to-end ms/img | ultralytics end-to-end ms/img "
        f"| ultralytics / lean | lean {IN_FLIGHT} in flight ms/img | ultralytics {IN_FLIGHT} in flight ms/img "
        "| ultralytics / lean in flight |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {
        (row.runtime, row.precision, row.batch, row.mode): row
        for row in search.itertuples()
        if row.status == "completed"
    }
    for runtime, precision, batch in sorted(set(zip(search["runtime"], search["precision"], search["batch"]))):
        lean = by_key.get((runtime, precision, batch, "lean"))
        ultra = by_key.get((runtime, precision, batch, "ultralytics"))
        flight = per_image_in_flight(lean) if lean else None
        ultra_flight = per_image_in_flight(ultra) if ultra else None
        lines.append(
            f"| {runtime} | {precision} | {batch} | {ms(lean.total_ms) if lean else 'failed'} "
            f"| {ms(ultra.total_ms) if ultra else 'failed'} "
            f"| {ratio(ultra.total_ms, lean.total_ms) if lean and ultra else '-'} "
            f"| {ms(flight)} | {ms(ultra_flight)} | {ratio(ultra_flight, flight)} |"
        )
    return lines


def over_rounds(rounds: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per configuration: the median over rounds of each figure where every round completed it, else
    the configuration's first failure."""
    rows = []
    for _, group in pd.concat(rounds, ignore_index=True).groupby(KEYS, sort=False):
        done = group[group["status"] == "completed"]
        if len(done) < len(group):
            rows.append(group[group["status"] != "completed"].iloc[0])
            continue
        row = done.iloc[0].copy()
        for column in PER_ROUND:
            row[column] = done[column].median()
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def per_image_in_flight(row) -> float | None:
    """ms per image end to end with batches in flight: 1000 / its images/s; None where not measured."""
    ips = getattr(row, "in_flight_ips", None)
    return 1000 / ips if ips and ips == ips else None


def configurations(rows: pd.DataFrame) -> pd.DataFrame:
    """Each completed result one at a time, and again in flight where it has that figure: total_ms per image
    (1000 / images/s in flight), `how` saying which."""
    done = rows[rows["status"] == "completed"]
    measured = done[done["in_flight_ips"].notna() & (done["in_flight_ips"] > 0)]
    return pd.concat(
        [
            done.assign(how="1 at a time"),
            measured.assign(total_ms=1000 / measured["in_flight_ips"], how=f"{IN_FLIGHT} in flight"),
        ],
        ignore_index=True,
    )


def fastest_pair(rows: pd.DataFrame, how: str | None = None) -> tuple[pd.Series, pd.Series] | None:
    """The fastest lean and the fastest ultralytics configuration (of one `how`, or of all)."""
    found = configurations(rows)
    if how:
        found = found[found["how"] == how]
    lean, ultra = found[found["mode"] == "lean"], found[found["mode"] == "ultralytics"]
    if lean.empty or ultra.empty:
        return None
    return lean.loc[lean["total_ms"].idxmin()], ultra.loc[ultra["total_ms"].idxmin()]


def ratio_per_round(mains: list[pd.DataFrame], searches: list[pd.DataFrame]) -> list[tuple[float, float]]:
    """Each round's fastest ultralytics over its fastest lean configuration: one at a time, and of all."""
    ratios = []
    for i, main in enumerate(mains):
        rows = pd.concat([main, *searches[i : i + 1]], ignore_index=True)
        one, every = fastest_pair(rows, "1 at a time"), fastest_pair(rows)
        if one and every:
            ratios.append((one[1].total_ms / one[0].total_ms, every[1].total_ms / every[0].total_ms))
    return ratios


def named(best: pd.Series) -> str:
    return f"{best.runtime} {best.precision} batch {best.batch}, {best.how}, {best.total_ms:.1f} ms/img"


def fastest(rows) -> tuple[str, float]:
    best = rows.loc[rows["total_ms"].idxmin()]
    return f"{best.runtime} {best.precision} batch {best.batch} {best.total_ms:.1f} ms/img", best.total_ms


def headline(summary, search) -> list[str]:
    everything = pd.concat([summary, search], ignore_index=True)
    done = everything[everything["status"] == "completed"]
    lines = []
    lean, ultra = done[done["mode"] == "lean"], done[done["mode"] == "ultralytics"]
    every, one = fastest_pair(everything), fastest_pair(everything, "1 at a time")
    if every and one:
        lines.append(
            f"- Fastest lean configuration: {named(every[0])}; fastest ultralytics configuration: "
            f"{named(every[1])}; ratio {ratio(every[1].total_ms, every[0].total_ms)} (target >= 1.3; "
            f"in flight: {IN_FLIGHT} batches at once, end to end, 1000 / images/s)."
        )
        lines.append(
            f"- One batch at a time only: fastest lean {named(one[0])}, fastest ultralytics "
            f"{named(one[1])}; ratio {ratio(one[1].total_ms, one[0].total_ms)}."
        )
        fp32_lean, fp32_ultra = lean[lean["precision"] == "fp32"], ultra[ultra["precision"] == "fp32"]
        if not fp32_lean.empty and not fp32_ultra.empty and set(done["precision"]) != {"fp32"}:
            (lean_name, lean_ms), (ultra_name, ultra_ms) = fastest(fp32_lean), fastest(fp32_ultra)
            lines.append(
                f"- At fp32 only, one batch at a time: fastest lean {lean_name}, fastest ultralytics "
                f"{ultra_name}; ratio "
                f"{ratio(ultra_ms, lean_ms)} (the predictor's milliseconds weigh less on a slower "
                "inference)."
            )
    done = summary[summary["status"] == "completed"]  # batch 1 from here on
    lean, ultra = done[done["mode"] == "lean"], done[done["mode"] == "ultralytics"]
    torch_lean = lean[(lean["runtime"] == "pytorch") & (lean["precision"] == "fp32")]
    torch_ultra = ultra[(ultra["runtime"] == "pytorch") & (ultra["precision"] == "fp32")]
    if not torch_lean.empty and not torch_ultra.empty:
        a, b = torch_lean.iloc[0], torch_ultra.iloc[0]
        lean_threads = (a.settings and json.loads(a.settings).get("threads")) or a.threads
        ultra_threads = b.settings and json.loads(b.settings).get("torch_threads")
        lines.append(
            f"- PyTorch lean ({lean_threads} threads, the engine's) {a.total_ms:.1f} ms vs Ultralytics' "
            f"default PyTorch path ({ultra_threads} thread(s)) {b.total_ms:.1f} ms: "
            f"{ratio(b.total_ms, a.total_ms)}x (target >= 1.8)."
        )
    memory = done.pivot_table(index=["runtime", "precision"], columns="mode", values="peak_memory_mb")
    if {"lean", "ultralytics"} <= set(memory.columns):
        added = (memory["ultralytics"] - memory["lean"]).dropna()
        torch_based = added.index.get_level_values("runtime").isin(TORCH_RUNTIMES)
        if not added.empty:
            other, torch_added = added[~torch_based], added[torch_based]
            lines.append(
                "- Peak memory the predictor adds to the same model's worker at batch 1: "
                + (
                    f"{other.min():+.0f} to {other.max():+.0f} MB for the other runtimes' files (it loads PyTorch "
                    "whatever the file)"
                    if not other.empty
                    else ""
                )
                + ("; " if not other.empty and not torch_added.empty else "")
                + (
                    f"{torch_added.min():+.0f} to {torch_added.max():+.0f} MB for {', '.join(TORCH_RUNTIMES)}, "
                    "which load PyTorch either way"
                    if not torch_added.empty
                    else ""
                )
                + "."
            )
    if not lean.empty:
        worst = lean.assign(overhead=lean["total_ms"] / lean["infer_ms"]).sort_values("overhead").iloc[-1]
        lines.append(
            f"- Largest lean end-to-end / bare inference: {worst.runtime} {worst.precision} "
            f"{worst.overhead:.2f} (target <= 1.10)."
        )
    return lines


def main() -> None:
    from engine import store
    from engine.machine import fingerprint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=None, help="default: every CPU runtime that runs here")
    parser.add_argument("--precisions", default="all", help="'all' (every precision each runtime offers) or fp32")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="repeat both engine runs; medians over rounds")
    parser.add_argument(
        "--search-batches",
        default="2,4,8",
        help=f"batch sizes at which {SEARCH_RUNTIME} also runs in both modes ('' for none)",
    )
    args = parser.parse_args()
    args.runtimes = args.runtimes or cpu_runtimes()
    started = time.time()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "results.duckdb"
        mains, searches, search_command = [], [], None
        for _ in range(args.rounds):
            command, run_id = run_engine(db, args.runtimes, args.precisions, "1", args.iters, args.warmup, IN_FLIGHT)
            mains.append(store.results_summary(db, {"run_id": run_id}))
            if args.search_batches:
                search_command, search_id = run_engine(
                    db, SEARCH_RUNTIME, args.precisions, args.search_batches, args.iters, args.warmup, IN_FLIGHT
                )
                searches.append(store.results_summary(db, {"run_id": search_id}))
        summary = over_rounds(mains)
        search = over_rounds(searches) if searches else summary.iloc[0:0]
        per_round = ratio_per_round(mains, searches)
    machine = fingerprint()
    lines = [
        f"`benchmarks/pipeline_modes.py --iters {args.iters} --rounds {args.rounds} --precisions "
        f"{args.precisions}` on {machine['cpu_model']} ({machine['physical_cores']} cores), "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; {time.time() - started:.0f} s wall; "
        f"{args.rounds} round(s) of `python {shown(command, db)}`"
        + (f", then `python {shown(search_command, db)}`." if search_command else "."),
        "",
        f"Medians in ms per image (the median over the {args.rounds} rounds of each run's median), 640x640, "
        "batch 1, at each precision the runtime offers; in brackets the precision each mode reports it ran "
        "(OpenVINO's effective hint). bare infer: the engine's inference "
        "stage alone (lean mode); end-to-end: decoded frame to final boxes (pre + infer + post, plus the "
        "predictor's other time in the ultralytics mode); decode (JPEG read) is the same for both and kept out. "
        "The machine is shared and noisy: compare rows of one run, not across runs. lean img/s: 1000 / lean "
        "end-to-end, one request at a time; ultralytics - lean: what the predictor adds to the same model; in "
        f"flight: images/s end to end (pre + infer + post of decoded frames) with {IN_FLIGHT} batches in flight "
        "for 2 s, checked to find the boxes found one at a time (OpenVINO THROUGHPUT hint + AsyncInferQueue, "
        "ONNX Runtime a session per request on its own thread; '-': not offered); peak MB: "
        "the measuring worker's peak resident memory (its own process per result: Python, runtime and model).",
        "",
        *table(summary),
        "",
        *(
            [
                f"{SEARCH_RUNTIME} at more batch sizes, so that 'fastest configuration' covers batch too (medians "
                "per image; one at a time both modes compile it with the LATENCY hint; in flight the lean pipeline "
                f"compiles it with the THROUGHPUT hint, a stream per batch, and the ultralytics mode runs {IN_FLIGHT} "
                "predictors, a YOLO model per thread):",
                "",
                *batch_table(pd.concat([summary[summary["runtime"] == SEARCH_RUNTIME], search])),
                "",
            ]
            if not search.empty
            else []
        ),
        *headline(summary, search),
        *(
            [
                f"- Fastest ultralytics / fastest lean configuration in each round: "
                f"{', '.join(f'{every:.2f}' for _, every in per_round)}; one batch at a time only: "
                f"{', '.join(f'{one:.2f}' for one, _ in per_round)}."
            ]
            if len(per_round) > 1
            else []
        ),
    ]
    publish(lines, "pipeline_modes.md")


if __name__ == "__main__":
    main()
