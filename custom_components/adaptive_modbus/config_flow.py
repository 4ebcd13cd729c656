"""Config, options and reconfigure flows of Adaptive Modbus.

User flow: a menu (Modbus TCP, RTU over TCP, serial RTU, demo device), a
connection form that really opens the connection, then one or more device forms
(unit id, name, profile) whose first register is really read before the device
is accepted; the custom profile asks for a YAML register map in an extra step.
Each device becomes a config subentry of the connection entry; the ``device``
subentry flow (:mod:`.device_flow`) adds and edits devices later. Checks and
schemas live in :mod:`.flow_checks`. Every error is a translation key with
placeholders; a refused form comes back filled with what the user typed.
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
from typing import Any, Final

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import BooleanSelector
import voluptuous as vol

from .const import (
    CONF_ADAPTIVE,
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CLOSE_AFTER_CYCLE,
    CONF_CONNECTION,
    CONF_DEFAULT_TOLERANCE,
    CONF_FIXED_INTERVAL,
    CONF_HOST,
    CONF_MAX_INTERVAL,
    CONF_MAX_REGISTERS,
    CONF_MIN_INTERVAL,
    CONF_NAME,
    CONF_PARITY,
    CONF_PAUSE,
    CONF_PORT,
    CONF_PROFILE,
    CONF_REGISTER_MAP,
    CONF_SEED,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    CONF_VIEWED_FACTOR,
    CONNECTION_DEMO,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_FIXED_INTERVAL,
    DEFAULT_MAX_INTERVAL,
    DEFAULT_MAX_REGISTERS,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_PAUSE,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT,
    DEFAULT_TOLERANCE,
    DEFAULT_UNIT_ID,
    DEFAULT_VIEWED_FACTOR,
    DOMAIN,
    ENTRY_VERSION,
    PROFILE_CUSTOM,
    SUBENTRY_DEVICE,
)
from .device_flow import DeviceSubentryFlow
from .engine.register_map import RegisterMapError
from .engine.simulator.fleet import FLEET
from .flow_checks import (
    CONF_ADD_ANOTHER,
    CUSTOM_MAP_SCHEMA,
    DEMO_DEVICE_NAME,
    DEMO_SCHEMA,
    DeviceChecks,
    FlowError,
    async_check_connection,
    async_probe_unit,
    async_serial_port_owner,
    check_unit,
    custom_map_name,
    default_device_name,
    detect_serial_ports,
    device_schema,
    device_subentry,
    network_data,
    network_schema,
    next_free_unit,
    number_selector,
    profiles_for,
    serial_data,
    serial_in_use_error,
    serial_schema,
    show_form,
    title_for,
    unique_id_for,
    whole_number,
)
from .hub import device_profile, entry_devices
from .profile_catalog import ProfileInfo, custom_template

_LOGGER = logging.getLogger(__name__)

OPTIONS_DEFAULTS: Final[dict[str, Any]] = {
    CONF_DEFAULT_TOLERANCE: DEFAULT_TOLERANCE,
    CONF_MIN_INTERVAL: DEFAULT_MIN_INTERVAL,
    CONF_MAX_INTERVAL: DEFAULT_MAX_INTERVAL,
    CONF_MAX_REGISTERS: DEFAULT_MAX_REGISTERS,
    CONF_TIMEOUT: DEFAULT_TIMEOUT,
    CONF_PAUSE: DEFAULT_PAUSE,
    CONF_ADAPTIVE: True,
    CONF_FIXED_INTERVAL: DEFAULT_FIXED_INTERVAL,
    CONF_CLOSE_AFTER_CYCLE: False,
    CONF_VIEWED_FACTOR: DEFAULT_VIEWED_FACTOR,
}

OPTIONS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_DEFAULT_TOLERANCE): number_selector(0, 1e9, "any"),
        vol.Required(CONF_MIN_INTERVAL): number_selector(0.1, 86400, "any", "s"),
        vol.Required(CONF_MAX_INTERVAL): number_selector(0.1, 86400, "any", "s"),
        vol.Required(CONF_MAX_REGISTERS): number_selector(1, 125),
        vol.Required(CONF_TIMEOUT): number_selector(0.1, 60, "any", "s"),
        vol.Required(CONF_PAUSE): number_selector(0, 10, "any", "s"),
        vol.Required(CONF_ADAPTIVE): BooleanSelector(),
        vol.Required(CONF_FIXED_INTERVAL): number_selector(0.1, 86400, "any", "s"),
        vol.Required(CONF_CLOSE_AFTER_CYCLE): BooleanSelector(),
        vol.Required(CONF_VIEWED_FACTOR): number_selector(0.01, 1, "any"),
    }
)

_INT_OPTIONS: Final = (CONF_MAX_REGISTERS,)
_BOOL_OPTIONS: Final = (CONF_ADAPTIVE, CONF_CLOSE_AFTER_CYCLE)


# -- the flows ------------------------------------------------------------------------


# -- the flows ------------------------------------------------------------------------


class AdaptiveModbusConfigFlow(DeviceChecks, ConfigFlow, domain=DOMAIN):
    """Set up one Modbus connection with its devices (one config subentry each)."""

    VERSION = ENTRY_VERSION

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._data: dict[str, Any] = {}
        self._devices: list[dict[str, Any]] = []
        self._pending: dict[str, Any] = {}  # custom device waiting for its map
        self._profiles: list[ProfileInfo] | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Return the options flow (polling tuning)."""
        return AdaptiveModbusOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Devices can be added, edited and removed on real connections (not the demo)."""
        if config_entry.data.get(CONF_CONNECTION) == CONNECTION_DEMO:
            return {}
        return {SUBENTRY_DEVICE: DeviceSubentryFlow}

    # -- entry points ---------------------------------------------------------------

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the kind of connection (the demo is marked as a simulator)."""
        return self.async_show_menu(
            step_id="user",
            menu_options=[
                CONNECTION_TCP,
                CONNECTION_RTU_OVER_TCP,
                CONNECTION_SERIAL,
                CONNECTION_DEMO,
            ],
        )

    async def async_step_import(self, import_data: dict[str, Any]) -> ConfigFlowResult:
        """YAML import: only the demo device (``{connection: demo, seed: 42}``)."""
        if import_data.get(CONF_CONNECTION, CONNECTION_DEMO) != CONNECTION_DEMO:
            return self.async_abort(reason="import_not_supported")
        seed = whole_number(import_data.get(CONF_SEED, DEFAULT_SEED))
        return await self._async_create_demo(DEFAULT_SEED if seed is None else seed)

    # -- connections ----------------------------------------------------------------

    async def async_step_tcp(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Modbus TCP: host and port."""
        return await self._async_network_step(CONNECTION_TCP, user_input)

    async def async_step_rtu_over_tcp(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """RTU frames over a TCP socket (serial gateways in transparent mode)."""
        return await self._async_network_step(CONNECTION_RTU_OVER_TCP, user_input)

    async def _async_try_connection(self, data: dict[str, Any]) -> FlowError | None:
        """Refuse a duplicate endpoint, then really connect; keep the data when it works."""
        if data[CONF_CONNECTION] == CONNECTION_SERIAL:
            port = str(data[CONF_SERIAL_PORT])
            owner = await async_serial_port_owner(self.hass, port)
            if owner is not None:
                return serial_in_use_error(port, owner)
        else:
            self._async_abort_entries_match(
                {CONF_HOST: data[CONF_HOST], CONF_PORT: data[CONF_PORT]}
            )
        await self.async_set_unique_id(unique_id_for(data))
        self._abort_if_unique_id_configured()
        error = await async_check_connection(self.hass, data)
        if error is None:
            self._data = data
        return error

    async def _async_network_step(
        self, connection: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        error: FlowError | None = None
        if user_input is not None:
            data, error = network_data(user_input)
            if data is not None:
                error = await self._async_try_connection(
                    {CONF_CONNECTION: connection, **data}
                )
                if error is None:
                    return await self.async_step_device()
        return self._show(connection, network_schema(), user_input, error)

    async def async_step_serial(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a serial RTU port and its line settings."""
        error: FlowError | None = None
        if user_input is not None:
            data, error = serial_data(user_input)
            if data is not None:
                data = {CONF_CONNECTION: CONNECTION_SERIAL, **data}
                error = await self._async_try_connection(data)
                if error is None:
                    return await self.async_step_device()
        ports = await self.hass.async_add_executor_job(detect_serial_ports)
        return self._show(CONNECTION_SERIAL, serial_schema(ports), user_input, error)

    async def async_step_demo(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Set up the built-in simulated device: only a seed to choose."""
        if user_input is None:
            return self.async_show_form(
                step_id=CONNECTION_DEMO, data_schema=DEMO_SCHEMA
            )
        seed = whole_number(user_input.get(CONF_SEED))
        if seed is None:
            return self._show(
                CONNECTION_DEMO,
                DEMO_SCHEMA,
                user_input,
                FlowError("invalid_seed", CONF_SEED),
            )
        return await self._async_create_demo(seed)

    async def _async_create_demo(self, seed: int) -> ConfigFlowResult:
        data: dict[str, Any] = {CONF_CONNECTION: CONNECTION_DEMO, CONF_SEED: seed}
        self._async_abort_entries_match(data)
        await self.async_set_unique_id(unique_id_for(data))
        self._abort_if_unique_id_configured()
        # one device per member of the demo fleet; the heat pump keeps its old name
        devices = [
            {
                CONF_UNIT_ID: member.unit_id,
                CONF_PROFILE: member.model.profile_id,
                CONF_NAME: DEMO_DEVICE_NAME
                if member.unit_id == DEFAULT_UNIT_ID
                else member.name,
            }
            for member in FLEET
        ]
        return self.async_create_entry(
            title=title_for(data),
            data=data,
            subentries=[device_subentry(device) for device in devices],
        )

    # -- devices --------------------------------------------------------------------

    async def async_step_device(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One device: unit id, profile, name; loops while 'add another' is ticked."""
        connection = str(self._data[CONF_CONNECTION])
        profiles = profiles_for(connection, await self._async_profiles())
        taken = {int(device[CONF_UNIT_ID]) for device in self._devices}
        error: FlowError | None = None
        if user_input is not None:
            unit_id, error = check_unit(user_input.get(CONF_UNIT_ID), connection, taken)
            if error is None:
                device = {
                    CONF_UNIT_ID: unit_id,
                    CONF_PROFILE: user_input[CONF_PROFILE],
                    CONF_NAME: str(user_input.get(CONF_NAME) or "").strip(),
                }
                add_another = bool(user_input.get(CONF_ADD_ANOTHER, False))
                if device[CONF_PROFILE] == PROFILE_CUSTOM:
                    self._pending = {**device, CONF_ADD_ANOTHER: add_another}
                    return await self.async_step_custom_map()
                error = await self._async_check_profile_device(
                    self._data, device, unit_answered=bool(self._devices)
                )
                if error is None:
                    return await self._async_device_done(
                        device, profiles, add_another, None
                    )
        schema = device_schema(profiles, next_free_unit(connection, taken))
        return self._show("device", schema, user_input, error)

    async def async_step_custom_map(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the YAML register map of a custom device."""
        error: FlowError | None = None
        device = self._pending
        if user_input is not None:
            text = str(user_input.get(CONF_REGISTER_MAP) or "")
            profile, error = await self._async_check_custom_map(
                self._data,
                int(device[CONF_UNIT_ID]),
                text,
                unit_answered=bool(self._devices),
            )
            if error is None:
                stored = {k: v for k, v in device.items() if k != CONF_ADD_ANOTHER}
                stored[CONF_REGISTER_MAP] = text
                profiles = await self._async_profiles()
                return await self._async_device_done(
                    stored,
                    profiles,
                    bool(device.get(CONF_ADD_ANOTHER)),
                    custom_map_name(profile),
                )
            suggested = user_input
        else:
            suggested = {
                CONF_REGISTER_MAP: await self.hass.async_add_executor_job(
                    custom_template
                )
            }
        return self._show(
            "custom_map",
            CUSTOM_MAP_SCHEMA,
            suggested,
            error,
            extra={"unit": str(device.get(CONF_UNIT_ID, "-"))},
        )

    async def _async_device_done(
        self,
        device: dict[str, Any],
        profiles: list[ProfileInfo],
        add_another: bool,
        map_name: str | None,
    ) -> ConfigFlowResult:
        if not device[CONF_NAME]:
            taken = {existing[CONF_NAME] for existing in self._devices}
            device[CONF_NAME] = default_device_name(device, profiles, taken, map_name)
        self._devices.append(device)
        self._pending = {}
        connection = str(self._data[CONF_CONNECTION])
        if add_another:
            used = {int(existing[CONF_UNIT_ID]) for existing in self._devices}
            schema = device_schema(
                profiles_for(connection, profiles), next_free_unit(connection, used)
            )
            return self._show("device", schema, None, None)
        return self.async_create_entry(
            title=title_for(self._data),
            data=self._data,
            subentries=[device_subentry(device) for device in self._devices],
        )

    # -- reconfigure ----------------------------------------------------------------

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change host/port or serial settings of an existing entry."""
        entry = self._get_reconfigure_entry()
        connection = entry.data[CONF_CONNECTION]
        if connection == CONNECTION_DEMO:
            return self.async_abort(reason="demo_not_reconfigurable")
        serial = connection == CONNECTION_SERIAL
        error: FlowError | None = None
        if user_input is not None:
            data, error = (
                serial_data(user_input) if serial else network_data(user_input)
            )
            if data is not None:
                candidate = {**entry.data, **data}
                error = await self._async_validate_reconfigure(entry, candidate)
                if error is None:
                    return self.async_update_reload_and_abort(
                        entry,
                        unique_id=unique_id_for(candidate),
                        title=title_for(candidate),
                        data=candidate,
                    )
        if serial:
            ports = await self.hass.async_add_executor_job(detect_serial_ports)
            schema = serial_schema(ports)
            current = {
                key: str(entry.data[key])
                for key in (CONF_SERIAL_PORT, CONF_BAUDRATE, CONF_BYTESIZE, CONF_PARITY)
                if key in entry.data
            }
            if CONF_STOPBITS in entry.data:
                current[CONF_STOPBITS] = str(entry.data[CONF_STOPBITS])
        else:
            schema = network_schema()
            current = {
                key: entry.data[key]
                for key in (CONF_HOST, CONF_PORT)
                if key in entry.data
            }
        return self._show("reconfigure", schema, user_input or current, error)

    async def _async_validate_reconfigure(
        self, entry: ConfigEntry, candidate: Mapping[str, Any]
    ) -> FlowError | None:
        other = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, unique_id_for(candidate)
        )
        if other is not None and other.entry_id != entry.entry_id:
            return FlowError("already_configured")
        if candidate[CONF_CONNECTION] == CONNECTION_SERIAL:
            port = str(candidate[CONF_SERIAL_PORT])
            owner = await async_serial_port_owner(self.hass, port, entry.entry_id)
            if owner is not None:
                return serial_in_use_error(port, owner)
        error = await async_check_connection(self.hass, candidate)
        if error is not None:
            return error
        devices = entry_devices(entry)
        if not devices:
            return None
        device = devices[0]
        unit_id = int(device[CONF_UNIT_ID])
        try:
            profile = await self.hass.async_add_executor_job(device_profile, device)
            first = profile.registers[0] if profile.registers else None
        except (RegisterMapError, RecursionError):
            first = None  # the stored map is the setup's problem; probe holding 0
        return await async_probe_unit(candidate, unit_id, first)

    # -- helpers --------------------------------------------------------------------

    def _show(
        self,
        step_id: str,
        schema: vol.Schema,
        suggested: Mapping[str, Any] | None,
        error: FlowError | None,
        extra: Mapping[str, str] | None = None,
    ) -> ConfigFlowResult:
        """Show a form, refilled with what the user typed, with its error if any."""
        return show_form(self, step_id, schema, suggested, error, extra=extra)


class AdaptiveModbusOptionsFlow(OptionsFlow):
    """Polling tuning; the integration reloads when options change."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _clean_options(user_input)
            if options[CONF_MIN_INTERVAL] > options[CONF_MAX_INTERVAL]:
                errors[CONF_MAX_INTERVAL] = "interval_range"
            else:
                return self.async_create_entry(data=options)
        current = {
            **OPTIONS_DEFAULTS,
            **self.config_entry.options,
            **(user_input or {}),
        }
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(OPTIONS_SCHEMA, current),
            errors=errors,
        )


def _clean_options(user_input: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, default in OPTIONS_DEFAULTS.items():
        value = user_input.get(key, default)
        if key in _BOOL_OPTIONS:
            options[key] = bool(value)
        elif key in _INT_OPTIONS:
            options[key] = int(value)
        else:
            options[key] = float(value)
    return options
