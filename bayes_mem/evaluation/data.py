"""Real daily prices shipped inside pip packages: the one loader of every evaluation.

Series (name: package, public loader, column, span), all daily closes in index points or US
dollars, as each package ships them; nothing is downloaded:

- ``sp500``, ``nasdaq``: arch's S&P 500 and NASDAQ composite (``arch.data.sp500`` /
  ``nasdaq``, "Adj Close", 1999-2018);
- ``wti``: arch's WTI crude spot (``arch.data.wti``, "DCOILWTICO", 1986 to 2019-01-03, so
  before the negative close of 2020-04-20; its missing days are not prices of the series);
- ``skfolio_sp500_index``: skfolio's S&P 500 index (``load_sp500_index``, "SP500", 1990-2022);
- ``skfolio_mtum``, ``_qual``, ``_size``, ``_usmv``, ``_vlue``: skfolio's five iShares factor
  ETFs (``load_factors_dataset``, 2014-2022).

skfolio's 20-stock panel (``load_sp500_dataset``) is deliberately absent: it is kept outside
the project as an independent check. Every series goes through its package's public loader
(never the package's file layout); a package that is not installed leaves its series out of
:func:`available_series` (the ``data`` extra installs both).
"""

from __future__ import annotations

import functools
import importlib.util

import numpy as np
import pandas as pd

#: name -> (package, loader, column): ``arch.data.<loader>.load()`` or
#: ``skfolio.datasets.<loader>()``
SERIES: dict[str, tuple[str, str, str]] = {
    "sp500": ("arch", "sp500", "Adj Close"),
    "nasdaq": ("arch", "nasdaq", "Adj Close"),
    "wti": ("arch", "wti", "DCOILWTICO"),
    "skfolio_sp500_index": ("skfolio", "load_sp500_index", "SP500"),
    **{
        f"skfolio_{etf.lower()}": ("skfolio", "load_factors_dataset", etf)
        for etf in ("MTUM", "QUAL", "SIZE", "USMV", "VLUE")
    },
}


def available_series() -> list[str]:
    """The names of :data:`SERIES` whose package is installed, in :data:`SERIES`' order.

    Examples
    --------
    With the ``data`` extra (arch and skfolio) every series is there:

    >>> available_series()[:3], len(available_series()) == len(SERIES)
    (['sp500', 'nasdaq', 'wti'], True)
    """
    have = {p: importlib.util.find_spec(p) is not None for p in {p for p, _, _ in SERIES.values()}}
    return [name for name, (package, _, _) in SERIES.items() if have[package]]


@functools.cache
def _frame(package: str, loader: str) -> pd.DataFrame:
    if package == "arch":
        module = importlib.import_module(f"arch.data.{loader}")
        return module.load()
    datasets = importlib.import_module("skfolio.datasets")
    return getattr(datasets, loader)()


def load_prices(name: str) -> pd.Series:
    """Daily closes of series ``name`` (see the module docstring) indexed by date, the days
    without a close dropped (float; a copy).

    Examples
    --------
    WTI crude in US dollars per barrel, from 1986-01-02:

    >>> p = load_prices("wti")
    >>> p.name, str(p.index[0].date()), float(p.iloc[0])
    ('wti', '1986-01-02', 25.56)
    """
    if name not in SERIES:
        raise ValueError(f"unknown series {name!r}; known: {sorted(SERIES)}")
    package, loader, column = SERIES[name]
    if importlib.util.find_spec(package) is None:
        raise ImportError(f"series {name!r} needs the {package!r} package: pip install "
                          "'bayes_mem[data]'")  # fmt: skip
    col = pd.to_numeric(_frame(package, loader)[column], errors="coerce").astype(float)
    out = col.dropna().copy()
    out.index = pd.DatetimeIndex(out.index)
    out.name = name
    return out


def load_log_returns(name: str) -> pd.Series:
    """Daily log returns of series ``name`` between its consecutive positive closes, indexed by
    the day each return ends on.

    Examples
    --------
    One return fewer than prices; the first ends on 1986-01-03:

    >>> r = load_log_returns("wti")
    >>> r.size == load_prices("wti").size - 1, str(r.index[0].date()), round(float(r.iloc[0]), 5)
    (True, '1986-01-03', 0.01707)
    """
    price = load_prices(name)
    p = price.to_numpy()
    keep = np.flatnonzero(np.isfinite(p) & (p > 0))  # a close <= 0 has no log return
    if keep.size < 2:
        raise ValueError(f"{name}: fewer than 2 positive prices")
    r = np.log(p[keep[1:]] / p[keep[:-1]])
    return pd.Series(r, index=price.index[keep[1:]], name=name)
