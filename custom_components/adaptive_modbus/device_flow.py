"""The ``device`` config subentry flow: add a device to a connection, or edit one.

Removing a device is HA's own subentry action; the integration's update listener
then drops its device and entities and reloads the connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)

from .const import (
    CONF_CONNECTION,
    CONF_MAX_REGISTERS,
    CONF_NAME,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SUBENTRY_ID,
    CONF_UNIT_ID,
    PROFILE_CUSTOM,
)
from .engine.transport import PymodbusTransport
from .flow_checks import (
    CUSTOM_MAP_SCHEMA,
    DeviceChecks,
    FlowError,
    check_unit,
    custom_map_name,
    default_device_name,
    device_schema,
    next_free_unit,
    profiles_for,
    show_form,
)
from .hub import entry_devices
from .profile_catalog import ProfileInfo, custom_template
from .subentries import async_move_unit, device_title


class DeviceSubentryFlow(DeviceChecks, ConfigSubentryFlow):
    """Add a device to a connection, or edit one (unit id, profile, map, name)."""

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._pending: dict[str, Any] = {}
        self._profiles: list[ProfileInfo] | None = None

    def _editing(self) -> Any:
        """Return the subentry being edited, or None when adding."""
        return (
            self._get_reconfigure_subentry()
            if self.source == SOURCE_RECONFIGURE
            else None
        )

    def _live_transport(self) -> PymodbusTransport | None:
        """Return the loaded entry's own connection (a second one may be refused)."""
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return None
        hub = getattr(getattr(entry, "runtime_data", None), "hub", None)
        transport = getattr(hub, "transport", None)
        return transport if isinstance(transport, PymodbusTransport) else None

    def _taken_units(self) -> set[int]:
        editing = self._editing()
        skip = editing.subentry_id if editing is not None else None
        return {
            int(device[CONF_UNIT_ID])
            for device in entry_devices(self._get_entry())
            if device.get(CONF_SUBENTRY_ID) != skip
        }

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a device: unit id, profile, name."""
        return await self._async_device_step("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Edit a device: the form starts from its current settings."""
        return await self._async_device_step("reconfigure", user_input)

    async def _async_device_step(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        connection = str(entry.data[CONF_CONNECTION])
        profiles = profiles_for(connection, await self._async_profiles())
        taken = self._taken_units()
        error: FlowError | None = None
        suggested: Mapping[str, Any] | None = user_input
        if user_input is not None:
            unit_id, error = check_unit(user_input.get(CONF_UNIT_ID), connection, taken)
            if error is None:
                device = {
                    CONF_UNIT_ID: unit_id,
                    CONF_PROFILE: user_input[CONF_PROFILE],
                    CONF_NAME: str(user_input.get(CONF_NAME) or "").strip(),
                }
                if device[CONF_PROFILE] == PROFILE_CUSTOM:
                    self._pending = device
                    return await self.async_step_custom_map()
                error = await self._async_check_profile_device(
                    entry.data,
                    device,
                    unit_answered=bool(taken),
                    live=self._live_transport(),
                )
                if error is None:
                    return self._async_finish(device, profiles, None)
        elif (editing := self._editing()) is not None:
            suggested = {
                key: editing.data[key]
                for key in (CONF_UNIT_ID, CONF_PROFILE, CONF_NAME)
                if key in editing.data
            }
        schema = device_schema(
            profiles, next_free_unit(connection, taken), add_another=False
        )
        return show_form(self, step_id, schema, suggested, error)

    async def async_step_custom_map(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the device's YAML register map (an edited device shows its map as it is)."""
        entry = self._get_entry()
        device = self._pending
        error: FlowError | None = None
        if user_input is not None:
            text = str(user_input.get(CONF_REGISTER_MAP) or "")
            profile, error = await self._async_check_custom_map(
                entry.data,
                int(device[CONF_UNIT_ID]),
                text,
                unit_answered=bool(self._taken_units()),
                live=self._live_transport(),
            )
            if error is None:
                profiles = await self._async_profiles()
                stored = {**device, CONF_REGISTER_MAP: text}
                return self._async_finish(stored, profiles, custom_map_name(profile))
            suggested: Mapping[str, Any] = user_input
        else:
            editing = self._editing()
            current = (
                editing.data.get(CONF_REGISTER_MAP) if editing is not None else None
            )
            if current is None:
                current = await self.hass.async_add_executor_job(custom_template)
            suggested = {CONF_REGISTER_MAP: current}
        return show_form(
            self,
            "custom_map",
            CUSTOM_MAP_SCHEMA,
            suggested,
            error,
            extra={"unit": str(device.get(CONF_UNIT_ID, "-"))},
        )

    def _async_finish(
        self, device: dict[str, Any], profiles: list[ProfileInfo], map_name: str | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        editing = self._editing()
        if not device[CONF_NAME]:
            taken = {
                str(sub.title)
                for sub in entry.subentries.values()
                if editing is None or sub.subentry_id != editing.subentry_id
            }
            device[CONF_NAME] = default_device_name(device, profiles, taken, map_name)
        unit_id = int(device[CONF_UNIT_ID])
        if entry.state is not ConfigEntryState.LOADED:
            # a loaded entry reloads through its update listener; one that failed
            # (a bad map, a silent device) has none: retry it with the new device,
            # once this step has stored it (call_soon: after the flow finishes)
            self.hass.loop.call_soon(
                self.hass.config_entries.async_schedule_reload, entry.entry_id
            )
        if editing is None:
            return self.async_create_entry(
                title=device_title(device), data=device, unique_id=str(unit_id)
            )
        if CONF_MAX_REGISTERS in editing.data:  # set by the block-size repair: kept
            device.setdefault(CONF_MAX_REGISTERS, editing.data[CONF_MAX_REGISTERS])
        # the unit id moved: entity ids, names and settings move with it
        async_move_unit(self.hass, entry, int(editing.data[CONF_UNIT_ID]), unit_id)
        return self.async_update_and_abort(
            entry,
            editing,
            data=device,
            title=device_title(device),
            unique_id=str(unit_id),
        )
