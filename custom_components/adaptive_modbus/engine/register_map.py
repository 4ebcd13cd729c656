"""Register maps as YAML: device profiles and user-pasted maps.

``parse_register_map`` turns YAML text into validated :class:`RegisterDefinition`
objects. Every error is a :class:`RegisterMapError` naming the field and the
1-based line, so a config flow can point the user at what to fix.

Parsing is bounded, so pasted text cannot hang or exhaust the host: at most
:data:`MAX_MAP_CHARS` characters, :data:`MAX_DEPTH` levels of nesting and
:data:`MAX_NODES` values with every alias expanded (a YAML "billion laughs" alias
bomb is refused before anything is expanded); messages are cut to
:data:`MAX_MESSAGE_CHARS`. The parse functions are plain, blocking functions of
their arguments (CPU only, no I/O, no shared state), made to be run in an
executor: ``await hass.async_add_executor_job(parse_register_map, text, unit_id)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import math
from pathlib import Path
import re
import reprlib
from types import MappingProxyType
from typing import Any

import yaml

from .errors import AdaptiveModbusError
from .registers import DataType, Order, RegisterSpec, RegisterSpecError, Table

MAX_MAP_CHARS = 1_000_000
"""Longest register map accepted (characters; a 2,000-register map is about 400,000)."""
MAX_DEPTH = 20
"""Deepest nesting of lists and mappings (a register map needs 4)."""
MAX_NODES = 200_000
"""Most values (scalars, lists, mappings) a map may hold with every alias expanded."""
MAX_MESSAGE_CHARS = 400
"""Longest error message; values quoted in messages are cut much shorter."""
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 40
_BRIEF.maxlist = _BRIEF.maxdict = _BRIEF.maxtuple = 4
_BRIEF.maxlevel = 2

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"  # package data

ENGINE_FIELDS = frozenset(
    {
        "key", "name", "table", "address", "data_type", "count", "bit", "word_order",
        "byte_order", "scale", "offset", "precision", "unit", "tolerance", "writable",
        "enabled_by_default", "min_interval", "max_interval",
    }
)  # fmt: skip
"""The fields the engine reads. Any other field of a register is *presentation*: kept
as it is (text, a number or true/false) for the application to interpret."""

type PresentationValue = str | int | float | bool
"""One presentation field's value: YAML scalars only (no lists, mappings or null)."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class RegisterMapError(AdaptiveModbusError, ValueError):
    """A register map is invalid at ``line`` (1-based, or None) in ``field``."""

    def __init__(
        self, message: str, field: str | None = None, line: int | None = None
    ) -> None:
        """Keep the message (cut short), the field and the line it is about."""
        self.message = _cut(str(message), MAX_MESSAGE_CHARS)
        self.field = None if field is None else _cut(str(field), 60)
        self.line = line
        message, field = self.message, self.field
        where = []
        if line is not None:
            where.append(f"line {line}")
        if field:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True, slots=True)
