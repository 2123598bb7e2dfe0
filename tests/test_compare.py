"""Comparative risk-forecast tests (FZ0 loss, Diebold-Mariano, model confidence set, Basel traffic
light) and the baselines (arch's GJR-GARCH skew-t, FHS, EWMA)."""

import csv
import importlib.util
import json

import numpy as np
import pytest
from scipy import stats

from bayes_mem.evaluation.baselines import (
    ewma_variance,
    fit_standardized_t_nu,
    rolling_arch_forecasts,
    rolling_ewma_forecast,
    simulate_gjr_sums,
)
from bayes_mem.evaluation.compare import (
    COLUMNS,
    dm_test,
    fz0_loss,
    horizon_sums,
    model_confidence_set,
    newey_west_variance,
    traffic_light,
    traffic_light_history,
    write_results,
)
from bayes_mem.live.skewt import SkewT

needs_arch = pytest.mark.skipif(importlib.util.find_spec("arch") is None, reason="needs arch")


# ------------------------------------------------------------------------------------ FZ0 loss
def _expected_fz0(v, e, alpha, inn):
    """E[FZ0] for a unit-variance skew-t return: E[1{Y<=v}(v-Y)] = v F(v) - E[Y 1{Y<=v}]."""
    shortfall = v * inn.cdf(v) - inn.partial_mean(v)
    return -shortfall / (alpha * e) + v / e + np.log(-e) - 1.0


@pytest.mark.parametrize("level", [0.975, 0.99])
def test_fz0_expectation_is_minimised_at_the_true_var_and_es(level):
    alpha = 1.0 - level
    inn = SkewT.from_params(np.array(5.0), np.array(-0.2))
    q, es = float(inn.ppf(alpha)), float(inn.expected_shortfall(alpha))  # q < 0, es > 0
    vs = q + np.linspace(-0.6, 0.6, 241)
    es_grid = -es + np.linspace(-0.8, 0.8, 321)
    v, e = np.meshgrid(vs, es_grid, indexing="ij")
    ok = e < 0
    loss = np.where(ok, _expected_fz0(v, np.where(ok, e, -1.0), alpha, inn), np.inf)
    i, j = np.unravel_index(np.argmin(loss), loss.shape)
    assert abs(vs[i] - q) <= 0.005 + 1e-12 and abs(es_grid[j] + es) <= 0.005 + 1e-12
    # the positive-loss convention of fz0_loss: VaR = -v, ES = -e, on a seeded sample
    y = inn.sample(np.random.default_rng(0), 200_000)
    at_truth = fz0_loss(y, np.full(y.size, -q), np.full(y.size, es), level).mean()
    for dv, de in ((0.3, 0.0), (-0.3, 0.0), (0.0, 0.4), (0.0, -0.4)):
        other = fz0_loss(y, np.full(y.size, -q + dv), np.full(y.size, es + de), level).mean()
        assert other > at_truth


def test_fz0_by_hand_and_bad_input():
    # y = -0.03 below v = -0.02, e = -0.025, alpha = 0.025
    want = -(-0.02 + 0.03) / (0.025 * -0.025) + (-0.02) / (-0.025) + np.log(0.025) - 1.0
    got = fz0_loss(np.array([-0.03, 0.01]), np.array([0.02, 0.02]), np.array([0.025, 0.025]), 0.975)
    assert got[0] == pytest.approx(want)
    assert got[1] == pytest.approx(0.8 + np.log(0.025) - 1.0)
    with pytest.raises(ValueError, match="ES > 0"):
        fz0_loss(np.zeros(2), np.ones(2), np.array([1.0, 0.0]), 0.99)
    with pytest.raises(ValueError, match="shapes"):
        fz0_loss(np.zeros(2), np.ones(3), np.ones(2), 0.99)


