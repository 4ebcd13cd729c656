"""The benchmark's checks that the optimization loop ends no worse than adaptive.

And clearly better where the defaults are wrong, over the final quarter of the run.
"""

from __future__ import annotations

from typing import Any

from benchmarks.report import (
    BETTER_SAVING,
    BETTER_TOT_SLACK,
    OPTIMIZER_SLACK,
    optimizer_better_check,
    optimizer_check,
    optimizer_table,
    scenario_checks,
)

ADAPTIVE = {
    "requests_per_hour": 100.0,
    "bus_s_per_hour": 10.0,
    "tot_pct": 1.0,
    "errors": 2,
    "final_requests_per_hour": 80.0,
    "final_bus_s_per_hour": 8.0,
    "final_tot_pct": 2.0,
}


def test_a_cheaper_loop_at_the_same_freshness_passes() -> None:
    """Fewer requests and bus time at the same time out of tolerance pass."""
    check = optimizer_check(
        "demo",
        ADAPTIVE,
        {**ADAPTIVE, "requests_per_hour": 80.0, "bus_s_per_hour": 8.0},
    )
    assert check["ok"]
    assert "WORSE" not in check["detail"]


def test_worse_freshness_beyond_the_slack_fails() -> None:
    """A loop that saves requests but leaves values out of tolerance longer fails."""
    tot = ADAPTIVE["tot_pct"] * (1 + OPTIMIZER_SLACK) * 1.1
    check = optimizer_check(
        "pv", ADAPTIVE, {**ADAPTIVE, "requests_per_hour": 90.0, "tot_pct": tot}
    )
    assert not check["ok"]
    assert "WORSE: % out of tolerance" in check["detail"]
    assert check["name"] == "pv: adaptive+optimizer no worse than adaptive (within 5%)"


def test_within_the_slack_counts_as_no_worse() -> None:
    """The medians of 3 phases scatter by a few per cent: that is not worse."""
    check = optimizer_check(
        "trace",
        ADAPTIVE,
        {**ADAPTIVE, "bus_s_per_hour": ADAPTIVE["bus_s_per_hour"] * 1.04},
    )
    assert check["ok"]


def _final(**figures: float | None) -> dict[str, Any]:
    """Return the optimizer's figures: adaptive's whole run, these in the last quarter."""
    return {**ADAPTIVE, **{f"final_{key}": value for key, value in figures.items()}}


def test_clearly_better_on_requests_or_on_bus_time_passes() -> None:
    """20 % fewer requests, or 20 % less bus time, at equal freshness pass."""
    for better in (
        _final(requests_per_hour=80.0 * (1 - BETTER_SAVING)),
        _final(bus_s_per_hour=8.0 * (1 - BETTER_SAVING) - 0.01),
    ):
        check = optimizer_better_check("wrongdefaults", ADAPTIVE, better, since=3.0)
        assert check["ok"], check["detail"]
        assert check["name"].startswith(
            "wrongdefaults: adaptive+optimizer clearly better where the defaults are wrong"
        )
        assert check["detail"].startswith("final quarter (from 3 h): req/h ")


def test_a_saving_short_of_the_mark_fails() -> None:
    """19 % fewer requests and bus time is not clearly better; the figures are printed."""
    check = optimizer_better_check(
        "wrongdefaults",
        ADAPTIVE,
        _final(requests_per_hour=80.0 * 0.81, bus_s_per_hour=8.0 * 0.81),
    )
    assert not check["ok"]
    assert "req/h 64.8 vs 80.0 (-19.0 %)" in check["detail"]
    assert "bus 6.48 vs 8.00 s/h (-19.0 %)" in check["detail"]
    assert "NOT 20% CHEAPER" in check["detail"]


def test_cheaper_but_less_fresh_beyond_the_slack_fails() -> None:
    """Half the requests at 6 % more time out of tolerance (allowed 5 %) fail."""
    tot = 2.0 * (1 + BETTER_TOT_SLACK) + 0.02
    check = optimizer_better_check(
        "wrongdefaults", ADAPTIVE, _final(requests_per_hour=40.0, tot_pct=tot)
    )
    assert not check["ok"]
    assert "LESS FRESH" in check["detail"] and "NOT" not in check["detail"]
    within = optimizer_better_check(
        "wrongdefaults", ADAPTIVE, _final(requests_per_hour=40.0, tot_pct=2.0 * 1.04)
    )
    assert within["ok"]


def test_the_whole_run_does_not_stand_in_for_the_final_quarter() -> None:
    """Better over the whole run but not at the end fails; unmeasured fails too."""
    better_whole = {
        **_final(),
        "requests_per_hour": 50.0,
        "bus_s_per_hour": 5.0,
    }
    assert not optimizer_better_check("wrongdefaults", ADAPTIVE, better_whole)["ok"]
    unmeasured = optimizer_better_check("wrongdefaults", ADAPTIVE, _final(tot_pct=None))
    assert not unmeasured["ok"]
    assert unmeasured["detail"] == "not measured: final_tot_pct missing"


def test_the_better_check_is_gated_on_wrongdefaults_only() -> None:
    """Every scenario gets 'no worse'; only wrongdefaults 'clearly better'."""
    optimized = _final(requests_per_hour=40.0)
    result = {
        "final_from_hours": 3.0,
        "policies": {"adaptive": ADAPTIVE, "adaptive+optimizer": optimized},
    }
    names = [c["name"] for c in scenario_checks("wrongdefaults", result)]
    assert len(names) == 2
    assert "no worse" in names[0] and "clearly better" in names[1]
    demo = [c["name"] for c in scenario_checks("demo", result)]
    assert len(demo) == 1 and "no worse" in demo[0]


def test_the_optimizer_table_shows_the_final_quarter_against_adaptive() -> None:
    """Whole-run columns stay; the last quarter's follow with the change vs adaptive."""
    results = {
        "meta": {"command": "scripts/bench", "seed": 42, "phases": 3},
        "scenarios": {
            "wrongdefaults": {
                "hours": 4.0,
                "final_from_hours": 3.0,
                "policies": {
                    "adaptive": ADAPTIVE,
                    "adaptive+optimizer": {
                        **_final(requests_per_hour=60.0, bus_s_per_hour=6.0),
                        "loop": [],
                    },
                },
            }
        },
    }
    rows = optimizer_table(results).splitlines()
    assert "| last quarter: requests/h | last quarter: bus s/h |" in rows[2]
    assert rows[4] == (
        "| wrongdefaults (4 h; last quarter from 3 h) | adaptive | 100 | 10.00 | 1.00 "
        "| 80.0 | 8.00 | 2.00 | 2 | |"
    )
    assert rows[5].startswith(
        "| | adaptive+optimizer | 100 | 10.00 | 1.00 | 60.0 (-25 %) | 6.00 (-25 %) "
        "| 2.00 | 2 |"
    )
