"""Remediation: concrete actions from what was measured, each with its numbers.

:func:`remediation` reads the engine snapshot (recent requests, errors, register
and unit states) and returns :class:`Remediation` items, most urgent first:

- ``check_unit``: every request to one unit fails while the connection works (or
  the unit stopped answering): wrong unit id or wiring;
- ``lower_max_registers``: reads above a size time out or are refused (exception
  3) while smaller reads answer: lower *max registers per read* to the largest
  size that answered (``params["max_registers"]``);
- ``add_pause`` / ``close_after_cycle``: the device answers "busy": add a pause
  between requests (``params["pause"]``), or close the connection after each
  cycle when it is shared;
- ``remove_register``: a register the device has always refused (named);
- ``bus_saturated``: the p95 latency crept up against its baseline while the bus
  is busy: poll less (raise the min interval) or split the bus (the figures).

``message`` is English for logs and reports; ``key``, ``figures`` and ``params``
are what a UI translates and a fix applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorKind
from ..stats import (
    RECENT_ERRORS,
    RECENT_REQUESTS,
    EngineSnapshot,
    ErrorRecord,
    RegisterSnapshot,
)

MIN_FAILURES = 3  # failures of a kind before anything is suggested
# large reads refused before a smaller block size is suggested (the engine halves its
# block size after the first refusal, so a device limited to N shows few of them)
MIN_LARGE_FAILURES = 2
SATURATION_RATIO = 1.5  # p95 over its baseline
SATURATION_UTILISATION = 30.0  # percent of the time the bus is busy
DEFAULT_PAUSE = 0.05  # s, suggested when none is configured
PRIORITY = {
    "check_unit": 0,
    "lower_max_registers": 1,
    "add_pause": 2,
    "close_after_cycle": 3,
    "remove_register": 4,
    "bus_saturated": 5,
}


@dataclass(frozen=True, slots=True)
class Remediation:
    """One suggested action, why (the figures), and what a fix would set."""

    key: str
    message: str
    unit_id: int | None = None
    uid: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe suggestion."""
        return {
            "key": self.key,
            "unit_id": self.unit_id,
            "uid": self.uid,
            "message": self.message,
            "figures": dict(self.figures),
            "params": dict(self.params),
        }


def _units(snapshot: EngineSnapshot) -> list[int]:
    return sorted({r.unit_id for r in snapshot.registers.values() if r.enabled})


def _check_unit(snapshot: EngineSnapshot, unit: int) -> Remediation | None:
    reqs = [r for r in snapshot.recent_requests if r.unit_id == unit]
    failed = sum(1 for r in reqs if not r.ok)
    others_ok = sum(1 for r in snapshot.recent_requests if r.unit_id != unit and r.ok)
    down = snapshot.units_down.get(unit)
    if down is None and (failed < MIN_FAILURES or failed < len(reqs)):
        return None
    where = (
        f"while {others_ok} requests to other units answered"
        if others_ok
        else "and no other unit answers either (check the connection too)"
    )
    return Remediation(
        "check_unit",
        f"unit {unit}: {failed} of {len(reqs)} recent requests failed {where}: "
        f"check that the device's unit id is {unit} and its wiring "
        "(A/B, termination, power)",
        unit_id=unit,
        figures={
            "failed": failed,
            "requests": len(reqs),
            "other_units_ok": others_ok,
            "down_since": None if down is None else down.down_since,
        },
    )


def _too_large(error: ErrorRecord) -> bool:
    """Whether an error may say the read was too large.

    A timeout, a device failure, or exception 3 (illegal data value), which the
    transport reports as an illegal address with "(code 3)" in its message.
    """
    if error.kind in (ErrorKind.TIMEOUT, ErrorKind.DEVICE_FAILURE):
        return True
    return error.kind is ErrorKind.ILLEGAL_ADDRESS and "(code 3)" in error.message


