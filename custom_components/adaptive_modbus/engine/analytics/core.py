"""One :class:`Analytics` per connection, fed after every poll cycle.

It reads only the engine's public read API (:class:`CycleResult`,
:class:`EngineSnapshot`) and the connection's :class:`History` (the last reads of
each register), and keeps:

- hourly time-weighted aggregates per register (7 days, in memory), so windows
  longer than the raw reads still aggregate, trend and forecast;
- an :class:`AnomalyDetector` (recent reads, time-of-week profiles);
- a :class:`ForecastTracker`: every ``forecast_every`` seconds per register a
  forecast ``forecast_horizon`` ahead, scored against what was then read;
- a :class:`HealthModel` (scores, factors, trends) and the recent anomalies.

:meth:`Analytics.export_state` persists the sparse part (time-of-week profiles,
forecast errors, health baselines and hourly health points); reads and hourly
aggregates are rebuilt from polling.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
import math
from typing import Any

from ..history import History, ReadSample
from ..scheduler import CycleResult
from ..stats import EngineSnapshot
from .anomaly import DEFAULT_THRESHOLD, Anomaly, AnomalyDetector
from .forecast import (
    DAY,
    Forecast,
    ForecastAccuracy,
    ForecastTracker,
    Trend,
    daily_pattern,
    forecast,
    trend,
)
from .health import CONNECTION, HealthModel, HealthScore, Scope
from .remediation import Remediation, remediation
from .series import Aggregate, aggregate, as_number, numeric

STATE_VERSION = 1
HOUR = 3600.0
HOURS_KEPT = 7 * 24 + 1
MAX_HOLD = HOUR  # a value is held at most this long between reads (downtime)
ANOMALIES_KEPT = 500
DEFAULT_FORECAST_HORIZON = 900.0
DEFAULT_FORECAST_EVERY = 900.0
MIN_FORECAST_READS = 8
_ROW = 8  # start, integral, held, min, max, count, last, sum


class HourlySeries:
    """Hourly time-weighted aggregates of one register in a fixed ring."""

    __slots__ = ("_data", "_prev")

    def __init__(self) -> None:
        """Start empty: 169 rows of 8 floats (about 11 kB)."""
        self._data = array("d", [math.nan] * (HOURS_KEPT * _ROW))
        self._prev: tuple[float, float] | None = None

    def _row(self, start: float) -> int:
        i = int(start // HOUR) % HOURS_KEPT * _ROW
        if self._data[i] != start:
            self._data[i : i + _ROW] = array(
                "d", (start, 0, 0, math.inf, -math.inf, 0, math.nan, 0)
            )
        return i

    def add(self, at: float, value: float) -> None:
        """Take one read: the previous value is held until ``at``."""
        if self._prev is not None and at > self._prev[0]:
            t0, v0 = self._prev
            t = max(t0, at - MAX_HOLD)
            while t < at:
                start = math.floor(t / HOUR) * HOUR
                upto = min(at, start + HOUR)
                i = self._row(start)
                self._data[i + 1] += v0 * (upto - t)
                self._data[i + 2] += upto - t
                t = upto
        elif self._prev is not None and at < self._prev[0]:
            return  # out of order: ignored
        i = self._row(math.floor(at / HOUR) * HOUR)
        d = self._data
        d[i + 3] = min(d[i + 3], value)
        d[i + 4] = max(d[i + 4], value)
        d[i + 5] += 1
        d[i + 6] = value
        d[i + 7] += value
        self._prev = (at, value)

    def rows(self, start: float, end: float) -> list[tuple[float, ...]]:
        """Return the rows of the hours overlapping ``start .. end``, oldest first.

        A row is ``(start, integral, held, min, max, count, last, sum)``; counts,
        extremes and sums are of the whole hour (hour granularity).
        """
        d = self._data
        out = []
        for k in range(HOURS_KEPT):
            i = k * _ROW
            s = d[i]
            if math.isfinite(s) and s + HOUR > start and s < end:
                out.append(tuple(d[i : i + _ROW]))
        out.sort()
        return out

    def means(self, start: float, end: float) -> list[ReadSample]:
        """Return hourly means as reads at each hour's start, held for the hour."""
        return [
            ReadSample(row[0], row[1] / row[2])
            for row in self.rows(start, end)
            if row[2] > 0
        ]


@dataclass(frozen=True, slots=True)
class RemedySettings:
    """Settings in force that suggestions are compared with.

    ``max_registers``: the connection's max registers per read;
    ``unit_max_registers``: a lower limit of single units (their register map's).
    """

    max_registers: int | None = None
    pause: float | None = None
    close_after_cycle: bool = False
    unit_max_registers: Mapping[int, int] = field(default_factory=dict)

    def limit(self, unit_id: int) -> int | None:
        """Return the max registers per read in force for ``unit_id``."""
        return self.unit_max_registers.get(unit_id, self.max_registers)


