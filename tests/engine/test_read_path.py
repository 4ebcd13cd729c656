"""The read path's shortcuts give the general path's results to the bit.

A read that returns the value of the read before takes a shortcut through the
interval model (:meth:`IntervalModel._observe_unchanged`). Random read streams
(unchanged runs, noise, jumps, level shifts, reads off the grid, missing values,
bound, tolerance and noise-margin changes) go through the model as the engine calls
it and through a twin that always takes the general path; after every read the
whole state of both (every attribute, floats compared by their bits, the decision
with its text) must be the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone, tzinfo
import math
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adaptive_modbus_engine.bus import CycleState
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.intervals import (
    IntervalDecision,
    IntervalLimits,
    IntervalModel,
    _PendingShift,
)
from adaptive_modbus_engine.observe import Observer
from adaptive_modbus_engine.patterns import ActivityProfile
from adaptive_modbus_engine.planner import BlockRead
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.registry import RegisterState, Registry
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.schedule import EngineClock, Schedule
from adaptive_modbus_engine.scheduler import PollEngine

from .scripted import ReadOnlyTransport
from .test_scheduler import make_engine, run_until


def bits(value: object) -> object:
    """``value`` with every float as its hex text (``0.0`` and ``-0.0`` differ)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [bits(x) for x in value]
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    if isinstance(value, IntervalDecision):
        fields = (value.at, value.interval, value.previous, value.reason, value.detail)
        return ["decision", *(bits(x) for x in fields)]
    if isinstance(value, _PendingShift):
        return ["shift", *bits(value.to_list())]
    return value


def slots(obj: object) -> dict[str, Any]:
    """Every attribute an object keeps in its slots."""
    return {name: getattr(obj, name) for name in type(obj).__slots__}  # type: ignore[attr-defined]


def model_state(model: IntervalModel) -> dict[str, Any]:
    """Every attribute of ``model``, floats as bits."""
    return {name: bits(value) for name, value in slots(model).items()}


def general(model: IntervalModel, t: float, value: float | None) -> object:
    """Observe as before the shortcut: every number on the general path."""
    if model._last_t is not None and not t > model._last_t:  # noqa: SLF001
        return None
    if value is None or not math.isfinite(value):
        return model.observe(t, value, False)
    return model._observe_numeric(t, float(value))  # noqa: SLF001


def stream(rng: random.Random, reads: int) -> list[tuple[float, float | None, str]]:
    """Return a random read stream: (dt, value, what happens before the read)."""
    out: list[tuple[float, float | None, str]] = []
    value: float | None = 1000.0
    level = 1000.0
    for _ in range(reads):
        dt = rng.choice((5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0))
        if rng.random() < 0.3:  # off the grid: a rider, a retry
            dt *= rng.uniform(0.05, 1.0)
        roll = rng.random()
        if roll < 0.55:
            pass  # unchanged: the shortcut
        elif roll < 0.7:
            level += rng.gauss(0.0, rng.choice((0.2, 2.0, 8.0)))
        elif roll < 0.78:
            level += rng.choice((-1.0, 1.0)) * rng.uniform(10.0, 200.0)  # a step
        elif roll < 0.8:
            level = rng.choice((0.0, -0.0, 1000.0))  # signed zeros
        elif roll < 0.81:
            value = None  # no value (NaN on the wire)
        value = None if value is None and rng.random() < 0.5 else level
        event = ""
        event_roll = rng.random()
        if event_roll < 0.01:
            event = "bounds"
        elif event_roll < 0.015:
            event = "tolerance"
        elif event_roll < 0.02:
            event = "margin"
        elif event_roll < 0.022:
            event = "forget"
        out.append((dt, value, event))
    return out


def apply_event(model: IntervalModel, event: str, rng: random.Random) -> None:
    """Change what the engine's parameter API changes between reads."""
    if event == "bounds":
        low = rng.choice((1.0, 5.0, 10.0))
        model.limits = IntervalLimits(low, rng.choice((low, 60.0, 300.0, 900.0)))
    elif event == "tolerance":
        model.tolerance = rng.choice((0.0, 0.5, 2.0, 50.0))
    elif event == "margin":
        model.noise_margin = rng.choice((0.0, 1.0, 2.0, 20.0))
    elif event == "forget":
        model.forget_baseline()


