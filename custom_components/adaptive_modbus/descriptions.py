"""Entity descriptions from register maps.

The one place a map's presentation fields get their Home Assistant meaning.

The engine parses a map into :class:`RegisterDefinition` objects and keeps every field
it does not read (``device_class``, ``state_class``, ``entity_category``, ``icon``,
``min``, ``max``, ``step``, ``translation_key``) as an opaque ``presentation`` mapping
with the line of each field. Here those fields are checked against what HA accepts
for the register's platform and turned into frozen entity descriptions with a value
function each (as core ``peblar`` does).

Two ways to check:

- :func:`check_presentation` (the config flow) refuses a map at the first problem,
  a :class:`RegisterMapError` naming the field and line: an unknown field, a device
  class the platform does not know, a unit or state class HA does not accept with
  that device class, ``min`` above ``max``, a translation key in a custom map.
- the ``*_description`` builders (setup) never fail an entity: a value HA cannot
  use is logged with its field and line and left out, so a map stored by an older
  version keeps working.

Shipped profiles name their entities by ``translation_key`` (strings.json
``entity.<platform>.<key>.name``); custom maps by their ``name`` field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
import logging
import re
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntityDescription,
)
from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.components.number.const import DEVICE_CLASS_UNITS as NUMBER_UNITS
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.sensor.const import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS as SENSOR_UNITS,
)
from homeassistant.components.switch import SwitchDeviceClass, SwitchEntityDescription
from homeassistant.const import EntityCategory, Platform
from homeassistant.helpers.typing import UNDEFINED, StateType, UndefinedType

from .engine.register_map import ENGINE_FIELDS, RegisterDefinition, RegisterMapError
from .engine.registers import DataType, RegisterSpec, Table, Value

_LOGGER = logging.getLogger(__name__)

PRESENTATION_FIELDS = frozenset(
    {
        "device_class", "state_class", "entity_category", "icon", "min", "max", "step",
        "translation_key",
    }
)  # fmt: skip
"""The presentation fields this integration reads; any other non-engine field is an error."""

_TEXT_FIELDS = (
    "device_class",
    "state_class",
    "entity_category",
    "icon",
    "translation_key",
)
_NUMBER_FIELDS = ("min", "max", "step")
_TRANSLATION_KEY = re.compile(r"[a-z0-9_]+")
_ICON = re.compile(r"[a-z0-9_-]+:[a-z0-9_-]+")

_DEVICE_CLASSES: dict[Platform, type[StrEnum]] = {
    Platform.SENSOR: SensorDeviceClass,
    Platform.BINARY_SENSOR: BinarySensorDeviceClass,
    Platform.NUMBER: NumberDeviceClass,
    Platform.SWITCH: SwitchDeviceClass,
}
# sensor classes whose state is not a number (a register gives a number or text)
_NOT_NUMERIC = frozenset(
    {SensorDeviceClass.TIMESTAMP, SensorDeviceClass.DATE, SensorDeviceClass.ENUM}
)

# raw ranges of the integer types (floats get a wide default range)
INTEGER_RANGES: dict[DataType, tuple[float, float]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
_FLOAT_RANGE = (-1e9, 1e9)


def platform_for(definition: RegisterDefinition) -> Platform:
    """Which HA platform shows a register."""
    spec = definition.spec
    if spec.data_type in (DataType.BOOL, DataType.BIT):
        if spec.table is Table.COIL and spec.writable:
            return Platform.SWITCH
        return Platform.BINARY_SENSOR
    if spec.writable and spec.is_numeric:
        return Platform.NUMBER
    return Platform.SENSOR


def value_range(spec: RegisterSpec) -> tuple[float, float]:
    """Return what a register can hold, in engineering units."""
    low, high = INTEGER_RANGES.get(spec.data_type, _FLOAT_RANGE)
    if spec.data_type in INTEGER_RANGES:
        ends = (low * spec.scale + spec.offset, high * spec.scale + spec.offset)
        return (min(ends), max(ends))
    return (low, high)


# -- checking the presentation fields ------------------------------------------------


@dataclass(slots=True)
class _Presentation:
    """A register's presentation fields with their HA meaning, and what was wrong."""

    definition: RegisterDefinition
    platform: Platform
    problems: list[RegisterMapError] = field(default_factory=list)
    device_class: str | None = None
    state_class: SensorStateClass | None = None
    entity_category: EntityCategory | None = None
    icon: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    translation_key: str | None = None

    def problem(self, field_name: str, message: str) -> None:
        self.problems.append(self.definition.error(field_name, message))


def _allowed_fields() -> str:
    return ", ".join(sorted(ENGINE_FIELDS | PRESENTATION_FIELDS))


