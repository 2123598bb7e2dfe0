"""The trading engine: one object from a signal to a sized, explained, recorded decision."""

from __future__ import annotations

import datetime as dt
import json
import math
import threading

import numpy as np
import pytest

from bayes_mem.live import DuplicateTradeError, ReturnModel, kelly_binary
from bayes_mem.live.engine import (
    EngineConfig,
    TradingEngine,
    UnknownSymbolError,
    UnknownTradeError,
)
from bayes_mem.live.modules import CVaRBudget, KellyLimit, PortfolioESLimit, ThompsonRule
from bayes_mem.live.prior_set import activate, apply_family_priors, write_prior_set
from bayes_mem.live.recording import MemoryRecorder
from tests import engine_parts as parts

PV = 1_000_000.0


class AlwaysAct:
    """A user's own decision rule (the protocol is all it needs): act on everything."""

    name = "always"
    enabled = True

    def decide(self, ctx):
        return True, 1.0, {"why": "test"}


def make_engine(config=None, *, days=60, seed=0, model=None, shadow=None, recorder=None, **kw):
    eng = TradingEngine(
        parts.decider(seed),
        parts.model() if model is None else model,
        portfolio_value=PV,
        config=config,
        signal_symbols=parts.links(),
        shadow=shadow,
        seed=seed,
        recorder=recorder,
        **kw,
    )
    returns = parts.correlated_returns(days)
    for t in range(days):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    return eng


def day(eng: TradingEngine, k: int = 1) -> dt.date:
    return eng.last_date + dt.timedelta(days=k)


# ---------------------------------------------------------------------------- decisions
def test_decision_carries_every_factor_and_explains_itself():
    eng = make_engine(EngineConfig(rule=AlwaysAct()))
    d = eng.signal("AAA:mom", "AAA", "long", 5, price=50.0)
    assert d.act and d.notional > 0
    assert set(d.limits) == {"cvar", "kelly", "portfolio_es"}
    assert d.binding == min(d.limits, key=d.limits.get)
    assert d.notional == pytest.approx(d.limits[d.binding] * math.prod(d.factors.values()))
    assert d.quantity == math.floor(d.notional / 50.0)
    assert "regime" in d.factors
    text = d.explain()
    assert "AAA:mom" in text and d.binding in text
    doc = json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert doc["limits"] == pytest.approx(d.limits)
    assert doc["detail"]["cvar"]["es"] == pytest.approx(d.detail["cvar"]["es"])
    assert eng.book() == {"AAA": pytest.approx(d.notional)}


def test_keyed_decisions_repeat_after_a_restart():
    a = make_engine(seed=3)
    b = make_engine(seed=3)
    a.signal("BBB:mom", "BBB", key="warm-up")  # a's own generator moved; keyed draws ignore it
    da = a.signal("AAA:mom", "AAA", "long", 2, key="evt-17")
    db = b.signal("AAA:mom", "AAA", "long", 2, key="evt-17")
    assert da.p_win == db.p_win and da.notional == db.notional and da.id == db.id == "evt-17"
    other = b.signal("AAA:rev", "AAA", key="evt-18")
    assert other.p_win != da.p_win


def test_thompson_rule_is_one_joint_posterior_draw():
    """act iff p W - (1 - p) L > 0 for one draw of the win rate (the signal's Beta posterior)
    and of the mean win and loss sizes (no history: both centred on the symbol's typical move)."""
    eng = make_engine(EngineConfig(rule=ThompsonRule(), kelly=None))  # sizing never zero
    rows = []
    for k in range(2000):
        d = eng.signal("AAA:mom", "AAA", key=f"k{k}")
        t = d.detail["thompson"]
        rows.append((d.p_win, t["win_size"], t["loss_size"], d.act))
        eng.cancel(d.id)
    p, w, loss, act = (np.array(c) for c in zip(*rows, strict=True))
    from scipy import stats

    assert stats.kstest(p, stats.beta(12, 10).cdf).pvalue > 1e-3
    np.testing.assert_array_equal(act, p * w - (1 - p) * loss > 0)
    vol = float(eng.model.volatility()[0])
    typical = math.sqrt(2 / math.pi) * vol
    assert np.mean(w) == pytest.approx(typical, rel=0.15)
    assert np.mean(loss) == pytest.approx(typical, rel=0.15)


# ---------------------------------------------------------------------------- units
def _settle_many(eng, signal, symbol, n, p_win, win, loss, seed=0):
    rng = np.random.default_rng(seed)
    for k in range(n):
        won = bool(rng.random() < p_win)
        notional = 10_000.0
        eng.settle(f"hist-{signal}-{k}", won=won, pnl=(win if won else -loss) * notional,
                   notional=notional, signal=signal)  # fmt: skip


