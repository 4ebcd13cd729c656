"""The per-connection Analytics object: long windows, forecast errors, state, report."""

from __future__ import annotations

import json
import math

import pytest

from adaptive_modbus_engine.analytics import (
    Analytics,
    HourlySeries,
    aggregate,
    build_report,
)
from adaptive_modbus_engine.history import History
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.scheduler import CycleResult
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.stats import EngineSnapshot, RegisterSnapshot, Totals
from adaptive_modbus_engine.views import Source, register_view
from tests.visualization_schema import validate

from .fleet import T0, Run

HOUR = 3600.0
DAY = 24 * HOUR


def test_hourly_series_holds_values_across_hours_and_caps_gaps() -> None:
    """Hour rows integrate the held value; a gap longer than an hour is not held."""
    series = HourlySeries()
    series.add(T0, 10.0)
    series.add(T0 + 1800, 20.0)
    series.add(T0 + 5400, 30.0)  # 20 held from 1800 to 5400, across the boundary
    (first, second) = series.rows(T0, T0 + 2 * HOUR)
    assert first[1] == pytest.approx(10 * 1800 + 20 * 1800) and first[2] == 3600
    assert (first[3], first[4], first[5]) == (10.0, 20.0, 2)
    assert second[1] == pytest.approx(20 * 1800) and second[5] == 1
    series.add(T0 + 20 * HOUR, 40.0)  # 30 held for at most an hour
    held = sum(r[2] for r in series.rows(T0, T0 + 21 * HOUR))
    assert held == pytest.approx(3600 + 1800 + HOUR)


async def test_aggregate_over_a_window_longer_than_the_raw_reads() -> None:
    """Hourly rows fill in where the read ring no longer reaches, time-weighted."""
    history = History(reads_kept=16)  # a small ring: old reads fall out fast
    analytics = Analytics(history)
    run = Run(analytics)
    uid = run.uid("active_power")
    history_all = History(reads_kept=100_000)
    while (due := run.engine.next_due()) <= T0 + 2 * HOUR:
        run.clock.advance_to(due)
        result = await run.engine.poll_due()
        snap = run.engine.snapshot()
        history.observe(result, snap)
        history_all.observe(result, snap)
        analytics.observe(result, snap)
    analytics_reads = history_all.read_samples(uid)
    now = run.clock.now()
    assert history.read_samples(uid)[0].at > now - HOUR  # the ring is short
    # from an hour boundary on (hourly rows count whole hours)
    combined = analytics.aggregate(uid, T0, now)
    exact = aggregate(analytics_reads, T0, now)
    assert combined.count == exact.count
    assert combined.minimum == exact.minimum and combined.maximum == exact.maximum
    assert combined.mean == pytest.approx(exact.mean)
    assert combined.time_weighted_mean == pytest.approx(
        exact.time_weighted_mean, rel=1e-3
    )
    # and trend/forecast reach as far back through the hourly means
    assert analytics.samples(uid, T0)[0].at < now - HOUR


async def test_forecasts_are_scored_and_summarised_per_register() -> None:
    """After an hour, the forecasts made 15 min ahead have been scored."""
    run = Run()
    await run.run_until(T0 + HOUR)
    uid = run.uid("supply_temperature")
    accuracy = run.analytics.forecast_accuracy(uid)
    assert accuracy is not None and accuracy.evaluated >= 2
    assert accuracy.horizon == 900 and accuracy.mae is not None
    summary = run.analytics.register_summary(uid, HOUR, 1800)
    assert summary["forecast"]["points"] and summary["trend"]["direction"] in (
        "rising", "falling", "flat",
    )  # fmt: skip
    assert summary["aggregate"]["count"] > 0
    assert summary["anomalies"]  # the incident began at 30 min
    json.dumps(summary, allow_nan=False)
    # on/off registers are aggregated but not forecast
    assert run.analytics.forecast_accuracy(run.uid("status_fault")) is None


async def test_state_round_trip_and_registers_that_left() -> None:
    """Export/import keeps forecast errors and health; unknown registers are dropped."""
    run = Run()
    await run.run_until(T0 + HOUR)
    data = json.loads(json.dumps(run.analytics.export_state()))
    restored = Analytics()
    assert restored.import_state(data) == []
    uid = run.uid("supply_temperature")
    before, after = (
        run.analytics.forecast_accuracy(uid),
        restored.forecast_accuracy(uid),
    )
    assert before is not None and after is not None
    assert after.evaluated == before.evaluated and after.coverage == before.coverage
    assert after.mae == pytest.approx(before.mae, abs=1e-6)
    only = Analytics()
    only.import_state(data, uids=[run.uid("active_power")])
    assert only.forecast_accuracy(uid) is None
    assert Analytics().import_state({"version": 0}) == [
        "analytics: unknown format, starting empty"
    ]
    assert len(json.dumps(data)) < 300 * len(run.engine.uids)


