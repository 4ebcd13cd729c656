"""Switches: writable coils (write, read back at once, interval reset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import (
    SwitchDeviceClass,
    SwitchEntity,
    SwitchEntityDescription,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .engine.register_map import RegisterDefinition
from .entity import RegisterEntity, entity_category, ha_enum

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class RegisterSwitchEntityDescription(SwitchEntityDescription):
    """A switch built from a register definition."""

    definition: RegisterDefinition


def switch_description(definition: RegisterDefinition) -> RegisterSwitchEntityDescription:
    """Switch description from a register definition."""
    return RegisterSwitchEntityDescription(
        key=definition.key,
        name=definition.name,
        definition=definition,
        device_class=ha_enum(SwitchDeviceClass, definition.device_class, definition.key),
        entity_category=entity_category(definition.entity_category, read_only=False),
        entity_registry_enabled_default=definition.enabled_by_default,
        icon=definition.icon,
    )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch per writable coil."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(
        RegisterSwitch(coordinator, uid, unit, definition, switch_description(definition))
        for uid, unit, definition in entry.runtime_data.registers(Platform.SWITCH)
    )


class RegisterSwitch(RegisterEntity, SwitchEntity):
    """A writable coil."""

    entity_description: RegisterSwitchEntityDescription

    @property
    def is_on(self) -> bool | None:
        """Whether the coil is on."""
        value = self.register_value
        return None if value is None else bool(value)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Set the coil."""
        await self.coordinator.async_write(self.uid, True, self.entity_id)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Clear the coil."""
        await self.coordinator.async_write(self.uid, False, self.entity_id)
