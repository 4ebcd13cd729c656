"""Polling phase: a log that changes on round times must not favour round polling."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks import policies as pol
from benchmarks.metrics import compute
from benchmarks.run import combine, phases_of
from benchmarks.simulate import run_engine
from benchmarks.trace import load_trace


def _round_time_log(tmp_path: Path) -> Path:
    (tmp_path / "m.yaml").write_text(
        "registers:\n  - key: power\n    name: Power\n    table: input\n    address: 0\n"
        "    data_type: int16\n    tolerance: 10\n"
    )
    rows = "".join(f"{t},power,{(t // 300) % 2 * 500}\n" for t in range(0, 3601, 300))
    (tmp_path / "t.csv").write_text("timestamp,key,value\n" + rows)
    return tmp_path


def test_a_phase_moves_polls_off_the_round_times(tmp_path: Path) -> None:
    """Test that a phase moves polls off the round times.

    Polling every 60 s from the log's first second reads each 300 s step the very
    second it happens; shifted by a phase it shows each step late.
    """
    folder = _round_time_log(tmp_path)
    scenario = load_trace(folder / "t.csv", folder / "m.yaml")
    policy = pol.static(60, scenario.limits)
    assert policy.config is not None
    aligned = compute(scenario, asyncio.run(run_engine(scenario, policy.config, "s")))
    shifted_record = asyncio.run(run_engine(scenario, policy.config, "s", phase=37.0))
    shifted = compute(scenario, shifted_record)
    assert aligned.delay_p95 < 1.0
    assert 20.0 <= shifted.delay_median <= 24.0  # 60 - 37 = 23 s after each step
    assert shifted.tot_pct > 5.0 > aligned.tot_pct
    # the same traffic either way: 60 polls an hour
    assert shifted.requests == pytest.approx(aligned.requests, abs=1)


def test_phases_are_seeded_per_policy_and_combined_as_medians() -> None:
    """Test that phases are seeded per policy and combined as medians."""
    assert phases_of(42, "adaptive", 3) == phases_of(42, "adaptive", 3)
    assert phases_of(42, "adaptive", 3) != phases_of(42, "static-blocks@15s", 3)
    assert phases_of(43, "adaptive", 3) != phases_of(42, "adaptive", 3)
    assert all(0.0 <= p < 300.0 for p in phases_of(42, "adaptive", 20))
    runs = [
        {
            "policy": "a",
            "requests_per_hour": r,
            "bus_s_per_hour": 1.0,
            "tot_pct": t,
            "delay_median": 1.0,
            "delay_p95": 2.0,
            "tot_per_register": [t, None],
            "phase": p,
        }
        for r, t, p in ((10.0, 1.0, 5.0), (30.0, 3.0, 50.0), (20.0, 9.0, 150.0))
    ]
    m = combine(runs)
    assert m["requests_per_hour"] == 20.0
    assert m["spread"]["tot_pct"] == [1.0, 3.0, 9.0]
    assert m["tot_per_register"] == [3.0, None]
    assert m["phases"] == [5.0, 50.0, 150.0]
