"""Register maps: YAML in, validated definitions out, errors name field and line."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from adaptive_modbus_engine.register_map import (
    MAX_MAP_CHARS,
    MAX_MESSAGE_CHARS,
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
    """Test that a valid map parses into the specs it describes."""
    regs = parse_register_map(GOOD, unit_id=7)
    assert [r.key for r in regs] == ["grid_power", "pump", "setpoint"]
    power, pump, setpoint = regs
    assert power.spec.uid == "7.grid_power"
    assert power.spec.data_type is DataType.FLOAT32
    assert power.unit == "W" and power.spec.tolerance == 10
    assert pump.spec.table is Table.COIL and pump.spec.data_type is DataType.BOOL
    # what the engine does not read is kept as it is, with the line of each field
    assert power.presentation == {"device_class": "power", "state_class": "measurement"}
    assert pump.presentation == {}
    assert setpoint.presentation == {
        "min": 5,
        "max": 30,
        "step": 0.5,
        "entity_category": "config",
    }
    assert (power.line, power.line_of("device_class"), power.line_of("unit")) == (
        5,
        10,
        9,
    )
    assert setpoint.line_of("step") == 26
    assert setpoint.line_of("icon") == setpoint.line == 18  # absent: the entry's line


def test_bare_list_is_accepted() -> None:
    """Test that a bare list of registers is accepted as a map."""
    regs = parse_register_map("- name: A\n  table: holding\n  address: 1\n", unit_id=1)
    assert regs[0].spec.address == 1


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        ("registers:\n  - name: A\n    table: holdin\n    address: 1\n", "table", 3),
        ("registers:\n  - name: A\n    table: holding\n", "address", 2),
        ("registers:\n  - name: A\n    table: holding\n    address: x\n", "address", 4),
        (
            "registers:\n  - name: A\n    table: holding\n    address: 70000\n",
            "address",
            4,
        ),
        (
            "registers:\n  - name: A\n    table: holding\n    address: 1\n    colour: [red]\n",
            "colour",
            5,
        ),
        (
            "registers:\n  - name: A\n    table: coil\n    address: 1\n    data_type: int16\n",
            "data_type",
            5,
        ),
        (
            (
                "registers:\n  - name: A\n    table: holding\n    address: 1\n"
                "  - name: A\n    table: holding\n    address: 2\n"
            ),
            "name",
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
    """Test that a map error names the field and the line."""
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1)
    assert err.value.field == field
    assert err.value.line == line
    assert f"line {line}" in str(err.value)


def test_invalid_yaml_reports_line() -> None:
    """Test that a YAML syntax error reports its line."""
    with pytest.raises(RegisterMapError) as err:
        parse_register_map("registers:\n  - name: A\n   table: [\n", unit_id=1)
    assert err.value.line is not None


def test_profiles_ship_and_load() -> None:
    """Test that the shipped profiles are found and load."""
    assert "demo" in available_profiles()
    profile = load_profile("demo", unit_id=1)
    assert profile.registers and profile.name
    with pytest.raises(RegisterMapError):
        load_profile("no-such-profile", unit_id=1)


def test_parse_profile_metadata() -> None:
    """Test that a profile keeps its name, manufacturer and read limit."""
    profile = parse_profile("test", GOOD, unit_id=2)
    assert profile.name == "Test meter" and profile.manufacturer == "ACME"
    assert profile.max_registers == 40 and len(profile.registers) == 3


def test_slugify() -> None:
    """Test that names become lower-case keys without punctuation."""
    assert slugify("Outdoor temp. (°C)") == "outdoor_temp_c"


def reg(
    extra: str = "", name: str = "A", address: int = 1, table: str = "holding"
) -> str:
    """One register entry of a map (two-space list indent)."""
    text = f"  - name: {name}\n    table: {table}\n    address: {address}\n"
    return text + "".join(f"    {line}\n" for line in extra.splitlines())


def map_of(*entries: str) -> str:
    """Return a map text holding ``entries``."""
    return "registers:\n" + "".join(entries)


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        # duplicate YAML keys: the last one used to win silently
        (map_of(reg("address: 2")), "address", 5, "twice"),
        ("registers:\n  - name: A\n    name: B\n    table: holding\n    address: 1\n",
         "name", 3, "twice"),
        # NaN or inf, in the engine's fields and in presentation fields alike
        (map_of(reg("min: .nan")), "min", 5, "finite"),
        (map_of(reg("max: .inf")), "max", 5, "finite"),
        (map_of(reg("step: -.inf")), "step", 5, "finite"),
        (map_of(reg("tolerance: .nan")), "tolerance", 5, "finite"),
        (map_of(reg("scale: .inf")), "scale", 5, "finite"),
        (map_of(reg("offset: 1.0e+400")), "offset", 5, "finite"),
        # overlapping registers on the same unit and table
        (map_of(reg("data_type: int32"), reg(name="B", address=2)), "address", 8, "overlaps"),
        (map_of(reg(name="B", address=2), reg("data_type: uint64")), "address", 7, "overlaps"),
        (map_of(reg("data_type: bit\nbit: 3"), reg("data_type: bit\nbit: 3", name="B")),
         "address", 9, "overlaps"),
        (map_of(reg(table="coil"), reg(name="B", table="coil")), "address", 7, "overlaps"),
        # keys with spaces or dots
        (map_of(reg("key: grid power")), "key", 5, "no spaces or dots"),
        (map_of(reg("key: grid.power")), "key", 5, "no spaces or dots"),
        # different unicode names that slug to the same key
        (map_of(reg(name="Température"), reg(name="Tempårature", address=2)), "name", 5,
         "derived from the name"),
    ],
)  # fmt: skip
def test_validation_names_field_and_line(
    text: str, field: str, line: int, words: str
) -> None:
    """Test that a value the validation refuses names its field and line."""
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1)
    assert (err.value.field, err.value.line) == (field, line), str(err.value)
    assert words in err.value.message


def test_what_may_share_addresses() -> None:
    """Test which registers may share an address.

    Bits of a status word may share it with each other and with the whole word;
    the same address on another table is not an overlap.
    """
    text = map_of(
        reg("data_type: uint16", name="Status"),
        reg("data_type: bit\nbit: 0", name="Running"),
        reg("data_type: bit\nbit: 1", name="Fault"),
        reg(name="Input one", table="input"),
        reg("data_type: int32", name="Next", address=2),
    )
    assert [r.key for r in parse_register_map(text, unit_id=1)] == [
        "status", "running", "fault", "input_one", "next",
    ]  # fmt: skip


def test_min_interval_below_the_callers_floor() -> None:
    """Test that a register's own min_interval below the caller's floor is kept as written."""
    text = map_of(reg("min_interval: 1"))
    assert parse_register_map(text, unit_id=1)[0].spec.min_interval == 1
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1, min_interval_floor=5)
    assert (err.value.field, err.value.line) == ("min_interval", 5)
    assert "below the minimum interval allowed here (5 s)" in err.value.message
    ok = map_of(reg("min_interval: 5\nmax_interval: 60"))
    assert (
        parse_register_map(ok, unit_id=1, min_interval_floor=5)[0].spec.max_interval
        == 60
    )


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("icon: [mdi:flash]", "icon", "expected text, a number or true/false"),
        (
            "device_class: {a: 1}",
            "device_class",
            "expected text, a number or true/false",
        ),
        ("installed: 2024-01-31", "installed", "expected text, a number or true/false"),
        ("step: .inf", "step", "finite"),
        ("'max value': 3", "max value", "letters, digits"),
        ("7: seven", "7", "field name is text"),
    ],
)
def test_presentation_fields_are_checked_for_shape_only(
    extra: str, field: str, words: str
) -> None:
    """Test that presentation fields are checked for shape only.

    Fields the engine does not read must be text, a finite number or true/false;
    their meaning is the application's (an unknown name is no error here).
    """
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(map_of(reg(extra)), unit_id=1)
    assert (err.value.field, err.value.line) == (field, 5), str(err.value)
    assert words in err.value.message
    (definition,) = parse_register_map(
        map_of(reg("colour: red\nicon:\nblink: true\nlevel: 3")), unit_id=1
    )
    assert definition.presentation == {"colour": "red", "blink": True, "level": 3}


HA_VOCABULARY = frozenset(
    {
        "device_class", "state_class", "entity_category", "icon", "translation_key",
        "native_min", "native_max", "native_step", "min", "max", "step",
        "native_unit_of_measurement", "suggested_display_precision",
    }
)  # fmt: skip


def test_engine_has_no_home_assistant_vocabulary() -> None:
    """Test that the engine has no Home Assistant vocabulary.

    No dataclass of the engine has a field named after HA's entity vocabulary, and
    no engine module spells those names: presentation stays opaque to the engine.
    """
    import dataclasses  # noqa: PLC0415
    import importlib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415
    import pkgutil  # noqa: PLC0415

    import adaptive_modbus_engine  # noqa: PLC0415

    checked = 0
    for info in pkgutil.walk_packages(
        adaptive_modbus_engine.__path__, "adaptive_modbus_engine."
    ):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if dataclasses.is_dataclass(value) and value.__module__ == info.name:
                names = {f.name for f in dataclasses.fields(value)}
                assert not names & HA_VOCABULARY, (
                    value.__qualname__,
                    names & HA_VOCABULARY,
                )
                checked += 1
    assert checked > 10  # the walk really found the engine's dataclasses
    root = Path(adaptive_modbus_engine.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("device_class", "state_class", "entity_category", "homeassistant"):
            assert word not in text, f"{path.relative_to(root)} mentions {word}"


ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
registers: [*h]
"""