# ------------------------------------------------------------------------------ Diebold-Mariano
def test_dm_matches_a_hand_computation():
    a = np.array([1.0, 2.0, 0.5, 1.5, 3.0, 1.0])
    b = np.array([0.5, 1.0, 1.0, 1.0, 1.0, 0.5])
    d = a - b  # 0.5, 1, -0.5, 0.5, 2, 0.5; mean 2/3
    u = d - d.mean()
    g0 = np.sum(u * u) / 6
    g1 = np.sum(u[1:] * u[:-1]) / 6
    s = g0 + 2 * 0.5 * g1  # Bartlett weight 1 - 1/2 at lag 1
    assert newey_west_variance(d, 1) == pytest.approx(s)
    t = dm_test(a, b, lag=1)
    assert t.stat == pytest.approx((2 / 3) / np.sqrt(s / 6))
    assert t.p == pytest.approx(2 * stats.norm.sf(abs(t.stat)))
    assert t.mean_diff == pytest.approx(2 / 3) and t.lag == 1
    assert dm_test(b, a, lag=1).stat == pytest.approx(-t.stat)
    assert newey_west_variance(d, 0) == pytest.approx(np.var(d))


def test_dm_rejects_only_a_real_difference():
    gen = np.random.default_rng(1)
    base = gen.standard_normal(2000)
    same = dm_test(base + gen.standard_normal(2000), base + gen.standard_normal(2000))
    worse = dm_test(base + 0.3 + gen.standard_normal(2000), base + gen.standard_normal(2000))
    assert same.p > 0.01 and worse.p < 1e-6 and worse.stat > 0
    with pytest.raises(ValueError):
        dm_test(np.zeros(2), np.zeros(2))


# -------------------------------------------------------------------------------------- MCS
@needs_arch
def test_mcs_excludes_a_clearly_worse_model():
    gen = np.random.default_rng(2)
    good = gen.standard_normal(1000)
    losses = {
        "good": good,
        "also_good": good[::-1].copy(),  # the same mean loss exactly
        "bad": good + 0.5 + 0.5 * gen.standard_normal(1000),
    }
    p = model_confidence_set(losses, reps=200, block_size=5, seed=3)
    assert p["bad"] <= 0.10 < min(p["good"], p["also_good"])
    assert model_confidence_set(losses, reps=200, block_size=5, seed=3) == p  # seeded


# ----------------------------------------------------------------------- Basel traffic light
def test_traffic_light_zones():
    assert [traffic_light(k) for k in (0, 4, 5, 9, 10, 30)] == [
        "green",
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
    ]
    hits = np.zeros(600, dtype=bool)
    hits[-250:][:12] = True  # last window red
    hits[-500:-250][:6] = True  # the one before yellow; the first 100 days are not a window
    assert traffic_light_history(hits) == {"green": 0, "yellow": 1, "red": 1}


# -------------------------------------------------------------------------------- baselines
def test_horizon_sums_and_gjr_path_simulation_by_hand():
    r = np.arange(1.0, 6.0)
    assert np.allclose(horizon_sums(r, 2), [3, 5, 7, 9])
    z = np.array([[-1.0, 0.5], [2.0, -1.0]])
    loc, om, a, g, b, s2 = 0.1, 0.05, 0.05, 0.1, 0.8, 1.0
    got = simulate_gjr_sums(loc, om, a, g, b, s2, z)
    for row, want in zip(z, got, strict=True):
        e1 = np.sqrt(s2) * row[0]
        s2b = om + (a + g * (e1 < 0)) * e1**2 + b * s2
        assert want == pytest.approx(2 * loc + e1 + np.sqrt(s2b) * row[1])


def test_ewma_recursion_t_fit_and_sqrt_time_scaling():
    gen = np.random.default_rng(4)
    r = 0.01 * gen.standard_normal(400)
    s2 = ewma_variance(r, 0.94, init_days=100)
    assert s2[0] == pytest.approx(np.mean(r[:100] ** 2))
    assert s2[5] == pytest.approx(0.94 * s2[4] + 0.06 * r[4] ** 2)
    z = stats.t.rvs(6, size=20_000, random_state=gen) / np.sqrt(6 / 4)  # unit variance t(6)
    assert fit_standardized_t_nu(z) == pytest.approx(6.0, rel=0.15)
    f = rolling_ewma_forecast(r, kind="log", window=200, dist="normal", horizon=10)
    sigma = np.sqrt(ewma_variance(r, 0.94, 200)[200:])
    assert np.allclose(f.var[0.99], -stats.norm.ppf(0.01) * sigma)
    assert np.allclose(f.var_h[0.99], np.sqrt(10) * f.var[0.99])
    assert np.allclose(f.es_h[0.975], np.sqrt(10) * f.es[0.975])
    ft = rolling_ewma_forecast(r, kind="log", window=200, refit_every=50, dist="t")
    assert np.all(ft.es[0.99] > ft.var[0.99]) and ft.var_h == {}


