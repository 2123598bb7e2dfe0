"""Forgetting decays counts toward the family prior, O(1) per tick, without overflow."""

import math

import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider


def test_discounted_counts_match_the_closed_form():
    gamma = 0.9
    d = Decider({"f": BetaPrior(2.0, 3.0)}, discount=gamma, rng=0)
    d.register("a", "f")
    d.register("b", "f")
    outcomes = [("a", True), ("b", False), ("a", False), ("a", True), ("b", True), ("a", True)]
    for name, won in outcomes:
        d.record(name, won, 1.0 if won else -1.0)
    T = len(outcomes)
    for name in ("a", "b"):
        w = sum(gamma ** (T - 1 - t) for t, (n, won) in enumerate(outcomes) if n == name and won)
        lo = sum(
            gamma ** (T - 1 - t) for t, (n, won) in enumerate(outcomes) if n == name and not won
        )
        post = d.posterior(name)
        assert post.a == pytest.approx(2.0 + w, rel=1e-12)
        assert post.b == pytest.approx(3.0 + lo, rel=1e-12)
    m = d.metrics("a")
    assert (m.trades, m.wins, m.losses) == (4, 3, 1)  # raw counts are never decayed


def test_counts_decay_to_the_prior_not_to_zero_and_rare_signals_never_blow_up():
    d = Decider({"f": BetaPrior(4.0, 6.0)}, discount=0.5, rng=0)
    d.register("rare", "f")
    d.register("busy", "f")
    for _ in range(50):
        d.record("rare", True, 1.0)
    for i in range(5_000):  # >> renormalisation interval (212 ticks at 0.5)
        d.record("busy", i % 2 == 0, 1.0 if i % 2 == 0 else -1.0)
    rare = d.posterior("rare")
    assert rare.a == pytest.approx(4.0) and rare.b == pytest.approx(6.0)
    busy = d.posterior("busy")
    # geometric series: the last outcome (a loss, weight 1), the one before (a win, weight .5) ...
    assert busy.a == pytest.approx(4.0 + 0.5 / (1 - 0.25), rel=1e-9)
    assert busy.b == pytest.approx(6.0 + 1.0 / (1 - 0.25), rel=1e-9)
    # the vectorised table stays in step with the scalar state across renormalisations
    draws = d.decide_batch(np.repeat(d.indices(["rare", "busy"]), 50))[1]
    assert np.isfinite(draws).all()
    assert all(math.isfinite(v) for v in (rare.a, rare.b, busy.a, busy.b))


def test_manual_clock_ticks_only_when_told():
    d = Decider({"f": BetaPrior(1.0, 1.0)}, discount=0.8, clock="manual", rng=0)
    d.register("s", "f")
    for _ in range(10):
        d.record("s", True, 1.0)
    assert d.posterior("s").a == pytest.approx(11.0)
    d.tick(3)
    assert d.posterior("s").a == pytest.approx(1.0 + 10 * 0.8**3)
    assert d.ticks == 3
    d.tick(100_000)
    assert d.posterior("s").a == pytest.approx(1.0)


def test_forget_one_family_leaves_the_others(decider):
    mom, mr = decider.metrics("mom_a"), decider.metrics("mr_a")
    decider.forget(0.25, family="momentum")
    assert decider.posterior("mom_a") == pytest.approx(
        BetaPrior(2.0 + 0.25 * mom.wins, 3.0 + 0.25 * mom.losses)
    )
    assert decider.posterior("mr_a") == BetaPrior(5.0 + mr.wins, 5.0 + mr.losses)
    decider.forget(0.5)
    assert decider.posterior("mr_a").a == pytest.approx(5.0 + 0.5 * mr.wins)


def test_no_discount_means_no_forgetting(decider):
    before = decider.posterior("mom_a")
    decider.tick(1_000)
    assert decider.posterior("mom_a") == before
