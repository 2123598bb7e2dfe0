"""The files the nightly job writes beside a prior set for its report (in the version folder):

- :data:`RUN_FILE` (``run.json``): the run record of :func:`run_record` (timings, configuration,
  the returns window, the previously active version), schema :data:`RUN_SCHEMA`;
- :data:`COUNTS_FILE` (``signal_counts.csv``): the per-signal counts the win-rate fit saw.

The job (:mod:`bayes_mem.offline.recalibrate`) writes them; the report
(:mod:`bayes_mem.offline.report`) reads them. Neither module takes them from the other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

RUN_FILE = "run.json"  # written into the version folder by the nightly job
COUNTS_FILE = "signal_counts.csv"  # the per-signal counts the win-rate fit saw
RUN_SCHEMA = "bayes_mem.run/1"

__all__ = ["COUNTS_FILE", "RUN_FILE", "RUN_SCHEMA", "run_record"]


def run_record(
    *,
    version: int,
    timings: dict[str, float],
    config: dict[str, Any],
    previous_active: int | None,
    window: pd.DataFrame | None,
    outcomes: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``run.json`` the nightly job writes into a version folder for its report.

    Examples
    --------
    >>> import pandas as pd
    >>> window = pd.DataFrame({"SPY": [0.01, -0.02], "QQQ": [0.0, 0.01]},
    ...                       index=pd.to_datetime(["2026-03-02", "2026-03-03"]))
    >>> run = run_record(version=7, timings={"read_store": 0.12}, config={"draws": 2000},
    ...                  previous_active=6, window=window, outcomes=None)
    >>> run["schema"], run["version"], run["previous_active"]
    ('bayes_mem.run/1', 7, 6)
    >>> run["returns_window"]
    {'from': '2026-03-02', 'through': '2026-03-03', 'days': 2, 'symbols': ['SPY', 'QQQ']}
    """
    win = None
    if window is not None and len(window):
        win = {
            "from": str(pd.Timestamp(window.index.min()).date()),
            "through": str(pd.Timestamp(window.index.max()).date()),
            "days": len(window),
            "symbols": [str(c) for c in window.columns],
        }
    return {
        "schema": RUN_SCHEMA, "version": version, "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "timings": dict(timings), "config": config, "previous_active": previous_active,
        "returns_window": win, "outcomes": outcomes,
    }  # fmt: skip
