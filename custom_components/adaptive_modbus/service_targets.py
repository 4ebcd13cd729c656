"""Resolve what a service call names: a loaded connection, a unit's device, an entity.

Every action module of the integration (visualization, charts, analytics,
optimization) and the websocket API resolve their targets here, so the same words
reach the user whichever action they call: each failure is a translated
:class:`ServiceValidationError` naming the entry, device or entity.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .entity import register_unique_id, unit_identifier

ATTR_CONFIG_ENTRY_ID = "config_entry_id"


def invalid(key: str, **placeholders: str) -> ServiceValidationError:
    """Return the translated validation error ``key`` with its placeholders."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def loaded_entries(hass: HomeAssistant) -> list[AdaptiveModbusConfigEntry]:
    """Return the connections that are set up and running."""
    return [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]


def loaded_entry(hass: HomeAssistant, entry_id: str) -> AdaptiveModbusConfigEntry:
    """Return the loaded connection ``entry_id``; raise ``entry_not_loaded`` if none."""
    entry = hass.config_entries.async_get_entry(entry_id)
    if (
        entry is None
        or entry.domain != DOMAIN
        or entry.state is not ConfigEntryState.LOADED
    ):
        raise invalid("entry_not_loaded", entry=entry_id)
    return entry


def entry_of_entity(
    hass: HomeAssistant, entity_id: str
) -> tuple[AdaptiveModbusConfigEntry, str | None]:
    """Return the entry of an entity and its register's uid (None: not a register)."""
    item = er.async_get(hass).async_get(entity_id)
    if item is None or item.platform != DOMAIN or item.config_entry_id is None:
        raise invalid("unknown_entity", entity=entity_id)
    entry = loaded_entry(hass, item.config_entry_id)
    for uid, (unit_id, definition) in entry.runtime_data.hub.definitions.items():
        if (
            register_unique_id(entry.entry_id, unit_id, definition.spec.key)
            == item.unique_id
        ):
            return entry, uid
    return entry, None


def unit_of_device(
    hass: HomeAssistant, device_id: str
) -> tuple[AdaptiveModbusConfigEntry, int]:
    """Return the entry and unit id of a unit device."""
    device = dr.async_get(hass).async_get(device_id)
    if device is not None:
        for entry in loaded_entries(hass):
            for unit in entry.runtime_data.hub.units:
                if unit_identifier(entry.entry_id, unit.unit_id) in device.identifiers:
                    return entry, unit.unit_id
    raise invalid("unknown_device", device=device_id)
