"""Expert-tuned static: hindsight intervals per register, the planner's optimal blocks."""

from __future__ import annotations

import asyncio

import pytest

from adaptive_modbus_engine.registers import DataType, RegisterSpec, Table
from benchmarks import policies as pol
from benchmarks.expert import pick_intervals, run_expert
from benchmarks.metrics import compute
from benchmarks.run import truncate
from benchmarks.scenarios import install200
from benchmarks.simulate import run_engine


def test_pick_the_longest_interval_within_adaptives_time_out_of_tolerance() -> None:
    """Test that each row gets the longest interval within adaptive's time out of tolerance."""
    sweep = {
        5.0: [0.0, 1.0, 0.5, None],
        15.0: [0.0, 2.0, 3.0, None],
        60.0: [0.1, 4.0, 9.0, None],
    }
    specs = [RegisterSpec(f"r{row}", 1, Table.INPUT, row) for row in range(4)]
    assert pick_intervals(sweep, [0.1, 2.5, 0.2, None], specs) == [
        60.0,
        15.0,
        5.0,
        60.0,
    ]


def test_picked_intervals_keep_the_maps_own_bounds() -> None:
    """An alarm the map reads at least every 10 s gets 10 s, however calm it was."""
    sweep = {5.0: [0.0, 0.0, 0.0], 15.0: [0.0, 0.0, 0.0], 60.0: [0.0, 0.0, 0.0]}
    specs = [
        RegisterSpec("alarm", 1, Table.DISCRETE, 0, DataType.BOOL, max_interval=10),
        RegisterSpec("slow", 1, Table.INPUT, 0, min_interval=120),
        RegisterSpec("plain", 1, Table.INPUT, 1),
    ]
    assert pick_intervals(sweep, [1.0, 1.0, 1.0], specs) == [10.0, 120.0, 60.0]


def test_expert_with_one_interval_reads_like_static_blocks() -> None:
    """All registers on 15 s: the same blocks, the same requests as static blocks."""
    scenario = truncate(install200(hours=0.25), 600)
    expert = compute(scenario, run_expert(scenario, [15.0] * len(scenario.specs)))
    policy = pol.static(15, scenario.limits)
    assert policy.config is not None
    static = compute(
        scenario, asyncio.run(run_engine(scenario, policy.config, "static"))
    )
    assert expert.requests == pytest.approx(static.requests, rel=0.05)
    # blocks, not one read per register
    assert expert.requests < len(scenario.specs) * 41


def test_slow_registers_cost_less_and_stay_fresh_where_fast() -> None:
    """Test that per-register intervals cost less and stay fresh where they are fast."""
    scenario = truncate(install200(hours=0.25), 600)
    keys = [spec.key for spec in scenario.specs]
    fast = keys.index("inverter_ac_power")
    intervals = [300.0] * len(keys)
    intervals[fast] = 5.0
    mixed = compute(scenario, run_expert(scenario, intervals, phase=11.0))
    uniform = compute(scenario, run_expert(scenario, [5.0] * len(keys), phase=11.0))
    assert mixed.requests < uniform.requests
    reads = run_expert(scenario, intervals, phase=11.0).reads[fast][0]
    assert len(reads) >= 600 / 5
