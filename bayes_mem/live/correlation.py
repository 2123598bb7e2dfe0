"""Correlation of standardised residuals: shrinkage estimate, concentration, breakdown test.

Inputs are (T, N) arrays of *standardised residuals* (returns divided by their conditional
volatility, e.g. :meth:`ReturnModel.last_standardized_residual` collected day by day), so that a
volatility spike alone does not look like a correlation change. Correlations are computed on
normal scores (van der Waerden: ranks mapped through the normal quantile), which makes them robust
to the fat tails of the residuals and is the parameter of a Gaussian copula; the Jennrich test
then has its nominal size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from bayes_mem.live.validate import as_float_array, check_real


def _check_panel(x: np.ndarray, what: str, min_rows: int = 3) -> np.ndarray:
    x = as_float_array(x, what)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-d (days, symbols) array, got shape {x.shape}")
    if x.shape[1] < 2:
        raise ValueError(f"{what} needs at least 2 symbols, got {x.shape[1]}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{what} needs at least {min_rows} days, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        rows, cols = np.nonzero(~np.isfinite(x))
        raise ValueError(f"{what} has non-finite values (first at day {rows[0]}, symbol {cols[0]})")
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if constant.size:
        raise ValueError(
            f"{what}: symbols {constant[:5].tolist()} are constant; correlation undefined"
        )
    return x


def rank_normal_scores(x: np.ndarray) -> np.ndarray:
    """Column-wise van der Waerden scores ``Phi^-1(rank / (T + 1))`` (ties get mean ranks).

    Examples
    --------
    Three days: in the first column ranks 2, 1, 3 of T + 1 = 4 give ``Phi^-1`` of 0.5, 0.25,
    0.75; in the second the tied days share rank 1.5, ``Phi^-1(1.5 / 4) = -0.3186``:

    >>> import numpy as np
    >>> x = np.array([[0.5, 1.0], [-1.0, 1.0], [2.0, 3.0]])
    >>> np.round(rank_normal_scores(x), 4)
    array([[ 0.    , -0.3186],
           [-0.6745, -0.3186],
           [ 0.6745,  0.6745]])
    """
    x = _check_panel(x, "residuals")
    ranks = stats.rankdata(x, axis=0)
    return special.ndtri(ranks / (x.shape[0] + 1))


def shrunk_correlation(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf (2004) shrinkage of the normal-scores correlation toward the identity.

    Returns the (N, N) correlation and the shrinkage intensity in [0, 1]. Well conditioned even
    with more symbols than days.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def panel(days, rho):  # (days, 3) residuals with pairwise correlation rho
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=days)
    >>> history, recent = panel(250, 0.2), panel(20, 0.8)
    >>> corr, intensity = shrunk_correlation(history)
    >>> print(np.round(corr, 2))
    [[1.   0.21 0.2 ]
     [0.21 1.   0.15]
     [0.2  0.15 1.  ]]
    >>> round(intensity, 3)
    0.156
    """
    z = rank_normal_scores(x)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    t, n = z.shape
    sample = z.T @ z / t
    # Ledoit-Wolf with target I (the data are standardised, so the target's scale is 1)
    d2 = float(np.sum((sample - np.eye(n)) ** 2)) / n
    b2 = min(_b2_bar(z, sample), d2)
    shrink = b2 / d2 if d2 > 0 else 1.0
    corr = shrink * np.eye(n) + (1 - shrink) * sample
    dg = np.sqrt(np.diag(corr))
    return corr / np.outer(dg, dg), float(shrink)


def _b2_bar(z: np.ndarray, sample: np.ndarray) -> float:
    """Ledoit-Wolf's ``b2_bar = sum_t ||z_t z_t' - S||_F^2 / (n t^2)`` in closed form: since
    ``sum_t z_t z_t' = t S``, the sum is ``sum_t ||z_t||^4 - t ||S||_F^2`` (O(t n) beyond the
    sample matrix, instead of t outer products). Equal to the direct sum to rounding (tested
    against it)."""
    t, n = z.shape
    row2 = np.einsum("ti,ti->t", z, z)  # ||z_t||^2
    total = float(row2 @ row2) - t * float(np.sum(sample * sample))
    return max(total, 0.0) / (n * t * t)


