"""Analytics on the demo fleet: the problem child's incident, the healthy members."""

from __future__ import annotations

from adaptive_modbus_engine.analytics import CONNECTION, Analytics, Anomaly
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.fleet import Fleet
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport

from .fleet import LATENCY, T0, VirtualClock


async def test_only_the_problem_child_fires_and_the_meter_gets_its_block_size() -> None:
    """Two incident cycles of the fleet (seed 42) polled in virtual time.

    The heat pump's anomalies fall in escalation and peak, never when stable; the
    grid meter and the PV inverter raise none. The grid meter, limited to 20
    registers per read, gets the block-size suggestion; the heat pump's health falls
    in the incident and comes back in the stable phase that follows.
    """
    clock = VirtualClock(T0)
    fleet = Fleet(seed=42, clock=clock.now, start=T0)

    def advance(seconds: float) -> None:
        clock.advance(seconds)

    transport = InProcessTransport(
        list(fleet.devices.values()),
        latency=lambda _kind, _unit, count: LATENCY + 0.0001 * count,
        clock_advance=advance,
        timeout=1.0,
    )
    specs = [spec for unit in fleet.unit_ids for spec in fleet.registers_for(unit)]
    engine = PollEngine(
        specs,
        transport,
        clock.now,
        EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
    )
    analytics = Analytics()
    anomalies: list[Anomaly] = []
    scores: dict[int, list[tuple[float, int]]] = {1: [], 2: [], 3: []}
    fixes_seen: set[tuple[str, int | None]] = set()
    while (due := engine.next_due()) <= T0 + 2 * signals.CYCLE_SECONDS:
        clock.advance_to(due)
        result = await engine.poll_due()
        anomalies += analytics.observe(result, engine.snapshot())
        for unit, points in scores.items():
            score = analytics.health_score(unit)
            assert score is not None
            points.append((clock.now() - T0, score.score))
        if len(scores[1]) % 20 == 0:
            fixes_seen |= {(f.key, f.unit_id) for f in analytics.remediation()}
    assert anomalies
    assert {a.unit_id for a in anomalies} == {1}
    for a in anomalies:
        assert signals.phase_at(a.at - T0) is not signals.Phase.STABLE, a
    phases = {
        (signals.cycle_index(a.at - T0), signals.phase_at(a.at - T0).value)
        for a in anomalies
    }
    assert {(0, "escalation"), (0, "peak"), (1, "escalation"), (1, "peak")} <= phases
    assert ("lower_max_registers", 2) in fixes_seen
    assert not {f for f in fixes_seen if f[1] in (1, 3)}
    # the heat pump's health: ≥ 90 before the incident, degraded in it (its
    # anomalies), back once they are 30 min old; the healthy members stay up
    pump = scores[1]
    stable = [s for t, s in pump if 1500 <= t < 1800]
    incident = [s for t, s in pump if 2000 <= t < 3000]
    after = [s for t, s in pump if 3600 + 1200 <= t < 3600 + 1800]
    assert min(stable) >= 90 and min(incident) <= 75 and min(after) >= 90
    for unit in (2, 3):
        assert min(s for t, s in scores[unit] if t >= 900) >= 90, unit
    connection = analytics.health_score(CONNECTION)
    assert connection is not None
