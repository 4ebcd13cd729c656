"""What the engine learned from faults: holes (refused addresses) and block limits.

Both are bookkeeping only (no I/O; the reads that verify them are in ``execute``).
Nothing here is permanent:

- A hole is a run of addresses the device refused inside a block whose halves read
  fine; the planner does not span it. It is read alone again after a backoff
  (``HOLE_VERIFY_*``: long for an illegal address, short for a device failure) and
  forgotten when the device answers; a check that gets no verdict is asked again
  after ``NO_VERDICT_RETRY``.
- A block limit is a unit's largest read, learned when a larger one was refused
  (exception 3) or left unanswered; ``EngineConfig.unit_max_registers`` and
  ``limits`` cap it from the start. A larger size is tried again after a backoff
  (``LIMIT_RETRY_*``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
import logging

from .config import EngineConfig, Tuning
from .errors import ErrorKind
from .planner import DEFAULT_LIMITS, PROTOCOL_MAX_REGISTERS, BlockRead, DeviceLimits
from .registers import RegisterSpec, Table
from .registry import QUARANTINE_FIRST

_LOGGER = logging.getLogger(__name__)

# an address refused as illegal is read alone again after this
HOLE_VERIFY_FIRST = 6 * 3600.0
# ... and one learned from a device failure (code 4)
HOLE_VERIFY_FAILURE = QUARANTINE_FIRST
HOLE_VERIFY_MAX = 24 * 3600.0
# a hole check that got no answer is asked again after this
NO_VERDICT_RETRY = QUARANTINE_FIRST
# a larger read than the learned limit is tried again after this
LIMIT_RETRY_FIRST = 3600.0
LIMIT_RETRY_MAX = 24 * 3600.0

HoleKey = tuple[int, Table]
HoleRun = tuple[int, Table, int, int]  # unit, table, first address, end (exclusive)


def first_hole_backoff(kind: ErrorKind) -> float:
    """How long a hole taught by ``kind`` is trusted before it is read again."""
    return (
        HOLE_VERIFY_FIRST if kind is ErrorKind.ILLEGAL_ADDRESS else HOLE_VERIFY_FAILURE
    )


@dataclass
class HoleCheck:
    """When a learned hole (a run of addresses) is read alone again."""

    kind: ErrorKind  # what taught it: ILLEGAL_ADDRESS (strong) or DEVICE_FAILURE
    verify_at: float
    backoff: float


class Holes:
    """Learned holes, each with its check; ``by_table`` is what the planner avoids."""

    def __init__(self) -> None:
        """Start with no holes learned."""
        self.checks: dict[HoleRun, HoleCheck] = {}
        self.backoffs: dict[HoleRun, float] = {}  # of expired holes
        self.by_table: dict[HoleKey, set[int]] = {}

    def rebuild(self) -> None:
        """Recompute ``by_table`` from the checks (after any change to them)."""
        holes: dict[HoleKey, set[int]] = {}
        for unit, table, start, end in self.checks:
            holes.setdefault((unit, table), set()).update(range(start, end))
        self.by_table = holes

    def learn(
        self,
        block: BlockRead,
        covered: Sequence[tuple[int, int]],
        kind: ErrorKind,
        now: float,
    ) -> None:
        """Learn the holes of ``block``: addresses only the whole block read.

        Both halves of ``block`` read fine (``covered``), so what only the whole
        block read is refused.

        The hole is read alone again after a backoff: long when the device called the
        address illegal, short when it reported a failure (often transient). A hole
        learned again after it expired continues its backoff instead of restarting it.
        """
        gap = set(range(block.address, block.address + block.count))
        for start, end in covered:
            gap -= set(range(start, end))
        first = first_hole_backoff(kind)
        for start, end in runs(gap):
            key = (block.unit_id, block.table, start, end)
            previous = self.backoffs.pop(key, None)
            backoff = (
                first
                if previous is None
                else min(max(previous * 2, first), HOLE_VERIFY_MAX)
            )
            self.checks[key] = HoleCheck(kind, now + backoff, backoff)
            _LOGGER.info(
                "unit %s %s: learned refused addresses %s-%s (%s), checked again in %.0f s",
                block.unit_id, block.table, start, end - 1, kind, backoff,
            )  # fmt: skip
        self.rebuild()

    def answered(self, key: HoleRun) -> None:
        """Forget a hole that was read fine alone (its backoff is kept)."""
        check = self.checks.pop(key)
        self.backoffs[key] = check.backoff
        self.rebuild()
        unit, table, start, end = key
        _LOGGER.info(
            "unit %s %s: addresses %s-%s answer again", unit, table, start, end - 1
        )

    def refused(self, key: HoleRun, kind: ErrorKind, now: float) -> None:
        """Keep a hole that was refused again and double its backoff."""
        check = self.checks[key]
        if kind is ErrorKind.ILLEGAL_ADDRESS:
            check.kind = ErrorKind.ILLEGAL_ADDRESS
        check.backoff = min(
            max(check.backoff * 2, first_hole_backoff(check.kind)), HOLE_VERIFY_MAX
        )
        check.verify_at = now + check.backoff

    def no_verdict(self, key: HoleRun, now: float) -> None:
        """Ask again later when a hole's check got no answer (timeout, busy)."""
        self.checks[key].verify_at = now + NO_VERDICT_RETRY

    def reset(self, unit_id: int | None, spec: RegisterSpec | None) -> None:
        """Forget the holes inside a register's span (``spec``), of a unit, or all.

        The backoffs of expired holes go too, except for a single register.
        """
        for key in list(self.checks):
            unit, table, start, end = key
            if spec is not None:
                hit = (unit, table) == (spec.unit_id, spec.table) and start < spec.end
                hit = hit and end > spec.address
            else:
                hit = unit_id is None or unit == unit_id
            if hit:
                del self.checks[key]
        if spec is None:
            for key in [k for k in self.backoffs if unit_id is None or k[0] == unit_id]:
                del self.backoffs[key]
        self.rebuild()


