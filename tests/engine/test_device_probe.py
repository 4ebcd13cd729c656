"""Device probing before configuration, against real Modbus servers on loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from adaptive_modbus_engine.device_probe import (
    ProbeOutcome,
    check_connection,
    classify,
    probe_unit,
)
from adaptive_modbus_engine.errors import (
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.transport import (
    PymodbusTransport,
    TransportConfig,
    TransportKind,
    classify_exception_code,
    detect_framer,
)

if TYPE_CHECKING:
    from .conftest import SilentServer, StaticDevice

LOOPBACK = "127.0.0.1"

pytestmark = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts([LOOPBACK]),
    pytest.mark.old_pymodbus,
]


def config(port: int, kind: TransportKind = TransportKind.TCP) -> TransportConfig:
    """Return a one-shot loopback config with short timeouts."""
    return TransportConfig(kind=kind, host=LOOPBACK, port=port, timeout=0.3, retries=0)


async def test_ok_and_illegal_address(start_server: Any) -> None:
    """A readable register is OK; a hole is an illegal address naming the register."""
    server = await start_server(host=LOOPBACK, port=0)
    result = await probe_unit(config(server.port), 1, Table.INPUT, 0, 2)
    assert result.ok
    result = await probe_unit(config(server.port), 1, Table.INPUT, 7, 1)
    assert (result.outcome, result.table, result.address) == (
        ProbeOutcome.ILLEGAL_ADDRESS,
        Table.INPUT,
        7,
    )


async def test_missing_unit_on_tcp_is_told_from_silence(
    start_server: Any, silent_server: SilentServer
) -> None:
    """Test that a missing unit is told apart from a silent server.

    Unit 5 missing where unit 1 answers: no answer from that unit; a server that
    answers nothing at all: timeout.
    """
    server = await start_server(host=LOOPBACK, port=0)
    result = await probe_unit(config(server.port), 5)
    assert result.outcome is ProbeOutcome.NO_ANSWER_FROM_UNIT
    result = await probe_unit(config(silent_server.port), 1)
    assert result.outcome is ProbeOutcome.TIMEOUT


@pytest.mark.parametrize(
    ("server_framer", "client", "answering"),
    [
        ("rtu", TransportKind.TCP, TransportKind.RTU_OVER_TCP),
        ("socket", TransportKind.RTU_OVER_TCP, TransportKind.TCP),
    ],
)
async def test_wrong_framing_names_the_one_that_answers(
    start_server: Any,
    server_framer: str,
    client: TransportKind,
    answering: TransportKind,
) -> None:
    """Modbus TCP against an RTU-over-TCP server and the other way round."""
    server = await start_server(host=LOOPBACK, port=0, framer=server_framer)
    result = await probe_unit(config(server.port, client), 1)
    assert result.outcome is ProbeOutcome.WRONG_FRAMING
    assert result.answering_framing is answering
    assert await detect_framer(config(server.port, answering), 1) is answering


async def test_live_transport_is_used_and_left_open(start_server: Any) -> None:
    """With the running connection given, no second connection is opened or closed."""
    server = await start_server(host=LOOPBACK, port=0)
    live = PymodbusTransport(config(server.port))
    await live.connect()
    try:
        # port 1: unused
        result = await probe_unit(config(1), 1, Table.HOLDING, 0, 1, live=live)
        assert result.ok
        assert live.connected
        server.requests.clear()
        # on the live line nothing else is tried: no reads of other units or framings
        result = await probe_unit(config(1), 9, live=live)
        assert result.outcome is ProbeOutcome.TIMEOUT
        assert not server.requests  # unit 1 (the usual reference unit) was not read
    finally:
        await live.close()


async def test_check_connection(start_server: Any, unused_port: int) -> None:
    """Opening works against a server and fails where nothing listens."""
    server = await start_server(host=LOOPBACK, port=0)
    assert await check_connection(config(server.port)) is None
    assert isinstance(
        await check_connection(config(unused_port)), ModbusConnectionError
    )


@pytest.mark.parametrize(
    ("error", "kind", "expected"),
    [
        (IllegalFunction("x"), TransportKind.TCP, ProbeOutcome.ILLEGAL_FUNCTION),
        (
            classify_exception_code(4, 1, 0),
            TransportKind.TCP,
            ProbeOutcome.DEVICE_FAILURE,
        ),
        (
            classify_exception_code(11, 1, 0),
            TransportKind.TCP,
            ProbeOutcome.NO_ANSWER_FROM_UNIT,
        ),
        (ModbusTimeout("t"), TransportKind.TCP, ProbeOutcome.TIMEOUT),
        (ModbusTimeout("t"), TransportKind.SERIAL, ProbeOutcome.NO_ANSWER_FROM_UNIT),
        (ModbusConnectionError("x"), TransportKind.TCP, ProbeOutcome.CANNOT_CONNECT),
        (ModbusError("odd"), TransportKind.TCP, ProbeOutcome.UNKNOWN),
    ],
)
def test_classify(
    error: ModbusError, kind: TransportKind, expected: ProbeOutcome
) -> None:
    """Every engine error class has an outcome a user can act on."""
    assert classify(error, kind, unit_answered=False) is expected


def test_static_device_is_unit_1(static_device: type[StaticDevice]) -> None:
    """The tests above rely on the conftest device answering unit 1 only."""
    assert static_device().unit_id == 1
