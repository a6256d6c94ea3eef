"""What to ship under a budget, from stored results alone: each configuration's latest result is checked against the
constraints (p99 latency per call, images/s, parity, peak memory, size on disk, precisions, CPU or GPU), the
fastest that meets them all is the pick, and the Pareto front shows what no other configuration beats on latency,
throughput, parity and memory together. Nothing is measured here: the evidence is what the store holds, with its
dates and intervals."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from engine.config import PRECISIONS, BenchError, did_you_mean

PARITY_RULES = ("pass", "drift", "any")  # what parity a pick may have: pass only; pass or drift; anything
PARITY_RANK = {"pass": 0, "drift": 1, None: 2, "fail": 3}  # no verdict: no reference to hold it against


@dataclass(frozen=True)
class Budget:
    """The deployer's constraints; None (or empty) leaves one open."""

    max_p99_ms: float | None = None
    min_images_per_s: float | None = None
    parity: str = "pass"
    max_memory_mb: float | None = None
    max_model_mb: float | None = None
    precisions: tuple[str, ...] = ()
    gpu: bool = False

    def __post_init__(self):
        if self.parity not in PARITY_RULES:
            raise BenchError(f"parity must be one of {', '.join(PARITY_RULES)}, not {self.parity!r}")
        for name, value in (
            ("p99 per call", self.max_p99_ms),
            ("images/s", self.min_images_per_s),
            ("peak memory", self.max_memory_mb),
            ("model size", self.max_model_mb),
        ):
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise BenchError(f"a {name} limit of {value} is out of range: give a positive number, or none")
        for precision in self.precisions:
            if precision not in PRECISIONS:
                raise BenchError(
                    f"unknown precision {precision!r}{did_you_mean(precision, PRECISIONS)}: choose from "
                    f"{', '.join(PRECISIONS)}"
                )


@dataclass(frozen=True)
class Candidate:
    """One configuration's latest completed result, as the budget reads it. p99_ms is per call: a batch of N images
    is answered when its last image is, so the per-image p99 times N."""

    result_id: str
    run_id: str
    started_at: str
    machine_id: str
    machine_label: str
    model: str
    runtime: str
    precision: str
    batch: int
    mode: str
    threads: int | None
    device: str
    total_ms: float
    total_ci_low_ms: float | None
    total_ci_high_ms: float | None
    p99_ms: float | None
    images_per_s: float
    parity_verdict: str | None
    peak_memory_mb: float | None
    model_mb: float | None
    stable: bool | None

    @property
    def name(self) -> str:
        mode = "" if self.mode == "lean" else f" ({self.mode} mode)"
        return f"{self.runtime}:{self.precision} batch {self.batch}{mode} on {self.machine_label}"


@dataclass(frozen=True)
class Rejection:
    candidate: Candidate
    broke: tuple[str, ...]  # each constraint it broke, in words
    rules: int  # how many rules it breaks (precision, device, parity): no amount of speed makes up for one
    miss: float  # how far it misses the limits: the sum of its relative excesses


