"""Tests of the simulated demo device: signals, device behaviour, in-process transport."""

from __future__ import annotations

import math

import pytest

from adaptive_modbus_engine.errors import (
    DeviceFailure,
    ErrorKind,
    IllegalAddress,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import DataType, Table
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.device import HOLES, SimulatedDevice, demo_profile
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport, RequestKind
from adaptive_modbus_engine.simulator.signals import (
    CYCLE_SECONDS,
    Phase,
    incident_start,
    phase_at,
    phase_start,
)
from adaptive_modbus_engine.transport import Transport

CYCLE = CYCLE_SECONDS


class FakeClock:
    """A virtual clock the tests move by hand."""

    def __init__(self, now: float = 0.0) -> None:
        """Start the clock at ``now``."""
        self.now = now

    def __call__(self) -> float:
        """Return the current virtual time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock on by ``seconds``."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """Provide a virtual clock at t = 1000 s."""
    return FakeClock(1_000.0)


@pytest.fixture
def device(clock: FakeClock) -> SimulatedDevice:
    """Provide the demo device on the virtual clock, its scenario starting now."""
    return SimulatedDevice(seed=42, clock=clock, unit_id=1, start=1_000.0)


def num(seed: int, key: str, t: float) -> float:
    """Return a numeric signal value."""
    value = signals.value(seed, key, t)
    assert isinstance(value, int | float)
    return float(value)


def _times(start: float, stop: float, step: float) -> list[float]:
    return [start + i * step for i in range(int((stop - start) / step))]


# -- profile ---------------------------------------------------------------------


def test_demo_profile_is_a_rich_map() -> None:
    """Test that the demo profile covers every table, the main data types and a hole."""
    profile = demo_profile(1)
    specs = [d.spec for d in profile.registers]
    assert 16 <= len(specs) <= 24
    assert {s.table for s in specs} == set(Table)
    types = {s.data_type for s in specs}
    assert {DataType.INT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT32} <= types
    assert {DataType.BIT, DataType.STRING, DataType.BOOL} <= types
    assert all(key in signals.SIGNALS for key in (s.key for s in specs))
    diagnostics = [
        d
        for d in profile.registers
        if d.presentation.get("entity_category") == "diagnostic"
    ]
    assert diagnostics
    assert not any(d.enabled_by_default for d in diagnostics)
    # the hole is not in the map, but its neighbours are
    assert not any(s.table is Table.INPUT and s.address <= 10 < s.end for s in specs)
    assert any(s.table is Table.INPUT and s.end == 10 for s in specs)
    assert any(s.table is Table.INPUT and s.address == 11 for s in specs)


def test_specs_carry_the_unit_id() -> None:
    """Test that a device's specs carry its unit id."""
    device = SimulatedDevice(unit_id=7, clock=lambda: 0.0)
    assert {s.unit_id for s in device.registers} == {7}


# -- signals ---------------------------------------------------------------------------


def test_same_seed_same_values_different_seed_different_values() -> None:
    """Test that signals depend on the seed and on nothing else."""
    keys = list(signals.SIGNALS)
    times = [-500.0, 0.0, 12.3, 1_799.0, 2_500.5, 10 * CYCLE + 7.0]
    first = [signals.value(42, k, t) for k in keys for t in times]
    again = [signals.value(42, k, t) for k in keys for t in times]
    other = [signals.value(43, k, t) for k in keys for t in times]
    assert first == again
    assert first != other
    assert signals.value(42, "active_power", 5.0) != signals.value(
        43, "active_power", 5.0
    )


def test_devices_with_the_same_seed_read_the_same() -> None:
    """Test that two devices with the same seed read the same at the same scenario time."""
    clocks = [FakeClock(), FakeClock(500.0)]
    devices = [SimulatedDevice(seed=9, clock=c, start=c.now) for c in clocks]
    for step in range(50):
        words = []
        for clock, device in zip(clocks, devices, strict=True):
            clock.now = device.start + step * 37.0
            words.append(device.read(1, Table.INPUT, 0, 10))
        assert words[0] == words[1]


def test_phases_follow_the_cycle_and_repeat() -> None:
    """Test that the scenario's phases follow in order and repeat every cycle."""
    order = [Phase.STABLE, Phase.ESCALATION, Phase.PEAK, Phase.RECOVERY]
    starts = [phase_start(p) for p in order]
    assert starts[0] == 0.0
    assert starts == sorted(starts)
    assert incident_start(0) == phase_start(Phase.ESCALATION)
    assert incident_start(3) == 3 * CYCLE + incident_start(0)
    for t in _times(0.0, CYCLE, 10.0):
        for cycle in (-2, 1, 5):
            assert phase_at(t + cycle * CYCLE) == phase_at(t)
    for phase in order:
        assert phase_at(phase_start(phase, 4)) is phase
        assert phase_at(phase_start(phase, 4) - 0.001) is not phase
    assert signals.value(1, "active_power", 123.0) == signals.value(
        1, "active_power", 123.0
    )


def test_values_repeat_with_the_cycle_where_there_is_no_drift() -> None:
    """Test that values without drift repeat with the cycle."""
    for key in (
        "status_warning",
        "status_fault",
        "alarm_overtemperature",
        "status_defrost",
    ):
        for t in _times(0.0, CYCLE, 15.0):
            assert signals.value(5, key, t) == signals.value(5, key, t + 2 * CYCLE)


def test_energy_counters_are_monotonic_over_a_long_run(device: SimulatedDevice) -> None:
    """Test that the energy counters never go down over a long run."""
    for key in ("energy_import", "compressor_energy", "uptime"):
        previous = -math.inf
        for t in _times(-CYCLE, 5 * CYCLE, 7.0):
            value = device.truth(key, t)
            assert isinstance(value, int | float)
            assert value >= previous, (key, t)
            previous = value
        first = device.truth(key, -CYCLE)
        assert isinstance(first, int | float)
        assert previous > first


def test_energy_counter_is_the_integral_of_power() -> None:
    """Counter growth over an hour matches the numerically integrated smooth power."""
    t0, t1, step = 100.0, 100.0 + CYCLE, 1.0
    area = sum(
        signals.smooth(3, "active_power", t0 + (i + 0.5) * step) for i in range(3600)
    )
    kwh = num(3, "energy_import", t1) - num(3, "energy_import", t0)
    assert kwh == pytest.approx(area * step / signals.JOULES_PER_KWH, rel=1e-4)


def test_counters_are_exact_going_back_in_time() -> None:
    """Test that a counter read at an earlier time gives that time's value."""
    late = signals.value(8, "energy_import", 50 * CYCLE)
    early = signals.value(8, "energy_import", 3.0)
    assert signals.value(8, "energy_import", 3.0) == early
    assert signals.value(8, "energy_import", 50 * CYCLE) == late


def test_stable_power_noise_stays_below_tolerance(device: SimulatedDevice) -> None:
    """Test that power noise in the stable phase stays below its tolerance."""
    tolerance = device.spec("active_power").tolerance
    stable = [t for t in _times(0.0, 3 * CYCLE, 1.0) if phase_at(t) is Phase.STABLE]
    assert len(stable) > 1_000
    for t in stable:
        noise = num(42, "active_power", t) - signals.smooth(42, "active_power", t)
        assert abs(noise) < tolerance / 2
        step = num(42, "active_power", t + 1.0) - num(42, "active_power", t)
        if phase_at(t + 1.0) is Phase.STABLE:
            assert abs(step) < tolerance


def test_incident_moves_power_and_temperature_beyond_tolerance() -> None:
    """Test that the incident moves power and temperature beyond their tolerance."""
    calm = num(42, "active_power", incident_start(0) - 1.0)
    peak = num(42, "active_power", phase_start(Phase.PEAK) + 10.0)
    assert peak - calm > 1_000
    cool = num(42, "supply_temperature", incident_start(0))
    hot = num(42, "supply_temperature", phase_start(Phase.PEAK))
    assert hot - cool > 5


def test_analog_signals_stay_positive_where_it_matters() -> None:
    """Test that power readings never go negative."""
    for key in ("active_power", "compressor_power"):
        signal = signals.SIGNALS[key]
        assert isinstance(signal, signals.Analog)
        assert signal.base - sum(w.amplitude for w in signal.waves) - signal.noise > 0


@pytest.mark.parametrize("cycle", [0, 3])
def test_alarms_flip_in_the_incident_and_clear_after(cycle: int) -> None:
    """Test that the alarm bits set during the incident and clear after it."""

    def flag(key: str, t: float) -> bool:
        return bool(signals.value(42, key, t))

    escalation = incident_start(cycle)
    peak = phase_start(Phase.PEAK, cycle)
    recovery = phase_start(Phase.RECOVERY, cycle)
    next_cycle = phase_start(Phase.STABLE, cycle + 1)
    for key in (
        "status_warning",
        "status_fault",
        "alarm_overtemperature",
        "alarm_overload",
    ):
        assert not flag(key, escalation - 1.0), key
        assert flag(key, peak + 1.0), key
        assert not flag(key, next_cycle - 1.0), key
    assert flag("status_warning", escalation)
    assert not flag("status_fault", peak - 1.0)
    assert flag("status_fault", peak)
    assert not flag("status_warning", recovery)
    assert flag("alarm_overtemperature", recovery)  # clears halfway through recovery
    stable = _times(phase_start(Phase.STABLE, cycle), escalation, 10.0)
    assert not any(
        flag("status_warning", t) or flag("alarm_overload", t) for t in stable
    )
    assert not any(flag("alarm_low_pressure", t) for t in _times(0.0, CYCLE, 60.0))


def test_scenario_wraps_the_signal_functions() -> None:
    """Test that a Scenario gives the same values as the signal functions."""
    scenario = signals.Scenario(seed=11)
    assert scenario.value("grid_voltage", 77.0) == signals.value(
        11, "grid_voltage", 77.0
    )
    assert scenario.phase(incident_start(2)) is Phase.ESCALATION
    with pytest.raises(TypeError):
        signals.smooth(11, "status_fault", 0.0)
    with pytest.raises(KeyError):
        signals.value(11, "no_such_register", 0.0)


def test_defrost_bit_is_a_regular_pattern() -> None:
    """Test that the defrost bit is on three times two minutes an hour."""
    on = [t for t in _times(0.0, CYCLE, 10.0) if signals.value(42, "status_defrost", t)]
    assert 30 <= len(on) <= 40  # 3 x 120 s per hour


# -- device: reads ------------------------------------------------------------------------


def test_decoded_reads_equal_truth(device: SimulatedDevice, clock: FakeClock) -> None:
    """Test that decoded reads equal the signal values."""
    for t in _times(device.start, device.start + CYCLE, 97.0):
        clock.now = t
        for spec in device.registers:
            words = device.read(1, spec.table, spec.address, spec.size)
            assert spec.decode(words) == device.truth(spec.key, t), spec.key


def test_block_reads_hold_the_same_words_as_single_reads(
    device: SimulatedDevice, clock: FakeClock
) -> None:
    """Test that a block read holds the same words as single reads."""
    clock.now = device.start + phase_start(Phase.PEAK) + 60.0
    block = device.read(1, Table.INPUT, 0, 10)
    for spec in device.registers:
        if spec.table is Table.INPUT and spec.end <= 10:
            words = block[spec.address : spec.end]
            assert spec.decode(words) == device.truth(spec.key, clock.now)
    status = device.read(1, Table.INPUT, 20, 1)[0]
    assert status & 0b1101 == 0b1101  # running, warning and fault at the peak
    assert device.read(1, Table.INPUT, 3, 1) == [0]  # gap reads 0


def test_values_change_with_the_clock(
    device: SimulatedDevice, clock: FakeClock
) -> None:
    """Test that values change as the clock moves on."""
    first = device.read(1, Table.INPUT, 4, 2)
    clock.advance(30.0)
    assert device.read(1, Table.INPUT, 4, 2) != first


def test_start_offsets_the_scenario(clock: FakeClock) -> None:
    """Test that ``start`` offsets the scenario's phases."""
    device = SimulatedDevice(seed=1, clock=clock, start=clock.now - incident_start(0))
    assert device.phase() is Phase.ESCALATION
    fresh = SimulatedDevice(seed=1, clock=clock)
    assert fresh.start == clock.now
    assert fresh.phase() is Phase.STABLE


def test_reading_across_the_hole_fails_but_each_side_reads(
    device: SimulatedDevice,
) -> None:
    """Test that a read across the hole fails while each side reads."""
    assert HOLES[Table.INPUT] == device.holes(Table.INPUT) == frozenset({10})
    assert len(device.read(1, Table.INPUT, 0, 10)) == 10
    assert len(device.read(1, Table.INPUT, 11, 7)) == 7
    for address, count in ((0, 12), (9, 2), (10, 1), (8, 5), (0, 48)):
        with pytest.raises(IllegalAddress) as err:
            device.read(1, Table.INPUT, address, count)
        assert err.value.kind is ErrorKind.ILLEGAL_ADDRESS
        assert err.value.address == 10


def test_reading_past_the_address_space_fails(device: SimulatedDevice) -> None:
    """Test that a read past the address space fails with an illegal address."""
    for table in Table:
        space = device.address_space(table)
        assert len(space) > 0
        with pytest.raises(IllegalAddress):
            device.read(1, table, space.stop - 1, 2)
        with pytest.raises(IllegalAddress):
            device.read(1, table, 1_000, 1)
    assert device.read(1, Table.HOLDING, 0, 4)
    with pytest.raises(DeviceFailure):
        device.read(1, Table.HOLDING, 0, 0)
    with pytest.raises(DeviceFailure):
        device.read(1, Table.INPUT, 0, 126)


def test_unknown_unit_times_out(device: SimulatedDevice) -> None:
    """Test that a read of another unit times out."""
    with pytest.raises(ModbusTimeout) as err:
        device.read(2, Table.INPUT, 0, 1)
    assert err.value.kind is ErrorKind.TIMEOUT
    with pytest.raises(ModbusTimeout):
        device.write_coil(2, 0, False)
    with pytest.raises(ModbusTimeout):
        device.write_registers(2, 0, [200])


# -- device: writes --------------------------------------------------------------------------


def test_setpoint_is_constant_until_written(
    device: SimulatedDevice, clock: FakeClock
) -> None:
    """Test that the setpoint keeps its value until written."""
    spec = device.spec("room_setpoint")
    readings = set()
    for _ in range(100):
        clock.advance(53.0)
        readings.add(spec.decode(device.read(1, Table.HOLDING, spec.address, 1)))
    assert readings == {21.0}
    written_at = clock.now
    device.write_registers(1, spec.address, spec.encode(23.5))
    for _ in range(100):
        clock.advance(53.0)
        assert spec.decode(device.read(1, Table.HOLDING, spec.address, 1)) == 23.5
    assert device.truth("room_setpoint", written_at - 1.0) == 21.0
    assert device.truth("room_setpoint", written_at) == 23.5


def test_multi_register_write_is_all_or_nothing(device: SimulatedDevice) -> None:
    """Test that a multi-register write applies all of it or nothing."""
    setpoint, limit = device.spec("room_setpoint"), device.spec("power_limit")
    device.write_registers(1, 0, setpoint.encode(19.0) + limit.encode(5_000))
    assert device.truth("room_setpoint", device.now()) == 19.0
    assert device.truth("power_limit", device.now()) == 5_000
    with pytest.raises(DeviceFailure):  # 40 °C is above the 30 °C maximum
        device.write_registers(1, 0, setpoint.encode(20.0) + limit.encode(40_000))
    with pytest.raises(DeviceFailure):
        device.write_registers(1, 0, setpoint.encode(40.0))
    assert device.truth("room_setpoint", device.now()) == 19.0
    assert device.truth("power_limit", device.now()) == 5_000


def test_writes_to_read_only_areas_fail(device: SimulatedDevice) -> None:
    """Test that writes to read-only registers fail."""
    with pytest.raises(IllegalAddress):
        device.write_registers(1, 2, [0, 0])  # flow_rate is read-only
    with pytest.raises(IllegalAddress):
        device.write_registers(1, 1, [1_000, 0])  # runs into flow_rate
    with pytest.raises(IllegalAddress):
        device.write_registers(1, 100, [1])
    with pytest.raises(IllegalAddress):
        device.write_coil(1, 5, True)


def test_bad_words_are_refused(device: SimulatedDevice) -> None:
    """Test that words out of range are refused with a device failure."""
    with pytest.raises(DeviceFailure):
        device.write_registers(1, 0, [70_000])
    with pytest.raises(DeviceFailure):
        device.write_registers(1, 0, [])
    assert device.truth("room_setpoint", device.now()) == 21.0


def test_coil_write_persists(device: SimulatedDevice, clock: FakeClock) -> None:
    """Test that a written coil keeps its value."""
    assert device.read(1, Table.COIL, 0, 2) == [1, 0]
    device.write_coil(1, 0, False)
    device.write_coil(1, 1, True)
    clock.advance(CYCLE)
    assert device.read(1, Table.COIL, 0, 2) == [0, 1]
    assert device.truth("pump_enable", clock.now) is False


def test_devices_are_independent() -> None:
    """Test that writing to one device leaves another alone."""
    clock = FakeClock()
    one, two = (SimulatedDevice(clock=clock, unit_id=u, start=0.0) for u in (1, 2))
    one.write_coil(1, 0, False)
    assert one.read(1, Table.COIL, 0, 1) == [0]
    assert two.read(2, Table.COIL, 0, 1) == [1]


# -- in-process transport -----------------------------------------------------------------------


async def test_inprocess_transport_reads_and_writes(
    device: SimulatedDevice, clock: FakeClock
) -> None:
    """Test that the in-process transport reads and writes the device."""
    transport = InProcessTransport(device)
    # mypy checks the in-process transport fits the protocol
    protocol: Transport = transport
    assert not protocol.connected
    await transport.connect()
    assert transport.connected
    words = await transport.read(1, Table.INPUT, 0, 10)
    assert words == device.read(1, Table.INPUT, 0, 10)
    assert await transport.read(1, Table.DISCRETE, 0, 3) == [0, 0, 0]
    spec = device.spec("room_setpoint")
    await transport.write_registers(1, spec.address, spec.encode(22.0))
    assert spec.decode(await transport.read(1, Table.HOLDING, 0, 1)) == 22.0
    await transport.write_coil(1, 1, True)
    assert await transport.read(1, Table.COIL, 0, 2) == [1, 1]
    counters = transport.counters
    assert (counters.requests, counters.reads, counters.writes) == (6, 4, 2)
    assert counters.registers == 10 + 1 + 1
    assert counters.bits == 3 + 1 + 2
    assert counters.by_kind[RequestKind.READ_INPUT_REGISTERS] == 1
    await transport.end_cycle()
    assert transport.connected
    await transport.close()
    assert not transport.connected


async def test_inprocess_transport_errors(device: SimulatedDevice) -> None:
    """Test that the in-process transport raises the device's errors."""
    transport = InProcessTransport(device)
    with pytest.raises(IllegalAddress):
        await transport.read(1, Table.INPUT, 8, 4)
    with pytest.raises(ModbusTimeout):
        await transport.read(9, Table.INPUT, 0, 1)
    assert transport.counters.errors == 2
    assert transport.counters.requests == 2
    assert transport.counters.registers == 0
    assert transport.connected  # reading opened the connection


async def test_inprocess_latency_advances_virtual_time(
    device: SimulatedDevice, clock: FakeClock
) -> None:
    """Test that the latency model advances the virtual clock per request."""
    calls: list[tuple[str, int, int]] = []

    def latency(kind: str, unit_id: int, count: int) -> float:
        calls.append((kind, unit_id, count))
        return 0.01 + 0.001 * count

    transport = InProcessTransport(
        device,
        latency=latency,
        clock_advance=clock.advance,
        timeout=2.0,
        close_after_cycle=True,
    )
    before = clock.now
    await transport.read(1, Table.INPUT, 0, 10)
    await transport.write_coil(1, 0, False)
    with pytest.raises(ModbusTimeout):
        await transport.read(3, Table.HOLDING, 0, 1)
    with pytest.raises(IllegalAddress):
        await transport.read(1, Table.INPUT, 10, 1)
    assert calls == [
        (RequestKind.READ_INPUT_REGISTERS, 1, 10),
        (RequestKind.WRITE_COIL, 1, 1),
        (RequestKind.READ_INPUT_REGISTERS, 1, 0),
    ]
    expected = 0.02 + 0.011 + 2.0 + 0.01
    assert clock.now - before == pytest.approx(expected)
    assert transport.counters.bus_time == pytest.approx(expected)
    assert RequestKind.WRITE_COIL.function_code == 5
    await transport.end_cycle()
    assert not transport.connected
    transport.reset_counters()
    assert transport.counters.requests == 0


async def test_inprocess_transport_routes_several_units() -> None:
    """Test that the in-process transport routes requests to several units."""
    clock = FakeClock()
    devices = [
        SimulatedDevice(seed=u, clock=clock, unit_id=u, start=0.0) for u in (1, 2)
    ]
    transport = InProcessTransport(devices)
    one = await transport.read(1, Table.INPUT, 0, 10)
    two = await transport.read(2, Table.INPUT, 0, 10)
    assert one == devices[0].read(1, Table.INPUT, 0, 10)
    assert two == devices[1].read(2, Table.INPUT, 0, 10)
    assert one != two
    with pytest.raises(ValueError, match="unit 1"):
        InProcessTransport([devices[0], devices[0]])
