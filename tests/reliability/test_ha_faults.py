"""Faults through the real integration, in the integration's virtual time.

HA (test plugin) -> coordinator -> engine -> pymodbus transport -> fault proxy ->
simulator.

Bounds (the options of these tests: min interval 2 s, max interval 60 s, timeout 0.5 s):
entities turn unavailable after UNAVAILABLE_AFTER_FAILURES failed cycles and not after
one; a down unit is probed 5 s after the failing cycle, then at doubling intervals up
to UNIT_PROBE_MAX (30 s), and the coordinator wakes for those probes only; after the
device returns, values are fresh within one probe step at its cap (plus one cycle).
Before issue 8's fixes: 123-132 wake-ups in a 10-minute outage, values back 63-77 s
after the gateway returned.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from datetime import timedelta
import time
from typing import Any
from unittest.mock import patch

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.adaptive_modbus.const import (
    DOMAIN,
    STORAGE_SAVE_DELAY,
    UNAVAILABLE_AFTER_FAILURES,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.scheduler import (
    UNIT_PROBE_MAX,
    PollEngine,
)
from custom_components.adaptive_modbus.engine.simulator.device import SimulatedDevice
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

from .harness import VirtualTime, record, tcp_entry_factory, unit_probes_within
from .proxy import Fault, Proxy, Request, random_policy

pytestmark = [
    pytest.mark.usefixtures("socket_enabled", "enable_custom_integrations"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

MAX_INTERVAL = 60.0
MIN_INTERVAL = 2.0
RECOVERY_BOUND = UNIT_PROBE_MAX + MIN_INTERVAL  # one probe step, plus one cycle
# the cycle that finds the gateway gone, then the probes of the down unit
OUTAGE_WAKEUPS = 1 + unit_probes_within(600)


async def wait_for(predicate: Callable[[], bool], within: float = 3.0) -> bool:
    """Wait in real time until ``predicate`` holds; return False after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def entity_id(hass: HomeAssistant, entry: Any, platform: str, key: str) -> str:
    """Return the entity id of register ``key`` of unit 1."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_1_{key}"
    )
    assert found is not None, key
    return found


class NanDevice:
    """Input 0-1: float32 NaN ("not implemented", SunSpec style); input 2: 230."""

    unit_id = 1

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Return NaN at input 0-1 and 230 at input 2."""
        words = [0x7FC0, 0x0000, 230, 0]
        return words[address : address + count]

    def write_registers(self, unit_id: int, address: int, values: Any) -> None:
        """Refuse: the device is read-only."""
        raise NotImplementedError

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Refuse: the device is read-only."""
        raise NotImplementedError


NAN_MAP = """
registers:
  - name: Power
    table: input
    address: 0
    data_type: float32
    unit: W
    device_class: power
    state_class: measurement
  - name: Voltage
    table: input
    address: 2
    data_type: uint16
    unit: V
    device_class: voltage
    state_class: measurement
"""


@pytest.fixture
async def gateway(vtime: VirtualTime) -> AsyncIterator[tuple[SimulatorServer, Proxy]]:
    """Provide the demo device (virtual clock) on loopback with the proxy in front."""
    server = SimulatorServer(
        SimulatedDevice(seed=7, clock=vtime.time), host="127.0.0.1"
    )
    await server.start()
    proxy = Proxy(server.port)
    await proxy.start()
    yield server, proxy
    await proxy.stop()
    await server.stop()


async def setup_entry(hass: HomeAssistant, port: int, **kwargs: Any) -> Any:
    """Set up a Modbus TCP entry to ``port``; return it."""
    entry = tcp_entry_factory(hass)(port, **kwargs)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def unload(hass: HomeAssistant, entry: Any) -> None:
    """Unload ``entry``, whatever state it is in."""
    with contextlib.suppress(Exception):
        await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def step(vtime: VirtualTime, coordinator: Any) -> None:
    """Advance to the coordinator's next wake-up."""
    await vtime.advance(max(coordinator.seconds_to_next_due(), 0.01), coordinator)


async def outage(
    hass: HomeAssistant, vtime: VirtualTime, proxy: Proxy
) -> dict[str, Any]:
    """Ten minutes of gateway outage through the integration; what was seen."""
    entry = await setup_entry(hass, proxy.port)
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 120)
    power = entity_id(hass, entry, "sensor", "active_power")
    assert hass.states.get(power).state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)
    await proxy.offline()
    failed_seen = []
    start = vtime.offset
    while (
        coordinator.failed_cycles < UNAVAILABLE_AFTER_FAILURES
        and vtime.offset - start < 900
    ):
        await step(vtime, coordinator)
        failed_seen.append((coordinator.failed_cycles, hass.states.get(power).state))
    assert coordinator.failed_cycles == UNAVAILABLE_AFTER_FAILURES
    unavailable_after = vtime.offset - start
    states = [s for s in hass.states.async_all() if s.entity_id.startswith(("sensor.", "number."))
              and er.async_get(hass).async_get(s.entity_id).config_entry_id == entry.entry_id
              and er.async_get(hass).async_get(s.entity_id).entity_category is None]  # fmt: skip
    assert states and all(s.state == STATE_UNAVAILABLE for s in states), states
    await vtime.run(coordinator, 600 - unavailable_after)
    await proxy.online()
    back = vtime.offset
    while (
        hass.states.get(power).state == STATE_UNAVAILABLE and vtime.offset - back < 900
    ):
        await step(vtime, coordinator)
    recovery = vtime.offset - back
    await unload(hass, entry)
    measured = {"unavailable_after_s": round(unavailable_after, 1),
                "failed_cycles": UNAVAILABLE_AFTER_FAILURES,
                "available_again_after_s": round(recovery, 1)}  # fmt: skip
    record("ha_outage", measured)
    return {**measured, "seen": failed_seen, "states": states}


