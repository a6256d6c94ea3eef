"""CLI: `python -m engine COMMAND ...`; `python -m engine --help` lists the commands."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from engine import models
from engine.cli_output import (
    comparison_document,
    print_comparison,
    print_run,
    print_watch,
    progress_printer,
    records,
    run_document,
)
from engine.config import BenchError, RunConfig, parse_int_list, parse_modes, parse_name_list, parse_runtimes
from engine.measure import MIN_CI_SAMPLES

DEFAULTS = RunConfig()  # the CLI's defaults are RunConfig's
DB_HELP = "a DuckDB file, or a shared store: ducklake+postgres://USER@HOST:PORT/DBNAME?data_path=/shared/folder"


def shared_options() -> dict[str, argparse.ArgumentParser]:
    """Options many commands take, declared once: --db (default from YOLO_BENCH_DB, as the dashboard's) and --json."""
    from engine.paths import default_db

    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", default=default_db(), help=DB_HELP)
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return {"db": db, "json": as_json}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Benchmark a YOLO detector across runtimes.")
    commands = parser.add_subparsers(dest="command", required=True)
    shared = shared_options()
    db, as_json, both = [shared["db"]], [shared["json"]], [shared["db"], shared["json"]]

    commands.add_parser("runtimes", parents=as_json, help="list runtimes, available or not, and why")

    run = commands.add_parser("run", parents=both, help="benchmark a model and append the results to DuckDB")
    add_run_options(run)
    run.add_argument("--bundle", default="", help="also write the run as a bundle (.zip) to this path")
    run.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 also when the regression watch flags one of this run's results (as "
        "check-regressions --run RUN_ID --fail-on-regression would)",
    )

    job = commands.add_parser("job", help="run a job folder made by the dashboard (internal)")
    job.add_argument("folder")

    listing_runs = commands.add_parser(
        "runs", parents=both, help="list the runs in a DB, newest first (ids for show, export, bundle)"
    )
    listing_runs.add_argument("--limit", type=int, default=20, help="how many of the newest runs (default 20)")

    show = commands.add_parser("show", parents=both, help="print a stored run's table, as the run printed it")
    show.add_argument("run_id")

    against = commands.add_parser(
        "compare",
        parents=both,
        help="run B against baseline run A: B / A per configuration, and what differs or is left out",
    )
    against.add_argument(
        "run_ids",
        nargs="+",
        metavar="RUN",
        help="RUN_A RUN_B (A the baseline), or RUN_B alone: "
        "A is then the newest earlier run that completed one of B's configurations, on B's machine, "
        "model and image size where one did (as the Compare page opens)",
    )
    against.add_argument(
        "--fail-above",
        type=float,
        default=0.0,
        metavar="RATIO",
        help="exit 1 when B's inference median is above RATIO x A's for some configuration (e.g. "
        "1.10), or a configuration's parity got worse or it failed in B (a CI gate)",
    )

    export = commands.add_parser("export", parents=db, help="write a run's tables to files")
    add_run_id(export)
    export.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    export.add_argument(
        "--out",
        default="",
        help="the folder to write to (default: exports/RUN_ID/ in the "
        "database's artifacts folder, results.artifacts/ beside results.duckdb)",
    )

    bundle = commands.add_parser(
        "bundle", parents=db, help="write a run as one self-contained zip, for another machine's DB"
    )
    add_run_id(bundle)
    bundle.add_argument("--out", required=True, help="the .zip to write")

    removal = commands.add_parser(
        "delete",
        parents=db,
        help="delete a run (one measured on a busy machine, say); its bundle is "
        "kept first, and `import` brings it back",
    )
    removal.add_argument("run_id", help="a run id (`python -m engine runs` lists them)")

    merge = commands.add_parser("import", parents=db, help="merge run bundles into a DB (importing twice adds nothing)")
    merge.add_argument("bundles", nargs="+")

    restoring = commands.add_parser("restore", parents=db, help="bring a deleted run back from its kept bundle")
    restoring.add_argument("run_id", help="a deleted run's id (`delete` printed it; the Machines page lists them)")

    watch = commands.add_parser(
        "check-regressions",
        parents=both,
        help="flag results slower or faster than their history, and parity worse than the run before",
    )
    watch.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when any regression is found (a configuration that stopped working, or whose "
        "parity got worse, counts)",
    )
    watch.add_argument(
        "--run",
        default="",
        metavar="RUN_ID",
        help="judge only this run's results (in CI: the run just made, not other machines' news)",
    )

    compact = commands.add_parser(
        "compact",
        help="merge a shared store's small Parquet files (every result's "
        "commit writes some; reads slow down as they pile up)",
    )
    compact.add_argument("--db", required=True, help=DB_HELP)

    cache = commands.add_parser(
        "cache",
        parents=as_json,
        help="show what the cache (.cache/: exports, parity references, ...) holds, "
        "and --prune what no run can use again",
    )
    cache.add_argument(
        "--prune",
        action="store_true",
        help="remove what no run can use again: exports and references made by other library versions "
        "or engine code, and what a stopped run left unfinished",
    )
    cache.add_argument(
        "--unused-days",
        type=float,
        default=None,
        metavar="DAYS",
        help="with --prune, also remove exports, references, calibration images, datasets and logs "
        "no run used for DAYS days (remade when needed; model files and peaks stay)",
    )

    add_recommend_options(
        commands.add_parser(
            "recommend",
            parents=both,
            help="what to ship under a budget (p99, images/s, parity, memory, size): the pick from stored results, "
            "the Pareto front, and why each other configuration is out",
        )
    )

    profile = commands.add_parser(
        "profile",
        parents=both,
        help="a run's per-layer profiles (run --profile N): each module's ms per call on each runtime, by stage, "
        "module type and op type",
    )
    add_run_id(profile)

    commands.add_parser("machine", help="print this machine's fingerprint")

    peak = commands.add_parser(
        "peak",
        parents=db,
        help="measure this machine's peak rates: fp32, and bf16 and int8 where the "
        "CPU has them (for efficiency figures)",
    )
    peak.add_argument("--threads", type=int, default=0, help="0 = all physical cores")
    peak.add_argument("--store", action="store_true", help="also record it as this machine's peak in --db")
    return parser


