"""Stage timing and statistics. Every sample is kept; nothing is clipped or dropped."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

STAGES = ("decode", "pre", "infer", "post")


class StageTimer:
    """Collects integer nanoseconds per stage for one iteration."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.ns[name] = self.ns.get(name, 0) + time.perf_counter_ns() - start


MIN_CI_SAMPLES = 6  # the fewest samples whose order statistics bound the median at 95%


def median_ci_indices(n: int, confidence: float = 0.95) -> tuple[int, int] | None:
    """Order-statistic (distribution-free) confidence interval of the median: 0-based ranks, or None if n < 6."""
    from scipy.stats import binom

    if n < MIN_CI_SAMPLES:
        return None
    alpha = 1 - confidence
    low = int(binom.ppf(alpha / 2, n, 0.5))  # rank k such that P(X < k) <= alpha/2
    if binom.cdf(low, n, 0.5) > alpha / 2:
        low -= 1
    low = max(low, 0)
    high = n - 1 - low
    return low, high


@dataclass
class Stats:
    n: int
    mean: float
    median: float
    p90: float
    p99: float
    min: float
    max: float
    stdev: float
    ci_low: float | None
    ci_high: float | None
    cv: float

    @classmethod
    def from_values(cls, values) -> Stats:
        data = np.sort(np.asarray(values, dtype=np.float64))
        if data.size == 0:
            raise ValueError("no samples")
        mean = float(data.mean())
        stdev = float(data.std(ddof=1)) if data.size > 1 else 0.0
        ci = median_ci_indices(data.size)
        return cls(
            n=int(data.size),
            mean=mean,
            median=float(np.median(data)),
            p90=float(np.percentile(data, 90)),
            p99=float(np.percentile(data, 99)),
            min=float(data[0]),
            max=float(data[-1]),
            stdev=stdev,
            ci_low=float(data[ci[0]]) if ci else None,
            ci_high=float(data[ci[1]]) if ci else None,
            cv=stdev / mean if mean > 0 else math.inf,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def reset_peak_memory() -> None:
    """Start a new peak-RSS window for this process (Linux: writing 5 to clear_refs resets VmHWM to the current
    RSS). Elsewhere nothing is measured: peak_memory_mb() then answers None."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def peak_memory_mb() -> float | None:
    """This process's peak resident memory (host RAM, MiB) since reset_peak_memory(), or None where the OS does
    not say. Not getrusage's ru_maxrss: that keeps the parent's size from before a spawned worker's exec."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
