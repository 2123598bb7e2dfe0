"""The command line of issue 20: --json, priors list/show, --version, -v after the verb, missing
paths, help on every option, every bad cell of an ingest named, third-party INFO lines hidden."""

import argparse
import json
import logging
from pathlib import Path

import pytest

from bayes_mem.cli import build_parser, main
from bayes_mem.store import Store
from tests.test_operator_commands import registry
from tests.test_prior_set import make


def store_dir(tmp_path):
    data = tmp_path / "data"
    Store(data_dir=data).close()
    return data


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("bayes-mem ") and out.split()[1][0].isdigit()


def test_verbose_is_accepted_after_the_verb(tmp_path, capsys):
    models = registry(tmp_path)
    for argv in (["-v", "priors", "list"], ["priors", "list", "-v"], ["priors", "list"]):
        assert main([*argv, "--models", str(models)]) == 0
    args = build_parser().parse_args(["priors", "list", "--verbose"])
    assert args.verbose is True


LOG_SCRIPT = """
import logging, sys
from bayes_mem.cli import _configure_logging
_configure_logging(sys.argv[1] == "-v")
logging.getLogger("pytensor.configdefaults").info("compiling the world")
logging.getLogger("arviz").info("arviz chatter")
logging.getLogger("distributed.scheduler").info("scheduler chatter")
logging.getLogger("bayes_mem.offline").info("our own line")
logging.getLogger("pymc").warning("a real warning")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_third_party_info_lines_are_hidden_unless_verbose(verbose):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    err = subprocess.run(
        [sys.executable, "-c", LOG_SCRIPT, "-v" if verbose else "-"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stderr  # fmt: skip
    assert "our own line" in err and "a real warning" in err
    for chatter in ("compiling the world", "arviz chatter", "scheduler chatter"):
        assert (chatter in err) == verbose, err


def test_main_quiets_third_party_loggers(tmp_path, capsys):
    models = registry(tmp_path)
    assert main(["priors", "list", "--models", str(models)]) == 0
    assert not logging.getLogger("pytensor").isEnabledFor(logging.INFO)
    assert main(["priors", "list", "-v", "--models", str(models)]) == 0
    assert logging.getLogger("pytensor").isEnabledFor(logging.INFO)
    main(["priors", "list", "--models", str(models)])  # back to the default for other tests


def test_every_option_has_help():
    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for verb, sub in action.choices.items():
                    yield from walk(sub, f"{name} {verb}")
            elif action.help in (None, ""):
                yield f"{name}: {action.dest}"

    assert list(walk(build_parser(), "bayes-mem")) == []


def test_ingest_help_lists_the_columns_of_each_kind(capsys):
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    out = capsys.readouterr().out
    for column in ("name, family", "trade_id", "won", "pnl", "settled_at", "opened_at",
                   "notional", "symbol", "date", "return"):  # fmt: skip
        assert column in out, column


def test_ingest_into_a_missing_store_is_an_error_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "signals.csv"
    bad.write_text("name,family\n,momentum\n")
    good = tmp_path / "good.csv"
    good.write_text("name,family\ns1,momentum\n")
    for f in (bad, good):
        assert main(["ingest", "signals", str(f)]) == 2
        err = capsys.readouterr().err
        assert "data/bayes_mem.sqlite" in err or "no data directory data" in err, err
        assert not (tmp_path / "data").exists()
    assert main(["ingest", "signals", str(good), "--data", str(tmp_path / "elsewhere")]) == 2
    assert "elsewhere" in capsys.readouterr().err and not (tmp_path / "elsewhere").exists()
    url = f"sqlite:///{tmp_path}/nope.sqlite"
    assert main(["ingest", "signals", str(good), "--store", url]) == 2
    assert "nope.sqlite" in capsys.readouterr().err and not (tmp_path / "nope.sqlite").exists()
    assert main(["recalibrate"]) == 2  # the nightly job in the wrong folder: nothing created
    assert "data" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()
    # created on purpose
    assert main(["ingest", "signals", str(good), "--create"]) == 0
    assert (tmp_path / "data" / "bayes_mem.sqlite").exists()
    assert main(["ingest", "signals", str(good)]) == 0  # now it exists


def test_missing_models_or_store_for_read_verbs_is_exit_2(tmp_path, capsys):
    nowhere = tmp_path / "nowhere"
    for argv in (["priors", "list"], ["priors", "show", "1"], ["priors", "verify"],
                 ["report", "1"]):  # fmt: skip
        assert main([*argv, "--models", str(nowhere)]) == 2, argv
        assert str(nowhere) in capsys.readouterr().err
    models = registry(tmp_path)
    assert main(["report", "1", "--models", str(models), "--data", str(nowhere)]) == 2
    assert str(nowhere) in capsys.readouterr().err
    assert main(["recalibrate", "--models", str(models), "--data", str(nowhere)]) == 2
    assert str(nowhere) in capsys.readouterr().err
    assert not nowhere.exists()
    assert main(["priors", "activate", "2", "--models", str(models), "--data", str(nowhere)]) == 2
    assert not nowhere.exists()


def test_ingest_names_every_bad_cell_by_its_column_and_writes_nothing(tmp_path, capsys):
    data = store_dir(tmp_path)
    signals = tmp_path / "signals.csv"
    signals.write_text("name,family\ns1,momentum\n,\n")
    assert main(["ingest", "signals", str(signals), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert "line 3, name = ''" in err and "line 3, family = ''" in err, err
    signals.write_text("name,family\ns1,momentum\n")
    assert main(["ingest", "signals", str(signals), "--data", str(data)]) == 0
    capsys.readouterr()
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        "trade_id,signal,won,pnl,settled_at\n"
        "t1,s1,true,1.0,2026-01-02\n"
        "t2,s1,yes,1_0,02/01/2026\n"
        "t3,s1,false,-1.0,2026-01-02\n"
    )
    assert main(["ingest", "outcomes", str(outcomes), "--data", str(data)]) == 1
    err = capsys.readouterr().err
    for column, value in (("won", "'yes'"), ("pnl", "'1_0'"), ("settled_at", "'02/01/2026'")):
        assert f"line 3, {column} = {value}: " in err, err
    assert ", value" not in err
    assert main(["ingest", "outcomes", str(outcomes), "--data", str(data), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["written"] == 0
    assert [(p["line"], p["column"], p["value"]) for p in doc["problems"]] == [
        (3, "won", "yes"),
        (3, "pnl", "1_0"),
        (3, "settled_at", "02/01/2026"),
    ]
    returns = tmp_path / "returns.csv"
    returns.write_text("symbol,date,return\nSPY,2026-01-02,0.01\n,2026-01-02 13:00,abc\n")
    assert main(["ingest", "returns", str(returns), "--kind", "log", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    for column in ("symbol", "date", "return"):
        assert f"line 3, {column} = " in err, err
    with Store(data_dir=data) as store:
        assert len(store.table("outcomes")) == 0 and len(store.table("returns")) == 0


def test_priors_list_has_a_header_and_names_the_active_version(tmp_path, capsys):
    models = registry(tmp_path, versions=(1, 2), active=2)
    assert main(["priors", "list", "--models", str(models)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["VERSION", "STATUS", "CREATED", "GATE"]
    assert lines[1].startswith("v000001  ") and "active" not in lines[1]
    assert lines[2].startswith("v000002  active  2026-11-25T02:00:00+00:00  passed")
    assert main(["priors", "list", "--json", "--models", str(models)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["active"] == 2
    assert [(v["version"], v["active"], v["gate"]) for v in doc["versions"]] == [
        (1, False, "passed"),
        (2, True, "passed"),
    ]


def test_priors_show_prints_the_priors_and_takes_the_listed_version(tmp_path, capsys):
    import numpy as np

    from bayes_mem.live.return_model import ReturnModel

    models = registry(tmp_path)
    ps = make(2, seed=2)
    assert main(["priors", "show", "v000002", "--json", "--models", str(models)]) == 0
    by_name = json.loads(capsys.readouterr().out)
    assert main(["priors", "show", "2", "--json", "--models", str(models)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == by_name and shown["version"] == 2
    for name, fam in ps.families.items():
        got = shown["families"][name]
        assert got["mean_win_rate"]["mean"] == pytest.approx(fam.mean.mean())
        assert got["mean_win_rate"]["interval"] == pytest.approx(
            np.quantile(fam.mean, [0.05, 0.95])
        )
        assert got["concentration"]["mean"] == pytest.approx(fam.kappa.mean())
        assert got["concentration"]["interval"] == pytest.approx(
            np.quantile(fam.kappa, [0.05, 0.95])
        )
    sym = ps.symbols["SPY"]
    want = ReturnModel({"SPY": sym.draws}, {"SPY": sym.sigma2}).risk(0.975)
    spy = shown["risk"]["SPY"]
    assert spy["es_log"] == pytest.approx(want.es_log[0]) and spy["level"] == 0.975
    lo, hi = spy["es_log_interval"]
    assert lo < spy["es_log"] < hi and spy["es_log"] > spy["var_log"] > 0
    assert main(["priors", "show", "v000002", "--models", str(models)]) == 0
    text = capsys.readouterr().out
    assert "momentum" in text and "mean_reversion" in text and "SPY" in text
    assert "97.5% ES" in text and "90% interval" in text
    for bad in ("v2x", "w000002", "0", "v"):
        with pytest.raises(SystemExit) as info:
            main(["priors", "show", bad, "--models", str(models)])
        assert info.value.code == 2
        assert repr(bad) in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["priors", "verify"], ["priors", "activate", "2"], ["demo-live", "--rounds", "50"]]
)
def test_json_is_one_document_on_stdout(tmp_path, capsys, argv):
    models = registry(tmp_path)
    extra = (["--state", str(tmp_path / "s.json")] if argv[0] == "demo-live"
             else ["--models", str(models)])  # fmt: skip
    assert main([*argv, "--json", *extra]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict) and doc


def test_demo_and_evaluate_json(tmp_path, monkeypatch, capsys):
    import bayes_mem.demo_nightly
    import bayes_mem.evaluation.suite

    monkeypatch.setattr(bayes_mem.demo_nightly, "run", lambda root, seed: (0, ["line 1", "x"]))
    sections = {"sections": {"risk": {"wall_seconds": 1.5}}}
    monkeypatch.setattr(bayes_mem.evaluation.suite, "run_suite", lambda out, **kw: sections)
    assert main(["demo", "--dir", str(tmp_path / "d"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == 0 and doc["report"] == ["line 1", "x"]
    assert main(["evaluate", "--out", str(tmp_path / "e"), "--json", "-v"]) == 0
    assert json.loads(capsys.readouterr().out)["seconds"] == {"risk": 1.5}
