"""Schema version 2, the trading engine's records: outcome notionals, signal -> symbol links, the
decision log, end-of-day metrics logged as upserts, returns after a date; the in-place upgrade
of a version-1 database. On SQLite and on PostgreSQL (``store_url``, see conftest.py)."""

import datetime as dt
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.recording import MemoryRecorder, Recorder, ReturnsPanel, check_decision
from bayes_mem.store import IngestError, PersistentDecider, Store, StoreRecorder
from bayes_mem.store import schema as schema_mod

DAY = dt.date(2026, 1, 2)
LONG = "x" * 201


@pytest.fixture
def store(store_url):
    s = Store(store_url)
    s.register_signals({"mom_a": "momentum", "mom_b": "momentum", "mr_a": "mean_reversion"})
    yield s
    s.close()


def count(store: Store, table: str) -> int:
    return len(store.table(table))


def decision(**overrides):
    row = {
        "decided_at": dt.datetime(2026, 1, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
        "key": "mom_a@2026-01-02T14:30", "signal": "mom_a", "symbol": "SPY", "side": "long",
        "horizon": 5, "act": True, "notional": 10_000.0, "quantity": 21.0, "p_win": 0.61,
        "binding": "cvar", "prior_version": 3,
        "detail": {"kelly": 0.12, "regime_factor": 0.9, "explain": "p 0.61 > hurdle 0.55"},
    }  # fmt: skip
    row.update(overrides)
    return row


# ---------------------------------------------------------------- migration
def columns(engine: sa.Engine) -> dict[str, dict[str, tuple[bool, bool]]]:
    """table -> column -> (nullable, primary key) as the database reports them."""
    insp = sa.inspect(engine)
    out = {}
    for table in insp.get_table_names():
        pk = set(insp.get_pk_constraint(table)["constrained_columns"])
        out[table] = {c["name"]: (bool(c["nullable"]), c["name"] in pk)
                      for c in insp.get_columns(table)}  # fmt: skip
    return out


def declared() -> dict[str, dict[str, tuple[bool, bool]]]:
    return {
        t.name: {c.name: (bool(c.nullable), c.primary_key) for c in t.columns}
        for t in schema_mod.metadata.sorted_tables
    }


def test_version_1_database_upgrades_in_place(store_url, monkeypatch, tmp_path):
    with monkeypatch.context() as m:  # this bayes_mem as it was at schema version 1
        m.setattr(schema_mod, "SCHEMA_VERSION", 1)
        old = Store(store_url)
        assert old.schema_version == 1
        assert "decisions" not in sa.inspect(old.engine).get_table_names()
        assert "notional" not in {c["name"] for c in sa.inspect(old.engine).get_columns("outcomes")}
        old.register_signals({"mom_a": "momentum"})
        v1_outcomes = schema_mod._v1_metadata().tables["outcomes"]
        when = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
        with old.transaction() as conn:
            row = {"trade_id": "old1", "signal": "mom_a", "won": True, "pnl": 2.0,
                   "settled_at": when, "recorded_at": when}  # fmt: skip
            conn.execute(v1_outcomes.insert(), [row])
        old.close()

    new = Store(store_url)  # the upgrade
    assert new.schema_version == schema_mod.SCHEMA_VERSION == 2
    with new.engine.connect() as conn:
        assert schema_mod.current_version(conn) == 2
    out = new.outcomes()
    assert list(out["trade_id"]) == ["old1"] and out["notional"].isna().all()
    new.append_outcome("new1", "mom_a", False, -1.0, notional=250.0)
    assert new.outcomes()["notional"].iloc[1] == 250.0
    new.link_signals({"mom_a": "SPY"})
    new.append_decisions([decision()])
    new.log_regime(DAY, {"SPY": 0.2})
    new.log_portfolio(DAY, gross_exposure=1e5, portfolio_es=2e3, portfolio_var=1.5e3, level=0.975)
    # the database itself refuses a non-positive notional on the upgraded table
    with pytest.raises(sa.exc.IntegrityError), new.transaction() as conn:
        conn.execute(schema_mod.outcomes.insert(), [{
            "trade_id": "raw", "signal": "mom_a", "won": True, "pnl": 1.0, "notional": -5.0,
            "settled_at": when, "recorded_at": when}])  # fmt: skip
    upgraded = columns(new.engine)
    new.close()

    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")  # created at version 2 directly
    want = declared()
    assert upgraded == want
    assert columns(fresh.engine) == want
    fresh.close()


# ---------------------------------------------------------------- outcomes' notional
def test_outcome_notional_is_stored_ingested_and_checked(store):
    store.append_outcome("t1", "mom_a", True, 2.0, notional=1_000.0)
    store.append_outcome("t2", "mom_a", False, -1.0)
    got = store.outcomes().set_index("trade_id")["notional"]
    assert got["t1"] == 1_000.0 and math.isnan(got["t2"])
    nan, inf = float("nan"), float("inf")
    refused = [(0.0, ValueError), (-5.0, ValueError), (nan, ValueError), (inf, ValueError),
               ("100", TypeError), (True, TypeError)]  # fmt: skip
    for bad, exc in refused:
        with pytest.raises(exc, match="notional"):
            store.append_outcome("t9", "mom_a", True, 1.0, notional=bad)
    assert count(store, "outcomes") == 2

    frame = pd.DataFrame({
        "trade_id": ["b1", "b2", "b3"], "signal": ["mom_a", "mom_b", "mr_a"],
        "won": [True, False, True], "pnl": [1.0, -2.0, 0.5], "settled_at": ["2026-01-05"] * 3,
        "notional": [500.0, float("nan"), 125.0]})  # fmt: skip
    assert store.ingest_outcomes(frame) == 3
    got = store.outcomes().set_index("trade_id")["notional"]
    assert got["b1"] == 500.0 and math.isnan(got["b2"]) and got["b3"] == 125.0
    bad = frame.assign(trade_id=["c1", "c2", "c3"], notional=["10", "-1", "abc"]).astype(str)
    bad.loc[:, "won"] = ["true", "false", "true"]
    with pytest.raises(IngestError) as info:
        store.ingest_outcomes(bad)
    assert [p.line for p in info.value.problems] == ["row 1", "row 2"]
    assert "notional" in str(info.value) and "abc" in str(info.value)
    assert count(store, "outcomes") == 5


def test_persistent_decider_passes_the_notional_through(store):
    live = PersistentDecider(Decider({"momentum": BetaPrior(2, 3)}, rng=0), store)
    live.register("mom_x", "momentum")
    live.record("mom_x", True, 3.0, trade_id="n1", notional=2_000.0)
    before = live.to_json()
    with pytest.raises(ValueError, match="notional"):
        live.record("mom_x", True, 3.0, trade_id="n2", notional=-1.0)
    assert live.to_json() == before and not store.has_trade("n2")
    assert store.outcomes().set_index("trade_id").loc["n1", "notional"] == 2_000.0


# ---------------------------------------------------------------- signal -> symbol
def test_signal_symbol_links(store):
    assert store.link_signals({"mom_a": "SPY", "mr_a": "QQQ"}) == 2
    assert store.link_signals({"mom_a": "SPY"}) == 0  # the same link again: a no-op
    with pytest.raises(ValueError, match="'mom_a' is linked to 'SPY', not 'IWM'"):
        store.link_signals({"mom_b": "QQQ", "mom_a": "IWM"})
    with pytest.raises(ValueError, match=r"unknown signal.*ghost"):
        store.link_signals({"mom_b": "QQQ", "ghost": "QQQ"})
    for bad, exc in [({"mom_b": "A\x00B"}, ValueError), ({"mom_b": LONG}, ValueError),
                     ({"mom_b": 5}, TypeError), ({"mom_b": " "}, ValueError),
                     ([("mom_b", "QQQ")], TypeError)]:  # fmt: skip
        with pytest.raises(exc):
            store.link_signals(bad)
    assert store.signal_symbols() == {"mom_a": "SPY", "mr_a": "QQQ"}  # nothing else written
    assert store.link_signals({"mom_b": "QQQ"}) == 1  # several signals may trade one symbol
    assert store.signal_symbols()["mom_b"] == "QQQ"


# ---------------------------------------------------------------- metrics: upserts
class FakeForecast:
    """A RiskForecast's surface, with chosen numbers."""

    def __init__(self, symbols, var, es, vol, band, level=0.975):
        self.symbols, self.level = tuple(symbols), level
        self.var_log, self.es_log, self.volatility = map(np.asarray, (var, es, vol))
        self._band = np.asarray(band, dtype=float)

    def es_band(self, prob):
        assert prob == 0.9
        return self._band


def metric(signal, mean, sharpe=0.5):
    return SimpleNamespace(signal=signal, trades=10, posterior_mean=mean, credible_low=mean - 0.1,
                           credible_high=mean + 0.1, p_above_break_even=0.7, total_pnl=12.5,
                           sharpe=sharpe)  # fmt: skip


def rows(store: Store, table: str, by: list[str]) -> list[dict]:
    frame = store.table(table).sort_values(by).reset_index(drop=True)
    return frame.to_dict("records")


def test_logging_a_key_twice_keeps_the_later_values(store):
    """The bug: logging a date twice raised the driver's IntegrityError (sqlite3 or psycopg)."""
    other = dt.date(2026, 1, 5)
    store.log_risk(DAY, FakeForecast(["SPY", "QQQ"], [0.02, 0.03], [0.03, 0.04], [0.01, 0.015],
                                     [[0.025, 0.035], [0.035, 0.045]]))  # fmt: skip
    store.log_risk(other, FakeForecast(["SPY"], [0.05], [0.06], [0.02], [[0.05, 0.07]]))
    store.log_risk(DAY, FakeForecast(["SPY"], [0.021], [0.031], [0.011], [[np.nan, 0.04]]))
    got = {(r["symbol"], str(r["date"])): r for r in rows(store, "risk_metrics", ["symbol"])}
    assert len(got) == 3
    spy = got[("SPY", "2026-01-02")]
    assert (spy["var_log"], spy["es_log"], spy["volatility"]) == (0.021, 0.031, 0.011)
    assert spy["es_low"] is None or math.isnan(spy["es_low"])  # a NaN band bound: NULL
    assert got[("QQQ", "2026-01-02")]["var_log"] == 0.03  # not in the second call: kept
    assert got[("SPY", "2026-01-05")]["var_log"] == 0.05

    store.log_correlation(DAY, average_correlation=0.3, concentration_score=0.65,
                          effective_bets=3.2, breakdown_p=0.4, breakdown_score=0.6)  # fmt: skip
    store.log_correlation(DAY, average_correlation=0.5, concentration_score=0.7,
                          effective_bets=2.0)  # fmt: skip
    (row,) = rows(store, "correlation_metrics", ["date"])
    assert (row["average_correlation"], row["effective_bets"]) == (0.5, 2.0)
    assert row["breakdown_p"] is None or math.isnan(row["breakdown_p"])

    as_of = dt.datetime(2026, 1, 2, 22, 0, tzinfo=dt.UTC)
    store.log_signal_quality(as_of, [metric("mom_a", 0.55), metric("mr_a", 0.45)])
    same_instant = as_of.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    store.log_signal_quality(same_instant, [metric("mom_a", 0.6, sharpe=float("nan"))])
    got = {r["signal"]: r for r in rows(store, "signal_quality", ["signal"])}
    assert len(got) == 2 and got["mom_a"]["posterior_mean"] == 0.6
    assert got["mom_a"]["sharpe"] is None or math.isnan(got["mom_a"]["sharpe"])
    assert got["mr_a"]["posterior_mean"] == 0.45

    store.log_regime(DAY, {"SPY": 0.1, "QQQ": 0.2})
    store.log_regime(DAY, {"SPY": 0.9})
    store.log_regime("2026-01-05", {"SPY": 0.3})
    got = {(r["symbol"], str(r["date"])): r["p_change"] for r in rows(store, "regime_metrics",
                                                                        ["symbol"])}  # fmt: skip
    assert got == {("SPY", "2026-01-02"): 0.9, ("QQQ", "2026-01-02"): 0.2,
                   ("SPY", "2026-01-05"): 0.3}  # fmt: skip

    store.log_portfolio(DAY, gross_exposure=1e5, portfolio_es=2e3, portfolio_var=1e3, level=0.975)
    store.log_portfolio(DAY, gross_exposure=2e5, portfolio_es=5e3, portfolio_var=3e3, level=0.99)
    (row,) = rows(store, "portfolio_metrics", ["date"])
    assert (row["gross_exposure"], row["portfolio_es"], row["level"]) == (2e5, 5e3, 0.99)


def bad_metric_calls():
    nan, band = float("nan"), [[0.025, 0.035]]
    ok = {"gross_exposure": 1e5, "portfolio_es": 2e3, "portfolio_var": 1e3, "level": 0.975}
    corr = {"average_correlation": 0.3, "concentration_score": 0.6, "effective_bets": 3.0}
    two = FakeForecast(["SPY", "QQQ"], [0.02, nan], [0.03, 0.04], [0.01, 0.01], band * 2)
    inf_es = FakeForecast(["SPY"], [0.02], [np.inf], [0.01], band)
    text_vol = FakeForecast(["SPY"], [0.02], [0.03], ["x"], band)
    good = FakeForecast(["SPY"], [0.02], [0.03], [0.01], band)
    noon = dt.datetime(2026, 1, 2, 13, 0)
    return [
        ("nan var", lambda s: s.log_risk(DAY, two), ValueError, "var_log of 'QQQ'"),
        ("inf es", lambda s: s.log_risk(DAY, inf_es), ValueError, "es_log"),
        ("text vol", lambda s: s.log_risk(DAY, text_vol), TypeError, "volatility"),
        ("not a forecast", lambda s: s.log_risk(DAY, {"SPY": 0.02}), TypeError, "RiskForecast"),
        ("date with a time", lambda s: s.log_risk(noon, good), ValueError, "time of day"),
        ("number as date", lambda s: s.log_regime(20260102, {"SPY": 0.1}), TypeError, "date"),
        ("nan corr", lambda s: s.log_correlation(DAY, **{**corr, "effective_bets": nan}),
         ValueError, "effective_bets"),
        ("unknown corr", lambda s: s.log_correlation(DAY, **corr, breakdown=0.1), TypeError,
         "breakdown"),
        ("str corr", lambda s: s.log_correlation(DAY, **{**corr, "average_correlation": "0.3"}),
         TypeError, "average_correlation"),
        ("nan quality", lambda s: s.log_signal_quality(
            DAY, [metric("mom_a", 0.5), metric("mr_a", nan)]), ValueError,
         "posterior_mean of 'mr_a'"),
        ("twice quality", lambda s: s.log_signal_quality(
            DAY, [metric("mom_a", 0.5), metric("mom_a", 0.6)]), ValueError, "repeat"),
        ("nan regime", lambda s: s.log_regime(DAY, {"SPY": 0.1, "QQQ": nan}), ValueError,
         "p_change of 'QQQ'"),
        ("regime > 1", lambda s: s.log_regime(DAY, {"SPY": 1.5}), ValueError, r"\[0, 1\]"),
        ("NUL symbol", lambda s: s.log_regime(DAY, {"S\x00": 0.1}), ValueError, "NUL"),
        ("long symbol", lambda s: s.log_regime(DAY, {LONG: 0.1}), ValueError, "200"),
        ("nan es", lambda s: s.log_portfolio(DAY, **{**ok, "portfolio_es": nan}), ValueError,
         "portfolio_es"),
        ("bool var", lambda s: s.log_portfolio(DAY, **{**ok, "portfolio_var": True}), TypeError,
         "portfolio_var"),
        ("negative gross", lambda s: s.log_portfolio(DAY, **{**ok, "gross_exposure": -1.0}),
         ValueError, "gross_exposure"),
        ("level 1", lambda s: s.log_portfolio(DAY, **{**ok, "level": 1.0}), ValueError, "level"),
    ]  # fmt: skip


@pytest.mark.parametrize("name, call, exc, match", bad_metric_calls(), ids=lambda v: v
                         if isinstance(v, str) and " " in v else "")  # fmt: skip
def test_bad_metric_values_are_refused_naming_them_and_nothing_is_written(
    store, name, call, exc, match
):
    tables = ("risk_metrics", "correlation_metrics", "signal_quality", "regime_metrics",
              "portfolio_metrics")  # fmt: skip
    with pytest.raises(exc, match=match):
        call(store)
    assert all(count(store, t) == 0 for t in tables)


# ---------------------------------------------------------------- decisions
def test_decisions_round_trip_and_filter(store):
    paris = dt.timezone(dt.timedelta(hours=1))
    rows_in = [
        decision(),
        decision(config="shadow", key=7, act=False, notional=0.0, quantity=None, binding=None,
                 prior_version=None, detail=None),
        decision(decided_at=dt.datetime(2026, 1, 3, 9, 0, tzinfo=paris), side="short",
                 detail={"draws": np.array([0.5, np.nan]), "n": np.int64(4000),
                         "when": dt.date(2026, 1, 3), "flag": np.bool_(True)}),
    ]  # fmt: skip
    assert store.append_decisions(rows_in) == 3
    got = store.decisions()
    assert list(got["id"]) == sorted(got["id"]) and len(got) == 3
    assert list(got["config"]) == ["live", "shadow", "live"]
    assert str(got["decided_at"].dt.tz) == "UTC"
    assert got["decided_at"].iloc[2] == pd.Timestamp("2026-01-03 08:00", tz="UTC")
    assert got["key"].iloc[1] == "7" and got["act"].tolist() == [True, False, True]
    assert pd.isna(got["binding"].iloc[1]) and pd.isna(got["prior_version"].iloc[1])
    assert got["prior_version"].iloc[0] == 3 and math.isnan(got["quantity"].iloc[1])
    assert json.loads(got["detail"].iloc[0])["explain"] == "p 0.61 > hurdle 0.55"
    assert json.loads(got["detail"].iloc[1]) == {}
    assert json.loads(got["detail"].iloc[2]) == {"draws": [0.5, None], "n": 4000,
                                                 "when": "2026-01-03", "flag": True}  # fmt: skip
    assert list(store.decisions(config="shadow")["key"]) == ["7"]
    since = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
    assert list(store.decisions(since=since)["side"]) == ["short"]
    assert len(store.decisions(since="2026-01-04")) == 0
    assert list(store.decisions(since=since, config="shadow").columns) == list(got.columns)

    before = count(store, "decisions")
    with pytest.raises(ValueError, match="decision row 1: side"):
        store.append_decisions([decision(), decision(side="buy")])
    assert count(store, "decisions") == before  # refused whole


BAD_DECISIONS = [
    ({"decided_at": dt.datetime(2026, 1, 2, 14, 30)}, ValueError, "timezone-aware"),
    ({"decided_at": "2026-01-02T14:30Z"}, TypeError, "decided_at"),
    ({"decided_at": dt.datetime(1000, 1, 1, tzinfo=dt.UTC)}, ValueError, "years"),
    ({"config": ""}, ValueError, "config"),
    ({"key": True}, TypeError, "key"),
    ({"key": 2.5}, TypeError, "key"),
    ({"key": 10**300}, ValueError, "200"),
    ({"signal": None}, TypeError, "signal"),
    ({"symbol": "S\x00Y"}, ValueError, "NUL"),
    ({"symbol": LONG}, ValueError, "200"),
    ({"side": "buy"}, ValueError, "side"),
    ({"horizon": 0}, ValueError, "horizon"),
    ({"horizon": 2.0}, TypeError, "horizon"),
    ({"horizon": 2**31}, ValueError, "horizon"),
    ({"act": 1}, TypeError, "act"),
    ({"notional": -1.0}, ValueError, "notional"),
    ({"notional": float("nan")}, ValueError, "notional"),
    ({"notional": "1e4"}, TypeError, "notional"),
    ({"quantity": -2.0}, ValueError, "quantity"),
    ({"p_win": 1.2}, ValueError, "p_win"),
    ({"p_win": float("nan")}, ValueError, "p_win"),
    ({"binding": ""}, ValueError, "binding"),
    ({"prior_version": 0}, ValueError, "prior_version"),
    ({"detail": "{}"}, TypeError, "detail"),
    ({"detail": {"x": object()}}, TypeError, "detail"),
    ({"detail": {"x": list(range(30_000))}}, ValueError, "detail"),
    ({"colour": "red"}, TypeError, "unknown field.*colour"),
]


@pytest.mark.parametrize("override, exc, match", BAD_DECISIONS)
def test_bad_decision_rows_are_refused_naming_the_field(override, exc, match):
    with pytest.raises(exc, match=match):
        check_decision(decision(**override))


def test_a_decision_row_missing_a_field_is_refused_and_the_check_copies():
    row = decision()
    del row["p_win"], row["side"]
    with pytest.raises(TypeError, match=r"misses field\(s\) \['p_win', 'side'\]"):
        check_decision(row)
    with pytest.raises(TypeError, match="mapping"):
        check_decision([("signal", "mom_a")])
    row = decision()
    checked = check_decision(row)
    row["detail"]["kelly"] = 99.0  # the caller reuses its dict: the checked row does not change
    assert json.loads(checked["detail"])["kelly"] == 0.12
    assert set(checked) == set(schema_mod.decisions.c.keys()) - {"id"}


# ---------------------------------------------------------------- returns after a date
def test_returns_after_a_date(store):
    frame = pd.DataFrame({
        "symbol": ["SPY", "SPY", "SPY", "QQQ", "QQQ", "IWM"],
        "date": ["2026-01-02", "2026-01-05", "2026-01-06", "2026-01-02", "2026-01-06",
                 "2026-01-07"],
        "return": [0.01, -0.02, 0.03, 0.005, -0.01, 0.02]})  # fmt: skip
    store.ingest_returns(frame, kind="log")
    got = store.returns_after(DAY, ["QQQ", "SPY", "DIA"])
    assert list(got.columns) == ["QQQ", "SPY", "DIA"]
    assert list(got.index) == [dt.date(2026, 1, 5), dt.date(2026, 1, 6)]  # strictly after
    assert got.loc[dt.date(2026, 1, 6), "SPY"] == 0.03 and got["DIA"].isna().all()
    assert np.isnan(got.loc[dt.date(2026, 1, 5), "QQQ"])
    everything = store.returns_after(None)
    assert list(everything.columns) == ["IWM", "QQQ", "SPY"] and len(everything) == 4
    assert everything.index.is_monotonic_increasing
    assert list(store.returns_after("2026-01-06").index) == [dt.date(2026, 1, 7)]
    empty = store.returns_after(dt.date(2026, 2, 1), ["SPY"])
    assert empty.shape == (0, 1) and list(empty.columns) == ["SPY"]
    with pytest.raises(TypeError, match="symbols"):
        store.returns_after(DAY, "SPY")
    with pytest.raises(ValueError, match="repeat"):
        store.returns_after(DAY, ["SPY", "SPY"])
    with pytest.raises(TypeError, match="date"):
        store.returns_after(5, ["SPY"])

    recorder = StoreRecorder(store)
    panel = recorder.returns_after(DAY, ["QQQ", "SPY"])
    assert isinstance(panel, ReturnsPanel) and panel.symbols == ("QQQ", "SPY")
    assert panel.dates == (dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    np.testing.assert_array_equal(panel.values, got[["QQQ", "SPY"]].to_numpy())
    recorder.close()


# ---------------------------------------------------------------- the engine's interface
def test_store_and_memory_recorders_implement_the_interface(store):
    panel = ReturnsPanel((DAY, dt.date(2026, 1, 5)), ("SPY", "QQQ"),
                         np.array([[0.01, 0.02], [0.03, np.nan]]))  # fmt: skip
    memory = MemoryRecorder(panel)
    with StoreRecorder(store, flush_interval=0.0) as recorder:
        for r in (memory, recorder):
            assert isinstance(r, Recorder)
            r.record_decision(decision())
            with pytest.raises(ValueError, match="side"):
                r.record_decision(decision(side="sideways"))
            r.log_regime(DAY, {"SPY": 0.2})
            r.log_portfolio(DAY, gross_exposure=1.0, portfolio_es=0.1, portfolio_var=0.05,
                            level=0.975)  # fmt: skip
            r.flush()
        assert recorder.stats().committed == 1
    assert len(store.decisions()) == 1 and len(memory.decisions) == 1
    assert memory.decisions[0] == check_decision(decision())
    after = memory.returns_after(DAY, ["QQQ", "DIA"])
    assert after.dates == (dt.date(2026, 1, 5),) and after.symbols == ("QQQ", "DIA")
    assert np.isnan(after.values).all() and after.values.shape == (1, 2)


def test_the_recording_interface_imports_no_store():
    from tests.test_imports import HEAVY, _modules_after

    loaded = _modules_after("import bayes_mem.live.recording as r\nr.MemoryRecorder()")
    assert not loaded.intersection(HEAVY), sorted(loaded.intersection(HEAVY))


def test_prior_set_records_go_through_the_store(store):
    # The nightly job records each version it writes through Store.record_prior_set (it no
    # longer writes the prior_sets table itself); Store.latest_prior_version numbers the next.
    def row(v, status):
        return {
            "version": v, "created_at": dt.datetime(2026, 1, v, tzinfo=dt.UTC),
            "data_from": None, "data_through": DAY, "code_version": "t", "config_hash": "h",
            "status": status, "diagnostics": "{}", "artifact_dir": f"v{v}",
        }  # fmt: skip

    assert store.latest_prior_version() == 0
    store.record_prior_set(row(1, "candidate"))
    store.record_prior_set(row(3, "rejected"))
    assert store.latest_prior_version() == 3
    rows = store.table("prior_sets").set_index("version")
    assert rows["status"].to_dict() == {1: "candidate", 3: "rejected"}
    with pytest.raises(sa.exc.IntegrityError):  # a version is recorded once
        store.record_prior_set(row(1, "rejected"))
    assert store.table("prior_sets").set_index("version")["status"].to_dict() == {
        1: "candidate",
        3: "rejected",
    }


def test_outcome_span_summarises_the_outcomes_table(store):
    # The nightly job's run record reads it through the store (Store.outcome_span).
    empty = store.outcome_span()
    assert empty["trades"] == 0 and empty["signals"] == 0 and empty["through_seq"] is None
    store.append_outcome("t1", "mom_a", True, 2.0, settled_at=dt.datetime(2026, 1, 2, 20))
    store.append_outcome("t2", "mom_b", False, -1.0, settled_at=dt.datetime(2026, 1, 5, 20))
    store.append_outcome("t3", "mom_a", True, 1.0, settled_at=dt.datetime(2026, 1, 6, 20))
    span = store.outcome_span()
    assert span["trades"] == 3 and span["signals"] == 2
    assert span["settled_from"].startswith("2026-01-02 20:00")
    assert span["settled_through"].startswith("2026-01-06 20:00")
    assert span["through_seq"] == int(store.outcomes()["seq"].max())
