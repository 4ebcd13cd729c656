"""Optimization control in Home Assistant: who did it, what the logbook shows.

Every change to how a connection is polled, by the optimization loop or by a user,
goes to the entry's audit log (``runtime_data.audit``, the engine's
:class:`~.engine.audit.AuditLog`). This module turns HA users into audit actors,
fires an ``adaptive_modbus_optimization`` event for every new or updated audit entry
(the logbook describes them, see :mod:`.logbook`) and runs the loop's tick after
poll cycles. The loop itself lives in the engine library; what it must offer the
integration is :class:`OptimizerLike`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

from homeassistant.core import CALLBACK_TYPE, Context, HomeAssistant, callback
from homeassistant.exceptions import Unauthorized, UnknownUser

from . import hub as hub_module
from .const import DOMAIN
from .engine.audit import Actor, AuditEntry, AuditLog, Outcome
from .engine.optimizer import Goal, Optimizer

if TYPE_CHECKING:
    from .coordinator import AdaptiveModbusConfigEntry, AdaptiveModbusData

_LOGGER = logging.getLogger(__name__)

EVENT_OPTIMIZATION = f"{DOMAIN}_optimization"

# audit actions of the integration's own changes (the services); the loop records
# its own: "strategy:<name>" for a change, "rollback", "approve", "set_goal",
# "set_enabled", "set_strategy_parameters"
ACTION_SET_REGISTER_INTERVAL = "set_register_interval"
ACTION_RESET_LEARNING = "reset_learning"
ACTION_REFRESH = "refresh"
# audit actions that are optimizations (what the "Last optimization" sensor shows)
OPTIMIZATION_PREFIX = "strategy:"
ACTION_ROLLBACK = "rollback"

GOALS = tuple(str(goal) for goal in Goal)
# outcomes an optimization shows (the engine's audit outcomes)
OUTCOMES = tuple(str(outcome) for outcome in Outcome)

# the HA context of the service call being handled: its events carry it, so the
# logbook shows the user who made the change
CALL_CONTEXT: ContextVar[Context | None] = ContextVar(
    f"{DOMAIN}_call_context", default=None
)


@contextmanager
def call_context(context: Context | None) -> Iterator[None]:
    """Give the audit events recorded inside the block this HA context."""
    token = CALL_CONTEXT.set(context)
    try:
        yield
    finally:
        CALL_CONTEXT.reset(token)


class OptimizerLike(Protocol):
    """What the integration needs of the engine's optimization loop."""

    enabled: bool
    goal: Any

    def set_enabled(self, enabled: bool, *, actor: Actor) -> dict[str, Any]:
        """Turn the automatic loop on or off (audited)."""

    def set_goal(self, goal: str, *, actor: Actor) -> dict[str, Any]:
        """Change the goal (audited)."""

    async def tick(
        self, now: float, *, run_in_executor: Callable[..., Awaitable[Any]]
    ) -> Any:
        """Do what is due (quick or full cycle, evaluation); cheap when nothing is."""

    async def run(
        self,
        kind: str,
        *,
        strategy: str | None = None,
        dry_run: bool = False,
        actor: Actor,
        run_in_executor: Callable[..., Awaitable[Any]],
    ) -> Any:
        """Run a quick or full cycle now; the result has ``as_dict()``."""

    def set_strategy_parameters(
        self, strategy: str, params: Mapping[str, Any], *, actor: Actor
    ) -> dict[str, Any]:
        """Change a strategy's parameters; returns ``{before, after}``."""

    def statistics(self) -> dict[str, Any]:
        """Per strategy record, parameters in force, savings."""

    def rollback(self, *, actor: Actor, audit_id: int | None = None) -> Any:
        """Undo the last change, or the one of an audit entry."""

    def approve(self, proposal_id: str, *, actor: Actor) -> dict[str, Any]:
        """Apply a proposal that waits for a user's approval (e.g. a tolerance)."""

    def export_state(self) -> dict[str, Any]:
        """Return the loop's state (versioned, JSON-safe)."""

    def import_state(self, data: Any) -> Any:
        """Restore the loop's state."""


async def async_require_admin(hass: HomeAssistant, context: Context | None) -> None:
    """Refuse a non-admin user (a call without a user, e.g. an automation, passes)."""
    user_id = None if context is None else context.user_id
    if user_id is None:
        return
    user = await hass.auth.async_get_user(user_id)
    if user is None:
        raise UnknownUser(context=context, user_id=user_id)
    if not user.is_admin:
        raise Unauthorized(context=context)


async def async_actor(hass: HomeAssistant, context: Context | None) -> Actor:
    """Return the audit actor of a call: its user (id and name), or none known."""
    user_id = None if context is None else context.user_id
    if user_id is None:
        return Actor.user(None, None)  # an automation, a script, HA itself
    user = await hass.auth.async_get_user(user_id)
    return Actor.user(user_id, None if user is None else user.name)


def event_data(entry_id: str, title: str, entry: AuditEntry) -> dict[str, Any]:
    """Return the event data of an audit entry (what the logbook shows)."""
    return {
        "config_entry_id": entry_id,
        "name": title,
        "audit_id": entry.id,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "actor": str(entry.actor.kind),
        "user_id": entry.actor.user_id,
        "user_name": entry.actor.name,
        "entity_id": entry.extra.get("entity_id"),
    }


@callback
def async_track_audit(
    hass: HomeAssistant, entry_id: str, title: str, audit: AuditLog
) -> CALLBACK_TYPE:
    """Fire an optimization event for each new or updated audit entry.

    An entry recorded while a service call is handled carries that call's context
    (the logbook then names the user). Entries added from another thread are fired
    from the event loop.
    """

    def _fire(entry: AuditEntry) -> None:
        data = event_data(entry_id, title, entry)
        context = CALL_CONTEXT.get()
        if threading.get_ident() == hass.loop_thread_id:
            hass.bus.async_fire(EVENT_OPTIMIZATION, data, context=context)
        else:
            hass.loop.call_soon_threadsafe(
                partial(hass.bus.async_fire, EVENT_OPTIMIZATION, data, context=context)
            )

    return audit.add_listener(_fire)


def last_optimization(audit: AuditLog) -> AuditEntry | None:
    """Return the latest optimization in the audit log: a change or a rollback."""
    for entry in reversed(audit.tail(audit.maxlen)):
        if entry.action.startswith(OPTIMIZATION_PREFIX) or entry.action == (
            ACTION_ROLLBACK
        ):
            return entry
    return None


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    """Return an audit entry for a service response or diagnostics."""
    return entry.to_dict()


@callback
def async_setup_control(
    hass: HomeAssistant, entry: AdaptiveModbusConfigEntry, data: AdaptiveModbusData
) -> None:
    """Give an entry its audit log and optimization loop, events for each change.

    Both are saved with the learned state.
    """
    hub = data.hub
    # the engine's clocks: wall time, and the monotonic time that drives its schedule
    monotonic = (
        hub_module.monotonic_clock if hub.clock is hub_module.wall_clock else hub.clock
    )
    data.audit = AuditLog(wall_clock=hub.clock)
    optimizer = Optimizer(
        hub.engine, audit=data.audit, clock=monotonic, wall_clock=hub.clock
    )
    entry.async_on_unload(optimizer.close)
    data.optimizer = data.coordinator.optimizer = optimizer
    data.store.audit, data.store.optimizer = data.audit, optimizer
    entry.async_on_unload(
        async_track_audit(hass, entry.entry_id, entry.title, data.audit)
    )
