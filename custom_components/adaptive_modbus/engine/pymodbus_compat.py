"""The one seam between the engine and the pymodbus versions it runs on (3.8.3 .. 3.16.x).

Everything that differs between pymodbus releases lives here, detected by signature or
attribute (never by version string), so the rest of the engine codes against one API:

* the unit keyword of client calls: ``slave=`` (<= 3.9) or ``device_id=`` (>= 3.10);
* the exception raised by a server datastore for an unknown unit:
  ``NoSuchSlaveException`` or ``NoSuchIdException``;
* the server keyword to stay silent for unknown units:
  ``ignore_missing_slaves`` or ``ignore_missing_devices``;
* the server datastore: up to 3.12 the server indexes ``context[unit]`` and asks that
  per-unit context to ``validate``/``async_getValues``/``async_setValues``; from 3.13 it
  calls ``context.async_getValues(unit, ...)`` on the server context itself, and from
  3.15 it accepts a ``ModbusServerContext`` only with simulator devices or with the
  ``old_simulator`` flag. :func:`make_server_context` returns one object that speaks
  all of these dialects and computes every value live from a :class:`DatastoreBackend`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import inspect
import logging
from typing import Any, Final, Protocol, cast

from pymodbus.client import ModbusBaseClient
from pymodbus.datastore import ModbusServerContext
import pymodbus.exceptions as pm_exceptions
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer

from .registers import Table

try:  # pymodbus >= 3.9
    from pymodbus.constants import ExcCodes as _ExcCodes

    _EXC_CODES: Any = _ExcCodes
except ImportError:  # pragma: no cover - pymodbus 3.8
    _EXC_CODES = None

# Modbus exception codes (protocol constants, identical in every version)
EXC_ILLEGAL_FUNCTION: Final = 0x01
EXC_ILLEGAL_ADDRESS: Final = 0x02
EXC_ILLEGAL_VALUE: Final = 0x03
EXC_DEVICE_FAILURE: Final = 0x04
EXC_ACKNOWLEDGE: Final = 0x05
EXC_DEVICE_BUSY: Final = 0x06
EXC_GATEWAY_PATH_UNAVAILABLE: Final = 0x0A
EXC_GATEWAY_NO_RESPONSE: Final = 0x0B

# function codes
FC_READ_COILS: Final = 1
FC_READ_DISCRETE: Final = 2
FC_READ_HOLDING: Final = 3
FC_READ_INPUT: Final = 4
FC_WRITE_COIL: Final = 5
FC_WRITE_REGISTER: Final = 6
FC_WRITE_COILS: Final = 15
FC_WRITE_REGISTERS: Final = 16
FC_READ_WRITE_REGISTERS: Final = 23

READ_FUNCTION: Final[dict[Table, int]] = {
    Table.COIL: FC_READ_COILS,
    Table.DISCRETE: FC_READ_DISCRETE,
    Table.HOLDING: FC_READ_HOLDING,
    Table.INPUT: FC_READ_INPUT,
}
FUNCTION_TABLE: Final[dict[int, Table]] = {
    FC_READ_COILS: Table.COIL,
    FC_READ_DISCRETE: Table.DISCRETE,
    FC_READ_HOLDING: Table.HOLDING,
    FC_READ_INPUT: Table.INPUT,
    FC_WRITE_COIL: Table.COIL,
    FC_WRITE_COILS: Table.COIL,
    FC_WRITE_REGISTER: Table.HOLDING,
    FC_WRITE_REGISTERS: Table.HOLDING,
    FC_READ_WRITE_REGISTERS: Table.HOLDING,
}


def _keyword(func: Any, *candidates: str) -> str:
    """Return the first of ``candidates`` that ``func`` accepts as a parameter."""
    params = inspect.signature(func).parameters
    for name in candidates:
        if name in params:
            return name
    raise RuntimeError(f"unsupported pymodbus: {func!r} accepts none of {candidates}")


UNIT_KEYWORD: Final = _keyword(
    ModbusBaseClient.read_holding_registers, "device_id", "slave"
)
SERVER_IGNORE_MISSING_KEYWORD: Final = _keyword(
    ModbusTcpServer.__init__, "ignore_missing_devices", "ignore_missing_slaves"
)
# new, old name
_NO_SUCH_UNIT_NAMES: Final = (
    "NoSuchIdException",
    "NoSuchSlaveException",
)
NoSuchUnitException: Final[type[Exception]] = cast(
    "type[Exception]",
    next(
        getattr(pm_exceptions, n)
        for n in _NO_SUCH_UNIT_NAMES
        if hasattr(pm_exceptions, n)
    ),
)


def unit_kwargs(unit_id: int) -> dict[str, Any]:
    """Keyword arguments that address ``unit_id`` in a client call."""
    return {UNIT_KEYWORD: unit_id}


def server_kwargs(*, ignore_missing_units: bool) -> dict[str, Any]:
    """Keyword arguments common to every pymodbus server class."""
    return {SERVER_IGNORE_MISSING_KEYWORD: ignore_missing_units}


# ----------------------------------------------------------------------------- logging

# pymodbus logs through "pymodbus.logging" (every version in the range). It logs an
# ERROR with raw frame dumps (other connections' traffic included) on every timeout,
# which this engine handles and reports itself.
PYMODBUS_LOGGERS: Final = ("pymodbus", "pymodbus.logging")
QUIET_LEVEL: Final = logging.CRITICAL


def quiet_pymodbus_logging() -> bool:
    """Keep pymodbus' own logging out of the user's log at normal levels.

    Sets the ``pymodbus`` logger to CRITICAL unless someone (the user, through HA's
    ``logger`` settings) has set a level on it or on ``pymodbus.logging``: raising
    them to DEBUG still shows every frame. Idempotent; True if it changed the level.
    """
    parent = logging.getLogger(PYMODBUS_LOGGERS[0])
    if any(
        logging.getLogger(name).level != logging.NOTSET for name in PYMODBUS_LOGGERS
    ):
        return False
    parent.setLevel(QUIET_LEVEL)
    return True


# ----------------------------------------------------------------------------- client


async def client_read(
    client: ModbusBaseClient, unit_id: int, table: Table, address: int, count: int
) -> ModbusPDU:
    """Send one read request and return the response PDU (may be an exception response)."""
    kwargs = unit_kwargs(unit_id)
    call: Any
    if table is Table.HOLDING:
        call = client.read_holding_registers
    elif table is Table.INPUT:
        call = client.read_input_registers
    elif table is Table.COIL:
        call = client.read_coils
    else:
        call = client.read_discrete_inputs
    return cast("ModbusPDU", await call(address, count=count, **kwargs))


async def client_write_registers(
    client: ModbusBaseClient, unit_id: int, address: int, values: Sequence[int]
) -> ModbusPDU:
    """Write holding registers (function 16) and return the response PDU."""
    call: Any = client.write_registers
    return cast("ModbusPDU", await call(address, list(values), **unit_kwargs(unit_id)))


async def client_write_coil(
    client: ModbusBaseClient, unit_id: int, address: int, value: bool
) -> ModbusPDU:
    """Write one coil (function 5) and return the response PDU."""
    call: Any = client.write_coil
    return cast("ModbusPDU", await call(address, value, **unit_kwargs(unit_id)))


def exception_code(response: ModbusPDU) -> int | None:
    """Return the Modbus exception code of an exception response, else None."""
    if not response.isError():
        return None
    return int(getattr(response, "exception_code", 0) or 0)


def response_words(response: ModbusPDU, count: int) -> list[int]:
    """Register words of a register read response."""
    return [int(word) for word in response.registers[:count]]


def response_bits(response: ModbusPDU, count: int) -> list[int]:
    """Bits (as 0/1) of a coil or discrete read response (padding bits dropped)."""
    return [1 if bit else 0 for bit in response.bits[:count]]


# ----------------------------------------------------------------------------- server


class DatastoreBackend(Protocol):
    """What a live server datastore asks; answers are computed at request time.

    ``get`` returns the values (words, or 0/1 for bits) or an int Modbus exception code;
    ``set`` returns None or an exception code. Both raise :data:`NoSuchUnitException`
    (via :func:`no_such_unit`) when the server must stay silent.
    """

    def unit_ids(self) -> list[int]:
        """Return the unit ids that answer."""

    def get(
        self,
        unit_id: int,
        func_code: int,
        address: int,
        count: int,
        *,
        record: bool = True,
    ) -> list[int] | int:
        """Values for a read (or the read-back of a write); ``record=False`` for probes."""

    def set(
        self, unit_id: int, func_code: int, address: int, values: list[int]
    ) -> int | None:
        """Apply a write."""

    def check_write(
        self, unit_id: int, func_code: int, address: int, count: int
    ) -> int | None:
        """Exception code a write to these addresses would get (values unknown yet)."""

    async def delay(self) -> None:
        """Await the simulated processing time of one request."""


def no_such_unit(unit_id: int) -> Exception:
    """Return the exception that makes a pymodbus server ignore a request."""
    return NoSuchUnitException(f"no unit {unit_id}")


def _exc(code: int) -> Any:
    """Exception code in the form a datastore of this pymodbus version returns."""
    return _EXC_CODES(code) if _EXC_CODES is not None else code


def _server_values(func_code: int, values: list[int]) -> list[int] | list[bool]:
    """Values as pymodbus expects them: bools for bit tables."""
    if func_code in (FC_READ_COILS, FC_READ_DISCRETE, FC_WRITE_COIL, FC_WRITE_COILS):
        return [bool(v) for v in values]
    return values


class _UnitContext:
    """Per-unit datastore of the pymodbus <= 3.12 dialect (``context[unit]``)."""

    def __init__(self, backend: DatastoreBackend, unit_id: int) -> None:
        self._backend = backend
        self._unit_id = unit_id

    def reset(self) -> None:
        """Nothing to reset: values are live."""

    def validate(self, func_code: int, address: int, count: int = 1) -> bool:
        """Whether the request may proceed (pymodbus 3.8 asks this before most requests).

        pymodbus 3.8 turns an error raised later, while writing, into a malformed
        answer (function code 0), so writes are checked here as far as possible.
        """
        table = FUNCTION_TABLE.get(func_code)
        if table is None:
            return False
        # a write: pymodbus 3.8 cannot refuse it later
        if READ_FUNCTION[table] != func_code:
            return (
                self._backend.check_write(self._unit_id, func_code, address, count)
                is None
            )
        result = self._backend.get(
            self._unit_id, READ_FUNCTION[table], address, count, record=False
        )
        return not isinstance(result, int)

    def getValues(self, func_code: int, address: int, count: int = 1) -> Any:
        """Values computed now (pymodbus' synchronous API)."""
        result = self._backend.get(self._unit_id, func_code, address, count)
        if isinstance(result, int):
            if _EXC_CODES is None:  # pymodbus 3.8 cannot answer an error from here
                raise ValueError(f"exception code {result}")
            return _exc(result)
        return _server_values(func_code, result)

    def setValues(self, func_code: int, address: int, values: Sequence[Any]) -> Any:
        """Apply a write (pymodbus' synchronous API)."""
        code = self._backend.set(
            self._unit_id, func_code, address, [int(v) for v in values]
        )
        if code is None:
            return None
        if _EXC_CODES is None:
            raise ValueError(f"exception code {code}")
        return _exc(code)

    async def async_getValues(
        self, func_code: int, address: int, count: int = 1
    ) -> Any:
        """Values computed now, after the simulated processing delay."""
        await self._backend.delay()
        return self.getValues(func_code, address, count)

    async def async_setValues(
        self, func_code: int, address: int, values: Sequence[Any]
    ) -> Any:
        """Apply a write after the simulated processing delay."""
        await self._backend.delay()
        return self.setValues(func_code, address, values)


class _LiveServerContext(ModbusServerContext):
    """A server context of every pymodbus dialect whose values come from a backend."""

    def __init__(self, backend: DatastoreBackend) -> None:  # pylint: disable=super-init-not-called
        # The parent constructor is not called: it builds static stores (and, from 3.14,
        # logs deprecation warnings). These attributes are what the servers look at.
        self._backend = backend
        self.single = False
        self.simdevices: list[
            Any
        ] = []  # >= 3.13: no SimDevice, use this object directly
        self.old_simulator = True  # >= 3.15: accept this object as the datastore

    # --- pymodbus <= 3.12: per-unit contexts
    def __getitem__(self, unit_id: int) -> Any:
        if unit_id not in self._backend.unit_ids():
            raise no_such_unit(unit_id)
        return _UnitContext(self._backend, unit_id)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self._backend.unit_ids()

    def slaves(self) -> list[int]:
        """Return the unit ids (pymodbus <= 3.9 name)."""
        return self._backend.unit_ids()

    def device_ids(self) -> list[int]:
        """Return the unit ids (pymodbus >= 3.10 name)."""
        return self._backend.unit_ids()

    # --- pymodbus >= 3.13: the server context answers for every unit
    async def async_getValues(
        self, device_id: int, func_code: int, address: int, count: int = 1
    ) -> Any:
        """Values of ``device_id`` computed now."""
        return await self[device_id].async_getValues(func_code, address, count)

    async def async_setValues(
        self, device_id: int, func_code: int, address: int, values: Sequence[Any]
    ) -> Any:
        """Apply a write to ``device_id``."""
        return await self[device_id].async_setValues(func_code, address, values)


def make_server_context(backend: DatastoreBackend) -> ModbusServerContext:
    """Build a pymodbus server context whose values ``backend`` computes live."""
    return _LiveServerContext(backend)


async def wait_closed(server: Any) -> None:
    """Shut a pymodbus server down and give its sockets a moment to close."""
    await server.shutdown()
    await asyncio.sleep(0)
