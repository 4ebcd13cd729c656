"""Writes: they jump the read queue, are read back, and the register is watched closely.

A write that may have reached the device is never retried here: when the write
went through but reading it back failed, :class:`WriteUnconfirmed` says so.
"""

from __future__ import annotations

from .bus import CycleState
from .core import EngineCore
from .errors import EngineUsageError, ModbusError, UnknownRegister, WriteUnconfirmed
from .intervals import Reason
from .observe import Observer
from .registers import Value
from .registry import single_read
from .stats import IntervalChange


class Writer:
    """Writes one register value at a time."""

    def __init__(self, core: EngineCore, *, observer: Observer) -> None:
        """Write registers through the engine's parts."""
        self._core = core
        self._regs = core.registry.regs
        self._observer = observer

    async def write(self, uid: str, value: Value) -> Value:
        """Write a value, read it back, poll it closely again (see ``PollEngine.write``)."""
        reg = self._regs.get(uid)
        if reg is None:
            raise UnknownRegister(f"unknown register: {uid}")
        spec = reg.spec
        if not spec.writable:
            raise EngineUsageError(f"{uid} is not writable")
        words = spec.encode(value)
        await self._core.bus.write(spec, words)
        t1 = self._core.clock.now()
        decision = reg.model.reset(t1, Reason.WRITE)
        self._core.stats.add_interval_change(
            IntervalChange(t1, uid, decision.previous, decision.interval, str(decision.reason),
                           decision.detail)
        )  # fmt: skip
        block = single_read(spec)
        cycle = CycleState()
        result = await self._core.bus.read(block, cycle)
        if isinstance(result, ModbusError):
            # the device took the write: say so, and read the register again soon
            self._observer.fail(block.keys, cycle, self._core.clock.now())
            raise WriteUnconfirmed(
                f"{uid}: wrote {value!r} but reading it back failed: {result}",
                value=value,
                read_error=result,
                unit_id=spec.unit_id,
                address=spec.address,
                code=result.code,
            ) from result
        self._observer.apply(block, result, self._core.clock.now(), cycle)
        return reg.value if reg.value is not None else value
