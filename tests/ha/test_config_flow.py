"""Config, options and reconfigure flows against real Modbus servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Sequence
import contextlib
import json
from pathlib import Path
import re
import socket
import threading
from typing import Any
from unittest.mock import AsyncMock, patch

from homeassistant.config_entries import SOURCE_IMPORT, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry  # type: ignore[import-untyped]

from custom_components.adaptive_modbus import config_flow, flow_checks
from custom_components.adaptive_modbus.const import (
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
    CONF_VIEWED_FACTOR,
    DOMAIN,
)
from custom_components.adaptive_modbus.engine.device_probe import (
    ProbeOutcome,
    ProbeResult,
    classify,
)
from custom_components.adaptive_modbus.engine.errors import (
    DeviceFailure,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from custom_components.adaptive_modbus.engine.register_map import RegisterMapError
from custom_components.adaptive_modbus.engine.registers import Table
from custom_components.adaptive_modbus.engine.simulator.device import SimulatedDevice
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer
from custom_components.adaptive_modbus.engine.transport import (
    PymodbusTransport,
    TransportKind,
    classify_exception_code,
)
from custom_components.adaptive_modbus.flow_checks import CONF_ADD_ANOTHER

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts(["127.0.0.1"]),
]

PACKAGE = Path(__file__).resolve().parents[2] / "custom_components" / "adaptive_modbus"
HOST = "127.0.0.1"

# a custom map whose first register is the demo device's illegal-address hole
HOLE_MAP = """registers:
  - name: Hole
    table: input
    address: 10
"""
GOOD_MAP = """registers:
  - name: Outdoor
    table: input
    address: 0
    data_type: int16
    scale: 0.1
    unit: "°C"
    device_class: temperature
    state_class: measurement
    tolerance: 0.2
"""
BAD_MAP = """registers:
  - name: Outdoor
    table: input
    address: 0
    data_type: float99
"""


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make validation requests time out quickly."""
    monkeypatch.setattr(flow_checks, "VALIDATION_TIMEOUT", 0.4)


@pytest.fixture(autouse=True)
def mock_setup_entry(hass: HomeAssistant) -> Generator[AsyncMock]:
    """Keep created entries from being set up (the coordinator is tested elsewhere).

    Depends on ``hass`` so the patches outlive it: entries unload at hass teardown.
    """
    with (
        patch(
            "custom_components.adaptive_modbus.async_setup_entry", return_value=True
        ) as mock_setup,
        patch(
            "custom_components.adaptive_modbus.async_unload_entry", return_value=True
        ),
    ):
        yield mock_setup


class MultiUnitDevice:
    """Serves several simulated units; unknown units get no answer."""

    def __init__(self, unit_ids: Sequence[int]) -> None:
        """Build a demo device for each of ``unit_ids``."""
        self.units = {unit: SimulatedDevice(seed=42, unit_id=unit) for unit in unit_ids}

    def _unit(self, unit_id: int) -> SimulatedDevice:
        if unit_id not in self.units:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)
        return self.units[unit_id]

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read from the addressed unit; others never answer."""
        return self._unit(unit_id).read(unit_id, table, address, count)

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write to the addressed unit."""
        self._unit(unit_id).write_registers(unit_id, address, values)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Write a coil of the addressed unit."""
        self._unit(unit_id).write_coil(unit_id, address, value)


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncGenerator[SimulatorServer]:
    """Serve the demo device (unit 1) over Modbus TCP on loopback."""
    server = SimulatorServer(SimulatedDevice(seed=42), host=HOST, port=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def sim2(socket_enabled: None) -> AsyncGenerator[SimulatorServer]:
    """Two demo units (1 and 2) behind one Modbus TCP server."""
    server = SimulatorServer(
        MultiUnitDevice([1, 2]), host=HOST, port=0, unit_ids=[1, 2]
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def rtu_sim(socket_enabled: None) -> AsyncGenerator[SimulatorServer]:
    """Serve the demo device speaking RTU frames over TCP."""
    server = SimulatorServer(SimulatedDevice(seed=42), host=HOST, port=0, framer="rtu")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def silent_port(socket_enabled: None) -> AsyncGenerator[int]:
    """Run a TCP server that accepts connections and never answers."""

    async def swallow(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, HOST, 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    server.close_clients()
    await server.wait_closed()


@pytest.fixture
def closed_port(socket_enabled: None) -> int:
    """Provide a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


async def start(hass: HomeAssistant, step: str) -> dict[str, Any]:
    """Open the user flow and pick ``step`` from the menu."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return dict(result)


async def configure(
    hass: HomeAssistant, result: dict[str, Any], data: dict[str, Any]
) -> Any:
    """Submit a form."""
    return await hass.config_entries.flow.async_configure(result["flow_id"], data)


Submit = Callable[[HomeAssistant, Any, dict[str, Any]], Awaitable[Any]]


async def refused(
    hass: HomeAssistant,
    result: Any,
    data: dict[str, Any],
    errors: dict[str, str],
    step: str | None = None,
    *,
    submit: Submit = configure,
) -> Any:
    """Submit ``data``: the form comes back (at ``step``) with ``errors``; return it."""
    result = await submit(hass, result, data)
    assert result["type"] is FlowResultType.FORM, result
    if step is not None:
        assert result["step_id"] == step
    assert result["errors"] == errors
    return result


async def tcp_to_device(
    hass: HomeAssistant, port: int, step: str = "tcp"
) -> dict[str, Any]:
    """Walk the flow to the device form of a network connection."""
    result = await start(hass, step)
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: port})
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "device"
    assert result["errors"] == {}
    return dict(result)


def device_input(
    unit: int = 1, profile: str = "sdm120", **extra: Any
) -> dict[str, Any]:
    """Return a device form submission (SDM120: the demo serves its first register)."""
    return {CONF_UNIT_ID: unit, CONF_PROFILE: profile, CONF_ADD_ANOTHER: False, **extra}


def devices(result: Any) -> list[dict[str, Any]]:
    """Return the device subentries' data of a created entry, in creation order."""
    entry = result["result"]
    subs = list(entry.subentries.values())
    assert all(sub.subentry_type == "device" for sub in subs)
    assert [sub.unique_id for sub in subs] == [
        str(sub.data[CONF_UNIT_ID]) for sub in subs
    ]
    assert [sub.title for sub in subs] == [sub.data[CONF_NAME] for sub in subs]
    return [dict(sub.data) for sub in subs]


def suggested(result: Any, field: str) -> Any:
    """Return the value a form shows in ``field`` (suggested, else default)."""
    for key in result["data_schema"].schema:
        if key == field:
            description = key.description or {}
            if "suggested_value" in description:
                return description["suggested_value"]
            return key.default() if callable(key.default) else None
    raise KeyError(field)


# -- menu and network connections --------------------------------------------------------


