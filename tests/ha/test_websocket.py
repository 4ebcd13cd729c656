"""The websocket commands through HA's websocket API, with the test plugin's client."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import (
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.adaptive_modbus.const import CONF_VIEWED_FACTOR, DOMAIN
from custom_components.adaptive_modbus.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.adaptive_modbus.entity import unit_identifier
from custom_components.adaptive_modbus.services import SERVICE_GET_VISUALIZATION
from custom_components.adaptive_modbus.websocket_api import (
    WS_ENTRIES,
    WS_REFRESH,
    WS_SUBSCRIBE,
    WS_VIEWS,
    LiveView,
)
from tests.visualization_schema import validate

from .helpers import sensor_entity
from .test_services_visualization import demo_fixture  # noqa: F401

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

# FAST_OPTIONS: max_interval 60 s; default viewed_factor 0.25
CAP = 15.0
QUIET = 0.3  # seconds to wait for a message that must not come


async def _service(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, SERVICE_GET_VISUALIZATION, data, blocking=True, return_response=True
    )
    assert isinstance(response, dict)
    return response


async def _command(client: MockHAClientWebSocket, **msg: Any) -> dict[str, Any]:
    """Send a command; return its result (live views' events before it are skipped)."""
    await client.send_json_auto_id(msg)
    while True:
        reply: dict[str, Any] = await client.receive_json()
        if reply["type"] == "result":
            return reply


async def _event(client: MockHAClientWebSocket, timeout: float = 5.0) -> Any:
    reply = await asyncio.wait_for(client.receive_json(), timeout)
    assert reply["type"] == "event", reply
    return reply["event"]


async def _nothing(client: MockHAClientWebSocket) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.receive_json(), QUIET)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, unit: int = 1) -> str:
    device = dr.async_get(hass).async_get_device(
        identifiers={unit_identifier(entry.entry_id, unit)}
    )
    assert device is not None
    return device.id


def _viewed(entry: MockConfigEntry) -> list[str]:
    snap = entry.runtime_data.coordinator.engine.snapshot()
    return [uid for uid, r in snap.registers.items() if r.reason == "viewed"]


async def _subscribe(
    client: MockHAClientWebSocket, **args: Any
) -> tuple[int, dict[str, Any]]:
    reply = await _command(client, type=WS_SUBSCRIBE, **args)
    assert reply["success"], reply
    return reply["id"], await _event(client)


