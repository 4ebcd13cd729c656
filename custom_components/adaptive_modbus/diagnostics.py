"""Config entry diagnostics: configuration (redacted), engine snapshot, recent errors."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_HOST, CONF_SERIAL_PORT
from .coordinator import AdaptiveModbusConfigEntry

TO_REDACT = {CONF_HOST, CONF_SERIAL_PORT, "unique_id", "title"}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> dict[str, Any]:
    """Everything needed to understand a connection's polling, nothing that locates it."""
    data = entry.runtime_data
    coordinator = data.coordinator
    hub = data.hub
    snapshot = coordinator.engine.snapshot()
    now = coordinator.clock()
    interval = coordinator.update_interval
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "connection": {
            "kind": hub.settings.connection,
            "connected": hub.transport.connected,
            "demo_server_running": hub.server is not None,
            "units": [
                {
                    "unit_id": unit.unit_id,
                    "name": unit.name,
                    "model": unit.model,
                    "registers": len(unit.definitions),
                }
                for unit in hub.units
            ],
        },
        "coordinator": {
            "cycles": coordinator.cycles,
            "failed_cycles_in_a_row": coordinator.failed_cycles,
            "last_update_success": coordinator.last_update_success,
            "next_wake_in_seconds": None if interval is None else interval.total_seconds(),
            "next_due_in_seconds": round(coordinator.seconds_to_next_due(), 3),
            "state_writes_total": coordinator.state_writes.total,
            "state_writes_per_minute": round(coordinator.state_writes.per_minute(now), 2),
            "learned_state_restored": data.store.restored,
        },
        "engine": snapshot.as_dict(),
        "recent_errors": list(coordinator.recent_errors),
    }