async def test_menu(hass: HomeAssistant) -> None:
    """The first step offers the four kinds of connection."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert list(result["menu_options"]) == ["tcp", "rtu_over_tcp", "serial", "demo"]  # type: ignore[call-overload]


async def test_tcp_success(hass: HomeAssistant, sim: SimulatorServer) -> None:
    """A TCP connection and one demo device: the first register is really read."""
    result = await tcp_to_device(hass, sim.port)
    assert suggested(result, CONF_UNIT_ID) == 1
    sim.requests.clear()
    result = await configure(hass, result, device_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"{HOST}:{sim.port}"
    assert result["data"] == {
        CONF_CONNECTION: "tcp",
        CONF_HOST: HOST,
        CONF_PORT: sim.port,
    }
    assert devices(result) == [
        {CONF_UNIT_ID: 1, CONF_PROFILE: "sdm120", CONF_NAME: "Eastron SDM120"}
    ]
    assert result["result"].version == 2
    assert result["result"].unique_id == f"tcp:{HOST}:{sim.port}"
    assert [(r.unit_id, r.function_code, r.address) for r in sim.requests] == [
        (1, 4, 0)
    ]


async def test_tcp_cannot_connect(hass: HomeAssistant, closed_port: int) -> None:
    """Nothing listening: cannot_connect, and the form keeps the typed values."""
    result = await start(hass, "tcp")
    result = await refused(
        hass,
        result,
        {CONF_HOST: HOST, CONF_PORT: closed_port},
        {"base": "cannot_connect"},
        "tcp",
    )
    assert suggested(result, CONF_HOST) == HOST
    assert suggested(result, CONF_PORT) == closed_port


@pytest.mark.parametrize("port", [0, 70000, 502.5, -1])
async def test_tcp_invalid_port(hass: HomeAssistant, port: float) -> None:
    """A port that is not a whole number 1-65535 is refused with a translated error."""
    result = await start(hass, "tcp")
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: port})
    assert result["errors"] == {CONF_PORT: "invalid_port"}


async def test_tcp_invalid_host(hass: HomeAssistant) -> None:
    """A host with spaces (or only spaces) is refused before connecting."""
    result = await start(hass, "tcp")
    result = await configure(hass, result, {CONF_HOST: "my host", CONF_PORT: 502})
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await configure(hass, result, {CONF_HOST: "  ", CONF_PORT: 502})
    assert result["errors"] == {CONF_HOST: "invalid_host"}


async def test_tcp_timeout(hass: HomeAssistant, silent_port: int) -> None:
    """A server that accepts but never answers: timeout (not 'no answer from unit')."""
    result = await tcp_to_device(hass, silent_port)
    result = await refused(hass, result, device_input(), {"base": "timeout"}, "device")
    assert result["description_placeholders"]["unit"] == "1"


async def test_tcp_no_answer_from_unit(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """The server answers unit 1 but not unit 7: no_answer_from_unit naming the unit."""
    result = await tcp_to_device(hass, sim.port)
    result = await refused(
        hass,
        result,
        device_input(7, name="Seven"),
        {CONF_UNIT_ID: "no_answer_from_unit"},
        "device",
    )
    assert result["description_placeholders"]["unit"] == "7"
    # nothing typed is lost
    assert suggested(result, CONF_UNIT_ID) == 7
    assert suggested(result, CONF_NAME) == "Seven"
    # fixing the unit id finishes the flow
    result = await configure(hass, result, device_input(1, name="Seven"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result)[0][CONF_NAME] == "Seven"


async def test_invalid_unit_id(hass: HomeAssistant, sim: SimulatorServer) -> None:
    """On Modbus TCP unit ids outside 0-255 are refused before any request."""
    result = await tcp_to_device(hass, sim.port)
    sim.requests.clear()
    for unit in (256, 1.5, -1):
        result = await configure(hass, result, device_input(unit))  # type: ignore[arg-type]
        assert result["errors"] == {CONF_UNIT_ID: "invalid_unit_id"}
        placeholders = result["description_placeholders"]
        assert (placeholders["min_unit"], placeholders["max_unit"]) == ("0", "255")
    assert not sim.requests


async def test_tcp_unit_255_accepted(hass: HomeAssistant, socket_enabled: None) -> None:
    """Modbus TCP devices addressed as unit 255 are accepted and really read."""
    server = SimulatorServer(MultiUnitDevice([255]), host=HOST, port=0, unit_ids=[255])
    await server.start()
    try:
        result = await tcp_to_device(hass, server.port)
        result = await configure(hass, result, device_input(255))
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        assert devices(result)[0][CONF_UNIT_ID] == 255
        assert [r.unit_id for r in server.requests] == [255]
    finally:
        await server.stop()


async def test_rtu_unit_range(hass: HomeAssistant, rtu_sim: SimulatorServer) -> None:
    """On an RTU line unit 0 (broadcast) and 248-255 are refused, each with its text."""
    result = await tcp_to_device(hass, rtu_sim.port, step="rtu_over_tcp")
    rtu_sim.requests.clear()
    result = await configure(hass, result, device_input(0))
    assert result["errors"] == {CONF_UNIT_ID: "broadcast_unit"}
    result = await configure(hass, result, device_input(248))
    assert result["errors"] == {CONF_UNIT_ID: "invalid_unit_id"}
    placeholders = result["description_placeholders"]
    assert (placeholders["min_unit"], placeholders["max_unit"]) == ("1", "247")
    assert not rtu_sim.requests


async def test_illegal_address(hass: HomeAssistant, sim: SimulatorServer) -> None:
    """A custom map whose first register is in the device's hole: illegal_address at 10."""
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom"))
    assert result["step_id"] == "custom_map"
    result = await refused(
        hass,
        result,
        {CONF_REGISTER_MAP: HOLE_MAP},
        {"base": "illegal_address"},
        "custom_map",
    )
    placeholders = result["description_placeholders"]
    assert (placeholders["register"], placeholders["table"], placeholders["unit"]) == (
        "10",
        "input",
        "1",
    )
    assert suggested(result, CONF_REGISTER_MAP) == HOLE_MAP


@pytest.mark.parametrize("unique_id", [True, False])
async def test_duplicate_endpoint_aborts(
    hass: HomeAssistant, sim: SimulatorServer, unique_id: bool
) -> None:
    """Test that a second entry for the same host and port is refused.

    Also when the stored entry has no unique id: matched on its data.
    """
    MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id=f"tcp:{HOST}:{sim.port}" if unique_id else None,
        data={CONF_CONNECTION: "tcp", CONF_HOST: HOST, CONF_PORT: sim.port},
    ).add_to_hass(hass)
    for step in ("tcp", "rtu_over_tcp"):
        result = await start(hass, step)
        result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "already_configured"


