"""Register specs: what a Modbus value is, where it lives, and how it is decoded.

A :class:`RegisterSpec` is immutable and validated on construction; a bad spec
raises :class:`RegisterSpecError` naming the field that is wrong.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

Value = bool | int | float | str

MAX_UNIT_ID = 255  # Modbus TCP; RTU lines use 1-247 (checked where configured)
MAX_ADDRESS = 65535


class Table(StrEnum):
    """The four Modbus data tables."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit(self) -> bool:
        """Whether the table holds single bits rather than 16-bit words."""
        return self in (Table.COIL, Table.DISCRETE)

    @property
    def is_writable(self) -> bool:
        """Whether Modbus can write to this table at all."""
        return self in (Table.HOLDING, Table.COIL)


class DataType(StrEnum):
    """How raw words become a value."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BIT = "bit"


class Order(StrEnum):
    """Word or byte order."""

    BIG = "big"
    LITTLE = "little"


# struct code and number of 16-bit words of each fixed-size numeric type
_NUMERIC: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}

_FLOATS = (DataType.FLOAT32, DataType.FLOAT64)


class RegisterSpecError(ValueError):
    """A register spec is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, message: str, key: str | None = None) -> None:
        self.field = field
        self.key = key
        prefix = f"{key}: " if key else ""
        super().__init__(f"{prefix}{field}: {message}")


class DecodeError(ValueError):
    """Raw data does not fit the spec (wrong length, value out of range)."""