def _b2_direct(z: np.ndarray, sample: np.ndarray) -> float:
    """The direct sum of :func:`_b2_bar` (the reference of its test)."""
    t, n = z.shape
    total = 0.0
    for row in z:
        total += np.sum((np.outer(row, row) - sample) ** 2)
    return total / (n * t * t)


@dataclass(frozen=True)
class Concentration:
    """How much a set of positions moves as one (from :func:`concentration`).

    Examples
    --------
    >>> c = concentration([[1.0, 0.5], [0.5, 1.0]])
    >>> c.average_correlation, c.score, round(c.effective_bets, 3)
    (0.5, 0.75, 1.6)
    """

    average_correlation: float  # mean off-diagonal correlation, in [-1, 1]
    score: float  # the seed plan's (average + 1) / 2, in [0, 1]; 1 = all move together
    effective_bets: float  # (sum eigenvalues)^2 / sum eigenvalues^2, in [1, N]


def concentration(corr: np.ndarray) -> Concentration:
    """Average correlation, the seed plan's concentration score and the effective number of
    independent bets of an (N, N) correlation matrix (e.g. from :func:`shrunk_correlation`).

    Examples
    --------
    >>> import numpy as np
    >>> c = concentration(np.full((4, 4), 0.6) + 0.4 * np.eye(4))
    >>> round(c.average_correlation, 3), round(c.score, 3), round(c.effective_bets, 3)
    (0.6, 0.8, 1.923)
    """
    corr = np.asarray(corr, dtype=float)
    n = corr.shape[0]
    if corr.shape != (n, n) or n < 2:
        raise ValueError(
            f"need a square correlation matrix of at least 2 symbols, got {corr.shape}"
        )
    avg = (corr.sum() - np.trace(corr)) / (n * (n - 1))
    eig = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    eff = eig.sum() ** 2 / np.sum(eig**2)
    return Concentration(float(avg), float((avg + 1) / 2), float(eff))


@dataclass(frozen=True)
class BreakdownTest:
    """One test of a correlation change (:func:`jennrich_test`, or a part of :class:`Breakdown`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def panel(days, rho):  # (days, 3) residuals with pairwise correlation rho
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=days)
    >>> history, recent = panel(250, 0.2), panel(20, 0.8)
    >>> test = jennrich_test(recent, history)  # asymptotic chi-square p-value
    >>> round(test.statistic, 2), round(test.p_value, 4), test.df
    (11.04, 0.0115, 3)
    """

    statistic: float
    p_value: float
    score: float  # 1 - p_value: evidence that the recent correlation differs from history
    df: int | None = None  # chi-square degrees of freedom (Jennrich)


@dataclass(frozen=True)
class Breakdown:
    """Both tests on the same permutations, combined by Bonferroni: the false-alarm rate of
    ``p_value`` is at most the nominal level.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def panel(days, rho):  # (days, 3) residuals with pairwise correlation rho
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=days)
    >>> history, recent = panel(250, 0.2), panel(20, 0.8)
    >>> b = correlation_breakdown(recent, history, n_sim=199, rng=1)
    >>> b.jennrich.p_value, b.mean_shift.p_value, b.p_value, b.score
    (0.025, 0.01, 0.02, 0.98)
    """

    jennrich: BreakdownTest
    mean_shift: BreakdownTest
    p_value: float
    score: float  # 1 - p_value, in [0, 1]


def _panels(recent: np.ndarray, history: np.ndarray) -> tuple[np.ndarray, int]:
    recent = _check_panel(recent, "recent residuals")
    history = _check_panel(history, "history residuals")
    if recent.shape[1] != history.shape[1]:
        raise ValueError(f"recent has {recent.shape[1]} symbols, history {history.shape[1]}")
    n1, n2, p = recent.shape[0], history.shape[0], recent.shape[1]
    if n1 + n2 <= p + 2:
        raise ValueError(f"{n1 + n2} days cannot test {p} symbols' correlations (need > {p + 2})")
    # ranks over the pooled sample do not change when days are permuted
    return rank_normal_scores(np.vstack([recent, history])), n1


