"""The Lovelace card and the admin panel, served by the integration itself.

The built JavaScript (``frontend/adaptive-modbus.js``, made by ``scripts/build_frontend``
from the repository's ``frontend/`` source) is served as a static path, loaded on every
page as an extra module (no Lovelace resource step for the user; the content hash in
the query busts caches after an update) and registered as the sidebar panel
"Adaptive Modbus" for admins. The card asks ``adaptive_modbus/card_targets`` which
connections, devices and register entities there are, then reads the views through
the ``get_visualization`` service.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from homeassistant.components import panel_custom
from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import voluptuous as vol

from .const import DOMAIN, NAME
from .coordinator import AdaptiveModbusConfigEntry
from .descriptions import platform_for
from .entity import register_unique_id, unit_identifier

_LOGGER = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).parent / "frontend"
SCRIPT_FILE = "adaptive-modbus.js"
STATIC_URL = f"/{DOMAIN}_static"
PANEL_URL_PATH = "adaptive-modbus"
PANEL_ELEMENT = "adaptive-modbus-panel"
PANEL_ICON = "mdi:chart-timeline-variant"
WS_CARD_TARGETS = f"{DOMAIN}/card_targets"
DATA_FRONTEND = f"{DOMAIN}_frontend"


def _script_version() -> str:
    """Return a short content hash of the built script (executor: reads the file)."""
    return hashlib.sha256((FRONTEND_DIR / SCRIPT_FILE).read_bytes()).hexdigest()[:12]


def script_url(version: str) -> str:
    """Return the URL the card and the panel load (the version busts caches)."""
    return f"{STATIC_URL}/{SCRIPT_FILE}?v={version}"


async def async_setup_frontend(hass: HomeAssistant) -> None:
    """Register the card's data command, the static path, the card and the panel.

    The command is always there; the rest needs HA's frontend (not set up in a
    headless HA or in the unit tests), and is skipped without it.
    """
    async_register_command(hass, ws_card_targets)
    if (
        "frontend" not in hass.config.components
        or getattr(hass, "http", None) is None
        or DATA_FRONTEND in hass.data
    ):
        _LOGGER.debug("No frontend: the card and the panel are not registered")
        return
    hass.data[DATA_FRONTEND] = True
    version = await hass.async_add_executor_job(_script_version)
    await hass.http.async_register_static_paths(
        [StaticPathConfig(STATIC_URL, str(FRONTEND_DIR), cache_headers=True)]
    )
    url = script_url(version)
    add_extra_js_url(hass, url)
    await panel_custom.async_register_panel(
        hass,
        frontend_url_path=PANEL_URL_PATH,
        webcomponent_name=PANEL_ELEMENT,
        module_url=url,
        sidebar_title=NAME,
        sidebar_icon=PANEL_ICON,
        require_admin=True,
        config={"domain": DOMAIN},
    )


def _loaded_entries(hass: HomeAssistant) -> list[AdaptiveModbusConfigEntry]:
    return [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.state is ConfigEntryState.LOADED
    ]


def card_targets(hass: HomeAssistant) -> list[dict[str, Any]]:
    """Return each loaded connection with its unit devices and register entities."""
    dev_reg = dr.async_get(hass)
    ent_reg = er.async_get(hass)
    targets: list[dict[str, Any]] = []
    for entry in _loaded_entries(hass):
        hub = entry.runtime_data.hub
        devices = []
        for unit in hub.units:
            device = dev_reg.async_get_device(
                identifiers={unit_identifier(entry.entry_id, unit.unit_id)}
            )
            if device is not None:
                devices.append(
                    {
                        "device_id": device.id,
                        "unit_id": unit.unit_id,
                        "name": device.name_by_user or device.name,
                    }
                )
        entities: dict[str, str] = {}
        for uid, (unit_id, definition) in hub.definitions.items():
            entity_id = ent_reg.async_get_entity_id(
                platform_for(definition),
                DOMAIN,
                register_unique_id(entry.entry_id, unit_id, definition.key),
            )
            if entity_id is not None:
                entities[uid] = entity_id
        targets.append(
            {
                "config_entry_id": entry.entry_id,
                "title": entry.title,
                "devices": devices,
                "entities": entities,
            }
        )
    return targets


@websocket_command({vol.Required("type"): WS_CARD_TARGETS})
@callback
def ws_card_targets(
    hass: HomeAssistant,
    connection: ActiveConnection,
    msg: dict[str, Any],
) -> None:
    """Send the connections, unit devices and register entities (any user)."""
    connection.send_result(msg["id"], {"connections": card_targets(hass)})
