"""The report's statistics: per-signal posterior win rates (mixtures of conjugate Betas over the
prior set's family draws), what changed between two prior sets, posterior CVaR per symbol, fit
diagnostics, the fitted window's volatility / PIT / VaR paths and the decision layer's metrics.

Quantiles of mixtures are solved by the live path's solver
(:func:`bayes_mem.live.mixture_quantile.mixture_quantile`). Units: win rates are probabilities;
returns, VaR and CVaR are daily, VaR/CVaR as loss fractions of position value at ``LEVEL``;
volatility is the daily sd of the log return.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.live.prior_set import PriorSet
from bayes_mem.offline.report.config import BAND, LEVEL, TOP_MOVES


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


class _BetaComponents:
    """Beta(a, b) components for :func:`~bayes_mem.live.mixture_quantile.mixture_quantile`
    (location 0, scale 1: the standardised value is the win rate itself)."""

    def __init__(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a, self.b = a, b

    def cdf(self, z: np.ndarray) -> np.ndarray:
        from scipy import special

        return special.betainc(self.a, self.b, z)

    def pdf(self, z: np.ndarray) -> np.ndarray:
        from scipy import stats

        return stats.beta.pdf(z, self.a, self.b)


def mixture_beta_quantiles(
    a: np.ndarray, b: np.ndarray, probs: tuple[float, ...], tol: float = 1e-10
) -> tuple[np.ndarray, ...]:
    """Quantiles of equal-weight mixtures of Betas, one mixture per row of ``a``/``b`` (rows,
    components), by the live path's solver (safeguarded Newton on the mixture CDF, bracketed by
    the smallest and largest component quantile): ``|F(q) - p| <= tol * min(p, 1 - p)``."""
    from scipy import special

    from bayes_mem.live.mixture_quantile import mixture_quantile

    comps = _BetaComponents(a, b)
    out = []
    for p in probs:
        comp = special.betaincinv(a, b, p)
        out.append(mixture_quantile(p, 0.0, 1.0, comps, comp.min(axis=1), comp.max(axis=1), tol))
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


def _mixture_quantile(alpha: float, draws: Any, sig2: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Per day, the ``alpha`` quantile of the predictive mixture (the draws' skew-t components
    with the day's variances ``sig2``, (S, T)), by the live path's solver, bracketed by the
    smallest and largest component quantile: ``|F(q) - alpha| <= tol * alpha`` (daily log
    return units)."""
    from bayes_mem.live.mixture_quantile import mixture_quantile

    sd = np.sqrt(sig2).T  # (T, S): one mixture per day
    inn = draws.innovations()
    comp = draws.mu + sd * inn.ppf(np.full(draws.size, alpha))
    return mixture_quantile(alpha, draws.mu, sd, inn, comp.min(axis=1), comp.max(axis=1), tol)


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
