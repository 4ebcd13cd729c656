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
- ``correlation``: registers that move together; a move pulls in its partners
- ``cadence``: a unit's table read when all its registers' urgency says so
- ``cycle``: one poll cycle that never loses a register
- ``snapshot``: the immutable read API; ``state``: learned state export/import/reset
- ``config``: EngineConfig; ``core``: the shared parts, bundled for the others

Registers are identified by ``RegisterSpec.uid`` (``"<unit_id>.<key>"``), so two
devices with the same profile can share a connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
import math
from typing import Any

from .bus import COST_MIN_SAMPLES, COST_SAMPLES, Bus
from .cadence import UnitCadence
from .config import EngineConfig, Tuning
from .core import EngineCore, ReadListener
from .correlation import Correlation
from .cycle import CycleResult, CycleRunner
from .demand import Demand, Viewing
from .errors import EngineUsageError, UnknownRegister
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
from .intervals import IntervalPin, aligned_due
from .observe import Observer
from .patterns import BUCKETS, ActivityProfile
from .planner import CostModel
from .planning import EARLY_FRACTION, Planning
from .registers import RegisterSpec, Value
from .registry import QUARANTINE_FIRST, QUARANTINE_MAX, RegisterState, Registry
from .schedule import BATCH_WINDOW, Clock, EngineClock, HeapEntry, Schedule
from .snapshot import Snapshots
from .state import RESTORED_QUARANTINE_MAX, STATE_VERSION, ImportReport, LearnedState
from .stats import EngineSnapshot, StatsRecorder
from .ticks import TickLock
from .transport import Transport
from .tuning import TuningApi, check_range
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
    "IntervalPin",
    "PollEngine",
    "ReadListener",
    "Tuning",
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
        self._tuning = tuning = Tuning()
        self._writes_in_flight = 0
        self._cycle_listeners: list[Callable[[CycleResult], None]] = []
        self._registry = registry = Registry(registers, config, tuning)
        stats = StatsRecorder()
        self._limits = limits = BlockLimits(config, tuning)
        self._schedule = schedule = Schedule(registry.regs, times, config, tuning)
        core = EngineCore(
            config=config,
            clock=times,
            registry=registry,
            stats=stats,
            schedule=schedule,
            holes=Holes(),
            limits=limits,
            bus=Bus(transport, times, stats, limits),
            tuning=tuning,
        )
        self._core = core
        self._recovery = recovery = UnitRecovery(core)
        # EARLY_FRACTION is read here, so a test can tune it per engine
        self._planning = planning = Planning(core, early_fraction=EARLY_FRACTION)
        self._planner_tuned: dict[str, float] = {}  # set_planner_params
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
        self._correlation = Correlation(core)
        self._ticks = TickLock(core)
        self._cadence = UnitCadence(
            core, riders=lambda: planning.rider_value > 0 and core.config.piggyback
        )
        self._demand = Demand(core, down=recovery.down)
        self._snapshots = Snapshots(core, down=recovery.down, planning=planning)
        self._state = LearnedState(core)
        self._tuning_api = TuningApi(core)
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
        result = await self._cycles.run(started)
        now = self._clock.now()
        self._correlation.end_cycle(started, now)
        self._ticks.end_cycle(result.changed, now)
        self._cadence.after_cycle(
            self._planning.last_tables, started, now, self._planning.cost_model()
        )
        for listener in self._cycle_listeners:
            listener(result)
        return result

    def add_cycle_listener(
        self, listener: Callable[[CycleResult], None]
    ) -> Callable[[], None]:
        """Call ``listener(result)`` after every poll cycle; returns the remover."""
        listeners = self._cycle_listeners
        listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove

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
        self._writes_in_flight += 1
        try:
            return await self._writer.write(uid, value)
        finally:
            self._writes_in_flight -= 1

    @property
    def writing(self) -> bool:
        """Whether a write is in progress (the optimizer waits for it to end)."""
        return self._writes_in_flight > 0

    # -- enable / disable, values ----------------------------------------

    def set_enabled(self, uid: str, enabled: bool) -> None:
        """Stop (or resume) reading a register, e.g. when its entity is disabled."""
        reg = self._registry.regs[uid]
        if reg.enabled == enabled:
            return
        reg.enabled = enabled
        if enabled:
            self._schedule.due_at(reg, self._clock.now())
        else:
            self._schedule.refresh(reg)

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

    # -- pins -------------------------------------------------------------

    def pin_interval(
        self,
        uid: str,
        *,
        interval: float | None = None,
        min_interval: float | None = None,
        max_interval: float | None = None,
    ) -> IntervalPin:
        """Pin a register's interval (``interval``) or its bounds; returns the pin.

        Replaces an earlier pin of the register. The interval model (and anything
        tuning the engine) stays inside the pin; time-of-week patterns too. A
        register that is now due sooner than its next read is rescheduled at once.
        Raises :class:`UnknownRegister` for an unknown ``uid`` and
        :class:`EngineUsageError` for a pin that pins nothing or has bad numbers.
        """
        reg = self._registry.regs.get(uid)
        if reg is None:
            raise UnknownRegister(f"unknown register: {uid}")
        pin = IntervalPin(interval, min_interval, max_interval)
        reg.pin = pin
        self._repin(reg)
        return pin

    def unpin(self, uid: str) -> IntervalPin | None:
        """Remove a register's pin (its configured bounds apply again).

        Returns the pin removed (None when there was none); raises
        :class:`UnknownRegister` for an unknown ``uid``.
        """
        reg = self._registry.regs.get(uid)
        if reg is None:
            raise UnknownRegister(f"unknown register: {uid}")
        pin, reg.pin = reg.pin, None
        if pin is not None:
            self._repin(reg)
        return pin

    def pins(self) -> dict[str, IntervalPin]:
        """Return the pinned registers' pins by uid."""
        return {
            uid: reg.pin
            for uid, reg in self._registry.regs.items()
            if reg.pin is not None
        }

    def _repin(self, reg: RegisterState) -> None:
        """Apply a changed pin: new bounds, and a sooner read when they ask for one."""
        self._registry.apply_pin(reg)
        now = self._clock.now()
        if (
            not reg.enabled
            or reg.quarantined_until is not None
            or reg.spec.uid in self._schedule.unscheduled
        ):
            return  # rescheduled with the new bounds when it is read or released
        limits = reg.model.limits
        if not self.config.adaptive:
            interval = limits.clamp(self.config.fixed_interval)
        else:
            interval = limits.clamp(reg.effective_interval or reg.model.interval)
        reg.effective_interval = interval
        last = now if reg.last_read is None else reg.last_read
        due = max(aligned_due(last, interval), now)
        if due < reg.next_due:
            self._schedule.due_at(reg, due)
        else:
            self._schedule.refresh(reg)

    def value(self, uid: str) -> Value | None:
        """Last value read for a register (None before the first read)."""
        return self._registry.regs[uid].value

    def specs(self) -> tuple[RegisterSpec, ...]:
        """Return the register specs, in the order they were given."""
        return tuple(reg.spec for reg in self._registry.regs.values())

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

    def learned_block_limits(self) -> dict[int, int]:
        """Each unit's learned largest read (registers), where below its configured cap."""
        return {
            unit: min(learned.max_registers, self._limits.cap(unit))
            for unit, learned in self._limits.learned.items()
            if learned.max_registers < self._limits.cap(unit)
        }

    def forget_block_limit(self, unit_id: int) -> None:
        """Forget a unit's learned largest read (its configured one is about to change)."""
        self._limits.learned.pop(unit_id, None)

    def block_limit_cap(self, unit_id: int) -> int:
        """Return a unit's configured largest read (registers), before any learning."""
        return self._limits.cap(unit_id)

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

    # -- parameter API (optimization loop, users) -------------------------

    def tuning(self) -> dict[str, Any]:
        """Return the run-time parameters in force as a JSON-safe dict.

        What :meth:`apply_tuning` takes back; empty sections mean the defaults.
        """
        out = self._tuning_api.export()
        out["planner"] = dict(self._planner_tuned)
        return out

    def apply_tuning(self, data: Mapping[str, Any]) -> list[str]:
        """Apply parameters exported by :meth:`tuning`; returns what was set aside."""
        warnings = self._tuning_api.apply(data)
        planner = data.get("planner") if isinstance(data, Mapping) else None
        if isinstance(planner, Mapping) and planner:
            try:
                self.set_planner_params(
                    rider_value=planner.get("rider_value"),
                    early_fraction=planner.get("early_fraction"),
                )
            except (EngineUsageError, TypeError, ValueError) as err:
                warnings.append(f"planner tuning set aside ({err})")
        return warnings

    def planner_params(self) -> tuple[float, float]:
        """Return (free riders' value, early-read fraction) in force."""
        return self._planning.rider_value, self._planning.early_fraction

    def set_planner_params(
        self,
        *,
        rider_value: float | None = None,
        early_fraction: float | None = None,
    ) -> tuple[float, float]:
        """Set the free riders' value (0-8 requests) and the early-read fraction (0-1).

        A read grows over neighbours whose staleness is worth ``rider_value`` times
        a request (0: no riders); a neighbour joins a planned read early when at
        most ``early_fraction`` of its interval is left. None leaves one as it is.
        Returns both before; tuned values are exported by :meth:`tuning`.
        """
        before = self.planner_params()
        if rider_value is not None:
            value = check_range("rider_value", rider_value, (0.0, 8.0))
            self._planning.rider_value = value
            self._planner_tuned["rider_value"] = value
        if early_fraction is not None:
            value = check_range("early_fraction", early_fraction, (0.0, 1.0))
            self._planning.early_fraction = value
            self._planner_tuned["early_fraction"] = value
        return before

    def interval_bounds(self, uid: str) -> tuple[float, float]:
        """Return a register's interval bounds in force (min, max) in seconds."""
        limits = self._reg(uid).model.limits
        return limits.min_interval, limits.max_interval

    def set_interval_bounds(
        self,
        uid: str,
        *,
        min_interval: float | None = None,
        max_interval: float | None = None,
        clear: bool = False,
    ) -> tuple[float, float]:
        """Set a register's interval bounds (either or both); ``clear``: back to config.

        Returns the bounds in force before. The interval is clamped into the new
        bounds at once and the register rescheduled.
        """
        return self._tuning_api.set_interval_bounds(
            self._reg(uid), min_interval, max_interval, clear=clear
        )

    def set_step_budget(self, uid: str, budget: float | None) -> float:
        """Set a register's step budget (0 < budget <= 0.5; None: default).

        The share of time a register may show a stale level after an unforeseeable
        step; a larger budget lets registers with steps rest longer. Returns the
        budget before.
        """
        return self._tuning_api.set_step_budget(self._reg(uid), budget)

    def set_noise_margin(self, uid: str, margin: float | None) -> float:
        """Set how many noise² a register's rate estimate discounts (0-20; None: default).

        Returns the margin before.
        """
        return self._tuning_api.set_noise_margin(self._reg(uid), margin)

    def tolerance(self, uid: str) -> float:
        """Return a register's tolerance in force."""
        return self._reg(uid).tolerance

    def set_tolerance(self, uid: str, tolerance: float) -> float:
        """Change a register's tolerance (a user's promise: only on approval).

        Returns the tolerance before; the learned rate and noise are kept.
        """
        return self._tuning_api.set_tolerance(self._reg(uid), tolerance)

    def set_unit_max_registers(self, unit_id: int, count: int | None) -> int:
        """Cap a unit's largest read (1-125; None: the configured limit).

        Returns the limit in force before. A learned limit below the cap stays.
        """
        return self._tuning_api.set_unit_max_registers(unit_id, count)

    def set_unit_max_gap(self, unit_id: int, gap: int | None) -> int | None:
        """Set the largest gap of unwanted registers a unit's reads span (None: cost).

        Returns the gap set before (None: from the cost model).
        """
        return self._tuning_api.set_unit_max_gap(unit_id, gap)

    def fitted_cost_model(self) -> CostModel | None:
        """Return the cost model fitted to this connection's measured latencies."""
        return self._core.bus.cost.model()

    def cost_samples(self) -> list[tuple[int, float]]:
        """Return the (registers, latency s) samples the fitted cost model comes from."""
        return list(self._core.bus.cost.samples)

    def seed_cost_samples(self, samples: Iterable[tuple[int, float]]) -> None:
        """Fit the cost model from another engine's samples (a shadow replay)."""
        self._core.bus.cost.seed(samples)

    def set_cost_model(self, model: CostModel | None) -> CostModel:
        """Plan with ``model`` (None: the configured or fitted one); returns the one before."""
        before = self.cost_model()
        self._tuning.cost = model
        return before

    def set_pattern_params(
        self, *, strength: float | None = None, lead: float | None = None
    ) -> tuple[float, float]:
        """Set how strongly (0-2) and how early (0-7200 s) patterns tighten intervals.

        ``strength`` is the exponent on the time-of-week factor (0: off, 1: as
        learned). Returns (strength, lead) before.
        """
        return self._tuning_api.set_pattern_params(strength, lead)

    def quiet_hour(self) -> int | None:
        """Return the local hour of day (0-23) with the least learned activity.

        Summed over every register's time-of-week profile; None while no hour has
        been learned (profiles need data from two weeks).
        """
        totals = [0.0] * 24
        known = [False] * 24
        for reg in self._registry.regs.values():
            for index in range(BUCKETS):
                activity = reg.profile.activity(index)
                if activity is not None:
                    totals[index % 24] += activity
                    known[index % 24] = True
        hours = [hour for hour in range(24) if known[hour]]
        return min(hours, key=lambda hour: totals[hour]) if hours else None

    def add_read_listener(self, listener: ReadListener) -> Callable[[], None]:
        """Call ``listener(uid, t, value, previous_read)`` on every register read.

        ``t`` and ``previous_read`` are engine (monotonic) times. Returns the remover.
        """
        listeners = self._core.read_listeners
        listeners.append(listener)

        def remove() -> None:
            if listener in listeners:
                listeners.remove(listener)

        return remove

    def _reg(self, uid: str) -> RegisterState:
        reg = self._registry.regs.get(uid)
        if reg is None:
            raise UnknownRegister(f"unknown register: {uid}")
        return reg

    # -- internals that tests reach for -----------------------------------

    @property
    def _heap(self) -> list[HeapEntry]:
        return self._schedule.heap

    def _is_live(self, entry: HeapEntry) -> bool:
        return self._schedule.is_live(entry)
