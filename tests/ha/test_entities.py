"""Entities from register maps: classes, units, devices, updates, writes with read-back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_ENTITY_ID,
    ATTR_UNIT_OF_MEASUREMENT,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.typing import UNDEFINED
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_MIN_INTERVAL,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    CONNECTION_TCP,
    DOMAIN,
    PROFILE_DEMO,
    UNIT_HEALTH_KEYS,
)
from custom_components.adaptive_modbus.coordinator import STAT_SOURCES, STATE_WRITES_KEY
from custom_components.adaptive_modbus.descriptions import (
    binary_sensor_description,
    check_presentation,
    number_description,
    sensor_description,
    switch_description,
)
from custom_components.adaptive_modbus.engine import errors as engine_errors
from custom_components.adaptive_modbus.engine.errors import DeviceFailure
from custom_components.adaptive_modbus.engine.register_map import (
    RegisterDefinition,
    RegisterMapError,
    load_profile,
    parse_register_map,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.device import SimulatedDevice
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.flow_checks import FlowError, parse_custom_map
from custom_components.adaptive_modbus.sensor import STAT_DESCRIPTIONS

from .helpers import set_up_entry, unload_entry

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


def entity_id_of(
    hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str
) -> str:
    """Entity id of a register entity of unit 1."""
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_1_{key}"
    )
    assert entity_id is not None, key
    return entity_id


async def test_demo_entities_devices_and_classes(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Sensor classes, units and precision come from the register map; devices nest."""
    await set_up_entry(hass, demo_entry)
    registry = er.async_get(hass)

    outdoor = entity_id_of(hass, demo_entry, "sensor", "outdoor_temperature")
    state = hass.states.get(outdoor)
    assert state.attributes[ATTR_DEVICE_CLASS] == "temperature"
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "°C"
    assert state.attributes["state_class"] == "measurement"
    assert (
        registry.async_get(outdoor).options["sensor"]["suggested_display_precision"]
        == 1
    )
    assert -40 < float(state.state) < 50

    energy = hass.states.get(entity_id_of(hass, demo_entry, "sensor", "energy_import"))
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kWh"

    running = hass.states.get(
        entity_id_of(hass, demo_entry, "binary_sensor", "status_running")
    )
    assert running.attributes[ATTR_DEVICE_CLASS] == "running"
    assert running.state in (STATE_ON, STATE_OFF)
    alarm = hass.states.get(
        entity_id_of(hass, demo_entry, "binary_sensor", "alarm_overload")
    )
    assert alarm.attributes[ATTR_DEVICE_CLASS] == "problem"

    setpoint = hass.states.get(
        entity_id_of(hass, demo_entry, "number", "room_setpoint")
    )
    assert setpoint.attributes["min"] == 5
    assert setpoint.attributes["max"] == 30
    assert setpoint.attributes["step"] == 0.5
    power_limit = registry.async_get(
        entity_id_of(hass, demo_entry, "number", "power_limit")
    )
    assert power_limit.entity_category is EntityCategory.CONFIG
    pump = hass.states.get(entity_id_of(hass, demo_entry, "switch", "pump_enable"))
    assert pump.state in (STATE_ON, STATE_OFF)

    # rarely useful (diagnostic) registers exist but are disabled by default
    uptime = registry.async_get(entity_id_of(hass, demo_entry, "sensor", "uptime"))
    assert uptime.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert uptime.entity_category is EntityCategory.DIAGNOSTIC

    # one device per unit, reached via the connection (hub) device
    devices = dr.async_get(hass)
    hub = devices.async_get_device(identifiers={(DOMAIN, f"{demo_entry.entry_id}_hub")})
    unit = devices.async_get_device(identifiers={(DOMAIN, f"{demo_entry.entry_id}_1")})
    assert hub is not None and unit is not None
    assert unit.via_device_id == hub.id
    assert unit.manufacturer == "Adaptive Modbus"
    assert unit.model == "Simulator"
    assert registry.async_get(outdoor).device_id == unit.id

    # connection diagnostics on the hub device, translated names, unknown until warmed up
    stats = [
        e
        for e in er.async_entries_for_config_entry(registry, demo_entry.entry_id)
        if e.device_id == hub.id and e.domain == "sensor"  # (the charts: image)
    ]
    assert {e.translation_key for e in stats} >= {
        "requests_per_minute",
        "bus_utilisation",
        "mean_latency",
        "p95_latency",
        "error_rate",
        "registers_per_request",
        "saving_vs_fixed",
    }
    assert all(
        e.entity_category is EntityCategory.DIAGNOSTIC
        for e in stats
        if e.domain == "sensor"  # the optimization switch and select are config
    )
    rpm = next(e.entity_id for e in stats if e.translation_key == "requests_per_minute")
    assert hass.states.get(rpm).state == STATE_UNKNOWN
    await vtime.run(demo_entry.runtime_data.coordinator, 3 * 60)
    assert float(hass.states.get(rpm).state) > 0
    saving = next(e.entity_id for e in stats if e.translation_key == "saving_vs_fixed")
    assert hass.states.get(saving).state != STATE_UNKNOWN
    await unload_entry(hass, demo_entry)


