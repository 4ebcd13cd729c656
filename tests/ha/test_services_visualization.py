"""The visualization services on the demo connection, through HA's service API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import DOMAIN, UNAVAILABLE_AFTER_FAILURES
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.entity import unit_identifier
from custom_components.adaptive_modbus.services import (
    DEFAULT_EXPORT_PATH,
    SERVICE_EXPORT_VISUALIZATION,
    SERVICE_GET_VISUALIZATION,
)
from custom_components.adaptive_modbus.storage import LearnedStateStore
from tests.visualization_schema import validate

from .helpers import sensor_entity, set_up_polled

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

TRANSLATIONS = (
    Path(__file__).parents[2] / "custom_components/adaptive_modbus/strings.json"
)


async def _get(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, SERVICE_GET_VISUALIZATION, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def _export(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, SERVICE_EXPORT_VISUALIZATION, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


@pytest.fixture(name="demo")
async def demo_fixture(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection after ten minutes of polling in virtual time."""
    return await set_up_polled(hass, vtime, demo_entry, 600)


async def test_every_view_through_the_service(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Test every view through the service."""
    engine = demo.runtime_data.coordinator.engine
    system = await _get(hass, view="system", period=1)
    validate(system, ref="system")
    snap = engine.snapshot()
    assert system["connection"] == demo.title
    assert system["registers"]["enabled"] == sum(
        1 for r in snap.registers.values() if r.enabled
    )
    # the coordinator fed the history: every request of the ten minutes is in the hours
    assert system["period_totals"]["requests"] == snap.totals.requests > 0

    entity_id = sensor_entity(hass, demo, "outdoor_temperature")
    register = await _get(hass, view="register", entity_id=entity_id)
    validate(register, ref="register")
    assert register["uid"] == "1.outdoor_temperature"
    assert register["reads"] == snap.registers["1.outdoor_temperature"].reads
    assert register["value_history"]

    device = dr.async_get(hass).async_get_device(
        identifiers={unit_identifier(demo.entry_id, 1)}
    )
    assert device is not None
    by_device = await _get(hass, view="device", device_id=device.id)
    validate(by_device, ref="device")
    by_entity = await _get(hass, view="device", entity_id=entity_id)
    assert [r["uid"] for r in by_device["registers"]] == [
        r["uid"] for r in by_entity["registers"]
    ]

    clusters = await _get(hass, view="cluster", config_entry_id=demo.entry_id)
    validate(clusters, ref="cluster")
    holes = [a for t in clusters["tables"] for b in t["blocks"] for a in b["holes"]]
    assert set(holes) <= set(snap.holes.get("1.input", ()))


@pytest.mark.parametrize(
    ("data", "key", "argument"),
    [
        ({"view": "register"}, "register_needs_entity", "entity_id"),
        ({"view": "device"}, "device_needs_target", "device_id"),
        (
            {"view": "system", "config_entry_id": "nope"},
            "entry_not_loaded",
            "config_entry_id",
        ),
        ({"view": "system", ATTR_DEVICE_ID: "nope"}, "unknown_device", "device_id"),
        (
            {"view": "system", ATTR_ENTITY_ID: "sensor.nope"},
            "unknown_entity",
            "entity_id",
        ),
    ],
)
async def test_bad_arguments_are_named(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    data: dict[str, Any],
    key: str,
    argument: str,
) -> None:
    """Test that a bad service argument is named in the error."""
    with pytest.raises(ServiceValidationError) as info:
        await _get(hass, **data)
    assert info.value.translation_key == key
    message = json.loads(TRANSLATIONS.read_text())["exceptions"][key]["message"]
    assert argument in message


async def test_export_writes_the_full_dataset(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Test that the export service writes the full dataset."""
    hass.config.allowlist_external_dirs = {hass.config.path("www")}
    result = await _export(hass, period=1)
    path = Path(result["path"])
    assert path == Path(hass.config.path(DEFAULT_EXPORT_PATH))
    text = await hass.async_add_executor_job(path.read_bytes)
    assert result["size"] == len(text)
    data = json.loads(text)
    validate(data)
    assert data["schema_version"] == result["schema_version"] == 1
    assert [c["name"] for c in data["connections"]] == [demo.title]


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("www/../secrets.json", "path_traversal"),
        ("www/adaptive_modbus/../../configuration.json", "path_traversal"),
        ("/etc/adaptive_modbus.json", "path_not_allowed"),
        ("custom_components/export.json", "path_not_allowed"),
        ("www/adaptive_modbus/export.txt", "path_not_json"),
    ],
)
async def test_export_refuses_outside_paths_and_traversal(
    hass: HomeAssistant, demo: MockConfigEntry, path: str, key: str
) -> None:
    """Test that the export refuses paths outside the allowed ones and traversal."""
    hass.config.allowlist_external_dirs = {hass.config.path("www")}
    with pytest.raises(ServiceValidationError) as info:
        await _export(hass, path=path)
    assert info.value.translation_key == key
    assert info.value.translation_placeholders == {"path": path}
    written = [
        Path(hass.config.path("secrets.json")),
        Path("/etc/adaptive_modbus.json"),
    ]
    assert not any(
        await hass.async_add_executor_job(lambda: [p.exists() for p in written])
    )


async def test_history_is_saved_with_the_learned_state(
    hass: HomeAssistant, demo: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """Test that the history is saved with the learned state."""
    store: LearnedStateStore = demo.runtime_data.store
    await store.async_save()
    saved = hass_storage[f"{DOMAIN}.{demo.entry_id}"]["data"]
    hours = saved["history"]["hours"]
    engine = demo.runtime_data.coordinator.engine
    assert sum(row[1] for row in hours) == engine.snapshot().totals.requests
    assert await hass.config_entries.async_unload(demo.entry_id)
    await hass.async_block_till_done()
    # a restart restores the hourly aggregates before the first cycle adds to them
    assert await hass.config_entries.async_setup(demo.entry_id)
    await hass.async_block_till_done()
    restored = demo.runtime_data.coordinator.history.hours()
    assert sum(h.requests for h in restored) > sum(row[1] for row in hours) - 1
    assert [h.start for h in restored][: len(hours)] == [row[0] for row in hours]


async def test_history_counts_an_outage_while_every_cycle_fails(
    hass: HomeAssistant, vtime: VirtualTime, sim_server: SimulatorServer, tcp_entry: Any
) -> None:
    """Failing cycles raise before the entities get data: the history still gets them."""
    entry = tcp_entry(sim_server.port)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 60)
    await sim_server.stop()
    await vtime.run(coordinator, 15 * 60)
    assert coordinator.failed_cycles >= UNAVAILABLE_AFTER_FAILURES
    snap = coordinator.engine.snapshot()
    hours = coordinator.history.hours()
    # cycles not yet handed to the history (at most a few): the coordinator's own
    # bookkeeping, which no public API shows
    pending = coordinator._unobserved  # noqa: SLF001
    assert len(pending) <= UNAVAILABLE_AFTER_FAILURES
    errors = sum(h.errors for h in hours) + sum(len(r.errors) for r in pending)
    assert errors == snap.totals.errors > UNAVAILABLE_AFTER_FAILURES
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_no_loaded_connection_is_said_so(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Test that the service says so when no connection is loaded."""
    assert await hass.config_entries.async_unload(demo.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as info:
        await _get(hass, view="system")
    assert info.value.translation_key == "no_connections"
    hass.config.allowlist_external_dirs = {hass.config.path("www")}
    with pytest.raises(ServiceValidationError) as info:
        await _export(hass)
    assert info.value.translation_key == "no_connections"
