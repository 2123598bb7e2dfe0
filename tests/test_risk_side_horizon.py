"""ReturnModel risk by side (long / short) and horizon (h-day sums), and the position_risk
accessor: against numerical integration, convolution and independent brute-force simulation."""

import itertools
import json
import threading

import numpy as np
import pytest
from scipy import integrate, optimize

from bayes_mem.live.gjr_garch import PARAMS, GarchDraws, simulate
from bayes_mem.live.mixture_tail import MixtureTail
from bayes_mem.live.return_model import MAX_HORIZON, ReturnModel
from bayes_mem.live.skewt import SkewT
from tests.test_live_return_model import random_draws


def skewed_draws(rng: np.random.Generator, s: int = 20, vol: float = 1.0) -> GarchDraws:
    """Strong negative skew (lam ~ -0.4): a long's left tail is much heavier than a short's."""
    return GarchDraws(
        mu=rng.normal(3e-4, 1e-4, s),
        omega=rng.uniform(1e-6, 3e-6, s) * vol**2,
        alpha=rng.uniform(0.01, 0.05, s),
        gamma=rng.uniform(0.05, 0.15, s),
        beta=rng.uniform(0.82, 0.86, s),
        nu=rng.uniform(4, 8, s),
        lam=rng.uniform(-0.45, -0.35, s),
    )


def long_run(d: GarchDraws) -> np.ndarray:
    return d.omega / (1 - d.alpha - d.gamma / 2 - d.beta)


@pytest.fixture
def skewed() -> ReturnModel:
    rng = np.random.default_rng(11)
    draws = {"A": skewed_draws(rng), "B": skewed_draws(rng, vol=1.6)}
    return ReturnModel(draws, {k: long_run(d) * 1.3 for k, d in draws.items()})


def mixture(model: ReturnModel, i: int):
    """The one-day predictive of symbol i (the model's snapped tail weights) as functions."""
    mu, sd = model._p["mu"][i], np.sqrt(model.sigma2()[i])
    comps = [SkewT.from_params(model._inn.nu[i][s], model._p["lam"][i][s]) for s in range(mu.size)]
    splits = [float(mu[s] + sd[s] * c.mode_split) for s, c in enumerate(comps)]

    def cdf(x):
        terms = [c.cdf(np.array((x - m) / v)) for c, m, v in zip(comps, mu, sd, strict=True)]
        return float(np.mean(terms))

    def quantile(p):
        return optimize.brentq(lambda x: cdf(x) - p, -0.5, 0.5, xtol=1e-14)

    def integral(f, a, b):  # mean over components of int_a^b f(x) pdf_s(x) dx, split at kinks
        total = 0.0
        for c, m, v, k in zip(comps, mu, sd, splits, strict=True):

            def g(x, c=c, m=m, v=v):
                return f(x) * float(c.pdf(np.array((x - m) / v))) / v

            cuts = [a, *([k] if a < k < b else []), b]
            total += sum(
                integrate.quad(g, lo, hi, epsabs=1e-13, epsrel=1e-11, limit=400)[0]
                for lo, hi in itertools.pairwise(cuts)
            )
        return total / len(comps)

    return quantile, integral


# ---------------------------------------------------------------- side
@pytest.mark.parametrize("method", ["fast", "exact"])
def test_short_risk_is_the_upper_tail_by_numerical_integration(skewed, method):
    level, alpha = 0.975, 0.025
    long_f = skewed.risk(level, method=method)
    short_f = skewed.risk(level, side="short", method=method)
    assert short_f.side == "short" and long_f.side == "long"
    rtol = 2e-5 if method == "fast" else 1e-8
    for i in range(2):
        quantile, integral = mixture(skewed, i)
        q_lo, q_hi = quantile(alpha), quantile(1 - alpha)
        es_long = -integral(lambda x: x, -np.inf, q_lo) / alpha
        es_short = integral(lambda x: x, q_hi, np.inf) / alpha
        assert long_f.var_log[i] == pytest.approx(-q_lo, rel=rtol)
        assert long_f.es_log[i] == pytest.approx(es_long, rel=rtol)
        assert short_f.var_log[i] == pytest.approx(q_hi, rel=rtol)
        assert short_f.es_log[i] == pytest.approx(es_short, rel=rtol)
        # lam = -0.4: the long's tail is clearly the heavier one
        assert long_f.es_log[i] > 1.2 * short_f.es_log[i]
        # the tail variance of the short's loss, Var(r | r >= VaR)
        m2 = integral(lambda x: x * x, q_hi, np.inf) / alpha
        assert short_f.tail_variance()[i] == pytest.approx(m2 - es_short**2, rel=1e-4)


