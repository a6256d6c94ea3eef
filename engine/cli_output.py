"""What the CLI prints: progress lines, a run's table with its closing `fastest:` line (`run` and `show` print
the same), the regression watch's verdicts, and stored rows as records. Progress lines and the closing line
name results alike (result_name)."""

from __future__ import annotations

import sys
from dataclasses import asdict

from engine import models
from engine.measure import MIN_CI_SAMPLES
from engine.ranking import fastest, least
from engine.records import EXPORTED
from engine.regressions import MIN_HISTORY, NOT_ENOUGH_SAMPLES


def progress_printer(stream=sys.stderr):
    def show(event: dict) -> None:
        kind = event["event"]
        if kind == "run_started":
            model = models.model_and_weights(event["model"], event["weights_trained"])
            print(f"run {event['run_id']}: {model} on {event['machine']}: {', '.join(event['variants'])}", file=stream)
        elif kind == "stage":
            print(f"  {event.get('variant', '')} {event.get('message', event['stage'])}", file=stream)
        elif kind == "result":
            name = result_name(event)
            if event["status"] == "completed":
                print(
                    f"  {name}: infer {event['infer_ms']:.2f} ms/img, total {event['total_ms']:.2f} ms/img", file=stream
                )
            elif event["status"] == EXPORTED:
                print(f"  {name}: exported and stored, not run: {event.get('error')}", file=stream)
            else:
                print(f"  {name}: FAILED: {(event.get('error') or '').splitlines()[0]}", file=stream)
        elif kind == "run_finished":
            print(f"run {event['run_id']} {event['status']}", file=stream)
        stream.flush()

    return show


def run_document(db, run_id: str) -> dict:
    """A stored run as `run --json` and `show --json` give it: the run's model, weights and image size, every
    result's row of results_summary (lean before ultralytics, by runtime, precision and batch), and the picks."""
    from engine import api

    run = records(api.runs(db, {"run_id": run_id}))[0]
    results = records(api.results_summary(db, {"run_id": run_id}))
    results.sort(key=lambda r: (r["runtime"], r["precision"], r["mode"], r["batch"]))
    return {
        "run_id": run["run_id"],
        "status": run["status"],
        "error": run["error"],
        "started_at": run["started_at"],
        "machine_id": run["machine_id"],
        "machine_label": run["machine_label"],
        "model": run["model"],
        "model_sha256": run["model_sha256"],
        "weights_trained": run["weights_trained"],
        "imgsz": run["imgsz"],
        "results": results,
        **picks(results),
    }


def print_run(document: dict) -> None:
    """The run's line (status, machine, image size, model and whether its boxes mean anything), then its table."""
    from engine.store import status_and_reason

    meaningless = ": boxes and scores mean nothing" if document["weights_trained"] is False else ""
    status = status_and_reason(document["status"], document["error"])  # "cancelled (interrupted by Ctrl-C ...)"
    print(
        f"run {document['run_id']}: {status}, started {document['started_at']:%Y-%m-%d %H:%M} UTC on "
        f"{document['machine_label']}; {document['imgsz']} px; model "
        f"{models.model_and_weights(document['model'], document['weights_trained'])}{meaningless}"
    )
    print_table(document["results"])


