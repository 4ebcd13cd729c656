"""Streaming replay of recorded logs: chunk by chunk, same figures, bounded memory."""

from __future__ import annotations

import asyncio
import csv
import math
from pathlib import Path
import tracemalloc
from typing import Any

import numpy as np
import pytest

from benchmarks import policies as pol
from benchmarks.metrics import DEFAULT_CHUNK, Histogram, compute, stream_chunk
from benchmarks.oracle import run_oracle
from benchmarks.scenarios import Scenario, wrong_defaults
from benchmarks.simulate import RunRecord, run_engine
from benchmarks.trace import TraceTruth, load_trace

MAP = (
    "registers:\n"
    "  - key: power\n    name: Power\n    table: input\n    address: 0\n"
    "    data_type: int16\n    tolerance: 10\n"
    "  - key: temperature\n    name: Temperature\n    table: input\n    address: 1\n"
    "    data_type: int16\n    scale: 0.1\n    tolerance: 0.5\n"
    "  - key: running\n    name: Running\n    table: coil\n    address: 0\n"
)


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Assert two metrics dicts are equal, every figure to the bit (NaN equal NaN)."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        if key == "cpu_seconds":
            continue
        assert value == b[key] or (
            isinstance(value, float) and math.isnan(value) and math.isnan(b[key])
        ), key


@pytest.fixture
def awkward_trace(tmp_path: Path) -> tuple[Path, Path]:
    """Write a log with a gap, same-second rows and changes at 600 s chunk borders."""
    (tmp_path / "map.yaml").write_text(MAP)
    rng = np.random.default_rng(5)
    rows = ["timestamp,key,value"]
    power = 100
    for t in range(0, 4 * 3600, 10):
        if 7200 <= t < 7200 + 2 * 3600 - 600:  # all keys silent: a gap
            continue
        if t % 600 == 0 or rng.random() < 0.15:  # on every 600 s border too
            power = int(rng.integers(0, 3000))
            rows.append(f"{t},power,{power}")
            rows.append(f"{t},power,{power + 50}")  # same second: the last row wins
        if t % 300 == 0:
            rows.append(f"{t},temperature,{20 + rng.normal():.1f}")
            rows.append(f"{t},running,{'on' if power > 1500 else 'off'}")
            rows.append(f"{t},running,{'off' if power > 2500 else 'on'}")
    rows.append("# end 18000")
    (tmp_path / "trace.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "trace.csv", tmp_path / "map.yaml"


def test_trace_truth_windows_equal_the_whole_matrix(
    awkward_trace: tuple[Path, Path],
) -> None:
    """Any window of the truth, read forward or back, equals the same slice of the whole."""
    scenario = load_trace(*awkward_trace)
    truth = scenario.truth
    assert isinstance(truth, TraceTruth)
    whole = np.asarray(truth)
    assert whole.shape == truth.shape == (3, scenario.duration + 1)
    assert np.isnan(whole[:, 7300:13000]).all()  # the gap
    for lo, hi in ((0, 600), (599, 601), (3550, 7250), (14000, 18001), (10, 20)):
        np.testing.assert_array_equal(truth[:, lo:hi], whole[:, lo:hi])
    assert truth[1, 600] == whole[1, 600]
    np.testing.assert_array_equal(truth[:, -1], whole[:, -1])
    np.testing.assert_array_equal(truth[[0, 2], 40:50], whole[[0, 2], 40:50])


@pytest.mark.parametrize("chunk", [600, 457, 7])
def test_streamed_run_equals_the_one_chunk_replay(
    awkward_trace: tuple[Path, Path], chunk: int
) -> None:
    """A run streamed as it goes gives the figures of the whole record taken at once.

    Chunks of 600 s put changes right on their borders; 457 s cuts out-of-band
    stretches and unread changes in two; 7 s makes thousands of chunks.
    """
    path, map_path = awkward_trace
    scenario = load_trace(path, map_path, incidents=(1800.0, 14000.0))
    n = scenario.duration + 1
    adaptive = next(p for p in pol.standard(scenario.limits) if p.name == pol.ADAPTIVE)
    for policy in (pol.fixed(120, scenario.limits), adaptive):
        assert policy.config is not None
        whole = asyncio.run(
            run_engine(scenario, policy.config, policy.name, phase=37.5)
        )
        streamed = asyncio.run(
            run_engine(scenario, policy.config, policy.name, phase=37.5, chunk=chunk)
        )
        assert streamed.stream is not None
        # the streamed record holds at most what is left of its last chunk
        assert sum(len(times) for times, _ in streamed.reads) < sum(
            len(times) for times, _ in whole.reads
        )
        one_chunk = compute(scenario, whole, chunk=n).as_dict()
        _same(compute(scenario, streamed).as_dict(), one_chunk)
        # the same whole record taken in chunks after the run: the same figures too
        _same(compute(scenario, whole, chunk=chunk).as_dict(), one_chunk)
        assert one_chunk["changes"] > 0
        assert one_chunk["misses"] > 0
        assert one_chunk["tot_per_register"][0] > 0
        assert one_chunk["final_requests_per_hour"] is not None
        assert all(d is not None for d in one_chunk["incident_delays"])


def test_oracle_and_generated_scenarios_take_chunks_too(
    awkward_trace: tuple[Path, Path],
) -> None:
    """The oracle's record and a generated scenario: chunked figures equal one chunk."""
    scenario = load_trace(*awkward_trace)
    record = run_oracle(scenario, lookahead=pol.ORACLE_LOOKAHEAD, max_interval=300)
    _same(
        compute(scenario, record, chunk=500).as_dict(),
        compute(scenario, record, chunk=scenario.duration + 1).as_dict(),
    )
    generated = wrong_defaults(hours=0.25)
    policy = pol.fixed(30, generated.limits)
    assert policy.config is not None
    run = asyncio.run(run_engine(generated, policy.config, policy.name))
    _same(
        compute(generated, run, chunk=200).as_dict(),
        compute(generated, run, chunk=generated.duration + 1).as_dict(),
    )


def test_the_cli_streams_replayed_logs_only(awkward_trace: tuple[Path, Path]) -> None:
    """scripts/bench streams a trace's runs; a generated matrix is kept whole."""
    assert stream_chunk(load_trace(*awkward_trace)) == DEFAULT_CHUNK
    assert stream_chunk(wrong_defaults(hours=0.1)) is None


def test_histogram_quantiles_are_numpys() -> None:
    """Quantiles from distinct values and counts equal numpy's over the samples."""
    rng = np.random.default_rng(1)
    for size in (1, 2, 3, 20, 1001, 5000):
        samples = np.round(rng.exponential(3.0, size), 1)
        hist = Histogram()
        hist.BUFFER = 64  # merged every 64 samples: many merges
        for part in np.array_split(samples, 7):
            hist.add(part)
        assert hist.size == size
        assert len(hist.values) == len(np.unique(samples))
        for q in (0, 5, 50, 95, 99.9, 100):
            assert hist.percentile(q) == np.percentile(samples, q), (size, q)
        assert hist.mean() == pytest.approx(samples.mean(), rel=1e-12)


def _long_log(path: Path, days: int, seed: int = 3) -> None:
    """Write a change-only log of three registers over ``days`` (row by row)."""
    rng = np.random.default_rng(seed)
    seconds = days * 86_400
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "key", "value"])
        writer.writerow([0, "temperature", 20.0])
        writer.writerow([0, "running", "off"])
        t = 0
        while t < seconds:
            writer.writerow([t, "power", int(rng.integers(0, 3000))])
            if rng.random() < 0.3:
                writer.writerow([t, "temperature", round(20 + rng.normal(), 1)])
            if rng.random() < 0.1:
                writer.writerow([t, "running", "on" if rng.random() < 0.5 else "off"])
            t += int(rng.integers(60, 1200))
        handle.write(f"# end {seconds}\n")


