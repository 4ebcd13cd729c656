"""The coordinator: due-time wake-ups, change-only state writes, unavailability, plan."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.const import (
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import (
    CONF_ADAPTIVE,
    CONF_FIXED_INTERVAL,
    CONF_MIN_INTERVAL,
    DOMAIN,
    UNAVAILABLE_AFTER_FAILURES,
)
from custom_components.adaptive_modbus.coordinator import (
    MIN_DELAY,
    AdaptiveModbusCoordinator,
)
from custom_components.adaptive_modbus.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.entity import register_unique_id

if TYPE_CHECKING:
    from .conftest import VirtualTime

_LOGGER = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


def entity_id_of(
    hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str
) -> str:
    """Entity id of a register entity of unit 1."""
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_1_{key}"
    )
    assert entity_id is not None, key
    return entity_id


async def test_wakes_at_the_engines_next_due_time(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """After each cycle the timer is set to the engine's next due time, not a fixed tick."""
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    coordinator: AdaptiveModbusCoordinator = demo_entry.runtime_data.coordinator
    delays = set()
    for _ in range(25):
        await vtime.advance(coordinator.seconds_to_next_due(), coordinator)
        assert coordinator.wake_scheduled
        wake_in = coordinator.next_wake - hass.loop.time()
        due_in = coordinator.engine.next_due() - coordinator.clock()
        assert wake_in == pytest.approx(max(due_in, 0.1), abs=0.05)
        delays.add(round(due_in, 1))
    # the wake-ups follow the plan: not all the same interval
    assert len(delays) > 1
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()


class WriteCounter:
    """Counts state writes (changed or only re-reported) of a set of entities."""

    def __init__(self, hass: HomeAssistant, entity_ids: set[str]) -> None:
        """Count the state writes of ``entity_ids`` from now on."""
        self.entity_ids = entity_ids
        self.count = 0
        self._unsubs = [
            hass.bus.async_listen(event_type, self._event, event_filter=self._ours)
            for event_type in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED)
        ]

    @callback
    def _ours(self, event_data: Any) -> bool:
        return event_data["entity_id"] in self.entity_ids

    @callback
    def _event(self, event: Event[Any]) -> None:
        self.count += 1

    def stop(self) -> None:
        """Stop counting."""
        for unsub in self._unsubs:
            unsub()


async def _writes_per_minute(
    hass: HomeAssistant,
    vtime: VirtualTime,
    entry: MockConfigEntry,
    minutes: float,
    *,
    every_refresh: bool = False,
) -> tuple[float, float, int]:
    """Run the entry for ``minutes``; return (state writes/min, requests/min, cycles).

    ``every_refresh``: what HA-core-style polling writes, every register entity once
    per refresh (cycles x entities), instead of the writes counted.
    """
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: AdaptiveModbusCoordinator = entry.runtime_data.coordinator
    registry = er.async_get(hass)
    # the register entities only: the per-unit health and statistics sensors do not
    # count toward the writes-per-minute figure (the unit's health sensor writes about
    # 15 times an hour, which made the check below depend on the run's margin)
    registers = {
        register_unique_id(entry.entry_id, unit_id, definition.spec.key)
        for unit_id, definition in entry.runtime_data.hub.definitions.values()
    }
    register_entities = {
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.unique_id in registers and e.disabled_by is None
    }
    counter = WriteCounter(hass, register_entities)
    requests_before = coordinator.engine.snapshot().totals.requests
    cycles = await vtime.run(coordinator, minutes * 60)
    counter.stop()
    requests = coordinator.engine.snapshot().totals.requests - requests_before
    assert coordinator.state_writes.total >= counter.count
    writes = cycles * len(register_entities) if every_refresh else counter.count
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    return writes / minutes, requests / minutes, cycles


