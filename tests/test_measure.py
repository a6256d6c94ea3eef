"""Statistics against sample sets whose answers are known by hand."""

import math
import sys

import pytest

from engine.measure import StageTimer, Stats, median_ci_indices


def test_stats_of_one_to_ten():
    stats = Stats.from_values(range(1, 11))
    assert stats.n == 10
    assert stats.mean == 5.5
    assert stats.median == 5.5
    assert stats.min == 1 and stats.max == 10
    assert stats.p90 == pytest.approx(9.1)
    assert stats.p99 == pytest.approx(9.91)
    assert stats.stdev == pytest.approx(math.sqrt(55 / 6))  # sample stdev of 1..10
    assert stats.cv == pytest.approx(stats.stdev / 5.5)
    # 95% order-statistic interval for n = 10 is the 2nd to the 9th value
    assert (stats.ci_low, stats.ci_high) == (2, 9)


def test_stats_keep_outliers():
    values = [10.0] * 99 + [1000.0]
    stats = Stats.from_values(values)
    assert stats.max == 1000.0
    assert stats.median == 10.0
    assert stats.mean == pytest.approx(19.9)


@pytest.mark.parametrize("n, expected", [(6, (0, 5)), (10, (1, 8)), (20, (5, 14)), (100, (39, 60))])
def test_median_ci_ranks_match_tables(n, expected):
    assert median_ci_indices(n) == expected


def test_median_ci_needs_six_samples():
    assert median_ci_indices(5) is None
    assert Stats.from_values([1, 2, 3]).ci_low is None


def test_constant_samples_have_zero_spread():
    stats = Stats.from_values([4.0] * 8)
    assert stats.stdev == 0 and stats.cv == 0 and stats.ci_low == stats.ci_high == 4.0


def test_no_samples_is_an_error():
    with pytest.raises(ValueError, match="^no samples$"):
        Stats.from_values([])


def test_stage_timer_accumulates_integer_nanoseconds(monkeypatch):
    """Two spans of one stage add up (the second does not replace the first), from perf_counter_ns's integers."""
    from engine import measure

    ticks = iter([1_000, 1_300, 5_000, 5_050, 9_000, 9_700])
    monkeypatch.setattr(measure.time, "perf_counter_ns", lambda: next(ticks))
    timer = StageTimer()
    with timer.stage("infer"):
        pass
    with timer.stage("infer"):
        pass
    with timer.stage("post"):
        pass
    assert timer.ns == {"infer": 350, "post": 700}
    assert all(isinstance(value, int) for value in timer.ns.values())


@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_the_median_interval_is_the_narrowest_that_covers_the_confidence(confidence):
    """Ranks (low, n-1-low) cover the median with probability 1 - 2 P(B <= low), B ~ Bin(n, 1/2): at least the
    confidence, and one rank further in would not."""
    from scipy.stats import binom

    half_alpha = (1 - confidence) / 2
    for n in range(6, 400):  # a wrong tail (alpha / 3, say) first gives another rank at n = 132
        if binom.cdf(0, n, 0.5) > half_alpha:
            continue  # too few samples for this confidence: the widest interval is all there is
        low, high = median_ci_indices(n, confidence)
        assert high == n - 1 - low
        assert binom.cdf(low, n, 0.5) <= half_alpha < binom.cdf(low + 1, n, 0.5), (n, low)


def test_a_confidence_whose_tail_is_exact_keeps_that_rank():
    """For n = 10, P(B <= 1) = 11/1024 exactly: at that tail the 2nd and 9th values are the interval."""
    assert median_ci_indices(10, 1 - 22 / 1024) == (1, 8)


@pytest.mark.parametrize(
    "values, stdev, cv",
    [
        ([7.0], 0.0, 0.0),  # one sample: no spread to speak of
        ([1.0, 3.0], math.sqrt(2), math.sqrt(2) / 2),
        ([0.4, 0.6], math.sqrt(0.02), math.sqrt(0.02) / 0.5),
        ([0.0, 0.0], 0.0, math.inf),  # no mean to be relative to
    ],
)
def test_spread_of_few_and_small_samples(values, stdev, cv):
    stats = Stats.from_values(values)
    assert stats.stdev == pytest.approx(stdev) and stats.cv == pytest.approx(cv)
    assert stats.ci_low is None and stats.ci_high is None


def test_stats_of_integers_in_any_order_as_a_dict():
    stats = Stats.from_values([5, 1, 4, 2, 3, 6])
    assert stats.to_dict() == {
        "n": 6, "mean": 3.5, "median": 3.5, "p90": 5.5, "p99": pytest.approx(5.95), "min": 1.0, "max": 6.0,
        "stdev": pytest.approx(math.sqrt(3.5)), "ci_low": 1.0, "ci_high": 6.0,
        "cv": pytest.approx(math.sqrt(3.5) / 3.5),
    }  # fmt: skip
    assert all(isinstance(value, float) for key, value in stats.to_dict().items() if key != "n")


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the peak-RSS window is Linux's /proc")
def test_peak_memory_is_the_window_s_high_water_mark():
    from engine.measure import peak_memory_mb, reset_peak_memory

    reset_peak_memory()
    resident = _status_kib("VmRSS:") / 1024
    before = peak_memory_mb()
    assert resident <= before < resident + 64, "just after a reset the peak is what the process holds now"
    held = b"\x01" * (200 * 2**20)  # 200 MiB, written
    assert peak_memory_mb() >= before + 190
    del held
    reset_peak_memory()
    # a new window starts at what the process holds now (in a long suite, the allocator may keep the freed pages)
    assert peak_memory_mb() <= _status_kib("VmRSS:") / 1024 + 64, "a new window forgets the old peak"
