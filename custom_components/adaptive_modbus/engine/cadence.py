"""Per-unit cadence: when a unit's table is read, decided with all its registers.

Per register, a read is due when the register's own interval has run out. A unit's
table, though, is read in one or a few requests whatever part of it is due, so the
right moment to read it depends on all of its registers: ten registers each a third
of the way to due are together worth more than one that is due.

Urgency of a table (one unit's holding, input, coil or discrete table):

    U(t) = sum_i w_i * s_i(t)**2

with ``s_i`` the share of register i's interval gone by since its last read and
``w_i`` the cost of reading i alone over the cost of reading the whole table (the
planner's optimal cover of all its registers under the cost model in force). A
single register on its own has U = s**2, due at s = 1 as before; with a staleness
cost growing with age, reading the table when U reaches 1 is the square-root law of
joint replenishment: the more registers share a request, the sooner the request
pays. When U reaches 1 before the table's first register is due, the whole table is
made due then (its registers read in the planner's optimal blocks, in step from
then on). Nothing is ever read later than its own interval.

After every cycle the tables read in it are looked at again (the sums are over
their registers: O(registers of the table)); the others keep their decision.
Only on known costs: until the connection's cost model is configured, set or
fitted to measured latencies, the cadence does nothing.

With free riders on, a table whose registers each cost nearly as much alone as
the whole table (``JOINT_ALREADY``: on TCP a 125-register unit costs about one
register's read) is left alone: the riders already read it whole whenever any of
it is read, so advancing it would only read everything sooner. Measured on the
benchmark's TCP scenarios (stress2000, trace) without this: 28-31 % more requests
for fresher values, static blocks 0.96 -> 0.84x and per-entity 5.37 -> 4.80x.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import math

from .core import EngineCore
from .intervals import aligned_due
from .planner import CostModel, plan_cost, plan_reads
from .registers import Table
from .registry import RegisterState
from .schedule import Schedule

TableKey = tuple[int, Table]
#: a table read is advanced only when that brings it at least this much forward (s)
MIN_ADVANCE = 1.0
#: a table read is never advanced before its most urgent register has this share of
#: its interval gone by (bounds the extra reads to at most twice the requests)
MIN_SHARE = 0.75
#: after a read taken early (off its grid), the next one is at least this share of
#: the interval later (else the register's own tick would read it again at once)
REST_AFTER_EARLY = 0.5
#: with free riders on, a table whose every register read alone costs at least this
#: share of the whole table's read (on TCP: the whole unit costs about one register)
#: is read whole by the riders whenever any of it is read: the cadence would only
#: bring its reads forward, so it leaves such a table alone
JOINT_ALREADY = 0.9


def rest_after_early_read(schedule: Schedule, reg: RegisterState) -> None:
    """Move a register read off its grid to a tick at least half an interval later.

    A read taken before the register's own tick leaves that tick in place (due
    times are multiples of the interval), which would read it again moments later.
    """
    last, interval = reg.last_read, reg.effective_interval
    if last is None or interval <= 0:
        return
    due = aligned_due(last, interval, min_fraction=REST_AFTER_EARLY)
    if due > reg.next_due:
        schedule.due_at(reg, due)


class UnitCadence:
    """Advances a unit's table read when the table's summed urgency reaches 1."""

    def __init__(
        self, core: EngineCore, *, riders: Callable[[], bool] | None = None
    ) -> None:
        """Decide for the registers of ``core``.

        ``riders``: whether free riders grow the reads now (None: never).
        """
        self._core = core
        self._riders = riders
        self._tables: dict[TableKey, list[RegisterState]] = {}
        for reg in core.registry.regs.values():
            key = (reg.spec.unit_id, reg.spec.table)
            self._tables.setdefault(key, []).append(reg)
        # per table: (cost model, holes, limit) the weights were computed for, weights
        self._weights: dict[TableKey, tuple[object, list[float]]] = {}
        self._early: set[str] = set()  # made due early, not read yet
        self.advanced = 0  # table reads brought forward

    @property
    def enabled(self) -> bool:
        """Whether the cadence acts (adaptive engines merging reads, cadence on)."""
        config = self._core.config
        return config.adaptive and config.merge_reads and config.unit_cadence

    def costs_known(self) -> bool:
        """Whether the connection's costs are configured, set or measured (fitted).

        The weights are cost ratios: on the default guess (before the connection's
        latency is measured, or on a link whose latency is not measurable) the
        cadence would spend requests on a guess, so it waits.
        """
        core = self._core
        return (
            core.tuning.cost is not None
            or core.config.cost is not None
            or core.bus.cost.model() is not None
        )

    def weights(self, key: TableKey, cost: CostModel) -> list[float]:
        """Per register of the table: its own read's cost over the whole table's."""
        regs = self._tables[key]
        limits = self._core.limits.effective()
        holes = self._core.holes.by_table
        stamp = (cost, holes, limits.get(key[0]))
        cached = self._weights.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        whole = plan_cost(
            plan_reads(
                [reg.spec for reg in regs], cost=cost, limits=limits, holes=holes
            ),
            cost,
        )
        weights = [
            min(1.0, cost.block_cost(reg.spec.table, reg.spec.size) / whole)
            if whole > 0
            else 1.0
            for reg in regs
        ]
        self._weights[key] = (stamp, weights)
        return weights

    def after_cycle(
        self, tables: Iterable[TableKey], started: float, now: float, cost: CostModel
    ) -> list[TableKey]:
        """Decide again for the tables read in the cycle; returns those advanced."""
        if not self.enabled:
            return []
        schedule = self._core.schedule
        regs_by_uid = self._core.registry.regs
        for uid in list(self._early):
            reg = regs_by_uid[uid]
            if reg.last_read is not None and reg.last_read >= started:
                self._early.discard(uid)
                rest_after_early_read(schedule, reg)
        if not self.costs_known():
            return []
        advanced = []
        for key in tables:
            regs = self._tables.get(key)
            if not regs or len(regs) < 2:
                continue
            at = self.wake(key, now, cost)
            if at is None:
                continue
            moved = False
            for reg in regs:
                if schedule.may_advance(reg) and reg.next_due > at:
                    schedule.due_at(reg, at)
                    self._early.add(reg.spec.uid)
                    moved = True
            if moved:
                advanced.append(key)
        self.advanced += len(advanced)
        return advanced

    def wake(self, key: TableKey, now: float, cost: CostModel) -> float | None:
        """Return when the table's urgency reaches 1, if before its first due read.

        None when the table's own first due time comes first (or nearly), or when
        the free riders read the table whole anyway (``JOINT_ALREADY``).
        """
        regs = self._tables[key]
        weights = self.weights(key, cost)
        if (
            self._riders is not None
            and min(weights) >= JOINT_ALREADY
            and self._riders()
        ):
            return None  # the riders read it whole with any of its registers
        # U(now + x) = a x^2 + 2 b x + c with tau_i = now - last_i >= 0
        a = b = c = 0.0
        first = earliest = math.inf
        for reg, w in zip(regs, weights, strict=True):
            if not reg.enabled or reg.quarantined_until is not None:
                continue
            first = min(first, reg.next_due)
            interval, last = reg.effective_interval, reg.last_read
            if last is None or interval <= 0:
                return None  # never read: due anyway
            earliest = min(earliest, last + MIN_SHARE * interval)
            k = w / (interval * interval)
            tau = now - last
            a += k
            b += k * tau
            c += k * tau * tau
        if a <= 0 or not math.isfinite(first):
            return None
        # smallest x >= 0 with a x^2 + 2 b x + (c - 1) = 0
        disc = b * b - a * (c - 1.0)
        x = max(0.0, (-b + math.sqrt(max(disc, 0.0))) / a)
        at = max(now + x, earliest)
        if at > first - MIN_ADVANCE:
            return None
        return at