def test_kelly_is_sized_in_notional_not_as_capital_at_risk():
    """Old: stake = PV x kelly_binary(p, W / L), the fraction of capital lost *in full*: with a
    2% loss per unit notional that is 50x too small. Now: the notional maximising expected log
    growth, i.e. capital at risk / L."""
    cfg = EngineConfig(rule=AlwaysAct(), budget=None, correlation=None, regime=None,
                       kelly=KellyLimit(fraction=0.25, cap=10.0))  # fmt: skip
    eng = make_engine(cfg)
    _settle_many(eng, "AAA:mom", "AAA", 2000, 0.53, 0.02, 0.02)
    d = eng.signal("AAA:mom", "AAA")
    p = d.detail["kelly"]["p_mean"]
    w, loss = d.detail["kelly"]["win_size_mean"], d.detail["kelly"]["loss_size_mean"]
    plug_in = 0.25 * (p * w - (1 - p) * loss) / (w * loss)  # notional / capital
    assert 0.8 * plug_in * PV <= d.limits["kelly"] <= plug_in * PV * 1.0001
    old = PV * kelly_binary(p, w / loss, fraction=0.25)
    assert d.limits["kelly"] == pytest.approx(old / loss, rel=0.2)
    assert d.limits["kelly"] > 20 * old


# ---------------------------------------------------------------------------- direction, horizon
def test_a_short_is_budgeted_with_the_right_tail():
    m = parts.model(lam=-0.4)  # strongly left-skewed: the left tail is the heavy one
    cfg = EngineConfig(rule=AlwaysAct(), kelly=None, correlation=None, regime=None,
                       budget=CVaRBudget(budget=0.01))  # fmt: skip
    eng = make_engine(cfg, model=m)
    long_ = eng.signal("AAA:mom", "AAA", "long")
    short = eng.signal("AAA:rev", "AAA", "short")
    es_long = eng.model.position_risk("AAA", level=0.975, side="long", horizon=1)[1]
    es_short = eng.model.position_risk("AAA", level=0.975, side="short", horizon=1)[1]
    assert es_long > 1.1 * es_short
    assert long_.limits["cvar"] == pytest.approx(0.01 * PV / es_long)
    assert short.limits["cvar"] == pytest.approx(0.01 * PV / es_short)
    assert short.detail["cvar"]["es"] == pytest.approx(es_short)


def test_a_multi_day_hold_is_budgeted_with_the_horizon_es():
    cfg = EngineConfig(rule=AlwaysAct(), kelly=None, correlation=None, regime=None)
    eng = make_engine(cfg)
    one = eng.signal("AAA:mom", "AAA", "long", 1)
    five = eng.signal("AAA:rev", "AAA", "long", 5)
    es5 = eng.model.position_risk("AAA", level=0.975, side="long", horizon=5)[1]
    assert five.detail["cvar"]["es"] == pytest.approx(es5)
    assert 1.5 < five.detail["cvar"]["es"] / one.detail["cvar"]["es"] < 3.5
    assert five.limits["cvar"] < one.limits["cvar"]


def test_a_hedge_is_not_cut_by_the_portfolio_es_limit():
    cfg = EngineConfig(rule=AlwaysAct(), kelly=None, regime=None,
                       budget=CVaRBudget(budget=0.05),
                       correlation=PortfolioESLimit(budget=0.01, breakdown_weight=0.0))  # fmt: skip
    eng = make_engine(cfg, days=80)
    first = eng.signal("AAA:mom", "AAA", "long")
    assert first.act and first.notional > 0
    same_way = eng.signal("BBB:mom", "BBB", "long")
    eng.cancel(same_way.id)
    hedge = eng.signal("BBB:rev", "BBB", "short")
    assert hedge.limits["portfolio_es"] > same_way.limits["portfolio_es"]
    marginal = {"hedge": hedge.detail["portfolio_es"]["marginal_es"],
                "same": same_way.detail["portfolio_es"]["marginal_es"]}  # fmt: skip
    assert marginal["hedge"] < 0 < marginal["same"]


# ---------------------------------------------------------------------------- events
def test_settle_records_once_and_closes_the_position():
    eng = make_engine(EngineConfig(rule=AlwaysAct()))
    d = eng.signal("AAA:mom", "AAA", key="t1")
    eng.settle("t1", won=True, pnl=0.01 * d.notional)
    assert eng.book() == {}
    m = eng.decider.metrics("AAA:mom")
    assert (m.trades, m.wins) == (1, 1)
    with pytest.raises(ValueError, match="already settled"):
        eng.settle("t1", won=True, pnl=1.0, signal="AAA:mom")
    # without the signal too (it said "no open decision has this id": true, but not why)
    with pytest.raises(DuplicateTradeError, match="'t1' was already settled"):
        eng.settle("t1", won=True, pnl=1.0)
    with pytest.raises(UnknownTradeError, match="nope"):
        eng.settle("nope", won=True, pnl=1.0)
    assert eng.decider.metrics("AAA:mom").trades == 1


