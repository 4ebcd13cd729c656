"""Daily profile: a register's day learned in days, not weeks.

The time-of-week profile (:class:`~.patterns.ActivityProfile`) needs two weeks
before an hour counts. Much of what a Modbus installation does repeats every day:
a PV inverter wakes at sunrise and falls silent at sunset, a heat pump starts at
its usual time. A :class:`DailyProfile` learns two things from the reads of one
register, in local time of an injected time zone, and acts from the second day:

* **Quiet hours.** Per hour of the day, how many days in a row the register did
  not move in it, and the minute of its last move there (the register moves each
  time its signal, noise excluded, has changed by :data:`MOVE` tolerances in all
  since its last move: a step at once, a ramp read by read). Once the register
  has been still for :data:`QUIET_HOLD` seconds, in an hour in which it did not
  move from this minute on the day before, and the hour :data:`QUIET_AHEAD`
  seconds on was quiet on the last :data:`QUIET_DAYS` day(s) too, it rests at its
  maximum interval at once, instead of growing there read by read while the
  step-rate memory of a busy day fades (after sunset: a cloudy day's steps kept
  the interval short for about three hours).
* **Onsets.** A sudden move (at least :data:`SUDDEN` tolerances in one read) after
  at least :data:`ONSET_QUIET` seconds of stillness that is followed by more
  movement (:data:`CONFIRM_MOVES` moves within :data:`CONFIRM_WINDOW` seconds: a
  regime starts, not a single step such as a daily counter's reset) is an onset
  (a slow drift that adds up to a move over many reads is not: a cooling heatsink,
  or one flickering by a digit when other registers' windows read it every 10 s,
  learned onsets of its own: up to 29 early reads the next morning); its local
  time of day is learned
  (clustered within :data:`ONSET_MATCH`, at most :data:`MAX_ONSETS` per register,
  a mean and a spread over days, forgotten after :data:`FORGET_DAYS` days without
  it). From :data:`LEAD_MIN` + 2 spreads before a learned onset until
  :data:`MARGIN_MIN` + 2 spreads after it (the window), the interval follows the
  onset's likelihood: at most :data:`ONSET_INTERVAL` at its mean time and
  ``ONSET_INTERVAL * exp(z**2 / 4)`` at ``z`` widths from it (width: the spread +
  :data:`LEAD_MIN` / 2, so ``e * ONSET_INTERVAL`` at the window's edges). Reads
  spaced in proportion to ``1 / sqrt(density)`` see an onset of that (normal)
  density with the least expected delay for a given number of reads. Before the
  window the next read is due no later than the window's start (one read lands
  there; the reads no longer close in on it geometrically from 20 minutes
  before). All this as long as the register has not moved since
  :data:`ONSET_HORIZON` before the window (else today's onset came and its own
  model follows it). An onset seen on one day only is given a
  spread of at least :data:`FIRST_SPREAD`: one day cannot tell how much it varies
  (a cloudy morning starts a PV inverter a quarter of an hour late).

* **A stale step memory** (from the first day, with the register's model): see
  :func:`settled_target`.
* **A lone step** (from the first day, with the register's model): a step after
  an hour or more of stillness, or after a day or more without a step, the only
  one in the step memory, is one step over the stillness or step-free time around
  it, not one an hour: see :func:`isolated_target`.

:meth:`DailyProfile.interval` applies them to an interval and never leaves the
register's limits: the configured maximum interval is a promise. A register
without a daily pattern (it moves in every hour, or never after a still hour)
gets its interval back unchanged. Memory and state are small: 72 bytes of hours
and at most :data:`MAX_ONSETS` onsets (about 150-250 bytes as JSON).
"""

from __future__ import annotations

from array import array
import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timezone, tzinfo
import math
from typing import Any, cast
import zlib

from . import intervals
from .intervals import SAFETY, STEP_MEMORY, IntervalLimits, IntervalModel

