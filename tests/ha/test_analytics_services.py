"""The analytics services on the demo connection, through HA's service API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    async_validate_config_item,
)
from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
)
import voluptuous as vol

from custom_components.adaptive_modbus.analytics_services import (
    SERVICE_GENERATE_REPORT,
    SERVICE_GET_ANALYTICS,
    SERVICE_GET_HEALTH,
)
from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.simulator import signals

from .health_setup import device_id_of
from .helpers import sensor_entity, set_up_polled

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

STRINGS = json.loads(
    (
        Path(__file__).parents[2] / "custom_components/adaptive_modbus/strings.json"
    ).read_text()
)
# into the demo's first incident: escalation starts 30 min after the server
RUN_SECONDS = signals.incident_start(0) + 600


async def _call(hass: HomeAssistant, service: str, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    json.dumps(response, allow_nan=False)  # what automations and the UI get
    return response


@pytest.fixture(name="loaded")
async def loaded_fixture(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection set up (its first cycle run)."""
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    return demo_entry


@pytest.fixture(name="demo")
async def demo_fixture(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection ten minutes into its first incident."""
    return await set_up_polled(hass, vtime, demo_entry, RUN_SECONDS, max_step=300)


async def test_get_analytics_of_a_register_in_the_incident(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Aggregates, trend, forecast and the incident's anomalies of one register."""
    entity_id = sensor_entity(hass, demo, "supply_temperature")
    response = await _call(
        hass, SERVICE_GET_ANALYTICS, entity_id=entity_id, window=0.25, horizon=0.5
    )
    assert response["connection"] == demo.title
    assert (response["window"], response["horizon"]) == (900, 1800)
    (register,) = response["registers"]
    assert (
        register["entity_id"] == entity_id and register["key"] == "supply_temperature"
    )
    agg = register["aggregate"]
    assert agg["count"] > 10
    assert agg["min"] <= agg["time_weighted_mean"] <= agg["max"]
    # the last 15 min: the incident heats the supply (rising), anomalies were found
    assert register["trend"]["direction"] == "rising"
    assert register["trend"]["slope_per_hour"] > 0
    forecast = register["forecast"]
    assert forecast["points"] and forecast["points"][-1]["at"] >= response["at"] + 1700
    assert all(p["low"] <= p["value"] <= p["high"] for p in forecast["points"])
    assert register["forecast_accuracy"]["evaluated"] >= 1
    assert register["anomalies"]
    first = register["anomalies"][0]
    assert set(first) >= {"at", "value", "expected_low", "expected_high", "score"}
    assert first["score"] > 3.0
    assert not first["expected_low"] <= first["value"] <= first["expected_high"]


async def test_get_analytics_of_a_device_covers_its_registers(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Every non-text register of the unit, each with its entity id."""
    response = await _call(
        hass, SERVICE_GET_ANALYTICS, device_id=device_id_of(hass, demo, 1)
    )
    keys = {r["key"] for r in response["registers"]}
    assert {"active_power", "status_fault", "room_setpoint"} <= keys
    assert "serial_number" not in keys  # text
    assert response["unit_id"] == 1
    power = next(r for r in response["registers"] if r["key"] == "active_power")
    assert power["entity_id"] == sensor_entity(hass, demo, "active_power")
    assert response["window"] == 24 * 3600 and response["horizon"] == 3600


@pytest.mark.parametrize(
    ("data", "key", "argument"),
    [
        ({}, "analytics_target_needed", "entity_id"),
        ({ATTR_DEVICE_ID: "nope"}, "unknown_device", "device_id"),
        ({ATTR_ENTITY_ID: "sensor.nope"}, "unknown_entity", "entity_id"),
        (
            {ATTR_ENTITY_ID: "sensor.demo_heat_pump_requests_per_minute"},
            "analytics_needs_register",
            "entity_id",
        ),
    ],
)
async def test_get_analytics_refuses_bad_targets_by_argument(
    hass: HomeAssistant,
    loaded: MockConfigEntry,
    data: dict[str, Any],
    key: str,
    argument: str,
) -> None:
    """A translated error that names the argument."""
    if key == "analytics_needs_register":  # the connection's diagnostic sensor
        entity_id = er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{loaded.entry_id}_hub_requests_per_minute"
        )
        assert entity_id is not None
        data = {ATTR_ENTITY_ID: entity_id}
    with pytest.raises(ServiceValidationError) as info:
        await _call(hass, SERVICE_GET_ANALYTICS, **data)
    assert info.value.translation_key == key
    assert argument in STRINGS["exceptions"][key]["message"]


@pytest.mark.parametrize(
    ("service", "data"),
    [
        (SERVICE_GET_ANALYTICS, {"window": 0}),
        (SERVICE_GET_ANALYTICS, {"window": 200}),
        (SERVICE_GET_ANALYTICS, {"horizon": 49}),
        (SERVICE_GENERATE_REPORT, {"period": "year"}),
        (SERVICE_GENERATE_REPORT, {"max_length": 10}),
        (SERVICE_GET_HEALTH, {"bogus": 1}),
    ],
)
async def test_schemas_refuse_out_of_range_arguments(
    hass: HomeAssistant, loaded: MockConfigEntry, service: str, data: dict[str, Any]
) -> None:
    """Out-of-range or unknown arguments fail before anything runs."""
    if service == SERVICE_GET_ANALYTICS:
        data = {ATTR_ENTITY_ID: sensor_entity(hass, loaded, "active_power"), **data}
    with pytest.raises(vol.Invalid):
        await _call(hass, service, **data)


async def test_get_health_of_the_connection_and_the_device(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Score, explained factors, remediation and the trend; devices listed."""
    connection = await _call(hass, SERVICE_GET_HEALTH)
    assert connection["unit_id"] is None and connection["name"] == demo.title
    assert 0 <= connection["score"] <= 100
    assert connection["status"] in ("ok", "degraded", "poor")
    keys = {f["key"] for f in connection["factors"]}
    assert {"error_rate", "anomalies", "stale", "not_answering"} <= keys
    anomalies = next(f for f in connection["factors"] if f["key"] == "anomalies")
    assert anomalies["value"] > 0 and anomalies["penalty"] > 0  # the incident
    assert anomalies["explanation"].endswith("anomalies in the last 30 min")
    assert connection["remediation"] == []  # the demo device has nothing to fix
    assert len(connection["trend"]["day"]) >= 5 and connection["trend"]["week"]
    assert connection["devices"] == [
        {
            "unit_id": 1,
            "name": "Demo heat pump",
            "score": connection["devices"][0]["score"],
            "status": connection["devices"][0]["status"],
        }
    ]
    device = await _call(
        hass, SERVICE_GET_HEALTH, device_id=device_id_of(hass, demo, 1)
    )
    assert device["unit_id"] == 1 and device["scope"] == 1
    assert device["score"] == connection["devices"][0]["score"]
    assert "devices" not in device


async def test_generate_report_fits_a_notification(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Markdown at most 4000 characters with health and anomalies, plus its data."""
    response = await _call(hass, SERVICE_GENERATE_REPORT)
    markdown = response["markdown"]
    assert response["length"] == len(markdown) <= 4000
    assert markdown.startswith(f"## {demo.title}: day report")
    assert "**Health**" in markdown and "**Anomalies**" in markdown
    assert "Supply temperature" in markdown  # register names, not keys
    data = response["data"]
    assert data["period"] == "day" and data["anomalies"]["count"] > 0
    assert f"**Anomalies**: {data['anomalies']['count']}" in markdown
    week = await _call(
        hass,
        SERVICE_GENERATE_REPORT,
        device_id=device_id_of(hass, demo, 1),
        period="week",
        max_length=600,
    )
    assert week["length"] <= 600 and "more registers" in week["markdown"]
    assert week["data"]["unit_id"] == 1 and week["data"]["period"] == "week"


async def test_services_say_when_no_connection_is_loaded(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """Unloaded: health and report say no connection is loaded."""
    assert await hass.config_entries.async_unload(loaded.entry_id)
    for service in (SERVICE_GET_HEALTH, SERVICE_GENERATE_REPORT):
        with pytest.raises(ServiceValidationError) as info:
            await _call(hass, service)
        assert info.value.translation_key == "no_connections"


BLUEPRINTS = Path(__file__).parents[2] / "blueprints/automation/adaptive_modbus"


async def _automation_from_blueprint(
    hass: HomeAssistant, name: str, inputs: dict[str, Any]
) -> dict[str, Any]:
    """Load a blueprint with HA's loader and schema; return it with ``inputs``."""
    data = await hass.async_add_executor_job(load_yaml_dict, BLUEPRINTS / name)
    blueprint = Blueprint(
        data, expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    config = BlueprintInputs(
        blueprint,
        {"use_blueprint": {"path": f"adaptive_modbus/{name}", "input": inputs}},
    )
    config.validate()
    return {"id": name, "alias": name, **config.async_substitute()}


@pytest.mark.parametrize("name", ["anomaly_alert.yaml", "daily_report.yaml"])
async def test_blueprints_are_valid_for_home_assistant(
    hass: HomeAssistant, name: str
) -> None:
    """Each blueprint loads with HA's blueprint schema; its automation validates."""
    automation = await _automation_from_blueprint(hass, name, {})
    validated = await async_validate_config_item(hass, name, automation)
    assert validated is not None and validated.validation_status == "ok", validated


async def test_anomaly_alert_blueprint_notifies_with_the_event_figures(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """An adaptive_modbus_anomaly event of the chosen device sends the message."""
    calls = async_mock_service(hass, "notify", "test")
    device = device_id_of(hass, loaded, 1)
    automation = await _automation_from_blueprint(
        hass,
        "anomaly_alert.yaml",
        {"device": device, "min_score": 4, "notify_action": "notify.test"},
    )
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    entity_id = sensor_entity(hass, loaded, "active_power")
    event = {
        "entity_id": entity_id,
        "device_id": device,
        "uid": "1.active_power",
        "value": 6012.4,
        "expected_low": 1500.0,
        "expected_high": 2300.0,
        "score": 17.3,
    }
    hass.bus.async_fire("adaptive_modbus_anomaly", {**event, "score": 3.5})  # < 4
    hass.bus.async_fire("adaptive_modbus_anomaly", {**event, "device_id": "other"})
    hass.bus.async_fire("adaptive_modbus_anomaly", event)
    await hass.async_block_till_done()
    (call,) = calls
    name = hass.states.get(entity_id).attributes["friendly_name"]  # type: ignore[union-attr]
    assert call.data["title"] == f"Anomaly: {name}"
    message = call.data["message"]
    assert "6012.4 W" in message and "1500.0" in message and "2300.0 W" in message
    assert "score 17.3" in message


async def test_daily_report_blueprint_sends_the_report(
    hass: HomeAssistant, loaded: MockConfigEntry
) -> None:
    """The report automation asks the service and sends its markdown."""
    calls = async_mock_service(hass, "notify", "test")
    automation = await _automation_from_blueprint(
        hass,
        "daily_report.yaml",
        {
            "device": device_id_of(hass, loaded, 1),
            "period": "week",
            "notify_action": "notify.test",
        },
    )
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.services.async_call(
        "automation",
        "trigger",
        {ATTR_ENTITY_ID: "automation.daily_report_yaml"},
        blocking=True,
    )
    await hass.async_block_till_done()
    (call,) = calls
    assert call.data["title"] == "Adaptive Modbus week report"
    assert call.data["message"].startswith("## Demo heat pump: week report")
    assert len(call.data["message"]) <= 4000
    # off: its daily timer goes (no timer may outlive the test)
    await hass.services.async_call(
        "automation",
        "turn_off",
        {ATTR_ENTITY_ID: "automation.daily_report_yaml"},
        blocking=True,
    )


async def test_an_analytics_bug_does_not_stop_polling(
    hass: HomeAssistant,
    vtime: VirtualTime,
    loaded: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Analytics raising in every cycle: polling goes on, logged as an error once."""
    coordinator = loaded.runtime_data.coordinator
    with patch.object(
        coordinator.analytics, "observe", side_effect=RuntimeError("boom")
    ):
        cycles = await vtime.run(coordinator, 60)
    assert cycles >= 3 and coordinator.last_update_success
    errors = [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and "Analytics of" in r.getMessage()
    ]
    assert len(errors) == 1
    assert coordinator.last_anomalies == []
