"""Where the CPU of the 20 x 2,520 nightly returns fit goes (issue 17): each phase's wall and
process CPU seconds (all threads), the sampler's gradient count and what they cost at the
measured per-gradient price, the rest of the sampler's CPU (nutpie's own work: tuning, tree
building, storing draws and deterministics).

``python -m benchmarks.profile_returns_fit [--nightly [--compare-ppc]] [--save PATH | --load PATH]``

- default: the benchmark's path (:func:`benchmarks.bench_returns_fit.full_fit`): compile, fit
  on all days, PPC, gate;
- ``--nightly``: the nightly job's path (:func:`bayes_mem.offline.returns_model.fit_gated`'s
  one attempt): the fit without the last 40 days, leave-future-out, PPC with the LFO tests in
  its Holm family, the live-state check, the gate;
- ``--compare-ppc`` (with ``--nightly``): the fixed-size PPC timed after the sequential one, in
  the same process (the ratio of the two), and the gate with each;
- ``--save PATH`` keeps the posterior (netCDF) and ``--load PATH`` re-times the checks on it
  without sampling again.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import numpy as np

from benchmarks.bench_returns import simulated_returns

ROWS: list[tuple[str, float, float]] = []


@contextmanager
def phase(name: str):
    t0, c0 = time.perf_counter(), time.process_time()
    yield
    ROWS.append((name, time.perf_counter() - t0, time.process_time() - c0))
    print(f"{name:<44}{ROWS[-1][1]:>8.1f} s wall{ROWS[-1][2]:>8.1f} CPU-s", flush=True)


def gradient_cpu_us(r_pct: np.ndarray, first: np.ndarray | None = None) -> float:
    """Best thread-CPU microseconds of one log-density + gradient of the fitted data (the
    numba function PyTensor compiles for the model, as nutpie's numba backend calls it)."""
    from bayes_mem.offline import returns_model as rm

    n = r_pct.shape[1]
    var0 = r_pct.var(0)
    model = rm.build_returns_model(r_pct, [f"S{i}" for i in range(n)], var0, var0, first)
    fn = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
    fn.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    fn(x)
    best = np.inf
    for _ in range(7):
        c0 = time.thread_time()
        for _ in range(200):
            fn(x)
        best = min(best, (time.thread_time() - c0) / 200 * 1e6)
    return best


def gate_pieces(tree, var_names) -> None:
    """The gate's parts timed one by one (as :func:`bayes_mem.offline.diagnostics.gate` runs
    them)."""
    import arviz as az

    from bayes_mem.offline import diagnostics as dg

    post = tree["posterior"].to_dataset()[var_names]
    with phase("gate: R-hat"):
        az.rhat(post)
    with phase("gate: bulk ESS"):
        az.ess(post, method="bulk")
    with phase("gate: tail ESS"):
        az.ess(post, method="tail")
    with phase("gate: rank tests (thinning + uniformity)"):
        tests = dg.rank_tests(tree, var_names)
    print(f"  rank tests: {len(tests)} elements")


def main() -> None:
    import xarray as xr

    from bayes_mem.offline import returns_model as rm
    from bayes_mem.offline.diagnostics import gate
    from bayes_mem.offline.recalibrate import RecalibrationConfig

    nightly = "--nightly" in sys.argv
    cfg = RecalibrationConfig()
    r = simulated_returns(20, 2520)
    symbols = [f"S{i}" for i in range(20)]
    hold = rm.LFO_DAYS if nightly else 0
    fitted = r[: r.shape[0] - hold]
    c_all = time.process_time()
    if "--load" in sys.argv:
        tree = xr.open_datatree(sys.argv[sys.argv.index("--load") + 1]).load()
    else:
        model = rm.PooledReturnsFitter()
        r_pct = fitted * rm.SCALE
        with phase("compile (build + compile_cache.compile_model)"):
            model.compiled(r_pct, symbols, r_pct.var(0), r_pct.var(0))
        with phase("sample (nutpie, 4 x (1000 + 1000))"):
            if nightly:
                tree = rm.fit_holdout(
                    model, r, symbols, hold, draws=cfg.returns_mcmc_draws,
                    tune=cfg.returns_mcmc_tune, chains=cfg.chains,
                    target_accept=cfg.returns_target_accept, seed=cfg.seed, progress=False,
                )  # fmt: skip
            else:
                tree = model.fit(
                    r, symbols, draws=cfg.returns_mcmc_draws, tune=cfg.returns_mcmc_tune,
                    chains=cfg.chains, target_accept=cfg.returns_target_accept, seed=1,
                    progress=False,
                )  # fmt: skip
        grads = int(tree["sample_stats"]["n_steps"].sum())
        if "warmup_sample_stats" in tree.children:
            grads += int(tree["warmup_sample_stats"]["n_steps"].sum())
        sample_cpu = ROWS[-1][2]
        us = gradient_cpu_us(fitted * rm.SCALE)
        print(f"  {grads} gradients x {us:.0f} us (thread CPU, best of 7 x 200) = "
              f"{grads * us / 1e6:.1f} CPU-s of {sample_cpu:.1f}: the rest "
              f"{sample_cpu - grads * us / 1e6:.1f} CPU-s is nutpie's own work")  # fmt: skip
        if "--save" in sys.argv:
            path = sys.argv[sys.argv.index("--save") + 1]
            keep = {
                k: tree[k].to_dataset()
                for k in tree.children
                if k in ("posterior", "sample_stats", "warmup_sample_stats", "holdout")
            }
            out = xr.DataTree.from_dict(keep)
            for k in ("sample_stats", "warmup_sample_stats"):
                if k in keep:
                    ds = keep[k]
                    out[k] = ds.drop_vars([v for v in ds.data_vars if ds[v].dtype == object])
            out.to_netcdf(path, engine="h5netcdf")
    if nightly:
        with phase("leave-future-out"):
            lfo, _ = rm.leave_future_out(tree, cfg.seed)
        m = len(rm.PPC_NAMES) * r.shape[1] + len(lfo)
        n_rep = rm.replicates_for(m)
        with phase(f"PPC (sequential, at most {n_rep} replicates per symbol)"):
            ppc = rm.posterior_predictive_pvalues(tree, fitted, rng=cfg.seed, n_rep=n_rep)
        print(f"  {ppc.simulated} replicates simulated in all ({r.shape[1]} symbols)")
        if "--compare-ppc" in sys.argv:  # the fixed-size PPC in the same run: the baseline
            with phase(f"PPC (fixed, {n_rep} replicates per symbol)"):
                fixed = rm.posterior_predictive_pvalues(
                    tree, fitted, rng=cfg.seed, n_rep=n_rep, sequential=False
                )
            print(f"  sequential / fixed: {ROWS[-2][1] / ROWS[-1][1]:.3f} wall, "
                  f"{ROWS[-2][2] / ROWS[-1][2]:.3f} CPU")  # fmt: skip
            for verdict_ppc, label in ((ppc, "sequential"), (fixed, "fixed")):
                v = gate(tree, rm.GATED_VARS, verdict_ppc, ppc_correction="holm", tests=lfo)
                print(f"  gate with the {label} PPC: {'passed' if v.passed else v.reasons}")
        with phase("live state"):
            state_fails, _ = rm.live_state_failures(tree, r)
    else:
        n_rep = rm.replicates_for(len(rm.PPC_NAMES) * r.shape[1])
        with phase(f"PPC ({n_rep} replicates per symbol)"):
            ppc = rm.posterior_predictive_pvalues(tree, r, rng=0)
        lfo, state_fails = {}, []
    gate_pieces(tree, rm.GATED_VARS)
    with phase("gate (whole, as the job calls it)"):
        verdict = gate(tree, rm.GATED_VARS, ppc, ppc_correction="holm" if nightly else "none",
                       tests=lfo, extra=state_fails)  # fmt: skip
    print(f"gate {'passed' if verdict.passed else 'FAILED: ' + '; '.join(verdict.reasons)}")
    print(f"total process CPU {time.process_time() - c_all:.1f} s")


if __name__ == "__main__":
    main()
