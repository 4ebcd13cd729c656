"""How an evaluation ends when its measurement stays inconclusive: a fresh prediction.

A change measured worse, never significantly, used to grow its window to
``evaluation_max`` and then be rolled back without blame; with no cooldown the loop
proposed the same parameters again at once and applied them again. The rollback
clamped what had grown under the change (intervals back to the old maximum) and
the re-application made it grow again, paid in the hours after. Now the loop
predicts the change again, as its next cycle would (the last hour of reads, with
and without it): a change still predicted to help stays in force ("inconclusive,
kept on a fresh prediction"); one no longer predicted to help ends at once,
inconclusive, instead of growing its window to the maximum.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adaptive_modbus_engine.audit import AuditEntry, Outcome
from adaptive_modbus_engine.optimizer import Goal
from adaptive_modbus_engine.optimizer.loop import (
    INCONCLUSIVE,
    KEPT_ON_FRESH_PREDICTION,
    KEPT_ON_PRIOR,
)
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, USER, Rig
from .test_joint_sets import applied_set, two_blocks  # noqa: F401 (a fixture)
from .test_loop import FLAT

APPLY_AT = 45 * 60  # s after start: the change
# bursts of the busy register (minutes after start, 4 min each): two before the
# change, then one every 7 minutes for the half hour after it (the one-off event)
BURSTS = (10, 40, 47, 54, 61, 68)


def busy(t: float) -> float:
    """Swing by 5 tolerances every 20 s during each burst, hold still between."""
    minute = (t - START) / 60.0
    if any(begin <= minute < begin + 4 for begin in BURSTS):
        return 200.0 + 5.0 * (int((t - START) // 20) % 4)
    return 200.0


def device() -> tuple[list[RegisterSpec], dict[str, Callable[[float], float]]]:
    """Ten flat registers far apart (resting longer saves a read each), one busy."""
    specs = [
        RegisterSpec(key, 1, Table.INPUT, 40 * i, tolerance=1.0)
        for i, key in enumerate(FLAT)
    ]
    specs.append(RegisterSpec("busy", 1, Table.INPUT, 500, tolerance=1.0))
    functions: dict[str, Callable[[float], float]] = {
        key: (lambda t, i=i: 100.0 + i) for i, key in enumerate(FLAT)
    }
    functions["busy"] = busy
    return specs, functions


async def apply_rest_longer(evaluation_max: float) -> tuple[Rig, AuditEntry]:
    """Let the registers resting at their maximum rest longer at 45 min, loop on.

    The busy register rests too (between bursts), and bursts every 7 minutes in
    the half hour after the change: it measures worse, not significantly. The
    automatic loop is on from the change on, as in a real run (off before, so
    that nothing else goes out first).
    """
    specs, functions = device()
    rig = Rig(specs, functions, enabled=False)
    rig.optimizer.set_strategy_parameters(
        "loop", {"evaluation_max": evaluation_max}, actor=USER
    )
    await rig.run_for(APPLY_AT)
    proposal, audit_id = await rig.apply_proposed(
        "quick", "interval", lambda p: p.parameter == "max_interval"
    )
    assert {f"1.{key}" for key in FLAT} <= {c.target for c in proposal.changes}
    rig.optimizer.enabled = True
    return rig, rig.entry(audit_id)


async def until_judged(rig: Rig, audit_id: int, limit: float = 3 * 3600.0) -> None:
    """Run until the change of ``audit_id`` is kept or rolled back."""
    end = rig.now + limit
    while rig.entry(audit_id).outcome == Outcome.EVALUATING and rig.now < end:
        await rig.run_for(60.0)


def flat_intervals(rig: Rig) -> list[float]:
    """Return the flat registers' intervals now."""
    registers = rig.engine.snapshot().registers
    return [registers[f"1.{key}"].interval for key in FLAT]


async def test_an_inconclusive_change_still_predicted_to_help_stays_in_force() -> None:
    """No rollback that clamps the grown intervals, no re-application that regrows them."""
    rig, applied = await apply_rest_longer(evaluation_max=1800.0)
    await rig.run_for(25 * 60)
    grown = flat_intervals(rig)
    assert max(grown) > 300.0  # the flat registers grew beyond the old maximum
    await until_judged(rig, applied.id)
    entry = rig.entry(applied.id)
    # the measurement: worse (the bursts), not significantly, at the window's maximum
    assert entry.measured["gain"] < 0
    assert "time out of tolerance" in " ".join(entry.measured["reasons"])
    # kept in force on the fresh prediction, not rolled back
    assert entry.outcome == Outcome.KEPT
    assert entry.measured["verdict"] == KEPT_ON_FRESH_PREDICTION
    fresh = entry.measured["fresh_prediction"]
    assert fresh["gain"] >= rig.optimizer.objective.min_gain
    assert fresh["after"]["requests_per_min"] < fresh["before"]["requests_per_min"]
    assert rig.engine.interval_bounds("1.flat0")[1] > 300.0  # still in force
    # the intervals that grew under the change were not clamped back to 300 s
    assert max(flat_intervals(rig)) > 300.0
    # the same parameters were not applied a second time
    again = [
        e
        for e in rig.audit
        if e.action == "strategy:interval"
        and e.id != applied.id
        and e.extra.get("parameter") == "max_interval"
        and e.target == entry.target
    ]
    assert not again
    # learning: proven neither better nor worse
    record = rig.optimizer.records["interval"]
    assert (record.kept, record.rolled_back) == (0, 0)
    assert not record.cooling(rig.now)
    assert applied.id in [item.audit_id for item in rig.optimizer.in_force]


async def test_an_inconclusive_change_no_longer_predicted_to_help_is_rolled_back() -> (
    None
):
    """The goal turns to freshness: longer rests no longer pay; rolled back at once."""
    rig, applied = await apply_rest_longer(evaluation_max=7200.0)
    rig.optimizer.set_goal(Goal.FRESHEST, actor=USER)
    await until_judged(rig, applied.id)
    entry = rig.entry(applied.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.measured["verdict"] == INCONCLUSIVE
    fresh = entry.measured["fresh_prediction"]
    assert fresh["gain"] < rig.optimizer.objective.min_gain
    # ended after its first window instead of growing it to evaluation_max
    assert "extended" not in entry.extra
    assert entry.measured["after"]["seconds"] <= 1800.0
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
    # inconclusive: no learning penalty, no cooldown
    record = rig.optimizer.records["interval"]
    assert record.rolled_back == 0
    assert not record.cooling(rig.now)


@pytest.mark.usefixtures("two_blocks")
async def test_the_prior_keeps_a_change_only_while_a_fresh_prediction_favours_it() -> (
    None
):
    """Block A steps every 15 min after its split: its old prediction is not enough.

    The run in which, with the automatic loop off, block A's longer rest is kept on
    its prediction (the prior; see test_joint_sets). With the loop on, the loop
    predicts it again on the reads since: block A now steps every 15 minutes, its
    interval model keeps it below the old maximum, resting longer gains nothing.
    """
    rig, _ = await applied_set(period=900.0)
    rig.optimizer.enabled = True
    await rig.run_for(4 * 3600)
    assert not [
        e for e in rig.audit if (e.measured or {}).get("verdict") == KEPT_ON_PRIOR
    ]
    ended = [
        e
        for e in rig.audit
        if e.target == "block a" and "fresh_prediction" in (e.measured or {})
    ]
    assert ended, "block A's change was never predicted again"
    entry = ended[0]
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.measured["verdict"] == INCONCLUSIVE
    assert entry.measured["fresh_prediction"]["gain"] < 0.02
    assert entry.measured["gain"] < 0
