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

**Streaming** (:class:`MetricsStream`): the figures are taken chunk by chunk of the
truth (:data:`DEFAULT_CHUNK` seconds), so a long replayed log never needs its whole
truth or all its reads at once; :func:`compute` is the same stream fed the whole
record. What is kept grows with changes, not seconds: per register the read shown,
the changes not read yet and a count per length of its out-of-band stretches
(misses, worst miss and staleness come from those); pooled, every timed change's
delay (median and p95 exact) and the errors and ages as distinct values with counts
(:class:`Histogram`: their p95 is numpy's to the bit). The truth's band exits, noisy
rows and incidents are taken once per scenario in one pass (:func:`truth_summary`).
Chunking changes no figure; against the whole-array computation before it, two
differ in the last bits: ``err_mean`` (a dot product over the distinct values
instead of numpy's pairwise sum) and ``final_bus_s_per_hour`` (an exact sum of the
bus times, correctly rounded), both by at most 1e-15 relative.
"""

from __future__ import annotations

from bisect import bisect_left
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


#: Seconds of truth a :class:`MetricsStream` takes at a time by default.
DEFAULT_CHUNK = 3600
NOISY_STEP_SHARE = 0.01


def _exits_from(
    values: Array, tol: float, ref: float | None
) -> tuple[list[int], float | None]:
    """Band exits of ``values`` given the band's reference so far (None: none yet).

    Returns the exit indices and the reference after ``values`` (see
    :func:`band_exits`), so a long series can be taken chunk by chunk.
    """
    out: list[int] = []
    i = 0
    n = len(values)
    if ref is None:
        known = np.flatnonzero(~np.isnan(values))
        if not known.size:
            return out, None
        i = int(known[0])
        ref = float(values[i])
        i += 1
    chunk = 64
    while i < n:
        hit = np.flatnonzero(np.abs(values[i : i + chunk] - ref) > tol)
        if not hit.size:
            i += chunk
            chunk = min(chunk * 4, 1 << 16)
            continue
        j = i + int(hit[0])
        out.append(j)
        ref = float(values[j])
        i = j + 1
        chunk = 64
    return out, ref


def band_exits(values: Array, tol: float) -> NDArray[np.int64]:
    """Return the indices where ``values`` leaves its band of ``tol``.

    The band is centred on the value at the previous exit (the first known value to
    start with); NaN never exits.
    """
    return np.array(_exits_from(values, tol, None)[0], dtype=np.int64)


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


@dataclass
class IncidentWatch:
    """What an incident's delay waits for: a read of ``rows`` beyond the baseline."""

    changed_at: float
    rows: list[int]
    baseline: Array


@dataclass
class TruthSummary:
    """What the metrics need of the whole truth, taken once per scenario in one pass.

    Band exits per row (bounded by the truth's changes), the noisy rows, and per
    incident what its delay waits for (None: nothing moved).
    """

    exits: list[NDArray[np.int64]]
    noisy: set[int]
    incidents: list[IncidentWatch | None]


_SUMMARY: dict[int, tuple[Any, TruthSummary]] = {}


def _chunks(n: int, chunk: int, start: int = 0) -> list[tuple[int, int]]:
    return [(a, min(a + chunk, n)) for a in range(start, n, chunk)]


def truth_summary(scenario: Scenario, chunk: int = DEFAULT_CHUNK) -> TruthSummary:
    """Take :class:`TruthSummary` from the truth, chunk by chunk (cached per truth)."""
    cached = _SUMMARY.get(id(scenario))
    if cached is not None and cached[0] is scenario.truth:
        return cached[1]
    truth = scenario.truth
    rows, n = truth.shape
    thr = thresholds(scenario.specs)
    refs: list[float | None] = [None] * rows
    exits: list[list[int]] = [[] for _ in range(rows)]
    steps = np.zeros(rows, dtype=np.int64)
    # incidents: their baseline (the second before) and where each watched row moves
    watched = list(range(rows))
    if scenario.incident_key is not None:
        keys = [spec.key for spec in scenario.specs]
        watched = (
            [keys.index(scenario.incident_key)] if scenario.incident_key in keys else []
        )
    starts = [max(round(t - scenario.start), 1) for t in scenario.incidents]
    baselines = [np.asarray(truth[:, s0 - 1], dtype=np.float64) for s0 in starts]
    first: list[dict[int, int]] = [{} for _ in starts]
    previous: Array | None = None
    for a, b in _chunks(n, chunk):
        block = np.asarray(truth[:, a:b], dtype=np.float64)
        joined = block if previous is None else np.hstack((previous, block))
        steps += (np.abs(np.diff(joined, axis=1)) > thr[:, None]).sum(axis=1)
        previous = block[:, -1:]
        for row in range(rows):
            found, refs[row] = _exits_from(block[row], float(thr[row]), refs[row])
            exits[row].extend(a + j for j in found)
        for k, s0 in enumerate(starts):
            if b <= s0:
                continue
            lo = max(s0 - a, 0)
            for row in watched:
                base = baselines[k][row]
                if row in first[k] or math.isnan(base):
                    continue
                moved = np.flatnonzero(np.abs(block[row, lo:] - base) > thr[row])
                if moved.size:
                    first[k][row] = a + lo + int(moved[0])
    share = steps / (n - 1) if n > 1 else np.zeros(rows)
    noisy = {int(row) for row in np.flatnonzero(share > NOISY_STEP_SHARE)}
    incidents: list[IncidentWatch | None] = []
    for k, incident in enumerate(scenario.incidents):
        moved_at = {row: s for row, s in first[k].items() if row not in noisy}
        if not moved_at:
            incidents.append(None)
            continue
        step = min(moved_at.values())
        # the change happened after sample step - 1 (and not before the incident began)
        changed_at = max(incident, scenario.start + step - 1)
        incidents.append(
            IncidentWatch(
                changed_at,
                [row for row, s in moved_at.items() if s == step],
                baselines[k],
            )
        )
    summary = TruthSummary(
        exits=[np.array(e, dtype=np.int64) for e in exits],
        noisy=noisy,
        incidents=incidents,
    )
    _SUMMARY.clear()
    _SUMMARY[id(scenario)] = (scenario.truth, summary)
    return summary


def scenario_exits(scenario: Scenario) -> list[NDArray[np.int64]]:
    """:func:`band_exits` per row of the scenario's truth (computed once per truth)."""
    return truth_summary(scenario).exits


def noisy_rows(scenario: Scenario) -> set[int]:
    """Rows whose truth jumps beyond tolerance second to second in > 1 % of seconds."""
    return truth_summary(scenario).noisy


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


class Histogram:
    """An exact multiset of floats: its distinct values (sorted) and their counts.

    Its memory grows with the number of distinct values, not of samples (plus a
    buffer of at most :attr:`BUFFER` samples, merged in when full or asked);
    quantiles come out as numpy's ``percentile`` of the samples would give them.
    """

    BUFFER = 1 << 16

    def __init__(self) -> None:
        """Start empty."""
        self._values: Array = np.zeros(0)
        self._counts: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._buffer: list[tuple[Array, NDArray[np.int64] | None]] = []
        self._buffered = 0

    def add(self, samples: Array, counts: NDArray[np.int64] | None = None) -> None:
        """Add ``samples`` (each ``counts`` times, once by default)."""
        if not samples.size:
            return
        self._buffer.append((samples, counts))
        self._buffered += samples.size
        if self._buffered >= self.BUFFER:
            self._merge()

    def _merge(self) -> None:
        """Fold the buffer into the distinct values (sorted merge, no re-sort)."""
        if not self._buffer:
            return
        samples = np.concatenate([part for part, _ in self._buffer])
        weights = np.concatenate(
            [
                np.ones(part.size, dtype=np.int64) if counts is None else counts
                for part, counts in self._buffer
            ]
        )
        self._buffer.clear()
        self._buffered = 0
        order = np.argsort(samples, kind="stable")
        samples, weights = samples[order], weights[order]
        firsts = np.flatnonzero(np.concatenate(([True], samples[1:] != samples[:-1])))
        values, counts = samples[firsts], np.add.reduceat(weights, firsts)
        at = np.searchsorted(self._values, values)
        known = at < self._values.size
        known[known] = self._values[at[known]] == values[known]
        self._counts[at[known]] += counts[known]
        fresh = ~known
        self._values = np.insert(self._values, at[fresh], values[fresh])
        self._counts = np.insert(self._counts, at[fresh], counts[fresh])

    @property
    def values(self) -> Array:
        """The distinct values, ascending."""
        self._merge()
        return self._values

    @property
    def counts(self) -> NDArray[np.int64]:
        """How often each distinct value occurs."""
        self._merge()
        return self._counts

    @property
    def size(self) -> int:
        """Number of samples."""
        return int(self.counts.sum())

    def mean(self) -> float:
        """Mean of the samples (NaN when empty)."""
        size = self.size
        return float(np.dot(self.values, self.counts)) / size if size else math.nan

    def percentile(self, q: float) -> float:
        """``np.percentile(samples, q)`` (linear), from the counts (NaN when empty)."""
        size = self.size
        if not size:
            return math.nan
        quantile = np.true_divide(q, 100)
        # numpy's virtual index, neighbours and weight for the linear method
        virtual = (size - 1) * quantile
        below = np.floor(virtual)
        if virtual >= size - 1:
            lo = hi = size - 1
        elif virtual < 0:
            lo = hi = 0
        else:
            lo, hi = int(below), int(below) + 1
        gamma = virtual - below
        cumulative = np.cumsum(self.counts)
        a = self.values[int(np.searchsorted(cumulative, lo, side="right"))]
        b = self.values[int(np.searchsorted(cumulative, hi, side="right"))]
        diff = b - a
        if gamma >= 0.5:
            return float(b - diff * (1 - gamma))
        return float(a + diff * gamma)


def _add_exact(partials: list[float], x: float) -> None:
    """Add ``x`` to the exact sum kept as non-overlapping ``partials`` (Shewchuk).

    ``math.fsum(partials)`` is then the correctly rounded sum of everything added,
    whatever the pieces it came in.
    """
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


class MetricsStream:
    """The metrics of one run, taken chunk by chunk as the run goes.

    :meth:`feed` takes the truth up to a second and the record's reads before it
    (with ``consume`` it then drops them from the record, keeping per register the
    last one read); :meth:`finish` gives the :class:`Metrics`. Memory is bounded by
    the chunk and the registers: per register the read shown, the changes not yet
    read and the lengths of its out-of-band stretches; pooled, the exact multisets
    of errors and ages (their distinct values) and every timed change's delay.
    :func:`compute` is this stream with the whole record fed at once.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        final_share: float = FINAL_SHARE,
        chunk: int = DEFAULT_CHUNK,
    ) -> None:
        """Measure a run on ``scenario`` taking ``chunk`` seconds of truth at a time."""
        self.scenario = scenario
        self.final_share = final_share
        self.chunk = max(int(chunk), 1)
        self.summary = truth_summary(scenario)
        rows, n = scenario.truth.shape
        self.n = n
        self.cut = final_start(scenario, final_share)
        first_final = max(math.ceil(self.cut - scenario.start), 0)
        while first_final > 0 and scenario.start + (first_final - 1) >= self.cut:
            first_final -= 1
        while first_final < n and scenario.start + first_final < self.cut:
            first_final += 1
        self.first_final = min(first_final, n)
        self.thr = thresholds(scenario.specs)
        self.scale = _scale(scenario)
        self.done = 0  # samples [0, done) taken
        self.cursor = [0] * rows  # per row: the next read not taken yet
        self.shown: list[tuple[float, float] | None] = [None] * rows
        self.exit_cursor = [0] * rows
        self.pending: list[list[float]] = [[] for _ in range(rows)]
        self.delays: list[Array] = []
        self.errors = Histogram()
        self.ages = Histogram()
        self.known = np.zeros(rows, dtype=np.int64)
        self.known_final = np.zeros(rows, dtype=np.int64)
        self.out = np.zeros(rows, dtype=np.int64)
        self.out_final = np.zeros(rows, dtype=np.int64)
        self.valid = 0
        self.open_run = np.zeros(rows, dtype=np.int64)
        self.runs: list[dict[int, int]] = [{} for _ in range(rows)]
        self.incident_found: list[dict[int, float]] = [
            {} for _ in self.summary.incidents
        ]
        self.sent_cursor = 0
        self.sent = 0
        self.sent_final = 0
        self.sent_final_bus: list[float] = []  # exact partial sums (see _add_exact)

    def feed(self, record: RunRecord, upto: int, *, consume: bool = False) -> None:
        """Take the samples before ``upto`` and the reads before their end.

        Every read before ``start + upto`` must be in the record already (the run's
        clock has passed it). ``consume`` drops the taken reads and the request log
        from ``record``.
        """
        self._take_sent(record, consume)
        upto = min(upto, self.n)
        for a, b in _chunks(upto, self.chunk, self.done):
            self._take(record, a, b)
        self.done = max(self.done, upto)
        if consume:
            for row, (times, values) in enumerate(record.reads):
                del times[: self.cursor[row]]
                del values[: self.cursor[row]]
                self.cursor[row] = 0

    def _take_sent(self, record: RunRecord, consume: bool) -> None:
        times = np.frombuffer(record.sent_at, dtype=np.float64)[self.sent_cursor :]
        bus = np.frombuffer(record.sent_bus, dtype=np.float64)[self.sent_cursor :]
        after = times >= self.cut
        self.sent += len(times)
        self.sent_final += int(after.sum())
        for seconds in bus[after]:
            _add_exact(self.sent_final_bus, float(seconds))
        del times, bus
        if consume:
            del record.sent_at[:]
            del record.sent_bus[:]
            self.sent_cursor = 0
        else:
            self.sent_cursor = len(record.sent_at)

    def _take(self, record: RunRecord, a: int, b: int) -> None:
        scenario = self.scenario
        truth = np.asarray(scenario.truth[:, a:b], dtype=np.float64)
        samples = scenario.start + np.arange(a, b, dtype=np.float64)
        end = scenario.start + b
        final_from = max(self.first_final - a, 0)
        for row in range(len(scenario.specs)):
            times_all, values_all = record.reads[row]
            lo = self.cursor[row]
            hi = bisect_left(times_all, end, lo)
            times = times_all[lo:hi]
            values = values_all[lo:hi]
            self.cursor[row] = hi
            if times:
                self._watch_incidents(row, times, values)
            known = ~np.isnan(truth[row])
            self.known[row] += int(known.sum())
            self.known_final[row] += int(known[final_from:].sum())
            if row not in self.summary.noisy:
                self._delays(row, times, samples, a, b)
            held = self.shown[row]
            shown, read_at = (
                shown_series([held[0], *times], [held[1], *values], samples)
                if held is not None
                else shown_series(times, values, samples)
            )
            if times:
                self.shown[row] = (times[-1], values[-1])
            valid = ~np.isnan(shown) & known
            diff = np.abs(shown[valid] - truth[row, valid])
            self.errors.add(diff / self.scale[row])
            self.ages.add(samples[valid] - read_at[valid])
            out = diff > self.thr[row]
            self.out[row] += int(out.sum())
            self.valid += int(valid.sum())
            self.out_final[row] += int(out[np.flatnonzero(valid) >= final_from].sum())
            self._stretches(row, out)

    def _delays(
        self, row: int, times: list[float], samples: Array, a: int, b: int
    ) -> None:
        """Delays of the row's band exits in ``[a, b)`` (and of earlier ones unread)."""
        pending = self.pending[row]
        if pending and times:
            self.delays.append(times[0] - np.array(pending))
            pending.clear()
        exits = self.summary.exits[row]
        lo = self.exit_cursor[row]
        hi = int(np.searchsorted(exits, b, side="left"))
        self.exit_cursor[row] = hi
        if hi == lo:
            return
        changed = samples[exits[lo:hi] - a]
        read = np.asarray(times, dtype=np.float64)
        nxt = np.searchsorted(read, changed, side="left")
        seen = nxt < len(read)
        if seen.any():
            self.delays.append(read[nxt[seen]] - changed[seen])
        pending.extend(float(t) for t in changed[~seen])

    def _stretches(self, row: int, out: NDArray[np.bool_]) -> None:
        """Count the row's out-of-band stretches (over its valid samples, joined)."""
        if not out.size:
            return
        _, lengths = _runs(out)
        runs = self.runs[row]
        carried = int(self.open_run[row])
        closed = [int(length) for length in lengths]
        if carried:
            if out[0]:
                closed[0] += carried
            else:
                runs[carried] = runs.get(carried, 0) + 1
        self.open_run[row] = closed.pop() if out[-1] else 0
        for length in closed:
            runs[length] = runs.get(length, 0) + 1

    def _watch_incidents(
        self, row: int, times: list[float], values: list[float]
    ) -> None:
        """Time each incident watched on ``row`` by its first read showing it."""
        for k, watch in enumerate(self.summary.incidents):
            if watch is None or row not in watch.rows or row in self.incident_found[k]:
                continue
            when = np.asarray(times, dtype=np.float64)
            shows = (when >= watch.changed_at) & (
                np.abs(np.asarray(values, dtype=np.float64) - watch.baseline[row])
                > self.thr[row]
            )
            hit = np.flatnonzero(shows)
            if hit.size:
                self.incident_found[k][row] = float(when[hit[0]]) - watch.changed_at

    def finish(
        self, record: RunRecord, *, min_interval: float = 5.0, miss_factor: float = 2.0
    ) -> Metrics:
        """All metrics of the run (every sample must have been fed)."""
        if self.done < self.n:
            raise ValueError(f"fed {self.done} of {self.n} samples")
        scenario = self.scenario
        rows = range(len(scenario.specs))
        end = scenario.start + scenario.duration
        noisy = self.summary.noisy
        delays = list(self.delays)
        # never read again: censored at the end
        delays.extend(end - np.array(p) for p in self.pending if p)
        tot: list[float | None] = []
        tot_final: list[float] = []
        misses = misses_trackable = 0
        worst = 0.0
        stale = Histogram()
        for row in rows:
            known = int(self.known[row])
            if not known:
                tot.append(None)
                continue
            tot.append(100.0 * float(self.out[row]) / max(known, 1))
            if self.known_final[row]:
                tot_final.append(
                    100.0 * float(self.out_final[row]) / int(self.known_final[row])
                )
            runs = dict(self.runs[row])
            if self.open_run[row]:
                length = int(self.open_run[row])
                runs[length] = runs.get(length, 0) + 1
            if not runs:
                continue
            limit = scenario.specs[row].min_interval or min_interval
            long_runs = sum(
                c for length, c in runs.items() if length > miss_factor * limit
            )
            misses += long_runs
            if row not in noisy:
                misses_trackable += long_runs
            worst = max(worst, float(max(runs)) / limit)
            # staleness inside each run: 1, 2, ... seconds out of band
            lengths = np.array(list(runs), dtype=np.int64)
            counts = np.bincount(lengths, weights=list(runs.values()))
            at_least = np.cumsum(counts[::-1])[::-1][1:].astype(np.int64)
            stale.add(np.arange(1, len(at_least) + 1, dtype=np.float64), at_least)
        hours = scenario.duration / 3600.0
        incidents: list[float | None] = []
        for watch, found in zip(
            self.summary.incidents, self.incident_found, strict=True
        ):
            incidents.append(
                min(found.values()) if watch is not None and found else None
            )
        timed = [d for d in incidents if d is not None]
        delay_all = np.concatenate(delays) if delays else np.zeros(0)
        shares = [x for x in tot if x is not None]
        complete = bool(timed) and len(timed) == len(incidents)
        final_hours = (end - self.cut) / 3600.0
        logged = final_hours > 0 and self.sent == record.requests
        final_bus = math.fsum(self.sent_final_bus)
        pooled = shares and self.errors.size
        return Metrics(
            policy=record.policy,
            requests=record.requests,
            requests_per_hour=record.requests / hours,
            registers_per_hour=record.registers / hours,
            bus_pct=100.0 * record.bus_time / scenario.duration,
            err_mean=self.errors.mean() if pooled else (math.nan if shares else 0.0),
            err_p95=self.errors.percentile(95)
            if pooled
            else (math.nan if shares else 0.0),
            out_of_band_pct=100.0 * int(self.out.sum()) / max(self.valid, 1),
            stale_p95=stale.percentile(95) if stale.size else 0.0,
            age_p95=self.ages.percentile(95)
            if pooled
            else (math.nan if shares else 0.0),
            misses=misses,
            misses_trackable=misses_trackable,
            noisy_registers=len(noisy),
            worst_miss=worst,
            incident_delay=(sum(timed) / len(timed)) if complete else None,
            incident_delay_max=max(timed) if complete else None,
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
            final_requests_per_hour=self.sent_final / final_hours if logged else None,
            final_bus_s_per_hour=final_bus / final_hours if logged else None,
            final_tot_pct=float(np.mean(tot_final)) if tot_final else None,
        )


def stream_chunk(scenario: Scenario) -> int | None:
    """Return the chunk to stream a run on ``scenario`` with (None: keep it whole).

    A replayed log's truth is computed window by window: stream it; a generated
    scenario's matrix is in memory already.
    """
    return None if isinstance(scenario.truth, np.ndarray) else DEFAULT_CHUNK


def compute(
    scenario: Scenario,
    record: RunRecord,
    *,
    min_interval: float = 5.0,
    miss_factor: float = 2.0,
    final_share: float = FINAL_SHARE,
    chunk: int = DEFAULT_CHUNK,
) -> Metrics:
    """All metrics of one run (``final_*`` over its last ``final_share``).

    A record streamed during its run (``run_engine(..., chunk=...)``) is finished by
    its own :class:`MetricsStream`; any other record is fed to a new one whole,
    ``chunk`` seconds of truth at a time (the record is left as it is).
    """
    stream = record.stream
    if stream is None:
        stream = MetricsStream(scenario, final_share=final_share, chunk=chunk)
        stream.feed(record, stream.n)
    else:
        if stream.scenario is not scenario or stream.final_share != final_share:
            raise ValueError("the record was streamed for another scenario or share")
        stream.feed(record, stream.n, consume=True)
    return stream.finish(record, min_interval=min_interval, miss_factor=miss_factor)