@pytest.mark.parametrize("target", ["registers: [*h]", "registers:\n  - name: *h"])
def test_alias_bomb_is_refused_quickly_without_expanding(target: str) -> None:
    """Test that a YAML alias bomb is refused quickly, never expanded."""
    text = ALIAS_BOMB.replace("registers: [*h]", target)
    assert len(text) < 420
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(RegisterMapError) as err:
            parse_register_map(text, unit_id=1)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5_000_000
    assert "alias" in err.value.message
    assert len(str(err.value)) <= MAX_MESSAGE_CHARS + 40


def test_a_huge_value_is_never_copied_into_a_message() -> None:
    """Test that a huge value never ends up in an error message."""
    blob = "x" * 300_000
    text = f"big: &big {blob}\nregisters:\n  - name: A\n    table: [*big, *big, *big]\n"
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1)
    assert err.value.field == "table" and len(str(err.value)) <= MAX_MESSAGE_CHARS + 40
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(map_of(reg(f"colour: 1\n{blob}: 2")), unit_id=1)
    assert len(str(err.value)) <= MAX_MESSAGE_CHARS + 40


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_deep_nesting_is_a_map_error(opening: str) -> None:
    """Test that deeply nested brackets are a map error, not a crash."""
    closing = "]" if opening == "[" else "}"
    text = "registers: " + opening * 1000 + closing * 1000 + "\n"
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text, unit_id=1)
    # ours ("nested more than 20 levels"), or libyaml's own limit, which newer PyYAML
    # wheels hit first while scanning ("exceeded maximum nesting depth")
    assert err.value.line == 1 and "nest" in err.value.message
    with pytest.raises(RegisterMapError):  # unbalanced too
        parse_register_map("registers: " + opening * 100_000, unit_id=1)


def test_input_size_is_bounded() -> None:
    """Test that 2,000 registers parse but a text over the size limit is refused."""
    entry = reg()
    text = map_of(*[entry.replace("name: A", f"name: R{i}").replace("address: 1", f"address: {i}")
                    for i in range(2000)])  # fmt: skip
    assert len(parse_register_map(text, unit_id=1)) == 2000  # a big map is fine
    with pytest.raises(RegisterMapError) as err:
        parse_register_map(text + "#" * MAX_MAP_CHARS, unit_id=1)
    assert err.value.field == "registers" and "at most 1,000,000" in err.value.message


def test_recursive_alias_is_a_map_error() -> None:
    """Test that a recursive alias is a map error."""
    with pytest.raises(RegisterMapError) as err:
        parse_register_map("registers: &r [*r]\n", unit_id=1)
    assert "alias" in err.value.message
