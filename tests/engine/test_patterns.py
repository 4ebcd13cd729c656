"""Tests for the time-of-week activity profile."""

from __future__ import annotations

import json
import math

import pytest

from adaptive_modbus_engine.intervals import IntervalLimits, Reason
from adaptive_modbus_engine.patterns import (
    BUCKETS,
    FACTOR_MAX,
    FACTOR_MIN,
    HOUR,
    WEEK,
    ActivityProfile,
)

MONDAY = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday
DAY = 24 * HOUR
LIMITS = IntervalLimits(5.0, 300.0)


def busy_late_morning(t: float, tz_offset: float = 0.0) -> float:
    """10:00-12:00 local every day is busy, mornings a little, nights dead quiet."""
    hour = ((t + tz_offset) % DAY) // HOUR
    if 10 <= hour < 12:
        return 5.0
    return 0.5 if 7 <= hour < 20 else 0.0


def trained(weeks: int = 3, tz_offset: float = 0.0, step: float = 300.0) -> ActivityProfile:
    profile = ActivityProfile(tz_offset=tz_offset)
    t = MONDAY - tz_offset
    while t < MONDAY - tz_offset + weeks * WEEK:
        profile.record(t, busy_late_morning(t, tz_offset))
        t += step
    return profile


def at(day: int, hour: float, weeks: int = 3, tz_offset: float = 0.0) -> float:
    return MONDAY - tz_offset + weeks * WEEK + day * DAY + hour * HOUR


def test_bucket_is_local_hour_of_week() -> None:
    profile = ActivityProfile()
    assert profile.bucket(MONDAY) == 0
    assert profile.bucket(MONDAY + 10.5 * HOUR) == 10
    assert profile.bucket(MONDAY + 6 * DAY + 23 * HOUR) == BUCKETS - 1
    assert profile.bucket(MONDAY + WEEK) == 0
    assert profile.week(MONDAY + WEEK) == profile.week(MONDAY) + 1
    assert profile.week(MONDAY - 1) == profile.week(MONDAY) - 1
    east = ActivityProfile(tz_offset=2 * HOUR)
    assert east.bucket(MONDAY - 2 * HOUR) == 0


def test_factor_is_one_until_learned() -> None:
    profile = ActivityProfile()
    t = MONDAY
    while t < MONDAY + WEEK:  # one week only: no bucket seen in two weeks
        profile.record(t, busy_late_morning(t))
        t += 300.0
    assert all(profile.activity(i) is None for i in range(BUCKETS))
    assert profile.factor(MONDAY + WEEK + 10.5 * HOUR) == 1.0
    profile.record(MONDAY + WEEK + 10.5 * HOUR, 5.0)  # second week seen for bucket 10
    assert profile.learned(10)
    assert profile.factor(MONDAY + WEEK + 10.5 * HOUR) < 1.0


@pytest.mark.parametrize("tz_offset", [0.0, 3600.0, -5 * 3600.0])
def test_busy_hours_shorten_ahead_and_during_quiet_nights_lengthen(tz_offset: float) -> None:
    profile = trained(tz_offset=tz_offset)
    for day in range(7):
        assert profile.factor(at(day, 9.0, tz_offset=tz_offset)) >= 1.0  # quiet-ish morning
        assert profile.factor(at(day, 9.8, tz_offset=tz_offset)) < 1.0  # just before: look ahead
        assert profile.factor(at(day, 10.5, tz_offset=tz_offset)) < 1.0
        assert profile.factor(at(day, 11.9, tz_offset=tz_offset)) < 1.0
        assert profile.factor(at(day, 3.0, tz_offset=tz_offset)) > 1.0
        assert profile.factor(at(day, 3.0, tz_offset=tz_offset)) == FACTOR_MAX


