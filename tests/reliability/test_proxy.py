"""The fault-injecting proxy itself: every fault does what it says, on real sockets."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import pytest

from custom_components.adaptive_modbus.engine.errors import (
    IllegalAddress,
    ModbusConnectionError,
    ModbusTimeout,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.device import SimulatedDevice
from custom_components.adaptive_modbus.engine.transport import (
    PymodbusTransport,
    TransportConfig,
)

from .harness import ProxiedFactory
from .proxy import Fault, Proxy, exception_frame, parse_request, read_frame

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

FAST: dict[str, Any] = {
    "timeout": 0.2,
    "retries": 0,
    "reconnect_min": 0.01,
    "reconnect_max": 0.05,
}


def read_request(
    tid: int, address: int, count: int, unit: int = 1, function: int = 4
) -> bytes:
    """Return a raw Modbus TCP read request frame."""
    pdu = struct.pack(">BHH", function, address, count)
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


async def exchange(port: int, frame: bytes, within: float = 0.5) -> bytes:
    """Send one frame on a fresh connection; return what came back before EOF/timeout."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(frame)
    await writer.drain()
    data = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await reader.read(512):
                data += chunk
                if (
                    len(data) >= 7
                    and len(data) >= 6 + struct.unpack(">H", data[4:6])[0]
                ):
                    break
    except (TimeoutError, ConnectionError):
        pass
    writer.close()
    return data


@pytest.fixture
async def demo_proxy(proxied: ProxiedFactory) -> Proxy:
    """Provide the demo device behind the proxy."""
    _server, proxy = await proxied(SimulatedDevice(seed=1))
    return proxy


def transport(proxy: Proxy, **kwargs: Any) -> PymodbusTransport:
    """Return a transport to the proxy with short timeouts."""
    config = TransportConfig(host="127.0.0.1", port=proxy.port, **{**FAST, **kwargs})
    return PymodbusTransport(config)


async def test_parse_and_exception_frames() -> None:
    """Test parsing a request and building an exception frame."""
    request = parse_request(read_request(7, 30, 2))
    assert (request.tid, request.unit_id, request.function, request.address, request.count) == (
        7, 1, 4, 30, 2,
    )  # fmt: skip
    assert exception_frame(request, 11) == struct.pack(">HHHBBB", 7, 0, 3, 1, 0x84, 11)


async def test_pass_forwards_and_counts(demo_proxy: Proxy) -> None:
    """Test that PASS forwards requests and counts them."""
    client = transport(demo_proxy)
    words = await client.read(1, Table.INPUT, 0, 3)
    assert len(words) == 3
    assert demo_proxy.counters.connects == 1
    assert demo_proxy.counters.requests == 1
    assert demo_proxy.open_sockets == 1
    await client.close()
    assert await _wait(lambda: demo_proxy.open_sockets == 0)


async def test_drop_closes_the_connection(demo_proxy: Proxy) -> None:
    """Test that DROP closes the connection."""
    client = transport(demo_proxy)
    demo_proxy.fault = Fault.DROP
    with pytest.raises((ModbusConnectionError, ModbusTimeout)):
        await client.read(1, Table.INPUT, 0, 3)
    assert await _wait(lambda: demo_proxy.open_sockets == 0)
    demo_proxy.fault = Fault.PASS  # switchable at run time
    assert len(await client.read(1, Table.INPUT, 0, 3)) == 3
    await client.close()


async def test_blackhole_never_answers(demo_proxy: Proxy) -> None:
    """Test that BLACKHOLE never answers."""
    client = transport(demo_proxy)
    demo_proxy.fault = Fault.BLACKHOLE
    t0 = time.monotonic()
    with pytest.raises(ModbusTimeout):
        await client.read(1, Table.INPUT, 0, 3)
    assert time.monotonic() - t0 >= 0.2
    assert demo_proxy.counters.requests == 1 and demo_proxy.counters.answered == 0
    await client.close()


async def test_delay_answers_late(demo_proxy: Proxy) -> None:
    """Test that DELAY answers late."""
    demo_proxy.fault, demo_proxy.delay = Fault.DELAY, 0.1
    t0 = time.monotonic()
    answer = await exchange(demo_proxy.port, read_request(1, 0, 3))
    assert time.monotonic() - t0 >= 0.1
    assert answer[7] == 4 and answer[8] == 6  # function 4, 6 bytes


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        (Fault.WRONG_UNIT, lambda good, bad: bad[6] != good[6] and bad[7:] == good[7:]),
        (
            Fault.WRONG_TID,
            lambda good, bad: bad[:2] != good[:2] and bad[2:] == good[2:],
        ),
        (Fault.TRUNCATE, lambda good, bad: 0 < len(bad) < len(good)),
        (Fault.GARBAGE, lambda good, bad: len(bad) >= 7 and bad != good),
    ],
)
async def test_answer_rewrites(demo_proxy: Proxy, fault: Fault, check: Any) -> None:
    """Test each fault that rewrites the answer."""
    # holding registers hold still (setpoints), so two reads give the same answer
    good = await exchange(demo_proxy.port, read_request(5, 0, 3, function=3))
    demo_proxy.fault = fault
    bad = await exchange(demo_proxy.port, read_request(5, 0, 3, function=3), within=0.3)
    assert check(good, bad), (good, bad)


@pytest.mark.parametrize("code", range(1, 12))
async def test_exception_codes_on_chosen_addresses(
    demo_proxy: Proxy, code: int
) -> None:
    """Test that a chosen address answers the exception code set for it."""
    demo_proxy.set_exceptions({30: code})
    answer = await exchange(demo_proxy.port, read_request(3, 28, 4))
    assert answer[7:] == bytes([0x84, code])
    # other addresses are forwarded
    answer = await exchange(demo_proxy.port, read_request(3, 0, 2))
    assert answer[7] == 4


async def test_exception_reaches_the_transport_classified(demo_proxy: Proxy) -> None:
    """Test that an injected exception reaches the transport as its error class."""
    client = transport(demo_proxy)
    demo_proxy.set_exceptions({30: 2})
    with pytest.raises(IllegalAddress):
        await client.read(1, Table.INPUT, 30, 2)
    await client.close()


async def test_one_client_refuses_the_second(demo_proxy: Proxy) -> None:
    """Test that a one-client proxy refuses a second client."""
    demo_proxy.one_client = True
    reader, writer = await asyncio.open_connection("127.0.0.1", demo_proxy.port)
    assert await _wait(lambda: demo_proxy.open_sockets == 1)
    second = await exchange(demo_proxy.port, read_request(1, 0, 1))
    assert second == b""  # closed without an answer
    assert demo_proxy.counters.refused == 1
    writer.write(read_request(2, 0, 1))
    await writer.drain()
    assert (await read_frame(reader))[7] == 4  # the first client still works
    writer.close()


async def test_offline_refuses_connects_then_online_on_the_same_port(
    demo_proxy: Proxy,
) -> None:
    """Test that offline refuses connects and online serves on the same port again."""
    port = demo_proxy.port
    await demo_proxy.offline()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await demo_proxy.online()
    assert demo_proxy.port == port
    assert (await exchange(port, read_request(1, 0, 1)))[7] == 4


async def _wait(predicate: Any, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
