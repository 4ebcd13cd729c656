"""Learned state: export, import (with an :class:`ImportReport`) and reset.

What is kept across restarts: each register's interval model, time-of-week profile
and quarantine, the learned holes and the units' learned block limits. Times are
stored as wall time (the monotonic clock starts over after a restart); restored
times and backoffs are capped, never trusted; what cannot be used is set aside
with a warning, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import logging
import math
from typing import Any

from .core import EngineCore
from .errors import EngineUsageError, ErrorKind, UnknownRegister
from .faults import (
    HOLE_VERIFY_FAILURE,
    HOLE_VERIFY_MAX,
    LIMIT_RETRY_FIRST,
    LIMIT_RETRY_MAX,
    HoleCheck,
    UnitLimit,
    runs,
)
from .intervals import STATE_VERSION as MODEL_STATE_VERSION, IntervalModel, IntervalPin
from .patterns import STATE_VERSION as PROFILE_STATE_VERSION, ActivityProfile
from .planner import PROTOCOL_MAX_REGISTERS
from .registers import Table
from .registry import QUARANTINE_FIRST, QUARANTINE_MAX, RegisterState

_LOGGER = logging.getLogger(__name__)

STATE_VERSION = 1
# restored quarantines never last longer than this from the restart (absurd or future
# timestamps in a stored state are capped, not trusted)
RESTORED_QUARANTINE_MAX = QUARANTINE_MAX


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :meth:`PollEngine.import_state` really restored."""

    restored: int  # registers whose learned state was applied
    warnings: list[str]


