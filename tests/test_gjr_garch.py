"""GJR-GARCH(1,1)-skew-t: the recursion, simulation, and recovery of known parameters."""

import numpy as np
import pytest

from bayes_mem.live.gjr_garch import GarchDraws, fit_laplace, simulate, variance_path

TRUE = dict(mu=3e-4, omega=2e-6, alpha=0.03, gamma=0.12, beta=0.88, nu=6.0, lam=-0.15)


def true_draws(n: int = 1) -> GarchDraws:
    return GarchDraws(**{k: np.full(n, v) for k, v in TRUE.items()})


def test_variance_path_matches_a_direct_loop():
    rng = np.random.default_rng(1)
    draws = GarchDraws(
        mu=rng.normal(0, 1e-3, 5),
        omega=rng.uniform(1e-6, 5e-6, 5),
        alpha=rng.uniform(0, 0.1, 5),
        gamma=rng.uniform(0, 0.2, 5),
        beta=rng.uniform(0.7, 0.88, 5),
        nu=rng.uniform(3, 10, 5),
        lam=rng.uniform(-0.5, 0.5, 5),
    )
    r = rng.standard_t(5, 400) * 0.01
    out = variance_path(r, draws, 1e-4)
    for s in range(5):
        sig2 = [1e-4]
        for x in r:
            eps = x - draws.mu[s]
            shock = (draws.alpha[s] + draws.gamma[s] * (eps < 0)) * eps * eps
            sig2.append(draws.omega[s] + shock + draws.beta[s] * sig2[-1])
        np.testing.assert_allclose(out[s], sig2, rtol=1e-12)


def test_simulation_is_consistent_with_the_recursion():
    r, sig2 = simulate(true_draws(3), 500, np.random.default_rng(2))
    for s in range(3):
        np.testing.assert_allclose(
            variance_path(r[s], true_draws(1), sig2[s, 0])[0], sig2[s], rtol=1e-12
        )


@pytest.mark.slow
def test_laplace_fit_recovers_known_parameters():
    r, _ = simulate(true_draws(), 4_000, np.random.default_rng(3))
    fit = fit_laplace(r[0], 400, rng=4)
    assert fit.converged
    for name, value in TRUE.items():
        lo, hi = np.quantile(getattr(fit.draws, name), [0.005, 0.995])
        assert lo <= value <= hi, (name, lo, value, hi)
    persistence = fit.draws.alpha + fit.draws.gamma / 2 + fit.draws.beta
    assert np.all(persistence < 1)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(omega=0.0), "omega > 0"),
        (dict(alpha=-0.1), "alpha >= 0"),
        (dict(alpha=0.2, beta=0.85), "alpha \\+ beta < 1"),
        (dict(nu=2.05), "nu >= 2.1"),
        (dict(lam=1.0), "lam"),
        (dict(mu=np.nan), "non-finite"),
    ],
)
def test_invalid_draws_are_refused_naming_the_constraint(change, match):
    with pytest.raises(ValueError, match=match):
        GarchDraws(**{**TRUE, **change})


def test_json_round_trip():
    d = true_draws(4)
    back = GarchDraws.from_json(d.to_json())
    for k in TRUE:
        np.testing.assert_array_equal(getattr(back, k), getattr(d, k))


@pytest.mark.parametrize(
    "series, match",
    [
        (np.zeros(500), "constant"),
        (np.full(50, 0.01), "at least 100"),
        (np.r_[np.ones(200) * 0.01, np.nan], "NaN"),
    ],
)
def test_fit_refuses_unusable_history(series, match):
    with pytest.raises(ValueError, match=match):
        fit_laplace(series)