async def test_views_equal_the_service(
    hass: HomeAssistant, demo: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Test that every view over the websocket is the service's answer."""
    client = await hass_ws_client(hass)
    entity_id = sensor_entity(hass, demo, "outdoor_temperature")
    # the integration's virtual clocks stand still: both answers are of one instant
    wall, mono = time.time(), time.monotonic()
    frozen = SimpleNamespace(time=lambda: wall, monotonic=lambda: mono)
    with patch("tests.ha.conftest.time", frozen):
        await _compare_views(hass, client, demo, entity_id)


async def _compare_views(
    hass: HomeAssistant,
    client: MockHAClientWebSocket,
    demo: MockConfigEntry,
    entity_id: str,
) -> None:
    for args in (
        {"view": "system", "period": 1},
        {"view": "system", "config_entry_id": demo.entry_id},
        {"view": "device", "device_id": _device_id(hass, demo)},
        {"view": "device", "entity_id": entity_id},
        {"view": "register", "entity_id": entity_id, "period": 0.5},
        {"view": "cluster"},
    ):
        reply = await _command(client, type=WS_VIEWS, **args)
        assert reply["success"], reply
        validate(reply["result"], ref=args["view"])
        assert reply["result"] == await _service(hass, **args)


async def test_view_errors_name_the_argument(
    hass: HomeAssistant, demo: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Test that a bad target is refused with the service's translated error."""
    client = await hass_ws_client(hass)
    for msg, key in (
        ({"view": "register"}, "register_needs_entity"),
        ({"view": "device"}, "device_needs_target"),
        ({"view": "system", "device_id": "nope"}, "unknown_device"),
        ({"view": "system", "config_entry_id": "nope"}, "entry_not_loaded"),
    ):
        for command in (WS_VIEWS, WS_SUBSCRIBE):
            reply = await _command(client, type=command, **msg)
            assert not reply["success"]
            assert reply["error"]["translation_key"] == key
            assert reply["error"]["translation_domain"] == DOMAIN
    reply = await _command(client, type=WS_VIEWS, view="nope")
    assert reply["error"]["code"] == "invalid_format"
    # a failed subscription views nothing
    assert demo.runtime_data.coordinator.engine.viewers(1) == 0


async def test_read_only_user_reads_but_may_not_refresh(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
) -> None:
    """Test the admin checks: read-only commands open, changing ones admin-only."""
    device_id = _device_id(hass, demo)
    user = await hass_ws_client(hass, hass_read_only_access_token)
    assert (await _command(user, type=WS_VIEWS, view="system"))["success"]
    assert (await _command(user, type=WS_ENTRIES))["success"]
    await _subscribe(user, view="device", device_id=device_id)
    reply = await _command(user, type=WS_REFRESH, device_id=device_id)
    assert not reply["success"]
    assert reply["error"]["code"] == "unauthorized"

    engine = demo.runtime_data.coordinator.engine
    reads = {uid: r.reads for uid, r in engine.snapshot().registers.items()}
    admin = await hass_ws_client(hass)
    reply = await _command(admin, type=WS_REFRESH, device_id=device_id)
    assert reply["success"], reply
    snap = engine.snapshot()
    enabled = [uid for uid, r in snap.registers.items() if r.enabled]
    assert reply["result"] == {"requested": len(enabled)}
    assert all(snap.registers[uid].reads > reads[uid] for uid in enabled)


async def test_entries_list_connections_devices_and_entities(
    hass: HomeAssistant, demo: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Test the editor's list: ids and names as the registries have them."""
    client = await hass_ws_client(hass)
    reply = await _command(client, type=WS_ENTRIES)
    assert reply["success"], reply
    (entry,) = reply["result"]["entries"]
    assert entry["config_entry_id"] == demo.entry_id
    assert entry["title"] == demo.title
    assert entry["connection"] == "demo"
    (device,) = entry["devices"]
    assert device["device_id"] == _device_id(hass, demo)
    assert device["unit_id"] == 1
    assert device["name"] == "Demo heat pump"
    ent_reg = er.async_get(hass)
    by_key = {r["key"]: r for r in device["registers"]}
    assert set(by_key) == {d.key for d in demo.runtime_data.hub.units[0].definitions}
    outdoor = by_key["outdoor_temperature"]
    assert outdoor["entity_id"] == sensor_entity(hass, demo, "outdoor_temperature")
    assert outdoor["uid"] == "1.outdoor_temperature"
    for register in device["registers"]:
        entity = ent_reg.async_get(register["entity_id"])
        assert entity is not None
        assert entity.device_id == device["device_id"]


async def test_subscription_views_its_unit_until_unsubscribed(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Test demand-driven polling on with a live device view, off when it ends."""
    coordinator = demo.runtime_data.coordinator
    engine = coordinator.engine
    before = {
        uid: r.effective_interval for uid, r in engine.snapshot().registers.items()
    }
    assert max(before.values()) > CAP  # something rests above the shrunk bound
    assert not _viewed(demo)

    client = await hass_ws_client(hass)
    sub_id, first = await _subscribe(
        client, view="device", device_id=_device_id(hass, demo)
    )
    validate(first, ref="device")
    assert first["viewers"] == 1
    assert engine.viewers(1) == 1
    assert {r["uid"] for r in first["registers"] if r["reason"] == "viewed"} == set(
        _viewed(demo)
    )
    assert _viewed(demo)
    await vtime.run(coordinator, 120)
    snap = engine.snapshot()
    assert max(r.effective_interval for r in snap.registers.values()) <= CAP

    # a second live view on the same unit: counted, the first leaving keeps it viewed
    other = await hass_ws_client(hass)
    await _subscribe(
        other,
        view="register",
        entity_id=sensor_entity(hass, demo, "outdoor_temperature"),
    )
    assert engine.viewers(1) == 2
    reply = await _command(client, type="unsubscribe_events", subscription=sub_id)
    assert reply["success"]
    assert engine.viewers(1) == 1
    # closing the connection ends its subscriptions too
    await other.close()
    await hass.async_block_till_done()
    assert engine.viewers(1) == 0
    assert not _viewed(demo)
    await vtime.run(coordinator, 300)
    assert max(r.effective_interval for r in engine.snapshot().registers.values()) > CAP


async def test_system_and_cluster_subscriptions_view_no_unit(
    hass: HomeAssistant, demo: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Test that only device and register views make their unit viewed."""
    client = await hass_ws_client(hass)
    device_id = _device_id(hass, demo)
    _, system = await _subscribe(client, view="system", device_id=device_id)
    validate(system, ref="system")
    _, cluster = await _subscribe(client, view="cluster")
    validate(cluster, ref="cluster")
    assert demo.runtime_data.coordinator.engine.viewers(1) == 0


async def test_pushes_after_changing_cycles_rate_limited(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Test a push after a cycle that changed values, held back by the rate limit."""
    coordinator = demo.runtime_data.coordinator
    engine = coordinator.engine
    clock = [1000.0]  # the rate limit's clock, moved by hand
    limit = 60.0  # long enough that HA's real-time timers never fire on their own
    with (
        patch.object(LiveView, "_now", lambda _self: clock[0]),
        patch("custom_components.adaptive_modbus.websocket_api.PUSH_INTERVAL", limit),
    ):
        client = await hass_ws_client(hass)
        _, first = await _subscribe(
            client, view="device", device_id=_device_id(hass, demo)
        )
        reads = sum(r["reads"] for r in first["registers"])

        # cycles inside the interval after the first view: held back, not dropped
        vtime.offset += 30.0
        engine.request_read(engine.uids)
        await coordinator.async_refresh()
        await _nothing(client)
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=limit))
        pushed = await _event(client)
        validate(pushed, ref="device")
        assert sum(r["reads"] for r in pushed["registers"]) > reads
        await vtime.settle(coordinator)
        await _nothing(client)  # one message for the whole interval

        # once the interval has passed, the next changing cycle is pushed at once
        clock[0] += limit
        vtime.offset += 30.0
        engine.request_read(engine.uids)
        await coordinator.async_refresh()
        again = await _event(client, timeout=QUIET)
        assert sum(r["reads"] for r in again["registers"]) > sum(
            r["reads"] for r in pushed["registers"]
        )


async def test_subscription_follows_a_reload_with_a_new_factor(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Test that an options change (a reload) keeps the live view and its viewer."""
    client = await hass_ws_client(hass)
    sub_id, _ = await _subscribe(
        client, view="device", device_id=_device_id(hass, demo)
    )
    old = demo.runtime_data.coordinator.engine
    assert old.config.viewed_factor == 0.25  # the default
    hass.config_entries.async_update_entry(
        demo, options={**demo.options, CONF_VIEWED_FACTOR: 0.5}
    )
    await hass.async_block_till_done()
    coordinator = demo.runtime_data.coordinator
    engine = coordinator.engine
    assert engine is not old
    assert engine.config.viewed_factor == 0.5
    assert engine.viewers(1) == 1
    pushed = await _event(client)
    assert pushed["viewers"] == 1
    await vtime.run(coordinator, 300)
    intervals = [r.effective_interval for r in engine.snapshot().registers.values()]
    assert CAP < max(intervals) <= 2 * CAP  # max_interval 60 s x 0.5
    reply = await _command(client, type="unsubscribe_events", subscription=sub_id)
    assert reply["success"]
    assert engine.viewers(1) == 0


async def test_diagnostics_show_the_viewers(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """Test that diagnostics name the viewed unit and the registers it speeds up."""
    client = await hass_ws_client(hass)
    await _subscribe(client, view="device", device_id=_device_id(hass, demo))
    diagnostics = await async_get_config_entry_diagnostics(hass, demo)
    engine = diagnostics["engine"]
    assert engine["viewed"] == {"1": 1}
    viewed = {uid for uid, r in engine["registers"].items() if r["reason"] == "viewed"}
    assert viewed
    assert viewed == set(_viewed(demo))
    assert all(
        "viewed (1 live view)" in engine["registers"][uid]["detail"] for uid in viewed
    )


async def test_refresh_reads_a_register_or_the_connection(
    hass: HomeAssistant, demo: MockConfigEntry, hass_ws_client: WebSocketGenerator
) -> None:
    """Test that refresh reads exactly the register, or every enabled register."""
    engine = demo.runtime_data.coordinator.engine
    client = await hass_ws_client(hass)
    uid = "1.outdoor_temperature"
    before = engine.snapshot().registers[uid].reads
    entity_id = sensor_entity(hass, demo, "outdoor_temperature")
    reply = await _command(client, type=WS_REFRESH, entity_id=entity_id)
    assert reply["result"] == {"requested": 1}
    assert engine.snapshot().registers[uid].reads > before

    reads = {u: r.reads for u, r in engine.snapshot().registers.items()}
    reply = await _command(client, type=WS_REFRESH, config_entry_id=demo.entry_id)
    snap = engine.snapshot()
    enabled = [u for u, r in snap.registers.items() if r.enabled]
    assert reply["result"] == {"requested": len(enabled)}
    assert all(snap.registers[u].reads > reads[u] for u in enabled)

    reply = await _command(client, type=WS_REFRESH, config_entry_id="nope")
    assert reply["error"]["translation_key"] == "entry_not_loaded"
