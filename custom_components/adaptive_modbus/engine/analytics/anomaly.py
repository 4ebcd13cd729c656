"""Anomalies: a robust z-score of each new read against the register's usual values.

The baseline of a read is, where the register's time-of-week profile has data
(the same hour of the week in earlier weeks), that hour's median and MAD; else
the register's recent reads (the last ``window`` seconds, at least
``min_samples`` of them). The score is ``|value - median| / (1.4826 · MAD)``,
the robust z-score (median and MAD weighted by the time each read held, as reads
are irregular); a read is an anomaly when the score exceeds ``threshold``
(default 3.0) and the deviation exceeds the register's tolerance.

Noise alone never fires: the scale never goes below the register's measured
noise (the RMS read-to-read difference noise produces, about 1.4 σ), so on a
register flagged noisy a deviation must be ``threshold`` noise amplitudes away.
A register fires at most once per ``cooldown`` seconds (an episode of 40 reads
far off is one anomaly, not 40 events).

Time of week is local time in ``tz`` (Home Assistant's zone; UTC by default), an
hour a bucket (168, Monday 00:00 is 0) as in the polling engine's activity
profile; each bucket keeps the median and MAD of its hour folded over weeks.
"""

from __future__ import annotations

from array import array
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
import math
from typing import Any
import zlib

from ..history import FloatRing
from .series import median, weighted_median

