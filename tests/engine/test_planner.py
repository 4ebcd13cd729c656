"""Tests of the block-read planner: examples, and optimality against brute force."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set as AbstractSet
from itertools import combinations, pairwise
import math
import random

from hypothesis import given, settings, strategies as st
import pytest

from adaptive_modbus_engine.planner import (
    UNBOUNDED_GAP,
    BlockRead,
    CostModel,
    DeviceLimits,
    optimal_spans,
    plan_cost,
    plan_reads,
    proper_intervals,
)
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table

Holes = Mapping[tuple[int, Table], AbstractSet[int]]
Span = tuple[int, int]


def spec(
    key: str,
    address: int,
    size: int = 1,
    *,
    unit: int = 1,
    table: Table = Table.HOLDING,
    bit: int | None = None,
) -> RegisterSpec:
    """Return a spec of ``size`` registers (bits for bit tables) at ``address``."""
    if table.is_bit:
        assert size == 1
        return RegisterSpec(key, unit, table, address, DataType.BOOL)
    if bit is not None:
        return RegisterSpec(key, unit, table, address, DataType.BIT, bit=bit)
    sized = {1: DataType.UINT16, 2: DataType.UINT32, 4: DataType.UINT64}
    if size in sized:
        return RegisterSpec(key, unit, table, address, sized[size])
    return RegisterSpec(key, unit, table, address, DataType.STRING, count=size)


def spans(blocks: Sequence[BlockRead]) -> list[tuple[int, int]]:
    """(address, count) of each block."""
    return [(block.address, block.count) for block in blocks]


# -- brute-force references -------------------------------------------------------


def _hull(group: Sequence[Span]) -> Span:
    return min(start for start, _ in group), max(end for _, end in group)


def _group_cost(
    group: Sequence[Span],
    limit: int,
    holes: AbstractSet[int],
    overhead: float,
    per: float,
) -> float:
    """Cost of reading a group of intervals in one request; inf when not allowed."""
    start, end = _hull(group)
    if end - start > limit or any(start <= hole < end for hole in holes):
        return math.inf
    return overhead + per * (end - start)


def _compositions(items: list[Span]) -> Iterator[list[list[Span]]]:
    """Every split of ``items`` (in order) into contiguous runs."""
    n = len(items)
    for cuts_count in range(n):
        for cuts in combinations(range(1, n), cuts_count):
            bounds = [0, *cuts, n]
            yield [items[a:b] for a, b in pairwise(bounds)]


def _set_partitions(items: list[Span]) -> Iterator[list[list[Span]]]:
    """Every partition of ``items`` into non-empty sets (Bell-number many)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in _set_partitions(rest):
        yield [[first], *partition]
        for index in range(len(partition)):
            yield [
                *partition[:index],
                [first, *partition[index]],
                *partition[index + 1 :],
            ]


def brute_force_cost(
    due: Sequence[RegisterSpec],
    cost: CostModel,
    limits: Mapping[int, DeviceLimits],
    holes: Holes,
    *,
    contiguous: bool,
) -> float:
    """Optimum plan cost by exhaustive search, group by group.

    Unreadable specs (larger than the limit, or holding a hole) cost one read of
    their own per distinct interval, as documented by ``plan_reads``.
    """
    groups: dict[tuple[int, Table], set[Span]] = {}
    for item in {s.uid: s for s in due}.values():
        groups.setdefault((item.unit_id, item.table), set()).add(
            (item.address, item.end)
        )
    total = 0.0
    for (unit, table), intervals in groups.items():
        limit = limits.get(unit, DeviceLimits()).for_table(table)
        group_holes = holes.get((unit, table), set())
        per = cost.per_unit(table)
        readable: list[Span] = []
        for interval in sorted(intervals):
            if _group_cost([interval], limit, group_holes, 0.0, 0.0) == math.inf:
                total += cost.request_overhead + per * (interval[1] - interval[0])
            else:
                readable.append(interval)
        if not readable:
            continue
        candidates = (
            _compositions(readable) if contiguous else _set_partitions(readable)
        )
        total += min(
            sum(
                _group_cost(g, limit, group_holes, cost.request_overhead, per)
                for g in p
            )
            for p in candidates
        )
    return total


