"""The naming convention (issue 20): ``to_dict`` / ``from_dict`` for mappings, ``to_json`` /
``from_json`` for JSON text. The classes whose ``to_json`` returned a mapping (or a list) keep
it as a deprecated alias: it warns (DeprecationWarning) and returns what the new name returns;
every other ``to_json`` of the package returns text."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

import bayes_mem
from bayes_mem.live.changepoint import NormalGammaPrior
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.prior_set import PriorSet, RegimePrior
from bayes_mem.live.priors import BetaPrior
from bayes_mem.offline.diagnostics import MISFIT, Failure, Verdict
from bayes_mem.offline.recalibrate import RecalibrationResult
from bayes_mem.offline.returns_model import PRIORS
from tests.test_prior_set import REGIME, make

GARCH = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.87], nu=[6.0],
                   lam=[-0.1])  # fmt: skip


def _objects():
    ps = make(1)
    verdict = Verdict.of([Failure("rhat", MISFIT, "x", math.inf, "S")], {"n": 3})
    return {  # name: (object, new name of to_json, the from_dict reader or None)
        "BetaPrior": (BetaPrior(2.0, 3.0), "to_dict", BetaPrior),
        "NormalGammaPrior": (NormalGammaPrior(0.1, 2.0, 3.0, 4.0), "to_dict", NormalGammaPrior),
        "GarchDraws": (GARCH, "to_dict", GarchDraws),
        "RegimePrior": (RegimePrior.from_dict(REGIME), "to_dict", RegimePrior),
        "ComponentSource": (ps.source("winrate"), "to_dict", type(ps.source("winrate"))),
        "PriorSet": (ps, "to_dict", PriorSet),
        "Verdict": (verdict, "to_dict", None),
        "RecalibrationResult": (RecalibrationResult(3, "active", {"passed": True}), "to_dict",
                                None),
        "Prior": (PRIORS["pi0"], "to_list", None),
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(_objects()))
def test_the_old_names_warn_and_return_the_same(name):
    obj, new, cls = _objects()[name]
    expected = getattr(obj, new)()
    assert isinstance(expected, list if new == "to_list" else dict)
    with pytest.warns(DeprecationWarning, match=rf"^{name}\.to_json\(\) is deprecated, use "
                      rf"{name}\.{new}\(\)") as seen:  # fmt: skip
        assert obj.to_json() == expected
    assert seen[0].filename == __file__  # attributed to the caller
    if cls is not None:
        back = cls.from_dict(expected)
        assert back.to_dict() == expected
        with pytest.warns(DeprecationWarning, match=rf"^{name}\.from_json\(\) is deprecated"):
            assert cls.from_json(expected).to_dict() == expected


def test_every_to_json_of_the_package_returns_text_or_is_a_deprecated_alias():
    """On the source: each ``def to_json`` / ``from_json`` is annotated ``-> str`` / takes
    ``text: str``, or calls ``warn_renamed`` (then a ``to_dict``, ``to_list`` or
    ``from_dict`` sits beside it)."""
    root = Path(bayes_mem.__file__).resolve().parent
    aliases, text = [], []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
            for name in ("to_json", "from_json"):
                m = methods.get(name)
                if m is None:
                    continue
                where = f"{path.relative_to(root)}:{node.name}.{name}"
                calls = {c.func.id for c in ast.walk(m) if isinstance(c, ast.Call)
                         and isinstance(c.func, ast.Name)}  # fmt: skip
                if "warn_renamed" in calls:
                    partner = {"to_json": ("to_dict", "to_list"), "from_json": ("from_dict",)}
                    assert any(p in methods for p in partner[name]), where
                    aliases.append(where)
                    continue
                if name == "to_json":
                    assert ast.unparse(m.returns) == "str", f"{where} does not return str"
                else:
                    arg = m.args.args[-1]
                    assert ast.unparse(arg.annotation) == "str", f"{where} does not read str"
                text.append(where)
    assert len(aliases) == 15  # 9 to_json + 6 from_json (the classes of the test above)
    assert len(text) >= 6  # Decider, the detectors, the payoff model, regime forgetting ...


def test_offline_fitters_renamed_with_deprecated_aliases() -> None:
    """The offline fitter is no longer named like the live ReturnModel (issue 20); the old names
    still resolve, with a DeprecationWarning."""
    from bayes_mem.offline import fanout, returns_model

    with pytest.warns(DeprecationWarning, match="use PooledReturnsFitter"):
        assert returns_model.ReturnsModel is returns_model.PooledReturnsFitter
    with pytest.warns(DeprecationWarning, match="use FanoutReturnsFitter"):
        assert fanout.FanoutReturnsModel is fanout.FanoutReturnsFitter
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = returns_model.Nope
