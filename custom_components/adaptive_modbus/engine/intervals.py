"""Per-register adaptive poll interval: rate, noise floor and the reason for every decision.

One :class:`IntervalModel` per register turns the stream of reads into a poll
interval between ``limits.min_interval`` and ``limits.max_interval``:

* **Rate.** The signal rate is estimated from successive differences
  ``Δ = v_k - v_{k-1}`` over gaps ``dt`` as a decayed regression of ``Δ²`` on
  ``dt²``: ``Δ² ≈ rate²·dt² + noise²``. Noise is subtracted with a margin
  (:data:`NOISE_MARGIN`), so white noise adds nothing to the rate on average.
* **Noise floor.** Measurement noise is estimated from the residual of each read
  against the straight line through the two reads before it (a linear trend has
  residual 0, whatever the gaps); the RMS of the last :data:`NOISE_WINDOW`
  normalised residuals, trimmed of outliers beyond :data:`NOISE_TRIM` median-based
  sigmas, is robust to the occasional real step. ``noise`` is the
  RMS read-to-read difference that noise alone produces (``√2·σ`` of one read).
* **Target.** ``SAFETY · resolution / rate`` clamped to the limits, where
  ``resolution = max(tolerance, noise)``: the expected real change between two
  reads stays within :data:`SAFETY` of the tolerance, and changes smaller than
  the noise floor are never chased.
* **Shorten fast.** A read that differs from the previous one by more than the
  jump threshold ``max(resolution, JUMP_K·noise)`` sets the interval at once to
  the smaller of the target and the interval at which that change would have
  stayed within the tolerance (:attr:`Reason.JUMP`). A target below the current
  interval is adopted at once (:attr:`Reason.RATE`).
* **Level shifts.** A jump followed by reads that stay put (drift since the jump
  below :data:`SETTLE_FRACTION` of what the jump's rate would have added, once
  that is measurable above the noise) was a step, not a trend: a relay, a load
  switching on. Its sample is taken out of the rate, and quiet reads lengthen the
  interval by :data:`SETTLED_GROWTH` instead of :data:`GROWTH` until it is back
  where it was before the jump, or at the target if that is shorter
  (:attr:`Reason.QUIET`, "level shift settled"). Reads that keep moving at the
  jump's pace keep the short interval. Steps cannot be foreseen, only bounded:
  settled steps are counted into a step rate ``λ`` (steps per second, memory
  :data:`STEP_MEMORY`), and the target never exceeds a step bound. The linear
  bound ``2·STEP_BUDGET/λ`` (:data:`STEP_REFERENCE` ``None``) is the interval at
  which a step leaves the shown value stale for at most :data:`STEP_BUDGET` of
  the time on average. By default (:data:`STEP_REFERENCE` 900 s) the bound follows
  the square-root law instead,
  ``2·STEP_BUDGET/√(λ·λ₀)`` with ``λ₀ = 1/STEP_REFERENCE``: read every ``I`` s, a
  register stepping at rate ``λ`` is stale ``λ·I/2`` of the time, and for a given
  number of reads the summed stale time of all registers is least when ``λ·I²``
  is the same for every register, so ``I ∝ 1/√λ``. At the reference rate the two
  bounds agree; a register stepping more often is read less often than the budget
  asks, one stepping rarely more often.
* **Lengthen slowly.** Otherwise the interval grows by at most :data:`GROWTH` per
  read taken a full interval apart (less for reads taken sooner, e.g. as a rider
  of a block read), never beyond the target (:attr:`Reason.QUIET`).
* **Fast start.** A new register (not a restored one) lengthens by
  :data:`START_GROWTH` per quiet read up to :data:`START_LIMIT` until it first
  moves (a jump, a change, a rate asking for a shorter interval).
* **Steps confirmed later.** A jump on a register whose recent jumps settled into
  level shifts (and seldom went on as trends) is read again at
  :data:`STEP_CONFIRM` of the interval before it, not at the jump's pace.
* **Noisy registers.** When the noise floor exceeds the tolerance the register is
  flagged ``noisy`` (cleared below :data:`NOISY_CLEAR` of it) and decisions carry
  :attr:`Reason.NOISY`; the interval follows the noise-based target, so a noisy
  register is not pinned to the minimum interval.
* **Tolerance 0** ("every change matters") on a numeric register uses
  :data:`ZERO_TOLERANCE` as the smallest step: every change is a jump, and a
  register that changes on every read by noise alone is flagged noisy.
* **Non-numeric registers** (strings, bools: ``value`` is ``None``) follow the
  ``changed`` flag: a change goes to the minimum interval (JUMP), a quiet read
  lengthens (QUIET); ``rate`` is then changes per second.

Cluster coordination: :func:`quantize` snaps intervals to a harmonic ladder and
:func:`aligned_due` puts due times on multiples of the interval from a common
epoch, so registers that share a block come due together and share a request.
"""

from __future__ import annotations

import base64
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
import math
import struct
from typing import Any

from .errors import EngineUsageError

