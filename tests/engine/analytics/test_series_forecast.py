"""Aggregates, trend and forecast against series with known answers."""

from __future__ import annotations

import math

import pytest

from adaptive_modbus_engine.analytics import (
    ForecastTracker,
    aggregate,
    daily_pattern,
    forecast,
    resample,
    trend,
)
from adaptive_modbus_engine.analytics.forecast import ForecastPoint
from adaptive_modbus_engine.analytics.series import numeric, weighted_median
from adaptive_modbus_engine.history import ReadSample

HOUR = 3600.0


def reads(*pairs: tuple[float, object]) -> list[ReadSample]:
    """ReadSamples from (at, value) pairs."""
    return [ReadSample(at, value) for at, value in pairs]  # type: ignore[arg-type]


def test_time_weighted_aggregate_matches_the_hand_computed_one() -> None:
    """Each value weighs the time it was held, the read before the window included."""
    samples = reads((-5, 100.0), (0, 10.0), (10, 20.0), (40, 30.0), (100, 99.0))
    agg = aggregate(samples, 0, 60)
    # held: 10 for 10 s, 20 for 30 s, 30 for 20 s -> (100 + 600 + 600) / 60
    assert agg.time_weighted_mean == pytest.approx(1300 / 60)
    assert agg.held == pytest.approx(60)
    assert (agg.count, agg.minimum, agg.maximum, agg.last) == (3, 10.0, 30.0, 30.0)
    assert agg.mean == pytest.approx(20.0)  # plain mean of the reads
    # a window that starts between reads takes the value held into it
    late = aggregate(samples, 5, 20)
    assert late.count == 1 and late.minimum == 20.0
    assert late.time_weighted_mean == pytest.approx((10 * 5 + 20 * 10) / 15)


def test_burst_of_fast_reads_does_not_outweigh_a_quiet_hour() -> None:
    """Reads every second for a minute weigh one minute, not 60 reads."""
    samples = reads((0, 0.0), *((3540 + i, 100.0) for i in range(60)))
    agg = aggregate(samples, 0, 3600)
    assert agg.mean == pytest.approx(6000 / 61)  # by read: mostly 100
    assert agg.time_weighted_mean == pytest.approx(100 * 60 / 3600)  # by time


def test_strings_none_and_nan_are_left_out_and_bools_count_as_numbers() -> None:
    """Only numeric reads aggregate."""
    samples = reads((0, "x"), (1, None), (2, math.nan), (3, True), (5, 3))
    assert numeric(samples) == [(3.0, 1.0), (5.0, 3.0)]
    empty = aggregate(reads((0, "text")), 0, 10)
    assert empty.count == 0 and empty.time_weighted_mean is None


def test_resample_holds_values_across_slots() -> None:
    """Slot means are time-weighted; a slot without a read takes the held value."""
    points = [(0.0, 0.0), (5.0, 10.0), (25.0, 20.0)]
    assert resample(points, 0, 10, 4) == pytest.approx([5.0, 10.0, 15.0, 20.0])


def test_weighted_median() -> None:
    """The value at half the total weight."""
    assert weighted_median([1, 2, 3], [1, 1, 10]) == 3
    assert weighted_median([1, 2], [1, 1]) == 1.5
    assert weighted_median([5, 1], [0, 0]) == 3


def test_trend_of_a_linear_ramp_read_irregularly() -> None:
    """Slope per hour and R² of an exact ramp, whatever the spacing."""
    times = [0, 7, 9, 600, 601, 602, 1800, 3000, 3599, 7200]
    samples = reads(*((t, 2.0 + 0.5 * t / HOUR) for t in times))
    found = trend(samples, 2 * HOUR)
    assert found is not None
    assert found.slope_per_hour == pytest.approx(0.5)
    assert found.value_at_end == pytest.approx(3.0)
    assert found.r_squared == pytest.approx(1.0)
    assert found.direction == "rising"
    falling = trend(reads(*((t, -3.0 * t / HOUR) for t in times)), 2 * HOUR)
    assert falling is not None and falling.direction == "falling"


def test_trend_of_whole_sine_periods_is_flat() -> None:
    """Two whole periods of a sine have no slope to speak of."""
    samples = reads(
        *((t, math.sin(2 * math.pi * t / HOUR)) for t in range(0, 2 * 3600, 30))
    )
    found = trend(samples, 2 * HOUR, end=2 * 3600)
    assert found is not None
    assert found.direction == "flat"
    # least squares of sin over n whole periods: R² = 6 / (π² n²), 0.152 for n = 2
    assert found.r_squared == pytest.approx(6 / (math.pi**2 * 4), abs=0.005)
    # a change within the tolerance is flat too
    small = trend(reads((0, 0.0), (HOUR, 0.1)), HOUR, tolerance=0.5)
    assert small is not None and small.direction == "flat"


