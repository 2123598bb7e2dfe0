"""Threads on one engine: signals, settlements and bars from many threads while another thread
refreshes onto new prior sets. Every decision carries exactly one prior version and every number
it was made from belongs to that version (no decision sees half of two sets); the counts are
exact; no bar is lost by a refresh (the final variance state is the final set's rolled through
every bar, in memory and on a store).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from bayes_mem.live import ReturnModel
from bayes_mem.live.engine import EngineConfig, TradingEngine
from bayes_mem.live.event_draws import draw_p, keyed_material, words_one
from bayes_mem.live.modules import CVaRBudget, PortfolioESLimit
from bayes_mem.live.prior_set import activate, apply_family_priors, write_prior_set
from bayes_mem.store import Store
from tests import engine_parts as parts
from tests import engine_store_parts as sp

VERSIONS = range(2, 7)  # the sets the refresher activates in turn after v1
WORKERS, PER_WORKER, BARS = 4, 150, 120


@dataclass
class Probe(PortfolioESLimit):
    """The portfolio-ES limit, reporting in its detail what it saw of the engine's state: the
    market's prior set, the model object, the signal's family prior and posterior."""

    def limit(self, ctx):
        cap, cuts, detail = super().limit(ctx)
        eng = ctx._engine
        fam = eng.decider.families[ctx.family]
        post = eng.decider.posterior(ctx.signal)
        detail.update(market_version=eng._market.prior_set.version, model=id(eng._market.model),
                      family_prior=(fam.a, fam.b), posterior=(post.a, post.b))  # fmt: skip
        return cap, cuts, detail


def config() -> EngineConfig:
    return EngineConfig(rule=sp.AlwaysAct(), budget=CVaRBudget(), kelly=None, correlation=Probe())


def publish_all(models) -> dict[int, object]:
    sets = {v: parts.prior_set(v) for v in (1, *VERSIONS)}
    for ps in sets.values():
        write_prior_set(ps, models)
    activate(models, 1)
    return sets


def memory_engine(models, sets) -> TradingEngine:
    ps = sets[1]
    d = parts.decider()
    apply_family_priors(ps, d)
    m = ReturnModel({s: p.draws for s, p in ps.symbols.items()},
                    {s: p.sigma2 for s, p in ps.symbols.items()})  # fmt: skip
    eng = TradingEngine(d, m, portfolio_value=sp.PV, config=config(), prior_set=ps,
                        signal_symbols=parts.links(), models=models, seed=4,
                        shadow=EngineConfig.baseline(), detector=ps.regime_detector())  # fmt: skip
    returns = parts.correlated_returns(40)
    for t in range(40):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    return eng


def run_threads(eng: TradingEngine, models, first_bar_day: int) -> tuple[list, list, dict]:
    """The workers, the bar thread and the refresher; returns the decisions, the errors and
    the refresh log (version -> model objects that carried it)."""
    decisions, errors = [], []
    models_of: dict[int, list] = {1: [eng.model]}
    settled = [0]
    lock = threading.Lock()
    start = threading.Barrier(WORKERS + 2)
    refreshed = threading.Event()

    def worker(w: int) -> None:
        rng = np.random.default_rng(w)
        names = sorted(parts.links())
        try:
            start.wait()
            k, after = 0, 0
            while k < PER_WORKER or after < 10:  # at least PER_WORKER, ten on the last set
                after += refreshed.is_set()
                sig = names[int(rng.integers(len(names)))]
                d = eng.signal(sig, sig[:3], "long" if k % 3 else "short", 1 + k % 3,
                               key=f"{w}-{k}")  # fmt: skip
                won = bool(rng.random() < 0.5)
                eng.settle(d.id, won=won, pnl=(1.0 if won else -1.0) * 0.01 * max(d.notional, 1),
                           notional=max(d.notional, 1.0))  # fmt: skip
                with lock:
                    decisions.append(d)
                    settled[0] += 1
                k += 1
        except BaseException as exc:  # pragma: no cover - reported by the test
            errors.append(exc)

    def bars() -> None:
        r = parts.correlated_returns(BARS, seed=9)
        try:
            start.wait()
            for t in range(BARS):
                if t >= BARS // 2 and refreshed.is_set():
                    break
                day = parts.START + dt.timedelta(days=first_bar_day + t)
                eng.bar(day, {s: float(x) for s, x in zip(parts.SYMBOLS, r[t], strict=True)
                              if (t + ord(s[0])) % 5})  # fmt: skip
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def refresher() -> None:
        try:
            start.wait()
            for v in VERSIONS:
                activate(models, v)
                assert eng.refresh(), eng.last_refresh_error
                with lock:
                    models_of.setdefault(v, []).append(eng.model)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            refreshed.set()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    threads += [threading.Thread(target=bars), threading.Thread(target=refresher)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not any(t.is_alive() for t in threads)
    return decisions, errors, {"models": models_of, "settled": settled[0]}


def check(eng: TradingEngine, sets: dict, decisions: list, errors: list, log: dict,
          initial: int = 0) -> None:  # fmt: skip
    assert not errors, errors
    assert len(decisions) >= WORKERS * PER_WORKER and len(decisions) == log["settled"]
    versions = set()
    model_version = {id(m): v for v, ms in log["models"].items() for m in ms}
    for d in decisions:
        v = d.prior_version
        probe = d.detail["portfolio_es"]
        versions.add(v)
        assert probe["market_version"] == v and d.shadow.prior_version == v, d
        assert model_version.get(probe["model"]) == v, d  # the model of that version
        prior = sets[v].families[d.family].point_prior()
        assert probe["family_prior"] == pytest.approx((prior.a, prior.b), rel=1e-15), d
        # the win draw is the keyed draw from the posterior the probe saw under that prior
        # (the keyed draw is the counter-based one of bayes_mem.live.event_draws since the
        # batched tick; it was default_rng([seed, *sha256 words]).beta(a, b) before)
        a, b = probe["posterior"]
        material = keyed_material(eng._seed_prefix, d.key)
        assert d.p_win == draw_p(material, a, b, words_one(material))
    assert versions >= {1, max(VERSIONS)} and len(versions) >= 3, versions  # refreshed midway
    trades = sum(eng.decider.metrics(s).trades for s in eng.decider.signals)
    assert trades == initial + len(decisions) == sum(t for _, t in eng._raw.values())
    assert sum(eng.shadow.decider.metrics(s).trades for s in eng.decider.signals) == trades
    assert eng.book() == {} and eng.shadow.book() == {} and not eng.open_positions()
    assert eng.prior_version == max(VERSIONS)


def rolled(ps, days) -> np.ndarray:
    """The set's variance state rolled through ``days`` (date, returns), in order."""
    m = ReturnModel({s: p.draws for s, p in ps.symbols.items()},
                    {s: p.sigma2 for s, p in ps.symbols.items()})  # fmt: skip
    for _, r in days:
        m.update(r, kind="log")
    return m.sigma2()


