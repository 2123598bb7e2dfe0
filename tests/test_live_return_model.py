"""Live return model: roll-forward, posterior-predictive VaR/ES, units and bad input."""

import json

import numpy as np
import pytest

from bayes_mem.live.gjr_garch import GarchDraws, simulate, variance_path
from bayes_mem.live.return_model import ReturnModel
from bayes_mem.live.skewt import SkewT


def random_draws(rng: np.random.Generator, s: int = 200, vol_scale: float = 1.0) -> GarchDraws:
    return GarchDraws(
        mu=rng.normal(3e-4, 1e-4, s),
        omega=rng.uniform(1e-6, 3e-6, s) * vol_scale**2,
        alpha=rng.uniform(0.01, 0.05, s),
        gamma=rng.uniform(0.05, 0.15, s),
        beta=rng.uniform(0.82, 0.86, s),
        nu=rng.uniform(4, 9, s),
        lam=rng.uniform(-0.3, 0.0, s),
    )


@pytest.fixture
def model() -> ReturnModel:
    rng = np.random.default_rng(0)
    draws = {
        "SPY": random_draws(rng),
        "QQQ": random_draws(rng, vol_scale=1.5),
        "TLT": random_draws(rng, vol_scale=0.7),
    }
    sigma2 = {k: d.omega / (1 - d.alpha - d.gamma / 2 - d.beta) for k, d in draws.items()}
    return ReturnModel(draws, sigma2)


def test_update_rolls_every_draw_forward_like_a_direct_loop(model):
    before = model.sigma2()
    p = {k: model._p[k] for k in ("mu", "omega", "alpha", "gamma", "beta")}
    returns = np.array([-0.021, 0.004, 0.0])
    model.update(returns, kind="log")
    after = model.sigma2()
    for i in range(3):
        for s in range(model.n_draws):
            eps = returns[i] - p["mu"][i, s]
            expect = p["omega"][i, s] + (p["alpha"][i, s] + p["gamma"][i, s] * (eps < 0)) * eps**2
            expect += p["beta"][i, s] * before[i, s]
            assert after[i, s] == pytest.approx(expect, rel=1e-13)


def test_partial_update_by_mapping_leaves_other_symbols(model):
    before = model.sigma2()
    model.update({"QQQ": 0.01}, kind="simple")
    after = model.sigma2()
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    assert not np.allclose(after[1], before[1])


@pytest.mark.parametrize("level", [0.95, 0.975, 0.99])
def test_mixture_var_and_es_match_monte_carlo(model, level):
    f = model.risk(level)
    rng = np.random.default_rng(round(level * 1000))  # str hashes vary per process: not a seed
    n = 1_000_000
    alpha = 1 - level
    for i, _ in enumerate(model.symbols):
        mu, sd = model._p["mu"][i], np.sqrt(model.sigma2()[i])
        s = rng.integers(0, model.n_draws, n)
        nu = model._inn.nu[i]  # the model's tail weights (snapped to the table grid)
        z = SkewT.from_params(nu[s], model._p["lam"][i][s]).ppf(rng.random(n))
        x = mu[s] + sd[s] * z
        q = np.quantile(x, alpha)
        tail = -x[x <= q]
        es_se = tail.std() / np.sqrt(tail.size)
        assert f.var_log[i] == pytest.approx(-q, rel=0.01)
        assert abs(f.es_log[i] - tail.mean()) < 4 * es_se + 1e-3 * tail.mean()
        # the predictive CDF at the VaR is the tail probability
        cdf = SkewT.from_params(nu, model._p["lam"][i]).cdf((-f.var_log[i] - mu) / sd)
        assert cdf.mean() == pytest.approx(alpha, rel=1e-4)
        exact = model.risk(level, method="exact")
        cdf = SkewT.from_params(nu, model._p["lam"][i]).cdf((-exact.var_log[i] - mu) / sd)
        assert cdf.mean() == pytest.approx(alpha, rel=1e-9)


