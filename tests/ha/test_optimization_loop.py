"""The optimization loop in HA: entities, run, rollback, parameters, reload mid-evaluation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from homeassistant.auth.const import GROUP_ID_USER
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import ServiceValidationError, Unauthorized
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_UNIT_ID,
    CONNECTION_TCP,
    DOMAIN,
    PROFILE_CUSTOM,
)
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.optimization_services import (
    SERVICE_APPROVE_OPTIMIZATION,
    SERVICE_GET_OPTIMIZATION_STATISTICS,
    SERVICE_ROLLBACK_OPTIMIZATION,
    SERVICE_RUN_OPTIMIZATION,
    SERVICE_SET_STRATEGY_PARAMETERS,
)

from .helpers import FAST_OPTIONS, call_service, set_up_polled

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


@pytest.fixture(name="demo")
async def demo_fixture(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection after ten minutes of polling, the loop switched off.

    Off, so the tests decide when a cycle runs.
    """
    return await set_up_polled(hass, vtime, demo_entry, 600, optimizer_off=True)


FLAT_MAP = "registers:\n" + "".join(
    f"  - name: Flat {i}\n    table: input\n    address: {i}\n"
    "    data_type: uint16\n    tolerance: 1\n"
    for i in range(10)
)


@pytest.fixture(name="flat")
async def flat_fixture(
    hass: HomeAssistant, vtime: VirtualTime, table_device: Any
) -> AsyncIterator[MockConfigEntry]:
    """Provide a device whose ten registers hold still, polled for 45 minutes."""
    device = table_device()
    for address in range(10):
        device.words[1][Table.INPUT][address] = 100 + address
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=(1,))
    await server.start()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Flat device",
        unique_id=f"tcp:127.0.0.1:{server.port}",
        data={
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: server.port,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: 1,
                    CONF_PROFILE: PROFILE_CUSTOM,
                    CONF_REGISTER_MAP: FLAT_MAP,
                }
            ],
        },
        options=dict(FAST_OPTIONS),
    )
    entry.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        optimizer = entry.runtime_data.optimizer
        assert optimizer is not None
        optimizer.enabled = False
        # registers quiet for 20 minutes count as quiet (the default asks a day)
        optimizer.set_parameters_quietly("interval", {"quiet_for": 1200.0})
        await vtime.run(entry.runtime_data.coordinator, 45 * 60)
        yield entry
        if entry.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()
    finally:
        await server.stop()


def _entity_id(
    hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str
) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.entry_id}_hub_{key}"
    )
    assert entity_id is not None
    return entity_id


async def test_switch_and_select_steer_the_loop(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
) -> None:
    """The switch turns the loop on and off, the select sets its goal; both audited."""
    optimizer = demo.runtime_data.optimizer
    assert optimizer is not None
    switch = _entity_id(hass, demo, "switch", "automatic_optimization")
    select = _entity_id(hass, demo, "select", "optimization_goal")
    admin = Context(user_id=hass_admin_user.id)
    await hass.services.async_call(
        "switch", "turn_on", {ATTR_ENTITY_ID: switch}, blocking=True, context=admin
    )
    assert optimizer.enabled
    assert hass.states.get(switch).state == STATE_ON
    await hass.services.async_call(
        "select",
        "select_option",
        {ATTR_ENTITY_ID: select, "option": "min_bus_load"},
        blocking=True,
        context=admin,
    )
    assert str(optimizer.goal) == "min_bus_load"
    state = hass.states.get(select)
    assert state.state == "min_bus_load"
    assert state.attributes["options"] == ["min_bus_load", "balanced", "freshest"]
    enabled, goal = demo.runtime_data.audit.tail(2)
    assert (enabled.action, enabled.before, enabled.after) == (
        "set_enabled",
        False,
        True,
    )
    assert (goal.action, goal.after) == ("set_goal", "min_bus_load")
    assert {enabled.actor.user_id, goal.actor.user_id} == {hass_admin_user.id}
    assert goal.actor.name == hass_admin_user.name
    # a read-only user may not control entities at all (HA's own check)
    with pytest.raises(Unauthorized):
        await hass.services.async_call(
            "switch",
            "turn_off",
            {ATTR_ENTITY_ID: switch},
            blocking=True,
            context=Context(user_id=hass_read_only_user.id),
        )
    assert optimizer.enabled
    # a user who may control entities, but is no admin, may not change the loop
    user = MockUser(groups=[await hass.auth.async_get_group(GROUP_ID_USER)])
    user.add_to_hass(hass)
    entries = len(demo.runtime_data.audit)
    for service, data in (
        ("switch", {ATTR_ENTITY_ID: switch}),
        ("select", {ATTR_ENTITY_ID: select, "option": "freshest"}),
    ):
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                service,
                "turn_off" if service == "switch" else "select_option",
                data,
                blocking=True,
                context=Context(user_id=user.id),
            )
    assert optimizer.enabled
    assert str(optimizer.goal) == "min_bus_load"
    assert len(demo.runtime_data.audit) == entries
    await hass.services.async_call(
        "switch", "turn_off", {ATTR_ENTITY_ID: switch}, blocking=True, context=admin
    )
    assert not optimizer.enabled
    assert hass.states.get(switch).state == STATE_OFF


