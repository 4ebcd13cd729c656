"""CPU work of a cycle: clustered due times, recurring plans, the noise estimate.

Behaviour, not timings (the overhead benchmark measures the time): the clustered
schedule hands out exactly what a per-register heap would, in the same order; a
recurring due set reuses its plan, which is the planner's plan, and learned holes
or a new cost model replan; the incremental noise estimate equals the sorted one.
"""

from __future__ import annotations

import heapq
import random

import pytest

from adaptive_modbus_engine import planning as planning_mod
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import EngineUsageError, ErrorKind
from adaptive_modbus_engine.faults import HoleCheck
from adaptive_modbus_engine.intervals import (
    IntervalLimits,
    IntervalModel,
    _robust_rms,
    aligned_due,
)
from adaptive_modbus_engine.planner import CostModel, plan_reads
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.registry import RegisterState, Registry
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.schedule import EngineClock, Schedule
from adaptive_modbus_engine.scheduler import PollEngine

from .test_scheduler import make_engine, run_until


def specs(count: int, per_unit: int = 20) -> list[RegisterSpec]:
    """``count`` uint16 input registers, ``per_unit`` per unit, a gap every 5."""
    out = []
    for i in range(count):
        unit, slot = divmod(i, per_unit)
        out.append(
            RegisterSpec(
                key=f"r{i}",
                unit_id=unit + 1,
                table=Table.INPUT,
                address=slot + slot // 5,
                data_type=DataType.UINT16,
                tolerance=1.0,
            )
        )
    return out


class ReferenceHeap:
    """The former per-register heap: (due, sequence) entries, dead ones skipped."""

    def __init__(self) -> None:
        """Start empty."""
        self.heap: list[tuple[float, int, str]] = []
        self.live: dict[str, tuple[float, int]] = {}
        self.seq = 0

    def push(self, uid: str, t: float) -> None:
        """Schedule ``uid`` at ``t`` (its older entry dies)."""
        self.seq += 1
        self.live[uid] = (t, self.seq)
        heapq.heappush(self.heap, (t, self.seq, uid))

    def drop(self, uid: str) -> None:
        """Disable ``uid``: its entry dies."""
        self.live.pop(uid, None)

    def pop_due(self, horizon: float) -> list[str]:
        """Return the uids due by ``horizon``, in (due, sequence) order."""
        out = []
        while self.heap and self.heap[0][0] <= horizon:
            t, seq, uid = heapq.heappop(self.heap)
            if self.live.get(uid) == (t, seq):
                del self.live[uid]
                out.append(uid)
        return out

    def first_due(self) -> float:
        """Return the earliest live due time."""
        return min((t for t, _ in self.live.values()), default=float("inf"))


def test_clustered_schedule_pops_what_a_per_register_heap_pops() -> None:
    """Random reschedules, disables and pops: same registers, same order, same wake-up."""
    rng = random.Random(3)
    registry = Registry(specs(60), EngineConfig())
    regs = registry.regs
    schedule = Schedule(regs, EngineClock(lambda: 0.0), EngineConfig())
    reference = ReferenceHeap()
    uids = list(regs)
    now = 0.0
    for uid in uids:
        schedule.due_at(regs[uid], 0.0)
        reference.push(uid, 0.0)
    for _ in range(400):
        action = rng.random()
        uid = rng.choice(uids)
        reg = regs[uid]
        if action < 0.5:
            # aligned due times (many registers share one) and a few odd ones
            t = now + (rng.choice((1, 2, 4, 8)) if rng.random() < 0.8 else rng.random())
            t = float(round(t)) if rng.random() < 0.8 else t
            if reg.enabled and uid not in schedule.unscheduled:
                schedule.due_at(reg, t)
                reference.push(uid, t)
        elif action < 0.55:
            reg.enabled = False
            reference.drop(uid)
        elif action < 0.6 and not reg.enabled:
            reg.enabled = True
            schedule.due_at(reg, now)
            reference.push(uid, now)
        else:
            now += rng.random() * 2
            assert schedule.first_due() == reference.first_due()
            popped = schedule.pop_due(now, ())
            assert [r.spec.uid for r in popped] == reference.pop_due(now + 0.25)
            for r in popped:  # read: due again on a ladder rung
                t = now + rng.choice((1.0, 2.0, 4.0))
                schedule.due_at(r, t)
                reference.push(r.spec.uid, t)
    # one entry per scheduled register, no more
    live = [entry for entry in schedule.heap if schedule.is_live(entry)]
    assert sorted(uid for _, _, uid in live) == sorted(reference.live)


