"""Register maps as YAML: device profiles and user-pasted maps.

``parse_register_map`` turns YAML text into validated :class:`RegisterDefinition`
objects. Every error is a :class:`RegisterMapError` naming the field and the
1-based line, so a config flow can point the user at what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import AdaptiveModbusError
from .registers import DataType, Order, RegisterSpec, RegisterSpecError, Table

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"  # package data

_FIELDS = frozenset(
    {
        "key", "name", "table", "address", "data_type", "count", "bit", "word_order",
        "byte_order", "scale", "offset", "precision", "unit", "device_class", "state_class",
        "tolerance", "writable", "entity_category", "enabled_by_default", "icon", "min", "max",
        "step", "min_interval", "max_interval",
    }
)  # fmt: skip
_ENTITY_CATEGORIES = frozenset({"diagnostic", "config"})


class RegisterMapError(AdaptiveModbusError, ValueError):
    """A register map is invalid at ``line`` (1-based, or None) in ``field``."""

    def __init__(self, message: str, field: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.field = field
        self.line = line
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, slots=True)
class RegisterDefinition:
    """A register spec plus how it is presented (strings only; no HA imports)."""

    spec: RegisterSpec
    name: str
    unit: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    entity_category: str | None = None
    enabled_by_default: bool = True
    icon: str | None = None
    native_min: float | None = None
    native_max: float | None = None
    native_step: float | None = None

    @property
    def key(self) -> str:
        """The register's key, unique within its unit."""
        return self.spec.key


@dataclass(frozen=True, slots=True)
class Profile:
    """A device template: its identity and register map."""

    profile_id: str
    name: str
    manufacturer: str | None
    model: str | None
    max_registers: int | None
    registers: tuple[RegisterDefinition, ...] = field(default_factory=tuple)


