"""The square-root step bound (``intervals.STEP_REFERENCE``, on by default: 900 s).

A register stepping at rate λ and read every I s shows a stale level λ·I/2 of the
time. For a given number of reads the summed stale time is least when λ·I² is the
same for every register (the square-root law); the default bound ``2·budget/λ``
reads a frequent stepper far more often than that and a rare one far less.
Scripted device on a virtual clock: two registers in reads of their own, flat
between steps well beyond their tolerance.
"""

from __future__ import annotations

import math

import pytest

from adaptive_modbus_engine import intervals
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.intervals import STEP_BUDGET, IntervalLimits, IntervalModel
from adaptive_modbus_engine.planner import CostModel
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.scheduler import PollEngine

from .test_correlation import ScriptDevice
from .test_scheduler import VirtualClock

HOUR = 3600.0
FREQUENT, RARE = 150.0, 1800.0  # s between steps
ADDRESSES = {"frequent": 0, "rare": 100}
REFERENCE = 900.0  # s between steps: the value measured in the README


@pytest.fixture
def square_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the square-root law (a step every 15 min as the reference): the default."""
    assert intervals.STEP_REFERENCE == REFERENCE
    monkeypatch.setattr(intervals, "STEP_REFERENCE", REFERENCE)


@pytest.fixture
def linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the linear law ``2·budget/λ`` (the default before the square-root law)."""
    monkeypatch.setattr(intervals, "STEP_REFERENCE", None)


@pytest.mark.usefixtures("linear")
def test_the_linear_bound_is_linear_in_the_step_rate() -> None:
    """Without a reference the bound is 2·budget/λ."""
    model = IntervalModel(50.0, IntervalLimits(5.0, 300.0))
    assert model.step_bound() == math.inf  # no steps, no bound
    model._steps = 4.0  # noqa: SLF001  a step every 15 min
    assert math.isclose(model.step_bound(), 2.0 * STEP_BUDGET * 900.0)
    model._steps *= 16.0  # noqa: SLF001
    assert math.isclose(model.step_bound(), 2.0 * STEP_BUDGET * 900.0 / 16.0)


@pytest.mark.usefixtures("square_root")
def test_the_bound_is_the_budget_at_the_reference_rate() -> None:
    """At the reference step rate the bound is 2·budget/λ; it scales with 1/√λ."""
    model = IntervalModel(50.0, IntervalLimits(5.0, 300.0))
    assert model.step_bound() == math.inf  # no steps, no bound
    model._steps = 3600.0 / REFERENCE  # noqa: SLF001  a step every REFERENCE s
    assert math.isclose(model.step_bound(), 2.0 * STEP_BUDGET * REFERENCE)
    model._steps *= 16.0  # noqa: SLF001  16x the steps: a quarter of the interval
    assert math.isclose(model.step_bound(), 0.5 * STEP_BUDGET * REFERENCE)


async def _run() -> tuple[ScriptDevice, list[float], list[float]]:
    """Run 8 h of steps of 1000 (tolerance 10) every FREQUENT / RARE s.

    Returns the device (its request log) and the step times of each register.
    """
    clock = VirtualClock(0.0)
    device = ScriptDevice(clock)
    specs = [
        RegisterSpec(key, 1, Table.HOLDING, address, DataType.UINT16, tolerance=10.0)
        for key, address in ADDRESSES.items()
    ]
    engine = PollEngine(
        specs,
        device,  # type: ignore[arg-type]
        clock,
        EngineConfig(patterns=False, correlated_reads=False),
    )
    # a gap of 100 registers costs 100 requests: each register is read on its own
    engine.set_cost_model(CostModel(request_overhead=1.0, per_register=1.0))
    engine.set_planner_params(rider_value=0.0, early_fraction=0.0)
    steps: dict[str, list[float]] = {"frequent": [], "rare": []}
    every = {"frequent": FREQUENT, "rare": RARE}
    # steps fall off the read grid (7 s past a multiple of the period)
    next_step = {key: every[key] + 7.0 for key in every}
    while (due := engine.next_due()) <= 8 * HOUR:
        for key, at in next_step.items():
            if at <= due:
                address = ADDRESSES[key]
                device.values[address] = 1000 - device.values.get(address, 0)
                steps[key].append(at)
                next_step[key] = at + every[key]
        clock.t = max(clock.t, due)
        await engine.poll_due()
    return device, steps["frequent"], steps["rare"]


def _stale_share(reads: list[float], steps: list[float], start: float) -> float:
    """Share of the time after ``start`` a step was not read yet."""
    stale = 0.0
    for step in steps:
        if step < start:
            continue
        after = [t for t in reads if t >= step]
        if after:
            stale += after[0] - step
    return stale / (reads[-1] - start)


def _figures(
    device: ScriptDevice, frequent_steps: list[float], rare_steps: list[float]
) -> tuple[float, float, int, float]:
    """Seconds between reads of each, reads in all and summed stale share after 2 h."""
    start = 2 * HOUR
    frequent = device.reads_of(ADDRESSES["frequent"], after=start)
    rare = device.reads_of(ADDRESSES["rare"], after=start)
    span = 6 * HOUR
    stale = _stale_share(frequent, frequent_steps, start) + _stale_share(
        rare, rare_steps, start
    )
    return span / len(frequent), span / len(rare), len(frequent) + len(rare), stale


@pytest.mark.usefixtures("linear")
async def test_the_linear_bound_reads_a_frequent_stepper_at_the_minimum() -> None:
    """Test the linear law: the stepper every 150 s at 5 s, the one every 30 min at 45 s."""
    frequent_every, rare_every, reads, stale = _figures(*await _run())
    assert frequent_every == pytest.approx(5.0, rel=0.02)  # 2·budget/λ = 6 s
    assert rare_every >= 42.0  # 2·budget/λ: 72 s, between recoveries after steps
    assert reads >= 4_500
    assert stale >= 0.045


@pytest.mark.usefixtures("square_root")
async def test_frequent_and_rare_steps_share_the_reads_by_the_square_root_law() -> None:
    """Test that a frequent stepper is read about √12 (not 12) times as often.

    After the first 2 h (the step rates learned), the register stepping every
    150 s is read every 9-10 s (the linear bound: every 5 s, the minimum) and the
    one stepping every 30 min every 35-40 s (linear: about 45 s): a ratio of about
    4 instead of 9. With 40 % fewer reads (2,880 instead of 4,805 in those 6 h)
    the two are stale for less of the time together (3.8 % instead of 4.9 %).
    """
    frequent_every, rare_every, reads, stale = _figures(*await _run())
    assert 8.0 <= frequent_every <= 20.0
    assert 30.0 <= rare_every <= 42.0
    assert rare_every / frequent_every <= 6.0
    assert reads <= 3_000
    assert stale <= 0.04
