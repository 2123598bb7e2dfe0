"""The store: signals and the symbols they trade, trade outcomes, daily returns, prior-set
records, the trading engine's decision log and logged metrics.

SQLite file by default (WAL journal, ``synchronous=FULL`` so a committed outcome survives a crash,
foreign keys on; a new store's directories (those it creates) and file owner-only, whatever the
umask; an existing directory is never chmodded), any SQLAlchemy 2 URL otherwise. A SQLite store
this process may not write (the file or its directory) is opened read-only: reads work, writes
raise; with no ``-wal`` file present it is read as an immutable snapshot (nobody can be writing
it: no writer could create the journal). A URL that cannot be parsed, an unknown database, a
missing driver, a server that does not answer or a file that is not a database raise
:class:`StoreError` (a ``ValueError``; :class:`StoreURLError` for the URL itself) with a
one-line message, the password hidden.
Every write is one transaction: a batch is written whole or not at all. SQL goes through
SQLAlchemy expressions only (bound parameters). Every value is checked before anything is
written: a bad one raises TypeError/ValueError naming it, never a driver exception.

Metrics are keyed by date (``log_risk``: symbol, date, level; ``log_correlation``,
``log_portfolio``: date; ``log_regime``: date, symbol; ``log_signal_quality``: signal, as_of):
logging a key again replaces its values (an upsert: the later call wins), so a re-run of the
end-of-day job is harmless. Decisions are appended, usually through the background
:class:`bayes_mem.store.writer.DecisionWriter`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bayes_mem.live.decider import DuplicateTradeError, check_outcome
from bayes_mem.live.files import make_private_dirs
from bayes_mem.live.recording import check_decision, check_name_length
from bayes_mem.live.return_model import MAX_LOG_RETURN
from bayes_mem.live.validate import as_float_array, check_int, check_name, check_real
from bayes_mem.store import schema
from bayes_mem.store.ingest import (
    BAD,
    IngestError,
    Problem,
    check_date_format,
    latest_accepted,
    line_of,
    parse_bool,
    parse_cells,
    parse_date,
    parse_float,
    parse_name,
    parse_timestamp,
    read_table,
    require_columns,
)

DEFAULT_DATA_DIR = Path("data")
DB_FILENAME = "bayes_mem.sqlite"


class StoreError(ValueError):
    """The store cannot be opened (driver, server, file); the message is one line.

    Examples
    --------
    A store URL naming no known database raises the URL subclass, itself a ValueError:

    >>> try:
    ...     Store("nosuchdb://host/x")
    ... except StoreError as exc:
    ...     print(type(exc).__name__, isinstance(exc, ValueError))
    StoreURLError True
    """


class StoreURLError(StoreError):
    """The store's URL cannot be parsed or names no known database: a usage error.

    Examples
    --------
    Text that is not a database URL is a usage error, reported in one line:

    >>> try:
    ...     Store("not a url")
    ... except StoreURLError as exc:
    ...     print(str(exc)[:40])
    not a database URL: 'not a url' (e.g. sq...
    """


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def sqlite_url(data_dir: str | Path) -> str:
    """The SQLAlchemy URL of the SQLite file of a store kept under ``data_dir``.

    Examples
    --------
    >>> sqlite_url("data")
    'sqlite:///data/bayes_mem.sqlite'
    """
    return f"sqlite:///{Path(data_dir) / DB_FILENAME}"


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # the driver's own message, without SQLAlchemy's SQL dump
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _parse_url(url: str) -> sa.engine.URL:
    if not isinstance(url, str):
        raise StoreURLError(f"a store URL must be text, got {type(url).__name__}")
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise StoreURLError(
            f"not a database URL: {url!r:.100} (e.g. sqlite:///data/bayes_mem.sqlite or "
            "postgresql+psycopg://user@host:5432/bayes_mem)"
        ) from None
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise StoreURLError(
            f"unknown database {parsed.drivername!r} in {parsed.render_as_string()!r:.100}"
        ) from None
    except ImportError as exc:
        raise StoreError(f"no driver for {parsed.drivername!r} is installed: {exc}") from None
    return parsed


class Store:
    """Open (creating or upgrading as needed) the store at ``url``, or a SQLite file under
    ``data_dir`` when no URL is given. ``read_only``: None (default) opens a SQLite file
    read-only when this process may not write it or its directory; True always (no upgrade:
    the schema must be current).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)  # a new SQLite file under tmp
    >>> store.register_signals({"mom_a": "momentum", "mom_b": "momentum"})
    2
    >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
    >>> store.append_outcome("t2", "mom_a", False, -8.0, settled_at="2026-03-03T16:00")
    >>> store.signal_counts()
      signal    family  wins  trades
    0  mom_a  momentum     1       2
    1  mom_b  momentum     0       0
    >>> store.close()
    >>> tmp.cleanup()
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: str | Path = DEFAULT_DATA_DIR,
        read_only: bool | None = None,
    ) -> None:
        if url is None:
            data_dir = Path(data_dir)
            url = sqlite_url(data_dir)
            db = data_dir / DB_FILENAME
            if not db.exists() and not read_only:  # a new store: owner-only
                make_private_dirs(data_dir)
                db.touch(mode=0o600)
        parsed = _parse_url(url)
        shown = parsed.render_as_string(hide_password=True)
        path = parsed.database if parsed.get_backend_name() == "sqlite" else None
        file = path and path != ":memory:" and not path.startswith("file:")
        if file and read_only is None:
            folder = os.path.dirname(os.path.abspath(path))
            read_only = os.path.exists(path) and not (
                os.access(path, os.W_OK) and os.access(folder, os.W_OK)
            )
        if file and read_only:
            wal = os.path.exists(f"{path}-wal")
            where = urllib.parse.quote(str(Path(path).resolve()), safe="/")  # ? # % escaped
            ro_url = f"file:{where}?{'mode=ro' if wal else 'immutable=1'}"
            parsed = parsed.set(database=ro_url, query={"uri": "true"})
        elif file and not os.path.exists(path):  # owner-only; -wal/-shm get the same mode
            Path(path).touch(mode=0o600)
        self.url = url
        self.read_only = bool(read_only)
        try:
            self.engine = sa.create_engine(parsed)
        except ImportError as exc:
            raise StoreError(f"no driver for {parsed.drivername!r} is installed: {exc}") from None
        try:
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
                sa.event.listen(self.engine, "begin", _sqlite_begin)
            self.schema_version = self._open_schema()
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise StoreError(f"cannot open the store {shown}: {_first_line(exc)}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def _open_schema(self) -> int:
        if not self.read_only:
            return schema.upgrade(self.engine)
        with self.engine.connect() as conn:
            version = schema.current_version(conn)
        if version != schema.SCHEMA_VERSION:
            raise schema.SchemaError(
                f"the read-only store has schema version {version}, this bayes_mem needs "
                f"{schema.SCHEMA_VERSION}: open it once writable to create or upgrade it"
            )
        return version

    def close(self) -> None:
        """Release the store's database connections (the data stays in the database).

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.close()
        """
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def transaction(self) -> AbstractContextManager[sa.Connection]:
        """A write transaction (commit on success, rollback on any exception); on SQLite it holds
        the database's write lock from its first statement, so read-then-write is safe.

        Examples
        --------
        Two rows written in one transaction: both land, or (on an exception) neither does:

        >>> from bayes_mem.store import schema
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> with store.transaction() as conn:
        ...     _ = conn.execute(schema.regime_metrics.insert(), [
        ...         {"date": dt.date(2026, 3, 2), "symbol": "SPY", "p_change": 0.1},
        ...         {"date": dt.date(2026, 3, 2), "symbol": "QQQ", "p_change": 0.2}])
        >>> len(store.table("regime_metrics"))
        2
        """
        return schema.write_transaction(self.engine)

    # ------------------------------------------------------------------ signals
    def register_signals(self, signals: Mapping[str, str] | pd.DataFrame | str | Path) -> int:
        """Add signals (name -> family); existing ones must keep their family. Returns how many
        were new.

        Examples
        --------
        Registering a signal again (same family) is not new; only ``mom_b`` counts:

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.register_signals({"mom_a": "momentum"})
        1
        >>> store.register_signals({"mom_a": "momentum", "mom_b": "momentum"})
        1
        """
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
            cells = parse_cells(line, problems, {
                "name": (name, parse_name, {"what": "signal"}),
                "family": (family, parse_name, {"what": "family"}),
            })  # fmt: skip
            n, f = cells["name"], cells["family"]
            if n is BAD or f is BAD:
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
        """Every registered signal: name -> family.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum", "rev_a": "reversal"})
        >>> dict(sorted(store.signals().items()))
        {'mom_a': 'momentum', 'rev_a': 'reversal'}
        """
        with self.engine.connect() as conn:
            return dict(
                conn.execute(sa.select(schema.signals.c.name, schema.signals.c.family)).all()
            )

    def link_signals(self, mapping: Mapping[str, str]) -> int:
        """Record the symbol each signal trades (signal -> symbol; one symbol per signal).
        Linking a signal again to the same symbol is a no-op; to another symbol, or linking a
        signal that is not registered, raises ValueError and writes nothing. Returns how many
        links were new.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum", "mom_b": "momentum"})
        >>> store.link_signals({"mom_a": "SPY", "mom_b": "QQQ"})
        2
        >>> store.link_signals({"mom_a": "SPY"})  # the same link again: nothing new
        0
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"link_signals takes a mapping signal -> symbol, got {mapping!r:.80}")
        links = {
            check_name_length(sig, "signal"): check_name_length(sym, f"symbol of {sig!r}")
            for sig, sym in mapping.items()
        }
        t = schema.signal_symbols

        def write() -> int:
            with self.transaction() as conn:
                unknown = sorted(set(links) - set(self._families(conn, list(links))))
                if unknown:
                    raise ValueError(f"unknown signal(s) {unknown[:10]!r}; register them first")
                stored = self._links(conn, list(links))
                clash = [(s, stored[s], v) for s, v in links.items() if stored.get(s, v) != v]
                if clash:
                    shown = "; ".join(f"{s!r} is linked to {a!r}, not {b!r}" for s, a, b in clash)
                    raise ValueError(f"signal linked to another symbol, nothing written: {shown}")
                new = [{"signal": s, "symbol": v} for s, v in links.items() if s not in stored]
                if new:
                    now = _utcnow()
                    conn.execute(t.insert(), [{**r, "created_at": now} for r in new])
            return len(new)

        return _once_more_on_conflict(write, "signal_symbols")

    @staticmethod
    def _links(conn: sa.Connection, signals: list[str]) -> dict[str, str]:
        t = schema.signal_symbols
        out: dict[str, str] = {}
        for start in range(0, len(signals), 500):
            chunk = signals[start : start + 500]
            q = sa.select(t.c.signal, t.c.symbol).where(t.c.signal.in_(chunk))
            out.update(conn.execute(q).all())
        return out

    def signal_symbols(self) -> dict[str, str]:
        """signal -> the symbol it trades, for every linked signal.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> _ = store.link_signals({"mom_a": "SPY"})
        >>> store.signal_symbols()
        {'mom_a': 'SPY'}
        """
        t = schema.signal_symbols
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(t.c.signal, t.c.symbol)).all())

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
        notional: float | None = None,
    ) -> None:
        """Append one settled trade durably; a trade id already stored raises
        :class:`DuplicateTradeError` and writes nothing. ``settled_at`` (default now) and
        ``opened_at``: datetimes (naive: UTC) or ISO 8601 text, at most a day in the future.
        ``notional``: the trade's notional in account currency (> 0; None when unknown), so
        ``pnl / notional`` is its return.

        Examples
        --------
        A win of 12.5 on a notional of 1000 (account currency): a 1.25% return; the same trade id
        again is refused:

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00",
        ...                      notional=1000.0)
        >>> row = store.outcomes().iloc[0]
        >>> row["trade_id"], bool(row["won"]), float(row["pnl"] / row["notional"])
        ('t1', True, 0.0125)
        >>> try:
        ...     store.append_outcome("t1", "mom_a", True, 3.0, settled_at="2026-03-03T16:00")
        ... except DuplicateTradeError as exc:
        ...     print(exc)
        trade_id 't1' was already recorded
        """
        won, pnl, tid = check_outcome(won, pnl, trade_id)
        if tid is None:
            raise TypeError("trade_id is required in the store")
        tid = check_name_length(tid, "trade_id")
        signal = check_name(signal)
        notional = check_notional(notional)
        latest = latest_accepted()
        settled = parse_timestamp(
            settled_at if settled_at is not None else _utcnow(), not_after=latest
        )
        opened = parse_timestamp(opened_at, optional=True, not_after=latest)
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
            "notional": notional,
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
        """Whether an outcome with this trade id is stored.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> store.append_outcome(7, "mom_a", False, -4.0, settled_at="2026-03-02T16:00")
        >>> store.has_trade(7), store.has_trade("7"), store.has_trade(8)  # ids are stored as text
        (True, True, False)
        """
        t = schema.outcomes
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(t.c.seq).where(t.c.trade_id == str(trade_id))).first()
                is not None
            )

    def ingest_outcomes(
        self, source: pd.DataFrame | str | Path, *, date_format: str | None = None
    ) -> int:
        """Append a batch of outcomes (columns trade_id, signal, won, pnl, settled_at and
        optionally opened_at and notional: account currency, > 0, empty when unknown). Any bad
        row refuses the whole batch, reported by line. Timestamps are ISO 8601 text unless
        ``date_format`` (``strptime`` codes) says otherwise; see :mod:`bayes_mem.store.ingest`
        for what every value must be.

        Examples
        --------
        Two trades in one batch; a win with a negative pnl would refuse the whole batch:

        >>> import pandas as pd
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> batch = pd.DataFrame({"trade_id": ["t1", "t2"], "signal": ["mom_a", "mom_a"],
        ...                       "won": [True, False], "pnl": [10.0, -6.0],
        ...                       "settled_at": ["2026-03-02T16:00", "2026-03-03T16:00"]})
        >>> store.ingest_outcomes(batch)
        2
        >>> bad = batch.assign(trade_id=["t3", "t4"], pnl=[-1.0, -6.0])
        >>> try:
        ...     store.ingest_outcomes(bad)
        ... except IngestError as exc:
        ...     print(len(exc.problems), "problem; stored:", len(store.outcomes()))
        1 problem; stored: 2
        """
        date_format = check_date_format(date_format)
        latest = latest_accepted()
        frame, from_csv = read_table(source)
        require_columns(frame, ("trade_id", "signal", "won", "pnl", "settled_at"), "outcomes")
        opened_col = frame["opened_at"] if "opened_at" in frame.columns else [None] * len(frame)
        notional_col = frame["notional"] if "notional" in frame.columns else [None] * len(frame)
        rows, problems, ids = [], [], {}
        now = _utcnow()
        for i, (tid, sig, won, pnl, settled, opened, notional) in enumerate(
            zip(
                frame["trade_id"],
                frame["signal"],
                frame["won"],
                frame["pnl"],
                frame["settled_at"],
                opened_col,
                notional_col,
                strict=True,
            )
        ):
            line = line_of(frame, i, from_csv)
            stamp = {"date_format": date_format, "not_after": latest}
            row = parse_cells(line, problems, {
                "trade_id": (tid, parse_name, {"what": "trade_id"}),
                "signal": (sig, parse_name, {"what": "signal"}),
                "won": (won, parse_bool, {}),
                "pnl": (pnl, parse_float, {}),
                "settled_at": (settled, parse_timestamp, stamp),
                "opened_at": (opened, parse_timestamp, {**stamp, "optional": True}),
                "notional": (notional, parse_notional, {}),
            })  # fmt: skip
            if any(v is BAD for v in row.values()):
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
        """Every stored outcome in arrival order.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
        >>> store.append_outcome("t2", "mom_a", False, -8.0, settled_at="2026-03-03T16:00")
        >>> store.outcomes()[["seq", "trade_id", "won", "pnl"]]
           seq trade_id    won   pnl
        0    1       t1   True  12.5
        1    2       t2  False  -8.0
        """
        t = schema.outcomes
        cols = [t.c.seq, t.c.trade_id, t.c.signal, t.c.won, t.c.pnl, t.c.notional, t.c.opened_at,
                t.c.settled_at]  # fmt: skip
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*cols).order_by(t.c.seq)).all()
        return pd.DataFrame(rows, columns=[c.name for c in cols])

    def outcome_span(self) -> dict[str, Any]:
        """What the outcomes table holds, for the nightly job's run record: trades, signals,
        first and last settlement times (as text) and the last arrival number (``through_seq``,
        None when empty; the report replays outcomes up to it).

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum", "mom_b": "momentum"})
        >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
        >>> store.append_outcome("t2", "mom_b", False, -8.0, settled_at="2026-03-03T16:00")
        >>> span = store.outcome_span()
        >>> span["trades"], span["signals"], span["through_seq"]
        (2, 2, 2)
        >>> span["settled_from"][:16], span["settled_through"][:16]
        ('2026-03-02 16:00', '2026-03-03 16:00')
        """
        o = schema.outcomes
        q = sa.select(
            sa.func.count(o.c.seq), sa.func.count(sa.distinct(o.c.signal)),
            sa.func.min(o.c.settled_at), sa.func.max(o.c.settled_at), sa.func.max(o.c.seq),
        )  # fmt: skip
        with self.engine.connect() as conn:
            n, signals, first, last, seq = conn.execute(q).one()
        return {
            "trades": int(n), "signals": int(signals), "settled_from": str(first),
            "settled_through": str(last), "through_seq": None if seq is None else int(seq),
        }  # fmt: skip

    def signal_counts(self, *, settled_through: dt.datetime | None = None) -> pd.DataFrame:
        """Per signal: family, wins and trades (settled up to ``settled_through``, inclusive):
        all the win-rate model needs.

        Examples
        --------
        Counting only trades settled by the end of 2 March drops the second one:

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> store.append_outcome("t1", "mom_a", True, 12.5, settled_at="2026-03-02T16:00")
        >>> store.append_outcome("t2", "mom_a", True, 8.0, settled_at="2026-03-03T16:00")
        >>> store.signal_counts(settled_through=dt.datetime(2026, 3, 2, 23, 59))
          signal    family  wins  trades
        0  mom_a  momentum     1       1
        """
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
    def ingest_returns(
        self, source: pd.DataFrame | str | Path, *, kind: str, date_format: str | None = None
    ) -> int:
        """Append daily returns (columns symbol, date, return); ``kind`` says whether they are
        "log" or "simple" returns (stored as log returns). Any bad row refuses the batch. Dates
        are calendar dates, ``YYYY-MM-DD`` unless ``date_format`` (``strptime`` codes without a
        time) says otherwise, at most a day after today (UTC); a log return must be within
        +-:data:`~bayes_mem.live.return_model.MAX_LOG_RETURN` (the live model's bound; see
        :mod:`bayes_mem.store.ingest` for every rule).

        Examples
        --------
        Simple returns are stored as log returns: a +10% day is ``log(1.1) = 0.0953``:

        >>> import pandas as pd
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> days = pd.DataFrame({"symbol": ["SPY", "SPY"], "date": ["2026-03-02", "2026-03-03"],
        ...                      "return": [0.10, -0.02]})
        >>> store.ingest_returns(days, kind="simple")
        2
        >>> store.returns_panel()["SPY"].round(4).tolist()
        [0.0953, -0.0202]
        """
        if kind not in ("log", "simple"):
            raise ValueError(f"kind must be 'log' or 'simple', got {kind!r}")
        date_format = check_date_format(date_format, dates=True)
        latest = latest_accepted().date()
        frame, from_csv = read_table(source)
        require_columns(frame, ("symbol", "date", "return"), "returns")
        rows, problems, seen = [], [], {}
        for i, (sym, day, ret) in enumerate(
            zip(frame["symbol"], frame["date"], frame["return"], strict=True)
        ):
            line = line_of(frame, i, from_csv)
            cells = parse_cells(line, problems, {
                "symbol": (sym, parse_name, {"what": "symbol"}),
                "date": (day, parse_date, {"date_format": date_format, "not_after": latest}),
                "return": (ret, parse_float, {}),
            })  # fmt: skip
            symbol, date, value = cells["symbol"], cells["date"], cells["return"]
            if value is not BAD and kind == "simple":
                if value <= -1.0:
                    problems.append(Problem(line, "return", f"simple return {value!r} <= -1", ret))
                    continue
                value = float(np.log1p(value))
            if value is not BAD and not -MAX_LOG_RETURN <= value <= MAX_LOG_RETURN:
                problems.append(
                    Problem(line, "return", f"{kind} return {parse_float(ret)!r} is a log return "
                            f"of {value:.4g}, beyond +-{MAX_LOG_RETURN} (a units error?)", ret)
                )  # fmt: skip
                continue
            if BAD in (symbol, date, value):
                continue
            date = date.date()
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
        """Daily log returns, dates x symbols (NaN where a symbol has no return that day).

        Examples
        --------
        A symbol without a return on a day is NaN there:

        >>> import pandas as pd
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> days = pd.DataFrame({"symbol": ["SPY", "SPY", "QQQ"],
        ...                      "date": ["2026-03-02", "2026-03-03", "2026-03-03"],
        ...                      "return": [0.004, -0.011, 0.002]})
        >>> _ = store.ingest_returns(days, kind="log")
        >>> store.returns_panel()
        symbol        QQQ    SPY
        date
        2026-03-02    NaN  0.004
        2026-03-03  0.002 -0.011
        """
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

    def returns_after(
        self, date: dt.date | str | None, symbols: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Daily log returns stored for dates strictly after ``date`` (None: all), as a date x
        symbol panel sorted by date (index ``date`` of ``datetime.date``; NaN where a symbol has
        no return that day). With ``symbols`` the columns are exactly those, in that order (a
        symbol without returns is a column of NaN); otherwise every symbol found, sorted. What
        the engine replays to roll a prior set's variance state forward from its
        ``data_through``.

        Examples
        --------
        Only 3 March is after 2 March; ``QQQ`` has no returns, so its column is NaN:

        >>> import pandas as pd
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> days = pd.DataFrame({"symbol": ["SPY", "SPY"], "date": ["2026-03-02", "2026-03-03"],
        ...                      "return": [0.004, -0.011]})
        >>> _ = store.ingest_returns(days, kind="log")
        >>> store.returns_after("2026-03-02", ["SPY", "QQQ"])
                       SPY  QQQ
        date
        2026-03-03  -0.011  NaN
        """
        after = None if date is None else check_day(date, "date")
        cols = None
        if symbols is not None:
            if isinstance(symbols, str):
                raise TypeError(f"symbols must be a list of names, not the string {symbols!r:.80}")
            cols = [check_name_length(s, "symbol") for s in symbols]
            if len(set(cols)) != len(cols):
                raise ValueError(f"symbols repeat a name: {cols[:10]!r}")
        t = schema.returns
        q = sa.select(t.c.date, t.c.symbol, t.c.log_return)
        if after is not None:
            q = q.where(t.c.date > after)
        with self.engine.connect() as conn:
            if cols is None:
                rows = conn.execute(q).all()
            else:
                rows = []
                for start in range(0, len(cols), 500):
                    chunk = cols[start : start + 500]
                    rows += conn.execute(q.where(t.c.symbol.in_(chunk))).all()
        frame = pd.DataFrame(rows, columns=["date", "symbol", "log_return"])
        panel = frame.pivot(index="date", columns="symbol", values="log_return").sort_index()
        panel = panel.reindex(columns=sorted(panel.columns) if cols is None else cols)
        panel.index.name, panel.columns.name = "date", None
        return panel.astype(float)

    # ------------------------------------------------------------------ metrics
    def log_risk(self, date: dt.date | str, forecast: Any) -> None:
        """Store a :class:`~bayes_mem.live.RiskForecast` for ``date`` (one row per symbol, keyed
        by symbol, date and level; logged again, the later values replace the earlier). VaR, ES
        and volatility must be finite; a non-finite ES band bound is stored as NULL.

        Examples
        --------
        One symbol's one-day 97.5% forecast from three posterior draws (see
        :class:`~bayes_mem.live.RiskForecast`):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> forecast = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance}).risk(0.975)
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_risk("2026-03-02", forecast)
        >>> store.table("risk_metrics")[["symbol", "level", "var_log", "es_log"]].round(4)
          symbol  level  var_log  es_log
        0    SPY  0.975   0.0136  0.0187
        """
        day = check_day(date, "date")
        try:
            symbols = [check_name_length(s, "forecast symbol") for s in forecast.symbols]
            level = float(check_real(forecast.level, "forecast.level"))
            arrays = {
                name: as_float_array(getattr(forecast, name), f"forecast.{name}")
                for name in ("var_log", "es_log", "volatility")
            }
            band = as_float_array(forecast.es_band(0.9), "forecast.es_band(0.9)")
        except AttributeError as exc:
            raise TypeError(f"forecast must be a RiskForecast, got {type(forecast).__name__}: "
                            f"{exc}") from None  # fmt: skip
        if not 0.0 < level < 1.0:
            raise ValueError(f"forecast.level must be in (0, 1), got {level!r}")
        _unique(symbols, "forecast symbols")
        n = len(symbols)
        for name, values in arrays.items():
            if values.shape != (n,):
                raise ValueError(f"forecast.{name} has shape {values.shape}, expected ({n},)")
            bad = ~np.isfinite(values)
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"forecast.{name} of {symbols[i]!r} is {values[i]!r}: not finite")
        if band.shape != (n, 2):
            raise ValueError(f"forecast.es_band(0.9) has shape {band.shape}, expected ({n}, 2)")
        rows = [
            {
                "symbol": s, "date": day, "level": level,
                "var_log": float(arrays["var_log"][i]), "es_log": float(arrays["es_log"][i]),
                "es_low": _finite_or_none(band[i, 0]), "es_high": _finite_or_none(band[i, 1]),
                "volatility": float(arrays["volatility"][i]),
            }
            for i, s in enumerate(symbols)
        ]  # fmt: skip
        self._upsert(schema.risk_metrics, rows)

    def log_correlation(
        self,
        date: dt.date | str,
        *,
        average_correlation: float,
        concentration_score: float,
        effective_bets: float,
        breakdown_p: float | None = None,
        breakdown_score: float | None = None,
    ) -> None:
        """Store the day's correlation metrics (keyed by date; logged again, the later values
        replace the earlier). The breakdown figures are optional (None or NaN: not computed).

        Examples
        --------
        Logging the same date again replaces the row (the later call wins):

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_correlation("2026-03-02", average_correlation=0.3, concentration_score=0.4,
        ...                       effective_bets=2.5)
        >>> store.log_correlation("2026-03-02", average_correlation=0.35, concentration_score=0.4,
        ...                       effective_bets=2.2)
        >>> store.table("correlation_metrics")[["date", "average_correlation", "effective_bets"]]
                 date  average_correlation  effective_bets
        0  2026-03-02                 0.35             2.2
        """
        row = {
            "date": check_day(date, "date"),
            "average_correlation": check_real(average_correlation, "average_correlation"),
            "concentration_score": check_real(concentration_score, "concentration_score"),
            "effective_bets": check_real(effective_bets, "effective_bets"),
            "breakdown_p": _optional_real(breakdown_p, "breakdown_p"),
            "breakdown_score": _optional_real(breakdown_score, "breakdown_score"),
        }
        self._upsert(schema.correlation_metrics, [row])

    def log_signal_quality(self, as_of: dt.datetime | str, metrics: Iterable[Any]) -> None:
        """Store :class:`~bayes_mem.live.SignalMetrics` snapshots taken at ``as_of`` (naive: UTC;
        keyed by signal and as_of; logged again, the later values replace the earlier). A
        Sharpe ratio of None or NaN is stored as NULL; every other figure must be finite.

        Examples
        --------
        A signal's metrics from a :class:`~bayes_mem.live.Decider` (three wins in four trades on a
        Beta(5, 5) prior: posterior mean 8/14 = 0.571):

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> for i, pnl in enumerate([120.0, 90.0, -100.0, 110.0]):
        ...     d.record("mom_5d", pnl > 0, pnl, trade_id=i)
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_signal_quality("2026-03-02T22:00", [d.metrics("mom_5d")])
        >>> cols = ["signal", "trades", "posterior_mean", "total_pnl"]
        >>> store.table("signal_quality")[cols].round(3)
           signal  trades  posterior_mean  total_pnl
        0  mom_5d       4           0.571      220.0
        """
        when = parse_timestamp(as_of)
        assert when is not None
        rows = []
        for m in metrics:
            try:
                sig = check_name_length(m.signal, "signal")
                rows.append({
                    "signal": sig, "as_of": when.to_pydatetime(),
                    "trades": check_int(m.trades, f"trades of {sig!r}", minimum=0),
                    **{name: check_real(getattr(m, name), f"{name} of {sig!r}")
                       for name in ("posterior_mean", "credible_low", "credible_high",
                                    "p_above_break_even", "total_pnl")},
                    "sharpe": _optional_real(m.sharpe, f"sharpe of {sig!r}"),
                })  # fmt: skip
            except AttributeError as exc:
                raise TypeError(f"metrics must be SignalMetrics, got {type(m).__name__}: "
                                f"{exc}") from None  # fmt: skip
        _unique([r["signal"] for r in rows], "signal quality metrics' signals")
        self._upsert(schema.signal_quality, rows)

    def log_regime(self, date: dt.date | str, p_change: Mapping[str, float]) -> None:
        """Store the day's change-point probability per symbol (``p_change``: symbol ->
        probability in [0, 1]; keyed by date and symbol; logged again, the later value
        replaces the earlier).

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_regime("2026-03-02", {"SPY": 0.03, "QQQ": 0.6})
        >>> store.table("regime_metrics").sort_values("symbol")
                 date symbol  p_change
        1  2026-03-02    QQQ      0.60
        0  2026-03-02    SPY      0.03
        """
        day = check_day(date, "date")
        if not isinstance(p_change, Mapping):
            raise TypeError(f"p_change must be a mapping symbol -> probability, got "
                            f"{type(p_change).__name__}")  # fmt: skip
        rows = []
        for sym, p in p_change.items():
            sym = check_name_length(sym, "symbol")
            value = check_real(p, f"p_change of {sym!r}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"p_change of {sym!r} must be in [0, 1], got {p!r}")
            rows.append({"date": day, "symbol": sym, "p_change": value})
        self._upsert(schema.regime_metrics, rows)

    def log_portfolio(
        self,
        date: dt.date | str,
        *,
        gross_exposure: float,
        portfolio_es: float,
        portfolio_var: float,
        level: float,
    ) -> None:
        """Store the day's portfolio risk (keyed by date; logged again, the later values replace
        the earlier): gross exposure (account currency, >= 0), one-day ES and VaR (account
        currency, a loss positive) at confidence ``level`` (in (0, 1), e.g. 0.975); a
        :class:`~bayes_mem.live.PortfolioRisk` ``r`` gives ``gross_exposure=r.gross_exposure,
        portfolio_es=r.es, portfolio_var=r.var, level=r.level``.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_portfolio("2026-03-02", gross_exposure=50_000.0, portfolio_es=1_200.0,
        ...                     portfolio_var=900.0, level=0.975)
        >>> store.table("portfolio_metrics")
                 date  gross_exposure  portfolio_es  portfolio_var  level
        0  2026-03-02         50000.0        1200.0          900.0  0.975
        """
        row = {
            "date": check_day(date, "date"),
            "gross_exposure": check_real(gross_exposure, "gross_exposure"),
            "portfolio_es": check_real(portfolio_es, "portfolio_es"),
            "portfolio_var": check_real(portfolio_var, "portfolio_var"),
            "level": check_real(level, "level"),
        }
        if row["gross_exposure"] < 0:
            raise ValueError(f"gross_exposure must be >= 0, got {gross_exposure!r}")
        if not 0.0 < row["level"] < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        self._upsert(schema.portfolio_metrics, [row])

    def _upsert(self, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction, replacing any stored row with the same primary
        key: ``INSERT ... ON CONFLICT DO UPDATE`` on SQLite and PostgreSQL (atomic under
        concurrent writers), delete-then-insert on other databases."""
        if not rows:
            return
        keys = [c.name for c in table.primary_key.columns]
        name = self.engine.dialect.name
        with self.transaction() as conn:
            if name in ("sqlite", "postgresql"):
                insert = (sqlite_dialect if name == "sqlite" else pg_dialect).insert(table)
                stmt = insert.on_conflict_do_update(
                    index_elements=keys,
                    set_={c.name: insert.excluded[c.name] for c in table.c if c.name not in keys},
                )
                conn.execute(stmt, rows)
            else:  # pragma: no cover - no such backend in the tests
                for row in rows:
                    conn.execute(table.delete().where(*(table.c[k] == row[k] for k in keys)))
                conn.execute(table.insert(), rows)

    # ------------------------------------------------------------------ decisions
    def append_decisions(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append decision rows (see :mod:`bayes_mem.live.recording` for the fields) in one
        transaction, synchronously; any bad row raises naming it and writes nothing. The engine
        records through :class:`~bayes_mem.store.writer.DecisionWriter` instead, which does not
        wait for the database.

        Examples
        --------
        One decision to buy 2,000 (account currency) of SPY on signal ``mom_a``:

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> row = {"decided_at": dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC), "config": "live",
        ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...        "notional": 2000.0, "p_win": 0.58}
        >>> store.append_decisions([row])
        1
        >>> store.decisions()[["id", "signal", "act", "notional", "p_win"]]
           id signal   act  notional  p_win
        0   1  mom_a  True    2000.0   0.58
        """
        checked = []
        for i, row in enumerate(rows):
            try:
                checked.append(check_decision(row))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"decision row {i}: {exc}") from None
        if checked:
            with self.transaction() as conn:
                conn.execute(schema.decisions.insert(), checked)
        return len(checked)

    def decisions(
        self, since: dt.datetime | str | None = None, config: str | None = None
    ) -> pd.DataFrame:
        """The decision log in arrival order (column ``id``), every column of the ``decisions``
        table; ``decided_at`` is a timezone-aware UTC timestamp, ``detail`` JSON text. ``since``:
        only decisions at or after this instant (naive: UTC); ``config``: only this engine
        configuration.

        Examples
        --------
        Only the decisions of the ``shadow`` configuration, decided at or after 2 March:

        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> base = {"config": "live", "signal": "mom_a", "symbol": "SPY", "side": "long",
        ...         "horizon": 5, "act": False, "notional": 0.0, "p_win": 0.41}
        >>> _ = store.append_decisions([
        ...     {**base, "decided_at": dt.datetime(2026, 3, 1, 15, tzinfo=dt.UTC)},
        ...     {**base, "decided_at": dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC)},
        ...     {**base, "decided_at": dt.datetime(2026, 3, 2, 15, tzinfo=dt.UTC),
        ...      "config": "shadow"}])
        >>> store.decisions(since="2026-03-02", config="shadow")[["id", "config", "decided_at"]]
           id  config                decided_at
        0   3  shadow 2026-03-02 15:00:00+00:00
        """
        t = schema.decisions
        q = sa.select(t).order_by(t.c.id)
        if since is not None:
            start = parse_timestamp(since)
            assert start is not None
            q = q.where(t.c.decided_at >= start.to_pydatetime())
        if config is not None:
            q = q.where(t.c.config == check_name_length(config, "config"))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        frame = pd.DataFrame(rows, columns=[c.name for c in t.c])
        frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
        return frame.astype({"id": "int64", "horizon": "int64", "act": bool,
                             "prior_version": "Int64", "notional": float, "quantity": float,
                             "p_win": float})  # fmt: skip

    # ------------------------------------------------------------------ prior sets
    def record_prior_set(self, row: Mapping[str, Any]) -> None:
        """Insert one row of the ``prior_sets`` table, in its own write transaction: ``row`` as
        :func:`bayes_mem.store.prior_records.prior_set_row` builds it (the nightly job records
        each version it writes, ``candidate`` or ``rejected``, before any activation).

        Examples
        --------
        The nightly job's record of a prior set it wrote (see
        :func:`~bayes_mem.store.prior_records.prior_set_row`):

        >>> from bayes_mem.live import FamilyPosterior, PriorSet
        >>> from bayes_mem.store.prior_records import prior_set_row
        >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
        ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])})
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.record_prior_set(prior_set_row(prior_set, "models", "candidate"))
        >>> store.latest_prior_version(), store.table("prior_sets")["status"].tolist()
        (1, ['candidate'])
        """
        with self.transaction() as conn:
            conn.execute(schema.prior_sets.insert().values(**row))

    def latest_prior_version(self) -> int:
        """The highest version number in the ``prior_sets`` table, 0 when it has none.

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.latest_prior_version()  # no prior set recorded yet
        0
        """
        with self.engine.connect() as conn:
            top = conn.execute(sa.select(sa.func.max(schema.prior_sets.c.version))).scalar()
        return int(top or 0)

    def table(self, name: str) -> pd.DataFrame:
        """A whole table as a DataFrame (for analysts and tests).

        Examples
        --------
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> store.log_regime("2026-03-02", {"SPY": 0.03})
        >>> store.table("regime_metrics")
                 date symbol  p_change
        0  2026-03-02    SPY      0.03
        """
        t = schema.metadata.tables.get(name)
        if t is None:
            raise ValueError(f"no table {name!r}; tables: {sorted(schema.metadata.tables)}")
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(t))
            return pd.DataFrame(result.all(), columns=list(result.keys()))


def check_notional(value: object) -> float | None:
    """A trade's notional: None (unknown) or a finite number > 0 (account currency).

    Examples
    --------
    >>> check_notional(None), check_notional(2500)  # unknown, or account currency
    (None, 2500.0)
    >>> try:
    ...     check_notional(0.0)
    ... except ValueError as exc:
    ...     print(exc)
    notional must be > 0 (account currency), got 0.0
    """
    if value is None:
        return None
    out = check_real(value, "notional")
    if out <= 0.0:
        raise ValueError(f"notional must be > 0 (account currency), got {value!r}")
    return out


def parse_notional(value: Any) -> float | None:
    """An ingested notional: empty (None, NaN, blank text) means unknown, else a number > 0.

    Examples
    --------
    A blank cell and NaN both mean unknown; text is parsed as a number:

    >>> parse_notional(""), parse_notional(float("nan")), parse_notional("1500.5")
    (None, None, 1500.5)
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    out = parse_float(value)
    if out <= 0.0:
        raise ValueError(f"notional must be > 0 (account currency), got {value!r}")
    return out


def check_day(value: object, what: str) -> dt.date:
    """A calendar date: a ``datetime.date``, a naive datetime at midnight, or ISO 8601 text
    ``YYYY-MM-DD`` (see :func:`~bayes_mem.store.ingest.parse_date`).

    Examples
    --------
    Text, a date and a midnight datetime all give the same calendar date:

    >>> check_day("2026-03-02", "date"), check_day(dt.datetime(2026, 3, 2), "date")
    (datetime.date(2026, 3, 2), datetime.date(2026, 3, 2))
    """
    if type(value) is dt.date:
        return value
    if isinstance(value, dt.datetime | pd.Timestamp | np.datetime64 | str):
        try:
            return parse_date(value).date()
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    raise TypeError(f"{what} must be a date, got {type(value).__name__} {value!r:.80}")


def _optional_real(value: object, what: str) -> float | None:
    """None, or a real number; NaN counts as None (not computed), infinity is refused."""
    if value is None:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    return check_real(value, what)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if repeated:
        raise ValueError(f"{what} repeat {repeated[:5]!r}: one value per key")


def _once_more_on_conflict(write: Callable[[], int], what: str) -> int:
    """Run a checked batch write; if another process wrote a conflicting row between the checks
    and the insert (PostgreSQL, read committed), run it once more so the checks report it. A
    transaction PostgreSQL aborted to break a deadlock or a serialisation conflict between
    concurrent batches (SQLSTATE 40P01 / 40001: nothing was written) is run again, up to
    ``_CONFLICT_RETRIES`` times."""
    conflicts = 0
    for _ in range(_CONFLICT_RETRIES + 1):
        try:
            return write()
        except sa.exc.IntegrityError as exc:
            conflicts += 1
            if conflicts > 1:
                raise ValueError(
                    f"{what}: refused by the database, nothing written: {exc.orig}"
                ) from None
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                raise
            time.sleep(0.01 * (1 + conflicts))
    return write()


_CONFLICT_RETRIES = 5
_RETRYABLE_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure


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