def add_run_options(run: argparse.ArgumentParser) -> None:
    """run's options of what is measured and how long; each default is RunConfig's."""
    d = DEFAULTS
    run.add_argument("--model", default=d.model, help="a .pt, a name like yolov8n.pt, a .yaml, or an .onnx")
    run.add_argument(
        "--runtimes",
        default=",".join(d.runtimes),
        help="comma-separated; runtime:precision pins one; "
        "'all': every runtime available here (default: the six CPU runtimes)",
    )
    run.add_argument(
        "--precisions",
        default=",".join(d.precisions),
        help="fp32,bf16,int8,... or 'all' (where each runtime offers it)",
    )
    run.add_argument("--batch", default=",".join(map(str, d.batch_sizes)), help="batch sizes, e.g. 1,2,4")
    run.add_argument(
        "--modes",
        default=",".join(d.modes),
        help="pipeline modes: lean (the engine's own pipeline), ultralytics (its predictor), or all "
        "(both; default lean)",
    )
    run.add_argument("--images", nargs="*", default=[], help="image files or folders (default: Ultralytics' samples)")
    run.add_argument("--imgsz", type=int, default=d.imgsz, help=f"square input size in pixels (default {d.imgsz})")
    run.add_argument(
        "--warmup",
        type=int,
        default=d.warmup,
        help=f"untimed calls per batch size before measuring (default {d.warmup}; at least 1, TorchScript 2)",
    )
    run.add_argument(
        "--iters", type=int, default=d.iters, help=f"measured calls per batch size, at least (default {d.iters})"
    )
    run.add_argument(
        "--min-duration",
        type=float,
        default=d.min_duration_s,
        help="seconds to keep measuring each batch size, at least (default 0: --iters alone)",
    )
    run.add_argument("--threads", type=int, default=d.threads, help="0 = all physical cores")
    run.add_argument(
        "--in-flight",
        type=int,
        default=d.in_flight,
        help="after the one-at-a-time latency, also measure images/s end to end (preprocess, inference, "
        "postprocess) with this many batches in flight (lean mode: OpenVINO, ONNX Runtime; "
        "ultralytics mode: a YOLO model per thread, CPU runtimes); 0 = off",
    )
    run.add_argument(
        "--profile",
        type=int,
        default=d.profile,
        metavar="N",
        help="after everything else, N more calls under each runtime's own profiler, charged to the model's "
        "modules (`python -m engine profile RUN_ID` shows them; ONNX Runtime, OpenVINO, PyTorch, TorchScript); "
        "0 = off",
    )
    add_run_settings(run)