STATE_VERSION = 1
DAY = 86400.0
HOUR = 3600.0
HOURS = 24
MOVE = 1.0
"""Signal change (in tolerances, summed over reads) that counts as the register moving."""
QUIET_DAYS = 1
"""Days in a row an hour must have been still before it counts as quiet."""
QUIET_HOLD = 600.0
"""Seconds a register must have been still before a quiet hour rests it at the maximum."""
QUIET_AHEAD = 1800.0
"""The hour this many seconds ahead must be quiet too."""
STALE_STEPS = 8.0
"""Steps the step-rate memory expected during a stillness that proves it stale."""
STALE_STEPS_FLAT = 3.0
""":data:`STALE_STEPS` when no read of the stillness changed beyond the noise (off)."""
ONSET_QUIET = 3600.0
"""Stillness (s) before a move that may be an onset."""
ISOLATED_QUIET = 3600.0
"""Stillness (s) before a step that makes it isolated (see :func:`isolated_target`)."""
STEP_FREE = DAY
"""Time (s) without a step before a step that makes it isolated although the register
moved meanwhile: a whole day, so every hour of the day was step-free (step rates
follow the day: a PV plant's cloud steps come back tomorrow morning)."""
ISOLATED_HELD = 1.5
"""Steps the step-rate memory may hold when the stillness after a step began for
that step to count as the only one (one step, plus what is left of older ones)."""
SUDDEN = 0.5
"""Signal change (tolerances) within one read that makes a move after stillness sudden."""
CONFIRM_WINDOW = 900.0
CONFIRM_MOVES = 2
"""Moves within :data:`CONFIRM_WINDOW` after a candidate that make it an onset."""
ONSET_MATCH = 3600.0
"""An onset within this many seconds (time of day) of a learned one is the same one."""
MAX_ONSETS = 3
ONSET_ALPHA = 0.3
"""Smallest weight of the newest day in an onset's mean time and spread."""
FORGET_DAYS = 14
MAX_MISSED = 2
"""An onset whose window passes this many days in a row without it is forgotten."""
LEAD_MIN = 120.0
"""Seconds before an onset's early edge (mean - 2 spreads) the window starts."""
MARGIN_MIN = 300.0
"""Seconds after an onset's late edge (mean + 2 spreads) the window ends."""
FIRST_SPREAD = 300.0
"""Spread (s) assumed for an onset seen on one day only (it varies from day to day)."""
ONSET_HORIZON = 1800.0
"""A move this long before the window or later means today's onset has come."""
ONSET_INTERVAL = 10.0
"""Longest interval (s) around a learned onset (the limits' minimum if that is longer)."""
_SLOT = 900.0  # time zone offsets are multiples of 15 minutes
_MAX_QUIET = 15
_NONE = 63  # no move in the visit
_UNKNOWN = 62  # no visit the day before
_NEVER = 7  # visit age meaning "no visit in the last 6 days"


@dataclass(slots=True)
class Onset:
    """A learned onset: local time of day (s), spread (s), days seen, last day seen.

    ``missed``: days in a row its window passed without it (``checked``: the last
    day counted).
    """

    tod: float
    spread: float
    days: int
    day: int
    missed: int = 0
    checked: int = -1


@dataclass(slots=True)
class _Candidate:
    tod: float
    uncertainty: float
    day: int
    deadline: float
    moves: int = 0


