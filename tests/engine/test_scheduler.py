"""PollEngine on the simulated demo device, in virtual time."""

from __future__ import annotations

from collections.abc import Sequence
import json

import pytest

from adaptive_modbus_engine import scheduler
from adaptive_modbus_engine.errors import (
    ErrorKind,
    IllegalAddress,
    ModbusConnectionError,
)
from adaptive_modbus_engine.planner import CostModel, DeviceLimits
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.scheduler import (
    QUARANTINE_FIRST,
    CycleResult,
    EngineConfig,
    PollEngine,
)
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport


class VirtualClock:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 0.0) -> None:
        """Start the clock at ``t``."""
        self.t = t

    def __call__(self) -> float:
        """Return the current virtual time."""
        return self.t


def make_engine(
    config: EngineConfig | None = None,
    registers: Sequence[RegisterSpec] | None = None,
    seed: int = 42,
) -> tuple[PollEngine, SimulatedDevice, InProcessTransport, VirtualClock]:
    """Return an engine polling the demo device in virtual time, with its parts."""
    clock = VirtualClock()
    device = SimulatedDevice(seed=seed, clock=clock, start=0.0)
    transport = InProcessTransport(device)
    engine = PollEngine(
        registers if registers is not None else device.registers,
        transport,
        clock,
        config,
    )
    return engine, device, transport, clock


async def run_until(
    engine: PollEngine, clock: VirtualClock, until: float
) -> list[CycleResult]:
    """Run every cycle due up to ``until`` on the virtual clock; return the results."""
    results = []
    while (due := engine.next_due()) <= until:
        clock.t = max(clock.t, due)
        results.append(await engine.poll_due())
    clock.t = max(clock.t, until)
    return results


def interval(engine: PollEngine, uid: str) -> float:
    """Return the current interval of register ``uid``."""
    return engine.snapshot().registers[uid].interval


async def test_first_cycle_reads_everything_and_learns_the_hole() -> None:
    """Test that the first cycle reads every register and learns the demo's hole."""
    engine, device, transport, clock = make_engine()
    result = await engine.poll_due()
    # every register got a value although one block spanned the illegal address 10
    assert result.failed == frozenset()
    assert set(result.changed) == {spec.uid for spec in device.registers}
    assert any(e.kind is ErrorKind.ILLEGAL_ADDRESS for e in result.errors)
    snapshot = engine.snapshot()
    assert snapshot.holes == {"1.input": (10,)}
    # learned: later cycles never touch address 10 again and have no errors
    transport.reset_counters()
    later = await run_until(engine, clock, 600)
    assert all(not r.errors for r in later)
    for request in engine.snapshot().recent_requests[-20:]:
        if request.table is Table.INPUT:
            assert not request.address <= 10 < request.address + request.count


async def test_values_match_the_device() -> None:
    """Test that the values the engine shows are the device's."""
    engine, device, _, clock = make_engine()
    await run_until(engine, clock, 300)
    for spec in device.registers:
        snapshot = engine.snapshot().registers[spec.uid]
        assert snapshot.last_read is not None
        assert engine.value(spec.uid) == device.truth(spec.key, snapshot.last_read)


async def test_registers_sharing_a_block_are_read_by_one_request() -> None:
    """Test that registers due together in one block are read by one request."""
    engine, device, transport, clock = make_engine()
    await engine.poll_due()  # learn the hole
    transport.reset_counters()
    clock.t = 100.0
    for spec in device.registers:  # make everything due at once
        engine.set_enabled(spec.uid, False)
        engine.set_enabled(spec.uid, True)
    result = await engine.poll_due()
    clusters = engine.snapshot().clusters
    assert result.requests == len(clusters) == transport.counters.requests
    temps = {"1.outdoor_temperature", "1.supply_temperature", "1.return_temperature"}
    assert any(temps <= set(c.uids) for c in clusters)
    assert result.registers_read > result.requests * 3


