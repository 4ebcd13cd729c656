"""Where adaptive spends: requests per register, and what each one buys.

``python -m benchmarks.attribution demo`` runs adaptive on one scenario (one seeded
phase, as ``scripts/bench --phases 1``) and the fixed-per-entity sweep, then prints
per register: the requests it caused (each planned request split among the
registers due in it; ``sole``: requests it was the only due register of; the
bisections and retries after a refused read are not planned and not counted), how
often it was read
as a due register, early (a neighbour nearly due, pulled into a planned read) or
as a rider (inside a read's span, not asked for), its own time out of tolerance,
that at the sweep's longest interval, and the requests per hour it costs above one
read per longest interval for each percentage point of time in tolerance it buys
over that (``req/pp``; a dash where it buys under 0.05 points).

Scenarios with a ``day`` mask (pv) also split each register's requests into day
and night (``night``: its share of the requests planned at night, per night hour)
and print the requests per hour of the run by day and by night, with the floor the
configured maximum interval sets at night (one read per table every maximum
interval: ``python -m benchmarks.attribution pv``).

Below the table, the **bus time by what it moved** (:class:`Breakdown`): each
planned read's time split into its request overhead and its words (bits on a bit
table) by kind: due, early (a nearly due neighbour the plan took in), rider (a
neighbour the read grew over, ``planning.RIDER_VALUE``), passenger (a register
inside the span, not asked for) and gap (an address of no register), and for the
due, early and rider reads how many found the value moved beyond its tolerance
since the register's previous planned read (``paid``: the read fixed a stale
value). The bisections and retries after a refused read are not counted. Then
the same per unit and table (:class:`GroupBooks`): its requests, its due, early
and rider reads with the share that paid, and the requests none of whose asked
reads paid.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import Iterator, Sequence, Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
import math
import sys
from typing import Any

from adaptive_modbus_engine.planner import BlockRead
from adaptive_modbus_engine.planning import Planning
from adaptive_modbus_engine.registry import RegisterState

from . import policies as pol
from .metrics import compute
from .oracle import night_floor, thresholds
from .run import DEFAULT_SCENARIOS, build_scenarios, parse_args, phases_of
from .scenarios import Scenario
from .simulate import run_engine

MAX_INTERVAL = 300.0  # s: the adaptive policy's maximum (pol.standard's default)
MIN_GAIN = 0.05  # percentage points of time in tolerance worth a cost figure


@dataclass
class RegisterCost:
    """What one register cost and bought in one run (per hour where a rate)."""

    uid: str
    requests: float = 0.0  # requests caused, split among the due registers
    bus_s: float = 0.0  # bus seconds caused, split the same way
    sole: float = 0.0  # requests it was the only due register of
    due: float = 0.0  # reads as a due register
    early: float = 0.0  # reads pulled in early
    rider: float = 0.0  # reads inside a span it was not asked for in
    tot_pct: float | None = None  # its time out of tolerance, %
    tot_slowest: float | None = None  # the same read alone every longest interval
    night: float = 0.0  # requests caused at night (scenarios with a ``day`` mask)

    def per_point(self, slowest: float) -> float | None:
        """Return the requests per hour above one per ``slowest`` s, per point bought."""
        if self.tot_pct is None or self.tot_slowest is None:
            return None
        gain = self.tot_slowest - self.tot_pct
        if gain < MIN_GAIN:
            return None
        return (self.requests - 3600.0 / slowest) / gain


#: what a planned read moves, in the order the breakdown prints them
KINDS = ("due", "early", "rider", "passenger", "gap")
#: the kinds read because they were asked for (``paid`` counts their reads)
ASKED = ("due", "early", "rider")


@dataclass
class GroupBooks:
    """One (unit, table)'s planned requests and its asked reads, paid or not (totals)."""

    requests: int = 0
    bus_s: float = 0.0
    reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASKED, 0))
    paid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASKED, 0))
    #: requests none of whose due, early or rider reads paid
    unpaid_requests: int = 0


