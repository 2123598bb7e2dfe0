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
    """Walk-forward VaR/ES forecasts and the realised returns of the forecast days.

    ``returns``: realised daily log returns; ``var`` / ``es``: level to each day's VaR / ES of the
    log return (positive losses, made the day before); ``predictive``: each day's predictive
    distribution as a sampler (or None); ``var_h`` / ``es_h``: the same for the sum of the next
    ``horizon`` daily log returns (empty when not computed); ``failed_refits``: forecast days
    whose refit failed (the previous fit was rolled forward).

    Examples
    --------
    Four days with a constant 2% VaR at 99%: only the -3% day is an exceedance:

    >>> import numpy as np
    >>> f = RollingForecast(np.array([-0.03, 0.01, -0.005, 0.02]),
    ...                     var={0.99: np.full(4, 0.02)}, es={0.99: np.full(4, 0.025)})
    >>> f.exceedances(0.99).tolist(), f.horizon, f.failed_refits
    ([True, False, False, False], 1, ())
    """

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
        """Boolean exceedance indicators at ``level``: the realised return is below minus the VaR.

        Examples
        --------
        >>> import numpy as np
        >>> f = RollingForecast(np.array([-0.03, 0.01, -0.02]),
        ...                     var={0.99: np.full(3, 0.02)}, es={0.99: np.full(3, 0.025)})
        >>> f.exceedances(0.99)  # -0.02 is not below -0.02
        array([ True, False, False])
        """
        return self.returns < -self.var[level]

    def test(self, level: float) -> CoverageTest:
        """Kupiec and Christoffersen tests of the exceedances at ``level``
        (:func:`~bayes_mem.live.coverage.coverage_tests`).

        Examples
        --------
        One exceedance in four days at 99% (0.04 expected):

        >>> import numpy as np
        >>> f = RollingForecast(np.array([-0.03, 0.01, -0.005, 0.02]),
        ...                     var={0.99: np.full(4, 0.02)}, es={0.99: np.full(4, 0.025)})
        >>> t = f.test(0.99)
        >>> t.n, t.exceedances, round(t.expected, 4)
        (4, 1, 0.04)
        """
        return coverage_tests(self.exceedances(level), level)

    def last(self, n: int) -> RollingForecast:
        """The last ``n`` forecast days (to compare forecasters on the same days).

        Examples
        --------
        >>> import numpy as np
        >>> f = RollingForecast(np.array([-0.03, 0.01, -0.005, 0.02]),
        ...                     var={0.99: np.array([0.02, 0.021, 0.022, 0.023])},
        ...                     es={0.99: np.full(4, 0.025)}, failed_refits=(1, 3))
        >>> tail = f.last(2)
        >>> tail.returns.tolist(), tail.var[0.99].tolist(), tail.failed_refits
        ([-0.005, 0.02], [0.022, 0.023], (1,))
        """
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
        VaR and ES (exact only for i.i.d. zero-mean normal returns; the scaling baselines use).

        Examples
        --------
        Four days scale by ``sqrt(4) = 2``:

        >>> import numpy as np
        >>> f = RollingForecast(np.array([-0.03, 0.01]), var={0.99: np.full(2, 0.02)},
        ...                     es={0.99: np.full(2, 0.025)})
        >>> f4 = f.scaled_horizon(4)
        >>> f4.horizon, f4.var_h[0.99].tolist(), f4.es_h[0.99].tolist()
        (4, [0.04, 0.04], [0.05, 0.05])
        """
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
    posterior; those days are in ``failed_refits`` (the first fit must succeed).

    Examples
    --------
    A small walk-forward: one Laplace fit on 300 days, then 5 forecast days rolled forward:

    >>> import numpy as np
    >>> r = 0.01 * np.random.default_rng(0).standard_t(5, 305)
    >>> f = rolling_gjr_forecast(r, kind="log", window=300, refit_every=20, n_draws=20, rng=0)
    >>> f.returns.size, sorted(f.var), f.failed_refits
    (5, [0.975, 0.99], ())
    >>> bool(np.all(f.es[0.99] > f.var[0.99]) and np.all(f.var[0.99] > f.var[0.975]))
    True
    """
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
    ``horizon > 1`` also its ``horizon``-day VaR/ES (``var_h``, ``es_h``).

    Examples
    --------
    One near-normal draw (``nu = 500``) with a 1% daily volatility on day 0: its 99% VaR is about
    ``2.326 * 0.01``; the later days roll the GARCH variance forward through the returns:

    >>> import numpy as np
    >>> from bayes_mem.live.gjr_garch import GarchDraws
    >>> d = GarchDraws(mu=[0.0], omega=[1e-6], alpha=[0.05], gamma=[0.1], beta=[0.85],
    ...                nu=[500.0], lam=[0.0])
    >>> r = np.array([0.01, -0.02, 0.005, 0.0, 0.01])
    >>> f = rolling_posterior_forecast(
    ...     r, window=2, levels=(0.99,), horizon=1,
    ...     refit=lambda i, t: (d, np.array([1e-4])) if i == 0 else None)
    >>> np.round(f.var[0.99], 4)
    array([0.0233, 0.0218, 0.0202])
    """
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
    mean beyond it as ES); its predictive is the empirical distribution of the window.

    Examples
    --------
    A 4-day window at 75%: the 25th percentile of ``[0.01, -0.02, 0.03, -0.01]`` (linear
    interpolation) is -0.0125 and the mean at or below it -0.02:

    >>> import numpy as np
    >>> r = np.array([0.01, -0.02, 0.03, -0.01, 0.0, 0.02])
    >>> f = rolling_historical_forecast(r, kind="log", levels=(0.75,), window=4)
    >>> f.returns.tolist(), np.round(f.var[0.75], 4), np.round(f.es[0.75], 4)
    ([0.0, 0.02], array([0.0125, 0.0125]), array([0.02, 0.02]))
    """
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
    window as ours by default), re-estimated every ``refit_every`` days (default: daily).

    Examples
    --------
    The first window has mean 0.0025 and sd 0.022174: VaR 97.5% is
    ``1.96 * 0.022174 - 0.0025 = 0.0410``:

    >>> import numpy as np
    >>> r = np.array([0.01, -0.02, 0.03, -0.01, 0.0, 0.02])
    >>> f = rolling_normal_forecast(r, kind="log", levels=(0.975,), window=4)
    >>> np.round(f.var[0.975], 4), np.round(f.es[0.975], 4)
    (array([0.041 , 0.0423]), array([0.0493, 0.0505]))
    """
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
    every ``refit_every`` days (the same schedule as ours by default); no volatility dynamics.

    Examples
    --------
    Ten forecast days refitted every 5 days: the VaR changes only at the refits:

    >>> import numpy as np
    >>> x = 0.01 * np.random.default_rng(0).standard_t(4, 60)
    >>> f = rolling_student_t_forecast(x, kind="log", window=50, refit_every=5)
    >>> f.returns.size, len(np.unique(f.var[0.99])), bool(np.all(f.es[0.99] > f.var[0.99]))
    (10, 2, True)
    """
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
