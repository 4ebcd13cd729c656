"""Health score 0-100 per device (unit id) and per connection, with its reasons.

:func:`health_score` starts at 100 and takes off a penalty per factor, each capped,
each with the figure that caused it:

=================== ===================================================== ========
factor              measured (over the rate window, 10 min)               max off
=================== ===================================================== ========
not_answering       the unit stopped answering (probed alone)             60
error_rate          percent of requests that failed                       30
timeouts            percent of requests that got no answer                20
latency             p95 latency against the scope's own baseline          15
quarantined         registers the device refuses (quarantined)            20
holes               refused addresses learned in the last 24 h            10
stale               registers read later than 1.5 x their interval        15
anomalies           anomalies in the last 30 min                          30
=================== ===================================================== ========

:class:`HealthModel` keeps what a score needs across cycles (latency baselines,
hole counts, recent anomalies) and a health trend per scope: a point every 5 min
over 24 h and hourly means over 7 days (bounded rings; the hourly ones are
persisted through :meth:`HealthModel.export_state`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import math
from typing import Any

from ..errors import ErrorKind
from ..stats import RATE_WINDOW, RECENT_REQUESTS, EngineSnapshot, RequestRecord
from .anomaly import Anomaly

CONNECTION = "connection"
DAY = 86_400.0
HOUR = 3600.0
ANOMALY_WINDOW = 1800.0  # anomalies cost points for this long
TREND_STEP = 300.0  # a point of the 24 h trend every 5 min
DAY_POINTS = int(DAY / TREND_STEP)
WEEK_POINTS = 7 * 24
MIN_REQUESTS = 3  # fewer requests in the window: the rate factors say nothing
MIN_LATENCY_SAMPLES = 10
BASELINE_TAU = DAY  # the latency baseline follows slowly (time constant)
LATENCY_RATIO_OK = 1.5  # p95 up to this times the baseline costs nothing
STALE_FACTOR = 1.5
STATE_VERSION = 1
STATUS_OK = 80  # score at or above: ok
STATUS_DEGRADED = 50  # at or above: degraded; below: poor

type Scope = int | str  # a unit id, or CONNECTION


@dataclass(frozen=True, slots=True)
class Factor:
    """One reason a score is below 100: the figure, its baseline and the points off."""

    key: str
    value: float
    penalty: float
    explanation: str
    baseline: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe figures."""
        return {
            "key": self.key,
            "value": round(self.value, 4),
            "baseline": None if self.baseline is None else round(self.baseline, 4),
            "penalty": round(self.penalty, 2),
            "explanation": self.explanation,
        }


