"""The offline win-rate model: exact sufficient statistics, recovery, the gate, and
simulation-based calibration (SBC)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_mem.offline.winrate import (
    HYPERPRIORS,
    WinRateData,
    WinRateModel,
    centred_means,
    dispersion_statistic,
    posterior_predictive_pvalues,
)


def test_survival_counts_give_the_beta_binomial_likelihood_exactly():
    rng = np.random.default_rng(0)
    n = rng.integers(0, 30, 200)
    w = rng.binomial(n, 0.5)
    fam = rng.choice(["a", "b", "c"], 200)
    counts = pd.DataFrame({"family": fam, "wins": w, "trades": n})
    d = WinRateData.from_counts(counts)
    a, b = np.array([2.0, 5.0, 0.7]), np.array([3.0, 1.5, 0.9])
    j = np.arange(d.w_surv.shape[1])
    ours = np.sum(
        d.w_surv * np.log(a[:, None] + j) + d.l_surv * np.log(b[:, None] + j)
        - d.n_surv * np.log(a[:, None] + b[:, None] + j)
    )  # fmt: skip
    fi = np.searchsorted(d.families, fam)
    ref = sum(
        stats.betabinom(nn, a[f], b[f]).logpmf(ww) - math.log(math.comb(nn, ww))
        for f, ww, nn in zip(fi, w, n, strict=True)
    )
    assert ours == pytest.approx(ref, rel=1e-12)
    assert d.n_signals.sum() == np.sum(n > 0)


@pytest.mark.parametrize(
    "frame, match",
    [
        (pd.DataFrame({"family": ["a"], "wins": [3]}), "missing"),
        (pd.DataFrame({"family": ["a"], "wins": [3], "trades": [2]}), "wins <= trades"),
        (pd.DataFrame({"family": ["a"], "wins": [-1], "trades": [2]}), "wins <= trades"),
        (pd.DataFrame({"family": [], "wins": [], "trades": []}), "no signals"),
    ],
)
def test_bad_counts_are_refused(frame, match):
    with pytest.raises(ValueError, match=match):
        WinRateData.from_counts(frame)


def simulate_counts(rng, mean, kappa, signals_per_family, max_trades):
    f = np.repeat(np.arange(len(mean)), signals_per_family)
    p = rng.beta(mean[f] * kappa[f], (1 - mean[f]) * kappa[f])
    n = rng.integers(0, max_trades + 1, f.size)
    return pd.DataFrame(
        {"family": [f"fam{i:02d}" for i in f], "wins": rng.binomial(n, p), "trades": n}
    )


@pytest.fixture(scope="module")
def model() -> WinRateModel:
    return WinRateModel()


@pytest.fixture(scope="module")
def truth_and_fit(model):
    rng = np.random.default_rng(3)
    mean, kappa = rng.uniform(0.44, 0.58, 8), np.exp(rng.normal(np.log(25), 0.4, 8))
    counts = simulate_counts(rng, mean, kappa, 400, 40)
    return mean, kappa, counts, model.fit(WinRateData.from_counts(counts), seed=1)


def test_recovers_known_family_means_and_concentrations(truth_and_fit):
    mean, kappa, _, tree = truth_and_fit
    post = tree["posterior"]
    lo, hi = post["mean"].quantile([0.005, 0.995], dim=("chain", "draw")).values
    assert np.all((lo <= mean) & (mean <= hi))
    klo, khi = post["kappa"].quantile([0.005, 0.995], dim=("chain", "draw")).values
    assert np.all((klo <= kappa) & (kappa <= khi))
    assert list(post["mean"].coords["family"].values) == [f"fam{i:02d}" for i in range(8)]


def test_gate_passes_a_good_fit_and_names_what_fails_in_a_short_one(model, truth_and_fit):
    from bayes_mem.offline.diagnostics import gate

    _, _, counts, tree = truth_and_fit
    hyper = ["eta0", "tau", "mu_logk", "sigma_logk", "mean", "kappa"]
    ppc = posterior_predictive_pvalues(counts, tree, rng=0)
    verdict = gate(tree, hyper, ppc)
    assert verdict.passed, verdict.reasons
    assert verdict.summary["divergences"] == 0 and verdict.summary["max_rhat"] <= 1.01
    short = model.fit(WinRateData.from_counts(counts), draws=60, tune=100, seed=2)
    bad = gate(short, hyper)
    assert not bad.passed and any("ESS" in r for r in bad.reasons)


def test_posterior_predictive_check_flags_a_wrong_concentration(truth_and_fit):
    mean, kappa, counts, tree = truth_and_fit
    rng = np.random.default_rng(9)
    # the same families, but signals 8x more alike than the fitted model says
    wrong = simulate_counts(rng, mean, kappa * 8, 400, 40)
    from bayes_mem.offline.diagnostics import ppc_failures

    flagged = posterior_predictive_pvalues(wrong, tree, rng=1)
    # too little dispersion: (almost) every replicate reaches it, few fall below
    assert flagged["dispersion"] > 0.9 and flagged.lower["dispersion"] < 0.005
    assert [f.where for f in ppc_failures(flagged)[0]] == ["dispersion"]
    assert ppc_failures(posterior_predictive_pvalues(counts, tree, rng=1))[0] == []


def prior_draw(rng, n_families):
    """Hyperparameters drawn from the model's own table (winrate.HYPERPRIORS)."""
    hp = HYPERPRIORS
    eta0, tau = hp["eta0"].draw(rng), hp["tau"].draw(rng)
    mu_logk, sigma_logk = hp["mu_logk"].draw(rng), hp["sigma_logk"].draw(rng)
    z = rng.normal(size=n_families)
    z -= z.mean()  # the model's ZeroSumNormal: eta0 is the average family logit mean
    mean = 1 / (1 + np.exp(-(eta0 + tau * z)))
    kappa = np.exp(mu_logk + sigma_logk * rng.normal(size=n_families))
    return {"eta0": eta0, "mu_logk": mu_logk}, mean, kappa


