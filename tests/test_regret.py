"""Thompson sampling on the Bernoulli bandit of Chapelle & Li (2011): best arm p = 0.5, the K - 1
others at 0.5 - eps. Regret must grow like log T, at the rate of the Lai-Robbins bound."""

import math

import numpy as np
import pytest

from bayes_mem.live import Decider

CHECKPOINTS = (1_000, 2_000, 5_000, 10_000, 20_000)


def kl_bernoulli(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def lai_robbins_rate(k: int, eps: float) -> float:
    """sum_k (p* - p_k) / KL(p_k, p*): regret per unit of log T, asymptotically."""
    return (k - 1) * eps / kl_bernoulli(0.5 - eps, 0.5)


def pseudo_regret_path(seed: int, k: int = 10, eps: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.full(k, 0.5 - eps)
    p[0] = 0.5
    d = Decider(["arms"], rng=rng.spawn(1)[0])
    names = [f"arm{i}" for i in range(k)]
    for name in names:
        d.register(name, "arms")
    idx = d.indices(names)
    arm_of = {name: i for i, name in enumerate(names)}
    u = rng.random(CHECKPOINTS[-1])
    regret, out = 0.0, []
    for t in range(1, CHECKPOINTS[-1] + 1):
        name, _ = d.choose(idx, 1, only_acting=False)[0]
        i = arm_of[name]
        won = bool(u[t - 1] < p[i])
        d.record(name, won, 1.0 if won else -1.0)
        regret += 0.5 - p[i]
        if t in CHECKPOINTS:
            out.append(regret)
    return np.array(out)


@pytest.mark.slow
def test_regret_grows_like_log_t_at_the_lai_robbins_rate():
    runs = np.array([pseudo_regret_path(seed) for seed in range(16)])
    mean = runs.mean(axis=0)
    rate = lai_robbins_rate(10, 0.1)  # about 44.8 per unit of log T
    # slope of regret against log T over the last decade and a bit
    slope = np.polyfit(np.log(CHECKPOINTS), mean, 1)[0]
    assert 0.5 * rate < slope < 1.5 * rate, (slope, rate)
    # logarithmic, not linear: 20x more steps, far less than 20x more regret
    assert mean[-1] / mean[0] < 3.0
    # and within a small factor of the bound itself at the horizon
    assert mean[-1] < 1.5 * rate * math.log(CHECKPOINTS[-1])
    # every arm is still explored: no run locked onto a bad arm (linear regret ~ 0.1 per step)
    assert runs[:, -1].max() < 0.1 * CHECKPOINTS[-1] / 4
