"""Performance statistics of a return series and inference on them.

Units, throughout: ``returns`` are per-period *simple* returns as fractions (0.01 = 1%), in time
order, one per period (a trading day by default). Rates passed alongside them (``risk_free``,
``target``) are per-period fractions in the same units. Annualised ratios multiply the per-period
ratio by ``sqrt(periods_per_year)``; the probabilistic/deflated Sharpe ratio and the Sharpe
difference test work with *per-period* (non-annualised) Sharpe ratios, as in the papers.

References: Bailey & Lopez de Prado (2012) "The Sharpe ratio efficient frontier", J. Risk;
Bailey & Lopez de Prado (2014) "The deflated Sharpe ratio", J. Portfolio Management;
Ledoit & Wolf (2008) "Robust performance hypothesis testing with the Sharpe ratio", J. Empirical
Finance; Andrews (1991) Econometrica (HAC kernels and bandwidth); Politis & Romano (1992)
(circular block bootstrap); Acerbi & Tasche (2002) (expected-shortfall estimator).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from scipy import stats

from bayes_mem.live.validate import (
    as_float_array,
    check_positive,
    check_probability_open,
    check_real,
)

EULER_GAMMA = 0.5772156649015329


# ---------------------------------------------------------------------------- input checks


def _is_bool_array(value: object) -> bool:
    try:
        return np.asarray(value).dtype == bool
    except (TypeError, ValueError):
        return False


def _series(value: object, what: str, min_len: int = 2) -> np.ndarray:
    """A 1-d finite float series of at least ``min_len`` values (bool refused)."""
    if _is_bool_array(value):
        raise TypeError(f"{what} must be numbers, got booleans")
    arr = as_float_array(value, what)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-d (one value per period), got shape {arr.shape}")
    if arr.size < min_len:
        raise ValueError(f"{what} needs at least {min_len} periods, got {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} must be finite, got {float(arr[i])!r} at index {i}")
    return arr


def _simple_returns(value: object, what: str = "returns", min_len: int = 2) -> np.ndarray:
    arr = _series(value, what, min_len)
    below = arr < -1.0
    if below.any():
        i = int(np.argmax(below))
        raise ValueError(
            f"{what} are simple returns and must be >= -1 (a total loss), got {float(arr[i])!r} "
            f"at index {i}"
        )
    return arr


def _int_at_least(value: object, what: str, low: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if int(value) < low:
        raise ValueError(f"{what} must be >= {low}, got {value!r}")
    return int(value)


def _rate(value: object, what: str, n: int) -> float | np.ndarray:
    """A per-period rate: a scalar or one value per period."""
    if np.ndim(value) == 0:
        return check_real(value, what)
    arr = _series(value, what, min_len=1)
    if arr.size != n:
        raise ValueError(f"{what} must be a scalar or one value per period ({n}), got {arr.size}")
    return arr


def _rng(rng: object) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


# ---------------------------------------------------------------------------- point statistics


def sharpe_ratio(
    returns: object, *, risk_free: object = 0.0, periods_per_year: float = 252
) -> float:
    """Annualised Sharpe ratio: mean excess return over its sample standard deviation (ddof 1),
    times ``sqrt(periods_per_year)``.

    ``risk_free`` is the *per-period* risk-free rate as a fraction, in the units of ``returns``
    (e.g. a 4% annual rate on daily data is about ``0.04 / 252``), a scalar or one per period.
    ``periods_per_year=1`` gives the per-period ratio. Dimensionless.

    Examples
    --------
    >>> r = [0.01, -0.02, 0.015, 0.0, 0.005]  # mean 0.002, sd 0.0135 per period
    >>> round(sharpe_ratio(r, periods_per_year=1), 4), round(sharpe_ratio(r), 2)
    (0.148, 2.35)
    """
    r = _series(returns, "returns")
    rf = _rate(risk_free, "risk_free", r.size)
    ppy = check_positive(periods_per_year, "periods_per_year")
    excess = r - rf
    sd = float(np.std(excess, ddof=1))
    if sd == 0.0:
        raise ValueError("returns have zero variance: the Sharpe ratio is undefined")
    return float(np.mean(excess)) / sd * math.sqrt(ppy)


def sortino_ratio(returns: object, *, target: object = 0.0, periods_per_year: float = 252) -> float:
    """Annualised Sortino ratio: ``mean(r - target) / DD * sqrt(periods_per_year)`` with the
    downside deviation ``DD = sqrt(mean(min(r - target, 0)^2))`` taken over *all* periods
    (Sortino & Price 1994). ``target`` is a per-period fraction (minimum acceptable return).
    Raises when no period falls below the target (the downside deviation is zero).

    Examples
    --------
    Mean 0.005, downside deviation ``sqrt((0.01^2 + 0.02^2) / 4) = 0.01118``:

    >>> round(sortino_ratio([0.03, -0.01, 0.02, -0.02], periods_per_year=1), 4)
    0.4472
    """
    r = _series(returns, "returns")
    tgt = _rate(target, "target", r.size)
    ppy = check_positive(periods_per_year, "periods_per_year")
    diff = r - tgt
    dd = math.sqrt(float(np.mean(np.minimum(diff, 0.0) ** 2)))
    if dd == 0.0:
        raise ValueError("no return falls below the target: the Sortino ratio is undefined")
    return float(np.mean(diff)) / dd * math.sqrt(ppy)


@dataclass(frozen=True)
class Drawdown:
    """Maximum drawdown of the compounded wealth path ``W_0 = 1, W_t = prod_{s<=t}(1 + r_s)``.

    ``value``: the largest fall from a running peak, ``1 - W_trough / W_peak`` (a positive
    fraction of the peak wealth; 0 when wealth never falls). ``start`` and ``trough``: indices
    into the wealth path, i.e. numbers of periods elapsed (0 is the starting capital, ``t`` the
    wealth after ``returns[t - 1]``); the losing returns are ``returns[start:trough]``.

    Examples
    --------
    Wealth 1 -> 1.1 -> 0.55 -> 0.66 -> 0.99: the peak 1.1 (after one period) halves by period 2.

    >>> max_drawdown([0.10, -0.50, 0.20, 0.50])
    Drawdown(value=0.5, start=1, trough=2)
    """

    value: float
    start: int
    trough: int


def max_drawdown(returns: object) -> Drawdown:
    """Maximum drawdown of compounded simple returns (see :class:`Drawdown` for units).

    Examples
    --------
    >>> dd = max_drawdown([0.10, -0.50, 0.20, 0.50])  # wealth 1, 1.1, 0.55, 0.66, 0.99
    >>> dd.value, dd.start, dd.trough
    (0.5, 1, 2)
    >>> max_drawdown([0.01, 0.02]).value  # wealth never falls
    0.0
    """
    r = _simple_returns(returns, min_len=1)
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    peak = np.maximum.accumulate(wealth)
    dd = 1.0 - wealth / peak
    trough = int(np.argmax(dd))
    value = float(dd[trough])
    if value == 0.0:
        return Drawdown(0.0, 0, 0)
    start = int(np.argmax(wealth[: trough + 1]))
    return Drawdown(value, start, trough)


def win_rate(returns: object) -> float:
    """Fraction of *non-zero* periods with a positive return. Zero returns (flat periods, no
    position) are excluded from numerator and denominator; raises if every period is zero.

    Examples
    --------
    >>> f"{win_rate([0.01, -0.02, 0.0, 0.03]):.4f}"  # 2 wins of 3 non-zero periods
    '0.6667'
    """
    r = _series(returns, "returns", min_len=1)
    nonzero = np.count_nonzero(r)
    if nonzero == 0:
        raise ValueError("every return is zero: the win rate is undefined")
    return float(np.count_nonzero(r > 0)) / nonzero


def realised_cvar(returns: object, level: float = 0.975) -> float:
    """Realised CVaR (expected shortfall) at ``level``: the mean loss in the worst ``1 - level``
    fraction of periods, as a positive fraction (a loss of 3% is 0.03).

    Estimator (Acerbi & Tasche 2002): with losses ``L = -r`` sorted decreasingly and
    ``m = T * (1 - level)``, ``CVaR = (L_(1) + ... + L_(floor m) + (m - floor m) L_(floor m + 1))
    / m``, i.e. the average of the worst ``m`` periods with a fractional weight on the boundary
    one (the empirical VaR); when ``m`` is an integer it is exactly the mean of the ``m`` worst
    losses. Needs ``m >= 1`` (at least one period in the tail).

    Examples
    --------
    With ``m = 4 * (1 - 0.5) = 2`` tail periods: the mean of the two worst losses, 5% and 2%.

    >>> round(realised_cvar([0.01, -0.02, -0.05, 0.03], level=0.5), 4)
    0.035
    """
    r = _series(returns, "returns", min_len=1)
    lvl = check_probability_open(level, "level")
    m = r.size * (1.0 - lvl)
    if m < 1.0 - 1e-9:
        raise ValueError(
            f"level {level!r} leaves {m:.3g} < 1 period in the tail of {r.size} returns; "
            f"need at least {math.ceil(1.0 / (1.0 - lvl))} returns"
        )
    m = max(m, 1.0)
    losses = np.sort(-r)[::-1]
    k = math.floor(m + 1e-9)
    total = float(np.sum(losses[:k]))
    if m - k > 1e-9:
        total += (m - k) * float(losses[k])
    return total / m


def turnover(positions: object) -> float:
    """Average turnover per period: ``mean_t sum_i |w_{t,i} - w_{t-1,i}|`` over the ``T - 1``
    changes of a (T, N) array of positions (fractions of capital, rows in time order; a 1-d
    array is one asset). The initial build-up from flat is not counted. Fraction of capital per
    period (multiply by ``periods_per_year`` for an annual figure).

    Examples
    --------
    One rebalance of 0.1 + 0.1 of capital, then none:

    >>> round(turnover([[0.5, 0.5], [0.6, 0.4], [0.6, 0.4]]), 4)
    0.1
    """
    if _is_bool_array(positions):
        raise TypeError("positions must be numbers, got booleans")
    w = as_float_array(positions, "positions")
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2:
        raise ValueError(f"positions must be (T, N), got shape {w.shape}")
    if w.shape[0] < 2 or w.shape[1] < 1:
        raise ValueError(f"positions need at least 2 periods and 1 asset, got shape {w.shape}")
    bad = ~np.isfinite(w)
    if bad.any():
        t, i = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"positions must be finite, got {float(w[t, i])!r} at period {t}, asset {i}"
        )
    return float(np.mean(np.sum(np.abs(np.diff(w, axis=0)), axis=1)))


# ---------------------------------------------------------------------------- PSR / DSR


def _moments(r: np.ndarray) -> tuple[float, float, float]:
    """Per-period Sharpe ratio (ddof 1), skewness and (non-excess) kurtosis (moment estimators)."""
    sd = float(np.std(r, ddof=1))
    if sd == 0.0:
        raise ValueError("returns have zero variance: the Sharpe ratio is undefined")
    sr = float(np.mean(r)) / sd
    skew = float(stats.skew(r, bias=True))
    kurt = float(stats.kurtosis(r, fisher=False, bias=True))
    return sr, skew, kurt


def probabilistic_sharpe_ratio(returns: object, benchmark_sr: float = 0.0) -> float:
    """Probabilistic Sharpe ratio (Bailey & Lopez de Prado 2012): the probability that the true
    per-period Sharpe ratio exceeds ``benchmark_sr`` (per period, *not* annualised),

    ``PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``

    with ``SR`` the per-period sample Sharpe ratio (ddof 1, no risk-free: pass excess returns),
    ``g3`` the sample skewness and ``g4`` the sample (non-excess) kurtosis.

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> round(probabilistic_sharpe_ratio(r), 3), round(probabilistic_sharpe_ratio(r, 0.05), 3)
    (0.945, 0.688)
    """
    r = _series(returns, "returns", min_len=3)
    sr_star = check_real(benchmark_sr, "benchmark_sr")
    sr, g3, g4 = _moments(r)
    var = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if var <= 0.0:
        raise ValueError(
            f"PSR variance term 1 - skew*SR + (kurt-1)/4*SR^2 = {var:.3g} <= 0 "
            f"(SR {sr:.3g}, skew {g3:.3g}, kurtosis {g4:.3g})"
        )
    return float(stats.norm.cdf((sr - sr_star) * math.sqrt(r.size - 1) / math.sqrt(var)))


def expected_max_sharpe(n_trials: int, trial_sr_variance: float) -> float:
    """Expected maximum of ``n_trials`` per-period Sharpe ratio estimates whose true value is 0
    and whose cross-trial variance is ``trial_sr_variance`` (Bailey & Lopez de Prado 2014):

    ``sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``, gamma the
    Euler-Mascheroni constant; 0 for a single trial.

    Examples
    --------
    >>> expected_max_sharpe(1, 0.0025)
    0.0
    >>> round(expected_max_sharpe(20, 0.0025), 4)  # 20 trials, per-period SR sd 0.05
    0.095
    """
    n = _int_at_least(n_trials, "n_trials", 1)
    v = check_real(trial_sr_variance, "trial_sr_variance")
    if v < 0.0:
        raise ValueError(f"trial_sr_variance must be >= 0, got {trial_sr_variance!r}")
    if n == 1:
        return 0.0
    q1 = stats.norm.ppf(1.0 - 1.0 / n)
    q2 = stats.norm.ppf(1.0 - 1.0 / (n * math.e))
    return math.sqrt(v) * float((1.0 - EULER_GAMMA) * q1 + EULER_GAMMA * q2)


def deflated_sharpe_ratio(returns: object, n_trials: int, trial_sr_variance: float) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the PSR of ``returns`` against the
    expected maximum Sharpe ratio of ``n_trials`` independent trials under the null
    (:func:`expected_max_sharpe`). ``trial_sr_variance`` is the variance across the trials of
    their *per-period* Sharpe ratio estimates. A probability; decreasing in ``n_trials``.

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> round(deflated_sharpe_ratio(r, 1, 0.0025), 3)  # one trial: the PSR against 0
    0.945
    >>> round(deflated_sharpe_ratio(r, 20, 0.0025), 3)  # the best of 20 trials
    0.305
    """
    sr0 = expected_max_sharpe(n_trials, trial_sr_variance)
    return probabilistic_sharpe_ratio(returns, benchmark_sr=sr0)


