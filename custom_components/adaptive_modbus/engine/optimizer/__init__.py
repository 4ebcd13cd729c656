"""The optimization loop: strategies, shadow replay, evaluation, learning (HA-free).

Public API: :class:`Optimizer`, :class:`Goal`, :class:`Objective`,
:class:`OptimizerParameterError`, :class:`RunResult`, :class:`Proposal`,
:class:`Change`. See :mod:`.loop` for how a cycle runs.
"""

from __future__ import annotations

from .changes import Change, Proposal
from .goals import OBJECTIVES, Goal, Objective
from .learning import StrategyRecord
from .loop import (
    DEFAULT_PARAMETERS,
    OPTIMIZER_VERSION,
    PARAMETER_SPECS,
    Evaluation,
    Optimizer,
    OptimizerParameterError,
    RunResult,
    predict,
)
from .strategies import STRATEGIES

__all__ = [
    "DEFAULT_PARAMETERS",
    "OBJECTIVES",
    "OPTIMIZER_VERSION",
    "PARAMETER_SPECS",
    "STRATEGIES",
    "Change",
    "Evaluation",
    "Goal",
    "Objective",
    "Optimizer",
    "OptimizerParameterError",
    "Proposal",
    "RunResult",
    "StrategyRecord",
    "predict",
]
