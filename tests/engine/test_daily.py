"""Daily profile: onsets anticipated and quiet hours rested from the second day on.

A scripted PV-like device on a virtual clock: flat 0 by night, a step at a fixed
time every morning, then a cloudy day (a level shift every ten minutes on a ramp)
until the evening, when it drops to 0 and stays. The real engine reads it through
the coordinator's loop (wall and monotonic clocks apart).
"""

from __future__ import annotations

import json
import math

import pytest

from adaptive_modbus_engine import daily
from adaptive_modbus_engine.daily import (
    FIRST_SPREAD,
    LEAD_MIN,
    MAX_ONSETS,
    ONSET_INTERVAL,
    DailyProfile,
    isolated_target,
    settled_target,
)
from adaptive_modbus_engine.intervals import (
    DEFAULT_LIMITS,
    IntervalLimits,
    IntervalModel,
)
from adaptive_modbus_engine.patterns import ActivityProfile
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine

from .scripted import ReadOnlyTransport
from .test_scheduler import VirtualClock
from .test_scheduler_reliability import drive_like_the_coordinator

DAY = 86400.0
START = 20_000 * DAY  # a midnight UTC
ONSET = 7 * 3600 + 137.0  # 07:02:17, off the 300 s grid the engine reads on
SUNSET = 17 * 3600.0
MAX = 300.0
MONO_OFFSET = -START + 54_321.0  # the monotonic clock is nowhere near wall time