def test_short_side_against_monte_carlo(skewed):
    f = skewed.risk(0.99, side="short")
    rng = np.random.default_rng(5)
    n = 1_000_000
    for i in range(2):
        mu, sd = skewed._p["mu"][i], np.sqrt(skewed.sigma2()[i])
        s = rng.integers(0, skewed.n_draws, n)
        z = SkewT.from_params(skewed._inn.nu[i][s], skewed._p["lam"][i][s]).ppf(rng.random(n))
        x = mu[s] + sd[s] * z
        q = np.quantile(x, 0.99)
        tail = x[x >= q]
        assert f.var_log[i] == pytest.approx(q, rel=0.01)
        assert abs(f.es_log[i] - tail.mean()) < 4 * tail.std() / np.sqrt(tail.size)


@pytest.mark.parametrize("level", [0.9, 0.975, 0.999])
def test_short_var_equals_the_upper_quantile_through_a_low_level(skewed, level):
    # before sides, a short's VaR was read as minus the VaR at level 1 - level
    short = skewed.risk(level, side="short", method="exact")
    upper = skewed.risk(1.0 - level, method="exact")
    np.testing.assert_allclose(short.var_log, -upper.var_log, rtol=1e-9)
    fast = skewed.risk(level, side="short")
    np.testing.assert_allclose(fast.var_log, short.var_log, rtol=2e-5)
    np.testing.assert_allclose(fast.es_log, short.es_log, rtol=2e-5)


def test_simple_return_units_for_each_side(skewed):
    alpha = 0.025
    long_f, short_f = skewed.risk(0.975), skewed.risk(0.975, side="short")
    np.testing.assert_allclose(long_f.var_simple, 1 - np.exp(-long_f.var_log), rtol=1e-13)
    np.testing.assert_allclose(short_f.var_simple, np.exp(short_f.var_log) - 1, rtol=1e-13)
    for i in range(2):
        quantile, integral = mixture(skewed, i)
        q_lo, q_hi = quantile(alpha), quantile(1 - alpha)
        # long: the exact simple ES lies below 1 - exp(-ES_log) (conservative), by about half
        # the tail variance (Jensen's gap to second order)
        exact_long = integral(lambda x: -np.expm1(x), -np.inf, q_lo) / alpha
        gap = (long_f.es_simple[i] - exact_long) / long_f.tail_variance()[i]
        assert 0.4 < gap < 0.6
        # short: exp(r) - 1 capped at a tenfold price (the uncapped value is infinite); the
        # reported second-order value agrees and exceeds the Jensen bound exp(ES) - 1
        capped = integral(np.expm1, q_hi, np.log(10.0)) / alpha
        assert short_f.es_simple[i] == pytest.approx(capped, abs=1e-6)
        assert short_f.es_simple[i] > np.expm1(short_f.es_log[i]) + 1e-6
        # the VaR is exact in both units
        assert short_f.var_simple[i] == pytest.approx(np.expm1(q_hi), rel=2e-5)


def test_one_symbol_short_path_agrees_with_the_general_path():
    rng = np.random.default_rng(3)
    d = skewed_draws(rng, 200)
    one = ReturnModel({"A": d}, {"A": long_run(d)})
    two = ReturnModel({"A": d, "B": d}, {"A": long_run(d), "B": 2 * long_run(d)})
    for shock in (0.0, -0.05, 0.04, 0.001):
        one.update([shock], kind="log")
        two.update({"A": shock}, kind="log")
        for level in (0.9, 0.975, 0.99):
            a, b = one.risk(level, side="short"), two.risk(level, side="short")
            assert a.var_log[0] == pytest.approx(b.var_log[0], rel=1e-12)
            assert a.es_log[0] == pytest.approx(b.es_log[0], rel=1e-12)
            assert a.es_simple[0] == pytest.approx(b.es_simple[0], rel=1e-12)
            np.testing.assert_allclose(a.es_band(0.9)[0], b.es_band(0.9)[0], rtol=1e-14)
            exact = one.risk(level, side="short", method="exact")
            np.testing.assert_allclose(a.es_log, exact.es_log, rtol=2e-5)
    assert one._row_short is not None  # the mirrored single-row solver was the one used


