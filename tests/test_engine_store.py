"""The engine opened on a store (SQLite and PostgreSQL, ``store_url``): what it restores equals
what is rebuilt by hand from the stored rows; outcomes are stored first and counted once; a
restart makes the same keyed decisions; the end-of-day metrics are stored (an upsert by date).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import defaultdict

import numpy as np
import pytest
import sqlalchemy as sa

from bayes_mem.live import ReturnModel
from bayes_mem.live.engine import OPEN_BOOK_DAYS, EngineConfig
from bayes_mem.store import (
    DecisionQueueFull,
    DecisionWriterClosed,
    DuplicateTradeError,
    Store,
    StoreRecorder,
)
from tests import engine_parts as parts
from tests import engine_store_parts as sp


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    sp.fill(s)
    yield s
    s.close()


@pytest.fixture(autouse=True)
def close_engines(monkeypatch, store):
    """Every engine a test opens is closed after it (its writer stopped before the database is
    dropped), whether the test passed or not."""
    opened = []
    real = sp.open_engine

    def open_engine(*a, **k):
        opened.append(real(*a, **k))
        return opened[-1]

    monkeypatch.setattr(sp, "open_engine", open_engine)
    yield
    for eng in opened:
        with contextlib.suppress(Exception):  # a test that broke the writer on purpose
            eng.close()


@pytest.fixture
def models(tmp_path):
    path = tmp_path / "models"
    sp.publish(path, 1)
    return path


def by_hand(store: Store) -> tuple[dict, dict]:
    """Per signal from the stored outcomes: (wins, trades), and per signal and side the payoff
    sizes |pnl| / notional of the outcomes with a notional."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    sizes: dict[tuple[str, bool], list[float]] = defaultdict(list)
    with store.engine.connect() as conn:
        t = sa.table("outcomes", sa.column("signal"), sa.column("won"), sa.column("pnl"),
                     sa.column("notional"))  # fmt: skip
        for sig, won, pnl, notional in conn.execute(sa.select(t.c.signal, t.c.won, t.c.pnl,
                                                              t.c.notional)):  # fmt: skip
            counts[sig][0] += bool(won)
            counts[sig][1] += 1
            if notional is not None:
                sizes[(sig, bool(won))].append(abs(pnl) / notional)
    return {s: tuple(c) for s, c in counts.items()}, sizes


# ---------------------------------------------------------------------------- restoring
def test_open_restores_the_deciders_payoff_model_and_raw_counts_from_the_outcomes(store, models):
    eng = sp.open_engine(models, store, config=EngineConfig(), shadow=EngineConfig.baseline())
    counts, sizes = by_hand(store)
    assert sum(t for _, t in counts.values()) == sp.OUTCOMES
    prior_set = eng.prior_set
    assert eng.prior_version == 1
    for sig in sorted(set(parts.links()) | set(sp.EXTRA)):
        wins, trades = counts.get(sig, (0, 0))
        assert eng._raw.get(sig, (0, 0)) == (wins, trades) == eng.shadow._raw.get(sig, (0, 0))
        m = eng.decider.metrics(sig)
        assert (m.wins, m.trades) == (wins, trades)
        # live: the prior set's family point prior; the baseline shadow: flat Beta(1, 1)
        prior = prior_set.families[sp.family_of(sig)].point_prior()
        post = eng.decider.posterior(sig)
        assert (post.a, post.b) == pytest.approx((prior.a + wins, prior.b + trades - wins),
                                                 rel=1e-12)  # fmt: skip
        post = eng.shadow.decider.posterior(sig)
        assert (post.a, post.b) == pytest.approx((1 + wins, 1 + trades - wins), rel=1e-12)
        assert eng.symbol_of(sig) == (sp.EXTRA[sig][1] if sig in sp.EXTRA else sig[:3])
    for e in (eng, eng.shadow):
        doc = {s["name"]: s for s in e.payoff.to_dict()["signals"]}
        fams = {f["name"]: f for f in e.payoff.to_dict()["families"]}
        fam_sums: dict[tuple[str, bool], list[float]] = defaultdict(list)
        for sig, row in doc.items():
            for won, side in ((True, "win"), (False, "loss")):
                x = np.array(sizes.get((sig, won), []))
                fam_sums[(row["family"], won)] += x.tolist()
                assert row["wins" if won else "losses"] == len(x)
                assert row[side] == pytest.approx([len(x), x.sum(), (x * x).sum()], rel=1e-12)
        for (fam, won), x in fam_sums.items():
            x = np.array(x)
            assert fams[fam]["win" if won else "loss"] == pytest.approx(
                [len(x), x.sum(), (x * x).sum()], rel=1e-12
            )
    assert eng.decider.to_json() != eng.shadow.decider.to_json()  # the priors differ
    eng.close()