def sbc_ranks(model, n_sims, kappa_factor=1.0, seed=0, signals=30, max_trades=30, centred=False):
    """Ranks of the true eta0 and mu_logk among 99 thinned posterior draws, per simulation;
    every simulated data set must select the ``centred`` parameterisation."""
    rng = np.random.default_rng(seed)
    ranks = {"eta0": [], "mu_logk": []}
    for s in range(n_sims):
        truth, mean, kappa = prior_draw(rng, 4)
        counts = simulate_counts(rng, mean, kappa * kappa_factor, signals, max_trades)
        data = WinRateData.from_counts(counts)
        assert centred_means(data) == centred
        tree = model.fit(data, draws=396, tune=400, seed=s)
        post = tree["posterior"]
        for name in ranks:
            draws = post[name].values.ravel()[::8][:99]
            ranks[name].append(int(np.sum(draws < truth[name])))
    return {k: np.array(v) for k, v in ranks.items()}


def uniform_p(ranks, bins=10, n_draws=99):
    hist = np.histogram(ranks, bins=bins, range=(0, n_draws + 1))[0]
    return stats.chisquare(hist).pvalue


@pytest.mark.slow
def test_simulation_based_calibration(model):
    ranks = sbc_ranks(model, 100)
    for name, r in ranks.items():
        assert uniform_p(r) > 0.001, (name, np.histogram(r, bins=10, range=(0, 100))[0])
    # the same check fails when the simulator and the model disagree (signals 5x more alike)
    wrong = sbc_ranks(model, 100, kappa_factor=5.0, seed=1)
    assert uniform_p(wrong["mu_logk"]) < 0.001


@pytest.mark.slow
def test_simulation_based_calibration_of_the_data_rich_centred_branch(model):
    """1,000 signals per family, ~30 trades each: every family's mean is pinned by its own data,
    so the model takes its centred parameterisation; its ranks must be uniform too."""
    ranks = sbc_ranks(model, 100, seed=2, signals=1000, max_trades=60, centred=True)
    for name, r in ranks.items():
        assert uniform_p(r) > 0.001, (name, np.histogram(r, bins=10, range=(0, 100))[0])
    wrong = sbc_ranks(model, 60, kappa_factor=5.0, seed=3, signals=1000, max_trades=60,
                      centred=True)  # fmt: skip
    assert uniform_p(wrong["mu_logk"]) < 0.001


def test_dispersion_statistic_is_one_for_binomial_data():
    rng = np.random.default_rng(0)
    n = rng.integers(5, 50, 20_000)
    f = rng.integers(0, 3, n.size)
    w = rng.binomial(n, np.array([0.4, 0.5, 0.6])[f])
    assert dispersion_statistic(w, n, f) == pytest.approx(1.0, abs=0.03)
