"""The report's settings: where it is written, its levels and the sizes of its tables and plots.

Units: ``LEVEL`` and ``BAND`` are probabilities; ``CORR_DAYS`` and ``BREAKDOWN_RECENT`` are
trading days.
"""

from __future__ import annotations

REPORTS = "reports"  # models/reports/v000042.html
LEVEL = 0.975  # VaR / CVaR confidence level
BAND = 0.9  # credible interval probability
TOP_MOVES = 10  # rows of the "largest moves" tables
CORR_DAYS = 120  # days of normal scores for the correlation heatmap
BREAKDOWN_RECENT = 20  # recent days tested against the CORR_DAYS before them
WINRATE_HYPER = ["eta0", "tau", "mu_logk", "sigma_logk"]
RETURNS_HYPER = ["pi0", "s_pi", "n0", "s_nu", "l0", "s_lam"]
MAX_FOREST_ROWS = 150  # signals per family plot (the ones with most trades)
