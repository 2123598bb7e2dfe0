"""PayoffModel: posterior of mean win/loss sizes per unit notional, against closed forms."""

import json
import math
import threading

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live import BetaPrior, Decider, PayoffModel, kelly_notional
from bayes_mem.live.decider import UnknownSignalError

N0 = 5.0


def strength(weight, n0=N0):
    """Prior strength of a signal whose family centre is worth ``weight`` trades."""
    return 1.0 / (1.0 / n0 + 1.0 / weight)


def shape_of(sizes):
    """The family shape k: 1 / k = pooled CV^2 blended with 1 (2 trades), in [0.25, 100]."""
    sizes = np.asarray(sizes, dtype=float)
    cv2 = sizes.var() / sizes.mean() ** 2
    inv_k = (2.0 + sizes.size * cv2) / (2.0 + sizes.size)
    return float(np.clip(1.0 / inv_k, 0.25, 100.0))


def test_recovers_known_mean_sizes_from_simulated_gamma_trades():
    rng = np.random.default_rng(0)
    truth = {"a": (0.02, 0.015), "b": (0.04, 0.01), "c": (0.01, 0.03)}  # (win, loss) means
    m = PayoffModel()
    for name, (win, loss) in truth.items():
        m.register(name, "fam")
        for _ in range(3_000):
            won = bool(rng.random() < 0.5)
            mu = win if won else loss
            m.record(name, won, float(rng.gamma(2.0, mu / 2.0)))
    for name, (win, loss) in truth.items():
        e_w, e_l = m.mean(name)
        s = m.summary(name)
        for side, true, est in (("win", win, e_w), ("loss", loss, e_l)):
            sd = s[side]["posterior_sd"]
            assert abs(est - true) < 4 * sd, (name, side)
            # sd of a mean of ~1500 Gamma(2) sizes is ~ mu / sqrt(3000); the pooled shape is
            # biased low (signals' means differ), so wider, but not absurdly
            assert true / math.sqrt(2 * 1500) < sd < 3 * true / math.sqrt(2 * 1500)
        w, loss_d = m.draws(name, 20_000, np.random.default_rng(1))
        assert w.mean() == pytest.approx(win, rel=0.05)
        assert loss_d.mean() == pytest.approx(loss, rel=0.05)


def test_shrinks_toward_the_family_mean_with_n0_pseudo_trades():
    rng = np.random.default_rng(2)
    m = PayoffModel(n0=N0)
    m.register("veteran", "fam")
    m.register("new", "fam")
    vet_w = rng.gamma(3.0, 0.02 / 3.0, 4_000)
    vet_l = rng.gamma(3.0, 0.02 / 3.0, 4_000)
    for x, y in zip(vet_w, vet_l, strict=True):
        m.record("veteran", True, float(x))
        m.record("veteran", False, float(y))
    # one huge win and one tiny loss: the plug-in ratio would be 100
    m.record("new", True, 0.10)
    m.record("new", False, 0.001)
    e_w, e_l = m.mean("new")
    fam_w, fam_l = np.append(vet_w, 0.10), np.append(vet_l, 0.001)
    n_p = strength(fam_w.size)
    assert e_w == pytest.approx((n_p * fam_w.mean() + 0.10) / (n_p + 1), rel=1e-10)
    assert e_l == pytest.approx((n_p * fam_l.mean() + 0.001) / (n_p + 1), rel=1e-10)
    assert e_w / e_l < 2.5  # the plug-in ratio was 100; the family's is 1
    # the strength is n0 trades: after n0 trades of size x the mean is halfway to x
    m.register("halfway", "fam")
    for _ in range(int(N0)):
        m.record("halfway", True, 0.05)
    fam_w = np.append(fam_w, [0.05] * int(N0))
    centre = fam_w.mean()
    half = m.mean("halfway")[0]
    n_p = strength(fam_w.size)
    assert half == pytest.approx((n_p * centre + N0 * 0.05) / (n_p + N0), rel=1e-10)
    assert half == pytest.approx((centre + 0.05) / 2, rel=2e-3)  # n_p = 4.997
    # a stronger prior pulls harder, with the same centre
    strong = PayoffModel.from_dict({**m.to_dict(), "config": {**m.to_dict()["config"], "n0": 50.0}})
    assert abs(strong.mean("halfway")[0] - centre) < abs(half - centre)
    summary = m.summary("new")["win"]
    assert summary["own_mean"] == pytest.approx(0.10) and summary["trades"] == 1
    assert summary["family_mean"] == pytest.approx(np.append(vet_w, [0.10] + [0.05] * 5).mean())
    assert summary["posterior_mean"] == pytest.approx(m.mean("new")[0])


