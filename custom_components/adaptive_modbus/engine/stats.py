"""Engine statistics: bounded ring buffers inside, immutable snapshots outside.

The snapshot classes here are the only read API that sensors, diagnostics,
visualization and the optimizer use. They are frozen and built on demand by
``PollEngine.snapshot()``; nothing outside the engine reaches into its state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
import math
from typing import Any, NamedTuple

from .errors import ErrorKind
from .intervals import IntervalDecision, IntervalPin
from .registers import Table, Value

RECENT_REQUESTS = 512
RECENT_ERRORS = 100
RECENT_INTERVAL_CHANGES = 200
RECENT_CYCLES = 120
# seconds over which per-minute rates and latency figures are computed
RATE_WINDOW = 600.0

# Modbus TCP: 7-byte MBAP header + function code + fields
_TCP_REQUEST_BYTES = 12
_TCP_RESPONSE_HEADER = 9


def frame_bytes(table: Table, count: int) -> int:
    """Bytes on the wire (Modbus TCP ADUs) of one read of ``count`` registers or bits."""
    payload = math.ceil(count / 8) if table.is_bit else 2 * count
    return _TCP_REQUEST_BYTES + _TCP_RESPONSE_HEADER + payload


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One Modbus request as the engine saw it."""

    at: float
    unit_id: int
    table: Table
    address: int
    count: int
    latency: float
    ok: bool
    write: bool = False


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One failed request."""

    at: float
    kind: ErrorKind
    unit_id: int
    table: Table | None
    address: int | None
    count: int
    message: str


@dataclass(frozen=True, slots=True)
class IntervalChange:
    """A register's polling interval changed, and why."""

    at: float
    uid: str
    previous: float
    interval: float
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """Totals of one poll cycle."""

    started: float
    duration: float
    requests: int
    registers_read: int
    changed: int
    errors: int


@dataclass(frozen=True, slots=True)
class RegisterSnapshot:
    """State of one register at snapshot time."""

    uid: str
    key: str
    unit_id: int
    table: Table
    address: int
    size: int
    enabled: bool
    value: Value | None
    last_read: float | None
    last_change: float | None
    next_due: float | None
    interval: float
    effective_interval: float
    reason: str
    detail: str
    tolerance: float
    rate: float
    noise: float
    noisy: bool
    pattern_factor: float
    reads: int
    changes: int
    errors: int
    failure_streak: int
    quarantined_until: float | None
    pinned: IntervalPin | None = None  # a user's pin on the interval, if any
    # the interval fixed polling reads it at: the snapshot's fixed interval within
    # the register's own bounds from its map (None: the fixed interval itself)
    fixed_interval: float | None = None


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """A group of registers that one block read covers when all are due."""

    unit_id: int
    table: Table
    address: int
    count: int
    uids: tuple[str, ...]
    min_interval: float
    requests: int


@dataclass(frozen=True, slots=True)
class Totals:
    """Counters since the engine started."""

    cycles: int = 0
    requests: int = 0
    registers_read: int = 0
    bytes: int = 0
    errors: int = 0
    writes: int = 0
    interval_changes: int = 0
    state_changes: int = 0
    internal_errors: int = 0  # unexpected (non-Modbus) exceptions in poll cycles


@dataclass(frozen=True, slots=True)
class UnitTotals:
    """Counters of one unit id (device) since the engine started."""

    requests: int = 0
    registers_read: int = 0
    bytes: int = 0
    errors: int = 0
    writes: int = 0


@dataclass(frozen=True, slots=True)
class UnitStatus:
    """A unit that stopped answering: probed alone until it answers again.

    ``down_since`` and ``next_probe`` are wall times (display).
    """

    unit_id: int
    down_since: float
    next_probe: float
    probe_backoff: float
    probes: int