def test_clustered_schedule_drops_a_parked_unit_and_skips_it_when_waking() -> None:
    """A parked unit's registers wake nothing and are not handed out."""
    registry = Registry(specs(40), EngineConfig())
    regs = registry.regs
    schedule = Schedule(regs, EngineClock(lambda: 0.0), EngineConfig())
    for reg in regs.values():
        schedule.due_at(reg, 10.0 if reg.spec.unit_id == 1 else 20.0)
    assert schedule.first_due() == 10.0
    assert schedule.first_due({1}) == 20.0
    popped = schedule.pop_due(20.0, {1})
    assert {r.spec.unit_id for r in popped} == {2}
    assert len(popped) == 20
    assert schedule.first_due() == float("inf")  # unit 1's entries were dropped


async def test_steady_state_shares_due_times_across_registers() -> None:
    """Aligned intervals: far fewer distinct due times than registers in steady state."""
    engine, _device, _transport, clock = make_engine()
    await run_until(engine, clock, 1800.0)
    schedule = engine._schedule  # noqa: SLF001 - the clusters are internal
    times = {t for t, _, _ in schedule.heap}
    assert len(engine.uids) >= 2 * len(times)


async def test_a_recurring_due_set_reuses_the_planners_plan() -> None:
    """The cached plan is plan_reads' plan; holes or a new cost model replan."""
    clock = VirtualClock(0.0)
    registers = specs(40)
    engine = PollEngine(registers, _NullTransport(), clock.now, EngineConfig())
    planning = engine._planning  # noqa: SLF001 - the cache is internal
    regs = engine._registry.regs  # noqa: SLF001
    due = [regs[s.uid] for s in registers[::3]]
    first = planning.plan(due)
    expected = plan_reads(
        [r.spec for r in due],
        cost=planning.cost_model(),
        holes=engine._core.holes.by_table,  # noqa: SLF001
    )
    assert first == expected
    hits = planning.cache_hits
    again = planning.plan(list(reversed(due)))  # same set, other order
    assert again == first
    assert planning.cache_hits == hits + 1
    # a learned hole inside a block: a new mapping, so the plan is made anew
    holes = engine._core.holes  # noqa: SLF001
    block = first[0]
    hole = block.address + 1
    holes.checks[(block.unit_id, block.table, hole, hole + 1)] = HoleCheck(
        ErrorKind.ILLEGAL_ADDRESS, verify_at=1e9, backoff=1e9
    )
    holes.rebuild()
    replanned = planning.plan(due)
    assert planning.cache_hits == hits + 1
    assert all(
        not (b.address <= hole < b.end)
        for b in replanned
        if b.unit_id == block.unit_id and b.table == block.table
    )
    # a cost model where every gap is worth a request of its own: one read per run
    engine._core.tuning.cost = CostModel(request_overhead=0.001, per_register=1.0)  # noqa: SLF001
    split = planning.plan(due)
    assert planning.cache_hits == hits + 1
    assert len(split) > len(replanned)


def test_incremental_noise_estimate_equals_the_sorted_one() -> None:
    """Residual window kept sorted: the same noise as sorting it, also after restore."""
    rng = random.Random(11)
    model = IntervalModel(1.0, IntervalLimits(1.0, 300.0))
    t, value = 0.0, 100.0
    for i in range(600):
        t += rng.choice((1.0, 2.0, 4.0, 5.0))
        value += rng.gauss(0.0, 2.0) + (80.0 if rng.random() < 0.02 else 0.0)
        model.observe(t, value, True)
        assert model.noise == _robust_rms(model._residuals)  # noqa: SLF001
        if i == 300:
            model = IntervalModel.from_dict(model.to_dict())
            assert model.noise == _robust_rms(model._residuals)  # noqa: SLF001
    assert model.noise > 0