def test_a_family_without_history_uses_the_default_with_a_weak_prior():
    m = PayoffModel()
    m.register("s", "empty")
    with pytest.raises(ValueError, match=r"'s'.*no default win size.*fallback_win"):
        m.draws("s", 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no default loss size"):
        m.mean("s", fallback_win=0.02)
    assert m.mean("s", fallback_win=0.02, fallback_loss=0.01) == pytest.approx((0.02, 0.01))
    m.set_default(win=0.03, loss=0.015)
    assert m.default == (0.03, 0.015)
    assert m.mean("s") == pytest.approx((0.03, 0.015))
    assert m.mean("s", fallback_win=0.02) == pytest.approx((0.02, 0.015))  # per call wins
    # the default is worth default_weight = 1 trade in the centre; with the signal's own first
    # trade in the family, the centre is worth 2 trades and the signal's prior 5 * 2 / 7
    m.record("s", True, 0.09)
    centre = (0.09 + 1.0 * 0.03) / 2.0
    n_p = strength(2.0)
    assert m.mean("s")[0] == pytest.approx((n_p * centre + 0.09) / (n_p + 1.0), rel=1e-12)
    assert m.summary("s")["win"]["prior_strength"] == pytest.approx(n_p)
    # weak: with no history at all, the prior is worth n0 / (n0 + 1) = 5/6 of a trade
    m.register("t", "other")
    assert m.summary("t")["win"]["prior_strength"] == pytest.approx(5 / 6)
    assert m.summary("t", fallback_win=0.02)["win"]["posterior_mean"] == pytest.approx(0.02)


def test_forgets_at_the_same_rate_as_a_decider_with_the_same_discount():
    rng = np.random.default_rng(3)
    for clock in ("outcome", "manual"):
        d = Decider({"fam": BetaPrior(1.0, 1.0)}, discount=0.9, clock=clock, rng=0)
        m = PayoffModel(discount=0.9, clock=clock)
        for name in ("a", "b"):
            d.register(name, "fam")
            m.register(name, "fam")
        for t in range(400):  # renormalisations at 0.9: every ~1,400 ticks, so add manual ones
            name = "a" if rng.random() < 0.7 else "b"
            won = bool(rng.random() < 0.55)
            size = float(rng.gamma(2.0, 0.01))
            d.record(name, won, size if won else -size)
            m.record(name, won, size)
            if t % 50 == 0:
                d.tick(7)
                m.tick(7)
            if t % 97 == 0:
                d.forget(0.5, family="fam")
                m.forget(0.5, family="fam")
        for name in ("a", "b"):
            dm, s = d.metrics(name), m.summary(name)
            assert s["win"]["effective_trades"] == pytest.approx(dm.effective_wins, rel=1e-12)
            assert s["loss"]["effective_trades"] == pytest.approx(dm.effective_losses, rel=1e-12)
            assert (s["win"]["trades"], s["loss"]["trades"]) == (dm.wins, dm.losses)
        assert m.ticks == d.ticks


def test_decayed_sums_match_the_closed_form_and_decay_to_the_default_not_to_zero():
    gamma = 0.8
    m = PayoffModel(discount=gamma)
    m.set_default(win=0.02, loss=0.02)
    m.register("s", "f")
    sizes = [0.01, 0.05, 0.03, 0.07]
    for x in sizes:
        m.record("s", True, x)
    weights = gamma ** np.arange(len(sizes))[::-1]
    n_eff, s_eff = weights.sum(), (weights * sizes).sum()
    summary = m.summary("s")["win"]
    assert summary["effective_trades"] == pytest.approx(n_eff, rel=1e-12)
    assert summary["own_mean"] == pytest.approx(s_eff / n_eff, rel=1e-12)
    weight = n_eff + 1.0
    centre = (s_eff + 0.02) / weight
    n_p = strength(weight)
    assert m.mean("s")[0] == pytest.approx((n_p * centre + s_eff) / (n_p + n_eff), rel=1e-12)
    m.tick(5_000)  # many renormalisations at 0.8 (one per ~660 ticks)
    assert m.mean("s") == pytest.approx((0.02, 0.02), rel=1e-12)
    assert m.summary("s")["win"]["trades"] == 4
    w, loss = m.draws("s", 1_000, np.random.default_rng(0))
    assert np.isfinite(w).all() and (w > 0).all() and np.isfinite(loss).all()


def test_without_a_default_a_fully_decayed_family_is_refused_not_degenerate():
    m = PayoffModel(discount=0.9)
    m.register("s", "f")
    for x in (0.01, 0.02, 0.03):
        m.record("s", True, x)
        m.record("s", False, x)
    # a lone signal without a default: the centre is its own decayed mean, and so is the posterior
    w = 0.9 ** np.array([5.0, 3.0, 1.0])
    assert m.mean("s")[0] == pytest.approx((w * [0.01, 0.02, 0.03]).sum() / w.sum(), rel=1e-12)
    m.tick(30)  # 0.9 ** 30 x < 3 trades: < 1 effective trade left per side
    with pytest.raises(ValueError, match="less than one trade"):
        m.draws("s", 5, np.random.default_rng(0))
    assert m.summary("s")["win"]["posterior_mean"] is None


def test_posterior_draws_have_the_closed_form_gamma_moments():
    rng = np.random.default_rng(4)
    m = PayoffModel(n0=3.0)
    fam_w, fam_l = [], []
    for name, scale in (("a", 0.02), ("b", 0.03)):
        m.register(name, "fam")
        for _ in range(12):
            won = bool(rng.random() < 0.5)
            x = float(rng.gamma(1.5, scale))
            m.record(name, won, x)
            (fam_w if won else fam_l).append(x)
    own = m.summary("a")
    for side, sizes in (("win", fam_w), ("loss", fam_l)):
        s = own[side]
        k = shape_of(sizes)
        assert s["shape"] == pytest.approx(k, rel=1e-12)
        n_p = strength(len(sizes), 3.0)
        assert s["prior_strength"] == pytest.approx(n_p, rel=1e-12)
        assert s["prior_centre"] == pytest.approx(np.mean(sizes), rel=1e-12)
        n_own, s_own = s["effective_trades"], s["own_mean"] * s["effective_trades"]
        alpha, beta = k * (n_p + n_own) + 1.0, n_p * np.mean(sizes) + s_own
        mean, var = k * beta / (alpha - 1), (k * beta) ** 2 / ((alpha - 1) ** 2 * (alpha - 2))
        assert s["posterior_mean"] == pytest.approx(mean, rel=1e-12)
        assert s["posterior_sd"] == pytest.approx(math.sqrt(var), rel=1e-12)
    w, loss = m.draws("a", 400_000, np.random.default_rng(5))
    for side, x in (("win", w), ("loss", loss)):
        s = own[side]
        assert x.mean() == pytest.approx(s["posterior_mean"], rel=5e-3)
        assert x.std() == pytest.approx(s["posterior_sd"], rel=3e-2)
        # k beta / mu is exactly Gamma(alpha): a KS test on a subsample
        k, n_p = s["shape"], s["prior_strength"]
        alpha = k * (n_p + s["effective_trades"]) + 1.0
        beta = n_p * s["prior_centre"] + s["own_mean"] * s["effective_trades"]
        assert stats.kstest(k * beta / x[:20_000], stats.gamma(alpha).cdf).pvalue > 1e-3
    assert np.corrcoef(w, loss)[0, 1] == pytest.approx(0.0, abs=0.01)  # independent sides


def test_uncertain_payoffs_shrink_kelly_and_many_trades_approach_plug_in():
    rng = np.random.default_rng(6)
    m = PayoffModel()
    m.set_default(win=0.03, loss=0.025)
    p = rng.beta(550, 450, 200)
    m.register("few", "f1")
    m.record("few", True, 0.03)
    m.record("few", False, 0.025)
    m.register("many", "f2")
    for _ in range(5_000):
        m.record("many", True, float(rng.gamma(4.0, 0.03 / 4)))
        m.record("many", False, float(rng.gamma(4.0, 0.025 / 4)))
    for name, lo, hi in (("few", 0.0, 0.8), ("many", 0.97, 1.0)):
        w, loss = m.draws(name, 200, np.random.default_rng(7))
        e_w, e_l = m.mean(name)
        plug = kelly_notional(p.mean(), e_w, e_l, fraction=1.0, cap=1e9)
        ours = kelly_notional(p, w, loss, fraction=1.0, cap=1e9)
        assert lo * plug < ours < hi * plug, name


def test_zero_size_trades_count_and_pull_the_mean_down():
    m = PayoffModel()
    m.set_default(win=0.02, loss=0.02)
    m.register("s", "f")
    m.record("s", True, 0.04)
    before = m.mean("s")[0]
    m.record("s", True, 0.0)
    assert m.summary("s")["win"]["trades"] == 2
    assert m.summary("s")["win"]["own_mean"] == pytest.approx(0.02)
    assert m.mean("s")[0] < before
    # only zero sizes and no default: no positive scale to centre on
    z = PayoffModel()
    z.register("s", "f")
    z.record("s", False, 0.0)
    with pytest.raises(ValueError, match="loss sizes above 0"):
        z.mean("s", fallback_win=0.01)


def _state(m: PayoffModel) -> str:
    return m.to_json()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda m: m.record("s", True, -0.01), ValueError, r"size must be in \[0, 1e\+06\].*-0.01"),
        (lambda m: m.record("s", False, 250.0 * 1e6), ValueError, "unit error|per unit notional"),
        (lambda m: m.record("s", True, math.nan), ValueError, "size must be finite"),
        (lambda m: m.record("s", True, "0.01"), TypeError, "size must be a real number"),
        (lambda m: m.record("s", 1, 0.01), TypeError, "won must be a bool"),
        (lambda m: m.record("ghost", True, 0.01), UnknownSignalError, "ghost"),
        (lambda m: m.record(3, True, 0.01), TypeError, "signal name must be a str"),
        (lambda m: m.register("s", "other"), ValueError, "registered in family 'f'"),
        (lambda m: m.register("", "f"), ValueError, "signal name"),
        (lambda m: m.draws("s", 0, np.random.default_rng(0)), ValueError, "n must be >= 1"),
        (lambda m: m.draws("s", 5, 0), TypeError, "rng must be a numpy Generator"),
        (lambda m: m.draws("s", 5, np.random.default_rng(0), fallback_win=0.0), ValueError, "0.0"),
        (lambda m: m.mean("s", fallback_loss=math.inf), ValueError, "fallback_loss"),
        (lambda m: m.set_default(win=-1.0, loss=0.01), ValueError, "default win size"),
        (lambda m: m.tick(-1), ValueError, "steps"),
        (lambda m: m.forget(1.5), ValueError, "factor"),
        (lambda m: m.forget(0.5, family="ghost"), UnknownSignalError, "ghost"),
    ],
)
def test_bad_input_is_refused_naming_the_value_and_state_is_unchanged(call, error, match):
    m = PayoffModel(discount=0.9)
    m.register("s", "f")
    m.record("s", True, 0.02)
    m.record("s", False, 0.01)
    before = _state(m)
    with pytest.raises(error, match=match):
        call(m)
    assert _state(m) == before


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n0": 0.0}, "n0"),
        ({"default_weight": 0.5}, "default_weight"),
        ({"discount": 0.0}, "discount"),
        ({"clock": "daily"}, "clock"),
    ],
)
def test_bad_configuration_is_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PayoffModel(**kwargs)


