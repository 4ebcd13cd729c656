"""Optimization control services: steer the loop, pin intervals, reset, read now.

Registered once in ``async_setup`` (through ``services.async_setup_services``).
Services that change anything need an admin user (others get ``Unauthorized``);
``get_optimization_statistics`` and ``refresh`` (which changes nothing, it reads)
are open to every user, and so is a dry run of ``run_optimization``. Every call but
the statistics goes to the connection's audit log with the HA user's id and name
(the statistics are read as often as an automation likes: logging each read would
push real changes out of the bounded log).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv, entity_registry as er
import voluptuous as vol

from .const import DOMAIN
from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusData
from .descriptions import platform_for
from .engine.audit import Actor, Outcome
from .engine.errors import AdaptiveModbusError
from .entity import register_unique_id
from .optimization import (
    ACTION_REFRESH,
    ACTION_RESET_LEARNING,
    ACTION_SET_REGISTER_INTERVAL,
    OptimizerLike,
    async_actor,
    async_require_admin,
    audit_dict,
    call_context,
)
from .service_targets import (
    ATTR_CONFIG_ENTRY_ID,
    entry_of_entity,
    invalid,
    loaded_entries,
    loaded_entry,
    unit_of_device,
)

SERVICE_RUN_OPTIMIZATION = "run_optimization"
SERVICE_SET_STRATEGY_PARAMETERS = "set_strategy_parameters"
SERVICE_GET_OPTIMIZATION_STATISTICS = "get_optimization_statistics"
SERVICE_ROLLBACK_OPTIMIZATION = "rollback_optimization"
SERVICE_RESET_LEARNING = "reset_learning"
SERVICE_SET_REGISTER_INTERVAL = "set_register_interval"
SERVICE_REFRESH = "refresh"
SERVICE_APPROVE_OPTIMIZATION = "approve_optimization"

ATTR_MODE = "mode"
ATTR_STRATEGY = "strategy"
ATTR_DRY_RUN = "dry_run"
ATTR_PARAMETERS = "parameters"
ATTR_AUDIT_ID = "audit_id"
ATTR_AUDIT_ENTRIES = "audit_entries"
ATTR_INTERVAL = "interval"
ATTR_MIN_INTERVAL = "min_interval"
ATTR_MAX_INTERVAL = "max_interval"
ATTR_UNPIN = "unpin"
ATTR_PROPOSAL_ID = "proposal_id"

MODES = ("quick", "full")
STRATEGIES = ("interval", "cluster", "pattern")
DEFAULT_AUDIT_ENTRIES = 20
MIN_PIN = 0.5  # s
MAX_PIN = 86400.0  # s: a day

_INTERVAL = vol.All(vol.Coerce(float), vol.Range(min=MIN_PIN, max=MAX_PIN))
_ENTRY: dict[vol.Marker, Any] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}

RUN_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Optional(ATTR_MODE, default="quick"): vol.In(MODES),
        vol.Optional(ATTR_STRATEGY): vol.In(STRATEGIES),
        vol.Optional(ATTR_DRY_RUN, default=False): cv.boolean,
    }
)
SET_STRATEGY_PARAMETERS_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Required(ATTR_STRATEGY): vol.In(STRATEGIES),
        vol.Required(ATTR_PARAMETERS): vol.All(dict, vol.Length(min=1)),
    }
)
STATISTICS_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Optional(ATTR_AUDIT_ENTRIES, default=DEFAULT_AUDIT_ENTRIES): vol.All(
            vol.Coerce(int), vol.Range(min=0, max=500)
        ),
    }
)
ROLLBACK_SCHEMA = vol.Schema(
    {**_ENTRY, vol.Optional(ATTR_AUDIT_ID): vol.All(vol.Coerce(int), vol.Range(min=1))}
)
RESET_LEARNING_SCHEMA = vol.Schema(
    {
        **_ENTRY,
        vol.Optional(ATTR_DEVICE_ID): cv.string,
        vol.Optional(ATTR_ENTITY_ID): cv.entity_id,
    }
)
SET_REGISTER_INTERVAL_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(ATTR_INTERVAL): _INTERVAL,
        vol.Optional(ATTR_MIN_INTERVAL): _INTERVAL,
        vol.Optional(ATTR_MAX_INTERVAL): _INTERVAL,
        vol.Optional(ATTR_UNPIN, default=False): cv.boolean,
    }
)
APPROVE_SCHEMA = vol.Schema(
    {**_ENTRY, vol.Required(ATTR_PROPOSAL_ID): vol.All(cv.string, vol.Length(min=1))}
)
REFRESH_SCHEMA = vol.Schema({vol.Required(ATTR_ENTITY_ID): cv.entity_ids})

type Handler = Callable[[ServiceCall, Actor], Awaitable[ServiceResponse]]


# -- targets -----------------------------------------------------------------


def _one_entry(hass: HomeAssistant, call: ServiceCall) -> AdaptiveModbusConfigEntry:
    """Return the connection a call names, or the only one loaded."""
    if ATTR_CONFIG_ENTRY_ID in call.data:
        return loaded_entry(hass, call.data[ATTR_CONFIG_ENTRY_ID])
    loaded = loaded_entries(hass)
    if not loaded:
        raise invalid("no_connections")
    if len(loaded) > 1:
        raise invalid("connection_needed", service=call.service)
    return loaded[0]


def _registers(
    hass: HomeAssistant, entity_ids: Iterable[str]
) -> list[tuple[str, AdaptiveModbusConfigEntry, str]]:
    """Return ``(entity_id, entry, register uid)`` of register entities."""
    found = []
    for entity_id in entity_ids:
        entry, uid = entry_of_entity(hass, entity_id)
        if uid is None:
            raise invalid("entity_not_a_register", entity=entity_id)
        found.append((entity_id, entry, uid))
    return found


def register_entity_id(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry, uid: str
) -> str | None:
    """Return the entity id of a register (None when it has no entity)."""
    unit_id, definition = entry.runtime_data.hub.definitions[uid]
    return er.async_get(hass).async_get_entity_id(
        platform_for(definition),
        DOMAIN,
        register_unique_id(entry.entry_id, unit_id, definition.key),
    )


def _optimizer(entry: AdaptiveModbusConfigEntry) -> OptimizerLike:
    optimizer = entry.runtime_data.optimizer
    if optimizer is None:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="optimizer_unavailable",
            translation_placeholders={"title": entry.title},
        )
    return optimizer


def _refused(err: Exception, **placeholders: str) -> ServiceValidationError:
    """Return the error of a call the loop or engine refused (why, which service)."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key="optimization_refused",
        translation_placeholders={**placeholders, "error": str(err)},
    )


