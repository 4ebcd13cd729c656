"""EngineConfig: how a PollEngine polls (intervals, merging, patterns, limits, cost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
import math

from .errors import EngineUsageError
from .planner import PROTOCOL_MAX_REGISTERS, CostModel, DeviceLimits


@dataclass(frozen=True)
class EngineConfig:
    """How the engine polls. Per-register tolerance and interval overrides win."""

    min_interval: float = 5.0
    max_interval: float = 300.0
    # used for numeric registers whose spec has tolerance 0
    default_tolerance: float = 0.0
    adaptive: bool = True
    fixed_interval: float = 30.0  # adaptive off: every register every fixed_interval
    merge_reads: bool = True  # False: one request per register (HA core's way)
    piggyback: bool = True  # registers inside a block's span are refreshed for free
    patterns: bool = True  # time-of-week activity profiles scale intervals
    # local time of the patterns' hours (e.g. HA's zone); None: UTC
    tz: tzinfo | None = None
    limits: Mapping[int, DeviceLimits] = field(default_factory=dict)  # per unit id
    # per unit id, 1-125
    unit_max_registers: Mapping[int, int] = field(default_factory=dict)
    # None: fitted to the measured latency of this connection
    cost: CostModel | None = None
    # demand-driven polling: while a unit is viewed, its registers' upper interval
    # bound is max_interval times this factor (1: no change)
    viewed_factor: float = 0.25
    # free riders: a read grows over neighbours whose staleness is worth this many
    # requests (0: off); None: the engine's default (``planning.RIDER_VALUE``)
    rider_value: float | None = None
    # correlated registers: when a register moves beyond its resolution, the
    # partners learned to move with it are read at once (see correlation.py)
    correlated_reads: bool = True
    # per-unit cadence: a unit's table is read when its registers' summed urgency
    # says so, possibly before its first register is due (see cadence.py); off by
    # default: measured in the README (Engine ideas of part 2), it pays on some
    # scenarios and costs on others
    unit_cadence: bool = False
    # tick lock: a register crossing its tolerance at a steady rate (a counter, a
    # trend) is read just after its next expected crossing (see ticks.py)
    tick_lock: bool = True

    def __post_init__(self) -> None:
        """Refuse intervals and unit limits outside their ranges."""
        if not 0 < self.min_interval <= self.max_interval:
            raise EngineUsageError("need 0 < min_interval <= max_interval")
        if self.fixed_interval <= 0:
            raise EngineUsageError("fixed_interval must be positive")
        if not 0 < self.viewed_factor <= 1:
            raise EngineUsageError(
                f"viewed_factor must be in (0, 1], got {self.viewed_factor}"
            )
        if self.rider_value is not None and not 0 <= self.rider_value < math.inf:
            raise EngineUsageError(
                f"rider_value must be 0 or more, got {self.rider_value}"
            )
        for unit, count in self.unit_max_registers.items():
            if not 1 <= count <= PROTOCOL_MAX_REGISTERS:
                raise EngineUsageError(
                    f"unit {unit}: max registers per read must be 1-{PROTOCOL_MAX_REGISTERS}, "
                    f"got {count}"
                )


@dataclass
class Tuning:
    """Parameters changed at run time (by the optimization loop or a user), not learned.

    Empty means the configuration's and the models' defaults. Registers and units
    named here that the engine does not know are ignored. ``PollEngine`` applies
    changes through its parameter API (``set_interval_bounds``, ``set_step_budget``,
    ``set_noise_margin``, ``set_unit_max_registers``, ``set_unit_max_gap``,
    ``set_cost_model``, ``set_pattern_params``) and exports them with ``tuning()``.
    """

    # per register uid: (min_interval, max_interval) in seconds
    interval_bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    # per register uid: share of time a step may leave a value stale (0 < b <= 0.5)
    step_budget: dict[str, float] = field(default_factory=dict)
    # per register uid: multiples of noise² taken off each change for the rate
    noise_margin: dict[str, float] = field(default_factory=dict)
    # per unit id: largest read in registers (below the configured limit)
    unit_max_registers: dict[int, int] = field(default_factory=dict)
    # per unit id: largest gap of unwanted registers read through
    unit_max_gap: dict[int, int] = field(default_factory=dict)
    cost: CostModel | None = None  # None: configured, else fitted
    pattern_strength: float = 1.0  # exponent on the time-of-week factor (0: off)
    pattern_lead: float | None = None  # seconds the profile looks ahead; None: default
