"""Shared fixtures of the engine tests: real Modbus servers on loopback and pty pairs.

The engine is imported as the package ``adaptive_modbus_engine`` (installed editable by
scripts/setup, from a built wheel by scripts/test_old_pymodbus, where Home Assistant is
not installed): nothing here imports the integration or Home Assistant.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
import contextlib
import socket
import time
from typing import Any

import pytest

from adaptive_modbus_engine.errors import IllegalAddress, ModbusTimeout
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.simulator.server import SimulatorServer

LOOPBACK = "127.0.0.1"


class StaticDevice:
    """A tiny deterministic device for transport tests (the demo device changes over time).

    Every table has addresses 0..size-1; holding[i] = 100 + i, input[i] = 200 + i,
    coil[i] = i % 2, discrete[i] = (i + 1) % 2. ``holes`` (input table) raise
    IllegalAddress, as does anything past the end. Other unit ids never answer.
    """

    def __init__(
        self, unit_id: int = 1, size: int = 20, holes: Sequence[int] = (7,)
    ) -> None:
        """Fill the tables of ``unit_id`` with ``size`` known values."""
        self.unit_id = unit_id
        self.size = size
        self.holes = frozenset(holes)
        self.tables: dict[Table, list[int]] = {
            Table.HOLDING: [100 + i for i in range(size)],
            Table.INPUT: [200 + i for i in range(size)],
            Table.COIL: [i % 2 for i in range(size)],
            Table.DISCRETE: [(i + 1) % 2 for i in range(size)],
        }

    def _check(self, unit_id: int, table: Table, address: int, count: int) -> None:
        if unit_id != self.unit_id:
            raise ModbusTimeout(f"no unit {unit_id}", unit_id=unit_id)
        if address < 0 or count < 1 or address + count > self.size:
            raise IllegalAddress(
                f"{table} {address}+{count}", unit_id=unit_id, address=address
            )
        if table is Table.INPUT and any(
            address <= h < address + count for h in self.holes
        ):
            raise IllegalAddress(
                f"hole in {address}+{count}", unit_id=unit_id, address=address
            )

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Return the stored values."""
        self._check(unit_id, table, address, count)
        return self.tables[table][address : address + count]

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Store holding registers."""
        self._check(unit_id, Table.HOLDING, address, len(values))
        self.tables[Table.HOLDING][address : address + len(values)] = list(values)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Store one coil."""
        self._check(unit_id, Table.COIL, address, 1)
        self.tables[Table.COIL][address] = int(value)


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], within: float = 2.0) -> bool:
    """Poll ``predicate`` until it is true or ``within`` seconds pass; return its last value."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


ServerFactory = Callable[..., Awaitable[SimulatorServer]]
WaitUntil = Callable[..., Awaitable[bool]]


@pytest.fixture(name="static_device")
def static_device_fixture() -> type[StaticDevice]:
    """Provide the :class:`StaticDevice` class to test modules."""
    return StaticDevice


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> WaitUntil:
    """Provide the :func:`wait_until` helper."""
    return wait_until


@pytest.fixture
def unused_port() -> int:
    """Provide a loopback TCP port nobody listens on."""
    return free_port()


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start simulator servers on loopback and stop them all after the test.

    Use: ``await start_server(device=None, **SimulatorServer kwargs)``.
    """
    servers: list[SimulatorServer] = []

    async def factory(device: Any = None, **kwargs: Any) -> SimulatorServer:
        server = SimulatorServer(
            device if device is not None else StaticDevice(), **kwargs
        )
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


class SilentServer:
    """A TCP server that accepts connections and never answers."""

    def __init__(self) -> None:
        """Prepare a server that accepts connections and never answers."""
        self.accepted = 0
        self.received = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""

        async def handle(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            self.accepted += 1
            self._writers.append(writer)
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(256):
                    self.received += 1 if data else 0

        self._server = await asyncio.start_server(handle, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Close every connection and the server."""
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent_server() -> AsyncIterator[SilentServer]:
    """Provide a started :class:`SilentServer`."""
    server = SilentServer()
    await server.start()
    yield server
    await server.stop()