def test_snapshot_round_trips_exactly_and_continues_identically():
    rng = np.random.default_rng(8)
    m = PayoffModel(n0=4.0, discount=0.7)  # renormalises every ~410 ticks
    m.set_default(win=0.02, loss=None)
    names = ["α-mom", 'o\'brien "q"', "x; DROP TABLE t;--"]
    for i, name in enumerate(names):
        m.register(name, "fam 1" if i % 2 else "fam 2")

    def exercise(model, seed):
        g, out = np.random.default_rng(seed), []
        for t in range(900):
            name = names[t % 3]
            model.record(name, t % 5 != 0, float(g.gamma(2.0, 0.01)))
            if t % 100 == 0:
                out.append([x.tolist() for x in model.draws(name, 4, g, fallback_loss=0.01)])
        return out

    exercise(m, 1)
    text = m.to_json()
    restored = PayoffModel.from_json(text)
    assert restored.to_json() == text
    assert json.loads(text)["schema"] == "bayes_mem.payoff/1"
    assert exercise(restored, 2) == exercise(m, 2)
    assert restored.to_json() == m.to_json()
    assert restored.summary(names[0], fallback_loss=0.01) == m.summary(names[0], fallback_loss=0.01)
    del rng


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(schema="bayes_mem.payoff/0"), "schema"),
        (lambda d: d["signals"][0].update(win=[1.0, -0.1, 0.0]), "win must be >= 0"),
        (lambda d: d["signals"][0].update(win=[1.0, 0.1]), r"\[n, sum, sum of squares\]"),
        (lambda d: d["signals"][0].update(wins=-1), "wins"),
        (lambda d: d["signals"][0].update(family="ghost"), "ghost"),
        (lambda d: d["signals"].append(dict(d["signals"][0])), "twice"),
        (lambda d: d["families"][0].update(win=[9.0, 9.0, 9.0]), "not the sum of its signals"),
        (lambda d: d["config"].update(n0=-1), "n0"),
        (lambda d: d["clock_state"].update(scale=2.0), "scale"),
        (lambda d: d.pop("families"), "families"),
    ],
)
def test_malformed_snapshots_are_refused_naming_the_field(mutate, match):
    m = PayoffModel(discount=0.9)
    m.register("s", "f")
    m.record("s", True, 0.02)
    data = json.loads(m.to_json())
    mutate(data)
    with pytest.raises(ValueError, match=match):
        PayoffModel.from_dict(data)


