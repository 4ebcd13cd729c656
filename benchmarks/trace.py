"""Trace replay: any recorded data as a benchmark scenario.

The file format and its loader (``read_trace``, ``TraceError``) live in the engine
library (``adaptive_modbus_engine.simulator.trace``), shared with the replay server
(``scripts/simulator --replay``); this module turns the samples into a scenario.

A trace is a long-format CSV ``timestamp,key,value`` (timestamps as Unix seconds,
Unix milliseconds or ISO 8601; values numeric, or true/false/on/off) plus a YAML
register map in the profile format (``engine.register_map``). Every register of the
map must appear in the trace. The replay device serves, at time t, the last recorded
value at or before t (1-second resolution); before a register's first sample its
first value holds.

Rules (each one a bug found replaying real logs):

* Rows with the same timestamp and key: the **last row** of the file wins (a bool
  logged on then off in the same second replays as off).
* Numeric timestamps above 1e11 are **Unix milliseconds** (1e11 s is the year 5138)
  and are converted to seconds; a log mixing seconds and milliseconds is refused
  with the line that switches.
* A stretch longer than ``max_gap`` seconds without any row (all keys silent) is a
  **gap**: missing truth, left out of every error metric (the device keeps serving
  the last value). ``hold=True`` treats gaps as a flat signal instead.
* A change-only log keeps its **flat tail**: the replay runs to the log's stated end
  (a comment line ``# end <timestamp>`` or the ``end`` argument, in the log's
  timestamp format), else to its last row; every key holds its last value till then.

Streaming: the replay never holds one float per register and second. The scenario's
truth is a :class:`TraceTruth` (computed window by window from the log's change
points) and its device a :class:`TraceUnit` (the same change points, looked up per
read); ``scripts/bench`` streams each run's metrics chunk by chunk
(:class:`~benchmarks.metrics.MetricsStream`). What stays is the log itself, 16 bytes
per row (time and value), and per run what grows with changes, not with seconds.
"""

from __future__ import annotations

from collections.abc import Callable
import csv
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_modbus_engine.planner import DeviceLimits
from adaptive_modbus_engine.register_map import parse_register_map
from adaptive_modbus_engine.registers import RegisterSpec, Value
from adaptive_modbus_engine.replay import SampleHoldUnit
from adaptive_modbus_engine.simulator.trace import (
    TimestampParser,
    TraceError,
    TraceSamples,
    read_trace,
)

from . import waveforms as wf
from .bus import BusModel
from .devices import clamp_to_type, quantize
from .scenarios import EPOCH, Scenario

