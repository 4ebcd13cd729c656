"""Migration of entries stored before devices were subentries (version 1).

They migrate to version 2 with every unique id (entities and devices) unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SEED,
    CONF_UNIT_ID,
    DOMAIN,
)
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

from .helpers import FAST_OPTIONS
from .test_config_flow import GOOD_MAP, MultiUnitDevice

if TYPE_CHECKING:
    from .conftest import VirtualTime


pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

HOST = "127.0.0.1"
V1_DEVICES = [
    {CONF_UNIT_ID: 1, CONF_PROFILE: "demo", CONF_NAME: "Heat pump"},
    {
        CONF_UNIT_ID: 2,
        CONF_PROFILE: "custom",
        CONF_NAME: "Outdoor",
        CONF_REGISTER_MAP: GOOD_MAP,
    },
]


@pytest.fixture
async def two_units(vtime: VirtualTime) -> AsyncIterator[SimulatorServer]:
    """Units 1 and 2 behind one Modbus TCP server."""
    server = SimulatorServer(
        MultiUnitDevice([1, 2]), host=HOST, port=0, unit_ids=[1, 2]
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_version1_entry_migrates_keeping_unique_ids(
    hass: HomeAssistant, vtime: VirtualTime, two_units: SimulatorServer
) -> None:
    """Test that a version 1 entry migrates keeping every unique id.

    Devices move from data to subentries; registry entries (renamed by the user)
    are the ones the migrated entry updates: same entity ids, same devices.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title=f"{HOST}:{two_units.port}",
        unique_id=f"tcp:{HOST}:{two_units.port}",
        data={
            CONF_CONNECTION: "tcp",
            CONF_HOST: HOST,
            CONF_PORT: two_units.port,
            CONF_DEVICES: V1_DEVICES,
        },
        options=dict(FAST_OPTIONS),
    )
    entry.add_to_hass(hass)
    # what version 1 had registered: unit devices and entities with their unique ids
    dev_reg, ent_reg = dr.async_get(hass), er.async_get(hass)
    old_devices = {
        unit: dev_reg.async_get_or_create(
            config_entry_id=entry.entry_id,
            identifiers={(DOMAIN, f"{entry.entry_id}_{unit}")},
        ).id
        for unit in (1, 2)
    }
    renamed = {
        f"{entry.entry_id}_1_outdoor_temperature": "sensor.my_outdoor_temperature",
        f"{entry.entry_id}_2_outdoor": "sensor.garden_temperature",
    }
    for unique_id, entity_id in renamed.items():
        ent_reg.async_get_or_create(
            "sensor",
            DOMAIN,
            unique_id,
            config_entry=entry,
            suggested_object_id=entity_id.split(".", 1)[1],
        )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    assert CONF_DEVICES not in entry.data
    subs = sorted(entry.subentries.values(), key=lambda sub: str(sub.unique_id))
    assert [(s.subentry_type, s.unique_id, s.title) for s in subs] == [
        ("device", "1", "Heat pump"),
        ("device", "2", "Outdoor"),
    ]
    assert [dict(s.data) for s in subs] == V1_DEVICES
    # the same registry entries are in use: no duplicates, entity ids kept, values shown
    for unique_id, entity_id in renamed.items():
        assert ent_reg.async_get_entity_id("sensor", DOMAIN, unique_id) == entity_id
        state = hass.states.get(entity_id)
        assert state is not None and state.state != STATE_UNAVAILABLE, entity_id
    unique_ids = [
        e.unique_id for e in er.async_entries_for_config_entry(ent_reg, entry.entry_id)
    ]
    assert len(unique_ids) == len(set(unique_ids))
    assert not [e for e in ent_reg.entities.values() if e.entity_id.endswith("_2")]
    for unit, device_id in old_devices.items():
        device = dev_reg.async_get_device(
            identifiers={(DOMAIN, f"{entry.entry_id}_{unit}")}
        )
        assert device is not None and device.id == device_id
    assert [u.unit_id for u in entry.runtime_data.hub.units] == [1, 2]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_version1_demo_entry_migrates(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """The demo entry (devices in data) migrates too and still serves its device."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        unique_id="demo:42",
        data={
            CONF_CONNECTION: "demo",
            CONF_SEED: 42,
            CONF_DEVICES: [
                {CONF_UNIT_ID: 1, CONF_PROFILE: "demo", CONF_NAME: "Demo device"}
            ],
        },
        options=dict(FAST_OPTIONS),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data == {CONF_CONNECTION: "demo", CONF_SEED: 42}
    assert [s.unique_id for s in entry.subentries.values()] == ["1"]
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_newer_version_is_not_downgraded(hass: HomeAssistant) -> None:
    """An entry written by a newer version is refused, not rewritten."""
    entry = MockConfigEntry(domain=DOMAIN, version=3, data={CONF_CONNECTION: "demo"})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
