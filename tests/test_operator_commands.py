"""The operator's commands: ``priors activate`` as one decision with the store, ``--data`` never
chmodding an existing directory, a read-only store opened for reading, stray registry entries,
``priors verify``, and one clear line (no traceback) for every store or config error."""

import contextlib
import datetime as dt
import os
import socket
import sqlite3  # noqa: F401 - imported before a child drops privileges (it cannot read /root)
import stat
import warnings

import pytest
import sqlalchemy as sa

from bayes_mem.cli import main
from bayes_mem.live.prior_set import PriorSetError, activate, version_dir, write_prior_set
from bayes_mem.store import Store, schema
from tests.test_prior_set import make

OTHER_UID = 65534


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def registry(tmp_path, versions=(1, 2), active=1):
    models = tmp_path / "models"
    for v in versions:
        write_prior_set(make(v, seed=v), models)
    activate(models, active)
    return models


def store_with_rows(url, rows):
    """A store whose prior_sets table holds ``rows`` (version -> status)."""
    store = Store(url)
    with store.transaction() as conn:
        for v, status in rows.items():
            conn.execute(schema.prior_sets.insert().values(
                version=v, created_at=dt.datetime(2026, 1, v, tzinfo=dt.UTC), data_from=None,
                data_through=None, code_version="t", config_hash="h", status=status,
                diagnostics="{}", artifact_dir=f"v{v}",
            ))  # fmt: skip
    return store


def statuses(store) -> dict[int, str]:
    t = store.table("prior_sets")
    return dict(zip(t["version"].tolist(), t["status"].tolist(), strict=True))


def test_priors_activate_records_a_version_the_store_did_not_know(tmp_path, store_url, capsys):
    """Before: ACTIVE switched to v2, v1 retired, and no row was active (the store had no v2)."""
    models = registry(tmp_path)
    store = store_with_rows(store_url, {1: "active"})
    code = main(["priors", "activate", "2", "--models", str(models), "--store", store_url])
    assert code == 0, capsys.readouterr().err
    assert (models / "ACTIVE").read_bytes() == b"2\n"
    assert statuses(store) == {1: "retired", 2: "active"}
    row = store.table("prior_sets").set_index("version").loc[2]
    assert row["artifact_dir"] == str(version_dir(models, 2)) and row["code_version"] == "0.1.0"
    store.close()


@contextlib.contextmanager
def failing(store, when):
    """Make ``store`` fail at ``when``: "update" (a statement of the activation) or "commit"."""

    def on_execute(conn, cursor, statement, *a):
        if statement.lstrip().upper().startswith("UPDATE PRIOR_SETS"):
            raise sa.exc.OperationalError(statement, (), Exception("disk I/O error\ndetail"))

    def on_commit(conn):
        raise sa.exc.OperationalError("COMMIT", (), Exception("database is locked\nmore"))

    target, event, fn = (
        (store.engine, "before_cursor_execute", on_execute) if when == "update"
        else (store.engine, "commit", on_commit)
    )  # fmt: skip
    sa.event.listen(target, event, fn)
    try:
        yield
    finally:
        sa.event.remove(target, event, fn)


@pytest.mark.parametrize("when", ["update", "commit"])
def test_priors_activate_with_a_failing_store_changes_neither(
    tmp_path, store_url, capsys, monkeypatch, when
):
    """Before: ACTIVE was switched first, then the store failed (two tracebacks): the trader
    ran v2 while the store said v1."""
    import bayes_mem.cli as cli

    models = registry(tmp_path)
    store = store_with_rows(store_url, {1: "active", 2: "candidate"})
    opened = Store(store_url)
    monkeypatch.setattr(cli, "_open_store", lambda args: opened)
    with failing(opened, when):
        code = main(["priors", "activate", "2", "--models", str(models), "--store", store_url])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert ("locked" if when == "commit" else "disk I/O error") in err
    assert (models / "ACTIVE").read_bytes() == b"1\n"  # restored (commit) or never switched
    assert statuses(store) == {1: "active", 2: "candidate"}
    assert not [p for p in os.listdir(models) if p.startswith(".ACTIVE")]
    store.close()


