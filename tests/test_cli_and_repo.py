"""The command line, the demo, and the promises README makes about the repository."""

import os
import re
import stat
from pathlib import Path

import pytest

from bayes_mem.cli import main
from bayes_mem.demo import run_demo
from bayes_mem.live import Decider

ROOT = Path(__file__).resolve().parents[1]


def test_demo_learns_and_writes_a_restorable_owner_only_snapshot(tmp_path, capsys):
    state = tmp_path / "state" / "decider.json"
    assert main(["demo-live", "--rounds", "300", "--seed", "3", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "PnL" in out and str(state) in out
    restored = Decider.from_json(state.read_text())
    assert len(restored.signals) == 60
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert not list(state.parent.glob("*.tmp"))


def test_demo_beats_trading_everything_and_is_reproducible():
    a, b = run_demo(seed=1, rounds=1_500), run_demo(seed=1, rounds=1_500)
    assert (a.pnl, a.trades) == (b.pnl, b.trades)
    assert a.pnl > a.pnl_trade_all


@pytest.mark.parametrize(
    "argv", [["demo-live", "--rounds", "0"], ["demo-live", "--rounds", "x"], ["nope"], []]
)
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_readme_quick_start_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(\./run [a-z]+)", quick, flags=re.M)
    assert commands == ["./run job", "./run tests"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\./run tests\s*$", ci, flags=re.M)
    assert os.access(ROOT / ".ci" / "run", os.X_OK) and os.access(ROOT / "run", os.X_OK)
    assert (ROOT / ".python-version").read_text().strip() == "3.12"


def test_no_lock_files_or_index_hosts_are_tracked():
    for name in ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock"):
        assert not (ROOT / name).exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r"index[-_]url|find[-_]links", pyproject)  # no package index named


@pytest.mark.slow
def test_full_demo_runs_the_nightly_job_and_a_trading_day(tmp_path, capsys):
    root = tmp_path / "demo"
    assert main(["demo", "--dir", str(root), "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "prior set v1 active" in out and "binding" in out and "regime: hazard" in out
    assert f"bayes-mem dashboard --data {root / 'data'} --models {root / 'models'}" in out
    assert (root / "models" / "ACTIVE").read_text().strip() == "1"
    assert main(["demo", "--dir", str(root), "--seed", "1"]) == 0  # recreated, not appended
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    assert main(["demo", "--dir", str(foreign)]) == 1
    assert (foreign / "keep.txt").read_text() == "precious"
