"""Offline speed goal (issue 4): win-rate recalibration for 100,000 signals in 20 families under
60 s wall on a 2-core machine, compile included, passing the gate. Printed next to the
straightforward non-marginalised PyMC model (per-signal rates sampled, Binomial likelihood) on
1,000 signals, for scale."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks._timing import Result


def synthetic_counts(n_signals: int, n_families: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.45, 0.55, n_families)
    kappa = np.exp(rng.normal(np.log(30), 0.3, n_families))
    f = rng.integers(0, n_families, n_signals)
    p = rng.beta(mean[f] * kappa[f], (1 - mean[f]) * kappa[f])
    n = rng.integers(0, 60, n_signals)
    return pd.DataFrame(
        {"family": [f"fam{i:02d}" for i in f], "wins": rng.binomial(n, p), "trades": n}
    )


def ours(counts: pd.DataFrame) -> tuple[float, bool]:
    from bayes_mem.offline.diagnostics import gate
    from bayes_mem.offline.winrate import (
        GATED_VARS,
        WinRateData,
        WinRateModel,
        posterior_predictive_pvalues,
    )

    t0 = time.perf_counter()
    tree = WinRateModel().fit(WinRateData.from_counts(counts), seed=1)
    verdict = gate(tree, GATED_VARS, posterior_predictive_pvalues(counts, tree, rng=0))
    return time.perf_counter() - t0, verdict.passed


def naive(counts: pd.DataFrame) -> float:
    """Per-signal rates sampled: Binomial(trades, p_i), p_i ~ Beta(m_f kappa_f, ...)."""
    import nutpie
    import pymc as pm

    families = sorted(counts["family"].unique())
    f = counts["family"].map({x: i for i, x in enumerate(families)}).to_numpy()
    t0 = time.perf_counter()
    with pm.Model(coords={"family": families}) as model:
        eta0 = pm.Normal("eta0", 0, 1)
        tau = pm.HalfNormal("tau", 0.5)
        z = pm.Normal("z", 0, 1, dims="family")
        mu_logk = pm.Normal("mu_logk", np.log(30), 1)
        sigma_logk = pm.HalfNormal("sigma_logk", 0.5)
        zk = pm.Normal("zk", 0, 1, dims="family")
        m = pm.math.invlogit(eta0 + tau * z)
        k = pm.math.exp(mu_logk + sigma_logk * zk)
        p = pm.Beta("p", m[f] * k[f], (1 - m[f]) * k[f])
        pm.Binomial("wins", n=counts["trades"].to_numpy(), p=p, observed=counts["wins"].to_numpy())
    nutpie.sample(nutpie.compile_pymc_model(model), draws=1000, tune=1000, chains=2, seed=1,
                  progress_bar=False)  # fmt: skip
    return time.perf_counter() - t0


def run(repeat: int = 1) -> list[Result]:
    big = synthetic_counts(100_000, 20)
    seconds, passed = ours(big)
    base = naive(synthetic_counts(1_000, 20, seed=1))
    return [
        Result(
            f"win rates 100k signals (gate {'passed' if passed else 'FAILED'})",
            seconds * 1e6 if passed else float("inf"),
            "naive PyMC, 1,000 signals",
            base * 1e6,
            "< 60 s",
            max_us=60e6,
        )
    ]
