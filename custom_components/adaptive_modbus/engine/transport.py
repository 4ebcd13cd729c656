"""Async Modbus transports: the protocol the engine uses and a pymodbus implementation.

One request is in flight per connection (a serial bus or a gateway is shared by many
units). Requests queue on a :class:`PriorityLock`, so a write waits at most for the
request in flight, never behind queued reads. Each request has a timeout, a number of
retries on timeout, and a pause of silence before it. A timeout drops the connection
(a late answer must never be taken for the answer to the next request); the next
request reconnects. Failed connects back off exponentially between ``reconnect_min``
and ``reconnect_max``. Every failure is raised as a :class:`ModbusError` subclass.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Protocol, runtime_checkable

from pymodbus.client import (
    AsyncModbusSerialClient,
    AsyncModbusTcpClient,
    AsyncModbusUdpClient,
    ModbusBaseClient,
)
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from . import pymodbus_compat as compat
from .errors import (
    DeviceFailure,
    IllegalAddress,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from .registers import Table

_LOGGER = logging.getLogger(__name__)


class TransportKind(StrEnum):
    """How the Modbus device is reached."""

    TCP = "tcp"
    RTU_OVER_TCP = "rtu_over_tcp"
    UDP = "udp"
    SERIAL = "serial"


@dataclass(frozen=True)
class TransportConfig:
    """Connection and pacing settings of one transport (one bus or gateway)."""

    kind: TransportKind = TransportKind.TCP
    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str = ""
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    timeout: float = 3.0  # seconds per request
    retries: int = 1  # extra tries on timeout
    pause: float = 0.0  # seconds of silence between requests on this connection
    close_after_cycle: bool = False
    reconnect_min: float = 1.0  # exponential backoff bounds (seconds)
    reconnect_max: float = 60.0


@runtime_checkable
class Transport(Protocol):
    """What the engine uses to talk Modbus (pymodbus, or the in-process simulator)."""

    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""

    async def connect(self) -> None:
        """Open the connection; raise :class:`ModbusConnectionError` on failure."""

    async def close(self) -> None:
        """Close the connection (idempotent)."""

    async def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read words (0..65535) or bits (0/1); raise :class:`ModbusError` subclasses."""

    async def write_registers(self, unit_id: int, address: int, values: Sequence[int]) -> None:
        """Write holding registers."""

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write one coil."""

    async def end_cycle(self) -> None:
        """Called after each poll cycle; closes the connection if so configured."""


class Priority(IntEnum):
    """Queue priority of a request: lower goes first."""

    WRITE = 0
    READ = 1


class PriorityLock:
    """An asyncio lock granted by priority, then first come first served.

    The holder keeps the lock until it releases it: a high-priority waiter never
    interrupts the request in flight, it only overtakes the queue.
    """

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @property
    def locked(self) -> bool:
        """Whether someone holds the lock."""
        return self._locked

    @property
    def waiting(self) -> int:
        """Number of queued waiters."""
        return sum(1 for _, _, fut in self._waiters if not fut.done())

    async def acquire(self, priority: int = Priority.READ) -> None:
        """Wait for the lock; waiters of lower ``priority`` value go first."""
        if not self._locked and not self._waiters:
            self._locked = True
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (int(priority), next(self._seq), fut)
        heapq.heappush(self._waiters, entry)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just as we were cancelled: pass it on
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        """Hand the lock to the best waiter, or free it."""
        if not self._locked:
            raise RuntimeError("PriorityLock released while not locked")
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # ownership passes on; stays locked
                return
        self._locked = False

    @asynccontextmanager
    async def hold(self, priority: int = Priority.READ) -> AsyncIterator[None]:
        """``async with lock.hold(priority):`` acquire and release."""
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()


@dataclass
class TransportStats:
    """Simple counters of one transport (the engine measures latency itself)."""

    requests: int = 0  # requests sent, retries included
    retries: int = 0
    timeouts: int = 0
    errors: int = 0  # exception responses
    connects: int = 0  # successful connects
    connect_failures: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class Backoff:
    """Exponential backoff between failed connects (``minimum`` doubling to ``maximum``)."""

    def __init__(self, minimum: float, maximum: float, clock: Callable[[], float]) -> None:
        self.minimum = max(0.0, minimum)
        self.maximum = max(self.minimum, maximum)
        self._clock = clock
        self.delay = 0.0  # current delay; 0 = no failure yet
        self.not_before = 0.0

    def failed(self) -> float:
        """Record a failure; return the delay before the next attempt."""
        self.delay = self.minimum if self.delay == 0.0 else min(self.delay * 2, self.maximum)
        self.not_before = self._clock() + self.delay
        return self.delay

    def succeeded(self) -> None:
        """Record a success: the next failure starts again from ``minimum``."""
        self.delay = 0.0
        self.not_before = 0.0

    def remaining(self) -> float:
        """Seconds until the next attempt is allowed (0 = now)."""
        return max(0.0, self.not_before - self._clock())


_TIMEOUT_MARGIN = 0.5  # seconds added to our own guard around pymodbus' timeout

# Modbus protocol limits of one request
MAX_READ_REGISTERS = 125
GATEWAY_NO_ANSWER_CODES = frozenset({10, 11})  # gateway path unavailable / target silent
BUSY_CODES = frozenset({5, 6})  # acknowledge (still working) / device busy
MAX_READ_BITS = 2000
MAX_WRITE_REGISTERS = 123


def _check_request(unit_id: int, address: int, count: int, limit: int, what: str) -> None:
    """Reject a request the protocol cannot carry, before anything is sent."""
    if not 0 <= unit_id <= 255:
        raise ModbusError(f"unit id {unit_id} outside 0-255", unit_id=unit_id, address=address)
    if not 1 <= count <= limit or not address >= 0 or address + count > 65536:
        raise ModbusError(
            f"{what}: {count} at address {address} (1-{limit} within 0-65535 allowed)",
            unit_id=unit_id,
            address=address,
        )


class PymodbusTransport:
    """:class:`Transport` over pymodbus: Modbus TCP, RTU over TCP, UDP and serial RTU."""

    def __init__(
        self, config: TransportConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.stats = TransportStats()
        self._clock = clock
        self._lock = PriorityLock()
        self._client: ModbusBaseClient | None = None
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max, clock)
        self._last_done: float | None = None  # loop time the last exchange ended

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return self._client is not None and self._client.connected

    @property
    def backoff_remaining(self) -> float:
        """Seconds until a reconnect is allowed after failed connects."""
        return self._backoff.remaining()

    def _describe(self) -> str:
        cfg = self.config
        if cfg.kind is TransportKind.SERIAL:
            return f"serial {cfg.serial_port}"
        return f"{cfg.kind.value} {cfg.host}:{cfg.port}"

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.stats.bytes_sent += len(data)
        else:
            self.stats.bytes_received += len(data)
        return data

    def _new_client(self) -> ModbusBaseClient:
        cfg = self.config
        common = {
            "timeout": cfg.timeout,
            "retries": 0,  # retries are ours, on a fresh connection
            "reconnect_delay": 0.0,  # no reconnect task in pymodbus: ours has backoff
            "trace_packet": self._trace_packet,
        }
        if cfg.kind is TransportKind.SERIAL:
            return AsyncModbusSerialClient(
                cfg.serial_port,
                framer=FramerType.RTU,
                baudrate=cfg.baudrate,
                bytesize=cfg.bytesize,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                **common,  # type: ignore[arg-type]
            )
        if cfg.kind is TransportKind.UDP:
            return AsyncModbusUdpClient(
                cfg.host,
                port=cfg.port,
                framer=FramerType.SOCKET,
                **common,  # type: ignore[arg-type]
            )
        framer = FramerType.RTU if cfg.kind is TransportKind.RTU_OVER_TCP else FramerType.SOCKET
        return AsyncModbusTcpClient(
            cfg.host,
            port=cfg.port,
            framer=framer,
            **common,  # type: ignore[arg-type]
        )

    async def connect(self) -> None:
        """Open the connection (no-op if open).

        Raises :class:`ModbusConnectionError` if it fails, or without trying while the
        backoff after earlier failures has not expired.
        """
        async with self._lock.hold(Priority.WRITE):
            await self._ensure_connected()

    async def _ensure_connected(self) -> ModbusBaseClient:
        if self._client is not None and self._client.connected:
            return self._client
        wait = self._backoff.remaining()
        if wait > 0:
            raise ModbusConnectionError(
                f"{self._describe()}: not reconnecting for another {wait:.2f} s (backoff)"
            )
        self._drop()
        client = self._new_client()
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as err:  # pragma: no cover - pymodbus catches these
            _LOGGER.debug("connect to %s raised %r", self._describe(), err)
            ok = False
        if not ok or not client.connected:
            client.close()
            self.stats.connect_failures += 1
            delay = self._backoff.failed()
            raise ModbusConnectionError(
                f"{self._describe()}: cannot connect (next try in {delay:.1f} s)"
            )
        self._backoff.succeeded()
        self.stats.connects += 1
        self._client = client
        self._last_done = None
        return client

    def _drop(self) -> None:
        """Close the pymodbus client, if any (synchronous and idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """Close the connection; an explicit close also clears the backoff."""
        async with self._lock.hold(Priority.WRITE):
            self._drop()
            self._backoff.succeeded()

    async def end_cycle(self) -> None:
        """Close the connection after a poll cycle if ``close_after_cycle`` is set."""
        if self.config.close_after_cycle:
            async with self._lock.hold(Priority.READ):
                self._drop()

    # ------------------------------------------------------------------ requests
    async def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read ``count`` words or bits from ``table`` starting at ``address``."""
        limit = MAX_READ_BITS if table.is_bit else MAX_READ_REGISTERS
        _check_request(unit_id, address, count, limit, f"read {table.value}")

        def send(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            return compat.client_read(client, unit_id, table, address, count)

        response = await self._request(Priority.READ, send, unit_id, address, write=False)
        if table.is_bit:
            return compat.response_bits(response, count)
        words = compat.response_words(response, count)
        if len(words) != count:
            raise ModbusError(
                f"expected {count} registers, got {len(words)}", unit_id=unit_id, address=address
            )
        return words

    async def write_registers(self, unit_id: int, address: int, values: Sequence[int]) -> None:
        """Write holding registers (function 16); jumps the queue of reads."""
        words = list(values)
        _check_request(unit_id, address, len(words), MAX_WRITE_REGISTERS, "write registers")
        if any(not 0 <= word <= 0xFFFF for word in words):
            raise ModbusError(f"register values {words} outside 0-65535", unit_id=unit_id)

        def send(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            return compat.client_write_registers(client, unit_id, address, words)

        await self._request(Priority.WRITE, send, unit_id, address, write=True)

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write one coil (function 5); jumps the queue of reads."""
        _check_request(unit_id, address, 1, 1, "write coil")

        def send(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            return compat.client_write_coil(client, unit_id, address, value)

        await self._request(Priority.WRITE, send, unit_id, address, write=True)

    async def _pace(self) -> None:
        """Keep ``pause`` seconds of silence since the previous exchange."""
        if self.config.pause <= 0 or self._last_done is None:
            return
        wait = self._last_done + self.config.pause - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _request(
        self,
        priority: Priority,
        send: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]],
        unit_id: int,
        address: int,
        *,
        write: bool,
    ) -> ModbusPDU:
        """Run one request under the lock with pacing, timeout, retries and reconnect."""
        tries = 1 + max(0, self.config.retries)
        async with self._lock.hold(priority):
            last_error: ModbusError | None = None
            for attempt in range(tries):
                if attempt:
                    self.stats.retries += 1
                try:
                    client = await self._ensure_connected()
                except ModbusConnectionError as err:
                    raise ModbusConnectionError(str(err), unit_id=unit_id, address=address) from err
                await self._pace()
                self.stats.requests += 1
                try:
                    response = await asyncio.wait_for(
                        send(client), self.config.timeout + _TIMEOUT_MARGIN
                    )
                except (ModbusIOException, TimeoutError) as err:
                    lost = not client.connected
                    self._drop()  # a late answer must not meet the next request
                    if lost:
                        last_error = ModbusConnectionError(
                            f"{self._describe()}: connection lost: {err}",
                            unit_id=unit_id,
                            address=address,
                        )
                    else:
                        self.stats.timeouts += 1
                        last_error = ModbusTimeout(
                            f"{self._describe()}: no answer from unit {unit_id} "
                            f"within {self.config.timeout} s",
                            unit_id=unit_id,
                            address=address,
                        )
                    continue
                except (ConnectionException, OSError) as err:
                    self._drop()
                    last_error = ModbusConnectionError(
                        f"{self._describe()}: {err}", unit_id=unit_id, address=address
                    )
                    continue
                except ModbusException as err:
                    self._drop()
                    raise ModbusError(
                        f"{self._describe()}: {err}", unit_id=unit_id, address=address
                    ) from err
                finally:
                    self._last_done = asyncio.get_running_loop().time()
                code = compat.exception_code(response)
                if code is not None:
                    self.stats.errors += 1
                    raise classify_exception_code(code, unit_id, address, write=write)
                return response
            assert last_error is not None
            raise last_error


