"""The analyst report of one prior-set version: one self-contained HTML page.

:func:`build_report` is a function of (version folder, store, previous prior-set folder) to an
HTML string; :func:`write_report` writes it atomically, owner-only. The page holds:

- run summary: version, data window, code version, timings, the gate's verdict and reasons, and
  what changed since the previously active prior set (family mean win rates, the largest moves of
  per-signal posterior mean win rates and of per-symbol CVaR);
- diagnostics of each fit: R-hat, bulk / tail ESS and MCSE of every gated quantity, divergences,
  E-BFMI per chain, tree-depth saturation; ArviZ rank plots of the hyperparameters;
- win rates: per family a forest plot of per-signal posterior intervals beside the raw win rates
  (the shrinkage), and a posterior predictive check of the win counts;
- risk: posterior one-day CVaR (expected shortfall) per symbol with its credible band,
  conditional volatility over the fitted window, VaR exceedances with Kupiec / Christoffersen
  tests, PIT calibration of the return model, the correlation of the normal scores with the
  concentration and breakdown scores;
- the decision layer's signal-quality metrics, in a table sortable by any column.

Per-signal win rates are integrated out of the fit; given a family draw (m, kappa) a signal with
w wins of n trades has ``p | draw ~ Beta(m kappa + w, (1 - m) kappa + n - w)``, so its posterior
is the equal-weight mixture of these Betas over the prior set's published family draws: its
mean is exact, its interval is the mixture's quantiles (bisection on the mixture CDF).

Units: win rates are probabilities; returns, VaR and CVaR are daily, VaR/CVaR as loss fractions
of position value at ``LEVEL`` (97.5%); volatility is the daily sd of the log return.

Everything that came from data (signal, family and symbol names, reasons) is HTML-escaped;
plots are PNG data URIs (matplotlib Agg, mathtext off), the only script is the table sort.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import io
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.live.files import make_private_dirs
from bayes_mem.live.prior_set import (
    PRIOR_SETS,
    PriorSet,
    list_versions,
    verify_folder,
    version_dir,
)
from bayes_mem.offline.run_files import COUNTS_FILE, RUN_FILE
from bayes_mem.plotting import pyplot as _pyplot

log = logging.getLogger("bayes_mem.report")

REPORTS = "reports"  # models/reports/v000042.html
LEVEL = 0.975  # VaR / CVaR confidence level
BAND = 0.9  # credible interval probability
TOP_MOVES = 10  # rows of the "largest moves" tables
CORR_DAYS = 120  # days of normal scores for the correlation heatmap
BREAKDOWN_RECENT = 20  # recent days tested against the CORR_DAYS before them
WINRATE_HYPER = ["eta0", "tau", "mu_logk", "sigma_logk"]
RETURNS_HYPER = ["pi0", "s_pi", "n0", "s_nu", "l0", "s_lam"]
MAX_FOREST_ROWS = 150  # signals per family plot (the ones with most trades)


# ---------------------------------------------------------------------------------------- data
@dataclass
class VersionData:
    """What one version folder holds (``run`` and ``counts`` are absent for versions written
    before the job recorded them)."""

    path: Path
    prior_set: PriorSet
    run: dict[str, Any]
    counts: pd.DataFrame | None
    winrate_tree: Any
    returns_tree: Any


def load_version(path: str | Path) -> VersionData:
    """Read a version folder: prior set (verified), run record, counts and the fits, each
    checked against the set's manifest first (versions published before manifests: unchecked)."""
    import xarray as xr

    path = Path(path)
    names = [RUN_FILE, COUNTS_FILE, "winrate_fit.nc", "returns_fit.nc"]
    prior_set, _ = verify_folder(path, [n for n in names if (path / n).exists()])
    run: dict[str, Any] = {}
    if (path / RUN_FILE).exists():
        run = json.loads((path / RUN_FILE).read_text())
    counts = None
    if (path / COUNTS_FILE).exists():
        counts = pd.read_csv(
            path / COUNTS_FILE, dtype={"signal": str, "family": str}, keep_default_na=False
        )
    trees = []
    for name in ("winrate_fit.nc", "returns_fit.nc"):
        file = path / name
        trees.append(xr.open_datatree(file, engine="h5netcdf").load() if file.exists() else None)
    return VersionData(path, prior_set, run, counts, *trees)


# ---------------------------------------------------------------------------------- statistics
def signal_posteriors(
    counts: pd.DataFrame, prior_set: PriorSet, prob: float = BAND
) -> pd.DataFrame:
    """Per signal (columns signal, family, wins, trades): raw win rate (NaN without trades), the
    posterior mean and equal-tailed ``prob`` interval of its win rate under the prior set's
    family draws (conjugate Beta per draw, mixed over draws). Signals of families the prior set
    does not know are left out."""
    known = counts["family"].isin(list(prior_set.families))
    c = counts.loc[known].reset_index(drop=True)
    out = c[["signal", "family", "wins", "trades"]].copy()
    out["raw"] = np.where(c["trades"] > 0, c["wins"] / c["trades"].where(c["trades"] > 0), np.nan)
    if c.empty:
        return out.assign(post_mean=[], low=[], high=[])
    n_draws = min(f.mean.size for f in prior_set.families.values())
    means = np.empty((len(c), n_draws))
    kappas = np.empty((len(c), n_draws))
    for fam, post in prior_set.families.items():
        rows = (c["family"] == fam).to_numpy()
        means[rows] = post.mean[:n_draws]
        kappas[rows] = post.kappa[:n_draws]
    w = c["wins"].to_numpy(float)[:, None]
    n = c["trades"].to_numpy(float)[:, None]
    a = means * kappas + w
    b = (1.0 - means) * kappas + (n - w)
    out["post_mean"] = (a / (a + b)).mean(axis=1)
    lo, hi = mixture_beta_quantiles(a, b, ((1 - prob) / 2, (1 + prob) / 2))
    out["low"], out["high"] = lo, hi
    return out