def test_activate_restores_active_when_the_record_fails_to_commit(tmp_path):
    models = tmp_path / "models"
    write_prior_set(make(1), models)

    @contextlib.contextmanager
    def record(ps):
        assert ps.version == 1
        yield
        raise OSError("commit failed")

    with pytest.raises(OSError, match="commit failed"):
        activate(models, 1, record=record)
    assert not (models / "ACTIVE").exists()  # there was none: there is none

    @contextlib.contextmanager
    def refuse(ps):
        raise ValueError("store closed")
        yield

    activate(models, 1)
    write_prior_set(make(2), models)
    with pytest.raises(ValueError, match="store closed"):
        activate(models, 2, record=refuse)
    assert (models / "ACTIVE").read_bytes() == b"1\n"


def test_priors_activate_refuses_before_opening_the_store(tmp_path, capsys):
    models = registry(tmp_path)
    data = tmp_path / "data"
    store_with_rows(f"sqlite:///{tmp_path / 'x.sqlite'}", {}).close()
    code = main(["priors", "activate", "7", "--models", str(models), "--data", str(data)])
    assert code == 1 and "no prior set version 7" in capsys.readouterr().err
    assert not data.exists() and (models / "ACTIVE").read_bytes() == b"1\n"


# ---------------------------------------------------------------------------- --data
def test_an_existing_data_directory_is_never_chmodded(tmp_path, capsys):
    """Before: ``--data`` chmodded any existing directory to 0700 (a 1777 one too; the system
    temporary directory would have locked every other user out)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    Store(data_dir=shared).close()
    assert mode(shared) == 0o1777 and mode(shared / "bayes_mem.sqlite") == 0o600
    old = os.umask(0)
    try:
        Store(data_dir=tmp_path / "new" / "data").close()  # what the project creates: 0700
    finally:
        os.umask(old)
    assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "data") == 0o700
    assert mode(tmp_path / "new" / "data" / "bayes_mem.sqlite") == 0o600


def _in_child(fn, uid=None) -> tuple[int, str]:
    """Run ``fn`` in a forked child (as ``uid`` if given); its exit code and what it wrote."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        code = 3
        try:
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.write(w, str(fn()).encode())
            code = 0
        except BaseException as exc:
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(code)
    os.close(w)
    out = b""
    while chunk := os.read(r, 65536):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


@pytest.mark.parametrize("owner", ["reader", "other"])
def test_a_read_only_data_directory_opens_for_reading(owner):
    """Before: the store chmodded a read-only directory of its own user writable, and could not
    open one of another user at all (the chmod failed: PermissionError). As root the reader is
    a child running as uid 65534 (root ignores modes)."""
    import shutil
    import tempfile

    if owner == "other" and os.geteuid() != 0:
        pytest.skip("a directory of another user needs root to set up")
    root = tempfile.mkdtemp(prefix="bm-ro-")
    data = os.path.join(root, "data")
    try:
        os.chmod(root, 0o755)
        store = Store(data_dir=data)
        store.register_signals({"a": "momentum", "b": "carry"})
        store.close()
        db = os.path.join(data, "bayes_mem.sqlite")
        uid = OTHER_UID if os.geteuid() == 0 else None
        if owner == "reader":
            if uid is not None:
                for p in (data, db):
                    os.chown(p, OTHER_UID, OTHER_UID)
            os.chmod(db, 0o400)
            os.chmod(data, 0o500)
        else:  # root's store, readable by everyone, writable by root alone
            os.chmod(db, 0o644)
            os.chmod(data, 0o755)
        before = mode(data)

        def read():
            s = Store(data_dir=data)
            try:
                signals = s.signals()
                try:
                    s.register_signals({"c": "x"})
                    wrote = "wrote"
                except Exception as exc:
                    wrote = "readonly" in str(exc)
                return (getattr(s, "read_only", None), signals, wrote)
            finally:
                s.close()

        code, out = _in_child(read, uid)
        assert mode(data) == before and sorted(os.listdir(data)) == ["bayes_mem.sqlite"]
        assert code == 0, out
        assert out == str((True, {"a": "momentum", "b": "carry"}, True))
    finally:
        os.chmod(data, 0o700)
        shutil.rmtree(root)


