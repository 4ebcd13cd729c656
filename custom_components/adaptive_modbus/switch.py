"""Switches: writable coils (read back at once), automatic optimization on/off."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import RegisterSwitchEntityDescription, switch_description
from .entity import RegisterEntity, async_add_register_entities
from .optimization import call_context
from .optimization_entity import OptimizationEntity

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch per writable coil, and the optimization switch."""
    coordinator = entry.runtime_data.coordinator
    async_add_register_entities(
        entry,
        async_add_entities,
        Platform.SWITCH,
        lambda uid, unit, definition: RegisterSwitch(
            coordinator, uid, unit, definition, switch_description(definition)
        ),
    )
    if (optimizer := entry.runtime_data.optimizer) is not None:
        async_add_entities(
            [
                AutomaticOptimizationSwitch(
                    entry.runtime_data, optimizer, "automatic_optimization"
                )
            ]
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


class AutomaticOptimizationSwitch(OptimizationEntity, SwitchEntity):
    """Turns a connection's automatic optimization loop on and off."""

    _attr_entity_category = EntityCategory.CONFIG

    @property
    def is_on(self) -> bool:
        """Whether the loop tunes the connection on its own."""
        return bool(self._optimizer.enabled)

    async def _async_set(self, enabled: bool) -> None:
        actor = await self._async_actor()
        with call_context(self._context):
            self._optimizer.set_enabled(enabled, actor=actor)
        await self._async_saved()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Let the loop run."""
        await self._async_set(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Stop the loop (changes in force stay)."""
        await self._async_set(False)
