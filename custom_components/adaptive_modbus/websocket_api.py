"""Websocket commands for the card and the panel: views, live views, connections.

- ``adaptive_modbus/views``: one view, once; the same arguments and the same result
  as the ``get_visualization`` service (its target resolution and view functions).
- ``adaptive_modbus/subscribe``: the same arguments; answers with the view as the
  first event, then pushes the view again after poll cycles that changed something,
  at most one message per :data:`PUSH_INTERVAL` seconds (a change inside that time
  is sent when it ends, never dropped). While it lives on a device or register view
  of a unit, that unit is *viewed*: demand-driven polling shrinks its registers'
  upper interval bound (the connection's ``viewed_factor`` option) until the last
  viewer leaves. It follows its connection across reloads (an options change) and
  ends when the client unsubscribes or disconnects.
- ``adaptive_modbus/entries``: the loaded connections with their devices and register
  entities (ids and names), for the card's editor.
- ``adaptive_modbus/refresh`` (admins only): read a target's registers now.

Read-only commands are open to every logged-in user; commands that change anything
are admin-only.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later
import voluptuous as vol

from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import platform_for
from .engine.errors import EngineUsageError
from .entity import register_unique_id, unit_identifier
from .service_targets import loaded_entries
from .services import (
    ATTR_PERIOD,
    ATTR_VIEW,
    GET_SCHEMA,
    ViewTarget,
    build_view,
    resolve_target,
)

_LOGGER = logging.getLogger(__name__)

WS_VIEWS = f"{DOMAIN}/views"
WS_SUBSCRIBE = f"{DOMAIN}/subscribe"
WS_ENTRIES = f"{DOMAIN}/entries"
WS_REFRESH = f"{DOMAIN}/refresh"
PUSH_INTERVAL = 2.0  # seconds: at most one pushed view per subscription this often
VIEWED_VIEWS = ("device", "register")  # live views that make their unit "viewed"

_TARGET_ONLY = {
    key: value
    for key, value in GET_SCHEMA.schema.items()
    if str(key) not in (ATTR_VIEW, ATTR_PERIOD)
}


@callback
def async_setup_websocket(hass: HomeAssistant) -> None:
    """Register the websocket commands (from ``async_setup``)."""
    async_register_command(hass, ws_views)
    async_register_command(hass, ws_subscribe)
    async_register_command(hass, ws_entries)
    async_register_command(hass, ws_refresh)


@websocket_command({vol.Required("type"): WS_VIEWS, **GET_SCHEMA.schema})
@callback
def ws_views(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Answer with one view (as ``get_visualization`` does)."""
    target = resolve_target(hass, msg)
    connection.send_result(
        msg["id"], build_view(target, msg[ATTR_VIEW], msg[ATTR_PERIOD])
    )


