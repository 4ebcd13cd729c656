"""Trace replay in virtual time: the same engine code, driven over recorded values.

Used by the benchmarks (simulated devices and recorded logs) and by the optimizer's
shadow replay (what the engine read lately, replayed with candidate parameters):

- :class:`VirtualClock`: time that moves only when told to (by the driver loop and
  by the bus time of each request);
- :class:`SampleHoldUnit`: a Modbus unit serving any register map from values that
  hold between samples, behaving like a real device where a poller notices
  (unmapped gaps read 0, reads past the map or through a hole raise
  ``IllegalAddress``, reads over its limit ``DeviceFailure``, reads over
  ``timeout_above`` registers get no answer); :class:`TraceUnit` serves per-register
  ``(times, values)`` lists;
- :func:`drive`: the coordinator's loop (``t = next_due()``, move the clock,
  ``poll_due(t)``) until an end time;
- :func:`replay`: a whole shadow run, synchronous and free of any event loop (the
  in-process transport never suspends), returning requests, bus time, errors and the
  staleness of what the engine showed against the trace (:class:`ReplayOutcome`).

Nothing here touches a live engine: a replay builds its own ``PollEngine`` from
specs, an exported learned state and exported tuning.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
import logging
import math
import random
import threading
from typing import Any, TypedDict, Unpack, cast
import zlib

from .config import EngineConfig
from .errors import DeviceFailure, IllegalAddress, ModbusTimeout
from .registers import DataType, RegisterSpec, Table, Value
from .scheduler import CycleResult, PollEngine
from .simulator.inprocess import InProcessTransport, RequestKind
from .spans import MAX_SPAN, SpanError, check_span

MAX_READ_WORDS = 125
MAX_READ_BITS = 2000
STUCK_CYCLES = 10_000  # cycles in a row without progress before a run is abandoned

# value range of each integer data type
INT_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


class VirtualClock:
    """Monotonic virtual time in seconds; only moves when told to."""

    def __init__(self, start: float = 0.0) -> None:
        """Start the clock at ``start``."""
        self._now = float(start)

    def now(self) -> float:
        """Return the current virtual time (the engine's ``clock``)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are ignored)."""
        if seconds > 0:
            self._now += seconds

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when``; never backwards."""
        self._now = max(self._now, float(when))


class UnitOptions(TypedDict, total=False):
    """Optional device behaviour of a :class:`SampleHoldUnit` (for subclasses)."""

    holes: Mapping[Table, frozenset[int]] | None
    max_read_words: int
    timeout_above: int | None


class SampleHoldUnit:
    """One Modbus unit serving ``specs`` from values that hold between samples.

    Subclasses say what a register holds at a time (:meth:`value`).
    """

    def __init__(
        self,
        unit_id: int,
        specs: Sequence[RegisterSpec],
        *,
        clock: Callable[[], float],
        holes: Mapping[Table, frozenset[int]] | None = None,
        max_read_words: int = MAX_READ_WORDS,
        timeout_above: int | None = None,
    ) -> None:
        """Serve ``specs`` of ``unit_id``; reads over ``timeout_above`` get no answer."""
        self.unit_id = unit_id
        self.registers = tuple(specs)
        self._clock = clock
        self._holes = dict(holes or {})
        self.max_read_words = max_read_words
        self.timeout_above = timeout_above
        self._by_table: dict[Table, tuple[list[int], list[RegisterSpec]]] = {}
        self._space: dict[Table, int] = {}
        for table in Table:
            items = sorted(
                (s for s in specs if s.table is table), key=lambda s: s.address
            )
            self._by_table[table] = ([s.address for s in items], items)
            self._space[table] = max((s.end for s in items), default=0)
        self._writes: dict[str, Value] = {}

    def holes(self, table: Table) -> frozenset[int]:
        """Illegal addresses inside the address space of ``table``."""
        return self._holes.get(table, frozenset())

    def value(self, key: str, t: float) -> Value:
        """Live value of ``key`` at clock time ``t``."""
        raise NotImplementedError

    def current(self, key: str, t: float) -> Value:
        """Return what the unit answers for ``key`` at ``t`` (a written value first)."""
        if key in self._writes:
            return self._writes[key]
        return self.value(key, t)

    def _words(self, spec: RegisterSpec, t: float) -> list[int]:
        value = self.current(spec.key, t)
        if spec.data_type is DataType.BIT:
            assert spec.bit is not None
            return [(1 << spec.bit) if value else 0]
        if spec.data_type is DataType.BOOL:
            return [1 if value else 0]
        if spec.data_type in INT_RANGES:
            low, high = INT_RANGES[spec.data_type]
            raw = round((float(value) - spec.offset) / spec.scale)
            value = min(max(raw, low), high) * spec.scale + spec.offset
        return spec.encode(value)

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read ``count`` words (or bits) of ``table`` from ``address`` at clock time."""
        if unit_id != self.unit_id:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)
        if (
            self.timeout_above is not None
            and not table.is_bit
            and count > self.timeout_above
        ):
            raise ModbusTimeout(
                f"no answer to a read of {count} registers", unit_id=unit_id
            )
        limit = MAX_READ_BITS if table.is_bit else self.max_read_words
        if not 1 <= count <= limit:
            raise DeviceFailure(f"{table} request for {count} values", unit_id=unit_id)
        if address < 0 or address + count > self._space[table]:
            raise IllegalAddress(
                f"{table} {address}+{count} outside the map", unit_id=unit_id
            )
        for hole in self.holes(table):
            if address <= hole < address + count:
                raise IllegalAddress(
                    f"{table} address {hole} does not exist", unit_id=unit_id
                )
        t = self._clock()
        starts, specs = self._by_table[table]
        out = [0] * count
        first = bisect_left(starts, address - 4)  # widest numeric value spans 4 words
        for spec in specs[first:]:
            if spec.address >= address + count:
                break
            if spec.end <= address:
                continue
            for offset, word in enumerate(self._words(spec, t)):
                position = spec.address + offset - address
                if 0 <= position < count:
                    out[position] |= word
        return out

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write a whole holding value starting at ``address`` (kept until the end)."""
        for spec in self._by_table[Table.HOLDING][1]:
            if spec.address == address and spec.writable and spec.size == len(values):
                decoded = spec.decode(values)
                self._writes[spec.key] = math.nan if decoded is None else decoded
                return
        raise IllegalAddress(f"holding {address} is not writable", unit_id=unit_id)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Switch a writable coil."""
        for spec in self._by_table[Table.COIL][1]:
            if spec.address == address and spec.writable:
                self._writes[spec.key] = value
                return
        raise IllegalAddress(f"coil {address} is not writable", unit_id=unit_id)


