"""Plain Markdown tables from DataFrames (pandas' ``to_markdown`` needs the optional
``tabulate`` package, which we do not depend on)."""

from __future__ import annotations

import math
from typing import Any


def _cell(value: Any, floatfmt: str) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else format(value, floatfmt)
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: Any, *, floatfmt: str = ".3g", index: bool = False) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (a pandas DataFrame); floats formatted
    with ``floatfmt``, NaN left blank, pipes escaped."""
    df = frame.reset_index() if index else frame
    header = [str(c) for c in df.columns]
    rows = [[_cell(v, floatfmt) for v in row] for row in df.itertuples(index=False, name=None)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
