"""Tests for the time-of-week activity profile."""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta
import json
import math
import zlib
from zoneinfo import ZoneInfo

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
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine

MONDAY = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday
DAY = 24 * HOUR
LIMITS = IntervalLimits(5.0, 300.0)


def busy_late_morning(t: float, tz_offset: float = 0.0) -> float:
    """10:00-12:00 local every day is busy, mornings a little, nights dead quiet."""
    hour = ((t + tz_offset) % DAY) // HOUR
    if 10 <= hour < 12:
        return 5.0
    return 0.5 if 7 <= hour < 20 else 0.0


def trained(
    weeks: int = 3, tz_offset: float = 0.0, step: float = 300.0
) -> ActivityProfile:
    """Return a profile trained on ``weeks`` of busy late mornings."""
    profile = ActivityProfile(tz_offset=tz_offset)
    t = MONDAY - tz_offset
    while t < MONDAY - tz_offset + weeks * WEEK:
        profile.record(t, busy_late_morning(t, tz_offset))
        t += step
    return profile


def at(day: int, hour: float, weeks: int = 3, tz_offset: float = 0.0) -> float:
    """Return the time of ``day`` and ``hour`` in the week after training."""
    return MONDAY - tz_offset + weeks * WEEK + day * DAY + hour * HOUR


def test_bucket_is_local_hour_of_week() -> None:
    """Test that a time falls into the bucket of its local hour of the week."""
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
    """Test that the factor stays 1.0 until a bucket has two weeks of data."""
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
def test_busy_hours_shorten_ahead_and_during_quiet_nights_lengthen(
    tz_offset: float,
) -> None:
    """Test that intervals shorten ahead of and during busy hours and lengthen at night."""
    profile = trained(tz_offset=tz_offset)
    for day in range(7):
        # quiet-ish morning
        assert profile.factor(at(day, 9.0, tz_offset=tz_offset)) >= 1.0
        # just before: look ahead
        assert profile.factor(at(day, 9.8, tz_offset=tz_offset)) < 1.0
        assert profile.factor(at(day, 10.5, tz_offset=tz_offset)) < 1.0
        assert profile.factor(at(day, 11.9, tz_offset=tz_offset)) < 1.0
        assert profile.factor(at(day, 3.0, tz_offset=tz_offset)) > 1.0
        assert profile.factor(at(day, 3.0, tz_offset=tz_offset)) == FACTOR_MAX