def add_run_settings(run: argparse.ArgumentParser) -> None:
    """run's options beyond what is measured: thresholds, limits, labels, references; each default RunConfig's."""
    d = DEFAULTS
    run.add_argument(
        "--conf", type=float, default=d.conf, help=f"confidence threshold of the detections (default {d.conf})"
    )
    run.add_argument(
        "--iou", type=float, default=d.iou, help=f"IoU threshold of non-maximum suppression (default {d.iou})"
    )
    run.add_argument("--timeout", type=float, default=d.timeout_s, help="seconds per export / measurement process")
    run.add_argument(
        "--memory-limit", type=int, default=d.memory_limit_mb, help="MB per process (0 = 80%% of this machine's RAM)"
    )
    run.add_argument("--label", default=d.machine_label, help="machine label (default: hostname)")
    run.add_argument("--note", default=d.note, help="free text stored with the run")
    run.add_argument(
        "--reference", default=d.reference, help="a .pt to take the parity reference from (default: --model)"
    )
    run.add_argument(
        "--parity-iou", type=float, default=d.parity_iou, help="IoU at which a box matches the reference's"
    )
    run.add_argument(
        "--data", default=d.data, help="labelled data for mAP: a dataset .yaml or a folder of images + labels"
    )


def add_recommend_options(recommend: argparse.ArgumentParser) -> None:
    recommend.add_argument("--machine", default="", help="a machine's label or id (default: every machine)")
    recommend.add_argument("--model", default="", help="a model as the runs name it (default: the newest run's)")
    recommend.add_argument("--max-p99-ms", type=float, default=None, help="p99 latency per call (a batch), at most")
    recommend.add_argument(
        "--min-ips", type=float, default=None, help="images/s at least (the in-flight figure where measured)"
    )
    recommend.add_argument(
        "--parity",
        choices=("pass", "drift", "any"),
        default="pass",
        help="the detections must pass parity (default), may drift, or anything goes",
    )
    recommend.add_argument("--max-memory-mb", type=float, default=None, help="the worker's peak memory, at most")
    recommend.add_argument("--max-model-mb", type=float, default=None, help="the model file's size, at most")
    recommend.add_argument("--precisions", default="", help="allowed precisions, e.g. fp32,int8 (default: all)")
    recommend.add_argument("--gpu", action="store_true", help="GPU results may be picked (default: CPU only)")


def add_run_id(parser: argparse.ArgumentParser) -> None:
    """RUN_ID as show and compare take it, or --run RUN_ID as these commands first took it."""
    parser.add_argument("run_id", nargs="?", help="a run id (`python -m engine runs` lists them)")
    parser.add_argument("--run", default="", help="the same, as an option")


def run_id_of(args) -> str:
    if args.run_id and args.run and args.run_id != args.run:
        raise BenchError(f"two run ids given, {args.run_id} and --run {args.run}: give one")
    if not (args.run_id or args.run):
        raise BenchError(
            f"give the run's id: python -m engine {args.command} RUN_ID (python -m engine runs lists them)"
        )
    return args.run_id or args.run


def config_from_args(args) -> RunConfig:
    return RunConfig(
        model=args.model,
        runtimes=parse_runtimes(args.runtimes),
        precisions=parse_name_list(args.precisions),
        batch_sizes=parse_int_list(args.batch, "--batch"),
        modes=parse_modes(args.modes),
        images=list(args.images),
        imgsz=args.imgsz,
        warmup=args.warmup,
        iters=args.iters,
        min_duration_s=args.min_duration,
        threads=args.threads,
        in_flight=args.in_flight,
        profile=args.profile,
        conf=args.conf,
        iou=args.iou,
        timeout_s=args.timeout,
        memory_limit_mb=args.memory_limit,
        db=args.db,
        machine_label=args.label,
        note=args.note,
        reference=args.reference,
        parity_iou=args.parity_iou,
        data=args.data,
    )


