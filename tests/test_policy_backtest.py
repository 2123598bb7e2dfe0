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


def test_policies_are_engine_configurations():
    """Each policy is one EngineConfig; an ablation differs from ours in its slot only."""
    from bayes_mem.live import EngineConfig

    config = pb.BacktestConfig(position_budget=0.004, portfolio_budget=0.03)
    base = pb.policy_config("baseline", config)
    assert base == EngineConfig.baseline(per_symbol=750.0, threshold=0.5, name="baseline")
    fixed = pb.policy_config("baseline_fixed", config)
    assert isinstance(fixed.rule, pb.TradeEverySignal)
    assert dataclasses.replace(fixed, rule=base.rule, name="baseline") == base
    ours = pb.policy_config("ours", config)
    assert (ours.budget.budget, ours.correlation.budget) == (0.004, 0.03)
    assert ours.kelly.enabled and ours.regime.enabled and ours.pooled_priors
    fields = {f.name for f in dataclasses.fields(EngineConfig)} - {"name"}
    for slot, field_name in (("budget", "budget"), ("kelly", "kelly"),
                             ("correlation", "correlation"), ("regime", "regime"),
                             ("pooled", "pooled_priors")):  # fmt: skip
        abl = pb.policy_config(f"ours-no_{slot}", config)
        assert abl.name == f"ours-no_{slot}"
        changed = {f for f in fields if getattr(abl, f) != getattr(ours, f)}
        assert changed == {field_name}, slot
    with pytest.raises(ValueError, match=r"ours-no_budget-no_kelly.*budget or a Kelly"):
        pb.policy_config("ours-no_budget-no_kelly", config)


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
    ps = PriorSet(1, "2024-01-01T00:00:00+00:00", str(prices.index[300].date()), "test", "x",
                  fams, symbols, {}, regime)  # fmt: skip
    calib = [pb.Calibration(300, str(prices.index[300].date()), "active", 1, None, None, (),
                            0.0, ps)]  # fmt: skip
    runs = {
        name: pb.run_policy(name, prices, trades, calib, config, keep_decisions=True)
        for name in ("ours", "ours-no_pooled", "ours-no_budget", "ours-no_kelly",
                     "ours-no_correlation", "ours-no_regime")
    }  # fmt: skip
    return prices, trades, calib, config, runs


def _rule_acted(d) -> bool:
    return d.act or d.reason.startswith("sized to zero")


def test_each_switch_changes_only_its_module(switch_setup):
    """The same events and the same random numbers for every policy (keyed by the trade): an
    ablation's decisions differ from ours only in the switched-off module. The portfolio-ES
    limit depends on the open book, which the other sizes change, so it is not compared."""
    _, trades, _, config, runs = switch_setup
    ours = runs["ours"]["decisions"]
    decided = [i for i, d in enumerate(ours) if d is not None]
    assert len(decided) > 100 and sum(ours[i].act for i in decided) > 30
    module = {"budget": "cvar", "kelly": "kelly", "correlation": "portfolio_es",
              "regime": "regime"}  # fmt: skip
    for slot, gone in module.items():
        abl = runs[f"ours-no_{slot}"]["decisions"]
        assert [i for i, d in enumerate(abl) if d is not None] == decided
        for i in decided:
            a, o = abl[i], ours[i]
            assert a.p_win == o.p_win  # the same Thompson draw: only the sizing changes
            assert a.detail["thompson"] == pytest.approx(o.detail["thompson"], rel=1e-12)
            assert _rule_acted(a) == _rule_acted(o)
            if not _rule_acted(a):
                continue
            assert gone not in {**a.limits, **a.factors}
            assert gone in {**o.limits, **o.factors}
            if slot == "correlation":
                assert "breakdown" not in a.factors
            for name, v in o.limits.items():
                if name not in (gone, "portfolio_es"):
                    assert a.limits[name] == pytest.approx(v, rel=1e-9), (slot, name)
            for name, v in o.factors.items():
                if name != gone and not (slot == "correlation" and name == "breakdown"):
                    assert a.factors[name] == pytest.approx(v, rel=1e-12), (slot, name)
            if a.act:
                size = min(a.limits.values()) * np.prod(list(a.factors.values()))
                assert a.notional == pytest.approx(size)
    # and each switch mattered somewhere
    acted = [ours[i] for i in decided if ours[i].act]
    assert any(d.binding == "cvar" for d in acted)
    assert any(d.factors["regime"] < 1 for d in acted)
    assert any(d.factors.get("breakdown", 1) < 1 or d.binding == "portfolio_es" for d in acted)
    no_budget = runs["ours-no_budget"]["stake"]
    assert np.any(no_budget > runs["ours"]["stake"] * 1.01)
    # pooled priors off: flat Beta(1, 1) families; the strong 0.9 prior pulls ours' draws up
    # while ES and the regime cut (not the decider's business) stay the same
    flat = runs["ours-no_pooled"]
    live = trades.open_idx >= config.warmup
    assert np.nanmean(runs["ours"]["p_draw"][live]) > np.nanmean(flat["p_draw"][live]) + 0.05
    both = runs["ours"]["act"] & flat["act"]
    assert both.sum() > 10
    # (the h-day ES solves with Newton warm starts from the model's previous answers, so it
    # agrees to ~2e-5 whichever trades were asked before: see ReturnModel.snapshot)
    np.testing.assert_allclose(flat["es"][both], runs["ours"]["es"][both], rtol=1e-4)
    np.testing.assert_array_equal(flat["factor_regime"][both], runs["ours"]["factor_regime"][both])