async def test_quiet_register_grows_to_max_busy_one_shrinks_to_min() -> None:
    """Test that a quiet register grows to the maximum and a busy one shrinks to the minimum."""
    config = EngineConfig(min_interval=5, max_interval=300)
    engine, _, _, clock = make_engine(config)
    await run_until(engine, clock, signals.incident_start(0) - 60)
    # the setpoint never changes unless written: its interval grows to the max
    assert interval(engine, "1.room_setpoint") == pytest.approx(300)
    # the outdoor temperature drifts slowly: far above the minimum
    assert interval(engine, "1.outdoor_temperature") > 60
    # in the escalation the supply temperature climbs fast: it is polled near the minimum
    await run_until(engine, clock, signals.incident_start(0) + 360)
    assert interval(engine, "1.supply_temperature") <= 4 * config.min_interval


async def test_incident_shortens_intervals_within_a_few_cycles() -> None:
    """Test that the demo's incident shortens the intervals within a few cycles."""
    engine, _, _, clock = make_engine(EngineConfig(min_interval=5, max_interval=300))
    start = signals.incident_start(0)
    await run_until(engine, clock, start - 1)
    before = interval(engine, "1.supply_temperature")
    assert before >= 60  # the slow drift before the incident had pushed it to minutes
    # the warning bit flips at the incident's first step: the first read that sees it
    # shortens that register's interval at once
    warning_before = interval(engine, "1.status_warning")
    halved_at = None
    t = start
    while halved_at is None and t < start + 720:
        t += 10
        await run_until(engine, clock, t)
        if interval(engine, "1.supply_temperature") < before / 2:
            halved_at = t
    assert halved_at is not None and halved_at - start <= 240
    warning = [
        c
        for c in engine.snapshot().recent_interval_changes
        if c.uid == "1.status_warning" and c.at >= start
    ]
    assert warning and warning[0].reason == "jump"
    assert warning[0].interval < warning_before


async def test_noise_below_tolerance_does_not_drive_polling() -> None:
    """Test that noise below the tolerance does not drive polling."""
    # the outdoor temperature is read every cycle it rides along; its reads are noisy in
    # the last digit but the interval stays far from the minimum
    engine, _, _, clock = make_engine(EngineConfig(min_interval=5, max_interval=300))
    await run_until(engine, clock, 1500)
    snap = engine.snapshot().registers["1.outdoor_temperature"]
    assert not snap.noisy and snap.interval >= 60


async def test_noisy_register_is_flagged_not_pinned_to_min() -> None:
    """Test that a register noisier than its tolerance is flagged, not pinned to the minimum."""
    engine, _, _, clock = make_engine(EngineConfig(min_interval=5, max_interval=300))
    await run_until(engine, clock, 1500)
    freq = engine.snapshot().registers["1.grid_frequency"]
    assert freq.noisy
    assert freq.reason == "noisy"
    assert freq.interval > 5


async def test_adaptive_off_polls_every_register_at_the_fixed_interval() -> None:
    """Test that with adaptive polling off every register is read at the fixed interval.

    Within its map's own bounds: the demo's alarms (``max_interval: 10``) every 10 s.
    """
    config = EngineConfig(adaptive=False, fixed_interval=30, merge_reads=False)
    engine, device, transport, clock = make_engine(config)
    await engine.poll_due()
    transport.reset_counters()
    cycles = await run_until(engine, clock, 30 * 10 - 1)
    bounded = [r for r in device.registers if r.max_interval is not None]
    assert {r.max_interval for r in bounded} == {10}
    assert len(bounded) == 5
    # every 10 s a cycle (29 up to 299 s); every third one reads everything
    assert len(cycles) == 29
    # one request per register every 30 s, the alarms' every 10 s
    others = len(device.registers) - len(bounded)
    assert transport.counters.requests == 9 * others + 29 * len(bounded)
    intervals = {
        r.uid: r.effective_interval for r in engine.snapshot().registers.values()
    }
    assert {intervals[r.uid] for r in bounded} == {10}
    assert set(intervals.values()) == {10, 30}
    snap = engine.snapshot()
    assert snap.fixed_requests_per_minute == pytest.approx(
        60 * (others / 30 + len(bounded) / 10)
    )