def _resolve(
    definition: RegisterDefinition, *, custom: bool, strict: bool
) -> _Presentation:
    """Read and check ``definition.presentation``.

    Every problem is recorded (field and line) and its value left out. ``strict``
    adds the checks HA itself would only warn about at runtime (units and state
    classes per device class, icon format).
    """
    platform = platform_for(definition)
    shown = _Presentation(definition, platform)
    fields = definition.presentation
    for name in sorted(set(fields) - PRESENTATION_FIELDS):
        shown.problem(name, f"unknown field; allowed: {_allowed_fields()}")
    text = {name: _text(shown, fields, name) for name in _TEXT_FIELDS}
    numbers = {name: _number(shown, fields, name) for name in _NUMBER_FIELDS}
    _device_and_state_class(
        shown, text["device_class"], text["state_class"], strict=strict
    )
    category = text["entity_category"]
    if category is not None:
        if category not in (EntityCategory.DIAGNOSTIC, EntityCategory.CONFIG):
            shown.problem(
                "entity_category", f"'{category}' is not one of: diagnostic, config"
            )
        elif category == EntityCategory.CONFIG and platform not in (
            Platform.NUMBER,
            Platform.SWITCH,
        ):
            shown.problem("entity_category", "config is only for writable registers")
        else:
            shown.entity_category = EntityCategory(category)
    icon = text["icon"]
    if icon is not None and strict and not _ICON.fullmatch(icon):
        shown.problem("icon", f"'{icon}' is not an icon name like mdi:flash")
    else:
        shown.icon = icon
    _range(shown, numbers["min"], numbers["max"], numbers["step"])
    key = text["translation_key"]
    if key is not None:
        if custom:
            shown.problem(
                "translation_key",
                "only shipped profiles have translation keys; use name",
            )
        elif not _TRANSLATION_KEY.fullmatch(key):
            shown.problem("translation_key", "may hold only a-z, 0-9 and _")
        else:
            shown.translation_key = key
    return shown


