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
from bayes_mem.offline.ppc_sim import _pairwise_sum, _stats, chunk_hits, quantile_points


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
    ref_hits = rm._tail_stats(rm.simulate_paths(d, n_days, ref_gen, s0)) >= obs
    ref = ref_hits.sum(axis=0)
    st = SkewT.from_params(d.nu, d.lam)
    idx, gam = quantile_points(n_days)
    hits = np.zeros((d.size, 3), dtype=np.int8)
    chunk_hits(our_gen, d.mu, d.omega, d.alpha, d.gamma, d.beta, st.nu, st.lam, st.a,
                      st.b, st.k, s0, n_days, idx, gam, obs, hits)  # fmt: skip
    ours = hits.sum(axis=0)
    assert np.array_equal(hits, ref_hits.astype(np.int8))  # replicate by replicate, in order
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


@pytest.mark.parametrize("sequential", [False, True])
def test_pvalues_do_not_depend_on_the_number_of_threads_and_follow_the_numpy_formula(sequential):
    tree = _tree(3)
    gen = np.random.default_rng(5)
    cols = [gen.standard_t(5, n) * 0.01 for n in (120, 200, 90)]
    kw = {"n_rep": 2500, "rng": 4, "sequential": sequential}
    one = rm.posterior_predictive_pvalues(tree, cols, threads=1, **kw)
    three = rm.posterior_predictive_pvalues(tree, cols, threads=3, **kw)
    assert dict(one) == dict(three) and one.replicates == 2500
    assert one.lower == three.lower and one.simulated == three.simulated
    # symbol j's p-values are the numpy formula's with the j-th spawned generator
    flat = rm._flat(tree)
    total = flat["nu"].shape[0]
    for j, (child, c) in enumerate(zip(np.random.default_rng(4).spawn(3), cols, strict=True)):
        obs = rm._tail_stats(c)[0]
        hits = []
        for size in rm._chunk_sizes(2500):  # 250, 500, 1000, 750
            d, _ = rm._symbol_draws(flat, child.integers(0, total, size), j)
            rep = rm.simulate_paths(d, c.size, child, np.full(size, c.var()))
            hits.append(rm._tail_stats(rep) >= obs)
            run = np.concatenate(hits)
            k = run.sum(axis=0)
            if sequential and np.all(k >= 20) and np.all(len(run) - k >= 20):
                break  # every check decided: Besag-Clifford stops
        run = np.concatenate(hits)
        for k, stat in enumerate(rm.PPC_NAMES):
            name = f"{stat}[S{j}]"
            if not sequential:
                assert one[name] == (run[:, k].sum() + 1) / 2501
                continue
            up_at = np.flatnonzero(run[:, k])  # the 20th hit at replicate L: p = 20 / L
            low_at = np.flatnonzero(~run[:, k])
            up = 20 / (up_at[19] + 1) if up_at.size >= 20 else (up_at.size + 1) / 2501
            low = 20 / (low_at[19] + 1) if low_at.size >= 20 else (low_at.size + 1) / 2501
            assert (one[name], one.lower[name]) == (up, low)
    if sequential:  # these fits are far from significance: decided early
        assert one.simulated < 3 * 2500


def _sequential_run(gen, pis, n_max, h=20, chunk=250):
    """Hit streams of independent checks with exceedance probabilities ``pis``, simulated in
    chunks and stopped as the returns PPC stops them (every check ``h`` on each side)."""
    rows = []
    while sum(len(r) for r in rows) < n_max:
        size = min(chunk, n_max - sum(len(r) for r in rows))
        rows.append((gen.random((size, len(pis))) < pis).astype(np.int8))
        run = np.concatenate(rows)
        k = run.sum(axis=0)
        if np.all(k >= h) and np.all(len(run) - k >= h):
            break
    return np.concatenate(rows)


def test_sequential_pvalues_are_valid_two_sided_under_the_null():
    """Under the null the observed statistic is one more draw of the replicates' distribution,
    so its exceedance probability is uniform: the two-sided p = min(1, 2 min(upper, lower)) of
    each check must satisfy P(p <= a) <= a (up to Monte Carlo error), while the simulations stop
    far earlier than n_max."""
    from bayes_mem.offline.diagnostics import sequential_pvalues

    gen = np.random.default_rng(12)
    n_sets, n_max = 4000, 20_000
    p2, used = [], []
    for _ in range(n_sets):
        pis = gen.random(3)
        run = _sequential_run(gen, pis, n_max)
        up, low = sequential_pvalues(run, 20, n_max)
        p2.extend(np.minimum(1.0, 2.0 * np.minimum(up, low)))
        used.append(len(run))
    p2 = np.array(p2)
    for a in (0.005, 0.01, 0.05, 0.1, 0.25, 0.5):
        rate = np.mean(p2 <= a)
        assert rate <= a + 3 * np.sqrt(a * (1 - a) / p2.size), (a, rate)
    assert np.mean(p2 <= 0.1) > 0.07  # not needlessly conservative
    assert np.median(used) < 1500  # decided after a few hundred replicates, not 20,000


def test_sequential_pvalues_keep_the_power_of_all_replicates_for_small_pvalues():
    """A check with exceedance probability 2e-4 (a misfit: 20,000 replicates, Holm over 83
    checks needs p < 1.2e-4 two-sided) runs all n_max replicates and gets the fixed-size
    p-value, so the sequential rule loses no power where the gate rejects."""
    from bayes_mem.offline.diagnostics import sequential_pvalues

    gen = np.random.default_rng(3)
    for _ in range(20):
        run = _sequential_run(gen, np.array([2e-4, 0.4, 0.6]), 20_000)
        up, _ = sequential_pvalues(run, 20, 20_000)
        assert len(run) == 20_000
        assert up[0] == (run[:, 0].sum() + 1) / 20_001


def test_sequential_pvalues_refuse_a_run_stopped_too_early():
    from bayes_mem.offline.diagnostics import sequential_pvalues

    with pytest.raises(ValueError, match="stopped too early"):
        sequential_pvalues(np.zeros((300, 1), dtype=np.int8), 20, 2000)
    with pytest.raises(ValueError, match="1 to n_max"):
        sequential_pvalues(np.zeros((300, 1), dtype=np.int8), 20, 200)
    with pytest.raises(ValueError, match="1 to n_max"):  # no replicate at all
        sequential_pvalues(np.zeros((0, 3), dtype=np.int8), 20, 0)
    from bayes_mem.offline.diagnostics import monte_carlo_pvalues

    for sequential in (True, False):
        with pytest.raises(ValueError, match="n_rep must be at least 1"):
            monte_carlo_pvalues(np.zeros(2), lambda: np.ones(2), 0, sequential=sequential)
