"""Adaptive Modbus: Modbus polling that learns how often each register needs a read."""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
import logging
from typing import Any

from homeassistant.config_entries import SOURCE_IMPORT
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.helpers.typing import ConfigType
import voluptuous as vol

from .const import CONF_CONNECTION, CONF_SEED, CONNECTION_DEMO, DEFAULT_SEED, DOMAIN
from .coordinator import (
    AdaptiveModbusConfigEntry,
    AdaptiveModbusCoordinator,
    AdaptiveModbusData,
)
from .descriptions import platform_for
from .engine.register_map import RegisterMapError
from .entity import hub_device_info, register_unique_id
from .health import HealthMonitor
from .hub import Hub, async_build_hub, entry_devices, load_units, settings_from_entry
from .optimization import async_setup_control
from .panel import async_setup_frontend
from .services import async_setup_services
from .storage import LearnedStateStore, async_remove_learned_state
from .subentries import (
    async_migrate_entry as _async_migrate_to_subentries,
    can_remove_device,
    devices_update_listener,
)
from .websocket_api import async_setup_websocket

__all__ = ["AdaptiveModbusConfigEntry", "AdaptiveModbusData"]

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONF_DEMO = "demo"
SETUP_GRACE = 1.0  # seconds on top of the request timeout(s) for the first cycle

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional(DOMAIN): vol.Schema(
            {
                vol.Optional(CONF_DEMO, default=False): cv.boolean,
                vol.Optional(CONF_SEED, default=DEFAULT_SEED): vol.Coerce(int),
            }
        )
    },
    extra=vol.ALLOW_EXTRA,
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services; YAML ``adaptive_modbus: {demo: true}`` imports the demo."""
    async_setup_websocket(hass)
    async_setup_services(hass)
    await async_setup_frontend(hass)
    conf = config.get(DOMAIN)
    if conf and conf.get(CONF_DEMO):
        hass.async_create_task(
            hass.config_entries.flow.async_init(
                DOMAIN,
                context={"source": SOURCE_IMPORT},
                data={CONF_CONNECTION: CONNECTION_DEMO, CONF_SEED: conf[CONF_SEED]},
            ),
            eager_start=True,
        )
    return True


def setup_timeout(hub: Hub) -> float:
    """How long setup may wait for the connection and the first cycle."""
    transport = hub.settings.transport
    return transport.timeout * (1 + max(0, transport.retries)) + SETUP_GRACE


async def async_setup_entry(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> bool:
    """Connect, run the first cycle (bounded), then add the entities."""
    settings = settings_from_entry(entry.data, entry.options, entry_devices(entry))
    try:
        units = await hass.async_add_executor_job(load_units, settings)
    except RegisterMapError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="bad_register_map",
            translation_placeholders={"error": str(err)},
        ) from err
    try:
        hub = await async_build_hub(entry.title, settings, units)
    except OSError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="demo_server_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    store = LearnedStateStore(hass, entry.entry_id, hub.engine)
    coordinator = AdaptiveModbusCoordinator(hass, entry, hub, store)
    data = AdaptiveModbusData(hub=hub, coordinator=coordinator, store=store)
    async_setup_control(hass, entry, data)  # audit log, optimization loop
    # teardown on every way out (unload, setup failure, not ready): stop polling,
    # save once loaded, close the connection and the demo server
    entry.async_on_unload(partial(_async_shutdown, data))
    await store.async_restore()
    _apply_registry_enabled(hass, entry, coordinator)
    await _async_first_refresh(hass, entry, coordinator, hub)

    entry.runtime_data = data
    data.loaded = True
    health = data.health = HealthMonitor(hass, entry)
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        **hub_device_info(entry.entry_id, hub.title, settings.connection),
    )

    unsub_stop: CALLBACK_TYPE | None = None

    async def _async_on_stop(_event: Event) -> None:
        """HA stops: save what was learned and close the connection."""
        nonlocal unsub_stop
        unsub_stop = None  # a fired once-listener must not be removed again
        await _async_shutdown(data)

    @callback
    def _remove_stop_listener() -> None:
        if unsub_stop is not None:
            unsub_stop()

    unsub_stop = hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _async_on_stop)
    entry.async_on_unload(_remove_stop_listener)
    entry.async_on_unload(_listen_registry_updates(hass, entry, coordinator))
    options_at_setup = dict(entry.options)

    async def _async_entry_updated(
        hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
    ) -> None:
        """Options changed: reload with the new settings (data changes reload themselves)."""
        if dict(entry.options) != options_at_setup:
            hass.config_entries.async_schedule_reload(entry.entry_id)

    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    # devices (config subentries) added, edited or removed: drop stale ones, reload
    entry.async_on_unload(entry.add_update_listener(devices_update_listener(entry)))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(health.async_start())
    return True


async def _async_first_refresh(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    coordinator: AdaptiveModbusCoordinator,
    hub: Hub,
) -> None:
    """Run the first cycle; load once anything answered, never wait without end.

    The bound (``setup_timeout``) is one silent unit's worth of timeouts plus a grace
    second. When it passes and some unit has answered, the entry loads and the cycle
    goes on in the background (entities of registers not read yet are unavailable
    until they are). While nothing has answered and units are still untried, setup
    waits one more silent unit's worth each time, so silent units at the front of the
    bus do not keep the others from loading. Nothing answered from any unit:
    ConfigEntryNotReady (HA retries in the background).
    """
    limit = setup_timeout(hub)
    per_unit = max(limit - SETUP_GRACE, 0.1)
    task = entry.async_create_background_task(
        hass, coordinator.async_config_entry_first_refresh(), f"{DOMAIN} first cycle"
    )
    done, _ = await asyncio.wait([task], timeout=limit)
    waited = limit
    for _ in hub.units:
        if done or coordinator.anything_read or not coordinator.untried_units:
            break
        done, _ = await asyncio.wait([task], timeout=per_unit)
        waited += per_unit
    if not done:
        if coordinator.anything_read:
            _LOGGER.debug(
                "%s: first cycle goes on after setup (%.1f s)", hub.title, waited
            )
            task.add_done_callback(_ignore_late_failure)
            return
        task.cancel()
        await asyncio.wait([task])
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="setup_timeout",
            translation_placeholders={"title": hub.title, "seconds": f"{waited:g}"},
        )
    try:
        task.result()
    except ConfigEntryNotReady as err:
        cause = err.__cause__ or coordinator.last_exception
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"title": hub.title, "error": str(cause or err)},
        ) from cause


def _ignore_late_failure(task: asyncio.Task[None]) -> None:
    """Retrieve the failure of a first cycle that outlived setup (the coordinator logged it)."""
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.debug("First cycle failed after setup: %s", task.exception())


def _apply_registry_enabled(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    coordinator: AdaptiveModbusCoordinator,
) -> None:
    """Take registers of disabled entities (or disabled-by-default new ones) out of the plan."""
    ent_reg = er.async_get(hass)
    for uid, (unit_id, definition) in coordinator.hub.definitions.items():
        unique_id = register_unique_id(entry.entry_id, unit_id, definition.key)
        entity_id = ent_reg.async_get_entity_id(
            platform_for(definition), DOMAIN, unique_id
        )
        registry_entry = ent_reg.async_get(entity_id) if entity_id else None
        if registry_entry is not None:
            enabled = registry_entry.disabled_by is None
        else:
            enabled = (
                definition.enabled_by_default and not entry.pref_disable_new_entities
            )
        if not enabled:
            coordinator.engine.set_enabled(uid, False)


def _listen_registry_updates(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    coordinator: AdaptiveModbusCoordinator,
) -> Any:
    """Follow the user enabling/disabling entities: their registers leave/rejoin the plan."""
    ent_reg = er.async_get(hass)
    by_unique_id = {
        register_unique_id(entry.entry_id, unit_id, definition.key): uid
        for uid, (unit_id, definition) in coordinator.hub.definitions.items()
    }

    @callback
    def _filter(event_data: er.EventEntityRegistryUpdatedData) -> bool:
        return (
            event_data["action"] == "update" and "disabled_by" in event_data["changes"]
        )

    @callback
    def _updated(event: Event[er.EventEntityRegistryUpdatedData]) -> None:
        registry_entry = ent_reg.async_get(event.data["entity_id"])
        if registry_entry is None or registry_entry.config_entry_id != entry.entry_id:
            return
        uid = by_unique_id.get(registry_entry.unique_id)
        if uid is not None:
            coordinator.async_set_enabled(uid, registry_entry.disabled_by is None)

    return hass.bus.async_listen(
        er.EVENT_ENTITY_REGISTRY_UPDATED, _updated, event_filter=_filter
    )


async def _async_shutdown(data: AdaptiveModbusData) -> None:
    """Stop polling, save the learned state once loaded, close the connection.

    Runs at unload (``entry.async_on_unload``), after a failed setup and at HA stop;
    a second call does nothing.
    """
    if data.shut_down:
        return
    data.shut_down = True
    data.store.async_cancel()
    await data.coordinator.async_stop()
    if data.loaded:
        try:
            await data.store.async_save()
        except Exception:
            _LOGGER.exception("Saving the learned polling state failed")
    await data.hub.async_close()


async def async_unload_entry(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> bool:
    """Unload platforms; the teardown registered with ``async_on_unload`` does the rest."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> None:
    """Entry deleted: forget what was learned."""
    with contextlib.suppress(Exception):
        await async_remove_learned_state(hass, entry.entry_id)


async def async_migrate_entry(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> bool:
    """Version 1 entries (devices in data) -> one config subentry per device."""
    return await _async_migrate_to_subentries(hass, entry)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow deleting a unit device only when no device subentry configures it any more."""
    return can_remove_device(entry, device)