async def test_dry_run_is_open_and_changes_nothing(
    hass: HomeAssistant, flat: MockConfigEntry, hass_read_only_user: MockUser
) -> None:
    """Any user may ask what the loop would do; nothing is applied.

    The flat device, not the demo: its quiet registers always give the interval
    strategy something, where the demo's random noise sometimes gives nothing.
    """
    engine = flat.runtime_data.coordinator.engine
    tuning = engine.tuning()
    response = await call_service(
        hass,
        SERVICE_RUN_OPTIMIZATION,
        {"mode": "full", "dry_run": True},
        hass_read_only_user,
    )
    assert response["config_entry_id"] == flat.entry_id
    assert response["dry_run"] is True
    assert response["kind"] == "full"
    assert response["applied"] == []
    assert response["proposals"], (
        "45 quiet minutes give the interval strategy something"
    )
    for proposal in response["proposals"]:
        assert {"strategy", "predicted", "verdict", "reason"} <= set(proposal)
    assert engine.tuning() == tuning


async def test_run_applies_and_rollback_undoes(
    hass: HomeAssistant,
    vtime: VirtualTime,
    flat: MockConfigEntry,
    hass_admin_user: MockUser,
) -> None:
    """An admin's run applies what is predicted to pay; a rollback undoes it."""
    engine = flat.runtime_data.coordinator.engine
    before = engine.tuning()
    sensor = _entity_id(hass, flat, "sensor", "last_optimization")
    assert hass.states.get(sensor).state == "unknown"
    response = await call_service(
        hass,
        SERVICE_RUN_OPTIMIZATION,
        {"mode": "quick", "strategy": "interval"},
        hass_admin_user,
    )
    assert response["applied"], response["proposals"]
    assert engine.tuning() != before
    audit = flat.runtime_data.audit
    applied = [e for e in audit if e.outcome == "evaluating"]
    assert len(applied) == 1
    assert applied[0].actor.user_id == hass_admin_user.id
    state = hass.states.get(sensor)
    assert state.state == "evaluating"
    assert state.attributes["audit_id"] == applied[0].id
    assert state.attributes["predicted"] == applied[0].predicted
    assert state.attributes["by"] == hass_admin_user.name

    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass, SERVICE_ROLLBACK_OPTIMIZATION, {"audit_id": 999}, hass_admin_user
        )
    assert err.value.translation_key == "unknown_audit_entry"
    response = await call_service(
        hass, SERVICE_ROLLBACK_OPTIMIZATION, {}, hass_admin_user
    )
    assert response["config_entry_id"] == flat.entry_id
    assert engine.tuning() == before
    assert audit.get(applied[0].id).outcome == "rolled_back"
    assert audit.tail(1)[0].actor.user_id == hass_admin_user.id
    # nothing left to roll back: the loop says so, translated
    with pytest.raises(ServiceValidationError) as err:
        await call_service(hass, SERVICE_ROLLBACK_OPTIMIZATION, {}, hass_admin_user)
    assert err.value.translation_key == "optimization_refused"


