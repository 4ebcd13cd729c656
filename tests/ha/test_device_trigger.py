"""Device triggers: listed with translations, and firing automations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    translation,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.device_trigger import (
    TRIGGER_TYPES,
    async_get_trigger_capabilities,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.entity import hub_identifier
from custom_components.adaptive_modbus.health import EVENT_ANOMALY

from .health_setup import SMALL_MAP, device_id_of, fill, health_entry, serve_units

if TYPE_CHECKING:
    from .conftest import TableDevice, VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


def automation(device_id: str, trigger_type: str, **extra: Any) -> dict[str, Any]:
    """One automation with our device trigger that calls test.automation."""
    return {
        "alias": trigger_type,
        "triggers": {
            "platform": "device",
            "domain": DOMAIN,
            "device_id": device_id,
            "type": trigger_type,
            **extra,
        },
        "actions": {
            "service": "test.automation",
            "data_template": {
                "type": trigger_type,
                "unit": "{{ trigger.event.data.unit_id }}",
            },
        },
    }


@pytest.fixture
async def two_units(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> Any:
    """Units 1 and 2 answering on a real server; yields (entry, device, server)."""
    device = table_device(unit_ids=(1, 2))
    server = await serve_units(device)
    entry = health_entry(hass, server.port, {1: SMALL_MAP, 2: SMALL_MAP})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    try:
        yield entry, device
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        await server.stop()


async def test_device_lists_the_four_triggers_with_translations(
    hass: HomeAssistant, two_units: Any
) -> None:
    """A unit device lists four triggers, the connection device the health one."""
    entry, _device = two_units
    unit_device = device_id_of(hass, entry, 1)
    hub = dr.async_get(hass).async_get_device(
        identifiers={hub_identifier(entry.entry_id)}
    )
    assert hub is not None
    listed = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, [unit_device, hub.id]
    )
    ours = sorted(t["type"] for t in listed[unit_device] if t["domain"] == DOMAIN)
    assert ours == sorted(TRIGGER_TYPES)
    assert [t["type"] for t in listed[hub.id] if t["domain"] == DOMAIN] == [
        "health_below"
    ]
    texts = await translation.async_get_translations(
        hass, "en", "device_automation", [DOMAIN]
    )
    prefix = f"component.{DOMAIN}.device_automation"
    assert texts[f"{prefix}.trigger_type.stopped_answering"] == (
        "Device stopped answering"
    )
    assert texts[f"{prefix}.trigger_type.answering_again"] == "Device answering again"
    assert texts[f"{prefix}.trigger_type.anomaly"] == "Anomaly on a register"
    assert texts[f"{prefix}.trigger_type.health_below"] == "Health below a threshold"
    assert texts[f"{prefix}.extra_fields.threshold"] == "Threshold"
    capabilities = await async_get_trigger_capabilities(
        hass,
        {
            "platform": "device",
            "domain": DOMAIN,
            "device_id": unit_device,
            "type": "health_below",
        },
    )
    assert "threshold" in capabilities["extra_fields"].schema


async def test_stopped_and_answering_triggers_fire_automations(
    hass: HomeAssistant, vtime: VirtualTime, two_units: Any
) -> None:
    """Unit 2 stops and comes back: each of its automations runs once, unit 1's never."""
    entry, device = two_units
    coordinator = entry.runtime_data.coordinator
    calls: list[ServiceCall] = async_mock_service(hass, "test", "automation")
    unit_1, unit_2 = device_id_of(hass, entry, 1), device_id_of(hass, entry, 2)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                automation(unit_2, "stopped_answering"),
                automation(unit_2, "answering_again"),
                automation(unit_1, "stopped_answering"),
            ]
        },
    )
    await vtime.run(coordinator, 30)
    assert calls == []
    del device.words[2]
    await vtime.run(coordinator, 60)
    assert [(c.data["type"], c.data["unit"]) for c in calls] == [
        ("stopped_answering", 2)
    ]
    fill(device, 2)
    await vtime.run(coordinator, 60)
    assert [(c.data["type"], c.data["unit"]) for c in calls] == [
        ("stopped_answering", 2),
        ("answering_again", 2),
    ]


async def test_anomaly_trigger_fires_for_its_device_and_register(
    hass: HomeAssistant, two_units: Any
) -> None:
    """An anomaly event fires the device's anomaly trigger (and the register's, if named)."""
    entry, _device = two_units
    calls: list[ServiceCall] = async_mock_service(hass, "test", "automation")
    unit_1, unit_2 = device_id_of(hass, entry, 1), device_id_of(hass, entry, 2)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                automation(unit_1, "anomaly"),
                automation(unit_1, "anomaly", entity_id="sensor.unit_1_current"),
                automation(unit_2, "anomaly"),
            ]
        },
    )
    data = {
        "device_id": unit_1,
        "entity_id": "sensor.unit_1_voltage",
        "uid": "1.voltage",
        "unit_id": 1,
        "value": 290,
        "expected_low": 225.0,
        "expected_high": 235.0,
        "score": 8.2,
    }
    hass.bus.async_fire(EVENT_ANOMALY, data)
    await hass.async_block_till_done()
    assert [(c.data["type"], c.data["unit"]) for c in calls] == [("anomaly", 1)]
    hass.bus.async_fire(EVENT_ANOMALY, {**data, "entity_id": "sensor.unit_1_current"})
    await hass.async_block_till_done()
    assert len(calls) == 3  # the device's trigger and the register's


# a voltage with a tolerance: read about once a minute once it settles
TOLERANT_MAP = """
registers:
  - name: Voltage
    table: input
    address: 0
    data_type: uint16
    tolerance: 10
"""


async def test_a_real_jump_fires_the_anomaly_trigger_once(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """Unit 1's voltage wobbles for 40 min, then jumps: one anomaly event, one run."""
    device = table_device(unit_ids=(1, 2))
    server = await serve_units(device)
    entry = health_entry(hass, server.port, {1: TOLERANT_MAP, 2: SMALL_MAP})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        await _jump_fires_the_anomaly_trigger(hass, vtime, entry, device)
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        await server.stop()


async def _jump_fires_the_anomaly_trigger(
    hass: HomeAssistant, vtime: VirtualTime, entry: Any, device: TableDevice
) -> None:
    coordinator = entry.runtime_data.coordinator
    calls: list[ServiceCall] = async_mock_service(hass, "test", "automation")
    unit_1, unit_2 = device_id_of(hass, entry, 1), device_id_of(hass, entry, 2)
    events: list[dict[str, Any]] = []
    hass.bus.async_listen(
        EVENT_ANOMALY, callback(lambda event: events.append(dict(event.data)))
    )
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                automation(unit_1, "anomaly"),
                automation(unit_2, "anomaly"),
            ]
        },
    )
    for step in range(80):  # 40 min of 228-232 V
        device.words[1][Table.INPUT][0] = 228 + step % 5
        await vtime.run(coordinator, 30)
    assert events == []
    device.words[1][Table.INPUT][0] = 300
    await vtime.run(coordinator, 120)
    assert len(events) == 1
    event = events[0]
    voltage = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_1_voltage"
    )
    assert event["entity_id"] == voltage
    assert event["device_id"] == unit_1
    assert event["uid"] == "1.voltage"
    assert event["value"] == 300
    assert event["expected_low"] < 230 < event["expected_high"] < 300
    assert event["score"] > 3.0
    assert [(c.data["type"], c.data["unit"]) for c in calls] == [("anomaly", 1)]
