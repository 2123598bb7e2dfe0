"""The decider's payoff hurdle: payoffs shrunk toward the family's, decayed like the counts."""

import json

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.decider import _HURDLE_OR_THR

N0 = 5.0


def shrunk_hurdle(own_wins, own_losses, fam_wins, fam_losses, min_edge=0.0, n0=N0, w=None):
    """Closed form: avg win/loss = (n0 x family average + own sum) / (n0 + own count), with
    optional weights ``w`` (a function of the trade's position) for forgetting."""
    own_wins, own_losses = np.asarray(own_wins, float), np.asarray(own_losses, float)
    fam_wins, fam_losses = np.asarray(fam_wins, float), np.asarray(fam_losses, float)
    if w is None:
        ow, ol, fw, fl = (np.ones(x.shape) for x in (own_wins, own_losses, fam_wins, fam_losses))
    else:
        ow, ol, fw, fl = w
    cw, cl = (fw * fam_wins).sum() / fw.sum(), (fl * fam_losses).sum() / fl.sum()
    avg_win = (n0 * cw + (ow * own_wins).sum()) / (n0 + ow.sum())
    avg_loss = (n0 * cl + (ol * own_losses).sum()) / (n0 + ol.sum())
    return (avg_loss + min_edge) / (avg_win + avg_loss), avg_win, avg_loss


def _family_with_symmetric_payoffs(scale: float, seed: int = 0):
    """Four signals with 50 trades each, wins and losses of sizes ~ U(0.8, 1.2) x scale."""
    rng = np.random.default_rng(seed)
    d = Decider({"f": BetaPrior(5.0, 5.0)}, rng=seed)
    wins, losses = [], []
    for i in range(4):
        d.register(f"peer{i}", "f")
        for _ in range(50):
            won = bool(rng.random() < 0.5)
            size = float(rng.uniform(0.8, 1.2) * scale)
            d.record(f"peer{i}", won, size if won else -size)
            (wins if won else losses).append(size)
    return d, wins, losses


def test_two_lucky_trades_give_a_hurdle_near_the_familys_not_one_over_101():
    d, wins, losses = _family_with_symmetric_payoffs(50.0)
    d.register("lucky", "f")
    d.record("lucky", True, 100.0)
    d.record("lucky", False, -1.0)
    m = d.metrics("lucky")
    expect, avg_win, avg_loss = shrunk_hurdle([100.0], [1.0], [*wins, 100.0], [*losses, 1.0])
    family = np.mean(losses) / (np.mean(wins) + np.mean(losses))
    assert m.hurdle == pytest.approx(expect, rel=1e-12)
    assert (m.shrunk_avg_win, m.shrunk_avg_loss) == pytest.approx((avg_win, avg_loss), rel=1e-12)
    assert (m.avg_win, m.avg_loss) == (100.0, 1.0)  # the raw averages are still reported
    assert m.break_even == pytest.approx(1 / 101)  # ... with the raw break-even
    assert abs(m.hurdle - family) < 0.1  # the old hurdle was 1 / 101 = 0.0099
    # decisions use it: their frequency is the posterior tail beyond the shrunk hurdle
    post = d.posterior("lucky")
    n = 20_000
    acts = sum(d.decide("lucky")[0] for _ in range(n))
    assert stats.binomtest(acts, n, stats.beta(post.a, post.b).sf(expect)).pvalue > 1e-3


def test_a_hundredfold_outlier_is_damped_but_keeps_weight_one_over_n0_plus_one():
    """Linear shrinkage (the posterior mean of a conjugate model) is not robust: with a family of
    +-1 trades, one +100 win still makes the average win (5 x ~1 + 100) / 6 ~ 17.5."""
    d, wins, losses = _family_with_symmetric_payoffs(1.0)
    d.register("lucky", "f")
    d.record("lucky", True, 100.0)
    d.record("lucky", False, -1.0)
    expect, avg_win, _ = shrunk_hurdle([100.0], [1.0], [*wins, 100.0], [*losses, 1.0])
    assert d.metrics("lucky").hurdle == pytest.approx(expect, rel=1e-12)
    assert 17 < avg_win < 19 and 5 / 101 < expect < 0.1


