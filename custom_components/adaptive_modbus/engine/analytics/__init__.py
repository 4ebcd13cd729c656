"""Analytics over the engine's reads and statistics (HA-free).

- :func:`aggregate`: min, max, mean, last, count and time-weighted mean of a window;
- :class:`AnomalyDetector`: robust z-score (median, MAD) against recent reads or the
  same hour of the week, never for noise alone, yielding :class:`Anomaly`;
- :func:`trend` (weighted regression) and :func:`forecast` (Holt, Holt-Winters),
  with :class:`ForecastTracker` scoring forecasts against what then happened;
- :class:`HealthModel` / :func:`health_score`: 0-100 per device and connection with
  each factor explained, and a 24 h / 7 day trend;
- :func:`remediation`: concrete actions with the figures that justify them;
- :class:`Analytics`: one per connection, fed after every poll cycle;
- :func:`build_report`: a day or week report as markdown and data.
"""

from __future__ import annotations

from .anomaly import Anomaly, AnomalyDetector
from .core import Analytics, HourlySeries, RemedySettings, SummaryInputs, summarise
from .forecast import (
    Forecast,
    ForecastAccuracy,
    ForecastPoint,
    ForecastTracker,
    Trend,
    daily_pattern,
    forecast,
    trend,
)
from .health import (
    CONNECTION,
    Factor,
    HealthModel,
    HealthScore,
    Measurements,
    health_score,
)
from .remediation import Remediation, remediation
from .report import PERIODS, Report, build_report
from .series import Aggregate, aggregate, resample

__all__ = [
    "CONNECTION",
    "PERIODS",
    "Aggregate",
    "Analytics",
    "Anomaly",
    "AnomalyDetector",
    "Factor",
    "Forecast",
    "ForecastAccuracy",
    "ForecastPoint",
    "ForecastTracker",
    "HealthModel",
    "HealthScore",
    "HourlySeries",
    "Measurements",
    "RemedySettings",
    "Remediation",
    "Report",
    "SummaryInputs",
    "Trend",
    "aggregate",
    "build_report",
    "daily_pattern",
    "forecast",
    "health_score",
    "remediation",
    "resample",
    "summarise",
    "trend",
]
