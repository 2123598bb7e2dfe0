"""The live update with correlated outcomes (issue 16): outcomes of one signal in one cluster count
with their effective weight under the family's intra-cluster correlation; full-Bayes decisions
draw one hyperparameter draw each."""

import json

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.prior_set import FamilyPosterior


def decider(rho: float = 0.5, **kw) -> Decider:
    d = Decider({"mom": BetaPrior(2.0, 3.0)}, rng=0, **kw)
    d.set_family_prior("mom", BetaPrior(2.0, 3.0), rho=rho)
    d.register("a", "mom")
    d.register("b", "mom")
    return d


def test_outcomes_of_one_cluster_count_with_their_effective_weight():
    d = decider(0.5)
    # three outcomes of signal a opened on one day: 3 / (1 + 2 * 0.5) = 1.5 trades' worth
    d.record("a", True, 2.0, cluster="2026-01-05")
    assert d.posterior("a") == BetaPrior(3.0, 3.0)  # the first counts fully
    d.record("a", True, 1.0, cluster="2026-01-05")
    d.record("a", False, -1.0, cluster="2026-01-05")
    post = d.posterior("a")
    assert post.a == pytest.approx(2.0 + 2 * 0.5) and post.b == pytest.approx(3.0 + 0.5)
    # raw counts stay raw; the payoff sums are weighted alike, so averages are unchanged
    m = d.metrics("a")
    assert (m.trades, m.wins, m.losses) == (3, 2, 1)
    assert m.effective_wins + m.effective_losses == pytest.approx(1.5)
    # outcomes in other clusters (and without one) count fully
    d.record("a", True, 1.0, cluster="2026-01-06")
    d.record("a", False, -1.0)
    assert d.posterior("a").a == pytest.approx(4.0) and d.posterior("a").b == pytest.approx(4.5)
    # another signal's outcome on the same day is its own cluster member, not a's
    d.record("b", True, 1.0, cluster="2026-01-05")
    assert d.posterior("b") == BetaPrior(3.0, 3.0)


def test_rho_zero_is_the_plain_update_and_bad_rho_is_refused():
    d, plain = decider(0.0), decider(0.0)
    for i, won in enumerate([True, True, False, True]):
        d.record("a", won, 1.0 if won else -1.0, cluster="day")
        plain.record("a", won, 1.0 if won else -1.0, trade_id=f"t{i}")
    assert d.posterior("a") == plain.posterior("a") == BetaPrior(5.0, 4.0)
    for bad in (-0.1, 1.0, float("nan"), "x"):
        with pytest.raises((ValueError, TypeError), match="rho"):
            d.set_family_prior("mom", BetaPrior(1, 1), rho=bad)
    with pytest.raises(ValueError, match="cluster"):
        d.record("a", True, 1.0, cluster="")


def test_cluster_weights_survive_forgetting_and_snapshots():
    d = decider(0.25, discount=0.9, clock="manual")
    d.record("a", True, 3.0, cluster="d1")
    d.tick(3)  # the first outcome decays to 0.729
    d.record("a", True, 1.0, cluster="d1")  # two in d1: each weighs 1 / 1.25 = 0.8
    assert d.posterior("a").a == pytest.approx(2.0 + 0.8 * 0.729 + 0.8)
    d.forget(0.5, family="mom")
    d.record("a", False, -2.0, cluster="d1")  # three: each weighs 1 / 1.5
    expect_a = 2.0 + (0.8 * 0.729 + 0.8) * 0.5 * (1 / 1.5) / 0.8
    assert d.posterior("a").a == pytest.approx(expect_a)
    assert d.posterior("a").b == pytest.approx(3.0 + 1 / 1.5)
    snap = json.loads(d.to_json())
    assert snap["schema"] == "bayes_mem.decider/3"  # older readers must refuse it
    back = Decider.from_json(d.to_json())
    assert back.to_json() == d.to_json()
    back.record("a", True, 1.0, cluster="d1")
    d.record("a", True, 1.0, cluster="d1")
    assert back.posterior("a") == d.posterior("a")
    # a decider that never used clusters, rho or draws still writes schema 2
    assert json.loads(Decider(["x"]).to_json())["schema"] == "bayes_mem.decider/2"


def test_full_bayes_decisions_draw_one_hyperparameter_draw_per_decision():
    post = FamilyPosterior(np.array([0.2, 0.8]), np.array([200.0, 200.0]))
    d = Decider({"f": post.point_prior()}, rng=1)
    d.set_family_draws("f", post.betas())
    d.register("s", "f")
    d.register("t", "f")
    p = np.array([d.decide("s")[1] for _ in range(4000)])
    # the mixture of Beta(40, 160) and Beta(160, 40): two modes, none near 0.5
    assert np.mean(p < 0.5) == pytest.approx(0.5, abs=0.03)
    assert np.mean(np.abs(p - 0.5) < 0.2) < 0.01
    # batches: one draw per signal (the two signals disagree about half the time) ...
    _, pb = d.decide_batch(np.repeat(d.indices(["s", "t"]), 30))
    assert 0.3 < np.mean((pb[:30] < 0.5) != (pb[30:] < 0.5)) < 0.7
    # ... choose(): one joint draw, so one family draw for all its signals
    for _ in range(50):
        ranked = d.choose(["s", "t"], 2, only_acting=False)
        assert (ranked[0][1] < 0.5) == (ranked[1][1] < 0.5)
    # identical draws are the point prior in distribution
    same = Decider({"f": BetaPrior(3.0, 7.0)}, rng=2)
    same.set_family_draws("f", (np.full(5, 3.0), np.full(5, 7.0)))
    same.register("s", "f")
    draws = [same.decide("s")[1] for _ in range(3000)]
    assert stats.kstest(draws, stats.beta(3.0, 7.0).cdf).pvalue > 0.001
    # snapshots keep the draws; None goes back to the point prior
    assert Decider.from_json(d.to_json()).to_json() == d.to_json()
    d.set_family_draws("f", None)
    assert json.loads(d.to_json())["schema"] == "bayes_mem.decider/2"
    with pytest.raises(ValueError, match="draw 1"):
        d.set_family_draws("f", ([1.0, -1.0], [1.0, 1.0]))
