"""Views of the demo device after a scenario hour in virtual time.

Checked against the snapshot and the export schema.
"""

from __future__ import annotations

import json
import math

import pytest

from adaptive_modbus_engine.errors import EngineUsageError
from adaptive_modbus_engine.history import History
from adaptive_modbus_engine.palette import DEFAULT_PALETTE, IntervalClass, Palette
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport
from adaptive_modbus_engine.views import (
    SCHEMA_FILE,
    Source,
    cluster_view,
    device_view,
    export_dataset,
    register_view,
    static_blocks_per_minute,
    system_view,
)
from tests.visualization_schema import load_schema, validate

# 2026-01-01 00:00 UTC: hour buckets line up with the scenario hour
T0 = 1_767_225_600.0
SUPPLY = "1.supply_temperature"


class Demo:
    """The demo device polled in virtual time, feeding a History after every cycle."""

    def __init__(self, history: History | None = None) -> None:
        """Poll the demo device in virtual time, feeding ``history``."""
        self.clock = VirtualClock(T0)
        self.device = SimulatedDevice(seed=42, clock=self.clock.now, start=T0)
        # 2 ms per request plus 0.1 ms per register: bus time shows in the aggregates
        latency = 0.002
        self.transport = InProcessTransport(
            self.device,
            latency=lambda _kind, _unit, count: latency + 0.0001 * count,
            clock_advance=self._advance,
        )
        self.engine = PollEngine(
            self.device.registers,
            self.transport,
            self.clock.now,
            EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
        )
        self.history = history or History()

    def _advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def run_until(self, until: float) -> None:
        """Run every cycle due up to ``until``, feeding the history."""
        while (due := self.engine.next_due()) <= until:
            self.clock.advance_to(due)
            result = await self.engine.poll_due()
            self.history.observe(
                result, self.engine.snapshot(), self.engine.cost_model()
            )
        self.clock.advance_to(until)

    def source(self, palette: Palette = DEFAULT_PALETTE) -> Source:
        """Return what the views read: snapshot, history and ``palette``."""
        return Source(
            snapshot=self.engine.snapshot(),
            history=self.history,
            cost=self.engine.cost_model(),
            name="demo",
            palette=palette,
        )


@pytest.fixture(name="demo")
async def demo_fixture() -> Demo:
    """Provide the demo six minutes into its incident."""
    demo = Demo()
    await demo.run_until(T0 + signals.incident_start(0) + 360)
    return demo


async def test_incident_shows_as_intervals_shrinking_and_the_trend_says_falling(
    demo: Demo,
) -> None:
    """Test that the incident shows as intervals shrinking and a falling trend."""
    view = register_view(demo.source(), SUPPLY, period=900)
    validate(view, ref="register")
    incident = T0 + signals.incident_start(0)
    after = [c for c in view["interval_history"] if c["at"] >= incident]
    assert after, "no interval change during the incident"
    assert after[-1]["new"] < after[0]["old"] / 2
    assert view["trend"]["direction"] == "falling"
    assert view["trend"]["slope_doublings_per_hour"] < 0
    assert view["trend"]["confidence"] >= DEFAULT_PALETTE.trend_confidence
    # a setpoint nobody writes sat at its maximum all along: stable or unknown, never falling
    quiet = register_view(demo.source(), "1.room_setpoint", period=900)
    assert quiet["trend"]["direction"] in {"stable", "unknown"}
    assert quiet["interval_class"] == "slow" and quiet["interval"] == pytest.approx(300)


