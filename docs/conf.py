"""Sphinx configuration of the bayes_mem documentation site.

Build (the test suite does the same into a temporary folder, ``tests/test_docs_build.py``)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is read from the docstrings (numpydoc format) of the installed package; the
guides are the Markdown pages of this folder (MyST).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
try:
    import bayes_mem
except ImportError:  # building from a checkout without the package installed
    sys.path.insert(0, str(HERE.parent))
    import bayes_mem

project = "bayes_mem"
author = "the bayes_mem developers"
copyright = f"2026, {author}"
release = bayes_mem.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "cli_help",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "evaluation/.*",
    ".*.tmp-*",
    ".*.old-*",
]

# autodoc / autosummary: members in source order, type hints in the signature only
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "show-inheritance": True}
autosummary_generate = False

# numpydoc: the class pages list their members through autodoc, not numpydoc's tables
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# MyST: anchors for the headings the pages link to (summary.md#..., prior_set.md#...)
myst_heading_anchors = 4
myst_enable_extensions = ["dollarmath"]

# summary.md is written by `bayes-mem evaluate` (bayes_mem.evaluation.suite), whose per-series
# tables sit two heading levels below their section
suppress_warnings = ["myst.header"]

html_theme = "pydata_sphinx_theme"
html_title = f"bayes_mem {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


def _readme_links(app, relative_path, parent_docname, content):
    """The README, included as the overview page, links files at the repository's root: point
    them at their pages on the site."""
    if relative_path.name == "README.md":
        content[0] = (
            content[0]
            .replace("](CHANGELOG.md)", "](changelog.md)")
            .replace("](LICENSE)", "](license.md)")
        )


def setup(app):
    app.connect("include-read", _readme_links)
