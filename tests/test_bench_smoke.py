"""Smoke test of the benchmark harness: minutes of virtual time, checks correctness only.

It asserts that the harness measures what it says (bus timing, accounting, ground
truth, the oracle's guarantees, trace replay, report plumbing), never how fast the
machine is.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.scheduler import EngineConfig
from benchmarks import policies as pol
from benchmarks.bus import BusModel
from benchmarks.metrics import compute
from benchmarks.oracle import run_oracle
from benchmarks.report import equal_freshness
from benchmarks.run import main, truncate
from benchmarks.scenarios import demo, install200, stress2000
from benchmarks.simulate import run_engine
from benchmarks.trace import EXAMPLE_MAP, EXAMPLE_TRACE, TraceError, load_trace


def _config(policy: pol.Policy) -> EngineConfig:
    assert policy.config is not None
    return policy.config


def test_bus_timing_follows_the_modbus_frames() -> None:
    """RTU: 11 bits per character, 3.5-character silences, FC 3 frames of 8 and 5+2n bytes."""
    bus = BusModel.rtu(9600)
    char = 11 / 9600
    expected = (3.5 + 8 + 3.5 + 5 + 2 * 10) * char
    assert bus.read_time(Table.HOLDING, 10) == pytest.approx(expected)
    assert BusModel.rtu(19200).read_time(Table.HOLDING, 10) == pytest.approx(
        expected / 2
    )
    assert bus.read_time(Table.COIL, 16) == pytest.approx(
        (3.5 + 8 + 3.5 + 5 + 2) * char
    )
    tcp = BusModel.parse("tcp10ms")
    assert 0.010 < tcp.read_time(Table.INPUT, 125) < 0.0105
    assert BusModel.parse("rtu19200").baudrate == 19200


def test_engine_run_accounts_bus_time_and_tracks_truth() -> None:
    """Fixed-per-entity on the demo: one request per entity per 15 s, bus time adds up.

    The alarms every 10 s: their map's ``max_interval`` holds for fixed polling too.
    """
    scenario = truncate(demo(hours=0.25), 300)
    record = asyncio.run(
        run_engine(scenario, _config(pol.fixed(15, scenario.limits)), "fixed")
    )
    alarms = sum(1 for spec in scenario.specs if spec.max_interval == 10)
    assert alarms == 5
    expected = (len(scenario.specs) - alarms) * 300 / 15 + alarms * 300 / 10
    assert record.requests == pytest.approx(expected, rel=0.1)
    per_request = record.bus_time / record.requests
    assert BusModel.rtu(9600).read_time(Table.INPUT, 1) <= per_request < 0.05
    metrics = compute(scenario, record)
    assert metrics.bus_pct == pytest.approx(100 * record.bus_time / 300)
    assert 0 <= metrics.err_mean <= metrics.err_p95 + 1e-9
    # every read shows the true value at (about) the time it was taken
    row = [spec.key for spec in scenario.specs].index("supply_temperature")
    times, values = record.reads[row]
    for when, value in zip(times, values, strict=True):
        second = int(when - scenario.start)
        assert (
            min(abs(value - scenario.truth[row, s]) for s in (second - 1, second))
            <= 0.2
        )


def test_oracle_never_leaves_the_band_and_adaptive_reads_less_than_fixed() -> None:
    """The oracle's shown values stay within tolerance; the policies are ordered sanely."""
    scenario = truncate(install200(hours=0.25), 600)
    oracle = compute(scenario, run_oracle(scenario))
    assert oracle.out_of_band_pct == 0.0
    assert oracle.misses == 0
    fixed = compute(
        scenario,
        asyncio.run(
            run_engine(scenario, _config(pol.fixed(15, scenario.limits)), "fixed")
        ),
    )
    static = compute(
        scenario,
        asyncio.run(
            run_engine(scenario, _config(pol.static(15, scenario.limits)), "static")
        ),
    )
    assert static.requests < fixed.requests
    assert oracle.requests < fixed.requests


def test_stress_map_fills_16_units_and_the_batched_oracle_never_misses() -> None:
    """The 2,000-register map: 16 units of <= 125 registers; oracles stay in band."""
    scenario = stress2000(hours=0.05)
    assert scenario.units == 16
    assert 1900 <= scenario.registers <= 2000
    batched = compute(
        scenario, run_oracle(scenario, lookahead=30, name="oracle-batched")
    )
    assert batched.misses == 0 and batched.out_of_band_pct == 0.0


def test_equal_freshness_interpolates_between_swept_intervals() -> None:
    """Interpolation in log(interval) and log(requests) between bracketing points."""
    points = [
        {"interval": 10.0, "err_p95": 0.2, "requests_per_hour": 3600.0},
        {"interval": 40.0, "err_p95": 0.6, "requests_per_hour": 900.0},
    ]
    eq = equal_freshness(points, 0.4)
    assert eq["interval"] == pytest.approx(20.0)
    assert eq["requests_per_hour"] == pytest.approx(1800.0)
    assert equal_freshness(points, 0.1)["bound"]
    assert equal_freshness(points, 0.9)["interval"] == 40.0


def test_trace_replay_serves_the_last_value_at_or_before_t(tmp_path: Path) -> None:
    """Long-format CSV plus a YAML map becomes a scenario; bad input names the line."""
    scenario = load_trace(EXAMPLE_TRACE, EXAMPLE_MAP)
    assert len(scenario.specs) == 7
    assert not np.isnan(scenario.truth).any()
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("timestamp,key,value\n100,power,5\n130,power,80\n")
    map_path = tmp_path / "m.yaml"
    map_path.write_text(
        "registers:\n  - key: power\n    name: Power\n    table: input\n    address: 0\n"
        "    data_type: int16\n    tolerance: 10\n"
    )
    small = load_trace(csv_path, map_path)
    assert small.truth[0, 29] == 5 and small.truth[0, 30] == 80
    csv_path.write_text("timestamp,key,value\nyesterday,power,5\n")
    with pytest.raises(TraceError, match="line 2"):
        load_trace(csv_path, map_path)


def test_quick_run_writes_table_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI end to end on a few minutes of virtual time."""
    code = main(
        [
            "--quick",
            "--scenarios",
            "demo,trace",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--readme",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| adaptive |" in out and "| oracle |" in out
    data = json.loads((tmp_path / "results.json").read_text())
    demo_result = data["scenarios"]["demo"]
    for name in (pol.ADAPTIVE, pol.ORACLE, f"{pol.FIXED}@15s", f"{pol.STATIC}@15s"):
        assert "requests_per_hour" in demo_result["policies"][name]
    assert {c["name"].split(":")[0] for c in data["checks"]} >= {
        "demo",
        "trace",
        "overhead",
    }
    assert data["overhead"]["sizes"][0]["memory_per_register_bytes"] > 0
    assert 0 < data["overhead"]["sizes"][0]["state_bytes_per_register"] <= 1024
    assert (tmp_path / "frontier_requests.png").stat().st_size > 10_000
    assert (tmp_path / "frontier_bus.png").stat().st_size > 10_000
    assert (tmp_path / "demo_timeline.png").exists()
    assert (tmp_path / "README-table.md").exists()