@needs_arch
def test_arch_skewt_is_hansens_as_ours():
    from arch.univariate import SkewStudent

    p = np.array([0.01, 0.025, 0.4, 0.9])
    for eta, lam in ((5.0, -0.2), (9.0, 0.15)):
        ours = SkewT.from_params(np.array(eta), np.array(lam))
        assert np.allclose(SkewStudent().ppf(p, [eta, lam]), ours.ppf(p), atol=1e-10)
        x = np.array([-2.5, -0.3, 1.2])
        assert np.allclose(SkewStudent().cdf(x, [eta, lam]), ours.cdf(x), atol=1e-10)


@needs_arch
def test_arch_and_fhs_forecasts_are_walk_forward():
    gen = np.random.default_rng(5)
    r = 0.01 * gen.standard_t(5, 460)
    kw = {"kind": "log", "window": 400, "refit_every": 30, "horizon": 5, "n_paths": 500, "rng": 6}
    f = rolling_arch_forecasts(r, **kw)
    changed = r.copy()
    changed[430:] *= 3.0  # the future of day 430 changes; its forecast and those before must not
    g = rolling_arch_forecasts(changed, **kw)
    for m in ("arch_gjr_skewt", "fhs_gjr"):
        x, y = f[m], g[m]
        assert x.returns.size == 60 and x.horizon == 5
        for lv in (0.975, 0.99):
            assert np.array_equal(x.var[lv][:31], y.var[lv][:31])
            assert np.array_equal(x.es_h[lv][:31], y.es_h[lv][:31])
            assert np.all(x.es[lv] > x.var[lv]) and np.all(x.es_h[lv] > x.var_h[lv])
            assert np.all(x.var_h[lv] > x.var[lv])
        assert x.predictive.n == 60


# ------------------------------------------------------------------------------ the report
@needs_arch
@pytest.mark.slow
def test_write_results_quick(tmp_path):
    summary = write_results(tmp_path, seed=0, quick=True)
    with (tmp_path / "compare.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 8 * 2 * 2  # models x levels x horizons
    assert (tmp_path / "compare_dm_pairs.csv").stat().st_size > 0
    assert summary["markdown"].startswith("### Risk forecasts")
    assert summary["cases_1day"] == 2
    json.dumps(summary)


def test_ours_keeps_the_last_good_fit_when_a_refit_is_refused():
    from bayes_mem.evaluation.var_backtest import rolling_gjr_forecast
    from bayes_mem.live.gjr_garch import LaplaceFitError, UnfitSeriesError, fit_laplace

    calls = []

    def flaky(past, n_draws, gen):  # the hook a pooled fit plugs into; refuses its 2nd refit
        calls.append(past.size)
        if len(calls) == 2:
            raise UnfitSeriesError("refused for the test")
        return fit_laplace(past, n_draws, gen)

    r = 0.01 * np.random.default_rng(7).standard_t(6, 330)
    kw = {"kind": "log", "window": 300, "refit_every": 10, "n_draws": 20, "rng": 8}
    f = rolling_gjr_forecast(r, fit=flaky, **kw)
    assert calls == [300, 300, 300] and f.failed_refits == (10,)
    assert f.last(25).failed_refits == (5,) and f.last(15).failed_refits == ()
    # days 10..19 roll the first fit forward: their predictive draws are the first fit's
    assert np.array_equal(f.predictive.nu[10], f.predictive.nu[0])
    assert not np.array_equal(f.predictive.nu[20], f.predictive.nu[0])

    def refuse(past, n_draws, gen):
        raise LaplaceFitError(None, ("no mode",), None)

    with pytest.raises(UnfitSeriesError):
        rolling_gjr_forecast(r, fit=refuse, **kw)


def test_write_results_refuses_unknown_series(tmp_path):
    with pytest.raises(ValueError, match="unknown series"):
        write_results(tmp_path, series=("no_such_series",))