def test_factor_is_clipped() -> None:
    """Test that the factor stays within its bounds."""
    profile = trained()
    factors = [profile.factor(MONDAY + k * 600.0) for k in range(int(WEEK // 600))]
    assert min(factors) >= FACTOR_MIN
    assert max(factors) <= FACTOR_MAX
    assert min(factors) < 0.5


def test_disabled_profile_is_neutral_but_keeps_learning() -> None:
    """Test that a disabled profile has factor 1.0 but keeps learning."""
    profile = trained()
    profile.enabled = False
    assert profile.factor(at(0, 10.5)) == 1.0
    assert profile.factor(at(0, 3.0)) == 1.0
    assert profile.apply(at(0, 10.5), 100.0, LIMITS) is None
    profile.enabled = True
    assert profile.factor(at(0, 10.5)) < 1.0


def test_apply_returns_pattern_decision_clamped_to_limits() -> None:
    """Test that apply gives a PATTERN decision within the limits."""
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
    # already at max: no influence
    assert profile.apply(at(1, 3.0), 300.0, LIMITS) is None


def test_memory_is_bounded() -> None:
    """Test that the stored state stays the same size however long it learns."""
    profile = trained(weeks=2)
    size = len(json.dumps(trained(weeks=2).to_dict()))
    t = MONDAY + 2 * WEEK
    for k in range(20_000):
        profile.record(t + k * 97.0, float(k % 7))
    state = profile.to_dict()
    assert len(json.dumps(state)) <= size + 20  # a few more digits at most
    # an untouched profile stores no buckets at all
    assert "mean" not in ActivityProfile().to_dict()


def test_stored_state_is_small_with_every_bucket_learned() -> None:
    """Learned state used to be ~6 kB per register once the buckets filled."""
    profile = trained(weeks=4, step=60.0)
    assert all(profile.learned(i) for i in range(BUCKETS))
    assert len(json.dumps(profile.to_dict(), separators=(",", ":"))) <= 600


def test_bad_samples_and_clock_going_back_are_ignored() -> None:
    """Test that negative samples and a clock going back change nothing."""
    profile = trained()
    before = profile.to_dict()
    profile.record(at(0, 10.5), -1.0)
    profile.record(at(0, 10.5), math.nan)
    profile.record(math.inf, 1.0)
    profile.record(MONDAY + 10.5 * HOUR, 100.0)  # three weeks ago
    assert profile.to_dict() == before


def test_serialization_round_trip() -> None:
    """Test that a profile survives a JSON round trip."""
    profile = trained(tz_offset=3600.0)
    profile.enabled = False
    state = json.loads(json.dumps(profile.to_dict()))
    restored = ActivityProfile.from_dict(state, tz_offset=3600.0)
    assert restored.to_dict() == state  # stable: a second save stores the same
    restored.enabled = profile.enabled = True
    for hour in (3.0, 9.8, 10.5, 15.0):
        t = at(2, hour, tz_offset=3600.0)
        # quantised means and visits folded at save time: within a few percent
        assert restored.factor(t) == pytest.approx(profile.factor(t), rel=0.06)
    for index in range(BUCKETS):
        assert restored.learned(index) == profile.learned(index)


def test_restore_keeps_counting_weeks_without_double_counting() -> None:
    """Test that a restored profile counts the next week's visits once.

    A save folds finished visits early; the next week's samples must not fold them
    again, and the visit in progress carries on.
    """
    profile = trained(weeks=2)
    restored = ActivityProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    t = MONDAY + 2 * WEEK  # the next week starts: every bucket gets its third week
    while t < MONDAY + 3 * WEEK + HOUR:
        profile.record(t, busy_late_morning(t))
        restored.record(t, busy_late_morning(t))
        t += 300.0
    for index in range(BUCKETS):
        assert restored.counts(index).weeks == profile.counts(index).weeks
        assert restored.activity(index) == pytest.approx(
            profile.activity(index), rel=0.06
        )


@pytest.mark.parametrize(
    "data",
    [
        None,
        "x",
        {},
        {"version": 3},
        {
            "version": 2,
            "tz": "UTC",
            "week": 1,
            "scale": 1.0,
            "buckets": "eJzLSM3JyVcozy/KSQEAGgQEXQ==",
        },
        {"version": 1, "mean": [1.0] * 10},
        {"version": 1, "tz_offset": "x", "lookahead": math.nan, "enabled": "yes"},
        {"version": 1, "mean": [math.nan] * BUCKETS},
        {"version": 1, "tz_offset": 10**400},
    ],
)
def test_corrupt_state_falls_back(data: object) -> None:
    """Test that corrupt stored state gives a neutral, working profile."""
    profile = ActivityProfile.from_dict(data)
    assert profile.factor(MONDAY) == 1.0
    assert profile.enabled is True
    profile.record(MONDAY, 1.0)
    json.dumps(profile.to_dict())


def v1_state(profile: ActivityProfile, dense: bool = False) -> dict[str, object]:
    """Return the version 1 state of ``profile`` (what earlier releases stored)."""
    counts = [profile.counts(index) for index in range(BUCKETS)]
    arrays = {
        name: [getattr(bucket, name) for bucket in counts]
        for name in ("mean", "weeks", "visit_week", "visit_sum", "visit_n")
    }
    state: dict[str, object] = {"version": 1, "tz_offset": 0.0, "lookahead": 900.0}
    if dense:
        return state | arrays
    state["buckets"] = {
        str(i): [arrays[name][i] for name in arrays]
        for i in range(BUCKETS)
        if counts[i].weeks or counts[i].visit_n or counts[i].visit_week >= 0
    }
    return state


def test_partially_corrupt_state_resets_all_buckets() -> None:
    """Test that one bad bucket in stored state resets them all."""
    state = v1_state(trained())
    buckets = state["buckets"]
    assert isinstance(buckets, dict)
    first = next(iter(buckets))
    buckets[first] = buckets[first][:-1]
    assert ActivityProfile.from_dict(state).mean_activity() is None
    state = v1_state(trained())
    state["buckets"]["999"] = [0, 0, 0, 0, 0]  # type: ignore[index]
    assert ActivityProfile.from_dict(state).mean_activity() is None
    state = v1_state(trained())
    state["buckets"][first] = [0.0, -1, 0, 0.0, 0]  # type: ignore[index]
    assert ActivityProfile.from_dict(state).mean_activity() is None
    packed = trained().to_dict()
    too_long = base64.b64encode(zlib.compress(bytes(10 * BUCKETS))).decode()
    for field, bad in (("buckets", "AAAA"), ("buckets", "not base64!"), ("buckets", too_long),
                       ("visit", 999), ("visit_n", "x"),
                       ("scale", "x"), ("week", -3)):  # fmt: skip
        assert ActivityProfile.from_dict(packed | {field: bad}).mean_activity() is None


@pytest.mark.parametrize("dense", [False, True])
def test_version_1_state_migrates(dense: bool) -> None:
    """Both earlier layouts load (UTC buckets); in another time zone they are set aside."""
    old = trained()
    state = v1_state(old, dense=dense)
    restored = ActivityProfile.from_dict(state)
    assert restored.mean_activity() == old.mean_activity()
    assert restored.factor(at(1, 10.5)) == old.factor(at(1, 10.5))
    elsewhere = ActivityProfile.from_dict(state, tz=ZoneInfo("Europe/Berlin"))
    assert elsewhere.mean_activity() is None and elsewhere.tz_name == "Europe/Berlin"
    # and a v2 state saved in one zone is set aside in another
    packed = restored.to_dict()
    assert ActivityProfile.from_dict(packed).mean_activity() is not None
    assert (
        ActivityProfile.from_dict(
            packed, tz=ZoneInfo("America/New_York")
        ).mean_activity()
        is None
    )


def local(zone: str, *fields: int) -> float:
    """Return the timestamp of a wall-clock time in ``zone``."""
    return datetime(*fields, tzinfo=ZoneInfo(zone)).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("zone", "spring", "fall"),
    [
        ("Europe/Berlin", (2026, 3, 29), (2026, 10, 25)),
        ("America/New_York", (2026, 3, 8), (2026, 11, 1)),
    ],
)
def test_buckets_are_local_hours_through_dst(
    zone: str, spring: tuple[int, int, int], fall: tuple[int, int, int]
) -> None:
    """Test that buckets follow local hours across both DST changes."""
    tz = ZoneInfo(zone)
    profile = ActivityProfile(tz=tz)
    for day in (spring, fall):
        weekday = date(*day).weekday()  # both are Sundays
        assert weekday == 6
        assert profile.bucket(local(zone, *day, 0, 30)) == 6 * 24
        assert profile.bucket(local(zone, *day, 8, 30)) == 6 * 24 + 8
        assert profile.bucket(local(zone, *day, 23, 59)) == BUCKETS - 1
        # the day before: 08:30 local is hour 8 of Saturday whatever the UTC offset
        before = date(*day) - timedelta(days=1)
        assert (
            profile.bucket(local(zone, before.year, before.month, before.day, 8, 30))
            == 5 * 24 + 8
        )
    # winter and summer 08:30 are different UTC hours but the same bucket
    winter, summer = local(zone, 2026, 1, 5, 8, 30), local(zone, 2026, 7, 6, 8, 30)
    assert (winter - summer) % HOUR == 0 and (winter % DAY) != (summer % DAY)
    assert profile.bucket(winter) == profile.bucket(summer) == 8


@pytest.mark.parametrize(
    ("zone", "sunday", "hours"),
    [
        ("Europe/Berlin", (2026, 3, 29), 23),
        ("Europe/Berlin", (2026, 10, 25), 25),
        ("America/New_York", (2026, 3, 8), 23),
        ("America/New_York", (2026, 11, 1), 25),
    ],
)
def test_a_23_or_25_hour_day_neither_crashes_nor_double_counts(
    zone: str, sunday: tuple[int, int, int], hours: int
) -> None:
    """Test that a DST change day neither crashes nor counts an hour twice.

    Three weeks of samples every 10 min around a DST change: every bucket holds one
    visit per week; the skipped hour has one fewer, the repeated one is one visit.
    """
    tz = ZoneInfo(zone)
    profile = ActivityProfile(tz=tz)
    day = date(*sunday)
    start = local(zone, *(day - timedelta(days=13)).timetuple()[:3])  # a Monday 00:00
    end = local(zone, *(day + timedelta(days=8)).timetuple()[:3])  # Monday of week four
    midnight = local(zone, *sunday)
    next_midnight = local(zone, *(day + timedelta(days=1)).timetuple()[:3])
    assert next_midnight - midnight == hours * HOUR
    samples: dict[int, int] = {}
    t = start
    while t < end:
        profile.record(t, 1.0 + profile.bucket(t) % 5)
        samples[profile.bucket(t)] = samples.get(profile.bucket(t), 0) + 1
        t += 600.0
    # Sunday 02:00 local is skipped in spring; autumn repeats 02:00 in Berlin, 01:00 in New York
    odd_hour = 6 * 24 + (1 if zone == "America/New_York" and hours == 25 else 2)
    for index in range(BUCKETS):
        bucket = profile.counts(index)
        visits = bucket.weeks + (1 if bucket.visit_n else 0)
        assert visits == (2 if index == odd_hour and hours == 23 else 3), index
    assert samples[odd_hour] == (12 if hours == 23 else 24 if hours == 25 else 18)
    state = json.loads(json.dumps(profile.to_dict()))
    assert ActivityProfile.from_dict(state, tz=tz).to_dict() == state


def test_engine_passes_its_time_zone_to_the_patterns() -> None:
    """Test that the engine's configured time zone reaches the register patterns."""
    spec = RegisterSpec(key="p", unit_id=1, table=Table.INPUT, address=0)
    tz = ZoneInfo("Europe/Berlin")
    engine = PollEngine([spec], None, lambda: 0.0, EngineConfig(tz=tz))  # type: ignore[arg-type]
    state = engine.export_state()
    assert state["registers"]["1.p"]["profile"]["tz"] == "Europe/Berlin"
