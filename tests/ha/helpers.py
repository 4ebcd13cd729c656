"""Shared helpers of the HA tests: service calls, entity lookup, a polled demo entry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.adaptive_modbus.const import DOMAIN

if TYPE_CHECKING:
    from .conftest import VirtualTime

#: short intervals and timeouts for entries under test (virtual time runs fast)
FAST_OPTIONS: dict[str, Any] = {
    "min_interval": 2.0,
    "max_interval": 60.0,
    "timeout": 0.5,
}


async def call_service(
    hass: HomeAssistant,
    service: str,
    data: dict[str, Any],
    user: MockUser | None = None,
) -> dict[str, Any]:
    """Call one of the integration's services as ``user`` and return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        service,
        data,
        blocking=True,
        return_response=True,
        context=Context(user_id=None if user is None else user.id),
    )
    assert isinstance(response, dict)
    return response


def sensor_entity(
    hass: HomeAssistant, entry: MockConfigEntry, key: str, unit: int = 1
) -> str:
    """Return the entity id of the sensor of register ``key`` on ``unit``."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_{unit}_{key}"
    )
    assert entity_id is not None
    return entity_id


async def set_up_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set ``entry`` up and wait until HA is idle."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def unload_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload ``entry`` and wait until HA is idle."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def set_up_polled(
    hass: HomeAssistant,
    vtime: VirtualTime,
    entry: MockConfigEntry,
    seconds: float,
    *,
    optimizer_off: bool = False,
    max_step: float = 60.0,
) -> MockConfigEntry:
    """Set ``entry`` up and poll it for ``seconds`` of virtual time.

    With ``optimizer_off`` the optimization loop is switched off first, so a test
    decides when a cycle runs.
    """
    await set_up_entry(hass, entry)
    if optimizer_off:
        optimizer = entry.runtime_data.optimizer
        assert optimizer is not None
        optimizer.enabled = False
    await vtime.run(entry.runtime_data.coordinator, seconds, max_step=max_step)
    return entry
