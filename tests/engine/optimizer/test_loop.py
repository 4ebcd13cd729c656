"""The optimization loop on a simulated device in virtual time: kept, rolled back, learned."""

from __future__ import annotations

import math

import pytest

from adaptive_modbus_engine.audit import Actor, Outcome
from adaptive_modbus_engine.config import EngineConfig
from adaptive_modbus_engine.optimizer import Goal, OptimizerParameterError, Proposal
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .rig import USER, Rig, inline, input_specs

FLAT = [f"flat{i}" for i in range(10)]


def flat_device(
    incident_at: float = math.inf, moving: int = len(FLAT)
) -> tuple[list, dict]:
    """Ten registers that hold still and a slow ramp far away.

    From ``incident_at`` on, the first ``moving`` of the ten swing.
    """
    specs = [
        *input_specs(FLAT),
        RegisterSpec("ramp", 1, Table.INPUT, 100, tolerance=1.0),
    ]

    def flat(i: int):  # noqa: ANN202
        def value(t: float) -> float:
            if t < incident_at or i >= moving:
                return 100.0 + i
            # an incident: every register swings by 5 tolerances every 20 s
            return 100.0 + i + 5.0 * (int((t - incident_at) // 20) % 4)

        return value

    functions = {key: flat(i) for i, key in enumerate(FLAT)}
    functions["ramp"] = lambda t: 1000.0 + (t - 1_795_413_600.0) / 600.0
    return specs, functions


async def rest_longer_before_an_incident(incident_at: float) -> tuple[Rig, Proposal]:
    """Quiet registers told to rest up to 4x longer after 45 min; they swing from ``incident_at``.

    Returns the rig and the interval strategy's applied proposal.
    """
    specs, functions = flat_device(incident_at=incident_at, moving=5)
    rig = Rig(specs, functions, enabled=False)
    rig.optimizer.set_strategy_parameters("interval", {"max_step": 4.0}, actor=USER)
    await rig.run_for(45 * 60)
    result = await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    return rig, next(p for p in result.proposals if p.id in result.applied)


async def test_a_change_that_helps_is_kept() -> None:
    """Registers resting at their maximum rest longer: fewer requests, kept by measurement."""
    specs, functions = flat_device()
    rig = Rig(specs, functions)
    await rig.run_for(3 * 3600)
    applied = [e for e in rig.audit if e.action == "strategy:interval"]
    assert applied, "the loop applied nothing"
    first = applied[0]
    assert first.extra["parameter"] == "max_interval"
    assert (
        first.predicted["after"]["requests_per_min"]
        < first.predicted["before"]["requests_per_min"]
    )
    assert first.outcome == Outcome.KEPT
    measured = first.measured
    assert (
        measured["after"]["requests_per_min"] < measured["before"]["requests_per_min"]
    )
    assert measured["gain"] > 0
    # the longer maximum is in force and the flat registers use it
    low, high = rig.engine.interval_bounds("1.flat0")
    assert high > 300.0
    assert rig.engine.snapshot().registers["1.flat0"].interval > 300.0
    assert rig.optimizer.records["interval"].kept >= 1


def moving_device(count: int = 40) -> tuple[list, dict]:
    """``count`` contiguous registers that all move: reads of the whole span pay."""
    specs = input_specs([f"r{i}" for i in range(count)], tolerance=1.0)
    functions = {
        f"r{i}": (lambda t, i=i: 100.0 + i + (t - 1_795_413_600.0) / (20.0 + i))
        for i in range(count)
    }
    return specs, functions


async def test_a_block_limit_the_device_refuses_is_rolled_back_by_measurement() -> None:
    """A larger read looks cheaper in the shadow replay; the device does not answer it."""
    specs, functions = moving_device()
    # every register a steady ramp: with the tick lock's extra reads the cluster
    # strategy's best proposal is a planner parameter, not the block limit tested
    config = EngineConfig(tick_lock=False)
    rig = Rig(specs, functions, timeout_above=20, enabled=False, config=config)
    rig.engine.set_unit_max_registers(1, 16)  # a cap set earlier, which holds
    await rig.run_for(1200)
    result = await rig.optimizer.run(
        "full", strategy="cluster", actor=USER, run_in_executor=inline
    )
    applied = [p for p in result.proposals if p.id in result.applied]
    assert len(applied) == 1
    proposal = applied[0]
    assert proposal.parameter == "max_registers"
    assert proposal.after == 32
    # predicted to help: the replay cannot know the device refuses 32 registers
    assert proposal.gain is not None and proposal.gain > 0
    assert rig.engine.tuning()["unit_max_registers"] == {"1": 32}
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.measured["gain"] < 0
    assert (
        entry.measured["after"]["error_rate"] > entry.measured["before"]["error_rate"]
    )
    # back to the cap before, and the failure is remembered
    assert rig.engine.tuning()["unit_max_registers"] == {"1": 16}
    assert rig.optimizer.units[1].min_failed is not None
    assert rig.optimizer.units[1].min_failed <= 32
    record = rig.optimizer.records["cluster"]
    assert (record.applied, record.kept, record.rolled_back) == (1, 0, 1)


async def test_intervals_that_miss_the_incident_are_rolled_back_and_the_strategy_turns_cautious() -> (
    None
):
    """Resting 4x longer looks free on quiet data; the incident right after proves it wrong."""
    start = 1_795_413_600.0
    rig, proposal = await rest_longer_before_an_incident(start + 50 * 60)
    assert proposal.parameter == "max_interval"
    assert proposal.after == [1200]
    assert proposal.predicted["after"]["time_out_of_tolerance"] == 0.0
    await rig.until_evaluated()
    entry = next(e for e in rig.audit if e.extra.get("proposal") == proposal.id)
    assert entry.outcome == Outcome.ROLLED_BACK
    assert entry.measured["after"]["time_out_of_tolerance"] > 0.05
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
    # learning: cautious and cooling down
    record = rig.optimizer.records["interval"]
    assert record.rolled_back == 1
    assert record.boldness < 1.0
    assert record.cooldown_until > rig.now
    # the interval strategy's learning alone: a full cycle's read-plan change (its
    # evaluation can hold the loop up to evaluation_max) is not what this is about
    rig.optimizer.set_parameters_quietly("cluster", {"enabled": False})
    rig.optimizer.enabled = True
    rig.optimizer.next_quick = rig.now
    await rig.run_for(120)
    assert rig.results, "the loop ran no cycle"
    assert "interval: cooling down" in rig.results[-1].note
    # after the cooldown the next proposal (for the registers still resting) is smaller
    await rig.run_for(record.cooldown_until - rig.now + 20 * 60)
    later = [
        p
        for run in rig.results
        if run.at > record.cooldown_until
        for p in run.proposals
        if p.parameter == "max_interval"
    ]
    assert later
    assert all(change.target >= "1.flat5" for change in later[0].changes)
    # a whole multiple of the maximum (aligned due times stay harmonic)
    assert later[0].after == [300 * max(2, math.floor(record.step(4.0)))]
    assert later[0].after[0] < 1200


async def test_a_user_rolls_back_a_change() -> None:
    """The latest change is undone and both entries name what happened and who did it."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    await rig.run_for(45 * 60)
    result = await rig.optimizer.run(
        "quick", strategy="interval", actor=Actor.loop(), run_in_executor=inline
    )
    assert result.applied
    assert rig.engine.interval_bounds("1.flat0")[1] > 300.0
    undone = rig.optimizer.rollback(actor=USER)
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
    assert rig.optimizer.evaluation is None
    entry = rig.entry(undone["audit_id"])
    assert entry.action == "rollback"
    assert entry.actor.name == "Admin"
    assert rig.entry(undone["undone"][0]).outcome == Outcome.ROLLED_BACK
    with pytest.raises(OptimizerParameterError) as err:
        rig.optimizer.rollback(actor=USER)
    assert err.value.parameter == "audit_id"


async def test_pins_are_respected() -> None:
    """A pinned register is never part of a proposal, and its bounds stay."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    rig.engine.pin_interval("1.flat3", min_interval=20.0, max_interval=300.0)
    await rig.run_for(45 * 60)
    for goal in ("balanced", "min_bus_load", "freshest"):
        rig.optimizer.goal = goal
        result = await rig.optimizer.run(
            "full", dry_run=True, actor=USER, run_in_executor=inline
        )
        interval = [p for p in result.proposals if p.strategy == "interval"]
        assert interval, goal
        for proposal in interval:
            targets = {change.target for change in proposal.changes}
            assert "1.flat3" not in targets
        assert any(
            "1.flat2" in {change.target for change in proposal.changes}
            for proposal in interval
        )
    rig.optimizer.goal = "balanced"
    result = await rig.optimizer.run(
        "quick", strategy="interval", actor=USER, run_in_executor=inline
    )
    assert rig.engine.interval_bounds("1.flat3") == (20.0, 300.0)
    assert rig.engine.pins()["1.flat3"].min_interval == 20.0


def noisy_device() -> tuple[list, dict]:
    """Return a temperature whose noise is 3x its tolerance, beside quiet registers."""
    import random  # noqa: PLC0415

    specs = [
        *input_specs(FLAT),
        RegisterSpec("temp", 1, Table.INPUT, 50, tolerance=1.0),
    ]
    functions = {key: (lambda t, i=i: 100.0 + i) for i, key in enumerate(FLAT)}
    sigma = 3.0 / math.sqrt(2.0)
    functions["temp"] = lambda t: 500.0 + random.Random(int(t)).gauss(0.0, sigma)
    return specs, functions


async def test_a_tolerance_raise_needs_approval() -> None:
    """Noise above the tolerance gets a proposal a user must approve; nothing before."""
    specs, functions = noisy_device()
    rig = Rig(specs, functions, enabled=False)
    # noisy for 10 minutes is enough here (a week by default: see test_noisy_week)
    rig.optimizer.set_parameters_quietly("interval", {"noisy_for": 600.0})
    await rig.run_for(30 * 60)
    first = await rig.optimizer.run(
        "quick", strategy="interval", dry_run=True, actor=Actor.loop(),
        run_in_executor=inline,
    )  # fmt: skip
    assert not [p for p in first.proposals if p.parameter == "tolerance"]
    await rig.run_for(15 * 60)
    result = await rig.optimizer.run(
        "quick", strategy="interval", actor=Actor.loop(), run_in_executor=inline
    )
    raise_ = next(p for p in result.proposals if p.parameter == "tolerance")
    assert raise_.needs_approval
    assert raise_.id not in result.applied
    assert raise_.target == "1.temp"
    assert raise_.after > 2.0  # about 1.25 noise floors (noise ~3)
    assert rig.engine.tolerance("1.temp") == 1.0
    proposed = next(e for e in rig.audit if e.extra.get("proposal") == raise_.id)
    assert proposed.outcome == Outcome.PROPOSED
    assert raise_.id in rig.optimizer.awaiting
    # asked again: not proposed twice
    again = await rig.optimizer.run(
        "quick", strategy="interval", dry_run=True, actor=Actor.loop(),
        run_in_executor=inline,
    )  # fmt: skip
    assert not [p for p in again.proposals if p.parameter == "tolerance"]
    done = rig.optimizer.approve(raise_.id, actor=USER)
    assert rig.engine.tolerance("1.temp") == raise_.after
    approved = rig.entry(done["audit_id"])
    assert approved.action == "approve"
    assert approved.actor.user_id == "u-admin"
    with pytest.raises(OptimizerParameterError) as err:
        rig.optimizer.approve(raise_.id, actor=USER)
    assert err.value.parameter == "proposal_id"


async def test_a_dry_run_predicts_and_changes_nothing() -> None:
    """Proposals come back with their predicted effect; engine and audit stay as they were."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    await rig.run_for(45 * 60)
    tuning, entries = rig.engine.tuning(), len(rig.audit)
    result = await rig.optimizer.run(
        "full", dry_run=True, actor=USER, run_in_executor=inline
    )
    data = result.as_dict()
    assert data["dry_run"] is True
    assert data["applied"] == []
    assert data["proposals"]
    proposal = data["proposals"][0]
    assert set(proposal) >= {"id", "strategy", "target", "parameter", "before", "after",
                             "predicted", "needs_approval"}  # fmt: skip
    assert set(proposal["predicted"]["after"]) >= {
        "requests_per_min",
        "bus_utilisation",
        "time_out_of_tolerance",
        "first_change_delay",
    }
    assert any(p["verdict"] == "would apply" for p in data["proposals"])
    assert rig.engine.tuning() == tuning
    assert len(rig.audit) == entries
    assert rig.optimizer.evaluation is None


async def test_cycles_are_measured_without_ticks() -> None:
    """Every poll cycle reaches the measurement, even while no tick runs."""
    specs, functions = moving_device(40)
    rig = Rig(specs, functions, timeout_above=20, enabled=False)
    await rig.run_for(30 * 60, tick=False)
    figures = rig.optimizer.statistics()["window"]
    assert figures["requests_per_min"] > 0
    assert figures["bus_utilisation"] > 0
    assert figures["error_rate"] > 0  # the first reads of 40 registers go unanswered
    assert rig.optimizer.units[1].min_failed is not None
    rig.optimizer.close()
    requests = rig.transport.counters.requests
    await rig.run_for(10 * 60, tick=False)
    assert rig.transport.counters.requests > requests
    later = rig.optimizer.statistics()["window"]
    assert later["requests_per_min"] < figures["requests_per_min"]  # no longer counted


async def test_nothing_runs_during_a_write() -> None:
    """A due cycle waits while a user's write is in progress."""
    specs, functions = flat_device()
    rig = Rig(specs, functions)
    await rig.run_for(20 * 60, tick=False)
    rig.optimizer.next_quick = rig.now
    rig.engine._writes_in_flight = 1  # noqa: SLF001 - a write in flight
    assert await rig.optimizer.tick(rig.now, run_in_executor=inline) is None
    rig.engine._writes_in_flight = 0  # noqa: SLF001
    assert await rig.optimizer.tick(rig.now, run_in_executor=inline) is not None


async def test_strategy_parameters_are_validated_and_audited() -> None:
    """Out-of-range values name the parameter and range; changes return before/after."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    with pytest.raises(
        OptimizerParameterError, match=r"interval\.max_step.*1\.05 to 4"
    ) as err:
        rig.optimizer.set_strategy_parameters("interval", {"max_step": 9}, actor=USER)
    assert err.value.parameter == "interval.max_step"
    assert err.value.allowed == "1.05-4"
    with pytest.raises(OptimizerParameterError, match="enabled must be true or false"):
        rig.optimizer.set_strategy_parameters("cluster", {"enabled": 1}, actor=USER)
    with pytest.raises(OptimizerParameterError, match="has no parameter 'speed'"):
        rig.optimizer.set_strategy_parameters("cluster", {"speed": 1}, actor=USER)
    with pytest.raises(OptimizerParameterError, match="strategy must be one of"):
        rig.optimizer.set_strategy_parameters("magic", {}, actor=USER)
    with pytest.raises(OptimizerParameterError) as bad_kind:
        await rig.optimizer.run("slow", actor=USER, run_in_executor=inline)
    assert bad_kind.value.parameter == "kind"
    changed = rig.optimizer.set_strategy_parameters(
        "loop", {"quick_every": 600, "full_hour": 4}, actor=USER
    )
    assert changed["before"]["quick_every"] == 900.0
    assert changed["after"]["quick_every"] == 600.0
    assert rig.optimizer.full_hour() == (4, "configured")
    entry = rig.audit.tail(1)[0]
    assert entry.action == "set_strategy_parameters"
    assert entry.actor.name == "Admin"
    assert rig.optimizer.set_goal("freshest", actor=USER)["after"] == "freshest"
    assert rig.optimizer.goal is Goal.FRESHEST
    with pytest.raises(OptimizerParameterError) as bad_goal:
        rig.optimizer.set_goal("fastest", actor=USER)
    assert bad_goal.value.parameter == "goal"


async def test_statistics_report_records_parameters_and_savings() -> None:
    """After a kept change: per-strategy records, parameters in force, savings, audit tail."""
    specs, functions = flat_device()
    rig = Rig(specs, functions)
    await rig.run_for(3 * 3600)
    stats = rig.optimizer.statistics()
    assert stats["strategies"]["interval"]["kept"] >= 1
    assert stats["parameters_in_force"]["interval_bounds"]["1.flat0"][1] > 300
    saving = stats["savings"]["vs_before_optimization"]["requests_per_min"]
    assert saving["now"] < saving["before"]
    assert saving["saving"] > 0
    assert 0 < stats["savings"]["vs_fixed_polling"] <= 100
    assert stats["audit"][-1]["action"].startswith("strategy:")
    assert stats["full_hour"]["hour"] == 3  # nothing learned yet: the default
    assert stats["objective"]["goal"] == "balanced"