def _split_corr(scores: np.ndarray, n1: int) -> tuple[np.ndarray, np.ndarray]:
    r1 = np.corrcoef(scores[:n1], rowvar=False)
    r2 = np.corrcoef(scores[n1:], rowvar=False)
    if not (np.all(np.isfinite(r1)) and np.all(np.isfinite(r2))):
        raise ValueError("a symbol is constant within one of the periods; correlation undefined")
    return r1, r2


def _jennrich(r1: np.ndarray, r2: np.ndarray, n1: int, n2: int) -> float:
    return float(_jennrich_batch(r1[None], r2[None], n1, n2)[0])


def _jennrich_batch(r1: np.ndarray, r2: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Jennrich's chi-square statistic for each pair of (S, p, p) correlation stacks."""
    p = r1.shape[1]
    pooled = (n1 * r1 + n2 * r2) / (n1 + n2)
    try:
        inv = np.linalg.inv(pooled)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the pooled correlation is singular: some symbols move as one (duplicated series?)"
        ) from None
    zmat = np.sqrt(n1 * n2 / (n1 + n2)) * inv @ (r1 - r2)
    dgz = np.einsum("spp->sp", zmat)
    sol = np.linalg.solve(np.eye(p) + pooled * inv, dgz[:, :, None])[:, :, 0]
    return 0.5 * np.einsum("sij,sji->s", zmat, zmat) - np.einsum("sp,sp->s", dgz, sol)


def _mean_shift(r1: np.ndarray, r2: np.ndarray) -> float:
    off = ~np.eye(r1.shape[0], dtype=bool)
    return float(r1[off].mean() - r2[off].mean())