def command_run(args) -> int:
    from engine.api import regressions_of_run
    from engine.jobs import benchmark_lock
    from engine.runner import Interrupted, Runner

    config = config_from_args(args)
    if config.iters < MIN_CI_SAMPLES and config.min_duration_s == 0:
        print(
            f"warning: --iters {config.iters} is too few for a 95% interval of the median ({MIN_CI_SAMPLES} or "
            "more): the regression watch and compare give this run no verdict, and stability is not judged",
            file=sys.stderr,
        )
    runner = Runner(config, on_event=progress_printer())
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a CI job's timeout or `kill` stops it as Ctrl-C does
    try:
        with benchmark_lock(
            on_wait=lambda: print("another benchmark is running on this machine; waiting", file=sys.stderr)
        ):
            outcome = runner.run()
    except Interrupted as stop:
        return report_interrupted(config.db, stop.outcome, args.json)
    if args.bundle:
        from engine.bundle import write_bundle

        print(f"bundle written to {write_bundle(config.db, outcome.run_id, args.bundle)}", file=sys.stderr)
    document = run_document(config.db, outcome.run_id)  # what `show` prints, from the same view
    if not args.json:
        print_run(document)  # before the watch's read: a failure there must not cost the run's table
    verdicts = regressions_of_run(config.db, outcome.run_id)[0]
    if args.json:
        print(json.dumps({**document, "regression_watch": [v.to_dict() for v in verdicts]}, default=str))
    else:
        print_watch(verdicts)
    regressed = args.fail_on_regression and any(v.regressed for v in verdicts)
    return 0 if outcome.all_completed and not regressed else 1


def report_interrupted(db: str, outcome, as_json: bool) -> int:
    """What an interrupted `run` kept: its results so far (the table, or the JSON document) and how to see them."""
    document = run_document(db, outcome.run_id)
    if as_json:
        print(json.dumps(document, default=str))
    elif outcome.results:
        print_run(document)
    print(
        f"interrupted: run {outcome.run_id} is stored as cancelled with the {len(outcome.results)} result(s) "
        f"measured before (python -m engine show {outcome.run_id})",
        file=sys.stderr,
    )
    return 130


def command_job(args) -> int:
    """Run a dashboard job folder: events and status go to files the page polls."""
    from engine import jobs
    from engine.runner import Interrupted, Runner

    folder = Path(args.folder)
    config = RunConfig.from_dict(jobs.read_json(folder / "config.json"))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # the machine shutting down: stored as cancelled

    def on_event(event: dict) -> None:
        jobs.append_event(folder, event)
        if event["event"] == "run_started":
            jobs.write_status(folder, state="running", run_id=event["run_id"], started_at=time.time())

    runner = Runner(config, on_event=on_event, should_cancel=lambda: jobs.cancel_requested(folder))
    jobs.write_status(folder, run_id=runner.run_id)
    try:
        with jobs.benchmark_lock(
            on_wait=lambda: jobs.write_status(folder, state="queued", message="waiting for the run before it")
        ):
            if jobs.cancel_requested(folder):
                jobs.write_status(folder, state="cancelled", finished_at=time.time())
                return 1
            jobs.write_status(folder, state="running", started_at=time.time())
            outcome = runner.run()
            # inside the lock: the next queued job's start must come after this one's finish
            state = {"completed": "finished", "partial": "finished", "failed": "finished"}.get(
                outcome.status, outcome.status
            )
            jobs.write_status(
                folder, state=state, run_status=outcome.status, run_id=outcome.run_id, finished_at=time.time()
            )
    except Interrupted as stop:
        jobs.write_status(folder, state="cancelled", run_id=stop.outcome.run_id, finished_at=time.time())
        return 130
    except BenchError as error:
        jobs.write_status(folder, state="failed", error=str(error), finished_at=time.time())
        return 2
    except Exception as error:
        jobs.write_status(folder, state="failed", error=f"{type(error).__name__}: {error}", finished_at=time.time())
        raise
    return 0 if outcome.all_completed else 1


