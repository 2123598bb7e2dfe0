"""Risk-forecast baselines a quant would pick, walk-forward on daily log returns, with the
conventions of :mod:`bayes_mem.evaluation.var_backtest` (VaR/ES positive losses of the log
return; the forecast for day t uses only returns before t):

- :func:`rolling_arch_forecasts`: ``arch``'s GJR-GARCH(1,1,1) with Hansen's skew-t innovations,
  fitted by maximum likelihood on the same window and refit cadence as ours
  (``arch_model(100 r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="skewt")``), the
  variance rolled forward day by day between refits with the fitted parameters; and filtered
  historical simulation (FHS) through the same fitted GJR filter, with the empirical
  standardised residuals of the window in place of the skew-t. arch's skew-t parameters
  ``(eta, lambda)`` are Hansen's ``(nu, lam)`` of :class:`bayes_mem.live.skewt.SkewT` (checked
  in the tests: equal quantiles and CDF), so its VaR/ES come from our closed forms.
  ``horizon``-day VaR/ES by simulating the fitted GJR recursion (skew-t draws for arch,
  residuals resampled for FHS; the same innovations for every day between two refits).
- :func:`rolling_ewma_forecast`: RiskMetrics EWMA variance (lambda 0.94, zero mean) with normal
  innovations, or unit-variance Student-t innovations whose ``nu`` is fitted by maximum
  likelihood on the window's EWMA-standardised returns at each refit; ``horizon``-day by
  square-root-of-time scaling (stated as such: the RiskMetrics convention, not a model answer).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import optimize, stats

from bayes_mem.evaluation.predictive import (
    FilteredEmpiricalPredictive,
    LocationScalePredictive,
    MixturePredictive,
)
from bayes_mem.evaluation.var_backtest import (
    RollingForecast,
    _check_levels,
    _check_window,
    _location_scale_risk,
)
from bayes_mem.live.return_model import to_log_returns
from bayes_mem.live.skewt import SkewT
from bayes_mem.live.validate import check_int, check_probability_open

SCALE = 100.0  # arch fits percent returns (its optimiser is tuned for that scale)
ARCH_PARAMS = ("mu", "omega", "alpha[1]", "gamma[1]", "beta[1]", "eta", "lambda")


def _tail_of_sums(sums: np.ndarray, level: float) -> tuple[float, float]:
    """VaR and ES (positive losses) of an empirical sample of returns."""
    q = float(np.quantile(sums, 1.0 - level))
    return -q, -float(sums[sums <= q].mean())


def simulate_gjr_sums(
    loc: float,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    sigma2: float,
    z: np.ndarray,
) -> np.ndarray:
    """Sums over ``z.shape[1]`` days of GJR-GARCH paths ``r_k = loc + e_k``, ``e_k = sigma_k z_k``,
    ``sigma2_{k+1} = omega + (alpha + gamma 1{e_k < 0}) e_k^2 + beta sigma2_k``, from the first
    day's variance ``sigma2``; one path per row of the standardised innovations ``z``.

    Examples
    --------
    Two days from ``sigma2 = 1``: path 1 gains 1, its variance becomes
    ``0.1 + 0.05 + 0.8 = 0.95``, then loses ``sqrt(0.95) = 0.9747``; path 2 has zero shocks:

    >>> import numpy as np
    >>> z = np.array([[1.0, -1.0], [0.0, 0.0]])
    >>> np.round(simulate_gjr_sums(0.0, 0.1, 0.05, 0.1, 0.8, 1.0, z), 4)
    array([0.0253, 0.    ])
    """
    z = np.asarray(z, dtype=float)
    s2 = np.full(z.shape[0], float(sigma2))
    total = np.zeros(z.shape[0])
    for k in range(z.shape[1]):
        e = np.sqrt(s2) * z[:, k]
        total += loc + e
        s2 = omega + (alpha + gamma * (e < 0)) * e * e + beta * s2
    return total


def _fit_arch(past_pct: np.ndarray, start: np.ndarray | None):
    from arch import arch_model

    am = arch_model(
        past_pct, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="skewt", rescale=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: the result is still the best found
        res = am.fit(disp="off", starting_values=start, options={"maxiter": 500})
    return res


def rolling_arch_forecasts(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 20,
    horizon: int = 1,
    n_paths: int = 5000,
    rng: int | np.random.Generator | None = None,
) -> dict[str, RollingForecast]:
    """``{"arch_gjr_skewt": ..., "fhs_gjr": ...}``: the ML GJR-GARCH skew-t and filtered
    historical simulation through its filter (module docstring), refit every ``refit_every``
    days on the previous ``window`` days (warm-started from the previous fit). ``horizon > 1``
    also simulates ``n_paths`` paths of ``horizon`` days for the multi-day VaR/ES.

    Examples
    --------
    One ML fit on 250 simulated normal days (1% volatility), two forecast days; the 99% VaR is
    near ``2.326 * 1% = 2.3%``:

    >>> import numpy as np
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(252)
    >>> f = rolling_arch_forecasts(r, kind="log", levels=(0.99,), window=250)
    >>> sorted(f), f["fhs_gjr"].returns.size
    (['arch_gjr_skewt', 'fhs_gjr'], 2)
    >>> var = f["arch_gjr_skewt"].var[0.99]
    >>> bool(np.all((0.02 < var) & (var < 0.035)))
    True
    """
    r = to_log_returns(returns, kind)
    window, refit_every = _check_window(r, window, refit_every)
    levels = _check_levels(levels)
    horizon = check_int(horizon, "horizon", minimum=1)
    n_paths = check_int(n_paths, "n_paths", minimum=100)
    gen = np.random.default_rng(rng)
    n = r.size - window
    x = SCALE * r
    out = {
        m: ({lv: np.empty(n) for lv in levels}, {lv: np.empty(n) for lv in levels})
        for m in ("arch_gjr_skewt", "fhs_gjr")
    }
    out_h = (
        {m: ({lv: np.empty(n) for lv in levels}, {lv: np.empty(n) for lv in levels}) for m in out}
        if horizon > 1
        else {}
    )
    loc, sd, nu, lam = (np.empty(n) for _ in range(4))
    pools, block = [], np.empty(n, dtype=np.intp)
    start: np.ndarray | None = None
    for t in range(window, r.size):
        i = t - window
        if i % refit_every == 0:
            past = x[t - window : t]
            res = _fit_arch(past, start)
            p = np.asarray([res.params[k] for k in ARCH_PARAMS], dtype=float)
            if not np.all(np.isfinite(p)) or p[5] <= 2.0 or abs(p[6]) >= 1.0:
                if start is None:
                    raise RuntimeError(f"arch's first fit failed: params {p}")
                p = start  # keep the previous fit's parameters
            start = p
            mu, omega, a1, g1, b1, eta, lm = p
            inn = SkewT.from_params(eta, lm)
            e_last = past[-1] - mu
            s2_last = float(res.conditional_volatility[-1]) ** 2
            if not np.isfinite(s2_last) or s2_last <= 0:
                s2_last = float(np.var(past))
            s2 = omega + (a1 + g1 * (e_last < 0)) * e_last**2 + b1 * s2_last
            zres = (past - mu) / np.asarray(res.conditional_volatility, dtype=float)
            zres = zres[np.isfinite(zres)]
            pools.append(zres)
            tails = {}
            for lv in levels:
                alpha = 1.0 - lv
                zq = float(inn.ppf(alpha))
                zes = float(inn.expected_shortfall(alpha))
                eq = float(np.quantile(zres, alpha))
                ees = -float(zres[zres <= eq].mean())
                tails[lv] = (zq, zes, eq, ees)
            if horizon > 1:
                z_arch = inn.ppf(gen.random((n_paths, horizon)))
                z_fhs = zres[gen.integers(0, zres.size, size=(n_paths, horizon))]
        loc[i], sd[i], nu[i], lam[i] = mu / SCALE, np.sqrt(s2) / SCALE, eta, lm
        block[i] = len(pools) - 1
        for lv in levels:
            zq, zes, eq, ees = tails[lv]
            out["arch_gjr_skewt"][0][lv][i] = -(loc[i] + sd[i] * zq)
            out["arch_gjr_skewt"][1][lv][i] = -loc[i] + sd[i] * zes
            out["fhs_gjr"][0][lv][i] = -(loc[i] + sd[i] * eq)
            out["fhs_gjr"][1][lv][i] = -loc[i] + sd[i] * ees
        if horizon > 1:
            for m, z in (("arch_gjr_skewt", z_arch), ("fhs_gjr", z_fhs)):
                sums = simulate_gjr_sums(mu, omega, a1, g1, b1, s2, z) / SCALE
                for lv in levels:
                    out_h[m][0][lv][i], out_h[m][1][lv][i] = _tail_of_sums(sums, lv)
        e = x[t] - mu
        s2 = omega + (a1 + g1 * (e < 0)) * e * e + b1 * s2
    size = max(p.size for p in pools)
    # pools of unequal size (a non-finite residual dropped) are padded by resampling
    pool_arr = np.stack([p if p.size == size else np.resize(p, size) for p in pools])
    preds = {
        "arch_gjr_skewt": MixturePredictive(loc[:, None], sd[:, None], nu[:, None], lam[:, None]),
        "fhs_gjr": FilteredEmpiricalPredictive(loc, sd, pool_arr, block),
    }
    return {
        m: RollingForecast(
            r[window:],
            var,
            es,
            preds[m],
            horizon,
            *(out_h[m] if horizon > 1 else ({}, {})),
        )
        for m, (var, es) in out.items()
    }


def ewma_variance(r: np.ndarray, lam: float = 0.94, init_days: int = 250) -> np.ndarray:
    """RiskMetrics one-day-ahead variances ``s2[t] = lam s2[t-1] + (1 - lam) r[t-1]^2`` (the
    forecast for day t from returns before t), started at the mean square of the first
    ``init_days`` returns (only forecasts after them are fair).

    Examples
    --------
    Started at ``0.01^2``; a -2% day moves the next forecast to
    ``0.94e-4 + 0.06 * 4e-4 = 1.18e-4``:

    >>> import numpy as np
    >>> ewma_variance(np.array([0.01, -0.02, 0.0]), init_days=1)
    array([0.0001  , 0.0001  , 0.000118])
    """
    r = np.asarray(r, dtype=float)
    lam = check_probability_open(lam, "lam")
    init_days = check_int(init_days, "init_days", minimum=1)
    s2 = np.empty(r.size)
    s2[0] = float(np.mean(r[: min(init_days, r.size)] ** 2))
    for t in range(1, r.size):
        s2[t] = lam * s2[t - 1] + (1.0 - lam) * r[t - 1] ** 2
    return s2


def fit_standardized_t_nu(z: np.ndarray, bounds: tuple[float, float] = (2.1, 200.0)) -> float:
    """ML ``nu`` of a unit-variance Student-t for the standardised residuals ``z``.

    Examples
    --------
    2,000 unit-variance t(5) draws give back ``nu`` close to 5:

    >>> import numpy as np
    >>> z = np.random.default_rng(0).standard_t(5, 2000) * np.sqrt(3 / 5)
    >>> round(fit_standardized_t_nu(z), 1)
    4.8
    """
    z = np.asarray(z, dtype=float)

    def nll(nu: float) -> float:
        k = np.sqrt(nu / (nu - 2.0))
        return -float(np.sum(stats.t.logpdf(z * k, nu)) + z.size * np.log(k))

    return float(optimize.minimize_scalar(nll, bounds=bounds, method="bounded").x)


def rolling_ewma_forecast(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 20,
    lam: float = 0.94,
    dist: str = "normal",
    horizon: int = 1,
) -> RollingForecast:
    """RiskMetrics EWMA (``lam``, zero mean) with ``dist`` ``"normal"`` or ``"t"`` innovations
    (the t's ``nu`` refit every ``refit_every`` days on the previous ``window`` standardised
    returns); forecasts start after ``window`` days like ours. ``horizon > 1``: the one-day VaR/ES
    scaled by ``sqrt(horizon)``.

    Examples
    --------
    Normal innovations: VaR 99% is ``2.326 sigma_t`` with the EWMA volatility (zero mean), ES
    ``phi(2.326) / 0.01 sigma_t = 2.665 sigma_t``; with ``horizon=4`` the 4-day figures double:

    >>> import numpy as np
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(260)
    >>> f = rolling_ewma_forecast(r, kind="log", levels=(0.99,), window=250)
    >>> sigma = np.sqrt(ewma_variance(r, init_days=250)[250:])
    >>> bool(np.allclose(f.var[0.99], 2.3263 * sigma, rtol=1e-4)), np.round(f.var[0.99][:2], 4)
    (True, array([0.0301, 0.0292]))
    >>> f4 = rolling_ewma_forecast(r, kind="log", levels=(0.99,), window=250, horizon=4)
    >>> bool(np.allclose(f4.var_h[0.99], 2 * f.var[0.99]))
    True
    """
    if dist not in ("normal", "t"):
        raise ValueError(f"dist must be 'normal' or 't', got {dist!r}")
    r = to_log_returns(returns, kind)
    window, refit_every = _check_window(r, window, refit_every)
    levels = _check_levels(levels)
    s2 = ewma_variance(r, lam, init_days=window)
    sigma = np.sqrt(s2[window:])
    n = sigma.size
    loc = np.zeros(n)
    if dist == "normal":
        var, es = _location_scale_risk(loc, sigma, None, levels)
        pred = LocationScalePredictive(loc, sigma)
    else:
        nu = np.empty(n)
        z = r / np.sqrt(s2)
        for i in range(0, n, refit_every):
            nu[i : i + refit_every] = fit_standardized_t_nu(z[i : i + window])
        scale = sigma * np.sqrt((nu - 2.0) / nu)
        var, es = _location_scale_risk(loc, scale, nu, levels)
        pred = LocationScalePredictive(loc, scale, nu)
    f = RollingForecast(r[window:], var, es, pred)
    return f.scaled_horizon(horizon) if horizon > 1 else f


__all__ = [
    "ARCH_PARAMS",
    "ewma_variance",
    "fit_standardized_t_nu",
    "rolling_arch_forecasts",
    "rolling_ewma_forecast",
    "simulate_gjr_sums",
]