def rolled_by_hand(store: Store, ps, after: dt.date | None) -> ReturnModel:
    """The prior set's variance state rolled through every stored return dated after ``after``,
    day by day (each day: the prior set's symbols that have a return that day)."""
    model = ReturnModel({s: p.draws for s, p in ps.symbols.items()},
                        {s: p.sigma2 for s, p in ps.symbols.items()})  # fmt: skip
    days: dict[dt.date, dict[str, float]] = defaultdict(dict)
    for sym, date, r in store.table("returns")[["symbol", "date", "log_return"]].itertuples(
        index=False
    ):
        date = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date)[:10])
        if sym in ps.symbols and (after is None or date > after):
            days[date][sym] = r
    for date in sorted(days):
        model.update(days[date], kind="log")
    return model


def test_open_rolls_the_variance_state_through_exactly_the_returns_after_data_through(
    store, models
):
    eng = sp.open_engine(models, store)
    ps = eng.prior_set
    assert ps.data_through == sp.day(sp.THROUGH).isoformat()
    want = rolled_by_hand(store, ps, sp.day(sp.THROUGH))
    np.testing.assert_allclose(eng.model.sigma2(), want.sigma2(), rtol=1e-13, atol=0)
    assert eng.model.symbols == parts.SYMBOLS  # DDD is stored, not modelled
    # only those: one day more or one day less is another state
    for other in (sp.THROUGH - 1, sp.THROUGH + 1):
        wrong = rolled_by_hand(store, ps, sp.day(other)).sigma2()
        assert np.abs(wrong / eng.model.sigma2() - 1).max() > 1e-6
    assert eng.last_date == sp.day(sp.DAYS - 1)
    with pytest.raises(ValueError, match="not after"):
        eng.bar(sp.day(sp.DAYS - 1), {"AAA": 0.0})
    # a bar goes to the store first, then the state: a reopened engine agrees
    eng.bar(sp.day(sp.DAYS), {"AAA": 0.012, "BBB": -0.004})
    again = sp.open_engine(models, store)
    np.testing.assert_allclose(again.model.sigma2(), eng.model.sigma2(), rtol=1e-13, atol=0)
    eng.close()
    again.close()


# ---------------------------------------------------------------------------- outcomes
def test_outcomes_are_stored_first_and_counted_once(store, models, store_url):
    eng = sp.open_engine(models, store)
    for k in range(3):
        eng.signal("AAA:mom", "AAA", key=f"k{k}")
    other = Store(store_url)  # another process stores k0 first
    other.append_outcome("k0", "AAA:mom", True, 5.0, notional=1000.0)
    before = sp.snapshot(eng, store)
    with pytest.raises(DuplicateTradeError, match="k0"):
        eng.settle("k0", won=False, pnl=-3.0)
    assert sp.snapshot(eng, store) == before  # memory unchanged: the store refused
    # the database is down: nothing counted, and the same settle later goes through, once
    real = store.append_outcome

    def down(*a, **k):
        raise sa.exc.OperationalError("INSERT", {}, ConnectionError("server gone"))

    store.append_outcome = down
    with pytest.raises(sa.exc.OperationalError):
        eng.settle("k1", won=True, pnl=2.0)
    assert sp.snapshot(eng, store) == before
    store.append_outcome = real
    eng.settle("k1", won=True, pnl=2.0)
    with pytest.raises(ValueError, match="already settled"):
        eng.settle("k1", won=True, pnl=2.0, signal="AAA:mom")
    # two threads settling the same trade: one stores it, the other is refused
    results = []

    def settle():
        try:
            eng.settle("k2", won=False, pnl=-1.0)
            results.append("ok")
        except (ValueError, sa.exc.SQLAlchemyError) as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=settle) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1, results
    ids = store.outcomes()["trade_id"].tolist()
    assert ids.count("k0") == ids.count("k1") == ids.count("k2") == 1
    assert eng.decider.metrics("AAA:mom").trades == by_hand(store)[0]["AAA:mom"][1] - 1  # k0
    reopened = sp.open_engine(models, store)  # counts k0 too: it is stored
    assert reopened.decider.metrics("AAA:mom").trades == by_hand(store)[0]["AAA:mom"][1]
    other.close()
    eng.close()
    reopened.close()


