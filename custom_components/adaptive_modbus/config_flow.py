"""Config, options and reconfigure flows of Adaptive Modbus.

User flow: a menu (Modbus TCP, RTU over TCP, serial RTU, demo device), a
connection form that really opens the connection, then one or more device forms
(unit id, name, profile) whose first register is really read before the device
is accepted; the custom profile asks for a YAML register map in an extra step.
Every error is a translation key with placeholders; a refused form comes back
filled with what the user typed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import (
    CONF_ADAPTIVE,
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CLOSE_AFTER_CYCLE,
    CONF_CONNECTION,
    CONF_DEFAULT_TOLERANCE,
    CONF_DEVICES,
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
    CONNECTION_DEMO,
    CONNECTION_RTU_OVER_TCP,
    CONNECTION_SERIAL,
    CONNECTION_TCP,
    DEFAULT_BAUDRATE,
    DEFAULT_FIXED_INTERVAL,
    DEFAULT_MAX_INTERVAL,
    DEFAULT_MAX_REGISTERS,
    DEFAULT_MIN_INTERVAL,
    DEFAULT_PAUSE,
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT,
    DEFAULT_TOLERANCE,
    DEFAULT_UNIT_ID,
    DOMAIN,
    NAME,
    PROFILE_CUSTOM,
    PROFILE_DEMO,
)
from .engine.errors import (
    DeviceFailure,
    IllegalAddress,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from .engine.register_map import (
    RegisterDefinition,
    RegisterMapError,
    load_profile,
    parse_register_map,
)
from .engine.registers import MAX_UNIT_ID, Table
from .engine.transport import (
    GATEWAY_NO_ANSWER_CODES,
    PymodbusTransport,
    TransportConfig,
)
from .hub import transport_from_entry
from .profile_catalog import ProfileInfo, custom_template, list_profiles

_LOGGER = logging.getLogger(__name__)

# seconds per request while validating; module level so tests can shorten it
VALIDATION_TIMEOUT: float = 3.0

CONF_ADD_ANOTHER: Final = "add_another"  # flow-only field, never stored

DEMO_DEVICE_NAME: Final = "Demo device"
BAUDRATES: Final = ("1200", "2400", "4800", "9600", "19200", "38400", "57600", "115200")
BYTESIZES: Final = ("8", "7", "6", "5")
PARITIES: Final = ("N", "E", "O")
STOPBITS: Final = ("1", "2")

# every placeholder any error string of a form may use, so none shows raw
_PLACEHOLDER_KEYS: Final = ("unit", "register", "table", "serial_port", "line", "field", "error")

_BOX = NumberSelectorMode.BOX

# unit ids that Modbus TCP servers commonly answer, tried after a timeout
_REFERENCE_UNITS: Final = (1, 255)


def _number(
    minimum: float | None = None,
    maximum: float | None = None,
    step: float | Literal["any"] = 1,
    unit: str | None = None,
) -> NumberSelector:
    config = NumberSelectorConfig(mode=_BOX, step=step)
    if minimum is not None:
        config["min"] = minimum
    if maximum is not None:
        config["max"] = maximum
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _select(
    options: list[SelectOptionDict] | list[str],
    *,
    translation_key: str | None = None,
    custom_value: bool = False,
) -> SelectSelector:
    config = SelectSelectorConfig(
        options=options, mode=SelectSelectorMode.DROPDOWN, custom_value=custom_value
    )
    if translation_key is not None:
        config["translation_key"] = translation_key
    return SelectSelector(config)


# -- validation helpers (no HA state) ---------------------------------------------


@dataclass(slots=True)
class FlowError:
    """A translated error: key, the form field it belongs to, placeholder values."""

    key: str
    target: str = "base"
    placeholders: dict[str, str] = field(default_factory=dict)


def placeholders(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Placeholders for a form: every key present ("-" when not known)."""
    values = dict.fromkeys(_PLACEHOLDER_KEYS, "-")
    if extra:
        values.update(extra)
    return values


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is a whole number, else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not number.is_integer():
        return None
    return int(number)


def parse_port(value: Any) -> int | None:
    """A TCP port 1-65535, or None."""
    port = _whole(value)
    return port if port is not None and 1 <= port <= 65535 else None