def _drive_by_hand(prices, trades, calibrations, config, policy, seed=0):
    """A trader's loop written out: one engine, the day's events in order (bar, settlements,
    the night's prior set, signals, end of day). Returns the decisions by trade index."""
    from bayes_mem.live import BetaPrior, Decider, TradingEngine

    symbols = list(prices.columns)
    families = dict(zip(trades.signal, trades.family, strict=True))
    decider = Decider({f: BetaPrior(1.0, 1.0) for f in set(families.values())})
    for sig in sorted(families):
        decider.register(sig, families[sig])
    links = {sig: symbols[j] for sig, j in zip(trades.signal, trades.symbol, strict=True)}
    engine = TradingEngine(decider, None, portfolio_value=config.portfolio_value,
                           config=pb.policy_config(policy, config), signal_symbols=links,
                           seed=seed)  # fmt: skip
    nights = {c.day: c.prior_set for c in calibrations}
    logp = np.log(prices.to_numpy())
    decisions = {}
    live_version = None
    for t, date in enumerate(prices.index):
        if t:
            engine.bar(date.date(), {s: logp[t, j] - logp[t - 1, j] for j, s in
                                     enumerate(symbols)})  # fmt: skip
        for i in np.flatnonzero(trades.settle_idx == t):
            ret, d = trades.ret[i], decisions.get(i)
            if d is not None and d.act:
                engine.settle(str(i), won=bool(ret > 0), pnl=ret * d.notional)
            else:
                ref = pb.REFERENCE_NOTIONAL * config.portfolio_value
                engine.settle(str(i), won=bool(ret > 0), pnl=ret * ref, notional=ref,
                              signal=trades.signal[i])  # fmt: skip
        if t < config.warmup:
            continue
        ps = nights.get(t)
        if ps is not None and ps.version != live_version:
            engine.use_prior_set(ps)
            live_version = ps.version
        elif engine.model is None:
            engine.use_prior_set(None)
        for i in np.flatnonzero(trades.open_idx == t):
            side = "long" if trades.direction[i] == 1 else "short"
            decisions[i] = engine.signal(trades.signal[i], symbols[trades.symbol[i]], side,
                                         config.hold, key=str(i))  # fmt: skip
        engine.end_of_day(date.date())  # with every metric: they do not change decisions
    return decisions, engine


def _doc(d):
    return {k: v for k, v in d.to_dict().items() if k != "decided_at"}


