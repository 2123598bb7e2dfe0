"""Correlation of standardised residuals: shrinkage, concentration, Jennrich's breakdown test."""

import numpy as np
import pytest

from bayes_mem.live.correlation import (
    concentration,
    correlation_breakdown,
    jennrich_test,
    limit_factors,
    rank_normal_scores,
    shrunk_correlation,
)


def equicorrelated(n: int, rho: float) -> np.ndarray:
    return rho * np.ones((n, n)) + (1 - rho) * np.eye(n)


def sample(rng, t, corr, df=None):
    chol = np.linalg.cholesky(corr)
    x = rng.standard_normal((t, corr.shape[0])) @ chol.T
    if df is not None:  # multivariate t: fat tails, same correlation
        x /= np.sqrt(rng.chisquare(df, (t, 1)) / df)
    return x


def test_shrinkage_recovers_correlation_and_handles_more_symbols_than_days():
    rng = np.random.default_rng(0)
    corr, shrink = shrunk_correlation(sample(rng, 2_000, equicorrelated(5, 0.6), df=5))
    off = corr[~np.eye(5, dtype=bool)]
    assert np.all(np.abs(off - 0.6) < 0.05) and shrink < 0.05
    wide = sample(rng, 30, equicorrelated(60, 0.3))
    corr, shrink = shrunk_correlation(wide)
    assert 0 < shrink <= 1
    assert np.linalg.eigvalsh(corr).min() > 0  # positive definite although N > T
    np.testing.assert_allclose(np.diag(corr), 1.0)


def test_concentration_score_and_effective_bets():
    c = concentration(np.eye(4))
    assert (c.average_correlation, c.score, c.effective_bets) == pytest.approx((0.0, 0.5, 4.0))
    c = concentration(equicorrelated(4, 0.999999))
    assert c.score == pytest.approx(1.0, abs=1e-5) and c.effective_bets == pytest.approx(
        1.0, abs=1e-4
    )
    c = concentration(equicorrelated(10, 0.5))
    # eigenvalues 5.5 and 0.5 (x9): (10)^2 / (5.5^2 + 9 * 0.25)
    assert c.effective_bets == pytest.approx(100 / (30.25 + 2.25))


def test_normal_scores_are_rank_based_and_standard_normal():
    rng = np.random.default_rng(1)
    x = np.exp(rng.standard_normal((1_000, 3)))  # skewed marginals
    z = rank_normal_scores(x)
    np.testing.assert_array_equal(np.argsort(z, axis=0), np.argsort(x, axis=0))
    assert np.abs(z.mean(axis=0)).max() < 1e-12 and np.allclose(z.std(axis=0), 1, atol=0.02)


@pytest.mark.slow
def test_breakdown_false_alarm_rate_is_nominal_and_power_is_high_on_a_jump():
    rng = np.random.default_rng(2)
    corr = equicorrelated(5, 0.3)
    trials = 300
    alarms = sum(
        correlation_breakdown(
            *np.split(sample(rng, 260, corr, df=5), [20]), n_sim=99, rng=i
        ).p_value
        <= 0.05
        for i in range(trials)
    )
    # at most nominal 5% (Bonferroni): binomial(300, 0.05) exceeds 26 with probability < 0.001
    assert alarms <= 26, alarms
    jump = equicorrelated(5, 0.85)
    hits = sum(
        correlation_breakdown(
            sample(rng, 20, jump, df=5), sample(rng, 240, corr, df=5), n_sim=99, rng=i
        ).p_value
        <= 0.05
        for i in range(100)
    )
    assert hits >= 90, hits


@pytest.mark.slow
def test_permutation_calibrates_jennrich_where_the_chi_square_over_rejects():
    rng = np.random.default_rng(5)
    corr = equicorrelated(5, 0.3)
    chi2 = perm = 0
    for i in range(300):
        recent, history = np.split(sample(rng, 260, corr, df=5), [20])
        chi2 += jennrich_test(recent, history).p_value <= 0.05
        perm += jennrich_test(recent, history, n_sim=99, rng=i).p_value <= 0.05
    assert chi2 > 30  # the asymptotic reference: well above 5% here
    assert 6 <= perm <= 26, perm


def test_chi_square_reference_is_available_and_agrees_on_large_samples():
    rng = np.random.default_rng(3)
    x = sample(rng, 600, equicorrelated(4, 0.4))
    asym = jennrich_test(x[:200], x[200:])
    sim = jennrich_test(x[:200], x[200:], n_sim=999, rng=1)
    assert asym.df == 6 and sim.df == 6 and abs(asym.p_value - sim.p_value) < 0.08
    assert 0 <= sim.score <= 1 and sim.score == pytest.approx(1 - sim.p_value)


@pytest.mark.parametrize(
    "recent, history, match",
    [
        (np.ones((20, 3)), np.random.default_rng(0).standard_normal((60, 3)), "constant"),
        (np.full((20, 3), np.nan), np.zeros((60, 3)), "non-finite"),
        (
            np.random.default_rng(0).standard_normal((20, 3)),
            np.random.default_rng(1).standard_normal((60, 4)),
            "symbols",
        ),
        (
            np.random.default_rng(0).standard_normal((5, 10)),
            np.random.default_rng(1).standard_normal((5, 10)),
            "cannot test",
        ),
        (
            np.random.default_rng(0).standard_normal(20),
            np.random.default_rng(1).standard_normal(60),
            "2-d",
        ),
    ],
)
def test_bad_panels_are_refused(recent, history, match):
    with pytest.raises(ValueError, match=match):
        jennrich_test(recent, history)


def test_limit_factors_follow_the_seed_plan_and_check_ranges():
    assert limit_factors(0.5, 0.4) == pytest.approx((0.85, 0.8))
    for bad in (-0.1, 1.1, np.nan):
        with pytest.raises(ValueError):
            limit_factors(bad, 0.0)


@pytest.mark.parametrize(("t", "n"), [(30, 5), (120, 60), (20, 200)])
def test_ledoit_wolf_closed_form_equals_the_direct_sum(t, n):
    """b2_bar in closed form (sum ||z_t||^4 - t ||S||^2) = the sum of t outer products."""
    from bayes_mem.live.correlation import _b2_bar, _b2_direct

    rng = np.random.default_rng(t * n)
    z = rng.standard_t(4, (t, n)) + 0.5 * rng.standard_normal((t, 1))
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    sample = z.T @ z / t
    np.testing.assert_allclose(_b2_bar(z, sample), _b2_direct(z, sample), rtol=1e-10)


@pytest.mark.parametrize(("t", "n"), [(30, 5), (120, 60), (20, 200)])
def test_shrunk_correlation_equals_scikit_learns_ledoit_wolf(t, n):
    """The live O(T N) shrinkage is scikit-learn's ``ledoit_wolf`` (target: the identity scaled
    by the mean variance, which is 1 for standardised scores), intensity and matrix."""
    covariance = pytest.importorskip("sklearn.covariance")
    from bayes_mem.live.correlation import rank_normal_scores, shrunk_correlation

    rng = np.random.default_rng(7 * t + n)
    x = rng.standard_t(4, (t, n)) + 0.5 * rng.standard_normal((t, 1))
    corr, shrink = shrunk_correlation(x)
    z = rank_normal_scores(x)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    ref, ref_shrink = covariance.ledoit_wolf(z, assume_centered=True)
    assert shrink == pytest.approx(ref_shrink, rel=1e-10)
    np.testing.assert_allclose(corr, ref, rtol=1e-10, atol=1e-12)
