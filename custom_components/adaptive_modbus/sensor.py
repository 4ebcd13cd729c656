"""Sensors: read-only registers, and the connection's diagnostic figures."""

from __future__ import annotations

from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, Platform, UnitOfTime
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .coordinator import (
    STATE_WRITES_KEY,
    AdaptiveModbusConfigEntry,
    AdaptiveModbusCoordinator,
)
from .descriptions import RegisterSensorEntityDescription, sensor_description
from .entity import (
    ChangeOnlyEntity,
    RegisterEntity,
    async_add_register_entities,
    hub_device_info,
)
from .optimization import OUTCOMES, last_optimization
from .optimization_entity import OptimizationEntity

PARALLEL_UPDATES = 0

# how long a connection figure may lag before it is written again (limits state writes)
STATS_WRITE_INTERVAL = 60.0


# a user looks at requests per minute and the saving against fixed polling; the
# other connection figures are there for troubleshooting, disabled by default
STAT_DESCRIPTIONS: tuple[SensorEntityDescription, ...] = (
    SensorEntityDescription(
        key="requests_per_minute",
        translation_key="requests_per_minute",
        native_unit_of_measurement="req/min",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key="bus_utilisation",
        translation_key="bus_utilisation",
        entity_registry_enabled_default=False,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
    ),
    SensorEntityDescription(
        key="mean_latency",
        translation_key="mean_latency",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key="p95_latency",
        translation_key="p95_latency",
        entity_registry_enabled_default=False,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key="error_rate",
        translation_key="error_rate",
        entity_registry_enabled_default=False,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key="registers_per_request",
        translation_key="registers_per_request",
        entity_registry_enabled_default=False,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key="saving_vs_fixed",
        translation_key="saving_vs_fixed",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
    SensorEntityDescription(
        key=STATE_WRITES_KEY,
        translation_key=STATE_WRITES_KEY,
        entity_registry_enabled_default=False,
        native_unit_of_measurement="writes/min",
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add register sensors and connection diagnostic sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_register_entities(
        entry,
        async_add_entities,
        Platform.SENSOR,
        lambda uid, unit, definition: RegisterSensor(
            coordinator, uid, unit, definition, sensor_description(definition)
        ),
    )
    async_add_entities(
        ConnectionStatSensor(
            coordinator, description, hub_device_title=coordinator.hub.title
        )
        for description in STAT_DESCRIPTIONS
    )
    if (optimizer := entry.runtime_data.optimizer) is not None:
        async_add_entities(
            [LastOptimizationSensor(entry.runtime_data, optimizer, "last_optimization")]
        )


class RegisterSensor(RegisterEntity, SensorEntity):
    """A read-only register."""

    entity_description: RegisterSensorEntityDescription

    @property
    def native_value(self) -> StateType:
        """The register's value (a number, or text for a text register)."""
        value = self.register_value
        return None if value is None else self.entity_description.value_fn(value)


class ConnectionStatSensor(ChangeOnlyEntity, SensorEntity):
    """One figure of the connection's statistics (requests/min, latency, ...)."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _counts_writes = False

    def __init__(
        self,
        coordinator: AdaptiveModbusCoordinator,
        description: SensorEntityDescription,
        *,
        hub_device_title: str,
    ) -> None:
        """Bind the figure to the hub device."""
        super().__init__(coordinator)
        self.entity_description = description
        entry_id = coordinator.entry_id
        self._attr_unique_id = f"{entry_id}_hub_{description.key}"
        self._attr_device_info = hub_device_info(
            entry_id, hub_device_title, coordinator.hub.settings.connection
        )
        self._written_at: float | None = None

    @property
    def native_value(self) -> float | None:
        """The current figure."""
        data = self.coordinator.data
        return None if data is None else data.stats.get(self.entity_description.key)

    def _shown(self) -> Any:
        return self.native_value

    @callback
    def _handle_coordinator_update(self) -> None:
        # rates move a little on every cycle; write at most once a minute
        now = self.coordinator.clock()
        if (
            self._written_at is not None
            and now - self._written_at < STATS_WRITE_INTERVAL
            and self.available == self._last_written[1]
        ):
            return
        before = self._last_written
        super()._handle_coordinator_update()
        if self._last_written is not before:
            self._written_at = now

    async def async_added_to_hass(self) -> None:
        """Start the write throttle at the initial write."""
        await super().async_added_to_hass()
        self._written_at = self.coordinator.clock()


class LastOptimizationSensor(OptimizationEntity, SensorEntity):
    """The outcome of the last optimization; what it changed and measured as attributes."""

    _attr_device_class = SensorDeviceClass.ENUM
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_options = list(OUTCOMES)

    @property
    def native_value(self) -> str | None:
        """The outcome: evaluating, kept, rolled back, ..."""
        entry = last_optimization(self._data.audit)
        return None if entry is None else entry.outcome

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """What changed, when, by whom, and the predicted and measured effect."""
        entry = last_optimization(self._data.audit)
        if entry is None:
            return None
        measured = entry.measured if isinstance(entry.measured, dict) else {}
        return {
            "audit_id": entry.id,
            "at": dt_util.utc_from_timestamp(entry.at).isoformat(),
            "action": entry.action,
            "target": entry.target,
            "parameter": entry.extra.get("parameter"),
            "before": entry.before,
            "after": entry.after,
            "predicted": entry.predicted,
            "measured": entry.measured,
            "measured_saving": measured.get("gain", measured.get("saving")),
            "by": "loop" if not entry.actor.is_user else entry.actor.name,
        }
