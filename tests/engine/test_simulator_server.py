"""The demo device served by pymodbus: values live from the device, holes, writes, CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import importlib
import importlib.util
import re
import signal
import sys

import pytest

from adaptive_modbus_engine.errors import (
    DeviceFailure,
    IllegalAddress,
    ModbusError,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.transport import (
    PymodbusTransport,
    TransportConfig,
    TransportKind,
)

LOOPBACK = "127.0.0.1"
ServerFactory = Callable[..., Awaitable[SimulatorServer]]
WaitUntil = Callable[..., Awaitable[bool]]

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts([LOOPBACK]),
    pytest.mark.old_pymodbus,
]

# the installed package (editable in .venv, a built wheel in the pymodbus 3.8.3 venv); -I
# keeps the repository and PYTHONPATH off the path, so the import comes from the install
CLI_MODULE = "adaptive_modbus_engine.simulator"


def transport_for(
    server: SimulatorServer, kind: TransportKind = TransportKind.TCP
) -> PymodbusTransport:
    """Return a transport to ``server`` with short timeouts."""
    return PymodbusTransport(
        TransportConfig(
            kind=kind, host=LOOPBACK, port=server.port, timeout=0.3, retries=0
        )
    )


@pytest.mark.parametrize("framer", ["socket", "rtu"])
async def test_values_are_computed_live_from_the_device(
    start_server: ServerFactory, framer: str
) -> None:
    """Test that the server computes values live from the device."""
    clock = VirtualClock(1_000_000.0)
    device = SimulatedDevice(seed=42, clock=clock.now)
    server = await start_server(device, framer=framer)
    assert server.port > 0
    kind = TransportKind.RTU_OVER_TCP if framer == "rtu" else TransportKind.TCP
    transport = transport_for(server, kind)
    try:
        for step in range(3):
            clock.advance_to(
                1_000_000.0 + step * 900.0
            )  # a new scenario phase each time
            for table in Table:
                space = device.address_space(table)
                if not len(space):
                    continue
                hole = min(device.holes(table), default=None)
                stop = space.stop if hole is None else hole
                count = min(stop - space.start, 100)
                expected = device.read(1, table, space.start, count)
                assert await transport.read(1, table, space.start, count) == expected
    finally:
        await transport.close()


async def test_hole_answers_illegal_address(start_server: ServerFactory) -> None:
    """Test that a read of the hole answers illegal address."""
    device = SimulatedDevice(seed=1)
    server = await start_server(device)
    transport = transport_for(server)
    try:
        (hole,) = device.holes(Table.INPUT)
        with pytest.raises(IllegalAddress):
            await transport.read(1, Table.INPUT, hole - 2, 4)
        assert len(await transport.read(1, Table.INPUT, hole - 2, 2)) == 2
        assert len(await transport.read(1, Table.INPUT, hole + 1, 2)) == 2
        end = device.address_space(Table.HOLDING).stop
        with pytest.raises(IllegalAddress):
            await transport.read(1, Table.HOLDING, end, 1)
        if device.max_read_words < 125:
            with pytest.raises(DeviceFailure):  # more than the device's block limit
                await transport.read(1, Table.INPUT, 0, device.max_read_words + 1)
    finally:
        await transport.close()


async def test_writes_reach_the_device(start_server: ServerFactory) -> None:
    """Test that writes over Modbus reach the device."""
    device = SimulatedDevice(seed=42)
    server = await start_server(device)
    setpoint = device.spec("room_setpoint")
    coil = device.spec("pump_enable")
    transport = transport_for(server)
    try:
        words = setpoint.encode(23.5)
        await transport.write_registers(1, setpoint.address, words)
        assert (
            await transport.read(1, Table.HOLDING, setpoint.address, len(words))
            == words
        )
        assert device.truth("room_setpoint", device.now()) == 23.5
        for value in (True, False):
            await transport.write_coil(1, coil.address, value)
            assert await transport.read(1, Table.COIL, coil.address, 1) == [int(value)]
        with pytest.raises(IllegalAddress):  # not writable
            await transport.write_registers(1, device.spec("flow_rate").address, [0, 0])
    finally:
        await transport.close()


async def test_other_unit_ids_get_no_answer(start_server: ServerFactory) -> None:
    """Test that other unit ids get no answer."""
    server = await start_server(SimulatedDevice(unit_id=3))
    transport = transport_for(server)
    try:
        with pytest.raises(ModbusTimeout):
            await transport.read(1, Table.INPUT, 0, 1)
        assert len(await transport.read(3, Table.INPUT, 0, 1)) == 1
    finally:
        await transport.close()


async def test_stop_closes_connections_and_restart_keeps_port(
    start_server: ServerFactory, wait_until: WaitUntil
) -> None:
    """Test that stop closes connections and a restart keeps the port."""
    server = await start_server(SimulatedDevice())
    port = server.port
    transport = transport_for(server)
    try:
        await transport.read(1, Table.INPUT, 0, 1)
        assert server.active_connections == 1
        await server.stop()
        assert not server.running
        assert await wait_until(lambda: not transport.connected)
        await server.start()
        assert server.port == port
        await asyncio.sleep(transport.backoff_remaining)
        assert len(await transport.read(1, Table.INPUT, 0, 1)) == 1
    finally:
        await transport.close()


async def test_port_in_use_is_an_error(start_server: ServerFactory) -> None:
    """Test that a port in use is an error."""
    first = await start_server(SimulatedDevice())
    with pytest.raises(OSError):
        await start_server(SimulatedDevice(), port=first.port)


async def test_cli_serves_until_interrupted() -> None:
    """Test that the simulator command serves until interrupted."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-m",
        CLI_MODULE,
        "--port",
        "0",
        "--seed",
        "7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        port = 0
        while not port:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "simulator exited: " + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
        text = "".join(lines)
        assert "seed 7" in text
        assert "input" in text and "illegal address" in text
        transport = PymodbusTransport(
            TransportConfig(host=LOOPBACK, port=port, timeout=1.0)
        )
        try:
            assert len(await transport.read(1, Table.INPUT, 0, 4)) == 4
        finally:
            await transport.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.skipif(
    importlib.util.find_spec("pymodbus.constants") is None
    or not hasattr(importlib.import_module("pymodbus.constants"), "ExcCodes"),
    reason="pymodbus < 3.9 lets a datastore refuse a write only as exception 2 or 4",
)
async def test_out_of_range_write_answers_illegal_data_value(
    start_server: ServerFactory,
) -> None:
    """A written value outside the map's min/max is exception 3 (illegal data value), not 4."""
    device = SimulatedDevice(seed=42)
    server = await start_server(device)
    setpoint = device.spec("room_setpoint")  # min 5, max 30
    transport = transport_for(server)
    try:
        with pytest.raises(ModbusError) as caught:
            await transport.write_registers(1, setpoint.address, setpoint.encode(45.0))
        assert caught.value.code == 3
        assert not isinstance(caught.value, DeviceFailure)
        assert device.truth("room_setpoint", device.now()) != 45.0
        # more registers in one read than the device accepts is exception 3 as well
        device.max_read_words = 2
        with pytest.raises(ModbusError) as caught:
            await transport.read(1, Table.HOLDING, 0, 3)
        assert caught.value.code == 3
    finally:
        await transport.close()
