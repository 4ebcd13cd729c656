"""The engine's state as an immutable :class:`EngineSnapshot` (the read API).

``at`` and the recent records are in engine (monotonic) time, ``wall_at`` is the
wall time at ``at``; register times and unit states are wall times (display).
"""

from __future__ import annotations

from collections.abc import Mapping

from .core import EngineCore
from .intervals import Reason
from .planning import Planning
from .registers import Table
from .registry import RegisterState
from .stats import (
    ClusterSnapshot,
    EngineSnapshot,
    RegisterSnapshot,
    UnitStatus,
    sorted_snapshots,
)
from .unit_recovery import UnitDown


class Snapshots:
    """Builds snapshots of one engine's parts."""

    def __init__(
        self, core: EngineCore, *, down: Mapping[int, UnitDown], planning: Planning
    ) -> None:
        """Build snapshots from the engine's parts."""
        self._core = core
        self._regs = core.registry.regs
        self._down = down
        self._planning = planning

    def build(self, last_internal_error: str | None) -> EngineSnapshot:
        """Build a snapshot as of now."""
        clock = self._core.clock
        now = clock.now()
        wall = clock.wall() if clock.wall is not clock.now else now
        offset = wall - now
        registers = sorted_snapshots(
            self._register(reg, offset) for reg in self._regs.values()
        )
        return EngineSnapshot(
            at=now,
            wall_at=wall,
            units_down={
                unit: UnitStatus(
                    unit_id=unit,
                    down_since=down.since + offset,
                    next_probe=down.next_probe + offset,
                    probe_backoff=down.backoff,
                    probes=down.probes,
                )
                for unit, down in sorted(self._down.items())
            },
            last_internal_error=last_internal_error,
            adaptive=self._core.config.adaptive,
            fixed_interval=self._core.config.fixed_interval,
            registers=registers,
            clusters=self._clusters(),
            totals=self._core.stats.totals,
            holes={
                f"{u}.{t}": tuple(sorted(a))
                for (u, t), a in self._core.holes.by_table.items()
                if a
            },
            units=self._core.stats.units,
            recent_requests=tuple(self._core.stats.requests),
            recent_errors=tuple(self._core.stats.errors),
            recent_interval_changes=self._core.stats.recent_interval_changes(),
            recent_cycles=tuple(self._core.stats.cycles),
            viewed=dict(sorted(self._core.schedule.viewed.items())),
        )

    def _register(self, reg: RegisterState, offset: float = 0.0) -> RegisterSnapshot:
        spec, model = reg.spec, reg.model
        last = model.last_decision
        down = self._down.get(spec.unit_id)
        next_due = reg.next_due if down is None else down.next_probe
        until = reg.quarantined_until
        return RegisterSnapshot(
            uid=spec.uid,
            key=spec.key,
            unit_id=spec.unit_id,
            table=spec.table,
            address=spec.address,
            size=spec.size,
            enabled=reg.enabled,
            value=reg.value,
            last_read=None if reg.last_read is None else reg.last_read + offset,
            last_change=None if reg.last_change is None else reg.last_change + offset,
            next_due=next_due + offset if reg.enabled else None,
            interval=model.interval,
            effective_interval=reg.effective_interval or model.interval,
            reason=str(Reason.VIEWED if reg.viewed else last.reason),
            detail=self._viewed_detail(reg) if reg.viewed else last.detail,
            tolerance=reg.tolerance,
            rate=model.rate,
            noise=model.noise,
            noisy=model.noisy,
            pattern_factor=reg.pattern_factor,
            reads=reg.reads,
            changes=reg.changes,
            errors=reg.errors,
            failure_streak=reg.failure_streak,
            quarantined_until=None if until is None else until + offset,
            pinned=reg.pin,
            fixed_interval=spec.bounded(self._core.config.fixed_interval),
        )

    def _viewed_detail(self, reg: RegisterState) -> str:
        limits = reg.model.limits
        factor = self._core.config.viewed_factor
        viewers = self._core.schedule.viewed.get(reg.spec.unit_id, 0)
        return (
            f"viewed ({viewers} live view{'s' if viewers != 1 else ''}):"
            f" upper bound {limits.max_interval:g} s x {factor:g}"
            f" -> {reg.effective_interval:g} s (learned {reg.model.interval:g} s,"
            f" {reg.model.last_decision.reason})"
        )

    def _clusters(self) -> tuple[ClusterSnapshot, ...]:
        """Blocks the planner makes when every enabled register is due."""
        enabled = [
            r for r in self._regs.values() if r.enabled and r.quarantined_until is None
        ]
        counts: dict[tuple[int, Table, int, int], int] = {}
        for request in self._core.stats.requests:
            if request.ok and not request.write:
                key = (request.unit_id, request.table, request.address, request.count)
                counts[key] = counts.get(key, 0) + 1
        clusters = []
        for block in self._planning.plan(enabled):
            end = block.address + block.count
            hits = sum(
                n for (u, t, a, c), n in counts.items()
                if u == block.unit_id and t == block.table and a < end and a + c > block.address
            )  # fmt: skip
            clusters.append(
                ClusterSnapshot(
                    unit_id=block.unit_id,
                    table=block.table,
                    address=block.address,
                    count=block.count,
                    uids=block.keys,
                    min_interval=min(self._regs[u].model.interval for u in block.keys),
                    requests=hits,
                )
            )
        return tuple(clusters)