def _block_size(
    snapshot: EngineSnapshot, unit: int, max_registers: int | None
) -> Remediation | None:
    """Large reads fail (timeout or exception 3) while smaller ones answer."""
    ok_sizes = [
        r.count
        for r in snapshot.recent_requests
        if r.unit_id == unit and r.ok and not r.write and not r.table.is_bit
    ]
    if not ok_sizes:
        return None
    largest_ok = max(ok_sizes)
    large = [
        e
        for e in snapshot.recent_errors
        if e.unit_id == unit
        and _too_large(e)
        and e.table is not None
        and not e.table.is_bit
        and e.count > largest_ok
    ]
    if len(large) < MIN_LARGE_FAILURES:
        return None
    smallest_failed = min(e.count for e in large)
    timeouts = sum(1 for e in large if e.kind is ErrorKind.TIMEOUT)
    if max_registers is not None and max_registers <= largest_ok:
        return None  # already set: what remains is the engine finding it again
    return Remediation(
        "lower_max_registers",
        f"unit {unit}: {len(large)} reads of {smallest_failed} or more registers "
        f"failed ({timeouts} timeouts, {len(large) - timeouts} refusals) while reads "
        f"of up to {largest_ok} answered: set max registers per read to {largest_ok}"
        + (f" (now {max_registers})" if max_registers is not None else ""),
        unit_id=unit,
        figures={
            "failed_large_reads": len(large),
            "timeouts": timeouts,
            "smallest_failed": smallest_failed,
            "largest_ok": largest_ok,
            "max_registers": max_registers,
        },
        params={"max_registers": largest_ok},
    )


def _common_start(snapshot: EngineSnapshot) -> float:
    """Return the time from which the recent errors and requests are both whole.

    Each is a bounded ring (:data:`RECENT_ERRORS`, :data:`RECENT_REQUESTS`); a
    full ring has dropped what came before its oldest entry, so a share of one
    over the other is only taken over the span both still hold.
    """
    start = float("-inf")
    if len(snapshot.recent_errors) >= RECENT_ERRORS:
        start = snapshot.recent_errors[0].at
    if len(snapshot.recent_requests) >= RECENT_REQUESTS:
        start = max(start, snapshot.recent_requests[0].at)
    return start


def _busy(
    snapshot: EngineSnapshot, unit: int, pause: float | None, close_after_cycle: bool
) -> list[Remediation]:
    since = _common_start(snapshot)
    busy = [
        e
        for e in snapshot.recent_errors
        if e.at >= since
        and e.unit_id == unit
        and e.kind is ErrorKind.OTHER
        and "busy" in e.message
    ]
    if len(busy) < MIN_FAILURES:
        return []
    reqs = sum(
        1 for r in snapshot.recent_requests if r.unit_id == unit and r.at >= since
    )
    share = 100.0 * len(busy) / reqs if reqs else 100.0
    new_pause = max(DEFAULT_PAUSE, 2 * (pause or 0.0))
    figures = {
        "busy_answers": len(busy),
        "requests": reqs,
        "share_percent": round(share, 1),
    }
    out = [
        Remediation(
            "add_pause",
            f"unit {unit}: answered 'busy' {len(busy)} times ({share:.0f} % of "
            f"{reqs} recent requests): set the pause between requests to "
            f"{1000 * new_pause:.0f} ms"
            + (f" (now {1000 * pause:.0f} ms)" if pause else ""),
            unit_id=unit,
            figures={**figures, "pause": pause},
            params={"pause": new_pause},
        )
    ]
    if not close_after_cycle:
        out.append(
            Remediation(
                "close_after_cycle",
                f"unit {unit}: if other software shares this connection, close it "
                f"after each cycle ({len(busy)} 'busy' answers)",
                unit_id=unit,
                figures=figures,
                params={"close_after_cycle": True},
            )
        )
    return out


_REFUSALS = (
    ErrorKind.ILLEGAL_ADDRESS,
    ErrorKind.ILLEGAL_FUNCTION,
    ErrorKind.DEVICE_FAILURE,
)