def sun(t: float) -> float:
    """Return the device's value at wall time ``t``: 0 by night, a cloudy day by day."""
    since = (t - START) % DAY - ONSET
    if since < 0 or (t - START) % DAY >= SUNSET:
        return 0.0
    cloud = 300.0 if (since // 600) % 2 else 0.0  # a level shift every ten minutes
    return 100.0 + 0.05 * since + cloud


def busy(t: float) -> float:
    """Return a value that steps every quarter of an hour all day and night."""
    return 30.0 * ((t - START) // 900) % 3000


class Device(ReadOnlyTransport):
    """One holding register whose value follows ``signal`` of wall time; logs reads."""

    def __init__(self, wall: VirtualClock, signal: str = "sun") -> None:
        """Serve ``signal`` ("sun" or "busy") on the wall clock ``wall``."""
        self.wall = wall
        self.signal = sun if signal == "sun" else busy
        self.connected = True
        self.reads: list[float] = []

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Return the value in every register read, and log the read's wall time."""
        self.reads.append(self.wall())
        return [int(self.signal(self.wall()))] * count


SPEC = RegisterSpec("power", 1, Table.HOLDING, 0, tolerance=20.0)


def make(
    patterns: bool = True, signal: str = "sun", t0: float = START
) -> tuple[PollEngine, Device, VirtualClock, VirtualClock]:
    """Return an engine on the scripted device, its clocks at wall time ``t0``."""
    wall, mono = VirtualClock(t0), VirtualClock(t0 + MONO_OFFSET)
    device = Device(wall, signal)
    config = EngineConfig(min_interval=5, max_interval=MAX, patterns=patterns)
    engine = PollEngine([SPEC], device, wall, config, monotonic=mono)
    return engine, device, wall, mono


async def run_days(
    patterns: bool = True, signal: str = "sun", days: float = 3.0
) -> tuple[PollEngine, list[float]]:
    """Run the device for ``days`` from midnight; return the engine and read times."""
    engine, device, wall, mono = make(patterns, signal)
    await drive_like_the_coordinator(engine, wall, mono, days * DAY)
    return engine, device.reads


def onset_delays(reads: list[float], days: int) -> list[float]:
    """Seconds from each morning's step to the first read at or after it."""
    delays = []
    for day in range(days):
        step = START + day * DAY + ONSET
        delays.append(min(t for t in reads if t >= step) - step)
    return delays


def gap_before(reads: list[float], t: float) -> float:
    """Return the gap between the last two reads before ``t``."""
    before = [r for r in reads if r < t]
    return before[-1] - before[-2]


def back_at_max(reads: list[float], day: int) -> float:
    """Seconds after sunset on ``day`` until reads are ``MAX`` apart for good (that night)."""
    sunset = START + day * DAY + SUNSET
    night = [r for r in reads if sunset <= r < sunset + 6 * 3600]
    last_short = max(
        (b for a, b in zip(night, night[1:], strict=False) if b - a < MAX - 1e-6),
        default=sunset,
    )
    return last_short - sunset


async def test_after_two_days_the_onset_is_anticipated_and_seen_fast() -> None:
    """Test that the learned morning onset is read around within ONSET_INTERVAL."""
    _, on = await run_days(patterns=True)
    _, off = await run_days(patterns=False)
    # day 1 nothing is learned: both poll at the 300 s maximum and see it equally late
    assert onset_delays(on, 3)[0] == onset_delays(off, 3)[0] > 60
    # from day 2 the learned onset is anticipated: short reads before it, seen fast
    for day in (1, 2):
        step = START + day * DAY + ONSET
        assert gap_before(on, step) <= ONSET_INTERVAL
        assert gap_before(off, step) == MAX
    assert max(onset_delays(on, 3)[1:]) <= ONSET_INTERVAL
    assert min(onset_delays(off, 3)[1:]) > 60


async def test_anticipation_costs_few_reads_and_never_exceeds_the_max() -> None:
    """Test that the night before the onset stays cheap and no gap exceeds the max."""
    _, on = await run_days(patterns=True)
    _, off = await run_days(patterns=False)
    for day in (1, 2):
        night = START + day * DAY  # midnight to the morning step
        window = (night + 3600, night + ONSET)
        extra = sum(window[0] <= r < window[1] for r in on) - sum(
            window[0] <= r < window[1] for r in off
        )
        # the window is 2 spreads + 2 minutes wide (a 10 min spread on day 2)
        assert 0 < extra <= (2 * FIRST_SPREAD + 120) / ONSET_INTERVAL + 15
    assert max(b - a for a, b in zip(on, on[1:], strict=False)) <= MAX + 1e-6


async def test_after_sunset_the_register_is_back_at_the_max_fast() -> None:
    """Test that a stable quiet regime rests at the max in minutes, not hours."""
    _, on = await run_days(patterns=True)
    _, off = await run_days(patterns=False)
    # without the daily profile a cloudy day's step memory keeps reads short for hours
    assert back_at_max(off, 0) > 2 * 3600
    # the stale step memory is noticed on the first evening already ...
    assert back_at_max(on, 0) < 45 * 60
    # ... and from the second evening the learned quiet hours rest it sooner still
    assert back_at_max(on, 1) <= back_at_max(on, 0)
    assert back_at_max(on, 1) < 25 * 60


async def test_a_register_without_a_daily_pattern_is_unchanged() -> None:
    """Test that a register moving in every hour is read exactly as without profiles."""
    engine, on = await run_days(patterns=True, signal="busy")
    _, off = await run_days(patterns=False, signal="busy")
    assert on == off
    daily = engine._core.registry.regs[SPEC.uid].profile.daily  # noqa: SLF001
    assert daily.onsets == []
    assert not any(daily.quiet(hour, 20_003) for hour in range(24))


async def test_the_daily_profile_is_persisted_and_acts_after_a_restart() -> None:
    """Test that a restored engine anticipates the onset it learned before."""
    first, device, wall, mono = make()
    await drive_like_the_coordinator(first, wall, mono, 2 * DAY + 3600)
    state = json.loads(json.dumps(first.export_state()))
    stored = state["registers"][SPEC.uid]["profile"]["daily"]
    learned = first._core.registry.regs[SPEC.uid].profile.daily  # noqa: SLF001
    assert learned.onsets
    # restart an hour later on a fresh monotonic clock
    second, device2, wall2, mono2 = make(t0=wall.t + 3600)
    report = second.import_state(state)
    assert report.restored == 1
    restored = second._core.registry.regs[SPEC.uid].profile.daily  # noqa: SLF001
    assert restored.to_dict() == stored
    await drive_like_the_coordinator(second, wall2, mono2, DAY)
    step = START + 2 * DAY + ONSET
    assert gap_before(device2.reads, step) <= ONSET_INTERVAL
    assert min(t for t in device2.reads if t >= step) - step <= ONSET_INTERVAL


def test_settled_target_needs_a_stillness_the_step_memory_did_not_expect() -> None:
    """Test that the step cap is lifted only after enough expected steps did not come."""
    limits = IntervalLimits(5.0, MAX)
    model = IntervalModel(20.0, limits)
    model._steps = 12.0  # noqa: SLF001  # a cloudy hour: a step every 5 minutes
    assert model.target() < 25  # the step cap: 20.8 s
    # 5 minutes still: about one step was expected, nothing proven
    assert settled_target(model, 300.0, limits) == limits.min_interval
    # 42 minutes still: over eight steps were expected (the memory faded meanwhile)
    model._steps = 12.0 * math.exp(-2500.0 / 3600.0)  # noqa: SLF001
    assert settled_target(model, 2500.0, limits) == MAX
    # a register that still drifts keeps its rate target
    model.rate = 0.2
    assert settled_target(model, 2500.0, limits) == pytest.approx(0.6 * 20 / 0.2)
    # no step memory: nothing to lift
    assert settled_target(IntervalModel(20.0, limits), 1e5, limits) == 5.0


def test_a_lone_step_after_hours_still_is_one_step_over_that_stillness() -> None:
    """Test that one step after hours of stillness is not taken for one an hour.

    Right after a step the memory holds one: a step an hour, bounded at 72 s (the
    square-root law, 2 % budget). Seven hours still before it and ten minutes after
    make it one step in 7 h 10 min: the bound at that rate is sqrt(7.17) x that.
    """
    limits = IntervalLimits(5.0, MAX)
    model = IntervalModel(20.0, limits)
    after = 600.0
    model._steps = math.exp(-after / 3600.0)  # noqa: SLF001  # one step, 10 min ago
    cap = model.step_bound()
    assert model.target() == pytest.approx(cap)
    assert cap == pytest.approx(72.0 * math.exp(after / 7200.0), rel=1e-6)
    lone = isolated_target(model, after, 7 * 3600.0, limits)
    assert lone == pytest.approx(72.0 * math.sqrt((7 * 3600.0 + after) / 3600.0))
    assert 185 < lone < 195
    # a register still drifting keeps its rate target when that is shorter
    model.rate = 0.2
    assert isolated_target(model, after, 7 * 3600.0, limits) == pytest.approx(60.0)
    model.rate = 0.0
    # 18 hours still around it: the bound reaches the maximum
    assert isolated_target(model, after, 18 * 3600.0, limits) == MAX
    # not isolated: still only half an hour before it, or two steps in the memory
    assert isolated_target(model, after, 1800.0, limits) == limits.min_interval
    model._steps = 2.0 * math.exp(-after / 3600.0)  # noqa: SLF001
    assert isolated_target(model, after, 7 * 3600.0, limits) == limits.min_interval
    # no step memory, or a non-numeric register: nothing to change
    plain = IntervalModel(20.0, limits)
    assert isolated_target(plain, after, 7 * 3600.0, limits) == limits.min_interval


def test_a_counter_reset_after_a_still_evening_rests_sooner_on_the_first_night() -> (
    None
):
    """Test the daily profile's interval after a lone step on its first day.

    Still from 17:00 until a daily counter resets at midnight: ten minutes after
    the reset the interval may grow to the lone step's bound, not the memory's.
    """
    limits = IntervalLimits(5.0, MAX)
    profile = DailyProfile()
    model = IntervalModel(20.0, limits)
    t = START + 17 * 3600.0
    profile.record(t - 300.0, 0.0)
    profile.record(t, 5.0)  # the day's last move at 17:00
    for k in range(1, 7 * 12):  # still every 5 minutes until midnight
        profile.record(t + 300.0 * k, 0.0)
    reset = START + DAY
    profile.record(reset, 50.0)  # the counter's reset: a move after 7 h still
    for k in range(1, 3):
        profile.record(reset + 300.0 * k, 0.0)
    now = reset + 600.0
    model._steps = math.exp(-600.0 / 3600.0)  # noqa: SLF001  # the reset, settled
    got = profile.interval(now, model.target(), limits, model=model)
    assert got == pytest.approx(isolated_target(model, 600.0, 7 * 3600.0, limits))
    assert got > 2 * model.target()
    # the same reset after a busy evening (a move every 20 minutes): unchanged
    busy_evening = DailyProfile()
    busy_evening.record(t - 300.0, 0.0)
    for k in range(7 * 12):
        busy_evening.record(t + 300.0 * k, 5.0 if k % 4 == 0 else 0.0)
    busy_evening.record(reset, 50.0)
    for k in range(1, 3):
        busy_evening.record(reset + 300.0 * k, 0.0)
    target = model.target()
    assert busy_evening.interval(now, target, limits, model=model) == target


def learned_profile() -> DailyProfile:
    """Return a daily profile with three onsets and every hour visited on two days."""
    profile = DailyProfile()
    t = START
    for k in range(2 * 24 * 12):  # every 5 minutes for two days, a move every hour
        profile.record(t + 300 * k, 1.0 if k % 12 == 0 else 0.0)
    for hour in (6, 12, 18):
        profile.learn_onset(hour * 3600.0 + 77, 150.0, 20_001)
        profile.learn_onset(hour * 3600.0 + 400, 10.0, 20_002)
    return profile


def test_the_daily_state_round_trips_and_stays_small() -> None:
    """Test that the state restores equal and a full one is a few hundred bytes."""
    profile = learned_profile()
    assert len(profile.onsets) == MAX_ONSETS
    state = profile.to_dict()
    assert DailyProfile.from_dict(json.loads(json.dumps(state))).to_dict() == state
    assert len(json.dumps(state, separators=(",", ":"))) <= 260


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {"version": 99, "day": 20_002, "hours": "AAAA"},
        {"version": 1, "day": -5, "hours": "AAAA"},
        {"version": 1, "day": 20_002, "hours": "not base64!"},
        {"version": 1, "day": 20_002, "hours": "AAAA", "onsets": "1/2"},
        {"version": 1, "day": 20_002, "onsets": "999999/1/1/0/0/-1"},
    ],
)
def test_corrupt_daily_state_starts_empty(bad: object) -> None:
    """Test that corrupt daily state never raises and learns nothing from it."""
    profile = DailyProfile.from_dict(bad)
    assert profile.onsets == []
    assert not any(profile.quiet(hour, 20_003) for hour in range(24))