def test_concurrent_records_are_all_counted():
    m = PayoffModel(discount=0.999)
    names = [f"s{i}" for i in range(4)]
    for name in names:
        m.register(name, "f")
    barrier = threading.Barrier(4)

    def worker(i):
        barrier.wait()
        for t in range(2_000):
            m.record(names[i], t % 3 != 0, 0.01 * (1 + t % 7))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert m.ticks == 8_000
    s = m.summary("s0")
    assert s["win"]["trades"] + s["loss"]["trades"] == 2_000
    assert s["win"]["family_trades"] + s["loss"]["family_trades"] == 8_000
    PayoffModel.from_json(m.to_json())  # family sums still the members' sums


# ---------------------------------------------------------------------------- Kelly's nodes
def test_gamma_quantile_table_matches_scipy():
    """The tabulated mid-quantiles of Gamma(alpha) (interpolated in 1 / sqrt(alpha)) are
    scipy's to 1e-5 relative over alpha in [1, 10^4] (and exact below 1)."""
    from scipy import special

    from bayes_mem.live.payoff import gamma_quantiles

    for m in (16, 64):
        u = (np.arange(m) + 0.5) / m
        for a in np.concatenate([np.linspace(1.0, 3.0, 41), np.geomspace(3.0, 1e4, 60)]):
            np.testing.assert_allclose(gamma_quantiles(a, m), special.gammaincinv(a, u), rtol=1e-5)
        np.testing.assert_allclose(gamma_quantiles(0.7, m), special.gammaincinv(0.7, u))


