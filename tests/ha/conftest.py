"""Fixtures of the HA tests: custom integrations on, loopback Modbus servers, entries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, timedelta
import struct
import time
from typing import Any
from unittest.mock import PropertyMock, patch

import freezegun.api
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.adaptive_modbus import PLATFORMS
from custom_components.adaptive_modbus.const import (
    CONF_ADAPTIVE,
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_FIXED_INTERVAL,
    CONF_HOST,
    CONF_NAME,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SEED,
    CONF_UNIT_ID,
    CONNECTION_DEMO,
    CONNECTION_TCP,
    DOMAIN,
    PROFILE_CUSTOM,
    PROFILE_DEMO,
)
from custom_components.adaptive_modbus.engine.errors import ModbusTimeout
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.device import SimulatedDevice
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from tests.ha.helpers import FAST_OPTIONS

LOOPBACK = pytest.mark.allow_hosts(["127.0.0.1"])


class VirtualTime:
    """Virtual time for the integration: real time plus an offset tests advance.

    The engine, the demo device and the transport's backoff read this clock; HA's
    loop keeps real time and ``async_fire_time_changed`` runs the coordinator's
    timer early by the same amount, so a minute of polling takes milliseconds.
    """

    def __init__(self, hass: HomeAssistant) -> None:
        """Start at real time, with no wake-up of the coordinator seen yet."""
        self.hass = hass
        self.offset = 0.0
        # the coordinator's wake-up last seen (loop time)
        self._wake: float | None = None
        self._scheduled_at = 0.0  # virtual time it was set

    def time(self) -> float:
        """Virtual wall time."""
        return time.time() + self.offset

    def monotonic(self) -> float:
        """Virtual monotonic time."""
        return time.monotonic() + self.offset

    async def advance(self, seconds: float, coordinator: Any = None) -> None:
        """Move virtual time on and fire HA's timers that became due.

        HA's timers live in real loop time, set when they were scheduled. Given the
        coordinator, fire by the virtual time passed since it last (re)scheduled its
        wake-up; otherwise by ``seconds``.
        """
        # nothing may be in flight: firing would also expire pymodbus' request timers
        await self.hass.async_block_till_done(wait_background_tasks=True)
        self.offset += seconds
        fire_by = seconds
        if coordinator is not None:
            wake = coordinator.next_wake
            if wake != self._wake:
                self._wake, self._scheduled_at = wake, self.offset - seconds
            fire_by = self.offset - self._scheduled_at
        async_fire_time_changed(
            self.hass, dt_util.utcnow() + timedelta(seconds=fire_by)
        )
        await self.settle(coordinator)

    async def settle(self, coordinator: Any = None) -> None:
        """Wait until nothing runs and the coordinator has its next wake-up set.

        A wake-up due within a few milliseconds fires in real time on its own, maybe
        just after ``async_block_till_done`` returned: wait for that refresh too.
        """
        await self.hass.async_block_till_done(wait_background_tasks=True)
        for _ in range(200):
            if coordinator is None or coordinator.wake_scheduled or coordinator.stopped:
                return
            await asyncio.sleep(0.01)
            await self.hass.async_block_till_done(wait_background_tasks=True)
        raise AssertionError("the coordinator did not schedule its next wake-up")

    async def run(
        self, coordinator: Any, seconds: float, max_step: float = 60.0
    ) -> int:
        """Advance ``seconds`` of virtual time, waking at each due time; return cycles run."""
        start_cycles = coordinator.cycles
        end = self.offset + seconds
        while self.offset < end - 1e-6:
            step = min(coordinator.seconds_to_next_due(), max_step, end - self.offset)
            await self.advance(max(step, 0.01), coordinator)
        return int(coordinator.cycles - start_cycles)


@pytest.fixture
def vtime(hass: HomeAssistant) -> Iterator[VirtualTime]:
    """Swap the integration's clocks for a virtual one (set up entries after this)."""
    clock = VirtualTime(hass)
    with (
        patch("custom_components.adaptive_modbus.hub.wall_clock", clock.time),
        patch("custom_components.adaptive_modbus.hub.monotonic_clock", clock.monotonic),
    ):
        yield clock


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/adaptive_modbus in every test."""
    return


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Use HA's snapshot format (ids and timestamps left out), kept in ``snapshots/``.

    One snapshot set serves every HA version tested: the registry fields HA 2026
    added, ``object_id_base`` (the entity's name again, which the snapshot holds) and
    ``suggested_object_id`` (None for our entities), are left out.
    """
    return snapshot.with_defaults(
        extension_class=HomeAssistantSnapshotExtension,
        exclude=props("object_id_base", "suggested_object_id"),
    )