def test_weekly_state_without_a_daily_profile_still_loads() -> None:
    """Test that a stored profile from before the daily one restores its weeks."""
    weekly = ActivityProfile()
    for hour in range(2 * 168 + 1):
        weekly.record(START + hour * 3600.0, float(hour % 24))
    state = weekly.to_dict()
    state.pop("daily", None)  # as the engine stored it before
    restored = ActivityProfile.from_dict(state)
    assert restored.to_dict()["buckets"] == state["buckets"]
    assert restored.daily.onsets == []
    # a corrupt daily part costs only the daily part
    state["daily"] = {"version": 1, "day": "x"}
    again = ActivityProfile.from_dict(state)
    assert again.to_dict()["buckets"] == state["buckets"]


def test_the_max_interval_is_a_promise_and_a_busy_week_stops_the_rest() -> None:
    """Test that the daily profile never goes beyond the max, nor rests a busy hour."""
    profile = DailyProfile()
    t = START
    for k in range(2 * 24 * 12):  # two still days
        profile.record(t + 300 * k, 0.0)
    now = START + 2 * DAY + 5 * 3600
    limits = IntervalLimits(5.0, 120.0)
    assert profile.quiet_after(5, 20_002, 0)
    assert profile.interval(now, 20.0, limits) == 120.0
    assert profile.interval(now, 20.0, limits, rest=False) == 20.0
    assert profile.interval(now, 20.0, DEFAULT_LIMITS) == DEFAULT_LIMITS.max_interval


