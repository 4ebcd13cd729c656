"""Serial RTU through a pty pair made by socat: pymodbus serial server <-> PymodbusTransport."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adaptive_modbus_engine.errors import (
    IllegalAddress,
    ModbusConnectionError,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.transport import (
    PymodbusTransport,
    TransportConfig,
    TransportKind,
)

ServerFactory = Callable[..., Awaitable[SimulatorServer]]

pytestmark = pytest.mark.old_pymodbus


def serial_config(port: str, **kwargs: object) -> TransportConfig:
    """Return a serial RTU config at 19200 baud with short timeouts."""
    values: dict[str, object] = {
        "kind": TransportKind.SERIAL,
        "serial_port": port,
        "baudrate": 19200,
        "timeout": 0.3,
        "retries": 0,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
    }
    values.update(kwargs)
    return TransportConfig(**values)  # type: ignore[arg-type]


async def test_serial_rtu_over_pty(
    start_server: ServerFactory, static_device: Any, pty_pair: tuple[str, str]
) -> None:
    """Test reading and writing serial RTU over a pty pair."""
    server_end, client_end = pty_pair
    device = static_device()
    await start_server(device, kind="serial", serial_port=server_end, baudrate=19200)
    transport = PymodbusTransport(serial_config(client_end, pause=0.01))
    try:
        await transport.connect()
        assert transport.connected
        assert await transport.read(1, Table.HOLDING, 0, 3) == [100, 101, 102]
        assert await transport.read(1, Table.INPUT, 10, 2) == [210, 211]
        assert await transport.read(1, Table.COIL, 0, 4) == [0, 1, 0, 1]
        assert await transport.read(1, Table.DISCRETE, 0, 2) == [1, 0]
        await transport.write_registers(1, 3, [4321, 1])
        assert await transport.read(1, Table.HOLDING, 3, 2) == [4321, 1]
        await transport.write_coil(1, 0, True)
        assert await transport.read(1, Table.COIL, 0, 1) == [1]
        with pytest.raises(IllegalAddress):
            await transport.read(1, Table.INPUT, 6, 3)
        # another unit on the bus does not answer: a timeout, and the bus still works
        with pytest.raises(ModbusTimeout):
            await transport.read(9, Table.HOLDING, 0, 1)
        assert await transport.read(1, Table.HOLDING, 1, 1) == [101]
        await transport.end_cycle()
        assert transport.connected  # close_after_cycle is off
    finally:
        await transport.close()
    assert device.tables[Table.HOLDING][3:5] == [4321, 1]


async def test_serial_close_after_cycle_reopens(
    start_server: ServerFactory, pty_pair: tuple[str, str]
) -> None:
    """Test that a serial port closed after a cycle reopens for the next."""
    server_end, client_end = pty_pair
    await start_server(kind="serial", serial_port=server_end, baudrate=19200)
    transport = PymodbusTransport(serial_config(client_end, close_after_cycle=True))
    try:
        for _ in range(2):
            assert await transport.read(1, Table.HOLDING, 0, 1) == [100]
            await transport.end_cycle()
            assert not transport.connected
        assert transport.stats.connects == 2
    finally:
        await transport.close()


async def test_serial_port_missing() -> None:
    """Test that a missing serial port is a connection error."""
    transport = PymodbusTransport(serial_config("/nonexistent/ttyX"))
    with pytest.raises(ModbusConnectionError):
        await transport.connect()
    assert not transport.connected
