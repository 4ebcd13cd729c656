"""Planner: turn the registers due now into the cheapest set of block reads.

Every request on a Modbus connection costs a fixed overhead (request and response
framing, device turnaround, gateway latency, inter-frame silence) plus a cost per
register (or bit) transferred. Reading through a gap of unwanted registers is worth
it exactly when the gap costs less than a new request. Other systems hard-code that
trade-off as a fixed gap (Telegraf 50, HA core 16, ioBroker 10); here the gap falls
out of a :class:`CostModel`, which the scheduler can fit to the measured timing of
the connection (:meth:`CostModel.from_timing`, :meth:`CostModel.break_even_gap`).

:func:`plan_reads` is exact: per (unit, table) it solves the partition problem by
dynamic programming over the due intervals sorted by address, within the device's
limits (:class:`DeviceLimits`) and never across addresses learned to be illegal
(``holes``). See :func:`plan_reads` for the algorithm and its guarantees.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from itertools import accumulate
import math

from .errors import EngineUsageError
from .registers import MAX_ADDRESS, RegisterSpec, Table

#: Largest read the Modbus protocol allows: 125 words (FC 3/4), 2000 bits (FC 1/2).
PROTOCOL_MAX_REGISTERS = 125
PROTOCOL_MAX_BITS = 2000

#: What :meth:`CostModel.break_even_gap` answers when transfer is free: any gap.
UNBOUNDED_GAP = MAX_ADDRESS + 1

# Relative slack under which two costs are an exact tie hidden by float rounding.
_TIE_TOLERANCE = 1e-9

GroupKey = tuple[int, Table]
Span = tuple[int, int]  # [start, end) in registers or bits


def _check_cost(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite, non-negative number."""
    if not (math.isfinite(value) and value >= 0):
        raise EngineUsageError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class CostModel:
    """Cost of reads on one connection: a fixed price per request plus per unit moved.

    The unit is arbitrary but shared (seconds of bus time when built by
    :meth:`from_timing`). ``per_register`` prices a 16-bit word of a holding or
    input table, ``per_bit`` one coil or discrete input.
    """

    request_overhead: float = 1.0
    per_register: float = 0.02
    per_bit: float = 0.0015

    def __post_init__(self) -> None:
        """Refuse costs that are negative or not finite."""
        _check_cost("request_overhead", self.request_overhead)
        _check_cost("per_register", self.per_register)
        _check_cost("per_bit", self.per_bit)

    @classmethod
    def from_timing(
        cls, overhead_s: float, per_register_s: float, per_bit_s: float | None = None
    ) -> CostModel:
        """Build a model from measured timings of a connection, in seconds.

        Measured estimates (e.g. a least-squares fit of latency against size) can
        come out slightly negative from noise: they are clamped to 0. ``per_bit_s``
        defaults to a sixteenth of ``per_register_s`` (bits travel packed).
        Raises ``ValueError`` for NaN or infinite timings.
        """
        if per_bit_s is None:
            per_bit_s = per_register_s / 16
        for name, value in (
            ("overhead_s", overhead_s),
            ("per_register_s", per_register_s),
            ("per_bit_s", per_bit_s),
        ):
            if not math.isfinite(value):
                raise EngineUsageError(f"{name} must be a finite number, got {value!r}")
        return cls(max(overhead_s, 0.0), max(per_register_s, 0.0), max(per_bit_s, 0.0))

    def per_unit(self, table: Table) -> float:
        """Cost of moving one register (word tables) or one bit (bit tables)."""
        return self.per_bit if table.is_bit else self.per_register

    def block_cost(self, table: Table, count: int) -> float:
        """Cost of one request reading ``count`` registers or bits of ``table``."""
        return self.request_overhead + self.per_unit(table) * count

    def break_even_gap(self, *, bits: bool = False) -> int:
        """Largest gap of unwanted registers (or bits) still worth reading through.

        Two due values separated by ``gap`` unwanted addresses cost the same in one
        request or two when ``gap * per_unit == request_overhead``; the planner reads
        through smaller gaps and splits larger ones, limits and holes permitting. At
        the gap itself both plans cost the same; a tie hidden by float rounding
        (overhead 0.3, per register 0.1: ``0.1 * 3`` rounds above 0.3) counts as a
        tie. Returns :data:`UNBOUNDED_GAP` when transfer is free.
        """
        per_unit = self.per_bit if bits else self.per_register
        if per_unit == 0:
            return UNBOUNDED_GAP
        budget = self.request_overhead * (1 + _TIE_TOLERANCE)
        if budget / per_unit >= UNBOUNDED_GAP:
            return UNBOUNDED_GAP
        gap = math.floor(budget / per_unit)
        # Correct the float division so the answer agrees with multiplication.
        while gap > 0 and per_unit * gap > budget:
            gap -= 1
        while gap < UNBOUNDED_GAP and per_unit * (gap + 1) <= budget:
            gap += 1
        return gap


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """The largest read a device accepts, in registers (FC 3/4) and bits (FC 1/2)."""

    max_registers: int = PROTOCOL_MAX_REGISTERS
    max_bits: int = PROTOCOL_MAX_BITS

    def __post_init__(self) -> None:
        """Refuse limits outside what the Modbus protocol allows."""
        if not 1 <= self.max_registers <= PROTOCOL_MAX_REGISTERS:
            raise EngineUsageError(
                f"max_registers must be 1-{PROTOCOL_MAX_REGISTERS}, got {self.max_registers}"
            )
        if not 1 <= self.max_bits <= PROTOCOL_MAX_BITS:
            raise EngineUsageError(
                f"max_bits must be 1-{PROTOCOL_MAX_BITS}, got {self.max_bits}"
            )

    def for_table(self, table: Table) -> int:
        """Return the read limit that applies to ``table``."""
        return self.max_bits if table.is_bit else self.max_registers