def run_twins(
    seed: int, reads: int, make: Callable[[], IntervalModel]
) -> tuple[int, int]:
    """Feed one stream to a model and its general-path twin; compare after each read.

    Returns (reads compared, decisions made).
    """
    rng = random.Random(seed)
    events = random.Random(seed + 1)
    fast, slow = make(), make()
    t = 1_700_000_000.0
    decisions = 0
    for index, (dt, value, event) in enumerate(stream(rng, reads)):
        t += dt
        if event:
            state = events.getstate()
            apply_event(fast, event, events)
            events.setstate(state)
            apply_event(slow, event, events)
        changed = value is not None
        got = fast.observe(t, value, changed)
        want = general(slow, t, value)
        assert bits(got) == bits(want), (seed, index)
        assert model_state(fast) == model_state(slow), (seed, index)
        decisions += got is not None
        if index == reads // 2:  # a restored model takes the shortcut too
            fast = IntervalModel.from_dict(fast.to_dict())
            slow = IntervalModel.from_dict(slow.to_dict())
    return reads, decisions


@pytest.mark.parametrize("seed", range(8))
def test_the_unchanged_read_shortcut_gives_the_general_path_results(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8,000 random reads per seed, half of them unchanged, equal to the bit."""
    taken = 0
    shortcut = IntervalModel._observe_unchanged  # noqa: SLF001

    def counted(self: IntervalModel, t: float, value: float, last_t: float) -> Any:
        nonlocal taken
        taken += 1
        return shortcut(self, t, value, last_t)

    monkeypatch.setattr(IntervalModel, "_observe_unchanged", counted)
    tolerance = (0.0, 0.5, 2.0, 5.0)[seed % 4]
    reads, decisions = run_twins(
        seed,
        8_000,
        lambda: IntervalModel(tolerance, IntervalLimits(5.0, 300.0), unit="W"),
    )
    assert taken > reads // 3  # the shortcut was taken, often
    assert decisions > reads // 10


# -- the time-of-week record and the reschedule ----------------------------------


def profile_state(profile: ActivityProfile) -> object:
    """Return what a profile learned (its caches left out), floats as bits.

    The held hour's numbers are written back first, as every reader of the
    profile's lists does.
    """
    profile._sync()  # noqa: SLF001
    kept = {
        name: value
        for name, value in slots(profile).items()
        if not name.startswith(("_hour_", "_held_", "_slot_cache")) and name != "daily"
    }
    daily = {
        name: value
        for name, value in slots(profile.daily).items()
        if name not in ("_slot", "onsets")
    }
    onsets = [asdict(onset) for onset in profile.daily.onsets]
    return bits({**kept, "daily": daily, "onsets": onsets})


class LookupEveryRecord(ActivityProfile):
    """A profile that holds no hour: every record looks its bucket up."""

    def _hold_hour(self, t: float, index: int, week: int) -> None:
        """Hold nothing."""


@pytest.mark.parametrize(
    "tz", [None, ZoneInfo("Europe/Berlin"), timezone(timedelta(hours=5, minutes=45))]
)
def test_the_held_hour_gives_the_records_of_a_lookup_every_read(
    tz: tzinfo | None,
) -> None:
    """Records within the last record's hour skip the lookup: the same profile.

    Reads seconds to hours apart across daylight saving changes, the clock set back
    now and then (a record of an older week is ignored, a fold replaces the visit).
    """
    rng = random.Random(3)
    fast, slow = ActivityProfile(tz=tz), LookupEveryRecord(tz=tz)
    readers: list[Callable[[ActivityProfile, int, float], object]] = [
        lambda p, i, t: p.learned(i),
        lambda p, i, t: p.activity(i),
        lambda p, i, t: p.counts(i),
        lambda p, i, t: p.factor(t),
        lambda p, i, t: p.mean_activity(),
        lambda p, i, t: p.to_dict(),
    ]
    t = datetime(2024, 3, 30, 20, tzinfo=UTC).timestamp()  # DST starts on the 31st
    held = 0
    for index in range(40_000):
        roll = rng.random()
        if roll < 0.002:
            t -= rng.choice((10.0, 3600.0, 7 * 86400.0))  # the clock set back
        elif roll < 0.01:
            t += rng.uniform(3600.0, 40 * 86400.0)  # a long pause
        else:
            t += rng.choice((0.0, 1e-4, 1.0, 10.0, 60.0, 599.9, 900.0))
        activity = rng.choice((0.0, 0.0, 0.1, 2.0, 40.0))
        held += fast._hour_from <= t <= fast._hour_to  # noqa: SLF001
        fast.record(t, activity)
        slow.record(t, activity)
        if index % 31 == 0:  # one reader, first after held records: the same answer
            bucket = fast.bucket(t)
            read = rng.choice(readers)
            assert bits(read(fast, bucket, t)) == bits(read(slow, bucket, t)), index
        if index % 97 == 0 or index > 39_000:
            assert profile_state(fast) == profile_state(slow), index
    assert profile_state(fast) == profile_state(slow)
    assert fast.to_dict() == slow.to_dict()
    assert held > 25_000  # the shortcut was taken, often


def general_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send every read of an engine down the general paths (no shortcut)."""
    monkeypatch.setattr(
        IntervalModel,
        "_observe_unchanged",
        lambda self, t, value, last_t: self._observe_numeric(t, value),
    )
    monkeypatch.setattr(ActivityProfile, "_hold_hour", lambda self, t, i, w: None)
    monkeypatch.setattr(ActivityProfile, "plain", lambda self, i, lim, m: False)
    one_by_one = Schedule.next_reads

    def in_turn(self: Schedule, regs: Sequence[RegisterState], now: float) -> None:
        for reg in regs:
            one_by_one(self, (reg,), now)

    monkeypatch.setattr(Schedule, "next_reads", in_turn)


def engine_state(engine: PollEngine) -> object:
    """Everything an engine learned and decided, floats as bits."""
    regs = engine._registry.regs  # noqa: SLF001
    schedule = engine._schedule  # noqa: SLF001
    per_register = {
        uid: [
            reg.next_due,
            reg.effective_interval,
            reg.pattern_factor,
            reg.heap_seq,
            reg.bucket_at,
            model_state(reg.model),
            profile_state(reg.profile),
        ]
        for uid, reg in regs.items()
    }
    stats = engine._core.stats  # noqa: SLF001
    changes = [asdict(change) for change in stats.recent_interval_changes()]
    return bits(
        {
            "registers": per_register,
            "heap": schedule.heap,
            "changes": changes,
            "state": engine.export_state(),
        }
    )


async def test_an_engine_on_the_shortcuts_decides_as_on_the_general_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """26 hours of the demo device: the same states, decisions and schedule.

    Long enough for daily profiles to see an hour on two days (the reschedule's
    shortcut then no longer applies to some registers).
    """
    states = []
    for shortcuts in (True, False):
        with monkeypatch.context() as patch:
            if not shortcuts:
                general_paths(patch)
            config = EngineConfig(tz=ZoneInfo("Europe/Berlin"))
            engine, _, _, clock = make_engine(config)
            await run_until(engine, clock, 26 * 3600.0)
            regs = engine._registry.regs.values()  # noqa: SLF001
            plain = sum(
                r.profile.plain(r.model.interval, r.model.limits, r.model) for r in regs
            )
            states.append(engine_state(engine))
            if shortcuts:  # both kinds of register at the end
                assert 0 < plain < len(regs)
    assert states[0] == states[1]


def test_a_plain_profile_leaves_every_interval_as_it_is() -> None:
    """Where the reschedule skips the profile, the profile would not change a thing.

    Profiles with nothing learned, with learned onsets, with hours seen on two days,
    with two weeks learned; models with and without steps; intervals below and at
    the maximum; times all day; strengths 0, 0.5 and 1.
    """
    rng = random.Random(9)
    limits = IntervalLimits(5.0, 300.0)
    start = datetime(2024, 5, 6, tzinfo=UTC).timestamp()  # a Monday
    profiles = []
    for kind in ("new", "onsets", "history", "weeks"):
        profile = ActivityProfile(tz=ZoneInfo("Europe/Berlin"))
        if kind == "onsets":
            profile.daily.learn_onset(7 * 3600.0, 600.0, 19_849)
        days = {"new": 0, "onsets": 0, "history": 2, "weeks": 15}[kind]
        for k in range(days * 24 * 6):
            profile.record(start + k * 600.0, rng.choice((0.0, 0.0, 0.0, 3.0)))
        profiles.append(profile)
    plain = other = 0
    for profile in profiles:
        for steps in (0.0, 0.7):
            model = IntervalModel(2.0, limits)
            model._steps = steps  # noqa: SLF001
            for _ in range(400):
                interval = rng.choice((5.0, 20.0, 80.0, 299.0, 300.0))
                t = start + rng.uniform(0.0, 20 * 86400.0)
                strength = rng.choice((0.0, 0.5, 1.0))
                if not profile.plain(interval, limits, model):
                    other += 1
                    continue
                plain += 1
                got = profile.interval(t, interval, limits, strength, model)
                assert bits(got) == bits((interval, 1.0))
    assert plain > 500
    assert other > 1000


def schedule_state(schedule: Schedule) -> object:
    """Buckets in order with their masks and counts, and the live due times."""
    buckets = schedule._buckets  # noqa: SLF001
    return bits(
        {
            "heap": schedule.heap,
            "buckets": [[t, list(bucket)] for t, bucket in buckets.items()],
            "masks": {t: list(m.items()) for t, m in schedule._masks.items()},  # noqa: SLF001
            "counts": {t: list(c.items()) for t, c in schedule._counts.items()},  # noqa: SLF001
            "times": sorted(set(schedule._times) & set(buckets)),  # noqa: SLF001
            "unscheduled": sorted(schedule.unscheduled),
        }
    )


def test_a_block_rescheduled_together_is_scheduled_as_one_by_one() -> None:
    """Blocks of due registers and riders (some still in their buckets) pushed at once.

    Two schedules of the same 60 registers; one reschedules each block's reads with
    one call, the other register by register. Buckets (with their order), masks,
    counts, sequence numbers and pops must stay the same through 3,000 blocks.
    """
    specs = [
        RegisterSpec(f"r{i}", 1 + i // 20, Table.INPUT, i % 20, DataType.UINT16)
        for i in range(60)
    ]
    config = EngineConfig()
    twins = []
    for _ in range(2):
        registry = Registry(specs, config)
        schedule = Schedule(registry.regs, EngineClock(lambda: 0.0), config)
        for reg in registry.regs.values():
            reg.next_due = 0.0
            schedule.push(reg)
        twins.append((registry.regs, schedule))
    rng = random.Random(21)
    uids = [spec.uid for spec in specs]
    now = 0.0
    for step in range(3000):
        now += rng.choice((0.0, 0.5, 5.0, 20.0))
        if step % 7 == 0:  # a cycle: pop what is due in both
            popped = [
                [r.spec.uid for r in schedule.pop_due(now, ())] for _, schedule in twins
            ]
            assert popped[0] == popped[1]
        block = rng.sample(uids, rng.randrange(1, 25))
        if step % 11 == 0:  # a register placed twice in one call
            block.append(block[0])
        intervals = [rng.choice((5.0, 10.0, 20.0, 40.0, 300.0)) for _ in block]
        enabled = [rng.random() > 0.05 for _ in block]
        for index, (regs, schedule) in enumerate(twins):
            batch = [regs[uid] for uid in block]
            for reg, interval, on in zip(batch, intervals, enabled, strict=True):
                reg.model.interval = interval
                reg.enabled = on
            if index == 0:
                schedule.next_reads(batch, now)
            else:
                for reg in batch:
                    schedule.next_read(reg, now)
        assert schedule_state(twins[0][1]) == schedule_state(twins[1][1]), step
        assert [r.heap_seq for r in twins[0][0].values()] == [
            r.heap_seq for r in twins[1][0].values()
        ]


class _NoReads(ReadOnlyTransport):
    """Never asked: the observer is handed the block's words directly."""


def test_an_unexpected_error_mid_block_reschedules_those_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug on one register's read: those before it in the block keep their reads.

    The block's reads are rescheduled together; an exception in the middle (here
    from the third register's model) must leave the two before it rescheduled on
    their intervals, as rescheduling one by one did; it and those after it stay
    taken (the cycle's guard fails them).
    """
    specs = [
        RegisterSpec(f"r{i}", 1, Table.INPUT, i, DataType.UINT16) for i in range(5)
    ]
    engine = PollEngine(specs, _NoReads(), VirtualClock(0.0).now)
    core = engine._core  # noqa: SLF001
    uids = [spec.uid for spec in specs]
    assert len(core.schedule.pop_due(0.0, ())) == 5  # taken by a cycle
    victims = {id(core.registry.regs[uids[2]].model)}
    original = IntervalModel.observe

    def broken(
        self: IntervalModel, t: float, value: float | None, changed: bool
    ) -> Any:
        if id(self) in victims:
            raise RuntimeError("a bug")
        return original(self, t, value, changed)

    monkeypatch.setattr(IntervalModel, "observe", broken)
    block = BlockRead(1, Table.INPUT, 0, 5, tuple(uids))
    with pytest.raises(RuntimeError):
        Observer(core).apply(block, [1, 2, 3, 4, 5], 3.0, CycleState())
    for uid in uids[:2]:
        reg = core.registry.regs[uid]
        assert uid not in core.schedule.unscheduled
        assert reg.bucket_at == reg.next_due == 5.0
    assert core.schedule.unscheduled == set(uids[2:])
