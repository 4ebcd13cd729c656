"""The Lovelace card and the admin panel, served by the integration itself.

The built JavaScript (``frontend/adaptive-modbus.js``, made by ``scripts/build_frontend``
from the repository's ``frontend/`` source) is served as a static path, loaded on every
page as an extra module (no Lovelace resource step for the user; the content hash in
the query busts caches after an update) and registered as the sidebar panel
"Adaptive Modbus" for admins. The card and the panel read through the integration's
websocket commands (``adaptive_modbus/entries``, ``/views``, ``/subscribe``,
``/refresh``) and its services (optimization).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from homeassistant.components import panel_custom
from homeassistant.components.frontend import add_extra_js_url
from homeassistant.components.http import StaticPathConfig
from homeassistant.core import HomeAssistant

from .const import DOMAIN, NAME

_LOGGER = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).parent / "frontend"
SCRIPT_FILE = "adaptive-modbus.js"
STATIC_URL = f"/{DOMAIN}_static"
PANEL_URL_PATH = "adaptive-modbus"
PANEL_ELEMENT = "adaptive-modbus-panel"
PANEL_ICON = "mdi:chart-timeline-variant"
DATA_FRONTEND = f"{DOMAIN}_frontend"


def script_version() -> str:
    """Return a short content hash of the built script (executor: reads the file)."""
    return hashlib.sha256((FRONTEND_DIR / SCRIPT_FILE).read_bytes()).hexdigest()[:12]


def script_url(version: str) -> str:
    """Return the URL the card and the panel load (the version busts caches)."""
    return f"{STATIC_URL}/{SCRIPT_FILE}?v={version}"


async def async_setup_frontend(hass: HomeAssistant) -> None:
    """Register the static path, the card (extra module) and the admin panel.

    Needs HA's frontend (not set up in a headless HA or in the unit tests): skipped
    without it.
    """
    if (
        "frontend" not in hass.config.components
        or getattr(hass, "http", None) is None
        or DATA_FRONTEND in hass.data
    ):
        _LOGGER.debug("No frontend: the card and the panel are not registered")
        return
    hass.data[DATA_FRONTEND] = True
    version = await hass.async_add_executor_job(script_version)
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