async def test_reload_mid_evaluation_resumes_it(
    hass: HomeAssistant,
    vtime: VirtualTime,
    flat: MockConfigEntry,
    hass_admin_user: MockUser,
) -> None:
    """A change under evaluation survives an entry reload: in force, still evaluated."""
    await call_service(
        hass,
        SERVICE_RUN_OPTIMIZATION,
        {"mode": "quick", "strategy": "interval"},
        hass_admin_user,
    )
    optimizer = flat.runtime_data.optimizer
    assert optimizer is not None
    (evaluation,) = optimizer.statistics()["pending_evaluations"]
    await vtime.run(flat.runtime_data.coordinator, 120)  # mid-evaluation
    tuning = flat.runtime_data.coordinator.engine.tuning()
    audit_id = evaluation["audit_id"]
    assert await hass.config_entries.async_reload(flat.entry_id)
    await hass.async_block_till_done()
    data = flat.runtime_data
    assert data.optimizer is not optimizer  # a new loop, restored from the Store
    assert data.optimizer is not None
    assert data.coordinator.engine.tuning() == tuning
    (resumed,) = data.optimizer.statistics()["pending_evaluations"]
    assert resumed["audit_id"] == audit_id
    assert data.audit.get(audit_id).outcome == "evaluating"
    assert data.audit.get(audit_id).extra.get("resumed_at") is not None
    assert data.optimizer.enabled is False  # the switch's state came back too


async def test_strategy_parameters_before_after_and_ranges(
    hass: HomeAssistant, demo: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    """Parameters change within their ranges, with before and after; others refused."""
    response = await call_service(
        hass,
        SERVICE_SET_STRATEGY_PARAMETERS,
        {"strategy": "interval", "parameters": {"max_step": 1.5}},
        hass_admin_user,
    )
    assert response["strategy"] == "interval"
    assert response["before"]["max_step"] == 2.0
    assert response["after"]["max_step"] == 1.5
    entry = demo.runtime_data.audit.tail(1)[0]
    assert entry.action == "set_strategy_parameters"
    assert entry.actor.user_id == hass_admin_user.id
    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass,
            SERVICE_SET_STRATEGY_PARAMETERS,
            {"strategy": "interval", "parameters": {"max_step": 1000}},
            hass_admin_user,
        )
    assert err.value.translation_key == "optimization_refused"
    assert "interval.max_step" in err.value.translation_placeholders["error"]
    stats = await call_service(hass, SERVICE_GET_OPTIMIZATION_STATISTICS, {})
    assert stats["optimizer"]["strategies"]["interval"]["parameters"]["max_step"] == 1.5
    assert stats["goal"] == "balanced"
    assert stats["automatic"] is False
    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass,
            SERVICE_APPROVE_OPTIMIZATION,
            {"proposal_id": "interval-99"},
            hass_admin_user,
        )
    assert err.value.translation_key == "optimization_refused"


async def test_the_loop_runs_on_its_own_after_cycles(
    hass: HomeAssistant, vtime: VirtualTime, demo: MockConfigEntry
) -> None:
    """With automatic optimization on, the coordinator's ticks start a quick cycle."""
    optimizer = demo.runtime_data.optimizer
    assert optimizer is not None
    assert optimizer.statistics()["last_run"] is None
    optimizer.enabled = True
    await vtime.run(demo.runtime_data.coordinator, 1200)
    last_run = optimizer.statistics()["last_run"]
    assert last_run is not None
    assert last_run["kind"] in ("quick", "full")
    assert not last_run["dry_run"]