async def test_values_update_over_refreshes(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Values follow the demo scenario as virtual time passes."""
    await set_up_entry(hass, demo_entry)
    coordinator = demo_entry.runtime_data.coordinator
    power = entity_id_of(hass, demo_entry, "sensor", "active_power")
    seen = set()
    for _ in range(20):
        await vtime.run(coordinator, 60)
        seen.add(hass.states.get(power).state)
    assert len(seen) > 5
    await unload_entry(hass, demo_entry)


CUSTOM_MAP = """
registers:
  - name: Mains voltage
    table: input
    address: 8
    data_type: uint16
    scale: 0.1
    precision: 1
    unit: V
    device_class: voltage
    state_class: measurement
  - name: Setpoint
    table: holding
    address: 0
    data_type: int16
    scale: 0.1
    precision: 1
    unit: "°C"
    device_class: temperature
    writable: true
    min: 5
    max: 30
    step: 0.5
  - name: Pump
    table: coil
    address: 0
    writable: true
  - name: Overload
    table: discrete
    address: 1
    device_class: problem
"""


async def test_custom_map_against_real_server(
    hass: HomeAssistant, vtime: VirtualTime, sim_server: SimulatorServer, tcp_entry: Any
) -> None:
    """A pasted register map polls a real pymodbus server over TCP."""
    entry = tcp_entry(sim_server.port, register_map=CUSTOM_MAP)
    await set_up_entry(hass, entry)
    device = sim_server.device
    voltage = hass.states.get(entity_id_of(hass, entry, "sensor", "mains_voltage"))
    assert voltage.attributes[ATTR_UNIT_OF_MEASUREMENT] == "V"
    assert float(voltage.state) == pytest.approx(
        device.truth("grid_voltage", vtime.time()), abs=5
    )
    setpoint = hass.states.get(entity_id_of(hass, entry, "number", "setpoint"))
    assert float(setpoint.state) == pytest.approx(
        device.truth("room_setpoint", vtime.time())
    )
    pump = hass.states.get(entity_id_of(hass, entry, "switch", "pump"))
    assert (pump.state == STATE_ON) == bool(device.truth("pump_enable", vtime.time()))
    overload = hass.states.get(entity_id_of(hass, entry, "binary_sensor", "overload"))
    assert overload.state in (STATE_ON, STATE_OFF)

    await vtime.run(entry.runtime_data.coordinator, 5 * 60)
    voltage = hass.states.get(entity_id_of(hass, entry, "sensor", "mains_voltage"))
    assert float(voltage.state) == pytest.approx(
        device.truth("grid_voltage", vtime.time()), abs=5
    )
    devices = dr.async_get(hass)
    unit = devices.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_1")})
    assert unit is not None and unit.name == "Custom device"
    await unload_entry(hass, entry)


async def test_number_and_switch_write_then_read_back(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Writes reach the device, the state shows the read-back value at once."""
    await set_up_entry(hass, demo_entry)
    coordinator = demo_entry.runtime_data.coordinator
    fleet = demo_entry.runtime_data.hub.server.device
    device = fleet.device(1)  # the fleet's heat pump
    await vtime.run(coordinator, 10 * 60)  # let the setpoint's interval grow
    before = coordinator.engine.snapshot().registers["1.room_setpoint"].interval

    setpoint = entity_id_of(hass, demo_entry, "number", "room_setpoint")
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: setpoint, ATTR_VALUE: 23.5},
        blocking=True,
    )
    assert hass.states.get(setpoint).state == "23.5"
    assert device.truth("room_setpoint", vtime.time()) == pytest.approx(23.5)
    register = coordinator.engine.snapshot().registers["1.room_setpoint"]
    assert register.value == pytest.approx(23.5)
    assert register.reason == "write"
    assert register.interval <= before

    pump = entity_id_of(hass, demo_entry, "switch", "pump_enable")
    await hass.services.async_call(
        "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: pump}, blocking=True
    )
    assert hass.states.get(pump).state == STATE_OFF
    assert device.truth("pump_enable", vtime.time()) is False
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: pump}, blocking=True
    )
    assert hass.states.get(pump).state == STATE_ON
    assert device.truth("pump_enable", vtime.time()) is True
    await unload_entry(hass, demo_entry)


