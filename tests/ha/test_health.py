"""Device health: answering events and the problem binary sensor, on a real server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, ServiceCall, callback
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.health import (
    EVENT_ANOMALY,
    EVENT_DEVICE_ANSWERING,
    EVENT_DEVICE_STOPPED,
    PROBLEM_NOT_ANSWERING,
    PROBLEM_POOR_HEALTH,
)
from custom_components.adaptive_modbus.logbook import async_describe_events

from .health_setup import (
    SMALL_MAP,
    device_id_of,
    fill,
    health_entity,
    health_entry,
    problem_entity,
    serve_units,
)

if TYPE_CHECKING:
    from .conftest import TableDevice, VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


async def test_unit_stopping_and_answering_fires_events_and_sets_problem(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """Unit 2 goes silent while unit 1 answers: one event each way, problem on/off."""
    device = table_device(unit_ids=(1, 2))
    server = await serve_units(device)
    events: list[tuple[str, dict[str, Any]]] = []

    @callback
    def _record(event: Event[Any]) -> None:
        events.append((event.event_type, dict(event.data)))

    for event_type in (EVENT_DEVICE_STOPPED, EVENT_DEVICE_ANSWERING):
        hass.bus.async_listen(event_type, _record)
    try:
        entry = health_entry(hass, server.port, {1: SMALL_MAP, 2: SMALL_MAP})
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        problem_1 = problem_entity(hass, entry, 1)
        problem_2 = problem_entity(hass, entry, 2)
        await vtime.run(coordinator, 60)
        assert hass.states.get(problem_2).state == STATE_OFF
        assert events == []

        del device.words[2]  # unit 2 stops answering
        await vtime.run(coordinator, 120)
        assert events == [
            (
                EVENT_DEVICE_STOPPED,
                {
                    "device_id": device_id_of(hass, entry, 2),
                    "entry_id": entry.entry_id,
                    "unit_id": 2,
                    "name": "Unit 2",
                },
            )
        ]
        state = hass.states.get(problem_2)
        assert state.state == STATE_ON
        # not answering costs 60 health points: poor health too
        assert state.attributes["problems"] == [
            PROBLEM_NOT_ANSWERING,
            PROBLEM_POOR_HEALTH,
        ]
        assert hass.states.get(problem_1).state == STATE_OFF
        assert coordinator.last_update_success  # unit 1 answers: no outage

        fill(device, 2)  # it answers again
        await vtime.run(coordinator, 15 * 60)  # errors leave the 10 min window
        assert [kind for kind, _ in events] == [
            EVENT_DEVICE_STOPPED,
            EVENT_DEVICE_ANSWERING,
        ]
        assert events[1][1]["device_id"] == device_id_of(hass, entry, 2)
        assert hass.states.get(problem_2).state == STATE_OFF
        assert hass.states.get(problem_2).attributes["problems"] == []
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
    finally:
        await server.stop()


async def test_problem_sensor_stays_available_when_the_connection_is_down(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """The whole server stops: register entities go unavailable, the problem sensor is on."""
    device = table_device(unit_ids=(1,))
    server = await serve_units(device, (1,))
    stopped: list[dict[str, Any]] = []
    hass.bus.async_listen(
        EVENT_DEVICE_STOPPED, callback(lambda event: stopped.append(event.data))
    )
    entry = health_entry(hass, server.port, {1: SMALL_MAP})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        problem = problem_entity(hass, entry, 1)
        assert hass.states.get(problem).state == STATE_OFF
        await server.stop()
        await vtime.run(coordinator, 180)
        assert not coordinator.last_update_success
        assert hass.states.get(problem).state == STATE_ON
        assert len(stopped) == 1
        assert stopped[0]["unit_id"] == 1
    finally:
        await server.stop()
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)


async def test_logbook_describes_anomalies_and_answering_events(
    hass: HomeAssistant,
) -> None:
    """Each health event has a logbook line naming the device or register."""
    described: dict[str, Callable[[Any], dict[str, str]]] = {}

    def _register(domain: str, event_type: str, describe: Any) -> None:
        assert domain == DOMAIN
        described[event_type] = describe

    async_describe_events(hass, _register)
    # (the logbook describes other events of the integration too)
    assert set(described) >= {
        EVENT_ANOMALY,
        EVENT_DEVICE_STOPPED,
        EVENT_DEVICE_ANSWERING,
    }
    hass.states.async_set(
        "sensor.meter_voltage", "290", {"friendly_name": "Meter Voltage"}
    )
    anomaly = Event(
        EVENT_ANOMALY,
        {
            "entity_id": "sensor.meter_voltage",
            "device_id": "abc",
            "uid": "1.voltage",
            "value": 290.0,
            "expected_low": 225.04,
            "expected_high": 235.0,
            "score": 8.234,
        },
    )
    assert described[EVENT_ANOMALY](anomaly) == {
        "name": "Meter Voltage",
        "message": "anomaly: read 290, expected 225 to 235 (score 8.23)",
        "entity_id": "sensor.meter_voltage",
    }
    stopped = Event(EVENT_DEVICE_STOPPED, {"name": "Unit 2", "unit_id": 2})
    assert described[EVENT_DEVICE_STOPPED](stopped) == {
        "name": "Unit 2",
        "message": "stopped answering (unit 2)",
    }
    back = Event(EVENT_DEVICE_ANSWERING, {"name": "Unit 2", "unit_id": 2})
    assert (
        described[EVENT_DEVICE_ANSWERING](back)["message"] == "answers again (unit 2)"
    )


async def test_health_sensor_falls_under_faults_and_recovers(
    hass: HomeAssistant, vtime: VirtualTime, table_device: type[TableDevice]
) -> None:
    """Unit 2 silent: its health and the connection's fall (the trigger fires), then recover."""
    calls: list[ServiceCall] = async_mock_service(hass, "test", "automation")
    device = table_device(unit_ids=(1, 2))
    server = await serve_units(device)
    entry = health_entry(hass, server.port, {1: SMALL_MAP, 2: SMALL_MAP})
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        coordinator = entry.runtime_data.coordinator
        health_1 = health_entity(hass, entry, "1")
        health_2 = health_entity(hass, entry, "2")
        health_hub = health_entity(hass, entry, "hub")
        unit_2 = device_id_of(hass, entry, 2)
        assert await async_setup_component(
            hass,
            "automation",
            {
                "automation": {
                    "triggers": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": unit_2,
                        "type": "health_below",
                        "threshold": 70,
                    },
                    "actions": {
                        "service": "test.automation",
                        "data_template": {"health": "{{ trigger.to_state.state }}"},
                    },
                }
            },
        )
        await vtime.run(coordinator, 5 * 60)
        for entity_id in (health_1, health_2, health_hub):
            assert int(hass.states.get(entity_id).state) >= 80, entity_id
        assert hass.states.get(health_2).attributes["status"] == "ok"
        assert calls == []

        del device.words[2]
        await vtime.run(coordinator, 5 * 60)
        state = hass.states.get(health_2)
        assert int(state.state) < 50
        assert state.attributes["status"] == "poor"
        assert state.attributes["factors"][0]["key"] == "not_answering"
        assert state.attributes["remediation"]  # says what to check, with figures
        assert int(hass.states.get(health_hub).state) < 100
        assert int(hass.states.get(health_1).state) >= 80  # the other unit is fine
        assert len(calls) == 1
        assert int(calls[0].data["health"]) < 70

        fill(device, 2)
        await vtime.run(coordinator, 15 * 60)
        state = hass.states.get(health_2)
        assert int(state.state) >= 80
        # nothing left of the outage (a loaded test machine may add latency points)
        assert [f["key"] for f in state.attributes["factors"]] in ([], ["latency"])
        assert len(calls) == 1  # fires on crossing below, not again on the way up
    finally:
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done(wait_background_tasks=True)
        await server.stop()