Series = tuple[Sequence[float], Sequence[Value]]


class TraceUnit(SampleHoldUnit):
    """A unit serving each register's last sample at or before the clock time.

    ``series[key]`` is ``(times, values)`` sorted by time; before the first sample
    the first value holds. A register without samples reads 0.
    """

    def __init__(
        self,
        unit_id: int,
        specs: Sequence[RegisterSpec],
        series: Mapping[str, Series],
        *,
        clock: Callable[[], float],
        noise: Mapping[str, float] | None = None,
        **options: Unpack[UnitOptions],
    ) -> None:
        """Serve ``specs`` of ``unit_id`` from ``series`` (by register key).

        ``noise`` (by key): white noise put on the held value, as the engine
        measures it (RMS of the difference between two reads).
        """
        super().__init__(unit_id, specs, clock=clock, **options)
        self._noise = dict(noise or {})
        # a noisy register's held values carry its noise already: its noise is put
        # on their running mean instead (else it would count twice)
        self._series = {
            key: smoothed(values) if key in self._noise else values
            for key, values in series.items()
        }

    def value(self, key: str, t: float) -> Value:
        """Return the last sample of ``key`` at or before ``t`` (plus its noise)."""
        value = sample_at(self._series.get(key), t)
        noise = self._noise.get(key)
        if noise and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value) + white_noise(key, t, noise / math.sqrt(2.0))
        return value


NOISE_MEAN_OF = 8  # held values a noisy register's running mean is taken over


def smoothed(series: Series) -> Series:
    """Return ``series`` with each value the mean of it and up to 7 values before it.

    Non-numeric values are kept as they are.
    """
    times, values = series
    out: list[Value] = []
    window: list[float] = []
    for value in values:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(value)
            continue
        window.append(float(value))
        if len(window) > NOISE_MEAN_OF:
            window.pop(0)
        out.append(sum(window) / len(window))
    return times, out


