"""Evidence: backtests of risk forecasts (and, later, of trading policies)."""

from bayes_mem.evaluation.abtest import StrategyABTest, compare_variants, student_t_posterior
from bayes_mem.evaluation.performance import (
    BootstrapCI,
    Drawdown,
    SharpeDifference,
    block_bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    max_drawdown,
    max_drawdown_ci,
    probabilistic_sharpe_ratio,
    realised_cvar,
    sharpe_difference_test,
    sharpe_ratio,
    sortino_ratio,
    turnover,
    win_rate,
    win_rate_ci,
)

__all__ = [
    "BootstrapCI",
    "Drawdown",
    "SharpeDifference",
    "StrategyABTest",
    "block_bootstrap_ci",
    "compare_variants",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "max_drawdown",
    "max_drawdown_ci",
    "probabilistic_sharpe_ratio",
    "realised_cvar",
    "sharpe_difference_test",
    "sharpe_ratio",
    "sortino_ratio",
    "student_t_posterior",
    "turnover",
    "win_rate",
    "win_rate_ci",
]
