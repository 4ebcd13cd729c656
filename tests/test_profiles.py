"""The shipped device profiles (profiles/*.yaml) are valid and coherent with HA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.number import NumberDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
)
from homeassistant.components.switch import SwitchDeviceClass
import pytest
import yaml

from custom_components.adaptive_modbus.engine.register_map import (
    PROFILES_DIR,
    RegisterDefinition,
    available_profiles,
    load_profile,
    parse_register_map,
)
from custom_components.adaptive_modbus.engine.registers import DataType, Table
from custom_components.adaptive_modbus.profile_catalog import (
    custom_template,
    list_profiles,
)

PROFILE_FILES = sorted(PROFILES_DIR.glob("*.yaml"))
REQUIRED_PROFILES = {"demo", "sdm630", "sdm120", "custom"}


def _raw_registers(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    registers: list[dict[str, Any]] = (
        data["registers"] if isinstance(data, dict) else data
    )
    return registers


def _definitions(path: Path, unit_id: int = 1) -> list[RegisterDefinition]:
    return parse_register_map(path.read_text(encoding="utf-8"), unit_id)


def test_required_profiles_ship() -> None:
    """The demo, both Eastron meters and the custom template are there."""
    assert {path.stem for path in PROFILE_FILES} >= REQUIRED_PROFILES
    assert set(available_profiles()) == {path.stem for path in PROFILE_FILES}


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.stem)
def test_profile_parses(path: Path) -> None:
    """Every file parses as a register map and as a profile, for any unit id."""
    for unit_id in (1, 247):
        definitions = _definitions(path, unit_id)
        assert definitions
        assert all(d.spec.unit_id == unit_id for d in definitions)
    profile = load_profile(path.stem, 1)
    assert profile.name and profile.name != path.stem
    assert profile.manufacturer
    assert profile.model
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "max_registers" in data:
        assert isinstance(data["max_registers"], int)
        assert 1 <= data["max_registers"] <= 125
        assert profile.max_registers == data["max_registers"]
    # no register is wider than one read the device accepts
    limit = profile.max_registers or 125
    assert all(d.spec.size <= limit for d in profile.registers)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.stem)
def test_registers_complete(path: Path) -> None:
    """Each register has a name; measured numeric values state their tolerance.

    Numeric registers without a state class (identifiers such as a firmware
    version) may leave it out: 0, every change matters.
    """
    raw = _raw_registers(path)
    for item, definition in zip(raw, _definitions(path), strict=True):
        assert definition.name.strip(), item
        assert "key" in item, f"{definition.name}: give a stable key"
        measured = (
            definition.state_class is not None or definition.device_class is not None
        )
        if definition.spec.is_numeric and measured:
            assert "tolerance" in item, (
                f"{definition.key}: numeric register without tolerance"
            )
            assert definition.spec.tolerance >= 0
        if definition.entity_category is not None:
            assert definition.entity_category in ("diagnostic", "config")


def _check_sensor(definition: RegisterDefinition) -> None:
    key = definition.key
    device_class = definition.device_class
    if definition.state_class is not None:
        state_class = SensorStateClass(definition.state_class)  # raises when unknown
    else:
        state_class = None
    if device_class is None:
        return
    sensor_class = SensorDeviceClass(device_class)  # raises when unknown
    units = DEVICE_CLASS_UNITS.get(sensor_class)
    if units is not None:
        assert definition.unit in units, (
            f"{key}: unit {definition.unit!r} not for {device_class}"
        )
    allowed = DEVICE_CLASS_STATE_CLASSES.get(sensor_class)
    if allowed is not None and state_class is not None:
        assert state_class in allowed, (
            f"{key}: {state_class} not allowed for {device_class}"
        )
    if sensor_class is SensorDeviceClass.ENERGY:
        assert state_class in (
            SensorStateClass.TOTAL,
            SensorStateClass.TOTAL_INCREASING,
        ), key


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.stem)
def test_device_and_state_classes(path: Path) -> None:
    """Device class, state class and unit are ones HA accepts together."""
    for definition in _definitions(path):
        spec = definition.spec
        is_bool = spec.data_type in (DataType.BOOL, DataType.BIT)
        if is_bool:
            assert definition.unit is None, definition.key
            assert definition.state_class is None, definition.key
            if definition.device_class is not None:
                kind = SwitchDeviceClass if spec.writable else BinarySensorDeviceClass
                kind(definition.device_class)
        elif spec.data_type is DataType.STRING:
            assert definition.device_class is None, definition.key
            assert definition.state_class is None, definition.key
        elif spec.writable:
            if definition.device_class is not None:
                NumberDeviceClass(definition.device_class)
                units = DEVICE_CLASS_UNITS.get(
                    SensorDeviceClass(definition.device_class)
                )
                if units is not None:
                    assert definition.unit in units, definition.key
        else:
            _check_sensor(definition)


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.stem)
def test_no_overlapping_addresses(path: Path) -> None:
    """Within a table no two values share a register (bits of one word excepted)."""
    words: dict[tuple[Table, int], str] = {}
    bit_words: dict[tuple[Table, int], set[int]] = {}
    for definition in _definitions(path):
        spec = definition.spec
        if spec.data_type is DataType.BIT:
            slot = (spec.table, spec.address)
            assert slot not in words, f"{definition.key}: bit inside {words.get(slot)}"
            bits = bit_words.setdefault(slot, set())
            assert spec.bit not in bits, f"{definition.key}: bit {spec.bit} used twice"
            assert spec.bit is not None
            bits.add(spec.bit)
            continue
        for address in range(spec.address, spec.end):
            slot = (spec.table, address)
            assert slot not in words, (
                f"{definition.key} overlaps {words[slot]} at {address}"
            )
            assert slot not in bit_words, (
                f"{definition.key} overlaps bit registers at {address}"
            )
            words[slot] = definition.key


# Eastron documentation: input registers, float32, 30001 + address
SDM120_ADDRESSES = {
    "voltage": 0x00,
    "current": 0x06,
    "active_power": 0x0C,
    "apparent_power": 0x12,
    "reactive_power": 0x18,
    "power_factor": 0x1E,
    "frequency": 0x46,
    "import_active_energy": 0x48,
    "export_active_energy": 0x4A,
    "total_active_energy": 0x156,
}
SDM630_ADDRESSES = {
    "l1_voltage": 0x00,
    "l2_voltage": 0x02,
    "l3_voltage": 0x04,
    "l1_current": 0x06,
    "l2_current": 0x08,
    "l3_current": 0x0A,
    "l1_power": 0x0C,
    "l2_power": 0x0E,
    "l3_power": 0x10,
    "total_power": 0x34,
    "frequency": 0x46,
    "import_active_energy": 0x48,
    "export_active_energy": 0x4A,
    "l1_l2_voltage": 0xC8,
    "neutral_current": 0xE0,
    "total_active_energy": 0x156,
}


@pytest.mark.parametrize(
    ("profile_id", "addresses"),
    [("sdm120", SDM120_ADDRESSES), ("sdm630", SDM630_ADDRESSES)],
)
def test_eastron_profiles(profile_id: str, addresses: dict[str, int]) -> None:
    """Eastron meters: documented addresses, float32 input registers, 80-register reads."""
    profile = load_profile(profile_id, 1)
    assert profile.max_registers == 80  # "restricted to 40 parameters" of 2 registers
    by_key = {definition.key: definition for definition in profile.registers}
    for key, address in addresses.items():
        assert by_key[key].spec.address == address, key
    for definition in profile.registers:
        spec = definition.spec
        assert spec.table is Table.INPUT
        assert spec.data_type is DataType.FLOAT32
        assert spec.address % 2 == 0  # every parameter starts on an even register
        assert not spec.writable
        if definition.device_class == "voltage":
            assert spec.tolerance == 0.5
        if definition.device_class == "current":
            assert spec.tolerance == 0.05
        if definition.device_class == "power":
            assert spec.tolerance == 10
        if definition.device_class == "energy":
            assert spec.tolerance == 0.01
            assert definition.unit == "kWh"
        # rarely useful values stay out of the way
        if "thd" in definition.key or "demand" in definition.key:
            assert definition.entity_category == "diagnostic", definition.key
            assert definition.enabled_by_default is False, definition.key
    assert by_key["import_active_energy"].state_class == "total_increasing"


def test_catalog() -> None:
    """The flow's profile list: names from the files, demo first, custom last."""
    profiles = list_profiles()
    ids = [info.profile_id for info in profiles]
    assert set(ids) == {path.stem for path in PROFILE_FILES}
    assert ids[:3] == ["demo", "sdm630", "sdm120"]
    assert ids[-1] == "custom"
    names = {info.profile_id: info.name for info in profiles}
    assert names["sdm630"] == "Eastron SDM630"
    assert names["sdm120"] == "Eastron SDM120"


def test_custom_template() -> None:
    """The custom-map field starts with profiles/custom.yaml, a map that parses."""
    text = custom_template()
    assert text == (PROFILES_DIR / "custom.yaml").read_text(encoding="utf-8")
    definitions = parse_register_map(text, 3)
    tables = {definition.spec.table for definition in definitions}
    assert {Table.HOLDING, Table.INPUT, Table.COIL} <= tables  # shows the main kinds