def test_after_heavy_forgetting_the_hurdle_follows_recent_trades():
    d = Decider({"f": BetaPrior(2.0, 2.0)}, rng=1)
    d.register("s", "f")
    for i in range(200):  # old regime: +1 / -1, hurdle 0.5
        d.record("s", i % 2 == 0, 1.0 if i % 2 == 0 else -1.0)
    assert d.metrics("s").hurdle == pytest.approx(0.5)
    d.forget(1e-6)
    for i in range(20):  # new regime: +3 / -1, hurdle 0.25
        d.record("s", i % 2 == 0, 3.0 if i % 2 == 0 else -1.0)
    weights = np.r_[np.full(100, 1e-6), np.ones(10)]  # wins (and losses): 100 old, 10 new
    expect, _, _ = shrunk_hurdle(
        np.r_[np.ones(100), np.full(10, 3.0)],
        np.ones(110),
        np.r_[np.ones(100), np.full(10, 3.0)],
        np.ones(110),
        w=(weights, weights, weights, weights),
    )
    m = d.metrics("s")
    assert m.hurdle == pytest.approx(expect, rel=1e-9)
    assert m.hurdle == pytest.approx(0.25, abs=1e-4)  # undecayed PnL sums gave 0.458
    assert m.family_avg_win == pytest.approx(3.0, rel=1e-5)


def test_payoffs_decay_per_tick_with_the_same_weights_as_the_counts():
    gamma = 0.9
    d = Decider({"f": BetaPrior(1.0, 1.0)}, discount=gamma, min_edge=0.2, rng=2)
    for name in ("a", "b"):
        d.register(name, "f")
    rng = np.random.default_rng(3)
    trades = []
    for _ in range(300):  # 0.9 ** 300 ~ 2e-14: no renormalisation, but most history forgotten
        name = "a" if rng.random() < 0.6 else "b"
        won = bool(rng.random() < 0.5)
        size = float(rng.gamma(2.0, 1.0 if name == "a" else 2.0))
        d.record(name, won, size if won else -size)
        trades.append((name, won, size))
    T = len(trades)
    wt = np.array([gamma ** (T - 1 - t) for t in range(T)])  # the last trade has weight 1
    names = np.array([n for n, _, _ in trades])
    won = np.array([w for _, w, _ in trades])
    size = np.array([x for _, _, x in trades])
    for name in ("a", "b"):
        own = names == name
        expect, avg_win, avg_loss = shrunk_hurdle(
            size[own & won],
            size[own & ~won],
            size[won],
            size[~won],
            min_edge=0.2,
            w=(wt[own & won], wt[own & ~won], wt[won], wt[~won]),
        )
        m = d.metrics(name)
        assert m.hurdle == pytest.approx(expect, rel=1e-9)
        assert m.shrunk_avg_win == pytest.approx(avg_win, rel=1e-9)
        assert m.shrunk_avg_loss == pytest.approx(avg_loss, rel=1e-9)
        assert m.effective_wins == pytest.approx(wt[own & won].sum(), rel=1e-9)
    d.tick(10_000)  # everything forgotten: the payoff sums underflow with the counts
    m = d.metrics("a")
    assert m.hurdle == 0.5 and m.shrunk_avg_win is None  # back to the threshold, not NaN
    assert (m.wins + m.losses, m.avg_win) == (m.trades, m.avg_win)  # raw figures kept