def test_a_settle_beyond_any_price_move_is_refused_before_the_store(store, models):
    eng = sp.open_engine(models, store)
    d = eng.signal("AAA:mom", "AAA", key="big")
    before = sp.snapshot(eng, store)
    with pytest.raises(ValueError, match="per unit notional"):
        eng.settle("big", won=True, pnl=2e6 * d.notional)
    assert sp.snapshot(eng, store) == before
    eng.close()


def test_an_absurd_stored_outcome_does_not_stop_the_engine_from_opening(store, models, caplog):
    """The batch ingest path stores any positive notional; an outcome whose |pnl| / notional is
    beyond the payoff model's MAX_SIZE counts for the win rate only (as an unknown notional)."""
    import pandas as pd

    store.ingest_outcomes(pd.DataFrame(
        [("absurd", "AAA:mom", True, 5e6, 1.0, "2024-03-01")],
        columns=["trade_id", "signal", "won", "pnl", "notional", "settled_at"],
    ))  # fmt: skip
    with caplog.at_level("WARNING", logger="bayes_mem.live.engine"):
        eng = sp.open_engine(models, store)
    assert any("absurd" in r.getMessage() for r in caplog.records)
    counts, sizes = by_hand(store)
    assert eng.decider.metrics("AAA:mom").trades == counts["AAA:mom"][1]
    wins = {s["name"]: s["wins"] for s in eng.payoff.to_dict()["signals"]}
    assert wins["AAA:mom"] == len(sizes[("AAA:mom", True)]) - 1


def test_a_decision_the_log_refuses_is_not_made(store, models):
    """A full decision queue (the database slower than the decisions for too long): the signal
    raises DecisionQueueFull and its position is in neither book (its live row may have been
    taken before its shadow row was refused: the log then shows a decision not made)."""
    eng = sp.open_engine(models, store)
    entered, release = threading.Event(), threading.Event()
    real = store.transaction

    def held():
        entered.set()
        assert release.wait(60)
        return real()

    eng.recorder.close()
    store.transaction = held
    eng.recorder = eng.shadow.recorder = StoreRecorder(
        store, max_queue=2, batch_size=1, flush_interval=0.0, put_timeout=0.0
    )
    eng.signal("AAA:mom", "AAA", key="a")  # live row in flight, shadow row queued
    assert entered.wait(30)
    book = eng.book()
    with pytest.raises(DecisionQueueFull):
        eng.signal("BBB:mom", "BBB", key="b")  # live row queued, shadow row refused
    assert eng.book() == book and set(eng.open_positions()) == {"a"}
    assert "b" not in eng.shadow._open
    release.set()
    store.transaction = real
    eng.close()
    assert set(store.decisions(config="baseline")["key"]) == {"a"}
    with pytest.raises(DecisionWriterClosed):  # a closed engine makes no decision
        eng.signal("BBB:mom", "BBB", key="b")
    assert eng.book() == book and "b" not in eng._open