def white_noise(key: str, t: float, sigma: float) -> float:
    """Return a normal draw with ``sigma`` that depends only on ``key`` and ``t``.

    The same read of the same replay gives the same value (replays are repeatable
    and a candidate meets the same noise as the baseline at the same times).
    """
    seed = zlib.crc32(f"{key}|{t!r}".encode())
    return random.Random(seed).gauss(0.0, sigma)


def sample_at(series: Series | None, t: float) -> Value:
    """Return the sample-and-hold value of ``series`` at ``t`` (0.0 without samples)."""
    if not series or not series[0]:
        return 0.0
    times, values = series
    index = bisect_right(times, t) - 1
    return values[max(index, 0)]


def as_float(value: Value | None) -> float:
    """Return a shown value as a float (bools 0/1; text and missing values NaN)."""
    if value is None or isinstance(value, str):
        return math.nan
    return float(value)


CycleHook = Callable[[CycleResult, float], Awaitable[None] | None]


async def drive(
    engine: PollEngine,
    clock: VirtualClock,
    end: float,
    *,
    phase: float = 0.0,
    on_cycle: CycleHook | None = None,
    label: str = "replay",
) -> int:
    """Run ``engine`` on ``clock`` until its next due time reaches ``end``.

    The coordinator's loop in virtual time: move the clock to the next due time
    and poll. ``phase`` is how far the engine's clock runs ahead of ``clock``.
    ``on_cycle(result, shown_at)`` runs after each cycle (awaited when it returns
    an awaitable). Returns the number of cycles; raises ``RuntimeError`` when the
    engine makes no progress and :class:`~.spans.SpanError` when ``end`` lies more
    than :data:`~.spans.MAX_SPAN` ahead of the clock, or the engine's first due time
    as far behind it (two clocks mixed: epoch against monotonic seconds).
    """
    check_span(clock.now(), end, f"{label}: clock to end")
    cycles = 0
    stuck = 0
    last_due = -math.inf
    while True:
        due = engine.next_due() - phase
        if due >= end:
            break
        if not cycles and clock.now() - due > MAX_SPAN:
            raise SpanError(
                f"{label}: first due time to clock", due, clock.now(), MAX_SPAN
            )
        clock.advance_to(due)
        result = await engine.poll_due(clock.now() + phase)
        cycles += 1
        if on_cycle is not None:
            pending = on_cycle(result, clock.now())
            if pending is not None:
                await pending
        stuck = stuck + 1 if due <= last_due and result.requests == 0 else 0
        if stuck > STUCK_CYCLES:
            raise RuntimeError(f"{label}: the engine makes no progress at t={due}")
        last_due = due
    return cycles


def run_sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (in-process transport) without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    coro.close()
    raise RuntimeError("the replay suspended: it needs an in-process transport")


# -- shadow replay -------------------------------------------------------------------

_SHADOW = threading.local()
_PACKAGE = __name__.rpartition(".")[0]


