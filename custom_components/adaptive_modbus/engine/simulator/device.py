"""Simulated devices: register map from a profile, values from seeded signals.

The default device is the demo heat pump (``profiles/demo.yaml``); a
:class:`DeviceModel` makes it another member of the demo fleet (see ``fleet.py``),
and a ``profile`` plus a ``source`` make it serve anything (trace replay).

A :class:`SimulatedDevice` answers Modbus reads and writes synchronously, encoding
the scenario's live values at the time its injected clock reports. It behaves like
a real device where that matters to a poller:

* every table has an address space ``0 .. last mapped address``; unmapped gaps
  inside it read as 0, anything past it raises :class:`IllegalAddress`;
* input register 10 is a hole: any read touching it raises :class:`IllegalAddress`
  although both neighbours read fine (it is not in the profile: the engine learns it);
* a request for another unit id gets no answer (:class:`ModbusTimeout`), and so
  does every request while :attr:`SimulatedDevice.answering` is off;
* too many registers in one request raises :class:`DeviceFailure` (Modbus
  exception 3, illegal data value), as does a written value outside min/max; a
  model's hidden ``read_limit`` (not in its profile) refuses larger reads the same
  way, or leaves them unanswered;
* writes only reach writable registers, whole values at a time, and persist:
  a setpoint never changes unless written.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
import time
from typing import Final

from ..errors import DeviceFailure, IllegalAddress, ModbusTimeout
from ..register_map import Profile, RegisterDefinition, load_profile
from ..registers import DataType, DecodeError, RegisterSpec, Table, Value
from . import signals

PROFILE_ID: Final = "demo"

HOLES: Final[Mapping[Table, frozenset[int]]] = {
    Table.HOLDING: frozenset(),
    Table.INPUT: frozenset({10}),
    Table.COIL: frozenset(),
    Table.DISCRETE: frozenset(),
}
"""Addresses that answer exception 2 although the addresses around them read fine."""

MAX_READ_WORDS: Final = 125
MAX_READ_BITS: Final = 2000
MAX_WRITE_WORDS: Final = 123
ILLEGAL_DATA_VALUE: Final = 3
"""Modbus exception code of a request for too many values or a value out of range."""


NO_HOLES: Final[Mapping[Table, frozenset[int]]] = {
    table: frozenset() for table in Table
}


class OverLimit(StrEnum):
    """How a device answers a read above its hidden ``read_limit``."""

    EXCEPTION = "exception"  # Modbus exception 3, illegal data value
    TIMEOUT = "timeout"  # no answer at all


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """What a simulated device is: profile, signal table, holes and read limit.

    ``read_limit`` is the largest read the device accepts although its profile does
    not say so (``None``: the profile's ``max_registers``, else 125); ``incident``
    whether the device goes through the scenario's incident (the problem child).
    """

    model_id: str
    profile_id: str
    holes: Mapping[Table, frozenset[int]] = field(default_factory=lambda: NO_HOLES)
    read_limit: int | None = None
    over_limit: OverLimit = OverLimit.EXCEPTION
    incident: bool = False


HEAT_PUMP: Final = DeviceModel(
    signals.HEAT_PUMP, PROFILE_ID, holes=HOLES, incident=True
)
"""The demo heat pump: the incident, the hole at input 10 (the problem child)."""
GRID_METER: Final = DeviceModel("grid_meter", "demo_grid_meter", read_limit=20)
"""A healthy three-phase meter that answers at most 20 registers per read."""
PV_INVERTER: Final = DeviceModel("pv_inverter", "demo_pv_inverter")
"""A healthy PV inverter."""
MODELS: Final[Mapping[str, DeviceModel]] = {
    model.model_id: model for model in (HEAT_PUMP, GRID_METER, PV_INVERTER)
}


@lru_cache(maxsize=64)
def model_profile(profile_id: str, unit_id: int = 1) -> Profile:
    """Return a parsed shipped profile for ``unit_id`` (cached: it is immutable)."""
    return load_profile(profile_id, unit_id)


def demo_profile(unit_id: int = 1) -> Profile:
    """Return the parsed demo (heat pump) profile for ``unit_id``."""
    return model_profile(PROFILE_ID, unit_id)


def _bound(definition: RegisterDefinition, name: str) -> float | None:
    value = definition.presentation.get(name)
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None
    )


Source = Callable[[str, float], Value]
"""Value of a key at scenario time (seconds since the device's ``start``)."""


class SimulatedDevice:
    """One simulated Modbus unit running the seeded demo scenario.

    ``clock`` gives the current time; scenario time is ``clock() - start`` and
    ``start`` defaults to the clock at construction, so a new device begins at
    the start of a stable phase. Same seed and scenario time, same values.
    ``model`` picks the fleet member (default: the heat pump); ``profile`` and
    ``source`` replace its register map and its signals (e.g. a recorded trace).
    """

    def __init__(
        self,
        seed: int = 42,
        clock: Callable[[], float] = time.time,
        unit_id: int = 1,
        start: float | None = None,
        model: DeviceModel = HEAT_PUMP,
        *,
        profile: Profile | None = None,
        source: Source | None = None,
    ) -> None:
        """Build the device for ``unit_id``; ``seed`` fixes its signals."""
        self.seed = seed
        self.unit_id = unit_id
        self.model = model
        self.profile = (
            profile if profile is not None else model_profile(model.profile_id, unit_id)
        )
        self._source = source
        self.answering = True
        """Off: the device answers nothing (a unit that stopped answering)."""
        self.definitions: tuple[RegisterDefinition, ...] = self.profile.registers
        self.registers: tuple[RegisterSpec, ...] = tuple(
            d.spec for d in self.definitions
        )
        self._clock = clock
        self.start = clock() if start is None else start
        self._by_key: dict[str, RegisterDefinition] = {
            d.key: d for d in self.definitions
        }
        self._by_table: dict[Table, tuple[RegisterSpec, ...]] = {
            table: tuple(s for s in self.registers if s.table is table)
            for table in Table
        }
        self._spaces: dict[Table, range] = {
            table: range(max((s.end for s in specs), default=0))
            for table, specs in self._by_table.items()
        }
        self._writes: dict[str, list[tuple[float, Value]]] = {}
        limit = self.profile.max_registers
        self.max_read_words = limit if limit is not None else MAX_READ_WORDS
        if model.read_limit is not None:
            self.max_read_words = min(self.max_read_words, model.read_limit)

    # -- introspection -------------------------------------------------------

    def now(self) -> float:
        """Return the current time on the device clock."""
        return self._clock()

    def scenario_time(self, t: float | None = None) -> float:
        """Scenario time of clock time ``t`` (default: now)."""
        return (self._clock() if t is None else t) - self.start

    def phase(self, t: float | None = None) -> signals.Phase:
        """Scenario phase at clock time ``t`` (default: now); always stable if healthy."""
        if not self.model.incident:
            return signals.Phase.STABLE
        return signals.phase_at(self.scenario_time(t))

    def incident_start(self, cycle: int = 0) -> float:
        """Clock time of the first step of the incident of scenario cycle ``cycle``."""
        return self.start + signals.incident_start(cycle)

    def spec(self, key: str) -> RegisterSpec:
        """Return the register spec of ``key`` (``KeyError`` if unknown)."""
        return self._by_key[key].spec

    def address_space(self, table: Table) -> range:
        """Addresses of ``table`` that exist (gaps read 0; holes still fail)."""
        return self._spaces[table]

    def holes(self, table: Table) -> frozenset[int]:
        """Illegal addresses inside the address space of ``table``."""
        return self.model.holes.get(table, frozenset())

    # -- values ----------------------------------------------------------------

    def _value(self, key: str, t: float) -> Value:
        """Live value of ``key`` at clock time ``t``: last write, else the signal."""
        history = self._writes.get(key)
        if history:
            index = bisect.bisect_right(history, t, key=lambda item: item[0])
            if index:
                return history[index - 1][1]
        if self._source is not None:
            return self._source(key, t - self.start)
        return signals.value(self.seed, key, t - self.start, self.model.model_id)

    def truth(self, key: str, t: float) -> Value:
        """Ground truth of ``key`` at clock time ``t``, as a perfect read would decode it."""
        spec = self.spec(key)
        value = self._value(key, t)
        if spec.data_type in (DataType.BOOL, DataType.BIT):
            return bool(value)
        decoded = spec.decode(spec.encode(value))
        return value if decoded is None else decoded

    def _words(self, spec: RegisterSpec, t: float) -> list[int]:
        value = self._value(spec.key, t)
        if spec.data_type is DataType.BIT:
            assert spec.bit is not None
            return [(1 << spec.bit) if value else 0]
        return spec.encode(value)

    # -- requests ----------------------------------------------------------------

    def _check_unit(self, unit_id: int) -> None:
        if unit_id != self.unit_id or not self.answering:
            raise ModbusTimeout(f"no answer from unit {unit_id}", unit_id=unit_id)

    def _check_range(self, table: Table, address: int, count: int, limit: int) -> None:
        if not 1 <= count <= limit:
            raise DeviceFailure(
                f"{table} request for {count} values (1-{limit} allowed)",
                unit_id=self.unit_id,
                address=address,
                code=ILLEGAL_DATA_VALUE,
            )
        space = self.address_space(table)
        if address < 0 or address + count > space.stop:
            raise IllegalAddress(
                f"{table} {address}-{address + count - 1} outside 0-{space.stop - 1}",
                unit_id=self.unit_id,
                address=address,
            )
        hole = next(
            (a for a in sorted(self.holes(table)) if address <= a < address + count),
            None,
        )
        if hole is not None:
            raise IllegalAddress(
                f"{table} address {hole} does not exist",
                unit_id=self.unit_id,
                address=hole,
            )

    def read(self, unit_id: int, table: Table, address: int, count: int) -> list[int]:
        """Read ``count`` words (or 0/1 bits) of ``table`` from ``address`` at clock time."""
        self._check_unit(unit_id)
        limit = MAX_READ_BITS if table.is_bit else self.max_read_words
        if (
            count > limit
            and not table.is_bit
            and self.model.over_limit is OverLimit.TIMEOUT
        ):
            raise ModbusTimeout(
                f"unit {unit_id} leaves a read of {count} registers unanswered",
                unit_id=unit_id,
            )
        self._check_range(table, address, count, limit)
        t = self._clock()
        values = [0] * count
        for spec in self._by_table[table]:
            if spec.address >= address + count or spec.end <= address:
                continue
            for offset, word in enumerate(self._words(spec, t)):
                position = spec.address + offset - address
                if 0 <= position < count:
                    values[position] |= word
        return values

    def _writable(self, table: Table, address: int) -> RegisterSpec:
        for spec in self._by_table[table]:
            if spec.address == address and spec.writable:
                return spec
        raise IllegalAddress(
            f"{table} address {address} is not writable",
            unit_id=self.unit_id,
            address=address,
        )

    def _checked(self, spec: RegisterSpec, value: Value) -> Value:
        definition = self._by_key[spec.key]
        if isinstance(value, int | float) and not isinstance(value, bool):
            # the profile's min/max (presentation fields) are what this device accepts
            low, high = _bound(definition, "min"), _bound(definition, "max")
            if (low is not None and value < low) or (high is not None and value > high):
                raise DeviceFailure(
                    f"{spec.key}: {value} outside {low}-{high}",
                    unit_id=self.unit_id,
                    address=spec.address,
                    code=ILLEGAL_DATA_VALUE,
                )
        return value

    def _record(self, key: str, value: Value) -> None:
        history = self._writes.setdefault(key, [])
        entry = (self._clock(), value)
        bisect.insort_right(history, entry, key=lambda item: item[0])

    def write_registers(
        self, unit_id: int, address: int, values: Sequence[int]
    ) -> None:
        """Write whole writable holding registers starting at ``address``; all or nothing."""
        self._check_unit(unit_id)
        self._check_range(Table.HOLDING, address, len(values), MAX_WRITE_WORDS)
        updates: list[tuple[str, Value]] = []
        position = address
        while position < address + len(values):
            spec = self._writable(Table.HOLDING, position)
            if spec.end > address + len(values):
                raise IllegalAddress(
                    f"{spec.key}: write covers only part of the value",
                    unit_id=unit_id,
                    address=position,
                )
            words = values[position - address : spec.end - address]
            try:
                decoded = spec.decode(words)
            except DecodeError as err:
                raise DeviceFailure(
                    str(err), unit_id=unit_id, address=position, code=ILLEGAL_DATA_VALUE
                ) from err
            if decoded is None:
                raise DeviceFailure(
                    f"{spec.key}: not a finite number",
                    unit_id=unit_id,
                    address=position,
                    code=ILLEGAL_DATA_VALUE,
                )
            updates.append((spec.key, self._checked(spec, decoded)))
            position = spec.end
        for key, value in updates:
            self._record(key, value)

    def write_coil(self, unit_id: int, address: int, value: bool) -> None:
        """Switch a writable coil."""
        self._check_unit(unit_id)
        self._check_range(Table.COIL, address, 1, 1)
        spec = self._writable(Table.COIL, address)
        self._record(spec.key, bool(value))
