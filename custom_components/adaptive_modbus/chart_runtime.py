"""Chart pictures of one connection: what to draw, when, and the cache.

A :class:`ChartManager` per config entry holds the rendered PNG of every chart
(``hourly``, ``daily``, ``cumulative`` on the connection, ``intervals_<unit>`` per
unit device). The data of a chart is built by the engine library (``engine/charts``)
from the coordinator's history, the manager's class timeline and, for hours older
than the stored aggregates, the recorder's long-term statistics of the connection
sensors. A chart is drawn again only when the hash of its data changed, in the
executor (matplotlib is blocking and CPU-bound), one chart at a time; image entities
are told when their picture changed, so ``image_last_updated`` moves only then.

Drawn when first asked for (HA's image proxy), every hour and on demand
(``render_charts``); at start the class timeline is seeded from the stored interval
changes and missing hours are back-filled from the recorder, with progress logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.util import dt as dt_util

from .const import DOMAIN
from .engine.charts import (
    ChartData,
    ClassTimeline,
    cumulative_data,
    daily_data,
    hourly_data,
    intervals_data,
    png_size,
    render,
)
from .engine.history import HOUR, HourStats

if TYPE_CHECKING:
    from .coordinator import AdaptiveModbusConfigEntry

_LOGGER = logging.getLogger(__name__)

THEME = "neutral"  # transparent, mid-grey text: light and dark dashboards
RENDER_EVERY = timedelta(hours=1)
CONNECTION_CHARTS = ("hourly", "daily", "cumulative")
INTERVALS_PREFIX = "intervals_"
# recorder back-fill: how far back, in chunks of how many days (progress per chunk)
BACKFILL_DAYS = 366
BACKFILL_CHUNK_DAYS = 30
# connection sensors whose hourly means rebuild an hour: requests_per_minute (req/min),
# saving_vs_fixed (%), bus_utilisation (%, disabled by default: bus time unknown then)
BACKFILL_SENSORS = ("requests_per_minute", "saving_vs_fixed", "bus_utilisation")


def intervals_chart(unit_id: int) -> str:
    """Return the chart id of a unit's register intervals."""
    return f"{INTERVALS_PREFIX}{unit_id}"


@dataclass(frozen=True, slots=True)
class Picture:
    """One rendered chart."""

    key: str  # hash of the data it was drawn from
    png: bytes
    updated: datetime
    width: int
    height: int
    seconds: float  # time the render took


@dataclass(frozen=True, slots=True)
class RenderResult:
    """What one chart's render request did."""

    chart: str
    changed: bool  # drawn anew (False: the data, so the picture, was unchanged)
    picture: Picture


def hours_from_statistics(
    rows: Mapping[str, Sequence[Mapping[str, Any]]], ids: dict[str, str]
) -> list[HourStats]:
    """Rebuild hourly aggregates from the connection sensors' hourly means.

    ``ids``: sensor key -> statistic id. Requests are the mean requests per minute
    times 60; fixed polling's requests follow from the mean saving; bus time from
    the mean bus utilisation when that sensor was recorded (else 0).
    """
    by_hour: dict[float, dict[str, float]] = {}
    for key, statistic_id in ids.items():
        for row in rows.get(statistic_id, []):
            mean = row.get("mean")
            start = row.get("start")
            if mean is None or start is None:
                continue
            at = start if isinstance(start, float | int) else start.timestamp()
            by_hour.setdefault(math.floor(at / HOUR) * HOUR, {})[key] = float(mean)
    hours: list[HourStats] = []
    for start, means in sorted(by_hour.items()):
        per_minute = means.get("requests_per_minute")
        if per_minute is None or per_minute < 0:
            continue
        requests = per_minute * 60.0
        saving = means.get("saving_vs_fixed")
        fixed = (
            requests / (1 - saving / 100) if saving is not None and saving < 99 else 0
        )
        bus = max(0.0, means.get("bus_utilisation", 0.0)) / 100 * HOUR
        hours.append(
            HourStats(
                start=start,
                requests=round(requests),
                bus_time=bus,
                seconds=HOUR,
                fixed_requests=fixed,
                fixed_bus_time=bus * fixed / requests if requests > 0 else 0.0,
            )
        )
    return hours