class RegisterDefinition:
    """A register spec, its name and unit, and the map's other fields as they are.

    The engine reads ``spec`` (protocol, decoding, tolerance), ``name``, ``unit`` and
    ``enabled_by_default`` (polled from the start or not). Every other field of the
    register's entry is in ``presentation``, unread by the engine: the application
    gives it meaning (and validates it, naming the field and :meth:`line_of` it).
    """

    spec: RegisterSpec
    name: str
    unit: str | None = None
    enabled_by_default: bool = True
    presentation: Mapping[str, PresentationValue] = field(default=_EMPTY, hash=False)
    line: int | None = field(default=None, compare=False)
    """1-based line of the register's entry in its map (None when built in code)."""
    field_lines: Mapping[str, int] = field(default=_EMPTY, compare=False, hash=False)
    """1-based line of each field of the entry, by field name."""

    @property
    def key(self) -> str:
        """The register's key, unique within its unit."""
        return self.spec.key

    def line_of(self, field_name: str | None = None) -> int | None:
        """Return the line of ``field_name`` in the map (the entry's line if absent)."""
        if field_name is not None and field_name in self.field_lines:
            return self.field_lines[field_name]
        return self.line

    def error(self, field_name: str, message: str) -> RegisterMapError:
        """Return a map error about ``field_name`` of this register, at its line."""
        return RegisterMapError(message, field_name, self.line_of(field_name))


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


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _brief(value: object) -> str:
    """Return a short repr for messages (never expands a large or aliased value)."""
    return _cut(_BRIEF.repr(value), 80)


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML within the size, depth and alias-expansion bounds.

    The node tree is kept for line numbers.
    """
    if not isinstance(text, str):
        raise RegisterMapError("the register map must be text", "registers")
    if len(text) > MAX_MAP_CHARS:
        raise RegisterMapError(
            f"the register map has {len(text):,} characters; at most {MAX_MAP_CHARS:,}"
            " are accepted",
            "registers",
        )
    try:
        _check_nesting(text)
        loader = _LOADER(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_nodes(node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except RegisterMapError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = str(err.problem or err)
        if "nesting depth" in problem:  # PyYAML >= 6.0.4 has a nesting limit of its own
            raise RegisterMapError(
                f"nested more than {MAX_DEPTH} levels deep", "registers", line
            ) from None
        raise RegisterMapError(f"not valid YAML: {problem}", None, line) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow
        line = text.count("\n", 0, max(0, err.position)) + 1
        raise RegisterMapError(
            f"not valid YAML: {err.reason} (character {err.character!r})", None, line
        ) from None
    except yaml.YAMLError as err:
        raise RegisterMapError(f"not valid YAML: {err}", "registers") from None
    # nesting is bounded above; this is belt and braces
    except (RecursionError, MemoryError):  # pragma: no cover
        raise RegisterMapError(
            "the register map is nested too deeply", "registers"
        ) from None
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a date out of range
        raise RegisterMapError(f"not valid YAML: {err}") from None
    return data, node


def _check_nesting(text: str) -> None:
    """Refuse deep nesting from the event stream.

    The parser is not recursive; the composer is, so this runs first.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise RegisterMapError(
                    f"nested more than {MAX_DEPTH} levels deep",
                    "registers",
                    _mark_line(event),
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _mark_line(item: yaml.Event | yaml.Node) -> int | None:
    mark = item.start_mark
    return mark.line + 1 if mark is not None else None


def _check_nodes(root: yaml.Node) -> None:
    """Count values as if aliases were expanded, without expanding them.

    Recursive aliases and duplicate keys in one mapping are refused.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in active:
            raise RegisterMapError(
                "an alias refers to itself", "registers", _mark_line(node)
            )
        active.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                _bound(total, node)
        elif isinstance(node, yaml.MappingNode):
            _check_duplicates(node)
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                _bound(total, node)
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def _bound(total: int, node: yaml.Node) -> None:
    if total > MAX_NODES:
        raise RegisterMapError(
            f"more than {MAX_NODES:,} values once aliases are expanded (an alias bomb?)",
            "registers",
            _mark_line(node),
        )


def _check_duplicates(node: yaml.MappingNode) -> None:
    first: dict[str, int | None] = {}
    for key_node, _value in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
            continue
        key = str(key_node.value)
        if key in first:
            raise RegisterMapError(
                f"'{_cut(key, 40)}' appears twice in one mapping (first on line"
                f" {first[key]}); remove one",
                key,
                _mark_line(key_node),
            )
        first[key] = _mark_line(key_node)


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

    def get(
        self, field_name: str, kind: type | tuple[type, ...], default: Any = None
    ) -> Any:
        value = self.data.get(field_name, default)
        if value is None or value is default:
            return value
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.error(
                field_name, f"expected {_kind_name(kind)}, got {_brief(value)}"
            )
        if not isinstance(value, kind):
            raise self.error(
                field_name, f"expected {_kind_name(kind)}, got {_brief(value)}"
            )
        return value

    def number(self, field_name: str, default: float | None = None) -> float | None:
        """Return a finite number (NaN and inf are refused), or ``default`` if absent."""
        value = self.get(field_name, _NUMBER)
        if value is None:
            return default
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise self.error(
                field_name, f"must be a finite number, got {_brief(value)}"
            )
        return number

    def choice(
        self, field_name: str, enum: type[Table | DataType | Order], default: Any
    ) -> Any:
        value = self.data.get(field_name)
        if value is None:
            return default
        allowed = ", ".join(member.value for member in enum)
        if not isinstance(value, str):
            raise self.error(
                field_name, f"expected one of: {allowed}; got {_brief(value)}"
            )
        try:
            return enum(value.lower())
        except ValueError:
            raise self.error(
                field_name, f"'{_cut(value, 40)}' is not one of: {allowed}"
            ) from None


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        int: "a whole number",
        float: "a number",
        str: "text",
        bool: "true or false",
    }
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in _as_tuple(kind)))


_NUMBER = (int, float)


def _definition(
    item: _Item, unit_id: int, min_interval_floor: float | None
) -> RegisterDefinition:
    presentation = _presentation(item)
    name = item.get("name", str)
    if not name or not name.strip():
        raise item.error("name", "every register needs a name")
    key = item.get("key", str) or slugify(name)
    if not key:
        raise item.error("key", "could not derive a key from the name; set key")
    if not _KEY.fullmatch(key):
        raise item.error(
            "key",
            f"'{_cut(key, 40)}' may hold only letters, digits, _ and - (no spaces or dots)",
        )
    table = item.choice("table", Table, None)
    if table is None:
        raise item.error("table", "missing; one of: holding, input, coil, discrete")
    address = item.get("address", int)
    if address is None:
        raise item.error("address", "missing register address")
    default_type = DataType.BOOL if table.is_bit else DataType.UINT16
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
            scale=item.number("scale", 1.0) or 0.0,
            offset=item.number("offset", 0.0) or 0.0,
            precision=item.get("precision", int),
            writable=item.get("writable", bool, False),
            tolerance=item.number("tolerance", 0.0) or 0.0,
            min_interval=item.number("min_interval"),
            max_interval=item.number("max_interval"),
        )
    except RegisterSpecError as err:
        raise item.error(err.field, str(err).split(": ", 2)[-1]) from err
    _check_floor(item, spec, min_interval_floor)
    lines = {str(k): line for k in item.data if (line := item.line(str(k))) is not None}
    return RegisterDefinition(
        spec=spec,
        name=name.strip(),
        unit=_opt_str(item.get("unit", (str, int, float))),
        enabled_by_default=item.get("enabled_by_default", bool, True),
        presentation=MappingProxyType(presentation) if presentation else _EMPTY,
        line=item.line(),
        field_lines=MappingProxyType(lines),
    )


def _presentation(item: _Item) -> dict[str, PresentationValue]:
    """Return the entry's fields the engine does not read, checked for shape only.

    A name of letters, digits, _ and -, and a value that is text, a finite number or
    true/false (an empty value counts as absent, as for the engine's own fields).
    """
    result: dict[str, PresentationValue] = {}
    for raw_name, value in item.data.items():
        if raw_name in ENGINE_FIELDS:
            continue
        name = str(raw_name)
        if not isinstance(raw_name, str) or not _KEY.fullmatch(raw_name):
            raise item.error(
                name,
                "a field name is text of letters, digits, _ and - (no spaces or dots)",
            )
        if value is None:
            continue
        if isinstance(value, str | bool):
            result[name] = value
        elif isinstance(value, int | float):
            item.number(name)  # refuses NaN and infinities
            result[name] = value
        else:
            raise item.error(
                name, f"expected text, a number or true/false; got {_brief(value)}"
            )
    return result


def _check_floor(item: _Item, spec: RegisterSpec, floor: float | None) -> None:
    """Per-register intervals below the caller's floor (the fastest it allows)."""
    if floor is None:
        return
    for name in ("min_interval", "max_interval"):
        value = getattr(spec, name)
        if value is not None and value < floor:
            raise item.error(
                name,
                f"{value:g} s is below the minimum interval allowed here ({floor:g} s)",
            )


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str | int | float):
        raise RegisterMapError(f"expected text, got {_brief(value)}")
    return str(value)


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
        list(items_node.value)
        if isinstance(items_node, yaml.SequenceNode)
        else [None] * len(items)
    )
    result = []
    for item, item_node in zip(items, nodes, strict=True):
        if not isinstance(item, dict):
            raise RegisterMapError(
                "each register must be a mapping of fields", None, _line(item_node)
            )
        result.append(_Item(item, item_node))
    return result