def _combine(older: Aggregate | None, newer: Aggregate, start: float) -> Aggregate:
    if older is None or older.count == 0 and older.held == 0:
        return Aggregate(
            start, newer.end, newer.count, newer.minimum, newer.maximum, newer.mean,
            newer.last, newer.time_weighted_mean, newer.held,
        )  # fmt: skip
    count = older.count + newer.count
    mins = [v for v in (older.minimum, newer.minimum) if v is not None]
    maxs = [v for v in (older.maximum, newer.maximum) if v is not None]
    total = 0.0
    for part in (older, newer):
        if part.mean is not None:
            total += part.mean * part.count
    held = older.held + newer.held
    integral = sum(
        p.time_weighted_mean * p.held
        for p in (older, newer)
        if p.time_weighted_mean is not None
    )
    return Aggregate(
        start=start,
        end=newer.end,
        count=count,
        minimum=min(mins) if mins else None,
        maximum=max(maxs) if maxs else None,
        mean=total / count if count else None,
        last=newer.last if newer.last is not None else older.last,
        time_weighted_mean=integral / held if held > 0 else newer.time_weighted_mean,
        held=held,
    )


class Analytics:
    """Analytics of one connection (see the module docstring)."""

    def __init__(
        self,
        history: History | None = None,
        *,
        tz: tzinfo | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        forecast_horizon: float = DEFAULT_FORECAST_HORIZON,
        forecast_every: float = DEFAULT_FORECAST_EVERY,
        settings: RemedySettings | None = None,
        incremental: bool = True,
    ) -> None:
        """Read reads from ``history`` (fed by its owner); None: keep and feed one.

        ``incremental``: take only what changed since the last cycle (the registers
        the history saw newly read, the requests made since); False: look at every
        register and the snapshot's whole request window again each cycle (the same
        results, for comparison).
        """
        self._own_history = history is None
        self.history = history if history is not None else History()
        self.incremental = incremental
        self._history_seen = self.history.observed
        self.detector = AnomalyDetector(threshold, tz=tz)
        self.health = HealthModel(incremental=incremental)
        self.tracker = ForecastTracker(forecast_horizon)
        self.forecast_horizon = forecast_horizon
        self.forecast_every = forecast_every
        self.settings = settings or RemedySettings()
        self.anomalies: deque[Anomaly] = deque(maxlen=ANOMALIES_KEPT)
        self.snapshot: EngineSnapshot | None = None
        self._hours: dict[str, HourlySeries] = {}
        self._last_read: dict[str, float] = {}
        self._next_forecast: dict[str, float] = {}
        self._remedies: (
            tuple[
                tuple[EngineSnapshot, float | None, RemedySettings], list[Remediation]
            ]
            | None
        ) = None

    # -- feeding -----------------------------------------------------------

    def observe(self, result: CycleResult, snapshot: EngineSnapshot) -> list[Anomaly]:
        """Take one cycle; ``snapshot`` is taken right after it. Returns new anomalies."""
        history = self.history
        if self._own_history:
            history.observe(result, snapshot)
        # the history took this very cycle (and the one before, as we did): the
        # registers it saw newly read are ours; else look at every register
        took_this = history.observed == self._history_seen + 1 and bool(self._last_read)
        self._history_seen = history.observed
        registers = snapshot.registers
        uids = history.last_reads if self.incremental and took_this else registers
        found: list[Anomaly] = []
        for uid in uids:
            reg = registers[uid]
            at = reg.last_read
            if at is None or self._last_read.get(uid) == at:
                continue
            self._last_read[uid] = at
            value = as_number(reg.value)
            if value is None:
                continue
            series = self._hours.get(uid)
            if series is None:
                series = self._hours[uid] = HourlySeries()
            series.add(at, value)
            if isinstance(reg.value, bool):
                continue  # on/off: no anomaly score, no forecast
            self.tracker.observe(uid, at, value)
            anomaly = self.detector.observe(
                uid, at, value, tolerance=reg.tolerance, noise=reg.noise,
                unit_id=reg.unit_id,
            )  # fmt: skip
            if anomaly is not None:
                found.append(anomaly)
            if at >= self._next_forecast.get(uid, -math.inf):
                self._track_forecast(uid, at)
        self.anomalies.extend(found)
        self.health.note_anomalies(found)
        self.health.update(snapshot)
        self.snapshot = snapshot
        return found

    def _track_forecast(self, uid: str, at: float) -> None:
        samples = self.history.read_samples(uid)
        if len(samples) < MIN_FORECAST_READS:
            return
        self._next_forecast[uid] = at + self.forecast_every
        made = forecast(samples, self.forecast_horizon, end=at)
        if made is not None:
            self.tracker.expect(uid, made.at(at + self.forecast_horizon))

    # -- reading -----------------------------------------------------------

    def now(self) -> float:
        """Wall time of the last snapshot taken (0 before the first)."""
        snap = self.snapshot
        return 0.0 if snap is None else snap.to_wall(snap.at)

    def samples(self, uid: str, since: float) -> list[ReadSample]:
        """Return the reads of ``uid`` since ``since``: hourly means before the raw reads, then raw."""
        raw = self.history.read_samples(uid)
        if raw and raw[0].at <= since:
            return [s for s in raw if s.at >= since]
        boundary = raw[0].at if raw else math.inf
        series = self._hours.get(uid)
        older = [] if series is None else series.means(since, boundary)
        older = [s for s in older if since <= s.at < boundary]
        return older + raw

    def aggregate(self, uid: str, start: float, end: float) -> Aggregate:
        """Figures of ``uid`` over ``start .. end`` (raw reads, then hourly rows)."""
        raw = self.history.read_samples(uid)
        if not raw or raw[0].at > start:
            boundary = end
            if raw:
                boundary = min(end, math.ceil(raw[0].at / HOUR) * HOUR)
            older = self._hour_aggregate(uid, start, boundary)
            if boundary >= end:
                return older or aggregate((), start, end)
            return _combine(older, aggregate(raw, boundary, end), start)
        return aggregate(raw, start, end)

    def _hour_aggregate(self, uid: str, start: float, end: float) -> Aggregate | None:
        series = self._hours.get(uid)
        if series is None:
            return None
        rows = series.rows(start, end)
        if not rows:
            return None
        count = int(sum(r[5] for r in rows))
        integral = held = 0.0
        for s, total, h, *_ in rows:
            share = (min(end, s + HOUR) - max(start, s)) / HOUR
            integral += total * share
            held += h * share
        lows = [r[3] for r in rows if r[5] > 0]
        highs = [r[4] for r in rows if r[5] > 0]
        lasts = [r[6] for r in rows if r[5] > 0]
        total = sum(r[7] for r in rows)
        return Aggregate(
            start=start,
            end=end,
            count=count,
            minimum=min(lows) if lows else None,
            maximum=max(highs) if highs else None,
            mean=total / count if count else None,
            last=lasts[-1] if lasts else None,
            time_weighted_mean=integral / held if held > 0 else None,
            held=held,
        )

    def trend(self, uid: str, window: float, end: float | None = None) -> Trend | None:
        """Trend of ``uid`` over the last ``window`` seconds (to ``end``, default now)."""
        end = self.now() if end is None else end
        reg = None if self.snapshot is None else self.snapshot.registers.get(uid)
        return trend(
            self.samples(uid, end - window),
            window,
            end=end,
            tolerance=0.0 if reg is None else reg.tolerance,
        )

    def forecast(self, uid: str, horizon: float) -> Forecast | None:
        """Forecast of ``uid`` ``horizon`` seconds ahead; seasonal once a day shows."""
        now = self.now()
        samples = self.samples(uid, now - 7 * DAY)
        season = DAY if daily_pattern(numeric(samples)) else None
        return forecast(samples, horizon, season=season)

    def forecast_accuracy(self, uid: str) -> ForecastAccuracy | None:
        """How ``uid``'s past forecasts compared with what was then read."""
        return self.tracker.accuracy(uid)

    def anomalies_since(
        self, since: float, *, uid: str | None = None, unit_id: int | None = None
    ) -> list[Anomaly]:
        """Anomalies at or after ``since`` (of one register or unit, or all)."""
        return [
            a
            for a in self.anomalies
            if a.at >= since
            and (uid is None or a.uid == uid)
            and (unit_id is None or a.unit_id == unit_id)
        ]

    def health_score(self, scope: Scope = CONNECTION) -> HealthScore | None:
        """Return the last health score of a unit id or the connection."""
        return self.health.scores.get(scope)

    def health_trend(
        self, scope: Scope = CONNECTION, period: str = "day"
    ) -> list[tuple[float, float]]:
        """Health points of ``scope`` over ``day`` or ``week``."""
        return self.health.trend(scope, period)

    def remediation(self, unit_id: int | None = None) -> list[Remediation]:
        """Suggestions for the connection or one unit (empty before the first cycle).

        Incremental: the connection's are worked out once per snapshot (and
        baseline and settings); a unit's are the connection's of that unit, with
        the connection-wide ones (the same list the unit alone gives).
        """
        if self.snapshot is None:
            return []
        if not self.incremental:
            return self._remediation(unit_id)
        key = (self.snapshot, self.health.baselines.get(CONNECTION), self.settings)
        cached = self._remedies
        if cached is None or not (cached[0][0] is key[0] and cached[0][1:] == key[1:]):
            cached = self._remedies = (key, self._remediation(None))
        if unit_id is None:
            return list(cached[1])
        return [r for r in cached[1] if r.unit_id in (unit_id, None)]

    def _remediation(self, unit_id: int | None) -> list[Remediation]:
        assert self.snapshot is not None
        settings = self.settings
        return remediation(
            self.snapshot,
            unit_id=unit_id,
            latency_baseline=self.health.baselines.get(CONNECTION),
            max_registers=settings.max_registers,
            pause=settings.pause,
            close_after_cycle=settings.close_after_cycle,
            unit_max_registers=settings.unit_max_registers,
        )

    def summary_inputs(self, uid: str, window: float) -> SummaryInputs:
        """Copy what a register summary needs (cheap; then summarise anywhere).

        The trend and forecast of :func:`summarise` cost a few ms per register:
        a caller with an event loop copies here and summarises in a thread.
        """
        now = self.now()
        reg = None if self.snapshot is None else self.snapshot.registers.get(uid)
        accuracy = self.forecast_accuracy(uid)
        return SummaryInputs(
            uid=uid,
            now=now,
            window=window,
            tolerance=0.0 if reg is None else reg.tolerance,
            samples=self.samples(uid, now - max(window, 7 * DAY)),
            aggregate=self.aggregate(uid, now - window, now),
            anomalies=tuple(self.anomalies_since(now - window, uid=uid)),
            accuracy=accuracy,
        )

    def register_summary(
        self, uid: str, window: float, horizon: float
    ) -> dict[str, Any]:
        """Return aggregates, trend, forecast, anomalies and forecast error of ``uid``."""
        return summarise(self.summary_inputs(uid, window), horizon)

    # -- persistence -------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Return the sparse, persisted part (see the module docstring)."""
        return {
            "version": STATE_VERSION,
            "anomaly": self.detector.export_state(),
            "forecast": self.tracker.export_state(),
            "health": self.health.export_state(),
        }

    def import_state(
        self, data: object, uids: Sequence[str] | None = None
    ) -> list[str]:
        """Restore :meth:`export_state`'s output; returns warnings for what was set aside."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return ["analytics: unknown format, starting empty"]
        keep = None if uids is None else set(uids)

        def mine(part: object) -> object:
            if keep is None or not isinstance(part, Mapping):
                return part
            return {k: v for k, v in part.items() if k in keep}

        anomaly = data.get("anomaly")
        if isinstance(anomaly, Mapping):
            anomaly = {**anomaly, "profiles": mine(anomaly.get("profiles"))}
        warnings = self.detector.import_state(anomaly)
        self.tracker.import_state(mine(data.get("forecast")))
        warnings += self.health.import_state(data.get("health"))
        return warnings


@dataclass(frozen=True, slots=True)
class SummaryInputs:
    """What a register summary is made from, copied out of :class:`Analytics`."""

    uid: str
    now: float
    window: float
    tolerance: float
    samples: list[ReadSample]  # hourly means, then the raw reads (7 days at most)
    aggregate: Aggregate
    anomalies: tuple[Anomaly, ...]
    accuracy: ForecastAccuracy | None


def summarise(inputs: SummaryInputs, horizon: float) -> dict[str, Any]:
    """Return a register's aggregate, trend, forecast, forecast error and anomalies.

    Pure (no shared state): safe in an executor thread.
    """
    now, window = inputs.now, inputs.window
    made = None
    if horizon > 0:
        season = DAY if daily_pattern(numeric(inputs.samples)) else None
        made = forecast(inputs.samples, horizon, season=season)
    recent = [s for s in inputs.samples if s.at >= now - window]
    found = trend(recent, window, end=now, tolerance=inputs.tolerance)
    return {
        "uid": inputs.uid,
        "window": window,
        "aggregate": inputs.aggregate.as_dict(),
        "trend": None if found is None else found.as_dict(),
        "forecast": None if made is None else made.as_dict(),
        "forecast_accuracy": None
        if inputs.accuracy is None
        else inputs.accuracy.as_dict(),
        "anomalies": [a.as_dict() for a in inputs.anomalies],
    }


def unit_of(snapshot: EngineSnapshot, uid: str) -> int | None:
    """Return the unit id of a register in ``snapshot`` (None: unknown)."""
    reg = snapshot.registers.get(uid)
    return None if reg is None else reg.unit_id


def uids_of(snapshot: EngineSnapshot, unit_id: int) -> list[str]:
    """Return the registers of one unit id, in map order."""
    return [u for u, r in snapshot.registers.items() if r.unit_id == unit_id]


__all__ = [
    "Analytics",
    "HourlySeries",
    "RemedySettings",
    "SummaryInputs",
    "summarise",
    "uids_of",
    "unit_of",
]
