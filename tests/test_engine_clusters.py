"""Correlated outcomes on the trader's path (issue 16): the family's intra-cluster correlation
``rho`` published in the prior set reaches the engine's decider, a settled trade counts with its
effective weight in its cluster (the signal and the UTC day the trade opened, the nightly fit's
cluster), and a restart rebuilds the same weights from the store (SQLite and PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.decider import trade_day
from bayes_mem.live.engine import EngineConfig, TradingEngine
from bayes_mem.live.prior_set import FamilyPosterior, activate, write_prior_set
from bayes_mem.offline.recalibrate import winrate_trades
from bayes_mem.store import PersistentDecider, Store
from tests import engine_parts as parts
from tests import engine_store_parts as sp

RHO = 0.5


def with_rho(ps, rho: float = RHO):
    """``ps`` with every family's rho draws set around ``rho`` (mean exactly ``rho``)."""
    fams = {}
    for name, f in ps.families.items():
        r = np.full(f.mean.size, rho)
        r[::2] += 0.05
        r[1::2] -= 0.05
        fams[name] = FamilyPosterior(f.mean, f.kappa, r)
    return dataclasses.replace(ps, families=fams)


def effective(dec: Decider, signal: str) -> float:
    m = dec.metrics(signal)
    return m.effective_wins + m.effective_losses


def learned(dec: Decider) -> dict:
    """What the decider learned (its snapshot without its own generator's state)."""
    doc = json.loads(dec.to_json())
    doc.pop("rng", None)
    return doc


def engine(ps, **kw) -> TradingEngine:
    """An engine from parts, the prior set ``ps`` swapped in as a refresh would."""
    kw.setdefault("config", EngineConfig(rule=sp.AlwaysAct()))
    eng = TradingEngine(parts.decider(), parts.model(), portfolio_value=sp.PV,
                        signal_symbols=parts.links(), seed=3, **kw)  # fmt: skip
    eng.use_prior_set(ps)
    return eng


def test_trade_day_is_the_nightly_fits_cluster_key():
    when = [
        dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),  # 3 Mar UTC
        dt.datetime(2026, 3, 2, 23, 30),  # naive: UTC
        pd.Timestamp("2026-03-02T01:00:00+02:00"),  # 1 Mar UTC
        dt.date(2026, 3, 2),
        "2026-03-02T12:00:00Z",
    ]
    live = [trade_day(w) for w in when]
    assert live == ["2026-03-03", "2026-03-02", "2026-03-01", "2026-03-02", "2026-03-02"]
    frame = pd.DataFrame({"signal": "s", "won": True,
                          "opened_at": [pd.Timestamp(w) for w in when[:3]] + [None, None],
                          "settled_at": [pd.Timestamp("2026-03-09", tz="UTC")] * 3
                          + [pd.Timestamp(when[3]), pd.Timestamp(when[4])]})  # fmt: skip
    assert winrate_trades(frame)["cluster"].tolist() == live
    for bad in (None, float("nan"), "not a time", 3):
        with pytest.raises((TypeError, ValueError), match=r"opened|time|date"):
            trade_day(bad)


def test_the_engine_applies_the_published_rho():
    eng = engine(with_rho(parts.prior_set(1)))
    assert eng.decider.family_rho("momentum") == pytest.approx(RHO)
    # the baseline does not use the nightly family model: flat priors, independent outcomes
    base = engine(with_rho(parts.prior_set(1)), config=EngineConfig.baseline())
    assert base.decider.family_rho("momentum") == 0.0
    # a refresh to a set without rho puts the independent update back
    eng.use_prior_set(parts.prior_set(2))
    assert eng.decider.family_rho("momentum") == 0.0


def test_trades_of_one_signal_opened_the_same_day_count_with_their_effective_weight():
    eng = engine(with_rho(parts.prior_set(1)))
    ids = [eng.signal("AAA:mom", "AAA", key=f"k{i}").id for i in range(3)]
    for i, tid in enumerate(ids):
        eng.settle(tid, won=i != 1, pnl=100.0 if i != 1 else -100.0)
    # 3 trades of one cluster: 3 / (1 + 2 rho) = 1.5 trades' worth, not 3
    assert effective(eng.decider, "AAA:mom") == pytest.approx(3 / (1 + 2 * RHO))
    assert eng.decider.metrics("AAA:mom").trades == 3  # raw counts stay raw
    # a trade opened on another day (given by the caller) is a new cluster: counts fully
    other = eng.signal("AAA:mom", "AAA", key="k-other").id
    eng.settle(other, won=True, pnl=5.0, opened_at=dt.datetime(2020, 1, 6, tzinfo=dt.UTC))
    assert effective(eng.decider, "AAA:mom") == pytest.approx(1.5 + 1.0)
    # another signal's trades of the same day are their own clusters
    eng.settle(eng.signal("BBB:mom", "BBB", key="b0").id, won=True, pnl=1.0)
    assert effective(eng.decider, "BBB:mom") == pytest.approx(1.0)


