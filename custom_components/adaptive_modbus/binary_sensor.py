"""Binary sensors: read-only coils, discrete inputs and single bits of a word."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import (
    RegisterBinarySensorEntityDescription,
    binary_sensor_description,
)
from .entity import RegisterEntity, async_add_register_entities
from .health_entities import async_add_problem_sensors

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a binary sensor per bit register."""
    coordinator = entry.runtime_data.coordinator
    async_add_register_entities(
        entry,
        async_add_entities,
        Platform.BINARY_SENSOR,
        lambda uid, unit, definition: RegisterBinarySensor(
            coordinator, uid, unit, definition, binary_sensor_description(definition)
        ),
    )
    async_add_problem_sensors(entry, async_add_entities)  # device health


class RegisterBinarySensor(RegisterEntity, BinarySensorEntity):
    """A coil, discrete input or bit."""

    entity_description: RegisterBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the bit is set."""
        value = self.register_value
        return None if value is None else self.entity_description.value_fn(value)
