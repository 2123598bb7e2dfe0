"""The shipped real prices (bayes_mem.evaluation.data): every series through its package's
public loader, returns between consecutive positive closes, bad names refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_mem.evaluation import data


def test_every_series_loads_through_its_package():
    names = data.available_series()
    assert names == [n for n in data.SERIES if n in names]  # the documented order
    assert {"sp500", "nasdaq", "wti"} <= set(names)
    for name in names:
        price = data.load_prices(name)
        assert isinstance(price.index, pd.DatetimeIndex) and price.index.is_monotonic_increasing
        assert price.notna().all() and price.size > 2000
        r = data.load_log_returns(name)
        p = price.to_numpy()
        ok = p > 0
        np.testing.assert_array_equal(r.to_numpy(), np.log(p[ok][1:] / p[ok][:-1]))
        assert r.index.equals(price.index[ok][1:])


def test_shipped_closes_are_positive_and_wti_ends_in_2019():
    """arch's WTI ends on 2019-01-03, before the negative close of 2020-04-20: no shipped close
    is <= 0, so the positive-close guard of load_log_returns drops nothing today."""
    for name in data.available_series():
        assert (data.load_prices(name) > 0).all(), name
    assert data.load_prices("wti").index[-1] == pd.Timestamp("2019-01-03")


def test_unknown_and_excluded_series_are_refused():
    with pytest.raises(ValueError, match="unknown series 'aapl'"):
        data.load_prices("aapl")
    assert not any("sp500_dataset" in n for n in data.SERIES)  # the independent check stays out
