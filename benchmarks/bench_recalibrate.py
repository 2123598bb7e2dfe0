"""Offline speed goal (issues 4 and 16): win-rate recalibration for 100,000 signals in 20 families
under 60 s wall on a 2-core machine, compile included, passing the gate. The signals trade with
correlated outcomes: each fires on a run of up to 59 consecutive days of 250, one trade a day,
and a family's trades of one day are a cluster (intra-cluster correlation 0-0.3), 2.95 million
trades in all; the tables, the fit, the posterior predictive check and the gate are timed.
Printed next to the straightforward non-marginalised PyMC model (per-signal rates sampled,
Binomial likelihood, independent trades) on 1,000 signals, for scale. ``--only offline_scale``:
issue 17's 1,000,000 signals in 100 families (< 60 s), with the time of each step."""

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


def synthetic_layout(n_signals: int, n_families: int, n_dates: int = 250, seed: int = 0):
    """Trades of ``n_signals`` signals (0-59 each, on consecutive days from a random start) with
    outcomes from the clustered model: (layout with outcomes, family names, truth)."""
    from bayes_mem.offline.winrate import TradeLayout, simulate_outcomes

    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.45, 0.55, n_families)
    kappa = np.exp(rng.normal(np.log(30), 0.3, n_families))
    rho = rng.uniform(0.0, 0.3, n_families)
    fam = rng.integers(0, n_families, n_signals)
    n = rng.integers(0, 60, n_signals)
    sig = np.repeat(np.arange(n_signals), n)
    day = (rng.integers(0, n_dates, n_signals)[sig] + np.arange(n.sum())
           - np.repeat(np.cumsum(n) - n, n)) % n_dates  # fmt: skip
    lay = TradeLayout(fam[sig], sig, fam[sig] * n_dates + day, np.zeros(sig.size, bool), fam)
    won = simulate_outcomes(lay, mean, kappa, rho, rng)
    lay = TradeLayout(lay.family, lay.signal, lay.cluster, won, fam)
    return lay, tuple(f"fam{i:02d}" for i in range(n_families)), (mean, kappa, rho)


def ours(n_signals: int = 100_000, n_families: int = 20) -> tuple[float, bool]:
    from bayes_mem.offline.diagnostics import gate
    from bayes_mem.offline.recalibrate import RecalibrationConfig, winrate_target_accept
    from bayes_mem.offline.winrate import (
        WinRateData,
        WinRateModel,
        gated_vars,
        posterior_predictive_pvalues,
        prior_sd_ratios,
    )

    lay, names, _ = synthetic_layout(n_signals, n_families)
    t0 = time.perf_counter()
    data = WinRateData.from_layout(lay, names)
    t1 = time.perf_counter()
    # the nightly job's target acceptance for these data (0.9 for a data-rich book)
    tree = WinRateModel().fit(data, seed=1, target_accept=winrate_target_accept(
        data, RecalibrationConfig()))  # fmt: skip
    t2 = time.perf_counter()
    ppc = posterior_predictive_pvalues(data, tree, rng=0)
    t3 = time.perf_counter()
    verdict = gate(tree, gated_vars(tree), ppc, prior_sd_ratios(tree))
    t4 = time.perf_counter()
    print(f"win rates {n_signals:,} signals x {n_families} families, {lay.signal.size:,} trades: "
          f"tables {t1 - t0:.1f} s, compile + fit {t2 - t1:.1f} s, PPC {t3 - t2:.1f} s, gate "
          f"{t4 - t3:.1f} s; gate {'passed' if verdict.passed else 'FAILED'} "
          f"{list(verdict.reasons)[:3]}", flush=True)  # fmt: skip
    return t4 - t0, verdict.passed


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
    seconds, passed = ours(100_000, 20)
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


def run_scale(repeat: int = 1) -> list[Result]:
    """Issue 17's goal: 1,000,000 signals in 100 families (29.5 million clustered trades) in
    < 60 s, next to the 100,000-signal, 20-family case timed in the same run."""
    base, _ = ours(100_000, 20)
    seconds, passed = ours(1_000_000, 100)
    return [
        Result(
            f"win rates 1M signals, 100 families (gate {'passed' if passed else 'FAILED'})",
            seconds * 1e6 if passed else float("inf"),
            "ours, 100k signals, 20 families",
            base * 1e6,
            "< 60 s",
            max_us=60e6,
        )
    ]
