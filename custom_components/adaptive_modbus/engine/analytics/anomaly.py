"""Anomalies: a robust z-score of each new read against the register's usual values.

The baseline of a read is, where the register's time-of-week profile has data
(the same hour of the week in earlier weeks), that hour's median and MAD; else
the register's recent reads (the last ``window`` seconds, 1 h by default; at
least ``min_samples`` reads reaching ``min_span``, 30 min, back). The score is
``|value - median| / (1.4826 · MAD)``, the robust z-score, with median and MAD
weighted by the time each read held (reads are irregular: a burst of fast reads
must not outweigh a quiet hour). A read is an anomaly when the score exceeds
``threshold`` (default 3.0).

The scale never goes below the register's tolerance (a change that does not
matter is no anomaly) nor below its measured noise (the RMS read-to-read
difference noise produces, about 1.4 σ): noise alone never fires, also on a
register flagged noisy, where a deviation must be ``threshold`` noise amplitudes
away. A slow drift is not an anomaly either: a score of up to twice the
threshold must also exceed the threshold against the window's own weighted
regression line (its value now, the residuals' MAD); further out, the level
alone decides, so an incident's plateau still fires after its ramp.

A register fires at most once per ``cooldown`` seconds (an episode of 40 reads
far off is one anomaly, not 40 events); a read equal to the last normal one in
the same hour is not scored again.

Time of week is local time in ``tz`` (Home Assistant's zone; UTC by default), an
hour a bucket (168, Monday 00:00 is 0) as in the polling engine's activity
profile; each bucket keeps the median and MAD of its hour folded over weeks.
"""

from __future__ import annotations

import base64
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
import math
from operator import sub
import struct
from typing import Any
import zlib

from ..history import FloatRing
from .series import median, weighted_median

