"""Bus timing model and a metering transport wrapper.

Serial RTU: every character is ``bits_per_char`` bits (11: start, 8 data, parity or a
second stop bit, stop), frames are separated by a 3.5-character silence (fixed at
1.75 ms above 19200 baud, as the Modbus serial line specification says), and frame
sizes follow the function code. Modbus TCP: a device (or gateway) turnaround per
request plus the frames on the wire. :class:`MeteredTransport` wraps any
``Transport``, advances the virtual clock by each exchange's bus time and counts
requests, registers and bus time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
import math
from typing import Any

from adaptive_modbus_engine.errors import ModbusError, ModbusTimeout
from adaptive_modbus_engine.planner import CostModel
from adaptive_modbus_engine.registers import Table

#: Bytes of a Modbus TCP MBAP header replacing the RTU address byte and CRC (3 bytes).
_MBAP_EXTRA = 7 - 3
#: TCP/IP + Ethernet framing per segment, bytes (for the wire time of TCP frames).
_TCP_IP_OVERHEAD = 54

FC_READ_COILS = 1
FC_READ_DISCRETE = 2
FC_READ_HOLDING = 3
FC_READ_INPUT = 4
FC_WRITE_COIL = 5
FC_WRITE_REGISTERS = 16

_READ_FC = {
    Table.COIL: FC_READ_COILS,
    Table.DISCRETE: FC_READ_DISCRETE,
    Table.HOLDING: FC_READ_HOLDING,
    Table.INPUT: FC_READ_INPUT,
}


class BusKind(StrEnum):
    """Physical link of the modelled bus."""

    RTU = "rtu"
    TCP = "tcp"


def rtu_frame_sizes(function_code: int, count: int) -> tuple[int, int]:
    """Request and response RTU frame sizes in bytes (address + PDU + CRC)."""
    if function_code in (FC_READ_COILS, FC_READ_DISCRETE):
        return 8, 5 + math.ceil(count / 8)
    if function_code in (FC_READ_HOLDING, FC_READ_INPUT):
        return 8, 5 + 2 * count
    if function_code == FC_WRITE_COIL:
        return 8, 8
    if function_code == FC_WRITE_REGISTERS:
        return 9 + 2 * count, 8
    raise ValueError(f"unsupported function code {function_code}")


@dataclass(frozen=True, slots=True)
class BusModel:
    """Timing of one Modbus link; all results in seconds."""

    name: str
    kind: BusKind
    baudrate: int = 9600
    bits_per_char: int = 11
    turnaround: float = 0.0  # device processing before it answers
    link_bps: float = 100e6  # TCP only: Ethernet speed
    timeout: float = 3.0  # what an unanswered request costs

    @classmethod
    def rtu(cls, baudrate: int, turnaround: float = 0.0) -> BusModel:
        """Return the model of serial RTU at ``baudrate`` (11 bits per character)."""
        return cls(
            name=f"rtu{baudrate}",
            kind=BusKind.RTU,
            baudrate=baudrate,
            turnaround=turnaround,
        )

    @classmethod
    def tcp(cls, turnaround: float = 0.010) -> BusModel:
        """Modbus TCP with a device/gateway turnaround per request."""
        return cls(
            name=f"tcp{round(turnaround * 1000)}ms",
            kind=BusKind.TCP,
            turnaround=turnaround,
        )

    @classmethod
    def parse(cls, text: str) -> BusModel:
        """``rtu9600``, ``rtu19200``, ``tcp`` or ``tcp10ms`` style names."""
        name = text.strip().lower()
        if name.startswith("rtu"):
            return cls.rtu(int(name[3:] or 9600))
        if name.startswith("tcp"):
            rest = name[3:].removesuffix("ms")
            return cls.tcp(float(rest) / 1000 if rest else 0.010)
        raise ValueError(f"unknown bus {text!r}: use rtu9600, rtu19200 or tcp10ms")

    @property
    def char_time(self) -> float:
        """Seconds per serial character."""
        return self.bits_per_char / self.baudrate

    @property
    def silence(self) -> float:
        """Inter-frame silence t3.5 (serial only)."""
        if self.kind is BusKind.TCP:
            return 0.0
        return 0.00175 if self.baudrate > 19200 else 3.5 * self.char_time

    def _bytes_time(self, size: int) -> float:
        if self.kind is BusKind.RTU:
            return size * self.char_time
        return (size + _MBAP_EXTRA + _TCP_IP_OVERHEAD) * 8 / self.link_bps

    def split(self, function_code: int, count: int) -> tuple[float, float]:
        """Bus time before the device samples its data, and after (the response)."""
        request, response = rtu_frame_sizes(function_code, count)
        before = (
            self.silence
            + self._bytes_time(request)
            + max(self.silence, self.turnaround)
        )
        return before, self._bytes_time(response)

    def exchange_time(self, function_code: int, count: int) -> float:
        """Whole bus time of one request/response exchange."""
        before, after = self.split(function_code, count)
        return before + after

    def read_time(self, table: Table, count: int) -> float:
        """Bus time of reading ``count`` registers (or bits) of ``table``."""
        return self.exchange_time(_READ_FC[table], count)

    def exception_time(self) -> float:
        """Bus time of a request answered with an exception (5-byte response)."""
        return (
            self.silence
            + self._bytes_time(8)
            + max(self.silence, self.turnaround)
            + (self._bytes_time(5))
        )

    def cost_model(self) -> CostModel:
        """Planner cost model in seconds of bus time, exact for this link."""
        one = self.read_time(Table.HOLDING, 1)
        two = self.read_time(Table.HOLDING, 2)
        per_register = two - one
        bits_8 = self.read_time(Table.COIL, 8) - self.read_time(Table.COIL, 0)
        return CostModel.from_timing(one - per_register, per_register, bits_8 / 8)


@dataclass(slots=True)
class BusCounters:
    """What went over the bus."""

    requests: int = 0
    registers: int = 0  # words of holding/input plus bits of coil/discrete transferred
    bus_time: float = 0.0
    errors: int = 0
    # since last drain
    reads: list[tuple[int, Table, int, int]] = field(default_factory=list)

    def drain(self) -> list[tuple[int, Table, int, int]]:
        """Return the reads since the last drain and forget them."""
        reads, self.reads = self.reads, []
        return reads


class MeteredTransport:
    """A ``Transport`` wrapper: models bus time in virtual time and counts traffic.

    ``advance`` moves the shared virtual clock; the wrapped transport (normally the
    simulator's ``InProcessTransport``) does the actual device access in between,
    so the device answers with its value at the moment it samples the request.
    """

    def __init__(
        self, inner: Any, bus: BusModel, advance: Callable[[float], None]
    ) -> None:
        """Wrap ``inner``, charging each request's bus time through ``advance``."""
        self._inner = inner
        self.bus = bus
        self._advance = advance
        self.counters = BusCounters()

    @property
    def connected(self) -> bool:
        """Whether the wrapped transport is connected."""
        return bool(self._inner.connected)

    async def connect(self) -> None:
        """Connect the wrapped transport."""
        await self._inner.connect()

    async def close(self) -> None:
        """Close the wrapped transport."""
        await self._inner.close()

    async def end_cycle(self) -> None:
        """Forward the end of a poll cycle."""
        await self._inner.end_cycle()

    def _charge(self, seconds: float) -> None:
        self.counters.bus_time += seconds
        self._advance(seconds)

    async def _exchange(self, function_code: int, count: int, call: Any) -> Any:
        before, after = self.bus.split(function_code, count)
        counters = self.counters
        counters.requests += 1
        self._charge(before)
        try:
            result = await call
        except ModbusTimeout:
            counters.errors += 1
            self._charge(max(self.bus.timeout - before, 0.0))
            raise
        except ModbusError:
            counters.errors += 1
            self._charge(self.bus.exception_time() - before)
            raise
        self._charge(after)
        return result

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read through the wrapped transport, charging the bus time."""
        words: list[int] = await self._exchange(
            _READ_FC[table], count, self._inner.read(unit_id, table, address, count)
        )
        self.counters.registers += count
        self.counters.reads.append((unit_id, table, address, count))
        return words

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write through the wrapped transport, charging the bus time."""
        await self._exchange(
            FC_WRITE_REGISTERS,
            len(values),
            self._inner.write_registers(unit_id, address, values),
        )

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write one coil through the wrapped transport, charging the bus time."""
        await self._exchange(
            FC_WRITE_COIL, 1, self._inner.write_coil(unit_id, address, value)
        )