DEFAULT_LIMITS = DeviceLimits()


@dataclass(frozen=True, slots=True)
class BlockRead:
    """One read request: ``count`` registers (or bits) of ``table`` from ``address``.

    ``keys`` lists the uids (``RegisterSpec.uid``) of the specs decoded from this
    block, due ones and riders alike, each wholly inside ``[address, address +
    count)``, ordered by address.
    """

    unit_id: int
    table: Table
    address: int
    count: int
    keys: tuple[str, ...] = field(default=())

    @property
    def end(self) -> int:
        """First address after the block."""
        return self.address + self.count


def plan_cost(blocks: Iterable[BlockRead], cost: CostModel) -> float:
    """Total cost of a plan under ``cost``: overhead per request plus transfer."""
    return sum(cost.block_cost(block.table, block.count) for block in blocks)


# -- public entry point -------------------------------------------------------


def plan_reads(
    due: Iterable[RegisterSpec],
    *,
    riders: Iterable[RegisterSpec] = (),
    cost: CostModel = CostModel(),
    limits: Mapping[int, DeviceLimits] | None = None,
    holes: Mapping[tuple[int, Table], AbstractSet[int]] | None = None,
    merge: bool = True,
) -> list[BlockRead]:
    """Plan the block reads for the specs ``due`` now, at minimum total cost.

    Total cost is ``requests * request_overhead + transferred * per_unit``. Per
    (unit, table), with ``merge`` on, the plan is optimal among all sets of reads
    that each stay within the device limit (``limits[unit_id]``, default
    :class:`DeviceLimits`) and contain no address of ``holes[(unit_id, table)]``.

    Algorithm: due intervals ``[address, end)`` contained in another due interval
    are dropped (reading the container reads them), leaving intervals whose starts
    and ends both strictly increase. Some optimal plan reads contiguous runs of
    them (an exchange argument; the tests check it against brute force over all
    set partitions), so with ``best[j]`` the cheapest plan for intervals ``0..j``::

        best[j] = min_i  best[i-1] + overhead + per_unit * (end[j] - start[i])

    over the ``i`` whose span fits the limit and holds no hole. Those ``i`` form a
    window whose bounds only move forward, so a monotone deque gives each minimum
    in amortised O(1): O(n log n) per cycle including the sort, O(n) memory. Gaps
    dearer than a request first cut the problem into independent segments, and a
    segment that fits the limit without a hole is one read with no DP at all (see
    :func:`optimal_spans`).

    A due spec that cannot be read within the rules (it contains a hole address
    or is larger than the limit) is not skipped: it gets a read of its own,
    exactly its interval, and is never merged with others, so the device answers
    for it (the scheduler sees the error). Riders never join such a read.

    ``riders`` (specs not yet due) are listed in ``keys`` of a block when they lie
    wholly inside it; blocks are never extended for them. ``merge=False`` gives one
    read per due spec (the HA core baseline). Every key, due or rider, appears in
    exactly one block: the first, in output order, that wholly contains it. Specs
    are identified by ``RegisterSpec.uid`` (``"<unit_id>.<key>"``), which is what
    ``keys`` lists; a repeated uid is planned once (the first spec wins). Output is ordered by
    (unit, table, address, count).
    """
    due_specs = _unique(due, skip=frozenset())
    due_groups = _group(due_specs)
    rider_groups = _group(_unique(riders, skip=due_specs.keys()), due_groups.keys())
    limits = limits or {}
    holes = holes or {}
    planned: list[BlockRead] = []
    for group in sorted(due_groups):
        unit_id, table = group
        context = _GroupContext(
            unit_id=unit_id,
            table=table,
            limit=limits.get(unit_id, DEFAULT_LIMITS).for_table(table),
            holes=sorted(holes.get(group, ())),
            overhead=cost.request_overhead,
            per_unit=cost.per_unit(table),
        )
        planned.extend(
            context.plan(due_groups[group], rider_groups.get(group, []), merge=merge)
        )
    return planned