def test_fast_path_agrees_with_exact_path_cold_warm_and_after_shocks(model):
    for shocks in (
        [0.0, 0.0, 0.0],
        [-0.06, 0.05, -0.02],
        [0.001, -0.002, 0.0],
        [-0.12, -0.08, 0.1],
    ):
        model.update(shocks, kind="log")
        for level in (0.95, 0.99, 0.975):
            fast, exact = model.risk(level), model.risk(level, method="exact")
            np.testing.assert_allclose(fast.var_log, exact.var_log, rtol=2e-5)
            np.testing.assert_allclose(fast.es_log, exact.es_log, rtol=2e-5)


def test_snapping_tail_weights_to_the_grid_moves_risk_by_less_than_1e3(model):
    f = model.risk(0.99, method="exact")
    for i in range(len(model.symbols)):
        exact = SkewT.from_params(model._p["nu"][i], model._p["lam"][i])  # unsnapped
        mu, sd = model._p["mu"][i], np.sqrt(model.sigma2()[i])
        cdf = exact.cdf((-f.var_log[i] - mu) / sd).mean()
        assert cdf == pytest.approx(0.01, rel=1e-3)


def test_es_band_and_units(model):
    f = model.risk(0.975)
    assert np.all(f.es_band_log[:, 0] < f.es_band_log[:, 1])
    comp = f.component_es()
    np.testing.assert_allclose(f.es_band(0.5), np.quantile(comp, [0.25, 0.75], axis=1).T)
    # the mixture's ES lies within the range of its components' ES
    assert np.all((comp.min(axis=1) <= f.es_log) & (f.es_log <= comp.max(axis=1)))
    with pytest.raises(ValueError, match="prob"):
        f.es_band(1.0)
    assert np.all(f.es_log > f.var_log) and np.all(f.var_log > 0)
    np.testing.assert_allclose(f.var_simple, 1 - np.exp(-f.var_log))
    np.testing.assert_allclose(f.es_simple, 1 - np.exp(-f.es_log))
    assert f.es_simple[0] < f.es_log[0]  # a log loss of x is a smaller simple loss
    d = f.as_dict("QQQ")
    assert d["es_log"] == f.es_log[1] and d["level"] == 0.975
    # higher volatility symbol, higher risk
    assert f.es_log[1] > f.es_log[0] > f.es_log[2]


def test_volatility_spike_raises_cvar_within_days_while_percentile_barely_moves():
    rng = np.random.default_rng(7)
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[-0.15]
    )
    calm, _ = simulate(truth, 750, rng)
    draws = random_draws(rng)

    model = ReturnModel({"X": draws}, {"X": variance_path(calm[0], draws, np.var(calm[0]))[:, -1]})
    history = list(calm[0])

    def percentile_cvar(h):  # the seed plan: one historical percentile over a year
        h = np.asarray(h[-252:])
        return -h[h <= np.percentile(h, 2.5)].mean()

    es0, hist0 = model.risk(0.975).es_log[0], percentile_cvar(history)
    for shock in (0.03, -0.02, 0.035, -0.02):  # a volatility spike, not a crash
        model.update([shock], kind="log")
        history.append(shock)
    es3, hist3 = model.risk(0.975).es_log[0], percentile_cvar(history)
    model_rise, percentile_rise = es3 / es0 - 1, hist3 / hist0 - 1
    assert model_rise > 0.5, (es0, es3)
    assert percentile_rise < 0.15, (hist0, hist3)
    assert model_rise > 4 * percentile_rise


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m: m.update([np.nan, 0.0, 0.0], kind="log"), ValueError, "finite"),
        (lambda m: m.update([0.01, np.inf, 0.0], kind="log"), ValueError, "finite"),
        (lambda m: m.update([0.01, 0.0], kind="log"), ValueError, "3 numbers"),
        (lambda m: m.update({"SPY": 0.01, "XYZ": 0.0}, kind="log"), ValueError, "XYZ"),
        (lambda m: m.update({"SPY": "0.01"}, kind="log"), TypeError, "numbers"),
        (lambda m: m.update({"SPY": 0.01}, kind="pct"), ValueError, "'log' or 'simple'"),
        (lambda m: m.update({"SPY": -1.0}, kind="simple"), ValueError, "> -1"),
        (lambda m: m.risk(1.0), ValueError, "level"),
        (lambda m: m.risk(0.0), ValueError, "level"),
        (lambda m: m.risk(0.95, method="approx"), ValueError, "method"),
    ],
)
def test_bad_input_is_refused_and_state_unchanged(model, call, exc, match):
    before = json.dumps(model.snapshot())
    with pytest.raises(exc, match=match):
        call(model)
    assert json.dumps(model.snapshot()) == before


