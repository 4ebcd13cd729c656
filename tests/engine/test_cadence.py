"""Per-unit cadence: a unit's table is read when all its registers' urgency says so.

Scripted device on a virtual clock; free riders and early reads are off, so only
the cadence can read registers together that are due at different times.
"""

from __future__ import annotations

import math

import pytest

from adaptive_modbus_engine import cadence as cadence_module
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.planner import CostModel
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.scheduler import PollEngine

from .test_correlation import ScriptDevice
from .test_scheduler import VirtualClock, run_until

HOUR = 3600.0


def _engine(
    layout: dict[str, tuple[int, float]],
    *,
    cadence: bool,
    per_register: float = 0.01,
    riders: float = 0.0,
    costs: bool = True,
) -> tuple[PollEngine, ScriptDevice, VirtualClock]:
    """Return an engine on registers of unit 1 at (address, fixed interval)."""
    clock = VirtualClock(0.0)
    device = ScriptDevice(clock)
    specs = [
        RegisterSpec(
            key,
            1,
            Table.HOLDING,
            address,
            DataType.UINT16,
            tolerance=1.0,
            min_interval=interval,
            max_interval=interval,
        )
        for key, (address, interval) in layout.items()
    ]
    engine = PollEngine(
        specs,
        device,  # type: ignore[arg-type]
        clock,
        EngineConfig(unit_cadence=cadence, correlated_reads=False),
    )
    if costs:
        engine.set_cost_model(
            CostModel(request_overhead=1.0, per_register=per_register)
        )
    engine.set_planner_params(rider_value=riders, early_fraction=0.0)
    return engine, device, clock


async def test_registers_due_seconds_apart_get_one_read() -> None:
    """Test that neighbours due a few seconds apart ride in one request.

    a every 60 s, b every 64 s: their ticks fall 4 s apart, then further. Read on
    their own ticks, nearly every request reads one of them; with the cadence the
    table is read when both together are worth it, so about as many requests carry
    both registers (each is read more often), never later than its own interval.
    """
    layout = {"a": (0, 60.0), "b": (1, 64.0)}
    alone, alone_device, clock = _engine(layout, cadence=False)
    await run_until(alone, clock, HOUR)
    joint, device, clock = _engine(layout, cadence=True)
    await run_until(joint, clock, HOUR)
    assert alone._cadence.advanced == 0  # noqa: SLF001
    assert joint._cadence.advanced > 0  # noqa: SLF001

    def single(log: list[tuple[float, int, int]]) -> int:
        return sum(1 for _, _, count in log if count == 1)

    # on their own ticks: nearly every request reads one register only
    assert single(alone_device.log) > 0.9 * len(alone_device.log)
    # with the cadence: at most half as many one-register requests ...
    assert single(device.log) <= 0.5 * single(alone_device.log)
    # ... for about the same number of requests (the grid's own ticks stay) ...
    assert len(device.log) <= 1.05 * len(alone_device.log)
    # ... that read the registers far more often in all
    reads = len(device.reads_of(0)) + len(device.reads_of(1))
    alone_reads = len(alone_device.reads_of(0)) + len(alone_device.reads_of(1))
    assert reads >= 1.4 * alone_reads
    # never later than its own interval
    for address, interval in layout.values():
        times = device.reads_of(address)
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) <= interval + 1e-6


async def test_a_table_that_costs_as_much_whole_is_left_alone() -> None:
    """Test that registers far apart (a read each anyway) are not advanced."""
    layout = {"a": (0, 60.0), "b": (100, 64.0)}
    alone, alone_device, clock = _engine(layout, cadence=False, per_register=1.0)
    await run_until(alone, clock, HOUR)
    joint, device, clock = _engine(layout, cadence=True, per_register=1.0)
    await run_until(joint, clock, HOUR)
    assert joint._cadence.advanced == 0  # noqa: SLF001
    assert device.log == alone_device.log


