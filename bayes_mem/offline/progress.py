"""Progress of long MCMC fits as log lines (the nightly job runs without a terminal)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bayes_mem.progress")


def log_progress(label: str, steps: int = 10) -> Callable[[Any], None]:
    """A nutpie progress callback that logs once per ``1/steps`` of the total draws (all
    chains), and once at the end."""
    state = {"level": 0, "t0": time.perf_counter()}

    def callback(chains: Any) -> None:
        done = sum(c.finished_draws for c in chains)
        total = sum(c.total_draws for c in chains) or 1
        level = done * steps // total  # integer arithmetic: no float drift
        if level > state["level"]:
            state["level"] = level
            div = sum(c.divergences for c in chains)
            log.info(
                "%s: %3.0f%% of draws (%d/%d), %d divergences, %.0f s",
                label, 100 * done / total, done, total, div, time.perf_counter() - state["t0"],
            )  # fmt: skip

    return callback
