"""PymodbusTransport under faults.

Cancellation, writes, the closed state, answers for someone else, the connect
probe, logging, and framing detection.

Real servers on loopback (pymodbus' own through the simulator, and raw asyncio servers
that misbehave on purpose). Runs on pymodbus 3.8.3 too: scripts/test_old_pymodbus.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import logging
import struct
import time

import pytest

from adaptive_modbus_engine import pymodbus_compat as compat
from adaptive_modbus_engine.errors import (
    ErrorKind,
    FramingMismatch,
    ModbusConnectionError,
    ModbusTimeout,
    ResponseMismatch,
    TransportClosed,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.transport import (
    PymodbusTransport,
    TransportConfig,
    TransportKind,
    detect_framer,
    verify_framing,
)

from .test_transport import LOOPBACK, ServerFactory, WaitUntil, opened, tcp_config

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts([LOOPBACK]),
    pytest.mark.old_pymodbus,
]


def crc16(data: bytes) -> bytes:
    """Modbus RTU CRC, little endian (computed here, independent of the code under test)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


# (request: unit, function, transaction id, pdu) -> raw answer bytes or None (silence)
Reply = Callable[[int, int, int, bytes], bytes | None]


class RawServer:
    """A raw Modbus server (MBAP or RTU framing) on loopback that counts open sockets.

    ``reply`` builds the whole answer frame, so it can lie about unit, transaction id,
    function code or count.
    """

    def __init__(self, reply: Reply, *, rtu: bool = False) -> None:
        """Prepare a server that answers every request with ``reply``."""
        self.reply = reply
        self.rtu = rtu
        self.accepted = 0
        self.open = 0
        self.requests: list[int] = []  # function codes received
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def _read_request(
        self, reader: asyncio.StreamReader
    ) -> tuple[int, int, bytes]:
        # requests of the functions used here: 3/4/5/6 are 8 bytes, 16 has a count
        if self.rtu:
            head = await reader.readexactly(2)
            if head[1] in (15, 16):
                more = await reader.readexactly(5)
                rest = await reader.readexactly(more[4] + 2)
                frame = head + more + rest
            else:
                frame = head + await reader.readexactly(6)
            return frame[0], 0, frame[1:-2]
        header = await reader.readexactly(7)
        tid, _, length, unit = struct.unpack(">HHHB", header)
        return unit, tid, await reader.readexactly(length - 1)

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            self.accepted += 1
            self.open += 1
            self._writers.append(writer)
            try:
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    while True:
                        unit, tid, pdu = await self._read_request(reader)
                        if not pdu:  # another framing's bytes
                            continue
                        self.requests.append(pdu[0])
                        answer = self.reply(unit, pdu[0], tid, pdu)
                        if answer is not None:
                            writer.write(answer)
                            await writer.drain()
            finally:
                self.open -= 1
                writer.close()

        self._server = await asyncio.start_server(handle, LOOPBACK, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close every connection and the server."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


@contextlib.asynccontextmanager
async def raw_server(reply: Reply, *, rtu: bool = False) -> AsyncIterator[RawServer]:
    """Run a raw server that answers every request with ``reply``."""
    server = RawServer(reply, rtu=rtu)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    """Return a Modbus TCP frame: MBAP header and ``pdu``."""
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def rtu(unit: int, pdu: bytes) -> bytes:
    """Return an RTU frame: unit, ``pdu`` and CRC."""
    frame = bytes([unit]) + pdu
    return frame + crc16(frame)


def read_answer_pdu(pdu: bytes, *, count_delta: int = 0) -> bytes:
    """Return the answer PDU of a register read: word = address + index."""
    address, count = struct.unpack(">HH", pdu[1:5])
    count += count_delta
    return bytes([pdu[0], 2 * count]) + struct.pack(
        f">{count}H", *range(address, address + count)
    )


def honest(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Correct answers (reads: word = address + index; writes: echo)."""
    answer = read_answer_pdu(pdu) if function in (3, 4) else pdu[:5]
    return mbap(tid, unit, answer)


def silent(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Accept, never answer (a black hole)."""
    return None


# --------------------------------------------------------------------------- 1 cancellation


async def test_cancel_propagates_at_once_without_retry_and_closes_the_connection(
    wait_until: WaitUntil,
) -> None:
    """Pymodbus 3.9-3.15 turn a cancellation into an I/O error; it must stay a cancellation."""
    async with (
        raw_server(silent) as server,
        opened(tcp_config(server.port, timeout=2.0, retries=2)) as transport,
    ):
        task = asyncio.create_task(transport.read(1, Table.HOLDING, 0, 1))
        assert await wait_until(lambda: len(server.requests) == 1)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1.0)
        assert time.monotonic() - start < 0.5
        await asyncio.sleep(0.3)
        assert len(server.requests) == 1  # no retry
        assert transport.stats.retries == 0
        assert transport.stats.timeouts == 0
        # the answer may still come: the connection is closed, not left for the next request
        assert not transport.connected
        assert await wait_until(lambda: server.open == 0)
        assert server.accepted == 1


async def test_an_outer_bound_stops_a_request_on_every_pymodbus() -> None:
    """A setup bound (asyncio.timeout around a cycle) ends a black-holed request at the bound."""
    async with (
        raw_server(silent) as server,
        opened(tcp_config(server.port, timeout=2.0, retries=2)) as transport,
    ):
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await transport.read(1, Table.HOLDING, 0, 1)
        assert time.monotonic() - start < 0.8
        assert len(server.requests) == 1
        assert transport.stats.retries == 0


async def test_timeout_bounds_one_request_not_the_cycle() -> None:
    """Each request gets the whole timeout; consecutive requests do not share one."""
    async with (
        raw_server(silent) as server,
        opened(tcp_config(server.port, timeout=0.25, retries=0)) as transport,
    ):
        for _ in range(3):
            start = time.monotonic()
            with pytest.raises(ModbusTimeout):
                await transport.read(1, Table.HOLDING, 0, 1)
            assert 0.24 <= time.monotonic() - start < 0.25 + 0.5
        assert len(server.requests) == 3


# --------------------------------------------------------------------------- 2 writes


async def test_a_write_that_may_have_been_sent_is_never_retried(
    wait_until: WaitUntil,
) -> None:
    """Test that a write that may have gone out is never retried."""
    async with (
        raw_server(silent) as server,
        opened(tcp_config(server.port, retries=2)) as transport,
    ):
        with pytest.raises(ModbusTimeout) as info:
            await transport.write_registers(1, 10, [1])
        assert info.value.may_have_applied
        with pytest.raises(ModbusTimeout) as info:
            await transport.write_coil(1, 3, True)
        assert info.value.may_have_applied
        await asyncio.sleep(0.1)
        assert server.requests == [compat.FC_WRITE_REGISTERS, compat.FC_WRITE_COIL]
        assert transport.stats.retries == 0
        # reads are still retried on a fresh connection
        with pytest.raises(ModbusTimeout) as info:
            await transport.read(1, Table.HOLDING, 0, 1)
        assert not info.value.may_have_applied
        assert server.requests[2:] == [compat.FC_READ_HOLDING] * 3


async def test_a_write_tries_one_connect_during_the_backoff(unused_port: int) -> None:
    """Test that a write tries one connect even during the backoff."""
    port = unused_port
    async with opened(
        tcp_config(port, reconnect_min=30.0, reconnect_max=60.0)
    ) as transport:
        with pytest.raises(ModbusConnectionError):
            await transport.read(1, Table.HOLDING, 0, 1)
        assert transport.backoff_remaining > 20
        # still down: the write tries once, fails, and is not sent anywhere
        with pytest.raises(ModbusConnectionError) as info:
            await transport.write_registers(1, 0, [5])
        assert not info.value.may_have_applied
        assert transport.stats.connect_failures == 2
        server = RawServer(honest)
        server.port = port
        await server.start()
        try:
            # the device is back: reads keep the backoff, a user's write connects
            with pytest.raises(ModbusConnectionError, match="backoff"):
                await transport.read(1, Table.HOLDING, 0, 1)
            assert server.accepted == 0
            await transport.write_registers(1, 0, [5])
            assert server.accepted == 1
            assert server.requests == [compat.FC_WRITE_REGISTERS]
            assert transport.backoff_remaining == 0
            assert await transport.read(1, Table.HOLDING, 7, 2) == [7, 8]
        finally:
            await server.stop()


# --------------------------------------------------------------------------- 3 closed state


async def test_close_during_a_cycle_and_a_write_leaves_no_socket(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that closing during a cycle and a write leaves no socket open."""
    server = await start_server(response_delay=0.2)
    transport = PymodbusTransport(tcp_config(server.port, timeout=2.0, retries=1))
    reads = [
        asyncio.create_task(transport.read(1, Table.HOLDING, i, 1)) for i in range(5)
    ]
    # the first read in flight
    assert await wait_until(lambda: transport.stats.bytes_sent > 0)
    write = asyncio.create_task(transport.write_registers(1, 10, [7]))
    await asyncio.sleep(0.01)
    await transport.close()
    results = await asyncio.wait_for(
        asyncio.gather(*reads, write, return_exceptions=True), 3.0
    )
    assert all(isinstance(r, TransportClosed) for r in results), results
    assert all(
        r.kind is ErrorKind.CONNECTION
        for r in results
        if isinstance(r, TransportClosed)
    )
    assert await wait_until(lambda: server.active_connections == 0)
    # anything that would reconnect has done so (and the server
    # has finished the abandoned request)
    await asyncio.sleep(0.3)
    assert server.active_connections == 0
    assert server.accepted_connections == 1
    # requests after close raise a clear error and never connect
    with pytest.raises(TransportClosed, match="closed") as info:
        await transport.read(1, Table.HOLDING, 0, 1)
    assert (info.value.unit_id, info.value.address) == (1, 0)
    with pytest.raises(TransportClosed):
        await transport.write_coil(1, 0, True)
    with pytest.raises(TransportClosed):
        await transport.connect()
    assert not await transport.probe()
    assert server.accepted_connections == 1
    assert not transport.connected and transport.closed
    await transport.close()  # idempotent


async def test_close_waits_for_nothing_and_the_write_in_flight_reports_uncertainty(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that close does not wait and the write in flight reports it may have applied."""
    server = await start_server(response_delay=0.5)
    transport = PymodbusTransport(tcp_config(server.port, timeout=3.0))
    write = asyncio.create_task(transport.write_registers(1, 10, [7]))
    assert await wait_until(lambda: transport.stats.bytes_sent > 0)
    start = time.monotonic()
    await transport.close()
    with pytest.raises(TransportClosed) as info:
        await asyncio.wait_for(write, 1.0)
    assert time.monotonic() - start < 0.5
    assert info.value.may_have_applied
    assert await wait_until(lambda: server.active_connections == 0)
    await asyncio.sleep(0.5)  # the server finishes the abandoned request


# --------------------------------------------------------------------------- 4 mismatches


def wrong_unit(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Answer for another unit."""
    return mbap(tid, unit + 1, read_answer_pdu(pdu))


def wrong_tid(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Answer with another transaction id."""
    return mbap(tid + 7, unit, read_answer_pdu(pdu))


def short_count(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Answer with one register too few."""
    return mbap(tid, unit, read_answer_pdu(pdu, count_delta=-1))


def long_count(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Answer with one register too many."""
    return mbap(tid, unit, read_answer_pdu(pdu, count_delta=1))


def wrong_function(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
    """Answer with another function code."""
    other = 4 if function == 3 else 3
    return mbap(tid, unit, read_answer_pdu(bytes([other]) + pdu[1:]))


@pytest.mark.parametrize(
    ("reply", "what"),
    [
        (wrong_unit, "unit 2"),
        (wrong_tid, "transaction"),
        (short_count, "has 2"),
        (long_count, "has 4"),
        (wrong_function, "function"),
    ],
)
async def test_an_answer_for_someone_else_is_refused_and_the_connection_dropped(
    reply: Reply, what: str, wait_until: WaitUntil
) -> None:
    """Test that an answer for another request is refused and the connection dropped."""
    honest_now = False

    def behaviour(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
        return (
            honest(unit, function, tid, pdu)
            if honest_now
            else reply(unit, function, tid, pdu)
        )

    async with (
        raw_server(behaviour) as server,
        opened(tcp_config(server.port, timeout=1.0, retries=2)) as transport,
    ):
        start = time.monotonic()
        with pytest.raises(ResponseMismatch, match=what) as info:
            await transport.read(1, Table.HOLDING, 20, 3)
        assert time.monotonic() - start < 0.5  # at once, not after the timeout
        assert info.value.kind is ErrorKind.MISMATCH
        assert (info.value.unit_id, info.value.address) == (1, 20)
        assert len(server.requests) == 1  # not retried
        assert transport.stats.mismatches == 1
        assert not transport.connected
        assert await wait_until(lambda: server.open == 0)
        honest_now = True
        assert await transport.read(1, Table.HOLDING, 20, 3) == [20, 21, 22]
        assert server.accepted == 2


@pytest.mark.parametrize(
    ("lie", "what"),
    [("unit", "unit 2"), ("count", "has 1"), ("function", "function")],
)
async def test_rtu_over_tcp_answer_for_someone_else(lie: str, what: str) -> None:
    """Test that RTU over TCP refuses an answer with the wrong unit, count or function."""

    def behaviour(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
        if lie == "unit":
            return rtu(unit + 1, read_answer_pdu(pdu))
        if lie == "count":
            return rtu(unit, read_answer_pdu(pdu, count_delta=-1))
        return rtu(unit, read_answer_pdu(bytes([4]) + pdu[1:]))

    async with (
        raw_server(behaviour, rtu=True) as server,
        opened(
            tcp_config(server.port, TransportKind.RTU_OVER_TCP, timeout=1.0)
        ) as transport,
    ):
        start = time.monotonic()
        with pytest.raises(ResponseMismatch, match=what):
            await transport.read(1, Table.HOLDING, 5, 2)
        assert time.monotonic() - start < 0.5
        assert not transport.connected


async def test_wrong_bit_count_is_a_mismatch() -> None:
    """Test that a bit read answered with the wrong byte count is a mismatch."""

    def behaviour(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
        return mbap(tid, unit, bytes([function, 1, 0b101]))  # one byte: at most 8 bits

    async with (
        raw_server(behaviour) as server,
        opened(tcp_config(server.port)) as transport,
    ):
        with pytest.raises(ResponseMismatch, match="12 bits"):
            await transport.read(1, Table.COIL, 0, 12)
        assert await transport.read(1, Table.COIL, 0, 3) == [1, 0, 1]


async def test_a_write_answered_for_someone_else_is_not_retried() -> None:
    """Test that a write answered for another unit is not retried."""

    def behaviour(unit: int, function: int, tid: int, pdu: bytes) -> bytes | None:
        return mbap(tid, unit + 1, pdu[:5])

    async with (
        raw_server(behaviour) as server,
        opened(tcp_config(server.port, retries=2)) as transport,
    ):
        with pytest.raises(ResponseMismatch) as info:
            await transport.write_registers(1, 3, [9])
        assert info.value.may_have_applied
        assert server.requests == [compat.FC_WRITE_REGISTERS]


async def test_unit_zero_is_answered() -> None:
    """Unit 0 (TCP devices that ignore the unit id) reads fine; the checks do not misfire."""
    async with (
        raw_server(honest) as server,
        opened(tcp_config(server.port)) as transport,
    ):
        assert await transport.read(0, Table.HOLDING, 1, 1) == [1]
        assert transport.stats.mismatches == 0


# --------------------------------------------------------------------------- 5 probe, logging


async def test_probe_connects_without_a_request_and_ignores_the_backoff(
    unused_port: int,
) -> None:
    """Test that probe connects without sending a request and ignores the backoff."""
    port = unused_port
    async with opened(
        tcp_config(port, reconnect_min=30.0, reconnect_max=60.0)
    ) as transport:
        assert not await transport.probe()
        # tried again at once: the probe ignores backoff
        assert not await transport.probe()
        assert transport.stats.connect_failures == 2
        server = RawServer(honest)
        server.port = port
        await server.start()
        try:
            with pytest.raises(ModbusConnectionError, match="backoff"):
                await transport.read(1, Table.HOLDING, 0, 1)
            assert await transport.probe()
            assert transport.connected
            assert server.accepted == 1
            assert server.requests == []  # no request was sent
            assert transport.backoff_remaining == 0
            assert await transport.probe()  # already open: nothing new
            assert server.accepted == 1
            assert await transport.read(1, Table.HOLDING, 4, 1) == [4]  # at once
            await transport.close()
            assert not await transport.probe()
            assert server.accepted == 1
        finally:
            await server.stop()


async def test_down_and_back_are_logged_once_each(
    unused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Test that a connection going down and coming back is logged once each."""
    port = unused_port
    transport_logger = "adaptive_modbus_engine.transport"
    caplog.set_level(logging.DEBUG, logger=transport_logger)
    async with opened(
        tcp_config(port, reconnect_min=0.0, reconnect_max=0.0)
    ) as transport:
        for _ in range(3):
            assert not await transport.probe()
            with pytest.raises(ModbusConnectionError):
                await transport.read(1, Table.HOLDING, 0, 1)
        server = RawServer(honest)
        server.port = port
        await server.start()
        try:
            for _ in range(3):
                assert await transport.read(1, Table.HOLDING, 0, 1) == [0]
                await transport.end_cycle()
        finally:
            await server.stop()
    mine = [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name == transport_logger
    ]
    assert [r.levelno for r in mine] == [logging.WARNING, logging.INFO], mine
    assert f"{LOOPBACK}:{port}" in mine[0].getMessage()
    assert f"{LOOPBACK}:{port}" in mine[1].getMessage()


@pytest.fixture
def pymodbus_log_levels() -> Iterator[None]:
    """Restore pymodbus' logger levels after the test."""
    loggers = [logging.getLogger(name) for name in compat.PYMODBUS_LOGGERS]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
    yield
    for lg, level in zip(loggers, saved, strict=True):
        lg.setLevel(level)


@pytest.mark.usefixtures("pymodbus_log_levels")
async def test_pymodbus_logs_stay_out_of_the_log_at_normal_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that pymodbus' own logs stay out of a log at normal levels."""
    caplog.set_level(logging.WARNING)  # the root level of a normal HA log
    async with (
        raw_server(silent) as server,
        opened(tcp_config(server.port, timeout=0.2)) as transport,
    ):
        with pytest.raises(ModbusTimeout):
            await transport.read(1, Table.HOLDING, 0, 1)
    assert logging.getLogger("pymodbus").level == compat.QUIET_LEVEL
    assert not [r for r in caplog.records if r.name.startswith("pymodbus")]


@pytest.mark.usefixtures("pymodbus_log_levels")
def test_a_level_the_user_set_on_pymodbus_is_kept() -> None:
    """Test that a log level the user set on pymodbus is kept."""
    logging.getLogger("pymodbus").setLevel(logging.DEBUG)
    assert not compat.quiet_pymodbus_logging()
    PymodbusTransport(TransportConfig())
    assert logging.getLogger("pymodbus").level == logging.DEBUG
    logging.getLogger("pymodbus").setLevel(logging.NOTSET)
    logging.getLogger("pymodbus.logging").setLevel(logging.INFO)
    assert not compat.quiet_pymodbus_logging()
    assert logging.getLogger("pymodbus").level == logging.NOTSET
    logging.getLogger("pymodbus.logging").setLevel(logging.NOTSET)
    assert compat.quiet_pymodbus_logging()
    assert not compat.quiet_pymodbus_logging()  # idempotent
    assert logging.getLogger("pymodbus").level == compat.QUIET_LEVEL


# --------------------------------------------------------------------------- 6 framing


@pytest.mark.parametrize(
    ("server_framer", "configured", "answering"),
    [
        ("socket", TransportKind.RTU_OVER_TCP, TransportKind.TCP),
        ("rtu", TransportKind.TCP, TransportKind.RTU_OVER_TCP),
        ("socket", TransportKind.TCP, TransportKind.TCP),
        ("rtu", TransportKind.RTU_OVER_TCP, TransportKind.RTU_OVER_TCP),
    ],
)
async def test_detect_framer_against_the_simulator(
    start_server: ServerFactory,
    server_framer: str,
    configured: TransportKind,
    answering: TransportKind,
) -> None:
    """Test framing detection against the simulator for each framing pair."""
    server = await start_server(framer=server_framer)
    config = tcp_config(server.port, configured)
    assert await detect_framer(config, 1) is answering
    # an exception response proves the framing as well as data does
    assert (
        await detect_framer(config, 1, table=Table.HOLDING, address=19, count=5)
        is answering
    )
    if answering is configured:
        await verify_framing(config, 1)
        return
    with pytest.raises(FramingMismatch) as info:
        await verify_framing(config, 1)
    assert (info.value.configured, info.value.answering) == (
        configured.value,
        answering.value,
    )
    assert info.value.kind is ErrorKind.CONNECTION
    assert str(server.port) in str(info.value)
    # the wrong framer alone gets no answer (what the user saw before: a timeout)
    async with opened(config) as transport:
        with pytest.raises(ModbusTimeout):
            await transport.read(1, Table.HOLDING, 0, 1)


async def test_detect_framer_when_nothing_answers(unused_port: int) -> None:
    """Test that framing detection gives None when nothing answers."""
    async with raw_server(silent) as server:
        assert await detect_framer(tcp_config(server.port), 1) is None
        assert server.accepted == 2  # both framings tried
        # silence is not a framing problem
        await verify_framing(tcp_config(server.port), 1)
    with pytest.raises(ModbusConnectionError):
        await detect_framer(tcp_config(unused_port), 1)
    with pytest.raises(ValueError, match="serial"):
        await detect_framer(TransportConfig(kind=TransportKind.SERIAL), 1)
