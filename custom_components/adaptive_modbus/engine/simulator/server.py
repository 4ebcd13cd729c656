"""Serve a simulated device as a real Modbus server with pymodbus.

Modbus TCP, RTU over TCP (RTU framer on a TCP socket), UDP, and serial RTU (for pty
tests). Values are computed from the device at request time; the device's illegal
addresses answer exception code 2, unknown units get no answer at all (like a real
bus). Port 0 binds any free port; :attr:`SimulatorServer.port` reports the bound one.

    async with SimulatorServer(SimulatedDevice(seed=42)) as server:
        print(server.port)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
import contextlib
from dataclasses import dataclass
from enum import StrEnum
import logging
import time
from types import TracebackType
from typing import Any, Protocol, Self

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer, ModbusUdpServer

from .. import pymodbus_compat as compat
from ..errors import (
    DeviceFailure,
    IllegalAddress,
    IllegalFunction,
    ModbusError,
    ModbusTimeout,
)
from ..registers import Table

_LOGGER = logging.getLogger(__name__)

_REQUEST_LOG_SIZE = 10_000


class ServedDevice(Protocol):
    """The part of :class:`SimulatedDevice` the server needs."""

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Words or 0/1 bits; raises IllegalAddress / ModbusTimeout (unknown unit)."""

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write holding registers."""

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write one coil."""


class ServerKind(StrEnum):
    """Link of the served device."""

    TCP = "tcp"
    UDP = "udp"
    SERIAL = "serial"


class ServerFramer(StrEnum):
    """Framing on the link: Modbus TCP (MBAP) or RTU."""

    SOCKET = "socket"
    RTU = "rtu"


@dataclass(frozen=True)
class RequestRecord:
    """One request the server processed (for tests: order and timing)."""

    at: float  # time.monotonic() when processing started
    unit_id: int
    function_code: int
    address: int
    count: int


def _code_for(err: ModbusError) -> int:
    if err.code is not None:  # the device chose the code (e.g. 3: illegal data value)
        return err.code
    if isinstance(err, IllegalAddress):
        return compat.EXC_ILLEGAL_ADDRESS
    if isinstance(err, IllegalFunction):
        return compat.EXC_ILLEGAL_FUNCTION
    if isinstance(err, DeviceFailure):
        return compat.EXC_DEVICE_FAILURE
    return compat.EXC_DEVICE_FAILURE


class _DeviceBackend:
    """:class:`pymodbus_compat.DatastoreBackend` answering from a device, live."""

    def __init__(
        self, device: ServedDevice, unit_ids: list[int], server: SimulatorServer
    ) -> None:
        self._device = device
        self._unit_ids = unit_ids
        self._server = server

    def unit_ids(self) -> list[int]:
        return list(self._unit_ids)

    def _record(self, unit_id: int, func_code: int, address: int, count: int) -> None:
        self._server.requests.append(
            RequestRecord(time.monotonic(), unit_id, func_code, address, count)
        )

    def get(
        self,
        unit_id: int,
        func_code: int,
        address: int,
        count: int,
        *,
        record: bool = True,
    ) -> list[int] | int:
        table = compat.FUNCTION_TABLE.get(func_code)
        if table is None:
            return compat.EXC_ILLEGAL_FUNCTION
        # not a write's read-back
        if record and compat.READ_FUNCTION[table] == func_code:
            self._record(unit_id, func_code, address, count)
        try:
            return self._device.read(unit_id, table, address, count)
        except ModbusTimeout:
            raise compat.no_such_unit(unit_id) from None
        except ModbusError as err:
            return _code_for(err)

    def set(
        self, unit_id: int, func_code: int, address: int, values: list[int]
    ) -> int | None:
        self._record(unit_id, func_code, address, len(values))
        try:
            if func_code in (compat.FC_WRITE_COIL, compat.FC_WRITE_COILS):
                for offset, value in enumerate(values):
                    self._device.write_coil(unit_id, address + offset, bool(value))
            elif func_code in (
                compat.FC_WRITE_REGISTER,
                compat.FC_WRITE_REGISTERS,
                compat.FC_READ_WRITE_REGISTERS,
            ):
                self._device.write_registers(unit_id, address, values)
            else:
                return compat.EXC_ILLEGAL_FUNCTION
        except ModbusTimeout:
            raise compat.no_such_unit(unit_id) from None
        except ModbusError as err:
            return _code_for(err)
        return None

    def check_write(
        self, unit_id: int, func_code: int, address: int, count: int
    ) -> int | None:
        """Exception code a write would get, judged from the device's register map."""
        table = compat.FUNCTION_TABLE.get(func_code)
        if table is None:
            return compat.EXC_ILLEGAL_FUNCTION
        code = self.get(
            unit_id, compat.READ_FUNCTION[table], address, count, record=False
        )
        if isinstance(code, int):
            return code
        registers_for = getattr(self._device, "registers_for", None)
        specs = (  # a fleet has a map per unit
            registers_for(unit_id)
            if registers_for is not None
            else getattr(self._device, "registers", None)
        )
        if specs is None:  # no map to judge from: let the write itself decide
            return None
        covered: set[int] = set()
        for spec in specs:
            if spec.table is table and spec.writable:
                covered.update(range(spec.address, spec.end))
        if not covered.issuperset(range(address, address + count)):
            return compat.EXC_ILLEGAL_ADDRESS
        return None

    async def delay(self) -> None:
        if self._server.response_delay > 0:
            await asyncio.sleep(self._server.response_delay)


