"""Time-of-week activity profile: poll more often ahead of historically busy hours.

An :class:`ActivityProfile` keeps one bucket per hour of the week (168, Monday
00:00 local time is bucket 0). Local time is that of the time zone the caller
injects (``tz``: a :class:`zoneinfo.ZoneInfo` such as Home Assistant's, or any
``tzinfo``; UTC by default), so buckets follow the wall clock through daylight
saving time: on a 23-hour spring day the skipped hour's bucket gets no sample that
week, on a 25-hour autumn day the repeated hour's samples fall into one visit of its
bucket (never two weeks). Each bucket holds the mean activity of its hour
across weeks: the samples of one visit (the hour in one week) are averaged, and
each finished visit is folded into the bucket's mean with weight
``max(WEEK_ALPHA, 1/weeks)`` (a plain mean for the first weeks, then an
exponential one that follows changing habits). Memory is fixed: five typed arrays
of 168 numbers (4.7 KB), however long it runs, and none until the first sample (a
fresh profile reads shared, read-only empty ones).

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

Each profile carries a :class:`~.daily.DailyProfile` (``daily``) fed by the same
reads, which acts from the second day: :meth:`ActivityProfile.interval` applies
the time-of-week factor and then the daily profile (rest at the maximum in learned
quiet hours unless the week says busy, short around learned onsets), within the
register's limits. Its state travels in :meth:`ActivityProfile.to_dict` under
``daily`` (an optional key: older states load with an empty daily profile, older
engines ignore it).
"""

from __future__ import annotations

from array import array
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
import math
from typing import Any, cast
import zlib

from .daily import DailyProfile
from .intervals import IntervalDecision, IntervalLimits, IntervalModel, Reason

STATE_VERSION = 2
"""2: packed, quantised buckets (about 500 bytes when all 168 are learned); 1 (sparse
or dense float lists, UTC buckets) still loads."""
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
_EPOCH_MONDAY = date(1969, 12, 29).toordinal()  # week 0 starts on this Monday
_INF = math.inf
_SLOT = 900.0  # every time zone's offset is a multiple of 15 minutes (since 1972)
LEVELS_PER_OCTAVE = 8
"""Quantisation of stored bucket means: 8 levels per octave (at most 4.4 % off)."""
# stored week counts saturate here (the mean weighs like WEEK_ALPHA long before)
_MAX_WEEKS = 15


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """What one hour-of-week bucket holds: its folded mean and the visit in progress."""

    mean: float
    weeks: int
    visit_week: int
    visit_sum: float
    visit_n: int


