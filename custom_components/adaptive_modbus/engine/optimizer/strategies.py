"""Strategies: each proposes parameter changes for a connection, unit or registers.

- :class:`IntervalStrategy` (quick and full cycles): interval bounds of registers
  resting at their maximum (or, for ``freshest``, of those held at their minimum),
  the step budget, the noise handling of noisy registers, and a tolerance raise for
  registers whose noise has exceeded their tolerance for a week without a break
  (``noisy_for``; needs a user's approval: a tolerance is a user's promise);
- :class:`ClusterStrategy` (full cycles): the read planner's inputs: a unit's
  largest read (shrunk to the largest read that answered when larger reads fail or
  time out, grown when nothing failed), the allowed gap, the cost model (re-fitted
  from measured latencies);
- :class:`PatternStrategy` (full cycles): how strongly and how early the
  time-of-week profile tightens intervals (nothing before a profile is learned).

A strategy only proposes; the loop predicts each proposal by shadow replay and
decides. Steps scale with the strategy's learned boldness; pinned registers are
never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import math
from typing import Any

from ..planner import PROTOCOL_MAX_REGISTERS, CostModel
from ..stats import RegisterSnapshot
from .changes import Change, Proposal
from .goals import Goal

MAX_INTERVAL_CEILING = 3600.0  # s: the loop never rests a register longer
MIN_INTERVAL_FLOOR = 1.0  # s: ... nor polls one faster
TOLERANCE_HEADROOM = 1.25  # a proposed tolerance is this many noise floors


@dataclass
class UnitKnowledge:
    """What the loop saw of a unit's reads: the largest that answered, the smallest that failed."""

    max_ok: int = 0
    min_failed: int | None = (
        None  # smallest multi-register read left unanswered or refused
    )

    def as_dict(self) -> dict[str, Any]:
        """Return plain data."""
        return {"max_ok": self.max_ok, "min_failed": self.min_failed}


@dataclass(frozen=True)
class Context:
    """Everything a strategy looks at (copied from the live engine on the loop)."""

    goal: Goal
    kind: str
    registers: Mapping[str, RegisterSnapshot]
    pinned: frozenset[str]
    tuning: Mapping[str, Any]
    bounds: Mapping[str, tuple[float, float]]
    limits: Mapping[int, int]  # per unit: largest read in force
    units: Mapping[int, UnitKnowledge]
    cost: CostModel
    fitted: CostModel | None
    patterns_learned: bool
    step_factor: float  # this strategy's step factor (from its boldness)
    now: float  # wall time (register times in snapshots are wall times)
    params: Mapping[str, Any]  # the strategy's parameters
    new_id: Callable[[str], str]
    awaiting: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    planner: tuple[float, float] = (1.0, 0.5)  # (rider value, early fraction) in force
    # per register: wall time since which it has been noisy without a break
    noisy_since: Mapping[str, float] = field(default_factory=dict)

    def free(self, reg: RegisterSnapshot) -> bool:
        """Whether the loop may change this register (enabled, not pinned, healthy)."""
        return (
            reg.enabled
            and reg.uid not in self.pinned
            and reg.quarantined_until is None
            and reg.failure_streak == 0
        )


class Strategy:
    """A named source of proposals."""

    name = ""
    quick = False  # runs in quick cycles too (else full cycles only)

    def propose(self, ctx: Context) -> list[Proposal]:
        """Return this strategy's proposals for ``ctx``."""
        raise NotImplementedError


def _tuned_bounds(ctx: Context, uid: str) -> list[float] | None:
    bounds = ctx.tuning.get("interval_bounds", {}).get(uid)
    return None if bounds is None else list(bounds)


def _bounds_change(ctx: Context, uid: str, after: list[float]) -> Change:
    """Return the change of ``uid``'s interval bounds to ``after`` ([min, max])."""
    return Change("interval_bounds", uid, _tuned_bounds(ctx, uid), after)