def test_end_of_day_keeps_the_days_pnl_per_configuration():
    rec = MemoryRecorder()
    cfg = EngineConfig(rule=AlwaysAct())
    eng = make_engine(cfg, shadow=EngineConfig.baseline(), recorder=rec)
    d = eng.signal("AAA:mom", "AAA", key="x")
    assert [(r["config"], r["key"]) for r in rec.decisions] == [("live", "x"), ("baseline", "x")]
    shadow_d = d.shadow
    assert rec.decisions[1]["notional"] == shadow_d.notional
    eng.settle("x", won=False, pnl=-0.02 * d.notional)
    out = eng.end_of_day(eng.last_date)
    assert out["pnl"]["live"] == pytest.approx(-0.02 * d.notional)
    expected = -0.02 * shadow_d.notional if shadow_d.act else 0.0
    assert out["pnl"]["baseline"] == pytest.approx(expected)
    assert eng.daily_pnl()["baseline"][-1][1] == pytest.approx(expected)
    assert shadow_d.rule == "threshold" and shadow_d.binding in (None, "fixed")


def test_the_memory_recorder_converts_engine_decisions_when_read():
    """Recording a decision costs the decision path an append; the rows read are the store's."""
    from bayes_mem.live.recording import check_decision

    rec = MemoryRecorder()
    eng = make_engine(recorder=rec)
    made = [eng.signal("AAA:mom", "AAA", key="r1"), eng.signal("BBB:rev", "BBB", "short", 3)]
    assert all(r is d for r, d in zip(rec._decisions, made, strict=True))  # not converted yet
    rec.record_decision(made[0].decision_row())  # a mapping: checked at once
    assert isinstance(rec._decisions[-1], dict)
    want = [check_decision(d.decision_row()) for d in made]
    assert rec.decisions == [*want, want[0]]
    eng.signal("CCC:mom", "CCC")
    assert len(rec.decisions) == 4 and all(isinstance(r, dict) for r in rec.decisions)
    with pytest.raises(TypeError, match="mapping"):
        rec.record_decision(["not", "a", "row"])


def test_end_of_day_without_metrics_closes_the_day_the_same_way():
    """metrics=False skips what only the metrics use; the breakdown cut (run when first read)
    and the day's PnL are the same, so the next decisions are too."""
    rec, cfg = MemoryRecorder(), EngineConfig(rule=AlwaysAct())
    a, b = make_engine(cfg, days=70, recorder=rec), make_engine(cfg, days=70)
    for eng in (a, b):
        d = eng.signal("AAA:mom", "AAA", key="x")
        eng.settle("x", won=True, pnl=0.01 * max(d.notional, 1.0), notional=max(d.notional, 1.0))
    full = a.end_of_day(a.last_date)
    lean = b.end_of_day(b.last_date, metrics=False)
    assert set(lean) == {"date", "pnl"} and lean["pnl"] == full["pnl"]
    assert full["correlation"]["breakdown_score"] is not None and "portfolio" in full
    for k in range(5):
        da, db = (e.signal("BBB:mom", "BBB", key=f"n{k}") for e in (a, b))
        assert da.factors == db.factors and da.notional == db.notional
        assert "breakdown" in da.factors
    assert b._market.breakdown_score == full["correlation"]["breakdown_score"]


def test_the_baseline_is_one_configuration_of_the_same_engine():
    eng = make_engine(EngineConfig.baseline(per_symbol=600.0))
    d = eng.signal("AAA:mom", "AAA")
    assert d.act and d.notional == pytest.approx(600.0 / 2)  # two signals trade AAA
    eng.settle(d.id, won=False, pnl=-3.0)
    assert not eng.signal("AAA:mom", "AAA").act  # raw rate 0/1 < 0.5