# -- invariants -------------------------------------------------------------------


def _inside(item: RegisterSpec, block: BlockRead) -> bool:
    return (
        item.unit_id == block.unit_id
        and item.table == block.table
        and block.address <= item.address
        and item.end <= block.end
    )


def _is_solo(block: BlockRead, specs: Mapping[str, RegisterSpec]) -> bool:
    """Whether the block is exactly the interval of each of its (due) keys."""
    return all(
        specs[key].address == block.address and specs[key].end == block.end
        for key in block.keys
    )


def check_plan(
    plan: Sequence[BlockRead],
    due: Sequence[RegisterSpec],
    riders: Sequence[RegisterSpec],
    limits: Mapping[int, DeviceLimits],
    holes: Holes,
) -> None:
    """Assert every documented guarantee of a plan."""
    due_by_key = {s.uid: s for s in due}
    rider_by_key = {s.uid: s for s in riders if s.uid not in due_by_key}
    everything = {**rider_by_key, **due_by_key}
    order = [(b.unit_id, b.table, b.address, b.count) for b in plan]
    assert order == sorted(order), "output order is (unit, table, address, count)"
    listed = [key for block in plan for key in block.keys]
    assert len(listed) == len(set(listed)), "each key appears in exactly one block"
    assert set(due_by_key) <= set(listed), "every due key is read"
    assert set(listed) <= set(everything)
    normal: list[BlockRead] = []
    for block in plan:
        assert block.count >= 1
        assert any(key in due_by_key for key in block.keys), (
            "no block without a due key"
        )
        for key in block.keys:
            assert _inside(everything[key], block), f"{key} not wholly inside {block}"
        limit = limits.get(block.unit_id, DeviceLimits()).for_table(block.table)
        group_holes = holes.get((block.unit_id, block.table), set())
        if block.count > limit or any(
            block.address <= h < block.end for h in group_holes
        ):
            # Only an unreadable due spec is read on its own, and nothing rides along.
            assert _is_solo(block, due_by_key)
        else:
            normal.append(block)
    for key, rider in rider_by_key.items():
        fits = any(_inside(rider, block) for block in normal)
        assert (key in listed) == fits, (
            f"rider {key} listed={key in listed}, fits={fits}"
        )


# -- strategies ---------------------------------------------------------------------


@st.composite
def specs_strategy(draw: st.DrawFn, prefix: str, max_size: int) -> list[RegisterSpec]:
    """Small random specs on two units and three tables, overlaps included."""
    count = draw(st.integers(0, max_size))
    result: list[RegisterSpec] = []
    for index in range(count):
        unit = draw(st.sampled_from([1, 2]))
        table = draw(st.sampled_from([Table.HOLDING, Table.INPUT, Table.COIL]))
        address = draw(st.integers(0, 24))
        key = f"{prefix}{index}"
        if table.is_bit:
            result.append(spec(key, address, unit=unit, table=table))
        elif draw(st.booleans()) and draw(st.booleans()):
            result.append(
                spec(key, address, unit=unit, table=table, bit=draw(st.integers(0, 15)))
            )
        else:
            size = draw(st.sampled_from([1, 1, 2, 2, 3, 4, 6]))
            result.append(spec(key, address, size, unit=unit, table=table))
    return result


costs = st.builds(
    CostModel,
    request_overhead=st.floats(0, 5, allow_nan=False),
    per_register=st.floats(0, 1, allow_nan=False),
    per_bit=st.floats(0, 1, allow_nan=False),
)
limits_strategy = st.dictionaries(
    st.sampled_from([1, 2]),
    st.builds(
        DeviceLimits, max_registers=st.integers(1, 12), max_bits=st.integers(1, 12)
    ),
)
holes_strategy = st.dictionaries(
    st.tuples(
        st.sampled_from([1, 2]),
        st.sampled_from([Table.HOLDING, Table.INPUT, Table.COIL]),
    ),
    st.frozensets(st.integers(0, 30), max_size=4),
)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# -- property tests --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    due=specs_strategy("d", 9),
    riders=specs_strategy("r", 6),
    cost=costs,
    limits=limits_strategy,
    holes=holes_strategy,
)
def test_dp_matches_contiguous_brute_force(
    due: list[RegisterSpec],
    riders: list[RegisterSpec],
    cost: CostModel,
    limits: dict[int, DeviceLimits],
    holes: dict[tuple[int, Table], frozenset[int]],
) -> None:
    """The DP finds the optimum over all contiguous partitions, and the plan is valid."""
    plan = plan_reads(due, riders=riders, cost=cost, limits=limits, holes=holes)
    check_plan(plan, due, riders, limits, holes)
    expected = brute_force_cost(due, cost, limits, holes, contiguous=True)
    assert _close(plan_cost(plan, cost), expected)


