"""Visualization services: ``get_visualization`` and ``export_visualization``.

Registered once in ``async_setup`` (they exist whether or not an entry is loaded and
say so when none is). The views themselves are built by the engine library from the
public snapshot API and the coordinator's history; this module only resolves targets,
checks arguments and writes the export file in the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .chart_services import async_setup_chart_services
from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry
from .engine.views import (
    VIEWS,
    Source,
    cluster_view,
    device_view,
    export_dataset,
    register_view,
    system_view,
)
from .service_targets import (
    ATTR_CONFIG_ENTRY_ID,
    entry_of_entity,
    invalid,
    loaded_entries,
    loaded_entry,
    unit_of_device,
)

SERVICE_GET_VISUALIZATION = "get_visualization"
SERVICE_EXPORT_VISUALIZATION = "export_visualization"
ATTR_VIEW = "view"
ATTR_PERIOD = "period"
ATTR_PATH = "path"
DEFAULT_PERIOD_HOURS = 24.0
MAX_PERIOD_HOURS = 30 * 24.0
DEFAULT_EXPORT_PATH = "www/adaptive_modbus/visualization.json"

_TARGET: dict[vol.Marker, Any] = {
    vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    vol.Optional(ATTR_DEVICE_ID): cv.string,
    vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
    vol.Optional(ATTR_PERIOD, default=DEFAULT_PERIOD_HOURS): vol.All(
        vol.Coerce(float), vol.Range(min=0.1, max=MAX_PERIOD_HOURS)
    ),
}
GET_SCHEMA = vol.Schema({vol.Required(ATTR_VIEW): vol.In(VIEWS), **_TARGET})
EXPORT_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Optional(ATTR_PERIOD, default=DEFAULT_PERIOD_HOURS): vol.All(
            vol.Coerce(float), vol.Range(min=0.1, max=MAX_PERIOD_HOURS)
        ),
        vol.Optional(ATTR_PATH, default=DEFAULT_EXPORT_PATH): cv.string,
    }
)


def _source(entry: AdaptiveModbusConfigEntry) -> Source:
    coordinator = entry.runtime_data.coordinator
    engine = coordinator.engine
    return Source(
        snapshot=engine.snapshot(),
        history=coordinator.history,
        cost=engine.cost_model(),
        name=entry.title,
        analytics=coordinator.analytics,
    )


@dataclass(frozen=True, slots=True)
class ViewTarget:
    """A resolved target: its connection, and the unit and register it names."""

    entry: AdaptiveModbusConfigEntry
    unit: int | None = None
    uid: str | None = None


def resolve_target(hass: HomeAssistant, data: Mapping[str, Any]) -> ViewTarget:
    """Resolve ``entity_id`` / ``device_id`` / ``config_entry_id`` (or the only entry).

    Raises a translated :class:`ServiceValidationError` naming what is wrong.
    """
    entry: AdaptiveModbusConfigEntry | None = None
    uid: str | None = None
    unit: int | None = None
    if ATTR_ENTITY_ID in data:
        entry, uid = entry_of_entity(hass, data[ATTR_ENTITY_ID])
        if uid is not None:
            unit = entry.runtime_data.hub.definitions[uid][0]
    if ATTR_DEVICE_ID in data:
        entry, unit = unit_of_device(hass, data[ATTR_DEVICE_ID])
    if ATTR_CONFIG_ENTRY_ID in data and entry is None:
        entry = loaded_entry(hass, data[ATTR_CONFIG_ENTRY_ID])
    if entry is None:
        loaded = loaded_entries(hass)
        if not loaded:
            raise invalid("no_connections")
        if len(loaded) > 1:
            raise invalid("target_needed", view=str(data.get(ATTR_VIEW)))
        entry = loaded[0]
    return ViewTarget(entry, unit, uid)


def build_view(target: ViewTarget, view: str, period_hours: float) -> dict[str, Any]:
    """Return ``view`` of a resolved target (what ``get_visualization`` returns)."""
    period = 3600.0 * period_hours
    source = _source(target.entry)
    try:
        if view == "register":
            if target.uid is None:
                raise invalid("register_needs_entity")
            return register_view(source, target.uid, period)
        if view == "device":
            if target.unit is None:
                raise invalid("device_needs_target")
            return device_view(source, target.unit, period)
        if view == "cluster":
            return cluster_view(source)
        return system_view(source, period)
    except KeyError as err:  # a register or unit the engine does not have (any longer)
        raise invalid("unknown_target", target=str(err)) from err


def _view(hass: HomeAssistant, data: dict[str, Any]) -> dict[str, Any]:
    return build_view(resolve_target(hass, data), data[ATTR_VIEW], data[ATTR_PERIOD])


async def _async_export_path(hass: HomeAssistant, raw: str) -> Path:
    """Return the export file's absolute path, refusing traversal and disallowed paths.

    Other suffixes and directories HA does not allow are refused too.

    HA's ``is_allowed_path`` resolves symlinks (file system access): in the executor.
    """
    path = Path(raw)
    if ".." in path.parts:
        raise invalid("path_traversal", path=raw)
    if path.suffix.lower() != ".json":
        raise invalid("path_not_json", path=raw)
    full = path if path.is_absolute() else Path(hass.config.path(raw))
    if not await hass.async_add_executor_job(hass.config.is_allowed_path, str(full)):
        raise invalid("path_not_allowed", path=raw)
    return full


def _write(path: Path, data: dict[str, Any]) -> int:
    """Write ``data`` as JSON atomically (executor); returns the size in bytes."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text)
    tmp.replace(path)
    return len(text)


async def _async_get(call: ServiceCall) -> ServiceResponse:
    return _view(call.hass, dict(call.data))


async def _async_export(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    path = await _async_export_path(hass, call.data[ATTR_PATH])
    if ATTR_CONFIG_ENTRY_ID in call.data:
        entries = [loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])]
    else:
        entries = loaded_entries(hass)
    if not entries:
        raise invalid("no_connections")
    data = export_dataset(
        [_source(e) for e in entries], 3600.0 * call.data[ATTR_PERIOD]
    )
    try:
        size = await hass.async_add_executor_job(_write, path, data)
    except OSError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="export_failed",
            translation_placeholders={"path": str(path), "error": str(err)},
        ) from err
    return {
        "path": str(path),
        "size": size,
        "schema_version": data["schema_version"],
        "connections": len(entries),
    }


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the visualization services (from ``async_setup``)."""
    # imported here: the optimization services use this module's target helpers
    from .optimization_services import async_setup_optimization_services  # noqa: PLC0415

    async_setup_optimization_services(hass)
    async_setup_chart_services(hass)
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_VISUALIZATION,
        _async_get,
        schema=GET_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT_VISUALIZATION,
        _async_export,
        schema=EXPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    # the analytics services reuse this module's helpers: imported here, not on top
    from .analytics_services import async_setup_analytics_services  # noqa: PLC0415

    async_setup_analytics_services(hass)
