"""Visualization history: bounded ring buffers per register and hourly aggregates.

:class:`History` is fed after every poll cycle with the cycle's :class:`CycleResult`
and a fresh :class:`EngineSnapshot` (the engine's public read API) and keeps:

- per register, the last interval changes (wall time, old, new, reason) and the
  last reads (wall time, value);
- per connection, hourly aggregates (UTC hours, wall time): requests, registers
  read, bus time, errors, and what fixed per-entity polling would have cost.

Only a small part is persisted (:meth:`History.export_state`): the hourly
aggregates of the last 30 days and the last few interval changes per register.
Reads stay in memory. Times are wall-clock seconds since the epoch (UTC), so
charts can bucket them in any time zone.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
import math
from typing import Any

from .planner import CostModel
from .registers import Value
from .scheduler import CycleResult
from .stats import EngineSnapshot

HISTORY_VERSION = 1
HOUR = 3600.0
HOURS_KEPT = 30 * 24  # hourly aggregates kept (and persisted): 30 days
CHANGES_KEPT = 64  # interval changes per register in memory
CHANGES_PERSISTED = 8  # of which persisted with the learned state
READS_KEPT = 256  # reads per register, in memory only
# an interval change is kept when the interval moved by at least this many doublings
# (0.25: ~19 %) from the last one kept, or its reason changed: the engine adjusts
# intervals by a few percent many times an hour, a timeline needs the steps
MIN_STEP = 0.25
# a gap between two cycles longer than this is downtime (HA stopped, connection
# paused): fixed polling would not have run either, so it is not counted
MAX_GAP = 15 * 60.0


@dataclass(frozen=True, slots=True)
class IntervalEvent:
    """A register's interval changed at ``at`` (wall time)."""

    at: float
    old: float
    new: float
    reason: str


@dataclass(frozen=True, slots=True)
class ReadSample:
    """A value as read at ``at`` (wall time)."""

    at: float
    value: Value | None


@dataclass(frozen=True, slots=True)
class HourStats:
    """Totals of one UTC hour starting at ``start`` (wall time, a multiple of 3600)."""

    start: float
    requests: int = 0
    registers_read: int = 0
    bus_time: float = 0.0  # seconds the connection waited on requests
    errors: int = 0
    cycles: int = 0
    seconds: float = 0.0  # seconds of this hour the engine was polling
    fixed_requests: float = 0.0  # what one request per entity per fixed interval costs
    fixed_bus_time: float = 0.0  # its bus time, priced with the cost model in force


class FloatRing:
    """A ring of fixed-width float rows in one ``array('d')`` (16-32 bytes a row)."""

    __slots__ = ("_cap", "_data", "_start", "_width")

    def __init__(self, capacity: int, width: int) -> None:
        """Keep the last ``capacity`` rows of ``width`` floats."""
        self._cap = max(1, capacity)
        self._width = width
        self._data = array("d")
        self._start = 0  # index of the oldest row once full

    def __len__(self) -> int:
        """Return the number of rows kept."""
        return len(self._data) // self._width

    def append(self, row: Sequence[float]) -> int:
        """Add a row, dropping the oldest when full; returns the slot it went to."""
        if len(self) < self._cap:
            self._data.extend(row)
            return len(self) - 1
        slot = self._start
        self._data[slot * self._width : (slot + 1) * self._width] = array("d", row)
        self._start = (self._start + 1) % self._cap
        return slot

    def slots(self) -> Iterator[int]:
        """Slots oldest first."""
        n = len(self)
        first = self._start if n == self._cap else 0
        return ((first + i) % self._cap for i in range(n))

    def row(self, slot: int) -> tuple[float, ...]:
        """Return the row in ``slot``."""
        return tuple(self._data[slot * self._width : (slot + 1) * self._width])

    def last(self) -> tuple[float, ...] | None:
        """Return the newest row (None: empty)."""
        n = len(self)
        if not n:
            return None
        return self.row((self._start - 1) % n)

    def columns(self) -> list[list[float]]:
        """Return each column of the rows kept, oldest first."""
        w = self._width
        data = self._data
        if self._start:
            data = data[self._start * w :] + data[: self._start * w]
        return [data[i::w].tolist() for i in range(w)]


