"""Trace replay rules: last row wins, Unix milliseconds, gaps, the flat tail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from benchmarks import policies as pol
from benchmarks.metrics import compute
from benchmarks.simulate import run_engine
from benchmarks.trace import TraceError, load_trace

MAP = (
    "registers:\n"
    "  - key: power\n    name: Power\n    table: input\n    address: 0\n"
    "    data_type: int16\n    tolerance: 10\n"
    "  - key: running\n    name: Running\n    table: coil\n    address: 0\n"
)


@pytest.fixture
def map_path(tmp_path: Path) -> Path:
    """Provide a register map file for the trace."""
    path = tmp_path / "map.yaml"
    path.write_text(MAP)
    return path


def _trace(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text("timestamp,key,value\n" + text)
    return path


def test_same_timestamp_keeps_the_last_row(tmp_path: Path, map_path: Path) -> None:
    """Test that rows with the same timestamp keep the last one.

    A bool logged on then off in the same second replays as off; a value logged
    high then low keeps the low one.
    """
    path = _trace(
        tmp_path,
        "100,power,5\n100,running,false\n160,running,true\n160,running,false\n"
        "160,power,900\n160,power,20\n200,power,20\n",
    )
    scenario = load_trace(path, map_path)
    rows = [spec.key for spec in scenario.specs]
    assert scenario.truth[rows.index("running"), 60] == 0.0
    assert scenario.truth[rows.index("power"), 60] == 20.0


def test_unix_milliseconds_are_converted(tmp_path: Path, map_path: Path) -> None:
    """One hour logged in Unix milliseconds is one hour, not 1,000."""
    start = 1_700_000_000_000
    rows = [
        f"{start + s * 1000},power,{s // 60}\n{start + s * 1000},running,off\n"
        for s in range(0, 3601, 60)
    ]
    scenario = load_trace(_trace(tmp_path, "".join(rows)), map_path)
    assert scenario.duration == 3600
    assert scenario.truth[0, 120] == 2.0


def test_mixed_seconds_and_milliseconds_are_refused(
    tmp_path: Path, map_path: Path
) -> None:
    """A log that switches units names the line that switches."""
    path = _trace(
        tmp_path, "1700000000,power,1\n1700000000,running,on\n1700000060000,power,2\n"
    )
    with pytest.raises(TraceError, match=r"line 4.*milliseconds"):
        load_trace(path, map_path)


def test_gaps_are_missing_truth_or_held(tmp_path: Path, map_path: Path) -> None:
    """Two hours without any row: excluded from the errors (or held with hold=True)."""
    text = "".join(f"{t},power,{100 if t < 4000 else 500}\n" for t in range(0, 601, 10))
    text += "0,running,off\n"
    text += "".join(f"{t},power,500\n" for t in range(8200, 9001, 10))
    path = _trace(tmp_path, text)
    scenario = load_trace(path, map_path)
    assert np.isnan(scenario.truth[:, 700:8200]).all()
    assert not np.isnan(scenario.truth[:, :601]).any()
    assert not np.isnan(scenario.truth[:, 8200:]).any()
    held = load_trace(path, map_path, hold=True)
    assert not np.isnan(held.truth).any()
    # a slow poller misses the jump at 8200 s only for seconds, not for the whole gap
    policy = pol.fixed(300, scenario.limits)
    assert policy.config is not None
    record = asyncio.run(run_engine(scenario, policy.config, policy.name))
    gap_aware = compute(scenario, record)
    assert gap_aware.tot_per_register[0] is not None
    assert gap_aware.tot_per_register[0] < 100 * 300 / 1400


def test_change_only_log_keeps_its_flat_tail(tmp_path: Path, map_path: Path) -> None:
    """The replay runs to the stated end of a change-only log, values held."""
    path = _trace(tmp_path, "# end 7200\n0,power,5\n0,running,on\n600,power,80\n")
    scenario = load_trace(path, map_path)
    assert scenario.duration == 7200
    assert scenario.truth[0, 7200] == 80.0
    assert not np.isnan(scenario.truth).any()
    path.write_text("timestamp,key,value\n0,power,5\n0,running,on\n600,power,80\n")
    assert load_trace(path, map_path, end="3600").duration == 3600
    assert load_trace(path, map_path).duration == 600
