"""Metrics of one run against ground truth sampled every second of virtual time.

Errors are pooled over all registers with a numeric (or on/off) value and expressed
in tolerances (``|shown - true| / tolerance``; for tolerance 0 in units of the
register's resolution, an on/off mismatch counts 1), so registers of different units
can be pooled. A *miss* is a stretch during which the shown value stays outside the
tolerance band around the true value; it counts against the target when it lasts
longer than ``miss_factor`` times the register's min interval. ``misses_trackable``
leaves out registers whose true value jumps beyond its tolerance from one second to
the next in more than 1 % of the seconds (noise larger than the tolerance: no poller
slower than 1 Hz can keep those in band; the demo's grid frequency is built that way).

Freshness as users feel it, per register then pooled:

* **time out of tolerance** (``tot_pct``): share of the seconds with known truth during
  which the shown value lies outside the tolerance band around the true value, per
  register; pooled as the mean over registers (each register counts the same).
* **detection delay** of every change beyond tolerance: a change is a *band exit* of
  the truth (the true value leaves the band around its value at the previous change,
  the way the oracle would see it); its delay is the time until the next read of that
  register. Median and p95 over the changes of all registers whose noise stays below
  tolerance (noisier ones change every second and would swamp the figure).
* **staleness p95**: how long a shown value had been out of band, p95 over the
  out-of-band seconds.

Seconds whose truth is ``NaN`` (gaps of a replayed log) count nowhere.

The **final stretch** (``final_*``): the same cost and freshness figures over the
last quarter of the run (:data:`FINAL_SHARE`), where a learning policy (the
optimization loop) shows where it ends rather than its average including the hours
before it had evidence. Cut at ``final_start``: requests and bus time of the
requests *issued* at or after the cut (a request's whole bus time goes with the
second it was issued; a timeout's with its request), per hour of the stretch; time
out of tolerance over the samples at or after the cut, with the value shown at the
cut carried in from before (whatever was last read), per register then the mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adaptive_modbus_engine.registers import DataType

from .oracle import thresholds
from .scenarios import Scenario
from .simulate import RunRecord

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Metrics:
    """Per-policy figures for one scenario."""

    policy: str
    requests: int
    requests_per_hour: float
    registers_per_hour: float
    bus_pct: float
    err_mean: float
    err_p95: float
    out_of_band_pct: float
    # s the shown value had been out of band, p95 over out-of-band samples
    stale_p95: float
    age_p95: float  # s since the register was last read, p95 over all samples
    misses: int  # out-of-band stretches longer than miss_factor x min interval
    misses_trackable: int  # the same, on registers whose noise stays below tolerance
    noisy_registers: int  # registers left out of misses_trackable
    worst_miss: float  # longest out-of-band stretch / min interval
    # mean s to show the incident's first step (None: never)
    incident_delay: float | None
    incident_delay_max: float | None
    cycles: int
    cpu_seconds: float
    errors: int
    tot_pct: float = 0.0  # time out of tolerance, % (mean over registers)
    delay_median: float = 0.0  # s from a change beyond tolerance to its next read
    delay_p95: float = 0.0
    changes: int = 0  # changes beyond tolerance timed (trackable registers)
    bus_s_per_hour: float = 0.0
    tot_per_register: tuple[float | None, ...] = ()  # % per spec row (None: no truth)
    incident_delays: tuple[float | None, ...] = ()  # s per incident (None: never shown)
    # the final stretch (the last FINAL_SHARE of the run; None: requests not logged)
    final_requests_per_hour: float | None = None
    final_bus_s_per_hour: float | None = None
    final_tot_pct: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN and inf become None)."""
        return {key: _finite(value) for key, value in asdict(self).items()}


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (tuple, list)):
        return [_finite(item) for item in value]
    return value


FINAL_SHARE = 0.25  # the final stretch: the last quarter of the scenario's duration


def final_start(scenario: Scenario, share: float = FINAL_SHARE) -> float:
    """Return the time the final stretch (the last ``share`` of the run) begins."""
    return scenario.start + scenario.duration * (1.0 - share)


def sent_since(record: RunRecord, since: float) -> tuple[int, float] | None:
    """Return the requests issued at or after ``since`` and their bus time (s).

    None when the record's request log does not account for all its requests (a
    record built without one): a window must not silently read as idle.
    """
    if len(record.sent_at) != record.requests:
        return None
    times = np.frombuffer(record.sent_at, dtype=np.float64)
    bus = np.frombuffer(record.sent_bus, dtype=np.float64)
    after = times >= since
    return int(after.sum()), float(bus[after].sum())


_EXITS: dict[int, tuple[Array, list[NDArray[np.int64]]]] = {}