@dataclass
class Breakdown:
    """Bus time of the planned reads by what it moved (totals over the run)."""

    requests: int = 0
    overhead_s: float = 0.0  # the requests' fixed part (frames, silences, turnaround)
    words: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    bus_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    reads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASKED, 0))
    paid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ASKED, 0))
    #: the same per (unit id, table name)
    groups: dict[tuple[int, str], GroupBooks] = field(default_factory=dict)

    def group_text(self, hours: float) -> str:
        """Return the asked reads and how many paid per unit and table, per hour."""
        lines = [
            (
                "asked reads per unit and table (per hour; paid: found a change beyond "
                "tolerance; unpaid req: requests none of whose asked reads paid):"
            )
        ]
        for (unit, table), books in sorted(self.groups.items()):
            cells = " ".join(
                f"{kind} {books.reads[kind] / hours:7.1f} "
                f"({100.0 * books.paid[kind] / max(books.reads[kind], 1):4.1f} %)"
                for kind in ASKED
            )
            lines.append(
                f"  unit {unit:3d} {table:8s} {books.requests / hours:7.1f} req/h "
                f"{books.bus_s / hours:6.2f} bus s/h, unpaid req "
                f"{books.unpaid_requests / hours:7.1f}; {cells}"
            )
        return "\n".join(lines)

    def text(self, hours: float) -> str:
        """Return the breakdown per hour of the run."""
        total = self.overhead_s + sum(self.bus_s.values())
        head = (
            f"bus time by what it moved: {self.requests / hours:,.1f} req/h, "
            f"{total / hours:.2f} bus s/h, overhead {self.overhead_s / hours:.2f}"
        )
        lines = [head]
        for kind in KINDS:
            line = (
                f"  {kind:9s} {self.words[kind] / hours:9.1f} words/h "
                f"{self.bus_s[kind] / hours:6.2f} bus s/h"
            )
            if kind in ASKED:
                reads = self.reads[kind]
                line += (
                    f" {reads / hours:8.1f} reads/h, paid "
                    f"{self.paid[kind] / hours:7.1f} "
                    f"({100.0 * self.paid[kind] / max(reads, 1):.1f} %)"
                )
            lines.append(line)
        return "\n".join(lines)


@dataclass
class _Tally:
    """Per register counts while a run goes (totals, not yet per hour)."""

    costs: dict[str, RegisterCost] = field(default_factory=dict)
    #: planned requests per hour of the run (index: whole hours since its start)
    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    breakdown: Breakdown = field(default_factory=Breakdown)
    #: the keys the rider growth added in the cycle being planned
    riders: set[str] = field(default_factory=set)
    #: per uid: the second of the run of its last planned read
    last_read: dict[str, int] = field(default_factory=dict)

    def cost(self, uid: str) -> RegisterCost:
        return self.costs.setdefault(uid, RegisterCost(uid))


