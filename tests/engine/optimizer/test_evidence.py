"""A change that trades freshness is kept only on windows that put freshness to the test.

On a PV inverter at night nothing changes: turning free riders off there measures
as pure saving, and the next sunrise pays for it. Such a change (riders, early
reads, calm registers resting longer, the step budget, the time-of-week profile)
grows its window while the registers moved less than five tolerances in the window
before or after, and is rolled back when they still do at ``evaluation_max``.
"""

from __future__ import annotations

from collections.abc import Callable

from adaptive_modbus_engine.audit import AuditEntry, Outcome
from adaptive_modbus_engine.optimizer.strategies import CALM_TARGET
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, USER, Rig, input_specs
from .test_loop import flat_device, moving_device


async def riders_off(rig: Rig) -> AuditEntry:
    """Apply 'free riders off' after 45 minutes, as the loop applies a proposal; the verdict."""
    rig.optimizer.set_strategy_parameters(
        "loop", {"evaluation_max": 3600.0}, actor=USER
    )
    await rig.run_for(45 * 60)
    # the measurement, not the prediction, is what these tests are about
    proposal, _ = await rig.apply_proposed(
        "full",
        "cluster",
        lambda p: p.parameter == "planner" and p.after["rider_value"] == 0.0,
    )
    assert rig.engine.planner_params()[0] == 0.0
    await rig.until_evaluated()
    return next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)


async def test_riders_off_on_a_quiet_device_is_rolled_back_for_want_of_evidence() -> (
    None
):
    """Ten flat registers and a slow ramp: the ramp moves three tolerances per window."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    riders = rig.engine.planner_params()[0]
    entry = await riders_off(rig)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.extra["extended"] >= 1
    assert "too little evidence on freshness" in entry.extra["extension"]
    assert any("too little evidence" in r for r in entry.measured["reasons"])
    # the window before (30 min) saw the ramp move 3 tolerances
    assert entry.measured["before"]["moved"] < 5
    assert entry.measured["after"]["seconds"] >= 3000.0  # grown to evaluation_max
    assert rig.engine.planner_params()[0] == riders  # restored


async def test_riders_off_on_a_moving_device_is_judged_on_its_windows() -> None:
    """Forty registers that all ramp: the windows hold the evidence; no extension for it.

    The engine follows a ramp within its tolerance, so the windows see no change
    beyond tolerance: what they see is how far the registers moved.
    """
    specs, functions = moving_device(40)
    rig = Rig(specs, functions, enabled=False)
    entry = await riders_off(rig)
    assert entry.outcome in (Outcome.KEPT, Outcome.ROLLED_BACK)
    assert entry.measured["before"]["moved"] >= 5
    assert entry.measured["after"]["moved"] >= 5
    assert "too little evidence" not in entry.extra.get("extension", "")
    assert not any("too little evidence" in r for r in entry.measured["reasons"])


async def test_registers_that_rest_longer_must_have_moved_themselves() -> None:
    """Five registers step once and rest (a PV inverter's state at sunset) beside busy ones.

    The busy ramps move many tolerances in every window; the five resting ones do
    not: what their next step costs is not in the windows, and the change that let
    them rest longer is rolled back for want of evidence.
    """
    steps = [f"step{i}" for i in range(5)]
    ramps = [f"ramp{i}" for i in range(5)]
    specs = [
        *input_specs(steps),
        *(
            RegisterSpec(key, 1, Table.INPUT, 100 + i, tolerance=1.0)
            for i, key in enumerate(ramps)
        ),
    ]
    functions: dict[str, Callable[[float], float]] = {
        key: (lambda t, i=i: 100.0 + i + 3.0 * (t >= START + 1500.0))
        for i, key in enumerate(steps)
    }
    functions |= {
        key: (lambda t, i=i: 100.0 + i + (t - START) / 30.0)
        for i, key in enumerate(ramps)
    }
    rig = Rig(specs, functions, enabled=False)
    rig.optimizer.set_strategy_parameters(
        "loop", {"evaluation_max": 3600.0}, actor=USER
    )
    await rig.run_for(50 * 60)
    proposal, _ = await rig.apply_proposed(
        "quick", "interval", lambda p: p.target.endswith(CALM_TARGET)
    )
    assert {c.target for c in proposal.changes} <= {f"1.{key}" for key in steps}
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert "too little evidence on freshness" in entry.extra["extension"]
    # the connection as a whole moved plenty: only the changed registers did not
    assert entry.measured["before"]["moved"] >= 5
    assert entry.measured["after"]["moved"] >= 5
    assert rig.engine.interval_bounds("1.step0") == (5.0, 300.0)