@pytest.mark.parametrize("policy", ["ours", "baseline"])
def test_the_backtest_measures_what_an_engine_driven_by_hand_trades(switch_setup, policy):
    prices, trades, calib, config, runs = switch_setup
    res = runs[policy] if policy in runs else pb.run_policy(
        policy, prices, trades, calib, config, keep_decisions=True)  # fmt: skip
    by_hand, engine = _drive_by_hand(prices, trades, calib, config, policy)
    assert sorted(by_hand) == [i for i, d in enumerate(res["decisions"]) if d is not None]
    for i, d in by_hand.items():
        assert _doc(res["decisions"][i]) == _doc(d)
        assert res["stake"][i] == (d.notional if d.act else 0.0)
    # the accounting's pnl is the engine's: mark-to-market sums to what the engine realised
    pnl, _ = pb.portfolio_pnl(prices, trades, res["stake"])
    realised = sum(p for _, p in engine.daily_pnl()[policy])
    assert pnl.sum() == pytest.approx(realised, rel=1e-9)
    assert res["realised_pnl"].sum() == pytest.approx(realised, rel=1e-12)
    assert np.sum(res["stake"] * trades.ret) == pytest.approx(realised, rel=1e-9)


def test_decisions_up_to_t_ignore_later_prices(switch_setup, real_prices):
    """Corrupt every price after day t0: every decision up to t0 is the same (fast version of
    the slow test with the real nightly job below)."""
    prices, trades, calib, config, runs = switch_setup
    t0 = 400
    bad = prices.copy()
    rng = np.random.default_rng(5)
    bad.iloc[t0 + 1 :] *= np.exp(rng.normal(0, 0.03, (len(bad) - t0 - 1, 3)).cumsum(axis=0))
    bad_trades = shadow_trades(bad, hold=config.hold)
    res = pb.run_policy("ours", bad, bad_trades, calib, config, keep_decisions=True)
    a = [d for d, o in zip(runs["ours"]["decisions"], trades.open_idx, strict=True)
         if d is not None and o <= t0]  # fmt: skip
    b = [d for d, o in zip(res["decisions"], bad_trades.open_idx, strict=True)
         if d is not None and o <= t0]  # fmt: skip
    assert len(a) > 50 and [_doc(x) for x in a] == [_doc(x) for x in b]
    later = [d for d, o in zip(res["decisions"], bad_trades.open_idx, strict=True)
             if d is not None and o > t0]  # fmt: skip
    ours_later = [d for d, o in zip(runs["ours"]["decisions"], trades.open_idx, strict=True)
                  if d is not None and o > t0]  # fmt: skip
    assert [_doc(x) for x in later] != [_doc(x) for x in ours_later]


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
        assert c.status == "error" and c.prior_set is None


def test_bad_input_is_named(real_prices):
    with pytest.raises(ValueError, match="unknown policy 'foo'"):
        pb.parse_policy("foo")
    with pytest.raises(ValueError, match="unknown slot 'no_leverage'"):
        pb.parse_policy("ours-no_leverage")
    with pytest.raises(ValueError, match="unknown slot 'no_cvar'"):
        pb.parse_policy("ours-no_cvar")
    with pytest.raises(ValueError, match="only 'ours'"):
        pb.parse_policy("baseline-no_budget")
    with pytest.raises(ValueError, match="warmup must be at least 250"):
        pb.BacktestConfig(warmup=100)
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
    # an unbalanced panel may start or end with NaN; a gap inside a listed span is refused
    with pytest.raises(ValueError, match=r"prices of 'WTI' has a gap \(NaN\) at row 123"):
        pb.run_backtest(bad, config=pb.quick_config(), policies=("baseline",))
    bad.iloc[123, 2] = -1.0
    with pytest.raises(ValueError, match=r"prices of 'WTI' must be positive and finite, got -1.0 "
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
        per_trade = [k for k, v in run_a.policies[name].items()
                     if isinstance(v, np.ndarray) and v.shape == (len(run_a.trades),)]  # fmt: skip
        assert {"stake", "act", "p_draw", "binding"} <= set(per_trade)
        for key in per_trade:
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
             "policy_backtest_equity.png", "policy_backtest_summary.json",
             "policy_backtest_normalised.csv", "policy_backtest_normalised.md",
             "policy_backtest_effects.csv", "policy_backtest_effects.md",
             "policy_backtest_dsr.csv", "policy_backtest_dsr.md",
             "policy_backtest_factors.csv"]  # fmt: skip
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
    assert len(ab) == 2 + len(pb.SLOTS)
    assert "markdown" in a and "| policy |" in a["markdown"]
    assert a["nights"] == 2
    assert a["git_commit"] is not None and a["command"] in a["markdown"]
    norm = pd.read_csv(tmp_path / "a" / "policy_backtest_normalised.csv")
    assert list(norm["policy"]) == list(pb.DEFAULT_POLICIES)
    # every policy scaled to the same ex-ante volatility: realised vols close to the target
    assert norm["vt_vol"].between(0.5 * pb.TARGET_VOL, 1.5 * pb.TARGET_VOL).all()
    for col in ("vt_sharpe", "vt_cvar_975", "vt_max_drawdown", "px_cvar_975"):
        assert (norm[f"{col}_low"] <= norm[col]).all() and (norm[col] <= norm[f"{col}_high"]).all()
    effects = pd.read_csv(tmp_path / "a" / "policy_backtest_effects.csv")
    assert list(effects["test"]) == [f"ours-no_{s}" for s in pb.SLOTS]
    dsr = pd.read_csv(tmp_path / "a" / "policy_backtest_dsr.csv")
    assert (dsr["dsr"] <= dsr["psr"] + 1e-12).all()  # deflating never raises the PSR
    assert {"sharpe_diff_ci_low", "prob_test_better", "sharpe_diff_p_raw"} <= set(ab.columns)
    b = pb.write_results(tmp_path / "b", seed=0, quick=True)
    for n in names:
        if n.endswith((".csv", ".md", ".json")):
            assert (tmp_path / "a" / n).read_text() == (tmp_path / "b" / n).read_text(), n
    assert a["markdown"] == b["markdown"]


