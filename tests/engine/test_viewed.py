"""Demand-driven polling: a viewed unit's registers are polled closer, in virtual time."""

from __future__ import annotations

import pytest

from adaptive_modbus_engine.errors import EngineUsageError
from adaptive_modbus_engine.history import History
from adaptive_modbus_engine.intervals import IntervalLimits, viewed_interval
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport
from adaptive_modbus_engine.views import Source, device_view, register_view
from benchmarks.viewed import measure

from .test_scheduler import VirtualClock, make_engine, run_until

WARMUP = 2 * 3600.0
CAP = 300.0 * 0.25  # default max_interval x default viewed_factor


def _unit_intervals(engine: PollEngine, unit_id: int = 1) -> dict[str, float]:
    return {
        uid: r.effective_interval
        for uid, r in engine.snapshot().registers.items()
        if r.unit_id == unit_id and r.enabled
    }


async def _warm() -> tuple[PollEngine, VirtualClock]:
    engine, _device, _transport, clock = make_engine()
    await run_until(engine, clock, WARMUP)
    return engine, clock


def test_viewed_interval_shrinks_the_upper_bound_only() -> None:
    """Test that only intervals above the shrunk bound change, onto its ladder."""
    limits = IntervalLimits(5.0, 300.0)
    assert viewed_interval(300.0, limits, 0.25) == 75.0
    assert viewed_interval(160.0, limits, 0.25) == 75.0
    assert viewed_interval(40.0, limits, 0.25) == 40.0  # already below: same rung
    assert viewed_interval(5.0, limits, 0.25) == 5.0
    assert viewed_interval(300.0, limits, 1.0) == 300.0
    # never below the minimum
    assert viewed_interval(300.0, IntervalLimits(100.0, 300.0), 0.25) == 100.0


@pytest.mark.parametrize("factor", [0.0, -0.5, 1.5])
def test_factor_out_of_range_is_refused(factor: float) -> None:
    """Test that a factor outside (0, 1] is refused, naming it."""
    with pytest.raises(EngineUsageError, match="viewed_factor"):
        EngineConfig(viewed_factor=factor)


async def test_intervals_shrink_while_viewed_and_relax_after() -> None:
    """Test that viewing caps the unit's intervals at once and relaxing lifts the cap."""
    engine, clock = await _warm()
    before = _unit_intervals(engine)
    slow = {uid for uid, i in before.items() if i > CAP}
    assert slow  # the demo has registers resting above a quarter of max_interval

    engine.set_viewed(1, 1)
    snap = engine.snapshot()
    assert snap.viewed == {1: 1}
    untouched = 0
    for uid, interval in before.items():
        reg = snap.registers[uid]
        if reg.reason != "viewed":  # below its own shrunk bound already: as it was
            assert reg.effective_interval == interval
            untouched += 1
            continue
        assert reg.effective_interval < interval
        assert "viewed (1 live view)" in reg.detail
        # rescheduled from its last read, not left on its old due time
        assert reg.last_read is not None and reg.next_due is not None
        assert reg.next_due <= max(clock.t, reg.last_read + reg.effective_interval)
    assert untouched
    assert all(snap.registers[uid].reason == "viewed" for uid in slow)
    assert all(snap.registers[uid].effective_interval <= CAP for uid in slow)

    await run_until(engine, clock, WARMUP + 3600.0)
    viewed = _unit_intervals(engine)
    assert max(viewed.values()) <= CAP

    engine.set_viewed(1, 0)
    snap = engine.snapshot()
    assert snap.viewed == {}
    assert all(r.reason != "viewed" for r in snap.registers.values())
    await run_until(engine, clock, WARMUP + 2 * 3600.0)
    relaxed = _unit_intervals(engine)
    assert max(relaxed.values()) > CAP


async def test_viewing_counts_viewers() -> None:
    """Test that nested views are counted and the last one leaving relaxes."""
    engine, _clock = await _warm()
    with engine.viewing(1):
        with engine.viewing(1):
            assert engine.viewers(1) == 2
        assert engine.viewers(1) == 1
        assert max(_unit_intervals(engine).values()) <= CAP
    assert engine.viewers(1) == 0
    assert max(_unit_intervals(engine).values()) > CAP


async def test_views_and_export_show_viewed() -> None:
    """Test that register and device views and the diagnostics dict name the viewers."""
    engine, _clock = await _warm()
    engine.set_viewed(1, 2)
    source = Source(engine.snapshot(), History(), engine.cost_model())
    device = device_view(source, 1)
    assert device["viewers"] == 2
    reasons = {r["uid"]: r["reason"] for r in device["registers"]}
    assert "viewed" in reasons.values()
    register = register_view(
        source, next(u for u, r in reasons.items() if r == "viewed")
    )
    assert register["viewed"] is True
    assert register["effective_interval"] <= CAP
    assert engine.snapshot().as_dict()["viewed"] == {"1": 2}


async def test_viewing_a_unit_polls_only_that_unit_closer() -> None:
    """Test that a second unit on the connection keeps its intervals."""
    clock = VirtualClock()
    devices = [
        SimulatedDevice(seed=42, clock=clock, start=0.0, unit_id=unit)
        for unit in (1, 2)
    ]
    engine = PollEngine(
        [spec for d in devices for spec in d.registers],
        InProcessTransport(devices),
        clock,
    )
    await run_until(engine, clock, WARMUP)
    other = _unit_intervals(engine, 2)
    engine.set_viewed(1, 1)
    assert max(_unit_intervals(engine, 1).values()) <= CAP
    assert _unit_intervals(engine, 2) == other
    assert engine.snapshot().viewed == {1: 1}


async def test_bad_viewer_calls_are_refused() -> None:
    """Test that an unknown unit and a negative count name what is wrong."""
    engine, _device, _transport, _clock = make_engine()
    with pytest.raises(EngineUsageError, match="unit 9"):
        engine.set_viewed(9, 1)
    with pytest.raises(EngineUsageError, match="viewers"):
        engine.set_viewed(1, -1)


async def test_fixed_polling_ignores_viewers() -> None:
    """Test that adaptive polling off keeps every register on the fixed interval.

    (Or on its map's ``max_interval`` where that is shorter: the demo's alarms, 10 s.)
    """
    engine, _device, _transport, clock = make_engine(EngineConfig(adaptive=False))
    await run_until(engine, clock, 600.0)
    before = _unit_intervals(engine)
    engine.set_viewed(1, 1)
    await run_until(engine, clock, 1200.0)
    assert _unit_intervals(engine) == before
    assert sorted(before.values()).count(10.0) == 5
    assert set(before.values()) == {10.0, 30.0}


async def test_viewing_costs_extra_requests_and_relaxes() -> None:
    """Test the measured cost: more requests while viewed, back near baseline after."""
    cost = await measure(warmup=WARMUP, phase=1800.0)
    assert cost.longest_unviewed > CAP
    assert cost.longest_viewed <= CAP
    assert cost.viewed > 1.2 * cost.unviewed
    assert cost.relaxed < cost.viewed
    assert cost.longest_relaxed > CAP
