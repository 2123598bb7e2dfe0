import contextlib

import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider


@pytest.fixture
def decider() -> Decider:
    """Two families with distinct priors and a few signals, some with history."""
    d = Decider({"momentum": BetaPrior(2.0, 3.0), "mean_reversion": BetaPrior(5.0, 5.0)}, rng=11)
    for name in ("mom_a", "mom_b", "mom_new"):
        d.register(name, "momentum")
    d.register("mr_a", "mean_reversion")
    rng = np.random.default_rng(5)
    for i in range(40):
        won = bool(rng.random() < 0.6)
        pnl = float(rng.uniform(0.5, 2.0)) if won else -float(rng.uniform(0.5, 1.5))
        d.record("mom_a" if i % 2 else "mr_a", won, pnl, trade_id=f"t{i}")
    d.record("mom_b", True, 1.0)
    return d


# ---------------------------------------------------------------- store backends
# Store tests take the ``store_url`` fixture and run once on SQLite and once on PostgreSQL. The
# PostgreSQL server comes from BAYES_MEM_TEST_PG_URL (an SQLAlchemy URL of a database the user may
# create databases from; .ci/run starts one): each test gets a fresh database, dropped afterwards.
# Without the variable the PostgreSQL variants skip, except under CI, where they fail.

PG_ENV = "BAYES_MEM_TEST_PG_URL"


def pg_admin_url() -> str:
    import os

    url = os.environ.get(PG_ENV, "").strip()
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: the PostgreSQL store tests cannot run")
        pytest.skip(f"PostgreSQL store tests need {PG_ENV} (an SQLAlchemy URL); .ci/run sets it")
    return url


@contextlib.contextmanager
def fresh_pg_database(prefix: str = "bm_test"):
    """The URL of a fresh, empty PostgreSQL database named ``<prefix>_<hex>``, dropped on exit
    (skipped without the server's URL, see :func:`pg_admin_url`)."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(pg_admin_url(), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_url():
    """The URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A store URL on each backend: a SQLite file in a fresh owner-only directory, or a fresh
    PostgreSQL database."""
    if request.param == "sqlite":
        from bayes_mem.store.store import sqlite_url

        data = tmp_path / "data"
        data.mkdir(mode=0o700)
        return sqlite_url(data)
    return request.getfixturevalue("pg_url")
