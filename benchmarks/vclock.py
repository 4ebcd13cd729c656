"""A virtual clock shared by the engine, the transport (bus time) and the metrics."""

from __future__ import annotations


class VirtualClock:
    """Monotonic virtual time in seconds; only moves when told to."""

    def __init__(self, start: float = 0.0) -> None:
        """Start the clock at ``start``."""
        self._now = float(start)

    def now(self) -> float:
        """Return the current virtual time (the engine's ``clock``)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (negative values are ignored)."""
        if seconds > 0:
            self._now += seconds

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when``; never backwards."""
        self._now = max(self._now, float(when))
