"""VaR backtests: the coverage tests themselves, and our model against the seed plan's percentile
on real S&P 500 prices (shipped with the `arch` package; nothing is downloaded)."""

import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem.evaluation.var_backtest import coverage_tests, rolling_historical_forecast


def test_kupiec_statistic_by_hand():
    hits = np.zeros(250, dtype=bool)
    hits[[10, 50, 90, 130, 170, 210]] = True  # 6 exceedances where 2.5 are expected at 99%
    t = coverage_tests(hits, 0.99)
    p, pi = 0.01, 6 / 250
    lr = -2 * (244 * math.log(1 - p) + 6 * math.log(p) - 244 * math.log(1 - pi) - 6 * math.log(pi))
    assert t.lr_pof == pytest.approx(lr) and t.p_pof == pytest.approx(stats.chi2.sf(lr, 1))
    assert t.exceedances == 6 and t.expected == pytest.approx(2.5)


def test_independence_test_sees_clustered_exceedances():
    hits = np.zeros(1000, dtype=bool)
    for start in (100, 400, 700):
        hits[start : start + 8] = True  # right count for 2.5%, all in three bursts
    t = coverage_tests(hits, 0.975)
    assert t.p_pof > 0.05 and t.p_ind < 1e-6 and not t.passes()


def test_false_rejection_rate_of_correct_forecasts_is_near_nominal():
    rng = np.random.default_rng(0)
    rejections = sum(
        coverage_tests(rng.random(1000) < 0.025, 0.975).p_cc < 0.05 for _ in range(400)
    )
    assert 8 <= rejections <= 36  # binomial(400, 0.05) = 20 +- 4.4


def test_bad_input():
    with pytest.raises(ValueError, match="level"):
        coverage_tests(np.zeros(10, bool), 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        coverage_tests(np.zeros(1, bool), 0.99)
    with pytest.raises(ValueError, match="window"):
        rolling_historical_forecast(np.zeros(100), kind="log", window=252)


# The S&P 500 backtest of our model against the seed plan's percentile (slow) lives in
# tests/test_es_backtest.py, which shares one computation of the forecasts with the ES backtests.


def test_the_kupiec_statistic_is_never_negative():
    """Bug: with exceedances at exactly the expected count, rounding made LR_pof -1.4e-14 (174
    of 390 such series); a likelihood-ratio statistic is >= 0."""
    from bayes_mem.live.coverage import coverage_tests as live_coverage

    for step in range(5, 200):
        for n in (step * 10, step * 25):
            hits = np.zeros(n, dtype=bool)
            hits[::step] = True
            result = live_coverage(hits, 1 - 1 / step)
            assert result.lr_pof >= 0.0 and not np.signbit(result.lr_pof), (n, step)
            assert result.lr_cc >= result.lr_ind
