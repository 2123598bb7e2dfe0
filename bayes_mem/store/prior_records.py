"""The store's record of the prior sets (table ``prior_sets``), kept in line with the registry.

``models/ACTIVE`` is the source of truth (the trader reads it); the store's statuses follow:

- :func:`activation_record` is the store's half of an activation, for the ``record`` argument
  of :func:`bayes_mem.live.prior_set.activate`: one transaction that retires every other active
  row and marks the version active (inserting its row from the set's own metadata when the store
  has none: a version published outside the nightly job). It is prepared before ``ACTIVE`` is
  switched and committed after; a commit that fails restores ``ACTIVE``, so both change or
  neither. A crash between the switch and the commit leaves ``ACTIVE`` ahead, and
- :func:`reconcile`, which the nightly job runs first, brings the statuses in line with
  ``ACTIVE``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bayes_mem.live.prior_set import PriorSet, active_version, version_dir
from bayes_mem.store import schema

log = logging.getLogger("bayes_mem.prior_records")


def prior_set_row(
    prior_set: PriorSet, models_dir: str | Path, status: str, **values: Any
) -> dict[str, Any]:
    """A ``prior_sets`` row describing ``prior_set`` (its metadata; naive times are UTC).

    Examples
    --------
    >>> from bayes_mem.live import FamilyPosterior, PriorSet
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])})
    >>> row = prior_set_row(prior_set, "models", "candidate")
    >>> row["version"], row["status"], row["created_at"].isoformat(), row["data_through"]
    (1, 'candidate', '2026-03-02T22:00:00+00:00', datetime.date(2026, 3, 2))
    """
    created = dt.datetime.fromisoformat(prior_set.created_at)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    through = prior_set.data_through
    return {
        "version": prior_set.version,
        "created_at": created,
        "data_from": None,
        "data_through": None if through is None else dt.date.fromisoformat(through[:10]),
        "code_version": prior_set.code_version,
        "config_hash": prior_set.config_hash,
        "status": status,
        "diagnostics": json.dumps(prior_set.diagnostics),
        "artifact_dir": str(version_dir(models_dir, prior_set.version)),
        **values,
    }


@contextmanager
def activation_record(store: Any, prior_set: PriorSet, models_dir: str | Path) -> Iterator[None]:
    """The store's half of activating ``prior_set``: its writes are made on entering (inside a
    transaction holding the write lock) and committed on leaving; an exception in between rolls
    them back.

    Examples
    --------
    Activating version 1 with the store's record: ``ACTIVE`` and the store agree:

    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, activate, write_prior_set
    >>> from bayes_mem.store import Store
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> models = tempfile.TemporaryDirectory()
    >>> _ = write_prior_set(prior_set, models.name)
    >>> store = Store("sqlite://")  # an in-memory SQLite store
    >>> _ = activate(models.name, 1, record=lambda ps: activation_record(store, ps, models.name))
    >>> active_version(models.name), store.table("prior_sets")["status"].tolist()
    (1, ['active'])
    >>> models.cleanup()
    """
    ps = schema.prior_sets
    version, now = prior_set.version, dt.datetime.now(dt.UTC)
    with store.transaction() as conn:
        known = conn.execute(sa.select(ps.c.version).where(ps.c.version == version)).first()
        if known is None:
            row = prior_set_row(prior_set, models_dir, "active", activated_at=now)
            conn.execute(ps.insert().values(**row))
            log.warning("the store had no record of prior set v%d; recorded from the set", version)
        conn.execute(
            ps.update().where(ps.c.status == "active", ps.c.version != version)
            .values(status="retired")
        )  # fmt: skip
        conn.execute(
            ps.update().where(ps.c.version == version).values(status="active", activated_at=now)
        )
        yield


def reconcile(store: Any, models_dir: str | Path) -> None:
    """Make the store's prior-set statuses agree with ``ACTIVE`` (the trader's source of truth):
    a run killed between activation and its status update left them apart.

    Examples
    --------
    A store that still calls version 1 a candidate after version 1 was activated is corrected:

    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, activate, write_prior_set
    >>> from bayes_mem.store import Store
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> models = tempfile.TemporaryDirectory()
    >>> _ = write_prior_set(prior_set, models.name)
    >>> store = Store("sqlite://")  # an in-memory SQLite store
    >>> store.record_prior_set(prior_set_row(prior_set, models.name, "candidate"))
    >>> _ = activate(models.name, 1)  # without the store's record
    >>> reconcile(store, models.name)
    >>> store.table("prior_sets")["status"].tolist()
    ['active']
    >>> models.cleanup()
    """
    active = active_version(models_dir)
    if active is None:
        return
    ps = schema.prior_sets
    with store.transaction() as conn:
        rows = dict(conn.execute(sa.select(ps.c.version, ps.c.status)).all())
        wrong = [v for v, st in rows.items() if st == "active" and v != active]
        if wrong:
            conn.execute(ps.update().where(ps.c.version.in_(wrong)).values(status="retired"))
        if rows.get(active) not in (None, "active"):
            conn.execute(
                ps.update().where(ps.c.version == active)
                .values(status="active", activated_at=dt.datetime.now(dt.UTC))
            )  # fmt: skip
        if wrong or rows.get(active) not in (None, "active"):
            log.warning("store prior-set statuses reconciled with ACTIVE (v%d)", active)
