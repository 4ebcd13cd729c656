"""The oracle: knows the future, the physical-limit reference.

At every second it reads exactly the registers whose true value has just left the
tolerance band around the value it last read (for tolerance 0: any change), with
the optimal blocks of the real planner (``engine.planner.plan_reads``, cost model
exact for the bus). Registers lying inside a chosen block are refreshed for free
(riders). It also reads every change of the truth beyond tolerance at once (the
truth leaving the band around its value at the previous change, as the detection
delay counts them), so it follows the truth, not only its own band: its time out of
tolerance and its detection delay are both 0. It starts with one read of
everything, knows the device's holes and never re-reads a value that stays in its
band (no heartbeat).

Reading each register at the very second it leaves its band minimises staleness but
not requests: independent drifts each cost a request of their own. ``lookahead``
gives the batching variant (``oracle-batched``): when a unit's table is read anyway,
registers of it that will leave their band within the next ``lookahead`` seconds are
read in the same plan, so their exits share requests. It still never misses.

``grace`` gives the lenient variant (``oracle-lenient``, swept): it still knows the
future and batches like ``oracle-batched``, but it may leave a value out of its band
for up to ``grace`` seconds (a register is read once it has been out of its band for
``grace`` s, a change beyond tolerance at most ``grace`` s after it). Swept over
``grace`` it draws the clairvoyant frontier: what a poller that knows the future
needs at a given time out of tolerance, the reference for "at equal freshness".

``max_interval`` holds every variant to the bound every real policy keeps: no
register goes longer than its maximum interval (its map's ``max_interval``, else
this one) without a read, so a flat value is still read once per maximum
interval: when one value's bound runs out, its table is read with every value of
it at least half way to its own bound (the oracle does not know when such a read
would pay best; it is a reference, not a proven lower bound). The benchmark runs the
oracles with adaptive's maximum (300 s by default); ``None`` (no bound) is the
oracle as it was before, which read a flat night nothing at all and so made any
poller that keeps a maximum look worse than it can be.
It does not keep the minimum interval: it reads a register as often as every
second, which costs it requests, not freshness.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from adaptive_modbus_engine.planner import plan_reads
from adaptive_modbus_engine.registers import RegisterSpec, Table

from .scenarios import Scenario
from .simulate import Progress, RunRecord


def scenario_exits(scenario: Scenario) -> list[NDArray[np.int64]]:
    """Return the truth's changes beyond tolerance per row (see :mod:`benchmarks.metrics`)."""
    from .metrics import scenario_exits as exits  # noqa: PLC0415 - metrics imports oracle

    return exits(scenario)


GroupKey = tuple[int, Table]


def thresholds(specs: tuple[RegisterSpec, ...]) -> NDArray[np.float64]:
    """Per row: the change that counts as 'beyond tolerance' (tiny for tolerance 0)."""
    return np.array([spec.tolerance if spec.tolerance > 0 else 1e-9 for spec in specs])


def night_floor(scenario: Scenario, max_interval: float) -> float:
    """Return the fewest requests per hour that keep every register within ``max_interval``.

    One read per unit's table every ``max_interval`` seconds (a table read whole in
    one request, as the pv inverter's are): what a flat night costs any poller that
    keeps the configured maximum interval, the oracle held to it included.
    """
    tables = {(spec.unit_id, spec.table) for spec in scenario.specs}
    return len(tables) * 3600.0 / max_interval


