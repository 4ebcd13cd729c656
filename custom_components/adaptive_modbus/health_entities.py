"""Health entities of each device: the ``problem`` binary sensor.

The problem sensor is on while its device does not answer or has an open repair
issue (see :mod:`.health`); its ``problems`` attribute names what is wrong. It stays
available when the connection is down: that is when it matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusCoordinator
from .entity import ChangeOnlyEntity, unit_device_info
from .health import HealthMonitor
from .hub import UnitInfo

PROBLEM_DESCRIPTION = BinarySensorEntityDescription(
    key="problem",
    translation_key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)


def async_add_unit_entities(
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities: Iterable[tuple[UnitInfo, Entity]],
) -> None:
    """Add per-device entities, each with its device's config subentry."""
    by_subentry: dict[str | None, list[Entity]] = {}
    for unit, entity in entities:
        subentry_id = unit.subentry_id if unit.subentry_id in entry.subentries else None
        by_subentry.setdefault(subentry_id, []).append(entity)
    for subentry_id, group in by_subentry.items():
        async_add_entities(group, config_subentry_id=subentry_id)


def async_add_problem_sensors(
    entry: AdaptiveModbusConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a problem binary sensor per device."""
    data = entry.runtime_data
    if data.health is None:
        return
    health = data.health
    async_add_unit_entities(
        entry,
        async_add_entities,
        (
            (unit, ProblemBinarySensor(data.coordinator, health, unit))
            for unit in data.hub.units
        ),
    )


class ProblemBinarySensor(ChangeOnlyEntity, BinarySensorEntity):
    """On while the device does not answer or has an open repair issue."""

    _counts_writes = False
    entity_description = PROBLEM_DESCRIPTION

    def __init__(
        self,
        coordinator: AdaptiveModbusCoordinator,
        health: HealthMonitor,
        unit: UnitInfo,
    ) -> None:
        """Bind the sensor to one unit's device."""
        super().__init__(coordinator)
        self.health = health
        self.unit_id = unit.unit_id
        entry_id = coordinator.entry_id
        self._attr_unique_id = f"{entry_id}_{unit.unit_id}_problem"
        self._attr_device_info = unit_device_info(entry_id, unit)

    @property
    def available(self) -> bool:
        """Always available: a device that stopped answering is the problem shown."""
        return True

    @property
    def is_on(self) -> bool:
        """Whether anything is wrong with the device."""
        return bool(self.health.problems(self.unit_id))

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """What is wrong (``not_answering``, ``block_limit``, ``register_refused``)."""
        return {"problems": self.health.problems(self.unit_id)}

    def _shown(self) -> Any:
        return tuple(self.health.problems(self.unit_id))

    async def async_added_to_hass(self) -> None:
        """Follow the health monitor as well as the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.health.async_add_listener(self._handle_coordinator_update)
        )
