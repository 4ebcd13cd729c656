"""Health scores under measured faults, and the remediation they call for."""

from __future__ import annotations

from adaptive_modbus_engine.analytics import (
    CONNECTION,
    Analytics,
    HealthModel,
    Measurements,
    RemedySettings,
    health_score,
)
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.errors import IllegalAddress, ModbusError, ModbusTimeout
from adaptive_modbus_engine.registers import Table

from .fleet import T0, Run


def test_score_is_100_minus_capped_explained_penalties() -> None:
    """Each factor costs points up to its cap and says why."""
    clean = health_score(Measurements(requests=100, registers=10), 1)
    assert clean.score == 100 and clean.status == "ok" and clean.problems == ()
    bad = health_score(
        Measurements(
            requests=100, failed=50, timeouts=50, registers=10, stale=10,
            p95_latency=0.3, latency_baseline=0.01, quarantined=1,
            quarantined_names=("uptime",), anomalies=2, new_holes=1,
        ),
        1,
    )  # fmt: skip
    penalties = {f.key: f.penalty for f in bad.factors}
    assert penalties == {
        "not_answering": 0, "error_rate": 30, "timeouts": 20, "latency": 15,
        "quarantined": 5, "holes": 2, "stale": 15, "anomalies": 10,
    }  # fmt: skip
    assert bad.score == 3 and bad.status == "poor"
    assert bad.problems[0].key == "error_rate"
    explained = {f.key: f.explanation for f in bad.factors}
    assert explained["error_rate"] == "50 of 100 requests failed (50.0 %)"
    assert "30.0x its baseline 10.0 ms" in explained["latency"]
    assert "(uptime)" in explained["quarantined"]
    down = health_score(Measurements(units_down=1, units=2), CONNECTION)
    assert down.score == 70  # half the devices not answering: 60 x 1/2


async def test_health_falls_under_timeouts_and_recovers() -> None:
    """The device stops answering for 10 min: its score falls; back, it recovers.

    All in the demo's stable phase (its first 30 min), so no anomaly is involved.
    """
    run = Run()
    await run.run_until(T0 + 300)
    healthy = run.analytics.health_score(1)
    assert healthy is not None and healthy.score >= 95, healthy
    run.transport.fault = lambda *_: ModbusTimeout("unit 1: no answer (timeout)")
    await run.run_until(T0 + 900)
    sick = run.analytics.health_score(1)
    assert sick is not None and sick.score <= 20, sick
    keys = [f.key for f in sick.problems]
    assert {"not_answering", "timeouts", "error_rate"} <= set(keys)
    run.transport.fault = None
    await run.run_until(T0 + 1750)  # the rate window (10 min) has forgotten the fault
    well = run.analytics.health_score(1)
    assert well is not None and well.score >= 90, well
    # the 24 h trend shows the dip and the recovery, a point every 5 min
    trend = run.analytics.health_trend(1, "day")
    scores = [s for _, s in trend]
    assert max(scores) >= 95 and min(scores) <= 20 and scores[-1] >= 90
    assert all(b - a >= 300 for (a, _), (b, _) in zip(trend, trend[1:], strict=False))
    week = run.analytics.health_trend(1, "week")
    assert len(week) == 1  # one hour so far, its mean
    # persisted sparsely: hourly points and baselines come back
    restored = HealthModel()
    assert restored.import_state(run.analytics.health.export_state()) == []
    assert restored.trend(1, "week") == [(a, round(v, 1)) for a, v in week]
    assert restored.baselines.keys() == run.analytics.health.baselines.keys()


async def test_a_device_limited_to_20_registers_per_read_gets_a_smaller_block_size() -> (
    None
):
    """Exception 3 on reads above 20 while smaller ones answer: the suggestion says so."""
    run = Run(max_read_words=20)
    await run.run_until(T0 + 600)
    fixes = run.analytics.remediation()
    (fix,) = [f for f in fixes if f.key == "lower_max_registers"]
    assert fix.unit_id == 1
    assert fix.figures["smallest_failed"] > 20
    assert 1 <= fix.params["max_registers"] <= 20
    assert fix.params["max_registers"] == fix.figures["largest_ok"]
    assert f"set max registers per read to {fix.params['max_registers']}" in fix.message
    # once set, it is not suggested again
    run.analytics.settings = RemedySettings(max_registers=fix.params["max_registers"])
    assert not [
        f for f in run.analytics.remediation() if f.key == "lower_max_registers"
    ]
    # a device that takes 125 gets no such suggestion
    clean = Run()
    await clean.run_until(T0 + 600)
    assert clean.analytics.remediation() == []