def test_threads_and_refreshes_in_memory(tmp_path):
    sets = publish_all(tmp_path)
    eng = memory_engine(tmp_path, sets)
    decisions, errors, log = run_threads(eng, tmp_path, first_bar_day=40)
    check(eng, sets, decisions, errors, log)
    # no bar lost: the last set (data_through None) rolled through every day the engine saw
    assert len(eng._history) >= 40 + BARS // 2
    np.testing.assert_allclose(eng.model.sigma2(), rolled(sets[max(VERSIONS)], eng._history),
                               rtol=1e-13, atol=0)  # fmt: skip


@pytest.mark.slow  # ~10 s per backend (600 settles, each a durable transaction)
def test_threads_and_refreshes_on_a_store(tmp_path, store_url):
    store = Store(store_url)
    sp.fill(store, days=60, outcomes=20)
    sets = publish_all(tmp_path / "models")
    eng = sp.open_engine(tmp_path / "models", store, config=config())
    decisions, errors, log = run_threads(eng, tmp_path / "models", first_bar_day=60)
    check(eng, sets, decisions, errors, log, initial=20)
    eng.flush()
    assert len(store.outcomes()) == 20 + len(decisions)
    assert len(store.decisions()) == 2 * len(decisions)  # live and shadow
    days = sorted(store.returns_panel(parts.SYMBOLS).iterrows())
    want = rolled(sets[max(VERSIONS)], [(d, {s: v for s, v in r.items() if math.isfinite(v)})
                                        for d, r in days])  # fmt: skip
    np.testing.assert_allclose(eng.model.sigma2(), want, rtol=1e-13, atol=0)
    eng.close()
    store.close()