def test_short_es_band_is_the_upper_tail_of_each_draw(skewed):
    f = skewed.risk(0.975, side="short")
    comp = f.component_es()
    mu, sd = skewed._p["mu"], np.sqrt(skewed.sigma2())
    for i in range(2):
        for s in (0, 7):
            d = SkewT.from_params(skewed._inn.nu[i][s], skewed._p["lam"][i][s])
            z_hi = float(d.ppf(np.array(0.975)))
            upper_mean = -float(d.partial_mean(np.array(z_hi))) / 0.025  # E[Z | Z >= z_hi]
            assert comp[i, s] == pytest.approx(mu[i, s] + sd[i, s] * upper_mean, rel=1e-8)
    assert np.all(f.es_band(0.9)[:, 0] <= f.es_log) and np.all(f.es_log <= f.es_band(0.9)[:, 1])


# ---------------------------------------------------------------- horizon
def iid_draws(rng: np.random.Generator, s: int = 12) -> GarchDraws:
    zero = np.zeros(s)
    return GarchDraws(
        mu=rng.normal(3e-4, 1e-4, s),
        omega=rng.uniform(0.8e-4, 1.2e-4, s),
        alpha=zero,
        gamma=zero,
        beta=zero,
        nu=rng.uniform(5, 8, s),
        lam=rng.uniform(-0.35, -0.15, s),
    )


def convolution_reference(model: ReturnModel, i: int, h: int, alpha: float):
    """VaR and ES of the h-day sum, long and short, for i.i.d. returns: each draw's h-fold
    convolution of its one-day density on a fine grid, averaged over draws."""
    dx = 2e-5
    grid = np.arange(-0.35, 0.35 + dx / 2, dx)  # +-35 one-day sd
    n_fft = 1 << int(np.ceil(np.log2(h * grid.size)))
    mass = np.zeros(h * (grid.size - 1) + 1)
    for s in range(model.n_draws):
        mu, sd = model._p["mu"][i, s], float(np.sqrt(model.sigma2()[i, s]))
        d = SkewT.from_params(model._inn.nu[i, s], model._p["lam"][i, s])
        p = d.pdf((grid - mu) / sd) / sd * dx
        conv = np.fft.irfft(np.fft.rfft(p, n_fft) ** h, n_fft)[: mass.size]
        mass += np.maximum(conv, 0.0)
    mass /= mass.sum()
    x = h * grid[0] + dx * np.arange(mass.size)

    def lower(x, mass):
        c = np.cumsum(mass)
        k = int(np.searchsorted(c, alpha))
        part = np.dot(x[:k], mass[:k]) + x[k] * (alpha - (c[k - 1] if k else 0.0))
        return -x[k], -part / alpha

    var_l, es_l = lower(x, mass)
    var_s, es_s = lower(-x[::-1], mass[::-1])
    return (var_l, es_l), (var_s, es_s)


@pytest.mark.parametrize("h", [2, 5])
def test_iid_horizon_matches_convolution(h):
    rng = np.random.default_rng(21)
    draws = {f"X{k}": iid_draws(rng) for k in range(3)}
    model = ReturnModel(draws, {k: d.omega for k, d in draws.items()})
    for side, which in (("long", 0), ("short", 1)):
        f = model.risk(0.975, side=side, horizon=h)
        assert f.horizon == h and f.n_paths == model.horizon_paths >= 1000
        for i in range(3):
            var_ref, es_ref = convolution_reference(model, i, h, 0.025)[which]
            se = float(f.es_se[i])
            assert 0 < se < 0.03 * es_ref  # a real, and small, Monte Carlo error
            assert abs(f.es_log[i] - es_ref) < 4 * se + 1e-4 * es_ref, (side, i, f.es_log[i])
            assert abs(f.var_log[i] - var_ref) < 6 * se + 1e-4 * var_ref
            # i.i.d.: the h-day predictive sd is exact
            mu = model._p["mu"][i]
            vol_ref = np.sqrt(h * np.mean(model.sigma2()[i]) + h * h * np.var(mu))
            assert f.volatility[i] == pytest.approx(vol_ref, rel=1e-12)