def _kelly_payoffs(win, loss, n_trades, seed=0):
    pm = PayoffModel()
    pm.register("s", "fam")
    rng = np.random.default_rng(seed)
    for _ in range(n_trades):
        pm.record("s", True, float(rng.gamma(4.0, win / 4.0)))
        pm.record("s", False, float(rng.gamma(4.0, loss / 4.0)))
    return pm


@pytest.mark.parametrize(
    ("p", "win", "loss", "n_trades", "cap"),
    [(0.58, 0.02, 0.02, 10, 50.0), (0.6, 0.012, 0.01, 40, 50.0), (0.56, 0.03, 0.02, 4, 50.0),
     (0.52, 0.03, 0.025, 4, 50.0), (0.6, 0.012, 0.01, 40, 1.0)],
)  # fmt: skip
def test_kelly_on_quantile_nodes_matches_brute_force_monte_carlo(p, win, loss, n_trades, cap):
    """KellyLimit's estimator (64 deterministic mid-quantile nodes per size, the win rate by its
    mean) against the brute-force optimum over 2 x 10^6 joint Monte Carlo draws of (W, L) from
    the same posterior (kelly_notional, validated): within 1% (the Monte Carlo optimum's own
    sampling error is a few 0.1%: the optimum is the edge over the sizes' spread, so small
    errors in the sampled means move it); no edge: both 0; capped: both the cap exactly. Below
    plug-in Kelly at the posterior means."""
    from bayes_mem.live.payoff import draw_sizes, posterior_means, size_nodes
    from bayes_mem.live.sizing import kelly_notional_nodes

    params = _kelly_payoffs(win, loss, n_trades).posterior("s")
    w_nodes, l_nodes = size_nodes(params)
    got = kelly_notional_nodes(p, w_nodes, l_nodes, 0.25, cap)
    w, lo = draw_sizes(params, 2_000_000, np.random.default_rng(42))
    want = kelly_notional(p, w, lo, fraction=0.25, cap=cap)
    assert got == pytest.approx(want, rel=0.01)
    if want == cap:
        assert got == cap
    ew, el = posterior_means(params)
    assert got <= min(max(0.25 * (p * ew - (1 - p) * el) / (ew * el), 0.0), cap)
    # deterministic: the same posterior, the same answer (bit for bit)
    assert kelly_notional_nodes(p, *size_nodes(params), 0.25, cap) == got


