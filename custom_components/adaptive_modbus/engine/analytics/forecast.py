"""Trend (weighted linear regression) and forecast (Holt / Holt-Winters) of a series.

:func:`trend` fits a straight line to the reads of a window, each read weighted by
the time it stands for (half the gaps to its neighbours), so a burst of fast reads
does not outweigh hours of slow ones. :func:`forecast` resamples the reads onto an
even grid (time-weighted slot means) and runs Holt's linear exponential smoothing,
or additive Holt-Winters when a ``season`` (e.g. a day) is given and the data
covers two of them; the smoothing constants are those with the smallest one-step
error on the data. The interval widens with the horizon as for ETS(A,A,N).

:class:`ForecastTracker` keeps, per register, the forecasts made and scores them
against what was then read: mean absolute error, bias, RMSE and how often the
read fell inside the interval.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
import math
from typing import Any

from ..spans import check_span
from .series import Point, Sample, median_spacing, numeric, resample

HOUR = 3600.0
DAY = 86_400.0
# a fit needs at least this many resampled slots
MIN_POINTS = 4
MAX_SLOTS = 288  # slots a forecast fits on (the step grows for long windows)
MAX_OUTPUT_POINTS = 48  # points a forecast returns (evenly thinned)
# the finest grid (s): reads closer than this are one moment (a frozen or stepped
# clock), so a horizon never turns into millions of steps
MIN_STEP = 1.0
Z_95 = 1.96
# trend: below this R² (or a change over the window below ``tolerance``) it is flat
FLAT_R2 = 0.3
_ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
_BETAS = (0.01, 0.05, 0.15, 0.3)
_GAMMAS = (0.05, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class Trend:
    """A straight line through a window: slope per hour, fit and direction."""

    start: float
    end: float
    count: int
    slope_per_hour: float
    value_at_end: float  # the line's value at ``end``
    r_squared: float
    direction: str  # rising | falling | flat

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe figures."""
        return {
            "start": self.start,
            "end": self.end,
            "count": self.count,
            "slope_per_hour": round(self.slope_per_hour, 6),
            "value_at_end": round(self.value_at_end, 6),
            "r_squared": round(self.r_squared, 4),
            "direction": self.direction,
        }


def _weights(xs: list[float]) -> list[float]:
    """Time each read stands for: half the gap to each neighbour (trapezoid rule)."""
    n = len(xs)
    if n == 1:
        return [1.0]
    weights = []
    for i in range(n):
        left = xs[i] - xs[i - 1] if i > 0 else 0.0
        right = xs[i + 1] - xs[i] if i + 1 < n else 0.0
        weights.append((left + right) / 2.0)
    if sum(weights) <= 0:
        return [1.0] * n
    return weights


