"""bayes_mem: Bayesian signal decisions and risk for the MEM trading system.

``import bayes_mem`` loads only the live path (numpy/scipy). The offline path (PyMC, ArviZ) lives in
its own subpackages and is imported explicitly by the nightly job and the reports.
"""

from bayes_mem import live
from bayes_mem.evaluation.abtest import StrategyABTest
from bayes_mem.live import *  # noqa: F403 - the live API is the package's top level

__version__ = "0.1.0"

__all__ = [*live.__all__, "StrategyABTest", "__version__"]
