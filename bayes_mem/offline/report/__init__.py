"""The analyst report of one prior-set version: one self-contained HTML page.

:func:`build_report` is a function of (version folder, store, previous prior-set folder) to an
HTML string; :func:`write_report` writes it atomically, owner-only. The page holds:

- run summary: version, data window, code version, timings, the gate's verdict and reasons, and
  what changed since the previously active prior set (family mean win rates, the largest moves of
  per-signal posterior mean win rates and of per-symbol CVaR);
- diagnostics of each fit: R-hat, bulk / tail ESS and MCSE of every gated quantity, divergences,
  E-BFMI per chain, tree-depth saturation; ArviZ rank plots of the hyperparameters;
- win rates: per family a forest plot of per-signal posterior intervals beside the raw win rates
  (the shrinkage), and a posterior predictive check of the win counts;
- risk: posterior one-day CVaR (expected shortfall) per symbol with its credible band,
  conditional volatility over the fitted window, VaR exceedances with Kupiec / Christoffersen
  tests, PIT calibration of the return model, the correlation of the normal scores with the
  concentration and breakdown scores;
- the decision layer's signal-quality metrics, in a table sortable by any column.

Per-signal win rates are integrated out of the fit; given a family draw (m, kappa) a signal with
w wins of n trades has ``p | draw ~ Beta(m kappa + w, (1 - m) kappa + n - w)``, so its posterior
is the equal-weight mixture of these Betas over the prior set's published family draws: its
mean is exact, its interval is the mixture's quantiles (the live path's mixture-quantile solver).

Units: win rates are probabilities; returns, VaR and CVaR are daily, VaR/CVaR as loss fractions
of position value at ``LEVEL`` (97.5%); volatility is the daily sd of the log return.

Everything that came from data (signal, family and symbol names, reasons) is HTML-escaped;
plots are PNG data URIs (matplotlib Agg, mathtext off), the only script is the table sort.

The package, one idea per module: :mod:`~bayes_mem.offline.report.config` (levels and sizes),
:mod:`~bayes_mem.offline.report.load` (a version folder), :mod:`~bayes_mem.offline.report.stats`
(the statistics), :mod:`~bayes_mem.offline.report.figures` (PNG plots),
:mod:`~bayes_mem.offline.report.html` (the Jinja2 environment over ``templates/``, table cells),
:mod:`~bayes_mem.offline.report.sections` (each section's content),
:mod:`~bayes_mem.offline.report.build` (the page) and :mod:`~bayes_mem.offline.report.write`
(the atomic owner-only write). The names below are re-exported here.
"""

from __future__ import annotations

from bayes_mem.live.prior_set import version_dir
from bayes_mem.offline.report.build import build_report
from bayes_mem.offline.report.config import (
    BAND,
    BREAKDOWN_RECENT,
    CORR_DAYS,
    LEVEL,
    MAX_FOREST_ROWS,
    REPORTS,
    RETURNS_HYPER,
    TOP_MOVES,
    WINRATE_HYPER,
)

# private names kept importable from here (tests patch and call them)
from bayes_mem.offline.report.figures import _png as _png
from bayes_mem.offline.report.figures import _rank_plot as _rank_plot
from bayes_mem.offline.report.html import _SCRIPT as _SCRIPT
from bayes_mem.offline.report.html import _STYLE as _STYLE
from bayes_mem.offline.report.html import _script_digest as _script_digest
from bayes_mem.offline.report.html import esc
from bayes_mem.offline.report.load import VersionData, load_version
from bayes_mem.offline.report.sections import _components_table as _components_table
from bayes_mem.offline.report.stats import (
    SymbolPath,
    cvar_by_symbol,
    cvar_changes,
    family_changes,
    fit_diagnostics,
    mixture_beta_quantiles,
    sampler_stats,
    signal_posteriors,
    signal_quality,
    symbol_paths,
    winrate_changes,
)
from bayes_mem.offline.report.write import (
    latest_version,
    report_path,
    write_report,
    write_version_report,
)
from bayes_mem.offline.run_files import COUNTS_FILE, RUN_FILE

__all__ = [
    "BAND",
    "BREAKDOWN_RECENT",
    "CORR_DAYS",
    "COUNTS_FILE",
    "LEVEL",
    "MAX_FOREST_ROWS",
    "REPORTS",
    "RETURNS_HYPER",
    "RUN_FILE",
    "TOP_MOVES",
    "WINRATE_HYPER",
    "SymbolPath",
    "VersionData",
    "build_report",
    "cvar_by_symbol",
    "cvar_changes",
    "esc",
    "family_changes",
    "fit_diagnostics",
    "latest_version",
    "load_version",
    "mixture_beta_quantiles",
    "report_path",
    "sampler_stats",
    "signal_posteriors",
    "signal_quality",
    "symbol_paths",
    "version_dir",
    "winrate_changes",
    "write_report",
    "write_version_report",
]