def test_horizon_one_is_the_one_day_forecast_and_the_path_machinery_reduces_to_it(skewed):
    twin = ReturnModel.from_snapshot(skewed.snapshot())
    for side in ("long", "short"):
        a = twin.risk(0.975, side=side, horizon=1)
        b = skewed.risk(0.975, side=side)
        np.testing.assert_array_equal(a.es_log, b.es_log)
        assert a.horizon == 1 and a.es_se is None and a.n_paths is None
        # the path mixture with no simulated day is P copies of the one-day mixture
        z, strata = skewed._innovations_for(0, side)
        loc, scale, wts = skewed._path_components(skewed.sigma2(), z, strata, 1, side)
        assert np.all(wts == 1.0)
        tail = skewed._tail if side == "long" else skewed._mirrored()[0]
        var, es, se, _ = tail.var_es_paths(0.025, loc, scale, -b.var_log, wts, rtol=1e-8)
        exact = skewed.risk(0.975, side=side, method="exact")
        np.testing.assert_allclose(var, exact.var_log, rtol=1e-7)
        np.testing.assert_allclose(es, exact.es_log, rtol=1e-7)
        assert np.all(se < 1e-6 * es)  # no simulation, no error (rounding only)


def brute_force_sums(model: ReturnModel, i: int, h: int, reps: int, seed: int) -> np.ndarray:
    """h-day sums of log returns from gjr_garch.simulate (an independent sampler: quantile
    function), ``reps`` paths per draw from the model's current variances."""
    p = {k: model._p[k][i] for k in PARAMS}
    p["nu"] = model._inn.nu[i]  # the model's snapped tail weights
    draws = GarchDraws(**p)
    rng = np.random.default_rng(seed)
    s2 = model.sigma2()[i]
    return np.concatenate([simulate(draws, h, rng, s2)[0].sum(axis=1) for _ in range(reps)])


def empirical_es(x: np.ndarray, alpha: float) -> tuple[float, float]:
    """ES of the lower tail and its batch-means standard error."""

    def es(v):
        q = np.quantile(v, alpha)
        return -v[v <= q].mean()

    batches = [es(b) for b in np.array_split(x, 20)]
    return es(x), float(np.std(batches, ddof=1) / np.sqrt(20))


def test_garch_horizon_against_brute_force_and_its_reported_error():
    # 24 symbols with the same draws: their common random numbers differ (the seed hashes the
    # name), so they are 24 independent Monte Carlo estimates of one h-day ES
    rng = np.random.default_rng(8)
    d = random_draws(rng)
    k = 24
    model = ReturnModel({f"S{j}": d for j in range(k)}, {f"S{j}": long_run(d) for j in range(k)})
    h = 5
    x = brute_force_sums(model, 0, h, 1000, seed=2)  # 200,000 paths
    for side, sign in (("long", 1.0), ("short", -1.0)):
        f = model.risk(0.975, side=side, horizon=h)
        ref, ref_se = empirical_es(sign * x, 0.025)
        est = f.es_log.mean()
        se_mean = np.sqrt(np.mean(f.es_se**2) / k)
        assert abs(est - ref) < 4 * np.hypot(se_mean, ref_se), (side, est, ref)
        # the reported standard error is the actual spread of independent estimates
        ratio = np.std(f.es_log, ddof=1) / np.sqrt(np.mean(f.es_se**2))
        assert 0.6 < ratio < 1.6, (side, ratio)
        assert np.median(f.es_se / f.es_log) < 0.04
        # the exact solve of the same path mixture agrees with the fast one far within it
        exact = model.risk(0.975, side=side, horizon=h, method="exact")
        np.testing.assert_allclose(f.es_log, exact.es_log, rtol=1e-4)
        np.testing.assert_allclose(f.es_se, exact.es_se, rtol=5e-2)  # at a q 1e-4 apart


