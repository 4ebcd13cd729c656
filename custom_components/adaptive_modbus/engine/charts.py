"""Charts of a connection's history as PNG pictures (matplotlib, Agg backend).

Two halves, both HA-free:

- **data** (pure, no matplotlib): local hour and day buckets in any time zone
  (:func:`local_hours`, :func:`local_days`; a DST day has 23 or 25 hours and its
  buckets say so), the UTC hourly aggregates of :class:`~.history.History` spread
  over them (:func:`rebucket`), and one frozen dataclass per chart
  (:func:`hourly_data`, :func:`daily_data`, :func:`cumulative_data`,
  :func:`intervals_data`) whose :attr:`ChartData.key` hashes everything the
  picture is drawn from, so a caller renders again only when that changes;
- **rendering** (:func:`render`): matplotlib's object API on an Agg canvas, no
  pyplot and no global state, so it may run in any worker thread. matplotlib is
  imported only there: the engine works without it.

Data stays in UTC (wall seconds since the epoch); only the buckets, ticks and
labels are local. Pictures are 960 px wide at 150 dpi: at a card's ~500 px the
text is still about 10 px high. The default ``neutral`` theme has a transparent
background and mid-grey text that reads on light and dark dashboards alike.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
import hashlib
import io
import math
from typing import TYPE_CHECKING, Any

from .history import HOUR, History, HourStats, IntervalEvent
from .palette import DEFAULT_PALETTE, Palette
from .spans import check_span
from .stats import EngineSnapshot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DAY = 24 * HOUR
DPI = 150
WIDTH_INCHES = 6.4  # 960 px at DPI
HEIGHT_INCHES = 3.6  # 540 px
HOURLY_SPAN = 48  # hours
DAILY_SPAN = 30  # days
INTERVALS_WINDOW = 6 * HOUR
MIN_WINDOW = 10 * 60.0  # the intervals chart's window on a young connection
MAX_ROWS = 40  # registers in one intervals chart (the busiest)
CHARTS = ("hourly", "daily", "cumulative", "intervals")


@dataclass(frozen=True, slots=True)
class Theme:
    """Colours of a chart; ``background`` None is transparent."""

    background: str | None
    text: str
    grid: str
    adaptive: str
    fixed: str
    saving: str


THEMES: dict[str, Theme] = {
    # mid-grey text on a transparent background: readable on light and dark cards
    "neutral": Theme(None, "#808080", "#80808040", "#1f77b4", "#9a9a9a", "#2ca02c"),
    "light": Theme("#ffffff", "#212121", "#00000020", "#1f77b4", "#9e9e9e", "#2e7d32"),
    "dark": Theme("#1c1c1c", "#e1e1e1", "#ffffff25", "#4fa3e0", "#8a8a8a", "#66bb6a"),
}


# -- buckets ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """A local hour or day: ``start`` .. ``end`` in UTC wall seconds."""

    start: float
    end: float
    local: datetime  # local start (tz-aware; its fold tells the two 02:00 of fall-back)

    @property
    def hours(self) -> float:
        """Length in hours (23 or 25 for a day on which DST changes)."""
        return (self.end - self.start) / HOUR


def _local(t: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(t, tz)


def _hour_start(t: float, tz: tzinfo) -> float:
    local = _local(t, tz)
    return t - (local.minute * 60 + local.second + local.microsecond / 1e6)


def local_hours(start: float, end: float, tz: tzinfo) -> list[Bucket]:
    """Local clock hours overlapping ``start .. end`` (the first may begin earlier).

    On a spring-forward day the hour that does not exist is not there (23 buckets
    from midnight to midnight), on a fall-back day the repeated hour is there twice
    (25); zones with half-hour offsets get their own hour boundaries. A span over
    :data:`~.spans.MAX_SPAN` raises :class:`~.spans.SpanError`.
    """
    check_span(start, end, "local hour buckets")
    buckets: list[Bucket] = []
    t = _hour_start(start, tz)
    while t < end:
        nxt = _hour_start(t + HOUR, tz)
        if nxt <= t:  # cannot happen with real zones; never loop
            nxt = t + HOUR
        buckets.append(Bucket(t, nxt, _local(t, tz)))
        t = nxt
    return buckets


def _midnight(day: datetime, tz: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def local_days(start: float, end: float, tz: tzinfo) -> list[Bucket]:
    """Local days (midnight to midnight) overlapping ``start .. end``.

    A span over :data:`~.spans.MAX_SPAN` raises :class:`~.spans.SpanError`.
    """
    check_span(start, end, "local day buckets")
    buckets: list[Bucket] = []
    day = _local(start, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    t = _midnight(day, tz)
    while t < end:
        day += timedelta(days=1)
        nxt = _midnight(day, tz)
        buckets.append(Bucket(t, nxt, _local(t, tz)))
        t = nxt
    return buckets


@dataclass(frozen=True, slots=True)
class Totals:
    """The aggregates of one bucket (hour rows spread by overlap)."""

    start: float
    end: float
    label: str
    requests: float = 0.0
    fixed_requests: float = 0.0
    bus_time: float = 0.0
    fixed_bus_time: float = 0.0
    seconds: float = 0.0  # seconds of the bucket the engine was polling

    @property
    def hours(self) -> float:
        """Length of the bucket in hours."""
        return (self.end - self.start) / HOUR

    @property
    def saving(self) -> float | None:
        """Requests saved against fixed polling, percent (None: no baseline)."""
        if self.fixed_requests <= 0:
            return None
        return 100.0 * (1.0 - self.requests / self.fixed_requests)


def rebucket(
    hours: Sequence[HourStats], buckets: Sequence[Bucket], fmt: str = "%H:%M"
) -> list[Totals]:
    """Spread UTC hour rows over ``buckets`` in proportion to their overlap.

    With whole-hour offsets every UTC hour falls in one local hour; a half-hour
    zone splits it evenly, a day takes its 23, 24 or 25 hours whole.
    """
    out: list[Totals] = []
    rows = sorted(hours, key=lambda h: h.start)
    i = 0
    for bucket in buckets:
        while i < len(rows) and rows[i].start + HOUR <= bucket.start:
            i += 1
        sums = [0.0] * 5
        j = i
        while j < len(rows) and rows[j].start < bucket.end:
            row = rows[j]
            overlap = min(row.start + HOUR, bucket.end) - max(row.start, bucket.start)
            share = max(0.0, overlap) / HOUR
            for k, value in enumerate(
                (
                    row.requests,
                    row.fixed_requests,
                    row.bus_time,
                    row.fixed_bus_time,
                    row.seconds,
                )
            ):
                sums[k] += share * value
            j += 1
        out.append(
            Totals(
                bucket.start,
                bucket.end,
                bucket.local.strftime(fmt),
                *(round(s, 6) for s in sums),
            )
        )
    return out


# -- chart data -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything one picture is drawn from; equal data, equal picture."""

    kind: str
    title: str
    tz: str  # time zone name, for the subtitle

    @property
    def key(self) -> str:
        """Hash of the inputs (the cache key of the rendered picture)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HourlyData(ChartData):
    """Requests and bus time per local hour, adaptive and fixed polling."""

    buckets: tuple[Totals, ...] = ()
    midnights: tuple[tuple[float, str], ...] = ()  # (UTC time, local date label)


@dataclass(frozen=True, slots=True)
class DailyData(ChartData):
    """Requests per local day, adaptive and fixed, with the saving."""

    buckets: tuple[Totals, ...] = ()


@dataclass(frozen=True, slots=True)
class CumulativeData(ChartData):
    """Requests saved against fixed polling, summed from the first hour on."""

    points: tuple[tuple[float, float], ...] = ()  # (hour end, saved so far)
    requests: float = 0.0
    fixed_requests: float = 0.0
    bus_saved: float = 0.0  # seconds
    since: str = ""  # local date of the first hour
    ticks: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Segment:
    """A register kept ``interval`` from ``start`` to ``end`` (UTC wall seconds)."""

    start: float
    end: float
    interval: float


@dataclass(frozen=True, slots=True)
class IntervalRow:
    """One register's interval timeline."""

    label: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class IntervalsData(ChartData):
    """Per register, its interval over the window, coloured by class."""

    start: float = 0.0
    end: float = 0.0
    rows: tuple[IntervalRow, ...] = ()
    hidden: int = 0  # registers left out (the chart shows the busiest MAX_ROWS)
    palette: Palette = field(default=DEFAULT_PALETTE)
    ticks: tuple[tuple[float, str], ...] = ()


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def _hour_end(now: float) -> float:
    return math.floor(now / HOUR) * HOUR + HOUR