async def test_demo_incident_fires_anomalies_of_the_problem_child_only(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """The demo fleet as scripts/develop runs it: the heat pump's incident, seen in HA.

    Its anomaly events fire from the escalation on, never while stable, on its
    device (its anomaly trigger runs, the grid meter's does not); its health falls
    and recovers; the grid meter stays healthy.
    """
    calls: list[ServiceCall] = async_mock_service(hass, "test", "automation")
    events: list[dict[str, Any]] = []
    hass.bus.async_listen(
        EVENT_ANOMALY, callback(lambda event: events.append(dict(event.data)))
    )
    assert await async_setup_component(
        hass, DOMAIN, {DOMAIN: {"demo": True, "seed": 42}}
    )
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    coordinator = entry.runtime_data.coordinator
    fleet = entry.runtime_data.hub.server.device
    child, meter = device_id_of(hass, entry, 1), device_id_of(hass, entry, 2)
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                {
                    "triggers": {
                        "platform": "device",
                        "domain": DOMAIN,
                        "device_id": device_id,
                        "type": "anomaly",
                    },
                    "actions": {
                        "service": "test.automation",
                        "data_template": {
                            "device": "{{ trigger.event.data.device_id }}"
                        },
                    },
                }
                for device_id in (child, meter)
            ]
        },
    )
    health = {unit: health_entity(hass, entry, str(unit)) for unit in (1, 2)}
    lowest = {1: 100, 2: 100}
    for _ in range(10):  # 50 min: the stable half hour, escalation and peak
        await vtime.run(coordinator, 300)
        for unit, entity_id in health.items():
            lowest[unit] = min(lowest[unit], int(hass.states.get(entity_id).state))
    assert events, "the incident raised no anomaly"
    assert {event["device_id"] for event in events} == {child}
    phases = {fleet.device(1).phase(event["at"]).value for event in events}
    assert "stable" not in phases, events
    assert phases & {"escalation", "peak"}
    assert {event["unit_id"] for event in events} == {1}
    assert all(event["entity_id"].startswith("sensor.") for event in events)
    assert len(calls) == len(events)
    assert {call.data["device"] for call in calls} == {child}
    # the problem child's health fell (anomalies cost points), the grid meter's
    # stayed ok (a loaded machine's latency may cost it a few points, not more)
    assert lowest[1] < 80 <= lowest[2], lowest
    fell_to = lowest[1]
    await vtime.run(coordinator, 40 * 60)  # recovery and calm again
    assert int(hass.states.get(health[1]).state) > fell_to
    assert int(hass.states.get(health[1]).state) >= 80
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
