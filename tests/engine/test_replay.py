"""Replaying a recorded trace as a Modbus TCP device: values, timing, errors, CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import re
import signal
import sys
import time
from types import ModuleType

import pytest

from adaptive_modbus_engine.register_map import RegisterMapError
from adaptive_modbus_engine.registers import Table
from adaptive_modbus_engine.replay import VirtualClock
from adaptive_modbus_engine.simulator import trace as engine_trace
from adaptive_modbus_engine.simulator.replay import TraceReplay, load_replay
from adaptive_modbus_engine.simulator.server import SimulatorServer
from adaptive_modbus_engine.simulator.trace import TraceError
from adaptive_modbus_engine.transport import PymodbusTransport, TransportConfig

LOOPBACK = "127.0.0.1"
CLI_MODULE = "adaptive_modbus_engine.simulator"
T0 = 1_793_000_000.0  # trace time of the first row (Unix seconds)

MAP = """\
name: Recorded meter
registers:
  - key: power
    name: Power
    table: input
    address: 0
    data_type: int32
    unit: W
    tolerance: 10
  - key: voltage
    name: Voltage
    table: input
    address: 2
    data_type: uint16
    scale: 0.1
    unit: V
    tolerance: 1
  - key: running
    name: Running
    table: discrete
    address: 0
"""

TRACE = f"""\
timestamp,key,value
{T0:.0f},power,100
{T0:.0f},voltage,230.1
{T0:.0f},running,off
{T0 + 10:.0f},power,-250
{T0 + 20:.0f},voltage,231.5
{T0 + 20:.0f},running,true
{T0 + 30:.0f},power,4000
"""

socket_test = [
    pytest.mark.usefixtures("socket_enabled"),
    pytest.mark.allow_hosts([LOOPBACK]),
]


def write(
    tmp_path: Path, trace: str = TRACE, register_map: str = MAP
) -> tuple[Path, Path]:
    """Write a trace and a map; return their paths."""
    trace_path, map_path = tmp_path / "log.csv", tmp_path / "map.yaml"
    trace_path.write_text(trace, encoding="utf-8")
    map_path.write_text(register_map, encoding="utf-8")
    return trace_path, map_path


async def read_values(
    transport: PymodbusTransport, replay: TraceReplay
) -> dict[str, object]:
    """Read power, voltage and running over Modbus and decode them."""
    device = replay.device
    power, voltage, running = (device.spec(k) for k in ("power", "voltage", "running"))
    words = await transport.read(1, Table.INPUT, 0, 3)
    bits = await transport.read(1, Table.DISCRETE, 0, 1)
    return {
        "power": power.decode(words[0:2]),
        "voltage": voltage.decode(words[2:3]),
        "running": bool(bits[0]),
    }


@pytest.fixture
def bench_trace() -> ModuleType:
    """Return the benchmark's trace module (needs numpy: not in the engine-only venv)."""
    pytest.importorskip("numpy", reason="the benchmark's loader needs numpy")
    from benchmarks import trace  # noqa: PLC0415 - only where numpy is installed

    return trace


def test_the_replay_uses_the_benchmarks_loader(bench_trace: ModuleType) -> None:
    """One loader: the benchmark imports the engine's, it does not copy it."""
    assert bench_trace.read_trace is engine_trace.read_trace
    assert bench_trace.TraceError is engine_trace.TraceError
    assert bench_trace.TraceSamples is engine_trace.TraceSamples


