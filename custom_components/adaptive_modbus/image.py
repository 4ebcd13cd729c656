"""Charts as image entities: three on the connection, one per unit device.

The pictures come from the entry's :class:`~.chart_runtime.ChartManager` (rendered in
the executor, cached by a hash of their data). ``image_last_updated`` (the entity's
state) moves only when a picture was drawn anew.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.image import ImageEntity, ImageEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .chart_runtime import ChartManager, intervals_chart
from .const import CHART_INTERVALS_KEY
from .coordinator import AdaptiveModbusConfigEntry
from .entity import hub_device_info, unit_device_info

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ChartImageEntityDescription(ImageEntityDescription):
    """An image entity showing one chart."""

    chart: str


CONNECTION_DESCRIPTIONS: tuple[ChartImageEntityDescription, ...] = (
    ChartImageEntityDescription(
        key="chart_hourly", translation_key="chart_hourly", chart="hourly"
    ),
    ChartImageEntityDescription(
        key="chart_daily", translation_key="chart_daily", chart="daily"
    ),
    ChartImageEntityDescription(
        key="chart_cumulative", translation_key="chart_cumulative", chart="cumulative"
    ),
)
INTERVALS_KEY = CHART_INTERVALS_KEY  # under the unit's prefix: moves with its unit id


async def async_setup_entry(
    hass: HomeAssistant,
    entry: AdaptiveModbusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Start the entry's chart manager and add its image entities."""
    data = entry.runtime_data
    manager = ChartManager(hass, entry)
    data.charts = manager
    entry.async_on_unload(manager.async_stop)
    hub = data.hub
    entry_id = entry.entry_id
    hub_info = hub_device_info(entry_id, hub.title, hub.settings.connection)
    async_add_entities(
        ChartImage(
            hass, manager, description, f"{entry_id}_hub_{description.key}", hub_info
        )
        for description in CONNECTION_DESCRIPTIONS
    )
    for unit in hub.units:
        description = ChartImageEntityDescription(
            key=INTERVALS_KEY,
            translation_key=INTERVALS_KEY,
            chart=intervals_chart(unit.unit_id),
        )
        subentry_id = unit.subentry_id if unit.subentry_id in entry.subentries else None
        async_add_entities(
            [
                ChartImage(
                    hass,
                    manager,
                    description,
                    f"{entry_id}_{unit.unit_id}_{INTERVALS_KEY}",
                    unit_device_info(entry_id, unit),
                )
            ],
            config_subentry_id=subentry_id,
        )
    manager.async_start()


class ChartImage(ImageEntity):
    """One chart of the connection or of a unit, as a PNG."""

    _attr_has_entity_name = True
    _attr_content_type = "image/png"
    entity_description: ChartImageEntityDescription

    def __init__(
        self,
        hass: HomeAssistant,
        manager: ChartManager,
        description: ChartImageEntityDescription,
        unique_id: str,
        device_info: DeviceInfo,
    ) -> None:
        """Show ``description.chart`` of ``manager``."""
        super().__init__(hass)
        self.manager = manager
        self.entity_description = description
        self._attr_unique_id = unique_id
        self._attr_device_info = device_info
        self._update_from_picture()

    @property
    def chart(self) -> str:
        """The chart this entity shows."""
        return self.entity_description.chart

    def _update_from_picture(self) -> bool:
        picture = self.manager.pictures.get(self.chart)
        updated = None if picture is None else picture.updated
        if updated == self._attr_image_last_updated:
            return False
        self._attr_image_last_updated = updated
        return True

    async def async_added_to_hass(self) -> None:
        """Follow the manager's pictures; tell it this chart's entity id."""
        await super().async_added_to_hass()
        self.manager.entity_ids[self.chart] = self.entity_id
        self.async_on_remove(self.manager.async_add_listener(self._picture_changed))

    @callback
    def _picture_changed(self) -> None:
        if self._update_from_picture():
            self.async_write_ha_state()

    async def async_image(self) -> bytes | None:
        """Return the chart's PNG (drawn now if it has not been yet)."""
        picture = await self.manager.async_picture(self.chart)
        return picture.png