STATE_VERSION = 2
"""2: compact (short keys, 6 significant digits, residuals packed as float16, no
decision text: about 300 bytes); version 1 still loads."""
SAFETY = 0.6
"""Fraction of the tolerance the expected change between two reads may use."""
GROWTH = 1.25
"""Largest factor by which one quiet read (a full interval apart) lengthens the interval."""
JUMP_K = 3.0
"""A change must exceed this many noise floors (and the tolerance) to count as a jump."""
NOISE_MARGIN = 2.0
"""Multiples of noise² subtracted per read from Δ² when estimating the rate (conservative)."""
RATE_DECAY = 0.75
"""Decay of the rate statistics per full-weight read (memory of about four reads)."""
NOISE_WINDOW = 31
"""Residuals kept for the noise estimate."""
NOISE_TRIM = 3.5
"""Residuals above this many median-based noise estimates are outliers (real steps)."""
MIN_NOISE_SAMPLES = 5
"""Residuals needed before the noisy flag may change."""
NOISY_CLEAR = 0.8
"""The noisy flag clears when noise falls below this fraction of the tolerance (hysteresis)."""
ZERO_TOLERANCE = 1e-9
"""Smallest step used for a numeric tolerance of 0 (every change matters)."""
SETTLE_FRACTION = 0.25
"""A jump settles into a level shift when the drift after it stays below this share of
the change the jump's rate would have added over the same time."""
CONTINUE_FRACTION = 0.5
"""Drift after a jump above this share of the jump's pace is a trend: no level shift."""
SETTLED_GROWTH = 2.0
"""Lengthening per quiet read (a full interval apart) after a settled level shift."""
START_GROWTH = 2.0
"""Lengthening per quiet read (a full interval apart) of a new register until its first
move (a jump, a change, or a rate that asks for a shorter interval): nothing says its
minimum interval is needed, and every read until then costs a request."""
START_LIMIT = 80.0
"""Interval (s) up to which a new register lengthens by :data:`START_GROWTH`, by
:data:`GROWTH` beyond: one that rests at first and then starts (a compressor off for
the first hour) is not yet at its maximum when it does (README, "Engine ideas of
part 2": 300 s cost the example trace 0.2 points of time out of tolerance)."""
STEP_CONFIRM = 0.25
"""After a jump on a register whose recent jumps settled into level shifts (at least
half a settled step in memory, i.e. one within the last 40 minutes, and more than
twice as many steps as trends), the next read comes at
this share of the interval before the jump instead of as soon as the jump's pace
asks: what was read is the new level, and a read at the minimum interval only
confirms the step. 0: off."""
STEP_BUDGET = 0.02
"""Average share of time a register may show a stale level after an unforeseeable step."""
STEP_MEMORY = 3600.0
"""Time constant (s) of the step-rate estimate."""
STEP_REFERENCE: float | None = 900.0
"""A mean time between steps (s): the step bound follows the square-root law around
it, ``2·STEP_BUDGET/√(λ/STEP_REFERENCE)`` (the default since it measured better on
trace and wrongdefaults at equal freshness, README "Engine ideas of part 2").
None: the linear bound ``2·STEP_BUDGET/λ``."""
MAX_GAP_RATIO = 4.0
"""Residuals across gaps whose ratio exceeds this are not used for the noise estimate."""
_MIN_GAP_RATIO = 1.0 / MAX_GAP_RATIO
_HALF_NORMAL_MEDIAN = 0.6744897501960817
_REL_EPS = 1e-9
_DUE_EPS = 1e-6


class Reason(StrEnum):
    """Why an interval was set."""

    INITIAL = "initial"
    RATE = "rate"
    JUMP = "jump"
    QUIET = "quiet"
    NOISY = "noisy"
    PATTERN = "pattern"
    WRITE = "write"
    FIXED = "fixed"
    ERROR = "error"
    VIEWED = "viewed"  # a live view watches the unit: the upper bound is shrunk


@dataclass(frozen=True, slots=True, eq=False)
class IntervalDecision:
    """One interval change, kept with its reason and a human-readable detail.

    The detail may be given as a function of no arguments: it is formatted when
    first read (most decisions are superseded unread), then kept.
    """

    at: float
    interval: float
    previous: float
    reason: Reason
    _detail: str | Callable[[], str] | _RateNumbers

    @property
    def detail(self) -> str:
        """The human-readable detail (formatted on first use)."""
        text = self._detail
        if not isinstance(text, str):
            # the numbers of a rate, quiet or noisy decision (the read path), or a function
            text = _rate_detail(text) if isinstance(text, tuple) else text()
            object.__setattr__(self, "_detail", text)  # a cache, not a change
        return text

    def __eq__(self, other: object) -> bool:
        """Equal when every field, the detail as text, is."""
        if not isinstance(other, IntervalDecision):
            return NotImplemented
        return (self.at, self.interval, self.previous, self.reason, self.detail) == (
            other.at, other.interval, other.previous, other.reason, other.detail,
        )  # fmt: skip

    __hash__ = None  # type: ignore[assignment]  # mutable cache: as an eq dataclass

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "at": self.at,
            "interval": self.interval,
            "previous": self.previous,
            "reason": self.reason.value,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: object) -> IntervalDecision | None:
        """Parse :meth:`to_dict` output; ``None`` when anything is missing or invalid."""
        if not isinstance(data, Mapping):
            return None
        at, interval, previous = (
            _number(data.get(k)) for k in ("at", "interval", "previous")
        )
        detail, reason = data.get("detail"), data.get("reason")
        if not isinstance(reason, str) or reason not in {r.value for r in Reason}:
            return None
        if (
            at is None
            or interval is None
            or previous is None
            or not isinstance(detail, str)
        ):
            return None
        return cls(at, interval, previous, Reason(reason), detail)


# the read path builds a decision on most reads: without the frozen dataclass's
# __init__ (one object.__setattr__ call per field), the same fields and values
_new_object = object.__new__
_set_at, _set_interval, _set_previous, _set_reason, _set_detail = (
    IntervalDecision.__dict__[name].__set__
    for name in ("at", "interval", "previous", "reason", "_detail")
)


def _decision(
    at: float,
    interval: float,
    previous: float,
    reason: Reason,
    detail: str | Callable[[], str] | _RateNumbers,
) -> IntervalDecision:
    """``IntervalDecision(at, interval, previous, reason, detail)``, built faster."""
    decision: IntervalDecision = _new_object(IntervalDecision)
    _set_at(decision, at)
    _set_interval(decision, interval)
    _set_previous(decision, previous)
    _set_reason(decision, reason)
    _set_detail(decision, detail)
    return decision


@dataclass(slots=True)
class _PendingShift:
    """A jump waiting to be judged: a level shift (step) or the start of a trend."""

    pre_interval: float  # interval before the jump
    excess: float  # the jump's excess in the rate accumulator, decayed along with it
    pace: float  # |change| per second the jump showed
    sign: float  # direction of the jump
    t: float  # the read that showed the jump, and its value
    value: float

    def to_list(self) -> list[float]:
        return [
            self.pre_interval,
            self.excess,
            self.pace,
            self.sign,
            self.t,
            self.value,
        ]

    @classmethod
    def from_list(cls, data: object) -> _PendingShift | None:
        if not isinstance(data, list) or len(data) != 6:
            return None
        numbers = [_number(x) for x in data]
        if any(x is None for x in numbers):
            return None
        pre, excess, pace, sign, t, value = (float(x) for x in numbers if x is not None)
        if pre <= 0 or excess < 0 or pace < 0:
            return None
        return cls(pre, excess, pace, sign, t, value)


