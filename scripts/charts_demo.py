"""Render the four charts of the demo scenario into docs/charts/ (for the README).

The demo heat pump is polled by the real engine in virtual time (an in-process
transport with the bus time of a 9600-baud RS-485 line), its history and class
timeline fed after every cycle exactly as the integration feeds them, then the
charts are drawn by the same code the image entities use. The run starts on
24 March 2026 in Europe/Berlin so the daily chart holds the 23-hour day of the
spring-forward change (29 March).

Run: scripts/charts [--days 7.5] [--theme neutral] [--out docs/charts]
     scripts/charts --worst-case    time the largest inputs (a month, full timelines)
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime
from pathlib import Path
import time
from zoneinfo import ZoneInfo

from adaptive_modbus_engine import charts
from adaptive_modbus_engine.history import HOUR, HOURS_KEPT, History, HourStats
from adaptive_modbus_engine.scheduler import EngineConfig, PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Europe/Berlin")
START = datetime(2026, 3, 24, 0, 0, tzinfo=TZ).timestamp()
BAUD = 9600.0
BITS_PER_BYTE = 11  # start, 8 data, parity, stop
TURNAROUND = 0.010  # s: the device's answer delay and the line's silent intervals


def rs485_latency(_kind: str, _unit: int, count: int) -> float:
    """Seconds one read of ``count`` registers takes on the line (RTU frames)."""
    frame_bytes = 8 + 5 + 2 * count  # request, response header + CRC, data
    return frame_bytes * BITS_PER_BYTE / BAUD + TURNAROUND


class Clock:
    """The virtual wall clock the engine, the device and the transport share."""

    def __init__(self, t: float) -> None:
        """Start at ``t``."""
        self.t = t

    def __call__(self) -> float:
        """Return the virtual time."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass (a request on the bus)."""
        self.t += seconds


async def run(days: float) -> tuple[PollEngine, History, charts.ClassTimeline]:
    """Poll the demo device for ``days`` of virtual time; return what charts read."""
    clock = Clock(START)
    device = SimulatedDevice(seed=42, clock=clock, start=START)
    transport = InProcessTransport(
        device, latency=rs485_latency, clock_advance=clock.advance
    )
    engine = PollEngine(
        device.registers,
        transport,
        clock,
        EngineConfig(min_interval=5, max_interval=300, fixed_interval=15),
    )
    history = History()
    timeline = charts.ClassTimeline()
    end = START + days * charts.DAY
    last_report = START
    while (due := engine.next_due()) <= end:
        clock.t = max(clock.t, due)
        result = await engine.poll_due()
        snapshot = engine.snapshot()
        history.observe(result, snapshot, engine.cost_model())
        timeline.take(snapshot)
        if clock.t - last_report >= charts.DAY:
            last_report = clock.t
            print(f"  day {round((clock.t - START) / charts.DAY)} of {days:g}")
    return engine, history, timeline


def worst_case(theme: str) -> None:
    """Time the largest inputs the charts take: 30 days of hours, full timelines."""
    now = START + 30 * charts.DAY
    hours = [
        HourStats(
            start=START + i * HOUR,
            requests=1000 + i % 97,
            fixed_requests=5000.0,
            bus_time=10.0,
            fixed_bus_time=50.0,
            seconds=HOUR,
        )
        for i in range(HOURS_KEPT)
    ]
    timeline = charts.ClassTimeline()
    labels = {f"1.r{i}": f"register_{i}" for i in range(charts.MAX_ROWS)}
    for step in range(timeline.max_points):  # every register at its step limit
        at = now - charts.INTERVALS_WINDOW + step * 80.0
        timeline.observe(at, dict.fromkeys(labels, 5.0 if step % 2 else 300.0))
    print(f"worst case: {len(hours)} hours, {len(timeline)} class steps")
    for item in (
        charts.hourly_data(hours, now, TZ),
        charts.daily_data(hours, now, TZ),
        charts.cumulative_data(hours, TZ),
        charts.intervals_data(
            {uid: timeline.steps(uid) for uid in labels}, labels, now, TZ
        ),
    ):
        began, cpu = time.perf_counter(), time.process_time()
        png = charts.render(item, theme)
        print(
            f"  {item.kind}: {charts.png_size(png)}, "
            f"{time.perf_counter() - began:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU"
        )


def main() -> None:
    """Run the scenario and write hourly/daily/cumulative/intervals PNGs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.5)
    parser.add_argument("--theme", choices=sorted(charts.THEMES), default="neutral")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "charts")
    parser.add_argument(
        "--worst-case",
        action="store_true",
        help="only time the largest inputs (a month of hours, full timelines)",
    )
    args = parser.parse_args()
    if args.worst_case:
        worst_case(args.theme)
        return
    print(f"demo scenario: {args.days:g} days of virtual time from 24 Mar 2026 ...")
    began = time.process_time()
    engine, history, timeline = asyncio.run(run(args.days))
    print(f"  simulated in {time.process_time() - began:.0f} s CPU")
    snapshot = engine.snapshot()
    now = snapshot.to_wall(snapshot.at)
    hours = history.hours()
    labels = {uid: r.key for uid, r in snapshot.registers.items() if r.enabled}
    data: list[charts.ChartData] = [
        charts.hourly_data(hours, now, TZ),
        charts.daily_data(hours, now, TZ),
        charts.cumulative_data(hours, TZ),
        charts.intervals_data(
            {uid: timeline.steps(uid) for uid in labels},
            labels,
            now,
            TZ,
            title="Register intervals: Demo heat pump",
        ),
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    for item in data:
        began = time.perf_counter()
        png = charts.render(item, args.theme)
        path = args.out / f"{item.kind}.png"
        path.write_bytes(png)
        width, height = charts.png_size(png)
        print(
            f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{width}x{height} px, {len(png) / 1024:.0f} KiB, "
            f"rendered in {time.perf_counter() - began:.2f} s"
        )


if __name__ == "__main__":
    main()
