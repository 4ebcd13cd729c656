"""Trace replay: any recorded data as a benchmark scenario.

A trace is a long-format CSV ``timestamp,key,value`` (timestamps as Unix seconds or
ISO 8601; values numeric, or true/false/on/off) plus a YAML register map in the
profile format (``engine.register_map``). Every register of the map must appear in
the trace. The replay device serves, at time t, the last recorded value at or before
t (1-second resolution); before a register's first sample its first value holds.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_modbus_engine.planner import DeviceLimits
from adaptive_modbus_engine.register_map import parse_register_map

from . import waveforms as wf
from .bus import BusModel
from .devices import SyntheticUnit, clamp_to_type, quantize
from .scenarios import EPOCH, Scenario

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_TRACE = DATA_DIR / "example_trace.csv"
EXAMPLE_MAP = DATA_DIR / "example_map.yaml"

_BOOLS = {"true": 1.0, "on": 1.0, "false": 0.0, "off": 0.0}


class TraceError(ValueError):
    """The trace or its map cannot be replayed (names the line)."""


def _timestamp(text: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise TraceError(f"line {line}: bad timestamp {text!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def _value(text: str, line: int) -> float:
    lowered = text.strip().lower()
    if lowered in _BOOLS:
        return _BOOLS[lowered]
    try:
        value = float(lowered)
    except ValueError as err:
        raise TraceError(f"line {line}: bad value {text!r}") from err
    if not math.isfinite(value):
        raise TraceError(f"line {line}: value {text!r} is not finite")
    return value


def read_trace(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Samples per key, sorted by time."""
    samples: dict[str, list[tuple[float, float]]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        for line, row in enumerate(reader, start=1):
            if not row or row[0].startswith("#") or (line == 1 and row[0] == "timestamp"):
                continue
            if len(row) != 3:
                raise TraceError(f"line {line}: expected timestamp,key,value")
            samples.setdefault(row[1].strip(), []).append(
                (_timestamp(row[0], line), _value(row[2], line))
            )
    for series in samples.values():
        series.sort()
    if not samples:
        raise TraceError(f"{path}: no samples")
    return samples


def load_trace(
    trace_path: Path,
    map_path: Path,
    *,
    unit_id: int = 1,
    bus: BusModel | None = None,
    incidents: tuple[float, ...] = (),
) -> Scenario:
    """A scenario replaying ``trace_path`` with the registers of ``map_path``.

    ``incidents`` are seconds from the trace start whose first step is timed.
    """
    definitions = parse_register_map(map_path.read_text(encoding="utf-8"), unit_id)
    specs = tuple(d.spec for d in definitions)
    samples = read_trace(trace_path)
    missing = [spec.key for spec in specs if spec.key not in samples]
    if missing:
        raise TraceError(f"registers without samples in the trace: {', '.join(missing)}")
    first = min(series[0][0] for key, series in samples.items() if key in {s.key for s in specs})
    last = max(series[-1][0] for key, series in samples.items() if key in {s.key for s in specs})
    duration = max(math.ceil(last - first), 60)
    grid = first + np.arange(duration + 1, dtype=np.float64)
    values: dict[str, Any] = {}
    for spec in specs:
        times = np.array([t for t, _ in samples[spec.key]])
        series = np.array([v for _, v in samples[spec.key]])
        index = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, None)
        values[spec.key] = clamp_to_type(spec, series[index])
    start = EPOCH
    truth = np.vstack([quantize(spec, values[spec.key]) for spec in specs])

    def make_units(clock: Callable[[], float]) -> list[Any]:
        return [SyntheticUnit(unit_id, specs, values, start=start, clock=clock)]

    return Scenario(
        name="trace",
        title=f"Trace replay of {trace_path.name} ({len(specs)} values, {duration / 3600:.1f} h)",
        specs=specs,
        truth=truth,
        start=start,
        duration=duration,
        bus=bus or BusModel.tcp(0.010),
        make_units=make_units,
        incidents=tuple(start + s for s in incidents),
        limits={unit_id: DeviceLimits()},
    )


def write_example(trace_path: Path = EXAMPLE_TRACE, seed: int = 7, hours: float = 3.0) -> None:
    """Write the example trace: a heat-pump meter logged as value changes every 10 s."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600) + 1
    compressor = wf.first_order(1800 * wf.telegraph(n, rng, mean_on_s=1500, mean_off_s=1200), 40)
    power = 60 + compressor + wf.noise(n, rng, 6.0)
    series = {
        "power": np.round(power),
        "voltage": np.round(231 + wf.smooth_walk(n, rng, sigma=0.4) + wf.noise(n, rng, 0.2), 1),
        "current": np.round(power / 231, 2),
        "energy": np.round(wf.energy_kwh(power, 5231.0), 2),
        "flow_temperature": np.round(30 + wf.first_order(compressor / 1800 * 15, 400), 1),
        "return_temperature": np.round(27 + wf.first_order(compressor / 1800 * 9, 500), 1),
        "compressor_running": (compressor > 900).astype(float),
    }
    start = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    with trace_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "key", "value"])
        last: dict[str, float] = {}
        for second in range(0, n, 10):
            stamp = (start + dt.timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
            for key, values in series.items():
                value = float(values[second])
                if last.get(key) != value:
                    text = (
                        ("true" if value else "false")
                        if key == "compressor_running"
                        else (f"{value:g}")
                    )
                    writer.writerow([stamp, key, text])
                    last[key] = value
