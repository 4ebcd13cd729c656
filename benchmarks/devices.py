"""Generic simulated units for generated maps and trace replay.

The demo device (``engine.simulator.SimulatedDevice``) hosts only the demo profile,
so generated installations (200 and 2,000 registers, several units on one bus) and
replayed traces use :class:`SyntheticUnit`: any register map, values taken
sample-and-hold from one array per register at 1-second resolution. The unit behaves
like the demo device where a poller notices: unmapped gaps read 0, reads past the
map or through a hole raise ``IllegalAddress``, oversized reads ``DeviceFailure``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import math
from typing import Unpack

import numpy as np
from numpy.typing import NDArray

from adaptive_modbus_engine.registers import DataType, RegisterSpec, Value
from adaptive_modbus_engine.replay import (
    INT_RANGES,
    MAX_READ_BITS,
    MAX_READ_WORDS,
    SampleHoldUnit,
    UnitOptions,
)

__all__ = [
    "MAX_READ_BITS",
    "MAX_READ_WORDS",
    "SyntheticUnit",
    "clamp_to_type",
    "quantize",
]


def quantize(spec: RegisterSpec, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return what a perfect read of ``spec`` decodes for each raw value (vectorised)."""
    if spec.data_type in (DataType.BOOL, DataType.BIT):
        return np.asarray(values != 0, dtype=np.float64)
    raw = (values - spec.offset) / spec.scale
    if spec.data_type in INT_RANGES:
        low, high = INT_RANGES[spec.data_type]
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
    if spec.data_type in INT_RANGES:
        low, high = INT_RANGES[spec.data_type]
        lo = low * spec.scale + spec.offset
        hi = high * spec.scale + spec.offset
        return np.clip(values, min(lo, hi), max(lo, hi))
    return values


class SyntheticUnit(SampleHoldUnit):
    """One Modbus unit serving ``specs`` from per-key value arrays (1 s, sample-and-hold).

    ``values[key][i]`` is the value over ``[start + i, start + i + 1)``; before the
    first sample the first value holds, after the last the last one does. Reads,
    writes and device faults are the engine library's :class:`SampleHoldUnit`.
    """

    def __init__(
        self,
        unit_id: int,
        specs: Sequence[RegisterSpec],
        values: Mapping[str, NDArray[np.float64]],
        *,
        start: float,
        clock: Callable[[], float],
        **options: Unpack[UnitOptions],
    ) -> None:
        """Serve ``specs`` of ``unit_id`` from ``values`` sampled from ``start``."""
        super().__init__(unit_id, specs, clock=clock, **options)
        self.start = start
        self._values = {
            spec.key: np.asarray(values[spec.key], dtype=np.float64) for spec in specs
        }

    def value(self, key: str, t: float) -> Value:
        """Value of ``key`` at clock time ``t``."""
        series = self._values[key]
        index = min(max(math.floor(t - self.start), 0), len(series) - 1)
        return float(series[index])

    def truth(self, key: str, t: float) -> Value:
        """Ground truth of ``key`` at ``t`` (undecoded engineering value)."""
        return self.value(key, t)
