"""Optimization control services on the demo connection, through HA's service API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
import voluptuous as vol

from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.audit import ActorKind
from custom_components.adaptive_modbus.engine.intervals import IntervalPin
from custom_components.adaptive_modbus.entity import unit_identifier
from custom_components.adaptive_modbus.optimization_services import (
    SERVICE_APPROVE_OPTIMIZATION,
    SERVICE_GET_OPTIMIZATION_STATISTICS,
    SERVICE_REFRESH,
    SERVICE_RESET_LEARNING,
    SERVICE_ROLLBACK_OPTIMIZATION,
    SERVICE_RUN_OPTIMIZATION,
    SERVICE_SET_REGISTER_INTERVAL,
    SERVICE_SET_STRATEGY_PARAMETERS,
)

from .helpers import call_service, sensor_entity, set_up_polled

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

SUPPLY = "1.supply_temperature"
OUTDOOR = "1.outdoor_temperature"


@pytest.fixture(name="demo")
async def demo_fixture(
    hass: HomeAssistant, vtime: VirtualTime, demo_entry: MockConfigEntry
) -> MockConfigEntry:
    """Provide the demo connection after ten minutes of polling in virtual time.

    The loop is off: these tests are about the services, not the loop's entries.
    """
    return await set_up_polled(hass, vtime, demo_entry, 600, optimizer_off=True)


def _register(entry: MockConfigEntry, uid: str) -> Any:
    return entry.runtime_data.coordinator.engine.snapshot().registers[uid]


async def test_pin_and_unpin_an_interval(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo: MockConfigEntry,
    hass_admin_user: MockUser,
) -> None:
    """An admin pins a register's interval; the engine keeps it; unpinning frees it."""
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    assert _register(demo, OUTDOOR).effective_interval > 8  # drifts slowly
    response = await call_service(
        hass,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": outdoor, "interval": 4},
        hass_admin_user,
    )
    result = response["registers"][outdoor]
    assert result["before"] is None
    assert result["after"] == {
        "interval": 4.0,
        "min_interval": None,
        "max_interval": None,
    }
    assert _register(demo, OUTDOOR).pinned == IntervalPin(interval=4)
    reads = _register(demo, OUTDOOR).reads
    await vtime.run(demo.runtime_data.coordinator, 120)
    register = _register(demo, OUTDOOR)
    assert register.effective_interval == 4
    assert register.reads - reads >= 25  # every 4 s for two minutes
    audit = demo.runtime_data.audit.get(result["audit_id"])
    assert audit is not None
    assert audit.action == "set_register_interval"
    assert audit.target == OUTDOOR
    assert audit.actor.kind == ActorKind.USER
    assert audit.actor.user_id == hass_admin_user.id
    assert audit.actor.name == hass_admin_user.name
    assert audit.extra["entity_id"] == outdoor

    response = await call_service(
        hass,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": [outdoor], "unpin": True},
        hass_admin_user,
    )
    assert response["registers"][outdoor]["before"]["interval"] == 4.0
    assert response["registers"][outdoor]["after"] is None
    assert _register(demo, OUTDOOR).pinned is None
    await vtime.run(demo.runtime_data.coordinator, 300)
    assert _register(demo, OUTDOOR).effective_interval > 4


