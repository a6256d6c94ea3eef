"""Statistics against sample sets whose answers are known by hand."""

import math

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
    with pytest.raises(ValueError):
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