@pytest.fixture
def demo_entry(hass: HomeAssistant) -> MockConfigEntry:
    """Provide the demo connection (simulator served on loopback by the integration)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Demo heat pump",
        unique_id="demo:42",
        data={
            CONF_CONNECTION: CONNECTION_DEMO,
            CONF_SEED: 42,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: 1,
                    CONF_PROFILE: PROFILE_DEMO,
                    CONF_NAME: "Demo heat pump",
                }
            ],
        },
        options=dict(FAST_OPTIONS),
    )
    entry.add_to_hass(hass)
    return entry


# fixed ids: unique ids and snapshots name them
DEMO_ENTRY_ID = "01JDEMOENTRY0000000000000"
DEMO_SUBENTRY_ID = "01JDEMODEVICE000000000001"
# the other members of the demo fleet: grid meter (unit 2), PV inverter (unit 3)
DEMO_GRID_METER_SUBENTRY_ID = "01JDEMODEVICE000000000002"
DEMO_PV_INVERTER_SUBENTRY_ID = "01JDEMODEVICE000000000003"


@pytest.fixture
def mock_config_entry(hass: HomeAssistant) -> MockConfigEntry:
    """Provide the demo connection as the config flow creates it: the demo fleet.

    One device subentry per member: the heat pump (unit 1, the problem child), the
    grid meter (unit 2, at most 20 registers per read) and the PV inverter (unit 3).
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        entry_id=DEMO_ENTRY_ID,
        title="Demo heat pump",
        unique_id="demo:42",
        data={CONF_CONNECTION: CONNECTION_DEMO, CONF_SEED: 42},
        options=dict(FAST_OPTIONS),
        subentries_data=[
            {
                "data": {
                    CONF_UNIT_ID: 1,
                    CONF_PROFILE: PROFILE_DEMO,
                    CONF_NAME: "Demo heat pump",
                },
                "subentry_id": DEMO_SUBENTRY_ID,
                "subentry_type": "device",
                "title": "Demo heat pump",
                "unique_id": "1",
            },
            {
                "data": {
                    CONF_UNIT_ID: 2,
                    CONF_PROFILE: "demo_grid_meter",
                    CONF_NAME: "Demo grid meter",
                },
                "subentry_id": DEMO_GRID_METER_SUBENTRY_ID,
                "subentry_type": "device",
                "title": "Demo grid meter",
                "unique_id": "2",
            },
            {
                "data": {
                    CONF_UNIT_ID: 3,
                    CONF_PROFILE: "demo_pv_inverter",
                    CONF_NAME: "Demo PV inverter",
                },
                "subentry_id": DEMO_PV_INVERTER_SUBENTRY_ID,
                "subentry_type": "device",
                "title": "Demo PV inverter",
                "unique_id": "3",
            },
        ],
    )
    entry.add_to_hass(hass)
    return entry


