"""A read's outcome applied to the registers: decode, learn, reschedule.

Data: every register inside the block's span is decoded (riders refresh for free);
a value feeds the register's interval model and time-of-week profile, and the
register is scheduled on its new interval. Failure: the register counts an error
and is retried with backoff (a quarantined one waits for its probe).
"""

from __future__ import annotations

from collections.abc import Sequence
import math

from .bus import CycleState
from .core import EngineCore
from .errors import ErrorKind
from .planner import BlockRead
from .registry import RegisterState
from .stats import ErrorRecord


class Observer:
    """Applies read results and failures to the registers' state and schedule."""

    def __init__(self, core: EngineCore) -> None:
        """Observe reads into the registers of ``core``."""
        self._core = core
        self._regs = core.registry.regs

    def fail(self, keys: Sequence[str], cycle: CycleState, now: float) -> None:
        """Count a failed read and schedule the next one (always after ``now``)."""
        for uid in keys:
            if uid in cycle.failed:
                continue
            reg = self._regs[uid]
            reg.errors += 1
            reg.failure_streak += 1
            cycle.failed.add(uid)
            if reg.quarantined_until is not None and reg.quarantined_until > now:
                self._core.schedule.due_at(reg, reg.quarantined_until)
            elif reg.quarantined_until is not None:
                # a due probe without a verdict: probe again after the retry backoff
                self._core.schedule.retry(reg, now)
                reg.quarantined_until = reg.next_due
            else:
                self._core.schedule.retry(reg, now)

    def _riders(self, block: BlockRead) -> list[str]:
        """Return the enabled registers wholly inside the block's span (read for free)."""
        end = block.address + block.count
        uids = self._core.registry.starting_in(
            block.unit_id, block.table, block.address, end
        )
        if uids is None:
            return list(block.keys)
        inside = []
        for uid in uids:
            reg = self._regs[uid]
            if reg.enabled and reg.quarantined_until is None and reg.spec.end <= end:
                inside.append(uid)
        return inside

    def apply(
        self, block: BlockRead, raw: Sequence[int], now: float, cycle: CycleState
    ) -> None:
        """Decode the block's data into its registers (and its riders), and learn.

        A value feeds the register's interval model and time-of-week profile (the
        wall time of ``now`` is taken once a block), then the register is scheduled
        on its new interval. The read path of every register: kept in one loop.
        """
        keys = self._riders(block) if self._core.config.piggyback else list(block.keys)
        due = frozenset(block.keys) if len(keys) != len(block.keys) else None
        core, regs, start = self._core, self._regs, block.address
        listeners, schedule, changed_values = (
            core.read_listeners,
            core.schedule,
            cycle.changed,
        )
        wall: float | None = None  # the wall time of now, for the profiles: taken once
        placed: list[RegisterState] = []  # rescheduled together (Schedule.next_reads)
        try:
            for uid in keys:
                reg = regs[uid]
                spec = reg.spec
                try:
                    value = spec.decode_at(raw, spec.address - start)
                except ValueError as err:
                    record = ErrorRecord(now, ErrorKind.OTHER, spec.unit_id, spec.table,
                                         spec.address, spec.size, str(err))  # fmt: skip
                    core.stats.add_error(record)
                    cycle.errors.append(record)
                    schedule.next_reads(placed, now)  # those before, first (as in turn)
                    placed = []
                    self.fail((uid,), cycle, now)
                    continue
                previous = reg.value
                if due is not None and value == previous and uid not in due:
                    # a rider that did not move: fresh for free, nothing new to learn
                    reg.reads += 1
                    previous_read, reg.last_read = reg.last_read, now
                    reg.failure_streak = 0
                    for listener in listeners:
                        listener(uid, now, value, previous_read)
                    continue
                # None: no value (NaN, inf)
                changed = value != previous or reg.last_read is None
                reg.reads += 1
                reg.failure_streak = 0
                if changed:
                    reg.changes += 1
                    reg.last_change = now
                    changed_values[uid] = value
                reg.value = value
                previous_read, reg.last_read = reg.last_read, now
                for listener in listeners:
                    listener(uid, now, value, previous_read)
                numeric: float | None = None
                # ints are finite; bools and text are not numbers
                if type(value) is int:
                    if spec.numeric:
                        numeric = float(value)
                elif (
                    value is not None
                    and spec.numeric
                    and not isinstance(value, bool | str)
                    and math.isfinite(value)
                ):
                    numeric = float(value)
                model = reg.model
                old_interval = model.interval
                # the first read (after start or restore) is news for entities, not the model
                decision = model.observe(now, numeric, changed and previous is not None)
                if decision is not None or previous is not None:
                    if wall is None:
                        wall = core.clock.to_wall(now)
                    reg.profile.record(wall, model.activity)
                if decision is not None and decision.interval != old_interval:
                    core.stats.add_interval_decision(now, uid, old_interval, decision)
                placed.append(reg)
        finally:  # an unexpected error: those before it are rescheduled (as in turn)
            schedule.next_reads(placed, now)