@pytest.mark.parametrize("discount, min_edge", [(1.0, 0.0), (0.97, 0.3)])
def test_vectorised_small_batch_and_scalar_hurdles_agree(discount, min_edge):
    rng = np.random.default_rng(4)
    d = Decider(
        {"f1": None, "f2": BetaPrior(3.0, 2.0), "f3": None},
        discount=discount,
        min_edge=min_edge,
        rng=5,
    )
    names = [f"s{i}" for i in range(60)]
    for i, name in enumerate(names):
        d.register(name, f"f{1 + i % 3}")

    def trade():
        name = names[int(rng.integers(40))]  # s40..s59 never trade: no payoff hurdle
        won = bool(rng.random() < 0.5)
        size = float(rng.gamma(2.0, 1.0 + names.index(name) % 3))
        d.record(name, won, size if won else -size)

    for _ in range(400):
        trade()
    for _ in range(3):
        hurdles = np.array([d.metrics(n).hurdle for n in names])  # scalar path
        act, p = d.decide_batch(names)  # vectorised path, whole-table refresh
        np.testing.assert_array_equal(act, p > hurdles)
        # the cached table row (hurdle, or the threshold without one) is bit for bit the scalar
        np.testing.assert_array_equal(d._table[_HURDLE_OR_THR, :60], hurdles)
        trade()  # stale again: a small batch computes its own columns only
        few = names[::2]  # 30 of 60 signals: < half, no refresh
        hurdles = np.array([d.metrics(n).hurdle for n in few])
        act, p = d.decide_batch(few)
        np.testing.assert_array_equal(act, p > hurdles)
        trade()


def test_zero_payoffs_fall_back_to_the_threshold_on_both_paths():
    d = Decider(["z"], threshold=0.4, rng=0)
    d.register("flat", "z")
    d.record("flat", True, 0.0)
    d.record("flat", False, 0.0)
    assert d.metrics("flat").hurdle == 0.4  # zero spread: no payoff hurdle, as before
    act, p = d.decide_batch(np.repeat(d.indices(["flat"]), 40))  # the vectorised path
    np.testing.assert_array_equal(act, p > 0.4)
    act, p = d.decide_batch(np.repeat(d.indices(["flat"]), 40), threshold=0.7)
    np.testing.assert_array_equal(act, p > 0.7)


def test_choose_ranks_by_the_shrunk_hurdle():
    d, _, _ = _family_with_symmetric_payoffs(50.0)
    d.register("lucky", "f")
    d.record("lucky", True, 100.0)
    d.record("lucky", False, -1.0)
    names = [*d.signals]
    replay = Decider.from_json(d.to_json())
    chosen = d.choose(names, 2, only_acting=False)
    _, p = replay.decide_batch(names)
    margins = p - np.array([d.metrics(n).hurdle for n in names])
    best = np.argsort(-margins, kind="stable")[:2]
    assert [n for n, _ in chosen] == [names[j] for j in best]


def test_new_signals_keep_the_threshold_until_they_have_a_win_and_a_loss():
    d, _, _ = _family_with_symmetric_payoffs(50.0)
    d.register("new", "f")
    m = d.metrics("new")
    assert m.hurdle == 0.5 and m.shrunk_avg_win is None and m.family_avg_win is not None
    d.record("new", True, 10.0)
    assert d.metrics("new").hurdle == 0.5
    d.record("new", False, -10.0)
    assert d.metrics("new").hurdle != 0.5


def test_payoff_n0_is_validated_and_round_trips():
    with pytest.raises(ValueError, match="payoff_n0 must be > 0, got 0"):
        Decider(payoff_n0=0)
    d = Decider(["f"], payoff_n0=2.5, rng=0)
    assert Decider.from_json(d.to_json()).payoff_n0 == 2.5


