"""Checks, schemas and helpers shared by the config flow and the device subentry flow.

No flow classes here: validation of what users type (ports, unit ids, serial
devices, register maps), the engine probe's outcomes as translated form errors,
form schemas, and the device checks both flows run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
import logging
import os
from pathlib import Path
import stat
from typing import Any, Final, Literal

from homeassistant.config_entries import ConfigEntry, ConfigSubentryData
from homeassistant.core import HomeAssistant
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
import voluptuous as vol
import yaml

from .const import (
    CONF_BAUDRATE,
    CONF_BYTESIZE,
    CONF_CONNECTION,
    CONF_HOST,
    CONF_NAME,
    CONF_PARITY,
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
    DEFAULT_PORT,
    DEFAULT_SEED,
    DEFAULT_UNIT_ID,
    DOMAIN,
    NAME,
    PROFILE_CUSTOM,
    PROFILE_DEMO,
    SUBENTRY_DEVICE,
)
from .descriptions import check_presentation
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
from .engine.registers import Table, UnitIdError, unit_id_range, validate_unit_id
from .engine.transport import PymodbusTransport, TransportConfig, TransportKind
from .hub import transport_from_entry
from .profile_catalog import ProfileInfo, list_profiles
from .subentries import device_title, subentry_data

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


def number_selector(
    minimum: float | None = None,
    maximum: float | None = None,
    step: float | Literal["any"] = 1,
    unit: str | None = None,
) -> NumberSelector:
    """Build a number box selector, optionally bounded and stepped."""
    config = NumberSelectorConfig(mode=_BOX, step=step)
    if minimum is not None:
        config["min"] = minimum
    if maximum is not None:
        config["max"] = maximum
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def select_selector(
    options: list[SelectOptionDict] | list[str],
    *,
    translation_key: str | None = None,
    custom_value: bool = False,
) -> SelectSelector:
    """Build a dropdown selector of ``options``, translated when a key is given."""
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


def whole_number(value: Any) -> int | None:
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
    """Return the TCP port 1-65535 typed, or None."""
    port = whole_number(value)
    return port if port is not None and 1 <= port <= 65535 else None


def unit_range(connection: str) -> tuple[int, int]:
    """Return the unit ids a connection can address (0-255 on TCP, 1-247 on RTU)."""
    return unit_id_range(_framing(connection))


def _framing(connection: str) -> str:
    """Return the engine's framing name of a connection (the demo speaks Modbus TCP)."""
    return CONNECTION_TCP if connection == CONNECTION_DEMO else connection


def parse_unit_id(value: Any, connection: str = CONNECTION_TCP) -> int | None:
    """Return the Modbus unit id typed if the connection can address it, else None."""
    unit = whole_number(value)
    low, high = unit_range(connection)
    return unit if unit is not None and low <= unit <= high else None


def check_unit(
    value: Any, connection: str, taken: set[int]
) -> tuple[int, FlowError | None]:
    """Return the unit id typed for a device, or the error saying why it cannot be used.

    Unit 0 is the broadcast address on an RTU line: no device answers a read to it.
    """
    typed = whole_number(value)
    try:
        unit = validate_unit_id(-1 if typed is None else typed, _framing(connection))
    except UnitIdError as err:
        if err.reason == "broadcast":
            return 0, FlowError("broadcast_unit", CONF_UNIT_ID, {"unit": "0"})
        bounds = {"min_unit": str(err.allowed[0]), "max_unit": str(err.allowed[1])}
        return -1, FlowError("invalid_unit_id", CONF_UNIT_ID, bounds)
    if unit in taken:
        return unit, FlowError("unit_already_added", CONF_UNIT_ID, {"unit": str(unit)})
    return unit, None


def unique_id_for(data: Mapping[str, Any]) -> str:
    """Return the entry's unique id: one entry per endpoint."""
    connection = data[CONF_CONNECTION]
    if connection == CONNECTION_DEMO:
        return f"demo:{data.get(CONF_SEED, DEFAULT_SEED)}"
    if connection == CONNECTION_SERIAL:
        return f"serial:{data[CONF_SERIAL_PORT]}"
    return f"tcp:{data[CONF_HOST]}:{data[CONF_PORT]}"


def title_for(data: Mapping[str, Any]) -> str:
    """Return the entry title: the endpoint (not translated: it is an address)."""
    connection = data[CONF_CONNECTION]
    if connection == CONNECTION_DEMO:
        seed = data.get(CONF_SEED, DEFAULT_SEED)
        return f"{NAME} demo" if seed == DEFAULT_SEED else f"{NAME} demo {seed}"
    if connection == CONNECTION_SERIAL:
        return str(data[CONF_SERIAL_PORT])
    return f"{data[CONF_HOST]}:{data[CONF_PORT]}"


def transport_config(data: Mapping[str, Any], timeout: float) -> TransportConfig:
    """Return a one-shot transport config for validation (entry settings, no retries)."""
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
        mode = Path(port).stat().st_mode  # follows /dev/serial/by-id links
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
    """Return the 1-based column of ``text``'s YAML syntax error, if it has one."""
    try:
        yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        return None if mark is None else mark.column + 1
    except (yaml.YAMLError, RecursionError):
        return None
    return None


