"""Config entry diagnostics: redacted configuration, engine snapshot, recent errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

if TYPE_CHECKING:
    from conftest import VirtualTime

pytestmark = [pytest.mark.usefixtures("socket_enabled"), pytest.mark.allow_hosts(["127.0.0.1"])]

REDACTED = "**REDACTED**"


async def test_diagnostics_redacts_host_and_shows_the_engine(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    vtime: VirtualTime,
    sim_server: SimulatorServer,
    tcp_entry: Any,
) -> None:
    """Host and title redacted; intervals, clusters, stats and errors present."""
    entry = tcp_entry(sim_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await vtime.run(entry.runtime_data.coordinator, 5 * 60)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    config = diagnostics["entry"]
    assert config["data"]["host"] == REDACTED
    assert config["title"] == REDACTED
    assert config["unique_id"] == REDACTED
    assert "127.0.0.1" not in str(config)
    assert config["data"]["port"] == sim_server.port
    assert config["options"]["timeout"] == 0.5

    engine = diagnostics["engine"]
    registers = engine["registers"]
    assert registers["1.outdoor_temperature"]["interval"] > 0
    assert registers["1.outdoor_temperature"]["enabled"] is True
    assert registers["1.uptime"]["enabled"] is False
    assert engine["clusters"], "clusters of the current plan"
    assert engine["rates"]["requests_per_minute"] > 0
    assert engine["totals"]["requests"] > 0
    assert engine["holes"], "the demo device's illegal address was learned"

    # the hole was found by an illegal-address answer: a recent error
    assert any(e["kind"] == "illegal_address" for e in diagnostics["recent_errors"])
    coordinator = diagnostics["coordinator"]
    assert coordinator["cycles"] > 5
    assert coordinator["state_writes_total"] > 0
    assert diagnostics["connection"]["kind"] == "tcp"
    assert diagnostics["connection"]["units"][0]["unit_id"] == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_diagnostics_of_the_demo_connection(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    vtime: VirtualTime,
    demo_entry: Any,
) -> None:
    """The demo connection reports its running simulator."""
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, demo_entry)
    assert diagnostics["connection"]["demo_server_running"] is True
    assert diagnostics["entry"]["data"]["connection"] == "demo"
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()