class ChartManager:
    """Renders, caches and schedules the charts of one connection."""

    def __init__(self, hass: HomeAssistant, entry: AdaptiveModbusConfigEntry) -> None:
        """Bind to the entry's coordinator (history, clock) and hub (units)."""
        self.hass = hass
        self.entry = entry
        self.coordinator = entry.runtime_data.coordinator
        self.hub = entry.runtime_data.hub
        self.timeline = ClassTimeline()
        self.recorder_hours: list[HourStats] = []  # older than the stored aggregates
        self.pictures: dict[str, Picture] = {}
        self.renders = 0  # pictures drawn (cache misses)
        self.entity_ids: dict[str, str] = {}  # chart -> image entity id
        self._listeners: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()
        self._unsubs: list[CALLBACK_TYPE] = []

    @property
    def charts(self) -> list[str]:
        """Every chart of this connection."""
        return [
            *CONNECTION_CHARTS,
            *(intervals_chart(unit.unit_id) for unit in self.hub.units),
        ]

    # -- lifecycle ------------------------------------------------------------
    @callback
    def async_start(self) -> None:
        """Seed the timeline, follow every cycle, render hourly; back-fill in the background."""
        history = self.coordinator.history
        for uid in self.hub.definitions:
            self.timeline.seed(uid, history.interval_changes(uid))
        self._take()
        self._unsubs.append(self.coordinator.async_add_listener(self._take))
        self._unsubs.append(
            async_track_time_interval(
                self.hass, self._async_scheduled, RENDER_EVERY, cancel_on_shutdown=True
            )
        )
        # no drawing at start: a picture is drawn when first asked for (the image
        # proxy), on the hourly schedule or by render_charts
        self.entry.async_create_background_task(
            self.hass, self._async_backfill(), f"{DOMAIN} charts back-fill"
        )

    @callback
    def async_stop(self) -> None:
        """Stop following cycles and the hourly render."""
        while self._unsubs:
            self._unsubs.pop()()

    @callback
    def _take(self) -> None:
        self.timeline.take(self.coordinator.snapshot)

    async def _async_scheduled(self, _now: datetime) -> None:
        await self.async_render()

    async def _async_backfill(self) -> None:
        try:
            await self.async_backfill()
        except Exception:
            _LOGGER.exception("%s: back-filling the charts failed", self.hub.title)

    # -- listeners ------------------------------------------------------------
    @callback
    def async_add_listener(self, update: Callable[[], None]) -> CALLBACK_TYPE:
        """Call ``update`` whenever a picture changed; returns the remover."""
        self._listeners.append(update)

        @callback
        def remove() -> None:
            self._listeners.remove(update)

        return remove

    # -- data -----------------------------------------------------------------
    def hours(self) -> list[HourStats]:
        """Return the stored hourly aggregates, after recorder hours older than them."""
        stored = self.coordinator.history.hours()
        first = stored[0].start if stored else math.inf
        return [h for h in self.recorder_hours if h.start < first] + stored

    def data(self, chart: str) -> ChartData:
        """Return the data chart ``chart`` is drawn from now (in HA's time zone)."""
        tz = dt_util.get_default_time_zone()
        now = self.coordinator.clock()
        if chart == "hourly":
            return hourly_data(self.hours(), now, tz)
        if chart == "daily":
            return daily_data(self.hours(), now, tz)
        if chart == "cumulative":
            return cumulative_data(self.hours(), tz)
        unit_id = int(chart.removeprefix(INTERVALS_PREFIX))
        unit = next(u for u in self.hub.units if u.unit_id == unit_id)
        snapshot = self.coordinator.snapshot
        # the window ends at the last cycle: no new cycle, same picture
        now = snapshot.to_wall(snapshot.at)
        labels = {
            uid: definition.name or definition.key
            for uid, (uid_unit, definition) in self.hub.definitions.items()
            if uid_unit == unit_id
            and uid in snapshot.registers
            and snapshot.registers[uid].enabled
        }
        return intervals_data(
            {uid: self.timeline.steps(uid) for uid in labels},
            labels,
            now,
            tz,
            title=f"Register intervals: {unit.name}",
        )

    # -- rendering ------------------------------------------------------------
    async def async_picture(self, chart: str) -> Picture:
        """Return a chart's picture, drawing it first if there is none yet."""
        picture = self.pictures.get(chart)
        if picture is None:
            (result,) = await self.async_render([chart])
            picture = result.picture
        return picture

    async def async_render(
        self, charts: Sequence[str] | None = None
    ) -> list[RenderResult]:
        """Draw the charts whose data changed (all by default), one at a time."""
        results: list[RenderResult] = []
        changed = False
        async with self._lock:
            for chart in charts or self.charts:
                data = self.data(chart)
                old = self.pictures.get(chart)
                if old is not None and old.key == data.key:
                    results.append(RenderResult(chart, False, old))
                    continue
                began = time.perf_counter()
                png = await self.hass.async_add_executor_job(render, data, THEME)
                width, height = png_size(png)
                self.renders += 1
                picture = Picture(
                    data.key,
                    png,
                    dt_util.utcnow(),
                    width,
                    height,
                    round(time.perf_counter() - began, 3),
                )
                self.pictures[chart] = picture
                results.append(RenderResult(chart, True, picture))
                changed = True
        if changed:
            for update in list(self._listeners):
                update()
        return results

    # -- recorder back-fill ---------------------------------------------------
    def _statistic_ids(self) -> dict[str, str]:
        registry = er.async_get(self.hass)
        ids: dict[str, str] = {}
        for key in BACKFILL_SENSORS:
            entity_id = registry.async_get_entity_id(
                Platform.SENSOR, DOMAIN, f"{self.entry.entry_id}_hub_{key}"
            )
            if entity_id is not None:
                ids[key] = entity_id
        return ids

    async def async_backfill(self) -> int:
        """Load hours older than the stored aggregates from the recorder's statistics.

        Walks back from the first stored hour in chunks of ``BACKFILL_CHUNK_DAYS``
        (logging each), up to ``BACKFILL_DAYS``, and stops at the first empty chunk.
        Returns the hours loaded; 0 when the recorder is not set up.
        """
        if "recorder" not in self.hass.config.components:
            return 0
        ids = self._statistic_ids()
        if "requests_per_minute" not in ids:
            return 0
        # the recorder is optional (after_dependencies): imported only when set up
        from homeassistant.components.recorder.statistics import (  # noqa: PLC0415
            statistics_during_period,
        )
        from homeassistant.helpers.recorder import get_instance  # noqa: PLC0415

        stored = self.coordinator.history.hours()
        end = (
            stored[0].start
            if stored
            else math.floor(self.coordinator.clock() / HOUR) * HOUR
        )
        limit = end - BACKFILL_DAYS * 24 * HOUR
        loaded: list[HourStats] = []
        while end > limit:
            start = max(limit, end - BACKFILL_CHUNK_DAYS * 24 * HOUR)
            rows = await get_instance(self.hass).async_add_executor_job(
                statistics_during_period,
                self.hass,
                dt_util.utc_from_timestamp(start),
                dt_util.utc_from_timestamp(end),
                set(ids.values()),
                "hour",
                None,
                {"mean"},
            )
            chunk = hours_from_statistics(rows, ids)
            if not chunk:
                break
            loaded = chunk + loaded
            _LOGGER.info(
                "%s: charts back-filled %d hours from the recorder (%s to %s), %d so far",
                self.hub.title,
                len(chunk),
                dt_util.utc_from_timestamp(chunk[0].start).isoformat(),
                dt_util.utc_from_timestamp(chunk[-1].start + HOUR).isoformat(),
                len(loaded),
            )
            end = start
        self.recorder_hours = loaded
        return len(loaded)