class _LiveOnly(logging.Filter):
    """Drops what a shadow engine logs: its quarantines and limits are not the device's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_SHADOW, "active", False)


_LIVE_ONLY = _LiveOnly()


def _quiet_engine_loggers() -> None:
    """Put the filter on every engine logger (idempotent)."""
    for name in list(logging.Logger.manager.loggerDict):
        if name == _PACKAGE or name.startswith(f"{_PACKAGE}."):
            logger = logging.getLogger(name)
            if _LIVE_ONLY not in logger.filters:
                logger.addFilter(_LIVE_ONLY)


@dataclass(frozen=True)
class ReplayTrace:
    """What a replay runs on: registers, their values over time, and the device.

    ``series`` by register uid, sorted by time. ``timeout_above`` (per unit): reads
    of more registers get no answer; ``latency`` is ``(overhead_s, per_register_s)``
    of one request and ``timeout`` what an unanswered one costs; ``cost_samples``
    seed the replay engine's fitted cost model.
    """

    specs: tuple[RegisterSpec, ...]
    series: Mapping[str, Series]
    start: float
    end: float
    tolerances: Mapping[str, float] = field(default_factory=dict)
    holes: Mapping[int, Mapping[Table, frozenset[int]]] = field(default_factory=dict)
    timeout_above: Mapping[int, int] = field(default_factory=dict)
    latency: tuple[float, float] = (0.01, 0.0005)
    timeout: float = 3.0
    wall_offset: float = 0.0  # wall time minus engine time
    # left out of the staleness figures: noise beyond tolerance swamps them
    noisy: frozenset[str] = frozenset()
    # per register uid: noise as the live engine measures it (RMS of the difference
    # of two reads), put back on the held values of registers it is given for: the
    # reads kept are only those that changed, so a noisy register would replay as a
    # step function (steps the engine chases with short intervals) instead of noise
    noise: Mapping[str, float] = field(default_factory=dict)
    # the live engine's cost samples (registers, latency s): the replay's engine
    # plans with the cost model fitted to them from its first cycle, as the live
    # one does, instead of the default model until it has fitted its own
    cost_samples: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        """Refuse a span too long to replay (:class:`~.spans.SpanError`)."""
        check_span(self.start, self.end, "replay trace")


@dataclass(frozen=True)
class ReplayOutcome:
    """What a shadow run did and how fresh what it showed was."""

    duration: float
    requests: int
    errors: int
    bus_time: float
    registers_read: int
    time_out_of_tolerance: float  # share of time, mean over registers (0-1)
    first_change_delay: float  # s, mean from a change beyond tolerance to its read
    changes: int  # changes beyond tolerance in the trace

    @property
    def requests_per_min(self) -> float:
        """Requests per minute."""
        return 60.0 * self.requests / self.duration if self.duration > 0 else 0.0

    @property
    def bus_utilisation(self) -> float:
        """Share of time the bus was busy (0-1)."""
        return self.bus_time / self.duration if self.duration > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Failed requests per request."""
        return self.errors / self.requests if self.requests else 0.0

    def effect(self) -> dict[str, float]:
        """Return the predicted-effect figures (what proposals carry)."""
        return {
            "requests_per_min": round(self.requests_per_min, 3),
            "bus_utilisation": round(self.bus_utilisation, 5),
            "time_out_of_tolerance": round(self.time_out_of_tolerance, 5),
            "first_change_delay": round(self.first_change_delay, 2),
            "error_rate": round(self.error_rate, 4),
        }


def _unit_specs(specs: Sequence[RegisterSpec]) -> dict[int, list[RegisterSpec]]:
    units: dict[int, list[RegisterSpec]] = {}
    for spec in specs:
        units.setdefault(spec.unit_id, []).append(spec)
    return units


def replay(
    trace: ReplayTrace,
    config: EngineConfig,
    *,
    state: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
    changes: Callable[[PollEngine], None] | None = None,
) -> ReplayOutcome:
    """Replay ``trace`` through a fresh engine in virtual time (synchronous).

    The engine starts from ``state`` (an exported learned state) and ``tuning``
    (exported parameters); ``changes`` then applies the candidate parameters
    through the engine's parameter API.
    """
    _quiet_engine_loggers()
    _SHADOW.active = True
    try:
        return _replay(trace, config, state=state, tuning=tuning, changes=changes)
    finally:
        _SHADOW.active = False


