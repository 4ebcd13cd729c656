"""A jump on a register whose jumps were steps is confirmed later, not at the minimum."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adaptive_modbus_engine import intervals
from adaptive_modbus_engine.intervals import (
    STEP_CONFIRM,
    IntervalLimits,
    IntervalModel,
    Reason,
)

LIMITS = IntervalLimits(5.0, 300.0)
START = 1_700_000_000.0


def drive(
    model: IntervalModel, signal: Callable[[float], float], reads: int, t: float
) -> float:
    """Read ``signal`` at the model's interval ``reads`` times; return the next time."""
    for _ in range(reads):
        model.observe(t, signal(t), True)
        t += model.interval
    return t


def stepped_once(model: IntervalModel) -> float:
    """Flat at 1000, a step to 3000 that settles, flat again: return the next time."""
    t = drive(model, lambda _t: 1000.0, 30, START)
    jump = model.observe(t, 3000.0, True)
    assert jump is not None and jump.reason is Reason.JUMP
    assert model.interval == LIMITS.min_interval  # the first jump: nothing learned
    t = drive(model, lambda _t: 3000.0, 10, t + model.interval)
    assert model.step_rate > 0
    return t


def test_a_step_after_steps_is_confirmed_at_a_share_of_the_interval() -> None:
    """The second step: the next read at STEP_CONFIRM of the interval before it."""
    model = IntervalModel(50.0, LIMITS, unit="W")
    t = stepped_once(model)
    before = model.interval
    assert before >= 40.0
    jump = model.observe(t, 1000.0, True)
    assert jump is not None and jump.reason is Reason.JUMP
    assert STEP_CONFIRM == 0.25
    assert model.interval == pytest.approx(STEP_CONFIRM * before)
    # it settles as a step all the same, and the interval grows back
    t = drive(model, lambda _t: 1000.0, 6, t + model.interval)
    assert model.interval > STEP_CONFIRM * before


def test_without_the_rule_the_step_is_confirmed_at_the_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """STEP_CONFIRM 0: every jump goes to the pace's interval (the minimum here)."""
    monkeypatch.setattr(intervals, "STEP_CONFIRM", 0.0)
    model = IntervalModel(50.0, LIMITS, unit="W")
    t = stepped_once(model)
    model.observe(t, 1000.0, True)
    assert model.interval == LIMITS.min_interval


def test_a_register_whose_jumps_go_on_is_read_at_their_pace() -> None:
    """Jumps that turned into trends (a ramp) outnumber the steps: no late confirm."""
    model = IntervalModel(50.0, LIMITS, unit="W")
    t = stepped_once(model)
    value = 3000.0
    for _ in range(3):  # three ramps: a jump that goes on at its pace
        value += 1000.0
        model.observe(t, value, True)
        for _ in range(4):
            t += model.interval
            value += 200.0 * model.interval
            model.observe(t, value, True)
        t = drive(model, lambda _t, v=value: v, 12, t + model.interval)
    t = drive(model, lambda _t: value, 20, t)  # flat long enough to rest longer
    before = model.interval
    assert STEP_CONFIRM * before > LIMITS.min_interval
    jump = model.observe(t, value + 2000.0, True)
    assert jump is not None and jump.reason is Reason.JUMP
    assert model.interval < STEP_CONFIRM * before
    assert model.interval == LIMITS.min_interval


def test_the_count_of_trends_is_kept_with_the_state() -> None:
    """Steps and trends both travel in the saved state."""
    model = IntervalModel(50.0, LIMITS, unit="W")
    t = stepped_once(model)
    model.observe(t, 4000.0, True)  # a jump ...
    t += model.interval
    model.observe(t, 5000.0, True)  # ... and a second one the same way: a trend
    state = model.to_dict()
    assert state["trn"] == pytest.approx(1.0)
    restored = IntervalModel.from_dict(state)
    assert restored.to_dict()["trn"] == state["trn"]
    assert restored.to_dict()["steps"] == state["steps"]
