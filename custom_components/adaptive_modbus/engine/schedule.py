"""When each register is read next: engine time, the due-time heap, intervals, retries.

Due times, intervals and backoffs run on an injected monotonic clock (engine time);
the wall clock is used only for time-of-week patterns and for times shown to users.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container
import heapq
import math

from .config import EngineConfig, Tuning
from .intervals import aligned_due, quantize
from .registry import RegisterState

BATCH_WINDOW = 0.25  # registers due within this many seconds ride in the same cycle

Clock = Callable[[], float]
HeapEntry = tuple[float, int, str]  # (due time, sequence number, uid)


class EngineClock:
    """Engine (monotonic) time and the wall time it corresponds to."""

    def __init__(self, wall: Clock, monotonic: Clock | None = None) -> None:
        """Keep wall time and the monotonic time that drives scheduling."""
        self.wall = wall
        self.now = monotonic or wall  # engine time: everything scheduled runs on it

    def to_wall(self, t: float) -> float:
        """Engine (monotonic) time -> wall time, as of now."""
        if self.wall is self.now:
            return t
        return t + (self.wall() - self.now())

    def from_wall(self, t: float) -> float:
        """Wall time -> engine (monotonic) time, as of now."""
        if self.wall is self.now:
            return t
        return t - (self.wall() - self.now())


class Schedule:
    """A heap of due times with one live entry per enabled register.

    Rescheduling pushes a new entry and leaves the old one dead (its sequence number
    or due time no longer match the register); dead entries are skipped when popped,
    and the heap is rebuilt when they pile up. Registers popped in a cycle stay in
    ``unscheduled`` until they are pushed again.
    """

    def __init__(
        self,
        regs: dict[str, RegisterState],
        clock: EngineClock,
        config: EngineConfig,
        tuning: Tuning | None = None,
    ) -> None:
        """Schedule the registers of ``regs`` on ``clock`` (the heap starts empty)."""
        self._regs = regs
        self._clock = clock
        self._config = config
        self._tuning = tuning or Tuning()
        self.heap: list[HeapEntry] = []
        self._seq = 0
        self.unscheduled: set[str] = set()  # popped this cycle, not yet rescheduled
        # demand-driven polling (see demand.py): live viewers per unit, and the hook
        # that shortens a viewed unit's intervals
        self.viewed: dict[int, int] = {}
        self.viewed_cap: Callable[[RegisterState, float], float] | None = None

    def push(self, reg: RegisterState) -> None:
        """Put the register on the heap at its ``next_due``."""
        self.unscheduled.discard(reg.spec.uid)
        self._seq += 1
        reg.heap_seq = self._seq  # older entries of this register are dead from now on
        heapq.heappush(self.heap, (reg.next_due, self._seq, reg.spec.uid))
        if len(self.heap) > 4 * len(self._regs) + 64:
            self._rebuild()

    def due_at(self, reg: RegisterState, t: float) -> None:
        """Make the register due at ``t``."""
        reg.next_due = t
        self.push(reg)

    def _rebuild(self) -> None:
        self.heap = []
        for reg in self._regs.values():
            if reg.enabled:
                self._seq += 1
                reg.heap_seq = self._seq
                self.heap.append((reg.next_due, self._seq, reg.spec.uid))
        heapq.heapify(self.heap)

    def is_live(self, entry: HeapEntry) -> bool:
        """Whether a heap entry is its register's current one."""
        reg = self._regs[entry[2]]
        return reg.enabled and reg.next_due == entry[0] and reg.heap_seq == entry[1]

    def first_due(self, parked_units: Collection[int] = ()) -> float:
        """Engine time of the earliest live entry (inf when there is none).

        Registers of a parked unit (one that is down) wait for its probe: they wake
        nothing.
        """
        while self.heap and not self.is_live(self.heap[0]):
            heapq.heappop(self.heap)
        if not parked_units:
            return self.heap[0][0] if self.heap else math.inf
        return min(
            (
                entry[0]
                for entry in self.heap
                if self.is_live(entry)
                and self._regs[entry[2]].spec.unit_id not in parked_units
            ),
            default=math.inf,
        )

    def pop_due(self, now: float, parked_units: Container[int]) -> list[RegisterState]:
        """Take the registers due by ``now`` (+ batch window) off the heap, each once.

        Those of a parked unit (one that is down) are dropped: its probe brings them
        back.
        """
        due: list[RegisterState] = []
        horizon = now + BATCH_WINDOW
        while self.heap and self.heap[0][0] <= horizon:
            entry = heapq.heappop(self.heap)
            uid = entry[2]
            if not self.is_live(entry) or uid in self.unscheduled:
                continue
            reg = self._regs[uid]
            if reg.spec.unit_id in parked_units:
                continue
            self.unscheduled.add(uid)
            due.append(reg)
        return due

    def _interval_for(self, reg: RegisterState, now: float) -> float:
        if not self._config.adaptive:
            fixed = self._config.fixed_interval
            return fixed if reg.pin is None else reg.model.limits.clamp(fixed)
        factor = (
            reg.profile.factor(self._clock.to_wall(now))
            if self._config.patterns
            else 1.0
        )
        strength = self._tuning.pattern_strength
        if strength != 1.0 and factor != 1.0:
            factor **= strength
        reg.pattern_factor = factor
        return quantize(reg.model.interval * factor, reg.model.limits)

    def next_read(self, reg: RegisterState, now: float) -> None:
        """After a read: due again on the register's (aligned) interval."""
        interval = self._capped_interval(reg, now)
        reg.effective_interval = interval
        self.due_at(reg, aligned_due(now, interval))

    def retry(self, reg: RegisterState, now: float) -> None:
        """After a failed read: retry soon, backing off with the failure streak."""
        limits = reg.model.limits
        delay = min(
            limits.min_interval * 2 ** min(reg.failure_streak - 1, 10),
            limits.max_interval,
        )
        self.due_at(reg, now + delay)

    def _capped_interval(self, reg: RegisterState, now: float) -> float:
        interval = self._interval_for(reg, now)
        if self.viewed_cap is not None:
            interval = self.viewed_cap(reg, interval)
        return interval

    def rebase(self, reg: RegisterState, now: float) -> None:
        """Recompute a read register's interval and due time (its unit's viewers changed).

        Due on the new interval counted from its last read, or now if that is past.
        """
        if reg.last_read is None:
            return
        interval = self._capped_interval(reg, now)
        reg.effective_interval = interval
        due = max(now, aligned_due(reg.last_read, interval))
        if due != reg.next_due:
            self.due_at(reg, due)