def hourly_data(
    hours: Sequence[HourStats],
    now: float,
    tz: tzinfo,
    *,
    span: int = HOURLY_SPAN,
    title: str = "Requests and bus time per hour",
) -> HourlyData:
    """Last ``span`` local hours up to the one containing ``now``."""
    end = _hour_end(now)
    buckets = local_hours(end - span * HOUR, end, tz)[-span:]
    midnights = tuple(
        (b.start, b.local.strftime("%a %d %b"))
        for b in buckets
        if b.local.hour == 0 and b.local.minute == 0
    )
    return HourlyData(
        kind="hourly",
        title=title,
        tz=_zone_name(tz),
        buckets=tuple(rebucket(hours, buckets)),
        midnights=midnights,
    )


def daily_data(
    hours: Sequence[HourStats],
    now: float,
    tz: tzinfo,
    *,
    span: int = DAILY_SPAN,
    title: str = "Requests per day",
) -> DailyData:
    """Last ``span`` local days up to today (days before the first data left out)."""
    days = local_days(now - span * DAY, now, tz)[-span:]
    first = min((h.start for h in hours), default=now)
    days = [d for d in days if d.end > first]
    return DailyData(
        kind="daily",
        title=title,
        tz=_zone_name(tz),
        buckets=tuple(rebucket(hours, days, "%d %b")),
    )


