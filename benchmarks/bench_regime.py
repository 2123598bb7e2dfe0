"""Regime-detection speed goals (issue 5), each printed next to a straightforward numpy BOCPD on
the same data (written below: arrays grown with ``np.concatenate`` every step, the Student-t log
density recomputed with ``gammaln``, the same truncation), measured in the same run:

- one step of 500 symbols with a maximum run length of 300: under 5 ms;
- one symbol: under 25 us per observation (the straightforward version: about 50 us).

Both detectors are warmed past the truncation first, so every step works on R + 1 run lengths.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.special import gammaln

from bayes_mem.live.changepoint import NormalGammaBOCPD, NormalGammaPrior
from benchmarks._timing import Result, best_pair

R = 300
K = 10
HAZARD = 1 / 250
PRIOR = NormalGammaPrior(0.0, 1.0, 2.0, 2.0)


class StraightforwardBOCPD:
    """The textbook recursion over N streams, as one would first write it in numpy."""

    def __init__(self, n: int) -> None:
        p = PRIOR
        self.mu = np.full((n, 1), p.mu0)
        self.kappa = np.full((n, 1), p.kappa0)
        self.alpha = np.full((n, 1), p.alpha0)
        self.beta = np.full((n, 1), p.beta0)
        self.logp = np.zeros((n, 1))

    def update(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, n = PRIOR, self.mu.shape[0]
        x = np.asarray(x, dtype=float).reshape(n, 1)
        mu, kappa, alpha, beta = self.mu, self.kappa, self.alpha, self.beta
        df = 2 * alpha
        scale2 = beta * (kappa + 1) / (alpha * kappa)
        logpred = (
            gammaln((df + 1) / 2)
            - gammaln(df / 2)
            - 0.5 * np.log(df * np.pi * scale2)
            - (df + 1) / 2 * np.log1p((x - mu) ** 2 / (df * scale2))
        )
        joint = self.logp + logpred
        m = joint.max(axis=1, keepdims=True)
        evidence = m + np.log(np.exp(joint - m).sum(axis=1, keepdims=True))
        change = evidence + math.log(HAZARD)
        new = np.concatenate([change, joint + math.log1p(-HAZARD)], axis=1) - evidence
        col = np.ones((n, 1))
        self.beta = np.concatenate(
            [col * p.beta0, beta + kappa * (x - mu) ** 2 / (2 * (kappa + 1))], 1
        )
        self.mu = np.concatenate([col * p.mu0, (kappa * mu + x) / (kappa + 1)], axis=1)
        self.kappa = np.concatenate([col * p.kappa0, kappa + 1], axis=1)
        self.alpha = np.concatenate([col * p.alpha0, alpha + 0.5], axis=1)
        if new.shape[1] > R + 1:  # fold the oldest run into "R or more"
            new[:, R] = np.logaddexp(new[:, R], new[:, R + 1])
            new = new[:, : R + 1]
            self.mu, self.kappa = self.mu[:, : R + 1], self.kappa[:, : R + 1]
            self.alpha, self.beta = self.alpha[:, : R + 1], self.beta[:, : R + 1]
        self.logp = new
        age = np.exp(new[:, 1:]) / (1 - HAZARD)
        ages = np.minimum(np.arange(1, age.shape[1] + 1), R)
        return age[:, :K].sum(axis=1), age @ ages, age.argmax(axis=1) + 1


def _pair(n: int, seed: int) -> tuple[NormalGammaBOCPD, StraightforwardBOCPD, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2_000, n))
    ours = NormalGammaBOCPD(n, PRIOR, hazard=HAZARD, max_run_length=R, k=K)
    base = StraightforwardBOCPD(n)
    for row in x[: R + 50]:  # past the truncation
        ours.update(row if n > 1 else float(row[0]))
        base.update(row)
    # same answers, so that the comparison is like for like
    a, b = ours.update(x[R + 50] if n > 1 else float(x[R + 50, 0])), base.update(x[R + 50])
    if not np.allclose(a.p_change, b[0], atol=1e-9):
        raise AssertionError("the baseline and the detector disagree")
    return ours, base, x


def bench_one_symbol(repeat: int) -> Result:
    ours, base, x = _pair(1, 0)
    values = itertools.cycle(x[:, 0].tolist())
    rows = itertools.cycle(list(x))
    sub, bl = best_pair(
        lambda: ours.update(next(values)), lambda: base.update(next(rows)), 2_000, repeat, 500
    )
    return Result(
        "1 symbol R=300: per observation",
        sub,
        "straightforward numpy BOCPD",
        bl,
        "< 25 us",
        max_us=25.0,
    )


def bench_many_symbols(repeat: int) -> Result:
    ours, base, x = _pair(500, 1)
    rows = itertools.cycle(list(x))
    rows_b = itertools.cycle(list(x))
    sub, bl = best_pair(
        lambda: ours.update(next(rows)), lambda: base.update(next(rows_b)), 20, repeat, 5
    )
    return Result(
        "500 symbols R=300: one step",
        sub,
        "straightforward numpy x500",
        bl,
        "< 5 ms",
        max_us=5_000.0,
    )


def run(repeat: int = 7) -> list[Result]:
    return [bench_one_symbol(repeat), bench_many_symbols(repeat)]