def _bounds_proposal(
    ctx: Context,
    strategy: str,
    changes: list[Change],
    *,
    side: int,
    target: str,
    reason: str,
) -> list[Proposal]:
    """One proposal of bounds ``changes`` moving one ``side`` (0 min, 1 max); none if empty."""
    if not changes:
        return []
    return [
        Proposal(
            id=ctx.new_id(strategy),
            strategy=strategy,
            target=f"{len(changes)} {target}",
            parameter=("min_interval", "max_interval")[side],
            changes=tuple(changes),
            before=sorted({ctx.bounds[c.target][side] for c in changes}),
            after=sorted({c.after[side] for c in changes}),
            reason=reason,
        )
    ]


class IntervalStrategy(Strategy):
    """Interval bounds, step budget, noise handling; tolerance raises for approval."""

    name = "interval"
    quick = True

    def propose(self, ctx: Context) -> list[Proposal]:
        """Return the interval proposals."""
        out: list[Proposal] = []
        free = [reg for reg in ctx.registers.values() if ctx.free(reg)]
        numeric = [
            reg for reg in free if reg.tolerance > 0 or reg.rate > 0 or reg.noise > 0
        ]
        if ctx.goal is Goal.FRESHEST:
            out += self._faster_floor(ctx, free)
        else:
            out += self._rest_longer(ctx, free)
        if ctx.goal is not Goal.BALANCED:  # a pure trade of load against freshness
            out += self._step_budget(ctx, numeric)
        out += self._noise(ctx, free)
        return out

    def _rest_longer(
        self, ctx: Context, regs: list[RegisterSnapshot]
    ) -> list[Proposal]:
        """Propose a longer maximum for registers resting at theirs.

        Two proposals: registers that did not change for ``quiet_for`` (strong
        evidence), and calm ones (their rate would move them less than a fifth of
        their tolerance in a maximum interval, but they changed within the last
        hour, :data:`CALM_EVIDENCE`: steps the replay and the window then see),
        which only the shadow replay and the measurement can justify. Neither for
        ``freshest``. The maximum grows by a whole multiple (:func:`_harmonic_up`):
        registers at the new maximum come due with those at the old one.
        """
        quiet_for = float(ctx.params.get("quiet_for", QUIET_FOR))
        quiet: list[Change] = []
        calm: list[Change] = []
        together: list[Change] = []
        for reg in regs:
            low, high = ctx.bounds[reg.uid]
            resting = reg.interval >= 0.95 * high
            if (
                not (resting or reg.reason == "quiet")
                or high >= MAX_INTERVAL_CEILING
                or reg.noisy
            ):
                continue
            new_high = _harmonic_up(high, ctx.step_factor)
            if new_high is None:
                continue
            # moved lately: changed since its first read (which counts as a change),
            # within the last hour
            moved = (
                reg.changes >= 2
                and reg.last_change is not None
                and ctx.now - reg.last_change <= CALM_EVIDENCE
            )
            if resting and moved:
                together.append(_bounds_change(ctx, reg.uid, [low, new_high]))
            if reg.rate * high > 0.2 * max(reg.tolerance, 1e-9):
                continue
            if resting and _unchanged(reg, ctx.now, quiet_for):
                quiet.append(_bounds_change(ctx, reg.uid, [low, new_high]))
            elif reg.reason == "quiet" and moved:
                calm.append(_bounds_change(ctx, reg.uid, [low, new_high]))
        return [
            *_bounds_proposal(
                ctx,
                self.name,
                quiet,
                side=1,
                target="registers resting at their max interval",
                reason="their values did not move at the longest interval",
            ),
            *_bounds_proposal(
                ctx,
                self.name,
                calm,
                side=1,
                target=CALM_TARGET,
                reason="their rate stays far inside their tolerance at the longest "
                "interval; only steps move them",
            ),
            # every register resting at its maximum, calm or not: registers read
            # in the same request save it only when all of them rest longer, which
            # no register's own interval model can see
            *(
                _bounds_proposal(
                    ctx,
                    self.name,
                    together,
                    side=1,
                    target=RESTING_TARGET,
                    reason="registers read together save a request only when all "
                    "of them rest longer",
                )
                if len(together) > len(calm)
                else []
            ),
        ]

    def _faster_floor(
        self, ctx: Context, regs: list[RegisterSnapshot]
    ) -> list[Proposal]:
        """For freshness: registers held at their minimum interval get a lower one."""
        changes = []
        for reg in regs:
            low, high = ctx.bounds[reg.uid]
            if (
                reg.interval <= 1.05 * low
                and low > MIN_INTERVAL_FLOOR
                and not reg.noisy
            ):
                new_low = max(MIN_INTERVAL_FLOOR, round(low / ctx.step_factor, 1))
                changes.append(_bounds_change(ctx, reg.uid, [new_low, high]))
        return _bounds_proposal(
            ctx,
            self.name,
            changes,
            side=0,
            target="registers held at their min interval",
            reason="they change faster than the minimum interval follows",
        )

    def _step_budget(
        self, ctx: Context, regs: list[RegisterSnapshot]
    ) -> list[Proposal]:
        """Propose the step budget larger (for load) or smaller (for freshness)."""
        current = ctx.tuning.get("step_budget", {})
        changes = []
        for reg in regs:
            before = current.get(reg.uid)
            value = 0.02 if before is None else float(before)
            after = (
                value / ctx.step_factor
                if ctx.goal is Goal.FRESHEST
                else value * ctx.step_factor
            )
            after = round(min(0.5, max(0.001, after)), 4)
            if after != value:
                changes.append(Change("step_budget", reg.uid, before, after))
        if not changes:
            return []
        return [
            Proposal(
                id=ctx.new_id(self.name),
                strategy=self.name,
                target=f"{len(changes)} registers",
                parameter="step_budget",
                changes=tuple(changes),
                before=sorted(
                    {0.02 if c.before is None else c.before for c in changes}
                ),
                after=sorted({c.after for c in changes}),
                reason="steps bound how long a register may rest",
            )
        ]

    def _noise(self, ctx: Context, regs: list[RegisterSnapshot]) -> list[Proposal]:
        """Noisy registers: discount noise more; propose a tolerance that fits the noise."""
        out: list[Proposal] = []
        noisy = [reg for reg in regs if reg.noisy and reg.noise > reg.tolerance]
        margins = ctx.tuning.get("noise_margin", {})
        changes = [
            Change(
                "noise_margin",
                reg.uid,
                margins.get(reg.uid),
                round(
                    min(20.0, 2.0 * (margins.get(reg.uid) or 2.0) * ctx.step_factor), 2
                ),
            )
            for reg in noisy
            if reg.interval < 0.5 * ctx.bounds[reg.uid][1]
            and (margins.get(reg.uid) or 2.0) < 20.0
        ]
        if changes:
            out.append(
                Proposal(
                    id=ctx.new_id(self.name),
                    strategy=self.name,
                    target=f"{len(changes)} noisy registers",
                    parameter="noise_margin",
                    changes=tuple(changes),
                    before=sorted({c.before or 2.0 for c in changes}),
                    after=sorted({c.after for c in changes}),
                    reason="noise above tolerance still shortens their intervals",
                )
            )
        noisy_for = float(ctx.params.get("noisy_for", NOISY_FOR))
        for reg in noisy:
            if (reg.uid, "tolerance") in ctx.awaiting:
                continue
            since = ctx.noisy_since.get(reg.uid)
            if since is None or ctx.now - since < noisy_for:
                continue  # noisy for a while is no reason to change a promise
            after = _round_up(reg.noise * TOLERANCE_HEADROOM)
            out.append(
                Proposal(
                    id=ctx.new_id(self.name),
                    strategy=self.name,
                    target=reg.uid,
                    parameter="tolerance",
                    changes=(Change("tolerance", reg.uid, reg.tolerance, after),),
                    before=reg.tolerance,
                    after=after,
                    needs_approval=True,
                    reason=f"noise {reg.noise:.3g} exceeds the tolerance {reg.tolerance:.3g}",
                )
            )
        return out