# a custom map longer than this is refused before parsing (2,000 registers in flow
# style take ~150 kB); error texts shown in a form are cut to a readable length
MAX_MAP_CHARS: Final = 1_000_000
MAX_ERROR_CHARS: Final = 300


def _short(message: str) -> str:
    return (
        message
        if len(message) <= MAX_ERROR_CHARS
        else message[: MAX_ERROR_CHARS - 1] + "…"
    )


def parse_custom_map(text: str, unit_id: int) -> Profile | FlowError:
    """Parse a custom map for the flow: its profile, or the error naming the line.

    The error names line and field (line and column for YAML syntax). Blocking
    (CPU): run it in an executor.
    """
    if len(text) > MAX_MAP_CHARS:
        size = f"{len(text):,} characters, at most {MAX_MAP_CHARS:,}"
        return FlowError("register_map_too_large", CONF_REGISTER_MAP, {"error": size})
    try:
        profile = parse_profile(PROFILE_CUSTOM, text, unit_id)
        check_presentation(profile.registers, custom=True)  # HA meaning, field and line
    except RegisterMapError as err:
        line = "-" if err.line is None else str(err.line)
        message = _short(err.message)
        if err.field is None:
            column = yaml_column(text)
            values = {"line": line, "column": "-" if column is None else str(column)}
            return FlowError(
                "invalid_yaml", CONF_REGISTER_MAP, {**values, "error": message}
            )
        return FlowError(
            "invalid_register_map",
            CONF_REGISTER_MAP,
            {"line": line, "field": err.field, "error": message},
        )
    except RecursionError:  # deeply nested brackets
        return FlowError(
            "invalid_yaml", CONF_REGISTER_MAP, {"error": "nested too deeply"}
        )
    limit = _map_max_registers(text) if "max_registers" in text else None
    if limit is not None and not (isinstance(limit, int) and 1 <= limit <= 125):
        return FlowError(
            "invalid_register_map",
            CONF_REGISTER_MAP,
            {
                "field": "max_registers",
                "error": _short(f"must be a whole number 1-125, got {limit!r}"),
            },
        )
    return profile


def _map_max_registers(text: str) -> Any:
    """Return the map's top-level ``max_registers`` as written.

    The text is parsed again: the profile keeps only whole numbers.
    """
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return None
    return data.get("max_registers") if isinstance(data, dict) else None


def detect_serial_ports() -> list[SelectOptionDict]:
    """List the serial ports of this machine. Blocking (scans /sys or the registry)."""
    try:
        from serial.tools import list_ports  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError:
        return []
    options: list[SelectOptionDict] = []
    for port in sorted(list_ports.comports(), key=lambda info: str(info.device)):
        device = str(port.device)
        description = str(port.description or "")
        label = (
            f"{device} - {description}"
            if description and description != "n/a"
            else device
        )
        options.append(SelectOptionDict(value=device, label=label))
    return options


_KINDS: Final = {
    CONNECTION_TCP: TransportKind.TCP,
    CONNECTION_RTU_OVER_TCP: TransportKind.RTU_OVER_TCP,
    CONNECTION_SERIAL: TransportKind.SERIAL,
    CONNECTION_DEMO: TransportKind.TCP,
}


def probe_flow_error(result: ProbeResult) -> FlowError | None:
    """Return the form error of a probe's outcome (None when the read worked)."""
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
            return FlowError(
                "wrong_framer_rtu" if rtu else "wrong_framer_tcp", placeholders=values
            )
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