@dataclass(frozen=True)
class Recommendation:
    budget: Budget
    pick: Candidate | None
    reason: str
    runner_up: Candidate | None
    tie_within_noise: bool
    front: tuple[Candidate, ...]
    fitting: tuple[Candidate, ...]  # every configuration that meets the budget, fastest first
    rejected: tuple[Rejection, ...]
    closest: Rejection | None  # when nothing fits: the configuration that misses least
    evidence: str
    candidates: int = field(default=0)

    def to_dict(self) -> dict:
        document = asdict(self)
        document["pick_name"] = self.pick.name if self.pick else None
        return document


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def candidate(row: dict) -> Candidate:
    """A results row (store.recommend_candidates) as a Candidate."""
    batch = int(row["batch"])
    p99 = _number(row.get("total_p99_ms"))
    throughput = max(_number(row.get("throughput_ips")) or 0.0, _number(row.get("in_flight_ips")) or 0.0)
    verdict = row.get("parity_verdict")
    stable = row.get("stable")
    return Candidate(
        result_id=row["result_id"],
        run_id=row["run_id"],
        started_at=str(row["started_at"]),
        machine_id=row["machine_id"],
        machine_label=row["machine_label"],
        model=row["model"],
        runtime=row["runtime"],
        precision=row["precision"],
        batch=batch,
        mode=row.get("mode") or "lean",
        threads=None if _number(row.get("threads")) is None else int(row["threads"]),
        device=row.get("device") or "cpu",
        total_ms=float(row["total_ms"]),
        total_ci_low_ms=_number(row.get("total_ci_low_ms")),
        total_ci_high_ms=_number(row.get("total_ci_high_ms")),
        p99_ms=None if p99 is None else p99 * batch,
        images_per_s=throughput,
        parity_verdict=verdict if isinstance(verdict, str) else None,
        peak_memory_mb=_number(row.get("peak_memory_mb")),
        model_mb=_number(row.get("model_mb")),
        stable=None if stable is None or stable != stable else bool(stable),  # NaN/NA: not judged
    )


def _over(value: float | None, limit: float | None, what: str, unit: str, form: str = "{:.1f}") -> tuple | None:
    """(words, relative excess) where value exceeds limit; an unmeasured value breaks any limit."""
    if limit is None:
        return None
    if value is None:
        return (f"{what} not measured", 1.0)
    if value > limit:
        return (f"{what} {form.format(value)} {unit} > {form.format(limit)} {unit}", value / limit - 1)
    return None


def broken_rules(c: Candidate, budget: Budget) -> list[str]:
    """The rules c breaks, in words: a precision, device or parity the budget does not allow."""
    found = []
    if budget.precisions and c.precision not in budget.precisions:
        found.append(f"precision {c.precision} not allowed")
    if c.device != "cpu" and not budget.gpu:
        found.append(f"runs on the {c.device.upper()}; CPU only asked")
    allowed = {"pass": {"pass"}, "drift": {"pass", "drift"}, "any": None}[budget.parity]
    if allowed is not None and c.parity_verdict not in allowed:
        found.append(f"parity {c.parity_verdict or 'not judged'}, {' or '.join(sorted(allowed))} asked")
    return found


def broken_limits(c: Candidate, budget: Budget) -> list[tuple[str, float]]:
    """The limits c exceeds, in words, each with its relative excess."""
    found = [
        over
        for over in (
            _over(c.p99_ms, budget.max_p99_ms, "p99 per call", "ms"),
            _over(c.peak_memory_mb, budget.max_memory_mb, "peak memory", "MB", "{:.0f}"),
            _over(c.model_mb, budget.max_model_mb, "model", "MB"),
        )
        if over
    ]
    if budget.min_images_per_s is not None and c.images_per_s < budget.min_images_per_s:
        shortfall = budget.min_images_per_s / max(c.images_per_s, 1e-9) - 1
        found.append((f"{c.images_per_s:.1f} img/s < {budget.min_images_per_s:.1f} img/s", shortfall))
    return found


def rejection(c: Candidate, budget: Budget) -> Rejection | None:
    """Why c is out of the budget, or None when it fits."""
    rules, limits = broken_rules(c, budget), broken_limits(c, budget)
    if not rules and not limits:
        return None
    return Rejection(c, tuple(rules) + tuple(words for words, _ in limits), len(rules), sum(m for _, m in limits))


def _scores(c: Candidate) -> tuple[float, ...]:
    """What the front weighs, each lower-is-better; an unmeasured figure counts as the worst."""
    p99 = math.inf if c.p99_ms is None else c.p99_ms
    memory = math.inf if c.peak_memory_mb is None else c.peak_memory_mb
    return (p99, -c.images_per_s, PARITY_RANK[c.parity_verdict], memory)


