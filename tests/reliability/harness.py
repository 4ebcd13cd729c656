"""Helpers of the reliability suite.

Virtual clocks, a driver that wakes the engine like the coordinator does, a sink for
the measured numbers (``artifacts/measured.json``, read into the README table), and
the HA test helpers of tests/ha/conftest.py.

A module of its own (not conftest) so test modules import it by a unique name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import importlib.util
import json
import math
from pathlib import Path
import sys
from typing import Any

from custom_components.adaptive_modbus.engine.replay import VirtualClock
from custom_components.adaptive_modbus.engine.scheduler import (
    UNIT_PROBE_FIRST,
    UNIT_PROBE_MAX,
    CycleResult,
    PollEngine,
)
from custom_components.adaptive_modbus.engine.simulator.server import SimulatorServer

from .proxy import Proxy

ARTIFACTS = Path(__file__).parent / "artifacts"
MEASURED = ARTIFACTS / "measured.json"
START = 1_000_000.0  # virtual engine time at which a rig's clock starts
MIN_DELAY = 0.1  # the coordinator never wakes sooner than this after a cycle


def _load_ha_conftest() -> Any:
    """tests/ha/conftest.py as a module (its fixtures are re-exported below)."""
    path = Path(__file__).parents[1] / "ha" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_reliability_ha_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ha_conftest = _load_ha_conftest()
VirtualTime = ha_conftest.VirtualTime
FAST_OPTIONS = ha_conftest.FAST_OPTIONS
tcp_entry_factory = ha_conftest.tcp_entry_factory


async def drive(
    engine: PollEngine,
    clock: VirtualClock,
    until: float,
    *,
    max_cycles: int = 5_000,
    on_cycle: Callable[[CycleResult], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[CycleResult]:
    """Wake the engine at its due times until ``until``, like the coordinator does.

    Never sooner than MIN_DELAY after the previous cycle; stop after ``max_cycles``
    or once ``stop()`` is true (checked between cycles).
    """
    results: list[CycleResult] = []
    earliest = clock.now()
    while len(results) < max_cycles and not (stop is not None and stop()):
        due = engine.next_due()
        if not math.isfinite(due):
            break
        wake = max(due, earliest)
        if wake > until:
            break
        clock.advance_to(wake)
        result = await engine.poll_due()
        results.append(result)
        if on_cycle is not None:
            on_cycle(result)
        earliest = clock.now() + MIN_DELAY
    clock.advance_to(until)
    return results


def unit_probes_within(span: float) -> int:
    """Count the probes a down unit gets within ``span`` s of going silent.

    The documented schedule: UNIT_PROBE_FIRST s after the cycle that found it
    silent, then at doubling intervals up to UNIT_PROBE_MAX s (5, 15, 35, 65,
    95, ... s).
    """
    probes, step, t = 0, UNIT_PROBE_FIRST, UNIT_PROBE_FIRST
    while t <= span:
        probes += 1
        step = min(step * 2, UNIT_PROBE_MAX)
        t += step
    return probes


def record(section: str, values: dict[str, Any]) -> None:
    """Merge measured numbers into artifacts/measured.json (for the README table)."""
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        data = json.loads(MEASURED.read_text())
    except (OSError, ValueError):
        data = {}
    data[section] = values
    MEASURED.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


ProxiedFactory = Callable[..., Awaitable[tuple[SimulatorServer, Proxy]]]
