"""Shared setup of the health tests: a two-unit TCP connection on a real server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.adaptive_modbus.const import (
    CONF_CONNECTION,
    CONF_DEVICES,
    CONF_HOST,
    CONF_NAME,
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
from custom_components.adaptive_modbus.entity import unit_identifier

if TYPE_CHECKING:
    from .conftest import TableDevice

SMALL_MAP = """
registers:
  - name: Voltage
    table: input
    address: 0
    data_type: uint16
  - name: Current
    table: input
    address: 1
    data_type: uint16
"""


def health_entry(
    hass: HomeAssistant,
    port: int,
    maps: dict[int, str],
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a TCP entry with one custom-map device per unit id (fast timeouts)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"Modbus 127.0.0.1:{port}",
        unique_id=f"tcp:127.0.0.1:{port}",
        data={
            CONF_CONNECTION: CONNECTION_TCP,
            CONF_HOST: "127.0.0.1",
            CONF_PORT: port,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: unit,
                    CONF_PROFILE: PROFILE_CUSTOM,
                    CONF_REGISTER_MAP: text,
                    CONF_NAME: f"Unit {unit}",
                }
                for unit, text in maps.items()
            ],
        },
        options={
            "min_interval": 2.0,
            "max_interval": 60.0,
            "timeout": 0.2,
            **(options or {}),
        },
    )
    entry.add_to_hass(hass)
    return entry


def fill(device: TableDevice, unit: int, count: int = 2, base: int = 230) -> None:
    """Give a unit's first ``count`` input registers values."""
    device.words[unit] = {table: {} for table in Table}
    for address in range(count):
        device.words[unit][Table.INPUT][address] = base + address


async def serve_units(
    device: TableDevice, units: tuple[int, ...] = (1, 2)
) -> SimulatorServer:
    """Fill each unit's first input registers and serve them on a loopback server."""
    for unit in units:
        fill(device, unit)
    server = SimulatorServer(device, host="127.0.0.1", port=0, unit_ids=units)
    await server.start()
    return server


def device_id_of(hass: HomeAssistant, entry: MockConfigEntry, unit: int) -> str:
    """Return the device registry id of a unit's device."""
    device = dr.async_get(hass).async_get_device(
        identifiers={unit_identifier(entry.entry_id, unit)}
    )
    assert device is not None
    return device.id


def problem_entity(hass: HomeAssistant, entry: MockConfigEntry, unit: int) -> str:
    """Return the entity id of a unit's problem binary sensor."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "binary_sensor", DOMAIN, f"{entry.entry_id}_{unit}_problem"
    )
    assert entity_id is not None
    return entity_id


def health_entity(hass: HomeAssistant, entry: MockConfigEntry, scope: str) -> str:
    """Return the entity id of a health sensor: ``scope`` is a unit id or ``hub``."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_{scope}_health"
    )
    assert entity_id is not None
    return entity_id
