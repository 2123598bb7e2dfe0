"""Policy backtest on real prices: signals, settlement, policies, walk-forward, results."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bayes_mem.evaluation import policy_backtest as pb
from bayes_mem.evaluation.signals import (
    DEFAULT_SIGNALS,
    SignalSpec,
    directions,
    load_prices,
    shadow_trades,
)
from bayes_mem.live import ReturnModel


@pytest.fixture(scope="module")
def real_prices() -> pd.DataFrame:
    return load_prices()


def _panel(values: dict[str, list[float]] | dict[str, np.ndarray]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    return pd.DataFrame(values, index=pd.bdate_range("2020-01-01", periods=n))


# ---------------------------------------------------------------------------- data and signals


def test_real_prices_common_dates(real_prices):
    assert list(real_prices.columns) == ["SP500", "NASDAQ", "WTI"]
    assert len(real_prices) > 4900
    assert real_prices.index.is_monotonic_increasing
    assert np.isfinite(real_prices.to_numpy()).all() and (real_prices.to_numpy() > 0).all()


@pytest.mark.parametrize("spec", DEFAULT_SIGNALS, ids=lambda s: s.name)
def test_signals_use_no_future_data(real_prices, spec):
    p = real_prices["SP500"].to_numpy()[:1500]
    base = directions(p, spec)
    rng = np.random.default_rng(1)
    for t in (130, 400, 1000):
        q = p.copy()
        q[t + 1 :] *= np.exp(rng.normal(0, 0.05, q.size - t - 1).cumsum())
        alt = directions(q, spec)
        np.testing.assert_array_equal(base[: t + 1], alt[: t + 1])
        assert not np.array_equal(base[t + 1 :], alt[t + 1 :])  # the perturbation mattered


def test_signal_definitions_by_hand():
    p = np.array([10.0, 11, 12, 11, 13, 9, 10])
    np.testing.assert_array_equal(directions(p, SignalSpec("momentum", 2)), [0, 0, 1, 0, 1, -1, -1])
    # breakout of a 3-day channel of the previous closes: day 4 (13 > 12) up, day 5 (9 < 11) down
    np.testing.assert_array_equal(directions(p, SignalSpec("breakout", 3)), [0, 0, 0, 0, 1, -1, 0])
    # mean reversion: z of the 5-day log return over a 60-day sd; a jump day fades it
    rng = np.random.default_rng(0)
    q = 100 * np.exp(np.concatenate([[0], rng.normal(0, 0.01, 70).cumsum()]))
    q[-1] = q[-2] * 1.08  # +8% on the last day
    d = directions(q, SignalSpec("mean_reversion", 2.0))
    assert d[-1] == -1 and np.all(d[:60] == 0)


def test_settlement_and_pnl_exact_on_a_hand_series():
    prices = _panel({"A": [100.0, 101, 103, 102, 104, 106, 105]})
    trades = shadow_trades(prices, (SignalSpec("momentum", 1),), hold=2)
    # day 1: up (101 > 100) -> long 1..3; day 3: down (102 < 103) -> short 3..5; day 5 would
    # settle at day 7, past the end: not opened
    np.testing.assert_array_equal(trades.open_idx, [1, 3])
    np.testing.assert_array_equal(trades.settle_idx, [3, 5])
    np.testing.assert_array_equal(trades.direction, [1, -1])
    np.testing.assert_allclose(trades.ret, [102 / 101 - 1, -(106 / 102 - 1)], rtol=1e-15)
    np.testing.assert_array_equal(trades.won, [True, False])
    pnl, pos = pb.portfolio_pnl(prices, trades, np.array([100.0, 50.0]))
    expected = np.zeros(7)
    expected[2] = 100 / 101 * 2
    expected[3] = 100 / 101 * -1
    expected[4] = -50 / 102 * 2
    expected[5] = -50 / 102 * 2
    np.testing.assert_allclose(pnl[:, 0], expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(pnl[:, 0].sum(), 100 * trades.ret[0] + 50 * trades.ret[1])
    np.testing.assert_array_equal(pos[:, 0], [0, 100, 100, -50, -50, 0, 0])


def test_shadow_trades_do_not_overlap(real_prices):
    trades = shadow_trades(real_prices.iloc[:800], hold=5)
    for sig in set(trades.signal):
        m = trades.signal == sig
        o, s = trades.open_idx[m], trades.settle_idx[m]
        assert np.all(o[1:] >= s[:-1])
        assert np.all(s - o == 5)


# ---------------------------------------------------------------------------- policies


def _fallback_calibrations(prices, config, seed=0):
    """Calibrations without a published prior set (the documented default model only)."""
    out = []
    r = np.diff(np.log(prices.to_numpy()), axis=0)
    for day in pb.recalibration_days(len(prices), config):
        past = r[max(0, day - config.returns_window) : day]
        snap = ReturnModel.from_history(
            {str(s): past[:, j] for j, s in enumerate(prices.columns)}, kind="log", n_draws=30,
            rng=seed,
        ).snapshot()  # fmt: skip
        out.append(pb.Calibration(day, str(prices.index[day].date()), "rejected", None, None,
                                  None, (), 0.0, None, snap))  # fmt: skip
    return out


def test_baseline_reproduces_the_seed_plan_rule(real_prices):
    prices = real_prices.iloc[:900]
    config = pb.BacktestConfig(warmup=300, cadence=200)
    trades = shadow_trades(prices, hold=config.hold)
    stake = pb.run_policy("baseline", prices, trades, [], config)["stake"]
    n_signals = len(DEFAULT_SIGNALS)
    for i in range(len(trades)):
        if trades.open_idx[i] < config.warmup:
            assert stake[i] == 0
            continue
        # confidence = raw win rate of the signal's trades settled by the open day (0.5 if none)
        prior = (trades.signal == trades.signal[i]) & (trades.settle_idx <= trades.open_idx[i])
        conf = trades.won[prior].mean() if prior.any() else 0.5
        assert stake[i] == (750.0 / n_signals if conf >= 0.5 else 0.0)
    fixed = pb.run_policy("baseline_fixed", prices, trades, [], config)["stake"]
    assert np.all(fixed[trades.open_idx >= config.warmup] == 750.0 / n_signals)
    # the symbol's open book never exceeds the fixed $750 limit
    _, pos = pb.portfolio_pnl(prices, trades, fixed)
    assert np.abs(pos).max() <= 750.0 + 1e-9


@pytest.fixture(scope="module")
def switch_setup(real_prices):
    """A hand-built prior set (strong family priors, laplace return draws, a regime prior) on
    the first 480 days, loaded at day 300."""
    from bayes_mem.live.gjr_garch import fit_laplace, variance_path
    from bayes_mem.live.pit import normal_scores
    from bayes_mem.live.prior_set import FamilyPosterior, PriorSet, SymbolPosterior
    from bayes_mem.offline.regime_prior import estimate_regime_prior

    prices = real_prices.iloc[:480]
    config = pb.BacktestConfig(warmup=300, cadence=1000, returns_window=300, returns_draws=30)
    trades = shadow_trades(prices, hold=config.hold)
    r = np.diff(np.log(prices.to_numpy()), axis=0)[:300]
    rng = np.random.default_rng(0)
    symbols, scores = {}, []
    for j, s in enumerate(prices.columns):
        fit = fit_laplace(r[:, j], 30, rng)
        symbols[s] = SymbolPosterior(
            fit.draws, variance_path(r[:, j], fit.draws, r[:, j].var())[:, -1]
        )
        scores.append(normal_scores(r[:, j], fit.draws, r[:, j].var()))
    regime = estimate_regime_prior(scores, refine=False)
    regime["hazard"] = 0.05  # frequent changes: the regime factor bites
    fams = {f: FamilyPosterior(np.full(50, 0.9), np.full(50, 500.0))
            for f in ("momentum", "mean_reversion", "breakout")}  # fmt: skip
    ps = PriorSet(1, "now", str(prices.index[300].date()), "test", "x", fams, symbols, {}, regime)
    calib = [pb.Calibration(300, str(prices.index[300].date()), "active", 1, None, None, (),
                            0.0, ps)]  # fmt: skip
    runs = {
        name: pb.run_policy(name, prices, trades, calib, config)
        for name in ("ours", "ours-no_pooled", "ours-no_cvar", "ours-no_kelly",
                     "ours-no_correlation", "ours-no_regime")
    }  # fmt: skip
    return trades, runs, config


def test_factor_switches_change_only_their_factor(switch_setup):
    trades, runs, config = switch_setup
    ours = runs["ours"]
    live = trades.open_idx >= config.warmup
    acted = ours["stake"] > 0
    assert acted.sum() > 30
    for name in ("ours-no_cvar", "ours-no_kelly", "ours-no_correlation", "ours-no_regime"):
        # the same Thompson draws: only the sizing changes
        np.testing.assert_array_equal(runs[name]["p_draw"], ours["p_draw"])
    # correlation off: stake divided by exactly that factor, nothing else
    r = runs["ours-no_correlation"]
    np.testing.assert_allclose(r["stake"][acted] * ours["corr_factor"][acted], ours["stake"][acted])
    assert (ours["corr_factor"][acted] < 1).all()
    # regime off: the same with the regime factor, which did cut some trades
    r = runs["ours-no_regime"]
    np.testing.assert_allclose(
        r["stake"][acted] * ours["regime_factor"][acted], ours["stake"][acted]
    )
    assert (ours["regime_factor"][acted] < 1).any()
    # the stake is min(CVaR limit, Kelly limit) x factors; dropping a rule drops it from the min
    f = ours["corr_factor"][acted] * ours["regime_factor"][acted]
    cvar, kelly = ours["cvar_limit"][acted], ours["kelly_limit"][acted]
    np.testing.assert_allclose(ours["stake"][acted], np.minimum(cvar, kelly) * f)
    np.testing.assert_allclose(runs["ours-no_cvar"]["stake"][acted], kelly * f)
    np.testing.assert_allclose(runs["ours-no_kelly"]["stake"][acted], cvar * f)
    assert np.any(runs["ours-no_cvar"]["stake"][acted] > ours["stake"][acted] * 1.01)
    for name in ("ours-no_cvar", "ours-no_kelly"):
        assert np.all(runs[name]["stake"][live] >= ours["stake"][live] - 1e-9)
    assert np.isnan(runs["ours-no_cvar"]["es"]).all()
    # pooled priors off: flat Beta(1, 1) families; the strong 0.9 prior pulls ours' draws up
    # while ES and the factors (not the decider's business) stay the same
    flat = runs["ours-no_pooled"]
    assert np.nanmean(ours["p_draw"]) > np.nanmean(flat["p_draw"]) + 0.05
    both = acted & (flat["stake"] > 0)
    np.testing.assert_array_equal(flat["es"][both], ours["es"][both])
    np.testing.assert_array_equal(flat["corr_factor"][both], ours["corr_factor"][both])
    np.testing.assert_array_equal(flat["regime_factor"][both], ours["regime_factor"][both])


# ---------------------------------------------------------------------------- walk-forward


def test_walk_forward_hands_each_night_only_the_past(real_prices):
    """A spy in place of the nightly job: every store it is handed holds nothing dated after
    its day, and holds everything settled by then."""
    prices = real_prices.iloc[:900]
    config = pb.BacktestConfig(warmup=300, cadence=400, returns_window=300, returns_draws=20)
    trades = shadow_trades(prices, hold=config.hold)
    seen = []

    def spy(store, models, cfg, winrate_model=None, report=True):
        assert report is False  # a backtest night writes no analyst report
        out = store.outcomes()
        panel = store.returns_panel()
        seen.append((out, panel))
        raise ValueError("spy: no fit")

    calibs = pb.walk_forward(prices, trades, config, recalibrate_fn=spy)
    days = pb.recalibration_days(len(prices), config)
    assert [c.day for c in calibs] == days == [300, 700]
    for c, (out, panel), day in zip(calibs, seen, days, strict=True):
        date = prices.index[day]
        assert pd.to_datetime(out["settled_at"]).max() <= date
        assert len(out) == int(np.sum(trades.settle_idx <= day))
        assert panel.index.max() == date.date() and len(panel) == day
        assert c.status == "error" and c.fallback is not None


def test_bad_input_is_named(real_prices):
    with pytest.raises(ValueError, match="unknown policy 'foo'"):
        pb.parse_policy("foo")
    with pytest.raises(ValueError, match="unknown factor 'no_leverage'"):
        pb.parse_policy("ours-no_leverage")
    with pytest.raises(ValueError, match="only 'ours'"):
        pb.parse_policy("baseline-no_cvar")
    with pytest.raises(ValueError, match="cadence must be a positive whole number, got 0"):
        pb.BacktestConfig(cadence=0)
    with pytest.raises(ValueError, match="cadence must be a positive whole number, got -5"):
        pb.BacktestConfig(cadence=-5)
    with pytest.raises(ValueError, match="hold must be a positive"):
        shadow_trades(real_prices.iloc[:100], hold=0)
    with pytest.raises(ValueError, match="unknown signal family 'carry'"):
        SignalSpec("carry", 5)
    bad = real_prices.iloc[:700].copy()
    bad.iloc[123, 2] = np.nan
    with pytest.raises(ValueError, match=r"prices of 'WTI' must be positive and finite, got nan "
                                         r"at position 123"):  # fmt: skip
        pb.run_backtest(bad, config=pb.quick_config(), policies=("baseline",))
    with pytest.raises(ValueError, match="unknown policy 'oracle'"):
        pb.run_backtest(real_prices.iloc[:700], config=pb.quick_config(), policies=("oracle",))


# ---------------------------------------------------------------------------- slow: the real job


@pytest.mark.slow
def test_no_look_ahead_with_the_real_nightly_job(real_prices):
    """Corrupt every price after day t0: every decision, stake and published prior set up to
    t0 is identical; afterwards they differ."""
    prices = real_prices.iloc[-650:]
    config = dataclasses.replace(pb.quick_config(), cadence=150)  # nights 300, 450, 600
    t0 = 470
    policies = ("baseline", "ours")
    run_a = pb.run_backtest(prices, config=config, policies=policies, seed=3)
    bad = prices.copy()
    rng = np.random.default_rng(0)
    bad.iloc[t0 + 1 :] *= np.exp(rng.normal(0, 0.03, (len(bad) - t0 - 1, 3)).cumsum(axis=0))
    run_b = pb.run_backtest(bad, config=config, policies=policies, seed=3)
    assert [c.day for c in run_a.calibrations] == [300, 450, 600]
    assert any(c.status == "active" for c in run_a.calibrations[:2])
    for ca, cb in zip(run_a.calibrations, run_b.calibrations, strict=True):
        assert ca.outcomes_through <= str(prices.index[ca.day])
        assert ca.returns_through <= str(prices.index[ca.day])
        if ca.day > t0:
            continue
        assert (ca.status, ca.version) == (cb.status, cb.version)
        if ca.prior_set is not None:
            for f, fam in ca.prior_set.families.items():
                np.testing.assert_array_equal(fam.mean, cb.prior_set.families[f].mean)
                np.testing.assert_array_equal(fam.kappa, cb.prior_set.families[f].kappa)
            for s, sym in ca.prior_set.symbols.items():
                np.testing.assert_array_equal(sym.sigma2, cb.prior_set.symbols[s].sigma2)
                np.testing.assert_array_equal(sym.draws.beta, cb.prior_set.symbols[s].draws.beta)
    # trades opened by t0 are the same trades with the same decisions
    ea = run_a.trades.open_idx <= t0
    eb = run_b.trades.open_idx <= t0
    np.testing.assert_array_equal(run_a.trades.signal[ea], run_b.trades.signal[eb])
    for name in policies:
        for key in ("stake", "p_draw", "es", "corr_factor", "regime_factor"):
            np.testing.assert_array_equal(
                run_a.policies[name][key][ea], run_b.policies[name][key][eb]
            )
        np.testing.assert_array_equal(
            run_a.policies[name]["positions"][: t0 + 1], run_b.policies[name]["positions"][: t0 + 1]
        )
    # ... and the corruption did change what came after
    assert not np.array_equal(
        run_a.policies["ours"]["returns"][t0 + 1 :], run_b.policies["ours"]["returns"][t0 + 1 :]
    )


@pytest.mark.slow
def test_write_results_quick(tmp_path):
    a = pb.write_results(tmp_path / "a", seed=0, quick=True)
    names = ["policy_backtest_metrics.csv", "policy_backtest_metrics.md",
             "policy_backtest_ab.csv", "policy_backtest_ab.md", "policy_backtest_nights.csv",
             "policy_backtest_equity.png", "policy_backtest_summary.json"]  # fmt: skip
    for n in names:
        assert (tmp_path / "a" / n).stat().st_size > 0
    assert (tmp_path / "a" / "policy_backtest_equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = pd.read_csv(tmp_path / "a" / "policy_backtest_metrics.csv")
    assert list(metrics["policy"]) == list(pb.DEFAULT_POLICIES)
    for col in ("sharpe", "sharpe_low", "sharpe_high", "max_drawdown", "win_rate", "cvar_975",
                "turnover", "trades"):  # fmt: skip
        assert col in metrics.columns
    assert (metrics["sharpe_low"] <= metrics["sharpe"]).all()
    assert (metrics["sharpe"] <= metrics["sharpe_high"]).all()
    ab = pd.read_csv(tmp_path / "a" / "policy_backtest_ab.csv")
    assert ab.iloc[0][["control", "test"]].tolist() == ["baseline", "ours"]
    assert len(ab) == 2 + len(pb.FACTORS)
    assert "markdown" in a and "| policy |" in a["markdown"]
    assert a["nights"] == 2
    b = pb.write_results(tmp_path / "b", seed=0, quick=True)
    for n in names:
        if n.endswith((".csv", ".md", ".json")):
            assert (tmp_path / "a" / n).read_text() == (tmp_path / "b" / n).read_text(), n
    assert a["markdown"] == b["markdown"]
