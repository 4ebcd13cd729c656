"""Entities of a connection's optimization control (on the connection's device).

A switch turns the automatic loop on and off, a select sets its goal, and a sensor
shows the last optimization's outcome. They change state when the audit log does
(every change of the loop, by the loop or a user, is audited).
"""

from __future__ import annotations

import threading

from homeassistant.helpers.entity import Entity

from .coordinator import AdaptiveModbusData
from .engine.audit import Actor, AuditEntry
from .entity import hub_device_info
from .optimization import OptimizerLike, async_actor, async_require_admin


class OptimizationEntity(Entity):
    """An entity of the optimization control of one connection."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(
        self, data: AdaptiveModbusData, optimizer: OptimizerLike, key: str
    ) -> None:
        """Bind the entity to the connection's loop and audit log."""
        self._data = data
        self._optimizer = optimizer
        entry_id = data.coordinator.entry_id
        self._attr_translation_key = key
        self._attr_unique_id = f"{entry_id}_hub_{key}"
        self._attr_device_info = hub_device_info(
            entry_id, data.hub.title, data.hub.settings.connection
        )

    async def async_added_to_hass(self) -> None:
        """Follow the audit log: the loop's state changes with it."""
        await super().async_added_to_hass()
        self.async_on_remove(self._data.audit.add_listener(self._audited))

    def _audited(self, _entry: AuditEntry) -> None:
        if self.hass is None:
            return
        if threading.get_ident() == self.hass.loop_thread_id:
            self.async_write_ha_state()
        else:
            self.schedule_update_ha_state()

    async def _async_actor(self) -> Actor:
        """Return who made the change this entity is asked for; admins only.

        HA lets every user who may control entities switch this entity; like the
        optimization services, a change of the loop needs an administrator.
        """
        context = self._context
        await async_require_admin(self.hass, context)
        return await async_actor(self.hass, context)

    async def _async_saved(self) -> None:
        """Save the change (and its audit entry) at once."""
        await self._data.store.async_save()
