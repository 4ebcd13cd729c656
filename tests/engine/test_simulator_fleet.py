"""The demo fleet: heat pump (problem child), grid meter (20-register reads), PV inverter."""

from __future__ import annotations

import json
import statistics

import pymodbus
from pymodbus.client import AsyncModbusTcpClient
import pytest

from adaptive_modbus_engine import pymodbus_compat as compat
from adaptive_modbus_engine.errors import DeviceFailure, ModbusTimeout
from adaptive_modbus_engine.registers import DataType, Table, Value
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator import signals
from adaptive_modbus_engine.simulator.device import (
    GRID_METER,
    OverLimit,
    SimulatedDevice,
)
from adaptive_modbus_engine.simulator.fleet import FLEET, Fleet, FleetMember
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport
from adaptive_modbus_engine.simulator.server import SimulatorServer

LOOPBACK = "127.0.0.1"
CYCLE = signals.CYCLE_SECONDS
START = 1_000_000.0


class Clock:
    """A settable clock."""

    def __init__(self, now: float = START) -> None:
        """Start the clock at ``now``."""
        self.now = now

    def __call__(self) -> float:
        """Return the current virtual time."""
        return self.now


def every_value(fleet: Fleet, t: float) -> dict[str, Value]:
    """Return every register of every member at clock time ``t``."""
    return {
        spec.uid: device.truth(spec.key, t)
        for device in fleet.devices.values()
        for spec in device.registers
    }


def read_all(fleet: Fleet, clock: Clock, t: float) -> list[list[int]]:
    """Read every register of every member at ``t`` through the request API."""
    clock.now = t
    return [
        fleet.read(unit, spec.table, spec.address, spec.size)
        for unit, device in fleet.devices.items()
        for spec in device.registers
    ]


def test_the_fleet_is_three_devices_on_three_unit_ids() -> None:
    """Heat pump on unit 1, grid meter on 2, PV inverter on 3; one problem child."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    assert fleet.unit_ids == [1, 2, 3]
    names = {unit: device.profile.name for unit, device in fleet.devices.items()}
    assert names == {1: "Demo heat pump", 2: "Demo grid meter", 3: "Demo PV inverter"}
    assert fleet.problem_child is fleet.device(1)
    assert [m.model.incident for m in FLEET] == [True, False, False]
    for unit, device in fleet.devices.items():
        assert {spec.unit_id for spec in device.registers} == {unit}


def test_the_fleet_is_reproducible_with_seed_42() -> None:
    """Two fleets with seed 42 read the same words at the same scenario times."""
    times = [START + t for t in (0.0, 7.5, 905.0, 1_950.0, 2_600.0, 3_100.0, 7_777.0)]
    first_clock, second_clock = Clock(), Clock()
    first = Fleet(seed=42, clock=first_clock, start=START)
    second = Fleet(seed=42, clock=second_clock, start=START)
    reads = [read_all(first, first_clock, t) for t in times]
    assert reads == [read_all(second, second_clock, t) for t in times]
    # a fleet started later replays the same scenario from its own start
    later_clock = Clock(START + 500.0)
    later = Fleet(seed=42, clock=later_clock)
    assert reads == [read_all(later, later_clock, t + 500.0) for t in times]
    # another seed is another fleet, on every device
    other = Fleet(seed=43, clock=Clock(), start=START)
    for unit in fleet_units():
        mine = every_value(first, START + 905.0)
        theirs = every_value(other, START + 905.0)
        assert any(
            mine[uid] != theirs[uid] for uid in mine if uid.startswith(f"{unit}.")
        ), unit


def fleet_units() -> list[int]:
    """Return the unit ids of the demo fleet."""
    return [member.unit_id for member in FLEET]


def test_the_heat_pump_is_the_demo_device_of_before() -> None:
    """Unit 1 of the fleet reads exactly what the single demo device reads."""
    clock = Clock()
    fleet = Fleet(seed=42, clock=clock, start=START)
    alone = SimulatedDevice(seed=42, clock=clock, unit_id=1, start=START)
    for offset in (0.0, 100.0, 1_900.0, 2_700.0, 3_000.0):
        clock.now = START + offset
        for spec in alone.registers:
            assert fleet.read(1, spec.table, spec.address, spec.size) == alone.read(
                1, spec.table, spec.address, spec.size
            ), spec.key
    assert fleet.device(1).holes(Table.INPUT) == frozenset({10})


def _series(device: SimulatedDevice, key: str, phase: signals.Phase) -> list[float]:
    """Values of ``key`` every 5 s through ``phase`` of cycle 0."""
    start = signals.phase_start(phase)
    out = []
    for i in range(int(signals.phase_length(phase) / 5)):
        value = device.truth(key, device.start + start + 5 * i)
        assert isinstance(value, int | float)
        out.append(float(value))
    return out


def _steps(values: list[float]) -> list[float]:
    """Differences between consecutive values."""
    return [b - a for a, b in zip(values, values[1:], strict=False)]


def test_only_the_problem_child_goes_through_the_incident() -> None:
    """The heat pump changes phases and values; the others behave the same throughout."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    points = [START + x for x in range(0, int(2 * CYCLE), 60)]
    for unit, device in fleet.devices.items():
        phases = {device.phase(t) for t in points}
        if unit == 1:
            assert phases == set(signals.Phase)
        else:
            assert phases == {signals.Phase.STABLE}, unit
    # the heat pump's power jumps by many tolerances at the peak
    heat_pump = fleet.device(1)
    stable = statistics.mean(_series(heat_pump, "active_power", signals.Phase.STABLE))
    peak = statistics.mean(_series(heat_pump, "active_power", signals.Phase.PEAK))
    assert peak - stable > 40 * heat_pump.spec("active_power").tolerance
    # the healthy members' analog values move no more at the peak than when stable
    for unit in (2, 3):
        device = fleet.device(unit)
        for spec in device.registers:
            if not spec.is_numeric or spec.data_type is DataType.BIT:
                continue
            calm = _series(device, spec.key, signals.Phase.STABLE)
            peak_values = _series(device, spec.key, signals.Phase.PEAK)
            if "energy" in spec.key:  # counters: the same pace in both phases
                calm_rate = (calm[-1] - calm[0]) / (len(calm) - 1)
                peak_rate = (peak_values[-1] - peak_values[0]) / (len(peak_values) - 1)
                assert peak_rate <= 1.5 * calm_rate + 1e-9, spec.uid
                continue
            calm_jitter = statistics.pstdev(_steps(calm))
            peak_jitter = statistics.pstdev(_steps(peak_values))
            assert peak_jitter <= 1.5 * calm_jitter + 1e-9, spec.uid
            assert max(peak_values) - min(peak_values) <= max(calm) - min(calm)
        # and no flag of theirs flips
        flags = [s for s in device.registers if s.data_type is DataType.BIT]
        for spec in flags:
            assert {device.truth(spec.key, t) for t in points} == {True}, spec.uid


