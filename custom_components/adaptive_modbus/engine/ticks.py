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
first read of a neighbour (same unit and table, within one read's reach) due
within a minimum interval after that: it rides in a request that goes out anyway.
Neighbours at their minimum interval are foreseen read on their grid, others only
at their next due time (:data:`STEADY_ONLY`). When no neighbour is read then, or
when the interval model reads the register by then anyway, its schedule stays:
the lock only adds reads, never puts one later (:data:`DEFER` lets it put them
later too: fewer reads, but a crossing read a few seconds late is out of
tolerance meanwhile; measured in the README, Engine ideas of part 2).

Registers that are pinned, viewed, failing, quarantined or not adaptive are left
alone. Nothing is persisted: a lock is relearned after a few crossings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math

from .core import EngineCore
from .registers import DataType, Value
from .registry import RegisterState

#: crossing reads whose rates must agree before the lock holds
ANCHORS = 3
#: largest ratio between the rates of consecutive anchors of a steady register
STEADY_RATIO = 1.5
#: whether the lock may also put a read later than the interval model's schedule
#: (fewer reads; a crossing read a few seconds late is out of tolerance meanwhile)
DEFER = False
#: whether only the reads of neighbours at their minimum interval are foreseen
#: beyond their next one
STEADY_ONLY = True
#: share of the quantum below which two values count as equal (float rounding)
_EPS = 1e-6
#: crossings followed along the chain on one read (more: the chain restarts there)
_MAX_CROSSINGS = 64
_FLOAT_TYPES = (DataType.FLOAT32, DataType.FLOAT64)


@dataclass(slots=True)
class _Track:
    """One register's chain of levels and crossing anchors."""

    tolerance: float
    quantum: float  # smallest change of the register's value (its scale, > 0)
    ref: float | None = None  # level reported at the last crossing
    last_t: float = 0.0  # the last read
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
        if v != self.last_v:
            self.change_lo, self.change_hi = self.last_t, t
        if self.sign and (v - self.last_v) * self.sign < 0:
            # went back against the direction: whatever the rate was, it is not steady
            self.anchors.clear()
            self.single = False
        self.last_t, self.last_v = t, v
        moved = v - ref
        tolerance = self.tolerance
        if not abs(moved) > tolerance:
            return
        sign = 1.0 if moved > 0 else -1.0
        if sign != self.sign:
            self.anchors.clear()
        self.sign = sign
        # along the chain: each crossing reports the first value beyond the band of
        # the level before (the read may come after several)
        crossings = 0
        while abs(v - ref) > tolerance and crossings < _MAX_CROSSINGS:
            self.ref = ref = self.level()
            crossings += 1
        if abs(v - ref) > tolerance:
            self.ref = v
        self.single = crossings == 1
        anchors = self.anchors
        anchors.append((t, v))
        if len(anchors) > ANCHORS:
            del anchors[0]

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
        rate = self.rate()
        if rate is None or self.ref is None:
            return None
        rate = max(rate, rate_now)
        # when the value took its last value: within its bracket, and (steady) at
        # most one quantum's time before the last read that still shows it
        low = max(self.change_lo, self.last_t - self.quantum / rate)
        high = self.change_hi
        changed_at = (low + high) / 2 if low < high else high
        remaining = (self.level() - self.last_v) * self.sign
        return changed_at + max(0.0, remaining) / rate


@dataclass(slots=True)
class TickLockStats:
    """What the lock did so far (for tests, diagnostics and the benchmark)."""

    locked_reads: int = 0  # reads after which the next read was set by the lock


class TickLock:
    """Phase-locks the reads of steadily moving registers to their crossings."""

    def __init__(self, core: EngineCore) -> None:
        """Watch the reads of ``core`` (registers itself as a read listener)."""
        self._core = core
        self._regs = core.registry.regs
        self._tracks: dict[str, _Track | None] = {}
        self._read: list[str] = []  # locked registers read in this cycle
        self.stats = TickLockStats()
        core.read_listeners.append(self._on_read)

    @property
    def enabled(self) -> bool:
        """Whether the lock acts (adaptive engines with ``tick_lock`` on)."""
        config = self._core.config
        return config.adaptive and config.tick_lock

    def expected(self, uid: str) -> float | None:
        """Engine time the register is expected to cross its next level (None: unlocked)."""
        track = self._tracks.get(uid)
        return None if track is None else track.expected(self._regs[uid].model.rate)

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

    def _on_read(
        self, uid: str, t: float, value: Value | None, previous_read: float | None
    ) -> None:
        """Feed a read to the register's chain; remember it for :meth:`end_cycle`."""
        try:
            track = self._tracks[uid]
        except KeyError:
            track = self._track(uid)
        if track is None or value is None or isinstance(value, bool | str):
            return
        track.observe(t, float(value))
        if track.anchors:
            self._read.append(uid)

    def _ride(self, reg: RegisterState, expected: float, now: float) -> float | None:
        """Return the first read of a neighbour due at or after ``expected``, if soon.

        A neighbour is a register of the same unit and table that one read can cover
        with it (within the unit's read limit); its reads are its next due time and
        then one every interval. Soon enough is within the register's minimum
        interval of ``expected``. None when no neighbour's read is: a read of its
        own would cost a request the interval model's schedule shares.
        """
        spec = reg.spec
        reach = self._core.limits.limit(spec.unit_id)
        uids = self._core.registry.starting_in(
            spec.unit_id, spec.table, spec.address - reach + spec.size, spec.end + reach
        )
        if not uids:
            return None
        regs = self._regs
        earliest = max(expected, now) - _EPS
        latest = expected + reg.model.limits.min_interval
        best: float | None = None
        fastest = reg.model.limits.min_interval * (1 + _EPS)
        for uid in uids:
            other = regs[uid]
            if other is reg or not other.enabled:
                continue
            lo = min(spec.address, other.spec.address)
            if max(spec.end, other.spec.end) - lo > reach:
                continue
            # its next read, or the one its interval then puts at or after earliest
            due, step = other.next_due, other.effective_interval
            if due < earliest and STEADY_ONLY and step > fastest:
                continue  # a longer interval may have changed by then
            if due < earliest and step > 0:
                due += math.ceil((earliest - due) / step - _EPS) * step
            if earliest <= due <= latest and (best is None or due < best):
                best = due
        return best

    def end_cycle(self, now: float) -> list[str]:
        """Set the next read of every locked register read in this cycle.

        Returns the registers whose next read the lock set.
        """
        read, self._read = self._read, []
        if not read or not self.enabled:
            return []
        regs, schedule, tracks = self._regs, self._core.schedule, self._tracks
        locked: list[str] = []
        for uid in dict.fromkeys(read):
            track = tracks.get(uid)
            reg = regs[uid]
            expected = None if track is None else track.expected(reg.model.rate)
            if expected is None or track is None:
                continue
            limits = reg.model.limits
            if (
                not reg.enabled
                or reg.viewed
                or reg.quarantined_until is not None
                or reg.failure_streak
                or reg.pin is not None
                or uid in schedule.unscheduled
                or limits.min_interval >= limits.max_interval
            ):
                continue
            due = self._ride(reg, expected, now)
            if due is None or due > track.last_t + limits.max_interval:
                continue
            if not DEFER and due >= reg.next_due - _EPS:
                continue  # the model reads it by then anyway
            schedule.due_at(reg, due)
            locked.append(uid)
        self.stats.locked_reads += len(locked)
        return locked