@settings(max_examples=200, deadline=None)
@given(
    due=specs_strategy("d", 6),
    cost=costs,
    limits=limits_strategy,
    holes=holes_strategy,
)
def test_contiguity_loses_nothing(
    due: list[RegisterSpec],
    cost: CostModel,
    limits: dict[int, DeviceLimits],
    holes: dict[tuple[int, Table], frozenset[int]],
) -> None:
    """Against every set partition (any grouping at all), the DP is still optimal."""
    plan = plan_reads(due, cost=cost, limits=limits, holes=holes)
    anywise = brute_force_cost(due, cost, limits, holes, contiguous=False)
    assert _close(plan_cost(plan, cost), anywise)


@settings(max_examples=100, deadline=None)
@given(
    due=specs_strategy("d", 9),
    riders=specs_strategy("r", 6),
    limits=limits_strategy,
    holes=holes_strategy,
)
def test_no_merge_is_one_read_per_due_spec(
    due: list[RegisterSpec],
    riders: list[RegisterSpec],
    limits: dict[int, DeviceLimits],
    holes: dict[tuple[int, Table], frozenset[int]],
) -> None:
    """merge=False reads each due spec on its own, exactly its interval."""
    plan = plan_reads(due, riders=riders, limits=limits, holes=holes, merge=False)
    check_plan(plan, due, riders, limits, holes)
    assert len(plan) == len(due)
    for block in plan:
        own = [s for s in due if s.uid in block.keys]
        assert len(own) == 1
        assert (block.address, block.end) == (own[0].address, own[0].end)


@settings(max_examples=100, deadline=None)
@given(due=specs_strategy("d", 9), seed=st.integers(0, 1000))
def test_output_is_independent_of_input_order(
    due: list[RegisterSpec], seed: int
) -> None:
    """Shuffling the input never changes the plan."""
    shuffled = list(due)
    random.Random(seed).shuffle(shuffled)
    assert plan_reads(due) == plan_reads(shuffled)


def quadratic_reference(
    intervals: list[Span],
    limit: int,
    holes: AbstractSet[int],
    overhead: float,
    per: float,
) -> float:
    """Return the cost of the textbook O(n^2) DP (no sliding window)."""
    best = [0.0] + [math.inf] * len(intervals)
    for j, (_, end) in enumerate(intervals):
        for i in range(j + 1):
            start = intervals[i][0]
            if end - start <= limit and not any(start <= h < end for h in holes):
                best[j + 1] = min(best[j + 1], best[i] + overhead + per * (end - start))
    return best[-1]


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(st.integers(0, 400), min_size=1, max_size=80),
    sizes=st.lists(st.integers(1, 6), min_size=80, max_size=80),
    holes=st.frozensets(st.integers(0, 410), max_size=15),
    limit=st.integers(1, 40),
    overhead=st.floats(0, 3, allow_nan=False),
    per=st.floats(0, 0.5, allow_nan=False),
)
def test_sliding_window_matches_quadratic_dp(
    *,
    starts: list[int],
    sizes: list[int],
    holes: frozenset[int],
    limit: int,
    overhead: float,
    per: float,
) -> None:
    """On larger inputs than brute force can take, the O(n) window equals the O(n^2) DP."""
    raw = [(a, a + min(size, limit)) for a, size in zip(starts, sizes, strict=False)]
    ok = [(a, e) for a, e in raw if not any(a <= h < e for h in holes)]
    intervals = proper_intervals(ok)
    chosen = optimal_spans(
        intervals, limit=limit, holes=sorted(holes), overhead=overhead, per_unit=per
    )
    got = sum(overhead + per * (end - start) for start, end in chosen)
    assert _close(got, quadratic_reference(intervals, limit, holes, overhead, per))
    for start, end in chosen:
        assert end - start <= limit
        assert not any(start <= h < end for h in holes)
    assert all(any(s <= a and e <= t for s, t in chosen) for a, e in intervals)


