"""The expert-tuned static baseline: the best any hand configuration can do.

Each register gets the fixed interval an expert would pick with hindsight: the
longest swept interval that keeps that register's own time out of tolerance within
adaptive's (measured on the fixed-per-entity sweep, where each register is read on
its own, so its figure depends on its interval alone). Registers are then read on
their own timers, everything due at one second read together in the planner's
optimal blocks (``engine.planner.plan_reads``, cost model exact for the bus; other
registers inside a block ride along), like speed groups or per-entity scan
intervals set by hand. Reads are instantaneous at 1-second resolution, as for the
oracle, which flatters this baseline slightly on a slow bus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adaptive_modbus_engine.planner import BlockRead, plan_reads
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .scenarios import Scenario
from .simulate import RunRecord

TIE = 1e-9


def pick_intervals(
    sweep: Mapping[float, Sequence[float | None]],
    target: Sequence[float | None],
    specs: Sequence[RegisterSpec],
) -> list[float]:
    """Pick per row the longest interval of ``sweep`` that stays within its target.

    ``sweep`` maps interval -> time out of tolerance per row (%); a row keeps the
    longest interval whose figure stays within ``target[row]``, the shortest when
    none does, the longest when it has no figure; then within the row's own bounds
    from its map (``specs[row]``: an alarm the map reads at least every 10 s gets
    10 s at most, as every policy keeps them).
    """
    intervals = sorted(sweep)
    out = []
    for row, goal in enumerate(target):
        chosen = intervals[0]
        if goal is None:
            chosen = intervals[-1]
        else:
            for interval in intervals:
                value = sweep[interval][row]
                if value is None or value <= goal + TIE:
                    chosen = interval
        out.append(specs[row].bounded(chosen))
    return out


def run_expert(
    scenario: Scenario,
    intervals: Sequence[float],
    *,
    phase: float = 0.0,
    name: str = "expert",
) -> RunRecord:
    """Simulate per-register fixed timers (ticks at ``start - phase + k * interval``)."""
    specs = scenario.specs
    truth = scenario.truth
    rows = {spec.uid: row for row, spec in enumerate(specs)}
    groups: dict[tuple[int, Table], list[RegisterSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.unit_id, spec.table), []).append(spec)
    by_interval: dict[int, list[int]] = {}
    for row, interval in enumerate(intervals):
        by_interval.setdefault(max(round(interval), 1), []).append(row)
    cost = scenario.bus.cost_model()
    holes = {key: set(value) for key, value in scenario.holes.items()}
    limits = dict(scenario.limits)
    plans: dict[tuple[int, ...], list[BlockRead]] = {}
    record = RunRecord(policy=name, reads=[([], []) for _ in specs])
    offset = round(phase)
    for second in range(scenario.duration + 1):
        due_intervals = tuple(
            interval
            for interval in by_interval
            if second == 0 or (second + offset) % interval == 0
        )
        if not due_intervals:
            continue
        blocks = plans.get(due_intervals)
        if blocks is None:
            due = [specs[row] for i in due_intervals for row in by_interval[i]]
            touched = {(spec.unit_id, spec.table) for spec in due}
            riders = [spec for key in touched for spec in groups[key]]
            blocks = plan_reads(
                due, riders=riders, cost=cost, limits=limits, holes=holes
            )
            plans[due_intervals] = blocks
        when = scenario.start + second
        for block in blocks:
            record.registers += block.count
            seconds = scenario.bus.read_time(block.table, block.count)
            record.bus_time += seconds
            record.sent(when, seconds)
            for key in block.keys:
                row = rows[key]
                times, values = record.reads[row]
                times.append(when)
                values.append(float(truth[row, second]))
        record.requests += len(blocks)
        record.cycles += 1
        record.timeline.append((when, len(blocks)))
    return record