def band_exits(values: Array, tol: float) -> NDArray[np.int64]:
    """Return the indices where ``values`` leaves its band of ``tol``.

    The band is centred on the value at the previous exit (the first known value to
    start with); NaN never exits.
    """
    known = np.flatnonzero(~np.isnan(values))
    if not known.size:
        return np.zeros(0, dtype=np.int64)
    out: list[int] = []
    i = int(known[0])
    ref = values[i]
    i += 1
    n = len(values)
    chunk = 64
    while i < n:
        hit = np.flatnonzero(np.abs(values[i : i + chunk] - ref) > tol)
        if not hit.size:
            i += chunk
            chunk = min(chunk * 4, 1 << 16)
            continue
        j = i + int(hit[0])
        out.append(j)
        ref = values[j]
        i = j + 1
        chunk = 64
    return np.array(out, dtype=np.int64)


def scenario_exits(scenario: Scenario) -> list[NDArray[np.int64]]:
    """:func:`band_exits` per row of the scenario's truth (computed once per truth)."""
    cached = _EXITS.get(id(scenario))
    if cached is not None and cached[0] is scenario.truth:
        return cached[1]
    thr = thresholds(scenario.specs)
    exits = [
        band_exits(scenario.truth[row], float(thr[row])) for row in range(len(thr))
    ]
    _EXITS.clear()
    _EXITS[id(scenario)] = (scenario.truth, exits)
    return exits


def _scale(scenario: Scenario) -> Array:
    """Per row: what one unit of normalised error is."""
    out = []
    for spec in scenario.specs:
        if spec.tolerance > 0:
            out.append(spec.tolerance)
        elif spec.data_type in (DataType.BOOL, DataType.BIT):
            out.append(1.0)
        else:
            out.append(abs(spec.scale))
    return np.array(out)


def shown_series(
    times: list[float], values: list[float], samples: Array
) -> tuple[Array, Array]:
    """Return the value shown and its read time at each sample time (NaN before any)."""
    if not times:
        nan = np.full(len(samples), np.nan)
        return nan, nan
    t = np.asarray(times)
    v = np.asarray(values)
    index = np.searchsorted(t, samples, side="right") - 1
    ok = index >= 0
    safe = np.where(ok, index, 0)
    return np.where(ok, v[safe], np.nan), np.where(ok, t[safe], np.nan)