def test_snapshot_round_trip_is_exact(model):
    model.update([0.01, -0.02, 0.003], kind="log")
    model.risk(0.99)  # warm starts are part of the state
    model.update([0.02, -0.01, 0.0], kind="log")
    text = json.dumps(model.snapshot())
    back = ReturnModel.from_snapshot(json.loads(text))
    assert json.dumps(back.snapshot()) == text
    np.testing.assert_array_equal(back.risk(0.99).es_log, model.risk(0.99).es_log)
    with pytest.raises(ValueError, match="snapshot"):
        ReturnModel.from_snapshot({"schema": "x"})


def test_constructor_refuses_mismatched_symbols():
    rng = np.random.default_rng(0)
    d = random_draws(rng, 10)
    with pytest.raises(ValueError, match="do not match"):
        ReturnModel({"A": d}, {"B": d.omega})
    with pytest.raises(ValueError, match="same number of draws"):
        ReturnModel({"A": d, "B": random_draws(rng, 11)}, {"A": d.omega, "B": np.ones(11) * 1e-4})
    with pytest.raises(ValueError, match="positive"):
        ReturnModel({"A": d}, {"A": -d.omega})


def test_standardized_residuals_remove_volatility(model):
    model.update([0.0, 0.0, 0.0], kind="log")
    vol = model.volatility()
    shock = -3 * vol
    model.update(shock, kind="log")
    z = model.last_standardized_residual()
    np.testing.assert_allclose(z, -3, rtol=0.05)


@pytest.mark.slow
def test_from_history_fits_each_symbol_and_is_seeded():
    rng = np.random.default_rng(1)
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[-0.15]
    )
    r, _ = simulate(truth, 1_000, rng)
    a = ReturnModel.from_history({"X": np.expm1(r[0])}, kind="simple", n_draws=50, rng=3)
    b = ReturnModel.from_history({"X": np.expm1(r[0])}, kind="simple", n_draws=50, rng=3)
    np.testing.assert_array_equal(a.sigma2(), b.sigma2())
    assert a.n_draws == 50 and a.symbols == ("X",)


