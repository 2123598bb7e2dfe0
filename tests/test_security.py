"""Security properties: SQL only through bound parameters, nothing executable read from disk,
names unchanged through store and JSON, owner-only files where trading data lives."""

import ast
import json
import os
import stat
from pathlib import Path

import pytest

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.prior_set import (
    FamilyPosterior,
    activate,
    load_active,
    version_dir,
    write_prior_set,
)
from bayes_mem.store import PersistentDecider, Store
from tests.test_fuzz_store_cli import HOSTILE_NAMES

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_mem"
SOURCES = sorted(PACKAGE.rglob("*.py"))


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            yield node, f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def test_no_pickle_eval_or_exec_on_anything():
    banned_modules = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "yaml"}
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {n.split(".")[0] for n in names} & banned_modules, (path, names)
        for node, name in calls(tree):
            f = node.func  # re.compile (a regular expression) is not the builtin compile
            regex = isinstance(f, ast.Attribute) and getattr(f.value, "id", "") == "re"
            assert name not in {"eval", "exec", "compile", "__import__"} or regex, (
                path,
                node.lineno,
            )
            if name in ("load", "read_pickle"):
                kw = {k.arg: k.value for k in node.keywords}
                assert name != "read_pickle", (path, node.lineno)
                allow = kw.get("allow_pickle")
                assert allow is None or (
                    isinstance(allow, ast.Constant) and allow.value is False
                ), (path, node.lineno)


def test_sql_text_is_only_ever_a_constant():
    """Raw SQL (``text``, ``exec_driver_sql``, a DBAPI cursor's ``execute``) only with literal
    strings: every value goes through SQLAlchemy expressions, i.e. bound parameters."""
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node, name in calls(tree):
            if name in ("text", "exec_driver_sql") or (
                name == "execute" and node.args and not isinstance(node.args[0], ast.Call | ast.Name
                                                                   | ast.Attribute | ast.Subscript)
            ):  # fmt: skip
                if name == "text" and not (
                    isinstance(node.func, ast.Attribute)
                    and getattr(node.func.value, "id", "") in ("sa", "sqlalchemy")
                ):
                    continue  # e.g. Path.read_text / write_text
                arg = node.args[0] if node.args else None
                ok = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                ok = ok or (
                    isinstance(arg, ast.IfExp)
                    and all(isinstance(x, ast.Constant) for x in (arg.body, arg.orelse))
                )
                assert ok, f"{path.name}:{node.lineno}: SQL built from values"


def test_hostile_names_round_trip_through_store_snapshot_and_prior_set(store_url, tmp_path):
    store = Store(store_url)
    live = PersistentDecider(Decider({n: BetaPrior(2, 2) for n in HOSTILE_NAMES[:4]}, rng=0), store)
    for i, name in enumerate(HOSTILE_NAMES):
        live.register(name, HOSTILE_NAMES[i % 4])
        live.record(name, True, 1.0, trade_id=name)  # a hostile trade id too
    assert set(store.signals()) == set(HOSTILE_NAMES)
    assert set(store.signals().values()) == set(HOSTILE_NAMES[:4])
    assert list(store.outcomes()["trade_id"]) == HOSTILE_NAMES
    assert set(store.table("signals")["name"]) == set(HOSTILE_NAMES)  # tables all still there
    back = Decider.from_json(live.decider.to_json())
    assert back.signals == live.decider.signals
    restored = PersistentDecider.restore(store, {n: BetaPrior(2, 2) for n in HOSTILE_NAMES[:4]})
    assert set(restored.signals) == set(HOSTILE_NAMES)
    assert all(restored.seen_trade(n) for n in HOSTILE_NAMES)
    from tests.test_prior_set import make

    ps = make(1)
    fam = ps.families["momentum"]
    ps = type(ps)(**{**ps.__dict__, "families": {n: FamilyPosterior(fam.mean, fam.kappa)
                                                  for n in HOSTILE_NAMES}})  # fmt: skip
    write_prior_set(ps, tmp_path / "models")
    activate(tmp_path / "models", 1)
    assert set(load_active(tmp_path / "models").families) == set(HOSTILE_NAMES)
    store.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_trading_data_files_are_owner_only(tmp_path):
    store = Store(data_dir=tmp_path / "data")
    store.register_signals({"s": "f"})
    store.append_outcome("t", "s", True, 1.0)
    for p in (tmp_path / "data").iterdir():  # the database and its -wal / -shm files
        assert mode(p) == 0o600, p
    assert mode(tmp_path / "data") == 0o700
    explicit = tmp_path / "explicit.sqlite"
    Store(f"sqlite:///{explicit}").close()
    assert mode(explicit) == 0o600
    from tests.test_prior_set import make

    final = write_prior_set(make(1), tmp_path / "models")
    assert mode(final) == 0o700 and mode(final / "prior_set.json") == 0o600
    assert mode(version_dir(tmp_path / "models", 1)) == 0o700
    store.close()


@pytest.mark.slow
def test_cli_summary_file_is_owner_only(tmp_path, capsys):
    from bayes_mem.cli import main
    from tests.test_recalibrate import fill

    store = Store(data_dir=tmp_path / "data")
    fill(store)
    store.close()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"returns_model": "laplace", "returns_draws": 50,
                               "returns_min_days": 300, "regime": False}))  # fmt: skip
    out = tmp_path / "summary.json"
    argv = ["recalibrate", "--data", str(tmp_path / "data"), "--models", str(tmp_path / "m")]
    assert main([*argv, "--config", str(cfg), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["status"] == "active" and mode(out) == 0o600
    nc = next((tmp_path / "m" / "prior_sets" / "v000001").glob("*.nc"))
    assert mode(nc) == 0o600


def test_nul_characters_in_names_are_refused_everywhere(tmp_path):
    """PostgreSQL cannot store NUL in text (the fuzzer found it on the PostgreSQL store): a name
    or trade id holding one is refused on every backend and in memory, naming the value."""
    import pandas as pd

    from bayes_mem.live import Decider
    from bayes_mem.store import IngestError, Store

    d = Decider(["f"])
    with pytest.raises(ValueError, match="NUL"):
        d.register("a\x00b", "f")
    d.register("s", "f")
    with pytest.raises(ValueError, match="NUL"):
        d.record("s", True, 1.0, trade_id="t\x00")
    assert d.metrics("s").trades == 0
    store = Store(data_dir=tmp_path / "d")
    store.register_signals({"s": "f"})
    with pytest.raises(IngestError, match="NUL"):
        store.register_signals({"x\x00": "f"})
    with pytest.raises(ValueError, match="NUL"):
        store.append_outcome("t1", "s\x00", True, 1.0)
    frame = pd.DataFrame(
        [{"trade_id": "t\x00", "signal": "s", "won": True, "pnl": 1.0, "settled_at": "2026-01-02"}]
    )
    with pytest.raises(IngestError, match="NUL"):
        store.ingest_outcomes(frame)
    assert len(store.table("outcomes")) == 0 and set(store.signals()) == {"s"}
    store.close()