def run_oracle(
    scenario: Scenario,
    *,
    progress: bool = False,
    lookahead: int = 0,
    grace: int = 0,
    name: str = "oracle",
    max_interval: float | None = None,
) -> RunRecord:
    """Simulate the oracle on the scenario's ground truth at 1-second resolution."""
    if grace < 0:
        raise ValueError(f"grace must be >= 0 s, got {grace}")
    if max_interval is not None and not max_interval >= 1:
        raise ValueError(f"max_interval must be >= 1 s, got {max_interval}")
    specs = scenario.specs
    truth = scenario.truth
    rows: dict[str, int] = {}
    for row, spec in enumerate(specs):
        rows[spec.key] = row
        rows[spec.uid] = row
    groups: dict[GroupKey, list[RegisterSpec]] = {}
    group_rows: dict[GroupKey, list[int]] = {}
    for row, spec in enumerate(specs):
        groups.setdefault((spec.unit_id, spec.table), []).append(spec)
        group_rows.setdefault((spec.unit_id, spec.table), []).append(row)
    cost = scenario.bus.cost_model()
    holes = {key: set(value) for key, value in scenario.holes.items()}
    limits = dict(scenario.limits)
    tol = thresholds(specs)
    valid = ~np.isnan(truth[:, 0])
    record = RunRecord(policy=name, reads=[([], []) for _ in specs])
    last = truth[:, 0].copy()
    # per row: the second its shown value left its band (-1: in band), its last read
    out_since = np.full(len(specs), -1, dtype=np.int64)
    last_read = np.zeros(len(specs), dtype=np.int64)
    # per row: the longest a value may go unread (inf: no bound)
    longest = np.full(len(specs), np.inf)
    if max_interval is not None:
        longest = np.array([spec.max_interval or max_interval for spec in specs])
    bar = Progress(f"{scenario.name} / {name}", scenario.duration, progress)

    def soon(second: int, due_rows: list[int]) -> list[int]:
        """Due rows plus rows of the same groups leaving their band within ``lookahead``."""
        touched = {(specs[row].unit_id, specs[row].table) for row in due_rows}
        extra = set(due_rows)
        for key in touched:
            rows = np.array(group_rows[key])
            window = truth[rows, second : second + lookahead + 1]
            leaving = (np.abs(window - last[rows, None]) > tol[rows, None]).any(axis=1)
            extra.update(int(row) for row in rows[leaving & valid[rows]])
        return sorted(extra)

    def read(second: int, due_rows: list[int]) -> None:
        if lookahead > 0:
            due_rows = soon(second, due_rows)
        due = [specs[row] for row in due_rows]
        touched = {(spec.unit_id, spec.table) for spec in due}
        riders = [spec for key in touched for spec in groups[key]]
        blocks = plan_reads(due, riders=riders, cost=cost, limits=limits, holes=holes)
        when = scenario.start + second
        requests = 0
        for block in blocks:
            requests += 1
            record.registers += block.count
            seconds = scenario.bus.read_time(block.table, block.count)
            record.bus_time += seconds
            record.sent(when, seconds)
            for key in block.keys:
                row = rows[key]
                last[row] = truth[row, second]
                out_since[row] = -1
                last_read[row] = second
                times, values = record.reads[row]
                times.append(when)
                values.append(float(truth[row, second]))
        record.requests += requests
        record.cycles += 1
        record.timeline.append((when, requests))

    # every change of the truth beyond tolerance (the metrics' band exits) is read
    # within ``grace`` too, even when a rider read left the shown value in its band
    exits_at: dict[int, list[int]] = {}
    for row, seconds in enumerate(scenario_exits(scenario)):
        for second in seconds.tolist():
            exits_at.setdefault(second + grace, []).append(row)
    read(0, list(range(len(specs))))
    for second in range(1, scenario.duration + 1):
        column = truth[:, second]
        moved = (np.abs(column - last) > tol) & valid
        out_since[moved & (out_since < 0)] = second
        out_since[~moved] = -1
        due = moved & (second - out_since >= grace)
        for row in exits_at.get(second, ()):
            if last_read[row] < second - grace:
                due[row] = True
        stale = second - last_read >= longest
        if stale.any():
            # a table's heartbeat takes along its rows at least half way to theirs,
            # so a flat table costs one read per maximum interval, not one per row
            half = second - last_read >= longest / 2
            for key in {
                (specs[row].unit_id, specs[row].table) for row in np.flatnonzero(stale)
            }:
                rows_of = np.array(group_rows[key])
                due[rows_of[half[rows_of]]] = True
        due &= valid
        if due.any():
            read(second, [int(row) for row in np.flatnonzero(due)])
        if second % 600 == 0:
            bar.update(second)
    bar.close()
    return record