@dataclass
class UnitLimit:
    """A unit's learned largest read (registers) and when a larger one is tried."""

    max_registers: int
    retry_at: float
    backoff: float = LIMIT_RETRY_FIRST


class BlockLimits:
    """Each unit's largest read: configured, or learned when smaller (``learned``)."""

    def __init__(self, config: EngineConfig, tuning: Tuning | None = None) -> None:
        """Start with the configured limits and none learned."""
        self._config = config
        self._tuning = tuning or Tuning()
        self.learned: dict[int, UnitLimit] = {}

    def cap(self, unit: int) -> int:
        """Return the configured largest read of a unit (registers)."""
        configured = self._config.limits.get(unit, DEFAULT_LIMITS).max_registers
        return min(
            configured,
            self._config.unit_max_registers.get(unit, PROTOCOL_MAX_REGISTERS),
            self._tuning.unit_max_registers.get(unit, PROTOCOL_MAX_REGISTERS),
        )

    def limit(self, unit: int) -> int:
        """Return the largest read of a unit in force: configured, or learned if smaller."""
        learned = self.learned.get(unit)
        cap = self.cap(unit)
        return cap if learned is None else min(cap, learned.max_registers)

    def effective(
        self, trial: Mapping[int, int] | None = None
    ) -> dict[int, DeviceLimits]:
        """Per unit limits for the planner; ``trial`` overrides some units' registers."""
        config = self._config
        units = {
            *config.limits,
            *config.unit_max_registers,
            *self._tuning.unit_max_registers,
            *self.learned,
        }
        limits: dict[int, DeviceLimits] = {}
        for unit in units:
            base = config.limits.get(unit, DEFAULT_LIMITS)
            count = trial[unit] if trial and unit in trial else self.limit(unit)
            limits[unit] = (
                base
                if count == base.max_registers
                else DeviceLimits(count, base.max_bits)
            )
        return limits

    def trial(self, due: Iterable[RegisterSpec], now: float) -> dict[int, int]:
        """Units whose retry is due try twice their learned limit in this cycle."""
        trial: dict[int, int] = {}
        if not self.learned:  # nothing learned, nothing to try (no walk over due)
            return trial
        units = {spec.unit_id for spec in due if not spec.table.is_bit}
        for unit in units & self.learned.keys():
            learned = self.learned[unit]
            if learned.retry_at <= now:
                trial[unit] = min(self.cap(unit), learned.max_registers * 2)
        return trial

    def settle(
        self, trial: Mapping[int, int], blocks: list[BlockRead], now: float
    ) -> list[BlockRead]:
        """Count a trial (and back off) only when the plan reads more than the limit."""
        for unit in trial:
            learned = self.learned[unit]
            if any(
                b.unit_id == unit
                and not b.table.is_bit
                and b.count > learned.max_registers
                for b in blocks
            ):
                learned.retry_at = now + learned.backoff
                learned.backoff = min(learned.backoff * 2, LIMIT_RETRY_MAX)
        return blocks

    def answered(self, unit: int, size: int) -> None:
        """Note that a read of ``size`` registers answered: a learned limit may grow."""
        learned = self.learned.get(unit)
        if learned is None or size <= learned.max_registers:
            return
        if size >= self.cap(unit):
            del self.learned[unit]
        else:
            learned.max_registers = size
        _LOGGER.info("unit %s: reads of %s registers answer again", unit, size)

    def learn(self, unit: int, limit: int, why: str, now: float) -> None:
        """Remember a smaller largest read for a unit (never a larger one here)."""
        if limit >= self.limit(unit):
            return
        learned = self.learned.get(unit)
        if learned is None:
            self.learned[unit] = UnitLimit(limit, now + LIMIT_RETRY_FIRST)
        else:
            learned.max_registers = limit
        _LOGGER.info(
            "unit %s: %s; reading at most %s registers at once", unit, why, limit
        )

    def reset(self, unit_id: int | None) -> None:
        """Forget the learned limit of a unit, or of all units."""
        for unit in [u for u in self.learned if unit_id is None or u == unit_id]:
            del self.learned[unit]


def runs(addresses: set[int]) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, end)`` of a set of addresses, in order."""
    found: list[tuple[int, int]] = []
    for address in sorted(addresses):
        if found and found[-1][1] == address:
            found[-1] = (found[-1][0], address + 1)
        else:
            found.append((address, address + 1))
    return found
