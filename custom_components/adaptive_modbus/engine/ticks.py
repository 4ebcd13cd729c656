"""Tick lock: read a steadily moving register right after it crosses its tolerance.

A counter (energy) climbing at a steady rate, or a value on a steady trend, leaves
the tolerance band around its last reported level every ``step / rate`` seconds,
where ``step`` is the tolerance plus one quantum of the register (its scale: the
value must exceed the tolerance). Read at a free-running interval, each crossing
waits a random share of that interval before it is seen. Once the crossings are
known to come steadily, the engine can read just after the next one is expected,
in a request that goes out anyway, which a fixed poller cannot copy.

Per register (integer type, tolerance above 0) the lock keeps a **chain of
levels**: the level reported when the value last left its band (``ref``), moved
on to the first value beyond ``ref ± tolerance`` per crossing whatever time the
crossing was read at (phase-locked: a crossing read late does not shift the
chain; float rounding decides, as it decides what counts as a change). A read
that finds the value beyond the band is a crossing read: its time and value are an
anchor. Float registers get no chain: the value they show past the level depends
on how often the device updates it, and a chain that is a little short drifts
ahead of the crossings until every read comes just before one (measured).

The lock holds when the last :data:`ANCHORS` anchors went the same way at rates
(value change over time between consecutive anchors) within :data:`STEADY_RATIO`
of each other, no read since the last anchor went back against that direction,
and the last crossing read found one crossing only (several: the rate rose). Then,
after each read of the register, the time the value reaches the next level is
expected from the last change (halfway through what brackets it) and the larger
of the anchors' rate and the interval model's; the register is made due at the
first read of its stretch (same unit and table, no learned hole between: one
read can cover them) due within a minimum interval after that (after now, when
that has passed): it rides in a request that goes out anyway. Registers at their
minimum interval are foreseen read on their grid, others only at their next due
time (a longer interval may change before). When no read of the stretch comes
then, or when the interval model reads the register by then anyway, its schedule
stays: the lock only adds reads, never puts one later (:data:`DEFER` lets it put
them later too: fewer reads, but a crossing read a few seconds late is out of
tolerance meanwhile; measured in the README, Engine ideas of part 2).

The lock is no read listener: after each cycle it looks at the cycle's changed
values and at the locked registers whose due time has come (a heap), so a read
that changes nothing costs it nothing.

Registers that are pinned, viewed, failing, quarantined or not adaptive are left
alone. Nothing is persisted: a lock is relearned after a few crossings.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from heapq import heappop, heappush
import math

from .core import EngineCore
from .registers import DataType, Table, Value
from .registry import RegisterState

#: crossing reads whose rates must agree before the lock holds
ANCHORS = 3
#: largest ratio between the rates of consecutive anchors of a steady register
STEADY_RATIO = 1.5
#: whether the lock may also put a read later than the interval model's schedule
#: (fewer reads; a crossing read a few seconds late is out of tolerance meanwhile)
DEFER = False
#: whether the reads of a stretch are foreseen on the grids of all its intervals
#: (False: only on that of the minimum interval; other registers at their next
#: due time only). Focused run, 1 phase: demo p95 delay 15.9 -> 15.4 s for
#: +1.1 % requests and +1.4 % bus time (README, Engine ideas of part 2)
GRIDS = False
#: share of the quantum below which two values count as equal (float rounding)
_EPS = 1e-6
#: crossings followed along the chain on one read (more: the chain restarts there)
_MAX_CROSSINGS = 64
_FLOAT_TYPES = (DataType.FLOAT32, DataType.FLOAT64)


@dataclass(slots=True)
class _Track:
    """One register's chain of levels and crossing anchors.

    ``steady`` (the anchors' rate while the lock holds, else None) and ``next``
    (the next level) are kept up to date on crossing reads, so a read that changes
    nothing costs a comparison.
    """

    tolerance: float
    quantum: float  # smallest change of the register's value (its scale, > 0)
    ref: float | None = None  # level reported at the last crossing
    next: float = 0.0  # the next level (see level())
    steady: float | None = None  # the anchors' rate while the lock holds
    last_t: float = -math.inf  # the last read
    last_v: float = 0.0
    # the last change of the value: the read before it and the read that showed it
    change_lo: float = 0.0
    change_hi: float = 0.0
    sign: float = 0.0  # direction of the last crossing
    single: bool = False  # the last crossing read found one crossing, not several
    anchors: list[tuple[float, float]] = field(default_factory=list)

    def observe(self, t: float, v: float) -> None:
        """Take one read: advance the chain on a crossing, drop anchors on a reversal."""
        ref = self.ref
        if ref is None:
            self.ref, self.last_t, self.last_v = v, t, v
            self.change_lo = self.change_hi = t
            return
        last_t, last_v = self.last_t, self.last_v
        self.last_t, self.last_v = t, v
        if v == last_v:
            return
        self.change_lo, self.change_hi = last_t, t
        if self.sign and (v - last_v) * self.sign < 0:
            # went back against the direction: whatever the rate was, it is not steady
            self.anchors.clear()
            self.single = False
            self.steady = None
        moved = v - ref
        tolerance = self.tolerance
        if not abs(moved) > tolerance:
            return
        sign = 1.0 if moved > 0 else -1.0
        if sign != self.sign:
            self.anchors.clear()
            self.sign = sign
            self.next = self.level()
        # along the chain: each crossing reports the first value beyond the band of
        # the level before (the read may come after several)
        crossings = 0
        while abs(v - ref) > tolerance and crossings < _MAX_CROSSINGS:
            self.ref = ref = self.next
            self.next = self.level()
            crossings += 1
        if abs(v - ref) > tolerance:
            self.ref = v
            self.next = self.level()
        self.single = crossings == 1
        anchors = self.anchors
        anchors.append((t, v))
        if len(anchors) > ANCHORS:
            del anchors[0]
        self.steady = self.rate()

    def rate(self) -> float | None:
        """Steady rate (units per second, positive) of the anchors, None when unsteady."""
        anchors = self.anchors
        if len(anchors) < ANCHORS or not self.single:
            return None
        rates = []
        for (t0, v0), (t1, v1) in zip(anchors, anchors[1:], strict=False):
            dv = (v1 - v0) * self.sign
            if not (t1 > t0 and dv > 0):
                return None
            rates.append(dv / (t1 - t0))
        if max(rates) > STEADY_RATIO * min(rates):
            return None
        (t0, v0), (t1, v1) = anchors[0], anchors[-1]
        return (v1 - v0) * self.sign / (t1 - t0)

    def level(self) -> float:
        """Return the next level: the first value beyond ``ref ± tolerance``.

        The first multiple of the quantum whose difference from ``ref`` exceeds the
        tolerance as the floats compare it (0.1 in steps of 0.01 may take ten steps
        or eleven).
        """
        ref, sign, tolerance, quantum = (
            self.ref,
            self.sign,
            self.tolerance,
            self.quantum,
        )
        assert ref is not None
        n = max(1, math.floor(tolerance / quantum) - 1)
        while True:
            value = float(f"{ref + sign * n * quantum:.15g}")
            if abs(value - ref) > tolerance:
                return value
            n += 1

    def expected(self, rate_now: float = 0.0) -> float | None:
        """Time the value is expected to reach the next level; None when not locked.

        ``rate_now``: a more recent rate (the interval model's); the larger of the
        two is used (a rate that rose is caught early, not late). The value is taken
        to have changed to its last value halfway through what brackets that change:
        the read before it, the read that showed it, and one quantum's time before
        the last read (a steady counter would have counted again since).
        """
        rate = self.steady
        if rate is None:
            return None
        rate = max(rate, rate_now)
        # when the value took its last value: within its bracket, and (steady) at
        # most one quantum's time before the last read that still shows it
        low = max(self.change_lo, self.last_t - self.quantum / rate)
        high = self.change_hi
        changed_at = (low + high) / 2 if low < high else high
        remaining = (self.next - self.last_v) * self.sign
        return changed_at + max(0.0, remaining) / rate


_Reads = tuple[list[float], list[float]]  # a stretch's due times and intervals, sorted
_AFTER = 1e-3  # s: a due time this close after now is now
_UNKNOWN = _Track(0.0, 1.0)  # a register not looked at yet (a sentinel)


@dataclass(slots=True)
class TickLockStats:
    """What the lock did so far (for tests, diagnostics and the benchmark)."""

    locked_reads: int = 0  # reads after which the next read was set by the lock


class TickLock:
    """Phase-locks the reads of steadily moving registers to their crossings."""

    def __init__(self, core: EngineCore) -> None:
        """Follow the registers of ``core`` (fed after each cycle: :meth:`end_cycle`)."""
        self._core = core
        self._regs = core.registry.regs
        self._tracks: dict[str, _Track | None] = {}
        # (due time, uid) of every locked register: looked at again once read
        self._watch: list[tuple[float, str]] = []
        self.stats = TickLockStats()

    @property
    def enabled(self) -> bool:
        """Whether the lock acts (adaptive engines with ``tick_lock`` on)."""
        config = self._core.config
        return config.adaptive and config.tick_lock

    def _track(self, uid: str) -> _Track | None:
        reg = self._regs.get(uid)
        track = None
        if (
            reg is not None
            and reg.spec.is_numeric
            and reg.spec.data_type not in _FLOAT_TYPES
            and reg.tolerance > 0
        ):
            track = _Track(reg.tolerance, abs(reg.spec.scale))
        self._tracks[uid] = track
        return track

    def _observe(self, changed: Mapping[str, Value | None], now: float) -> list[str]:
        """Feed the cycle's reads to the chains; return the locked registers to time.

        The reads that changed a value come with the cycle's result; of the reads
        that changed nothing only those of locked registers are looked at, found
        by their due times (the lock is no read listener: the common read costs it
        nothing).
        """
        regs, tracks, watch = self._regs, self._tracks, self._watch
        read: list[str] = []
        for uid, value in changed.items():
            track = tracks.get(uid, _UNKNOWN)
            if track is _UNKNOWN:
                track = self._track(uid)
            if track is None or value is None or isinstance(value, bool | str):
                continue
            t = regs[uid].last_read
            if t is None or not t > track.last_t:
                continue
            track.observe(t, value)
            if track.steady is not None:
                read.append(uid)
        # locked registers come back at their next due time, read changed or not
        while watch and watch[0][0] <= now:
            at, uid = heappop(watch)
            track = tracks[uid]
            if track is None or track.steady is None or uid in changed:
                continue  # unlocked, or looked at above
            reg = regs[uid]
            t = reg.last_read
            if t is None or not t > track.last_t:  # not read since: wait for it
                if reg.next_due > at:
                    heappush(watch, (reg.next_due, uid))
                continue
            track.last_t = t  # read since (here or earlier), unchanged
            read.append(uid)
        return read

    def _table(
        self, reg: RegisterState, cache: dict[tuple[int, Table, int], _Reads]
    ) -> _Reads:
        """Return the sorted due times of a register's stretch, and its shortest interval.

        The stretch: the enabled registers of the same unit and table with no learned
        hole between them and the register (one read can cover them together).
        """
        spec, regs = reg.spec, self._regs
        holes = sorted(self._core.holes.by_table.get((spec.unit_id, spec.table), ()))
        stretch = bisect_right(holes, spec.address)
        key = (spec.unit_id, spec.table, stretch)
        found = cache.get(key)
        if found is not None:
            return found
        low = holes[stretch - 1] + 1 if stretch else -1
        high = holes[stretch] if stretch < len(holes) else math.inf
        uids = self._core.registry.starting_in(spec.unit_id, spec.table, low, high)
        dues: list[float] = []
        intervals: set[float] = set()
        for uid in uids or ():
            other = regs[uid]
            if other.enabled and other.spec.end <= high:
                dues.append(other.next_due)
                if other.effective_interval > 0:
                    intervals.add(other.effective_interval)
        dues.sort()
        found = cache[key] = (dues, sorted(intervals))
        return found

    def _ride(
        self,
        reg: RegisterState,
        expected: float,
        now: float,
        table: _Reads,
    ) -> float | None:
        """Return the first read of the register's stretch at or after ``expected``.

        The stretch's reads: its registers' next due times, and the grid of those
        at the register's minimum interval (aligned due times: read on every
        multiple of it while they stay there; a longer interval may change first).
        Only a read within the register's minimum interval of ``expected`` (of now,
        when that has passed) counts; None when there is none: a read of its own
        would cost a request the interval model's schedule shares.
        """
        dues, intervals = table
        # a read still to come (a due time at now has been read in this cycle)
        earliest = max(expected - _EPS, now + _AFTER)
        low = reg.model.limits.min_interval
        latest = earliest + low
        best = math.inf
        index = bisect_left(dues, earliest)
        if index < len(dues):
            best = dues[index]
        if GRIDS:
            for step in intervals:
                if step > latest - now:
                    break
                best = min(best, math.ceil(earliest / step - _EPS) * step)
        elif intervals and intervals[0] <= low * (1 + _EPS):
            step = intervals[0]
            best = min(best, math.ceil(earliest / step - _EPS) * step)
        return best if best <= latest else None

    def end_cycle(self, changed: Mapping[str, Value | None], now: float) -> list[str]:
        """Learn from a cycle's reads; set the next read of the locked registers read.

        ``changed``: the cycle's changed values (``CycleResult.changed``); ``now``:
        engine time the cycle ended. Returns the registers whose next read the lock
        set.
        """
        if not self.enabled:
            return []
        read = self._observe(changed, now)
        if not read:
            return []
        regs, schedule, tracks = self._regs, self._core.schedule, self._tracks
        locked: list[str] = []
        tables: dict[tuple[int, Table, int], _Reads] = {}
        for uid in read:
            track = tracks.get(uid)
            reg = regs[uid]
            expected = None if track is None else track.expected(reg.model.rate)
            if expected is None or track is None:
                continue
            if not DEFER and expected >= reg.next_due - _EPS:
                continue  # the model reads it by then anyway
            limits = reg.model.limits
            if (
                not schedule.may_advance(reg)
                or reg.viewed
                or reg.pin is not None
                or limits.min_interval >= limits.max_interval
            ):
                continue
            due = self._ride(reg, expected, now, self._table(reg, tables))
            if due is None or due > track.last_t + limits.max_interval:
                continue
            if not DEFER and due >= reg.next_due - _EPS:
                continue  # the model reads it by then anyway
            schedule.due_at(reg, due)
            locked.append(uid)
        self.stats.locked_reads += len(locked)
        watch = self._watch
        for uid in read:
            heappush(watch, (regs[uid].next_due, uid))
        return locked
