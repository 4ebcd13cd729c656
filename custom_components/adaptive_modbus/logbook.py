"""Logbook: one entry per audited change of a connection's polling."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_CONTEXT_ID,
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.components.logbook.models import LazyEventPartialState
from homeassistant.core import HomeAssistant, callback

from .const import DOMAIN
from .optimization import EVENT_OPTIMIZATION

# what an audit action did, as the logbook says it
ACTION_TEXT: dict[str, str] = {
    "set_register_interval": "interval of {target} set",
    "reset_learning": "learning of {target} reset",
    "refresh": "{target} read now",
    "set_enabled": "automatic optimization switched",
    "set_goal": "optimization goal set",
    "set_strategy_parameters": "parameters of strategy {target} set",
    "approve": "proposal for {target} approved",
    "rollback": "change to {target} rolled back",
}
STRATEGY_PREFIX = "strategy:"


def describe(data: Mapping[str, Any]) -> str:
    """Return the logbook message of an optimization event."""
    action = str(data.get("action", ""))
    target = str(data.get("target", ""))
    if action.startswith(STRATEGY_PREFIX):
        strategy = action.removeprefix(STRATEGY_PREFIX)
        text = f"{strategy} strategy: change to {target}"
    else:
        text = ACTION_TEXT.get(action, "{action} on {target}").format(
            action=action, target=target
        )
    message = f"{text}: {data.get('outcome', '')}"
    if data.get("actor") == "loop":
        return f"{message} (by the optimization loop)"
    user = data.get("user_name") or data.get("user_id")
    return f"{message} (by {user})" if user else message


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[
        [str, str, Callable[[LazyEventPartialState], dict[str, Any]]], None
    ],
) -> None:
    """Describe the optimization events."""

    @callback
    def async_describe_optimization_event(
        event: LazyEventPartialState,
    ) -> dict[str, Any]:
        data = event.data
        return {
            LOGBOOK_ENTRY_NAME: data.get("name") or DOMAIN,
            LOGBOOK_ENTRY_MESSAGE: describe(data),
            LOGBOOK_ENTRY_ENTITY_ID: data.get("entity_id"),
            LOGBOOK_ENTRY_CONTEXT_ID: event.context_id,
        }

    async_describe_event(DOMAIN, EVENT_OPTIMIZATION, async_describe_optimization_event)
