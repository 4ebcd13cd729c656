"""A new register rests sooner: it doubles its interval per quiet read until it moves."""

from __future__ import annotations

from collections.abc import Callable
import math

import pytest

from adaptive_modbus_engine import intervals
from adaptive_modbus_engine.intervals import (
    GROWTH,
    START_GROWTH,
    START_LIMIT,
    IntervalLimits,
    IntervalModel,
    Reason,
)

LIMITS = IntervalLimits(5.0, 300.0)
START = 1_700_000_000.0


def reads_to_max(model: IntervalModel, signal: Callable[[float], float]) -> int:
    """Read ``signal`` at the model's interval until it reaches the maximum."""
    t = START
    for count in range(1, 200):
        model.observe(t, signal(t), True)
        if model.interval >= LIMITS.max_interval:
            return count
        t += model.interval
    raise AssertionError("never reached the maximum")


def test_a_new_quiet_register_doubles_up_to_the_start_limit() -> None:
    """Each quiet read a full interval apart doubles the interval up to START_LIMIT."""
    model = IntervalModel(1.0, LIMITS)
    t = START
    model.observe(t, 42.0, True)  # the baseline
    seen = [model.interval]
    while model.interval < START_LIMIT:
        t += model.interval
        decision = model.observe(t, 42.0, True)
        assert decision is not None and decision.reason is Reason.QUIET
        seen.append(model.interval)
    assert seen == [5.0, 10.0, 20.0, 40.0, 80.0]
    assert START_LIMIT == 80.0 and START_GROWTH == 2.0
    t += model.interval  # beyond the limit: GROWTH per read
    model.observe(t, 42.0, True)
    assert model.interval == pytest.approx(START_LIMIT * GROWTH)


def test_the_fast_start_reaches_the_maximum_in_fewer_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flat register needs 4 + 6 reads to rest at 300 s instead of 19."""
    fast = reads_to_max(IntervalModel(1.0, LIMITS), lambda _t: 42.0)
    monkeypatch.setattr(intervals, "START_GROWTH", GROWTH)
    slow = reads_to_max(IntervalModel(1.0, LIMITS), lambda _t: 42.0)
    # 1 baseline + 4 doublings to 80 s + ceil(log(300/80)/log(1.25)) = 6
    assert fast == 1 + 4 + math.ceil(math.log(300 / 80) / math.log(GROWTH))
    assert slow == 1 + math.ceil(math.log(300 / 5) / math.log(GROWTH))
    assert fast < slow / 1.5


def test_a_big_move_ends_the_fast_start() -> None:
    """After its first move a register lengthens by GROWTH per quiet read, not x2."""
    model = IntervalModel(50.0, LIMITS)
    t = START
    for _ in range(3):  # quiet, read every 5 s: 5 -> 10 -> 14.1 s
        model.observe(t, 1000.0, True)
        t += 5.0
    assert model.interval == pytest.approx(10.0 * math.sqrt(START_GROWTH))
    before = model.interval
    move = model.observe(t, 3000.0, True)
    assert move is not None and move.reason in (Reason.JUMP, Reason.RATE)
    assert model.interval < before
    grown = 0
    for _ in range(10):
        t += model.interval
        decision = model.observe(t, 3000.0, True)
        if decision is not None and decision.interval > decision.previous:
            assert decision.interval <= decision.previous * GROWTH * (1 + 1e-9)
            grown += 1
    assert grown >= 3
    assert model.interval < START_LIMIT


def test_a_change_of_an_event_register_ends_the_fast_start() -> None:
    """A bool that changed once lengthens by GROWTH per quiet read from then on."""
    model = IntervalModel(0.0, LIMITS, numeric=False)
    t = START
    model.observe(t, None, False)
    t += model.interval
    model.observe(t, None, False)
    assert model.interval == 10.0  # doubled: nothing moved yet
    t += model.interval
    model.observe(t, None, True)
    assert model.interval == LIMITS.min_interval
    t += model.interval
    model.observe(t, None, False)
    assert model.interval == pytest.approx(LIMITS.min_interval * GROWTH)


def test_a_rate_that_asks_for_less_ends_the_fast_start() -> None:
    """A ramp whose target is below the interval: RATE, and no doubling after it."""
    model = IntervalModel(1.0, LIMITS)
    t = START
    value = 0.0
    model.observe(t, value, True)
    for _ in range(3):  # quiet: 5 -> 10 -> 20 -> 40
        t += model.interval
        model.observe(t, value, True)
    assert model.interval == 40.0
    # a slow ramp, 0.02/s: each read moves 0.8 (below the tolerance: no jump),
    # target 0.6 * 1 / 0.02 = 30 s
    decisions = []
    for _ in range(6):
        t += model.interval
        value += 0.02 * model.interval
        decision = model.observe(t, value, True)
        if decision is not None:
            decisions.append(decision)
    assert any(d.reason is Reason.RATE for d in decisions)
    rate_at = next(i for i, d in enumerate(decisions) if d.reason is Reason.RATE)
    for decision in decisions[rate_at + 1 :]:
        assert decision.interval <= decision.previous * GROWTH * (1 + 1e-9)


def test_a_restored_model_does_not_start_again() -> None:
    """State saved at 10 s and restored: quiet reads lengthen by GROWTH, not x2."""
    model = IntervalModel(1.0, LIMITS)
    t = START
    model.observe(t, 42.0, True)
    t += model.interval
    model.observe(t, 42.0, True)
    assert model.interval == 10.0
    restored = IntervalModel.from_dict(model.to_dict())
    t += restored.interval
    restored.observe(t, 42.0, True)
    assert restored.interval == pytest.approx(10.0 * GROWTH)
