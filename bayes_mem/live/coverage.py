"""Coverage tests of VaR forecasts: Kupiec's (1995) proportion of failures and Christoffersen's
(1998) independence and conditional-coverage likelihood-ratio tests of a series of exceedance
indicators (numpy and scipy only).

The tests are used by the offline report (in-sample exceedances of a prior set) and by the
backtests of :mod:`bayes_mem.evaluation.var_backtest`, which re-exports both names; they live in
the lowest layer so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from bayes_mem.live.validate import check_probability_open

__all__ = ["CoverageTest", "coverage_tests"]


@dataclass(frozen=True)
class CoverageTest:
    """The coverage tests of one exceedance series (:func:`coverage_tests`): ``n`` days, the
    ``exceedances`` seen and ``expected`` (``n (1 - level)``), each test's likelihood-ratio
    statistic and its p-value: Kupiec's proportion of failures (``pof``, chi-square(1)),
    Christoffersen's independence (``ind``, chi-square(1)) and conditional coverage (``cc = pof +
    ind``, chi-square(2)).

    Examples
    --------
    Exactly the expected number of exceedances, none on consecutive days:

    >>> import numpy as np
    >>> hits = np.zeros(100, dtype=bool)
    >>> hits[[10, 30, 50, 70, 90]] = True  # 5 = 100 x (1 - 0.95)
    >>> test = coverage_tests(hits, 0.95)
    >>> test.n, test.exceedances, round(test.expected, 6)
    (100, 5, 5.0)
    >>> round(float(test.lr_pof), 9) == 0.0, round(test.p_pof, 6)  # Kupiec: no evidence at all
    (True, 1.0)
    """

    n: int
    exceedances: int
    expected: float
    lr_pof: float  # Kupiec
    p_pof: float
    lr_ind: float  # Christoffersen independence
    p_ind: float
    lr_cc: float  # conditional coverage = pof + ind, chi-square(2)
    p_cc: float

    def passes(self, size: float = 0.05) -> bool:
        """Whether no test rejects at ``size``: every p-value (pof, ind, cc) above it.

        Examples
        --------
        Five exceedances spread out pass; the same five on consecutive days fail the independence
        test:

        >>> import numpy as np
        >>> spread = np.zeros(100, dtype=bool)
        >>> spread[[10, 30, 50, 70, 90]] = True
        >>> clustered = np.zeros(100, dtype=bool)
        >>> clustered[40:45] = True
        >>> coverage_tests(spread, 0.95).passes(), coverage_tests(clustered, 0.95).passes()
        (True, False)
        >>> coverage_tests(clustered, 0.95).p_ind < 0.001
        True
        """
        return min(self.p_pof, self.p_ind, self.p_cc) > size


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * np.log(y)


def coverage_tests(exceed: np.ndarray, level: float) -> CoverageTest:
    """Kupiec (1995) and Christoffersen (1998) tests of exceedance indicators at VaR ``level``.

    Examples
    --------
    Ten exceedances in 100 days at 95% VaR (5 expected): Kupiec rejects at 5%:

    >>> import numpy as np
    >>> hits = np.zeros(100, dtype=bool)
    >>> hits[::10] = True
    >>> test = coverage_tests(hits, 0.95)
    >>> test.exceedances, round(float(test.lr_pof), 4), round(test.p_pof, 4), test.passes()
    (10, 4.1308, 0.0421, False)
    """
    level = check_probability_open(level, "level")
    hits = np.asarray(exceed, dtype=bool)
    if hits.ndim != 1 or hits.size < 2:
        raise ValueError(f"need a 1-d series of at least 2 exceedance indicators, got {hits.shape}")
    p = 1.0 - level
    n, x = hits.size, int(hits.sum())
    pi = x / n
    ll_ratio = _xlogy(n - x, 1 - p) + _xlogy(x, p) - _xlogy(n - x, 1 - pi) - _xlogy(x, pi)
    # >= 0 as a likelihood-ratio statistic is (rounding gave -1e-14 at x = expected; abs: not -0.0)
    lr_pof = abs(max(-2 * ll_ratio, 0.0))
    prev, cur = hits[:-1], hits[1:]
    n00 = int(np.sum(~prev & ~cur))
    n01 = int(np.sum(~prev & cur))
    n10 = int(np.sum(prev & ~cur))
    n11 = int(np.sum(prev & cur))
    pi01 = n01 / max(n00 + n01, 1)
    pi11 = n11 / max(n10 + n11, 1)
    pi1 = (n01 + n11) / (n - 1)
    ll_null = _xlogy(n00 + n10, 1 - pi1) + _xlogy(n01 + n11, pi1)
    ll_alt = _xlogy(n00, 1 - pi01) + _xlogy(n01, pi01) + _xlogy(n10, 1 - pi11) + _xlogy(n11, pi11)
    lr_ind = max(-2 * (ll_null - ll_alt), 0.0)
    lr_cc = lr_pof + lr_ind
    return CoverageTest(
        n, x, n * p,
        lr_pof, float(stats.chi2.sf(lr_pof, 1)),
        lr_ind, float(stats.chi2.sf(lr_ind, 1)),
        lr_cc, float(stats.chi2.sf(lr_cc, 2)),
    )  # fmt: skip
