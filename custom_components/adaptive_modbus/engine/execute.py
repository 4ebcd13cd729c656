"""Reading planned blocks, and what a failing read teaches.

An illegal-address or device-failure answer bisects the block at once. When the
halves succeed, the addresses only the whole block read are learned as a hole; a
single register that fails on its own is quarantined and re-probed with
exponential backoff (``QUARANTINE_FIRST`` doubling to ``QUARANTINE_MAX``). A read
refused with exception 3, or left unanswered while smaller reads of the same unit
answer, is split by size and halves that unit's learned block limit. A timeout
marks the unit dead for the rest of the cycle, a lost connection ends the cycle's
reads. Learned holes are read alone again when their check is due.
"""

from __future__ import annotations

import logging

from .bus import CycleState
from .core import EngineCore
from .errors import ErrorKind, ModbusError
from .observe import Observer
from .planner import DEFAULT_LIMITS, BlockRead, DeviceLimits, plan_reads
from .planning import Planning
from .registry import QUARANTINE_FIRST, QUARANTINE_MAX, RegisterState, single_read

_LOGGER = logging.getLogger(__name__)

EXC_ILLEGAL_VALUE = 3  # for reads: the quantity (or range) was refused


class Executor:
    """Runs the reads of one cycle's plan, quarantine probes and hole checks."""

    def __init__(
        self, core: EngineCore, *, observer: Observer, planning: Planning
    ) -> None:
        """Execute planned reads with the engine's parts."""
        self._core = core
        self._regs = core.registry.regs
        self._observer = observer
        self._planning = planning

    async def execute(self, block: BlockRead, cycle: CycleState) -> bool:
        """Read one block; split it if the device blames its addresses or its size."""
        if block.unit_id in cycle.dead_units:
            self._observer.fail(block.keys, cycle, self._core.clock.now())
            return False
        result = await self._core.bus.read(block, cycle)
        now = self._core.clock.now()
        if not isinstance(result, ModbusError):
            self._observer.apply(block, result, now, cycle)
            return True
        if self._refused_size(block, result):
            return await self._split_by_size(block, cycle, result)
        if result.kind is ErrorKind.TIMEOUT and await self._silent_on_size(
            block, cycle
        ):
            return await self._split_by_size(block, cycle, result)
        if (
            result.kind.blames_block
            and len(self._core.registry.distinct_starts(block.keys)) > 1
        ):
            await self._bisect(block, cycle, result.kind)
            return False
        if result.kind.blames_block:
            for uid in block.keys:
                self._quarantine(self._regs[uid], now)
        elif result.kind is ErrorKind.CONNECTION:
            cycle.connection_lost = True
        elif result.kind is ErrorKind.TIMEOUT:
            cycle.dead_units.add(block.unit_id)
        self._observer.fail(block.keys, cycle, now)
        return False

    async def _bisect(
        self, block: BlockRead, cycle: CycleState, kind: ErrorKind
    ) -> None:
        """Split a blamed block in two halves by address and read each."""
        starts = self._core.registry.distinct_starts(block.keys)
        pivot = starts[len(starts) // 2]
        halves = [
            [uid for uid in block.keys if self._regs[uid].spec.address < pivot],
            [uid for uid in block.keys if self._regs[uid].spec.address >= pivot],
        ]
        covered: list[tuple[int, int]] = []
        all_ok = True
        for keys in halves:
            sub = self._core.registry.block_of(block, keys)
            if await self.execute(sub, cycle):
                covered.append((sub.address, sub.address + sub.count))
            else:
                all_ok = False
        if all_ok:
            self._core.holes.learn(block, covered, kind, self._core.clock.now())

    # -- block limits ----------------------------------------------------------

    def _refused_size(self, block: BlockRead, error: ModbusError) -> bool:
        """Exception 3 on a read of several registers: the quantity may be too large."""
        return (
            error.code == EXC_ILLEGAL_VALUE
            and not block.table.is_bit
            and len(self._core.registry.distinct_starts(block.keys)) > 1
        )

    async def _silent_on_size(self, block: BlockRead, cycle: CycleState) -> bool:
        """No answer to a read larger than one that answered this cycle: halve the limit.

        When the unit has not answered yet this cycle, one small read (the block's
        first register) tells a silent unit from one that ignores large reads. A
        unit's limit is halved at most once per cycle this way.
        """
        unit = block.unit_id
        if (
            block.table.is_bit
            or unit in cycle.halved
            or len(self._core.registry.distinct_starts(block.keys)) < 2
        ):
            return False
        if unit not in cycle.answered:
            small = single_read(self._regs[block.keys[0]].spec)
            if small.count >= block.count:
                return False
            result = await self._core.bus.read(small, cycle)
            if isinstance(result, ModbusError):
                return False
            self._observer.apply(small, result, self._core.clock.now(), cycle)
        answered = cycle.answered.get(unit, 0)
        if answered >= block.count:
            return False
        cycle.halved.add(unit)
        limit = max(block.count // 2, answered, 1)
        why = f"no answer to a read of {block.count} registers"
        self._core.limits.learn(unit, limit, why, self._core.clock.now())
        return True

    async def _split_by_size(
        self, block: BlockRead, cycle: CycleState, error: ModbusError
    ) -> bool:
        """Read a block refused for its size again in reads of at most half its size.

        After exception 3 the smaller limit is learned only when every smaller read
        answers: an address the device refuses with code 3 is found (and quarantined
        or learned as a hole) instead of shrinking the limit.
        """
        unit = block.unit_id
        current = self._core.limits.limit(unit)
        limit = max(block.count // 2, current if current < block.count else 1, 1)
        specs = [self._regs[uid].spec for uid in block.keys]
        base = self._core.config.limits.get(unit, DEFAULT_LIMITS)
        subs = plan_reads(
            specs,
            cost=self._planning.cost_model(),
            limits={unit: DeviceLimits(limit, base.max_bits)},
            holes=self._core.holes.by_table,
        )
        all_ok = True
        for sub in subs:
            all_ok = await self.execute(sub, cycle) and all_ok
        if all_ok and error.kind is not ErrorKind.TIMEOUT:
            why = f"a read of {block.count} registers was refused"
            self._core.limits.learn(unit, limit, why, self._core.clock.now())
        return all_ok

    # -- quarantine and hole checks ------------------------------------------------

    def _quarantine(self, reg: RegisterState, now: float) -> None:
        """Stop reading for a while a register the device rejects on its own."""
        if reg.quarantined_until is not None:
            reg.quarantine_backoff = min(reg.quarantine_backoff * 2, QUARANTINE_MAX)
        reg.quarantined_until = now + reg.quarantine_backoff
        _LOGGER.info("%s quarantined for %.0f s", reg.spec.uid, reg.quarantine_backoff)

    async def probe(self, reg: RegisterState, cycle: CycleState) -> None:
        """Re-read a quarantined register alone; release it if the device answers.

        A refusal doubles the quarantine; no verdict (timeout, lost connection, busy)
        leaves it as it is and asks again after the register's retry backoff.
        """
        spec = reg.spec
        if spec.unit_id in cycle.dead_units:
            self._observer.fail((spec.uid,), cycle, self._core.clock.now())
            return
        block = single_read(spec)
        result = await self._core.bus.read(block, cycle)
        now = self._core.clock.now()
        if isinstance(result, ModbusError):
            if result.kind.blames_block:
                self._quarantine(reg, now)
            elif result.kind is ErrorKind.CONNECTION:
                cycle.connection_lost = True
            elif result.kind is ErrorKind.TIMEOUT:
                cycle.dead_units.add(spec.unit_id)
            self._observer.fail(block.keys, cycle, now)
            return
        reg.quarantined_until = None
        reg.quarantine_backoff = QUARANTINE_FIRST
        self._observer.apply(block, result, now, cycle)

    async def check_holes(self, cycle: CycleState) -> None:
        """Read holes whose check is due alone, on units that answered this cycle.

        An answer forgets the hole (the planner spans it again); a refusal keeps it
        and doubles its backoff; no verdict (timeout, busy) asks again later.
        """
        now = self._core.clock.now()
        for key, check in list(self._core.holes.checks.items()):
            unit, table, start, end = key
            if (
                check.verify_at > now
                or cycle.connection_lost
                or unit not in cycle.answered
            ):
                continue
            if unit in cycle.dead_units:
                continue
            # a refusal confirms what is known: not an error of this cycle
            scratch = CycleState()
            result = await self._core.bus.read(
                BlockRead(unit, table, start, end - start), scratch
            )
            cycle.requests += scratch.requests
            now = self._core.clock.now()
            if not isinstance(result, ModbusError):
                self._core.holes.answered(key)
            elif result.kind.blames_block:
                self._core.holes.refused(key, result.kind, now)
            else:
                self._core.holes.no_verdict(key, now)
                if result.kind is ErrorKind.CONNECTION:
                    cycle.connection_lost = True
