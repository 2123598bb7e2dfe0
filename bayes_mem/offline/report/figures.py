"""The report's figures, each returned as a base64 PNG data URI (matplotlib, mathtext off: names
are drawn as text). Every figure made here is closed once saved."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.live.prior_set import PriorSet
from bayes_mem.offline.report.config import BAND, LEVEL, MAX_FOREST_ROWS
from bayes_mem.offline.report.stats import SymbolPath
from bayes_mem.plotting import pyplot as _pyplot

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
        for ax in axes.flat[len(tests) :]:
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
