"""Binary sensors: read-only coils, discrete inputs and single bits of a word."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .engine.register_map import RegisterDefinition
from .entity import RegisterEntity, entity_category, ha_enum

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class RegisterBinarySensorEntityDescription(BinarySensorEntityDescription):
    """A binary sensor built from a register definition."""

    definition: RegisterDefinition


def binary_sensor_description(
    definition: RegisterDefinition,
) -> RegisterBinarySensorEntityDescription:
    """Binary sensor description from a register definition."""
    return RegisterBinarySensorEntityDescription(
        key=definition.key,
        name=definition.name,
        definition=definition,
        device_class=ha_enum(BinarySensorDeviceClass, definition.device_class, definition.key),
        entity_category=entity_category(definition.entity_category, read_only=True),
        entity_registry_enabled_default=definition.enabled_by_default,
        icon=definition.icon,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a binary sensor per bit register."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        RegisterBinarySensor(
            coordinator, uid, unit, definition, binary_sensor_description(definition)
        )
        for uid, unit, definition in entry.runtime_data.registers(Platform.BINARY_SENSOR)
    )


class RegisterBinarySensor(RegisterEntity, BinarySensorEntity):
    """A coil, discrete input or bit."""

    entity_description: RegisterBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the bit is set."""
        value = self.register_value
        return None if value is None else bool(value)
