"""PymodbusTransport against real servers on loopback (pymodbus' server and raw sockets).

Runs on the pymodbus HA pins (3.8.3) and the newest release: scripts/test_old_pymodbus.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import itertools
import struct
import time
from typing import Any

import pytest

from adaptive_modbus_engine import pymodbus_compat as compat
from adaptive_modbus_engine.errors import (
    DeviceFailure,
    ErrorKind,
    IllegalAddress,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.transport import (
    Backoff,
    Priority,
    PriorityLock,
    PymodbusTransport,
    Transport,
    TransportConfig,
    TransportKind,
    classify_exception_code,
)

LOOPBACK = "127.0.0.1"
ServerFactory = Callable[..., Awaitable[SimulatorServer]]
WaitUntil = Callable[..., Awaitable[bool]]

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts([LOOPBACK]),
    pytest.mark.old_pymodbus,
]

FAST = {"timeout": 0.3, "retries": 0, "reconnect_min": 0.05, "reconnect_max": 0.2}


def tcp_config(
    port: int, kind: TransportKind = TransportKind.TCP, **kwargs: Any
) -> TransportConfig:
    """Return a loopback config with short timeouts."""
    values: dict[str, Any] = {
        "kind": kind,
        "host": LOOPBACK,
        "port": port,
        **FAST,
        **kwargs,
    }
    return TransportConfig(**values)


@contextlib.asynccontextmanager
async def opened(config: TransportConfig) -> AsyncIterator[PymodbusTransport]:
    """Open a transport and close it at the end."""
    transport = PymodbusTransport(config)
    try:
        yield transport
    finally:
        await transport.close()


# --------------------------------------------------------------------------- pure parts


def test_pymodbus_transport_implements_protocol() -> None:
    """Test that PymodbusTransport implements the Transport protocol."""
    assert isinstance(PymodbusTransport(TransportConfig()), Transport)


@pytest.mark.parametrize(
    ("code", "write", "error", "kind"),
    [
        (1, False, IllegalFunction, ErrorKind.ILLEGAL_FUNCTION),
        (2, False, IllegalAddress, ErrorKind.ILLEGAL_ADDRESS),
        (3, False, IllegalAddress, ErrorKind.ILLEGAL_ADDRESS),
        (3, True, ModbusError, ErrorKind.OTHER),
        (4, False, DeviceFailure, ErrorKind.DEVICE_FAILURE),
        (5, False, ModbusError, ErrorKind.OTHER),
        (6, False, ModbusError, ErrorKind.OTHER),
        (10, False, ModbusTimeout, ErrorKind.TIMEOUT),
        (11, False, ModbusTimeout, ErrorKind.TIMEOUT),
        (12, False, DeviceFailure, ErrorKind.DEVICE_FAILURE),
    ],
)
def test_classify_exception_code(
    code: int, write: bool, error: type, kind: ErrorKind
) -> None:
    """Test the error class of each Modbus exception code."""
    err = classify_exception_code(code, 3, 40, write=write)
    assert type(err) is error
    assert err.kind is kind
    assert (err.unit_id, err.address, err.code) == (3, 40, code)


def test_backoff_doubles_caps_and_resets() -> None:
    """Test that the backoff doubles, stops at its cap and resets."""
    now = [100.0]
    backoff = Backoff(0.5, 3.0, lambda: now[0])
    assert backoff.remaining() == 0
    assert [backoff.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.remaining() == 3.0
    now[0] += 1.0
    assert backoff.remaining() == 2.0
    backoff.succeeded()
    assert backoff.remaining() == 0
    assert backoff.failed() == 0.5


async def test_priority_lock_serves_writes_first_then_fifo() -> None:
    """Test that the lock serves writes first, then in arrival order."""
    lock = PriorityLock()
    order: list[str] = []

    async def job(name: str, priority: Priority) -> None:
        async with lock.hold(priority):
            order.append(name)
            await asyncio.sleep(0)

    await lock.acquire()  # the request "in flight"
    tasks = [
        asyncio.create_task(job("r1", Priority.READ)),
        asyncio.create_task(job("r2", Priority.READ)),
        asyncio.create_task(job("w1", Priority.WRITE)),
        asyncio.create_task(job("r3", Priority.READ)),
        asyncio.create_task(job("w2", Priority.WRITE)),
    ]
    await asyncio.sleep(0.01)
    assert lock.waiting == 5
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["w1", "w2", "r1", "r2", "r3"]
    assert not lock.locked


async def test_priority_lock_cancelled_waiter_is_skipped() -> None:
    """Test that a cancelled waiter is skipped by the lock."""
    lock = PriorityLock()
    await lock.acquire()
    cancelled = asyncio.create_task(lock.acquire(Priority.WRITE))
    waiting = asyncio.create_task(lock.acquire(Priority.READ))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    lock.release()
    await asyncio.wait_for(waiting, 1)
    assert lock.locked
    lock.release()
    assert not lock.locked
    with pytest.raises(RuntimeError):
        lock.release()


async def test_requests_the_protocol_cannot_carry_are_refused_before_sending() -> None:
    """Test that requests the protocol cannot carry are refused before sending."""
    # nothing listens there: nothing is sent
    transport = PymodbusTransport(tcp_config(1))
    with pytest.raises(ModbusError, match="1-125"):
        await transport.read(1, Table.HOLDING, 0, 126)
    with pytest.raises(ModbusError):
        await transport.read(1, Table.COIL, 0, 2001)
    with pytest.raises(ModbusError):
        await transport.read(1, Table.INPUT, 65535, 2)
    with pytest.raises(ModbusError):
        await transport.write_registers(1, 0, [])
    with pytest.raises(ModbusError):
        await transport.write_registers(1, 0, [65536])
    with pytest.raises(ModbusError):
        await transport.read(256, Table.HOLDING, 0, 1)
    assert transport.stats.requests == 0
    assert transport.stats.connect_failures == 0


# --------------------------------------------------------------------------- pymodbus server


@pytest.mark.parametrize("kind", [TransportKind.TCP, TransportKind.RTU_OVER_TCP])
async def test_read_every_table(
    start_server: ServerFactory, kind: TransportKind
) -> None:
    """Test reading every table over each framing."""
    framer = "rtu" if kind is TransportKind.RTU_OVER_TCP else "socket"
    server = await start_server(framer=framer)
    async with opened(tcp_config(server.port, kind)) as transport:
        assert await transport.read(1, Table.HOLDING, 2, 3) == [102, 103, 104]
        assert await transport.read(1, Table.INPUT, 0, 5) == [200, 201, 202, 203, 204]
        assert await transport.read(1, Table.COIL, 0, 5) == [0, 1, 0, 1, 0]
        assert await transport.read(1, Table.DISCRETE, 1, 3) == [0, 1, 0]
        assert transport.connected
        assert transport.stats.requests == 4
        assert transport.stats.bytes_sent > 0 and transport.stats.bytes_received > 0


@pytest.mark.parametrize("kind", [TransportKind.TCP, TransportKind.RTU_OVER_TCP])
async def test_write_then_read_back(
    start_server: ServerFactory, static_device: Any, kind: TransportKind
) -> None:
    """Test writing registers and a coil, then reading them back."""
    device = static_device()
    framer = "rtu" if kind is TransportKind.RTU_OVER_TCP else "socket"
    server = await start_server(device, framer=framer)
    async with opened(tcp_config(server.port, kind)) as transport:
        await transport.write_registers(1, 4, [65535, 0, 1234])
        assert await transport.read(1, Table.HOLDING, 4, 3) == [65535, 0, 1234]
        await transport.write_registers(1, 9, [7])
        assert await transport.read(1, Table.HOLDING, 9, 1) == [7]
        await transport.write_coil(1, 0, True)
        await transport.write_coil(1, 1, False)
        assert await transport.read(1, Table.COIL, 0, 2) == [1, 0]
    assert device.tables[Table.HOLDING][4:7] == [65535, 0, 1234]
    assert device.tables[Table.COIL][:2] == [1, 0]


@pytest.mark.parametrize("kind", [TransportKind.TCP, TransportKind.RTU_OVER_TCP])
async def test_illegal_address(
    start_server: ServerFactory, kind: TransportKind
) -> None:
    """Test that an illegal address comes back as IllegalAddress."""
    framer = "rtu" if kind is TransportKind.RTU_OVER_TCP else "socket"
    server = await start_server(framer=framer)
    async with opened(tcp_config(server.port, kind)) as transport:
        with pytest.raises(IllegalAddress) as info:
            await transport.read(1, Table.INPUT, 5, 4)  # covers the hole at 7
        assert (info.value.unit_id, info.value.address) == (1, 5)
        with pytest.raises(IllegalAddress):
            await transport.read(1, Table.HOLDING, 18, 5)  # past the end
        with pytest.raises(IllegalAddress):
            await transport.write_registers(1, 19, [1, 2])
        # the connection stays usable after exception responses
        assert await transport.read(1, Table.INPUT, 8, 2) == [208, 209]
        assert transport.stats.errors == 3
        assert transport.stats.connects == 1


async def test_unknown_unit_times_out(start_server: ServerFactory) -> None:
    """Test that an unknown unit times out."""
    server = await start_server()
    async with opened(tcp_config(server.port)) as transport:
        start = time.monotonic()
        with pytest.raises(ModbusTimeout) as info:
            await transport.read(5, Table.HOLDING, 0, 1)
        assert time.monotonic() - start >= 0.3
        assert info.value.unit_id == 5
        assert await transport.read(1, Table.HOLDING, 0, 1) == [100]


async def test_connection_refused_then_backoff(unused_port: int) -> None:
    """Test that a refused connection is retried only after the backoff."""
    port = unused_port
    async with opened(
        tcp_config(port, reconnect_min=0.3, reconnect_max=1.0)
    ) as transport:
        with pytest.raises(ModbusConnectionError):
            await transport.connect()
        assert not transport.connected
        assert transport.backoff_remaining > 0.2
        # inside the backoff window no connect is even tried
        with pytest.raises(ModbusConnectionError, match="backoff") as info:
            await transport.read(1, Table.HOLDING, 0, 1)
        assert info.value.unit_id == 1
        assert transport.stats.connect_failures == 1
        await asyncio.sleep(transport.backoff_remaining + 0.01)
        with pytest.raises(ModbusConnectionError):
            await transport.read(1, Table.HOLDING, 0, 1)
        assert transport.stats.connect_failures == 2
        assert transport.backoff_remaining > 0.5  # doubled


async def test_reconnect_after_server_restart(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that the transport reconnects after the server restarts."""
    server = await start_server()
    async with opened(tcp_config(server.port)) as transport:
        assert await transport.read(1, Table.HOLDING, 0, 1) == [100]
        await server.stop()
        assert await wait_until(lambda: not transport.connected)
        with pytest.raises(ModbusConnectionError):
            await transport.read(1, Table.HOLDING, 0, 1)
        await server.start()  # same port again
        await asyncio.sleep(transport.backoff_remaining + 0.01)
        assert await transport.read(1, Table.HOLDING, 0, 1) == [100]
        assert transport.stats.connects == 2
        assert transport.backoff_remaining == 0