def test_garch_horizon_single_symbol_against_brute_force():
    rng = np.random.default_rng(9)
    d = random_draws(rng, 100)
    model = ReturnModel({"X": d}, {"X": long_run(d) * 0.6})
    x = brute_force_sums(model, 0, 3, 1000, seed=4)  # 100,000 paths
    for side, sign in (("long", 1.0), ("short", -1.0)):
        f = model.risk(0.99, side=side, horizon=3)
        ref, ref_se = empirical_es(sign * x, 0.01)
        assert abs(f.es_log[0] - ref) < 4 * np.hypot(f.es_se[0], ref_se), (side, f.es_log, ref)


def test_horizon_volatility_is_exact_and_risk_grows_with_the_state():
    # a faster mean reversion (persistence ~0.8) and nu 8-12: sample variances converge
    rng = np.random.default_rng(4)
    d = GarchDraws(
        mu=np.full(50, 3e-4),
        omega=rng.uniform(1e-5, 3e-5, 50),
        alpha=rng.uniform(0.02, 0.05, 50),
        gamma=rng.uniform(0.05, 0.15, 50),
        beta=rng.uniform(0.65, 0.7, 50),
        nu=rng.uniform(8, 12, 50),
        lam=rng.uniform(-0.3, 0.0, 50),
    )
    kappa = SkewT.from_params(d.nu, d.lam).partial_moment2(np.zeros(50))  # E[z^2 1{z < 0}]
    assert np.all(kappa > 0.5)  # lam < 0: more than half the variance below 0
    h, k = 5, 8
    ratio = {}
    for name, factor in (("low", 0.2), ("long-run", 1.0), ("high", 4.0)):
        # k symbols with the same draws: k independent Monte Carlo estimates, averaged
        model = ReturnModel({f"X{j}": d for j in range(k)}, {f"X{j}": d.omega for j in range(k)})
        snapped = model._inn.partial_moment2(np.zeros((k, 50)))[0]  # the model's tail weights
        lr = d.omega / (1 - d.alpha - d.gamma * snapped - d.beta)  # exact long-run variance
        state = {f"X{j}": factor * lr for j in range(k)}
        model = ReturnModel({f"X{j}": d for j in range(k)}, state)
        f1, fh = model.risk(0.975), model.risk(0.975, horizon=h)
        x = brute_force_sums(model, 0, h, 600, seed=1)  # 30,000 paths
        se_var = np.std([v.var() for v in np.array_split(x, 20)], ddof=1) / np.sqrt(20)
        assert abs(fh.volatility[0] ** 2 - x.var()) < 4 * se_var
        if name == "long-run":  # E[sigma2] stays at the long run: sd grows like sqrt(h)
            assert fh.volatility[0] == pytest.approx(np.sqrt(h) * f1.volatility[0], rel=1e-12)
        se = np.sqrt(np.mean(fh.es_se**2) / k) / fh.es_log.mean()
        ratio[name] = (fh.es_log.mean() / f1.es_log[0], se, fh.volatility[0] / f1.volatility[0])
    # below the long run the variance reverts up, above it down: ES grows faster / slower
    # than at the long run, like the predictive sd, by far more than the Monte Carlo error
    (low, e_low, v_low), (mid, e_mid, _), (high, e_high, v_high) = ratio.values()
    assert v_low > np.sqrt(h) > v_high
    assert low > mid * (1 + 4 * np.hypot(e_low, e_mid))
    assert high < mid * (1 - 4 * np.hypot(e_high, e_mid))


