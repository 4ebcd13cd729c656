"""Engine overhead: rounds, medians and min-max, and the checks built on them.

These test how the measurements are aggregated, not how fast the machine is.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from benchmarks.overhead import (
    FULL_WARM_CYCLES,
    ROUND_FIGURES,
    _Rig,
    aggregate,
    growth,
    measure,
)
from benchmarks.report import overhead_checks

ENGINE_FIGURES = tuple(k for k in ROUND_FIGURES if not k.startswith("fleet_"))
"""The figures every size has (the fleet's only the fleet's large size)."""


def _round(scale: float, **over: float) -> dict[str, float]:
    """Every figure of one engine at ``scale``; the fleet's only when given."""
    figures = dict.fromkeys(ENGINE_FIGURES, scale)
    figures.update(over)
    return figures


def _size(registers: int, rounds: list[dict[str, float]]) -> dict[str, Any]:
    figures = aggregate(rounds)
    return {
        "registers": registers,
        **{key: figures[key] for key in ROUND_FIGURES},
        "adaptive_cycle_ms": figures["adaptive_cycle_ms"],
        "adaptive_due_per_cycle": 100.0,
        "repeats": len(rounds),
        "spread": figures["spread"],
        "rounds": rounds,
    }


def test_a_figure_is_the_median_over_the_rounds_with_its_min_max() -> None:
    """Test that one slow round moves neither the median nor hides in the range."""
    rounds = [_round(1.0), _round(1.2), _round(9.0), _round(1.1), _round(0.9)]
    figures = aggregate(rounds)
    for key in ENGINE_FIGURES:
        assert figures[key] == 1.1
        assert figures["spread"][key] == (0.9, 9.0)


def test_nan_rounds_are_left_out_and_an_all_nan_figure_stays_nan() -> None:
    """Test that a probe that found nothing (NaN) does not poison the median."""
    rounds = [
        _round(2.0, adaptive_sched_plan_ms=math.nan, full_sched_plan_ms=math.nan),
        _round(4.0, full_sched_plan_ms=math.nan),
        _round(3.0, full_sched_plan_ms=math.nan),
    ]
    figures = aggregate(rounds)
    assert figures["adaptive_per_read_us"] == 3.0
    assert figures["adaptive_sched_plan_ms"] == 3.5
    assert figures["spread"]["adaptive_sched_plan_ms"] == (3.0, 4.0)
    assert math.isnan(figures["full_sched_plan_ms"])
    assert "full_sched_plan_ms" not in figures["spread"]


def test_growth_compares_medians_so_one_noisy_round_does_not_flip_it() -> None:
    """Test that the n log n check passes on medians when one round of the large size is slow.

    Per register, 10,000 registers cost 1.2x what 1,000 do in every round but one,
    where the machine was busy (3x); the bound is log(10,000) / log(1,000) = 1.33.
    """
    small = [_round(1.0, full_sched_plan_ms=1.0) for _ in range(5)]
    large = [_round(1.2, full_sched_plan_ms=12.0) for _ in range(5)]
    large[2] = _round(3.0, full_sched_plan_ms=30.0)
    result = growth([_size(1000, small), _size(10_000, large)])
    assert math.isclose(result["bound"], 4 / 3)
    assert math.isclose(result["full_cycle_ratio"], 1.2)
    assert math.isclose(
        result["sched_plan_ratio"], 1.2
    )  # per register: 12/10,000 / 1/1,000
    low, high = result["full_cycle_ratio_spread"]
    assert math.isclose(low, 1.2)
    assert math.isclose(high, 3.0)
    check = overhead_checks({"sizes": [], "growth": result})[0]
    assert check["ok"]
    assert "(rounds 1.20-3.00)" in check["detail"]
    # a real growth in the medians still fails
    large = [_round(1.5, full_sched_plan_ms=15.0) for _ in range(5)]
    assert not overhead_checks(
        {"sizes": [], "growth": growth([_size(1000, small), _size(10_000, large)])}
    )[0]["ok"]


def test_the_cycle_check_judges_scheduler_and_planner_not_the_whole_cycle() -> None:
    """Test that the 0.2 ms target applies to scheduler + planner, with the range shown."""
    rounds = [
        _round(8.0, adaptive_sched_plan_ms=ms) for ms in (0.15, 0.18, 0.5, 0.17, 0.19)
    ]
    row = _size(1000, rounds)
    checks = {c["name"]: c for c in overhead_checks({"sizes": [row]})}
    cycle = next(c for name, c in checks.items() if "scheduler + planner <=" in name)
    assert cycle["ok"]  # median 0.18 ms, though the whole cycle takes 8 ms
    assert "0.18 ms (0.15-0.50 over 5 rounds)" in cycle["detail"]
    per_read = next(c for name, c in checks.items() if "per register read" in name)
    assert not per_read["ok"]  # 8 us > 5 us
    assert "8.0 us per register read (8.0-8.0 over 5 rounds)" in per_read["detail"]


