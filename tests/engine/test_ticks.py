"""Tick lock: a register crossing its tolerance at a steady rate is read right after.

A scripted device on a virtual clock serves one register whose value is a function
of time (a counter, a trend); the test compares each crossing of the tolerance band
(a chain of levels from the value at t=0, the way the benchmark counts changes)
with the engine's next read of it, with the lock on and off.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import struct

from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.ticks import ANCHORS, _Track

from .scripted import ReadOnlyTransport
from .test_scheduler import VirtualClock, run_until

UID = "1.meter"


class SignalDevice(ReadOnlyTransport):
    """A transport serving ``signal(t)`` at holding register 0 (uint16 or float32).

    The words after it (a power register at 2, read every 5 s) are 0.
    """

    def __init__(
        self,
        clock: VirtualClock,
        signal: Callable[[float], float],
        *,
        real: bool,
        scale: float,
    ) -> None:
        """Serve ``signal`` (its words: the value over ``scale``); log the reads."""
        self.clock, self.signal, self.real, self.scale = clock, signal, real, scale
        self.reads: list[float] = []  # requests that read the meter
        self.requests = 0

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Return the signal's words now."""
        words = [0] * (address + count)
        value = self.signal(self.clock.t)
        if self.real:
            words[:2] = struct.unpack(">HH", struct.pack(">f", value))
        else:
            words[0] = round(value / self.scale)
        self.requests += 1
        if address == 0:
            self.reads.append(self.clock.t)
        return words[address:]


def _run_engine(
    signal: Callable[[float], float],
    *,
    tolerance: float,
    real: bool = False,
    lock: bool = True,
    scale: float = 1.0,
) -> tuple[PollEngine, SignalDevice, VirtualClock]:
    clock = VirtualClock(0.0)
    device = SignalDevice(clock, signal, real=real, scale=scale)
    kind = DataType.FLOAT32 if real else DataType.UINT16
    specs = [
        RegisterSpec(
            "meter", 1, Table.HOLDING, 0, kind, tolerance=tolerance, scale=scale
        ),
        RegisterSpec("power", 1, Table.HOLDING, 2, DataType.UINT16, tolerance=1.0),
    ]
    engine = PollEngine(
        specs,
        device,  # type: ignore[arg-type]
        clock,
        EngineConfig(
            max_interval=300.0, patterns=False, rider_value=0.0, tick_lock=lock
        ),
    )
    # read every 5 s (a busy power): every request reads it, the meter's reads
    # (free-running on its grid, or locked) go out with it; no riders, so the
    # meter is read when it is due, not with every read of power
    engine.pin_interval("1.power", interval=5.0)
    return engine, device, clock


def _crossings(
    signal: Callable[[float], float], tolerance: float, until: int
) -> list[float]:
    """Seconds at which the signal leaves the band around its value at the last one."""
    ref, out = signal(0.0), []
    for s in range(1, until + 1):
        value = signal(float(s))
        if abs(value - ref) > tolerance:
            ref = value
            out.append(float(s))
    return out


def _delays(reads: list[float], crossings: list[float], after: float) -> list[float]:
    """Time from each crossing after ``after`` to the next read."""
    out = []
    for c in crossings:
        if c <= after:
            continue
        later = [t for t in reads if t >= c]
        if later:
            out.append(later[0] - c)
    return out


def counter(t: float) -> float:
    """Count one every 13 s: 9 (the tolerance) is crossed every 130 s."""
    return float(math.floor(t / 13.0))


async def test_steady_counter_is_read_right_after_each_crossing() -> None:
    """Test that a locked counter is read within a grid step of each crossing, for free.

    The lock adds a read right after each crossing to a request that goes out
    anyway (power's): the same requests, shorter delays.
    """
    delays, requests = {}, {}
    for lock in (True, False):
        engine, device, clock = _run_engine(counter, tolerance=9.0, lock=lock)
        await run_until(engine, clock, 7200.0)
        crossings = _crossings(counter, 9.0, 7200)
        assert len(crossings) == 55  # every 130 s
        delays[lock] = _delays(device.reads, crossings, after=1800.0)
        requests[lock] = device.requests
        if lock:
            assert engine._ticks.stats.locked_reads > 0  # noqa: SLF001
    # locked: read within one minimum interval (5 s, the grid) and half a count's
    # time (6.5 s: when in its count the last read came is not known) of every
    # crossing
    assert max(delays[True]) <= 11.5
    # free running (the engine before): crossings wait a share of the interval
    assert max(delays[False]) > 15.0
    assert sum(delays[True]) < sum(delays[False]) / 2
    assert requests[True] == requests[False]  # power's, every 5 s


