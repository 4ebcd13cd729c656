"""Numbers: writable holding registers (write, read back at once, interval reset)."""

from __future__ import annotations

from homeassistant.components.number import NumberEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import (
    INTEGER_RANGES,
    RegisterNumberEntityDescription,
    number_description,
)
from .entity import RegisterEntity, async_add_register_entities

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a number per writable register."""
    coordinator = entry.runtime_data.coordinator
    async_add_register_entities(
        entry,
        async_add_entities,
        Platform.NUMBER,
        lambda uid, unit, definition: RegisterNumber(
            coordinator, uid, unit, definition, number_description(definition)
        ),
    )


class RegisterNumber(RegisterEntity, NumberEntity):
    """A writable holding register."""

    entity_description: RegisterNumberEntityDescription

    @property
    def native_value(self) -> float | None:
        """The register's value."""
        value = self.register_value
        return None if value is None else self.entity_description.value_fn(value)

    async def async_set_native_value(self, value: float) -> None:
        """Write the register; the engine reads it back at once."""
        spec = self.definition.spec
        to_write: float | int = value
        if (
            spec.data_type in INTEGER_RANGES
            and spec.scale == 1.0
            and spec.offset == 0.0
        ):
            to_write = round(value)
        await self.coordinator.async_write(self.uid, to_write, self.entity_id)