class ActivityProfile:
    """Bounded time-of-week activity profile of one register (see the module docstring).

    ``tz`` maps unix time to local hours (default UTC; ``tz_offset``, seconds east
    of UTC, gives a fixed zone instead); ``lookahead`` (seconds) is how far ahead
    :meth:`factor` looks; ``enabled`` False makes :meth:`factor` 1.0 while
    :meth:`record` keeps learning.
    """

    # per-register state read on every read: kept in slots, not an instance dict
    __slots__ = (
        "_any_learned",
        "_fixed_offset",
        "_held_known",
        "_held_mean",
        "_held_n",
        "_held_sum",
        "_held_weeks",
        "_hour_from",
        "_hour_index",
        "_hour_to",
        "_known_n",
        "_known_sum",
        "_mean",
        "_slot_cache",
        "_visit_n",
        "_visit_sum",
        "_visit_week",
        "_weeks",
        "daily",
        "enabled",
        "lookahead",
        "tz",
        "tz_offset",
    )

    def __init__(
        self,
        *,
        tz: tzinfo | None = None,
        tz_offset: float = 0.0,
        lookahead: float = DEFAULT_LOOKAHEAD,
        enabled: bool = True,
    ) -> None:
        """Start an empty profile in time zone ``tz`` (or a fixed ``tz_offset``)."""
        if tz is None:
            tz = (
                UTC if tz_offset == 0 else timezone(timedelta(seconds=float(tz_offset)))
            )
        self.tz = tz
        # a fixed offset maps time arithmetically; a zone with DST goes through datetime
        fixed = tz.utcoffset(None) if isinstance(tz, timezone) else None
        self._fixed_offset = None if fixed is None else fixed.total_seconds()
        self.tz_offset = self._fixed_offset or 0.0
        self._slot_cache: tuple[int, int, int] = (-(2**62), 0, 0)
        # the wall times [from, to] of the hour (of the slot, in a zone with DST) of
        # the last record whose visit is the bucket's current one, and that bucket:
        # a record in it needs no lookup and no fold (see record)
        self._hour_from, self._hour_to, self._hour_index = math.inf, -math.inf, 0
        self._held_sum, self._held_n = 0.0, 0
        self._held_known: float | None = None
        self._held_weeks, self._held_mean = 0, 0.0
        self.lookahead = float(lookahead)
        self.enabled = enabled
        # the per-bucket arrays start as the shared, read-only empty ones (_FRESH_*,
        # no memory per register); _own gives the profile its own (typed arrays:
        # 4.7 KB) before any write
        self._mean = _FRESH_MEAN  # mean of finished weeks
        self._weeks = _FRESH_WEEKS  # finished weeks folded into the mean
        # week of the visit being collected (-1: none)
        self._visit_week = _FRESH_VISIT_WEEK
        self._visit_sum = _FRESH_MEAN
        self._visit_n = _FRESH_WEEKS
        # running sum of _known() over all buckets, so mean_activity() is O(1) on the
        # hot path (a record takes the bucket's known value out before it changes it)
        self._known_sum = 0.0
        self._known_n = 0
        self._any_learned = False  # cheap exit for factor() while nothing is learned
        self.daily = DailyProfile(self.tz)

    # ------------------------------------------------------------------ time

    @property
    def tz_name(self) -> str:
        """Name of the time zone (``Europe/Berlin``, ``UTC``, ``UTC+01:00``)."""
        return str(getattr(self.tz, "key", None) or self.tz.tzname(None) or self.tz)

    def _locate(self, t: float) -> tuple[int, int]:
        """(hour of the week, week index) of unix time ``t`` in local time."""
        if self._fixed_offset is not None:
            hours = math.floor((t + self._fixed_offset) / HOUR) + EPOCH_HOUR_OF_WEEK
            return hours % BUCKETS, hours // BUCKETS
        slot = math.floor(t / _SLOT)
        cached_slot, bucket, week = self._slot_cache
        if slot == cached_slot:
            return bucket, week
        local = datetime.fromtimestamp(slot * _SLOT, self.tz)
        days = local.toordinal() - _EPOCH_MONDAY
        bucket, week = (days % 7) * 24 + local.hour, days // 7
        self._slot_cache = (slot, bucket, week)
        return bucket, week

    def bucket(self, t: float) -> int:
        """Hour of the week of unix time ``t`` in local time (0 = Monday 00:00-01:00)."""
        return self._locate(t)[0]

    def week(self, t: float) -> int:
        """Index of the (Monday-based, local) week of ``t`` since the epoch."""
        return self._locate(t)[1]

    # ------------------------------------------------------------------ learning

    def record(self, t: float, activity: float) -> None:
        """Add one activity sample (non-negative, finite; others are ignored) at time ``t``.

        Samples from a week older than the bucket's current visit (clock set
        back) are ignored.
        """
        # finite numbers, the activity not negative (NaN fails every comparison)
        if not (-_INF < t < _INF and 0.0 <= activity < _INF):
            return
        self.daily.record(t, activity)
        if self._hour_from <= t <= self._hour_to:
            # within the held hour: its visit is the bucket's current one, and its
            # numbers are kept here (the read path: the lists are not touched)
            held_sum = self._held_sum = self._held_sum + activity
            held_n = self._held_n = self._held_n + 1
            weeks = self._held_weeks
            known = self._held_mean if weeks > 0 else held_sum / held_n
            old = self._held_known
            if old is None:
                self._known_n += 1
            else:
                self._known_sum -= old
            self._known_sum += known
            self._held_known = known
            if weeks >= MIN_WEEKS - 1:  # as learned(index)
                self._any_learned = self._any_learned or (
                    weeks >= 1 and weeks + (1 if held_n > 0 else 0) >= MIN_WEEKS
                )
            return
        self._release_hour()
        try:
            index, week = self._locate(t)
        # beyond what datetime can represent
        except (
            OverflowError,
            ValueError,
            OSError,
        ):
            return
        if week < self._visit_week[index]:
            return
        if not -_WEEK_LIMIT < week < _WEEK_LIMIT:
            return  # beyond the week array (t beyond 10**15 s; a zone's: year 9999)
        if isinstance(self._visit_n, tuple):  # the first sample: own arrays now
            self._own()
        old = self._known(index)  # before the fold changes it
        if week > self._visit_week[index]:
            self._fold(index)
            self._visit_week[index] = week
        visit_sum, visit_n = self._visit_sum, self._visit_n
        visit_sum[index] += activity
        visit_n[index] += 1
        # the known value (_known(index)) inlined: the visit is not empty now
        known = (
            self._mean[index]
            if self._weeks[index] > 0
            else visit_sum[index] / visit_n[index]
        )
        if old is None:
            self._known_n += 1
        else:
            self._known_sum -= old
        self._known_sum += known
        if self._weeks[index] >= MIN_WEEKS - 1:
            self._any_learned = self._any_learned or self.learned(index)
        self._hold_hour(t, index, week)

    def _hold_hour(self, t: float, index: int, week: int) -> None:
        """Hold bucket ``index`` for the wall times around ``t`` that fall into it in ``week``.

        The hour (a 15-minute slot in a zone with DST) of ``t``, its ends checked with
        :meth:`_locate` itself: the bucket and week of a time never decrease as the
        time grows, so every time between two ends that map to ``(index, week)`` maps
        there too (at worst the range is ``t`` alone). Until released, the bucket's
        visit and known value live in ``_held_*`` (:meth:`_sync` writes them back).
        """
        span = HOUR if self._fixed_offset is not None else _SLOT
        shift = self._fixed_offset or 0.0
        start = math.floor((t + shift) / span) * span - shift
        low, high = t, t
        try:
            if self._locate(start) == (index, week) and start <= t:
                low = start
            end = start + span - 1e-3
            if self._locate(end) == (index, week) and end >= t:
                high = end
        except (OverflowError, ValueError, OSError):
            pass
        self._held_known = self._known(index)  # before the hour is held (_sync)
        self._hour_from, self._hour_to, self._hour_index = low, high, index
        self._held_sum, self._held_n = self._visit_sum[index], self._visit_n[index]
        self._held_weeks, self._held_mean = self._weeks[index], self._mean[index]

    def _sync(self) -> None:
        """Write the held bucket's numbers back into the arrays (before they are read)."""
        if self._hour_from <= self._hour_to:
            index = self._hour_index
            self._visit_sum[index], self._visit_n[index] = self._held_sum, self._held_n

    def _release_hour(self) -> None:
        """Write the held bucket back and hold none."""
        self._sync()
        self._hour_from, self._hour_to = math.inf, -math.inf

    def _own(self) -> None:
        """Give the profile its own per-bucket arrays (copies of the shared empty ones)."""
        self._mean, self._weeks = array("d", self._mean), array("i", self._weeks)
        self._visit_week = array("i", self._visit_week)
        self._visit_sum = array("d", self._visit_sum)
        self._visit_n = array("i", self._visit_n)

    def _rebuild_caches(self) -> None:
        self._sync()
        known = [v for v in map(self._known, range(BUCKETS)) if v is not None]
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
        self._sync()
        seen = self._weeks[index] + (1 if self._visit_n[index] > 0 else 0)
        return self._weeks[index] >= 1 and seen >= MIN_WEEKS

    def counts(self, index: int) -> BucketCounts:
        """Return what bucket ``index`` holds (for diagnostics and tests)."""
        self._sync()
        return BucketCounts(
            mean=self._mean[index],
            weeks=self._weeks[index],
            visit_week=self._visit_week[index],
            visit_sum=self._visit_sum[index],
            visit_n=self._visit_n[index],
        )

    def activity(self, index: int) -> float | None:
        """Learned mean activity of bucket ``index``, ``None`` until learned."""
        return self._mean[index] if self.learned(index) else None

    def mean_activity(self) -> float | None:
        """Mean over all buckets with data (finished weeks, else the visit so far)."""
        return self._known_sum / self._known_n if self._known_n else None

    def _known(self, index: int) -> float | None:
        self._sync()
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
        try:
            ahead = self._busiest(t)
        except (OverflowError, ValueError, OSError):
            return 1.0
        mean = self.mean_activity()
        if ahead is None or mean is None or mean <= 0:
            return 1.0
        if ahead <= 0:
            return FACTOR_MAX
        return min(FACTOR_MAX, max(FACTOR_MIN, mean / ahead))

    def interval(
        self,
        t: float,
        interval: float,
        limits: IntervalLimits,
        strength: float = 1.0,
        model: IntervalModel | None = None,
    ) -> tuple[float, float]:
        """(interval, its factor) at wall time ``t``: weekly factor, then the daily profile.

        ``strength`` is the exponent on the weekly factor. The daily profile rests a
        register at the maximum only where the week does not say busy (factor >= 1);
        with the register's ``model`` it also lifts a stale step cap.
        Disabled or at strength 0 (patterns off): ``(interval, 1.0)``, the daily
        profile included. Never outside ``limits`` once adjusted.
        """
        if not self.enabled or strength == 0:
            return interval, 1.0
        factor = self.factor(t)
        if strength != 1.0 and factor != 1.0:
            factor **= strength
        scaled = interval * factor
        daily = self.daily.interval(t, scaled, limits, rest=factor >= 1.0, model=model)
        return daily, factor if daily == scaled else daily / interval

    def plain(
        self, interval: float, limits: IntervalLimits, model: IntervalModel
    ) -> bool:
        """Whether :meth:`interval` gives ``(interval, 1.0)`` at any time and strength.

        Disabled, or no hour learned and a daily profile that cannot apply (see
        :meth:`~.daily.DailyProfile.idle`): the read path's shortcut, which then
        needs neither the wall time nor the lookups.
        """
        if not self.enabled:
            return True
        if self._any_learned or (daily := self.daily).onsets:
            return False
        return interval >= limits.max_interval or daily.idle(interval, limits, model)

    def _busiest(self, t: float) -> float | None:
        """Larger learned activity of the bucket of ``t`` and of ``t + lookahead``."""
        indexes = {self.bucket(t), self.bucket(t + self.lookahead)}
        values = [v for v in (self.activity(i) for i in indexes) if v is not None]
        return max(values) if values else None

    def apply(
        self, t: float, interval: float, limits: IntervalLimits
    ) -> IntervalDecision | None:
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
        """Return the JSON-safe, versioned, compact state.

        About 500 bytes when every bucket is learned.

        Visits that are over (every bucket but the one visited last) are folded into
        their bucket's mean here, as the next week's first sample would; bucket means
        are stored log-quantised (:data:`LEVELS_PER_OCTAVE`) relative to the largest,
        week counts saturate at 15, both packed as one zlib stream in base64.
        ``visit``, ``visit_sum`` and ``visit_n`` are the visit still in progress.
        """
        self._sync()
        mean, weeks = list(self._mean), list(self._weeks)
        current = self._current_visit()
        last: list[float] | None = None
        base = max(self._visit_week)
        for i in range(BUCKETS):
            if self._visit_n[i] <= 0:
                continue
            if i == current:
                last = [i, _short(self._visit_sum[i]), self._visit_n[i]]
                continue
            average = self._visit_sum[i] / self._visit_n[i]
            weeks[i] += 1
            mean[i] += max(WEEK_ALPHA, 1.0 / weeks[i]) * (average - mean[i])
        scale = max(mean)
        levels = bytes(
            _quantise(m, scale) if weeks[i] else 0 for i, m in enumerate(mean)
        )
        ages = bytes(
            min(weeks[i], _MAX_WEEKS)
            | (
                min(base - self._visit_week[i], _MAX_WEEKS)
                if self._visit_week[i] >= 0
                else 15
            )
            << 4
            for i in range(BUCKETS)
        )
        state: dict[str, Any] = {"version": STATE_VERSION, "tz": self.tz_name}
        if self.lookahead != DEFAULT_LOOKAHEAD:
            state["lookahead"] = self.lookahead
        if not self.enabled:
            state["enabled"] = False
        if base >= 0:
            state.update(week=base, scale=_short(scale), buckets=_pack(levels + ages))
        if last is not None:  # flat keys: the Store indents every list item on a line
            state.update(visit=last[0], visit_sum=last[1], visit_n=last[2])
        daily = self.daily.to_dict()
        if len(daily) > 1:
            state["daily"] = daily
        return state

    def _current_visit(self) -> int | None:
        """Return the bucket whose visit is still in progress: the last one visited."""
        self._sync()
        visited = [i for i in range(BUCKETS) if self._visit_n[i] > 0]
        return max(visited, key=lambda i: (self._visit_week[i], i)) if visited else None

    @classmethod
    def from_dict(
        cls, data: object, *, tz: tzinfo | None = None, tz_offset: float | None = None
    ) -> ActivityProfile:
        """Restore :meth:`to_dict` output; never raises.

        ``tz`` (or ``tz_offset``) is the caller's time zone. Buckets learned in
        another zone (including version 1 state, which bucketed by a fixed offset,
        UTC by default) are set aside: the profile starts learning again. Unknown
        versions and bad settings fall back to defaults; if any bucket is corrupt,
        all buckets start empty (they belong together).
        """
        src: Mapping[str, Any] = {}
        if isinstance(data, Mapping) and data.get("version") in (1, STATE_VERSION):
            src = data
        enabled = src.get("enabled")
        stored_offset = _finite(src.get("tz_offset"), 0.0)
        profile = cls(
            tz=tz,
            tz_offset=stored_offset
            if tz_offset is None and tz is None
            else (tz_offset or 0.0),
            lookahead=_finite(src.get("lookahead"), DEFAULT_LOOKAHEAD),
            enabled=enabled if isinstance(enabled, bool) else True,
        )
        if src.get("version") == STATE_VERSION:
            if src.get("tz") == profile.tz_name:
                profile._restore_packed(src)
                profile.daily = DailyProfile.from_dict(src.get("daily"), tz=profile.tz)
            return profile
        if src and profile._fixed_offset != stored_offset:
            return profile  # version 1 buckets are in another zone: set aside
        sparse = src.get("buckets")
        if isinstance(sparse, Mapping):
            arrays = _arrays_from_buckets(sparse)
        else:  # the first, dense format
            arrays = {name: _array(src.get(name)) for name in _ARRAYS}
        if all(array is not None for array in arrays.values()):
            profile._restore_arrays(arrays)
        return profile

    def _restore_packed(self, src: Mapping[str, Any]) -> None:
        base = src.get("week")
        scale = _finite(src.get("scale"), math.nan)
        packed = _unpack(src.get("buckets"))
        levels, ages = (
            (None, None) if packed is None else (packed[:BUCKETS], packed[BUCKETS:])
        )
        if (
            not isinstance(base, int)
            or isinstance(base, bool)
            or base < 0
            or not scale >= 0
            or levels is None
            or ages is None
        ):
            return
        arrays: dict[str, list[float] | None] = {
            "mean": [_dequantise(q, scale) for q in levels],
            "weeks": [float(a & 0x0F) for a in ages],
            "visit_week": [
                float(base - (a >> 4)) if (a & 0x0F or a >> 4 < 15) else -1.0
                for a in ages
            ],
            "visit_sum": [0.0] * BUCKETS,
            "visit_n": [0.0] * BUCKETS,
        }
        if "visit" in src:  # the visit in progress, in the latest week
            values = [
                base,
                *(_finite(src.get(k), math.nan) for k in ("visit_sum", "visit_n")),
            ]
            index = src.get("visit")
            if (
                any(map(math.isnan, values))
                or not isinstance(index, int)
                or isinstance(index, bool)
                or not 0 <= index < BUCKETS
            ):
                return
            for name, value in zip(
                ("visit_week", "visit_sum", "visit_n"), values, strict=True
            ):
                array = arrays[name]
                assert array is not None
                array[index] = value
        self._restore_arrays(arrays)

    def _restore_arrays(self, arrays: Mapping[str, list[float] | None]) -> None:
        mean, weeks, visit_week, visit_sum, visit_n = (
            arrays[name] or [] for name in _ARRAYS
        )
        if min(mean + weeks + visit_sum + visit_n) < 0 or min(visit_week) < -1:
            return
        if max(weeks + visit_week + visit_n) >= _WEEK_LIMIT:
            return  # counts no real store holds (the arrays' ints are 32-bit)
        self._mean = array("d", mean)
        self._weeks = array("i", map(int, weeks))
        self._visit_week = array("i", map(int, visit_week))
        self._hour_from, self._hour_to = math.inf, -math.inf  # visits replaced
        self._visit_sum = array("d", visit_sum)
        self._visit_n = array("i", map(int, visit_n))
        self._rebuild_caches()


