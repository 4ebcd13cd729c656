"""Fixtures of the reliability suite.

A real simulator behind the fault-injecting proxy, and the HA fixtures of
tests/ha/conftest.py (virtual time for the integration).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

from .harness import ProxiedFactory, ha_conftest
from .proxy import Proxy

vtime = ha_conftest.vtime  # the integration's clocks swapped for a virtual one


@pytest.fixture
async def proxied() -> AsyncIterator[ProxiedFactory]:
    """Provide a factory of simulator servers behind the proxy.

    Use: ``server, proxy = await proxied(device)``: a real simulator server on
    loopback with the proxy in front; both stopped at the end.
    """
    started: list[tuple[SimulatorServer, Proxy]] = []

    async def factory(device: Any, **kwargs: Any) -> tuple[SimulatorServer, Proxy]:
        server = SimulatorServer(device, host="127.0.0.1", port=0, **kwargs)
        await server.start()
        proxy = Proxy(server.port)
        await proxy.start()
        started.append((server, proxy))
        return server, proxy

    yield factory
    for server, proxy in started:
        await proxy.stop()
        await server.stop()