def command_runtimes(args) -> int:
    from engine.runtimes import registry

    infos = registry.describe()
    if args.json:
        print(json.dumps([info.__dict__ for info in infos]))
        return 0
    for info in infos:
        state = "available" if info.available else f"unavailable: {info.reason}"
        if info.export_only:
            state = f"exported and stored, not run: {info.export_only}"
        print(f"{info.name:<22} {'/'.join(info.precisions):<16} {state}")
    return 0


def command_runs(args) -> int:
    """The newest runs, one line each: what a headless machine has stored, and the ids the other commands take."""
    from engine import api, database
    from engine.machine import told_apart

    if not database.exists(args.db):
        raise BenchError(f"database {database.display(args.db)} does not exist")
    if args.limit < 1:
        raise BenchError(f"--limit {args.limit} is out of range: use 1 or more")
    runs = records(api.runs(args.db).head(args.limit))
    every_result = records(api.results_summary(args.db, {"run_id": [run["run_id"] for run in runs]})) if runs else []
    listed = []
    for run in runs:
        results = [r for r in every_result if r["run_id"] == run["run_id"]]
        note = json.loads(run.get("config") or "{}").get("note", "")
        listed.append(
            {
                "run_id": run["run_id"],
                "started_at": run["started_at"],
                "status": run["status"],
                "machine_id": run["machine_id"],
                "machine_label": run["machine_label"],
                "model": run["model"],
                "weights_trained": run["weights_trained"],
                "imgsz": run["imgsz"],
                "threads": results[0]["threads"] if results else None,
                "results": len(results),
                "completed": sum(r["status"] == "completed" for r in results),
                "note": note,
            }
        )
    if args.json:
        print(json.dumps(listed, default=str))
        return 0
    if not listed:
        print(f"no runs in {database.display(args.db)}")
        return 0
    machines = told_apart([(run["machine_id"], run["machine_label"]) for run in listed])
    print(f"{'run':<24} {'started (UTC)':<16} {'status':<11} {'results':>9}  machine / model")
    for run, machine in zip(listed, machines):
        note = f"  {run['note']}" if run["note"] else ""
        threads = f" · {run['threads']} thread{'' if run['threads'] == 1 else 's'}" if run["threads"] else ""
        print(
            f"{run['run_id']:<24} {run['started_at']:%Y-%m-%d %H:%M} {run['status']:<11} "
            f"{run['completed']:>4}/{run['results']:<4}  {machine} / "
            f"{models.model_and_weights(run['model'], run['weights_trained'])} {run['imgsz']} px{threads}{note}"
        )
    return 0


def command_show(args) -> int:
    """A stored run's table and closing fastest line, as `run` printed them, from any machine's DB."""
    from engine import store

    store.require_run(args.db, args.run_id)
    document = run_document(args.db, args.run_id)
    if args.json:
        print(json.dumps(document, default=str))
    else:
        print_run(document)
    return 0


def command_compare(args) -> int:
    """The dashboard's Compare page, headless: the same comparison (engine/compare.py), as text or JSON."""
    from engine import api, store

    if args.fail_above < 0:
        raise BenchError(f"--fail-above {args.fail_above} is out of range: give a ratio such as 1.10 (0 = off)")
    if len(args.run_ids) > 2:
        raise BenchError(f"{len(args.run_ids)} run ids given: give RUN_A RUN_B, or RUN_B alone")
    for run_id in args.run_ids:
        store.require_run(args.db, run_id)
    run_a, run_b = args.run_ids if len(args.run_ids) == 2 else (None, args.run_ids[0])
    if run_a is None:
        run_a = api.baseline_for(run_b, api.results_summary(args.db), api.runs(args.db))
        if run_a is None:  # a first run of a model, size or machine: nothing to hold it against, nothing failed
            why = (f"no run before {run_b} completed one of its configurations with the same model file, image size "
                   f"and machine (python -m engine compare RUN_A {run_b} compares with any run)")  # fmt: skip
            print(
                json.dumps({"run_a": None, "run_b": run_b, "no_baseline": why}) if args.json else f"no baseline: {why}"
            )
            return 0
    every_a, every_b = (api.results_summary(args.db, {"run_id": run_id}) for run_id in (run_a, run_b))
    rows = [records(api.runs(args.db, {"run_id": run_id}))[0] for run_id in (run_a, run_b)]
    comparison = api.compare_runs(every_a, every_b, carry=("iterations",), runs=(rows[0], rows[1]))
    compared = records(comparison.table)
    # a ratio is a verdict only where both medians have a 95% interval: fewer iterations, and it is noise
    thin = [f"{row['label']} ({min(row['iterations_a'], row['iterations_b']):.0f})" for row in compared
            if min(row["iterations_a"] or 0, row["iterations_b"] or 0) < MIN_CI_SAMPLES]  # fmt: skip
    slower = [f"{row['label']} {row['infer_ms_ratio']:.2f}x" for row in compared
              if args.fail_above and row["infer_ms_ratio"] > args.fail_above
              and min(row["iterations_a"] or 0, row["iterations_b"] or 0) >= MIN_CI_SAMPLES]  # fmt: skip
    gate = 1 if args.fail_above and (slower or comparison.parity_worse or comparison.failed_in.get("B")) else 0
    if args.json:
        print(json.dumps({**comparison_document(comparison, run_a, run_b, slower), "not_enough_samples": thin},
                         default=str))  # fmt: skip
        return gate
    chosen = ", the newest earlier run sharing a configuration" if len(args.run_ids) == 1 else ""
    print_comparison(comparison, ((f"A (baseline{chosen})", run_a, rows[0]), ("B", run_b, rows[1])))
    if thin:
        print(f"not enough samples for a verdict (iterations; {MIN_CI_SAMPLES} or more give a 95% interval): "
              + "; ".join(thin))  # fmt: skip
    if slower:
        print(f"slower than --fail-above {args.fail_above:g}: " + "; ".join(slower))
    return gate


