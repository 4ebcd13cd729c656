"""Each audited change shows in HA's logbook, with the user who made it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import (
    RecorderInstanceContextManager,
    WebSocketGenerator,
)

from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.audit import Actor, Outcome
from custom_components.adaptive_modbus.logbook import describe
from custom_components.adaptive_modbus.optimization import EVENT_OPTIMIZATION
from custom_components.adaptive_modbus.optimization_services import (
    SERVICE_SET_REGISTER_INTERVAL,
)

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


@pytest.fixture
async def mock_recorder_before_hass(
    async_test_recorder: RecorderInstanceContextManager,
) -> None:
    """Let the recorder be set up before hass (the logbook reads from it)."""


async def _logbook(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> list[dict[str, Any]]:
    await async_wait_recording_done(hass)
    client = await hass_ws_client()
    await client.send_json(
        {"id": 1, "type": "logbook/get_events", "start_time": "2000-01-01T00:00:00Z"}
    )
    response = await client.receive_json()
    assert response["success"], response
    return [e for e in response["result"] if e.get("domain") == DOMAIN]


@pytest.mark.usefixtures("recorder_mock")
async def test_changes_show_in_the_logbook(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo_entry: MockConfigEntry,
    hass_admin_user: MockUser,
    hass_ws_client: WebSocketGenerator,
) -> None:
    """A user's pin and the loop's evaluation each make a logbook entry."""
    assert await async_setup_component(hass, "logbook", {})
    assert await hass.config_entries.async_setup(demo_entry.entry_id)
    await hass.async_block_till_done()
    optimizer = demo_entry.runtime_data.optimizer
    assert optimizer is not None
    optimizer.enabled = False  # only the changes made here
    events: list[dict[str, Any]] = []
    hass.bus.async_listen(
        EVENT_OPTIMIZATION, callback(lambda e: events.append(dict(e.data)))
    )
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{demo_entry.entry_id}_1_grid_voltage"
    )
    context = Context(user_id=hass_admin_user.id)
    await hass.services.async_call(
        DOMAIN,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": entity_id, "interval": 15},
        blocking=True,
        context=context,
    )
    # the loop's change, then its evaluation's outcome: two events for one entry
    audit = demo_entry.runtime_data.audit
    loop_entry = audit.add(
        actor=Actor.loop(),
        action="strategy:interval",
        target="1.grid_frequency",
        outcome=Outcome.EVALUATING,
    )
    audit.update(loop_entry.id, outcome=Outcome.KEPT, measured={"saving": 0.1})
    await hass.async_block_till_done()
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("set_register_interval", "applied"),
        ("strategy:interval", "evaluating"),
        ("strategy:interval", "kept"),
    ]
    assert events[0]["user_id"] == hass_admin_user.id
    assert events[0]["entity_id"] == entity_id

    entries = await _logbook(hass, hass_ws_client)
    loop_change = "interval strategy: change to 1.grid_frequency"
    messages = [e["message"] for e in entries]
    assert messages == [
        f"interval of 1.grid_voltage set: applied (by {hass_admin_user.name})",
        f"{loop_change}: evaluating (by the optimization loop)",
        f"{loop_change}: kept (by the optimization loop)",
    ]
    assert entries[0]["name"] == demo_entry.title
    assert entries[0]["entity_id"] == entity_id
    assert entries[0]["context_user_id"] == hass_admin_user.id
    assert await hass.config_entries.async_unload(demo_entry.entry_id)
    await hass.async_block_till_done()


def test_describe_names_who_did_it() -> None:
    """A call without a user (an automation) is described without a name."""
    assert (
        describe({"action": "reset_learning", "target": "unit 1", "outcome": "applied"})
        == "learning of unit 1 reset: applied"
    )
    assert describe(
        {
            "action": "refresh",
            "target": "1.power",
            "outcome": "applied",
            "actor": "user",
            "user_id": "abc",
        }
    ).endswith("(by abc)")
