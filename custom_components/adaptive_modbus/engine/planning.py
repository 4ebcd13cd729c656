"""A cycle's plan: the due registers as block reads, plus neighbours due soon.

The optimal planner (``planner.plan_reads``) runs with the connection's cost model
(configured, or fitted to measured latencies), the units' block limits in force
(a unit whose retry is due tries a larger read) and the learned holes. When
merging, registers near the planned blocks that are close to due are pulled into
the plan if that adds no request: they would cost a request of their own later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from .core import EngineCore
from .planner import DEFAULT_LIMITS, BlockRead, CostModel, DeviceLimits, plan_reads
from .registry import RegisterState

# a neighbour this close to due (share of its interval) is read early
EARLY_FRACTION = 0.5
# plans kept for due sets seen before (aligned intervals make due sets recur)
PLAN_CACHE_SIZE = 256


class Planning:
    """Plans block reads for a set of due registers."""

    def __init__(
        self, core: EngineCore, *, early_fraction: float = EARLY_FRACTION
    ) -> None:
        """Plan reads for the registers of ``core``."""
        self._core = core
        self._regs = core.registry.regs
        self._cost = core.bus.cost
        self._early_fraction = early_fraction
        # plan_reads is a pure function of its inputs: a due set that recurs (the
        # power-of-two ladder makes them recur every max interval) reuses its plan.
        # The cache is dropped when the learned holes change (a new mapping).
        self._cache: dict[tuple[object, ...], tuple[BlockRead, ...]] = {}
        self._cache_holes: object = None
        self.cache_hits = 0

    def cost_model(self) -> CostModel:
        """Return the cost model the planner uses now (configured, fitted, or default)."""
        return (
            self._core.tuning.cost
            or self._core.config.cost
            or self._cost.model()
            or CostModel()
        )

    def plan(
        self,
        due: Sequence[RegisterState],
        limits: Mapping[int, DeviceLimits] | None = None,
    ) -> list[BlockRead]:
        """Block reads of ``due`` (``limits``: per unit; default: those in force)."""
        limits = self._core.limits.effective() if limits is None else limits
        gaps = self._core.tuning.unit_max_gap
        holes = self._core.holes.by_table
        if holes is not self._cache_holes:
            self._cache.clear()
            self._cache_holes = holes
        key = (
            frozenset([reg.spec.uid for reg in due]),
            self.cost_model(),
            tuple(sorted(limits.items())),
            tuple(sorted(gaps.items())) if gaps else (),
            self._core.config.merge_reads,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            return list(cached)
        if gaps:
            blocks = self._plan_with_gaps(due, limits, gaps)
        else:
            blocks = plan_reads(
                [reg.spec for reg in due],
                cost=self.cost_model(),
                limits=limits,
                holes=holes,
                merge=self._core.config.merge_reads,
            )
        if len(self._cache) >= PLAN_CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = tuple(blocks)
        return blocks

    def _plan_with_gaps(
        self,
        due: Sequence[RegisterState],
        limits: Mapping[int, DeviceLimits],
        gaps: Mapping[int, int],
    ) -> list[BlockRead]:
        """Plan units with an allowed gap (``Tuning.unit_max_gap``) on their own.

        A unit's allowed gap sets its cost model's per-register price so that the
        break-even gap is that many registers.
        """
        cost = self.cost_model()
        by_unit: dict[int | None, list[RegisterState]] = {}
        for reg in due:
            unit_id = reg.spec.unit_id
            by_unit.setdefault(unit_id if unit_id in gaps else None, []).append(reg)
        blocks: list[BlockRead] = []
        for unit, regs in by_unit.items():
            unit_cost = cost
            if unit is not None:
                unit_cost = replace(
                    cost, per_register=cost.request_overhead / max(gaps[unit], 0.5)
                )
            blocks += plan_reads(
                [reg.spec for reg in regs],
                cost=unit_cost,
                limits=limits,
                holes=self._core.holes.by_table,
                merge=self._core.config.merge_reads,
            )
        blocks.sort(key=lambda b: (b.unit_id, b.table, b.address, b.count))
        return blocks

    def plan_with_early(self, due: list[RegisterState], now: float) -> list[BlockRead]:
        """Plan the due registers, pulling in neighbours due soon when that is free.

        A neighbour joins when it adds no request (it would cost a request of its own
        later).
        """
        trial = self._core.limits.trial((reg.spec for reg in due), now)
        limits = self._core.limits.effective(trial)
        blocks = self.plan(due, limits)
        if not (
            self._core.config.adaptive and self._core.config.merge_reads and blocks
        ):
            return self._core.limits.settle(trial, blocks, now)
        early = self._early_neighbours(
            blocks, now, {reg.spec.uid for reg in due}, self._core.limits.effective()
        )
        if not early:
            return self._core.limits.settle(trial, blocks, now)
        merged = self.plan([*due, *early], limits)
        return self._core.limits.settle(
            trial, merged if len(merged) <= len(blocks) else blocks, now
        )

    def _early_neighbours(
        self,
        blocks: Sequence[BlockRead],
        now: float,
        due: set[str],
        limits: Mapping[int, DeviceLimits],
    ) -> list[RegisterState]:
        """Return the registers near the planned blocks that are nearly due.

        Nearly due: at most the early fraction of their interval is left.
        """
        cost = self.cost_model()
        gaps = (cost.break_even_gap(bits=False), cost.break_even_gap(bits=True))
        regs, fraction = self._regs, self._early_fraction
        starting_in = self._core.registry.starting_in
        found: dict[str, RegisterState] = {}
        for block in blocks:
            unit_limits = limits.get(block.unit_id, DEFAULT_LIMITS)
            is_bit = block.table.is_bit
            limit = unit_limits.max_bits if is_bit else unit_limits.max_registers
            gap = gaps[is_bit]
            low = max(block.address - gap, block.end - limit)
            high = min(block.end + gap, block.address + limit)
            uids = starting_in(block.unit_id, block.table, low, high)
            if not uids:
                continue
            # one comprehension per block (the hot loop of a cycle); a register near
            # two blocks is found twice and kept once, in first-found order
            found.update(
                (uid, reg)
                for uid in uids
                if (reg := regs[uid]).next_due - now
                <= fraction * reg.effective_interval
                and uid not in due
                and reg.enabled
                and reg.quarantined_until is None
                and reg.spec.end <= high
            )
        due.update(found)
        return list(found.values())
