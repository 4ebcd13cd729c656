"""Chart data and rendering: local buckets through DST, totals, timelines, PNGs."""

from __future__ import annotations

from datetime import datetime
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from adaptive_modbus_engine import charts
from adaptive_modbus_engine.charts import (
    ClassTimeline,
    cumulative_data,
    daily_data,
    history_summary,
    hourly_data,
    intervals_data,
    local_days,
    local_hours,
    png_size,
    rebucket,
    render,
)
from adaptive_modbus_engine.history import HOUR, History, HourStats, IntervalEvent
from adaptive_modbus_engine.palette import DEFAULT_PALETTE
from adaptive_modbus_engine.simulator import signals
from tests.engine.test_views import SUPPLY, T0, Demo

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30, no DST


def _midnight(tz: ZoneInfo, y: int, m: int, d: int) -> float:
    return datetime(y, m, d, tzinfo=tz).timestamp()


# (zone, DST day, its length in hours, the local hour that is missing/repeated)
DST_DAYS = [
    pytest.param(BERLIN, (2026, 3, 29), 23, 2, id="berlin-spring-forward"),
    pytest.param(BERLIN, (2026, 10, 25), 25, 2, id="berlin-fall-back"),
    pytest.param(NEW_YORK, (2026, 3, 8), 23, 2, id="new-york-spring-forward"),
    pytest.param(NEW_YORK, (2026, 11, 1), 25, 1, id="new-york-fall-back"),
]


@pytest.mark.parametrize(("tz", "day", "length", "hour"), DST_DAYS)
def test_hour_buckets_of_a_dst_day(
    tz: ZoneInfo, day: tuple[int, int, int], length: int, hour: int
) -> None:
    """A DST day has 23 or 25 local hour buckets, each one real hour long."""
    start = _midnight(tz, *day)
    end = start + length * HOUR
    buckets = local_hours(start, end, tz)
    assert len(buckets) == length
    assert all(b.hours == 1 for b in buckets)
    assert buckets[0].start == start and buckets[-1].end == end
    local = [b.local.hour for b in buckets]
    if length == 23:  # the hour that does not exist is not there
        assert hour not in local
    else:  # the repeated hour is there twice, told apart by fold
        assert local.count(hour) == 2
        assert [b.local.fold for b in buckets if b.local.hour == hour] == [0, 1]
    # every bucket starts at a local full hour
    assert all(b.local.minute == 0 for b in buckets)


@pytest.mark.parametrize(("tz", "day", "length", "hour"), DST_DAYS)
def test_day_buckets_around_a_dst_day(
    tz: ZoneInfo, day: tuple[int, int, int], length: int, hour: int
) -> None:
    """Days run local midnight to midnight: the DST day is 23 or 25 h, its neighbours 24."""
    start = _midnight(tz, *day)
    days = local_days(start - 24 * HOUR, start + length * HOUR + 24 * HOUR, tz)
    assert [d.hours for d in days] == [24, length, 24]
    assert all((d.local.hour, d.local.minute) == (0, 0) for d in days)
    assert days[1].start == start


@pytest.mark.parametrize(("tz", "day", "length", "hour"), DST_DAYS)
def test_daily_and_hourly_totals_of_a_dst_day(
    tz: ZoneInfo, day: tuple[int, int, int], length: int, hour: int
) -> None:
    """UTC hour rows land in the local buckets: the DST day sums its 23 or 25 hours."""
    start = _midnight(tz, *day)
    rows = [
        HourStats(start=start + i * HOUR, requests=10, fixed_requests=40.0)
        for i in range(-24, length + 24)
    ]
    now = start + length * HOUR + 24 * HOUR - 1
    daily = daily_data(rows, now, tz)
    assert [(b.hours, b.requests, b.fixed_requests) for b in daily.buckets] == [
        (24, 240, 960),
        (length, 10 * length, 40 * length),
        (24, 240, 960),
    ]
    assert daily.buckets[1].saving == pytest.approx(75.0)
    hourly = hourly_data(rows, start + length * HOUR - 1, tz, span=length)
    assert [b.start for b in hourly.buckets] == [
        start + i * HOUR for i in range(length)
    ]
    assert sum(b.requests for b in hourly.buckets) == 10 * length
    labels = [b.label for b in hourly.buckets]
    assert labels.count(f"{hour:02d}:00") == (0 if length == 23 else 2)


def test_half_hour_zone_splits_utc_hours_evenly() -> None:
    """In a +05:30 zone each local hour takes half of two UTC hours; nothing is lost."""
    start = _midnight(KOLKATA, 2026, 1, 10)
    buckets = local_hours(start, start + 24 * HOUR, KOLKATA)
    assert len(buckets) == 24 and start % HOUR == 1800
    rows = [
        HourStats(start=start - 1800 + i * HOUR, requests=i, fixed_requests=2.0 * i)
        for i in range(25)
    ]
    totals = rebucket(rows, buckets)
    assert totals[0].requests == pytest.approx(0.5)  # half of hour 0 and of hour 1
    assert totals[5].requests == pytest.approx(5.5)
    inside = sum(r.requests for r in rows) - 0.5 * (
        rows[0].requests + rows[-1].requests
    )
    assert sum(t.requests for t in totals) == pytest.approx(inside)