def test_every_round_times_the_same_work() -> None:
    """Test a real (quick) measurement: rounds copy one warmed engine, so they match."""
    (result,) = measure((100,), quick=True, repeats=3)
    assert result["repeats"] == 3
    assert len(result["rounds"]) == 3
    assert result["adaptive_cycles"] % 3 == 0
    assert result["adaptive_cycles"] > 0
    for key in ENGINE_FIGURES:
        low, high = result["spread"][key]
        assert low <= result[key] <= high
        assert sorted(r[key] for r in result["rounds"])[1] == result[key]


def test_full_cycles_are_timed_on_a_copy_of_a_warmed_fixed_engine() -> None:
    """Test that no round times the fixed engine's first cycles, and every round the same.

    The first cycles allocate each register's model and profile arrays (several
    times a steady cycle's CPU); when the rounds timed the fixed engine itself, they
    fell into the first round only, where 10,000 registers timed three cycles.
    """
    rig = _Rig(100)
    start = rig.full.clock.now()

    async def run() -> tuple[float, int]:
        await rig.start(40.0)
        warmed, requests = rig.full.clock.now(), rig.full.transport.requests
        for _ in range(2):
            await rig.round(3, 80.0, 20)
        assert rig.full.clock.now() == warmed  # rounds advance a copy
        assert rig.full.transport.requests == requests
        return warmed, requests

    warmed, requests = asyncio.run(run())
    assert (
        warmed == start + (FULL_WARM_CYCLES - 1) * 10.0
    )  # the first cycle is at start
    assert requests == FULL_WARM_CYCLES  # one read of the unit's 100 registers a cycle


def test_growth_is_judged_against_the_same_data_in_engines_of_the_small_size() -> None:
    """Test that the check judges 10,000 registers against ten engines of 1,000 in turn.

    One engine of 1,000 registers keeps its data in the shared cache, 10,000 do not:
    per register the large engine costs 1.5x the small one (beyond n log n's 1.33)
    but 1.1x the fleet of ten small engines that hold the same data. The plain ratio
    is still shown; without the fleet it is judged.
    """
    small = [_round(1.0, full_sched_plan_ms=1.0) for _ in range(3)]
    large = [
        _round(1.5, full_sched_plan_ms=15.0, fleet_per_register_us=1.36,
               fleet_sched_plan_ms=13.6)
        for _ in range(3)
    ]  # fmt: skip
    result = growth([_size(1000, small), _size(10_000, large)])
    assert math.isclose(result["full_cycle_ratio"], 1.5)
    assert math.isclose(result["work_ratio"], 1.5 / 1.36)
    assert math.isclose(result["work_sched_plan_ratio"], 15.0 / 13.6)
    check = overhead_checks({"sizes": [], "growth": result})[0]
    assert check["ok"]
    assert "ten of 1,000 polled in turn" in check["detail"]
    assert "full cycle 1.50" in check["detail"]  # the plain ratio, shown
    # the fleet's own work growing (its scheduler + planner) fails it
    large[1] = large[0] = large[2] = _round(
        1.5,
        full_sched_plan_ms=15.0,
        fleet_per_register_us=1.36,
        fleet_sched_plan_ms=9.0,
    )
    result = growth([_size(1000, small), _size(10_000, large)])
    assert not overhead_checks({"sizes": [], "growth": result})[0]["ok"]
    # without the fleet the plain ratio is judged
    plain = [_round(1.5, full_sched_plan_ms=15.0) for _ in range(3)]
    result = growth([_size(1000, small), _size(10_000, plain)])
    assert "work_ratio" not in result
    assert not overhead_checks({"sizes": [], "growth": result})[0]["ok"]


def test_the_fleet_is_timed_in_each_round_of_the_large_size() -> None:
    """Test a real (quick) measurement with a fleet: two engines of 50 beside one of 100.

    The fleet holds as many registers as the large engine and every round of the
    large size times it; the small size has no fleet figures.
    """
    rows = {r["registers"]: r for r in measure((50, 100), quick=True, fleet=(50, 100))}
    assert rows[50]["fleet_per_register_us"] is None  # JSON: no NaN
    large = rows[100]
    assert len(large["rounds"]) == 2
    for figures in large["rounds"]:
        assert figures["fleet_per_register_us"] > 0
        assert figures["fleet_sched_plan_ms"] > 0
    assert large["fleet_per_register_us"] > 0
    result = growth(list(rows.values()), small=50, large=100)
    assert result["work_ratio"] > 0
    assert "work_ratio_spread" in result
