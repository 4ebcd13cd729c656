"""Generic simulated units for generated maps and trace replay.

The demo device (``engine.simulator.SimulatedDevice``) hosts only the demo profile,
so generated installations (200 and 2,000 registers, several units on one bus) and
replayed traces use :class:`SyntheticUnit`: any register map, values taken
sample-and-hold from one array per register at 1-second resolution. The unit behaves
like the demo device where a poller notices: unmapped gaps read 0, reads past the
map or through a hole raise ``IllegalAddress``, oversized reads ``DeviceFailure``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
import math

import numpy as np
from numpy.typing import NDArray

from adaptive_modbus_engine.errors import DeviceFailure, IllegalAddress, ModbusTimeout
from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table, Value

MAX_READ_WORDS = 125
MAX_READ_BITS = 2000

_INT_TYPES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}


def quantize(spec: RegisterSpec, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return what a perfect read of ``spec`` decodes for each raw value (vectorised)."""
    if spec.data_type in (DataType.BOOL, DataType.BIT):
        return np.asarray(values != 0, dtype=np.float64)
    raw = (values - spec.offset) / spec.scale
    if spec.data_type in _INT_TYPES:
        low, high = _INT_TYPES[spec.data_type]
        raw = np.clip(np.round(raw), low, high)
    elif spec.data_type is DataType.FLOAT32:
        raw = raw.astype(np.float32).astype(np.float64)
    out = raw * spec.scale + spec.offset
    if spec.precision is not None:
        out = np.round(out, spec.precision)
    return np.asarray(out, dtype=np.float64)


def clamp_to_type(
    spec: RegisterSpec, values: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Clip raw engineering values into what the data type can hold."""
    if spec.data_type in _INT_TYPES:
        low, high = _INT_TYPES[spec.data_type]
        lo = low * spec.scale + spec.offset
        hi = high * spec.scale + spec.offset
        return np.clip(values, min(lo, hi), max(lo, hi))
    return values


class SyntheticUnit:
    """One Modbus unit serving ``specs`` from per-key value arrays (1 s, sample-and-hold).

    ``values[key][i]`` is the value over ``[start + i, start + i + 1)``; before the
    first sample the first value holds, after the last the last one does.
    """

    def __init__(
        self,
        unit_id: int,
        specs: Sequence[RegisterSpec],
        values: Mapping[str, NDArray[np.float64]],
        *,
        start: float,
        clock: Callable[[], float],
        holes: Mapping[Table, frozenset[int]] | None = None,
        max_read_words: int = MAX_READ_WORDS,
    ) -> None:
        """Serve ``specs`` of ``unit_id`` from ``values`` sampled from ``start``."""
        self.unit_id = unit_id
        self.registers = tuple(specs)
        self.start = start
        self._clock = clock
        self._holes = dict(holes or {})
        self.max_read_words = max_read_words
        self._values = {
            spec.key: np.asarray(values[spec.key], dtype=np.float64) for spec in specs
        }
        self._by_table: dict[Table, tuple[list[int], list[RegisterSpec]]] = {}
        self._space: dict[Table, int] = {}
        for table in Table:
            items = sorted(
                (s for s in specs if s.table is table), key=lambda s: s.address
            )
            self._by_table[table] = ([s.address for s in items], items)
            self._space[table] = max((s.end for s in items), default=0)
        self._writes: dict[str, Value] = {}

    def holes(self, table: Table) -> frozenset[int]:
        """Illegal addresses inside the address space of ``table``."""
        return self._holes.get(table, frozenset())

    def value(self, key: str, t: float) -> Value:
        """Live value of ``key`` at clock time ``t``."""
        if key in self._writes:
            return self._writes[key]
        series = self._values[key]
        index = min(max(math.floor(t - self.start), 0), len(series) - 1)
        return float(series[index])

    def truth(self, key: str, t: float) -> Value:
        """Ground truth of ``key`` at ``t`` (undecoded engineering value)."""
        return self.value(key, t)

    def _words(self, spec: RegisterSpec, t: float) -> list[int]:
        value = self.value(spec.key, t)
        if spec.data_type is DataType.BIT:
            assert spec.bit is not None
            return [(1 << spec.bit) if value else 0]
        if spec.data_type is DataType.BOOL:
            return [1 if value else 0]
        if spec.data_type in _INT_TYPES:
            low, high = _INT_TYPES[spec.data_type]
            raw = round((float(value) - spec.offset) / spec.scale)
            value = min(max(raw, low), high) * spec.scale + spec.offset
        return spec.encode(value)

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read ``count`` words (or bits) of ``table`` from ``address`` at clock time."""
        if unit_id != self.unit_id:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)
        limit = MAX_READ_BITS if table.is_bit else self.max_read_words
        if not 1 <= count <= limit:
            raise DeviceFailure(f"{table} request for {count} values", unit_id=unit_id)
        if address < 0 or address + count > self._space[table]:
            raise IllegalAddress(
                f"{table} {address}+{count} outside the map", unit_id=unit_id
            )
        for hole in self.holes(table):
            if address <= hole < address + count:
                raise IllegalAddress(
                    f"{table} address {hole} does not exist", unit_id=unit_id
                )
        t = self._clock()
        starts, specs = self._by_table[table]
        out = [0] * count
        first = bisect_left(starts, address - 4)  # widest numeric value spans 4 words
        for spec in specs[first:]:
            if spec.address >= address + count:
                break
            if spec.end <= address:
                continue
            for offset, word in enumerate(self._words(spec, t)):
                position = spec.address + offset - address
                if 0 <= position < count:
                    out[position] |= word
        return out

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write a whole holding value starting at ``address`` (kept until the end)."""
        for spec in self._by_table[Table.HOLDING][1]:
            if spec.address == address and spec.writable and spec.size == len(values):
                self._writes[spec.key] = spec.decode(values)
                return
        raise IllegalAddress(f"holding {address} is not writable", unit_id=unit_id)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Switch a writable coil."""
        for spec in self._by_table[Table.COIL][1]:
            if spec.address == address and spec.writable:
                self._writes[spec.key] = value
                return
        raise IllegalAddress(f"coil {address} is not writable", unit_id=unit_id)