async def test_close_after_cycle(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that close_after_cycle closes the connection after each cycle."""
    server = await start_server()
    async with opened(tcp_config(server.port, close_after_cycle=True)) as transport:
        for cycle in range(3):
            assert await transport.read(1, Table.HOLDING, 0, 2) == [100, 101]
            assert await transport.read(1, Table.INPUT, 0, 2) == [200, 201]
            assert transport.connected
            await transport.end_cycle()
            assert not transport.connected
            assert await wait_until(lambda: server.active_connections == 0)
            assert server.accepted_connections == cycle + 1
        assert transport.stats.connects == 3


async def test_keeps_connection_without_close_after_cycle(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that the connection stays open between cycles by default."""
    server = await start_server()
    async with opened(tcp_config(server.port)) as transport:
        for _ in range(3):
            await transport.read(1, Table.HOLDING, 0, 1)
            await transport.end_cycle()
            assert transport.connected
        assert server.accepted_connections == 1
        await transport.close()
        assert not transport.connected
        assert await wait_until(lambda: server.active_connections == 0)


async def test_pause_between_requests(start_server: ServerFactory) -> None:
    """Test that the configured pause separates requests."""
    server = await start_server()
    pause = 0.1
    async with opened(tcp_config(server.port, pause=pause)) as transport:
        await asyncio.gather(
            *(transport.read(1, Table.HOLDING, i, 1) for i in range(4)),
            transport.write_registers(1, 10, [1]),
        )
    times = [record.at for record in server.requests]
    assert len(times) == 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= pause - 0.001, gaps


async def test_write_jumps_the_queue_of_reads(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that a write goes before reads that are waiting."""
    server = await start_server(response_delay=0.03)
    async with opened(tcp_config(server.port, timeout=2.0)) as transport:
        await transport.connect()
        reads = [
            asyncio.create_task(transport.read(1, Table.HOLDING, i % 10, 1))
            for i in range(20)
        ]
        try:
            # first read in flight
            assert await wait_until(lambda: len(server.requests) == 1)
            done_before = sum(task.done() for task in reads)
            assert done_before <= 1
            await transport.write_registers(1, 15, [4242])
            # the write waited for the one read in flight at most, not for the queue
            assert sum(task.done() for task in reads) <= done_before + 1
        finally:
            await asyncio.gather(*reads)
    codes = [record.function_code for record in server.requests]
    assert codes.index(compat.FC_WRITE_REGISTERS) <= done_before + 1, codes
    assert len(codes) == 21
    assert [task.result() for task in reads[-3:]] == [[107], [108], [109]]


async def test_udp(start_server: ServerFactory) -> None:
    """Test reading over Modbus UDP."""
    server = await start_server(kind="udp")
    async with opened(tcp_config(server.port, TransportKind.UDP)) as transport:
        assert await transport.read(1, Table.HOLDING, 0, 2) == [100, 101]
        await transport.write_registers(1, 0, [9])
        assert await transport.read(1, Table.HOLDING, 0, 1) == [9]
        with pytest.raises(IllegalAddress):
            await transport.read(1, Table.INPUT, 6, 2)


# --------------------------------------------------------------------------- raw servers


async def test_timeout_when_server_never_answers(silent_server: Any) -> None:
    """Test that a server that never answers gives a timeout after the retries."""
    async with opened(tcp_config(silent_server.port, retries=1)) as transport:
        start = time.monotonic()
        with pytest.raises(ModbusTimeout) as info:
            await transport.read(1, Table.HOLDING, 0, 1)
        elapsed = time.monotonic() - start
        assert info.value.kind is ErrorKind.TIMEOUT
        assert 0.6 <= elapsed < 1.5
        assert transport.stats.requests == 2
        assert transport.stats.retries == 1
        assert transport.stats.timeouts == 2
        # a timeout drops the connection: the retry ran on a fresh one
        assert silent_server.accepted == 2


Answer = bytes | tuple[float, bytes] | None
Behaviour = Callable[[int, int, bytes], Answer]


class ScriptedServer:
    """A raw Modbus TCP server whose answers come from ``behaviour(n, function, pdu)``.

    ``n`` counts requests from 0; the behaviour returns the response PDU, a pair
    (delay in seconds, response PDU) to answer late, or None to stay silent.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        """Prepare a server that answers as ``behaviour`` says."""
        self.behaviour = behaviour
        self.count = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    header = await reader.readexactly(7)
                    tid, _, length, unit = struct.unpack(">HHHB", header)
                    pdu = await reader.readexactly(length - 1)
                    answer = self.behaviour(self.count, pdu[0], pdu)
                    self.count += 1
                    delay = 0.0
                    if isinstance(answer, tuple):
                        delay, answer = answer
                    if answer is not None:
                        frame = (
                            struct.pack(">HHHB", tid, 0, len(answer) + 1, unit) + answer
                        )
                        if delay:
                            asyncio.get_running_loop().call_later(
                                delay, writer.write, frame
                            )
                        else:
                            writer.write(frame)
                            await writer.drain()
            writer.close()

        self._server = await asyncio.start_server(handle, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close the server."""
        if self._server is not None:
            self._server.close()


@contextlib.asynccontextmanager
async def scripted(behaviour: Behaviour) -> AsyncIterator[ScriptedServer]:
    """Run a server that answers as ``behaviour`` says."""
    server = ScriptedServer(behaviour)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def registers_answer(pdu: bytes) -> bytes:
    """Answer a read of holding/input registers with word = address + index."""
    address, count = struct.unpack(">HH", pdu[1:5])
    words = [address + i for i in range(count)]
    return bytes([pdu[0], 2 * count]) + struct.pack(f">{count}H", *words)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (1, IllegalFunction),
        (2, IllegalAddress),
        (3, IllegalAddress),
        (4, DeviceFailure),
        (6, ModbusError),
        (11, ModbusTimeout),
    ],
)
async def test_exception_codes_from_the_wire(
    code: int, error: type[ModbusError]
) -> None:
    """Test that exception codes on the wire become the right errors."""
    async with (
        scripted(lambda n, fc, pdu: bytes([fc | 0x80, code])) as server,
        opened(tcp_config(server.port)) as transport,
    ):
        with pytest.raises(error) as read_info:
            await transport.read(1, Table.INPUT, 3, 2)
        assert type(read_info.value) is error and read_info.value.code == code
        with pytest.raises(ModbusError) as info:
            await transport.write_registers(1, 3, [1])
        if code == 3:
            assert info.value.kind is ErrorKind.OTHER  # a refused value, not an address
        else:
            assert type(info.value) is error


async def test_retry_succeeds_after_a_timeout() -> None:
    """Test that a read retried after a timeout succeeds."""

    def behaviour(n: int, fc: int, pdu: bytes) -> Answer:
        return None if n == 0 else registers_answer(pdu)

    async with (
        scripted(behaviour) as server,
        opened(tcp_config(server.port, retries=2)) as transport,
    ):
        assert await transport.read(1, Table.HOLDING, 10, 2) == [10, 11]
        assert transport.stats.retries == 1
        assert transport.stats.timeouts == 1
        assert server.count == 2


async def test_late_answer_is_not_taken_for_the_next_request() -> None:
    """A reply arriving after the timeout must not answer the following request."""

    def behaviour(n: int, fc: int, pdu: bytes) -> Answer:
        if n == 0:
            return (0.45, registers_answer(pdu))  # after the 0.3 s timeout
        return registers_answer(pdu)

    async with (
        scripted(behaviour) as server,
        opened(tcp_config(server.port, retries=0)) as transport,
    ):
        with pytest.raises(ModbusTimeout):
            await transport.read(1, Table.HOLDING, 100, 1)
        assert await transport.read(1, Table.HOLDING, 200, 1) == [200]
        await asyncio.sleep(0.2)  # the late answer has been sent by now
        assert await transport.read(1, Table.HOLDING, 300, 1) == [300]


async def test_connection_lost_mid_request() -> None:
    """The server closes the socket instead of answering: an error at once, then recovery."""

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read(100)
        writer.close()

    dropper = await asyncio.start_server(handle, LOOPBACK, 0)
    port = int(dropper.sockets[0].getsockname()[1])
    try:
        async with opened(tcp_config(port, timeout=0.5)) as transport:
            start = time.monotonic()
            with pytest.raises((ModbusConnectionError, ModbusTimeout)):
                await transport.read(1, Table.HOLDING, 0, 1)
            assert not transport.connected
            elapsed = time.monotonic() - start
    finally:
        dropper.close()
    assert elapsed < 1.0  # at worst the request timeout (pymodbus may notice only then)