DEFAULT_THRESHOLD = 3.0
DEFAULT_WINDOW = 1800.0
DEFAULT_MIN_SAMPLES = 6
DEFAULT_MIN_SPAN = DEFAULT_WINDOW  # the recent reads must reach this far back
DEFAULT_COOLDOWN = 300.0
MAX_SAMPLES = 256  # recent reads kept per register
MAD_TO_SIGMA = 1.4826
BUCKETS = 168
VISIT_VALUES = 64  # values of one hour kept to summarise it
WEEK_ALPHA = 0.3  # weight of the newest week in a bucket (after the first weeks)
STATE_VERSION = 1
_WEEK = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A read far from the register's usual values."""

    uid: str
    at: float  # wall time of the read
    value: float
    expected_low: float
    expected_high: float
    score: float  # robust z-score
    baseline: str = "recent"  # recent | time_of_week
    unit_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe figures."""
        return {
            "uid": self.uid,
            "unit_id": self.unit_id,
            "at": self.at,
            "at_iso": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "value": round(self.value, 6),
            "expected_low": round(self.expected_low, 6),
            "expected_high": round(self.expected_high, 6),
            "score": round(self.score, 2),
            "baseline": self.baseline,
        }


class _Register:
    __slots__ = (
        "bucket_mad",
        "bucket_median",
        "bucket_weeks",
        "last_fired",
        "recent",
        "visit",
        "visit_key",
    )

    def __init__(self) -> None:
        self.recent = FloatRing(MAX_SAMPLES, 2)
        self.last_fired: float | None = None
        self.bucket_median: dict[int, float] = {}
        self.bucket_mad: dict[int, float] = {}
        self.bucket_weeks: dict[int, int] = {}
        self.visit: list[float] = []
        self.visit_key: tuple[int, int] | None = None  # (week, bucket) being collected


class AnomalyDetector:
    """Robust z-score anomaly detection per register (see the module docstring)."""

    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        window: float = DEFAULT_WINDOW,
        min_samples: int = DEFAULT_MIN_SAMPLES,
        min_span: float = DEFAULT_MIN_SPAN,
        cooldown: float = DEFAULT_COOLDOWN,
        tz: tzinfo | None = None,
        min_weeks: int = 1,
    ) -> None:
        """Fire above ``threshold``; baseline the last ``window`` seconds."""
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.window = window
        self.min_samples = min_samples
        self.min_span = min_span
        self.cooldown = cooldown
        self.tz = tz or UTC
        self.min_weeks = min_weeks
        self._regs: dict[str, _Register] = {}

    def _slot(self, at: float) -> tuple[int, int]:
        """(week number, hour-of-week bucket) of wall time ``at`` in local time."""
        local = datetime.fromtimestamp(at, self.tz)
        days = local.date().toordinal() - 719_163  # days since 1970-01-01 (Thursday)
        monday_days = days - local.weekday()
        bucket = local.weekday() * 24 + local.hour
        return (monday_days + 3) // 7, bucket

    def _fold_visit(self, reg: _Register) -> None:
        """Fold the finished hour into its bucket's median and MAD."""
        if reg.visit_key is None or len(reg.visit) < 3:
            reg.visit = []
            return
        _, bucket = reg.visit_key
        med = median(reg.visit)
        mad = median([abs(v - med) for v in reg.visit])
        weeks = reg.bucket_weeks.get(bucket, 0)
        weight = max(WEEK_ALPHA, 1.0 / (weeks + 1))
        if weeks == 0:
            reg.bucket_median[bucket] = med
            reg.bucket_mad[bucket] = mad
        else:
            reg.bucket_median[bucket] += weight * (med - reg.bucket_median[bucket])
            reg.bucket_mad[bucket] += weight * (mad - reg.bucket_mad[bucket])
        reg.bucket_weeks[bucket] = weeks + 1
        reg.visit = []

    def observe(
        self,
        uid: str,
        at: float,
        value: float,
        *,
        tolerance: float = 0.0,
        noise: float = 0.0,
        unit_id: int | None = None,
    ) -> Anomaly | None:
        """Score one read against the register's baseline; the anomaly, if it is one.

        ``tolerance``: a deviation within it never fires; ``noise``: the register's
        measured noise (RMS read-to-read difference), the scale's floor.
        """
        if not math.isfinite(value) or not math.isfinite(at):
            return None
        reg = self._regs.get(uid)
        if reg is None:
            reg = self._regs[uid] = _Register()
        key = self._slot(at)
        if reg.visit_key != key:
            self._fold_visit(reg)
            reg.visit_key = key
        found = self._score(reg, key[1], at, value, tolerance, noise, uid, unit_id)
        # learn after scoring: a read is not its own baseline
        if len(reg.visit) < VISIT_VALUES:
            reg.visit.append(value)
        else:  # keep a spread of the hour: replace evenly
            reg.visit[int(at) % VISIT_VALUES] = value
        reg.recent.append((at, value))
        if found is None:
            return None
        if reg.last_fired is not None and at - reg.last_fired < self.cooldown:
            return None
        reg.last_fired = at
        return found

    def _baseline(
        self, reg: _Register, bucket: int, at: float
    ) -> tuple[float, float, str] | None:
        if reg.bucket_weeks.get(bucket, 0) >= self.min_weeks:
            return reg.bucket_median[bucket], reg.bucket_mad[bucket], "time_of_week"
        rows = [reg.recent.row(slot) for slot in reg.recent.slots()]
        start = at - self.window
        # the read in force at the window's start counts from there on
        first = 0
        while first + 1 < len(rows) and rows[first + 1][0] <= start:
            first += 1
        rows = rows[first:]
        if len(rows) < self.min_samples or at - rows[0][0] < self.min_span:
            return None
        values = [v for _, v in rows]
        # each read weighs the time it held (reads are irregular: a burst of fast
        # reads must not outweigh the quiet hours)
        times = [max(t, start) for t, _ in rows] + [at]
        weights = [b - a for a, b in zip(times, times[1:], strict=False)]
        med = weighted_median(values, weights)
        mad = weighted_median([abs(v - med) for v in values], weights)
        return med, mad, "recent"

    def _score(  # noqa: PLR0917 - one read's figures
        self,
        reg: _Register,
        bucket: int,
        at: float,
        value: float,
        tolerance: float,
        noise: float,
        uid: str,
        unit_id: int | None,
    ) -> Anomaly | None:
        baseline = self._baseline(reg, bucket, at)
        if baseline is None:
            return None
        med, mad, kind = baseline
        scale = max(MAD_TO_SIGMA * mad, noise, tolerance, 1e-9 * max(1.0, abs(med)))
        deviation = abs(value - med)
        score = deviation / scale
        # quantised values give exact multiples: 3.0000000000000004 is not above 3
        if round(score, 6) <= self.threshold:
            return None
        half = self.threshold * scale
        return Anomaly(
            uid=uid,
            at=at,
            value=value,
            expected_low=med - half,
            expected_high=med + half,
            score=score,
            baseline=kind,
            unit_id=unit_id,
        )

    def has_profile(self, uid: str, at: float) -> bool:
        """Whether ``uid``'s time-of-week profile has data for the hour of ``at``."""
        reg = self._regs.get(uid)
        return reg is not None and (
            reg.bucket_weeks.get(self._slot(at)[1], 0) >= self.min_weeks
        )

    # -- persistence -------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Return the time-of-week profiles, packed: per register the learned buckets."""
        regs = {}
        for uid, reg in self._regs.items():
            if not reg.bucket_weeks:
                continue
            rows = array("f")
            for bucket in sorted(reg.bucket_weeks):
                rows.extend(
                    (
                        bucket,
                        reg.bucket_weeks[bucket],
                        reg.bucket_median[bucket],
                        reg.bucket_mad[bucket],
                    )
                )
            regs[uid] = base64.b64encode(zlib.compress(rows.tobytes())).decode()
        return {"version": STATE_VERSION, "profiles": regs}

    def import_state(self, data: object) -> list[str]:
        """Restore profiles; returns warnings for what was set aside."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return ["anomaly profiles: unknown format, starting empty"]
        warnings = []
        profiles = data.get("profiles")
        for uid, packed in profiles.items() if isinstance(profiles, Mapping) else ():
            try:
                rows = array("f")
                rows.frombytes(zlib.decompress(base64.b64decode(packed)))
            except (TypeError, ValueError, zlib.error):
                warnings.append(f"anomaly profile of {uid} set aside")
                continue
            reg = self._regs.setdefault(str(uid), _Register())
            for i in range(0, len(rows) - 3, 4):
                bucket = int(rows[i])
                if 0 <= bucket < BUCKETS and rows[i + 1] >= 1:
                    reg.bucket_weeks[bucket] = int(rows[i + 1])
                    reg.bucket_median[bucket] = float(rows[i + 2])
                    reg.bucket_mad[bucket] = float(rows[i + 3])
        return warnings