def classify_exception_code(
    code: int, unit_id: int, address: int, *, write: bool = False
) -> ModbusError:
    """The :class:`ModbusError` for a Modbus exception response code.

    1 -> IllegalFunction; 2 -> IllegalAddress; 3 (illegal data value) -> IllegalAddress
    for reads (the quantity or range was refused: blame the block) and a plain
    ModbusError for writes (the value was refused); 10/11 (the gateway could not reach
    the unit) -> ModbusTimeout, as if the unit were silent (never blame the block);
    5/6 (acknowledge / busy: come back later) -> plain ModbusError; anything else
    (4 device failure, unknown) -> DeviceFailure. The error keeps the code.
    """
    where: dict[str, Any] = {"unit_id": unit_id, "address": address, "code": code}
    if code == compat.EXC_ILLEGAL_FUNCTION:
        return IllegalFunction(f"unit {unit_id}: illegal function (code 1)", **where)
    if code == compat.EXC_ILLEGAL_ADDRESS:
        return IllegalAddress(f"unit {unit_id}: illegal data address {address} (code 2)", **where)
    if code == compat.EXC_ILLEGAL_VALUE:
        if write:
            return ModbusError(f"unit {unit_id}: illegal data value (code 3)", **where)
        return IllegalAddress(f"unit {unit_id}: illegal data value at {address} (code 3)", **where)
    if code in GATEWAY_NO_ANSWER_CODES:
        return ModbusTimeout(
            f"unit {unit_id}: gateway got no answer from the unit (exception code {code})",
            **where,
        )
    if code in BUSY_CODES:
        return ModbusError(f"unit {unit_id}: device busy (exception code {code})", **where)
    return DeviceFailure(f"unit {unit_id}: device failure (exception code {code})", **where)