__all__ = [  # the loader's names are re-exported: the benchmark's callers use them
    "DATA_DIR",
    "EXAMPLE_MAP",
    "EXAMPLE_TRACE",
    "MAX_GAP",
    "TraceError",
    "TraceSamples",
    "TraceTruth",
    "TraceUnit",
    "find_gaps",
    "load_trace",
    "read_trace",
    "sorted_arrays",
    "write_example",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_TRACE = DATA_DIR / "example_trace.csv"
EXAMPLE_MAP = DATA_DIR / "example_map.yaml"

#: Default longest silence of the whole log that still counts as a flat signal (s).
MAX_GAP = 3600.0


def sorted_arrays(
    samples: TraceSamples, key: str
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return times and values of ``key``, stably sorted by time, as numpy arrays."""
    times, values = samples.series[key]
    t = np.frombuffer(times, dtype=np.float64)
    v = np.frombuffer(values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def load_trace(
    trace_path: Path,
    map_path: Path,
    *,
    unit_id: int = 1,
    bus: BusModel | None = None,
    incidents: tuple[float, ...] = (),
    max_gap: float = MAX_GAP,
    hold: bool = False,
    end: str | None = None,
) -> Scenario:
    """Build a scenario replaying ``trace_path`` with the registers of ``map_path``.

    ``incidents`` are seconds from the trace start whose first step is timed;
    ``max_gap``, ``hold`` and ``end`` as in the module docstring. The scenario's
    truth is a :class:`TraceTruth` and its device a :class:`TraceUnit`: both read
    the log's own change points, so nothing holds one float per register and second.
    """
    definitions = parse_register_map(map_path.read_text(encoding="utf-8"), unit_id)
    specs = tuple(d.spec for d in definitions)
    samples = read_trace(trace_path)
    if end is not None:
        samples.end = TimestampParser()(end, None)
    samples.require(spec.key for spec in specs)
    first, last = samples.span(spec.key for spec in specs)
    duration = max(math.ceil(last - first), 60)
    gaps = [] if hold else find_gaps(samples, first, max_gap)
    del samples.row_times[:]  # the loader's bookkeeping goes before the copies come
    samples.lines.clear()
    series = {}
    for spec in specs:
        times, data = sorted_arrays(samples, spec.key)
        series[spec.key] = (times, clamp_to_type(spec, data))
        del samples.series[spec.key]
    del samples
    start = EPOCH
    truth = TraceTruth(specs, series, first=first, duration=duration, gaps=gaps)

    def make_units(clock: Callable[[], float]) -> list[Any]:
        return [TraceUnit(unit_id, truth, start=start, clock=clock)]

    missing_s = sum(b - a for a, b in gaps)
    return Scenario(
        name="trace",
        title=f"Trace replay of {trace_path.name} ({len(specs)} values, {duration / 3600:.1f} h"
        + (f", {missing_s / 3600:.1f} h in {len(gaps)} gap(s) left out" if gaps else "")
        + ")",
        specs=specs,
        truth=truth,  # type: ignore[arg-type]  # reads like the matrix, chunk by chunk
        start=start,
        duration=duration,
        bus=bus or BusModel.tcp(0.010),
        make_units=make_units,
        incidents=tuple(start + s for s in incidents),
        limits={unit_id: DeviceLimits()},
        notes=f"gaps: {gaps}" if gaps else "",
    )


#: Columns (seconds) of truth a :class:`TraceTruth` computes at a time by default.
WINDOW = 3600


class TraceTruth:
    """The per-second truth of a replayed log, computed window by window.

    Reads like the ``truth[register, second]`` matrix of the other scenarios
    (``shape``, ``truth[rows, a:b]``, ``truth[row, s]``, ``np.asarray(truth)``), but
    holds only the log's change points per register (``times``, clamped ``values``)
    and the gaps; the columns asked for are computed from them (at least
    :data:`WINDOW` at a time, the last window kept), so a reader moving forward in
    time holds one window, not the whole duration. Column ``i`` is the time
    ``first + i``: each register's last value at or before it (its first value
    before its first row), quantized as a read decodes it; NaN inside a gap.
    """

    ndim = 2

    def __init__(
        self,
        specs: tuple[RegisterSpec, ...],
        series: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
        *,
        first: float,
        duration: int,
        gaps: list[tuple[int, int]],
        window: int = WINDOW,
    ) -> None:
        """Serve ``series`` (per key: sorted times, clamped values) from ``first``."""
        self.specs = specs
        self.series = series
        self.first = first
        self.duration = duration
        self.gaps = gaps
        self.window = max(int(window), 1)
        self._cached: tuple[int, int, np.ndarray[Any, Any]] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(registers, seconds + 1), as the matrix's."""
        return (len(self.specs), self.duration + 1)

    def __len__(self) -> int:
        """Return the number of registers (rows)."""
        return len(self.specs)

    def raw(self, key: str, index: int) -> float:
        """Return the clamped raw value of ``key`` at column ``index`` (served)."""
        times, values = self.series[key]
        at = int(np.searchsorted(times, self.first + index, side="right")) - 1
        return float(values[max(at, 0)])

    def columns(self, lo: int, hi: int) -> np.ndarray[Any, Any]:
        """Compute columns ``[lo, hi)`` afresh (rows follow ``specs``)."""
        grid = self.first + np.arange(lo, hi, dtype=np.float64)
        out = np.empty((len(self.specs), hi - lo))
        for row, spec in enumerate(self.specs):
            times, values = self.series[spec.key]
            index = np.searchsorted(times, grid, side="right") - 1
            np.clip(index, 0, None, out=index)
            out[row] = quantize(spec, values[index])
        for gap_start, gap_end in self.gaps:
            a, b = max(gap_start, lo), min(gap_end, hi)
            if b > a:
                out[:, a - lo : b - lo] = np.nan
        return out

    def _window(self, lo: int, hi: int) -> np.ndarray[Any, Any]:
        """Columns ``[lo, hi)`` from the kept window, computing a new one if needed."""
        cached = self._cached
        if cached is None or lo < cached[0] or hi > cached[1]:
            top = min(max(hi, lo + self.window), self.duration + 1)
            cached = (lo, top, self.columns(lo, top))
            self._cached = cached
        return cached[2][:, lo - cached[0] : hi - cached[0]]

    def __getitem__(self, key: Any) -> Any:
        """``truth[rows, columns]`` with an int or a step-1 slice for the columns."""
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        n = self.duration + 1
        if isinstance(cols, slice):
            lo, hi, step = cols.indices(n)
            if step != 1:
                return np.asarray(self)[rows, cols]
            return self._window(lo, max(hi, lo))[rows]
        col = int(cols)
        if col < 0:
            col += n
        if not 0 <= col < n:
            raise IndexError(f"column {cols} outside 0..{n - 1}")
        return self._window(col, col + 1)[rows, 0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray[Any, Any]:
        """Return the whole matrix (all in memory: for short traces and tests)."""
        whole = self.columns(0, self.duration + 1)
        return whole if dtype is None else whole.astype(dtype)


class TraceUnit(SampleHoldUnit):
    """The replay device: serves a :class:`TraceTruth`'s raw values, sample-and-hold.

    At time ``t`` each register holds its value of column ``floor(t - start)`` (the
    first column before the start, the last after the end), looked up in the log's
    change points: what :class:`~benchmarks.devices.SyntheticUnit` serves from
    per-second arrays, without them.
    """

    def __init__(
        self,
        unit_id: int,
        truth: TraceTruth,
        *,
        start: float,
        clock: Callable[[], float],
    ) -> None:
        """Serve the registers of ``truth`` as unit ``unit_id``, column 0 at ``start``."""
        super().__init__(unit_id, truth.specs, clock=clock)
        self.start = start
        self._truth = truth

    def value(self, key: str, t: float) -> Value:
        """Value of ``key`` at clock time ``t``."""
        index = min(max(math.floor(t - self.start), 0), self._truth.duration)
        return self._truth.raw(key, index)

    def truth(self, key: str, t: float) -> Value:
        """Ground truth of ``key`` at ``t`` (undecoded engineering value)."""
        return self.value(key, t)


def find_gaps(
    samples: TraceSamples, first: float, max_gap: float
) -> list[tuple[int, int]]:
    """Return the grid index ranges ``[a, b)`` where the log is silent too long.

    A gap lies strictly between two rows more than ``max_gap`` seconds apart (the
    whole log silent: missing truth). The tail up to a stated end is not a gap: the
    log says it covers it.
    """
    times = np.unique(np.frombuffer(samples.row_times, dtype=np.float64))
    out = []
    for index in np.flatnonzero(np.diff(times) > max_gap):
        lo = math.floor(times[index] - first) + 1
        hi = math.ceil(times[index + 1] - first)
        if hi > lo:
            out.append((lo, hi))
    return out


def write_example(
    trace_path: Path = EXAMPLE_TRACE, seed: int = 7, hours: float = 3.0
) -> None:
    """Write the example trace: a heat-pump meter logged as value changes every 10 s."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600) + 1
    compressor = wf.first_order(
        1800 * wf.telegraph(n, rng, mean_on_s=1500, mean_off_s=1200), 40
    )
    power = 60 + compressor + wf.noise(n, rng, 6.0)
    series = {
        "power": np.round(power),
        "voltage": np.round(
            231 + wf.smooth_walk(n, rng, sigma=0.4) + wf.noise(n, rng, 0.2), 1
        ),
        "current": np.round(power / 231, 2),
        "energy": np.round(wf.energy_kwh(power, 5231.0), 2),
        "flow_temperature": np.round(
            30 + wf.first_order(compressor / 1800 * 15, 400), 1
        ),
        "return_temperature": np.round(
            27 + wf.first_order(compressor / 1800 * 9, 500), 1
        ),
        "compressor_running": (compressor > 900).astype(float),
    }
    start = dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.UTC)
    with trace_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "key", "value"])
        last: dict[str, float] = {}
        for second in range(0, n, 10):
            stamp = (
                (start + dt.timedelta(seconds=second))
                .isoformat()
                .replace("+00:00", "Z")
            )
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
