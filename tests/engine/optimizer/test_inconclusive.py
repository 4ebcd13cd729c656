"""A rollback at the window's maximum without a significant difference is inconclusive.

Such a change is rolled back (it did not prove itself better) but it did not prove
itself worse either: the strategy keeps its boldness and gets no cooldown, so the
loop may try again at once. A change measured significantly worse still sends the
strategy into its cooldown.
"""

from __future__ import annotations

from adaptive_modbus_engine.audit import Outcome
from adaptive_modbus_engine.optimizer.loop import INCONCLUSIVE

from .rig import START
from .test_evaluation_window import evaluate_rest_longer
from .test_loop import rest_longer_before_an_incident


async def test_a_rollback_at_the_window_maximum_without_significance_leaves_no_cooldown() -> (
    None
):
    """The bursts after the change look worse for 30 minutes, but not significantly."""
    rig, entry = await evaluate_rest_longer(evaluation_max=1800.0)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.measured["verdict"] == INCONCLUSIVE
    assert "time out of tolerance" in " ".join(entry.measured["reasons"])
    # rolled back ...
    assert rig.engine.interval_bounds("1.flat0")[1] == 300.0
    # ... with no learning penalty and no cooldown
    record = rig.optimizer.records["interval"]
    assert record.rolled_back == 0
    assert record.rollbacks_in_row == 0
    assert record.boldness == 1.0
    assert not record.cooling(rig.now)
    assert rig.optimizer.next_quick <= rig.now


async def test_a_significantly_worse_change_still_cools_the_strategy_down() -> None:
    """The flat registers swing right after the change: worse at once, cooldown."""
    rig, proposal = await rest_longer_before_an_incident(START + 50 * 60)
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert "verdict" not in entry.measured
    record = rig.optimizer.records["interval"]
    assert record.rolled_back == 1
    assert record.cooling(rig.now)
    assert record.cooldown_until - rig.now > 0.5 * 3600.0