def test_kelly_nodes_of_known_payoffs_equal_plug_in_kelly():
    """With sizes known (a posterior concentrated by 10^6 trades of one size) the optimum is
    the plug-in (p W - (1 - p) L) / (W L)."""
    from bayes_mem.live.payoff import size_nodes
    from bayes_mem.live.sizing import kelly_notional_nodes

    pm = PayoffModel()
    pm.register("s", "fam")
    for _ in range(2000):
        pm.record("s", True, 0.012)
        pm.record("s", False, 0.01)
    params = pm.posterior("s")
    got = kelly_notional_nodes(0.55, *size_nodes(params), 1.0, 1e6)
    ew, el = pm.mean("s")
    plug = (0.55 * ew - 0.45 * el) / (ew * el)
    assert got == pytest.approx(plug, rel=0.01) and got < plug


def test_kelly_nodes_fast_checks_agree_with_the_general_solver():
    """kelly_notional_nodes' shortcuts (no edge at 0; the slope at the cap) give what the
    validated kelly_notional gives on the same nodes paired up, over random posteriors, capped
    or not."""
    from bayes_mem.live.payoff import size_nodes
    from bayes_mem.live.sizing import kelly_notional_nodes

    rng = np.random.default_rng(9)
    kinds = set()
    for _ in range(300):
        k = rng.uniform(0.5, 20.0)
        n_post = rng.uniform(1.0, 200.0)
        win = (k * n_post + 1.0, rng.uniform(0.002, 0.05) * n_post, k, n_post)
        loss = (k * n_post + 1.0, rng.uniform(0.002, 0.05) * n_post, k, n_post)
        w, lo = size_nodes((win, loss))
        p, cap = rng.uniform(0.3, 0.8), float(rng.choice([0.5, 1.0, 5.0, 100.0]))
        got = kelly_notional_nodes(p, w, lo, 0.25, cap)
        want = kelly_notional(np.full(w.size, p), w, lo, fraction=0.25, cap=cap)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        kinds.add("zero" if got == 0.0 else "cap" if got == cap else "interior")
    assert kinds == {"zero", "cap", "interior"}


