"""Remediation from faults measured over a real connection.

Real pymodbus transport -> the reliability suite's fault proxy -> a real simulator
server on loopback; engine time on a virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from adaptive_modbus_engine.analytics import Analytics
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.scheduler import PollEngine
from adaptive_modbus_engine.simulator.device import SimulatedDevice
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.transport import PymodbusTransport, TransportConfig

from .harness import START, VirtualClock, drive
from .proxy import Proxy

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

BUSY = 6  # Modbus exception: slave device busy

type Rig = tuple[Proxy, VirtualClock, PollEngine, PymodbusTransport]


@pytest.fixture(name="rig")
async def rig_fixture() -> AsyncIterator[Callable[..., Coroutine[Any, Any, Rig]]]:
    """Build the demo device behind the proxy, polled by a real engine."""
    opened: list[tuple[SimulatorServer, Proxy, PymodbusTransport]] = []

    async def make(
        max_read_words: int | None = None, engine_config: EngineConfig | None = None
    ) -> Rig:
        clock = VirtualClock(START)
        device = SimulatedDevice(seed=42, clock=clock.now, start=clock.now())
        if max_read_words is not None:
            device.max_read_words = max_read_words
        server = SimulatorServer(device, host="127.0.0.1", port=0)
        await server.start()
        proxy = Proxy(server.port)
        await proxy.start()
        config = TransportConfig(host="127.0.0.1", port=proxy.port, timeout=0.2)
        transport = PymodbusTransport(config, clock=clock.now)
        engine = PollEngine(
            device.registers, transport, clock.now, engine_config or EngineConfig()
        )
        opened.append((server, proxy, transport))
        return proxy, clock, engine, transport

    yield make
    for server, proxy, transport in opened:
        await transport.close()
        await proxy.stop()
        await server.stop()


async def _run(engine: PollEngine, clock: VirtualClock, seconds: float) -> Analytics:
    analytics = Analytics()
    await drive(
        engine,
        clock,
        clock.now() + seconds,
        on_cycle=lambda result: analytics.observe(result, engine.snapshot()),
    )
    return analytics


async def test_busy_answers_over_the_wire_suggest_a_pause(
    rig: Callable[..., Coroutine[Any, Any, Rig]],
) -> None:
    """The proxy answers 'busy' for two addresses: a pause between requests.

    Free riders off: on this small device they grow every read over its whole table,
    so every request would touch address 0 or 30 and be answered busy, and the unit
    would rightly look down ('check_unit') instead of busy now and then.
    """
    proxy, clock, engine, _ = await rig(engine_config=EngineConfig(rider_value=0.0))
    proxy.set_exceptions({0: BUSY, 30: BUSY})
    analytics = await _run(engine, clock, 300)
    fixes = {f.key: f for f in analytics.remediation()}
    assert "add_pause" in fixes, fixes
    assert fixes["add_pause"].figures["busy_answers"] >= 3
    assert fixes["add_pause"].params == {"pause": 0.05}
    assert "check_unit" not in fixes and "remove_register" not in fixes


async def test_a_device_limited_to_20_registers_over_the_wire(
    rig: Callable[..., Coroutine[Any, Any, Rig]],
) -> None:
    """Exception 3 above 20 registers per read: lower max registers per read."""
    _, clock, engine, _ = await rig(max_read_words=20)
    analytics = await _run(engine, clock, 300)
    (fix,) = [f for f in analytics.remediation() if f.key == "lower_max_registers"]
    assert fix.figures["smallest_failed"] > 20 >= fix.params["max_registers"]


async def test_a_register_refused_over_the_wire_is_named(
    rig: Callable[..., Coroutine[Any, Any, Rig]],
) -> None:
    """Exception 2 for the uptime register alone: remove it from the map."""
    proxy, clock, engine, _ = await rig()
    proxy.set_exceptions({30: 2})
    analytics = await _run(engine, clock, 900)
    (fix,) = analytics.remediation()
    assert fix.key == "remove_register" and fix.uid == "1.uptime"
