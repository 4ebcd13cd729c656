"""The read path's shortcuts give the general path's results to the bit.

A read that returns the value of the read before takes a shortcut through the
interval model (:meth:`IntervalModel._observe_unchanged`). Random read streams
(unchanged runs, noise, jumps, level shifts, reads off the grid, missing values,
bound, tolerance and noise-margin changes) go through the model as the engine calls
it and through a twin that always takes the general path; after every read the
whole state of both (every attribute, floats compared by their bits, the decision
with its text) must be the same.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import random
from typing import Any

import pytest

from adaptive_modbus_engine.intervals import (
    IntervalDecision,
    IntervalLimits,
    IntervalModel,
    _PendingShift,
)


def bits(value: object) -> object:
    """``value`` with every float as its hex text (``0.0`` and ``-0.0`` differ)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [bits(x) for x in value]
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    if isinstance(value, IntervalDecision):
        fields = (value.at, value.interval, value.previous, value.reason, value.detail)
        return ["decision", *(bits(x) for x in fields)]
    if isinstance(value, _PendingShift):
        return ["shift", *bits(value.to_list())]
    return value


def model_state(model: IntervalModel) -> dict[str, Any]:
    """Every attribute of ``model``, floats as bits."""
    return {name: bits(value) for name, value in vars(model).items()}


def general(model: IntervalModel, t: float, value: float | None) -> object:
    """Observe as before the shortcut: every number on the general path."""
    if model._last_t is not None and not t > model._last_t:  # noqa: SLF001
        return None
    if value is None or not math.isfinite(value):
        return model.observe(t, value, False)
    return model._observe_numeric(t, float(value))  # noqa: SLF001


def stream(rng: random.Random, reads: int) -> list[tuple[float, float | None, str]]:
    """Return a random read stream: (dt, value, what happens before the read)."""
    out: list[tuple[float, float | None, str]] = []
    value: float | None = 1000.0
    level = 1000.0
    for _ in range(reads):
        dt = rng.choice((5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0))
        if rng.random() < 0.3:  # off the grid: a rider, a retry
            dt *= rng.uniform(0.05, 1.0)
        roll = rng.random()
        if roll < 0.55:
            pass  # unchanged: the shortcut
        elif roll < 0.7:
            level += rng.gauss(0.0, rng.choice((0.2, 2.0, 8.0)))
        elif roll < 0.78:
            level += rng.choice((-1.0, 1.0)) * rng.uniform(10.0, 200.0)  # a step
        elif roll < 0.8:
            level = rng.choice((0.0, -0.0, 1000.0))  # signed zeros
        elif roll < 0.81:
            value = None  # no value (NaN on the wire)
        value = None if value is None and rng.random() < 0.5 else level
        event = ""
        event_roll = rng.random()
        if event_roll < 0.01:
            event = "bounds"
        elif event_roll < 0.015:
            event = "tolerance"
        elif event_roll < 0.02:
            event = "margin"
        elif event_roll < 0.022:
            event = "forget"
        out.append((dt, value, event))
    return out


def apply_event(model: IntervalModel, event: str, rng: random.Random) -> None:
    """Change what the engine's parameter API changes between reads."""
    if event == "bounds":
        low = rng.choice((1.0, 5.0, 10.0))
        model.limits = IntervalLimits(low, rng.choice((low, 60.0, 300.0, 900.0)))
    elif event == "tolerance":
        model.tolerance = rng.choice((0.0, 0.5, 2.0, 50.0))
    elif event == "margin":
        model.noise_margin = rng.choice((0.0, 1.0, 2.0, 20.0))
    elif event == "forget":
        model.forget_baseline()


def run_twins(
    seed: int, reads: int, make: Callable[[], IntervalModel]
) -> tuple[int, int]:
    """Feed one stream to a model and its general-path twin; compare after each read.

    Returns (reads compared, decisions made).
    """
    rng = random.Random(seed)
    events = random.Random(seed + 1)
    fast, slow = make(), make()
    t = 1_700_000_000.0
    decisions = 0
    for index, (dt, value, event) in enumerate(stream(rng, reads)):
        t += dt
        if event:
            state = events.getstate()
            apply_event(fast, event, events)
            events.setstate(state)
            apply_event(slow, event, events)
        changed = value is not None
        got = fast.observe(t, value, changed)
        want = general(slow, t, value)
        assert bits(got) == bits(want), (seed, index)
        assert model_state(fast) == model_state(slow), (seed, index)
        decisions += got is not None
        if index == reads // 2:  # a restored model takes the shortcut too
            fast = IntervalModel.from_dict(fast.to_dict())
            slow = IntervalModel.from_dict(slow.to_dict())
    return reads, decisions


@pytest.mark.parametrize("seed", range(8))
def test_the_unchanged_read_shortcut_gives_the_general_path_results(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8,000 random reads per seed, half of them unchanged, equal to the bit."""
    taken = 0
    shortcut = IntervalModel._observe_unchanged  # noqa: SLF001

    def counted(self: IntervalModel, t: float, value: float, last_t: float) -> Any:
        nonlocal taken
        taken += 1
        return shortcut(self, t, value, last_t)

    monkeypatch.setattr(IntervalModel, "_observe_unchanged", counted)
    tolerance = (0.0, 0.5, 2.0, 5.0)[seed % 4]
    reads, decisions = run_twins(
        seed,
        8_000,
        lambda: IntervalModel(tolerance, IntervalLimits(5.0, 300.0), unit="W"),
    )
    assert taken > reads // 3  # the shortcut was taken, often
    assert decisions > reads // 10