async def test_busy_answers_suggest_a_pause_and_closing_after_each_cycle() -> None:
    """Every third request answered busy: a pause, with the count and share.

    The share is taken over the span both recent rings hold (the errors' ring is
    smaller): over the whole request ring it read 21 % here, with the errors of
    only the last few minutes counted against ten minutes of requests.

    Free riders off: with them every cycle reads the whole input table across the
    demo's gap at address 10, and while every third answer is busy the gap is never
    learned (the bisection that would learn it is interrupted), so its illegal-address
    answers crowd the busy ones out of the recent errors this share is taken from.
    """
    run = Run(
        config=EngineConfig(
            min_interval=5, max_interval=300, fixed_interval=15, rider_value=0.0
        )
    )
    count = [0]

    def busy(*_: object) -> ModbusError | None:
        count[0] += 1
        if count[0] % 3:
            return None
        return ModbusError("unit 1: device busy (exception code 6)")

    run.transport.fault = busy
    await run.run_until(T0 + 600)
    fixes = {f.key: f for f in run.analytics.remediation()}
    assert fixes["add_pause"].params == {"pause": 0.05}
    assert 25 <= fixes["add_pause"].figures["share_percent"] <= 40
    assert fixes["close_after_cycle"].params == {"close_after_cycle": True}
    assert "remove_register" not in fixes  # busy is not a refusal
    run.analytics.settings = RemedySettings(pause=0.05, close_after_cycle=True)
    fixes = {f.key: f for f in run.analytics.remediation()}
    assert fixes["add_pause"].params == {"pause": 0.1}
    assert "close_after_cycle" not in fixes


async def test_a_register_always_refused_is_named_for_removal() -> None:
    """The device refuses one register on its own: remove it, by name and address."""
    run = Run()
    spec = run.device.spec("uptime")

    def refuse(unit: int, table: Table, address: int, count: int) -> ModbusError | None:
        if table == spec.table and address <= spec.address < address + count:
            return IllegalAddress("illegal address", unit_id=unit, address=address)
        return None

    run.transport.fault = refuse
    await run.run_until(T0 + 1800)
    (fix,) = run.analytics.remediation()
    assert (fix.key, fix.uid) == ("remove_register", spec.uid)
    assert "'uptime' (input 30)" in fix.message
    health = run.analytics.health_score(1)
    assert health is not None
    assert next(f for f in health.factors if f.key == "quarantined").penalty == 5


async def test_a_silent_unit_gets_check_unit_id_and_wiring() -> None:
    """All requests to the unit fail: wrong unit id or wiring, nothing else."""
    run = Run()
    await run.run_until(T0 + 300)
    run.transport.fault = lambda *_: ModbusTimeout("unit 1: no answer (timeout)")
    await run.run_until(T0 + 600)
    (fix,) = run.analytics.remediation()
    assert fix.key == "check_unit" and fix.unit_id == 1
    assert "unit id is 1" in fix.message and fix.figures["failed"] >= 3


async def test_latency_creeping_up_says_the_bus_is_saturated() -> None:
    """Requests take 1 s instead of ~6 ms: saturated, with utilisation and ratio."""
    run = Run()
    await run.run_until(T0 + 1800)
    assert run.analytics.remediation() == []
    run.extra_latency = lambda _count: 1.0
    await run.run_until(T0 + 2400)
    (fix,) = run.analytics.remediation()
    assert fix.key == "bus_saturated"
    assert run.analytics.remediation(1) == [fix]  # connection-wide: the unit's too
    assert fix.figures["ratio"] > 50
    assert fix.figures["bus_utilisation_percent"] >= 30
    assert (
        f"busy {fix.figures['bus_utilisation_percent']:.0f} % of the time"
        in fix.message
    )
    health = run.analytics.health_score(CONNECTION)
    assert health is not None
    assert next(f for f in health.factors if f.key == "latency").penalty == 15


async def test_analytics_without_history_feeds_its_own() -> None:
    """Analytics() keeps a History when none is given; given one, it only reads it."""
    own = Analytics()
    run = Run(own)
    await run.run_until(T0 + 120)
    assert own.history.read_samples(run.uid("active_power"))
