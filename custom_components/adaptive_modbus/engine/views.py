"""System, device, register and cluster views, and the JSON export of all of them.

Every view is a JSON-safe dict built only from the engine's public read API
(:class:`EngineSnapshot`, :meth:`PollEngine.cost_model`) and a :class:`History`.
The shapes are written down in ``schema/visualization.schema.json``; times are
wall-clock seconds since the epoch (UTC) unless a field says ``_iso``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import math
from pathlib import Path
from typing import Any

from .analytics import Analytics
from .history import History, single_read_seconds
from .palette import DEFAULT_PALETTE, Palette
from .planner import CostModel
from .registers import Table, Value
from .stats import EngineSnapshot, RegisterSnapshot

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).parent / "schema" / "visualization.schema.json"
DEFAULT_PERIOD = 24 * 3600.0
VIEWS = ("system", "device", "register", "cluster")
# health: an error rate above this (percent of requests in the rate window) degrades
ERROR_RATE_DEGRADED = 5.0
# a block member whose interval is at least this many times the block's fastest rides along
RIDER_FACTOR = 2.0


@dataclass(frozen=True, slots=True)
class Source:
    """What the views of one connection are made from."""

    snapshot: EngineSnapshot
    history: History
    cost: CostModel
    name: str = ""
    palette: Palette = DEFAULT_PALETTE
    analytics: Analytics | None = None  # forecast errors per register


def _num(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def _value(value: Value | None) -> bool | int | float | str | None:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat()


def _now(source: Source) -> float:
    return source.snapshot.to_wall(source.snapshot.at)


def _enabled(snapshot: EngineSnapshot) -> list[RegisterSnapshot]:
    return [r for r in snapshot.registers.values() if r.enabled]


def static_blocks_per_minute(snapshot: EngineSnapshot) -> float:
    """Estimate requests per minute of static block polling at the fixed interval.

    Estimated from the plan: the blocks the planner makes when every enabled register
    is due (``snapshot.clusters``, with the learned holes and limits), each read once
    per ``fixed_interval``, or as often as the shortest of its registers' own bounds
    asks (``EngineSnapshot.fixed_interval_of``): the best a hand-written static block
    list can do.
    """
    if snapshot.fixed_interval <= 0:
        return 0.0
    registers = snapshot.registers
    return sum(
        60.0 / min(snapshot.fixed_interval_of(registers[uid]) for uid in cluster.uids)
        for cluster in snapshot.clusters
    )


def _saving(actual: float, baseline: float) -> float | None:
    if baseline <= 0:
        return None
    return round(max(-1000.0, 100.0 * (1.0 - actual / baseline)), 2)


def _classes(
    source: Source, registers: Sequence[RegisterSnapshot]
) -> list[dict[str, Any]]:
    total = len(registers)
    counts = dict.fromkeys((c.name for c in source.palette.classes), 0)
    for reg in registers:
        counts[source.palette.classify(reg.effective_interval).name] += 1
    return [
        {
            "name": c.name,
            "colour": c.colour,
            "upper": None if math.isinf(c.upper) else c.upper,
            "count": counts[c.name],
            "share": round(counts[c.name] / total, 4) if total else 0.0,
        }
        for c in source.palette.classes
    ]


def _health(snapshot: EngineSnapshot) -> dict[str, Any]:
    problems: list[str] = []
    quarantined = [
        r.uid for r in snapshot.registers.values() if r.quarantined_until is not None
    ]
    noisy = [r.uid for r in snapshot.registers.values() if r.noisy]
    if snapshot.units_down:
        problems.append(f"units not answering: {sorted(snapshot.units_down)}")
    if snapshot.error_rate > ERROR_RATE_DEGRADED:
        problems.append(f"error rate {snapshot.error_rate:.1f} %")
    if quarantined:
        problems.append(f"{len(quarantined)} registers quarantined")
    if noisy:
        problems.append(f"{len(noisy)} registers noisier than their tolerance")
    if snapshot.last_internal_error:
        problems.append(f"internal error: {snapshot.last_internal_error}")
    polled = {r.unit_id for r in _enabled(snapshot)}
    status = "ok"
    if problems:
        status = "degraded"
    if polled and polled <= set(snapshot.units_down):
        status = "down"
    return {
        "status": status,
        "problems": problems,
        "quarantined": quarantined,
        "noisy": noisy,
        "units_down": sorted(snapshot.units_down),
    }


def system_view(source: Source, period: float = DEFAULT_PERIOD) -> dict[str, Any]:
    """Connection-wide figures: interval classes, rates, savings, errors, health."""
    snap = source.snapshot
    now = _now(source)
    enabled = _enabled(snap)
    hours = source.history.hours(now - period)
    requests = sum(h.requests for h in hours)
    fixed = sum(h.fixed_requests for h in hours)
    seconds = sum(h.seconds for h in hours)
    static = static_blocks_per_minute(snap) * seconds / 60.0
    bus = sum(h.bus_time for h in hours)
    return {
        "view": "system",
        "connection": source.name,
        "at": now,
        "period": period,
        "registers": {"total": len(snap.registers), "enabled": len(enabled)},
        "interval_classes": _classes(source, enabled),
        "now": {
            "requests_per_minute": _num(snap.requests_per_minute),
            "bus_utilisation_percent": _num(snap.bus_utilisation),
            "registers_per_request": _num(snap.registers_per_request),
            "error_rate_percent": _num(snap.error_rate),
            "mean_latency_ms": _num(1000 * snap.mean_latency),
            "fixed_requests_per_minute": _num(snap.fixed_requests_per_minute),
            "static_blocks_requests_per_minute": _num(static_blocks_per_minute(snap)),
            "saving_vs_fixed_percent": _saving(
                snap.requests_per_minute, snap.fixed_requests_per_minute
            ),
            "saving_vs_static_blocks_percent": _saving(
                snap.requests_per_minute, static_blocks_per_minute(snap)
            ),
        },
        "period_totals": {
            "seconds": round(seconds, 1),
            "requests": requests,
            "registers_read": sum(h.registers_read for h in hours),
            "bus_time": round(bus, 3),
            "errors": sum(h.errors for h in hours),
            "fixed_requests": round(fixed, 1),
            "fixed_bus_time": round(sum(h.fixed_bus_time for h in hours), 3),
            "static_blocks_requests": round(static, 1),
            "bus_utilisation_percent": round(100 * bus / seconds, 3)
            if seconds
            else None,
            "saving_vs_fixed_percent": _saving(requests, fixed),
            "saving_vs_static_blocks_percent": _saving(requests, static),
        },
        "hourly": [
            {
                "start": h.start,
                "start_iso": _iso(h.start),
                "requests": h.requests,
                "requests_per_minute": round(60 * h.requests / h.seconds, 3)
                if h.seconds
                else None,
                "registers_read": h.registers_read,
                "bus_time": round(h.bus_time, 3),
                "errors": h.errors,
                "seconds": round(h.seconds, 1),
                "fixed_requests": round(h.fixed_requests, 1),
                "fixed_bus_time": round(h.fixed_bus_time, 3),
            }
            for h in hours
        ],
        "totals": {
            "cycles": snap.totals.cycles,
            "requests": snap.totals.requests,
            "registers_read": snap.totals.registers_read,
            "errors": snap.totals.errors,
            "writes": snap.totals.writes,
            "interval_changes": snap.totals.interval_changes,
        },
        "errors": [
            {
                "at": snap.to_wall(e.at),
                "kind": str(e.kind),
                "unit_id": e.unit_id,
                "table": None if e.table is None else str(e.table),
                "address": e.address,
                "message": e.message,
            }
            for e in snap.recent_errors
            if snap.to_wall(e.at) >= now - period
        ],
        "health": _health(snap),
        "palette": source.palette.as_dict(),
    }


def _trend(
    source: Source, reg: RegisterSnapshot, since: float, now: float
) -> dict[str, Any]:
    changes = source.history.interval_changes(reg.uid, since)
    first = changes[0].old if changes else reg.interval
    points = [(since, first), *((c.at, c.new) for c in changes), (now, reg.interval)]
    trend = source.palette.trend(points)
    return {
        "direction": trend.direction,
        "slope_doublings_per_hour": round(trend.slope, 4),
        "confidence": round(trend.confidence, 4),
        "points": trend.points,
    }


def _forecast_accuracy(source: Source, uid: str) -> dict[str, Any] | None:
    accuracy = (
        None if source.analytics is None else source.analytics.forecast_accuracy(uid)
    )
    return None if accuracy is None else accuracy.as_dict()


def _holes_of(snapshot: EngineSnapshot, unit_id: int, table: Table) -> list[int]:
    return list(snapshot.holes.get(f"{unit_id}.{table}", ()))


def register_view(
    source: Source, uid: str, period: float = DEFAULT_PERIOD
) -> dict[str, Any]:
    """One register: value, interval and why, models, pins, faults, histories, trend.

    Raises ``KeyError`` for an unknown uid.
    """
    snap = source.snapshot
    reg = snap.registers[uid]
    now = _now(source)
    since = now - period
    cls = source.palette.classify(reg.effective_interval)
    holes = _holes_of(snap, reg.unit_id, reg.table)
    return {
        "view": "register",
        "connection": source.name,
        "at": now,
        "period": period,
        "uid": uid,
        "key": reg.key,
        "unit_id": reg.unit_id,
        "table": str(reg.table),
        "address": reg.address,
        "size": reg.size,
        "enabled": reg.enabled,
        "value": _value(reg.value),
        "interval": _num(reg.interval),
        "effective_interval": _num(reg.effective_interval),
        "interval_class": cls.name,
        "colour": cls.colour,
        "reason": reg.reason,
        "detail": reg.detail,
        # a live view watches the unit (demand-driven polling; reason "viewed" when
        # that is what shortens the interval)
        "viewed": reg.unit_id in snap.viewed,
        "rate": _num(reg.rate),
        "noise": _num(reg.noise),
        "noisy": reg.noisy,
        "tolerance": _num(reg.tolerance),
        "last_read": reg.last_read,
        "age": None
        if reg.last_read is None
        else round(max(0.0, now - reg.last_read), 3),
        "last_change": reg.last_change,
        "next_due": reg.next_due,
        "reads": reg.reads,
        "changes": reg.changes,
        "errors": reg.errors,
        "forecast_accuracy": _forecast_accuracy(source, uid),
        "pins": [],  # no pins yet: the field is here so consumers need not change
        "quarantined_until": reg.quarantined_until,
        "holes_nearby": [
            a for a in holes if reg.address - 16 <= a < reg.address + reg.size + 16
        ],
        "pattern": {
            "factor": _num(reg.pattern_factor),
            # percent by which the time-of-week profile shortens (+) or lengthens (-)
            # the interval now
            "influence_percent": _num(100.0 * (1.0 - reg.pattern_factor)),
        },
        "trend": _trend(source, reg, since, now),
        "interval_history": [
            {"at": c.at, "old": c.old, "new": c.new, "reason": c.reason}
            for c in source.history.interval_changes(uid, since)
        ],
        "value_history": [
            {"at": s.at, "value": _value(s.value)}
            for s in source.history.read_samples(uid, since)
        ],
    }


def device_view(
    source: Source, unit_id: int, period: float = DEFAULT_PERIOD
) -> dict[str, Any]:
    """One unit id: its counters, state, holes and the register views of its registers.

    Raises ``KeyError`` when the connection has no register on ``unit_id``.
    """
    snap = source.snapshot
    uids = [uid for uid, r in snap.registers.items() if r.unit_id == unit_id]
    if not uids:
        raise KeyError(unit_id)
    totals = snap.units.get(unit_id)
    down = snap.units_down.get(unit_id)
    registers = [register_view(source, uid, period) for uid in uids]
    return {
        "view": "device",
        "connection": source.name,
        "at": _now(source),
        "period": period,
        "unit_id": unit_id,
        "requests": 0 if totals is None else totals.requests,
        "registers_read": 0 if totals is None else totals.registers_read,
        "errors": 0 if totals is None else totals.errors,
        "down_since": None if down is None else down.down_since,
        "viewers": snap.viewed.get(unit_id, 0),
        "holes": {
            str(t): _holes_of(snap, unit_id, t)
            for t in Table
            if _holes_of(snap, unit_id, t)
        },
        "interval_classes": _classes(
            source, [snap.registers[u] for u in uids if snap.registers[u].enabled]
        ),
        "registers": registers,
    }


def cluster_view(source: Source) -> dict[str, Any]:
    """Return the blocks the planner reads per unit and table, with their details."""
    snap = source.snapshot
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for block in snap.clusters:
        end = block.address + block.count
        members = [snap.registers[u] for u in block.uids if u in snap.registers]
        intervals = [m.effective_interval for m in members]
        fastest = min(intervals, default=0.0)
        # riders: registers refreshed for free when the block is read for its fastest
        # member: members with an interval at least RIDER_FACTOR longer, and enabled
        # registers inside the span that are not members
        riders = [
            m.uid
            for m in members
            if fastest > 0 and m.effective_interval >= RIDER_FACTOR * fastest
        ]
        riders += [
            r.uid
            for r in snap.registers.values()
            if r.unit_id == block.unit_id
            and r.table == block.table
            and r.enabled
            and r.uid not in block.uids
            and block.address <= r.address
            and r.address + r.size <= end
        ]
        due = [m.next_due for m in members if m.next_due is not None]
        lo, hi = (min(intervals), max(intervals)) if intervals else (0.0, 0.0)
        groups.setdefault((block.unit_id, str(block.table)), []).append(
            {
                "address": block.address,
                "end": end - 1,
                "count": block.count,
                "members": list(block.uids),
                "riders": riders,
                "holes": [
                    a
                    for a in _holes_of(snap, block.unit_id, block.table)
                    if block.address <= a < end
                ],
                "reads": block.requests,
                "min_interval": _num(block.min_interval),
                "interval_spread": {
                    "min": _num(lo),
                    "max": _num(hi),
                    # 1.0: every member comes due together (perfectly aligned)
                    "ratio": _num(hi / lo) if lo > 0 else None,
                },
                "next_due": min(due) if due else None,
            }
        )
    cost = source.cost
    return {
        "view": "cluster",
        "connection": source.name,
        "at": _now(source),
        "cost_model": {
            "request_overhead": cost.request_overhead,
            "per_register": cost.per_register,
            "per_bit": cost.per_bit,
            "break_even_gap_registers": cost.break_even_gap(bits=False),
            "single_read_seconds": _num(single_read_seconds(snap, cost)),
        },
        "tables": [
            {"unit_id": unit, "table": table, "blocks": blocks}
            for (unit, table), blocks in sorted(groups.items())
        ],
    }


def connection_dataset(
    source: Source, period: float = DEFAULT_PERIOD
) -> dict[str, Any]:
    """Every view of one connection."""
    units = sorted({r.unit_id for r in source.snapshot.registers.values()})
    return {
        "name": source.name,
        "system": system_view(source, period),
        "devices": [device_view(source, unit, period) for unit in units],
        "cluster": cluster_view(source),
    }


def export_dataset(
    sources: Sequence[Source],
    period: float = DEFAULT_PERIOD,
    generated_at: float | None = None,
) -> dict[str, Any]:
    """Build the full export: schema version, time and every view of every connection."""
    at = (
        generated_at
        if generated_at is not None
        else max((_now(s) for s in sources), default=0.0)
    )
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": at,
        "generated_at_iso": _iso(at),
        "period": period,
        "connections": [connection_dataset(s, period) for s in sources],
    }
