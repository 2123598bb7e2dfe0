"""Thompson sampling on the Bernoulli bandit of Chapelle & Li (2011): best arm p = 0.5, the K - 1
others at 0.5 - eps. Regret must grow like log T, at the rate of the Lai-Robbins bound.

The simulation (the live Decider over an index array) is :mod:`bayes_mem.evaluation.bandit_regret`;
see tests/test_bandits.py for the pooled policy and the cold start."""

import math

import numpy as np
import pytest

from bayes_mem.evaluation.bandit_regret import (
    chapelle_li_arms,
    chapelle_li_runs,
    lai_robbins_rate,
)

CHECKPOINTS = np.array([1_000, 2_000, 5_000, 10_000, 20_000])


@pytest.mark.slow
def test_regret_grows_like_log_t_at_the_lai_robbins_rate():
    runs = chapelle_li_runs(
        10, 0.1, CHECKPOINTS[-1], policy="independent", seeds=range(16), checkpoints=CHECKPOINTS
    )
    paths = runs.paths
    mean = paths.mean(axis=0)
    rate = lai_robbins_rate(chapelle_li_arms(10, 0.1))  # about 44.7 per unit of log T
    assert runs.rate == rate
    # slope of regret against log T over the last decade and a bit
    slope = np.polyfit(np.log(CHECKPOINTS), mean, 1)[0]
    assert 0.5 * rate < slope < 1.5 * rate, (slope, rate)
    # logarithmic, not linear: 20x more steps, far less than 20x more regret
    assert mean[-1] / mean[0] < 3.0
    # and within a small factor of the bound itself at the horizon
    assert mean[-1] < 1.5 * rate * math.log(CHECKPOINTS[-1])
    # every arm is still explored: no run locked onto a bad arm (linear regret ~ 0.1 per step)
    assert paths[:, -1].max() < 0.1 * CHECKPOINTS[-1] / 4
