"""Free riders are an addition on top of the optimal cover, never a change of it.

Against brute force: with riders on, a cycle's plan has exactly the requests of
the optimal cover of its due registers (whose cost brute force confirms), each
block grown only over neighbours, never past the device limit, a learned hole or
the next block.
"""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import ErrorKind
from adaptive_modbus_engine.faults import HoleCheck
from adaptive_modbus_engine.planner import BlockRead, CostModel, DeviceLimits, plan_cost
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import PollEngine

from .test_perf_schedule import _NullTransport
from .test_planner import brute_force_cost

NOW = 1000.0
INTERVAL = 100.0


@st.composite
def layouts(draw: st.DrawFn) -> list[tuple[int, int, bool, float]]:
    """(address, size, due, share of the interval gone by) of up to 8 registers."""
    out = []
    address = 0
    for _ in range(draw(st.integers(1, 8))):
        address += draw(st.integers(0, 6))
        size = draw(st.sampled_from([1, 1, 2, 4]))
        due = draw(st.booleans())
        # not due: below the early fraction (0.5), so only riders can take it
        share = 1.0 if due else draw(st.floats(0.0, 0.49))
        out.append((address, size, due, share))
        address += size
    return out


def _engine(
    layout: list[tuple[int, int, bool, float]],
    cost: CostModel,
    max_registers: int,
    holes: frozenset[int],
    rider_value: float,
) -> tuple[PollEngine, list[RegisterSpec]]:
    sized = {1: DataType.UINT16, 2: DataType.UINT32, 4: DataType.UINT64}
    specs = [
        RegisterSpec(f"r{i}", 1, Table.HOLDING, address, sized[size], tolerance=1.0)
        for i, (address, size, _, _) in enumerate(layout)
    ]
    engine = PollEngine(
        specs,
        _NullTransport(),
        VirtualClock(NOW).now,
        EngineConfig(
            limits={1: DeviceLimits(max_registers=max_registers)},
            rider_value=rider_value,
        ),
    )
    core = engine._core  # noqa: SLF001
    core.tuning.cost = cost
    for address in holes:
        core.holes.checks[(1, Table.HOLDING, address, address + 1)] = HoleCheck(
            ErrorKind.ILLEGAL_ADDRESS, verify_at=1e12, backoff=1e12
        )
    core.holes.rebuild()
    for spec, (_, _, _, share) in zip(specs, layout, strict=True):
        reg = core.registry.regs[spec.uid]
        reg.effective_interval = INTERVAL
        reg.last_read = NOW - share * INTERVAL
        reg.next_due = reg.last_read + INTERVAL
    return engine, specs


def _plan(engine: PollEngine, due: list[RegisterSpec]) -> list[BlockRead]:
    regs = engine._core.registry.regs  # noqa: SLF001
    return engine._planning.plan_with_early(  # noqa: SLF001
        [regs[spec.uid] for spec in due], NOW
    )


@settings(max_examples=300, deadline=None)
@given(
    layout=layouts(),
    overhead=st.floats(0.01, 5.0),
    per_register=st.floats(0.0, 1.0),
    max_registers=st.integers(2, 16),
    holes=st.frozensets(st.integers(0, 40), max_size=3),
    rider_value=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
)
def test_riders_grow_the_optimal_cover_and_add_no_request(
    *,
    layout: list[tuple[int, int, bool, float]],
    overhead: float,
    per_register: float,
    max_registers: int,
    holes: frozenset[int],
    rider_value: float,
) -> None:
    """The plain plan is optimal (brute force); riders keep its requests, grow blocks."""
    cost = CostModel(request_overhead=overhead, per_register=per_register)
    plain_engine, specs = _engine(layout, cost, max_registers, holes, 0.0)
    due = [s for s, (_, _, is_due, _) in zip(specs, layout, strict=True) if is_due]
    if not due:
        return
    limits = {1: DeviceLimits(max_registers=max_registers)}
    table_holes = {(1, Table.HOLDING): holes}
    plain = _plan(plain_engine, due)
    optimum = brute_force_cost(due, cost, limits, table_holes, contiguous=True)
    assert math.isclose(plan_cost(plain, cost), optimum, rel_tol=1e-9, abs_tol=1e-9)

    engine, _ = _engine(layout, cost, max_registers, holes, rider_value)
    grown = _plan(engine, due)
    assert len(grown) == len(plain)
    by_uid = {spec.uid: spec for spec in specs}
    due_uids = {spec.uid for spec in due}
    for index, (before, after) in enumerate(zip(plain, grown, strict=True)):
        assert (after.unit_id, after.table) == (before.unit_id, before.table)
        assert after.address <= before.address and after.end >= before.end
        assert set(before.keys) <= set(after.keys)
        for uid in set(after.keys) - set(before.keys):
            rider = by_uid[uid]
            assert uid not in due_uids
            assert after.address <= rider.address and rider.end <= after.end
        if after.count > before.count:
            assert after.count <= max_registers
            # growth never covers a learned hole the cover did not
            added = set(range(after.address, after.end)) - set(
                range(before.address, before.end)
            )
            assert not added & holes
        if index + 1 < len(grown):
            assert after.end <= grown[index + 1].address