async def test_pin_bounds_on_several_entities(
    hass: HomeAssistant, vtime: VirtualTime, demo: MockConfigEntry
) -> None:
    """Bounds pinned on several registers at once hold while polling goes on."""
    supply = sensor_entity(hass, demo, "supply_temperature")
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    response = await call_service(
        hass,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": [supply, outdoor], "min_interval": 20, "max_interval": 30},
    )
    assert set(response["registers"]) == {supply, outdoor}
    await vtime.run(demo.runtime_data.coordinator, 300)
    for uid in (SUPPLY, OUTDOOR):
        assert 20 <= _register(demo, uid).effective_interval <= 30
    # a call without a user (an automation) is audited as such
    last = demo.runtime_data.audit.tail(1)[0]
    assert last.actor.user_id is None
    assert last.actor.kind == ActorKind.USER


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "interval_needed"),
        ({"interval": 10, "min_interval": 5}, "interval_or_bounds"),
        ({"min_interval": 50, "max_interval": 20}, "bounds_order"),
        ({"unpin": True, "interval": 10}, "unpin_with_interval"),
    ],
)
async def test_bad_interval_arguments_are_named(
    hass: HomeAssistant, demo: MockConfigEntry, data: dict[str, Any], key: str
) -> None:
    """Arguments that do not make one pin are refused with a translated error."""
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass, SERVICE_SET_REGISTER_INTERVAL, {"entity_id": outdoor, **data}
        )
    assert err.value.translation_key == key
    assert _register(demo, OUTDOOR).pinned is None
    assert len(demo.runtime_data.audit) == 0


async def test_targets_that_are_not_registers_are_named(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """A connection figure or an unknown entity is not a register: named in the error."""
    stats = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{demo.entry_id}_hub_requests_per_minute"
    )
    assert stats is not None
    with pytest.raises(ServiceValidationError) as err:
        await call_service(hass, SERVICE_REFRESH, {"entity_id": stats})
    assert err.value.translation_key == "entity_not_a_register"
    assert err.value.translation_placeholders == {"entity": stats}
    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass,
            SERVICE_SET_REGISTER_INTERVAL,
            {"entity_id": "sensor.x", "interval": 9},
        )
    assert err.value.translation_key == "unknown_entity"


@pytest.mark.parametrize(
    ("service", "data"),
    [
        (SERVICE_SET_REGISTER_INTERVAL, {"interval": 10}),  # no entity
        (SERVICE_SET_REGISTER_INTERVAL, {"entity_id": "sensor.a", "interval": 0}),
        (SERVICE_SET_REGISTER_INTERVAL, {"entity_id": "sensor.a", "interval": "x"}),
        (SERVICE_SET_REGISTER_INTERVAL, {"entity_id": "sensor.a", "pin": 3}),
        (SERVICE_RUN_OPTIMIZATION, {"mode": "medium"}),
        (SERVICE_RUN_OPTIMIZATION, {"strategy": "magic"}),
        (SERVICE_SET_STRATEGY_PARAMETERS, {"strategy": "interval"}),
        (SERVICE_SET_STRATEGY_PARAMETERS, {"strategy": "interval", "parameters": {}}),
        (SERVICE_ROLLBACK_OPTIMIZATION, {"audit_id": 0}),
        (SERVICE_GET_OPTIMIZATION_STATISTICS, {"audit_entries": 501}),
        (SERVICE_RESET_LEARNING, {"entity_id": "not an entity"}),
        (SERVICE_REFRESH, {}),
        (SERVICE_APPROVE_OPTIMIZATION, {}),
    ],
)
async def test_schema_errors(
    hass: HomeAssistant, demo: MockConfigEntry, service: str, data: dict[str, Any]
) -> None:
    """Arguments of the wrong shape are refused by the schema, naming the argument."""
    with pytest.raises(vol.Invalid):
        await call_service(hass, service, data)


CHANGING = [
    (SERVICE_RUN_OPTIMIZATION, {"mode": "quick"}),
    (SERVICE_APPROVE_OPTIMIZATION, {"proposal_id": "interval-1"}),
    (SERVICE_SET_STRATEGY_PARAMETERS, {"strategy": "interval", "parameters": {"a": 1}}),
    (SERVICE_ROLLBACK_OPTIMIZATION, {}),
    (SERVICE_RESET_LEARNING, {}),
    (SERVICE_SET_REGISTER_INTERVAL, {"interval": 10}),
]


