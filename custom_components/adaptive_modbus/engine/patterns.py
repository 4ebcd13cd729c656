"""Time-of-week activity profile: poll more often ahead of historically busy hours.

An :class:`ActivityProfile` keeps one bucket per hour of the week (168, Monday
00:00 local time is bucket 0). Each bucket holds the mean activity of its hour
across weeks: the samples of one visit (the hour in one week) are averaged, and
each finished visit is folded into the bucket's mean with weight
``max(WEEK_ALPHA, 1/weeks)`` (a plain mean for the first weeks, then an
exponential one that follows changing habits). Memory is fixed: five arrays of
168 numbers, however long it runs.

:meth:`ActivityProfile.factor` multiplies a register's interval: it looks ahead
(the busier of the current bucket and the bucket ``lookahead`` seconds on) and
returns ``mean activity / bucket activity`` clipped to
[:data:`FACTOR_MIN`, :data:`FACTOR_MAX`], so the interval shortens ahead of and
during busy hours and lengthens in quiet ones. A bucket counts only once it has
data from :data:`MIN_WEEKS` different weeks; until then, and whenever the
profile is disabled, the factor is exactly 1.0. Its influence is measurable: the
scheduler can record the factor (or use :meth:`ActivityProfile.apply`, which
returns a :attr:`~.intervals.Reason.PATTERN` decision with its detail) and compare
against a run with ``enabled = False``, which still learns.

Activity can be any non-negative measure of movement per read, e.g.
:attr:`~.intervals.IntervalModel.activity` (signal change in tolerances per
second, noise excluded) or ``|Δ| / tolerance``; only ratios matter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .intervals import IntervalDecision, IntervalLimits, Reason

STATE_VERSION = 1
BUCKETS = 168
HOUR = 3600.0
WEEK = BUCKETS * HOUR
EPOCH_HOUR_OF_WEEK = 72
"""Hour of the week of t=0 (1970-01-01 00:00 was a Thursday; Monday 00:00 is hour 0)."""
MIN_WEEKS = 2
"""Different weeks a bucket needs before it influences the factor."""
WEEK_ALPHA = 0.3
"""Smallest weight of the newest finished week in a bucket's mean."""
FACTOR_MIN = 0.25
FACTOR_MAX = 2.0
DEFAULT_LOOKAHEAD = 900.0
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_ARRAYS = ("mean", "weeks", "visit_week", "visit_sum", "visit_n")


