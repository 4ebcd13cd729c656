"""The parts of a PollEngine that the others work with, bundled."""

from __future__ import annotations

from dataclasses import dataclass

from .bus import Bus
from .config import EngineConfig
from .faults import BlockLimits, Holes
from .registry import Registry
from .schedule import EngineClock, Schedule
from .stats import StatsRecorder


@dataclass(frozen=True, slots=True)
class EngineCore:
    """Shared parts: settings, clocks, registers, schedule, learned faults, the bus."""

    config: EngineConfig
    clock: EngineClock
    registry: Registry
    stats: StatsRecorder
    schedule: Schedule
    holes: Holes
    limits: BlockLimits
    bus: Bus
