"""The polling policies compared, all on the same scenario, seed and bus.

* ``fixed-per-entity``: HA core's default: every entity its own request at its scan
  interval (15 s). Engine config: ``adaptive=False, merge_reads=False, piggyback=False``.
* ``static-blocks``: contiguous block reads of everything on a fixed interval, like
  Telegraf's request optimisation. Engine config: ``adaptive=False, merge_reads=True``;
  every register is due at once, so the engine's optimal planner makes the blocks,
  which is at least as good as Telegraf's best static mode (``max_insert``).
* ``adaptive`` / ``adaptive-no-patterns``: the engine's defaults, with and without
  time-of-week activity profiles.
* ``adaptive+optimizer``: the engine's defaults with the optimization loop running
  beside it in virtual time (quick cycles every 15 min, the daily full cycle, each
  change predicted by shadow replay, measured and kept or rolled back); proposals
  that need a user's approval (tolerance raises) stay unapproved.
* ``adaptive+optimizer+approve`` (only when named with ``--policies``): the same,
  with a simulated user who approves every proposal that needs approval as soon
  as it is made (each approval audited as that user's): what the loop buys when
  its tolerance raises are accepted.
* ``oracle`` / ``oracle-batched``: see :mod:`benchmarks.oracle` (not engine
  configurations); the batched one also reads, with a unit's table, what will leave
  its band within the next 30 s.
* ``expert-static``: per-register fixed intervals picked with hindsight, read in the
  planner's optimal blocks (:mod:`benchmarks.expert`).
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass

from adaptive_modbus_engine.planner import DeviceLimits
from adaptive_modbus_engine.scheduler import EngineConfig

FIXED = "fixed-per-entity"
STATIC = "static-blocks"
ADAPTIVE = "adaptive"
ADAPTIVE_NO_PATTERNS = "adaptive-no-patterns"
ADAPTIVE_OPTIMIZER = "adaptive+optimizer"
ADAPTIVE_OPTIMIZER_APPROVE = "adaptive+optimizer+approve"
ORACLE = "oracle"
ORACLE_BATCHED = "oracle-batched"
EXPERT = "expert-static"  # see benchmarks.expert (not an engine configuration)
ORACLE_LOOKAHEAD = 30  # s: the batched oracle reads what leaves its band within this
#: the lenient oracle (knows the future, batches, may stay out of its band this many
#: seconds), swept: the clairvoyant frontier that "at equal freshness" is judged against
ORACLE_LENIENT = "oracle-lenient"
ORACLE_GRACES = (2, 5, 10, 20, 40, 80, 160, 320)
DEFAULT_INTERVAL = 15.0  # HA core's default scan interval


@dataclass(frozen=True)
class Policy:
    """A named engine configuration (``config`` None: the oracle)."""

    name: str
    family: str
    interval: float | None
    config: EngineConfig | None
    optimizer: bool = False  # run the optimization loop beside the engine
    approve: bool = False  # ... and approve every proposal that needs approval


def fixed(interval: float, limits: Mapping[int, DeviceLimits]) -> Policy:
    """HA core style: one request per entity every ``interval`` seconds."""
    config = EngineConfig(
        adaptive=False,
        merge_reads=False,
        piggyback=False,
        fixed_interval=interval,
        limits=dict(limits),
    )
    return Policy(f"{FIXED}@{interval:g}s", FIXED, interval, config)


def static(interval: float, limits: Mapping[int, DeviceLimits]) -> Policy:
    """Telegraf style: optimal contiguous blocks of everything every ``interval`` seconds."""
    config = EngineConfig(
        adaptive=False,
        merge_reads=True,
        piggyback=True,
        fixed_interval=interval,
        limits=dict(limits),
    )
    return Policy(f"{STATIC}@{interval:g}s", STATIC, interval, config)


def _adaptive_config(
    limits: Mapping[int, DeviceLimits], min_interval: float, max_interval: float
) -> EngineConfig:
    """Return the adaptive engine's configuration with these interval bounds."""
    return EngineConfig(
        min_interval=min_interval, max_interval=max_interval, limits=dict(limits)
    )


def standard(
    limits: Mapping[int, DeviceLimits],
    *,
    min_interval: float = 5.0,
    max_interval: float = 300.0,
) -> list[Policy]:
    """Return the policies of the main table (adaptive with the given interval bounds)."""
    adaptive = _adaptive_config(limits, min_interval, max_interval)
    return [
        fixed(DEFAULT_INTERVAL, limits),
        static(DEFAULT_INTERVAL, limits),
        Policy(ADAPTIVE, ADAPTIVE, None, adaptive),
        Policy(ADAPTIVE_OPTIMIZER, ADAPTIVE_OPTIMIZER, None, adaptive, optimizer=True),
        Policy(
            ADAPTIVE_NO_PATTERNS,
            ADAPTIVE_NO_PATTERNS,
            None,
            dataclasses.replace(adaptive, patterns=False),
        ),
        Policy(ORACLE, ORACLE, None, None),
        Policy(ORACLE_BATCHED, ORACLE, None, None),
    ]


def optional(
    limits: Mapping[int, DeviceLimits],
    *,
    min_interval: float = 5.0,
    max_interval: float = 300.0,
) -> list[Policy]:
    """Return the policies run only when named (``scripts/bench --policies``)."""
    adaptive = _adaptive_config(limits, min_interval, max_interval)
    return [
        Policy(
            ADAPTIVE_OPTIMIZER_APPROVE,
            ADAPTIVE_OPTIMIZER_APPROVE,
            None,
            adaptive,
            optimizer=True,
            approve=True,
        )
    ]


def sweep(
    intervals: tuple[float, ...], limits: Mapping[int, DeviceLimits]
) -> list[Policy]:
    """Return the fixed policies at other intervals (for the equal-freshness comparison)."""
    out = []
    for interval in intervals:
        if interval != DEFAULT_INTERVAL:
            out += [fixed(interval, limits), static(interval, limits)]
    return out
