"""The engine's parameter API and the shadow replay the optimizer predicts with."""

from __future__ import annotations

import asyncio
import logging

import pytest

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import EngineUsageError
from adaptive_modbus_engine.optimizer import Change
from adaptive_modbus_engine.optimizer.changes import apply_all
from adaptive_modbus_engine.planner import CostModel
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.replay import ReplayTrace, TraceUnit, replay, run_sync

from .rig import START, Rig, input_specs
from .test_loop import flat_device, moving_device


def test_interval_bounds_clamp_reschedule_and_validate() -> None:
    """New bounds take effect at once; bad ones name the register and the range."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    asyncio.run(rig.run_for(600, tick=False))
    before = rig.engine.set_interval_bounds("1.flat0", min_interval=60, max_interval=90)
    assert before == (5.0, 300.0)
    register = rig.engine.snapshot().registers["1.flat0"]
    assert 60.0 <= register.interval <= 90.0
    assert register.next_due is not None
    assert register.next_due - rig.now <= 90.0
    assert rig.engine.tuning()["interval_bounds"] == {"1.flat0": [60.0, 90.0]}
    with pytest.raises(
        EngineUsageError, match=r"1\.flat0 max_interval must be a number from 0\.1"
    ):
        rig.engine.set_interval_bounds("1.flat0", max_interval=-1)
    with pytest.raises(EngineUsageError, match="must not exceed"):
        rig.engine.set_interval_bounds("1.flat0", min_interval=200, max_interval=100)
    rig.engine.set_interval_bounds("1.flat0", clear=True)
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
    with pytest.raises(
        EngineUsageError, match=r"step_budget must be a number from 0\.001 to 0\.5"
    ):
        rig.engine.set_step_budget("1.flat0", 0.9)
    with pytest.raises(
        EngineUsageError, match="unit 1 max_registers must be a number from 1 to 125"
    ):
        rig.engine.set_unit_max_registers(1, 200)
    with pytest.raises(EngineUsageError, match="pattern strength"):
        rig.engine.set_pattern_params(strength=3)


def test_tuning_exports_and_applies_back() -> None:
    """Every parameter set through the API survives export and apply on a new engine."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    engine = rig.engine
    engine.set_interval_bounds("1.flat1", max_interval=900)
    engine.set_step_budget("1.flat2", 0.05)
    engine.set_noise_margin("1.flat3", 6.0)
    engine.set_unit_max_registers(1, 12)
    engine.set_unit_max_gap(1, 3)
    engine.set_cost_model(CostModel(0.02, 0.001, 0.0001))
    engine.set_pattern_params(strength=0.5, lead=1800)
    exported = engine.tuning()
    other = Rig(specs, functions, enabled=False).engine
    assert other.apply_tuning(exported) == []
    assert other.tuning() == exported
    assert other.interval_bounds("1.flat1") == (5.0, 900.0)
    assert other.cost_model() == CostModel(0.02, 0.001, 0.0001)
    assert other.apply_tuning({"version": 7}) == ["stored tuning version 7 set aside"]


async def test_a_unit_cap_and_an_allowed_gap_change_the_reads() -> None:
    """A cap of 10 splits 40 registers into 4 reads; a gap of 0 splits at holes in the map."""
    specs, functions = moving_device(40)
    rig = Rig(specs, functions, enabled=False)
    rig.engine.set_unit_max_registers(1, 10)
    result = await rig.engine.poll_due(rig.now)
    assert result.requests == 4
    spaced = [
        RegisterSpec(f"s{i}", 1, Table.INPUT, 2 * i, tolerance=1.0) for i in range(6)
    ]
    rig = Rig(spaced, {f"s{i}": (lambda t: 1.0) for i in range(6)}, enabled=False)
    assert (await rig.engine.poll_due(rig.now)).requests == 1
    rig.engine.set_unit_max_gap(1, 0)
    rig.engine.request_read(rig.engine.uids)
    assert (await rig.engine.poll_due(rig.now)).requests == 6


def _trace(
    values: dict[str, tuple[list[float], list[float]]], specs: list[RegisterSpec]
) -> ReplayTrace:
    return ReplayTrace(
        specs=tuple(specs),
        series=values,
        start=START,
        end=START + 3600,
        latency=(0.02, 0.002),
    )


def test_shadow_replay_counts_requests_and_staleness() -> None:
    """A flat trace is never stale; a step seen late is; longer rests cost fewer requests."""
    specs = input_specs(["a", "b"])
    flat = {"1.a": ([START], [10.0]), "1.b": ([START], [20.0])}
    quiet = replay(_trace(flat, specs), EngineConfig())
    assert quiet.time_out_of_tolerance == 0.0
    assert quiet.changes == 0
    assert quiet.requests > 0
    stepped = {"1.a": ([START, START + 1800.0], [10.0, 50.0]), "1.b": flat["1.b"]}
    seen = replay(_trace(stepped, specs), EngineConfig())
    assert seen.changes == 1
    assert 0 < seen.first_change_delay <= 300.0
    assert 0 < seen.time_out_of_tolerance < 0.05

    def longer(engine: object) -> None:
        apply_all(
            engine,
            [Change("interval_bounds", uid, None, [5, 1200]) for uid in ("1.a", "1.b")],
        )  # type: ignore[arg-type]

    rested = replay(_trace(stepped, specs), EngineConfig(), changes=longer)
    assert rested.requests < seen.requests
    assert rested.first_change_delay > seen.first_change_delay
    effect = rested.effect()
    assert set(effect) == {"requests_per_min", "bus_utilisation", "time_out_of_tolerance",
                           "first_change_delay", "error_rate"}  # fmt: skip


def test_a_replay_device_times_out_above_its_limit() -> None:
    """``timeout_above`` makes larger reads fail in the replay: errors and timeouts counted."""
    specs, _ = moving_device(40)
    series = {spec.uid: ([START], [float(spec.address)]) for spec in specs}
    trace = ReplayTrace(
        tuple(specs), series, START, START + 1800, timeout_above={1: 20}, timeout=1.0
    )
    outcome = replay(trace, EngineConfig())
    assert outcome.errors >= 1
    unit = TraceUnit(1, specs, {"r3": ([START], [7.0])}, clock=lambda: START)
    assert unit.read(1, Table.INPUT, 3, 1) == [7]


def test_run_sync_refuses_a_coroutine_that_suspends() -> None:
    """The shadow replay runs without a loop; anything that would wait is an error."""

    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="suspended"):
        run_sync(waits())


def test_a_shadow_engine_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """What a shadow engine learns (limits, quarantines) is not the device's: not logged."""
    specs, _ = moving_device(40)
    series = {spec.uid: ([START], [float(spec.address)]) for spec in specs}
    trace = ReplayTrace(
        tuple(specs), series, START, START + 1800, timeout_above={1: 20}, timeout=1.0
    )
    with caplog.at_level(logging.DEBUG):
        outcome = replay(trace, EngineConfig())
    assert outcome.errors >= 1  # it did learn a limit...
    assert not [
        r for r in caplog.records if r.name.startswith("adaptive_modbus_engine")
    ]
    with caplog.at_level(logging.DEBUG):  # (the root logger's level differs per venv)
        logging.getLogger("adaptive_modbus_engine.faults").info("live")
    assert caplog.records  # ...and the live engine still logs