class LearnedState:
    """Exports, restores and forgets what the engine learned."""

    def __init__(self, core: EngineCore) -> None:
        """Export and restore the learned state of ``core``'s registers."""
        self._core = core
        self._regs = core.registry.regs

    # -- export -------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Learned state as a JSON-safe, versioned dict (times in wall time)."""
        offset = self._core.clock.to_wall(0.0)
        return {
            "version": STATE_VERSION,
            "registers": {
                uid: {
                    "model": reg.model.to_dict(),
                    "profile": reg.profile.to_dict(),
                    "quarantined_until": (
                        None
                        if reg.quarantined_until is None
                        else reg.quarantined_until + offset
                    ),
                    "quarantine_backoff": reg.quarantine_backoff,
                }
                for uid, reg in self._regs.items()
            },
            "holes": [
                {
                    "unit_id": unit,
                    "table": table.value,
                    "addresses": list(range(start, end)),
                    "kind": str(check.kind),
                    "verify_at": check.verify_at + offset,
                    "backoff": check.backoff,
                }
                for (unit, table, start, end), check in sorted(
                    self._core.holes.checks.items()
                )
            ],
            "unit_limits": [
                {
                    "unit_id": unit,
                    "max_registers": learned.max_registers,
                    "retry_at": learned.retry_at + offset,
                    "backoff": learned.backoff,
                }
                for unit, learned in sorted(self._core.limits.learned.items())
            ],
            # a user's settings, not learned, but kept with the rest
            "pins": {
                uid: reg.pin.to_dict()
                for uid, reg in self._regs.items()
                if reg.pin is not None
            },
        }

    # -- import -------------------------------------------------------------

    def restore(self, data: Mapping[str, Any]) -> ImportReport:
        """Restore learned state.

        The report says how many registers really got theirs back and what had to be
        set aside or capped.
        """
        warnings: list[str] = []
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else None
            return ImportReport(
                0,
                [
                    f"stored state version {version!r} is not {STATE_VERSION}; starting fresh"
                ],
            )
        self._restore_pins(data.get("pins"), warnings)
        restored = 0
        registers = data.get("registers")
        if isinstance(registers, Mapping):
            for uid, stored in registers.items():
                reg = self._regs.get(uid)
                if reg is None:
                    continue
                if not isinstance(stored, Mapping):
                    warnings.append(f"{uid}: stored state set aside (not a mapping)")
                    continue
                try:
                    warnings.extend(self._restore_register(reg, stored))
                except (TypeError, ValueError, KeyError) as err:
                    self._reset_register(reg)
                    warnings.append(f"{uid}: stored state set aside ({err})")
                else:
                    restored += 1
        elif registers is not None:
            warnings.append("stored registers set aside (not a mapping)")
        _restore_each(data.get("holes"), self._restore_hole, "a stored hole", warnings)
        self._core.holes.rebuild()
        limits = data.get("unit_limits")
        _restore_each(limits, self._restore_limit, "a stored block limit", warnings)
        return ImportReport(restored, warnings)

    def _restore_pins(self, pins: Any, warnings: list[str]) -> None:
        """Restore the pins (a state without any leaves the pins as they are)."""
        if pins is None:
            return
        if not isinstance(pins, Mapping):
            warnings.append("stored pins set aside (not a mapping)")
            return
        for reg in self._regs.values():
            stored = pins.get(reg.spec.uid)
            pin = None
            if stored is not None:
                try:
                    pin = IntervalPin.from_dict(stored)
                except (TypeError, ValueError) as err:
                    warnings.append(f"{reg.spec.uid}: stored pin set aside ({err})")
            if pin != reg.pin:
                reg.pin = pin
                self._core.registry.apply_pin(reg)

    def _restore_hole(self, item: Mapping[str, Any]) -> None:
        """One stored hole; one without a check (older state) is checked again soon."""
        unit, table = int(item["unit_id"]), Table(item["table"])
        addresses = {int(a) for a in item["addresses"]}
        kind = ErrorKind(item.get("kind", ErrorKind.DEVICE_FAILURE))
        backoff = _finite(item.get("backoff", HOLE_VERIFY_FAILURE), "backoff")
        backoff = min(max(backoff, HOLE_VERIFY_FAILURE), HOLE_VERIFY_MAX)
        now = self._core.clock.now()
        stored = item.get("verify_at")
        verify_at = now + HOLE_VERIFY_FAILURE
        if stored is not None:  # stored in wall time
            verify_at = self._core.clock.from_wall(_finite(stored, "verify_at"))
        for start, end in runs(addresses):
            check = HoleCheck(kind, min(verify_at, now + backoff), backoff)
            self._core.holes.checks[(unit, table, start, end)] = check

    def _restore_limit(self, item: Mapping[str, Any]) -> None:
        unit, count = int(item["unit_id"]), int(item["max_registers"])
        if not 1 <= count <= PROTOCOL_MAX_REGISTERS:
            raise ValueError(
                f"max_registers {count} outside 1-{PROTOCOL_MAX_REGISTERS}"
            )
        backoff = _finite(item.get("backoff", LIMIT_RETRY_FIRST), "backoff")
        backoff = min(max(backoff, LIMIT_RETRY_FIRST), LIMIT_RETRY_MAX)
        now = self._core.clock.now()
        stored = item.get("retry_at")
        retry_at = (
            now
            if stored is None
            else self._core.clock.from_wall(_finite(stored, "retry_at"))
        )
        retry_at = min(retry_at, now + backoff)
        if count < self._core.limits.cap(unit):
            self._core.limits.learned[unit] = UnitLimit(count, retry_at, backoff)

    def _reset_register(self, reg: RegisterState) -> None:
        """Learning starts clean for a register whose stored state was set aside."""
        self._core.registry.relearn(reg)
        reg.quarantined_until, reg.quarantine_backoff = None, QUARANTINE_FIRST

    def _restore_register(
        self, reg: RegisterState, stored: Mapping[str, Any]
    ) -> list[str]:
        """Apply one register's stored state.

        Raises on what cannot be used at all; returns warnings for values that were
        capped.
        """
        uid = reg.spec.uid
        warnings: list[str] = []
        until = stored.get("quarantined_until")
        backoff = stored.get("quarantine_backoff", QUARANTINE_FIRST)
        if until is not None:
            until, backoff = float(until), float(backoff)
            if not (math.isfinite(until) and math.isfinite(backoff)):
                raise ValueError(
                    f"quarantine {until!r} / backoff {backoff!r} is not finite"
                )
        stored_model = stored.get("model")
        if not (
            isinstance(stored_model, Mapping)
            and stored_model.get("version") in (1, MODEL_STATE_VERSION)
        ):
            raise ValueError("its interval model is missing or of another version")
        limits = reg.model.limits
        model = IntervalModel.from_dict(
            stored_model,
            tolerance=reg.tolerance,
            limits=limits,
            numeric=reg.spec.is_numeric,
        )
        model.forget_baseline()
        stored_profile = stored.get("profile")
        if isinstance(stored_profile, Mapping) and (
            stored_profile.get("version") in (1, PROFILE_STATE_VERSION)
        ):
            profile = ActivityProfile.from_dict(stored_profile, tz=self._core.config.tz)
        else:
            profile = ActivityProfile(tz=self._core.config.tz)
            warnings.append(f"{uid}: stored time-of-week pattern set aside")
        reg.model, reg.profile = model, profile
        if until is None:
            return warnings
        if not QUARANTINE_FIRST <= backoff <= QUARANTINE_MAX:
            capped = min(max(backoff, QUARANTINE_FIRST), QUARANTINE_MAX)
            warnings.append(
                f"{uid}: stored quarantine backoff {backoff:.0f} s capped to {capped:.0f} s"
            )
            backoff = capped
        now = self._core.clock.now()
        remaining = until - self._core.clock.to_wall(now)
        if remaining > RESTORED_QUARANTINE_MAX:
            warnings.append(
                f"{uid}: stored quarantine ends {remaining:.0f} s from now; "
                f"capped to {RESTORED_QUARANTINE_MAX:.0f} s"
            )
            remaining = RESTORED_QUARANTINE_MAX
        reg.quarantined_until = now + max(remaining, 0.0)
        reg.quarantine_backoff = backoff
        self._core.schedule.due_at(reg, reg.quarantined_until)
        return warnings

    # -- forgetting ---------------------------------------------------------

    def reset(self, *, unit_id: int | None = None, uid: str | None = None) -> None:
        """Forget what was learned, for one register, one unit, or everything.

        See ``PollEngine.reset_learning``.
        """
        if uid is not None:
            if uid not in self._regs:
                raise UnknownRegister(f"unknown register: {uid}")
            spec = self._regs[uid].spec
            if unit_id is not None and spec.unit_id != unit_id:
                raise EngineUsageError(f"{uid} is not on unit {unit_id}")
            regs = [self._regs[uid]]
        elif unit_id is not None:
            regs = [reg for reg in self._regs.values() if reg.spec.unit_id == unit_id]
        else:
            regs = list(self._regs.values())
        now = self._core.clock.now()
        for reg in regs:
            self._core.registry.relearn(reg)
            reg.quarantined_until = None
            reg.quarantine_backoff = QUARANTINE_FIRST
            reg.failure_streak = 0
            reg.effective_interval = 0.0
            reg.pattern_factor = 1.0
            if reg.enabled:
                self._core.schedule.due_at(reg, now)
        self._core.holes.reset(unit_id, None if uid is None else self._regs[uid].spec)
        if uid is None:
            self._core.limits.reset(unit_id)
        _LOGGER.info(
            "learning reset for %s",
            uid
            if uid is not None
            else f"unit {unit_id}"
            if unit_id is not None
            else "all",
        )


def _restore_each(
    items: Any,
    restore: Callable[[Mapping[str, Any]], None],
    what: str,
    warnings: list[str],
) -> None:
    """Restore each stored item of a list; one that cannot be used is set aside."""
    for item in items if isinstance(items, list) else []:
        try:
            restore(item)
        except (TypeError, ValueError, KeyError) as err:
            warnings.append(f"{what} was set aside ({err})")


def _finite(value: Any, name: str) -> float:
    """Return a stored number; raise ``ValueError`` when it is not a finite one."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} {value!r} is not a finite number")
    return number
