"""Statistics of the policy evidence (issue 18): independent trials for the deflated Sharpe
ratio, causal volatility targeting and returns per unit of gross exposure; the unbalanced
universe's shadow trades."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bayes_mem.evaluation import performance as pf
from bayes_mem.evaluation.signals import SignalSpec, listed_span, shadow_trades

# ---------------------------------------------------------------------------- independent trials


def test_effective_trials_closed_forms() -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal((20_000, 6))
    assert pf.effective_number_of_trials(x) == pytest.approx(6.0, rel=0.02)  # independent
    base = g.standard_normal(500)
    copies = np.column_stack([base * s for s in (1.0, 2.0, 0.5, 3.0)])
    assert pf.effective_number_of_trials(copies) == pytest.approx(1.0)  # perfect copies: one
    groups = np.repeat(g.standard_normal((20_000, 3)), 4, axis=1)  # 3 groups of 4 copies
    assert pf.effective_number_of_trials(groups) == pytest.approx(3.0, rel=0.02)
    # equicorrelation rho: eigenvalues 1 + (k-1) rho and (k-1) x (1 - rho): k / (1 + (k-1) rho^2)
    k, rho = 5, 0.6
    common = g.standard_normal((50_000, 1))
    eq = math.sqrt(rho) * common + math.sqrt(1 - rho) * g.standard_normal((50_000, k))
    assert pf.effective_number_of_trials(eq) == pytest.approx(k / (1 + (k - 1) * rho**2),
                                                               rel=0.03)  # fmt: skip
    assert pf.effective_number_of_trials(x[:, :1]) == 1.0


def test_cluster_trials_finds_groups_of_copies() -> None:
    g = np.random.default_rng(1)
    base = g.standard_normal((400, 3)) * 0.01 + 0.0005
    x = np.column_stack([base[:, 0], base[:, 1] * 2, base[:, 0] * 3, base[:, 2],
                         base[:, 1], base[:, 2] * 0.5])  # fmt: skip
    cl = pf.cluster_trials(x)
    assert cl.n_clusters == 3
    assert cl.labels.tolist() == [0, 1, 0, 2, 1, 2]
    sr = base.mean(axis=0) / base.std(axis=0, ddof=1)
    # a cluster of scaled copies has its members' Sharpe ratio; the variance is across clusters
    np.testing.assert_allclose(cl.cluster_sharpe, sr, rtol=1e-12)
    assert cl.trial_sr_variance == pytest.approx(float(np.var(sr, ddof=1)), rel=1e-12)
    # near-independent series stay apart; one series is one trial with no variance
    assert pf.cluster_trials(g.standard_normal((2000, 4))).n_clusters == 4
    one = pf.cluster_trials(base[:, :1])
    assert one.n_clusters == 1 and one.trial_sr_variance == 0.0


def test_dsr_of_perfect_copies_is_one_trial() -> None:
    g = np.random.default_rng(2)
    r = g.standard_normal(300) * 0.01 + 0.001
    copies = np.column_stack([r, 2 * r, 0.3 * r, 5 * r])
    res = pf.deflated_sharpe_independent(copies, 2)
    assert res["n_trials"] == 1 and res["sr0"] == 0.0
    assert res["dsr"] == pytest.approx(pf.probabilistic_sharpe_ratio(r), rel=1e-12)


def test_dsr_of_groups_equals_dsr_of_their_independent_trials() -> None:
    """K independent strategies each copied several times: the DSR is the one of the K trials
    (count K, variance of their Sharpe ratios), not of the K x copies correlated variants."""
    g = np.random.default_rng(3)
    base = g.standard_normal((500, 4)) * 0.01
    x = np.repeat(base, 5, axis=1) * np.tile([1.0, 2.0, 0.5, 1.5, 3.0], 4)
    sr = base.mean(axis=0) / base.std(axis=0, ddof=1)
    j = int(np.argmax(sr))
    res = pf.deflated_sharpe_independent(x, 5 * j + 1)
    assert res["n_trials"] == 4
    expect = pf.deflated_sharpe_ratio(base[:, j], 4, float(np.var(sr, ddof=1)))
    assert res["dsr"] == pytest.approx(expect, rel=1e-10)
    # counting the 20 copies as trials with their (smaller) variance gives another answer
    naive = pf.deflated_sharpe_ratio(base[:, j], 20, float(np.var(np.repeat(sr, 5), ddof=1)))
    assert abs(naive - expect) > 1e-3


def test_dsr_removes_the_selection_bias_of_the_best_null_strategy() -> None:
    """Brute force: N independent strategies with no edge, the best in-sample one selected.
    Its PSR is biased upward (a false discovery in a large share of runs); its DSR is centred
    (median near 0.5: the expected maximum is right) and rejects no more than the nominal 5%
    (the DSR is conservative: the maximum varies less than one Sharpe estimate)."""
    g = np.random.default_rng(4)
    n, t, reps = 10, 250, 300
    dsr, psr = np.empty(reps), np.empty(reps)
    for k in range(reps):
        x = g.standard_normal((t, n)) * 0.01
        sr = x.mean(axis=0) / x.std(axis=0, ddof=1)
        res = pf.deflated_sharpe_independent(x, int(np.argmax(sr)))
        dsr[k], psr[k] = res["dsr"], res["psr"]
        assert res["n_trials"] >= 8  # independent strategies are (nearly) all separate trials
    assert 0.4 < float(np.median(dsr)) < 0.6
    assert float(np.mean(dsr > 0.95)) <= 0.05
    assert float(np.mean(psr > 0.95)) > 0.25


def test_independent_trials_bad_input() -> None:
    with pytest.raises(ValueError, match="zero variance"):
        pf.cluster_trials(np.column_stack([np.ones(10), np.arange(10.0)]))
    with pytest.raises(ValueError, match="periods x strategies"):
        pf.effective_number_of_trials(np.ones(10))
    with pytest.raises(ValueError, match="candidate 3"):
        pf.deflated_sharpe_independent(np.random.default_rng(0).standard_normal((20, 3)), 3)
    with pytest.raises(ValueError, match="threshold"):
        pf.cluster_trials(np.random.default_rng(0).standard_normal((20, 3)), threshold=1.5)


# ---------------------------------------------------------------------------- normalisation


def test_vol_target_scale_is_causal_and_hits_the_target() -> None:
    g = np.random.default_rng(5)
    n = 3000
    # volatility switching between 0.5% and 2% a day in regimes of 250 days
    sig = np.where((np.arange(n) // 250) % 2 == 0, 0.005, 0.02)
    r = sig * g.standard_normal(n)
    s = pf.vol_target_scale(r, target_annual_vol=0.10, halflife=10, warmup=20)
    assert np.all(s[:20] == 0.0)
    vol = float(np.std((s * r)[20:]) * math.sqrt(252))
    assert vol == pytest.approx(0.10, rel=0.10)  # the raw series' vol is about 0.21
    # causal: changing day t's return changes no scale up to and including day t
    for t in (25, 700, 2999):
        r2 = r.copy()
        r2[t] *= 50.0
        s2 = pf.vol_target_scale(r2, target_annual_vol=0.10, halflife=10, warmup=20)
        np.testing.assert_array_equal(s2[: t + 1], s[: t + 1])


def test_vol_target_scale_closed_form() -> None:
    a = 0.01
    r = a * np.where(np.arange(100) % 2 == 0, 1.0, -1.0)  # |r| = a every day: sigma = a
    s = pf.vol_target_scale(r, target_annual_vol=0.16, warmup=5, halflife=3)
    np.testing.assert_allclose(s[5:], 0.16 / math.sqrt(252) / a, rtol=1e-12)
    flat = np.concatenate([np.zeros(50), r[:50]])  # nothing traded: no scale, never inf
    sf = pf.vol_target_scale(flat, warmup=5, max_scale=7.0)
    assert np.all(sf[:51] == 0.0) and np.all(sf <= 7.0) and np.all(np.isfinite(sf))
    with pytest.raises(ValueError, match="warmup"):
        pf.vol_target_scale(r[:5], warmup=5)


def test_per_exposure_returns_by_hand() -> None:
    r = np.array([0.0, 0.002, -0.001, 0.003, 0.0])
    g = np.array([0.1, 0.2, 0.0, 0.5, 0.5])  # book at each close, held into the next day
    out = pf.per_exposure_returns(r, g)
    np.testing.assert_allclose(out, [0.0, 0.02, -0.005, 0.0, 0.0])
    with pytest.raises(ValueError, match=">= 0"):
        pf.per_exposure_returns(r, -g)
    with pytest.raises(ValueError, match="one value per period"):
        pf.per_exposure_returns(r, g[:3])


# ---------------------------------------------------------------------------- unbalanced panel


def test_shadow_trades_of_an_unbalanced_panel() -> None:
    """A symbol listed later (NaN before) and one delisted earlier trade only inside their
    spans, with the same trades as on their own listed rows (indices shifted)."""
    g = np.random.default_rng(6)
    n = 120
    a = 100 * np.exp(np.cumsum(0.01 * g.standard_normal(n)))
    b = 50 * np.exp(np.cumsum(0.01 * g.standard_normal(n)))
    b_listed = b.copy()
    b_listed[:30] = np.nan
    a_listed = a.copy()
    a_listed[100:] = np.nan
    idx = pd.bdate_range("2020-01-01", periods=n)
    panel = pd.DataFrame({"A": a_listed, "B": b_listed}, index=idx)
    specs = (SignalSpec("momentum", 5),)
    tr = shadow_trades(panel, specs, hold=3)
    alone_b = shadow_trades(pd.DataFrame({"B": b[30:]}, index=idx[30:]), specs, hold=3)
    alone_a = shadow_trades(pd.DataFrame({"A": a[:100]}, index=idx[:100]), specs, hold=3)
    on_b = tr.symbol == 1
    np.testing.assert_array_equal(tr.open_idx[on_b], alone_b.open_idx + 30)
    np.testing.assert_allclose(tr.ret[on_b], alone_b.ret)
    np.testing.assert_array_equal(tr.open_idx[~on_b], alone_a.open_idx)
    assert tr.settle_idx[~on_b].max() <= 99 and tr.open_idx[on_b].min() >= 30
    assert listed_span(b_listed) == (30, n)
    gap = b_listed.copy()
    gap[60] = np.nan
    with pytest.raises(ValueError, match="gap"):
        listed_span(gap, "B")


# ---------------------------------------------------------------------------- the backtest's use


def _fake_run():
    """A BacktestRun with three policies: A, B = A at 3x the exposure, C independent."""
    from bayes_mem.evaluation import policy_backtest as pb
    from bayes_mem.evaluation.signals import ShadowTrades

    g = np.random.default_rng(7)
    config = pb.BacktestConfig(warmup=250)
    n = 1500
    gross_a = 0.1 + 0.05 * g.random(n)
    r_a = gross_a * 0.01 * g.standard_normal(n) + 0.0001
    r_c = 0.002 * g.standard_normal(n)
    dtypes = (object, object, np.int64, np.int64, np.int64, np.int64, float)
    empty = ShadowTrades(*(np.array([], dtype=d) for d in dtypes))

    def pol(r, gross):
        return {"returns": r, "positions": gross[:, None], "stake": np.zeros(0),
                "act": np.zeros(0, dtype=bool), "binding": np.zeros(0, dtype=object)}  # fmt: skip

    policies = {"A": pol(r_a, gross_a), "B": pol(3 * r_a, 3 * gross_a),
                "C": pol(r_c, np.full(n, 0.2))}  # fmt: skip
    idx = pd.bdate_range("2000-01-03", periods=n)
    return pb.BacktestRun(pd.DataFrame({"X": np.ones(n)}, index=idx), empty, config, [],
                          policies, {})  # fmt: skip


def test_normalisation_makes_a_scaled_copy_identical() -> None:
    from bayes_mem.evaluation import policy_backtest as pb

    run = _fake_run()
    np.testing.assert_allclose(pb.normalised_returns(run, "B"), pb.normalised_returns(run, "A"),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    np.testing.assert_allclose(pb.exposure_returns(run, "B"), pb.exposure_returns(run, "A"),
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    eff = pb.paired_effect(run, "A", "B", n_boot=50)
    assert eff["corr_vt"] == pytest.approx(1.0)
    for key in ("vt_sharpe_diff", "vt_cvar_975_diff", "px_cvar_975_diff", "px_max_drawdown_diff"):
        assert abs(eff[key]) < 1e-9 and abs(eff[f"{key}_low"]) < 1e-9
    row = pb.normalised_metrics(run, "C", n_boot=50)
    assert row["vt_vol"] == pytest.approx(pb.TARGET_VOL, rel=0.15)
    # the raw CVaR of B is 3x A's; after normalisation they are equal
    ma, mb = (pb.normalised_metrics(run, k, n_boot=50) for k in ("A", "B"))
    assert mb["vt_cvar_975"] == pytest.approx(ma["vt_cvar_975"], rel=1e-9)
    table, info = pb.dsr_table(run)
    assert info["n_trials"] == 2 and info["naive_trials"] == 3
    assert sorted(map(sorted, info["clusters"])) == [["A", "B"], ["C"]]
    clusters = table.set_index("policy")["cluster"]
    assert clusters["A"] == clusters["B"] != clusters["C"]


def test_a_day_losing_more_than_the_capital_is_ruin_not_a_crash() -> None:
    """Constant capital: a day's pnl can exceed the capital (gross exposure above 1). The
    metrics count it as ruin (drawdown 100%) instead of failing on a 'simple return < -1'."""
    from bayes_mem.evaluation import policy_backtest as pb

    run = _fake_run()
    r = run.policies["B"]["returns"]
    r[run.start + 700] = -1.3
    row = pb.policy_metrics(run, "B", n_boot=20)
    assert row["max_drawdown"] == 1.0 and row["worst_day"] == -1.3
    assert row["max_gross_exposure"] == pytest.approx(float(np.max(3 * run.positions("A"))))
    norm = pb.normalised_metrics(run, "B", n_boot=20)
    assert 0.0 < norm["vt_max_drawdown"] <= 1.0
    pb.paired_effect(run, "A", "B", n_boot=20)
    pb.dsr_table(run)
