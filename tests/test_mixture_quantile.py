"""The one mixture-quantile solver (bayes_mem.live.mixture_quantile) against closed forms, and
against the two bisection solvers the report carried before it reused the live one (kept here,
verbatim, as references): the report's win-rate intervals (mixtures of Betas) and its in-sample
VaR line (skew-t mixtures over posterior draws, heavy tails and strong skews included)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.mixture_quantile import mixture_quantile
from bayes_mem.live.pit import mixture_cdf
from bayes_mem.live.skewt import SkewT
from bayes_mem.offline.report.stats import _mixture_quantile, mixture_beta_quantiles


def _old_beta_bisection(a, b, probs, iterations=24):
    """The report's former ``mixture_beta_quantiles``: error <= (bracket width) 2**-24."""
    out = []
    for p in probs:
        comp = special.betaincinv(a, b, p)
        lo, hi = comp.min(axis=1), comp.max(axis=1)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = special.betainc(a, b, mid[:, None]).mean(axis=1) < p
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append(0.5 * (lo + hi))
    return tuple(out)


def _old_var_bisection(alpha, draws, sig2, iterations=16):
    """The report's former ``_mixture_quantile``: error <= (bracket width) 2**-16."""
    comp = (
        draws.mu[:, None]
        + np.sqrt(sig2) * draws.innovations().ppf(np.full(draws.size, alpha))[:, None]
    )
    lo, hi = comp.min(axis=0), comp.max(axis=0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, draws, sig2) < alpha
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi), comp.max(axis=0) - comp.min(axis=0)


def _beta_mixtures(rng):
    """(a, b) of rows of Beta mixtures: signals with 0 to 5,000 trades under family draws of
    concentration 0.5 to 500 (U-shaped components with a, b < 1 included)."""
    rows, draws = 60, 200
    m = rng.uniform(0.05, 0.95, (rows, draws))
    kappa = np.exp(rng.uniform(np.log(0.5), np.log(500), (rows, draws)))
    n = rng.choice([0, 1, 3, 20, 300, 5000], rows)[:, None]
    w = rng.binomial(n, 0.5)
    return m * kappa + w, (1 - m) * kappa + (n - w)


def test_beta_mixture_quantiles_agree_with_the_old_bisection():
    a, b = _beta_mixtures(np.random.default_rng(0))
    probs = (0.05, 0.95, 0.001, 0.5)
    new = mixture_beta_quantiles(a, b, probs)
    old = _old_beta_bisection(a, b, probs)
    for p, q_new, q_old in zip(probs, new, old, strict=True):
        comp = special.betaincinv(a, b, p)
        width = comp.max(axis=1) - comp.min(axis=1)
        # the old answer is within width 2**-24 of the root (+ rounding)
        assert np.all(np.abs(q_new - q_old) <= width * 2.0**-24 + 1e-9), p
        f_new = special.betainc(a, b, q_new[:, None]).mean(axis=1)
        f_old = special.betainc(a, b, q_old[:, None]).mean(axis=1)
        assert np.all(np.abs(f_new - p) <= np.abs(f_old - p) + 1e-15), p  # never worse in F
        if p != 0.001:  # the new one solves F to 1e-10 of the smaller tail
            assert np.all(np.abs(f_new - p) <= 1e-10 * min(p, 1 - p) + 1e-15), p
    # p = 0.001 on signals without trades under kappa ~0.5 (components Beta(0.04, 0.05)): the
    # root is ~4e-19 in a bracket from 1e-75 to 0.87; neither solver reaches it (the old one's
    # F was 8.4 times p, the new one's after its 60 steps within 17% of p)
    f_new = special.betainc(a, b, new[2][:, None]).mean(axis=1)
    f_old = special.betainc(a, b, old[2][:, None]).mean(axis=1)
    assert np.abs(f_old - 0.001).max() > 5e-3 and np.abs(f_new - 0.001).max() < 2e-4


def test_one_beta_component_is_scipy_s_quantile():
    a, b = np.array([[2.5], [0.3], [400.0]]), np.array([[7.0], [0.6], [1.5]])
    lo, hi = mixture_beta_quantiles(a, b, (0.05, 0.95))
    assert lo == pytest.approx(stats.beta.ppf(0.05, a[:, 0], b[:, 0]), rel=1e-9)
    assert hi == pytest.approx(stats.beta.ppf(0.95, a[:, 0], b[:, 0]), rel=1e-9)


@pytest.mark.parametrize(
    ("nu", "lam", "spread"),
    [
        ((2.1, 3.0), (-0.9, 0.9), 3.0),  # very heavy tails, strong skews both ways
        ((4.0, 8.0), (-0.3, 0.0), 1.5),  # typical daily equity fits
        ((30.0, 200.0), (-0.1, 0.1), 1.1),  # near normal
        ((2.05, 200.0), (-0.95, 0.95), 10.0),  # everything at once in one mixture
    ],
)
@pytest.mark.parametrize("alpha", [0.025, 0.001, 0.5])
def test_var_line_agrees_with_the_old_bisection(nu, lam, spread, alpha):
    rng = np.random.default_rng(int(nu[0] * 100) + int(alpha * 1e4))
    s, t = 40, 120
    draws = GarchDraws(
        mu=rng.normal(3e-4, 2e-4, s), omega=np.full(s, 2e-6), alpha=np.full(s, 0.02),
        gamma=np.full(s, 0.02), beta=np.full(s, 0.9), nu=rng.uniform(*nu, s),
        lam=rng.uniform(*lam, s),
    )  # fmt: skip
    sig2 = (1e-4 * np.exp(rng.uniform(-np.log(spread), np.log(spread), (s, 1)))
            * np.exp(0.3 * rng.standard_normal((s, t))))  # fmt: skip
    new = _mixture_quantile(alpha, draws, sig2)
    old, width = _old_var_bisection(alpha, draws, sig2)
    assert np.all(np.abs(new - old) <= width * 2.0**-16 + 1e-12)
    f = mixture_cdf(new, draws, sig2)
    assert np.all(np.abs(f - alpha) <= 1e-10 * min(alpha, 1 - alpha) + 1e-15)


def test_the_solver_on_a_normal_mixture_with_weights():
    """Closed form: two normals N(-1, 1) and N(2, 0.5^2) weighted 3:1 (mean-1 weights)."""

    class Normal:
        def cdf(self, z):
            return stats.norm.cdf(z)

        def pdf(self, z):
            return stats.norm.pdf(z)

    mu, sd, w = np.array([[-1.0, 2.0]]), np.array([[1.0, 0.5]]), np.array([[1.5, 0.5]])
    for alpha in (1e-6, 0.1, 0.5, 0.9):
        q = mixture_quantile(alpha, mu, sd, Normal(), np.array([-30.0]), np.array([30.0]),
                             1e-12, w)  # fmt: skip
        f = 0.75 * stats.norm.cdf(q, -1, 1) + 0.25 * stats.norm.cdf(q, 2, 0.5)
        assert f == pytest.approx(alpha, rel=1e-9)
    # a single skew-t component: its own quantile
    inn = SkewT.from_params(np.array([[5.0]]), np.array([[-0.4]]))
    q = mixture_quantile(0.01, 0.0, 1.0, inn, np.array([-50.0]), np.array([50.0]), 1e-12)
    assert q[0] == pytest.approx(float(inn.ppf(np.array([[0.01]]))[0, 0]), rel=1e-9)