def _batch_corr(x: np.ndarray) -> np.ndarray:
    """Correlation matrices of a stack of panels, (S, n, p) -> (S, p, p) (as np.corrcoef)."""
    xc = x - x.mean(axis=1, keepdims=True)
    cov = np.einsum("snp,snq->spq", xc, xc)
    sd = np.sqrt(np.einsum("spp->sp", cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = cov / sd[:, :, None] / sd[:, None, :]
    return np.clip(r, -1.0, 1.0, out=r)


def _permuted_statistics(stack: np.ndarray, n1: int) -> tuple[np.ndarray, np.ndarray]:
    """Jennrich's statistic and the mean shift for each permuted panel of ``stack`` ((S, n, p),
    the first ``n1`` days the recent period): :func:`_jennrich` and :func:`_mean_shift` of
    :func:`_split_corr`, vectorised over the permutations (one loop in numpy, not S)."""
    n2 = stack.shape[1] - n1
    r1, r2 = _batch_corr(stack[:, :n1]), _batch_corr(stack[:, n1:])
    if not (np.all(np.isfinite(r1)) and np.all(np.isfinite(r2))):
        raise ValueError("a symbol is constant within one of the periods; correlation undefined")
    jen = _jennrich_batch(r1, r2, n1, n2)
    off = ~np.eye(r1.shape[1], dtype=bool)
    shift = r1[:, off].mean(axis=1) - r2[:, off].mean(axis=1)
    return jen, shift


def _check_n_sim(n_sim: object) -> int:
    if isinstance(n_sim, bool) or not isinstance(n_sim, int) or n_sim < 0:
        raise ValueError(f"n_sim must be a non-negative integer, got {n_sim!r}")
    return n_sim


def correlation_breakdown(
    recent: np.ndarray,
    history: np.ndarray,
    *,
    n_sim: int = 199,
    rng: int | np.random.Generator | None = None,
) -> Breakdown:
    """Has the correlation of the last ``n1`` days (``recent``, (n1, N) standardised residuals)
    moved away from ``history`` ((n2, N), the days before)?

    Two statistics on normal scores of the pooled days: Jennrich's (1970) chi-square (any change
    of the matrix) and the shift of the average pairwise correlation (everything moving together,
    the crisis pattern; far more powerful for it). Their p-values come from ``n_sim`` random
    reassignments of days to the two periods (a permutation test, exact when days are
    exchangeable under the null: the chi-square reference over-rejects on 20-day windows, and
    more with common shocks); the combined ``p_value`` is Bonferroni's ``min(1, 2 min(p))``.

    Examples
    --------
    Three symbols whose pairwise correlation jumps from 0.2 (250 days) to 0.8 (the last 20):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def panel(days, rho):  # (days, 3) residuals with pairwise correlation rho
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=days)
    >>> history, recent = panel(250, 0.2), panel(20, 0.8)
    >>> b = correlation_breakdown(recent, history, n_sim=199, rng=1)
    >>> round(b.mean_shift.statistic, 3), b.p_value, b.score
    (0.499, 0.02, 0.98)
    >>> correlation_breakdown(panel(20, 0.2), history, n_sim=199, rng=1).p_value  # no change
    0.53
    """
    scores, n1 = _panels(recent, history)
    n_sim = _check_n_sim(n_sim)
    if n_sim == 0:
        raise ValueError("correlation_breakdown needs n_sim >= 1 (it is a permutation test)")
    n2 = scores.shape[0] - n1
    r1, r2 = _split_corr(scores, n1)
    j0, m0 = _jennrich(r1, r2, n1, n2), _mean_shift(r1, r2)
    gen = np.random.default_rng(rng)
    perms = np.stack([gen.permutation(scores.shape[0]) for _ in range(n_sim)])
    j_sim, m_sim = _permuted_statistics(scores[perms], n1)  # all permutations at once
    j_exceed = int(np.sum(j_sim >= j0))
    m_exceed = int(np.sum(np.abs(m_sim) >= abs(m0)))
    pj, pm = (1 + j_exceed) / (1 + n_sim), (1 + m_exceed) / (1 + n_sim)
    p = r1.shape[0]
    jen = BreakdownTest(j0, pj, 1 - pj, p * (p - 1) // 2)
    shift = BreakdownTest(m0, pm, 1 - pm)
    combined = min(1.0, 2 * min(pj, pm))
    return Breakdown(jen, shift, combined, 1.0 - combined)


def jennrich_test(
    recent: np.ndarray,
    history: np.ndarray,
    *,
    n_sim: int = 0,
    rng: int | np.random.Generator | None = None,
) -> BreakdownTest:
    """Jennrich's (1970) test alone: the asymptotic chi-square p-value by default, or a
    permutation p-value with ``n_sim`` > 0 (see :func:`correlation_breakdown`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def panel(days, rho):  # (days, 3) residuals with pairwise correlation rho
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=days)
    >>> history, recent = panel(250, 0.2), panel(20, 0.8)
    >>> round(jennrich_test(recent, history).p_value, 4)
    0.0115
    >>> jennrich_test(recent, history, n_sim=199, rng=1).p_value  # permutation p-value
    0.025
    """
    if _check_n_sim(n_sim) > 0:
        return correlation_breakdown(recent, history, n_sim=n_sim, rng=rng).jennrich
    scores, n1 = _panels(recent, history)
    r1, r2 = _split_corr(scores, n1)
    p = r1.shape[0]
    stat = _jennrich(r1, r2, n1, scores.shape[0] - n1)
    pval = float(stats.chi2.sf(stat, p * (p - 1) // 2))
    return BreakdownTest(stat, pval, 1.0 - pval, p * (p - 1) // 2)


def limit_factors(concentration_score: float, breakdown_score: float) -> tuple[float, float]:
    """The seed plan's cuts: ``1 - 0.3 * concentration`` and ``1 - 0.5 * breakdown``.

    Examples
    --------
    A concentration of 0.5 and a breakdown score of 0.2: 1 - 0.3 x 0.5 and 1 - 0.5 x 0.2:

    >>> tuple(round(f, 6) for f in limit_factors(0.5, 0.2))
    (0.85, 0.9)
    >>> limit_factors(1.2, 0.0)
    Traceback (most recent call last):
        ...
    ValueError: concentration_score must be in [0, 1], got 1.2
    """
    scores = []
    for name, v in (
        ("concentration_score", concentration_score),
        ("breakdown_score", breakdown_score),
    ):
        score = check_real(v, name)
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        scores.append(score)
    return 1.0 - 0.3 * scores[0], 1.0 - 0.5 * scores[1]
