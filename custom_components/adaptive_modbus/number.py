"""Numbers: writable holding registers (write, read back at once, interval reset)."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .engine.register_map import RegisterDefinition
from .engine.registers import DataType, RegisterSpec
from .entity import RegisterEntity, entity_category, ha_enum

PARALLEL_UPDATES = 1

# raw ranges of the integer types (floats get a wide default range)
_RAW_RANGE: dict[DataType, tuple[float, float]] = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
_FLOAT_RANGE = (-1e9, 1e9)


def value_range(spec: RegisterSpec) -> tuple[float, float]:
    """What the register can hold, in engineering units."""
    low, high = _RAW_RANGE.get(spec.data_type, _FLOAT_RANGE)
    if spec.data_type in _RAW_RANGE:
        ends = (low * spec.scale + spec.offset, high * spec.scale + spec.offset)
        return (min(ends), max(ends))
    return (low, high)


@dataclass(frozen=True, kw_only=True)
class RegisterNumberEntityDescription(NumberEntityDescription):
    """A number built from a register definition."""

    definition: RegisterDefinition


def number_description(definition: RegisterDefinition) -> RegisterNumberEntityDescription:
    """Number description from a register definition."""
    spec = definition.spec
    low, high = value_range(spec)
    step = definition.native_step
    if step is None:
        step = spec.scale if spec.data_type in _RAW_RANGE else 0.1
    return RegisterNumberEntityDescription(
        key=definition.key,
        name=definition.name,
        definition=definition,
        device_class=ha_enum(NumberDeviceClass, definition.device_class, definition.key),
        native_unit_of_measurement=definition.unit,
        native_min_value=low if definition.native_min is None else definition.native_min,
        native_max_value=high if definition.native_max is None else definition.native_max,
        native_step=step,
        mode=NumberMode.BOX,
        entity_category=entity_category(definition.entity_category, read_only=False),
        entity_registry_enabled_default=definition.enabled_by_default,
        icon=definition.icon,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a number per writable register."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        RegisterNumber(coordinator, uid, unit, definition, number_description(definition))
        for uid, unit, definition in entry.runtime_data.registers(Platform.NUMBER)
    )


class RegisterNumber(RegisterEntity, NumberEntity):
    """A writable holding register."""

    entity_description: RegisterNumberEntityDescription

    @property
    def native_value(self) -> float | None:
        """The register's value."""
        value = self.register_value
        if value is None or isinstance(value, str):
            return None
        return float(value)

    async def async_set_native_value(self, value: float) -> None:
        """Write the register; the engine reads it back at once."""
        spec = self.definition.spec
        to_write: float | int = value
        if spec.data_type in _RAW_RANGE and spec.scale == 1.0 and spec.offset == 0.0:
            to_write = round(value)
        await self.coordinator.async_write(self.uid, to_write, self.entity_id)