def mixture_beta_quantiles(
    a: np.ndarray, b: np.ndarray, probs: tuple[float, ...], iterations: int = 24
) -> tuple[np.ndarray, ...]:
    """Quantiles of equal-weight mixtures of Betas, one mixture per row of ``a``/``b`` (rows,
    components), by bisection on the mixture CDF between the smallest and largest component
    quantile (which bracket it): error below (bracket width) * 2**-iterations."""
    from scipy import special

    out = []
    for p in probs:
        comp = special.betaincinv(a, b, p)
        lo, hi = comp.min(axis=1), comp.max(axis=1)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = special.betainc(a, b, mid[:, None]).mean(axis=1) < p
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        out.append(0.5 * (lo + hi))
    return tuple(out)


def family_changes(new: PriorSet, old: PriorSet) -> pd.DataFrame:
    """Posterior mean of each family's mean win rate in both sets (NaN where a set lacks the
    family) and the change, largest absolute change first."""
    names = sorted(set(new.families) | set(old.families))
    rows = []
    for f in names:
        m_new = float(new.families[f].mean.mean()) if f in new.families else np.nan
        m_old = float(old.families[f].mean.mean()) if f in old.families else np.nan
        rows.append({"family": f, "previous": m_old, "new": m_new, "change": m_new - m_old})
    return _by_abs_change(pd.DataFrame(rows, columns=["family", "previous", "new", "change"]))


def winrate_changes(new: pd.DataFrame, old: pd.DataFrame, top: int = TOP_MOVES) -> pd.DataFrame:
    """The ``top`` largest moves of per-signal posterior mean win rates between two prior sets,
    given each one's :func:`signal_posteriors` (computed with the counts its own fit saw);
    signals in both only."""
    a = new.set_index("signal")
    b = old.set_index("signal")
    both = a.index.intersection(b.index)
    frame = pd.DataFrame({
        "signal": both,
        "family": a.loc[both, "family"].to_numpy(),
        "previous": b.loc[both, "post_mean"].to_numpy(),
        "new": a.loc[both, "post_mean"].to_numpy(),
        "trades": a.loc[both, "trades"].to_numpy(),
    })  # fmt: skip
    frame["change"] = frame["new"] - frame["previous"]
    return _by_abs_change(frame).head(top)


def cvar_by_symbol(prior_set: PriorSet, level: float = LEVEL, prob: float = BAND) -> pd.DataFrame:
    """Per symbol: posterior-predictive one-day VaR and CVaR (loss fractions of position value)
    for the day after ``data_through``, with the ``prob`` credible band of the CVaR across
    parameter draws."""
    from bayes_mem.live.return_model import ReturnModel

    cols = ["symbol", "var", "cvar", "cvar_low", "cvar_high", "volatility"]
    if not prior_set.symbols:
        return pd.DataFrame(columns=cols)
    model = ReturnModel(
        {s: p.draws for s, p in prior_set.symbols.items()},
        {s: p.sigma2 for s, p in prior_set.symbols.items()},
    )
    risk = model.risk(level)
    band = -np.expm1(-risk.es_band(prob))
    return pd.DataFrame({
        "symbol": list(risk.symbols), "var": risk.var_simple, "cvar": risk.es_simple,
        "cvar_low": band[:, 0], "cvar_high": band[:, 1], "volatility": risk.volatility,
    })[cols]  # fmt: skip


def cvar_changes(new: PriorSet, old: PriorSet, top: int = TOP_MOVES) -> pd.DataFrame:
    """The ``top`` largest moves of per-symbol CVaR between two prior sets (symbols in both)."""
    a = cvar_by_symbol(new).set_index("symbol")["cvar"]
    b = cvar_by_symbol(old).set_index("symbol")["cvar"]
    both = a.index.intersection(b.index)
    frame = pd.DataFrame(
        {"symbol": both, "previous": b[both].to_numpy(), "new": a[both].to_numpy()}
    )
    frame["change"] = frame["new"] - frame["previous"]
    return _by_abs_change(frame).head(top)


