"""What the loop sees of the live engine: a bounded read buffer and window meters.

:class:`ReadBuffer` keeps, per register, the reads that changed its value (time,
value) in a bounded ring (:data:`READS_KEPT` each): enough to serve the register
sample-and-hold over the last hour or so in a shadow replay. :class:`WindowMeter`
accumulates one measurement window from the engine's read listener and the cycle
results: requests, errors, bus time, latency and measured staleness (a change
beyond tolerance is counted with half the gap since the read before it: the
expected time it went unseen).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
import math
from typing import Any

from ..registers import Value
from ..replay import Series, as_float
from ..scheduler import CycleResult

READS_KEPT = 1024  # changed reads kept per register
LATENCIES_KEPT = 2048  # per-request latencies kept per window (for the p95)


class ReadBuffer:
    """Per register, the last :data:`READS_KEPT` reads that changed its value."""

    def __init__(self, started: float) -> None:
        """Start empty at engine time ``started``."""
        self.started = started
        self._rings: dict[str, deque[tuple[float, Value]]] = {}

    def add(self, uid: str, t: float, value: Value | None) -> None:
        """Note a read of ``uid`` at ``t`` (kept only when the value changed)."""
        stored: Value = 0.0 if value is None else value
        ring = self._rings.get(uid)
        if ring is None:
            ring = self._rings[uid] = deque(maxlen=READS_KEPT)
        elif ring[-1][1] == stored:
            return
        ring.append((t, stored))

    def covered_from(self) -> float:
        """Return the earliest time from which every register's ring is complete."""
        start = self.started
        for ring in self._rings.values():
            if len(ring) == ring.maxlen:
                start = max(start, ring[0][0])
        return start

    def series(self, start: float, end: float | None = None) -> dict[str, Series]:
        """Return per register the samples from ``start`` to ``end`` (with the value at ``start``).

        Copies: the result can go to another thread.
        """
        out: dict[str, Series] = {}
        for uid, ring in self._rings.items():
            items = list(ring)
            first = 0
            for index, (t, _) in enumerate(items):
                if t <= start:
                    first = index
                else:
                    break
            kept = [item for item in items[first:] if end is None or item[0] <= end]
            times = [max(t, start) for t, _ in kept]
            out[uid] = (times, [v for _, v in kept])
        return out


BUCKET = 60.0  # s per bucket of the meter
BUCKETS_KEPT = 6 * 60  # six hours of buckets


@dataclass
class Window:
    """Totals of a stretch of time (engine time): one bucket, or a sum of them."""

    start: float
    end: float = 0.0
    requests: int = 0
    errors: int = 0
    bus_time: float = 0.0
    registers_read: int = 0
    changes: int = 0  # changes beyond tolerance seen
    stale: float = 0.0  # s, sum over changes of half the gap before the read
    # how much the registers moved, in tolerances (each read counts at most 1):
    # whether the window put freshness to the test at all
    moved: float = 0.0
    moved_by: dict[str, float] = field(default_factory=dict)  # ... per register
    # changes beyond tolerance and their staleness (s) per register: a register
    # found noisy later is left out of every window, not only of those after
    changes_by: dict[str, int] = field(default_factory=dict)
    stale_by: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)

    def add(self, other: Window) -> None:
        """Add another window's totals into this one."""
        self.requests += other.requests
        self.errors += other.errors
        self.bus_time += other.bus_time
        self.registers_read += other.registers_read
        self.changes += other.changes
        self.stale += other.stale
        self.moved += other.moved
        for uid, moved in other.moved_by.items():
            self.moved_by[uid] = self.moved_by.get(uid, 0.0) + moved
        for uid, changes in other.changes_by.items():
            self.changes_by[uid] = self.changes_by.get(uid, 0) + changes
        for uid, stale in other.stale_by.items():
            self.stale_by[uid] = self.stale_by.get(uid, 0.0) + stale
        if len(self.latencies) < LATENCIES_KEPT:
            self.latencies.extend(other.latencies)

    def figures(
        self, registers: int, exclude: Collection[str] = ()
    ) -> dict[str, float]:
        """Return the window's figures (see :mod:`.goals`).

        The registers ``exclude`` (noisy now) count in none of the staleness and
        movement figures, whenever they were measured.
        """
        span = max(self.end - self.start, 1e-9)
        changes = self.changes - sum(self.changes_by.get(uid, 0) for uid in exclude)
        stale = self.stale - sum(self.stale_by.get(uid, 0.0) for uid in exclude)
        moved = self.moved - sum(self.moved_by.get(uid, 0.0) for uid in exclude)
        ordered = sorted(self.latencies)
        p95 = (
            ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
            if ordered
            else 0.0
        )
        return {
            "seconds": round(span, 1),
            "requests_per_min": 60.0 * self.requests / span,
            "bus_utilisation": self.bus_time / span,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "p95_latency": p95,
            "time_out_of_tolerance": max(stale, 0.0) / (span * max(registers, 1)),
            "first_change_delay": stale / changes if changes > 0 else 0.0,
            "changes": float(changes),
            "moved": round(max(moved, 0.0), 3),
            # what the read plan costs per register read: independent of how much
            # there was to read (the cluster strategy is judged on these)
            "requests_per_register": self.requests / self.registers_read
            if self.registers_read
            else 0.0,
            "bus_per_register": self.bus_time / self.registers_read
            if self.registers_read
            else 0.0,
        }


