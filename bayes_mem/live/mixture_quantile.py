"""Quantiles of finite mixtures: solve ``mean_s w_s F_s((q - mu_s) / sd_s) = alpha`` per row.

One solver for every mixture the package inverts: the return model's exact (scipy) VaR of
skew-t mixtures (:mod:`bayes_mem.live.return_model`), and the offline report's posterior
intervals of win rates (mixtures of Betas) and in-sample VaR lines (skew-t mixtures over
posterior draws, one row per day). The components are anything with vectorised ``cdf`` and
``pdf`` of the standardised value ``z = (q - mu) / sd`` (a :class:`~bayes_mem.live.skewt.SkewT`,
or an adapter around scipy's Beta functions).

Method: Newton steps kept inside a bracket that shrinks every iteration (bisection when Newton
leaves it). The starting bracket must contain the root: the smallest and largest component
quantile do (a mixture's CDF at the smallest component quantile is at most ``alpha``, at the
largest at least ``alpha``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Components(Protocol):
    """Standardised mixture components: CDF and density of ``z``, broadcasting over rows.

    Examples
    --------
    Any object with vectorised ``cdf`` and ``pdf`` will do, e.g. a
    :class:`~bayes_mem.live.skewt.SkewT` per draw; by symmetry the median of an equal mixture
    of t laws at -1 and +1 is 0:

    >>> import numpy as np
    >>> from bayes_mem.live.skewt import SkewT
    >>> inn: Components = SkewT.from_params(np.array([[6.0, 6.0]]), 0.0)
    >>> mu, sd = np.array([[-1.0, 1.0]]), np.array([[1.0, 1.0]])
    >>> q = mixture_quantile(0.5, mu, sd, inn, np.array([-5.0]), np.array([5.0]), 1e-12)
    >>> abs(round(float(q[0]), 9))
    0.0
    """

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """``P(Z <= z)`` per component, same shape as ``z``.

        Examples
        --------
        >>> import numpy as np
        >>> from bayes_mem.live.skewt import SkewT
        >>> inn: Components = SkewT.from_params(np.array([5.0, 8.0]), 0.0)
        >>> inn.cdf(np.zeros(2)).tolist()  # symmetric laws: half the mass below 0
        [0.5, 0.5]
        """

    def pdf(self, z: np.ndarray) -> np.ndarray:
        """The density of ``Z`` at ``z`` per component, same shape as ``z``.

        Examples
        --------
        The standardised t(6) density at 0 is ``15 / 32``:

        >>> import numpy as np
        >>> from bayes_mem.live.skewt import SkewT
        >>> inn: Components = SkewT.from_params(np.array([6.0]), 0.0)
        >>> inn.pdf(np.zeros(1)).round(10).tolist()
        [0.46875]
        """


def mixture_quantile(
    alpha: float,
    mu: np.ndarray | float,
    sd: np.ndarray | float,
    inn: Components,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float,
    weights: np.ndarray | None = None,
    max_iter: int = 60,
) -> np.ndarray:
    """The ``alpha`` quantile of one mixture per row.

    Parameters
    ----------
    alpha : float
        Probability in (0, 1).
    mu, sd : ndarray or float
        Locations and scales of the components, (n, S) or broadcasting to it (same units as
        the quantile).
    inn : Components
        The standardised components (``cdf``/``pdf`` of (n, S) values).
    lo, hi : ndarray
        Per row a bracket of the root, (n,) (e.g. the smallest and largest component quantile).
    tol : float
        Stopping rule ``|F(q) - alpha| <= tol * min(alpha, 1 - alpha)`` (relative to the
        smaller tail probability, floored at a few ulps of ``alpha``, F's resolution).
    weights : ndarray, optional
        Mixture weights of mean 1 per row, (n, S); equal weights if omitted.
    max_iter : int
        Iterations at most (each one evaluation of ``cdf`` and ``pdf``).

    Returns
    -------
    ndarray
        The quantile per row, (n,).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy import stats
    >>> class Normal:
    ...     def cdf(self, z): return stats.norm.cdf(z)
    ...     def pdf(self, z): return stats.norm.pdf(z)
    >>> mu, sd = np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]])
    >>> q = mixture_quantile(0.025, mu, sd, Normal(), np.array([-5.0]), np.array([5.0]), 1e-10)
    >>> round(float(q[0]), 6)
    -1.959964
    """
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    q = 0.5 * (lo + hi)
    tol_abs = max(tol * min(alpha, 1.0 - alpha), 8.0 * np.finfo(float).eps * alpha)
    w = 1.0 if weights is None else weights
    for _ in range(max_iter):
        z = (q[:, None] - mu) / sd
        g = (inn.cdf(z) * w).mean(axis=1) - alpha
        dens = (inn.pdf(z) / sd * w).mean(axis=1)
        done = np.abs(g) <= tol_abs
        if np.all(done):
            break
        lo = np.where(g < 0, q, lo)
        hi = np.where(g > 0, q, hi)
        step = q - g / np.where(dens > 0, dens, np.inf)
        inside = (step > lo) & (step < hi)
        q = np.where(done, q, np.where(inside, step, 0.5 * (lo + hi)))
    return q
