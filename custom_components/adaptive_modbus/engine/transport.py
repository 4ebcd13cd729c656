"""Async Modbus transports: the protocol the engine uses and a pymodbus implementation.

One request is in flight per connection (a serial bus or a gateway is shared by many
units). Requests queue on a :class:`PriorityLock`, so a write waits at most for the
request in flight, never behind queued reads. Each request has a timeout, a number of
retries on timeout (reads only: a write that may have gone out is never repeated), and
a pause of silence before it. A timeout, a cancellation or an answer that does not
match the request drops the connection (a late answer must never be taken for the
answer to the next request); the next request reconnects. Failed connects back off
exponentially between ``reconnect_min`` and ``reconnect_max``; :meth:`probe` tries a
connect without a request. After ``close()`` nothing reconnects. Every failure is
raised as a :class:`ModbusError` subclass. :func:`detect_framer` tells Modbus TCP
from RTU over TCP for a device that answers one of them only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
import dataclasses
from dataclasses import dataclass
from enum import IntEnum, StrEnum
import heapq
import itertools
import logging
import struct
import time
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
    EngineUsageError,
    FramingMismatch,
    IllegalAddress,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
    ResponseMismatch,
    TransportClosed,
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

    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read words (0..65535) or bits (0/1); raise :class:`ModbusError` subclasses."""

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write holding registers."""

    async def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write one coil."""

    async def end_cycle(self) -> None:
        """End a poll cycle: close the connection if so configured."""


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
        """Start unlocked, with nobody waiting."""
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
    mismatches: int = 0  # answers that did not match the request (connection dropped)


class Backoff:
    """Exponential backoff between failed connects (``minimum`` doubling to ``maximum``)."""

    def __init__(
        self, minimum: float, maximum: float, clock: Callable[[], float]
    ) -> None:
        """Start at ``minimum``, never above ``maximum``."""
        self.minimum = max(0.0, minimum)
        self.maximum = max(self.minimum, maximum)
        self._clock = clock
        self.delay = 0.0  # current delay; 0 = no failure yet
        self.not_before = 0.0

    def failed(self) -> float:
        """Record a failure; return the delay before the next attempt."""
        self.delay = (
            self.minimum if self.delay == 0.0 else min(self.delay * 2, self.maximum)
        )
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
# gateway path unavailable / target silent
GATEWAY_NO_ANSWER_CODES = frozenset({10, 11})
BUSY_CODES = frozenset({5, 6})  # acknowledge (still working) / device busy
MAX_READ_BITS = 2000
MAX_WRITE_REGISTERS = 123


def _check_request(
    unit_id: int, address: int, count: int, limit: int, what: str
) -> None:
    """Reject a request the protocol cannot carry, before anything is sent."""
    if not 0 <= unit_id <= 255:
        raise ModbusError(
            f"unit id {unit_id} outside 0-255", unit_id=unit_id, address=address
        )
    if not 1 <= count <= limit or not address >= 0 or address + count > 65536:
        raise ModbusError(
            f"{what}: {count} at address {address} (1-{limit} within 0-65535 allowed)",
            unit_id=unit_id,
            address=address,
        )


