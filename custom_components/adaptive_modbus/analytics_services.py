"""Analytics services: ``get_analytics``, ``get_health`` and ``generate_report``.

Registered with the visualization services (``services.async_setup_services``).
They answer from the connection's :class:`~.engine.analytics.Analytics`, which the
coordinator feeds after every poll cycle; this module resolves targets, checks
arguments and names register entities.
"""

from __future__ import annotations

from typing import Any

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.helpers import config_validation as cv, entity_registry as er
import voluptuous as vol

from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .engine.analytics import (
    CONNECTION,
    PERIODS,
    Analytics,
    SummaryInputs,
    build_report,
    summarise,
)
from .engine.registers import DataType
from .entity import register_unique_id
from .service_targets import (
    ATTR_CONFIG_ENTRY_ID,
    entry_of_entity,
    invalid,
    loaded_entries,
    loaded_entry,
    unit_of_device,
)

SERVICE_GET_ANALYTICS = "get_analytics"
SERVICE_GET_HEALTH = "get_health"
SERVICE_GENERATE_REPORT = "generate_report"
ATTR_WINDOW = "window"
ATTR_HORIZON = "horizon"
ATTR_PERIOD = "period"
ATTR_MAX_LENGTH = "max_length"
DEFAULT_WINDOW_HOURS = 24.0
MAX_WINDOW_HOURS = 7 * 24.0  # the hourly aggregates reach 7 days back
DEFAULT_HORIZON_HOURS = 1.0
MAX_HORIZON_HOURS = 48.0
DEFAULT_MAX_LENGTH = 4000
MIN_MAX_LENGTH = 500
MAX_MAX_LENGTH = 20_000

GET_ANALYTICS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_WINDOW, default=DEFAULT_WINDOW_HOURS): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=MAX_WINDOW_HOURS)
        ),
        vol.Optional(ATTR_HORIZON, default=DEFAULT_HORIZON_HOURS): vol.All(
            vol.Coerce(float), vol.Range(min=0, max=MAX_HORIZON_HOURS)
        ),
    }
)
GET_HEALTH_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
    }
)
GENERATE_REPORT_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_PERIOD, default="day"): vol.In(tuple(PERIODS)),
        vol.Optional(ATTR_MAX_LENGTH, default=DEFAULT_MAX_LENGTH): vol.All(
            vol.Coerce(int), vol.Range(min=MIN_MAX_LENGTH, max=MAX_MAX_LENGTH)
        ),
    }
)


def _analytics(entry: AdaptiveModbusConfigEntry, service: str) -> Analytics:
    analytics = entry.runtime_data.analytics
    if analytics.snapshot is None:
        raise invalid("analytics_not_ready", title=entry.title, service=service)
    return analytics


def _target(
    hass: HomeAssistant, data: dict[str, Any], service: str
) -> tuple[AdaptiveModbusConfigEntry, int | None]:
    """Return the connection and unit (None: the connection) a call is about."""
    if ATTR_DEVICE_ID in data:
        return unit_of_device(hass, data[ATTR_DEVICE_ID])
    if ATTR_CONFIG_ENTRY_ID in data:
        return loaded_entry(hass, data[ATTR_CONFIG_ENTRY_ID]), None
    loaded = loaded_entries(hass)
    if not loaded:
        raise invalid("no_connections")
    if len(loaded) > 1:
        raise invalid("connection_needed", service=service)
    return loaded[0], None


