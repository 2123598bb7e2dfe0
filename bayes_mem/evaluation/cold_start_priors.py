"""Cold start with the published family priors side by side (issue 16): the moment-matched prior
that the nightly job publishes, the old plug-in Beta(E[m] E[kappa], ...), full Bayes (one
hyperparameter draw per decision) and, on a correlated history, the independent model fitted
before issue 16; each against flat and true priors, by regret and by log predictive score.

Run ``python -m bayes_mem.evaluation.cold_start_priors [OUT_DIR]`` (default
``docs/evaluation/bandits``): the FULL settings of :mod:`bayes_mem.evaluation.bandits` on an
independent history (``rho`` 0) and a history whose trades of one family and day are correlated
(``rho`` 0.3), written as ``cold_start_priors_rho{rho}.csv`` and ``cold_start_priors.md``.
About 5 and 14 minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time

import pandas as pd

from bayes_mem.evaluation.bandits import FULL
from bayes_mem.evaluation.cold_start import (
    cold_start_experiment,
    cold_start_settings,
    summarise_cold_start,
)
from bayes_mem.evaluation.tables import markdown_table

COLUMNS = ["opportunities", "prior", "regret_mean", "regret_lo", "regret_hi", "log_score",
           "score_vs_nightly", "score_vs_nightly_lo", "score_vs_nightly_hi"]  # fmt: skip


def run(rho: float, seed: int = 0) -> pd.DataFrame:
    """The FULL cold-start settings with ``history_rho = rho``, summarised.

    Examples
    --------
    Skipped: minutes of nightly PyMC fits. The settings it runs, and the summary's columns that
    :func:`main` writes:

    >>> from bayes_mem.evaluation.bandits import FULL
    >>> cold_start_settings(FULL)["opportunities"], FULL["fit_seeds"], FULL["replicates"]
    ((5, 10, 20), 6, 16)
    >>> table = run(0.3)  # doctest: +SKIP
    >>> set(COLUMNS) <= set(table.columns)  # doctest: +SKIP
    True
    """
    df, _ = cold_start_experiment(**cold_start_settings(FULL), seed=seed, history_rho=rho)
    return summarise_cold_start(df)


def main(out_dir: str = "docs/evaluation/bandits") -> None:
    """Run :func:`run` at ``rho`` 0 and 0.3 and write ``cold_start_priors_rho{rho}.csv`` and
    ``cold_start_priors.md`` into ``out_dir`` (about 20 minutes).

    Examples
    --------
    Skipped (see above); the columns of the written tables:

    >>> COLUMNS[:3]
    ['opportunities', 'prior', 'regret_mean']
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     main(d)
    """
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"  # fmt: skip
    parts = [f"Command: `python -m bayes_mem.evaluation.cold_start_priors`, commit {commit}.\n"]
    for rho in (0.0, 0.3):
        t0 = time.perf_counter()
        table = run(rho)
        table.to_csv(out / f"cold_start_priors_rho{rho}.csv", index=False, float_format="%.6g")
        parts.append(f"\n## history rho = {rho} ({time.perf_counter() - t0:.0f} s)\n\n")
        parts.append(markdown_table(table[COLUMNS], floatfmt=".5f") + "\n")
    (out / "cold_start_priors.md").write_text("".join(parts))


if __name__ == "__main__":  # pragma: no cover
    main(*sys.argv[1:])
