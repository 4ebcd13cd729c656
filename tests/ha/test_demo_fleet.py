"""The demo connection as Home Assistant sees it: a fleet of three devices.

``adaptive_modbus: {demo: true}`` (what ``scripts/develop`` configures) creates the
demo entry with one device subentry per fleet member: the heat pump (unit 1, the
problem child), the grid meter (unit 2, at most 20 registers per read) and the PV
inverter (unit 3). All three are served by one simulator on loopback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
import yaml

from custom_components.adaptive_modbus.const import DOMAIN, SUBENTRY_DEVICE
from custom_components.adaptive_modbus.engine.simulator.fleet import Fleet
from custom_components.adaptive_modbus.hub import demo_fleet

if TYPE_CHECKING:
    from conftest import VirtualTime

DEVELOP_CONFIG = (
    Path(__file__).resolve().parents[2]
    / "scripts"
    / "develop_config"
    / "configuration.yaml"
)

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]


async def test_the_demo_shows_the_fleet(
    hass: HomeAssistant, vtime: VirtualTime
) -> None:
    """Three devices with their entities, values from the fleet, the limit learned.

    Set up from the very configuration ``scripts/develop`` runs HA with.
    """
    develop: dict[str, Any] = yaml.safe_load(DEVELOP_CONFIG.read_text("utf-8"))
    assert develop[DOMAIN] == {"demo": True, "seed": 42}
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: develop[DOMAIN]})
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED
    subentries = sorted(
        (int(s.unique_id or 0), s.title)
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_DEVICE
    )
    assert subentries == [
        (1, "Demo device"),
        (2, "Demo grid meter"),
        (3, "Demo PV inverter"),
    ]
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    models = {device.name: device.model for device in devices}
    assert models["Demo grid meter"] == "Simulator grid meter"
    assert models["Demo PV inverter"] == "Simulator PV inverter"
    assert models["Demo device"] == "Simulator"

    fleet = entry.runtime_data.hub.server.device
    assert isinstance(fleet, Fleet)
    assert fleet.unit_ids == [1, 2, 3]
    coordinator = entry.runtime_data.coordinator
    await vtime.run(coordinator, 10 * 60)

    registry = er.async_get(hass)
    for unit, key in ((1, "active_power"), (2, "total_power"), (3, "dc_power")):
        entity_id = registry.async_get_entity_id(
            "sensor", DOMAIN, f"{entry.entry_id}_{unit}_{key}"
        )
        assert entity_id is not None, (unit, key)
        state = hass.states.get(entity_id)
        assert state is not None and state.state not in ("unknown", "unavailable")
        truth = float(fleet.device(unit).truth(key, vtime.time()))
        # within a few tolerances of the truth (adaptive polling reads it when due)
        assert float(state.state) == pytest.approx(truth, abs=300), entity_id
    # the grid meter refused the large first read; the engine learned its limit
    limits = coordinator.engine.export_state()["unit_limits"]
    assert [(item["unit_id"], item["max_registers"] <= 20) for item in limits] == [
        (2, True)
    ]
    # what happens when, as the diagnostics show it
    info = demo_fleet(entry.runtime_data.hub)
    assert info is not None
    assert info["phase_now"] == {"1": "stable", "2": "stable", "3": "stable"}
    assert 600 <= info["scenario_time"] < 700
    assert [e["phase"] for e in info["timeline"] if e["unit_id"] == 1] == [
        "stable",
        "escalation",
        "peak",
        "recovery",
    ]
    meter = entry.runtime_data.hub.server.requests
    recent = [r for r in meter if r.unit_id == 2 and r.function_code == 4]
    assert recent and max(r.count for r in recent[-20:]) <= 20
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