# -- grouping -------------------------------------------------------------------

# A spec reduced to what planning needs: (start, end, uid). Plain tuples keep the
# per-cycle hot path fast and sort natively by address, then end, then key.
Item = tuple[int, int, str]


def _unique(
    specs: Iterable[RegisterSpec], skip: AbstractSet[str]
) -> dict[str, RegisterSpec]:
    """Specs by uid, the first of a repeated uid winning; uids in ``skip`` left out."""
    unique = {spec.uid: spec for spec in reversed(list(specs))}
    for key in skip & unique.keys():
        del unique[key]
    return unique


def _group(
    specs: Mapping[str, RegisterSpec], only: AbstractSet[GroupKey] | None = None
) -> dict[GroupKey, list[Item]]:
    """Items by (unit, table), each list sorted; with ``only``, just those groups."""
    groups: dict[GroupKey, list[Item]] = {}
    get = groups.get
    for uid, spec in specs.items():
        group = (spec.unit_id, spec.table)
        items = get(group)
        if items is None:
            if only is not None and group not in only:
                continue
            items = groups[group] = []
        address = spec.address
        items.append((address, address + spec.size, uid))
    for items in groups.values():
        items.sort()
    return groups


@dataclass(frozen=True, slots=True)
class _GroupContext:
    """Planning of one (unit, table): its limit, holes and cost per request/unit."""

    unit_id: int
    table: Table
    limit: int
    holes: list[int]
    overhead: float
    per_unit: float

    def plan(
        self, due: list[Item], riders: list[Item], *, merge: bool
    ) -> list[BlockRead]:
        """Blocks for this group (items sorted), ordered by (address, count)."""
        readable, unreadable = self._split(due)
        if merge:
            spans = optimal_spans(
                proper_intervals([(start, end) for start, end, _ in readable]),
                limit=self.limit,
                holes=self.holes,
                overhead=self.overhead,
                per_unit=self.per_unit,
            )
            # Both lists are sorted: timsort merges the two runs in linear time.
            keyed = _assign(spans, sorted(readable + riders))
        else:
            spans = [(start, end) for start, end, _ in readable]
            keyed = _assign(spans, riders, first=[[key] for _, _, key in readable])
        if unreadable:
            # merged: one read per distinct interval; merge=False: one read per spec
            keyed.extend(
                _solo(unreadable) if merge else [(a, b, [k]) for a, b, k in unreadable]
            )
            keyed.sort(key=lambda block: (block[0], block[1]))
        unit_id, table = self.unit_id, self.table
        return [
            BlockRead(unit_id, table, start, end - start, tuple(keys))
            for start, end, keys in keyed
        ]

    def _split(self, items: list[Item]) -> tuple[list[Item], list[Item]]:
        """Items that can be read within the rules, and those that cannot."""
        limit, holes = self.limit, self.holes
        if not holes and all(end - start <= limit for start, end, _ in items):
            return items, []
        readable: list[Item] = []
        unreadable: list[Item] = []
        for item in items:
            start, end, _ = item
            ok = end - start <= limit and not _has_hole(holes, start, end)
            (readable if ok else unreadable).append(item)
        return readable, unreadable


def _has_hole(holes: Sequence[int], start: int, end: int) -> bool:
    """Whether a sorted hole list has an address inside ``[start, end)``."""
    index = bisect_left(holes, start)
    return index < len(holes) and holes[index] < end


Keyed = tuple[int, int, list[str]]  # a block being built: start, end, keys


def _solo(items: list[Item]) -> list[Keyed]:
    """One block per distinct interval of unreadable items, holding just them."""
    solo: dict[Span, list[str]] = {}
    for start, end, key in items:
        solo.setdefault((start, end), []).append(key)
    return [(start, end, keys) for (start, end), keys in solo.items()]


def _assign(
    spans: list[Span], items: list[Item], *, first: list[list[str]] | None = None
) -> list[Keyed]:
    """Put each item in the first span (by start, then end) wholly containing it.

    ``spans`` must be sorted by start, then end. The first containing span is the
    first whose running maximum end reaches the item's end, if it starts early
    enough: earlier spans end too soon, later ones start too late. Items inside
    no span are left out. ``first`` seeds the key lists.
    """
    keys = first if first is not None else [[] for _ in spans]
    reach = list(accumulate([end for _, end in spans], max))
    count = len(spans)
    for start, end, key in items:
        index = bisect_left(reach, end)
        if index < count and spans[index][0] <= start:
            keys[index].append(key)
    return [
        (start, end, names) for (start, end), names in zip(spans, keys, strict=True)
    ]


