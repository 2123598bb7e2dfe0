"""Posteriors, decisions and metrics against closed forms."""

import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live import BetaPrior, Decider, ThompsonSamplingDecider


def test_posterior_is_family_prior_plus_raw_counts():
    d = Decider({"fam": BetaPrior(2.0, 3.0)}, rng=0)
    d.register("s", "fam")
    for won in [True] * 7 + [False] * 3:
        d.record("s", won, 1.0 if won else -1.0)
    assert d.posterior("s") == BetaPrior(9.0, 6.0)


def test_cold_start_signal_gets_its_family_prior():
    d = Decider({"a": BetaPrior(3.0, 1.5), "b": BetaPrior(0.5, 0.5)}, rng=0)
    d.register("new_a", "a")
    d.register("new_b", "b")
    assert d.posterior("new_a") == BetaPrior(3.0, 1.5)
    assert d.posterior("new_b") == BetaPrior(0.5, 0.5)


def test_new_family_prior_never_double_counts(decider):
    before = decider.metrics("mom_a")
    decider.set_family_prior("momentum", BetaPrior(10.0, 20.0))
    after = decider.posterior("mom_a")
    assert after == BetaPrior(10.0 + before.wins, 20.0 + before.losses)
    # and again: replacing the prior twice still adds the raw counts once
    decider.set_family_prior("momentum", BetaPrior(1.0, 1.0))
    assert decider.posterior("mom_a") == BetaPrior(1.0 + before.wins, 1.0 + before.losses)
    # the vectorised path sees the new prior too
    draws = decider.decide_batch(np.repeat(decider.indices(["mom_a"]), 4000))[1]
    assert stats.kstest(draws, stats.beta(1.0 + before.wins, 1.0 + before.losses).cdf).pvalue > 1e-3


def test_registering_in_another_family_is_refused(decider):
    with pytest.raises(ValueError, match="'mom_a' is registered in family 'momentum'"):
        decider.register("mom_a", "mean_reversion")
    decider.register("mom_a", "momentum")  # same family: no-op
    assert decider.family_of("mom_a") == "momentum"


def _draws_scalar(d: Decider, name: str, n: int) -> np.ndarray:
    return np.array([d.decide(name)[1] for _ in range(n)])


def test_decision_draws_follow_the_posterior_exactly():
    ts = ThompsonSamplingDecider(rng=2024)
    for won in [True] * 7 + [False] * 3:
        ts.update_signal_result("sig", won, 1.0 if won else -1.0)
    draws = np.array([ts.decide_execute("sig")[1] for _ in range(20_000)])
    assert stats.kstest(draws, stats.beta(8, 4).cdf).pvalue > 1e-3
    # the same test has the power to see the seed plan's bug (prior added twice: Beta(9, 5))
    assert stats.kstest(draws, stats.beta(9, 5).cdf).pvalue < 1e-6


def test_decision_frequency_matches_posterior_tail_without_payoff_history():
    d = Decider({"f": BetaPrior(3.0, 2.0)}, threshold=0.6, rng=3)
    d.register("s", "f")
    n = 20_000
    acts = sum(d.decide("s")[0] for _ in range(n))
    expected = stats.beta(3.0, 2.0).sf(0.6)
    assert stats.binomtest(acts, n, expected).pvalue > 1e-3
    # a per-call threshold overrides the configured one
    acts_half = sum(d.decide("s", threshold=0.5)[0] for _ in range(n))
    assert stats.binomtest(acts_half, n, stats.beta(3.0, 2.0).sf(0.5)).pvalue > 1e-3


def test_decision_uses_sampled_expected_edge_with_payoff_history():
    d = Decider(["f"], min_edge=0.25, rng=4)
    d.register("s", "f")
    d.record("s", True, 3.0)
    d.record("s", True, 1.0)  # avg win 2
    d.record("s", False, -1.0)  # avg loss 1
    for _ in range(2_000):
        act, p = d.decide("s", threshold=0.99)  # threshold is irrelevant with payoff history
        assert act == (p * 2.0 - (1 - p) * 1.0 > 0.25)
    # hurdle (1 + 0.25) / 3: decision frequency equals the posterior tail beyond it
    n = 20_000
    acts = sum(d.decide("s")[0] for _ in range(n))
    assert stats.binomtest(acts, n, stats.beta(3, 2).sf(1.25 / 3.0)).pvalue > 1e-3