def test_proper_intervals_drops_contained() -> None:
    """Contained and repeated intervals go; starts and ends strictly increase."""
    assert proper_intervals([(5, 6), (0, 10), (0, 2), (9, 12), (9, 12), (11, 12)]) == [
        (0, 10),
        (9, 12),
    ]
    assert proper_intervals([]) == []


def test_optimal_spans_empty() -> None:
    """No intervals, no reads."""
    assert optimal_spans([], limit=10, holes=[], overhead=1.0, per_unit=0.1) == []


# -- example tests: gaps and the cost model ------------------------------------------------


def test_gap_below_break_even_is_read_through() -> None:
    """A 39-register gap costs less than a request (break-even 50): one read."""
    cost = CostModel(request_overhead=1.0, per_register=0.02)
    assert cost.break_even_gap() == 50
    plan = plan_reads([spec("a", 0), spec("b", 40)], cost=cost)
    assert spans(plan) == [(0, 41)]
    assert plan[0].keys == ("1.a", "1.b")


def test_gap_above_break_even_splits() -> None:
    """A 59-register gap costs more than a request: two reads."""
    plan = plan_reads([spec("a", 0), spec("b", 60)], cost=CostModel(1.0, 0.02))
    assert spans(plan) == [(0, 1), (60, 1)]


def test_break_even_gap_is_the_exact_threshold() -> None:
    """At the break-even gap the planner merges (a tie), one more and it splits."""
    cost = CostModel(request_overhead=1.0, per_register=0.125)  # exact binary fractions
    gap = cost.break_even_gap()
    assert gap == 8
    assert len(plan_reads([spec("a", 0), spec("b", 1 + gap)], cost=cost)) == 1
    assert len(plan_reads([spec("a", 0), spec("b", 2 + gap)], cost=cost)) == 2


@pytest.mark.parametrize(
    ("overhead", "per_register"), [(1.0, 0.02), (0.3, 0.1), (0.05, 0.0023), (7.0, 0.7)]
)
def test_break_even_gap_agrees_with_planner(
    overhead: float, per_register: float
) -> None:
    """Whatever the float rounding, the gap the model names is where the planner splits."""
    cost = CostModel(request_overhead=overhead, per_register=per_register)
    gap = cost.break_even_gap()
    assert per_register * gap <= overhead * (1 + 1e-9)
    assert per_register * (gap + 1) > overhead * (1 + 1e-9)
    assert len(plan_reads([spec("a", 0), spec("b", 2 + gap)], cost=cost)) == 2


def test_break_even_gap_for_bits_and_free_transfer() -> None:
    """Bits use per_bit; free transfer means any gap is worth reading through."""
    cost = CostModel(request_overhead=1.0, per_register=0.02, per_bit=0.0015)
    assert cost.break_even_gap(bits=True) == 666
    assert CostModel(1.0, 0.0, 0.0).break_even_gap() == UNBOUNDED_GAP
    assert CostModel(0.0, 0.5).break_even_gap() == 0
    assert CostModel(5.0, 5e-324).break_even_gap() == UNBOUNDED_GAP


def test_from_timing_uses_measured_seconds() -> None:
    """A slow gateway (50 ms per request, 2 ms per register) reads through 25 registers."""
    cost = CostModel.from_timing(0.05, 0.002)
    assert cost == CostModel(0.05, 0.002, 0.002 / 16)
    assert cost.break_even_gap() == 25
    assert CostModel.from_timing(0.01, 0.001, 0.0001).per_bit == 0.0001


def test_from_timing_clamps_noise_and_rejects_nan() -> None:
    """Slightly negative fitted timings become 0; NaN and infinity are errors."""
    assert CostModel.from_timing(0.02, -1e-6, -1e-7) == CostModel(0.02, 0.0, 0.0)
    with pytest.raises(ValueError, match="overhead_s"):
        CostModel.from_timing(math.nan, 0.001)
    with pytest.raises(ValueError, match="per_register_s"):
        CostModel.from_timing(0.01, math.inf)


