"""Runtime faults as HA sees them, against real pymodbus servers on loopback.

Non-finite values, one entity's failure, silent units at setup, a setup that
reaches its bound, reading a register now (``homeassistant.update_entity``),
change-only writes of an unchanged entity.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus import setup_timeout
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

from .health_setup import health_entry
from .helpers import sensor_entity

if TYPE_CHECKING:
    from .conftest import TableDevice, VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

# a float (first, so its entity is updated first) and a counter next to it
FLOAT_MAP = """
registers:
  - name: Power
    table: input
    address: 0
    data_type: float32
    unit: W
    device_class: power
    state_class: measurement
  - name: Counter
    table: input
    address: 2
    data_type: uint16
    state_class: measurement
"""

SMALL_MAP = """
registers:
  - name: Voltage
    table: input
    address: 0
    data_type: uint16
"""


def custom_entry(
    hass: HomeAssistant,
    port: int,
    maps: dict[int, str],
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a TCP entry with one custom-map device per unit id (0.5 s timeout)."""
    return health_entry(hass, port, maps, {"timeout": 0.5, **(options or {})})


async def _unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_nan_is_unknown_for_that_entity_alone(
    hass: HomeAssistant,
    vtime: VirtualTime,
    table_device: type[TableDevice],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A float32 NaN from a real server: that sensor is unknown, its neighbour updates.

    The NaN sensor is updated first; before, HA's refusal of the state escaped the
    listener loop and the counter after it kept its old value.
    """
    device = table_device()
    device.set_float32(1, Table.INPUT, 0, 172.5)
    device.words[1][Table.INPUT][2] = 1
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = custom_entry(hass, server.port, {1: FLOAT_MAP})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        power, counter = (
            sensor_entity(hass, entry, "power", 1),
            sensor_entity(hass, entry, "counter", 1),
        )
        assert float(hass.states.get(power).state) == 172.5

        device.set_float32(1, Table.INPUT, 0, math.nan)
        with caplog.at_level(logging.WARNING):
            for value in range(2, 6):
                device.words[1][Table.INPUT][2] = value
                await coordinator.async_read_now(["1.power", "1.counter"])
                await hass.async_block_till_done()
                assert hass.states.get(power).state == STATE_UNKNOWN
                assert hass.states.get(counter).state == str(value)
        # logged once, not on every read
        assert len([r for r in caplog.records if "nan" in r.getMessage().lower()]) <= 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

        device.set_float32(1, Table.INPUT, 0, 99.0)
        await coordinator.async_read_now(["1.power"])
        await hass.async_block_till_done()
        assert float(hass.states.get(power).state) == 99.0
        await _unload(hass, entry)
    finally:
        await server.stop()


async def test_update_entity_reads_the_register_now(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """``homeassistant.update_entity`` reads that register at once, not when it is due."""
    assert await async_setup_component(hass, "homeassistant", {})
    device = table_device()
    device.words[1][Table.INPUT][2] = 7
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = custom_entry(hass, server.port, {1: FLOAT_MAP})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 5 * 60)  # a constant value: its interval grew
        register = coordinator.engine.snapshot().registers["1.counter"]
        assert register.next_due is not None
        # not due: a refresh skips it
        assert register.next_due - coordinator.clock() > 0
        counter = sensor_entity(hass, entry, "counter", 1)
        assert hass.states.get(counter).state == "7"

        device.words[1][Table.INPUT][2] = 8
        await hass.services.async_call(
            "homeassistant", "update_entity", {ATTR_ENTITY_ID: counter}, blocking=True
        )
        after = coordinator.engine.snapshot().registers["1.counter"]
        assert after.reads == register.reads + 1
        assert hass.states.get(counter).state == "8"
        assert coordinator.wake_scheduled
        await _unload(hass, entry)
    finally:
        await server.stop()


async def test_unchanged_entity_writes_no_state(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """A register read again and again with the same value writes no state at all."""
    device = table_device()
    device.set_float32(1, Table.INPUT, 0, 10.0)
    device.words[1][Table.INPUT][2] = 3
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = custom_entry(hass, server.port, {1: FLOAT_MAP})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        power, counter = (
            sensor_entity(hass, entry, "power", 1),
            sensor_entity(hass, entry, "counter", 1),
        )
        events: list[str] = []

        @callback
        def _record(event: Event[Any]) -> None:
            events.append(event.data["entity_id"])

        @callback
        def _ours(event_data: Any) -> bool:
            return event_data["entity_id"] in (power, counter)

        unsubs = [
            hass.bus.async_listen(kind, _record, event_filter=_ours)
            for kind in (EVENT_STATE_CHANGED, EVENT_STATE_REPORTED)
        ]
        reads = coordinator.engine.snapshot().registers["1.counter"].reads
        for step in range(10):
            device.set_float32(1, Table.INPUT, 0, 11.0 + step)  # the power moves
            await coordinator.async_read_now(["1.power", "1.counter"])
            await hass.async_block_till_done()
        await vtime.run(coordinator, 120)
        for unsub in unsubs:
            unsub()
        assert coordinator.engine.snapshot().registers["1.counter"].reads >= reads + 10
        assert counter not in events
        # the control: a changing value writes each time
        assert events.count(power) == 10
        assert hass.states.get(counter).state == "3"
        await _unload(hass, entry)
    finally:
        await server.stop()


async def test_silent_units_do_not_keep_the_others_from_loading(
    hass: HomeAssistant,
    vtime: VirtualTime,
    table_device: type[TableDevice],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Test that silent units do not keep the others from loading.

    Units 1-3 never answer, unit 4 does: the first cycle outlasts the setup bound,
    the entry loads, unit 4 shows its value and units 1-3 are unavailable.

    Each silent unit is logged once; unit 1 coming back is logged once and loads.
    """
    caplog.set_level(logging.INFO, logger="custom_components.adaptive_modbus")
    device = table_device(unit_ids=(4,))
    device.words[4][Table.INPUT][0] = 230
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1, 2, 3, 4))
    await server.start()
    try:
        entry = custom_entry(
            hass, server.port, dict.fromkeys((1, 2, 3, 4), SMALL_MAP), {"timeout": 0.3}
        )
        started = time.monotonic()
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        elapsed = time.monotonic() - started
        assert entry.state is ConfigEntryState.LOADED
        limit = setup_timeout(entry.runtime_data.hub)
        assert elapsed > limit, "the first cycle did not reach the setup bound"
        await hass.async_block_till_done(wait_background_tasks=True)
        assert hass.states.get(sensor_entity(hass, entry, "voltage", 4)).state == "230"
        for unit in (1, 2, 3):
            assert hass.states.get(
                sensor_entity(hass, entry, "voltage", unit)
            ).state == (STATE_UNAVAILABLE)
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 10 * 60)
        assert coordinator.silent_units == {1, 2, 3}
        assert coordinator.last_update_success  # unit 4 answers: not an outage

        device.words[1] = {table: {} for table in Table}
        device.words[1][Table.INPUT][0] = 231
        await vtime.run(coordinator, 10 * 60)
        assert hass.states.get(sensor_entity(hass, entry, "voltage", 1)).state == "231"
        assert coordinator.silent_units == {2, 3}
        messages = [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("custom_components.adaptive_modbus")
        ]
        for unit in (1, 2, 3):
            silent = [
                m for m in messages if f"unit {unit} " in m and "not answering" in m
            ]
            assert len(silent) == 1, messages
        back = [m for m in messages if "unit 1 answers again" in m]
        assert len(back) == 1, messages
        await _unload(hass, entry)
    finally:
        await server.stop()


