"""Tabulated mixture tail: the second partial moment and the path-mixture solve against scipy."""

import numpy as np
import pytest

from bayes_mem.live.mixture_tail import MixtureTail
from bayes_mem.live.skewt import SkewT


@pytest.fixture
def comps():
    rng = np.random.default_rng(1)
    nu, lam = rng.uniform(2.5, 9, (4, 50)), rng.uniform(-0.6, 0.6, (4, 50))
    mu, sd = rng.normal(0, 1e-3, (4, 50)), rng.uniform(0.005, 0.02, (4, 50))
    return MixtureTail(nu, lam), mu, sd


@pytest.mark.parametrize("q", [-0.08, -0.03, 0.0, 0.02])
def test_tail_moments_match_the_scipy_closed_forms(comps, q):
    tail, mu, sd = comps
    inn = tail.exact  # the snapped law, through scipy
    qs = np.full(4, q)
    cdf, m1, m2 = tail.tail_moments(qs, mu, sd)
    z = (q - mu) / sd
    f, pm, pm2 = inn.cdf(z), inn.partial_mean(z), inn.partial_moment2(z)
    np.testing.assert_allclose(cdf, f.mean(axis=1), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(m1, (mu * f + sd * pm).mean(axis=1), rtol=1e-8, atol=1e-15)
    expect2 = (mu * mu * f + 2 * mu * sd * pm + sd * sd * pm2).mean(axis=1)
    np.testing.assert_allclose(m2, expect2, rtol=1e-8, atol=1e-17)
    # replicated components (P, n, S) average over the leading axis
    rep = tail.tail_moments(qs, np.stack([mu, mu + 0.01]), np.stack([sd, 2 * sd]))
    other = tail.tail_moments(qs, mu + 0.01, 2 * sd)
    for k in range(3):
        np.testing.assert_allclose(rep[k], 0.5 * (np.array((cdf, m1, m2))[k] + other[k]))


def test_path_mixture_solve_equals_the_flat_mixture_and_its_standard_error(comps):
    tail, mu, sd = comps
    rng = np.random.default_rng(2)
    p = 6
    loc = mu + rng.normal(0, 0.01, (p, *mu.shape))
    scale = sd * rng.uniform(0.8, 1.2, (p, *mu.shape))
    alpha = 0.025
    var, es, se, _ = tail.var_es_paths(alpha, loc, scale, np.full(4, -0.03), rtol=1e-8)
    # the same mixture, flattened to (n, P S) components, through scipy
    flat_loc = np.concatenate(list(loc), axis=1)
    flat_sd = np.concatenate(list(scale), axis=1)
    inn = SkewT.from_params(np.tile(tail.nu, (1, p)), np.tile(tail.exact.lam, (1, p)))
    z = (-var[:, None] - flat_loc) / flat_sd
    np.testing.assert_allclose(inn.cdf(z).mean(axis=1), alpha, rtol=1e-7)
    tail_mean = (flat_loc * inn.cdf(z) + flat_sd * inn.partial_mean(z)).mean(axis=1)
    np.testing.assert_allclose(es, -tail_mean / alpha, rtol=1e-7)
    # standard error: the within-draw spread of g = E[(q - X)^+] over the P paths
    g = -var[:, None] * inn.cdf(z) - (flat_loc * inn.cdf(z) + flat_sd * inn.partial_mean(z))
    g = g.reshape(4, p, -1)
    expect = np.sqrt(g.var(axis=1, ddof=1).mean(axis=1) / (p * g.shape[2])) / alpha
    np.testing.assert_allclose(se, expect, rtol=1e-6)


def test_the_tail_table_never_indexes_with_a_nan():
    """|t| = inf (a component 1e308 sds away) read the table at index -2^63 (IndexError); now
    it is the exact limit (TL = M = 0); a NaN is refused by name."""
    from bayes_mem.live.tail_table import lower_tail, row_offsets, snap_nu

    row, nu = snap_nu(np.array([5.0, 5.0, 2.1, 2.1]))
    tl, m = lower_tail(np.array([1.0, np.inf, 1e300, 100.0]), row_offsets(row), nu)
    assert tl[1] == tl[2] == 0.0 and m[1] == m[2] == 0.0 and np.all(np.isfinite(tl + m))
    from scipy import special

    np.testing.assert_allclose(tl[[0, 3]], special.stdtr(nu[[0, 3]], -np.array([1.0, 100.0])),
                               rtol=1e-9)  # fmt: skip
    with pytest.raises(ValueError, match="NaN"):
        lower_tail(np.array([1.0, np.nan]), row_offsets(row[:2]), nu[:2])


@pytest.mark.parametrize("q", [-2.0, -0.08, -0.01, 0.0, 0.015, 0.05, 2.0])
def test_cdf_alone_matches_evaluate_and_scipy(comps, q):
    """MixtureTail.cdf (the normal scores' path: TL coefficients only) = evaluate's CDF, and the
    exact scipy mixture CDF to the table's accuracy; beyond the table (|t| > S_CUT) as well; on
    a subset of rows."""
    tail, mu, sd = comps
    qs = np.full(4, q) + np.array([0.0, 1e-3, -1e-3, 2e-3])
    got = tail.cdf(qs, mu, sd)
    np.testing.assert_allclose(got, tail.evaluate(qs, mu, sd)[0], rtol=0, atol=1e-14)
    z = (qs[:, None] - mu) / sd
    np.testing.assert_allclose(got, tail.exact.cdf(z).mean(axis=1), rtol=0, atol=1e-10)
    rows = np.array([3, 1])
    np.testing.assert_allclose(
        tail.cdf(qs[rows], mu[rows], sd[rows], rows), got[rows], rtol=0, atol=1e-15
    )


def test_tail_moments_on_each_side_of_the_splits_match_scipy():
    """The second partial moment is assembled per side of each component's split (Hansen's
    skew-t): rows with every component left of ``q``'s split, a few right of it (fixed up
    alone), half right, and all right; each against scipy's closed forms, weighted paths too."""
    rng = np.random.default_rng(3)
    s = 80
    nu, lam = rng.uniform(2.5, 12.0, (4, s)), rng.uniform(-0.8, 0.8, (4, s))
    tail = MixtureTail(nu, lam)
    sd = rng.uniform(0.005, 0.03, (4, s))
    shares = [0, 4, s // 2, s]  # per row, the components with q right of their split
    q = np.full(4, -0.01)
    mu = np.full((4, s), 0.02)  # q left of their splits
    just_right = q[:, None] - (tail.split + 0.3) * sd  # q 0.3 sd right of their splits
    for row, k in enumerate(shares):
        mu[row, :k] = just_right[row, :k]
    # one row at a time (a block each: the branch is chosen per block), then all at once
    one = [MixtureTail(nu[i : i + 1], lam[i : i + 1]).tail_moments(q[:1], mu[i : i + 1],
                                                                    sd[i : i + 1])
           for i in range(4)]  # fmt: skip
    cdf, m1, m2 = (np.concatenate([r[k] for r in one]) for k in range(3))
    for k, together in enumerate(tail.tail_moments(q, mu, sd)):
        np.testing.assert_allclose(together, (cdf, m1, m2)[k], rtol=1e-12, atol=0)
    inn = tail.exact
    z = (q[:, None] - mu) / sd
    f, pm, pm2 = inn.cdf(z), inn.partial_mean(z), inn.partial_moment2(z)
    right = q[:, None] > mu + tail.split * sd
    assert right.sum(axis=1).tolist() == shares
    # the tail table's absolute error (< 1e-10 per component) sets the absolute tolerances
    np.testing.assert_allclose(cdf, f.mean(axis=1), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(m1, (mu * f + sd * pm).mean(axis=1), rtol=1e-8, atol=3e-11)
    expect2 = (mu * mu * f + 2 * mu * sd * pm + sd * sd * pm2).mean(axis=1)
    np.testing.assert_allclose(m2, expect2, rtol=1e-8, atol=5e-12)
    wts = rng.uniform(0.5, 1.5, (2, 4, s))
    got = tail.tail_moments(q, np.stack([mu, mu]), np.stack([sd, sd]), wts)
    want2 = mu * mu * f + 2 * mu * sd * pm + sd * sd * pm2
    np.testing.assert_allclose(got[2], (want2 * wts).mean(axis=(0, 2)), rtol=1e-8, atol=5e-12)