async def test_rtu_over_tcp_success(
    hass: HomeAssistant, rtu_sim: SimulatorServer
) -> None:
    """RTU framing over TCP is validated with a real RTU-framed server."""
    result = await tcp_to_device(hass, rtu_sim.port, step="rtu_over_tcp")
    result = await configure(hass, result, device_input(profile="sdm120", name="Meter"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_CONNECTION] == "rtu_over_tcp"
    assert devices(result) == [
        {CONF_UNIT_ID: 1, CONF_PROFILE: "sdm120", CONF_NAME: "Meter"}
    ]
    assert result["result"].unique_id == f"tcp:{HOST}:{rtu_sim.port}"


async def test_rtu_over_tcp_no_answer(
    hass: HomeAssistant, rtu_sim: SimulatorServer
) -> None:
    """On an RTU line, silence means this unit did not answer."""
    result = await tcp_to_device(hass, rtu_sim.port, step="rtu_over_tcp")
    result = await configure(hass, result, device_input(9))
    assert result["errors"] == {CONF_UNIT_ID: "no_answer_from_unit"}
    assert result["description_placeholders"]["unit"] == "9"


# -- devices ----------------------------------------------------------------------------


async def test_second_device(hass: HomeAssistant, sim2: SimulatorServer) -> None:
    """'Add another' loops the device step; a unit cannot be added twice."""
    result = await tcp_to_device(hass, sim2.port)
    result = await configure(hass, result, device_input(1, add_another=True))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "device"
    assert suggested(result, CONF_UNIT_ID) == 2  # the next free unit
    result = await configure(hass, result, device_input(1))
    assert result["errors"] == {CONF_UNIT_ID: "unit_already_added"}
    assert result["description_placeholders"]["unit"] == "1"
    # a unit that does not answer after another did: no_answer_from_unit
    result = await configure(hass, result, device_input(5))
    assert result["errors"] == {CONF_UNIT_ID: "no_answer_from_unit"}
    result = await configure(hass, result, device_input(2, profile="sdm630"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result) == [
        {CONF_UNIT_ID: 1, CONF_PROFILE: "sdm120", CONF_NAME: "Eastron SDM120"},
        {CONF_UNIT_ID: 2, CONF_PROFILE: "sdm630", CONF_NAME: "Eastron SDM630"},
    ]


async def test_same_profile_twice_gets_distinct_names(
    hass: HomeAssistant, sim2: SimulatorServer
) -> None:
    """Two unnamed devices of one profile get distinct default names."""
    result = await tcp_to_device(hass, sim2.port)
    result = await configure(hass, result, device_input(1, add_another=True))
    result = await configure(hass, result, device_input(2))
    names = [device[CONF_NAME] for device in devices(result)]
    assert names == ["Eastron SDM120", "Eastron SDM120 2"]


async def test_custom_map_prefilled_and_success(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """The custom map starts from profiles/custom.yaml and is stored as typed."""
    result = await tcp_to_device(hass, sim.port)
    result = await configure(
        hass, result, device_input(profile="custom", add_another=False)
    )
    assert result["step_id"] == "custom_map"
    template = (PACKAGE / "engine" / "profiles" / "custom.yaml").read_text(
        encoding="utf-8"
    )
    assert suggested(result, CONF_REGISTER_MAP) == template
    assert result["description_placeholders"]["unit"] == "1"
    result = await configure(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result) == [
        {
            CONF_UNIT_ID: 1,
            CONF_PROFILE: "custom",
            CONF_NAME: "Custom device",
            CONF_REGISTER_MAP: GOOD_MAP,
        }
    ]


async def test_custom_map_invalid(hass: HomeAssistant, sim: SimulatorServer) -> None:
    """A bad map names field and line, and the typed text comes back."""
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom", name="Mine"))
    sim.requests.clear()
    result = await refused(
        hass,
        result,
        {CONF_REGISTER_MAP: BAD_MAP},
        {CONF_REGISTER_MAP: "invalid_register_map"},
        "custom_map",
    )
    placeholders = result["description_placeholders"]
    assert placeholders["field"] == "data_type"
    assert placeholders["line"] == "5"
    assert "float99" in placeholders["error"]
    assert suggested(result, CONF_REGISTER_MAP) == BAD_MAP
    assert not sim.requests  # nothing was sent for a map that does not parse
    # broken YAML: the line of the syntax error
    broken = "registers:\n  - name: A\n    table: [input\n"
    result = await configure(hass, result, {CONF_REGISTER_MAP: broken})
    assert result["errors"] == {CONF_REGISTER_MAP: "invalid_yaml"}
    assert result["description_placeholders"]["line"] not in ("-", "")
    assert result["description_placeholders"]["column"] not in ("-", "")
    assert suggested(result, CONF_REGISTER_MAP) == broken
    # an empty map
    result = await configure(hass, result, {CONF_REGISTER_MAP: ""})
    assert result["errors"] == {CONF_REGISTER_MAP: "invalid_register_map"}
    # fixed: the device keeps the name typed on the device step
    result = await configure(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result)[0][CONF_NAME] == "Mine"


async def test_custom_device_then_another(
    hass: HomeAssistant, sim2: SimulatorServer
) -> None:
    """'Add another' ticked on a custom device returns to the device step."""
    result = await tcp_to_device(hass, sim2.port)
    result = await configure(
        hass, result, device_input(1, profile="custom", add_another=True)
    )
    result = await configure(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "device"
    result = await configure(hass, result, device_input(2))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert [d[CONF_PROFILE] for d in devices(result)] == ["custom", "sdm120"]


# -- serial -----------------------------------------------------------------------------


def serial_input(port: str, **extra: Any) -> dict[str, Any]:
    """Return a serial form submission."""
    return {
        CONF_SERIAL_PORT: port,
        CONF_BAUDRATE: "9600",
        CONF_BYTESIZE: "8",
        CONF_PARITY: "N",
        CONF_STOPBITS: "1",
        **extra,
    }


def serial_entry(port: str) -> MockConfigEntry:
    """Return a stored serial connection "Heating bus" on ``port`` (not set up)."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title="Heating bus",
        unique_id=f"serial:{port}",
        data={CONF_CONNECTION: "serial", CONF_SERIAL_PORT: port, CONF_BAUDRATE: 9600},
    )


async def test_serial_port_missing(hass: HomeAssistant, tmp_path: Path) -> None:
    """A serial port path that does not exist is named in the error."""
    missing = str(tmp_path / "ttyUSB-missing")
    result = await start(hass, "serial")
    result = await refused(
        hass, result, serial_input(missing), {CONF_SERIAL_PORT: "serial_port_missing"}
    )
    assert result["description_placeholders"]["serial_port"] == missing
    assert suggested(result, CONF_SERIAL_PORT) == missing


async def test_serial_invalid_baudrate(hass: HomeAssistant, tmp_path: Path) -> None:
    """A typed baud rate that is not a number is refused."""
    result = await start(hass, "serial")
    result = await configure(hass, result, serial_input(str(tmp_path), baudrate="fast"))
    assert result["errors"] == {CONF_BAUDRATE: "invalid_baudrate"}


async def test_serial_success(hass: HomeAssistant, pty_pair: tuple[str, str]) -> None:
    """Serial RTU through a pty pair with the simulator on the other end."""
    server_end, client_end = pty_pair
    server = SimulatorServer(
        SimulatedDevice(seed=42), kind="serial", serial_port=server_end
    )
    await server.start()
    try:
        result = await start(hass, "serial")
        result = await configure(hass, result, serial_input(client_end))
        assert result["step_id"] == "device", result
        assert result["errors"] == {}
        result = await configure(hass, result, device_input())
        assert result["type"] is FlowResultType.CREATE_ENTRY, result
        assert result["title"] == client_end
        assert result["result"].unique_id == f"serial:{client_end}"
        assert result["data"] == {
            CONF_CONNECTION: "serial",
            CONF_SERIAL_PORT: client_end,
            CONF_BAUDRATE: 9600,
            CONF_BYTESIZE: 8,
            CONF_PARITY: "N",
            CONF_STOPBITS: 1,
        }
        assert devices(result) == [
            {CONF_UNIT_ID: 1, CONF_PROFILE: "sdm120", CONF_NAME: "Eastron SDM120"}
        ]
    finally:
        await server.stop()


async def test_serial_no_answer(hass: HomeAssistant, pty_pair: tuple[str, str]) -> None:
    """Nobody on the line answers: no_answer_from_unit."""
    _, client_end = pty_pair
    result = await start(hass, "serial")
    result = await configure(hass, result, serial_input(client_end))
    assert result["step_id"] == "device"
    result = await configure(hass, result, device_input(3))
    assert result["errors"] == {CONF_UNIT_ID: "no_answer_from_unit"}


# -- demo and import --------------------------------------------------------------------


DEMO_DATA = {CONF_CONNECTION: "demo", CONF_SEED: 42}
# the demo fleet: the heat pump (the incident's problem child, its name from before
# the fleet), a grid meter limited to 20 registers per read, a PV inverter
DEMO_DEVICES = [
    {CONF_UNIT_ID: 1, CONF_PROFILE: "demo", CONF_NAME: "Demo device"},
    {CONF_UNIT_ID: 2, CONF_PROFILE: "demo_grid_meter", CONF_NAME: "Demo grid meter"},
    {CONF_UNIT_ID: 3, CONF_PROFILE: "demo_pv_inverter", CONF_NAME: "Demo PV inverter"},
]


async def test_demo(hass: HomeAssistant) -> None:
    """The demo asks only for a seed and creates its entry directly."""
    result = await start(hass, "demo")
    assert suggested(result, CONF_SEED) == 42
    result = await configure(hass, result, {CONF_SEED: 42})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == DEMO_DATA
    assert devices(result) == DEMO_DEVICES
    assert result["result"].unique_id == "demo:42"
    # the same seed again is a duplicate
    result = await start(hass, "demo")
    result = await configure(hass, result, {CONF_SEED: 42})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # another seed is another demo
    result = await start(hass, "demo")
    result = await configure(hass, result, {CONF_SEED: 7})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SEED] == 7


async def test_demo_invalid_seed(hass: HomeAssistant) -> None:
    """A seed must be a whole number."""
    result = await start(hass, "demo")
    result = await configure(hass, result, {CONF_SEED: 4.5})
    assert result["errors"] == {CONF_SEED: "invalid_seed"}


async def test_import_demo(hass: HomeAssistant) -> None:
    """YAML import creates the demo entry once; other connections are not imported."""
    data = {CONF_CONNECTION: "demo", CONF_SEED: 42}
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_IMPORT}, data=data
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == DEMO_DATA
    assert devices(result) == DEMO_DEVICES
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_IMPORT}, data=data
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IMPORT},
        data={CONF_CONNECTION: "tcp", CONF_HOST: HOST, CONF_PORT: 502},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "import_not_supported"


# -- options ----------------------------------------------------------------------------


OPTIONS = {
    CONF_DEFAULT_TOLERANCE: 0.5,
    CONF_MIN_INTERVAL: 2.0,
    CONF_MAX_INTERVAL: 600.0,
    CONF_MAX_REGISTERS: 40.0,
    CONF_TIMEOUT: 1.5,
    CONF_PAUSE: 0.05,
    CONF_ADAPTIVE: False,
    CONF_FIXED_INTERVAL: 15.0,
    CONF_CLOSE_AFTER_CYCLE: True,
    CONF_VIEWED_FACTOR: 0.5,
}


async def test_options(hass: HomeAssistant) -> None:
    """Options show defaults, refuse min > max, and are saved typed."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id="demo:42", data=DEMO_DATA)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert suggested(result, CONF_MAX_INTERVAL) == 300.0
    assert suggested(result, CONF_ADAPTIVE) is True
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**OPTIONS, CONF_MIN_INTERVAL: 700.0}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MAX_INTERVAL: "interval_range"}
    assert suggested(result, CONF_MIN_INTERVAL) == 700.0  # what was typed
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], OPTIONS
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {**OPTIONS, CONF_MAX_REGISTERS: 40}
    assert isinstance(entry.options[CONF_MAX_REGISTERS], int)
    # the next options flow starts from the saved values
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert suggested(result, CONF_TIMEOUT) == 1.5
    assert suggested(result, CONF_ADAPTIVE) is False
    assert suggested(result, CONF_VIEWED_FACTOR) == 0.5


# -- reconfigure ------------------------------------------------------------------------


def device_subentry(
    unit: int = 1, profile: str = "demo", **device: Any
) -> dict[str, Any]:
    """Return a stored device subentry."""
    data = {CONF_UNIT_ID: unit, CONF_PROFILE: profile, CONF_NAME: "D", **device}
    return {
        "data": data,
        "subentry_type": "device",
        "title": "D",
        "unique_id": str(unit),
    }


def tcp_entry(port: int, profile: str = "demo", **device: Any) -> MockConfigEntry:
    """Return a stored TCP entry (version 2: the device is a subentry)."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id=f"tcp:{HOST}:{port}",
        title=f"{HOST}:{port}",
        data={CONF_CONNECTION: "tcp", CONF_HOST: HOST, CONF_PORT: port},
        subentries_data=[device_subentry(1, profile, **device)],
    )


async def test_reconfigure_tcp(
    hass: HomeAssistant, sim: SimulatorServer, closed_port: int
) -> None:
    """Moving an entry to a new port: errors first, then success updates the entry."""
    entry = tcp_entry(closed_port)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert suggested(result, CONF_PORT) == closed_port
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: 99999})
    assert result["errors"] == {CONF_PORT: "invalid_port"}
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: closed_port})
    assert result["errors"] == {"base": "cannot_connect"}
    sim.requests.clear()
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == sim.port
    assert CONF_DEVICES not in entry.data
    assert [dict(sub.data) for sub in entry.subentries.values()] == [
        {CONF_UNIT_ID: 1, CONF_PROFILE: "demo", CONF_NAME: "D"}
    ]
    assert entry.unique_id == f"tcp:{HOST}:{sim.port}"
    assert entry.title == f"{HOST}:{sim.port}"
    assert [(r.unit_id, r.address) for r in sim.requests] == [(1, 0)]


async def test_reconfigure_probe_error(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """The first device is really read: a custom map in the hole is refused."""
    entry = tcp_entry(sim.port, profile="custom", register_map=HOLE_MAP)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
    assert result["errors"] == {"base": "illegal_address"}
    assert result["description_placeholders"]["register"] == "10"


async def test_reconfigure_to_other_entry(
    hass: HomeAssistant, sim: SimulatorServer, closed_port: int
) -> None:
    """Reconfiguring onto an endpoint another entry owns is refused."""
    tcp_entry(sim.port).add_to_hass(hass)
    entry = tcp_entry(closed_port)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
    assert result["errors"] == {"base": "already_configured"}
    assert entry.data[CONF_PORT] == closed_port


async def test_reconfigure_serial(
    hass: HomeAssistant, pty_pair: tuple[str, str], tmp_path: Path
) -> None:
    """Serial settings are reconfigured and validated the same way."""
    server_end, client_end = pty_pair
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id="serial:/dev/ttyOLD",
        data={
            CONF_CONNECTION: "serial",
            CONF_SERIAL_PORT: "/dev/ttyOLD",
            CONF_BAUDRATE: 19200,
            CONF_BYTESIZE: 8,
            CONF_PARITY: "E",
            CONF_STOPBITS: 1,
        },
        subentries_data=[device_subentry()],
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert suggested(result, CONF_SERIAL_PORT) == "/dev/ttyOLD"
    assert suggested(result, CONF_BAUDRATE) == "19200"
    assert suggested(result, CONF_PARITY) == "E"
    missing = str(tmp_path / "nope")
    result = await configure(hass, result, serial_input(missing))
    assert result["errors"] == {CONF_SERIAL_PORT: "serial_port_missing"}
    server = SimulatorServer(
        SimulatedDevice(seed=42), kind="serial", serial_port=server_end
    )
    await server.start()
    try:
        result = await configure(hass, result, serial_input(client_end))
    finally:
        await server.stop()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_SERIAL_PORT] == client_end
    assert entry.data[CONF_BAUDRATE] == 9600
    assert entry.data[CONF_PARITY] == "N"
    assert entry.unique_id == f"serial:{client_end}"


async def test_reconfigure_demo_aborts(hass: HomeAssistant) -> None:
    """The demo has nothing to reconfigure."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id="demo:42", data=DEMO_DATA)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "demo_not_reconfigurable"


# -- error mapping and translations ------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind", "expected"),
    [
        (IllegalFunction("x"), TransportKind.TCP, "illegal_function"),
        (classify_exception_code(4, 1, 0), TransportKind.TCP, "device_failure"),
        (classify_exception_code(11, 1, 0), TransportKind.TCP, "no_answer_from_unit"),
        (
            classify_exception_code(10, 1, 0),
            TransportKind.RTU_OVER_TCP,
            "no_answer_from_unit",
        ),
        (ModbusConnectionError("lost"), TransportKind.TCP, "cannot_connect"),
        (ModbusTimeout("t"), TransportKind.TCP, "timeout"),
        (ModbusTimeout("t"), TransportKind.SERIAL, "no_answer_from_unit"),
        (ModbusError("odd"), TransportKind.TCP, "unknown"),
    ],
)
def test_probe_error_mapping(
    error: ModbusError, kind: TransportKind, expected: str
) -> None:
    """Every engine error class becomes a specific, translated form error."""
    outcome = classify(error, kind, unit_answered=False)
    result = flow_checks.probe_flow_error(
        ProbeResult(outcome, 3, Table.HOLDING, 40, error)
    )
    assert result is not None
    assert result.key == expected
    assert result.placeholders == {"unit": "3", "register": "40", "table": "holding"}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PACKAGE / name).read_text(encoding="utf-8"))
    return data