async def test_adaptive_needs_far_fewer_requests_than_fixed() -> None:
    """Test that adaptive polling needs far fewer requests than fixed polling."""
    fixed_engine, _, fixed_transport, fixed_clock = make_engine(
        EngineConfig(adaptive=False, fixed_interval=15, merge_reads=False)
    )
    engine, _, transport, clock = make_engine(
        EngineConfig(min_interval=5, max_interval=300)
    )
    await run_until(fixed_engine, fixed_clock, signals.CYCLE_SECONDS)
    await run_until(engine, clock, signals.CYCLE_SECONDS)
    # the demo's alarms are polled at least every 10 s whatever they do (profile max_interval):
    # those polls alone are half of adaptive's requests, so the margin here is 4x, not more
    assert transport.counters.requests * 4 < fixed_transport.counters.requests


async def test_disabled_registers_are_not_read() -> None:
    """Test that disabled registers are not read."""
    engine, _, _, clock = make_engine()
    await engine.poll_due()
    engine.set_enabled("1.room_setpoint", False)
    engine.set_enabled("1.power_limit", False)
    engine.set_enabled("1.flow_rate", False)
    reads_before = engine.snapshot().registers["1.room_setpoint"].reads
    await run_until(engine, clock, 1200)
    snap = engine.snapshot()
    assert snap.registers["1.room_setpoint"].reads == reads_before
    assert snap.registers["1.room_setpoint"].next_due is None
    assert all(r.table is not Table.HOLDING for r in snap.recent_requests if r.at > 0)
    engine.set_enabled("1.room_setpoint", True)
    engine.set_enabled("1.room_setpoint", True)  # idempotent
    await run_until(engine, clock, 1201)
    assert engine.snapshot().registers["1.room_setpoint"].reads == reads_before + 1


async def test_disabling_everything_means_nothing_is_due() -> None:
    """Test that with every register disabled nothing is ever due."""
    engine, device, _, _ = make_engine()
    for spec in device.registers:
        engine.set_enabled(spec.uid, False)
    assert engine.next_due() == float("inf")


async def test_write_reads_back_and_resets_interval() -> None:
    """Test that a write is read back and resets the register's interval."""
    engine, device, _, clock = make_engine()
    await run_until(engine, clock, 3000)
    assert interval(engine, "1.room_setpoint") > 5
    clock.t = 3001
    value = await engine.write("1.room_setpoint", 23.5)
    assert value == 23.5
    assert device.truth("room_setpoint", clock.t) == 23.5
    snap = engine.snapshot().registers["1.room_setpoint"]
    assert snap.interval == 5 and snap.reason == "write"
    assert snap.value == 23.5
    assert await engine.write("1.pump_enable", False) is False
    assert engine.snapshot().totals.writes == 2
    with pytest.raises(ValueError, match="not writable"):
        await engine.write("1.active_power", 1)
    with pytest.raises(KeyError):
        await engine.write("1.nope", 1)


async def test_failed_write_raises_and_is_counted() -> None:
    """Test that a failed write raises and is counted."""
    engine, _, _, _ = make_engine()
    with pytest.raises(Exception) as err:
        await engine.write("1.room_setpoint", 99)  # above the device's max: refused
    assert getattr(err.value, "kind", None) is ErrorKind.DEVICE_FAILURE
    assert engine.snapshot().recent_errors[-1].kind is ErrorKind.DEVICE_FAILURE


