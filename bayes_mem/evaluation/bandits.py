"""The evaluation suite's ``bandits`` section: regret of the live decision layer
(:class:`~bayes_mem.live.Decider`) on simulated bandits, two experiments, one module each:

- :mod:`bayes_mem.evaluation.bandit_regret`: Chapelle & Li (2011) Bernoulli arms,
  independent and pooled Thompson sampling against the Lai & Robbins bound;
- :mod:`bayes_mem.evaluation.cold_start`: new signals in families with a few opportunities
  each, family priors from the real nightly fit against flat priors and the oracle.

:func:`write_results` runs both at the :data:`FULL` (or :data:`QUICK`) settings and writes
their tables and figures.
"""

from __future__ import annotations

import pathlib
import time
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.evaluation.bandit_regret import (
    KAPPA_MAX,
    KAPPA_MIN,
    POLICIES,
    SETTINGS,
    _plot_regret,
    chapelle_li_runs,
)
from bayes_mem.evaluation.cold_start import (
    _plot_cold_start,
    _seed_of,
    cold_start_experiment,
    cold_start_settings,
    summarise_cold_start,
)
from bayes_mem.evaluation.tables import markdown_rows
from bayes_mem.live.validate import check_int

# ---------------------------------------------------------------------------- the suite's entry
FULL = {
    "horizon": 50_000,
    "seeds": 8,
    "refit_every": 1000,
    "signals_per_family": 80,
    "history_per_family": 100,
    "opportunities": (5, 10, 20),
    "fit_seeds": 6,
    "replicates": 16,
    "draws": 500,
    "tune": 1000,
}
QUICK = {
    "horizon": 2_000,
    "seeds": 3,
    "refit_every": 200,
    "signals_per_family": 40,
    "history_per_family": 60,
    "opportunities": (5, 20),
    "fit_seeds": 2,
    "replicates": 3,
    "draws": 300,
    "tune": 500,
}

_CL_COLUMNS = [
    "K", "eps", "policy", "horizon", "seeds", "regret_mean", "regret_lo", "regret_hi",
    "lai_robbins_bound", "ratio_to_bound", "linear_worst_case", "bound_below_linear_from",
    "slope_per_log_t",
    "lai_robbins_rate",
]  # fmt: skip


def _markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return str(v)

    body = [[fmt(v) for v in row] for row in df.itertuples(index=False)]
    return markdown_rows([str(c) for c in df.columns], body) + "\n"


