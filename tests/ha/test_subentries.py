"""Devices as config subentries: add, edit and remove a device on a loaded connection.

A real HA from the test plugin, a real Modbus TCP server on loopback serving several
simulated units, and the real subentry flows through HA's flow manager.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentry,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus import async_remove_config_entry_device
from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_HOST,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_UNIT_ID,
    CONNECTION_TCP,
    DOMAIN,
    UNIT_HEALTH_KEYS,
)
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.storage import LearnedStateStore

from .helpers import FAST_OPTIONS
from .test_config_flow import GOOD_MAP, PACKAGE, MultiUnitDevice, suggested

if TYPE_CHECKING:
    from .conftest import VirtualTime


pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

HOST = "127.0.0.1"


@pytest.fixture
async def multi_server(vtime: VirtualTime) -> AsyncIterator[SimulatorServer]:
    """Units 1, 2 and 3 (demo devices) behind one Modbus TCP server."""
    server = SimulatorServer(
        MultiUnitDevice([1, 2, 3]), host=HOST, port=0, unit_ids=[1, 2, 3]
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def connection_entry(hass: HomeAssistant, port: int) -> MockConfigEntry:
    """Return a version 2 TCP entry with one device subentry: unit 1, demo profile."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=f"{HOST}:{port}",
        unique_id=f"tcp:{HOST}:{port}",
        data={CONF_CONNECTION: CONNECTION_TCP, CONF_HOST: HOST, CONF_PORT: port},
        options=dict(FAST_OPTIONS),
        subentries_data=[
            {
                "data": {CONF_UNIT_ID: 1, CONF_PROFILE: "demo", CONF_NAME: "Heat pump"},
                "subentry_type": "device",
                "title": "Heat pump",
                "unique_id": "1",
            }
        ],
    )
    entry.add_to_hass(hass)
    return entry