async def test_register_on_an_illegal_address_is_quarantined_and_reprobed() -> None:
    """Test that a register on an illegal address is quarantined and probed again later."""
    clock = VirtualClock()
    device = SimulatedDevice(clock=clock, start=0.0)
    bad = RegisterSpec("ghost", 1, Table.INPUT, 10, DataType.UINT16)
    registers = [*device.registers, bad]
    engine = PollEngine(registers, InProcessTransport(device), clock)
    first = await engine.poll_due()
    assert "1.ghost" in first.failed
    # everything else was applied: partial success, never all-or-nothing
    assert len(first.changed) == len(device.registers)
    snap = engine.snapshot().registers["1.ghost"]
    assert snap.quarantined_until == pytest.approx(QUARANTINE_FIRST, abs=1)
    await run_until(engine, clock, QUARANTINE_FIRST - 1)
    assert engine.snapshot().registers["1.ghost"].reads == 0
    assert engine.snapshot().registers["1.ghost"].errors == 1
    await run_until(engine, clock, QUARANTINE_FIRST + 1)
    snap = engine.snapshot().registers["1.ghost"]
    assert snap.errors == 2  # probed once, alone, and refused again: backoff doubles
    assert snap.quarantined_until == pytest.approx(QUARANTINE_FIRST * 3, abs=2)


async def test_learned_state_survives_export_and_import() -> None:
    """Test that learned state survives export and import."""
    engine, _, _, clock = make_engine()
    await run_until(engine, clock, 2000)
    state = engine.export_state()
    fresh, _, transport, fresh_clock = make_engine()
    fresh_clock.t = clock.t
    report = fresh.import_state(state)
    assert report.warnings == []
    assert report.restored == len(engine.uids)
    before = engine.snapshot().registers
    after = fresh.snapshot().registers
    for uid in before:
        assert after[uid].interval == pytest.approx(before[uid].interval)
    assert fresh.snapshot().holes == {"1.input": (10,)}
    # the restored engine does not need to relearn the hole: no error on its first cycle
    fresh_clock.t = clock.t + 3600  # HA was down for an hour
    result = await fresh.poll_due()
    assert not result.errors and transport.counters.errors == 0
    # ... and the first read after the restart is news for entities, not a jump to the
    # minimum interval: quiet registers keep what they learned
    assert result.changed
    restored = fresh.snapshot().registers
    assert restored["1.room_setpoint"].interval == pytest.approx(
        before["1.room_setpoint"].interval
    )
    assert restored["1.pump_enable"].interval >= before["1.pump_enable"].interval
    assert len(json.dumps(state)) < 60_000  # stored on SD cards: keep it small


WRONG_VERSION = "stored state version {!r} is not 1; starting fresh"


@pytest.mark.parametrize(
    ("state", "warnings"),
    [
        ({}, [WRONG_VERSION.format(None)]),
        ({"version": 99}, [WRONG_VERSION.format(99)]),
        ("garbage", [WRONG_VERSION.format(None)]),
        (
            {
                "version": 1,
                "registers": {"1.room_setpoint": {"model": "x", "profile": 3}},
            },
            [
                (
                    "1.room_setpoint: stored state set aside "
                    "(its interval model is missing or of another version)"
                )
            ],
        ),
        (
            {"version": 1, "registers": {"1.room_setpoint": "x"}},
            ["1.room_setpoint: stored state set aside (not a mapping)"],
        ),
        (
            {"version": 1, "holes": [{"unit_id": "x"}]},
            [
                "a stored hole was set aside (invalid literal for int() with base 10: 'x')"
            ],
        ),
    ],
)
async def test_corrupt_state_is_set_aside_not_fatal(
    state: object, warnings: list[str]
) -> None:
    """Test that corrupt stored state is set aside with a warning, never fatal."""
    engine, _, _, clock = make_engine()
    report = engine.import_state(state)  # type: ignore[arg-type]
    # exactly what was set aside, and nothing claimed as restored
    assert report.warnings == warnings
    assert report.restored == 0
    # learning starts clean: the same history gives exactly what a fresh engine learns
    reference, _, _, ref_clock = make_engine()
    assert engine.export_state() == reference.export_state()
    await run_until(engine, clock, 900)
    await run_until(reference, ref_clock, 900)
    assert engine.export_state() == reference.export_state()
    assert engine.snapshot().holes == reference.snapshot().holes == {"1.input": (10,)}