def command_export(args) -> int:
    from engine.api import export_run

    for path in export_run(args.db, run_id_of(args), args.format, args.out):
        print(path)
    return 0


def command_bundle(args) -> int:
    from engine.bundle import write_bundle

    print(write_bundle(args.db, run_id_of(args), args.out))
    return 0


def command_delete(args) -> int:
    from engine import database
    from engine.api import delete_run

    bundle, results = delete_run(args.db, args.run_id)
    print(
        f"deleted run {args.run_id} and its {results} result(s); kept as {bundle} "
        f"(python -m engine import {bundle} --db {database.display(args.db)} brings it back)"
    )
    return 0


def command_import(args) -> int:
    from engine.bundle import import_bundle

    for path in args.bundles:  # stops at the first refused: those before it are in, and said so
        print(f"{path}: {import_bundle(args.db, path)}")
    return 0


def command_restore(args) -> int:
    from engine.api import restore_run

    print(f"{args.run_id}: {restore_run(args.db, args.run_id)}")
    return 0


def command_check_regressions(args) -> int:
    from engine import database
    from engine.api import regressions, regressions_of_run
    from engine.cli_output import print_verdicts

    if not database.exists(args.db):
        raise BenchError(f"database {database.display(args.db)} does not exist")
    verdicts, superseded = regressions(args.db), 0
    if args.run:
        verdicts, superseded = regressions_of_run(args.db, args.run)
    if args.json:
        print(json.dumps([v.to_dict() for v in verdicts]))
    else:
        print_verdicts(
            verdicts,
            args.fail_on_regression,
            f"nothing of run {args.run} to judge: newer runs measured "
            "each of its configurations again (check-regressions without --run judges those)"
            if args.run
            else "no results to judge yet",
        )
        if superseded and verdicts:
            print(
                f"({superseded} of run {args.run}'s results have newer ones in their configuration, judged in "
                "their place without --run)"
            )
    regressed = [v for v in verdicts if v.regressed]
    return 1 if regressed and args.fail_on_regression else 0


