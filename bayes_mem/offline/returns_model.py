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

:class:`ReturnsModel` compiles once per number of symbols (and doubling depth, for the graph) and
refits by swapping data (``compiled.with_data``).
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

from bayes_mem.live.gjr_garch import NU_MIN
from bayes_mem.offline.progress import log_progress

log = logging.getLogger("bayes_mem.returns_model")

SCALE = 100.0  # fractions -> percent inside the model


@dataclass(frozen=True)
class Prior:
    """One prior: a PyMC distribution name and its parameters by PyMC's names. A string value
    names a model input (``"log vref"``) given to :meth:`rv` in ``data``."""

    dist: str
    params: Mapping[str, float | str] = field(default_factory=dict)

    def rv(self, name: str, data: Mapping[str, Any] | None = None, **kwargs: Any):
        """The PyMC random variable (inside a model context)."""
        import pymc as pm

        args = {k: (data or {})[v] if isinstance(v, str) else v for k, v in self.params.items()}
        return getattr(pm, self.dist)(name, **args, **kwargs)

    def sample(
        self, rng: np.random.Generator, size: int | None = None, **data: float
    ) -> np.ndarray:
        """Draws from the prior with numpy (``data`` resolves string parameters by name)."""
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

    def to_json(self) -> list[Any]:
        return [self.dist, dict(sorted(self.params.items()))]


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
    """The priors as plain JSON (config hash, fit attrs), with the tail weight's floor."""
    return {**{k: p.to_json() for k, p in PRIORS.items()}, "nu_min": NU_MIN}


# what the diagnostics gate checks on this model (free parameters and the per-symbol parameters
# the live path uses)
GATED_VARS = [
    "pi0", "s_pi", "n0", "s_nu", "l0", "s_lam",
    "persistence", "shock_share", "asymmetry", "long_run_var", "nu", "lam", "mu_pct",
]  # fmt: skip


# build_returns_model's likelihood implementations: the numba Op (default) and the reference graph
LIKELIHOODS = ("op", "graph")


def doubling_depth(n_days: int) -> int:
    """Number of doubling steps that make the prefix scan exact for ``n_days`` days."""
    return max(1, math.ceil(math.log2(max(n_days, 2))))


def hansen_constants(nu, lam):
    """Hansen's skew-t constants ``(log c, a, b)`` (pytensor expressions)."""
    import pytensor.tensor as pt

    log_c = pt.gammaln((nu + 1) / 2) - pt.gammaln(nu / 2) - 0.5 * pt.log(np.pi * (nu - 2))
    a = 4.0 * lam * pt.exp(log_c) * (nu - 2) / (nu - 1)
    b = pt.sqrt(1.0 + 3.0 * lam**2 - a**2)
    return log_c, a, b


def hansen_logp(z, nu, lam):
    """Log density of Hansen's standardised skewed t at ``z`` (pytensor expressions)."""
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
    ``x = tau^2 / (nu + tau^2)``). For ``lam > 0`` reflection gives ``1 - kappa(nu, -lam)``."""
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
    ``"graph"`` is the reference, the same likelihood as a PyTensor graph (prefix scan)."""
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
            return model
        eps = data - mu
        shock = (alpha + gamma * (eps < 0)) * eps**2
        rows = pt.arange(n_days)[:, None]
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
    return model


def columns(returns: Any) -> list[np.ndarray]:
    """Per-symbol series of daily log returns from a (days, symbols) array or a sequence of 1-d
    arrays (one per symbol, each on its own dates)."""
    if isinstance(returns, np.ndarray) and returns.ndim == 2:
        return [returns[:, j].astype(float) for j in range(returns.shape[1])]
    if isinstance(returns, np.ndarray) or not isinstance(returns, Sequence):
        raise ValueError(
            "returns must be a (days, symbols) array or one 1-d array per symbol, got "
            f"{type(returns).__name__} of shape {np.shape(returns)}"
        )
    return [np.asarray(c, dtype=float) for c in returns]


