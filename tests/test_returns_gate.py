"""The returns fit's gate (issue 16), on fits whose posterior is the known truth (no sampler):
posterior predictive checks judged per symbol with Holm's correction, leave-future-out
calibration on held-out days, and the published live state."""

import numpy as np
import pytest
import xarray as xr

from bayes_mem.live.gjr_garch import GarchDraws, simulate, variance_path
from bayes_mem.offline import returns_model as rm
from bayes_mem.offline.diagnostics import MISFIT

TRUE = dict(mu=3e-4, omega=2e-6, alpha=0.1, gamma=0.08, beta=0.84, nu=8.0, lam=-0.1)
DAYS = 1000


def truth(n: int = 1) -> GarchDraws:
    return GarchDraws(**{k: np.full(n, v) for k, v in TRUE.items()})


def series(rng: np.random.Generator, n_symbols: int, days: int = DAYS) -> list[np.ndarray]:
    r, _ = simulate(truth(n_symbols), days, rng)
    return [r[j] for j in range(n_symbols)]


def known_tree(cols: list[np.ndarray], holdout: int = rm.LFO_DAYS, draws: int = 500):
    """A fit whose every draw is the true parameters, in the returns model's layout (percent
    units, ``last_sigma2_pct`` the state after the last fitted return, held-out days in the
    ``holdout`` group) with well-mixed gated variables and clean sampler statistics."""
    rng = np.random.default_rng(99)
    names = [f"S{j}" for j in range(len(cols))]
    shape = (4, draws, len(cols))
    fitted = [c[:-holdout] if holdout else c for c in cols]
    last = [variance_path(c, truth(), c.var())[0, -1] for c in fitted]
    pct = {"mu_pct": TRUE["mu"] * rm.SCALE, "omega_pct": TRUE["omega"] * rm.SCALE**2,
           "alpha": TRUE["alpha"], "gamma": TRUE["gamma"], "beta": TRUE["beta"],
           "nu": TRUE["nu"], "lam": TRUE["lam"]}  # fmt: skip
    post = {k: (("chain", "draw", "symbol"), np.full(shape, v)) for k, v in pct.items()}
    post["last_sigma2_pct"] = (
        ("chain", "draw", "symbol"),
        np.broadcast_to(np.array(last) * rm.SCALE**2, shape).copy(),
    )
    for v in rm.GATED_VARS:  # the sampler-side checks see well-mixed draws
        if v not in post:
            post[v] = (("chain", "draw", "symbol"), rng.standard_normal(shape))
    stats = xr.Dataset({
        "diverging": (("chain", "draw"), np.zeros(shape[:2], bool)),
        "energy": (("chain", "draw"), rng.standard_normal(shape[:2])),
        "maxdepth_reached": (("chain", "draw"), np.zeros(shape[:2], bool)),
    })  # fmt: skip
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset(post, coords={"symbol": names}),
                                  "sample_stats": stats})  # fmt: skip
    if holdout:
        tree["holdout"] = xr.Dataset({"returns": (("day", "symbol"),
                                                  np.stack([c[-holdout:] for c in cols], 1))},
                                     coords={"symbol": names})  # fmt: skip
    return tree


@pytest.fixture(scope="module")
def good():
    cols = series(np.random.default_rng(1), 4)
    return cols, known_tree(cols)


def test_the_truth_passes_the_returns_gate(good):
    cols, tree = good
    v = rm.check(tree, cols, rng=0)
    assert v.passed, v.reasons
    s = v.summary
    assert s["ppc_correction"] == "holm" and s["ppc_tests"] == 3 * 4 + 4 + 3
    assert s["ppc_replicates"] == rm.replicates_for(19) == 7600
    assert s["ppc_resolution"] == pytest.approx(1 / 7601)
    assert {f"left_tail[S{j}]" for j in range(4)} <= {k[4:] for k in s if k.startswith("ppc_")}
    assert s["lfo_pits"] == 4 * rm.LFO_DAYS


def test_one_misfit_symbol_is_caught_per_symbol_not_averaged_away():
    """Old code averaged each statistic over symbols: one shuffled symbol (no volatility
    clustering) among five good ones moved the average by a sixth."""
    rng = np.random.default_rng(2)
    cols = series(rng, 6)
    cols[3] = rng.permutation(cols[3])
    tree = known_tree(cols, holdout=0)
    v = rm.check(tree, cols, rng=0)
    assert v.summary["ppc_vol_clustering[S3]"] > 0.999
    failed = [f for f in v.failures if f.check == "ppc"]
    assert [f.where for f in failed] == ["vol_clustering[S3]"] and failed[0].kind == MISFIT


