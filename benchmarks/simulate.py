"""Drive one policy through one scenario in virtual time and record what it shows.

The driver loop is the coordinator's: ``t = engine.next_due()``, move the virtual
clock to ``t``, ``await engine.poll_due(t)``. The in-process transport advances the
same clock by each exchange's bus time (from :class:`~benchmarks.bus.BusModel`), so
a busy serial bus really delays the following reads. After every cycle the value
the engine exposes for each register just read is recorded with the cycle's end
time: that is the value an entity would show from then on.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import sys
import time
from typing import TYPE_CHECKING, Any

from adaptive_modbus_engine.audit import Actor, AuditLog
from adaptive_modbus_engine.optimizer import Optimizer
from adaptive_modbus_engine.registers import RegisterSpec, Table
from adaptive_modbus_engine.replay import VirtualClock, as_float, drive
from adaptive_modbus_engine.scheduler import CycleResult, EngineConfig, PollEngine
from adaptive_modbus_engine.simulator.inprocess import InProcessTransport, RequestKind

from .bus import BusModel
from .scenarios import Scenario

if TYPE_CHECKING:
    from .metrics import MetricsStream

ReadKey = tuple[int, Table]
#: the simulated user of ``adaptive+optimizer+approve``
APPROVER = Actor.user("benchmark", "approves every proposal")


@dataclass
class RunRecord:
    """What one policy did on one scenario."""

    policy: str
    # per spec row: read times, values shown
    reads: list[tuple[list[float], list[float]]]
    requests: int = 0
    registers: int = 0
    bus_time: float = 0.0
    errors: int = 0
    cycles: int = 0
    cpu_seconds: float = 0.0
    # (cycle end, requests)
    timeline: list[tuple[float, int]] = field(default_factory=list)
    optimizer: dict[str, Any] | None = None  # the loop's statistics at the end
    # every request: the time it was issued and its bus time (s), for windowed figures
    sent_at: array[float] = field(default_factory=lambda: array("d"))
    sent_bus: array[float] = field(default_factory=lambda: array("d"))
    # the metrics taken as the run went (``run_engine(..., chunk=...)``), or None
    stream: MetricsStream | None = None

    def sent(self, when: float, seconds: float) -> None:
        """Log one request issued at ``when`` that took ``seconds`` of bus time."""
        self.sent_at.append(when)
        self.sent_bus.append(seconds)


class RecordingTransport:
    """Delegates to the in-process transport and remembers the reads of a cycle."""

    def __init__(self, inner: InProcessTransport) -> None:
        """Wrap ``inner`` with an empty read log."""
        self.inner = inner
        self.reads: list[tuple[int, Table, int, int]] = []

    @property
    def connected(self) -> bool:
        """Whether the wrapped transport is connected."""
        return self.inner.connected

    async def connect(self) -> None:
        """Connect the wrapped transport."""
        await self.inner.connect()

    async def close(self) -> None:
        """Close the wrapped transport."""
        await self.inner.close()

    async def end_cycle(self) -> None:
        """Forward the end of a cycle."""
        await self.inner.end_cycle()

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read and remember the span (successful reads only)."""
        words = await self.inner.read(unit_id, table, address, count)
        self.reads.append((unit_id, table, address, count))
        return words

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Forward a write."""
        await self.inner.write_registers(unit_id, address, values)

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Forward a coil write."""
        await self.inner.write_coil(unit_id, address, value)


def bus_latency(bus: BusModel) -> Callable[[str, int, int], float]:
    """Return the in-process transport's latency hook for ``bus``."""

    def latency(kind: str, unit_id: int, count: int) -> float:
        if count == 0 and not str(kind).startswith("write"):
            return bus.exception_time()
        return bus.exchange_time(RequestKind(kind).function_code, count)

    return latency