# ---------------------------------------------------------------------------- end of day
def test_end_of_day_writes_every_metrics_table_and_the_same_day_again_is_an_upsert(store, models):
    eng = sp.open_engine(models, store, config=EngineConfig(rule=sp.AlwaysAct(), kelly=None))
    today = sp.day(sp.DAYS)
    eng.bar(today, {"AAA": 0.01, "BBB": 0.0, "CCC": -0.02})
    d = eng.signal("AAA:mom", "AAA", key="e1")
    d2 = eng.signal("BBB:rev", "BBB", "short", key="e2")
    assert d2.act
    eng.settle("e1", won=True, pnl=0.01 * max(d.notional, 1.0), notional=max(d.notional, 1.0))
    first = eng.end_of_day(today)
    tables = ("risk_metrics", "correlation_metrics", "regime_metrics", "portfolio_metrics",
              "signal_quality")  # fmt: skip
    rows = {t: store.table(t) for t in tables}
    assert len(rows["risk_metrics"]) == 3 and set(rows["risk_metrics"]["symbol"]) == set(
        parts.SYMBOLS
    )
    assert len(rows["correlation_metrics"]) == 1 and len(rows["portfolio_metrics"]) == 1
    assert len(rows["regime_metrics"]) == 3
    assert len(rows["signal_quality"]) == len(eng.decider.signals)
    port = rows["portfolio_metrics"].iloc[0]
    assert port["gross_exposure"] == pytest.approx(d2.notional if d2.act else 0.0)
    assert port["portfolio_es"] == pytest.approx(first["portfolio"]["portfolio_es"])
    # the same day again: every table keeps one row per key, with the later values
    eng.settle("e2", won=False, pnl=-4.0, notional=100.0)  # settled after the close
    eng.settle("named", won=False, pnl=-1.0, signal="CCC:mom")  # not the engine's: no day PnL
    second = eng.end_of_day(today)
    again = {t: store.table(t) for t in tables}
    for t in tables:
        assert len(again[t]) == len(rows[t]), t
    assert again["portfolio_metrics"].iloc[0]["gross_exposure"] == 0.0
    quality = again["signal_quality"].set_index("signal")
    assert quality.loc["CCC:mom", "trades"] == eng.decider.metrics("CCC:mom").trades
    # the day's PnL: one entry per closed day, the late trade added to it
    pnl = eng.daily_pnl()
    assert [d for d, _ in pnl["live"]] == [today]
    assert second["pnl"]["live"] == pytest.approx(first["pnl"]["live"] - 4.0)
    shadow_d2 = d2.shadow
    late = -0.04 * shadow_d2.notional if shadow_d2.act else 0.0
    assert second["pnl"]["baseline"] == pytest.approx(first["pnl"]["baseline"] + late)
    assert pnl["live"][0][1] == pytest.approx(second["pnl"]["live"])
    assert [d for d, _ in pnl["baseline"]] == [today]
    with pytest.raises(ValueError, match="before the last closed day"):
        eng.end_of_day(today - dt.timedelta(days=1))
    eng.close()