def entity_ids(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Map unique id -> entity id of the entry's register entities."""
    ent_reg = er.async_get(hass)
    return {
        e.unique_id: e.entity_id
        for e in er.async_entries_for_config_entry(ent_reg, entry.entry_id)
    }


def subentry_id(entry: MockConfigEntry, unit: int) -> str:
    """Return the subentry id of a unit."""
    return next(
        s.subentry_id for s in entry.subentries.values() if s.unique_id == str(unit)
    )


async def add_device(
    hass: HomeAssistant, entry: MockConfigEntry, data: dict[str, Any]
) -> Any:
    """Run the 'add device' subentry flow with one form submission."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "device"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


async def test_add_edit_remove_device(
    hass: HomeAssistant, vtime: VirtualTime, multi_server: SimulatorServer
) -> None:
    """Test adding, editing and removing a device on a loaded entry.

    Edits change unit id, name, profile and map; the other device keeps its entity
    ids and its learned state.
    """
    entry = connection_entry(hass, multi_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 15 * 60)
    learned = {
        uid: r.interval
        for uid, r in coordinator.engine.snapshot().registers.items()
        if uid.startswith("1.")
    }
    holes = dict(coordinator.engine.snapshot().holes)
    assert holes and max(learned.values()) > 2.0
    before = entity_ids(hass, entry)
    assert any(uid.startswith(f"{entry.entry_id}_1_") for uid in before)

    # -- add unit 2 (a unit already there is refused first) ----------------------------
    imported: dict[str, float] = {}
    original = LearnedStateStore.async_restore

    async def spy(store: LearnedStateStore) -> bool:
        result = await original(store)
        imported.update(
            {u: r.interval for u, r in store.engine.snapshot().registers.items()}
        )
        return result

    result = await add_device(hass, entry, {CONF_UNIT_ID: 1, CONF_PROFILE: "sdm120"})
    assert result["errors"] == {CONF_UNIT_ID: "unit_already_added"}
    with patch.object(LearnedStateStore, "async_restore", spy):
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {CONF_UNIT_ID: 2, CONF_PROFILE: "sdm120", CONF_NAME: "Meter"},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert [u.unit_id for u in entry.runtime_data.hub.units] == [1, 2]
    after_add = entity_ids(hass, entry)
    assert {uid: after_add[uid] for uid in before} == before  # entity ids unchanged
    unit2 = {
        uid: eid
        for uid, eid in after_add.items()
        if uid.startswith(f"{entry.entry_id}_2_")
    }
    assert unit2
    # the reload restored unit 1's learning (intervals and holes) before its first cycle
    assert {uid: imported[uid] for uid in learned} == pytest.approx(learned)
    holes_now = entry.runtime_data.coordinator.engine.snapshot().holes
    assert {k: v for k, v in holes_now.items() if k.startswith("1.")} == holes

    # -- edit unit 2: new unit id 3 and name; entity ids move along ---------------------
    sid = subentry_id(entry, 2)
    result = await reconfigure_device(hass, entry, sid)
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_UNIT_ID) == 2
    assert suggested(result, CONF_PROFILE) == "sdm120"
    assert suggested(result, CONF_NAME) == "Meter"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_UNIT_ID: 3, CONF_PROFILE: "sdm120", CONF_NAME: "Meter B"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.subentries[sid].title == "Meter B"
    assert entry.subentries[sid].unique_id == "3"
    after_edit = entity_ids(hass, entry)
    moved = {
        uid.replace(f"{entry.entry_id}_2_", f"{entry.entry_id}_3_"): eid
        for uid, eid in unit2.items()
    }
    assert {uid: after_edit[uid] for uid in moved} == moved
    assert not [uid for uid in after_edit if uid.startswith(f"{entry.entry_id}_2_")]
    dev_reg = dr.async_get(hass)
    device3 = dev_reg.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_3")})
    assert device3 is not None and device3.name == "Meter B"
    assert (
        dev_reg.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_2")}) is None
    )
    assert [u.unit_id for u in entry.runtime_data.hub.units] == [1, 3]

    # -- switch it to a custom map; editing again shows the map as it is now ------------
    result = await reconfigure_device(hass, entry, sid)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_UNIT_ID: 3, CONF_PROFILE: "custom", CONF_NAME: "Meter B"},
    )
    assert result["step_id"] == "custom_map"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_REGISTER_MAP: GOOD_MAP}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.subentries[sid].data[CONF_REGISTER_MAP] == GOOD_MAP
    # the SDM120 registers left with the profile: only the map's register remains
    # (and the device's register-intervals chart)
    unit3 = [
        uid for uid in entity_ids(hass, entry) if uid.startswith(f"{entry.entry_id}_3_")
    ]
    assert sorted(unit3) == [
        f"{entry.entry_id}_3_{key}"
        for key in sorted(("chart_intervals", "outdoor", *UNIT_HEALTH_KEYS))
    ]
    assert {
        uid: eid for uid, eid in entity_ids(hass, entry).items() if uid in before
    } == before
    result = await reconfigure_device(hass, entry, sid)
    assert suggested(result, CONF_PROFILE) == "custom"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_UNIT_ID: 3, CONF_PROFILE: "custom", CONF_NAME: "Meter B"},
    )
    assert suggested(result, CONF_REGISTER_MAP) == GOOD_MAP
    hass.config_entries.subentries.async_abort(result["flow_id"])
    assert entity_ids(hass, entry).get(f"{entry.entry_id}_3_outdoor")

    # -- remove it: its device and entities go, unit 1's stay ---------------------------
    assert hass.config_entries.async_remove_subentry(entry, sid)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (
        dev_reg.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_3")}) is None
    )
    assert entity_ids(hass, entry) == before
    assert [u.unit_id for u in entry.runtime_data.hub.units] == [1]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_stale_devices_can_be_deleted(
    hass: HomeAssistant, vtime: VirtualTime, multi_server: SimulatorServer
) -> None:
    """Only a unit device no subentry configures may be deleted by the user."""
    entry = connection_entry(hass, multi_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    dev_reg = dr.async_get(hass)
    configured = dev_reg.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_1")})
    hub = dev_reg.async_get_device(identifiers={(DOMAIN, f"{entry.entry_id}_hub")})
    stale = dev_reg.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{entry.entry_id}_9")}
    )
    assert configured is not None and hub is not None
    assert not await async_remove_config_entry_device(hass, entry, configured)
    assert not await async_remove_config_entry_device(hass, entry, hub)
    assert await async_remove_config_entry_device(hass, entry, stale)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_subentry_probe_error_keeps_the_form(
    hass: HomeAssistant, vtime: VirtualTime, multi_server: SimulatorServer
) -> None:
    """A unit that does not answer is refused naming it; the entry is not touched."""
    entry = connection_entry(hass, multi_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await add_device(hass, entry, {CONF_UNIT_ID: 7, CONF_PROFILE: "sdm120"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_UNIT_ID: "no_answer_from_unit"}
    assert result["description_placeholders"]["unit"] == "7"
    assert len(entry.subentries) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


LIMITED_MAP = """name: Garden meter
manufacturer: Acme
model: GM-1
max_registers: 2
registers:
  - {name: A, table: input, address: 0, data_type: int16}
  - {name: B, table: input, address: 1, data_type: int16}
  - {name: C, table: input, address: 2, data_type: int16}
  - {name: D, table: input, address: 4, data_type: int16}
"""


async def test_custom_map_device_fields_honoured(
    hass: HomeAssistant, vtime: VirtualTime, multi_server: SimulatorServer
) -> None:
    """Test that a custom map's device fields are honoured.

    Its name, manufacturer, model and max_registers reach the device registry and
    the engine: no read of that unit is longer than the map allows.
    """
    entry = connection_entry(hass, multi_server.port)
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_UNIT_ID: 2,
                    CONF_PROFILE: "custom",
                    CONF_NAME: "",
                    CONF_REGISTER_MAP: LIMITED_MAP,
                }
            ),
            subentry_type="device",
            title="Unit 2",
            unique_id="2",
        ),
    )
    multi_server.requests.clear()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await vtime.run(entry.runtime_data.coordinator, 120)
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{entry.entry_id}_2")}
    )
    assert device is not None
    assert (device.name, device.manufacturer, device.model) == (
        "Garden meter",
        "Acme",
        "GM-1",
    )
    unit2 = [r for r in multi_server.requests if r.unit_id == 2]
    assert unit2
    assert max(r.count for r in unit2) <= 2
    # option: 125
    assert max(r.count for r in multi_server.requests if r.unit_id == 1) > 2
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


BAD_MAP = """registers:
  - name: Outdoor
    table: input
    address: 0
    data_type: float99
"""


async def test_bad_map_fixed_through_the_device(
    hass: HomeAssistant, vtime: VirtualTime, multi_server: SimulatorServer
) -> None:
    """Test that a bad stored map is fixed through the device's reconfigure.

    A stored map that no longer parses fails setup with a message pointing to the
    device's reconfigure; fixing the map there (shown as stored) sets the entry up.
    """
    entry = connection_entry(hass, multi_server.port)
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_UNIT_ID: 2,
                    CONF_PROFILE: "custom",
                    CONF_NAME: "Garden",
                    CONF_REGISTER_MAP: BAD_MAP,
                }
            ),
            subentry_type="device",
            title="Garden",
            unique_id="2",
        ),
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    # the reason names the device and where to fix it
    assert entry.reason is not None
    assert "'Garden' (unit 2)" in entry.reason
    assert "Reconfigure" in entry.reason
    strings = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
    message = strings["exceptions"]["bad_register_map"]["message"]
    assert "options" not in message
    assert "Reconfigure" in message
    result = await reconfigure_device(hass, entry, subentry_id(entry, 2))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_UNIT_ID: 2, CONF_PROFILE: "custom", CONF_NAME: "Garden"},
    )
    assert suggested(result, CONF_REGISTER_MAP) == BAD_MAP
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_REGISTER_MAP: GOOD_MAP}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert [u.unit_id for u in entry.runtime_data.hub.units] == [1, 2]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def reconfigure_device(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str
) -> Any:
    """Open a device sub-entry's reconfigure flow through the flow manager.

    MockConfigEntry's helper for it changed its signature between HA versions.
    """
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, "device"),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