async def test_failed_write_raises_translated_error(
    hass: HomeAssistant, vtime: VirtualTime, sim_server: SimulatorServer, tcp_entry: Any
) -> None:
    """A write to a device that is gone raises HomeAssistantError with a translation key."""
    entry = tcp_entry(sim_server.port)
    await set_up_entry(hass, entry)
    await sim_server.stop()
    pump = entity_id_of(hass, entry, "switch", "pump_enable")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", SERVICE_TURN_OFF, {ATTR_ENTITY_ID: pump}, blocking=True
        )
    assert err.value.translation_key == "write_failed"
    assert err.value.translation_domain == DOMAIN
    await unload_entry(hass, entry)


class TwoUnits:
    """Two simulated units behind one server (a gateway with two devices)."""

    def __init__(self, clock: Any) -> None:
        """Serve two demo units (1 and 2) on ``clock``."""
        self.units = {
            unit: SimulatedDevice(seed=40 + unit, clock=clock, unit_id=unit)
            for unit in (1, 2)
        }

    def read(self, unit_id: int, table: Any, address: int, count: int) -> list[int]:
        """Read from the addressed unit."""
        return self.units[unit_id].read(unit_id, table, address, count)

    def write_registers(self, unit_id: int, address: int, values: Any) -> None:
        """Write to the addressed unit."""
        self.units[unit_id].write_registers(unit_id, address, values)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write a coil of the addressed unit."""
        self.units[unit_id].write_coil(unit_id, address, value)


async def test_two_units_on_one_connection(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """One HA device per unit id, both via the connection device; keys never collide."""
    server = SimulatorServer(
        TwoUnits(vtime.time), host="127.0.0.1", port=0, unit_ids=(1, 2)
    )
    await server.start()
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            title="Gateway",
            unique_id=f"tcp:127.0.0.1:{server.port}",
            data={
                CONF_CONNECTION: CONNECTION_TCP,
                CONF_HOST: "127.0.0.1",
                CONF_PORT: server.port,
                CONF_DEVICES: [
                    {
                        CONF_UNIT_ID: 1,
                        CONF_PROFILE: PROFILE_DEMO,
                        CONF_NAME: "Heat pump 1",
                    },
                    {
                        CONF_UNIT_ID: 2,
                        CONF_PROFILE: PROFILE_DEMO,
                        CONF_NAME: "Heat pump 2",
                    },
                ],
            },
            options={CONF_TIMEOUT: 0.5, CONF_MIN_INTERVAL: 2.0},
        )
        entry.add_to_hass(hass)
        await set_up_entry(hass, entry)
        await vtime.run(entry.runtime_data.coordinator, 60)
        devices = dr.async_get(hass)
        hub = devices.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_hub")})
        registry = er.async_get(hass)
        for unit in (1, 2):
            device = devices.async_get_device(
                identifiers={(DOMAIN, f"{entry.entry_id}_{unit}")}
            )
            assert device is not None and hub is not None
            assert device.name == f"Heat pump {unit}"
            assert device.via_device_id == hub.id
            entity_id = registry.async_get_entity_id(
                "sensor", DOMAIN, f"{entry.entry_id}_{unit}_outdoor_temperature"
            )
            assert entity_id is not None
            assert registry.async_get(entity_id).device_id == device.id
            assert hass.states.get(entity_id).state not in ("unavailable", "unknown")
        registers = entry.runtime_data.coordinator.engine.snapshot().registers
        assert {"1.outdoor_temperature", "2.outdoor_temperature"} <= set(registers)
        await unload_entry(hass, entry)
    finally:
        await server.stop()


# the demo entry's entities as they were before entity names came from translation keys:
# (entity id, unique id after "<entry_id>_", enabled)
DEMO_ENTITIES = [
    ("image.demo_heat_pump_register_intervals", "1_chart_intervals", True),
    ("image.demo_heat_pump_requests_per_day", "hub_chart_daily", True),
    ("image.demo_heat_pump_requests_per_hour", "hub_chart_hourly", True),
    ("image.demo_heat_pump_requests_saved", "hub_chart_cumulative", True),
    ("binary_sensor.demo_heat_pump_defrost", "1_status_defrost", True),
    ("binary_sensor.demo_heat_pump_fault", "1_status_fault", True),
    ("binary_sensor.demo_heat_pump_low_pressure_alarm", "1_alarm_low_pressure", True),
    ("binary_sensor.demo_heat_pump_overload_alarm", "1_alarm_overload", True),
    # device health (not registers)
    ("binary_sensor.demo_heat_pump_problem", "1_problem", True),
    ("sensor.demo_heat_pump_health", "1_health", True),
    ("sensor.demo_heat_pump_connection_health", "hub_health", True),
    (
        "binary_sensor.demo_heat_pump_overtemperature_alarm",
        "1_alarm_overtemperature",
        True,
    ),
    ("binary_sensor.demo_heat_pump_running", "1_status_running", True),
    ("binary_sensor.demo_heat_pump_warning", "1_status_warning", True),
    ("number.demo_heat_pump_power_limit", "1_power_limit", True),
    ("number.demo_heat_pump_room_setpoint", "1_room_setpoint", True),
    ("sensor.demo_heat_pump_95th_percentile_latency", "hub_p95_latency", False),
    # the optimization control (see test_optimization_loop.py)
    ("select.demo_heat_pump_optimization_goal", "hub_optimization_goal", True),
    ("sensor.demo_heat_pump_last_optimization", "hub_last_optimization", True),
    (
        "switch.demo_heat_pump_automatic_optimization",
        "hub_automatic_optimization",
        True,
    ),
    ("sensor.demo_heat_pump_active_power", "1_active_power", True),
    ("sensor.demo_heat_pump_bus_utilisation", "hub_bus_utilisation", False),
    ("sensor.demo_heat_pump_compressor_energy", "1_compressor_energy", True),
    ("sensor.demo_heat_pump_compressor_power", "1_compressor_power", True),
    ("sensor.demo_heat_pump_energy_import", "1_energy_import", True),
    ("sensor.demo_heat_pump_error_rate", "hub_error_rate", False),
    ("sensor.demo_heat_pump_firmware_version", "1_firmware_version", False),
    ("sensor.demo_heat_pump_flow_rate", "1_flow_rate", True),
    ("sensor.demo_heat_pump_grid_frequency", "1_grid_frequency", True),
    ("sensor.demo_heat_pump_grid_voltage", "1_grid_voltage", True),
    ("sensor.demo_heat_pump_mean_latency", "hub_mean_latency", False),
    ("sensor.demo_heat_pump_outdoor_temperature", "1_outdoor_temperature", True),
    ("sensor.demo_heat_pump_registers_per_request", "hub_registers_per_request", False),
    ("sensor.demo_heat_pump_requests_per_minute", "hub_requests_per_minute", True),
    ("sensor.demo_heat_pump_return_temperature", "1_return_temperature", True),
    ("sensor.demo_heat_pump_saving_against_fixed_polling", "hub_saving_vs_fixed", True),
    ("sensor.demo_heat_pump_serial_number", "1_serial_number", False),
    (
        "sensor.demo_heat_pump_state_writes_per_minute",
        "hub_state_writes_per_minute",
        False,
    ),
    ("sensor.demo_heat_pump_supply_temperature", "1_supply_temperature", True),
    ("sensor.demo_heat_pump_uptime", "1_uptime", False),
    ("switch.demo_heat_pump_boost_mode", "1_boost_mode", True),
    ("switch.demo_heat_pump_pump_enable", "1_pump_enable", True),
]


async def test_demo_entity_ids_unique_ids_and_names_are_unchanged(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Test that translated names keep the demo's entity ids, unique ids and names.

    Names from translation keys give the entity ids, unique ids and names the
    profile's names gave; each device's entities belong to its config subentry.
    """
    await set_up_entry(hass, demo_entry)
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, demo_entry.entry_id)
    prefix = f"{demo_entry.entry_id}_"
    assert sorted(
        (e.entity_id, e.unique_id.removeprefix(prefix), e.disabled_by is None)
        for e in entries
    ) == sorted(DEMO_ENTITIES)
    # no two entities translate to one name on the devices (HA would add "_2")
    assert not [e.entity_id for e in entries if e.entity_id[-2:-1] == "_"]
    (subentry,) = demo_entry.subentries.values()  # the demo's one device
    names = {d.key: d.name for d in load_profile(PROFILE_DEMO, 1).registers}
    for entity in entries:
        key = entity.unique_id.removeprefix(f"{prefix}1_")
        if entity.unique_id.startswith(f"{prefix}hub_"):
            assert entity.config_subentry_id is None  # the connection's own figures
            continue
        if entity.domain == "image":  # the device's register-intervals chart
            assert entity.config_subentry_id == subentry.subentry_id
            continue
        assert entity.translation_key == key
        assert entity.config_subentry_id == subentry.subentry_id
        if key in UNIT_HEALTH_KEYS:  # the device's health, not a register
            continue
        state = hass.states.get(entity.entity_id)
        if state is not None:
            assert state.attributes["friendly_name"] == f"Demo heat pump {names[key]}"
    await unload_entry(hass, demo_entry)