def cumulative_data(
    hours: Sequence[HourStats],
    tz: tzinfo,
    *,
    title: str = "Requests saved since install",
) -> CumulativeData:
    """Sum the requests saved (fixed minus adaptive) over every hour given."""
    rows = sorted(hours, key=lambda h: h.start)
    saved = 0.0
    points: list[tuple[float, float]] = [(rows[0].start, 0.0)] if rows else []
    for row in rows:
        saved += row.fixed_requests - row.requests
        points.append((row.start + HOUR, round(saved, 3)))
    return CumulativeData(
        kind="cumulative",
        title=title,
        tz=_zone_name(tz),
        points=tuple(points),
        requests=float(sum(r.requests for r in rows)),
        fixed_requests=round(sum(r.fixed_requests for r in rows), 3),
        bus_saved=round(sum(r.fixed_bus_time - r.bus_time for r in rows), 3),
        since=_local(rows[0].start, tz).strftime("%d %b %Y") if rows else "",
        ticks=time_ticks(rows[0].start, points[-1][0], tz) if rows else (),
    )


class ClassTimeline:
    """Per register, the times its interval moved to another class (bounded).

    :class:`~.history.History` keeps the last 64 interval changes per register,
    under an hour of a busy register's life; a timeline coloured by class needs
    only the class steps, which are rarer, over the chart's window. Fed with the
    engine's interval changes after every cycle (:meth:`take`, from the
    snapshot's recent changes, like the history), seeded from the history's kept
    changes at start (:meth:`seed`). A register keeps at most ``max_points``
    steps (16 bytes each) and nothing older than ``keep`` seconds but the step in
    force at the window's start.
    """

    def __init__(
        self,
        palette: Palette = DEFAULT_PALETTE,
        *,
        keep: float = INTERVALS_WINDOW + 2 * HOUR,
        max_points: int = 256,
    ) -> None:
        """Keep ``keep`` seconds of class steps, at most ``max_points`` a register."""
        self.palette = palette
        self.keep = keep
        self.max_points = max_points
        self._steps: dict[str, array[float]] = {}  # at, interval, at, interval, ...
        self._seen: int | None = None  # Totals.interval_changes already taken

    def __len__(self) -> int:
        """Return the number of steps kept over all registers."""
        return sum(len(s) // 2 for s in self._steps.values())

    def _add(self, uid: str, at: float, interval: float) -> bool:
        steps = self._steps.get(uid)
        if steps is None:
            steps = self._steps[uid] = array("d")
        if steps and at < steps[-2]:
            return False  # older than what is kept: the seed came too late
        if steps and self.palette.classify(steps[-1]) == self.palette.classify(
            interval
        ):
            return False
        steps.extend((at, interval))
        drop = 0
        while 2 * drop + 2 < len(steps) and steps[2 * drop + 2] <= at - self.keep:
            drop += 1
        drop = max(drop, len(steps) // 2 - self.max_points)
        if drop:
            del steps[: 2 * drop]
        return True

    def seed(self, uid: str, changes: Sequence[IntervalEvent]) -> None:
        """Start a register's steps from its kept interval changes (oldest first)."""
        for change in sorted(changes, key=lambda c: c.at):
            if change.new > 0:
                self._add(uid, change.at, change.new)

    def observe(self, at: float, intervals: Mapping[str, float]) -> int:
        """Take every register's interval at ``at``; returns the steps added."""
        return sum(
            self._add(uid, at, interval)
            for uid, interval in intervals.items()
            if interval > 0
        )

    def take(self, snapshot: EngineSnapshot) -> int:
        """Take the interval changes since the last call; returns the steps added.

        The first call also starts every register without steps at its current
        interval. Changes are read from the snapshot's recent ones (the last 200 of
        the connection): call it at least that often.
        """
        total = snapshot.totals.interval_changes
        new = total - (self._seen or 0)
        if self._seen is None or new < 0:  # first look, or the engine restarted
            new = total
        first = self._seen is None
        self._seen = total
        added = 0
        recent = snapshot.recent_interval_changes
        for change in recent[len(recent) - min(new, len(recent)) :] if new > 0 else ():
            if change.interval > 0:
                added += self._add(
                    change.uid, snapshot.to_wall(change.at), change.interval
                )
        if first:
            now = snapshot.to_wall(snapshot.at)
            added += self.observe(
                now,
                {
                    uid: reg.effective_interval
                    for uid, reg in snapshot.registers.items()
                    if uid not in self._steps
                },
            )
        return added

    def steps(self, uid: str) -> list[tuple[float, float]]:
        """Return a register's steps ``(at, interval)``, oldest first."""
        steps = self._steps.get(uid, array("d"))
        return [(steps[i], steps[i + 1]) for i in range(0, len(steps), 2)]

    def drop_except(self, uids: Sequence[str]) -> None:
        """Forget registers the connection no longer has."""
        for uid in set(self._steps) - set(uids):
            del self._steps[uid]


def history_summary(
    history: History, timeline: ClassTimeline | None = None
) -> dict[str, Any]:
    """Compact summary of what the charts are drawn from (for diagnostics)."""
    hours = history.hours()
    changes = {uid: len(ring) for uid, ring in sorted(history.changes.items())}
    summary: dict[str, Any] = {
        "hours_kept": len(hours),
        "first_hour": hours[0].start if hours else None,
        "last_hour": hours[-1].start if hours else None,
        "requests": sum(h.requests for h in hours),
        "fixed_requests": round(sum(h.fixed_requests for h in hours), 1),
        "interval_changes_per_register": changes,
        "reads_kept": sum(len(ring) for ring in history.reads.values()),
    }
    if timeline is not None:
        summary["class_steps_kept"] = len(timeline)
    return summary


def _segments(
    steps: Sequence[tuple[float, float]], start: float, end: float
) -> tuple[Segment, ...]:
    """Clip a register's steps to ``start .. end`` (before the first: unknown)."""
    ordered = sorted(steps)
    out: list[Segment] = []
    for i, (at, interval) in enumerate(ordered):
        upto = ordered[i + 1][0] if i + 1 < len(ordered) else end
        a, b = max(at, start), min(upto, end)
        if b > a and interval > 0:
            out.append(Segment(round(a, 1), round(b, 1), round(interval, 1)))
    return tuple(out)


def time_ticks(
    start: float, end: float, tz: tzinfo, most: int = 7
) -> tuple[tuple[float, str], ...]:
    """Tick positions and labels for ``start .. end``: local midnights or hours."""
    if end - start > 36 * HOUR:
        days = [d for d in local_days(start, end, tz) if start <= d.start <= end]
        step = max(1, math.ceil(len(days) / most))
        return tuple((d.start, d.local.strftime("%d %b")) for d in days[::step])
    if end - start <= 3 * HOUR:  # minutes: 5, 10, 15 or 30 apart
        minutes = next(m for m in (5, 10, 15, 30) if (end - start) / 60 / m <= most)
        first = math.ceil(start / (60 * minutes)) * 60 * minutes
        return tuple(
            (t, _local(t, tz).strftime("%H:%M"))
            for t in (first + i * 60 * minutes for i in range(most + 1))
            if t <= end
        )
    hours = [h for h in local_hours(start, end, tz) if start <= h.start <= end]
    step = next((s for s in (1, 2, 3, 4, 6, 12) if len(hours) / s <= most), 24)
    return tuple(
        (h.start, h.local.strftime("%H:%M"))
        for h in hours
        if h.local.minute == 0 and h.local.hour % step == 0
    )


def intervals_data(
    steps: Mapping[str, Sequence[tuple[float, float]]],
    labels: Mapping[str, str],
    now: float,
    tz: tzinfo,
    *,
    window: float = INTERVALS_WINDOW,
    palette: Palette = DEFAULT_PALETTE,
    max_rows: int = MAX_ROWS,
    title: str = "Register intervals",
) -> IntervalsData:
    """Each register's interval class over the last ``window`` seconds.

    ``steps``: per register its ``(at, interval)`` class steps
    (:meth:`ClassTimeline.steps`); ``labels``: the registers to show
    (uid -> label, in display order). Past the most ``max_rows`` registers, the
    ones with the most steps in the window are shown.
    """
    earliest = min((steps[uid][0][0] for uid in labels if steps.get(uid)), default=now)
    # a young connection: the window shrinks to its data (at least MIN_WINDOW)
    start, end = now - max(MIN_WINDOW, min(window, now - earliest)), now
    rows: list[tuple[int, IntervalRow]] = []
    for uid, label in labels.items():
        reg_steps = steps.get(uid, ())
        busy = sum(1 for at, _ in reg_steps if at >= start)
        rows.append((busy, IntervalRow(label, _segments(reg_steps, start, end))))
    shown = rows
    if len(rows) > max_rows:
        keep = sorted(range(len(rows)), key=lambda i: -rows[i][0])[:max_rows]
        shown = [rows[i] for i in sorted(keep)]
    return IntervalsData(
        kind="intervals",
        title=title,
        tz=_zone_name(tz),
        start=round(start, 1),
        end=round(end, 1),
        rows=tuple(row for _, row in shown),
        hidden=len(rows) - len(shown),
        palette=palette,
        ticks=time_ticks(start, end, tz),
    )


# -- rendering ----------------------------------------------------------------------


def _figure(theme: Theme, height: float = HEIGHT_INCHES) -> Figure:
    from matplotlib.figure import Figure  # noqa: PLC0415 - optional, heavy: lazily

    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    fig.patch.set_facecolor(theme.background or "none")
    fig.patch.set_alpha(0.0 if theme.background is None else 1.0)
    return fig


def _style(ax: Axes, theme: Theme) -> None:
    ax.set_facecolor("none" if theme.background is None else theme.background)
    for spine in ax.spines.values():
        spine.set_color(theme.grid)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(colors=theme.text, labelsize=7.5, length=2.5)
    ax.yaxis.label.set_color(theme.text)
    ax.yaxis.label.set_fontsize(8)
    ax.grid(axis="y", color=theme.grid, linewidth=0.6)
    ax.set_axisbelow(True)


def _title(fig: Figure, ax: Axes, theme: Theme, title: str, subtitle: str) -> None:
    fig.suptitle(title, color=theme.text, fontsize=10.5, fontweight="bold")
    ax.set_title(subtitle, color=theme.text, fontsize=7.5)


def _human(value: float) -> str:
    for limit, suffix in ((1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _duration(seconds: float) -> str:
    if seconds >= 2 * HOUR:
        return f"{seconds / HOUR:,.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415 - optional, lazily

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _legend(ax: Axes, theme: Theme, **kwargs: Any) -> None:
    legend = ax.legend(
        fontsize=7, frameon=False, labelcolor=theme.text, ncols=2, **kwargs
    )
    legend.set_zorder(5)


def _saving_text(requests: float, fixed: float) -> str:
    if fixed <= 0:
        return "no fixed-polling baseline yet"
    return (
        f"adaptive {_human(requests)} vs fixed {_human(fixed)} requests: "
        f"{100 * (1 - requests / fixed):.0f} % fewer"
    )


def _draw_hourly(data: HourlyData, theme: Theme) -> Figure:
    fig = _figure(theme)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.4, 1))
    x = [b.start / HOUR for b in data.buckets]
    widths = [0.8 * b.hours for b in data.buckets]
    ends = [b.end / HOUR for b in data.buckets]
    for ax, attr, fixed_attr, unit in (
        (top, "requests", "fixed_requests", "requests / h"),
        (bottom, "bus_time", "fixed_bus_time", "bus time s / h"),
    ):
        _style(ax, theme)
        values = [getattr(b, attr) for b in data.buckets]
        # an hour nothing was polled (HA stopped, not installed yet) has no baseline
        fixed = [
            getattr(b, fixed_attr) if b.seconds > 0 or b.requests else math.nan
            for b in data.buckets
        ]
        ax.bar(x, values, widths, align="edge", color=theme.adaptive, label="adaptive")
        ax.stairs(
            fixed,
            [*x[:1], *ends] if x else [0.0],
            baseline=None,
            color=theme.fixed,
            linewidth=1.2,
            linestyle="--",
            label="fixed per-entity polling",
        )
        ax.set_ylabel(unit)
        top_value = max([*values, *(f for f in fixed if not math.isnan(f)), 1e-9])
        ax.set_ylim(0, 1.3 * top_value)  # room for the legend
    _legend(top, theme, loc="upper left")
    for at, _label in data.midnights:
        for ax in (top, bottom):
            ax.axvline(at / HOUR, color=theme.text, linewidth=0.6, alpha=0.5)
    bottom.set_xticks(
        [b.start / HOUR for b in data.buckets if b.label.endswith(("00:00", "12:00"))]
    )
    bottom.set_xticklabels(
        [
            next((m for t, m in data.midnights if t == b.start), b.label)
            for b in data.buckets
            if b.label.endswith(("00:00", "12:00"))
        ]
    )
    if x:
        bottom.set_xlim(x[0], ends[-1])
    requests = sum(b.requests for b in data.buckets)
    fixed_total = sum(b.fixed_requests for b in data.buckets)
    _title(
        fig,
        top,
        theme,
        data.title,
        f"last {len(data.buckets)} h ({data.tz}): "
        + _saving_text(requests, fixed_total),
    )
    return fig


def _draw_daily(data: DailyData, theme: Theme) -> Figure:
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415 - optional, lazily

    fig = _figure(theme)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1.6, 1))
    x = [b.start / HOUR for b in data.buckets]
    widths = [0.8 * b.hours for b in data.buckets]
    _style(top, theme)
    _style(bottom, theme)
    top.bar(
        x,
        [b.fixed_requests for b in data.buckets],
        widths,
        align="edge",
        color="none",
        edgecolor=theme.fixed,
        hatch="///",
        linewidth=0.8,
        label="fixed per-entity polling",
    )
    top.bar(
        x,
        [b.requests for b in data.buckets],
        widths,
        align="edge",
        color=theme.adaptive,
        label="adaptive",
    )
    top.set_ylabel("requests / day")
    top.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _human(v)))
    _legend(top, theme, loc="upper left")
    top.set_ylim(0, 1.25 * max([b.fixed_requests for b in data.buckets] or [1]) or 1)
    savings = [b.saving if b.saving is not None else 0.0 for b in data.buckets]
    bottom.bar(x, savings, widths, align="edge", color=theme.saving)
    bottom.set_ylabel("saving %")
    bottom.set_ylim(min(0.0, *savings) if savings else 0.0, 100)
    for b in data.buckets:  # a DST day is drawn 23 or 25 h wide and says so
        if abs(b.hours - 24) > 0.01:
            top.annotate(
                f"{b.hours:.0f} h",
                (b.start / HOUR + 0.4 * b.hours, b.fixed_requests),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=6.5,
                color=theme.text,
            )
    step = max(1, math.ceil(len(data.buckets) / 8))
    shown = data.buckets[::-1][::step][::-1]
    bottom.set_xticks([b.start / HOUR + 0.4 * b.hours for b in shown])
    bottom.set_xticklabels([b.label for b in shown])
    if x:
        bottom.set_xlim(x[0] - 2, data.buckets[-1].end / HOUR + 2)
    requests = sum(b.requests for b in data.buckets)
    fixed_total = sum(b.fixed_requests for b in data.buckets)
    _title(
        fig,
        top,
        theme,
        data.title,
        f"last {len(data.buckets)} days ({data.tz}): "
        + _saving_text(requests, fixed_total),
    )
    return fig


