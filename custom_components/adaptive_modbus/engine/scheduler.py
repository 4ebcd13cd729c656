"""PollEngine: decide what is due, read it in the fewest requests, learn from it.

One poll cycle: pop the registers that are due (a heap keyed by due time) ->
plan block reads with the optimal planner -> execute them one by one on the
transport -> decode -> feed each register's interval model and activity profile
-> schedule each register's next read on its aligned interval.

PollEngine is the public face; each job is done by a part of its own:

- ``registry``: each register's state, and the indexes to find registers by address
- ``schedule``: engine time (monotonic) vs wall time, the due-time heap, retries
- ``unit_recovery``: units that stop answering are parked and probed until back
- ``planning``: due registers -> block reads, with neighbours that are due soon
- ``bus``: every request timed, counted and recorded; the fitted cost model
- ``execute``: reading blocks; bisecting, splitting and quarantining on faults
- ``faults``: learned holes and block limits, and when they are checked again
- ``observe``: a read's data or failure applied to registers (learning, reschedule)
- ``write``: writes that jump the queue and are read back
- ``cycle``: one poll cycle that never loses a register
- ``snapshot``: the immutable read API; ``state``: learned state export/import/reset
- ``config``: EngineConfig; ``core``: the shared parts, bundled for the others

Registers are identified by ``RegisterSpec.uid`` (``"<unit_id>.<key>"``), so two
devices with the same profile can share a connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
import math
from typing import Any

from .bus import COST_MIN_SAMPLES, COST_SAMPLES, Bus
from .config import EngineConfig
from .core import EngineCore
from .cycle import CycleResult, CycleRunner
from .demand import Demand, Viewing
from .errors import UnknownRegister
from .execute import EXC_ILLEGAL_VALUE, Executor
from .faults import (
    HOLE_VERIFY_FAILURE,
    HOLE_VERIFY_FIRST,
    HOLE_VERIFY_MAX,
    LIMIT_RETRY_FIRST,
    LIMIT_RETRY_MAX,
    NO_VERDICT_RETRY,
    BlockLimits,
    HoleKey,
    Holes,
)
from .observe import Observer
from .patterns import ActivityProfile
from .planner import CostModel
from .planning import EARLY_FRACTION, Planning
from .registers import RegisterSpec, Value
from .registry import QUARANTINE_FIRST, QUARANTINE_MAX, Registry
from .schedule import BATCH_WINDOW, Clock, EngineClock, HeapEntry, Schedule
from .snapshot import Snapshots
from .state import RESTORED_QUARANTINE_MAX, STATE_VERSION, ImportReport, LearnedState
from .stats import EngineSnapshot, StatsRecorder
from .transport import Transport
from .unit_recovery import UNIT_PROBE_FIRST, UNIT_PROBE_MAX, UnitRecovery
from .write import Writer

__all__ = [
    "BATCH_WINDOW",
    "COST_MIN_SAMPLES",
    "COST_SAMPLES",
    "EARLY_FRACTION",
    "EXC_ILLEGAL_VALUE",
    "HOLE_VERIFY_FAILURE",
    "HOLE_VERIFY_FIRST",
    "HOLE_VERIFY_MAX",
    "LIMIT_RETRY_FIRST",
    "LIMIT_RETRY_MAX",
    "NO_VERDICT_RETRY",
    "QUARANTINE_FIRST",
    "QUARANTINE_MAX",
    "RESTORED_QUARANTINE_MAX",
    "STATE_VERSION",
    "UNIT_PROBE_FIRST",
    "UNIT_PROBE_MAX",
    "ActivityProfile",
    "Clock",
    "CycleResult",
    "EngineConfig",
    "HoleKey",
    "ImportReport",
    "PollEngine",
]


class PollEngine:
    """Adaptive Modbus poller for the registers of one connection."""

    def __init__(
        self,
        registers: Sequence[RegisterSpec],
        transport: Transport,
        clock: Clock,
        config: EngineConfig | None = None,
        *,
        monotonic: Clock | None = None,
    ) -> None:
        """Set up the engine for ``registers`` on ``transport``.

        ``clock`` is wall time (time-of-week patterns, times shown to users);
        ``monotonic`` (default: ``clock``) drives due times, intervals and backoffs,
        so a wall-clock step (NTP, DST tools, a user) never stalls polling.
        """
        self.config = config = config or EngineConfig()
        self._clock = times = EngineClock(clock, monotonic)
        self._registry = registry = Registry(registers, config)
        stats = StatsRecorder()
        self._limits = limits = BlockLimits(config)
        self._schedule = schedule = Schedule(registry.regs, times, config)
        core = EngineCore(
            config=config,
            clock=times,
            registry=registry,
            stats=stats,
            schedule=schedule,
            holes=Holes(),
            limits=limits,
            bus=Bus(transport, times, stats, limits),
        )
        self._recovery = recovery = UnitRecovery(core)
        # EARLY_FRACTION is read here, so a test can tune it per engine
        self._planning = planning = Planning(core, early_fraction=EARLY_FRACTION)
        observer = Observer(core)
        executor = Executor(core, observer=observer, planning=planning)
        self._cycles = CycleRunner(
            core,
            recovery=recovery,
            planning=planning,
            executor=executor,
            observer=observer,
        )
        self._writer = Writer(core, observer=observer)
        self._demand = Demand(core, down=recovery.down)
        self._snapshots = Snapshots(core, down=recovery.down, planning=planning)
        self._state = LearnedState(core)
        now = self._clock.now()
        for reg in registry.regs.values():
            schedule.due_at(reg, now)

    # -- the poll cycle ---------------------------------------------------

    def next_due(self) -> float:
        """Return the wall time at which the next register or unit probe is due.

        inf when none is enabled. Scheduled on the monotonic clock, so
        ``next_due() - clock()`` is the right delay even after a wall-clock step.
        """
        due = min(
            self._schedule.first_due(self._recovery.down), self._recovery.next_probe()
        )
        return self._clock.to_wall(due) if math.isfinite(due) else due

    def cost_model(self) -> CostModel:
        """Return the cost model the planner uses now (configured, fitted, or default)."""
        return self._planning.cost_model()

    async def poll_due(self, now: float | None = None) -> CycleResult:
        """Run one cycle: read what is due at ``now`` (wall time; default: the clock).

        Never leaves a register out of the schedule: whatever happens in the cycle
        (an unexpected exception, a cancellation), every register it took is
        rescheduled. An unexpected exception is logged once with its traceback,
        counted (``Totals.internal_errors``) and reported in the result.
        """
        started = self._clock.now() if now is None else self._clock.from_wall(now)
        return await self._cycles.run(started)

    # -- demand-driven polling --------------------------------------------

    def set_viewed(self, unit_id: int, viewers: int) -> None:
        """Set how many live views watch unit ``unit_id`` (0: none).

        While a unit has viewers, its registers' upper interval bound shrinks to
        ``config.viewed_factor`` of ``max_interval`` (the reason shows as "viewed");
        it relaxes when the count drops to 0. Raises :class:`EngineUsageError` for a
        unit without registers or a negative count.
        """
        self._demand.set_viewed(unit_id, viewers)

    def viewers(self, unit_id: int) -> int:
        """Return the live viewers of a unit (0 when none)."""
        return self._demand.viewers(unit_id)

    def viewing(self, unit_id: int) -> Viewing:
        """Count one viewer of ``unit_id`` for a ``with`` block."""
        return Viewing(self._demand, unit_id)

    # -- writes -----------------------------------------------------------

    async def write(self, uid: str, value: Value) -> Value:
        """Write a value (jumps the read queue), read it back, poll it closely again.

        Raises the transport's :class:`ModbusError` when the write failed, and
        :class:`WriteUnconfirmed` (carrying ``value``) when the device took the write
        but reading it back failed: the write must not be repeated for that.
        """
        return await self._writer.write(uid, value)

    # -- enable / disable, values ----------------------------------------

    def set_enabled(self, uid: str, enabled: bool) -> None:
        """Stop (or resume) reading a register, e.g. when its entity is disabled."""
        reg = self._registry.regs[uid]
        if reg.enabled == enabled:
            return
        reg.enabled = enabled
        if enabled:
            self._schedule.due_at(reg, self._clock.now())

    def request_read(self, uids: Iterable[str]) -> None:
        """Make these registers due now.

        The next :meth:`poll_due` reads them, planned together with whatever else is
        due (for a unit that is down: its probe is due now, and its answer brings
        every register back). Raises ValueError naming unknown uids.
        """
        regs = self._registry.regs
        wanted = list(dict.fromkeys(uids))
        unknown = [uid for uid in wanted if uid not in regs]
        if unknown:
            raise UnknownRegister(f"unknown registers: {', '.join(unknown)}")
        now = self._clock.now()
        for uid in wanted:
            reg = regs[uid]
            if reg.enabled:
                self._recovery.probe_soon(reg.spec.unit_id, now)
            if reg.enabled and reg.next_due > now:
                self._schedule.due_at(reg, now)

    def value(self, uid: str) -> Value | None:
        """Last value read for a register (None before the first read)."""
        return self._registry.regs[uid].value

    @property
    def uids(self) -> tuple[str, ...]:
        """All register uids, in the order they were given."""
        return tuple(self._registry.regs)

    # -- read API ---------------------------------------------------------

    def snapshot(self) -> EngineSnapshot:
        """Immutable view of the engine for sensors, diagnostics and visualization.

        ``at`` and the recent records are in engine (monotonic) time, ``wall_at`` is the
        wall time at ``at``; register times and unit states are wall times (display).
        """
        return self._snapshots.build(self._cycles.last_internal_error)

    # -- persistence ------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Return the learned state as a JSON-safe, versioned dict.

        Quarantine ends are in wall time, so they mean the same after a restart, when
        the monotonic clock starts over.
        """
        return self._state.export()

    def import_state(self, data: Mapping[str, Any]) -> ImportReport:
        """Restore learned state.

        The report says how many registers really got theirs back and what had to be
        set aside or capped.
        """
        return self._state.restore(data)

    def reset_learning(
        self, *, unit_id: int | None = None, uid: str | None = None
    ) -> None:
        """Forget what was learned, for one register (``uid``), one unit, or everything.

        Resets interval models, activity patterns and quarantines of the registers in
        scope (they are read again at once), the holes learned in their addresses
        (a unit's or all, or those inside the register's span), and the learned block
        limit of the unit (or of all units; not for a single register). Raises
        :class:`UnknownRegister` for an unknown ``uid`` and :class:`EngineUsageError`
        when ``uid`` is not on ``unit_id``.
        """
        self._state.reset(unit_id=unit_id, uid=uid)

    # -- internals that tests reach for -----------------------------------

    @property
    def _heap(self) -> list[HeapEntry]:
        return self._schedule.heap

    def _is_live(self, entry: HeapEntry) -> bool:
        return self._schedule.is_live(entry)