def _one(
    extra: str, table: str = "input", data_type: str = "uint16"
) -> RegisterDefinition:
    """One register of a custom map (line 2 is its entry, line 6 its first extra field)."""
    text = (
        f"registers:\n  - name: Thing\n    table: {table}\n    address: 0\n"
        f"    data_type: {data_type}\n"
        + "".join(f"    {line}\n" for line in extra.splitlines())
    )
    (definition,) = parse_register_map(text, 1)
    return definition


@pytest.mark.parametrize(
    ("extra", "table", "data_type", "field", "line", "words"),
    [
        ("colour: red", "input", "uint16", "colour", 6, "unknown field; allowed:"),
        ("device_class: temprature", "input", "uint16", "device_class", 6,
         "'temprature' is not a device class of a sensor"),
        ("unit: W\ndevice_class: temperature", "input", "uint16", "unit", 6,
         "unit 'W' does not fit device class 'temperature'"),
        ("device_class: temperature", "input", "uint16", "device_class", 6,
         "unit None does not fit"),
        ("unit: kWh\ndevice_class: energy\nstate_class: measurement", "input", "uint32",
         "state_class", 8, "'measurement' does not fit device class 'energy'"),
        ("state_class: average", "input", "uint16", "state_class", 6, "is not one of"),
        ("device_class: timestamp", "input", "uint32", "device_class", 6, "needs a date"),
        ("device_class: temperature", "coil", "bool", "device_class", 6,
         "'temperature' is not a device class of a binary_sensor"),
        ("writable: true\ndevice_class: temperature", "coil", "bool", "device_class", 7,
         "'temperature' is not a device class of a switch"),
        ("state_class: measurement", "coil", "bool", "state_class", 6,
         "only read-only numeric registers"),
        ("count: 4\ndevice_class: power", "input", "string", "device_class", 7,
         "a text register has no device class"),
        ("entity_category: config", "input", "uint16", "entity_category", 6,
         "only for writable registers"),
        ("entity_category: hidden", "input", "uint16", "entity_category", 6, "not one of"),
        ("icon: flash", "input", "uint16", "icon", 6, "not an icon name"),
        ("icon: 3", "input", "uint16", "icon", 6, "expected text"),
        ("writable: true\nmin: 30\nmax: 5", "holding", "uint16", "max", 8, "below min"),
        ("writable: true\nstep: 0", "holding", "uint16", "step", 7, "positive"),
        ("writable: true\nstep: fine", "holding", "uint16", "step", 7, "expected a number"),
        ("translation_key: outdoor_temperature", "input", "uint16", "translation_key", 6,
         "only shipped profiles"),
    ],
)  # fmt: skip
def test_map_check_names_field_and_line(
    *, extra: str, table: str, data_type: str, field: str, line: int, words: str
) -> None:
    """The flow's check of what a map asks of HA: each problem names field and line."""
    definition = _one(extra, table, data_type)
    with pytest.raises(RegisterMapError) as err:
        check_presentation([definition], custom=True)
    assert (err.value.field, err.value.line) == (field, line), str(err.value)
    assert words in err.value.message