def _draw_cumulative(data: CumulativeData, theme: Theme) -> Figure:
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415 - optional, lazily

    fig = _figure(theme)
    ax = fig.subplots()
    _style(ax, theme)
    x = [t / HOUR for t, _ in data.points]
    y = [v for _, v in data.points]
    ax.fill_between(x, y, color=theme.saving, alpha=0.35, linewidth=0)
    ax.plot(x, y, color=theme.saving, linewidth=1.6, label="requests saved")
    ax.set_ylabel("requests saved")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _human(v)))
    ax.set_xticks([t / HOUR for t, _ in data.ticks])
    ax.set_xticklabels([label for _, label in data.ticks])
    if x:
        ax.set_xlim(x[0], x[-1])
        ax.annotate(
            _human(y[-1]),
            (x[-1], y[-1]),
            xytext=(-4, 4),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color=theme.text,
            fontweight="bold",
        )
    subtitle = f"since {data.since}: " + _saving_text(
        data.requests, data.fixed_requests
    )
    if data.bus_saved > 0:
        subtitle += f", {_duration(data.bus_saved)} of bus time saved"
    _title(fig, ax, theme, data.title, subtitle)
    return fig


def _class_label(palette: Palette, index: int) -> str:
    cls = palette.classes[index]
    if math.isinf(cls.upper):
        previous = palette.classes[index - 1].upper if index else 0
        return f"{cls.name} > {previous:g} s"
    return f"{cls.name} ≤ {cls.upper:g} s"