@contextmanager
def _watching(scenario: Scenario, tally: _Tally) -> Iterator[None]:
    """Count every planned read's due, early and riding registers."""
    plan = Planning.plan_with_early
    grow = Planning._with_free_riders  # noqa: SLF001
    by_table: dict[tuple[int, object], list[tuple[int, int, str]]] = defaultdict(list)
    row_of: dict[str, int] = {}
    for row, spec in enumerate(scenario.specs):
        by_table[(spec.unit_id, spec.table)].append(
            (spec.address, spec.address + spec.size, spec.uid)
        )
        row_of[spec.uid] = row
    limit = thresholds(scenario.specs)
    truth = scenario.truth
    last_second = truth.shape[1] - 1
    books = tally.breakdown

    def grown(
        self: Planning,
        blocks: list[BlockRead],
        now: float,
        limits: Any,
        cost: Any,
    ) -> list[BlockRead]:
        out = grow(self, blocks, now, limits, cost)
        before = {key for block in blocks for key in block.keys}
        tally.riders.update(key for block in out for key in block.keys)
        tally.riders.difference_update(before)
        return out

    def moved(uid: str, second: int) -> bool:
        """Whether the value moved beyond tolerance since the last planned read."""
        row = row_of[uid]
        last = tally.last_read.get(uid)
        if last is None:
            return True
        now_value, then = truth[row, second], truth[row, last]
        if math.isnan(now_value) or math.isnan(then):
            return False
        return bool(abs(now_value - then) > limit[row])

    def book(block: BlockRead, asked: AbstractSet[str], second: int) -> None:
        """Split one planned read's bus time by what it moved."""
        seconds = scenario.bus.read_time(block.table, block.count)
        per_unit = (
            scenario.bus.read_time(block.table, block.count + 8) - seconds
        ) / 8.0
        books.requests += 1
        books.overhead_s += seconds - per_unit * block.count
        group = books.groups.setdefault(
            (block.unit_id, block.table.value), GroupBooks()
        )
        group.requests += 1
        group.bus_s += seconds
        paid_any = False
        covered: set[int] = set()
        end = block.address + block.count
        keys = set(block.keys)
        for start, stop, uid in by_table[(block.unit_id, block.table)]:
            if start < block.address or stop > end:
                continue
            # bits of one word share it: the word counts once, for the first
            words = len(set(range(start, stop)) - covered)
            covered.update(range(start, stop))
            if uid not in keys:
                kind = "passenger"
            elif uid in asked:
                kind = "due"
            elif uid in tally.riders:
                kind = "rider"
            else:
                kind = "early"
            books.words[kind] += words
            books.bus_s[kind] += per_unit * words
            if kind in ASKED:
                paid = moved(uid, second)
                books.reads[kind] += 1
                books.paid[kind] += paid
                group.reads[kind] += 1
                group.paid[kind] += paid
                paid_any = paid_any or paid
            tally.last_read[uid] = second
        group.unpaid_requests += not paid_any
        books.words["gap"] += block.count - len(covered)
        books.bus_s["gap"] += per_unit * (block.count - len(covered))

    def watched(
        self: Planning,
        due: list[RegisterState],
        now: float,
        uids: AbstractSet[str] | None = None,
    ) -> list[BlockRead]:
        tally.riders.clear()
        blocks = plan(self, due, now, uids)
        asked = {reg.spec.uid for reg in due}
        second = int(now - scenario.start)
        for block in blocks:
            book(block, asked, min(max(second, 0), last_second))
        night = scenario.day is not None and not bool(
            scenario.day[min(max(second, 0), len(scenario.day) - 1)]
        )
        tally.hourly[second // 3600] += len(blocks)
        for block in blocks:
            keys = set(block.keys)
            due_here = keys & asked
            cause = due_here or keys
            seconds = scenario.bus.read_time(block.table, block.count)
            for uid in cause:
                cost = tally.cost(uid)
                cost.requests += 1.0 / len(cause)
                cost.bus_s += seconds / len(cause)
                if night:
                    cost.night += 1.0 / len(cause)
            if len(due_here) == 1:
                tally.cost(next(iter(due_here))).sole += 1.0
            for uid in due_here:
                tally.cost(uid).due += 1.0
            for uid in keys - asked:
                tally.cost(uid).early += 1.0
            end = block.address + block.count
            for start, stop, uid in by_table[(block.unit_id, block.table)]:
                if start >= block.address and stop <= end and uid not in keys:
                    tally.cost(uid).rider += 1.0
        return blocks

    Planning.plan_with_early = watched  # type: ignore[method-assign]
    Planning._with_free_riders = grown  # type: ignore[method-assign]  # noqa: SLF001
    try:
        yield
    finally:
        Planning.plan_with_early = plan  # type: ignore[method-assign]
        Planning._with_free_riders = grow  # type: ignore[method-assign]  # noqa: SLF001


def attribute(scenario: Scenario, *, seed: int = 42) -> list[RegisterCost]:
    """Run adaptive (its first seeded phase) and the fixed sweep; cost per register."""
    return attribute_run(scenario, seed=seed)[0]


def attribute_run(
    scenario: Scenario,
    *,
    seed: int = 42,
    breakdown: Breakdown | None = None,
    phase_index: int = 0,
) -> tuple[list[RegisterCost], dict[int, float]]:
    """Return :func:`attribute`'s costs and the planned requests per hour of the run.

    ``breakdown``: filled with the run's bus time by what it moved (totals);
    ``phase_index``: which of adaptive's seeded phases (``scripts/bench --phases``).
    """
    config = pol.standard(scenario.limits)
    adaptive = next(p for p in config if p.name == pol.ADAPTIVE).config
    assert adaptive is not None
    tally = _Tally(breakdown=Breakdown() if breakdown is None else breakdown)
    phase = phases_of(seed, pol.ADAPTIVE, phase_index + 1)[phase_index]
    with _watching(scenario, tally):
        record = asyncio.run(run_engine(scenario, adaptive, pol.ADAPTIVE, phase=phase))
    tot = compute(scenario, record).tot_per_register
    slowest = max(scenario.sweep)
    policy = pol.fixed(slowest, scenario.limits)
    assert policy.config is not None
    alone = compute(
        scenario,
        asyncio.run(
            run_engine(
                scenario,
                policy.config,
                policy.name,
                phase=phases_of(seed, policy.name, 1)[0],
            )
        ),
    ).tot_per_register
    hours = scenario.duration / 3600.0
    night_hours = max(day_night_hours(scenario)[1], 1e-9)
    out = []
    for row, spec in enumerate(scenario.specs):
        cost = tally.costs.get(spec.uid, RegisterCost(spec.uid))
        for name in ("requests", "bus_s", "sole", "due", "early", "rider"):
            setattr(cost, name, getattr(cost, name) / hours)
        cost.night /= night_hours
        cost.tot_pct, cost.tot_slowest = tot[row], alone[row]
        out.append(cost)
    return sorted(out, key=lambda c: -c.requests), dict(tally.hourly)


def day_night_hours(scenario: Scenario) -> tuple[float, float]:
    """Return the hours of daylight and of night in the run (all day without a mask)."""
    hours = scenario.duration / 3600.0
    if scenario.day is None:
        return hours, 0.0
    day = float(scenario.day[: scenario.duration].sum()) / 3600.0
    return day, hours - day


def day_night_table(
    scenario: Scenario, hourly: dict[int, float], max_interval: float
) -> str:
    """Return the planned requests per hour of the run, day or night, and the night floor."""
    assert scenario.day is not None
    day = scenario.day
    rows = []
    for hour in range(math.ceil(scenario.duration / 3600)):
        lit = day[hour * 3600 : min((hour + 1) * 3600, scenario.duration)]
        share = float(lit.mean()) if len(lit) else 0.0
        kind = "day" if share >= 1.0 else "night" if share <= 0.0 else "dawn/dusk"
        rows.append(f"  hour {hour:3d} {kind:9s} {hourly.get(hour, 0.0):6.0f}")
    floor = night_floor(scenario, max_interval)
    return "\n".join(
        [
            "planned requests per hour of the run:",
            *rows,
            (
                f"night floor under the {max_interval:g} s maximum: {floor:.1f} req/h "
                "(one read per table per maximum interval)"
            ),
        ]
    )


def table(costs: Sequence[RegisterCost], slowest: float) -> str:
    """Return the costs as a fixed-width table."""

    def num(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    head = (
        f"{'register':32s} {'req/h':>7s} {'bus s/h':>7s} {'sole':>6s} {'due':>6s}"
        f" {'early':>6s} {'rider':>6s} {'tot %':>6s} {f'@{slowest:g}s':>6s}"
        f" {'req/pp':>7s} {'night':>6s}"
    )
    rows = [
        f"{c.uid:32s} {c.requests:7.1f} {c.bus_s:7.2f} {c.sole:6.1f} {c.due:6.1f}"
        f" {c.early:6.1f} {c.rider:6.1f} {num(c.tot_pct, 2):>6s}"
        f" {num(c.tot_slowest, 2):>6s} {num(c.per_point(slowest)):>7s}"
        f" {c.night:6.1f}"
        for c in costs
    ]
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Print the cost table of each scenario named."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", help=f"comma-separated from {','.join(DEFAULT_SCENARIOS)}"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--phase", type=int, default=0, help="adaptive's seeded phase: 0, 1, 2 ..."
    )
    args = parser.parse_args(argv)
    for scenario in build_scenarios(
        parse_args(["--scenarios", args.scenarios, "--seed", str(args.seed)])
    ):
        books = Breakdown()
        costs, hourly = attribute_run(
            scenario, seed=args.seed, breakdown=books, phase_index=args.phase
        )
        sys.stdout.write(f"{scenario.name}: {scenario.title}\n")
        sys.stdout.write(table(costs, max(scenario.sweep)) + "\n")
        sys.stdout.write(books.text(scenario.duration / 3600.0) + "\n")
        sys.stdout.write(books.group_text(scenario.duration / 3600.0) + "\n")
        if scenario.day is not None:
            sys.stdout.write(day_night_table(scenario, hourly, MAX_INTERVAL) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
