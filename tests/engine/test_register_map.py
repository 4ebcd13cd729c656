"""Register maps: YAML in, validated definitions out, errors name field and line."""

from __future__ import annotations

import pytest

from adaptive_modbus_engine.register_map import (
    RegisterMapError,
    available_profiles,
    load_profile,
    parse_profile,
    parse_register_map,
    slugify,
)
from adaptive_modbus_engine.registers import DataType, Table

GOOD = """\
name: Test meter
manufacturer: ACME
max_registers: 40
registers:
  - name: Grid power
    table: input
    address: 12
    data_type: float32
    unit: W
    device_class: power
    state_class: measurement
    tolerance: 10
  - key: pump
    name: Pump
    table: coil
    address: 0
    writable: true
  - name: Setpoint
    table: holding
    address: 100
    data_type: int16
    scale: 0.5
    writable: true
    min: 5
    max: 30
    step: 0.5
    entity_category: config
"""


def test_parse_good_map() -> None:
    regs = parse_register_map(GOOD, unit_id=7)
    assert [r.key for r in regs] == ["grid_power", "pump", "setpoint"]
    power, pump, setpoint = regs
    assert power.spec.uid == "7.grid_power"
    assert power.spec.data_type is DataType.FLOAT32
    assert power.unit == "W" and power.device_class == "power"
    assert pump.spec.table is Table.COIL and pump.spec.data_type is DataType.BOOL
    assert setpoint.native_step == 0.5 and setpoint.entity_category == "config"


def test_bare_list_is_accepted() -> None:
    regs = parse_register_map("- name: A\n  table: holding\n  address: 1\n", unit_id=1)
    assert regs[0].spec.address == 1


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("registers:\n  - name: A\n    table: holdin\n    address: 1\n", "table", 3),
        ("registers:\n  - name: A\n    table: holding\n", "address", 2),
        ("registers:\n  - name: A\n    table: holding\n    address: x\n", "address", 4),
        ("registers:\n  - name: A\n    table: holding\n    address: 70000\n", "address", 4),
        (
            "registers:\n  - name: A\n    table: holding\n    address: 1\n    colour: red\n",
            "colour",
            5,
        ),
        (
            "registers:\n  - name: A\n    table: coil\n    address: 1\n    data_type: int16\n",
            "data_type",
            5,
        ),
        (
            "registers:\n  - name: A\n    table: holding\n    address: 1\n"
            "  - name: A\n    table: holding\n    address: 2\n",
            "key",
            5,
        ),
        ("registers:\n  - table: holding\n    address: 1\n", "name", 2),
        (
            "registers:\n  - name: A\n    table: input\n    address: 1\n    writable: yes please\n",
            "writable",
            5,
        ),
        ("registers: []\n", "registers", 1),
        ("name: x\n", "registers", 1),
        ("", "registers", 1),
    ],
)
def test_errors_name_field_and_line(text: str, field: str, line: int) -> None:
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1)
    assert err.value.field == field
    assert err.value.line == line
    assert f"line {line}" in str(err.value)


def test_invalid_yaml_reports_line() -> None:
    with pytest.raises(RegisterMapError) as err:
        parse_register_map("registers:\n  - name: A\n   table: [\n", unit_id=1)
    assert err.value.line is not None


def test_profiles_ship_and_load() -> None:
    assert "demo" in available_profiles()
    profile = load_profile("demo", unit_id=1)
    assert profile.registers and profile.name
    with pytest.raises(RegisterMapError):
        load_profile("no-such-profile", unit_id=1)


def test_parse_profile_metadata() -> None:
    profile = parse_profile("test", GOOD, unit_id=2)
    assert profile.name == "Test meter" and profile.manufacturer == "ACME"
    assert profile.max_registers == 40 and len(profile.registers) == 3


def test_slugify() -> None:
    assert slugify("Outdoor temp. (°C)") == "outdoor_temp_c"
