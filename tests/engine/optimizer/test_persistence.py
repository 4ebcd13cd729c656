"""Optimizer state across a restart: an interrupted evaluation resumes or is discarded."""

from __future__ import annotations

from adaptive_modbus_engine.audit import Actor, Outcome
from adaptive_modbus_engine.optimizer import OPTIMIZER_VERSION

from .rig import USER, Rig, inline
from .test_loop import flat_device


async def _mid_evaluation() -> tuple[Rig, dict, dict]:
    """Return a rig with an applied change being evaluated, and its saved states."""
    specs, functions = flat_device()
    rig = Rig(specs, functions, enabled=False)
    await rig.run_for(45 * 60)
    rig.optimizer.set_strategy_parameters("cluster", {"max_step": 3.0}, actor=USER)
    result = await rig.optimizer.run(
        "quick", strategy="interval", actor=Actor.loop(), run_in_executor=inline
    )
    assert result.applied
    await rig.run_for(5 * 60)
    assert rig.optimizer.evaluation is not None
    return rig, rig.optimizer.export_state(), rig.audit.export_state()


async def _restarted(saved: dict, audit: dict, at: float) -> tuple[Rig, dict]:
    specs, functions = flat_device()
    rig = Rig(specs, functions, start=at, enabled=False)
    assert rig.audit.import_state(audit) == []
    report = rig.optimizer.import_state(saved)
    return rig, report


async def test_an_evaluation_interrupted_briefly_resumes() -> None:
    """Parameters come back, the evaluation starts its window over and then judges."""
    old, saved, audit = await _mid_evaluation()
    assert saved["version"] == OPTIMIZER_VERSION
    bounds = old.engine.interval_bounds("1.flat0")
    rig, report = await _restarted(saved, audit, old.now + 120)
    assert report == {"evaluation": "resumed", "warnings": []}
    assert rig.engine.interval_bounds("1.flat0") == bounds
    evaluation = rig.optimizer.evaluation
    assert evaluation is not None
    assert evaluation.resumed
    assert evaluation.ends == rig.now + 1800
    assert rig.optimizer.parameters["cluster"]["max_step"] == 3.0
    entry = rig.entry(evaluation.audit_id)
    assert entry.outcome == Outcome.EVALUATING
    assert entry.extra["resumed_at"] == rig.now
    await rig.run_for(3600)
    assert rig.optimizer.evaluation is None
    assert rig.entry(evaluation.audit_id).outcome in (Outcome.KEPT, Outcome.ROLLED_BACK)


async def test_an_evaluation_interrupted_too_long_is_discarded() -> None:
    """After a long downtime the change is undone and the evaluation discarded, audited."""
    old, saved, audit = await _mid_evaluation()
    audit_id = old.optimizer.evaluation.audit_id
    rig, report = await _restarted(saved, audit, old.now + 3 * 3600)
    assert report["evaluation"] == "discarded"
    assert rig.optimizer.evaluation is None
    assert rig.engine.interval_bounds("1.flat0") == (5.0, 300.0)
    assert rig.engine.tuning()["interval_bounds"] == {}
    assert rig.entry(audit_id).outcome == Outcome.DISCARDED
    assert rig.optimizer.records["interval"].discarded == 1
    assert rig.optimizer.in_force == []


async def test_bad_stored_state_is_set_aside() -> None:
    """Another version, or broken parts, are reported, never raised."""
    specs, functions = flat_device()
    rig = Rig(specs, functions)
    report = rig.optimizer.import_state({"version": 99})
    assert report["evaluation"] is None
    assert "version 99" in report["warnings"][0]
    report = rig.optimizer.import_state(
        {
            "version": OPTIMIZER_VERSION,
            "goal": "fastest",
            "parameters": {"loop": {"quick_every": -5}},
            "tuning": {"version": 1, "interval_bounds": {"1.nope": [5, 10]}},
            "evaluation": {"proposal": "broken"},
        }
    )
    assert report["evaluation"] == "discarded"
    warnings = " | ".join(report["warnings"])
    assert "goal 'fastest'" in warnings
    assert "parameters of loop" in warnings
    assert "1.nope" in warnings
    assert "evaluation was set aside" in warnings
    assert rig.optimizer.goal == "balanced"


async def test_a_version_2_state_is_migrated_with_its_evaluation_a_set_of_one() -> None:
    """Before change-sets: the pending evaluation resumes alone, records learn errors anew."""
    old, saved, audit = await _mid_evaluation()
    v2 = dict(saved, version=2)
    del v2["queued"]
    v2["evaluation"] = {
        k: v for k, v in saved["evaluation"].items() if k not in ("members", "set_gain")
    }
    v2["records"] = {
        name: {
            k: v
            for k, v in record.items()
            if k not in ("predictions", "prediction_error_sq", "prediction_error")
        }
        for name, record in saved["records"].items()
    }
    rig, report = await _restarted(v2, audit, old.now + 120)
    assert report == {"evaluation": "resumed", "warnings": []}
    evaluation = rig.optimizer.evaluation
    assert evaluation is not None
    assert evaluation.members == []
    assert evaluation.audit_ids() == [old.optimizer.evaluation.audit_id]
    assert rig.optimizer.queued == []
    record = rig.optimizer.records["interval"]
    assert (record.applied, record.predictions, record.prediction_error) == (1, 0, 0.2)
    assert rig.optimizer.export_state()["version"] == OPTIMIZER_VERSION == 3
