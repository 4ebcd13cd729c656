"""The card and the panel served by the integration: static path, extra module, panel."""

from __future__ import annotations

from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL, DATA_PANELS
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.adaptive_modbus import panel
from custom_components.adaptive_modbus.const import DOMAIN


async def test_card_and_panel_served_with_the_frontend(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """Test the built module is served, loaded on every page and is the admin panel."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "frontend", {})
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()

    version = await hass.async_add_executor_job(panel.script_version)
    url = panel.script_url(version)
    assert url in hass.data[DATA_EXTRA_MODULE_URL].urls

    registered = hass.data[DATA_PANELS][panel.PANEL_URL_PATH]
    assert registered.require_admin is True
    assert registered.sidebar_title == "Adaptive Modbus"
    assert registered.config["_panel_custom"]["module_url"] == url
    assert registered.config["_panel_custom"]["name"] == panel.PANEL_ELEMENT

    client = await hass_client()
    response = await client.get(url)
    assert response.status == 200
    body = await response.read()
    assert body == (panel.FRONTEND_DIR / panel.SCRIPT_FILE).read_bytes()
    assert "javascript" in response.headers["Content-Type"]


async def test_nothing_registered_without_the_frontend(hass: HomeAssistant) -> None:
    """Test a headless HA: the integration sets up, no panel, no extra module."""
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert (
        DATA_PANELS not in hass.data
        or panel.PANEL_URL_PATH not in hass.data[DATA_PANELS]
    )
    assert panel.DATA_FRONTEND not in hass.data