def command_cache(args) -> int:
    """The cache's contents by kind, and with --prune the removal of what can go (after a benchmark measuring now)."""
    from engine import api
    from engine.cache_contents import entries_text, removed_text

    removed = []
    if args.prune:
        removed = api.prune_cache(
            args.unused_days,
            on_wait=lambda: print("a benchmark is running on this machine; pruning waits for it", file=sys.stderr),
        )
    contents = api.cache_summary(args.unused_days)
    if args.json:
        print(json.dumps({**contents, "removed": removed}))
        return 0
    if args.prune:
        print(f"removed {removed_text(removed)}")
    rows = contents["kinds"]
    if not rows:
        print(f"cache {contents['cache']} is empty")
        return 0
    print(f"cache {contents['cache']}: {sum(row['mb'] for row in rows):.1f} MB in {entries_text(contents['entries'])}")
    print(f"{'kind':<12} {'entries':>7} {'MB':>9} {'can go':>7} {'MB':>9}  why")
    for row in rows:
        print(
            f"{row['kind']:<12} {row['entries']:>7} {row['mb']:>9.1f} {row['removable']:>7} "
            f"{row['removable_mb']:>9.1f}  {row['why']}"
        )
    going = sum(row["removable"] for row in rows)
    if going and not args.prune:
        days = "" if args.unused_days is None else f" --unused-days {args.unused_days:g}"
        print(f"python -m engine cache --prune{days} removes the {going} that can go")
    return 0


def command_machine(args) -> int:
    from engine.machine import fingerprint

    print(json.dumps(fingerprint(), indent=2))
    return 0


def command_peak(args) -> int:
    from engine.config import check_threads, physical_cores
    from engine.peak import measure_peak

    check_threads(args.threads)
    peak = measure_peak(args.threads or physical_cores()).to_dict()
    print(json.dumps(peak, indent=2))
    if args.store:
        from engine import store
        from engine.config import check_db_path
        from engine.machine import fingerprint

        check_db_path(args.db)
        store.ensure_schema(args.db)
        machine = fingerprint()
        store.upsert_machine(args.db, machine)
        from engine.peak import keep_peak

        store.insert_machine_peak(args.db, machine["machine_id"], keep_peak(machine["machine_id"], peak, store.now()))
        from engine.database import display

        print(
            f"stored as the peak of {machine['label']} on {peak['threads']} thread(s) in {display(args.db)}",
            file=sys.stderr,
        )
    return 0


def command_profile(args) -> int:
    from engine import api, database, store
    from engine.cli_output import print_profiles, profile_document

    if not database.exists(args.db):
        raise BenchError(f"database {database.display(args.db)} does not exist")
    run_id = run_id_of(args)
    store.require_run(args.db, run_id)
    settings, rows = api.profile_settings(args.db, run_id), api.profiles(args.db, run_id)
    if settings.empty:
        raise BenchError(f"run {run_id} has no profiles: run the benchmark with --profile N (e.g. 10) to take them")
    if args.json:
        print(json.dumps(profile_document(run_id, settings, rows), default=str))
    else:
        print_profiles(run_id, settings, rows)
    return 0


def command_recommend(args) -> int:
    from engine import api, database
    from engine.cli_output import print_recommendation
    from engine.recommend import Budget

    if not database.exists(args.db):
        raise BenchError(f"database {database.display(args.db)} does not exist")
    budget = Budget(
        max_p99_ms=args.max_p99_ms,
        min_images_per_s=args.min_ips,
        parity=args.parity,
        max_memory_mb=args.max_memory_mb,
        max_model_mb=args.max_model_mb,
        precisions=tuple(parse_name_list(args.precisions)) if args.precisions else (),
        gpu=args.gpu,
    )
    recommendation, model = api.recommend(args.db, budget, args.machine or None, args.model or None)
    if args.json:
        print(json.dumps({"model": model, **recommendation.to_dict()}, default=str))
    else:
        print_recommendation(recommendation, model)
    return 0 if recommendation.pick else 1


def command_compact(args) -> int:
    from engine import database, store

    if not database.is_shared(args.db):
        raise BenchError("compact is for a shared store (ducklake+postgres://...); a DuckDB file needs none")
    started = time.monotonic()
    before, after = store.compact_shared(args.db)
    print(f"{database.display(args.db)}: {before} data files -> {after} in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "runtimes": command_runtimes,
        "run": command_run,
        "job": command_job,
        "export": command_export,
        "cache": command_cache,
        "machine": command_machine,
        "peak": command_peak,
        "bundle": command_bundle,
        "delete": command_delete,
        "import": command_import,
        "restore": command_restore,
        "check-regressions": command_check_regressions,
        "compact": command_compact,
        "runs": command_runs,
        "show": command_show,
        "compare": command_compare,
        "recommend": command_recommend,
        "profile": command_profile,
    }
    try:
        return handlers[args.command](args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader has what it wanted; no traceback, and none at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
