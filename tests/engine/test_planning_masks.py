"""The plan cache keyed per register group by bit masks changes no plan.

A cycle's due set reaches the planner as a bit mask per (unit, table) group, kept
by the schedule as registers are pushed and popped, and each group's plan is
cached under its mask and the inputs of that group's plan. Over random due sets
and input changes (cost model, learned and passed limits, allowed gaps, learned
holes, merging) every plan equals ``plan_reads`` of the whole due set without a
cache, and a key that leaves out any one input is caught by the same sequence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
import random

import pytest

from adaptive_modbus_engine import planning as planning_mod
from adaptive_modbus_engine.errors import ErrorKind
from adaptive_modbus_engine.faults import HoleCheck
from adaptive_modbus_engine.planner import (
    BlockRead,
    CostModel,
    DeviceLimits,
    plan_reads,
)
from adaptive_modbus_engine.planning import Planning
from adaptive_modbus_engine.registry import RegisterState
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import PollEngine

from .test_perf_schedule import _NullTransport
from .test_planning_cache import mixed_specs

# request overheads and per-register prices that differ, so each part of the key
# changes some plan
COSTS = (
    None,
    CostModel(),
    CostModel(request_overhead=1.0, per_register=0.2, per_bit=0.01),
    CostModel(request_overhead=0.1, per_register=0.02, per_bit=0.01),
    CostModel(request_overhead=4.0, per_register=0.2, per_bit=0.001),
    CostModel(request_overhead=1.0, per_register=0.001, per_bit=0.0001),
)
KEY_INPUTS = ("mask", "overhead", "per_unit", "limit", "merge")


def uncached_plan(
    planning: Planning, due: list[RegisterState], limits: dict[int, DeviceLimits]
) -> list[BlockRead]:
    """Plan the whole due set at once with ``plan_reads``, without any cache.

    A unit with an allowed gap is planned on its own with the per-register price
    that makes the gap its break-even gap (``Tuning.unit_max_gap``).
    """
    core = planning._core  # noqa: SLF001
    cost = planning.cost_model()
    gaps = core.tuning.unit_max_gap
    holes = core.holes.by_table
    merge = core.config.merge_reads
    if not gaps:
        specs = [reg.spec for reg in due]
        return plan_reads(specs, cost=cost, limits=limits, holes=holes, merge=merge)
    by_unit: dict[int | None, list[RegisterState]] = {}
    for reg in due:
        unit = reg.spec.unit_id
        by_unit.setdefault(unit if unit in gaps else None, []).append(reg)
    blocks: list[BlockRead] = []
    for unit, regs in by_unit.items():
        unit_cost = cost
        if unit is not None:
            per_register = cost.request_overhead / max(gaps[unit], 0.5)
            unit_cost = replace(cost, per_register=per_register)
        blocks += plan_reads(
            [reg.spec for reg in regs],
            cost=unit_cost,
            limits=limits,
            holes=holes,
            merge=merge,
        )
    blocks.sort(key=lambda b: (b.unit_id, b.table, b.address, b.count))
    return blocks


def mismatches_over_random_changes(seed: int, steps: int = 400) -> tuple[int, int]:
    """Plan recurring due sets under random input changes; (mismatches, cache hits)."""
    rng = random.Random(seed)
    engine = PollEngine(mixed_specs(), _NullTransport(), VirtualClock(1000.0).now)
    core = engine._core  # noqa: SLF001
    planning = engine._planning  # noqa: SLF001
    regs = list(core.registry.regs.values())
    pool = [rng.sample(regs, rng.randint(1, 20)) for _ in range(8)]  # due sets recur
    # and sets one register apart: the same groups, masks a bit apart
    pool += [due[:-1] for due in pool if len(due) > 1]
    mismatches = 0
    for _ in range(steps):
        change = rng.randrange(16)  # 6 and up: no change, the cache may answer
        if change == 0:
            core.tuning.cost = rng.choice(COSTS)
        elif change == 1:
            unit = rng.choice((1, 2))
            if rng.random() < 0.3:
                core.limits.reset(unit)
            else:
                core.limits.learn(unit, rng.randint(2, 60), "test", 1000.0)
        elif change == 2:
            unit = rng.choice((1, 2))
            if rng.random() < 0.5:
                core.tuning.unit_max_gap[unit] = rng.randint(0, 30)
            else:
                core.tuning.unit_max_gap.pop(unit, None)
        elif change == 3:
            spec = rng.choice(regs).spec
            key = (spec.unit_id, spec.table, spec.address, spec.address + 1)
            if key in core.holes.checks:
                del core.holes.checks[key]
            else:
                core.holes.checks[key] = HoleCheck(
                    ErrorKind.ILLEGAL_ADDRESS, verify_at=1e12, backoff=1e12
                )
            core.holes.rebuild()
        elif change == 5:
            # merging is fixed per engine; flipped here to prove the key holds it
            merge = not core.config.merge_reads
            object.__setattr__(core, "config", replace(core.config, merge_reads=merge))
        limits: dict[int, DeviceLimits] | None = None
        if change == 4:
            limits = {rng.choice((1, 2)): DeviceLimits(rng.randint(1, 125), 2000)}
        due = rng.choice(pool)
        expected = uncached_plan(
            planning, due, core.limits.effective() if limits is None else limits
        )
        if planning.plan(due, limits) != expected:
            mismatches += 1
    return mismatches, planning.cache_hits


@pytest.mark.parametrize("seed", range(6))
def test_group_cached_plans_are_the_uncached_plans(seed: int) -> None:
    """Every plan, answered from the cache or not, is plan_reads' plan of the set."""
    mismatches, hits = mismatches_over_random_changes(seed)
    assert mismatches == 0
    assert hits > 40  # the cache answered, and answered right


