"""PollEngine: decide what is due, read it in the fewest requests, learn from it.

One poll cycle: pop the registers that are due (a heap keyed by due time) ->
plan block reads with the optimal planner -> execute them one by one on the
transport -> decode -> feed each register's interval model and activity profile
-> schedule each register's next read on its aligned interval.

Registers are identified by ``RegisterSpec.uid`` (``"<unit_id>.<key>"``), so two
devices with the same profile can share a connection.

Failing blocks: an illegal-address or device-failure answer bisects the block at
once. When the halves succeed, the addresses the failing block read through are
learned as a hole the planner does not span; a single register that fails on its
own is quarantined and re-probed with exponential backoff. The rest of the cycle's
results are applied either way. Nothing learned from a fault is permanent: a hole
is read alone again after a backoff (``HOLE_VERIFY_*``: long for an illegal
address, short for a device failure) and forgotten when the device answers; a
quarantined register is released when its probe answers. A probe or check that
gets no verdict (timeout, lost connection, busy) is asked again later, never at
a time already past.

Block limits: a read refused with exception 3 (illegal data value) or left
unanswered while smaller reads of the same unit answer halves that unit's largest
read (``EngineConfig.unit_max_registers`` and ``limits`` cap it from the start); a
larger size is tried again after a backoff (``LIMIT_RETRY_*``).

Holes, quarantines and learned limits are part of the exported state, so a restart
does not relearn them; :meth:`PollEngine.reset_learning` forgets them on demand.

Units that stop answering: a unit whose reads in a cycle all fail with timeouts or
connection errors is down. Its registers are parked (not retried one by one) and a
single probe, its smallest read, runs on a short bounded backoff (UNIT_PROBE_FIRST
doubling to UNIT_PROBE_MAX); when it answers, every register of the unit is due at
once. CycleResult.units_down / units_back report each transition once.

Clocks: due times, intervals and backoffs run on an injected monotonic clock; the
wall clock is used only for time-of-week patterns and for times shown to users.
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from .errors import EngineUsageError, ErrorKind, ModbusError, UnknownRegister, WriteUnconfirmed
from .intervals import STATE_VERSION as MODEL_STATE_VERSION
from .intervals import IntervalLimits, IntervalModel, Reason, aligned_due, quantize
from .patterns import STATE_VERSION as PROFILE_STATE_VERSION
from .patterns import ActivityProfile
from .planner import (
    DEFAULT_LIMITS,
    PROTOCOL_MAX_REGISTERS,
    BlockRead,
    CostModel,
    DeviceLimits,
    plan_reads,
)
from .registers import RegisterSpec, Table, Value
from .stats import (
    ClusterSnapshot,
    CycleRecord,
    EngineSnapshot,
    ErrorRecord,
    IntervalChange,
    RegisterSnapshot,
    RequestRecord,
    StatsRecorder,
    UnitStatus,
    sorted_snapshots,
)
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

STATE_VERSION = 1
QUARANTINE_FIRST = 300.0  # seconds before a quarantined register is probed again
QUARANTINE_MAX = 6 * 3600.0
HOLE_VERIFY_FIRST = 6 * 3600.0  # an address refused as illegal is read alone again after this
HOLE_VERIFY_FAILURE = QUARANTINE_FIRST  # ... and one learned from a device failure (code 4)
HOLE_VERIFY_MAX = 24 * 3600.0
NO_VERDICT_RETRY = QUARANTINE_FIRST  # a hole check that got no answer is asked again after this
LIMIT_RETRY_FIRST = 3600.0  # a larger read than the learned limit is tried again after this
LIMIT_RETRY_MAX = 24 * 3600.0
EXC_ILLEGAL_VALUE = 3  # for reads: the quantity (or range) was refused
BATCH_WINDOW = 0.25  # registers due within this many seconds ride in the same cycle
EARLY_FRACTION = 0.5  # a neighbour this close to due (share of its interval) is read early
COST_SAMPLES = 64  # requests kept for fitting the connection's cost model
COST_MIN_SAMPLES = 8
# A unit that stops answering (timeouts, connection errors) is "down": its registers are
# parked and one probe (its smallest read) is sent UNIT_PROBE_FIRST s later, then at
# doubling intervals up to UNIT_PROBE_MAX s. The moment a probe answers, every register
# of the unit is due at once: values return at most UNIT_PROBE_MAX s (plus one cycle)
# after the device does, and a 10 min outage costs about 25 requests per unit.
UNIT_PROBE_FIRST = 5.0
UNIT_PROBE_MAX = 30.0
# restored quarantines never last longer than this from the restart (absurd or future
# timestamps in a stored state are capped, not trusted)
RESTORED_QUARANTINE_MAX = QUARANTINE_MAX
_SILENT_KINDS = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION})

Clock = Callable[[], float]
HoleKey = tuple[int, Table]


@dataclass(frozen=True)
class EngineConfig:
    """How the engine polls. Per-register tolerance and interval overrides win."""

    min_interval: float = 5.0
    max_interval: float = 300.0
    default_tolerance: float = 0.0  # used for numeric registers whose spec has tolerance 0
    adaptive: bool = True
    fixed_interval: float = 30.0  # adaptive off: every register every fixed_interval
    merge_reads: bool = True  # False: one request per register (HA core's way)
    piggyback: bool = True  # registers inside a block's span are refreshed for free
    patterns: bool = True  # time-of-week activity profiles scale intervals
    tz: tzinfo | None = None  # local time of the patterns' hours (e.g. HA's zone); None: UTC
    limits: Mapping[int, DeviceLimits] = field(default_factory=dict)  # per unit id
    unit_max_registers: Mapping[int, int] = field(default_factory=dict)  # per unit id, 1-125
    cost: CostModel | None = None  # None: fitted to the measured latency of this connection

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise EngineUsageError("need 0 < min_interval <= max_interval")
        if self.fixed_interval <= 0:
            raise EngineUsageError("fixed_interval must be positive")
        for unit, count in self.unit_max_registers.items():
            if not 1 <= count <= PROTOCOL_MAX_REGISTERS:
                raise EngineUsageError(
                    f"unit {unit}: max registers per read must be 1-{PROTOCOL_MAX_REGISTERS}, "
                    f"got {count}"
                )


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


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :meth:`PollEngine.import_state` really restored."""

    restored: int  # registers whose learned state was applied
    warnings: list[str]


@dataclass
class _UnitDown:
    """A unit that stopped answering (engine time)."""

    since: float
    next_probe: float
    backoff: float = UNIT_PROBE_FIRST
    probes: int = 0


@dataclass
class _Register:
    """Mutable per-register state (private to the engine)."""

    spec: RegisterSpec
    model: IntervalModel
    profile: ActivityProfile
    tolerance: float
    enabled: bool = True
    value: Value | None = None
    last_read: float | None = None
    last_change: float | None = None
    next_due: float = 0.0
    effective_interval: float = 0.0
    pattern_factor: float = 1.0
    reads: int = 0
    changes: int = 0
    errors: int = 0
    failure_streak: int = 0
    quarantined_until: float | None = None
    quarantine_backoff: float = QUARANTINE_FIRST
    heap_seq: int = 0  # sequence number of the one live heap entry


@dataclass
class _HoleCheck:
    """When a learned hole (a run of addresses) is read alone again."""

    kind: ErrorKind  # what taught it: ILLEGAL_ADDRESS (strong) or DEVICE_FAILURE
    verify_at: float
    backoff: float


@dataclass
class _UnitLimit:
    """A unit's learned largest read (registers) and when a larger one is tried."""

    max_registers: int
    retry_at: float
    backoff: float = LIMIT_RETRY_FIRST


