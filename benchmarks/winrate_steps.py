"""The win-rate fit of issue 17 step by step, CPU and wall seconds of each: tables
(``WinRateData.from_layout``), compile, fit (4 chains x (2,000 + 2,000) unless told), posterior
predictive check and gate, on ``benchmarks.bench_recalibrate.synthetic_layout``; then each
chain's hyperparameter means, the tree depth and the gate's verdict. CPU seconds count every
thread of the process (the fit's chains run in parallel).

    python -m benchmarks.winrate_steps 1000000 100 [ta=0.9] [draws=2000] [tune=2000] [save=PATH]

The target acceptance defaults to the nightly job's for these data
(:func:`bayes_mem.offline.recalibrate.winrate_target_accept`).
"""

from __future__ import annotations

import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from bayes_mem.offline import winrate as w
    from bayes_mem.offline.diagnostics import gate
    from bayes_mem.offline.recalibrate import RecalibrationConfig, winrate_target_accept
    from benchmarks.bench_recalibrate import synthetic_layout

    args = sys.argv[1:] if argv is None else argv
    n, f = int(args[0]), int(args[1])
    kw = dict(a.split("=", 1) for a in args[2:])
    draws, tune = int(kw.get("draws", 2000)), int(kw.get("tune", 2000))
    lay, names, _ = synthetic_layout(n, f)

    def clock() -> tuple[float, float]:
        return time.process_time(), time.perf_counter()

    marks = [clock()]
    data = w.WinRateData.from_layout(lay, names)
    marks.append(clock())
    ta = float(kw["ta"]) if "ta" in kw else winrate_target_accept(data, RecalibrationConfig())
    model = w.WinRateModel()
    model.compiled(data)
    marks.append(clock())
    tree = model.fit(data, seed=1, target_accept=ta, draws=draws, tune=tune)
    marks.append(clock())
    ppc = w.posterior_predictive_pvalues(data, tree, rng=0)
    marks.append(clock())
    verdict = gate(tree, w.gated_vars(tree), ppc, w.prior_sd_ratios(tree))
    marks.append(clock())
    print(f"{n:,} signals x {f} families, {lay.signal.size:,} trades; target acceptance {ta}, "
          f"{draws} draws + {tune} tuning steps per chain; centred means "
          f"{w.centred_means(data)}, concentrations {w.centred_concentrations(data)}")  # fmt: skip
    for i, step in enumerate(["tables", "compile", "fit", "PPC", "gate"]):
        cpu, wall = (marks[i + 1][j] - marks[i][j] for j in (0, 1))
        print(f"  {step:8s} cpu {cpu:7.1f} s  wall {wall:7.1f} s")
    print(f"  total    cpu {marks[-1][0] - marks[0][0]:7.1f} s  wall "
          f"{marks[-1][1] - marks[0][1]:7.1f} s")  # fmt: skip
    post, stats = tree["posterior"], tree["sample_stats"]
    for v in ("tau", "eta0", "mu_logk", "sigma_logk"):
        print(f"  {v:<11} chain means {np.round(post[v].values.mean(axis=1), 4)}")
    print(f"  tree depth per chain {stats['depth'].values.mean(axis=1)}, divergences "
          f"{stats['diverging'].values.sum(axis=1)}")  # fmt: skip
    s = verdict.summary
    print(f"  gate {'passed' if verdict.passed else 'FAILED'} {list(verdict.reasons)[:4]}; max "
          f"R-hat {s['max_rhat']:.4f}, min bulk ESS {s['min_ess_bulk']:.0f}, min tail ESS "
          f"{s['min_ess_tail']:.0f}")  # fmt: skip
    with open("/proc/loadavg") as fh:
        print(f"  load average {fh.read().split()[:3]}", flush=True)
    if "save" in kw:
        tree.to_netcdf(kw["save"])


if __name__ == "__main__":
    main()
