"""The store: schema and migrations, durable outcomes, validated ingest, metrics, persistence of
the live decider; on SQLite and on PostgreSQL."""

import datetime as dt
import os
import stat

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.store import (
    SCHEMA_VERSION,
    DuplicateTradeError,
    IngestError,
    PersistentDecider,
    SchemaError,
    Store,
)
from bayes_mem.store import schema as schema_mod

HOSTILE = ["α-mom", 'o\'brien "q"', "x'); DROP TABLE signals;--", "<script>alert(1)</script>"]


@pytest.fixture
def store(store_url):  # every test below runs on SQLite and on PostgreSQL (see conftest.py)
    s = Store(store_url)
    s.register_signals({"mom_a": "momentum", "mom_b": "momentum", "mr_a": "mean_reversion"})
    yield s
    s.close()


def count(store: Store, table: str) -> int:
    return len(store.table(table))


def test_sqlite_defaults_wal_owner_only_and_schema_version(tmp_path):
    s = Store(data_dir=tmp_path / "d")
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert s.schema_version == SCHEMA_VERSION == 2
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "bayes_mem.sqlite").st_mode) == 0o600
    s.close()


def test_reopening_keeps_data_and_a_newer_schema_is_refused(tmp_path, store):
    store.append_outcome("t1", "mom_a", True, 2.0)
    again = Store(store.url)
    assert again.has_trade("t1") and again.signals()["mom_a"] == "momentum"
    with again.engine.begin() as conn:
        conn.execute(schema_mod.schema_version.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(SchemaError, match="newer"):
        Store(store.url)


def test_names_round_trip_unchanged(store):
    store.register_signals({name: "hostile" for name in HOSTILE})
    for i, name in enumerate(HOSTILE):
        store.append_outcome(f"h{i}", name, True, 1.0)
    assert set(HOSTILE) <= set(store.signals())
    assert set(store.outcomes()["signal"]) == set(HOSTILE)
    assert count(store, "signals") == 3 + len(HOSTILE)  # the DROP TABLE did nothing


def test_duplicate_trade_is_refused_and_nothing_changes(store):
    store.append_outcome("t1", "mom_a", True, 2.0)
    with pytest.raises(DuplicateTradeError, match="t1"):
        store.append_outcome("t1", "mom_b", False, -1.0)
    assert count(store, "outcomes") == 1


@pytest.mark.parametrize(
    "args, exc, match",
    [
        (("t9", "nope", True, 1.0), ValueError, "unknown signal"),
        (("t9", "mom_a", "yes", 1.0), TypeError, "won"),
        (("t9", "mom_a", True, float("nan")), ValueError, "pnl"),
        (("t9", "mom_a", True, -1.0), ValueError, "contradicts"),
        ((None, "mom_a", True, 1.0), TypeError, "trade_id"),
        (("", "mom_a", True, 1.0), ValueError, "trade_id"),
    ],
)
def test_bad_outcomes_are_refused(store, args, exc, match):
    with pytest.raises(exc, match=match):
        store.append_outcome(*args)
    assert count(store, "outcomes") == 0


def test_batch_with_bad_rows_reports_lines_and_writes_nothing(store, tmp_path):
    frame = pd.DataFrame(
        {
            "trade_id": ["a1", "a2", "a3", "a2", "a5", "a6"],
            "signal": ["mom_a", "ghost", "mom_b", "mom_a", "mr_a", "mr_a"],
            "won": ["true", "false", "maybe", "true", "false", "true"],
            "pnl": ["1.0", "-1", "1", "2", "inf", "-3"],
            "settled_at": [
                "2026-01-02",
                "2026-01-02",
                "2026-01-03",
                "2026-01-03",
                "2026-01-04",
                "x",
            ],
        }
    )
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(IngestError) as info:
        store.ingest_outcomes(path)
    lines = {p.line for p in info.value.problems}
    assert lines == {3, 4, 5, 6, 7}  # header is line 1, so data row i is line i + 2
    assert count(store, "outcomes") == 0
    good = frame.iloc[[0]].assign(won=[True], pnl=[1.0])
    assert store.ingest_outcomes(good) == 1
    with pytest.raises(IngestError, match="already stored"):
        store.ingest_outcomes(good)
    with pytest.raises(IngestError, match="missing column"):
        store.ingest_outcomes(frame.drop(columns=["pnl"]))


def test_parquet_ingest_and_counts_match_a_direct_aggregation(store, tmp_path):
    rng = np.random.default_rng(0)
    n = 500
    won = rng.random(n) < 0.55
    frame = pd.DataFrame(
        {
            "trade_id": [f"p{i}" for i in range(n)],
            "signal": rng.choice(["mom_a", "mom_b", "mr_a"], n),
            "won": won,
            "pnl": np.where(won, rng.uniform(0, 2, n), -rng.uniform(0, 2, n)),
            "settled_at": pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC"),
        }
    )
    path = tmp_path / "o.parquet"
    frame.to_parquet(path)
    assert store.ingest_outcomes(path) == n
    counts = store.signal_counts().set_index("signal")
    expect = frame.groupby("signal")["won"].agg(["sum", "count"])
    for sig in expect.index:
        assert counts.loc[sig, "wins"] == expect.loc[sig, "sum"]
        assert counts.loc[sig, "trades"] == expect.loc[sig, "count"]
    cut = frame["settled_at"].iloc[99].to_pydatetime()
    early = store.signal_counts(settled_through=cut)
    assert early["trades"].sum() == 100


def test_returns_ingest_converts_and_refuses_duplicates(store):
    frame = pd.DataFrame(
        {"symbol": ["SPY", "SPY", "QQQ"], "date": ["2026-01-02", "2026-01-05", "2026-01-02"],
         "return": [0.01, -0.02, 0.005]}
    )  # fmt: skip
    assert store.ingest_returns(frame, kind="simple") == 3
    panel = store.returns_panel()
    assert panel.loc[dt.date(2026, 1, 2), "SPY"] == pytest.approx(np.log1p(0.01))
    assert np.isnan(panel.loc[dt.date(2026, 1, 5), "QQQ"])
    with pytest.raises(IngestError, match="already stored"):
        store.ingest_returns(frame, kind="simple")
    bad = pd.DataFrame(
        {"symbol": ["X", "X", "Y"], "date": ["2026-01-02", "2026-01-02", "2026-01-02 13:00"],
         "return": [0.0, 0.1, -1.5]}
    )  # fmt: skip
    with pytest.raises(IngestError) as info:
        store.ingest_returns(bad, kind="simple")
    # repeated date; on the last row both bad cells: a time of day and -1.5 (issue 20: every
    # bad cell of a row, not only the first)
    assert [(p.line, p.column) for p in info.value.problems] == [
        ("row 1", "date"),
        ("row 2", "date"),
        ("row 2", "return"),
    ]
    with pytest.raises(ValueError, match="kind"):
        store.ingest_returns(frame, kind="pct")
    assert count(store, "returns") == 3


def test_metrics_are_logged(store):
    from bayes_mem.live.gjr_garch import GarchDraws
    from bayes_mem.live.return_model import ReturnModel

    d = GarchDraws(mu=[0.0] * 4, omega=[2e-6] * 4, alpha=[0.03] * 4, gamma=[0.1] * 4,
                   beta=[0.9] * 4, nu=[6.0] * 4, lam=[-0.1] * 4)  # fmt: skip
    model = ReturnModel({"SPY": d}, {"SPY": np.full(4, 1e-4)})
    store.log_risk(dt.date(2026, 1, 2), model.risk(0.975))
    store.log_correlation(dt.date(2026, 1, 2), average_correlation=0.3, concentration_score=0.65,
                          effective_bets=3.2, breakdown_p=0.4, breakdown_score=0.6)  # fmt: skip
    dec = Decider(["momentum"], rng=0)
    dec.register("mom_a", "momentum")
    store.log_signal_quality(dt.datetime(2026, 1, 2, tzinfo=dt.UTC), [dec.metrics("mom_a")])
    assert count(store, "risk_metrics") == 1
    assert count(store, "correlation_metrics") == 1
    assert count(store, "signal_quality") == 1
    with pytest.raises(ValueError, match="no table"):
        store.table("users")


def test_persistent_decider_writes_first_and_restores_exactly(store):
    families = {"momentum": BetaPrior(2, 3), "mean_reversion": BetaPrior(5, 5)}
    live = PersistentDecider(Decider(families, discount=0.99, rng=1), store)
    for name in ("mom_a", "mom_b", "mr_a"):
        live.register(name, "momentum" if name.startswith("mom") else "mean_reversion")
    rng = np.random.default_rng(2)
    for i in range(300):
        name = ["mom_a", "mom_b", "mr_a"][i % 3]
        live.decide(name)
        won = bool(rng.random() < 0.55)
        live.record(name, won, 1.0 if won else -1.0, trade_id=f"T{i}")
    with pytest.raises(ValueError, match="T5"):
        live.record("mom_a", True, 1.0, trade_id="T5")
    auto = live.record("mr_a", False, -0.5)
    assert auto.startswith("auto-") and store.has_trade(auto)
    restored = PersistentDecider.restore(store, families, discount=0.99, rng=1)
    for name in ("mom_a", "mom_b", "mr_a"):
        a, b = live.posterior(name), restored.posterior(name)
        assert a.a == pytest.approx(b.a, rel=1e-12) and a.b == pytest.approx(b.b, rel=1e-12)
        assert live.metrics(name).trades == restored.metrics(name).trades
    assert restored.seen_trade("T17")


def test_failed_store_write_leaves_the_decider_unchanged(store):
    live = PersistentDecider(Decider(["momentum"], rng=0), store)
    live.register("mom_x", "momentum")
    store.append_outcome("clash", "mom_a", True, 1.0)  # another process took this id
    before = live.to_json()
    with pytest.raises(DuplicateTradeError):
        live.record("mom_x", True, 1.0, trade_id="clash")
    assert live.to_json() == before


def test_sql_goes_through_bound_parameters(store):
    # a trade id that is itself SQL is stored verbatim
    tid = "1'; DELETE FROM outcomes; --"
    store.append_outcome(tid, "mom_a", True, 1.0)
    assert store.has_trade(tid) and count(store, "outcomes") == 1
    with store.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema_mod.signals)).scalar() == 3
        )
