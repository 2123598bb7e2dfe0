"""Bandit regret of the live Decider: accounting, the simulated nightly fit, Chapelle-Li
independent vs pooled Thompson sampling, and the cold start with priors from the nightly model."""

import math

import numpy as np
import pandas as pd
import pytest

from bayes_mem.evaluation import bandit_regret as br
from bayes_mem.evaluation import bandits
from bayes_mem.evaluation import cold_start as cs
from bayes_mem.live import BetaPrior
from bayes_mem.live.prior_set import FamilyPosterior

# ---------------------------------------------------------------------------- closed forms


def test_kl_and_lai_robbins_rate_closed_form():
    kl = 0.4 * math.log(0.4 / 0.5) + 0.6 * math.log(0.6 / 0.5)
    assert br.kl_bernoulli(0.4, 0.5) == pytest.approx(kl, rel=1e-12)
    assert br.kl_bernoulli(0.3, 0.3) == 0.0
    probs = br.chapelle_li_arms(10, 0.1)
    assert probs[0] == 0.5 and np.all(probs[1:] == 0.4) and probs.size == 10
    assert br.lai_robbins_rate(probs) == pytest.approx(9 * 0.1 / kl, rel=1e-12)  # ~44.7
    # two different gaps: each suboptimal arm contributes gap / KL(p_k, p*)
    rate = br.lai_robbins_rate([0.6, 0.5, 0.3])
    assert rate == pytest.approx(0.1 / br.kl_bernoulli(0.5, 0.6) + 0.3 / br.kl_bernoulli(0.3, 0.6))


def test_bound_exceeds_linear_worst_case_below_the_crossover():
    probs = br.chapelle_li_arms(100, 0.02)
    t = br.bound_below_linear_from(probs)
    rate = br.lai_robbins_rate(probs)
    assert rate * math.log(t) == pytest.approx(0.02 * t, rel=1e-8)
    assert 1.7e6 < t < 1.9e6  # no feasible run reaches the asymptotic regime
    assert rate * math.log(0.5 * t) > 0.02 * 0.5 * t
    assert rate * math.log(2.0 * t) < 0.02 * 2.0 * t


def test_log_checkpoints():
    cp = br.log_checkpoints(50_000)
    assert cp[0] == 10 and cp[-1] == 50_000 and np.all(np.diff(cp) > 0)
    ratios = cp[1:] / cp[:-1]
    assert np.allclose(ratios, ratios.mean(), rtol=0.05)


# ---------------------------------------------------------------------------- regret accounting


def test_pseudo_regret_on_a_tiny_deterministic_sequence():
    probs = np.array([0.5, 0.4, 0.3])
    arms = np.array([0, 1, 2, 1, 0])  # per-step regret 0, .1, .2, .1, 0
    out = br.pseudo_regret(arms, probs, np.array([1, 3, 5]))
    assert out == pytest.approx([0.0, 0.3, 0.4])
    # the best arm not first: gaps are against max(probs)
    assert br.pseudo_regret(np.array([1, 1]), np.array([0.2, 0.7]), np.array([2])) == (
        pytest.approx([0.0])
    )


def test_opportunity_regret_on_a_tiny_case():
    p = np.array([0.6, 0.4, 0.5, 0.7])
    act = np.array([False, True, True, True])
    # missed a 0.6 (0.1), traded a 0.4 (0.1), a 0.5 costs nothing, the 0.7 trade is right
    assert cs.opportunity_regret(p, act) == pytest.approx([0.1, 0.1, 0.0, 0.0])
    assert np.all(cs.opportunity_regret(p, p > 0.5) == 0.0)  # the oracle has no regret
    assert cs.opportunity_regret(p, act, threshold=0.65) == pytest.approx([0.0, 0.25, 0.15, 0.0])