async def test_steady_trend_is_read_right_after_each_crossing() -> None:
    """Test that a falling temperature (a tank cooling, 0.1 °C steps) locks the same way."""

    def trend(t: float) -> float:
        return 60.0 - 0.1 * math.floor(t / 23.0)  # 0.5 crossed every 6 steps: 138 s

    engine, device, clock = _run_engine(trend, tolerance=0.5, scale=0.1)
    await run_until(engine, clock, 7200.0)
    crossings = _crossings(trend, 0.5, 7200)
    delays = _delays(device.reads, crossings, after=1800.0)
    assert len(delays) >= 38
    assert max(delays) <= 5.0 + 23.0 / 2


def test_float_registers_are_not_locked() -> None:
    """Test that a float register gets no chain: when it crosses depends on its updates."""
    engine, _, _ = _run_engine(counter, tolerance=9.0, real=True)
    ticks = engine._ticks  # noqa: SLF001
    assert ticks._track("1.meter") is None  # noqa: SLF001
    assert ticks._track("1.power") is not None  # noqa: SLF001  (an integer)


async def test_unsteady_counter_falls_back_to_the_interval_model() -> None:
    """Test that a counter whose rate changes threefold at every crossing never locks."""

    def unsteady(t: float) -> float:
        # 10 counts in 60 s, then 10 in 180 s, and so on
        period, t = 240.0, t % 240.0
        base = math.floor(t / period) * 20
        step = t / 6.0 if t < 60.0 else 10.0 + (t - 60.0) / 18.0
        return float(base + math.floor(step))

    def signal(t: float) -> float:
        return 20.0 * math.floor(t / 240.0) + unsteady(t)

    runs = {}
    for lock in (True, False):
        engine, device, clock = _run_engine(signal, tolerance=9.0, lock=lock)
        await run_until(engine, clock, 3600.0)
        runs[lock] = device.reads
        if lock:
            assert engine._ticks.stats.locked_reads == 0  # noqa: SLF001
    assert runs[True] == runs[False]


def test_chain_follows_float_rounding_and_late_reads() -> None:
    """Test the chain's levels: the first value beyond the tolerance as floats compare."""
    track = _Track(tolerance=0.1, quantum=0.01)
    track.observe(0.0, 10542.69)
    track.observe(60.0, 10542.79)  # 0.1 apart as the floats say: beyond 0.1
    assert abs(10542.79 - 10542.69) > 0.1
    assert track.ref == 10542.79
    assert track.anchors == [(60.0, 10542.79)]
    # a late read past two crossings: the chain moves on two levels, not to the read
    track.observe(300.0, 10543.04)
    assert track.ref is not None and abs(track.ref - 10543.01) < 0.011
    assert not track.single
    assert track.rate() is None  # several crossings in one read: not steady


def test_lock_needs_steady_anchors_and_drops_on_a_reversal() -> None:
    """Test that the lock holds after ANCHORS steady crossings and drops on reversal."""
    track = _Track(tolerance=9.0, quantum=1.0)
    track.observe(0.0, 0.0)
    for k in range(1, ANCHORS + 1):
        assert track.expected() is None
        track.observe(120.0 * k, 10.0 * k)
    expected = track.expected()
    assert expected is not None
    # from the last crossing (10·ANCHORS at 120·ANCHORS s): 10 counts at 1/12 per s,
    # less half a count (the phase within a count is not known)
    assert abs(expected - (120.0 * ANCHORS + 114.0)) < 1e-6
    track.observe(120.0 * ANCHORS + 30.0, 10.0 * ANCHORS - 1.0)  # went back
    assert track.expected() is None


async def test_no_read_across_a_hole_is_added() -> None:
    """Test that a counter behind a learned hole from the 5 s reads is not locked.

    The reads of power cannot cover the meter with a hole between them: a locked
    read would cost a request of its own, so the lock adds none.
    """
    runs = {}
    for lock in (True, False):
        engine, device, clock = _run_engine(counter, tolerance=9.0, lock=lock)
        core = engine._core  # noqa: SLF001
        core.holes.by_table[(1, Table.HOLDING)] = {1}
        await run_until(engine, clock, 3600.0)
        runs[lock] = (device.requests, device.reads)
        if lock:
            assert engine._ticks.stats.locked_reads == 0  # noqa: SLF001
    assert runs[True] == runs[False]
