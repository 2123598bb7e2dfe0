"""The evaluation suite: sections run into a fresh folder that replaces the old one only when all
succeed; a failure keeps the previous results; the CLI runs a real section."""

import json
import sys
import types

import pytest

from bayes_mem.cli import main
from bayes_mem.evaluation import suite


def _fake_module(monkeypatch, name, fail=False):
    mod = types.ModuleType(name)

    def write_results(out_dir, *, seed=0, quick=False):
        if fail:
            raise RuntimeError("boom")
        out_dir.mkdir(parents=True)
        (out_dir / "t.csv").write_text(f"seed,{seed}\n")
        return {"markdown": f"## {name}\n\nseed {seed}\n", "value": seed}

    mod.write_results = write_results
    monkeypatch.setitem(sys.modules, name, mod)


@pytest.fixture
def fake_sections(monkeypatch):
    _fake_module(monkeypatch, "fake_ok")
    _fake_module(monkeypatch, "fake_bad", fail=True)
    monkeypatch.setattr(
        suite, "SECTIONS", {"ok": ("fake_ok", "OK section"), "bad": ("fake_bad", "Bad section")}
    )


def test_suite_writes_sections_and_summary(tmp_path, fake_sections):
    out = tmp_path / "results"
    summary = suite.run_suite(out, seed=4, only=["ok"])
    assert (out / "ok" / "t.csv").read_text() == "seed,4\n"
    assert summary["sections"]["ok"]["value"] == 4
    md = (out / "summary.md").read_text()
    assert "bayes-mem evaluate --out" in md and "--seed 4" in md
    assert "## OK section\n\nseed 4" in md and "## fake_ok" not in md  # one heading per section
    assert json.loads((out / "summary.json").read_text())["seed"] == 4
    # a second run replaces the folder whole
    suite.run_suite(out, seed=5, only=["ok"])
    assert (out / "ok" / "t.csv").read_text() == "seed,5\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_failed_section_keeps_previous_results(tmp_path, fake_sections):
    out = tmp_path / "results"
    suite.run_suite(out, seed=1, only=["ok"])
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(suite.EvaluationError, match="bad") as err:
        suite.run_suite(out, seed=2)
    after = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    partial = err.value.partial
    assert (partial / "ok" / "t.csv").read_text() == "seed,2\n"
    assert "FAILED: RuntimeError: boom" in (partial / "summary.md").read_text()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"only": ["nope"]}, "unknown"), ({"only": "ab"}, "list"), ({"seed": -1}, "seed")],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        suite.run_suite(tmp_path / "r", **kwargs)
    assert not (tmp_path / "r").exists()


def test_cli_runs_a_real_section(tmp_path, capsys):
    pytest.importorskip("arch")
    out = tmp_path / "ev"
    assert main(["evaluate", "--out", str(out), "--quick", "--only", "ab"]) == 0
    assert (out / "ab" / "ab_calibration.csv").exists()
    assert "## Strategy A/B tests" in (out / "summary.md").read_text()
    assert main(["evaluate", "--out", str(out), "--only", "nope"]) == 1
    assert "unknown evaluation sections" in capsys.readouterr().err


def test_only_reruns_one_section_and_keeps_the_others(tmp_path, monkeypatch):
    _fake_module(monkeypatch, "fake_a")
    _fake_module(monkeypatch, "fake_b")
    monkeypatch.setattr(suite, "SECTIONS", {"a": ("fake_a", "A"), "b": ("fake_b", "B")})
    out = tmp_path / "results"
    suite.run_suite(out, seed=1)
    summary = suite.run_suite(out, seed=2, only=["b"])
    assert (out / "a" / "t.csv").read_text() == "seed,1\n"  # carried over
    assert (out / "b" / "t.csv").read_text() == "seed,2\n"
    assert list(summary["sections"]) == ["a", "b"]
    kept = summary["sections"]["a"]
    assert kept["seed"] == 1 and "--seed 1" in kept["command"]
    md = (out / "summary.md").read_text()
    assert md.index("## A\n") < md.index("## B\n") and "--only b" in md