@pytest.mark.parametrize(("service", "data"), CHANGING)
async def test_a_non_admin_may_not_change_anything(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_read_only_user: MockUser,
    service: str,
    data: dict[str, Any],
) -> None:
    """Every changing service refuses a non-admin user, and nothing is audited."""
    if service == SERVICE_SET_REGISTER_INTERVAL:
        data = {**data, "entity_id": sensor_entity(hass, demo, "outdoor_temperature")}
    snapshot = demo.runtime_data.coordinator.engine.snapshot()
    with pytest.raises(Unauthorized):
        await call_service(hass, service, data, hass_read_only_user)
    assert len(demo.runtime_data.audit) == 0
    after = demo.runtime_data.coordinator.engine.snapshot()
    assert after.registers[OUTDOOR].pinned is None
    assert after.registers[OUTDOOR].interval == snapshot.registers[OUTDOOR].interval


async def test_read_only_services_are_open_and_refresh_is_audited(
    hass: HomeAssistant,
    demo: MockConfigEntry,
    hass_read_only_user: MockUser,
) -> None:
    """A non-admin may read statistics and refresh entities; the refresh is audited."""
    supply = sensor_entity(hass, demo, "supply_temperature")
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    before = _register(demo, SUPPLY).reads
    response = await call_service(
        hass, SERVICE_REFRESH, {"entity_id": [supply, outdoor]}, hass_read_only_user
    )
    register = _register(demo, SUPPLY)
    assert register.reads == before + 1
    assert response["registers"][supply] == {
        "value": register.value,
        "last_read": pytest.approx(register.last_read),
    }
    assert set(response["registers"]) == {supply, outdoor}
    (entry,) = demo.runtime_data.audit.tail(5)
    assert entry.action == "refresh"
    assert entry.actor.user_id == hass_read_only_user.id
    assert entry.target == f"{SUPPLY}, {OUTDOOR}"
    stats = await call_service(
        hass, SERVICE_GET_OPTIMIZATION_STATISTICS, {}, hass_read_only_user
    )
    assert stats["config_entry_id"] == demo.entry_id
    assert [e["id"] for e in stats["audit"]] == [entry.id]
    assert stats["audit"][0]["actor"]["user_id"] == hass_read_only_user.id
    assert stats["pins"] == {}
    assert stats["saving_vs_fixed"] > 0
    assert len(demo.runtime_data.audit) == 1  # reading statistics is not audited