def parse_register_map(
    text: str, unit_id: int, *, min_interval_floor: float | None = None
) -> list[RegisterDefinition]:
    """Parse a YAML register map (a profile, or a bare list of registers).

    ``min_interval_floor``: the fastest interval the caller allows (the integration's
    min interval option); a register's ``min_interval``/``max_interval`` below it is an
    error. Blocking CPU work: run it in an executor.
    """
    return _definitions(*_load_yaml(text), unit_id, min_interval_floor)


def _definitions(
    data: Any,
    node: yaml.Node | None,
    unit_id: int,
    min_interval_floor: float | None = None,
) -> list[RegisterDefinition]:
    definitions: list[RegisterDefinition] = []
    items: list[_Item] = []
    seen: dict[str, tuple[int | None, str]] = {}
    for item in _register_items(data, node):
        definition = _definition(item, unit_id, min_interval_floor)
        if definition.key in seen:
            line, name = seen[definition.key]
            field_name = "key" if "key" in item.data else "name"
            why = (
                ""
                if "key" in item.data
                else f" (derived from the name '{_cut(definition.name, 40)}')"
            )
            raise item.error(
                field_name,
                f"key '{definition.key}'{why} is already used by '{_cut(name, 40)}' on line"
                f" {line}; set a different key",
            )
        seen[definition.key] = (item.line(), definition.name)
        definitions.append(definition)
        items.append(item)
    _check_overlaps(definitions, items)
    return definitions


