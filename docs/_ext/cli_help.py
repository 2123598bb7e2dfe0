"""Sphinx directive ``bayes-mem-help``: the ``bayes-mem`` command's own ``--help`` text, read
from :func:`bayes_mem.cli.build_parser` at build time, so the CLI page cannot drift from the
parser."""

from __future__ import annotations

import argparse
import os

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its sub-commands here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


class BayesMemHelp(SphinxDirective):
    """``.. bayes-mem-help:: [VERB [SUBVERB]]``: that command's help as a literal block."""

    optional_arguments = 2

    def run(self) -> list[nodes.Node]:
        from bayes_mem.cli import build_parser

        parser = build_parser()
        for word in self.arguments:
            choices = _subparsers(parser)
            if word not in choices:
                raise self.error(f"bayes-mem has no sub-command {word!r}")
            parser = choices[word]
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "80"  # the same wrapping on any terminal; fits the page
        try:
            text = parser.format_help()
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("bayes-mem-help", BayesMemHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
