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
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ErrorKind, ModbusError, WriteUnconfirmed
from .intervals import IntervalLimits, IntervalModel, Reason, aligned_due, quantize
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
    limits: Mapping[int, DeviceLimits] = field(default_factory=dict)  # per unit id
    unit_max_registers: Mapping[int, int] = field(default_factory=dict)  # per unit id, 1-125
    cost: CostModel | None = None  # None: fitted to the measured latency of this connection

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError("need 0 < min_interval <= max_interval")
        if self.fixed_interval <= 0:
            raise ValueError("fixed_interval must be positive")
        for unit, count in self.unit_max_registers.items():
            if not 1 <= count <= PROTOCOL_MAX_REGISTERS:
                raise ValueError(
                    f"unit {unit}: max registers per read must be 1-{PROTOCOL_MAX_REGISTERS}, "
                    f"got {count}"
                )


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one call of :meth:`PollEngine.poll_due` did."""

    started: float
    duration: float
    changed: Mapping[str, Value]
    failed: frozenset[str]
    requests: int
    registers_read: int
    errors: tuple[ErrorRecord, ...]


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

    changed: dict[str, Value] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    errors: list[ErrorRecord] = field(default_factory=list)
    requests: int = 0
    registers_read: int = 0
    dead_units: set[int] = field(default_factory=set)
    connection_lost: bool = False
    answered: dict[int, int] = field(default_factory=dict)  # unit -> largest read that answered
    halved: set[int] = field(default_factory=set)  # units whose limit a timeout halved


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
    ) -> None:
        self.config = config or EngineConfig()
        self._transport = transport
        self._clock = clock
        self._stats = StatsRecorder()
        self._cost = _CostEstimator()
        self._holes: dict[HoleKey, set[int]] = {}
        self._hole_checks: dict[tuple[int, Table, int, int], _HoleCheck] = {}
        self._hole_backoffs: dict[tuple[int, Table, int, int], float] = {}  # of expired holes
        self._unit_limits: dict[int, _UnitLimit] = {}
        self._regs: dict[str, _Register] = {}
        for spec in registers:
            if spec.uid in self._regs:
                raise ValueError(f"register {spec.uid} is defined twice")
            self._regs[spec.uid] = self._new_register(spec)
        self._index = self._build_index()
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        now = clock()
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
        return _Register(spec=spec, model=model, profile=ActivityProfile(), tolerance=tolerance)

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

    # -- scheduling -------------------------------------------------------

    def _push(self, reg: _Register) -> None:
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

    def next_due(self) -> float:
        """Clock time at which the next register is due (inf when none is enabled)."""
        while self._heap and not self._is_live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else math.inf

    def _pop_due(self, now: float) -> list[_Register]:
        due: list[_Register] = []
        horizon = now + BATCH_WINDOW
        while self._heap and self._heap[0][0] <= horizon:
            entry = heapq.heappop(self._heap)
            if self._is_live(entry):
                due.append(self._regs[entry[2]])
        return due

    def _interval_for(self, reg: _Register, now: float) -> float:
        if not self.config.adaptive:
            return self.config.fixed_interval
        factor = reg.profile.factor(now) if self.config.patterns else 1.0
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
        """Run one cycle: read what is due at ``now`` (default: the clock)."""
        started = self._clock() if now is None else now
        due = self._pop_due(started)
        probes = [reg for reg in due if reg.quarantined_until is not None]
        regular = [reg for reg in due if reg.quarantined_until is None]
        cycle = _Cycle()
        for block in self._plan_with_early(regular, started):
            if cycle.connection_lost:
                self._fail_keys(block.keys, cycle, started)
                continue
            await self._execute(block, cycle)
        for reg in probes:
            if cycle.connection_lost:
                self._fail_keys((reg.spec.uid,), cycle, started)
            else:
                await self._probe(reg, cycle)
        await self._check_holes(cycle)
        await self._end_cycle()
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
        )

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

    def _observe(self, reg: _Register, value: Value, now: float, cycle: _Cycle) -> None:
        previous = reg.value
        changed = previous is None or value != previous
        reg.reads += 1
        reg.failure_streak = 0
        if changed:
            reg.changes += 1
            reg.last_change = now
            cycle.changed[reg.spec.uid] = value
        reg.value = value
        reg.last_read = now
        numeric = _as_float(value) if reg.spec.is_numeric else None
        old_interval = reg.model.interval
        # the first read (after start or restore) is news for entities, not for the model
        decision = reg.model.observe(now, numeric, changed and previous is not None)
        if decision is not None or previous is not None:
            reg.profile.record(now, reg.model.activity)
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
            raise KeyError(uid)
        spec = reg.spec
        if not spec.writable:
            raise ValueError(f"{uid} is not writable")
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

    def value(self, uid: str) -> Value | None:
        """Last value read for a register (None before the first read)."""
        return self._regs[uid].value

    @property
    def uids(self) -> tuple[str, ...]:
        """All register uids, in the order they were given."""
        return tuple(self._regs)

    # -- read API ---------------------------------------------------------

    def snapshot(self) -> EngineSnapshot:
        """Immutable view of the engine for sensors, diagnostics and visualization."""
        now = self._clock()
        registers = sorted_snapshots(self._register_snapshot(reg) for reg in self._regs.values())
        return EngineSnapshot(
            at=now,
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

    def _register_snapshot(self, reg: _Register) -> RegisterSnapshot:
        spec, model = reg.spec, reg.model
        last = model.last_decision
        return RegisterSnapshot(
            uid=spec.uid,
            key=spec.key,
            unit_id=spec.unit_id,
            table=spec.table,
            address=spec.address,
            size=spec.size,
            enabled=reg.enabled,
            value=reg.value,
            last_read=reg.last_read,
            last_change=reg.last_change,
            next_due=reg.next_due if reg.enabled else None,
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
            quarantined_until=reg.quarantined_until,
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
        """Learned state as a JSON-safe, versioned dict."""
        return {
            "version": STATE_VERSION,
            "registers": {
                uid: {
                    "model": reg.model.to_dict(),
                    "profile": reg.profile.to_dict(),
                    "quarantined_until": reg.quarantined_until,
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
                    "verify_at": check.verify_at,
                    "backoff": check.backoff,
                }
                for (unit, table, start, end), check in sorted(self._hole_checks.items())
            ],
            "unit_limits": [
                {
                    "unit_id": unit,
                    "max_registers": learned.max_registers,
                    "retry_at": learned.retry_at,
                    "backoff": learned.backoff,
                }
                for unit, learned in sorted(self._unit_limits.items())
            ],
        }

    def import_state(self, data: Mapping[str, Any]) -> list[str]:
        """Restore learned state; returns warnings for what had to be set aside."""
        warnings: list[str] = []
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else None
            return [f"stored state version {version!r} is not {STATE_VERSION}; starting fresh"]
        registers = data.get("registers")
        if isinstance(registers, Mapping):
            for uid, stored in registers.items():
                reg = self._regs.get(uid)
                if reg is None or not isinstance(stored, Mapping):
                    continue
                try:
                    self._restore_register(reg, stored)
                except (TypeError, ValueError, KeyError) as err:
                    warnings.append(f"{uid}: stored state set aside ({err})")
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
        return warnings

    def _restore_hole(self, item: Mapping[str, Any]) -> None:
        """One stored hole; one without a check (older state) is checked again soon."""
        unit, table = int(item["unit_id"]), Table(item["table"])
        addresses = {int(a) for a in item["addresses"]}
        kind = ErrorKind(item.get("kind", ErrorKind.DEVICE_FAILURE))
        backoff = _finite(item.get("backoff", HOLE_VERIFY_FAILURE), "backoff")
        backoff = min(max(backoff, HOLE_VERIFY_FAILURE), HOLE_VERIFY_MAX)
        now = self._clock()
        verify_at = _finite(item.get("verify_at", now + HOLE_VERIFY_FAILURE), "verify_at")
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
        retry_at = min(_finite(item.get("retry_at", now), "retry_at"), now + backoff)
        if count < self._unit_cap(unit):
            self._unit_limits[unit] = _UnitLimit(count, retry_at, backoff)

    def _restore_register(self, reg: _Register, stored: Mapping[str, Any]) -> None:
        limits = reg.model.limits
        reg.model = IntervalModel.from_dict(
            stored.get("model", {}), tolerance=reg.tolerance, limits=limits,
            numeric=reg.spec.is_numeric,
        )  # fmt: skip
        reg.model.forget_baseline()
        reg.profile = ActivityProfile.from_dict(stored.get("profile", {}))
        until = stored.get("quarantined_until")
        if until is not None:
            backoff = _finite(stored.get("quarantine_backoff", QUARANTINE_FIRST), "backoff")
            reg.quarantine_backoff = min(max(backoff, QUARANTINE_FIRST), QUARANTINE_MAX)
            # never later than one backoff from now, whatever the stored clock said
            now = self._clock()
            reg.quarantined_until = min(_finite(until, "quarantined_until"), now + backoff)
            reg.quarantined_until = max(reg.quarantined_until, now)
            reg.next_due = reg.quarantined_until
            self._push(reg)

    # -- forgetting -------------------------------------------------------

    def reset_learning(self, *, unit_id: int | None = None, uid: str | None = None) -> None:
        """Forget what was learned, for one register (``uid``), one unit, or everything.

        Resets interval models, activity patterns and quarantines of the registers in
        scope (they are read again at once), the holes learned in their addresses
        (a unit's or all, or those inside the register's span), and the learned block
        limit of the unit (or of all units; not for a single register). Raises
        ``KeyError`` for an unknown ``uid`` and ``ValueError`` when ``uid`` is not on
        ``unit_id``.
        """
        if uid is not None:
            if uid not in self._regs:
                raise KeyError(uid)
            spec = self._regs[uid].spec
            if unit_id is not None and spec.unit_id != unit_id:
                raise ValueError(f"{uid} is not on unit {unit_id}")
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
