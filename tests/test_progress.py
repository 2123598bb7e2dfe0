"""Progress lines of long fits: about one per tenth of the draws, the last one once."""

import itertools
import logging
from types import SimpleNamespace

from bayes_mem.offline.progress import log_progress


def test_logs_each_tenth_and_the_end_once(caplog):
    callback = log_progress("fit")
    with caplog.at_level(logging.INFO, logger="bayes_mem.progress"):
        for done in [*range(0, 101, 3), 100, 100]:
            callback([SimpleNamespace(finished_draws=done, total_draws=100, divergences=1)] * 2)
    lines = [r.getMessage() for r in caplog.records]
    pct = [int(x.split("%")[0].split()[-1]) for x in lines]
    assert 10 <= len(lines) <= 11 and pct[-1] == 100, lines
    assert all(b - a >= 9 for a, b in itertools.pairwise(pct[:-1])), pct
    assert lines[0].startswith("fit:  12% of draws (24/200), 2 divergences")
    assert sum("100%" in x for x in lines) == 1


def chains(done: int, total: int = 100, div: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(finished_draws=done, total_draws=total, divergences=div)] * 2


def test_a_terminal_gets_a_bar_and_the_end_is_logged_once(caplog):
    import io

    from bayes_mem.offline.progress import bar_progress

    out = io.StringIO()
    callback = bar_progress("returns fit 3 symbols", stream=out)
    with caplog.at_level(logging.INFO, logger="bayes_mem.progress"):
        for done in (0, 40, 100, 100):
            callback(chains(done, div=done // 50))
    text = out.getvalue()
    assert "returns fit 3 symbols" in text and "80/200" in text and "200/200" in text
    assert "4 divergences" in text
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("returns fit 3 symbols: 100% of draws (200/200)")


def test_fit_progress_picks_the_bar_only_on_a_terminal(monkeypatch, caplog):
    import io

    from bayes_mem.offline import progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress.sys, "stderr", Tty())
    with caplog.at_level(logging.INFO, logger="bayes_mem.progress"):
        progress.fit_progress("fit")(chains(50))
    assert "100/200" in progress.sys.stderr.getvalue() and not caplog.records
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())  # not a terminal: log lines
    with caplog.at_level(logging.INFO, logger="bayes_mem.progress"):
        progress.fit_progress("fit")(chains(50))
    assert progress.sys.stderr.getvalue() == "" and "fit:  50% of draws" in caplog.text


def test_a_second_bar_while_one_is_live_falls_back_to_log_lines(caplog):
    import io

    from bayes_mem.offline.progress import bar_progress

    first = bar_progress("first", stream=io.StringIO())
    first(chains(10))  # live until it finishes
    second = bar_progress("second", stream=io.StringIO())
    with caplog.at_level(logging.INFO, logger="bayes_mem.progress"):
        second(chains(30))
        first(chains(100))
    assert "second:  30% of draws" in caplog.text