async def test_outage_unavailable_after_the_stated_failures(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that entities turn unavailable after the stated failures, and come back.

    Gateway gone: one failed cycle changes nothing, UNAVAILABLE_AFTER_FAILURES failed
    cycles make every entity unavailable, and they come back.
    """
    measured = await outage(hass, vtime, gateway[1])
    after_one = [state for failed, state in measured["seen"] if failed == 1]
    assert after_one and STATE_UNAVAILABLE not in after_one, measured["seen"]
    states = measured["states"]
    assert states and all(s.state == STATE_UNAVAILABLE for s in states), states
    assert measured["available_again_after_s"] < 900


async def test_outage_values_back_within_one_backoff_step(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """After the gateway returns, values are fresh within RECOVERY_BOUND."""
    measured = await outage(hass, vtime, gateway[1])
    assert measured["available_again_after_s"] <= RECOVERY_BOUND, measured


async def test_outage_wakeups_are_bounded(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that the coordinator's wake-ups during an outage are bounded.

    10 minutes of outage: the coordinator wakes for the probes of the down unit (5 s
    doubling to 30 s: OUTAGE_WAKEUPS in 10 minutes), not more.
    """
    _server, proxy = gateway
    entry = await setup_entry(hass, proxy.port)
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 120)
    await proxy.offline()
    wakeups = 0
    start = vtime.offset
    # count the wake-ups within the 10 minutes (a storm is cut short at 200)
    while (
        vtime.offset + coordinator.seconds_to_next_due() - start <= 600
        and wakeups < 200
    ):
        await step(vtime, coordinator)
        wakeups += 1
    record("ha_outage_wakeups", {"wakeups_in_600s": wakeups})
    await unload(hass, entry)
    assert wakeups <= OUTAGE_WAKEUPS, wakeups


async def test_nan_shows_unknown_for_that_entity_only(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """Test that NaN shows unknown for that entity only.

    A float register answering NaN: its entity is unknown, the neighbour updates,
    and NaN is not a change on every read.
    """
    server = SimulatorServer(NanDevice(), host="127.0.0.1")
    await server.start()
    try:
        entry = await setup_entry(hass, server.port, register_map=NAN_MAP)
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 300)
        power = hass.states.get(entity_id(hass, entry, "sensor", "power"))
        voltage = hass.states.get(entity_id(hass, entry, "sensor", "voltage"))
        register = coordinator.engine.snapshot().registers["1.power"]
        await unload(hass, entry)
    finally:
        await server.stop()
    assert voltage is not None and voltage.state == "230"
    assert power is not None and power.state == STATE_UNKNOWN
    assert register.reads > 3 and register.changes <= 1, register


async def test_clock_step_backwards_keeps_polling(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Wall time steps back an hour (NTP): polling goes on within the max interval."""
    _server, proxy = gateway
    back = [0.0]
    with patch(
        "custom_components.adaptive_modbus.hub.wall_clock",
        lambda: vtime.time() - back[0],
    ):
        entry = await setup_entry(hass, proxy.port)
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 300)
        back[0] = 3600.0
        requests0 = proxy.counters.requests
        await vtime.run(coordinator, 3 * MAX_INTERVAL)
        requests = proxy.counters.requests - requests0
        record("ha_clock_step_back", {"requests_in_180s_after_1h_step_back": requests})
        await unload(hass, entry)
    # the fastest registers are due every few seconds: dozens of reads, at least 3
    assert requests >= 3, requests


async def test_unload_and_reload_during_an_inflight_cycle_leave_no_socket(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that unload and reload during a cycle in flight leave no socket behind.

    Unload (and reload) while a cycle waits for a slow answer: no socket left open
    at the gateway, and the reloaded entry holds exactly one.
    """
    _server, proxy = gateway
    entry = await setup_entry(hass, proxy.port)
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 30)
    proxy.fault, proxy.delay = Fault.DELAY, 0.3
    requests0 = proxy.counters.requests
    vtime.offset += coordinator.seconds_to_next_due()  # something is due now
    refresh = hass.async_create_task(coordinator.async_refresh())
    assert await wait_for(lambda: proxy.counters.requests > requests0)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    with contextlib.suppress(BaseException):
        await refresh
    assert await wait_for(lambda: proxy.open_sockets == 1), proxy.open_sockets
    coordinator = entry.runtime_data.coordinator
    requests0 = proxy.counters.requests
    vtime.offset += coordinator.seconds_to_next_due()  # something is due now
    refresh = hass.async_create_task(coordinator.async_refresh())
    assert await wait_for(lambda: proxy.counters.requests > requests0)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    with contextlib.suppress(BaseException):
        await refresh
    assert await wait_for(lambda: proxy.open_sockets == 0), proxy.open_sockets
    await asyncio.sleep(0.5)  # nothing reconnects afterwards
    assert proxy.open_sockets == 0