def test_cold_start_regret_end_to_end_on_deterministic_signals():
    """Win rates 0 and 1 make outcomes deterministic; near-certain priors make the decisions
    deterministic: right priors have no regret, wrong ones lose exactly 0.5 per opportunity."""
    signals = pd.DataFrame({"signal": ["good", "bad"], "family": ["g", "b"], "p": [1.0, 0.0]})
    right = {"g": BetaPrior(1e6, 1.0), "b": BetaPrior(1.0, 1e6)}
    wrong = {"g": BetaPrior(1.0, 1e6), "b": BetaPrior(1e6, 1.0)}
    assert cs.cold_start_regret(signals, right, 7, seed=3) == 0.0
    assert cs.cold_start_regret(signals, wrong, 7, seed=3) == pytest.approx(0.5)
    # same seed, same result; flat priors lose something in between
    flat = cs.cold_start_regret(signals, None, 7, seed=3)
    assert flat == cs.cold_start_regret(signals, None, 7, seed=3)
    assert 0.0 < flat < 0.5


def test_cold_start_sampled_hyperparameters():
    from bayes_mem.live.prior_set import FamilyPosterior

    rng = np.random.default_rng(0)
    signals = cs.draw_signals(cs.COLD_START_FAMILIES[:2], 30, rng, "s_")
    fixed = {f.name: f.prior() for f in cs.COLD_START_FAMILIES[:2]}
    # a posterior whose draws are all the same prior behaves like that prior (in distribution:
    # full Bayes spends random numbers on picking a draw)
    same = {
        f.name: FamilyPosterior(np.full(5, f.mean), np.full(5, f.kappa))
        for f in cs.COLD_START_FAMILIES[:2]
    }
    a = [cs.cold_start_regret(signals, fixed, 6, seed=s) for s in range(40)]
    b = [cs.cold_start_regret(signals, same, 6, seed=s) for s in range(40)]
    assert abs(np.mean(a) - np.mean(b)) < 3 * np.std(np.subtract(a, b)) / math.sqrt(40)
    # genuinely spread draws give a different (seeded, reproducible) result
    spread = {
        f.name: FamilyPosterior(np.linspace(0.3, 0.7, 5), np.full(5, f.kappa))
        for f in cs.COLD_START_FAMILIES[:2]
    }
    c = cs.cold_start_regret(signals, spread, 6, seed=2)
    assert c != b[2] and c == cs.cold_start_regret(signals, spread, 6, seed=2)
    with pytest.raises(TypeError, match="'momentum'"):
        cs.cold_start_regret(signals, {"momentum": 0.5, "mean_reversion": BetaPrior()}, 3)


def test_thompson_path_is_reproducible_monotone_and_bounded():
    probs = br.chapelle_li_arms(10, 0.1)
    cp = np.array([10, 100, 1000])
    for policy in br.POLICIES:
        _, a = br.thompson_regret_path(probs, 1000, policy=policy, checkpoints=cp, seed=4,
                                       refit_every=100)  # fmt: skip
        _, b = br.thompson_regret_path(probs, 1000, policy=policy, checkpoints=cp, seed=4,
                                       refit_every=100)  # fmt: skip
        assert np.array_equal(a, b)
        assert np.all(np.diff(a) >= 0) and np.all(a <= 0.1 * cp + 1e-9)
        # regret is a multiple of the gap (0.1 per bad pull)
        assert np.allclose(a / 0.1, np.round(a / 0.1), atol=1e-6)
        # an easy two-arm problem is learnt: far below always pulling the bad arm (0.4 * 1000)
        _, easy = br.thompson_regret_path([0.7, 0.3], 1000, policy=policy, seed=4, refit_every=50)
        assert easy[-1] < 0.05 * 0.4 * 1000


# ---------------------------------------------------------------------------- the nightly fit


def test_family_posterior_recovers_mean_and_concentration():
    covered = 0
    for seed in (7, 8, 9, 10):
        rng = np.random.default_rng(seed)
        p = rng.beta(0.4 * 30, 0.6 * 30, 400)
        trades = rng.integers(10, 40, 400)
        wins = rng.binomial(trades, p)
        post = br.family_posterior(wins, trades, rng=1)
        assert post.mean.size == cs.PUBLISHED_DRAWS
        assert abs(post.mean.mean() - 0.4) < 0.015
        lo, hi = np.percentile(post.kappa, [1, 99])
        covered += lo < 30 < hi
        assert hi / lo < 6
        plug_in = post.point_prior("plug_in")
        assert plug_in.mean == pytest.approx(post.mean.mean())
        assert plug_in.concentration == pytest.approx(post.kappa.mean())
        assert post.point_prior().concentration < plug_in.concentration  # moment-matched
    assert covered >= 3  # 98% intervals
    # same rng seed, same draws
    again = br.family_posterior(wins, trades, rng=1)
    assert np.array_equal(post.kappa, again.kappa)


