"""Freshness metrics as users feel them: time out of tolerance, detection delay, frontier."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from benchmarks.metrics import band_exits, compute, final_start
from benchmarks.oracle import night_floor, run_oracle
from benchmarks.policies import ADAPTIVE, standard
from benchmarks.report import at_equal_tot, frontier
from benchmarks.run import truncate
from benchmarks.scenarios import install200, pv, wrong_defaults
from benchmarks.simulate import RunRecord, run_engine
from benchmarks.trace import load_trace


def _scenario(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "m.yaml").write_text(
        "registers:\n  - key: power\n    name: Power\n    table: input\n    address: 0\n"
        "    data_type: int16\n    tolerance: 10\n"
    )
    (tmp_path / "t.csv").write_text(
        "timestamp,key,value\n0,power,0\n100,power,50\n200,power,55\n300,power,0\n# end 1000\n"
    )
    return load_trace(tmp_path / "t.csv", tmp_path / "m.yaml")


def test_time_out_of_tolerance_and_detection_delay(tmp_path: Path) -> None:
    """Reads at 0, 130 and 310 s: 30 + 10 s out of band, changes seen after 30 and 10 s."""
    scenario = _scenario(tmp_path)
    t0 = scenario.start
    record = RunRecord("scripted", reads=[([t0, t0 + 130, t0 + 310], [0.0, 50.0, 0.0])])
    m = compute(scenario, record)
    assert m.tot_per_register[0] == pytest.approx(100 * 40 / 1001)
    assert m.tot_pct == pytest.approx(100 * 40 / 1001)
    # changes beyond tolerance: 0 -> 50 at 100 s and 55 -> 0 at 300 s (55 is within 10 of 50)
    assert m.changes == 2
    assert m.delay_median == pytest.approx(20.0)
    assert m.delay_p95 == pytest.approx(29.0)
    assert m.stale_p95 == pytest.approx(28.5, abs=1.0)


def test_a_change_never_read_counts_until_the_end(tmp_path: Path) -> None:
    """Test that a change never read counts as late until the end of the run."""
    scenario = _scenario(tmp_path)
    record = RunRecord("slow", reads=[([scenario.start], [0.0])])
    m = compute(scenario, record)
    assert m.changes == 2
    assert m.delay_p95 > 800  # the 0 -> 50 change at 100 s is never shown


def test_band_exits_follow_the_reference_not_every_step() -> None:
    """Test that band exits follow the reference value, not every step."""
    values = np.array([0, 5, 9, 11, 12, 20, 22, np.nan, 40, 35], dtype=np.float64)
    assert band_exits(values, 10.0).tolist() == [3, 6, 8]  # refs 0, 11, 22, 40


def test_oracle_follows_the_truth(tmp_path: Path) -> None:
    """Test that the oracle follows the truth.

    It is never out of tolerance and sees every change at once; its rare requests
    keep their decimals.
    """
    scenario = _scenario(tmp_path)
    m = compute(scenario, run_oracle(scenario))
    assert m.tot_pct == 0.0 and m.delay_p95 == 0.0
    assert m.requests == 3  # start, 100 s, 300 s
    assert m.requests_per_hour == pytest.approx(3 / (1000 / 3600))


def test_lenient_oracle_stays_within_its_grace() -> None:
    """The lenient oracle leaves no value out of its band longer than its grace.

    Grace 0 is the batched oracle (never out of tolerance); a longer grace costs
    fewer requests and more time out of tolerance, and no stretch out of tolerance
    of any register lasts longer than the grace.
    """
    scenario = truncate(install200(hours=0.25), 900)
    batched = run_oracle(scenario, lookahead=30)
    same = run_oracle(scenario, lookahead=30, grace=0)
    assert (same.requests, same.bus_time) == (batched.requests, batched.bus_time)
    previous = compute(scenario, same)
    assert previous.tot_pct == 0.0
    for grace in (5, 20, 60):
        m = compute(scenario, run_oracle(scenario, lookahead=30, grace=grace))
        assert m.requests < previous.requests
        assert m.tot_pct > previous.tot_pct
        assert m.stale_p95 <= grace
        previous = m
    with pytest.raises(ValueError, match="grace"):
        run_oracle(scenario, grace=-1)


def test_equal_tot_interpolates_on_the_frontier() -> None:
    """A dominated point (more requests, less fresh) is off the frontier."""
    points = [
        {"interval": 5.0, "tot_pct": 1.0, "requests_per_hour": 4000.0},
        {"interval": 10.0, "tot_pct": 3.0, "requests_per_hour": 1000.0},
        {"interval": 20.0, "tot_pct": 3.5, "requests_per_hour": 1500.0},  # dominated
        {"interval": 40.0, "tot_pct": 5.0, "requests_per_hour": 250.0},
    ]
    assert [p["interval"] for p in frontier(points, "requests_per_hour")] == [
        5.0,
        10.0,
        40.0,
    ]
    eq = at_equal_tot(points, 2.0)
    assert eq["requests_per_hour"] == pytest.approx(2000.0)
    assert eq["bound"] is None
    assert at_equal_tot(points, 4.0)["requests_per_hour"] == pytest.approx(500.0)
    assert at_equal_tot(points, 0.5)["bound"] == "higher"
    assert at_equal_tot(points, 9.0)["bound"] == "lower"


def test_oracle_detects_every_change_of_the_truth_at_once() -> None:
    """Test that the oracle reads every change of the truth the second it happens.

    Even where a rider read left the shown value inside its band.
    """
    scenario = truncate(install200(hours=0.25), 900)
    m = compute(scenario, run_oracle(scenario, lookahead=30))
    assert m.tot_pct == 0.0
    assert m.changes > 100
    assert m.delay_p95 == 0.0


def test_final_stretch_counts_only_what_follows_the_cut(tmp_path: Path) -> None:
    """The final quarter (from 750 s of 1,000) counts requests, bus time and staleness.

    Requests issued at 0, 130 and 749.9 s fall before the cut, those at 750 and 850 s
    after it (750 s: at the cut counts). The shown 50 is wrong from 300 s until the
    read at 850 s: 100 of the window's 251 samples (750-1,000 s), against 580 of
    1,001 over the whole run.
    """
    scenario = _scenario(tmp_path)
    t0 = scenario.start
    record = RunRecord("scripted", reads=[([t0, t0 + 130, t0 + 850], [0.0, 50.0, 0.0])])
    for when, seconds in ((0, 0.1), (130, 0.2), (749.9, 0.3), (750, 0.4), (850, 0.5)):
        record.sent(t0 + when, seconds)
    record.requests, record.bus_time = 5, 1.5
    m = compute(scenario, record)
    assert final_start(scenario) == t0 + 750
    assert m.tot_pct == pytest.approx(100 * 580 / 1001)
    assert m.final_tot_pct == pytest.approx(100 * 100 / 251)
    hours = 250 / 3600
    assert m.requests_per_hour == pytest.approx(5 / (1000 / 3600))
    assert m.final_requests_per_hour == pytest.approx(2 / hours)
    assert m.final_bus_s_per_hour == pytest.approx(0.9 / hours)
    # another share moves the cut: the last half (from 500 s) has 3 requests
    half = compute(scenario, record, final_share=0.5)
    assert half.final_requests_per_hour == pytest.approx(3 / (500 / 3600))
    assert half.final_tot_pct == pytest.approx(100 * 350 / 501)


def test_a_record_without_its_request_log_has_no_final_figures(tmp_path: Path) -> None:
    """Requests the log does not account for leave the window unmeasured, not idle."""
    scenario = _scenario(tmp_path)
    record = RunRecord("unlogged", reads=[([scenario.start], [0.0])])
    record.requests, record.bus_time = 3, 0.3
    m = compute(scenario, record)
    assert m.final_requests_per_hour is None and m.final_bus_s_per_hour is None
    assert m.final_tot_pct is not None  # staleness needs only the reads


def test_every_policy_logs_each_request_it_issues(tmp_path: Path) -> None:
    """The engine's run logs every request, timeouts included; the oracle its blocks."""
    scenario = truncate(wrong_defaults(hours=0.5), 900)
    policy = next(p for p in standard(scenario.limits) if p.name == ADAPTIVE)
    assert policy.config is not None
    record = asyncio.run(run_engine(scenario, policy.config, policy.name))
    assert record.errors > 0  # reads over 20 registers time out, and are logged
    assert len(record.sent_at) == record.requests > 0
    assert sum(record.sent_bus) == pytest.approx(record.bus_time)
    assert list(record.sent_at) == sorted(record.sent_at)
    assert (
        scenario.start <= record.sent_at[0] < record.sent_at[-1] < scenario.start + 900
    )
    oracle = run_oracle(_scenario(tmp_path))
    t0 = _scenario(tmp_path).start
    assert list(oracle.sent_at) == [t0, t0 + 100, t0 + 300]
    assert sum(oracle.sent_bus) == pytest.approx(oracle.bus_time)


