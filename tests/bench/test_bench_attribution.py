"""Where adaptive spends: every planned request is attributed to the registers due in it."""

from __future__ import annotations

import asyncio

import pytest

from adaptive_modbus_engine.planning import Planning
from benchmarks import attribution, policies as pol
from benchmarks.attribution import attribute, table
from benchmarks.run import truncate
from benchmarks.scenarios import demo, pv
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


def test_pv_requests_split_by_day_and_night_with_the_floor() -> None:
    """Test pv's first two hours (night until 07:13, then day): the split adds up."""
    scenario = truncate(pv(), 2 * 3600)
    costs, hourly = attribution.attribute_run(scenario)
    hours = scenario.duration / 3600.0
    _, night_hours = attribution.day_night_hours(scenario)
    assert 1.2 < night_hours < 1.3  # 06:00 to 07:13
    total = sum(cost.requests for cost in costs) * hours
    # every planned request falls in one hour of the run, and at night or by day
    assert sum(hourly.values()) == round(total)
    night = sum(cost.night for cost in costs) * night_hours
    assert 0 < night < total
    assert {0, 1} <= set(hourly) <= {0, 1, 2}  # 2: a read at the last second
    # two tables (input and holding) read once per 300 s: 24 requests an hour
    assert attribution.night_floor(scenario, 300.0) == 24.0
    text = attribution.day_night_table(scenario, hourly, 300.0)
    assert "hour   0 night" in text
    assert "hour   1 dawn/dusk" in text
    assert "night floor under the 300 s maximum: 24.0 req/h" in text


def test_bus_time_splits_by_what_each_read_moved() -> None:
    """Test the demo's first 20 minutes: the kinds add up to the planned bus time."""
    scenario = truncate(demo(hours=1.0), 1200)
    grow = Planning._with_free_riders  # noqa: SLF001
    books = attribution.Breakdown()
    costs, _ = attribution.attribute_run(scenario, breakdown=books)
    assert Planning._with_free_riders is grow  # noqa: SLF001  # the watch is undone
    hours = scenario.duration / 3600.0
    assert books.requests / hours == pytest.approx(sum(c.requests for c in costs))
    # overhead plus every kind's words is each planned read's bus time
    planned = books.overhead_s + sum(books.bus_s.values())
    assert planned / hours == pytest.approx(sum(c.bus_s for c in costs))
    # the demo's input table has a refused address (a gap is never read through)
    # and bits sharing a word (counted once): no kind is negative
    assert all(words >= 0 for words in books.words.values())
    # its reads carry due registers, nearly due ones and riders; a paid read is one
    # of them
    for kind in attribution.ASKED:
        assert 0 < books.paid[kind] <= books.reads[kind]
    assert books.words["due"] > books.words["early"] > 0
    text = books.text(hours)
    assert "bus time by what it moved" in text
    assert "rider" in text
    assert "passenger" in text


def test_asked_reads_split_by_unit_and_table_add_up() -> None:
    """Test the demo's per unit and table books: they add up to the run's totals.

    Each (unit, table) counts its planned requests, its due, early and rider reads
    and the paid ones; a request none of whose asked reads paid is counted unpaid.
    """
    scenario = truncate(demo(hours=1.0), 1200)
    books = attribution.Breakdown()
    attribution.attribute_run(scenario, breakdown=books)
    groups = books.groups.values()
    assert len(books.groups) > 1  # the demo's tables: input, holding, coils ...
    assert sum(g.requests for g in groups) == books.requests
    for kind in attribution.ASKED:
        assert sum(g.reads[kind] for g in groups) == books.reads[kind]
        assert sum(g.paid[kind] for g in groups) == books.paid[kind]
    planned = books.overhead_s + sum(books.bus_s.values())
    assert sum(g.bus_s for g in groups) == pytest.approx(planned)
    for group in groups:
        assert 0 <= group.unpaid_requests <= group.requests
        if sum(group.paid.values()) == 0:
            assert group.unpaid_requests == group.requests
    # some requests paid, others only confirmed the values they read
    unpaid = sum(g.unpaid_requests for g in groups)
    assert 0 < unpaid < books.requests
    text = books.group_text(scenario.duration / 3600.0)
    assert text.count("req/h") == len(books.groups)