def _only_refused(snapshot: EngineSnapshot, reg: RegisterSnapshot) -> bool:
    """Return whether the recent errors touching ``reg`` are all refusals."""
    kinds = {
        e.kind
        for e in snapshot.recent_errors
        if e.unit_id == reg.unit_id
        and e.table == reg.table
        and e.address is not None
        and e.address < reg.address + reg.size
        and reg.address < e.address + max(1, e.count)
    }
    return bool(kinds) and kinds <= set(_REFUSALS)


def _refused_registers(snapshot: EngineSnapshot, unit: int) -> list[Remediation]:
    out = []
    for reg in snapshot.registers.values():
        if reg.unit_id != unit or not reg.enabled:
            continue
        # quarantined: the device refused it when read alone (not busy, not silent)
        if (
            reg.reads == 0
            and reg.errors >= MIN_LARGE_FAILURES
            and reg.quarantined_until is not None
            and _only_refused(snapshot, reg)
        ):
            out.append(
                Remediation(
                    "remove_register",
                    f"unit {unit}: register '{reg.key}' ({reg.table} {reg.address}) "
                    f"was refused all {reg.errors} times it was read and never "
                    "answered: remove it from the register map",
                    unit_id=unit,
                    uid=reg.uid,
                    figures={
                        "key": reg.key,
                        "table": str(reg.table),
                        "address": reg.address,
                        "errors": reg.errors,
                        "reads": reg.reads,
                    },
                )
            )
    return out


def _saturation(
    snapshot: EngineSnapshot, latency_baseline: float | None
) -> Remediation | None:
    p95 = snapshot.p95_latency
    utilisation = snapshot.bus_utilisation
    if not latency_baseline or p95 <= 0:
        return None
    ratio = p95 / latency_baseline
    if ratio < SATURATION_RATIO or utilisation < SATURATION_UTILISATION:
        return None
    return Remediation(
        "bus_saturated",
        f"the bus is saturated: busy {utilisation:.0f} % of the time, p95 latency "
        f"{1000 * p95:.0f} ms is {ratio:.1f}x its baseline of "
        f"{1000 * latency_baseline:.0f} ms: raise the min interval, poll fewer "
        "registers or split the devices over more buses",
        figures={
            "bus_utilisation_percent": round(utilisation, 1),
            "p95_latency_ms": round(1000 * p95, 1),
            "baseline_ms": round(1000 * latency_baseline, 1),
            "ratio": round(ratio, 2),
            "requests_per_minute": round(snapshot.requests_per_minute, 1),
        },
    )


def remediation(
    snapshot: EngineSnapshot,
    *,
    unit_id: int | None = None,
    latency_baseline: float | None = None,
    max_registers: int | None = None,
    pause: float | None = None,
    close_after_cycle: bool = False,
    unit_max_registers: Mapping[int, int] | None = None,
) -> list[Remediation]:
    """Suggestions for the connection (or one unit), most urgent first.

    ``latency_baseline`` (s): the connection's p95 baseline (:class:`HealthModel`);
    ``max_registers``, ``pause``, ``close_after_cycle``: the settings in force, so a
    suggestion is not what is already set; ``unit_max_registers``: lower limits of
    single units.
    """
    out: list[Remediation] = []
    for unit in _units(snapshot):
        if unit_id is not None and unit != unit_id:
            continue
        check = _check_unit(snapshot, unit)
        if check is not None:
            out.append(check)
            continue  # nothing else about a unit that does not answer
        limit = (unit_max_registers or {}).get(unit, max_registers)
        size = _block_size(snapshot, unit, limit)
        if size is not None:
            out.append(size)
        out.extend(_busy(snapshot, unit, pause, close_after_cycle))
        out.extend(_refused_registers(snapshot, unit))
    saturation = _saturation(snapshot, latency_baseline)
    if saturation is not None:
        out.append(saturation)
    out.sort(key=lambda r: PRIORITY.get(r.key, 99))
    return out
