"""Error classes of the engine, shared by transports, simulator and engine.

Everything the engine raises on purpose derives from :class:`AdaptiveModbusError`:

- :class:`ModbusError` (and its family below): a failed Modbus request;
- ``registers.RegisterSpecError`` / ``registers.DecodeError``: a bad register spec,
  raw data or a value that does not fit the spec;
- ``register_map.RegisterMapError``: a bad register map (YAML);
- :class:`EngineUsageError` / :class:`UnknownRegister`: a call the engine cannot do.

The spec, decode, map and usage errors are also ``ValueError`` (``UnknownRegister``
also ``KeyError``), as they always were.

Every failure a transport reports is a :class:`ModbusError` with a ``kind``, so the
engine can decide what to do (retry, bisect, quarantine, reconnect) without knowing
which library produced it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """What went wrong, as far as the poller needs to know."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    ILLEGAL_ADDRESS = "illegal_address"
    ILLEGAL_FUNCTION = "illegal_function"
    DEVICE_FAILURE = "device_failure"
    OTHER = "other"
    MISMATCH = "mismatch"  # an answer for another request (unit, transaction, count)

    @property
    def blames_block(self) -> bool:
        """Whether the answer blames the addresses asked for (bisect them)."""
        return self in (ErrorKind.ILLEGAL_ADDRESS, ErrorKind.DEVICE_FAILURE)


class AdaptiveModbusError(Exception):
    """The root of every error the engine raises on purpose."""


class EngineUsageError(AdaptiveModbusError, ValueError):
    """A call the engine cannot do: bad configuration, a register that is not writable."""


class UnknownRegister(EngineUsageError, KeyError):
    """A register uid the engine does not poll."""

    def __str__(self) -> str:  # KeyError would quote the message
        """Return the message itself (KeyError would quote it)."""
        return str(self.args[0]) if self.args else ""


class ModbusError(AdaptiveModbusError):
    """A failed Modbus request."""

    kind: ErrorKind = ErrorKind.OTHER
    # True when a write failed after it went out: the device may have applied it, so
    # nothing retries it automatically (a command or pulse register must not run twice)
    may_have_applied: bool = False

    def __init__(
        self,
        message: str,
        *,
        unit_id: int | None = None,
        address: int | None = None,
        code: int | None = None,
    ) -> None:
        """Keep the message and where it happened (unit, address, code)."""
        super().__init__(message)
        self.unit_id = unit_id
        self.address = address
        self.code = code  # the Modbus exception code, when the device answered with one


class ModbusTimeout(ModbusError):
    """No answer within the timeout."""

    kind = ErrorKind.TIMEOUT


class ModbusConnectionError(ModbusError):
    """The connection could not be opened or was lost."""

    kind = ErrorKind.CONNECTION


class IllegalAddress(ModbusError):
    """Exception code 2: the device has no such address (or range)."""

    kind = ErrorKind.ILLEGAL_ADDRESS


class IllegalFunction(ModbusError):
    """Exception code 1: the device does not support the function code."""

    kind = ErrorKind.ILLEGAL_FUNCTION


class DeviceFailure(ModbusError):
    """Exception code 4 (or another device-side failure such as 3, 5, 6, 10, 11)."""

    kind = ErrorKind.DEVICE_FAILURE


class WriteUnconfirmed(ModbusError):
    """The device took a write, but reading the value back failed.

    Not a failed write: the value was most likely written and must not be sent
    again for this. ``value`` is what was written, ``read_error`` why the read-back
    failed (its ``kind`` says whether the device was silent, busy or refused).
    """

    def __init__(
        self,
        message: str,
        *,
        value: bool | float | str,
        read_error: ModbusError | None = None,
        unit_id: int | None = None,
        address: int | None = None,
        code: int | None = None,
    ) -> None:
        """Keep the message, the value written and the value read back."""
        super().__init__(message, unit_id=unit_id, address=address, code=code)
        self.value = value
        self.read_error = read_error


class TransportClosed(ModbusConnectionError):
    """The transport was closed (unload, reload): it never reconnects."""


class ResponseMismatch(ModbusError):
    """An answer that is not for the request.

    Wrong unit id, transaction id, function code or count. The connection is
    dropped (the stream is out of step).
    """

    kind = ErrorKind.MISMATCH


class FramingMismatch(ModbusConnectionError):
    """The device answers another framing than the configured one.

    ``configured`` and ``answering`` are transport kinds (``"tcp"``, ``"rtu_over_tcp"``).
    """

    def __init__(self, message: str, *, configured: str, answering: str) -> None:
        """Keep the message, the framing configured and the one that answers."""
        super().__init__(message)
        self.configured = configured
        self.answering = answering