def slugify(text: str) -> str:
    """Lower-case key from a name: 'Outdoor temp.' -> 'outdoor_temp'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML, keeping the node tree for line numbers."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RegisterMapError(f"not valid YAML: {err.problem or err}", None, line) from err
    except yaml.YAMLError as err:
        raise RegisterMapError(f"not valid YAML: {err}") from err
    return data, node


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                found: yaml.Node = value_node
                return found
    return None


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


class _Item:
    """One register entry with line lookups for its fields."""

    def __init__(self, data: Mapping[str, Any], node: yaml.Node | None) -> None:
        self.data = data
        self.node = node

    def line(self, field_name: str | None = None) -> int | None:
        if field_name is not None:
            child = _child(self.node, field_name)
            if child is not None:
                return _line(child)
        return _line(self.node)

    def error(self, field_name: str, message: str) -> RegisterMapError:
        return RegisterMapError(message, field_name, self.line(field_name))

    def get(self, field_name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.data.get(field_name, default)
        if value is None or value is default:
            return value
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.error(field_name, f"expected {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            raise self.error(field_name, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def choice(self, field_name: str, enum: type[Table | DataType | Order], default: Any) -> Any:
        value = self.data.get(field_name)
        if value is None:
            return default
        try:
            return enum(str(value).lower())
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise self.error(field_name, f"'{value}' is not one of: {allowed}") from None


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))


_NUMBER = (int, float)


def _definition(item: _Item, unit_id: int) -> RegisterDefinition:
    unknown = sorted(set(item.data) - _FIELDS)
    if unknown:
        raise item.error(unknown[0], f"unknown field; allowed: {', '.join(sorted(_FIELDS))}")
    name = item.get("name", str)
    if not name or not name.strip():
        raise item.error("name", "every register needs a name")
    key = item.get("key", str) or slugify(name)
    if not key:
        raise item.error("key", "could not derive a key from the name; set key")
    table = item.choice("table", Table, None)
    if table is None:
        raise item.error("table", "missing; one of: holding, input, coil, discrete")
    address = item.get("address", int)
    if address is None:
        raise item.error("address", "missing register address")
    default_type = DataType.BOOL if table.is_bit else DataType.UINT16
    category = item.get("entity_category", str)
    if category is not None and category not in _ENTITY_CATEGORIES:
        raise item.error("entity_category", "must be diagnostic or config")
    try:
        spec = RegisterSpec(
            key=key,
            unit_id=unit_id,
            table=table,
            address=address,
            data_type=item.choice("data_type", DataType, default_type),
            count=item.get("count", int, 1),
            bit=item.get("bit", int),
            word_order=item.choice("word_order", Order, Order.BIG),
            byte_order=item.choice("byte_order", Order, Order.BIG),
            scale=float(item.get("scale", _NUMBER, 1.0)),
            offset=float(item.get("offset", _NUMBER, 0.0)),
            precision=item.get("precision", int),
            writable=item.get("writable", bool, False),
            tolerance=float(item.get("tolerance", _NUMBER, 0.0)),
            min_interval=_opt_float(item.get("min_interval", _NUMBER)),
            max_interval=_opt_float(item.get("max_interval", _NUMBER)),
        )
    except RegisterSpecError as err:
        raise item.error(err.field, str(err).split(": ", 2)[-1]) from err
    return RegisterDefinition(
        spec=spec,
        name=name.strip(),
        unit=_opt_str(item.get("unit", (str, int, float))),
        device_class=item.get("device_class", str),
        state_class=item.get("state_class", str),
        entity_category=category,
        enabled_by_default=item.get("enabled_by_default", bool, True),
        icon=item.get("icon", str),
        native_min=_opt_float(item.get("min", _NUMBER)),
        native_max=_opt_float(item.get("max", _NUMBER)),
        native_step=_opt_float(item.get("step", _NUMBER)),
    )


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _register_items(data: Any, node: yaml.Node | None) -> list[_Item]:
    if data is None:
        raise RegisterMapError("the register map is empty", "registers", 1)
    items: Any
    if isinstance(data, list):
        items, items_node = data, node
    elif isinstance(data, dict):
        items, items_node = data.get("registers"), _child(node, "registers")
        if items is None:
            raise RegisterMapError("missing 'registers' list", "registers", _line(node))
    else:
        raise RegisterMapError("expected a list of registers", "registers", _line(node))
    if not isinstance(items, list) or not items:
        raise RegisterMapError(
            "'registers' must be a non-empty list", "registers", _line(items_node)
        )
    nodes: list[yaml.Node | None] = (
        list(items_node.value) if isinstance(items_node, yaml.SequenceNode) else [None] * len(items)
    )
    result = []
    for item, item_node in zip(items, nodes, strict=True):
        if not isinstance(item, dict):
            raise RegisterMapError(
                "each register must be a mapping of fields", None, _line(item_node)
            )
        result.append(_Item(item, item_node))
    return result


def parse_register_map(text: str, unit_id: int) -> list[RegisterDefinition]:
    """Parse a YAML register map (a profile, or a bare list of registers)."""
    return _definitions(*_load_yaml(text), unit_id)


def _definitions(data: Any, node: yaml.Node | None, unit_id: int) -> list[RegisterDefinition]:
    definitions: list[RegisterDefinition] = []
    seen: dict[str, int | None] = {}
    for item in _register_items(data, node):
        definition = _definition(item, unit_id)
        if definition.key in seen:
            raise item.error(
                "key", f"'{definition.key}' is used twice (first on line {seen[definition.key]})"
            )
        seen[definition.key] = item.line()
        definitions.append(definition)
    return definitions


def available_profiles() -> list[str]:
    """Profile ids shipped in ``profiles/`` (file names without .yaml)."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.yaml"))


def load_profile(profile_id: str, unit_id: int) -> Profile:
    """Read a shipped profile. Blocking file I/O: call from an executor in HA."""
    if profile_id not in available_profiles():
        raise RegisterMapError(f"unknown profile '{profile_id}'", "profile")
    text = (PROFILES_DIR / f"{profile_id}.yaml").read_text(encoding="utf-8")
    return parse_profile(profile_id, text, unit_id)


def parse_profile(profile_id: str, text: str, unit_id: int) -> Profile:
    """Parse profile text: identity fields plus its registers."""
    data, node = _load_yaml(text)
    registers = _definitions(data, node, unit_id)
    meta = data if isinstance(data, dict) else {}
    max_registers = meta.get("max_registers")
    return Profile(
        profile_id=profile_id,
        name=str(meta.get("name") or profile_id),
        manufacturer=_opt_str(meta.get("manufacturer")),
        model=_opt_str(meta.get("model")),
        max_registers=max_registers if isinstance(max_registers, int) else None,
        registers=tuple(registers),
    )