DEFAULT_THRESHOLD = 3.0
DEFAULT_WINDOW = 3600.0
DEFAULT_MIN_SAMPLES = 6
DEFAULT_MIN_SPAN = 1800.0  # the recent reads must reach this far back
DEFAULT_COOLDOWN = 300.0
MAX_SAMPLES = 256  # recent reads kept per register
MAD_TO_SIGMA = 1.4826
TREND_OVERRIDE = 2.0
BUCKETS = 168
VISIT_VALUES = 64  # values of one hour kept to summarise it
WEEK_ALPHA = 0.3  # weight of the newest week in a bucket (after the first weeks)
STATE_VERSION = 2
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
        "columns",
        "last_anomalous",
        "last_value",
        "bucket_median",
        "bucket_weeks",
        "last_fired",
        "recent",
        "visit",
        "visit_key",
    )

    def __init__(self) -> None:
        self.recent = FloatRing(MAX_SAMPLES, 2)  # (time, value) rows
        self.columns: list[list[float]] | None = None  # recent's, until it changes
        self.last_value: float | None = None
        self.last_anomalous = False
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
        same_hour = reg.visit_key == key
        if not same_hour:
            self._fold_visit(reg)
            reg.visit_key = key
        found = None
        if value != reg.last_value or reg.last_anomalous or not same_hour:
            # a read equal to the last normal one (in the same hour) is not news
            found = self._score(reg, key[1], at, value, tolerance, noise, uid, unit_id)
        reg.last_value, reg.last_anomalous = value, found is not None
        # learn after scoring: a read is not its own baseline
        if len(reg.visit) < VISIT_VALUES:
            reg.visit.append(value)
        else:  # keep a spread of the hour: replace evenly
            reg.visit[int(at) % VISIT_VALUES] = value
        # a register read faster than the window's share of a ring slot keeps one
        # read a slot: the ring then still spans the window (256 reads every 2 s
        # would cover 8.5 min and never reach ``min_span``)
        last = reg.recent.last()
        if last is None or at - last[0] >= self.window / MAX_SAMPLES:
            reg.recent.append((at, value))
            reg.columns = None
        if found is None:
            return None
        if reg.last_fired is not None and at - reg.last_fired < self.cooldown:
            return None
        reg.last_fired = at
        return found

    def _baseline(self, reg: _Register, bucket: int, at: float) -> _Baseline | None:
        if reg.bucket_weeks.get(bucket, 0) >= self.min_weeks:
            return _Baseline(
                reg.bucket_median[bucket], reg.bucket_mad[bucket], "time_of_week"
            )
        if reg.columns is None:
            reg.columns = reg.recent.columns()
        times, values = reg.columns
        start = at - self.window
        # the read in force at the window's start counts from there on
        first = max(0, bisect_right(times, start) - 1)
        times, values = times[first:], values[first:]
        if len(times) < self.min_samples or at - times[0] < self.min_span:
            return None
        # each read weighs the time it held (reads are irregular: a burst of fast
        # reads must not outweigh the quiet hours)
        weights = list(map(sub, [*times[1:], at], times))
        weights[0] -= max(0.0, start - times[0])  # held from the window's start
        med = weighted_median(values, weights)
        mad = weighted_median(list(map(abs, map(med.__rsub__, values))), weights)
        return _Baseline(med, mad, "recent", times, values, weights)

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
        base = self._baseline(reg, bucket, at)
        if base is None:
            return None
        floor = max(noise, tolerance, 1e-9 * max(1.0, abs(base.median)))
        scale = max(MAD_TO_SIGMA * base.mad, floor)
        score = abs(value - base.median) / scale
        # quantised values give exact multiples: 3.0000000000000004 is not above 3
        if round(score, 6) <= self.threshold:
            return None
        if score <= TREND_OVERRIDE * self.threshold and base.times:
            # a moderate deviation the window's own drift explains is no anomaly
            drift = _drift(base.times, base.values, base.weights, at)
            if drift is not None:
                center, resid = drift
                explained = abs(value - center) / max(MAD_TO_SIGMA * resid, floor)
                score = min(score, explained)
                if round(score, 6) <= self.threshold:
                    return None
        half = self.threshold * scale
        return Anomaly(
            uid=uid,
            at=at,
            value=value,
            expected_low=base.median - half,
            expected_high=base.median + half,
            score=score,
            baseline=base.kind,
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
        """Return the time-of-week profiles, packed (about 0.5 kB a fully learned one).

        Per register ``lo``, ``span`` and ``ref`` (float32), then per bucket the
        median in 1/254 of the medians' span (255: no data), the MAD on a log scale
        below ``ref`` (8 levels per octave, 4.4 % steps) and the weeks (a nibble).
        """
        return {
            "version": STATE_VERSION,
            "profiles": {
                uid: _pack(reg) for uid, reg in self._regs.items() if reg.bucket_weeks
            },
        }

    def import_state(self, data: object) -> list[str]:
        """Restore profiles; returns warnings for what was set aside."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return ["anomaly profiles: unknown format, starting empty"]
        warnings = []
        profiles = data.get("profiles")
        for uid, packed in profiles.items() if isinstance(profiles, Mapping) else ():
            try:
                buckets = _unpack(packed)
            except (TypeError, ValueError, struct.error, zlib.error):
                warnings.append(f"anomaly profile of {uid} set aside")
                continue
            reg = self._regs.setdefault(str(uid), _Register())
            for bucket, (weeks, med, mad) in buckets.items():
                reg.bucket_weeks[bucket] = weeks
                reg.bucket_median[bucket] = med
                reg.bucket_mad[bucket] = mad
        return warnings


_HEADER = struct.Struct("<fff")
_NO_DATA = 255
_MAD_LEVELS = 8  # per octave


def _pack(reg: _Register) -> str:
    buckets = sorted(reg.bucket_weeks)
    medians = [reg.bucket_median[b] for b in buckets]
    lo = min(medians)
    span = max(medians) - lo
    ref = max([span, *(reg.bucket_mad[b] for b in buckets), 1e-9])
    med_q = bytearray([_NO_DATA] * BUCKETS)
    mad_q = bytearray(BUCKETS)
    weeks = bytearray(BUCKETS // 2)
    for b in buckets:
        med_q[b] = round((reg.bucket_median[b] - lo) / span * 254) if span else 0
        mad = reg.bucket_mad[b]
        if mad > 0:
            level = round(_MAD_LEVELS * math.log2(mad / ref)) + 255
            mad_q[b] = max(1, min(255, level))
        weeks[b // 2] |= min(15, reg.bucket_weeks[b]) << (4 * (b % 2))
    raw = _HEADER.pack(lo, span, ref) + bytes(med_q) + bytes(mad_q) + bytes(weeks)
    return base64.b64encode(zlib.compress(raw, 9)).decode()


def _unpack(packed: object) -> dict[int, tuple[int, float, float]]:
    if not isinstance(packed, str):
        raise TypeError("not a packed profile")
    raw = zlib.decompress(base64.b64decode(packed))
    if len(raw) != _HEADER.size + BUCKETS * 2 + BUCKETS // 2:
        raise ValueError("wrong size")
    lo, span, ref = _HEADER.unpack_from(raw)
    med_q = raw[_HEADER.size : _HEADER.size + BUCKETS]
    mad_q = raw[_HEADER.size + BUCKETS : _HEADER.size + 2 * BUCKETS]
    weeks = raw[_HEADER.size + 2 * BUCKETS :]
    out = {}
    for b in range(BUCKETS):
        week = (weeks[b // 2] >> (4 * (b % 2))) & 0xF
        if med_q[b] == _NO_DATA or week == 0:
            continue
        mad = 0.0 if mad_q[b] == 0 else ref * 2.0 ** ((mad_q[b] - 255) / _MAD_LEVELS)
        out[b] = (week, lo + span * med_q[b] / 254, mad)
    return out


def _drift(
    times: list[float], values: list[float], weights: list[float], at: float
) -> tuple[float, float] | None:
    """Return the weighted line's value at ``at`` and its residuals' MAD."""
    total = sum(weights)
    if total <= 0:
        return None
    xs = [(t - at) / 3600.0 for t in times]
    mx = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    my = sum(w * y for w, y in zip(weights, values, strict=True)) / total
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(weights, xs, strict=True))
    if sxx <= 0:
        return None
    sxy = sum(
        w * (x - mx) * (y - my) for w, x, y in zip(weights, xs, values, strict=True)
    )
    slope = sxy / sxx
    resid = [y - (my + slope * (x - mx)) for x, y in zip(xs, values, strict=True)]
    rmed = weighted_median(resid, weights)
    return my - slope * mx, weighted_median([abs(r - rmed) for r in resid], weights)


@dataclass(frozen=True, slots=True)
class _Baseline:
    """What a read is compared with: median and MAD, and the window's reads."""

    median: float
    mad: float
    kind: str
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
