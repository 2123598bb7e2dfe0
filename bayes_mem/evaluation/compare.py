"""Comparative tests of VaR/ES forecasters: the FZ0 joint loss, Diebold-Mariano tests with a
Newey-West variance, the Model Confidence Set, the Basel traffic light, at one day and at a
multi-day horizon, on every real daily series shipped inside pip packages.

FZ0 (Patton, Ziegel & Chen 2019, eq. (6) with their G1 = 0, G2 = -1/x): for a lower-tail return
quantile ``v`` and expected shortfall ``e`` at tail probability ``alpha`` (both returns, so
``e <= v < 0`` in practice) and the realised return ``y``,

    L(y, v, e) = -1{y <= v} (v - y) / (alpha e) + v / e + log(-e) - 1.

It is strictly consistent for (VaR, ES) on ``e < 0``: its expectation is minimised at the true
quantile and ES (tested by brute force in tests/test_compare.py). Our forecasters report VaR and
ES as positive losses, so ``v = -VaR`` and ``e = -ES``. Lower is better.

Diebold-Mariano: ``d_t = L_a,t - L_b,t``, ``DM = mean(d) / sqrt(S / n)`` with ``S`` the Newey-West
(Bartlett) long-run variance of ``d`` at ``lag`` (default ``floor(4 (n/100)^(2/9))``, plus
``horizon - 1`` for overlapping multi-day losses, whose differentials are autocorrelated by
construction); two-sided normal p-value. ``DM < 0``: ``a`` has the lower loss.

Model Confidence Set (Hansen, Lunde & Nason 2011) at 90%: ``arch.bootstrap.MCS`` on the FZ0
losses (range statistic, stationary bootstrap with mean block ``block_size``).

Multi-day horizon: forecasts of the sum of the next ``h`` daily log returns made every day, so the
realised ``h``-day sums overlap: exceedance counts are descriptive (Kupiec/Christoffersen assume
independent hits and are not reported there), and the DM and MCS variances are HAC with the
lag / block length above ``h``. Each model uses its own ``h``-day method: ours the live model's
``ReturnModel.risk(level, horizon=h)`` path mixture, arch and FHS simulated GJR paths, every
other baseline (EWMA, percentile, normal, static t) the square-root-of-time scaling of its
one-day VaR/ES.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pathlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from bayes_mem.evaluation.baselines import rolling_arch_forecasts, rolling_ewma_forecast
from bayes_mem.evaluation.data import available_series, load_log_returns
from bayes_mem.evaluation.es_backtest import es_backtest
from bayes_mem.evaluation.tables import markdown_rows
from bayes_mem.evaluation.var_backtest import (
    PosteriorFit,
    RollingForecast,
    rolling_gjr_forecast,
    rolling_historical_forecast,
    rolling_normal_forecast,
    rolling_student_t_forecast,
)
from bayes_mem.live.gjr_garch import fit_laplace
from bayes_mem.live.validate import check_int, check_probability_open

LEVELS = (0.975, 0.99)
REFERENCE = "arch_gjr_skewt"
OURS = "ours"
POOLED = "ours_pooled"  # the nightly job's pooled PyMC fit, walk-forward (pooled_risk)
MODELS = (
    "ours",
    "arch_gjr_skewt",
    "fhs_gjr",
    "ewma_normal",
    "ewma_t",
    "percentile",
    "normal",
    "student_t",
)
MCS_SIZE = 0.10
BASEL_DAYS = 250


# ------------------------------------------------------------------------------------ the loss
def fz0_loss(returns: np.ndarray, var: np.ndarray, es: np.ndarray, level: float) -> np.ndarray:
    """Per-day FZ0 loss of VaR/ES forecasts given as positive losses (module docstring).

    Examples
    --------
    VaR 2%, ES 3% at 97.5%: a -3% day costs ``0.01 / (0.025 * 0.03) + 0.02 / 0.03 +
    log(0.03) - 1 = 9.4934``, a +1% day only ``0.6667 + log(0.03) - 1 = -3.8399``:

    >>> import numpy as np
    >>> loss = fz0_loss(np.array([-0.03, 0.01]), np.array([0.02, 0.02]), np.array([0.03, 0.03]),
    ...                 0.975)
    >>> np.round(loss, 4)
    array([ 9.4934, -3.8399])
    """
    alpha = 1.0 - check_probability_open(level, "level")
    y, var, es = (np.asarray(a, dtype=float) for a in (returns, var, es))
    if not (y.shape == var.shape == es.shape):
        raise ValueError(f"shapes differ: {y.shape}, {var.shape}, {es.shape}")
    if np.any(~np.isfinite(es)) or np.any(es <= 0):
        raise ValueError("FZ0 needs ES > 0 (a loss): the log of -e is undefined otherwise")
    v, e = -var, -es
    hit = y <= v
    return -np.where(hit, v - y, 0.0) / (alpha * e) + v / e + np.log(-e) - 1.0


# ----------------------------------------------------------------------- Diebold-Mariano tests
def default_lag(n: int) -> int:
    """Newey-West's rule of thumb ``floor(4 (n / 100)^(2/9))``.

    Examples
    --------
    >>> default_lag(100), default_lag(1000)
    (4, 6)
    """
    return int(np.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)))


def newey_west_variance(d: np.ndarray, lag: int) -> float:
    """Bartlett-kernel long-run variance of ``d`` (autocovariances divided by n).

    Examples
    --------
    An alternating series: variance 1, first autocovariance -3/4, so at lag 1 the long-run
    variance is ``1 + 2 * (1/2) * (-3/4) = 0.25``:

    >>> import numpy as np
    >>> d = np.array([1.0, -1.0, 1.0, -1.0])
    >>> newey_west_variance(d, 0), newey_west_variance(d, 1)
    (1.0, 0.25)
    """
    d = np.asarray(d, dtype=float)
    lag = check_int(lag, "lag", minimum=0)
    u = d - d.mean()
    n = u.size
    s = float(u @ u) / n
    for j in range(1, min(lag, n - 1) + 1):
        s += 2.0 * (1.0 - j / (lag + 1.0)) * float(u[j:] @ u[:-j]) / n
    return s


@dataclass(frozen=True)
class DMTest:
    """A Diebold-Mariano test: statistic (< 0: the first model has the lower loss), two-sided
    p-value, mean loss differential and the Newey-West lag used.

    Examples
    --------
    >>> DMTest(stat=-2.0, p=0.0455, mean_diff=-0.1, lag=4).stat < 0
    True
    """

    stat: float  # < 0: the first model has the lower loss
    p: float  # two-sided
    mean_diff: float
    lag: int


def dm_test(loss_a: np.ndarray, loss_b: np.ndarray, lag: int | None = None) -> DMTest:
    """Diebold-Mariano test of equal expected loss (module docstring).

    Examples
    --------
    Differentials ``[-1, 0, -1, 0, -1]``: mean -0.6, variance 0.24, so at lag 0
    ``DM = -0.6 / sqrt(0.24 / 5) = -2.7386``:

    >>> import numpy as np
    >>> t = dm_test(np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 2, 4, 4, 6]), lag=0)
    >>> round(t.stat, 4), round(t.p, 4), round(t.mean_diff, 4), t.lag
    (-2.7386, 0.0062, -0.6, 0)
    """
    a, b = np.asarray(loss_a, dtype=float), np.asarray(loss_b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 3:
        raise ValueError(f"need two 1-d loss series of one length >= 3, got {a.shape}, {b.shape}")
    d = a - b
    lag = default_lag(d.size) if lag is None else check_int(lag, "lag", minimum=0)
    s = newey_west_variance(d, lag)
    if s <= 0:
        return DMTest(0.0 if d.mean() == 0 else np.copysign(np.inf, d.mean()), 1.0, 0.0, lag)
    stat = float(d.mean() / np.sqrt(s / d.size))
    return DMTest(stat, float(2.0 * stats.norm.sf(abs(stat))), float(d.mean()), lag)


# -------------------------------------------------------------------- model confidence set
def model_confidence_set(
    losses: dict[str, np.ndarray],
    *,
    size: float = MCS_SIZE,
    reps: int = 1000,
    block_size: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """MCS p-value of each model (``arch.bootstrap.MCS``, range statistic, stationary
    bootstrap); the ``1 - size`` set is the models with p-value > ``size``.

    Examples
    --------
    Model ``c``'s loss is one unit higher on average: it is out of the set, the best model has
    p-value 1:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> losses = {"a": rng.normal(0, 1, 200), "b": rng.normal(0, 1, 200),
    ...           "c": rng.normal(1, 1, 200)}
    >>> p = model_confidence_set(losses, reps=200)
    >>> p["b"], p["c"], bool(p["a"] > MCS_SIZE)
    (1.0, 0.0, True)
    """
    import pandas as pd
    from arch.bootstrap import MCS

    frame = pd.DataFrame({m: np.asarray(v, dtype=float) for m, v in losses.items()})
    mcs = MCS(
        frame,
        size=size,
        reps=reps,
        block_size=block_size,
        method="R",
        bootstrap="stationary",
        seed=np.random.default_rng(seed),
    )
    mcs.compute()
    p = mcs.pvalues.iloc[:, 0]
    return {m: float(p[m]) for m in losses}


# ------------------------------------------------------------------------- traffic light
def traffic_light(exceptions: int) -> str:
    """Basel zone of the number of 99% one-day VaR exceptions in 250 days.

    Examples
    --------
    >>> traffic_light(4), traffic_light(5), traffic_light(10)
    ('green', 'yellow', 'red')
    """
    exceptions = check_int(exceptions, "exceptions", minimum=0)
    return "green" if exceptions <= 4 else "yellow" if exceptions <= 9 else "red"


def traffic_light_history(exceed: np.ndarray, days: int = BASEL_DAYS) -> dict[str, int]:
    """Zones of the non-overlapping ``days``-day windows counted back from the last day.

    Examples
    --------
    600 days: the last 250 all exceptions (red), the 250 before none (green); the first 100
    days make no full window:

    >>> import numpy as np
    >>> hits = np.r_[np.ones(100, bool), np.zeros(250, bool), np.ones(250, bool)]
    >>> traffic_light_history(hits)
    {'green': 1, 'yellow': 0, 'red': 1}
    """
    hits = np.asarray(exceed, dtype=bool)
    counts = {"green": 0, "yellow": 0, "red": 0}
    for end in range(hits.size, days - 1, -days):
        counts[traffic_light(int(hits[end - days : end].sum()))] += 1
    return counts


# ------------------------------------------------------------------------------ the data
def load_series(name: str) -> np.ndarray:
    """Daily log returns of one series of :func:`~bayes_mem.evaluation.data.available_series`
    (:func:`~bayes_mem.evaluation.data.load_log_returns`' values).

    Examples
    --------
    arch's S&P 500 (the ``data`` extra), 1999-2018:

    >>> r = load_series("sp500")
    >>> r.size, round(float(r[0]), 5)
    (5030, 0.01349)
    """
    return load_log_returns(name).to_numpy()


def load_dated_series(name: str) -> pd.Series:
    """Daily log returns of one series, indexed by the day each return ends on
    (:func:`~bayes_mem.evaluation.data.load_log_returns`).

    Examples
    --------
    >>> s = load_dated_series("sp500")
    >>> str(s.index[0].date()), round(float(s.iloc[0]), 5)
    ('1999-01-05', 0.01349)
    """
    return load_log_returns(name)


# -------------------------------------------------------------------------- one series
@dataclass(frozen=True)
class CompareRow:
    """One series x horizon x level x model of the comparison: mean FZ0 loss and its rank, the DM
    test against :data:`REFERENCE`, the MCS p-value, coverage and Z tests (one day only, NaN at
    ``horizon > 1``) and the Basel traffic light (99% one-day, else ``-1`` / ``""``).

    Examples
    --------
    Built by :func:`compare_forecasts`; its fields, in :data:`COLUMNS` order:

    >>> len(COLUMNS), COLUMNS[:6]
    (23, ('series', 'horizon', 'level', 'model', 'n', 'fz0'))
    """

    series: str
    horizon: int
    level: float
    model: str
    n: int
    fz0: float  # mean FZ0 loss (lower is better)
    fz0_rank: int  # 1 = lowest loss among the models
    dm_vs_arch: float  # DM statistic of (model - arch GJR skew-t): < 0 model better
    p_dm_vs_arch: float
    mcs_p: float
    in_mcs90: bool
    exceedances: int
    expected: float
    p_kupiec: float  # nan at h > 1 (overlapping hits)
    p_ind: float
    p_cc: float
    z1: float
    p_z1: float
    z2: float
    p_z2: float
    basel_last250: int  # 99% one-day exceptions in the last 250 days (-1 otherwise)
    basel_zone: str
    basel_history: str  # green/yellow/red counts of non-overlapping 250-day windows


COLUMNS = tuple(CompareRow.__dataclass_fields__)


def build_forecasts(
    returns: np.ndarray,
    *,
    levels: tuple[float, ...] = LEVELS,
    window: int = 1000,
    percentile_window: int = 252,
    refit_every: int = 20,
    n_draws: int = 100,
    horizon: int = 10,
    n_paths: int = 5000,
    seed: int = 0,
    fit: PosteriorFit = fit_laplace,
    extra: Mapping[str, RollingForecast] | None = None,
) -> dict[str, RollingForecast]:
    """Walk-forward forecasts of every model of :data:`MODELS`, on the same days (those after
    the first ``window``), with ``horizon``-day forecasts by each model's own method. ``fit`` is
    ours' posterior fit per refit (the Laplace per-symbol fit by default, see
    :data:`~bayes_mem.evaluation.var_backtest.PosteriorFit`). ``extra``: forecasts made
    elsewhere on the same returns (e.g. :data:`POOLED`, from
    :func:`~bayes_mem.evaluation.pooled_risk.pooled_forecasts`), compared with the others; they
    follow ``ours`` in the order.

    Examples
    --------
    Skipped here: even on 12 forecast days this fits arch's GJR-GARCH and our Laplace posterior
    (about 2 s of CPU). On 262 returns with a 250-day window every model forecasts the same 12
    days:

    >>> import numpy as np
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(262)
    >>> f = build_forecasts(r, levels=(0.99,), window=250, percentile_window=250,
    ...                     n_draws=10, horizon=1, n_paths=100)  # doctest: +SKIP
    >>> {m: x.returns.size for m, x in f.items()}  # doctest: +SKIP
    {'ours': 12, 'arch_gjr_skewt': 12, 'fhs_gjr': 12, 'ewma_normal': 12, 'ewma_t': 12,
     'percentile': 12, 'normal': 12, 'student_t': 12}
    """
    r = np.asarray(returns, dtype=float)
    kw = {"kind": "log", "levels": levels, "window": window}
    f = {
        OURS: rolling_gjr_forecast(
            r, **kw, refit_every=refit_every, n_draws=n_draws, rng=seed, horizon=horizon, fit=fit
        ),
        **rolling_arch_forecasts(
            r, **kw, refit_every=refit_every, horizon=horizon, n_paths=n_paths, rng=seed + 1
        ),
        "ewma_normal": rolling_ewma_forecast(r, **kw, dist="normal", horizon=horizon),
        "ewma_t": rolling_ewma_forecast(
            r, **kw, dist="t", refit_every=refit_every, horizon=horizon
        ),
        "percentile": rolling_historical_forecast(
            r, kind="log", levels=levels, window=percentile_window
        ),
        "normal": rolling_normal_forecast(r, **kw),
        "student_t": rolling_student_t_forecast(r, **kw, refit_every=refit_every),
    }
    extra = dict(extra or {})
    for m, x in extra.items():
        if m in f:
            raise ValueError(f"extra model {m!r} is one of the built-in models")
        if x.returns.size > r.size - window or not np.array_equal(
            x.returns, r[r.size - x.returns.size :]
        ):
            raise ValueError(f"extra model {m!r} forecasts other returns than these")
        f[m] = x
    n = min(x.returns.size for x in f.values())
    f = {m: x.last(n) for m, x in f.items()}
    if horizon > 1:
        f = {m: x if x.var_h else x.scaled_horizon(horizon) for m, x in f.items()}
    return {m: f[m] for m in (OURS, *extra, *MODELS[1:])}


def horizon_sums(returns: np.ndarray, horizon: int) -> np.ndarray:
    """``y[i] = returns[i] + ... + returns[i + horizon - 1]`` (n - horizon + 1 values).

    Examples
    --------
    >>> import numpy as np
    >>> horizon_sums(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([3., 5., 7.])
    """
    c = np.concatenate([[0.0], np.cumsum(returns)])
    return c[horizon:] - c[:-horizon]


def compare_forecasts(
    forecasts: dict[str, RollingForecast],
    *,
    series: str,
    levels: tuple[float, ...] = LEVELS,
    n_sims: int = 1000,
    mcs_reps: int = 1000,
    size: float = 0.05,
    seed: int = 0,
) -> tuple[list[CompareRow], list[dict]]:
    """The rows of one series (one-day and, if the forecasts have it, multi-day) and the
    pairwise DM tests (long format).

    Examples
    --------
    Two cheap forecasters on 300 simulated normal days; the historical percentile is labelled
    :data:`REFERENCE` here only to show the mechanics (the real reference is arch's GJR fit).
    The rolling normal, the true model, has the lower FZ0 at both levels:

    >>> import numpy as np
    >>> from bayes_mem.evaluation.var_backtest import (
    ...     rolling_historical_forecast, rolling_normal_forecast)
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(400)
    >>> fc = {"normal": rolling_normal_forecast(r, kind="log", window=100),
    ...       REFERENCE: rolling_historical_forecast(r, kind="log", window=100)}
    >>> rows, pairs = compare_forecasts(fc, series="toy", n_sims=50, mcs_reps=100)
    >>> [(x.level, x.model, x.n, x.fz0_rank, x.exceedances) for x in rows]
    [(0.975, 'normal', 300, 1, 9), (0.975, 'arch_gjr_skewt', 300, 2, 11),
     (0.99, 'normal', 300, 1, 6), (0.99, 'arch_gjr_skewt', 300, 2, 6)]
    >>> rows[2].basel_last250, rows[2].basel_zone, len(pairs)
    (4, 'green', 2)
    """
    models = list(forecasts)
    first = forecasts[models[0]]
    horizons = [1] + ([first.horizon] if first.horizon > 1 else [])
    seeds = np.random.SeedSequence(seed).spawn(len(models) + 4)
    ztests = {
        m: es_backtest(forecasts[m], levels, n_sims=n_sims, rng=np.random.default_rng(seeds[i]))
        for i, m in enumerate(models)
    }
    rows, pairs = [], []
    for h in horizons:
        for j, lv in enumerate(levels):
            if h == 1:
                y = first.returns
                fc = {m: (forecasts[m].var[lv], forecasts[m].es[lv]) for m in models}
            else:
                y = horizon_sums(first.returns, h)
                fc = {
                    m: (forecasts[m].var_h[lv][: y.size], forecasts[m].es_h[lv][: y.size])
                    for m in models
                }
            losses = {m: fz0_loss(y, v, e, lv) for m, (v, e) in fc.items()}
            lag = default_lag(y.size) + h - 1
            dms = {}
            for a in models:
                for b in models:
                    if a < b:
                        t = dm_test(losses[a], losses[b], lag)
                        dms[a, b] = t
                        pairs.append(
                            {
                                "series": series,
                                "horizon": h,
                                "level": lv,
                                "model_a": a,
                                "model_b": b,
                                "dm": t.stat,
                                "p": t.p,
                                "mean_diff": t.mean_diff,
                                "lag": lag,
                            }
                        )
            mcs = model_confidence_set(
                losses,
                reps=mcs_reps,
                block_size=max(10, 2 * h),
                seed=int(seeds[-1 - j].generate_state(1)[0]) + h,
            )
            means = {m: float(losses[m].mean()) for m in models}
            order = sorted(models, key=means.__getitem__)
            for m in models:
                if m == REFERENCE:
                    dm = DMTest(0.0, 1.0, 0.0, lag)
                elif m < REFERENCE:
                    dm = dms[m, REFERENCE]
                else:
                    t = dms[REFERENCE, m]
                    dm = DMTest(-t.stat, t.p, -t.mean_diff, lag)
                hits = y < -fc[m][0]
                nan = float("nan")
                if h == 1:
                    c, z = forecasts[m].test(lv), ztests[m][lv]
                    cov = (c.p_pof, c.p_ind, c.p_cc, z.z1, z.p_z1, z.z2, z.p_z2)
                else:
                    cov = (nan,) * 7
                if h == 1 and abs(lv - 0.99) < 1e-12 and hits.size >= BASEL_DAYS:
                    last = int(hits[-BASEL_DAYS:].sum())
                    zone = traffic_light(last)
                    hist = "/".join(str(v) for v in traffic_light_history(hits).values())
                else:
                    last, zone, hist = -1, "", ""
                rows.append(
                    CompareRow(
                        series,
                        h,
                        lv,
                        m,
                        int(y.size),
                        means[m],
                        order.index(m) + 1,
                        dm.stat,
                        dm.p,
                        mcs[m],
                        mcs[m] > MCS_SIZE,
                        int(hits.sum()),
                        y.size * (1 - lv),
                        *cov,
                        last,
                        zone,
                        hist,
                    )
                )
    return rows, pairs


# ------------------------------------------------------------------------------- the report
SETTINGS_FULL = {
    "window": 1000,
    "refit_every": 20,
    "n_draws": 100,
    "horizon": 10,
    "n_paths": 5000,
    "n_sims": 1000,
    "mcs_reps": 1000,
}
SETTINGS_QUICK = {
    "window": 400,
    "refit_every": 100,
    "n_draws": 30,
    "horizon": 10,
    "n_paths": 1000,
    "n_sims": 200,
    "mcs_reps": 200,
}


def compare_series(
    returns: np.ndarray,
    series: str,
    settings: dict,
    seed: int,
    extra: Mapping[str, RollingForecast] | None = None,
) -> dict:
    """Forecasts and tests of one series (with the ``extra`` forecasts of
    :func:`build_forecasts`); a JSON-serialisable dict (rows and pairs). Cached in
    ``$BAYES_MEM_RISK_CACHE`` (a folder) when set, keyed by the data, settings, seed and the
    extra forecasts, so series can be computed in parallel processes ahead of the suite run.

    Examples
    --------
    Skipped here: it runs :func:`build_forecasts` (arch and Laplace fits, seconds even on a few
    hundred days). The quick settings and the summary's keys:

    >>> sorted(SETTINGS_QUICK)
    ['horizon', 'mcs_reps', 'n_draws', 'n_paths', 'n_sims', 'refit_every', 'window']
    >>> r = load_series("sp500")[-700:]
    >>> out = compare_series(r, "sp500", SETTINGS_QUICK, 0)  # doctest: +SKIP
    >>> sorted(out)  # doctest: +SKIP
    ['n_returns', 'ours_failed_refits', 'pairs', 'pooled_failed_refits', 'refits', 'rows',
     'series']
    """
    r = np.asarray(returns, dtype=float)
    extra = dict(extra or {})
    digest = hashlib.sha256(
        r.tobytes() + json.dumps([series, settings, seed, MODELS], sort_keys=True).encode()
    )
    for m in sorted(extra):  # the extra forecasts themselves, not only their names
        x = extra[m]
        digest.update(m.encode())
        for lv in sorted(x.var):
            digest.update(x.var[lv].tobytes() + x.es[lv].tobytes())
        for lv in sorted(x.var_h):
            digest.update(x.var_h[lv].tobytes() + x.es_h[lv].tobytes())
    key = digest.hexdigest()[:16]
    cache = os.environ.get("BAYES_MEM_RISK_CACHE")
    path = pathlib.Path(cache) / f"{series}-{key}.json" if cache else None
    if path is not None and path.exists():
        return json.loads(path.read_text())
    fkw = {k: settings[k] for k in ("window", "refit_every", "n_draws", "horizon", "n_paths")}
    forecasts = build_forecasts(r, seed=seed, extra=extra, **fkw)
    rows, pairs = compare_forecasts(
        forecasts,
        series=series,
        n_sims=settings["n_sims"],
        mcs_reps=settings["mcs_reps"],
        seed=seed,
    )
    out = {
        "series": series,
        "ours_failed_refits": len(forecasts[OURS].failed_refits),
        "pooled_failed_refits": (
            len(forecasts[POOLED].failed_refits) if POOLED in forecasts else None
        ),
        "refits": -(-forecasts[OURS].returns.size // settings["refit_every"]),
        "n_returns": int(r.size),
        "rows": [asdict(x) for x in rows],
        "pairs": pairs,
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out))
    return out


def _pooled_cadence() -> int:
    from bayes_mem.evaluation.pooled_risk import CADENCE

    return CADENCE


def pooled_walk_forward(
    names: list[str], settings: dict, seed: int
) -> tuple[dict[str, RollingForecast], list]:
    """:data:`POOLED`'s forecasts of the series ``names`` (the pooled fit sees every installed
    series) and its refits (:mod:`bayes_mem.evaluation.pooled_risk`). The refits (about 30-60 s
    each) are stored in ``$BAYES_MEM_POOLED_FITS`` when set (a folder: a later run reads them
    instead of refitting, so a stopped run resumes), else in a temporary folder.

    Examples
    --------
    Skipped: every refit is a PyMC fit of all series (30-60 s each):

    >>> forecasts, fits = pooled_walk_forward(["sp500"], SETTINGS_QUICK, 0)  # doctest: +SKIP
    >>> list(forecasts)  # doctest: +SKIP
    ['sp500']
    """
    import tempfile

    from bayes_mem.evaluation import pooled_risk

    frame = pooled_risk.panel()
    folder = os.environ.get("BAYES_MEM_POOLED_FITS")
    with tempfile.TemporaryDirectory() as tmp:
        fits = pooled_risk.walk_forward_fits(
            frame, cadence=pooled_risk.CADENCE, seed=seed, fits_dir=pathlib.Path(folder or tmp)
        )
    forecasts = pooled_risk.pooled_forecasts(
        frame.loc[:, names], fits, window=settings["window"], levels=LEVELS,
        horizon=settings["horizon"],
    )  # fmt: skip
    return forecasts, fits


def _fmt(v: object, col: str = "") -> str:
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        if np.isnan(v):
            return ""
        if col == "fz0":
            return f"{v:.4f}"
        return f"{v:.2g}" if abs(v) < 1e-2 and v != 0 else f"{v:.3f}"
    return str(v)


TABLE_1D = (
    "model",
    "fz0",
    "fz0_rank",
    "dm_vs_arch",
    "p_dm_vs_arch",
    "in_mcs90",
    "mcs_p",
    "exceedances",
    "expected",
    "p_kupiec",
    "p_ind",
    "p_cc",
    "p_z1",
    "p_z2",
    "basel_last250",
    "basel_zone",
    "basel_history",
)
# h days: the comparative columns and the (descriptive) exceedance counts; the absolute tests
# and the traffic light assume non-overlapping days
TABLE_HD = TABLE_1D[: TABLE_1D.index("expected") + 1]


def _table(rows: list[dict], cols: tuple[str, ...]) -> str:
    cols = tuple(c for c in cols if any(r[c] not in ("", -1) for r in rows))
    return markdown_rows(cols, [[_fmt(r[c], c) for c in cols] for r in rows]) + "\n"


def verdicts(rows: list[dict], model: str = OURS) -> list[str]:
    """Per series and horizon/level: is ``model`` (ours by default) in the 90% MCS, and does its
    FZ0 beat arch's.

    Examples
    --------
    Rows as ``compare_series`` stores them (dicts; only the keys used here):

    >>> def row(model, fz0, dm, p, mcs_p, rank):
    ...     return {"series": "sp500", "horizon": 1, "level": 0.99, "model": model,
    ...             "fz0": fz0, "dm_vs_arch": dm, "p_dm_vs_arch": p, "mcs_p": mcs_p,
    ...             "in_mcs90": mcs_p > MCS_SIZE, "fz0_rank": rank}
    >>> rows = [row("ours", -3.40, -1.2, 0.23, 0.8, 1), row(REFERENCE, -3.38, 0.0, 1.0, 0.5, 2)]
    >>> print(verdicts(rows)[0])
    sp500, 1-day 99.0%: ours in the 90% MCS (p 0.80); FZ0 -3.4000 vs arch -3.3800: ours at
    least as good (DM -1.20, p 0.23); ours ranks 1 of 2
    """
    out = []
    name = "ours" if model == OURS else model
    for s in dict.fromkeys(r["series"] for r in rows):
        for h in sorted({r["horizon"] for r in rows if r["series"] == s}):
            for lv in LEVELS:
                grp = {
                    r["model"]: r
                    for r in rows
                    if r["series"] == s and r["horizon"] == h and r["level"] == lv
                }
                if model not in grp:
                    continue
                o, a = grp[model], grp[REFERENCE]
                better = o["fz0"] <= a["fz0"]
                sig = o["p_dm_vs_arch"] < 0.05
                out.append(
                    f"{s}, {h}-day {lv:.1%}: {name} {'in' if o['in_mcs90'] else 'OUTSIDE'} the "
                    f"90% MCS (p {o['mcs_p']:.2f}); FZ0 {o['fz0']:.4f} vs arch "
                    f"{a['fz0']:.4f}: {name} {'at least as good' if better else 'WORSE'}"
                    f" (DM {o['dm_vs_arch']:.2f}, p {o['p_dm_vs_arch']:.2f}"
                    f"{', significant' if sig else ''}); {name} ranks {o['fz0_rank']} of "
                    f"{len(grp)}"
                )
    return out


def write_results(
    out_dir: pathlib.Path,
    *,
    seed: int = 0,
    quick: bool = False,
    series: tuple[str, ...] | None = None,
) -> dict:
    """Run the comparison on every installed series (or only ``series``; default from the
    environment variable ``BAYES_MEM_RISK_SERIES``, comma-separated, else all) and write
    ``compare.csv`` (one row per series x horizon x level x model), ``compare_dm_pairs.csv``
    (every pair's DM test) and ``compare.md`` into ``out_dir``; return a JSON-serialisable summary
    with "markdown", which names any series left out. Series ``i`` of :func:`available_series`
    is seeded ``seed + i`` whatever the subset. ``quick``: the last 700 days of the S&P 500, a
    400-day window (about a minute; a smoke run, not evidence).

    Examples
    --------
    Skipped: even the quick run takes about a minute:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     summary = write_results(d, quick=True)
    ...     print(summary["series"], summary["cases_1day"])
    ['sp500'] 2
    """
    seed = check_int(seed, "seed", minimum=0)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = SETTINGS_QUICK if quick else SETTINGS_FULL
    installed = list(available_series())
    if series is None and os.environ.get("BAYES_MEM_RISK_SERIES"):
        series = tuple(x.strip() for x in os.environ["BAYES_MEM_RISK_SERIES"].split(",") if x)
    if series is not None:
        unknown = [x for x in series if x not in installed]
        if unknown or not series:
            raise ValueError(f"unknown series {unknown}; installed: {installed}")
    names = ["sp500"] if quick else [x for x in installed if series is None or x in series]
    left_out = [] if quick else [x for x in installed if x not in names]
    pooled, pooled_fits = ({}, []) if quick else pooled_walk_forward(names, settings, seed)
    results = []
    for name in names:
        r = load_series(name)
        i = installed.index(name)
        extra = {POOLED: pooled[name]} if name in pooled else None
        results.append(compare_series(r[-700:] if quick else r, name, settings, seed + i, extra))
    rows = [row for res in results for row in res["rows"]]
    pairs = [p for res in results for p in res["pairs"]]
    with (out_dir / "compare.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    with (out_dir / "compare_dm_pairs.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(pairs[0]))
        w.writeheader()
        w.writerows(pairs)
    found = verdicts(rows)
    one_day = [v for v in found if ", 1-day" in v]
    ours_in = sum(" in the 90% MCS" in v for v in one_day)
    ours_good = sum("at least as good" in v for v in one_day)
    lines = [
        "### Risk forecasts: ours vs the baselines a quant would pick",
        "",
        f"Walk-forward VaR/ES on {len(names)} real daily series shipped inside pip packages "
        f"({', '.join(names)}); window {settings['window']} days, refit every "
        f"{settings['refit_every']} days for ours ({settings['n_draws']} Laplace posterior draws "
        "per refit, per series) and for arch's ML GJR-GARCH skew-t (the reference of the DM "
        "column). ours_pooled: the production model, the nightly job's pooled PyMC fit of all "
        f"series together, refitted every {_pooled_cadence()} trading days of the union calendar "
        "by the job's own returns component (1000-day window, 4 chains x 1000 draws, gated; "
        "200 draws per symbol), its variance state rolled forward daily in between, as the "
        "engine does (bayes_mem.evaluation.pooled_risk). FZ0: mean joint VaR/ES loss (Patton, "
        "Ziegel & "
        "Chen 2019), lower is better; DM < 0: the model beats arch; MCS: 90% model confidence "
        "set (arch.bootstrap.MCS, range statistic). Coverage (Kupiec, Christoffersen) and "
        f"Acerbi-Szekely Z1/Z2 p-values ({settings['n_sims']} paths from each model's own "
        "predictive) at one day; Basel traffic light: 99% one-day exceptions in the last 250 "
        "days, and green/yellow/red counts of all non-overlapping 250-day windows. "
        f"{settings['horizon']}-day: overlapping sums, HAC variances (lag + h - 1), exceedances "
        "descriptive only; ours by ReturnModel.risk(horizon), arch and FHS by simulated GJR "
        "paths, the others by sqrt-of-time scaling.",
        "",
        f"**One-day summary: ours is inside the 90% MCS in {ours_in} of {len(one_day)} "
        f"series x level cases, and its FZ0 is at least as good as arch's in {ours_good} of "
        f"{len(one_day)}.**",
        "",
    ]
    pooled_found = verdicts(rows, POOLED)
    if pooled_found:
        p1 = [v for v in pooled_found if ", 1-day" in v]
        lines += [
            f"**ours_pooled (the production fit): inside the 90% MCS in "
            f"{sum(' in the 90% MCS' in v for v in p1)} of {len(p1)} one-day cases, FZ0 at "
            f"least as good as arch's in {sum('at least as good' in v for v in p1)} of "
            f"{len(p1)}.** Refits: {len(pooled_fits)}, "
            f"{sum(f.passed for f in pooled_fits)} passed the gate"
            + (f" (refused: {', '.join(f.date for f in pooled_fits if not f.passed)}; the "
               "previous posterior stayed live)" if not all(f.passed for f in pooled_fits)
               else "") + ".",
            "",
        ]  # fmt: skip
    multi = [v for v in found if ", 1-day" not in v]
    if multi:
        lines += [
            f"{settings['horizon']}-day: ours inside the 90% MCS in "
            f"{sum(' in the 90% MCS' in v for v in multi)} of {len(multi)} cases, FZ0 at least "
            f"as good as arch's in {sum('at least as good' in v for v in multi)} of {len(multi)}.",
            "",
        ]
    if left_out:
        lines += [
            f"Not in this run (installed, left out by BAYES_MEM_RISK_SERIES): "
            f"{', '.join(left_out)}.",
            "",
        ]
    refused = [f"{res['series']} {res['ours_failed_refits']} of {res['refits']}"
               for res in results if res["ours_failed_refits"]]  # fmt: skip
    if refused:
        lines += [
            "Refits of ours that the Laplace fit refused (no converged mode; the previous "
            "posterior stayed live and was rolled forward, as the nightly job keeps the last "
            f"published one): {', '.join(refused)}.",
            "",
        ]
    for s in names:
        for h in sorted({r["horizon"] for r in rows if r["series"] == s}):
            for lv in LEVELS:
                grp = [
                    r for r in rows if r["series"] == s and r["horizon"] == h and r["level"] == lv
                ]
                lines += [
                    f"#### {s}, {h}-day, {lv:.1%} (n = {grp[0]['n']})",
                    "",
                    _table(grp, TABLE_1D if h == 1 else TABLE_HD),
                ]
    lines += ["#### Verdicts (ours vs arch GJR skew-t)", ""] + [f"- {v}" for v in found]
    if pooled_found:
        lines += ["", "#### Verdicts (ours_pooled vs arch GJR skew-t)", ""]
        lines += [f"- {v}" for v in pooled_found]
    markdown = "\n".join(lines) + "\n"
    (out_dir / "compare.md").write_text(markdown)
    return {
        "quick": quick,
        "seed": seed,
        "settings": settings,
        "series": names,
        "left_out": left_out,
        "ours_in_mcs_1day": ours_in,
        "ours_fz0_at_least_arch_1day": ours_good,
        "cases_1day": len(one_day),
        "ours_failed_refits": {res["series"]: res["ours_failed_refits"] for res in results},
        "pooled_refits": len(pooled_fits),
        "pooled_refits_passed": sum(f.passed for f in pooled_fits),
        "pooled_verdicts": pooled_found,
        "verdicts": found,
        "markdown": markdown,
    }
