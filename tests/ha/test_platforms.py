"""Entity registry entries and states of each platform, as snapshots (core style).

The demo device is seeded and time is frozen (``freezer``): the first poll cycle reads
every register at one instant, so values, latencies and rates are the same each run.
"""

from __future__ import annotations

import asyncio
import time

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.adaptive_modbus import hub

pytestmark = [
    pytest.mark.usefixtures(
        "socket_enabled", "entity_registry_enabled_by_default", "frozen_wall_clock"
    ),
    pytest.mark.allow_hosts(["127.0.0.1"]),
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


async def test_frozen_time_keeps_loop_time_real(hass: HomeAssistant) -> None:
    """Under the frozen wall clock HA's loop time still runs, so timers and waits end.

    HA binds ``loop.time`` on the loop to a function reading ``time.monotonic``, which
    freezegun freezes despite ``real_asyncio``: setting up an entry then waited for
    ever on the newer test plugin.
    """
    frozen_now = hub.wall_clock()
    start = hass.loop.time()
    await hass.async_add_executor_job(time.sleep, 0.05)
    assert hass.loop.time() - start >= 0.05
    assert hub.wall_clock() == frozen_now
    sleeper = hass.async_create_task(asyncio.sleep(60))
    done, _ = await asyncio.wait([sleeper], timeout=0.05)
    assert not done
    sleeper.cancel()