@dataclass(frozen=True, slots=True)
class IntervalLimits:
    """Bounds of a register's poll interval in seconds (``0 < min <= max``)."""

    min_interval: float
    max_interval: float

    def __post_init__(self) -> None:
        """Refuse bounds that are not positive, finite and ordered."""
        if not (math.isfinite(self.min_interval) and self.min_interval > 0):
            raise EngineUsageError(
                f"min_interval must be a positive number, got {self.min_interval}"
            )
        if not (
            math.isfinite(self.max_interval) and self.max_interval >= self.min_interval
        ):
            raise EngineUsageError(
                f"max_interval must be a number >= min_interval, got {self.max_interval}"
            )

    def clamp(self, interval: float) -> float:
        """``interval`` within the limits (NaN becomes the minimum)."""
        low = self.min_interval
        if interval != interval:  # noqa: PLR0124  NaN (a hot path: no call)
            return low
        # min(max, max(min, interval)), without the calls
        value = interval if interval > low else low  # noqa: FURB136
        high = self.max_interval
        return value if value < high else high  # noqa: FURB136


DEFAULT_LIMITS = IntervalLimits(5.0, 300.0)


@dataclass(frozen=True, slots=True)
class IntervalPin:
    """A user's pin on a register's interval: a fixed interval, or bounds.

    ``interval`` fixes the interval (the model then only watches); otherwise
    ``min_interval`` and/or ``max_interval`` replace the register's bounds (the one
    not given stays as configured). Neither the model nor the optimization loop
    moves a register outside its pin; learning resets keep it.
    """

    interval: float | None = None
    min_interval: float | None = None
    max_interval: float | None = None

    def __post_init__(self) -> None:
        """Refuse a pin that pins nothing, mixes both kinds or has bad numbers."""
        values = {
            "interval": self.interval,
            "min_interval": self.min_interval,
            "max_interval": self.max_interval,
        }
        for name, value in values.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise EngineUsageError(f"{name} must be a positive number, got {value}")
        if self.interval is not None:
            if self.min_interval is not None or self.max_interval is not None:
                raise EngineUsageError(
                    "pin either an interval or bounds (min_interval, max_interval)"
                )
        elif self.min_interval is None and self.max_interval is None:
            raise EngineUsageError(
                "a pin needs an interval, a min_interval or a max_interval"
            )
        if (
            self.min_interval is not None
            and self.max_interval is not None
            and self.min_interval > self.max_interval
        ):
            raise EngineUsageError(
                f"min_interval {self.min_interval} is above "
                f"max_interval {self.max_interval}"
            )

    def limits(self, base: IntervalLimits) -> IntervalLimits:
        """Return the bounds in force: the pin's, the rest from ``base``."""
        if self.interval is not None:
            return IntervalLimits(self.interval, self.interval)
        low = base.min_interval if self.min_interval is None else self.min_interval
        high = base.max_interval if self.max_interval is None else self.max_interval
        if self.min_interval is None:
            low = min(low, high)
        if self.max_interval is None:
            high = max(low, high)
        return IntervalLimits(low, high)

    def to_dict(self) -> dict[str, float | None]:
        """Return a JSON-safe dict."""
        return {
            "interval": self.interval,
            "min_interval": self.min_interval,
            "max_interval": self.max_interval,
        }

    @classmethod
    def from_dict(cls, data: object) -> IntervalPin:
        """Rebuild from :meth:`to_dict`; raises ``ValueError`` on what is unusable."""
        if not isinstance(data, Mapping):
            raise TypeError("a pin is not a mapping")

        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(number("interval"), number("min_interval"), number("max_interval"))


