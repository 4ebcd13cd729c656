"""Correlated registers: when one register of a unit moves, read its partners too.

A meter's power, current and energy move together; a heat pump's compressor state,
power and flow temperature too. When one of them is read and has moved beyond its
resolution (``max(tolerance, noise)``) since its previous read, its learned partners
that were not read with it have probably moved as well: they ride on the next cycle
(planned with whatever else is due; at most their minimum interval later) instead
of waiting until their own, possibly long, interval runs out.

The correlation is learned online from the engine's own reads, per register and per
unit, with counts that stay small:

- a **co-move**: two registers of the same unit read in the same cycle that both
  moved; the first co-move makes the other a candidate partner (at most
  :data:`MAX_PARTNERS` per register; a weak one gives way to a new one);
- for every candidate partner read in the same cycle as a move: did it move too
  (``co``) or not (``miss``);
- for a partner read because of a move (a *partner read*): did the read find it
  moved (``co``) or not (``miss``), so a partner that is pulled in for nothing
  loses its place.

A partner is pulled in when it co-moved at least :data:`MIN_CO_MOVES` times and in
at least :data:`MIN_SHARE` of the observations (counts halve past
:data:`MAX_COUNT`, so it follows a changed installation). It is not pulled while it
was read less than its minimum interval ago. The counts are not persisted: they are
relearned within hours of polling (a restart starts without partners).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .cadence import rest_after_early_read
from .core import EngineCore
from .registers import Value

#: candidate partners kept per register
MAX_PARTNERS = 8
#: co-moves a partner needs before it is pulled in
MIN_CO_MOVES = 3
#: share of the observations (co-moves / all) a partner needs to be pulled in
MIN_SHARE = 0.5
#: counts halve when a partner's observations exceed this (recent behaviour wins)
MAX_COUNT = 64
#: moved registers of one unit in one cycle that look for new partners
MAX_DISCOVERY = 32
#: partners only among the registers of one unit (False: across the connection)
SAME_UNIT = True


@dataclass(slots=True)
class _Partner:
    co: float = 0.0  # observations in which the partner moved too
    miss: float = 0.0  # observations in which it was read and had not moved

    def observe(self, moved: bool) -> None:
        if moved:
            self.co += 1.0
        else:
            self.miss += 1.0
        if self.co + self.miss > MAX_COUNT:
            self.co /= 2.0
            self.miss /= 2.0

    @property
    def share(self) -> float:
        total = self.co + self.miss
        return self.co / total if total else 0.0

    @property
    def strong(self) -> bool:
        return self.co >= MIN_CO_MOVES and self.share >= MIN_SHARE


@dataclass(slots=True)
class CorrelationStats:
    """What the correlation did so far (for tests, diagnostics and the benchmark)."""

    moves: int = 0  # reads that found a register moved beyond its resolution
    partner_reads: int = 0  # partners made due because a partner moved
    partner_hits: int = 0  # partner reads that found the partner moved
    partners: dict[str, dict[str, float]] = field(default_factory=dict)


class Correlation:
    """Learns which registers of a unit move together; pulls in partners of a move."""

    def __init__(self, core: EngineCore) -> None:
        """Watch the reads of ``core`` (registers itself as a read listener)."""
        self._core = core
        self._regs = core.registry.regs
        self._last: dict[str, Value] = {}  # value at each register's previous read
        self._moved: list[str] = []  # moved in this cycle, in read order
        self._still: list[str] = []  # read in this cycle and not moved (pulled only)
        self._partners: dict[str, dict[str, _Partner]] = {}
        # partner read pending -> the registers whose move pulled it in
        self._pulled: dict[str, list[str]] = {}
        self.stats = CorrelationStats()
        core.read_listeners.append(self._on_read)

    @property
    def enabled(self) -> bool:
        """Whether partners are pulled in (adaptive engines with correlated reads on)."""
        config = self._core.config
        return config.adaptive and config.correlated_reads

    def partners(self, uid: str) -> dict[str, float]:
        """Return a register's candidate partners and the share of co-moves of each."""
        return {
            other: round(p.share, 3) for other, p in self._partners.get(uid, {}).items()
        }

    def strong_partners(self, uid: str) -> list[str]:
        """Return the partners a move of ``uid`` pulls in now."""
        return [other for other, p in self._partners.get(uid, {}).items() if p.strong]

    def _on_read(
        self, uid: str, t: float, value: Value | None, previous_read: float | None
    ) -> None:
        """Note whether a read found the register moved beyond its resolution."""
        if value is None:
            return
        last = self._last.get(uid)
        self._last[uid] = value
        if last is None or (value == last and uid not in self._pulled):
            return  # the common case: nothing moved, nobody waits for this read
        reg = self._regs[uid]
        if (
            isinstance(value, bool | str)
            or isinstance(last, bool | str)
            or not reg.spec.is_numeric
        ):
            moved = value != last
        else:
            moved = abs(value - last) > reg.model.resolution
        if moved:
            self._moved.append(uid)
        elif uid in self._pulled:
            self._still.append(uid)

    def end_cycle(self, started: float, now: float) -> list[str]:
        """Learn from the cycle's reads; make the partners of its moves due soon.

        ``started``: engine time the cycle began (a register read since then was
        read in it). Returns the partners made due.
        """
        moved, self._moved = self._moved, []
        still, self._still = self._still, []
        if not moved and not still and not self._pulled:
            return []
        regs = self._regs
        self.stats.moves += len(moved)
        moved_set = set(moved)
        # partner reads resolved: did the pulled register move?
        for uid in (*moved, *still):
            sources = self._pulled.pop(uid, None)
            if sources is None:
                continue
            hit = uid in moved_set
            if hit:
                self.stats.partner_hits += 1
            rest_after_early_read(self._core.schedule, self._regs[uid])
            for source in sources:
                pulled_by = self._partners.get(source, {}).get(uid)
                if pulled_by is not None:
                    pulled_by.observe(hit)
        by_unit: dict[int | None, list[str]] = {}
        for uid in moved:
            unit = regs[uid].spec.unit_id if SAME_UNIT else None
            by_unit.setdefault(unit, []).append(uid)
        for uids in by_unit.values():
            self._learn(uids, moved_set, started)
        if not self.enabled:
            self._pulled.clear()
            return []
        return self._pull(moved, started, now)

    def _learn(self, moved: list[str], moved_set: set[str], started: float) -> None:
        """Count co-moves and misses among the registers of one unit read this cycle."""
        regs = self._regs
        for uid in moved:
            known = self._partners.get(uid)
            if known:
                for other, seen in known.items():
                    last = regs[other].last_read
                    if other not in moved_set and last is not None and last >= started:
                        seen.observe(False)
        discover = moved[:MAX_DISCOVERY]
        for uid in discover:
            partners = self._partners.setdefault(uid, {})
            for other in discover:
                if other == uid:
                    continue
                partner = partners.get(other)
                if partner is None:
                    if len(partners) >= MAX_PARTNERS:
                        weakest = min(partners, key=lambda k: partners[k].share)
                        if partners[weakest].share >= MIN_SHARE:
                            continue
                        del partners[weakest]
                    partner = partners[other] = _Partner()
                partner.observe(True)

    def _pull(self, moved: Iterable[str], started: float, now: float) -> list[str]:
        """Make the strong partners of the moved registers due with the next cycle.

        The next cycle that goes out anyway, or a minimum interval from ``now``
        when none does sooner (no wake-up of its own for a partner).
        """
        regs = self._regs
        schedule = self._core.schedule
        # ride on the next cycle that goes out anyway, at most a minimum interval on
        next_cycle = max(now, schedule.first_due())
        pulled: list[str] = []
        for uid in moved:
            partners = self._partners.get(uid)
            if not partners:
                continue
            for other, partner in partners.items():
                if not partner.strong:
                    continue
                reg = regs[other]
                last = reg.last_read
                at = min(next_cycle, now + reg.model.limits.min_interval)
                if (
                    last is None
                    or last >= started  # read with it
                    or not schedule.may_advance(reg)
                    or reg.next_due <= at
                    or at - last < reg.model.limits.min_interval
                ):
                    if other in self._pulled and uid not in self._pulled[other]:
                        self._pulled[other].append(uid)
                    continue
                schedule.due_at(reg, at)
                self._pulled.setdefault(other, []).append(uid)
                pulled.append(other)
        self.stats.partner_reads += len(pulled)
        return pulled