def test_batch_draws_follow_each_signals_posterior(decider):
    names = ["mom_a", "mr_a", "mom_new"]
    idx = np.repeat(decider.indices(names), 5_000)
    act, p = decider.decide_batch(idx)
    assert act.dtype == bool and p.shape == idx.shape
    for name in names:
        post = decider.posterior(name)
        sample = p[idx == decider.indices([name])[0]]
        assert stats.kstest(sample, stats.beta(post.a, post.b).cdf).pvalue > 1e-3, name


def test_batch_by_names_equals_batch_by_indices_for_the_same_seed(decider):
    snap = decider.to_json()
    names = ["mom_a", "mr_a", "mom_b", "mom_new"] * 10
    act, p = decider.decide_batch(names)
    replay = Decider.from_json(snap)
    act_r, p_r = replay.decide_batch(replay.indices(names))
    assert p.shape == (40,)
    np.testing.assert_array_equal(p, p_r)
    np.testing.assert_array_equal(act, act_r)


def test_batch_decisions_follow_the_hurdle_rule(decider):
    idx = np.repeat(decider.indices(["mom_a", "mom_new"]), 500)
    act, p = decider.decide_batch(idx, threshold=0.3)
    m = decider.metrics("mom_a")
    # payoffs shrunk toward the family's with 5 pseudo-trades (mom_b has one win of 1.0); the
    # raw avg_loss / (avg_win + avg_loss) this test used to check was the 2-trade plug-in bug
    fam_win = (m.avg_win * m.wins + 1.0) / (m.wins + 1)
    avg_win = (5 * fam_win + m.avg_win * m.wins) / (5 + m.wins)
    avg_loss = (5 * m.avg_loss + m.avg_loss * m.losses) / (5 + m.losses)
    hurdle_a = m.hurdle
    assert hurdle_a == pytest.approx(avg_loss / (avg_win + avg_loss), rel=1e-12)
    assert (m.shrunk_avg_win, m.shrunk_avg_loss) == pytest.approx((avg_win, avg_loss), rel=1e-12)
    is_a = idx == idx[0]
    np.testing.assert_array_equal(act[is_a], p[is_a] > hurdle_a)
    np.testing.assert_array_equal(act[~is_a], p[~is_a] > 0.3)


@pytest.mark.parametrize("n", [5, 200])  # scalar and vectorised paths
def test_choose_is_top_k_of_one_joint_draw(n):
    d = Decider(["f"], rng=9)
    names = [f"s{i}" for i in range(n)]
    for i, name in enumerate(names):
        d.register(name, "f")
        for j in range(i % 7):
            d.record(name, j % 3 != 0, 1.0 if j % 3 != 0 else -1.0)
    replay = Decider.from_json(d.to_json())
    k = 3
    chosen = d.choose(names, k, only_acting=False)
    # the same draws, taken by hand from the restored RNG, give the same top k
    _, p = replay.decide_batch(names)
    margin = p - 0.5
    best = np.argsort(-margin, kind="stable")[:k]
    assert [name for name, _ in chosen] == [names[j] for j in best]
    np.testing.assert_allclose([q for _, q in chosen], p[best])
    assert len({name for name, _ in chosen}) == k


def test_choose_only_returns_signals_that_clear_their_hurdle():
    d = Decider({"f": BetaPrior(1.0, 50.0)}, rng=1)  # win rates near 0.02: nobody should act
    for i in range(30):
        d.register(f"s{i}", "f")
    assert d.choose([f"s{i}" for i in range(30)], 5) == []
    assert len(d.choose([f"s{i}" for i in range(30)], 5, only_acting=False)) == 5


