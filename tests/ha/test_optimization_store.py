"""The audit log in the entry's Store (version 1.2, migrated from 1.1) and diagnostics."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.audit import Actor
from custom_components.adaptive_modbus.optimization_services import (
    SERVICE_SET_REGISTER_INTERVAL,
)
from custom_components.adaptive_modbus.storage import STORAGE_MINOR_VERSION, storage_key

from .helpers import set_up_entry, unload_entry

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


async def _stored_after_a_session(
    hass: HomeAssistant,
    vtime: VirtualTime,
    entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> dict[str, Any]:
    """Poll ten minutes, add an audit entry, unload: return what was stored."""
    await set_up_entry(hass, entry)
    await vtime.run(entry.runtime_data.coordinator, 600)
    entry.runtime_data.audit.add(
        actor=Actor.user("u1", "Anna"), action="refresh", target="1.grid_voltage"
    )
    await unload_entry(hass, entry)
    return dict(hass_storage[storage_key(entry.entry_id)])


async def test_a_store_of_version_1_1_is_migrated(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """Today's store (1.1: engine state and history) loads; saving writes 1.2."""
    stored = await _stored_after_a_session(hass, vtime, demo_entry, hass_storage)
    assert stored["minor_version"] == STORAGE_MINOR_VERSION == 2
    assert stored["data"]["audit"]["entries"][0]["actor"]["name"] == "Anna"
    old = {k: v for k, v in stored["data"].items() if k not in ("audit", "optimizer")}
    hass_storage[storage_key(demo_entry.entry_id)] = {**stored, "minor_version": 1}
    hass_storage[storage_key(demo_entry.entry_id)]["data"] = old
    await set_up_entry(hass, demo_entry)
    data = demo_entry.runtime_data
    assert data.store.restored  # the engine's learned state came back
    assert len(data.audit) == 0
    await unload_entry(hass, demo_entry)
    saved = hass_storage[storage_key(demo_entry.entry_id)]
    assert saved["minor_version"] == 2
    assert saved["data"]["audit"]["entries"] == []


async def test_a_corrupt_audit_log_is_set_aside_with_a_warning(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unusable audit entries are set aside, the rest and the engine restored."""
    stored = await _stored_after_a_session(hass, vtime, demo_entry, hass_storage)
    good = stored["data"]["audit"]["entries"][0]
    stored["data"]["audit"]["entries"] = ["garbage", good, {"id": "x"}]
    hass_storage[storage_key(demo_entry.entry_id)] = stored
    with caplog.at_level(logging.WARNING):
        await set_up_entry(hass, demo_entry)
    data = demo_entry.runtime_data
    assert [e.to_dict() for e in data.audit] == [good]
    assert data.store.restored
    assert caplog.text.count("an audit entry was set aside") == 2
    await unload_entry(hass, demo_entry)

    stored = dict(hass_storage[storage_key(demo_entry.entry_id)])
    stored["data"] = {**stored["data"], "audit": {"version": 99}}
    hass_storage[storage_key(demo_entry.entry_id)] = stored
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        await set_up_entry(hass, demo_entry)
    assert len(demo_entry.runtime_data.audit) == 0
    assert demo_entry.runtime_data.store.restored
    assert "stored audit log version 99" in caplog.text
    await unload_entry(hass, demo_entry)


async def test_diagnostics_show_the_audit_tail_redacted(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
) -> None:
    """The audit tail is in the diagnostics, with user names redacted."""
    await set_up_entry(hass, demo_entry)
    await vtime.run(demo_entry.runtime_data.coordinator, 60)
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{demo_entry.entry_id}_1_grid_voltage"
    )
    await hass.services.async_call(
        DOMAIN,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": entity_id, "max_interval": 20},
        blocking=True,
        context=Context(user_id=hass_admin_user.id),
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, demo_entry)
    (audit,) = diagnostics["optimization"]["audit"]
    assert audit["action"] == "set_register_interval"
    assert audit["actor"] == {
        "kind": "user",
        "user_id": hass_admin_user.id,
        "name": "**REDACTED**",
    }
    assert audit["after"]["pin"]["max_interval"] == 20
    register = diagnostics["engine"]["registers"]["1.grid_voltage"]
    assert register["pinned"] == {
        "interval": None,
        "min_interval": None,
        "max_interval": 20.0,
    }
    await unload_entry(hass, demo_entry)
