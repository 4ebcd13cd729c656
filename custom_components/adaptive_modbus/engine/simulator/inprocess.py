"""A socket-free transport to simulated devices, for tests and virtual-time benchmarks.

:class:`InProcessTransport` implements the engine's ``Transport`` protocol by
calling :class:`SimulatedDevice` methods directly. It counts every request and,
given a ``latency`` model, adds the bus time of each request to its counters and
hands it to ``clock_advance`` so a virtual clock moves as a real bus would. It
never sleeps and never opens a socket.

``latency(kind, unit_id, count)`` returns the seconds one request takes on the
bus: ``kind`` is a :class:`RequestKind` (a ``str``), ``count`` the registers or
bits transferred (0 for an exception answer). A request to a unit that does not
answer costs ``timeout`` seconds instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ..errors import EngineUsageError, ModbusError, ModbusTimeout
from ..registers import Table
from .device import SimulatedDevice

Latency = Callable[[str, int, int], float]


class RequestKind(StrEnum):
    """What a request does on the bus (one Modbus function code each)."""

    READ_COILS = "read_coils"
    READ_DISCRETE_INPUTS = "read_discrete_inputs"
    READ_HOLDING_REGISTERS = "read_holding_registers"
    READ_INPUT_REGISTERS = "read_input_registers"
    WRITE_COIL = "write_coil"
    WRITE_REGISTERS = "write_registers"

    @property
    def function_code(self) -> int:
        """The Modbus function code of this kind of request."""
        return _FUNCTION_CODES[self]

    @property
    def is_bit(self) -> bool:
        """Whether ``count`` counts bits (coils, discrete inputs) rather than words."""
        return self in (
            RequestKind.READ_COILS,
            RequestKind.READ_DISCRETE_INPUTS,
            RequestKind.WRITE_COIL,
        )

    @classmethod
    def read(cls, table: Table) -> RequestKind:
        """Return the read request kind for ``table``."""
        return _READ_KINDS[table]


_FUNCTION_CODES: dict[RequestKind, int] = {
    RequestKind.READ_COILS: 1,
    RequestKind.READ_DISCRETE_INPUTS: 2,
    RequestKind.READ_HOLDING_REGISTERS: 3,
    RequestKind.READ_INPUT_REGISTERS: 4,
    RequestKind.WRITE_COIL: 5,
    RequestKind.WRITE_REGISTERS: 16,
}

_READ_KINDS: dict[Table, RequestKind] = {
    Table.COIL: RequestKind.READ_COILS,
    Table.DISCRETE: RequestKind.READ_DISCRETE_INPUTS,
    Table.HOLDING: RequestKind.READ_HOLDING_REGISTERS,
    Table.INPUT: RequestKind.READ_INPUT_REGISTERS,
}


@dataclass(slots=True)
class TransportCounters:
    """What went over the (virtual) bus since the last reset."""

    requests: int = 0  # every request sent, failed or not
    reads: int = 0
    writes: int = 0
    registers: int = 0  # 16-bit registers transferred by successful requests
    bits: int = 0  # coil / discrete bits transferred by successful requests
    errors: int = 0
    connects: int = 0
    bus_time: float = 0.0  # seconds, from the latency model and timeouts
    by_kind: Counter[str] = field(default_factory=Counter)


class InProcessTransport:
    """The engine's ``Transport`` protocol over one or more :class:`SimulatedDevice`.

    Requests are routed by unit id; an id no device answers to times out.
    Reading or writing while closed opens the connection first (counted in
    ``counters.connects``).
    """

    def __init__(
        self,
        device: SimulatedDevice | Sequence[SimulatedDevice],
        *,
        latency: Latency | None = None,
        clock_advance: Callable[[float], None] | None = None,
        timeout: float = 3.0,
        close_after_cycle: bool = False,
    ) -> None:
        """Serve ``device`` (one or several units) in this process."""
        devices = [device] if isinstance(device, SimulatedDevice) else list(device)
        self.devices: dict[int, SimulatedDevice] = {}
        for item in devices:
            if item.unit_id in self.devices:
                raise EngineUsageError(
                    f"two simulated devices answer to unit {item.unit_id}"
                )
            self.devices[item.unit_id] = item
        self.latency = latency
        self.clock_advance = clock_advance
        self.timeout = timeout
        self.close_after_cycle = close_after_cycle
        self.counters = TransportCounters()
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether the (virtual) connection is open."""
        return self._connected

    async def connect(self) -> None:
        """Open the connection (always succeeds in-process)."""
        if not self._connected:
            self._connected = True
            self.counters.connects += 1

    async def close(self) -> None:
        """Close the connection."""
        self._connected = False

    async def end_cycle(self) -> None:
        """End of a poll cycle: close the connection if configured to."""
        if self.close_after_cycle:
            await self.close()

    def reset_counters(self) -> None:
        """Start counting from zero."""
        self.counters = TransportCounters()

    # -- requests ------------------------------------------------------------

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read words (holding/input) or 0/1 bits (coil/discrete)."""
        kind = RequestKind.read(table)
        values = await self._request(
            kind, unit_id, count, lambda dev: dev.read(unit_id, table, address, count)
        )
        self.counters.reads += 1
        return values

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write holding registers from ``address``."""
        words = list(values)

        def call(device: SimulatedDevice) -> list[int]:
            device.write_registers(unit_id, address, words)
            return []

        await self._request(RequestKind.WRITE_REGISTERS, unit_id, len(words), call)
        self.counters.writes += 1

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Switch one coil."""

        def call(device: SimulatedDevice) -> list[int]:
            device.write_coil(unit_id, address, value)
            return []

        await self._request(RequestKind.WRITE_COIL, unit_id, 1, call)
        self.counters.writes += 1

    async def _request(
        self,
        kind: RequestKind,
        unit_id: int,
        count: int,
        call: Callable[[SimulatedDevice], list[int]],
    ) -> list[int]:
        """Run one request against the addressed device, counting it and its bus time."""
        await self.connect()
        self.counters.requests += 1
        self.counters.by_kind[kind] += 1
        try:
            result = call(self._device(unit_id))
        except ModbusTimeout:
            self.counters.errors += 1
            self._spend(self.timeout)
            raise
        except ModbusError:
            self.counters.errors += 1
            self._spend(self._bus_time(kind, unit_id, 0))
            raise
        if kind.is_bit:
            self.counters.bits += count
        else:
            self.counters.registers += count
        self._spend(self._bus_time(kind, unit_id, count))
        return result

    def _device(self, unit_id: int) -> SimulatedDevice:
        """Return the device at ``unit_id``; an absent unit never answers."""
        device = self.devices.get(unit_id)
        if device is None:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)
        return device

    def _bus_time(self, kind: RequestKind, unit_id: int, count: int) -> float:
        return 0.0 if self.latency is None else self.latency(kind, unit_id, count)

    def _spend(self, seconds: float) -> None:
        """Account ``seconds`` of bus time and advance the virtual clock by it."""
        if seconds <= 0:
            return
        self.counters.bus_time += seconds
        if self.clock_advance is not None:
            self.clock_advance(seconds)