# ---------------------------------------------------------------------------- bad input
def _snapshot(eng: TradingEngine):
    return (
        eng.decider.to_json(),
        json.dumps(eng.payoff.to_dict(), sort_keys=True),
        eng.model.sigma2().tobytes(),
        sorted(eng.book().items()),
        sorted(eng.open_positions()),
        eng.last_date,
        eng._market.p_change.tobytes(),
        len(eng._market.scores),
    )


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda e: e.signal("nope", "AAA"), ValueError, "nope"),
        (lambda e: e.signal("AAA:mom", "ZZZ"), UnknownSymbolError, "ZZZ"),
        (lambda e: e.signal("AAA:mom", "BBB"), ValueError, "trades 'AAA'"),
        (lambda e: e.signal("AAA:mom", "AAA", "sideways"), ValueError, "sideways"),
        (lambda e: e.signal("AAA:mom", "AAA", "long", 0), ValueError, "horizon"),
        (lambda e: e.signal("AAA:mom", "AAA", "long", True), TypeError, "horizon"),
        (lambda e: e.signal("AAA:mom", "AAA", price=float("nan")), ValueError, "price"),
        (lambda e: e.signal("AAA:mom", "AAA", price=-1.0), ValueError, "price"),
        (lambda e: e.settle("ghost", won=True, pnl=1.0), UnknownTradeError, "ghost"),
        (lambda e: e.settle("ghost", won=True, pnl=-1.0, signal="AAA:mom"), ValueError, "pnl"),
        (lambda e: e.settle("g", won=True, pnl=1.0, signal="AAA:mom", notional=0.0), ValueError,
         "notional"),
        (lambda e: e.settle("g", won=True, pnl=1.0, signal="AAA:mom", notional=math.inf),
         ValueError, "notional"),
        (lambda e: e.bar(day(e), {"ZZZ": 0.01}), UnknownSymbolError, "ZZZ"),
        (lambda e: e.bar(e.last_date, {"AAA": 0.01}), ValueError, "not after"),
        (lambda e: e.bar(e.last_date - dt.timedelta(days=3), {"AAA": 0.01}), ValueError,
         "not after"),
        (lambda e: e.bar(day(e), {"AAA": float("nan")}), ValueError, "finite"),
        (lambda e: e.bar(day(e), {"AAA": "0.01"}), TypeError, "AAA"),
        (lambda e: e.bar(day(e), {"AAA": 0.01, "ZZZ": 0.0}), UnknownSymbolError, "ZZZ"),
        (lambda e: e.bar("2024-05-01", {"AAA": 0.01}), TypeError, "date"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(call, error, match):
    eng = make_engine()
    eng.signal("CCC:mom", "CCC", key="open-one")  # something in the book
    before = _snapshot(eng)
    with pytest.raises(error, match=match):
        call(eng)
    assert _snapshot(eng) == before


# ---------------------------------------------------------------------------- refresh
def _engine_from_prior_set(tmp_path, ps):
    write_prior_set(ps, tmp_path)
    activate(tmp_path, ps.version)
    d = parts.decider()
    apply_family_priors(ps, d)
    m = ReturnModel({s: p.draws for s, p in ps.symbols.items()},
                    {s: p.sigma2 for s, p in ps.symbols.items()})  # fmt: skip
    eng = TradingEngine(d, m, portfolio_value=PV, prior_set=ps, signal_symbols=parts.links(),
                        models=tmp_path)  # fmt: skip
    returns = parts.correlated_returns(40)
    for t in range(40):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    return eng


def test_refresh_swaps_in_a_new_set_and_keeps_raw_counts(tmp_path):
    v1 = parts.prior_set(1)
    eng = _engine_from_prior_set(tmp_path, v1)
    eng.settle("o1", won=True, pnl=5.0, signal="AAA:mom", notional=100.0)
    assert not eng.refresh()  # nothing new
    v2 = parts.prior_set(2)
    write_prior_set(v2, tmp_path)
    activate(tmp_path, 2)
    assert eng.refresh()
    assert eng.prior_version == 2
    prior = v2.families["momentum"].point_prior()
    post = eng.decider.posterior("AAA:mom")
    assert (post.a, post.b) == pytest.approx((prior.a + 1, prior.b))  # counted once
    assert eng.signal("AAA:mom", "AAA").prior_version == 2
    # the rolled-forward model: v2's variance state moved through the 40 days in memory
    fresh = ReturnModel({s: p.draws for s, p in v2.symbols.items()},
                        {s: p.sigma2 for s, p in v2.symbols.items()})  # fmt: skip
    returns = parts.correlated_returns(40)
    for t in range(40):
        fresh.update(dict(zip(parts.SYMBOLS, returns[t], strict=True)), kind="log")
    np.testing.assert_allclose(eng.model.sigma2(), fresh.sigma2(), rtol=1e-12)


def test_refresh_refuses_a_corrupt_set_and_keeps_the_old_one(tmp_path):
    eng = _engine_from_prior_set(tmp_path, parts.prior_set(1))
    v2 = parts.prior_set(2)
    path = write_prior_set(v2, tmp_path) / "prior_set.json"
    path.write_bytes(path.read_bytes().replace(b'"version":2', b'"version":2 '))
    doc = json.loads(path.read_bytes())
    doc["prior_set"]["code_version"] = "tampered"
    path.write_text(json.dumps(doc))
    (tmp_path / "ACTIVE").write_text("2\n")
    before = eng.decider.to_json()
    assert not eng.refresh()
    assert eng.prior_version == 1 and "hash" in eng.last_refresh_error
    assert eng.decider.to_json() == before


def test_use_prior_set_swaps_in_a_set_held_in_memory(tmp_path):
    """The in-memory swap (no models directory) builds what refresh() builds from the registry:
    the set's priors on the raw counts, its model rolled forward through the engine's history,
    correlation and regime primed from it."""
    via_registry = _engine_from_prior_set(tmp_path, parts.prior_set(1))
    v2 = parts.prior_set(2)
    write_prior_set(v2, tmp_path)
    activate(tmp_path, 2)
    assert via_registry.refresh()
    m = ReturnModel({s: p.draws for s, p in parts.prior_set(1).symbols.items()},
                    {s: p.sigma2 for s, p in parts.prior_set(1).symbols.items()})  # fmt: skip
    eng = TradingEngine(parts.decider(), m, portfolio_value=PV, prior_set=parts.prior_set(1),
                        signal_symbols=parts.links(), shadow=EngineConfig.baseline())  # fmt: skip
    returns = parts.correlated_returns(40)
    for t in range(40):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    eng.settle("o1", won=True, pnl=5.0, signal="AAA:mom", notional=100.0)
    eng.use_prior_set(v2)
    assert eng.prior_version == 2 and eng.shadow.prior_version == 2
    assert eng.shadow.model is eng.model  # one market state for both configurations
    np.testing.assert_allclose(eng.model.sigma2(), via_registry.model.sigma2(), rtol=1e-12)
    np.testing.assert_allclose(eng.correlation(), via_registry.correlation(), rtol=1e-12)
    assert eng.regime() == pytest.approx(via_registry.regime(), rel=1e-12)
    prior = v2.families["momentum"].point_prior()
    post = eng.decider.posterior("AAA:mom")
    assert (post.a, post.b) == pytest.approx((prior.a + 1, prior.b))  # counted once
    flat = eng.shadow.decider.posterior("AAA:mom")  # the baseline does not pool: Beta(1, 1)
    assert (flat.a, flat.b) == pytest.approx((2.0, 1.0))
    assert eng.signal("AAA:mom", "AAA").prior_version == 2
    with pytest.raises(TypeError, match="PriorSet"):
        eng.use_prior_set({"version": 3})
    assert eng.prior_version == 2


def test_an_engine_without_a_model_keeps_history_then_fits_the_default():
    """No prior set, no model: bars only join the history; use_prior_set(None) then fits the
    documented default (Laplace per symbol, 250+ days) on that history, and sizing works."""
    eng = TradingEngine(parts.decider(), None, portfolio_value=PV, signal_symbols=parts.links(),
                        config=EngineConfig(rule=AlwaysAct()))  # fmt: skip
    returns = parts.correlated_returns(300)
    for t in range(100):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    assert eng.model is None and eng.last_date == parts.START + dt.timedelta(days=99)
    with pytest.raises(UnknownSymbolError, match="AAA"):
        eng.signal("AAA:mom", "AAA")
    with pytest.raises(ValueError, match="250 days"):
        eng.use_prior_set(None)  # too little history: refused, nothing changed
    assert eng.model is None
    for t in range(100, 300):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    eng.use_prior_set(None)
    assert eng.model.symbols == parts.SYMBOLS and eng.prior_version is None
    assert eng.correlation()[0, 1] > 0.4  # primed from the history's normal scores (rho 0.6)
    d = eng.signal("AAA:mom", "AAA", "long", 5, key="k")
    assert set(d.limits) == {"cvar", "kelly", "portfolio_es"} and d.detail["cvar"]["es"] > 0


def test_configurations_draw_common_random_numbers_for_one_event():
    """A keyed event gives every configuration the same draws: the shadow (or an ablation) is a
    paired comparison whose decisions differ only by its modules."""
    shadow = EngineConfig(name="ablation").without("kelly", "correlation")
    eng = make_engine(EngineConfig(), shadow=shadow)
    for k in range(20):
        d = eng.signal("AAA:mom", "AAA", key=f"e{k}")
        assert d.p_win == d.shadow.p_win
        assert d.detail["thompson"] == d.shadow.detail["thompson"]
        assert d.act == d.shadow.act
        if d.act:
            assert d.limits["cvar"] == d.shadow.limits["cvar"]
        eng.cancel(d.id)


# ---------------------------------------------------------------------------- threads
def test_concurrent_signals_and_settles_count_exactly():
    eng = make_engine(EngineConfig(rule=AlwaysAct()))
    errors = []

    def worker(w):
        try:
            for k in range(150):
                d = eng.signal(f"{parts.SYMBOLS[k % 3]}:mom", parts.SYMBOLS[k % 3], key=f"{w}-{k}")
                eng.settle(d.id, won=bool(k % 2), pnl=(1.0 if k % 2 else -1.0))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    total = sum(eng.decider.metrics(f"{s}:mom").trades for s in parts.SYMBOLS)
    assert total == 600 and eng.book() == {}


# ---------------------------------------------------------------------------- seed facades, A/B
def test_seed_facades_backed_by_an_engine_see_its_priors_and_state(tmp_path):
    from bayes_mem.live import CorrelationRiskAdjuster, DynamicCVaREngine, ThompsonSamplingDecider

    eng = _engine_from_prior_set(tmp_path, parts.prior_set(1))
    ts = ThompsonSamplingDecider(engine=eng)
    prior = parts.prior_set(1).families["momentum"].point_prior()
    assert eng.decider.posterior("AAA:mom") == prior  # the facade draws from the nightly prior
    draws = [ts.decide_execute("AAA:mom")[1] for _ in range(3000)]
    assert np.mean(draws) == pytest.approx(prior.mean, abs=0.01)
    ts.update_signal_result("AAA:mom", won=True, pnl_amount=12.0, trade_id="f1", notional=1000.0)
    assert eng.decider.metrics("AAA:mom").trades == 1  # through engine.settle: counted once
    assert eng.payoff.summary("AAA:mom")["win"]["trades"] == 1
    with pytest.raises(ValueError, match="already"):
        ts.update_signal_result("AAA:mom", won=True, pnl_amount=12.0, trade_id="f1")
    cvar = DynamicCVaREngine(confidence_level=0.975, engine=eng)
    size, es = cvar.calculate_cvar_limit("BBB", 1e6, 0.02)
    want = eng.model.risk(0.975).es_simple[eng.symbols.index("BBB")]
    # the fast solver is warm-started: repeated calls agree to its 2e-5 relative tolerance
    assert -es == pytest.approx(want, rel=1e-4) and size == pytest.approx(0.02e6 / want, rel=1e-4)
    with pytest.raises(UnknownSymbolError, match="ZZZ"):
        cvar.calculate_cvar_limit("ZZZ", 1e6)
    adj = CorrelationRiskAdjuster(engine=eng)
    from bayes_mem.live.correlation import concentration

    assert adj.calculate_portfolio_correlation_risk(None) == pytest.approx(
        concentration(eng.correlation()).score
    )


def test_shadow_ab_test_compares_the_two_daily_pnl_streams():
    from bayes_mem import StrategyABTest

    eng = make_engine(EngineConfig(rule=AlwaysAct()), shadow=EngineConfig.baseline(), days=30)
    rng = np.random.default_rng(4)
    for k in range(25):
        d = eng.signal(f"{parts.SYMBOLS[k % 3]}:mom", parts.SYMBOLS[k % 3], key=f"ab{k}")
        move = float(rng.normal(0.001, 0.01))
        eng.settle(d.id, won=move >= 0, pnl=move * d.notional)
        eng.bar(day(eng), parts.day_returns(parts.correlated_returns(1, seed=k)[0]))
        eng.end_of_day(eng.last_date)
    ab = StrategyABTest.from_engine(eng)
    control, test = ab.pnl()
    streams = eng.daily_pnl()
    np.testing.assert_allclose(test, [p for _, p in streams["live"]])
    np.testing.assert_allclose(control, [p for _, p in streams["baseline"]])
    assert ab.statistical_significance()["n"] == 25
    with pytest.raises(TypeError, match="shadow"):
        StrategyABTest.from_engine(make_engine(days=25))


def test_end_of_day_with_more_symbols_than_correlation_days():
    """The breakdown test needs more days than symbols: a wide universe skips it (no score, no
    cut) instead of failing the day's close."""
    symbols = tuple(f"S{i:03d}" for i in range(130))
    model = ReturnModel({s: parts.draws(i, 16) for i, s in enumerate(symbols)},
                        {s: np.full(16, 1e-4) for s in symbols})  # fmt: skip
    eng = TradingEngine(parts.decider(), model, portfolio_value=PV)
    rng = np.random.default_rng(5)
    for t in range(125):
        row = 0.01 * rng.standard_normal(len(symbols))
        eng.bar(parts.START + dt.timedelta(days=t), dict(zip(symbols, row.tolist(), strict=True)))
    out = eng.end_of_day(eng.last_date)
    assert out["correlation"]["breakdown_p"] is None
    assert out["correlation"]["effective_bets"] > 1.0


@pytest.mark.parametrize("seed", [0, 3, 2**32 - 1, 2**32, 2**45 + 7, 2**70 + 1])
def test_keyed_generator_is_default_rng_of_seed_and_key_words(seed):
    """The keyed generator's stream is ``default_rng([seed, *sha256 words])`` (its entropy is
    built as a uint32 array for speed; the stream must not change)."""
    import hashlib

    eng = TradingEngine(parts.decider(), parts.model(), portfolio_value=PV, seed=seed)
    for key in ("evt-17", "k" * 300, "é-1"):
        words = np.frombuffer(hashlib.sha256(f"decision\x00{key}".encode()).digest(), dtype="<u4")
        expected = np.random.default_rng([seed, *words.tolist()])
        got = eng._keyed_rng(key)
        assert got.bit_generator.state == expected.bit_generator.state
        np.testing.assert_array_equal(got.random(4), expected.random(4))


# ---------------------------------------------------------------------------- a tick at once
def _tick_events():
    """Long and short, horizons 1-5, signals firing twice, keyed and keyless events; acted ones
    move the book that sizes the next."""
    events = []
    for k in range(24):
        sym = parts.SYMBOLS[k % 3]
        sig = f"{sym}:{'mom' if k % 2 else 'rev'}"
        side = "short" if k % 5 == 1 else "long"
        if k % 4 == 3:
            events.append((sig, sym, side, 1 + k % 5))  # keyless
        else:
            events.append({"signal": sig, "symbol": sym, "side": side, "horizon": 1 + k % 5,
                           "key": f"tick-{k}", "price": 10.0 + k})  # fmt: skip
    return events


def _comparable(d):
    doc = d.to_dict()
    doc.pop("decided_at")
    if d.key is None:
        doc.pop("id")  # a random id for a keyless decision
    return doc


@pytest.mark.parametrize("shadow", [None, EngineConfig.baseline()])
def test_a_batch_decides_as_one_signal_call_per_event_in_order(shadow):
    events = _tick_events()
    rec_a, rec_b = MemoryRecorder(), MemoryRecorder()
    a = make_engine(seed=4, shadow=shadow, recorder=rec_a)
    b = make_engine(seed=4, shadow=shadow, recorder=rec_b)
    _settle_many(a, "AAA:mom", "AAA", 60, 0.6, 0.012, 0.01)
    _settle_many(b, "AAA:mom", "AAA", 60, 0.6, 0.012, 0.01)
    batch = a.signals(events)
    one_by_one = []
    for ev in events:
        if isinstance(ev, dict):
            one_by_one.append(b.signal(ev["signal"], ev["symbol"], ev["side"], ev["horizon"],
                                       key=ev["key"], price=ev["price"]))  # fmt: skip
        else:
            one_by_one.append(b.signal(*ev))
    assert sum(d.act for d in batch) >= 6  # the book moved within the batch
    assert [_comparable(d) for d in batch] == [_comparable(d) for d in one_by_one]
    if shadow is not None:
        assert [_comparable(d.shadow) for d in batch] == [_comparable(d.shadow) for d in one_by_one]
    assert a.book() == pytest.approx(b.book())
    strip = [{k: v for k, v in r.items() if k not in ("decided_at", "key", "detail")}
             for r in rec_a.decisions]  # fmt: skip
    assert strip == [{k: v for k, v in r.items() if k not in ("decided_at", "key", "detail")}
                     for r in rec_b.decisions]  # fmt: skip
    assert len(rec_a.decisions) == len(events) * (1 if shadow is None else 2)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (("nope", "AAA"), ValueError, "event 2: unknown signal 'nope'"),
        (("AAA:mom", "ZZZ"), UnknownSymbolError, "event 2: unknown symbol 'ZZZ'"),
        (("AAA:mom", "BBB"), ValueError, "event 2: signal 'AAA:mom' trades 'AAA'"),
        (("AAA:mom", "AAA", "sideways"), ValueError, "event 2: side"),
        (("AAA:mom", "AAA", "long", 0), ValueError, "event 2: horizon"),
        ({"signal": "AAA:mom", "symbol": "AAA", "price": -1.0}, ValueError, "event 2: price"),
        ({"signal": "AAA:mom", "symbol": "AAA", "key": "k0"}, ValueError, "'k0' is given twice"),
        ({"signal": "AAA:mom", "symbol": "AAA", "key": "open-one"}, ValueError, "an open decision"),
        ({"signal": "AAA:mom", "symbol": "AAA", "size": 3}, TypeError, "event 2: a mapping"),
        (("AAA:mom",), TypeError, "event 2: expected"),
    ],
)  # fmt: skip
def test_a_batch_with_a_bad_event_decides_nothing(bad, error, match):
    eng = make_engine()
    eng.signal("CCC:mom", "CCC", key="open-one")
    before = _snapshot(eng)
    events = [{"signal": "AAA:mom", "symbol": "AAA", "key": "k0"}, ("BBB:mom", "BBB"), bad]
    with pytest.raises(error, match=match):
        eng.signals(events)
    assert _snapshot(eng) == before
    with pytest.raises(TypeError, match="sequence of events"):
        eng.signals({"signal": "AAA:mom", "symbol": "AAA"})


