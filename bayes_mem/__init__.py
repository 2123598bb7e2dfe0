"""bayes_mem: Bayesian signal decisions and risk for the MEM trading system.

``import bayes_mem`` loads only the live path (numpy/scipy). The offline path (PyMC, ArviZ) lives in
its own subpackages and is imported explicitly by the nightly job and the reports.
"""

from bayes_mem.live import (
    DEFAULT_PRIOR,
    BetaPrior,
    Decider,
    SignalMetrics,
    ThompsonSamplingDecider,
    UnknownSignalError,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_PRIOR",
    "BetaPrior",
    "Decider",
    "SignalMetrics",
    "ThompsonSamplingDecider",
    "UnknownSignalError",
    "__version__",
]
