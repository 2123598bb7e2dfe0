"""``TradingEngine.prepare``: what the first signals after a bar would compute, computed ahead.

- decisions made after ``prepare`` equal those of an engine that never prepared, to the bit,
  when that engine solved the same (side, horizon) pairs each day (every event sized: the live
  configuration and a shadow at another risk level; ``signal`` and ``signals``);
- when it did not (declined events size nothing), the risk solver's warm starts differ, and so
  may the ES, within the solver's tolerance (second order: under 2e-4 relative), and nothing
  else but what the ES sizes;
- after ``prepare`` a signal of a prepared (side, horizon) computes no risk (neither the arrays
  nor the per-symbol answers), correlation, Euler ES or breakdown test (each spied on: a call
  fails the test), and one of another horizon does;
- bad horizons and sides raise naming the value, before anything is computed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live import engine as engine_module
from bayes_mem.live.engine import EngineConfig, TradingEngine
from bayes_mem.live.modules import CVaRBudget, PortfolioESLimit
from bayes_mem.live.portfolio import EulerES
from bayes_mem.live.recording import MemoryRecorder
from tests import engine_parts as parts
from tests.test_engine import AlwaysAct, _comparable, _settle_many, _snapshot, make_engine

PAIRS = [(side, h) for side in ("long", "short") for h in (1, 2, 4)]
SHADOW = EngineConfig(
    budget=CVaRBudget(budget=0.004, level=0.99),
    correlation=PortfolioESLimit(budget=0.015, level=0.99),
)
ACTING = EngineConfig(rule=AlwaysAct())
ACTING_SHADOW = EngineConfig(
    rule=AlwaysAct(),
    budget=CVaRBudget(budget=0.004, level=0.99),
    correlation=PortfolioESLimit(budget=0.015, level=0.99),
)


def _day_events(t: int) -> list[dict]:
    """Every prepared (side, horizon) once, on rotating symbols and signals, keyed."""
    out = []
    for j, (side, h) in enumerate(PAIRS):
        sym = parts.SYMBOLS[(t + j) % 3]
        kind = "mom" if (t + j) % 2 else "rev"
        out.append({"signal": f"{sym}:{kind}", "symbol": sym, "side": side, "horizon": h,
                    "key": f"d{t}-{j}"})  # fmt: skip
    return out


def _bar(eng: TradingEngine, t: int) -> None:
    row = parts.correlated_returns(80, seed=5)[t]
    eng.bar(eng.last_date + dt.timedelta(days=1), parts.day_returns(row))


def _pair(config, shadow):
    engines = []
    for _ in range(2):
        eng = make_engine(config, seed=3, shadow=shadow, recorder=MemoryRecorder())
        _settle_many(eng, "AAA:mom", "AAA", 30, 0.6, 0.012, 0.01)
        _settle_many(eng, "BBB:rev", "BBB", 30, 0.55, 0.01, 0.011, seed=1)
        engines.append(eng)
    return engines


def _decide(eng, events):
    half = len(events) // 2
    return [eng.signal(e["signal"], e["symbol"], e["side"], e["horizon"], key=e["key"])
            for e in events[:half]] + eng.signals(events[half:])  # fmt: skip


def test_decisions_after_prepare_equal_those_without_it_to_the_bit():
    prepared, lazy = _pair(ACTING, ACTING_SHADOW)
    for t in range(4):
        for eng in (prepared, lazy):
            _bar(eng, t)
        spent = prepared.prepare(horizons=(1, 2, 4))
        assert spent["risk"] > 0.0 and spent["portfolio"] > 0.0
        events = _day_events(t)
        got, want = _decide(prepared, events), _decide(lazy, events)
        assert [_comparable(d) for d in got] == [_comparable(d) for d in want], t
        assert [_comparable(d.shadow) for d in got] == [_comparable(d.shadow) for d in want]
        assert prepared.book() == lazy.book()
        assert prepared.shadow.book() == lazy.shadow.book()


def test_when_the_lazy_engine_skipped_a_pair_only_the_es_moves_within_the_solvers_tolerance():
    prepared, lazy = _pair(None, SHADOW)
    moved = 0
    for t in range(6):
        for eng in (prepared, lazy):
            _bar(eng, t)
        prepared.prepare(horizons=(1, 2, 4))
        events = _day_events(t)
        got, want = _decide(prepared, events), _decide(lazy, events)
        for g, w in zip(got, want, strict=True):
            assert (g.act, g.p_win, g.binding) == (w.act, w.p_win, w.binding)
            if "cvar" in g.detail:
                ratio = g.detail["cvar"]["es"] / w.detail["cvar"]["es"]
                assert abs(ratio - 1.0) < 2e-4, (t, g.side, g.horizon, ratio)
                moved += ratio != 1.0
    assert moved >= 1, "the scenario should skip a pair on some day"


def test_after_prepare_a_prepared_signal_computes_no_risk_and_another_horizon_does(
    monkeypatch,
):
    eng = make_engine(ACTING, seed=1, shadow=ACTING_SHADOW)
    _bar(eng, 0)
    eng.prepare(horizons=(1, 3), sides=("short", "long"))

    def computed(*args, **kwargs):
        raise AssertionError("computed after prepare")

    monkeypatch.setattr(eng.model, "risk", computed)
    monkeypatch.setattr(eng.model, "_position_risk", computed)  # the per-symbol answers
    monkeypatch.setattr(engine_module, "shrunk_correlation", computed)
    monkeypatch.setattr(engine_module, "correlation_breakdown", computed)
    monkeypatch.setattr(EulerES, "from_model", computed)
    for side in ("long", "short"):
        for h in (1, 3):
            d = eng.signal("AAA:mom", "AAA", side, h)
            assert d.shadow is not None and "cvar" in d.limits
    eng.signals([("BBB:rev", "BBB", "short", 3), ("CCC:mom", "CCC", "long", 1)])
    with pytest.raises(AssertionError, match="computed after prepare"):
        eng.signal("AAA:mom", "AAA", "long", 2)  # not prepared: solved on its own clock


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"horizons": (1, 0)}, "horizon"),
        ({"horizons": (64,)}, "64"),
        ({"horizons": (True,)}, "horizon"),
        ({"horizons": ("2",)}, "horizon"),
        ({"horizons": (1.5,)}, "horizon"),
        ({"sides": ("long", "up")}, "'up'"),
        ({"sides": "up"}, "'up'"),
        ({"sides": (["long"],)}, "long"),
        ({"horizons": 2.0}, "horizon"),
    ],
)
def test_bad_horizons_and_sides_raise_naming_them_and_compute_nothing(kwargs, match):
    eng = make_engine(seed=2)
    _bar(eng, 0)
    before = _snapshot(eng)
    with pytest.raises((ValueError, TypeError), match=match):
        eng.prepare(**kwargs)
    assert _snapshot(eng) == before
    assert eng.model._position_arrays == {} and eng._market._euler == {}
    assert eng._market._corr_ready is False


def test_without_a_return_model_there_is_nothing_to_prepare():
    eng = TradingEngine(Decider({"momentum": BetaPrior(12.0, 10.0)}), None, portfolio_value=1e6)
    assert eng.prepare(horizons=(1, 5)) == {"risk": 0.0, "portfolio": 0.0}


def test_one_horizon_and_one_side_may_be_given_bare():
    eng = make_engine(seed=2)
    _bar(eng, 0)
    eng.prepare(3, "short")
    model = eng.model
    multi_day = {key for key in model._position_arrays if key[2] > 1}
    assert multi_day == {(0.975, "short", 3)}  # (the Euler ES solves one day, both sides)