class IntervalModel:
    """Adaptive poll interval of one register (see the module docstring for the rules).

    Attributes: ``interval`` (current base interval, s), ``rate`` (estimated signal
    change per second in engineering units; changes per second when non-numeric),
    ``noise`` (RMS read-to-read difference caused by noise, units), ``noisy``
    (noise above tolerance), ``activity`` (signal change of the last read in
    tolerances per second, changes per second when non-numeric: feed it to
    :class:`~.patterns.ActivityProfile`), ``last_decision``, ``step_gap`` (the
    time without a settled step before the newest one, s: since the first read
    when it is the first, since the last stored read after a restore; 0 before a
    step).
    """

    # read and written on every read: kept in slots, not an instance dict
    __slots__ = (
        "_acc_rate",
        "_acc_weight",
        "_last_step",
        "_last_t",
        "_last_value",
        "_ordered",
        "_recover_to",
        "_residuals",
        "_shift",
        "_squares",
        "_starting",
        "_step_at",
        "_steps",
        "_trends",
        "activity",
        "interval",
        "last_decision",
        "limits",
        "no_value_reads",
        "noise",
        "noise_margin",
        "noisy",
        "numeric",
        "rate",
        "step_budget",
        "step_gap",
        "tolerance",
        "unit",
    )

    def __init__(
        self,
        tolerance: float,
        limits: IntervalLimits,
        *,
        numeric: bool = True,
        unit: str = "",
        at: float = 0.0,
    ) -> None:
        """Start the model of a register with tolerance within limits, no reads yet."""
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise EngineUsageError(
                f"tolerance must be zero or a positive number, got {tolerance}"
            )
        self.tolerance = float(tolerance)
        self.limits = limits
        self.numeric = numeric
        self.unit = unit
        self.interval = limits.min_interval
        # tunable per register (PollEngine.set_step_budget / set_noise_margin)
        self.step_budget = STEP_BUDGET
        self.noise_margin = NOISE_MARGIN
        self.rate = 0.0
        self.noise = 0.0
        self.noisy = False
        self.activity = 0.0
        # numeric reads without a value (NaN, inf): never a change
        self.no_value_reads = 0
        self._last_t: float | None = None
        self._last_value: float | None = None
        self._last_step: tuple[float, float] | None = None
        self._residuals: list[float] = []
        # the residuals sorted, and their squares in the same order: the noise
        # estimate updates in O(window) C-speed steps instead of a sort per read
        self._ordered: list[float] = []
        self._squares: list[float] = []
        self._acc_rate = 0.0
        self._acc_weight = 0.0
        self._shift: _PendingShift | None = None
        # after a settled level shift: grow fast up to this interval
        self._recover_to = 0.0
        self._steps = 0.0  # settled steps, decayed with time constant STEP_MEMORY
        # the newest settled step's jump (before any: the first read; on a restore:
        # the last read stored) and the step-free time before it (s; not kept)
        self._step_at: float | None = None
        self.step_gap = 0.0
        # jumps that went on at their pace (trends), decayed the same way
        self._trends = 0.0
        # a new register lengthens by START_GROWTH per quiet read until it first
        # moves (not kept: a restored model has its history)
        self._starting = True
        self.last_decision = IntervalDecision(
            at,
            self.interval,
            self.interval,
            Reason.INITIAL,
            f"start at min interval {_secs(self.interval)} until the rate is learned",
        )

    # ------------------------------------------------------------------ public API

    @property
    def resolution(self) -> float:
        """Smallest change worth tracking: ``max(tolerance, noise)`` (never 0)."""
        return max(self.tolerance, self.noise, ZERO_TOLERANCE)

    @property
    def step_rate(self) -> float:
        """Settled level shifts per second: the decayed count over :data:`STEP_MEMORY`.

        Dividing by the whole memory span, not by the time observed so far, keeps one
        early step from reading as a high rate (a prior of no steps in the unseen part).
        """
        return self._steps / STEP_MEMORY

    def step_bound(self) -> float:
        """Longest interval the step rate allows (inf without steps), unclamped.

        ``2·step_budget/λ``; with :data:`STEP_REFERENCE` set the square-root law
        ``2·step_budget/√(λ/STEP_REFERENCE)`` (see the module docstring).
        """
        rate = self.step_rate
        if rate <= 0:
            return math.inf
        reference = STEP_REFERENCE
        if reference is None:
            return 2.0 * self.step_budget / rate
        return 2.0 * self.step_budget / math.sqrt(rate / reference)

    def target(self) -> float:
        """Rate- and step-based target interval, clamped (max when nothing changes)."""
        if not self.numeric:
            return self.limits.max_interval
        target = math.inf
        if self.rate > 0:
            target = SAFETY * self.resolution / self.rate
        if self._steps > 0:
            target = min(target, self.step_bound())
        return (
            self.limits.clamp(target)
            if math.isfinite(target)
            else self.limits.max_interval
        )

    def observe(
        self, t: float, value: float | None, changed: bool
    ) -> IntervalDecision | None:
        """Learn from a read at time ``t``; return the decision, ``None`` if nothing changed.

        Numeric models use ``value``: ``None``, NaN or inf ("no value") is counted in
        ``no_value_reads``, never counts as a change and breaks the baseline, so
        the next number starts a new one; non-numeric models use ``changed``.
        Reads at or before the previous read time are ignored.
        """
        if self._last_t is not None and not t > self._last_t:
            return None
        if not self.numeric:
            return self._observe_event(t, changed)
        if value is None or not math.isfinite(value):
            self.no_value_reads += 1
            self._last_t, self._last_value, self._last_step = t, None, None
            self._shift = None
            return None
        value = float(value)
        last_t = self._last_t
        if value == self._last_value and last_t is not None and self._shift is None:
            return self._observe_unchanged(t, value, last_t)
        return self._observe_numeric(t, value)

    def forget_baseline(self) -> None:
        """Start a new baseline at the next read, keeping interval, rate and noise.

        For a restart: the value read hours later is not a change of one interval.
        """
        self._last_t, self._last_value, self._last_step = None, None, None
        self._shift = None
        self._recover_to = 0.0

    def reset(self, t: float, reason: Reason = Reason.WRITE) -> IntervalDecision:
        """Set the interval to the minimum (after a write or an incident).

        The next read starts a new baseline, so the written change is not
        mistaken for signal; learned rate and noise are kept.
        """
        self.forget_baseline()
        detail = f"reset to min interval {_secs(self.limits.min_interval)} after {reason.value}"
        return self._record(t, self.limits.min_interval, reason, detail)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, versioned, compact state (see :meth:`from_dict`).

        Numbers keep 6 significant digits (times and the last value 10), the noise
        residuals travel as float16 fractions of their largest, and the last decision
        keeps its reason and numbers but not its text. ``activity`` (of the last read,
        recomputed by the next) is not kept.
        """
        scale = max(self._residuals, default=0.0)
        packed = (
            b"".join(struct.pack("<e", r / scale) for r in self._residuals)
            if scale
            else b""
        )
        decision = self.last_decision
        # flat keys, few lists: Home Assistant's Store indents every list item on a line
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "tol": _short(self.tolerance),
            "lo": self.limits.min_interval,
            "hi": self.limits.max_interval,
            "i": _exact(self.interval),
            "ar": _short(self._acc_rate),
            "aw": _short(self._acc_weight),
            "res": base64.b64encode(struct.pack("<d", scale) + packed).decode("ascii"),
            "dt": _time(decision.at),
            "dp": _nine(decision.previous),
            "dr": decision.reason.value,
        }
        if decision.interval != self.interval:
            state["di"] = _nine(decision.interval)
        optional: dict[str, Any] = {
            "num": None if self.numeric else False,
            "unit": self.unit or None,
            "noisy": self.noisy or None,
            "steps": _short(self._steps) or None,
            "trn": _short(self._trends) or None,
            "rec": _short(self._recover_to) or None,
            "lt": None if self._last_t is None else _time(self._last_t),
            "lv": None if self._last_value is None else _fine(self._last_value),
            "lsd": None if self._last_step is None else _short(self._last_step[0]),
            "lsv": None if self._last_step is None else _short(self._last_step[1]),
            "shift": None
            if self._shift is None
            else [
                *(_short(x) for x in self._shift.to_list()[:4]),
                _time(self._shift.t),
                _fine(self._shift.value),
            ],
        }
        state.update(
            (key, value) for key, value in optional.items() if value is not None
        )
        return state

    @classmethod
    def from_dict(
        cls,
        data: object,
        *,
        tolerance: float | None = None,
        limits: IntervalLimits | None = None,
        numeric: bool | None = None,
    ) -> IntervalModel:
        """Restore :meth:`to_dict` output; never raises on bad data.

        ``tolerance``, ``limits`` and ``numeric`` given here (the current
        configuration) win over the stored ones. Missing, corrupt or
        unknown-version data falls back field by field to a fresh model.
        """
        src: Mapping[str, Any] = {}
        if isinstance(data, Mapping) and data.get("version") == 1:
            src = data
        elif isinstance(data, Mapping) and data.get("version") == STATE_VERSION:
            src = _unpacked(data)
        if tolerance is None:
            stored = _number(src.get("tolerance"))
            tolerance = stored if stored is not None and stored >= 0 else 0.0
        if numeric is None:
            numeric = _flag(src.get("numeric"), True)
        unit = src.get("unit")
        model = cls(
            tolerance,
            limits or _stored_limits(src),
            numeric=numeric,
            unit=unit if isinstance(unit, str) else "",
        )
        model._restore(src)
        return model

    # ------------------------------------------------------------------ observation paths

    def _observe_numeric(self, t: float, value: float) -> IntervalDecision | None:
        """One numeric read: noise, rate, jump or settling, then the decision.

        The per-read hot path: the noise update and what :meth:`_accumulate` does
        are inlined, with the same arithmetic in the same order (the same results to
        the bit).
        """
        last_t, last_value = self._last_t, self._last_value
        self._last_t, self._last_value = t, value
        if last_t is None or last_value is None:
            self._last_step = None
            if self._step_at is None:
                self._step_at = t
            return None
        dt, delta = t - last_t, value - last_value
        was_noisy = self.noisy
        if self._steps or self._trends:  # 0 stays 0
            fade = math.exp(-dt / STEP_MEMORY)
            self._steps *= fade
            self._trends *= fade
        # noise: the residual against the line through the two reads before
        last_step = self._last_step
        if last_step is not None:
            prev_dt, prev_delta = last_step
            ratio = dt / prev_dt
            if _MIN_GAP_RATIO <= ratio <= MAX_GAP_RATIO:
                residual = delta - prev_delta * ratio
                # white noise sigma: var(residual) = sigma²·g; noise (RMS of Δ) = √2·sigma
                g = 1.0 + (1.0 + ratio) ** 2 + ratio**2
                residual = abs(residual) * math.sqrt(2.0 / g)
                residuals = self._residuals
                if len(residuals) == NOISE_WINDOW and residuals[0] == residual:
                    # the value leaving the full window is the one entering it: the
                    # sorted copy, and so the noise, stay as they are
                    residuals.append(residual)
                    del residuals[0]
                else:
                    self._add_residual(residual)
                    self.noise = _sorted_robust_rms(self._ordered, self._squares)
        # max(a, b) and min(a, b) below are written as conditionals that pick the
        # same operand as the builtins do (b only when strictly larger / smaller)
        noise, tolerance = self.noise, self.tolerance
        if len(self._residuals) >= MIN_NOISE_SAMPLES:  # as _refresh_noise
            floor = ZERO_TOLERANCE if tolerance < ZERO_TOLERANCE else tolerance  # noqa: FURB136
            if noise > floor:
                self.noisy = True
            elif noise < NOISY_CLEAR * floor:
                self.noisy = False
        self._last_step = (dt, delta)
        # rate: one sample into the decayed mean (as _accumulate)
        excess = delta * delta - self.noise_margin * noise**2
        signal = math.sqrt(excess if excess > 0.0 else 0.0)  # noqa: FURB136
        sample = signal / dt
        interval = self.interval
        weight = dt / interval
        if not weight < 1.0:
            weight = 1.0
        acc_rate, acc_weight = self._acc_rate, self._acc_weight
        before = acc_rate / acc_weight if acc_weight > 0 else 0.0
        decay = RATE_DECAY if weight == 1.0 else math.pow(RATE_DECAY, weight)
        shift = self._shift
        if shift is not None:
            shift.excess *= decay
        acc_rate = self._acc_rate = acc_rate * decay + weight * sample
        acc_weight = self._acc_weight = acc_weight * decay + weight
        self.rate = acc_rate / acc_weight if acc_weight > 0 else 0.0
        resolution = noise if noise > tolerance else tolerance  # noqa: FURB136
        if resolution < ZERO_TOLERANCE:  # noqa: PLR1730
            resolution = ZERO_TOLERANCE
        self.activity = sample / resolution
        threshold = JUMP_K * noise
        if not threshold > resolution:
            threshold = resolution
        jumped = abs(delta) > threshold
        if jumped:
            self._note_jump(t, value, delta / dt, weight * max(0.0, sample - before))
        elif shift is not None:
            self._settle(t, value)  # may take a step out of the rate
        return self._decide_numeric(
            t, dt, delta, threshold, jumped=jumped, force=was_noisy != self.noisy
        )

    def _observe_unchanged(  # noqa: C901  (the read path: kept in one function)
        self, t: float, value: float, last_t: float
    ) -> IntervalDecision | None:
        """:meth:`_observe_numeric` for a read that returned the value of the one before.

        Most reads of a steady cycle do. The change is zero (``±0.0``) and no jump is
        pending, so: no jump, no level shift to judge, a residual of 0 after a quiet
        step, no rate sample (``sample`` 0 unless the noise margin is negative), and
        a rate, quiet or noisy decision (:meth:`_decide_numeric`, :meth:`target` and
        :meth:`_lengthened` inlined). The same arithmetic in the same order as the
        general path: the same results to the bit (tests/engine/test_read_path.py).
        """
        delta = value - self._last_value  # type: ignore[operator]  # equal: not None
        self._last_t, self._last_value = t, value
        dt = t - last_t
        was_noisy = self.noisy
        if self._steps or self._trends:  # 0 stays 0
            fade = math.exp(-dt / STEP_MEMORY)
            self._steps *= fade
            self._trends *= fade
        last_step = self._last_step
        if last_step is not None:
            prev_dt, prev_delta = last_step
            ratio = dt / prev_dt
            if _MIN_GAP_RATIO <= ratio <= MAX_GAP_RATIO:
                if prev_delta:
                    residual = delta - prev_delta * ratio
                    g = 1.0 + (1.0 + ratio) ** 2 + ratio**2
                    residual = abs(residual) * math.sqrt(2.0 / g)
                else:  # ±0 - ±0·ratio, its absolute value times a positive factor
                    residual = 0.0
                residuals = self._residuals
                if len(residuals) == NOISE_WINDOW and residuals[0] == residual:
                    residuals.append(residual)
                    del residuals[0]
                else:
                    self._add_residual(residual)
                    if residual or self.noise:
                        self.noise = _sorted_robust_rms(self._ordered, self._squares)
                    # else a 0 joins a window whose kept squares sum to 0: it lowers
                    # the median (so the kept set) or leaves it, and the noise stays 0
        noise, tolerance = self.noise, self.tolerance
        if len(self._residuals) >= MIN_NOISE_SAMPLES:
            floor = ZERO_TOLERANCE if tolerance < ZERO_TOLERANCE else tolerance  # noqa: FURB136
            if noise > floor:
                self.noisy = True
            elif noise < NOISY_CLEAR * floor:
                self.noisy = False
        self._last_step = (dt, delta)
        sample = 0.0  # without noise the excess is ±0 - margin·0: no sample
        if noise:
            excess = delta * delta - self.noise_margin * noise**2
            if excess > 0.0:  # a negative margin
                sample = math.sqrt(excess) / dt
        interval = self.interval
        weight = dt / interval
        if not weight < 1.0:
            weight = 1.0
        decay = RATE_DECAY if weight == 1.0 else math.pow(RATE_DECAY, weight)
        acc_rate = self._acc_rate = self._acc_rate * decay + weight * sample
        acc_weight = self._acc_weight = self._acc_weight * decay + weight
        rate = self.rate = acc_rate / acc_weight if acc_weight > 0 else 0.0
        resolution = noise if noise > tolerance else tolerance  # noqa: FURB136
        if resolution < ZERO_TOLERANCE:  # noqa: PLR1730
            resolution = ZERO_TOLERANCE
        self.activity = sample / resolution
        # the decision (as _decide_numeric without a jump); the target first
        limits = self.limits
        target = math.inf
        if rate > 0:
            target = SAFETY * resolution / rate
        if self._steps > 0:
            bound = self.step_bound()
            if bound < target:  # noqa: PLR1730
                target = bound
        low, high = limits.min_interval, limits.max_interval
        if not math.isfinite(target):  # as target(): the maximum
            target = high
        else:  # as clamp
            target = target if target > low else low  # noqa: FURB136
            target = target if target < high else high  # noqa: FURB136
        growth = 1.0
        if target < interval:
            new, reason = target, Reason.RATE
            self._starting = False
        else:  # as _lengthened(dt, target)
            new = interval * (GROWTH if weight == 1.0 else math.pow(GROWTH, weight))
            if self._starting and interval < START_LIMIT:
                fast = interval * math.pow(START_GROWTH, weight)
                fast = fast if fast < START_LIMIT else START_LIMIT  # noqa: FURB136
                if fast > new:  # noqa: PLR1730
                    new = fast
            recover_to = self._recover_to
            if interval < recover_to:
                back = interval * math.pow(SETTLED_GROWTH, weight)
                back = back if back < recover_to else recover_to  # noqa: FURB136
                if back > new:  # noqa: PLR1730
                    new = back
            if new >= recover_to:
                self._recover_to = 0.0
            if target < new:  # noqa: PLR1730
                new = target
            new = new if new > low else low  # noqa: FURB136  (not NaN: clamp's)
            new = new if new < high else high  # noqa: FURB136
            growth = new / interval
            reason = Reason.QUIET
        if was_noisy == self.noisy and (
            new == interval or math.isclose(new, interval, rel_tol=_REL_EPS)
        ):
            return None
        if self.noisy:
            reason = Reason.NOISY
        numbers: _RateNumbers = (
            rate,
            noise,
            tolerance,
            f" {self.unit}" if self.unit else "",
            target,
            self.step_rate if self._steps > 0 else None,
            growth,
            new,
            self.noisy,
        )
        decision = _decision(t, new, interval, reason, numbers)
        self.interval = new
        self.last_decision = decision
        return decision

    def _observe_event(self, t: float, changed: bool) -> IntervalDecision | None:
        last_t = self._last_t
        self._last_t = t
        if last_t is None:
            return None
        dt = t - last_t
        self.activity = (1.0 if changed else 0.0) / dt
        self.rate = self._accumulate(self._weight(dt), self.activity)
        if changed:
            self._starting = False
            return self._decide(
                t,
                self.limits.min_interval,
                Reason.JUMP,
                lambda: f"value changed after {_secs(dt)} -> min interval",
            )
        new, growth = self._lengthened(dt, self.limits.max_interval)
        return self._decide(
            t,
            new,
            Reason.QUIET,
            lambda: f"unchanged after {_secs(dt)} -> x{growth:.3g} = {_secs(new)}",
        )

    # ------------------------------------------------------------------ estimators

    def _weight(self, dt: float) -> float:
        """Evidence of one read: 1 for a read a full interval after the last, less if sooner."""
        return min(1.0, dt / self.interval)

    def _accumulate(self, weight: float, rate: float) -> float:
        """Add one rate sample to the weighted, decaying mean; return the new mean."""
        decay = math.pow(RATE_DECAY, weight)
        if self._shift is not None:
            self._shift.excess *= decay
        self._acc_rate = self._acc_rate * decay + weight * rate
        self._acc_weight = self._acc_weight * decay + weight
        return self._mean_rate()

    def _mean_rate(self) -> float:
        return self._acc_rate / self._acc_weight if self._acc_weight > 0 else 0.0

    def _add_residual(self, value: float) -> None:
        """Append to the window (dropping the oldest beyond it), keeping the sorted copy."""
        residuals, ordered, squares = self._residuals, self._ordered, self._squares
        residuals.append(value)
        index = bisect_right(ordered, value)
        ordered.insert(index, value)
        squares.insert(index, value * value)
        while len(residuals) > NOISE_WINDOW:
            index = bisect_left(ordered, residuals.pop(0))
            del ordered[index], squares[index]

    def _sort_residuals(self) -> None:
        """Rebuild the sorted copy of the residuals (after a restore)."""
        self._ordered = sorted(self._residuals)
        self._squares = [x * x for x in self._ordered]

    # ------------------------------------------------------------------ level shifts

    def _steps_text(self) -> str:
        return _steps_text(self.step_rate)

    def _note_jump(self, t: float, value: float, pace: float, excess: float) -> None:
        """Remember a jump until later reads tell a step from a trend."""
        self._recover_to = 0.0
        self._starting = False
        sign = math.copysign(1.0, pace)
        shift = self._shift
        if shift is not None and shift.sign == sign:
            self._shift = None  # a second jump the same way: a trend, not a step
            self._trends += 1.0
            return
        pre = self.interval if shift is None else shift.pre_interval
        excess += 0.0 if shift is None else shift.excess
        self._shift = _PendingShift(pre, excess, abs(pace), sign, t, value)

    def _settle(self, t: float, value: float) -> None:
        """Judge a pending jump on a quiet read; a settled step leaves the rate."""
        shift = self._shift
        assert shift is not None
        # what the jump's pace would have added since
        paced = shift.pace * (t - shift.t)
        drift = abs(value - shift.value)
        if paced <= max(JUMP_K * self.noise, ZERO_TOLERANCE):
            return  # too soon to tell the pace from the noise
        if drift >= CONTINUE_FRACTION * paced:
            self._shift = None  # still moving: a trend, keep the short interval
            self._trends += 1.0
            return
        if drift > SETTLE_FRACTION * paced:
            return
        self._shift = None
        if self._step_at is not None:
            self.step_gap = shift.t - self._step_at
        self._step_at = shift.t
        self._steps += 1.0
        self._acc_rate = max(0.0, self._acc_rate - shift.excess)
        self.rate = self._mean_rate()
        self._recover_to = shift.pre_interval

    # ------------------------------------------------------------------ decisions

    def _decide_numeric(
        self,
        t: float,
        dt: float,
        delta: float,
        threshold: float,
        *,
        jumped: bool,
        force: bool,
    ) -> IntervalDecision | None:
        resolution = self.resolution
        target = self.target()
        interval = self.interval
        if jumped:
            instant = SAFETY * resolution * dt / abs(delta)
            new = self.limits.clamp(min(interval, target, instant))
            shift = self._shift
            if (
                STEP_CONFIRM
                and shift is not None
                and self._steps >= 0.5
                and self._steps > 2.0 * self._trends
            ):  # most likely another step: confirm it later
                new = max(new, self.limits.clamp(STEP_CONFIRM * shift.pre_interval))
            if not force and (
                new == interval or math.isclose(new, interval, rel_tol=_REL_EPS)
            ):
                return None  # as _decide: nothing moves, nothing to format
            return self._record(
                t,
                new,
                Reason.JUMP,
                partial(_jump_detail, delta, dt, threshold, new, self._u),
            )
        growth = 1.0
        if target < interval:
            new, reason = target, Reason.RATE
            self._starting = False
        else:
            new, growth = self._lengthened(dt, target)
            reason = Reason.QUIET
        if not force and (
            new == interval or math.isclose(new, interval, rel_tol=_REL_EPS)
        ):
            return None  # as _decide: nothing moves, nothing to format
        if self.noisy:
            reason = Reason.NOISY

        # the numbers as they are now; the text is formatted when first read
        numbers: _RateNumbers = (
            self.rate,
            self.noise,
            self.tolerance,
            self._u,
            target,
            self.step_rate if self._steps > 0 else None,
            growth,
            new,
            self.noisy,
        )
        return self._record(t, new, reason, numbers)  # formatted when first read

    def _lengthened(self, dt: float, cap: float) -> tuple[float, float]:
        weight = self._weight(dt)
        new = self.interval * math.pow(GROWTH, weight)
        if self._starting and self.interval < START_LIMIT:
            new = max(
                new, min(START_LIMIT, self.interval * math.pow(START_GROWTH, weight))
            )
        if self.interval < self._recover_to:  # after a level shift: back faster
            new = max(
                new,
                min(self._recover_to, self.interval * math.pow(SETTLED_GROWTH, weight)),
            )
        if new >= self._recover_to:
            self._recover_to = 0.0
        new = self.limits.clamp(min(cap, new))
        return new, new / self.interval

    def _decide(
        self,
        t: float,
        new: float,
        reason: Reason,
        detail: str | Callable[[], str],
        *,
        force: bool = False,
    ) -> IntervalDecision | None:
        if not force and math.isclose(new, self.interval, rel_tol=_REL_EPS):
            return None
        return self._record(t, new, reason, detail)

    def _record(
        self,
        t: float,
        new: float,
        reason: Reason,
        detail: str | Callable[[], str] | _RateNumbers,
    ) -> IntervalDecision:
        decision = _decision(t, new, self.interval, reason, detail)
        self.interval = new
        self.last_decision = decision
        return decision

    @property
    def _u(self) -> str:
        return f" {self.unit}" if self.unit else ""

    # ------------------------------------------------------------------ restore

    def _restore(self, src: Mapping[str, Any]) -> None:
        self._starting = False
        interval = _number(src.get("interval"))
        self.interval = self.limits.clamp(interval if interval is not None else 0.0)
        self.noisy = _flag(src.get("noisy"), False)
        self.activity = _non_negative(src.get("activity"))
        self._last_t = _number(src.get("last_t"))
        self._step_at = self._last_t  # steps before it are not kept: a lower bound
        self._last_value = _number(src.get("last_value")) if self.numeric else None
        self._last_step = _step(src.get("last_step"))
        self._residuals = _non_negative_list(src.get("residuals"))[-NOISE_WINDOW:]
        acc = src.get("acc")
        if isinstance(acc, list) and len(acc) == 2:
            self._acc_rate, self._acc_weight = (_non_negative(x) for x in acc)
        self._shift = (
            _PendingShift.from_list(src.get("shift")) if self.numeric else None
        )
        self._steps = _non_negative(src.get("steps"))
        self._trends = _non_negative(src.get("trends"))
        self._recover_to = _non_negative(src.get("recover_to"))
        decision = IntervalDecision.from_dict(src.get("decision"))
        if decision is not None:
            self.last_decision = decision
        self._sort_residuals()
        self.noise = _robust_rms(self._residuals)
        self.rate = self._mean_rate()


type _RateNumbers = tuple[
    float, float, float, str, float, float | None, float, float, bool
]


def _rate_detail(numbers: _RateNumbers) -> str:
    """Format the detail of a rate, quiet or noisy decision (numbers as decided)."""
    rate, noise, tolerance, unit, target, step_rate, growth, new, noisy = numbers
    text = (
        f"rate {_num(rate)}{unit}/s, noise {_num(noise)}{unit},"
        f" tolerance {_num(tolerance)}{unit} -> target {_secs(target)}"
    )
    if step_rate is not None:
        text = f"{text} ({_steps_text(step_rate)})"
    if growth != 1.0:
        text = f"{text}; x{growth:.3g} = {_secs(new)}"
    if noisy:
        text = f"noisy (noise {_num(noise)} > tolerance): {text}"
    return text


def _steps_text(step_rate: float) -> str:
    return f"a step every {_secs(1.0 / step_rate)}" if step_rate > 0 else "no steps"


def _jump_detail(
    delta: float, dt: float, threshold: float, new: float, unit: str
) -> str:
    """Format the detail of a jump decision."""
    return (
        f"change {_num(delta)}{unit} in {_secs(dt)} > {_num(threshold)}{unit}"
        f" -> {_secs(new)}"
    )


# ---------------------------------------------------------------------- cluster coordination


def quantize(
    interval: float, limits: IntervalLimits, *, steps_per_octave: int = 1
) -> float:
    """Snap ``interval`` down to the ladder ``min·2**(k/steps_per_octave)`` (plus ``max``).

    Cluster-coordination helper. With the default one step per octave every rung
    divides every larger rung, so registers that share a block get harmonic
    intervals: with :func:`aligned_due` the slower register's due times are a
    subset of the faster one's and its reads ride along in the same request.
    ``max`` is a rung of its own (registers resting at max coincide with each
    other). Rounding is down, so freshness never gets worse than the model asked
    for; finer ladders (``steps_per_octave`` > 1) lose less but are harmonic only
    within each of their interleaved chains. NaN gives ``min``.
    """
    if steps_per_octave < 1:
        raise EngineUsageError("steps_per_octave must be >= 1")
    low, high = limits.min_interval, limits.max_interval
    if math.isnan(interval) or interval <= low:
        return low
    if interval >= high:
        return high
    k = math.floor(steps_per_octave * math.log2(interval / low) + _REL_EPS)
    return min(high, low * math.pow(2.0, k / steps_per_octave))


def viewed_interval(interval: float, limits: IntervalLimits, factor: float) -> float:
    """``interval`` while the register's unit is viewed (demand-driven polling).

    The upper bound shrinks to ``factor`` of ``limits.max_interval`` (never below the
    minimum); the result is snapped with :func:`quantize` on those bounds, so an
    interval already below the shrunk bound keeps its rung.
    """
    bounds = IntervalLimits(
        limits.min_interval,
        max(limits.min_interval, limits.max_interval * factor),
    )
    return quantize(min(interval, bounds.max_interval), bounds)


def aligned_due(
    last_read: float, interval: float, *, min_fraction: float = 0.0
) -> float:
    """Next multiple of ``interval`` (on the common epoch t=0) after ``last_read``.

    Registers with harmonic intervals (see :func:`quantize`) thus come due at the
    same instants. A read taken a hair before a tick (within 1e-6 of the
    interval: clock jitter) counts as on the tick. ``min_fraction`` (0..1) asks
    for at least that fraction of an interval between the read and the due time,
    for reads taken off the grid (a write read-back, a retry).
    """
    if not (math.isfinite(interval) and interval > 0):
        raise EngineUsageError(f"interval must be a positive number, got {interval}")
    earliest = last_read + min(1.0, max(0.0, min_fraction)) * interval
    due = (math.floor(earliest / interval) + 1) * interval
    if due - earliest <= _DUE_EPS * interval:
        due += interval
    return due


# ---------------------------------------------------------------------- helpers


def _short(value: float) -> float:
    """6 significant digits: what a learned rate, noise or interval needs."""
    return float(f"{value:.6g}")


def _exact(value: float) -> float:
    """12 significant digits: an interval restored equal to within 1e-11 (relative)."""
    return float(f"{value:.12g}")


def _nine(value: float) -> float:
    """9 significant digits (the intervals of the last decision, for display)."""
    return float(f"{value:.9g}")


def _fine(value: float) -> float:
    """10 significant digits, for values whose differences matter (counters)."""
    return float(f"{value:.10g}")


def _time(value: float) -> float:
    """Round a clock time to the millisecond."""
    return round(value, 3)


def _unpacked(src: Mapping[str, Any]) -> dict[str, Any]:
    """Version 2 state in the field names of version 1 (which :meth:`_restore` reads)."""
    out: dict[str, Any] = {
        "version": 1,
        "tolerance": src.get("tol"),
        "unit": src.get("unit"),
    }
    out["min_interval"], out["max_interval"] = src.get("lo"), src.get("hi")
    out["numeric"] = src.get("num", True)
    out["interval"] = src.get("i")
    out["noisy"] = src.get("noisy", False)
    out["acc"] = [src.get("ar"), src.get("aw")]
    out["steps"] = src.get("steps")
    out["trends"] = src.get("trn")
    out["recover_to"] = src.get("rec")
    out["shift"] = src.get("shift")
    out["residuals"] = _residuals(src.get("res"))
    out["last_t"], out["last_value"] = src.get("lt"), src.get("lv")
    out["last_step"] = [src.get("lsd"), src.get("lsv")]
    reason, interval = src.get("dr"), src.get("di", src.get("i"))
    out["decision"] = {
        "at": src.get("dt"),
        "interval": interval,
        "previous": src.get("dp"),
        "reason": reason,
        "detail": f"{reason}: {_secs(interval) if _number(interval) is not None else '?'}"
        " (restored)",
    }
    return out


def _residuals(value: object) -> list[float]:
    """Residuals from base64 text: a float64 scale, then float16 fractions of it."""
    if not isinstance(value, str) or len(value) > 4 * NOISE_WINDOW + 16:
        return []
    try:
        packed = base64.b64decode(value, validate=True)
    except ValueError:
        return []
    if len(packed) < 8 or len(packed) % 2:
        return []
    (scale,) = struct.unpack("<d", packed[:8])
    return [x * scale for (x,) in struct.iter_unpack("<e", packed[8:])]


def _robust_rms(samples: list[float]) -> float:
    """RMS of ``samples`` without outliers (above :data:`NOISE_TRIM` median-based sigmas).

    The median alone is robust but inefficient on the strongly correlated second
    differences; the trimmed RMS keeps the robustness at about half the spread.
    """
    if not samples:
        return 0.0
    ordered = sorted(samples)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    limit = NOISE_TRIM * middle / _HALF_NORMAL_MEDIAN
    kept = [x for x in ordered if x <= limit] or ordered
    return math.sqrt(sum(x * x for x in kept) / len(kept))


def _sorted_robust_rms(ordered: list[float], squares: list[float]) -> float:
    """:func:`_robust_rms` of samples already sorted, with their squares in that order.

    The same arithmetic on the same sorted values, so the same result to the bit.
    """
    n = len(ordered)
    if not n:
        return 0.0
    middle = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    limit = NOISE_TRIM * middle / _HALF_NORMAL_MEDIAN
    kept = bisect_right(ordered, limit) or n
    return math.sqrt(sum(squares[:kept]) / kept)


def _number(value: object) -> float | None:
    """Return a finite float from stored data, else ``None`` (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _non_negative(value: object) -> float:
    number = _number(value)
    return number if number is not None and number >= 0 else 0.0


def _non_negative_list(value: object) -> list[float]:
    if not isinstance(value, list):
        return []
    numbers = [_number(x) for x in value]
    return [x for x in numbers if x is not None and x >= 0]


def _flag(value: object, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _step(value: object) -> tuple[float, float] | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    dt, delta = _number(value[0]), _number(value[1])
    if dt is None or delta is None or dt <= 0:
        return None
    return dt, delta


def _stored_limits(src: Mapping[str, Any]) -> IntervalLimits:
    low, high = _number(src.get("min_interval")), _number(src.get("max_interval"))
    if low is None or high is None:
        return DEFAULT_LIMITS
    try:
        return IntervalLimits(low, high)
    except ValueError:
        return DEFAULT_LIMITS


def _num(value: float) -> str:
    """Compact number for details: three significant digits, no exponent in normal ranges."""
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if not 1e-3 <= magnitude < 1e7:
        return f"{value:.3g}"
    decimals = max(0, 2 - math.floor(math.log10(magnitude)))
    return f"{value:.{decimals}f}"


def _secs(value: float) -> str:
    return f"{_num(value)} s"