async def test_state_writes_only_on_change_fewer_than_fixed_interval(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Adaptive + change-only writes against HA-core-style fixed polling on the demo device.

    Over a full scenario cycle (60 virtual minutes: stable, escalation, peak, recovery).
    """
    minutes = 60
    adaptive = await _writes_per_minute(hass, vtime, demo_entry, minutes)

    fixed_entry = MockConfigEntry(
        domain=DOMAIN,
        title="Fixed baseline",
        unique_id="demo:fixed",
        data=dict(demo_entry.data),
        options={
            **demo_entry.options,
            CONF_ADAPTIVE: False,
            CONF_FIXED_INTERVAL: 15.0,  # HA core modbus' default scan interval
            CONF_MIN_INTERVAL: 2.0,
        },
    )
    fixed_entry.add_to_hass(hass)
    fixed = await _writes_per_minute(
        hass, vtime, fixed_entry, minutes, every_refresh=True
    )
    _LOGGER.info(
        "state writes/min over %s virtual min on the demo device: adaptive+change-only"
        " %.1f (requests/min %.1f, cycles %s) vs fixed 15 s writing every refresh %.1f"
        " (requests/min %.1f, cycles %s)",
        minutes,
        *adaptive,
        *fixed,
    )
    # free riders refresh the whole TCP unit with each request, so values that move
    # within their tolerance are shown (and written) more often: 51-55 writes/min
    # against 31 without them, at the same requests/min; fixed polling writes every
    # register entity on each 15 s refresh: 84/min (0.61-0.65x)
    assert adaptive[0] < 0.75 * fixed[0]


async def test_change_only_writes_against_fixed_interval_same_coordinator(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """With polling held fixed, change-only writes alone already save state writes."""
    hass.config_entries.async_update_entry(
        demo_entry,
        options={**demo_entry.options, CONF_ADAPTIVE: False, CONF_FIXED_INTERVAL: 15.0},
    )
    change_only = await _writes_per_minute(hass, vtime, demo_entry, 20)
    every = await _writes_per_minute(hass, vtime, demo_entry, 20, every_refresh=True)
    _LOGGER.info(
        "fixed 15 s polling, 20 virtual min: change-only %.1f writes/min vs every"
        " refresh %.1f writes/min",
        change_only[0],
        every[0],
    )
    assert change_only[0] < every[0]


async def test_unavailable_after_failed_cycles_and_recovers(
    hass: HomeAssistant,
    vtime: VirtualTime,
    sim_server: SimulatorServer,
    tcp_entry: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A device that stops answering goes unavailable after a few failures, then recovers.

    Diagnostics say the refresh fails during the outage; the log says so once when it
    starts and once when it ends.
    """
    caplog.set_level(logging.DEBUG, logger="custom_components.adaptive_modbus")
    entry = tcp_entry(sim_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: AdaptiveModbusCoordinator = entry.runtime_data.coordinator
    voltage = entity_id_of(hass, entry, "sensor", "grid_voltage")
    await vtime.run(coordinator, 60)
    assert hass.states.get(voltage).state != STATE_UNAVAILABLE

    port = sim_server.port
    await sim_server.stop()
    # unavailable only after a few failed cycles (device) or failed reads (register)
    failed_seen = False
    deadline = vtime.offset + 10 * 60
    while hass.states.get(voltage).state != STATE_UNAVAILABLE:
        assert vtime.offset < deadline, "never went unavailable"
        await vtime.advance(coordinator.seconds_to_next_due(), coordinator)
        streak = (
            coordinator.engine.snapshot().registers["1.grid_voltage"].failure_streak
        )
        failed_seen = failed_seen or coordinator.failed_cycles > 0
        if (
            coordinator.failed_cycles < UNAVAILABLE_AFTER_FAILURES
            and streak < UNAVAILABLE_AFTER_FAILURES
        ):
            assert hass.states.get(voltage).state != STATE_UNAVAILABLE
    assert failed_seen
    assert (
        coordinator.failed_cycles >= UNAVAILABLE_AFTER_FAILURES
        or streak >= UNAVAILABLE_AFTER_FAILURES
    )
    await vtime.run(coordinator, 3 * 60)  # a long outage logs nothing more
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["coordinator"]["last_update_success"] is False
    assert (
        diagnostics["coordinator"]["failed_cycles_in_a_row"]
        >= UNAVAILABLE_AFTER_FAILURES
    )
    assert hass.states.get(voltage).state == STATE_UNAVAILABLE

    # the device comes back on the same port: entities recover by themselves
    revived = SimulatorServer(sim_server.device, host="127.0.0.1", port=port)
    await revived.start()
    try:
        await vtime.run(coordinator, 5 * 60)
        assert hass.states.get(voltage).state != STATE_UNAVAILABLE
        assert float(hass.states.get(voltage).state) > 100
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        assert diagnostics["coordinator"]["last_update_success"] is True
        # once down, once back: per logger (HA's refresh failure on the coordinator's
        # logger; an engine that tracks units may add its own line for the unit)
        ours = [
            r
            for r in caplog.records
            if r.name.startswith("custom_components.adaptive_modbus")
            and r.levelno >= logging.INFO
        ]
        for name in {r.name for r in ours}:
            lines = [r.getMessage() for r in ours if r.name == name]
            assert len([m for m in lines if "not answer" in m]) <= 1, lines
            assert (
                len([m for m in lines if "answers again" in m or "recovered" in m]) <= 1
            )
        coordinator_log = [r for r in ours if r.name.endswith(".coordinator")]
        down = [r for r in coordinator_log if r.levelno >= logging.WARNING]
        back = [r for r in coordinator_log if "recovered" in r.getMessage()]
        assert len(down) == 1, [r.getMessage() for r in down]
        assert "does not answer" in down[0].getMessage()
        assert len(back) == 1
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await revived.stop()


async def test_disabled_entity_leaves_the_plan_and_comes_back(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """Disabling an entity stops reading its register; enabling brings it back."""
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    coordinator: AdaptiveModbusCoordinator = demo_entry.runtime_data.coordinator
    registers = coordinator.engine.snapshot().registers
    # diagnostic registers are created disabled, so they are not polled
    assert not registers["1.uptime"].enabled
    assert not registers["1.serial_number"].enabled
    assert registers["1.grid_frequency"].enabled

    registry = er.async_get(hass)
    entity_id = entity_id_of(hass, demo_entry, "sensor", "grid_frequency")
    registry.async_update_entity(entity_id, disabled_by=er.RegistryEntryDisabler.USER)
    await hass.async_block_till_done()
    assert not coordinator.engine.snapshot().registers["1.grid_frequency"].enabled
    reads = coordinator.engine.snapshot().registers["1.grid_frequency"].reads
    await vtime.run(coordinator, 5 * 60)
    assert coordinator.engine.snapshot().registers["1.grid_frequency"].reads == reads
    assert coordinator.cycles > 0

    registry.async_update_entity(entity_id, disabled_by=None)
    await hass.async_block_till_done()
    assert coordinator.engine.snapshot().registers["1.grid_frequency"].enabled
    # HA reloads the entry 30 s after an entity is enabled; the new engine plans it too
    await vtime.advance(31)  # fires HA's reload timer (30 s, real loop time)
    await hass.async_block_till_done(wait_background_tasks=True)
    new_coordinator = demo_entry.runtime_data.coordinator
    assert new_coordinator.engine.snapshot().registers["1.grid_frequency"].enabled
    assert hass.states.get(entity_id) is not None
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()


async def test_overdue_wake_up_is_still_scheduled(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> None:
    """A due time already past wakes the coordinator after the minimum delay, not never."""
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    coordinator: AdaptiveModbusCoordinator = demo_entry.runtime_data.coordinator
    past = coordinator.clock() - 5.0
    with patch.object(coordinator.engine, "next_due", return_value=past):
        coordinator.async_reschedule()
    assert coordinator.wake_scheduled
    assert coordinator.next_wake is not None
    assert 0 < coordinator.next_wake - hass.loop.time() <= MIN_DELAY + 0.01
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()
    assert not coordinator.wake_scheduled
