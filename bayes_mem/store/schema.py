"""The store's tables (SQLAlchemy Core) and their forward migrations.

Schema version 1. Every change to the schema is a new entry in ``MIGRATIONS``; opening a store
applies the missing ones in order, each in its own transaction, and refuses a database written by
a newer version of bayes_mem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),  # always 1: a single row
    sa.Column("version", sa.Integer, nullable=False),
)

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("family", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # arrival order
    sa.Column("trade_id", sa.String(200), nullable=False, unique=True),
    sa.Column("signal", sa.String(200), sa.ForeignKey("signals.name"), nullable=False),
    sa.Column("won", sa.Boolean, nullable=False),
    sa.Column("pnl", sa.Float, nullable=False),  # account currency
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("settled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(won AND pnl >= 0) OR (NOT won AND pnl <= 0)", name="pnl_sign"),
)
sa.Index("ix_outcomes_signal", outcomes.c.signal)

returns = sa.Table(
    "returns",
    metadata,
    sa.Column("symbol", sa.String(200), primary_key=True),
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
    sa.Column("symbol", sa.String(200), primary_key=True),
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


def _v1(conn: sa.Connection) -> None:
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not schema_version])


#: version -> migration that brings a database from version - 1 to version
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _v1}
SCHEMA_VERSION = max(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database's schema cannot be used by this version of bayes_mem."""


#: the advisory lock that serialises schema upgrades of one PostgreSQL database
_PG_UPGRADE_LOCK = 0x6261_7965_735F_6D65  # "bayes_me"

#: execution option that makes a SQLite transaction take the write lock at BEGIN (see store.py)
WRITE_OPTION = "bayes_mem_write"


@contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction: committed on success, rolled back on any exception. On SQLite it
    begins with ``BEGIN IMMEDIATE`` (the store's begin hook), so checks made inside it cannot be
    invalidated by another writer before its own writes."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def current_version(conn: sa.Connection) -> int:
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
    crash mid-migration leaves the previous version); return the resulting version."""
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
