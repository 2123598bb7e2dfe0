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
    does not know are left out.

    Examples
    --------
    Two family draws ``(m, kappa)``; a signal with 30 wins of 50 trades is pulled from its raw 0.6
    towards the family mean 0.55; one without trades gets the family's predictive interval:

    >>> from bayes_mem.live import FamilyPosterior
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> counts = pd.DataFrame({"signal": ["s1", "s2", "x"], "family": ["momentum", "momentum",
    ...     "other"], "wins": [30, 0, 3], "trades": [50, 0, 4]})
    >>> print(signal_posteriors(counts, prior_set).round(3).to_string(index=False))
    signal   family  wins  trades  raw  post_mean   low  high
        s1 momentum    30      50  0.6      0.576 0.493 0.656
        s2 momentum     0       0  NaN      0.550 0.429 0.665
    """
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
    the smallest and largest component quantile): ``|F(q) - p| <= tol * min(p, 1 - p)``.

    Examples
    --------
    >>> from scipy import stats
    >>> a, b = np.array([[2.0, 2.0], [3.0, 5.0]]), np.array([[2.0, 2.0], [7.0, 5.0]])
    >>> low, high = mixture_beta_quantiles(a, b, (0.05, 0.95))
    >>> low.round(4).tolist(), high.round(4).tolist()
    ([0.1354, 0.128], [0.8646, 0.7024])
    >>> stats.beta.ppf([0.05, 0.95], 2, 2).round(4).tolist()  # the first row: one Beta(2, 2)
    [0.1354, 0.8646]
    """
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
    family) and the change, largest absolute change first.

    Examples
    --------
    >>> from bayes_mem.live import FamilyPosterior
    >>> new = PriorSet(2, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> old = PriorSet(1, "2026-03-01T22:00:00+00:00", "2026-03-01", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.50, 0.52], [40.0, 60.0]),
    ...               "carry": FamilyPosterior([0.6], [30.0])},
    ...     diagnostics={"passed": True})
    >>> print(family_changes(new, old).round(3).to_string(index=False))
      family  previous  new  change
    momentum      0.51 0.55    0.04
       carry      0.60  NaN     NaN
    """
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
    signals in both only.

    Examples
    --------
    >>> new = pd.DataFrame({"signal": ["a", "b", "c"], "family": ["f", "f", "g"],
    ...     "post_mean": [0.55, 0.60, 0.52], "trades": [10, 40, 5]})
    >>> old = pd.DataFrame({"signal": ["a", "b"], "family": ["f", "f"], "post_mean": [0.56, 0.53],
    ...     "trades": [8, 30]})
    >>> print(winrate_changes(new, old).round(3).to_string(index=False))
    signal family  previous  new  trades  change
         b      f      0.53 0.60      40    0.07
         a      f      0.56 0.55      10   -0.01
    """
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
    parameter draws.

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> from bayes_mem.live.prior_set import SymbolPosterior
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     symbols={"SPY": SymbolPosterior(draws, sigma2=draws.long_run_variance)},
    ...     diagnostics={"passed": True})
    >>> print(cvar_by_symbol(prior_set).round(4).to_string(index=False))
    symbol   var   cvar  cvar_low  cvar_high  volatility
       SPY 0.013 0.0175    0.0166     0.0182      0.0064
    """
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
    """The ``top`` largest moves of per-symbol CVaR between two prior sets (symbols in both).

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> from bayes_mem.live.prior_set import SymbolPosterior
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> def prior_set(version, sigma2):
    ...     return PriorSet(version, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...         symbols={"SPY": SymbolPosterior(draws, sigma2=sigma2)},
    ...         diagnostics={"passed": True})
    >>> old = prior_set(1, draws.long_run_variance)
    >>> new = prior_set(2, 2.0 * draws.long_run_variance)  # next-day variance doubled
    >>> print(cvar_changes(new, old).round(4).to_string(index=False))
    symbol  previous    new  change
       SPY    0.0175 0.0247  0.0072
    """
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
    mean (ArviZ's ``summary(kind="diagnostics")``, unrounded; ``quantity`` as ``name[coord]``).

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict({"posterior": {"mu": rng.standard_normal((4, 500))}})
    >>> diag = fit_diagnostics(tree, ["mu", "not_in_the_fit"])
    >>> diag["quantity"].tolist(), bool(diag["r_hat"].lt(1.01).all())
    (['mu'], True)
    >>> bool(diag["ess_bulk"].between(1500, 2500).all())  # 2000 independent draws
    True
    """
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
    each chain's smallest E-BFMI over its runs.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict({"posterior": {"mu": rng.standard_normal((2, 100))},
    ...     "sample_stats": {"diverging": np.zeros((2, 100), bool),
    ...                      "energy": rng.standard_normal((2, 100))}})
    >>> out = sampler_stats(tree)
    >>> out["chains"], out["draws"], out["divergences"], out["tree_depth_saturated"]
    (2, 100, 0, None)
    >>> [round(x, 2) for x in out["ebfmi"]]
    [1.98, 2.25]
    """
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
    """One symbol over the fitted window, under the prior set's posterior draws.

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> from bayes_mem.live.prior_set import SymbolPosterior
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> def prior_set(version, sigma2):
    ...     return PriorSet(version, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...         symbols={"SPY": SymbolPosterior(draws, sigma2=sigma2)},
    ...         diagnostics={"passed": True})
    >>> dates = pd.bdate_range("2025-01-01", periods=300)
    >>> panel = pd.DataFrame({"SPY": 0.0065 * np.random.default_rng(0).standard_t(6, 300)},
    ...                      index=dates)  # daily log returns
    >>> paths = symbol_paths(prior_set(1, draws.long_run_variance), panel, None, days=250)
    >>> spy = paths["SPY"]
    >>> bool(np.all((spy.pit > 0) & (spy.pit < 1))), bool(np.all(spy.vol_low <= spy.vol_high))
    (True, True)
    >>> round(float(np.median(spy.vol_median)), 4), round(float(np.mean(spy.var)), 4)
    (0.0068, 0.0144)
    """

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
    ``data_through``.

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws
    >>> from bayes_mem.live.prior_set import SymbolPosterior
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
    ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
    ... )
    >>> def prior_set(version, sigma2):
    ...     return PriorSet(version, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...         symbols={"SPY": SymbolPosterior(draws, sigma2=sigma2)},
    ...         diagnostics={"passed": True})
    >>> dates = pd.bdate_range("2025-01-01", periods=300)
    >>> panel = pd.DataFrame({"SPY": 0.0065 * np.random.default_rng(0).standard_t(6, 300)},
    ...                      index=dates)  # daily log returns
    >>> paths = symbol_paths(prior_set(1, draws.long_run_variance), panel, None, days=250)
    >>> spy = paths["SPY"]  # the last 250 days through data_through
    >>> spy.returns.size, str(spy.dates[0])[:10], str(spy.dates[-1])[:10]
    (250, '2025-03-12', '2026-02-24')
    >>> window = {"from": "2025-06-01", "through": "2025-09-30"}  # the run record's window
    >>> symbol_paths(prior_set(1, draws.long_run_variance), panel, window)["SPY"].returns.size
    87
    """
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
    posterior mean win rate, best first.

    Examples
    --------
    >>> from bayes_mem.live import FamilyPosterior
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> counts = pd.DataFrame({"signal": ["s1", "s2"], "family": ["momentum", "momentum"],
    ...     "wins": [2, 0], "trades": [3, 0]})
    >>> outcomes = pd.DataFrame({"trade_id": ["t1", "t2", "t3"], "signal": ["s1", "s1", "s1"],
    ...     "won": [True, True, False], "pnl": [0.01, 0.02, -0.01]})
    >>> q = signal_quality(counts, prior_set, outcomes)
    >>> print(q[["signal", "trades", "wins", "posterior_mean", "total_pnl"]].round(3)
    ...     .to_string(index=False))
    signal  trades  wins  posterior_mean  total_pnl
        s1       3     2           0.557       0.02
        s2       0     0           0.550       0.00
    """
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