# -- the exact algorithm --------------------------------------------------------


def proper_intervals(spans: Iterable[Span]) -> list[Span]:
    """Return the spans not contained in another one, sorted (starts and ends rise).

    Reading a span reads everything inside it, so contained spans never change
    the optimum. Linear after the sort (and the sort is linear on sorted input).
    """
    result: list[Span] = []
    reach = -1
    for start, end in sorted(spans):
        if end > reach:
            if result and result[-1][0] == start:
                result[-1] = (start, end)  # same start, longer: contains the last one
            else:
                result.append((start, end))
            reach = end
    return result


def optimal_spans(
    intervals: Sequence[Span],
    *,
    limit: int,
    holes: Sequence[int],
    overhead: float,
    per_unit: float,
) -> list[Span]:
    """Cheapest reads covering ``intervals`` (output of :func:`proper_intervals`).

    Each interval must itself fit ``limit`` and hold no address of the sorted
    ``holes``. Returns the chosen reads as sorted ``[start, end)`` spans.

    Fast path: a gap that costs more than a request (``per_unit * gap >
    overhead``) is never read through, since splitting a read there is strictly
    cheaper, so such gaps cut the problem into independent segments. Inside a
    segment every gap is worth reading through, so a segment that fits the limit
    and holds no hole is one read; only the others need the dynamic programme.
    """
    spans: list[Span] = []
    for segment in _segments(intervals, overhead, per_unit):
        first, last = segment[0][0], segment[-1][1]
        if last - first <= limit and not _has_hole(holes, first, last):
            spans.append((first, last))
        else:
            spans.extend(_dp(segment, limit, holes, overhead, per_unit))
    return spans


def _segments(
    intervals: Sequence[Span], overhead: float, per_unit: float
) -> list[list[Span]]:
    """Split sorted proper intervals at every gap that costs more than a request."""
    segments: list[list[Span]] = []
    current: list[Span] = []
    reach = 0
    for interval in intervals:
        if current and per_unit * (interval[0] - reach) > overhead:
            segments.append(current)
            current = []
        current.append(interval)
        reach = interval[1]
    if current:
        segments.append(current)
    return segments


def _dp(
    intervals: Sequence[Span],
    limit: int,
    holes: Sequence[int],
    overhead: float,
    per_unit: float,
) -> list[Span]:
    """Solve the dynamic programme over proper intervals with a sliding-window minimum.

    ``best[j + 1] = min_i value[i] + overhead + per_unit * end[j]`` where
    ``value[i] = best[i] - per_unit * start[i]`` and ``i`` runs over the window of
    first intervals allowed for a read ending at ``j`` (span within ``limit``, no
    hole). Both window bounds only move forward, so a deque of candidates with
    increasing ``value`` yields each minimum in amortised O(1). Among equally
    cheap candidates the earliest wins (fewer, longer reads): deterministic.
    """
    count = len(intervals)
    starts = [start for start, _ in intervals]
    ends = [end for _, end in intervals]
    best = [0.0] * (count + 1)  # best[j + 1]: cheapest plan for intervals 0..j
    choice = [0] * count  # first interval of the read that ends at interval j
    value = [0.0] * count
    window: deque[int] = deque()
    low = 0  # first i allowed for the current j
    hole = bisect_left(holes, starts[0])  # holes below the current end (from here on)
    for j in range(count):
        value[j] = best[j] - per_unit * starts[j]
        while window and value[window[-1]] > value[j]:
            window.pop()
        window.append(j)
        end = ends[j]
        floor = end - limit
        while hole < len(holes) and holes[hole] < end:
            hole += 1
        if hole and holes[hole - 1] >= floor:
            floor = holes[hole - 1] + 1
        while starts[low] < floor:
            low += 1
        while window[0] < low:
            window.popleft()
        first = window[0]
        choice[j] = first
        best[j + 1] = value[first] + overhead + per_unit * end
    return _trace(choice, starts, ends)


def _trace(choice: list[int], starts: list[int], ends: list[int]) -> list[Span]:
    """Walk the DP choices back from the last interval into sorted spans."""
    spans: list[Span] = []
    j = len(choice) - 1
    while j >= 0:
        first = choice[j]
        spans.append((starts[first], ends[j]))
        j = first - 1
    spans.reverse()
    return spans
