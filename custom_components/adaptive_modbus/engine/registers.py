"""Register specs: what a Modbus value is, where it lives, and how it is decoded.

A :class:`RegisterSpec` is immutable and validated on construction; a bad spec
raises :class:`RegisterSpecError` naming the field that is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
import math
import struct

from .errors import AdaptiveModbusError

Value = bool | int | float | str

MAX_UNIT_ID = 247
"""Highest unit id on a serial bus (RTU, and RTU over TCP): 248-255 are reserved."""
MAX_TCP_UNIT_ID = 255
"""Highest unit id in a Modbus TCP (MBAP) header; many TCP devices answer only to 255."""
MAX_ADDRESS = 65535
BROADCAST_UNIT_ID = 0
_SERIAL_FRAMINGS = frozenset({"serial", "rtu", "rtu_over_tcp"})
_TCP_FRAMINGS = frozenset({"tcp", "udp", "socket"})


class UnitIdError(AdaptiveModbusError, ValueError):
    """A unit id the framing cannot read from.

    ``reason`` is ``"range"`` (outside ``allowed``) or ``"broadcast"`` (unit 0 on an
    RTU link: every device obeys it and none answers, so it cannot be read).
    """

    def __init__(
        self, unit_id: int, framing: str, reason: str, allowed: tuple[int, int]
    ) -> None:
        """Keep the unit, the framing, why it is refused and the range allowed."""
        self.unit_id = unit_id
        self.framing = framing
        self.reason = reason
        self.allowed = allowed
        if reason == "broadcast":
            message = (
                f"unit id 0 is the broadcast address on {framing}: devices never answer it,"
                f" so it cannot be read; use the device's own id ({allowed[0]}-{allowed[1]})"
            )
        else:
            message = f"unit id {unit_id} is outside {allowed[0]}-{allowed[1]} allowed on {framing}"
        super().__init__(message)


def unit_id_range(framing: str) -> tuple[int, int]:
    """Return the unit ids that can be read on ``framing`` ("tcp", "rtu_over_tcp", ...).

    Modbus TCP and UDP (MBAP header): 0-255. RTU, on a serial line or over TCP: 1-247
    (0 is broadcast, 248-255 are reserved).
    """
    kind = str(framing).lower()
    if kind in _TCP_FRAMINGS:
        return (0, MAX_TCP_UNIT_ID)
    if kind in _SERIAL_FRAMINGS:
        return (1, MAX_UNIT_ID)
    raise ValueError(f"unknown framing {framing!r}")


def validate_unit_id(unit_id: int, framing: str) -> int:
    """Return ``unit_id`` if a device on ``framing`` can be read at it.

    Else raise :class:`UnitIdError` (see :func:`unit_id_range`; unit 0 on RTU is
    broadcast).
    """
    low, high = unit_id_range(framing)
    kind = str(framing).lower()
    if isinstance(unit_id, bool) or not isinstance(unit_id, int):
        raise UnitIdError(unit_id, kind, "range", (low, high))
    if unit_id == BROADCAST_UNIT_ID and kind in _SERIAL_FRAMINGS:
        raise UnitIdError(unit_id, kind, "broadcast", (low, high))
    if not low <= unit_id <= high:
        raise UnitIdError(unit_id, kind, "range", (low, high))
    return unit_id


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
_UNSIGNED, _SIGNED = 1, 2  # RegisterSpec.word_kind


class RegisterSpecError(AdaptiveModbusError, ValueError):
    """A register spec is invalid; ``field`` names the offending field."""

    def __init__(self, field: str, message: str, key: str | None = None) -> None:
        """Name the ``field`` (and the register ``key``) in the message."""
        self.field = field
        self.key = key
        prefix = f"{key}: " if key else ""
        super().__init__(f"{prefix}{field}: {message}")


class DecodeError(AdaptiveModbusError, ValueError):
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
    # a one-word integer in big-endian bytes (see decode_at): 0 no, 1 unsigned, 2 signed
    word_kind: int = field(init=False, repr=False, compare=False)
    unscaled: bool = field(init=False, repr=False, compare=False)
    numeric: bool = field(init=False, repr=False, compare=False)  # see is_numeric

    def __post_init__(self) -> None:
        """Fill in size and uid; refuse an invalid spec."""
        object.__setattr__(self, "size", self._size())
        self._validate()
        object.__setattr__(self, "uid", f"{self.unit_id}.{self.key}")
        kind = 0
        if self.byte_order is Order.BIG:
            kind = {DataType.UINT16: _UNSIGNED, DataType.INT16: _SIGNED}.get(
                self.data_type, 0
            )
        object.__setattr__(self, "word_kind", kind)
        object.__setattr__(self, "unscaled", self.scale == 1.0 and self.offset == 0.0)
        object.__setattr__(self, "numeric", self.data_type in _NUMERIC)

    def _fail(self, field: str, message: str) -> RegisterSpecError:
        return RegisterSpecError(field, message, self.key or None)

    def _validate(self) -> None:
        if not self.key or not isinstance(self.key, str):
            raise self._fail("key", "must be a non-empty string")
        # the framing's rule: validate_unit_id
        if not 0 <= self.unit_id <= MAX_TCP_UNIT_ID:
            raise self._fail(
                "unit_id", f"must be 0-{MAX_TCP_UNIT_ID}, got {self.unit_id}"
            )
        if not 0 <= self.address <= MAX_ADDRESS:
            raise self._fail("address", f"must be 0-{MAX_ADDRESS}, got {self.address}")
        if self.table.is_bit and self.data_type is not DataType.BOOL:
            raise self._fail(
                "data_type", f"{self.table} tables hold single bits: use bool"
            )
        if not self.table.is_bit and self.data_type is DataType.BOOL:
            raise self._fail(
                "data_type", "bool is for coils and discrete inputs; use bit for a word"
            )
        if self.data_type is DataType.STRING:
            if not 1 <= self.count <= 125:
                raise self._fail(
                    "count", f"a string spans 1-125 registers, got {self.count}"
                )
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
        """Return the number of registers (or bits, for bit tables) the value occupies."""
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
        return self.numeric  # decided once, in __post_init__

    def bounded(self, interval: float) -> float:
        """``interval`` within this register's own interval bounds, where its map sets them.

        The map's bounds are the user's requirement (an alarm read at least every
        10 s), kept in every mode: a fixed interval longer than the register's
        ``max_interval`` reads it at its maximum instead.
        """
        if self.max_interval is not None and interval > self.max_interval:
            return self.max_interval
        if self.min_interval is not None and interval < self.min_interval:
            return self.min_interval
        return interval

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

    def decode(self, raw: Sequence[int]) -> Value | None:
        """Turn raw words (or one 0/1 bit for bit tables) into a value.

        ``None`` means "no value": a float that is NaN or infinite (SunSpec's "not
        implemented", an idle inverter) or a scaled value that overflows. Values are
        never rounded to ``precision`` (a display hint): 172.25 stays 172.25. Only the
        binary noise of the arithmetic is dropped (0.1 * 3 is 0.3, a float32 0.1 is
        0.1, not 0.10000000149).
        """
        if len(raw) != self.size:
            raise DecodeError(
                f"{self.key}: expected {self.size} values, got {len(raw)}"
            )
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
        if self.data_type is DataType.FLOAT32 and math.isfinite(number):
            number = _shortest_float32(number, data)
        return self._scaled(number)

    def decode_at(self, raw: Sequence[int], offset: int) -> Value | None:
        """:meth:`decode` of the value at ``offset`` in a block's words (the read path).

        A one-word integer in big-endian bytes is taken from the word as it is,
        without slicing and packing (the same value); everything else, and any word
        that is not a 16-bit integer, goes through :meth:`decode` (the same errors).
        """
        kind = self.word_kind
        if kind and 0 <= offset < len(raw):
            word = raw[offset]
            if type(word) is int and 0 <= word <= 0xFFFF:
                if kind == _SIGNED and word >= 0x8000:
                    word -= 0x10000
                return word if self.unscaled else self._scaled(word)
        return self.decode(raw[offset : offset + self.size])

    def _scaled(self, number: float) -> int | float | None:
        if self.data_type in _FLOATS and not math.isfinite(number):
            return None
        if self.scale == 1.0 and self.offset == 0.0:
            return number
        if self.data_type not in _FLOATS and self._integral:
            # exact, even for 64 bits
            return int(number) * int(self.scale) + int(self.offset)
        value = number * self.scale + self.offset
        if not math.isfinite(value):
            return None
        clean = float(f"{value:.15g}")  # drop the binary noise of the multiplication
        # the unrounded value when rounding went up past the float range
        return clean if math.isfinite(clean) else value

    @property
    def _integral(self) -> bool:
        """Whether scale and offset keep whole numbers whole (and exact as integers)."""
        scale, offset = float(self.scale), float(self.offset)
        return (
            scale.is_integer()
            and offset.is_integer()
            and abs(scale) < 2**53
            and abs(offset) < 2**53
        )

    @property
    def is_float(self) -> bool:
        """Whether the raw value is a float (NaN and inf decode to ``None``)."""
        return self.data_type in _FLOATS

    # -- encoding ---------------------------------------------------------

    def encode(self, value: Value) -> list[int]:
        """Turn a value into raw words (or one 0/1 bit) to write."""
        if self.data_type is DataType.BOOL:
            return [1 if value else 0]
        if self.data_type is DataType.BIT:
            raise DecodeError(
                f"{self.key}: a single bit of a word cannot be written alone"
            )
        if self.data_type is DataType.STRING:
            data = str(value).encode("ascii")
            if len(data) > 2 * self.count:
                raise DecodeError(
                    f"{self.key}: text longer than {2 * self.count} characters"
                )
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
                raise DecodeError(
                    f"{self.key}: {value!r} does not fit {self.data_type}"
                ) from err
        words = []
        for i in range(0, len(data), 2):
            chunk = data[i : i + 2]
            if self.byte_order is Order.LITTLE:
                chunk = chunk[::-1]
            words.append(int.from_bytes(chunk, "big"))
        return words if self.word_order is Order.BIG else list(reversed(words))


def _shortest_float32(number: float, data: bytes) -> float:
    """Return the shortest decimal that is the same float32 (0.1, not 0.100000001...)."""
    for digits in (6, 7, 8):
        candidate = float(f"{number:.{digits}g}")
        if struct.pack(">f", candidate) == data:
            return candidate
    return number
