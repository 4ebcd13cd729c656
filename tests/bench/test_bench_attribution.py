"""Where adaptive spends: every planned request is attributed to the registers due in it."""

from __future__ import annotations

import asyncio

from adaptive_modbus_engine.planning import Planning
from benchmarks import attribution, policies as pol
from benchmarks.attribution import attribute, table
from benchmarks.run import truncate
from benchmarks.scenarios import demo
from benchmarks.simulate import run_engine


def test_every_request_is_attributed_to_the_registers_due_in_it() -> None:
    """Test the demo's first 20 minutes: requests add up, alarms are due every 10 s."""
    scenario = truncate(demo(hours=1.0), 1200)
    plan = Planning.plan_with_early
    costs = {cost.uid: cost for cost in attribute(scenario)}
    assert Planning.plan_with_early is plan  # the watch is undone
    adaptive = next(p for p in pol.standard(scenario.limits) if p.name == pol.ADAPTIVE)
    assert adaptive.config is not None
    record = asyncio.run(
        run_engine(
            scenario,
            adaptive.config,
            pol.ADAPTIVE,
            phase=attribution.phases_of(42, pol.ADAPTIVE, 1)[0],
        )
    )
    hours = scenario.duration / 3600.0
    # every planned read; the bisections after the demo's refused address 10 and
    # their retries are not planned reads (12 of 1,143 req/h here)
    total = sum(cost.requests for cost in costs.values())
    assert 0.97 * record.requests / hours <= total <= record.requests / hours
    bus = sum(cost.bus_s for cost in costs.values())
    assert 0.95 * record.bus_time / hours <= bus <= 1.01 * record.bus_time / hours
    # the map's 10 s maximum: due about 360 times an hour, never a rider
    alarm = costs["1.alarm_low_pressure"]
    assert alarm.due + alarm.early >= 0.9 * 360
    assert alarm.rider == 0
    # flow rate: due in requests of its own and in requests shared with its table
    flow = costs["1.flow_rate"]
    assert flow.requests > flow.sole > 0
    assert flow.due >= flow.requests
    # a value that never moves buys nothing: no cost per point
    assert alarm.per_point(300.0) is None
    assert "1.flow_rate" in table(list(costs.values()), 300.0)
