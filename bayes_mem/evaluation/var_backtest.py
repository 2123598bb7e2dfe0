"""Backtests of one-day VaR forecasts: Kupiec's proportion of failures and Christoffersen's
independence and conditional-coverage likelihood-ratio tests; rolling (walk-forward) forecasts on a
return series: our GJR-GARCH-skew-t model, the seed plan's historical percentile, a rolling normal
and a static (i.i.d.) Student-t.

Returns are daily log returns (fractions, 0.01 = 1%); VaR and ES are positive losses of the log
return. The forecast for day t uses only returns before t. An *exceedance* on day t is a realised
return below minus the VaR forecast made the day before. Every forecaster also gives each day's
predictive distribution as a sampler (:mod:`bayes_mem.evaluation.predictive`), for the simulated
ES backtests of :mod:`bayes_mem.evaluation.es_backtest`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import special, stats

from bayes_mem.evaluation.predictive import (
    EmpiricalPredictive,
    FilteredEmpiricalPredictive,
    LocationScalePredictive,
    MixturePredictive,
)
from bayes_mem.live.coverage import CoverageTest, coverage_tests  # re-exported: public API
from bayes_mem.live.gjr_garch import GarchDraws, UnfitSeriesError, fit_laplace, variance_path
from bayes_mem.live.return_model import ReturnModel, to_log_returns
from bayes_mem.live.tail_table import snap_nu
from bayes_mem.live.validate import check_int, check_probability_open

Predictive = (
    EmpiricalPredictive | LocationScalePredictive | MixturePredictive | FilteredEmpiricalPredictive
)


@dataclass(frozen=True)
class RollingForecast:
    returns: np.ndarray  # realised log returns of the forecast days
    var: dict[float, np.ndarray]  # level -> VaR of each day's log return (positive loss)
    es: dict[float, np.ndarray]
    predictive: Predictive | None = None  # each forecast day's predictive, as a sampler
    # optional multi-day forecasts made the same day: VaR/ES of the sum of the next ``horizon``
    # daily log returns (day i: returns[i : i + horizon]); empty when not computed
    horizon: int = 1
    var_h: dict[float, np.ndarray] = field(default_factory=dict)
    es_h: dict[float, np.ndarray] = field(default_factory=dict)
    # forecast days whose refit failed (the previous fit was kept and rolled forward)
    failed_refits: tuple[int, ...] = ()

    def exceedances(self, level: float) -> np.ndarray:
        return self.returns < -self.var[level]

    def test(self, level: float) -> CoverageTest:
        return coverage_tests(self.exceedances(level), level)

    def last(self, n: int) -> RollingForecast:
        """The last ``n`` forecast days (to compare forecasters on the same days)."""
        n = check_int(n, "n", minimum=1)
        if n > self.returns.size:
            raise ValueError(f"n={n} exceeds the {self.returns.size} forecast days")
        days = slice(self.returns.size - n, None)
        return replace(
            self,
            returns=self.returns[days],
            var={lv: v[days] for lv, v in self.var.items()},
            es={lv: e[days] for lv, e in self.es.items()},
            predictive=None if self.predictive is None else self.predictive.take(days),
            var_h={lv: v[days] for lv, v in self.var_h.items()},
            es_h={lv: e[days] for lv, e in self.es_h.items()},
            failed_refits=tuple(i - days.start for i in self.failed_refits if i >= days.start),
        )

    def scaled_horizon(self, horizon: int) -> RollingForecast:
        """This forecast with ``horizon``-day VaR/ES by square-root-of-time scaling of the one-day
        VaR and ES (exact only for i.i.d. zero-mean normal returns; the scaling baselines use)."""
        horizon = check_int(horizon, "horizon", minimum=2)
        root = np.sqrt(horizon)
        return replace(
            self,
            horizon=horizon,
            var_h={lv: root * v for lv, v in self.var.items()},
            es_h={lv: root * e for lv, e in self.es.items()},
        )


def _check_window(r: np.ndarray, window: int, refit_every: int = 1) -> tuple[int, int]:
    window = check_int(window, "window", minimum=2)
    refit_every = check_int(refit_every, "refit_every", minimum=1)
    if r.size <= window:
        raise ValueError(f"need more than window={window} returns, got {r.size}")
    return window, refit_every


def _check_levels(levels: tuple[float, ...]) -> tuple[float, ...]:
    levels = tuple(check_probability_open(lv, "level") for lv in levels)
    if not levels:
        raise ValueError("need at least one level")
    return levels


#: a posterior fit for :func:`rolling_gjr_forecast`: ``(past log returns, n_draws, rng)`` to an
#: object whose ``.draws`` are GJR-GARCH skew-t posterior draws (``fit_laplace``'s result type).
#: The hook for the production pooled PyMC fit: pass its per-symbol slice here once it is fast
#: enough to refit every ``refit_every`` days of a walk-forward.
PosteriorFit = Callable[[np.ndarray, int, np.random.Generator], object]


def rolling_gjr_forecast(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 20,
    n_draws: int = 100,
    rng: int | np.random.Generator | None = None,
    horizon: int = 1,
    fit: PosteriorFit = fit_laplace,
) -> RollingForecast:
    """Our model out of sample: every ``refit_every`` days a posterior is fitted on the previous
    ``window`` days (``fit``: the Laplace approximation by default); between refits the draws are
    rolled forward day by day. The predictive is the mixture over the ``n_draws`` draws (tail
    weights snapped to the live tail table's grid, as
    :class:`~bayes_mem.live.return_model.ReturnModel` evaluates it). ``horizon > 1`` also fills
    ``var_h`` / ``es_h`` with the live model's own ``horizon``-day VaR/ES
    (``ReturnModel.risk(level, horizon=horizon)``, its Monte Carlo path mixture). A refit the fit
    refuses (:class:`~bayes_mem.live.gjr_garch.UnfitSeriesError`: no converged mode, a stale
    window) keeps the previous fit rolling, as the nightly job keeps the last published
    posterior; those days are in ``failed_refits`` (the first fit must succeed)."""
    r = to_log_returns(returns, kind)
    window, refit_every = _check_window(r, window, refit_every)
    gen = np.random.default_rng(rng)

    def refit(i: int, t: int) -> tuple[GarchDraws, np.ndarray] | None:
        if i % refit_every:
            return None
        past = r[t - window : t]
        draws = fit(past, n_draws, gen).draws  # type: ignore[attr-defined]
        return draws, variance_path(past, draws, float(np.var(past)))[:, -1]

    return rolling_posterior_forecast(r, window=window, levels=levels, horizon=horizon,
                                      refit=refit)  # fmt: skip


def rolling_posterior_forecast(
    r: np.ndarray,
    *,
    window: int,
    levels: tuple[float, ...],
    horizon: int,
    refit: Callable[[int, int], tuple[GarchDraws, np.ndarray] | None],
) -> RollingForecast:
    """Forecasts of the daily log returns ``r[window:]`` from a posterior that ``refit`` may
    replace each day: ``refit(i, t)`` (forecast day ``i``, return index ``t = window + i``)
    returns ``(draws, sigma2)`` (:class:`~bayes_mem.live.gjr_garch.GarchDraws` and each draw's
    variance for day ``t``: a refit from the returns before ``t``), ``None`` (no refit: the
    posterior in use is rolled forward through ``r[t - 1]``), or raises
    :class:`~bayes_mem.live.gjr_garch.UnfitSeriesError` (a refused refit: the previous posterior
    stays, the day is in ``failed_refits``; day 0's refit must succeed). Each day's predictive is
    the live :class:`~bayes_mem.live.return_model.ReturnModel`'s mixture over the draws; with
    ``horizon > 1`` also its ``horizon``-day VaR/ES (``var_h``, ``es_h``)."""
    levels = _check_levels(levels)
    n = r.size - window
    horizon = check_int(horizon, "horizon", minimum=1)
    var = {lv: np.empty(n) for lv in levels}
    es = {lv: np.empty(n) for lv in levels}
    var_h = {lv: np.empty(n) for lv in levels} if horizon > 1 else {}
    es_h = {lv: np.empty(n) for lv in levels} if horizon > 1 else {}
    model: ReturnModel | None = None
    failed: list[int] = []
    for t in range(window, r.size):
        i = t - window
        try:
            got = refit(i, t)
        except UnfitSeriesError:
            if model is None:
                raise
            failed.append(i)  # as the nightly job does: the last good posterior stays live
            got = None
        if got is not None:
            draws, sigma2 = got
            model = ReturnModel({"x": draws}, {"x": sigma2})
            draw_nu = snap_nu(draws.nu)[1]
        elif model is None:
            raise ValueError("refit gave no posterior for the first forecast day")
        if i == 0:
            mu, sd, nu, lam = (np.empty((n, draws.nu.size)) for _ in range(4))
        for lv in levels:
            f = model.risk(lv)
            var[lv][i], es[lv][i] = f.var_log[0], f.es_log[0]
            if horizon > 1:
                fh = model.risk(lv, horizon=horizon)
                var_h[lv][i], es_h[lv][i] = fh.var_log[0], fh.es_log[0]
        mu[i], nu[i], lam[i] = draws.mu, draw_nu, draws.lam
        sd[i] = np.sqrt(model.sigma2()[0])
        model.update([r[t]], kind="log")
    return RollingForecast(
        r[window:], var, es, MixturePredictive(mu, sd, nu, lam), horizon, var_h, es_h,
        tuple(failed),
    )  # fmt: skip


def rolling_historical_forecast(
    returns: np.ndarray, *, kind: str, levels: tuple[float, ...] = (0.975, 0.99), window: int = 252
) -> RollingForecast:
    """The seed plan's forecast: the historical percentile of the last ``window`` days (and the
    mean beyond it as ES); its predictive is the empirical distribution of the window."""
    r = to_log_returns(returns, kind)
    window, _ = _check_window(r, window)
    levels = _check_levels(levels)
    var, es = {}, {}
    windows = np.lib.stride_tricks.sliding_window_view(r[:-1], window)
    for lv in levels:
        q = np.percentile(windows, (1 - lv) * 100, axis=1)
        var[lv] = -q
        es[lv] = np.array([-w[w <= qq].mean() for w, qq in zip(windows, q, strict=True)])
    starts = np.arange(r.size - window)
    return RollingForecast(r[window:], var, es, EmpiricalPredictive(r, starts, window))


def _location_scale_risk(
    loc: np.ndarray, scale: np.ndarray, nu: np.ndarray | None, levels: tuple[float, ...]
) -> tuple[dict[float, np.ndarray], dict[float, np.ndarray]]:
    """VaR and ES (positive losses) of ``loc + scale * T``, T standard t(nu) or normal (None):
    ES of the standard t at tail alpha is ``(nu + q^2) / (nu - 1) f(q) / alpha`` (McNeil, Frey &
    Embrechts Ex. 2.19), of the normal ``phi(q) / alpha``."""
    var, es = {}, {}
    for lv in levels:
        alpha = 1.0 - lv
        if nu is None:
            q = special.ndtri(alpha)
            tail = stats.norm.pdf(q) / alpha
        else:
            q = special.stdtrit(nu, alpha)
            tail = (nu + q * q) / (nu - 1.0) * stats.t.pdf(q, nu) / alpha
        var[lv] = -(loc + scale * q)
        es[lv] = -loc + scale * tail
    return var, es


def rolling_normal_forecast(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 1,
) -> RollingForecast:
    """A normal with the mean and sample sd (ddof 1) of the previous ``window`` days (the same
    window as ours by default), re-estimated every ``refit_every`` days (default: daily)."""
    r = to_log_returns(returns, kind)
    window, refit_every = _check_window(r, window, refit_every)
    levels = _check_levels(levels)
    windows = np.lib.stride_tricks.sliding_window_view(r[:-1], window)
    fit_at = np.arange(r.size - window) // refit_every * refit_every  # last refit's day index
    loc = windows.mean(axis=1)[fit_at]
    scale = windows.std(axis=1, ddof=1)[fit_at]
    var, es = _location_scale_risk(loc, scale, None, levels)
    return RollingForecast(r[window:], var, es, LocationScalePredictive(loc, scale))


T_NU_BOUNDS = (1.5, 500.0)  # ES needs nu > 1; beyond 500 the t is a normal for these purposes


def fit_student_t(
    x: np.ndarray, start: tuple[float, float, float] | None = None
) -> tuple[float, float, float]:
    """Maximum-likelihood ``(loc, scale, nu)`` of an i.i.d. Student-t (``scale`` is the t scale,
    not the sd), by :func:`scipy.stats.t.fit` from ``start`` when given (else the median, the
    MAD-based scale and ``nu = 5``), with ``nu`` bounded to :data:`T_NU_BOUNDS`: an optimum
    outside is refitted with ``nu`` fixed at the bound it crossed (the constrained optimum, the
    profile likelihood of ``nu`` being unimodal in practice).

    Examples
    --------
    >>> import numpy as np
    >>> x = 0.01 * np.random.default_rng(0).standard_t(4, 5000)
    >>> loc, scale, nu = fit_student_t(x)
    >>> bool(abs(loc) < 5e-4 and 0.009 < scale < 0.011 and 3 < nu < 5)
    True
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 10 or not np.all(np.isfinite(x)):
        raise ValueError(f"need a finite 1-d sample of at least 10 values, got shape {x.shape}")
    centre = float(np.median(x))
    spread = 1.4826 * float(np.median(np.abs(x - centre)))
    if spread == 0:
        raise ValueError("the sample has no spread (median absolute deviation 0)")
    low, high = T_NU_BOUNDS
    if start is None:
        loc0, scale0, nu0 = centre, spread, 5.0
    else:
        loc0, scale0, nu0 = start[0], start[1], min(max(start[2], low), high)
    nu, loc, scale = stats.t.fit(x, nu0, loc=loc0, scale=scale0)
    if not low <= nu <= high:
        bound = low if nu < low else high
        nu, loc, scale = stats.t.fit(x, fdf=bound, loc=loc, scale=scale)
    return float(loc), float(scale), float(nu)


def rolling_student_t_forecast(
    returns: np.ndarray,
    *,
    kind: str,
    levels: tuple[float, ...] = (0.975, 0.99),
    window: int = 1000,
    refit_every: int = 20,
) -> RollingForecast:
    """A static (i.i.d.) Student-t fitted by maximum likelihood on the previous ``window`` days
    every ``refit_every`` days (the same schedule as ours by default); no volatility dynamics."""
    r = to_log_returns(returns, kind)
    window, refit_every = _check_window(r, window, refit_every)
    levels = _check_levels(levels)
    n = r.size - window
    loc, scale, nu = np.empty(n), np.empty(n), np.empty(n)
    params: tuple[float, float, float] | None = None
    for i in range(0, n, refit_every):
        params = fit_student_t(r[i : i + window], params)
        loc[i : i + refit_every], scale[i : i + refit_every], nu[i : i + refit_every] = params
    var, es = _location_scale_risk(loc, scale, nu, levels)
    return RollingForecast(r[window:], var, es, LocationScalePredictive(loc, scale, nu))