def test_family_posterior_concentration_stays_within_its_bounds():
    # identical arms: the unbounded estimate would run off to infinity
    trades = np.full(50, 400)
    wins = np.random.default_rng(2).binomial(trades, 0.45)
    post = br.family_posterior(wins, trades, kappa_bounds=(1.0, 200.0), rng=0)
    assert post.kappa.max() <= 200.0 + 1e-9 and post.kappa.min() >= 1.0 - 1e-9
    assert post.kappa.mean() > 100.0  # pushed against the bound
    assert abs(post.mean.mean() - 0.45) < 0.01
    # arms without trades carry no information
    with_idle = br.family_posterior(
        np.r_[wins, 0, 0], np.r_[trades, 0, 0], kappa_bounds=(1.0, 200.0), rng=0
    )
    assert np.array_equal(with_idle.kappa, post.kappa)


@pytest.mark.slow
def test_family_posterior_matches_the_nightly_pymc_fit_on_one_family():
    """The grid is the nightly model's exact posterior for one family (measured: mean 0.38469
    vs 0.38468, kappa 35.9 vs 35.4, quantiles within 3%)."""
    from bayes_mem.offline.winrate import WinRateData, WinRateModel, hyper_draws

    rng = np.random.default_rng(3)
    p = rng.beta(0.4 * 30, 0.6 * 30, 150)
    trades = np.full(150, 25)
    wins = rng.binomial(trades, p)
    counts = pd.DataFrame({"family": "f", "wins": wins, "trades": trades})
    tree = WinRateModel().fit(
        WinRateData.from_counts(counts), draws=1000, tune=1000, chains=2, seed=1
    )
    mean, kappa = hyper_draws(tree)
    grid = br.family_posterior(wins, trades, kappa_bounds=(1e-3, 1e5), draws=4000, rng=1)
    assert grid.mean.mean() == pytest.approx(mean.mean(), abs=0.004)
    assert grid.mean.std() == pytest.approx(mean.std(), rel=0.15)
    for q in (10, 50, 90):
        assert np.percentile(grid.kappa, q) == pytest.approx(np.percentile(kappa, q), rel=0.12)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: br.chapelle_li_arms(1, 0.1), "k"),
        (lambda: br.chapelle_li_arms(10, 0.6), "0.6"),
        (lambda: br.lai_robbins_rate([0.5, 1.2]), "1.2"),
        (lambda: br.lai_robbins_rate([0.5]), "at least 2"),
        (lambda: br.kl_bernoulli(0.0, 0.5), "p"),
        (lambda: br.log_checkpoints(100, start=100), "start=100"),
        (lambda: br.pseudo_regret(np.array([0, 3]), np.array([0.5, 0.4]), np.array([2])), "3"),
        (lambda: br.pseudo_regret(np.array([0, 1]), np.array([0.5, 0.4]), np.array([3])), "3"),
        (lambda: br.pseudo_regret(np.array([0.0]), np.array([0.5, 0.4]), np.array([1])), "int"),
        (lambda: br.family_posterior([3], [2]), "wins <= trades"),
        (lambda: br.family_posterior([1], [2], kappa_bounds=(5.0, 1.0)), r"\(5.0, 1.0\)"),
        (lambda: br.thompson_regret_path([0.5, 0.4], 10, policy="greedy"), "greedy"),
        (lambda: br.thompson_regret_path([0.5, 0.4], 10, refit_every=0), "refit_every"),
        (lambda: cs.opportunity_regret(np.array([0.5]), np.array([1])), "boolean"),
        (lambda: cs.opportunity_regret(np.array([0.5]), np.array([True]), 1.5), "1.5"),
        (lambda: br.chapelle_li_runs(10, 0.1, 100, seeds=[0]), r"\[0\]"),
        (lambda: br.mean_interval(np.array([1.0])), "at least 2"),
        (
            lambda: cs.cold_start_regret(
                pd.DataFrame({"signal": ["s"], "family": ["f"], "p": [0.5]}), {"g": BetaPrior()}, 3
            ),
            "'f'",
        ),
        (lambda: cs.draw_signals([cs.FamilySpec("a", 0.5, 10.0)] * 2, 3, None, "x"), "distinct"),
        (lambda: cs.draw_signals([cs.FamilySpec("a", 1.5, 10.0)], 3, None, "x"), "1.5"),
        (lambda: bandits.write_results("/nonexistent-never", seed=-1), "-1"),
    ],
)
def test_bad_input_raises_naming_the_value(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_bad_input_types():
    with pytest.raises(TypeError, match="quick"):
        bandits.write_results("/nonexistent-never", quick="yes")
    with pytest.raises(TypeError, match="FamilySpec"):
        cs.draw_signals([("a", 0.5, 10.0)], 3, np.random.default_rng(0), "x")


# ---------------------------------------------------------------------------- long checks


@pytest.mark.slow
def test_pooled_thompson_beats_independent_on_k100_eps01():
    """Measured at T = 20,000 over 4 seeds: pooled ~890, independent ~1,590 (44% less)."""
    ind = br.chapelle_li_runs(100, 0.1, 20_000, policy="independent", seeds=range(4))
    poo = br.chapelle_li_runs(100, 0.1, 20_000, policy="pooled", seeds=range(4))
    assert np.all(poo.paths[:, -1] < ind.paths[:, -1])  # seed by seed (common outcomes)
    assert poo.paths[:, -1].mean() < 0.75 * ind.paths[:, -1].mean()
    # both sub-linear: far below always pulling a bad arm (0.1 * T = 2,000)
    assert ind.paths[:, -1].max() < 0.9 * 2_000


@pytest.mark.slow
def test_pooled_thompson_no_worse_on_k100_eps002():
    """K=100, eps=0.02 is linear at feasible T for both (the bound, 2,474 per unit of log T,
    exceeds 0.02 T until T ~ 1.8e6); pooling neither helps nor hurts there."""
    ind = br.chapelle_li_runs(100, 0.02, 10_000, policy="independent", seeds=range(3))
    poo = br.chapelle_li_runs(100, 0.02, 10_000, policy="pooled", seeds=range(3))
    assert poo.paths[:, -1].mean() <= 1.03 * ind.paths[:, -1].mean()
    s = ind.summary()
    assert s["lai_robbins_bound"] > 5 * s["linear_worst_case"] >= 5 * s["regret_mean"]


@pytest.mark.slow
def test_cold_start_nightly_priors_reduce_regret_against_flat():
    """Priors from the real nightly PyMC fit on a disjoint history: the paired reduction's 95%
    interval excludes 0 with 5 and 20 opportunities per signal."""
    per_seed, fits = cs.cold_start_experiment(
        signals_per_family=60, history_per_family=80, opportunities=(5, 20),
        fit_seeds=range(4), replicates=6, draws=300, tune=600, seed=11,
    )  # fmt: skip
    table = cs.summarise_cold_start(per_seed)
    nightly = table[table["prior"] == "nightly"]
    assert len(nightly) == 2
    assert np.all(nightly["reduction_lo"] > 0.0), nightly
    assert np.all(nightly["rel_reduction"] > 0.15), nightly
    assert all(f["divergences"] == 0 for f in fits)
    # the fitted family means are near the truth (history only: 80 signals x 20 trades)
    truth = {f.name: f.mean for f in cs.COLD_START_FAMILIES}
    for f in fits:
        for fam, pr in f["priors"].items():
            assert abs(pr["mean"] - truth[fam]) < 0.06, (fam, pr, truth[fam])


@pytest.mark.slow
def test_write_results_quick(tmp_path):
    import json

    a = bandits.write_results(tmp_path / "a", seed=1, quick=True)
    for name in (
        "bandits_chapelle_li.csv", "bandits_chapelle_li.md", "bandits_cold_start.csv",
        "bandits_cold_start.md", "bandits_cold_start_runs.csv",
    ):  # fmt: skip
        assert (tmp_path / "a" / name).stat().st_size > 0
    for name in ("bandits_regret.png", "bandits_cold_start.png"):
        assert (tmp_path / "a" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cl = pd.read_csv(tmp_path / "a" / "bandits_chapelle_li.csv")
    assert len(cl) == 8 and {"regret_mean", "regret_lo", "lai_robbins_bound"} <= set(cl.columns)
    assert set(zip(cl["K"], cl["eps"], strict=True)) == set(br.SETTINGS)
    cold = pd.read_csv(tmp_path / "a" / "bandits_cold_start.csv")
    # flat, plug-in, moment-matched, sampled, true
    assert len(cold) == 5 * len(bandits.QUICK["opportunities"])
    assert {"prior", "opportunities", "rel_reduction", "rel_reduction_lo"} <= set(cold.columns)
    assert "## Bandit regret" in a["markdown"]
    json.dumps(a)
    bandits.write_results(tmp_path / "b", seed=1, quick=True)
    for name in ("bandits_chapelle_li.csv", "bandits_cold_start.csv", "bandits_cold_start.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_cold_start_history_with_correlated_days():
    """rho > 0: signals trade on consecutive days and a family's trades of one day agree more
    than chance; the counts match the trades handed to the clustered fit."""
    fams = cs.COLD_START_FAMILIES[:2]
    hist = cs.simulate_history(fams, 60, 20, np.random.default_rng(4), rho=0.5, days=20)
    trades = hist.attrs["trades"]
    assert len(trades) == 60 * 2 * 20 and trades["cluster"].between(0, 19).all()
    per = trades.groupby("signal")["won"].agg(["sum", "count"])
    assert (per.loc[hist["signal"], "sum"].to_numpy() == hist["wins"].to_numpy()).all()
    day = trades.groupby(["family", "cluster"])["won"].mean()
    # 60 trades a day: independent trades would spread the daily win rate by ~0.065
    assert day.std() > 0.2
    assert "trades" not in cs.simulate_history(fams, 5, 3, np.random.default_rng(0)).attrs
    with pytest.raises(ValueError, match="rho"):
        cs.simulate_history(fams, 5, 3, np.random.default_rng(0), rho=1.0)


def test_cold_start_log_score_is_the_beta_binomial_sequence_probability():
    """Closed form: a signal that always wins (p = 1) and one that always loses (p = 0) under
    Beta(2, 3) score the products of their sequential predictives; a FamilyPosterior scores the
    mixture over its draws (here Beta(2, 3) and Beta(3, 2))."""
    signals = pd.DataFrame({"signal": ["a", "b"], "family": ["m", "m"], "p": [1.0, 0.0]})
    n = 4
    all_wins = np.prod([(2 + i) / (5 + i) for i in range(n)])  # Beta(2, 3), four wins
    all_losses = np.prod([(3 + i) / (5 + i) for i in range(n)])  # Beta(2, 3), four losses
    expected = (np.log(all_wins) + np.log(all_losses)) / 2 / n
    got = cs.cold_start_log_score(signals, {"m": BetaPrior(2.0, 3.0)}, n)
    assert got == pytest.approx(expected, rel=1e-12)
    post = FamilyPosterior(np.array([0.4, 0.6]), np.array([5.0, 5.0]))
    mixture = np.log(0.5 * (all_wins + all_losses)) / n  # the same for both signals
    assert cs.cold_start_log_score(signals, {"m": post}, n) == pytest.approx(mixture, rel=1e-12)
    flat = np.log(1 / (n + 1)) / n  # Beta(1, 1): 1 / (n + 1) for n wins
    assert cs.cold_start_log_score(signals, None, n) == pytest.approx(flat, rel=1e-12)


def test_cold_start_log_score_ranks_the_true_prior_first():
    """A proper score: on 20,000 new signals of a known family the true prior beats a prior 10x
    too concentrated, one 10x too wide and a flat one, and a shifted mean."""
    fam = cs.FamilySpec("momentum", 0.55, 40.0)
    signals = cs.draw_signals([fam], 20_000, np.random.default_rng(5), "new_")
    score = {
        name: cs.cold_start_log_score(signals, {"momentum": prior}, 10, seed=9)
        for name, prior in {
            "true": fam.prior(),
            "overconfident": BetaPrior.from_mean_concentration(0.55, 400.0),
            "underconfident": BetaPrior.from_mean_concentration(0.55, 4.0),
            "shifted": BetaPrior.from_mean_concentration(0.45, 40.0),
            "flat": BetaPrior(1.0, 1.0),
        }.items()
    }
    assert score["true"] == max(score.values()), score
    assert score["true"] - score["overconfident"] > 5e-4, score  # ~6 standard errors
