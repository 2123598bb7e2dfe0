"""A tick at once: the counter-based event draws and ``TradingEngine.signals`` against one
``signal`` call per event (the brute-force reference), to the last bit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live import event_draws as ed
from bayes_mem.live.engine import EngineConfig
from bayes_mem.live.modules import CVaRBudget, KellyLimit, PortfolioESLimit, RegimeCut
from bayes_mem.live.recording import MemoryRecorder
from tests import engine_parts as parts
from tests.test_engine import AlwaysAct, _comparable, _settle_many, _snapshot, make_engine


# ---------------------------------------------------------------------------- event draws
def _shapes(n, seed=1):
    rng = np.random.default_rng(seed)
    return (
        rng.choice([0.05, 0.3, 0.9, 1.0, 1.7, 30.0, 4e3], n),
        rng.choice([0.2, 1.0, 5.0, 80.0], n),
        rng.choice([0.5, 1.0, 3.0, 60.0, 1e4], n),
        rng.choice([1.0, 7.0, 200.0], n),
    )


def test_the_batch_draws_equal_the_scalar_draws_bit_for_bit():
    """Every row of draw_batch is draw_one of its material: the squeeze-accepted first attempts
    vectorised, everything else (rejections, borderline log tests, shapes below 1) redone by
    the scalar function."""
    n = 4000
    mats = [ed.keyed_material(ed.seed_prefix(7), f"key-{i}") for i in range(n)]
    a, b, aw, al = _shapes(n)
    p, gw, gl = ed.draw_batch(mats, ed.words_batch(mats), a, b, aw, al)
    one = np.array([ed.draw_one(m, *t) for m, t in zip(mats, zip(a.tolist(), b.tolist(),
                    aw.tolist(), al.tolist(), strict=True), strict=True)])  # fmt: skip
    assert np.array_equal(one[:, 0], p) and np.array_equal(one[:, 1], gw)
    assert np.array_equal(one[:, 2], gl)
    assert np.all((p >= 0) & (p <= 1)) and np.all(gw > 0) and np.all(gl > 0)


@pytest.mark.parametrize(("a", "b"), [(0.3, 0.2), (1.0, 1.0), (2.5, 5.0), (30.0, 80.0), (400, 7)])
def test_the_win_rate_draw_is_beta(a, b):
    mats = [ed.raw_material(k) for k in range(3000)]
    n = len(mats)
    p, _, _ = ed.draw_batch(mats, ed.words_batch(mats), np.full(n, float(a)),
                            np.full(n, float(b)), np.ones(n), np.ones(n))  # fmt: skip
    assert stats.kstest(p, stats.beta(a, b).cdf).pvalue > 1e-3


@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0, 60.0, 1e4])
def test_the_size_variates_are_gamma(alpha):
    mats = [ed.keyed_material(ed.seed_prefix(0), f"g{k}") for k in range(3000)]
    n = len(mats)
    _, gw, gl = ed.draw_batch(mats, ed.words_batch(mats), np.full(n, 2.0), np.full(n, 2.0),
                              np.full(n, alpha), np.full(n, 3.0))  # fmt: skip
    assert stats.kstest(gw, stats.gamma(alpha).cdf).pvalue > 1e-3
    assert stats.kstest(gl, stats.gamma(3.0).cdf).pvalue > 1e-3


def test_keyed_draws_depend_on_seed_and_key_only_and_are_independent_across_keys():
    args = (12.0, 9.0, 40.0, 30.0)
    one = ed.draw_one(ed.keyed_material(ed.seed_prefix(3), "evt-1"), *args)
    assert one == ed.draw_one(ed.keyed_material(ed.seed_prefix(3), "evt-1"), *args)
    assert one != ed.draw_one(ed.keyed_material(ed.seed_prefix(4), "evt-1"), *args)
    assert one != ed.draw_one(ed.keyed_material(ed.seed_prefix(3), "evt-2"), *args)
    # no two (seed, key) pairs share a material (the seed's length is part of it)
    assert ed.keyed_material(ed.seed_prefix(1), "\x02k") != ed.keyed_material(
        ed.seed_prefix(1 + 2 * 256), "k"
    )
    # neighbouring keys: uncorrelated draws
    mats = [ed.keyed_material(ed.seed_prefix(0), f"tick-{k}") for k in range(4000)]
    n = len(mats)
    p, gw, _ = ed.draw_batch(mats, ed.words_batch(mats), np.full(n, 12.0), np.full(n, 9.0),
                             np.full(n, 40.0), np.full(n, 30.0))  # fmt: skip
    assert abs(np.corrcoef(p[:-1], p[1:])[0, 1]) < 0.06
    assert abs(np.corrcoef(p, gw)[0, 1]) < 0.06


# ---------------------------------------------------------------------------- ticks
class PerEventLimit:
    """A user's limit without batch methods: called per event, in event order (it reads the
    book, so it must see the batch's earlier decisions)."""

    name = "user_limit"
    enabled = True

    def limit(self, ctx):
        held = sum(abs(v) for v in ctx.book().values())
        detail = {"held": held, "p": ctx.draw_win_probability()}
        return 400_000.0 - 0.05 * held, {"user_cut": 0.9}, detail