# ---------------------------------------------------------------------------- block bootstrap


def default_block_size(n: int) -> int:
    """``round(n^(1/3))``, at least 1: the rate-optimal order for variance/bias of block
    bootstrap estimators (Hall, Horowitz & Jing 1995).

    Examples
    --------
    >>> [default_block_size(n) for n in (1, 250, 1000)]
    [1, 6, 10]
    """
    return max(1, round(n ** (1.0 / 3.0)))


def _block_size(block_size: object, n: int) -> int:
    if block_size is None:
        return default_block_size(n)
    b = _int_at_least(block_size, "block_size", 1)
    if b > n:
        raise ValueError(f"block_size {b} exceeds the series length {n}")
    return b


def circular_block_indices(n: int, block_size: int, n_boot: int, rng: object = None) -> np.ndarray:
    """Indices (n_boot, n) of circular block bootstrap samples (Politis & Romano 1992): blocks of
    ``block_size`` consecutive periods starting at uniform positions, wrapping around the end,
    concatenated and cut to ``n``. Given the same block starts these are the indices of
    ``arch.bootstrap.CircularBlockBootstrap`` (tested); arch yields one resample per iteration,
    this gives all ``n_boot`` rows at once for the vectorised statistics.

    Examples
    --------
    >>> circular_block_indices(6, 2, 2, rng=0).tolist()  # blocks of 2 wrap around: (5, 0)
    [[5, 0, 3, 4, 3, 4], [1, 2, 1, 2, 0, 1]]
    """
    gen = _rng(rng)
    k = -(-n // block_size)
    starts = gen.integers(0, n, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(block_size)[None, None, :]) % n
    return idx.reshape(n_boot, k * block_size)[:, :n]


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval: ``estimate`` (the statistic on the data), ``low``/``high``
    (percentile interval, in the statistic's units), ``level``, ``block_size`` (periods),
    ``n_boot``, ``std_error`` (standard deviation of the bootstrap replicates).

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> ci = block_bootstrap_ci(r, np.mean, n_boot=1000, rng=0)
    >>> ci.level, ci.block_size, ci.n_boot
    (0.95, 8, 1000)
    """

    estimate: float
    low: float
    high: float
    level: float
    block_size: int
    n_boot: int
    std_error: float


def block_bootstrap_ci(
    returns: object,
    statistic: Callable[[np.ndarray], float],
    *,
    level: float = 0.95,
    block_size: int | None = None,
    n_boot: int = 2000,
    rng: object = None,
) -> BootstrapCI:
    """Percentile confidence interval for ``statistic(returns)`` from a *circular* block
    bootstrap (Politis & Romano 1992) with fixed blocks of ``block_size`` periods (default
    ``round(T^(1/3))``): the interval is the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles of
    the statistic over ``n_boot`` resampled series. ``statistic`` maps a 1-d array of returns to
    a float (units as it defines). ``rng``: Generator or seed.

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> ci = block_bootstrap_ci(r, np.mean, n_boot=1000, rng=0)  # blocks of round(500^(1/3)) = 8
    >>> ci.block_size, round(ci.estimate, 4), round(ci.low, 4), round(ci.high, 4)
    (8, 0.0007, -0.0001, 0.0015)
    >>> round(ci.std_error, 4)
    0.0004
    """
    r = _series(returns, "returns", min_len=2)
    if not callable(statistic):
        raise TypeError(f"statistic must be callable, got {statistic!r}")
    lvl = check_probability_open(level, "level")
    b = _block_size(block_size, r.size)
    nb = _int_at_least(n_boot, "n_boot", 10)
    idx = circular_block_indices(r.size, b, nb, rng)
    est = float(statistic(r))
    reps = np.fromiter((statistic(r[i]) for i in idx), dtype=float, count=nb)
    if not np.all(np.isfinite(reps)):
        raise ValueError("statistic returned a non-finite value on a bootstrap sample")
    lo, hi = np.quantile(reps, [(1.0 - lvl) / 2.0, (1.0 + lvl) / 2.0])
    return BootstrapCI(est, float(lo), float(hi), lvl, b, nb, float(np.std(reps, ddof=1)))


def _mdd_value(r: np.ndarray) -> float:
    return max_drawdown(r).value


def max_drawdown_ci(returns: object, **kwargs: object) -> BootstrapCI:
    """Block-bootstrap interval of the maximum drawdown (fraction) over a path of the same
    length; keyword arguments as :func:`block_bootstrap_ci`.

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> ci = max_drawdown_ci(r, n_boot=1000, rng=0)
    >>> round(ci.estimate, 4), round(ci.low, 4), round(ci.high, 4)
    (0.1009, 0.0812, 0.2803)
    """
    _simple_returns(returns)
    return block_bootstrap_ci(returns, _mdd_value, **kwargs)


def _win_rate_or_half(r: np.ndarray) -> float:
    nz = np.count_nonzero(r)
    return float(np.count_nonzero(r > 0)) / nz if nz else 0.5


def win_rate_ci(returns: object, **kwargs: object) -> BootstrapCI:
    """Block-bootstrap interval of :func:`win_rate` (fraction); keyword arguments as
    :func:`block_bootstrap_ci`. A resample with only zero returns (possible only when almost
    every period is zero) counts as 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> r = 0.001 + 0.01 * np.random.default_rng(0).standard_normal(500)
    >>> ci = win_rate_ci(r, n_boot=1000, rng=0)
    >>> round(ci.estimate, 3), round(ci.low, 3), round(ci.high, 3)
    (0.51, 0.468, 0.552)
    """
    win_rate(returns)
    return block_bootstrap_ci(returns, _win_rate_or_half, **kwargs)


# ---------------------------------------------------------------------------- Sharpe difference


@dataclass(frozen=True)
class SharpeDifference:
    """Test of ``H0: SR1 = SR2`` for two paired return series. ``difference``: SR1 - SR2 of the
    *per-period* Sharpe ratios (moment form ``mu / sqrt(E[r^2] - mu^2)``); ``std_error`` its
    (HAC) standard error; two-sided ``p_value``; ``ci_low``/``ci_high`` the ``level`` interval;
    ``method``; ``bandwidth`` (HAC kernel bandwidth, periods; for ``ewc`` the number of
    cosines) or ``block_size`` (bootstrap).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> common = 0.01 * rng.standard_normal(500)  # a shared market factor
    >>> r1 = 0.001 + common + 0.005 * rng.standard_normal(500)
    >>> r2 = common + 0.005 * rng.standard_normal(500)
    >>> res = sharpe_difference_test(r1, r2, method="ewc")
    >>> res.method, res.bandwidth, res.block_size  # 25 cosines for 500 periods
    ('ewc', 25.0, None)
    """

    difference: float
    std_error: float
    p_value: float
    ci_low: float
    ci_high: float
    level: float
    method: str
    bandwidth: float
    block_size: int | None


def _qs_bandwidth(y: np.ndarray) -> float:
    """Andrews (1991) automatic QS bandwidth ``1.3221 (alpha(2) T)^(1/5)`` from AR(1) fits to each
    (centred) column of ``y``, equal weights; AR coefficients clipped to +-0.97."""
    n = y.shape[0]
    num = den = 0.0
    for col in y.T:
        x0, x1 = col[:-1], col[1:]
        ss = float(x0 @ x0)
        rho = float(x0 @ x1) / ss if ss > 0 else 0.0
        rho = min(max(rho, -0.97), 0.97)
        s2 = float(np.mean((x1 - rho * x0) ** 2))
        num += 4.0 * rho**2 * s2**2 / (1.0 - rho) ** 8
        den += s2**2 / (1.0 - rho) ** 4
    alpha2 = num / den if den > 0 else 0.0
    return 1.3221 * (alpha2 * n) ** 0.2


def _hac_cov(y: np.ndarray, bandwidth: float) -> np.ndarray:
    """QS-kernel long-run covariance of the centred (T, k) series ``y``, all lags, with the
    small-sample factor ``T / (T - k)``: :class:`arch.covariance.kernel.QuadraticSpectral` at
    the given (Andrews AR(1)) bandwidth, ``df_adjust = k`` (inner products over ``T - k``)."""
    from arch.covariance.kernel import QuadraticSpectral  # the data extra (arch)

    n, k = y.shape
    if bandwidth <= 0:  # arch takes 0 as "choose one": no lags is the sample covariance
        return y.T @ y / (n - k)
    return np.asarray(
        QuadraticSpectral(y, bandwidth=bandwidth, df_adjust=k, center=False).cov.long_run
    )


def ewc_df(n: int) -> int:
    """Number of cosines ``nu = max(1, floor(0.4 n^(2/3)))`` of the equal-weighted cosine (EWC)
    long-run variance: the rule Lazarus, Lewis, Stock & Watson (2018) recommend for tests (6
    for 60 periods, 15 for 250).

    Examples
    --------
    >>> ewc_df(60), ewc_df(250)
    (6, 15)
    """
    return max(1, int(0.4 * n ** (2.0 / 3.0)))


def ewc_lrv(y: np.ndarray, nu: int) -> np.ndarray:
    """EWC long-run covariance of the (T, k) series ``y``: ``(1 / nu) sum_j L_j L_j'`` with
    ``L_j = sqrt(2 / T) sum_t cos(pi j (t - 1/2) / T) y_t``, ``j = 1 .. nu`` (Müller 2007;
    LLSW 2018). The cosines are orthogonal to a constant, so centring ``y`` changes nothing;
    for i.i.d. normal data the ``L_j`` are i.i.d. normal, and a t statistic built on it is
    exactly Student-t with ``nu`` degrees of freedom (fixed-b: no bandwidth is estimated, so
    the test does not depend on the scale of ``y``).

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal((250, 2))
    >>> lrv = ewc_lrv(y, ewc_df(250))
    >>> lrv.shape, bool(np.allclose(lrv, ewc_lrv(y + 5.0, 15)))  # a constant changes nothing
    ((2, 2), True)
    """
    n = y.shape[0]
    j = np.arange(1, nu + 1)
    basis = math.sqrt(2.0 / n) * np.cos(np.pi * np.outer(j, np.arange(n) + 0.5) / n)
    lam = basis @ y
    return lam.T @ lam / nu


def _sr_diff_and_grad(
    mu1: np.ndarray, mu2: np.ndarray, g1: np.ndarray, g2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Difference of moment-form Sharpe ratios and its gradient in (mu1, mu2, g1, g2)."""
    v1 = g1 - mu1**2
    v2 = g2 - mu2**2
    diff = mu1 / np.sqrt(v1) - mu2 / np.sqrt(v2)
    grad = np.stack(
        [g1 / v1**1.5, -g2 / v2**1.5, -0.5 * mu1 / v1**1.5, 0.5 * mu2 / v2**1.5], axis=-1
    )
    return diff, grad


def sharpe_difference_test(
    r1: object,
    r2: object,
    *,
    method: str = "hac",
    level: float = 0.95,
    block_size: int | None = None,
    n_boot: int = 2000,
    rng: object = None,
) -> SharpeDifference:
    """Ledoit & Wolf (2008) test of equal Sharpe ratios of two paired series of per-period
    returns (pass excess returns if a risk-free rate matters), robust to autocorrelation,
    heteroskedasticity and fat tails.

    ``method="hac"``: delta method on ``v = (mu1, mu2, E r1^2, E r2^2)``; the long-run covariance
    of ``(r1 - mu1, r2 - mu2, r1^2 - E r1^2, r2^2 - E r2^2)`` is a quadratic-spectral kernel
    estimator with the Andrews (1991) AR(1)-plug-in bandwidth (no prewhitening) and a
    ``T / (T - 4)`` small-sample factor; ``z = diff / se`` against N(0, 1).

    ``method="ewc"``: the same delta method with the equal-weighted cosine long-run covariance
    (:func:`ewc_lrv`, ``nu = ewc_df(T)`` cosines) and a Student-t reference with ``nu``
    degrees of freedom (the fixed-b test of Lazarus, Lewis, Stock & Watson 2018): better size
    than QS/Andrews with N(0, 1) on short autocorrelated samples, at some cost in power;
    ``bandwidth`` reports ``nu``.

    ``method="bootstrap"``: LW's studentised circular block bootstrap. ``n_boot`` resamples of
    the *pairs* in blocks of ``block_size`` periods (default ``round(T^(1/3))``; LW calibrate it,
    we do not); each gives ``d* = |diff* - diff| / se*`` with ``se*`` the block-means standard
    error of LW eq. (6) (the natural variance of the resample's block sums). The data's own
    statistic is studentised the same way (``se`` from the sums of its ``floor(T / b)``
    non-overlapping blocks, reported as ``std_error``; the HAC error gave a conservative 2% size
    at a nominal 5% in our simulations). The p-value is ``(1 + #{d* >= |diff| / se}) /
    (1 + n_boot)`` and the interval the symmetric studentised ``diff +- q_level(d*) se``.

    Differences, errors and intervals are in per-period Sharpe units (multiply by
    ``sqrt(periods_per_year)`` to annualise).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> common = 0.01 * rng.standard_normal(500)  # a shared market factor
    >>> r1 = 0.001 + common + 0.005 * rng.standard_normal(500)
    >>> r2 = common + 0.005 * rng.standard_normal(500)
    >>> res = sharpe_difference_test(r1, r2, method="ewc")
    >>> round(res.difference, 3), round(res.std_error, 3), round(res.p_value, 3)
    (0.073, 0.029, 0.019)
    >>> boot = sharpe_difference_test(r1, r2, method="bootstrap", n_boot=1000, rng=0)
    >>> boot.block_size, round(boot.p_value, 3), round(boot.ci_low, 3), round(boot.ci_high, 3)
    (8, 0.025, 0.012, 0.134)
    """
    a = _series(r1, "r1", min_len=10)
    b = _series(r2, "r2", min_len=10)
    if a.size != b.size:
        raise ValueError(f"r1 and r2 must be paired (same length), got {a.size} and {b.size}")
    if method not in ("hac", "bootstrap", "ewc"):
        raise ValueError(f"method must be 'hac', 'ewc' or 'bootstrap', got {method!r}")
    lvl = check_probability_open(level, "level")
    for name, x in (("r1", a), ("r2", b)):
        if np.std(x) == 0.0:
            raise ValueError(f"{name} has zero variance: its Sharpe ratio is undefined")
    n = a.size
    data = np.column_stack([a, b, a * a, b * b])
    mom = data.mean(axis=0)
    diff, grad = _sr_diff_and_grad(*mom)
    y = data - mom
    bw = _qs_bandwidth(y)
    psi = _hac_cov(y, bw)
    se = math.sqrt(max(float(grad @ psi @ grad) / n, 0.0))
    if se == 0.0:
        raise ValueError("the standard error of the Sharpe difference is zero (identical series?)")
    diff = float(diff)
    if method == "hac":
        z = diff / se
        p = 2.0 * float(stats.norm.sf(abs(z)))
        q = float(stats.norm.ppf(0.5 + lvl / 2.0))
        return SharpeDifference(diff, se, p, diff - q * se, diff + q * se, lvl, "hac", bw, None)
    if method == "ewc":
        nu = ewc_df(n)
        se_e = math.sqrt(max(float(grad @ ewc_lrv(y, nu) @ grad) / n, 0.0))
        if se_e == 0.0:
            raise ValueError("the EWC standard error of the Sharpe difference is zero")
        p = 2.0 * float(stats.t.sf(abs(diff) / se_e, nu))
        q = float(stats.t.ppf(0.5 + lvl / 2.0, nu))
        return SharpeDifference(
            diff, se_e, p, diff - q * se_e, diff + q * se_e, lvl, "ewc", float(nu), None
        )

    bs = _block_size(block_size, n)
    nb = _int_at_least(n_boot, "n_boot", 10)
    gen = _rng(rng)
    k = -(-n // bs)
    m = k * bs  # whole blocks: the resample is k blocks long (>= n)
    starts = gen.integers(0, n, size=(nb, k))
    idx = ((starts[:, :, None] + np.arange(bs)[None, None, :]) % n).reshape(nb, m)
    d_star = np.empty(nb)
    chunk = max(1, 4_000_000 // (m * 4))
    for lo in range(0, nb, chunk):
        sl = slice(lo, min(lo + chunk, nb))
        sample = data[idx[sl]]  # (c, m, 4)
        mom_s = sample.mean(axis=1)  # (c, 4)
        diff_s, grad_s = _sr_diff_and_grad(*mom_s.T)
        block_sums = (sample - mom_s[:, None, :]).reshape(-1, k, bs, 4).sum(axis=2)
        zeta = block_sums / math.sqrt(bs)  # (c, k, 4)
        psi_s = np.einsum("cki,ckj->cij", zeta, zeta) / k
        var_s = np.einsum("ci,cij,cj->c", grad_s, psi_s, grad_s) / m
        with np.errstate(invalid="ignore", divide="ignore"):
            d_star[sl] = np.abs(diff_s - diff) / np.sqrt(var_s)
    d_star = d_star[np.isfinite(d_star)]
    if d_star.size < 10:
        raise ValueError("too few valid bootstrap resamples (degenerate series)")
    kb = n // bs  # non-overlapping whole blocks of the data, for the matching studentisation
    zeta0 = (y[: kb * bs] - y[: kb * bs].mean(axis=0)).reshape(kb, bs, 4).sum(axis=1)
    psi0 = zeta0.T @ zeta0 / (kb * bs)
    se_b = math.sqrt(max(float(grad @ psi0 @ grad) / n, 0.0))
    if se_b == 0.0:
        raise ValueError("the block standard error of the Sharpe difference is zero")
    stat = abs(diff) / se_b
    p = (1.0 + float(np.count_nonzero(d_star >= stat))) / (1.0 + d_star.size)
    q = float(np.quantile(d_star, lvl))
    return SharpeDifference(
        diff, se_b, p, diff - q * se_b, diff + q * se_b, lvl, "bootstrap", bw, bs
    )


# ---------------------------------------------------------------------------- independent trials


def effective_number_of_trials(returns: object) -> float:
    """Effective number of independent trials among ``k`` strategies from the eigenvalues
    ``lambda_i`` of their return correlation matrix: the participation ratio
    ``(sum lambda_i)^2 / sum lambda_i^2 = k^2 / trace(C^2)`` (dimensionless, between 1 and
    ``k``): ``k`` for uncorrelated strategies, 1 for perfectly correlated ones, ``m`` for ``m``
    uncorrelated groups of perfect copies.

    Parameters
    ----------
    returns : array_like, shape (T, k)
        Per-period returns of ``k`` strategies over the same ``T`` periods (any units: the
        correlation is scale-free). A strategy with zero variance raises.

    Returns
    -------
    float
        The effective number of trials.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.standard_normal((500, 2))  # two independent factors
    >>> x = np.column_stack([f[:, 0], f[:, 0] + 0.1 * rng.standard_normal(500), f[:, 1]])
    >>> round(effective_number_of_trials(x), 2)  # two near copies and one other: about 2
    1.81
    >>> round(effective_number_of_trials(f), 2)
    2.0
    """
    x = _returns_matrix(returns)
    if x.shape[1] == 1:
        return 1.0
    c = np.corrcoef(x, rowvar=False)
    return float(x.shape[1] ** 2 / np.sum(c * c))


def _returns_matrix(returns: object) -> np.ndarray:
    if _is_bool_array(returns):
        raise TypeError("returns must be numbers, got booleans")
    x = as_float_array(returns, "returns")
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 1:
        raise ValueError(f"returns must be (T >= 3, k >= 1): periods x strategies, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("returns must be finite")
    flat = np.flatnonzero(np.std(x, axis=0) == 0.0)
    if flat.size:
        raise ValueError(f"strategy {int(flat[0])} has zero variance: no correlation")
    return x


@dataclass(frozen=True)
class TrialClusters:
    """Strategies grouped into independent trials (:func:`cluster_trials`).

    ``labels``: cluster of each strategy (0 .. ``n_clusters - 1``, in order of first
    appearance); ``cluster_sharpe``: per-period Sharpe ratio of each cluster's aggregate
    return (the mean of its members' returns, each scaled to unit sample standard deviation);
    ``trial_sr_variance``: the variance (ddof 1) of ``cluster_sharpe`` across clusters
    (per-period Sharpe units squared; 0 for a single cluster); ``eigen_trials``: the
    eigenvalue estimate :func:`effective_number_of_trials`; ``threshold``: the correlation
    above which strategies were joined.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.standard_normal((500, 2))  # two independent factors
    >>> x = np.column_stack([f[:, 0], f[:, 0] + 0.1 * rng.standard_normal(500), f[:, 1]])
    >>> cl = cluster_trials(0.001 + 0.01 * x)
    >>> cl.labels.tolist(), cl.n_clusters, cl.threshold
    ([0, 0, 1], 2, 0.5)
    """

    labels: np.ndarray
    n_clusters: int
    cluster_sharpe: np.ndarray
    trial_sr_variance: float
    eigen_trials: float
    threshold: float


def cluster_trials(returns: object, *, threshold: float = 0.5) -> TrialClusters:
    """Group ``k`` strategies into independent trials by correlation: average-linkage
    hierarchical clustering on the distance ``1 - rho`` (``rho`` the Pearson correlation of
    the per-period returns), cut at distance ``1 - threshold``, so two clusters are merged
    while their average cross-correlation is at least ``threshold``. Each cluster is one trial
    (Lopez de Prado 2019, "A data science solution to the multiple-testing crisis in financial
    research", J. Financial Data Science: one trial per cluster, its Sharpe ratio that of the
    cluster's aggregate return).

    Parameters
    ----------
    returns : array_like, shape (T, k)
        Per-period returns of the strategies (paired periods).
    threshold : float
        Correlation (in (0, 1)) from which strategies count as the same trial.

    Returns
    -------
    TrialClusters

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.standard_normal((500, 2))  # two independent factors
    >>> x = np.column_stack([f[:, 0], f[:, 0] + 0.1 * rng.standard_normal(500), f[:, 1]])
    >>> cl = cluster_trials(0.001 + 0.01 * x)  # the near copies are one trial
    >>> cl.labels.tolist(), cl.cluster_sharpe.round(4).tolist(), round(cl.trial_sr_variance, 5)
    ([0, 0, 1], [0.0149, 0.0947], 0.00319)
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    x = _returns_matrix(returns)
    thr = check_probability_open(threshold, "threshold")
    k = x.shape[1]
    if k == 1:
        raw = np.zeros(1, dtype=int)
    else:
        c = np.clip(np.corrcoef(x, rowvar=False), -1.0, 1.0)
        dist = 1.0 - c
        np.fill_diagonal(dist, 0.0)
        dist = np.maximum((dist + dist.T) / 2.0, 0.0)
        z = linkage(squareform(dist, checks=False), method="average")
        raw = fcluster(z, t=1.0 - thr, criterion="distance")
    order: dict[int, int] = {}
    labels = np.array([order.setdefault(int(v), len(order)) for v in raw], dtype=int)
    n = len(order)
    unit = x / np.std(x, axis=0, ddof=1)
    srs = np.empty(n)
    for j in range(n):
        agg = unit[:, labels == j].mean(axis=1)
        srs[j] = float(np.mean(agg)) / float(np.std(agg, ddof=1))
    var = float(np.var(srs, ddof=1)) if n >= 2 else 0.0
    return TrialClusters(labels, n, srs, var, effective_number_of_trials(x), thr)


def deflated_sharpe_independent(
    returns: object, candidate: int, *, threshold: float = 0.5
) -> dict[str, float]:
    """Deflated Sharpe ratio of strategy ``candidate`` (a column of ``returns``) for the
    selection among the *independent* trials that the ``k`` strategies represent: the trials
    are the correlation clusters of :func:`cluster_trials`, the number of trials is their
    count and the cross-trial Sharpe variance that of the clusters' Sharpe ratios, not of
    highly correlated variants of one strategy (which would understate the variance and
    overstate the count). ``deflated_sharpe_ratio(candidate, n_clusters, variance)``.

    Parameters
    ----------
    returns : array_like, shape (T, k)
        Per-period returns (fractions) of every strategy tried, paired by period.
    candidate : int
        Column of the strategy whose Sharpe ratio is deflated (usually the selected best).
    threshold : float
        Correlation from which strategies count as one trial (:func:`cluster_trials`).

    Returns
    -------
    dict
        ``dsr`` (probability that the true Sharpe ratio exceeds the expected maximum of the
        independent trials under the null), ``psr`` (against 0), ``sr0`` (that expected
        maximum, per period), ``sharpe`` (per period), ``n_trials`` (clusters),
        ``eigen_trials``, ``trial_sr_variance`` (per period squared).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = rng.standard_normal((500, 2))  # two independent factors
    >>> x = np.column_stack([f[:, 0], f[:, 0] + 0.1 * rng.standard_normal(500), f[:, 1]])
    >>> out = deflated_sharpe_independent(0.001 + 0.01 * x, 1)
    >>> out["n_trials"], round(out["sharpe"], 4), round(out["sr0"], 4)
    (2, 0.0174, 0.0294)
    >>> round(out["psr"], 3), round(out["dsr"], 3)
    (0.651, 0.395)
    """
    x = _returns_matrix(returns)
    j = _int_at_least(candidate, "candidate", 0)
    if j >= x.shape[1]:
        raise ValueError(f"candidate {j} is not a column of returns ({x.shape[1]} strategies)")
    cl = cluster_trials(x, threshold=threshold)
    sr0 = expected_max_sharpe(cl.n_clusters, cl.trial_sr_variance)
    r = x[:, j]
    return {
        "dsr": probabilistic_sharpe_ratio(r, benchmark_sr=sr0),
        "psr": probabilistic_sharpe_ratio(r),
        "sr0": sr0,
        "sharpe": float(np.mean(r)) / float(np.std(r, ddof=1)),
        "n_trials": int(cl.n_clusters),
        "eigen_trials": cl.eigen_trials,
        "trial_sr_variance": cl.trial_sr_variance,
    }


# ---------------------------------------------------------------------------- risk normalisation


def vol_target_scale(
    returns: object,
    *,
    target_annual_vol: float = 0.10,
    halflife: float = 21.0,
    warmup: int = 21,
    max_scale: float = 100.0,
    periods_per_year: float = 252,
) -> np.ndarray:
    """Causal volatility-targeting scale: the leverage ``s_t`` applied to period ``t``'s return
    uses only the returns before ``t``,

    ``s_t = (target_annual_vol / sqrt(periods_per_year)) / sigma_{t-1}``,
    ``sigma_{t-1}^2 = EWMA of r_1^2 .. r_{t-1}^2`` (zero-mean RiskMetrics form, weight
    ``1 - 2^(-1/halflife)`` on the newest square, started at the mean square of the first
    ``warmup`` returns),

    capped at ``max_scale``; ``s_t = 0`` for the first ``warmup`` periods (no estimate yet) and
    whenever ``sigma_{t-1} = 0`` (nothing traded recently). Dimensionless (a multiple of the
    strategy's book).

    Parameters
    ----------
    returns : array_like, shape (T,)
        Per-period returns (fractions of capital).
    target_annual_vol : float
        Common annual volatility every strategy is scaled to (fraction, 0.10 = 10%).
    halflife : float
        EWMA half-life in periods.
    warmup : int
        Periods before the first scaled return.
    max_scale : float
        Largest leverage (guards a near-flat book).
    periods_per_year : float
        Periods per year of the returns.

    Returns
    -------
    numpy.ndarray, shape (T,)
        The scales; ``scale * returns`` is the risk-normalised series.

    Examples
    --------
    A 1% per-period target, volatility from the first four returns (1%), then a half-life of one
    period: ``sigma^2`` moves to ``(0.01^2 + 0.02^2) / 2``, then ``(0.00025 + 0.02^2) / 2``.

    >>> r = [0.01, -0.01, 0.01, -0.01, 0.02, -0.02, 0.02]
    >>> scale = vol_target_scale(r, target_annual_vol=0.01 * math.sqrt(252), halflife=1.0, warmup=4)
    >>> scale.round(4).tolist()
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.6325, 0.5547]
    """
    r = _series(returns, "returns", min_len=2)
    tv = check_positive(target_annual_vol, "target_annual_vol")
    hl = check_positive(halflife, "halflife")
    w = _int_at_least(warmup, "warmup", 1)
    cap = check_positive(max_scale, "max_scale")
    ppy = check_positive(periods_per_year, "periods_per_year")
    if w >= r.size:
        raise ValueError(f"warmup {w} leaves no period of the {r.size} to scale")
    lam = 2.0 ** (-1.0 / hl)
    target = tv / math.sqrt(ppy)
    scale = np.zeros(r.size)
    var = float(np.mean(r[:w] ** 2))
    for t in range(w, r.size):  # var holds the estimate from r[:t]
        if var > 0.0:
            scale[t] = min(target / math.sqrt(var), cap)
        var = lam * var + (1.0 - lam) * r[t] ** 2
    return scale


def per_exposure_returns(returns: object, gross_exposure: object) -> np.ndarray:
    """Returns per unit of gross exposure: ``r_t / g_{t-1}``, the period's pnl over the gross
    notional held into it (``gross_exposure[t]`` is the book at the close of period ``t``, as a
    fraction of capital; ``g_{-1}`` is taken as 0). 0 where nothing was held. Units: return per
    unit notional (0.01 = 1% of the gross notional).

    Examples
    --------
    >>> per_exposure_returns([0.01, 0.002, -0.003], [0.5, 2.0, 0.0]).round(4).tolist()
    [0.0, 0.004, -0.0015]
    """
    r = _series(returns, "returns", min_len=2)
    g = _series(gross_exposure, "gross_exposure", min_len=2)
    if g.size != r.size:
        raise ValueError(f"gross_exposure must have one value per period ({r.size}), got {g.size}")
    if np.any(g < 0):
        raise ValueError("gross_exposure must be >= 0")
    held = np.concatenate(([0.0], g[:-1]))
    out = np.zeros_like(r)
    np.divide(r, held, out=out, where=held > 0)
    return out