def write_results(out_dir: pathlib.Path, *, seed: int = 0, quick: bool = False) -> dict:
    """Run both bandit evaluations and write ``bandits_chapelle_li.{csv,md}``,
    ``bandits_cold_start.{csv,md}`` (and the per-seed ``bandits_cold_start_runs.csv``),
    ``bandits_regret.png`` and ``bandits_cold_start.png`` into ``out_dir``; return the key numbers
    and a Markdown section. Regret is in win-rate units (expected wins lost).

    Examples
    --------
    The run itself is skipped here: the cold-start half fits the nightly PyMC model many times
    (minutes even at the :data:`QUICK` settings). The quick settings, and a bad flag refused
    before anything runs:

    >>> QUICK["horizon"], QUICK["seeds"], QUICK["opportunities"]
    (2000, 3, (5, 20))
    >>> write_results("unused", quick="yes")
    Traceback (most recent call last):
    ...
    TypeError: quick must be a bool, got 'yes'
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     summary = write_results(d, quick=True)
    ...     print(summary["files"][:2])
    ['bandits_chapelle_li.csv', 'bandits_chapelle_li.md']
    """
    seed = check_int(seed, "seed", minimum=0)
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be a bool, got {quick!r}")
    cfg = QUICK if quick else FULL
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    seeds = [_seed_of(seed, i) for i in range(cfg["seeds"])]
    runs = [
        chapelle_li_runs(k, eps, cfg["horizon"], policy=pol, seeds=seeds,
                         refit_every=cfg["refit_every"])
        for k, eps in SETTINGS
        for pol in POLICIES
    ]  # fmt: skip
    cl = pd.DataFrame([r.summary() for r in runs])[_CL_COLUMNS]
    cl.to_csv(out / "bandits_chapelle_li.csv", index=False, float_format="%.6g")
    (out / "bandits_chapelle_li.md").write_text(_markdown(cl))
    _plot_regret(runs, out / "bandits_regret.png")
    t_cl = time.perf_counter() - t0

    per_seed, fits = cold_start_experiment(**cold_start_settings(cfg), seed=seed)
    cs = summarise_cold_start(per_seed)
    per_seed.to_csv(out / "bandits_cold_start_runs.csv", index=False, float_format="%.6g")
    cs.to_csv(out / "bandits_cold_start.csv", index=False, float_format="%.6g")
    (out / "bandits_cold_start.md").write_text(_markdown(cs))
    _plot_cold_start(cs, out / "bandits_cold_start.png")
    t_all = time.perf_counter() - t0

    def cl_row(k: int, eps: float, pol: str) -> dict[str, Any]:
        return cl[(cl["K"] == k) & (cl["eps"] == eps) & (cl["policy"] == pol)].iloc[0].to_dict()

    nightly = cs[cs["prior"] == "nightly"]
    bullets = []
    for k, eps in SETTINGS:
        ind, poo = cl_row(k, eps, "independent"), cl_row(k, eps, "pooled")
        bullets.append(
            f"K={k}, eps={eps}, T={ind['horizon']:,}: independent TS "
            f"{ind['regret_mean']:.0f} [{ind['regret_lo']:.0f}, {ind['regret_hi']:.0f}], pooled "
            f"{poo['regret_mean']:.0f} [{poo['regret_lo']:.0f}, {poo['regret_hi']:.0f}]; "
            f"Lai-Robbins {ind['lai_robbins_bound']:.0f} (linear worst case "
            f"{ind['linear_worst_case']:.0f})."
        )
    bullets.append(
        "Cold start, nightly-fit priors vs flat: "
        + "; ".join(
            f"{r.opportunities} opportunities {100 * r.rel_reduction:.0f}% less regret "
            f"[{100 * r.rel_reduction_lo:.0f}%, {100 * r.rel_reduction_hi:.0f}%]"
            for r in nightly.itertuples()
        )
        + " (history disjoint from the evaluated signals)."
    )
    md = (
        "## Bandit regret\n\n"
        + _markdown(
            cl[
                [
                    "K",
                    "eps",
                    "policy",
                    "horizon",
                    "regret_mean",
                    "regret_lo",
                    "regret_hi",
                    "lai_robbins_bound",
                    "ratio_to_bound",
                    "slope_per_log_t",
                ]
            ]
        )
        + "\n"
        + _markdown(
            cs[
                [
                    "opportunities",
                    "prior",
                    "regret_mean",
                    "regret_lo",
                    "regret_hi",
                    "rel_reduction",
                    "rel_reduction_lo",
                    "rel_reduction_hi",
                ]
            ]
        )
        + "\n"
        + "\n".join(f"- {b}" for b in bullets)
        + "\n"
    )
    return {
        "quick": quick,
        "seed": seed,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "kappa_bounds": [KAPPA_MIN, KAPPA_MAX],
        "chapelle_li": cl.to_dict(orient="records"),
        "cold_start": cs.to_dict(orient="records"),
        "cold_start_fits": [
            {k: v for k, v in f.items() if k != "fit_seconds"}
            | {"fit_seconds": round(f["fit_seconds"], 2)}
            for f in fits
        ],
        "seconds": {"chapelle_li": round(t_cl, 1), "total": round(t_all, 1)},
        "markdown": md,
        "files": sorted(p.name for p in out.iterdir() if p.name.startswith("bandits_")),
    }