def test_cumulative_sums_the_saving_in_order() -> None:
    """The cumulative chart adds fixed minus adaptive hour by hour, from the first hour."""
    t0 = _midnight(BERLIN, 2026, 6, 1)
    rows = [
        HourStats(
            start=t0 + i * HOUR,
            requests=5,
            fixed_requests=20.0,
            bus_time=1.0,
            fixed_bus_time=3.0,
        )
        for i in (2, 0, 1)
    ]
    data = cumulative_data(rows, BERLIN)
    assert data.points == (
        (t0, 0.0),
        (t0 + HOUR, 15.0),
        (t0 + 2 * HOUR, 30.0),
        (t0 + 3 * HOUR, 45.0),
    )
    assert (data.requests, data.fixed_requests, data.bus_saved) == (15, 60, 6)
    assert data.since == "01 Jun 2026"


def test_class_timeline_keeps_class_steps_only() -> None:
    """Steps inside one class are not kept; old steps go but the one in force stays."""
    timeline = ClassTimeline(keep=10 * HOUR)
    assert timeline.observe(0.0, {"a": 300.0, "b": 5.0}) == 2
    assert timeline.observe(10.0, {"a": 250.0, "b": 6.0}) == 0  # same classes
    assert timeline.observe(20.0, {"a": 8.0, "b": 6.0}) == 1  # a: slow -> realtime
    assert timeline.steps("a") == [(0.0, 300.0), (20.0, 8.0)]
    timeline.observe(20 * HOUR, {"a": 300.0})
    assert timeline.steps("a") == [(20.0, 8.0), (20 * HOUR, 300.0)]
    capped = ClassTimeline(max_points=3)
    for i in range(10):
        capped.observe(float(i), {"a": 5.0 if i % 2 else 300.0})
    assert capped.steps("a") == [(7.0, 5.0), (8.0, 300.0), (9.0, 5.0)]
    assert len(capped) == 3
    timeline.drop_except(["a"])
    assert timeline.steps("b") == []


def test_class_timeline_seeded_from_kept_changes() -> None:
    """Seeding from the history's kept changes gives steps before the first snapshot."""
    timeline = ClassTimeline()
    timeline.seed(
        "a",
        [
            IntervalEvent(100.0, 300.0, 10.0, "rate"),
            IntervalEvent(50.0, 20.0, 300.0, "x"),
        ],
    )
    timeline.observe(200.0, {"a": 9.0})
    assert timeline.steps("a") == [(50.0, 300.0), (100.0, 10.0)]


def test_intervals_rows_clip_to_the_window_and_leave_the_unknown_blank() -> None:
    """Segments start at the first known step and are clipped to the window."""
    now = 10 * HOUR
    steps = {
        "a": [(now - 8 * HOUR, 300.0), (now - HOUR, 5.0)],
        "b": [(now - 2 * HOUR, 60.0)],
    }
    data = intervals_data(
        steps, {"a": "A", "b": "B", "c": "C"}, now, BERLIN, window=4 * HOUR
    )
    a, b, c = data.rows
    assert [(s.start, s.end, s.interval) for s in a.segments] == [
        (now - 4 * HOUR, now - HOUR, 300.0),
        (now - HOUR, now, 5.0),
    ]
    assert [(s.start, s.interval) for s in b.segments] == [(now - 2 * HOUR, 60.0)]
    assert c.segments == ()
    busy = intervals_data(
        steps, {"a": "A", "b": "B", "c": "C"}, now, BERLIN, max_rows=1
    )
    assert [r.label for r in busy.rows] == ["A"] and busy.hidden == 2


def test_equal_inputs_equal_keys() -> None:
    """The cache key follows the data: same rows, same key; one more request, new key."""
    t0 = _midnight(BERLIN, 2026, 6, 1)
    rows = [HourStats(start=t0, requests=5, fixed_requests=20.0)]
    key = hourly_data(rows, t0 + 10, BERLIN).key
    assert hourly_data(list(rows), t0 + 20, BERLIN).key == key
    more = [HourStats(start=t0, requests=6, fixed_requests=20.0)]
    assert hourly_data(more, t0 + 10, BERLIN).key != key
    assert hourly_data(rows, t0 + 10, NEW_YORK).key != key


