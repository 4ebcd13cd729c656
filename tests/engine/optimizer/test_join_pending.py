"""A change predicted to help does not wait while an unrelated one is measured.

Two blocks of registers far apart (each read on its own). A strategy made for these
tests proposes a longer maximum (1,200 s) for each block not yet given one; the
shadow replay, the measurement, the bundle's split and the learning are the
loop's own. Change A (block a) is applied first; while it is evaluated, a later
cycle finds change B (block b) predicted to help: B goes out on top of A, and the
two are judged together, or split and judged alone when together they fail.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adaptive_modbus_engine import intervals
from adaptive_modbus_engine.audit import AuditEntry, Outcome
from adaptive_modbus_engine.optimizer import Proposal, strategies
from adaptive_modbus_engine.optimizer.loop import SPLIT
from adaptive_modbus_engine.optimizer.strategies import Context
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, USER, Rig, inline

A = [f"a{i}" for i in range(8)]  # block at address 0
B = [f"b{i}" for i in range(5)]  # block at address 100: read on its own
LONGER = [5.0, 1200.0]


class BlockByBlock(strategies.Strategy):
    """Proposes a 1,200 s maximum for each block whose registers do not have it yet."""

    name = "interval"
    quick = True

    def propose(self, ctx: Context) -> list[Proposal]:
        """Return one proposal per block still at the default bounds."""
        return [
            Proposal(
                id=ctx.new_id(self.name),
                strategy=self.name,
                target=f"block {keys[0][0]}",
                parameter="max_interval",
                changes=tuple(
                    strategies._bounds_change(ctx, f"1.{key}", LONGER)  # noqa: SLF001
                    for key in keys
                ),
                before=[300.0],
                after=[1200.0],
            )
            for keys in (A, B)
            if ctx.bounds[f"1.{keys[0]}"][1] < LONGER[1]
        ]


@pytest.fixture(autouse=True)
def block_by_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the block-by-block strategy in the interval strategy's place."""
    monkeypatch.setitem(strategies.STRATEGIES, "interval", BlockByBlock())


