"""Portfolio one-day VaR/ES by simulation from the symbols' posterior predictives.

Each scenario draws, per symbol, one posterior parameter draw and a skew-t innovation; the
innovations are joined by a Gaussian copula whose correlation is the normal-scores correlation of
standardised residuals (:mod:`bayes_mem.live.correlation`), so the copula matches how the
correlation was estimated. Positions are currency values (long > 0, short < 0); a scenario's PnL
is ``sum_i V_i (exp(r_i) - 1)`` with ``r_i`` the log return. The Monte Carlo standard errors of
VaR and ES come from batch means and are reported with the estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_mem.live._validate import check_int, check_probability_open, check_real
from bayes_mem.live.return_model import ReturnModel
from bayes_mem.live.skewt import SkewT

_BATCHES = 20


@dataclass(frozen=True)
class PortfolioRisk:
    level: float
    var: float  # currency, positive = loss
    es: float
    var_se: float  # Monte Carlo standard errors (batch means)
    es_se: float
    n_sims: int
    gross_exposure: float

    @property
    def es_fraction_of_gross(self) -> float:
        return self.es / self.gross_exposure


def check_correlation(corr: np.ndarray, n: int) -> np.ndarray:
    c = np.asarray(corr, dtype=float)
    if c.shape != (n, n):
        raise ValueError(f"correlation must be {n} x {n} (one row per position), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("correlation has non-finite entries")
    if not np.allclose(c, c.T, atol=1e-10) or not np.allclose(np.diag(c), 1.0, atol=1e-10):
        raise ValueError("correlation must be symmetric with a unit diagonal")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(
            "correlation is not positive definite (singular input: more symbols than days, or "
            "duplicated series); use correlation.shrunk_correlation"
        ) from None
    return c


def portfolio_risk(
    model: ReturnModel,
    positions: Mapping[str, float],
    correlation: np.ndarray,
    *,
    level: float = 0.975,
    n_sims: int = 20_000,
    rng: int | np.random.Generator | None = None,
) -> PortfolioRisk:
    """One-day VaR and ES (currency) of ``positions``; ``correlation`` rows follow the order of
    ``positions``."""
    level = check_probability_open(level, "level")
    n_sims = check_int(n_sims, "n_sims", minimum=_BATCHES * 50)
    if not positions:
        raise ValueError("positions is empty")
    symbols = list(positions)
    unknown = [s for s in symbols if s not in model.symbols]
    if unknown:
        raise ValueError(f"positions name symbols the model does not have: {unknown[:5]!r}")
    values = np.array([check_real(positions[s], f"position {s!r}") for s in symbols])
    gross = float(np.abs(values).sum())
    if gross == 0:
        raise ValueError("all positions are zero")
    corr = check_correlation(correlation, len(symbols))
    gen = np.random.default_rng(rng)
    idx = np.array([model.symbols.index(s) for s in symbols])
    p = {k: model._p[k][idx] for k in ("mu", "nu", "lam")}
    sd = np.sqrt(model.sigma2()[idx])
    n, s_draws = len(symbols), sd.shape[1]
    u = special.ndtr(gen.standard_normal((n_sims, n)) @ np.linalg.cholesky(corr).T)
    pick = gen.integers(0, s_draws, (n_sims, n))
    cols = np.arange(n)
    inn = SkewT.from_params(p["nu"][cols, pick], p["lam"][cols, pick])
    r = p["mu"][cols, pick] + sd[cols, pick] * inn.ppf(u)
    loss = -(np.expm1(r) @ values)
    var, es = _var_es(loss, level)
    batches = np.array([_var_es(b, level) for b in np.array_split(loss, _BATCHES)])
    se = batches.std(axis=0, ddof=1) / np.sqrt(_BATCHES)
    return PortfolioRisk(level, var, es, float(se[0]), float(se[1]), n_sims, gross)


def _var_es(loss: np.ndarray, level: float) -> tuple[float, float]:
    var = float(np.quantile(loss, level))
    return var, float(loss[loss >= var].mean())
