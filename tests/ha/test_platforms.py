"""Entity registry entries and states of each platform, as snapshots (core style).

The demo device is seeded and time is frozen (``freezer``): the first poll cycle reads
every register at one instant, so values, latencies and rates are the same each run.
"""

from __future__ import annotations

from homeassistant.const import MAJOR_VERSION, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

# Snapshots are HA 2025.4's. On HA 2026.2's test plugin the setup under freeze_time
# hangs (not yet understood), and its registry entries have other fields.
ON_NEWER_HA = pytest.mark.skipif(
    MAJOR_VERSION >= 2026,
    reason="snapshots recorded on HA 2025.4; frozen setup hangs on 2026.2",
)


pytestmark = [
    pytest.mark.usefixtures(
        "socket_enabled", "entity_registry_enabled_by_default", "frozen_wall_clock"
    ),
    pytest.mark.allow_hosts(["127.0.0.1"]),
    ON_NEWER_HA,
    pytest.mark.freeze_time("2025-06-02 10:00:00+00:00", real_asyncio=True),
]


@pytest.mark.parametrize(
    "platforms",
    [[Platform.BINARY_SENSOR], [Platform.NUMBER], [Platform.SENSOR], [Platform.SWITCH]],
    ids=["binary_sensor", "number", "sensor", "switch"],
)
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    init_integration: MockConfigEntry,
) -> None:
    """Every entity of the platform: registry entry and first state."""
    await snapshot_platform(hass, entity_registry, snapshot, init_integration.entry_id)