@pytest.fixture
def platforms() -> list[Platform]:
    """Provide the platforms ``init_integration`` loads (all; parametrise to load one)."""
    return list(PLATFORMS)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, platforms: list[Platform]
) -> AsyncIterator[MockConfigEntry]:
    """``mock_config_entry`` set up with only ``platforms`` loaded, unloaded at the end.

    The unload runs inside the patch, so it unloads the platforms that were loaded.
    """
    with patch("custom_components.adaptive_modbus.PLATFORMS", platforms):
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture
def frozen_wall_clock(hass: HomeAssistant, freezer: Any) -> Iterator[None]:
    """Make the integration's wall clock read ``freezer``'s time in every thread.

    freezegun hands real time to code called from a thread (it ignores ``threading``
    frames), and the demo device is built in an executor thread: without this its
    start time is real while its reads are frozen, and values drift between runs.

    HA's loop keeps real time meanwhile (timeouts, sleeps and timers run): HA binds
    ``loop.time`` on the loop itself to a function that reads ``time.monotonic``, so
    freezegun's ``real_asyncio`` (which patches the loop class) does not reach it and
    every ``asyncio.sleep`` or ``wait(timeout=...)`` would wait for ever (pymodbus
    3.11, HA 2026.2's pin, sleeps 0.1 s in ``connect``: the entry setup hung there).
    """

    def frozen() -> float:
        return float(freezer().replace(tzinfo=UTC).timestamp())

    with (
        patch("custom_components.adaptive_modbus.hub.wall_clock", frozen),
        # looked up now, on freezegun's module: an imported name would be frozen too
        patch.object(hass.loop, "time", freezegun.api.real_monotonic),
    ):
        yield


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Entities disabled by default are enabled (as in core's fixture of that name)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
async def sim_server(vtime: VirtualTime) -> AsyncIterator[SimulatorServer]:
    """Serve a simulated demo device over Modbus TCP on a free loopback port."""
    device = SimulatedDevice(seed=7, clock=vtime.time)
    server = SimulatorServer(device, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def tcp_entry_factory(
    hass: HomeAssistant,
) -> Callable[..., MockConfigEntry]:
    """Make TCP entries pointing at a port (profile or custom map)."""

    def make(
        port: int,
        *,
        profile: str = PROFILE_DEMO,
        register_map: str | None = None,
        options: dict[str, Any] | None = None,
        unit_id: int = 1,
    ) -> MockConfigEntry:
        device: dict[str, Any] = {CONF_UNIT_ID: unit_id, CONF_PROFILE: profile}
        if register_map is not None:
            device = {
                CONF_UNIT_ID: unit_id,
                CONF_PROFILE: PROFILE_CUSTOM,
                CONF_REGISTER_MAP: register_map,
                CONF_NAME: "Custom device",
            }
        entry = MockConfigEntry(
            domain=DOMAIN,
            title=f"Modbus 127.0.0.1:{port}",
            unique_id=f"tcp:127.0.0.1:{port}",
            data={
                CONF_CONNECTION: CONNECTION_TCP,
                CONF_HOST: "127.0.0.1",
                CONF_PORT: port,
                CONF_DEVICES: [device],
            },
            options={**FAST_OPTIONS, **(options or {})},
        )
        entry.add_to_hass(hass)
        return entry

    return make


@pytest.fixture
def tcp_entry(hass: HomeAssistant) -> Callable[..., MockConfigEntry]:
    """Provide a factory of TCP entries."""
    return tcp_entry_factory(hass)


@pytest.fixture
def fixed_options() -> dict[str, Any]:
    """Options of the fixed-interval baseline."""
    return {CONF_ADAPTIVE: False, CONF_FIXED_INTERVAL: 10.0}


class TableDevice:
    """A device whose words a test sets: ``words[unit][table][address] = word``.

    Addresses never set read 0; units not given never answer (a silent unit).
    """

    def __init__(self, unit_ids: tuple[int, ...] = (1,)) -> None:
        """Start ``unit_ids`` with every table empty (reads give 0)."""
        self.words: dict[int, dict[Table, dict[int, int]]] = {
            unit: {table: {} for table in Table} for unit in unit_ids
        }

    def set_float32(
        self, unit_id: int, table: Table, address: int, value: float
    ) -> None:
        """Store a big-endian float32 (two words)."""
        high, low = struct.unpack(">HH", struct.pack(">f", value))
        self.words[unit_id][table].update({address: high, address + 1: low})

    def set_string(self, unit_id: int, table: Table, address: int, text: str) -> None:
        """Store ASCII text, two characters per word."""
        raw = text.encode("ascii")
        raw += b"\0" * (len(raw) % 2)
        for i in range(0, len(raw), 2):
            self.words[unit_id][table][address + i // 2] = raw[i] << 8 | raw[i + 1]

    def _unit(self, unit_id: int) -> dict[Table, dict[int, int]]:
        if unit_id not in self.words:
            raise ModbusTimeout(f"no unit {unit_id}", unit_id=unit_id)
        return self.words[unit_id]

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Return the stored words (0 where nothing was set)."""
        words = self._unit(unit_id)[table]
        return [words.get(a, 0) for a in range(address, address + count)]

    def write_registers(self, unit_id: int, address: int, values: Any) -> None:
        """Store holding registers."""
        self._unit(unit_id)[Table.HOLDING].update(
            {address + i: int(v) for i, v in enumerate(values)}
        )

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Store one coil."""
        self._unit(unit_id)[Table.COIL][address] = int(value)


@pytest.fixture(name="table_device")
def table_device_fixture() -> type[TableDevice]:
    """Provide the :class:`TableDevice` class to test modules."""
    return TableDevice
