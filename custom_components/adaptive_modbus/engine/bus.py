"""Requests on the connection: each one timed, counted and recorded.

Every read and write goes through :class:`Bus`: it lands in the statistics (and the
cycle's tally), a read that answers feeds the cost fit and tells the block limits
how large a read the unit took.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
import logging

from .errors import ModbusError
from .faults import BlockLimits
from .planner import BlockRead, CostModel
from .registers import RegisterSpec, Table, Value
from .registry import single_read
from .schedule import EngineClock
from .stats import ErrorRecord, RequestRecord, StatsRecorder
from .transport import Transport

_LOGGER = logging.getLogger(__name__)

COST_SAMPLES = 64  # requests kept for fitting the connection's cost model
COST_MIN_SAMPLES = 8


@dataclass
class CycleState:
    """Accumulates the outcome of one cycle."""

    changed: dict[str, Value | None] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    errors: list[ErrorRecord] = field(default_factory=list)
    requests: int = 0
    registers_read: int = 0
    dead_units: set[int] = field(default_factory=set)
    connection_lost: bool = False
    # unit -> largest read that answered
    answered: dict[int, int] = field(default_factory=dict)
    halved: set[int] = field(default_factory=set)  # units whose limit a timeout halved
    internal_error: str | None = None


class CostEstimator:
    """Fits latency = overhead + per_unit * count over recent successful reads."""

    def __init__(self) -> None:
        """Start with no samples and no fitted model."""
        self.samples: deque[tuple[int, float]] = deque(maxlen=COST_SAMPLES)
        self._fresh = 0  # samples since the last fit
        self._model: CostModel | None = None

    def add(self, count: int, latency: float) -> None:
        """One successful read of ``count`` registers that took ``latency`` seconds."""
        self.samples.append((count, latency))
        self._fresh += 1

    def model(self) -> CostModel | None:
        """Return the fitted model, refitted after every COST_MIN_SAMPLES new samples."""
        if self._fresh >= COST_MIN_SAMPLES:
            self._fresh = 0
            self._model = self._fit()
        return self._model

    def seed(self, samples: Iterable[tuple[int, float]]) -> None:
        """Start from another estimator's samples (a shadow replay of a live engine).

        The model is fitted from them at once, so the first plans already use it;
        the seeded samples then age out like measured ones.
        """
        self.samples.extend((int(count), float(latency)) for count, latency in samples)
        self._fresh = 0
        self._model = self._fit()

    def _fit(self) -> CostModel | None:
        if len(self.samples) < COST_MIN_SAMPLES:
            return None
        n = len(self.samples)
        mean_x = sum(c for c, _ in self.samples) / n
        mean_y = sum(lat for _, lat in self.samples) / n
        var_x = sum((c - mean_x) ** 2 for c, _ in self.samples)
        if mean_y <= 0:
            return None
        slope = 0.0
        if var_x > 0:
            cov = sum((c - mean_x) * (lat - mean_y) for c, lat in self.samples)
            slope = max(0.0, cov / var_x)
        overhead = max(mean_y - slope * mean_x, 0.1 * mean_y)
        return CostModel.from_timing(overhead, slope)


class Bus:
    """The engine's side of the transport: one request at a time, each recorded."""

    def __init__(
        self,
        transport: Transport,
        clock: EngineClock,
        stats: StatsRecorder,
        limits: BlockLimits,
    ) -> None:
        """Send requests through ``transport``, recording them in ``stats``."""
        self._transport = transport
        self._clock = clock
        self._stats = stats
        self._limits = limits
        self.cost = CostEstimator()

    def _record(
        self,
        where: BlockRead,
        t0: float,
        error: ModbusError | None = None,
        *,
        write: bool = False,
    ) -> ErrorRecord | None:
        """Count one request that started at ``t0``; keep its error, if any."""
        t1 = self._clock.now()
        unit, table, address, count = (
            where.unit_id,
            where.table,
            where.address,
            where.count,
        )
        self._stats.add_request(
            RequestRecord(
                t1, unit, table, address, count, t1 - t0, error is None, write
            )
        )
        if error is None:
            return None
        record = ErrorRecord(t1, error.kind, unit, table, address, count, str(error))
        self._stats.add_error(record)
        return record

    async def read(
        self, block: BlockRead, cycle: CycleState
    ) -> list[int] | ModbusError:
        """One request; records it; returns the raw data or the error."""
        t0 = self._clock.now()
        cycle.requests += 1
        try:
            raw = await self._transport.read(
                block.unit_id, block.table, block.address, block.count
            )
        except ModbusError as err:
            record = self._record(block, t0, err)
            assert record is not None
            cycle.errors.append(record)
            return err
        self.cost.add(block.count, self._clock.now() - t0)
        self._record(block, t0)
        # the unit is alive, and a learned limit may grow
        size = 1 if block.table.is_bit else block.count
        cycle.answered[block.unit_id] = max(cycle.answered.get(block.unit_id, 0), size)
        self._limits.answered(block.unit_id, size)
        cycle.registers_read += block.count
        return raw

    async def write(self, spec: RegisterSpec, words: list[int]) -> None:
        """Write a register's words (a coil: its first word); record the request.

        Raises the transport's :class:`ModbusError`.
        """
        block = single_read(spec)
        t0 = self._clock.now()
        try:
            if spec.table is Table.COIL:
                await self._transport.write_coil(
                    spec.unit_id, spec.address, bool(words[0])
                )
            else:
                await self._transport.write_registers(spec.unit_id, spec.address, words)
        except ModbusError as err:
            self._record(block, t0, err, write=True)
            raise
        self._record(block, t0, write=True)

    async def connect_for_probe(self) -> None:
        """Open the connection for a unit probe despite the reconnect backoff.

        The transport's backoff grows to a minute; this way a down unit really is
        tried every UNIT_PROBE_MAX s at most. A transport without ``probe()`` just
        reads.
        """
        probe = getattr(self._transport, "probe", None)
        if probe is not None and not self._transport.connected:
            # False: the read that follows fails with the connection error
            await probe()

    async def end_cycle(self) -> None:
        """Tell the transport a cycle is over (it may close an idle connection)."""
        try:
            await self._transport.end_cycle()
        except ModbusError as err:  # closing a dead connection is not worth a failure
            _LOGGER.debug("end of cycle: %s", err)
