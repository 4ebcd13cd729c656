"""Stored learned state that HA's Store itself cannot load sets nothing back."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import STORAGE_VERSION
from custom_components.adaptive_modbus.storage import storage_key

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


async def test_store_of_a_newer_version_starts_fresh(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that a store written by a newer release is set aside, never fatal.

    HA's Store raises NotImplementedError for a major version it cannot migrate
    (a downgrade after an upgrade): the entry loads and relearns.
    """
    key = storage_key(demo_entry.entry_id)
    hass_storage[key] = {
        "version": STORAGE_VERSION + 1,
        "minor_version": 1,
        "key": key,
        "data": {},
    }
    with caplog.at_level(logging.WARNING):
        assert await hass.config_entries.async_setup(demo_entry.entry_id)
        await hass.async_block_till_done()
    assert demo_entry.state is ConfigEntryState.LOADED
    assert not demo_entry.runtime_data.store.restored
    assert "could not be read" in caplog.text
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()