class SpanIndex:
    """Which spec rows lie wholly inside a read span."""

    def __init__(self, specs: Sequence[RegisterSpec]) -> None:
        """Index the spec rows by unit, table and address."""
        groups: dict[ReadKey, list[tuple[int, int, int]]] = {}
        for row, spec in enumerate(specs):
            groups.setdefault((spec.unit_id, spec.table), []).append(
                (spec.address, spec.end, row)
            )
        self._groups = {key: sorted(items) for key, items in groups.items()}
        self._starts = {
            key: [a for a, _, _ in items] for key, items in self._groups.items()
        }

    def rows(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Spec rows read by a span."""
        items = self._groups.get((unit_id, table))
        if not items:
            return []
        starts = self._starts[(unit_id, table)]
        end = address + count
        lo, hi = bisect_left(starts, address), bisect_right(starts, end - 1)
        return [row for _, stop, row in items[lo:hi] if stop <= end]


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` at once (the optimizer's executor in virtual time)."""
    return fn(*args)


class Progress:
    """A one-line progress indicator on stderr (only when it is a terminal or forced)."""

    def __init__(self, label: str, total: float, enabled: bool) -> None:
        """Show progress of ``label`` towards ``total`` when ``enabled``."""
        self.label = label
        self.total = max(total, 1e-9)
        self.enabled = enabled
        self._last = 0.0

    def update(self, done: float) -> None:
        """Show progress if a quarter second passed since the last update."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        sys.stderr.write(f"\r  {self.label}: {min(done / self.total, 1.0):6.1%}")
        sys.stderr.flush()

    def close(self) -> None:
        """End the progress line."""
        if self.enabled:
            sys.stderr.write(f"\r  {self.label}: done   \n")
            sys.stderr.flush()


async def run_engine(
    scenario: Scenario,
    config: EngineConfig,
    policy: str,
    *,
    progress: bool = False,
    index: SpanIndex | None = None,
    phase: float = 0.0,
    optimizer: bool = False,
    approve: bool = False,
    chunk: int | None = None,
) -> RunRecord:
    """Run the real ``PollEngine`` over the scenario's duration in virtual time.

    ``phase`` shifts the engine's clock ahead of the scenario's by that many seconds.
    The engine aligns its reads to multiples of their interval on its own clock, so
    its ticks fall ``phase`` seconds off the round times a log may change on (the
    devices and the metrics keep the scenario's clock). ``optimizer`` runs the
    optimization loop beside the engine, ticked after every cycle; its shadow
    replays run inline (virtual time does not move while they compute).
    ``approve`` (with ``optimizer``) plays a user who approves every proposal that
    needs approval (a tolerance raise) right after the cycle that made it.

    ``chunk`` streams the metrics: every ``chunk`` seconds of the run the record's
    reads and request log go into a :class:`~benchmarks.metrics.MetricsStream`
    (``record.stream``; :func:`~benchmarks.metrics.compute` finishes it) and are
    dropped, so memory stays bounded by the chunk however long the run; the cycle
    timeline is dropped too unless the scenario has a day mask (its day and night
    figures need it). Without ``chunk`` the record keeps everything.
    """
    clock = VirtualClock(scenario.start)
    units: list[Any] = scenario.make_units(clock.now)
    record = RunRecord(policy=policy, reads=[([], []) for _ in scenario.specs])

    def spend(seconds: float) -> None:
        # the transport spends each request's bus time (or timeout) in one call
        record.sent(clock.now(), seconds)
        clock.advance(seconds)

    inner = InProcessTransport(
        units,
        latency=bus_latency(scenario.bus),
        clock_advance=spend,
        timeout=scenario.bus.timeout,
    )
    transport = RecordingTransport(inner)

    def engine_clock() -> float:
        return clock.now() + phase

    engine = PollEngine(list(scenario.specs), transport, engine_clock, config)
    index = index or SpanIndex(scenario.specs)
    uids = [spec.uid for spec in scenario.specs]
    end = scenario.start + scenario.duration
    bar = Progress(f"{scenario.name} / {policy}", scenario.duration, progress)
    if chunk is not None:
        from .metrics import MetricsStream  # noqa: PLC0415 - metrics imports this module

        record.stream = MetricsStream(scenario, chunk=chunk)
    flush_at = scenario.start + (chunk or 0)
    metrics_cpu = 0.0  # the stream's share, left out of the run's CPU time
    cpu0 = time.process_time()
    counters = inner.counters

    async def on_cycle(result: CycleResult, shown_at: float) -> None:
        nonlocal flush_at, metrics_cpu
        stream = record.stream
        if stream is not None and chunk is not None and shown_at >= flush_at:
            # every read before this cycle is logged: take the seconds before it
            upto = int(shown_at - scenario.start)
            if scenario.start + upto > shown_at:  # the difference rounded up
                upto -= 1
            fed = time.process_time()
            stream.feed(record, upto, consume=True)
            metrics_cpu += time.process_time() - fed
            if scenario.day is None:
                record.timeline.clear()
            flush_at = scenario.start + upto + chunk
        record.cycles += 1
        record.timeline.append((shown_at, result.requests))
        for read in transport.reads:
            for row in index.rows(*read):
                times, values = record.reads[row]
                times.append(shown_at)
                values.append(as_float(engine.value(uids[row])))
        transport.reads.clear()
        bar.update(shown_at - scenario.start)
        if loop is not None:
            await loop.tick(shown_at + phase, run_in_executor=inline)
            if approve:
                for proposal_id in list(loop.awaiting):
                    loop.approve(proposal_id, actor=APPROVER)

    loop = (
        Optimizer(
            engine,
            audit=AuditLog(wall_clock=engine_clock),
            clock=engine_clock,
            wall_clock=engine_clock,
        )
        if optimizer
        else None
    )
    await drive(engine, clock, end, phase=phase, on_cycle=on_cycle, label=policy)
    bar.close()
    if loop is not None:
        record.optimizer = loop.statistics()
    record.cpu_seconds = time.process_time() - cpu0 - metrics_cpu
    record.requests = counters.requests
    record.registers = counters.registers + counters.bits
    record.bus_time = counters.bus_time
    record.errors = counters.errors
    return record