async def async_check_connection(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> FlowError | None:
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
        (first.spec.table, first.spec.address, first.spec.size)
        if first
        else (Table.HOLDING, 0, 1)
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
        _LOGGER.exception(
            "Unexpected error reading unit %s at %s", unit_id, title_for(data)
        )
        return FlowError("unknown")
    return probe_flow_error(result)


# -- schemas --------------------------------------------------------------------------


def network_schema() -> vol.Schema:
    """Host and port (ranges are checked in code to give a translated error)."""
    return vol.Schema(
        {
            vol.Required(CONF_HOST): TextSelector(),
            vol.Required(CONF_PORT, default=DEFAULT_PORT): number_selector(),
        }
    )


def serial_schema(ports: list[SelectOptionDict]) -> vol.Schema:
    """Build the serial line form: detected ports offered, any path accepted."""
    return vol.Schema(
        {
            vol.Required(CONF_SERIAL_PORT): select_selector(ports, custom_value=True),
            vol.Required(CONF_BAUDRATE, default=str(DEFAULT_BAUDRATE)): select_selector(
                list(BAUDRATES), custom_value=True
            ),
            vol.Required(CONF_BYTESIZE, default="8"): select_selector(list(BYTESIZES)),
            vol.Required(CONF_PARITY, default="N"): select_selector(
                list(PARITIES), translation_key=CONF_PARITY
            ),
            vol.Required(CONF_STOPBITS, default="1"): select_selector(list(STOPBITS)),
        }
    )


def profiles_for(connection: str, profiles: list[ProfileInfo]) -> list[ProfileInfo]:
    """Return the profiles a connection offers (the demo fleet's only on the demo)."""
    if connection == CONNECTION_DEMO:
        return profiles
    return [info for info in profiles if not info.profile_id.startswith(PROFILE_DEMO)]


def device_schema(
    profiles: list[ProfileInfo], default_unit: int, *, add_another: bool = True
) -> vol.Schema:
    """One device on the connection; no profile is preselected (it must be chosen)."""
    options = [
        SelectOptionDict(value=info.profile_id, label=info.name) for info in profiles
    ]
    fields: dict[Any, Any] = {
        vol.Required(CONF_UNIT_ID, default=default_unit): number_selector(),
        vol.Required(CONF_PROFILE): select_selector(
            options, translation_key=CONF_PROFILE
        ),
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
    {vol.Required(CONF_SEED, default=DEFAULT_SEED): number_selector(0, 2**31 - 1)}
)


class DeviceChecks:
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
            data,
            int(device[CONF_UNIT_ID]),
            first,
            unit_answered=unit_answered,
            live=live,
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
        """Parse a custom map in the executor, then read its first register.

        Nothing is sent for a map that does not parse.
        """
        parsed = await self.hass.async_add_executor_job(parse_custom_map, text, unit_id)
        if isinstance(parsed, FlowError):
            return None, parsed
        first = parsed.registers[0] if parsed.registers else None
        error = await async_probe_unit(
            data, unit_id, first, unit_answered=unit_answered, live=live
        )
        return parsed, error


def default_device_name(
    device: Mapping[str, Any],
    profiles: list[ProfileInfo],
    taken: set[str],
    map_name: str | None,
) -> str:
    """Name a device when none was typed: the map's or profile's, unique on the entry."""
    names = {info.profile_id: info.name for info in profiles}
    base = map_name or names.get(device[CONF_PROFILE], str(device[CONF_PROFILE]))
    return base if base not in taken else f"{base} {device[CONF_UNIT_ID]}"


def custom_map_name(profile: Profile | None) -> str | None:
    """Return the device name a custom map gives itself (``name:``), if any."""
    if profile is None or profile.name in (PROFILE_CUSTOM, ""):
        return None
    return profile.name


def next_free_unit(connection: str, used: set[int]) -> int:
    """Return the first unit id the connection can address that ``used`` lacks."""
    low, high = unit_range(connection)
    unit = max(DEFAULT_UNIT_ID, low)
    while unit in used and unit < high:
        unit += 1
    return unit


def show_form[R: FlowResult[Any, Any]](
    flow: FlowHandler[Any, R, Any],
    step_id: str,
    schema: vol.Schema,
    suggested: Mapping[str, Any] | None,
    error: FlowError | None,
    *,
    extra: Mapping[str, str] | None = None,
) -> R:
    """Show a form, refilled with what the user typed, with its error if any."""
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
    """Return the entry that already uses serial port ``port`` (any path to it)."""
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


def serial_in_use_error(port: str, owner: ConfigEntry) -> FlowError:
    """Return the error naming the entry that already uses serial port ``port``."""
    return FlowError(
        "serial_port_in_use",
        CONF_SERIAL_PORT,
        {"serial_port": port, "entry": owner.title},
    )


def device_subentry(device: Mapping[str, Any]) -> ConfigSubentryData:
    """Build the config subentry of one device; its unique id is the unit id."""
    return ConfigSubentryData(
        data=subentry_data(device),
        subentry_type=SUBENTRY_DEVICE,
        title=device_title(device),
        unique_id=str(device[CONF_UNIT_ID]),
    )


def network_data(
    user_input: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, FlowError | None]:
    """Check host and port typed for a network connection: entry data or the error."""
    host = str(user_input.get(CONF_HOST) or "").strip()
    if not host or any(char.isspace() for char in host):
        return None, FlowError("invalid_host", CONF_HOST)
    port = parse_port(user_input.get(CONF_PORT))
    if port is None:
        return None, FlowError("invalid_port", CONF_PORT)
    return {CONF_HOST: host, CONF_PORT: port}, None


def serial_data(
    user_input: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, FlowError | None]:
    """Check the serial port and line settings typed: entry data or the error."""
    port = str(user_input.get(CONF_SERIAL_PORT) or "").strip()
    if not port:
        return None, FlowError(
            "serial_port_missing", CONF_SERIAL_PORT, {"serial_port": "-"}
        )
    baudrate = whole_number(user_input.get(CONF_BAUDRATE))
    if baudrate is None or not 50 <= baudrate <= 4_000_000:
        return None, FlowError("invalid_baudrate", CONF_BAUDRATE)
    return {
        CONF_SERIAL_PORT: port,
        CONF_BAUDRATE: baudrate,
        CONF_BYTESIZE: int(user_input.get(CONF_BYTESIZE, 8)),
        CONF_PARITY: str(user_input.get(CONF_PARITY, "N")),
        CONF_STOPBITS: int(user_input.get(CONF_STOPBITS, 1)),
    }, None
