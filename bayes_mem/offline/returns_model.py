"""Bayesian GJR-GARCH(1,1) with standardised Student-t innovations, partially pooled across
symbols (PyMC 6, nutpie). Work in progress: not yet wired into the nightly job, which still
publishes the Laplace-approximation draws of :mod:`bayes_mem.live.gjr_garch`.

Returns are daily log returns scaled to percent inside the model (conditioning); draws are
converted back to fractions. Per symbol i::

    persistence pi_i = alpha + gamma/2 + beta = logistic(pi0 + s_pi u_i)      (pooled)
    shock share  q_i = (alpha + gamma/2) / pi_i ~ Beta(2, 12)
    asymmetry    g_i = (gamma/2) / (alpha + gamma/2) ~ Beta(2, 2)
    long-run variance v_i ~ LogNormal(log sample variance, 0.5);  omega = v (1 - pi)
    tail weight  nu_i = 2.1 + exp(n0 + s_nu w_i)                               (pooled)
    mu_i ~ Normal(0, 0.1)   (percent per day)

Hyperpriors: pi0 ~ Normal(logit 0.97, 1), s_pi ~ HalfNormal(0.5), n0 ~ Normal(log 4, 0.7),
s_nu ~ HalfNormal(0.3). The variance recursion runs with ``pytensor.scan`` over days, vectorised
over symbols, starting from each symbol's sample variance.
"""

from __future__ import annotations

import numpy as np

SCALE = 100.0


def build_returns_model(returns: np.ndarray, symbols: list[str]):
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt

    r = np.asarray(returns, dtype=float) * SCALE  # (T, N)
    if r.ndim != 2 or r.shape[1] != len(symbols) or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a finite (days, symbols) array matching symbols")
    var0 = r.var(axis=0)
    with pm.Model(coords={"symbol": symbols}) as model:
        data = pm.Data("returns_pct", r)
        pi0 = pm.Normal("pi0", np.log(0.97 / 0.03), 1.0)
        s_pi = pm.HalfNormal("s_pi", 0.5)
        u = pm.Normal("u", 0.0, 1.0, dims="symbol")
        persistence = pm.Deterministic(
            "persistence", pm.math.invlogit(pi0 + s_pi * u), dims="symbol"
        )
        share = pm.Beta("shock_share", 2.0, 12.0, dims="symbol")
        asym = pm.Beta("asymmetry", 2.0, 2.0, dims="symbol")
        long_run = pm.LogNormal("long_run_var", np.log(var0), 0.5, dims="symbol")
        n0 = pm.Normal("n0", np.log(4.0), 0.7)
        s_nu = pm.HalfNormal("s_nu", 0.3)
        w = pm.Normal("w", 0.0, 1.0, dims="symbol")
        nu = pm.Deterministic("nu", 2.1 + pm.math.exp(n0 + s_nu * w), dims="symbol")
        mu = pm.Normal("mu_pct", 0.0, 0.1, dims="symbol")
        alpha = pm.Deterministic("alpha", persistence * share * (1 - asym), dims="symbol")
        gamma = pm.Deterministic("gamma", 2 * persistence * share * asym, dims="symbol")
        beta = pm.Deterministic("beta", persistence * (1 - share), dims="symbol")
        omega = pm.Deterministic("omega_pct", long_run * (1 - persistence), dims="symbol")
        eps = data - mu

        def step(e, s2, om, a, g, b):
            return om + (a + g * (e < 0)) * e**2 + b * s2

        sig2 = pytensor.scan(
            step, sequences=[eps[:-1]], outputs_info=[pt.as_tensor(var0)],
            non_sequences=[omega, alpha, gamma, beta], return_updates=False,
        )  # fmt: skip
        sig2 = pt.concatenate([pt.as_tensor(var0)[None, :], sig2], axis=0)
        pm.Deterministic(
            "last_sigma2_pct", om_next(eps[-1], sig2[-1], omega, alpha, gamma, beta), dims="symbol"
        )
        scale = pt.sqrt(sig2 * (nu - 2) / nu)
        pm.Potential("loglik", pm.logp(pm.StudentT.dist(nu=nu, mu=0.0, sigma=scale), eps).sum())
    return model


def om_next(e, s2, om, a, g, b):
    """The next day's conditional variance after the last return."""
    return om + (a + g * (e < 0)) * e**2 + b * s2


def fit_returns(
    returns: np.ndarray,
    symbols: list[str],
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    target_accept: float = 0.9,
    seed: int = 0,
):
    """Sample the pooled returns model with nutpie (compiles per call for now)."""
    import nutpie

    compiled = nutpie.compile_pymc_model(build_returns_model(returns, symbols))
    return nutpie.sample(
        compiled, draws=draws, tune=tune, chains=chains, seed=seed,
        target_accept=target_accept, progress_bar=False,
    )  # fmt: skip


def draws_for_live(tree, n_draws: int, rng: np.random.Generator) -> dict[str, tuple]:
    """Per symbol: (GarchDraws in fraction units, next-day variance per draw), thinned to
    ``n_draws`` posterior draws; skew is 0 in this model."""
    from bayes_mem.live.gjr_garch import GarchDraws

    post = tree["posterior"]
    flat = {
        k: post[k].stack(sample=("chain", "draw")).transpose("sample", "symbol").values
        for k in ("mu_pct", "omega_pct", "alpha", "gamma", "beta", "nu", "last_sigma2_pct")
    }
    pick = rng.choice(flat["nu"].shape[0], n_draws, replace=False)
    out = {}
    for j, symbol in enumerate(post.coords["symbol"].values):
        d = GarchDraws(
            mu=flat["mu_pct"][pick, j] / SCALE,
            omega=flat["omega_pct"][pick, j] / SCALE**2,
            alpha=flat["alpha"][pick, j],
            gamma=flat["gamma"][pick, j],
            beta=flat["beta"][pick, j],
            nu=flat["nu"][pick, j],
            lam=np.zeros(n_draws),
        )
        out[str(symbol)] = (d, flat["last_sigma2_pct"][pick, j] / SCALE**2)
    return out