class ChangeRing:
    """Interval changes of one register: floats in a ring, reasons by slot."""

    __slots__ = ("_floats", "_last", "_reasons")

    def __init__(self, capacity: int) -> None:
        """Keep the last ``capacity`` changes."""
        self._floats = FloatRing(capacity, 3)
        self._reasons: list[str] = []
        self._last: int | None = None

    def __len__(self) -> int:
        """Return the number of changes kept."""
        return len(self._floats)

    def append(self, event: IntervalEvent) -> None:
        """Keep one change (the oldest goes when full)."""
        slot = self._floats.append((event.at, event.old, event.new))
        self._last = slot
        if slot == len(self._reasons):
            self._reasons.append(event.reason)
        else:
            self._reasons[slot] = event.reason

    def __iter__(self) -> Iterator[IntervalEvent]:
        """Yield the changes kept, oldest first."""
        for slot in self._floats.slots():
            at, old, new = self._floats.row(slot)
            yield IntervalEvent(at, old, new, self._reasons[slot])

    def last(self) -> IntervalEvent | None:
        """Return the newest change."""
        if self._last is None:
            return None
        at, old, new = self._floats.row(self._last)
        return IntervalEvent(at, old, new, self._reasons[self._last])


class ReadRing:
    """Reads of one register: (time, value) as two floats a read (NaN: no value).

    Booleans and integers come back as such; a register that ever reads a string
    keeps its values in a plain list beside the times.
    """

    __slots__ = ("_floats", "_kind", "_texts")

    def __init__(self, capacity: int) -> None:
        """Keep the last ``capacity`` reads."""
        self._floats = FloatRing(capacity, 2)
        self._kind: type = float
        self._texts: list[str | None] | None = None

    def __len__(self) -> int:
        """Return the number of reads kept."""
        return len(self._floats)

    def append(self, at: float, value: Value | None) -> None:
        """Keep one read."""
        if isinstance(value, str) and self._texts is None:
            self._texts = [None] * len(self._floats)
        if isinstance(value, bool | int) and len(self._floats) == 0:
            self._kind = type(value)
        number = math.nan
        if value is not None and not isinstance(value, str):
            number = float(value)
        slot = self._floats.append((at, number))
        if self._texts is not None:
            text = value if isinstance(value, str) else None
            if slot == len(self._texts):
                self._texts.append(text)
            else:
                self._texts[slot] = text

    def __iter__(self) -> Iterator[ReadSample]:
        """Yield the reads kept, oldest first."""
        for slot in self._floats.slots():
            at, number = self._floats.row(slot)
            value: Value | None = None
            if self._texts is not None and self._texts[slot] is not None:
                value = self._texts[slot]
            elif not math.isnan(number):
                value = self._kind(number)
            yield ReadSample(at, value)


