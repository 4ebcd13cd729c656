"""The benchmark's check that the optimization loop ends no worse than adaptive."""

from __future__ import annotations

from benchmarks.report import OPTIMIZER_SLACK, optimizer_check

ADAPTIVE = {
    "requests_per_hour": 100.0,
    "bus_s_per_hour": 10.0,
    "tot_pct": 1.0,
    "errors": 2,
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