async def test_views_after_a_scenario_hour_add_up(demo: Demo) -> None:
    """Test that the views after a scenario hour add up with the snapshot."""
    await demo.run_until(T0 + 3600)
    source = demo.source()
    snap = source.snapshot
    system = system_view(source, period=3600)
    validate(system, ref="system")
    enabled = [r for r in snap.registers.values() if r.enabled]
    classes = system["interval_classes"]
    assert (
        sum(c["count"] for c in classes)
        == len(enabled)
        == system["registers"]["enabled"]
    )
    assert sum(c["share"] for c in classes) == pytest.approx(1.0, abs=1e-3)
    for reg in enabled:  # each register counted in the class its interval falls in
        name = DEFAULT_PALETTE.classify(reg.effective_interval).name
        assert any(c["name"] == name and c["count"] > 0 for c in classes)
    totals = system["period_totals"]
    # one scenario hour, all inside the period: the hourly aggregates hold every request
    assert totals["requests"] == snap.totals.requests
    assert totals["registers_read"] == snap.totals.registers_read
    assert totals["errors"] == snap.totals.errors
    assert sum(h["requests"] for h in system["hourly"]) == snap.totals.requests
    assert totals["bus_time"] == pytest.approx(
        demo.transport.counters.bus_time, rel=1e-3
    )
    # fixed per-entity polling at 15 s over the time polled, the alarms every 10 s
    # (their map's max_interval, as a hand configuration for this map would read them)
    alarms = {uid for uid, r in snap.registers.items() if r.fixed_interval == 10}
    assert len(alarms) == 5
    assert {r.fixed_interval for r in enabled if r.uid not in alarms} == {15}
    assert totals["fixed_requests"] == pytest.approx(
        (len(enabled) - 5) * totals["seconds"] / 15 + 5 * totals["seconds"] / 10,
        rel=1e-3,
    )
    # static blocks: a block holding an alarm is read every 10 s, the others every 15 s
    with_alarm = sum(1 for c in snap.clusters if alarms & set(c.uids))
    assert 0 < with_alarm < len(snap.clusters)
    assert static_blocks_per_minute(snap) == pytest.approx(
        60 * with_alarm / 10 + 60 * (len(snap.clusters) - with_alarm) / 15
    )
    assert totals["seconds"] == pytest.approx(3600, abs=60)
    assert totals["saving_vs_fixed_percent"] > 50
    assert totals["static_blocks_requests"] == pytest.approx(
        static_blocks_per_minute(snap) * totals["seconds"] / 60, rel=1e-3
    )
    assert system["health"]["status"] in {"ok", "degraded"}

    device = device_view(source, 1, period=3600)
    validate(device, ref="device")
    assert [r["uid"] for r in device["registers"]] == [
        uid for uid, r in snap.registers.items() if r.unit_id == 1
    ]
    assert device["holes"] == {"input": list(snap.holes["1.input"])}
    setpoint = next(r for r in device["registers"] if r["uid"] == "1.room_setpoint")
    assert setpoint["reads"] == snap.registers["1.room_setpoint"].reads
    # every read is in the history (a ring of 256); the view shows those in the period
    samples = demo.history.read_samples("1.room_setpoint")
    assert len(samples) == min(setpoint["reads"], 256)
    since = setpoint["at"] - 3600
    assert len(setpoint["value_history"]) == sum(1 for s in samples if s.at >= since)
    assert setpoint["pins"] == []

    clusters = cluster_view(source)
    validate(clusters, ref="cluster")
    members = [
        uid for t in clusters["tables"] for b in t["blocks"] for uid in b["members"]
    ]
    # every enabled, not quarantined register is in exactly one block
    live = {r.uid for r in enabled if r.quarantined_until is None}
    assert sorted(members) == sorted(live)
    for table in clusters["tables"]:
        for block in table["blocks"]:
            assert block["end"] - block["address"] + 1 == block["count"]
            fastest = min(
                snap.registers[u].effective_interval for u in block["members"]
            )
            for uid in block["riders"]:
                reg = snap.registers[uid]
                inside = block["address"] <= reg.address <= block["end"]
                assert inside and (
                    uid not in block["members"] or reg.effective_interval >= 2 * fastest
                )
            assert block["interval_spread"]["min"] <= block["interval_spread"]["max"]
    assert sum(b["reads"] for t in clusters["tables"] for b in t["blocks"]) > 0
    # the demo's setpoint (300 s) shares a block with faster registers: it rides along
    riders = [
        uid for t in clusters["tables"] for b in t["blocks"] for uid in b["riders"]
    ]
    assert riders
    assert clusters["cost_model"]["request_overhead"] == source.cost.request_overhead


async def test_export_matches_the_schema_and_is_json(demo: Demo) -> None:
    """Test that the export matches the schema and is plain JSON."""
    data = export_dataset([demo.source()], period=3600, generated_at=T0 + 4000)
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    validate(data)
    assert data["schema_version"] == 1
    assert data["generated_at_iso"].startswith("2026-01-01T01:06:40")
    assert SCHEMA_FILE.is_file()
    assert json.loads(SCHEMA_FILE.read_text()) == load_schema()


async def test_schema_check_catches_a_broken_view(demo: Demo) -> None:
    """Test that the schema check catches a broken view."""
    view = system_view(demo.source())
    del view["health"]
    view["registers"]["total"] = -1
    with pytest.raises(AssertionError, match=r"missing 'health'"):
        validate(view, ref="system")
    with pytest.raises(AssertionError, match=r"-1 < 0"):
        validate(view, ref="system")


async def test_palette_is_configurable_and_used_by_the_views(demo: Demo) -> None:
    """Test that the palette is configurable and the views use it."""
    two = Palette(
        classes=(
            IntervalClass("quick", 60.0, "#000000"),
            IntervalClass("rest", math.inf, "#ff"),
        )
    )
    view = system_view(demo.source(two))
    assert [c["name"] for c in view["interval_classes"]] == ["quick", "rest"]
    assert view["palette"]["classes"][1]["upper"] is None
    with pytest.raises(EngineUsageError):
        Palette(classes=(IntervalClass("a", 60.0, "#000"),))
    with pytest.raises(EngineUsageError):
        Palette(
            classes=(IntervalClass("a", 60.0, "#0"), IntervalClass("b", 30.0, "#1"))
        )


def test_trend_rules() -> None:
    """Test the trend rules: direction, too few points, slow change and zig-zags."""
    hour = 3600.0
    falling = [(0.0, 300.0), (0.1 * hour, 60.0), (0.2 * hour, 10.0), (0.3 * hour, 5.0)]
    rising = [(t, 3000.0 / v) for t, v in falling]
    flat = [(0.0, 60.0), (hour, 60.0), (2 * hour, 60.0)]
    assert DEFAULT_PALETTE.trend(falling).direction == "falling"
    assert DEFAULT_PALETTE.trend(rising).direction == "rising"
    assert DEFAULT_PALETTE.trend(flat).direction == "stable"
    assert DEFAULT_PALETTE.trend(falling[:2]).direction == "unknown"
    # the same change spread over 100 hours is below the slope threshold
    slow = [(t * 1000, v) for t, v in falling]
    assert DEFAULT_PALETTE.trend(slow).direction == "stable"
    # a zig-zag has low confidence: not called a trend
    zigzag = [(i * 600.0, 5.0 if i % 2 else 300.0) for i in range(8)]
    assert DEFAULT_PALETTE.trend(zigzag).direction == "stable"


def test_unknown_register_and_unit_raise_key_error() -> None:
    """Test that an unknown register or unit raises KeyError."""
    demo = Demo()
    with pytest.raises(KeyError):
        register_view(demo.source(), "9.nothing")
    with pytest.raises(KeyError):
        device_view(demo.source(), 9)
