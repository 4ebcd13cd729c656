"""A tolerance raise is proposed only after a register was noisy for a week, across restarts."""

from __future__ import annotations

from typing import Any

from adaptive_modbus_engine.audit import Outcome
from adaptive_modbus_engine.optimizer import OPTIMIZER_VERSION

from .rig import START, Rig
from .test_loop import noisy_device

DAY = 86400.0


def tolerance_proposals(rig: Rig) -> list[Any]:
    """Return the audit entries of tolerance raises proposed so far."""
    return [
        e
        for e in rig.audit
        if e.action == "strategy:interval" and e.extra.get("parameter") == "tolerance"
    ]


def rig_at(start: float) -> Rig:
    """Return the noisy device with the loop looking every 6 h (a week of 15-min looks is slow)."""
    specs, functions = noisy_device()
    rig = Rig(specs, functions, start=start)
    rig.optimizer.set_parameters_quietly("loop", {"quick_every": 6 * 3600.0})
    return rig


async def test_a_tolerance_raise_waits_for_a_noisy_week_across_a_restart() -> None:
    """Noisy from the first day; the raise comes a week later, not sooner; kept over a restart."""
    rig = rig_at(START)
    assert rig.optimizer.parameters["interval"]["noisy_for"] == 7 * DAY
    await rig.run_for(3 * DAY)
    since = rig.optimizer.noisy_since["1.temp"]
    assert since - START < DAY
    assert not tolerance_proposals(rig)
    assert "1.flat0" not in rig.optimizer.noisy_since

    # restart on day 3: the loop's and the engine's state come back from the store
    saved, engine_state, audit = (
        rig.optimizer.export_state(),
        rig.engine.export_state(),
        rig.audit.export_state(),
    )
    assert saved["version"] == OPTIMIZER_VERSION == 3
    assert saved["noisy_since"] == {"1.temp": since}
    later = rig_at(rig.now + 600.0)
    later.engine.import_state(engine_state)
    assert later.audit.import_state(audit) == []
    assert later.optimizer.import_state(saved)["warnings"] == []
    assert later.optimizer.noisy_since == {"1.temp": since}

    await later.run_for(since + 7 * DAY - later.now - 3600.0)
    assert not tolerance_proposals(later), "proposed before the week was over"
    await later.run_for(DAY)
    proposed = tolerance_proposals(later)
    assert len(proposed) == 1
    entry = proposed[0]
    assert entry.target == "1.temp"
    assert entry.outcome == Outcome.PROPOSED
    assert entry.at - since >= 7 * DAY
    assert later.engine.tolerance("1.temp") == 1.0  # waits for a user


async def test_a_version_1_state_is_migrated_and_its_week_starts_over() -> None:
    """A state saved before noisy_since existed loads; the week counts from the restart."""
    rig = rig_at(START)
    await rig.run_for(3600.0)
    saved = rig.optimizer.export_state()
    old = {k: v for k, v in saved.items() if k != "noisy_since"} | {"version": 1}
    later = rig_at(rig.now + 60.0)
    report = later.optimizer.import_state(old)
    assert report["warnings"] == []
    assert later.optimizer.noisy_since == {}
    assert later.optimizer.export_state()["version"] == OPTIMIZER_VERSION


async def test_a_break_in_the_noise_starts_the_week_over() -> None:
    """A look that finds the register quiet forgets since when it was noisy."""
    rig = rig_at(START)
    await rig.run_for(DAY)
    assert "1.temp" in rig.optimizer.noisy_since
    rig.engine.set_tolerance("1.temp", 100.0)  # its noise is now far inside
    await rig.run_for(DAY)
    assert "1.temp" not in rig.optimizer.noisy_since