async def test_partly_corrupt_state_restores_the_rest_and_caps_quarantines() -> None:
    """Test that partly corrupt state restores the rest and caps stored quarantines."""
    engine, _, _, clock = make_engine()
    await run_until(engine, clock, 2000)
    state = engine.export_state()
    state["registers"]["1.room_setpoint"]["model"] = {"version": 7}
    state["registers"]["1.grid_voltage"]["quarantined_until"] = clock.t + 1e9
    state["registers"]["1.grid_voltage"]["quarantine_backoff"] = 1e12
    state["registers"]["1.supply_temperature"]["quarantined_until"] = float("nan")
    fresh, _, _, fresh_clock = make_engine()
    fresh_clock.t = clock.t + 60
    report = fresh.import_state(state)
    assert report.restored == len(engine.uids) - 2
    assert sorted(report.warnings) == sorted(
        [
            (
                "1.supply_temperature: stored state set aside "
                "(quarantine nan / backoff 300.0 is not finite)"
            ),
            (
                "1.room_setpoint: stored state set aside "
                "(its interval model is missing or of another version)"
            ),
            (
                f"1.grid_voltage: stored quarantine backoff 1000000000000 s capped to "
                f"{scheduler.QUARANTINE_MAX:.0f} s"
            ),
            (
                f"1.grid_voltage: stored quarantine ends {1e9 - 60:.0f} s from now; capped to "
                f"{scheduler.QUARANTINE_MAX:.0f} s"
            ),
        ]
    )
    grid = fresh.snapshot().registers["1.grid_voltage"]
    assert grid.quarantined_until == fresh_clock.t + scheduler.QUARANTINE_MAX
    before = engine.snapshot().registers
    after = fresh.snapshot().registers
    # the stored state keeps an interval to 12 significant digits
    stored = float(f"{before['1.outdoor_temperature'].interval:.12g}")
    assert after["1.outdoor_temperature"].interval == stored
    assert after["1.room_setpoint"].interval == scheduler.EngineConfig().min_interval


class DeadTransport(InProcessTransport):
    """The gateway is gone."""

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Refuse every read as a lost connection."""
        raise ModbusConnectionError("refused")


async def test_connection_loss_fails_the_cycle_and_retries_with_backoff() -> None:
    """Test that a lost connection fails the cycle and is retried with backoff."""
    clock = VirtualClock()
    device = SimulatedDevice(clock=clock, start=0.0)
    engine = PollEngine(device.registers, DeadTransport(device), clock)
    result = await engine.poll_due()
    assert result.requests == 1  # no point in asking again on a dead connection
    assert result.failed == {spec.uid for spec in device.registers}
    snap = engine.snapshot()
    first_retry = engine.next_due()
    assert 0 < first_retry <= 5
    clock.t = first_retry
    await engine.poll_due()
    assert engine.next_due() - clock.t >= 10  # the second retry waits longer
    assert snap.error_rate == 100.0


async def test_unknown_unit_times_out_without_blocking_others() -> None:
    """Test that an absent unit times out without holding up the others."""
    clock = VirtualClock()
    device = SimulatedDevice(clock=clock, start=0.0)
    other = [
        RegisterSpec("x", 9, Table.HOLDING, 0),
        RegisterSpec("y", 9, Table.INPUT, 0),
    ]
    engine = PollEngine([*device.registers, *other], InProcessTransport(device), clock)
    result = await engine.poll_due()
    assert {"9.x", "9.y"} <= result.failed
    assert len(result.changed) == len(device.registers)
    timeouts = [e for e in result.errors if e.kind is ErrorKind.TIMEOUT]
    assert len(timeouts) == 1  # the second block of the silent unit is not even tried


async def test_snapshot_rates_and_export() -> None:
    """Test the snapshot's rates and the state export."""
    engine, _, _, clock = make_engine()
    await run_until(engine, clock, 900)
    snap = engine.snapshot()
    assert snap.requests_per_minute > 0
    assert snap.registers_per_request > 1
    assert 0 < snap.saving_vs_fixed < 100
    assert snap.error_rate >= 0
    data = snap.as_dict()
    assert data["rates"]["requests_per_minute"] == pytest.approx(
        snap.requests_per_minute, 1e-3
    )
    assert data["holes"] == {"1.input": [10]}
    assert data["registers"]["1.room_setpoint"]["table"] == "holding"
    assert snap.totals.cycles == len(snap.recent_cycles)
    assert snap.units[1].requests == snap.totals.requests
    assert snap.units[1].bytes == snap.totals.bytes > 0
    assert data["units"]["1"]["registers_read"] == snap.totals.registers_read