def _runs(flags: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Start indices and lengths of the True runs of ``flags``."""
    padded = np.concatenate(([False], flags, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return starts, ends - starts


NOISY_STEP_SHARE = 0.01


def noisy_rows(scenario: Scenario) -> set[int]:
    """Rows whose truth jumps beyond tolerance second to second in > 1 % of seconds."""
    thr = thresholds(scenario.specs)
    steps = np.abs(np.diff(scenario.truth, axis=1)) > thr[:, None]
    share = steps.mean(axis=1)
    return {int(row) for row in np.flatnonzero(share > NOISY_STEP_SHARE)}


def incident_delays(scenario: Scenario, record: RunRecord) -> list[float | None]:
    """Per incident: seconds from its first step in the truth until a read shows it.

    With ``scenario.incident_key`` only that register is timed (a PV plant's sunrise:
    the AC power stepping up from 0 when the inverter starts).

    Registers whose noise exceeds their tolerance (:func:`noisy_rows`) are left out:
    their noise, not the incident, would be the 'first step'.
    """
    truth = scenario.truth
    thr = thresholds(scenario.specs)
    noisy = noisy_rows(scenario)
    delays: list[float | None] = []
    watched = range(len(scenario.specs))
    if scenario.incident_key is not None:
        watched = range(0)
        keys = [spec.key for spec in scenario.specs]
        if scenario.incident_key in keys:
            row_of = keys.index(scenario.incident_key)
            watched = range(row_of, row_of + 1)
    for incident in scenario.incidents:
        s0 = max(round(incident - scenario.start), 1)
        baseline = truth[:, s0 - 1]
        first: dict[int, int] = {}
        for row in watched:
            if math.isnan(baseline[row]) or row in noisy:
                continue
            moved = np.flatnonzero(np.abs(truth[row, s0:] - baseline[row]) > thr[row])
            if moved.size:
                first[row] = s0 + int(moved[0])
        if not first:
            delays.append(None)
            continue
        step = min(first.values())
        # the change happened after sample step - 1 (and not before the incident began)
        changed_at = max(incident, scenario.start + step - 1)
        best: float | None = None
        for row, second in first.items():
            if second != step:
                continue
            times, values = record.reads[row]
            for when, value in zip(times, values, strict=True):
                if when >= changed_at and abs(value - baseline[row]) > thr[row]:
                    delay = when - changed_at
                    best = delay if best is None else min(best, delay)
                    break
        delays.append(best)
    return delays


def compute(
    scenario: Scenario,
    record: RunRecord,
    *,
    min_interval: float = 5.0,
    miss_factor: float = 2.0,
    final_share: float = FINAL_SHARE,
) -> Metrics:
    """All metrics of one run (``final_*`` over its last ``final_share``)."""
    truth = scenario.truth
    samples = scenario.start + np.arange(truth.shape[1], dtype=np.float64)
    cut = final_start(scenario, final_share)
    first_final = int(np.searchsorted(samples, cut, side="left"))
    tot_final: list[float] = []
    thr = thresholds(scenario.specs)
    scale = _scale(scenario)
    errors: list[Array] = []
    stale: list[Array] = []
    ages: list[Array] = []
    out_count = 0
    total = 0
    misses = 0
    misses_trackable = 0
    noisy = noisy_rows(scenario)
    worst = 0.0
    tot: list[float | None] = []
    delays: list[Array] = []
    exits = scenario_exits(scenario)
    for row, spec in enumerate(scenario.specs):
        known = ~np.isnan(truth[row])
        if not known.any():
            tot.append(None)
            continue
        times = np.asarray(record.reads[row][0], dtype=np.float64)
        if row not in noisy and exits[row].size:
            changed = samples[exits[row]]
            nxt = np.searchsorted(times, changed, side="left")
            end = scenario.start + scenario.duration
            later = np.append(times, end)[nxt]  # never read again: censored at the end
            delays.append(later - changed)
        shown, read_at = shown_series(*record.reads[row], samples)
        valid = ~np.isnan(shown) & known
        diff = np.abs(shown[valid] - truth[row, valid])
        errors.append(diff / scale[row])
        ages.append(samples[valid] - read_at[valid])
        out = diff > thr[row]
        out_count += int(out.sum())
        total += int(valid.sum())
        tot.append(100.0 * float(out.sum()) / max(int(known.sum()), 1))
        known_final = int(known[first_final:].sum())
        if known_final:
            out_at = np.zeros(len(samples), dtype=bool)
            out_at[valid] = out
            tot_final.append(100.0 * float(out_at[first_final:].sum()) / known_final)
        starts, lengths = _runs(out)
        if lengths.size:
            limit = spec.min_interval or min_interval
            long_runs = int((lengths > miss_factor * limit).sum())
            misses += long_runs
            if row not in noisy:
                misses_trackable += long_runs
            worst = max(worst, float(lengths.max()) / limit)
            # staleness inside each run: 1, 2, ... seconds out of band
            inside = np.flatnonzero(out) - np.repeat(starts, lengths)
            stale.append(inside.astype(np.float64) + 1.0)
    pooled = np.concatenate(errors) if errors else np.zeros(1)
    stale_all = np.concatenate(stale) if stale else np.zeros(1)
    age_all = np.concatenate(ages) if ages else np.zeros(1)
    hours = scenario.duration / 3600.0
    incidents = incident_delays(scenario, record)
    known = [d for d in incidents if d is not None]
    delay_all = np.concatenate(delays) if delays else np.zeros(0)
    shares = [x for x in tot if x is not None]
    complete = bool(known) and len(known) == len(incidents)
    final_hours = (scenario.start + scenario.duration - cut) / 3600.0
    final_sent = sent_since(record, cut) if final_hours > 0 else None
    return Metrics(
        policy=record.policy,
        requests=record.requests,
        requests_per_hour=record.requests / hours,
        registers_per_hour=record.registers / hours,
        bus_pct=100.0 * record.bus_time / scenario.duration,
        err_mean=float(pooled.mean()),
        err_p95=float(np.percentile(pooled, 95)),
        out_of_band_pct=100.0 * out_count / max(total, 1),
        stale_p95=float(np.percentile(stale_all, 95)) if stale else 0.0,
        age_p95=float(np.percentile(age_all, 95)),
        misses=misses,
        misses_trackable=misses_trackable,
        noisy_registers=len(noisy),
        worst_miss=worst,
        incident_delay=(sum(known) / len(known)) if complete else None,
        incident_delay_max=max(known) if complete else None,
        cycles=record.cycles,
        cpu_seconds=record.cpu_seconds,
        errors=record.errors,
        tot_pct=float(np.mean(shares)) if shares else 0.0,
        delay_median=float(np.median(delay_all)) if delay_all.size else 0.0,
        delay_p95=float(np.percentile(delay_all, 95)) if delay_all.size else 0.0,
        changes=int(delay_all.size),
        bus_s_per_hour=record.bus_time / hours,
        tot_per_register=tuple(tot),
        incident_delays=tuple(incidents),
        final_requests_per_hour=final_sent[0] / final_hours if final_sent else None,
        final_bus_s_per_hour=final_sent[1] / final_hours if final_sent else None,
        final_tot_pct=float(np.mean(tot_final)) if tot_final else None,
    )