def device(
    b_steps_from: float | None, period: float = 2400.0
) -> tuple[list[RegisterSpec], dict[str, Callable[[float], float]]]:
    """Two flat blocks; block b steps by 5 tolerances every ``period`` s from ``b_steps_from``."""
    specs = [
        *(RegisterSpec(k, 1, Table.INPUT, i, tolerance=1.0) for i, k in enumerate(A)),
        *(
            RegisterSpec(k, 1, Table.INPUT, 100 + i, tolerance=1.0)
            for i, k in enumerate(B)
        ),
    ]

    def b(i: int) -> Callable[[float], float]:
        def value(t: float) -> float:
            if b_steps_from is None or t < b_steps_from:
                return 200.0 + i
            return 200.0 + i + 5.0 * (int((t - b_steps_from) // period) % 2 + 1)

        return value

    functions: dict[str, Callable[[float], float]] = {
        k: (lambda t, i=i: 100.0 + i) for i, k in enumerate(A)
    }
    functions |= {k: b(i) for i, k in enumerate(B)}
    return specs, functions


async def a_then_b(
    b_steps_from: float | None, *, join: bool = True
) -> tuple[Rig, Proposal, Proposal]:
    """Apply A after 45 min of quiet reads, propose B 10 min later; return both."""
    rig = Rig(*device(b_steps_from), enabled=False)
    rig.optimizer.set_strategy_parameters(
        "loop", {"evaluation_max": 3600.0, "join_pending": join}, actor=USER
    )
    await rig.run_for(45 * 60)
    first = await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    (a,) = [p for p in first.proposals if p.id in first.applied]
    assert a.target == "block a"  # the first of two equal gains
    await rig.run_for(10 * 60)
    assert rig.optimizer.evaluation is not None
    assert rig.optimizer.evaluation.proposal is a
    second = await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    (b,) = second.proposals
    assert b.target == "block b"
    assert b.gain is not None
    assert b.gain >= 0.02, b.verdict  # predicted to help (on top of A)
    return rig, a, b


def entries_of(rig: Rig, proposal: Proposal) -> list[AuditEntry]:
    """Every audit entry of ``proposal`` (a split bundle's member has two)."""
    return [e for e in rig.audit if e.extra.get("proposal") == proposal.id]


async def test_a_change_predicted_to_help_joins_a_pending_one_and_both_are_kept() -> (
    None
):
    """B goes out while A is measured (before: it waited for A's verdict); both kept."""
    rig, a, b = await a_then_b(None)
    evaluation = rig.optimizer.evaluation
    assert evaluation is not None
    # B was applied while A's evaluation was pending, on top of it
    assert b.verdict.startswith("applied"), b.verdict
    assert rig.engine.interval_bounds("1.b0") == (5.0, 1200.0)
    assert evaluation.proposals() == [a, b]
    (entry_a,) = entries_of(rig, a)
    (entry_b,) = entries_of(rig, b)
    assert entry_b.outcome == Outcome.EVALUATING
    assert entry_b.at < evaluation.ends
    assert entry_b.extra["joined"] == entry_a.id
    assert entry_a.extra["set_audit"] == [entry_a.id, entry_b.id]
    # B gets a whole window of its own before the bundle is judged
    assert evaluation.ends == pytest.approx(entry_b.at + 1800.0)
    assert evaluation.set_gain == pytest.approx(1 - (1 - a.gain) * (1 - b.gain))
    await rig.until_evaluated()
    for entry in (rig.entry(entry_a.id), rig.entry(entry_b.id)):
        assert entry.outcome == Outcome.KEPT
        assert (
            entry.measured["after"]["requests_per_min"]
            < entry.measured["before"]["requests_per_min"]
        )
    assert rig.engine.interval_bounds("1.a0") == (5.0, 1200.0)
    assert rig.engine.interval_bounds("1.b0") == (5.0, 1200.0)
    record = rig.optimizer.records["interval"]
    assert (record.applied, record.kept, record.rolled_back) == (2, 2, 0)


async def test_with_join_pending_off_the_change_waits_for_the_verdict() -> None:
    """The rule before: one change at a time."""
    rig = Rig(*device(None), enabled=False)
    rig.optimizer.set_strategy_parameters("loop", {"join_pending": False}, actor=USER)
    await rig.run_for(45 * 60)
    await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    await rig.run_for(10 * 60)
    second = await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    assert second.applied == []
    (b,) = second.proposals
    assert "join_pending is off" in b.verdict
    assert rig.engine.interval_bounds("1.b0") == (5.0, 300.0)


async def test_the_automatic_loop_applies_a_change_during_an_evaluation() -> None:
    """The quick cycle runs while a change is measured (it used to wait)."""
    rig = Rig(*device(None))
    await rig.run_for(35 * 60)
    applied = [run.applied for run in rig.results if run.applied]
    assert len(applied) == 2, [run.as_dict() for run in rig.results]
    evaluation = rig.optimizer.evaluation
    assert evaluation is not None
    assert len(evaluation.proposals()) == 2


async def test_a_change_touching_the_pending_ones_registers_waits() -> None:
    """Overlapping changes are never bundled: the later one is not applied."""
    rig = Rig(*device(None), enabled=False)
    await rig.run_for(45 * 60)
    await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    rig.engine.set_interval_bounds("1.b0", min_interval=5.0, max_interval=300.0)
    pending = rig.optimizer.evaluation
    assert pending is not None
    # a proposal of block a's registers again: same parameter and targets
    overlapping = Proposal(
        id="interval-99",
        strategy="interval",
        target="block a",
        parameter="max_interval",
        changes=tuple(c for c in pending.proposal.changes),
        before=[1200.0],
        after=[1200.0],
    )
    overlapping.gain = 0.5
    why = rig.optimizer._join_pending(overlapping, USER, rig.now)  # noqa: SLF001
    assert "touches" in why
    assert pending.members == []


async def test_a_joined_change_that_hurts_is_rolled_back_and_the_other_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Block b steps every 40 min from 5 min after B joined: the bundle fails, split.

    Each then alone (B first: predicted to gain most): B is rolled back by its
    own measurement, A kept (not blamed for B). The harm is built as in the
    change-set tests: the linear step law and the slow start, with every jump
    read again at its pace.
    """
    monkeypatch.setattr(intervals, "STEP_REFERENCE", None)
    monkeypatch.setattr(intervals, "START_GROWTH", intervals.GROWTH)
    monkeypatch.setattr(intervals, "STEP_CONFIRM", 0.0)
    rig, a, b = await a_then_b(START + 60 * 60)
    assert rig.optimizer.evaluation is not None
    assert rig.optimizer.evaluation.proposals() == [a, b]
    await rig.run_for(5 * 3600)
    assert rig.optimizer.evaluation is None
    assert rig.optimizer.queued == []
    together_a, alone_a = entries_of(rig, a)
    together_b, alone_b = entries_of(rig, b)
    # the bundle failed as a whole: both rolled back with the verdict "split"
    for entry in (together_a, together_b):
        assert entry.outcome == Outcome.ROLLED_BACK
        assert entry.measured["verdict"] == SPLIT
    # then each alone, measured like any change
    assert "set" not in alone_a.extra
    assert "set" not in alone_b.extra
    assert alone_b.outcome == Outcome.ROLLED_BACK
    assert alone_b.measured.get("verdict") != SPLIT
    assert alone_b.measured["gain"] < 0
    assert alone_b.at < alone_a.at
    assert alone_a.outcome == Outcome.KEPT
    assert alone_a.measured["gain"] > 0
    assert rig.engine.interval_bounds("1.a0") == (5.0, 1200.0)
    assert rig.engine.interval_bounds("1.b0") == (5.0, 300.0)
    record = rig.optimizer.records["interval"]
    # B alone was worse, never significantly (a step every 40 min): rolled back
    # at the window's maximum without a cooldown; A's keep is in the record
    assert (record.applied, record.kept) == (4, 1)


async def test_a_bundle_interrupted_by_a_restart_resumes_or_is_discarded_whole() -> (
    None
):
    """The joined change comes back with the pending one, or both are undone."""
    old, a, b = await a_then_b(None)
    await old.run_for(5 * 60)
    saved, audit = old.optimizer.export_state(), old.audit.export_state()
    assert saved["evaluation"]["proposal"]["id"] == a.id
    assert [m["proposal"]["id"] for m in saved["evaluation"]["members"]] == [b.id]
    ids = old.optimizer.evaluation.audit_ids()

    async def restarted(at: float) -> tuple[Rig, dict]:
        rig = Rig(*device(None), start=at, enabled=False)
        assert rig.audit.import_state(audit) == []
        return rig, rig.optimizer.import_state(saved)

    rig, report = await restarted(old.now + 120)
    assert report == {"evaluation": "resumed", "warnings": []}
    assert rig.optimizer.evaluation.audit_ids() == ids
    assert rig.engine.interval_bounds("1.a0") == (5.0, 1200.0)
    assert rig.engine.interval_bounds("1.b0") == (5.0, 1200.0)
    assert [i.audit_id for i in rig.optimizer.in_force] == ids
    # nothing more joins a resumed bundle
    assert rig.optimizer._join_blocked(rig.now)  # noqa: SLF001
    await rig.until_evaluated()
    (outcome,) = {rig.entry(i).outcome for i in ids}
    assert outcome in (Outcome.KEPT, Outcome.ROLLED_BACK)

    rig, report = await restarted(old.now + 3 * 3600)
    assert report["evaluation"] == "discarded"
    assert rig.engine.tuning()["interval_bounds"] == {}
    assert {rig.entry(i).outcome for i in ids} == {Outcome.DISCARDED}
    assert rig.optimizer.in_force == []