def test_translations_complete() -> None:
    """strings.json and en.json agree; every key the flows use is translated."""
    strings, english = _load("strings.json"), _load("translations/en.json")
    for section in ("config", "options", "selector"):
        assert strings[section] == english[section], section
    source = "\n".join(
        (PACKAGE / name).read_text(encoding="utf-8")
        for name in ("config_flow.py", "device_flow.py", "flow_checks.py")
    )
    used_errors = set(re.findall(r'FlowError\(\s*"([a-z_]+)"', source))
    used_errors |= set(re.findall(r'errors\[[A-Z_]+\] = "([a-z_]+)"', source))
    used_aborts = set(re.findall(r'reason="([a-z_]+)"', source)) | {
        "already_configured",
        "reconfigure_successful",
    }
    config = strings["config"]
    assert used_errors - {"interval_range"} <= set(config["error"]), used_errors
    assert "interval_range" in strings["options"]["error"]
    assert used_aborts <= set(config["abort"])
    steps = {"user", "tcp", "rtu_over_tcp", "serial", "demo", "device", "custom_map"}
    assert steps | {"reconfigure"} <= set(config["step"])
    assert set(config["step"]["user"]["menu_options"]) == {
        "tcp",
        "rtu_over_tcp",
        "serial",
        "demo",
    }
    # every placeholder an error string uses is one the flow always provides
    provided = set(flow_checks.placeholders())
    for message in config["error"].values():
        assert set(re.findall(r"{(\w+)}", message)) <= provided, message
    # every form field has a label
    for step_id, fields in (
        ("tcp", (CONF_HOST, CONF_PORT)),
        (
            "serial",
            (
                CONF_SERIAL_PORT,
                CONF_BAUDRATE,
                CONF_BYTESIZE,
                CONF_PARITY,
                CONF_STOPBITS,
            ),
        ),
        ("device", (CONF_UNIT_ID, CONF_PROFILE, CONF_NAME, CONF_ADD_ANOTHER)),
        ("custom_map", (CONF_REGISTER_MAP,)),
        ("demo", (CONF_SEED,)),
    ):
        assert set(fields) <= set(config["step"][step_id]["data"]), step_id
    assert set(config_flow.OPTIONS_DEFAULTS) == set(
        strings["options"]["step"]["init"]["data"]
    )
    assert set(strings["selector"]["profile"]["options"]) >= {
        "demo",
        "sdm630",
        "sdm120",
        "custom",
    }


