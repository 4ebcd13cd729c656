"""Goals as concrete objectives, and the one judgement used for predictions and measurements.

Each :class:`Goal` is an :class:`Objective`: a primary figure to improve and budgets
for what may get worse. The same :meth:`Objective.judge` decides whether a
predicted effect (shadow replay) is worth applying and whether a measured effect
(evaluation window against the window before) is kept.

Figures (all "lower is better"): ``requests_per_min``, ``bus_utilisation`` (0-1),
``error_rate`` (failed per request), ``p95_latency`` (s), ``time_out_of_tolerance``
(share of time a shown value is beyond its tolerance, 0-1) and
``first_change_delay`` (s from a change beyond tolerance until it is read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
import math
from typing import Any

Figures = Mapping[str, float]


class Goal(StrEnum):
    """What the loop optimizes for on a connection."""

    MIN_BUS_LOAD = "min_bus_load"
    BALANCED = "balanced"
    FRESHEST = "freshest"


@dataclass(frozen=True)
class Objective:
    """A goal made concrete.

    ``primary`` weighs figures into one cost (lower is better): the gain of a change
    is the relative drop of that cost. The budgets say how much worse the other
    figures may get, relative (``*_rel``) with an absolute floor (``*_abs``) so a
    tiny base is not judged by noise.
    """

    goal: Goal
    weights: Mapping[str, float]
    staleness_budget_rel: float  # time out of tolerance may grow by this share
    staleness_budget_abs: (
        float  # ... or by this much (share of time), whichever is more
    )
    load_budget_rel: float  # bus utilisation may grow by this share
    error_margin_abs: float  # error rate may grow by this much
    latency_margin_rel: float  # p95 latency may grow by this share
    min_gain: float = 0.02  # smallest predicted gain worth a change
    # a measured gain down to -keep_noise still keeps a change: a 15-minute window
    # measures a change that helps by a few percent with about that much noise
    keep_noise: float = 0.05
    # ... and the budgets of a measurement are this many times those of a prediction
    keep_slack: float = 3.0

    def cost(self, figures: Figures, base: Figures) -> float:
        """Return the weighted cost of ``figures``, each relative to ``base``."""
        total = 0.0
        for name, weight in self.weights.items():
            reference = max(base.get(name, 0.0), FIGURE_FLOORS[name])
            total += weight * figures.get(name, 0.0) / reference
        return total

    def gain(self, before: Figures, after: Figures) -> float:
        """Return the relative drop of the cost from ``before`` to ``after``."""
        cost_before = self.cost(before, before)
        if cost_before <= 0:
            return 0.0
        return (cost_before - self.cost(after, before)) / cost_before

    def judge(
        self, before: Figures, after: Figures, *, keep: bool = False
    ) -> tuple[bool, float, list[str]]:
        """Return (better and within budgets, gain, reasons against).

        For a prediction the gain must reach ``min_gain``; for a measurement
        (``keep``) it must not fall below ``-keep_noise``.
        """
        gain = self.gain(before, after)
        reasons: list[str] = []
        floor = -self.keep_noise if keep else self.min_gain
        if gain < floor:
            reasons.append(f"gain {gain:.1%} on {self.goal} below {floor:.0%}")
        slack = self.keep_slack if keep else 1.0
        tot_b, tot_a = (f.get("time_out_of_tolerance", 0.0) for f in (before, after))
        allowed = slack * max(
            tot_b * self.staleness_budget_rel, self.staleness_budget_abs
        )
        if tot_a > tot_b + allowed:
            reasons.append(
                f"time out of tolerance {tot_a:.2%} > {tot_b:.2%} + budget {allowed:.2%}"
            )
        bus_b, bus_a = (f.get("bus_utilisation", 0.0) for f in (before, after))
        bus_floor = slack * FIGURE_FLOORS["bus_utilisation"]
        if bus_a > bus_b * (1 + slack * self.load_budget_rel) + bus_floor:
            reasons.append(f"bus utilisation {bus_a:.2%} > {bus_b:.2%} + budget")
        err_b, err_a = (f.get("error_rate", 0.0) for f in (before, after))
        if err_a > err_b + self.error_margin_abs:
            reasons.append(f"error rate {err_a:.2%} > {err_b:.2%} + margin")
        lat_b, lat_a = (f.get("p95_latency", 0.0) for f in (before, after))
        if lat_b > 0 and lat_a > lat_b * (1 + self.latency_margin_rel) + 0.005:
            reasons.append(
                f"p95 latency {lat_a * 1000:.0f} ms > {lat_b * 1000:.0f} ms + margin"
            )
        return not reasons, gain, reasons

    def worse_t(
        self,
        before: Sequence[Figures],
        after: Sequence[Figures],
        *,
        plan: bool = False,
    ) -> float:
        """How significantly the minutes after a change are worse than those before.

        The largest Welch t statistic of: the objective's cost per minute (each
        figure relative to the mean before), and the time out of tolerance beyond
        its budget (measurement slack). Below about 2 a difference is within what
        the workload's minute-to-minute variance scatters. ``plan``: the read-plan
        objective (:meth:`judge_plan`).
        """
        if len(before) < 2 or len(after) < 2:
            return math.inf
        costs_b, costs_a, means = self._minute_costs(before, after, plan=plan)
        stats = [_welch(costs_a, costs_b, 0.0)]
        if not plan:
            tot_b = [f.get("time_out_of_tolerance", 0.0) for f in before]
            tot_a = [f.get("time_out_of_tolerance", 0.0) for f in after]
            mean_b = means["time_out_of_tolerance"]
            allowed = self.keep_slack * max(
                mean_b * self.staleness_budget_rel, self.staleness_budget_abs
            )
            stats.append(_welch(tot_a, tot_b, allowed))
        return max(stats)

    def gain_error(
        self,
        before: Sequence[Figures],
        after: Sequence[Figures],
        *,
        plan: bool = False,
    ) -> float:
        """Return the standard error of a measured gain, from the minutes' scatter.

        The objective's cost per minute (each figure relative to the mean before)
        scatters with the workload; the error of the difference of the two means,
        relative to the mean cost before, is how far a measured gain may be off.
        ``inf`` with fewer than two minutes on either side.
        """
        if len(before) < 2 or len(after) < 2:
            return math.inf
        costs_b, costs_a, _ = self._minute_costs(before, after, plan=plan)
        mean_b = sum(costs_b) / len(costs_b)
        if mean_b <= 0:
            return math.inf
        return _standard_error(costs_a, costs_b) / mean_b

    def _minute_costs(
        self, before: Sequence[Figures], after: Sequence[Figures], *, plan: bool
    ) -> tuple[list[float], list[float], dict[str, float]]:
        """Return the objective's cost per minute before and after, and the means before.

        Each figure is taken relative to its mean over the minutes before (the means
        include the time out of tolerance, which :meth:`worse_t` tests on its own).
        """
        objective = self.plan_objective() if plan else self
        means = {
            name: sum(f.get(name, 0.0) for f in before) / len(before)
            for name in (*objective.weights, "time_out_of_tolerance")
        }
        costs_b = [objective.cost(f, means) for f in before]
        costs_a = [objective.cost(f, means) for f in after]
        return costs_b, costs_a, means

    def plan_objective(self) -> Objective:
        """Return the objective a read-plan change is judged by (:meth:`judge_plan`)."""
        return Objective(
            self.goal,
            weights={
                "bus_per_register": 0.45,
                "requests_per_register": 0.45,
                "error_rate": 0.1,
            },
            staleness_budget_rel=math.inf,
            staleness_budget_abs=math.inf,
            load_budget_rel=math.inf,
            error_margin_abs=self.error_margin_abs,
            latency_margin_rel=self.latency_margin_rel,
            keep_noise=self.keep_noise,
        )

    def judge_plan(
        self, before: Figures, after: Figures
    ) -> tuple[bool, float, list[str]]:
        """Judge a measured change of the read plan (block limits, gaps, cost model).

        On what a read costs, per register read (requests and bus time), which does
        not move with how much there was to read, plus the error rate and latency:
        kept unless worse beyond ``keep_noise`` or the margins.
        """
        return self.plan_objective().judge(before, after, keep=True)

    def as_dict(self) -> dict[str, Any]:
        """Return the objective as plain data."""
        return {
            "goal": str(self.goal),
            "weights": dict(self.weights),
            "staleness_budget": {
                "relative": self.staleness_budget_rel,
                "absolute": self.staleness_budget_abs,
            },
            "load_budget": self.load_budget_rel,
            "error_margin": self.error_margin_abs,
            "latency_margin": self.latency_margin_rel,
            "min_gain": self.min_gain,
            "keep_noise": self.keep_noise,
        }


def _standard_error(after: Sequence[float], before: Sequence[float]) -> float:
    """Return the standard error of ``mean(after) - mean(before)`` (Welch)."""
    n_a, n_b = len(after), len(before)
    mean_a, mean_b = sum(after) / n_a, sum(before) / n_b
    var_a = sum((x - mean_a) ** 2 for x in after) / (n_a - 1)
    var_b = sum((x - mean_b) ** 2 for x in before) / (n_b - 1)
    return math.sqrt(var_a / n_a + var_b / n_b)


def _welch(after: Sequence[float], before: Sequence[float], allowed: float) -> float:
    """Welch's t of ``mean(after) - mean(before) - allowed`` (inf: no scatter at all)."""
    diff = sum(after) / len(after) - sum(before) / len(before) - allowed
    se = _standard_error(after, before)
    if se <= 0:
        return math.inf if diff > 0 else -math.inf if diff < 0 else 0.0
    return diff / se