async def test_setup_reaching_its_bound_loads_what_answered(
    hass: HomeAssistant, vtime: VirtualTime, sim_server: SimulatorServer, tcp_entry: Any
) -> None:
    """Test that setup reaching its bound loads what answered.

    A slow device whose first cycle takes longer than the bound: setup returns at
    the bound with what was read, the rest of the cycle completes in the background.
    """
    sim_server.response_delay = 0.25
    entry = tcp_entry(sim_server.port, options={"timeout": 0.5})
    # the image platform's component (and HA's http) load once, before the clock runs:
    # loading them inside the setup would let the background cycle finish meanwhile
    assert await async_setup_component(hass, "image", {})
    started = time.monotonic()
    await hass.config_entries.async_setup(entry.entry_id)
    elapsed = time.monotonic() - started
    assert entry.state is ConfigEntryState.LOADED
    coordinator = entry.runtime_data.coordinator
    read_at_setup = sum(
        1
        for r in coordinator.engine.snapshot().registers.values()
        if r.last_read is not None
    )
    limit = setup_timeout(entry.runtime_data.hub)
    assert limit <= elapsed < limit + 1.0  # at the bound, not at the end of the cycle
    await hass.async_block_till_done(wait_background_tasks=True)
    registers = coordinator.engine.snapshot().registers.values()
    read_later = sum(1 for r in registers if r.last_read is not None)
    assert 0 < read_at_setup < read_later
    assert coordinator.first_refresh_done
    outdoor = sensor_entity(hass, entry, "outdoor_temperature", 1)
    assert hass.states.get(outdoor).state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    await _unload(hass, entry)


# a Unix time register mapped as a timestamp: HA refuses a number for that class
BAD_CLASS_MAP = """
registers:
  - name: Last boot
    table: input
    address: 0
    data_type: uint16
    device_class: timestamp
  - name: Counter
    table: input
    address: 2
    data_type: uint16
"""


async def test_one_entity_failing_does_not_stop_the_others(
    hass: HomeAssistant,
    vtime: VirtualTime,
    table_device: type[TableDevice],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An entity whose state HA refuses (updated first) does not keep the next from updating."""
    device = table_device()
    device.words[1][Table.INPUT][0] = 100
    device.words[1][Table.INPUT][2] = 1
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    try:
        entry = custom_entry(hass, server.port, {1: BAD_CLASS_MAP})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        counter = sensor_entity(hass, entry, "counter", 1)
        assert hass.states.get(counter).state == "1"
        for value in range(2, 5):
            device.words[1][Table.INPUT][0] = 100 + value  # the refused one changes too
            device.words[1][Table.INPUT][2] = value
            await vtime.run(coordinator, 90)  # both read within the 60 s max interval
            assert hass.states.get(counter).state == str(value)
        failures = [
            r for r in caplog.records if "other entities go on" in r.getMessage()
        ]
        assert len(failures) == 1  # logged once
        await _unload(hass, entry)
    finally:
        await server.stop()
