"""The pattern strategy on a device with a weekly rhythm, driven for two weeks in virtual time."""

from __future__ import annotations

import datetime as dt
import math

from adaptive_modbus_engine.audit import Outcome
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, USER, Rig, inline

DAY = 86400.0


def working_hours(t: float) -> bool:
    """Monday to Friday, 08:00-18:00 UTC."""
    when = dt.datetime.fromtimestamp(t, dt.UTC)
    return when.weekday() < 5 and 8 <= when.hour < 18


def weekly_device() -> tuple[list[RegisterSpec], dict]:
    """Return a workshop: its machines' power swings in working hours, rests otherwise."""
    specs = [
        RegisterSpec(f"machine{i}", 1, Table.INPUT, 10 * i, tolerance=5.0)
        for i in range(4)
    ]
    specs.append(RegisterSpec("setpoint", 1, Table.HOLDING, 0, tolerance=1.0))

    def machine(i: int):  # noqa: ANN202
        def value(t: float) -> float:
            if not working_hours(t):
                return 50.0 + i
            return 1000.0 + 400.0 * math.sin((t - START) / (240.0 + 30 * i))

        return value

    functions = {f"machine{i}": machine(i) for i in range(4)}
    functions["setpoint"] = lambda t: 21.0
    return specs, functions


async def test_pattern_proposals_after_two_weeks_are_predicted_and_judged() -> None:
    """No proposal while no profile is learned; then strength and lead, measured."""
    specs, functions = weekly_device()
    rig = Rig(specs, functions, enabled=False)
    await rig.run_for(3 * DAY)
    early = await rig.optimizer.run(
        "full", strategy="pattern", actor=USER, run_in_executor=inline
    )
    assert early.proposals == []  # nothing before a profile is learned
    # two weeks later, on a Tuesday 07:50, ten minutes before the workshop opens
    await rig.run_for(15 * DAY + 110 * 60 - 3 * DAY)
    assert rig.engine.quiet_hour() is not None
    assert not working_hours(rig.now)
    before = rig.engine.tuning()
    result = await rig.optimizer.run(
        "full", strategy="pattern", actor=USER, run_in_executor=inline
    )
    assert result.proposals
    assert {p.parameter for p in result.proposals} == {"pattern"}
    candidates = {(p.after["strength"], p.after["lead"]) for p in result.proposals}
    assert (0.0, 900.0) in candidates  # whether the profile helps at all
    assert (1.5, 900.0) in candidates and (1.0, 1350.0) in candidates
    for proposal in result.proposals:
        assert proposal.predicted is not None
        assert proposal.predicted["after"]["requests_per_min"] > 0
    assert result.applied, [p.verdict for p in result.proposals]
    applied = next(p for p in result.proposals if p.id in result.applied)
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == applied.id)
    measured = entry.measured
    # the last hour was quiet: tightening ahead of busy hours only cost requests
    # there, so switching the profile off looked best in the shadow replay ...
    assert applied.after == {"strength": 0.0, "lead": 900.0}
    assert applied.gain is not None and applied.gain > 0.02
    # ... and the opening at 08:00 proved it wrong: rolled back by measurement
    assert entry.outcome == Outcome.ROLLED_BACK
    assert (
        measured["after"]["time_out_of_tolerance"]
        > measured["before"]["time_out_of_tolerance"]
    )
    assert any("time out of tolerance" in r for r in measured["reasons"])
    assert rig.engine.tuning()["pattern_strength"] == before["pattern_strength"]
    record = rig.optimizer.records["pattern"]
    assert (record.applied, record.rolled_back) == (1, 1)
