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


def test_laplace_fit_is_scale_equivariant_and_its_log_likelihood_is_the_models():
    """Returns times c: mu and sqrt(omega) times c, the other parameters unchanged, so VaR and
    ES scale by c (to the optimiser's tolerance: the fit runs on returns / sd). Before, a fixed
    percent scaling made the ES move by up to 20% across scales."""
    from bayes_mem.live.gjr_garch import log_likelihood
    from bayes_mem.live.return_model import ReturnModel

    r, _ = simulate(true_draws(), 1_500, np.random.default_rng(8))
    base = fit_laplace(r[0], 100, rng=5)
    assert base.log_likelihood == pytest.approx(log_likelihood(r[0], base.mle)[0], rel=1e-10)
    es0 = ReturnModel({"x": base.draws}, {"x": variance_path(r[0], base.draws, r[0].var())[:, -1]})
    es0 = es0.risk(0.99).es_log[0]
    for c in (0.01, 0.1, 10.0):
        fit = fit_laplace(c * r[0], 100, rng=5)
        for name in ("alpha", "gamma", "beta", "nu", "lam"):
            np.testing.assert_allclose(getattr(fit.draws, name), getattr(base.draws, name),
                                       rtol=1e-4, atol=1e-9)  # fmt: skip
        np.testing.assert_allclose(fit.draws.mu, c * base.draws.mu, atol=1e-5 * c * r[0].std())
        np.testing.assert_allclose(fit.draws.omega, c**2 * base.draws.omega, rtol=1e-4)
        sig2 = variance_path(c * r[0], fit.draws, (c * r[0]).var())[:, -1]
        es = ReturnModel({"x": fit.draws}, {"x": sig2}).risk(0.99).es_log[0]
        assert es == pytest.approx(c * es0, rel=1e-4)  # the optimiser's tolerance


def test_laplace_draws_neither_collapse_nor_explode_on_short_or_degenerate_series():
    """Penalty walls at nu = 200 and persistence 0.999 blew up the Hessian (draws equal to 7
    digits); a flat prior on 100 days let the mode run to omega -> 0, beta -> 1 and the draws
    to omega ~ 1e6 (ES of 100%). Bounded maps and weak priors keep both honest."""
    from bayes_mem.live.return_model import ReturnModel

    rng = np.random.default_rng(85)
    short = rng.standard_t(5, 100) * 0.001  # 100 days of i.i.d. t(5): no GARCH to find
    gauss = rng.standard_normal(500) * 0.012  # near-normal: nu runs to its bound
    for r in (short, gauss):
        fit = fit_laplace(r, 200, rng=1)
        assert np.std(fit.draws.beta) > 1e-3 and np.std(fit.draws.lam) > 1e-3
        sig2 = variance_path(r, fit.draws, r.var())[:, -1]
        es = ReturnModel({"x": fit.draws}, {"x": sig2}).risk(0.99).es_log[0]
        sd = r.std()
        assert 1.5 * sd < es < 6 * sd, (es / sd)