@websocket_command({vol.Required("type"): WS_SUBSCRIBE, **GET_SCHEMA.schema})
@callback
def ws_subscribe(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Push a view while the subscription lives; its unit is viewed meanwhile."""
    live = LiveView(hass, connection, msg)
    view = live.async_start(resolve_target(hass, msg))
    connection.subscriptions[msg["id"]] = live.async_close
    connection.send_result(msg["id"])
    live.async_send(view)


class LiveView:
    """One subscription: pushes its view after changes, rate-limited; counts a viewer."""

    def __init__(
        self,
        hass: HomeAssistant,
        connection: ActiveConnection,
        msg: dict[str, Any],
    ) -> None:
        """Remember what to show and to whom (nothing runs before :meth:`async_start`)."""
        self.hass = hass
        self.connection = connection
        self.msg_id: int = msg["id"]
        self.args = {k: v for k, v in msg.items() if k not in ("id", "type")}
        self.view: str = msg[ATTR_VIEW]
        self.period: float = msg[ATTR_PERIOD]
        self.target: ViewTarget | None = None
        self.pushes = 0
        self._last_push = -math.inf  # loop time
        self._unsub_coordinator: CALLBACK_TYPE | None = None
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_entry: CALLBACK_TYPE | None = None
        self._release_viewer: CALLBACK_TYPE | None = None
        self._closed = False

    @callback
    def async_start(self, target: ViewTarget) -> dict[str, Any]:
        """Follow the coordinator and the entry's reloads; return the first view.

        A target the view cannot be built for raises (translated), following nothing.
        """
        entry_id = target.entry.entry_id

        @callback
        def _entry_changed(change: ConfigEntryChange, entry: ConfigEntry) -> None:
            if entry.entry_id != entry_id or change is not ConfigEntryChange.UPDATED:
                return
            if entry.state is ConfigEntryState.LOADED and self.target is None:
                self._async_reattach()
            elif entry.state is not ConfigEntryState.LOADED:
                self._async_detach()

        self._async_attach(target)
        try:
            view = build_view(target, self.view, self.period)
        except HomeAssistantError:
            self.async_close()
            raise
        self._unsub_entry = async_dispatcher_connect(
            self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, _entry_changed
        )
        return view

    @callback
    def async_close(self) -> None:
        """Unsubscribed or disconnected: stop pushing, release the viewer."""
        self._closed = True
        self._async_detach()
        if self._unsub_entry is not None:
            self._unsub_entry()
            self._unsub_entry = None

    # -- attach / detach (a reload replaces the coordinator and the engine) ---------

    @callback
    def _async_attach(self, target: ViewTarget) -> None:
        self.target = target
        coordinator = target.entry.runtime_data.coordinator
        self._unsub_coordinator = coordinator.async_add_listener(self._async_updated)
        if target.unit is not None and self.view in VIEWED_VIEWS:
            engine, unit = coordinator.engine, target.unit
            try:
                engine.set_viewed(unit, engine.viewers(unit) + 1)
            except EngineUsageError:  # a unit without registers: nothing to poll
                return
            coordinator.async_reschedule()  # registers now due sooner: wake sooner

            @callback
            def _release() -> None:
                engine.set_viewed(unit, max(0, engine.viewers(unit) - 1))
                if not coordinator.stopped:
                    coordinator.async_reschedule()

            self._release_viewer = _release

    @callback
    def _async_detach(self) -> None:
        self.target = None
        for attr in ("_unsub_coordinator", "_unsub_timer", "_release_viewer"):
            undo: CALLBACK_TYPE | None = getattr(self, attr)
            if undo is not None:
                setattr(self, attr, None)
                undo()

    @callback
    def _async_reattach(self) -> None:
        """Follow the target onto the new coordinator after the connection reloaded."""
        if self._closed:
            return
        try:
            target = resolve_target(self.hass, self.args)
        except HomeAssistantError as err:
            _LOGGER.debug("Live view %s not resumed: %s", self.msg_id, err)
            return
        self._async_attach(target)
        self._async_push()

    # -- pushing ---------------------------------------------------------------------

    def _now(self) -> float:
        return self.hass.loop.time()

    @callback
    def _async_updated(self) -> None:
        """Push after a cycle that changed something: now, or when the limit allows."""
        if self._closed:
            return
        wait = self._last_push + PUSH_INTERVAL - self._now()
        if wait <= 0:
            self._async_cancel_timer()
            self._async_push()
        elif self._unsub_timer is None:  # else: a push on its way shows this too

            @callback
            def _fire(_now: Any) -> None:
                self._unsub_timer = None
                self._async_push()

            self._unsub_timer = async_call_later(self.hass, wait, _fire)

    @callback
    def _async_cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    @callback
    def _async_push(self) -> None:
        if self.target is None or self._closed:
            return
        try:
            view = build_view(self.target, self.view, self.period)
        except HomeAssistantError as err:  # e.g. the unit left the connection
            _LOGGER.debug("Live view %s not sent: %s", self.msg_id, err)
            return
        self.async_send(view)

    @callback
    def async_send(self, view: dict[str, Any]) -> None:
        """Send a view to the subscriber (counts against the rate limit)."""
        self._last_push = self._now()
        self.pushes += 1
        self.connection.send_message(event_message(self.msg_id, view))


@websocket_command({vol.Required("type"): WS_ENTRIES})
@callback
def ws_entries(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """List the loaded connections, their devices and register entities."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    connection.send_result(
        msg["id"],
        {"entries": [_entry_info(e, devices, entities) for e in loaded_entries(hass)]},
    )


def _entry_info(
    entry: AdaptiveModbusConfigEntry,
    devices: dr.DeviceRegistry,
    entities: er.EntityRegistry,
) -> dict[str, Any]:
    hub = entry.runtime_data.hub
    units = []
    for unit in hub.units:
        device = devices.async_get_device(
            identifiers={unit_identifier(entry.entry_id, unit.unit_id)}
        )
        registers = []
        for definition in unit.definitions:
            entity_id = entities.async_get_entity_id(
                platform_for(definition),
                DOMAIN,
                register_unique_id(entry.entry_id, unit.unit_id, definition.key),
            )
            registers.append(
                {
                    "uid": definition.spec.uid,
                    "key": definition.key,
                    "name": definition.name,
                    "entity_id": entity_id,
                }
            )
        units.append(
            {
                "device_id": None if device is None else device.id,
                "unit_id": unit.unit_id,
                "name": (device.name_by_user or device.name) if device else unit.name,
                "manufacturer": unit.manufacturer,
                "model": unit.model,
                "registers": registers,
            }
        )
    return {
        "config_entry_id": entry.entry_id,
        "title": entry.title,
        "connection": hub.settings.connection,
        "devices": units,
    }


@websocket_command({vol.Required("type"): WS_REFRESH, **_TARGET_ONLY})
@require_admin
@async_response
async def ws_refresh(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Read the target's registers now (a register, a device, or the connection)."""
    target = resolve_target(hass, {**msg, ATTR_VIEW: "refresh"})
    coordinator = target.entry.runtime_data.coordinator
    registers = coordinator.engine.snapshot().registers
    if target.uid is not None:
        uids = [target.uid]
    else:
        uids = [
            uid
            for uid, reg in registers.items()
            if reg.enabled and (target.unit is None or reg.unit_id == target.unit)
        ]
    await coordinator.async_read_now(uids)
    connection.send_result(msg["id"], {"requested": len(uids)})