def test_horizon_is_deterministic_cached_and_invalidated_by_update(skewed):
    f = skewed.risk(0.975, horizon=4)
    assert skewed.risk(0.975, horizon=4) is f  # cached
    assert not f.es_log.flags.writeable
    with pytest.raises(ValueError, match="one-day"):
        f.es_band(0.9)
    # the same state gives the same answer: a second model, and a snapshot round trip
    twin = ReturnModel.from_snapshot(json.loads(json.dumps(skewed.snapshot())))
    for m in (skewed, twin):
        m.update([-0.02, 0.01], kind="log")
    g = skewed.risk(0.975, horizon=4)
    assert g is not f and np.all(g.es_log != f.es_log)  # recomputed from the new state
    np.testing.assert_array_equal(g.es_log, twin.risk(0.975, horizon=4).es_log)
    np.testing.assert_array_equal(
        skewed.risk(0.99, side="short", horizon=3).es_log,
        twin.risk(0.99, side="short", horizon=3).es_log,
    )
    # a symbol's paths do not depend on the other symbols (the answers differ only by the
    # Newton start: the twin models above were warm, this one is cold)
    alone = ReturnModel(
        {"A": GarchDraws(**{k: skewed._p[k][0] for k in PARAMS})}, {"A": skewed.sigma2()[0]}
    )
    a1, a2 = alone.risk(0.975, horizon=4), skewed.risk(0.975, horizon=4)
    for x, y in zip(a1._mu, a2._mu, strict=True):
        np.testing.assert_array_equal(x[0], y[0])
    assert a1.es_log[0] == pytest.approx(a2.es_log[0], rel=1e-4)
    assert abs(a1.es_log[0] - a2.es_log[0]) < 0.01 * a1.es_se[0]


def test_a_horizon_forecast_overtaken_by_an_update_is_returned_but_not_cached(skewed, monkeypatch):
    twin = ReturnModel.from_snapshot(skewed.snapshot())
    expected = twin.risk(0.975, horizon=3)
    solve = MixtureTail.var_es_paths

    def racing(self, *args, **kwargs):  # an update lands while the lock is not held
        out = solve(self, *args, **kwargs)
        skewed.update([-0.05, 0.03], kind="log")
        return out

    monkeypatch.setattr(MixtureTail, "var_es_paths", racing)
    f = skewed.risk(0.975, horizon=3)
    monkeypatch.setattr(MixtureTail, "var_es_paths", solve)
    np.testing.assert_array_equal(f.es_log, expected.es_log)  # the state it was asked in
    g = skewed.risk(0.975, horizon=3)
    assert g is not f and skewed.risk(0.975, horizon=3) is g  # recomputed, then cached
    twin.update([-0.05, 0.03], kind="log")
    np.testing.assert_allclose(g.es_log, twin.risk(0.975, horizon=3).es_log, rtol=1e-4)


def test_horizon_under_concurrent_updates_and_reads():
    rng = np.random.default_rng(1)
    draws = {f"S{k}": random_draws(rng, 50) for k in range(3)}
    s2 = {k: long_run(d) for k, d in draws.items()}
    model, replica = ReturnModel(draws, s2), ReturnModel(draws, s2)
    errors, seen = [], []

    def read():
        try:
            for _ in range(30):
                f = model.risk(0.975, side="short", horizon=3)
                v, e = model.position_risk("S1", side="short", horizon=3)
                seen.append((f.es_log.copy(), v, e))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for r in np.linspace(-0.02, 0.02, 25):
        model.update([r, -r, 0.0], kind="log")
        replica.update([r, -r, 0.0], kind="log")
    for t in threads:
        t.join()
    assert not errors
    assert all(np.all(np.isfinite(f)) and 0 < v < e for f, v, e in seen)
    np.testing.assert_array_equal(model.sigma2(), replica.sigma2())
    # after the last update both answer from the same state (warm starts may differ: 1e-4)
    np.testing.assert_allclose(
        model.risk(0.975, side="short", horizon=3).es_log,
        replica.risk(0.975, side="short", horizon=3).es_log,
        rtol=1e-4,
    )


# ---------------------------------------------------------------- position_risk
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("horizon", [1, 3])
def test_position_risk_is_the_forecast_in_simple_units_and_is_cached(skewed, side, horizon):
    f = skewed.risk(0.99, side=side, horizon=horizon)
    for i, sym in enumerate(skewed.symbols):
        var, es = skewed.position_risk(sym, level=0.99, side=side, horizon=horizon)
        assert var == pytest.approx(f.var_simple[i], rel=1e-4)
        assert es == pytest.approx(f.es_simple[i], rel=1e-4)
        assert 0 < var < es
        assert skewed.position_risk(sym, level=0.99, side=side, horizon=horizon) is not None
    first = skewed.position_risk("A", level=0.99, side=side, horizon=horizon)
    assert skewed.position_risk("A", level=0.99, side=side, horizon=horizon) is first
    skewed.update({"A": -0.04}, kind="log")  # a shock: the cached answer is dropped
    after = skewed.position_risk("A", level=0.99, side=side, horizon=horizon)
    g = skewed.risk(0.99, side=side, horizon=horizon)
    assert after != first and after[1] == pytest.approx(g.es_simple[0], rel=1e-4)


