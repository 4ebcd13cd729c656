"""Per-strategy learning: its record sets how bold its next proposal is.

A strategy starts bold (its full step). Every rollback makes it more cautious
(smaller steps) and sends it into a cooldown that doubles with each rollback in a
row; every change kept earns boldness back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

COOLDOWN_MAX = 86400.0
BOLDNESS_MIN = 0.15
# how far a strategy's predicted gains are taken to be off before it has a record
# (standard error, as a share of the cost), and how many changes that counts as
PRIOR_ERROR = 0.2
PRIOR_WEIGHT = 2.0
ERROR_CLAMP = 1.0


@dataclass
class StrategyRecord:
    """What a strategy proposed and what became of it."""

    proposed: int = 0
    applied: int = 0
    kept: int = 0
    rolled_back: int = 0
    discarded: int = 0
    gain_sum: float = 0.0  # measured gains of the evaluated changes
    rollbacks_in_row: int = 0
    cooldown_until: float = 0.0  # wall time
    # predicted against measured gains of the changes measured to the end
    predictions: int = 0
    prediction_error_sq: float = 0.0  # sum of (predicted - measured) squared

    @property
    def evaluated(self) -> int:
        """Changes measured to the end (kept or rolled back)."""
        return self.kept + self.rolled_back

    @property
    def mean_gain(self) -> float:
        """Mean measured gain of the evaluated changes (0 before any)."""
        return self.gain_sum / self.evaluated if self.evaluated else 0.0

    @property
    def boldness(self) -> float:
        """Share of the full step the next proposal takes (1: bold)."""
        bold = (self.kept + 1.0) / (self.kept + 1.0 + 2.0 * self.rolled_back)
        return max(BOLDNESS_MIN, min(1.0, bold))

    @property
    def prediction_error(self) -> float:
        """How far this strategy's predicted gains were off (RMS, with a prior).

        :data:`PRIOR_ERROR` counted :data:`PRIOR_WEIGHT` times, then every measured
        change: a strategy whose predictions held gets more weight for its next one.
        """
        total = PRIOR_ERROR**2 * PRIOR_WEIGHT + self.prediction_error_sq
        return math.sqrt(total / (PRIOR_WEIGHT + self.predictions))

    def predicted_one(self, predicted: float, measured: float) -> None:
        """Note how far a prediction was from what was measured."""
        self.predictions += 1
        # one window's measurement can be off by more than the whole cost (an
        # incident in it): an error counts at most :data:`ERROR_CLAMP`
        error = min(abs(predicted - measured), ERROR_CLAMP)
        self.prediction_error_sq += error**2

    def step(self, max_step: float) -> float:
        """Return the factor of the next proposal (``1 + (max_step - 1) * boldness``)."""
        return 1.0 + (max_step - 1.0) * self.boldness

    def cooling(self, now: float) -> bool:
        """Whether the strategy is in its cooldown at wall time ``now``."""
        return now < self.cooldown_until

    def kept_one(self, gain: float) -> None:
        """Note a change measured better and kept."""
        self.kept += 1
        self.gain_sum += gain
        self.rollbacks_in_row = 0

    def rolled_back_one(self, gain: float, now: float, cooldown: float) -> None:
        """Note a change rolled back; cool down, doubling with each in a row."""
        self.rolled_back += 1
        self.gain_sum += gain
        self.rollbacks_in_row += 1
        self.cooldown_until = now + min(
            cooldown * 2 ** (self.rollbacks_in_row - 1), COOLDOWN_MAX
        )

    def as_dict(self) -> dict[str, Any]:
        """Return plain data, with the derived figures."""
        return {
            **asdict(self),
            "mean_gain": round(self.mean_gain, 4),
            "boldness": round(self.boldness, 3),
            "prediction_error": round(self.prediction_error, 4),
        }

    @classmethod
    def from_dict(cls, data: Any) -> StrategyRecord:
        """Rebuild from :meth:`as_dict` (unknown or bad fields fall back)."""
        record = cls()
        if not isinstance(data, dict):
            return record
        for name, default in asdict(record).items():
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            setattr(record, name, type(default)(value))
        return record
