"""Normal scores of returns under the posterior predictive: ``Phi^-1(F(r_t))``.

``F`` is the one-day posterior predictive CDF (the equal-weight mixture over parameter draws of
each draw's skew-t with its own conditional variance). Under the model the scores are i.i.d.
standard normal, fat tails and volatility clustering included, so they are what a Gaussian
changepoint detector should see: a heavy-tailed day is not a new regime unless the model is
surprised by it. They are also the PIT values the report's calibration plot uses.

Units: daily log returns (fractions) in, dimensionless scores out. The probability is clipped to
``[P_MIN, 1 - P_MIN]`` so that a return far outside every draw's support scores +-7.03, not inf.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayes_mem.live.gjr_garch import GarchDraws, variance_path
from bayes_mem.live.skewt import SkewT

P_MIN = 1e-12


def mixture_cdf(x: np.ndarray, draws: GarchDraws, sigma2: np.ndarray) -> np.ndarray:
    """Predictive CDF at returns ``x`` (T,) given each draw's variance for those days, (S, T)."""
    z = (np.asarray(x, dtype=float)[None, :] - draws.mu[:, None]) / np.sqrt(sigma2)
    return SkewT.from_params(draws.nu[:, None], draws.lam[:, None]).cdf(z).mean(axis=0)


def normal_scores(
    returns: np.ndarray, draws: GarchDraws, sigma2_0: np.ndarray | float
) -> np.ndarray:
    """Scores of a series of daily log returns, day by day, each under the predictive of the day
    before (variance recursion started at ``sigma2_0``, per draw or shared)."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a finite 1-d array of daily log returns")
    sig2 = variance_path(r, draws, sigma2_0)[:, :-1]
    return to_normal(mixture_cdf(r, draws, sig2))


def to_normal(p: np.ndarray) -> np.ndarray:
    """``Phi^-1`` of probabilities, clipped to ``[P_MIN, 1 - P_MIN]``."""
    return special.ndtri(np.clip(p, P_MIN, 1.0 - P_MIN))