def still_then_onset(profile: DailyProfile, day: int, onset: float) -> None:
    """Feed a day still until ``onset`` (local seconds), then three moves 20 s apart."""
    t0 = START + day * DAY
    for k in range(int(onset // 300)):
        profile.record(t0 + 300 * k, 0.0)
    for k in range(3):
        profile.record(t0 + onset + 20 * k, 1.0)  # 20 tolerances in 20 s: moves


def test_an_onset_missed_two_days_in_a_row_is_forgotten() -> None:
    """Test that a one-off start stops being anticipated after two days without it."""
    profile = DailyProfile()
    still_then_onset(profile, 0, 7 * 3600.0)
    # between the still read 300 s before and the moving one: half way
    assert [round(o.tod) for o in profile.onsets] == [7 * 3600 - 150]
    for day in (1, 2):  # two still days: the window passes without a move
        for k in range(288):
            profile.record(START + day * DAY + 300 * k + 1, 0.0)
        if day == 1:
            assert profile.onsets and profile.onsets[0].missed == 1
    assert profile.onsets == []


def test_onsets_are_learned_in_local_time() -> None:
    """Test that a start at 07:00 Berlin time is learned as 07:00 in that zone."""
    zoneinfo = pytest.importorskip("zoneinfo")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    profile = DailyProfile(berlin)
    # 60 days after START is a winter day: 07:00 in Berlin is 06:00 UTC
    still_then_onset(profile, 60, 6 * 3600.0)
    assert [round(o.tod) for o in profile.onsets] == [7 * 3600 - 150]
    restored = DailyProfile.from_dict(profile.to_dict(), tz=berlin)
    assert restored.to_dict() == profile.to_dict()


def precise_onset(tod: float = ONSET) -> DailyProfile:
    """Return a profile with one onset at ``tod`` seen on two days to within 5 s."""
    profile = DailyProfile()
    profile.learn_onset(tod, 5.0, 20_001)
    profile.learn_onset(tod, 5.0, 20_002)
    return profile


def read_times(profile: DailyProfile, start: float, end: float) -> list[float]:
    """Read times from ``start`` to ``end`` when every read is due one interval later."""
    limits = IntervalLimits(5.0, MAX)
    times, t = [], start
    while t < end:
        times.append(t)
        t += profile.interval(t, MAX, limits)
    return times


def test_before_the_window_one_read_lands_on_its_start() -> None:
    """Test that the anticipation starts no earlier than the onset's learned lead.

    Before the window (2 spreads + LEAD_MIN before the onset) a register resting at
    the maximum is read at the maximum; only the read that would overshoot the
    window's start is moved onto it. (Reads used to close in geometrically from
    20 minutes before: a quarter of the time left at every read.)
    """
    profile = precise_onset()
    onset = START + 2 * DAY + ONSET
    spread = profile.onsets[0].spread
    window = onset - 2 * spread - LEAD_MIN
    times = read_times(profile, onset - 3600.0, onset)
    before = [t for t in times if t < window]
    gaps = [b - a for a, b in zip(before, before[1:], strict=False)]
    assert gaps and all(gap == MAX for gap in gaps)
    assert window in times  # the next read lands on the window's start
    # far from the window nothing changes; just before it, the read is due at its start
    limits = IntervalLimits(5.0, MAX)
    assert profile.interval(window - 1000.0, MAX, limits) == MAX
    assert profile.interval(window - 200.0, MAX, limits) == pytest.approx(200.0)


def test_inside_the_window_reads_follow_the_onsets_likelihood() -> None:
    """Test the 1/sqrt(density) spacing: ONSET_INTERVAL at the mean, e x it at the edges.

    The onset window costs fewer reads than ONSET_INTERVAL all through it, and the
    reads are densest where the onset is most likely.
    """
    profile = precise_onset()
    onset = START + 2 * DAY + ONSET
    spread = profile.onsets[0].spread
    window = onset - 2 * spread - LEAD_MIN
    limits = IntervalLimits(5.0, MAX)
    assert profile.interval(onset, MAX, limits) == pytest.approx(ONSET_INTERVAL)
    assert profile.interval(window, MAX, limits) == pytest.approx(
        math.e * ONSET_INTERVAL
    )
    caps = [profile.interval(t, MAX, limits) for t in (window, window + 60, onset - 10)]
    assert caps == sorted(caps, reverse=True)
    inside = [t for t in read_times(profile, window, onset) if t >= window]
    assert max(b - a for a, b in zip(inside, inside[1:], strict=False)) <= (
        math.e * ONSET_INTERVAL
    )
    flat = (onset - window) / ONSET_INTERVAL  # reads at ONSET_INTERVAL all through
    assert len(inside) < 0.8 * flat


async def test_a_flat_night_is_read_at_the_max_until_the_learned_window() -> None:
    """Test that the second night costs one read per max interval until the onset's lead.

    From 45 minutes after sunset (the stale step memory has been noticed) to one
    ``MAX`` before the window ahead of the onset learned on the first morning, every
    read is ``MAX`` after the one before; the last ``MAX`` before the window holds
    at most three reads (the read due after the window's start is moved onto the
    interval ladder's rungs before it).
    """
    engine, device, wall, mono = make()
    await drive_like_the_coordinator(engine, wall, mono, DAY)  # to midnight
    profile = engine._core.registry.regs[SPEC.uid].profile.daily  # noqa: SLF001
    (onset,) = profile.onsets
    spread = max(onset.spread, FIRST_SPREAD)  # seen on one day only
    window = START + DAY + onset.tod - 2 * spread - LEAD_MIN
    await drive_like_the_coordinator(engine, wall, mono, DAY / 2)
    night = [t for t in device.reads if START + SUNSET + 2700 <= t < window - MAX]
    gaps = [b - a for a, b in zip(night, night[1:], strict=False)]
    assert len(gaps) > 100
    assert all(gap == pytest.approx(MAX) for gap in gaps)
    assert 1 <= sum(window - MAX <= t < window for t in device.reads) <= 3


def test_a_slow_drift_after_stillness_is_no_onset() -> None:
    """Test that only a sudden move after an hour's stillness can start an onset.

    A register still for hours that then drifts by a third of its tolerance per
    read (a cooling heatsink, or one flickering by a digit while other registers'
    windows read it every 10 s) adds up to moves, read after read, but starts no
    regime: nothing is learned. A step after the same stillness is learned.
    """
    drift, step = DailyProfile(), DailyProfile()
    reads = [START + 300.0 * k for k in range(37)]  # three still hours
    reads += [reads[-1] + 10.0 * k for k in range(1, 121)]  # then every 10 s
    for t in reads:
        moving = t > START + 3 * 3600 + 60  # from a minute into the fast reads
        drift.record(t, 0.033 if moving else 0.0)  # a move every third read
        step.record(t, 2.0 if moving and t < START + 3 * 3600 + 100 else 0.0)
    assert drift.onsets == []
    # the step: half way between the last still read and the first moving one
    assert [round(o.tod) for o in step.onsets] == [3 * 3600 + 65]


def test_the_model_measures_the_step_free_time_before_each_step() -> None:
    """Test ``IntervalModel.step_gap``: the time without a settled step before the newest.

    Before any step it counts from the first read; between steps from the jump of
    the one before; a restored model counts from the last stored read (a lower bound:
    the steps before it are not kept).
    """
    limits = IntervalLimits(5.0, MAX)
    model = IntervalModel(20.0, limits)

    def read(t: float, value: float) -> None:
        model.observe(t, value, True)

    for k in range(100):  # flat at 1000, every 300 s, from START
        read(START + 300.0 * k, 1000.0)
    assert model.step_gap == 0.0
    jump = START + 30_000.0
    read(jump, 1100.0)  # a jump of five tolerances, then flat: a step
    for k in range(1, 6):
        read(jump + 20.0 * k, 1100.0)
    assert model.step_rate > 0
    assert model.step_gap == pytest.approx(30_000.0)
    second = jump + 7200.0
    for t in range(int(jump + 400), int(second), 300):
        read(float(t), 1100.0)
    read(second, 1000.0)
    for k in range(1, 6):
        read(second + 20.0 * k, 1000.0)
    assert model.step_gap == pytest.approx(7200.0)
    restored = IntervalModel.from_dict(model.to_dict())
    assert restored.step_gap == 0.0
    last = second + 100.0
    third = last + 5000.0
    restored.observe(third, 1100.0, True)
    for k in range(1, 6):
        restored.observe(third + 20.0 * k, 1100.0, True)
    assert restored.step_gap == pytest.approx(5000.0)


def test_a_lone_step_after_a_day_without_steps_is_one_step_over_that_day() -> None:
    """Test that a register which moves but has not stepped for a day takes a lone step.

    Not still before it (moves every 40 minutes), so the stillness says nothing;
    a day and a half without a step before it does: the bound at one step in that
    time. A step-free time under a day leaves the memory's bound.
    """
    limits = IntervalLimits(5.0, MAX)
    model = IntervalModel(20.0, limits)
    after = 600.0
    model._steps = math.exp(-after / 3600.0)  # noqa: SLF001  # one step, 10 min ago
    model.step_gap = 1.5 * DAY
    lone = isolated_target(model, after, 1800.0, limits)
    assert lone == MAX  # 72 s x sqrt(36 h): beyond the maximum
    model.step_gap = 3 * 3600.0  # three hours: a cloud step comes back by day
    assert isolated_target(model, after, 1800.0, limits) == limits.min_interval
    # seven hours still still count, whatever the step-free time
    assert isolated_target(model, after, 7 * 3600.0, limits) == pytest.approx(
        72.0 * math.sqrt((7 * 3600.0 + after) / 3600.0)
    )
    model.step_gap = 1.5 * DAY
    model._steps = 2.0 * math.exp(-after / 3600.0)  # noqa: SLF001  # two steps
    assert isolated_target(model, after, 1800.0, limits) == limits.min_interval


WALK_STEP = START + DAY + 20 * 3600.0  # 20:00 on the second day


def drifting(t: float) -> float:
    """Return a value that drifts all the time (30 up, 30 down every 2 h) and steps once.

    A path of one tolerance (20) every 40 minutes: a move in every hour, never an
    hour still; 2.5 per 300 s read, no jump. At :data:`WALK_STEP` it shifts by 45
    and goes on drifting: the only step in a day and a half.
    """
    hours = ((t - START) % 7200.0) / 3600.0
    triangle = 30.0 * (hours if hours < 1.0 else 2.0 - hours)
    return 1000.0 + triangle + (45.0 if t >= WALK_STEP else 0.0)


async def reads_after_the_walks_step(step_free: float) -> tuple[list[float], float]:
    """Return the read times from :data:`WALK_STEP` on for 3 h, and the step's delay."""
    engine, device, wall, mono = make()
    device.signal = drifting
    saved = daily.STEP_FREE
    daily.STEP_FREE = step_free
    try:
        await drive_like_the_coordinator(
            engine, wall, mono, WALK_STEP - START + 3 * 3600
        )
    finally:
        daily.STEP_FREE = saved
    after = [t for t in device.reads if WALK_STEP <= t < WALK_STEP + 3 * 3600]
    return after, after[0] - WALK_STEP


async def test_a_drifting_registers_rare_step_does_not_cost_hours_of_fast_reads() -> (
    None
):
    """Test an engine on a register that drifts all day and steps once in 44 hours.

    Before the lone-step rule took the step-free time, the step memory made the one
    step a step an hour: reads every 40 s, then 80 s, fading over three hours. Now,
    ten minutes after each move (the drift goes on: one every 40 minutes) it rests
    at the maximum until the next: over an hour of the three read ``MAX`` apart
    (before: minutes), fewer reads, the step seen just as soon, and never a read
    more than ``MAX`` late.
    """
    reads, delay = await reads_after_the_walks_step(DAY)
    before, delay_before = await reads_after_the_walks_step(math.inf)

    def rested(times: list[float]) -> float:
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) <= MAX + 1e-6
        return sum(gap for gap in gaps if gap > MAX - 1e-6)

    assert len(before) > 100  # the step memory's bound: 72 s, 40 s on the ladder
    assert rested(before) < 3600.0 <= rested(reads)
    assert len(reads) < 0.6 * len(before)
    assert delay == delay_before <= MAX
