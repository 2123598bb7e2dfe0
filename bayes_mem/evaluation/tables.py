"""The one writer of the evaluation's Markdown tables (GitHub-flavoured; pandas' ``to_markdown``
needs the optional ``tabulate`` package, which we do not depend on).

:func:`markdown_rows` lays out cells that the caller has already formatted (each table formats
its own numbers: percentages, intervals, bold verdicts); :func:`markdown_table` formats a
DataFrame's cells itself. Both give ``| a | b |`` rows under a ``|---|---|`` rule, lines joined
by newlines, no trailing newline."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def markdown_rows(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table of already formatted cells: ``header`` (column titles) and ``rows``
    (each as many cells as the header), written as given (no escaping).

    Examples
    --------
    >>> print(markdown_rows(["model", "fz0"], [["ours", "-1.234"], ["arch", "-1.240"]]))
    | model | fz0 |
    |---|---|
    | ours | -1.234 |
    | arch | -1.240 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else format(value, floatfmt)
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: Any, *, floatfmt: str = ".3g", index: bool = False) -> str:
    """A Markdown table of ``frame`` (a pandas DataFrame); floats formatted with ``floatfmt``,
    NaN left blank, pipes escaped.

    Examples
    --------
    >>> import pandas as pd
    >>> print(markdown_table(pd.DataFrame({"policy": ["ours"], "sharpe": [0.61234]})))
    | policy | sharpe |
    |---|---|
    | ours | 0.612 |
    """
    df = frame.reset_index() if index else frame
    header = [str(c) for c in df.columns]
    rows = [[_cell(v, floatfmt) for v in row] for row in df.itertuples(index=False, name=None)]
    return markdown_rows(header, rows)