@dataclass(frozen=True, slots=True)
class RegisterSpec:
    """One value on one Modbus unit.

    ``count`` is the number of 16-bit registers of a string; other types derive
    their size from the data type. ``bit`` selects one bit (0-15) of a word for
    ``DataType.BIT``. ``tolerance`` is the change in engineering units (after
    scale and offset) that matters to the user; 0 means every change matters.
    ``min_interval`` / ``max_interval`` override the device defaults when set.
    """

    key: str
    unit_id: int
    table: Table
    address: int
    data_type: DataType = DataType.UINT16
    count: int = 1
    bit: int | None = None
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    scale: float = 1.0
    offset: float = 0.0
    precision: int | None = None
    writable: bool = False
    tolerance: float = 0.0
    min_interval: float | None = None
    max_interval: float | None = None
    # derived once (hot path): identity on the connection and size in registers or bits
    uid: str = field(init=False, repr=False, compare=False)
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", self._size())
        self._validate()
        object.__setattr__(self, "uid", f"{self.unit_id}.{self.key}")

    def _fail(self, field: str, message: str) -> RegisterSpecError:
        return RegisterSpecError(field, message, self.key or None)

    def _validate(self) -> None:
        if not self.key or not isinstance(self.key, str):
            raise self._fail("key", "must be a non-empty string")
        if not 0 <= self.unit_id <= MAX_UNIT_ID:
            raise self._fail("unit_id", f"must be 0-{MAX_UNIT_ID}, got {self.unit_id}")
        if not 0 <= self.address <= MAX_ADDRESS:
            raise self._fail("address", f"must be 0-{MAX_ADDRESS}, got {self.address}")
        if self.table.is_bit and self.data_type is not DataType.BOOL:
            raise self._fail("data_type", f"{self.table} tables hold single bits: use bool")
        if not self.table.is_bit and self.data_type is DataType.BOOL:
            raise self._fail(
                "data_type", "bool is for coils and discrete inputs; use bit for a word"
            )
        if self.data_type is DataType.STRING:
            if not 1 <= self.count <= 125:
                raise self._fail("count", f"a string spans 1-125 registers, got {self.count}")
        elif self.count != 1:
            raise self._fail("count", "only strings take a register count")
        if self.data_type is DataType.BIT:
            if self.bit is None or not 0 <= self.bit <= 15:
                raise self._fail("bit", "bit type needs a bit number 0-15")
        elif self.bit is not None:
            raise self._fail("bit", "only the bit type takes a bit number")
        if self.address + self.size - 1 > MAX_ADDRESS:
            raise self._fail("address", "value runs past address 65535")
        if self.writable and not self.table.is_writable:
            raise self._fail("writable", f"{self.table} registers are read-only")
        if not math.isfinite(self.scale) or self.scale == 0:
            raise self._fail("scale", "must be a finite, non-zero number")
        if not math.isfinite(self.offset):
            raise self._fail("offset", "must be a finite number")
        if self.precision is not None and not 0 <= self.precision <= 10:
            raise self._fail("precision", "must be 0-10 decimals")
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise self._fail("tolerance", "must be zero or a positive number")
        for name in ("min_interval", "max_interval"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise self._fail(name, "must be a positive number of seconds")
        if (
            self.min_interval is not None
            and self.max_interval is not None
            and self.min_interval > self.max_interval
        ):
            raise self._fail("max_interval", "must not be below min_interval")

    def _size(self) -> int:
        """Number of registers (or bits, for bit tables) the value occupies."""
        if self.data_type is DataType.STRING:
            return self.count
        if self.data_type in _NUMERIC:
            return _NUMERIC[self.data_type][1]
        return 1

    @property
    def end(self) -> int:
        """First address after the value."""
        return self.address + self.size

    @property
    def is_numeric(self) -> bool:
        """Whether the decoded value is a number (tolerance applies)."""
        return self.data_type in _NUMERIC

    # -- decoding ---------------------------------------------------------

    def _raw_bytes(self, words: Sequence[int]) -> bytes:
        ordered = list(words) if self.word_order is Order.BIG else list(reversed(words))
        chunks = []
        for word in ordered:
            if not 0 <= word <= 0xFFFF:
                raise DecodeError(f"{self.key}: register value {word} is not 16-bit")
            chunk = word.to_bytes(2, "big")
            chunks.append(chunk if self.byte_order is Order.BIG else chunk[::-1])
        return b"".join(chunks)

    def decode(self, raw: Sequence[int]) -> Value:
        """Turn raw words (or one 0/1 bit for bit tables) into a value."""
        if len(raw) != self.size:
            raise DecodeError(f"{self.key}: expected {self.size} values, got {len(raw)}")
        if self.data_type is DataType.BOOL:
            return bool(raw[0])
        if self.data_type is DataType.BIT:
            assert self.bit is not None
            return bool((raw[0] >> self.bit) & 1)
        data = self._raw_bytes(raw)
        if self.data_type is DataType.STRING:
            return data.rstrip(b"\x00 ").decode("ascii", errors="replace")
        code = _NUMERIC[self.data_type][0]
        number: int | float = struct.unpack(">" + code, data)[0]
        return self._scaled(number)

    def _scaled(self, number: float) -> int | float:
        if self.data_type in _FLOATS and not math.isfinite(number):
            return number
        if self.scale == 1.0 and self.offset == 0.0 and self.data_type not in _FLOATS:
            return number
        value = number * self.scale + self.offset
        if self.precision is not None:
            value = round(value, self.precision)
            if self.precision == 0:
                return int(value)
        return value

    # -- encoding ---------------------------------------------------------

    def encode(self, value: Value) -> list[int]:
        """Turn a value into raw words (or one 0/1 bit) to write."""
        if self.data_type is DataType.BOOL:
            return [1 if value else 0]
        if self.data_type is DataType.BIT:
            raise DecodeError(f"{self.key}: a single bit of a word cannot be written alone")
        if self.data_type is DataType.STRING:
            data = str(value).encode("ascii")
            if len(data) > 2 * self.count:
                raise DecodeError(f"{self.key}: text longer than {2 * self.count} characters")
            data = data.ljust(2 * self.count, b"\x00")
        else:
            if isinstance(value, str):
                raise DecodeError(f"{self.key}: expected a number, got {value!r}")
            code = _NUMERIC[self.data_type][0]
            raw: int | float = (float(value) - self.offset) / self.scale
            if self.data_type not in _FLOATS:
                raw = round(raw)
            try:
                data = struct.pack(">" + code, raw)
            except struct.error as err:
                raise DecodeError(f"{self.key}: {value!r} does not fit {self.data_type}") from err
        words = []
        for i in range(0, len(data), 2):
            chunk = data[i : i + 2]
            if self.byte_order is Order.LITTLE:
                chunk = chunk[::-1]
            words.append(int.from_bytes(chunk, "big"))
        return words if self.word_order is Order.BIG else list(reversed(words))
