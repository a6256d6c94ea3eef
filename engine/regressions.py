"""Regression watch: is a new result really slower or faster than the history of the same configuration?

A configuration is (machine, model, runtime, precision, batch, pipeline mode, image size, threads). Its noise floor is
how far the earlier results' inference medians spread around their own median (relative, at least
MIN_FLOOR): what repeated runs of unchanged code already vary by. The newest result is flagged only when
its median's 95% confidence interval clears the earlier median by more than that floor:
- regression:  ci_low  > baseline x (1 + floor)
- improvement: ci_high < baseline x (1 - floor)
With fewer than MIN_HISTORY earlier results the verdict is "not enough history", never a guess; a result with
too few iterations for a 95% interval of its median (fewer than 6), newest or earlier, is no evidence either:
"not enough samples (N)", never flagged, never a CI failure.
A newest result that failed is judged too, not hidden behind the last one that completed: "stopped working"
when the configuration completed before (a regression for CI), "failed" when it never did.
Apart from speed, a newest result whose parity verdict is worse than the one before it (pass < drift < fail)
carries `parity_change` ("pass -> fail"): the same configuration no longer gives the detections it gave, as
when a library upgrade breaks an export; CI counts it as a regression.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from engine.parity import VERDICTS, got_worse
from engine.records import EXPORTED

CONFIG_KEY = ("machine_id", "model", "runtime", "precision", "batch", "mode", "imgsz", "threads")
MIN_HISTORY = 2
MIN_FLOOR = 0.03  # 3%: below this a VM's clock and neighbours alone move the median
NOT_ENOUGH_SAMPLES = "not enough samples"  # too few iterations for a 95% interval of the median, on either side


@dataclass
class Verdict:
    machine_label: str
    model: str
    runtime: str
    precision: str
    batch: int
    imgsz: int
    threads: int
    result_id: str
    # regression | improvement | no change | not enough history | not enough samples (N) | stopped working | failed
    verdict: str
    infer_ms: float | None  # None when the newest result failed
    ci_low_ms: float | None
    ci_high_ms: float | None
    baseline_ms: float | None
    noise_floor: float | None
    history: int
    mode: str = "lean"
    error: str | None = None  # why the newest result failed
    parity_change: str | None = None  # "pass -> fail" when the newest result's parity got worse
    parity_reason: str | None = None  # the newest result's parity reason, with parity_change
    run_id: str | None = None  # the newest result's run
    previous_run_id: str | None = None  # the run of the last earlier completed result: the one to explain a step
    library_changes: list[str] = field(default_factory=list)  # from that run to the newest ("openvino a → b")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def flagged(self) -> bool:
        """What the Overview and `run` call out: a speed change beyond the noise, or a configuration that stopped
        working (a parity change is flagged apart, through parity_change)."""
        return self.verdict in ("regression", "improvement", "stopped working")

    @property
    def judged(self) -> bool:
        """Whether there was history to judge it against (a failure of a configuration that never completed has
        none either)."""
        return self.verdict != "failed" and not self.verdict.startswith("not enough")

    @property
    def regressed(self) -> bool:
        """What `check-regressions --fail-on-regression` fails on."""
        return self.verdict in ("regression", "stopped working") or self.parity_change is not None


def check(summary: pd.DataFrame) -> list[Verdict]:
    """One verdict per configuration: its newest result against the completed ones before it."""
    summary = summary[summary["status"] != EXPORTED]  # stored where it cannot run: nothing to judge
    completed = summary["status"] == "completed"
    rows = summary[~completed | summary["infer_ms"].notna()]
    verdicts = []
    for _, group in rows.sort_values("started_at").groupby(list(CONFIG_KEY), sort=True):
        newest, before = group.iloc[-1], group.iloc[:-1]
        earlier = before[before["status"] == "completed"]["infer_ms"]
        baseline, floor, outcome = None, None, "not enough history"
        if newest["status"] != "completed":
            outcome = "stopped working" if len(earlier) else "failed"
            baseline = float(earlier.median()) if len(earlier) else None
        elif len(earlier) >= MIN_HISTORY:
            outcome, baseline, floor = _judged(newest, before[before["status"] == "completed"])
        verdicts.append(
            Verdict(
                str(newest["machine_label"]),
                str(newest["model"]),
                str(newest["runtime"]),
                str(newest["precision"]),
                int(newest["batch"]),
                int(newest["imgsz"]),
                int(newest["threads"]),
                str(newest["result_id"]),
                outcome,
                _optional(newest["infer_ms"]),
                _optional(newest["infer_ci_low_ms"]),
                _optional(newest["infer_ci_high_ms"]),
                baseline,
                floor,
                len(earlier),
                str(newest["mode"]),
                None if newest["status"] == "completed" else str(newest.get("error") or "no reason recorded"),
                *_parity_change(newest, before),
                str(newest["run_id"]),
                str(before[before["status"] == "completed"]["run_id"].iloc[-1]) if len(earlier) else None,
            )
        )
    return verdicts


def _judged(newest: pd.Series, earlier: pd.DataFrame) -> tuple[str, float | None, float | None]:
    """(verdict, baseline, noise floor) of a completed result against the completed ones before it. Only results
    with a 95% interval of their median are evidence: a newest result without one, or a history with fewer than
    MIN_HISTORY such results, is "not enough samples (N)" (N: its iterations), never flagged."""
    evidence = earlier[earlier["infer_ci_low_ms"].notna()]["infer_ms"]
    if pd.isna(newest["infer_ci_low_ms"]) or len(evidence) < MIN_HISTORY:
        thin = newest if pd.isna(newest["infer_ci_low_ms"]) else earlier[earlier["infer_ci_low_ms"].isna()].iloc[-1]
        return f"{NOT_ENOUGH_SAMPLES} ({_count(thin.get('iterations'))})", None, None
    baseline = float(evidence.median())
    floor = max(MIN_FLOOR, float((evidence - baseline).abs().max() / baseline))
    if newest["infer_ci_low_ms"] > baseline * (1 + floor):
        return "regression", baseline, floor
    if newest["infer_ci_high_ms"] < baseline * (1 - floor):
        return "improvement", baseline, floor
    return "no change", baseline, floor


def _count(value) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))


def _parity_change(newest: pd.Series, before: pd.DataFrame) -> tuple[str | None, str | None]:
    """("pass -> fail", the newest reason) when the newest verdict is worse than the last earlier one."""
    if "parity_verdict" not in before:
        return None, None
    judged = before[(before["status"] == "completed") & before["parity_verdict"].isin(VERDICTS)]
    previous, now = (judged["parity_verdict"].iloc[-1] if len(judged) else None), newest.get("parity_verdict")
    if not got_worse(previous, now):
        return None, None
    return f"{previous} -> {now}", str(newest.get("parity_reason") or "no reason recorded")


def _optional(value) -> float | None:
    return None if pd.isna(value) else float(value)
