"""Switches: writable coils (write, read back at once, interval reset)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import RegisterSwitchEntityDescription, switch_description
from .entity import RegisterEntity, async_add_register_entities

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch per writable coil."""
    coordinator = entry.runtime_data.coordinator
    async_add_register_entities(
        entry,
        async_add_entities,
        Platform.SWITCH,
        lambda uid, unit, definition: RegisterSwitch(
            coordinator, uid, unit, definition, switch_description(definition)
        ),
    )


class RegisterSwitch(RegisterEntity, SwitchEntity):
    """A writable coil."""

    entity_description: RegisterSwitchEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the coil is on."""
        value = self.register_value
        return None if value is None else self.entity_description.value_fn(value)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Set the coil."""
        await self.coordinator.async_write(self.uid, True, self.entity_id)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Clear the coil."""
        await self.coordinator.async_write(self.uid, False, self.entity_id)