def parse_unit_id(value: Any) -> int | None:
    """A Modbus unit id 0-247, or None."""
    unit = _whole(value)
    return unit if unit is not None and 0 <= unit <= MAX_UNIT_ID else None


def unique_id_for(data: Mapping[str, Any]) -> str:
    """The entry's unique id: one entry per endpoint."""
    connection = data[CONF_CONNECTION]
    if connection == CONNECTION_DEMO:
        return f"demo:{data.get(CONF_SEED, DEFAULT_SEED)}"
    if connection == CONNECTION_SERIAL:
        return f"serial:{data[CONF_SERIAL_PORT]}"
    return f"tcp:{data[CONF_HOST]}:{data[CONF_PORT]}"


def title_for(data: Mapping[str, Any]) -> str:
    """The entry title: the endpoint (not translated: it is an address)."""
    connection = data[CONF_CONNECTION]
    if connection == CONNECTION_DEMO:
        seed = data.get(CONF_SEED, DEFAULT_SEED)
        return f"{NAME} demo" if seed == DEFAULT_SEED else f"{NAME} demo {seed}"
    if connection == CONNECTION_SERIAL:
        return str(data[CONF_SERIAL_PORT])
    return f"{data[CONF_HOST]}:{data[CONF_PORT]}"


def transport_config(data: Mapping[str, Any], timeout: float) -> TransportConfig:
    """A one-shot transport config for validation (the entry's settings, no retries)."""
    return replace(transport_from_entry(data, {CONF_TIMEOUT: timeout}), retries=0)


def serial_port_exists(port: str) -> bool:
    """Whether a serial device path exists. Blocking (stat)."""
    if "://" in port:  # pyserial URL handlers: socket://, rfc2217://, loop://
        return True
    return os.path.exists(port)


def detect_serial_ports() -> list[SelectOptionDict]:
    """Serial ports found on this machine. Blocking (scans /sys or the registry)."""
    try:
        from serial.tools import (  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
            list_ports,
        )
    except ImportError:
        return []
    options: list[SelectOptionDict] = []
    for port in sorted(list_ports.comports(), key=lambda info: str(info.device)):
        device = str(port.device)
        description = str(port.description or "")
        label = f"{device} - {description}" if description and description != "n/a" else device
        options.append(SelectOptionDict(value=device, label=label))
    return options


def _probe_error(
    err: ModbusError,
    connection: str,
    unit_id: int,
    table: Table,
    address: int,
    *,
    unit_answered: bool,
) -> FlowError:
    values = {"unit": str(unit_id), "register": str(address), "table": str(table)}
    if isinstance(err, IllegalAddress):
        return FlowError("illegal_address", placeholders=values)
    if isinstance(err, IllegalFunction):
        return FlowError("illegal_function", placeholders=values)
    if isinstance(err, ModbusTimeout):
        # on an RTU line silence means this unit did not answer; over plain TCP it
        # is the device or gateway, unless another unit already answered there or
        # the gateway said so (exception 10/11: no path to, or no answer from, the unit)
        gateway_said_so = err.code in GATEWAY_NO_ANSWER_CODES
        if connection != CONNECTION_TCP or unit_answered or gateway_said_so:
            return FlowError("no_answer_from_unit", CONF_UNIT_ID, values)
        return FlowError("timeout", placeholders=values)
    if isinstance(err, DeviceFailure):
        return FlowError("device_failure", placeholders=values)
    if isinstance(err, ModbusConnectionError):
        return FlowError("cannot_connect", placeholders=values)
    return FlowError("unknown", placeholders=values)


async def async_check_connection(hass: HomeAssistant, data: Mapping[str, Any]) -> FlowError | None:
    """Open the connection once (no request). None when it opens."""
    if data[CONF_CONNECTION] == CONNECTION_SERIAL:
        port = str(data[CONF_SERIAL_PORT])
        if not await hass.async_add_executor_job(serial_port_exists, port):
            return FlowError("serial_port_missing", CONF_SERIAL_PORT, {"serial_port": port})
    transport = PymodbusTransport(transport_config(data, VALIDATION_TIMEOUT))
    try:
        await transport.connect()
        # let pymodbus finish its connection setup (the serial transport schedules it
        # with call_soon and fails if closed before it ran)
        await asyncio.sleep(0)
    except ModbusError as err:
        _LOGGER.debug("Connection check of %s failed: %s", title_for(data), err)
        return FlowError("cannot_connect")
    except Exception:  # any failure must become a form error
        _LOGGER.exception("Unexpected error opening %s", title_for(data))
        return FlowError("unknown")
    finally:
        await transport.close()
    return None


