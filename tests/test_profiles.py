"""The shipped device profiles (profiles/*.yaml) are valid and coherent with HA."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.typing import UNDEFINED
import pytest
import yaml

from custom_components.adaptive_modbus.const import PROFILE_CUSTOM
from custom_components.adaptive_modbus.descriptions import (
    binary_sensor_description,
    check_presentation,
    number_description,
    platform_for,
    sensor_description,
    switch_description,
)
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

INTEGRATION = (
    Path(__file__).resolve().parent.parent / "custom_components" / "adaptive_modbus"
)
PROFILE_FILES = sorted(PROFILES_DIR.glob("*.yaml"))
DESCRIBE: dict[str, Callable[[RegisterDefinition], EntityDescription]] = {
    "sensor": sensor_description,
    "binary_sensor": binary_sensor_description,
    "number": number_description,
    "switch": switch_description,
}
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
        shown = definition.presentation
        measured = "state_class" in shown or "device_class" in shown
        if definition.spec.is_numeric and measured:
            assert "tolerance" in item, (
                f"{definition.key}: numeric register without tolerance"
            )
            assert definition.spec.tolerance >= 0


@pytest.mark.parametrize("path", PROFILE_FILES, ids=lambda path: path.stem)
def test_device_and_state_classes(path: Path) -> None:
    """Test that device class, state class, unit, category and ranges fit together.

    They are ones HA accepts together (the config flow's own check of a pasted map);
    energy is a total.
    """
    definitions = _definitions(path)
    check_presentation(definitions, custom=path.stem == PROFILE_CUSTOM)
    for definition in definitions:
        if definition.presentation.get("device_class") == SensorDeviceClass.ENERGY:
            state_class = definition.presentation.get("state_class")
            assert state_class in ("total", "total_increasing"), definition.key
        if definition.spec.data_type in (DataType.BOOL, DataType.BIT):
            assert definition.unit is None, definition.key


STRINGS = json.loads((INTEGRATION / "strings.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "path",
    [p for p in PROFILE_FILES if p.stem != PROFILE_CUSTOM],
    ids=lambda path: path.stem,
)
def test_shipped_registers_have_translated_names(path: Path) -> None:
    """Test that shipped registers have translated names equal to their ``name``.

    Every register of a shipped profile names its entity by a translation key with a
    string (strings.json ``entity.<platform>.<key>.name``, en.json the same) equal to
    its ``name``, so entity ids and names stay what the profile's names gave.
    """
    english = json.loads(
        (INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8")
    )
    for definition in _definitions(path):
        key = definition.presentation.get("translation_key")
        assert isinstance(key, str), (
            f"{path.stem}: {definition.key} has no translation_key"
        )
        platform = platform_for(definition).value
        strings = STRINGS["entity"].get(platform, {}).get(key)
        assert strings is not None, (
            f"{path.stem}: no string entity.{platform}.{key}.name"
        )
        assert strings["name"] == definition.name, f"{path.stem}: {key}"
        assert english["entity"][platform][key] == strings
        description = DESCRIBE[platform](definition)
        assert description.translation_key == key and description.name is UNDEFINED


def test_custom_template_names_entities_by_name() -> None:
    """The custom-map template is a user's map: names, no translation keys."""
    definitions = _definitions(PROFILES_DIR / f"{PROFILE_CUSTOM}.yaml")
    assert all("translation_key" not in d.presentation for d in definitions)
    check_presentation(definitions, custom=True)


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
        device_class = definition.presentation.get("device_class")
        if device_class == "voltage":
            assert spec.tolerance == 0.5
        if device_class == "current":
            assert spec.tolerance == 0.05
        if device_class == "power":
            assert spec.tolerance == 10
        if device_class == "energy":
            assert spec.tolerance == 0.01
            assert definition.unit == "kWh"
        # rarely useful values stay out of the way
        if "thd" in definition.key or "demand" in definition.key:
            assert definition.presentation.get("entity_category") == "diagnostic", (
                definition.key
            )
            assert definition.enabled_by_default is False, definition.key
    assert (
        by_key["import_active_energy"].presentation["state_class"] == "total_increasing"
    )


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
