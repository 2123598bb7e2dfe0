"""The page: :func:`build_report` loads a version (and the previously active one), builds each
section (a section that fails leaves the rest of the page intact) and renders ``page.html``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from bayes_mem.offline.report.figures import _RC
from bayes_mem.offline.report.html import _SCRIPT, _STYLE, _script_digest, render
from bayes_mem.offline.report.load import load_version
from bayes_mem.offline.report.sections import (
    _changes,
    _diagnostics,
    _quality,
    _risk,
    _summary,
    _winrates,
)
from bayes_mem.offline.report.stats import signal_posteriors
from bayes_mem.plotting import pyplot as _pyplot

log = logging.getLogger("bayes_mem.report")


def build_report(
    version_path: str | Path,
    store: Any = None,
    previous_path: str | Path | None = None,
    *,
    timings: dict[str, float] | None = None,
    seed: int = 0,
) -> str:
    """The HTML page of the version in ``version_path`` (a folder under
    ``models/prior_sets/``). ``store`` (a :class:`~bayes_mem.store.Store`, optional) supplies
    the returns and outcomes for the risk and signal-quality sections; ``previous_path`` is the
    previously active version's folder, compared against; ``timings`` (seconds per job step)
    extend those in the run record. Seeded: same inputs, same page.

    Examples
    --------
    >>> import re
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> page = build_report(write_prior_set(prior_set, tmp.name))
    >>> for title in re.findall(r"<h2[^>]*>(.*?)</h2>", page):
    ...     print(title)
    Run summary
    What changed since the previously active prior set
    Diagnostics
    Win rates
    Risk
    Signal quality
    """
    vd = load_version(version_path)
    ps = vd.prior_set
    prev = load_version(previous_path) if previous_path is not None else None
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    counts = vd.counts
    if counts is None and store is not None:
        counts = store.signal_counts()
        notes.append("this version has no recorded counts: the store's current counts are used")
    summary = _summary(vd, timings or {}, notes)
    cache: list[pd.DataFrame] = []

    def posts() -> pd.DataFrame:  # this version's per-signal posteriors, computed once
        if not cache:
            cache.append(signal_posteriors(counts, ps))
        return cache[0]

    sections = [
        ("changes", "What changed since the previously active prior set",
         lambda: _changes(vd, counts, prev, posts)),
        ("diagnostics", "Diagnostics", lambda: _diagnostics(vd)),
        ("winrates", "Win rates", lambda: _winrates(ps, counts, posts, rng)),
        ("risk", "Risk", lambda: _risk(vd, store, seed)),
        ("quality", "Signal quality", lambda: _quality(vd, counts, store)),
    ]  # fmt: skip
    plt = _pyplot()
    import matplotlib

    built = []
    for key, title, make in sections:
        open_before = set(plt.get_fignums())
        try:
            with matplotlib.rc_context(_RC):  # names are text, never mathtext ("$...$")
                body = make()
        except Exception as exc:  # a section that fails leaves the rest of the page intact
            log.exception("report section %s of v%d failed", key, ps.version)
            body = render("failed.html", error=repr(exc))
        finally:  # no figure of ours outlives its section, whatever made it or failed
            for num in set(plt.get_fignums()) - open_before:
                plt.close(num)
        built.append({"key": key, "title": title, "body": body})
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_script_digest(_SCRIPT)}'"
    )
    return str(render(
        "page.html", csp=Markup(csp), title=f"bayes_mem prior set v{ps.version:06d}",
        style=Markup(_STYLE), sections=built, summary=summary, script=Markup(_SCRIPT),
    )) + "\n"  # fmt: skip
