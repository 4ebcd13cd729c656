"""Replay a recorded trace as a simulated device, in real or accelerated time.

    replay = load_replay(Path("log.csv"), Path("map.yaml"), speed=60)
    async with SimulatorServer(replay.device) as server: ...

The trace (``trace.py``, the benchmark's format and loader) gives each register's
value over time; the map (the profile format, as pasted in the config flow) says
where each key lives and how it is encoded. At clock time ``t`` the device serves,
for every key, the last recorded value at or before trace time
``first + speed * (t - start)``; before a key's first sample its first value holds,
after the end of the trace the last values hold. Writes to writable registers hold
until the end, as on the demo device.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
import datetime as dt
from pathlib import Path
import time

from ..register_map import Profile, RegisterMapError, parse_profile
from ..registers import DataType, DecodeError, RegisterSpec, Value
from .device import DeviceModel, SimulatedDevice
from .trace import TraceError, TraceSamples, read_trace

REPLAY_MODEL = DeviceModel("replay", "replay")
"""A replayed device: no holes, no hidden read limit, no incident of its own."""


@dataclass(frozen=True, slots=True)
class Series:
    """One key's samples sorted by time."""

    times: list[float]
    values: list[float]

    def at(self, when: float) -> float:
        """Return the last value at or before ``when`` (the first before it starts)."""
        index = bisect.bisect_right(self.times, when) - 1
        return self.values[max(index, 0)]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a replay is: trace time, share done, whether it reached the end."""

    trace_time: float
    fraction: float
    finished: bool

    def describe(self) -> str:
        """One line for humans: ``42.0 % at 2026-11-02T19:15:10Z``."""
        stamp = dt.datetime.fromtimestamp(self.trace_time, dt.UTC)
        iso = stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
        text = f"{100 * self.fraction:5.1f} % at {iso}"
        return text + (" (end of the trace: last values hold)" if self.finished else "")


class TraceReplay:
    """The value source of a replay device: trace time runs ``speed`` times clock time."""

    def __init__(
        self,
        profile: Profile,
        samples: TraceSamples,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.time,
        start: float | None = None,
        unit_id: int = 1,
    ) -> None:
        """Check ``samples`` against the map of ``profile`` and build the device."""
        if not speed > 0:
            raise TraceError(f"speed must be above 0, got {speed}", field="speed")
        specs = [definition.spec for definition in profile.registers]
        samples.require(spec.key for spec in specs)
        self.first, self.last = samples.span(spec.key for spec in specs)
        self.speed = speed
        self.series: dict[str, Series] = {}
        for spec in specs:
            times, values, lines = samples.ordered(spec.key)
            _check_fits(spec, values, lines)
            self.series[spec.key] = Series(times, values)
        self.device = SimulatedDevice(
            clock=clock,
            unit_id=unit_id,
            start=start,
            model=REPLAY_MODEL,
            profile=profile,
            source=self.value,
        )

    def restart(self, now: float | None = None) -> None:
        """Start the replay from the trace's first sample at clock time ``now``."""
        self.device.start = self.device.now() if now is None else now

    @property
    def duration(self) -> float:
        """Trace seconds from the first sample to the end."""
        return self.last - self.first

    def trace_time(self, scenario_time: float) -> float:
        """Trace time (Unix seconds of the log) at a device's scenario time."""
        return self.first + self.speed * scenario_time

    def value(self, key: str, scenario_time: float) -> Value:
        """Value of ``key`` at scenario time (the device's source)."""
        return self.series[key].at(self.trace_time(scenario_time))

    def progress(self, now: float | None = None) -> Progress:
        """How far the replay is at clock time ``now`` (default: the device's now)."""
        trace_time = self.trace_time(self.device.scenario_time(now))
        done = trace_time - self.first
        fraction = 1.0 if self.duration <= 0 else min(1.0, done / self.duration)
        return Progress(min(trace_time, self.last), fraction, trace_time >= self.last)


def _check_fits(spec: RegisterSpec, values: list[float], lines: list[int]) -> None:
    """Every recorded value must fit the register's data type (names the line)."""
    if spec.data_type is DataType.STRING:
        raise TraceError(
            f"{spec.key}: a string register cannot be replayed from numbers",
            field="key",
        )
    if spec.data_type in (DataType.BOOL, DataType.BIT):
        return
    pairs = list(zip(values, lines, strict=True))
    for value, line in (min(pairs), max(pairs)):  # the smallest and the largest
        try:
            spec.encode(value)
        except DecodeError as err:
            raise TraceError(
                f"{spec.key}: {value:g} does not fit {spec.data_type}"
                f" (scale {spec.scale:g})",
                line=line,
                field="value",
            ) from err


def load_replay(
    trace_path: Path,
    map_path: Path,
    *,
    unit_id: int = 1,
    speed: float = 1.0,
    clock: Callable[[], float] = time.time,
    start: float | None = None,
) -> TraceReplay:
    """Load ``trace_path`` with the register map ``map_path``; blocking file I/O.

    Raises :class:`TraceError` for a bad trace and :class:`RegisterMapError` (with
    field and line) for a bad map.
    """
    try:
        text = map_path.read_text(encoding="utf-8")
    except OSError as err:
        raise TraceError(f"cannot read {map_path}: {err.strerror or err}") from err
    profile = parse_profile("replay", text, unit_id)
    if profile.name == "replay":
        profile = Profile(
            "replay",
            f"Replay of {trace_path.name}",
            profile.manufacturer,
            profile.model,
            profile.max_registers,
            profile.registers,
        )
    samples = read_trace(trace_path)
    return TraceReplay(
        profile, samples, speed=speed, clock=clock, start=start, unit_id=unit_id
    )


__all__ = [
    "Progress",
    "RegisterMapError",
    "TraceError",
    "TraceReplay",
    "load_replay",
]
