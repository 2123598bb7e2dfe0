"""The dashboard's data layer: read-only queries of the store and the model registry, each
returning a pandas frame (no Bokeh here).

Connections
    :func:`open_read_only` opens an SQLAlchemy engine that cannot write: an SQLite file through a
    ``file:...?mode=ro`` URI (never ``immutable``: the engine's new days must be seen), a
    PostgreSQL server with ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`` run on every
    new connection. A missing SQLite file, an unparsable URL, an unreachable server or a schema
    this bayes_mem does not read raise :class:`DashboardError` naming the value; nothing is
    created.

Units
    Returns, VaR and ES of a symbol are daily log returns (fractions, 0.01 = 1 %); VaR and ES
    are positive losses. Portfolio figures and notionals are in account currency. Probabilities
    are in [0, 1]. Dates are calendar dates; ``as_of`` and ``decided_at`` are UTC instants.

Exceedances
    A forecast logged for date d (the engine's end of day d) is for the next stored return of
    the symbol: an exceedance on day t is ``log_return[t] < -var_log`` of the latest forecast
    dated strictly before t (:func:`align_forecasts`). The rolling status over the last
    ``window`` aligned days reuses :func:`bayes_mem.evaluation.var_backtest.coverage_tests`
    (Kupiec, Christoffersen) and :func:`bayes_mem.evaluation.es_backtest.z2_statistic`
    (Acerbi-Szekely Z2; rejected below ``Z2_CRITICAL`` = -0.70, their 5 % critical value).

Freshness
    :func:`data_version` is the cheap fingerprint an open page polls: the latest date of
    ``portfolio_metrics``, ``correlation_metrics`` and ``regime_metrics`` (each keyed by date
    first, so an index lookup) and the latest decision id. Every engine end of day writes
    ``portfolio_metrics``, so a new day changes it. Each page watches only the parts it shows
    (``pages.WATCH``); the nightly page watches :func:`registry_version` instead.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import sqlite3
import threading
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bayes_mem.evaluation.es_backtest import z2_statistic
from bayes_mem.evaluation.var_backtest import coverage_tests
from bayes_mem.live.correlation import shrunk_correlation
from bayes_mem.store import schema

#: Acerbi and Szekely's (2014) 5 % critical value of Z2 (reject below it)
Z2_CRITICAL = -0.70
#: p-value below which a Kupiec / Christoffersen test is shown as rejected
TEST_SIZE = 0.05
#: a symbol's regime alarm: P(change) at or above this
ALARM_P_CHANGE = 0.5
#: days of returns behind the heatmap's shrunk correlation
CORRELATION_WINDOW = 250
#: the most recent decisions a page shows
DECISION_ROWS = 1000


class DashboardError(ValueError):
    """The store or the registry cannot be read by the dashboard; the message names the value.

    Examples
    --------
    A store file that does not exist is refused, nothing created:

    >>> try:
    ...     open_read_only("sqlite:////no/such/dir/bayes_mem.sqlite")
    ... except DashboardError as exc:
    ...     print(exc)
    no store at '/no/such/dir/bayes_mem.sqlite' (no such file)
    """


@dataclass(frozen=True)
class Source:
    """What the dashboard reads: a read-only store engine and the model registry folder (None:
    no registry, the nightly page says so).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> Store(data_dir=tmp.name).close()  # an empty store file
    >>> source = open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=None)
    >>> source.models, source.shown.endswith("bayes_mem.sqlite")
    (None, True)
    >>> source.close()
    >>> tmp.cleanup()
    """

    engine: sa.Engine
    models: Path | None
    shown: str  # the store's URL, password hidden

    def close(self) -> None:
        """Release the engine's connections.

        Examples
        --------
        >>> import tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> Store(data_dir=tmp.name).close()  # an empty store file
        >>> source = open_source(f"sqlite:///{tmp.name}/bayes_mem.sqlite", models=tmp.name)
        >>> source.close()
        >>> tmp.cleanup()
        """
        self.engine.dispose()


# ---------------------------------------------------------------------------- connections
def _sqlite_ro_connect(path: str) -> Any:
    where = urllib.parse.quote(str(Path(path).resolve()), safe="/")
    return sqlite3.connect(f"file:{where}?mode=ro", uri=True, check_same_thread=False)


def _pg_read_only(dbapi_conn: Any, _record: Any) -> None:
    autocommit = getattr(dbapi_conn, "autocommit", False)
    cur = dbapi_conn.cursor()
    cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    cur.close()
    if not autocommit:
        dbapi_conn.commit()


def open_read_only(url: str) -> tuple[sa.Engine, str]:
    """A read-only engine on the store at ``url`` and the URL as shown (password hidden).

    Raises
    ------
    DashboardError
        The URL cannot be parsed, names an unknown database, a SQLite file that does not exist,
        a server that does not answer, or a store whose schema is not this bayes_mem's.

    Examples
    --------
    The engine reads; a write is refused by SQLite itself:

    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store:
    ...     store.log_regime("2024-01-02", {"SPY": 0.2})
    >>> engine, shown = open_read_only(f"sqlite:///{tmp.name}/bayes_mem.sqlite")
    >>> regime_latest(engine)["p_change"].tolist()
    [0.2]
    >>> try:
    ...     with engine.begin() as conn:
    ...         _ = conn.execute(schema.regime_metrics.delete())
    ... except sa.exc.OperationalError as exc:
    ...     print("refused:", "readonly" in str(exc))
    refused: True
    >>> engine.dispose()
    >>> tmp.cleanup()
    """
    if not isinstance(url, str) or not url.strip():
        raise DashboardError(f"the store URL must be non-empty text, got {url!r:.100}")
    try:
        parsed = sa.engine.make_url(url)
        parsed.get_dialect()
    except (sa.exc.ArgumentError, ValueError):
        raise DashboardError(f"not a database URL: {url!r:.100}") from None
    except sa.exc.NoSuchModuleError:
        raise DashboardError(f"unknown database {url.split(':', 1)[0]!r} in {url!r:.100}") from None
    except ImportError as exc:
        raise DashboardError(f"no driver for {url!r:.100} is installed: {exc}") from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise DashboardError(f"the dashboard reads a SQLite file, got {shown!r}")
        if not os.path.isfile(path):
            raise DashboardError(f"no store at {path!r} (no such file)")
        # a pool of its own: the URL "sqlite://" alone would get SQLAlchemy's per-thread pool,
        # which closes a connection from another thread (Bokeh runs callbacks in threads)
        engine = sa.create_engine(
            "sqlite://",
            creator=lambda: _sqlite_ro_connect(path),
            poolclass=sa.pool.QueuePool,
            pool_size=4,
            max_overflow=8,
        )
    elif backend == "postgresql":
        engine = sa.create_engine(parsed, pool_pre_ping=True)
        sa.event.listen(engine, "connect", _pg_read_only)
    else:
        raise DashboardError(f"the dashboard reads SQLite or PostgreSQL stores, got {shown!r}")
    try:
        with engine.connect() as conn:
            version = schema.current_version(conn)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        orig = getattr(exc, "orig", None) or exc
        line = (str(orig).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise DashboardError(f"cannot open the store {shown}: {line}") from None
    if version != schema.SCHEMA_VERSION:
        engine.dispose()
        raise DashboardError(
            f"the store {shown} has schema version {version}, this bayes_mem reads "
            f"{schema.SCHEMA_VERSION} (open it once with another bayes-mem verb to create or "
            "upgrade it)"
        )
    return engine, shown


def open_source(url: str, models: str | Path | None) -> Source:
    """Open the store read-only and check the registry folder exists.

    Parameters
    ----------
    url : str
        SQLAlchemy URL of an existing SQLite or PostgreSQL store.
    models : str, Path or None
        The model registry folder (None: no registry; the nightly page says so).

    Returns
    -------
    Source
        The read-only engine, the registry folder and the URL as shown.

    Raises
    ------
    DashboardError
        The registry folder is missing, or :func:`open_read_only` refused the store; nothing
        is created.

    Examples
    --------
    >>> try:
    ...     open_source("sqlite:////tmp/x.sqlite", models="/no/such/models")
    ... except DashboardError as exc:
    ...     print(exc)
    no model registry at '/no/such/models' (no such directory)
    """
    folder = None
    if models is not None:
        folder = Path(models)
        if not folder.is_dir():
            raise DashboardError(f"no model registry at {str(folder)!r} (no such directory)")
    engine, shown = open_read_only(url)
    return Source(engine, folder, shown)


def _frame(conn: sa.Connection, query: sa.Executable, columns: list[str]) -> pd.DataFrame:
    rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=columns)


def _dates(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series)


# ---------------------------------------------------------------------------- freshness
@dataclass(frozen=True)
class DataVersion:
    """The store's cheap fingerprint (None where a table is empty).

    Examples
    --------
    >>> DataVersion(dt.date(2024, 1, 8), dt.date(2024, 1, 8), None, 40)
    DataVersion(portfolio=datetime.date(2024, 1, 8), correlation=datetime.date(2024, 1, 8),
                regime=None, decision=40)
    """

    portfolio: dt.date | None  # latest portfolio_metrics date: every engine end of day
    correlation: dt.date | None
    regime: dt.date | None
    decision: int | None  # latest decision id: moves during the trading day


def data_version(engine: sa.Engine) -> DataVersion:
    """The cheap fingerprint a page polls (see the module docstring): latest portfolio,
    correlation and regime dates and the latest decision id, one index lookup each.

    Examples
    --------
    Five synthetic days of two decisions per configuration and day: the latest decision is the
    20th:

    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=5,
    ...                decisions_per_day=2)
    >>> data_version(store.engine)
    DataVersion(portfolio=datetime.date(2024, 1, 8), correlation=datetime.date(2024, 1, 8),
                regime=datetime.date(2024, 1, 8), decision=20)
    """
    with engine.connect() as conn:
        return DataVersion(*(
            conn.execute(sa.select(sa.func.max(col))).scalar()
            for col in (
                schema.portfolio_metrics.c.date,
                schema.correlation_metrics.c.date,
                schema.regime_metrics.c.date,
                schema.decisions.c.id,
            )
        ))  # fmt: skip


def registry_version(models: Path | None) -> tuple[Any, ...]:
    """The registry's fingerprint: its versions, the active one and the reports' names.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     print(registry_version(Path(tmp)), registry_version(None))
    ((), None, ()) ()
    """
    if models is None:
        return ()
    from bayes_mem.live.prior_set import active_version, list_versions

    try:
        active = active_version(models)
    except ValueError:
        active = None
    reports = models / "reports"
    names = sorted(p.name for p in reports.glob("v*.html")) if reports.is_dir() else []
    return (tuple(list_versions(models)), active, tuple(names))


# ---------------------------------------------------------------------------- risk
def risk_symbols(engine: sa.Engine) -> list[str]:
    """The symbols with a risk forecast, sorted.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=3, n_days=2)
    >>> risk_symbols(store.engine)
    ['SYM000', 'SYM001', 'SYM002']
    """
    t = schema.risk_metrics
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(t.c.symbol).distinct()).scalars())


def risk_history(engine: sa.Engine, symbol: str) -> pd.DataFrame:
    """One symbol's forecasts by date (ascending) at its most frequent level: columns ``date``
    (datetime64), ``level``, ``var_log``, ``es_log``, ``es_low``, ``es_high`` (the ES's 90 %
    credible band, NaN when not computed) and ``volatility`` (daily, fraction).

    Examples
    --------
    The synthetic forecasts have ES = 1.2 x VaR and a band of +-15% around ES:

    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=3)
    >>> h = risk_history(store.engine, "SYM000")
    >>> len(h), float(h["level"].iloc[0]), bool(np.allclose(h["es_log"], 1.2 * h["var_log"]))
    (3, 0.975, True)
    >>> bool(np.allclose(h["es_high"] / h["es_log"], 1.15))
    True
    """
    t = schema.risk_metrics
    cols = ["date", "level", "var_log", "es_log", "es_low", "es_high", "volatility"]
    q = sa.select(*(t.c[c] for c in cols)).where(t.c.symbol == symbol).order_by(t.c.date)
    with engine.connect() as conn:
        frame = _frame(conn, q, cols)
    if len(frame):
        level = frame["level"].mode().iloc[0]
        frame = frame[frame["level"] == level].reset_index(drop=True)
    frame["date"] = _dates(frame["date"])
    return frame.astype({c: float for c in cols[1:]})


def symbol_returns(engine: sa.Engine, symbol: str) -> pd.DataFrame:
    """One symbol's stored daily log returns: columns ``date`` (datetime64), ``log_return``.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = store.ingest_returns(pd.DataFrame({"symbol": ["SPY", "SPY"],
    ...     "date": ["2024-01-02", "2024-01-03"], "return": [0.004, -0.011]}), kind="log")
    >>> symbol_returns(store.engine, "SPY")
            date  log_return
    0 2024-01-02       0.004
    1 2024-01-03      -0.011
    """
    t = schema.returns
    q = sa.select(t.c.date, t.c.log_return).where(t.c.symbol == symbol).order_by(t.c.date)
    with engine.connect() as conn:
        frame = _frame(conn, q, ["date", "log_return"])
    frame["date"] = _dates(frame["date"])
    return frame.astype({"log_return": float})


def align_forecasts(risk: pd.DataFrame, returns: pd.DataFrame) -> pd.DataFrame:
    """Each return with the forecast made for it (the latest one dated strictly before it):
    columns ``date``, ``log_return``, ``var_log``, ``es_log``, ``exceed`` (bool:
    ``log_return < -var_log``); returns without an earlier forecast are dropped.

    Examples
    --------
    The forecast of 2 January is for the return of 3 January (the next date): a loss of 3% beyond
    a VaR of 2% is an exceedance; the return of 2 January has no earlier forecast:

    >>> days = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])
    >>> risk = pd.DataFrame({"date": days[:2], "var_log": [0.02, 0.02], "es_log": [0.025, 0.025]})
    >>> returns = pd.DataFrame({"date": days, "log_return": [-0.05, -0.03, 0.01]})
    >>> align_forecasts(risk, returns)
            date  log_return  var_log  es_log  exceed
    0 2024-01-03       -0.03     0.02   0.025    True
    1 2024-01-04        0.01     0.02   0.025   False
    """
    cols = ["date", "log_return", "var_log", "es_log", "exceed"]
    if risk.empty or returns.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    fc = risk[["date", "var_log", "es_log"]].rename(columns={"date": "forecast_date"})
    merged = pd.merge_asof(
        returns.sort_values("date"), fc.sort_values("forecast_date"), left_on="date",
        right_on="forecast_date", allow_exact_matches=False, direction="backward",
    ).dropna(subset=["var_log"])  # fmt: skip
    merged["exceed"] = merged["log_return"] < -merged["var_log"]
    return merged[cols].reset_index(drop=True)


BACKTEST_COLUMNS = ["symbol", "level", "n", "exceedances", "expected", "p_kupiec",
                    "p_christoffersen", "p_cc", "z2", "status"]  # fmt: skip


def _status(returns: np.ndarray, var: np.ndarray, es: np.ndarray, level: float) -> dict[str, Any]:
    exceed = returns < -var
    out: dict[str, Any] = {"n": len(returns), "exceedances": int(exceed.sum())}
    nan = float("nan")
    if len(returns) < 20:
        out.update(expected=len(returns) * (1 - level), p_kupiec=nan, p_christoffersen=nan,
                   p_cc=nan, z2=nan, status="too few days")  # fmt: skip
        return out
    cov = coverage_tests(exceed, level)
    z2 = z2_statistic(returns, var, es, level)
    failed = [name for name, bad in (
        ("Kupiec", cov.p_pof < TEST_SIZE), ("Christoffersen", cov.p_ind < TEST_SIZE),
        ("Z2", z2 < Z2_CRITICAL),
    ) if bad]  # fmt: skip
    out.update(expected=cov.expected, p_kupiec=cov.p_pof, p_christoffersen=cov.p_ind,
               p_cc=cov.p_cc, z2=z2,
               status="ok" if not failed else "rejected: " + ", ".join(failed))  # fmt: skip
    return out


def backtest_status(aligned: pd.DataFrame, level: float, window: int = 250) -> dict[str, Any]:
    """The rolling status over the last ``window`` aligned days (:func:`align_forecasts`):
    ``n``, ``exceedances``, ``expected``, ``p_kupiec``, ``p_christoffersen`` (independence),
    ``p_cc``, ``z2`` and ``status`` ("ok", "rejected: ..." naming the failed tests, or "too few
    days" under 20).

    Examples
    --------
    250 days with 6 losses of 3% beyond a 97.5% VaR of 2% (6.25 expected) and an ES of 2.5%:
    Z2 = 6 x (-0.03) / (0.025 x 250 x 0.025) + 1 = -0.152, above its critical -0.70:

    >>> r = np.clip(np.random.default_rng(0).normal(0.0, 0.008, 250), -0.019, None)
    >>> r[[20, 60, 100, 140, 180, 220]] = -0.03  # the 6 exceedances, evenly spread
    >>> aligned = pd.DataFrame({"log_return": r, "var_log": 0.02, "es_log": 0.025})
    >>> s = backtest_status(aligned, level=0.975)
    >>> s["n"], s["exceedances"], round(s["expected"], 2), round(s["z2"], 3), s["status"]
    (250, 6, 6.25, -0.152, 'ok')
    """
    tail = aligned.tail(window)
    return _status(tail["log_return"].to_numpy(float), tail["var_log"].to_numpy(float),
                   tail["es_log"].to_numpy(float), level)  # fmt: skip


def _raw(conn: sa.Connection, query: sa.Select, columns: list[str]) -> pd.DataFrame:
    """A large query's rows as a frame, built column by column (a frame built from a list of
    rows costs about 5 times more). Select dates through :func:`_as_text` to skip their
    per-row conversion: ISO text on SQLite, dates on PostgreSQL; both parse with
    ``pandas.to_datetime``."""
    rows = conn.execute(query).all()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    cols = zip(*rows, strict=True)
    return pd.DataFrame(dict(zip(columns, (list(c) for c in cols), strict=True)))


def _as_text(column: sa.ColumnElement) -> sa.ColumnElement:
    """``column`` without SQLAlchemy's result conversion (the driver's own value)."""
    return sa.type_coerce(column, sa.String).label(column.name)


_CACHE_LOCK = threading.Lock()
_BACKTEST_CACHE: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
_CACHE_SIZE = 4


def _table_key(conn: sa.Connection, table: sa.Table, value: sa.Column) -> tuple[Any, ...]:
    row = conn.execute(sa.select(sa.func.max(table.c.date), sa.func.count(),
                                 sa.func.sum(value))).one()  # fmt: skip
    return tuple(row)


def backtest_table(engine: sa.Engine, window: int = 250, *, cache: bool = True) -> pd.DataFrame:
    """:func:`backtest_status` of every symbol with forecasts.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A read-only engine (:func:`open_read_only`).
    window : int
        Trading days of the rolling window (the last ``window`` forecast dates).
    cache : bool
        Keep the table per engine and per content of ``risk_metrics`` and ``returns`` (their
        latest date, row count and sum of values: a new or re-logged day changes it), so every
        page and session after the first reuses it until the data change.

    Returns
    -------
    pandas.DataFrame
        One row per symbol, sorted, at the symbol's most frequent level: columns
        ``BACKTEST_COLUMNS`` (p-values in [0, 1], ``z2`` dimensionless, ``status`` text).

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=30)
    >>> backtest_table(store.engine)[["symbol", "n", "exceedances", "status"]]
       symbol   n  exceedances status
    0  SYM000  29            0     ok
    1  SYM001  29            0     ok
    """
    if not cache:
        return _backtest_table(engine, window)
    with engine.connect() as conn:
        key = (id(engine), window, _table_key(conn, schema.risk_metrics,
                                              schema.risk_metrics.c.var_log),
               _table_key(conn, schema.returns, schema.returns.c.log_return))  # fmt: skip
    with _CACHE_LOCK:
        if key in _BACKTEST_CACHE:
            _BACKTEST_CACHE.move_to_end(key)
            return _BACKTEST_CACHE[key].copy()
    frame = _backtest_table(engine, window)
    with _CACHE_LOCK:
        _BACKTEST_CACHE[key] = frame
        while len(_BACKTEST_CACHE) > _CACHE_SIZE:
            _BACKTEST_CACHE.popitem(last=False)
    return frame.copy()


def _backtest_table(engine: sa.Engine, window: int) -> pd.DataFrame:
    r, m = schema.returns, schema.risk_metrics
    with engine.connect() as conn:
        counts = conn.execute(sa.select(m.c.symbol, m.c.level, sa.func.count())
                              .group_by(m.c.symbol, m.c.level)).all()  # fmt: skip
        if not counts:
            return pd.DataFrame(columns=BACKTEST_COLUMNS)
        levels = pd.DataFrame(counts, columns=["symbol", "level", "k"])
        levels = levels.sort_values(["symbol", "k", "level"], ascending=[True, False, True])
        levels = levels.drop_duplicates("symbol").set_index("symbol")["level"].astype(float)
        # only the last window + 1 forecast dates matter: the read stays bounded as years pass
        cutoff = conn.execute(sa.select(m.c.date).distinct().order_by(m.c.date.desc())
                              .offset(window).limit(1)).scalar()  # fmt: skip
        since = (m.c.date >= cutoff,) if cutoff is not None else ()
        after = (r.c.date > cutoff,) if cutoff is not None else ()
        frames = []
        for level in levels.unique():  # each symbol at its most frequent level (usually one)
            frames.append(_raw(conn, sa.select(m.c.symbol, _as_text(m.c.date), m.c.var_log,
                                               m.c.es_log)
                               .where(m.c.level == float(level), *since),
                               ["symbol", "date", "var_log", "es_log"])
                          .assign(level=float(level)))  # fmt: skip
        risk = pd.concat(frames, ignore_index=True)
        rets = _raw(conn, sa.select(r.c.symbol, _as_text(r.c.date), r.c.log_return).where(
            r.c.symbol.in_(sa.select(m.c.symbol).distinct()), *after),
            ["symbol", "date", "log_return"])  # fmt: skip
    if len(levels.unique()) > 1:
        risk = risk[levels.reindex(risk["symbol"]).to_numpy() == risk["level"].to_numpy()]
    risk["date"], rets["date"] = pd.to_datetime(risk["date"]), pd.to_datetime(rets["date"])
    fc = risk.rename(columns={"date": "forecast_date"}).sort_values("forecast_date")
    aligned = pd.merge_asof(
        rets.sort_values("date"), fc[["symbol", "forecast_date", "var_log", "es_log"]],
        left_on="date", right_on="forecast_date", by="symbol", allow_exact_matches=False,
        direction="backward",
    ).dropna(subset=["var_log"])  # fmt: skip
    aligned = aligned.sort_values(["symbol", "date"])
    aligned = aligned.groupby("symbol", sort=True).tail(window)
    syms = aligned["symbol"].to_numpy()
    x, v, e = (aligned[c].to_numpy(float) for c in ("log_return", "var_log", "es_log"))
    bounds = np.flatnonzero(np.r_[True, syms[1:] != syms[:-1], True]) if len(syms) else [0]
    found = {}
    for a, b in itertools.pairwise(bounds):
        sym = syms[a]
        found[sym] = _status(x[a:b], v[a:b], e[a:b], float(levels[sym]))
    empty = np.zeros(0)
    rows = [{"symbol": sym, "level": float(levels[sym]),
             **(found[sym] if sym in found else _status(empty, empty, empty, levels[sym]))}
            for sym in sorted(levels.index)]  # fmt: skip
    return pd.DataFrame(rows, columns=BACKTEST_COLUMNS)


def portfolio_history(engine: sa.Engine) -> pd.DataFrame:
    """Portfolio risk by date: ``date``, ``gross_exposure``, ``portfolio_es``,
    ``portfolio_var`` (account currency, a loss positive), ``level``.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> store.log_portfolio("2024-01-02", gross_exposure=5e5, portfolio_es=1.2e4,
    ...                     portfolio_var=9e3, level=0.975)
    >>> portfolio_history(store.engine)
            date  gross_exposure  portfolio_es  portfolio_var  level
    0 2024-01-02        500000.0       12000.0         9000.0  0.975
    """
    t = schema.portfolio_metrics
    cols = ["date", "gross_exposure", "portfolio_es", "portfolio_var", "level"]
    with engine.connect() as conn:
        frame = _frame(conn, sa.select(*(t.c[c] for c in cols)).order_by(t.c.date), cols)
    frame["date"] = _dates(frame["date"])
    return frame.astype({c: float for c in cols[1:]})


def latest_positions(engine: sa.Engine, config: str = "live") -> pd.DataFrame:
    """The book as the decision log shows it: per symbol the signed notional (long +, short -,
    account currency) of the decisions ``config`` acted on during the latest day it acted.

    Examples
    --------
    Two acted long decisions on SPY and a short one on QQQ the same day: the book nets SPY:

    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> base = {"decided_at": dt.datetime(2024, 1, 2, 15, tzinfo=dt.UTC), "config": "live",
    ...         "signal": "mom_a", "horizon": 5, "act": True, "p_win": 0.6}
    >>> _ = store.append_decisions([
    ...     {**base, "symbol": "SPY", "side": "long", "notional": 10_000.0},
    ...     {**base, "symbol": "SPY", "side": "long", "notional": 5_000.0},
    ...     {**base, "symbol": "QQQ", "side": "short", "notional": 8_000.0}])
    >>> latest_positions(store.engine)
      symbol  notional
    0    QQQ   -8000.0
    1    SPY   15000.0
    """
    t = schema.decisions
    acted = (t.c.act.is_(True), t.c.config == config)
    with engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(t.c.decided_at)).where(*acted)).scalar()
        frame = pd.DataFrame(columns=["decided_at", "symbol", "side", "notional"])
        if last is not None:  # that UTC day's acted decisions (an index range on decided_at)
            when = pd.Timestamp(last)
            when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
            start = when.normalize().to_pydatetime()
            q = sa.select(t.c.decided_at, t.c.symbol, t.c.side, t.c.notional).where(
                *acted, t.c.decided_at >= start, t.c.decided_at < start + dt.timedelta(days=1)
            )
            frame = _frame(conn, q, ["decided_at", "symbol", "side", "notional"])
    if frame.empty:
        return pd.DataFrame({"symbol": pd.Series(dtype=str), "notional": pd.Series(dtype=float)})
    sign = np.where(frame["side"].to_numpy() == "short", -1.0, 1.0)
    signed = sign * frame["notional"].to_numpy(float)
    out = pd.Series(signed, index=frame["symbol"].to_numpy()).groupby(level=0).sum()
    return out.rename("notional").rename_axis("symbol").reset_index()


def es_contributions(engine: sa.Engine, config: str = "live") -> pd.DataFrame:
    """Each position's contribution to the latest portfolio ES.

    An Euler allocation under a Gaussian approximation, ``c_i = x_i s_i (R x s)_i / sigma_p``
    with ``x`` the signed notionals (:func:`latest_positions`), ``s`` the latest per-symbol
    daily volatilities and ``R`` the shrunk correlation of the last ``CORRELATION_WINDOW``
    days, scaled so the contributions add up to the stored ``portfolio_es``. The store keeps
    no open book, so the positions are those the decision log shows (an approximation).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A read-only engine.
    config : str
        The engine configuration whose decisions make the book (default ``"live"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol``, ``notional`` (signed, account currency), ``contribution``
        (account currency) and ``share`` (of the ES, fraction); empty without positions.

    Examples
    --------
    The contributions add up to the stored portfolio ES:

    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=6, n_days=10)
    >>> c = es_contributions(store.engine)
    >>> es = portfolio_history(store.engine)["portfolio_es"].iloc[-1]
    >>> bool(np.isclose(c["contribution"].sum(), es)), round(float(c["share"].sum()), 6)
    (True, 1.0)
    """
    pos = latest_positions(engine, config)
    cols = ["symbol", "notional", "contribution", "share"]
    port = portfolio_history(engine)
    if pos.empty or port.empty:
        return pd.DataFrame({c: pd.Series(dtype=str if c == "symbol" else float) for c in cols})
    m = schema.risk_metrics
    syms = pos["symbol"].tolist()
    with engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(m.c.date))).scalar()
        vol = _frame(conn, sa.select(m.c.symbol, m.c.volatility).where(
            m.c.date == latest, m.c.symbol.in_(syms)), ["symbol", "volatility"])  # fmt: skip
    s = vol.groupby("symbol")["volatility"].mean().reindex(syms).fillna(0.0).to_numpy(float)
    x = pos["notional"].to_numpy(float)
    symbols, corr = current_correlation(engine, syms)
    order = {sym: i for i, sym in enumerate(symbols)}
    r = np.eye(len(syms))
    idx = [order.get(sym) for sym in syms]
    for a, ia in enumerate(idx):
        for b, ib in enumerate(idx):
            if ia is not None and ib is not None:
                r[a, b] = corr[ia, ib]
    xs = x * s
    cov_x = r @ xs
    var_p = float(xs @ cov_x)
    es = float(port["portfolio_es"].iloc[-1])
    contrib = xs * cov_x / var_p * es if var_p > 0 else np.zeros_like(xs)
    share = contrib / es if es else np.zeros_like(contrib)
    return pd.DataFrame({"symbol": syms, "notional": x, "contribution": contrib, "share": share})


# ---------------------------------------------------------------------------- correlation
def correlation_history(engine: sa.Engine) -> pd.DataFrame:
    """Correlation metrics by date: ``date``, ``average_correlation``, ``concentration_score``
    (in [0, 1]), ``effective_bets`` (in [1, N]), ``breakdown_p``, ``breakdown_score`` (NaN when
    not computed).

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> store.log_correlation("2024-01-02", average_correlation=0.3, concentration_score=0.6,
    ...                       effective_bets=2.5)
    >>> correlation_history(store.engine)[["date", "average_correlation", "breakdown_p"]]
            date  average_correlation  breakdown_p
    0 2024-01-02                  0.3          NaN
    """
    t = schema.correlation_metrics
    cols = ["date", "average_correlation", "concentration_score", "effective_bets",
            "breakdown_p", "breakdown_score"]  # fmt: skip
    with engine.connect() as conn:
        frame = _frame(conn, sa.select(*(t.c[c] for c in cols)).order_by(t.c.date), cols)
    frame["date"] = _dates(frame["date"])
    return frame.astype({c: float for c in cols[1:]})


def current_correlation(
    engine: sa.Engine, symbols: list[str] | None = None, window: int = CORRELATION_WINDOW
) -> tuple[list[str], np.ndarray]:
    """The current shrunk normal-scores correlation (the engine's estimator,
    :func:`bayes_mem.live.correlation.shrunk_correlation`).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A read-only engine.
    symbols : list of str or None
        The symbols (None: those with a risk forecast, else every symbol with returns); kept
        are those with a return on at least 90 % of the dates that vary (a missing day counts
        as a return of 0).
    window : int
        The last ``window`` return dates of the store.

    Returns
    -------
    symbols : list of str
        The symbols kept, sorted.
    corr : numpy.ndarray, shape (N, N)
        Their correlation; fewer than 2 symbols (or 3 dates) give no symbols and a (0, 0)
        matrix.

    Examples
    --------
    Two symbols driven by one factor, and a third of its own:

    >>> from bayes_mem.store import Store
    >>> rng = np.random.default_rng(0)
    >>> f = rng.standard_normal(60)
    >>> r = {"A": f + 0.3 * rng.standard_normal(60), "B": f + 0.3 * rng.standard_normal(60),
    ...      "C": rng.standard_normal(60)}
    >>> days = pd.bdate_range("2024-01-02", periods=60)
    >>> frame = pd.concat([pd.DataFrame({"symbol": s, "date": days, "return": 0.01 * x})
    ...                    for s, x in r.items()])
    >>> store = Store("sqlite://")  # in memory
    >>> _ = store.ingest_returns(frame, kind="log")
    >>> symbols, corr = current_correlation(store.engine, ["A", "B", "C"])
    >>> symbols, corr.round(1)  # A and B near their true 1 / 1.09 = 0.92, shrunk
    (['A', 'B', 'C'], array([[1. , 0.8, 0.1],
           [0.8, 1. , 0.1],
           [0.1, 0.1, 1. ]]))
    """
    r = schema.returns
    if symbols is None:  # before this function's connection: one connection at a time
        symbols = risk_symbols(engine) or None
    with engine.connect() as conn:
        dates = conn.execute(sa.select(r.c.date).distinct().order_by(r.c.date.desc())
                             .limit(window)).scalars().all()  # fmt: skip
        if not dates:
            return [], np.zeros((0, 0))
        q = sa.select(_as_text(r.c.date), r.c.symbol, r.c.log_return).where(r.c.date >= min(dates))
        if symbols is not None:
            q = q.where(r.c.symbol.in_(list(symbols)))
        frame = _raw(conn, q, ["date", "symbol", "log_return"])
    panel = frame.pivot(index="date", columns="symbol", values="log_return").sort_index()
    panel = panel.loc[:, panel.notna().mean() >= 0.9].fillna(0.0)
    panel = panel.loc[:, panel.std() > 0]
    panel = panel.reindex(columns=sorted(panel.columns))
    if panel.shape[1] < 2 or panel.shape[0] < 3:
        return [], np.zeros((0, 0))
    corr, _ = shrunk_correlation(panel.to_numpy(float))
    return list(panel.columns), corr


# ---------------------------------------------------------------------------- signals
def latest_signal_quality(engine: sa.Engine) -> pd.DataFrame:
    """Each registered signal's latest signal-quality snapshot (signals never logged are left
    out), with its ``family`` and ``symbol``: columns ``signal``, ``family``, ``symbol``,
    ``as_of``, ``trades``, ``posterior_mean`` (win rate), ``credible_low``, ``credible_high``
    (its 90 % interval), ``p_above_break_even``, ``total_pnl`` (account currency),
    ``sharpe``; sorted by signal. Two primary-key lookups per signal (its latest ``as_of``,
    then that row), never a scan of the whole history.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=4)
    >>> latest_signal_quality(store.engine)[["signal", "family", "symbol", "trades"]]
          signal          family  symbol  trades
    0  sig_00000        momentum  SYM000      10
    1  sig_00001  mean_reversion  SYM001       8
    2  sig_00002        breakout  SYM000       7
    """
    q_, s, link = schema.signal_quality, schema.signals, schema.signal_symbols
    cols = ["signal", "family", "symbol", "as_of", "trades", "posterior_mean", "credible_low",
            "credible_high", "p_above_break_even", "total_pnl", "sharpe"]  # fmt: skip
    q2 = q_.alias("q2")
    latest = sa.select(sa.func.max(q2.c.as_of)).where(q2.c.signal == s.c.name).scalar_subquery()
    query = (
        sa.select(s.c.name, s.c.family, link.c.symbol, *(q_.c[c] for c in cols[3:]))
        .select_from(s.join(q_, sa.and_(q_.c.signal == s.c.name, q_.c.as_of == latest))
                     .outerjoin(link, link.c.signal == s.c.name))
        .order_by(s.c.name)
    )  # fmt: skip
    with engine.connect() as conn:
        frame = _frame(conn, query, cols)
    frame["symbol"] = frame["symbol"].fillna("")
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame.astype({"trades": "int64", **{c: float for c in cols[5:]}})


def signal_history(engine: sa.Engine, signal: str) -> pd.DataFrame:
    """One signal's snapshots by ``as_of`` (ascending): its posterior mean win rate and 90 %
    credible interval over time, trades and total PnL.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> from bayes_mem.dashboard.synthetic import fill_store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=4)
    >>> h = signal_history(store.engine, "sig_00000")
    >>> len(h), bool(h["trades"].is_monotonic_increasing)  # trades only accumulate
    (4, True)
    >>> low, mean, high = h["credible_low"], h["posterior_mean"], h["credible_high"]
    >>> bool(((low <= mean) & (mean <= high)).all())
    True
    """
    t = schema.signal_quality
    cols = ["as_of", "trades", "posterior_mean", "credible_low", "credible_high",
            "p_above_break_even", "total_pnl"]  # fmt: skip
    q = sa.select(*(t.c[c] for c in cols)).where(t.c.signal == signal).order_by(t.c.as_of)
    with engine.connect() as conn:
        frame = _frame(conn, q, cols)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True).dt.tz_localize(None)
    return frame.astype({"trades": "int64", **{c: float for c in cols[2:]}})


def family_priors(models: Path | None) -> pd.DataFrame:
    """Each family's pooled prior in the active prior set (empty without one): ``family``,
    ``mean`` (the family's mean win rate, posterior mean over draws), ``mean_low``,
    ``mean_high`` (its 5-95 % range), ``kappa`` (concentration, pseudo-trades, posterior
    median), ``prior_alpha``, ``prior_beta`` (the point Beta prior the decider uses),
    ``version``.

    Examples
    --------
    The active prior set's family: mean of the draws' means (0.54 + 0.56) / 2 = 0.55:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, activate, write_prior_set
    >>> prior_set = PriorSet(1, "2024-01-02T22:00:00+00:00", "2024-01-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = write_prior_set(prior_set, tmp.name)
    >>> _ = activate(tmp.name, 1)
    >>> family_priors(Path(tmp.name))[["family", "mean", "kappa", "version"]]
         family  mean  kappa  version
    0  momentum  0.55   50.0        1
    >>> len(family_priors(None))  # no registry
    0
    >>> tmp.cleanup()
    """
    cols = ["family", "mean", "mean_low", "mean_high", "kappa", "prior_alpha", "prior_beta",
            "version"]  # fmt: skip
    ps = _active_prior_set(models)
    if ps is None:
        return pd.DataFrame(columns=cols)
    rows = []
    for name, fam in sorted(ps.families.items()):
        point = fam.point_prior()
        rows.append({
            "family": name, "mean": float(np.mean(fam.mean)),
            "mean_low": float(np.quantile(fam.mean, 0.05)),
            "mean_high": float(np.quantile(fam.mean, 0.95)),
            "kappa": float(np.median(fam.kappa)), "prior_alpha": float(point.a),
            "prior_beta": float(point.b), "version": ps.version,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _active_prior_set(models: Path | None) -> Any:
    if models is None:
        return None
    from bayes_mem.live.prior_set import active_version, load_prior_set

    try:
        version = active_version(models)
        return None if version is None else load_prior_set(models, version)
    except (ValueError, OSError):
        return None


# ---------------------------------------------------------------------------- decisions
def _explanation(detail: str) -> str:
    try:
        doc = json.loads(detail)
    except (TypeError, ValueError):
        return ""
    if not isinstance(doc, dict):
        return ""
    for name in ("explain", "explanation"):  # the engine's Decision.explain(), or a summary
        text = doc.get(name)
        if isinstance(text, str) and text:
            return text[:500]
    parts = []
    for name, value in doc.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={_short(v)}" for k, v in list(value.items())[:4])
            parts.append(f"{name}: {inner}")
        else:
            parts.append(f"{name}={_short(value)}")
    return "; ".join(parts)[:500]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list | dict):
        return f"[{len(value)}]"
    return str(value)[:40]


def decision_log(engine: sa.Engine, limit: int = DECISION_ROWS) -> pd.DataFrame:
    """The latest ``limit`` decisions, newest first: ``id``, ``decided_at`` (UTC), ``config``,
    ``key`` (the decision id, "" if none), ``signal``, ``symbol``, ``side``, ``horizon``
    (trading days), ``act``, ``notional`` (account currency), ``p_win``, ``binding`` (the limit
    that bound the size, "" if none), ``prior_version`` and ``why`` (the engine's
    ``Decision.explain()``, else the detail's factors in short).

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> _ = store.append_decisions([{"decided_at": dt.datetime(2024, 1, 2, 15, tzinfo=dt.UTC),
    ...     "config": "live", "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5,
    ...     "act": True, "notional": 10_000.0, "p_win": 0.6, "binding": "kelly",
    ...     "detail": {"explain": "mom_a -> long SPY: p=0.6, kelly bound"}}])
    >>> decision_log(store.engine)[["id", "signal", "act", "binding", "why"]]
       id signal   act binding                                    why
    0   1  mom_a  True   kelly  mom_a -> long SPY: p=0.6, kelly bound
    """
    t = schema.decisions
    cols = ["id", "decided_at", "config", "key", "signal", "symbol", "side", "horizon", "act",
            "notional", "p_win", "binding", "prior_version", "detail"]  # fmt: skip
    q = sa.select(*(t.c[c] for c in cols)).order_by(t.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        frame = _frame(conn, q, cols)
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    frame["binding"] = frame["binding"].fillna("")
    frame["key"] = frame["key"].fillna("")
    frame["why"] = [_explanation(d) for d in frame.pop("detail")]
    return frame.astype({"id": "int64", "horizon": "int64", "act": bool, "notional": float,
                         "p_win": float, "prior_version": "Int64"})  # fmt: skip


SIDE_BY_SIDE_COLUMNS = ["key", "decided_at", "signal", "symbol", "side", "live_act",
                        "live_notional", "live_binding", "shadow", "shadow_act",
                        "shadow_notional", "shadow_binding"]  # fmt: skip


def side_by_side(log: pd.DataFrame) -> pd.DataFrame:
    """The live configuration's decisions next to the other configuration's on the same event
    (rows of :func:`decision_log` sharing a ``key``): ``key``, ``decided_at``, ``signal``,
    ``symbol``, ``side``, ``live_act``, ``live_notional``, ``live_binding``, ``shadow`` (the
    other configuration's name), ``shadow_act``, ``shadow_notional``, ``shadow_binding``;
    newest first. Events only one configuration decided are left out.

    Examples
    --------
    The live and shadow decisions of one event (key ``e1``), next to each other:

    >>> log = pd.DataFrame({"key": ["e1", "e1", "e2"], "config": ["live", "shadow", "live"],
    ...     "decided_at": pd.to_datetime(["2024-01-02 15:00"] * 3, utc=True),
    ...     "signal": "mom_a", "symbol": "SPY", "side": "long", "act": [True, False, True],
    ...     "notional": [10_000.0, 0.0, 5_000.0], "binding": ["kelly", "", "cvar"]})
    >>> side_by_side(log)[["key", "live_act", "live_notional", "shadow", "shadow_act"]]
      key  live_act  live_notional  shadow  shadow_act
    0  e1      True        10000.0  shadow       False
    """
    keyed = log[log["key"].fillna("") != ""]
    live = keyed[keyed["config"] == "live"]
    other = keyed[keyed["config"] != "live"].drop_duplicates("key")
    if live.empty or other.empty:
        return pd.DataFrame(columns=SIDE_BY_SIDE_COLUMNS)
    both = live.merge(other, on="key", suffixes=("", "_o"))
    out = pd.DataFrame({
        "key": both["key"], "decided_at": both["decided_at"], "signal": both["signal"],
        "symbol": both["symbol"], "side": both["side"], "live_act": both["act"],
        "live_notional": both["notional"], "live_binding": both["binding"],
        "shadow": both["config_o"], "shadow_act": both["act_o"],
        "shadow_notional": both["notional_o"], "shadow_binding": both["binding_o"],
    })  # fmt: skip
    return out.sort_values("decided_at", ascending=False).reset_index(drop=True)


def config_summary(engine: sa.Engine) -> pd.DataFrame:
    """The live and shadow configurations side by side, one row per configuration over the
    whole log: ``config``, ``decisions``, ``acted``, ``act_rate`` (fraction), ``notional``
    (total acted, account currency), ``mean_p_win``, ``last_decided_at``; "live" first.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> base = {"decided_at": dt.datetime(2024, 1, 2, 15, tzinfo=dt.UTC), "signal": "mom_a",
    ...         "symbol": "SPY", "side": "long", "horizon": 5}
    >>> _ = store.append_decisions([
    ...     {**base, "config": "live", "act": True, "notional": 10_000.0, "p_win": 0.6},
    ...     {**base, "config": "live", "act": False, "notional": 0.0, "p_win": 0.4},
    ...     {**base, "config": "shadow", "act": True, "notional": 7_500.0, "p_win": 0.6}])
    >>> config_summary(store.engine)[["config", "decisions", "acted", "act_rate", "notional"]]
       config  decisions  acted  act_rate  notional
    0    live          2      1       0.5   10000.0
    1  shadow          1      1       1.0    7500.0
    """
    t = schema.decisions
    q = sa.select(
        t.c.config,
        sa.func.count(),
        sa.func.sum(sa.case((t.c.act, 1), else_=0)),
        sa.func.sum(t.c.notional),
        sa.func.avg(t.c.p_win),
        sa.func.max(t.c.decided_at),
    ).group_by(t.c.config)
    cols = ["config", "decisions", "acted", "notional", "mean_p_win", "last_decided_at"]
    with engine.connect() as conn:
        frame = _frame(conn, q, cols)
    frame = frame.astype({"decisions": "int64", "acted": "int64", "notional": float,
                          "mean_p_win": float})  # fmt: skip
    frame["act_rate"] = frame["acted"] / frame["decisions"].clip(lower=1)
    frame["last_decided_at"] = pd.to_datetime(frame["last_decided_at"], utc=True)
    frame["_order"] = frame["config"] != "live"
    frame = frame.sort_values(["_order", "config"]).drop(columns="_order")
    return frame[["config", "decisions", "acted", "act_rate", "notional", "mean_p_win",
                  "last_decided_at"]].reset_index(drop=True)  # fmt: skip


# ---------------------------------------------------------------------------- nightly job
def nightly_runs(
    models: Path | None, today: dt.date | None = None, max_age_days: int | None = None
) -> pd.DataFrame:
    """One row per prior-set version (newest first): ``version``, ``created_at``, ``active``,
    ``gate`` ("passed" / "rejected" / "unreadable"), ``reasons`` (the gate's reasons, joined),
    per component ``<name>_version``, ``<name>_age_days`` (calendar days from its
    ``data_through`` to ``today``) and ``<name>_verdict`` (that night's verdict on the
    component: refreshed, or why it was kept or rejected), ``stale`` (components older than
    ``max_age_days``, the engine's default when None; "" when none) and ``report`` (the
    report's file name under ``models/reports``, "" when there is none).

    Examples
    --------
    A registry of one version, active, whose win-rate component's data end 2 January; on
    12 January it is 10 days old:

    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, activate, write_prior_set
    >>> prior_set = PriorSet(1, "2024-01-02T22:00:00+00:00", "2024-01-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()
    >>> _ = write_prior_set(prior_set, tmp.name)
    >>> _ = activate(tmp.name, 1)
    >>> runs = nightly_runs(Path(tmp.name), today=dt.date(2024, 1, 12))
    >>> runs[["version", "active", "gate", "winrate_age_days", "stale"]]
       version  active    gate  winrate_age_days stale
    0        1    True  passed                10
    >>> tmp.cleanup()
    """
    from bayes_mem.live.engine import DEFAULT_MAX_COMPONENT_AGE_DAYS
    from bayes_mem.live.prior_set import (
        COMPONENTS,
        active_version,
        gate_passed,
        list_versions,
        load_prior_set,
    )

    limit = DEFAULT_MAX_COMPONENT_AGE_DAYS if max_age_days is None else max_age_days
    today = today or dt.datetime.now(dt.UTC).date()
    cols = ["version", "created_at", "active", "gate", "reasons"]
    for comp in COMPONENTS:
        cols += [f"{comp}_version", f"{comp}_age_days", f"{comp}_verdict"]
    cols += ["stale", "report"]
    if models is None:
        return pd.DataFrame(columns=cols)
    try:
        active = active_version(models)
    except ValueError:
        active = None
    rows = []
    for v in reversed(list_versions(models)):
        row: dict[str, Any] = {c: None for c in cols}
        row.update(version=v, active=v == active, stale="", reasons="")
        report = models / "reports" / f"v{v:06d}.html"
        row["report"] = report.name if report.is_file() else ""
        try:
            ps = load_prior_set(models, v)
        except ValueError as exc:
            row.update(gate="unreadable", reasons=str(exc)[:300], created_at="")
            rows.append(row)
            continue
        reasons = ps.diagnostics.get("reasons") or []
        row.update(created_at=ps.created_at, gate="passed" if gate_passed(ps) else "rejected",
                   reasons="; ".join(str(r) for r in reasons) if isinstance(reasons, list)
                   else str(reasons))  # fmt: skip
        verdicts = ps.diagnostics.get("components")
        for comp, verdict in verdicts.items() if isinstance(verdicts, dict) else ():
            if f"{comp}_verdict" in row and isinstance(verdict, dict):
                why = verdict.get("reasons") or []
                row[f"{comp}_verdict"] = " ".join(
                    [
                        str(verdict.get("status") or verdict.get("kind") or ""),
                        *(f"({r})" for r in (why if isinstance(why, list) else [why])),
                    ]
                ).strip()[:300]
        stale = []
        for comp, src in (ps.components or {}).items():
            if src is None:
                continue
            age = src.age_days(today)
            row[f"{comp}_version"], row[f"{comp}_age_days"] = src.version, age
            if age is not None and age > limit:
                stale.append(f"{comp} ({age} d)")
        row["stale"] = ", ".join(stale)
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------- regime
def regime_latest(engine: sa.Engine) -> pd.DataFrame:
    """P(change) per symbol at the latest regime date: ``symbol``, ``date``, ``p_change``,
    ``alarm`` (``p_change >= ALARM_P_CHANGE``); highest first.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> store.log_regime("2024-01-02", {"SPY": 0.1, "QQQ": 0.05})
    >>> store.log_regime("2024-01-03", {"SPY": 0.7, "QQQ": 0.2})
    >>> regime_latest(store.engine)
      symbol       date  p_change  alarm
    0    SPY 2024-01-03       0.7   True
    1    QQQ 2024-01-03       0.2  False
    """
    t = schema.regime_metrics
    latest = sa.select(sa.func.max(t.c.date)).scalar_subquery()
    q = sa.select(t.c.symbol, t.c.date, t.c.p_change).where(t.c.date == latest)
    with engine.connect() as conn:
        frame = _frame(conn, q, ["symbol", "date", "p_change"])
    frame["date"] = _dates(frame["date"])
    frame = frame.astype({"p_change": float})
    frame["alarm"] = frame["p_change"] >= ALARM_P_CHANGE
    return frame.sort_values(["p_change", "symbol"], ascending=[False, True]).reset_index(drop=True)


def regime_history(engine: sa.Engine, symbol: str) -> pd.DataFrame:
    """One symbol's P(change) by date: ``date``, ``p_change``.

    Examples
    --------
    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> store.log_regime("2024-01-02", {"SPY": 0.1, "QQQ": 0.05})
    >>> store.log_regime("2024-01-03", {"SPY": 0.7, "QQQ": 0.2})
    >>> regime_history(store.engine, "SPY")
            date  p_change
    0 2024-01-02       0.1
    1 2024-01-03       0.7
    """
    t = schema.regime_metrics
    q = sa.select(t.c.date, t.c.p_change).where(t.c.symbol == symbol).order_by(t.c.date)
    with engine.connect() as conn:
        frame = _frame(conn, q, ["date", "p_change"])
    frame["date"] = _dates(frame["date"])
    return frame.astype({"p_change": float})


def regime_alarms(engine: sa.Engine, limit: int = 200) -> pd.DataFrame:
    """The latest alarms (``p_change >= ALARM_P_CHANGE``) of any day, newest first: ``date``,
    ``symbol``, ``p_change``.

    Examples
    --------
    Only P(change) at or above ``ALARM_P_CHANGE`` (0.5) is an alarm:

    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # in memory
    >>> store.log_regime("2024-01-02", {"SPY": 0.6, "QQQ": 0.05})
    >>> store.log_regime("2024-01-03", {"SPY": 0.7, "QQQ": 0.5})
    >>> regime_alarms(store.engine)
            date symbol  p_change
    0 2024-01-03    QQQ       0.5
    1 2024-01-03    SPY       0.7
    2 2024-01-02    SPY       0.6
    """
    t = schema.regime_metrics
    q = (sa.select(t.c.date, t.c.symbol, t.c.p_change).where(t.c.p_change >= ALARM_P_CHANGE)
         .order_by(t.c.date.desc(), t.c.symbol).limit(limit))  # fmt: skip
    with engine.connect() as conn:
        frame = _frame(conn, q, ["date", "symbol", "p_change"])
    frame["date"] = _dates(frame["date"])
    return frame.astype({"p_change": float})