@pytest.mark.parametrize("level", [0.5, 0.6, 0.8])
def test_fast_path_handles_components_right_of_their_split(model, level):
    # near the centre, q lies right of many components' split point: the right-side branch.
    # There the VaR is near 0, so the accuracy is absolute: 1e-6 in return units.
    fast, exact = model.risk(level), model.risk(level, method="exact")
    np.testing.assert_allclose(fast.var_log, exact.var_log, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.es_log, exact.es_log, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- one symbol: the dedicated path
@pytest.fixture
def one() -> ReturnModel:
    rng = np.random.default_rng(0)
    d = random_draws(rng)
    return ReturnModel({"SPY": d}, {"SPY": d.omega / (1 - d.alpha - d.gamma / 2 - d.beta)})


def test_one_symbol_fast_path_agrees_with_exact_cold_warm_and_after_shocks(one):
    assert one._row is not None  # the dedicated single-row path is the one under test
    for shock in (0.0, -0.06, 0.05, 0.001, -0.12, 0.1):
        one.update([shock], kind="log")
        for level in (0.95, 0.99, 0.975):
            fast, exact = one.risk(level), one.risk(level, method="exact")
            np.testing.assert_allclose(fast.var_log, exact.var_log, rtol=2e-5)
            np.testing.assert_allclose(fast.es_log, exact.es_log, rtol=2e-5)
            np.testing.assert_allclose(fast.volatility, exact.volatility, rtol=1e-14)
        for level in (0.5, 0.6, 0.8):  # components right of their split: the general solver
            fast, exact = one.risk(level), one.risk(level, method="exact")
            np.testing.assert_allclose(fast.var_log, exact.var_log, rtol=0, atol=1e-6)
            np.testing.assert_allclose(fast.es_log, exact.es_log, rtol=0, atol=1e-6)


def test_one_symbol_model_matches_the_same_symbol_in_a_larger_model(one, model):
    draws = {k: GarchDraws(**{p: one._p[p][0] for p in one._p}) for k in ("SPY", "B")}
    both = ReturnModel(draws, {"SPY": one.sigma2()[0], "B": one.sigma2()[0] * 2})
    assert both._row is None
    steps = [
        ([-0.02], {"SPY": -0.02, "B": 0.0}, "log"),
        (np.array([0.013]), {"SPY": 0.013}, "log"),
        ({"SPY": -0.035}, {"SPY": -0.035}, "simple"),
        ((np.float64(0.004),), {"SPY": 0.004}, "simple"),
        ([1], {"SPY": 1}, "log"),  # an int: through the general path
    ]
    for alone, pair, kind in steps:
        one.update(alone, kind=kind)
        both.update(pair, kind=kind)
        np.testing.assert_array_equal(one.sigma2()[0], both.sigma2()[0])
        zo, zb = one.last_standardized_residual()[0], both.last_standardized_residual()[0]
        assert zo == pytest.approx(zb, rel=1e-13)
        for level in (0.9, 0.975, 0.99):
            a, b = one.risk(level), both.risk(level)
            assert a.var_log[0] == pytest.approx(b.var_log[0], rel=1e-12)
            assert a.es_log[0] == pytest.approx(b.es_log[0], rel=1e-12)
            assert a.volatility[0] == pytest.approx(b.volatility[0], rel=1e-14)
            np.testing.assert_allclose(a.es_band(0.9)[0], b.es_band(0.9)[0], rtol=1e-14)
            assert a.var_log.shape == a.es_log.shape == a.volatility.shape == (1,)


def test_one_symbol_newton_from_poor_starts_and_outside_the_table(one):
    row, tail = one._row, one._tail
    sd = np.sqrt(one.sigma2()[0])
    mu = one._p["mu"]
    exact = one.risk(0.99, method="exact")  # VaR ~0.0148
    for q0 in (-0.02, -0.015, -0.01, -0.005, 0.0):  # 2 to 7 Newton steps, inside the table
        var, es, n_eval = row.var_es(0.01, sd, q0)
        general = tail.var_es(0.01, mu, sd[None, :], np.array([q0]))
        assert n_eval == general[2] and n_eval > 1
        assert var == pytest.approx(general[0][0], rel=1e-12)
        assert es == pytest.approx(general[1][0], rel=1e-12)
        assert var == pytest.approx(exact.var_log[0], rel=2e-5)
        assert es == pytest.approx(exact.es_log[0], rel=2e-5)
    # from far left Newton overshoots right of the components' split points, and right of
    # every split the fast evaluation does not apply: it hands back to the general solver
    for q0 in (-0.08, -0.03, 0.05, float("nan")):
        assert row.var_es(0.01, sd, q0) is None
    # stale warm starts far off (into both cases): risk still gives the exact answer
    for warm in (-40.0, -5.0, 3.0):
        one._warm[0.01] = np.array([warm])
        f = one.risk(0.99)
        np.testing.assert_allclose(f.var_log, exact.var_log, rtol=2e-5)
        np.testing.assert_allclose(f.es_log, exact.es_log, rtol=2e-5)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda m: m.update([np.nan], kind="log"), ValueError, "finite"),
        (lambda m: m.update((np.inf,), kind="log"), ValueError, "finite"),
        (lambda m: m.update(np.array([-np.inf]), kind="simple"), ValueError, "finite"),
        (lambda m: m.update([0.01, 0.0], kind="log"), ValueError, "1 numbers"),
        (lambda m: m.update([], kind="log"), ValueError, "1 numbers"),
        (lambda m: m.update([True], kind="log"), ValueError, "1 numbers"),
        (lambda m: m.update(["0.01"], kind="log"), ValueError, "1 numbers"),
        (lambda m: m.update(0.01, kind="log"), ValueError, "1 numbers"),
        (lambda m: m.update({"XYZ": 0.0}, kind="log"), ValueError, "XYZ"),
        (lambda m: m.update({"SPY": None}, kind="log"), TypeError, "numbers"),
        (lambda m: m.update([0.01], kind="pct"), ValueError, "'log' or 'simple'"),
        (lambda m: m.update([-1.0], kind="simple"), ValueError, "> -1"),
        (lambda m: m.update({"SPY": -1.5}, kind="simple"), ValueError, "> -1"),
    ],
)
def test_one_symbol_bad_input_is_refused_and_state_unchanged(one, call, exc, match):
    one.update([0.01], kind="log")
    one.risk(0.975)
    before = json.dumps(one.snapshot())
    with pytest.raises(exc, match=match):
        call(one)
    assert json.dumps(one.snapshot()) == before