def test_a_trade_the_engine_did_not_decide_clusters_by_its_opening_or_settlement_day():
    eng = engine(with_rho(parts.prior_set(1)))
    day = dt.datetime(2025, 5, 6, 15, 0, tzinfo=dt.UTC)
    eng.settle("x1", won=True, pnl=1.0, notional=100.0, signal="AAA:rev", opened_at=day)
    eng.settle("x2", won=False, pnl=-1.0, notional=100.0, signal="AAA:rev",
               settled_at=day + dt.timedelta(hours=2))  # fmt: skip
    assert effective(eng.decider, "AAA:rev") == pytest.approx(2 / (1 + RHO))


def test_bad_opened_at_is_refused_and_changes_nothing():
    eng = engine(with_rho(parts.prior_set(1)))
    d = eng.signal("AAA:mom", "AAA", key="k0")
    before = sp.snapshot(eng)
    for bad, match in (("yesterday", "opened_at"), (12, "opened_at"),
                       (dt.datetime(2099, 1, 1, tzinfo=dt.UTC), "opened_at")):  # fmt: skip
        with pytest.raises((TypeError, ValueError), match=match):
            eng.settle(d.id, won=True, pnl=1.0, opened_at=bad)
        assert sp.snapshot(eng) == before


# ---------------------------------------------------------------------------- restart
@pytest.fixture
def store(store_url):
    s = Store(store_url)
    sp.fill(s)
    yield s
    s.close()


def publish_with_rho(models, version: int = 1):
    ps = with_rho(parts.prior_set(version, data_through=sp.day(sp.THROUGH).isoformat()))
    write_prior_set(ps, models)
    activate(models, version)
    return ps


def test_a_restart_rebuilds_the_same_effective_weights(store, tmp_path):
    models = tmp_path / "models"
    publish_with_rho(models)
    eng = sp.open_engine(models, store)
    try:
        assert eng.decider.family_rho("momentum") == pytest.approx(RHO)
        for i in range(4):
            d = eng.signal("AAA:mom", "AAA", key=f"r{i}")
            eng.settle(d.id, won=i % 2 == 0, pnl=50.0 if i % 2 == 0 else -50.0)
        before = effective(eng.decider, "BBB:rev")
        eng.settle("y1", won=True, pnl=3.0, notional=90.0, signal="BBB:rev",
                   opened_at=dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC))  # fmt: skip
        eng.settle("y2", won=True, pnl=3.0, notional=90.0, signal="BBB:rev",
                   opened_at=dt.datetime(2024, 3, 1, 16, tzinfo=dt.UTC))  # fmt: skip
        assert effective(eng.decider, "BBB:rev") - before == pytest.approx(2 / (1 + RHO))
        eng.flush()
        live = (learned(eng.decider), learned(eng.shadow.decider))
        stored = store.outcomes().set_index("trade_id")
        assert not pd.isna(stored.loc["r0", "opened_at"])  # the decision's time, stored
    finally:
        eng.close()
    again = sp.open_engine(models, store)
    try:
        assert (learned(again.decider), learned(again.shadow.decider)) == live
    finally:
        again.close()


def test_the_persistent_decider_clusters_and_restores_alike(store):
    fams = {"momentum": BetaPrior(12.0, 10.0), "reversion": BetaPrior(10.0, 10.0)}
    rho = {"momentum": RHO, "reversion": 0.2}
    pdec = PersistentDecider.restore(store, fams, seed=1, rho=rho)
    assert pdec.family_rho("momentum") == RHO
    opened = dt.datetime(2024, 2, 1, 14, tzinfo=dt.UTC)
    before = effective(pdec.decider, "AAA:mom")
    for i in range(3):
        pdec.record("AAA:mom", i != 2, 1.0 if i != 2 else -1.0, f"p{i}",
                    opened_at=opened + dt.timedelta(hours=i))  # fmt: skip
    assert effective(pdec.decider, "AAA:mom") - before == pytest.approx(3 / (1 + 2 * RHO))
    again = PersistentDecider.restore(store, fams, seed=1, rho=rho)
    assert learned(again.decider) == learned(pdec.decider)
    for bad in ({"momentum": 1.0}, {"momentum": -0.1}, {"nope": 0.3}):
        with pytest.raises(ValueError, match=r"rho|nope"):
            PersistentDecider.restore(store, fams, seed=1, rho=bad)


def test_full_bayes_is_a_configuration_of_the_engine():
    ps = with_rho(parts.prior_set(1))
    full = engine(ps, config=EngineConfig(rule=sp.AlwaysAct(), full_bayes=True))
    point = engine(ps)
    fam = full.decider._get_family("momentum")
    a, b = ps.families["momentum"].betas()
    assert np.array_equal(fam.draws[0], a) and np.array_equal(fam.draws[1], b)
    assert point.decider._get_family("momentum").draws is None
    # the draws change the win-rate draws, not the published point prior
    assert full.decider.posterior("AAA:mom") == point.decider.posterior("AAA:mom")
    assert (full.signal("AAA:mom", "AAA", key="z").p_win
            != point.signal("AAA:mom", "AAA", key="z").p_win)  # fmt: skip
    # ablating the pooled priors switches full Bayes off too; a non-bool is refused
    assert EngineConfig(full_bayes=True).without("pooled").full_bayes is False
    with pytest.raises(TypeError, match="full_bayes"):
        EngineConfig(full_bayes="yes")
