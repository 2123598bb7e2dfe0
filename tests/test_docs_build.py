"""The documentation site builds from the docstrings and the Markdown guides with warnings as
errors (what CI checks, since it runs exactly ``./run tests``), and covers the public API."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: TODO: source files whose docstring warnings are tolerated for now, each with the reason. A
#: warning located in one of them is reported but does not fail the build check. Empty today:
#: every docstring builds clean. (bayes_mem/live/{engine,modules,portfolio,decision}.py were
#: being changed on another branch when this test was written; if their docstrings warn after
#: that lands, fix the docstrings rather than listing them here.)
TODO_WARNINGS_ALLOWED_IN: tuple[str, ...] = ()

#: the pages of the API reference and the packages whose ``__all__`` each must cover
API_PAGES = {
    "live.rst": "bayes_mem.live",
    "store.rst": "bayes_mem.store",
    "evaluation.rst": "bayes_mem.evaluation",
}

WARNING = re.compile(r"^(?:(?P<where>.*?): )?(?:WARNING|ERROR|CRITICAL): (?P<what>.*)$")


def _sphinx_available() -> bool:
    try:
        for name in ("sphinx", "pydata_sphinx_theme", "numpydoc", "myst_parser"):
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def _warnings(log: str) -> list[tuple[str, str]]:
    return [(m["where"] or "", m["what"]) for m in map(WARNING.match, log.splitlines()) if m]


def test_warning_lines_are_parsed():
    log = (
        "/x/bayes_mem/live/engine.py:docstring of bayes_mem.live.engine.TradingEngine:3: "
        "WARNING: Unexpected indentation. [docutils]\n"
        "reading sources... [ 50%] api/live\n"
        "/x/docs/risk.md:12: ERROR: Unknown directive type. [myst.directive_unknown]\n"
        "WARNING: Summarised items should not include the current module. [autosummary]\n"
    )
    assert _warnings(log) == [
        (
            "/x/bayes_mem/live/engine.py:docstring of bayes_mem.live.engine.TradingEngine:3",
            "Unexpected indentation. [docutils]",
        ),
        ("/x/docs/risk.md:12", "Unknown directive type. [myst.directive_unknown]"),
        ("", "Summarised items should not include the current module. [autosummary]"),
    ]


@pytest.mark.skipif(
    not _sphinx_available() and not os.environ.get("CI"),
    reason="the docs extra is not installed (pip install -e '.[docs]'); CI fails instead",
)
def test_the_site_builds_without_warnings(tmp_path):
    out = tmp_path / "html"
    before = sorted(DOCS.rglob("*"))
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    argv = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
            "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]  # fmt: skip
    run = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=path))  # fmt: skip
    log = run.stdout + run.stderr
    found = _warnings(log)
    tolerated = [w for w in found if any(part in w[0] for part in TODO_WARNINGS_ALLOWED_IN)]
    failing = [w for w in found if w not in tolerated]
    assert not failing, "\n".join(f"{where}: {what}" for where, what in failing)
    if not tolerated:
        assert run.returncode == 0, log
    # the pages a newcomer opens first are there, with the API read from the docstrings
    for page in ("index", "readme", "cli", "trader", "nightly_job", "api/live", "api/cli"):
        assert (out / f"{page}.html").is_file(), page
    live = (out / "api" / "live.html").read_text()
    assert "TradingEngine" in live and "Thompson" in live
    cli = (out / "api" / "cli.html").read_text()
    assert "--models" in cli and "recalibrate" in cli  # the parser's own help text
    assert sorted(DOCS.rglob("*")) == before  # nothing was written into the checkout


def _resolve(dotted: str) -> object:
    """The object a directive's dotted path names (module prefix, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("page, package", sorted(API_PAGES.items()))
def test_the_api_reference_covers_every_public_name(page, package):
    """Each name of the package's ``__all__`` has its own entry (a constant may be documented
    under the module that assigns it, where its ``#:`` comment lives)."""
    text = (DOCS / "api" / page).read_text()
    targets = re.findall(r"^\.\. auto(?:class|function|data|exception):: ([\w.]+)", text,
                         flags=re.M)  # fmt: skip
    documented = {(t.rsplit(".", 1)[1], id(_resolve(t))) for t in targets}
    pkg = importlib.import_module(package)
    missing = [n for n in pkg.__all__ if (n, id(getattr(pkg, n))) not in documented]
    assert not missing, f"{page} lacks {missing}"


def test_every_guide_is_on_the_site():
    index = (DOCS / "index.md").read_text()
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    listed = set(re.findall(r"^([\w/]+)$", index, flags=re.M))
    assert pages <= listed, sorted(pages - listed)


def test_readme_is_short_and_keeps_its_sections():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for heading in ("## Quick start", "## Integrate into a trader", "## The nightly job",
                    "## Where the evidence lives"):  # fmt: skip
        assert f"\n{heading}\n" in readme, heading
    assert "MEM is a systematic trading system" in readme
    assert "**3** the diagnostics gate rejected" in readme and "OnCalendar=" in readme
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme):
        assert (ROOT / target).exists(), target


def test_license_and_changelog():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 the "
                                                     "bayes_mem developers\n")  # fmt: skip
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    assert "keepachangelog.com" in changelog and "\n## [Unreleased]\n" in changelog
    for kind in ("### Added", "### Changed", "### Fixed"):
        assert f"\n{kind}\n" in changelog, kind
