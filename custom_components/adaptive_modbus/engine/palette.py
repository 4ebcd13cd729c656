"""Interval classes, their colours and the trend rules: one place for every view.

Charts, the JSON export and the card all classify intervals and colour them with
:data:`DEFAULT_PALETTE` (or a :class:`Palette` the user configured), so a register
is "fast" and red everywhere, never by a rule copied into one view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import math
from typing import Any

from .errors import EngineUsageError


@dataclass(frozen=True, slots=True)
class IntervalClass:
    """Intervals up to ``upper`` seconds (inclusive) belong to this class."""

    name: str
    upper: float
    colour: str  # CSS hex colour


@dataclass(frozen=True, slots=True)
class Trend:
    """Direction of a register's interval over a window, with its confidence."""

    direction: str  # "rising", "falling", "stable" or "unknown" (too few points)
    slope: float  # doublings of the interval per hour (log2 regression slope)
    confidence: float  # r² of the regression, 0..1
    points: int


_DEFAULT_CLASSES = (
    IntervalClass("realtime", 10.0, "#d62728"),
    IntervalClass("fast", 30.0, "#ff7f0e"),
    IntervalClass("moderate", 120.0, "#e6b800"),
    IntervalClass("slow", 300.0, "#2ca02c"),
    IntervalClass("idle", math.inf, "#1f77b4"),
)


@dataclass(frozen=True, slots=True)
class Palette:
    """Interval classes (ascending bounds, the last unbounded) and trend thresholds.

    A trend is "rising" or "falling" when the interval's log2 changes by at least
    ``trend_slope`` doublings per hour and the regression explains at least
    ``trend_confidence`` of the variance; below ``trend_min_points`` it is "unknown".
    """

    classes: tuple[IntervalClass, ...] = field(default=_DEFAULT_CLASSES)
    trend_slope: float = 0.5
    trend_confidence: float = 0.5
    trend_min_points: int = 3

    def __post_init__(self) -> None:
        """Refuse classes whose bounds do not strictly ascend."""
        bounds = [c.upper for c in self.classes]
        if not bounds or bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise EngineUsageError("interval classes need strictly ascending bounds")
        if not math.isinf(bounds[-1]):
            raise EngineUsageError("the last interval class must be unbounded")
        if self.trend_slope <= 0 or not 0 <= self.trend_confidence <= 1:
            raise EngineUsageError("trend thresholds: slope > 0, confidence in 0..1")

    def classify(self, interval: float) -> IntervalClass:
        """Return the class of an interval in seconds."""
        for cls in self.classes:
            if interval <= cls.upper:
                return cls
        return self.classes[-1]

    def trend(self, points: Sequence[tuple[float, float]]) -> Trend:
        """Trend of ``(time s, interval s)`` points by least squares on log2(interval)."""
        usable = [
            (t / 3600.0, math.log2(v)) for t, v in points if v > 0 and math.isfinite(v)
        ]
        n = len(usable)
        if n < self.trend_min_points:
            return Trend("unknown", 0.0, 0.0, n)
        mean_x = sum(x for x, _ in usable) / n
        mean_y = sum(y for _, y in usable) / n
        sxx = sum((x - mean_x) ** 2 for x, _ in usable)
        syy = sum((y - mean_y) ** 2 for _, y in usable)
        sxy = sum((x - mean_x) * (y - mean_y) for x, y in usable)
        if sxx <= 0:
            return Trend("unknown", 0.0, 0.0, n)
        slope = sxy / sxx
        confidence = 1.0 if syy <= 0 else min(1.0, sxy * sxy / (sxx * syy))
        direction = "stable"
        if abs(slope) >= self.trend_slope and confidence >= self.trend_confidence:
            direction = "rising" if slope > 0 else "falling"
        return Trend(direction, slope, confidence, n)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (an unbounded class has ``upper`` None)."""
        return {
            "classes": [
                {
                    "name": c.name,
                    "upper": None if math.isinf(c.upper) else c.upper,
                    "colour": c.colour,
                }
                for c in self.classes
            ],
            "trend_slope": self.trend_slope,
            "trend_confidence": self.trend_confidence,
            "trend_min_points": self.trend_min_points,
        }


DEFAULT_PALETTE = Palette()