class PymodbusTransport:
    """:class:`Transport` over pymodbus: Modbus TCP, RTU over TCP, UDP and serial RTU.

    Beyond pymodbus it guarantees, on every pymodbus version from 3.8.3 on:

    * cancellation propagates: each exchange runs in its own task, so a cancelled
      caller gets :class:`asyncio.CancelledError` at once (pymodbus 3.9-3.15 turn a
      cancellation into an I/O error that would otherwise be retried as a timeout);
      the connection is dropped, since the answer may still arrive;
    * ``timeout`` bounds one exchange (plus one connect), not a series of them;
    * a write that may have gone out is never retried (``may_have_applied`` is set on
      its error); a write may try one connect during the reconnect backoff;
    * after :meth:`close` nothing reconnects: requests raise :class:`TransportClosed`;
    * every answer is checked against the request (unit id, transaction id, function
      code, count): a mismatch raises :class:`ResponseMismatch` and drops the
      connection;
    * a connection going down and coming back is logged once each.
    """

    def __init__(
        self, config: TransportConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Prepare a transport for ``config``; nothing is opened before the first use."""
        self.config = config
        self.stats = TransportStats()
        self._clock = clock
        self._lock = PriorityLock()
        self._client: ModbusBaseClient | None = None
        self._backoff = Backoff(config.reconnect_min, config.reconnect_max, clock)
        self._last_done: float | None = None  # loop time the last exchange ended
        self._closed = False
        self._down = False  # a connect failed and none succeeded since (logged once)
        self._in_flight: asyncio.Task[ModbusPDU] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._expect: _Expected | None = None  # what the request on the wire asked
        self._mismatch: asyncio.Future[str] | None = None
        compat.quiet_pymodbus_logging()

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        """Whether a connection is open now."""
        return not self._closed and self._client is not None and self._client.connected

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (the transport never reconnects then)."""
        return self._closed

    @property
    def backoff_remaining(self) -> float:
        """Seconds until a reconnect is allowed after failed connects."""
        return self._backoff.remaining()

    def _describe(self) -> str:
        cfg = self.config
        if cfg.kind is TransportKind.SERIAL:
            return f"serial {cfg.serial_port}"
        return f"{cfg.kind.value} {cfg.host}:{cfg.port}"

    @property
    def _rtu_framing(self) -> bool:
        return self.config.kind in (TransportKind.SERIAL, TransportKind.RTU_OVER_TCP)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self.stats.bytes_sent += len(data)
            self._expect = _expected(data, rtu=self._rtu_framing)
        else:
            self.stats.bytes_received += len(data)
            mismatch, expect = self._mismatch, self._expect
            if mismatch is not None and not mismatch.done() and expect is not None:
                problem = _frame_mismatch(data, expect, rtu=self._rtu_framing)
                if problem is not None:
                    mismatch.set_result(problem)
        return data

    def _closed_error(
        self, unit_id: int | None = None, address: int | None = None
    ) -> ModbusError:
        return TransportClosed(
            f"{self._describe()}: the transport is closed (unloaded); it opens no new connection",
            unit_id=unit_id,
            address=address,
        )

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
        framer = (
            FramerType.RTU
            if cfg.kind is TransportKind.RTU_OVER_TCP
            else FramerType.SOCKET
        )
        return AsyncModbusTcpClient(
            cfg.host,
            port=cfg.port,
            framer=framer,
            **common,  # type: ignore[arg-type]
        )

    async def connect(self) -> None:
        """Open the connection (no-op if open).

        Raises :class:`ModbusConnectionError` if it fails, or without trying while the
        backoff after earlier failures has not expired, and :class:`TransportClosed`
        after :meth:`close`.
        """
        async with self._lock.hold(Priority.WRITE):
            await self._ensure_connected()

    async def probe(self) -> bool:
        """(Re)connect without sending a request; whether a connection is open now.

        Cheap enough to run more often than poll cycles while the device is away: it
        ignores the reconnect backoff (a success clears it, so the next cycle reads at
        once). It says that the connection opens, not that a unit answers (a gateway
        accepts connections while the device behind it is silent; a serial port opens
        whether or not anything is on the line). False after :meth:`close`.
        """
        if self._closed:
            return False
        async with self._lock.hold(Priority.WRITE):
            try:
                await self._ensure_connected(ignore_backoff=True)
            except ModbusConnectionError:
                return False
        return True

    async def _ensure_connected(
        self, *, ignore_backoff: bool = False
    ) -> ModbusBaseClient:
        if self._closed:
            raise self._closed_error()
        if self._client is not None and self._client.connected:
            return self._client
        wait = self._backoff.remaining()
        if wait > 0 and not ignore_backoff:
            raise ModbusConnectionError(
                f"{self._describe()}: not reconnecting for another {wait:.2f} s (backoff)"
            )
        self._drop()
        client = self._new_client()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._connecting = done
        try:
            ok = await client.connect()
        # pymodbus catches these itself
        except (OSError, ModbusException) as err:  # pragma: no cover
            _LOGGER.debug("connect to %s raised %r", self._describe(), err)
            ok = False
        except BaseException:  # cancelled while connecting: leave no socket behind
            client.close()
            raise
        finally:
            self._connecting = None
            done.set_result(None)
        if self._closed:  # closed while connecting
            client.close()
            raise self._closed_error()
        if not ok or not client.connected:
            client.close()
            self.stats.connect_failures += 1
            delay = self._backoff.failed()
            if not self._down:
                self._down = True
                _LOGGER.warning(
                    "Modbus %s cannot be reached; retrying (next try in %.1f s)",
                    self._describe(),
                    delay,
                )
            raise ModbusConnectionError(
                f"{self._describe()}: cannot connect (next try in {delay:.1f} s)"
            )
        self._backoff.succeeded()
        self.stats.connects += 1
        if self._down:
            self._down = False
            _LOGGER.info("Modbus %s is reachable again", self._describe())
        self._client = client
        self._last_done = None
        return client

    def _drop(self) -> None:
        """Close the pymodbus client, if any (synchronous and idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        """Close the connection for good (idempotent).

        Takes effect at once: a request in flight is abandoned (it raises
        :class:`TransportClosed`), queued and later requests raise it without
        connecting, and a connect under way is closed when it completes.
        """
        self._closed = True
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            in_flight.cancel()
        self._drop()
        self._backoff.succeeded()
        if self._connecting is not None:  # at most one connect timeout
            await asyncio.shield(self._connecting)
        if in_flight is not None:  # it ends within a few loop iterations once cancelled
            await asyncio.wait((in_flight,), timeout=1.0)
        await asyncio.sleep(0)  # let the socket close

    async def end_cycle(self) -> None:
        """Close the connection after a poll cycle if ``close_after_cycle`` is set."""
        if self.config.close_after_cycle:
            async with self._lock.hold(Priority.READ):
                self._drop()

    # ------------------------------------------------------------------ requests
    async def read(
        self, unit_id: int, table: Table, address: int, count: int
    ) -> list[int]:
        """Read ``count`` words or bits from ``table`` starting at ``address``."""
        limit = MAX_READ_BITS if table.is_bit else MAX_READ_REGISTERS
        _check_request(unit_id, address, count, limit, f"read {table.value}")

        def send(client: ModbusBaseClient) -> Awaitable[ModbusPDU]:
            return compat.client_read(client, unit_id, table, address, count)

        def check(response: ModbusPDU) -> str | None:
            if table.is_bit:
                got = len(response.bits)
                if (got + 7) // 8 != (count + 7) // 8:
                    return f"asked for {count} bits, the answer has {got}"
            elif (got := len(response.registers)) != count:
                return f"asked for {count} registers, the answer has {got}"
            return None

        response = await self._request(
            Priority.READ, send, unit_id, address, write=False, check=check
        )
        if table.is_bit:
            return compat.response_bits(response, count)
        return compat.response_words(response, count)

    async def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write holding registers (function 16); jumps the queue of reads."""
        words = list(values)
        _check_request(
            unit_id, address, len(words), MAX_WRITE_REGISTERS, "write registers"
        )
        if any(not 0 <= word <= 0xFFFF for word in words):
            raise ModbusError(
                f"register values {words} outside 0-65535", unit_id=unit_id
            )

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

    async def _exchange(
        self,
        client: ModbusBaseClient,
        send: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]],
    ) -> ModbusPDU:
        """One request and its answer, bounded by the timeout.

        The request runs in a task of its own, so the caller's cancellation never
        reaches pymodbus (some versions turn it into an I/O error) and :meth:`close`
        can abandon it. Raises TimeoutError, _Mismatch or pymodbus' exceptions.
        """
        loop = asyncio.get_running_loop()
        mismatch: asyncio.Future[str] = loop.create_future()
        self._mismatch, self._expect = mismatch, None

        async def run() -> ModbusPDU:
            return await send(client)

        task = asyncio.ensure_future(run())
        self._in_flight = task
        try:
            done, _ = await asyncio.wait(
                (task, mismatch),
                timeout=self.config.timeout + _TIMEOUT_MARGIN,
                return_when=asyncio.FIRST_COMPLETED,
            )
        except asyncio.CancelledError:
            _abandon(task)
            self._drop()  # the answer may still come: it must not meet the next request
            raise
        finally:
            self._in_flight = self._mismatch = self._expect = None
            if not mismatch.done():
                mismatch.cancel()
        if mismatch.done() and not mismatch.cancelled():
            _abandon(task)
            raise _Mismatch(mismatch.result())
        if task not in done:
            _abandon(task)
            raise TimeoutError
        if task.cancelled():  # close() abandoned it
            raise _Abandoned
        return task.result()

    def _failure(
        self, err: BaseException, client: ModbusBaseClient, unit_id: int, address: int
    ) -> tuple[ModbusError, bool]:
        """Return the error for a failed exchange and whether a read may be retried.

        The connection is dropped; a retry goes out on a fresh one.
        """
        lost = not client.connected
        self._drop()  # a late answer must not meet the next request
        where: dict[str, Any] = {"unit_id": unit_id, "address": address}
        if self._closed:
            return self._closed_error(unit_id, address), False
        if isinstance(err, _Mismatch):
            self.stats.mismatches += 1
            return ResponseMismatch(
                f"{self._describe()}: unit {unit_id}, address {address}: the answer does "
                f"not match the request ({err}); connection dropped",
                **where,
            ), False
        if isinstance(err, (ModbusIOException, TimeoutError)) and not lost:
            self.stats.timeouts += 1
            return ModbusTimeout(
                f"{self._describe()}: no answer from unit {unit_id} within {self.config.timeout} s",
                **where,
            ), True
        if isinstance(
            err, (ModbusIOException, TimeoutError, ConnectionException, OSError)
        ):
            return ModbusConnectionError(
                f"{self._describe()}: connection lost: {err}", **where
            ), True
        return ModbusError(f"{self._describe()}: {err}", **where), False

    async def _request(
        self,
        priority: Priority,
        send: Callable[[ModbusBaseClient], Awaitable[ModbusPDU]],
        unit_id: int,
        address: int,
        *,
        write: bool,
        check: Callable[[ModbusPDU], str | None] | None = None,
    ) -> ModbusPDU:
        """Run one request under the lock with pacing, timeout, retries and reconnect.

        Reads are retried on a fresh connection after a timeout or a lost connection;
        a write only when it cannot have gone out (the connect failed).
        """
        tries = 1 + max(0, self.config.retries)
        async with self._lock.hold(priority):
            last_error: ModbusError | None = None
            for attempt in range(tries):
                if attempt:
                    self.stats.retries += 1
                try:
                    # a user's write may try one connect even during the backoff
                    client = await self._ensure_connected(
                        ignore_backoff=write and attempt == 0
                    )
                except TransportClosed:
                    raise self._closed_error(unit_id, address) from None
                except ModbusConnectionError as err:
                    raise ModbusConnectionError(
                        str(err), unit_id=unit_id, address=address
                    ) from err
                await self._pace()
                self.stats.requests += 1
                try:
                    response = await self._exchange(client, send)
                except (
                    _Mismatch,
                    _Abandoned,
                    ModbusException,
                    TimeoutError,
                    OSError,
                ) as err:
                    error, retry = self._failure(err, client, unit_id, address)
                else:
                    code = compat.exception_code(response)
                    if code is not None:
                        self.stats.errors += 1
                        raise classify_exception_code(
                            code, unit_id, address, write=write
                        )
                    problem = check(response) if check is not None else None
                    if not problem:
                        return response
                    mismatch = _Mismatch(problem)
                    error, retry = self._failure(mismatch, client, unit_id, address)
                finally:
                    self._last_done = asyncio.get_running_loop().time()
                # a write that went out is never retried automatically
                error.may_have_applied = write
                if not retry or write:
                    raise error
                last_error = error
            assert last_error is not None
            raise last_error