def _peak(fn: Any) -> tuple[Any, int]:
    """Return what ``fn`` returns and the most memory it held at once (bytes)."""
    tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()


def test_a_long_log_replays_in_bounded_memory(tmp_path: Path) -> None:
    """60 days of three registers: load, replay and metrics under one float per second.

    A whole-array replay holds the truth matrix (8 bytes per register and second,
    124 MB here) and the device's per-second arrays besides; the streaming replay
    stays under a tenth of the matrix alone.
    """
    (tmp_path / "map.yaml").write_text(MAP)
    _long_log(tmp_path / "long.csv", days=60)

    def replay() -> tuple[Scenario, RunRecord, dict[str, Any]]:
        scenario = load_trace(tmp_path / "long.csv", tmp_path / "map.yaml")
        policy = pol.fixed(300, scenario.limits)
        assert policy.config is not None
        record = asyncio.run(
            run_engine(
                scenario,
                policy.config,
                policy.name,
                phase=11.0,
                chunk=stream_chunk(scenario),
            )
        )
        return scenario, record, compute(scenario, record).as_dict()

    (scenario, record, metrics), peak = _peak(replay)
    matrix = 8 * len(scenario.specs) * (scenario.duration + 1)
    assert scenario.duration == 60 * 86_400
    assert peak < matrix / 10, f"peak {peak / 1e6:.1f} MB, matrix {matrix / 1e6:.1f} MB"
    assert record.requests > 60 * 288  # every register read every 300 s
    assert metrics["changes"] > 1000
    assert 0 < metrics["tot_pct"] < 100
