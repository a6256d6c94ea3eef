"""Two runs side by side: the ratio B / A for each configuration (runtime, precision, batch, mode) completed in
both, and what the ratios leave out or hide. The dashboard's Compare page and `python -m engine compare` use it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from engine.parity import got_worse
from engine.store import json_column

KEYS = ["runtime", "precision", "batch", "mode"]
COMPARED = ["infer_ms", "total_ms", "throughput_ips"]
SETTINGS = {"model": "model", "imgsz": "image size", "threads": "threads"}


@dataclass
class Comparison:
    table: pd.DataFrame  # KEYS, each compared metric as _a, _b and _ratio, parity_verdict_a / _b, carried columns,
    # and label: the configuration's name
    setting_changes: list[str] = field(default_factory=list)  # "image size: 640 → 320"; a machine change first
    relabelled: str = ""  # the same machine under two labels: "ci → ci-2"
    only_in: dict[str, list[str]] = field(default_factory=dict)  # "A" / "B": configurations the other never ran
    failed_in: dict[str, list[str]] = field(default_factory=dict)  # "A" / "B": completed in the other run only
    parity_worse: list[str] = field(default_factory=list)  # "onnxruntime:fp32 · b1 pass → fail"
    library_changes: list[str] = field(default_factory=list)  # "openvino 2026.3.0 → 2026.4.1"


def compare(
    every_a: pd.DataFrame, every_b: pd.DataFrame, carry: tuple[str, ...] = (), runs: tuple[dict, dict] | None = None
) -> Comparison:
    """Every result of run A (the baseline) and of run B, failed ones included (a configuration that failed in
    one run is named, not dropped); `carry` names further columns to keep, as name_a and name_b; `runs`: the two
    runs' rows, for what their results do not say (library versions, the model file's hash)."""
    done_a, done_b = (every[every["status"] == "completed"] for every in (every_a, every_b))
    with_mode = len({key[3] for key in _keys(done_a) | _keys(done_b)}) > 1  # names carry the mode where runs mix
    comparison = Comparison(table=pd.DataFrame())
    if runs:
        _run_changes(comparison, *runs)
    if not done_a.empty and not done_b.empty:
        _setting_changes(comparison, done_a, done_b)
    for name, mine, other, theirs, their_every in (
        ("A", done_a, "B", done_b, every_b),
        ("B", done_b, "A", done_a, every_a),
    ):
        missing = sorted(_keys(mine) - _keys(theirs))
        failed_there = _keys(their_every) - _keys(theirs)
        failed = [name_of(key, with_mode) for key in missing if key in failed_there]
        if failed:
            comparison.failed_in[other] = failed
        alone = [name_of(key, with_mode) for key in missing if key not in failed_there]
        if alone:
            comparison.only_in[name] = alone
    shown = KEYS + COMPARED + ["parity_verdict", *carry]
    table = done_a[shown].merge(done_b[shown], on=KEYS, suffixes=("_a", "_b"))
    for metric in COMPARED:
        table[f"{metric}_ratio"] = table[f"{metric}_b"] / table[f"{metric}_a"]
    table["label"] = [name_of(key, with_mode) for key in table[KEYS].itertuples(index=False)]
    # faster means little if the detections changed: a library upgrade that breaks an export keeps its speed
    comparison.parity_worse = [
        f"{row.label} {row.parity_verdict_a} → {row.parity_verdict_b}"
        for row in table.itertuples()
        if got_worse(row.parity_verdict_a, row.parity_verdict_b)
    ]
    comparison.table = table
    return comparison


def _run_changes(comparison: Comparison, run_a: dict, run_b: dict) -> None:
    """What the runs' rows say differs: library versions, and the model file under one name."""
    comparison.library_changes = library_changes(*(json_column(run.get("libraries"), {}) for run in (run_a, run_b)))
    sha_a, sha_b = run_a.get("model_sha256"), run_b.get("model_sha256")
    if run_a.get("model") == run_b.get("model") and sha_a and sha_b and sha_a != sha_b:
        comparison.setting_changes.append(
            f"model file: {run_a['model']} {sha_a[:8]} → {sha_b[:8]} (the same name, other weights)"
        )