class _Mismatch(Exception):
    """Internal: the answer on the wire is not for the request in flight."""


class _Abandoned(Exception):
    """Internal: :meth:`PymodbusTransport.close` abandoned the request in flight."""


def _abandon(task: asyncio.Task[Any]) -> None:
    """Cancel an exchange task we no longer wait for, and swallow what it ends with."""

    def retrieve(done: asyncio.Task[Any]) -> None:
        if not done.cancelled():
            done.exception()

    task.cancel()
    task.add_done_callback(retrieve)


@dataclass(frozen=True)
class _Expected:
    """What the request on the wire asked: the answer must match it."""

    unit_id: int
    function_code: int
    transaction_id: int  # 0 for RTU framing (no transaction id on the wire)


def _expected(frame: bytes, *, rtu: bool) -> _Expected | None:
    """Return unit, function and transaction id of a request frame we sent."""
    if rtu:
        if len(frame) < 2:
            return None
        return _Expected(frame[0], frame[1], 0)
    if len(frame) < 8:
        return None
    tid, _, _, unit = struct.unpack_from(">HHHB", frame)
    return _Expected(unit, frame[7], tid)


def _rtu_response_length(frame: bytes) -> int | None:
    """Length of the RTU response frame at the start of ``frame`` (None: unknown yet)."""
    if len(frame) < 2:
        return None
    function = frame[1]
    if function & 0x80:
        return 5
    if function in (1, 2, 3, 4, 23):
        return 5 + frame[2] if len(frame) >= 3 else None
    if function in (5, 6, 15, 16):
        return 8
    return None


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _frame_mismatch(buffer: bytes, expect: _Expected, *, rtu: bool) -> str | None:
    """Say what is wrong with the first complete answer frame in ``buffer``, if anything.

    Only complete, well-formed frames are judged (an incomplete one waits for more
    bytes, garbage is left to pymodbus and the timeout). Like pymodbus, a request to
    unit 0 accepts any unit and an answer with transaction id 0 any transaction.
    """
    if rtu:
        length = _rtu_response_length(buffer)
        if length is None or len(buffer) < length:
            return None
        frame = buffer[:length]
        if _crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
            return None
        unit, function, tid = frame[0], frame[1], 0
    else:
        if len(buffer) < 8:
            return None
        tid, protocol, length, unit = struct.unpack_from(">HHHB", buffer)
        if protocol != 0 or length < 2 or len(buffer) < 6 + length:
            return None
        function = buffer[7]
    if expect.unit_id and unit != expect.unit_id:
        return f"asked unit {expect.unit_id}, the answer is from unit {unit}"
    if expect.transaction_id and tid and tid != expect.transaction_id:
        return f"sent transaction {expect.transaction_id}, the answer is for {tid}"
    if function & 0x7F != expect.function_code:
        return (
            f"sent function {expect.function_code}, the answer is for {function & 0x7F}"
        )
    return None