class ActivityProfile:
    """Bounded time-of-week activity profile of one register (see the module docstring).

    ``tz_offset`` (seconds east of UTC) maps unix time to local hours;
    ``lookahead`` (seconds) is how far ahead :meth:`factor` looks; ``enabled``
    False makes :meth:`factor` 1.0 while :meth:`record` keeps learning.
    """

    def __init__(
        self,
        *,
        tz_offset: float = 0.0,
        lookahead: float = DEFAULT_LOOKAHEAD,
        enabled: bool = True,
    ) -> None:
        self.tz_offset = float(tz_offset)
        self.lookahead = float(lookahead)
        self.enabled = enabled
        self._mean = [0.0] * BUCKETS  # mean of finished weeks
        self._weeks = [0] * BUCKETS  # finished weeks folded into the mean
        self._visit_week = [-1] * BUCKETS  # week of the visit being collected (-1: none)
        self._visit_sum = [0.0] * BUCKETS
        self._visit_n = [0] * BUCKETS
        # running sum of _known() over all buckets, so mean_activity() is O(1) on the hot path
        self._known_cache: list[float | None] = [None] * BUCKETS
        self._known_sum = 0.0
        self._known_n = 0
        self._any_learned = False  # cheap exit for factor() while nothing is learned

    # ------------------------------------------------------------------ time

    def _hours(self, t: float) -> int:
        return math.floor((t + self.tz_offset) / HOUR) + EPOCH_HOUR_OF_WEEK

    def bucket(self, t: float) -> int:
        """Hour of the week of unix time ``t`` in local time (0 = Monday 00:00-01:00)."""
        return self._hours(t) % BUCKETS

    def week(self, t: float) -> int:
        """Index of the (Monday-based, local) week of ``t`` since the epoch."""
        return self._hours(t) // BUCKETS

    # ------------------------------------------------------------------ learning

    def record(self, t: float, activity: float) -> None:
        """Add one activity sample (non-negative, finite; others are ignored) at time ``t``.

        Samples from a week older than the bucket's current visit (clock set
        back) are ignored.
        """
        if not (math.isfinite(t) and math.isfinite(activity)) or activity < 0:
            return
        index, week = self.bucket(t), self.week(t)
        if week < self._visit_week[index]:
            return
        if week > self._visit_week[index]:
            self._fold(index)
            self._visit_week[index] = week
        self._visit_sum[index] += activity
        self._visit_n[index] += 1
        self._update_known(index)
        if self._weeks[index] >= MIN_WEEKS - 1:
            self._any_learned = self._any_learned or self.learned(index)

    def _update_known(self, index: int) -> None:
        old, new = self._known_cache[index], self._known(index)
        if old is not None:
            self._known_sum -= old
            self._known_n -= 1
        if new is not None:
            self._known_sum += new
            self._known_n += 1
        self._known_cache[index] = new

    def _rebuild_caches(self) -> None:
        self._known_cache = [self._known(i) for i in range(BUCKETS)]
        known = [v for v in self._known_cache if v is not None]
        self._known_sum, self._known_n = math.fsum(known), len(known)
        self._any_learned = any(self.learned(i) for i in range(BUCKETS))

    def _fold(self, index: int) -> None:
        """Fold the finished visit of bucket ``index`` into its mean."""
        if self._visit_n[index] > 0:
            average = self._visit_sum[index] / self._visit_n[index]
            self._weeks[index] += 1
            alpha = max(WEEK_ALPHA, 1.0 / self._weeks[index])
            self._mean[index] += alpha * (average - self._mean[index])
        self._visit_sum[index] = 0.0
        self._visit_n[index] = 0

    # ------------------------------------------------------------------ reading

    def learned(self, index: int) -> bool:
        """Whether bucket ``index`` has data from at least :data:`MIN_WEEKS` weeks."""
        seen = self._weeks[index] + (1 if self._visit_n[index] > 0 else 0)
        return self._weeks[index] >= 1 and seen >= MIN_WEEKS

    def activity(self, index: int) -> float | None:
        """Learned mean activity of bucket ``index``, ``None`` until learned."""
        return self._mean[index] if self.learned(index) else None

    def mean_activity(self) -> float | None:
        """Mean over all buckets with data (finished weeks, else the visit so far)."""
        return self._known_sum / self._known_n if self._known_n else None

    def _known(self, index: int) -> float | None:
        if self._weeks[index] > 0:
            return self._mean[index]
        if self._visit_n[index] > 0:
            return self._visit_sum[index] / self._visit_n[index]
        return None

    def factor(self, t: float) -> float:
        """Interval multiplier at ``t``: < 1 ahead of and in busy hours, > 1 in quiet ones.

        1.0 when disabled, when neither the current bucket nor the one
        ``lookahead`` ahead is learned, or when nothing was ever active.
        """
        if not self.enabled or not self._any_learned:
            return 1.0
        ahead = self._busiest(t)
        mean = self.mean_activity()
        if ahead is None or mean is None or mean <= 0:
            return 1.0
        if ahead <= 0:
            return FACTOR_MAX
        return min(FACTOR_MAX, max(FACTOR_MIN, mean / ahead))

    def _busiest(self, t: float) -> float | None:
        """Larger learned activity of the bucket of ``t`` and of ``t + lookahead``."""
        indexes = {self.bucket(t), self.bucket(t + self.lookahead)}
        values = [v for v in (self.activity(i) for i in indexes) if v is not None]
        return max(values) if values else None

    def apply(self, t: float, interval: float, limits: IntervalLimits) -> IntervalDecision | None:
        """``interval`` scaled by :meth:`factor` as a PATTERN decision; ``None`` if unchanged."""
        factor = self.factor(t)
        new = limits.clamp(interval * factor)
        if math.isclose(new, interval, rel_tol=1e-9):
            return None
        index = self.bucket(t + self.lookahead)
        detail = (
            f"{_DAYS[index // 24]} {index % 24:02d}:00 pattern x{factor:.2f}:"
            f" {interval:.4g} s -> {new:.4g} s"
        )
        return IntervalDecision(t, new, interval, Reason.PATTERN, detail)

    # ------------------------------------------------------------------ state

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned state: only the buckets that ever saw a sample, as
        ``{hour: [mean, weeks, visit_week, visit_sum, visit_n]}`` with 6 significant
        digits (a learned week of one register is a few kB, not 168 x 5 full floats)."""
        buckets = {
            str(i): [_short(self._mean[i]), self._weeks[i], self._visit_week[i],
                     _short(self._visit_sum[i]), self._visit_n[i]]
            for i in range(BUCKETS)
            if self._weeks[i] or self._visit_n[i] or self._visit_week[i] >= 0
        }  # fmt: skip
        return {
            "version": STATE_VERSION,
            "tz_offset": self.tz_offset,
            "lookahead": self.lookahead,
            "enabled": self.enabled,
            "buckets": buckets,
        }

    @classmethod
    def from_dict(cls, data: object) -> ActivityProfile:
        """Restore :meth:`to_dict` output; never raises.

        Unknown versions and bad settings fall back to defaults; if any bucket
        array is missing or corrupt, all buckets start empty (they belong together).
        """
        src: Mapping[str, Any] = {}
        if isinstance(data, Mapping) and data.get("version") == STATE_VERSION:
            src = data
        enabled = src.get("enabled")
        profile = cls(
            tz_offset=_finite(src.get("tz_offset"), 0.0),
            lookahead=_finite(src.get("lookahead"), DEFAULT_LOOKAHEAD),
            enabled=enabled if isinstance(enabled, bool) else True,
        )
        sparse = src.get("buckets")
        if isinstance(sparse, Mapping):
            arrays = _arrays_from_buckets(sparse)
        else:  # the first, dense format
            arrays = {name: _array(src.get(name)) for name in _ARRAYS}
        if all(array is not None for array in arrays.values()):
            profile._restore_arrays(arrays)
        return profile

    def _restore_arrays(self, arrays: Mapping[str, list[float] | None]) -> None:
        mean, weeks, visit_week, visit_sum, visit_n = (arrays[name] or [] for name in _ARRAYS)
        if min(mean + weeks + visit_sum + visit_n) < 0 or min(visit_week) < -1:
            return
        self._mean = list(mean)
        self._weeks = [int(x) for x in weeks]
        self._visit_week = [int(x) for x in visit_week]
        self._visit_sum = list(visit_sum)
        self._visit_n = [int(x) for x in visit_n]
        self._rebuild_caches()


def _finite(value: object, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        number = float(value)
    except OverflowError:
        return default
    return number if math.isfinite(number) else default


def _short(value: float) -> float:
    return float(f"{value:.6g}")


def _arrays_from_buckets(buckets: Mapping[str, Any]) -> dict[str, list[float] | None]:
    """Dense arrays from the sparse ``buckets`` format; all ``None`` if any entry is bad."""
    arrays: dict[str, list[float]] = {
        "mean": [0.0] * BUCKETS, "weeks": [0.0] * BUCKETS, "visit_week": [-1.0] * BUCKETS,
        "visit_sum": [0.0] * BUCKETS, "visit_n": [0.0] * BUCKETS,
    }  # fmt: skip
    for key, entry in buckets.items():
        index = int(key) if isinstance(key, str) and key.isdigit() else -1
        values = [_finite(x, math.nan) for x in entry] if isinstance(entry, list) else []
        if not 0 <= index < BUCKETS or len(values) != len(_ARRAYS) or any(map(math.isnan, values)):
            return dict.fromkeys(_ARRAYS)
        for name, value in zip(_ARRAYS, values, strict=True):
            arrays[name][index] = value
    return dict(arrays)


def _array(value: object) -> list[float] | None:
    """A list of :data:`BUCKETS` finite numbers, else ``None``."""
    if not isinstance(value, list) or len(value) != BUCKETS:
        return None
    numbers = [_finite(x, math.nan) for x in value]
    return None if any(math.isnan(x) for x in numbers) else numbers