def _by_abs_change(frame: pd.DataFrame) -> pd.DataFrame:
    size = np.nan_to_num(frame["change"].abs().to_numpy(float), nan=-1.0)
    order = np.argsort(-size, kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def fit_diagnostics(tree: Any, var_names: list[str]) -> pd.DataFrame:
    """Per element of ``var_names``: R-hat (rank-normalised), bulk and tail ESS, MCSE of the
    mean (ArviZ's ``summary(kind="diagnostics")``, unrounded; ``quantity`` as ``name[coord]``)."""
    import arviz as az

    names = [v for v in var_names if v in tree["posterior"]]
    if not names:
        return pd.DataFrame(columns=["quantity", "r_hat", "ess_bulk", "ess_tail", "mcse_mean"])
    table = az.summary(tree, var_names=names, kind="diagnostics", round_to="none")
    out = table.loc[:, ["r_hat", "ess_bulk", "ess_tail", "mcse_mean"]].astype(float)
    return out.rename_axis("quantity").reset_index()


def sampler_stats(tree: Any) -> dict[str, Any]:
    """Divergences, E-BFMI per chain and tree-depth saturation of a fit. A fit gathered from
    several sampler runs (the fan-out's ``fit`` dimension, :mod:`bayes_mem.offline.fanout`) has
    each chain's smallest E-BFMI over its runs."""
    import arviz as az

    from bayes_mem.offline.diagnostics import _DEPTH_FLAGS

    stats = tree["sample_stats"]
    bfmi = None
    if "energy" in stats:
        bfmi = az.bfmi(stats["energy"]).transpose("chain", ...).values
        bfmi = bfmi.reshape(bfmi.shape[0], -1).min(axis=1).tolist()
    out: dict[str, Any] = {
        "chains": int(tree["posterior"].sizes["chain"]),
        "draws": int(tree["posterior"].sizes["draw"]),
        "divergences": int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else None,
        "ebfmi": bfmi,
    }
    flag = next((f for f in _DEPTH_FLAGS if f in stats), None)
    out["tree_depth_saturated"] = None if flag is None else int(np.asarray(stats[flag]).sum())
    return out


@dataclass
class SymbolPath:
    """One symbol over the fitted window, under the prior set's posterior draws."""

    dates: np.ndarray
    returns: np.ndarray  # daily log returns
    vol_median: np.ndarray  # conditional sd of the day's return, median over draws
    vol_low: np.ndarray
    vol_high: np.ndarray
    pit: np.ndarray  # predictive CDF at the day's return (uniform under the model)
    var: np.ndarray  # one-day VaR of the log return at LEVEL (positive loss)


def symbol_paths(
    prior_set: PriorSet, panel: pd.DataFrame, window: dict[str, Any] | None, days: int = 1000
) -> dict[str, SymbolPath]:
    """Per symbol of the prior set found in ``panel`` (dates x symbols daily log returns): the
    fitted window's conditional volatility, PIT values and in-sample VaR, the variance recursion
    started at the window's sample variance (as the job does). ``window`` is the run record's
    ``returns_window`` (from/through dates); without it the last ``days`` through
    ``data_through``."""
    from bayes_mem.live.gjr_garch import variance_path
    from bayes_mem.live.pit import mixture_cdf

    out: dict[str, SymbolPath] = {}
    if panel.empty:
        return out
    index = pd.to_datetime(pd.Index(panel.index))
    if window and window.get("from") and window.get("through"):
        keep = (index >= pd.Timestamp(window["from"])) & (index <= pd.Timestamp(window["through"]))
    else:
        end = pd.Timestamp(prior_set.data_through) if prior_set.data_through else index.max()
        keep = index <= end
        keep &= np.cumsum(keep[::-1])[::-1] <= days
    sub = panel.loc[keep]
    for symbol, post in sorted(prior_set.symbols.items()):
        if symbol not in sub.columns:
            continue
        col = sub[symbol].dropna()
        r = col.to_numpy(float)
        if r.size < 3 or r.var() <= 0:
            continue
        d = post.draws
        sig2 = variance_path(r, d, float(r.var()))[:, :-1]
        sd = np.sqrt(sig2)
        vq = np.quantile(sd, [0.5, (1 - BAND) / 2, (1 + BAND) / 2], axis=0)
        pit = mixture_cdf(r, d, sig2)
        out[symbol] = SymbolPath(
            pd.to_datetime(col.index).to_numpy(), r, vq[0], vq[1], vq[2], pit,
            -_mixture_quantile(1 - LEVEL, d, sig2),
        )  # fmt: skip
    return out


def _mixture_quantile(alpha: float, draws: Any, sig2: np.ndarray, iterations: int = 16):
    """Per day, the ``alpha`` quantile of the predictive mixture: bisection between the
    smallest and largest component quantile (which bracket it; 16 halvings leave an error
    below 1/65,536 of that spread: for the plotted VaR line; exceedances come from the PIT)."""
    from bayes_mem.live.pit import mixture_cdf

    comp = (
        draws.mu[:, None]
        + np.sqrt(sig2) * draws.innovations().ppf(np.full(draws.size, alpha))[:, None]
    )
    lo, hi = comp.min(axis=0), comp.max(axis=0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = mixture_cdf(mid, draws, sig2) < alpha
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def signal_quality(
    counts: pd.DataFrame, prior_set: PriorSet, outcomes: pd.DataFrame | None
) -> pd.DataFrame:
    """The decision layer's :class:`~bayes_mem.live.decider.SignalMetrics` for every signal:
    a :class:`~bayes_mem.live.Decider` with the prior set's family point priors, replaying the
    stored ``outcomes`` (columns trade_id, signal, won, pnl in arrival order). Ordered by
    posterior mean win rate, best first."""
    from bayes_mem.live import Decider

    known = counts[counts["family"].isin(list(prior_set.families))]
    decider = Decider({f: p.point_prior() for f, p in prior_set.families.items()}, rng=0)
    for name, fam in zip(known["signal"], known["family"], strict=True):
        decider.register(str(name), str(fam))
    names = set(decider.signals)
    if outcomes is not None and len(outcomes):
        for tid, sig, won, pnl in zip(
            outcomes["trade_id"], outcomes["signal"], outcomes["won"], outcomes["pnl"],
            strict=True,
        ):  # fmt: skip
            if sig in names:
                decider.record(sig, bool(won), float(pnl), trade_id=str(tid))
    rows = [decider.metrics(s).to_dict() for s in decider.signals]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["posterior_mean", "signal"], ascending=[False, True]).reset_index(
        drop=True
    )


# ------------------------------------------------------------------------------------- figures
_RC = {"text.parse_math": False, "text.usetex": False, "font.size": 8, "figure.dpi": 96}


def _png(fig: Any) -> str:
    """A figure as a base64 PNG data URI (the figure is closed)."""
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rank_plot(tree: Any, var_names: list[str], gated: list[str] | None = None) -> str:
    """Rank plots of ``var_names`` (each element a panel): per chain the ECDF of its fractional
    ranks minus the uniform's, on the draws the gate's rank test uses (thinned to about
    independent draws), with ArviZ's simultaneous band at level 1 - ``RANK_ALPHA``, titled with
    the gate's own p-value (:func:`~bayes_mem.offline.diagnostics.rank_tests`, one computation)
    and its Holm adjustment over ``gated`` (default ``var_names``) as the gate reads it."""
    from arviz_stats.ecdf_utils import compute_ecdf, ecdf_pit

    from bayes_mem.offline.diagnostics import RANK_ALPHA, holm, rank_tests

    tests = rank_tests(tree, gated or var_names)
    adjusted = dict(zip([t.name for t in tests], holm(np.array([t.p for t in tests])),
                        strict=True)) if tests else {}  # fmt: skip
    shown = {t.name for t in rank_tests(tree, var_names)}
    tests = [t for t in tests if t.name in shown]
    plt = _pyplot()
    with plt.rc_context(_RC):
        cols = min(4, max(len(tests), 1))
        rows = -(-max(len(tests), 1) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), squeeze=False)
        for ax in axes.flat[len(tests):]:
            ax.set_visible(False)
        for ax, t in zip(axes.flat, tests, strict=False):
            n_chains, n = t.ranks.shape
            x, _, lo, hi = ecdf_pit(np.linspace(0, 1, n), 1 - RANK_ALPHA, n_simulations=1000,
                                    n_chains=n_chains, rng=np.random.default_rng(0))  # fmt: skip
            ax.fill_between(x, lo - x, hi - x, step="post", color="0.85", lw=0)
            for j in range(n_chains):
                ecdf = compute_ecdf(np.sort(t.ranks[j]), x)
                ax.plot(x, ecdf - x, lw=0.8, drawstyle="steps-post")
            a = adjusted[t.name]
            fails = ", FAILS" if a < RANK_ALPHA else ""
            ax.set_title(f"{t.name}: p = {t.p:.3g} (Holm {a:.2g}{fails})",
                         color="C3" if fails else "black")  # fmt: skip
            ax.set_xlabel(f"fractional rank (every {t.thin}th draw)")
            ax.axhline(0, color="0.5", lw=0.5)
        fig.tight_layout()
    return _png(fig)