@dataclass
class _Cycle:
    """Accumulates the outcome of one cycle."""

    changed: dict[str, Value | None] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    errors: list[ErrorRecord] = field(default_factory=list)
    requests: int = 0
    registers_read: int = 0
    dead_units: set[int] = field(default_factory=set)
    connection_lost: bool = False
    answered: dict[int, int] = field(default_factory=dict)  # unit -> largest read that answered
    halved: set[int] = field(default_factory=set)  # units whose limit a timeout halved
    internal_error: str | None = None


class _CostEstimator:
    """Fits latency = overhead + per_unit * count over recent successful reads."""

    def __init__(self) -> None:
        self.samples: deque[tuple[int, float]] = deque(maxlen=COST_SAMPLES)
        self._fresh = 0  # samples since the last fit
        self._model: CostModel | None = None

    def add(self, count: int, latency: float) -> None:
        self.samples.append((count, latency))
        self._fresh += 1

    def model(self) -> CostModel | None:
        """The fitted model, refitted after every COST_MIN_SAMPLES new samples."""
        if self._fresh >= COST_MIN_SAMPLES:
            self._fresh = 0
            self._model = self._fit()
        return self._model

    def _fit(self) -> CostModel | None:
        if len(self.samples) < COST_MIN_SAMPLES:
            return None
        n = len(self.samples)
        mean_x = sum(c for c, _ in self.samples) / n
        mean_y = sum(lat for _, lat in self.samples) / n
        var_x = sum((c - mean_x) ** 2 for c, _ in self.samples)
        if mean_y <= 0:
            return None
        slope = 0.0
        if var_x > 0:
            cov = sum((c - mean_x) * (lat - mean_y) for c, lat in self.samples)
            slope = max(0.0, cov / var_x)
        overhead = max(mean_y - slope * mean_x, 0.1 * mean_y)
        return CostModel.from_timing(overhead, slope)


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
        """``clock`` is wall time (time-of-week patterns, times shown to users);
        ``monotonic`` (default: ``clock``) drives due times, intervals and backoffs,
        so a wall-clock step (NTP, DST tools, a user) never stalls polling."""
        self.config = config or EngineConfig()
        self._transport = transport
        self._wall = clock
        self._clock = monotonic or clock  # engine time: everything scheduled runs on it
        self._stats = StatsRecorder()
        self._cost = _CostEstimator()
        self._holes: dict[HoleKey, set[int]] = {}
        self._hole_checks: dict[tuple[int, Table, int, int], _HoleCheck] = {}
        self._hole_backoffs: dict[tuple[int, Table, int, int], float] = {}  # of expired holes
        self._unit_limits: dict[int, _UnitLimit] = {}
        self._regs: dict[str, _Register] = {}
        for spec in registers:
            if spec.uid in self._regs:
                raise EngineUsageError(f"register {spec.uid} is defined twice")
            self._regs[spec.uid] = self._new_register(spec)
        self._index = self._build_index()
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._unscheduled: set[str] = set()  # popped this cycle, not yet rescheduled
        self._down: dict[int, _UnitDown] = {}
        self._unit_uids: dict[int, list[str]] = {}
        for uid, reg in self._regs.items():
            self._unit_uids.setdefault(reg.spec.unit_id, []).append(uid)
        self._internal_logged: set[str] = set()
        self._last_internal_error: str | None = None
        now = self._clock()
        for reg in self._regs.values():
            reg.next_due = now
            self._push(reg)

    # -- construction -----------------------------------------------------

    def _limits_for(self, spec: RegisterSpec) -> IntervalLimits:
        low = spec.min_interval or self.config.min_interval
        high = spec.max_interval or max(self.config.max_interval, low)
        return IntervalLimits(min_interval=low, max_interval=max(high, low))

    def _new_register(self, spec: RegisterSpec) -> _Register:
        numeric = spec.is_numeric
        tolerance = spec.tolerance or (self.config.default_tolerance if numeric else 0.0)
        model = IntervalModel(tolerance, self._limits_for(spec), numeric=numeric)
        profile = ActivityProfile(tz=self.config.tz)
        return _Register(spec=spec, model=model, profile=profile, tolerance=tolerance)

    def _build_index(self) -> dict[HoleKey, tuple[list[int], list[str]]]:
        """Per (unit, table): register start addresses (sorted) and their uids."""
        groups: dict[HoleKey, list[tuple[int, str]]] = {}
        for uid, reg in self._regs.items():
            groups.setdefault((reg.spec.unit_id, reg.spec.table), []).append(
                (reg.spec.address, uid)
            )
        index = {}
        for key, items in groups.items():
            items.sort()
            index[key] = ([a for a, _ in items], [u for _, u in items])
        return index

    # -- time -------------------------------------------------------------

    def _to_wall(self, t: float) -> float:
        """Engine (monotonic) time -> wall time, as of now."""
        if self._wall is self._clock:
            return t
        return t + (self._wall() - self._clock())

    def _from_wall(self, t: float) -> float:
        """Wall time -> engine (monotonic) time, as of now."""
        if self._wall is self._clock:
            return t
        return t - (self._wall() - self._clock())

    # -- scheduling -------------------------------------------------------

    def _push(self, reg: _Register) -> None:
        self._unscheduled.discard(reg.spec.uid)
        self._seq += 1
        reg.heap_seq = self._seq  # older entries of this register are dead from now on
        heapq.heappush(self._heap, (reg.next_due, self._seq, reg.spec.uid))
        if len(self._heap) > 4 * len(self._regs) + 64:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        self._heap = []
        for reg in self._regs.values():
            if reg.enabled:
                self._seq += 1
                reg.heap_seq = self._seq
                self._heap.append((reg.next_due, self._seq, reg.spec.uid))
        heapq.heapify(self._heap)

    def _is_live(self, entry: tuple[float, int, str]) -> bool:
        reg = self._regs[entry[2]]
        return reg.enabled and reg.next_due == entry[0] and reg.heap_seq == entry[1]

    def _wakes(self, entry: tuple[float, int, str]) -> bool:
        """A live entry whose unit is not down (parked registers wait for its probe)."""
        return self._is_live(entry) and self._regs[entry[2]].spec.unit_id not in self._down

    def next_due(self) -> float:
        """Time on ``clock`` (wall) at which the next register or unit probe is due
        (inf when none is enabled). Scheduled on the monotonic clock, so
        ``next_due() - clock()`` is the right delay even after a wall-clock step."""
        while self._heap and not self._is_live(self._heap[0]):
            heapq.heappop(self._heap)
        due = self._heap[0][0] if self._heap else math.inf
        if self._down:  # registers of a down unit are parked: no wake-up for them
            due = min((e[0] for e in self._heap if self._wakes(e)), default=math.inf)
        for down in self._down.values():
            due = min(due, down.next_probe)
        return self._to_wall(due) if math.isfinite(due) else due

    def _pop_due(self, now: float) -> list[_Register]:
        """Registers due by ``now`` (+ batch window), each once; those of a unit that
        is down are parked (its probe brings them back)."""
        due: list[_Register] = []
        horizon = now + BATCH_WINDOW
        while self._heap and self._heap[0][0] <= horizon:
            entry = heapq.heappop(self._heap)
            uid = entry[2]
            if not self._is_live(entry) or uid in self._unscheduled:
                continue
            reg = self._regs[uid]
            if reg.spec.unit_id in self._down:
                continue
            self._unscheduled.add(uid)
            due.append(reg)
        return due

    def _interval_for(self, reg: _Register, now: float) -> float:
        if not self.config.adaptive:
            return self.config.fixed_interval
        factor = reg.profile.factor(self._to_wall(now)) if self.config.patterns else 1.0
        reg.pattern_factor = factor
        return quantize(reg.model.interval * factor, reg.model.limits)

    def _schedule(self, reg: _Register, now: float) -> None:
        interval = self._interval_for(reg, now)
        reg.effective_interval = interval
        reg.next_due = aligned_due(now, interval)
        self._push(reg)

    def _schedule_retry(self, reg: _Register, now: float) -> None:
        """After a failed read: retry soon, backing off with the failure streak."""
        limits = reg.model.limits
        delay = min(limits.min_interval * 2 ** min(reg.failure_streak - 1, 10), limits.max_interval)
        reg.next_due = now + delay
        self._push(reg)

    # -- the poll cycle ---------------------------------------------------

    def cost_model(self) -> CostModel:
        """The cost model the planner uses now (configured, fitted, or default)."""
        return self.config.cost or self._cost.model() or CostModel()

    def _plan(
        self, due: Sequence[_Register], limits: Mapping[int, DeviceLimits] | None = None
    ) -> list[BlockRead]:
        return plan_reads(
            [reg.spec for reg in due],
            cost=self.cost_model(),
            limits=self._effective_limits() if limits is None else limits,
            holes=self._holes,
            merge=self.config.merge_reads,
        )

    def _plan_with_early(self, due: list[_Register], now: float) -> list[BlockRead]:
        """Plan the due registers, pulling in neighbours that are due soon when that
        adds no request (they would cost a request of their own later)."""
        trial = self._trial_limits(due, now)
        limits = self._effective_limits(trial)
        blocks = self._plan(due, limits)
        if not (self.config.adaptive and self.config.merge_reads and blocks):
            return self._settle_trials(trial, blocks, now)
        early = self._early_neighbours(blocks, now, {reg.spec.uid for reg in due})
        if not early:
            return self._settle_trials(trial, blocks, now)
        merged = self._plan([*due, *early], limits)
        return self._settle_trials(trial, merged if len(merged) <= len(blocks) else blocks, now)

    def _early_neighbours(
        self, blocks: Sequence[BlockRead], now: float, due: set[str]
    ) -> list[_Register]:
        """Registers near the planned blocks with at most EARLY_FRACTION of their interval
        left before they are due."""
        cost = self.cost_model()
        early: list[_Register] = []
        for block in blocks:
            index = self._index.get((block.unit_id, block.table))
            if index is None:
                continue
            limits = self._effective_limits().get(block.unit_id, DEFAULT_LIMITS)
            limit = limits.max_bits if block.table.is_bit else limits.max_registers
            gap = cost.break_even_gap(bits=block.table.is_bit)
            low = max(block.address - gap, block.end - limit)
            high = min(block.end + gap, block.address + limit)
            starts, uids = index
            for uid in uids[bisect_left(starts, low) : bisect_left(starts, high)]:
                reg = self._regs[uid]
                if (
                    uid not in due
                    and reg.enabled
                    and reg.quarantined_until is None
                    and reg.spec.end <= high
                    and reg.next_due - now <= EARLY_FRACTION * reg.effective_interval
                ):
                    due.add(uid)
                    early.append(reg)
        return early

    async def poll_due(self, now: float | None = None) -> CycleResult:
        """Run one cycle: read what is due at ``now`` (wall time; default: the clock).

        Never leaves a register out of the schedule: whatever happens in the cycle
        (an unexpected exception, a cancellation), every register it took is
        rescheduled. An unexpected exception is logged once with its traceback,
        counted (``Totals.internal_errors``) and reported in the result."""
        started = self._clock() if now is None else self._from_wall(now)
        cycle = _Cycle()
        answered = self._stats.unit_reads()
        units_back: set[int] = set()
        try:
            units_back = await self._probe_down_units(started, cycle)
            due = self._pop_due(started)
            probes = [reg for reg in due if reg.quarantined_until is not None]
            regular = [reg for reg in due if reg.quarantined_until is None]
            for block in self._plan_with_early(regular, started):
                if cycle.connection_lost:
                    self._fail_keys(block.keys, cycle, started)
                    continue
                await self._guarded(self._execute(block, cycle), block.keys, cycle)
            for reg in probes:
                if cycle.connection_lost:
                    self._fail_keys((reg.spec.uid,), cycle, started)
                else:
                    await self._guarded(self._probe(reg, cycle), (reg.spec.uid,), cycle)
            await self._guarded(self._check_holes(cycle), (), cycle)
        except Exception as err:
            self._internal_error(err, cycle)
        except BaseException:  # cancelled: what was taken is still due
            self._reschedule_taken(cycle, failed=False)
            raise
        finally:
            self._reschedule_taken(cycle, failed=True)
        await self._end_cycle()
        units_down = self._note_silent_units(started, cycle, answered)
        duration = max(0.0, self._clock() - started)
        self._stats.add_cycle(
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
        self, step: Coroutine[Any, Any, object], keys: Sequence[str], cycle: _Cycle
    ) -> None:
        """Run one step of a cycle; an unexpected exception fails only its keys."""
        try:
            await step
        except Exception as err:
            self._internal_error(err, cycle)
            now = self._clock()
            for uid in keys:
                if uid in self._unscheduled:
                    self._fail_keys((uid,), cycle, now)

    def _internal_error(self, err: Exception, cycle: _Cycle) -> None:
        """Count an unexpected exception; log its traceback the first time only."""
        text = f"{type(err).__name__}: {err}"
        cycle.internal_error = text
        self._last_internal_error = text
        self._stats.add_internal_error()
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

    def _reschedule_taken(self, cycle: _Cycle, *, failed: bool) -> None:
        """Put every register taken this cycle and not yet rescheduled back on the heap:
        as a failed read (retry with backoff) or, when cancelled, due at once."""
        if not self._unscheduled:
            return
        now = self._clock()
        for uid in list(self._unscheduled):
            if failed:
                self._fail_keys((uid,), cycle, now)
            else:
                reg = self._regs[uid]
                reg.next_due = now
                self._push(reg)
        self._unscheduled.clear()

    # -- units that stop answering -----------------------------------------

    def _note_silent_units(
        self, now: float, cycle: _Cycle, answered_before: Mapping[int, int]
    ) -> set[int]:
        """Units that failed this cycle only with timeouts / connection errors and
        read nothing go down: their registers are parked and one probe runs on a
        short bounded backoff instead (see UNIT_PROBE_FIRST / UNIT_PROBE_MAX)."""
        if not cycle.failed:
            return set()
        answered_after = self._stats.unit_reads()
        kinds: dict[int, set[ErrorKind]] = {}
        for error in cycle.errors:
            kinds.setdefault(error.unit_id, set()).add(error.kind)
        failed_units = {self._regs[uid].spec.unit_id for uid in cycle.failed}
        went_down: set[int] = set()
        for unit in failed_units:
            if unit in self._down:
                continue
            if answered_after.get(unit, 0) > answered_before.get(unit, 0):
                continue
            unit_kinds = kinds.get(unit)
            silent = cycle.connection_lost if unit_kinds is None else unit_kinds <= _SILENT_KINDS
            if not silent:
                continue
            self._down[unit] = _UnitDown(since=now, next_probe=now + UNIT_PROBE_FIRST)
            went_down.add(unit)
            _LOGGER.warning(
                "Modbus unit %s is not answering (%s); probing it every %.0f-%.0f s",
                unit,
                ", ".join(sorted(unit_kinds or {ErrorKind.CONNECTION})),
                UNIT_PROBE_FIRST,
                UNIT_PROBE_MAX,
            )
        return went_down

    def _probe_register(self, unit: int) -> _Register | None:
        """The cheapest read of a unit: its smallest enabled, not quarantined register."""
        enabled = [self._regs[uid] for uid in self._unit_uids.get(unit, ())]
        enabled = [reg for reg in enabled if reg.enabled]
        # only quarantined registers left: probe one of them (else they stay parked)
        candidates = [reg for reg in enabled if reg.quarantined_until is None] or enabled
        if not candidates:
            return None
        return min(candidates, key=lambda r: (r.spec.size, r.spec.table.value, r.spec.address))

    async def _probe_down_units(self, now: float, cycle: _Cycle) -> set[int]:
        """Probe the down units whose probe is due; a unit that answers (even with a
        Modbus exception) is back: all its registers are due at once."""
        back: set[int] = set()
        for unit, down in list(self._down.items()):
            if down.next_probe > now + BATCH_WINDOW:
                continue
            reg = self._probe_register(unit)
            if cycle.connection_lost or reg is None:
                if reg is None:  # nothing left to read there
                    del self._down[unit]
                else:
                    down.next_probe = now + down.backoff
                continue
            spec = reg.spec
            down.probes += 1
            block = BlockRead(unit, spec.table, spec.address, spec.size, (spec.uid,))
            await self._connect_for_probe()
            result = await self._read(block, cycle)
            t = self._clock()
            if isinstance(result, ModbusError) and result.kind in _SILENT_KINDS:
                if result.kind is ErrorKind.CONNECTION:
                    cycle.connection_lost = True
                down.backoff = min(down.backoff * 2, UNIT_PROBE_MAX)
                down.next_probe = t + down.backoff
                for uid in self._unit_uids[unit]:
                    parked = self._regs[uid]
                    if parked.enabled:
                        parked.failure_streak += 1
                        cycle.failed.add(uid)
                continue
            del self._down[unit]
            back.add(unit)
            _LOGGER.warning(
                "Modbus unit %s answers again after %.0f s; reading all its registers",
                unit,
                t - down.since,
            )
            for uid in self._unit_uids[unit]:
                parked = self._regs[uid]
                # the first read after an outage is news for entities, not a rate sample
                parked.model.forget_baseline()
                if parked.enabled:
                    until = parked.quarantined_until
                    parked.next_due = until if until is not None and until > t else now
                    self._push(parked)
        return back

    async def _connect_for_probe(self) -> None:
        """Open the connection for a unit probe despite the transport's reconnect
        backoff (which grows to a minute), so a probe really tries every
        UNIT_PROBE_MAX s at most; a transport without ``probe()`` just reads."""
        probe = getattr(self._transport, "probe", None)
        if probe is not None and not self._transport.connected:
            await probe()  # False: the read below fails with the connection error

    async def _end_cycle(self) -> None:
        try:
            await self._transport.end_cycle()
        except ModbusError as err:  # closing a dead connection is not worth a failure
            _LOGGER.debug("end of cycle: %s", err)

    def _record(
        self,
        where: BlockRead,
        t0: float,
        error: ModbusError | None = None,
        *,
        write: bool = False,
    ) -> ErrorRecord | None:
        """Count one request that started at ``t0``; keep its error, if any."""
        t1 = self._clock()
        unit, table, address, count = where.unit_id, where.table, where.address, where.count
        self._stats.add_request(
            RequestRecord(t1, unit, table, address, count, t1 - t0, error is None, write)
        )
        if error is None:
            return None
        record = ErrorRecord(t1, error.kind, unit, table, address, count, str(error))
        self._stats.add_error(record)
        return record

    async def _read(self, block: BlockRead, cycle: _Cycle) -> list[int] | ModbusError:
        """One request; records it; returns the raw data or the error."""
        t0 = self._clock()
        cycle.requests += 1
        try:
            raw = await self._transport.read(block.unit_id, block.table, block.address, block.count)
        except ModbusError as err:
            record = self._record(block, t0, err)
            assert record is not None
            cycle.errors.append(record)
            return err
        self._cost.add(block.count, self._clock() - t0)
        self._record(block, t0)
        self._note_answer(block, cycle)
        cycle.registers_read += block.count
        return raw

    async def _execute(self, block: BlockRead, cycle: _Cycle) -> bool:
        """Read one block; split it if the device blames its addresses or its size."""
        if block.unit_id in cycle.dead_units:
            self._fail_keys(block.keys, cycle, self._clock())
            return False
        result = await self._read(block, cycle)
        now = self._clock()
        if not isinstance(result, ModbusError):
            self._apply(block, result, now, cycle)
            return True
        if self._refused_size(block, result):
            return await self._split_by_size(block, cycle, result)
        if result.kind is ErrorKind.TIMEOUT and await self._silent_on_size(block, cycle):
            return await self._split_by_size(block, cycle, result)
        if result.kind.blames_block and len(self._distinct_starts(block)) > 1:
            await self._bisect(block, cycle, result.kind)
            return False
        if result.kind.blames_block:
            for uid in block.keys:
                self._quarantine(self._regs[uid], now)
        elif result.kind is ErrorKind.CONNECTION:
            cycle.connection_lost = True
        elif result.kind is ErrorKind.TIMEOUT:
            cycle.dead_units.add(block.unit_id)
        self._fail_keys(block.keys, cycle, now)
        return False

    def _distinct_starts(self, block: BlockRead) -> list[int]:
        return sorted({self._regs[uid].spec.address for uid in block.keys})

    async def _bisect(self, block: BlockRead, cycle: _Cycle, kind: ErrorKind) -> None:
        """Split a blamed block in two halves by address and read each."""
        starts = self._distinct_starts(block)
        pivot = starts[len(starts) // 2]
        halves = [
            [uid for uid in block.keys if self._regs[uid].spec.address < pivot],
            [uid for uid in block.keys if self._regs[uid].spec.address >= pivot],
        ]
        covered: list[tuple[int, int]] = []
        all_ok = True
        for keys in halves:
            sub = self._block_of(block, keys)
            if await self._execute(sub, cycle):
                covered.append((sub.address, sub.address + sub.count))
            else:
                all_ok = False
        if all_ok:
            self._learn_hole(block, covered, kind, self._clock())

    def _block_of(self, block: BlockRead, keys: Sequence[str]) -> BlockRead:
        specs = [self._regs[uid].spec for uid in keys]
        start = min(s.address for s in specs)
        end = max(s.end for s in specs)
        return BlockRead(block.unit_id, block.table, start, end - start, tuple(keys))

    # -- holes ---------------------------------------------------------------

    def _learn_hole(
        self, block: BlockRead, covered: Sequence[tuple[int, int]], kind: ErrorKind, now: float
    ) -> None:
        """Both halves read fine: the addresses only the whole block read are refused.

        The hole is read alone again after a backoff: long when the device called the
        address illegal, short when it reported a failure (often transient). A hole
        learned again after it expired continues its backoff instead of restarting it.
        """
        gap = set(range(block.address, block.address + block.count))
        for start, end in covered:
            gap -= set(range(start, end))
        first = HOLE_VERIFY_FIRST if kind is ErrorKind.ILLEGAL_ADDRESS else HOLE_VERIFY_FAILURE
        for start, end in _runs(gap):
            key = (block.unit_id, block.table, start, end)
            previous = self._hole_backoffs.pop(key, None)
            backoff = first if previous is None else min(max(previous * 2, first), HOLE_VERIFY_MAX)
            self._hole_checks[key] = _HoleCheck(kind, now + backoff, backoff)
            _LOGGER.info(
                "unit %s %s: learned refused addresses %s-%s (%s), checked again in %.0f s",
                block.unit_id, block.table, start, end - 1, kind, backoff,
            )  # fmt: skip
        self._rebuild_holes()

    def _rebuild_holes(self) -> None:
        holes: dict[HoleKey, set[int]] = {}
        for unit, table, start, end in self._hole_checks:
            holes.setdefault((unit, table), set()).update(range(start, end))
        self._holes = holes

    async def _check_holes(self, cycle: _Cycle) -> None:
        """Read holes whose check is due alone, on units that answered this cycle.

        An answer forgets the hole (the planner spans it again); a refusal keeps it
        and doubles its backoff; no verdict (timeout, busy) asks again later.
        """
        now = self._clock()
        for key, check in list(self._hole_checks.items()):
            unit, table, start, end = key
            if check.verify_at > now or cycle.connection_lost or unit not in cycle.answered:
                continue
            if unit in cycle.dead_units:
                continue
            scratch = _Cycle()  # a refusal confirms what is known: not an error of this cycle
            result = await self._read(BlockRead(unit, table, start, end - start), scratch)
            cycle.requests += scratch.requests
            now = self._clock()
            if not isinstance(result, ModbusError):
                del self._hole_checks[key]
                self._hole_backoffs[key] = check.backoff
                self._rebuild_holes()
                _LOGGER.info(
                    "unit %s %s: addresses %s-%s answer again", unit, table, start, end - 1
                )
            elif result.kind.blames_block:
                if result.kind is ErrorKind.ILLEGAL_ADDRESS:
                    check.kind = ErrorKind.ILLEGAL_ADDRESS
                first = (
                    HOLE_VERIFY_FIRST
                    if check.kind is ErrorKind.ILLEGAL_ADDRESS
                    else HOLE_VERIFY_FAILURE
                )
                check.backoff = min(max(check.backoff * 2, first), HOLE_VERIFY_MAX)
                check.verify_at = now + check.backoff
            else:
                check.verify_at = now + NO_VERDICT_RETRY
                if result.kind is ErrorKind.CONNECTION:
                    cycle.connection_lost = True

    # -- block limits ----------------------------------------------------------

    def _unit_cap(self, unit: int) -> int:
        """The configured largest read of a unit (registers)."""
        configured = self.config.limits.get(unit, DEFAULT_LIMITS).max_registers
        return min(configured, self.config.unit_max_registers.get(unit, PROTOCOL_MAX_REGISTERS))

    def _unit_limit(self, unit: int) -> int:
        """The largest read of a unit in force: configured, or learned when smaller."""
        learned = self._unit_limits.get(unit)
        cap = self._unit_cap(unit)
        return cap if learned is None else min(cap, learned.max_registers)

    def _effective_limits(self, trial: Mapping[int, int] | None = None) -> dict[int, DeviceLimits]:
        """Per unit limits for the planner; ``trial`` overrides some units' registers."""
        units = {*self.config.limits, *self.config.unit_max_registers, *self._unit_limits}
        limits: dict[int, DeviceLimits] = {}
        for unit in units:
            base = self.config.limits.get(unit, DEFAULT_LIMITS)
            count = trial[unit] if trial and unit in trial else self._unit_limit(unit)
            limits[unit] = (
                base if count == base.max_registers else DeviceLimits(count, base.max_bits)
            )
        return limits

    def _trial_limits(self, due: Sequence[_Register], now: float) -> dict[int, int]:
        """Units whose retry is due try twice their learned limit in this cycle."""
        trial: dict[int, int] = {}
        units = {reg.spec.unit_id for reg in due if not reg.spec.table.is_bit}
        for unit in units & self._unit_limits.keys():
            learned = self._unit_limits[unit]
            if learned.retry_at <= now:
                trial[unit] = min(self._unit_cap(unit), learned.max_registers * 2)
        return trial

    def _settle_trials(
        self, trial: Mapping[int, int], blocks: list[BlockRead], now: float
    ) -> list[BlockRead]:
        """A trial counts (and backs off) only when the plan reads more than the limit."""
        for unit in trial:
            learned = self._unit_limits[unit]
            if any(
                b.unit_id == unit and not b.table.is_bit and b.count > learned.max_registers
                for b in blocks
            ):
                learned.retry_at = now + learned.backoff
                learned.backoff = min(learned.backoff * 2, LIMIT_RETRY_MAX)
        return blocks

    def _note_answer(self, block: BlockRead, cycle: _Cycle) -> None:
        """A read answered: the unit is alive, and a learned limit may grow."""
        unit = block.unit_id
        size = 1 if block.table.is_bit else block.count
        cycle.answered[unit] = max(cycle.answered.get(unit, 0), size)
        learned = self._unit_limits.get(unit)
        if learned is None or size <= learned.max_registers:
            return
        if size >= self._unit_cap(unit):
            del self._unit_limits[unit]
        else:
            learned.max_registers = size
        _LOGGER.info("unit %s: reads of %s registers answer again", unit, size)

    def _learn_limit(self, unit: int, limit: int, why: str) -> None:
        """Remember a smaller largest read for a unit (never a larger one here)."""
        if limit >= self._unit_limit(unit):
            return
        learned = self._unit_limits.get(unit)
        if learned is None:
            self._unit_limits[unit] = _UnitLimit(limit, self._clock() + LIMIT_RETRY_FIRST)
        else:
            learned.max_registers = limit
        _LOGGER.info("unit %s: %s; reading at most %s registers at once", unit, why, limit)

    def _refused_size(self, block: BlockRead, error: ModbusError) -> bool:
        """Exception 3 on a read of several registers: the quantity may be too large."""
        return (
            error.code == EXC_ILLEGAL_VALUE
            and not block.table.is_bit
            and len(self._distinct_starts(block)) > 1
        )

    async def _silent_on_size(self, block: BlockRead, cycle: _Cycle) -> bool:
        """No answer to a read larger than one that answered this cycle: halve the limit.

        When the unit has not answered yet this cycle, one small read (the block's
        first register) tells a silent unit from one that ignores large reads. A
        unit's limit is halved at most once per cycle this way.
        """
        unit = block.unit_id
        if block.table.is_bit or unit in cycle.halved or len(self._distinct_starts(block)) < 2:
            return False
        if unit not in cycle.answered:
            spec = self._regs[block.keys[0]].spec
            small = BlockRead(unit, block.table, spec.address, spec.size, (spec.uid,))
            if small.count >= block.count:
                return False
            result = await self._read(small, cycle)
            if isinstance(result, ModbusError):
                return False
            self._apply(small, result, self._clock(), cycle)
        answered = cycle.answered.get(unit, 0)
        if answered >= block.count:
            return False
        cycle.halved.add(unit)
        limit = max(block.count // 2, answered, 1)
        self._learn_limit(unit, limit, f"no answer to a read of {block.count} registers")
        return True

    async def _split_by_size(self, block: BlockRead, cycle: _Cycle, error: ModbusError) -> bool:
        """Read a block refused for its size again in reads of at most half its size.

        After exception 3 the smaller limit is learned only when every smaller read
        answers: an address the device refuses with code 3 is found (and quarantined
        or learned as a hole) instead of shrinking the limit.
        """
        unit = block.unit_id
        current = self._unit_limit(unit)
        limit = max(block.count // 2, current if current < block.count else 1, 1)
        specs = [self._regs[uid].spec for uid in block.keys]
        base = self.config.limits.get(unit, DEFAULT_LIMITS)
        subs = plan_reads(
            specs,
            cost=self.cost_model(),
            limits={unit: DeviceLimits(limit, base.max_bits)},
            holes=self._holes,
        )
        all_ok = True
        for sub in subs:
            all_ok = await self._execute(sub, cycle) and all_ok
        if all_ok and error.kind is not ErrorKind.TIMEOUT:
            self._learn_limit(unit, limit, f"a read of {block.count} registers was refused")
        return all_ok

    # -- quarantine ------------------------------------------------------------

    def _quarantine(self, reg: _Register, now: float) -> None:
        """A register the device rejects on its own: stop reading it for a while."""
        if reg.quarantined_until is not None:
            reg.quarantine_backoff = min(reg.quarantine_backoff * 2, QUARANTINE_MAX)
        reg.quarantined_until = now + reg.quarantine_backoff
        _LOGGER.info("%s quarantined for %.0f s", reg.spec.uid, reg.quarantine_backoff)

    async def _probe(self, reg: _Register, cycle: _Cycle) -> None:
        """Re-read a quarantined register alone; release it if the device answers.

        A refusal doubles the quarantine; no verdict (timeout, lost connection, busy)
        leaves it as it is and asks again after the register's retry backoff.
        """
        spec = reg.spec
        if spec.unit_id in cycle.dead_units:
            self._fail_keys((spec.uid,), cycle, self._clock())
            return
        block = BlockRead(spec.unit_id, spec.table, spec.address, spec.size, (spec.uid,))
        result = await self._read(block, cycle)
        now = self._clock()
        if isinstance(result, ModbusError):
            if result.kind.blames_block:
                self._quarantine(reg, now)
            elif result.kind is ErrorKind.CONNECTION:
                cycle.connection_lost = True
            elif result.kind is ErrorKind.TIMEOUT:
                cycle.dead_units.add(spec.unit_id)
            self._fail_keys(block.keys, cycle, now)
            return
        reg.quarantined_until = None
        reg.quarantine_backoff = QUARANTINE_FIRST
        self._apply(block, result, now, cycle)

    def _fail_keys(self, keys: Sequence[str], cycle: _Cycle, now: float) -> None:
        """Count a failed read and schedule the next one (always after ``now``)."""
        for uid in keys:
            if uid in cycle.failed:
                continue
            reg = self._regs[uid]
            reg.errors += 1
            reg.failure_streak += 1
            cycle.failed.add(uid)
            if reg.quarantined_until is not None and reg.quarantined_until > now:
                reg.next_due = reg.quarantined_until
                self._push(reg)
            elif reg.quarantined_until is not None:
                # a due probe without a verdict: probe again after the retry backoff
                self._schedule_retry(reg, now)
                reg.quarantined_until = reg.next_due
            else:
                self._schedule_retry(reg, now)

    def _riders(self, block: BlockRead) -> list[str]:
        """Enabled registers wholly inside the block's span (refreshed for free)."""
        index = self._index.get((block.unit_id, block.table))
        if index is None:
            return list(block.keys)
        starts, uids = index
        end = block.address + block.count
        lo = bisect_left(starts, block.address)
        hi = bisect_right(starts, end - 1)
        inside = []
        for uid in uids[lo:hi]:
            reg = self._regs[uid]
            if reg.enabled and reg.quarantined_until is None and reg.spec.end <= end:
                inside.append(uid)
        return inside

    def _apply(self, block: BlockRead, raw: Sequence[int], now: float, cycle: _Cycle) -> None:
        keys = self._riders(block) if self.config.piggyback else list(block.keys)
        due = frozenset(block.keys) if len(keys) != len(block.keys) else None
        for uid in keys:
            reg = self._regs[uid]
            offset = reg.spec.address - block.address
            try:
                value = reg.spec.decode(raw[offset : offset + reg.spec.size])
            except ValueError as err:
                record = ErrorRecord(now, ErrorKind.OTHER, reg.spec.unit_id, reg.spec.table,
                                     reg.spec.address, reg.spec.size, str(err))  # fmt: skip
                self._stats.add_error(record)
                cycle.errors.append(record)
                self._fail_keys((uid,), cycle, now)
                continue
            if due is not None and uid not in due and value == reg.value:
                # a rider that did not move: fresh for free, nothing new to learn
                reg.reads += 1
                reg.last_read = now
                reg.failure_streak = 0
                continue
            self._observe(reg, value, now, cycle)

    def _observe(self, reg: _Register, value: Value | None, now: float, cycle: _Cycle) -> None:
        previous = reg.value
        changed = value != previous or reg.last_read is None  # None: no value (NaN, inf)
        reg.reads += 1
        reg.failure_streak = 0
        if changed:
            reg.changes += 1
            reg.last_change = now
            cycle.changed[reg.spec.uid] = value
        reg.value = value
        reg.last_read = now
        numeric = _as_float(value) if reg.spec.is_numeric and value is not None else None
        old_interval = reg.model.interval
        # the first read (after start or restore) is news for entities, not for the model
        decision = reg.model.observe(now, numeric, changed and previous is not None)
        if decision is not None or previous is not None:
            reg.profile.record(self._to_wall(now), reg.model.activity)
        if decision is not None and decision.interval != old_interval:
            self._stats.add_interval_change(
                IntervalChange(now, reg.spec.uid, old_interval, decision.interval,
                               str(decision.reason), decision.detail)
            )  # fmt: skip
        self._schedule(reg, now)

    # -- writes -----------------------------------------------------------

    async def write(self, uid: str, value: Value) -> Value:
        """Write a value (jumps the read queue), read it back, poll it closely again.

        Raises the transport's :class:`ModbusError` when the write failed, and
        :class:`WriteUnconfirmed` (carrying ``value``) when the device took the write
        but reading it back failed: the write must not be repeated for that.
        """
        reg = self._regs.get(uid)
        if reg is None:
            raise UnknownRegister(f"unknown register: {uid}")
        spec = reg.spec
        if not spec.writable:
            raise EngineUsageError(f"{uid} is not writable")
        words = spec.encode(value)
        block = BlockRead(spec.unit_id, spec.table, spec.address, spec.size, (uid,))
        t0 = self._clock()
        try:
            if spec.table is Table.COIL:
                await self._transport.write_coil(spec.unit_id, spec.address, bool(words[0]))
            else:
                await self._transport.write_registers(spec.unit_id, spec.address, words)
        except ModbusError as err:
            self._record(block, t0, err, write=True)
            raise
        self._record(block, t0, write=True)
        t1 = self._clock()
        decision = reg.model.reset(t1, Reason.WRITE)
        self._stats.add_interval_change(
            IntervalChange(t1, uid, decision.previous, decision.interval, str(decision.reason),
                           decision.detail)
        )  # fmt: skip
        cycle = _Cycle()
        result = await self._read(block, cycle)
        if isinstance(result, ModbusError):
            # the device took the write: say so, and read the register again soon
            self._fail_keys(block.keys, cycle, self._clock())
            raise WriteUnconfirmed(
                f"{uid}: wrote {value!r} but reading it back failed: {result}",
                value=value,
                read_error=result,
                unit_id=spec.unit_id,
                address=spec.address,
                code=result.code,
            ) from result
        self._apply(block, result, self._clock(), cycle)
        return reg.value if reg.value is not None else value

    # -- enable / disable, values ----------------------------------------

    def set_enabled(self, uid: str, enabled: bool) -> None:
        """Stop (or resume) reading a register, e.g. when its entity is disabled."""
        reg = self._regs[uid]
        if reg.enabled == enabled:
            return
        reg.enabled = enabled
        if enabled:
            reg.next_due = self._clock()
            self._push(reg)

    def request_read(self, uids: Iterable[str]) -> None:
        """Make these registers due now: the next :meth:`poll_due` reads them, planned
        together with whatever else is due (for a unit that is down: its probe is due
        now, and its answer brings every register back). Raises ValueError naming
        unknown uids."""
        wanted = list(dict.fromkeys(uids))
        unknown = [uid for uid in wanted if uid not in self._regs]
        if unknown:
            raise UnknownRegister(f"unknown registers: {', '.join(unknown)}")
        now = self._clock()
        for uid in wanted:
            reg = self._regs[uid]
            down = self._down.get(reg.spec.unit_id)
            if down is not None and reg.enabled:
                down.next_probe = min(down.next_probe, now)
            if reg.enabled and reg.next_due > now:
                reg.next_due = now
                self._push(reg)

    def value(self, uid: str) -> Value | None:
        """Last value read for a register (None before the first read)."""
        return self._regs[uid].value

    @property
    def uids(self) -> tuple[str, ...]:
        """All register uids, in the order they were given."""
        return tuple(self._regs)

    # -- read API ---------------------------------------------------------

    def snapshot(self) -> EngineSnapshot:
        """Immutable view of the engine for sensors, diagnostics and visualization.

        ``at`` and the recent records are in engine (monotonic) time, ``wall_at`` is the
        wall time at ``at``; register times and unit states are wall times (display)."""
        now = self._clock()
        wall = self._wall() if self._wall is not self._clock else now
        offset = wall - now
        registers = sorted_snapshots(
            self._register_snapshot(reg, offset) for reg in self._regs.values()
        )
        return EngineSnapshot(
            at=now,
            wall_at=wall,
            units_down={
                unit: UnitStatus(
                    unit_id=unit,
                    down_since=down.since + offset,
                    next_probe=down.next_probe + offset,
                    probe_backoff=down.backoff,
                    probes=down.probes,
                )
                for unit, down in sorted(self._down.items())
            },
            last_internal_error=self._last_internal_error,
            adaptive=self.config.adaptive,
            fixed_interval=self.config.fixed_interval,
            registers=registers,
            clusters=self._clusters(),
            totals=self._stats.totals,
            holes={f"{u}.{t}": tuple(sorted(a)) for (u, t), a in self._holes.items() if a},
            units=self._stats.units,
            recent_requests=tuple(self._stats.requests),
            recent_errors=tuple(self._stats.errors),
            recent_interval_changes=tuple(self._stats.interval_changes),
            recent_cycles=tuple(self._stats.cycles),
        )

    def _register_snapshot(self, reg: _Register, offset: float = 0.0) -> RegisterSnapshot:
        spec, model = reg.spec, reg.model
        last = model.last_decision
        down = self._down.get(spec.unit_id)
        next_due = reg.next_due if down is None else down.next_probe
        until = reg.quarantined_until
        return RegisterSnapshot(
            uid=spec.uid,
            key=spec.key,
            unit_id=spec.unit_id,
            table=spec.table,
            address=spec.address,
            size=spec.size,
            enabled=reg.enabled,
            value=reg.value,
            last_read=None if reg.last_read is None else reg.last_read + offset,
            last_change=None if reg.last_change is None else reg.last_change + offset,
            next_due=next_due + offset if reg.enabled else None,
            interval=model.interval,
            effective_interval=reg.effective_interval or model.interval,
            reason=str(last.reason),
            detail=last.detail,
            tolerance=reg.tolerance,
            rate=model.rate,
            noise=model.noise,
            noisy=model.noisy,
            pattern_factor=reg.pattern_factor,
            reads=reg.reads,
            changes=reg.changes,
            errors=reg.errors,
            failure_streak=reg.failure_streak,
            quarantined_until=None if until is None else until + offset,
        )

    def _clusters(self) -> tuple[ClusterSnapshot, ...]:
        """Blocks the planner makes when every enabled register is due."""
        enabled = [r for r in self._regs.values() if r.enabled and r.quarantined_until is None]
        counts: dict[tuple[int, Table, int, int], int] = {}
        for request in self._stats.requests:
            if request.ok and not request.write:
                key = (request.unit_id, request.table, request.address, request.count)
                counts[key] = counts.get(key, 0) + 1
        clusters = []
        for block in self._plan(enabled):
            end = block.address + block.count
            hits = sum(
                n for (u, t, a, c), n in counts.items()
                if u == block.unit_id and t == block.table and a < end and a + c > block.address
            )  # fmt: skip
            clusters.append(
                ClusterSnapshot(
                    unit_id=block.unit_id,
                    table=block.table,
                    address=block.address,
                    count=block.count,
                    uids=block.keys,
                    min_interval=min(self._regs[u].model.interval for u in block.keys),
                    requests=hits,
                )
            )
        return tuple(clusters)

    # -- persistence ------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Learned state as a JSON-safe, versioned dict (quarantine ends in wall time,
        so they mean the same after a restart, when the monotonic clock starts over)."""
        offset = self._to_wall(0.0)
        return {
            "version": STATE_VERSION,
            "registers": {
                uid: {
                    "model": reg.model.to_dict(),
                    "profile": reg.profile.to_dict(),
                    "quarantined_until": (
                        None if reg.quarantined_until is None else reg.quarantined_until + offset
                    ),
                    "quarantine_backoff": reg.quarantine_backoff,
                }
                for uid, reg in self._regs.items()
            },
            "holes": [
                {
                    "unit_id": unit,
                    "table": table.value,
                    "addresses": list(range(start, end)),
                    "kind": str(check.kind),
                    "verify_at": check.verify_at + offset,
                    "backoff": check.backoff,
                }
                for (unit, table, start, end), check in sorted(self._hole_checks.items())
            ],
            "unit_limits": [
                {
                    "unit_id": unit,
                    "max_registers": learned.max_registers,
                    "retry_at": learned.retry_at + offset,
                    "backoff": learned.backoff,
                }
                for unit, learned in sorted(self._unit_limits.items())
            ],
        }

    def import_state(self, data: Mapping[str, Any]) -> ImportReport:
        """Restore learned state; says how many registers really got theirs back and
        what had to be set aside or capped."""
        warnings: list[str] = []
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else None
            return ImportReport(
                0, [f"stored state version {version!r} is not {STATE_VERSION}; starting fresh"]
            )
        restored = 0
        registers = data.get("registers")
        if isinstance(registers, Mapping):
            for uid, stored in registers.items():
                reg = self._regs.get(uid)
                if reg is None:
                    continue
                if not isinstance(stored, Mapping):
                    warnings.append(f"{uid}: stored state set aside (not a mapping)")
                    continue
                try:
                    warnings.extend(self._restore_register(reg, stored))
                except (TypeError, ValueError, KeyError) as err:
                    self._reset_register(reg)
                    warnings.append(f"{uid}: stored state set aside ({err})")
                else:
                    restored += 1
        elif registers is not None:
            warnings.append("stored registers set aside (not a mapping)")
        holes = data.get("holes")
        for item in holes if isinstance(holes, list) else []:
            try:
                self._restore_hole(item)
            except (TypeError, ValueError, KeyError) as err:
                warnings.append(f"a stored hole was set aside ({err})")
        self._rebuild_holes()
        limits = data.get("unit_limits")
        for item in limits if isinstance(limits, list) else []:
            try:
                self._restore_limit(item)
            except (TypeError, ValueError, KeyError) as err:
                warnings.append(f"a stored block limit was set aside ({err})")
        return ImportReport(restored, warnings)

    def _restore_hole(self, item: Mapping[str, Any]) -> None:
        """One stored hole; one without a check (older state) is checked again soon."""
        unit, table = int(item["unit_id"]), Table(item["table"])
        addresses = {int(a) for a in item["addresses"]}
        kind = ErrorKind(item.get("kind", ErrorKind.DEVICE_FAILURE))
        backoff = _finite(item.get("backoff", HOLE_VERIFY_FAILURE), "backoff")
        backoff = min(max(backoff, HOLE_VERIFY_FAILURE), HOLE_VERIFY_MAX)
        now = self._clock()
        stored = item.get("verify_at")
        verify_at = now + HOLE_VERIFY_FAILURE
        if stored is not None:  # stored in wall time
            verify_at = self._from_wall(_finite(stored, "verify_at"))
        for start, end in _runs(addresses):
            check = _HoleCheck(kind, min(verify_at, now + backoff), backoff)
            self._hole_checks[(unit, table, start, end)] = check

    def _restore_limit(self, item: Mapping[str, Any]) -> None:
        unit, count = int(item["unit_id"]), int(item["max_registers"])
        if not 1 <= count <= PROTOCOL_MAX_REGISTERS:
            raise ValueError(f"max_registers {count} outside 1-{PROTOCOL_MAX_REGISTERS}")
        backoff = _finite(item.get("backoff", LIMIT_RETRY_FIRST), "backoff")
        backoff = min(max(backoff, LIMIT_RETRY_FIRST), LIMIT_RETRY_MAX)
        now = self._clock()
        stored = item.get("retry_at")
        retry_at = now if stored is None else self._from_wall(_finite(stored, "retry_at"))
        retry_at = min(retry_at, now + backoff)
        if count < self._unit_cap(unit):
            self._unit_limits[unit] = _UnitLimit(count, retry_at, backoff)

    def _reset_register(self, reg: _Register) -> None:
        """Learning starts clean for a register whose stored state was set aside."""
        fresh = self._new_register(reg.spec)
        reg.model, reg.profile = fresh.model, fresh.profile
        reg.quarantined_until, reg.quarantine_backoff = None, QUARANTINE_FIRST

    def _restore_register(self, reg: _Register, stored: Mapping[str, Any]) -> list[str]:
        """Apply one register's stored state; raises on what cannot be used at all,
        returns warnings for values that were capped."""
        uid = reg.spec.uid
        warnings: list[str] = []
        until = stored.get("quarantined_until")
        backoff = stored.get("quarantine_backoff", QUARANTINE_FIRST)
        if until is not None:
            until, backoff = float(until), float(backoff)
            if not (math.isfinite(until) and math.isfinite(backoff)):
                raise ValueError(f"quarantine {until!r} / backoff {backoff!r} is not finite")
        stored_model = stored.get("model")
        if not (
            isinstance(stored_model, Mapping)
            and stored_model.get("version") in (1, MODEL_STATE_VERSION)
        ):
            raise ValueError("its interval model is missing or of another version")
        limits = reg.model.limits
        model = IntervalModel.from_dict(
            stored_model, tolerance=reg.tolerance, limits=limits, numeric=reg.spec.is_numeric
        )
        model.forget_baseline()
        stored_profile = stored.get("profile")
        if isinstance(stored_profile, Mapping) and (
            stored_profile.get("version") in (1, PROFILE_STATE_VERSION)
        ):
            profile = ActivityProfile.from_dict(stored_profile, tz=self.config.tz)
        else:
            profile = ActivityProfile()
            warnings.append(f"{uid}: stored time-of-week pattern set aside")
        reg.model, reg.profile = model, profile
        if until is None:
            return warnings
        if not QUARANTINE_FIRST <= backoff <= QUARANTINE_MAX:
            capped = min(max(backoff, QUARANTINE_FIRST), QUARANTINE_MAX)
            warnings.append(
                f"{uid}: stored quarantine backoff {backoff:.0f} s capped to {capped:.0f} s"
            )
            backoff = capped
        now = self._clock()
        remaining = until - self._to_wall(now)
        if remaining > RESTORED_QUARANTINE_MAX:
            warnings.append(
                f"{uid}: stored quarantine ends {remaining:.0f} s from now; "
                f"capped to {RESTORED_QUARANTINE_MAX:.0f} s"
            )
            remaining = RESTORED_QUARANTINE_MAX
        reg.quarantined_until = now + max(remaining, 0.0)
        reg.quarantine_backoff = backoff
        reg.next_due = reg.quarantined_until
        self._push(reg)
        return warnings

    # -- forgetting -------------------------------------------------------

    def reset_learning(self, *, unit_id: int | None = None, uid: str | None = None) -> None:
        """Forget what was learned, for one register (``uid``), one unit, or everything.

        Resets interval models, activity patterns and quarantines of the registers in
        scope (they are read again at once), the holes learned in their addresses
        (a unit's or all, or those inside the register's span), and the learned block
        limit of the unit (or of all units; not for a single register). Raises
        :class:`UnknownRegister` for an unknown ``uid`` and :class:`EngineUsageError`
        when ``uid`` is not on ``unit_id``.
        """
        if uid is not None:
            if uid not in self._regs:
                raise UnknownRegister(f"unknown register: {uid}")
            spec = self._regs[uid].spec
            if unit_id is not None and spec.unit_id != unit_id:
                raise EngineUsageError(f"{uid} is not on unit {unit_id}")
            regs = [self._regs[uid]]
        elif unit_id is not None:
            regs = [reg for reg in self._regs.values() if reg.spec.unit_id == unit_id]
        else:
            regs = list(self._regs.values())
        now = self._clock()
        for reg in regs:
            fresh = self._new_register(reg.spec)
            reg.model, reg.profile = fresh.model, fresh.profile
            reg.quarantined_until = None
            reg.quarantine_backoff = QUARANTINE_FIRST
            reg.failure_streak = 0
            reg.effective_interval = 0.0
            reg.pattern_factor = 1.0
            if reg.enabled:
                reg.next_due = now
                self._push(reg)
        for key in list(self._hole_checks):
            unit, table, start, end = key
            if uid is not None:
                spec = self._regs[uid].spec
                hit = (unit, table) == (spec.unit_id, spec.table) and start < spec.end
                hit = hit and end > spec.address
            else:
                hit = unit_id is None or unit == unit_id
            if hit:
                del self._hole_checks[key]
        if uid is None:
            for key in [k for k in self._hole_backoffs if unit_id is None or k[0] == unit_id]:
                del self._hole_backoffs[key]
        self._rebuild_holes()
        if uid is None:
            for unit in [u for u in self._unit_limits if unit_id is None or u == unit_id]:
                del self._unit_limits[unit]
        _LOGGER.info(
            "learning reset for %s",
            uid if uid is not None else f"unit {unit_id}" if unit_id is not None else "all",
        )


def _runs(addresses: set[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, end)`` of a set of addresses, in order."""
    runs: list[tuple[int, int]] = []
    for address in sorted(addresses):
        if runs and runs[-1][1] == address:
            runs[-1] = (runs[-1][0], address + 1)
        else:
            runs.append((address, address + 1))
    return runs


def _finite(value: Any, name: str) -> float:
    """A stored number, or ``ValueError`` when it is not a finite one."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} {value!r} is not a finite number")
    return number


def _as_float(value: Value) -> float | None:
    if isinstance(value, bool | str):
        return None
    return float(value) if math.isfinite(value) else None