# ---------------------------------------------------------------------------- one clear line
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ERRORS = {
    "foo://bar": (["ingest", "signals", "x.csv", "--store", "foo://bar"], 2, "unknown database"),
    "not a url": (["ingest", "signals", "x.csv", "--store", "not a url"], 2, "not a database URL"),
    "mysql": (["ingest", "signals", "x.csv", "--store", "mysql://u@localhost/db"], 1, "driver"),
    "closed port": (
        ["ingest", "signals", "x.csv", "--store", "postgresql+psycopg://u:secret@127.0.0.1:{port}/d"],
        1, r"cannot open the store postgresql\+psycopg://u:\*\*\*@127\.0\.0\.1",
    ),
    "not a database": (["ingest", "signals", "x.csv", "--store", "sqlite:///{tmp}/x.sqlite"], 1,
                       "file is not a database"),
    "activate, bad URL": (["priors", "activate", "9", "--store", "foo://bar"], 2, "unknown"),
    "nested config": (["recalibrate", "--config", "{tmp}/deep.json", "--data", "{tmp}/d"], 1,
                      "nested too deeply"),
    "5,000-digit config": (["recalibrate", "--config", "{tmp}/big.json", "--data", "{tmp}/d"], 1,
                           "4300 digits"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERRORS))
def test_store_and_config_errors_are_one_clear_line(tmp_path, capsys, case):
    argv, want, match = ERRORS[case]
    (tmp_path / "x.sqlite").write_bytes(b"SQLite format 2\x00" + b"garbage" * 100)
    (tmp_path / "deep.json").write_text('{"draws": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (tmp_path / "big.json").write_text('{"draws": ' + "1" * 5000 + "}")
    argv = [a.format(tmp=tmp_path, port=_closed_port()) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == want and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"bayes-mem {argv[0]}: error: ")
    import re

    assert re.search(match, err), err
    assert "secret" not in err


def test_priors_list_skips_stray_entries_and_verify_checks_every_file(tmp_path, capsys):
    """Before: a stray ``v1abc`` directory stopped ``priors list`` (exit 1)."""
    models = registry(tmp_path, versions=(1,))
    for stray in ("v1abc", "v\u00b2", "v0000001", "v000000", ".tmp-v000002-x", "notes"):
        (models / "prior_sets" / stray).mkdir()
    assert main(["priors", "list", "--models", str(models)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("VERSION  STATUS")  # a header (issue 20)
    assert lines[1].startswith("v000001  active  2026-11-25T02:00:00+00:00  passed")
    assert main(["priors", "verify", "1", "--models", str(models)]) == 0
    assert capsys.readouterr().out.startswith("v000001  OK  prior_set.json: hash ok")
    (version_dir(models, 1) / "planted.csv").write_text("x")
    assert main(["priors", "verify", "--models", str(models)]) == 1
    assert "planted.csv: not in the manifest" in capsys.readouterr().out


def test_a_refused_active_set_is_named_by_priors_list(tmp_path, capsys):
    models = registry(tmp_path, versions=(1,))
    (models / "ACTIVE").write_bytes("\u00b2".encode())
    assert main(["priors", "list", "--models", str(models)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ACTIVE UNREADABLE:") and "\nv000001  " in out  # issue 20: no marker
    with pytest.raises(PriorSetError):
        activate(models, 7)