def test_factor_is_clipped() -> None:
    profile = trained()
    factors = [profile.factor(MONDAY + k * 600.0) for k in range(int(WEEK // 600))]
    assert min(factors) >= FACTOR_MIN
    assert max(factors) <= FACTOR_MAX
    assert min(factors) < 0.5


def test_disabled_profile_is_neutral_but_keeps_learning() -> None:
    profile = trained()
    profile.enabled = False
    assert profile.factor(at(0, 10.5)) == 1.0
    assert profile.factor(at(0, 3.0)) == 1.0
    assert profile.apply(at(0, 10.5), 100.0, LIMITS) is None
    profile.enabled = True
    assert profile.factor(at(0, 10.5)) < 1.0


def test_apply_returns_pattern_decision_clamped_to_limits() -> None:
    profile = trained()
    decision = profile.apply(at(1, 10.5), 100.0, LIMITS)
    assert decision is not None
    assert decision.reason is Reason.PATTERN
    assert decision.previous == 100.0
    assert decision.interval == pytest.approx(100.0 * profile.factor(at(1, 10.5)))
    assert "Tue 10:00" in decision.detail
    night = profile.apply(at(1, 3.0), 200.0, LIMITS)
    assert night is not None
    assert night.interval == LIMITS.max_interval
    assert profile.apply(at(1, 3.0), 300.0, LIMITS) is None  # already at max: no influence


def test_memory_is_bounded() -> None:
    profile = trained(weeks=2)
    size = len(json.dumps(trained(weeks=2).to_dict()))
    t = MONDAY + 2 * WEEK
    for k in range(20_000):
        profile.record(t + k * 97.0, float(k % 7))
    state = profile.to_dict()
    assert len(state["buckets"]) <= BUCKETS
    assert all(len(entry) == 5 for entry in state["buckets"].values())
    assert len(json.dumps(state)) < 2 * size
    # sparse: an untouched profile stores no buckets at all
    assert ActivityProfile().to_dict()["buckets"] == {}


def test_bad_samples_and_clock_going_back_are_ignored() -> None:
    profile = trained()
    before = profile.to_dict()
    profile.record(at(0, 10.5), -1.0)
    profile.record(at(0, 10.5), math.nan)
    profile.record(math.inf, 1.0)
    profile.record(MONDAY + 10.5 * HOUR, 100.0)  # three weeks ago
    assert profile.to_dict() == before


def test_serialization_round_trip() -> None:
    profile = trained(tz_offset=3600.0)
    profile.enabled = False
    restored = ActivityProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert restored.to_dict() == profile.to_dict()
    restored.enabled = profile.enabled = True
    for hour in (3.0, 9.8, 10.5, 15.0):
        t = at(2, hour, tz_offset=3600.0)
        assert restored.factor(t) == profile.factor(t)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "x",
        {},
        {"version": 2},
        {"version": 1, "mean": [1.0] * 10},
        {"version": 1, "tz_offset": "x", "lookahead": math.nan, "enabled": "yes"},
        {"version": 1, "mean": [math.nan] * BUCKETS},
        {"version": 1, "tz_offset": 10**400},
    ],
)
def test_corrupt_state_falls_back(data: object) -> None:
    profile = ActivityProfile.from_dict(data)
    assert profile.factor(MONDAY) == 1.0
    assert profile.enabled is True
    profile.record(MONDAY, 1.0)
    json.dumps(profile.to_dict())


def test_partially_corrupt_arrays_reset_all_buckets() -> None:
    state = trained().to_dict()
    first = next(iter(state["buckets"]))
    state["buckets"][first] = state["buckets"][first][:-1]
    assert ActivityProfile.from_dict(state).mean_activity() is None
    state = trained().to_dict()
    state["buckets"]["999"] = [0, 0, 0, 0, 0]
    assert ActivityProfile.from_dict(state).mean_activity() is None
    state = trained().to_dict()
    state["buckets"][first] = [0.0, -1, 0, 0.0, 0]  # negative week count
    assert ActivityProfile.from_dict(state).mean_activity() is None
    # the first, dense format still loads
    dense = trained()
    legacy = {
        "version": 1,
        "mean": list(dense._mean),
        "weeks": list(dense._weeks),
        "visit_week": list(dense._visit_week),
        "visit_sum": list(dense._visit_sum),
        "visit_n": list(dense._visit_n),
    }
    assert ActivityProfile.from_dict(legacy).mean_activity() == dense.mean_activity()