def print_table(results: list[dict]) -> None:
    in_flight = next((r["in_flight"] for r in results if r.get("in_flight")), 0)  # one --in-flight N per run
    flight_header = f" {f'img/s x{in_flight}':>10}" if in_flight else ""  # a column only when asked for
    header = (
        f"{'runtime':<24} {'precision':<9} {'batch':>5} {'pre':>8} {'infer':>8} {'post':>8} {'img/s':>8}"
        f"{flight_header} {'peak MB':>8} {'model MB':>8} {'parity':>7}  status"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        name = r["runtime"] if r.get("mode", "lean") == "lean" else f"{r['runtime']}/{r['mode']}"
        flight = ""
        if in_flight:  # "-": not offered by the runtime or its mode, or no figure (the progress line says why)
            flight = f" {r['in_flight_ips']:>10.1f}" if r.get("in_flight_ips") is not None else f" {'-':>10}"
        if r["status"] == "completed":
            memory = f"{r['peak_memory_mb']:>8.0f}" if r.get("peak_memory_mb") is not None else f"{'-':>8}"
            size = f"{r['model_mb']:>8.1f}" if r.get("model_mb") is not None else f"{'-':>8}"
            print(
                f"{name:<24} {r['precision']:<9} {r['batch']:>5} {r['pre_ms']:>8.2f} {r['infer_ms']:>8.2f} "
                f"{r['post_ms']:>8.2f} {r['throughput_ips']:>8.1f}{flight} {memory} {size} "
                f"{r.get('parity_verdict') or '-':>7}  ok"
            )
        else:
            reason = (r.get("error") or "").splitlines()[0][:70]
            print(
                f"{name:<24} {r['precision']:<9} {r['batch']:>5} {'':>8} {'':>8} {'':>8} {'':>8}"
                f"{' ' * len(flight)} {'':>8} {'':>8} {'':>7}  {r['status']}: {reason}"
            )
    print(
        "(medians in ms per image; peak MB: the worker's peak resident memory for that batch size; "
        "model MB: the model's files as the runtime loads them"
        + (
            f"; img/s x{in_flight}: images per second end to end with {in_flight} requests in flight)"
            if in_flight
            else ")"
        )
    )
    print_leanest(results)
    print_fastest(results)


def print_leanest(results: list[dict]) -> None:
    """The smallest model on disk and the least memory among results whose parity did not fail (the Overview's
    line under the fastest); both pipeline modes load the same file, so a file is named runtime:precision."""
    smallest, lightest = (least(results, column) for column in ("model_mb", "peak_memory_mb"))
    parts = []
    if smallest:
        parts.append(f"smallest on disk: {smallest['runtime']}:{smallest['precision']}, {smallest['model_mb']:.1f} MB")
    if lightest:
        parts.append(f"least memory: {result_name(lightest)}, {lightest['peak_memory_mb']:.0f} MB")
    if parts:
        print("; ".join(parts))


def picks(results: list[dict]) -> dict:
    """The result ids the dashboard names, for --json: fastest, smallest on disk, least memory (None: none)."""
    best, _ = fastest(results)
    smallest, lightest = (least(results, column) for column in ("model_mb", "peak_memory_mb"))
    return {
        name: pick and pick["result_id"]
        for name, pick in (("fastest", best), ("smallest", smallest), ("least_memory", lightest))
    }


def print_fastest(results: list[dict]) -> None:
    """The one to deploy by speed, as the dashboard names it: the fastest whose detections did not fail parity."""
    best, passed_over = fastest(results)
    if best is None:
        return
    verdict = f", parity {best['parity_verdict']}" if best.get("parity_verdict") else ""
    print(f"fastest: {result_name(best)}, {best['total_ms']:.2f} ms per image end to end{verdict}")
    for r in passed_over:
        print(f"  faster but failed parity: {result_name(r)}, {r['total_ms']:.2f} ms: {r.get('parity_reason')}")


def print_watch(verdicts: list) -> None:
    """After a run, the regression watch's word on its results, as the Overview gives it: flags, or how many
    configurations had the history to be judged."""
    flagged = [v for v in verdicts if v.flagged]
    for v in flagged:
        if v.verdict == "stopped working":
            print(
                f"stopped working: {result_name(asdict(v))} failed in this run; it completed in its {v.history} "
                f"earlier run(s), median {v.baseline_ms:.2f} ms"
            )
        else:
            print(
                f"{v.verdict}: {result_name(asdict(v))} infers in {v.infer_ms:.2f} ms against {v.baseline_ms:.2f} "
                f"ms over its {v.history} earlier run(s) (noise floor {v.noise_floor:.0%})"
            )
    for v in verdicts:
        if v.parity_change:
            print(f"detections changed: {result_name(asdict(v))} parity {v.parity_change}: {v.parity_reason}")
    print_library_changes([v for v in verdicts if v.flagged or v.parity_change])
    thin = [v for v in verdicts if v.verdict.startswith(NOT_ENOUGH_SAMPLES)]
    if thin:
        print(
            f"regression watch: {len(thin)} configuration(s) have {thin[0].verdict}, too few iterations for a "
            f"95% interval of the median, so no verdict (--iters {MIN_CI_SAMPLES} or more gives one)"
        )
    judged = sum(v.judged for v in verdicts)
    if not flagged and not thin and not any(v.parity_change for v in verdicts):
        print(
            f"regression watch: no change beyond the noise in {judged} configuration(s) with history"
            if judged
            else f"regression watch: a configuration needs {MIN_HISTORY + 1} runs before changes are flagged"
        )


def print_library_changes(verdicts: list) -> None:
    """The library versions that changed since the run before, once per change, under the flags they may explain."""
    for changes in dict.fromkeys(tuple(v.library_changes) for v in verdicts if v.library_changes):
        print(f"  since the run before: {'; '.join(changes)}")


def print_verdicts(verdicts: list, failing: bool, nothing: str = "no results to judge yet") -> None:
    """check-regressions' table, one line per configuration (image size and threads included: two sizes of one
    runtime are two histories), and a closing line that says what CI will make of it."""
    if not verdicts:
        print(nothing)
        return
    print(
        f"{'verdict':<20} {'runtime':<12} {'precision':<9} {'batch':>5} {'mode':<11} {'size':>5} {'thr':>3} "
        f"{'infer ms':>9} {'baseline':>9} {'floor':>6} {'runs':>4}  machine / model"
    )
    for v in verdicts:
        config = f"{v.runtime:<12} {v.precision:<9} {v.batch:>5} {v.mode:<11} {v.imgsz:>5} {v.threads:>3}"
        infer = f"{v.infer_ms:9.2f}" if v.infer_ms is not None else f"{'':>9}"
        baseline = f"{v.baseline_ms:9.2f}" if v.baseline_ms is not None else f"{'':>9}"
        floor = f"{v.noise_floor:6.1%}" if v.noise_floor is not None else f"{'':>6}"
        why = f"  ({v.error.splitlines()[0][:120]})" if v.error else ""
        print(
            f"{v.verdict:<20} {config} {infer} {baseline} {floor} {v.history + 1:>4}  "
            f"{v.machine_label} / {v.model}{why}"
        )
        if v.parity_change:  # a line of its own: the speed verdict above may well be "no change"
            print(f"{'detections changed':<20} {config} parity {v.parity_change}: {v.parity_reason[:120]}")
    regressed = [v for v in verdicts if v.regressed]
    print_library_changes(regressed)
    judged = sum(v.judged for v in verdicts)
    if regressed:
        print(
            f"{len(regressed)} of {len(verdicts)} configuration(s) regressed"
            + (": exit 1" if failing else " (--fail-on-regression would exit 1)")
        )
    else:
        print(
            f"no regression in {len(verdicts)} configuration(s); {judged} have the history to be judged "
            f"({MIN_HISTORY + 1} runs or more)"
        )


def result_name(r: dict) -> str:
    """A result as the progress lines and the closing line name it: "openvino:int8/ultralytics b4"."""
    mode = "" if r.get("mode", "lean") == "lean" else f"/{r['mode']}"
    return f"{r['runtime']}:{r['precision']}{mode} b{r['batch']}"


def records(frame) -> list[dict]:
    """DataFrame rows as dicts with None for missing values (NaN would print as 'nan' and pass `is not None`)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def comparison_document(comparison, run_a: str, run_b: str, slower: list[str]) -> dict:
    """`compare --json`: what the Compare page shows, as one document."""
    return {
        "run_a": run_a,
        "run_b": run_b,
        "setting_changes": comparison.setting_changes,
        "library_changes": comparison.library_changes,
        "relabelled": comparison.relabelled,
        "only_in": comparison.only_in,
        "failed_in": comparison.failed_in,
        "parity_worse": comparison.parity_worse,
        "compared": records(comparison.table),
        "slower": slower,
    }


def print_comparison(comparison, runs) -> None:
    """`compare`'s text: the two runs ((name, run id, run row) each), what else differs, B / A per configuration,
    and what is left out."""
    for name, run_id, run in runs:
        print(
            f"{name}: run {run_id}, {run['status']}, started {run['started_at']:%Y-%m-%d %H:%M} UTC on "
            f"{run['machine_label']}; {models.model_and_weights(run['model'], run['weights_trained'])}"
        )
    if comparison.setting_changes:
        print("these runs differ in more than the runtimes: " + "; ".join(comparison.setting_changes))
    if comparison.library_changes:
        print("library versions differ: " + "; ".join(comparison.library_changes))
    if comparison.relabelled:
        print(f"the same machine under two labels: {comparison.relabelled}")
    print_ratios(comparison.table)
    for name, alone in comparison.only_in.items():
        print(f"only in run {name}, so not compared: {', '.join(alone)}")
    for name, failed in sorted(comparison.failed_in.items()):
        print(f"not compared, failed in run {name}: {', '.join(failed)}")
    if comparison.parity_worse:
        print("detections changed: parity is worse in run B for " + "; ".join(comparison.parity_worse))


def print_ratios(table) -> None:
    if table.empty:
        print("no configuration completed in both runs, so nothing is compared")
        return
    width = max(len(label) for label in table["label"])
    print(
        f"{'configuration':<{width}}  {'parity A → B':<14} {'infer A':>8} {'infer B':>8} {'B / A':>6} "
        f"{'total A':>8} {'total B':>8} {'B / A':>6}"
    )
    for row in records(table.sort_values("label")):
        parity = f"{row['parity_verdict_a'] or '-'} → {row['parity_verdict_b'] or '-'}"
        print(
            f"{row['label']:<{width}}  {parity:<14} {row['infer_ms_a']:>8.2f} {row['infer_ms_b']:>8.2f} "
            f"{row['infer_ms_ratio']:>5.2f}x {row['total_ms_a']:>8.2f} {row['total_ms_b']:>8.2f} "
            f"{row['total_ms_ratio']:>5.2f}x"
        )
    print("(medians in ms per image; B / A under 1: B takes less time)")


def print_recommendation(recommendation, model: str | None) -> None:
    """`recommend`'s text: the evidence, the pick and why, the Pareto front, and why each other one is out."""
    print(f"model {model or '(none)'}: {recommendation.evidence}")
    print(("pick: " if recommendation.pick else "") + recommendation.reason)
    if recommendation.front:
        print("Pareto front (no other configuration is better on p99, img/s, parity and memory together):")
        width = max(len(c.name) for c in recommendation.front)
        print(
            f"  {'configuration':<{width}}  {'total ms':>8} {'p99/call':>8} {'img/s':>8} {'parity':<11} {'peak MB':>7}"
        )
        for c in recommendation.front:
            p99 = "—" if c.p99_ms is None else f"{c.p99_ms:.1f}"
            memory = "—" if c.peak_memory_mb is None else f"{c.peak_memory_mb:.0f}"
            print(
                f"  {c.name:<{width}}  {c.total_ms:>8.2f} {p99:>8} {c.images_per_s:>8.1f} "
                f"{c.parity_verdict or 'not judged':<11} {memory:>7}"
            )
    for rejection in recommendation.rejected:
        print(f"out: {rejection.candidate.name}: {'; '.join(rejection.broke)}")


def profile_lines(settings, rows) -> list[dict]:
    """Each profiled result: its name, profiler, calls, error, and its coverage against its inference median."""
    from engine.profiles import ProfileRow, coverage, variant_name

    fields = ("module", "module_type", "stage", "op_type", "ms", "ops", "names")
    lines = []
    for result in records(settings):
        mine = [
            ProfileRow(**{f: row[f] for f in fields}) for row in records(rows[rows["result_id"] == result["result_id"]])
        ]
        infer = result["infer_ms"] * result["batch"] if result["infer_ms"] is not None else None
        lines.append({"result_id": result["result_id"], "name": variant_name(result), "profiler": result["profiler"],
                      "calls": result["calls"], "error": result["error"], **coverage(mine, infer)})  # fmt: skip
    return lines


def profile_document(run_id: str, settings, rows) -> dict:
    """`profile --json`: the run's profiled results, and every profile row."""
    return {"run_id": run_id, "results": profile_lines(settings, rows), "rows": records(rows)}


def print_profiles(run_id: str, settings, rows) -> None:
    """`profile`'s text: each result's coverage, then the module-by-module table and where each runtime spends."""
    from engine.profiles import module_table, totals_by

    print(f"run {run_id}: per-layer profiles, ms per call, charged to the model's modules")
    for line in profile_lines(settings, rows):
        if line["error"]:
            print(f"{line['name']}: no profile ({line['error']})")
            continue
        share = "" if line["of_inference"] is None else f", {line['of_inference']:.0%} of the inference median"
        print(f"{line['name']} ({line['profiler']}, {line['calls']} calls): {line['profiled_ms']:.2f} ms, "
              f"{line['mapped_share']:.0%} charged to a module{share}")  # fmt: skip
    if rows.empty:
        return
    table = module_table(rows)
    variants = [c for c in table.columns if c not in ("module", "module_type", "stage") and "/" not in c]
    print(f"{'module':<10} {'type':<9} {'stage':<9} " + " ".join(f"{v:>22}" for v in variants))
    for row in records(table):
        cells = [f"{row[v]:>9.2f} ({row[v + ' / fastest']:>4.1f}x)    " if row[v] == row[v] else f"{'—':>22}"
                 for v in variants]  # fmt: skip
        print(f"{row['module']:<10} {row['module_type']:<9} {row['stage']:<9} " + " ".join(cells))
    for column in ("stage", "op_type"):
        totals = totals_by(rows, column)
        for variant in totals.columns:
            top = totals[variant].sort_values(ascending=False).head(4)
            print(f"{variant} by {column.replace('_', ' ')}: " + ", ".join(f"{k} {v:.2f}" for k, v in top.items()))
