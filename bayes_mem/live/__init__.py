"""The live path: what the trader imports. numpy and scipy only; never pymc, pytensor or arviz."""

from bayes_mem.live.decider import Decider, SignalMetrics, UnknownSignalError
from bayes_mem.live.priors import DEFAULT_PRIOR, BetaPrior
from bayes_mem.live.thompson_facade import ThompsonSamplingDecider

__all__ = [
    "DEFAULT_PRIOR",
    "BetaPrior",
    "Decider",
    "SignalMetrics",
    "ThompsonSamplingDecider",
    "UnknownSignalError",
]
