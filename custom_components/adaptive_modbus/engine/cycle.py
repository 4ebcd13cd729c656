"""One poll cycle: probe down units, read what is due, probe quarantines, check holes.

Never leaves a register out of the schedule: whatever happens in the cycle (an
unexpected exception, a cancellation), every register it took is rescheduled. An
unexpected exception is logged once with its traceback, counted
(``Totals.internal_errors``) and reported in the result.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
import logging
from typing import Any

from .bus import CycleState
from .core import EngineCore
from .execute import Executor
from .observe import Observer
from .planning import Planning
from .registers import Value
from .stats import CycleRecord, ErrorRecord
from .unit_recovery import UnitRecovery

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one call of :meth:`PollEngine.poll_due` did."""

    started: float
    duration: float
    changed: Mapping[str, Value | None]  # None: the register sent no value (NaN, inf)
    failed: frozenset[str]
    requests: int
    registers_read: int
    errors: tuple[ErrorRecord, ...]
    # units that stopped answering in this cycle / answered a probe again: each unit
    # appears once per outage in each, so a caller can log "down" and "back" once
    units_down: frozenset[int] = frozenset()
    units_back: frozenset[int] = frozenset()
    # an unexpected (non-Modbus) exception hit this cycle: its repr; the registers it
    # kept from being read are in ``failed`` and rescheduled like any failed read
    internal_error: str | None = None


class CycleRunner:
    """Runs poll cycles over the engine's parts."""

    def __init__(
        self,
        core: EngineCore,
        *,
        recovery: UnitRecovery,
        planning: Planning,
        executor: Executor,
        observer: Observer,
    ) -> None:
        """Run cycles over the engine's parts."""
        self._core = core
        self._regs = core.registry.regs
        self._recovery = recovery
        self._planning = planning
        self._executor = executor
        self._observer = observer
        self._internal_logged: set[str] = set()
        self.last_internal_error: str | None = None

    async def run(self, started: float) -> CycleResult:
        """One cycle at engine time ``started``."""
        cycle = CycleState()
        answered = self._core.stats.unit_reads()
        units_back: set[int] = set()
        executor = self._executor
        try:
            units_back = await self._recovery.probe_due(started, cycle)
            schedule = self._core.schedule
            due = schedule.pop_due(started, self._recovery.down)
            probes = [reg for reg in due if reg.quarantined_until is not None]
            regular = [reg for reg in due if reg.quarantined_until is None]
            uids = schedule.popped  # the uids of due, as the schedule has them
            if probes:
                uids = uids - {reg.spec.uid for reg in probes}
            for block in self._planning.plan_with_early(regular, started, uids):
                if cycle.connection_lost:
                    self._observer.fail(block.keys, cycle, started)
                    continue
                await self._guarded(executor.execute(block, cycle), block.keys, cycle)
            for reg in probes:
                if cycle.connection_lost:
                    self._observer.fail((reg.spec.uid,), cycle, started)
                else:
                    await self._guarded(
                        executor.probe(reg, cycle), (reg.spec.uid,), cycle
                    )
            await self._guarded(executor.check_holes(cycle), (), cycle)
        # a bug must not stop polling: it is counted and logged (traceback once)
        except Exception as err:  # noqa: BLE001
            self._internal_error(err, cycle)
        except BaseException:  # cancelled: what was taken is still due
            self._reschedule_taken(cycle, failed=False)
            raise
        finally:
            self._reschedule_taken(cycle, failed=True)
        await self._core.bus.end_cycle()
        units_down = self._recovery.note_silent(started, cycle, answered)
        duration = max(0.0, self._core.clock.now() - started)
        self._core.stats.add_cycle(
            CycleRecord(
                started=started,
                duration=duration,
                requests=cycle.requests,
                registers_read=cycle.registers_read,
                changed=len(cycle.changed),
                errors=len(cycle.errors),
            )
        )
        return CycleResult(
            started=started,
            duration=duration,
            changed=dict(cycle.changed),
            failed=frozenset(cycle.failed),
            requests=cycle.requests,
            registers_read=cycle.registers_read,
            errors=tuple(cycle.errors),
            units_down=frozenset(units_down),
            units_back=frozenset(units_back),
            internal_error=cycle.internal_error,
        )

    async def _guarded(
        self, step: Coroutine[Any, Any, object], keys: Sequence[str], cycle: CycleState
    ) -> None:
        """Run one step of a cycle; an unexpected exception fails only its keys."""
        try:
            await step
        # a bug must not stop polling: it is counted and logged (traceback once)
        except Exception as err:  # noqa: BLE001
            self._internal_error(err, cycle)
            now = self._core.clock.now()
            for uid in keys:
                if uid in self._core.schedule.unscheduled:
                    self._observer.fail((uid,), cycle, now)

    def _internal_error(self, err: Exception, cycle: CycleState) -> None:
        """Count an unexpected exception; log its traceback the first time only."""
        text = f"{type(err).__name__}: {err}"
        cycle.internal_error = text
        self.last_internal_error = text
        self._core.stats.add_internal_error()
        signature = f"{type(err).__module__}.{type(err).__qualname__}"
        if signature not in self._internal_logged and len(self._internal_logged) < 32:
            self._internal_logged.add(signature)
            _LOGGER.error(
                "Unexpected error in a poll cycle (polling goes on; logged once): %s",
                text,
                exc_info=err,
            )
        else:
            _LOGGER.debug("Unexpected error in a poll cycle again: %s", text)

    def _reschedule_taken(self, cycle: CycleState, *, failed: bool) -> None:
        """Put every register taken this cycle and not yet rescheduled back on the heap.

        As a failed read (retry with backoff) or, when cancelled, due at once.
        """
        unscheduled = self._core.schedule.unscheduled
        if not unscheduled:
            return
        now = self._core.clock.now()
        for uid in list(unscheduled):
            if failed:
                self._observer.fail((uid,), cycle, now)
            else:
                self._core.schedule.due_at(self._regs[uid], now)
        unscheduled.clear()
