"""Portfolio one-day VaR/ES from the symbols' posterior predictives and a correlation.

Positions are currency values (long > 0, short < 0). Two methods:

``"elliptical"`` (default, ~1 ms): for each posterior draw s the portfolio PnL ``sum_i V_i r_i``
(linear in the log returns: first order, error ~ r^2 / 2 of the position) is a skew-t with
location ``sum_i V_i mu_is``, scale ``sqrt(x_s' R x_s)`` with ``x_is = V_i sd_is``, and tail weight
and skew averaged over symbols by their share of the portfolio variance (Euler contributions;
a short position flips its skew). The posterior-predictive VaR/ES are those of the mixture over
draws, solved like a single symbol's. Deterministic, no simulation error. It is an elliptical
(common-shock, t-copula-like) model: joint tail events are more likely than under the Gaussian
copula of the simulation method, so it is the more conservative of the two (measured: ES 0-15%
above the simulation's for 1-50 positions; the linear PnL adds ~r^2/2 per position).

``"simulation"``: each scenario draws, per symbol, one posterior draw and a skew-t innovation,
joined by a Gaussian copula with the normal-scores correlation of standardised residuals
(:mod:`bayes_mem.live.correlation`, estimated the same way); PnL is ``sum_i V_i (exp(r_i) - 1)``,
exact. The Monte Carlo standard errors of VaR and ES (batch means) are reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import special

from bayes_mem.live._validate import as_float_array, check_int, check_level, check_real
from bayes_mem.live.mixture_tail import MixtureTail
from bayes_mem.live.return_model import ReturnModel
from bayes_mem.live.skewt import SkewT

_BATCHES = 20


@dataclass(frozen=True)
class PortfolioRisk:
    level: float
    var: float  # currency, positive = loss
    es: float
    method: str
    gross_exposure: float
    var_se: float | None = None  # Monte Carlo standard errors (batch means); None: not simulated
    es_se: float | None = None
    n_sims: int | None = None

    @property
    def es_fraction_of_gross(self) -> float:
        return self.es / self.gross_exposure


def check_correlation(corr: np.ndarray, n: int) -> np.ndarray:
    c = as_float_array(corr, "correlation")
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
    method: str = "elliptical",
    n_sims: int = 20_000,
    rng: int | np.random.Generator | None = None,
) -> PortfolioRisk:
    """One-day VaR and ES (currency, positive = loss) of ``positions``; ``correlation`` rows
    follow the order of ``positions``. ``n_sims`` and ``rng`` apply to ``method="simulation"``."""
    level = check_level(level, "level")
    if method not in ("elliptical", "simulation"):
        raise ValueError(f"method must be 'elliptical' or 'simulation', got {method!r}")
    if not positions:
        raise ValueError("positions is empty")
    symbols = list(positions)
    unknown = [s for s in symbols if s not in model.symbols]
    if unknown:
        raise ValueError(f"positions name symbols the model does not have: {unknown[:5]!r}")
    values = np.array([check_real(positions[s], f"position {s!r}") for s in symbols])
    with np.errstate(over="ignore"):  # an overflow is refused below
        gross = float(np.abs(values).sum())
    if gross == 0:
        raise ValueError("all positions are zero")
    if not np.isfinite(gross):
        raise ValueError(f"gross exposure overflows: positions {values[:5].tolist()}")
    # VaR and ES are positively homogeneous in the positions: solve for unit gross exposure
    # (no overflow or underflow of the squared scales) and scale back
    values = values / gross
    corr = check_correlation(correlation, len(symbols))
    idx = np.array([model.symbols.index(s) for s in symbols])
    mu = model._p["mu"][idx]
    sd = np.sqrt(model.sigma2()[idx])
    nu, lam = model._inn.nu[idx], model._p["lam"][idx]
    alpha = 1.0 - level
    if method == "elliptical":
        x = values[:, None] * sd  # (n, S) scale per symbol and draw, per unit of gross
        rx = corr @ x
        var_p = np.sum(x * rx, axis=0)
        share = np.abs(x * rx)
        share /= share.sum(axis=0)
        nu_p = np.sum(share * nu, axis=0)
        lam_p = np.sum(share * np.sign(values)[:, None] * lam, axis=0)
        loc = values @ mu  # (S,)
        scale = np.sqrt(var_p)
        tail = MixtureTail(nu_p[None, :], lam_p[None, :])
        q0 = np.array([loc.mean() - 2.0 * np.sqrt(np.mean(var_p) + loc.var())])
        var, es, _ = tail.var_es(alpha, loc[None, :], scale[None, :], q0, rtol=1e-6)
        return PortfolioRisk(level, gross * float(var[0]), gross * float(es[0]), method, gross)
    n_sims = check_int(n_sims, "n_sims", minimum=_BATCHES * 50)
    gen = np.random.default_rng(rng)
    n, s_draws = len(symbols), sd.shape[1]
    u = special.ndtr(gen.standard_normal((n_sims, n)) @ np.linalg.cholesky(corr).T)
    pick = gen.integers(0, s_draws, (n_sims, n))
    cols = np.arange(n)
    inn = SkewT.from_params(nu[cols, pick], lam[cols, pick])
    r = mu[cols, pick] + sd[cols, pick] * inn.ppf(u)
    loss = -(np.expm1(r) @ values)
    var, es = _var_es(loss, level)
    batches = np.array([_var_es(b, level) for b in np.array_split(loss, _BATCHES)])
    se = gross * batches.std(axis=0, ddof=1) / np.sqrt(_BATCHES)
    return PortfolioRisk(
        level, gross * var, gross * es, method, gross, float(se[0]), float(se[1]), n_sims
    )


def _var_es(loss: np.ndarray, level: float) -> tuple[float, float]:
    var = float(np.quantile(loss, level))
    return var, float(loss[loss >= var].mean())