class ClusterStrategy(Strategy):
    """Largest read per unit, allowed gaps and the cost model."""

    name = "cluster"

    def propose(self, ctx: Context) -> list[Proposal]:
        """Return the cluster proposals."""
        out: list[Proposal] = []
        caps = ctx.tuning.get("unit_max_registers", {})
        units = sorted({reg.unit_id for reg in ctx.registers.values()})
        for unit in units:
            seen = ctx.units.get(unit, UnitKnowledge())
            limit = ctx.limits.get(unit, PROTOCOL_MAX_REGISTERS)
            cap = caps.get(str(unit))
            target = f"unit {unit}"
            if seen.min_failed is not None and 0 < seen.max_ok < seen.min_failed:
                # larger reads fail: read at most what answered (no retries of more)
                if cap != seen.max_ok:
                    reason = (
                        f"reads of {seen.min_failed} registers failed, "
                        f"{seen.max_ok} answered"
                    )
                    repair = self._cap(ctx, unit, limit, cap, seen.max_ok, reason)
                    repair.repair = True
                    out.append(repair)
            elif cap is not None and cap < PROTOCOL_MAX_REGISTERS:
                bigger = min(
                    PROTOCOL_MAX_REGISTERS,
                    max(cap + 1, math.floor(cap * ctx.step_factor)),
                )
                reason = "no read failed at the cap"
                out.append(self._cap(ctx, unit, limit, cap, bigger, reason))
            gap = ctx.tuning.get("unit_max_gap", {}).get(str(unit))
            current = gap if gap is not None else ctx.cost.break_even_gap()
            if 0 < current < PROTOCOL_MAX_REGISTERS:
                gaps = {
                    max(0, math.floor(current / ctx.step_factor)),
                    min(PROTOCOL_MAX_REGISTERS, math.ceil(current * ctx.step_factor)),
                }
                out.extend(
                    Proposal(
                        id=ctx.new_id(self.name),
                        strategy=self.name,
                        target=target,
                        parameter="max_gap",
                        changes=(Change("unit_max_gap", target, gap, after),),
                        before=current,
                        after=after,
                        reason="read through more (or fewer) unwanted registers",
                    )
                    for after in sorted(gaps - {current})
                )
        out += self._planner(ctx)
        fitted = ctx.fitted
        tuned = ctx.tuning.get("cost")
        if fitted is not None and tuned is not None:
            now = CostModel(*tuned)
            if abs(now.break_even_gap() - fitted.break_even_gap()) >= 2:
                out.append(
                    Proposal(
                        id=ctx.new_id(self.name),
                        strategy=self.name,
                        target="connection",
                        parameter="cost_model",
                        changes=(Change("cost_model", "connection", tuned, None),),
                        before=tuned,
                        after=[
                            fitted.request_overhead,
                            fitted.per_register,
                            fitted.per_bit,
                        ],
                        reason="the measured latencies fit another cost model",
                    )
                )
        return out

    def _planner(self, ctx: Context) -> list[Proposal]:
        """Free riders' value (bolder, more cautious, off) and the early-read fraction.

        Both trade bus time for freshness: riders read stale neighbours along with
        a request that goes out anyway, early reads pull in neighbours nearly due.
        Which way pays depends on the device and the goal: the replay decides.
        """
        riders, early = ctx.planner
        step = ctx.step_factor
        candidates = {
            (round(min(8.0, max(riders, 0.25) * step), 3), early),
            (round(riders / step, 3), early),
            (0.0, early),
            (riders, round(min(1.0, early + 0.25 * (step - 1.0) * 2), 3)),
            (riders, round(max(0.0, early - 0.25 * (step - 1.0) * 2), 3)),
        }
        return [
            Proposal(
                id=ctx.new_id(self.name),
                strategy=self.name,
                target="connection",
                parameter="planner",
                changes=(
                    Change("planner", "connection", [riders, early], list(after)),
                ),
                before={"rider_value": riders, "early_fraction": early},
                after={"rider_value": after[0], "early_fraction": after[1]},
                reason="free riders and early reads trade bus time for freshness",
            )
            for after in sorted(candidates - {(riders, early)})
        ]

    def _cap(  # noqa: PLR0917
        self,
        ctx: Context,
        unit: int,
        limit: int,
        cap: int | None,
        after: int,
        reason: str,
    ) -> Proposal:
        target = f"unit {unit}"
        return Proposal(
            id=ctx.new_id(self.name),
            strategy=self.name,
            target=target,
            parameter="max_registers",
            changes=(Change("unit_max_registers", target, cap, after),),
            before=limit,
            after=after,
            reason=reason,
        )


