"""Config entry diagnostics: configuration, engine snapshot, recent errors, redacted.

Redacted everywhere, not only in the entry section: the host, the serial device path
and the entry title wherever they appear in any string (error messages name the
connection), and the values of text registers (serial numbers, names) with every
place those values appear.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_HOST, CONF_SERIAL_PORT
from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusData
from .engine.charts import history_summary
from .engine.registers import DataType
from .hub import Hub, demo_fleet

TO_REDACT = {CONF_HOST, CONF_SERIAL_PORT, "unique_id", "title"}
SHORTEST_SECRET = 3  # shorter strings would redact unrelated text
AUDIT_TAIL = 50  # audited changes in the diagnostics


def _private_registers(hub: Hub) -> set[str]:
    """Return registers whose values identify a device: text registers, serial numbers."""
    return {
        uid
        for uid, (_, definition) in hub.definitions.items()
        if definition.spec.data_type is DataType.STRING
        or "serial" in definition.key.lower()
    }


def redact_strings(data: Any, secrets: Iterable[str]) -> Any:
    """Return ``data`` with every secret redacted from every string, key or value."""
    ordered = sorted(
        {s for s in secrets if len(s) >= SHORTEST_SECRET}, key=len, reverse=True
    )

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for secret in ordered:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {scrub(k): scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return value

    return scrub(data)


def _optimization(data: AdaptiveModbusData) -> dict[str, Any]:
    """Return the optimization loop's figures and the audit tail (names redacted)."""
    optimizer = data.optimizer
    audit = []
    for entry in data.audit.tail(AUDIT_TAIL):
        item = entry.to_dict()
        if item["actor"].get("name") is not None:
            item["actor"]["name"] = REDACTED
        audit.append(item)
    return {
        "automatic": None if optimizer is None else optimizer.enabled,
        "goal": None if optimizer is None else str(optimizer.goal),
        # the loop's own audit tail names users: the redacted one below replaces it
        "statistics": None
        if optimizer is None
        else {k: v for k, v in optimizer.statistics().items() if k != "audit"},
        "audit": audit,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry
) -> dict[str, Any]:
    """Everything needed to understand a connection's polling, nothing that locates it."""
    data = entry.runtime_data
    coordinator = data.coordinator
    hub = data.hub
    snapshot = coordinator.engine.snapshot()
    now = coordinator.clock()
    engine = snapshot.as_dict()
    secrets = [
        str(entry.data.get(CONF_HOST) or ""),
        str(entry.data.get(CONF_SERIAL_PORT) or ""),
        hub.settings.transport.host,
        hub.settings.transport.serial_port,
        entry.title,
        str(entry.unique_id or ""),
    ]
    registers = engine.get("registers", {})
    for uid in _private_registers(hub):
        register = registers.get(uid)
        if isinstance(register, dict) and register.get("value") is not None:
            secrets.append(str(register["value"]).strip("\0 "))
            register["value"] = REDACTED
    next_wake = coordinator.next_wake
    diagnostics = {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "connection": {
            "kind": hub.settings.connection,
            "connected": hub.transport.connected,
            "demo_server_running": hub.server is not None,
            "demo_fleet": demo_fleet(hub),
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
            "silent_units": sorted(coordinator.silent_units),
            "next_wake_in_seconds": None
            if next_wake is None
            else round(next_wake - hass.loop.time(), 3),
            "next_due_in_seconds": round(coordinator.seconds_to_next_due(), 3),
            "state_writes_total": coordinator.state_writes.total,
            "state_writes_per_minute": round(
                coordinator.state_writes.per_minute(now), 2
            ),
            "learned_state_restored": data.store.restored,
            "learned_registers_restored": data.store.restored_registers,
        },
        "engine": engine,
        "recent_errors": list(coordinator.recent_errors),
        "optimization": _optimization(data),
        "history": history_summary(
            coordinator.history, data.charts.timeline if data.charts else None
        ),
    }
    return dict(redact_strings(diagnostics, secrets))