def _setting_changes(comparison: Comparison, done_a: pd.DataFrame, done_b: pd.DataFrame) -> None:
    """What the results say differs: their settings, and the machine."""
    comparison.setting_changes[:0] = [
        f"{label}: {done_a[name].iloc[0]} → {done_b[name].iloc[0]}"
        for name, label in SETTINGS.items()
        if done_a[name].iloc[0] != done_b[name].iloc[0]
    ]
    # a machine is its hardware fingerprint; its label is only a name a run gave it, so two runners both
    # labelled "ci" are still two machines
    (id_a, label_a), (id_b, label_b) = (
        tuple(map(str, done[["machine_id", "machine_label"]].iloc[0])) for done in (done_a, done_b)
    )
    if id_a != id_b:
        comparison.setting_changes.insert(
            0,
            f"machine: {label_a} ({id_a[:8]}) → {label_b} ({id_b[:8]})"
            if label_a == label_b
            else f"machine: {label_a} → {label_b}",
        )
    elif label_a != label_b:
        comparison.relabelled = f"{label_a} → {label_b}"


def library_changes(libraries_a: dict, libraries_b: dict) -> list[str]:
    """The library versions that differ between two runs, in the order the engine records them ("openvino
    2026.3.0 → 2026.4.1", "tensorflow 2.19.0 → absent"): an upgrade is the usual cause of a step in speed or in
    parity that nothing else in the runs explains. A run that recorded none (made by hand, say) says nothing."""
    if not libraries_a or not libraries_b:
        return []
    names = list(libraries_a) + [name for name in libraries_b if name not in libraries_a]
    return [
        f"{name} {libraries_a.get(name) or 'absent'} → {libraries_b.get(name) or 'absent'}"
        for name in names
        if libraries_a.get(name) != libraries_b.get(name)
    ]


def library_steps(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose library versions differ from their machine's run before (among those given): started_at,
    run_id, machine_id, machine_label and changes (a list, as library_changes gives it), oldest first. A machine's
    first run is no step."""
    steps = []
    for _, machine_runs in runs.sort_values("started_at").groupby("machine_id", sort=False):
        versions = [json_column(value, {}) for value in machine_runs["libraries"]]
        for (_, run), before, now in zip(machine_runs.iloc[1:].iterrows(), versions, versions[1:]):
            if changes := library_changes(before, now):
                steps.append(
                    {
                        "started_at": run["started_at"],
                        "run_id": run["run_id"],
                        "machine_id": run["machine_id"],
                        "machine_label": run["machine_label"],
                        "changes": changes,
                    }
                )
    columns = ["started_at", "run_id", "machine_id", "machine_label", "changes"]
    return pd.DataFrame(steps, columns=columns).sort_values("started_at", ignore_index=True)


def baseline_for(run_b: str, results: pd.DataFrame, runs: pd.DataFrame | None = None) -> str | None:
    """The run to hold run B against when none is chosen: the newest run before B that completed one of B's
    configurations with the same model file (its hash, where `runs` gives it; else its name), image size and
    machine, of B's thread count where one is; None when there is none. A run of another model, input size or
    machine is no baseline: against it a first run of a new model would read as a regression."""
    done = results[results["status"] == "completed"]
    mine = done[done["run_id"] == run_b]
    if mine.empty:
        return None
    shares = done[KEYS].apply(tuple, axis=1).isin(_keys(mine))
    earlier = done[(done["started_at"] < mine["started_at"].iloc[0]) & shares]
    same = earlier[
        (earlier["model"] == mine["model"].iloc[0])
        & (earlier["imgsz"] == mine["imgsz"].iloc[0])
        & (earlier["machine_id"] == mine["machine_id"].iloc[0])
    ]
    if runs is not None and not runs.empty and "model_sha256" in runs:
        sha = runs.drop_duplicates("run_id").set_index("run_id")["model_sha256"]
        same = same[same["run_id"].map(sha) == sha.get(run_b)]
    for candidates in (same[same["threads"] == mine["threads"].iloc[0]], same):
        if not candidates.empty:
            return str(candidates.sort_values("started_at")["run_id"].iloc[-1])
    return None


def name_of(key: tuple, with_mode: bool) -> str:
    runtime, precision, batch, mode = key
    return f"{runtime}:{precision} · b{batch}" + (f" · {mode}" if with_mode else "")


def _keys(results: pd.DataFrame) -> set[tuple]:
    return set(map(tuple, results[KEYS].itertuples(index=False)))