def test_a_module_failing_midway_cancels_the_batch():
    class FailsOnBBB:
        name = "fails"
        enabled = True

        def limit(self, ctx):
            if ctx.symbol == "BBB":
                raise RuntimeError("module broke")
            return math.inf, {}, {}

    eng = make_engine(EngineConfig(rule=AlwaysAct(), correlation=FailsOnBBB()))
    with pytest.raises(RuntimeError, match="module broke"):
        eng.signals([("AAA:mom", "AAA"), ("CCC:mom", "CCC"), ("BBB:mom", "BBB")])
    assert eng.book() == {} and eng.open_positions() == {}


def test_a_used_up_portfolio_budget_sizes_to_zero_not_to_its_rounding_residue():
    """Four positions at the 0.5% CVaR budget nearly use the 2% portfolio ES budget of the
    book; once a correlated position took the rest, the next one has no room: no trade, not a
    trade of 1e-10."""
    cfg = EngineConfig(rule=AlwaysAct(), kelly=None, regime=None,
                       correlation=PortfolioESLimit(breakdown_weight=0.0))  # fmt: skip
    eng = make_engine(cfg, days=80)
    held = [eng.signal("AAA:mom", "AAA", "long", key=f"h{k}") for k in range(4)]
    assert all(d.act for d in held) and all(d.binding == "cvar" for d in held[:3])
    # the fourth uses the portfolio budget up: its two limits are equal (the portfolio ES and
    # the CVaR budget read the same per-position ES, ReturnModel.position_risk_arrays), so
    # either may bind, by a rounding
    assert held[3].limits["portfolio_es"] == pytest.approx(held[3].limits["cvar"], rel=1e-9)
    rest = eng.signal("BBB:mom", "BBB", "long", key="rest")
    assert rest.binding == "portfolio_es" and rest.notional < 0.01 * held[0].notional
    book = eng.book()
    for key in ("x", "y"):
        d = eng.signal("BBB:rev", "BBB", "long", key=key)
        assert 0.0 <= d.limits["portfolio_es"] < 1e-6  # what is left: rounding (here 1.6e-10)
        assert not d.act and d.notional == 0.0 and d.quantity is None
        assert d.reason == "sized to zero by portfolio_es"
    assert eng.book() == book