def right_aligned(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (T, N) right-aligned array (padding 0) and each column's first row."""
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


class ReturnsModel:
    """Compile-once, refit-many wrapper (nutpie). One compiled model per number of symbols (and
    doubling depth, with the reference ``likelihood="graph"``); the day counts may change freely
    (within a depth)."""

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
        import nutpie

        first = np.zeros(r_pct.shape[1], dtype=np.int64) if first is None else first
        depth = doubling_depth(r_pct.shape[0]) if self.likelihood == "graph" else 0
        key = (r_pct.shape[1], depth)
        with self._lock:
            if key not in self._compiled:
                t0 = time.perf_counter()
                model = build_returns_model(r_pct, symbols, var0, vref, first, self.likelihood)
                self._compiled[key] = nutpie.compile_pymc_model(model)
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
        default to each series' sample variance."""
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
            progress_callback=log_progress(label) if progress else None,
        )  # fmt: skip
        tree["posterior"] = tree["posterior"].to_dataset().assign_coords(symbol=symbols)
        return tree


def _positive(values: Any, name: str, n: int) -> np.ndarray:
    v = np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{name} must be finite and > 0 per symbol, got {v!r}")
    return v


_DEFAULT = ReturnsModel()


def default_model() -> ReturnsModel:
    """The process-wide compile cache."""
    return _DEFAULT


def draws_for_live(tree, n_draws: int, rng: np.random.Generator) -> dict[str, tuple]:
    """Per symbol: (GarchDraws in fraction units, next-day variance per draw), ``n_draws``
    posterior draws taken without replacement (the same draws for every symbol, so the joint
    posterior is kept)."""
    from bayes_mem.live.gjr_garch import GarchDraws

    post = tree["posterior"]
    names = ("mu_pct", "omega_pct", "alpha", "gamma", "beta", "nu", "lam", "last_sigma2_pct")
    flat = {
        k: post[k].stack(sample=("chain", "draw")).transpose("sample", "symbol").values
        for k in names
    }
    total = flat["nu"].shape[0]
    if not 0 < n_draws <= total:
        raise ValueError(f"n_draws must be in 1..{total}, got {n_draws!r}")
    pick = rng.choice(total, n_draws, replace=False)
    out = {}
    for j, symbol in enumerate(post.coords["symbol"].values):
        d = GarchDraws(
            mu=flat["mu_pct"][pick, j] / SCALE,
            omega=flat["omega_pct"][pick, j] / SCALE**2,
            alpha=flat["alpha"][pick, j],
            gamma=flat["gamma"][pick, j],
            beta=flat["beta"][pick, j],
            nu=flat["nu"][pick, j],
            lam=flat["lam"][pick, j],
        )
        out[str(symbol)] = (d, flat["last_sigma2_pct"][pick, j] / SCALE**2)
    return out


def _tail_stats(cols: list[np.ndarray]) -> np.ndarray:
    """Statistics of per-symbol return series, each averaged over symbols: left tail (1%
    quantile in standard deviations), right tail (99%), volatility clustering (lag-1
    autocorrelation of squared demeaned returns)."""
    out = np.empty((len(cols), 3))
    for j, c in enumerate(cols):
        x = c - c.mean()
        lo, hi = np.quantile(x, [0.01, 0.99])
        sq = x**2 - (x**2).mean()
        out[j] = lo / x.std(), hi / x.std(), (sq[1:] * sq[:-1]).sum() / (sq**2).sum()
    return out.mean(axis=0)


PPC_NAMES = ("left_tail", "right_tail", "vol_clustering")


def posterior_predictive_pvalues(
    tree,
    returns: Any,
    *,
    var0: np.ndarray | None = None,
    n_rep: int = 400,
    rng: int | np.random.Generator | None = None,
) -> dict[str, float]:
    """Posterior predictive p-values (P(T_rep >= T_obs), with +1 smoothing) of the left and right
    tails and the volatility clustering of the observed daily log returns (a (days, symbols)
    array or one series per symbol, as fitted), each statistic averaged over symbols; each
    replicated series has its symbol's length and starts from the same ``var0``."""
    from bayes_mem.live.gjr_garch import simulate

    gen = np.random.default_rng(rng)
    cols = columns(returns)
    s0 = np.array([c.var() for c in cols]) if var0 is None else np.asarray(var0, dtype=float)
    n_rep = min(n_rep, tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"])
    live = draws_for_live(tree, n_rep, gen)
    reps = [
        simulate(d, cols[j].size, gen, sigma2_0=np.full(n_rep, s0[j]))[0]
        for j, (_, (d, _)) in enumerate(live.items())
    ]
    obs = _tail_stats(cols)
    exceed = np.zeros(len(PPC_NAMES))
    for k in range(n_rep):
        exceed += _tail_stats([rep[k] for rep in reps]) >= obs
    p = (exceed + 1) / (n_rep + 2)
    return dict(zip(PPC_NAMES, p.tolist(), strict=True))