def _key_without(dropped: str) -> Callable[..., tuple[object, ...]]:
    real = planning_mod._group_key  # noqa: SLF001

    def key(group: int, mask: int, **inputs: object) -> tuple[object, ...]:
        if dropped == "mask":
            mask = 0
        else:
            inputs[dropped] = None
        return real(group, mask, **inputs)  # type: ignore[arg-type]

    return key


@pytest.mark.parametrize("dropped", KEY_INPUTS)
def test_a_key_that_misses_an_input_is_caught(
    monkeypatch: pytest.MonkeyPatch, dropped: str
) -> None:
    """Leave one input out of the group key: the random sequence finds a wrong plan."""
    monkeypatch.setattr(planning_mod, "_group_key", _key_without(dropped))
    assert sum(mismatches_over_random_changes(seed)[0] for seed in range(3)) > 0


def test_the_schedule_keeps_each_due_time_as_group_masks() -> None:
    """Bucket masks, a pop's and the nearly due ones are their registers' masks.

    And each bucket's smallest and largest interval, kept as registers come and go,
    is what its registers have.
    """
    rng = random.Random(2)
    engine = PollEngine(mixed_specs(), _NullTransport(), VirtualClock(0.0).now)
    schedule = engine._core.schedule  # noqa: SLF001
    registry = engine._core.registry  # noqa: SLF001
    regs = list(registry.regs.values())
    popped_any = nearly_seen = 0
    for _ in range(300):
        now = rng.uniform(0.0, 50.0)
        action = rng.random()
        reg = rng.choice(regs)
        if action < 0.6:
            if reg.spec.uid not in schedule.unscheduled:
                reg.effective_interval = rng.choice((5.0, 10.0, 40.0, 80.0))
                schedule.due_at(reg, float(rng.randrange(0, 60)))
        elif action < 0.65:
            engine.set_enabled(reg.spec.uid, not reg.enabled)
        elif action < 0.7:  # a new interval noted in place (as a pin or tuning does)
            reg.effective_interval = rng.choice((5.0, 10.0, 40.0, 80.0))
            schedule.refresh(reg)
        else:
            due = schedule.pop_due(now, {2} if rng.random() < 0.2 else ())
            assert schedule.popped == {r.spec.uid for r in due}
            assert schedule.popped_masks == registry.masks_of(schedule.popped)
            popped_any += len(due)
            for r in due:
                schedule.due_at(r, now + rng.choice((1.0, 2.0, 4.0)))
        for t, bucket in schedule._buckets.items():  # noqa: SLF001
            assert schedule._masks[t] == registry.masks_of(bucket)  # noqa: SLF001
            # the bucket's smallest and largest interval, kept or found again
            values = [reg.scheduled_interval for reg in bucket.values()]
            assert schedule._span(t) == (min(values), max(values))  # noqa: SLF001
            assert schedule._counts[t] == Counter(values)  # noqa: SLF001
            assert all(reg.bucket_at == t for reg in bucket.values())
        assert schedule._counts.keys() == schedule._buckets.keys()  # noqa: SLF001
        assert schedule._masks.keys() == schedule._buckets.keys()  # noqa: SLF001
        for fraction in (0.1, 0.5, 1.0):
            nearly = schedule.nearly_due(now, fraction)
            nearly_seen += len(nearly)
            masks = schedule.nearly_due_masks(now, fraction)
            assert masks == registry.masks_of(nearly)
    assert popped_any > 50
    assert nearly_seen > 50


def test_masks_name_the_registers_by_address() -> None:
    """uids_of undoes masks_of, in address order within the group."""
    engine = PollEngine(mixed_specs(), _NullTransport(), VirtualClock(0.0).now)
    registry = engine._core.registry  # noqa: SLF001
    for number, (unit, table) in enumerate(registry.groups):
        uids = registry.group_uids[number]
        assert all(
            registry.regs[uid].spec.unit_id == unit
            and registry.regs[uid].spec.table == table
            for uid in uids
        )
        addresses = [registry.regs[uid].spec.address for uid in uids]
        assert addresses == sorted(addresses)
        chosen = uids[::2]
        assert registry.masks_of(chosen) == {
            number: sum(1 << i for i in range(0, len(uids), 2))
        }
        assert registry.uids_of(number, registry.masks_of(chosen)[number]) == chosen
