"""The package's layers, checked on the source (ast) of every module of ``bayes_mem``.

- ``bayes_mem.live`` (what the trader imports) imports nothing from ``bayes_mem.store``,
  ``bayes_mem.offline``, ``bayes_mem.evaluation`` or ``bayes_mem.dashboard``;
- ``bayes_mem.offline`` (the nightly job) imports nothing from ``bayes_mem.evaluation`` or
  ``bayes_mem.dashboard``;
- no module imports a private module (a ``_name`` component) of another subpackage: a private
  module is imported only from inside the subpackage that holds it.

Every import statement counts, also one inside a function (a deferred import is still a
dependency). Relative imports are resolved against the importing module.

One exception is listed in :data:`DEFERRED_EXCEPTIONS`, allowed only as an import inside a
function and only while it exists (the test fails once it is gone, so the entry is removed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import bayes_mem

ROOT = Path(bayes_mem.__file__).resolve().parent

FORBIDDEN = {
    "bayes_mem.live": (
        "bayes_mem.store",
        "bayes_mem.offline",
        "bayes_mem.evaluation",
        "bayes_mem.dashboard",
    ),
    "bayes_mem.offline": ("bayes_mem.evaluation", "bayes_mem.dashboard"),
}

# (importing module, imported package) -> why. Deferred imports only (inside a function), so
# ``import bayes_mem`` still loads no SQLAlchemy (tests/test_imports.py).
DEFERRED_EXCEPTIONS = {
    ("bayes_mem.live.engine", "bayes_mem.store"): (
        "TradingEngine.open(models, store), the documented way to start the engine, accepts an "
        "SQLAlchemy URL or a data directory and opens a Store and a StoreRecorder on it; moving "
        "that constructor out of live changes the public API (issue 20, left for a later step)"
    ),
}


def _module_name(path: Path) -> str:
    parts = ["bayes_mem", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _imports(path: Path, *, deferred: bool | None = None) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the module at ``path``; ``from a import b``
    yields both ``a`` and ``a.b`` (``b`` may be a submodule). ``deferred``: only the imports
    inside a function (True) or only the others (False); None: all."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_function = {
        id(inner)
        for outer in ast.walk(tree)
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(outer)
    }
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if deferred is not None and (id(node) in in_function) != deferred:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.append((node.lineno, source))
            found += [(node.lineno, f"{source}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if _within(name, "bayes_mem")]


def _modules() -> list[Path]:
    paths = sorted(ROOT.rglob("*.py"))
    assert len(paths) > 50, "the package's modules were not found"
    return paths


def _private_owner(name: str) -> str | None:
    """The package holding the first private component of a dotted module name, or None."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT.parent)}:{line}"


def test_lower_layers_import_nothing_from_higher_ones():
    bad, used = [], set()
    for path in _modules():
        module = _module_name(path)
        for layer, banned in FORBIDDEN.items():
            if not _within(module, layer):
                continue
            deferred = {name for _, name in _imports(path, deferred=True)}
            for line, name in _imports(path):
                if not any(_within(name, b) for b in banned):
                    continue
                excused = [
                    (m, pkg) for m, pkg in DEFERRED_EXCEPTIONS
                    if m == module and _within(name, pkg) and name in deferred
                ]  # fmt: skip
                if excused:
                    used.update(excused)
                else:
                    bad.append(f"{_where(path, line)} {module} imports {name}")
    assert not bad, "\n".join(sorted(set(bad)))
    assert used == set(DEFERRED_EXCEPTIONS), f"stale exceptions: {set(DEFERRED_EXCEPTIONS) - used}"


def test_no_private_module_is_imported_from_another_subpackage():
    bad = []
    for path in _modules():
        module = _module_name(path)
        for line, name in _imports(path):
            owner = _private_owner(name)
            if owner is None:
                continue
            # From a ``from pkg import name`` the candidate ``pkg.name`` may be a function or
            # class rather than a module: only modules that exist as files count.
            target = ROOT.parent.joinpath(*name.split("."))
            if not (target.with_suffix(".py").is_file() or (target / "__init__.py").is_file()):
                continue
            if not _within(module, owner):
                bad.append(f"{_where(path, line)} {module} imports private {name}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_the_checks_see_violations():
    # The parser resolves relative imports and sees deferred ones: both checks can fail.
    src = ROOT / "live" / "engine.py"
    names = {name for _, name in _imports(src)}
    assert "bayes_mem.live.decider" in names
    assert "bayes_mem.store" in {name for _, name in _imports(src, deferred=True)}
    assert "bayes_mem.store" not in {name for _, name in _imports(src, deferred=False)}
    assert _private_owner("bayes_mem.live._files") == "bayes_mem.live"
    assert _private_owner("bayes_mem.live.files") is None
