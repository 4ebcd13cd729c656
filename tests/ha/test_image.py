"""Chart image entities and the render_charts service on the demo connection."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import threading
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.adaptive_modbus import chart_runtime
from custom_components.adaptive_modbus.chart_services import SERVICE_RENDER_CHARTS
from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.charts import png_size, render
from custom_components.adaptive_modbus.entity import hub_identifier, unit_identifier

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

CHARTS = {
    "chart_hourly": "hourly",
    "chart_daily": "daily",
    "chart_cumulative": "cumulative",
}


@pytest.fixture(name="demo")
async def demo_fixture(
    hass: HomeAssistant, vtime: VirtualTime, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection after ten minutes of polling in virtual time."""
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await vtime.run(mock_config_entry.runtime_data.coordinator, 600)
    return mock_config_entry


def _image_ids(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Chart id -> entity id of every image entity of ``entry``."""
    registry = er.async_get(hass)
    ids = {}
    for item in er.async_entries_for_config_entry(registry, entry.entry_id):
        if item.domain == "image":
            ids[item.unique_id.removeprefix(f"{entry.entry_id}_")] = item.entity_id
    return ids


async def _render(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, SERVICE_RENDER_CHARTS, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def test_image_entities_are_registered_per_connection_and_unit(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Three charts on the connection device, one per unit device, translated names.

    The demo is a fleet of three units (heat pump, grid meter, PV inverter).
    """
    registry = er.async_get(hass)
    ids = _image_ids(hass, demo)
    assert set(ids) == {
        "hub_chart_hourly",
        "hub_chart_daily",
        "hub_chart_cumulative",
        "1_chart_intervals",
        "2_chart_intervals",
        "3_chart_intervals",
    }
    devices = dr.async_get(hass)
    hub = devices.async_get_device(identifiers={hub_identifier(demo.entry_id)})
    unit = devices.async_get_device(identifiers={unit_identifier(demo.entry_id, 1)})
    assert hub is not None and unit is not None
    for key, entity_id in ids.items():
        item = registry.async_get(entity_id)
        assert item is not None
        assert item.entity_category is None
        assert item.has_entity_name
        assert item.translation_key == key.split("_", 1)[1]
        if key.startswith("1_"):
            assert item.device_id == unit.id
        elif key.startswith("hub_"):
            assert item.device_id == hub.id
    assert registry.async_get(ids["1_chart_intervals"]).config_subentry_id == (
        next(iter(demo.subentries))
    )
    assert (
        hass.states.get(ids["hub_chart_hourly"]).name
        == "Demo heat pump Requests per hour"
    )


async def test_image_api_returns_pngs_of_the_expected_size(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """Every chart comes through HA's image proxy as a PNG 960 px wide."""
    client = await hass_client()
    sizes = {}
    for key, entity_id in _image_ids(hass, demo).items():
        response = await client.get(f"/api/image_proxy/{entity_id}")
        assert response.status == HTTPStatus.OK, key
        assert response.content_type == "image/png"
        sizes[key] = png_size(await response.read())
    assert sizes["hub_chart_hourly"] == (960, 540)
    assert sizes["hub_chart_daily"] == sizes["hub_chart_cumulative"] == (960, 540)
    width, height = sizes["1_chart_intervals"]
    assert width == 960 and height > 540  # one row per register of the demo device
    # the state is the time the picture was drawn
    state = hass.states.get(_image_ids(hass, demo)["hub_chart_hourly"])
    picture = demo.runtime_data.charts.pictures["hourly"]
    assert state.state == picture.updated.isoformat()


async def test_render_runs_in_the_executor(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Matplotlib draws in a worker thread, never in the event loop.

    The test plugin also raises on blocking calls in the loop (matplotlib reads its
    font cache and fonts from disk): the render would fail here if it ran there.
    """
    threads: list[threading.Thread] = []

    def spy(*args: Any) -> bytes:
        threads.append(threading.current_thread())
        return render(*args)

    demo.runtime_data.charts.pictures.clear()
    with patch.object(chart_runtime, "render", spy):
        response = await _render(hass, config_entry_id=demo.entry_id)
    # three connection charts and one intervals chart per unit of the demo fleet
    assert response["drawn"] == len(threads) == 3 + len(demo.runtime_data.hub.units)
    assert all(t is not threading.main_thread() for t in threads)
    assert hass.loop_thread_id not in {t.ident for t in threads}


async def test_cache_no_new_picture_without_new_data(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Render again without new cycles: nothing drawn, image_last_updated unchanged.

    Polling runs on real loop time meanwhile (virtual time follows it), so it is
    stopped first: no cycle, no new data.
    """
    manager = demo.runtime_data.charts
    await demo.runtime_data.coordinator.async_stop()
    ids = _image_ids(hass, demo)
    first = await _render(hass)
    states = {k: hass.states.get(e).state for k, e in ids.items()}
    renders = manager.renders
    again = await _render(hass)
    assert again["drawn"] == 0 and manager.renders == renders
    assert [r["changed"] for r in again["rendered"]] == [False] * (
        3 + len(demo.runtime_data.hub.units)
    )
    assert {k: hass.states.get(e).state for k, e in ids.items()} == states
    assert {r["chart"]: r["updated"] for r in again["rendered"]} == {
        r["chart"]: r["updated"] for r in first["rendered"]
    }


async def test_new_cycles_draw_new_pictures(
    hass: HomeAssistant, demo: MockConfigEntry, vtime: VirtualTime
) -> None:
    """New cycles move the aggregates: those charts are drawn anew, state follows."""
    manager = demo.runtime_data.charts
    hourly = _image_ids(hass, demo)["hub_chart_hourly"]
    await _render(hass)
    state = hass.states.get(hourly).state
    renders = manager.renders
    await vtime.run(demo.runtime_data.coordinator, 120)
    after = await _render(hass)
    changed = {r["chart"] for r in after["rendered"] if r["changed"]}
    assert {"hourly", "daily", "cumulative"} <= changed
    assert manager.renders == renders + len(changed)
    assert hass.states.get(hourly).state != state


async def test_render_charts_targets_a_device(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """A unit device renders its intervals chart; the connection device its three."""
    devices = dr.async_get(hass)
    unit = devices.async_get_device(identifiers={unit_identifier(demo.entry_id, 1)})
    hub = devices.async_get_device(identifiers={hub_identifier(demo.entry_id)})
    response = await _render(hass, device_id=unit.id)
    assert [r["chart"] for r in response["rendered"]] == ["intervals_1"]
    assert (
        response["rendered"][0]["entity_id"]
        == _image_ids(hass, demo)["1_chart_intervals"]
    )
    response = await _render(hass, device_id=hub.id)
    assert [r["chart"] for r in response["rendered"]] == [
        "hourly",
        "daily",
        "cumulative",
    ]
    with pytest.raises(ServiceValidationError) as info:
        await _render(hass, **{ATTR_DEVICE_ID: "nope"})
    assert info.value.translation_key == "unknown_device"
    with pytest.raises(ServiceValidationError) as info:
        await _render(hass, config_entry_id="nope")
    assert info.value.translation_key == "entry_not_loaded"


async def test_render_charts_is_admin_only(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
) -> None:
    """A non-admin user is refused; an admin (and an automation, no user) may."""
    renders = demo.runtime_data.charts.renders
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            DOMAIN,
            SERVICE_RENDER_CHARTS,
            {},
            blocking=True,
            return_response=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert demo.runtime_data.charts.renders == renders
    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_RENDER_CHARTS,
        {},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert isinstance(response, dict)
    assert len(response["rendered"]) == 3 + len(demo.runtime_data.hub.units)


async def test_hourly_schedule_renders(
    hass: HomeAssistant, demo: MockConfigEntry, vtime: VirtualTime
) -> None:
    """The charts are drawn again on the hourly schedule when their data moved."""
    manager = demo.runtime_data.charts
    await _render(hass)
    renders = manager.renders
    await vtime.run(demo.runtime_data.coordinator, 120)
    assert manager.renders == renders  # cycles alone draw nothing
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=1, seconds=1))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert manager.renders > renders


async def test_intervals_chart_has_a_timeline_for_every_register(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Every enabled register of the unit has a row, drawn from the first cycle on."""
    manager = demo.runtime_data.charts
    data = manager.data("intervals_1")
    snapshot = demo.runtime_data.coordinator.snapshot
    enabled = [r for r in snapshot.registers.values() if r.enabled and r.unit_id == 1]
    assert len(data.rows) == len(enabled)
    assert all(row.segments for row in data.rows), [
        row.label for row in data.rows if not row.segments
    ]
    assert all(row.segments[-1].end == data.end for row in data.rows)