def test_kelly_of_many_posteriors_at_once_equals_one_at_a_time_bit_for_bit():
    """The tick's Kelly (``size_nodes_rows`` and ``kelly_notional_nodes_screen``, one array pass
    over all events) against the decision's (``size_nodes`` and ``kelly_notional_nodes`` per
    posterior), over random posteriors and four (fraction, cap) pairs: every node equal to the
    last bit; every row the screen decides equal to the scalar answer exactly, and every 0 (no
    edge) and every cap the scalar path finds without a search decided; rows with a shape below
    1 (never a payoff posterior) flagged and left to the scalar path."""
    from bayes_mem.live.payoff import size_nodes, size_nodes_rows
    from bayes_mem.live.sizing import kelly_notional_nodes, kelly_notional_nodes_screen

    rng = np.random.default_rng(17)
    n = 400

    def side():
        k = rng.uniform(0.3, 8.0, n)
        n_post = np.exp(rng.uniform(np.log(0.2), np.log(500.0), n))
        beta = np.exp(rng.uniform(np.log(1e-4), np.log(0.2), n)) * n_post
        alpha = k * n_post + 1.0
        alpha[:8] = rng.uniform(0.2, 0.99, 8)  # below 1: the exact (scipy) nodes
        return alpha, beta, k, n_post

    win, loss = side(), side()
    p = rng.uniform(0.05, 0.95, n)
    w, lo, ok = size_nodes_rows(win, loss)
    assert not ok[:8].any() and ok[8:].all()
    kinds = set()
    for fraction, cap in [(0.25, 1.0), (1.0, 10.0), (0.5, 3.0), (0.1, 0.2)]:
        screened = kelly_notional_nodes_screen(p, w, lo, fraction, cap)
        for i in range(8, n):
            one_w, one_l = size_nodes(tuple(tuple(float(x[i]) for x in s) for s in (win, loss)))
            assert (one_w == w[i]).all() and (one_l == lo[i]).all(), i
            want = kelly_notional_nodes(float(p[i]), one_w, one_l, fraction, cap)
            if screened[i] == screened[i]:
                assert screened[i] == want, (i, fraction, cap)
                kinds.add("zero" if want == 0.0 else "cap")
            else:
                assert want > 0.0, i  # only an edge is left to the search
                feasible = cap / fraction * float(one_l.max()) < 1.0
                assert want < cap or not feasible, i
                kinds.add("searched")
    assert kinds == {"zero", "cap", "searched"}


def test_the_engines_cached_posterior_follows_every_change_of_the_model():
    """``_posterior_trusted`` keeps its answers per (signal, fallback) until the model changes:
    after each kind of change (a record, forgetting one family or all, a tick of the clock, a new
    default, a new member of the family) it answers what a model rebuilt from the snapshot
    answers, to the last bit, for every signal and fallback asked before."""
    model = PayoffModel(discount=0.9, clock="manual")
    for name, fam in [("a", "mom"), ("b", "mom"), ("c", "rev")]:
        model.register(name, fam)
    asks = [(s, f) for s in ("a", "b", "c") for f in (0.01, 0.02)]

    def check() -> None:
        fresh = PayoffModel.from_dict(model.to_dict())
        for s, f in asks:
            cached = model._posterior_trusted(s, f)
            assert cached == fresh._posterior_trusted(s, f), (s, f)
            assert model._posterior_trusted(s, f) is cached  # a hit: the same object

    check()
    changes = [  # (change, whether it moves an answer asked: a default or a new member with no
        # trade does not, as the fallback stands in for the default)
        (lambda: model.record("a", True, 0.03), True),
        (lambda: model.record("b", False, 0.02), True),  # a's moves too (its family's sums)
        (lambda: model.forget(0.5, family="mom"), True),
        (lambda: model.forget(0.8), True),
        (lambda: model.tick(3), True),
        (lambda: model.set_default(win=0.015, loss=0.01), False),
        (lambda: model.register("d", "mom"), False),
        (lambda: model.record("d", True, 0.05), True),
    ]
    for i, (change, moves) in enumerate(changes):
        before = {k: model._posterior_trusted(*k) for k in asks}
        change()
        check()
        moved = any(model._posterior_trusted(*k) != before[k] for k in asks)
        assert moved == moves, i