# ---------------------------------------------------------------------------- restart
def test_a_restart_makes_the_same_keyed_decisions(store, models, tmp_path):
    """An uninterrupted run and one closed and reopened twice (early on day 1 and mid-way
    through day 4: positions open, days closed, bars stored) make the same keyed decisions
    after each restart: act, win draw, prior version exactly, sizes to ``SIZE_RTOL`` (see
    tests/engine_store_parts.py); the restored books equal the uninterrupted run's."""
    config = EngineConfig()  # every module on
    evs = sp.events(seed=21)
    bars = [i for i, e in enumerate(evs) if e["kind"] == "bar"]
    cuts = [bars[1] + 3, bars[4] + 9]
    reference_store = Store(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    sp.fill(reference_store)
    reference = sp.open_engine(models, reference_store, config=config)
    want, got = {}, {}
    books = []
    eng = sp.open_engine(models, store, config=config)
    for start, stop in zip([0, *cuts], [*cuts, len(evs)], strict=True):
        want |= sp.play(reference, evs[start:stop])
        got |= sp.play(eng, evs[start:stop])
        if stop < len(evs):  # restart: the books come back from the decision log
            books.append((eng.open_positions(), eng.book(), eng.shadow._open, eng.shadow.book()))
            assert sorted(books[-1][0]) == sorted(reference.open_positions())
            eng.close()
            eng = sp.open_engine(models, store, config=config)
            assert eng.open_positions() == books[-1][0]
            assert eng.book() == pytest.approx(books[-1][1], rel=1e-12)
            shadow_open = {k: vars(p) for k, p in books[-1][2].items() if p.act}
            assert {k: vars(p) for k, p in eng.shadow._open.items()} == shadow_open
            assert eng.shadow.book() == pytest.approx(books[-1][3], rel=1e-12)
    assert all(book[0] for book in books)  # positions were open at each restart
    bad, worst = sp.compare_decisions(want, got)
    assert not bad, bad[:3]
    print(f"{len(want)} decisions; largest relative size difference after a restart {worst:.1e}")
    reference_store.close()


def test_open_restores_the_open_book_from_the_decision_log(store, models):
    """Acted decisions of the last ``open_book_days`` without a stored outcome are open again
    after a restart (live and shadow), settled by their id alone; settled, declined, older and
    uncovered-symbol decisions are not."""
    cfg = EngineConfig(rule=sp.AlwaysAct(), kelly=None)
    eng = sp.open_engine(models, store, config=cfg)
    eng.signal("AAA:mom", "AAA", key="a")
    eng.signal("BBB:mom", "BBB", "short", 3, key="b")
    unkeyed = eng.signal("CCC:rev", "CCC", "short").id
    eng.signal("CCC:mom", "CCC", key="settled")
    eng.settle("settled", won=True, pnl=1.0)
    eng.settle("b-elsewhere", won=True, pnl=1.0, signal="BBB:rev")
    live, shadow = eng.open_positions(), {k: vars(p) for k, p in eng.shadow._open.items() if p.act}
    assert set(live) == {"a", "b", unkeyed} and shadow
    book, shadow_book = eng.book(), eng.shadow.book()
    eng.close()
    row = {"config": "live", "signal": "AAA:rev", "symbol": "AAA", "side": "long", "horizon": 1,
           "act": True, "notional": 10.0, "p_win": 0.5}  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    store.append_decisions([
        {**row, "key": "old", "decided_at": now - dt.timedelta(days=OPEN_BOOK_DAYS + 1)},
        {**row, "key": "elsewhere", "symbol": "DDD", "signal": "DDD:mom", "decided_at": now},
        {**row, "key": "declined", "act": False, "notional": 0.0, "decided_at": now},
    ])  # fmt: skip
    again = sp.open_engine(models, store, config=cfg)
    assert again.open_positions() == live
    assert {k: vars(p) for k, p in again.shadow._open.items()} == shadow
    assert again.book() == pytest.approx(book) and again.shadow.book() == pytest.approx(shadow_book)
    d = again.signal("AAA:rev", "AAA", key="next")  # the restored book is in the limits
    assert d.detail["portfolio_es"]["portfolio_es"] > 0
    again.settle("a", won=False, pnl=-5.0)  # by its id alone, as before the restart
    again.settle(unkeyed, won=True, pnl=2.0)
    assert "a" not in again.open_positions() and "a" not in again.shadow._open
    assert again.decider.metrics("AAA:mom").trades == by_hand(store)[0]["AAA:mom"][1]
    with pytest.raises(ValueError, match="already settled"):  # and once
        again.settle("a", won=False, pnl=-5.0, signal="AAA:mom")
    assert again.daily_pnl() == {"live": [], "baseline": []}
    again.end_of_day(sp.day(sp.DAYS))
    assert again.daily_pnl()["live"][0][1] == pytest.approx(-3.0)
    again.flush()
    third = sp.open_engine(models, store, config=cfg, open_book_days=0)  # nothing that old
    assert third.open_positions() == {}
    assert set(sp.open_engine(models, store, config=cfg).open_positions()) == {"b", "next"}


def test_a_cancelled_decision_stays_cancelled_after_a_restart(store, models):
    """cancel() is logged (a row of the id with act false, per configuration), so open() does
    not restore the cancelled position; before, the decision log only had the acted row and the
    position came back. A restored position cancelled after the restart stays cancelled too."""
    cfg = EngineConfig(rule=sp.AlwaysAct(), kelly=None)
    eng = sp.open_engine(models, store, config=cfg)
    eng.signal("AAA:mom", "AAA", key="kept")
    eng.signal("BBB:mom", "BBB", "short", 3, key="dropped")
    unkeyed = eng.signal("CCC:rev", "CCC").id
    eng.cancel("dropped")
    eng.cancel(unkeyed)
    eng.cancel("never-made")  # unknown: a no-op, nothing logged
    assert set(eng.open_positions()) == {"kept"} and set(eng.shadow._open) == {"kept"}
    book, shadow_book = eng.book(), eng.shadow.book()
    eng.close()
    rows = store.decisions(config="live")
    dropped = rows[rows["key"] == "dropped"]
    assert list(dropped["act"]) == [True, False] and float(dropped["notional"].iloc[-1]) == 0.0
    again = sp.open_engine(models, store, config=cfg)
    assert set(again.open_positions()) == {"kept"} and set(again.shadow._open) == {"kept"}
    assert again.book() == pytest.approx(book) and again.shadow.book() == pytest.approx(shadow_book)
    again.cancel("kept")  # restored, then cancelled: logged from what the log held
    again.close()
    third = sp.open_engine(models, store, config=cfg)
    assert third.open_positions() == {} and third.book() == {} and third.shadow._open == {}
    third.close()
