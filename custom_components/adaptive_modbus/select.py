"""Select: the goal of a connection's optimization loop."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry
from .optimization import GOALS, call_context
from .optimization_entity import OptimizationEntity

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the optimization goal of the connection."""
    if (optimizer := entry.runtime_data.optimizer) is not None:
        async_add_entities(
            [OptimizationGoalSelect(entry.runtime_data, optimizer, "optimization_goal")]
        )


class OptimizationGoalSelect(OptimizationEntity, SelectEntity):
    """What the loop optimizes for: least bus load, balanced, or freshest values."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_options = list(GOALS)

    @property
    def current_option(self) -> str:
        """The goal in force."""
        return str(self._optimizer.goal)

    async def async_select_option(self, option: str) -> None:
        """Change the goal (audited)."""
        actor = await self._async_actor()
        with call_context(self._context):
            self._optimizer.set_goal(option, actor=actor)
        await self._async_saved()
