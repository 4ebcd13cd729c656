"""Devices as config subentries: migration, registry upkeep, reload on change.

A connection entry (version 2) holds one ``device`` subentry per Modbus unit. Entity
unique ids (``<entry_id>_<unit>_<key>``) and device identifiers
(``<entry_id>_<unit>``) do not mention the subentry, so adding, editing or removing
one device leaves every other device's entities, ids and learned state alone.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
import logging
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import (
    CHART_INTERVALS_KEY,
    CONF_DEVICES,
    CONF_NAME,
    CONF_SUBENTRY_ID,
    CONF_UNIT_ID,
    DOMAIN,
    ENTRY_VERSION,
    SUBENTRY_DEVICE,
)
from .engine.register_map import RegisterMapError
from .hub import UnitInfo, entry_devices, load_units, settings_from_entry

_LOGGER = logging.getLogger(__name__)


def device_title(device: Mapping[str, Any]) -> str:
    """Return a device subentry's title: its name, else its unit."""
    return str(device.get(CONF_NAME) or f"Unit {device[CONF_UNIT_ID]}")


def subentry_data(device: Mapping[str, Any]) -> dict[str, Any]:
    """Return what a device subentry stores (flow-only and hub-only keys left out)."""
    return {key: value for key, value in device.items() if key != CONF_SUBENTRY_ID}


def _unit_of(entry_id: str, identifier: tuple[str, str]) -> int | None:
    """Return the unit id of one of our unit device identifiers, None for the hub."""
    domain, value = identifier
    prefix = f"{entry_id}_"
    if domain != DOMAIN or not value.startswith(prefix):
        return None
    rest = value[len(prefix) :]
    return int(rest) if rest.isdigit() else None


def configured_units(entry: ConfigEntry) -> set[int]:
    """Return the unit ids the entry has a device for."""
    return {int(device[CONF_UNIT_ID]) for device in entry_devices(entry)}


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Version 1 (devices in ``data``) -> 2 (one subentry per device), ids unchanged."""
    if entry.version > ENTRY_VERSION:
        return False  # written by a newer version of the integration
    if entry.version == 1:
        devices = list(entry.data.get(CONF_DEVICES) or ())
        data = {key: value for key, value in entry.data.items() if key != CONF_DEVICES}
        taken = {sub.unique_id for sub in entry.subentries.values()}
        for device in devices:
            unique_id = str(device[CONF_UNIT_ID])
            if unique_id in taken:
                continue
            hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(subentry_data(device)),
                    subentry_type=SUBENTRY_DEVICE,
                    title=device_title(device),
                    unique_id=unique_id,
                ),
            )
            taken.add(unique_id)
        hass.config_entries.async_update_entry(entry, data=data, version=ENTRY_VERSION)
        _LOGGER.debug(
            "Entry %s: %d device(s) moved to subentries", entry.entry_id, len(devices)
        )
    return True


@callback
def async_remove_stale_devices(hass: HomeAssistant, entry: ConfigEntry) -> list[str]:
    """Remove unit devices (and their entities) that no subentry configures any more."""
    units = configured_units(entry)
    dev_reg = dr.async_get(hass)
    removed: list[str] = []
    for device in dr.async_entries_for_config_entry(dev_reg, entry.entry_id):
        unit_ids = {_unit_of(entry.entry_id, ident) for ident in device.identifiers}
        unit_ids.discard(None)
        if unit_ids and not unit_ids & units:
            dev_reg.async_update_device(
                device.id, remove_config_entry_id=entry.entry_id
            )
            removed.append(device.id)
    return removed


def can_remove_device(entry: ConfigEntry, device: dr.DeviceEntry) -> bool:
    """Whether the user may delete ``device``: only a unit no subentry configures."""
    units = configured_units(entry)
    unit_ids = {_unit_of(entry.entry_id, ident) for ident in device.identifiers}
    unit_ids.discard(None)
    return bool(unit_ids) and not unit_ids & units


@callback
def async_move_unit(
    hass: HomeAssistant, entry: ConfigEntry, old_unit: int, new_unit: int
) -> None:
    """Move a device's identifier and entity unique ids to its new unit id.

    Entity ids, names and customisations stay.
    """
    if old_unit == new_unit:
        return
    dev_reg = dr.async_get(hass)
    ent_reg = er.async_get(hass)
    old_ident = (DOMAIN, f"{entry.entry_id}_{old_unit}")
    device = dev_reg.async_get_device(identifiers={old_ident})
    if device is not None:
        identifiers = (device.identifiers - {old_ident}) | {
            (DOMAIN, f"{entry.entry_id}_{new_unit}")
        }
        dev_reg.async_update_device(device.id, new_identifiers=identifiers)
    old_prefix = f"{entry.entry_id}_{old_unit}_"
    for entity in er.async_entries_for_config_entry(ent_reg, entry.entry_id):
        if entity.unique_id.startswith(old_prefix):
            key = entity.unique_id[len(old_prefix) :]
            ent_reg.async_update_entity(
                entity.entity_id, new_unique_id=f"{entry.entry_id}_{new_unit}_{key}"
            )


@callback
def async_remove_stale_entities(
    hass: HomeAssistant, entry: ConfigEntry, units: list[UnitInfo]
) -> int:
    """Remove entities of configured units whose register left the map.

    That happens when a device switched to another profile or map. Returns how
    many went.
    """
    ent_reg = er.async_get(hass)
    keep = {
        f"{entry.entry_id}_{unit.unit_id}_{definition.key}"
        for unit in units
        for definition in unit.definitions
    }
    keep |= {f"{entry.entry_id}_{u.unit_id}_{CHART_INTERVALS_KEY}" for u in units}
    prefixes = tuple(f"{entry.entry_id}_{unit.unit_id}_" for unit in units)
    removed = 0
    for entity in er.async_entries_for_config_entry(ent_reg, entry.entry_id):
        if entity.unique_id.startswith(prefixes) and entity.unique_id not in keep:
            ent_reg.async_remove(entity.entity_id)
            removed += 1
    return removed


def devices_update_listener(
    entry: ConfigEntry,
) -> Callable[[HomeAssistant, ConfigEntry], Coroutine[Any, Any, None]]:
    """Drop removed units' devices and reload when devices changed.

    An update listener, for devices added, edited or removed; the learned state
    of the others is saved on unload and restored on setup.
    """
    at_setup = entry_devices(entry)

    async def _async_updated(hass: HomeAssistant, updated: ConfigEntry) -> None:
        if entry_devices(updated) == at_setup:
            return
        async_remove_stale_devices(hass, updated)
        settings = settings_from_entry(
            updated.data, updated.options, entry_devices(updated)
        )
        try:
            units = await hass.async_add_executor_job(load_units, settings)
        except RegisterMapError:
            units = []  # the reload reports the bad map; remove nothing
        async_remove_stale_entities(hass, updated, units)
        hass.config_entries.async_schedule_reload(updated.entry_id)

    return _async_updated