def test_days_the_fit_did_not_see_are_checked(good):
    """The held-out last 40 days at three times the volatility the fit's state predicts: the
    in-sample checks cannot see it; the leave-future-out tests do."""
    cols, _ = good
    shifted = [c.copy() for c in cols]
    for c in shifted:
        c[-rm.LFO_DAYS :] *= 3.0
    tree = known_tree(shifted)
    tests, summary = rm.leave_future_out(tree, rng=0)
    assert tests["lfo_scale"] < 1e-4 and summary["lfo_left_5%_hits"] > 1.5 * summary[
        "lfo_left_5%_expected"]  # fmt: skip
    assert min(tests[f"lfo_scale[S{j}]"] for j in range(4)) < 0.01
    v = rm.check(tree, shifted, rng=0)
    assert not v.passed and any(f.where.startswith("lfo") for f in v.failures)
    in_sample = [f for f in v.failures if f.check == "ppc" and not f.where.startswith("lfo")]
    assert in_sample == []


def test_lfo_pits_are_the_predictive_cdf_of_the_held_out_days(good):
    """Brute-force reference: filter each held-out day's variance by hand from the fit's last
    state and evaluate the skew-t CDF."""
    from bayes_mem.live.skewt import SkewT

    cols, tree = good
    h = cols[0][-rm.LFO_DAYS :]
    s2 = variance_path(cols[0][: -rm.LFO_DAYS], truth(), cols[0][: -rm.LFO_DAYS].var())[0, -1]
    u = []
    for x in h:
        u.append(float(SkewT.from_params(np.array([8.0]), np.array([-0.1])).cdf(
            np.array([(x - TRUE["mu"]) / np.sqrt(s2)]))[0]))  # fmt: skip
        e = x - TRUE["mu"]
        s2 = TRUE["omega"] + (TRUE["alpha"] + TRUE["gamma"] * (e < 0)) * e * e + TRUE["beta"] * s2
    from scipy import stats

    tests, _ = rm.leave_future_out(tree, rng=0)
    z2 = float(np.sum(stats.norm.ppf(u) ** 2))
    chi2 = stats.chi2(len(u))
    ref = min(1.0, 2 * min(chi2.cdf(z2), chi2.sf(z2)))
    assert tests["lfo_scale[S0]"] == pytest.approx(ref, rel=1e-6)
    # the published state is after the last return, held-out days included
    _, state = rm.draws_for_live(tree, 5, np.random.default_rng(0))["S0"]
    np.testing.assert_allclose(state, s2, rtol=1e-9)


def test_the_published_live_state_is_checked(good):
    cols, tree = good
    fails, summary = rm.live_state_failures(tree, cols)
    assert fails == []
    tree = known_tree(cols, holdout=0)  # (held-out days would heal a tiny state: filtered)
    fails, summary = rm.live_state_failures(tree, cols)
    assert fails == []
    realised = np.mean((cols[0][-60:] - cols[0][-60:].mean()) ** 2)
    _, state = rm.draws_for_live(tree, 10, np.random.default_rng(0))["S0"]
    assert summary["state_ratio_min"] <= np.median(state) / realised <= summary["state_ratio_max"]
    for value, word in ((1e-45, "allowed"), (np.nan, "not finite"), (1e4, "allowed")):
        bad = tree.copy(deep=True)
        post = bad["posterior"].to_dataset()
        x = post["last_sigma2_pct"].values.copy()
        x[..., 1] = value
        bad["posterior"] = post.assign(last_sigma2_pct=(post["last_sigma2_pct"].dims, x))
        fails, _ = rm.live_state_failures(bad, cols)
        assert [f.where for f in fails] == ["S1"] and word in fails[0].message
        assert fails[0].kind == MISFIT
        if word == "not finite":
            v = rm.check(bad, cols, rng=0, n_rep=500)
            assert not v.passed and not v.retryable
            assert [f.check for f in v.failures] == ["live_state"]


def test_the_fast_skew_t_sampler_follows_the_skew_t_cdf():
    from scipy import stats

    from bayes_mem.live.skewt import SkewT

    gen = np.random.default_rng(4)
    for nu, lam in ((5.0, -0.3), (30.0, 0.2)):
        z = rm.skewt_draws(np.array([nu]), np.array([lam]), (200_000, 1), gen)[:, 0]
        st = SkewT.from_params(np.array(nu), np.array(lam))
        assert stats.kstest(z, st.cdf).pvalue > 0.01
        assert abs(z.mean()) < 0.01 and abs(z.var() - 1) < 0.03