# ---------------------------------------------------------------------------- the two races
def test_a_bar_while_a_refresh_builds_the_new_state_is_not_lost(tmp_path, monkeypatch):
    """refresh() builds the new set's state from a snapshot of the history, outside the lock;
    a bar that arrives meanwhile must reach the new state too."""
    from bayes_mem.live import engine as engine_module

    sets = publish_all(tmp_path)
    eng = memory_engine(tmp_path, sets)
    real = engine_module._build_market_state
    late = {"AAA": 0.03, "CCC": -0.02}

    def building(*a, **k):
        out = real(*a, **k)
        threading.Thread(target=eng.bar, args=(eng.last_date + dt.timedelta(days=1), late)).start()
        for _ in range(200):  # the bar thread holds the lock until it is done
            if eng._history[-1][1] == late:
                break
            threading.Event().wait(0.005)
        return out

    monkeypatch.setattr(engine_module, "_build_market_state", building)
    activate(tmp_path, 2)
    assert eng.refresh()
    assert eng._history[-1][1] == late
    np.testing.assert_allclose(eng.model.sigma2(), rolled(sets[2], eng._history), rtol=1e-13,
                               atol=0)  # fmt: skip
    assert np.asarray(eng._market.scores)[-1, 1] == 0.0 != np.asarray(eng._market.scores)[-1, 0]


def test_a_refresh_between_a_bars_checks_and_its_update_does_not_lose_it(tmp_path, monkeypatch):
    """bar() took the market before its lock: a refresh in between swapped in the new state and
    the bar went to the old one."""
    from bayes_mem.live import engine as engine_module

    sets = publish_all(tmp_path)
    eng = memory_engine(tmp_path, sets)
    real = engine_module.to_log_returns
    activate(tmp_path, 2)

    def converting(*a, **k):
        if eng.prior_version == 1:
            assert eng.refresh()  # the refresher thread gets the lock first
        return real(*a, **k)

    monkeypatch.setattr(engine_module, "to_log_returns", converting)
    eng.bar(eng.last_date + dt.timedelta(days=1), {"AAA": 0.03, "BBB": 0.01, "CCC": -0.02})
    assert eng.prior_version == 2
    np.testing.assert_allclose(eng.model.sigma2(), rolled(sets[2], eng._history), rtol=1e-13,
                               atol=0)  # fmt: skip


def test_a_refresh_that_failed_to_build_is_tried_again(tmp_path, monkeypatch):
    """The new set's state could not be built (the store was unavailable): the old set stays,
    and the next refresh() tries the new one again (it was taken as loaded, never retried)."""
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}")
    sp.fill(store, days=60, outcomes=5)
    sets = publish_all(tmp_path / "models")
    eng = sp.open_engine(tmp_path / "models", store, config=config())
    real = store.returns_panel

    def down(*a, **k):
        raise ConnectionError("database unavailable")

    monkeypatch.setattr(store, "returns_panel", down)
    activate(tmp_path / "models", 2)
    assert not eng.refresh()
    assert eng.prior_version == 1 and "unavailable" in eng.last_refresh_error
    monkeypatch.setattr(store, "returns_panel", real)
    assert eng.refresh() and eng.prior_version == 2 and eng.last_refresh_error is None
    assert eng.decider.families["momentum"] == sets[2].families["momentum"].point_prior()
    eng.close()
    store.close()