async def test_statistics_list_pins_and_the_audit_tail(
    hass: HomeAssistant, demo: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    """Pins appear with their entity and the interval in force; the tail is bounded."""
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    for interval in (7, 8, 9):
        await call_service(
            hass,
            SERVICE_SET_REGISTER_INTERVAL,
            {"entity_id": outdoor, "interval": interval},
            hass_admin_user,
        )
    stats = await call_service(
        hass,
        SERVICE_GET_OPTIMIZATION_STATISTICS,
        {"config_entry_id": demo.entry_id, "audit_entries": 2},
    )
    assert stats["pins"] == {
        OUTDOOR: {
            "entity_id": outdoor,
            "interval": 9.0,
            "min_interval": None,
            "max_interval": None,
            "effective_interval": 9.0,
        }
    }
    assert [e["after"]["pin"]["interval"] for e in stats["audit"]] == [8.0, 9.0]
    assert stats["audit"][0]["actor"]["name"] == hass_admin_user.name


async def test_reset_learning_of_a_register_a_device_and_the_connection(
    hass: HomeAssistant, demo: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    """A reset forgets what was learned in its scope only, and is audited."""
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    assert _register(demo, OUTDOOR).interval > 2
    assert _register(demo, SUPPLY).interval > 2
    response = await call_service(
        hass, SERVICE_RESET_LEARNING, {"entity_id": outdoor}, hass_admin_user
    )
    assert response == {
        "config_entry_id": demo.entry_id,
        "target": OUTDOOR,
        "registers": 1,
    }
    assert _register(demo, OUTDOOR).interval == 2  # back to the minimum
    assert _register(demo, SUPPLY).interval > 2  # out of scope
    entry = demo.runtime_data.audit.tail(1)[0]
    assert (entry.action, entry.target) == ("reset_learning", OUTDOOR)
    assert entry.actor.user_id == hass_admin_user.id
    assert entry.before["intervals"][OUTDOOR] > 2

    device = dr.async_get(hass).async_get_device(
        identifiers={unit_identifier(demo.entry_id, 1)}
    )
    assert device is not None
    response = await call_service(
        hass, SERVICE_RESET_LEARNING, {"device_id": device.id}, hass_admin_user
    )
    registers = demo.runtime_data.coordinator.engine.snapshot().registers
    assert response["target"] == "unit 1"
    assert response["registers"] == len(registers)
    assert all(r.interval == 2 for r in registers.values())
    # the demo's refused address is forgotten with the unit's learning
    assert demo.runtime_data.audit.tail(1)[0].before["holes"] == 1
    response = await call_service(hass, SERVICE_RESET_LEARNING, {}, hass_admin_user)
    assert response["target"] == "connection"


async def test_run_without_the_loop_says_so(
    hass: HomeAssistant, demo: MockConfigEntry
) -> None:
    """Without an optimization loop, the loop's services raise a translated error."""
    optimizer, demo.runtime_data.optimizer = demo.runtime_data.optimizer, None
    try:
        with pytest.raises(HomeAssistantError) as err:
            await call_service(hass, SERVICE_RUN_OPTIMIZATION, {"dry_run": True})
    finally:
        demo.runtime_data.optimizer = optimizer
    assert err.value.translation_key == "optimizer_unavailable"
    assert err.value.translation_placeholders == {"title": demo.title}


async def test_reload_keeps_pins_and_the_audit_log(
    hass: HomeAssistant,
    vtime: VirtualTime,
    demo: MockConfigEntry,
    hass_admin_user: MockUser,
) -> None:
    """Pins and audit entries survive an entry reload; audit ids go on increasing."""
    outdoor = sensor_entity(hass, demo, "outdoor_temperature")
    await call_service(
        hass,
        SERVICE_SET_REGISTER_INTERVAL,
        {"entity_id": outdoor, "min_interval": 30},
        hass_admin_user,
    )
    await call_service(hass, SERVICE_REFRESH, {"entity_id": outdoor}, hass_admin_user)
    entries = list(demo.runtime_data.audit)
    assert await hass.config_entries.async_reload(demo.entry_id)
    await hass.async_block_till_done()
    data = demo.runtime_data
    assert list(data.audit) == entries
    assert _register(demo, OUTDOOR).pinned == IntervalPin(min_interval=30)
    await vtime.run(data.coordinator, 300)
    assert _register(demo, OUTDOOR).effective_interval >= 30
    await call_service(hass, SERVICE_REFRESH, {"entity_id": outdoor}, hass_admin_user)
    assert data.audit.tail(1)[0].id == entries[-1].id + 1


async def test_two_connections_need_a_target(
    hass: HomeAssistant, demo: MockConfigEntry, hass_admin_user: MockUser
) -> None:
    """With two connections, services for a connection ask which one."""
    other = MockConfigEntry(
        domain=DOMAIN,
        title="Second demo",
        unique_id="demo:43",
        data={**demo.data, "seed": 43},
        options=dict(demo.options),
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await call_service(hass, SERVICE_GET_OPTIMIZATION_STATISTICS, {})
    assert err.value.translation_key == "connection_needed"
    assert err.value.translation_placeholders == {
        "service": SERVICE_GET_OPTIMIZATION_STATISTICS
    }
    stats = await call_service(
        hass, SERVICE_GET_OPTIMIZATION_STATISTICS, {"config_entry_id": other.entry_id}
    )
    assert stats["config_entry_id"] == other.entry_id
    with pytest.raises(ServiceValidationError) as err:
        await call_service(
            hass,
            SERVICE_RESET_LEARNING,
            {"config_entry_id": "nope"},
            hass_admin_user,
        )
    assert err.value.translation_key == "entry_not_loaded"
    assert await hass.config_entries.async_unload(other.entry_id)