def test_map_check_accepts_what_ha_accepts() -> None:
    """Fitting classes, units and ranges pass, a shipped profile may name a translation key."""
    good = [
        _one("unit: °C\ndevice_class: temperature\nstate_class: measurement\nicon: mdi:fire"),
        _one("unit: kWh\ndevice_class: energy\nstate_class: total_increasing", data_type="uint32"),
        _one("device_class: power_factor\nentity_category: diagnostic"),
        _one("device_class: problem", table="discrete", data_type="bool"),
        _one("writable: true\ndevice_class: outlet\nentity_category: config", "coil", "bool"),
        _one("writable: true\nunit: °C\ndevice_class: temperature\nmin: 5\nmax: 30\nstep: 0.5",
             "holding"),
    ]  # fmt: skip
    check_presentation(good, custom=True)
    check_presentation([_one("translation_key: outdoor_temperature")], custom=False)


def test_custom_map_with_a_bad_class_is_refused_in_the_flow_with_field_and_line() -> (
    None
):
    """The flow's parse of a pasted map refuses what HA cannot show, translated."""
    text = CUSTOM_MAP.replace("device_class: problem", "device_class: problme")
    error = parse_custom_map(text, 1)
    assert isinstance(error, FlowError)
    assert error.key == "invalid_register_map"
    line = text.splitlines().index("    device_class: problme") + 1
    assert error.placeholders["field"] == "device_class"
    assert error.placeholders["line"] == str(line)
    assert "not a device class of a binary_sensor" in error.placeholders["error"]
    assert not isinstance(parse_custom_map(CUSTOM_MAP, 1), FlowError)


