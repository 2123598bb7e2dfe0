"""README's "Integrate into a trader" example runs as pasted on a demo-shaped store and registry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bayes_mem.demo_nightly import FAMILIES, SYMBOLS, synthesize
from bayes_mem.live.prior_set import (
    FamilyPosterior,
    PriorSet,
    SymbolPosterior,
    activate,
    write_prior_set,
)
from bayes_mem.store import Store
from tests import engine_parts as parts

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Integrate into a trader", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def demo_prior_set(data_through: str) -> PriorSet:
    rng = np.random.default_rng(0)
    fams = {
        f: FamilyPosterior(
            np.clip(mean + 0.01 * rng.standard_normal(100), 0.01, 0.99),
            np.exp(np.log(conc) + 0.2 * rng.standard_normal(100)),
        )
        for f, (mean, conc) in FAMILIES.items()
    }
    syms = {s: SymbolPosterior(parts.draws(i, 50), np.full(50, 1e-4)) for i, s in
            enumerate(SYMBOLS)}  # fmt: skip
    return PriorSet(
        version=1, created_at="2026-11-24T23:00:00+00:00", data_through=data_through,
        code_version="test", config_hash="0" * 64, families=fams, symbols=syms,
        diagnostics={"passed": True, "reasons": []},
        regime=parts.prior_set(1).regime,
    )  # fmt: skip


def test_the_readme_integration_example_runs_as_pasted(tmp_path, monkeypatch, capsys):
    demo = tmp_path / "demo"
    with Store(data_dir=demo / "data") as store:
        synthesize(store, np.random.default_rng(3), signals_per_family=10)
        last = store.returns_panel().index[-1]
    ps = demo_prior_set(str(last)[:10])
    write_prior_set(ps, demo / "models")
    activate(demo / "models", 1)
    monkeypatch.chdir(tmp_path)
    code = readme_example()
    assert len(code.strip().splitlines()) <= 20  # the budget for the example
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "spy_mom20 -> long SPY (5d)" in out
    with Store(data_dir=demo / "data") as store:
        assert store.signal_symbols()["spy_mom20"] == "SPY"
        logged = store.decisions()
        assert "spy_mom20@" in logged["key"].iloc[-1]
        assert len(store.table("risk_metrics")) == len(SYMBOLS)
    # a second run the next day works too (the example is idempotent for a trader's restart)
    exec(compile(code, "README.md", "exec"), {})


def test_readme_example_mentions_only_public_names():
    code = readme_example()
    assert "._" not in code and "_market" not in code


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
