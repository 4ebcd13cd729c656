"""Incremental analytics give what the full recompute gives, cycle by cycle.

The incremental :class:`Analytics` takes only the registers its history saw newly
read, keeps the health model's request window (per unit too), adding the
requests made since the last cycle, and works out the suggestions once a cycle
(a unit's are the connection's of that unit). The full recompute (``incremental=False``)
looks at every register and filters the snapshot's recent requests again each
cycle. On a recorded run of the demo fleet through its incident (seed 42), with
some snapshots taken after two cycles (as the coordinator does when cycles run
back to back), both must give the same anomalies, health scores, trends,
summaries and persisted state.
"""

from __future__ import annotations

from adaptive_modbus_engine.analytics import CONNECTION, Analytics
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import ModbusError, ModbusTimeout
from adaptive_modbus_engine.history import History
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.fleet import Fleet

from .fleet import LATENCY, T0, FaultyTransport, VirtualClock


async def test_incremental_analytics_equal_the_full_recompute() -> None:
    """One incident cycle of the fleet, fed to both; compared after every snapshot.

    Twice: with the default 10-minute rate window (more requests than the 512
    kept) and a 2-minute one (requests leave by age).
    """
    clock = VirtualClock(T0)
    fleet = Fleet(seed=42, clock=clock.now, start=T0)
    transport = FaultyTransport(
        list(fleet.devices.values()),
        # latency that wanders (p95 and its baseline move) ...
        latency=lambda _kind, _unit, count: (
            LATENCY * (1 + int(clock.now()) % 600 / 100) + 0.0001 * count
        ),
        clock_advance=clock.advance,
        timeout=1.0,
    )
    reads = 0

    def fault(
        unit: int, _table: Table, _address: int, _count: int
    ) -> ModbusError | None:
        """... and the inverter's timeouts, now and then (the rates move)."""
        nonlocal reads
        reads += 1
        timeout = unit == 3 and reads % 17 == 0
        return ModbusTimeout("no answer", unit_id=unit) if timeout else None

    transport.fault = fault
    specs = [spec for unit in fleet.unit_ids for spec in fleet.registers_for(unit)]
    engine = PollEngine(
        specs,
        transport,
        clock.now,
        EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
    )
    history = History()  # shared and fed first, as the coordinator does
    fast = Analytics(history)
    full = Analytics(history, incremental=False)
    # a 2-minute rate window: requests leave it by age, not by the 512 kept
    short = Analytics(history)
    short_full = Analytics(history, incremental=False)
    short.health.window = short_full.health.window = 120.0
    snapshots = anomalies = remedies = 0
    while (due := engine.next_due()) <= T0 + signals.CYCLE_SECONDS:
        clock.advance_to(due)
        results = [await engine.poll_due()]
        if snapshots % 5 == 4 and (after := engine.next_due()) <= clock.now() + 10:
            clock.advance_to(after)  # two cycles, then one snapshot
            results.append(await engine.poll_due())
        snapshot = engine.snapshot()
        snapshots += 1
        for result in results:
            history.observe(result, snapshot)
            found = fast.observe(result, snapshot)
            assert found == full.observe(result, snapshot)
            assert short.observe(result, snapshot) == short_full.observe(
                result, snapshot
            )
            anomalies += len(found)
        assert fast.health.scores == full.health.scores
        assert short.health.scores == short_full.health.scores
        for unit in (None, 1, 2, 3, 4):  # 4: no such unit
            assert fast.remediation(unit) == full.remediation(unit)
        remedies += len(full.remediation())
    assert snapshots > 500 and anomalies > 0  # the incident fired
    assert remedies > 0  # the grid meter's block size, at least
    timeouts = {f.key: f.value for f in full.health.scores[3].factors}["timeouts"]
    assert timeouts > 0  # the inverter's timeouts are in the window
    assert list(fast.anomalies) == list(full.anomalies)
    assert fast.export_state() == full.export_state()
    for scope in (CONNECTION, 1, 2, 3):
        for period in ("day", "week"):
            assert fast.health_trend(scope, period) == full.health_trend(scope, period)
    for uid in ("1.active_power", "1.supply_temperature", "2.l1_power"):
        assert fast.register_summary(uid, 3600, 900) == full.register_summary(
            uid, 3600, 900
        )
    # the fast one really took the short path: its window holds the same requests
    assert list(fast.health._window)  # noqa: SLF001 - the state under test
    assert not full.health._window  # noqa: SLF001