def test_one_symbol_snapshot_round_trip_and_concurrent_use(one):
    import threading

    one.update([0.01], kind="log")
    one.risk(0.975)
    back = ReturnModel.from_snapshot(json.loads(json.dumps(one.snapshot())))
    for model in (one, back):
        model.update([-0.02], kind="log")
    assert one.risk(0.975).es_log[0] == back.risk(0.975).es_log[0]
    # threads updating with the same return (order-free) and reading risk: no update lost, no
    # torn state seen
    n_threads, per_thread, r = 4, 200, 0.003
    seen = []

    def work():
        for _ in range(per_thread):
            one.update([r], kind="log")
            f = one.risk(0.975)
            seen.append((f.var_log[0], f.es_log[0]))

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(n_threads * per_thread):
        back.update([r], kind="log")
    np.testing.assert_array_equal(one.sigma2(), back.sigma2())
    assert all(np.isfinite(v) and 0 < v < e for v, e in seen)
    np.testing.assert_allclose(one.risk(0.975).es_log, back.risk(0.975).es_log, rtol=2e-5)


# ----------------------------------------------- stale histories and bounded states (issue 16)
def test_a_stale_price_history_is_refused_not_turned_into_absurd_risk():
    """65% zero returns (sd 5%): the default fit ran to nu = 2.1, omega ~1e-100 and unflagged
    (converged=False was never checked); the model then answered with ES of 1e-8 or 1e39."""
    from tests.test_gjr_garch import stale_prices

    good = simulate(
        GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0],
                   lam=[-0.15]), 400, np.random.default_rng(1),
    )[0][0]  # fmt: skip
    with pytest.raises(ValueError, match=r"'XYZ'.*6\d\.\d% of the daily returns are zero"):
        ReturnModel.from_history({"SPY": good, "XYZ": stale_prices()}, kind="log", n_draws=20)


def degenerate_draws(s: int = 50) -> tuple[GarchDraws, np.ndarray]:
    """Draws like the stale fit's: omega ~3e-89, beta ~1e-50, nu ~2.1, states ~1e-45."""
    rng = np.random.default_rng(0)
    d = GarchDraws(
        mu=rng.normal(0, 1e-4, s), omega=3e-89 * np.exp(rng.normal(0, 2, s)),
        alpha=np.full(s, 0.3), gamma=np.full(s, 0.2), beta=np.full(s, 1e-50),
        nu=2.1 + rng.uniform(0, 0.01, s), lam=rng.uniform(-0.2, 0.2, s),
    )  # fmt: skip
    return d, 1e-45 * np.exp(rng.normal(0, 3, s))


def test_degenerate_draws_and_states_are_refused_at_construction():
    """Were accepted: risk(0.975) gave a one-day ES of 1e12 and VaR -5e81, and after one update
    NaN (one day) or an IndexError from the tail table (five days)."""
    d, s2 = degenerate_draws()
    with pytest.raises(ValueError, match=r"draw \d+ of 'XYZ' has a long-run daily volatility"):
        ReturnModel({"XYZ": d}, {"XYZ": s2})
    rng = np.random.default_rng(3)
    sane = random_draws(rng, 40)
    v = sane.long_run_variance
    for factor in (1e5, 1e-5):
        with pytest.raises(ValueError, match=r"sigma2 of draw 0 of 'SPY' is .* times the draw"):
            ReturnModel({"SPY": sane}, {"SPY": v * np.r_[factor, np.ones(39)]})
    ReturnModel({"SPY": sane}, {"SPY": v * np.r_[1e4, 1e-4, np.ones(38)]})  # the bounds: accepted


