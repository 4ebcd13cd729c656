"""The coordinator: wakes when the engine says something is due, not on a fixed tick.

The coordinator has no ``update_interval``: it owns one timer
(:func:`homeassistant.helpers.event.async_call_later`), set after every cycle to the
engine's next due time, and refreshes through the public ``async_refresh``. Listeners
(entities) are told about every new data set, but an entity only writes state when
its own value or availability changed (see :mod:`.entity`); the coordinator counts
those writes for the state-writes-per-minute figure.

Outages: after ``UNAVAILABLE_AFTER_FAILURES`` cycles in a row in which nothing could
be read, a refresh fails (``UpdateFailed``): every entity is unavailable,
``last_update_success`` is false, and HA logs the failure once and the recovery once.
A single silent unit on a connection whose other units answer is logged once when it
goes silent and once when it answers again; its entities go unavailable on their own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
import logging
import math
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import DOMAIN, UNAVAILABLE_AFTER_FAILURES
from .engine.analytics import Analytics, Anomaly, RemedySettings
from .engine.audit import AuditLog
from .engine.errors import AdaptiveModbusError, ErrorKind, ModbusError, WriteUnconfirmed
from .engine.history import History
from .engine.register_map import RegisterDefinition
from .engine.registers import Value
from .engine.scheduler import CycleResult
from .engine.stats import EngineSnapshot
from .hub import Hub, UnitInfo
from .optimization import OptimizerLike
from .storage import LearnedStateStore

if TYPE_CHECKING:
    from .chart_runtime import ChartManager

_LOGGER = logging.getLogger(__name__)

MIN_DELAY = 0.1  # seconds: never wake sooner than this after a cycle
WRITE_RATE_WINDOW = 600.0  # seconds over which state writes per minute are counted
RECENT_ERRORS = 50
STATS_WARMUP = 60.0  # seconds of polling before the connection figures mean anything

# connection diagnostics: key -> (snapshot property, scale, decimals)
STAT_SOURCES: dict[str, tuple[str, float, int]] = {
    "requests_per_minute": ("requests_per_minute", 1.0, 1),
    "bus_utilisation": ("bus_utilisation", 1.0, 2),
    "mean_latency": ("mean_latency", 1000.0, 1),
    "p95_latency": ("p95_latency", 1000.0, 1),
    "error_rate": ("error_rate", 1.0, 1),
    "registers_per_request": ("registers_per_request", 1.0, 1),
    "saving_vs_fixed": ("saving_vs_fixed", 1.0, 1),
}
STATE_WRITES_KEY = "state_writes_per_minute"


def connection_stats(snapshot: EngineSnapshot) -> dict[str, float]:
    """Return the connection diagnostic figures, rounded (noise must not write state)."""
    stats: dict[str, float] = {}
    for key, (attr, scale, decimals) in STAT_SOURCES.items():
        value = float(getattr(snapshot, attr)) * scale
        stats[key] = round(value, decimals) if math.isfinite(value) else 0.0
    return stats


@dataclass(frozen=True, slots=True)
class PollData:
    """What entities read: current values, unavailable keys, connection figures."""

    values: Mapping[str, Value | None]
    unavailable: frozenset[str]
    stats: Mapping[str, float | None] = field(default_factory=dict)


class StateWriteCounter:
    """Counts entity state writes over a sliding window (per minute)."""

    def __init__(self, window: float = WRITE_RATE_WINDOW) -> None:
        """Count writes over the last ``window`` seconds."""
        self.window = window
        self.total = 0
        self._times: deque[float] = deque()
        self._started: float | None = None

    def add(self, now: float) -> None:
        """Record one state write at ``now``."""
        if self._started is None:
            self._started = now
        self.total += 1
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()

    def per_minute(self, now: float) -> float:
        """Return writes per minute over the window (or since the first write, if shorter)."""
        self._trim(now)
        if self._started is None:
            return 0.0
        span = max(60.0, min(self.window, now - self._started))
        return 60.0 * len(self._times) / span


@dataclass
class AdaptiveModbusData:
    """Runtime data of one config entry."""

    hub: Hub
    coordinator: AdaptiveModbusCoordinator
    store: LearnedStateStore
    loaded: bool = False  # setup finished: learned state is worth saving
    shut_down: bool = False
    audit: AuditLog = field(default_factory=AuditLog)  # every change, loop or user
    optimizer: OptimizerLike | None = None  # the optimization loop
    charts: ChartManager | None = None  # set by the image platform

    @property
    def analytics(self) -> Analytics:
        """Analytics of the connection (fed by the coordinator after every cycle)."""
        return self.coordinator.analytics

    def registers(
        self, platform: Platform
    ) -> list[tuple[str, UnitInfo, RegisterDefinition]]:
        """(engine key, unit, definition) of every register a platform shows."""
        from .descriptions import platform_for  # noqa: PLC0415 - HA platforms load late

        units = {unit.unit_id: unit for unit in self.hub.units}
        return [
            (uid, units[unit_id], definition)
            for uid, (unit_id, definition) in self.hub.definitions.items()
            if platform_for(definition) is platform
        ]


type AdaptiveModbusConfigEntry = ConfigEntry[AdaptiveModbusData]


class AdaptiveModbusCoordinator(DataUpdateCoordinator[PollData]):
    """Drives one connection's poll engine."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: AdaptiveModbusConfigEntry,
        hub: Hub,
        store: LearnedStateStore | None = None,
    ) -> None:
        """Set up the coordinator of one connection."""
        self.hub = hub
        self.entry_id: str = entry.entry_id
        self.engine = hub.engine
        self.clock = hub.clock
        self.store = store
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {hub.title}",
            update_interval=None,  # we own the timer: see _async_schedule_wake
            always_update=False,
        )
        self.state_writes = StateWriteCounter()
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.cycles = 0
        self.failed_cycles = 0  # cycles in a row in which nothing could be read
        self.first_refresh_done = False
        self.started_at: float | None = None  # clock time of the first cycle
        self.snapshot: EngineSnapshot = self.engine.snapshot()
        self.next_wake: float | None = None  # loop time of the next wake-up, if set
        self.silent_units: set[int] = set()  # units silent while others answer
        self._unit_silent_cycles: dict[int, int] = {}
        self._unit_totals: dict[
            int, tuple[int, int]
        ] = {}  # unit -> (registers read, errors)
        self._stopped = False
        self._unsub_wake: CALLBACK_TYPE | None = None
        # one lock for cycles and the learned-state export (which runs in a thread)
        self._poll_lock = store.lock if store is not None else asyncio.Lock()
        self._poll_task: asyncio.Task[Any] | None = None
        # visualization history, fed after every cycle (persisted sparsely by the store)
        self.history = History()
        self._unobserved: list[CycleResult] = []
        if store is not None:
            store.history = self.history
        # the optimization loop, ticked after cycles (set by setup)
        self.optimizer: OptimizerLike | None = None
        self._tick_task: asyncio.Task[None] | None = None
        # analytics over the same history, fed with it; the anomalies of the cycles
        # fed last are in last_anomalies (for events)
        self.analytics = Analytics(
            self.history, tz=dt_util.get_default_time_zone(), settings=_remedy(hub)
        )
        self.last_anomalies: list[Anomaly] = []
        self._analytics_failed = False
        if store is not None:
            store.analytics = self.analytics

    # ------------------------------------------------------------------ polling
    async def _async_update_data(self) -> PollData:
        async with self._poll_lock:
            if self._stopped:  # a read-now request that waited for an unload
                return self._build_data()
            self._poll_task = asyncio.current_task()
            try:
                return await self._async_poll()
            finally:
                self._poll_task = None
                self._async_schedule_wake()
                self._async_start_tick()

    @callback
    def _async_start_tick(self) -> None:
        """Let the optimization loop do what is due, off the cycle's path.

        One tick at a time; none once stopped. The loop runs heavy work (shadow
        replay) in the executor; a tick that changed the plan sets the wake-up anew.
        """
        entry = self.config_entry
        if (
            entry is None
            or self.optimizer is None
            or self._stopped
            or (self._tick_task is not None and not self._tick_task.done())
        ):
            return
        self._tick_task = entry.async_create_background_task(
            self.hass, self._async_tick(self.optimizer), f"{DOMAIN} optimization tick"
        )

    async def _async_tick(self, optimizer: OptimizerLike) -> None:
        try:
            changed = await optimizer.tick(
                self.clock(), run_in_executor=self.hass.async_add_executor_job
            )
        except Exception:
            _LOGGER.exception("Optimization tick of %s failed", self.hub.title)
            return
        if changed and not self._stopped:
            self.async_reschedule()
            if self.store is not None:
                self.store.async_schedule_save()

    async def async_stop(self) -> None:
        """No more refreshes; cancel one in flight (it must not reconnect after close)."""
        self._stopped = True
        self._async_cancel_wake()
        await self.async_shutdown()
        task = self._poll_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def async_shutdown(self) -> None:
        """Cancel the wake-up timer as well as HA's own (entry unload)."""
        self._stopped = True
        self._async_cancel_wake()
        await super().async_shutdown()

    async def async_read_now(self, uids: Iterable[str]) -> None:
        """Read these registers now (``homeassistant.update_entity``), then refresh."""
        self.engine.request_read(list(uids))
        await self.async_refresh()

    @property
    def anything_read(self) -> bool:
        """Whether any unit has answered a read since the engine started."""
        return any(
            unit.registers_read for unit in self.engine.snapshot().units.values()
        )

    @property
    def untried_units(self) -> set[int]:
        """Units no request has been sent to yet."""
        units = self.engine.snapshot().units
        return {
            unit.unit_id
            for unit in self.hub.units
            if unit.unit_id not in units or units[unit.unit_id].requests == 0
        }

    async def _async_poll(self) -> PollData:
        now = self.clock()
        try:
            result = await self.engine.poll_due(now)
            self._unobserved.append(result)  # to the history with the next snapshot
            # failing: no snapshots
            if len(self._unobserved) > UNAVAILABLE_AFTER_FAILURES:
                self._feed_history(self.engine.snapshot())
        except ModbusError as err:
            # the engine normally reports failures in the result; be safe anyway
            self.failed_cycles += 1
            self._remember_error(
                {"at": now, "kind": err.kind.value, "message": str(err)}
            )
            if (
                not self.first_refresh_done
                or self.failed_cycles >= UNAVAILABLE_AFTER_FAILURES
            ):
                raise self._not_answering(str(err)) from err
            return self._build_data()
        self.cycles += 1
        if self.started_at is None:
            self.started_at = now
        for error in result.errors:
            self._remember_error(error)
        answered = self._count_silent_cycles(result.errors)
        nothing_read = result.registers_read == 0 and bool(result.failed)
        down = nothing_read and self._connection_down(result.errors)
        if down:
            self.failed_cycles += 1
        elif result.registers_read:
            self.failed_cycles = 0
        # (a cycle with nothing due, or one that polled only silent units while
        # others answer, leaves the count as it is)
        self._log_units(answered, connection_down=self.failed_cycles > 0)
        message = result.errors[-1].message if result.errors else "no answer"
        if not self.first_refresh_done:
            if nothing_read:
                raise self._not_answering(message)
            self.first_refresh_done = True
        if self.store is not None and (result.changed or result.requests):
            self.store.async_schedule_save()
        if self.failed_cycles >= UNAVAILABLE_AFTER_FAILURES:
            # every entity unavailable, last_update_success false; HA logs this once
            # and "recovered" once when a cycle reads again
            raise self._not_answering(message)
        return self._build_data()

    def _count_silent_cycles(self, errors: Iterable[Any]) -> set[int]:
        """Count, per unit, the cycles in a row it was asked and did not answer.

        Returns the units that answered in this cycle (a read, or an exception
        response).
        """
        errors = list(errors)
        answered: set[int] = set()
        for unit_id, unit in self.engine.snapshot().units.items():
            before = self._unit_totals.get(unit_id, (0, 0))
            self._unit_totals[unit_id] = (unit.registers_read, unit.errors)
            if unit.registers_read > before[0]:
                answered.add(unit_id)
        silent = {e.unit_id for e in errors if e.kind in _SILENT_KINDS}
        answered |= {e.unit_id for e in errors if e.kind not in _SILENT_KINDS}
        for unit_id in silent - answered:
            self._unit_silent_cycles[unit_id] = (
                self._unit_silent_cycles.get(unit_id, 0) + 1
            )
        for unit_id in answered:
            self._unit_silent_cycles[unit_id] = 0
        return answered

    def _connection_down(self, errors: Iterable[Any]) -> bool:
        """Nothing answers: the connection fails, or every polled unit is silent."""
        if any(e.kind is ErrorKind.CONNECTION for e in errors):
            return True
        polled = {
            r.unit_id for r in self.engine.snapshot().registers.values() if r.enabled
        }
        return all(self._unit_silent_cycles.get(unit_id, 0) > 0 for unit_id in polled)

    def _log_units(self, answered: set[int], *, connection_down: bool) -> None:
        """Log a unit going silent (while others answer) once, and its return once.

        An engine that tracks silent units itself (``snapshot.units_down``) also logs
        their transitions: then its view is taken and nothing is logged twice.
        """
        engine_view = getattr(self.engine.snapshot(), "units_down", None)
        if engine_view is not None:
            self.silent_units = set(engine_view)
            return
        for unit_id, streak in self._unit_silent_cycles.items():
            if (
                streak >= UNAVAILABLE_AFTER_FAILURES
                and unit_id not in self.silent_units
                and not connection_down  # the whole connection: HA logs that once
            ):
                self.silent_units.add(unit_id)
                _LOGGER.warning(
                    "Modbus unit %s of %s is not answering; its entities are unavailable "
                    "until it responds (retried in the background)",
                    unit_id,
                    self.hub.title,
                )
        for unit_id in answered & self.silent_units:
            self.silent_units.discard(unit_id)
            _LOGGER.info("Modbus unit %s of %s answers again", unit_id, self.hub.title)

    def _not_answering(self, message: str) -> UpdateFailed:
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="not_answering",
            translation_placeholders={"title": self.hub.title, "error": message},
        )

    def _remember_error(self, error: Any) -> None:
        if isinstance(error, dict):
            self.recent_errors.append(error)
            return
        self.recent_errors.append(
            {
                "at": error.at,
                "kind": str(error.kind),
                "unit_id": error.unit_id,
                "table": None if error.table is None else str(error.table),
                "address": error.address,
                "count": error.count,
                "message": error.message,
            }
        )

    def _build_data(self) -> PollData:
        snapshot = self.engine.snapshot()
        self.snapshot = snapshot
        self._feed_history(snapshot)
        all_down = self.failed_cycles >= UNAVAILABLE_AFTER_FAILURES
        values: dict[str, Value | None] = {}
        unavailable: set[str] = set()
        for uid, register in snapshot.registers.items():
            values[uid] = register.value
            if (
                all_down
                or register.last_read is None  # never read: nothing to show yet
                or register.failure_streak >= UNAVAILABLE_AFTER_FAILURES
            ):
                unavailable.add(uid)
        now = self.clock()
        stats: dict[str, float | None]
        if self.started_at is not None and now - self.started_at >= STATS_WARMUP:
            stats = dict(connection_stats(snapshot))
            stats[STATE_WRITES_KEY] = round(self.state_writes.per_minute(now), 1)
        else:  # rates over a few seconds are noise: unknown until a minute has passed
            stats = dict.fromkeys((*STAT_SOURCES, STATE_WRITES_KEY))
        return PollData(values=values, unavailable=frozenset(unavailable), stats=stats)

    def _feed_history(self, snapshot: EngineSnapshot) -> None:
        """Give the cycles run since the last snapshot to the visualization history."""
        anomalies: list[Anomaly] = []
        for result in self._unobserved:
            self.history.observe(result, snapshot, self.engine.cost_model())
            try:
                anomalies += self.analytics.observe(result, snapshot)
            # analytics must never stop polling: a bug is logged (traceback once)
            except Exception:  # noqa: BLE001
                _LOGGER.log(
                    logging.DEBUG if self._analytics_failed else logging.ERROR,
                    "Analytics of %s failed (polling goes on)",
                    self.hub.title,
                    exc_info=True,
                )
                self._analytics_failed = True
        self._unobserved.clear()
        self.last_anomalies = anomalies

    # ------------------------------------------------------------------ scheduling
    def seconds_to_next_due(self) -> float:
        """Delay until the engine's next due register (bounded, never negative)."""
        ceiling = max(self.hub.settings.engine.max_interval, MIN_DELAY)
        due = self.engine.next_due()
        if not math.isfinite(due):
            return ceiling
        return min(max(due - self.clock(), MIN_DELAY), ceiling)

    @property
    def stopped(self) -> bool:
        """Whether the coordinator was stopped (unload, HA stop): no more cycles."""
        return self._stopped

    @property
    def wake_scheduled(self) -> bool:
        """Whether the next wake-up is set (False while a cycle runs or once stopped)."""
        return self._unsub_wake is not None

    @callback
    def _async_cancel_wake(self) -> None:
        if self._unsub_wake is not None:
            self._unsub_wake()
            self._unsub_wake = None
        self.next_wake = None

    @callback
    def _async_schedule_wake(self) -> None:
        """Wake at the engine's next due time (replaces a wake-up already set)."""
        self._async_cancel_wake()
        if self._stopped or self.hass.is_stopping:
            return
        delay = self.seconds_to_next_due()
        self.next_wake = self.hass.loop.time() + delay
        self._unsub_wake = async_call_later(
            self.hass, delay, HassJob(self._async_wake, cancel_on_shutdown=True)
        )

    async def _async_wake(self, _now: datetime) -> None:
        self._unsub_wake = None
        self.next_wake = None
        await self.async_refresh()

    @callback
    def async_reschedule(self) -> None:
        """Wake at the new due time after the plan changed (write, enable/disable).

        While a cycle runs nothing is set: the cycle sets the wake-up when it ends.
        """
        if self._unsub_wake is not None:
            self._async_schedule_wake()

    # ------------------------------------------------------------------ commands
    async def async_write(self, uid: str, value: Value, entity_name: str) -> Value:
        """Write a value, read it back (the engine does both), update entities."""
        try:
            result = await self.engine.write(uid, value)
        except (
            AdaptiveModbusError
        ) as err:  # unknown, not writable, value misfit, Modbus
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=write_error_key(err),
                translation_placeholders={
                    "entity": entity_name,
                    "value": str(value),
                    "error": str(err),
                },
            ) from err
        self.async_set_updated_data(self._build_data())
        self.async_reschedule()
        if self.store is not None:
            self.store.async_schedule_save()
        return result

    @callback
    def async_set_enabled(self, uid: str, enabled: bool) -> None:
        """Take a register into or out of the plan."""
        if uid not in self.hub.definitions:
            return
        self.engine.set_enabled(uid, enabled)
        _LOGGER.debug("%s register %s", "Enabled" if enabled else "Disabled", uid)
        self.async_reschedule()

    @callback
    def count_state_write(self) -> None:
        """Count one state write of an entity (for the writes-per-minute figure)."""
        self.state_writes.add(self.clock())


_SILENT_KINDS = (ErrorKind.TIMEOUT, ErrorKind.CONNECTION)


def _remedy(hub: Hub) -> RemedySettings:
    """Return the settings in force, which suggestions are compared with."""
    settings = hub.settings
    # the engine's per-unit limits: the option, or a register map's lower one
    return RemedySettings(
        pause=settings.transport.pause,
        close_after_cycle=settings.transport.close_after_cycle,
        unit_max_registers={
            unit: limit.max_registers
            for unit, limit in hub.engine.config.limits.items()
        },
    )


def write_error_key(err: Exception) -> str:
    """Return the translation key of a failed write: failed, or written but unconfirmed."""
    if isinstance(err, WriteUnconfirmed):  # written; the read-back failed
        return "write_unconfirmed"
    return "write_failed"
