"""The store's tables (SQLAlchemy Core) and their forward migrations.

Schema version 2. ``metadata`` declares the current schema; every change to it is a new entry in
``MIGRATIONS``; opening a store applies the missing ones in order, each in its own transaction,
and refuses a database written by a newer version of bayes_mem. A migration never reads the
current ``metadata`` for a table a later migration changes: version 1's tables are frozen in
``_v1_metadata`` (a new migration that changes a table created by ``_v2`` freezes that one the
same way). A fresh database and an upgraded one have the same tables and columns (tested).

Version 2 (the trading engine's records): ``outcomes.notional`` (the trade's notional in account
currency, > 0, nullable: unknown for older trades), ``signal_symbols`` (the symbol a signal
trades), ``decisions`` (the engine's decision log), ``regime_metrics`` and ``portfolio_metrics``
(end-of-day metrics).

Names, ids, symbols and keys are at most ``NAME_LENGTH`` characters, without NUL or other control
characters: the name rule of :mod:`bayes_mem.live.validate`, checked before anything is written
(PostgreSQL enforces the length and cannot store NUL, SQLite does neither).

Examples
--------
``SCHEMA_VERSION`` is the version this bayes_mem writes; opening a store upgrades it to that:

>>> import tempfile
>>> from bayes_mem.store import SCHEMA_VERSION, Store
>>> with tempfile.TemporaryDirectory() as tmp, Store(data_dir=tmp) as store:
...     print(SCHEMA_VERSION, store.schema_version == SCHEMA_VERSION)
2 True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from bayes_mem.live.validate import NAME_LENGTH

metadata = sa.MetaData()

#: an autoincrement primary key: BIGINT on PostgreSQL; SQLite's rowid alias must be INTEGER
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: a single row
    sa.Column("version", sa.Integer, nullable=False),
)

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("family", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # arrival order
    sa.Column("trade_id", sa.String(NAME_LENGTH), nullable=False, unique=True),
    sa.Column("signal", sa.String(NAME_LENGTH), sa.ForeignKey("signals.name"), nullable=False),
    sa.Column("won", sa.Boolean, nullable=False),
    sa.Column("pnl", sa.Float, nullable=False),  # account currency
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    # v2: the trade's notional, account currency (pnl / notional: the return per unit notional)
    sa.Column("notional", sa.Float, sa.CheckConstraint("notional > 0", name="notional_positive")),
    sa.CheckConstraint("(won AND pnl >= 0) OR (NOT won AND pnl <= 0)", name="pnl_sign"),
)
sa.Index("ix_outcomes_signal", outcomes.c.signal)

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("symbol", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("log_return", sa.Float, nullable=False),  # daily log return, fraction
)

prior_sets = sa.Table(
    "prior_sets",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("data_from", sa.Date, nullable=True),
    sa.Column("data_through", sa.Date, nullable=True),
    sa.Column("code_version", sa.String(100), nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("diagnostics", sa.Text, nullable=False),  # JSON
    sa.Column("artifact_dir", sa.Text, nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(
        "status IN ('candidate', 'active', 'rejected', 'retired')", name="prior_set_status"
    ),
)

risk_metrics = sa.Table(
    "risk_metrics",
    metadata,
    sa.Column("symbol", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("level", sa.Float, primary_key=True),
    sa.Column("var_log", sa.Float, nullable=False),
    sa.Column("es_log", sa.Float, nullable=False),
    sa.Column("es_low", sa.Float, nullable=True),
    sa.Column("es_high", sa.Float, nullable=True),
    sa.Column("volatility", sa.Float, nullable=False),
)

correlation_metrics = sa.Table(
    "correlation_metrics",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("average_correlation", sa.Float, nullable=False),
    sa.Column("concentration_score", sa.Float, nullable=False),
    sa.Column("effective_bets", sa.Float, nullable=False),
    sa.Column("breakdown_p", sa.Float, nullable=True),
    sa.Column("breakdown_score", sa.Float, nullable=True),
)

signal_quality = sa.Table(
    "signal_quality",
    metadata,
    sa.Column("signal", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("as_of", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("trades", sa.Integer, nullable=False),
    sa.Column("posterior_mean", sa.Float, nullable=False),
    sa.Column("credible_low", sa.Float, nullable=False),
    sa.Column("credible_high", sa.Float, nullable=False),
    sa.Column("p_above_break_even", sa.Float, nullable=False),
    sa.Column("total_pnl", sa.Float, nullable=False),
    sa.Column("sharpe", sa.Float, nullable=True),
)


# ---------------------------------------------------------------- version 2
signal_symbols = sa.Table(
    "signal_symbols",
    metadata,
    sa.Column("signal", sa.String(NAME_LENGTH), sa.ForeignKey("signals.name"), primary_key=True),
    sa.Column("symbol", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_signal_symbols_symbol", signal_symbols.c.symbol)

# The engine's decision log: one row per decision, acted on or not. ``signal`` is not a foreign
# key: the log records what the engine did, even about a signal the store does not know.
decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),  # arrival order
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),  # stored as UTC
    sa.Column("config", sa.String(NAME_LENGTH), nullable=False),  # engine configuration: "live"
    sa.Column("key", sa.String(NAME_LENGTH), nullable=True),  # the decision key (keyed draws)
    sa.Column("signal", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("symbol", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("side", sa.String(5), nullable=False),
    sa.Column("horizon", sa.Integer, nullable=False),  # trading days
    sa.Column("act", sa.Boolean, nullable=False),
    sa.Column("notional", sa.Float, nullable=False),  # account currency, 0 when not acting
    sa.Column("quantity", sa.Float, nullable=True),  # units of the symbol, if sized in units
    sa.Column("p_win", sa.Float, nullable=False),  # the sampled win probability
    sa.Column("binding", sa.String(NAME_LENGTH), nullable=True),  # the limit that bound the size
    sa.Column("prior_version", sa.Integer, nullable=True),  # the prior set decided with
    sa.Column("detail", sa.Text, nullable=False),  # JSON object: factors, draws, explanation
    sa.CheckConstraint("side IN ('long', 'short')", name="decision_side"),
    sa.CheckConstraint("horizon >= 1", name="decision_horizon"),
    sa.CheckConstraint("notional >= 0", name="decision_notional"),
    sa.CheckConstraint("quantity >= 0", name="decision_quantity"),
    sa.CheckConstraint("p_win >= 0 AND p_win <= 1", name="decision_p_win"),
    sa.CheckConstraint("prior_version >= 1", name="decision_prior_version"),
)
sa.Index("ix_decisions_decided_at", decisions.c.decided_at)
sa.Index("ix_decisions_signal", decisions.c.signal)

regime_metrics = sa.Table(
    "regime_metrics",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("symbol", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("p_change", sa.Float, nullable=False),  # posterior probability of a change point
    sa.CheckConstraint("p_change >= 0 AND p_change <= 1", name="regime_p_change"),
)

portfolio_metrics = sa.Table(
    "portfolio_metrics",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("gross_exposure", sa.Float, nullable=False),  # account currency
    sa.Column("portfolio_es", sa.Float, nullable=False),  # account currency, loss > 0
    sa.Column("portfolio_var", sa.Float, nullable=False),  # account currency, loss > 0
    sa.Column("level", sa.Float, nullable=False),  # confidence level of VaR/ES, e.g. 0.975
    sa.CheckConstraint("gross_exposure >= 0", name="portfolio_gross"),
    sa.CheckConstraint("level > 0 AND level < 1", name="portfolio_level"),
)

V2_TABLES = (signal_symbols, decisions, regime_metrics, portfolio_metrics)


def _v1_metadata() -> sa.MetaData:
    """Version 1's tables exactly as version 1 created them (frozen: never edit)."""
    m = sa.MetaData()
    sa.Table(
        "signals",
        m,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    out = sa.Table(
        "outcomes",
        m,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trade_id", sa.String(200), nullable=False, unique=True),
        sa.Column("signal", sa.String(200), sa.ForeignKey("signals.name"), nullable=False),
        sa.Column("won", sa.Boolean, nullable=False),
        sa.Column("pnl", sa.Float, nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("(won AND pnl >= 0) OR (NOT won AND pnl <= 0)", name="pnl_sign"),
    )
    sa.Index("ix_outcomes_signal", out.c.signal)
    sa.Table(
        "returns",
        m,
        sa.Column("symbol", sa.String(200), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("log_return", sa.Float, nullable=False),
    )
    sa.Table(
        "prior_sets",
        m,
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_from", sa.Date, nullable=True),
        sa.Column("data_through", sa.Date, nullable=True),
        sa.Column("code_version", sa.String(100), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("diagnostics", sa.Text, nullable=False),
        sa.Column("artifact_dir", sa.Text, nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('candidate', 'active', 'rejected', 'retired')", name="prior_set_status"
        ),
    )
    sa.Table(
        "risk_metrics",
        m,
        sa.Column("symbol", sa.String(200), primary_key=True),
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("level", sa.Float, primary_key=True),
        sa.Column("var_log", sa.Float, nullable=False),
        sa.Column("es_log", sa.Float, nullable=False),
        sa.Column("es_low", sa.Float, nullable=True),
        sa.Column("es_high", sa.Float, nullable=True),
        sa.Column("volatility", sa.Float, nullable=False),
    )
    sa.Table(
        "correlation_metrics",
        m,
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("average_correlation", sa.Float, nullable=False),
        sa.Column("concentration_score", sa.Float, nullable=False),
        sa.Column("effective_bets", sa.Float, nullable=False),
        sa.Column("breakdown_p", sa.Float, nullable=True),
        sa.Column("breakdown_score", sa.Float, nullable=True),
    )
    sa.Table(
        "signal_quality",
        m,
        sa.Column("signal", sa.String(200), primary_key=True),
        sa.Column("as_of", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("trades", sa.Integer, nullable=False),
        sa.Column("posterior_mean", sa.Float, nullable=False),
        sa.Column("credible_low", sa.Float, nullable=False),
        sa.Column("credible_high", sa.Float, nullable=False),
        sa.Column("p_above_break_even", sa.Float, nullable=False),
        sa.Column("total_pnl", sa.Float, nullable=False),
        sa.Column("sharpe", sa.Float, nullable=True),
    )
    return m


def _v1(conn: sa.Connection) -> None:
    _v1_metadata().create_all(conn)


def _v2(conn: sa.Connection) -> None:
    """Add ``outcomes.notional`` (existing rows: NULL) and create the version-2 tables."""
    # frozen DDL, the same on SQLite and PostgreSQL (FLOAT: double precision on both)
    conn.exec_driver_sql(
        "ALTER TABLE outcomes ADD COLUMN notional FLOAT "
        "CONSTRAINT notional_positive CHECK (notional > 0)"
    )
    metadata.create_all(conn, tables=list(V2_TABLES))


#: version -> migration that brings a database from version - 1 to version
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _v1, 2: _v2}
#: the schema version this code writes; an older database is migrated forward when opened
SCHEMA_VERSION = max(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database's schema cannot be used by this version of bayes_mem.

    Examples
    --------
    A database written by a newer bayes_mem is refused:

    >>> import tempfile
    >>> from bayes_mem.store import SchemaError, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with Store(data_dir=tmp.name) as store, store.transaction() as conn:
    ...     _ = conn.exec_driver_sql("UPDATE schema_version SET version = 99")
    >>> try:
    ...     Store(data_dir=tmp.name)
    ... except SchemaError as exc:
    ...     print(exc)
    database schema version 99 is newer than this bayes_mem (...)
    >>> tmp.cleanup()
    """


#: the advisory lock that serialises schema upgrades of one PostgreSQL database
_PG_UPGRADE_LOCK = 0x6261_7965_735F_6D65  # "bayes_me"

#: execution option that makes a SQLite transaction take the write lock at BEGIN (see store.py)
WRITE_OPTION = "bayes_mem_write"


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: committed on success, rolled back on any exception. On SQLite it
    begins with ``BEGIN IMMEDIATE`` (the store's begin hook), so checks made inside it cannot be
    invalidated by another writer before its own writes.

    Examples
    --------
    An exception inside rolls back the write:

    >>> engine = sa.create_engine("sqlite://")  # an in-memory database
    >>> _ = upgrade(engine)
    >>> try:
    ...     with write_transaction(engine) as conn:
    ...         _ = conn.execute(schema_version.update().values(version=99))
    ...         raise RuntimeError("abandon")
    ... except RuntimeError:
    ...     pass
    >>> with engine.connect() as conn:
    ...     current_version(conn)
    2
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def current_version(conn: sa.Connection) -> int:
    """The schema version of the database ``conn`` is connected to; 0 for a database without one.

    Examples
    --------
    >>> engine = sa.create_engine("sqlite://")  # an in-memory database
    >>> with engine.connect() as conn:
    ...     current_version(conn)
    0
    >>> _ = upgrade(engine)
    >>> with engine.connect() as conn:
    ...     current_version(conn) == SCHEMA_VERSION
    True
    """
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    row = conn.execute(sa.select(schema_version.c.version)).first()
    return 0 if row is None else int(row[0])


def _lock(conn: sa.Connection) -> None:
    """Serialise concurrent upgrades (several processes opening a new store at once): PostgreSQL
    takes a transaction-scoped advisory lock; SQLite already holds the write lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_UPGRADE_LOCK)))


def upgrade(engine: sa.Engine) -> int:
    """Apply missing migrations in order, each in its own locked transaction (DDL included, so a
    crash mid-migration leaves the previous version); return the resulting version.

    Examples
    --------
    A new database gets every migration; upgrading again does nothing:

    >>> engine = sa.create_engine("sqlite://")  # an in-memory database
    >>> upgrade(engine), upgrade(engine), SCHEMA_VERSION
    (2, 2, 2)
    >>> sorted(sa.inspect(engine).get_table_names())[:4]
    ['correlation_metrics', 'decisions', 'outcomes', 'portfolio_metrics']
    """
    with write_transaction(engine) as conn:
        _lock(conn)
        schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema version {version} is newer than this bayes_mem ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with write_transaction(engine) as conn:
            _lock(conn)
            now = current_version(conn)  # another process may have upgraded meanwhile
            if now >= target:
                continue
            MIGRATIONS[target](conn)
            if now == 0:
                conn.execute(schema_version.insert().values(id=1, version=target))
            else:
                conn.execute(schema_version.update().values(version=target))
    return SCHEMA_VERSION
