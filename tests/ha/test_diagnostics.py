"""Config entry diagnostics: redacted configuration, engine snapshot, recent errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# imported before any test freezes time: the download adds system info, which imports
# hassio, whose models are compiled at import and break under a frozen datetime
import homeassistant.components.hassio  # noqa: F401
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.adaptive_modbus.const import (
    CONF_BAUDRATE,
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SERIAL_PORT,
    CONF_UNIT_ID,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DOMAIN,
    PROFILE_CUSTOM,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

if TYPE_CHECKING:
    from conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

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


SERIAL_MAP = """
registers:
  - name: Voltage
    table: input
    address: 0
    data_type: uint16
  - name: Serial number
    table: input
    address: 10
    data_type: string
    count: 8
"""
SERIAL_NUMBER = "SN-4711-SECRET"


def strings_in(data: Any) -> list[str]:
    """Every string in a JSON-like structure, keys included."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(data, list | tuple):
        return [s for v in data for s in strings_in(v)]
    return []


async def test_diagnostics_redacted_in_every_section(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    vtime: VirtualTime,
    table_device: Any,
) -> None:
    """Host and serial number appear nowhere, errors that named the connection included."""
    device = table_device()
    device.words[1][Table.INPUT][0] = 230
    device.set_string(1, Table.INPUT, 10, SERIAL_NUMBER)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Meter at 127.0.0.1:{server.port}",
        unique_id=f"tcp:127.0.0.1:{server.port}",
        data={
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: server.port,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: 1,
                    CONF_PROFILE: PROFILE_CUSTOM,
                    CONF_REGISTER_MAP: SERIAL_MAP,
                }
            ],
        },
        options={"min_interval": 2.0, "max_interval": 60.0, "timeout": 0.5},
    )
    entry.add_to_hass(hass)
    port = server.port
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        assert coordinator.engine.value("1.serial_number") == SERIAL_NUMBER
        await server.stop()  # an outage: errors that name the connection
        await vtime.run(coordinator, 60)
        server = SimulatorServer(device, host="127.0.0.1", port=port, unit_ids=(1,))
        await server.start()
        await vtime.run(coordinator, 60)
        raw = [e["message"] for e in coordinator.recent_errors]
        assert any("127.0.0.1" in m for m in raw), raw  # there was something to redact

        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        texts = strings_in(diagnostics)
        assert not [t for t in texts if "127.0.0.1" in t]
        assert not [t for t in texts if "SN-4711" in t or "SECRET" in t]
        assert diagnostics["recent_errors"], "the outage's errors are kept, redacted"
        assert (
            diagnostics["engine"]["registers"]["1.serial_number"]["value"] == REDACTED
        )
        assert diagnostics["engine"]["registers"]["1.voltage"]["value"] == 230
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await server.stop()


async def test_diagnostics_redact_the_serial_port_path(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    vtime: VirtualTime,
    table_device: Any,
    pty_pair: tuple[str, str],
) -> None:
    """A serial connection: the device path appears nowhere in the diagnostics."""
    server_end, client_end = pty_pair
    device = table_device()
    device.words[1][Table.INPUT][0] = 230
    server = SimulatorServer(
        device, kind="serial", serial_port=server_end, baudrate=19200, unit_ids=(1,)
    )
    await server.start()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Serial meter",
        unique_id=f"serial:{client_end}",
        data={
            CONF_CONNECTION: CONNECTION_SERIAL,
            CONF_SERIAL_PORT: client_end,
            CONF_BAUDRATE: 19200,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: 1,
                    CONF_PROFILE: PROFILE_CUSTOM,
                    CONF_REGISTER_MAP: SERIAL_MAP,
                }
            ],
        },
        options={"min_interval": 2.0, "max_interval": 60.0, "timeout": 0.5},
    )
    entry.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await vtime.run(entry.runtime_data.coordinator, 30)
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        texts = strings_in(diagnostics)
        assert not [t for t in texts if client_end in t or "ttyB" in t]
        assert diagnostics["entry"]["data"]["serial_port"] == REDACTED
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await server.stop()


@pytest.mark.freeze_time("2025-06-02 10:00:00+00:00", real_asyncio=True)
@pytest.mark.usefixtures("frozen_wall_clock")
async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """The whole download after the first cycle of the seeded demo, time frozen.

    HA's loop keeps real time, so the wake-up's remaining seconds shrink while the
    test runs: checked against the engine's due time instead of the snapshot.
    """
    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, init_integration
    )
    coordinator = diagnostics["coordinator"]
    assert 0 < coordinator["next_wake_in_seconds"] <= coordinator["next_due_in_seconds"]
    assert diagnostics == snapshot(
        exclude=props("created_at", "modified_at", "next_wake_in_seconds")
    )