def test_kelly_of_a_signal_without_history_is_deterministic_and_positive_with_an_edge():
    """No trades yet: both sizes fall back to the symbol's typical move, so the edge is
    (2 p - 1) x size. Kelly on the posterior's quadrature nodes gives the same positive size
    whatever the decision's draws (keys, seeds, keyless), and 0 at p = 1/2 (no edge). With 128
    joint Monte Carlo draws (before) the size was noise: it changed with every draw, and the
    no-edge signal was sized at 1.8 million (18% of capital) on the draws of this test."""
    cfg = EngineConfig(rule=AlwaysAct(), budget=None, correlation=None, regime=None,
                       kelly=KellyLimit(fraction=0.25, cap=50.0))  # fmt: skip
    sizes = set()
    for seed in (0, 1):
        eng = make_engine(cfg, seed=seed)
        for k in range(5):
            d = eng.signal("AAA:mom", "AAA", key=f"k{k}")  # momentum: Beta(12, 10), p = 0.545
            sizes.add(d.limits["kelly"])
            eng.cancel(d.id)
        d = eng.signal("AAA:mom", "AAA")
        sizes.add(d.limits["kelly"])
        assert eng.signal("AAA:rev", "AAA").limits["kelly"] == 0.0  # Beta(10, 10): no edge
    assert len(sizes) == 1 and sizes.pop() > 0.0


