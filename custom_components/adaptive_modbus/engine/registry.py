"""Each register's mutable state, and the indexes that find registers by address.

Registers are identified by ``RegisterSpec.uid`` (``"<unit_id>.<key>"``), so two
devices with the same profile can share a connection.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .config import EngineConfig, Tuning
from .errors import EngineUsageError
from .intervals import IntervalLimits, IntervalModel, IntervalPin
from .patterns import ActivityProfile
from .planner import BlockRead
from .registers import RegisterSpec, Table, Value

QUARANTINE_FIRST = 300.0  # seconds before a quarantined register is probed again
QUARANTINE_MAX = 6 * 3600.0


@dataclass(slots=True)
class RegisterState:
    """Mutable per-register state (private to the engine)."""

    spec: RegisterSpec
    model: IntervalModel
    profile: ActivityProfile
    tolerance: float
    enabled: bool = True
    value: Value | None = None
    last_read: float | None = None
    last_change: float | None = None
    next_due: float = 0.0
    effective_interval: float = 0.0
    pattern_factor: float = 1.0
    viewed: bool = False  # the interval is shortened because the unit is viewed
    reads: int = 0
    changes: int = 0
    errors: int = 0
    failure_streak: int = 0
    quarantined_until: float | None = None
    quarantine_backoff: float = QUARANTINE_FIRST
    heap_seq: int = 0  # sequence number of the one live heap entry
    pin: IntervalPin | None = None  # a user's pin on the interval (kept on relearn)
    # its (unit, table) group's index in ``Registry.groups`` and its bit there (by
    # address): a due set is a bit mask per group (see Registry.uids_of)
    group: int = 0
    bit: int = 0
    # the schedule's: its bucket's due time (stale once popped), its interval as
    # scheduled (-1: never read early)
    bucket_at: float | None = None
    scheduled_interval: float = -1.0


class Registry:
    """The registers of one engine: their state by uid, address and unit.

    Addresses are indexed per (unit, table). The set of registers is fixed at
    construction.
    """

    def __init__(
        self,
        specs: Iterable[RegisterSpec],
        config: EngineConfig,
        tuning: Tuning | None = None,
    ) -> None:
        """Index ``specs``; a uid defined twice is refused."""
        self._config = config
        self._tuning = tuning or Tuning()
        self.regs: dict[str, RegisterState] = {}
        for spec in specs:
            if spec.uid in self.regs:
                raise EngineUsageError(f"register {spec.uid} is defined twice")
            self.regs[spec.uid] = self.new_state(spec)
        # per (unit, table): register start addresses (sorted) and their uids
        groups: dict[tuple[int, Table], list[tuple[int, str]]] = {}
        for uid, reg in self.regs.items():
            groups.setdefault((reg.spec.unit_id, reg.spec.table), []).append(
                (reg.spec.address, uid)
            )
        self._index: dict[tuple[int, Table], tuple[list[int], list[str]]] = {}
        # the groups in (unit, table) order; a register's bit is its place by address
        self.groups: list[tuple[int, Table]] = sorted(groups)
        self.group_uids: list[list[str]] = []
        self._group_of: dict[tuple[int, Table], int] = {}
        for number, key in enumerate(self.groups):
            self._group_of[key] = number
            items = groups[key]
            items.sort()
            self._index[key] = ([a for a, _ in items], [u for _, u in items])
            self.group_uids.append(self._index[key][1])
            for place, (_, uid) in enumerate(items):
                reg = self.regs[uid]
                reg.group, reg.bit = number, 1 << place
        self.unit_uids: dict[int, list[str]] = {}
        for uid, reg in self.regs.items():
            self.unit_uids.setdefault(reg.spec.unit_id, []).append(uid)

    def limits_for(self, spec: RegisterSpec) -> IntervalLimits:
        """Return a register's interval bounds: tuned, else its own, else the engine's."""
        tuned = self._tuning.interval_bounds.get(spec.uid)
        if tuned is not None:
            return IntervalLimits(min_interval=tuned[0], max_interval=tuned[1])
        low = spec.min_interval or self._config.min_interval
        high = spec.max_interval or max(self._config.max_interval, low)
        return IntervalLimits(min_interval=low, max_interval=max(high, low))

    def apply_pin(self, reg: RegisterState) -> None:
        """Give the register's model the bounds in force (its pin's, else its own)."""
        base = self.limits_for(reg.spec)
        limits = base if reg.pin is None else reg.pin.limits(base)
        reg.model.limits = limits
        reg.model.interval = limits.clamp(reg.model.interval)

    def new_state(self, spec: RegisterSpec) -> RegisterState:
        """Return a register's fresh state: nothing read, nothing learned."""
        numeric = spec.is_numeric
        tolerance = spec.tolerance or (
            self._config.default_tolerance if numeric else 0.0
        )
        model = IntervalModel(tolerance, self.limits_for(spec), numeric=numeric)
        model.step_budget = self._tuning.step_budget.get(spec.uid, model.step_budget)
        model.noise_margin = self._tuning.noise_margin.get(spec.uid, model.noise_margin)
        profile = ActivityProfile(tz=self._config.tz)
        if self._tuning.pattern_lead is not None:
            profile.lookahead = self._tuning.pattern_lead
        return RegisterState(
            spec=spec, model=model, profile=profile, tolerance=tolerance
        )

    def relearn(self, reg: RegisterState) -> None:
        """Give a register a fresh interval model and activity profile."""
        fresh = self.new_state(reg.spec)
        reg.model, reg.profile = fresh.model, fresh.profile
        if reg.pin is not None:
            self.apply_pin(reg)

    def starting_in(
        self, unit: int, table: Table, low: float, high: float
    ) -> list[str] | None:
        """Return the uids of ``(unit, table)`` registers starting in ``[low, high)``.

        By address; None when the table has no register.
        """
        index = self._index.get((unit, table))
        if index is None:
            return None
        starts, uids = index
        return uids[bisect_left(starts, low) : bisect_left(starts, high)]

    def window(
        self, unit: int, table: Table, low: float, high: float
    ) -> tuple[int, int, int] | None:
        """Return (group, first, end) of the registers :meth:`starting_in` returns.

        They are the group's bits ``first`` to ``end - 1``; None when the table has
        no register.
        """
        group = self._group_of.get((unit, table))
        if group is None:
            return None
        starts = self._index[(unit, table)][0]
        return group, bisect_left(starts, low), bisect_left(starts, high)

    def masks_of(self, uids: Iterable[str]) -> dict[int, int]:
        """Return these registers as a bit mask per group (see :meth:`uids_of`)."""
        masks: dict[int, int] = {}
        regs, get = self.regs, masks.get
        for uid in uids:
            reg = regs[uid]
            masks[reg.group] = get(reg.group, 0) | reg.bit
        return masks

    def uids_of(self, group: int, mask: int) -> list[str]:
        """Return the uids of group ``group`` whose bits ``mask`` has, by address."""
        uids = self.group_uids[group]
        out = []
        while mask:
            low = mask & -mask
            out.append(uids[low.bit_length() - 1])
            mask ^= low
        return out

    def distinct_starts(self, keys: Iterable[str]) -> list[int]:
        """Return the distinct start addresses of these registers, sorted."""
        return sorted({self.regs[uid].spec.address for uid in keys})

    def block_of(self, block: BlockRead, keys: Sequence[str]) -> BlockRead:
        """Return the read of ``block``'s unit and table spanning exactly these registers."""
        specs = [self.regs[uid].spec for uid in keys]
        start = min(s.address for s in specs)
        end = max(s.end for s in specs)
        return BlockRead(block.unit_id, block.table, start, end - start, tuple(keys))


def single_read(spec: RegisterSpec) -> BlockRead:
    """Return the read of one register alone."""
    return BlockRead(spec.unit_id, spec.table, spec.address, spec.size, (spec.uid,))
