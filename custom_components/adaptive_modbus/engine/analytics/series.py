"""Numeric series of irregular reads: time-weighted aggregates and resampling.

Reads under adaptive polling are irregular: a register read every 5 s during an
incident and every 5 min when quiet must not weigh the incident 60 times more.
Every function here treats a read as holding its value until the next read
(sample and hold, as the device's value is known between reads), so a mean is
weighted by the time each value was held.

Samples are anything with ``at`` (wall seconds) and ``value`` (a number, a bool, a
string or None), such as :class:`~adaptive_modbus_engine.history.ReadSample`;
strings, None and non-finite values are left out, bools count as 0/1.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate
import math
from typing import Any, Protocol

from ..registers import Value
from ..spans import check_span


class Sample(Protocol):
    """A read: the time it was taken and its value."""

    @property
    def at(self) -> float:
        """Wall time of the read."""

    @property
    def value(self) -> Value | None:
        """The value read (None: no value)."""


type Point = tuple[float, float]


def as_number(value: Value | None) -> float | None:
    """Return ``value`` as a finite float, or None (strings, None, NaN, inf)."""
    if value is None or isinstance(value, str):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def numeric(samples: Iterable[Sample]) -> list[Point]:
    """Return ``(at, value)`` of the numeric reads, oldest first."""
    points = []
    for sample in samples:
        number = as_number(sample.value)
        if number is not None and math.isfinite(sample.at):
            points.append((float(sample.at), number))
    points.sort(key=lambda p: p[0])
    return points


@dataclass(frozen=True, slots=True)
class Aggregate:
    """Figures of one register over ``start .. end`` (wall seconds).

    ``count``/``minimum``/``maximum``/``mean``/``last`` are over the reads inside the window;
    ``time_weighted_mean`` weighs each value by the time it was held inside the
    window (a read before ``start`` holds into it); ``held`` is the seconds of the
    window covered by a known value.
    """

    start: float
    end: float
    count: int
    minimum: float | None
    maximum: float | None
    mean: float | None
    last: float | None
    time_weighted_mean: float | None
    held: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe figures (rounded)."""
        return {
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "min": _round(self.minimum),
            "max": _round(self.maximum),
            "mean": _round(self.mean),
            "last": _round(self.last),
            "time_weighted_mean": _round(self.time_weighted_mean),
            "held": round(self.held, 3),
        }


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def held_integral(points: list[Point], start: float, end: float) -> tuple[float, float]:
    """Return (integral of the held value, seconds covered) over ``start .. end``."""
    total = 0.0
    covered = 0.0
    for i, (at, value) in enumerate(points):
        if at >= end:
            break
        until = points[i + 1][0] if i + 1 < len(points) else end
        lo, hi = max(at, start), min(until, end)
        if hi > lo:
            total += value * (hi - lo)
            covered += hi - lo
    return total, covered


def aggregate(samples: Iterable[Sample], start: float, end: float) -> Aggregate:
    """Min, max, mean, last, count and time-weighted mean over ``start .. end``.

    The reads counted are those with ``start <= at <= end``; the time-weighted mean
    also uses the last read before ``start`` (its value held into the window). With
    no time held (a single read exactly at ``end``) it is that read's value.
    """
    points = numeric(samples)
    inside = [v for at, v in points if start <= at <= end]
    total, covered = held_integral(points, start, end)
    weighted: float | None = total / covered if covered > 0 else None
    if weighted is None and inside:
        weighted = inside[-1]
    return Aggregate(
        start=start,
        end=end,
        count=len(inside),
        minimum=min(inside) if inside else None,
        maximum=max(inside) if inside else None,
        mean=sum(inside) / len(inside) if inside else None,
        last=inside[-1] if inside else None,
        time_weighted_mean=weighted,
        held=covered,
    )


def resample(points: list[Point], start: float, step: float, count: int) -> list[float]:
    """Time-weighted means of ``count`` slots of ``step`` seconds from ``start``.

    Each read holds until the next; slots before the first read take its value, so
    the series has no gaps.
    """
    if not points or count <= 0 or step <= 0:
        return []
    check_span(start, start + count * step, "resampled slots")
    if start < points[0][0]:
        points = [(start, points[0][1]), *points]
    out: list[float] = []
    i = 0
    n = len(points)
    for k in range(count):
        lo = start + k * step
        hi = lo + step
        while i + 1 < n and points[i + 1][0] <= lo:
            i += 1  # the read in force at the start of the slot
        total = 0.0
        j = i
        while j < n and points[j][0] < hi:
            until = points[j + 1][0] if j + 1 < n else hi
            a, b = max(points[j][0], lo), min(until, hi)
            if b > a:
                total += points[j][1] * (b - a)
            j += 1
        out.append(total / step)
    return out


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def median_spacing(points: list[Point]) -> float:
    """Median time between consecutive reads (0 with fewer than two)."""
    gaps = [b[0] - a[0] for a, b in zip(points, points[1:], strict=False)]
    gaps = [g for g in gaps if g > 0]
    return median(gaps) if gaps else 0.0


def weighted_median(values: list[float], weights: list[float]) -> float:
    """Median of ``values`` each counted ``weights`` times (all weights 0: plain median)."""
    total = sum(weights)
    if total <= 0:
        return median(values)
    order = sorted(range(len(values)), key=values.__getitem__)
    cumulative = list(accumulate(map(weights.__getitem__, order)))
    half = total / 2.0
    i = bisect_left(cumulative, half)
    if i + 1 < len(order) and cumulative[i] == half:  # exactly between two values
        return (values[order[i]] + values[order[i + 1]]) / 2.0
    return values[order[min(i, len(order) - 1)]]
