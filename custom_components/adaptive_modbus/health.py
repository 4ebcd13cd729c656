"""Device health in Home Assistant: answering events, repair issues, problem state.

One :class:`HealthMonitor` per connection (``entry.runtime_data.health``) follows the
coordinator's cycles (:meth:`AdaptiveModbusCoordinator.async_add_unit_listener`):

- a unit that stops answering fires ``adaptive_modbus_device_stopped``, one that
  answers again ``adaptive_modbus_device_answering`` (the device triggers listen to
  them);
- persistent conditions become repair issues, each with a fix flow (``repairs.py``):
  a unit silent for more than ``SILENT_REPAIR_AFTER`` s, a unit whose larger reads
  fail (the engine learned a smaller block limit than configured), a register the
  device refused every time it was read. An issue goes as soon as its condition does;
- the analytics' anomalies of each cycle are fired as ``adaptive_modbus_anomaly``;
- the ``problem`` binary sensor of each device shows whether any of that holds (or
  the device's health score is poor), the health sensors follow every cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)

from .const import DOMAIN
from .descriptions import platform_for
from .entity import register_unique_id, unit_identifier

if TYPE_CHECKING:
    from .coordinator import AdaptiveModbusConfigEntry, UnitChanges
    from .engine.analytics import Anomaly, Remediation
    from .engine.stats import EngineSnapshot

_LOGGER = logging.getLogger(__name__)

EVENT_DEVICE_STOPPED: Final = f"{DOMAIN}_device_stopped"
EVENT_DEVICE_ANSWERING: Final = f"{DOMAIN}_device_answering"
EVENT_ANOMALY: Final = f"{DOMAIN}_anomaly"

# a unit silent this long (s) gets a repair issue (a short outage is no repair)
SILENT_REPAIR_AFTER: Final = 600.0
# a register never read and refused this often gets a repair issue
REFUSED_REPAIR_AFTER: Final = 3

# repair issue kinds (translation keys of the issues and their fix flows)
ISSUE_NOT_ANSWERING: Final = "device_not_answering"
ISSUE_BLOCK_LIMIT: Final = "block_limit"
ISSUE_REGISTER_REFUSED: Final = "register_refused"

# problems of a device shown by its problem binary sensor (besides the issues)
PROBLEM_NOT_ANSWERING: Final = "not_answering"
PROBLEM_POOR_HEALTH: Final = "poor_health"  # health score below 50
STATUS_POOR: Final = "poor"
REMEDY_LOWER_MAX_REGISTERS: Final = "lower_max_registers"  # the analytics' key


@dataclass(frozen=True, slots=True)
class Issue:
    """One repair issue the monitor raised: what, where, and what the fix needs."""

    kind: str
    unit_id: int
    placeholders: dict[str, str]
    data: dict[str, str | int | float | None]

    def issue_id(self, entry_id: str) -> str:
        """Return the issue registry id (unique per entry, unit and register)."""
        uid = self.data.get("uid")
        suffix = f"{self.unit_id}" if uid is None else f"{uid}"
        return f"{self.kind}_{entry_id}_{suffix}"


def issue_entry_id(data: dict[str, Any] | None) -> str | None:
    """Return the config entry id a fix flow's issue data names."""
    return None if not data else str(data.get("entry_id") or "") or None


