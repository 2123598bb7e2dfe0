"""Mixing of the clustered win-rate fit as the book grows (issue 17): per chain, the means of the
hyperparameters, the tree depth and the gate's verdict, for a synthetic layout of
``benchmarks.bench_recalibrate.synthetic_layout`` (signals on runs of up to 59 days of 250, a
family's trades of one day a cluster, intra-cluster correlation 0-0.3). ``--centred`` /
``--non-centred`` force the family means' parameterisation (default: the model's own rule).

    python -m benchmarks.winrate_mixing 300000 100 [--centred | --non-centred]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    from bayes_mem.offline import winrate as w
    from bayes_mem.offline.diagnostics import gate
    from benchmarks.bench_recalibrate import synthetic_layout

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("signals", type=int)
    p.add_argument("families", type=int)
    p.add_argument("--centred", action="store_true")
    p.add_argument("--non-centred", action="store_true")
    args = p.parse_args(argv)
    lay, names, truth = synthetic_layout(args.signals, args.families)
    data = w.WinRateData.from_layout(lay, names)
    own = w.centred_means(data)
    if args.centred or args.non_centred:
        w.centred_means = lambda _: bool(args.centred)  # this process only
    t0 = time.perf_counter()
    tree = w.WinRateModel().fit(data, seed=1)
    print(
        f"{args.signals:,} signals, {args.families} families, {lay.signal.size:,} trades; "
        f"centred by the model's rule: {own}; fit {time.perf_counter() - t0:.0f} s"
    )
    post = tree["posterior"]
    for v in ("tau", "eta0", "mu_logk", "sigma_logk"):
        x = post[v].values
        print(f"  {v:<11} chain means {np.round(x.mean(axis=1), 4)}")
    ss = tree["sample_stats"]
    print(
        f"  tree depth per chain {ss['depth'].values.mean(axis=1)}, divergences "
        f"{ss['diverging'].values.sum(axis=1)}"
    )
    verdict = gate(tree, w.gated_vars(tree), None, w.prior_sd_ratios(tree))
    print(f"  gate {'passed' if verdict.passed else 'FAILED'}: {list(verdict.reasons)[:4]}")
    sd = np.std(np.log(truth[0] / (1 - truth[0])))
    print(f"  truth: sd of family logit means {sd:.4f}, mean rho {truth[2].mean():.3f}")


if __name__ == "__main__":
    main()
