"""The returns fit's posterior predictive simulation in numba (bayes_mem.offline.ppc_sim) against
the numpy formulas it replaced: bit-equal statistics, bit-equal exceedance counts and generator
states for the same generator, p-values independent of the number of threads."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.skewt import SkewT
from bayes_mem.offline import returns_model as rm
from bayes_mem.offline.ppc_sim import _pairwise_sum, _stats, chunk_exceedances, quantile_points


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 300, 997, 2519, 2520])
def test_pairwise_sum_is_numpys_to_the_bit(n):
    x = np.random.default_rng(n).standard_normal(n) * np.logspace(-3, 3, n)
    assert _pairwise_sum(x, 0, n) == np.add.reduce(x)
    if n > 2:
        assert _pairwise_sum(x, 1, n - 2) == np.add.reduce(x[1:-1])


@pytest.mark.parametrize("n", [50, 129, 997, 2480, 2520])
def test_tail_statistics_are_numpys_to_the_bit(n):
    gen = np.random.default_rng(n)
    series = gen.standard_t(5, (60, n)) * 0.01 + 3e-4
    ref = rm._tail_stats(series)
    idx, gam = quantile_points(n)
    ours = np.array([_stats(x.copy(), np.empty(n), idx, gam) for x in series])
    assert np.array_equal(ref, ours)


def _draws(gen: np.random.Generator, size: int) -> GarchDraws:
    return GarchDraws(
        mu=gen.normal(3e-4, 1e-4, size), omega=gen.uniform(1e-6, 4e-6, size),
        alpha=gen.uniform(0.03, 0.05, size), gamma=gen.uniform(-0.02, 0.15, size),
        beta=gen.uniform(0.75, 0.85, size), nu=gen.uniform(2.5, 12, size),
        lam=gen.uniform(-0.3, 0.2, size),
    )  # fmt: skip


@pytest.mark.parametrize("n_days", [60, 500])
def test_chunk_counts_equal_the_numpy_simulation_for_the_same_generator(n_days):
    gen = np.random.default_rng(7)
    d = _draws(gen, 300)
    s0 = np.full(d.size, 1.5e-4)
    obs_series = rm.simulate_paths(_draws(gen, 1), n_days, gen, np.array([1e-4]))[0]
    obs = rm._tail_stats(obs_series)[0]
    # observed statistics inside the replicates' range, so that every count is informative
    ref_gen, our_gen = np.random.default_rng(11), np.random.default_rng(11)
    ref = (rm._tail_stats(rm.simulate_paths(d, n_days, ref_gen, s0)) >= obs).sum(axis=0)
    st = SkewT.from_params(d.nu, d.lam)
    idx, gam = quantile_points(n_days)
    ours = np.zeros(3, dtype=np.int64)
    chunk_exceedances(our_gen, d.mu, d.omega, d.alpha, d.gamma, d.beta, st.nu, st.lam, st.a,
                      st.b, st.k, s0, n_days, idx, gam, obs, ours)  # fmt: skip
    assert ours.tolist() == ref.tolist()
    assert ours.min() > 0 and ours.max() < d.size  # the comparison can fail either way
    # the same random numbers were consumed: both generators are in the same state after
    assert our_gen.bit_generator.state == ref_gen.bit_generator.state


def _tree(n_symbols: int, draws: int = 50) -> xr.DataTree:
    gen = np.random.default_rng(3)
    shape = (2, draws, n_symbols)
    d = _draws(gen, int(np.prod(shape)))
    post = {
        "mu_pct": d.mu * rm.SCALE, "omega_pct": d.omega * rm.SCALE**2, "alpha": d.alpha,
        "gamma": d.gamma, "beta": d.beta, "nu": d.nu, "lam": d.lam,
        "last_sigma2_pct": np.full(d.size, 2.0),
    }  # fmt: skip
    ds = xr.Dataset({k: (("chain", "draw", "symbol"), v.reshape(shape)) for k, v in post.items()},
                    coords={"symbol": [f"S{j}" for j in range(n_symbols)]})  # fmt: skip
    return xr.DataTree.from_dict({"posterior": ds})


def test_pvalues_do_not_depend_on_the_number_of_threads_and_follow_the_old_formula():
    tree = _tree(3)
    gen = np.random.default_rng(5)
    cols = [gen.standard_t(5, n) * 0.01 for n in (120, 200, 90)]
    one = rm.posterior_predictive_pvalues(tree, cols, n_rep=2500, rng=4, threads=1)
    three = rm.posterior_predictive_pvalues(tree, cols, n_rep=2500, rng=4, threads=3)
    assert dict(one) == dict(three) and one.replicates == 2500
    # symbol j's p-values are the numpy formula's with the j-th spawned generator
    flat = rm._flat(tree)
    total = flat["nu"].shape[0]
    for j, (child, c) in enumerate(zip(np.random.default_rng(4).spawn(3), cols, strict=True)):
        obs = rm._tail_stats(c)[0]
        exceed = np.zeros(3)
        for size in (2000, 500):  # the chunks
            d, _ = rm._symbol_draws(flat, child.integers(0, total, size), j)
            rep = rm.simulate_paths(d, c.size, child, np.full(size, c.var()))
            exceed += (rm._tail_stats(rep) >= obs).sum(axis=0)
        for k, stat in enumerate(rm.PPC_NAMES):
            assert one[f"{stat}[S{j}]"] == (exceed[k] + 1) / 2501
