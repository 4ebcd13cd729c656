"""A cycle's plan: the due registers as block reads, plus neighbours due soon.

The optimal planner (``planner.plan_reads``) runs with the connection's cost model
(configured, or fitted to measured latencies), the units' block limits in force
(a unit whose retry is due tries a larger read) and the learned holes. When
merging, registers near the planned blocks that are close to due are pulled into
the plan if that adds no request: they would cost a request of their own later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set as AbstractSet

from .core import EngineCore
from .planner import (
    DEFAULT_LIMITS,
    BlockRead,
    CostModel,
    DeviceLimits,
    plan_cost,
    plan_reads,
)
from .registers import Table
from .registry import RegisterState

# a neighbour this close to due (share of its interval) is read early
EARLY_FRACTION = 0.5
# free riders: a block grows over a neighbour when the extra transfer costs less
# than this share of a request times the share of its interval gone by (0: off;
# per engine: ``EngineConfig.rider_value``). Measured in the benchmark (README,
# Performance): 1 lowers time out of tolerance on every scenario for a little more
# bus time; larger values buy more freshness for more bus time; 2.25 since the
# early neighbours pay for their words (EARLY_VALUE): together fresher for less bus
# time on the serial benchmarks, TCP unchanged (README, Engine ideas of part 2; 2
# lost install200's optimizer gate, 2.5 wrongdefaults' per-entity bus time).
RIDER_VALUE = 2.25
# a nearly due neighbour joins a read when the neighbours' worth (this share of a
# request times the share of their interval gone by, summed) pays for the words
# they add: on a slow serial line a far neighbour waits for its own tick
EARLY_VALUE = 1.0
_DEFAULT_COST = CostModel()
# group plans kept for due sets seen before (aligned intervals make due sets recur)
PLAN_CACHE_SIZE = 4096


def _group_key(
    group: int, mask: int, *, overhead: float, per_unit: float, limit: int, merge: bool
) -> tuple[object, ...]:
    """Return the cache key of a group's plan: every input but the learned holes."""
    return (group, mask, overhead, per_unit, limit, merge)


def _masks_of(due: Iterable[RegisterState]) -> dict[int, int]:
    """Return registers as a bit mask per group (``RegisterState.group``, ``bit``)."""
    masks: dict[int, int] = {}
    get = masks.get
    for reg in due:
        masks[reg.group] = get(reg.group, 0) | reg.bit
    return masks