class WindowMeter:
    """Measures the live engine minute by minute; any stretch of the last hours sums up."""

    def __init__(self, tolerances: Mapping[str, float], now: float) -> None:
        """Measure against the registers' ``tolerances`` (numeric registers only)."""
        self.tolerances = dict(tolerances)
        self.noisy: set[str] = set()  # noise beyond tolerance: left out of staleness
        self.started = now
        self._buckets: deque[Window] = deque(maxlen=BUCKETS_KEPT)
        self._last: dict[str, float] = {}

    def _bucket(self, t: float) -> Window:
        start = math.floor(t / BUCKET) * BUCKET
        if not self._buckets or self._buckets[-1].start < start:
            self._buckets.append(Window(start, start + BUCKET))
        return self._buckets[-1]

    def on_read(
        self, uid: str, t: float, value: Value | None, previous: float | None
    ) -> None:
        """Count a change beyond tolerance, with half the gap since the read before."""
        tol = self.tolerances.get(uid)
        if tol is None:
            return
        number = as_float(value)
        last = self._last.get(uid)
        self._last[uid] = number
        if last is None or previous is None or math.isnan(number) or math.isnan(last):
            return
        if uid in self.noisy or number == last:
            return
        step = abs(number - last) / max(tol, 1e-9)
        bucket = self._bucket(t)
        bucket.moved += min(step, 1.0)
        bucket.moved_by[uid] = bucket.moved_by.get(uid, 0.0) + min(step, 1.0)
        if step > 1.0:
            bucket.changes += 1
            bucket.stale += 0.5 * (t - previous)
            bucket.changes_by[uid] = bucket.changes_by.get(uid, 0) + 1
            bucket.stale_by[uid] = bucket.stale_by.get(uid, 0.0) + 0.5 * (t - previous)

    def on_cycle(self, result: CycleResult, t: float) -> None:
        """Add a cycle's requests, errors and bus time (the cycle ended at ``t``)."""
        bucket = self._bucket(t)
        bucket.requests += result.requests
        bucket.errors += len(result.errors)
        bucket.bus_time += result.duration
        bucket.registers_read += result.registers_read
        if result.requests and len(bucket.latencies) < LATENCIES_KEPT:
            bucket.latencies.append(result.duration / result.requests)

    def window(self, start: float, end: float) -> Window:
        """Return the totals of the whole minutes from ``start`` to ``end``.

        The minute a change was applied in belongs to neither side.
        """
        first = math.ceil(max(start, self.started) / BUCKET) * BUCKET
        last = max(math.floor(end / BUCKET) * BUCKET, first)
        total = Window(first, last)
        for bucket in self._buckets:
            if first <= bucket.start and bucket.end <= last:
                total.add(bucket)
        return total

    def moved(self, start: float, end: float, uids: Collection[str]) -> float:
        """Return how far the registers ``uids`` moved from ``start`` to ``end``, in tolerances."""
        by = self.window(start, end).moved_by
        return sum(by.get(uid, 0.0) for uid in uids)

    def figures(self, start: float, end: float) -> dict[str, float]:
        """Return the figures from ``start`` to ``end`` (engine time)."""
        return self.window(start, end).figures(self.registers, self.noisy)

    def per_minute(self, start: float, end: float) -> list[dict[str, float]]:
        """Return the figures of each whole minute from ``start`` to ``end``.

        A minute without a cycle counts as a quiet minute (all zero). What the
        variance of a window's figures is estimated from.
        """
        first = math.ceil(max(start, self.started) / BUCKET) * BUCKET
        last = math.floor(end / BUCKET) * BUCKET
        by_start = {b.start: b for b in self._buckets if first <= b.start < last}
        registers = self.registers
        out = []
        t = first
        while t < last:
            bucket = by_start.get(t) or Window(t, t + BUCKET)
            out.append(bucket.figures(registers, self.noisy))
            t += BUCKET
        return out

    @property
    def registers(self) -> int:
        """Registers whose staleness is measured."""
        return max(len(self.tolerances) - len(self.noisy), 1)


def rounded(figures: Mapping[str, float]) -> dict[str, Any]:
    """Return figures rounded for display and the audit."""
    return {key: round(value, 5) for key, value in figures.items()}