def test_before_after_puts_two_runs_side_by_side(tmp_path):
    cols = {"days": 10, "trades": 5, "trade_win_rate": 0.5, "mean_gross_exposure": 0.05,
            "sharpe": 0.3, "sharpe_low": -0.1, "sharpe_high": 0.7, "max_drawdown": 0.03,
            "cvar_975": 0.002, "turnover": 0.01}  # fmt: skip
    for tag, names, scale in (("b", ["baseline", "ours", "ours-no_cvar"], 1.0),
                              ("a", ["baseline", "ours", "ours-no_budget"], 2.0)):  # fmt: skip
        folder = tmp_path / tag
        folder.mkdir()
        rows = [{"policy": n, **cols, "mean_gross_exposure": 0.05 * scale} for n in names]
        pd.DataFrame(rows).to_csv(folder / "policy_backtest_metrics.csv", index=False)
        summary = {"days": 10, "window": ["2001-01-02", "2001-01-16"], "seed": 0,
                   "quick": False, "nights": 3, "nights_active": 2, "nights_rejected": 1,
                   "nights_error": 0}  # fmt: skip
        (folder / "policy_backtest_summary.json").write_text(__import__("json").dumps(summary))
        (folder / "policy_backtest_metrics.md").write_text(f"| metrics {tag} |\n")
        (folder / "policy_backtest_ab.md").write_text(f"| ab {tag} |\n")
    assert pb.main(["--compare", str(tmp_path / "b"), str(tmp_path / "a"),
                    "--out", str(tmp_path / "ba.md")]) == 0  # fmt: skip
    text = (tmp_path / "ba.md").read_text()
    assert "| ours | 5.0% -> 10.0% |" in text
    assert "| ours-no_budget | 5.0% -> 10.0% |" in text  # matched across the rename
    assert "| metrics b |" in text and "| ab a |" in text
    assert "3 nightly fits, 2 published, 1 rejected" in text


def test_policy_page_links_the_written_results():
    """The policy page (docs/policy_backtest.md, moved out of the README) shows the tables
    `bayes-mem evaluate` wrote by linking them, never as hand copies that drift, and the
    before/after page is there."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "policy_backtest.md").read_text()
    results = root / "docs" / "evaluation" / "policy"
    for name, head in (("policy_backtest_metrics.md", "| policy |"),
                       ("policy_backtest_ab.md", "| control |")):  # fmt: skip
        table = (results / name).read_text().strip()
        assert table.startswith(head), name
        assert f"](evaluation/policy/{name})" in page, name
        for row in table.splitlines()[2:]:
            assert row not in page, row  # no copy
    assert not re.search(r"^\| (baseline|ours)", page, flags=re.M)
    assert (root / "docs" / "policy_before_after.md").read_text().startswith("# Policy backtest")