async def test_per_unit_limits_and_fixed_cost_model() -> None:
    """Test per-unit read limits and a fixed cost model."""
    config = EngineConfig(
        limits={1: DeviceLimits(max_registers=4)},
        cost=CostModel(request_overhead=1.0, per_register=0.5),
    )
    engine, _, _, _ = make_engine(config)
    await engine.poll_due()
    for request in engine.snapshot().recent_requests:
        if not request.table.is_bit and request.address != 40:
            assert request.count <= 4
    # a value larger than the limit (the 8-register serial number) is still read, alone
    assert any(
        r.address == 40 and r.count == 8 for r in engine.snapshot().recent_requests
    )
    assert engine.cost_model() == config.cost


def test_duplicate_and_invalid_config() -> None:
    """Test that duplicate registers and invalid settings are refused."""
    clock = VirtualClock()
    device = SimulatedDevice(clock=clock)
    with pytest.raises(ValueError, match="twice"):
        PollEngine(
            [*device.registers, device.registers[0]], InProcessTransport(device), clock
        )
    with pytest.raises(ValueError):
        EngineConfig(min_interval=10, max_interval=5)
    with pytest.raises(ValueError):
        EngineConfig(fixed_interval=0)


async def test_illegal_address_error_class() -> None:
    """Test which error kinds blame the block."""
    assert IllegalAddress("x").kind.blames_block
    assert not ModbusConnectionError("x").kind.blames_block


async def test_neighbours_due_soon_ride_in_the_same_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Test that neighbours due soon ride in a request that goes out anyway.

    More data per request, no more requests (the change that closes most of the
    gap to static block polling).
    """

    async def run(early: float) -> tuple[int, float]:
        monkeypatch.setattr(scheduler, "EARLY_FRACTION", early)
        # free riders off: they fill requests too, and would hide what this measures
        engine, _, transport, clock = make_engine(EngineConfig(rider_value=0.0))
        await run_until(engine, clock, signals.CYCLE_SECONDS)
        return transport.counters.requests, transport.counters.registers

    requests_without, registers_without = await run(0.0)
    requests_with, registers_with = await run(0.5)
    assert registers_with / requests_with > 1.2 * (registers_without / requests_without)
    assert requests_with <= 1.05 * requests_without


async def test_unchanged_riders_are_refreshed_without_relearning() -> None:
    """Test that registers riding along are refreshed without relearning their interval."""
    engine, _, _, clock = make_engine()
    await run_until(engine, clock, 600)
    before = engine.snapshot().registers["1.firmware_version"]
    # the firmware version never changes and rides along with the input block
    await run_until(engine, clock, 900)
    after = engine.snapshot().registers["1.firmware_version"]
    assert after.reads > before.reads
    assert after.last_read is not None and before.last_read is not None
    assert after.last_read > before.last_read
    assert after.interval >= before.interval