def _entity_ids(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> dict[str, str]:
    """Return engine uid -> entity id of the entry's register entities."""
    by_unique = {
        item.unique_id: item.entity_id
        for item in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
    }
    out = {}
    for uid, (unit_id, definition) in entry.runtime_data.hub.definitions.items():
        entity_id = by_unique.get(
            register_unique_id(entry.entry_id, unit_id, definition.spec.key)
        )
        if entity_id is not None:
            out[uid] = entity_id
    return out


def _unit_names(entry: AdaptiveModbusConfigEntry) -> dict[int, str]:
    return {unit.unit_id: unit.name for unit in entry.runtime_data.hub.units}


def _summarise_all(inputs: list[SummaryInputs], horizon: float) -> list[dict[str, Any]]:
    """Summarise registers (executor: trends and forecasts are CPU work)."""
    return [summarise(item, horizon) for item in inputs]


async def _async_get_analytics(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    data = dict(call.data)
    window = 3600.0 * data[ATTR_WINDOW]
    horizon = 3600.0 * data[ATTR_HORIZON]
    if ATTR_ENTITY_ID in data:
        entry, uid = entry_of_entity(hass, data[ATTR_ENTITY_ID])
        if uid is None:
            raise invalid("analytics_needs_register", entity=data[ATTR_ENTITY_ID])
        uids = [uid]
        unit: int | None = entry.runtime_data.hub.definitions[uid][0]
    elif ATTR_DEVICE_ID in data:
        entry, unit = unit_of_device(hass, data[ATTR_DEVICE_ID])
        uids = [
            u
            for u, (unit_id, _) in entry.runtime_data.hub.definitions.items()
            if unit_id == unit
        ]
    else:
        raise invalid("analytics_target_needed", service=SERVICE_GET_ANALYTICS)
    analytics = _analytics(entry, SERVICE_GET_ANALYTICS)
    snapshot = analytics.snapshot
    assert snapshot is not None
    entity_ids = _entity_ids(hass, entry)
    definitions = entry.runtime_data.hub.definitions
    inputs = []
    for uid in uids:
        if uid not in snapshot.registers:
            raise invalid("unknown_target", target=uid)
        if definitions[uid][1].spec.data_type is not DataType.STRING:
            # copied here, summarised in a thread (trend and forecast: ms each)
            inputs.append(analytics.summary_inputs(uid, window))
    registers = await hass.async_add_executor_job(_summarise_all, inputs, horizon)
    for summary in registers:
        reg = snapshot.registers[summary["uid"]]
        summary["entity_id"] = entity_ids.get(reg.uid)
        summary["key"] = reg.key
        summary["unit_id"] = reg.unit_id
    return {
        "connection": entry.title,
        "unit_id": unit,
        "at": analytics.now(),
        "window": window,
        "horizon": horizon,
        "registers": registers,
    }


def _health(analytics: Analytics, scope: int | str) -> dict[str, Any] | None:
    score = analytics.health_score(scope)
    if score is None:
        return None
    return {
        **score.as_dict(),
        "trend": {
            period: [
                [round(at), round(value, 1)]
                for at, value in analytics.health_trend(scope, period)
            ]
            for period in ("day", "week")
        },
    }


async def _async_get_health(call: ServiceCall) -> ServiceResponse:
    entry, unit = _target(call.hass, dict(call.data), SERVICE_GET_HEALTH)
    analytics = _analytics(entry, SERVICE_GET_HEALTH)
    scope: int | str = CONNECTION if unit is None else unit
    health = _health(analytics, scope)
    if health is None:  # a unit with no enabled register is not scored
        raise invalid("unknown_target", target=str(scope))
    names = _unit_names(entry)
    response: dict[str, Any] = {
        "connection": entry.title,
        "unit_id": unit,
        "name": entry.title if unit is None else names.get(unit, f"unit {unit}"),
        **health,
        "remediation": [r.as_dict() for r in analytics.remediation(unit)],
    }
    if unit is None:
        response["devices"] = [
            {
                "unit_id": unit_id,
                "name": name,
                "score": score.score,
                "status": score.status,
            }
            for unit_id, name in sorted(names.items())
            if (score := analytics.health_score(unit_id)) is not None
        ]
    return response


async def _async_generate_report(call: ServiceCall) -> ServiceResponse:
    data = dict(call.data)
    entry, unit = _target(call.hass, data, SERVICE_GENERATE_REPORT)
    analytics = _analytics(entry, SERVICE_GENERATE_REPORT)
    hub = entry.runtime_data.hub
    report = build_report(
        analytics,
        period=data[ATTR_PERIOD],
        unit_id=unit,
        title=entry.title,
        unit_names=_unit_names(entry),
        register_names={
            uid: definition.name for uid, (_, definition) in hub.definitions.items()
        },
        max_chars=data[ATTR_MAX_LENGTH],
    )
    return {
        "markdown": report.markdown,
        "length": len(report.markdown),
        "data": report.data,
    }


def async_setup_analytics_services(hass: HomeAssistant) -> None:
    """Register the analytics services (from ``services.async_setup_services``)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_ANALYTICS,
        _async_get_analytics,
        schema=GET_ANALYTICS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_HEALTH,
        _async_get_health,
        schema=GET_HEALTH_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_GENERATE_REPORT,
        _async_generate_report,
        schema=GENERATE_REPORT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
