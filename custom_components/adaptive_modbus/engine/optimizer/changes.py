"""Parameter changes: what a strategy proposes, applied through the engine's API.

A :class:`Change` is one parameter of one target (a register uid, a unit, the
connection) from ``before`` to ``after``; ``None`` means "the default" (a tuned
value cleared). :func:`apply_change` is the only way the optimizer touches an
engine, live or in a shadow replay: the same code in both. A :class:`Proposal`
groups the changes a strategy proposes together, with the predicted effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EngineUsageError
from ..planner import CostModel
from ..scheduler import PollEngine

PARAMETERS = (
    "interval_bounds",
    "step_budget",
    "noise_margin",
    "tolerance",
    "unit_max_registers",
    "unit_max_gap",
    "cost_model",
    "pattern",
    "planner",
)


@dataclass(frozen=True)
class Change:
    """One parameter of one target, from ``before`` to ``after`` (None: default)."""

    parameter: str
    target: str
    before: Any
    after: Any

    def reverted(self) -> Change:
        """Return the change that undoes this one."""
        return Change(self.parameter, self.target, self.after, self.before)

    def as_dict(self) -> dict[str, Any]:
        """Return plain data."""
        return {
            "parameter": self.parameter,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Change:
        """Rebuild from :meth:`as_dict`; raises ``ValueError`` on bad data."""
        if not isinstance(data, dict) or data.get("parameter") not in PARAMETERS:
            raise ValueError(f"not a change: {data!r}")
        return cls(
            str(data["parameter"]),
            str(data["target"]),
            data.get("before"),
            data.get("after"),
        )


def unit_of(target: str) -> int:
    """Return the unit id of a ``"unit N"`` target."""
    return int(target.removeprefix("unit "))


def apply_change(engine: PollEngine, parameter: str, target: str, value: Any) -> None:
    """Set ``parameter`` of ``target`` to ``value`` through the engine's API."""
    if parameter == "interval_bounds":
        if value is None:
            engine.set_interval_bounds(target, clear=True)
        else:
            engine.set_interval_bounds(
                target, min_interval=float(value[0]), max_interval=float(value[1])
            )
    elif parameter == "step_budget":
        engine.set_step_budget(target, None if value is None else float(value))
    elif parameter == "noise_margin":
        engine.set_noise_margin(target, None if value is None else float(value))
    elif parameter == "tolerance":
        engine.set_tolerance(target, float(value))
    elif parameter == "unit_max_registers":
        engine.set_unit_max_registers(
            unit_of(target), None if value is None else int(value)
        )
    elif parameter == "unit_max_gap":
        engine.set_unit_max_gap(unit_of(target), None if value is None else int(value))
    elif parameter == "cost_model":
        engine.set_cost_model(None if value is None else CostModel(*value))
    elif parameter == "pattern":
        engine.set_pattern_params(strength=float(value[0]), lead=float(value[1]))
    elif parameter == "planner":
        engine.set_planner_params(
            rider_value=float(value[0]), early_fraction=float(value[1])
        )
    else:
        raise EngineUsageError(f"unknown parameter {parameter!r}")


def apply_all(
    engine: PollEngine, changes: Sequence[Change], *, revert: bool = False
) -> None:
    """Apply ``changes`` (their ``after``; with ``revert`` their ``before``, in reverse)."""
    for change in reversed(changes) if revert else changes:
        apply_change(
            engine,
            change.parameter,
            change.target,
            change.before if revert else change.after,
        )


def current_value(engine: PollEngine, parameter: str, target: str) -> Any:
    """Return what ``parameter`` of ``target`` is now, as a change's value (None: default)."""
    tuning = engine.tuning()
    if parameter == "interval_bounds":
        bounds = tuning["interval_bounds"].get(target)
        return None if bounds is None else list(bounds)
    if parameter in ("step_budget", "noise_margin"):
        return tuning[parameter].get(target)
    if parameter == "tolerance":
        return engine.tolerance(target)
    if parameter in ("unit_max_registers", "unit_max_gap"):
        return tuning[parameter].get(str(unit_of(target)))
    if parameter == "cost_model":
        return tuning["cost"]
    if parameter == "pattern":
        lead = tuning["pattern_lead"]
        return [tuning["pattern_strength"], 900.0 if lead is None else lead]
    if parameter == "planner":
        return list(engine.planner_params())
    raise EngineUsageError(f"unknown parameter {parameter!r}")


@dataclass
class Proposal:
    """Changes one strategy proposes together, with their predicted effect."""

    id: str
    strategy: str
    target: str
    parameter: str
    changes: tuple[Change, ...]
    before: Any
    after: Any
    needs_approval: bool = False
    reason: str = ""
    predicted: dict[str, Any] = field(default_factory=dict)
    gain: float | None = None  # predicted, on the goal
    verdict: str = ""  # why it was (not) applied
    repair: bool = False  # stops known failures: applied before mere gains

    def as_dict(self) -> dict[str, Any]:
        """Return plain data (what services return)."""
        return {
            "id": self.id,
            "strategy": self.strategy,
            "target": self.target,
            "parameter": self.parameter,
            "before": self.before,
            "after": self.after,
            "predicted": self.predicted,
            "predicted_gain": None if self.gain is None else round(self.gain, 4),
            "needs_approval": self.needs_approval,
            "reason": self.reason,
            "verdict": self.verdict,
            "repair": self.repair,
            "changes": [change.as_dict() for change in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Proposal:
        """Rebuild from :meth:`as_dict`; raises ``ValueError`` on bad data."""
        if not isinstance(data, dict):
            raise TypeError("not a proposal")
        gain = data.get("predicted_gain")
        return cls(
            id=str(data["id"]),
            strategy=str(data["strategy"]),
            target=str(data["target"]),
            parameter=str(data["parameter"]),
            changes=tuple(Change.from_dict(c) for c in data.get("changes") or ()),
            before=data.get("before"),
            after=data.get("after"),
            needs_approval=bool(data.get("needs_approval")),
            reason=str(data.get("reason", "")),
            predicted=dict(data.get("predicted") or {}),
            gain=None if gain is None else float(gain),
            verdict=str(data.get("verdict", "")),
            repair=bool(data.get("repair", False)),
        )
