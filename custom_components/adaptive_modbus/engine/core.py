"""The parts of a PollEngine that the others work with, bundled."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .bus import Bus
from .config import EngineConfig, Tuning
from .faults import BlockLimits, Holes
from .registers import Value
from .registry import Registry
from .schedule import EngineClock, Schedule
from .stats import StatsRecorder

ReadListener = Callable[[str, float, Value | None, float | None], None]


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
    # parameters changed at run time (optimizer, user)
    tuning: Tuning = field(default_factory=Tuning)
    # called with (uid, engine time, value, previous read time) for every register read
    read_listeners: list[ReadListener] = field(default_factory=list)
