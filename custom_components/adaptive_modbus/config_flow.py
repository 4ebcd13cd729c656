"""Config, options and reconfigure flows of Adaptive Modbus.

User flow: a menu (Modbus TCP, RTU over TCP, serial RTU, demo device), a
connection form that really opens the connection, then one or more device forms
(unit id, name, profile) whose first register is really read before the device
is accepted; the custom profile asks for a YAML register map in an extra step.
Each device becomes a config subentry of the connection entry; the ``device``
subentry flow adds and edits devices later (removing one is HA's own action).
Every error is a translation key with placeholders; a refused form comes back
filled with what the user typed.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

import voluptuous as vol
import yaml
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import FlowHandler, FlowResult
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
    CONF_SUBENTRY_ID,
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
    ENTRY_VERSION,
    MAX_RTU_UNIT_ID,
    MAX_TCP_UNIT_ID,
    MIN_RTU_UNIT_ID,
    MIN_TCP_UNIT_ID,
    NAME,
    PROFILE_CUSTOM,
    PROFILE_DEMO,
    SUBENTRY_DEVICE,
)
from .engine.device_probe import (
    ProbeOutcome,
    ProbeResult,
    check_connection,
    classify,
    probe_unit,
)
from .engine.errors import ModbusError
from .engine.register_map import (
    Profile,
    RegisterDefinition,
    RegisterMapError,
    load_profile,
    parse_profile,
)
from .engine.registers import Table
from .engine.transport import (
    PymodbusTransport,
    TransportConfig,
    TransportKind,
)
from .hub import device_profile, entry_devices, transport_from_entry
from .profile_catalog import ProfileInfo, custom_template, list_profiles
from .subentries import async_move_unit, device_title, subentry_data

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
_PLACEHOLDER_KEYS: Final = (
    "unit",
    "register",
    "table",
    "serial_port",
    "line",
    "column",
    "field",
    "error",
    "entry",
    "min_unit",
    "max_unit",
)

_BOX = NumberSelectorMode.BOX


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


def unit_range(connection: str) -> tuple[int, int]:
    """Unit ids a connection can address: 0-255 on Modbus TCP, 1-247 on an RTU line."""
    if connection == CONNECTION_TCP:
        return MIN_TCP_UNIT_ID, MAX_TCP_UNIT_ID
    return MIN_RTU_UNIT_ID, MAX_RTU_UNIT_ID


def parse_unit_id(value: Any, connection: str = CONNECTION_TCP) -> int | None:
    """A Modbus unit id the connection can address, or None."""
    unit = _whole(value)
    low, high = unit_range(connection)
    return unit if unit is not None and low <= unit <= high else None


def check_unit(value: Any, connection: str, taken: set[int]) -> tuple[int, FlowError | None]:
    """The unit id typed for a device, or the error saying why it cannot be used.

    Unit 0 is the broadcast address on an RTU line: no device answers a read to it.
    """
    low, high = unit_range(connection)
    unit = _whole(value)
    if unit == 0 and connection != CONNECTION_TCP:
        return 0, FlowError("broadcast_unit", CONF_UNIT_ID, {"unit": "0"})
    if unit is None or not low <= unit <= high:
        bounds = {"min_unit": str(low), "max_unit": str(high)}
        return -1, FlowError("invalid_unit_id", CONF_UNIT_ID, bounds)
    if unit in taken:
        return unit, FlowError("unit_already_added", CONF_UNIT_ID, {"unit": str(unit)})
    return unit, None


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


def serial_port_status(port: str) -> str | None:
    """None when ``port`` is a character device (a serial port), else the error key.

    pyserial URLs (``socket://``, ``rfc2217://``, ``spy://...?file=``) are refused on
    purpose: network gateways are set up as Modbus TCP or RTU over TCP, and URL
    handlers can write files. Blocking (stat).
    """
    if "://" in port:
        return "serial_port_not_device"
    try:
        mode = os.stat(port).st_mode  # follows /dev/serial/by-id links
    except OSError:
        return "serial_port_missing"
    return None if stat.S_ISCHR(mode) else "serial_port_not_device"


def serial_port_exists(port: str) -> bool:
    """Whether ``port`` is a serial device node. Blocking (stat)."""
    return serial_port_status(port) is None


def same_serial_port(port: str, other: str) -> bool:
    """Whether two paths name one device (/dev/serial/by-id links). Blocking."""
    return port == other or os.path.realpath(port) == os.path.realpath(other)


def yaml_column(text: str) -> int | None:
    """The 1-based column of ``text``'s YAML syntax error, if it has one."""
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        return None if mark is None else mark.column + 1
    except (yaml.YAMLError, RecursionError):
        return None
    return None


def parse_custom_map(text: str, unit_id: int) -> Profile | FlowError:
    """Parse a custom map for the flow: its profile, or the error naming line and
    field (line and column for YAML syntax). Blocking (CPU): run in an executor."""
    try:
        profile = parse_profile(PROFILE_CUSTOM, text, unit_id)
    except RegisterMapError as err:
        line = "-" if err.line is None else str(err.line)
        if err.field is None:
            column = yaml_column(text)
            values = {"line": line, "column": "-" if column is None else str(column)}
            return FlowError("invalid_yaml", CONF_REGISTER_MAP, {**values, "error": err.message})
        return FlowError(
            "invalid_register_map",
            CONF_REGISTER_MAP,
            {"line": line, "field": err.field, "error": err.message},
        )
    except RecursionError:  # deeply nested brackets
        return FlowError("invalid_yaml", CONF_REGISTER_MAP, {"error": "nested too deeply"})
    limit = _map_max_registers(text)
    if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 125):
        return FlowError(
            "invalid_register_map",
            CONF_REGISTER_MAP,
            {"field": "max_registers", "error": f"must be a whole number 1-125, got {limit!r}"},
        )
    return profile


