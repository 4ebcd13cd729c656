"""The cluster strategy tunes free riders and early reads, through the engine's parameter API."""

from __future__ import annotations

import pytest

from adaptive_modbus_engine.errors import EngineUsageError

from .rig import USER, Rig, inline
from .test_loop import moving_device


async def test_riders_and_early_reads_are_proposed_predicted_and_restored() -> None:
    """Bolder, more cautious and no riders; earlier and later early reads; each predicted."""
    specs, functions = moving_device(40)
    rig = Rig(specs, functions, enabled=False)
    await rig.run_for(20 * 60)
    riders, early = rig.engine.planner_params()
    result = await rig.optimizer.run(
        "full", strategy="cluster", dry_run=True, actor=USER, run_in_executor=inline
    )
    planner = [p for p in result.proposals if p.parameter == "planner"]
    afters = {(p.after["rider_value"], p.after["early_fraction"]) for p in planner}
    assert (0.0, early) in afters  # whether riders pay at all
    assert (riders * 2, early) in afters and (riders / 2, early) in afters
    assert (riders, 1.0) in afters and (riders, 0.0) in afters
    for proposal in planner:
        assert proposal.predicted is not None
        assert proposal.predicted["after"]["requests_per_min"] > 0
        assert proposal.verdict  # judged on the goal
    assert rig.engine.planner_params() == (riders, early)  # a dry run

    # the parameter API: set, exported, restored in another engine, validated
    assert rig.engine.set_planner_params(rider_value=0.5) == (riders, early)
    assert rig.engine.tuning()["planner"] == {"rider_value": 0.5}
    other = Rig(specs, functions, enabled=False)
    assert other.engine.apply_tuning(rig.engine.tuning()) == []
    assert other.engine.planner_params() == (0.5, early)
    with pytest.raises(EngineUsageError, match="early_fraction"):
        rig.engine.set_planner_params(early_fraction=1.5)