def test_the_replay_serves_what_the_benchmark_replays(bench_trace: ModuleType) -> None:
    """Replaying the example trace at speed 1 gives the benchmark scenario's truth."""
    scenario = bench_trace.load_trace(
        bench_trace.EXAMPLE_TRACE, bench_trace.EXAMPLE_MAP
    )
    clock = VirtualClock(0.0)
    replay = load_replay(
        bench_trace.EXAMPLE_TRACE, bench_trace.EXAMPLE_MAP, clock=clock.now, start=0.0
    )
    assert replay.duration == scenario.duration
    for second in (0, 1, 9, 10, 11, 1_234, 5_000, 10_799):
        for row, spec in enumerate(scenario.specs):
            expected = float(scenario.truth[row][second])
            value = replay.device.truth(spec.key, float(second))
            assert float(value) == pytest.approx(expected, abs=1e-6), (spec.key, second)


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.allow_hosts([LOOPBACK])
async def test_replay_answers_the_trace_values_at_accelerated_times(
    tmp_path: Path,
) -> None:
    """At speed 10, trace second 10 is clock second 1; a pymodbus client reads it."""
    clock = VirtualClock(5_000.0)
    replay = load_replay(*write(tmp_path), speed=10, clock=clock.now, start=clock.now())
    async with SimulatorServer(replay.device) as server:
        transport = PymodbusTransport(
            TransportConfig(host=LOOPBACK, port=server.port, timeout=1.0, retries=0)
        )
        try:
            seen = {}
            for offset in (0.0, 0.99, 1.0, 1.5, 2.0, 3.0, 10.0):
                clock.advance_to(5_000.0 + offset)
                seen[offset] = await read_values(transport, replay)
        finally:
            await transport.close()
    assert seen[0.0] == {"power": 100, "voltage": 230.1, "running": False}
    assert seen[0.99] == seen[0.0]  # trace second 9.9: nothing new yet
    assert seen[1.0] == {"power": -250, "voltage": 230.1, "running": False}
    assert seen[1.5] == seen[1.0]
    assert seen[2.0] == {"power": -250, "voltage": 231.5, "running": True}
    assert seen[3.0] == {"power": 4000, "voltage": 231.5, "running": True}
    assert seen[10.0] == seen[3.0]  # after the end the last values hold
    assert replay.progress(5_001.5).fraction == pytest.approx(0.5)
    assert replay.progress(5_010.0).finished


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.allow_hosts([LOOPBACK])
async def test_replay_in_real_accelerated_time(tmp_path: Path) -> None:
    """On the real clock at speed 20, trace second 10 comes after 0.5 s, not before."""
    replay = load_replay(*write(tmp_path), speed=20)
    async with SimulatorServer(replay.device) as server:
        transport = PymodbusTransport(
            TransportConfig(host=LOOPBACK, port=server.port, timeout=1.0, retries=0)
        )
        try:
            replay.restart()
            started = time.time()
            first = await read_values(transport, replay)
            while (values := await read_values(transport, replay))["power"] == 100:
                assert time.time() - started < 5.0, "the replay did not move on"
                await asyncio.sleep(0.02)
            elapsed = time.time() - started
        finally:
            await transport.close()
    assert first["power"] == 100
    assert values["power"] == -250
    assert elapsed >= 0.5 - 0.01


@pytest.mark.parametrize(
    ("trace", "line", "field", "words"),
    [
        (
            "timestamp,key,value\n1793000000,power,1\nyesterday,power,2\n",
            3,
            "timestamp",
            "bad timestamp",
        ),
        ("1793000000,power,1\n1793000010,power,lots\n", 2, "value", "bad value"),
        ("1793000000,power,1\n1793000010,power\n", 2, None, "expected 3 fields"),
        ("1793000000,power,1\n1793000010, ,3\n", 2, "key", "empty key"),
        ("1793000000,power,1\n1793000010000,power,2\n", 2, "timestamp", "milliseconds"),
        ("1793000000,power,1\n1793000010,power,nan\n", 2, "value", "not finite"),
    ],
    ids=["timestamp", "value", "fields", "key", "units", "nan"],
)
def test_bad_trace_rows_name_line_and_field(
    tmp_path: Path, trace: str, line: int, field: str | None, words: str
) -> None:
    """A bad row is refused with its line and field."""
    with pytest.raises(TraceError) as caught:
        load_replay(*write(tmp_path, trace))
    assert caught.value.line == line
    assert caught.value.field == field
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"line {line}")