async def test_a_table_the_riders_read_whole_is_left_alone() -> None:
    """Test that with free riders on, a table as cheap whole as one register is not advanced.

    TCP-like costs (a register 1 % of a request): any read of the table grows over
    all of it (riders), so advancing it would only read everything sooner. With a
    register at 10 % of a request (a serial line) the cadence still acts.
    """
    layout = {"a": (0, 60.0), "b": (1, 64.0), "c": (2, 90.0)}
    alone, alone_device, clock = _engine(layout, cadence=False, riders=1.0)
    await run_until(alone, clock, HOUR)
    joint, device, clock = _engine(layout, cadence=True, riders=1.0)
    await run_until(joint, clock, HOUR)
    assert joint._cadence.advanced == 0  # noqa: SLF001
    assert device.log == alone_device.log
    # the riders read the whole table in every request
    assert all(count == 3 for _, _, count in device.log)
    serial, _, clock = _engine(layout, cadence=True, riders=1.0, per_register=0.1)
    cost = serial.cost_model()
    assert max(serial._cadence.weights((1, Table.HOLDING), cost)) < 0.9  # noqa: SLF001
    await run_until(serial, clock, HOUR)
    assert serial._cadence.advanced > 0  # noqa: SLF001


async def test_nothing_is_advanced_on_the_default_cost_guess() -> None:
    """Test that the cadence waits until the connection's costs are known.

    The scripted device answers in no time, so no cost model is ever fitted: the
    planner runs on its default guess, and the cadence spends no request on it.
    """
    layout = {"a": (0, 60.0), "b": (1, 64.0)}
    alone, alone_device, clock = _engine(layout, cadence=False, costs=False)
    await run_until(alone, clock, HOUR)
    guess, device, clock = _engine(layout, cadence=True, costs=False)
    await run_until(guess, clock, HOUR)
    assert guess._cadence.advanced == 0  # noqa: SLF001
    assert device.log == alone_device.log
    assert guess.cost_model() == CostModel()  # the default guess all along
    guess.set_cost_model(CostModel(request_overhead=1.0, per_register=0.01))
    await run_until(guess, clock, 2 * HOUR)
    assert guess._cadence.advanced > 0  # noqa: SLF001


async def test_static_polling_is_left_alone() -> None:
    """Test that the cadence never moves a fixed-interval engine's reads."""
    clock = VirtualClock(0.0)
    device = ScriptDevice(clock)
    specs = [
        RegisterSpec(key, 1, Table.HOLDING, address, DataType.UINT16, tolerance=1.0)
        for key, address in (("a", 0), ("b", 1))
    ]
    engine = PollEngine(
        specs,
        device,  # type: ignore[arg-type]
        clock,
        EngineConfig(adaptive=False, fixed_interval=15.0, unit_cadence=True),
    )
    await run_until(engine, clock, 600.0)
    assert engine._cadence.advanced == 0  # noqa: SLF001
    assert len(device.log) == 600 / 15 + 1


def test_wake_is_where_the_summed_urgency_reaches_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test the table's wake time against U(t) = sum w_i s_i(t)^2 worked by hand."""
    engine, _, _ = _engine(
        {"a": (0, 60.0), "b": (1, 60.0), "c": (2, 60.0)}, cadence=True
    )
    cadence = engine._cadence  # noqa: SLF001
    cost = engine.cost_model()
    key = (1, Table.HOLDING)
    weights = cadence.weights(key, cost)
    # one request of 1 register (1.01) over one of all 3 (1.03)
    assert weights == [1.01 / 1.03] * 3
    for reg in engine._core.registry.regs.values():  # noqa: SLF001
        reg.last_read, reg.effective_interval, reg.next_due = 0.0, 60.0, 60.0
    # 3 w (t / 60)^2 = 1 at t = 60 / sqrt(3 w) = 35.0 s, below the floor of 0.75 x 60
    assert cadence.wake(key, 0.0, cost) == 45.0
    monkeypatch.setattr(cadence_module, "MIN_SHARE", 0.0)
    assert cadence.wake(key, 0.0, cost) == pytest.approx(
        60 / math.sqrt(3 * 1.01 / 1.03)
    )
    # one register read at 40 s: U(t) = w ((t/60)^2 * 2 + ((t - 40)/60)^2)
    engine._core.registry.regs["1.c"].last_read = 40.0  # noqa: SLF001
    at = cadence.wake(key, 40.0, cost)
    assert at is not None
    w = weights[0]
    assert w * (2 * (at / 60) ** 2 + ((at - 40) / 60) ** 2) == pytest.approx(1.0)
    # the table's own first due time comes first: nothing to advance
    engine._core.registry.regs["1.a"].next_due = at  # noqa: SLF001
    assert cadence.wake(key, 40.0, cost) is None