def _percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Everything the engine knows, frozen at ``at``."""

    at: float
    adaptive: bool
    fixed_interval: float
    registers: Mapping[str, RegisterSnapshot]
    clusters: tuple[ClusterSnapshot, ...]
    totals: Totals
    holes: Mapping[str, tuple[int, ...]]
    units: Mapping[int, UnitTotals] = field(default_factory=dict)
    recent_requests: tuple[RequestRecord, ...] = field(default_factory=tuple)
    recent_errors: tuple[ErrorRecord, ...] = field(default_factory=tuple)
    recent_interval_changes: tuple[IntervalChange, ...] = field(default_factory=tuple)
    recent_cycles: tuple[CycleRecord, ...] = field(default_factory=tuple)
    wall_at: float | None = None  # wall time at ``at`` (None: same clock)
    units_down: Mapping[int, UnitStatus] = field(default_factory=dict)
    last_internal_error: str | None = None
    viewed: Mapping[int, int] = field(default_factory=dict)  # unit -> live viewers

    def to_wall(self, t: float) -> float:
        """Return an engine time (``at``, record times) as wall time."""
        return t if self.wall_at is None else t + (self.wall_at - self.at)

    def _window(self, window: float = RATE_WINDOW) -> list[RequestRecord]:
        return [r for r in self.recent_requests if r.at >= self.at - window]

    def _span(self, records: Sequence[RequestRecord], window: float) -> float:
        if not records:
            return window
        return max(1.0, min(window, self.at - records[0].at))

    @property
    def requests_per_minute(self) -> float:
        """Requests per minute over the rate window."""
        records = self._window()
        return 60.0 * len(records) / self._span(records, RATE_WINDOW)

    @property
    def bus_utilisation(self) -> float:
        """Percent of wall time the connection spent waiting on requests."""
        records = self._window()
        busy = sum(r.latency for r in records)
        return min(100.0, 100.0 * busy / self._span(records, RATE_WINDOW))

    @property
    def mean_latency(self) -> float:
        """Mean request latency (seconds) of successful requests in the window."""
        latencies = [r.latency for r in self._window() if r.ok]
        return sum(latencies) / len(latencies) if latencies else 0.0

    @property
    def p95_latency(self) -> float:
        """95th percentile request latency (seconds) in the window."""
        return _percentile([r.latency for r in self._window() if r.ok], 0.95)

    @property
    def error_rate(self) -> float:
        """Percent of requests in the window that failed."""
        records = self._window()
        if not records:
            return 0.0
        return 100.0 * sum(1 for r in records if not r.ok) / len(records)

    @property
    def registers_per_request(self) -> float:
        """Registers (or bits) transferred per successful read in the window."""
        reads = [r for r in self._window() if r.ok and not r.write]
        return sum(r.count for r in reads) / len(reads) if reads else 0.0

    def fixed_interval_of(self, reg: RegisterSnapshot) -> float:
        """How often fixed polling reads ``reg``: the fixed interval, within its map's bounds."""
        return self.fixed_interval if reg.fixed_interval is None else reg.fixed_interval

    @property
    def fixed_reads_per_second(self) -> float:
        """Reads per second of fixed polling: each enabled register per its fixed interval."""
        if self.fixed_interval <= 0:
            return 0.0
        return sum(
            1.0 / self.fixed_interval_of(r)
            for r in self.registers.values()
            if r.enabled
        )

    @property
    def fixed_requests_per_minute(self) -> float:
        """What one-request-per-register polling at ``fixed_interval`` would send.

        Each register at the fixed interval within its map's own bounds (an alarm the
        map reads at least every 10 s: every 10 s), as HA core's per-entity scan
        intervals would be set for the same map.
        """
        return 60.0 * self.fixed_reads_per_second

    @property
    def saving_vs_fixed(self) -> float:
        """Percent fewer requests than fixed per-register polling (HA core's way)."""
        fixed = self.fixed_requests_per_minute
        if fixed <= 0:
            return 0.0
        return max(-1000.0, 100.0 * (1.0 - self.requests_per_minute / fixed))

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe view for diagnostics and export."""
        return {
            "at": self.at,
            "wall_at": self.to_wall(self.at),
            "adaptive": self.adaptive,
            "totals": _plain(self.totals),
            "units": {str(unit): _plain(totals) for unit, totals in self.units.items()},
            "rates": {
                "requests_per_minute": round(self.requests_per_minute, 3),
                "bus_utilisation_percent": round(self.bus_utilisation, 3),
                "mean_latency_ms": round(1000 * self.mean_latency, 3),
                "p95_latency_ms": round(1000 * self.p95_latency, 3),
                "error_rate_percent": round(self.error_rate, 3),
                "registers_per_request": round(self.registers_per_request, 3),
                "saving_vs_fixed_percent": round(self.saving_vs_fixed, 3),
            },
            "registers": {uid: _plain(r) for uid, r in self.registers.items()},
            "clusters": [_plain(c) for c in self.clusters],
            "holes": {k: list(v) for k, v in self.holes.items()},
            "units_down": {str(unit): _plain(s) for unit, s in self.units_down.items()},
            "last_internal_error": self.last_internal_error,
            "viewed": {str(unit): n for unit, n in self.viewed.items()},
            "recent_errors": [_plain(e) for e in self.recent_errors],
            "recent_interval_changes": [
                _plain(c) for c in self.recent_interval_changes
            ],
            "recent_cycles": [_plain(c) for c in self.recent_cycles],
        }


def _plain(obj: Any) -> Any:
    """Dataclass -> dict of JSON-safe values."""
    if hasattr(obj, "__dataclass_fields__"):
        return {name: _plain(getattr(obj, name)) for name in obj.__dataclass_fields__}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class _PendingChange(NamedTuple):
    """An interval change whose record (and detail text) is not built yet.

    A named tuple: one is made on nearly every read, and a tuple is the cheapest.
    """

    at: float
    uid: str
    previous: float
    decision: IntervalDecision

    def build(self) -> IntervalChange:
        decision = self.decision
        return IntervalChange(
            self.at, self.uid, self.previous, decision.interval,
            str(decision.reason), decision.detail,
        )  # fmt: skip


class StatsRecorder:
    """Mutable, bounded recorder owned by the engine."""

    def __init__(self) -> None:
        """Start with empty ring buffers and zero counters."""
        self.requests: deque[RequestRecord] = deque(maxlen=RECENT_REQUESTS)
        self.errors: deque[ErrorRecord] = deque(maxlen=RECENT_ERRORS)
        self.interval_changes: deque[IntervalChange | _PendingChange] = deque(
            maxlen=RECENT_INTERVAL_CHANGES
        )
        self.cycles: deque[CycleRecord] = deque(maxlen=RECENT_CYCLES)
        self._counts = dict.fromkeys(Totals.__dataclass_fields__, 0)
        self._unit_counts: dict[int, dict[str, int]] = {}

    @property
    def units(self) -> dict[int, UnitTotals]:
        """Frozen per-unit counters."""
        return {unit: UnitTotals(**c) for unit, c in sorted(self._unit_counts.items())}

    @property
    def totals(self) -> Totals:
        """Frozen copy of the counters."""
        return Totals(**self._counts)

    def add_request(self, record: RequestRecord) -> None:
        """Count one request (read or write)."""
        self.requests.append(record)
        ok_read = record.ok and not record.write
        deltas = {
            "requests": 1,
            "registers_read": record.count if ok_read else 0,
            "bytes": frame_bytes(record.table, record.count),
            "errors": 0 if record.ok else 1,
            "writes": 1 if record.write else 0,
        }
        self._bump(**deltas)
        unit = self._unit_counts.setdefault(
            record.unit_id, dict.fromkeys(UnitTotals.__dataclass_fields__, 0)
        )
        for name, delta in deltas.items():
            unit[name] += delta

    def unit_reads(self) -> dict[int, int]:
        """Return the registers (or bits) read so far per unit id."""
        return {unit: c["registers_read"] for unit, c in self._unit_counts.items()}

    def add_internal_error(self) -> None:
        """Count an unexpected exception in a poll cycle."""
        self._bump(internal_errors=1)

    def add_error(self, record: ErrorRecord) -> None:
        """Keep a failed request for diagnostics."""
        self.errors.append(record)

    def add_interval_change(self, change: IntervalChange) -> None:
        """Keep an interval decision for visualization."""
        self.interval_changes.append(change)
        self._bump(interval_changes=1)

    def add_interval_decision(
        self, at: float, uid: str, previous: float, decision: IntervalDecision
    ) -> None:
        """Keep an interval decision; its record is built when first looked at.

        Most are pushed out of the ring unread: their details are never formatted.
        """
        self.interval_changes.append(_PendingChange(at, uid, previous, decision))
        self._counts["interval_changes"] += 1  # as _bump, without the keywords

    def recent_interval_changes(self) -> tuple[IntervalChange, ...]:
        """Return the kept interval changes, oldest first."""
        changes = self.interval_changes
        out: list[IntervalChange] = []
        for index, change in enumerate(changes):
            if isinstance(change, _PendingChange):
                built = changes[index] = change.build()
                out.append(built)
            else:
                out.append(change)
        return tuple(out)

    def add_cycle(self, record: CycleRecord) -> None:
        """Count one poll cycle."""
        self.cycles.append(record)
        self._bump(cycles=1, state_changes=record.changed)

    def _bump(self, **deltas: int) -> None:
        counts = self._counts
        for name, delta in deltas.items():
            counts[name] += delta


def sorted_snapshots(items: Iterable[RegisterSnapshot]) -> dict[str, RegisterSnapshot]:
    """Register snapshots keyed by uid in (unit, table, address) order."""
    ordered = sorted(items, key=lambda r: (r.unit_id, r.table.value, r.address, r.uid))
    return {r.uid: r for r in ordered}