@pytest.mark.parametrize(
    "kwargs",
    [{"request_overhead": -1.0}, {"per_register": math.nan}, {"per_bit": math.inf}],
)
def test_cost_model_rejects_bad_numbers(kwargs: dict[str, float]) -> None:
    """Negative or non-finite costs are rejected with the field named."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CostModel(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_registers": 0}, "max_registers"),
        ({"max_registers": 126}, "max_registers"),
        ({"max_bits": 0}, "max_bits"),
        ({"max_bits": 2001}, "max_bits"),
    ],
)
def test_device_limits_rejects_out_of_protocol(
    kwargs: dict[str, int], field: str
) -> None:
    """Limits outside what Modbus allows are rejected with the field named."""
    with pytest.raises(ValueError, match=field):
        DeviceLimits(**kwargs)


def test_connection_timing_changes_the_plan() -> None:
    """The same registers merge on a slow gateway and split on a fast bus."""
    due = [spec("a", 0), spec("b", 20), spec("c", 40)]
    slow = CostModel.from_timing(0.100, 0.001)  # break-even 100
    fast = CostModel.from_timing(0.004, 0.001)  # break-even 4
    assert spans(plan_reads(due, cost=slow)) == [(0, 41)]
    assert spans(plan_reads(due, cost=fast)) == [(0, 1), (20, 1), (40, 1)]


def test_uneven_gaps_are_split_where_it_pays() -> None:
    """Small gaps are read through, the big one splits the plan."""
    due = [spec("a", 0), spec("b", 5), spec("c", 10, 2), spec("d", 100), spec("e", 104)]
    plan = plan_reads(due, cost=CostModel(1.0, 0.02))
    assert spans(plan) == [(0, 12), (100, 5)]
    assert [block.keys for block in plan] == [("1.a", "1.b", "1.c"), ("1.d", "1.e")]


# -- holes and limits ----------------------------------------------------------------------


def test_hole_splits_a_block() -> None:
    """A learned illegal address inside the span forces two reads."""
    due = [spec("a", 0), spec("b", 5)]
    assert spans(plan_reads(due)) == [(0, 6)]
    holes = {(1, Table.HOLDING): frozenset({3})}
    assert spans(plan_reads(due, holes=holes)) == [(0, 1), (5, 1)]


def test_hole_elsewhere_changes_nothing() -> None:
    """Holes outside the span, in another table or on another unit do not matter."""
    due = [spec("a", 0), spec("b", 5)]
    holes = {
        (1, Table.HOLDING): frozenset({6, 99}),
        (1, Table.INPUT): frozenset({3}),
        (2, Table.HOLDING): frozenset({3}),
    }
    assert spans(plan_reads(due, holes=holes)) == [(0, 6)]


def test_hole_between_and_limit_together() -> None:
    """Holes and the limit combine: each run between holes is split to the limit."""
    due = [spec(f"r{a}", a) for a in (0, 1, 2, 4, 6, 8, 9, 10)]
    holes = {(1, Table.HOLDING): frozenset({5})}
    plan = plan_reads(due, holes=holes, limits={1: DeviceLimits(max_registers=3)})
    assert spans(plan) == [(0, 3), (4, 1), (6, 1), (8, 3)]


def test_per_device_limits() -> None:
    """Each unit gets its own limit; units without an entry get the default."""
    due = [spec("a1", 0, unit=1), spec("b1", 15, unit=1), spec("a2", 0, unit=2)]
    due.append(spec("b2", 15, unit=2))
    limits = {1: DeviceLimits(max_registers=10)}
    plan = plan_reads(due, cost=CostModel(1.0, 0.0), limits=limits)
    assert [(b.unit_id, b.address, b.count) for b in plan] == [
        (1, 0, 1),
        (1, 15, 1),
        (2, 0, 16),
    ]


def test_limit_is_respected_even_when_transfer_is_free() -> None:
    """With per-register cost 0 the plan uses the fewest reads the limit allows."""
    due = [spec(f"r{a}", a) for a in range(0, 250, 10)]
    plan = plan_reads(due, cost=CostModel(1.0, 0.0))
    assert len(plan) == 2
    assert all(block.count <= 125 for block in plan)
    assert sorted(key for block in plan for key in block.keys) == sorted(
        s.uid for s in due
    )


def test_bit_tables_use_max_bits_and_per_bit() -> None:
    """Coils merge across gaps priced per bit, up to max_bits."""
    due = [spec(f"c{a}", a, table=Table.COIL) for a in (0, 100, 1500, 2500)]
    plan = plan_reads(due)  # break-even 666 bits, limit 2000 bits
    assert [(b.table, b.address, b.count) for b in plan] == [
        (Table.COIL, 0, 101),
        (Table.COIL, 1500, 1),
        (Table.COIL, 2500, 1),
    ]
    tight = plan_reads(due, limits={1: DeviceLimits(max_bits=50)})
    assert spans(tight) == [(0, 1), (100, 1), (1500, 1), (2500, 1)]


def test_bit_limit_does_not_apply_to_words() -> None:
    """max_bits limits coils; holding registers keep max_registers."""
    limits = {1: DeviceLimits(max_registers=125, max_bits=5)}
    due = [spec("h0", 0), spec("h9", 9)]
    due += [spec("c0", 0, table=Table.COIL), spec("c9", 9, table=Table.COIL)]
    plan = plan_reads(due, limits=limits)
    assert [(b.table, b.address, b.count) for b in plan] == [
        (Table.COIL, 0, 1),
        (Table.COIL, 9, 1),
        (Table.HOLDING, 0, 10),
    ]


def test_tables_and_units_are_never_mixed() -> None:
    """Same addresses in different tables or units are separate reads, ordered."""
    due = [
        spec("i", 0, table=Table.INPUT),
        spec("h2", 0, unit=2),
        spec("h", 1),
        spec("d", 0, table=Table.DISCRETE),
    ]
    plan = plan_reads(due)
    assert [(b.unit_id, b.table, b.address, b.count, b.keys) for b in plan] == [
        (1, Table.DISCRETE, 0, 1, ("1.d",)),
        (1, Table.HOLDING, 1, 1, ("1.h",)),
        (1, Table.INPUT, 0, 1, ("1.i",)),
        (2, Table.HOLDING, 0, 1, ("2.h2",)),
    ]


# -- overlaps, unreadable specs, riders ------------------------------------------------------


def test_bit_specs_on_one_word_share_a_read() -> None:
    """Several bits of one status word are one one-register read."""
    due = [spec(f"bit{b}", 7, bit=b) for b in (0, 3, 15)]
    plan = plan_reads(due)
    assert spans(plan) == [(7, 1)]
    assert plan[0].keys == ("1.bit0", "1.bit15", "1.bit3")


def test_overlapping_specs_read_their_union() -> None:
    """A string overlapping numbers: the read covers the union of all of them."""
    due = [spec("name", 10, 6), spec("inner", 12), spec("tail", 15, 2)]
    plan = plan_reads(due)
    assert spans(plan) == [(10, 7)]
    assert plan[0].keys == ("1.name", "1.inner", "1.tail")


def test_limit_can_force_overlapping_reads() -> None:
    """Two overlapping uint32 with a limit of 2 need two reads sharing a register."""
    due = [spec("a", 0, 2), spec("b", 1, 2)]
    riders = [spec("shared", 1)]
    plan = plan_reads(due, riders=riders, limits={1: DeviceLimits(max_registers=2)})
    assert [(b.address, b.count, b.keys) for b in plan] == [
        (0, 2, ("1.a", "1.shared")),
        (1, 2, ("1.b",)),
    ]


def test_oversized_spec_is_read_alone() -> None:
    """A string larger than the device limit is read on its own, never merged.

    Nothing rides along with it: the rider inside it is not listed anywhere.
    """
    due = [spec("long", 0, 20), spec("a", 2), spec("b", 21)]
    riders = [spec("inside", 5)]
    plan = plan_reads(due, riders=riders, limits={1: DeviceLimits(max_registers=10)})
    assert [(b.address, b.count, b.keys) for b in plan] == [
        (0, 20, ("1.long",)),
        (2, 1, ("1.a",)),
        (21, 1, ("1.b",)),
    ]


def test_spec_containing_a_hole_is_read_alone() -> None:
    """A spec over a learned hole gets its own read; neighbours split around it."""
    due = [spec("a", 0), spec("wide", 4, 4), spec("same", 4, 4), spec("b", 9)]
    riders = [spec("inside", 5)]
    holes = {(1, Table.HOLDING): frozenset({6})}
    plan = plan_reads(due, riders=riders, holes=holes)
    assert [(b.address, b.count, b.keys) for b in plan] == [
        (0, 1, ("1.a",)),
        (4, 4, ("1.same", "1.wide")),
        (9, 1, ("1.b",)),
    ]


def test_riders_ride_only_when_wholly_inside() -> None:
    """Riders inside a block are free; blocks are never stretched for them."""
    due = [spec("a", 10), spec("b", 20)]
    riders = [
        spec("inside", 15),
        spec("edge", 20),
        spec("straddles", 20, 2),
        spec("before", 9),
        spec("elsewhere", 10, unit=2),
        spec("coil", 12, table=Table.COIL),
    ]
    plan = plan_reads(due, riders=riders)
    assert [(b.address, b.count, b.keys) for b in plan] == [
        (10, 11, ("1.a", "1.inside", "1.b", "1.edge"))
    ]


def test_due_spec_given_as_rider_is_listed_once() -> None:
    """A key both due and rider, or repeated, appears once."""
    a = spec("a", 0)
    plan = plan_reads([a, a, spec("b", 3)], riders=[a, spec("c", 1), spec("c", 1)])
    assert [b.keys for b in plan] == [("1.a", "1.c", "1.b")]


def test_no_merge_baseline_reads_each_spec() -> None:
    """merge=False: one read per due spec even on one word; riders still ride."""
    due = [spec("b1", 0, bit=1), spec("b2", 0, bit=2), spec("x", 1, 2)]
    plan = plan_reads(due, riders=[spec("r", 2)], merge=False)
    assert [(b.address, b.count, b.keys) for b in plan] == [
        (0, 1, ("1.b1",)),
        (0, 1, ("1.b2",)),
        (1, 2, ("1.x", "1.r")),
    ]


def test_empty_input_plans_nothing() -> None:
    """Nothing due, nothing read, riders or not."""
    assert plan_reads([]) == []
    assert plan_reads([], riders=[spec("r", 0)]) == []


def test_plan_cost_sums_requests_and_transfer() -> None:
    """plan_cost prices words and bits with their own rates."""
    cost = CostModel(1.0, 0.5, 0.25)
    blocks = [
        BlockRead(1, Table.HOLDING, 0, 4, ("1.a",)),
        BlockRead(1, Table.COIL, 0, 4, ("1.c",)),
    ]
    assert plan_cost(blocks, cost) == (1.0 + 2.0) + (1.0 + 1.0)
    assert BlockRead(1, Table.INPUT, 10, 5).end == 15


def test_same_key_on_two_units_is_two_registers() -> None:
    """Specs are identified by uid, so one key on two units is planned twice."""
    plan = plan_reads([spec("power", 0, unit=1), spec("power", 0, unit=2)])
    assert [block.keys for block in plan] == [("1.power",), ("2.power",)]


def test_no_merge_reads_identical_oversized_specs_separately() -> None:
    """Found by hypothesis: two identical values larger than the limit, merge=False."""
    due = [
        RegisterSpec("d0", 1, Table.HOLDING, 0, DataType.UINT32),
        RegisterSpec("d1", 1, Table.COIL, 0, DataType.BOOL),
        RegisterSpec("d2", 1, Table.HOLDING, 0, DataType.UINT32),
    ]
    limits = {1: DeviceLimits(max_registers=1, max_bits=1)}
    plan = plan_reads(due, limits=limits, merge=False)
    assert sorted(block.keys for block in plan) == [("1.d0",), ("1.d1",), ("1.d2",)]
    # merged, the two identical values share their one (oversized) read
    assert len(plan_reads(due, limits=limits)) == 2