def _draw_intervals(data: IntervalsData, theme: Theme) -> Figure:
    from matplotlib.patches import Patch  # noqa: PLC0415 - optional, lazily

    rows = len(data.rows)
    fig = _figure(theme, height=1.45 + 0.16 * max(rows, 3))
    ax = fig.subplots()
    _style(ax, theme)
    ax.grid(False)
    for i, row in enumerate(data.rows):  # one collection a row: fast at any length
        if row.segments:
            ax.broken_barh(
                [(s.start / HOUR, (s.end - s.start) / HOUR) for s in row.segments],
                (rows - 1 - i - 0.4, 0.8),
                facecolors=[
                    data.palette.classify(s.interval).colour for s in row.segments
                ],
                linewidth=0,
                antialiased=False,
            )
    ax.set_yticks(range(rows))
    ax.set_yticklabels([row.label for row in reversed(data.rows)], fontsize=6.5)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.set_xlim(data.start / HOUR, data.end / HOUR)
    ax.set_xticks([t / HOUR for t, _ in data.ticks])
    ax.set_xticklabels([label for _, label in data.ticks])
    handles = [
        Patch(color=cls.colour, label=_class_label(data.palette, i))
        for i, cls in enumerate(data.palette.classes)
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=len(handles),
        fontsize=6.5,
        frameon=False,
        labelcolor=theme.text,
        handlelength=1.0,
        columnspacing=1.0,
    )
    span = data.end - data.start
    last = f"{span / HOUR:.3g} h" if span >= HOUR else f"{span / 60:.0f} min"
    subtitle = (
        f"last {last} ({data.tz}); an incident turns rows red (shorter intervals)"
    )
    if data.hidden:
        subtitle += f"; {rows} busiest of {rows + data.hidden} registers"
    fig.suptitle(data.title, color=theme.text, fontsize=10.5, fontweight="bold")
    ax.set_xlabel(subtitle, color=theme.text, fontsize=7)
    return fig


def render(data: ChartData, theme: str = "neutral") -> bytes:
    """Draw ``data`` as a PNG (blocking, CPU-bound: call it from a worker thread)."""
    style = THEMES[theme]
    if isinstance(data, HourlyData):
        fig = _draw_hourly(data, style)
    elif isinstance(data, DailyData):
        fig = _draw_daily(data, style)
    elif isinstance(data, CumulativeData):
        fig = _draw_cumulative(data, style)
    elif isinstance(data, IntervalsData):
        fig = _draw_intervals(data, style)
    else:
        raise TypeError(f"no chart for {type(data).__name__}")
    return _png(fig)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its header (ValueError: not a PNG)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