def test_signal_and_signals_refuse_the_same_events_through_one_check():
    """One check (_check_args, _check_event) for signal() and every event of signals(): a key
    too long for the log, or a trade already settled, is refused by both, before anything is
    decided, with the event's index (before, the batch's up-front check missed a settled key:
    _decide refused it midway, without naming the event)."""
    from bayes_mem.live.validate import NAME_LENGTH

    eng = make_engine(EngineConfig(rule=AlwaysAct(), kelly=None))
    eng.settle("done", won=True, pnl=1.0, signal="AAA:mom")
    before = _snapshot(eng)
    for key, match in (("k" * (NAME_LENGTH + 1), "at most"), ("done", "already settled")):
        with pytest.raises(ValueError, match=match):
            eng.signal("AAA:mom", "AAA", key=key)
        with pytest.raises(ValueError, match=f"event 1: .*{match}"):
            eng.signals([("BBB:mom", "BBB"), {"signal": "AAA:mom", "symbol": "AAA", "key": key}])
        assert _snapshot(eng) == before


def test_the_engine_builds_decisions_equal_to_the_dataclass_constructor():
    """Decision._of (the hot path's constructor) makes the same object as Decision(...): equal,
    same fields, frozen, shadow None."""
    import dataclasses

    from bayes_mem.live.decision import Decision

    eng = make_engine()
    d = eng.signal("AAA:mom", "AAA", "short", 2, key="k1", price=12.5)
    fields = {f.name: getattr(d, f.name) for f in dataclasses.fields(Decision)}
    again = Decision(**{**fields, "shadow": None})
    assert again == d and vars(again) == {**vars(d), "shadow": None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.act = False  # type: ignore[misc]


def test_the_book_state_log_stays_bounded_and_the_limit_right_after_a_reset():
    """The exposure-change log behind the portfolio-ES limit's book state is dropped at its
    bound (a configuration without the limit never reads it); after a reset the limit is the
    one EulerES computes on the plain book."""
    from bayes_mem.live import engine as engine_mod

    base = make_engine(EngineConfig.baseline())
    for k in range(engine_mod._BOOK_LOG_MAX + 10):
        base.cancel(base.signal("AAA:mom", "AAA", key=f"b{k}").id)
    assert 0 < len(base._book_log) <= engine_mod._BOOK_LOG_MAX
    eng = make_engine(EngineConfig(rule=AlwaysAct(), kelly=None, regime=None))
    assert eng.signal("CCC:rev", "CCC", "short", key="held").act
    for k in range(engine_mod._BOOK_LOG_MAX // 2 + 5):  # two entries per round: crosses it
        eng.cancel(eng.signal("BBB:mom", "BBB", key=f"x{k}").id)
    book = dict(eng._exposure)
    d = eng.signal("AAA:mom", "AAA", key="probe")
    cap, es, _ = eng._market.euler(0.975).addition(book, "AAA", 1, 0.02 * PV)
    assert d.limits["portfolio_es"] == pytest.approx(cap, rel=1e-9)
    assert d.detail["portfolio_es"]["portfolio_es"] == pytest.approx(es, rel=1e-9)