def _map_max_registers(text: str) -> Any:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None
    return data.get("max_registers") if isinstance(data, dict) else None


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


_KINDS: Final = {
    CONNECTION_TCP: TransportKind.TCP,
    CONNECTION_RTU_OVER_TCP: TransportKind.RTU_OVER_TCP,
    CONNECTION_SERIAL: TransportKind.SERIAL,
    CONNECTION_DEMO: TransportKind.TCP,
}


def probe_flow_error(result: ProbeResult) -> FlowError | None:
    """The form error of a probe's outcome (None when the read worked)."""
    values = {
        "unit": str(result.unit_id),
        "register": str(result.address),
        "table": str(result.table),
    }
    match result.outcome:
        case ProbeOutcome.OK:
            return None
        case ProbeOutcome.NO_ANSWER_FROM_UNIT:
            return FlowError("no_answer_from_unit", CONF_UNIT_ID, values)
        case ProbeOutcome.WRONG_FRAMING:
            rtu = result.answering_framing is TransportKind.RTU_OVER_TCP
            return FlowError("wrong_framer_rtu" if rtu else "wrong_framer_tcp", placeholders=values)
    return FlowError(result.outcome.value, placeholders=values)


def _probe_error(
    err: ModbusError,
    connection: str,
    unit_id: int,
    table: Table,
    address: int,
    *,
    unit_answered: bool,
) -> FlowError:
    outcome = classify(err, _KINDS[connection], unit_answered=unit_answered)
    error = probe_flow_error(ProbeResult(outcome, unit_id, table, address, err))
    return error or FlowError("unknown")


async def async_check_connection(hass: HomeAssistant, data: Mapping[str, Any]) -> FlowError | None:
    """Open the connection once (no request). None when it opens."""
    if data[CONF_CONNECTION] == CONNECTION_SERIAL:
        port = str(data[CONF_SERIAL_PORT])
        status = await hass.async_add_executor_job(serial_port_status, port)
        if status is not None:
            return FlowError(status, CONF_SERIAL_PORT, {"serial_port": port})
    try:
        err = await check_connection(transport_config(data, VALIDATION_TIMEOUT))
    except Exception:  # any failure must become a form error
        _LOGGER.exception("Unexpected error opening %s", title_for(data))
        return FlowError("unknown")
    if err is not None:
        _LOGGER.debug("Connection check of %s failed: %s", title_for(data), err)
        return FlowError("cannot_connect")
    return None