def trend(
    samples: Iterable[Sample],
    window: float,
    *,
    end: float | None = None,
    tolerance: float = 0.0,
) -> Trend | None:
    """Weighted linear regression of the reads in ``end - window .. end``.

    ``end`` defaults to the last read. Direction is flat when R² is below
    :data:`FLAT_R2` or the line moves less than ``tolerance`` over the window.
    None with fewer than two reads in the window.
    """
    points = numeric(samples)
    if end is None:
        if not points:
            return None
        end = points[-1][0]
    start = end - window
    points = [p for p in points if start <= p[0] <= end]
    if len(points) < 2:
        return None
    xs = [(at - end) / HOUR for at, _ in points]
    ys = [v for _, v in points]
    ws = _weights(xs)
    total = sum(ws)
    mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / total
    my = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
    sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
    sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True))
    syy = sum(w * (y - my) ** 2 for w, y in zip(ws, ys, strict=True))
    slope = sxy / sxx if sxx > 0 else 0.0
    intercept = my - slope * mx  # the line's value at x = 0 (= end)
    if syy > 0:
        r_squared = max(0.0, min(1.0, (sxy * sxy) / (sxx * syy))) if sxx > 0 else 0.0
    else:
        r_squared = 0.0
    span = (points[-1][0] - points[0][0]) / HOUR
    change = abs(slope) * span
    scale = max(1e-9, 1e-9 * abs(my))
    if r_squared < FLAT_R2 or change <= max(tolerance, scale):
        direction = "flat"
    else:
        direction = "rising" if slope > 0 else "falling"
    return Trend(
        start=start,
        end=end,
        count=len(points),
        slope_per_hour=slope,
        value_at_end=intercept,
        r_squared=r_squared,
        direction=direction,
    )


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """Forecast value at ``at`` with its interval (about 95 %)."""

    at: float
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """JSON-safe figures."""
        return {
            "at": round(self.at, 3),
            "value": round(self.value, 6),
            "low": round(self.low, 6),
            "high": round(self.high, 6),
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    """A forecast made at ``made_at`` (the last slot of the data) for ``horizon`` s."""

    made_at: float
    horizon: float
    step_seconds: float
    method: str  # holt | holt_winters
    season: float | None
    alpha: float
    beta: float
    gamma: float | None
    sigma: float  # RMS one-step error on the data
    points: tuple[ForecastPoint, ...]

    def at(self, t: float) -> ForecastPoint:
        """Return the forecast at ``t`` (linear between points, clamped to the ends)."""
        pts = self.points
        if t <= pts[0].at:
            return pts[0]
        for a, b in zip(pts, pts[1:], strict=False):
            if a.at <= t <= b.at:
                f = (t - a.at) / (b.at - a.at) if b.at > a.at else 0.0
                return ForecastPoint(
                    t,
                    a.value + f * (b.value - a.value),
                    a.low + f * (b.low - a.low),
                    a.high + f * (b.high - a.high),
                )
        return pts[-1]

    def as_dict(self, max_points: int = MAX_OUTPUT_POINTS) -> dict[str, Any]:
        """JSON-safe forecast, at most ``max_points`` points (evenly thinned)."""
        pts = list(self.points)
        if len(pts) > max_points > 1:
            idx = {
                round(i * (len(pts) - 1) / (max_points - 1)) for i in range(max_points)
            }
            pts = [pts[i] for i in sorted(idx)]
        return {
            "made_at": self.made_at,
            "horizon": self.horizon,
            "step": round(self.step_seconds, 3),
            "method": self.method,
            "season": self.season,
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "sigma": round(self.sigma, 6),
            "points": [p.as_dict() for p in pts],
        }


def _holt(ys: list[float], alpha: float, beta: float) -> tuple[float, float, float]:
    """Run Holt's linear method; returns (SSE of one-step errors, level, trend)."""
    level = ys[0]
    slope = ys[1] - ys[0]
    sse = 0.0
    for y in ys[1:]:
        predicted = level + slope
        err = y - predicted
        sse += err * err
        new_level = predicted + alpha * err
        slope += alpha * beta * err  # error-correction form of b = β(l-l₋₁) + (1-β)b
        level = new_level
    return sse, level, slope


def _holt_winters(
    ys: list[float], m: int, alpha: float, beta: float, gamma: float
) -> tuple[float, float, float, list[float]]:
    """Additive Holt-Winters; returns (SSE, level, trend, seasonal of the next m)."""
    first = sum(ys[:m]) / m
    second = sum(ys[m : 2 * m]) / m
    level = first
    slope = (second - first) / m
    season = [y - first for y in ys[:m]]
    sse = 0.0
    for i in range(m, len(ys)):
        y = ys[i]
        s = season[i % m]
        predicted = level + slope + s
        err = y - predicted
        sse += err * err
        new_level = level + slope + alpha * err
        slope += alpha * beta * err
        season[i % m] = s + gamma * (1 - alpha) * err
        level = new_level
    n = len(ys)
    return sse, level, slope, [season[(n + k) % m] for k in range(m)]


def forecast(
    samples: Iterable[Sample],
    horizon: float,
    *,
    step: float | None = None,
    season: float | None = None,
    end: float | None = None,
    z: float = Z_95,
) -> Forecast | None:
    """Forecast the next ``horizon`` seconds from the reads (up to ``end``).

    ``step``: grid of the fit (default: the median gap between reads, at least
    the span over :data:`MAX_SLOTS`; never below :data:`MIN_STEP`). ``season`` (seconds): seasonal (Holt-Winters)
    when the data covers two seasons of at least two slots each, Holt otherwise.
    None with too few reads (fewer than :data:`MIN_POINTS` slots).
    """
    points: list[Point] = numeric(samples)
    if end is not None:
        points = [p for p in points if p[0] <= end]
    if len(points) < 2 or horizon <= 0:
        return None
    first, last = points[0][0], points[-1][0]
    span = last - first
    if span <= 0:
        return None
    if step is None:
        step = max(median_spacing(points), span / MAX_SLOTS)
    step = max(step, MIN_STEP)
    slots = int(span // step) + 1
    if slots > 4 * MAX_SLOTS:  # an explicit step over a long span: keep the end
        first = last - (4 * MAX_SLOTS - 1) * step
        slots = 4 * MAX_SLOTS
    ys = resample(points, last - (slots - 1) * step, step, slots)
    if len(ys) < MIN_POINTS:
        return None
    m = round(season / step) if season else 0
    seasonal = bool(season) and m >= 2 and len(ys) >= 2 * m + 1
    best: tuple[float, float, float, float | None] | None = None
    if seasonal:
        for a in _ALPHAS:
            for b in _BETAS:
                for g in _GAMMAS:
                    sse = _holt_winters(ys, m, a, b, g)[0]
                    if best is None or sse < best[0]:
                        best = (sse, a, b, g)
    else:
        for a in _ALPHAS:
            for b in _BETAS:
                sse = _holt(ys, a, b)[0]
                if best is None or sse < best[0]:
                    best = (sse, a, b, None)
    assert best is not None
    sse, alpha, beta, gamma = best
    fitted = len(ys) - (m if seasonal else 1)
    sigma = math.sqrt(sse / max(1, fitted))
    season_next: list[float] = []
    if seasonal and gamma is not None:
        _, level, slope, season_next = _holt_winters(ys, m, alpha, beta, gamma)
    else:
        _, level, slope = _holt(ys, alpha, beta)
    steps = max(1, math.ceil(horizon / step))
    out = []
    variance = 0.0
    for h in range(1, steps + 1):
        # ETS(A,A,N): Var(h) = σ²(1 + Σ_{j<h} (α(1 + jβ))²)
        if h > 1:
            variance += (alpha * (1 + (h - 1) * beta)) ** 2
        value = level + h * slope + (season_next[(h - 1) % m] if season_next else 0.0)
        half = z * sigma * math.sqrt(1 + variance)
        out.append(ForecastPoint(last + h * step, value, value - half, value + half))
    return Forecast(
        made_at=last,
        horizon=horizon,
        step_seconds=step,
        method="holt_winters" if season_next else "holt",
        season=season if season_next else None,
        alpha=alpha,
        beta=beta,
        gamma=gamma if season_next else None,
        sigma=sigma,
        points=tuple(out),
    )


def daily_pattern(points: list[Point], *, step: float = HOUR) -> bool:
    """Whether a daily pattern is established: two days of data, day-lag autocorrelation ≥ 0.5."""
    if not points or points[-1][0] - points[0][0] < 2 * DAY:
        return False
    check_span(points[0][0], points[-1][0], "daily pattern")
    slots = int((points[-1][0] - points[0][0]) // step) + 1
    ys = resample(points, points[-1][0] - (slots - 1) * step, step, slots)
    lag = round(DAY / step)
    if len(ys) <= lag + 2:
        return False
    mean = sum(ys) / len(ys)
    var = sum((y - mean) ** 2 for y in ys)
    if var <= 0:
        return False
    cov = sum((ys[i] - mean) * (ys[i - lag] - mean) for i in range(lag, len(ys)))
    return cov / var * len(ys) / (len(ys) - lag) >= 0.5


# -- forecast error tracking ---------------------------------------------------

ERRORS_KEPT = 64


@dataclass(frozen=True, slots=True)
class ForecastAccuracy:
    """How a register's forecasts compared with what was then read."""

    horizon: float
    evaluated: int  # forecasts scored so far (since start or import)
    mae: float | None  # mean absolute error of the last ``ERRORS_KEPT``
    rmse: float | None
    bias: float | None  # mean of (read - forecast): > 0, forecasts were too low
    coverage: float | None  # share of reads inside the forecast interval
    last_error: float | None
    last_at: float | None  # wall time of the last scored forecast's target

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe figures."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 6)

        return {
            "horizon": self.horizon,
            "evaluated": self.evaluated,
            "mae": r(self.mae),
            "rmse": r(self.rmse),
            "bias": r(self.bias),
            "coverage": r(self.coverage),
            "last_error": r(self.last_error),
            "last_at": self.last_at,
        }


class _Track:
    __slots__ = ("errors", "evaluated", "inside", "last_at", "pending", "prev")

    def __init__(self) -> None:
        self.pending: deque[ForecastPoint] = deque(maxlen=8)
        self.errors: deque[float] = deque(maxlen=ERRORS_KEPT)
        self.inside: deque[bool] = deque(maxlen=ERRORS_KEPT)
        self.evaluated = 0
        self.last_at: float | None = None
        self.prev: Point | None = None  # the last read seen


class ForecastTracker:
    """Scores each register's forecasts against the reads that follow them."""

    def __init__(self, horizon: float) -> None:
        """Track forecasts made ``horizon`` seconds ahead."""
        self.horizon = horizon
        self._tracks: dict[str, _Track] = {}

    def expect(self, uid: str, point: ForecastPoint) -> None:
        """Remember a forecast of ``uid`` for ``point.at``."""
        self._tracks.setdefault(uid, _Track()).pending.append(point)

    def pending(self, uid: str) -> int:
        """Forecasts of ``uid`` not scored yet."""
        track = self._tracks.get(uid)
        return 0 if track is None else len(track.pending)

    def observe(self, uid: str, at: float, value: float) -> list[float]:
        """Take a read; scores the forecasts whose time it passed; returns their errors.

        The value in force at a forecast's time is the read before it (held), or this
        read when it is closer to that time.
        """
        track = self._tracks.setdefault(uid, _Track())
        scored = []
        while track.pending and track.pending[0].at <= at:
            point = track.pending.popleft()
            actual = value
            if track.prev is not None and point.at - track.prev[0] < at - point.at:
                actual = track.prev[1]
            error = actual - point.value
            track.errors.append(error)
            track.inside.append(point.low <= actual <= point.high)
            track.evaluated += 1
            track.last_at = point.at
            scored.append(error)
        track.prev = (at, value)
        return scored

    def accuracy(self, uid: str) -> ForecastAccuracy | None:
        """Accuracy of ``uid``'s forecasts (None before the first is scored)."""
        track = self._tracks.get(uid)
        if track is None or not track.errors:
            return None
        errors = list(track.errors)
        n = len(errors)
        return ForecastAccuracy(
            horizon=self.horizon,
            evaluated=track.evaluated,
            mae=sum(abs(e) for e in errors) / n,
            rmse=math.sqrt(sum(e * e for e in errors) / n),
            bias=sum(errors) / n,
            coverage=sum(track.inside) / len(track.inside),
            last_error=errors[-1],
            last_at=track.last_at,
        )

    def export_state(self) -> dict[str, list[Any]]:
        """Compact state: per register ``[evaluated, last_at, errors, inside]``."""
        return {
            uid: [
                t.evaluated,
                t.last_at,
                [round(e, 6) for e in list(t.errors)[-16:]],
                [int(i) for i in list(t.inside)[-16:]],
            ]
            for uid, t in self._tracks.items()
            if t.errors
        }

    def import_state(self, data: object) -> None:
        """Restore what :meth:`export_state` wrote (bad rows are skipped)."""
        if not isinstance(data, dict):
            return
        for uid, row in data.items():
            try:
                evaluated, last_at, errors, inside = row
                track = _Track()
                track.evaluated = int(evaluated)
                track.last_at = None if last_at is None else float(last_at)
                track.errors.extend(float(e) for e in errors)
                track.inside.extend(bool(i) for i in inside)
            except (TypeError, ValueError):
                continue
            if len(track.errors) == len(track.inside):
                self._tracks[str(uid)] = track
