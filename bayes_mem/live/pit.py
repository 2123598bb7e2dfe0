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
    """Predictive CDF at returns ``x`` (T,) given each draw's variance for those days, (S, T).

    Examples
    --------
    Two symmetric draws with mean 0.03%: half the mass lies below the mean; a -1% day at a
    0.63% volatility (variance 4e-5) is in the lower 5%:

    >>> import numpy as np
    >>> from bayes_mem.live.gjr_garch import GarchDraws
    >>> draws = GarchDraws(mu=[3e-4, 3e-4], omega=[2e-6, 2e-6], alpha=[0.03, 0.03],
    ...                    gamma=[0.12, 0.12], beta=[0.86, 0.86], nu=[6.0, 8.0], lam=[0.0, 0.0])
    >>> mixture_cdf(np.array([3e-4, -0.01]), draws, np.full((2, 2), 4e-5)).round(4).tolist()
    [0.5, 0.0475]
    """
    z = (np.asarray(x, dtype=float)[None, :] - draws.mu[:, None]) / np.sqrt(sigma2)
    return SkewT.from_params(draws.nu[:, None], draws.lam[:, None]).cdf(z).mean(axis=0)


def normal_scores(
    returns: np.ndarray, draws: GarchDraws, sigma2_0: np.ndarray | float
) -> np.ndarray:
    """Scores of a series of daily log returns, day by day, each under the predictive of the day
    before (variance recursion started at ``sigma2_0``, per draw or shared).

    Examples
    --------
    A day at the mean scores 0, a 3% fall about -3.4:

    >>> import numpy as np
    >>> from bayes_mem.live.gjr_garch import GarchDraws
    >>> draws = GarchDraws(mu=[3e-4, 3e-4], omega=[2e-6, 2e-6], alpha=[0.03, 0.03],
    ...                    gamma=[0.12, 0.12], beta=[0.86, 0.86], nu=[6.0, 8.0], lam=[0.0, 0.0])
    >>> normal_scores(np.array([3e-4, -0.03]), draws, 4e-5).round(4).tolist()
    [0.0, -3.4201]
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a finite 1-d array of daily log returns")
    sig2 = variance_path(r, draws, sigma2_0)[:, :-1]
    return to_normal(mixture_cdf(r, draws, sig2))


def to_normal(p: np.ndarray) -> np.ndarray:
    """``Phi^-1`` of probabilities, clipped to ``[P_MIN, 1 - P_MIN]``.

    Examples
    --------
    The 97.5% point is 1.96; a probability of 0 scores ``Phi^-1(1e-12)`` = -7.03, not -inf:

    >>> import numpy as np
    >>> to_normal(np.array([0.5, 0.975, 0.0])).round(4).tolist()
    [0.0, 1.96, -7.0345]
    """
    return special.ndtri(np.clip(p, P_MIN, 1.0 - P_MIN))
