"""The engine's parameter API: run-time changes of bounds, budgets, limits and patterns.

The optimization loop and users change how the engine polls through these calls,
never by reaching into its parts. Every change is validated (an
:class:`EngineUsageError` names the parameter and its range), takes effect at once
(a register whose bounds change is clamped and rescheduled) and is kept in the
engine's :class:`~.config.Tuning`, which :meth:`TuningApi.export` returns as plain
data and :meth:`TuningApi.apply` restores (e.g. after a restart).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import math
from typing import Any, Literal

from .config import Tuning
from .core import EngineCore
from .errors import EngineUsageError
from .intervals import NOISE_MARGIN, STEP_BUDGET, aligned_due, quantize
from .patterns import DEFAULT_LOOKAHEAD
from .planner import PROTOCOL_MAX_REGISTERS, CostModel
from .registry import RegisterState

TUNING_VERSION = 1
INTERVAL_RANGE = (0.1, 7 * 86400.0)  # s: bounds a register's interval may take
STEP_BUDGET_RANGE = (0.001, 0.5)
NOISE_MARGIN_RANGE = (0.0, 20.0)
MAX_GAP_RANGE = (0, PROTOCOL_MAX_REGISTERS)
PATTERN_STRENGTH_RANGE = (0.0, 2.0)
PATTERN_LEAD_RANGE = (0.0, 7200.0)
TOLERANCE_RANGE = (0.0, 1e9)


def check_range(name: str, value: float, bounds: tuple[float, float]) -> float:
    """Return ``value`` as a float, or raise naming ``name`` and its range."""
    low, high = bounds
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise EngineUsageError(
            f"{name} must be a number from {low:g} to {high:g}, got {value!r}"
        )
    return float(value)


class TuningApi:
    """Applies, validates and exports the run-time parameters of one engine."""

    def __init__(self, core: EngineCore) -> None:
        """Change the parameters of ``core``."""
        self._core = core
        self._tuning: Tuning = core.tuning

    # -- registers ------------------------------------------------------------

    def set_interval_bounds(
        self,
        reg: RegisterState,
        min_interval: float | None,
        max_interval: float | None,
        *,
        clear: bool = False,
    ) -> tuple[float, float]:
        """Set (or with ``clear`` drop) a register's tuned bounds; returns the old ones."""
        model = reg.model
        before = (model.limits.min_interval, model.limits.max_interval)
        uid = reg.spec.uid
        if clear:
            self._tuning.interval_bounds.pop(uid, None)
        else:
            low = before[0] if min_interval is None else min_interval
            high = before[1] if max_interval is None else max_interval
            low = check_range(f"{uid} min_interval", low, INTERVAL_RANGE)
            high = check_range(f"{uid} max_interval", high, INTERVAL_RANGE)
            if low > high:
                raise EngineUsageError(
                    f"{uid}: min_interval {low:g} s must not exceed max_interval {high:g} s"
                )
            self._tuning.interval_bounds[uid] = (low, high)
        # a user's pin still wins over tuned bounds
        self._core.registry.apply_pin(reg)
        self._reschedule(reg)
        return before

    def set_step_budget(self, reg: RegisterState, budget: float | None) -> float:
        """Set a register's step budget (None: default); returns the old one."""
        return self._set_model_value(
            reg, "step_budget", budget, STEP_BUDGET, STEP_BUDGET_RANGE
        )

    def set_noise_margin(self, reg: RegisterState, margin: float | None) -> float:
        """Set a register's noise margin (None: default); returns the old one."""
        return self._set_model_value(
            reg, "noise_margin", margin, NOISE_MARGIN, NOISE_MARGIN_RANGE
        )

    def _set_model_value(
        self,
        reg: RegisterState,
        name: Literal["step_budget", "noise_margin"],
        value: float | None,
        default: float,
        allowed: tuple[float, float],
    ) -> float:
        """Set the interval model's ``name`` and remember it in the tuning (None: default)."""
        before: float = getattr(reg.model, name)
        uid = reg.spec.uid
        tuned: dict[str, float] = getattr(self._tuning, name)
        if value is None:
            tuned.pop(uid, None)
            setattr(reg.model, name, default)
        else:
            checked = check_range(f"{uid} {name}", value, allowed)
            tuned[uid] = checked
            setattr(reg.model, name, checked)
        return before

    def set_tolerance(self, reg: RegisterState, tolerance: float) -> float:
        """Change a register's tolerance; returns the old one."""
        value = check_range(f"{reg.spec.uid} tolerance", tolerance, TOLERANCE_RANGE)
        before = reg.tolerance
        reg.tolerance = value
        reg.model.tolerance = value
        return before

    # -- units ----------------------------------------------------------------

    def set_unit_max_registers(self, unit_id: int, count: int | None) -> int:
        """Cap a unit's largest read (None: configured); returns the limit before."""
        limits = self._core.limits
        before = limits.limit(unit_id)
        if count is None:
            self._tuning.unit_max_registers.pop(unit_id, None)
            return before
        value = check_range(
            f"unit {unit_id} max_registers", count, (1, PROTOCOL_MAX_REGISTERS)
        )
        if value != int(value):
            raise EngineUsageError(
                f"unit {unit_id} max_registers must be a whole number, got {count!r}"
            )
        # a learned limit stays: retried at the cap, it answers and is forgotten
        self._tuning.unit_max_registers[unit_id] = int(value)
        return before

    def set_unit_max_gap(self, unit_id: int, gap: int | None) -> int | None:
        """Set a unit's allowed gap (None: from the cost model); returns the old one."""
        before = self._tuning.unit_max_gap.get(unit_id)
        if gap is None:
            self._tuning.unit_max_gap.pop(unit_id, None)
            return before
        value = check_range(f"unit {unit_id} max_gap", gap, MAX_GAP_RANGE)
        if value != int(value):
            raise EngineUsageError(
                f"unit {unit_id} max_gap must be a whole number, got {gap!r}"
            )
        self._tuning.unit_max_gap[unit_id] = int(value)
        return before

    # -- patterns -------------------------------------------------------------

    def set_pattern_params(
        self, strength: float | None, lead: float | None
    ) -> tuple[float, float]:
        """Set pattern strength and lead; returns (strength, lead) before."""
        tuning = self._tuning
        before = (
            tuning.pattern_strength,
            DEFAULT_LOOKAHEAD if tuning.pattern_lead is None else tuning.pattern_lead,
        )
        if strength is not None:
            tuning.pattern_strength = check_range(
                "pattern strength", strength, PATTERN_STRENGTH_RANGE
            )
        if lead is not None:
            tuning.pattern_lead = check_range("pattern lead", lead, PATTERN_LEAD_RANGE)
            for reg in self._core.registry.regs.values():
                reg.profile.lookahead = tuning.pattern_lead
        return before

    # -- export / apply -------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """Return the tuning as JSON-safe data (see :meth:`apply`)."""
        tuning = self._tuning
        cost = tuning.cost
        return {
            "version": TUNING_VERSION,
            "interval_bounds": {
                uid: list(bounds)
                for uid, bounds in sorted(tuning.interval_bounds.items())
            },
            "step_budget": dict(sorted(tuning.step_budget.items())),
            "noise_margin": dict(sorted(tuning.noise_margin.items())),
            "unit_max_registers": {
                str(u): n for u, n in sorted(tuning.unit_max_registers.items())
            },
            "unit_max_gap": {str(u): n for u, n in sorted(tuning.unit_max_gap.items())},
            "cost": None
            if cost is None
            else [cost.request_overhead, cost.per_register, cost.per_bit],
            "pattern_strength": tuning.pattern_strength,
            "pattern_lead": tuning.pattern_lead,
        }

    def apply(self, data: Mapping[str, Any]) -> list[str]:
        """Apply exported tuning; what cannot be used is set aside with a warning."""
        if not isinstance(data, Mapping) or data.get("version") != TUNING_VERSION:
            version = data.get("version") if isinstance(data, Mapping) else None
            return [f"stored tuning version {version!r} set aside"]
        warnings: list[str] = []
        regs = self._core.registry.regs

        def each(section: str) -> list[tuple[str, Any]]:
            items = data.get(section) or {}
            if not isinstance(items, Mapping):
                warnings.append(f"tuning {section} set aside (not a mapping)")
                return []
            return list(items.items())

        for uid, bounds in each("interval_bounds"):
            if self._known(warnings, uid, uid in regs) and isinstance(bounds, list):
                self._guard(warnings, uid, self.set_interval_bounds, regs[uid], *bounds)
        for uid, value in each("step_budget"):
            if self._known(warnings, uid, uid in regs):
                self._guard(warnings, uid, self.set_step_budget, regs[uid], value)
        for uid, value in each("noise_margin"):
            if self._known(warnings, uid, uid in regs):
                self._guard(warnings, uid, self.set_noise_margin, regs[uid], value)
        for unit, value in each("unit_max_registers"):
            if self._known(warnings, f"unit {unit}", str(unit).isdigit()):
                self._guard(
                    warnings, unit, self.set_unit_max_registers, int(unit), value
                )
        for unit, value in each("unit_max_gap"):
            if self._known(warnings, f"unit {unit}", str(unit).isdigit()):
                self._guard(warnings, unit, self.set_unit_max_gap, int(unit), value)
        cost = data.get("cost")
        if cost is not None and self._known(
            warnings, "cost", isinstance(cost, list) and len(cost) == 3
        ):
            self._guard(warnings, "cost", self._set_cost, *cost)
        self._guard(
            warnings,
            "patterns",
            self.set_pattern_params,
            data.get("pattern_strength"),
            data.get("pattern_lead"),
        )
        return warnings

    def _set_cost(self, overhead: float, per_register: float, per_bit: float) -> None:
        self._tuning.cost = CostModel(overhead, per_register, per_bit)

    @staticmethod
    def _known(warnings: list[str], what: str, ok: bool) -> bool:
        if not ok:
            warnings.append(f"tuning for {what} set aside")
        return ok

    @staticmethod
    def _guard(
        warnings: list[str], what: object, action: Callable[..., object], *args: Any
    ) -> None:
        try:
            action(*args)
        except (EngineUsageError, TypeError, ValueError) as err:
            warnings.append(f"tuning for {what} set aside ({err})")

    # -- helpers --------------------------------------------------------------

    def _reschedule(self, reg: RegisterState) -> None:
        """Put a register whose bounds changed on its new (aligned) interval."""
        schedule = self._core.schedule
        if (
            not reg.enabled
            or reg.quarantined_until is not None
            or reg.spec.uid in schedule.unscheduled
            or not self._core.config.adaptive
        ):
            return
        now = self._core.clock.now()
        interval = quantize(reg.model.interval * reg.pattern_factor, reg.model.limits)
        reg.effective_interval = interval
        due = now if reg.last_read is None else aligned_due(reg.last_read, interval)
        schedule.due_at(reg, max(due, now))