class PatternStrategy(Strategy):
    """Strength and lead of the time-of-week profile."""

    name = "pattern"

    def propose(self, ctx: Context) -> list[Proposal]:
        """Return the pattern proposals (none before a profile is learned)."""
        if not ctx.patterns_learned:
            return []
        strength = float(ctx.tuning.get("pattern_strength", 1.0))
        lead = ctx.tuning.get("pattern_lead")
        lead = 900.0 if lead is None else float(lead)
        before = [strength, lead]
        candidates = {
            (round(min(2.0, strength * ctx.step_factor), 3), lead),
            (round(strength / ctx.step_factor, 3), lead),
            (0.0, lead),
            (strength, round(min(7200.0, lead * ctx.step_factor))),
            (strength, round(lead / ctx.step_factor)),
        }
        out = []
        for after in sorted(candidates):
            if list(after) == before:
                continue
            out.append(
                Proposal(
                    id=ctx.new_id(self.name),
                    strategy=self.name,
                    target="connection",
                    parameter="pattern",
                    changes=(Change("pattern", "connection", before, list(after)),),
                    before={"strength": strength, "lead": lead},
                    after={"strength": after[0], "lead": after[1]},
                    reason="how much the time-of-week profile tightens intervals",
                )
            )
        return out


QUIET_FOR = 86400.0  # s without a change before a register may rest longer
CALM_TARGET = "calm registers resting at their max interval"  # a proposal's target
RESTING_TARGET = "registers resting at their max interval together"  # ... and another
# a calm register must have changed within this span (the shadow replay's
# default horizon): its steps are then in the evidence; one idle since longer
# (a PV inverter at night) may wake up differently, and waits for quiet_for
CALM_EVIDENCE = 3600.0
NOISY_FOR = 7 * 86400.0  # s noisy without a break before a tolerance raise