# figures below these count as these (a relative change of almost nothing is noise)
FIGURE_FLOORS = {
    "requests_per_register": 1e-4,
    "bus_per_register": 1e-6,
    "requests_per_min": 0.1,
    "bus_utilisation": 0.001,
    "time_out_of_tolerance": 0.0005,
    "first_change_delay": 1.0,
    "error_rate": 0.001,
    "p95_latency": 0.001,
}

OBJECTIVES = {
    Goal.MIN_BUS_LOAD: Objective(
        Goal.MIN_BUS_LOAD,
        weights={"bus_utilisation": 0.6, "requests_per_min": 0.3, "error_rate": 0.1},
        staleness_budget_rel=0.5,
        staleness_budget_abs=0.01,
        load_budget_rel=0.0,
        error_margin_abs=0.005,
        latency_margin_rel=0.5,
    ),
    Goal.BALANCED: Objective(
        Goal.BALANCED,
        weights={
            "bus_utilisation": 0.35,
            "requests_per_min": 0.2,
            "time_out_of_tolerance": 0.35,
            "error_rate": 0.1,
        },
        staleness_budget_rel=0.05,
        staleness_budget_abs=0.001,
        load_budget_rel=0.1,
        error_margin_abs=0.005,
        latency_margin_rel=0.25,
    ),
    Goal.FRESHEST: Objective(
        Goal.FRESHEST,
        weights={
            "time_out_of_tolerance": 0.6,
            "first_change_delay": 0.3,
            "error_rate": 0.1,
        },
        staleness_budget_rel=0.0,
        staleness_budget_abs=0.001,
        load_budget_rel=0.5,
        error_margin_abs=0.005,
        latency_margin_rel=0.5,
    ),
}
