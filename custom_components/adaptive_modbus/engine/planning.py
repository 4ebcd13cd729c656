"""A cycle's plan: the due registers as block reads, plus neighbours due soon.

The optimal planner (``planner.plan_reads``) runs with the connection's cost model
(configured, or fitted to measured latencies), the units' block limits in force
(a unit whose retry is due tries a larger read) and the learned holes. When
merging, registers near the planned blocks that are close to due are pulled into
the plan if that adds no request: they would cost a request of their own later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set as AbstractSet
from dataclasses import replace

from .core import EngineCore
from .planner import DEFAULT_LIMITS, BlockRead, CostModel, DeviceLimits, plan_reads
from .registers import Table
from .registry import RegisterState

# a neighbour this close to due (share of its interval) is read early
EARLY_FRACTION = 0.5
# free riders: a block grows over a neighbour when the extra transfer costs less
# than this share of a request times the share of its interval gone by (0: off;
# per engine: ``EngineConfig.rider_value``). Measured in the benchmark (README,
# Performance): 1 lowers time out of tolerance on every scenario for a little more
# bus time; larger values buy more freshness for more bus time.
RIDER_VALUE = 1.0
_DEFAULT_COST = CostModel()
# plans kept for due sets seen before (aligned intervals make due sets recur)
PLAN_CACHE_SIZE = 256


class Planning:
    """Plans block reads for a set of due registers."""

    def __init__(
        self,
        core: EngineCore,
        *,
        early_fraction: float = EARLY_FRACTION,
        rider_value: float | None = None,
    ) -> None:
        """Plan reads for the registers of ``core``.

        ``rider_value``: see RIDER_VALUE; None: the configuration's
        (``EngineConfig.rider_value``), else RIDER_VALUE.
        """
        self._core = core
        if rider_value is None:
            rider_value = core.config.rider_value
        self.rider_value = RIDER_VALUE if rider_value is None else rider_value
        self._regs = core.registry.regs
        self._cost = core.bus.cost
        self._early_fraction = early_fraction
        # plan_reads is a pure function of its inputs: a due set that recurs (the
        # power-of-two ladder makes them recur every max interval) reuses its plan.
        # The cache is dropped when the learned holes change (a new mapping).
        self._cache: dict[tuple[object, ...], tuple[BlockRead, ...]] = {}
        self._cache_holes: object = None
        # the largest register of each (unit, table): how far before a window's end
        # a register can start and still end past it
        self._max_size: dict[tuple[int, Table], int] = {}
        # the first and last start address of each (unit, table)
        self._bounds: dict[tuple[int, Table], tuple[int, int]] = {}
        for reg in self._regs.values():
            spec = reg.spec
            group = (spec.unit_id, spec.table)
            self._max_size[group] = max(self._max_size.get(group, 1), spec.size)
            low, high = self._bounds.get(group, (spec.address, spec.address))
            self._bounds[group] = (min(low, spec.address), max(high, spec.address))
        self.cache_hits = 0
        # the (unit, table) pairs the last planned cycle reads (per-unit cadence)
        self.last_tables: set[tuple[int, Table]] = set()

    @property
    def early_fraction(self) -> float:
        """Share of its interval a neighbour may have left to join a read early."""
        return self._early_fraction

    @early_fraction.setter
    def early_fraction(self, value: float) -> None:
        self._early_fraction = value

    def cost_model(self) -> CostModel:
        """Return the cost model the planner uses now (configured, fitted, or default)."""
        return (
            self._core.tuning.cost
            or self._core.config.cost
            or self._cost.model()
            or _DEFAULT_COST
        )

    def plan(
        self,
        due: Sequence[RegisterState],
        limits: Mapping[int, DeviceLimits] | None = None,
    ) -> list[BlockRead]:
        """Block reads of ``due`` (``limits``: per unit; default: those in force)."""
        limits = self._core.limits.effective() if limits is None else limits
        uids = frozenset([reg.spec.uid for reg in due])
        return self._plan(uids, limits, self.cost_model())

    def _plan(
        self,
        uids: frozenset[str],
        limits: Mapping[int, DeviceLimits],
        cost: CostModel,
    ) -> list[BlockRead]:
        """:meth:`plan` of the registers ``uids``, with the cost model at hand.

        The plan is a pure function of the due set, the cost model, the limits,
        the units' allowed gaps, merging and the learned holes (the order of the
        due set does not matter: the planner sorts). All but the holes are the
        cache key; the cache is dropped when the holes change (a new mapping).
        """
        gaps = self._core.tuning.unit_max_gap
        holes = self._core.holes.by_table
        if holes is not self._cache_holes:
            self._cache.clear()
            self._cache_holes = holes
        key = (
            uids,
            cost,
            tuple(sorted(limits.items())) if limits else (),
            tuple(sorted(gaps.items())) if gaps else (),
            self._core.config.merge_reads,
        )
        cached = self._cache.get(key)
        if cached is not None:
            self.cache_hits += 1
            return list(cached)
        regs = self._regs
        due = [regs[uid] for uid in uids]
        if gaps:
            blocks = self._plan_with_gaps(due, limits, gaps, cost)
        else:
            blocks = plan_reads(
                [reg.spec for reg in due],
                cost=cost,
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
        cost: CostModel,
    ) -> list[BlockRead]:
        """Plan units with an allowed gap (``Tuning.unit_max_gap``) on their own.

        A unit's allowed gap sets its cost model's per-register price so that the
        break-even gap is that many registers.
        """
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

    def plan_with_early(
        self,
        due: list[RegisterState],
        now: float,
        uids: AbstractSet[str] | None = None,
    ) -> list[BlockRead]:
        """Plan the due registers, pulling in neighbours due soon when that is free.

        A neighbour joins when it adds no request (it would cost a request of its own
        later). ``uids``: the uids of ``due`` when the caller has them as a set
        (the schedule does), so they are not gathered from the registers again.
        """
        block_limits = self._core.limits
        trial = block_limits.trial((reg.spec for reg in due), now)
        limits = block_limits.effective(trial)
        cost = self.cost_model()
        due_set = frozenset([reg.spec.uid for reg in due] if uids is None else uids)
        blocks = self._plan(due_set, limits, cost)
        self.last_tables = {(block.unit_id, block.table) for block in blocks}
        if not (
            self._core.config.adaptive and self._core.config.merge_reads and blocks
        ):
            return block_limits.settle(trial, blocks, now)
        due_uids = set(due_set)  # the search adds to it: a copy of its own
        early = self._early_neighbours(
            blocks,
            now,
            due_uids,
            block_limits.effective() if trial else limits,
            cost,
        )
        if early:
            # the search added the early uids to due_uids
            merged = self._plan(frozenset(due_uids), limits, cost)
            if len(merged) <= len(blocks):
                blocks = merged
        if self.rider_value > 0 and self._core.config.piggyback:
            blocks = self._with_free_riders(blocks, now, limits, cost)
        return block_limits.settle(trial, blocks, now)

    def _with_free_riders(
        self,
        blocks: list[BlockRead],
        now: float,
        limits: Mapping[int, DeviceLimits],
        cost: CostModel,
    ) -> list[BlockRead]:
        """Grow each block over neighbours whose freshness is worth the transfer.

        A request goes out anyway; reading a neighbour in it costs only the extra
        registers (or bits) moved. A neighbour's read is worth ``rider_value`` times a
        request times the share of its interval gone by since its last read (a whole
        request when it is due, nothing when it was just read). Going outwards from
        the block, the block grows to a neighbour's end as soon as the value of the
        neighbours it would cover pays for the extra transfer, and only to a
        neighbour worth something itself. The neighbours covered by one step are
        worth at most ``rider_value`` requests together (read together when due,
        they would cost one request), so no step reads through more than that.
        Never past the device limit, a learned hole, a quarantined register or the
        next block (nor the previous one as grown). On TCP, where a register costs a
        tiny share of a request, that is about the whole unit; on a slow serial line
        only close neighbours that are getting stale. The observer refreshes every
        register inside the grown span (riders).
        """
        regs, starting_in = self._regs, self._core.registry.starting_in
        holes = self._core.holes.by_table
        bounds = self._bounds
        worth = self.rider_value * cost.request_overhead
        out: list[BlockRead] = []
        last = len(blocks) - 1
        for index, block in enumerate(blocks):
            unit_id, table = block.unit_id, block.table
            start = block.address
            end = start + block.count
            first_start, last_start = bounds[(unit_id, table)]
            if start <= first_start and end > last_start:
                out.append(block)  # every register of the table is inside: none rides
                continue
            unit_limits = limits.get(unit_id, DEFAULT_LIMITS)
            is_bit = table.is_bit
            limit = unit_limits.max_bits if is_bit else unit_limits.max_registers
            per_unit = cost.per_bit if is_bit else cost.per_register
            hole_set = holes.get((unit_id, table), ())
            prev_end = -1
            # the previous block as grown: a neighbour rides in one block only
            if out and out[-1].unit_id == unit_id and out[-1].table is table:
                prev_end = out[-1].end
            next_start = 1 << 20
            if index < last:
                following = blocks[index + 1]
                if following.unit_id == unit_id and following.table is table:
                    next_start = following.address
            # outwards to the right (registers starting at or after the block's end),
            # then to the left (those starting before it)
            after = starting_in(unit_id, table, end, start + limit)
            before = starting_in(unit_id, table, end - limit, start)
            if not after and not before:
                out.append(block)
                continue
            value = 0.0
            right: list[str] = []
            pending: list[str] = []
            for uid in after or ():
                reg = regs[uid]
                spec = reg.spec
                if spec.address < end:
                    continue
                spec_end = spec.end
                if (
                    reg.quarantined_until is not None
                    or spec_end - start > limit
                    or spec_end > next_start
                    or (hole_set and any(a in hole_set for a in range(end, spec_end)))
                ):
                    break
                # the stale share, 0..1, inlined (a quarantined one ended the walk above)
                if not reg.enabled:
                    share = 0.0
                elif (last_read := reg.last_read) is None or (
                    interval := reg.effective_interval
                ) <= 0:
                    share = 1.0
                else:
                    share = (now - last_read) / interval
                    # min(1, max(0, share)) without the calls, same result
                    share = share if share > 0.0 else 0.0  # noqa: FURB136
                    share = share if share < 1.0 else 1.0  # noqa: FURB136
                if share > 0:
                    pending.append(uid)
                # neighbours read together later cost one request: worth no more
                value += worth * share
                value = worth if worth < value else value  # noqa: FURB136
                if share > 0 and per_unit * (spec_end - end) <= value:
                    end, value = spec_end, 0.0
                    right += pending
                    pending = []
            value = 0.0
            left: list[str] = []
            pending = []
            for uid in reversed(before or ()):
                reg = regs[uid]
                spec = reg.spec
                address = spec.address
                if address >= end or spec.end > start:
                    continue
                if (
                    reg.quarantined_until is not None
                    or end - address > limit
                    or address < prev_end
                    or (hole_set and any(a in hole_set for a in range(address, start)))
                ):
                    break
                # the stale share, 0..1, inlined (a quarantined one ended the walk above)
                if not reg.enabled:
                    share = 0.0
                elif (last_read := reg.last_read) is None or (
                    interval := reg.effective_interval
                ) <= 0:
                    share = 1.0
                else:
                    share = (now - last_read) / interval
                    # min(1, max(0, share)) without the calls, same result
                    share = share if share > 0.0 else 0.0  # noqa: FURB136
                    share = share if share < 1.0 else 1.0  # noqa: FURB136
                if share > 0:
                    pending.append(uid)
                # neighbours read together later cost one request: worth no more
                value += worth * share
                value = worth if worth < value else value  # noqa: FURB136
                if share > 0 and per_unit * (start - address) <= value:
                    start, value = address, 0.0
                    left += pending
                    pending = []
            if start == block.address and end == block.end:
                out.append(block)
            else:
                # riders are keys: read like the due ones (a failed grown block is
                # bisected over them, never blamed on addresses it did not list)
                keys = (*reversed(left), *block.keys, *right)
                out.append(BlockRead(unit_id, table, start, end - start, keys))
        return out

    def _early_neighbours(
        self,
        blocks: Sequence[BlockRead],
        now: float,
        due: set[str],
        limits: Mapping[int, DeviceLimits],
        cost: CostModel,
    ) -> int:
        """Add to ``due`` the registers near the planned blocks that are nearly due.

        Nearly due: at most the early fraction of their interval is left, enabled
        and not quarantined (found in the schedule a due time at a time, see
        :meth:`Schedule.nearly_due`). Near: starting and ending within the
        break-even gap of the block and within the device limit. Returns how many
        joined.
        """
        nearly = self._core.schedule.nearly_due(now, self._early_fraction)
        if not nearly:
            return 0
        count = len(due)
        gaps = (cost.break_even_gap(bits=False), cost.break_even_gap(bits=True))
        starting_in, regs = self._core.registry.starting_in, self._regs
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
            near = nearly.intersection(uids)
            if not near:
                continue
            # only those starting within the table's largest size of ``high`` can
            # end past it
            edge = high - self._max_size[(block.unit_id, block.table)] + 1
            for uid in starting_in(block.unit_id, block.table, edge, high) or ():
                if uid in near and regs[uid].spec.end > high:
                    near.discard(uid)
            due |= near
        return len(due) - count
