"""Device triggers: a device stopped answering, answers again, an anomaly, low health.

The first three listen to the integration's events (``adaptive_modbus_device_stopped``,
``adaptive_modbus_device_answering``, ``adaptive_modbus_anomaly``) for one device;
"health below a threshold" is a numeric-state trigger on the device's health sensor.
The connection (hub) device offers the health trigger only.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.components.homeassistant.triggers import (
    event as event_trigger,
    numeric_state as numeric_state_trigger,
)
from homeassistant.const import (
    CONF_BELOW,
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_ENTITY_ID,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
    selector,
)
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType
import voluptuous as vol

from .const import DOMAIN
from .health import EVENT_ANOMALY, EVENT_DEVICE_ANSWERING, EVENT_DEVICE_STOPPED

TRIGGER_STOPPED: Final = "stopped_answering"
TRIGGER_ANSWERING: Final = "answering_again"
TRIGGER_ANOMALY: Final = "anomaly"
TRIGGER_HEALTH_BELOW: Final = "health_below"
TRIGGER_TYPES: Final = (
    TRIGGER_STOPPED,
    TRIGGER_ANSWERING,
    TRIGGER_ANOMALY,
    TRIGGER_HEALTH_BELOW,
)
EVENTS: Final = {
    TRIGGER_STOPPED: EVENT_DEVICE_STOPPED,
    TRIGGER_ANSWERING: EVENT_DEVICE_ANSWERING,
    TRIGGER_ANOMALY: EVENT_ANOMALY,
}

CONF_THRESHOLD: Final = "threshold"
DEFAULT_THRESHOLD: Final = 50.0
HEALTH_KEY: Final = "health"  # unique id suffix of the health sensors

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {
        vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES),
        vol.Optional(CONF_THRESHOLD): vol.All(
            vol.Coerce(float), vol.Range(min=0, max=100)
        ),
        vol.Optional(CONF_ENTITY_ID): cv.entity_id,
    }
)


def _is_hub(device: dr.DeviceEntry) -> bool:
    return any(
        domain == DOMAIN and value.endswith("_hub")
        for domain, value in device.identifiers
    )


async def async_get_triggers(
    hass: HomeAssistant, device_id: str
) -> list[dict[str, str]]:
    """List the triggers of one of our devices."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None or not any(d == DOMAIN for d, _ in device.identifiers):
        return []
    types = (TRIGGER_HEALTH_BELOW,) if _is_hub(device) else TRIGGER_TYPES
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in types
    ]


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """Extra fields: the threshold of the health trigger, the register of an anomaly."""
    if config[CONF_TYPE] == TRIGGER_HEALTH_BELOW:
        return {
            "extra_fields": vol.Schema(
                {
                    vol.Required(
                        CONF_THRESHOLD, default=DEFAULT_THRESHOLD
                    ): selector.NumberSelector(
                        selector.NumberSelectorConfig(
                            min=0, max=100, step=1, mode=selector.NumberSelectorMode.BOX
                        )
                    )
                }
            )
        }
    if config[CONF_TYPE] == TRIGGER_ANOMALY:
        return {
            "extra_fields": vol.Schema(
                {
                    vol.Optional(CONF_ENTITY_ID): selector.EntitySelector(
                        selector.EntitySelectorConfig(integration=DOMAIN)
                    )
                }
            )
        }
    return {}


def health_entity_id(hass: HomeAssistant, device_id: str) -> str | None:
    """Return the health sensor of a device (None while it has none)."""
    for entry in er.async_entries_for_device(er.async_get(hass), device_id):
        if entry.domain == "sensor" and entry.unique_id.endswith(f"_{HEALTH_KEY}"):
            return entry.entity_id
    return None


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Attach an event trigger, or a numeric-state trigger on the health sensor."""
    trigger_type = config[CONF_TYPE]
    device_id = config[CONF_DEVICE_ID]
    if trigger_type == TRIGGER_HEALTH_BELOW:
        entity_id = health_entity_id(hass, device_id)
        if entity_id is None:
            raise InvalidDeviceAutomationConfig(
                f"device {device_id} has no health sensor"
            )
        state_config = await numeric_state_trigger.async_validate_trigger_config(
            hass,
            {
                CONF_PLATFORM: "numeric_state",
                CONF_ENTITY_ID: entity_id,
                CONF_BELOW: float(config.get(CONF_THRESHOLD, DEFAULT_THRESHOLD)),
            },
        )
        return await numeric_state_trigger.async_attach_trigger(
            hass, state_config, action, trigger_info, platform_type="device"
        )
    event_data: dict[str, Any] = {CONF_DEVICE_ID: device_id}
    if trigger_type == TRIGGER_ANOMALY and config.get(CONF_ENTITY_ID):
        event_data[CONF_ENTITY_ID] = config[CONF_ENTITY_ID]
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: EVENTS[trigger_type],
            CONF_EVENT_DATA: event_data,
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )
