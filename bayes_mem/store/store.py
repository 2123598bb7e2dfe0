"""The store: signals, trade outcomes, daily returns, prior-set records and logged metrics.

SQLite file by default (WAL journal, ``synchronous=FULL`` so a committed outcome survives a crash,
foreign keys on, the data directory and file owner-only), any SQLAlchemy 2 URL otherwise.
Every write is one transaction: a batch is written whole or not at all. SQL goes through
SQLAlchemy expressions only (bound parameters).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bayes_mem.live._validate import check_name
from bayes_mem.live.decider import check_outcome
from bayes_mem.store import schema
from bayes_mem.store.ingest import (
    IngestError,
    Problem,
    line_of,
    parse_bool,
    parse_date,
    parse_float,
    parse_name,
    parse_timestamp,
    read_table,
    require_columns,
)

DEFAULT_DATA_DIR = Path("data")
DB_FILENAME = "bayes_mem.sqlite"


class DuplicateTradeError(ValueError):
    """An outcome with this trade id is already stored."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sqlite_url(data_dir: str | Path) -> str:
    return f"sqlite:///{Path(data_dir) / DB_FILENAME}"


class Store:
    """Open (creating or upgrading as needed) the store at ``url``, or a SQLite file under
    ``data_dir`` when no URL is given."""

    def __init__(self, url: str | None = None, *, data_dir: str | Path = DEFAULT_DATA_DIR) -> None:
        if url is None:
            data_dir = Path(data_dir)
            data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(data_dir, 0o700)
            url = sqlite_url(data_dir)
            db = data_dir / DB_FILENAME
            if not db.exists():
                db.touch(mode=0o600)
        self.url = url
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            path = self.engine.url.database
            file = path and path != ":memory:" and not path.startswith("file:")
            if file and not Path(path).exists():  # owner-only; -wal/-shm get the same mode
                Path(path).touch(mode=0o600)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self.schema_version = schema.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """A write transaction (commit on success, rollback on any exception); on SQLite it holds
        the database's write lock from its first statement, so read-then-write is safe."""
        return schema.write_transaction(self.engine)

    # ------------------------------------------------------------------ signals
    def register_signals(self, signals: Mapping[str, str] | pd.DataFrame | str | Path) -> int:
        """Add signals (name -> family); existing ones must keep their family. Returns how many
        were new."""
        if isinstance(signals, Mapping):
            frame, from_csv = (
                pd.DataFrame({"name": list(signals), "family": list(signals.values())}),
                False,
            )
        else:
            frame, from_csv = read_table(signals)
        require_columns(frame, ("name", "family"), "signals")
        rows, problems, seen = [], [], {}
        for i, (name, family) in enumerate(zip(frame["name"], frame["family"], strict=True)):
            line = line_of(frame, i, from_csv)
            try:
                n = parse_name(name)
                f = parse_name(family)
            except ValueError as exc:
                problems.append(Problem(line, "name/family", str(exc)))
                continue
            if n in seen and seen[n] != f:
                problems.append(Problem(line, "family", f"signal {n!r} given two families"))
            seen[n] = f
            rows.append({"name": n, "family": f})

        def write() -> int:
            found = list(problems)
            with self.transaction() as conn:
                existing = self._families(conn, list(seen))
                for i, row in enumerate(rows):
                    old = existing.get(row["name"])
                    if old is not None and old != row["family"]:
                        found.append(
                            Problem(line_of(frame, i, from_csv), "family",
                                    f"signal {row['name']!r} is stored in family {old!r}")
                        )  # fmt: skip
                if found:
                    raise IngestError("signals", found)
                new = [
                    r for r in {r["name"]: r for r in rows}.values() if r["name"] not in existing
                ]
                now = _utcnow()
                if new:
                    conn.execute(schema.signals.insert(), [{**r, "created_at": now} for r in new])
            return len(new)

        return _once_more_on_conflict(write, "signals")

    @staticmethod
    def _families(conn: sa.Connection, names: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        t = schema.signals
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            for name, family in conn.execute(
                sa.select(t.c.name, t.c.family).where(t.c.name.in_(chunk))
            ):
                out[name] = family
        return out

    def signals(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(sa.select(schema.signals.c.name, schema.signals.c.family)).all()
            )

    # ------------------------------------------------------------------ outcomes
    def append_outcome(
        self,
        trade_id: str | int,
        signal: str,
        won: bool,
        pnl: float,
        *,
        settled_at: dt.datetime | None = None,
        opened_at: dt.datetime | None = None,
    ) -> None:
        """Append one settled trade durably; a trade id already stored raises
        :class:`DuplicateTradeError` and writes nothing."""
        won, pnl, tid = check_outcome(won, pnl, trade_id)
        if tid is None:
            raise TypeError("trade_id is required in the store")
        signal = check_name(signal)
        settled = parse_timestamp(settled_at if settled_at is not None else _utcnow())
        opened = parse_timestamp(opened_at, optional=True)
        if opened is not None and opened > settled:
            raise ValueError(f"opened_at {opened} is after settled_at {settled}")
        row = {
            "trade_id": tid,
            "signal": signal,
            "won": won,
            "pnl": pnl,
            "settled_at": settled.to_pydatetime(),
            "opened_at": None if opened is None else opened.to_pydatetime(),
            "recorded_at": _utcnow(),
        }
        try:
            with self.transaction() as conn:
                if signal not in self._families(conn, [signal]):
                    raise ValueError(f"unknown signal {signal!r}; register it first")
                conn.execute(schema.outcomes.insert(), [row])
        except sa.exc.IntegrityError as exc:
            if self.has_trade(tid):
                raise DuplicateTradeError(f"trade_id {tid!r} was already recorded") from None
            raise ValueError(f"outcome refused by the database: {exc.orig}") from exc

    def has_trade(self, trade_id: str | int) -> bool:
        t = schema.outcomes
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(t.c.seq).where(t.c.trade_id == str(trade_id))).first()
                is not None
            )

    def ingest_outcomes(self, source: pd.DataFrame | str | Path) -> int:
        """Append a batch of outcomes (columns trade_id, signal, won, pnl, settled_at and
        optionally opened_at). Any bad row refuses the whole batch, reported by line."""
        frame, from_csv = read_table(source)
        require_columns(frame, ("trade_id", "signal", "won", "pnl", "settled_at"), "outcomes")
        opened_col = frame["opened_at"] if "opened_at" in frame.columns else [None] * len(frame)
        rows, problems, ids = [], [], {}
        now = _utcnow()
        for i, (tid, sig, won, pnl, settled, opened) in enumerate(
            zip(
                frame["trade_id"],
                frame["signal"],
                frame["won"],
                frame["pnl"],
                frame["settled_at"],
                opened_col,
                strict=True,
            )
        ):
            line = line_of(frame, i, from_csv)
            try:
                row = {
                    "trade_id": parse_name(tid),
                    "signal": parse_name(sig),
                    "won": parse_bool(won),
                    "pnl": parse_float(pnl),
                    "settled_at": parse_timestamp(settled),
                    "opened_at": parse_timestamp(opened, optional=True),
                }
            except ValueError as exc:
                problems.append(Problem(line, "value", str(exc)))
                continue
            if (row["won"] and row["pnl"] < 0) or (not row["won"] and row["pnl"] > 0):
                problems.append(
                    Problem(line, "pnl", f"pnl={row['pnl']!r} contradicts won={row['won']!r}")
                )
            if row["opened_at"] is not None and row["opened_at"] > row["settled_at"]:
                problems.append(Problem(line, "opened_at", "after settled_at"))
            if row["trade_id"] in ids:
                problems.append(
                    Problem(
                        line, "trade_id", f"{row['trade_id']!r} repeats line {ids[row['trade_id']]}"
                    )
                )
            ids[row["trade_id"]] = line
            row["settled_at"] = row["settled_at"].to_pydatetime()
            row["opened_at"] = (
                None if row["opened_at"] is None else row["opened_at"].to_pydatetime()
            )
            row["recorded_at"] = now
            rows.append((line, row))

        def write() -> int:
            found = list(problems)
            with self.transaction() as conn:
                known = self._families(conn, sorted({r["signal"] for _, r in rows}))
                stored = self._stored_trades(conn, list(ids))
                for line, row in rows:
                    if row["signal"] not in known:
                        found.append(Problem(line, "signal", f"unknown signal {row['signal']!r}"))
                    if row["trade_id"] in stored:
                        found.append(
                            Problem(line, "trade_id", f"{row['trade_id']!r} is already stored")
                        )
                if found:
                    raise IngestError("outcomes", sorted(found, key=lambda p: str(p.line)))
                if rows:
                    conn.execute(schema.outcomes.insert(), [r for _, r in rows])
            return len(rows)

        return _once_more_on_conflict(write, "outcomes")

    @staticmethod
    def _stored_trades(conn: sa.Connection, ids: list[str]) -> set[str]:
        t = schema.outcomes
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            out.update(
                r[0] for r in conn.execute(sa.select(t.c.trade_id).where(t.c.trade_id.in_(chunk)))
            )
        return out

    def outcomes(self) -> pd.DataFrame:
        """Every stored outcome in arrival order."""
        t = schema.outcomes
        cols = [t.c.seq, t.c.trade_id, t.c.signal, t.c.won, t.c.pnl, t.c.opened_at, t.c.settled_at]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).order_by(t.c.seq)).all()
        return pd.DataFrame(rows, columns=[c.name for c in cols])

    def signal_counts(self, *, settled_through: dt.datetime | None = None) -> pd.DataFrame:
        """Per signal: family, wins and trades (settled up to ``settled_through``, inclusive):
        all the win-rate model needs."""
        s, o = schema.signals, schema.outcomes
        cond = sa.true() if settled_through is None else o.c.settled_at <= settled_through
        wins = sa.func.coalesce(sa.func.sum(sa.case((o.c.won, 1), else_=0)), 0)
        q = (
            sa.select(
                s.c.name, s.c.family, wins.label("wins"), sa.func.count(o.c.seq).label("trades")
            )
            .select_from(s.outerjoin(o, sa.and_(o.c.signal == s.c.name, cond)))
            .group_by(s.c.name, s.c.family)
            .order_by(s.c.family, s.c.name)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        out = pd.DataFrame(rows, columns=["signal", "family", "wins", "trades"])
        return out.astype({"wins": "int64", "trades": "int64"})

    # ------------------------------------------------------------------ returns
    def ingest_returns(self, source: pd.DataFrame | str | Path, *, kind: str) -> int:
        """Append daily returns (columns symbol, date, return); ``kind`` says whether they are
        "log" or "simple" returns (stored as log returns). Any bad row refuses the batch."""
        if kind not in ("log", "simple"):
            raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
        frame, from_csv = read_table(source)
        require_columns(frame, ("symbol", "date", "return"), "returns")
        rows, problems, seen = [], [], {}
        for i, (sym, day, ret) in enumerate(
            zip(frame["symbol"], frame["date"], frame["return"], strict=True)
        ):
            line = line_of(frame, i, from_csv)
            try:
                symbol, date, value = parse_name(sym), parse_date(day).date(), parse_float(ret)
            except ValueError as exc:
                problems.append(Problem(line, "value", str(exc)))
                continue
            if kind == "simple":
                if value <= -1.0:
                    problems.append(Problem(line, "return", f"simple return {value!r} <= -1"))
                    continue
                value = float(np.log1p(value))
            key = (symbol, date)
            if key in seen:
                problems.append(
                    Problem(line, "date", f"{symbol!r} {date} repeats line {seen[key]}")
                )
            seen[key] = line
            rows.append((line, {"symbol": symbol, "date": date, "log_return": value}))
        t = schema.returns

        def write() -> int:
            found = list(problems)
            with self.transaction() as conn:
                for symbol in sorted({r["symbol"] for _, r in rows}):
                    dates = [r["date"] for _, r in rows if r["symbol"] == symbol]
                    stored = {
                        d for (d,) in conn.execute(
                            sa.select(t.c.date).where(t.c.symbol == symbol, t.c.date.in_(dates))
                        )
                    }  # fmt: skip
                    found += [
                        Problem(line, "date", f"{symbol!r} {r['date']} is already stored")
                        for line, r in rows
                        if r["symbol"] == symbol and r["date"] in stored
                    ]
                if found:
                    raise IngestError("returns", sorted(found, key=lambda p: str(p.line)))
                if rows:
                    conn.execute(t.insert(), [r for _, r in rows])
            return len(rows)

        return _once_more_on_conflict(write, "returns")

    def returns_panel(self, symbols: Iterable[str] | None = None) -> pd.DataFrame:
        """Daily log returns, dates x symbols (NaN where a symbol has no return that day)."""
        t = schema.returns
        q = sa.select(t.c.date, t.c.symbol, t.c.log_return)
        if symbols is not None:
            q = q.where(t.c.symbol.in_(list(symbols)))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=["date", "symbol", "log_return"])
        if frame.empty:
            return pd.DataFrame()
        return frame.pivot(index="date", columns="symbol", values="log_return").sort_index()

    # ------------------------------------------------------------------ metrics
    def log_risk(self, date: dt.date, forecast: Any) -> None:
        """Store a :class:`~bayes_mem.live.RiskForecast` for ``date`` (one row per symbol)."""
        band = forecast.es_band(0.9)
        rows = [
            {
                "symbol": s, "date": date, "level": float(forecast.level),
                "var_log": float(forecast.var_log[i]), "es_log": float(forecast.es_log[i]),
                "es_low": float(band[i, 0]), "es_high": float(band[i, 1]),
                "volatility": float(forecast.volatility[i]),
            }
            for i, s in enumerate(forecast.symbols)
        ]  # fmt: skip
        with self.transaction() as conn:
            conn.execute(schema.risk_metrics.insert(), rows)

    def log_correlation(self, date: dt.date, **values: float | None) -> None:
        with self.transaction() as conn:
            conn.execute(schema.correlation_metrics.insert(), [{"date": date, **values}])

    def log_signal_quality(self, as_of: dt.datetime, metrics: Iterable[Any]) -> None:
        """Store :class:`~bayes_mem.live.SignalMetrics` snapshots taken at ``as_of``."""
        rows = [
            {
                "signal": m.signal, "as_of": as_of, "trades": m.trades,
                "posterior_mean": m.posterior_mean, "credible_low": m.credible_low,
                "credible_high": m.credible_high, "p_above_break_even": m.p_above_break_even,
                "total_pnl": m.total_pnl, "sharpe": m.sharpe,
            }
            for m in metrics
        ]  # fmt: skip
        with self.transaction() as conn:
            conn.execute(schema.signal_quality.insert(), rows)

    def table(self, name: str) -> pd.DataFrame:
        """A whole table as a DataFrame (for analysts and tests)."""
        t = schema.metadata.tables.get(name)
        if t is None:
            raise ValueError(f"no table {name!r}; tables: {sorted(schema.metadata.tables)}")
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(t))
            return pd.DataFrame(result.all(), columns=list(result.keys()))


def _once_more_on_conflict(write: Callable[[], int], what: str) -> int:
    """Run a checked batch write; if another process wrote a conflicting row between the checks
    and the insert (PostgreSQL, read committed), run it once more so the checks report it."""
    try:
        return write()
    except sa.exc.IntegrityError:
        pass
    try:
        return write()
    except sa.exc.IntegrityError as exc:
        raise ValueError(f"{what}: refused by the database, nothing written: {exc.orig}") from None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # the driver's own transaction handling is off: SQLAlchemy emits BEGIN (below), so DDL and the
    # reads of a write transaction are inside it
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    # a write transaction takes the write lock at once (waiting up to busy_timeout for it): a
    # deferred one that read first could not upgrade once another writer committed
    write = conn.get_execution_options().get(schema.WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