@pytest.mark.parametrize("n_symbols", [1, 3])
def test_an_absurd_day_lifts_the_state_to_its_ceiling_and_risk_stays_finite(n_symbols):
    """A -30 log return (a price divided by 1e13) put the variance at ~1e8 times its long-run
    value. Input is now bounded to +-1.0, which on a quiet symbol (long-run daily sd ~6e-5) is
    still ~1e7 times its long-run variance; the state stops at STATE_RANGE[1] times it, in
    update, in the one-symbol path and in the simulated paths of horizons > 1, and a snapshot of
    it loads back."""
    from bayes_mem.live.return_model import STATE_RANGE

    rng = np.random.default_rng(4)
    names = ["A", "B", "C"][:n_symbols]
    draws = {k: random_draws(rng, 40, vol_scale=0.01) for k in names}
    model = ReturnModel(draws, {k: d.long_run_variance for k, d in draws.items()})
    model.update([-1.0] * n_symbols, kind="log")
    ceiling = np.stack([STATE_RANGE[1] * draws[k].long_run_variance for k in names])
    np.testing.assert_allclose(model.sigma2(), ceiling, rtol=1e-15)
    for side in ("long", "short"):
        for horizon in (1, 5):
            f = model.risk(0.975, side=side, horizon=horizon)
            assert np.all(np.isfinite(f.var_log)) and np.all(f.es_log > f.var_log)
            assert np.all(f.es_log < 50 * np.sqrt(ceiling.max()))
    back = ReturnModel.from_snapshot(json.loads(json.dumps(model.snapshot())))
    np.testing.assert_array_equal(back.sigma2(), model.sigma2())


def test_risk_is_finite_for_any_accepted_draws_and_states():
    """Tail weights 2.1 to 200, skews +-0.95, persistence 0 to 0.999, long-run volatilities
    1e-6 to 1 within one mixture, states at both bounds: finite VaR and ES >= VaR, fast and
    exact, both sides, one and three days."""
    from bayes_mem.live.return_model import STATE_RANGE
    from bayes_mem.live.skewt import asymmetry_weight

    rng = np.random.default_rng(11)

    def extreme(s=30):
        nu = rng.choice([2.1, 2.5, 4.0, 30.0, 200.0], s)
        lam = rng.choice([-0.95, -0.5, 0.0, 0.5, 0.95], s)
        vol = 10 ** rng.uniform(-5.9, -0.1, s)
        pers = rng.choice([0.0, 0.5, 0.99, 0.999], s)
        beta = pers * rng.uniform(0, 1, s)
        g, kappa = rng.uniform(0, 1, s), asymmetry_weight(nu, lam)
        alpha = (1 - g) * (pers - beta) / (1 - kappa)
        d = GarchDraws(mu=rng.normal(0, 0.01, s) * vol, omega=vol**2 * (1 - pers) + 1e-300,
                       alpha=alpha, gamma=g * (pers - beta) / kappa - alpha, beta=beta, nu=nu,
                       lam=lam)  # fmt: skip
        return d, d.long_run_variance * rng.choice([STATE_RANGE[0], 1.0, STATE_RANGE[1]], s)

    for _ in range(4):
        (d1, s1), (d2, s2) = extreme(), extreme()
        for model in (ReturnModel({"x": d1}, {"x": s1}),
                      ReturnModel({"x": d1, "y": d2}, {"x": s1, "y": s2})):  # fmt: skip
            for side in ("long", "short"):
                for horizon in (1, 3):
                    for method in ("fast", "exact"):
                        f = model.risk(0.975, side=side, horizon=horizon, method=method)
                        assert np.all(np.isfinite(f.var_log)) and np.all(np.isfinite(f.es_log))
                        assert np.all(f.es_log >= f.var_log)
