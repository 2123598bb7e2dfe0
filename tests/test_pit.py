"""Normal scores under the posterior predictive: exact for one draw, N(0, 1) and free of
volatility clustering on data from the model, and what the regime detector's prior is fitted on."""

import numpy as np
import pytest
from scipy import stats

from bayes_mem.live.gjr_garch import GarchDraws, simulate, variance_path
from bayes_mem.live.pit import P_MIN, mixture_cdf, normal_scores, to_normal
from bayes_mem.live.skewt import SkewT

ONE = GarchDraws(
    mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86], nu=[5.0], lam=[-0.2]
)


def test_one_draw_gives_the_skew_t_cdf_of_the_standardised_return():
    r = simulate(ONE, 300, np.random.default_rng(0))[0][0]
    sig2 = variance_path(r, ONE, 1e-4)[:, :-1]
    want = SkewT.from_params(ONE.nu, ONE.lam).cdf((r - ONE.mu) / np.sqrt(sig2[0]))
    np.testing.assert_allclose(mixture_cdf(r, ONE, sig2), want, rtol=1e-12)
    np.testing.assert_allclose(normal_scores(r, ONE, 1e-4), stats.norm.ppf(want), rtol=1e-9)


def test_scores_of_model_data_are_standard_normal_without_clustering():
    rng = np.random.default_rng(1)
    r = simulate(ONE, 5000, rng)[0][0]
    z = normal_scores(r, ONE, float(r.var()))
    assert stats.kstest(z, "norm").pvalue > 0.01
    sq = z**2 - 1
    assert abs(np.corrcoef(sq[1:], sq[:-1])[0, 1]) < 0.05  # clustering is the model's
    raw = (r - r.mean()) / r.std()
    assert stats.kstest(raw, "norm").pvalue < 1e-6  # the raw returns are neither


def test_mixture_of_draws_and_clipping():
    draws = GarchDraws(
        mu=[0.0, 1e-3], omega=[1e-6, 3e-6], alpha=[0.05, 0.02], gamma=[0.1, 0.1],
        beta=[0.8, 0.85], nu=[4.0, 8.0], lam=[0.0, -0.3],
    )  # fmt: skip
    x = np.array([-0.02, 0.0, 0.01, -5.0])
    sig2 = np.array([[1e-4] * 4, [2e-4] * 4])
    parts = [
        SkewT.from_params(draws.nu[s], draws.lam[s]).cdf((x - draws.mu[s]) / np.sqrt(sig2[s]))
        for s in range(2)
    ]
    np.testing.assert_allclose(mixture_cdf(x, draws, sig2), np.mean(parts, axis=0), rtol=1e-12)
    assert np.isfinite(normal_scores(np.array([0.01, -5.0]), draws, 1e-4)).all()
    np.testing.assert_allclose(
        to_normal(np.array([0.0, 0.5, 1.0])),
        [stats.norm.ppf(P_MIN), 0.0, -stats.norm.ppf(P_MIN)],
        atol=1e-4,
    )


@pytest.mark.parametrize("bad", [np.array([0.01, np.nan]), np.zeros((2, 2)), np.array([np.inf])])
def test_bad_returns_are_refused(bad):
    with pytest.raises(ValueError, match="finite 1-d"):
        normal_scores(bad, ONE, 1e-4)


@pytest.mark.slow
def test_regime_prior_on_scores_sees_no_changes_in_fat_tailed_clustered_data():
    """GARCH-t data without regime changes: on raw standardised returns the Gaussian detector
    explains fat tails and clustering with frequent changes; on normal scores it does not."""
    from bayes_mem.offline.regime_prior import estimate_regime_prior

    rng = np.random.default_rng(2)
    r = simulate(ONE.subset(np.zeros(4, dtype=int)), 1000, rng)[0]
    scores = [normal_scores(x, ONE, float(x.var())) for x in r]
    raw = [(x - x.mean()) / x.std() for x in r]
    on_scores = estimate_regime_prior(scores, refine=False)
    on_raw = estimate_regime_prior(raw, refine=False)
    assert on_scores["hazard"] <= 1 / 500, on_scores
    assert on_raw["hazard"] >= 4 * on_scores["hazard"], (on_raw["hazard"], on_scores["hazard"])