async def async_probe_unit(
    data: Mapping[str, Any],
    unit_id: int,
    first: RegisterDefinition | None,
    *,
    unit_answered: bool = False,
) -> FlowError | None:
    """Read the first register of a device (holding 0 without a map)."""
    table, address, count = (
        (first.spec.table, first.spec.address, first.spec.size) if first else (Table.HOLDING, 0, 1)
    )
    connection = str(data[CONF_CONNECTION])
    transport = PymodbusTransport(transport_config(data, VALIDATION_TIMEOUT))
    try:
        await transport.connect()
        await transport.read(unit_id, table, address, count)
    except ModbusError as err:
        _LOGGER.debug("Probe of unit %s at %s failed: %s", unit_id, title_for(data), err)
        if isinstance(err, ModbusTimeout) and connection == CONNECTION_TCP and not unit_answered:
            unit_answered = await _async_other_unit_answers(transport, unit_id)
        return _probe_error(err, connection, unit_id, table, address, unit_answered=unit_answered)
    except Exception:  # any failure must become a form error
        _LOGGER.exception("Unexpected error reading unit %s at %s", unit_id, title_for(data))
        return FlowError("unknown")
    finally:
        await transport.close()
    return None


async def _async_other_unit_answers(transport: PymodbusTransport, unit_id: int) -> bool:
    """Whether the TCP server answers anything for the usual unit ids (not ``unit_id``).

    Tells "this Modbus server has no unit N" from "the server answers nothing at all"
    after a timeout; an exception response counts as an answer.
    """
    for other in _REFERENCE_UNITS:
        if other == unit_id:
            continue
        try:
            await transport.read(other, Table.HOLDING, 0, 1)
        except (ModbusTimeout, ModbusConnectionError):
            continue
        except ModbusError:
            return True
        return True
    return False


# -- schemas --------------------------------------------------------------------------


def network_schema() -> vol.Schema:
    """Host and port (ranges are checked in code to give a translated error)."""
    return vol.Schema(
        {
            vol.Required(CONF_HOST): TextSelector(),
            vol.Required(CONF_PORT, default=DEFAULT_PORT): _number(),
        }
    )


def serial_schema(ports: list[SelectOptionDict]) -> vol.Schema:
    """Serial line settings; detected ports offered, any path accepted."""
    return vol.Schema(
        {
            vol.Required(CONF_SERIAL_PORT): _select(ports, custom_value=True),
            vol.Required(CONF_BAUDRATE, default=str(DEFAULT_BAUDRATE)): _select(
                list(BAUDRATES), custom_value=True
            ),
            vol.Required(CONF_BYTESIZE, default="8"): _select(list(BYTESIZES)),
            vol.Required(CONF_PARITY, default="N"): _select(
                list(PARITIES), translation_key=CONF_PARITY
            ),
            vol.Required(CONF_STOPBITS, default="1"): _select(list(STOPBITS)),
        }
    )


def device_schema(profiles: list[ProfileInfo], default_unit: int) -> vol.Schema:
    """One device on the connection."""
    options = [SelectOptionDict(value=info.profile_id, label=info.name) for info in profiles]
    default_profile = profiles[0].profile_id if profiles else PROFILE_CUSTOM
    return vol.Schema(
        {
            vol.Required(CONF_UNIT_ID, default=default_unit): _number(),
            vol.Required(CONF_PROFILE, default=default_profile): _select(
                options, translation_key=CONF_PROFILE
            ),
            vol.Optional(CONF_NAME): TextSelector(),
            vol.Required(CONF_ADD_ANOTHER, default=False): BooleanSelector(),
        }
    )


CUSTOM_MAP_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_REGISTER_MAP): TextSelector(
            TextSelectorConfig(multiline=True, type=TextSelectorType.TEXT)
        )
    }
)

DEMO_SCHEMA: Final = vol.Schema(
    {vol.Required(CONF_SEED, default=DEFAULT_SEED): _number(0, 2**31 - 1)}
)

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
}