async def async_probe_unit(
    data: Mapping[str, Any],
    unit_id: int,
    first: RegisterDefinition | None,
    *,
    unit_answered: bool = False,
    live: PymodbusTransport | None = None,
) -> FlowError | None:
    """Read the first register of a device (holding 0 without a map).

    ``live`` is the running entry's own transport: a gateway that takes one client,
    or a serial port, cannot be opened a second time while the entry polls.
    """
    table, address, count = (
        (first.spec.table, first.spec.address, first.spec.size) if first else (Table.HOLDING, 0, 1)
    )
    try:
        result = await probe_unit(
            transport_config(data, VALIDATION_TIMEOUT),
            unit_id,
            table,
            address,
            count,
            unit_answered=unit_answered,
            live=live,
        )
    except Exception:  # any failure must become a form error
        _LOGGER.exception("Unexpected error reading unit %s at %s", unit_id, title_for(data))
        return FlowError("unknown")
    return probe_flow_error(result)


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


def profiles_for(connection: str, profiles: list[ProfileInfo]) -> list[ProfileInfo]:
    """The profiles a connection offers: the demo profile only on the demo connection."""
    if connection == CONNECTION_DEMO:
        return profiles
    return [info for info in profiles if info.profile_id != PROFILE_DEMO]


def device_schema(
    profiles: list[ProfileInfo], default_unit: int, *, add_another: bool = True
) -> vol.Schema:
    """One device on the connection; no profile is preselected (it must be chosen)."""
    options = [SelectOptionDict(value=info.profile_id, label=info.name) for info in profiles]
    fields: dict[Any, Any] = {
        vol.Required(CONF_UNIT_ID, default=default_unit): _number(),
        vol.Required(CONF_PROFILE): _select(options, translation_key=CONF_PROFILE),
        vol.Optional(CONF_NAME): TextSelector(),
    }
    if add_another:
        fields[vol.Required(CONF_ADD_ANOTHER, default=False)] = BooleanSelector()
    return vol.Schema(fields)


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


class _DeviceChecks:
    """Checks of one device shared by the connection flow and the device subentry flow."""

    hass: HomeAssistant
    _profiles: list[ProfileInfo] | None = None

    async def _async_profiles(self) -> list[ProfileInfo]:
        if self._profiles is None:
            self._profiles = await self.hass.async_add_executor_job(list_profiles)
        return self._profiles

    async def _async_check_profile_device(
        self,
        data: Mapping[str, Any],
        device: Mapping[str, Any],
        *,
        unit_answered: bool = False,
        live: PymodbusTransport | None = None,
    ) -> FlowError | None:
        """Load a shipped profile (executor) and read its first register."""
        try:
            profile = await self.hass.async_add_executor_job(
                load_profile, device[CONF_PROFILE], device[CONF_UNIT_ID]
            )
        except RegisterMapError as err:
            _LOGGER.error("Profile %s is unusable: %s", device[CONF_PROFILE], err)
            return FlowError("invalid_profile", CONF_PROFILE, {"error": str(err)})
        first = profile.registers[0] if profile.registers else None
        return await async_probe_unit(
            data, int(device[CONF_UNIT_ID]), first, unit_answered=unit_answered, live=live
        )

    async def _async_check_custom_map(
        self,
        data: Mapping[str, Any],
        unit_id: int,
        text: str,
        *,
        unit_answered: bool = False,
        live: PymodbusTransport | None = None,
    ) -> tuple[Profile | None, FlowError | None]:
        """Parse a custom map (executor, never in the event loop), then read its first
        register; nothing is sent for a map that does not parse."""
        parsed = await self.hass.async_add_executor_job(parse_custom_map, text, unit_id)
        if isinstance(parsed, FlowError):
            return None, parsed
        first = parsed.registers[0] if parsed.registers else None
        error = await async_probe_unit(data, unit_id, first, unit_answered=unit_answered, live=live)
        return parsed, error


