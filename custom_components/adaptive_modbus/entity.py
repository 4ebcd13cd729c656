"""Entity base classes: register entities per unit device, stats entities on the hub.

Entities write state only when what they show changed: the coordinator hands every
new data set to every entity, and ``_handle_coordinator_update`` compares the
entity's value and availability with what it wrote last and skips otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import math
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import CONNECTION_DEMO, DOMAIN, NAME
from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusCoordinator
from .engine.register_map import RegisterDefinition
from .engine.registers import Value
from .hub import UnitInfo

_UNSET = object()

_LOGGER = logging.getLogger(__name__)


def hub_identifier(entry_id: str) -> tuple[str, str]:
    """Device registry identifier of the connection (hub) device."""
    return (DOMAIN, f"{entry_id}_hub")


def unit_identifier(entry_id: str, unit_id: int) -> tuple[str, str]:
    """Device registry identifier of one unit's device."""
    return (DOMAIN, f"{entry_id}_{unit_id}")


def register_unique_id(entry_id: str, unit_id: int, key: str) -> str:
    """Return the unique id of a register entity: ``<entry_id>_<unit>_<key>``."""
    return f"{entry_id}_{unit_id}_{key}"


def unit_device_info(entry_id: str, unit: UnitInfo) -> DeviceInfo:
    """One HA device per unit id, reached via the connection's hub device."""
    return DeviceInfo(
        identifiers={unit_identifier(entry_id, unit.unit_id)},
        name=unit.name,
        manufacturer=unit.manufacturer,
        model=unit.model,
        serial_number=None,
        via_device=hub_identifier(entry_id),
    )


def hub_device_info(entry_id: str, title: str, connection: str) -> DeviceInfo:
    """Return the connection device that carries the diagnostic sensors."""
    return DeviceInfo(
        identifiers={hub_identifier(entry_id)},
        name=title,
        manufacturer=NAME,
        model="Demo connection"
        if connection == CONNECTION_DEMO
        else f"{connection} connection",
    )


def async_add_register_entities(
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    platform: Platform,
    make: Callable[[str, UnitInfo, RegisterDefinition], Entity],
) -> None:
    """Add an entity for each register ``platform`` shows.

    Each device's entities go with its config subentry (entries not yet migrated to
    subentries add them without).
    """
    by_subentry: dict[str | None, list[Entity]] = {}
    for uid, unit, definition in entry.runtime_data.registers(platform):
        subentry_id = unit.subentry_id if unit.subentry_id in entry.subentries else None
        by_subentry.setdefault(subentry_id, []).append(make(uid, unit, definition))
    for subentry_id, entities in by_subentry.items():
        async_add_entities(entities, config_subentry_id=subentry_id)


class ChangeOnlyEntity(CoordinatorEntity[AdaptiveModbusCoordinator]):
    """Writes state only when its shown value or availability changed."""

    _attr_has_entity_name = True
    _last_written: Any = _UNSET
    _counts_writes = True  # register entities count; the stats sensors do not

    def _shown(self) -> Any:
        """Return what the entity shows now (compared between refreshes)."""
        raise NotImplementedError

    def _token(self) -> tuple[Any, bool]:
        return (self._shown(), self.available)

    async def async_added_to_hass(self) -> None:
        """Remember what the initial state write will show."""
        await super().async_added_to_hass()
        self._last_written = self._token()

    @callback
    def async_write_ha_state(self) -> None:
        """Write state and count it for the writes-per-minute figure."""
        if self._counts_writes:
            self.coordinator.count_state_write()
        super().async_write_ha_state()

    @callback
    def _handle_coordinator_update(self) -> None:
        # HA calls every listener in one loop: an exception here would keep the
        # entities after this one from their update, so it stops here (logged once)
        try:
            token = self._token()
            if token == self._last_written:
                return
            self._last_written = token
            self.async_write_ha_state()
        except Exception:
            if not self._update_error_logged:
                self._update_error_logged = True
                _LOGGER.exception(
                    "Updating %s failed; other entities go on", self.entity_id
                )

    _update_error_logged = False


class RegisterEntity(ChangeOnlyEntity):
    """An entity showing one register of one unit."""

    def __init__(
        self,
        coordinator: AdaptiveModbusCoordinator,
        uid: str,
        unit: UnitInfo,
        definition: RegisterDefinition,
        description: EntityDescription,
    ) -> None:
        """Bind the entity to its register (``uid`` is the engine key)."""
        super().__init__(coordinator)
        self.entity_description = description
        self.uid = uid
        self.definition = definition
        entry_id = coordinator.entry_id
        self._attr_unique_id = register_unique_id(
            entry_id, unit.unit_id, definition.key
        )
        self._attr_device_info = unit_device_info(entry_id, unit)

    _non_finite_logged = False

    @property
    def register_value(self) -> Value | None:
        """The register's current value (None until read, or when not a finite number).

        A NaN or infinity (SunSpec's "not implemented", an idle inverter) shows as
        unknown for this entity alone; HA would refuse it as a state.
        """
        data = self.coordinator.data
        value = None if data is None else data.values.get(self.uid)
        if isinstance(value, float) and not math.isfinite(value):
            if not self._non_finite_logged:
                self._non_finite_logged = True
                _LOGGER.warning(
                    "%s (register %s) reads %s, which is not a number; shown as unknown",
                    self.entity_id,
                    self.uid,
                    value,
                )
            return None
        return value

    @property
    def available(self) -> bool:
        """Unavailable after a few failed cycles in a row, or before the first read."""
        data = self.coordinator.data
        return (
            super().available and data is not None and self.uid not in data.unavailable
        )

    async def async_update(self) -> None:
        """``homeassistant.update_entity``: read this register now, not when due."""
        if not self.enabled:
            return
        await self.coordinator.async_read_now((self.uid,))

    def _shown(self) -> Any:
        return self.register_value
