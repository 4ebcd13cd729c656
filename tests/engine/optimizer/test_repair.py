"""A unit whose larger reads time out is capped right after the failure, not an hour later."""

from __future__ import annotations

from adaptive_modbus_engine.audit import Outcome
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import START, Rig
from .test_loop import moving_device


async def test_timeouts_of_larger_reads_are_capped_at_once() -> None:
    """The engine alone retries a larger read after an hour; the loop's cap ends that."""
    specs, functions = moving_device(40)
    alone = Rig(specs, functions, timeout_above=20, enabled=False)
    rig = Rig(specs, functions, timeout_above=20)
    await alone.run_for(2 * 3600)
    await rig.run_for(120)
    repairs = [e for e in rig.audit if e.action == "strategy:cluster"]
    assert len(repairs) == 1
    entry = repairs[0]
    assert entry.extra["parameter"] == "max_registers"
    assert entry.after == 20  # the largest read that answered
    assert entry.at - START < 60  # right after the failing cycle
    assert rig.engine.tuning()["unit_max_registers"] == {"1": 20}
    # proven by the failures (no freshness traded): kept at once, no evaluation
    # window holds the loop up
    assert rig.entry(entry.id).outcome == Outcome.KEPT
    assert rig.optimizer.evaluation is None
    assert rig.optimizer.records["cluster"].kept == 1
    early_errors = rig.transport.counters.errors
    await rig.run_for(2 * 3600 - 120)
    # the engine alone tried a larger read again after an hour (a timeout); with
    # the cap nothing failed after the repair
    assert alone.transport.counters.errors > early_errors
    assert rig.transport.counters.errors == early_errors
    # still kept two hours on (nothing rolled it back)
    assert rig.entry(entry.id).outcome == Outcome.KEPT
    assert rig.engine.tuning()["unit_max_registers"] == {"1": 20}


async def test_no_repair_at_once_without_evidence_near_the_failing_size() -> None:
    """Right after start only a 1-register read answered: capping at 1 would be a bad guess."""
    specs, functions = moving_device(40)
    specs.append(RegisterSpec("setpoint", 1, Table.HOLDING, 0, tolerance=1.0))
    functions["setpoint"] = lambda t: 45.0
    # reads of 40 and then of 20 go unanswered before any read of 10 answered
    rig = Rig(specs, functions, timeout_above=10)
    await rig.run_for(120)
    caps = [e.after for e in rig.audit if e.action == "strategy:cluster"]
    assert caps == [10]