def test_setup_leaves_out_what_ha_cannot_use_and_logs_field_and_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that setup leaves out what HA cannot use and logs its field and line.

    A stored map from an older version never fails its entities: a class the
    platform does not know is left out and logged with its field and line.
    """
    relay = _one(
        "writable: true\ndevice_class: temperature\nicon: mdi:power", "coil", "bool"
    )
    switch = switch_description(relay)
    assert switch.device_class is None and switch.icon == "mdi:power"
    assert "Register thing: line 7, field 'device_class'" in caplog.text
    assert "not a device class of a switch; left out" in caplog.text
    sensor = sensor_description(
        _one("unit: W\ndevice_class: power\nstate_class: total")
    )
    assert sensor.device_class is SensorDeviceClass.POWER
    assert sensor.state_class is SensorStateClass.TOTAL  # HA itself only warns about it
    assert sensor.native_unit_of_measurement == "W"
    caplog.clear()
    odd = sensor_description(
        _one("state_class: average\nentity_category: config\nnoise: 1")
    )
    assert odd.state_class is None and odd.entity_category is None
    assert [r.getMessage().split(": ")[1] for r in caplog.records] == [
        "line 8, field 'noise'",
        "line 6, field 'state_class'",
        "line 7, field 'entity_category'",
    ]


def test_descriptions_name_and_value_functions() -> None:
    """Test the descriptions' names and value functions.

    Custom maps are named by their name, shipped profiles by their translation key;
    each platform's value function turns the engine's value into its state.
    """
    custom = sensor_description(_one("unit: W"))
    assert (custom.name, custom.translation_key) == ("Thing", None)
    assert custom.value_fn(12) == 12 and custom.value_fn("x") is None
    shipped = sensor_description(_one("translation_key: outdoor_temperature"))
    assert (
        shipped.name is UNDEFINED and shipped.translation_key == "outdoor_temperature"
    )
    text = sensor_description(_one("count: 2", data_type="string"))
    assert text.value_fn("ab") == "ab" and text.device_class is None
    bit = binary_sensor_description(_one("", table="discrete", data_type="bool"))
    assert bit.value_fn(1) is True and bit.value_fn(0) is False
    number = number_description(_one("writable: true\nscale: 0.5", table="holding"))
    assert number.value_fn(3) == 3.0 and number.value_fn("x") is None
    assert (number.native_min_value, number.native_max_value) == (0, 32767.5)
    assert (
        switch_description(_one("writable: true", "coil", "bool")).value_fn(True)
        is True
    )


def test_negative_scale_never_gives_a_negative_step() -> None:
    """Test that a negative scale never gives a writable number a negative step."""
    number = number_description(_one("scale: -0.5\nwritable: true", table="holding"))
    assert number.native_step == 0.5
    assert (number.native_min_value, number.native_max_value) == (-32767.5, 0)


def test_every_connection_figure_has_a_sensor_and_only_two_are_enabled() -> None:
    """Each figure the coordinator computes has a description; a user sees two of them."""
    keys = {d.key for d in STAT_DESCRIPTIONS}
    assert keys == {*STAT_SOURCES, STATE_WRITES_KEY}
    enabled = {d.key for d in STAT_DESCRIPTIONS if d.entity_registry_enabled_default}
    assert enabled == {"requests_per_minute", "saving_vs_fixed"}


def test_manifest_loggers_are_libraries_only() -> None:
    """``loggers`` names the libraries we use, not the integration itself."""
    manifest = json.loads(
        (
            Path(__file__).parents[2] / "custom_components" / DOMAIN / "manifest.json"
        ).read_text()
    )
    assert manifest["loggers"] == ["pymodbus"]


PRECISION_MAP = """
registers:
  - name: Power
    table: input
    address: 0
    data_type: float32
    precision: 1
    unit: W
    device_class: power
    state_class: measurement
