"""Progress of long MCMC fits: a progress bar on a terminal, log lines otherwise.

The nightly job runs mostly without a terminal (cron, systemd, a cluster's worker): there every
fit logs one line per tenth of its draws (:func:`log_progress`). Run by hand in a terminal, the
same fits show a ``rich`` progress bar on stderr instead (:func:`bar_progress`), with the draws
done, the divergences so far and the elapsed time; the last line of each fit is logged either
way. :func:`fit_progress` picks one of the two: the callback the fits hand to nutpie
(``progress_callback``, called with the chains' progress)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

log = logging.getLogger("bayes_mem.progress")
_ONE_BAR = threading.Lock()  # held while a bar is live: one bar at a time on the terminal


def _totals(chains: Any) -> tuple[int, int, int]:
    done = sum(c.finished_draws for c in chains)
    total = sum(c.total_draws for c in chains) or 1
    return done, total, sum(c.divergences for c in chains)


def log_progress(label: str, steps: int = 10) -> Callable[[Any], None]:
    """A nutpie progress callback that logs once per ``1/steps`` of the total draws (all
    chains), and once at the end.

    Examples
    --------
    >>> import logging, sys
    >>> from types import SimpleNamespace
    >>> log = logging.getLogger("bayes_mem.progress")
    >>> handler = logging.StreamHandler(sys.stdout)  # show the log lines here
    >>> log.addHandler(handler); log.setLevel(logging.INFO)
    >>> callback = log_progress("win-rate fit", steps=2)  # a line per half of the draws
    >>> for done in (300, 500, 800, 1000):  # what nutpie reports: one object per chain
    ...     callback([SimpleNamespace(finished_draws=done, total_draws=1000, divergences=0)])
    win-rate fit:  50% of draws (500/1000), 0 divergences, ... s
    win-rate fit: 100% of draws (1000/1000), 0 divergences, ... s
    >>> log.removeHandler(handler); log.setLevel(logging.NOTSET)
    """
    state = {"level": 0, "t0": time.perf_counter()}

    def callback(chains: Any) -> None:
        done, total, div = _totals(chains)
        level = done * steps // total  # integer arithmetic: no float drift
        if level > state["level"]:
            state["level"] = level
            log.info(
                "%s: %3.0f%% of draws (%d/%d), %d divergences, %.0f s",
                label, 100 * done / total, done, total, div, time.perf_counter() - state["t0"],
            )  # fmt: skip

    return callback


def bar_progress(label: str, stream: TextIO | None = None) -> Callable[[Any], None]:
    """A nutpie progress callback drawing a ``rich`` progress bar on ``stream`` (default
    stderr): draws done of all chains, divergences, elapsed and remaining time. The bar is
    closed at the end and the end logged once, as :func:`log_progress` does. One bar is live at
    a time: a fit that starts while another's bar is live logs lines instead.

    Examples
    --------
    >>> import io
    >>> from types import SimpleNamespace
    >>> stream = io.StringIO()  # stderr by default
    >>> callback = bar_progress("returns fit", stream)
    >>> for done in (250, 1000):
    ...     callback([SimpleNamespace(finished_draws=done, total_draws=1000, divergences=2)])
    >>> "1000/1000" in stream.getvalue(), "2 divergences" in stream.getvalue()
    (True, True)
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=stream if stream is not None else sys.stderr, force_terminal=True)
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("draws, {task.fields[div]} divergences"), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, auto_refresh=False,
    )  # fmt: skip
    state: dict[str, Any] = {"task": None, "closed": False, "t0": time.perf_counter(),
                             "fallback": None}  # fmt: skip

    def callback(chains: Any) -> None:
        if state["fallback"] is not None:
            state["fallback"](chains)
            return
        if state["closed"]:
            return
        done, total, div = _totals(chains)
        if state["task"] is None:
            if not _ONE_BAR.acquire(blocking=False):  # another fit's bar is live: log lines
                state["fallback"] = log_progress(label)
                state["fallback"](chains)
                return
            bar.start()
            state["task"] = bar.add_task(label, total=total, div=0)
        bar.update(state["task"], completed=done, total=total, div=div)
        bar.refresh()
        if done >= total:
            bar.stop()
            _ONE_BAR.release()
            state["closed"] = True
            log.info("%s: 100%% of draws (%d/%d), %d divergences, %.0f s", label, done, total,
                     div, time.perf_counter() - state["t0"])  # fmt: skip

    return callback


def fit_progress(label: str, *, tty: bool | None = None) -> Callable[[Any], None]:
    """The progress callback of a fit: :func:`bar_progress` when stderr is a terminal (or
    ``tty`` is True), :func:`log_progress` otherwise (or ``tty`` False).

    Examples
    --------
    >>> fit_progress("win-rate fit", tty=False).__qualname__  # not a terminal: log lines
    'log_progress.<locals>.callback'
    >>> fit_progress("win-rate fit", tty=True).__qualname__
    'bar_progress.<locals>.callback'
    """
    if tty is None:
        isatty = getattr(sys.stderr, "isatty", None)
        tty = bool(isatty and isatty())
    return bar_progress(label) if tty else log_progress(label)
