"""A/B tests of trading strategies run side by side on the same market data.

Units: ``pnl`` is whatever one strategy step reports (a currency amount or a per-period return
fraction); both strategies must report it in the same units. Per-step differences are
``test - control``. Sharpe ratios follow :mod:`bayes_mem.evaluation.performance` (annualised with
``periods_per_year``; the PSR/DSR, the Sharpe difference test and the Bayesian posterior use
per-period ratios).

Spec of the tests (numpy/scipy only, deterministic for a given ``seed``)
-------------------------------------------------------------------------
Two questions are asked of a pair of pnl series and they differ when the strategies run at
different exposures:

*Mean pnl* (not scale-free). A strategy at ``k`` times the exposure of another with the same
positive edge earns ``k`` times the mean pnl: that *is* a real difference of mean pnl, and the
mean tests are right to find it. Both mean tests use an autocorrelation-robust (HAC) long-run
variance (LRV): the equal-weighted cosine (EWC) estimator with ``nu = floor(0.4 n^(2/3))``
cosines (6 for 60 days, 15 for 250) and a Student-t reference with ``nu`` degrees of freedom
(:func:`hac_mean_test`; Lazarus, Lewis, Stock & Watson 2018, "HAR inference:
recommendations for practice"; fixed-b, exact for i.i.d. normal data, no bandwidth to
estimate). Measured reason for EWC: with the QS kernel at the Andrews (1991) bandwidth and an
equivalent-df t reference, the paired test rejected a true null in 7.8% of 60-day A/A pairs
of 5-day holds booked at settlement (commit aa5dae4's table); with EWC, 4.8%.

- paired (``paired``): ``H0: E[test_t - control_t] = 0`` from the daily differences (uses the
  pairing).
- independent samples (the seed plan's ``t_statistic``/``p_value``/``significant``): ``H0:
  E[test] = E[control]`` with standard error ``sqrt((LRV(test) + LRV(control)) / n)``, each
  series' own EWC LRV, ignoring the covariance between the two series as the plan's
  ``ttest_ind`` does (conservative when both share the market move); Welch-Satterthwaite df
  (``nu`` to ``2 nu``). The i.i.d. scipy tests stay in ``classical``.

*Sharpe ratio* (scale-free: multiplying a strategy's pnl by ``k > 0`` changes nothing).

- ``sharpe_difference``: Ledoit & Wolf (2008) test of ``SR(test) = SR(control)`` by the
  delta method, with the EWC long-run covariance and a t(``nu``) reference
  (:func:`~bayes_mem.evaluation.performance.sharpe_difference_test` with ``method="ewc"``).
- ``bayes``: posterior of ``SR(test) - SR(control)`` (per period, moment form ``mu / sqrt(E r^2
  - mu^2)``) by a *Bayesian block bootstrap* (:func:`sharpe_difference_posterior`):

  1. Shape. The paired days are cut into blocks of ``b`` consecutive days on a circle, with a
     random offset per draw (no day is always a block edge); each block gets a weight ``g_j ~
     Gamma(a, 1)`` (normalised: Dirichlet(a, ..., a) over blocks, Rubin's (1981) Bayesian
     bootstrap with blocks as the exchangeable units), every day of a block its block's
     weight; the weighted first and second moments of both series give one draw of the Sharpe
     difference. No normality, no independence of days within a block, no scale assumed.
     ``a = (k - 2) / k`` for ``k`` blocks: with equal blocks the posterior variance of a
     weighted mean is ``sum_j (m_j - m)^2 / (k (k a + 1))``, and ``k a + 1 = k - 1`` makes it
     the unbiased ``s^2_blocks / k`` (Rubin's ``a = 1`` is ``(k - 1) / (k + 1)`` of it).
  2. Block length ``b = max(min_block, round(b_PW))`` capped at ``n // 8`` (at least 8 blocks,
     never below ``min_block``), ``b_PW`` the Politis & White (2004) automatic block length for
     the circular bootstrap with the Patton, Politis & White (2009) correction
     (:func:`optimal_block_length`) on the *linearised* Sharpe-difference series ``l_t = grad
     . (x_t - mean)``, ``x_t = (test, control, test^2, control^2)`` (the statistic's influence
     function: its autocorrelation is what the blocks must keep). ``min_block`` is the
     caller's floor, e.g. the holding period of overlapping trades.
  3. Scale. Blocks of ``b`` days reproduce about the Bartlett(``b``) long-run variance of
     ``l``, biased down when the dependence reaches beyond ``b`` (5-day overlapping holds of a
     persistent signal on 60 days: with the raw draws ``P`` fell outside [2.5%, 97.5%] in
     12.5% of 200 A/A pairs in a development run). The draws' deviations from the sample
     difference are rescaled so their sd is the EWC standard error of the Sharpe difference
     (the one ``sharpe_difference`` uses; linear in the data, so scale-free), then times
     ``sqrt(nu / chi2_nu)`` per draw: the posterior integrates over the uncertainty of the
     long-run variance (a normal-inverse-chi-square scale mixture with the EWC's ``nu``
     degrees of freedom, hence Student-t-like tails).

  ``prob_positive`` = P(SR test > SR control | data) = share of draws above 0 (resolution
  ``1 / draws``), with an equal-tailed credible interval. Step 3 ties the posterior's spread
  to the LW/EWC standard error; what the bootstrap adds is the shape (skewness, tails) of the
  Sharpe difference and a probability statement instead of a p-value. Measured cost: with few
  blocks (12 blocks of 5 on 60 days) that shape has lighter tails than a t, and the Bayesian
  test rejects a true null somewhat more often than ``sharpe_difference``: the A/A
  calibration in :mod:`bayes_mem.evaluation.ab_calibration` measures both.

:func:`student_t_posterior` (the location of the raw daily differences under a Student-t
likelihood) is kept as a public robust estimator of a *typical day's* difference; it is not
scale-free and no longer drives the A/B verdict.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from numbers import Real

import numpy as np
from scipy import special, stats

from bayes_mem.evaluation.performance import (
    _series,
    _sr_diff_and_grad,
    deflated_sharpe_ratio,
    ewc_df,
    ewc_lrv,
    probabilistic_sharpe_ratio,
    sharpe_difference_test,
    sharpe_ratio,
)
from bayes_mem.live.validate import check_probability_open

MIN_PAIRS = 3
MIN_SHARPE_PAIRS = 10  # sharpe_difference_test's minimum
MIN_BLOCKS = 8  # the Bayesian block bootstrap keeps at least this many blocks
DEFAULT_DRAWS = 4000

# Prior on the Student-t degrees of freedom: nu - 1 ~ Exponential(mean 29) (Kruschke 2013, "BEST"),
# discretised on these nodes; each node gets the prior mass between its geometric midpoints.
NU_NODES = np.array([1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 17.0, 30.0, 60.0, 120.0])


def _nu_log_weights() -> np.ndarray:
    edges = np.sqrt(NU_NODES[:-1] * NU_NODES[1:])
    cdf = 1.0 - np.exp(-(edges - 1.0) / 29.0)
    mass = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return np.log(mass)


def _check_alpha(alpha: object) -> float:
    return check_probability_open(alpha, "alpha")


def _grid_loglik(
    d: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray, prior_sd: float
) -> np.ndarray:
    """Unnormalised log posterior on the (nu, mu, log sigma) grid, shape (K, M, S)."""
    n = d.size
    sigma = np.exp(log_sigma)
    out = np.empty((NU_NODES.size, mu.size, sigma.size))
    chunk = max(1, 2_000_000 // max(1, sigma.size * n))
    for lo in range(0, mu.size, chunk):
        sl = slice(lo, min(lo + chunk, mu.size))
        z2 = ((d[None, None, :] - mu[sl, None, None]) / sigma[None, :, None]) ** 2
        for k, nu in enumerate(NU_NODES):
            out[k, sl] = -0.5 * (nu + 1.0) * np.log1p(z2 / nu).sum(axis=-1)
    const = special.gammaln((NU_NODES + 1) / 2) - special.gammaln(NU_NODES / 2)
    const = n * (const - 0.5 * np.log(NU_NODES * math.pi))
    out += const[:, None, None] + _nu_log_weights()[:, None, None]
    out -= n * log_sigma[None, None, :]
    out -= 0.5 * (mu[None, :, None] / prior_sd) ** 2
    return out


def student_t_posterior(
    differences: object, *, level: float = 0.95, n_mu: int = 81, n_sigma: int = 41
) -> dict[str, float]:
    """Posterior of the location ``mu`` of paired differences under a Student-t likelihood
    ``d_i ~ t_nu(mu, sigma)`` (in the units of the differences).

    Priors (weakly informative, scaled by the data's standard deviation ``sd``):
    ``mu ~ Normal(0, (10 sd)^2)``; ``p(sigma) ~ 1/sigma`` (log-uniform over the grid);
    ``nu - 1 ~ Exponential(mean 29)`` discretised on :data:`NU_NODES` (1 ... 120).

    Method: exact evaluation of the log posterior on a grid in (mu, log sigma) for each nu node,
    summed with the nu prior masses. A coarse 41 x 31 grid starts from the data's mean/median +- 8
    standard errors and widens until the marginal posterior at its edges is below 1e-7 of its
    peak; the final ``n_mu`` x ``n_sigma`` grid covers the region holding the mass. ``edge_mass``
    reports the final relative edge density (small = the grid holds the posterior).

    ``mu`` is the *location* of the t model: for symmetric differences it is the mean difference;
    with skewed differences it sits nearer the median (robustness is the point of the model).

    Returns ``mean``, ``ci_low``, ``ci_high`` (equal-tailed ``level`` credible interval),
    ``prob_positive`` = P(mu > 0 | data), ``nu_mean`` (posterior mean of nu), ``edge_mass``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d = 0.002 + 0.01 * rng.standard_t(4, size=250)  # heavy-tailed daily differences
    >>> post = student_t_posterior(d)
    >>> round(post["mean"], 4), round(post["ci_low"], 4), round(post["ci_high"], 4)
    (0.002, 0.0006, 0.0035)
    >>> round(post["prob_positive"], 3), round(post["nu_mean"], 1)
    (0.997, 5.8)
    """
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size < MIN_PAIRS:
        raise ValueError(f"differences must be 1-d with >= {MIN_PAIRS} values, got shape {d.shape}")
    if not np.isfinite(d).all():
        i = int(np.argmax(~np.isfinite(d)))
        raise ValueError(f"differences must be finite, got {d[i]!r} at index {i}")
    lvl = check_probability_open(level, "level")
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        raise ValueError(
            f"all differences equal {d[0]!r}: the Student-t scale is zero, no posterior"
        )
    med = float(np.median(d))
    mad = 1.4826 * float(np.median(np.abs(d - med)))
    small = mad if mad > 0.0 else sd
    se = sd / math.sqrt(d.size)
    mean = float(d.mean())
    mu_lo, mu_hi = min(mean, med) - 8 * se, max(mean, med) + 8 * se
    ls_lo, ls_hi = math.log(small / 20.0), math.log(10.0 * sd)
    prior_sd = 10.0 * sd
    refined = False
    for _ in range(12):
        m_, s_ = (n_mu, n_sigma) if refined else (41, 31)  # coarse search, then the final grid
        mu = np.linspace(mu_lo, mu_hi, m_)
        ls = np.linspace(ls_lo, ls_hi, s_)
        lp = _grid_loglik(d, mu, ls, prior_sd)
        w = np.exp(lp - lp.max())
        pm = w.sum(axis=(0, 2))
        ps = w.sum(axis=(0, 1))
        pm_rel, ps_rel = pm / pm.max(), ps / ps.max()
        grew = False
        tol = 1e-5 if refined else 1e-7
        if pm_rel[0] > tol:
            mu_lo, grew = mu_lo - (mu_hi - mu_lo), True
        if pm_rel[-1] > tol:
            mu_hi, grew = mu_hi + (mu_hi - mu_lo), True
        if ps_rel[0] > tol:
            ls_lo, grew = ls_lo - 2.0, True
        if ps_rel[-1] > tol:
            ls_hi, grew = ls_hi + 2.0, True
        if grew:
            continue
        if refined:
            break
        im = np.flatnonzero(pm_rel > 1e-9)
        js = np.flatnonzero(ps_rel > 1e-9)
        mu_lo, mu_hi = mu[max(im[0] - 1, 0)], mu[min(im[-1] + 1, m_ - 1)]
        ls_lo, ls_hi = ls[max(js[0] - 1, 0)], ls[min(js[-1] + 1, s_ - 1)]
        refined = True
    edge = float(max(pm_rel[0], pm_rel[-1], ps_rel[0], ps_rel[-1]))
    p = pm / pm.sum()
    # cumulative distribution at the cell boundaries (each node holds the mass of its cell)
    step = mu[1] - mu[0]
    bounds = np.concatenate([[mu[0] - step / 2], mu + step / 2])
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    q_lo, q_hi = (1.0 - lvl) / 2.0, (1.0 + lvl) / 2.0
    nu_post = w.sum(axis=(1, 2))
    return {
        "mean": float(p @ mu),
        "ci_low": float(np.interp(q_lo, cdf, bounds)),
        "ci_high": float(np.interp(q_hi, cdf, bounds)),
        "prob_positive": float(1.0 - np.interp(0.0, bounds, cdf)),
        "nu_mean": float(nu_post @ NU_NODES / nu_post.sum()),
        "edge_mass": edge,
    }


# ------------------------------------------------------------------ autocorrelation-aware tools


def optimal_block_length(x: object) -> float:
    """Politis & White (2004) automatic block length for the *circular* block bootstrap of the
    mean of ``x``, with the Patton, Politis & White (2009) correction (``D_CB = 4/3 g(0)^2``).

    Flat-top lag window ``lambda(t) = 1`` for ``|t| <= 1/2``, ``2 (1 - |t|)`` up to 1; its width
    ``M = 2 m`` with ``m`` the smallest lag after which ``K_n = max(5, ceil(sqrt(log10 n)))``
    consecutive autocorrelations are all below ``2 sqrt(log10(n) / n)`` (searched up to
    ``ceil(sqrt(n)) + K_n``, the search's end if none qualifies). ``b = (2 G^2 / D_CB)^(1/3)
    n^(1/3)`` with ``G = sum_k lambda(k / M) |k| R(k)``, ``g(0) = sum_k lambda(k / M) R(k)``,
    capped at ``min(3 sqrt(n), n / 3)``. Returns a float (``0.0`` for a serially uncorrelated
    series, where ``m = 0``); callers round and floor it.

    Why not ``arch.bootstrap.optimal_block_length``: arch chooses ``m`` by its own rule and
    gives a serially uncorrelated series a length near 1 rather than 0; on 600 days (6 seeds)
    it gave 0.56-1.36 for i.i.d. noise (ours 0), 8.3-11.2 for an AR(1) with phi 0.5 (ours
    8.5-11.5) and 13.3-18.7 for an MA(4) (ours 12.8-18.0). Both round to similar blocks; the
    A/B calibration tables (``docs/evaluation``) were measured with this one, so it stays.

    Examples
    --------
    >>> import numpy as np
    >>> e = np.random.default_rng(1).standard_normal(500)
    >>> x = np.empty(500)
    >>> x[0] = e[0]
    >>> for t in range(1, 500):  # AR(1) with coefficient 0.8
    ...     x[t] = 0.8 * x[t - 1] + e[t]
    >>> round(optimal_block_length(x), 1), optimal_block_length(e)
    (36.6, 0.0)
    """
    v = _series(x, "x", min_len=MIN_SHARPE_PAIRS)
    n = v.size
    eps = v - v.mean()
    if not np.any(eps):
        raise ValueError("x is constant: its block length is undefined")
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + kn, n - 2)
    acv = np.array([eps[k:] @ eps[: n - k] / n for k in range(m_max + 1)])
    acorr = np.array(
        [
            abs(eps[k:] @ eps[: n - k])
            / math.sqrt((eps[k:] @ eps[k:]) * (eps[: n - k] @ eps[: n - k]))
            for k in range(1, m_max + 1)
        ]
    )  # acorr[j - 1] = |rho(j)|
    cv = 2.0 * math.sqrt(math.log10(n) / n)
    m_hat = None
    for m in range(0, m_max - kn + 1):
        if np.all(acorr[m : m + kn] < cv):  # rho(m + 1) ... rho(m + kn) insignificant
            m_hat = m
            break
    big_m = m_max if m_hat is None else min(2 * m_hat, m_max)
    if big_m == 0:
        return 0.0
    k = np.arange(1, big_m + 1)
    t = k / big_m
    lam = np.where(t <= 0.5, 1.0, 2.0 * (1.0 - t))
    g = 2.0 * float(np.sum(lam * k * acv[1 : big_m + 1]))
    g0 = float(acv[0] + 2.0 * np.sum(lam * acv[1 : big_m + 1]))
    if g0 <= 0.0:
        return float(min(3.0 * math.sqrt(n), n / 3.0))
    b = (2.0 * g * g / (4.0 / 3.0 * g0 * g0)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(b, 3.0 * math.sqrt(n), n / 3.0))


def _check_int(value: object, what: str, low: int) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what} must be an int >= {low}, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{what} must be >= {low}, got {value!r}")
    return int(value)


def hac_mean_test(x: object, *, nu: int | None = None) -> dict[str, float]:
    """Autocorrelation-robust t-test of ``H0: E[x] = 0``: ``t = mean / se``, ``se = sqrt(LRV /
    n)`` with the equal-weighted cosine long-run variance of ``nu`` cosines (default
    :func:`~bayes_mem.evaluation.performance.ewc_df`, ``floor(0.4 n^(2/3))``), two-sided
    p-value against Student-t with ``nu`` degrees of freedom (exact for i.i.d. normal ``x``).
    Returns ``mean``, ``se``, ``t``, ``p``, ``df``.

    Examples
    --------
    >>> import numpy as np
    >>> x = 0.001 + 0.01 * np.random.default_rng(2).standard_normal(250)
    >>> res = hac_mean_test(x)
    >>> {k: round(v, 4) for k, v in res.items()}
    {'mean': 0.0009, 'se': 0.0003, 't': 2.5269, 'p': 0.0232, 'df': 15.0}
    """
    v = _series(x, "x", min_len=MIN_PAIRS)
    n = v.size
    if nu is None:
        k = ewc_df(n)
    else:
        k = _check_int(nu, "nu", 1)
        if k > n - 1:
            raise ValueError(f"nu must be at most n - 1 = {n - 1}, got {nu!r}")
    lrv = float(ewc_lrv(v[:, None], k)[0, 0])
    if not lrv > 0.0:
        raise ValueError("the long-run variance of x is zero (constant series?): no t statistic")
    se = math.sqrt(lrv / n)
    t = float(v.mean()) / se
    p = 2.0 * float(stats.t.sf(abs(t), k))
    return {"mean": float(v.mean()), "se": se, "t": t, "p": p, "df": float(k)}


def sharpe_difference_posterior(
    test: object,
    control: object,
    *,
    level: float = 0.95,
    min_block: int = 1,
    draws: int = DEFAULT_DRAWS,
    seed: int | np.random.Generator = 0,
) -> dict[str, object]:
    """Posterior of ``SR(test) - SR(control)`` (per-period Sharpe ratios, moment form) of two
    paired pnl series by the Bayesian block bootstrap of the module docstring (blocks for the
    shape, the EWC long-run variance for the scale, a chi-square mixture for its uncertainty).

    ``min_block``: the smallest block length in periods (e.g. the holding period of overlapping
    trades); the automatic length (Politis-White on the linearised Sharpe-difference series)
    is used when larger, capped so at least :data:`MIN_BLOCKS` blocks remain (never below
    ``min_block``, which must leave 2 blocks). ``draws``: posterior draws (>= 100). ``seed``:
    an int seed or a ``numpy.random.Generator`` (same seed, same result; a Generator is
    advanced).

    Returns ``difference`` (the sample Sharpe difference), posterior ``mean``, ``median``,
    ``sd``, equal-tailed ``level`` interval ``ci_low``/``ci_high``, ``prob_positive`` = P(SR
    test > SR control), ``block_length`` (used), ``block_length_auto`` (Politis-White, before
    the floor and cap), ``blocks``, ``dirichlet_alpha``, ``scale_factor`` (LW HAC
    standard error over the raw draws' sd), ``df`` (of the scale mixture), ``draws`` (valid
    draws), ``level``, ``method``. Raises ValueError naming the bad value (lengths, constant
    series, ``min_block`` leaving < 2 blocks, ``draws`` < 100, ``level``) and TypeError for a
    non-int ``min_block``/``draws``/``seed``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> control = 0.01 * rng.standard_normal(250)
    >>> test = control + 0.001 + 0.003 * rng.standard_normal(250)
    >>> post = sharpe_difference_posterior(test, control, draws=1000, seed=0)
    >>> round(post["difference"], 3), round(post["ci_low"], 3), round(post["ci_high"], 3)
    (0.123, 0.078, 0.172)
    >>> post["prob_positive"], post["block_length"], post["blocks"]
    (1.0, 1, 250)
    """
    a = _series(test, "test", min_len=MIN_SHARPE_PAIRS)
    b = _series(control, "control", min_len=MIN_SHARPE_PAIRS)
    if a.size != b.size:
        raise ValueError(
            f"test and control must be paired (same length), got {a.size} and {b.size}"
        )
    for name, x in (("test", a), ("control", b)):
        if np.std(x) == 0.0:
            raise ValueError(f"{name} pnl is constant ({float(x[0])!r}): no Sharpe ratio")
    lvl = check_probability_open(level, "level")
    mb = _check_int(min_block, "min_block", 1)
    nd = _check_int(draws, "draws", 100)
    n = a.size
    if mb > n // 2:
        raise ValueError(f"min_block={mb} leaves fewer than 2 blocks in {n} periods")
    if isinstance(seed, np.random.Generator):
        gen = seed
    elif isinstance(seed, bool | np.bool_) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(f"seed must be an int >= 0 or a numpy Generator, got {seed!r}")
    else:
        gen = np.random.default_rng(int(seed))
    x = np.column_stack([a, b, a * a, b * b])
    mom = x.mean(axis=0)
    diff, grad = _sr_diff_and_grad(*mom)
    lin = (x - mom) @ grad
    b_auto = optimal_block_length(lin) if np.any(lin != lin[0]) else 0.0
    bl = max(mb, min(max(1, round(b_auto)), n // MIN_BLOCKS))
    k = -(-n // bl)
    alpha_d = max(k - 2, 1) / k
    offsets = gen.integers(0, n, size=nd)
    weights = gen.gamma(alpha_d, size=(nd, k))
    # block j of a draw with offset u holds days (u + j bl ... u + (j + 1) bl - 1) mod n; its
    # sums come from the cumulative sums of the series written twice (the circle unrolled)
    csum = np.vstack([np.zeros((1, 4)), np.cumsum(np.vstack([x, x]), axis=0)])
    starts = np.arange(k) * bl
    ends = np.minimum(starts + bl, n)
    sums = csum[offsets[:, None] + ends] - csum[offsets[:, None] + starts]  # (draws, k, 4)
    # every day of a block carries its block's weight: weighted moments per draw
    m = np.einsum("dk,dkf->df", weights, sums) / (weights @ (ends - starts))[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        d, _ = _sr_diff_and_grad(*m.T)
    ok = np.isfinite(d)
    if np.count_nonzero(ok) < nd // 2:
        raise ValueError("too few valid posterior draws (degenerate series)")
    # scale: rescale the draws' spread to the EWC standard error of the Sharpe difference
    # (short blocks keep too little of the dependence) and mix over the EWC estimate's
    # chi-square(nu) uncertainty
    df = ewc_df(n)
    se_ewc = math.sqrt(max(float(grad @ ewc_lrv(x - mom, df) @ grad), 0.0) / n)
    sd_draws = float(np.std(d[ok]))
    factor = se_ewc / sd_draws if se_ewc > 0 and sd_draws > 0 else 1.0
    mix = np.sqrt(df / gen.chisquare(df, size=nd))
    d = diff + (d - diff) * factor * mix
    d = d[ok]
    q_lo, q_hi = np.quantile(d, [(1.0 - lvl) / 2.0, (1.0 + lvl) / 2.0])
    return {
        "method": "bayesian block bootstrap",
        "difference": float(diff),
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "sd": float(d.std(ddof=1)),
        "ci_low": float(q_lo),
        "ci_high": float(q_hi),
        "level": lvl,
        "prob_positive": float(np.mean(d > 0.0)),
        "block_length": int(bl),
        "block_length_auto": float(b_auto),
        "blocks": int(k),
        "dirichlet_alpha": float(alpha_d),
        "scale_factor": float(factor),
        "df": float(df),
        "draws": int(d.size),
    }


def _pnl(result: object, step: int, which: str) -> float:
    if not isinstance(result, Mapping):
        raise TypeError(
            f"step {step}: {which} strategy's process() must return a mapping with 'pnl', "
            f"got {type(result).__name__}"
        )
    if "pnl" not in result:
        raise ValueError(
            f"step {step}: {which} strategy's result has no 'pnl' (keys {list(result)})"
        )
    v = result["pnl"]
    if isinstance(v, bool | np.bool_) or not isinstance(v, Real):
        raise TypeError(
            f"step {step}: {which} strategy's pnl must be a real number, "
            f"got {type(v).__name__} {v!r}"
        )
    if not math.isfinite(float(v)):
        raise ValueError(f"step {step}: {which} strategy's pnl must be finite, got {v!r}")
    return float(v)


class _Replay:
    """A recorded per-day PnL stream as a strategy: ``process(day_index)`` returns that day."""

    def __init__(self, days: list[tuple[object, float]]) -> None:
        self._days = days

    def process(self, step: int) -> dict[str, object]:
        date, pnl = self._days[step]
        return {"pnl": pnl, "date": date}


class StrategyABTest:
    """Run a control and a test strategy on the same market data and compare their per-step pnl.

    Each strategy needs a callable ``process(data) -> {'pnl': float, ...}``; ``data`` is one item
    of the market data (a bar, a day). Results accumulate over calls to :meth:`run_parallel` in
    ``self.results['control']`` / ``self.results['test']`` (the strategies' result mappings).

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> market = 0.01 * np.random.default_rng(4).standard_normal(120)  # daily returns
    >>> control = SimpleNamespace(process=lambda r: {"pnl": r})
    >>> test = SimpleNamespace(process=lambda r: {"pnl": 1.2 * r + 0.001})
    >>> ab = StrategyABTest(control, test)
    >>> ab.run_parallel(market)
    120
    >>> res = ab.statistical_significance(draws=1000)
    >>> res["paired"]["significant"], res["significant"], res["bayes"]["prob_positive"]
    (True, False, 1.0)
    >>> round(res["sharpe_control"], 2), round(res["sharpe_test"], 2)
    (-0.52, 0.82)
    """

    def __init__(self, control_strategy: object, test_strategy: object) -> None:
        for name, s in (("control_strategy", control_strategy), ("test_strategy", test_strategy)):
            if not callable(getattr(s, "process", None)):
                raise TypeError(
                    f"{name} must have a callable process(data) method, got {type(s).__name__}"
                )
        self.control = control_strategy
        self.test = test_strategy
        self.results: dict[str, list[Mapping]] = {"control": [], "test": []}

    @classmethod
    def from_engine(cls, engine: object) -> StrategyABTest:
        """The seed plan's A/B on live events: the engine's live configuration is the test, its
        shadow the control (:class:`~bayes_mem.live.engine.TradingEngine` with ``shadow=``); each
        closed day's realised PnL of both (currency) is one step, fed through
        :meth:`run_parallel`.

        Examples
        --------
        Any object with ``daily_pnl()``, ``config.name`` and ``shadow.config.name`` works; two
        closed days (PnL in currency) become two steps, the shadow as control:

        >>> from types import SimpleNamespace
        >>> days = {"live": [("2024-01-02", 5.0), ("2024-01-03", -1.0)],
        ...         "old": [("2024-01-02", 4.0), ("2024-01-03", -2.0)]}
        >>> engine = SimpleNamespace(daily_pnl=lambda: days, config=SimpleNamespace(name="live"),
        ...                          shadow=SimpleNamespace(config=SimpleNamespace(name="old")))
        >>> control, test = StrategyABTest.from_engine(engine).pnl()
        >>> control.tolist(), test.tolist()
        ([4.0, -2.0], [5.0, -1.0])
        """
        pnl = getattr(engine, "daily_pnl", None)
        if not callable(pnl) or getattr(engine, "shadow", None) is None:
            raise TypeError("from_engine needs a TradingEngine running a shadow configuration")
        streams = pnl()
        live = streams[engine.config.name]
        shadow = streams[engine.shadow.config.name]
        ab = cls(_Replay(shadow), _Replay(live))
        ab.run_parallel(range(len(live)))
        return ab

    def run_parallel(self, market_data: Iterable, time_period: int | None = None) -> int:
        """Feed each item of ``market_data`` to both strategies (control first) and store both
        results. ``time_period``: use at most the first ``time_period`` items (a positive int; a
        shorter ``market_data`` is used whole); ``None`` uses all. Returns the number of steps
        added. All or nothing: on an error (bad result at some step) nothing is stored and the
        error names the step (0-based within this call) and the strategy.

        Examples
        --------
        ``time_period=3`` uses the first three of four items:

        >>> from types import SimpleNamespace
        >>> ab = StrategyABTest(SimpleNamespace(process=lambda r: {"pnl": r}),
        ...                     SimpleNamespace(process=lambda r: {"pnl": 2.0 * r}))
        >>> ab.run_parallel([1.0, -2.0, 3.0, 4.0], time_period=3)
        3
        >>> len(ab.results["test"]), ab.results["test"][0]
        (3, {'pnl': 2.0})
        """
        if time_period is not None:
            if isinstance(time_period, bool | np.bool_) or not isinstance(
                time_period, int | np.integer
            ):
                raise TypeError(
                    f"time_period must be a positive int (number of steps) or None, "
                    f"got {type(time_period).__name__} {time_period!r}"
                )
            if time_period < 1:
                raise ValueError(f"time_period must be >= 1 step, got {time_period!r}")
        try:
            items = iter(market_data)
        except TypeError:
            raise TypeError(
                f"market_data must be iterable, got {type(market_data).__name__}"
            ) from None
        new_c: list[Mapping] = []
        new_t: list[Mapping] = []
        for step, data in enumerate(items):
            if time_period is not None and step >= time_period:
                break
            rc = self.control.process(data)
            _pnl(rc, step, "control")
            rt = self.test.process(data)
            _pnl(rt, step, "test")
            new_c.append(rc)
            new_t.append(rt)
        self.results["control"].extend(new_c)
        self.results["test"].extend(new_t)
        return len(new_c)

    def pnl(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-step pnl arrays ``(control, test)``.

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> ab = StrategyABTest(SimpleNamespace(process=lambda r: {"pnl": r}),
        ...                     SimpleNamespace(process=lambda r: {"pnl": 2.0 * r}))
        >>> ab.run_parallel([1.0, -2.0, 3.0])
        3
        >>> ab.pnl()
        (array([ 1., -2.,  3.]), array([ 2., -4.,  6.]))
        """
        c = np.array([float(r["pnl"]) for r in self.results["control"]])
        t = np.array([float(r["pnl"]) for r in self.results["test"]])
        return c, t

    def statistical_significance(
        self,
        alpha: float = 0.05,
        *,
        periods_per_year: float = 252,
        min_block: int = 1,
        draws: int = DEFAULT_DRAWS,
        seed: int | np.random.Generator = 0,
    ) -> dict[str, object]:
        """Compare test with control on the stored steps (at least 3); see the module docstring
        for what each test asks.

        - ``t_statistic``, ``p_value``, ``significant`` (the seed plan's keys): the
          independent-samples test of ``E[test] = E[control]`` with the autocorrelation-robust
          standard error ``sqrt((LRV(test) + LRV(control)) / n)`` (EWC long-run variances,
          Welch-Satterthwaite Student-t df). No longer scipy's ``ttest_ind`` (kept in
          ``classical``). It ignores the pairing by day, so it is conservative when both pnl
          share the market move. ``significant``: ``p_value < alpha``. A test of *mean pnl*:
          not scale-free.
        - ``improvement``: ``(mean(test) - mean(control)) / (std(control) + 1e-8)`` (std ddof 0),
          a standardised effect in control-sd units (the plan's).
        - ``independent``: the same test with its details ``{'t', 'p', 'mean_difference', 'se',
          'df', 'significant'}``.
        - ``paired``: ``{'t', 'p', 'mean_difference', 'se', 'df', 'significant'}``: the EWC
          test of ``E[test - control] = 0`` on the daily differences (:func:`hac_mean_test`).
          Mean pnl, not scale-free.
        - ``classical``: the i.i.d. references ``{'ttest_ind': {'t', 'p'}, 'ttest_rel': {'t',
          'p'}}`` from scipy (valid only for serially independent days).
        - ``sharpe_difference``: Ledoit-Wolf test of SR(test) = SR(control) with the EWC
          long-run covariance (per-period units, :func:`sharpe_difference_test` with
          ``method="ewc"``, fields as a dict); ``None`` with fewer than 10
          steps or a constant series (reason in ``sharpe_difference_note``).
        - ``sharpe_control``, ``sharpe_test``: annualised with ``periods_per_year`` (None if a
          series is constant).
        - ``bayes``: :func:`sharpe_difference_posterior` (scale-free, autocorrelation-aware)
          with a ``1 - alpha`` credible interval, ``min_block``, ``draws`` and ``seed`` passed
          on; ``prob_positive`` = P(SR test > SR control). ``None`` when ``sharpe_difference``
          is (reason in ``bayes_note``).

        Raises ValueError with fewer than 3 steps or when the t statistics are undefined
        (constant series), never returns NaN. Nothing is stored: the call changes no state.

        Examples
        --------
        Five steps where the test adds 0.5 on up days: the mean paired difference is
        ``1.5 / 5 = 0.3``; fewer than 10 steps leave the Sharpe tests out, with the reason:

        >>> from types import SimpleNamespace
        >>> ab = StrategyABTest(SimpleNamespace(process=lambda r: {"pnl": r}),
        ...                     SimpleNamespace(process=lambda r: {"pnl": r + 0.5 * (r > 0)}))
        >>> ab.run_parallel([0.01, -0.02, 0.03, 0.01, -0.01])
        5
        >>> res = ab.statistical_significance()
        >>> res["n"], round(res["paired"]["mean_difference"], 4), res["paired"]["significant"]
        (5, 0.3, False)
        >>> res["bayes"], res["bayes_note"]
        (None, 'needs >= 10 steps, have 5')
        """
        a = _check_alpha(alpha)
        mb = _check_int(min_block, "min_block", 1)
        nd = _check_int(draws, "draws", 100)
        c, t = self.pnl()
        if c.size < MIN_PAIRS:
            raise ValueError(
                f"need at least {MIN_PAIRS} paired steps for the tests, have {c.size} "
                f"(call run_parallel first)"
            )
        if np.std(c) == 0.0 and np.std(t) == 0.0:
            raise ValueError("both strategies' pnl are constant: the t-test is undefined")
        diff = t - c
        if np.std(diff) == 0.0:
            raise ValueError(
                f"the per-step differences are all {float(diff[0])!r}: the paired t-test is "
                "undefined"
            )
        n = c.size
        paired = hac_mean_test(diff)
        nu = ewc_df(n)
        lrv_t = float(ewc_lrv(t[:, None], nu)[0, 0])
        lrv_c = float(ewc_lrv(c[:, None], nu)[0, 0])
        se_ind = math.sqrt((lrv_t + lrv_c) / n)
        if se_ind == 0.0:
            raise ValueError("the long-run variances of both pnl are zero: no t statistic")
        t_ind = float(t.mean() - c.mean()) / se_ind
        # Welch-Satterthwaite df of the sum of the two EWC variances (nu each): nu ... 2 nu
        df_ind = (lrv_t + lrv_c) ** 2 / ((lrv_t**2 + lrv_c**2) / nu)
        p_ind = 2.0 * float(stats.t.sf(abs(t_ind), df_ind))
        ind = stats.ttest_ind(t, c)
        rel = stats.ttest_rel(t, c)
        out: dict[str, object] = {
            "t_statistic": t_ind,
            "p_value": p_ind,
            "significant": bool(p_ind < a),
            "improvement": float((np.mean(t) - np.mean(c)) / (np.std(c) + 1e-8)),
            "n": int(n),
            "independent": {
                "t": t_ind,
                "p": p_ind,
                "mean_difference": float(t.mean() - c.mean()),
                "se": se_ind,
                "df": df_ind,
                "significant": bool(p_ind < a),
            },
            "paired": {
                "t": paired["t"],
                "p": paired["p"],
                "mean_difference": paired["mean"],
                "se": paired["se"],
                "df": paired["df"],
                "significant": bool(paired["p"] < a),
            },
            "classical": {
                "ttest_ind": {"t": float(ind.statistic), "p": float(ind.pvalue)},
                "ttest_rel": {"t": float(rel.statistic), "p": float(rel.pvalue)},
            },
        }
        const = np.std(c) == 0.0 or np.std(t) == 0.0
        out["sharpe_control"] = (
            None if const else sharpe_ratio(c, periods_per_year=periods_per_year)
        )
        out["sharpe_test"] = None if const else sharpe_ratio(t, periods_per_year=periods_per_year)
        if n < MIN_SHARPE_PAIRS or const:
            note = (
                f"needs >= {MIN_SHARPE_PAIRS} steps, have {n}"
                if n < MIN_SHARPE_PAIRS
                else "a constant pnl series has no Sharpe ratio"
            )
            out["sharpe_difference"] = None
            out["sharpe_difference_note"] = note
            out["bayes"] = None
            out["bayes_note"] = note
        else:
            res = sharpe_difference_test(t, c, method="ewc", level=1.0 - a)
            out["sharpe_difference"] = dataclasses.asdict(res)
            out["bayes"] = sharpe_difference_posterior(
                t, c, level=1.0 - a, min_block=min(mb, n // 2), draws=nd, seed=seed
            )
        return out


def compare_variants(
    control_pnl: object,
    variants: Mapping[str, object],
    n_trials: int | None = None,
    *,
    trial_sr_variance: float | None = None,
    periods_per_year: float = 252,
) -> dict[str, dict[str, float]]:
    """Each variant's annualised ``sharpe``, per-period ``sharpe_per_period``, ``psr`` (P(true
    SR > 0)) and ``dsr``: the deflated Sharpe ratio for ``n_trials`` trials (default
    ``len(variants)``, the candidates tried), with the cross-trial variance of per-period Sharpe
    ratios estimated from the variants (ddof 1) unless ``trial_sr_variance`` is given. Also
    ``sharpe_diff_p``: Ledoit-Wolf HAC p-value of SR(variant) = SR(control) (paired, same
    length as ``control_pnl``; None below 10 periods). Key ``"control"`` holds the control's
    ``sharpe`` and ``psr``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> control = 0.0003 + 0.01 * rng.standard_normal(500)
    >>> variants = {"a": control + 0.0005 + 0.004 * rng.standard_normal(500),
    ...             "b": control + 0.004 * rng.standard_normal(500)}
    >>> out = compare_variants(control, variants)
    >>> {k: round(v["sharpe"], 2) for k, v in out.items()}
    {'control': 0.52, 'a': 1.24, 'b': 0.81}
    >>> {k: (round(out[k]["dsr"], 2), round(out[k]["sharpe_diff_p"], 3)) for k in variants}
    {'a': (0.94, 0.015), 'b': (0.82, 0.28)}
    """
    if not isinstance(variants, Mapping) or len(variants) == 0:
        raise ValueError(
            f"variants must be a non-empty dict name -> pnl array, got {variants!r:.80}"
        )
    c = _series(control_pnl, "control_pnl", min_len=MIN_PAIRS)
    arrs: dict[str, np.ndarray] = {}
    for name, v in variants.items():
        a = _series(v, f"variant {name!r} pnl", min_len=MIN_PAIRS)
        if a.shape != c.shape:
            raise ValueError(
                f"variant {name!r} must be paired with control (shape {c.shape}), got {a.shape}"
            )
        arrs[name] = a
    if n_trials is None:
        n = len(arrs)
    else:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer):
            raise TypeError(f"n_trials must be an int, got {type(n_trials).__name__} {n_trials!r}")
        if n_trials < len(arrs):
            raise ValueError(f"n_trials {n_trials} is below the number of variants {len(arrs)}")
        n = int(n_trials)
    srs = {k: sharpe_ratio(a, periods_per_year=1) for k, a in arrs.items()}
    if trial_sr_variance is None:
        if len(srs) >= 2:
            var = float(np.var(list(srs.values()), ddof=1))
        elif n == 1:
            var = 0.0
        else:
            raise ValueError(
                "one variant cannot estimate the cross-trial Sharpe variance: pass "
                "trial_sr_variance"
            )
    else:
        var = trial_sr_variance  # validated by deflated_sharpe_ratio
    out: dict[str, dict[str, float]] = {
        "control": {
            "sharpe": sharpe_ratio(c, periods_per_year=periods_per_year),
            "psr": probabilistic_sharpe_ratio(c),
        }
    }
    for k, a in arrs.items():
        out[k] = {
            "sharpe": sharpe_ratio(a, periods_per_year=periods_per_year),
            "sharpe_per_period": srs[k],
            "psr": probabilistic_sharpe_ratio(a),
            "dsr": deflated_sharpe_ratio(a, n, var),
            "n_trials": n,
            "sharpe_diff_p": (
                sharpe_difference_test(a, c).p_value if c.size >= MIN_SHARPE_PAIRS else None
            ),
        }
    return out
