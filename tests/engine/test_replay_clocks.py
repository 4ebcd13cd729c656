"""Shadow replay when wall time and engine (monotonic) time differ, as in HA."""

from __future__ import annotations

import pytest

from adaptive_modbus_engine.audit import Actor, AuditLog
from adaptive_modbus_engine.optimizer import Optimizer
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport


class OffsetClock:
    """A clock at a fixed offset from a shared virtual time."""

    def __init__(self, now: list[float], offset: float) -> None:
        """Read ``now[0] + offset``."""
        self._now = now
        self._offset = offset

    def __call__(self) -> float:
        """Return the time."""
        return self._now[0] + self._offset


async def _baseline(wall_offset: float, monotonic_offset: float) -> dict[str, float]:
    now = [0.0]
    wall = OffsetClock(now, wall_offset)
    monotonic = OffsetClock(now, monotonic_offset)
    device = SimulatedDevice(seed=42, clock=wall, start=wall())
    engine = PollEngine(
        device.registers,
        InProcessTransport(device),
        wall,
        EngineConfig(min_interval=2, max_interval=60),
        monotonic=monotonic,
    )
    optimizer = Optimizer(
        engine,
        audit=AuditLog(wall_clock=wall),
        clock=monotonic,
        wall_clock=wall,
        enabled=False,
    )

    async def inline(fn: object, *args: object) -> object:
        return fn(*args)  # type: ignore[operator]

    while now[0] < 600:
        now[0] = max(now[0], engine.next_due() - wall_offset)
        optimizer.observe_cycle(await engine.poll_due())
    result = await optimizer.run(
        "quick", actor=Actor.loop(), run_in_executor=inline, dry_run=True
    )
    baseline = result.as_dict()["baseline"]
    assert isinstance(baseline, dict)
    return baseline


async def test_replay_sees_the_same_traffic_whatever_the_clocks() -> None:
    """Wall time far from engine time (HA: epoch vs monotonic) predicts the same."""
    same = await _baseline(0.0, 0.0)
    apart = await _baseline(1_795_660_000.0, 12_000.0)
    assert same["requests_per_min"] > 5
    assert apart["requests_per_min"] == pytest.approx(same["requests_per_min"], rel=0.1)
