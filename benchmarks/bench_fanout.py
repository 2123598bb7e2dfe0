"""Issue 17, beyond one machine: the two-stage returns fit (:mod:`bayes_mem.offline.fanout`) on
a local Dask cluster of 1 and of 2 single-threaded worker processes.

What is timed, at the nightly settings (4 chains x (1,000 tuning + 1,000 draws), target
acceptance 0.9) on simulated symbols (``bench_returns.simulated_returns``):

- stage 1, the pooled fit of the representative subset (in this process, compile included);
- stage 2, every other symbol as one task, wall time from submission to the last result, on 1
  worker and on 2 (each worker has compiled the per-symbol model before the clock starts; the
  compile, once per worker process, is timed on its own): the speed-up (goal >= 1.7x) and the
  time per symbol (1 worker: wall time / symbols);
- the same draws on 1 and 2 workers (checked);
- from these, the workers a 2,000-symbol book needs to finish in 30 minutes: ``ceil(stage-2
  symbols x seconds per symbol / (1,800 s - stage 1 - compile))``, assuming workers as fast as
  these cores and the speed-up per worker measured here.

``python -m benchmarks.bench_fanout [--symbols 200] [--days 2520] [--subset 20]`` (about 35
minutes at the defaults on 2 free cores; ``--only fanout`` under ``python -m benchmarks``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from benchmarks._timing import Result
from benchmarks.bench_returns import simulated_returns

#: the book docs/benchmarks.md sizes a cluster for, and its deadline
BOOK, DEADLINE_S = 2000, 1800.0


def measure(n_symbols: int = 200, n_days: int = 2520, subset: int = 20, seed: int = 1) -> dict:
    """Stage-1 seconds, per-worker compile seconds, stage-2 wall seconds on 1 and 2 workers,
    and whether both gave the same draws."""
    from bayes_mem.offline import fanout
    from bayes_mem.offline import returns_model as rm
    from bayes_mem.offline.recalibrate import RecalibrationConfig

    cfg = RecalibrationConfig()
    settings = dict(draws=cfg.returns_mcmc_draws, tune=cfg.returns_mcmc_tune, chains=cfg.chains,
                    target_accept=cfg.returns_target_accept)  # fmt: skip
    r = simulated_returns(n_symbols, n_days, seed=seed)
    symbols = [f"S{i:04d}" for i in range(n_symbols)]
    cols = [r[:, j] for j in range(n_symbols)]
    inside = fanout.representative_subset(cols, subset)
    t0 = time.perf_counter()
    stage1 = rm.PooledReturnsFitter().fit([cols[i] for i in inside], [symbols[i] for i in inside],
                                   seed=seed, progress=False, **settings)  # fmt: skip
    stage1_s = time.perf_counter() - t0
    hyper = fanout.hyper_draws(stage1)
    tasks = []
    for i in range(n_symbols):
        if i in inside:
            continue
        pct = cols[i] * rm.SCALE
        seed_i = fanout.task_seed(seed, symbols[i])
        tasks.append(fanout.SymbolTask(symbols[i], pct, float(pct.var()), float(pct.var()),
                                       hyper, seed=seed_i, **settings))  # fmt: skip
    warm = fanout.SymbolTask("warm-up", tasks[0].returns_pct, tasks[0].var0, tasks[0].vref,
                             hyper, 1, 1, 1, 0.9, 0)  # fmt: skip
    out = {"symbols": n_symbols, "days": n_days, "subset": len(inside), "tasks": len(tasks),
           "stage1_s": stage1_s, "cpu_count": os.cpu_count(),
           "load_before_stage2": os.getloadavg()}  # fmt: skip
    draws = {}
    for workers in (1, 2):
        with fanout.dask_client(n_workers=workers) as client:
            t0 = time.perf_counter()
            every = list(client.scheduler_info()["workers"])  # each compiles once, in parallel
            client.gather([client.submit(fanout.fit_symbol, warm, workers=[w], pure=False,
                                         allow_other_workers=False) for w in every])  # fmt: skip
            out[f"compile_s_{workers}"] = time.perf_counter() - t0
            model = fanout.FanoutReturnsFitter(client, subset=subset)
            t0 = time.perf_counter()
            res = model.run_tasks(tasks)
            out[f"stage2_s_{workers}"] = time.perf_counter() - t0
            draws[workers] = np.stack([res[t.symbol]["persistence"] for t in tasks])
            out[f"task_cpu_s_{workers}"] = float(sum(float(x["cpu_seconds"]) for x in res.values()))
        print(
            f"stage 2 on {workers} worker(s): {out[f'stage2_s_{workers}']:.1f} s for "
            f"{len(tasks)} symbols (compile {out[f'compile_s_{workers}']:.1f} s)",
            flush=True,
        )
        out[f"load_after_{workers}"] = os.getloadavg()  # other processes share the machine
    out["same_draws"] = bool(np.array_equal(draws[1], draws[2]))
    return out


def cluster_for_book(
    m: dict, book: int = BOOK, deadline: float = DEADLINE_S, *, ideal: bool = False
) -> int:
    """Workers (cores like these) for ``book`` symbols within ``deadline`` seconds, from the
    measured time per symbol and the measured 2-worker efficiency (``ideal``: efficiency 1)."""
    per_symbol = m["stage2_s_1"] / m["tasks"]
    efficiency = 1.0 if ideal else min(1.0, m["stage2_s_1"] / (2 * m["stage2_s_2"]))
    left = deadline - m["stage1_s"] - m["compile_s_2"]
    if left <= 0:
        raise ValueError(f"stage 1 and compile alone take {deadline - left:.0f} s >= {deadline}")
    return math.ceil((book - m["subset"]) * per_symbol / (left * efficiency))


def report(m: dict) -> list[Result]:
    speedup = m["stage2_s_1"] / m["stage2_s_2"]
    per_symbol = m["stage2_s_1"] / m["tasks"]
    workers = cluster_for_book(m)
    cpu = m["task_cpu_s_1"] / m["tasks"]
    print(
        f"CPU seconds per stage-2 symbol (sampling, in the worker): {cpu:.2f} (1 worker), "
        f"{m['task_cpu_s_2'] / m['tasks']:.2f} (2 workers); with whole cores per worker a "
        f"{BOOK}-symbol book in {DEADLINE_S / 60:.0f} min needs "
        f"{cluster_for_book({**m, 'stage2_s_1': m['task_cpu_s_1']}, ideal=True)} workers"
    )
    print(f"two-stage fit {m['symbols']} symbols x {m['days']} days (subset {m['subset']}): "
          f"stage 1 {m['stage1_s']:.1f} s; stage 2 {m['stage2_s_1']:.1f} s on 1 worker, "
          f"{m['stage2_s_2']:.1f} s on 2 (speed-up {speedup:.2f}x); {per_symbol:.2f} s per "
          f"symbol; same draws on 1 and 2 workers: {m['same_draws']}; a {BOOK}-symbol book in "
          f"{DEADLINE_S / 60:.0f} min needs {workers} such workers")  # fmt: skip
    size = f"{m['symbols']}x{m['days']}"
    return [
        Result(f"fan-out stage 2 {size}, 2 workers", m["stage2_s_2"] * 1e6, "1 worker",
               m["stage2_s_1"] * 1e6, ">= 1.7x", min_speedup=1.7),
        Result(f"fan-out s per symbol {size}", per_symbol * 1e6, "report", per_symbol * 1e6,
               "report"),
        Result(f"fan-out same draws 1 vs 2 workers {size}", float(not m["same_draws"]),
               "0 = same", 1.0, "same", max_us=0.0),
    ]  # fmt: skip


def run(repeat: int = 1, n_symbols: int = 200, n_days: int = 2520, subset: int = 20):
    """The benchmark at one size (``repeat`` is ignored: one run takes long enough)."""
    return report(measure(n_symbols, n_days, subset))


if __name__ == "__main__":
    import json

    from benchmarks._timing import format_table

    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_fanout", description=__doc__)
    p.add_argument("--symbols", type=int, default=200)
    p.add_argument("--days", type=int, default=2520)
    p.add_argument("--subset", type=int, default=20)
    p.add_argument("--json", help="also write the measurements to this file")
    a = p.parse_args()
    m = measure(a.symbols, a.days, a.subset)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(m, fh, indent=1)
    print(json.dumps(m, indent=1))
    print(format_table(report(m)))
    sys.exit(0)
