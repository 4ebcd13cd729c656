"""Evaluation windows that grow until a worse measurement is significant.

A device whose busy registers burst now and then scatters what a 30-minute window
measures: a change that truly helps can land next to a cluster of bursts. The
loop then measures longer instead of rolling back, while a change that hurts is
still rolled back.
"""

from __future__ import annotations

from collections.abc import Callable

from adaptive_modbus_engine.audit import AuditEntry, Outcome
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, USER, Rig
from .test_loop import FLAT, rest_longer_before_an_incident

BUSY = ["busy0"]
APPLY_AT = 45 * 60  # s after start: the change
# bursts (minutes after start, 4 min each): one per half hour, but two in the
# half hour right after the change
BURSTS = (10, 40, 50, 62, 100, 130, 160, 190)


def busy(i: int) -> Callable[[float], float]:
    """Return a register that swings by 5 tolerances every 20 s during each burst."""

    def value(t: float) -> float:
        minute = (t - START) / 60.0
        for begin in BURSTS:
            if begin <= minute < begin + 4:
                return 200.0 + i + 5.0 * (int((t - START) // 20) % 4)
        return 200.0 + i

    return value


def bursty_device() -> tuple[list[RegisterSpec], dict[str, Callable[[float], float]]]:
    """Ten flat registers far apart (resting longer saves a read each) and a bursty one."""
    specs = [
        RegisterSpec(key, 1, Table.INPUT, 40 * i, tolerance=1.0)
        for i, key in enumerate(FLAT)
    ]
    functions: dict[str, Callable[[float], float]] = {
        key: (lambda t, i=i: 100.0 + i) for i, key in enumerate(FLAT)
    }
    for i, key in enumerate(BUSY):
        specs.append(
            RegisterSpec(
                key,
                1,
                Table.INPUT,
                500 + i,
                tolerance=1.0,
                min_interval=60.0,
                max_interval=60.0,
            )
        )
        functions[key] = busy(i)
    return specs, functions


async def evaluate_rest_longer(evaluation_max: float) -> tuple[Rig, AuditEntry]:
    """Apply 'rest longer' to the flat registers at 45 min and wait for the verdict."""
    specs, functions = bursty_device()
    rig = Rig(specs, functions, enabled=False)
    rig.optimizer.set_strategy_parameters(
        "loop", {"evaluation_max": evaluation_max}, actor=USER
    )
    await rig.run_for(APPLY_AT)
    # applied as the loop applies a proposal: the measurement, not the shadow
    # replay's prediction, is what this test is about
    proposal, _ = await rig.apply_proposed(
        "quick", "interval", lambda p: p.parameter == "max_interval"
    )
    assert proposal.parameter == "max_interval"
    assert {c.target for c in proposal.changes} == {f"1.{key}" for key in FLAT}
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    return rig, entry


async def test_a_change_that_helps_is_kept_where_a_fixed_window_rolled_it_back() -> (
    None
):
    """Same device, same change: 30 minutes roll it back, the growing window keeps it."""
    _, fixed = await evaluate_rest_longer(evaluation_max=1800.0)
    assert fixed.outcome == Outcome.ROLLED_BACK
    reasons = " ".join(fixed.measured["reasons"])
    assert "time out of tolerance" in reasons  # the two bursts after the change
    assert (
        fixed.measured["after"]["requests_per_min"]
        < fixed.measured["before"]["requests_per_min"]
    )

    rig, grown = await evaluate_rest_longer(evaluation_max=7200.0)
    assert grown.outcome == Outcome.KEPT
    assert grown.extra["extended"] >= 1
    assert "not significantly" in grown.extra["extension"]
    assert grown.measured["after"]["seconds"] > 1800.0
    assert (
        grown.measured["after"]["requests_per_min"]
        < grown.measured["before"]["requests_per_min"]
    )
    assert rig.engine.interval_bounds("1.flat0")[1] > 300.0


async def test_a_harmful_change_is_still_rolled_back_with_growing_windows() -> None:
    """The flat registers start to swing right after they were told to rest 4x longer."""
    rig, proposal = await rest_longer_before_an_incident(START + 50 * 60)
    assert rig.optimizer.parameters["loop"]["evaluation_max"] > 1800.0
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    # significant at once: no extension
    assert "extended" not in entry.extra
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