def _forest_plot(frame: pd.DataFrame, family: str, family_mean: float) -> str:
    plt = _pyplot()
    f = frame.sort_values(["trades", "signal"], ascending=[False, True]).head(MAX_FOREST_ROWS)
    f = f.sort_values(["post_mean", "signal"]).reset_index(drop=True)
    y = np.arange(len(f))
    fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.16 * len(f)))
    ax.hlines(y, f["low"], f["high"], color="tab:blue", lw=1.5, label=f"{BAND:.0%} posterior")
    ax.plot(f["post_mean"], y, "o", color="tab:blue", ms=3, label="posterior mean")
    ax.plot(f["raw"], y, "x", color="tab:red", ms=4, label="raw win rate (wins / trades)")
    ax.axvline(family_mean, color="k", ls="--", lw=0.8, label="family mean")
    ax.set_yticks(y, [str(s) for s in f["signal"]], fontsize=6)
    ax.set_ylim(-1, len(f))
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate")
    ax.set_title(f"family {family}: {len(frame)} signals" + (
        f" (the {MAX_FOREST_ROWS} with most trades)" if len(frame) > MAX_FOREST_ROWS else ""
    ))  # fmt: skip
    ax.legend(loc="lower right", fontsize=6)
    return _png(fig)


def _ppc_plot(counts: pd.DataFrame, prior_set: PriorSet, rng: np.random.Generator) -> tuple:
    """Replicated win counts from the family draws (new p_i per draw): the dispersion
    statistic and the ECDF of per-signal win fractions, observed against replications."""
    from bayes_mem.offline.winrate import dispersion_statistic

    plt = _pyplot()
    c = counts[counts["family"].isin(list(prior_set.families)) & (counts["trades"] > 0)]
    fams = sorted(c["family"].unique())
    f = c["family"].map({x: i for i, x in enumerate(fams)}).to_numpy()
    wins = c["wins"].to_numpy(np.int64)
    trades = c["trades"].to_numpy(np.int64)
    n_rep = min(200, min(prior_set.families[x].mean.size for x in fams))
    m = np.column_stack([prior_set.families[x].mean[:n_rep] for x in fams])
    k = np.column_stack([prior_set.families[x].kappa[:n_rep] for x in fams])
    grid = np.linspace(0, 1, 101)
    obs_disp = dispersion_statistic(wins, trades, f)
    rep_disp = np.empty(n_rep)
    rep_ecdf = np.empty((n_rep, grid.size))
    for s in range(n_rep):
        p = rng.beta(m[s, f] * k[s, f], (1 - m[s, f]) * k[s, f])
        rep = rng.binomial(trades, p)
        rep_disp[s] = dispersion_statistic(rep, trades, f)
        rep_ecdf[s] = np.searchsorted(np.sort(rep / trades), grid, side="right") / trades.size
    obs_ecdf = np.searchsorted(np.sort(wins / trades), grid, side="right") / trades.size
    p_value = (1 + np.sum(rep_disp >= obs_disp)) / (n_rep + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    a1.hist(rep_disp, bins=30, color="0.7", label="replicated")
    a1.axvline(obs_disp, color="tab:red", label=f"observed (p = {p_value:.3f})")
    a1.set_xlabel("within-family dispersion of win counts")
    a1.legend(fontsize=7)
    lo, hi = np.quantile(rep_ecdf, [(1 - BAND) / 2, (1 + BAND) / 2], axis=0)
    a2.fill_between(grid, lo, hi, color="0.8", step="post", label=f"replicated {BAND:.0%} band")
    a2.step(grid, obs_ecdf, where="post", color="tab:red", label="observed")
    a2.set_xlabel("per-signal win fraction (wins / trades)")
    a2.set_ylabel("ECDF")
    a2.legend(fontsize=7)
    fig.suptitle(f"posterior predictive check of win counts ({n_rep} replications)")
    return _png(fig), float(p_value)


def _cvar_plot(frame: pd.DataFrame) -> str:
    plt = _pyplot()
    f = frame.sort_values("cvar").reset_index(drop=True)
    y = np.arange(len(f))
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.25 * len(f)))
    ax.hlines(y, f["cvar_low"] * 100, f["cvar_high"] * 100, color="tab:blue", lw=2,
              label=f"{BAND:.0%} credible band across draws")  # fmt: skip
    ax.plot(f["cvar"] * 100, y, "o", color="tab:blue", label="posterior predictive CVaR")
    ax.plot(f["var"] * 100, y, "|", color="tab:red", ms=10, label="VaR")
    ax.set_yticks(y, [str(s) for s in f["symbol"]])
    ax.set_xlabel(f"one-day loss at {LEVEL:.1%}, % of position value")
    ax.legend(fontsize=7, loc="lower right")
    return _png(fig)


def _grid(n: int, width: float = 10.0, height: float = 2.0):
    plt = _pyplot()
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _vol_plot(paths: dict[str, SymbolPath]) -> str:
    fig, axes = _grid(len(paths))
    for ax, (s, p) in zip(axes, paths.items(), strict=True):
        ax.plot(p.dates, np.abs(p.returns) * 100, color="0.8", lw=0.5, label="|return|")
        ax.fill_between(p.dates, p.vol_low * 100, p.vol_high * 100, color="tab:blue", alpha=0.3)
        ax.plot(p.dates, p.vol_median * 100, color="tab:blue", lw=0.8, label="volatility")
        ax.set_title(str(s))
        ax.set_ylabel("% per day")
        ax.tick_params(axis="x", labelsize=6)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"conditional volatility (median and {BAND:.0%} band over draws)")
    fig.tight_layout()
    return _png(fig)