_TCP_FRAMINGS = (TransportKind.TCP, TransportKind.RTU_OVER_TCP)


async def detect_framer(
    config: TransportConfig,
    unit_id: int,
    *,
    table: Table = Table.HOLDING,
    address: int = 0,
    count: int = 1,
) -> TransportKind | None:
    """Which framing (Modbus TCP or RTU over TCP) the device at ``config`` answers.

    Tries the configured framing first, then the other, each with one request on a
    fresh connection (no retries); any answer counts, an exception response too.
    None if neither answers. Raises :class:`ModbusConnectionError` if the connection
    cannot be opened. Meant for the config flow, when a read gets no answer.
    """
    if config.kind not in _TCP_FRAMINGS:
        raise EngineUsageError(
            f"framing detection needs a TCP connection, not {config.kind}"
        )
    order = [config.kind, *(kind for kind in _TCP_FRAMINGS if kind is not config.kind)]
    for kind in order:
        transport = PymodbusTransport(dataclasses.replace(config, kind=kind, retries=0))
        try:
            await transport.read(unit_id, table, address, count)
        except ModbusError as err:
            # an exception response: this framing was understood
            if err.code is not None:
                return kind
            if isinstance(err, ModbusConnectionError) and transport.stats.connects == 0:
                raise
        else:
            return kind
        finally:
            await transport.close()
    return None