def test_oracle_keeps_the_maximum_interval(tmp_path: Path) -> None:
    """Test that the oracle reads a value at least once per maximum interval.

    Without a bound it reads the power at 0, 100 and 300 s only (its changes); held
    to 300 s it also reads the flat stretch at 600 and 900 s, still never out of
    tolerance; a bound below 1 s is refused.
    """
    scenario = _scenario(tmp_path)
    free = run_oracle(scenario)
    bound = run_oracle(scenario, max_interval=300)
    assert free.requests == 3
    assert bound.requests == 5
    t0 = scenario.start
    assert bound.reads[0][0] == [t0, t0 + 100, t0 + 300, t0 + 600, t0 + 900]
    assert compute(scenario, bound).tot_pct == 0.0
    # a read for a change restarts the count: at most 300 s between any two reads
    assert max(b - a for a, b in pairwise(bound.reads[0][0])) <= 300
    with pytest.raises(ValueError, match="max_interval"):
        run_oracle(scenario, max_interval=0.5)


def test_batched_oracle_at_night_costs_the_floor_of_the_maximum() -> None:
    """Test pv's flat night: the oracle held to 300 s reads each table every 300 s."""
    scenario = pv(hours=1.0)  # 06:00-07:00: before sunrise, all flat
    assert scenario.day is not None and not scenario.day[:3600].any()
    free = run_oracle(scenario, lookahead=30)
    bound = run_oracle(scenario, lookahead=30, max_interval=300)
    # the grid's voltage and frequency drift by night: a few reads for them
    assert free.requests <= 6
    # held to 300 s: both tables (input and holding) at least every 300 s, 24 reads
    # an hour, with the grid's reads among them (a read restarts the count)
    assert 24 <= bound.requests - free.requests <= 26
    for times, _ in bound.reads:
        assert max(b - a for a, b in pairwise([*times, scenario.start + 3600])) <= 300
    assert night_floor(scenario, 300) == 24.0
