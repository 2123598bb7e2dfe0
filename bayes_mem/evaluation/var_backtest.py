"""Backtests of one-day VaR forecasts: Kupiec's proportion of failures and Christoffersen's
independence and conditional-coverage likelihood-ratio tests; rolling forecasts on a return series.

An *exceedance* on day t is a realised return below minus the VaR forecast made the day before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from bayes_mem.live._validate import check_probability_open
from bayes_mem.live.gjr_garch import fit_laplace, variance_path
from bayes_mem.live.return_model import ReturnModel, to_log_returns


@dataclass(frozen=True)
class CoverageTest:
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
        return min(self.p_pof, self.p_ind, self.p_cc) > size


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * np.log(y)


def coverage_tests(exceed: np.ndarray, level: float) -> CoverageTest:
    """Kupiec (1995) and Christoffersen (1998) tests of exceedance indicators at VaR ``level``."""
    level = check_probability_open(level, "level")
    hits = np.asarray(exceed, dtype=bool)
    if hits.ndim != 1 or hits.size < 2:
        raise ValueError(f"need a 1-d series of at least 2 exceedance indicators, got {hits.shape}")
    p = 1.0 - level
    n, x = hits.size, int(hits.sum())
    pi = x / n
    lr_pof = -2 * (_xlogy(n - x, 1 - p) + _xlogy(x, p) - _xlogy(n - x, 1 - pi) - _xlogy(x, pi))
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


@dataclass(frozen=True)
class RollingForecast:
    returns: np.ndarray  # realised log returns of the forecast days
    var: dict[float, np.ndarray]  # level -> VaR of each day's log return (positive loss)
    es: dict[float, np.ndarray]

    def exceedances(self, level: float) -> np.ndarray:
        return self.returns < -self.var[level]

    def test(self, level: float) -> CoverageTest:
        return coverage_tests(self.exceedances(level), level)


def rolling_gjr_forecast(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 20,
    n_draws: int = 100,
    rng: int | np.random.Generator | None = None,
) -> RollingForecast:
    """Our model out of sample: every ``refit_every`` days a Laplace-approximate posterior is fitted
    on the previous ``window`` days; between refits the draws are rolled forward day by day."""
    r = to_log_returns(returns, kind)
    if r.size <= window:
        raise ValueError(f"need more than window={window} returns, got {r.size}")
    gen = np.random.default_rng(rng)
    var = {lv: np.empty(r.size - window) for lv in levels}
    es = {lv: np.empty(r.size - window) for lv in levels}
    model: ReturnModel | None = None
    for t in range(window, r.size):
        if (t - window) % refit_every == 0:
            past = r[t - window : t]
            fit = fit_laplace(past, n_draws, gen)
            sigma2 = variance_path(past, fit.draws, float(np.var(past)))[:, -1]
            model = ReturnModel({"x": fit.draws}, {"x": sigma2})
        for lv in levels:
            f = model.risk(lv)
            var[lv][t - window], es[lv][t - window] = f.var_log[0], f.es_log[0]
        model.update([r[t]], kind="log")
    return RollingForecast(r[window:], var, es)


def rolling_historical_forecast(
    returns: np.ndarray, *, kind: str, levels: tuple[float, ...] = (0.975, 0.99), window: int = 252
) -> RollingForecast:
    """The seed plan's forecast: the historical percentile of the last ``window`` days (and the
    mean beyond it as ES)."""
    r = to_log_returns(returns, kind)
    if r.size <= window:
        raise ValueError(f"need more than window={window} returns, got {r.size}")
    var, es = {}, {}
    windows = np.lib.stride_tricks.sliding_window_view(r[:-1], window)
    for lv in levels:
        q = np.percentile(windows, (1 - lv) * 100, axis=1)
        var[lv] = -q
        es[lv] = np.array([-w[w <= qq].mean() for w, qq in zip(windows, q, strict=True)])
    return RollingForecast(r[window:], var, es)