async def test_unexpected_errors(hass: HomeAssistant, sim: SimulatorServer) -> None:
    """A bug below the flow becomes 'unknown', never a crashed flow."""
    result = await start(hass, "tcp")
    with patch.object(PymodbusTransport, "connect", side_effect=RuntimeError):
        result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
    assert result["errors"] == {"base": "unknown"}
    result = await configure(hass, result, {CONF_HOST: HOST, CONF_PORT: sim.port})
    assert result["step_id"] == "device"
    with patch.object(PymodbusTransport, "read", side_effect=RuntimeError):
        result = await configure(hass, result, device_input())
    assert result["errors"] == {"base": "unknown"}


async def test_invalid_shipped_profile(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """A profile file that does not load is reported on the profile field."""
    result = await tcp_to_device(hass, sim.port)
    broken = RegisterMapError("not valid YAML", None, 3)
    with patch.object(flow_checks, "load_profile", side_effect=broken):
        result = await configure(hass, result, device_input(profile="sdm630"))
    assert result["errors"] == {CONF_PROFILE: "invalid_profile"}
    assert "line 3" in result["description_placeholders"]["error"]


async def test_serial_port_empty(hass: HomeAssistant) -> None:
    """An empty serial port is refused as missing."""
    result = await start(hass, "serial")
    result = await configure(hass, result, serial_input(" "))
    assert result["errors"] == {CONF_SERIAL_PORT: "serial_port_missing"}


def test_serial_port_exists(tmp_path: Path, pty_pair: tuple[str, str]) -> None:
    """Only character devices are serial ports: no directories, files or URLs."""
    _, client_end = pty_pair  # a link to /dev/pts/N, like /dev/serial/by-id/...
    assert flow_checks.serial_port_exists(client_end)
    plain = tmp_path / "file"
    plain.write_text("x")
    for port in (str(tmp_path), str(plain), "socket://192.0.2.1:4001", "loop://"):
        assert not flow_checks.serial_port_exists(port), port
        assert flow_checks.serial_port_status(port) == "serial_port_not_device"
    assert (
        flow_checks.serial_port_status(str(tmp_path / "ttyACM9"))
        == "serial_port_missing"
    )


# -- issue fixes: profiles, serial ports, YAML, framing, executor ------------------------


async def test_no_profile_preselected_on_real_connections(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """Test that a real connection offers no demo profile and preselects none.

    Defaults alone cannot be submitted.
    """
    result = await tcp_to_device(hass, sim.port)
    assert suggested(result, CONF_PROFILE) is None
    profile_key = next(
        key for key in result["data_schema"].schema if key == CONF_PROFILE
    )
    offered = [
        option["value"]
        for option in result["data_schema"].schema[profile_key].config["options"]
    ]
    assert "demo" not in offered
    assert {"sdm630", "sdm120", "custom"} <= set(offered)
    with pytest.raises(InvalidData):
        await configure(hass, result, {CONF_UNIT_ID: 1, CONF_ADD_ANOTHER: False})
    with pytest.raises(InvalidData):
        await configure(hass, result, device_input(profile="demo"))


async def test_serial_step_refuses_directories_and_urls(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    """A directory or a pyserial URL (spy:// would write a log file) is not a port."""
    log = tmp_path / "spy.log"
    for port in (
        str(tmp_path),
        f"spy://{tmp_path}/x?file={log}",
        "socket://192.0.2.1:4001",
    ):
        result = await start(hass, "serial")
        result = await configure(hass, result, serial_input(port))
        assert result["errors"] == {CONF_SERIAL_PORT: "serial_port_not_device"}, port
        assert result["description_placeholders"]["serial_port"] == port
    assert not log.exists()


async def test_serial_port_in_use(
    hass: HomeAssistant, pty_pair: tuple[str, str], tmp_path: Path
) -> None:
    """A port another entry uses (by any path to the device) gets its own text."""
    _, client_end = pty_pair
    serial_entry(client_end).add_to_hass(hass)
    alias = tmp_path / "by-id-link"
    alias.symlink_to(client_end)
    for port in (client_end, str(alias)):
        result = await start(hass, "serial")
        result = await refused(
            hass, result, serial_input(port), {CONF_SERIAL_PORT: "serial_port_in_use"}
        )
        assert result["description_placeholders"]["entry"] == "Heating bus"
        assert result["description_placeholders"]["serial_port"] == port


async def test_yaml_syntax_error_names_line_and_column(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """A YAML syntax error says line and column, never 'field -'."""
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom"))
    text = "registers:\n  - name: A\n    table: input\n   address: 3\n"
    result = await configure(hass, result, {CONF_REGISTER_MAP: text})
    assert result["errors"] == {CONF_REGISTER_MAP: "invalid_yaml"}
    placeholders = result["description_placeholders"]
    assert (placeholders["line"], placeholders["column"]) == ("4", "4")
    strings = _load("strings.json")["config"]["error"]
    assert "{field}" not in strings["invalid_yaml"]
    assert "{column}" in strings["invalid_yaml"]


async def test_custom_map_parsed_off_the_event_loop(
    hass: HomeAssistant, sim: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map is parsed in an executor thread, not in the event loop."""
    threads: list[str] = []
    original = flow_checks.parse_custom_map

    def spy(text: str, unit_id: int) -> Any:
        threads.append(threading.current_thread().name)
        return original(text, unit_id)

    monkeypatch.setattr(flow_checks, "parse_custom_map", spy)
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom"))
    result = await configure(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert threads
    assert threading.main_thread().name not in threads


async def test_custom_map_max_registers_checked(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """A map's max_registers must be 1-125; the map's own name names the device."""
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom"))
    result = await configure(
        hass, result, {CONF_REGISTER_MAP: "max_registers: 0\n" + GOOD_MAP}
    )
    assert result["errors"] == {CONF_REGISTER_MAP: "invalid_register_map"}
    assert result["description_placeholders"]["field"] == "max_registers"
    named = "name: Boiler meter\nmax_registers: 20\n" + GOOD_MAP
    result = await configure(hass, result, {CONF_REGISTER_MAP: named})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result)[0][CONF_NAME] == "Boiler meter"


async def test_rtu_over_tcp_against_tcp_server(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """RTU over TCP chosen for a Modbus TCP server: the error says which framing answers."""
    result = await tcp_to_device(hass, sim.port, step="rtu_over_tcp")
    result = await refused(hass, result, device_input(), {"base": "wrong_framer_tcp"})


async def test_tcp_against_rtu_server(
    hass: HomeAssistant, rtu_sim: SimulatorServer
) -> None:
    """Modbus TCP chosen for an RTU-over-TCP gateway: the error says RTU answers."""
    result = await tcp_to_device(hass, rtu_sim.port)
    result = await refused(hass, result, device_input(), {"base": "wrong_framer_rtu"})


async def test_demo_entry_has_no_device_subentry_flow(hass: HomeAssistant) -> None:
    """Devices are added on real connections; the demo serves only its own device."""
    demo = MockConfigEntry(
        domain=DOMAIN, version=2, unique_id="demo:42", data=DEMO_DATA
    )
    real = tcp_entry(1502)
    flow = config_flow.AdaptiveModbusConfigFlow
    assert flow.async_get_supported_subentry_types(demo) == {}
    assert set(flow.async_get_supported_subentry_types(real)) == {"device"}


def test_every_probe_outcome_is_translated() -> None:
    """Each engine probe outcome becomes a form error the strings translate."""
    errors = _load("strings.json")["config"]["error"]
    for outcome in ProbeOutcome:
        answering = TransportKind.TCP if outcome is ProbeOutcome.WRONG_FRAMING else None
        result = ProbeResult(outcome, 3, Table.HOLDING, 40, None, answering)
        error = flow_checks.probe_flow_error(result)
        if outcome is ProbeOutcome.OK:
            assert error is None
            continue
        assert error is not None and error.key in errors, outcome


async def test_custom_map_too_large_or_too_deep(
    hass: HomeAssistant, sim: SimulatorServer
) -> None:
    """Test that a map too large or too deep is an error, not a crashed flow.

    An oversized map is refused before parsing; 1,000 nested brackets give an
    error; error texts stay short.
    """
    result = await tcp_to_device(hass, sim.port)
    result = await configure(hass, result, device_input(profile="custom"))
    huge = GOOD_MAP + "#" * flow_checks.MAX_MAP_CHARS
    result = await configure(hass, result, {CONF_REGISTER_MAP: huge})
    assert result["errors"] == {CONF_REGISTER_MAP: "register_map_too_large"}
    deep = "registers: " + "[" * 1000 + "]" * 1000 + "\n"
    result = await configure(hass, result, {CONF_REGISTER_MAP: deep})
    assert result["type"] is FlowResultType.FORM
    assert CONF_REGISTER_MAP in result["errors"]
    long_name = (
        "registers:\n  - name: A\n    table: input\n    address: 0\n    data_type: "
        + "x" * 5000
    )
    result = await configure(hass, result, {CONF_REGISTER_MAP: long_name})
    assert result["errors"] == {CONF_REGISTER_MAP: "invalid_register_map"}
    assert (
        len(result["description_placeholders"]["error"]) <= flow_checks.MAX_ERROR_CHARS
    )


# -- every error recovers to a created entry ---------------------------------------------


class FaultyDevice(MultiUnitDevice):
    """Demo units whose reads fail with ``fault`` (a Modbus exception) while it is set."""

    def __init__(self, unit_ids: Sequence[int]) -> None:
        """Serve ``unit_ids`` with no fault set."""
        super().__init__(unit_ids)
        self.fault: ModbusError | None = None

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Raise the fault if one is set, else read."""
        if self.fault is not None and unit_id in self.units:
            raise self.fault
        return super().read(unit_id, table, address, count)


@pytest.fixture
async def faulty(socket_enabled: None) -> AsyncGenerator[SimulatorServer]:
    """Units 1 and 2 behind one Modbus TCP server; ``server.device.fault`` breaks reads."""
    server = SimulatorServer(FaultyDevice([1, 2]), host=HOST, port=0, unit_ids=[1, 2])
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    ("bad", "errors"),
    [
        ({CONF_HOST: "my host"}, {CONF_HOST: "invalid_host"}),
        ({CONF_PORT: 70000}, {CONF_PORT: "invalid_port"}),
        ({CONF_PORT: "closed"}, {"base": "cannot_connect"}),
        ({"crash": True}, {"base": "unknown"}),
    ],
    ids=["invalid_host", "invalid_port", "cannot_connect", "unknown"],
)
async def test_connection_error_then_entry(
    hass: HomeAssistant,
    sim: SimulatorServer,
    closed_port: int,
    bad: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Each error of the connection step: shown, then the corrected input creates the entry."""
    good = {CONF_HOST: HOST, CONF_PORT: sim.port}
    typed = {**good, **{k: v for k, v in bad.items() if k != "crash"}}
    if typed[CONF_PORT] == "closed":
        typed[CONF_PORT] = closed_port
    result = await start(hass, "tcp")
    crash = patch.object(PymodbusTransport, "connect", side_effect=RuntimeError)
    with crash if "crash" in bad else contextlib.nullcontext():
        result = await refused(hass, result, typed, errors, "tcp")
    result = await configure(hass, result, good)
    assert result["step_id"] == "device"
    result = await configure(hass, result, device_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == f"tcp:{HOST}:{sim.port}"


# (form submission overrides, fault set on the device, errors shown)
DEVICE_ERRORS: list[Any] = [
    pytest.param(
        {CONF_UNIT_ID: 256}, None, {CONF_UNIT_ID: "invalid_unit_id"}, id="unit_id"
    ),
    pytest.param(
        {CONF_UNIT_ID: 7}, None, {CONF_UNIT_ID: "no_answer_from_unit"}, id="no_answer"
    ),
    pytest.param(
        {}, IllegalFunction("off"), {"base": "illegal_function"}, id="illegal_function"
    ),
    pytest.param(
        {}, DeviceFailure("busy"), {"base": "device_failure"}, id="device_failure"
    ),
    pytest.param(
        {}, "bad_profile", {CONF_PROFILE: "invalid_profile"}, id="invalid_profile"
    ),
    pytest.param({}, "crash", {"base": "unknown"}, id="unknown"),
]


@contextlib.contextmanager
def broken(server: SimulatorServer, fault: Any) -> Generator[None]:
    """Make the device (or the code below the flow) fail as ``fault`` says, until exit."""
    device = server.device
    assert isinstance(device, FaultyDevice)
    with contextlib.ExitStack() as stack:
        if isinstance(fault, ModbusError):
            device.fault = fault
            stack.callback(setattr, device, "fault", None)
        elif fault == "bad_profile":
            error = RegisterMapError("not valid YAML", None, 3)
            stack.enter_context(
                patch.object(flow_checks, "load_profile", side_effect=error)
            )
        elif fault == "crash":
            stack.enter_context(
                patch.object(PymodbusTransport, "read", side_effect=RuntimeError)
            )
        yield


@pytest.mark.parametrize(("bad", "fault", "errors"), DEVICE_ERRORS)
async def test_device_error_then_entry(
    hass: HomeAssistant,
    faulty: SimulatorServer,
    bad: dict[str, Any],
    fault: Any,
    errors: dict[str, str],
) -> None:
    """Each device-step error of the user flow: shown, then fixed, and the entry is made."""
    result = await tcp_to_device(hass, faulty.port)
    with broken(faulty, fault):
        result = await refused(hass, result, device_input(**bad), errors, "device")
    result = await configure(hass, result, device_input())
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert devices(result)[0][CONF_UNIT_ID] == 1


# (map typed, errors shown); GOOD_MAP fixes each
MAP_ERRORS: list[Any] = [
    pytest.param(HOLE_MAP, {"base": "illegal_address"}, id="illegal_address"),
    pytest.param(
        BAD_MAP, {CONF_REGISTER_MAP: "invalid_register_map"}, id="invalid_map"
    ),
    pytest.param(
        "registers: [\n", {CONF_REGISTER_MAP: "invalid_yaml"}, id="invalid_yaml"
    ),
    pytest.param(
        GOOD_MAP + "#" * flow_checks.MAX_MAP_CHARS,
        {CONF_REGISTER_MAP: "register_map_too_large"},
        id="too_large",
    ),
]


@pytest.mark.parametrize(("text", "errors"), MAP_ERRORS)
async def test_custom_map_error_then_entry(
    hass: HomeAssistant, faulty: SimulatorServer, text: str, errors: dict[str, str]
) -> None:
    """Each error of the custom map step: shown, then the fixed map creates the entry."""
    result = await tcp_to_device(hass, faulty.port)
    result = await configure(hass, result, device_input(profile="custom"))
    result = await configure(hass, result, {CONF_REGISTER_MAP: text})
    assert result["step_id"] == "custom_map"
    assert result["errors"] == errors
    result = await configure(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert devices(result)[0][CONF_REGISTER_MAP] == GOOD_MAP


async def test_rtu_unit_errors_then_entry(
    hass: HomeAssistant, rtu_sim: SimulatorServer
) -> None:
    """Broadcast unit 0 and a unit out of the RTU range: shown, then unit 1 is created."""
    result = await tcp_to_device(hass, rtu_sim.port, step="rtu_over_tcp")
    result = await configure(hass, result, device_input(0))
    assert result["errors"] == {CONF_UNIT_ID: "broadcast_unit"}
    result = await configure(hass, result, device_input(248))
    assert result["errors"] == {CONF_UNIT_ID: "invalid_unit_id"}
    result = await configure(hass, result, device_input(1))
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_demo_seed_error_then_entry(hass: HomeAssistant) -> None:
    """A seed that is not whole: shown, then a whole seed creates the demo."""
    result = await start(hass, "demo")
    result = await configure(hass, result, {CONF_SEED: 4.5})
    assert result["errors"] == {CONF_SEED: "invalid_seed"}
    result = await configure(hass, result, {CONF_SEED: 4})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SEED] == 4


async def test_serial_errors_then_entry(
    hass: HomeAssistant, pty_pair: tuple[str, str], tmp_path: Path
) -> None:
    """Each serial-step error: shown, then the right port creates the entry."""
    server_end, client_end = pty_pair
    serial_entry(server_end).add_to_hass(hass)
    result = await start(hass, "serial")
    for typed, errors in (
        (
            serial_input(str(tmp_path / "ttyUSB9")),
            {CONF_SERIAL_PORT: "serial_port_missing"},
        ),
        (serial_input(str(tmp_path)), {CONF_SERIAL_PORT: "serial_port_not_device"}),
        (serial_input(server_end), {CONF_SERIAL_PORT: "serial_port_in_use"}),
        (
            serial_input(client_end, baudrate="fast"),
            {CONF_BAUDRATE: "invalid_baudrate"},
        ),
    ):
        result = await configure(hass, result, typed)
        assert result["step_id"] == "serial"
        assert result["errors"] == errors
    # the simulator answers on the other end of the line (not an entry's port here)
    server = SimulatorServer(
        SimulatedDevice(seed=42), kind="serial", serial_port=server_end
    )
    await server.start()
    try:
        result = await configure(hass, result, serial_input(client_end))
        assert result["step_id"] == "device"
        result = await configure(hass, result, device_input())
    finally:
        await server.stop()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SERIAL_PORT] == client_end


# -- the device subentry flow: every error recovers to a created subentry ------------------


def unloaded_connection(port: int) -> MockConfigEntry:
    """Return a stored TCP connection with unit 1 (not set up: the flow connects itself)."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id=f"tcp:{HOST}:{port}",
        title=f"{HOST}:{port}",
        data={CONF_CONNECTION: "tcp", CONF_HOST: HOST, CONF_PORT: port},
        subentries_data=[device_subentry(1, "sdm120")],
    )


async def start_add_device(hass: HomeAssistant, entry: MockConfigEntry) -> Any:
    """Open the 'add device' subentry flow."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, "device"), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return result


async def configure_sub(hass: HomeAssistant, result: Any, data: dict[str, Any]) -> Any:
    """Submit a subentry form."""
    return await hass.config_entries.subentries.async_configure(result["flow_id"], data)


def unit2(**extra: Any) -> dict[str, Any]:
    """Return the add-device form for unit 2 (no 'add another' on a subentry)."""
    return {CONF_UNIT_ID: 2, CONF_PROFILE: "sdm120", **extra}


@pytest.mark.parametrize(
    ("bad", "fault", "errors"),
    [
        *DEVICE_ERRORS,
        pytest.param(
            {CONF_UNIT_ID: 1}, None, {CONF_UNIT_ID: "unit_already_added"}, id="taken"
        ),
    ],
)
async def test_subentry_device_error_then_subentry(
    hass: HomeAssistant,
    faulty: SimulatorServer,
    bad: dict[str, Any],
    fault: Any,
    errors: dict[str, str],
) -> None:
    """Each error of the add-device form: shown, then fixed, and the device is added."""
    entry = unloaded_connection(faulty.port)
    entry.add_to_hass(hass)
    result = await start_add_device(hass, entry)
    with broken(faulty, fault):
        result = await refused(
            hass, result, unit2(**bad), errors, "user", submit=configure_sub
        )
    result = await configure_sub(hass, result, unit2())
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert sorted(sub.unique_id for sub in entry.subentries.values()) == ["1", "2"]


@pytest.mark.parametrize(("text", "errors"), MAP_ERRORS)
async def test_subentry_custom_map_error_then_subentry(
    hass: HomeAssistant, faulty: SimulatorServer, text: str, errors: dict[str, str]
) -> None:
    """Each error of the device's custom map: shown, then the fixed map adds the device."""
    entry = unloaded_connection(faulty.port)
    entry.add_to_hass(hass)
    result = await start_add_device(hass, entry)
    result = await configure_sub(hass, result, unit2(profile="custom"))
    assert result["step_id"] == "custom_map"
    result = await configure_sub(hass, result, {CONF_REGISTER_MAP: text})
    assert result["errors"] == errors
    result = await configure_sub(hass, result, {CONF_REGISTER_MAP: GOOD_MAP})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    added = next(sub for sub in entry.subentries.values() if sub.unique_id == "2")
    assert added.data[CONF_REGISTER_MAP] == GOOD_MAP