def test_position_risk_defaults_and_sides_differ(skewed):
    var, es = skewed.position_risk("B")
    f = skewed.risk(0.975)
    assert (var, es) == pytest.approx((f.var_simple[1], f.es_simple[1]), rel=1e-4)
    assert skewed.position_risk("B", side="short")[1] < 0.9 * es  # lam < 0: shorts lose less


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"symbol": "ZZZ"}, ValueError, "ZZZ"),
        ({"symbol": ""}, ValueError, "symbol"),
        ({"symbol": ["A"]}, TypeError, "symbol"),
        ({"symbol": "A", "side": "Short"}, ValueError, "'Short'"),
        ({"symbol": "A", "side": "buy"}, ValueError, "side"),
        ({"symbol": "A", "side": None}, ValueError, "side"),
        ({"symbol": "A", "horizon": True}, TypeError, "True"),
        ({"symbol": "A", "horizon": 1.0}, TypeError, "1.0"),
        ({"symbol": "A", "horizon": 2.0}, TypeError, "2.0"),
        ({"symbol": "A", "horizon": 0}, ValueError, "horizon"),
        ({"symbol": "A", "horizon": -3}, ValueError, "-3"),
        ({"symbol": "A", "horizon": MAX_HORIZON + 1}, ValueError, str(MAX_HORIZON + 1)),
        ({"symbol": "A", "level": 1.0}, ValueError, "level"),
        ({"symbol": "A", "level": 0.0}, ValueError, "level"),
        ({"symbol": "A", "level": float("nan")}, ValueError, "level"),
        ({"symbol": "A", "level": "0.975"}, TypeError, "level"),
        ({"symbol": "A", "level": True}, TypeError, "level"),
    ],
)
def test_position_risk_refuses_bad_input_and_changes_nothing(skewed, kwargs, exc, match):
    skewed.position_risk("A")  # something cached
    skewed.risk(0.975, side="short", horizon=2)
    before = json.dumps(skewed.snapshot())
    cached = dict(skewed._position_cache)
    args = {"level": 0.975, "side": "long", "horizon": 1, **kwargs}
    with pytest.raises(exc, match=match):
        skewed.position_risk(args.pop("symbol"), **args)
    assert json.dumps(skewed.snapshot()) == before
    assert skewed._position_cache == cached


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"side": "both"}, ValueError, "side"),
        ({"side": 1}, ValueError, "side"),
        ({"horizon": True}, TypeError, "horizon"),
        ({"horizon": 5.0}, TypeError, "horizon"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"horizon": MAX_HORIZON + 1}, ValueError, "horizon"),
        ({"horizon": 3, "method": "approx"}, ValueError, "method"),
    ],
)
def test_risk_refuses_bad_side_and_horizon(skewed, kwargs, exc, match):
    before = json.dumps(skewed.snapshot())
    with pytest.raises(exc, match=match):
        skewed.risk(0.975, **kwargs)
    assert json.dumps(skewed.snapshot()) == before


def test_snapshot_keeps_short_and_horizon_warm_starts(skewed):
    skewed.risk(0.99, side="short")
    skewed.risk(0.975, horizon=3)
    data = json.loads(json.dumps(skewed.snapshot()))
    assert {tuple(e[:3]) for e in data["warm_start_keyed"]} == {
        (1.0 - 0.99, "short", 1),
        (1.0 - 0.975, "long", 3),
    }
    back = ReturnModel.from_snapshot(data)
    assert json.dumps(back.snapshot()) == json.dumps(data)
    np.testing.assert_array_equal(
        back.risk(0.99, side="short").es_log, skewed.risk(0.99, side="short").es_log
    )
    for bad in ([[0.01, "sideways", 1, [0.0, 0.0]]], [[0.01, "short", 0, [0.0, 0.0]]], {"a": 1}):
        with pytest.raises(ValueError, match="warm_start_keyed"):
            ReturnModel.from_snapshot({**data, "warm_start_keyed": bad})