class _TcpServer(ModbusTcpServer):
    """pymodbus TCP server that counts accepted connections."""

    accepted = 0

    def callback_new_connection(self) -> Any:
        """Count, then let pymodbus make the request handler."""
        self.accepted += 1
        return super().callback_new_connection()  # type: ignore[no-untyped-call]


class SimulatorServer:
    """A running pymodbus server in front of a simulated device.

    ``response_delay`` (seconds, settable while running) delays every datastore access,
    simulating a slow device or bus. ``requests`` records what was processed.
    """

    def __init__(
        self,
        device: ServedDevice,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kind: ServerKind | str = ServerKind.TCP,
        framer: ServerFramer | str = ServerFramer.SOCKET,
        serial_port: str = "",
        baudrate: int = 9600,
        unit_ids: Iterable[int] | None = None,
        response_delay: float = 0.0,
    ) -> None:
        """Prepare a server for ``device`` on ``host``:``port`` (not started yet)."""
        self.device = device
        self.host = host
        self.port = port
        self.kind = ServerKind(kind)
        self.framer = ServerFramer(framer)
        self.serial_port = serial_port
        self.baudrate = baudrate
        if unit_ids is None:
            unit_ids = (int(getattr(device, "unit_id", 1)),)
        self.unit_ids = sorted(set(unit_ids))
        self.response_delay = response_delay
        self.requests: deque[RequestRecord] = deque(maxlen=_REQUEST_LOG_SIZE)
        self._server: Any = None

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._server is not None

    @property
    def accepted_connections(self) -> int:
        """TCP connections accepted since start."""
        return int(getattr(self._server, "accepted", 0))

    @property
    def active_connections(self) -> int:
        """TCP connections open now."""
        if self._server is None:
            return 0
        return len(self._server.active_connections)

    def _make_server(self) -> Any:
        context = compat.make_server_context(
            _DeviceBackend(self.device, self.unit_ids, self)
        )
        framer = (
            FramerType.RTU if self.framer is ServerFramer.RTU else FramerType.SOCKET
        )
        extra = compat.server_kwargs(ignore_missing_units=True)
        if self.kind is ServerKind.SERIAL:
            return ModbusSerialServer(
                context,
                framer=FramerType.RTU,
                port=self.serial_port,
                baudrate=self.baudrate,
                **extra,
            )
        address = (self.host, self.port)
        if self.kind is ServerKind.UDP:
            return ModbusUdpServer(context, framer=framer, address=address, **extra)
        return _TcpServer(context, framer=framer, address=address, **extra)

    async def start(self) -> int:
        """Start listening; return the bound port (0 for serial)."""
        if self._server is not None:
            return self.port
        server = self._make_server()
        with contextlib.suppress(RuntimeError):  # pymodbus >= 3.9 if it cannot listen
            await server.serve_forever(background=True)
        if not server.transport:
            await compat.wait_closed(server)
            where = (
                self.serial_port
                if self.kind is ServerKind.SERIAL
                else (f"{self.host}:{self.port}")
            )
            raise OSError(f"Modbus simulator cannot listen on {where}")
        self._server = server
        if self.kind is ServerKind.TCP:
            self.port = int(server.transport.sockets[0].getsockname()[1])
        elif self.kind is ServerKind.UDP:
            self.port = int(server.transport.get_extra_info("sockname")[1])
        else:
            self.port = 0
        _LOGGER.debug(
            "Modbus simulator %s/%s on %s", self.kind, self.framer, self.address
        )
        return self.port

    @property
    def address(self) -> str:
        """Where the server listens, for humans."""
        if self.kind is ServerKind.SERIAL:
            return self.serial_port
        return f"{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            await compat.wait_closed(server)

    async def __aenter__(self) -> Self:
        """Start the server."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        await self.stop()
