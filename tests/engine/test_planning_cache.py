"""The planning shortcuts change nothing: cached plans and the clustered search.

A plan reused from the cache equals the plan made afresh over a random sequence
of due sets and input changes (cost model, learned and passed limits, allowed
gaps, learned holes), so a cache key that missed an input fails here. The
search for nearly due neighbours, which works a due-time bucket at a time, finds
exactly the registers the register-by-register rule finds, and each cycle's plan
equals the plan of that rule without any cache, over random cycles of a real
engine with disabling, pins, request_read, quarantines and tuning changes.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
import random

import pytest

from adaptive_modbus_engine.planner import (
    DEFAULT_LIMITS,
    BlockRead,
    CostModel,
    plan_cost,
)
from adaptive_modbus_engine.planning import EARLY_VALUE, Planning
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.registry import RegisterState
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice

from .test_scheduler_faults import drive, ghost, make

COSTS = (
    None,
    CostModel(),
    CostModel(request_overhead=1.0, per_register=0.2, per_bit=0.01),
    CostModel(request_overhead=1.0, per_register=0.001, per_bit=0.0001),
)


def mixed_specs() -> list[RegisterSpec]:
    """Return registers of two units in word and bit tables, of sizes 1, 2 and 4."""
    rng = random.Random(5)
    sized = (DataType.UINT16, DataType.UINT16, DataType.UINT32, DataType.UINT64)
    out = []
    for unit in (1, 2):
        for table in (Table.HOLDING, Table.INPUT):
            address = 0
            for i in range(14):
                address += rng.choice((0, 0, 1, 3, 9, 40))
                data_type = rng.choice(sized)
                spec = RegisterSpec(
                    f"{table.name[0]}{i}", unit, table, address, data_type
                )
                out.append(spec)
                address += spec.size
        out += [
            RegisterSpec(f"c{i}", unit, Table.COIL, i * 37, DataType.BOOL)
            for i in range(8)
        ]
    return out


def nearly_due_matches_the_rule(engine: PollEngine, now: float) -> int:
    """Assert the schedule's nearly due set is the register-by-register rule's.

    Returns its size.
    """
    planning = engine._planning  # noqa: SLF001
    schedule = engine._core.schedule  # noqa: SLF001
    regs = engine._core.registry.regs  # noqa: SLF001
    fraction = planning.early_fraction
    by_rule = {
        uid
        for uid, at in schedule._at.items()  # noqa: SLF001
        if at - now > 0
        and (reg := regs[uid]).next_due - now <= fraction * reg.effective_interval
        and reg.enabled
        and reg.quarantined_until is None
    }
    assert schedule.nearly_due(now, fraction) == by_rule
    return len(by_rule)


def reference_plan(
    planning: Planning, due: list[RegisterState], now: float
) -> list[BlockRead]:
    """``plan_with_early`` register by register and without a cache (as before).

    Every register within the break-even gap of a block (and the device limit)
    is looked at: nearly due when at most the early fraction of its interval is
    left, enabled and not quarantined.
    """
    core = planning._core  # noqa: SLF001
    regs = core.registry.regs
    trial = core.limits.trial((reg.spec for reg in due), now)
    limits = core.limits.effective(trial)
    blocks = Planning(core).plan(due, limits)
    config = core.config
    if not (config.adaptive and config.merge_reads and blocks):
        return core.limits.settle(trial, blocks, now)
    cost = planning.cost_model()
    due_uids = {reg.spec.uid for reg in due}
    effective = core.limits.effective()
    found: dict[str, RegisterState] = {}
    for block in blocks:
        unit_limits = effective.get(block.unit_id, DEFAULT_LIMITS)
        limit = unit_limits.for_table(block.table)
        gap = cost.break_even_gap(bits=block.table.is_bit)
        low = max(block.address - gap, block.end - limit)
        high = min(block.end + gap, block.address + limit)
        for uid in (
            core.registry.starting_in(block.unit_id, block.table, low, high) or ()
        ):
            reg = regs[uid]
            if (
                uid not in due_uids
                and reg.next_due - now
                <= planning.early_fraction * reg.effective_interval
                and reg.enabled
                and reg.quarantined_until is None
                and reg.spec.end <= high
            ):
                found.setdefault(uid, reg)
    if found:
        merged = Planning(core).plan([*due, *found.values()], limits)
        # the early neighbours' worth must pay for the words they add
        worth = 0.0
        for reg in found.values():
            gone = (
                1.0
                if reg.last_read is None or reg.effective_interval <= 0
                else min(1.0, max(0.0, (now - reg.last_read) / reg.effective_interval))
            )
            worth += EARLY_VALUE * cost.request_overhead * gone
        extra = plan_cost(merged, cost) - plan_cost(blocks, cost)
        if len(merged) < len(blocks) or (
            len(merged) == len(blocks) and (extra <= 0 or extra <= worth)
        ):
            blocks = merged
    if planning.rider_value > 0 and config.piggyback:
        blocks = planning._with_free_riders(blocks, now, limits, cost)  # noqa: SLF001
    return core.limits.settle(trial, blocks, now)


@pytest.mark.parametrize("seed", range(3))
async def test_each_cycle_plans_as_the_register_by_register_rule(seed: int) -> None:
    """Random cycles of a real engine: the nearly due set and every plan match."""
    rng = random.Random(seed)
    registers = SimulatedDevice(clock=VirtualClock().now, start=0.0).registers
    engine, _, transport, clock = make([*registers, ghost()])
    core = engine._core  # noqa: SLF001
    planning = engine._planning  # noqa: SLF001
    regs = core.registry.regs
    uids = list(regs)
    planned = 0
    nearly_seen = 0
    mismatches: list[tuple[float, object, object]] = []
    plan_with_early = planning.plan_with_early

    def checked(
        due: list[RegisterState], now: float, uids: AbstractSet[str] | None = None
    ) -> list[BlockRead]:
        nonlocal planned, nearly_seen
        # the cycle hands over the due uids as the schedule popped them
        if uids != {reg.spec.uid for reg in due}:
            mismatches.append((now, uids, due))
        try:
            nearly_seen += nearly_due_matches_the_rule(engine, now)
        except AssertionError as err:
            mismatches.append((now, err, None))
        # the reference first: the planner's trial bookkeeping runs once, after it
        limits_state = core.limits
        saved = {u: (v.retry_at, v.backoff) for u, v in limits_state.learned.items()}
        expected = reference_plan(planning, due, now)
        for unit, (retry_at, backoff) in saved.items():
            limits_state.learned[unit].retry_at = retry_at
            limits_state.learned[unit].backoff = backoff
        blocks = plan_with_early(due, now, uids)
        if blocks != expected:  # noted: the cycle would catch an AssertionError
            mismatches.append((now, blocks, expected))
        planned += 1
        return blocks

    planning.plan_with_early = checked  # type: ignore[method-assign]
    until = 0.0
    for _ in range(60):
        until += rng.uniform(20.0, 120.0)
        await drive(engine, clock, until)
        action = rng.randrange(7)
        uid = rng.choice(uids)
        if action == 0:
            engine.set_enabled(uid, not regs[uid].enabled)
        elif action == 1:
            engine.pin_interval(uid, interval=rng.choice((5.0, 10.0, 40.0, 160.0)))
        elif action == 2:
            engine.unpin(uid)
        elif action == 3:
            engine.request_read(rng.sample(uids, 3))
        elif action == 4:
            engine.set_cost_model(rng.choice(COSTS))
        elif action == 5:
            planning.early_fraction = rng.choice((0.0, 0.25, 0.5, 1.0))
        else:
            transport.fail_once |= {rng.randrange(0, 40)}
        # between cycles too, looking ahead: the schedule's view follows each change
        for ahead in (0.0, 1.0, 3.0, 7.0, 15.0, 30.0, 60.0, 120.0, 240.0):
            nearly_seen += nearly_due_matches_the_rule(engine, clock.now() + ahead)
    assert not mismatches
    assert engine._cycles.last_internal_error is None  # noqa: SLF001
    assert planned > 100
    assert nearly_seen > 0
    assert any(reg.quarantined_until is not None for reg in regs.values()) or any(
        reg.errors for reg in regs.values()
    )