def _beats(a: Candidate, b: Candidate) -> bool:
    """a is at least as good as b on latency, throughput, parity and memory, and better on one."""
    a_scores, b_scores = _scores(a), _scores(b)
    return all(x <= y for x, y in zip(a_scores, b_scores)) and a_scores != b_scores


def pareto_front(candidates: list[Candidate]) -> list[Candidate]:
    """The configurations no other beats on latency, throughput, parity and memory together, fastest first."""
    front = [c for c in candidates if not any(_beats(other, c) for other in candidates)]
    return sorted(front, key=lambda c: c.total_ms)


def _tied(pick: Candidate, runner_up: Candidate | None) -> bool:
    """The runner-up's interval of the median reaches the pick's: which is faster is not known."""
    if runner_up is None or None in (pick.total_ci_high_ms, runner_up.total_ci_low_ms):
        return False
    return runner_up.total_ci_low_ms <= pick.total_ci_high_ms


def recommend(rows: list[dict], budget: Budget) -> Recommendation:
    """The pick under the budget from stored results rows: the fastest per image that breaks no constraint."""
    candidates = [candidate(row) for row in rows]
    found = (rejection(c, budget) for c in candidates)
    rejected = sorted((r for r in found if r), key=lambda r: (r.rules, r.miss))
    refused = {r.candidate.result_id for r in rejected}
    fitting = sorted((c for c in candidates if c.result_id not in refused), key=lambda c: c.total_ms)
    pick, runner_up = (fitting + [None, None])[:2]
    closest = None if pick or not rejected else rejected[0]  # fewest rules broken, then the smallest excess
    tie = pick is not None and _tied(pick, runner_up)
    return Recommendation(
        budget=budget,
        pick=pick,
        reason=_reason(pick, runner_up, tie, len(fitting), closest, len(candidates)),
        runner_up=runner_up,
        tie_within_noise=tie,
        front=tuple(pareto_front(candidates)),
        fitting=tuple(fitting),
        rejected=tuple(rejected),
        closest=closest,
        evidence=_evidence(candidates),
        candidates=len(candidates),
    )


def _interval(c: Candidate) -> str:
    if c.total_ci_low_ms is None:
        return "no 95% interval: too few iterations"
    return f"95% interval {c.total_ci_low_ms:.2f}-{c.total_ci_high_ms:.2f} ms"


def _reason(pick, runner_up, tie: bool, fitting: int, closest: Rejection | None, total: int) -> str:
    if total == 0:
        return "no completed result to choose from: run the benchmark first"
    if pick is None:
        return f"nothing meets this budget; closest: {closest.candidate.name}, which misses by " + "; ".join(
            closest.broke
        )
    words = (
        f"{pick.name}: the fastest of the {fitting} configuration(s) that meet the budget, "
        f"{pick.total_ms:.2f} ms per image ({_interval(pick)}), "
        + (f"p99 {pick.p99_ms:.1f} ms per call, " if pick.p99_ms is not None else "")
        + f"{pick.images_per_s:.1f} img/s, parity {pick.parity_verdict or 'not judged'}"
    )
    if tie:
        words += (
            f"; a tie within noise with {runner_up.name} ({runner_up.total_ms:.2f} ms, {_interval(runner_up)}): "
            "its interval overlaps the pick's"
        )
    return words


def _evidence(candidates: list[Candidate]) -> str:
    if not candidates:
        return "no stored result"
    dates = sorted(c.started_at[:10] for c in candidates)
    stable = sum(1 for c in candidates if c.stable)
    judged = sum(1 for c in candidates if c.stable is not None)
    span = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    return (
        f"{len(candidates)} configuration(s), each its latest result, from runs of {span}; "
        f"{stable} of {judged} judged stable"
        + (f", {len(candidates) - judged} with too few iterations to judge" if judged < len(candidates) else "")
    )