async def verify_framing(
    config: TransportConfig,
    unit_id: int,
    *,
    table: Table = Table.HOLDING,
    address: int = 0,
    count: int = 1,
) -> None:
    """Raise :class:`FramingMismatch` if the device answers the other TCP framing only.

    Returns quietly when the configured framing answers or when neither does (that is a
    silent unit, not a framing problem).
    """
    answering = await detect_framer(
        config, unit_id, table=table, address=address, count=count
    )
    if answering is not None and answering is not config.kind:
        raise FramingMismatch(
            f"{config.host}:{config.port} answers {_FRAMING_NAMES[answering]}, "
            f"not {_FRAMING_NAMES[config.kind]}",
            configured=config.kind.value,
            answering=answering.value,
        )


_FRAMING_NAMES: dict[TransportKind, str] = {
    TransportKind.TCP: "Modbus TCP",
    TransportKind.RTU_OVER_TCP: "RTU over TCP",
    TransportKind.UDP: "Modbus UDP",
    TransportKind.SERIAL: "serial RTU",
}


def classify_exception_code(
    code: int, unit_id: int, address: int, *, write: bool = False
) -> ModbusError:
    """Return the :class:`ModbusError` for a Modbus exception response code.

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
        return IllegalAddress(
            f"unit {unit_id}: illegal data address {address} (code 2)", **where
        )
    if code == compat.EXC_ILLEGAL_VALUE:
        if write:
            return ModbusError(f"unit {unit_id}: illegal data value (code 3)", **where)
        return IllegalAddress(
            f"unit {unit_id}: illegal data value at {address} (code 3)", **where
        )
    if code in GATEWAY_NO_ANSWER_CODES:
        return ModbusTimeout(
            f"unit {unit_id}: gateway got no answer from the unit (exception code {code})",
            **where,
        )
    if code in BUSY_CODES:
        return ModbusError(
            f"unit {unit_id}: device busy (exception code {code})", **where
        )
    return DeviceFailure(
        f"unit {unit_id}: device failure (exception code {code})", **where
    )