def test_healthy_members_stay_physically_consistent() -> None:
    """The meter's total is the sum of its phases; the inverter's AC is below DC."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    meter, inverter = fleet.device(2), fleet.device(3)
    for offset in range(0, int(CYCLE), 97):
        t = START + offset
        phases = sum(float(meter.truth(f"l{i}_power", t)) for i in (1, 2, 3))
        total = float(meter.truth("total_power", t))
        assert total == pytest.approx(phases, abs=3 * 4.0 + 6.0)
        assert float(inverter.truth("active_power", t)) < float(
            inverter.truth("dc_power", t)
        )


def test_timeline_says_what_happens_when() -> None:
    """The timeline: the heat pump's four phases, one stable span for the others."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    timeline = fleet.timeline(cycles=2)
    heat_pump = [e for e in timeline if e.unit_id == 1 and e.cycle == 0]
    assert [e.phase for e in heat_pump] == [
        "stable",
        "escalation",
        "peak",
        "recovery",
    ]
    assert [(e.start, e.end) for e in heat_pump] == [
        (0.0, 1800.0),
        (1800.0, 2520.0),
        (2520.0, 2880.0),
        (2880.0, 3600.0),
    ]
    for entry in timeline:  # each entry is what the devices do
        device = fleet.device(entry.unit_id)
        for t in (entry.start, (entry.start + entry.end) / 2, entry.end - 1):
            assert device.phase(START + t).value == entry.phase
    healthy = [e for e in timeline if e.unit_id != 1]
    assert {(e.unit_id, e.phase, e.start, e.end) for e in healthy} == {
        (unit, "stable", c * CYCLE, (c + 1) * CYCLE) for unit in (2, 3) for c in (0, 1)
    }
    described = json.loads(json.dumps(fleet.describe()))
    assert described["seed"] == 42
    assert [d["unit_id"] for d in described["devices"]] == [1, 2, 3]
    assert [d["problem_child"] for d in described["devices"]] == [True, False, False]
    assert described["devices"][1]["read_limit"] == 20
    assert described["devices"][0]["holes"] == {"input": [10]}
    assert len(described["timeline"]) == 6


