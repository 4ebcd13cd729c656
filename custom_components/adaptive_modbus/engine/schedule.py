"""When each register is read next: engine time, the due-time heap, intervals, retries.

Due times, intervals and backoffs run on an injected monotonic clock (engine time);
the wall clock is used only for time-of-week patterns and for times shown to users.
"""

from __future__ import annotations

from collections.abc import (
    Callable,
    Collection,
    Container,
    Iterable,
    Iterator,
    Sequence,
)
import heapq
import math
from operator import attrgetter

from .config import EngineConfig, Tuning
from .intervals import aligned_due, quantize
from .registry import RegisterState

BATCH_WINDOW = 0.25  # registers due within this many seconds ride in the same cycle
_DUE_EPS = (
    1e-6  # as intervals.aligned_due: a read this share of an interval early is on time
)
_REL_EPS = 1e-9  # as intervals.quantize

Clock = Callable[[], float]
_ENABLED = attrgetter("enabled")
HeapEntry = tuple[float, int, str]  # (due time, sequence number, uid)


def _early_interval(reg: RegisterState) -> float:
    """Return a bucket's value for ``reg``: its interval, -1 when never read early."""
    if reg.enabled and reg.quarantined_until is None:
        return reg.effective_interval
    return -1.0


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
    """Due times as clusters: one bucket per due time, one entry per enabled register.

    Aligned intervals (see :func:`~.intervals.aligned_due`) put the registers that
    share a block on the same instants, so a cycle pops a few due times, each with
    its whole cluster of registers, instead of one heap entry per register. Within
    a due time registers keep the order they were scheduled in (a register
    rescheduled moves to the end), which is the order of the former per-register
    heap (due time, then sequence number). A disabled register is dropped when its
    due time comes. Registers popped in a cycle stay in ``unscheduled`` until they
    are pushed again.

    A bucket maps each uid to its register, which keeps its ``effective_interval``
    as it was scheduled (``scheduled_interval``, -1 for one disabled or
    quarantined) and its bucket's due time (``bucket_at``), so the registers nearly due
    (:meth:`nearly_due`) are found a bucket at a time. Whoever changes a scheduled
    register's interval, ``enabled`` or quarantine without pushing it calls
    :meth:`refresh`.

    Each bucket also keeps its registers as a bit mask per (unit, table) group
    (``RegisterState.group`` and ``bit``), and a pop hands out the due set that way
    too (``popped_masks``): the planner keys its cached plans by those masks, a
    group at a time, instead of hashing and comparing the whole due set each cycle.
    """

    def __init__(
        self,
        regs: dict[str, RegisterState],
        clock: EngineClock,
        config: EngineConfig,
        tuning: Tuning | None = None,
    ) -> None:
        """Schedule the registers of ``regs`` on ``clock`` (nothing is due yet)."""
        self._regs = regs
        self._clock = clock
        self._config = config
        self._tuning = tuning or Tuning()
        self._times: list[float] = []  # heap of due times (some may be stale)
        # due time -> its registers by uid, in order (each register's interval as
        # scheduled, -1 when not read early: ``RegisterState.scheduled_interval``;
        # the due time of its bucket: ``bucket_at``)
        self._buckets: dict[float, dict[str, RegisterState]] = {}
        # due time -> the bucket's uids as a bit mask per group (none empty)
        self._masks: dict[float, dict[int, int]] = {}
        # due time -> how many of its registers have each interval (as scheduled):
        # a few distinct values, so the smallest and largest are found at once
        self._counts: dict[float, dict[float, int]] = {}
        self._seq = 0
        self.unscheduled: set[str] = set()  # popped this cycle, not yet rescheduled
        self.popped: set[str] = set()  # the uids the last pop_due handed out
        self.popped_masks: dict[int, int] = {}  # the same, as a bit mask per group
        # demand-driven polling (see demand.py): live viewers per unit, and the hook
        # that shortens a viewed unit's intervals
        self.viewed: dict[int, int] = {}
        self.viewed_cap: Callable[[RegisterState, float], float] | None = None

    @property
    def heap(self) -> list[HeapEntry]:
        """Every scheduled entry as (due time, sequence number, uid), in due order."""
        return [
            (t, reg.heap_seq, uid)
            for t in sorted(self._buckets)
            for uid, reg in self._buckets[t].items()
        ]

    @property
    def _at(self) -> dict[str, float]:
        """Each scheduled register's due time (its bucket's), by uid."""
        return {uid: t for t, bucket in self._buckets.items() for uid in bucket}

    def _bucket_time(self, reg: RegisterState) -> float | None:
        """Return the due time of the register's bucket; None when not scheduled.

        ``bucket_at`` is left as it was when a pop takes the whole bucket: the
        register is scheduled only while that bucket holds it.
        """
        t = reg.bucket_at
        if t is None:
            return None
        bucket = self._buckets.get(t)
        if bucket is None or reg.spec.uid not in bucket:
            return None
        return t

    def push(self, reg: RegisterState) -> None:
        """Put the register in the bucket of its ``next_due``."""
        self._place((reg,))

    def _place(self, regs: Iterable[RegisterState]) -> None:
        """:meth:`push` each of ``regs`` in turn (a block's reads: one call).

        The same buckets, bucket order, masks, counts and sequence numbers as one
        push per register; a bucket is looked up once for the registers that follow
        one another into it (a bucket holding a register placed here is not left
        empty, so not dropped, by the removals that follow).
        """
        buckets, all_masks, all_counts = self._buckets, self._masks, self._counts
        discard = self.unscheduled.discard
        seq = self._seq
        last: float | None = None
        bucket: dict[str, RegisterState] = {}
        masks: dict[int, int] = {}
        counts: dict[float, int] = {}
        for reg in regs:
            uid = reg.spec.uid
            discard(uid)
            seq += 1
            reg.heap_seq = seq
            group, bit = reg.group, reg.bit
            old = reg.bucket_at
            if old is not None and (previous := buckets.get(old)) is not None:
                if previous.pop(uid, None) is None:
                    pass  # not there: taken by a pop since
                elif not previous:
                    del buckets[old], all_masks[old], all_counts[old]
                    if old == last:  # a register placed twice: look the bucket up
                        last = None
                else:  # as _remove
                    old_counts = all_counts[old]
                    value = reg.scheduled_interval
                    count = old_counts[value] - 1
                    if count:
                        old_counts[value] = count
                    else:
                        del old_counts[value]
                    old_masks = all_masks[old]
                    mask = old_masks[group] ^ bit
                    if mask:
                        old_masks[group] = mask
                    else:
                        del old_masks[group]
            t = reg.next_due
            # _early_interval(reg), inlined (the read path)
            value = (
                reg.effective_interval
                if reg.enabled and reg.quarantined_until is None
                else -1.0
            )
            if t == last:  # the bucket of the register before
                masks[group] = masks.get(group, 0) | bit
                counts[value] = counts.get(value, 0) + 1
            elif (found := buckets.get(t)) is None:
                bucket = buckets[t] = {}
                masks = all_masks[t] = {group: bit}
                counts = all_counts[t] = {value: 1}
                heapq.heappush(self._times, t)
                if len(self._times) > 4 * len(buckets) + 64:
                    self._times = list(buckets)
                    heapq.heapify(self._times)
            else:
                bucket, masks, counts = found, all_masks[t], all_counts[t]
                masks[group] = masks.get(group, 0) | bit
                counts[value] = counts.get(value, 0) + 1
            last = t
            bucket[uid] = reg
            reg.scheduled_interval = value
            reg.bucket_at = t
        self._seq = seq

    def refresh(self, reg: RegisterState) -> None:
        """Note a scheduled register's new interval, ``enabled`` or quarantine.

        Its place in the schedule stays as it is.
        """
        t = self._bucket_time(reg)
        if t is not None:
            self._count(t, reg.scheduled_interval, -1)
            reg.scheduled_interval = _early_interval(reg)
            self._count(t, reg.scheduled_interval, 1)

    def _nearly_buckets(
        self, now: float, fraction: float
    ) -> Iterator[tuple[float, dict[str, RegisterState], float | None]]:
        """Yield (due time, bucket, left) of the buckets with a nearly due register.

        ``left`` is None when the whole bucket is nearly due, else the time left
        (each register is nearly due when ``left <= fraction * its interval``).
        """
        for t, bucket in self._buckets.items():
            left = t - now
            if left <= 0.0:
                continue
            low, high = self._span(t)
            if left > fraction * high:
                continue
            yield t, bucket, (None if left <= fraction * low else left)

    def nearly_due(self, now: float, fraction: float) -> set[str]:
        """Return the scheduled registers with at most ``fraction`` of their interval left.

        That is ``next_due - now <= fraction * effective_interval``, enabled and not
        quarantined, decided a bucket at a time where its intervals allow (none or
        all of it), else register by register. A bucket due by ``now`` is not
        looked at: in a cycle the schedule handed those out as due.
        """
        found: set[str] = set()
        for _, bucket, left in self._nearly_buckets(now, fraction):
            if left is None:
                found.update(bucket)
            else:
                found.update(
                    [
                        uid
                        for uid, reg in bucket.items()
                        if left <= fraction * reg.scheduled_interval
                    ]
                )
        return found

    def nearly_due_masks(self, now: float, fraction: float) -> dict[int, int]:
        """Return :meth:`nearly_due` as a bit mask per group (none empty)."""
        found: dict[int, int] = {}
        get = found.get
        for t, bucket, left in self._nearly_buckets(now, fraction):
            if left is None:
                for group, mask in self._masks[t].items():
                    found[group] = get(group, 0) | mask
                continue
            for reg in bucket.values():
                if left <= fraction * reg.scheduled_interval:
                    found[reg.group] = get(reg.group, 0) | reg.bit
        return found

    def _span(self, t: float) -> tuple[float, float]:
        """Return the smallest and largest interval of the bucket due at ``t``."""
        counts = self._counts[t]
        return min(counts), max(counts)

    def _count(self, t: float, value: float, delta: int) -> None:
        """Count ``delta`` more registers with interval ``value`` in bucket ``t``."""
        counts = self._counts[t]
        count = counts.get(value, 0) + delta
        if count:
            counts[value] = count
        else:
            del counts[value]

    def _remove(self, reg: RegisterState) -> None:
        """Take the register out of its bucket (a bucket left empty goes)."""
        t = self._bucket_time(reg)
        if t is None:
            return
        bucket = self._buckets[t]
        del bucket[reg.spec.uid]
        if not bucket:
            del self._buckets[t], self._masks[t], self._counts[t]
            return
        self._count(t, reg.scheduled_interval, -1)
        masks = self._masks[t]
        mask = masks[reg.group] ^ reg.bit
        if mask:
            masks[reg.group] = mask
        else:
            del masks[reg.group]

    def due_at(self, reg: RegisterState, t: float) -> None:
        """Make the register due at ``t``."""
        reg.next_due = t
        self.push(reg)

    def may_advance(self, reg: RegisterState) -> bool:
        """Whether a register's next read may be brought forward (:meth:`due_at`).

        Not when it is disabled, quarantined or failing, nor while it was popped in
        this cycle and is not rescheduled yet.
        """
        return (
            reg.enabled
            and reg.quarantined_until is None
            and not reg.failure_streak
            and reg.spec.uid not in self.unscheduled
        )

    def is_live(self, entry: HeapEntry) -> bool:
        """Whether an entry is its register's current one."""
        reg = self._regs[entry[2]]
        return (
            reg.enabled
            and self._bucket_time(reg) == entry[0]
            and reg.heap_seq == entry[1]
        )

    def _first_bucket(self) -> float:
        """Earliest due time with an enabled register (disabled ones are dropped)."""
        times, buckets = self._times, self._buckets
        while times:
            t = times[0]
            bucket = buckets.get(t)
            if bucket is not None:
                for reg in list(bucket.values()):
                    if reg.enabled:
                        return t
                    self._remove(reg)
            heapq.heappop(times)
        return math.inf

    def first_due(self, parked_units: Collection[int] = ()) -> float:
        """Engine time of the earliest scheduled register (inf when there is none).

        Registers of a parked unit (one that is down) wait for its probe: they wake
        nothing.
        """
        first = self._first_bucket()
        if not parked_units or first == math.inf:
            return first
        for t in sorted(self._buckets):
            for reg in self._buckets[t].values():
                if reg.enabled and reg.spec.unit_id not in parked_units:
                    return t
        return math.inf

    def pop_due(self, now: float, parked_units: Container[int]) -> list[RegisterState]:
        """Take the registers due by ``now`` (+ batch window) off the schedule, each once.

        Those of a parked unit (one that is down) are dropped: its probe brings them
        back. ``popped`` holds their uids and ``popped_masks`` the same as a bit mask
        per group.
        """
        due: list[RegisterState] = []
        popped: set[str] = set()
        self.popped = popped
        popped_masks: dict[int, int] = {}
        self.popped_masks = popped_masks
        get_mask = popped_masks.get
        horizon = now + BATCH_WINDOW
        times, buckets, all_masks = self._times, self._buckets, self._masks
        unscheduled = self.unscheduled
        # a scheduled register is never in ``unscheduled`` unless it was there before
        # this pop (those popped now leave their buckets): an empty one stays clear
        taken_before = bool(unscheduled)
        while times and times[0] <= horizon:
            t = heapq.heappop(times)
            bucket = buckets.pop(t, None)
            if bucket is None:
                continue
            masks = all_masks.pop(t)
            del self._counts[t]
            cluster = list(bucket.values())
            if (
                not parked_units
                and all(map(_ENABLED, cluster))
                and (not taken_before or unscheduled.isdisjoint(bucket))
            ):
                # the whole cluster is due: taken at once (what the loop below does)
                unscheduled.update(bucket)
                popped.update(bucket)
                for group, mask in masks.items():
                    popped_masks[group] = get_mask(group, 0) | mask
                due += cluster
                continue
            for uid, reg in bucket.items():
                if not reg.enabled or uid in unscheduled:
                    continue
                if reg.spec.unit_id in parked_units:
                    continue
                unscheduled.add(uid)
                popped.add(uid)
                popped_masks[reg.group] = get_mask(reg.group, 0) | reg.bit
                due.append(reg)
        return due

    def _interval_for(self, reg: RegisterState, now: float) -> float:
        if not self._config.adaptive:
            fixed = self._config.fixed_interval
            if reg.pin is None:
                return reg.spec.bounded(fixed)  # the map's own bounds hold here too
            return reg.model.limits.clamp(fixed)
        model = reg.model
        if not self._config.patterns:
            reg.pattern_factor = 1.0
            return quantize(model.interval, model.limits)
        # time-of-week factor, then the daily profile (quiet hours, onsets)
        interval, reg.pattern_factor = reg.profile.interval(
            self._clock.to_wall(now),
            model.interval,
            model.limits,
            self._tuning.pattern_strength,
            model,
        )
        return quantize(interval, model.limits)

    def next_read(self, reg: RegisterState, now: float) -> None:
        """After a read: due again on the register's (aligned) interval."""
        self.next_reads((reg,), now)

    def next_reads(self, regs: Sequence[RegisterState], now: float) -> None:
        """:meth:`next_read` of each of ``regs`` in turn (a block's reads, at ``now``).

        The read path: :meth:`_capped_interval`, :func:`~.intervals.aligned_due` and
        :meth:`due_at` inlined (the same arithmetic); the viewed hook (see demand.py)
        is called only while some unit is viewed (else it marks the register not
        viewed and keeps the interval, which is done here). A register's interval
        and due time depend on nothing another one's push changes, so the pushes
        are made together (:meth:`_place`), in the same order.
        """
        config, viewed_cap = self._config, self.viewed_cap
        fast = config.adaptive
        patterns = config.patterns
        done: list[RegisterState] = []
        try:
            for reg in regs:
                model = reg.model
                limits = model.limits
                if fast and (
                    not patterns or reg.profile.plain(model.interval, limits, model)
                ):
                    # no pattern acts: _interval_for without the wall time,
                    # quantize inlined
                    reg.pattern_factor = 1.0
                    interval, low, high = (
                        model.interval,
                        limits.min_interval,
                        limits.max_interval,
                    )
                    if interval != interval or interval <= low:  # noqa: PLR0124  NaN
                        interval = low
                    elif interval >= high:
                        interval = high
                    else:
                        rung = low * math.pow(
                            2.0, math.floor(math.log2(interval / low) + _REL_EPS)
                        )
                        interval = rung if rung < high else high  # noqa: FURB136
                else:
                    interval = self._interval_for(reg, now)
                if viewed_cap is not None:
                    if self.viewed:
                        interval = viewed_cap(reg, interval)
                    else:  # what the hook does while no unit is viewed
                        reg.viewed = False
                reg.effective_interval = interval
                if not 0.0 < interval < math.inf:
                    aligned_due(now, interval)  # raises: not a positive number
                due = (math.floor(now / interval) + 1) * interval
                if due - now <= _DUE_EPS * interval:  # a hair before a tick is on it
                    due += interval
                reg.next_due = due
                done.append(reg)
        finally:  # as one call per register: those before a failure are pushed
            self._place(done)

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
        else:
            self.refresh(reg)
