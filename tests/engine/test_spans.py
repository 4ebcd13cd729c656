"""Span guards: loops over ``(end - start) / step`` refuse spans built from mixed clocks.

A span from a monotonic or virtual time (seconds since boot or since a replay's
start) to a Unix epoch time is 55 years: one step a second or every few seconds
is hundreds of millions of steps. Each guarded loop raises a :class:`SpanError`
naming the span and the limit at once, and runs normally on real spans.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adaptive_modbus_engine.analytics.forecast import daily_pattern
from adaptive_modbus_engine.analytics.series import resample
from adaptive_modbus_engine.charts import local_days, local_hours, time_ticks
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.replay import ReplayTrace, VirtualClock, drive
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport
from adaptive_modbus_engine.simulator.replay import load_replay
from adaptive_modbus_engine.simulator.trace import TraceError, read_trace
from adaptive_modbus_engine.spans import MAX_SPAN, SpanError, check_span, looks_mixed

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
HOUR = 3600.0
DAY = 86_400.0
MIXED = "two clocks mixed"


def test_check_span_names_the_span_and_the_limit() -> None:
    """The message says what, both ends, the days and the limit, and the clock hint."""
    check_span(T0, T0 + 399 * DAY, "x")  # under the limit: nothing
    check_span(T0, T0 - DAY, "x")  # backwards: the loop runs zero times
    with pytest.raises(SpanError) as caught:
        check_span(12.5, T0, "replay")
    message = str(caught.value)
    assert message.startswith("replay: span 12 .. 1767225600 s is 20,454.0 days")
    assert "over the limit of 400 days" in message and MIXED in message
    assert isinstance(caught.value, ValueError)
    with pytest.raises(SpanError) as caught:
        check_span(T0, T0 + 401 * DAY, "hours")
    assert MIXED not in str(caught.value)  # both epoch: just too long
    with pytest.raises(SpanError, match="not finite"):
        check_span(0.0, float("inf"), "x")
    assert looks_mixed(3.0, T0) and looks_mixed(T0, 3.0) and not looks_mixed(T0, T0)


def _engine(clock: VirtualClock) -> PollEngine:
    device = SimulatedDevice(seed=42, clock=clock.now, start=clock.now())
    transport = InProcessTransport(
        device, latency=lambda *_: 0.002, clock_advance=clock.advance
    )
    return PollEngine(
        device.registers,
        transport,
        clock.now,
        EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
    )


async def test_drive_refuses_an_epoch_end_on_a_monotonic_clock() -> None:
    """Clock at 0 s, end at an epoch time: refused before the first cycle."""
    clock = VirtualClock(0.0)
    engine = _engine(clock)
    with pytest.raises(SpanError, match=MIXED) as caught:
        await drive(engine, clock, T0, label="bench replay")
    assert str(caught.value).startswith("bench replay: clock to end")
    assert clock.now() == 0.0  # nothing ran


async def test_drive_refuses_due_times_on_another_clock() -> None:
    """An engine on a monotonic clock driven by an epoch clock: refused at once."""
    engine_clock = VirtualClock(0.0)
    engine = _engine(engine_clock)
    clock = VirtualClock(T0)
    with pytest.raises(SpanError, match="first due time to clock"):
        await drive(engine, clock, T0 + HOUR)


async def test_drive_runs_a_normal_span() -> None:
    """An hour of the demo device on one epoch clock runs to its end."""
    clock = VirtualClock(T0)
    engine = _engine(clock)
    cycles = await drive(engine, clock, T0 + HOUR)
    assert cycles > 100
    assert T0 + HOUR - 300 <= clock.now() < T0 + HOUR


def test_replay_trace_refuses_mixed_ends() -> None:
    """A shadow replay's trace from 0 to an epoch time is refused when built."""
    ReplayTrace(specs=(), series={}, start=T0, end=T0 + DAY)
    with pytest.raises(SpanError, match=MIXED):
        ReplayTrace(specs=(), series={}, start=0.0, end=T0)


def test_chart_buckets_refuse_mixed_spans() -> None:
    """Hour and day buckets (and the ticks built on them) refuse 55 years."""
    tz = ZoneInfo("Europe/Berlin")  # T0 is 01:00 there: 31 days overlap 30 x 24 h
    assert len(local_days(T0, T0 + 30 * DAY, tz)) == 31
    assert len(local_hours(T0, T0 + 48 * HOUR, tz)) == 48
    assert time_ticks(T0, T0 + 10 * DAY, tz)
    for buckets in (local_hours, local_days, time_ticks):
        with pytest.raises(SpanError, match=MIXED):
            buckets(120.0, T0, UTC)


def test_analytics_grids_refuse_mixed_spans() -> None:
    """The daily-pattern grid and resampling refuse mixed spans; real ones work."""
    day = [(T0 + k * HOUR, float(k % 24)) for k in range(24 * 3)]
    assert daily_pattern(day)
    with pytest.raises(SpanError, match="daily pattern"):
        daily_pattern([(5.0, 1.0), *day])
    assert resample(day, T0, HOUR, 72) == [float(k % 24) for k in range(72)]
    with pytest.raises(SpanError, match="resampled slots"):
        resample(day, 0.0, 1.0, int(T0))


def test_a_trace_mixing_relative_and_epoch_seconds_is_refused(tmp_path: Path) -> None:
    """One row of relative seconds among epoch rows: a clear TraceError, no grid."""
    path = tmp_path / "log.csv"
    path.write_text(f"{T0:.0f},power,1\n5,power,2\n{T0 + 10:.0f},power,3\n")
    samples = read_trace(path)
    with pytest.raises(TraceError) as caught:
        samples.span()
    assert caught.value.field == "timestamp"
    assert MIXED in str(caught.value) and "400 days" in str(caught.value)
    map_path = tmp_path / "map.yaml"
    map_path.write_text(
        "registers:\n  - key: power\n    name: Power\n    table: input\n"
        "    address: 0\n    data_type: int16\n"
    )
    with pytest.raises(TraceError, match=MIXED):
        load_replay(path, map_path)
    path.write_text(f"{T0:.0f},power,1\n{T0 + 10:.0f},power,3\n")
    assert read_trace(path).span() == (T0, T0 + 10)


def test_max_span_is_400_days() -> None:
    """The limit the messages quote."""
    assert MAX_SPAN == 400 * DAY


def test_the_benchmark_loader_refuses_a_mixed_trace(tmp_path: Path) -> None:
    """The benchmark's loader builds a one-second grid over the span: refused first.

    Unguarded, this trace's grid and its index arrays would take 2 x 14 GB.
    """
    pytest.importorskip("numpy", reason="the benchmark's loader needs numpy")
    from benchmarks import trace  # noqa: PLC0415 - only where numpy is installed

    path, map_path = tmp_path / "log.csv", tmp_path / "map.yaml"
    path.write_text(f"0,power,1\n{T0:.0f},power,3\n")
    map_path.write_text(
        "registers:\n  - key: power\n    name: Power\n    table: input\n"
        "    address: 0\n    data_type: int16\n"
    )
    with pytest.raises(TraceError, match=MIXED):
        trace.load_trace(path, map_path)
