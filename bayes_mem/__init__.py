"""bayes_mem: Bayesian signal decisions and risk for the MEM trading system.

``import bayes_mem`` loads only the live path (numpy/scipy). The offline path (PyMC, ArviZ) lives in
its own subpackages and is imported explicitly by the nightly job and the reports.
``bayes_mem.StrategyABTest`` (from :mod:`bayes_mem.evaluation.abtest`) is kept at the top level
for its users but loaded on first use (PEP 562), so the evaluation package is not imported with
the live path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bayes_mem import live
from bayes_mem.live import *  # noqa: F403 - the live API is the package's top level

if TYPE_CHECKING:
    from bayes_mem.evaluation.abtest import StrategyABTest

__version__ = "0.1.0"

# Top-level names served from modules outside the live path, imported on first access.
_LAZY = {"StrategyABTest": "bayes_mem.evaluation.abtest"}

__all__ = [*live.__all__, "StrategyABTest", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
