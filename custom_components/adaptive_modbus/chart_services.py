"""The ``render_charts`` service: draw the charts now, say what was drawn.

Admin only. HA's ``async_register_admin_service`` cannot return response data, so
the handler checks the caller the way that helper does (a call without a user, from
an automation or script, is allowed) and returns, per chart, whether it was drawn
anew (its data changed) or left as it was, its entity, size and render time.
"""

from __future__ import annotations

from typing import Any

from homeassistant.auth.permissions.const import POLICY_CONTROL
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import Unauthorized, UnknownUser
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.util.json import JsonValueType
import voluptuous as vol

from .chart_runtime import CONNECTION_CHARTS, ChartManager, intervals_chart
from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .entity import hub_identifier, unit_identifier
from .service_targets import ATTR_CONFIG_ENTRY_ID, invalid, loaded_entries

SERVICE_RENDER_CHARTS = "render_charts"

RENDER_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
    }
)


def _managers(
    hass: HomeAssistant,
) -> list[tuple[AdaptiveModbusConfigEntry, ChartManager]]:
    return [
        (entry, entry.runtime_data.charts)
        for entry in loaded_entries(hass)
        if entry.runtime_data.charts
    ]


def _targets(
    hass: HomeAssistant, data: dict[str, Any]
) -> list[tuple[AdaptiveModbusConfigEntry, ChartManager, list[str]]]:
    """Resolve the target to (entry, manager, charts)."""
    managers = _managers(hass)
    if ATTR_DEVICE_ID in data:
        device = dr.async_get(hass).async_get(data[ATTR_DEVICE_ID])
        for entry, manager in managers:
            if device is None:
                break
            if hub_identifier(entry.entry_id) in device.identifiers:
                return [(entry, manager, list(CONNECTION_CHARTS))]
            for unit in manager.hub.units:
                if unit_identifier(entry.entry_id, unit.unit_id) in device.identifiers:
                    return [(entry, manager, [intervals_chart(unit.unit_id)])]
        raise invalid("unknown_device", device=data[ATTR_DEVICE_ID])
    if ATTR_CONFIG_ENTRY_ID in data:
        for entry, manager in managers:
            if entry.entry_id == data[ATTR_CONFIG_ENTRY_ID]:
                return [(entry, manager, manager.charts)]
        raise invalid("entry_not_loaded", entry=data[ATTR_CONFIG_ENTRY_ID])
    if not managers:
        raise invalid("no_connections")
    return [(entry, manager, manager.charts) for entry, manager in managers]


async def _async_check_admin(call: ServiceCall) -> None:
    """Refuse a call by a user who is not an admin (as HA's admin services do)."""
    if not call.context.user_id:
        return
    user = await call.hass.auth.async_get_user(call.context.user_id)
    if user is None:
        raise UnknownUser(
            context=call.context,
            permission=POLICY_CONTROL,
            user_id=call.context.user_id,
        )
    if not user.is_admin:
        raise Unauthorized(context=call.context)


async def _async_render(call: ServiceCall) -> ServiceResponse:
    await _async_check_admin(call)
    drawn = 0
    rendered: list[JsonValueType] = []
    for entry, manager, charts in _targets(call.hass, dict(call.data)):
        for result in await manager.async_render(charts):
            picture = result.picture
            drawn += result.changed
            rendered.append(
                {
                    "config_entry_id": entry.entry_id,
                    "chart": result.chart,
                    "entity_id": manager.entity_ids.get(result.chart),
                    "changed": result.changed,
                    "width": picture.width,
                    "height": picture.height,
                    "bytes": len(picture.png),
                    "seconds": picture.seconds,
                    "updated": picture.updated.isoformat(),
                }
            )
    return {"rendered": rendered, "drawn": drawn}


def async_setup_chart_services(hass: HomeAssistant) -> None:
    """Register ``render_charts`` (from ``services.async_setup_services``)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_RENDER_CHARTS,
        _async_render,
        schema=RENDER_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
