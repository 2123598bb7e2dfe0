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