def test_metrics_match_closed_forms():
    d = Decider({"f": BetaPrior(2.0, 2.0)}, rng=0)
    d.register("s", "f")
    pnls = [2.5, -1.0, 0.75, -0.25, 3.0, 1.25, -2.0]
    for x in pnls:
        d.record("s", x > 0, x)
    m = d.metrics("s", prob=0.8)
    a, b = 2.0 + 4, 2.0 + 3
    post = stats.beta(a, b)
    assert (m.trades, m.wins, m.losses) == (7, 4, 3)
    assert (m.posterior_a, m.posterior_b) == (a, b)
    assert m.posterior_mean == pytest.approx(post.mean(), rel=1e-12)
    assert m.posterior_sd == pytest.approx(post.std(), rel=1e-12)
    assert (m.credible_low, m.credible_high) == pytest.approx(post.ppf([0.1, 0.9]), rel=1e-10)
    avg_win, avg_loss = np.mean([2.5, 0.75, 3.0, 1.25]), np.mean([1.0, 0.25, 2.0])
    assert m.avg_win == pytest.approx(avg_win) and m.avg_loss == pytest.approx(avg_loss)
    assert m.break_even == pytest.approx(avg_loss / (avg_win + avg_loss))
    assert m.p_above_break_even == pytest.approx(post.sf(m.break_even), rel=1e-10)
    assert m.total_pnl == pytest.approx(sum(pnls))
    assert m.mean_pnl == pytest.approx(np.mean(pnls))
    assert m.pnl_sd == pytest.approx(np.std(pnls, ddof=1))
    assert m.sharpe == pytest.approx(np.mean(pnls) / np.std(pnls, ddof=1))
    assert m.expected_edge == pytest.approx(post.mean() * avg_win - (1 - post.mean()) * avg_loss)


def test_metrics_undefined_quantities_are_none_not_nan():
    d = Decider(["f"], rng=0)
    d.register("s", "f")
    m = d.metrics("s")
    assert m.trades == 0 and m.mean_pnl is None and m.sharpe is None and m.expected_edge is None
    assert m.break_even == 0.5 and m.p_above_break_even == pytest.approx(0.5)
    d.record("s", True, 1.0)
    m = d.metrics("s")
    assert m.mean_pnl == 1.0 and m.pnl_sd is None and m.sharpe is None
    d.record("s", True, 1.0)
    assert d.metrics("s").sharpe is None  # zero spread: undefined, not inf


def test_running_pnl_moments_are_accurate_for_large_offsets():
    d = Decider(["f"], rng=0)
    d.register("s", "f")
    x = 1e9 + np.random.default_rng(0).normal(0, 1, 5_000)
    for v in x:
        d.record("s", True, float(v))
    m = d.metrics("s")
    assert m.pnl_sd == pytest.approx(np.std(x, ddof=1), rel=1e-6)


def test_facade_keeps_the_seed_plan_contract():
    ts = ThompsonSamplingDecider(alpha_prior=1, beta_prior=1, rng=5)
    ts.register_signal("sig")
    ts.register_signal("sig")  # idempotent
    execute, p = ts.decide_execute("sig", base_confidence=0.5)
    assert isinstance(execute, bool) and isinstance(p, float) and 0 < p < 1
    assert execute == (p > 0.5)
    for won in [True] * 7 + [False] * 3:
        ts.update_signal_result("sig", won, 10.0 if won else -5.0)
    m = ts.get_signal_quality_metrics("sig")
    for key in ("win_rate", "uncertainty", "pnl", "sharpe", "total_trades"):
        assert key in m
    assert m["win_rate"] == pytest.approx(8 / 12)
    assert m["uncertainty"] == pytest.approx(stats.beta(8, 4).std())
    assert m["pnl"] == pytest.approx(55.0) and m["total_trades"] == 10
    pnls = [10.0] * 7 + [-5.0] * 3
    assert m["sharpe"] == pytest.approx(np.mean(pnls) / np.std(pnls, ddof=1))
    assert ts.decider.posterior("sig") == BetaPrior(8.0, 4.0)
    assert math.isclose(ts.alpha_prior, 1.0) and math.isclose(ts.beta_prior, 1.0)
