"""Repair issues of device health and their fix flows, against real servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.adaptive_modbus.const import (
    CONF_MAX_REGISTERS,
    CONF_NAME,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_UNIT_ID,
    DOMAIN,
    PROFILE_CUSTOM,
)
from custom_components.adaptive_modbus.engine.errors import (
    DeviceFailure,
    IllegalAddress,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.health import (
    ISSUE_BLOCK_LIMIT,
    ISSUE_NOT_ANSWERING,
    ISSUE_REGISTER_REFUSED,
    SILENT_REPAIR_AFTER,
)

from .conftest import TableDevice
from .health_setup import SMALL_MAP, fill, health_entry, serve_units
from .test_subentries import reconfigure_device

if TYPE_CHECKING:
    from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

EXC_ILLEGAL_VALUE = 3
LIMIT = 20


class LimitedDevice(TableDevice):
    """A device that refuses (exception 3) any read of more than ``LIMIT`` registers."""

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Refuse large reads as many real meters do."""
        if count > LIMIT:
            raise DeviceFailure(
                f"{count} registers",
                unit_id=unit_id,
                address=address,
                code=EXC_ILLEGAL_VALUE,
            )
        return super().read(unit_id, table, address, count)


class RefusingDevice(TableDevice):
    """A device without input register 10: it refuses it every time."""

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Refuse any read that covers input register 10."""
        if table is Table.INPUT and address <= 10 < address + count:
            raise IllegalAddress("no register 10", unit_id=unit_id, address=address)
        return super().read(unit_id, table, address, count)


def wide_map(count: int) -> str:
    """Return a map of ``count`` consecutive uint16 input registers."""
    lines = ["registers:"]
    for address in range(count):
        lines += [
            f"  - name: Value {address}",
            "    table: input",
            f"    address: {address}",
            "    data_type: uint16",
        ]
    return "\n".join(lines) + "\n"


def issue(
    hass: HomeAssistant, kind: str, entry_id: str, suffix: str
) -> ir.IssueEntry | None:
    """Return one of our issues (None when there is none)."""
    return ir.async_get(hass).async_get_issue(DOMAIN, f"{kind}_{entry_id}_{suffix}")


async def _unload(hass: HomeAssistant, entry: Any) -> None:
    if entry.state is ConfigEntryState.LOADED:
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_silent_device_raises_an_issue_that_clears_when_it_answers(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """Unit 2 silent for longer than the bound: an issue; its fix flow asks again."""
    assert await async_setup_component(hass, "repairs", {})
    device = TableDevice(unit_ids=(1, 2))
    server = await serve_units(device)
    entry = health_entry(hass, server.port, {1: SMALL_MAP, 2: SMALL_MAP})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        del device.words[2]
        await vtime.run(coordinator, SILENT_REPAIR_AFTER - 120)
        assert 2 in coordinator.silent_units
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2") is None  # not yet
        await vtime.run(coordinator, 180)
        found = issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2")
        assert found is not None
        assert found.is_fixable
        assert found.translation_placeholders == {
            "device": "Unit 2",
            "unit_id": "2",
            "connection": entry.title,
            "minutes": "10",
        }
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "1") is None

        # the fix flow explains, asks again, and says it still does not answer
        manager = repairs_flow_manager(hass)
        assert manager is not None
        flow = await manager.async_init(DOMAIN, data={"issue_id": found.issue_id})
        assert flow["step_id"] == "confirm"
        assert flow["description_placeholders"]["unit_id"] == "2"
        result = await manager.async_configure(flow["flow_id"], {})
        assert result["type"] == "abort"
        assert result["reason"] == "still_not_answering"
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2") is not None

        # wired again: the fix flow's read finds it, the issue is gone
        fill(device, 2)
        flow = await manager.async_init(DOMAIN, data={"issue_id": found.issue_id})
        result = await manager.async_configure(flow["flow_id"], {})
        assert result["type"] == "create_entry"
        assert 2 not in coordinator.silent_units
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2") is None

        # silent again, then back on its own: the issue clears by itself
        del device.words[2]
        await vtime.run(coordinator, SILENT_REPAIR_AFTER + 60)
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2") is not None
        fill(device, 2)
        await vtime.run(coordinator, 60)
        assert issue(hass, ISSUE_NOT_ANSWERING, entry.entry_id, "2") is None
    finally:
        await _unload(hass, entry)
        await server.stop()


async def test_block_limit_repair_lowers_the_largest_read_and_errors_stop(
    hass: HomeAssistant, vtime: VirtualTime, hass_client: ClientSessionGenerator
) -> None:
    """A device limited to 20 registers per read: the fix flow sets 20, errors stop."""
    assert await async_setup_component(hass, "repairs", {})
    device = LimitedDevice(unit_ids=(1,))
    fill(device, 1, count=40)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    entry = health_entry(hass, server.port, {1: wide_map(40)})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 600)
        assert coordinator.engine.learned_block_limits() == {1: LIMIT}
        found = issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "1")
        assert found is not None
        assert found.translation_placeholders["limit"] == str(LIMIT)
        assert found.translation_placeholders["failed"] == "40"
        assert found.translation_placeholders["cap"] == "125"
        # left alone, the engine tries larger reads again and they fail
        errors = coordinator.engine.snapshot().totals.errors
        await vtime.run(coordinator, 90 * 60, max_step=60)
        errors_unfixed = coordinator.engine.snapshot().totals.errors - errors
        assert errors_unfixed > 0

        client = await hass_client()
        response = await client.post(
            "/api/repairs/issues/fix",
            json={"handler": DOMAIN, "issue_id": found.issue_id},
        )
        assert response.status == 200
        flow = await response.json()
        assert flow["step_id"] == "confirm"
        response = await client.post(
            f"/api/repairs/issues/fix/{flow['flow_id']}", json={}
        )
        assert response.status == 200
        assert (await response.json())["type"] == "create_entry"
        await hass.async_block_till_done(wait_background_tasks=True)

        subentry = next(iter(entry.subentries.values()))
        assert subentry.data[CONF_MAX_REGISTERS] == LIMIT
        assert entry.state is ConfigEntryState.LOADED
        coordinator = entry.runtime_data.coordinator  # reloaded
        assert coordinator.engine.block_limit_cap(1) == LIMIT
        await vtime.run(coordinator, 90 * 60, max_step=60)
        snapshot = coordinator.engine.snapshot()
        assert snapshot.totals.errors == 0
        assert snapshot.totals.registers_read > 0
        assert max(r.count for r in snapshot.recent_requests) <= LIMIT
        assert coordinator.engine.learned_block_limits() == {}
        assert issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "1") is None

        # editing the device (a new name) keeps the limit the repair set
        result = await reconfigure_device(hass, entry, subentry.subentry_id)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {CONF_UNIT_ID: 1, CONF_PROFILE: PROFILE_CUSTOM, CONF_NAME: "Meter"},
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_REGISTER_MAP: wide_map(40)}
        )
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done(wait_background_tasks=True)
        assert entry.subentries[subentry.subentry_id].title == "Meter"
        assert entry.subentries[subentry.subentry_id].data[CONF_MAX_REGISTERS] == LIMIT
    finally:
        await _unload(hass, entry)
        await server.stop()


REFUSED_MAP = (
    SMALL_MAP
    + """
  - name: Missing
    table: input
    address: 10
    data_type: uint16