async def test_report_of_the_incident_fits_a_notification() -> None:
    """A day report: health, anomalies, traffic, registers; at most 4000 characters."""
    run = Run()
    await run.run_until(T0 + signals.CYCLE_SECONDS)
    names = {run.uid("active_power"): "Heat pump power"}
    report = build_report(
        run.analytics, period="day", title="Demo", unit_names={1: "Heat pump"},
        register_names=names,
    )  # fmt: skip
    md = report.markdown
    assert len(md) <= 4000
    assert md.startswith("## Demo: day report")
    assert "**Health**" in md and "- Heat pump: " in md
    assert f"**Anomalies**: {len(run.anomalies)}" in md
    assert "Heat pump power" in md
    assert report.data["anomalies"]["count"] == len(run.anomalies)
    assert report.data["traffic"]["requests"] == run.engine.snapshot().totals.requests
    json.dumps(report.data, allow_nan=False)
    # the device report covers one unit; a tight limit cuts register lines, says so
    small = build_report(run.analytics, period="week", unit_id=1, max_chars=900)
    assert len(small.markdown) <= 900
    assert "more registers" in small.markdown
    assert small.data["registers_shown"] < len(small.data["registers"])
    with pytest.raises(ValueError, match="unit 7"):
        build_report(run.analytics, unit_id=7)
    with pytest.raises(KeyError):
        build_report(run.analytics, period="year")
    with pytest.raises(ValueError, match="no poll cycle"):
        build_report(Analytics())


async def test_register_view_shows_the_forecast_error() -> None:
    """The register view carries the forecast accuracy, valid against the schema."""
    run = Run()
    await run.run_until(T0 + HOUR)
    source = Source(
        snapshot=run.engine.snapshot(), history=run.analytics.history,
        cost=run.engine.cost_model(), name="demo", analytics=run.analytics,
    )  # fmt: skip
    view = register_view(source, run.uid("supply_temperature"))
    validate(view, ref="register")
    accuracy = view["forecast_accuracy"]
    assert accuracy["evaluated"] >= 2 and accuracy["horizon"] == 900
    assert 0 <= accuracy["coverage"] <= 1
    flag = register_view(source, run.uid("status_fault"))
    validate(flag, ref="register")
    assert flag["forecast_accuracy"] is None


def _snapshot_with(uid: str, at: float, value: float) -> EngineSnapshot:
    """Return a one-register snapshot read at ``at`` (the engine's read API)."""
    reg = RegisterSnapshot(
        uid=uid, key=uid, unit_id=1, table=Table.INPUT, address=0, size=1,
        enabled=True, value=value, last_read=at, last_change=at, next_due=at + 600,
        interval=600, effective_interval=600, reason="rate", detail="", tolerance=0.1,
        rate=0.0, noise=0.0, noisy=False, pattern_factor=1.0, reads=1, changes=1,
        errors=0, failure_streak=0, quarantined_until=None,
    )  # fmt: skip
    return EngineSnapshot(
        at=at, adaptive=True, fixed_interval=30, registers={uid: reg}, clusters=(),
        totals=Totals(), holes={},
    )  # fmt: skip


def test_forecast_turns_seasonal_once_a_daily_pattern_is_established() -> None:
    """A daily sine read every 10 min: Holt for a day, Holt-Winters after two."""
    analytics = Analytics()
    cycle = CycleResult(
        started=0, duration=0, changed={}, failed=frozenset(), requests=1,
        registers_read=1, errors=(),
    )  # fmt: skip

    def truth(t: float) -> float:
        return 20.0 + 5.0 * math.sin(2 * math.pi * (t - T0) / DAY)

    def feed(until: float, start: float) -> None:
        t = start
        while t < until:
            analytics.observe(cycle, _snapshot_with("r", t, truth(t)))
            t += 600

    feed(T0 + DAY, T0)
    one_day = analytics.forecast("r", 6 * HOUR)
    assert one_day is not None and one_day.method == "holt"
    feed(T0 + 3 * DAY, T0 + DAY)
    made = analytics.forecast("r", 6 * HOUR)
    assert made is not None and made.method == "holt_winters" and made.season == DAY
    # hourly means for the older days, raw reads for the last 256
    errors = [abs(p.value - truth(p.at)) for p in made.points]
    assert max(errors) < 0.5, max(errors)  # 0.33 measured: 7 % of the amplitude