def _check_overlaps(definitions: list[RegisterDefinition], items: list[_Item]) -> None:
    """Refuse two values that read the same addresses of one table.

    Bits of a word (``data_type: bit``) may share it with each other (not the same
    bit) and with the word.
    """
    order = sorted(
        range(len(definitions)),
        key=lambda i: (
            definitions[i].spec.table,
            definitions[i].spec.address,
            items[i].line(),
        ),
    )
    widest: dict[
        Table, int
    ] = {}  # per table: index of the value reaching furthest so far
    bits: dict[tuple[Table, int, int | None], int] = {}
    for i in order:
        spec = definitions[i].spec
        if spec.data_type is DataType.BIT:
            other = bits.setdefault((spec.table, spec.address, spec.bit), i)
        else:
            other = widest.get(spec.table, i)
            if other == i or definitions[other].spec.end <= spec.address:
                widest[spec.table] = i
                continue
            if spec.end > definitions[other].spec.end:
                widest[spec.table] = i
        if other == i:
            continue
        first, later = sorted((other, i), key=lambda j: (items[j].line() or 0, j))
        theirs = definitions[first].spec
        raise items[later].error(
            "address",
            f"{spec.table} {definitions[later].spec.address}-{definitions[later].spec.end - 1}"
            f" overlaps '{_cut(definitions[first].key, 40)}' ({theirs.address}-{theirs.end - 1},"
            f" line {items[first].line()}) on the same unit and table",
        )


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
