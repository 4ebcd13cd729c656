"""Check a connection and a device before it is configured (no Home Assistant).

``probe_unit`` reads a device's first register and says what went wrong in terms a
user can act on: the unit did not answer, the server answers nothing at all, the
server speaks the other TCP framing (Modbus TCP vs RTU over TCP), an illegal
address or function, a device failure. The integration's config flow turns a
:class:`ProbeResult` into a translated form error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
import logging
from typing import Final

from .errors import (
    DeviceFailure,
    FramingMismatch,
    IllegalAddress,
    IllegalFunction,
    ModbusConnectionError,
    ModbusError,
    ModbusTimeout,
)
from .registers import Table
from .transport import (
    GATEWAY_NO_ANSWER_CODES,
    PymodbusTransport,
    Transport,
    TransportConfig,
    TransportKind,
    verify_framing,
)

_LOGGER = logging.getLogger(__name__)

# unit ids Modbus TCP servers commonly answer, tried after a timeout
REFERENCE_UNITS: Final = (1, 255)
_TCP_FRAMINGS: Final = (TransportKind.TCP, TransportKind.RTU_OVER_TCP)


class ProbeOutcome(StrEnum):
    """What a probe found."""

    OK = "ok"
    ILLEGAL_ADDRESS = "illegal_address"
    ILLEGAL_FUNCTION = "illegal_function"
    NO_ANSWER_FROM_UNIT = "no_answer_from_unit"  # others answer, or an RTU line
    TIMEOUT = "timeout"  # a Modbus TCP server that answers nothing at all
    DEVICE_FAILURE = "device_failure"
    CANNOT_CONNECT = "cannot_connect"
    WRONG_FRAMING = "wrong_framing"  # the server answers the other TCP framing
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of reading ``count`` registers at ``table``/``address`` of a unit."""

    outcome: ProbeOutcome
    unit_id: int
    table: Table
    address: int
    error: BaseException | None = None
    answering_framing: TransportKind | None = None  # with WRONG_FRAMING

    @property
    def ok(self) -> bool:
        """Whether the read worked."""
        return self.outcome is ProbeOutcome.OK


def classify(
    err: ModbusError, kind: TransportKind, *, unit_answered: bool
) -> ProbeOutcome:
    """Return the outcome an engine error means on a connection of ``kind``.

    On an RTU line silence means this unit did not answer; over Modbus TCP it is
    the device or gateway, unless another unit already answered there or the
    gateway said so (exception 10/11: no path to, or no answer from, the unit).
    """
    if isinstance(err, IllegalAddress):
        return ProbeOutcome.ILLEGAL_ADDRESS
    if isinstance(err, IllegalFunction):
        return ProbeOutcome.ILLEGAL_FUNCTION
    if isinstance(err, ModbusTimeout):
        gateway_said_so = err.code in GATEWAY_NO_ANSWER_CODES
        if kind is not TransportKind.TCP or unit_answered or gateway_said_so:
            return ProbeOutcome.NO_ANSWER_FROM_UNIT
        return ProbeOutcome.TIMEOUT
    if isinstance(err, DeviceFailure):
        return ProbeOutcome.DEVICE_FAILURE
    if isinstance(err, ModbusConnectionError):
        return ProbeOutcome.CANNOT_CONNECT
    return ProbeOutcome.UNKNOWN


async def check_connection(config: TransportConfig) -> ModbusError | None:
    """Open the connection once (no request): None when it opens."""
    transport = PymodbusTransport(config)
    try:
        await transport.connect()
        # let pymodbus finish its connection setup (the serial transport schedules it
        # with call_soon and fails if closed before it ran)
        await asyncio.sleep(0)
    except ModbusError as err:
        return err
    finally:
        await transport.close()
    return None


async def probe_unit(
    config: TransportConfig,
    unit_id: int,
    table: Table = Table.HOLDING,
    address: int = 0,
    count: int = 1,
    *,
    unit_answered: bool = False,
    live: Transport | None = None,
) -> ProbeResult:
    """Read ``count`` registers of ``unit_id`` and say what happened.

    ``live`` is an already running transport for the same connection (a gateway that
    takes one client, or a serial port, cannot be opened twice); without it a
    connection is opened from ``config`` and closed again. After silence on a fresh
    TCP connection, the usual unit ids and then the other framing are tried, so the
    result tells "no unit N here" from "nothing answers" from "wrong framing".
    Other exceptions than :class:`ModbusError` propagate.
    """
    transport: Transport = live or PymodbusTransport(config)
    try:
        if live is None:
            await transport.connect()
        await transport.read(unit_id, table, address, count)
    except ModbusError as err:
        _LOGGER.debug("Probe of unit %s failed: %s", unit_id, err)
        silent = isinstance(err, (ModbusTimeout, ModbusConnectionError))
        silent = silent and getattr(err, "code", None) not in GATEWAY_NO_ANSWER_CODES
        if silent and not unit_answered and live is None:
            if config.kind is TransportKind.TCP:
                unit_answered = await _other_unit_answers(transport, unit_id)
            if not unit_answered and config.kind in _TCP_FRAMINGS:
                await transport.close()
                framing = await _other_framing(config, unit_id, table, address, count)
                if framing is not None:
                    return ProbeResult(
                        ProbeOutcome.WRONG_FRAMING,
                        unit_id,
                        table,
                        address,
                        err,
                        framing,
                    )
        outcome = classify(err, config.kind, unit_answered=unit_answered)
        return ProbeResult(outcome, unit_id, table, address, err)
    finally:
        if live is None:
            await transport.close()
    return ProbeResult(ProbeOutcome.OK, unit_id, table, address)


async def _other_unit_answers(transport: Transport, unit_id: int) -> bool:
    """Tell whether the TCP server answers the usual unit ids (not ``unit_id``).

    An exception response counts as an answer.
    """
    for other in REFERENCE_UNITS:
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


async def _other_framing(
    config: TransportConfig, unit_id: int, table: Table, address: int, count: int
) -> TransportKind | None:
    """Return the *other* TCP framing after silence if the server answers only that.

    None otherwise; the transport's :func:`~.transport.verify_framing` does the
    detection.
    """
    try:
        await verify_framing(
            config, unit_id or 1, table=table, address=address, count=count
        )
    except FramingMismatch as mismatch:
        return TransportKind(mismatch.answering)
    except ModbusError as err:  # the server went away meanwhile: not a framing problem
        _LOGGER.debug("Framing check of unit %s failed: %s", unit_id, err)
    return None
