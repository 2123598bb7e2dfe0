"""Offline speed goal (issue 4): the pooled returns model for 20 symbols x 2,520 days under
10 minutes wall, compile included, passing the gate (nightly settings: 4 chains x 1,000 draws
after 1,000 tuning steps). Also reported: how the time grows with symbols and days (full fits,
and the cost of one log-density + gradient evaluation of the default likelihood, the numba Op of
issue 17), next to the same model as a graph with the variance recursion written as a
``pytensor.scan`` (the straightforward way), measured in the same run. The Op against today's
prefix-scan graph: ``bench_returns_fit``.

``python -m benchmarks --only returns`` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import time
from unittest import mock

import numpy as np

from benchmarks._timing import Result

SIZES = [(5, 2520), (20, 1260), (20, 2520)]  # full fits (symbols, days)
GRID = [(n, t) for n in (2, 5, 20) for t in (630, 1260, 2520)]  # gradient cost


def simulated_returns(n_symbols: int, n_days: int, seed: int = 0) -> np.ndarray:
    from bayes_mem.live.gjr_garch import GarchDraws, simulate

    rng = np.random.default_rng(seed)
    cols = []
    for _ in range(n_symbols):
        vol = rng.uniform(0.7, 2.0)
        d = GarchDraws(
            mu=[3e-4], omega=[2e-6 * vol**2], alpha=[rng.uniform(0.01, 0.05)],
            gamma=[rng.uniform(0.05, 0.15)], beta=[0.86], nu=[rng.uniform(4, 9)],
            lam=[rng.uniform(-0.2, 0.0)],
        )  # fmt: skip
        cols.append(simulate(d, n_days, rng)[0][0])
    return np.stack(cols, axis=1)


def _scan_filter(drive, beta, depth):  # the straightforward recursion, for scale
    import pytensor
    import pytensor.tensor as pt

    def step(x, prev, b):
        return x + b * prev

    out = pytensor.scan(
        step, sequences=[drive[1:]], outputs_info=[drive[0]], non_sequences=[beta],
        return_updates=False,
    )  # fmt: skip
    return pt.concatenate([drive[:1], out], axis=0)


def gradient_us(n_symbols: int, n_days: int, scan: bool = False, number: int = 50) -> float:
    """Best microseconds of one log-density + gradient evaluation (numba, as nutpie uses)."""
    from bayes_mem.offline import returns_model as rm

    r = simulated_returns(n_symbols, n_days, seed=1) * rm.SCALE
    patch = mock.patch.object(rm, "_prefix_filter", _scan_filter) if scan else mock.MagicMock()
    with patch:  # the scan baseline replaces the reference graph's prefix scan
        model = rm.build_returns_model(
            r, [f"S{i}" for i in range(n_symbols)], r.var(0), r.var(0),
            likelihood="graph" if scan else "op",
        )  # fmt: skip
    fn = model.logp_dlogp_function(mode="NUMBA", ravel_inputs=True)
    fn.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    fn(x)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(number):
            fn(x)
        best = min(best, (time.perf_counter() - t0) / number * 1e6)
    return best


def full_fit(n_symbols: int, n_days: int) -> tuple[float, bool, int, str]:
    """Wall seconds of a fresh compile + nightly-settings fit + PPC + gate; verdict; gradient
    evaluations; reasons."""
    from bayes_mem.offline import returns_model as rm
    from bayes_mem.offline.diagnostics import gate

    r = simulated_returns(n_symbols, n_days)
    t0 = time.perf_counter()
    symbols = [f"S{i}" for i in range(n_symbols)]
    tree = rm.PooledReturnsFitter().fit(r, symbols, seed=1, progress=False)
    verdict = gate(tree, rm.GATED_VARS, rm.posterior_predictive_pvalues(tree, r, rng=0))
    seconds = time.perf_counter() - t0
    grads = int(tree["sample_stats"]["n_steps"].sum())
    if "warmup_sample_stats" in tree.children:
        grads += int(tree["warmup_sample_stats"]["n_steps"].sum())
    return seconds, verdict.passed, grads, "; ".join(verdict.reasons)


def run(repeat: int = 1) -> list[Result]:
    results = []
    for n, t in GRID:
        ours, scan = gradient_us(n, t), gradient_us(n, t, scan=True, number=10)
        results.append(Result(f"logp+grad {n} x {t}", ours, "same model, scan recursion", scan,
                              "report"))  # fmt: skip
    per_grad = {(n, t): r.subject_us for (n, t), r in zip(GRID, results, strict=True)}
    for n, t in SIZES:
        seconds, passed, grads, reasons = full_fit(n, t)
        print(f"returns fit {n} x {t}: {seconds:.0f} s, {grads} gradient evaluations "
              f"(~{grads * per_grad[(n, t)] / 1e6:.0f} s of gradients on one core), gate "
              f"{'passed' if passed else 'FAILED: ' + reasons}")  # fmt: skip
        if (n, t) == (20, 2520):
            results.append(Result(
                f"returns 20x2520 (gate {'passed' if passed else 'FAILED'})",
                seconds * 1e6 if passed else float("inf"),
                "10 minutes", 600e6, "< 600 s", max_us=600e6,
            ))  # fmt: skip
    return results