def _default_name(
    device: Mapping[str, Any], profiles: list[ProfileInfo], taken: set[str], map_name: str | None
) -> str:
    """A device's name when none was typed: the map's or profile's, unique on the entry."""
    names = {info.profile_id: info.name for info in profiles}
    base = map_name or names.get(device[CONF_PROFILE], str(device[CONF_PROFILE]))
    return base if base not in taken else f"{base} {device[CONF_UNIT_ID]}"


def _custom_map_name(profile: Profile | None) -> str | None:
    """The device name a custom map gives itself (``name:``), if any."""
    if profile is None or profile.name in (PROFILE_CUSTOM, ""):
        return None
    return profile.name


def _next_unit(connection: str, used: set[int]) -> int:
    low, high = unit_range(connection)
    unit = max(DEFAULT_UNIT_ID, low)
    while unit in used and unit < high:
        unit += 1
    return unit


def _form[R: FlowResult[Any, Any]](
    flow: FlowHandler[Any, R, Any],
    step_id: str,
    schema: vol.Schema,
    suggested: Mapping[str, Any] | None,
    error: FlowError | None,
    *,
    extra: Mapping[str, str] | None = None,
) -> R:
    """A form, refilled with what the user typed, with its error if any."""
    values = placeholders(extra)
    errors: dict[str, str] = {}
    if error is not None:
        errors[error.target] = error.key
        values.update(error.placeholders)
    result: R = flow.async_show_form(
        step_id=step_id,
        data_schema=flow.add_suggested_values_to_schema(schema, suggested),
        errors=errors,
        description_placeholders=values,
    )
    return result


async def async_serial_port_owner(
    hass: HomeAssistant, port: str, exclude_entry_id: str | None = None
) -> ConfigEntry | None:
    """The entry that already uses serial port ``port`` (any path to the same device)."""
    for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False):
        if (
            entry.entry_id == exclude_entry_id
            or entry.data.get(CONF_CONNECTION) != CONNECTION_SERIAL
        ):
            continue
        other = str(entry.data.get(CONF_SERIAL_PORT, ""))
        if await hass.async_add_executor_job(same_serial_port, port, other):
            return entry
    return None


def _serial_in_use(port: str, owner: ConfigEntry) -> FlowError:
    return FlowError(
        "serial_port_in_use", CONF_SERIAL_PORT, {"serial_port": port, "entry": owner.title}
    )


