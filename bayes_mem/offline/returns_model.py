"""Bayesian GJR-GARCH(1,1) with Hansen skewed Student-t innovations, partially pooled across
symbols (PyMC 6, nutpie): the nightly job's return model, whose draws and end-of-window variance
states the live risk path consumes (:mod:`bayes_mem.live.return_model`).

Inside the model returns are daily log returns in percent (``SCALE`` = 100, for conditioning);
:func:`draws_for_live` converts back to fractions. Per symbol i and each of *its own* days t
(symbols on different calendars are not aligned: a day one symbol did not trade is not a day of
its series, so no shock is skipped and no symbol's window shrinks to the days all share)::

    r_t = mu_i + sigma_t z_t,   z_t ~ skew-t(nu_i, lam_i), standardised (mean 0, variance 1)
    sigma2_t = omega_i + (alpha_i + gamma_i 1{e_{t-1} < 0}) e_{t-1}^2 + beta_i sigma2_{t-1}
    sigma2_0 = var0_i (given: the caller's start-up variance, e.g. the sample variance)

Parameterisation and priors (the table ``PRIORS``, read by :func:`build_returns_model`, the config
hash through :func:`priors_json`, and the simulation-based calibration's prior draws)::

    kappa_i = E[z^2 1{z < 0}] under skew-t(nu_i, lam_i)       (closed form: kappa_pt)
    persistence pi_i = alpha + kappa gamma + beta = logistic(pi0 + s_pi u_i),  u_i ~ N(0, 1)
    shock share  q_i = (alpha + kappa gamma) / pi_i ~ Beta(2, 12)
    asymmetry    g_i = kappa (alpha + gamma) / (alpha + kappa gamma) ~ Beta(3, 1.5)
    long-run variance v_i ~ LogNormal(log vref_i, 1);  omega = v (1 - pi)
    tail weight  nu_i = 2.1 + exp(n0 + s_nu w_i),  w_i ~ N(0, 1)
    skew         lam_i = tanh(l0 + s_lam x_i),     x_i ~ N(0, 1)
    mu_i ~ Normal(0, 0.1)   (percent per day)
    pi0 ~ N(logit 0.97, 1), n0 ~ N(log 4, 0.7), l0 ~ N(0, 0.3),
    s_pi ~ Gamma(2, rate 8), s_nu ~ Gamma(2, rate 10), s_lam ~ Gamma(2, rate 20)

``E[sigma2_{t+1}] = omega + pi E[sigma2_t]`` with the skew-t's own ``kappa`` (0.537 at nu = 6,
lam = -0.1; 1/2 only without skew), so ``pi < 1`` is exactly covariance stationarity and ``v`` is
exactly the long-run variance the prior centres on ``vref``; with the symmetric weight 1/2 the
prior's ``v`` was not the model's long-run variance and draws near pi = 1 were non-stationary.
The asymmetry ``g`` is the share of the shock term carried by negative shocks: the shock term is
``(1 - kappa) alpha + kappa (alpha + gamma)``, so ``g`` in (0, 1) is exactly ``alpha >= 0`` and
``alpha + gamma >= 0`` (non-negative news impact of either sign), ``g = kappa`` is ``gamma = 0``
and ``g < kappa`` a negative ``gamma``: the inverse leverage effect of commodities (WTI
1987-1991 and 1993-1997) is inside the model. The Beta(3, 1.5) prior has mean 2/3 (leverage, as
in equities) and puts 0.26 on ``g < 1/2``.

The pooling scales have zero-avoiding Gamma(2, .) priors (Chung et al. 2013): with half-normal
ones, symbols with nearly identical dynamics and long histories pushed the scales toward zero and
the non-centred geometry produced divergences (measured: 1-2 per 1,000 draws on 3 identical
simulated symbols x 1,500 days).

``vref`` (the prior's centre for the long-run variance) and ``var0`` are inputs, not parameters:
the job passes each symbol's sample variance; simulation-based calibration passes the values its
simulator used.

Ragged histories. Symbol i's ``n_i`` returns are stored right-aligned in a (T, N) array, T =
max n_i: its last return on the last row, the ``T - n_i`` rows above its first return padding
(``first_i = T - n_i``). The recursion's drive is 0 before ``first_i``, ``var0_i`` at it and
``omega + shock`` after, and the padding's log-density is masked out, so each symbol's
likelihood is exactly that of its own series and every symbol's end-of-window state is on the
last row.

The likelihood (``likelihood="op"``, the default) is one PyTensor Op,
:mod:`bayes_mem.offline.garch_logp`: the variance recursion, the skew-t log-density and their
reverse-mode adjoint in one numba kernel, which nutpie's numba backend calls directly (issue 17:
~4x cheaper per gradient than the graph, compiled once per machine). The reference,
``likelihood="graph"``, writes the same likelihood as a PyTensor graph: the variance recursion is
linear in ``sigma2`` given the returns, with a constant coefficient ``beta`` per symbol, so it is
evaluated without ``scan``: a log-depth prefix scan (``K`` = ceil(log2 T) doubling steps ``s_t +=
beta^d s_{t-d}``, d = 1, 2, 4, ...), exact, vectorised over days and symbols. Tests hold the two
equal (value to 1e-9, gradient, end-of-window state).

:class:`PooledReturnsFitter` compiles once per number of symbols (and doubling depth, for the
graph) and refits by swapping data (``compiled.with_data``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_mem.live.deprecation import renamed_module_attributes, warn_renamed
from bayes_mem.live.gjr_garch import NU_MIN
from bayes_mem.offline.progress import fit_progress

log = logging.getLogger("bayes_mem.returns_model")

SCALE = 100.0  # fractions -> percent inside the model


@dataclass(frozen=True)
class Prior:
    """One prior: a PyMC distribution name and its parameters by PyMC's names. A string value
    names a model input (``"log vref"``) given to :meth:`rv` in ``data``.

    Examples
    --------
    >>> prior = Prior("Gamma", {"alpha": 2.0, "beta": 8.0})  # shape, rate: mean 2 / 8
    >>> round(float(prior.sample(np.random.default_rng(0), 100_000).mean()), 3)
    0.25
    >>> prior.to_list()
    ['Gamma', {'alpha': 2.0, 'beta': 8.0}]
    >>> var = Prior("LogNormal", {"mu": "log vref", "sigma": 1.0})  # "log vref": a model input
    >>> var.sample(np.random.default_rng(0), 3, log_vref=math.log(1.5)).round(3).tolist()
    [1.701, 1.314, 2.846]
    """

    dist: str
    params: Mapping[str, float | str] = field(default_factory=dict)

    def rv(self, name: str, data: Mapping[str, Any] | None = None, **kwargs: Any):
        """The PyMC random variable (inside a model context).

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model() as model:
        ...     s_pi = PRIORS["s_pi"].rv("s_pi")
        >>> model.free_RVs, s_pi.owner.op.name
        ([s_pi], 'gamma')
        """
        import pymc as pm

        args = {k: (data or {})[v] if isinstance(v, str) else v for k, v in self.params.items()}
        return getattr(pm, self.dist)(name, **args, **kwargs)

    def sample(
        self, rng: np.random.Generator, size: int | None = None, **data: float
    ) -> np.ndarray:
        """Draws from the prior with numpy (``data`` resolves string parameters by name).

        Examples
        --------
        A Beta(2, 12) prior (the shock share) has mean 2 / 14 = 0.1429:

        >>> round(float(PRIORS["shock_share"].sample(np.random.default_rng(0), 100_000).mean()), 3)
        0.143
        """
        p = {k: data[v.replace(" ", "_")] if isinstance(v, str) else v
             for k, v in self.params.items()}  # fmt: skip
        if self.dist == "Normal":
            return rng.normal(p["mu"], p["sigma"], size)
        if self.dist == "Gamma":
            return rng.gamma(p["alpha"], 1.0 / p["beta"], size)
        if self.dist == "Beta":
            return rng.beta(p["alpha"], p["beta"], size)
        if self.dist == "LogNormal":
            return np.exp(rng.normal(p["mu"], p["sigma"], size))
        raise ValueError(f"no numpy sampler for a {self.dist} prior")

    def to_list(self) -> list[Any]:
        """``[dist, params]`` with the parameters sorted by name: the prior as plain JSON data.

        Examples
        --------
        >>> PRIORS["asymmetry"].to_list()
        ['Beta', {'alpha': 3.0, 'beta': 1.5}]
        """
        return [self.dist, dict(sorted(self.params.items()))]

    def to_json(self) -> list[Any]:
        """Deprecated alias of :meth:`to_list` (it never returned JSON text).

        Examples
        --------
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = PRIORS["asymmetry"].to_json()
        >>> out == PRIORS["asymmetry"].to_list(), caught[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("Prior.to_json()", "Prior.to_list()")
        return self.to_list()


# The returns model's priors, written once (module docstring): build_returns_model, the config
# hash (priors_json) and the calibration tests' prior draws all read this table.
PRIORS: dict[str, Prior] = {
    "pi0": Prior("Normal", {"mu": math.log(0.97 / 0.03), "sigma": 1.0}),
    "s_pi": Prior("Gamma", {"alpha": 2.0, "beta": 8.0}),  # shape, rate: mean 0.25, zero-avoiding
    "shock_share": Prior("Beta", {"alpha": 2.0, "beta": 12.0}),
    "asymmetry": Prior("Beta", {"alpha": 3.0, "beta": 1.5}),
    "long_run_var": Prior("LogNormal", {"mu": "log vref", "sigma": 1.0}),
    "n0": Prior("Normal", {"mu": math.log(4.0), "sigma": 0.7}),
    "s_nu": Prior("Gamma", {"alpha": 2.0, "beta": 10.0}),
    "l0": Prior("Normal", {"mu": 0.0, "sigma": 0.3}),
    "s_lam": Prior("Gamma", {"alpha": 2.0, "beta": 20.0}),
    "mu_pct": Prior("Normal", {"mu": 0.0, "sigma": 0.1}),
}


def priors_json() -> dict[str, Any]:
    """The priors as plain JSON (config hash, fit attrs), with the tail weight's floor.

    Examples
    --------
    >>> doc = priors_json()
    >>> doc["s_pi"], doc["nu_min"]
    (['Gamma', {'alpha': 2.0, 'beta': 8.0}], 2.1)
    """
    return {**{k: p.to_list() for k, p in PRIORS.items()}, "nu_min": NU_MIN}


# what the diagnostics gate checks on this model (free parameters and the per-symbol parameters
# the live path uses)
GATED_VARS = [
    "pi0", "s_pi", "n0", "s_nu", "l0", "s_lam",
    "persistence", "shock_share", "asymmetry", "long_run_var", "nu", "lam", "mu_pct",
]  # fmt: skip


# build_returns_model's likelihood implementations: the numba Op (default) and the reference graph
LIKELIHOODS = ("op", "graph")


def doubling_depth(n_days: int) -> int:
    """Number of doubling steps that make the prefix scan exact for ``n_days`` days.

    Examples
    --------
    >>> [doubling_depth(n) for n in (1, 2, 3, 1024, 1025)]  # ceil(log2 n), at least 1
    [1, 1, 2, 10, 11]
    """
    return max(1, math.ceil(math.log2(max(n_days, 2))))


def hansen_constants(nu, lam):
    """Hansen's skew-t constants ``(log c, a, b)`` (pytensor expressions).

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from bayes_mem.live.skewt import SkewT
    >>> log_c, a, b = hansen_constants(pt.as_tensor(6.0), pt.as_tensor(-0.1))
    >>> round(float(a.eval()), 4), round(float(b.eval()), 4)
    (-0.15, 1.0037)
    >>> st = SkewT.from_params(np.array(6.0), np.array(-0.1))  # the live path's numpy constants
    >>> round(float(st.a), 4), round(float(st.b), 4)
    (-0.15, 1.0037)
    """
    import pytensor.tensor as pt

    log_c = pt.gammaln((nu + 1) / 2) - pt.gammaln(nu / 2) - 0.5 * pt.log(np.pi * (nu - 2))
    a = 4.0 * lam * pt.exp(log_c) * (nu - 2) / (nu - 1)
    b = pt.sqrt(1.0 + 3.0 * lam**2 - a**2)
    return log_c, a, b


def hansen_logp(z, nu, lam):
    """Log density of Hansen's standardised skewed t at ``z`` (pytensor expressions).

    Examples
    --------
    >>> from bayes_mem.live.skewt import SkewT
    >>> round(float(hansen_logp(0.5, 6.0, -0.1).eval()), 4)
    -0.8852
    >>> st = SkewT.from_params(np.array(6.0), np.array(-0.1))  # the live path's density
    >>> round(float(np.log(st.pdf(np.array(0.5)))), 4)
    -0.8852
    """
    import pytensor.tensor as pt

    log_c, a, b = hansen_constants(nu, lam)
    side = pt.switch(b * z + a < 0, 1.0 - lam, 1.0 + lam)
    u = (b * z + a) / side
    return pt.log(b) + log_c - (nu + 1) / 2 * pt.log1p(u**2 / (nu - 2))


def kappa_pt(nu, lam):
    """``E[z^2 1{z < 0}]`` under Hansen's standardised skew-t (pytensor, differentiable).

    Derived independently of :func:`bayes_mem.live.skewt.asymmetry_weight` (tested equal): write
    ``z = (W - a) / b`` with ``W = -(1 - lam) V`` w.p. ``(1 - lam) / 2`` and ``(1 + lam) V``
    otherwise, ``V = |T| / k`` (T ~ t(nu), ``k = sqrt(nu / (nu - 2))``). For ``lam = -l <= 0``,
    ``z < 0`` is the negative branch beyond ``V > v0 = |a| / s`` (``s = 1 + l``)::

        kappa = s / (2 b^2) (s^2 E2(v0) - 2 s |a| E1(v0) + a^2 P(v0))

    with ``P(v) = P(V > v) = 2 F(-tau)``, ``E1(v) = E[V 1{V > v}] = 2 (nu + tau^2) f(tau) /
    ((nu - 1) k)``, ``E2(v) = E[V^2 1{V > v}] = 2 F(-tau) + 2 tau (nu + tau^2) f(tau) / nu``,
    ``tau = k v`` (F, f the t(nu) CDF and density; ``2 F(-tau) = 1 - I_x(1 / 2, nu / 2)``,
    ``x = tau^2 / (nu + tau^2)``). For ``lam > 0`` reflection gives ``1 - kappa(nu, -lam)``.

    Examples
    --------
    >>> import pytensor.tensor as pt
    >>> from bayes_mem.live.skewt import asymmetry_weight
    >>> round(float(kappa_pt(pt.as_tensor(6.0), pt.as_tensor(-0.1)).eval()), 4)
    0.5372
    >>> round(float(asymmetry_weight(6.0, -0.1)), 4)  # the live path's numpy version
    0.5372
    """
    import pytensor.tensor as pt

    ell = pt.switch(lam <= 0, -lam, lam)  # |lam|, with the gradient of -lam at 0
    s = 1.0 + ell
    log_c = pt.gammaln((nu + 1) / 2) - pt.gammaln(nu / 2) - 0.5 * pt.log(np.pi * nu)
    k = pt.sqrt(nu / (nu - 2.0))
    a = 4.0 * ell * pt.exp(log_c) * k * (nu - 2.0) / (nu - 1.0)  # |a|
    b2 = 1.0 + 3.0 * ell**2 - a**2
    tau = k * a / s
    f = pt.exp(log_c - (nu + 1) / 2 * pt.log1p(tau**2 / nu))
    # 2 F(-tau) = 1 - I_x(1/2, nu/2), x = tau^2 / (nu + tau^2). Near tau = 0 (lam ~ 0) the
    # incomplete beta's gradient is NaN (x = 0) or loses the dx/dtau = 0 limit: there the Taylor
    # form 1 - 2 f(0) tau (error O(tau^3) < 1e-12) gives the value and the right gradient
    near = tau < 1e-4
    x = pt.switch(near, 0.5, tau**2 / (nu + tau**2))
    tail = pt.switch(near, 1.0 - 2.0 * pt.exp(log_c) * tau, 1.0 - pt.betainc(0.5, nu / 2, x))
    e1 = 2.0 * (nu + tau**2) * f / ((nu - 1.0) * k)
    e2 = tail + 2.0 * tau * (nu + tau**2) * f / nu
    lower = s / (2.0 * b2) * (s**2 * e2 - 2.0 * s * a * e1 + a**2 * tail)
    return pt.switch(lam <= 0, lower, 1.0 - lower)


def _prefix_filter(drive, beta, depth: int):
    """``s_t = sum_j beta^j drive_{t-j}`` along axis 0 by ``depth`` doubling steps."""
    import pytensor.tensor as pt

    s = drive
    for k in range(depth):
        d = 2**k
        s = pt.inc_subtensor(s[d:], beta**d * s[:-d])
    return s


def build_returns_model(
    returns_pct: np.ndarray,
    symbols: list[str],
    var0: np.ndarray,
    vref: np.ndarray,
    first: np.ndarray | None = None,
    likelihood: str = "op",
):
    """The PyMC model for a (T, symbols) array of daily log returns in percent, each column
    right-aligned with its first ``first[i]`` rows padding (default: none; module docstring).

    ``likelihood``: ``"op"`` (default) evaluates the variance recursion and the skew-t
    log-density, with its gradient, in one numba kernel (:mod:`bayes_mem.offline.garch_logp`);
    ``"graph"`` is the reference, the same likelihood as a PyTensor graph (prefix scan).

    Examples
    --------
    >>> r_pct = np.random.default_rng(0).standard_normal((100, 2))  # daily log returns, percent
    >>> model = build_returns_model(r_pct, ["SPY", "QQQ"], r_pct.var(axis=0), r_pct.var(axis=0))
    >>> model.coords["symbol"], sorted(v.name for v in model.free_RVs)[:6]
    (('SPY', 'QQQ'), ['asymmetry', 'l0', 'long_run_var', 'mu_pct', 'n0', 'pi0'])
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
    import pymc as pm
    import pytensor.tensor as pt

    r = np.asarray(returns_pct, dtype=float)
    n_days = r.shape[0]
    first = np.zeros(r.shape[1], dtype=np.int64) if first is None else np.asarray(first)
    depth = doubling_depth(n_days)
    with pm.Model(coords={"symbol": symbols}) as model:
        data = pm.Data("returns_pct", r)
        v0 = pm.Data("var0", np.asarray(var0, dtype=float))
        log_vref = pm.Data("log_vref", np.log(np.asarray(vref, dtype=float)))
        start = pm.Data("first", first.astype(np.int64))
        pi0 = PRIORS["pi0"].rv("pi0")
        s_pi = PRIORS["s_pi"].rv("s_pi")
        u = pm.Normal("u", 0.0, 1.0, dims="symbol")
        persistence = pm.Deterministic(
            "persistence", pm.math.invlogit(pi0 + s_pi * u), dims="symbol"
        )
        share = PRIORS["shock_share"].rv("shock_share", dims="symbol")
        asym = PRIORS["asymmetry"].rv("asymmetry", dims="symbol")
        long_run = PRIORS["long_run_var"].rv("long_run_var", {"log vref": log_vref}, dims="symbol")
        n0 = PRIORS["n0"].rv("n0")
        s_nu = PRIORS["s_nu"].rv("s_nu")
        w = pm.Normal("w", 0.0, 1.0, dims="symbol")
        nu = pm.Deterministic("nu", NU_MIN + pm.math.exp(n0 + s_nu * w), dims="symbol")
        l0 = PRIORS["l0"].rv("l0")
        s_lam = PRIORS["s_lam"].rv("s_lam")
        x = pm.Normal("x", 0.0, 1.0, dims="symbol")
        lam = pm.Deterministic("lam", pt.tanh(l0 + s_lam * x), dims="symbol")
        garch_likelihood(
            data, start, v0, persistence, share, asym, long_run, nu, lam, likelihood, depth
        )
    return model


def garch_likelihood(
    data, start, v0, persistence, share, asym, long_run, nu, lam, likelihood: str, depth: int
) -> None:
    """The GJR-GARCH skew-t part of a returns model, inside its model context: the mean
    ``mu_pct`` (its prior), the deterministic GJR parameters, ``last_sigma2_pct`` and the
    likelihood, from the per-symbol persistence, shock share, asymmetry, long-run variance,
    tail weight and skew (module docstring). Shared by :func:`build_returns_model` and the
    fan-out's per-symbol model (:mod:`bayes_mem.offline.fanout`).

    Examples
    --------
    It adds the mean, the GJR parameters, the last variance and the likelihood to the model in
    context; :func:`build_returns_model` calls it (building takes well under a second):

    >>> r_pct = np.random.default_rng(0).standard_normal((50, 1))  # daily log returns, percent
    >>> model = build_returns_model(r_pct, ["SPY"], r_pct.var(axis=0), r_pct.var(axis=0))
    >>> added = ["mu_pct", "kappa", "alpha", "gamma", "beta", "omega_pct", "last_sigma2_pct",
    ...          "loglik"]
    >>> all(name in model.named_vars for name in added)
    True
    """
    import pymc as pm
    import pytensor.tensor as pt

    mu = PRIORS["mu_pct"].rv("mu_pct", dims="symbol")
    kappa = pm.Deterministic("kappa", kappa_pt(nu, lam), dims="symbol")
    shock_part = persistence * share  # alpha + kappa gamma
    alpha = pm.Deterministic("alpha", (1 - asym) * shock_part / (1 - kappa), dims="symbol")
    gamma = pm.Deterministic("gamma", asym * shock_part / kappa - alpha, dims="symbol")
    beta = pm.Deterministic("beta", persistence * (1 - share), dims="symbol")
    omega = pm.Deterministic("omega_pct", long_run * (1 - persistence), dims="symbol")
    if likelihood == "op":
        from bayes_mem.offline.garch_logp import garch_last_sigma2, garch_skewt_logp

        log_c, a, b = hansen_constants(nu, lam)
        params = (mu, omega, alpha, gamma, beta)
        ll, _ = garch_skewt_logp(data, start, v0, *params, nu, lam, a, b)
        n_obs = data.shape[0] - start  # each symbol's own days
        last = garch_last_sigma2(data, start, v0, *params)
        pm.Deterministic("last_sigma2_pct", last, dims="symbol")
        pm.Potential("loglik", (ll + n_obs * (pt.log(b) + log_c)).sum())
        return
    eps = data - mu
    shock = (alpha + gamma * (eps < 0)) * eps**2
    rows = pt.arange(data.shape[0])[:, None]  # the data's days: refits change them
    observed = rows >= start[None, :]
    shock_prev = pt.concatenate([pt.zeros_like(shock[:1]), shock[:-1]], axis=0)
    drive = pt.switch(
        pt.eq(rows, start[None, :]),
        v0[None, :] * pt.ones_like(shock),
        pt.switch(observed, omega + shock_prev, 0.0),
    )  # drives sigma2_t: 0 on the padding, var0 at each symbol's first return
    sig2 = pt.switch(observed, _prefix_filter(drive, beta, depth), 1.0)  # 1: padding
    pm.Deterministic("last_sigma2_pct", omega + shock[-1] + beta * sig2[-1], dims="symbol")
    loglik = hansen_logp(eps / pt.sqrt(sig2), nu, lam) - 0.5 * pt.log(sig2)
    pm.Potential("loglik", pt.switch(observed, loglik, 0.0).sum())


def columns(returns: Any) -> list[np.ndarray]:
    """Per-symbol series of daily log returns from a (days, symbols) array or a sequence of 1-d
    arrays (one per symbol, each on its own dates).

    Examples
    --------
    >>> [c.tolist() for c in columns(np.arange(6.0).reshape(3, 2))]  # (days, symbols)
    [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]]
    >>> [c.tolist() for c in columns([np.array([0.01, -0.02]), [0.03]])]  # own dates each
    [[0.01, -0.02], [0.03]]
    """
    if isinstance(returns, np.ndarray) and returns.ndim == 2:
        return [returns[:, j].astype(float) for j in range(returns.shape[1])]
    if isinstance(returns, np.ndarray) or not isinstance(returns, Sequence):
        raise ValueError(
            "returns must be a (days, symbols) array or one 1-d array per symbol, got "
            f"{type(returns).__name__} of shape {np.shape(returns)}"
        )
    return [np.asarray(c, dtype=float) for c in returns]


def right_aligned(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (T, N) right-aligned array (padding 0) and each column's first row.

    Examples
    --------
    >>> out, first = right_aligned([np.array([0.01, -0.02, 0.005]), np.array([0.03])])
    >>> out.tolist(), first.tolist()
    ([[0.01, 0.0], [-0.02, 0.0], [0.005, 0.03]], [0, 2])
    """
    n_days = max(c.size for c in cols)
    out = np.zeros((n_days, len(cols)))
    first = np.array([n_days - c.size for c in cols], dtype=np.int64)
    for j, c in enumerate(cols):
        out[first[j] :, j] = c
    return out, first