@pytest.mark.parametrize("theme", sorted(charts.THEMES))
def test_every_chart_renders_a_png_of_the_expected_size(theme: str) -> None:
    """Each chart is a PNG 960 px wide; the intervals chart grows with its rows."""
    t0 = _midnight(BERLIN, 2026, 3, 28)
    rows = [
        HourStats(
            start=t0 + i * HOUR,
            requests=100 + i,
            fixed_requests=400.0,
            bus_time=2.0,
            fixed_bus_time=8.0,
            seconds=3600.0,
        )
        for i in range(60)
    ]
    now = t0 + 60 * HOUR - 1
    steps = {
        f"r{i}": [(now - 5 * HOUR, 300.0), (now - HOUR, 5.0 + i)] for i in range(10)
    }
    labels = {uid: uid for uid in steps}
    sizes = {}
    for data in (
        hourly_data(rows, now, BERLIN),
        daily_data(rows, now, BERLIN),
        cumulative_data(rows, BERLIN),
        intervals_data(steps, labels, now, BERLIN),
    ):
        sizes[data.kind] = png_size(render(data, theme))
    assert sizes["hourly"] == sizes["daily"] == sizes["cumulative"] == (960, 540)
    width, height = sizes["intervals"]
    assert width == 960 and height > 300


def test_empty_data_still_renders() -> None:
    """A connection with no history yet gets a (blank) picture, not an error."""
    now = _midnight(BERLIN, 2026, 6, 1)
    for data in (
        hourly_data([], now, BERLIN),
        daily_data([], now, BERLIN),
        cumulative_data([], BERLIN),
        intervals_data({}, {}, now, BERLIN),
    ):
        assert png_size(render(data))[0] == 960


def test_png_size_refuses_what_is_not_a_png() -> None:
    """png_size reads the IHDR header and refuses other bytes."""
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_importing_charts_does_not_import_matplotlib() -> None:
    """Matplotlib is imported at render time only: the engine works without it."""
    code = (
        "import sys, adaptive_modbus_engine.charts\n"
        "print('matplotlib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


async def test_class_timeline_follows_the_engine_through_the_incident() -> None:
    """Fed from snapshots like the integration does, the incident shows as a class step.

    Each step is a change of class (steps inside a class are not kept).
    """
    demo = Demo()
    timeline = ClassTimeline()
    incident = T0 + signals.incident_start(0)
    while (due := demo.engine.next_due()) <= incident + 600:
        demo.clock.advance_to(due)
        result = await demo.engine.poll_due()
        snapshot = demo.engine.snapshot()
        demo.history.observe(result, snapshot, demo.engine.cost_model())
        timeline.take(snapshot)
    steps = timeline.steps(SUPPLY)
    assert steps[0][0] == pytest.approx(T0, abs=1)
    before = [iv for at, iv in steps if at < incident]
    during = [iv for at, iv in steps if at >= incident]
    assert DEFAULT_PALETTE.classify(before[-1]).name in {"moderate", "slow", "idle"}
    assert any(DEFAULT_PALETTE.classify(iv).name == "realtime" for iv in during)
    classes = [DEFAULT_PALETTE.classify(iv).name for _, iv in steps]
    assert all(a != b for a, b in zip(classes, classes[1:], strict=False))
    data = intervals_data(
        {SUPPLY: steps}, {SUPPLY: "supply"}, demo.clock.now(), BERLIN, window=1800
    )
    colours = {
        DEFAULT_PALETTE.classify(s.interval).colour for s in data.rows[0].segments
    }
    assert "#d62728" in colours  # the incident is drawn red


def test_history_summary_counts_what_is_kept() -> None:
    """The diagnostics summary counts hours, changes per register and reads."""
    history = History()
    history.import_state(
        {
            "version": 1,
            "hours": [[3600 * 10, 5, 9, 0.1, 0, 3, 3600.0, 20.0, 0.3]],
            "changes": {
                "1.a": [[36000, 300.0, 10.0, "rate"], [36010, 10.0, 5.0, "rate"]]
            },
        }
    )
    summary = history_summary(history, ClassTimeline())
    assert summary["hours_kept"] == 1 and summary["first_hour"] == 36000
    assert summary["interval_changes_per_register"] == {"1.a": 2}
    assert summary["requests"] == 5 and summary["class_steps_kept"] == 0


def test_intervals_window_shrinks_to_a_young_connections_data() -> None:
    """Twenty minutes of data fill the chart (not a sliver of 6 h); ten at least."""
    now = 10 * HOUR
    young = intervals_data({"a": [(now - 1200, 300.0)]}, {"a": "A"}, now, BERLIN)
    assert (young.start, young.end) == (now - 1200, now)
    assert [label for _, label in young.ticks] == [
        "10:40",
        "10:45",
        "10:50",
        "10:55",
        "11:00",
    ]
    newborn = intervals_data({"a": [(now - 60, 300.0)]}, {"a": "A"}, now, BERLIN)
    assert newborn.start == now - 600
    assert png_size(render(young))[0] == 960