class History:
    """Bounded visualization history of one connection."""

    def __init__(
        self,
        *,
        changes_kept: int = CHANGES_KEPT,
        reads_kept: int = READS_KEPT,
        hours_kept: int = HOURS_KEPT,
        min_step: float = MIN_STEP,
    ) -> None:
        """Set the ring sizes (per register for changes and reads) and the change filter."""
        self._min_step = min_step
        self._changes_kept = changes_kept
        self._reads_kept = reads_kept
        self._hours_kept = hours_kept
        self.changes: dict[str, ChangeRing] = {}
        self.reads: dict[str, ReadRing] = {}
        self._hours: dict[float, HourStats] = {}
        self._seen_changes: int | None = None  # Totals.interval_changes already taken
        self._seen_requests: int | None = None  # Totals.requests already taken
        self._last_read: dict[str, float] = {}
        self._last_wall: float | None = None
        self.observed = 0  # cycles taken so far
        self.last_reads: list[str] = []  # registers newly read in the last cycle taken

    # -- feeding ----------------------------------------------------------

    def observe(
        self,
        result: CycleResult,
        snapshot: EngineSnapshot,
        cost: CostModel | None = None,
    ) -> None:
        """Take what one poll cycle did; ``snapshot`` is taken right after it."""
        wall = snapshot.to_wall(snapshot.at)
        self.observed += 1
        self._take_changes(snapshot)
        self._take_reads(snapshot)
        bus_time = self._take_bus_time(snapshot)
        cycle_wall = snapshot.to_wall(result.started)
        bucket = self._bucket(cycle_wall)
        self._hours[bucket.start] = replace(
            bucket,
            requests=bucket.requests + result.requests,
            registers_read=bucket.registers_read + result.registers_read,
            bus_time=bucket.bus_time + bus_time,
            errors=bucket.errors + len(result.errors),
            cycles=bucket.cycles + 1,
        )
        if self._last_wall is not None and 0 < wall - self._last_wall <= MAX_GAP:
            self._add_elapsed(self._last_wall, wall, snapshot, cost or CostModel())
        self._last_wall = wall
        self._trim_hours()

    def _take_changes(self, snapshot: EngineSnapshot) -> None:
        total = snapshot.totals.interval_changes
        new = total - (self._seen_changes or 0)
        if self._seen_changes is None or new < 0:  # first look, or the engine restarted
            new = total
        self._seen_changes = total
        recent = snapshot.recent_interval_changes
        for change in recent[len(recent) - min(new, len(recent)) :] if new > 0 else ():
            ring = self.changes.get(change.uid)
            if ring is None:
                ring = self.changes[change.uid] = ChangeRing(self._changes_kept)
            last = ring.last()
            if self._small_step(last, change.interval, change.reason):
                continue  # a small adjustment: the timeline keeps the steps
            ring.append(
                IntervalEvent(
                    at=snapshot.to_wall(change.at),
                    old=change.previous if last is None else last.new,
                    new=change.interval,
                    reason=change.reason,
                )
            )

    def _small_step(
        self, last: IntervalEvent | None, interval: float, reason: str
    ) -> bool:
        if last is None or last.reason != reason or interval <= 0 or last.new <= 0:
            return False
        return abs(math.log2(interval / last.new)) < self._min_step

    def _take_reads(self, snapshot: EngineSnapshot) -> None:
        self.last_reads = taken = []
        for uid, reg in snapshot.registers.items():
            if reg.last_read is None or self._last_read.get(uid) == reg.last_read:
                continue
            self._last_read[uid] = reg.last_read
            taken.append(uid)
            ring = self.reads.get(uid)
            if ring is None:
                ring = self.reads[uid] = ReadRing(self._reads_kept)
            ring.append(reg.last_read, reg.value)

    def _take_bus_time(self, snapshot: EngineSnapshot) -> float:
        total = snapshot.totals.requests
        new = total - (self._seen_requests or 0)
        if self._seen_requests is None or new < 0:
            new = total
        self._seen_requests = total
        recent = snapshot.recent_requests
        if new <= 0:
            return 0.0
        return sum(r.latency for r in recent[len(recent) - min(new, len(recent)) :])

    def _bucket(self, wall: float) -> HourStats:
        start = math.floor(wall / HOUR) * HOUR
        return self._hours.get(start) or HourStats(start=start)

    def _add_elapsed(
        self, begin: float, end: float, snapshot: EngineSnapshot, cost: CostModel
    ) -> None:
        """Spread ``begin..end`` over the hours it covers, with fixed polling's cost."""
        per_second = snapshot.fixed_reads_per_second
        one_read = single_read_seconds(snapshot, cost)
        t = begin
        while t < end:
            bucket = self._bucket(t)
            upto = min(end, bucket.start + HOUR)
            span = upto - t
            fixed = per_second * span
            self._hours[bucket.start] = replace(
                bucket,
                seconds=bucket.seconds + span,
                fixed_requests=bucket.fixed_requests + fixed,
                fixed_bus_time=bucket.fixed_bus_time + fixed * one_read,
            )
            t = upto

    def _trim_hours(self) -> None:
        if len(self._hours) > self._hours_kept:
            for start in sorted(self._hours)[: len(self._hours) - self._hours_kept]:
                del self._hours[start]

    # -- reading ----------------------------------------------------------

    def hours(self, since: float | None = None) -> list[HourStats]:
        """Hourly aggregates (oldest first), from the hour containing ``since`` on."""
        first = None if since is None else math.floor(since / HOUR) * HOUR
        return [
            self._hours[s] for s in sorted(self._hours) if first is None or s >= first
        ]

    def interval_changes(
        self, uid: str, since: float | None = None
    ) -> list[IntervalEvent]:
        """Return a register's interval changes (oldest first) at or after ``since``."""
        ring = self.changes.get(uid, ())
        return [c for c in ring if since is None or c.at >= since]

    def read_samples(self, uid: str, since: float | None = None) -> list[ReadSample]:
        """Return a register's reads (oldest first) at or after ``since``."""
        ring = self.reads.get(uid, ())
        return [r for r in ring if since is None or r.at >= since]

    # -- persistence ------------------------------------------------------

    def export_state(self, *, changes: int = CHANGES_PERSISTED) -> dict[str, Any]:
        """Return the persisted part: hourly rows and the last ``changes`` per register.

        Hour rows are ``[start, requests, registers_read, bus_time, errors, cycles,
        seconds, fixed_requests, fixed_bus_time]``; change rows ``[at, old, new, reason]``.
        """
        return {
            "version": HISTORY_VERSION,
            "hours": [
                [
                    int(h.start),
                    h.requests,
                    h.registers_read,
                    round(h.bus_time, 3),
                    h.errors,
                    h.cycles,
                    round(h.seconds, 1),
                    round(h.fixed_requests, 1),
                    round(h.fixed_bus_time, 3),
                ]
                for h in self.hours()
            ],
            "changes": {
                uid: [
                    [round(c.at), round(c.old, 1), round(c.new, 1), c.reason]
                    for c in list(ring)[-changes:]
                ]
                for uid, ring in self.changes.items()
                if len(ring) and changes > 0
            },
        }

    def import_state(
        self, data: object, uids: Sequence[str] | None = None
    ) -> list[str]:
        """Restore what :meth:`export_state` wrote; returns warnings for what was set aside.

        ``uids``: the registers the connection has now (others are dropped).
        """
        if not isinstance(data, Mapping) or data.get("version") != HISTORY_VERSION:
            return ["visualization history: unknown format, starting empty"]
        warnings: list[str] = []
        keep = None if uids is None else set(uids)
        hours = data.get("hours")
        for row in hours if isinstance(hours, list) else ():
            try:
                start, req, regs, bus, err, cyc, secs, freq, fbus = row
                hour = HourStats(
                    start=float(start),
                    requests=int(req),
                    registers_read=int(regs),
                    bus_time=float(bus),
                    errors=int(err),
                    cycles=int(cyc),
                    seconds=float(secs),
                    fixed_requests=float(freq),
                    fixed_bus_time=float(fbus),
                )
            except (TypeError, ValueError):
                warnings.append(f"visualization history: hour row {row!r} set aside")
                continue
            if math.isfinite(hour.start) and hour.start % HOUR == 0:
                self._hours[hour.start] = hour
        self._trim_hours()
        changes = data.get("changes")
        for uid, rows in changes.items() if isinstance(changes, Mapping) else ():
            if (keep is not None and uid not in keep) or not isinstance(rows, list):
                continue
            ring = self.changes.setdefault(str(uid), ChangeRing(self._changes_kept))
            for row in rows:
                try:
                    at, old, new, reason = row
                    ring.append(
                        IntervalEvent(float(at), float(old), float(new), str(reason))
                    )
                except (TypeError, ValueError):
                    warnings.append(f"visualization history: change of {uid} set aside")
        return warnings


def request_cost(cost: CostModel, count: int, *, bits: bool = False) -> float:
    """Price of one read of ``count`` registers (or bits) under ``cost`` (its units)."""
    per = cost.per_bit if bits else cost.per_register
    return cost.request_overhead + per * count


def single_read_seconds(snapshot: EngineSnapshot, cost: CostModel) -> float:
    """Estimated bus seconds of a one-register read on this connection.

    The measured mean latency of the recent reads, scaled by the cost model from
    their mean size down to one register (the model's units cancel out).
    """
    size = snapshot.registers_per_request
    latency = snapshot.mean_latency
    if latency <= 0 or size <= 0:
        return 0.0
    return latency * request_cost(cost, 1) / request_cost(cost, max(1, round(size)))
