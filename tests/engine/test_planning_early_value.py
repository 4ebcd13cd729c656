"""A nearly due neighbour joins a read only when it is worth the words it adds.

``Planning.plan_with_early`` pulls neighbours with at most half their interval left
into a read that goes out anyway when that adds no request. On a slow serial line
the words are not free: a neighbour is worth ``planning.EARLY_VALUE`` times a
request times the share of its interval gone by, and joins only when that pays for
the words it adds under the cost model. A free rider (a neighbour the read grows
over, ``planning.RIDER_VALUE``) is worth 2.25 requests by default.
"""

from __future__ import annotations

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.planner import BlockRead, CostModel
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import PollEngine

from .test_perf_schedule import _NullTransport

NOW = 1000.0
INTERVAL = 100.0
# a request costs ten registers' transfer: the break-even gap is 10 addresses
COST = CostModel(1.0, 0.1, 0.01)


def _plan(
    neighbour_address: int, share: float, rider_value: float | None = 0.0
) -> list[BlockRead]:
    """Plan ``due`` at address 0 with a neighbour ``share`` of its interval on.

    ``rider_value``: free riders (0: off, so that only the early rule widens a
    read; None: the engine's default).
    """
    specs = [
        RegisterSpec("due", 1, Table.HOLDING, 0, DataType.UINT16, tolerance=1.0),
        RegisterSpec(
            "near", 1, Table.HOLDING, neighbour_address, DataType.UINT16, tolerance=1.0
        ),
    ]
    engine = PollEngine(
        specs,
        _NullTransport(),
        VirtualClock(NOW).now,
        EngineConfig(rider_value=rider_value),
    )
    core = engine._core  # noqa: SLF001
    core.tuning.cost = COST
    for spec, gone in ((specs[0], 1.0), (specs[1], share)):
        reg = core.registry.regs[spec.uid]
        reg.effective_interval = INTERVAL
        reg.last_read = NOW - gone * INTERVAL
        core.schedule.due_at(reg, reg.last_read + INTERVAL)
        core.schedule.refresh(reg)
    due = [core.registry.regs[specs[0].uid]]
    return engine._planning.plan_with_early(due, NOW)  # noqa: SLF001


def test_a_close_neighbour_nearly_due_joins() -> None:
    """Two addresses on, 60 % of its interval gone: worth 0.6 requests, costs 0.2."""
    (block,) = _plan(2, 0.6)
    assert (block.address, block.count) == (0, 3)


def test_a_far_neighbour_waits_for_its_own_tick() -> None:
    """Eight addresses on: 0.8 of a request in words for a read worth 0.6.

    Before the rule it joined (the merged plan had no more requests).
    """
    (block,) = _plan(8, 0.6)
    assert (block.address, block.count) == (0, 1)


def test_a_far_neighbour_almost_due_joins() -> None:
    """Eight addresses on, 90 % of its interval gone: worth 0.9, costs 0.8."""
    (block,) = _plan(8, 0.9)
    assert (block.address, block.count) == (0, 9)


def test_a_rider_eighty_percent_gone_rides_by_default() -> None:
    """Fifteen addresses on (past the break-even gap: no early read), 80 % gone.

    Its words cost 1.5 requests; at the default rider value (2.25) it is worth 1.8
    and rides (at 1 it was worth 0.8 and did not).
    """
    (block,) = _plan(15, 0.8, rider_value=None)
    assert (block.address, block.count) == (0, 16)


def test_a_rider_is_worth_two_and_a_quarter_requests_by_default() -> None:
    """Fifteen addresses on, 70 % gone: its words cost 1.5 requests.

    At the default rider value (2.25) it is worth 1.575 and rides; at 2 it was
    worth 1.4 and waited for its own tick (2 cost install200's optimizer gate:
    README, Engine ideas of part 2).
    """
    (block,) = _plan(15, 0.7, rider_value=None)
    assert (block.address, block.count) == (0, 16)