class HealthMonitor:
    """Fires the answering events, keeps the repair issues, feeds the problem sensors."""

    def __init__(self, hass: HomeAssistant, entry: AdaptiveModbusConfigEntry) -> None:
        """Follow ``entry``'s coordinator (call :meth:`async_start` once set up)."""
        self.hass = hass
        self.entry = entry
        self.coordinator = entry.runtime_data.coordinator
        self.hub = entry.runtime_data.hub
        self.issues: dict[str, Issue] = {}  # issue id -> issue
        self._listeners: list[CALLBACK_TYPE] = []
        self._names = {unit.unit_id: unit.name for unit in self.hub.units}
        self._seen: EngineSnapshot | None = None  # the coordinator's, last checked
        self._anomalies_fired: list[Anomaly] | None = None
        self._remedies: dict[int | None, list[Remediation]] = {}
        self._remedies_of: EngineSnapshot | None = None
        # unit -> (largest read known to answer, smallest read seen failing)
        self._block_sizes: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------ lifecycle
    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Follow the coordinator's cycles; check once now. Returns the stop function."""
        unsub = self.coordinator.async_add_unit_listener(self._async_on_cycle)
        self._anomalies_fired = self.coordinator.last_anomalies  # (setup's cycle)
        for unit_id in sorted(self.coordinator.silent_units):
            self._async_fire(EVENT_DEVICE_STOPPED, unit_id)
        self.async_check()

        @callback
        def _stop() -> None:
            unsub()
            for issue_id in list(self.issues):
                ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            self.issues.clear()

        return _stop

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` after every check (each cycle, and when problems change)."""
        self._listeners.append(listener)

        @callback
        def _remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return _remove

    # ------------------------------------------------------------------ queries
    def device_id(self, unit_id: int) -> str | None:
        """Return the device registry id of a unit's device."""
        device = dr.async_get(self.hass).async_get_device(
            identifiers={unit_identifier(self.entry.entry_id, unit_id)}
        )
        return None if device is None else device.id

    def unit_name(self, unit_id: int) -> str:
        """Return a unit's device name."""
        return self._names.get(unit_id, f"unit {unit_id}")

    def remedies(self, unit_id: int | None) -> list[Remediation]:
        """Return the analytics' suggestions for a unit or the connection (None).

        Computed once per analysed cycle and kept until the next.
        """
        analytics = self.coordinator.analytics
        if analytics.snapshot is not self._remedies_of:
            self._remedies_of = analytics.snapshot
            self._remedies.clear()
        if unit_id not in self._remedies:
            self._remedies[unit_id] = analytics.remediation(unit_id)
        return self._remedies[unit_id]

    def problems(self, unit_id: int) -> list[str]:
        """Return what is wrong with a unit now (sorted; empty when healthy)."""
        found = {
            issue.kind for issue in self.issues.values() if issue.unit_id == unit_id
        }
        if unit_id in self.coordinator.silent_units:
            found.add(PROBLEM_NOT_ANSWERING)
        health = self.coordinator.analytics.health_score(unit_id)
        if health is not None and health.status == STATUS_POOR:
            found.add(PROBLEM_POOR_HEALTH)
        return sorted(found)

    # ------------------------------------------------------------------ cycle
    @callback
    def _async_on_cycle(self, changes: UnitChanges) -> None:
        for unit_id in sorted(changes.stopped):
            self._async_fire(EVENT_DEVICE_STOPPED, unit_id)
        for unit_id in sorted(changes.answering):
            self._async_fire(EVENT_DEVICE_ANSWERING, unit_id)
        self._async_fire_anomalies()
        # every cycle: the health sensors follow the scores even when no value changed
        self.async_check(notify=True)

    @callback
    def _async_fire_anomalies(self) -> None:
        """Fire an event per anomaly the analytics found since the last cycle."""
        anomalies = self.coordinator.last_anomalies
        if anomalies is self._anomalies_fired:  # no new cycle was fed to analytics
            return
        self._anomalies_fired = anomalies
        for anomaly in anomalies:
            self.hass.bus.async_fire(EVENT_ANOMALY, self.anomaly_event_data(anomaly))

    def anomaly_event_data(self, anomaly: Anomaly) -> dict[str, Any]:
        """Return the event data of an anomaly: register, device, figures."""
        entity_id: str | None = None
        unit_id = anomaly.unit_id
        if anomaly.uid in self.hub.definitions:
            unit_id, definition = self.hub.definitions[anomaly.uid]
            entity_id = er.async_get(self.hass).async_get_entity_id(
                platform_for(definition),
                DOMAIN,
                register_unique_id(self.entry.entry_id, unit_id, definition.key),
            )
        return {
            "entity_id": entity_id,
            "device_id": None if unit_id is None else self.device_id(unit_id),
            "entry_id": self.entry.entry_id,
            "unit_id": unit_id,
            "uid": anomaly.uid,
            "value": anomaly.value,
            "expected_low": anomaly.expected_low,
            "expected_high": anomaly.expected_high,
            "score": round(anomaly.score, 2),
            "baseline": anomaly.baseline,
            "at": anomaly.at,
        }

    @callback
    def _async_fire(self, event_type: str, unit_id: int) -> None:
        self.hass.bus.async_fire(
            event_type,
            {
                "device_id": self.device_id(unit_id),
                "entry_id": self.entry.entry_id,
                "unit_id": unit_id,
                "name": self.unit_name(unit_id),
            },
        )

    @callback
    def async_check(self, *, notify: bool = False) -> None:
        """Raise the issues whose condition holds now, delete the others."""
        snapshot = self.coordinator.snapshot
        if snapshot is self._seen:  # the cycle failed: no snapshot was built for it
            snapshot = self.coordinator.engine.snapshot()
        self._seen = self.coordinator.snapshot
        wanted: dict[str, Issue] = {}
        for issue in (
            *self._not_answering(snapshot),
            *self._block_limits(snapshot),
            *self._refused(snapshot),
        ):
            wanted[issue.issue_id(self.entry.entry_id)] = issue
        changed = notify
        for issue_id in set(self.issues) - set(wanted):
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            del self.issues[issue_id]
            changed = True
        for issue_id, issue in wanted.items():
            if self.issues.get(issue_id) == issue:
                continue
            self.issues[issue_id] = issue
            changed = True
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=True,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR
                if issue.kind == ISSUE_NOT_ANSWERING
                else ir.IssueSeverity.WARNING,
                translation_key=issue.kind,
                translation_placeholders=issue.placeholders,
                data={"entry_id": self.entry.entry_id, **issue.data},
            )
        if changed:
            for listener in list(self._listeners):
                listener()

    def _base(self, unit_id: int) -> dict[str, str]:
        return {
            "device": self.unit_name(unit_id),
            "unit_id": str(unit_id),
            "connection": self.hub.title,
        }

    def _not_answering(self, snapshot: EngineSnapshot) -> list[Issue]:
        now = snapshot.wall_at if snapshot.wall_at is not None else snapshot.at
        issues = []
        for unit_id, status in snapshot.units_down.items():
            silent_for = now - status.down_since
            if silent_for < SILENT_REPAIR_AFTER:
                continue
            # minutes are in the placeholders: they say since when, not how long now
            since = int(SILENT_REPAIR_AFTER // 60)
            issues.append(
                Issue(
                    ISSUE_NOT_ANSWERING,
                    unit_id,
                    {**self._base(unit_id), "minutes": str(since)},
                    {"unit_id": unit_id},
                )
            )
        return issues

    def _block_limits(self, snapshot: EngineSnapshot) -> list[Issue]:
        """Units whose larger reads failed: the engine reads them in smaller blocks.

        The size proposed is the largest read known to answer: the engine's learned
        limit (half the refused read), or the analytics' larger one (the largest read
        that answered, below the smallest that failed). ``failed`` is the smallest
        read seen failing. Both are kept while the issue is, raised (the limit) or
        lowered (the failure) as the analytics learn more.
        """
        engine = self.coordinator.engine
        learned = engine.learned_block_limits()
        for unit_id in set(self._block_sizes) - set(learned):
            del self._block_sizes[unit_id]
        issues = []
        for unit_id, engine_limit in sorted(learned.items()):
            cap = engine.block_limit_cap(unit_id)
            limit, failed = self._block_sizes.get(unit_id, (engine_limit, cap + 1))
            limit = max(limit, engine_limit)
            failed = min(
                [failed]
                + [
                    e.count
                    for e in snapshot.recent_errors
                    if e.unit_id == unit_id and e.count > limit
                ]
            )
            for remedy in self.remedies(unit_id):
                if remedy.key == REMEDY_LOWER_MAX_REGISTERS:
                    failed = min(failed, int(remedy.figures["smallest_failed"]))
                    largest_ok = int(remedy.params["max_registers"])
                    if largest_ok < min(failed, cap):
                        limit = max(limit, largest_ok)
            if failed > cap:  # no failure seen (restored state): the next size tried
                failed = min(2 * limit, cap)
            self._block_sizes[unit_id] = (limit, failed)
            issues.append(
                Issue(
                    ISSUE_BLOCK_LIMIT,
                    unit_id,
                    {
                        **self._base(unit_id),
                        "limit": str(limit),
                        "failed": str(failed),
                        "cap": str(cap),
                    },
                    {"unit_id": unit_id, "limit": limit},
                )
            )
        return issues

    def _refused(self, snapshot: EngineSnapshot) -> list[Issue]:
        issues = []
        ent_reg = er.async_get(self.hass)
        for uid, register in snapshot.registers.items():
            if (
                not register.enabled
                or register.reads
                or register.quarantined_until is None
                or register.errors < REFUSED_REPAIR_AFTER
                or uid not in self.hub.definitions
            ):
                continue
            unit_id, definition = self.hub.definitions[uid]
            entity_id = ent_reg.async_get_entity_id(
                platform_for(definition),
                DOMAIN,
                register_unique_id(self.entry.entry_id, unit_id, definition.key),
            )
            issues.append(
                Issue(
                    ISSUE_REGISTER_REFUSED,
                    unit_id,
                    {
                        **self._base(unit_id),
                        "register": definition.name,
                        "entity": entity_id or definition.name,
                        "table": str(register.table),
                        "address": str(register.address),
                        "refusals": str(register.errors),
                    },
                    {"unit_id": unit_id, "uid": uid, "entity_id": entity_id},
                )
            )
        return issues


__all__ = [
    "EVENT_ANOMALY",
    "EVENT_DEVICE_ANSWERING",
    "EVENT_DEVICE_STOPPED",
    "HealthMonitor",
]