OPTIONS_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_DEFAULT_TOLERANCE): _number(0, 1e9, "any"),
        vol.Required(CONF_MIN_INTERVAL): _number(0.1, 86400, "any", "s"),
        vol.Required(CONF_MAX_INTERVAL): _number(0.1, 86400, "any", "s"),
        vol.Required(CONF_MAX_REGISTERS): _number(1, 125),
        vol.Required(CONF_TIMEOUT): _number(0.1, 60, "any", "s"),
        vol.Required(CONF_PAUSE): _number(0, 10, "any", "s"),
        vol.Required(CONF_ADAPTIVE): BooleanSelector(),
        vol.Required(CONF_FIXED_INTERVAL): _number(0.1, 86400, "any", "s"),
        vol.Required(CONF_CLOSE_AFTER_CYCLE): BooleanSelector(),
    }
)

_INT_OPTIONS: Final = (CONF_MAX_REGISTERS,)
_BOOL_OPTIONS: Final = (CONF_ADAPTIVE, CONF_CLOSE_AFTER_CYCLE)


# -- the flows ------------------------------------------------------------------------


class AdaptiveModbusConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one Modbus connection with its devices."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing chosen."""
        self._data: dict[str, Any] = {}
        self._devices: list[dict[str, Any]] = []
        self._pending: dict[str, Any] = {}  # custom device waiting for its map
        self._profiles: list[ProfileInfo] | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """The options flow (polling tuning)."""
        return AdaptiveModbusOptionsFlow()

    # -- entry points ---------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the kind of connection."""
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
        seed = _whole(import_data.get(CONF_SEED, DEFAULT_SEED))
        return await self._async_create_demo(DEFAULT_SEED if seed is None else seed)

    # -- connections ----------------------------------------------------------------

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Modbus TCP: host and port."""
        return await self._async_network_step(CONNECTION_TCP, user_input)

    async def async_step_rtu_over_tcp(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """RTU frames over a TCP socket (serial gateways in transparent mode)."""
        return await self._async_network_step(CONNECTION_RTU_OVER_TCP, user_input)

    async def _async_try_connection(self, data: dict[str, Any]) -> FlowError | None:
        """Refuse a duplicate endpoint, then really connect; keep the data when it works."""
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
            data, error = _network_data(user_input)
            if data is not None:
                error = await self._async_try_connection({CONF_CONNECTION: connection, **data})
                if error is None:
                    return await self.async_step_device()
        return self._show(connection, network_schema(), user_input, error)

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Serial RTU: port and line settings."""
        error: FlowError | None = None
        if user_input is not None:
            data, error = _serial_data(user_input)
            if data is not None:
                data = {CONF_CONNECTION: CONNECTION_SERIAL, **data}
                error = await self._async_try_connection(data)
                if error is None:
                    return await self.async_step_device()
        ports = await self.hass.async_add_executor_job(detect_serial_ports)
        return self._show(CONNECTION_SERIAL, serial_schema(ports), user_input, error)

    async def async_step_demo(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The built-in simulated device: only a seed to choose."""
        if user_input is None:
            return self.async_show_form(step_id=CONNECTION_DEMO, data_schema=DEMO_SCHEMA)
        seed = _whole(user_input.get(CONF_SEED))
        if seed is None:
            return self._show(
                CONNECTION_DEMO, DEMO_SCHEMA, user_input, FlowError("invalid_seed", CONF_SEED)
            )
        return await self._async_create_demo(seed)

    async def _async_create_demo(self, seed: int) -> ConfigFlowResult:
        data: dict[str, Any] = {
            CONF_CONNECTION: CONNECTION_DEMO,
            CONF_SEED: seed,
            CONF_DEVICES: [
                {
                    CONF_UNIT_ID: DEFAULT_UNIT_ID,
                    CONF_PROFILE: PROFILE_DEMO,
                    CONF_NAME: DEMO_DEVICE_NAME,
                }
            ],
        }
        await self.async_set_unique_id(unique_id_for(data))
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=title_for(data), data=data)

    # -- devices --------------------------------------------------------------------

    async def async_step_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One device: unit id, profile, name; loops while 'add another' is ticked."""
        profiles = await self._async_profiles()
        error: FlowError | None = None
        if user_input is not None:
            error = self._check_unit(user_input.get(CONF_UNIT_ID))
            if error is None:
                device = {
                    CONF_UNIT_ID: parse_unit_id(user_input[CONF_UNIT_ID]),
                    CONF_PROFILE: user_input[CONF_PROFILE],
                    CONF_NAME: str(user_input.get(CONF_NAME) or "").strip(),
                }
                add_another = bool(user_input.get(CONF_ADD_ANOTHER, False))
                if device[CONF_PROFILE] == PROFILE_CUSTOM:
                    self._pending = {**device, CONF_ADD_ANOTHER: add_another}
                    return await self.async_step_custom_map()
                definitions, error = await self._async_profile_registers(device)
                if error is None:
                    error = await self._async_probe(device[CONF_UNIT_ID], definitions)
                if error is None:
                    return await self._async_device_done(device, profiles, add_another)
        schema = device_schema(profiles, self._next_unit())
        return self._show("device", schema, user_input, error)

    async def async_step_custom_map(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The YAML register map of a custom device."""
        error: FlowError | None = None
        device = self._pending
        if user_input is not None:
            text = str(user_input.get(CONF_REGISTER_MAP) or "")
            try:
                definitions = parse_register_map(text, device[CONF_UNIT_ID])
            except RegisterMapError as err:
                error = FlowError(
                    "invalid_register_map",
                    CONF_REGISTER_MAP,
                    {
                        "line": "-" if err.line is None else str(err.line),
                        "field": err.field or "-",
                        "error": err.message,
                    },
                )
            else:
                error = await self._async_probe(device[CONF_UNIT_ID], definitions)
                if error is None:
                    stored = {k: v for k, v in device.items() if k != CONF_ADD_ANOTHER}
                    stored[CONF_REGISTER_MAP] = text
                    profiles = await self._async_profiles()
                    return await self._async_device_done(
                        stored, profiles, bool(device.get(CONF_ADD_ANOTHER))
                    )
            suggested = user_input
        else:
            suggested = {CONF_REGISTER_MAP: await self.hass.async_add_executor_job(custom_template)}
        return self._show(
            "custom_map",
            CUSTOM_MAP_SCHEMA,
            suggested,
            error,
            extra={"unit": str(device.get(CONF_UNIT_ID, "-"))},
        )

    async def _async_device_done(
        self, device: dict[str, Any], profiles: list[ProfileInfo], add_another: bool
    ) -> ConfigFlowResult:
        if not device[CONF_NAME]:
            device[CONF_NAME] = self._default_name(device, profiles)
        self._devices.append(device)
        self._pending = {}
        if add_another:
            return self._show("device", device_schema(profiles, self._next_unit()), None, None)
        return self.async_create_entry(
            title=title_for(self._data), data={**self._data, CONF_DEVICES: self._devices}
        )

    def _check_unit(self, value: Any) -> FlowError | None:
        unit_id = parse_unit_id(value)
        if unit_id is None:
            return FlowError("invalid_unit_id", CONF_UNIT_ID)
        if any(device[CONF_UNIT_ID] == unit_id for device in self._devices):
            return FlowError("unit_already_added", CONF_UNIT_ID, {"unit": str(unit_id)})
        return None

    def _next_unit(self) -> int:
        used = {int(device[CONF_UNIT_ID]) for device in self._devices}
        unit = DEFAULT_UNIT_ID
        while unit in used and unit < MAX_UNIT_ID:
            unit += 1
        return unit

    def _default_name(self, device: Mapping[str, Any], profiles: list[ProfileInfo]) -> str:
        names = {info.profile_id: info.name for info in profiles}
        base = names.get(device[CONF_PROFILE], str(device[CONF_PROFILE]))
        taken = {existing[CONF_NAME] for existing in self._devices}
        return base if base not in taken else f"{base} {device[CONF_UNIT_ID]}"

    async def _async_profiles(self) -> list[ProfileInfo]:
        if self._profiles is None:
            self._profiles = await self.hass.async_add_executor_job(list_profiles)
        return self._profiles

    async def _async_profile_registers(
        self, device: Mapping[str, Any]
    ) -> tuple[list[RegisterDefinition], FlowError | None]:
        try:
            profile = await self.hass.async_add_executor_job(
                load_profile, device[CONF_PROFILE], device[CONF_UNIT_ID]
            )
        except RegisterMapError as err:
            _LOGGER.error("Profile %s is unusable: %s", device[CONF_PROFILE], err)
            return [], FlowError("invalid_profile", CONF_PROFILE, {"error": str(err)})
        return list(profile.registers), None

    async def _async_probe(
        self, unit_id: int, definitions: list[RegisterDefinition]
    ) -> FlowError | None:
        return await async_probe_unit(
            self._data,
            unit_id,
            definitions[0] if definitions else None,
            unit_answered=bool(self._devices),
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
            data, error = _serial_data(user_input) if serial else _network_data(user_input)
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
            current = {key: entry.data[key] for key in (CONF_HOST, CONF_PORT) if key in entry.data}
        return self._show("reconfigure", schema, user_input or current, error)

    async def _async_validate_reconfigure(
        self, entry: ConfigEntry, candidate: Mapping[str, Any]
    ) -> FlowError | None:
        other = self.hass.config_entries.async_entry_for_domain_unique_id(
            DOMAIN, unique_id_for(candidate)
        )
        if other is not None and other.entry_id != entry.entry_id:
            return FlowError("already_configured")
        error = await async_check_connection(self.hass, candidate)
        if error is not None:
            return error
        devices = list(candidate.get(CONF_DEVICES) or [])
        if not devices:
            return None
        device = devices[0]
        unit_id = int(device[CONF_UNIT_ID])
        try:
            if device[CONF_PROFILE] == PROFILE_CUSTOM:
                definitions = parse_register_map(str(device.get(CONF_REGISTER_MAP, "")), unit_id)
            else:
                profile = await self.hass.async_add_executor_job(
                    load_profile, device[CONF_PROFILE], unit_id
                )
                definitions = list(profile.registers)
        except RegisterMapError:
            definitions = []  # the stored map is the setup's problem; probe holding 0
        return await async_probe_unit(candidate, unit_id, definitions[0] if definitions else None)

    # -- helpers --------------------------------------------------------------------

    def _show(
        self,
        step_id: str,
        schema: vol.Schema,
        suggested: Mapping[str, Any] | None,
        error: FlowError | None,
        extra: Mapping[str, str] | None = None,
    ) -> ConfigFlowResult:
        """A form, refilled with what the user typed, with its error if any."""
        values = placeholders(extra)
        errors: dict[str, str] = {}
        if error is not None:
            errors[error.target] = error.key
            values.update(error.placeholders)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=values,
        )


def _network_data(user_input: Mapping[str, Any]) -> tuple[dict[str, Any] | None, FlowError | None]:
    host = str(user_input.get(CONF_HOST) or "").strip()
    if not host or any(char.isspace() for char in host):
        return None, FlowError("invalid_host", CONF_HOST)
    port = parse_port(user_input.get(CONF_PORT))
    if port is None:
        return None, FlowError("invalid_port", CONF_PORT)
    return {CONF_HOST: host, CONF_PORT: port}, None


def _serial_data(user_input: Mapping[str, Any]) -> tuple[dict[str, Any] | None, FlowError | None]:
    port = str(user_input.get(CONF_SERIAL_PORT) or "").strip()
    if not port:
        return None, FlowError("serial_port_missing", CONF_SERIAL_PORT, {"serial_port": "-"})
    baudrate = _whole(user_input.get(CONF_BAUDRATE))
    if baudrate is None or not 50 <= baudrate <= 4_000_000:
        return None, FlowError("invalid_baudrate", CONF_BAUDRATE)
    return {
        CONF_SERIAL_PORT: port,
        CONF_BAUDRATE: baudrate,
        CONF_BYTESIZE: int(user_input.get(CONF_BYTESIZE, 8)),
        CONF_PARITY: str(user_input.get(CONF_PARITY, "N")),
        CONF_STOPBITS: int(user_input.get(CONF_STOPBITS, 1)),
    }, None


class AdaptiveModbusOptionsFlow(OptionsFlow):
    """Polling tuning; the integration reloads when options change."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every option."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = _clean_options(user_input)
            if options[CONF_MIN_INTERVAL] > options[CONF_MAX_INTERVAL]:
                errors[CONF_MAX_INTERVAL] = "interval_range"
            else:
                return self.async_create_entry(data=options)
        current = {**OPTIONS_DEFAULTS, **self.config_entry.options, **(user_input or {})}
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