"""
)


async def test_always_refused_register_gets_an_issue_whose_fix_disables_it(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """A register the device never has: an issue naming it; the fix disables its entity."""
    assert await async_setup_component(hass, "repairs", {})
    device = RefusingDevice(unit_ids=(1,))
    fill(device, 1, count=12)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    entry = health_entry(hass, server.port, {1: REFUSED_MAP})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 2 * 3600)
        found = issue(hass, ISSUE_REGISTER_REFUSED, entry.entry_id, "1.missing")
        assert found is not None
        placeholders = found.translation_placeholders
        entity_id = "sensor.unit_1_missing"
        assert placeholders["entity"] == entity_id
        assert placeholders["address"] == "10"
        assert placeholders["register"] == "Missing"
        assert issue(hass, ISSUE_REGISTER_REFUSED, entry.entry_id, "1.voltage") is None

        manager = repairs_flow_manager(hass)
        assert manager is not None
        flow = await manager.async_init(DOMAIN, data={"issue_id": found.issue_id})
        result = await manager.async_configure(flow["flow_id"], {})
        assert result["type"] == "create_entry"
        await hass.async_block_till_done()
        registry_entry = er.async_get(hass).async_get(entity_id)
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.USER
        assert not coordinator.engine.snapshot().registers["1.missing"].enabled
        await vtime.run(coordinator, 600)
        assert issue(hass, ISSUE_REGISTER_REFUSED, entry.entry_id, "1.missing") is None
    finally:
        await _unload(hass, entry)
        await server.stop()


async def test_demo_grid_meter_gets_the_block_size_repair_and_its_errors_stop(
    hass: HomeAssistant, vtime: VirtualTime, mock_config_entry: Any
) -> None:
    """The demo fleet's grid meter (20 registers per read at most): fixed in one step."""
    assert await async_setup_component(hass, "repairs", {})
    entry = mock_config_entry
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 600)

    def meter_errors() -> int:
        snapshot = entry.runtime_data.coordinator.engine.snapshot()
        return snapshot.units[2].errors

    assert meter_errors() > 0  # its first large read was refused
    found = issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "2")
    assert found is not None
    placeholders = found.translation_placeholders
    assert placeholders["device"] == "Demo grid meter"
    # the engine halves a refused read; the analytics saw larger reads answer: the
    # largest read known to answer is proposed, never more than the device takes
    learned = coordinator.engine.learned_block_limits()[2]
    proposed = int(placeholders["limit"])
    assert learned <= proposed <= LIMIT < int(placeholders["failed"])
    # only the grid meter: the heat pump and the PV inverter read large blocks fine
    assert issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "1") is None
    assert issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "3") is None

    manager = repairs_flow_manager(hass)
    assert manager is not None
    flow = await manager.async_init(DOMAIN, data={"issue_id": found.issue_id})
    result = await manager.async_configure(flow["flow_id"], {})
    assert result["type"] == "create_entry"
    await hass.async_block_till_done(wait_background_tasks=True)
    meter = next(s for s in entry.subentries.values() if s.unique_id == "2")
    assert meter.data[CONF_MAX_REGISTERS] == proposed
    others = [s for s in entry.subentries.values() if s.unique_id != "2"]
    assert all(CONF_MAX_REGISTERS not in s.data for s in others)

    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator  # reloaded
    await vtime.run(coordinator, 600)
    assert meter_errors() == 0
    assert coordinator.engine.learned_block_limits() == {}
    assert issue(hass, ISSUE_BLOCK_LIMIT, entry.entry_id, "2") is None
    reads = [r for r in coordinator.engine.snapshot().recent_requests if r.unit_id == 2]
    assert reads and max(r.count for r in reads) <= LIMIT
    await _unload(hass, entry)