def _text(shown: _Presentation, fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or isinstance(value, str):
        return value
    shown.problem(name, f"expected text, got {value!r}")
    return None


def _number(shown: _Presentation, fields: Mapping[str, Any], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown.problem(name, f"expected a number, got {value!r}")
        return None
    return float(value)


def _device_and_state_class(
    shown: _Presentation,
    device_class: str | None,
    state_class: str | None,
    *,
    strict: bool,
) -> None:
    definition, platform = shown.definition, shown.platform
    is_text = definition.spec.data_type is DataType.STRING
    kind = _DEVICE_CLASSES[platform]
    sensor_class: SensorDeviceClass | None = None
    if device_class is not None:
        if is_text:
            shown.problem("device_class", "a text register has no device class")
        elif device_class not in {member.value for member in kind}:
            shown.problem(
                "device_class",
                f"'{device_class}' is not a device class of a {platform.value}",
            )
        elif strict and platform is Platform.SENSOR and device_class in _NOT_NUMERIC:
            shown.problem(
                "device_class", f"'{device_class}' needs a date or a list of options"
            )
        elif strict and not _unit_fits(platform, device_class, definition.unit):
            shown.problem(
                "unit" if definition.unit is not None else "device_class",
                f"unit {definition.unit!r} does not fit device class '{device_class}'",
            )
        else:
            shown.device_class = device_class
            if platform is Platform.SENSOR:
                sensor_class = SensorDeviceClass(device_class)
    if state_class is None:
        return
    if platform is not Platform.SENSOR or is_text:
        shown.problem(
            "state_class", "only read-only numeric registers have a state class"
        )
    elif state_class not in {member.value for member in SensorStateClass}:
        allowed = ", ".join(member.value for member in SensorStateClass)
        shown.problem("state_class", f"'{state_class}' is not one of: {allowed}")
    elif (
        strict
        and sensor_class is not None
        and state_class
        not in DEVICE_CLASS_STATE_CLASSES.get(sensor_class, set(SensorStateClass))
    ):
        shown.problem(
            "state_class",
            f"'{state_class}' does not fit device class '{sensor_class.value}'",
        )
    else:
        shown.state_class = SensorStateClass(state_class)


def _unit_fits(platform: Platform, device_class: str, unit: str | None) -> bool:
    units: set[Any] | None
    if platform is Platform.SENSOR:
        units = SENSOR_UNITS.get(SensorDeviceClass(device_class))
    elif platform is Platform.NUMBER:
        units = NUMBER_UNITS.get(NumberDeviceClass(device_class))
    else:
        return True
    return not units or unit in units


def _range(
    shown: _Presentation,
    minimum: float | None,
    maximum: float | None,
    step: float | None,
) -> None:
    if minimum is not None and maximum is not None and minimum > maximum:
        shown.problem("max", f"max {maximum:g} is below min {minimum:g}")
    else:
        shown.minimum, shown.maximum = minimum, maximum
    if step is not None and step <= 0:
        shown.problem("step", f"must be a positive number, got {step:g}")
    else:
        shown.step = step


def check_presentation(
    definitions: Iterable[RegisterDefinition], *, custom: bool
) -> None:
    """Refuse a map whose presentation fields HA cannot use.

    The first problem (in map order) is raised as a :class:`RegisterMapError` naming
    field and line. ``custom``: a user's map (no translation keys).
    """
    for definition in definitions:
        problems = _resolve(definition, custom=custom, strict=True).problems
        if problems:
            raise min(problems, key=lambda err: err.line or 0)


def _lenient(definition: RegisterDefinition) -> _Presentation:
    """At setup: every problem is logged and its field left out; nothing fails."""
    shown = _resolve(definition, custom=False, strict=False)
    for problem in shown.problems:
        _LOGGER.warning("Register %s: %s; left out", definition.key, problem)
    return shown


# -- descriptions --------------------------------------------------------------------


def _names(definition: RegisterDefinition, shown: _Presentation) -> dict[str, Any]:
    """Name or translation key, category, default enablement and icon: all platforms."""
    name: str | UndefinedType = (
        definition.name if shown.translation_key is None else UNDEFINED
    )
    return {
        "key": definition.key,
        "name": name,
        "translation_key": shown.translation_key,
        "entity_category": shown.entity_category,
        "entity_registry_enabled_default": definition.enabled_by_default,
        "icon": shown.icon,
    }


def _number_state(value: Value) -> StateType:
    return (
        value
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None
    )


@dataclass(frozen=True, kw_only=True)
class RegisterSensorEntityDescription(SensorEntityDescription):
    """A read-only register shown as a sensor."""

    value_fn: Callable[[Value], StateType]


@dataclass(frozen=True, kw_only=True)
class RegisterBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A read-only bit (coil, discrete input or bit of a word) as a binary sensor."""

    value_fn: Callable[[Value], bool]


@dataclass(frozen=True, kw_only=True)
class RegisterNumberEntityDescription(NumberEntityDescription):
    """A writable numeric holding register as a number."""

    value_fn: Callable[[Value], float | None]


@dataclass(frozen=True, kw_only=True)
class RegisterSwitchEntityDescription(SwitchEntityDescription):
    """A writable coil as a switch."""

    value_fn: Callable[[Value], bool]


def sensor_description(
    definition: RegisterDefinition,
) -> RegisterSensorEntityDescription:
    """Sensor description of a read-only register (text registers show as text)."""
    shown = _lenient(definition)
    spec = definition.spec
    if spec.data_type is DataType.STRING:
        return RegisterSensorEntityDescription(
            **_names(definition, shown), value_fn=str
        )
    return RegisterSensorEntityDescription(
        **_names(definition, shown),
        device_class=SensorDeviceClass(shown.device_class)
        if shown.device_class
        else None,
        state_class=shown.state_class,
        native_unit_of_measurement=definition.unit,
        suggested_display_precision=spec.precision,
        value_fn=_number_state,
    )


def binary_sensor_description(
    definition: RegisterDefinition,
) -> RegisterBinarySensorEntityDescription:
    """Binary sensor description of a read-only bit."""
    shown = _lenient(definition)
    device_class = shown.device_class
    return RegisterBinarySensorEntityDescription(
        **_names(definition, shown),
        device_class=BinarySensorDeviceClass(device_class) if device_class else None,
        value_fn=bool,
    )


def _float_state(value: Value) -> float | None:
    return None if isinstance(value, str) else float(value)


def number_description(
    definition: RegisterDefinition,
) -> RegisterNumberEntityDescription:
    """Describe a writable register as a number entity.

    The map's min/max/step, else what the data type holds and a step of one raw
    count (never negative).
    """
    shown = _lenient(definition)
    spec = definition.spec
    low, high = value_range(spec)
    step = shown.step
    if step is None:
        step = abs(spec.scale) if spec.data_type in INTEGER_RANGES else 0.1
    return RegisterNumberEntityDescription(
        **_names(definition, shown),
        device_class=NumberDeviceClass(shown.device_class)
        if shown.device_class
        else None,
        native_unit_of_measurement=definition.unit,
        native_min_value=low if shown.minimum is None else shown.minimum,
        native_max_value=high if shown.maximum is None else shown.maximum,
        native_step=step,
        mode=NumberMode.BOX,
        value_fn=_float_state,
    )


def switch_description(
    definition: RegisterDefinition,
) -> RegisterSwitchEntityDescription:
    """Switch description of a writable coil."""
    shown = _lenient(definition)
    device_class = shown.device_class
    return RegisterSwitchEntityDescription(
        **_names(definition, shown),
        device_class=SwitchDeviceClass(device_class) if device_class else None,
        value_fn=bool,
    )