class DailyProfile:
    """Quiet hours and onsets of one register by local time of day (see the module)."""

    # per-register state read on every read: kept in slots, not an instance dict
    __slots__ = (
        "_before",
        "_candidate",
        "_drift",
        "_fixed",
        "_history",
        "_hour_end",
        "_last_active",
        "_last_move",
        "_last_t",
        "_minute",
        "_moved",
        "_quiet",
        "_slot",
        "_still_before",
        "_visit_day",
        "onsets",
        "tz",
    )

    def __init__(self, tz: tzinfo | None = None) -> None:
        """Start empty in time zone ``tz`` (UTC by default)."""
        self.tz = tz or UTC
        fixed = self.tz.utcoffset(None) if isinstance(self.tz, timezone) else None
        self._fixed = None if fixed is None else fixed.total_seconds()
        self._slot = (-(2**62), 0.0)
        # the per-hour arrays start as the shared, read-only empty ones (_FRESH_*, no
        # memory per register); record gives the profile its own (bytes, and 32-bit
        # days: 0.5 KB) before the first write
        self._quiet = _FRESH_QUIET  # finished still visits in a row (saturating)
        self._visit_day = _FRESH_VISIT_DAY  # local day of the last visit (-1: none)
        self._moved = _FRESH_MOVED  # whether the register moved in that visit
        self._minute = _FRESH_MINUTE  # minute of its last move in that visit
        self._before = _FRESH_BEFORE  # ... in the visit the day before it
        self._history = False  # an hour was visited on two days
        self._hour_end = -math.inf  # wall time the hour of the last visit ends
        self.onsets: list[Onset] = []
        self._last_t: float | None = None
        self._last_move: float | None = None  # wall time of the last move
        self._still_before = 0.0  # stillness (s) before the last move (not persisted)
        self._drift = 0.0  # signal change (tolerances) since the last move
        self._last_active: float | None = None  # the last read beyond the noise
        self._candidate: _Candidate | None = None

    # ------------------------------------------------------------------ time

    def _local(self, t: float) -> float:
        """Local time of unix time ``t`` as seconds since the local epoch."""
        if self._fixed is not None:
            return t + self._fixed
        slot = math.floor(t / _SLOT)
        cached, offset = self._slot
        if slot != cached:
            delta = datetime.fromtimestamp(slot * _SLOT, self.tz).utcoffset()
            offset = 0.0 if delta is None else delta.total_seconds()
            self._slot = (slot, offset)
        return t + offset

    def _day_tod(self, t: float) -> tuple[int, float]:
        local = self._local(t)
        day = math.floor(local / DAY)
        return day, local - day * DAY

    # ------------------------------------------------------------------ learning

    def record(self, t: float, activity: float) -> None:
        """Learn from one read at wall time ``t`` (``activity``: tolerances per second)."""
        last, self._last_t = self._last_t, t
        if last is None or not t > last:
            if self._last_move is None:
                self._last_move = self._last_active = t  # stillness counts from here
            return
        dt = t - last
        self._drift += activity * dt
        moved = self._drift >= MOVE
        if moved:
            self._drift = 0.0
        if activity > 0:
            self._last_active = t
        if (
            not moved
            and t < self._hour_end
            and not self.onsets
            and self._candidate is None
        ):
            return  # a still read inside the hour already visited: nothing to learn
        try:
            day, tod = self._day_tod(t)
        except (OverflowError, ValueError, OSError):
            return
        if not -_DAY_LIMIT < day < _DAY_LIMIT:
            return  # beyond the day array (t beyond 10**14 s; a zone's: year 9999)
        self._hour_end = t + HOUR - tod % HOUR
        hour = int(tod // HOUR)
        if isinstance(self._visit_day, tuple):  # the first visit: own arrays now
            self._own()
        if day != self._visit_day[hour]:
            if day < self._visit_day[hour]:
                return  # the clock went back: learn nothing
            self._fold(hour, day)
        if self.onsets:
            self._count_misses(day, tod)
        candidate = self._candidate
        if candidate is not None and t > candidate.deadline:
            candidate = self._candidate = None
        if not moved:
            return
        self._moved[hour] = True
        self._minute[hour] = int(tod % HOUR // 60)
        if candidate is not None:
            candidate.moves += 1
            if candidate.moves >= CONFIRM_MOVES:
                self._candidate = None
                self.learn_onset(candidate.tod, candidate.uncertainty, candidate.day)
        elif (
            self._last_move is not None
            and t - self._last_move >= ONSET_QUIET
            and activity * dt >= SUDDEN
        ):
            # the move happened between the previous read and this one
            at = tod - dt / 2
            self._candidate = _Candidate(
                at % DAY, dt / 2, day + math.floor(at / DAY), t + CONFIRM_WINDOW
            )
        if self._last_move is not None:
            self._still_before = t - self._last_move
        self._last_move = t

    def _fold(self, hour: int, day: int) -> None:
        """Close the previous visit of ``hour`` and open the one of ``day``."""
        previous = self._visit_day[hour]
        if previous >= 0:
            self._history = True
            if self._moved[hour]:
                self._quiet[hour] = 0
            elif day - previous <= 1:  # a day without reads says nothing
                self._quiet[hour] = min(_MAX_QUIET, self._quiet[hour] + 1)
        self._before[hour] = self._minute[hour] if day - previous == 1 else _UNKNOWN
        self._visit_day[hour], self._moved[hour] = day, False
        self._minute[hour] = _NONE

    def _own(self) -> None:
        """Give the profile its own per-hour arrays (copies of the shared empty ones)."""
        self._quiet, self._visit_day = (
            bytearray(self._quiet),
            array("i", self._visit_day),
        )
        self._moved, self._minute = bytearray(self._moved), bytearray(self._minute)
        self._before = bytearray(self._before)

    def _spread(self, onset: Onset) -> float:
        return onset.spread if onset.days > 1 else max(onset.spread, FIRST_SPREAD)

    def _count_misses(self, day: int, tod: float) -> None:
        """Count the onsets whose window is over today without them; drop the missed."""
        kept = []
        for onset in self.onsets:
            until = _signed(onset.tod - tod)
            if until < -(MARGIN_MIN + 2 * self._spread(onset)):
                occurred = day + math.floor((tod + until) / DAY)  # its day, local
                if onset.checked < occurred:
                    onset.checked = occurred
                    onset.missed = 0 if onset.day >= occurred else onset.missed + 1
            if onset.missed < MAX_MISSED:
                kept.append(onset)
        self.onsets = kept

    def learn_onset(self, tod: float, uncertainty: float, day: int) -> Onset:
        """Fold an onset at local time of day ``tod`` (known to within ``uncertainty`` s)."""
        tod %= DAY
        for onset in self.onsets:
            offset = _signed(tod - onset.tod)
            if abs(offset) <= ONSET_MATCH:
                onset.days = min(onset.days + 1, 999)
                weight = max(ONSET_ALPHA, 1.0 / onset.days)
                onset.tod = (onset.tod + weight * offset) % DAY
                onset.spread += weight * (abs(offset) + uncertainty - onset.spread)
                onset.day = max(onset.day, day)
                onset.missed = 0
                return onset
        onset = Onset(tod, uncertainty, 1, day)
        self.onsets.append(onset)
        if len(self.onsets) > MAX_ONSETS:
            self.onsets.remove(min(self.onsets, key=lambda o: (o.day, o.days)))
        return onset

    # ------------------------------------------------------------------ reading

    def quiet(self, hour: int, day: int) -> bool:
        """Whether ``hour`` was still on the last :data:`QUIET_DAYS` day(s) before ``day``.

        A visit of an earlier day counts as finished; a move in the visit of ``day``
        itself makes the hour not quiet.
        """
        count, visited = self._quiet[hour], self._visit_day[hour]
        if 0 <= visited < day:
            if self._moved[hour]:
                return False
            count += 1 if day - visited <= 1 else 0
        elif visited == day and self._moved[hour]:
            return False
        return count >= QUIET_DAYS

    def quiet_after(self, hour: int, day: int, minute: int) -> bool:
        """Whether on the day before ``day`` the register was still in ``hour`` from ``minute`` on."""
        visited = self._visit_day[hour]
        if visited == day:
            last = self._before[hour]
        elif visited == day - 1:
            last = self._minute[hour]
        else:
            return False
        return last == _NONE or last < minute

    def idle(
        self, interval: float, limits: IntervalLimits, model: IntervalModel | None
    ) -> bool:
        """Whether :meth:`interval` returns ``interval`` as it is at any time.

        No onsets, and the interval at the maximum or nothing to rest on (no hour
        visited on two days, no step rate): the read path's shortcut.
        """
        return not self.onsets and (
            interval >= limits.max_interval
            or (not self._history and (model is None or model.step_rate <= 0))
        )

    def interval(
        self,
        t: float,
        interval: float,
        limits: IntervalLimits,
        *,
        rest: bool = True,
        model: IntervalModel | None = None,
    ) -> float:
        """``interval`` adjusted at wall time ``t``: max in a quiet regime, short at onsets.

        ``rest`` False (another profile says the hour is busy) leaves out the rest at
        the maximum. With the register's ``model``, a stillness in which its
        step-rate memory expected :data:`STALE_STEPS` steps or more (and at least
        :data:`QUIET_HOLD`; :data:`STALE_STEPS_FLAT` in a stillness where no read
        changed beyond the noise) proves that memory stale: the interval may then grow at
        once to the model's rate-based target (see :func:`settled_target`), on the
        first day too. Stays within ``limits``; returns ``interval`` itself where
        nothing applies.
        """
        still_for = 0.0 if self._last_move is None else t - self._last_move
        still = rest and still_for >= QUIET_HOLD
        if not self.onsets and (
            not still
            or interval >= limits.max_interval
            or (not self._history and (model is None or model.step_rate <= 0))
        ):
            return interval  # nothing can apply (the common case: cheap)
        try:
            local = self._local(t)
        except (OverflowError, ValueError, OSError):
            return interval
        day = math.floor(local / DAY)
        tod = local - day * DAY
        ahead_day = math.floor((local + QUIET_AHEAD) / DAY)
        ahead_tod = local + QUIET_AHEAD - ahead_day * DAY
        new = interval
        if still and model is not None and model.step_rate > 0:
            new = max(new, settled_target(model, still_for, limits))
            new = max(
                new, isolated_target(model, still_for, self._still_before, limits)
            )
            flat_for = t - (self._last_active or t)
            if flat_for >= QUIET_HOLD:
                new = max(
                    new, settled_target(model, flat_for, limits, STALE_STEPS_FLAT)
                )
        hour, ahead = int(tod // HOUR), int(ahead_tod // HOUR)
        if (
            still
            and self._history
            and new < limits.max_interval
            and self.quiet_after(hour, day, int(tod % HOUR // 60))
            and (ahead == hour or self.quiet(ahead, ahead_day))
        ):
            new = limits.max_interval
        for onset in self.onsets:
            if day - onset.day > FORGET_DAYS:
                continue
            spread = self._spread(onset)
            until = _signed(onset.tod - tod)  # seconds to the onset (negative: past)
            if until < -(MARGIN_MIN + 2 * spread):
                continue  # over for today
            early = until - 2 * spread - LEAD_MIN  # seconds to the window's start
            start = t + early - ONSET_HORIZON
            if self._last_move is not None and self._last_move >= start:
                continue  # it moved since: the onset came, its model takes over
            if early > 0:  # before the window: due no later than its start
                cap = max(ONSET_INTERVAL, early)
            else:  # inside: 1 / sqrt(density) of the onset's time (see the module)
                z = until / (spread + LEAD_MIN / 2)
                cap = ONSET_INTERVAL * math.exp(z * z / 4)
            new = min(new, max(limits.min_interval, cap))
        if new == interval:
            return interval
        return limits.clamp(new)

    # ------------------------------------------------------------------ state

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe, versioned state (hours as 72 bytes, zlib in base64; onsets as text).

        Per hour one byte: days still in a row (low 4 bits), moved in the last
        visit (bit 4) and that visit's age in days before ``day`` (bits 5-7, 7: a
        week or more, or never); then per hour the minute of the last move in that
        visit, then in the visit the day before it (63: none, 62: no such visit).
        """
        base = max(self._visit_day)
        hours = bytes(
            min(self._quiet[h], _MAX_QUIET)
            | (16 if self._moved[h] else 0)
            | (
                min(base - self._visit_day[h], _NEVER)
                if self._visit_day[h] >= 0
                else _NEVER
            )
            << 5
            for h in range(HOURS)
        )
        minutes = bytes(self._minute) + bytes(self._before)
        state: dict[str, Any] = {"version": STATE_VERSION}
        if base >= 0:
            packed = zlib.compress(hours + minutes, 9)
            state.update(day=base, hours=base64.b64encode(packed).decode("ascii"))
        if self.onsets:
            state["onsets"] = ",".join(
                f"{round(o.tod)}/{round(o.spread)}/{o.days}/{max(0, base - o.day)}"
                f"/{o.missed}/{max(0, base - o.checked) if o.checked >= 0 else -1}"
                for o in self.onsets
            )
        return state

    @classmethod
    def from_dict(cls, data: object, *, tz: tzinfo | None = None) -> DailyProfile:
        """Restore :meth:`to_dict` output; never raises (bad parts start empty)."""
        profile = cls(tz)
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            return profile
        base = data.get("day")
        hours = data.get("hours")
        if isinstance(base, int) and not isinstance(base, bool) and base >= 0:
            packed = _unpack(hours)
            minutes = packed[HOURS:]
            fits = base < _DAY_LIMIT  # a day number the day array holds
            if len(packed) == 3 * HOURS and max(minutes) <= _NONE and fits:
                profile._own()
                for h, byte in enumerate(packed[:HOURS]):
                    age = byte >> 5
                    profile._quiet[h] = byte & 0x0F
                    profile._moved[h] = bool(byte & 16) and age < _NEVER
                    profile._visit_day[h] = base - age if age < _NEVER else -1
                profile._minute = bytearray(minutes[:HOURS])
                profile._before = bytearray(minutes[HOURS:])
                profile._history = any(b != _UNKNOWN for b in profile._before) or (
                    sum(v >= 0 for v in profile._visit_day) > 1
                )
            profile.onsets = _onsets(data.get("onsets"), base)
        return profile


def _read_only(empty: int) -> bytearray:
    """:data:`HOURS` times ``empty``, typed as the bytes it stands in for.

    A fresh profile's shared, read-only arrays: every profile starts with these (no
    per-hour memory until its first visit); writing one raises ``TypeError`` (a
    tuple), so a write path that forgot :meth:`DailyProfile._own` fails loudly
    instead of changing every profile.
    """
    return cast("bytearray", (empty,) * HOURS)


_FRESH_QUIET = _read_only(0)
_FRESH_VISIT_DAY = cast("array[int]", (-1,) * HOURS)  # read-only too (a tuple)
_FRESH_MOVED = _read_only(False)
_FRESH_MINUTE = _read_only(_NONE)
_FRESH_BEFORE = _read_only(_UNKNOWN)
_DAY_LIMIT = 2**31
"""Bound (exclusive, both signs) of the local day numbers the day array holds."""


def settled_target(
    model: IntervalModel,
    still_for: float,
    limits: IntervalLimits,
    stale: float = STALE_STEPS,
) -> float:
    """Return the model's target without its step cap once ``still_for`` s proved it stale.

    The step rate decays with :data:`~.intervals.STEP_MEMORY` and no step settled
    during the stillness (a step is a move), so the rate when it began was
    ``step_rate * exp(still_for / STEP_MEMORY)``. If that rate expected at least
    ``stale`` steps in ``still_for`` and none came, the regime changed:
    return the rate-only target (``SAFETY * resolution / rate``, within ``limits``).
    Otherwise (and for non-numeric registers) the limits' minimum: no change.
    """
    if not model.numeric or model.step_rate <= 0:
        return limits.min_interval
    expected = model.step_rate * math.exp(still_for / STEP_MEMORY) * still_for
    if expected < stale:
        return limits.min_interval
    if model.rate <= 0:
        return limits.max_interval
    return limits.clamp(SAFETY * model.resolution / model.rate)


def isolated_target(
    model: IntervalModel,
    still_for: float,
    still_before: float,
    limits: IntervalLimits,
) -> float:
    """Return the model's target with a lone step's rate taken over the quiet time around it.

    The step-rate memory (time constant :data:`~.intervals.STEP_MEMORY`) makes one
    step a rate of one per hour, fading over hours: after a daily counter's reset at
    midnight, the day's last step at sunset, or a grid voltage that drifted by a
    tolerance and stayed, the interval stayed near a minute for about three hours.
    A step that came after at least :data:`ISOLATED_QUIET` s of stillness
    (``still_before``), or after at least :data:`STEP_FREE` s without a step (the
    model's ``step_gap``, then the window: a slow random walk such as a grid
    voltage moves all the time and crosses its tolerance between two reads at the
    maximum interval about once a night, which settles as a step), and is the only
    one the memory held when the stillness after it began (at most
    :data:`ISOLATED_HELD`), is one step in that time plus ``still_for`` seconds: the
    step bound at that rate (square-root or linear law, as the model's), with the
    rate-based target, within ``limits``. Otherwise (and for non-numeric
    registers) the limits' minimum: no change.
    """
    gap = model.step_gap
    before = max(still_before, gap) if gap >= STEP_FREE else still_before
    if not model.numeric or model.step_rate <= 0 or before < ISOLATED_QUIET:
        return limits.min_interval
    held = model.step_rate * STEP_MEMORY * math.exp(still_for / STEP_MEMORY)
    if held > ISOLATED_HELD:
        return limits.min_interval
    scale = model.step_rate * (before + still_for)  # memory's rate / lone rate
    if scale <= 1.0:
        return limits.min_interval
    law = scale if intervals.STEP_REFERENCE is None else math.sqrt(scale)
    target = model.step_bound() * law
    if model.rate > 0:
        target = min(target, SAFETY * model.resolution / model.rate)
    return limits.clamp(target)


def _unpack(text: object) -> bytes:
    """Return the 3 x :data:`HOURS` bytes of the stored ``hours`` text, else nothing."""
    if not isinstance(text, str) or len(text) > 8 * HOURS:
        return b""
    try:
        inflate = zlib.decompressobj()
        data = inflate.decompress(base64.b64decode(text, validate=True), 3 * HOURS + 1)
    except (ValueError, zlib.error):
        return b""
    return data if inflate.eof else b""


def _onsets(text: object, base: int) -> list[Onset]:
    if not isinstance(text, str) or len(text) > 48 * MAX_ONSETS:
        return []
    onsets: list[Onset] = []
    for item in text.split(",")[:MAX_ONSETS]:
        parts = item.split("/")
        try:
            tod, spread, days, age, missed, checked = (int(p) for p in parts)
        except ValueError:
            return []
        if not (
            0 <= tod < DAY
            and spread >= 0
            and days >= 1
            and age >= 0
            and 0 <= missed < MAX_MISSED
            and checked >= -1
        ):
            return []
        onsets.append(
            Onset(
                float(tod),
                float(spread),
                days,
                base - age,
                missed,
                -1 if checked < 0 else base - checked,
            )
        )
    return onsets


def _signed(seconds: float) -> float:
    """``seconds`` modulo a day, in (-half a day, half a day]."""
    wrapped = seconds % DAY
    return wrapped - DAY if wrapped > DAY / 2 else wrapped