def stale_share(reg: RegisterState, now: float) -> float:
    """Return the share of ``reg``'s interval gone by since its last read, 0..1.

    What reading it now is worth, in requests, before the rider or early value: a
    whole request when it is due (or never read), nothing when it was just read or
    is disabled. The free riders' walk inlines the same arithmetic (a hot path).
    """
    if not reg.enabled:
        return 0.0
    last_read, interval = reg.last_read, reg.effective_interval
    if last_read is None or interval <= 0:
        return 1.0
    return min(1.0, max(0.0, (now - last_read) / interval))


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
        registry = core.registry
        self._groups = registry.groups
        self._uids_of = registry.uids_of
        self._masks_of_uids = registry.masks_of
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
        return self._plan(_masks_of(due), limits, self.cost_model())

    def _plan(
        self,
        masks: Mapping[int, int],
        limits: Mapping[int, DeviceLimits],
        cost: CostModel,
    ) -> list[BlockRead]:
        """:meth:`plan` of the due set ``masks`` (a bit mask per register group).

        ``plan_reads`` plans each (unit, table) on its own, so a plan is the plans
        of its groups in group order, and a group's plan is a pure function of its
        due registers (its mask), the request overhead, its cost per register (or
        bit; a unit's allowed gap sets it, see ``Tuning.unit_max_gap``), its unit's
        limit, merging and its learned holes. All but the holes are the key of a
        group's cached plan (:func:`_group_key`); the cache is dropped when the
        holes change (a new mapping). ``cache_hits`` counts the plans answered
        wholly from the cache.
        """
        core = self._core
        holes = core.holes.by_table
        cache = self._cache
        if holes is not self._cache_holes:
            cache.clear()
            self._cache_holes = holes
        gaps = core.tuning.unit_max_gap
        merge = core.config.merge_reads
        overhead = cost.request_overhead
        groups = self._groups
        blocks: list[BlockRead] = []
        missed = False
        for group in sorted(masks):
            mask = masks[group]
            unit, table = groups[group]
            unit_limits = limits.get(unit, DEFAULT_LIMITS)
            if table.is_bit:
                limit, per_unit = unit_limits.max_bits, cost.per_bit
            else:
                limit = unit_limits.max_registers
                gap = gaps.get(unit) if gaps else None
                # an allowed gap prices a register so that the break-even gap is it
                per_unit = (
                    cost.per_register if gap is None else overhead / max(gap, 0.5)
                )
            key = _group_key(
                group,
                mask,
                overhead=overhead,
                per_unit=per_unit,
                limit=limit,
                merge=merge,
            )
            cached = cache.get(key)
            if cached is None:
                missed = True
                specs = [self._regs[uid].spec for uid in self._uids_of(group, mask)]
                group_cost = CostModel(overhead, per_unit, per_unit)
                cached = tuple(
                    plan_reads(
                        specs, cost=group_cost, limits=limits, holes=holes, merge=merge
                    )
                )
                if len(cache) >= PLAN_CACHE_SIZE:
                    cache.clear()
                cache[key] = cached
            blocks += cached
        if not missed:
            self.cache_hits += 1
        return blocks

    def plan_with_early(
        self,
        due: list[RegisterState],
        now: float,
        uids: AbstractSet[str] | None = None,
    ) -> list[BlockRead]:
        """Plan the due registers, pulling in neighbours due soon when that is free.

        A neighbour joins when it adds no request (it would cost a request of its own
        later) and the neighbours together are worth the words they add
        (:meth:`_early_pays`). ``uids``: the uids of ``due`` when the caller has
        them as a set; the schedule's ``popped`` set brings its bit masks (``popped_masks``), so
        the due set is not gathered from the registers again.
        """
        block_limits = self._core.limits
        trial = block_limits.trial((reg.spec for reg in due), now)
        limits = block_limits.effective(trial)
        cost = self.cost_model()
        schedule = self._core.schedule
        if uids is not None and uids is schedule.popped:
            masks: Mapping[int, int] = schedule.popped_masks
        else:
            masks = self._masks_of_uids(
                [reg.spec.uid for reg in due] if uids is None else uids
            )
        blocks = self._plan(masks, limits, cost)
        self.last_tables = {(block.unit_id, block.table) for block in blocks}
        if not (
            self._core.config.adaptive and self._core.config.merge_reads and blocks
        ):
            return block_limits.settle(trial, blocks, now)
        early = self._early_neighbours(
            blocks, now, block_limits.effective() if trial else limits, cost
        )
        if early:
            merged_masks = dict(masks)
            get = merged_masks.get
            for group, mask in early.items():
                merged_masks[group] = get(group, 0) | mask
            if merged_masks != masks:  # some joined that were not due yet
                merged = self._plan(merged_masks, limits, cost)
                if len(merged) < len(blocks) or (
                    len(merged) == len(blocks)
                    and self._early_pays(
                        blocks, merged, early=early, masks=masks, now=now, cost=cost
                    )
                ):
                    blocks = merged
        if self.rider_value > 0 and self._core.config.piggyback:
            blocks = self._with_free_riders(blocks, now, limits, cost)
        return block_limits.settle(trial, blocks, now)

    def _early_pays(
        self,
        blocks: Sequence[BlockRead],
        merged: Sequence[BlockRead],
        *,
        early: Mapping[int, int],
        masks: Mapping[int, int],
        now: float,
        cost: CostModel,
    ) -> bool:
        """Return whether the early neighbours of ``merged`` are worth its extra words.

        ``merged`` has the requests of ``blocks`` plus the nearly due neighbours
        (``early`` less the due ``masks``). Each neighbour is worth
        :data:`EARLY_VALUE` times a request times the share of its interval gone by
        (the free riders' measure); the merged plan is taken when that pays for the
        bus time it adds under ``cost``. On a fast link (TCP) words are nearly free
        and every neighbour joins as before; on a slow serial line a neighbour
        that widens a read by more than it is worth waits for its own tick.
        """
        extra = plan_cost(merged, cost) - plan_cost(blocks, cost)
        if extra <= 0:
            return True
        worth = EARLY_VALUE * cost.request_overhead
        regs = self._regs
        value = sum(
            worth * stale_share(regs[uid], now)
            for group, mask in early.items()
            for uid in self._uids_of(group, mask & ~masks.get(group, 0))
        )
        return extra <= value

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
                # stale_share inlined (a quarantined one ended the walk above)
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
                # stale_share inlined (a quarantined one ended the walk above)
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
        limits: Mapping[int, DeviceLimits],
        cost: CostModel,
    ) -> dict[int, int]:
        """Return the registers near the planned blocks that are nearly due (masks).

        Nearly due: at most the early fraction of their interval is left, enabled
        and not quarantined (found in the schedule a due time at a time, see
        :meth:`Schedule.nearly_due`). Near: starting and ending within the
        break-even gap of the block and within the device limit. The registers due
        now are not scheduled, so none of them is nearly due. A block's window is
        a run of its group's bits (registers by address), so the search is mask
        arithmetic.
        """
        found: dict[int, int] = {}
        nearly = self._core.schedule.nearly_due_masks(now, self._early_fraction)
        if not nearly:
            return found
        gaps = (cost.break_even_gap(bits=False), cost.break_even_gap(bits=True))
        window, regs = self._core.registry.window, self._regs
        for block in blocks:
            unit_limits = limits.get(block.unit_id, DEFAULT_LIMITS)
            is_bit = block.table.is_bit
            limit = unit_limits.max_bits if is_bit else unit_limits.max_registers
            gap = gaps[is_bit]
            low = max(block.address - gap, block.end - limit)
            high = min(block.end + gap, block.address + limit)
            span = window(block.unit_id, block.table, low, high)
            if span is None:
                continue
            group, first, end = span
            near = nearly.get(group, 0) >> first
            if not near:
                continue
            near = (near & ((1 << (end - first)) - 1)) << first
            if not near:
                continue
            # only those starting within the table's largest size of ``high`` can
            # end past it
            edge = high - self._max_size[(block.unit_id, block.table)] + 1
            edge_span = window(block.unit_id, block.table, edge, high)
            uids = self._core.registry.group_uids[group]
            for place in range(max(edge_span[1] if edge_span else end, first), end):
                if near >> place & 1 and regs[uids[place]].spec.end > high:
                    near ^= 1 << place
            found[group] = found.get(group, 0) | near
        return found