def _replay(
    trace: ReplayTrace,
    config: EngineConfig,
    *,
    state: Mapping[str, Any] | None,
    tuning: Mapping[str, Any] | None,
    changes: Callable[[PollEngine], None] | None,
) -> ReplayOutcome:
    clock = VirtualClock(trace.start)
    units = [
        TraceUnit(
            unit,
            specs,
            {
                spec.key: trace.series[spec.uid]
                for spec in specs
                if spec.uid in trace.series
            },
            clock=clock.now,
            noise={
                spec.key: trace.noise[spec.uid]
                for spec in specs
                if spec.uid in trace.noise
            },
            holes=trace.holes.get(unit),
            timeout_above=trace.timeout_above.get(unit),
        )
        for unit, specs in _unit_specs(trace.specs).items()
    ]
    overhead, per_register = trace.latency

    def latency(kind: str, unit_id: int, count: int) -> float:
        words = count / 16 if RequestKind(kind).is_bit else count
        return overhead + per_register * words

    transport = InProcessTransport(
        cast("Any", units),
        latency=latency,
        clock_advance=clock.advance,
        timeout=trace.timeout,
    )
    offset = trace.wall_offset
    engine = PollEngine(
        list(trace.specs),
        transport,
        lambda: clock.now() + offset,
        config,
        monotonic=clock.now,
    )
    if state is not None:
        engine.import_state(state)
    if tuning is not None:
        engine.apply_tuning(tuning)
    if trace.cost_samples:
        engine.seed_cost_samples(trace.cost_samples)
    if changes is not None:
        changes(engine)
    reads: dict[str, tuple[list[float], list[float]]] = {
        spec.uid: ([], []) for spec in trace.specs
    }

    def on_read(
        uid: str, t: float, value: Value | None, previous: float | None
    ) -> None:
        times, values = reads[uid]
        times.append(t)
        values.append(as_float(value))

    engine.add_read_listener(on_read)
    # the first cycle reads everything (nothing is shown yet): a warm-up that a
    # live engine does not pay again, left out of the counts, except its failures
    # (a live engine meets them too, the first time it reads that way)
    warm: list[tuple[int, float, int]] = []

    def on_cycle(result: CycleResult, shown_at: float) -> None:
        if not warm:
            c = transport.counters
            failed = c.errors * trace.timeout
            warm.append(
                (c.requests - c.errors, c.bus_time - failed, c.registers + c.bits)
            )

    # the engine's due times are wall times (engine time + offset): drive in engine time
    run_sync(
        drive(
            engine,
            clock,
            trace.end,
            phase=offset,
            on_cycle=on_cycle,
            label="shadow replay",
        )
    )
    counters = transport.counters
    requests, bus_time, registers = warm[0] if warm else (0, 0.0, 0)
    errors = 0
    tot, delay, count = staleness(trace, reads)
    return ReplayOutcome(
        duration=trace.end - trace.start,
        requests=counters.requests - requests,
        errors=counters.errors - errors,
        bus_time=counters.bus_time - bus_time,
        registers_read=counters.registers + counters.bits - registers,
        time_out_of_tolerance=tot,
        first_change_delay=delay,
        changes=count,
    )


def staleness(
    trace: ReplayTrace, reads: Mapping[str, tuple[list[float], list[float]]]
) -> tuple[float, float, int]:
    """Time out of tolerance (mean share), mean first-change delay and changes counted.

    Per numeric register: the shown value is the last read; it is out of tolerance
    while it differs from the trace by more than the tolerance (any difference for
    tolerance 0). A change beyond tolerance is a trace sample that leaves the band
    around the value shown then; its delay runs to the next read.
    """
    span = trace.end - trace.start
    shares: list[float] = []
    delays: list[float] = []
    for spec in trace.specs:
        series = trace.series.get(spec.uid)
        if (
            not series
            or not series[0]
            or not spec.is_numeric
            or span <= 0
            or spec.uid in trace.noisy
        ):
            continue
        tol = max(trace.tolerances.get(spec.uid, spec.tolerance), 1e-9)
        read_times, read_values = reads.get(spec.uid, ([], []))
        times, values = series
        # change points of either side, inside the window
        points = sorted(
            {
                trace.start,
                *(t for t in times if trace.start < t < trace.end),
                *(t for t in read_times if t < trace.end),
            }
        )
        out = 0.0
        for k, t in enumerate(points):
            nxt = points[k + 1] if k + 1 < len(points) else trace.end
            index = bisect_right(read_times, t) - 1
            if index < 0:
                continue  # nothing shown yet
            shown = read_values[index]
            if math.isnan(shown) or abs(shown - as_float(sample_at(series, t))) > tol:
                out += nxt - t
        shares.append(out / span)
        for t, value in zip(times, values, strict=True):
            if not trace.start < t < trace.end:
                continue
            index = bisect_right(read_times, t) - 1
            if index < 0 or abs(read_values[index] - as_float(value)) <= tol:
                continue
            later = bisect_left(read_times, t)
            seen = read_times[later] if later < len(read_times) else trace.end
            delays.append(seen - t)
    tot = sum(shares) / len(shares) if shares else 0.0
    mean_delay = sum(delays) / len(delays) if delays else 0.0
    return tot, mean_delay, len(delays)