async def test_unload_during_a_write_leaves_no_socket(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that unloading during a write leaves no socket behind.

    Unload while a write waits for its answer, then a late write on the unloaded
    entry (an automation still holding it): nothing reconnects after close, no
    socket stays open at a one-client gateway.
    """
    _server, proxy = gateway
    proxy.one_client = True
    entry = await setup_entry(hass, proxy.port)
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 30)

    def writes_unanswered(request: Request) -> Fault | None:
        return Fault.BLACKHOLE if request.function in (5, 6, 15, 16) else None

    proxy.policy = writes_unanswered
    requests0 = proxy.counters.requests
    write = hass.async_create_task(
        coordinator.async_write("1.room_setpoint", 22.0, "setpoint")
    )
    assert await wait_for(lambda: proxy.counters.requests > requests0)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    with contextlib.suppress(BaseException):
        await write
    await asyncio.sleep(1.5)  # past the write's timeout and retry
    assert proxy.open_sockets == 0, proxy.open_sockets
    connects = proxy.counters.connects
    proxy.policy = None
    with contextlib.suppress(Exception):
        await coordinator.async_write("1.room_setpoint", 21.0, "setpoint")
    await asyncio.sleep(0.2)
    record(
        "ha_write_after_unload",
        {"connects_after_close": proxy.counters.connects - connects},
    )
    assert proxy.open_sockets == 0, proxy.open_sockets
    assert proxy.counters.connects == connects


async def test_store_writes_bounded_under_random_faults(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that learned-state writes stay bounded under random faults.

    Half an hour of polling with 2 % random answer faults: the learned state is
    written at most once per save delay, and no task is left behind per cycle.
    """
    _server, proxy = gateway
    policy, injected = random_policy(
        0.02, [Fault.DROP, Fault.GARBAGE, Fault.TRUNCATE, Fault.WRONG_TID], seed=3
    )
    proxy.policy = policy
    writes: list[str] = []
    original = Store.async_save

    async def counting(self: Store[Any], data: Any) -> None:
        if self.key.startswith(DOMAIN):
            writes.append(self.key)
        await original(self, data)

    with patch.object(Store, "async_save", counting):
        entry = await setup_entry(hass, proxy.port, options={"min_interval": 5.0})
        coordinator = entry.runtime_data.coordinator
        await vtime.run(coordinator, 60)
        tasks_before = len(asyncio.all_tasks())
        periods = 3
        for _ in range(periods):
            await vtime.run(coordinator, STORAGE_SAVE_DELAY)
            # HA's store timer runs in real loop time: fire it (virtual time already passed)
            async_fire_time_changed(
                hass, dt_util.utcnow() + timedelta(seconds=STORAGE_SAVE_DELAY)
            )
            await vtime.settle(coordinator)
        tasks_after = len(asyncio.all_tasks())
        await unload(hass, entry)
    record("ha_store_writes", {"virtual_minutes": periods * STORAGE_SAVE_DELAY / 60,
                               "store_writes": len(writes), "injected": injected,
                               "tasks_before_after": [tasks_before, tasks_after]})  # fmt: skip
    assert sum(injected.values()) > 0
    # one write per save delay while polling, plus the one at unload
    assert periods <= len(writes) <= periods + 1, writes
    assert tasks_after <= tasks_before, (tasks_before, tasks_after)


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_learned_state_is_exported_and_imported_off_the_event_loop(
    hass: HomeAssistant, vtime: VirtualTime, gateway: tuple[SimulatorServer, Proxy]
) -> None:
    """Test that the learned state is exported and imported off the event loop.

    Saving and restoring it (about 0.1 s for a few hundred registers with full
    patterns) runs in an executor thread, never in the event loop: a reload saves
    at unload and restores at setup.
    """
    _server, proxy = gateway
    calls: list[tuple[str, bool]] = []
    export_state, import_state = PollEngine.export_state, PollEngine.import_state

    def exporting(self: PollEngine) -> Any:
        calls.append(("export", _in_event_loop()))
        return export_state(self)

    def importing(self: PollEngine, data: Any) -> Any:
        calls.append(("import", _in_event_loop()))
        return import_state(self, data)

    with (
        patch.object(PollEngine, "export_state", exporting),
        patch.object(PollEngine, "import_state", importing),
    ):
        entry = await setup_entry(hass, proxy.port)
        await vtime.run(entry.runtime_data.coordinator, 60)
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        await unload(hass, entry)
    assert {what for what, _ in calls} == {"export", "import"}, calls
    assert not any(in_loop for _, in_loop in calls), calls