def test_a_full_noise_window_that_gets_back_what_it_drops_keeps_the_same_noise() -> (
    None
):
    """Whole-number ramps repeat their residuals: the shortcut keeps the exact noise.

    A register read on the grid whose value moves in whole steps gives the same few
    residuals again and again; when the value entering the full window equals the
    one leaving it the sorted copy is not touched. Noise, sorted copy and the
    restored model must still be what sorting the window gives.
    """
    rng = random.Random(5)
    model = IntervalModel(2.0, IntervalLimits(5.0, 300.0))
    t, value, repeats = 0.0, 1000.0, 0
    for i in range(800):
        t += 20.0
        value += rng.choice((1.0, 1.0, 1.0, 2.0)) if i % 200 < 150 else 0.0
        residuals = model._residuals  # noqa: SLF001
        dropped = residuals[0] if len(residuals) == 31 else None
        model.observe(t, value, True)
        if dropped is not None and model._residuals[-1] == dropped:  # noqa: SLF001
            repeats += 1
        assert model._ordered == sorted(model._residuals)  # noqa: SLF001
        assert model._squares == [x * x for x in model._ordered]  # noqa: SLF001
        assert model.noise == _robust_rms(model._residuals)  # noqa: SLF001
        if i == 400:
            model = IntervalModel.from_dict(model.to_dict())
    assert repeats > 100  # the shortcut was taken, often


def test_next_read_is_due_on_the_aligned_grid() -> None:
    """The read path's inlined due time is aligned_due's, also a hair before a tick."""
    registry = Registry(specs(1), EngineConfig())
    (reg,) = registry.regs.values()
    schedule = Schedule(registry.regs, EngineClock(lambda: 0.0), EngineConfig())
    rng = random.Random(3)
    for _ in range(2000):
        reg.model.interval = rng.choice((5.0, 7.3, 10.0, 40.0, 300.0))
        now = rng.choice((rng.uniform(0, 1e6), 20.0 * rng.randrange(1, 9999) - 1e-9))
        schedule.next_read(reg, now)
        expected = aligned_due(now, reg.effective_interval)
        assert reg.next_due == expected
        assert schedule.first_due() == expected