class PerEventRule:
    """A user's rule without decide_batch, drawing through the context (and its generator)."""

    name = "user_rule"
    enabled = True

    def decide(self, ctx):
        p = ctx.draw_win_probability()
        w, loss = ctx.payoff_draw()
        extra = float(ctx.rng.random())  # the event's own generator
        return p * w > (1 - p) * loss or extra < 0.3, p, {"extra": extra}


def _events(n, seed=0):
    """Long and short, horizons 1-5, keyed and keyless, prices on some, signals firing twice."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        sym = parts.SYMBOLS[int(rng.integers(3))]
        sig = f"{sym}:{'mom' if rng.random() < 0.5 else 'rev'}"
        side = "short" if rng.random() < 0.35 else "long"
        horizon = int(rng.integers(1, 6))
        if rng.random() < 0.3:
            out.append((sig, sym, side, horizon))
        else:
            ev = {"signal": sig, "symbol": sym, "side": side, "horizon": horizon, "key": f"e{k}"}
            if rng.random() < 0.3:
                ev["price"] = float(rng.uniform(5.0, 50.0))
            out.append(ev)
    return out


def _one_by_one(eng, events):
    out = []
    for ev in events:
        if isinstance(ev, dict):
            out.append(eng.signal(ev["signal"], ev["symbol"], ev.get("side", "long"),
                                  ev.get("horizon", 1), key=ev.get("key"),
                                  price=ev.get("price")))  # fmt: skip
        else:
            out.append(eng.signal(*ev))
    return out


# fmt: off
CONFIGS = {
    "all modules": EngineConfig(),
    "small budgets (the book binds)": EngineConfig(
        budget=CVaRBudget(budget=0.02), kelly=KellyLimit(cap=5.0),
        correlation=PortfolioESLimit(budget=0.01, breakdown_weight=0.3),
    ),
    "user modules, per event": EngineConfig(
        rule=PerEventRule(), budget=CVaRBudget(), kelly=PerEventLimit(),
        correlation=PortfolioESLimit(budget=0.01), regime=RegimeCut(),
    ),
    "always act, no Kelly": EngineConfig(rule=AlwaysAct(), kelly=None),
    "baseline": EngineConfig.baseline(),
}
# fmt: on


@pytest.mark.parametrize("shadow", [None, "baseline", "all modules"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_tick_equals_one_signal_call_per_event(name, shadow):
    """The brute-force reference: the same engine state, the same events decided one
    ``signal`` call at a time. Every field of every decision (and of the shadow's) equal, the
    book equal bit for bit, the next (keyless) decision equal: the generator and the book
    state were left as the calls leave them."""
    events = _events(90, seed=len(name))
    sh = None if shadow is None else CONFIGS[shadow]
    engines = []
    for _ in range(2):
        eng = make_engine(CONFIGS[name], seed=9, shadow=sh, recorder=MemoryRecorder(), days=70)
        _settle_many(eng, "AAA:mom", "AAA", 40, 0.6, 0.012, 0.01)
        _settle_many(eng, "BBB:rev", "BBB", 25, 0.45, 0.01, 0.011, seed=1)
        engines.append(eng)
    a, b = engines
    batch = a.signals(events)
    ref = _one_by_one(b, events)
    assert [_comparable(d) for d in batch] == [_comparable(d) for d in ref]
    if sh is not None:
        assert [_comparable(d.shadow) for d in batch] == [_comparable(d.shadow) for d in ref]
        assert a.shadow.book() == b.shadow.book()
    assert a.book() == b.book()
    assert sum(d.act for d in batch) >= 5, "the book should move within the batch"
    again = [e.signal("CCC:mom", "CCC", "short", 2) for e in (a, b)]
    assert _comparable(again[0]) == _comparable(again[1])
    assert a.recorder.decisions and len(a.recorder.decisions) == len(b.recorder.decisions)


def test_a_tick_with_full_bayes_families_equals_the_calls():
    """A family that draws its hyperparameters: each event picks its draw from its own
    material, in a batch as in a call."""
    engines = [make_engine(seed=2) for _ in range(2)]
    rng = np.random.default_rng(0)
    draws = (rng.uniform(5, 15, 50), rng.uniform(5, 15, 50))
    for eng in engines:
        eng.decider.set_family_draws("momentum", draws)
    events = _events(40, seed=3)
    batch = engines[0].signals(events)
    ref = _one_by_one(engines[1], events)
    assert [_comparable(d) for d in batch] == [_comparable(d) for d in ref]


def test_a_batch_method_failing_changes_nothing_and_puts_the_generator_back():
    class Breaks(CVaRBudget):
        def limit_batch(self, batch, rows):
            raise RuntimeError("batch method broke")

    eng = make_engine(EngineConfig(budget=Breaks()), seed=5)
    twin = make_engine(EngineConfig(budget=Breaks()), seed=5)
    before = _snapshot(eng)
    with pytest.raises(RuntimeError, match="batch method broke"):
        eng.signals([("AAA:mom", "AAA"), ("BBB:mom", "BBB", "short", 2)])
    assert _snapshot(eng) == before and eng.open_positions() == {}
    eng.config = twin.config = EngineConfig()
    # the keyless events' words were put back: the next keyless decision is the twin's
    assert _comparable(eng.signal("AAA:mom", "AAA")) == _comparable(twin.signal("AAA:mom", "AAA"))


def test_a_module_failing_in_the_loop_cancels_the_decisions_made():
    class FailsOnCCC(PortfolioESLimit):
        def limit_steps(self, batch):
            step = super().limit_steps(batch)

            def guarded(i):
                if batch.symbols[i] == "CCC":
                    raise RuntimeError("stepped limit broke")
                return step(i)

            return guarded

    eng = make_engine(EngineConfig(rule=AlwaysAct(), correlation=FailsOnCCC()))
    book = eng.book()
    with pytest.raises(RuntimeError, match="stepped limit broke"):
        eng.signals([("AAA:mom", "AAA", "long", 1), ("BBB:mom", "BBB"), ("CCC:mom", "CCC")])
    assert eng.book() == book and eng.open_positions() == {}


def test_a_subclass_overriding_the_scalar_method_is_called_per_event():
    """A user's subclass of a built-in module that overrides ``limit`` but inherits its
    parent's ``limit_batch`` is called per event (its own way), not through the parent's
    batch method."""

    class HalfBudget(CVaRBudget):
        def limit(self, ctx):
            cap, cuts, detail = super().limit(ctx)
            return 0.5 * cap, cuts, {**detail, "halved": True}

    cfg = EngineConfig(rule=AlwaysAct(), budget=HalfBudget(), kelly=None)
    a, b = make_engine(cfg), make_engine(cfg)
    events = _events(20, seed=4)
    batch = a.signals(events)
    assert all(d.detail["cvar"].get("halved") for d in batch if "cvar" in d.detail)
    assert [_comparable(d) for d in batch] == [_comparable(d) for d in _one_by_one(b, events)]


def test_every_decision_of_a_tick_has_the_ticks_time():
    eng = make_engine()
    out = eng.signals(_events(10))
    assert len({d.decided_at for d in out}) == 1 and out[0].decided_at.tzinfo is not None


def test_user_module_contexts_see_the_batch_draws():
    """A per-event module in a batch reads the same draws as the batch's built-in rule made."""
    seen = []

    class Spy:
        name = "spy"
        enabled = True

        def factor(self, ctx):
            seen.append((ctx.key, ctx.draw_win_probability(), ctx.payoff_draw()))
            return 1.0, {}

    eng = make_engine(EngineConfig(regime=Spy()))
    events = [e for e in _events(30) if isinstance(e, dict)]
    out = eng.signals(events)
    acted = {d.key: d for d in out if d.detail.get("spy") is not None}
    assert acted
    for key, p, (w, loss) in seen:
        d = acted[key]
        assert d.p_win == p and d.detail["thompson"]["win_size"] == w
        assert d.detail["thompson"]["loss_size"] == loss
    assert not math.isnan(sum(p for _, p, _ in seen))


@pytest.mark.parametrize(("log_max", "full_every"), [(7, 256), (4096, 3), (5, 2)])
def test_a_tick_across_book_log_resets_and_full_recomputations_equals_the_calls(
    monkeypatch, log_max, full_every
):
    """The book state's rebuild after a log reset and its periodic full recomputation happen
    at the same events in a batch as in the calls (bounds lowered to make them happen)."""
    from bayes_mem.live import engine as engine_mod
    from bayes_mem.live import portfolio

    monkeypatch.setattr(engine_mod, "_BOOK_LOG_MAX", log_max)
    monkeypatch.setattr(portfolio, "_BOOK_FULL_EVERY", full_every)
    cfg = EngineConfig(rule=AlwaysAct(), budget=CVaRBudget(budget=0.001), kelly=None,
                       correlation=PortfolioESLimit(budget=0.05))  # fmt: skip
    a, b = make_engine(cfg, seed=3), make_engine(cfg, seed=3)
    for eng in (a, b):  # something in the book and in the log before the tick
        eng.signal("CCC:rev", "CCC", "short", 2, key="before")
    events = _events(60, seed=11)
    batch = a.signals(events)
    ref = _one_by_one(b, events)
    assert sum(d.act for d in batch) > 2 * min(full_every, log_max)  # each happens, twice+
    assert [_comparable(d) for d in batch] == [_comparable(d) for d in ref]
    assert a.book() == b.book()
    again = [e.signal("AAA:mom", "AAA", "long", 3) for e in (a, b)]
    assert _comparable(again[0]) == _comparable(again[1])