def _var_plot(paths: dict[str, SymbolPath]) -> str:
    fig, axes = _grid(len(paths))
    for ax, (s, p) in zip(axes, paths.items(), strict=True):
        hit = p.pit < 1 - LEVEL
        ax.plot(p.dates, p.returns * 100, color="0.6", lw=0.5)
        ax.plot(p.dates, -p.var * 100, color="tab:red", lw=0.8, label=f"-VaR {LEVEL:.1%}")
        ax.plot(p.dates[hit], p.returns[hit] * 100, "o", color="tab:red", ms=2.5)
        ax.set_title(f"{s}: {int(hit.sum())} exceedances, {(1 - LEVEL) * hit.size:.1f} expected")
        ax.set_ylabel("return, %")
        ax.tick_params(axis="x", labelsize=6)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _png(fig)


def _pit_plot(paths: dict[str, SymbolPath]) -> str:
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
    pooled = np.concatenate([p.pit for p in paths.values()])
    bins = 20
    a1.hist(pooled, bins=bins, range=(0, 1), color="tab:blue", alpha=0.7)
    expected = pooled.size / bins
    sd = np.sqrt(expected * (1 - 1 / bins))
    a1.axhline(expected, color="k", lw=0.8)
    a1.axhspan(expected - 2 * sd, expected + 2 * sd, color="0.85", zorder=0)
    a1.set_xlabel("PIT (predictive CDF at the realised return), all symbols")
    a1.set_ylabel("days")
    grid = np.linspace(0, 1, 201)
    n_min = min(p.pit.size for p in paths.values())
    for s, p in paths.items():
        ecdf = np.searchsorted(np.sort(p.pit), grid, side="right") / p.pit.size
        a2.plot(grid, ecdf - grid, lw=0.8, label=str(s))
    band = 1.358 / np.sqrt(n_min)  # Kolmogorov-Smirnov 95%, per symbol
    a2.axhspan(-band, band, color="0.85", zorder=0, label="95% KS band")
    a2.set_xlabel("PIT")
    a2.set_ylabel("ECDF - uniform")
    if len(paths) <= 12:
        a2.legend(fontsize=6, ncol=2)
    fig.suptitle("calibration of the return model (in-sample, fitted window)")
    return _png(fig)


def _corr_plot(corr: np.ndarray, names: list[str], title: str) -> str:
    plt = _pyplot()
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.8 + 0.45 * n, 1.2 + 0.4 * n))
    im = ax.imshow(corr, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), names, rotation=90)
    ax.set_yticks(range(n), names)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                shade = "white" if abs(corr[i, j]) > 0.6 else "black"
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color=shade)  # fmt: skip
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title)
    return _png(fig)


# ---------------------------------------------------------------------------------------- HTML
def esc(value: Any) -> str:
    """HTML-escape anything (quotes included)."""
    return html.escape(str(value), quote=True)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if fmt == "%":
        return f"{float(value):.2%}"
    if fmt == "%%":  # percent with more digits
        return f"{float(value) * 100:.3f}%"
    if fmt == "+pp":
        return f"{float(value) * 100:+.2f} pp"
    return format(value, fmt)