def _unchanged(reg: RegisterSnapshot, now: float, quiet_for: float) -> bool:
    """Whether a register has not changed for ``quiet_for`` seconds.

    Strong evidence only: a register that moves now and then (a setpoint in an
    incident) keeps its maximum, however still it is at the moment. Never changed
    counts from its first read.
    """
    return reg.last_change is not None and now - reg.last_change >= quiet_for


def _harmonic_up(high: float, factor: float) -> float | None:
    """Return ``high`` times the whole number ``factor`` rounds down to (at least 2).

    A whole multiple keeps aligned due times harmonic: a register at ``2 x high``
    is due at every other due time of one at ``high``, so both ride in one read,
    where 1.5 x would put it on times of its own. Capped at
    :data:`MAX_INTERVAL_CEILING`; None when not even twice ``high`` fits.
    """
    for multiple in range(max(2, math.floor(factor)), 1, -1):
        if multiple * high <= MAX_INTERVAL_CEILING:
            return multiple * high
    return None


def _round_up(value: float) -> float:
    """Round up to two significant digits."""
    if value <= 0:
        return 0.0
    scale = float(10.0 ** (math.floor(math.log10(value)) - 1))
    return math.ceil(value / scale) * scale


STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (IntervalStrategy(), ClusterStrategy(), PatternStrategy())
}