@dataclass(frozen=True, slots=True)
class HealthScore:
    """Health of one scope (a unit id or the connection) at ``at`` (wall time)."""

    scope: Scope
    at: float
    score: int
    factors: tuple[Factor, ...]  # every factor measured, largest penalty first

    @property
    def status(self) -> str:
        """Return ``ok`` (>= 80), ``degraded`` (>= 50) or ``poor``."""
        if self.score >= STATUS_OK:
            return "ok"
        return "degraded" if self.score >= STATUS_DEGRADED else "poor"

    @property
    def problems(self) -> tuple[Factor, ...]:
        """The factors that cost points, largest first."""
        return tuple(f for f in self.factors if f.penalty > 0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe score, status and factors."""
        return {
            "scope": self.scope,
            "at": self.at,
            "score": self.score,
            "status": self.status,
            "factors": [f.as_dict() for f in self.factors],
        }


@dataclass(frozen=True, slots=True)
class Measurements:
    """What a score is computed from (one scope, one moment)."""

    requests: int = 0
    failed: int = 0
    timeouts: int = 0
    p95_latency: float | None = None  # seconds, successful requests
    latency_baseline: float | None = None
    not_answering: bool = False
    units_down: int = 0  # connection: units not answering
    units: int = 1  # connection: units polled
    registers: int = 0  # enabled registers
    quarantined: int = 0
    new_holes: int = 0
    stale: int = 0
    anomalies: int = 0
    quarantined_names: tuple[str, ...] = field(default_factory=tuple)


def _cap(value: float, cap: float) -> float:
    return max(0.0, min(cap, value))


def health_score(
    m: Measurements, scope: Scope = CONNECTION, at: float = 0.0
) -> HealthScore:
    """Score ``m`` (see the module docstring for the factors and their caps)."""
    factors: list[Factor] = []
    if scope == CONNECTION:
        share = m.units_down / m.units if m.units else 0.0
        factors.append(
            Factor(
                "not_answering",
                m.units_down,
                _cap(60.0 * share, 60.0),
                f"{m.units_down} of {m.units} devices not answering",
            )
        )
    else:
        factors.append(
            Factor(
                "not_answering",
                float(m.not_answering),
                60.0 if m.not_answering else 0.0,
                "the device stopped answering" if m.not_answering else "answering",
            )
        )
    if m.requests >= MIN_REQUESTS:
        rate = 100.0 * m.failed / m.requests
        timeouts = 100.0 * m.timeouts / m.requests
        factors.append(
            Factor(
                "error_rate",
                rate,
                _cap(0.6 * rate, 30.0),
                f"{m.failed} of {m.requests} requests failed ({rate:.1f} %)",
            )
        )
        factors.append(
            Factor(
                "timeouts",
                timeouts,
                _cap(0.4 * timeouts, 20.0),
                f"{m.timeouts} of {m.requests} requests timed out ({timeouts:.1f} %)",
            )
        )
    if m.p95_latency is not None and m.latency_baseline:
        ratio = m.p95_latency / m.latency_baseline
        factors.append(
            Factor(
                "latency",
                1000.0 * m.p95_latency,
                _cap(10.0 * (ratio - LATENCY_RATIO_OK), 15.0),
                f"p95 latency {1000 * m.p95_latency:.1f} ms, {ratio:.1f}x its "
                f"baseline {1000 * m.latency_baseline:.1f} ms",
                baseline=1000.0 * m.latency_baseline,
            )
        )
    names = ", ".join(m.quarantined_names[:3])
    factors.append(
        Factor(
            "quarantined",
            m.quarantined,
            _cap(5.0 * m.quarantined, 20.0),
            f"{m.quarantined} registers refused by the device"
            + (f" ({names})" if names else ""),
        )
    )
    factors.append(
        Factor(
            "holes",
            m.new_holes,
            _cap(2.0 * m.new_holes, 10.0),
            f"{m.new_holes} refused addresses learned in the last 24 h",
        )
    )
    if m.registers:
        share = m.stale / m.registers
        factors.append(
            Factor(
                "stale",
                100.0 * share,
                _cap(30.0 * share, 15.0),
                f"{m.stale} of {m.registers} registers overdue "
                f"(read later than {STALE_FACTOR}x their interval)",
            )
        )
    factors.append(
        Factor(
            "anomalies",
            m.anomalies,
            _cap(5.0 * m.anomalies, 30.0),
            f"{m.anomalies} anomalies in the last 30 min",
        )
    )
    factors.sort(key=lambda f: -f.penalty)
    total = sum(f.penalty for f in factors)
    return HealthScore(scope, at, round(max(0.0, 100.0 - total)), tuple(factors))


class _Trend:
    """Health points of one scope: 5-min points over 24 h, hourly means over 7 days."""

    __slots__ = ("day", "hour_n", "hour_start", "hour_sum", "week")

    def __init__(self) -> None:
        self.day: deque[tuple[float, float]] = deque(maxlen=DAY_POINTS)
        self.week: deque[tuple[float, float]] = deque(maxlen=WEEK_POINTS)
        self.hour_start: float | None = None
        self.hour_sum = 0.0
        self.hour_n = 0

    def add(self, at: float, score: float) -> None:
        if not self.day or at - self.day[-1][0] >= TREND_STEP:
            self.day.append((at, score))
        start = math.floor(at / HOUR) * HOUR
        if self.hour_start is not None and start != self.hour_start:
            self._close_hour()
        self.hour_start = start
        self.hour_sum += score
        self.hour_n += 1

    def _close_hour(self) -> None:
        if self.hour_start is not None and self.hour_n:
            self.week.append((self.hour_start, self.hour_sum / self.hour_n))
        self.hour_sum = 0.0
        self.hour_n = 0

    def points(self, period: str) -> list[tuple[float, float]]:
        if period == "day":
            return list(self.day)
        pts = list(self.week)
        if self.hour_start is not None and self.hour_n:
            pts.append((self.hour_start, self.hour_sum / self.hour_n))
        return pts


def _p95(values: Sequence[float]) -> float | None:
    if len(values) < MIN_LATENCY_SAMPLES:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


class HealthModel:
    """Health of one connection and its devices over time (see the module docstring)."""

    def __init__(
        self, window: float = RATE_WINDOW, *, incremental: bool = True
    ) -> None:
        """Measure rates over the last ``window`` seconds.

        ``incremental``: keep the window's requests (per unit too) and take only
        the requests made since the last update; False: filter the snapshot's
        recent requests again on every update (the same figures, the slow way).
        """
        self.window = window
        self.incremental = incremental
        # the snapshot's last RECENT_REQUESTS requests inside the window, oldest
        # first, and the same per unit id
        self._window: deque[RequestRecord] = deque()
        self._by_unit: dict[int, deque[RequestRecord]] = {}
        self._seen_requests: int | None = None  # Totals.requests already taken
        self.baselines: dict[Scope, float] = {}  # p95 latency baseline (s)
        self._baseline_at: dict[Scope, float] = {}
        self._holes: dict[Scope, deque[tuple[float, int]]] = {}
        self._anomalies: deque[tuple[float, int | None]] = deque(maxlen=1000)
        self._trends: dict[Scope, _Trend] = {}
        self.scores: dict[Scope, HealthScore] = {}

    def note_anomalies(self, anomalies: Iterable[Anomaly]) -> None:
        """Count anomalies (they cost points for an hour)."""
        for a in anomalies:
            self._anomalies.append((a.at, a.unit_id))

    def update(self, snapshot: EngineSnapshot) -> dict[Scope, HealthScore]:
        """Score the connection and every unit as of ``snapshot``; adds trend points."""
        wall = snapshot.to_wall(snapshot.at)
        since = snapshot.at - self.window
        by_unit: Mapping[int, Sequence[RequestRecord]] | None = None
        if self.incremental:
            self._take_requests(snapshot, since)
            requests: Sequence[RequestRecord] = self._window
            by_unit = self._by_unit
        else:
            requests = [r for r in snapshot.recent_requests if r.at >= since]
        errors = [e for e in snapshot.recent_errors if e.at >= since]
        units = sorted({r.unit_id for r in snapshot.registers.values() if r.enabled})
        scores: dict[Scope, HealthScore] = {}
        scopes: list[Scope] = [CONNECTION, *units]
        for scope in scopes:
            reqs = requests
            if scope != CONNECTION:
                reqs = (
                    [r for r in requests if r.unit_id == scope]
                    if by_unit is None
                    else by_unit.get(int(scope), ())
                )
            m = self._measure(scope, snapshot, wall, reqs, errors, units)
            score = health_score(m, scope, wall)
            scores[scope] = score
            self._trends.setdefault(scope, _Trend()).add(wall, score.score)
        self.scores = scores
        return scores

    def _take_requests(self, snapshot: EngineSnapshot, since: float) -> None:
        """Add the requests made since the last update; drop those out of the window.

        Requests are recorded in time order, so the window's oldest leave first;
        at most the snapshot's :data:`~..stats.RECENT_REQUESTS` are kept, as there.
        """
        total = snapshot.totals.requests
        new = total - (self._seen_requests or 0)
        if self._seen_requests is None or new < 0:  # first look, or a new engine
            self._window.clear()
            self._by_unit.clear()
            new = total
        self._seen_requests = total
        recent = snapshot.recent_requests
        window, by_unit = self._window, self._by_unit
        for record in recent[len(recent) - min(new, len(recent)) :] if new > 0 else ():
            if len(window) >= RECENT_REQUESTS:
                self._drop_oldest()
            window.append(record)
            unit = by_unit.get(record.unit_id)
            if unit is None:
                unit = by_unit[record.unit_id] = deque()
            unit.append(record)
        while window and window[0].at < since:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        record = self._window.popleft()
        unit = self._by_unit[record.unit_id]
        unit.popleft()  # the unit's oldest is the window's oldest of that unit
        if not unit:
            del self._by_unit[record.unit_id]

    def _measure(  # noqa: PLR0917 - one scope's inputs
        self,
        scope: Scope,
        snapshot: EngineSnapshot,
        wall: float,
        reqs: Sequence[RequestRecord],
        errors: Sequence[Any],
        units: Sequence[int],
    ) -> Measurements:
        """Measure ``scope`` from its requests in the window (``reqs``) and more."""
        mine = scope == CONNECTION
        errs = [e for e in errors if mine or e.unit_id == scope]
        regs = [
            r
            for r in snapshot.registers.values()
            if r.enabled and (mine or r.unit_id == scope)
        ]
        quarantined = [r for r in regs if r.quarantined_until is not None]
        stale = [
            r
            for r in regs
            if r.quarantined_until is None
            and r.last_read is not None
            and wall - r.last_read > STALE_FACTOR * r.effective_interval + 1.0
        ]
        p95 = _p95([r.latency for r in reqs if r.ok])
        baseline = self._baseline(scope, p95, wall)
        holes = sum(
            len(addresses)
            for key, addresses in snapshot.holes.items()
            if mine or key.split(".", 1)[0] == str(scope)
        )
        return Measurements(
            requests=len(reqs),
            failed=sum(1 for r in reqs if not r.ok),
            timeouts=sum(1 for e in errs if e.kind is ErrorKind.TIMEOUT),
            p95_latency=p95,
            latency_baseline=baseline,
            not_answering=not mine and scope in snapshot.units_down,
            units_down=len([u for u in snapshot.units_down if u in units]),
            units=max(1, len(units)),
            registers=len(regs),
            quarantined=len(quarantined),
            quarantined_names=tuple(r.key for r in quarantined),
            new_holes=self._new_holes(scope, holes, wall),
            stale=len(stale),
            anomalies=sum(
                1
                for at, unit in self._anomalies
                if at >= wall - ANOMALY_WINDOW and (mine or unit == scope)
            ),
        )

    def _baseline(self, scope: Scope, p95: float | None, wall: float) -> float | None:
        """Return the scope's p95 baseline, before ``p95`` is folded in (slowly)."""
        old = self.baselines.get(scope)
        if p95 is None:
            return old
        if old is None:
            self.baselines[scope] = p95
            self._baseline_at[scope] = wall
            return None  # nothing to compare the first figure with
        dt = max(0.0, wall - self._baseline_at.get(scope, wall))
        self._baseline_at[scope] = wall
        weight = 1.0 - math.exp(-dt / BASELINE_TAU)
        # a slow incident must not become the norm within the hour: rises count less
        if p95 > old:
            weight *= 0.25
        self.baselines[scope] = old + weight * (p95 - old)
        return old

    def _new_holes(self, scope: Scope, count: int, wall: float) -> int:
        seen = self._holes.setdefault(scope, deque())
        if not seen or seen[-1][1] != count:
            seen.append((wall, count))
        while len(seen) > 1 and seen[1][0] <= wall - DAY:
            seen.popleft()
        lowest = min(c for _, c in seen)
        return max(0, count - lowest)

    def anomalies_since(self, since: float, unit_id: int | None = None) -> int:
        """Anomalies noted at or after ``since`` (of ``unit_id``, or all)."""
        return sum(
            1
            for at, unit in self._anomalies
            if at >= since and (unit_id is None or unit == unit_id)
        )

    def trend(self, scope: Scope, period: str = "day") -> list[tuple[float, float]]:
        """Health points of ``scope``: ``day`` (5-min points) or ``week`` (hourly means)."""
        trend = self._trends.get(scope)
        return [] if trend is None else trend.points(period)

    # -- persistence -------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """Hourly trend points (rounded) and latency baselines per scope."""
        return {
            "version": STATE_VERSION,
            "baselines": {str(s): round(v, 6) for s, v in self.baselines.items()},
            "week": {
                str(s): [[int(at), round(v, 1)] for at, v in t.points("week")]
                for s, t in self._trends.items()
            },
        }

    def import_state(self, data: object) -> list[str]:
        """Restore what :meth:`export_state` wrote; returns warnings."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return ["health: unknown format, starting empty"]
        warnings = []
        baselines = data.get("baselines")
        for key, value in baselines.items() if isinstance(baselines, Mapping) else ():
            try:
                self.baselines[_scope(key)] = float(value)
            except (TypeError, ValueError):
                warnings.append(f"health: baseline of {key} set aside")
        week = data.get("week")
        for key, rows in week.items() if isinstance(week, Mapping) else ():
            try:
                trend = self._trends.setdefault(_scope(key), _Trend())
                trend.week.extend((float(at), float(v)) for at, v in rows)
            except (TypeError, ValueError):
                warnings.append(f"health: trend of {key} set aside")
        return warnings


def _scope(key: str) -> Scope:
    return CONNECTION if key == CONNECTION else int(key)