def test_forecast_continues_a_linear_ramp() -> None:
    """Holt's linear method extrapolates a ramp exactly; the interval widens."""
    samples = reads(*((t, 10.0 + 2.0 * t / HOUR) for t in range(0, 4 * 3600, 60)))
    made = forecast(samples, HOUR)
    assert made is not None and made.method == "holt"
    # a point holds from its time on, as a read does: the ramp's value there
    for point in made.points:
        assert point.value == pytest.approx(10.0 + 2.0 * point.at / HOUR, abs=1e-6)
    last = 4 * 3600 - 60
    assert made.made_at == last
    assert made.at(last + HOUR).value == pytest.approx(
        10.0 + 2.0 * (last + HOUR) / HOUR
    )
    widths = [p.high - p.low for p in made.points]
    assert widths == sorted(widths)


def test_seasonal_forecast_follows_a_sinusoid_with_a_known_period() -> None:
    """With the season given, Holt-Winters predicts the next half period; Holt cannot."""
    period = HOUR

    def truth(t: float) -> float:
        return 20.0 + 5.0 * math.sin(2 * math.pi * t / period)

    samples = reads(*((t, truth(t)) for t in range(0, int(4 * period), 60)))
    made = forecast(samples, period / 2, step=60, season=period)
    assert made is not None and made.method == "holt_winters"
    errors = [abs(p.value - truth(p.at)) for p in made.points]
    assert max(errors) < 0.1
    plain = forecast(samples, period / 2, step=60)
    assert plain is not None and plain.method == "holt"
    assert max(abs(p.value - truth(p.at)) for p in plain.points) > 1.0
    # the interval is around the value and widens with the horizon
    widths = [p.high - p.low for p in made.points]
    assert all(p.low <= p.value <= p.high for p in made.points)
    assert widths == sorted(widths)
    assert made.sigma < 0.1 < plain.sigma


def test_daily_pattern_needs_two_days_that_repeat() -> None:
    """A day-periodic series is established after two days; noise or a ramp is not."""
    day = 24 * HOUR
    periodic = [
        (t, math.sin(2 * math.pi * t / day)) for t in range(0, int(3 * day), 600)
    ]
    assert daily_pattern(periodic)
    assert not daily_pattern(periodic[: len(periodic) // 2])  # 1.5 days
    ramp = [(t, 0.0 if (t // 600) % 2 else 1.0) for t in range(0, int(3 * day), 600)]
    assert not daily_pattern(ramp)


def test_forecast_needs_data() -> None:
    """Too few reads: no forecast."""
    assert forecast(reads((0, 1.0)), HOUR) is None
    assert forecast(reads((0, 1.0), (1, 2.0)), HOUR) is None
    assert trend(reads((0, 1.0)), HOUR) is None


def test_reads_a_microsecond_apart_are_one_moment() -> None:
    """Reads stamped within a microsecond (a frozen or stepped clock): no forecast.

    The grid was the median gap (0.1 us), so a 15-minute horizon was billions of
    steps: the cycle that asked hung.
    """
    at = 1_795_710_809.2432313
    samples = reads(*((at + i * 1e-7, 230.0 + i % 2) for i in range(12)))
    assert forecast(samples, 900.0) is None
    # a second apart is the finest grid: a forecast of its own steps
    made = forecast(reads(*((float(i), float(i)) for i in range(12))), 10.0)
    assert made is not None
    assert made.step_seconds == 1.0
    assert len(made.points) == 10


def test_tracker_scores_forecasts_against_what_was_read() -> None:
    """Errors, bias and coverage; the value held at the forecast time is the actual."""
    tracker = ForecastTracker(horizon=60)
    tracker.observe("r", 0, 10.0)
    tracker.expect("r", ForecastPoint(60, 11.0, 10.0, 12.0))
    tracker.expect("r", ForecastPoint(120, 11.0, 10.5, 11.5))
    assert tracker.accuracy("r") is None
    # a read at 61 is closer to 60 than the read at 0: it is the actual
    assert tracker.observe("r", 61, 12.0) == [pytest.approx(1.0)]
    # the next read comes late: the read at 61 was in force at 120
    assert tracker.observe("r", 300, 30.0) == [pytest.approx(1.0)]
    acc = tracker.accuracy("r")
    assert acc is not None
    assert (
        acc.evaluated == 2
        and acc.mae == pytest.approx(1.0)
        and acc.bias == pytest.approx(1.0)
    )
    assert acc.coverage == pytest.approx(
        0.5
    )  # 12 inside [10, 12], 12 outside [10.5, 11.5]
    restored = ForecastTracker(horizon=60)
    restored.import_state(tracker.export_state())
    assert restored.accuracy("r") == acc
    restored.import_state({"bad": "row"})
    assert restored.accuracy("bad") is None
