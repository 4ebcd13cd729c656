"""Chart back-fill from the recorder's long-term statistics of the connection sensors."""

from __future__ import annotations

from datetime import UTC, datetime
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.models.statistics import StatisticMetaData
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.adaptive_modbus.chart_runtime import hours_from_statistics
from custom_components.adaptive_modbus.const import DOMAIN
from custom_components.adaptive_modbus.engine.charts import cumulative_data
from custom_components.adaptive_modbus.engine.history import HOUR

if TYPE_CHECKING:
    from .conftest import VirtualTime

pytestmark = [
    pytest.mark.usefixtures("socket_enabled", "entity_registry_enabled_by_default"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

HOURS = 50


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_db_url: str, enable_custom_integrations: None
) -> None:
    """Prepare the recorder's database before ``hass`` exists (then custom integrations)."""
    return


def _import(hass: HomeAssistant, entity_id: str, unit: str, rows: list[Any]) -> None:
    metadata: dict[str, Any] = {
        "has_mean": True,
        "mean_type": StatisticMeanType.ARITHMETIC,
        "has_sum": False,
        "name": None,
        "source": "recorder",
        "statistic_id": entity_id,
        "unit_of_measurement": unit,
    }
    if "unit_class" in StatisticMetaData.__annotations__:  # HA 2025.10+
        metadata["unit_class"] = None
    async_import_statistics(hass, StatisticMetaData(**metadata), rows)


def _sensor(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry.entry_id}_hub_{key}"
    )
    assert entity_id is not None
    return entity_id


async def test_older_hours_come_from_the_recorder(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    vtime: VirtualTime,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Hours before the stored aggregates are rebuilt from the sensors' hourly means.

    50 hours of 10 requests/min at 75 % saving and 0.5 % bus use: 600 requests,
    2,400 for fixed polling and 18 s of bus time an hour, in two logged chunks
    when the chunk is one day.
    """
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = mock_config_entry.runtime_data.coordinator
    await vtime.run(coordinator, 120)
    manager = mock_config_entry.runtime_data.charts
    first = coordinator.history.hours()[0].start
    starts = [first - (HOURS - i) * HOUR for i in range(HOURS)]
    for key, unit, mean in (
        ("requests_per_minute", "req/min", 10.0),
        ("saving_vs_fixed", "%", 75.0),
        ("bus_utilisation", "%", 0.5),
    ):
        rows = [
            {
                "start": datetime.fromtimestamp(s, UTC),
                "mean": mean,
                "min": mean,
                "max": mean,
            }
            for s in starts
        ]
        _import(hass, _sensor(hass, mock_config_entry, key), unit, rows)
    await async_wait_recording_done(hass)

    caplog.set_level(logging.INFO)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            "custom_components.adaptive_modbus.chart_runtime.BACKFILL_CHUNK_DAYS", 1
        )
        assert await manager.async_backfill() == HOURS
    progress = [r for r in caplog.records if "back-filled" in r.getMessage()]
    assert len(progress) == 3  # 24 + 24 + 2 hours
    hours = manager.hours()
    assert [h.start for h in hours[:HOURS]] == starts
    assert hours[HOURS].start == first  # then the stored aggregates
    old = hours[0]
    assert old.requests == 600
    assert old.fixed_requests == pytest.approx(2400)
    assert old.bus_time == pytest.approx(18)
    saved = cumulative_data(hours, UTC).points[HOURS][1]
    assert saved == pytest.approx(HOURS * 1800)
    # the charts use them: the cumulative picture is drawn from the recorder hours on
    (result,) = await manager.async_render(["cumulative"])
    assert result.changed


def test_hours_from_statistics_skips_hours_without_requests() -> None:
    """An hour needs the requests mean; the saving and bus use are optional."""
    rows = {
        "sensor.rpm": [
            {"start": 7200.0, "mean": 2.0},
            {"start": 10800.0, "mean": None},
        ],
        "sensor.saving": [
            {"start": 7200.0, "mean": 50.0},
            {"start": 10800.0, "mean": 50.0},
        ],
    }
    hours = hours_from_statistics(
        rows, {"requests_per_minute": "sensor.rpm", "saving_vs_fixed": "sensor.saving"}
    )
    assert [(h.start, h.requests, h.fixed_requests, h.bus_time) for h in hours] == [
        (7200.0, 120, 240.0, 0.0)
    ]
