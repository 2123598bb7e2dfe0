"""The engine on a store: a bar's returns are stored once and never contradict a stored return."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bayes_mem.demo_nightly import synthesize
from bayes_mem.live import TradingEngine
from bayes_mem.live.prior_set import activate, write_prior_set
from bayes_mem.store import Store
from tests.test_readme_engine import demo_prior_set


@pytest.fixture
def opened(tmp_path):
    store = Store(data_dir=tmp_path / "data")
    synthesize(store, np.random.default_rng(5), signals_per_family=5)
    last = store.returns_panel().index[-1]
    write_prior_set(demo_prior_set(str(last)[:10]), tmp_path / "models")
    activate(tmp_path / "models", 1)
    engine = TradingEngine.open(tmp_path / "models", store, portfolio_value=1e6)
    yield engine, store
    engine.close()
    store.close()


def test_a_bar_whose_returns_the_trader_already_ingested_is_not_stored_twice(opened):
    engine, store = opened
    day = engine.last_date + dt.timedelta(days=1)
    store.ingest_returns(pd.DataFrame({"symbol": ["SPY"], "date": [day], "return": [0.01]}),
                         kind="log")  # fmt: skip
    engine.bar(day, {"SPY": 0.01, "QQQ": -0.02})
    got = store.returns_after(day - dt.timedelta(days=1), ["SPY", "QQQ"])
    assert got.loc[got.index[0]].tolist() == [0.01, -0.02]


def test_a_bar_contradicting_a_stored_return_is_refused_and_changes_nothing(opened):
    engine, store = opened
    day = engine.last_date + dt.timedelta(days=1)
    store.ingest_returns(pd.DataFrame({"symbol": ["SPY"], "date": [day], "return": [0.01]}),
                         kind="log")  # fmt: skip
    sigma2 = engine.model.sigma2()
    with pytest.raises(ValueError, match="different return for 'SPY'"):
        engine.bar(day, {"SPY": 0.02, "QQQ": -0.02})
    np.testing.assert_array_equal(engine.model.sigma2(), sigma2)
    assert engine.last_date == day - dt.timedelta(days=1)
    got = store.returns_after(day - dt.timedelta(days=1), ["SPY", "QQQ"])
    assert got.iloc[0, 0] == 0.01 and np.isnan(got.iloc[0, 1])