class AdaptiveModbusConfigFlow(_DeviceChecks, ConfigFlow, domain=DOMAIN):
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
        """The options flow (polling tuning)."""
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

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
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
        if data[CONF_CONNECTION] == CONNECTION_SERIAL:
            port = str(data[CONF_SERIAL_PORT])
            owner = await async_serial_port_owner(self.hass, port)
            if owner is not None:
                return _serial_in_use(port, owner)
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
        data: dict[str, Any] = {CONF_CONNECTION: CONNECTION_DEMO, CONF_SEED: seed}
        self._async_abort_entries_match(data)
        await self.async_set_unique_id(unique_id_for(data))
        self._abort_if_unique_id_configured()
        device = {
            CONF_UNIT_ID: DEFAULT_UNIT_ID,
            CONF_PROFILE: PROFILE_DEMO,
            CONF_NAME: DEMO_DEVICE_NAME,
        }
        return self.async_create_entry(
            title=title_for(data), data=data, subentries=[_subentry(device)]
        )

    # -- devices --------------------------------------------------------------------

    async def async_step_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
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
                    return await self._async_device_done(device, profiles, add_another, None)
        schema = device_schema(profiles, _next_unit(connection, taken))
        return self._show("device", schema, user_input, error)

    async def async_step_custom_map(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The YAML register map of a custom device."""
        error: FlowError | None = None
        device = self._pending
        if user_input is not None:
            text = str(user_input.get(CONF_REGISTER_MAP) or "")
            profile, error = await self._async_check_custom_map(
                self._data, int(device[CONF_UNIT_ID]), text, unit_answered=bool(self._devices)
            )
            if error is None:
                stored = {k: v for k, v in device.items() if k != CONF_ADD_ANOTHER}
                stored[CONF_REGISTER_MAP] = text
                profiles = await self._async_profiles()
                return await self._async_device_done(
                    stored, profiles, bool(device.get(CONF_ADD_ANOTHER)), _custom_map_name(profile)
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
        self,
        device: dict[str, Any],
        profiles: list[ProfileInfo],
        add_another: bool,
        map_name: str | None,
    ) -> ConfigFlowResult:
        if not device[CONF_NAME]:
            taken = {existing[CONF_NAME] for existing in self._devices}
            device[CONF_NAME] = _default_name(device, profiles, taken, map_name)
        self._devices.append(device)
        self._pending = {}
        connection = str(self._data[CONF_CONNECTION])
        if add_another:
            used = {int(existing[CONF_UNIT_ID]) for existing in self._devices}
            schema = device_schema(profiles_for(connection, profiles), _next_unit(connection, used))
            return self._show("device", schema, None, None)
        return self.async_create_entry(
            title=title_for(self._data),
            data=self._data,
            subentries=[_subentry(device) for device in self._devices],
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
        if candidate[CONF_CONNECTION] == CONNECTION_SERIAL:
            port = str(candidate[CONF_SERIAL_PORT])
            owner = await async_serial_port_owner(self.hass, port, entry.entry_id)
            if owner is not None:
                return _serial_in_use(port, owner)
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
        """A form, refilled with what the user typed, with its error if any."""
        return _form(self, step_id, schema, suggested, error, extra=extra)


def _subentry(device: Mapping[str, Any]) -> ConfigSubentryData:
    """The config subentry of one device; its unique id is the unit id."""
    return ConfigSubentryData(
        data=subentry_data(device),
        subentry_type=SUBENTRY_DEVICE,
        title=device_title(device),
        unique_id=str(device[CONF_UNIT_ID]),
    )


class DeviceSubentryFlow(_DeviceChecks, ConfigSubentryFlow):
    """Add a device to a connection, or edit one (unit id, profile, map, name)."""

    def __init__(self) -> None:
        """Nothing chosen yet."""
        self._pending: dict[str, Any] = {}
        self._profiles: list[ProfileInfo] | None = None

    def _editing(self) -> Any:
        """The subentry being edited, or None when adding."""
        return self._get_reconfigure_subentry() if self.source == SOURCE_RECONFIGURE else None

    def _live_transport(self) -> PymodbusTransport | None:
        """The loaded entry's own connection (a second one may be refused)."""
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

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
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
                    entry.data, device, unit_answered=bool(taken), live=self._live_transport()
                )
                if error is None:
                    return self._async_finish(device, profiles, None)
        elif (editing := self._editing()) is not None:
            suggested = {
                key: editing.data[key]
                for key in (CONF_UNIT_ID, CONF_PROFILE, CONF_NAME)
                if key in editing.data
            }
        schema = device_schema(profiles, _next_unit(connection, taken), add_another=False)
        return _form(self, step_id, schema, suggested, error)

    async def async_step_custom_map(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The device's YAML register map (an edited device shows its map as it is)."""
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
                return self._async_finish(stored, profiles, _custom_map_name(profile))
            suggested: Mapping[str, Any] = user_input
        else:
            editing = self._editing()
            current = editing.data.get(CONF_REGISTER_MAP) if editing is not None else None
            if current is None:
                current = await self.hass.async_add_executor_job(custom_template)
            suggested = {CONF_REGISTER_MAP: current}
        return _form(
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
            device[CONF_NAME] = _default_name(device, profiles, taken, map_name)
        unit_id = int(device[CONF_UNIT_ID])
        if entry.state is not ConfigEntryState.LOADED:
            # a loaded entry reloads through its update listener; one that failed
            # (a bad map, a silent device) has none: retry it with the new device,
            # once this step has stored it (call_soon: after the flow finishes)
            self.hass.loop.call_soon(self.hass.config_entries.async_schedule_reload, entry.entry_id)
        if editing is None:
            return self.async_create_entry(
                title=device_title(device), data=device, unique_id=str(unit_id)
            )
        # the unit id moved: entity ids, names and settings move with it
        async_move_unit(self.hass, entry, int(editing.data[CONF_UNIT_ID]), unit_id)
        return self.async_update_and_abort(
            entry, editing, data=device, title=device_title(device), unique_id=str(unit_id)
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
