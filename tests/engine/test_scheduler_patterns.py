"""Time-of-week patterns change the engine's intervals (patterns on vs off, same history)."""

from __future__ import annotations

from adaptive_modbus_engine.patterns import HOUR, WEEK
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine

from .scripted import ReadOnlyTransport
from .test_scheduler import VirtualClock
from .test_scheduler_reliability import drive_like_the_coordinator

DAY = 24 * HOUR
THURSDAY = 2 * WEEK  # unix time 0 was a Thursday 00:00 UTC
BUSY = [THURSDAY + k * WEEK + 6 * DAY + 12 * HOUR for k in range(3)]  # Wednesdays 12:00
RAMP = 0.5  # tolerances per second while busy
MONO_OFFSET = -THURSDAY + 12_345.0  # the monotonic clock is nowhere near wall time


class WeeklyMeter(ReadOnlyTransport):
    """A meter that is busy for an hour every week.

    One holding register that ramps for an hour every Wednesday at 12:00 (wall
    time) and stays put otherwise.
    """

    def __init__(self, wall: VirtualClock) -> None:
        """Read the meter's wall time from ``wall``."""
        self.wall = wall
        self.connected = True
        self.requests = 0

    def value(self) -> int:
        """Return the energy counted so far (it only grows in busy hours)."""
        t = self.wall()
        return int(sum(min(max(t - start, 0.0), HOUR) * RAMP for start in BUSY))

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Return the meter value in every register read."""
        self.requests += 1
        return [self.value()] * count


SPEC = RegisterSpec("energy", 1, Table.HOLDING, 0, tolerance=1.0)


async def run_two_weeks_and_a_bit(
    patterns: bool,
) -> tuple[PollEngine, VirtualClock, list[float]]:
    """Run the weekly meter for two weeks and a bit; return what the engine saw."""
    wall = VirtualClock(THURSDAY)
    mono = VirtualClock(THURSDAY + MONO_OFFSET)
    meter = WeeklyMeter(wall)
    config = EngineConfig(min_interval=5, max_interval=300, patterns=patterns)
    engine = PollEngine([SPEC], meter, wall, config, monotonic=mono)
    await drive_like_the_coordinator(engine, wall, mono, BUSY[2] - 600 - THURSDAY)
    assert wall.t == BUSY[2] - 600
    factor = engine.snapshot().registers[SPEC.uid].pattern_factor
    interval = engine.snapshot().registers[SPEC.uid].effective_interval
    while (seen := engine.snapshot().registers[SPEC.uid].last_change or 0) < BUSY[2]:
        await drive_like_the_coordinator(engine, wall, mono, 1)
    return engine, wall, [factor, interval, seen - BUSY[2]]


async def test_time_of_week_patterns_shorten_the_interval_ahead_of_a_busy_hour() -> (
    None
):
    """Test that time-of-week patterns shorten the interval ahead of a busy hour."""
    _, _, (factor_on, interval_on, seen_on) = await run_two_weeks_and_a_bit(
        patterns=True
    )
    _, _, (factor_off, interval_off, seen_off) = await run_two_weeks_and_a_bit(
        patterns=False
    )
    # two Wednesdays of history: ten minutes before the third busy hour the pattern
    # (bucketed by wall time, not by the monotonic clock) cuts the quiet interval
    assert factor_off == 1.0
    assert interval_off == 300.0
    assert factor_on == 0.25
    assert interval_on <= 0.25 * 300
    # ... so the ramp is seen sooner after it starts
    assert seen_on <= interval_on
    assert seen_on < seen_off


async def test_one_busy_week_is_not_yet_a_pattern_and_quiet_hours_stay_at_the_max() -> (
    None
):
    """Test that one busy week is no pattern yet and quiet hours stay at the maximum."""
    wall = VirtualClock(THURSDAY)
    mono = VirtualClock(THURSDAY + MONO_OFFSET)
    config = EngineConfig(min_interval=5, max_interval=300, patterns=True)
    engine = PollEngine([SPEC], WeeklyMeter(wall), wall, config, monotonic=mono)
    await drive_like_the_coordinator(engine, wall, mono, BUSY[1] - 600 - THURSDAY)
    # one busy hour seen: not yet a pattern ahead of it; the hour before it was quiet
    # last week too, so the factor lengthens (x2), but never beyond the max interval
    register = engine.snapshot().registers[SPEC.uid]
    assert register.pattern_factor == 2.0
    assert register.effective_interval == 300.0
