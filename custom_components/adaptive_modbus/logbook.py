"""Logbook: how the integration's events read in the logbook."""

from __future__ import annotations

from homeassistant.core import HomeAssistant, callback

from .health_logbook import DescribeEvent, async_describe_health_events


@callback
def async_describe_events(
    hass: HomeAssistant, async_describe_event: DescribeEvent
) -> None:
    """Describe the integration's logbook events."""
    async_describe_health_events(hass, async_describe_event)