"""


async def test_precision_is_a_display_hint(
    hass: HomeAssistant, vtime: VirtualTime, table_device: Any, tcp_entry: Any
) -> None:
    """The map's precision becomes suggested_display_precision; the glue rounds nothing."""
    device = table_device()
    device.set_float32(1, Table.INPUT, 0, 172.25)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = tcp_entry(server.port, register_map=PRECISION_MAP)
        await set_up_entry(hass, entry)
        power = entity_id_of(hass, entry, "sensor", "power")
        options = er.async_get(hass).async_get(power).options
        assert options["sensor"]["suggested_display_precision"] == 1
        # the state is the engine's value as it is (172.25 once the engine keeps it whole)
        engine_value = entry.runtime_data.coordinator.engine.value("1.power")
        assert float(hass.states.get(power).state) == engine_value
        assert engine_value == pytest.approx(172.25, abs=0.06)
        await unload_entry(hass, entry)
    finally:
        await server.stop()


UNCONFIRMED = getattr(engine_errors, "WriteUnconfirmed", None)


class ReadBackFails:
    """Takes writes; reading the holding register back fails (device busy)."""

    def __init__(self, table_device: Any) -> None:
        """Wrap a fresh table device that takes writes and reads."""
        self.inner = table_device()
        self.writes = 0
        self.refuse_reads = False

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read, unless holding reads are refused (device busy)."""
        if self.refuse_reads and table is Table.HOLDING:
            raise DeviceFailure("busy", unit_id=unit_id, address=address)
        return self.inner.read(unit_id, table, address, count)

    def write_registers(self, unit_id: int, address: int, values: Any) -> None:
        """Count and take the write."""
        self.writes += 1
        self.inner.write_registers(unit_id, address, values)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Take the coil write."""
        self.inner.write_coil(unit_id, address, value)


@pytest.mark.skipif(
    UNCONFIRMED is None, reason="the engine has no WriteUnconfirmed yet"
)
async def test_write_with_failed_read_back_is_unconfirmed_not_failed(
    hass: HomeAssistant, vtime: VirtualTime, table_device: Any, tcp_entry: Any
) -> None:
    """Written, but the read-back failed: a translated 'unconfirmed', not 'write failed'."""
    device = ReadBackFails(table_device)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = tcp_entry(server.port, register_map=CUSTOM_MAP)
        await set_up_entry(hass, entry)
        device.refuse_reads = True
        setpoint = entity_id_of(hass, entry, "number", "setpoint")
        with pytest.raises(HomeAssistantError) as err:
            await hass.services.async_call(
                "number",
                SERVICE_SET_VALUE,
                {ATTR_ENTITY_ID: setpoint, ATTR_VALUE: 21.5},
                blocking=True,
            )
        assert err.value.translation_key == "write_unconfirmed"
        assert device.writes == 1
        assert device.inner.words[1][Table.HOLDING][0] == 215
        await unload_entry(hass, entry)
    finally:
        await server.stop()
