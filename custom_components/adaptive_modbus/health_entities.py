"""Health entities: a ``problem`` binary sensor per device, health sensors.

The problem sensor is on while its device does not answer, has an open repair
issue (see :mod:`.health`) or a poor health score; its ``problems`` attribute names
what is wrong. The health sensors (one per device, one on the connection) show the
analytics' score 0-100 with the factors that cost points and the most urgent
remediation. Both stay available when the connection is down: that is when they
matter. They follow every cycle through the health monitor.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, Platform
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusCoordinator
from .engine.analytics import CONNECTION, HealthScore
from .engine.analytics.health import Scope
from .entity import ChangeOnlyEntity, hub_device_info, unit_device_info
from .health import HealthMonitor
from .hub import UnitInfo

PROBLEM_DESCRIPTION = BinarySensorEntityDescription(
    key="problem",
    translation_key="problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
    entity_category=EntityCategory.DIAGNOSTIC,
)


HEALTH_DESCRIPTION = SensorEntityDescription(
    key="health",
    translation_key="health",
    entity_category=EntityCategory.DIAGNOSTIC,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
)
# the connection's own score: on the hub device, which the demo and a one-device
# entry name like their device, so it needs a name of its own ("Connection health")
CONNECTION_HEALTH_DESCRIPTION = replace(
    HEALTH_DESCRIPTION, key="connection_health", translation_key="connection_health"
)


def _free(
    entry: AdaptiveModbusConfigEntry, unit: UnitInfo, platform: Platform, key: str
) -> bool:
    """Whether no register of ``unit`` on ``platform`` has ``key`` (same unique id)."""
    return not any(
        u.unit_id == unit.unit_id and definition.key == key
        for _uid, u, definition in entry.runtime_data.registers(platform)
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
            if _free(entry, unit, Platform.BINARY_SENSOR, PROBLEM_DESCRIPTION.key)
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


def async_add_health_sensors(
    entry: AdaptiveModbusConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add a health sensor per device and one for the connection."""
    data = entry.runtime_data
    if data.health is None:
        return
    health = data.health
    coordinator = data.coordinator
    async_add_unit_entities(
        entry,
        async_add_entities,
        (
            (unit, HealthSensor(coordinator, health, unit.unit_id, unit=unit))
            for unit in data.hub.units
            if _free(entry, unit, Platform.SENSOR, HEALTH_DESCRIPTION.key)
        ),
    )
    async_add_entities([HealthSensor(coordinator, health, CONNECTION)])


class HealthSensor(ChangeOnlyEntity, SensorEntity):
    """Health score 0-100 of a device or the connection, with its reasons."""

    _counts_writes = False
    entity_description = HEALTH_DESCRIPTION

    def __init__(
        self,
        coordinator: AdaptiveModbusCoordinator,
        health: HealthMonitor,
        scope: Scope,
        *,
        unit: UnitInfo | None = None,
    ) -> None:
        """Bind the sensor to a unit's device, or to the connection (hub) device."""
        super().__init__(coordinator)
        self.health = health
        self.scope = scope
        entry_id = coordinator.entry_id
        if unit is not None:
            self._attr_unique_id = f"{entry_id}_{unit.unit_id}_health"
            self._attr_device_info = unit_device_info(entry_id, unit)
        else:
            self._attr_unique_id = f"{entry_id}_hub_health"
            self.entity_description = CONNECTION_HEALTH_DESCRIPTION
            self._attr_device_info = hub_device_info(
                entry_id, coordinator.hub.title, coordinator.hub.settings.connection
            )

    @property
    def _unit_id(self) -> int | None:
        return None if self.scope == CONNECTION else int(self.scope)

    def _score(self) -> HealthScore | None:
        return self.coordinator.analytics.health_score(self.scope)

    @property
    def available(self) -> bool:
        """Available once scored, also while the device or connection is down."""
        return self._score() is not None

    @property
    def native_value(self) -> int | None:
        """The score: 100 is healthy."""
        score = self._score()
        return None if score is None else score.score

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Status, the factors that cost points, and the most urgent remediation."""
        score = self._score()
        if score is None:
            return {}
        remedies = self.health.remedies(self._unit_id)
        top = remedies[0] if remedies else None
        return {
            "status": score.status,
            "factors": [
                {
                    "key": f.key,
                    "penalty": round(f.penalty, 1),
                    "explanation": f.explanation,
                }
                for f in score.problems
            ],
            "remediation": None if top is None else top.message,
            "remediation_key": None if top is None else top.key,
        }

    def _shown(self) -> Any:
        score = self._score()
        if score is None:
            return None
        remedies = self.health.remedies(self._unit_id)
        return (
            score.score,
            tuple(f.key for f in score.problems),
            remedies[0].key if remedies else None,
        )

    async def async_added_to_hass(self) -> None:
        """Follow the health monitor (every cycle) as well as the coordinator."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.health.async_add_listener(self._handle_coordinator_update)
        )