def _read_only[T: (int, float)](empty: tuple[T, ...]) -> array[T]:
    """``empty`` typed as the array it stands in for: a fresh profile's shared arrays.

    Every profile starts with these (no per-bucket memory until its first sample);
    writing one raises ``TypeError`` (a tuple), so a write path that forgot
    :meth:`ActivityProfile._own` fails loudly instead of changing every profile.
    """
    return cast("array[T]", empty)


_FRESH_MEAN = _read_only((0.0,) * BUCKETS)
_FRESH_WEEKS = _read_only((0,) * BUCKETS)
_FRESH_VISIT_WEEK = _read_only((-1,) * BUCKETS)
_WEEK_LIMIT = 2**31
"""Bound (exclusive, both signs) of the ints a profile's arrays hold (week numbers,
week and sample counts): 32-bit."""


def _quantise(value: float, scale: float) -> int:
    """1-255 on a log scale below ``scale`` (0 only for 0)."""
    if value <= 0 or scale <= 0:
        return 0
    level = round(255 + LEVELS_PER_OCTAVE * math.log2(value / scale))
    return min(255, max(1, level))


def _dequantise(level: int, scale: float) -> float:
    if level == 0:
        return 0.0
    return _short(scale * math.pow(2.0, (level - 255) / LEVELS_PER_OCTAVE))