def _table(
    frame: pd.DataFrame, columns: list[tuple[str, str, str]], *, sortable: bool = False,
    flags: dict[str, Any] | None = None, table_id: str | None = None,
) -> str:  # fmt: skip
    """``columns``: (key, header, format; "" for text). ``flags`` maps a key to a predicate on
    the value that marks the cell as failing."""
    flags = flags or {}
    head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in columns)
    body = []
    for row in frame.to_dict("records"):
        cells = []
        for key, _, fmt in columns:
            v = row.get(key)
            text = esc(v) if not fmt else esc(_num(v, fmt))
            if not fmt:
                sort = esc(v)
            elif v is None or not np.isfinite(float(v)):
                sort = "-Infinity"
            else:
                sort = repr(float(v))
            bad = key in flags and v is not None and flags[key](v)
            cls = ' class="bad"' if bad else (' class="num"' if fmt else "")
            cells.append(f'<td{cls} data-v="{sort}">{text}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    attrs = (' class="sortable"' if sortable else "") + (f' id="{table_id}"' if table_id else "")
    return (
        f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>" + "".join(body)
        + "</tbody></table>"
    )  # fmt: skip


def _img(key: str, uri: str, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img class="plot" data-plot="{esc(key)}" alt="{esc(alt)}" src="{uri}">'
        f"{cap}</figure>"
    )


def _kv(items: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (t) {
  t.querySelectorAll("thead th").forEach(function (th, i) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var asc = th.getAttribute("data-dir") !== "asc";
      t.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("data-dir"); });
      th.setAttribute("data-dir", asc ? "asc" : "desc");
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i].getAttribute("data-v"), y = b.cells[i].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? (nx - ny) : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1.5em auto; max-width: 1100px;
       color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { text-align: right; background: #fdd; color: #900; font-weight: bold; }
table.sortable th { cursor: pointer; background: #f3f3f3; }
th[data-dir="asc"]::after { content: " \\25B2"; } th[data-dir="desc"]::after { content: " \\25BC"; }
table.kv th { background: #f7f7f7; width: 14em; }
.passed { color: #070; font-weight: bold; } .rejected { color: #b00; font-weight: bold; }
.note { color: #666; font-style: italic; } .error { color: #b00; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; }
nav a { margin-right: 1em; }
"""


def _script_digest(script: str) -> str:
    """The CSP hash of an inline script: only the page's own script may run."""
    return base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()


def build_report(
    version_path: str | Path,
    store: Any = None,
    previous_path: str | Path | None = None,
    *,
    timings: dict[str, float] | None = None,
    seed: int = 0,
) -> str:
    """The HTML page of the version in ``version_path`` (a folder under
    ``models/prior_sets/``). ``store`` (a :class:`~bayes_mem.store.Store`, optional) supplies
    the returns and outcomes for the risk and signal-quality sections; ``previous_path`` is the
    previously active version's folder, compared against; ``timings`` (seconds per job step)
    extend those in the run record. Seeded: same inputs, same page."""
    vd = load_version(version_path)
    ps = vd.prior_set
    prev = load_version(previous_path) if previous_path is not None else None
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    counts = vd.counts
    if counts is None and store is not None:
        counts = store.signal_counts()
        notes.append("this version has no recorded counts: the store's current counts are used")
    parts = [_summary(vd, timings or {}, notes)]
    cache: list[pd.DataFrame] = []

    def posts() -> pd.DataFrame:  # this version's per-signal posteriors, computed once
        if not cache:
            cache.append(signal_posteriors(counts, ps))
        return cache[0]

    sections = [
        ("changes", "What changed since the previously active prior set",
         lambda: _changes(vd, counts, prev, posts)),
        ("diagnostics", "Diagnostics", lambda: _diagnostics(vd)),
        ("winrates", "Win rates", lambda: _winrates(ps, counts, posts, rng)),
        ("risk", "Risk", lambda: _risk(vd, store, seed)),
        ("quality", "Signal quality", lambda: _quality(vd, counts, store)),
    ]  # fmt: skip
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title, _ in sections)
    plt = _pyplot()
    import matplotlib

    for key, title, make in sections:
        open_before = set(plt.get_fignums())
        try:
            with matplotlib.rc_context(_RC):  # names are text, never mathtext ("$...$")
                body = make()
        except Exception as exc:  # a section that fails leaves the rest of the page intact
            log.exception("report section %s of v%d failed", key, ps.version)
            body = f'<p class="error">this section failed: {esc(repr(exc))}</p>'
        finally:  # no figure of ours outlives its section, whatever made it or failed
            for num in set(plt.get_fignums()) - open_before:
                plt.close(num)
        parts.append(f'<section id="{key}"><h2>{esc(title)}</h2>{body}</section>')
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_script_digest(_SCRIPT)}'"
    )
    title = f"bayes_mem prior set v{ps.version:06d}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><nav>{nav}</nav>" + "".join(parts)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )  # fmt: skip


def _summary(vd: VersionData, timings: dict[str, float], notes: list[str]) -> str:
    ps, run = vd.prior_set, vd.run
    diag = ps.diagnostics
    passed = bool(diag.get("passed"))
    nightly = diag.get("components") or {}
    kept = [c for c, info in nightly.items() if isinstance(info, dict)
            and info.get("status") == "carried"]  # fmt: skip
    verdict = (
        '<span class="passed">gate passed: published</span>' if passed and not kept
        else '<span class="passed">published</span>; <span class="rejected">kept back tonight: '
        f"{esc(', '.join(kept))} (carried from an older version)</span>" if passed
        else '<span class="rejected">gate rejected: not activated</span>'
    )  # fmt: skip
    window = run.get("returns_window") or {}
    outc = run.get("outcomes") or {}
    items = [
        ("version", f"v{ps.version:06d}"),
        ("created at", ps.created_at),
        ("code version", ps.code_version),
        ("config hash", ps.config_hash),
        ("returns through", ps.data_through or "–"),
        ("returns window (fitted)",
         f"{window['from']} to {window['through']}: {window['days']} days x "
         f"{len(window.get('symbols', []))} symbols" if window else "not recorded"),
        ("outcomes", f"{outc['trades']} settled trades of {outc['signals']} signals, settled "
         f"{outc['settled_from']} to {outc['settled_through']}" if outc else "not recorded"),
        ("families / symbols", f"{len(ps.families)} / {len(ps.symbols)}"),
        ("previously active", f"v{run['previous_active']:06d}"
         if run.get("previous_active") else "none"),
    ]  # fmt: skip
    all_t = {**run.get("timings", {}), **timings}
    t_rows = pd.DataFrame({"step": list(all_t), "seconds": [float(v) for v in all_t.values()]})
    reasons = diag.get("reasons") or []
    reason_html = (
        "<ul>" + "".join(f"<li>{esc(r)}</li>" for r in reasons) + "</ul>" if reasons
        else "<p>every check passed</p>"
    )  # fmt: skip
    summary = diag.get("summary") or {}
    s_rows = pd.DataFrame({"check": list(summary), "value": [summary[k] for k in summary]})
    s_rows["value"] = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in s_rows["value"]]
    note = "".join(f'<p class="note">{esc(n)}</p>' for n in notes)
    return (
        f'<section id="summary"><h2>Run summary</h2><p>{verdict}</p>{_kv(items)}'
        + _components_table(ps)
        + f"<h3>Gate verdict</h3>{reason_html}"
        + _table(s_rows, [("check", "check", ""), ("value", "value", "")])
        + "<h3>Timings</h3>"
        + (_table(t_rows, [("step", "step", ""), ("seconds", "seconds", ".2f")])
           if len(t_rows) else '<p class="note">not recorded</p>')
        + f"{note}</section>"
    )  # fmt: skip


def _components_table(ps: Any) -> str:
    """Per component (win rates, returns, regime): the version it came from, its data date and
    age at this set's creation, and the night's own verdict of it (each is gated and versioned
    on its own: a component whose fit failed is carried from an older version)."""
    created = dt.datetime.fromisoformat(ps.created_at).date()
    nightly = (ps.diagnostics.get("components") or {}) if isinstance(ps.diagnostics, dict) else {}
    rows = []
    for name, src in (ps.components or {}).items():
        night = nightly.get(name) or {}
        reasons = "; ".join(night.get("reasons") or [])
        rows.append({
            "component": name,
            "source": "none" if src is None else (
                f"v{src.version:06d}" + ("" if src.version == ps.version else " (carried)")),
            "data through": "–" if src is None or src.data_through is None
            else src.data_through[:10],
            "age (days)": "–" if src is None or src.age_days(created) is None
            else str(src.age_days(created)),
            "tonight": str(night.get("kind", "–")) + (f": {reasons}" if reasons else ""),
        })  # fmt: skip
    if not rows:
        return ""
    cols = [(c, c, "") for c in ("component", "source", "data through", "age (days)", "tonight")]
    return "<h3>Components</h3>" + _table(pd.DataFrame(rows), cols)


def _changes(
    vd: VersionData, counts: pd.DataFrame | None, prev: VersionData | None, posts: Any
) -> str:
    if prev is None:
        return '<p class="note">no previously active prior set to compare with</p>'
    new, old = vd.prior_set, prev.prior_set
    out = [f"<p>compared with v{old.version:06d} (created {esc(old.created_at)})</p>"]
    fam = family_changes(new, old)
    out.append("<h3>Family mean win rates</h3>" + _table(fam, [
        ("family", "family", ""), ("previous", "previous", ".4f"), ("new", "new", ".4f"),
        ("change", "change", "+pp"),
    ]))  # fmt: skip
    if counts is not None:
        old_counts = prev.counts if prev.counts is not None else counts
        if prev.counts is None:
            out.append('<p class="note">the previous version has no recorded counts: both '
                       "sets are evaluated on this version's counts</p>")  # fmt: skip
        moves = winrate_changes(posts(), signal_posteriors(old_counts, old))
        out.append(f"<h3>Largest moves of per-signal win rates (top {TOP_MOVES})</h3>" + _table(
            moves, [("signal", "signal", ""), ("family", "family", ""), ("trades", "trades", "d"),
                    ("previous", "previous", ".4f"), ("new", "new", ".4f"),
                    ("change", "change", "+pp")],
        ))  # fmt: skip
    if new.symbols and old.symbols:
        cv = cvar_changes(new, old)
        out.append(f"<h3>Largest moves of per-symbol CVaR {LEVEL:.1%} (top {TOP_MOVES})</h3>"
                   + _table(cv, [("symbol", "symbol", ""), ("previous", "previous", "%%"),
                                 ("new", "new", "%%"), ("change", "change", "+pp")]))  # fmt: skip
    return "".join(out)


def _diagnostics(vd: VersionData) -> str:
    from bayes_mem.offline import returns_model as rm
    from bayes_mem.offline.diagnostics import RANK_ALPHA, THRESHOLDS
    from bayes_mem.offline.winrate import GATED_VARS

    flags = {
        "r_hat": lambda v: not v <= THRESHOLDS["rhat"],
        "ess_bulk": lambda v: not v >= THRESHOLDS["ess_bulk"],
        "ess_tail": lambda v: not v >= THRESHOLDS["ess_tail"],
    }
    cols = [("quantity", "quantity", ""), ("r_hat", "R-hat", ".4f"),
            ("ess_bulk", "bulk ESS", ".0f"), ("ess_tail", "tail ESS", ".0f"),
            ("mcse_mean", "MCSE (mean)", ".3g")]  # fmt: skip
    out = [
        f"<p>thresholds: R-hat &le; {THRESHOLDS['rhat']}, bulk and tail ESS &ge; "
        f"{THRESHOLDS['ess_bulk']:.0f}, no divergences, E-BFMI &ge; {THRESHOLDS['ebfmi']} "
        f"per chain, no tree-depth saturation, chains' ranks uniform (Holm-adjusted p &ge; "
        f"{RANK_ALPHA}); failing cells are red</p>"
    ]
    fits = [
        ("winrate", "Win-rate fit", vd.winrate_tree, GATED_VARS, WINRATE_HYPER),
        ("returns", "Returns fit", vd.returns_tree, rm.GATED_VARS, RETURNS_HYPER),
    ]
    for key, title, tree, gated, hyper in fits:
        if tree is None:
            out.append(f'<h3>{title}</h3><p class="note">no {key} fit in this version</p>')
            continue
        st = sampler_stats(tree)
        bfmi = ", ".join(f"{x:.3f}" for x in st["ebfmi"]) if st["ebfmi"] else "–"
        out.append(f"<h3>{title}</h3>" + _kv([
            ("chains x draws", f"{st['chains']} x {st['draws']}"),
            ("divergences", st["divergences"]), ("E-BFMI per chain", bfmi),
            ("tree-depth saturated", st["tree_depth_saturated"]),
            ("target acceptance", tree.attrs.get("target_accept", "–")),
        ]))  # fmt: skip
        out.append(_table(fit_diagnostics(tree, gated), cols, flags=flags))
        out.append(_img(f"rank-{key}", _rank_plot(tree, hyper, gated), f"rank plots, {title}",
                        f"{title}: rank plots of the hyperparameters, one line per chain (ECDF "
                        "of its fractional ranks minus uniform's, thinned to about independent "
                        "draws), the grey band ArviZ's simultaneous 99% envelope; each title "
                        "carries the gate's own rank test (ArviZ's multi-chain test) and its "
                        "Holm adjustment over the gated quantities"))  # fmt: skip
    return "".join(out)


def _winrates(
    ps: PriorSet, counts: pd.DataFrame | None, posts: Any, rng: np.random.Generator
) -> str:
    if counts is None:
        return '<p class="note">no per-signal counts (no store given)</p>'
    post = posts()
    out = [
        "<p>per signal: the posterior interval of its win rate (conjugate Beta given each "
        "published family draw, mixed over draws) beside its raw win rate; signals with few "
        "trades are pulled toward the family mean</p>"
    ]
    for i, (fam, fp) in enumerate(sorted(ps.families.items())):
        frame = post[post["family"] == fam]
        if frame.empty:
            continue
        out.append(_img(f"forest-{i}", _forest_plot(frame, fam, float(fp.mean.mean())),
                        f"win rates of family {fam}"))  # fmt: skip
    uri, p = _ppc_plot(counts, ps, rng)
    out.append("<h3>Posterior predictive check of win counts</h3>")
    out.append(
        _img(
            "ppc-wins",
            uri,
            "posterior predictive check of win counts",
            f"dispersion p-value {p:.3f}; the gate's p-values are in the run summary",
        )
    )
    return "".join(out)


def _risk(vd: VersionData, store: Any, seed: int) -> str:
    from bayes_mem.live.correlation import concentration, correlation_breakdown, shrunk_correlation
    from bayes_mem.live.coverage import coverage_tests
    from bayes_mem.live.pit import to_normal

    ps = vd.prior_set
    if not ps.symbols:
        return '<p class="note">this prior set has no symbols</p>'
    cv = cvar_by_symbol(ps)
    out = [f"<h3>Posterior CVaR {LEVEL:.1%}, day after {esc(ps.data_through)}</h3>"]
    out.append(_img("cvar", _cvar_plot(cv), "CVaR per symbol"))
    out.append(_table(cv, [
        ("symbol", "symbol", ""), ("var", "VaR", "%%"), ("cvar", "CVaR", "%%"),
        ("cvar_low", f"CVaR {BAND:.0%} low", "%%"), ("cvar_high", f"CVaR {BAND:.0%} high", "%%"),
        ("volatility", "volatility (sd)", "%%"),
    ]))  # fmt: skip
    if store is None:
        out.append('<p class="note">no store given: no volatility, exceedance, PIT or '
                   "correlation plots</p>")  # fmt: skip
        return "".join(out)
    paths = symbol_paths(ps, store.returns_panel(list(ps.symbols)), vd.run.get("returns_window"))
    if not paths:
        out.append('<p class="note">no stored returns for these symbols</p>')
        return "".join(out)
    out.append("<h3>Conditional volatility</h3>")
    out.append(_img("volatility", _vol_plot(paths), "conditional volatility over time"))
    rows = []
    for s, p in paths.items():
        t = coverage_tests(p.pit < 1 - LEVEL, LEVEL)
        rows.append({"symbol": s, "days": t.n, "exceedances": t.exceedances,
                     "expected": t.expected, "p_pof": t.p_pof, "p_ind": t.p_ind,
                     "p_cc": t.p_cc})  # fmt: skip
    out.append(f"<h3>VaR {LEVEL:.1%} exceedances (in-sample)</h3>")
    out.append(_img("var-exceedances", _var_plot(paths), "VaR exceedances"))
    out.append(_table(pd.DataFrame(rows), [
        ("symbol", "symbol", ""), ("days", "days", "d"), ("exceedances", "exceedances", "d"),
        ("expected", "expected", ".1f"), ("p_pof", "Kupiec p", ".3f"),
        ("p_ind", "Christoffersen independence p", ".3f"),
        ("p_cc", "conditional coverage p", ".3f"),
    ], flags={k: (lambda v: v < 0.05) for k in ("p_pof", "p_ind", "p_cc")}))  # fmt: skip
    out.append("<h3>PIT / calibration</h3>")
    out.append(_img("pit", _pit_plot(paths), "PIT calibration"))
    names = list(paths)
    if len(names) >= 2:
        frame = pd.DataFrame({s: pd.Series(to_normal(p.pit), index=p.dates)
                              for s, p in paths.items()}).dropna()  # fmt: skip
        z = frame.to_numpy()
        corr, shrink = shrunk_correlation(z[-CORR_DAYS:])
        conc = concentration(corr)
        title = f"concentration {conc.score:.2f}, effective bets {conc.effective_bets:.1f}"
        text = (f"shrunk correlation of the normal scores over the last {min(CORR_DAYS, len(z))}"
                f" common days (shrinkage {shrink:.2f}); concentration score {conc.score:.3f}, "
                f"average correlation {conc.average_correlation:.3f}")  # fmt: skip
        if len(z) >= BREAKDOWN_RECENT + len(names) + 3:
            history = z[-BREAKDOWN_RECENT - CORR_DAYS : -BREAKDOWN_RECENT]
            b = correlation_breakdown(z[-BREAKDOWN_RECENT:], history, rng=seed)
            title += f", breakdown {b.score:.2f}"
            text += (
                f"; breakdown score {b.score:.3f} (p = {b.p_value:.3f}: the last "
                f"{BREAKDOWN_RECENT} days against the {len(history)} before)"
            )
        out.append("<h3>Correlation</h3>")
        out.append(_img("correlation", _corr_plot(corr, names, title), "correlation heatmap",
                        text))  # fmt: skip
    return "".join(out)


def _quality(vd: VersionData, counts: pd.DataFrame | None, store: Any) -> str:
    if counts is None:
        return '<p class="note">no per-signal counts (no store given)</p>'
    outcomes = None
    if store is not None:
        outcomes = store.outcomes()
        through = (vd.run.get("outcomes") or {}).get("through_seq")
        if through is not None:
            outcomes = outcomes[outcomes["seq"] <= through]
    q = signal_quality(counts, vd.prior_set, outcomes)
    if q.empty:
        return '<p class="note">no signals</p>'
    prob = float(q["credible_prob"].iloc[0])
    head = (
        "<p>the decision layer's metrics: a decider with this prior set's family point priors "
        "and the stored outcomes the fit saw; ordered by posterior mean, click a header to "
        "sort</p>"
    )
    return head + _table(q, [
        ("signal", "signal", ""), ("family", "family", ""), ("trades", "trades", "d"),
        ("wins", "wins", "d"), ("posterior_mean", "posterior mean", ".4f"),
        ("credible_low", f"{prob:.0%} low", ".4f"), ("credible_high", f"{prob:.0%} high", ".4f"),
        ("break_even", "break-even", ".4f"), ("p_above_break_even", "P(> break-even)", ".3f"),
        ("mean_pnl", "mean PnL", ".2f"), ("total_pnl", "total PnL", ".2f"),
        ("sharpe", "Sharpe (per trade)", ".3f"), ("expected_edge", "expected edge", ".3f"),
    ], sortable=True, table_id="signal-quality")  # fmt: skip


# -------------------------------------------------------------------------------------- writing
def report_path(models_dir: str | Path, version: int) -> Path:
    """Where a version's report lives: ``models/reports/v000042.html``."""
    return Path(models_dir) / REPORTS / f"v{version:06d}.html"


def write_report(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename), owner-only."""
    path = Path(path)
    make_private_dirs(path.parent)  # 0700 where created; existing directories left as they are
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def latest_version(models_dir: str | Path) -> int:
    """The highest version number under ``models/prior_sets`` (published or rejected)."""
    found = list_versions(models_dir)
    if not found:
        raise ValueError(f"no prior sets under {Path(models_dir) / PRIOR_SETS}")
    return found[-1]


def write_version_report(
    models_dir: str | Path,
    version: int,
    store: Any = None,
    *,
    previous: int | None = None,
    timings: dict[str, float] | None = None,
    seed: int = 0,
) -> Path:
    """Build and write the report of ``version`` to :func:`report_path`. ``previous`` defaults
    to the version the run record names as previously active, else none. Nothing is written
    if the version does not load."""
    folder = version_dir(models_dir, version)
    if not (folder / "prior_set.json").exists():
        raise ValueError(f"no prior set version {version} under {Path(models_dir) / PRIOR_SETS}")
    if previous is None:
        run_file = folder / RUN_FILE
        if run_file.exists():
            previous = json.loads(run_file.read_text()).get("previous_active")
    prev_dir = None
    if previous is not None and previous != version:
        prev_dir = version_dir(models_dir, previous)
        if not (prev_dir / "prior_set.json").exists():
            log.warning("previous version %s is gone; the report compares with none", previous)
            prev_dir = None
    text = build_report(folder, store, prev_dir, timings=timings, seed=seed)
    return write_report(text, report_path(models_dir, version))
