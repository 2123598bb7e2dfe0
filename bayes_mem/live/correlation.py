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


def _check_panel(x: np.ndarray, what: str, min_rows: int = 3) -> np.ndarray:
    x = np.asarray(x, dtype=float)
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


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Column-wise van der Waerden scores ``Phi^-1(rank / (T + 1))`` (ties get mean ranks)."""
    x = _check_panel(x, "residuals")
    ranks = stats.rankdata(x, axis=0)
    return special.ndtri(ranks / (x.shape[0] + 1))


def shrunk_correlation(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf (2004) shrinkage of the normal-scores correlation toward the identity.

    Returns the (N, N) correlation and the shrinkage intensity in [0, 1]. Well conditioned even
    with more symbols than days."""
    z = normal_scores(x)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    t, n = z.shape
    sample = z.T @ z / t
    # Ledoit-Wolf with target I (the data are standardised, so the target's scale is 1)
    d2 = np.sum((sample - np.eye(n)) ** 2) / n
    b2_bar = (
        np.sum((np.einsum("ti,tj->tij", z, z) - sample) ** 2) / (n * t * t)
        if n * n * t <= 5e7
        else _b2_chunked(z, sample)
    )
    b2 = min(b2_bar, d2)
    shrink = b2 / d2 if d2 > 0 else 1.0
    corr = shrink * np.eye(n) + (1 - shrink) * sample
    dg = np.sqrt(np.diag(corr))
    return corr / np.outer(dg, dg), float(shrink)


def _b2_chunked(z: np.ndarray, sample: np.ndarray) -> float:
    t, n = z.shape
    total = 0.0
    for row in z:
        total += np.sum((np.outer(row, row) - sample) ** 2)
    return total / (n * t * t)


@dataclass(frozen=True)
class Concentration:
    average_correlation: float  # mean off-diagonal correlation, in [-1, 1]
    score: float  # the seed plan's (average + 1) / 2, in [0, 1]; 1 = all move together
    effective_bets: float  # (sum eigenvalues)^2 / sum eigenvalues^2, in [1, N]


def concentration(corr: np.ndarray) -> Concentration:
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
    statistic: float
    df: int
    p_value: float
    score: float  # 1 - p_value: evidence that the recent correlation differs from history


def jennrich_test(
    recent: np.ndarray,
    history: np.ndarray,
    *,
    n_sim: int = 199,
    rng: int | np.random.Generator | None = None,
) -> BreakdownTest:
    """Jennrich (1970) chi-square test that two correlation matrices are equal.

    ``recent`` (n1, N) and ``history`` (n2, N) are standardised residuals over disjoint periods.
    Both are converted to normal scores over the pooled sample, so the test is robust to fat tails.
    The chi-square reference over-rejects when the recent window is short (20 days: ~8% at a
    nominal 5%), so by default the p-value is calibrated by ``n_sim`` simulations of the whole
    procedure under the null (Gaussian copula with the pooled correlation); ``n_sim=0`` uses the
    asymptotic chi-square. Needs n1 + n2 > N + 2."""
    recent = _check_panel(recent, "recent residuals")
    history = _check_panel(history, "history residuals")
    if recent.shape[1] != history.shape[1]:
        raise ValueError(f"recent has {recent.shape[1]} symbols, history {history.shape[1]}")
    n1, n2, p = recent.shape[0], history.shape[0], recent.shape[1]
    if n1 + n2 <= p + 2:
        raise ValueError(f"{n1 + n2} days cannot test {p} symbols' correlations (need > {p + 2})")
    if isinstance(n_sim, bool) or not isinstance(n_sim, int) or n_sim < 0:
        raise ValueError(f"n_sim must be a non-negative integer, got {n_sim!r}")
    stat, pooled = _jennrich_statistic(np.vstack([recent, history]), n1)
    df = p * (p - 1) // 2
    if n_sim == 0:
        pval = float(stats.chi2.sf(stat, df))
    else:
        gen = np.random.default_rng(rng)
        chol = np.linalg.cholesky(pooled)
        exceed = 0
        for _ in range(n_sim):
            sim = gen.standard_normal((n1 + n2, p)) @ chol.T
            exceed += _jennrich_statistic(sim, n1)[0] >= stat
        pval = (1 + exceed) / (1 + n_sim)
    return BreakdownTest(float(stat), df, pval, 1.0 - pval)


def _jennrich_statistic(panel: np.ndarray, n1: int) -> tuple[float, np.ndarray]:
    scores = normal_scores(panel)
    n2, p = panel.shape[0] - n1, panel.shape[1]
    r1 = np.corrcoef(scores[:n1], rowvar=False)
    r2 = np.corrcoef(scores[n1:], rowvar=False)
    if not (np.all(np.isfinite(r1)) and np.all(np.isfinite(r2))):
        raise ValueError("a symbol is constant within one of the periods; correlation undefined")
    pooled = (n1 * r1 + n2 * r2) / (n1 + n2)
    c = n1 * n2 / (n1 + n2)
    inv = np.linalg.inv(pooled)
    zmat = np.sqrt(c) * inv @ (r1 - r2)
    s = np.eye(p) + pooled * inv
    dgz = np.diag(zmat)
    stat = 0.5 * np.trace(zmat @ zmat) - dgz @ np.linalg.solve(s, dgz)
    return float(stat), pooled


def limit_factors(concentration_score: float, breakdown_score: float) -> tuple[float, float]:
    """The seed plan's cuts: ``1 - 0.3 * concentration`` and ``1 - 0.5 * breakdown``."""
    for name, v in (
        ("concentration_score", concentration_score),
        ("breakdown_score", breakdown_score),
    ):
        if not 0.0 <= v <= 1.0 or not np.isfinite(v):
            raise ValueError(f"{name} must be in [0, 1], got {v!r}")
    return 1.0 - 0.3 * concentration_score, 1.0 - 0.5 * breakdown_score
