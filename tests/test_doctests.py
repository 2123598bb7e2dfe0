"""Every ``>>>`` example in the package's docstrings runs and prints what it says (issue 20: an
example on every public name, kept true by CI). Modules are imported as the package imports
them; examples that need optional extras import them themselves."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import bayes_mem


def _modules_with_examples() -> list[str]:
    out = []
    for info in pkgutil.walk_packages(bayes_mem.__path__, "bayes_mem."):
        spec = importlib.util.find_spec(info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as f:
            if ">>>" in f.read():
                out.append(info.name)
    return sorted(out)


MODULES = _modules_with_examples()


def test_some_modules_have_examples() -> None:
    assert "bayes_mem.live.decider" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    with np.printoptions(legacy=False):
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
    assert result.attempted > 0, f"{name}: no example ran"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