def test_a_value_that_does_not_fit_its_register_names_its_line(tmp_path: Path) -> None:
    """230.1 V fits a uint16 at scale 0.1; 7000 V does not: line 4, field value."""
    trace = (
        f"{T0:.0f},power,1\n{T0:.0f},voltage,230\n{T0:.0f},running,0\n"
        f"{T0 + 1:.0f},voltage,7000\n"
    )
    with pytest.raises(TraceError, match=r"^line 4, field value: voltage: 7000"):
        load_replay(*write(tmp_path, trace))


def test_keys_of_the_map_missing_from_the_trace_are_named(tmp_path: Path) -> None:
    """Every register of the map needs samples."""
    with pytest.raises(
        TraceError, match="without samples in the trace: voltage, running"
    ):
        load_replay(*write(tmp_path, f"{T0:.0f},power,1\n"))


def test_a_bad_map_names_its_line(tmp_path: Path) -> None:
    """The map is a register map: its errors carry field and line."""
    with pytest.raises(RegisterMapError) as caught:
        load_replay(*write(tmp_path, register_map=MAP.replace("int32", "int33")))
    assert caught.value.line == 7
    assert caught.value.field is not None and "data_type" in caught.value.field


def test_missing_files_and_bad_speed(tmp_path: Path) -> None:
    """Unreadable files and a speed of 0 are clear errors."""
    trace_path, map_path = write(tmp_path)
    with pytest.raises(TraceError, match="cannot read"):
        load_replay(tmp_path / "nope.csv", map_path)
    with pytest.raises(TraceError, match="cannot read"):
        load_replay(trace_path, tmp_path / "nope.yaml")
    with pytest.raises(TraceError, match="speed must be above 0"):
        load_replay(trace_path, map_path, speed=0)


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        "-m",
        CLI_MODULE,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.allow_hosts([LOOPBACK])
async def test_cli_replays_with_progress(tmp_path: Path) -> None:
    """``--replay --map --speed --port``: serves the trace, shows progress, stops on ^C."""
    trace_path, map_path = write(tmp_path)
    proc = await _cli(
        "--replay", str(trace_path), "--map", str(map_path),
        "--speed", "10", "--port", "0", "--progress", "0.5",
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        port = 0
        while not port:
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "simulator exited: " + "".join(lines)
            lines.append(line)
            if match := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
        transport = PymodbusTransport(
            TransportConfig(host=LOOPBACK, port=port, timeout=1.0)
        )
        try:
            words = await transport.read(1, Table.INPUT, 0, 3)
        finally:
            await transport.close()
        assert words[2] in (2301, 2315)  # 230.1 V, or 231.5 V once at trace second 20
        while not any("end of the trace" in line for line in lines):
            line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
            assert line, "simulator exited: " + "".join(lines)
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = "".join(lines)
    assert "30 s of trace at speed 10: 3 s to the end" in text
    assert re.search(r"replay\s+\d+\.\d % at 2026-", text)
    assert "100.0 %" in text


async def test_cli_refuses_a_bad_trace_with_line_and_field(tmp_path: Path) -> None:
    """A bad file: exit code 2 and the file, line and field on the console."""
    trace_path, map_path = write(tmp_path, "1793000000,power,1\nx,power,2\n")
    proc = await _cli("--replay", str(trace_path), "--map", str(map_path))
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert f"{trace_path}: line 2, field timestamp: bad timestamp 'x'" in out.decode()


async def test_cli_prints_the_fleet_timeline() -> None:
    """``--timeline``: the fleet's devices and phases as JSON."""
    proc = await _cli("--timeline")
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    described = json.loads(out)
    assert [d["name"] for d in described["devices"]] == [
        "Demo heat pump",
        "Demo grid meter",
        "Demo PV inverter",
    ]
    assert {e["phase"] for e in described["timeline"] if e["unit_id"] == 1} == {
        "stable",
        "escalation",
        "peak",
        "recovery",
    }
