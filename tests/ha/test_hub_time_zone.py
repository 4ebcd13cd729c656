"""The engine's time-of-week patterns use Home Assistant's time zone, not UTC."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_PORT,
    CONF_PROFILE,
    CONF_UNIT_ID,
    CONNECTION_TCP,
    PROFILE_DEMO,
)
from custom_components.adaptive_modbus.hub import (
    async_build_hub,
    load_units,
    settings_from_entry,
)


async def test_patterns_bucket_by_the_configured_time_zone(hass: HomeAssistant) -> None:
    """Test that patterns bucket samples by HA's configured time zone."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    data = {
        CONF_CONNECTION: CONNECTION_TCP,
        CONF_HOST: "127.0.0.1",
        CONF_PORT: 1,  # never connected: building the hub opens nothing
        CONF_DEVICES: [{CONF_UNIT_ID: 1, CONF_PROFILE: PROFILE_DEMO}],
    }
    settings = settings_from_entry(data, {})
    units = await hass.async_add_executor_job(load_units, settings)
    hub = await async_build_hub("test", settings, units, clock=lambda: 0.0)
    try:
        state = hub.engine.export_state()
        profiles = [reg["profile"] for reg in state["registers"].values()]
        assert profiles and all(p["tz"] == "Europe/Berlin" for p in profiles)
    finally:
        await hub.async_close()