def _validated(returns: Any, symbols: list[str]) -> list[np.ndarray]:
    cols = columns(returns)
    if len(cols) != len(symbols) or not cols:
        raise ValueError(
            f"returns must be a (days >= 2, symbols) array or one series per symbol, matching "
            f"{len(symbols)} symbols, got {len(cols)} series"
        )
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"duplicate symbols in {symbols!r}")
    for symbol, c in zip(symbols, cols, strict=True):
        if c.ndim != 1 or c.size < 2:
            raise ValueError(
                f"returns must be a (days >= 2, symbols) array or 1-d series of >= 2 days: "
                f"{symbol!r} has shape {c.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(c))
        if bad.size:
            t = bad[0]
            raise ValueError(f"returns must be finite: {float(c[t])!r} at day {t} of {symbol!r}")
        if c.var() <= 0:
            raise ValueError(f"constant returns for {symbol!r}: no volatility to model")
    return cols


class PooledReturnsFitter:
    """Compile-once, refit-many fitter of the pooled returns model (nutpie). One compiled model
    per number of symbols (and doubling depth, with the reference ``likelihood="graph"``); the
    day counts may change freely (within a depth). Formerly ``ReturnsModel`` (too close to the
    live path's :class:`~bayes_mem.live.return_model.ReturnModel`, the model it publishes for);
    the old name is a deprecated alias.

    Examples
    --------
    >>> PooledReturnsFitter().likelihood, PooledReturnsFitter("graph").likelihood
    ('op', 'graph')
    >>> try:
    ...     PooledReturnsFitter("exact")
    ... except ValueError as exc:
    ...     print(exc)
    likelihood must be one of ('op', 'graph'), got 'exact'
    """

    def __init__(self, likelihood: str = "op") -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        self.likelihood = likelihood
        self._compiled: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    def compiled(
        self,
        r_pct: np.ndarray,
        symbols: list[str],
        var0: np.ndarray,
        vref: np.ndarray,
        first: np.ndarray | None = None,
    ):
        """The model compiled by nutpie (cached per number of symbols and depth), with these data
        set.

        Examples
        --------
        Compiling takes seconds, so it is not run here; inputs are in percent (``SCALE``) units:

        >>> r_pct = np.random.default_rng(0).standard_normal((250, 2))  # daily log returns, percent
        >>> var = r_pct.var(axis=0)
        >>> fitter = PooledReturnsFitter()
        >>> compiled = fitter.compiled(r_pct, ["SPY", "QQQ"], var, var)  # doctest: +SKIP
        """
        from bayes_mem.offline.compile_cache import compile_model

        first = np.zeros(r_pct.shape[1], dtype=np.int64) if first is None else first
        depth = doubling_depth(r_pct.shape[0]) if self.likelihood == "graph" else 0
        key = (r_pct.shape[1], depth)
        with self._lock:
            if key not in self._compiled:
                t0 = time.perf_counter()
                # built on placeholder data, never the first fit's: the compiled model keeps its
                # build-time data for the sampler's initial point, so a fit's draws would depend
                # on which fit of the process compiled it (measured: the same data and seed gave
                # other draws after another fit); all 1s, the returns alternating +-1 percent
                ones = np.ones(r_pct.shape[1])
                model = build_returns_model(np.resize([1.0, -1.0], r_pct.shape), symbols, ones,
                                            ones, None, self.likelihood)  # fmt: skip
                self._compiled[key] = compile_model(model)
                log.info("compiled returns model %s in %.1f s", key, time.perf_counter() - t0)
            base = self._compiled[key]
        return base.with_data(returns_pct=r_pct, var0=var0, log_vref=np.log(vref), first=first)

    def fit(
        self,
        returns: Any,
        symbols: list[str],
        *,
        var0: np.ndarray | None = None,
        vref: np.ndarray | None = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.9,
        seed: int = 0,
        progress: bool = True,
    ):
        """Posterior DataTree for daily log returns (fractions): a (days, symbols) array, or one
        1-d series per symbol, each on its own dates (lengths may differ; each symbol's last
        return is its end of window). ``var0`` and ``vref`` (fractions squared, per symbol)
        default to each series' sample variance.

        Examples
        --------
        Sampling takes seconds to minutes, so it is not run here (:func:`fit_gated` shows the flow
        with a stand-in fitter):

        >>> returns = 0.01 * np.random.default_rng(0).standard_normal((250, 2))  # fractions
        >>> tree = PooledReturnsFitter().fit(returns, ["SPY", "QQQ"], draws=500)  # doctest: +SKIP
        >>> list(tree["posterior"]["symbol"].values)  # doctest: +SKIP
        ['SPY', 'QQQ']
        """
        import nutpie

        symbols = [str(s) for s in symbols]
        cols = [c * SCALE for c in _validated(returns, symbols)]
        r_pct, first = right_aligned(cols)
        sample_var = np.array([c.var() for c in cols])
        var0 = sample_var if var0 is None else _positive(var0, "var0", len(symbols)) * SCALE**2
        vref = sample_var if vref is None else _positive(vref, "vref", len(symbols)) * SCALE**2
        compiled = self.compiled(r_pct, symbols, var0, vref, first)
        label = f"returns fit {len(symbols)} symbols x {r_pct.shape[0]} days"
        tree = nutpie.sample(
            compiled, draws=draws, tune=tune, chains=chains, seed=seed,
            target_accept=target_accept, progress_bar=False,
            progress_callback=fit_progress(label) if progress else None,
        )  # fmt: skip
        tree["posterior"] = tree["posterior"].to_dataset().assign_coords(symbol=symbols)
        return tree


def _positive(values: Any, name: str, n: int) -> np.ndarray:
    v = np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{name} must be finite and > 0 per symbol, got {v!r}")
    return v


_DEFAULT = PooledReturnsFitter()


def default_model() -> PooledReturnsFitter:
    """The process-wide compile cache.

    Examples
    --------
    >>> default_model() is default_model(), default_model().likelihood
    (True, 'op')
    """
    return _DEFAULT


def _flat(tree) -> dict[str, np.ndarray]:
    post = tree["posterior"]
    names = ("mu_pct", "omega_pct", "alpha", "gamma", "beta", "nu", "lam", "last_sigma2_pct")
    return {
        k: post[k].stack(sample=("chain", "draw")).transpose("sample", "symbol").values
        for k in names
    }


def _symbol_draws(flat: dict[str, np.ndarray], pick: np.ndarray, j: int):
    """(GarchDraws in fraction units, state after the last *fitted* return) of symbol ``j``."""
    from bayes_mem.live.gjr_garch import GarchDraws

    d = GarchDraws(
        mu=flat["mu_pct"][pick, j] / SCALE,
        omega=flat["omega_pct"][pick, j] / SCALE**2,
        alpha=flat["alpha"][pick, j],
        gamma=flat["gamma"][pick, j],
        beta=flat["beta"][pick, j],
        nu=flat["nu"][pick, j],
        lam=flat["lam"][pick, j],
    )
    return d, flat["last_sigma2_pct"][pick, j] / SCALE**2


def holdout_returns(tree) -> dict[str, np.ndarray]:
    """Per symbol the returns held out of the fit (its last days; empty without a holdout).

    Examples
    --------
    >>> import xarray as xr
    >>> held = xr.Dataset({"returns": (("day", "symbol"), [[0.01], [-0.02]])},
    ...                   coords={"symbol": ["SPY"]})
    >>> holdout_returns(xr.DataTree.from_dict({"holdout": held}))
    {'SPY': array([ 0.01, -0.02])}
    >>> holdout_returns(xr.DataTree())  # a fit without a holdout
    {}
    """
    if "holdout" not in tree.children:
        return {}
    h = tree["holdout"].to_dataset()["returns"]
    return {str(s): np.asarray(h.sel(symbol=s).values, float) for s in h["symbol"].values}


def draws_for_live(
    tree, n_draws: int, rng: np.random.Generator, *, replace: bool = False
) -> dict[str, tuple]:
    """Per symbol: (GarchDraws in fraction units, next-day variance per draw), ``n_draws``
    posterior draws taken without replacement (``replace``: with, and then any number; the
    same draws for every symbol, so the joint posterior is kept). A fit with held-out days
    (:func:`fit_holdout`) has its state filtered forward through them, so the variance is
    always the one after the symbol's last return.

    Examples
    --------
    A stand-in posterior of one symbol (2 chains x 100 draws around typical values, percent
    units); three draws for the live path, in fractions (a next-day variance of 0.3 percent
    squared is 3e-5):

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (2, 100, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> draws, sigma2 = draws_for_live(xr.DataTree.from_dict({"posterior": post}), 3, rng)["SPY"]
    >>> len(draws.nu), bool(np.all(np.abs(sigma2 / 3e-5 - 1) < 0.06))
    (3, True)
    """
    from bayes_mem.live.gjr_garch import variance_path

    flat = _flat(tree)
    total = flat["nu"].shape[0]
    if not 0 < n_draws <= (np.inf if replace else total):
        raise ValueError(f"n_draws must be in 1..{total}, got {n_draws!r}")
    pick = rng.choice(total, n_draws, replace=replace)
    held = holdout_returns(tree)
    out = {}
    for j, symbol in enumerate(tree["posterior"].coords["symbol"].values):
        d, last = _symbol_draws(flat, pick, j)
        h = held.get(str(symbol))
        if h is not None and h.size:
            last = variance_path(h, d, last)[:, -1]
        out[str(symbol)] = (d, last)
    return out


def _tail_stats(x: np.ndarray) -> np.ndarray:
    """Statistics of return series, one per row of ``x`` (R, T) (or a 1-d series): left tail
    (1% quantile in standard deviations), right tail (99%), volatility clustering (lag-1
    autocorrelation of squared demeaned returns); shape (R, 3)."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    x = x - x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1)
    lo, hi = np.quantile(x, [0.01, 0.99], axis=1)
    sq = x**2
    sq = sq - sq.mean(axis=1, keepdims=True)
    ac = (sq[:, 1:] * sq[:, :-1]).sum(axis=1) / (sq**2).sum(axis=1)
    return np.stack([lo / sd, hi / sd, ac], axis=1)


def skewt_draws(nu: np.ndarray, lam: np.ndarray, shape: tuple[int, ...], gen) -> np.ndarray:
    """Draws of Hansen's standardised skew-t, per-draw parameters ``nu``, ``lam`` broadcast
    over the last axis of ``shape``: ``z = (s t / k - a) / b`` with ``t = -|T|`` (the left
    half, probability (1 - lam) / 2, s = 1 - lam) or ``|T|`` (s = 1 + lam), T ~ t(nu) (the
    inverse of :meth:`bayes_mem.live.skewt.SkewT.ppf` applied to its uniform; ~6x faster than
    inverting the t CDF).

    Examples
    --------
    >>> z = skewt_draws(np.array([6.0, 8.0]), np.array([-0.1, 0.0]), (200_000, 2),
    ...                 np.random.default_rng(0))
    >>> bool(np.all(np.abs(z.mean(axis=0)) < 0.01)), z.std(axis=0).round(2).tolist()  # standardised
    (True, [1.0, 1.0])
    """
    from bayes_mem.live.skewt import SkewT

    st = SkewT.from_params(nu, lam)
    t = np.abs(gen.standard_t(np.broadcast_to(st.nu, shape)))
    left = gen.random(shape) < (1.0 - st.lam) / 2
    side = np.where(left, -(1.0 - st.lam), 1.0 + st.lam)
    return (side * t / st.k - st.a) / st.b


def simulate_paths(draws: Any, n_days: int, gen, sigma2_0: np.ndarray) -> np.ndarray:
    """Return paths (S, n_days) of the GJR-GARCH skew-t model, one per draw, the variance
    started at ``sigma2_0`` (as :func:`bayes_mem.live.gjr_garch.simulate`, faster sampler).

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> paths = simulate_paths(draws, 250, np.random.default_rng(0), draws.long_run_variance)
    >>> paths.shape, bool(np.isfinite(paths).all())  # one year of daily log returns per draw
    ((2, 250), True)
    """
    from bayes_mem.live.gjr_garch import variance_step

    z = skewt_draws(draws.nu, draws.lam, (n_days, draws.size), gen)
    sig2 = np.asarray(sigma2_0, dtype=float).copy()
    r = np.empty((draws.size, n_days))
    for t in range(n_days):
        eps = np.sqrt(sig2) * z[t]
        r[:, t] = draws.mu + eps
        sig2 = variance_step(sig2, eps, draws.omega, draws.alpha, draws.gamma, draws.beta)
    return r


PPC_NAMES = ("left_tail", "right_tail", "vol_clustering")
#: replicates per posterior predictive check (a p-value's resolution is 1 / (replicates + 1))
PPC_REPLICATES = 2000
#: at most this many: more symbols raise the replicates so that Holm can still reject (below)
PPC_MAX_REPLICATES = 20_000
_CHUNK = 2000  # replicates simulated at once (memory: chunk x days floats)


def replicates_for(m: int, n_rep: int = PPC_REPLICATES) -> int:
    """Replicates for ``m`` Holm-corrected two-sided checks: at least ``n_rep`` and enough that
    a check no replicate reached, two-sided p = 2 / (R + 1), stays below the family-wise level
    after Holm's factor m (``4 m / PPC_ALPHA``), capped at :data:`PPC_MAX_REPLICATES`.

    Examples
    --------
    >>> replicates_for(1), replicates_for(30), replicates_for(1000)  # 4 m / 0.01, capped
    (2000, 12000, 20000)
    """
    from bayes_mem.offline.diagnostics import PPC_ALPHA

    return int(min(PPC_MAX_REPLICATES, max(n_rep, math.ceil(4 * m / PPC_ALPHA))))


def ppc_threads() -> int:
    """Threads the posterior predictive simulation uses: the cores this process may run on.

    Examples
    --------
    >>> ppc_threads() >= 1
    True
    """
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _chunk_sizes(n_max: int) -> list[int]:
    """Replicates simulated at a time, up to ``n_max`` in all: 250, doubling up to ``_CHUNK``
    (a sequential check is decided after a few hundred replicates when it is far from
    significance, so the first chunks are small), then ``_CHUNK``; the last one clipped.

    Examples
    --------
    >>> _chunk_sizes(5000), _chunk_sizes(300)
    ([250, 500, 1000, 2000, 1250], [250, 50])
    """
    sizes, size, left = [], 250, int(n_max)
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
        size = min(2 * size, _CHUNK)
    return sizes


def _symbol_hits(
    flat: dict[str, np.ndarray],
    j: int,
    series: np.ndarray,
    n_max: int,
    s0: float,
    gen,
    h: int | None,
) -> np.ndarray:
    """Which replicates of symbol ``j`` reach its observed statistics (replicates x 3, int8, in
    the order simulated), simulated in chunks (:func:`_chunk_sizes`) by
    :func:`bayes_mem.offline.ppc_sim.chunk_hits` from ``gen`` (each chunk's posterior draws
    picked with replacement, then its skew-t and uniform draws: the order of
    :func:`skewt_draws` and :func:`simulate_paths`); with ``h``, stopped after the first chunk
    that leaves every check ``h`` replicates on each side of the observed value (see
    :func:`~bayes_mem.offline.diagnostics.sequential_pvalues`), else all ``n_max``."""
    from bayes_mem.live.skewt import SkewT
    from bayes_mem.offline.diagnostics import sequential_decided
    from bayes_mem.offline.ppc_sim import chunk_hits, quantile_points

    obs = _tail_stats(series)[0]
    idx, gam = quantile_points(series.size)
    total = flat["nu"].shape[0]
    chunks = []
    seen = np.zeros(len(PPC_NAMES), dtype=np.int64)
    run = 0
    for size in _chunk_sizes(n_max):
        d, _ = _symbol_draws(flat, gen.integers(0, total, size), j)
        st = SkewT.from_params(d.nu, d.lam)
        hits = np.zeros((size, len(PPC_NAMES)), dtype=np.int8)
        chunk_hits(gen, d.mu, d.omega, d.alpha, d.gamma, d.beta, st.nu, st.lam, st.a, st.b,
                   st.k, np.full(size, s0), series.size, idx, gam, obs, hits)  # fmt: skip
        chunks.append(hits)
        seen += hits.sum(axis=0)
        run += size
        if h is not None and sequential_decided(seen, run, h):
            break
    return np.concatenate(chunks)


def posterior_predictive_pvalues(
    tree,
    returns: Any,
    *,
    var0: np.ndarray | None = None,
    n_rep: int | None = None,
    rng: int | np.random.Generator | None = None,
    threads: int | None = None,
    sequential: bool = True,
):
    """Posterior predictive p-values (upper tail, P(T_rep >= T_obs)) of the left and right
    tails and the volatility clustering of each symbol's daily log returns (a (days, symbols)
    array or one series per symbol, as fitted), per symbol (``"left_tail[SPY]"``): a misfit of
    one symbol is not averaged away by the others. Each replicate is a whole series of its
    symbol's length from a posterior draw (drawn with replacement), started from the same
    ``var0``. Returns :class:`~bayes_mem.offline.diagnostics.PValues`.

    ``sequential`` (default): Besag and Clifford's sequential p-values
    (:func:`~bayes_mem.offline.diagnostics.sequential_pvalues`, ``h`` =
    :data:`~bayes_mem.offline.diagnostics.SEQUENTIAL_HITS`), upper and lower tail each (the
    lower in ``PValues.lower``): a symbol's simulation stops once each of its checks has ``h``
    replicates on either side of its observed value, at most ``n_rep``. A well-fitting symbol
    is decided after a few hundred replicates instead of ``n_rep``; a check whose p-value is
    below ``h / n_rep`` runs all ``n_rep``, as before. ``sequential=False``: all ``n_rep``
    replicates, p = (exceed + 1) / (R + 1). ``n_rep`` default: :func:`replicates_for` the 3 x
    symbols checks (2,000 up to 133 checks).

    Random numbers: symbol j draws from its own generator, the j-th of ``rng``'s spawned
    children (``Generator.spawn``), so the symbols are simulated on ``threads`` threads
    (default :func:`ppc_threads`) with the same result for any number of threads. The
    simulation is a numba kernel equal to the numpy formulas (:mod:`bayes_mem.offline.ppc_sim`).

    Examples
    --------
    The stand-in posterior of :func:`draws_for_live` against 300 Student-t days of daily
    volatility 0.55%, 200 replicates (p-values in steps of 1 / 201):

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (2, 100, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> returns = 0.0055 * rng.standard_t(7, (300, 1)) / np.sqrt(7 / 5)
    >>> pv = posterior_predictive_pvalues(xr.DataTree.from_dict({"posterior": post}), returns,
    ...                                   n_rep=2000, rng=0)
    >>> {k: round(v, 3) for k, v in pv.items()}  # upper tails: right 20 / 500
    {'left_tail[SPY]': 0.109, 'right_tail[SPY]': 0.04, 'vol_clustering[SPY]': 0.909}
    >>> {k: round(v, 3) for k, v in pv.lower.items()}, pv.simulated  # decided after 750 of 2,000
    ({'left_tail[SPY]': 0.909, 'right_tail[SPY]': 0.952, 'vol_clustering[SPY]': 0.077}, 750)
    """
    from concurrent.futures import ThreadPoolExecutor

    from bayes_mem.offline.diagnostics import SEQUENTIAL_HITS, PValues, sequential_pvalues

    gen = np.random.default_rng(rng)
    cols = columns(returns)
    names = [str(s) for s in tree["posterior"].coords["symbol"].values]
    if len(cols) != len(names):
        raise ValueError(f"{len(cols)} series for a fit of {len(names)} symbols")
    n_rep = replicates_for(len(PPC_NAMES) * len(cols)) if n_rep is None else int(n_rep)
    h = SEQUENTIAL_HITS if sequential else None
    s0 = np.array([c.var() for c in cols]) if var0 is None else np.asarray(var0, dtype=float)
    flat = _flat(tree)
    gens = gen.spawn(len(cols))
    workers = max(1, min(len(cols), ppc_threads() if threads is None else int(threads)))
    with ThreadPoolExecutor(workers) as pool:
        hits = list(pool.map(
            lambda j: _symbol_hits(flat, j, cols[j], n_rep, float(s0[j]), gens[j], h),
            range(len(cols)),
        ))  # fmt: skip
    out: dict[str, float] = {}
    lower: dict[str, float] = {}
    for name, hit in zip(names, hits, strict=True):
        if sequential:
            up, low = sequential_pvalues(hit, SEQUENTIAL_HITS, n_rep)
        else:
            up = (hit.sum(axis=0) + 1) / (n_rep + 1)
            low = None
        for k, stat in enumerate(PPC_NAMES):
            out[f"{stat}[{name}]"] = float(up[k])
            if low is not None:
                lower[f"{stat}[{name}]"] = float(low[k])
    simulated = sum(len(hit) for hit in hits)
    return PValues(out, n_rep, lower=lower if sequential else None, simulated=simulated)


# ------------------------------------------------------------------ leave-future-out, live state
#: days at the end of each symbol's window the gated fit does not see (leave-future-out)
LFO_DAYS = 40
#: the published next-day variance (median over draws) must lie within this factor of the
#: realised variance (mean squared demeaned return) of the symbol's last STATE_WINDOW days
STATE_BOUND = 25.0
STATE_WINDOW = 60
_LFO_DRAWS = 1000  # posterior draws in each held-out day's predictive mixture


def fit_holdout(
    model: PooledReturnsFitter,
    returns: Any,
    symbols: list[str],
    holdout: int = LFO_DAYS,
    **fit_kwargs: Any,
):
    """:meth:`PooledReturnsFitter.fit` on each symbol's series without its last ``holdout`` days;
    the held-out days go in the tree's ``holdout`` group ((day, symbol), fractions), where
    :func:`draws_for_live` filters the state through them and :func:`leave_future_out` predicts
    them. ``var0``/``vref`` default to the sample variance of the fitted part.

    Examples
    --------
    A stand-in fitter (its ``fit`` returns a fixed posterior, no sampling) shows what
    ``fit_holdout`` adds: the last 40 days of each series, held out of the fit:

    >>> import xarray as xr
    >>> class StandIn:
    ...     def fit(self, returns, symbols, **settings):
    ...         print(f"fit on {len(returns[0])} days")
    ...         return xr.DataTree()
    >>> returns = 0.01 * np.random.default_rng(0).standard_normal(300)
    >>> tree = fit_holdout(StandIn(), [returns], ["SPY"], holdout=40)
    fit on 260 days
    >>> holdout_returns(tree)["SPY"].shape
    (40,)
    """
    import xarray as xr

    cols = _validated(returns, [str(s) for s in symbols])
    if holdout and min(c.size for c in cols) <= holdout + 2:
        raise ValueError(f"every series needs more than {holdout + 2} days to hold {holdout} out")
    fitted = [c[:-holdout] if holdout else c for c in cols]
    tree = model.fit(fitted, symbols, **fit_kwargs)
    if holdout:
        held = np.stack([c[-holdout:] for c in cols], axis=1)
        tree["holdout"] = xr.Dataset(
            {"returns": (("day", "symbol"), held)}, coords={"symbol": [str(s) for s in symbols]}
        )
    return tree


def _scale_test(u: np.ndarray) -> float:
    """Two-sided p-value of the sum of squared normal scores of PITs ``u`` against its
    chi-square(n) law under the model: too large is a variance the fit under-predicts, too small
    one it over-predicts."""
    from scipy import stats

    from bayes_mem.live.pit import to_normal

    q = float(np.sum(to_normal(u) ** 2))
    chi2 = stats.chi2(u.size)
    return float(min(1.0, 2 * min(chi2.cdf(q), chi2.sf(q))))


def leave_future_out(
    tree, rng: int | np.random.Generator | None = None, n_draws: int = _LFO_DRAWS
) -> tuple[dict[str, float], dict[str, Any]]:
    """Calibration on the days the fit did not see (leave-future-out; Bürkner, Gabry & Vehtari
    2020): each held-out day's PIT under the one-day posterior predictive, the state filtered
    forward from the fit's last state through the held-out returns before it (parameters not
    refitted: the approximate LFO of one fit). Under the model the PITs are i.i.d. uniform.
    Tests (p-values, small = misfit): per symbol the scale of its held-out days, the sum of
    squared normal scores against chi-square(days) two-sided (``"lfo_scale[SPY]"``: a risk
    model's first failure is a variance it gets wrong); pooled over symbols the same
    (``"lfo_scale"``), a Kolmogorov-Smirnov test of the PITs' uniformity (``"lfo_pit"``) and a
    two-sided binomial test of the 5% left-tail exceedances (``"lfo_left_5%"``). Summary:
    held-out days, exceedance count and expectation.

    Examples
    --------
    The stand-in posterior of :func:`draws_for_live` with 40 held-out Student-t days of daily
    volatility 0.55%, about what it predicts (PIT tests far from 0):

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (2, 100, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> held = 0.0055 * rng.standard_t(7, (40, 1)) / np.sqrt(7 / 5)
    >>> tree = xr.DataTree.from_dict({"posterior": post, "holdout": xr.Dataset(
    ...     {"returns": (("day", "symbol"), held)}, coords={"symbol": ["SPY"]})})
    >>> tests, summary = leave_future_out(tree, rng=0)
    >>> {k: round(v, 3) for k, v in tests.items()}
    {'lfo_scale[SPY]': 0.929, 'lfo_scale': 0.929, 'lfo_pit': 0.188, 'lfo_left_5%': 1.0}
    >>> summary["lfo_days"], summary["lfo_left_5%_expected"]
    (40, 2.0)
    """
    from scipy import stats

    from bayes_mem.live.gjr_garch import variance_path
    from bayes_mem.live.pit import mixture_cdf

    held = holdout_returns(tree)
    if not held:
        return {}, {}
    gen = np.random.default_rng(rng)
    flat = _flat(tree)
    total = flat["nu"].shape[0]
    pick = gen.choice(total, min(n_draws, total), replace=False)
    tests: dict[str, float] = {}
    pits = []
    for j, symbol in enumerate(tree["posterior"].coords["symbol"].values):
        h = held[str(symbol)]
        d, last = _symbol_draws(flat, pick, j)
        sig2 = variance_path(h, d, last)[:, :-1]
        u = mixture_cdf(h, d, sig2)
        pits.append(u)
        tests[f"lfo_scale[{symbol}]"] = _scale_test(u)
    u = np.concatenate(pits)
    tests["lfo_scale"] = _scale_test(u)
    tests["lfo_pit"] = float(stats.kstest(u, "uniform").pvalue)
    hits = int(np.sum(u < 0.05))
    tests["lfo_left_5%"] = float(stats.binomtest(hits, u.size, 0.05).pvalue)
    summary = {"lfo_days": len(next(iter(held.values()))), "lfo_pits": int(u.size),
               "lfo_left_5%_hits": hits, "lfo_left_5%_expected": 0.05 * u.size}  # fmt: skip
    return tests, summary


def live_state_failures(tree, returns: Any) -> tuple[list, dict[str, Any]]:
    """The live state the gate publishes, per symbol: every draw's next-day variance (after
    the symbol's last return, held-out days included) finite and positive, and the median over
    draws within a factor :data:`STATE_BOUND` (both ways) of the realised variance of the last
    :data:`STATE_WINDOW` returns (``returns``: the full series, as :func:`fit_holdout` got
    them). A failure is a misfit (refitting the same model does not move it).

    Examples
    --------
    The stand-in posterior's next-day variance (about 0.3 percent squared) against 300 days of
    realised variance about 0.55%^2 = 0.3 percent squared: within the bound, no failure:

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (2, 100, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> returns = 0.0055 * rng.standard_t(7, (300, 1)) / np.sqrt(7 / 5)
    >>> fails, summary = live_state_failures(xr.DataTree.from_dict({"posterior": post}), returns)
    >>> fails, round(summary["state_ratio_min"], 2)
    ([], 1.3)
    >>> fails, _ = live_state_failures(xr.DataTree.from_dict({"posterior": post}), 10 * returns)
    >>> [f.check for f in fails]  # a variance 100 times the recent one: a misfit
    ['live_state']
    """
    from bayes_mem.live.gjr_garch import variance_path
    from bayes_mem.offline.diagnostics import MISFIT, Failure

    flat = _flat(tree)
    held = holdout_returns(tree)
    cols = columns(returns)
    every = np.arange(flat["nu"].shape[0])
    fails, ratios = [], {}
    for j, symbol in enumerate(tree["posterior"].coords["symbol"].values):
        last = flat["last_sigma2_pct"][:, j] / SCALE**2
        h = held.get(str(symbol))
        if h is not None and h.size and np.all(np.isfinite(last)):
            d, last = _symbol_draws(flat, every, j)
            last = variance_path(h, d, last)[:, -1]
        bad = int(np.sum(~np.isfinite(last) | (last <= 0)))
        if bad:
            fails.append(Failure("live_state", MISFIT, f"{symbol}: {bad} draws of the next-day "
                                 "variance are not finite and positive", float(bad),
                                 str(symbol)))  # fmt: skip
            continue
        recent = cols[j][-STATE_WINDOW:]
        realised = float(np.mean((recent - recent.mean()) ** 2))
        ratio = float(np.median(last) / realised) if realised > 0 else np.inf
        ratios[str(symbol)] = ratio
        if not 1 / STATE_BOUND <= ratio <= STATE_BOUND:
            fails.append(Failure(
                "live_state", MISFIT,
                f"{symbol}: next-day variance {ratio:.3g} x the realised variance of the last "
                f"{STATE_WINDOW} days (allowed 1/{STATE_BOUND:g} to {STATE_BOUND:g})",
                ratio, str(symbol),
            ))  # fmt: skip
    summary = {}
    if ratios:
        summary = {"state_ratio_min": min(ratios.values()), "state_ratio_max": max(ratios.values())}
    return fails, summary


def check(tree, returns: Any, *, rng: int | None = 0, n_rep: int | None = None):
    """The returns fit's gate: sampler diagnostics on :data:`GATED_VARS`, the per-symbol
    posterior predictive checks and the leave-future-out tests as one family, two-sided and
    Holm-corrected at the family-wise level ``PPC_ALPHA`` (0.01), and the published live state
    (:func:`live_state_failures`). ``returns``: each symbol's full series (held-out days
    included).

    Examples
    --------
    A stand-in fit (4 chains x 250 independent draws, no divergences, 40 held-out days) of 300
    Student-t days it describes passes:

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (4, 250, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> for name in sorted(set(GATED_VARS) - set(typical)):  # the other gated parameters
    ...     post[name] = (("chain", "draw"), rng.standard_normal((4, 250)))
    >>> returns = 0.0055 * rng.standard_t(7, 300) / np.sqrt(7 / 5)
    >>> cd, zeros = ("chain", "draw"), np.zeros((4, 250), bool)
    >>> stats = xr.Dataset({"diverging": (cd, zeros), "maxdepth_reached": (cd, zeros),
    ...                     "energy": (cd, rng.standard_normal((4, 250)))})
    >>> held = xr.Dataset({"returns": (("day", "symbol"), returns[-40:, None])},
    ...                   coords={"symbol": ["SPY"]})
    >>> tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats, "holdout": held})
    >>> verdict = check(tree, [returns], n_rep=200)
    >>> verdict.passed, verdict.summary["ppc_tests"], verdict.summary["lfo_days"]
    (True, 7, 40)
    """
    from bayes_mem.offline.diagnostics import gate

    cols = columns(returns)
    held = holdout_returns(tree)
    fitted = [c[: c.size - held[s].size] if s in held else c
              for c, s in zip(cols, [str(x) for x in tree["posterior"]["symbol"].values],
                              strict=True)]  # fmt: skip
    lfo, lfo_summary = leave_future_out(tree, rng)
    m = len(PPC_NAMES) * len(cols) + len(lfo)
    ppc = posterior_predictive_pvalues(
        tree, fitted, rng=rng, n_rep=replicates_for(m) if n_rep is None else n_rep
    )
    state_fails, state_summary = live_state_failures(tree, cols)
    return gate(tree, GATED_VARS, ppc, ppc_correction="holm", tests=lfo, extra=state_fails,
                summary_extra={**lfo_summary, **state_summary})  # fmt: skip


def fit_gated(
    model: PooledReturnsFitter,
    returns: Any,
    symbols: list[str],
    base: Any,
    policy: Any = None,
    *,
    holdout: int = LFO_DAYS,
    rng: int | None = 0,
    **fit_kwargs: Any,
):
    """The nightly job's returns component: :func:`fit_holdout` at the policy's settings
    (:class:`~bayes_mem.offline.diagnostics.FitSettings` ``base``), gated by :func:`check`,
    computational failures retried (:func:`bayes_mem.offline.diagnostics.fit_gated`).

    Examples
    --------
    A stand-in fitter returning the fixed posterior of :func:`check`'s example (no sampling)
    shows the flow: :func:`fit_holdout` holds out 40 days, :func:`check` passes the first attempt:

    >>> import xarray as xr
    >>> from bayes_mem.offline.diagnostics import FitSettings
    >>> rng = np.random.default_rng(0)
    >>> typical = {"mu_pct": 0.03, "omega_pct": 0.02, "alpha": 0.03, "gamma": 0.1, "beta": 0.85,
    ...            "nu": 7.0, "lam": -0.1, "last_sigma2_pct": 0.3}
    >>> cds = ("chain", "draw", "symbol")
    >>> post = xr.Dataset({k: (cds, v * rng.uniform(0.95, 1.05, (4, 250, 1)))
    ...                    for k, v in typical.items()}, coords={"symbol": ["SPY"]})
    >>> for name in sorted(set(GATED_VARS) - set(typical)):  # the other gated parameters
    ...     post[name] = (("chain", "draw"), rng.standard_normal((4, 250)))
    >>> returns = 0.0055 * rng.standard_t(7, 300) / np.sqrt(7 / 5)
    >>> cd, zeros = ("chain", "draw"), np.zeros((4, 250), bool)
    >>> stats = xr.Dataset({"diverging": (cd, zeros), "maxdepth_reached": (cd, zeros),
    ...                     "energy": (cd, rng.standard_normal((4, 250)))})
    >>> class StandIn:
    ...     def fit(self, returns, symbols, **settings):
    ...         return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    >>> base = FitSettings(draws=250, tune=250, chains=4, target_accept=0.9, seed=0)
    >>> result = fit_gated(StandIn(), [returns], ["SPY"], base)
    >>> held = holdout_returns(result.tree)["SPY"]
    >>> result.verdict.passed, len(result.verdict.attempts), len(held)
    (True, 1, 40)
    """
    from bayes_mem.offline import diagnostics as dg

    def fit(s):
        tree = fit_holdout(model, returns, symbols, holdout, draws=s.draws, tune=s.tune,
                           chains=s.chains, target_accept=s.target_accept, seed=s.seed,
                           **fit_kwargs)  # fmt: skip
        tree.attrs["target_accept"] = s.target_accept
        return tree

    return dg.fit_gated(fit, lambda t: check(t, returns, rng=rng), base, policy, log=log)


# the deprecated name (issue 20: the offline fitters are no longer named like the live model)
__getattr__ = renamed_module_attributes(__name__, {"ReturnsModel": "PooledReturnsFitter"})