# A schema-1 snapshot written by the previous version (commit 2b7b01b): 8 trades, discount 1,
# min_edge 0.1; the next draws of its RNG for mom_a, mom_b, mr_a were these.
V1 = (
    '{"schema":"bayes_mem.decider/1","config":{"threshold":0.5,"min_edge":0.1,"discount":1.0,'
    '"clock":"outcome"},"clock_state":{"scale":1.0,"ticks":0},"families":[{"name":"mom","prior":'
    '{"a":2.0,"b":3.0}},{"name":"mr","prior":{"a":1.0,"b":1.0}}],"signals":[{"name":"mom_a",'
    '"family":"mom","ws":2.0,"ls":2.0,"trades":4,"wins":2,"losses":2,"pnl_total":2.5,"pnl_mean":'
    '0.625,"pnl_m2":8.1875,"win_pnl":4.0,"loss_pnl":1.5},{"name":"mom_b","family":"mom","ws":1.0,'
    '"ls":1.0,"trades":2,"wins":1,"losses":1,"pnl_total":-1.5,"pnl_mean":-0.75,"pnl_m2":3.125,'
    '"win_pnl":0.5,"loss_pnl":2.0},{"name":"mr_a","family":"mr","ws":1.0,"ls":1.0,"trades":2,'
    '"wins":1,"losses":1,"pnl_total":0.5,"pnl_mean":0.25,"pnl_m2":2.0,"win_pnl":1.25,'
    '"loss_pnl":0.75}],"trade_ids":["t0","t1","t2","t3","t4","t5","t6","t7"],"rng":'
    '{"bit_generator":"PCG64","state":{"state":208745520555909116978795849195383758904,"inc":'
    '261136684632268670825940853076396136793},"has_uint32":0,"uinteger":0}}'
)
V1_NEXT_DRAWS = {
    "mom_a": 0.47231425409567634,
    "mom_b": 0.34481554944624665,
    "mr_a": 0.3175523614689096,
}
V1_TRADES = {  # (signal, pnl) in order
    "mom": [("mom_a", 2.5), ("mom_a", -1.0), ("mom_b", 0.5), ("mom_a", 1.5), ("mom_b", -2.0),
            ("mom_a", -0.5)],
    "mr": [("mr_a", -0.75), ("mr_a", 1.25)],
}  # fmt: skip


def test_schema_1_snapshots_are_read_and_written_back_as_schema_2():
    d = Decider.from_json(V1)
    assert json.loads(d.to_json())["schema"] == "bayes_mem.decider/2"
    assert d.seen_trade("t7") and d.posterior("mom_a") == BetaPrior(4.0, 5.0)
    for name, p_old in V1_NEXT_DRAWS.items():
        fam = d.family_of(name)
        trades = V1_TRADES[fam]
        own = [x for s, x in trades if s == name]
        expect, _, _ = shrunk_hurdle(
            [x for x in own if x > 0],
            [-x for x in own if x < 0],
            [x for _, x in trades if x > 0],
            [-x for _, x in trades if x < 0],
            min_edge=0.1,
        )
        assert d.metrics(name).hurdle == pytest.approx(expect, rel=1e-12)
        act, p = d.decide(name)
        assert p == p_old  # the RNG carried over
        assert act == (p > expect)
    # and it continues as a schema-2 decider
    d.record("mom_b", True, 1.0, trade_id="t8")
    assert Decider.from_json(d.to_json()).to_json() == d.to_json()


def test_schema_1_decayed_pnl_is_rebuilt_from_the_decayed_count_and_raw_average():
    data = json.loads(V1)
    data["signals"][0]["ws"] = 0.5  # as if forgotten: 2 wins decayed to 0.5
    d = Decider.from_snapshot(data)
    snap = d.snapshot()
    row = snap["signals"][0]
    assert row["wp"] == pytest.approx(0.5 * 4.0 / 2)
    assert row["lp"] == pytest.approx(2.0 * 1.5 / 2)
    assert snap["families"][0]["sums"] == pytest.approx([1.5, 3.0, 1.5, 3.5])


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda s: s["families"][0].update(sums=[1.0, 1.0, 1.0, 1.0]), "not the sum of its"),
        (lambda s: s["signals"][0].update(wp=-1.0), "wp must be >= 0"),
        (lambda s: s["signals"][0].pop("lp"), "lp"),
        (lambda s: s["config"].update(payoff_n0=-1.0), "payoff_n0"),
        (lambda s: s.update(schema="bayes_mem.decider/9"), "decider/9"),
    ],
)
def test_malformed_schema_2_snapshots_are_refused(mutate, match):
    d, _, _ = _family_with_symmetric_payoffs(1.0)
    data = json.loads(d.to_json())
    mutate(data)
    with pytest.raises(ValueError, match=match):
        Decider.from_snapshot(data)