async def _async_changed(data: AdaptiveModbusData) -> None:
    """After a change: wake at the new due times and save at once (audit included)."""
    data.coordinator.async_reschedule()
    await data.store.async_save()


# -- permissions and audit ---------------------------------------------------


def _wrap(
    hass: HomeAssistant,
    handler: Handler,
    *,
    admin: Callable[[ServiceCall], bool],
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    """Check the user, bind the call's context for the audit events, run."""

    async def _async_handle(call: ServiceCall) -> ServiceResponse:
        if admin(call):
            await async_require_admin(hass, call.context)
        actor = await async_actor(hass, call.context)
        with call_context(call.context):
            return await handler(call, actor)

    return _async_handle


# -- the services ------------------------------------------------------------


async def _async_run(call: ServiceCall, actor: Actor) -> ServiceResponse:
    hass = call.hass
    entry = _one_entry(hass, call)
    optimizer = _optimizer(entry)
    try:
        result = await optimizer.run(
            call.data[ATTR_MODE],
            strategy=call.data.get(ATTR_STRATEGY),
            dry_run=call.data[ATTR_DRY_RUN],
            actor=actor,
            run_in_executor=hass.async_add_executor_job,
        )
    except (AdaptiveModbusError, ValueError) as err:
        raise _refused(err, service=SERVICE_RUN_OPTIMIZATION) from err
    if not call.data[ATTR_DRY_RUN]:
        await _async_changed(entry.runtime_data)
    response = result.as_dict() if hasattr(result, "as_dict") else dict(result)
    return {"config_entry_id": entry.entry_id, **response}


async def _async_set_strategy_parameters(
    call: ServiceCall, actor: Actor
) -> ServiceResponse:
    entry = _one_entry(call.hass, call)
    optimizer = _optimizer(entry)
    strategy = call.data[ATTR_STRATEGY]
    try:
        change = optimizer.set_strategy_parameters(
            strategy, call.data[ATTR_PARAMETERS], actor=actor
        )
    except (AdaptiveModbusError, ValueError, KeyError) as err:
        raise _refused(err, service=SERVICE_SET_STRATEGY_PARAMETERS) from err
    await _async_changed(entry.runtime_data)
    return {
        "config_entry_id": entry.entry_id,
        "strategy": strategy,
        "before": change["before"],
        "after": change["after"],
    }


async def _async_statistics(call: ServiceCall, actor: Actor) -> ServiceResponse:
    hass = call.hass
    entry = _one_entry(hass, call)
    data = entry.runtime_data
    optimizer = data.optimizer
    snapshot = data.coordinator.engine.snapshot()
    pins: dict[str, Any] = {}
    for uid, register in snapshot.registers.items():
        if register.pinned is not None:
            pins[uid] = {
                "entity_id": register_entity_id(hass, entry, uid),
                **register.pinned.to_dict(),
                "effective_interval": register.effective_interval,
            }
    count = call.data[ATTR_AUDIT_ENTRIES]
    return {
        "config_entry_id": entry.entry_id,
        "automatic": None if optimizer is None else optimizer.enabled,
        "goal": None if optimizer is None else str(optimizer.goal),
        # the loop's figures; its audit tail is the one below (audit_entries long)
        "optimizer": None
        if optimizer is None
        else {k: v for k, v in optimizer.statistics().items() if k != "audit"},
        "saving_vs_fixed": round(snapshot.saving_vs_fixed, 1),
        "requests_per_minute": round(snapshot.requests_per_minute, 2),
        "pins": pins,
        "audit": [audit_dict(e) for e in data.audit.tail(count)],
    }


async def _async_rollback(call: ServiceCall, actor: Actor) -> ServiceResponse:
    entry = _one_entry(call.hass, call)
    optimizer = _optimizer(entry)
    audit_id = call.data.get(ATTR_AUDIT_ID)
    if audit_id is not None and entry.runtime_data.audit.get(audit_id) is None:
        raise invalid("unknown_audit_entry", audit_id=str(audit_id))
    try:
        result = optimizer.rollback(actor=actor, audit_id=audit_id)
    except (AdaptiveModbusError, ValueError, KeyError) as err:
        raise _refused(err, service=SERVICE_ROLLBACK_OPTIMIZATION) from err
    await _async_changed(entry.runtime_data)
    response = result.as_dict() if hasattr(result, "as_dict") else result
    return {"config_entry_id": entry.entry_id, "rollback": response}


async def _async_approve(call: ServiceCall, actor: Actor) -> ServiceResponse:
    entry = _one_entry(call.hass, call)
    optimizer = _optimizer(entry)
    try:
        result = optimizer.approve(call.data[ATTR_PROPOSAL_ID], actor=actor)
    except (AdaptiveModbusError, ValueError, KeyError) as err:
        raise _refused(err, service=SERVICE_APPROVE_OPTIMIZATION) from err
    await _async_changed(entry.runtime_data)
    return {"config_entry_id": entry.entry_id, "approved": result}


async def _async_reset_learning(call: ServiceCall, actor: Actor) -> ServiceResponse:
    hass = call.hass
    uid: str | None = None
    unit: int | None = None
    entity_id: str | None = call.data.get(ATTR_ENTITY_ID)
    if entity_id is not None:
        ((_, entry, uid),) = _registers(hass, [entity_id])
    elif ATTR_DEVICE_ID in call.data:
        entry, unit = unit_of_device(hass, call.data[ATTR_DEVICE_ID])
    else:
        entry = _one_entry(hass, call)
    data = entry.runtime_data
    engine = data.coordinator.engine
    before = engine.snapshot()
    in_scope = [
        r
        for r in before.registers.values()
        if (uid is None or r.uid == uid) and (unit is None or r.unit_id == unit)
    ]
    target = (
        uid if uid is not None else "connection" if unit is None else f"unit {unit}"
    )
    engine.reset_learning(unit_id=unit, uid=uid)
    after = engine.snapshot()
    data.audit.add(
        actor=actor,
        action=ACTION_RESET_LEARNING,
        target=target,
        before={
            "registers": len(in_scope),
            "holes": sum(len(a) for a in before.holes.values()),
            "intervals": {r.uid: r.interval for r in in_scope},
        },
        after={"holes": sum(len(a) for a in after.holes.values())},
        outcome=Outcome.APPLIED,
        extra={} if entity_id is None else {"entity_id": entity_id},
    )
    await _async_changed(data)
    return {
        "config_entry_id": entry.entry_id,
        "target": target,
        "registers": len(in_scope),
    }


def _pin_arguments(call: ServiceCall) -> dict[str, float]:
    """Return the pin asked for (empty to unpin); refuse mixed or empty calls."""
    pin = {
        key: call.data[key]
        for key in (ATTR_INTERVAL, ATTR_MIN_INTERVAL, ATTR_MAX_INTERVAL)
        if key in call.data
    }
    if call.data[ATTR_UNPIN]:
        if pin:
            raise invalid("unpin_with_interval", arguments=", ".join(pin))
        return pin
    if not pin:
        raise invalid("interval_needed")
    if ATTR_INTERVAL in pin and len(pin) > 1:
        raise invalid("interval_or_bounds")
    low, high = pin.get(ATTR_MIN_INTERVAL), pin.get(ATTR_MAX_INTERVAL)
    if low is not None and high is not None and low > high:
        raise invalid("bounds_order", min_interval=f"{low:g}", max_interval=f"{high:g}")
    return pin


async def _async_set_register_interval(
    call: ServiceCall, actor: Actor
) -> ServiceResponse:
    hass = call.hass
    pin = _pin_arguments(call)
    targets = _registers(hass, call.data[ATTR_ENTITY_ID])
    changed: dict[str, AdaptiveModbusData] = {}
    results: dict[str, Any] = {}
    for entity_id, entry, uid in targets:
        data = entry.runtime_data
        engine = data.coordinator.engine
        register = engine.snapshot().registers[uid]
        before = None if register.pinned is None else register.pinned.to_dict()
        try:
            after_pin = engine.pin_interval(uid, **pin) if pin else None
        except AdaptiveModbusError as err:
            raise invalid("invalid_pin", entity=entity_id, error=str(err)) from err
        if after_pin is None:
            engine.unpin(uid)
        after = None if after_pin is None else after_pin.to_dict()
        entry_audit = data.audit.add(
            actor=actor,
            action=ACTION_SET_REGISTER_INTERVAL,
            target=uid,
            before={"pin": before, "interval": register.interval},
            after={"pin": after},
            outcome=Outcome.APPLIED,
            extra={"entity_id": entity_id},
        )
        results[entity_id] = {
            "before": before,
            "after": after,
            "audit_id": entry_audit.id,
        }
        changed[entry.entry_id] = data
    for data in changed.values():
        await _async_changed(data)
    return {"registers": results}


async def _async_refresh(call: ServiceCall, actor: Actor) -> ServiceResponse:
    hass = call.hass
    targets = _registers(hass, call.data[ATTR_ENTITY_ID])
    by_entry: dict[str, tuple[AdaptiveModbusConfigEntry, list[tuple[str, str]]]] = {}
    for entity_id, entry, uid in targets:
        by_entry.setdefault(entry.entry_id, (entry, []))[1].append((entity_id, uid))
    values: dict[str, Any] = {}
    for entry, items in by_entry.values():
        data = entry.runtime_data
        uids = [uid for _, uid in items]
        try:
            await data.coordinator.async_read_now(uids)
        except AdaptiveModbusError as err:  # a register the engine no longer has
            raise invalid("unknown_target", target=str(err)) from err
        snapshot = data.coordinator.engine.snapshot()
        for entity_id, uid in items:
            register = snapshot.registers[uid]
            values[entity_id] = {
                "value": register.value,
                "last_read": register.last_read,
            }
        data.audit.add(
            actor=actor,
            action=ACTION_REFRESH,
            target=", ".join(uids),
            after={uid: snapshot.registers[uid].value for uid in uids},
            outcome=Outcome.APPLIED,
            extra={"entity_id": items[0][0]} if len(items) == 1 else None,
        )
        data.store.async_schedule_save()
    return {"registers": values}


def _always(_call: ServiceCall) -> bool:
    return True


def _never(_call: ServiceCall) -> bool:
    return False


def _unless_dry_run(call: ServiceCall) -> bool:
    return not call.data.get(ATTR_DRY_RUN, False)


def async_setup_optimization_services(hass: HomeAssistant) -> None:
    """Register the optimization control services (from ``async_setup``)."""
    services: tuple[
        tuple[
            str, Handler, vol.Schema, Callable[[ServiceCall], bool], SupportsResponse
        ],
        ...,
    ] = (
        (
            SERVICE_RUN_OPTIMIZATION,
            _async_run,
            RUN_SCHEMA,
            _unless_dry_run,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_SET_STRATEGY_PARAMETERS,
            _async_set_strategy_parameters,
            SET_STRATEGY_PARAMETERS_SCHEMA,
            _always,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_GET_OPTIMIZATION_STATISTICS,
            _async_statistics,
            STATISTICS_SCHEMA,
            _never,
            SupportsResponse.ONLY,
        ),
        (
            SERVICE_ROLLBACK_OPTIMIZATION,
            _async_rollback,
            ROLLBACK_SCHEMA,
            _always,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_APPROVE_OPTIMIZATION,
            _async_approve,
            APPROVE_SCHEMA,
            _always,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_RESET_LEARNING,
            _async_reset_learning,
            RESET_LEARNING_SCHEMA,
            _always,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_SET_REGISTER_INTERVAL,
            _async_set_register_interval,
            SET_REGISTER_INTERVAL_SCHEMA,
            _always,
            SupportsResponse.OPTIONAL,
        ),
        (
            SERVICE_REFRESH,
            _async_refresh,
            REFRESH_SCHEMA,
            _never,
            SupportsResponse.OPTIONAL,
        ),
    )
    for name, handler, schema, admin, supports in services:
        hass.services.async_register(
            DOMAIN,
            name,
            _wrap(hass, handler, admin=admin),
            schema=schema,
            supports_response=supports,
        )
