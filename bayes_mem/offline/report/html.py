"""The page's HTML: a Jinja2 environment over the package's templates (``templates/``), the cell
formats of its tables and the page's one script and style sheet.

Every value a template prints is HTML-escaped (quotes included, as :func:`html.escape` does)
unless it is :class:`markupsafe.Markup` (fragments rendered by these templates, data URIs, the
Content-Security-Policy): names that came from data can never become markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup


def esc(value: Any) -> str:
    """HTML-escape anything (quotes included).

    Examples
    --------
    >>> esc("AT&T's <b>")
    'AT&amp;T&#x27;s &lt;b&gt;'
    >>> esc('say "hi"')
    'say &quot;hi&quot;'
    >>> esc(0.5)
    '0.5'
    """
    return html.escape(str(value), quote=True)


def _finalize(value: Any) -> Markup:
    """Every printed value is escaped by :func:`esc` (:func:`html.escape`'s entities) unless it
    is already markup; Jinja2's own escaping then leaves it alone."""
    return value if isinstance(value, Markup) else Markup(esc(value))


@cache
def environment() -> Any:
    """The templates' Jinja2 environment (built once): every printed value escaped by
    :func:`_finalize`; macros and fragments are markup.

    Examples
    --------
    >>> env = environment()
    >>> env.autoescape, environment() is env  # built once
    (True, True)
    """
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bayes_mem.offline.report", "templates"),
        autoescape=True,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def render(template: str, **context: Any) -> Markup:
    """Render one template of ``templates/`` (a fragment: markup, not escaped again).

    Examples
    --------
    >>> render("failed.html", error="ValueError('<b>')")  # data is escaped, the fragment is not
    Markup('<p class="error">this section failed: ValueError(&#x27;&lt;b&gt;&#x27;)</p>')
    """
    return Markup(environment().get_template(template).render(**context))


def _asset(name: str) -> str:
    return (
        resources.files("bayes_mem.offline.report")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )


_SCRIPT = _asset("sort.js")  # the only script: sorts table.sortable by a header click
_STYLE = _asset("report.css")


def _script_digest(script: str) -> str:
    """The CSP hash of an inline script: only the page's own script may run."""
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if fmt == "%":
        return f"{float(value):.2%}"
    if fmt == "%%":  # percent with more digits
        return f"{float(value) * 100:.3f}%"
    if fmt == "+pp":
        return f"{float(value) * 100:+.2f} pp"
    return format(value, fmt)


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, its sort key (``data-v``) and its class (``num``, ``bad``).

    Examples
    --------
    >>> frame = pd.DataFrame({"signal": ["s1", "s2"], "win_rate": [0.5512, float("nan")],
    ...                       "rhat": [1.002, 1.05]})
    >>> t = table(frame, [("signal", "Signal", ""), ("win_rate", "Win rate", "%"),
    ...                   ("rhat", "R-hat", ".3f")], flags={"rhat": lambda v: v > 1.01})
    >>> t.rows[0][1]
    Cell(text='55.12%', sort='0.5512', cls='num')
    """

    text: Any
    sort: Any
    cls: str | None


@dataclass(frozen=True)
class Table:
    """A table ready for ``macros.html``'s ``table``: headers, rows of cells, attributes.

    Examples
    --------
    >>> frame = pd.DataFrame({"signal": ["s1", "s2"], "win_rate": [0.5512, float("nan")],
    ...                       "rhat": [1.002, 1.05]})
    >>> t = table(frame, [("signal", "Signal", ""), ("win_rate", "Win rate", "%"),
    ...                   ("rhat", "R-hat", ".3f")], flags={"rhat": lambda v: v > 1.01})
    >>> len(t.rows), t.sortable, t.table_id
    (2, False, None)
    """

    headers: list[str]
    rows: list[list[Cell]]
    sortable: bool = False
    table_id: str | None = None


def table(
    frame: pd.DataFrame, columns: list[tuple[str, str, str]], *, sortable: bool = False,
    flags: dict[str, Any] | None = None, table_id: str | None = None,
) -> Table:  # fmt: skip
    """``columns``: (key, header, format; "" for text). ``flags`` maps a key to a predicate on
    the value that marks the cell as failing.

    Examples
    --------
    >>> frame = pd.DataFrame({"signal": ["s1", "s2"], "win_rate": [0.5512, float("nan")],
    ...                       "rhat": [1.002, 1.05]})
    >>> t = table(frame, [("signal", "Signal", ""), ("win_rate", "Win rate", "%"),
    ...                   ("rhat", "R-hat", ".3f")], flags={"rhat": lambda v: v > 1.01})
    >>> t.headers
    ['Signal', 'Win rate', 'R-hat']
    >>> [(c.text, c.cls) for c in t.rows[1]]  # NaN shows as a dash; a flagged cell is "bad"
    [('s2', None), ('–', 'num'), ('1.050', 'bad')]
    """
    flags = flags or {}
    rows = []
    for row in frame.to_dict("records"):
        cells = []
        for key, _, fmt in columns:
            v = row.get(key)
            text = v if not fmt else _num(v, fmt)
            if not fmt:
                sort = v
            elif v is None or not np.isfinite(float(v)):
                sort = "-Infinity"
            else:
                sort = repr(float(v))
            bad = key in flags and v is not None and flags[key](v)
            cells.append(Cell(text, sort, "bad" if bad else ("num" if fmt else None)))
        rows.append(cells)
    return Table([h for _, h, _ in columns], rows, sortable, table_id)


@dataclass(frozen=True)
class Figure:
    """A plot for ``macros.html``'s ``figure``: its key (``data-plot``), PNG data URI, alt text
    and caption.

    Examples
    --------
    >>> fig = Figure("rank", "data:image/png;base64,iVBORw0KGgo=", "rank plot")
    >>> fig.src, fig.caption
    (Markup('data:image/png;base64,iVBORw0KGgo='), '')
    """

    key: str
    uri: str
    alt: str
    caption: str = ""

    @property
    def src(self) -> Markup:
        """The data URI as Markup (safe to put in the page unescaped: base64 and its prefix only).

        Examples
        --------
        >>> Figure("rank", "data:image/png;base64,iVBORw0KGgo=", "rank plot").src
        Markup('data:image/png;base64,iVBORw0KGgo=')
        """
        return Markup(self.uri)  # base64 and "data:image/png;base64,": nothing to escape
