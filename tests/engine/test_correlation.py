"""Correlated registers: a move pulls in the partners learned to move with it.

A scripted device on a virtual clock: the test sets the register values, the
engine reads them; the cost model keeps the registers in separate requests (no
riders, no merging), so only the correlation can read a partner early.
"""

from __future__ import annotations

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.correlation import MIN_CO_MOVES
from adaptive_modbus_engine.planner import CostModel
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.scheduler import PollEngine

from .scripted import ReadOnlyTransport
from .test_scheduler import VirtualClock, run_until

POWER, CURRENT, OTHER = "1.power", "1.current", "1.other"


class ScriptDevice(ReadOnlyTransport):
    """A transport whose holding registers hold what the test puts in ``values``."""

    connected = True

    def __init__(self, clock: VirtualClock) -> None:
        """Serve zeros until the test sets values; log every request."""
        self.clock = clock
        self.values: dict[int, int] = {}
        self.log: list[tuple[float, int, int]] = []  # (time, address, count)

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Return the scripted words of ``address`` .. ``address + count``."""
        self.log.append((self.clock.t, address, count))
        return [self.values.get(a, 0) for a in range(address, address + count)]

    def reads_of(
        self, address: int, after: float = -1.0, until: float = float("inf")
    ) -> list[float]:
        """Return the times a request covering ``address`` went out in (after, until]."""
        return [
            t
            for t, start, count in self.log
            if start <= address < start + count and after < t <= until
        ]


def _engine(
    *, correlated: bool = True
) -> tuple[PollEngine, ScriptDevice, VirtualClock]:
    clock = VirtualClock(0.0)
    device = ScriptDevice(clock)
    specs = [
        RegisterSpec(key, 1, Table.HOLDING, address, DataType.UINT16, tolerance=1.0)
        for key, address in (("power", 0), ("current", 50), ("other", 100))
    ]
    engine = PollEngine(
        specs,
        device,  # type: ignore[arg-type]
        clock,
        EngineConfig(max_interval=300.0, correlated_reads=correlated),
    )
    # a gap of 50 registers costs 50 requests: every register is its own read
    engine.set_cost_model(CostModel(request_overhead=1.0, per_register=1.0))
    return engine, device, clock


async def _learn(engine: PollEngine, device: ScriptDevice, clock: VirtualClock) -> None:
    """Power and current step together a few times; other steps on its own."""
    for k in range(1, 6):
        device.values[0] = device.values[50] = 100 * k
        await run_until(engine, clock, 60.0 * k)
    device.values[100] = 500
    await run_until(engine, clock, 400.0)
    device.values[100] = 900
    await run_until(engine, clock, 700.0)


async def _quiet_then_step(
    engine: PollEngine, device: ScriptDevice, clock: VirtualClock
) -> float:
    """Pin power at 5 s, let the others rest, then step power and current together."""
    engine.pin_interval(POWER, interval=5.0)
    await run_until(engine, clock, 3000.0)
    step = clock.t + 0.5
    await run_until(engine, clock, step)
    device.values[0] += 1000
    device.values[50] += 40
    return step


async def test_partners_are_learned_from_co_moves() -> None:
    """Test that registers moving together become partners; one moving alone does not."""
    engine, device, clock = _engine()
    await _learn(engine, device, clock)
    correlation = engine._correlation  # noqa: SLF001
    assert correlation.strong_partners(POWER) == [CURRENT]
    assert correlation.strong_partners(CURRENT) == [POWER]
    assert OTHER not in correlation.partners(POWER)
    assert correlation.strong_partners(OTHER) == []
    assert correlation.stats.moves >= 2 * MIN_CO_MOVES


async def test_partner_of_a_moving_register_is_read_with_it() -> None:
    """Test that a step seen on power reads current with the next cycle, not other."""
    engine, device, clock = _engine()
    await _learn(engine, device, clock)
    step = await _quiet_then_step(engine, device, clock)
    due = engine.snapshot().registers[CURRENT].next_due
    assert due is not None and due > step + 30.0  # resting: not due soon by itself
    await run_until(engine, clock, step + 10.0)
    seen = device.reads_of(0, step, step + 10.0)
    assert seen, "power is pinned at 5 s"
    pulled = device.reads_of(50, step, step + 10.0)
    # rides on the next cycle (power's next read), a minimum interval at most later
    assert len(seen) >= 2
    assert pulled and pulled[0] == seen[1] <= seen[0] + 5.0
    assert engine.value(CURRENT) == device.values[50]
    assert device.reads_of(100, step, step + 10.0) == []  # uncorrelated: left alone
    assert engine._correlation.stats.partner_reads >= 1  # noqa: SLF001


async def test_without_correlated_reads_the_partner_waits_for_its_interval() -> None:
    """Test that with correlated reads off the same step leaves current stale."""
    engine, device, clock = _engine(correlated=False)
    await _learn(engine, device, clock)
    step = await _quiet_then_step(engine, device, clock)
    due = engine.snapshot().registers[CURRENT].next_due
    assert due is not None and due > step + 30.0
    await run_until(engine, clock, step + 10.0)
    assert device.reads_of(0, step, step + 10.0)
    assert device.reads_of(50, step, step + 10.0) == []
    assert engine.value(CURRENT) != device.values[50]


async def test_a_partner_pulled_for_nothing_loses_its_place() -> None:
    """Test that partner reads that find nothing moved stop pulling the partner."""
    engine, device, clock = _engine()
    await _learn(engine, device, clock)
    engine.pin_interval(POWER, interval=5.0)
    correlation = engine._correlation  # noqa: SLF001
    # power keeps moving, current no longer does: each pull finds it still
    t = clock.t
    for _ in range(60):
        device.values[0] += 50
        t += 5.0
        await run_until(engine, clock, t)
        if not correlation.strong_partners(POWER):
            break
    assert correlation.strong_partners(POWER) == []
    assert correlation.stats.partner_reads >= 1
    pulls = correlation.stats.partner_reads
    for _ in range(10):
        device.values[0] += 50
        t += 5.0
        await run_until(engine, clock, t)
    assert correlation.stats.partner_reads == pulls