class _NullTransport:
    """Never used: the plan tests do not read."""

    connected = True

    async def connect(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""


# -- free riders ----------------------------------------------------------------


def rider_engine(
    per_register: float, addresses: tuple[int, ...] = (0, 3, 60)
) -> tuple[PollEngine, dict[str, RegisterState]]:
    """uint16 registers at ``addresses`` of unit 1, under a fixed cost model."""
    registers = [
        RegisterSpec(
            key=f"a{address}",
            unit_id=1,
            table=Table.HOLDING,
            address=address,
            data_type=DataType.UINT16,
            tolerance=1.0,
        )
        for address in addresses
    ]
    engine = PollEngine(
        registers,
        _NullTransport(),
        VirtualClock(1000.0).now,
        EngineConfig(rider_value=1.0),
    )
    engine._core.tuning.cost = CostModel(  # noqa: SLF001
        request_overhead=1.0, per_register=per_register
    )
    regs = engine._registry.regs  # noqa: SLF001
    for reg in regs.values():
        reg.effective_interval = 100.0
        reg.last_read = 1000.0 - 100.0
        reg.next_due = 1000.0
    return engine, {reg.spec.key: reg for reg in regs.values()}


def read_since(reg: RegisterState, share: float, now: float = 1000.0) -> None:
    """Make ``reg`` read ``share`` of its interval ago (not yet nearly due)."""
    reg.last_read = now - share * reg.effective_interval
    reg.next_due = reg.last_read + reg.effective_interval


def test_a_request_going_out_takes_neighbours_worth_their_transfer() -> None:
    """Serial-like cost: a stale close neighbour rides, a fresh or far one does not."""
    engine, regs = rider_engine(per_register=0.1)
    planning = engine._planning  # noqa: SLF001
    read_since(regs["a3"], 0.4)  # worth 0.4 of a request; 3 more registers cost 0.3
    read_since(regs["a60"], 0.45)  # 58 more registers cost 5.8 requests
    (block,) = planning.plan_with_early([regs["a0"]], 1000.0)
    assert (block.address, block.count) == (0, 4)
    assert block.keys == (regs["a0"].spec.uid, regs["a3"].spec.uid)
    read_since(regs["a3"], 0.2)  # worth 0.2 < 0.3
    (block,) = planning.plan_with_early([regs["a0"]], 1000.0)
    assert (block.address, block.count) == (0, 1)
    planning.rider_value = 0.0  # off: the plain plan
    read_since(regs["a3"], 0.4)
    (block,) = planning.plan_with_early([regs["a0"]], 1000.0)
    assert (block.address, block.count) == (0, 1)


def test_on_tcp_a_request_takes_about_the_whole_unit() -> None:
    """TCP-like cost (a register costs a thousandth of a request): far ones ride too."""
    engine, regs = rider_engine(per_register=0.001)
    planning = engine._planning  # noqa: SLF001
    read_since(regs["a0"], 0.1)
    read_since(regs["a3"], 0.1)
    read_since(regs["a60"], 0.1)  # 60 more registers cost 0.06 < 0.1 + 0.1
    (block,) = planning.plan_with_early([regs["a60"]], 1000.0)
    assert (block.address, block.end) == (0, 61)
    assert set(block.keys) == {reg.spec.uid for reg in regs.values()}
    # never over a learned hole
    holes = engine._core.holes  # noqa: SLF001
    holes.checks[(1, Table.HOLDING, 30, 31)] = HoleCheck(
        ErrorKind.ILLEGAL_ADDRESS, verify_at=1e9, backoff=1e9
    )
    holes.rebuild()
    (block,) = planning.plan_with_early([regs["a60"]], 1000.0)
    assert (block.address, block.end) == (60, 61)
    # a register just read is worth nothing: it does not ride
    holes.checks.clear()
    holes.rebuild()
    read_since(regs["a3"], 0.0)
    read_since(regs["a0"], 0.0)
    (block,) = planning.plan_with_early([regs["a60"]], 1000.0)
    assert (block.address, block.end) == (60, 61)


def test_a_group_of_neighbours_is_worth_at_most_one_request() -> None:
    """Ten stale neighbours far away stay out: together they need one request later.

    Each is worth nearly a request, but read together when due they cost one request
    (and their own transfer, paid either way), so the block never grows over a gap
    whose transfer costs more than a request.
    """
    engine, regs = rider_engine(per_register=0.05, addresses=(*range(10), 40))
    planning = engine._planning  # noqa: SLF001
    for key in (f"a{i}" for i in range(10)):
        read_since(regs[key], 0.95)  # 10 x 0.95 requests > 31 more registers (1.55)
    (block,) = planning.plan_with_early([regs["a40"]], 1000.0)
    assert (block.address, block.end) == (40, 41)
    # close enough (a gap of 10 costs half a request) they ride
    engine, regs = rider_engine(per_register=0.05, addresses=(*range(10), 19))
    planning = engine._planning  # noqa: SLF001
    for key in (f"a{i}" for i in range(10)):
        read_since(regs[key], 0.95)
    (block,) = planning.plan_with_early([regs["a19"]], 1000.0)
    assert (block.address, block.end) == (0, 20)


def test_free_riders_are_on_by_default_and_pinned_off_by_configuration() -> None:
    """The engine's default rides; ``EngineConfig(rider_value=0)`` plans the plain cover."""
    assert planning_mod.RIDER_VALUE > 0
    clock = VirtualClock(1000.0).now
    specs_ = specs(3)
    default = PollEngine(specs_, _NullTransport(), clock, EngineConfig())
    assert default._planning.rider_value == planning_mod.RIDER_VALUE  # noqa: SLF001
    off = PollEngine(specs_, _NullTransport(), clock, EngineConfig(rider_value=0.0))
    assert off._planning.rider_value == 0.0  # noqa: SLF001
    with pytest.raises(EngineUsageError, match="rider_value"):
        EngineConfig(rider_value=-1.0)
    with pytest.raises(EngineUsageError, match="rider_value"):
        EngineConfig(rider_value=float("nan"))
