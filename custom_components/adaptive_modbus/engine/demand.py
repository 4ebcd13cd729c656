"""Demand-driven polling: a unit someone is watching is polled closer.

While a live view (a card, a panel) is open on a unit, the upper bound of its
registers' intervals shrinks to ``EngineConfig.viewed_factor`` of ``max_interval``;
when the last viewer leaves it relaxes. Registers that already change fast enough to
be polled below the shrunk bound are not affected. A register whose interval the
viewers shortened says so: its reason is "viewed".

The count of viewers per unit is kept here (reference counting is the caller's or
:meth:`PollEngine.viewing`'s job); when a unit's viewers go from none to some, or from
some to none, every settled register of the unit is rescheduled from its last read,
so the change takes effect at once rather than after each register's next read
(registers the cap does not touch keep their due times).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from .core import EngineCore
from .errors import EngineUsageError
from .intervals import viewed_interval
from .registry import RegisterState
from .unit_recovery import UnitDown


class Demand:
    """Viewers per unit, and the rescheduling when a unit starts or stops being viewed."""

    def __init__(self, core: EngineCore, *, down: Mapping[int, UnitDown]) -> None:
        """Work on the engine's schedule; units in ``down`` wait for their probe."""
        self._core = core
        self._down = down
        core.schedule.viewed_cap = self.cap

    def cap(self, reg: RegisterState, interval: float) -> float:
        """Return the register's next interval, shortened if its unit is viewed.

        Marks the register ``viewed`` when the viewers are what shortened it.
        """
        reg.viewed = False
        if not self._core.config.adaptive or not self.viewers(reg.spec.unit_id):
            return interval
        shrunk = viewed_interval(
            interval, reg.model.limits, self._core.config.viewed_factor
        )
        reg.viewed = shrunk < interval
        return shrunk

    @property
    def viewed(self) -> Mapping[int, int]:
        """Units with live viewers, and how many."""
        return self._core.schedule.viewed

    def viewers(self, unit_id: int) -> int:
        """Return the live viewers of a unit (0 when none)."""
        return self._core.schedule.viewed.get(unit_id, 0)

    def set_viewed(self, unit_id: int, viewers: int) -> None:
        """Set how many live views watch ``unit_id`` (0: nobody)."""
        uids = self._core.registry.unit_uids.get(unit_id)
        if uids is None:
            raise EngineUsageError(f"no register is polled on unit {unit_id}")
        if viewers < 0:
            raise EngineUsageError(f"viewers must be >= 0, got {viewers}")
        schedule = self._core.schedule
        before = schedule.viewed.get(unit_id, 0)
        if viewers:
            schedule.viewed[unit_id] = viewers
        else:
            schedule.viewed.pop(unit_id, None)
        if bool(before) == bool(viewers) or unit_id in self._down:
            return
        now = self._core.clock.now()
        regs = self._core.registry.regs
        factor = self._core.config.viewed_factor
        for uid in uids:
            reg = regs[uid]
            if (
                not reg.enabled
                or uid in schedule.unscheduled  # in a cycle: rescheduled by it
                or reg.quarantined_until is not None
                or reg.failure_streak
            ):
                continue
            # only the registers the cap touches: the others keep their due time
            capped = reg.viewed or (
                viewed_interval(reg.effective_interval, reg.model.limits, factor)
                < reg.effective_interval
            )
            if capped:
                schedule.rebase(reg, now)


class Viewing:
    """One viewer of a unit while the ``with`` block runs (:meth:`PollEngine.viewing`)."""

    def __init__(self, demand: Demand, unit_id: int) -> None:
        """Count a viewer of ``unit_id`` on entering, uncount it on leaving."""
        self._demand = demand
        self._unit_id = unit_id

    def __enter__(self) -> None:
        """Add the viewer."""
        demand, unit = self._demand, self._unit_id
        demand.set_viewed(unit, demand.viewers(unit) + 1)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Remove the viewer (relaxing the unit when it was the last)."""
        demand, unit = self._demand, self._unit_id
        demand.set_viewed(unit, max(0, demand.viewers(unit) - 1))