def test_the_grid_meter_refuses_reads_over_20_registers() -> None:
    """Up to 20 registers read; 21 and more are refused with exception 3."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    assert len(fleet.read(2, Table.INPUT, 0, 20)) == 20
    assert len(fleet.read(2, Table.INPUT, 56, 20)) == 20
    with pytest.raises(DeviceFailure) as refused:
        fleet.read(2, Table.INPUT, 0, 21)
    assert refused.value.code == 3
    # its map does not say so: the engine has to learn it
    assert fleet.device(2).profile.max_registers is None
    # the other members read much larger blocks
    assert len(fleet.read(1, Table.INPUT, 0, 10)) == 10
    assert len(fleet.read(3, Table.INPUT, 0, 13)) == 13


def test_a_limited_device_can_leave_large_reads_unanswered() -> None:
    """A member built to time out above its limit gives no answer there."""
    model = GRID_METER.__class__(
        "grid_meter", "demo_grid_meter", read_limit=20, over_limit=OverLimit.TIMEOUT
    )
    fleet = Fleet(
        seed=42, clock=Clock(), start=START, members=(FleetMember(5, model, "m"),)
    )
    assert len(fleet.read(5, Table.INPUT, 0, 20)) == 20
    with pytest.raises(ModbusTimeout):
        fleet.read(5, Table.INPUT, 0, 21)


def test_a_member_can_stop_answering() -> None:
    """``answering`` off: that unit times out, the others answer."""
    fleet = Fleet(seed=42, clock=Clock(), start=START)
    fleet.device(3).answering = False
    with pytest.raises(ModbusTimeout):
        fleet.read(3, Table.INPUT, 0, 2)
    assert fleet.read(2, Table.INPUT, 0, 2)
    fleet.device(3).answering = True
    assert fleet.read(3, Table.INPUT, 0, 2)
    with pytest.raises(ModbusTimeout):
        fleet.read(9, Table.INPUT, 0, 2)  # no member there


async def test_the_engine_learns_the_grid_meters_limit() -> None:
    """Polling the whole fleet: unit 2's largest read is learned, then reads succeed."""
    clock = Clock(0.0)
    fleet = Fleet(seed=42, clock=clock, start=0.0)
    engine = PollEngine(
        [spec for device in fleet.devices.values() for spec in device.registers],
        InProcessTransport(list(fleet.devices.values())),
        clock,
    )
    while (due := engine.next_due()) <= 600.0:
        clock.now = max(clock.now, due)
        await engine.poll_due()
    limits = engine.export_state()["unit_limits"]
    assert [item["unit_id"] for item in limits] == [2]
    assert limits[0]["max_registers"] <= 20
    failed = []
    while (due := engine.next_due()) <= 1_200.0:
        clock.now = max(clock.now, due)
        result = await engine.poll_due()
        failed += [e for e in result.errors if e.unit_id == 2]
    assert failed == []
    snapshot = engine.snapshot()
    assert all(
        snapshot.registers[spec.uid].value is not None
        for spec in fleet.device(2).registers
    )


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.allow_hosts([LOOPBACK])
async def test_the_fleet_served_over_modbus_tcp() -> None:
    """One server, three unit ids; the grid meter answers exception 3 above 20."""
    clock = Clock()
    fleet = Fleet(seed=42, clock=clock, start=START)
    async with SimulatorServer(fleet, unit_ids=fleet.unit_ids) as server:
        client = AsyncModbusTcpClient(LOOPBACK, port=server.port, timeout=1)
        await client.connect()
        try:
            for unit, device in fleet.devices.items():
                spec = device.registers[0]
                response = await client.read_input_registers(
                    spec.address, count=spec.size, **compat.unit_kwargs(unit)
                )
                assert not response.isError(), unit
                assert spec.decode(response.registers) == device.truth(
                    spec.key, clock.now
                )
            ok = await client.read_input_registers(0, count=20, **compat.unit_kwargs(2))
            assert not ok.isError() and len(ok.registers) == 20
            refused = await client.read_input_registers(
                0, count=21, **compat.unit_kwargs(2)
            )
            # pymodbus 3.8's server turns every datastore refusal into exception 2
            old = tuple(int(x) for x in pymodbus.__version__.split(".")[:2]) < (3, 9)
            assert refused.isError() and refused.exception_code == (2 if old else 3)
            # a write to a member's map reaches that member only
            written = await client.write_register(0, 215, **compat.unit_kwargs(1))
            assert not written.isError()
            assert fleet.device(1).truth("room_setpoint", clock.now) == 21.5
            refused_write = await client.write_register(0, 1, **compat.unit_kwargs(2))
            assert refused_write.isError()
        finally:
            client.close()