def _pack(data: bytes) -> str:
    """Bytes as base64 text of their zlib stream (week counts repeat: they shrink)."""
    return base64.b64encode(zlib.compress(data, 9)).decode("ascii")


def _unpack(value: object) -> bytes | None:
    """Return the 2 x :data:`BUCKETS` bytes of :func:`_pack` text, else ``None``."""
    if not isinstance(value, str) or len(value) > 8 * BUCKETS:
        return None
    try:
        stream = base64.b64decode(value, validate=True)
        inflate = zlib.decompressobj()
        data = inflate.decompress(stream, 2 * BUCKETS + 1)
    except (ValueError, zlib.error):
        return None
    return data if len(data) == 2 * BUCKETS and inflate.eof else None


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
        values = (
            [_finite(x, math.nan) for x in entry] if isinstance(entry, list) else []
        )
        if (
            not 0 <= index < BUCKETS
            or len(values) != len(_ARRAYS)
            or any(map(math.isnan, values))
        ):
            return dict.fromkeys(_ARRAYS)
        for name, value in zip(_ARRAYS, values, strict=True):
            arrays[name][index] = value
    return dict(arrays)


def _array(value: object) -> list[float] | None:
    """Return ``value`` as a list of :data:`BUCKETS` finite numbers, else ``None``."""
    if not isinstance(value, list) or len(value) != BUCKETS:
        return None
    numbers = [_finite(x, math.nan) for x in value]
    return None if any(math.isnan(x) for x in numbers) else numbers
