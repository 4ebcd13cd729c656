"""Logbook lines of the health events: anomalies, devices stopping and answering again.

``logbook.py`` calls :func:`async_describe_health_events` from its
``async_describe_events``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.components.logbook.models import LazyEventPartialState
from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN
from .health import EVENT_ANOMALY, EVENT_DEVICE_ANSWERING, EVENT_DEVICE_STOPPED

# as the logbook calls it (the same signature as the other logbook descriptions)
DescribeEvent = Callable[
    [str, str, Callable[[LazyEventPartialState], dict[str, Any]]], None
]


def _number(value: Any) -> str:
    """Show a figure briefly: 3 significant digits for floats, as is otherwise."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@callback
def async_describe_health_events(
    hass: HomeAssistant, async_describe_event: DescribeEvent
) -> None:
    """Describe the health events: anomalies and devices stopping / answering."""

    @callback
    def _describe_anomaly(event: LazyEventPartialState) -> dict[str, Any]:
        data = event.data
        entity_id = data.get("entity_id")
        state = hass.states.get(entity_id) if entity_id else None
        name = state.name if state is not None else str(data.get("uid", entity_id))
        message = (
            f"anomaly: read {_number(data.get('value'))}, expected "
            f"{_number(data.get('expected_low'))} to "
            f"{_number(data.get('expected_high'))} "
            f"(score {_number(data.get('score'))})"
        )
        entry = {LOGBOOK_ENTRY_NAME: name, LOGBOOK_ENTRY_MESSAGE: message}
        if entity_id:
            entry[LOGBOOK_ENTRY_ENTITY_ID] = str(entity_id)
        return entry

    @callback
    def _describe_stopped(event: LazyEventPartialState) -> dict[str, Any]:
        return {
            LOGBOOK_ENTRY_NAME: str(event.data.get("name")),
            LOGBOOK_ENTRY_MESSAGE: f"stopped answering (unit {event.data.get('unit_id')})",
        }

    @callback
    def _describe_answering(event: LazyEventPartialState) -> dict[str, Any]:
        return {
            LOGBOOK_ENTRY_NAME: str(event.data.get("name")),
            LOGBOOK_ENTRY_MESSAGE: f"answers again (unit {event.data.get('unit_id')})",
        }

    async_describe_event(DOMAIN, EVENT_ANOMALY, _describe_anomaly)
    async_describe_event(DOMAIN, EVENT_DEVICE_STOPPED, _describe_stopped)
    async_describe_event(DOMAIN, EVENT_DEVICE_ANSWERING, _describe_answering)
