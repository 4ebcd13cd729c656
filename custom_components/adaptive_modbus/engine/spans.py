"""Span guards: loops whose length is a time span over a step refuse absurd spans.

A replay, a bucketing or a resampling loop runs ``(end - start) / step`` times and
often keeps something per step. A span built from mixed clocks (a monotonic or
virtual time of a few thousand seconds against Unix epoch seconds, 1.7e9) turns
such a loop into hundreds of millions of steps and gigabytes of memory. Every such
loop checks its span first with :func:`check_span` and raises :class:`SpanError`,
which names what was spanned, both ends, the span and the limit, and says when
the ends look like two different clocks.
"""

from __future__ import annotations

import math

from .errors import AdaptiveModbusError

DAY = 86_400.0
MAX_SPAN_DAYS = 400
MAX_SPAN = MAX_SPAN_DAYS * DAY
EPOCH_FLOOR = 1e9
"""Unix seconds of 2001-09-09: wall times are above, monotonic and virtual clocks
(seconds since boot or since a replay's start) are far below."""


class SpanError(AdaptiveModbusError, ValueError):
    """A time span too long to loop over (usually two clocks mixed up)."""

    def __init__(self, what: str, start: float, end: float, limit: float) -> None:
        """Describe ``what`` spanning ``start .. end`` against ``limit`` seconds."""
        self.what = what
        self.start = start
        self.end = end
        self.limit = limit
        if not (math.isfinite(start) and math.isfinite(end)):
            message = f"{what}: span {start} .. {end} is not finite"
        else:
            message = (
                f"{what}: span {start:.0f} .. {end:.0f} s is "
                f"{(end - start) / DAY:,.1f} days, over the limit of "
                f"{limit / DAY:,.0f} days"
            )
            if looks_mixed(start, end):
                message += (
                    " (one end looks like monotonic or virtual seconds, the other "
                    "like Unix epoch seconds: two clocks mixed?)"
                )
        super().__init__(message)


def looks_mixed(start: float, end: float) -> bool:
    """Whether one of two times is below :data:`EPOCH_FLOOR` and the other above it."""
    return min(start, end) < EPOCH_FLOOR <= max(start, end)


def check_span(start: float, end: float, what: str, limit: float = MAX_SPAN) -> None:
    """Raise :class:`SpanError` if ``start .. end`` is not finite or longer than ``limit``.

    A negative span (``end`` before ``start``) is left to the caller: such loops
    run zero times.
    """
    if not (math.isfinite(start) and math.isfinite(end)) or end - start > limit:
        raise SpanError(what, start, end, limit)


__all__ = [
    "EPOCH_FLOOR",
    "MAX_SPAN",
    "MAX_SPAN_DAYS",
    "SpanError",
    "check_span",
    "looks_mixed",
]