def test_live_model_scores_match_the_offline_ones_and_survive_a_snapshot():
    """ReturnModel.last_normal_score day by day = normal_scores over the series (up to the
    table's snapped tail weights), on the one-symbol and the general path."""
    from bayes_mem.live.return_model import ReturnModel

    rng = np.random.default_rng(4)
    draws = GarchDraws(
        mu=rng.normal(3e-4, 1e-4, 50), omega=rng.uniform(1e-6, 3e-6, 50),
        alpha=rng.uniform(0.02, 0.05, 50), gamma=rng.uniform(0.05, 0.15, 50),
        beta=rng.uniform(0.8, 0.85, 50), nu=rng.uniform(4, 9, 50), lam=rng.uniform(-0.3, 0, 50),
    )  # fmt: skip
    r = simulate(ONE, 60, rng)[0][0]
    want = normal_scores(r, draws, 1e-4)
    one = ReturnModel({"A": draws}, {"A": np.full(50, 1e-4)})
    two = ReturnModel({"A": draws, "B": draws}, {"A": np.full(50, 1e-4), "B": np.full(50, 1e-4)})
    assert np.all(one.last_normal_score() == 0.0)  # no return yet
    got_one, got_two = [], []
    for t, x in enumerate(r):
        one.update([float(x)], kind="log")
        two.update({"A": float(x)} if t % 2 else {"A": float(x), "B": 0.0}, kind="log")
        got_one.append(one.last_normal_score()[0])
        got_two.append(two.last_normal_score()[0])
    np.testing.assert_allclose(got_one, want, atol=0.02)
    np.testing.assert_allclose(got_two, want, atol=0.02)
    np.testing.assert_allclose(got_one, got_two, rtol=1e-12)  # both paths agree
    restored = ReturnModel.from_snapshot(two.snapshot())
    np.testing.assert_array_equal(restored.last_normal_score(), two.last_normal_score())


def test_live_scores_of_a_full_day_use_the_model_innovations_as_built():
    """Every symbol seen: the model's mixture CDF read from the tail table is the exact scipy
    one (the snapped tail weights) to the table's accuracy: scores within 1e-6 (the symbols deep
    in a tail are recomputed exactly)."""
    from bayes_mem.live.return_model import ReturnModel

    rng = np.random.default_rng(8)
    names = [f"S{i}" for i in range(5)]

    def one(r):
        return GarchDraws(
            mu=r.normal(3e-4, 1e-4, 40), omega=r.uniform(1e-6, 3e-6, 40),
            alpha=r.uniform(0.02, 0.05, 40), gamma=r.uniform(0.05, 0.15, 40),
            beta=r.uniform(0.8, 0.85, 40), nu=r.uniform(4, 9, 40), lam=r.uniform(-0.3, 0, 40),
        )  # fmt: skip

    draws = {s: one(rng) for s in names}
    model = ReturnModel(draws, {s: np.full(40, 1e-4) for s in names})
    for _ in range(5):
        model.update(dict(zip(names, 0.01 * rng.standard_normal(5), strict=True)), kind="log")
        z = (model._last_r[:, None] - model._p["mu"]) / np.sqrt(model._prev_sigma2)
        inn = SkewT.from_params(model._inn.nu, model._inn.lam)
        np.testing.assert_allclose(
            model.last_normal_score(), to_normal(inn.cdf(z) @ model._weights), rtol=0, atol=1e-6
        )
    # a day far in the tails (scores beyond +-3.7 sd): the exact path, same bits
    model.update(dict(zip(names, [-0.3, 0.3, -0.2, 0.25, 1e-4], strict=True)), kind="log")
    z = (model._last_r[:, None] - model._p["mu"]) / np.sqrt(model._prev_sigma2)
    inn = SkewT.from_params(model._inn.nu, model._inn.lam)
    want = to_normal(inn.cdf(z) @ model._weights)
    got = model.last_normal_score()
    np.testing.assert_array_equal(got[:4], want[:4])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
