"""Memory per register: what a fresh and a learned register cost, and that sharing is safe.

A fresh register's time-of-week and daily profiles read shared, read-only empty
per-hour arrays (168 buckets, 24 hours) and get their own, typed arrays on the first
sample. The bounds below sit far from both sides: a fresh engine held about 11,400
bytes per register when every profile allocated lists of 168 at construction, about
1,800 since; a profile with two weeks learned about 24,700 bytes as lists of float
and int objects, about 6,500 as typed arrays.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import tracemalloc

from adaptive_modbus_engine.daily import DailyProfile
from adaptive_modbus_engine.patterns import BUCKETS, HOUR, ActivityProfile
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from benchmarks.overhead import CheapDevice, TimedTransport, make_specs

MONDAY = 1_700_438_400.0  # 2023-11-20 00:00 UTC, a Monday
DAY = 24 * HOUR


def traced_bytes(build: object) -> int:
    """Bytes still allocated after calling ``build`` (it keeps what it builds alive)."""
    assert callable(build)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert kept is not None
    return after - before


def test_a_fresh_profile_holds_no_per_hour_arrays() -> None:
    """1,000 fresh profiles (weekly + daily) take well under 2 KB each (were ~10 KB)."""
    count = 1000
    size = traced_bytes(lambda: [ActivityProfile() for _ in range(count)])
    # 168 buckets x 6 lists of 8-byte pointers alone are 8,064 bytes a profile
    assert size / count < 2000, size / count


def test_a_fresh_engine_costs_under_4_kb_per_register() -> None:
    """Building an engine and running its first cycle: under 4,000 B per register.

    The overhead benchmark's measure (its registers and device); it was about
    11,400 B per register before the profiles shared their empty arrays.
    """
    count = 500
    specs = make_specs(count)
    clock = VirtualClock(1_795_000_000.0)
    transport = TimedTransport(CheapDevice(clock))

    def build() -> PollEngine:
        engine = PollEngine(specs, transport, clock.now, EngineConfig())
        asyncio.run(engine.poll_due(clock.now()))
        assert transport.requests > 0
        return engine

    per_register = traced_bytes(build) / count
    assert per_register < 4000, per_register


def busy_noon(t: float) -> float:
    """Activity 3 around noon (UTC), 0 otherwise."""
    return 3.0 if 11 <= (t % DAY) // HOUR < 13 else 0.0


def test_learning_in_one_profile_leaves_fresh_ones_empty() -> None:
    """Samples go into the profile's own arrays, never the shared empty ones."""
    fresh, learner, copied = ActivityProfile(), ActivityProfile(), ActivityProfile()
    twin = copy.deepcopy(copied)
    for k in range(3 * 7 * 24 * 4):  # three weeks, every 15 minutes
        t = MONDAY + k * 900.0
        learner.record(t, busy_noon(t))
        twin.record(t, busy_noon(t))
    noon = 12
    assert learner.learned(noon)
    assert learner.counts(noon).weeks == 2
    assert twin.counts(noon) == learner.counts(noon)
    for profile in (fresh, copied, ActivityProfile()):
        assert profile.mean_activity() is None
        assert not any(profile.learned(i) for i in range(BUCKETS))
        assert all(profile.counts(i).visit_week == -1 for i in range(BUCKETS))
        assert all(profile.counts(i).visit_n == 0 for i in range(BUCKETS))
        assert profile.factor(MONDAY + noon * HOUR) == 1.0
        assert profile.daily.to_dict() == DailyProfile().to_dict()
    assert learner.daily.to_dict() != DailyProfile().to_dict()


def test_a_restored_empty_profile_learns_like_a_fresh_one() -> None:
    """An empty state restores onto the shared arrays and learns the same."""
    restored = ActivityProfile.from_dict(ActivityProfile().to_dict())
    fresh = ActivityProfile()
    daily = DailyProfile.from_dict(DailyProfile().to_dict())
    for k in range(3 * 7 * 24 * 4):
        t = MONDAY + k * 900.0
        restored.record(t, busy_noon(t))
        fresh.record(t, busy_noon(t))
        daily.record(t, busy_noon(t))
    assert restored.to_dict() == fresh.to_dict()
    assert daily.to_dict() == fresh.daily.to_dict()
    assert [restored.counts(i) for i in range(BUCKETS)] == [
        fresh.counts(i) for i in range(BUCKETS)
    ]


def test_a_learned_profile_takes_a_third_of_what_lists_took() -> None:
    """Two weeks of hourly samples: under 8 KB a profile (were ~21 KB as lists).

    Every bucket holds its mean, week counts and visit in typed arrays (5 x 168
    numbers, 4.7 KB) instead of lists of float and int objects, and the daily
    profile its hours as bytes.
    """
    count = 200

    def build() -> list[ActivityProfile]:
        profiles = [ActivityProfile() for _ in range(count)]
        for profile in profiles:
            for hour in range(2 * 168 + 1):
                t = MONDAY + hour * HOUR
                profile.record(t, 1.0 + (hour * 7919 % 97) / 10.0)
        return profiles

    profiles = build()
    assert all(profile.learned(i) for profile in profiles for i in range(BUCKETS))
    size = traced_bytes(build) / count
    assert size < 8000, size


def test_times_and_counts_beyond_32_bits_are_ignored_not_raised() -> None:
    """A week or day number the arrays cannot hold is a sample learned nowhere."""
    profile = ActivityProfile()
    profile.record(1e300, 1.0)  # a fixed zone maps it arithmetically: a huge week
    assert profile.mean_activity() is None
    profile.record(MONDAY, 2.0)
    assert profile.mean_activity() == 2.0
    corrupt = {"version": 1, "buckets": {"3": [1.0, 2**40, 2800, 0.0, 0.0]}}
    assert ActivityProfile.from_dict(corrupt).counts(3).weeks == 0
    daily = DailyProfile.from_dict(
        {**DailyProfile().to_dict(), "day": 2**40, "hours": learned_daily_hours()}
    )
    assert daily.to_dict() == DailyProfile().to_dict()


def learned_daily_hours() -> str:
    """Return the packed hours of a daily profile that saw two days."""
    daily = DailyProfile()
    for k in range(2 * 24 * 4):
        t = MONDAY + k * 900.0
        daily.record(t, busy_noon(t))
    hours = daily.to_dict()["hours"]
    assert isinstance(hours, str)
    return hours
