"""Regret of the live decision layer (:class:`~bayes_mem.live.Decider`) on simulated bandits.

Two experiments, both driving the real ``Decider``:

**Chapelle & Li (2011).** Bernoulli arms, the best at ``p* = 0.5`` and the ``K - 1`` others at
``0.5 - eps``, ``K`` in {10, 100} and ``eps`` in {0.1, 0.02}. One pull per step with
``Decider.choose(idx, 1, only_acting=False)`` (plain Thompson sampling over an index array). The
*pseudo-regret* after ``t`` steps is ``sum_s (p* - p_{a_s})`` (win-rate units, expected wins lost to
the best arm), recorded at log-spaced checkpoints over seeds, against the Lai & Robbins (1985)
bound ``log t * sum_k (p* - p_k) / KL(p_k, p*)``. Two policies:

* ``independent``: every arm keeps the flat Beta(1, 1) prior.
* ``pooled``: all arms are one family whose Beta prior is re-estimated every ``refit_every`` steps
  (a "night") from the arms' raw (wins, trades) and set with ``Decider.set_family_prior`` -- the
  live mechanism: the nightly job fits the hierarchical Beta-Binomial of
  :mod:`bayes_mem.offline.winrate` to the store's per-signal counts, publishes posterior draws of
  each family's mean and concentration (:class:`~bayes_mem.live.prior_set.FamilyPosterior`), and
  the live process applies their :meth:`~FamilyPosterior.point_prior` (``apply_family_priors``).
  Here the fit is :func:`family_posterior`: the same model's exact posterior for one family on a
  2-D grid (no MCMC, so hundreds of nightly refits stay cheap), with the concentration bounded
  to ``[KAPPA_MIN, KAPPA_MAX]``, since an unbounded estimate on nearly identical arms runs off to
  infinity and locks the posterior on the prior (see NOTES.md).

**Cold start.** Hundreds of new signals in a few families, each with only a few opportunities.
Family priors are fitted by the real nightly model
(:class:`~bayes_mem.offline.winrate.WinRateModel`, PyMC + nutpie, compiled once) on a *history*
of other signals of the same families (disjoint from the evaluated ones: no look-ahead), and
used three ways: ``nightly`` the published moment-matched prior (the Beta with the mean and
variance of a new signal's win rate under the posterior predictive), ``nightly_plug_in`` the
Beta at E[m], E[kappa] (what was published before), ``nightly_sampled`` full Bayes (one
hyperparameter draw per decision, ``Decider.set_family_draws``); compared with flat Beta(1, 1)
priors and with the true family distributions (an oracle reference). At every
opportunity the Decider acts when its sampled win rate clears ``threshold``; the regret of one
opportunity is the expected win rate lost against the oracle that trades exactly the signals with
true ``p > threshold``: ``max(p - thr, 0) - act * (p - thr)`` (win-rate units; with +-1 payoffs
the expected PnL lost is twice that).

Only numpy/scipy/pandas here, except the nightly fit of the cold start (PyMC, imported lazily) and
the figures (matplotlib, Agg backend, imported inside the plotting functions).
"""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from bayes_mem.live import BetaPrior, Decider
from bayes_mem.live.prior_set import FamilyPosterior
from bayes_mem.live.validate import check_int, check_probability_open
from bayes_mem.offline.winrate import HYPERPRIORS

BEST = 0.5
SETTINGS: tuple[tuple[int, float], ...] = ((10, 0.1), (10, 0.02), (100, 0.1), (100, 0.02))
POLICIES = ("independent", "pooled")

#: bounds of the pooled family's concentration (pseudo-trades) in the simulated nightly fit
KAPPA_MIN = 1.0
KAPPA_MAX = 300.0
#: hyperparameter draws published per family (RecalibrationConfig.family_draws_published)
PUBLISHED_DRAWS = 400

# the nightly win-rate model's hyperpriors (bayes_mem.offline.winrate.HYPERPRIORS)
_ETA_SD = HYPERPRIORS["eta0"].sigma  # with one family the logit mean is eta0
_LOGK_MU, _LOGK_SD = HYPERPRIORS["mu_logk"].mu, HYPERPRIORS["mu_logk"].sigma
_SIGMA_LOGK = HYPERPRIORS["sigma_logk"].sigma
_FINE = 41  # nodes per axis of the fine grid


# ---------------------------------------------------------------------------- small pieces
def kl_bernoulli(p: float, q: float) -> float:
    """Kullback-Leibler divergence KL(Bernoulli(p) || Bernoulli(q)) in nats; p, q in (0, 1)."""
    p = check_probability_open(p, "p")
    q = check_probability_open(q, "q")
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def chapelle_li_arms(k: int, eps: float) -> np.ndarray:
    """Win probabilities of the Chapelle-Li bandit: arm 0 at 0.5, the ``k - 1`` others at
    ``0.5 - eps``."""
    k = check_int(k, "k", minimum=2)
    eps = check_probability_open(eps, "eps")
    if eps >= BEST:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    p = np.full(k, BEST - eps)
    p[0] = BEST
    return p


def _check_probs(probs: object) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"probs must be a 1-d array of at least 2 win rates, got shape {p.shape}")
    bad = ~((p > 0.0) & (p < 1.0))
    if bad.any():
        raise ValueError(f"probs must be in (0, 1), got {p[bad][0]!r} at index {np.argmax(bad)}")
    return p


def lai_robbins_rate(probs: Sequence[float] | np.ndarray) -> float:
    """``sum_k (p* - p_k) / KL(p_k, p*)`` over the suboptimal arms: the asymptotic pseudo-regret
    (win-rate units) per unit of ``log t`` of any uniformly good policy (Lai & Robbins 1985)."""
    p = _check_probs(probs)
    best = float(p.max())
    return float(sum((best - q) / kl_bernoulli(float(q), best) for q in p if q < best))


def bound_below_linear_from(probs: Sequence[float] | np.ndarray) -> float:
    """The step count ``T`` from which the Lai-Robbins bound ``rate * log T`` falls below the
    linear worst case ``(p* - min p) * T`` (largest root of ``rate * log T = gap * T``): below it
    the asymptotic bound says nothing a finite run can check."""
    p = _check_probs(probs)
    rate, gap = lai_robbins_rate(p), float(p.max() - p.min())
    if gap <= 0.0:
        raise ValueError("all arms are equal: there is no regret to bound")
    t = max(math.e, rate / gap)
    for _ in range(200):  # fixed point of T = (rate / gap) log T, from above
        t_new = rate / gap * math.log(t)
        if abs(t_new - t) < 1e-9 * t:
            break
        t = max(t_new, math.e)
    return t


def log_checkpoints(horizon: int, n: int = 25, start: int = 10) -> np.ndarray:
    """About ``n`` log-spaced step counts from ``start`` to ``horizon`` (inclusive, distinct)."""
    horizon = check_int(horizon, "horizon", minimum=2)
    n = check_int(n, "n", minimum=2)
    start = check_int(start, "start", minimum=1)
    if start >= horizon:
        raise ValueError(f"start={start} must be below horizon={horizon}")
    return np.unique(np.round(np.geomspace(start, horizon, n)).astype(np.int64))


def pseudo_regret(arms: np.ndarray, probs: np.ndarray, checkpoints: np.ndarray) -> np.ndarray:
    """Cumulative pseudo-regret ``sum_{s <= t} (max(probs) - probs[arms[s]])`` at each checkpoint
    ``t`` (a step count, 1-based). Win-rate units."""
    p = _check_probs(probs)
    a = np.asarray(arms)
    if a.ndim != 1 or a.dtype.kind not in "iu":
        raise ValueError(f"arms must be a 1-d integer array, got {a.dtype} shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= p.size):
        raise ValueError(f"arms must be in [0, {p.size}), got [{a.min()}, {a.max()}]")
    cp = np.asarray(checkpoints)
    if cp.ndim != 1 or cp.dtype.kind not in "iu" or cp.size == 0:
        raise ValueError(f"checkpoints must be a non-empty 1-d integer array, got {cp!r:.80}")
    if cp.min() < 1 or cp.max() > a.size or np.any(np.diff(cp) <= 0):
        raise ValueError(
            f"checkpoints must increase within [1, {a.size}], got [{cp.min()}, {cp.max()}]"
        )
    cum = np.cumsum(p.max() - p[a])
    return cum[cp - 1]


def mean_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``x`` (one value per seed) and its Student-t ``level`` confidence interval."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"need at least 2 values for an interval, got shape {x.shape}")
    m = float(x.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


# ---------------------------------------------------------------------------- the nightly fit
def _logk_log_prior(logk: np.ndarray) -> np.ndarray:
    """Marginal prior density of log kappa for one family of the nightly model:
    ``log kappa = mu_logk + sigma_logk z``, ``mu_logk ~ N(mu0, s0)``, ``sigma_logk ~
    HalfNormal(s1)``, z ~ N(0, 1) (:data:`~bayes_mem.offline.winrate.HYPERPRIORS`), i.e.
    ``N(mu0, sqrt(s0^2 + sigma^2))`` averaged over sigma (Gauss-Legendre quadrature)."""
    nodes, weights = np.polynomial.legendre.leggauss(48)
    top = 6.0 * _SIGMA_LOGK
    sigma = (nodes + 1.0) * top / 2.0
    w = weights * top / 2.0 * stats.halfnorm.pdf(sigma, scale=_SIGMA_LOGK)
    sd = np.sqrt(_LOGK_SD**2 + sigma**2)
    dens = (w[None, :] * stats.norm.pdf(logk[:, None], _LOGK_MU, sd[None, :])).sum(axis=1)
    return np.log(dens)


def _grid_log_post(
    eta: np.ndarray, logk: np.ndarray, wins: np.ndarray, losses: np.ndarray
) -> np.ndarray:
    m = special.expit(eta)[:, None, None]
    kappa = np.exp(logk)[None, :, None]
    a, b = m * kappa, (1.0 - m) * kappa
    n = wins.shape[2]
    gl = special.gammaln
    loglik = (gl(a + wins) + gl(b + losses) - gl(a + b + wins + losses)).sum(axis=2)
    loglik -= n * (gl(a) + gl(b) - gl(a + b))[:, :, 0]
    prior = stats.norm.logpdf(eta, 0.0, _ETA_SD)[:, None] + _logk_log_prior(logk)[None, :]
    return loglik + prior


def family_posterior(
    wins: np.ndarray,
    trades: np.ndarray,
    *,
    kappa_bounds: tuple[float, float] = (KAPPA_MIN, KAPPA_MAX),
    draws: int = PUBLISHED_DRAWS,
    rng: int | np.random.Generator | None = None,
) -> FamilyPosterior:
    """Posterior draws of one family's (mean, concentration) given its signals' counts: the
    nightly hierarchical Beta-Binomial (:mod:`bayes_mem.offline.winrate`) restricted to one
    family, with ``kappa`` truncated to ``kappa_bounds``, evaluated on a grid (a coarse pass to
    find the mode region, a fine pass over it) and sampled like the published draws."""
    w = np.asarray(wins, dtype=float)
    n = np.asarray(trades, dtype=float)
    if w.ndim != 1 or w.shape != n.shape:
        raise ValueError(f"wins and trades must be 1-d of equal length, got {w.shape}, {n.shape}")
    if np.any(~np.isfinite(n)) or np.any(w < 0) or np.any(n < w) or np.any(w != np.round(w)):
        raise ValueError("wins and trades must be integer counts with 0 <= wins <= trades")
    lo, hi = (float(x) for x in kappa_bounds)
    if not 0.0 < lo < hi < math.inf:
        raise ValueError(f"kappa_bounds must satisfy 0 < low < high < inf, got {kappa_bounds!r}")
    draws = check_int(draws, "draws", minimum=1)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    used = n > 0
    ws, ls = w[used][None, None, :], (n - w)[used][None, None, :]
    eta = np.linspace(-5.0, 5.0, 61)
    logk = np.linspace(math.log(lo), math.log(hi), 25)
    lp = _grid_log_post(eta, logk, ws, ls)
    keep = lp > lp.max() - 25.0
    ie, ik = np.nonzero(keep)
    eta = np.linspace(eta[max(ie.min() - 1, 0)], eta[min(ie.max() + 1, eta.size - 1)], _FINE)
    logk = np.linspace(logk[max(ik.min() - 1, 0)], logk[min(ik.max() + 1, logk.size - 1)], _FINE)
    lp = _grid_log_post(eta, logk, ws, ls)
    prob = np.exp(lp - lp.max()).ravel()
    prob /= prob.sum()
    cell = gen.choice(prob.size, size=draws, p=prob)
    de, dk = eta[1] - eta[0], logk[1] - logk[0]
    e = eta[cell // logk.size] + de * (gen.random(draws) - 0.5)  # jitter within the cell
    k = np.clip(logk[cell % logk.size] + dk * (gen.random(draws) - 0.5), math.log(lo), math.log(hi))
    return FamilyPosterior(special.expit(e), np.exp(k))


# ---------------------------------------------------------------------------- Chapelle-Li
def thompson_regret_path(
    probs: Sequence[float] | np.ndarray,
    horizon: int,
    *,
    policy: Literal["independent", "pooled"] = "independent",
    checkpoints: np.ndarray | None = None,
    refit_every: int = 1000,
    kappa_bounds: tuple[float, float] = (KAPPA_MIN, KAPPA_MAX),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One Thompson-sampling run of the live ``Decider`` on Bernoulli arms ``probs`` for
    ``horizon`` steps; returns ``(checkpoints, pseudo-regret at each)`` (win-rate units).

    Outcomes use common random numbers: the n-th pull of arm i wins when ``u[i, n] < probs[i]``
    with ``u`` drawn from ``seed``, so both policies see the same outcome streams. ``pooled``
    refits the family prior every ``refit_every`` steps (see the module docstring)."""
    p = _check_probs(probs)
    horizon = check_int(horizon, "horizon", minimum=2)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    refit_every = check_int(refit_every, "refit_every", minimum=1)
    cp = log_checkpoints(horizon) if checkpoints is None else np.asarray(checkpoints)
    if cp.size == 0 or cp.dtype.kind not in "iu" or cp.max() > horizon or cp.min() < 1:
        raise ValueError(f"checkpoints must be integers within [1, {horizon}], got {cp!r:.80}")
    k = p.size
    root = np.random.SeedSequence(check_int(seed, "seed", minimum=0))
    s_out, s_dec, s_fit = root.spawn(3)
    wins_table = np.random.default_rng(s_out).random((k, horizon)) < p[:, None]
    fit_rng = np.random.default_rng(s_fit)
    d = Decider(["arms"], rng=np.random.default_rng(s_dec))
    names = [f"arm{i}" for i in range(k)]
    for name in names:
        d.register(name, "arms")
    idx = d.indices(names)
    arm_of = {name: i for i, name in enumerate(names)}
    pulls = np.zeros(k, dtype=np.int64)
    wins = np.zeros(k, dtype=np.int64)
    chosen = np.empty(horizon, dtype=np.int64)
    choose, record = d.choose, d.record
    for t in range(horizon):
        if policy == "pooled" and t and t % refit_every == 0:
            post = family_posterior(wins, pulls, kappa_bounds=kappa_bounds, rng=fit_rng)
            d.set_family_prior("arms", post.point_prior())
        name = choose(idx, 1, only_acting=False)[0][0]
        i = arm_of[name]
        won = bool(wins_table[i, pulls[i]])
        pulls[i] += 1
        wins[i] += won
        record(name, won, 1.0 if won else -1.0)
        chosen[t] = i
    return cp, pseudo_regret(chosen, p, cp)


@dataclass(frozen=True)
class RegretRuns:
    """Pseudo-regret paths of one (setting, policy) over seeds: ``paths[s, j]`` at
    ``checkpoints[j]``."""

    k: int
    eps: float
    policy: str
    checkpoints: np.ndarray
    paths: np.ndarray
    rate: float  # Lai-Robbins regret per unit of log t

    def summary(self, slope_from: int | None = None) -> dict[str, float]:
        """Horizon regret (mean and 95% t-interval over seeds), Lai-Robbins bound at the horizon,
        their ratio, the linear worst case ``eps * T``, and the slope of mean regret against
        ``log t`` fitted over checkpoints ``>= slope_from`` (default: the last decade)."""
        horizon = int(self.checkpoints[-1])
        mean, lo, hi = mean_interval(self.paths[:, -1])
        bound = self.rate * math.log(horizon)
        start = horizon / 10.0 if slope_from is None else slope_from
        use = self.checkpoints >= start
        slope = float(np.polyfit(np.log(self.checkpoints[use]), self.paths.mean(0)[use], 1)[0])
        return {
            "K": self.k,
            "eps": self.eps,
            "policy": self.policy,
            "horizon": horizon,
            "seeds": int(self.paths.shape[0]),
            "regret_mean": mean,
            "regret_lo": lo,
            "regret_hi": hi,
            "lai_robbins_bound": bound,
            "ratio_to_bound": mean / bound,
            "linear_worst_case": self.eps * horizon,
            "bound_below_linear_from": bound_below_linear_from(chapelle_li_arms(self.k, self.eps)),
            "slope_per_log_t": slope,
            "lai_robbins_rate": self.rate,
        }


def chapelle_li_runs(
    k: int,
    eps: float,
    horizon: int,
    *,
    policy: Literal["independent", "pooled"] = "independent",
    seeds: Sequence[int] = range(8),
    refit_every: int = 1000,
    kappa_bounds: tuple[float, float] = (KAPPA_MIN, KAPPA_MAX),
    checkpoints: np.ndarray | None = None,
) -> RegretRuns:
    """Regret paths of one Chapelle-Li setting and policy over ``seeds`` (at ``checkpoints``,
    default :func:`log_checkpoints`, ending at ``horizon``)."""
    probs = chapelle_li_arms(k, eps)
    seeds = list(seeds)
    if len(seeds) < 2:
        raise ValueError(f"need at least 2 seeds for intervals, got {seeds!r}")
    cp = log_checkpoints(horizon) if checkpoints is None else np.asarray(checkpoints)
    if cp.size == 0 or cp[-1] != horizon:
        raise ValueError(f"checkpoints must end at horizon={horizon}, got {cp!r:.80}")
    paths = np.array(
        [
            thompson_regret_path(
                probs, horizon, policy=policy, checkpoints=cp, refit_every=refit_every,
                kappa_bounds=kappa_bounds, seed=s,
            )[1]
            for s in seeds
        ]
    )  # fmt: skip
    return RegretRuns(k, float(eps), policy, cp, paths, lai_robbins_rate(probs))


# ---------------------------------------------------------------------------- cold start
@dataclass(frozen=True)
class FamilySpec:
    """A signal family's true win-rate distribution: Beta with ``mean`` and ``kappa``."""

    name: str
    mean: float
    kappa: float

    def prior(self) -> BetaPrior:
        return BetaPrior.from_mean_concentration(self.mean, self.kappa)


COLD_START_FAMILIES = (
    FamilySpec("momentum", 0.55, 40.0),
    FamilySpec("mean_reversion", 0.45, 20.0),
    FamilySpec("carry", 0.60, 60.0),
    FamilySpec("breakout", 0.40, 30.0),
    FamilySpec("news", 0.50, 10.0),
)


def _check_families(families: Sequence[FamilySpec]) -> tuple[FamilySpec, ...]:
    fams = tuple(families)
    if not fams or not all(isinstance(f, FamilySpec) for f in fams):
        raise TypeError(
            f"families must be a non-empty sequence of FamilySpec, got {families!r:.80}"
        )
    if len({f.name for f in fams}) != len(fams):
        raise ValueError(f"family names must be distinct, got {[f.name for f in fams]}")
    for f in fams:
        BetaPrior.from_mean_concentration(f.mean, f.kappa)  # validates, naming the value
    return fams


def draw_signals(
    families: Sequence[FamilySpec], per_family: int, rng: np.random.Generator, prefix: str
) -> pd.DataFrame:
    """``per_family`` new signals per family with true win rates drawn from the family's Beta:
    columns signal, family, p."""
    fams = _check_families(families)
    per_family = check_int(per_family, "per_family", minimum=1)
    rows = []
    for f in fams:
        pr = f.prior()
        for j, p in enumerate(rng.beta(pr.a, pr.b, per_family)):
            rows.append((f"{prefix}{f.name}_{j}", f.name, float(p)))
    return pd.DataFrame(rows, columns=["signal", "family", "p"])


def simulate_history(
    families: Sequence[FamilySpec],
    per_family: int,
    trades: int,
    rng: np.random.Generator,
    *,
    rho: float = 0.0,
    days: int = 20,
) -> pd.DataFrame:
    """Settled history of ``per_family`` past signals per family, ``trades`` each: columns
    signal, family, p (true, not used by the fit), wins, trades (the store's ``signal_counts``).
    ``rho > 0``: each signal trades on ``trades`` consecutive days of ``days`` (wrapping, from a
    random start) and a family's trades of one day are correlated with intra-cluster
    correlation ``rho`` (the simulator of :mod:`bayes_mem.offline.winrate`); the trades are in
    ``attrs["trades"]`` (signal, family, won, cluster)."""
    from bayes_mem.offline.winrate import TradeLayout, simulate_outcomes

    trades = check_int(trades, "trades", minimum=1)
    hist = draw_signals(families, per_family, rng, prefix="hist_")
    if rho == 0.0:
        hist["wins"] = rng.binomial(trades, hist["p"].to_numpy())
        hist["trades"] = trades
        return hist
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    days = check_int(days, "days", minimum=1)
    names = [f.name for f in families]
    fam = hist["family"].map({n: i for i, n in enumerate(names)}).to_numpy()
    sig = np.repeat(np.arange(len(hist)), trades)
    day = (rng.integers(0, days, len(hist))[sig] + np.tile(np.arange(trades), len(hist))) % days
    lay = TradeLayout(fam[sig], sig, fam[sig] * days + day, np.zeros(sig.size, bool), fam)
    won = simulate_outcomes(lay, None, None, np.full(len(names), rho), rng,
                            p=hist["p"].to_numpy())  # fmt: skip
    hist["wins"] = np.bincount(sig, weights=won, minlength=len(hist)).astype(np.int64)
    hist["trades"] = trades
    hist.attrs["trades"] = pd.DataFrame({
        "signal": hist["signal"].to_numpy()[sig], "family": hist["family"].to_numpy()[sig],
        "won": won, "cluster": day,
    })  # fmt: skip
    return hist


def nightly_family_priors(
    history: pd.DataFrame,
    *,
    model: Any = None,
    draws: int = 500,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    clustered: bool = True,
) -> tuple[dict[str, FamilyPosterior], dict[str, Any]]:
    """Fit the nightly hierarchical win-rate model (PyMC + nutpie; pass a
    :class:`~bayes_mem.offline.winrate.WinRateModel` to reuse its compiled model) to ``history``
    (its trades in ``attrs["trades"]`` when there, and ``clustered``; else its counts: the
    independent model) and return the published per-family draws (as the nightly job does)
    plus fit info (seconds, divergences)."""
    from bayes_mem.offline.winrate import WinRateData, hyper_draws

    if clustered and "trades" in history.attrs:
        data = WinRateData.from_trades(history.attrs["trades"])
    else:
        data = WinRateData.from_counts(history[["family", "wins", "trades"]])
    model = model or _winrate_model()
    t0 = time.perf_counter()
    tree = model.fit(data, draws=draws, tune=tune, chains=chains, seed=seed)
    seconds = time.perf_counter() - t0
    n = min(PUBLISHED_DRAWS, draws * chains)
    mean, kappa = hyper_draws(tree, n, np.random.default_rng(seed))
    fams = {f: FamilyPosterior(mean[:, i], kappa[:, i]) for i, f in enumerate(data.families)}
    div = int(np.asarray(tree["sample_stats"]["diverging"]).sum())
    return fams, {"fit_seconds": seconds, "divergences": div, "draws": draws * chains}


def _winrate_model() -> Any:
    """The process's compiled nightly model (compiled on first use)."""
    from bayes_mem.offline.winrate import default_model

    return default_model()


def opportunity_regret(p: np.ndarray, act: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Regret of each decision against the oracle that acts exactly when ``p > threshold``:
    ``max(p - thr, 0) - act * (p - thr)`` (expected win rate lost, win-rate units, >= 0)."""
    thr = check_probability_open(threshold, "threshold")
    p = np.asarray(p, dtype=float)
    a = np.asarray(act)
    if a.dtype != bool or a.shape != p.shape:
        raise ValueError(f"act must be a boolean array shaped like p {p.shape}, got {a.dtype}")
    if np.any(~((p >= 0.0) & (p <= 1.0))):
        raise ValueError("p must be win rates in [0, 1]")
    return np.maximum(p - thr, 0.0) - np.where(a, p - thr, 0.0)


def cold_start_regret(
    signals: pd.DataFrame,
    priors: Mapping[str, BetaPrior | FamilyPosterior] | None,
    opportunities: int,
    *,
    threshold: float = 0.5,
    seed: int = 0,
) -> float:
    """Mean regret per opportunity (win-rate units) of the live ``Decider`` on new ``signals``
    (columns signal, family, p) over ``opportunities`` rounds, each signal firing once per round
    (one ``decide_batch``); acted trades settle before the next round. ``priors`` maps family to
    its prior (``None``: flat Beta(1, 1)); a :class:`FamilyPosterior` instead makes the family full
    Bayes (``Decider.set_family_draws``): every decision draws one of its hyperparameter draws.
    Outcomes and decider draws come from ``seed`` alone, so different priors see the same outcome
    streams."""
    opportunities = check_int(opportunities, "opportunities", minimum=1)
    thr = check_probability_open(threshold, "threshold")
    fams = sorted(signals["family"].unique())
    if priors is not None:
        missing = [f for f in fams if f not in priors]
        if missing:
            raise ValueError(f"no prior for families {missing}")
    s_out, s_dec = np.random.SeedSequence(check_int(seed, "seed", minimum=0)).spawn(3)[:2]
    sampled = {} if priors is None else {
        f: priors[f] for f in fams if isinstance(priors[f], FamilyPosterior)
    }  # fmt: skip
    for f in fams:
        if priors is not None and not isinstance(priors[f], BetaPrior | FamilyPosterior):
            raise TypeError(f"prior of family {f!r} must be a BetaPrior or FamilyPosterior")
    p = signals["p"].to_numpy(float)
    names = signals["signal"].tolist()
    won_table = np.random.default_rng(s_out).random((p.size, opportunities)) < p[:, None]
    d = Decider(
        {f: (None if priors is None else
             priors[f].point_prior() if f in sampled else priors[f]) for f in fams},
        threshold=thr,
        rng=np.random.default_rng(s_dec),
    )  # fmt: skip
    for f, post in sampled.items():
        d.set_family_draws(f, post.betas())  # full Bayes: a hyperparameter draw per decision
    for name, fam in zip(names, signals["family"], strict=True):
        d.register(name, fam)
    idx = d.indices(names)
    pulls = np.zeros(p.size, dtype=np.int64)
    total = 0.0
    for _ in range(opportunities):
        act, _ = d.decide_batch(idx)
        total += float(opportunity_regret(p, act, thr).sum())
        for i in np.flatnonzero(act).tolist():
            won = bool(won_table[i, pulls[i]])
            pulls[i] += 1
            d.record(names[i], won, 1.0 if won else -1.0)
    return total / (p.size * opportunities)


def cold_start_log_score(
    signals: pd.DataFrame,
    priors: Mapping[str, BetaPrior | FamilyPosterior] | None,
    trades: int,
    *,
    seed: int = 0,
) -> float:
    """Mean log predictive score per trade (nats; higher is better) of each new signal's first
    ``trades`` outcomes under its family's prior: with ``w`` wins and ``l`` losses the sequence's
    predictive probability is ``B(a + w, b + l) / B(a, b)`` (the product of the sequential
    Beta-Bernoulli predictives), averaged over the hyperparameter draws for a
    :class:`FamilyPosterior` (the full-Bayes predictive). A proper scoring rule: in expectation
    the true family prior scores best, so unlike short-horizon regret (which rewards a prior
    that explores too little) it ranks priors by calibration. ``priors=None``: flat Beta(1, 1).
    Outcomes come from ``seed`` alone, so every prior is scored on the same outcomes."""
    trades = check_int(trades, "trades", minimum=1)
    p = signals["p"].to_numpy(float)
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    wins = rng.binomial(trades, p).astype(float)
    losses = trades - wins
    fams = signals["family"].to_numpy()
    score = np.empty(p.size)
    for f in np.unique(fams):
        sel = fams == f
        prior = BetaPrior(1.0, 1.0) if priors is None else priors[f]
        if isinstance(prior, FamilyPosterior):
            a, b = prior.betas()
        elif isinstance(prior, BetaPrior):
            a, b = np.array([prior.a]), np.array([prior.b])
        else:
            raise TypeError(f"prior of family {f!r} must be a BetaPrior or FamilyPosterior")
        w, lo = wins[sel, None], losses[sel, None]
        log_p = special.betaln(a + w, b + lo) - special.betaln(a, b)  # (signals, draws)
        score[sel] = special.logsumexp(log_p, axis=1) - math.log(a.size)
    return float(score.mean() / trades)


def cold_start_experiment(
    *,
    families: Sequence[FamilySpec] = COLD_START_FAMILIES,
    signals_per_family: int = 80,
    history_per_family: int = 100,
    history_trades: int = 20,
    opportunities: Sequence[int] = (5, 10, 20),
    fit_seeds: Sequence[int] = range(6),
    replicates: int = 16,
    draws: int = 500,
    tune: int = 1000,
    seed: int = 0,
    model: Any = None,
    history_rho: float = 0.0,
    history_days: int = 20,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Cold-start regret over ``fit_seeds``: per seed a fresh history (fitted by the nightly
    model) and ``replicates`` fresh evaluation sets of new signals (never in the history).
    ``history_rho > 0``: the history's trades are correlated within a family's day
    (:func:`simulate_history`); the independent model (the fit before issue 16) is fitted on the
    same history too, adding ``independent_plug_in`` (what was published before: its E[m],
    E[kappa]) and ``independent`` (its moment-matched prior).
    Returns one row per (seed, prior, opportunities): columns fit_seed, prior (flat /
    nightly_plug_in: Beta(E[m] E[kappa], ...) / nightly: moment-matched, what is published /
    nightly_sampled: a hyperparameter draw per decision / true), opportunities, regret (mean per
    opportunity over the replicates), log_score (:func:`cold_start_log_score` of the new
    signals' first ``opportunities`` outcomes, mean over the replicates);
    and per-seed fit info."""
    fams = _check_families(families)
    fit_seeds = list(fit_seeds)
    replicates = check_int(replicates, "replicates", minimum=1)
    model = model or _winrate_model()
    rows, fits = [], []
    for fs in fit_seeds:
        s_hist, s_eval, s_fit = np.random.SeedSequence([seed, fs]).spawn(3)
        history = simulate_history(
            fams, history_per_family, history_trades, np.random.default_rng(s_hist),
            rho=history_rho, days=history_days,
        )  # fmt: skip
        fit_seed = int(s_fit.generate_state(1)[0])
        posts, info = nightly_family_priors(
            history, model=model, draws=draws, tune=tune, seed=fit_seed
        )
        nightly = {f: post.point_prior() for f, post in posts.items()}
        plug_in = {f: post.point_prior("plug_in") for f, post in posts.items()}
        truth = {f.name: f.prior() for f in fams}
        extra: list[tuple[str, Any]] = []
        if history_rho > 0.0:
            ind, _ = nightly_family_priors(
                history, model=model, draws=draws, tune=tune, seed=fit_seed, clustered=False
            )
            extra = [("independent_plug_in", {f: p.point_prior("plug_in") for f, p in ind.items()}),
                     ("independent", {f: p.point_prior() for f, p in ind.items()})]  # fmt: skip
        info.update(
            fit_seed=fs,
            priors={f: {"mean": pr.mean, "kappa": pr.concentration} for f, pr in nightly.items()},
            plug_in_priors={
                f: {"mean": pr.mean, "kappa": pr.concentration} for f, pr in plug_in.items()
            },
        )
        fits.append(info)
        eval_rng = np.random.default_rng(s_eval)
        evals = [
            draw_signals(fams, signals_per_family, eval_rng, "new_") for _ in range(replicates)
        ]
        overlap = set(history["signal"]) & {n for e in evals for n in e["signal"]}
        if overlap:  # by construction never; evaluated signals must not be in the fitted history
            raise AssertionError(
                f"evaluation signals leaked into the history: {sorted(overlap)[:3]}"
            )
        for n_opp in opportunities:
            for label, priors in (
                ("flat", None), ("nightly_plug_in", plug_in), ("nightly", nightly),
                ("nightly_sampled", posts), ("true", truth), *extra,
            ):  # fmt: skip
                r = [
                    cold_start_regret(e, priors, n_opp, seed=_seed_of(seed, fs, n_opp, j))
                    for j, e in enumerate(evals)
                ]
                score = [
                    cold_start_log_score(e, priors, n_opp, seed=_seed_of(seed, fs, n_opp, j))
                    for j, e in enumerate(evals)
                ]
                rows.append((fs, label, int(n_opp), float(np.mean(r)), float(np.mean(score))))
    df = pd.DataFrame(
        rows, columns=["fit_seed", "prior", "opportunities", "regret", "log_score"]
    )
    return df, fits


def _seed_of(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0])


def summarise_cold_start(df: pd.DataFrame) -> pd.DataFrame:
    """Per (prior, opportunities): regret mean and 95% t-interval over fit seeds, and the
    reduction against flat priors (paired by seed): absolute (win-rate units) and relative;
    with a ``log_score`` column also its mean and interval and its paired gain over the
    published (``nightly``) prior, nats per trade (positive: this prior is better calibrated)."""
    out = []
    for (n_opp, prior), g in df.groupby(["opportunities", "prior"], sort=True):
        flat = df[(df["opportunities"] == n_opp) & (df["prior"] == "flat")]
        g = g.sort_values("fit_seed")
        flat = flat.sort_values("fit_seed")
        m, lo, hi = mean_interval(g["regret"].to_numpy())
        diff = flat["regret"].to_numpy() - g["regret"].to_numpy()
        rel = diff / flat["regret"].to_numpy()
        row = {
            "opportunities": int(n_opp),
            "prior": prior,
            "seeds": len(g),
            "regret_mean": m,
            "regret_lo": lo,
            "regret_hi": hi,
        }
        if prior == "flat":
            row.update(reduction=0.0, reduction_lo=0.0, reduction_hi=0.0)
            row.update(rel_reduction=0.0, rel_reduction_lo=0.0, rel_reduction_hi=0.0)
        else:
            d_m, d_lo, d_hi = mean_interval(diff)
            r_m, r_lo, r_hi = mean_interval(rel)
            row.update(reduction=d_m, reduction_lo=d_lo, reduction_hi=d_hi)
            row.update(rel_reduction=r_m, rel_reduction_lo=r_lo, rel_reduction_hi=r_hi)
        if "log_score" in g:
            ref = df[(df["opportunities"] == n_opp) & (df["prior"] == "nightly")]
            ref = ref.sort_values("fit_seed")["log_score"].to_numpy()
            ls_m, ls_lo, ls_hi = mean_interval(g["log_score"].to_numpy())
            row.update(log_score=ls_m, log_score_lo=ls_lo, log_score_hi=ls_hi)
            if ref.size == len(g) and prior != "nightly":
                gain = mean_interval(g["log_score"].to_numpy() - ref)
            else:
                gain = (0.0, 0.0, 0.0) if ref.size == len(g) else (np.nan,) * 3
            row.update(zip(("score_vs_nightly", "score_vs_nightly_lo", "score_vs_nightly_hi"),
                           gain, strict=True))  # fmt: skip
        out.append(row)
    order = {"flat": 0, "independent_plug_in": 1, "independent": 2, "nightly_plug_in": 3,
             "nightly": 4, "nightly_sampled": 5, "true": 6}  # fmt: skip
    res = pd.DataFrame(out)
    res["_o"] = res["prior"].map(order)
    return res.sort_values(["opportunities", "_o"]).drop(columns="_o").reset_index(drop=True)


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

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _plot_regret(runs: list[RegretRuns], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (k, eps) in zip(axes.ravel(), SETTINGS, strict=True):
        for r, colour in zip(
            [r for r in runs if (r.k, r.eps) == (k, eps)], ("C0", "C1"), strict=False
        ):
            t = r.checkpoints
            m = r.paths.mean(0)
            half = stats.t.ppf(0.975, r.paths.shape[0] - 1) * r.paths.std(0, ddof=1)
            half = half / math.sqrt(r.paths.shape[0])
            ax.plot(t, m, color=colour, label=f"{r.policy} TS")
            ax.fill_between(t, m - half, m + half, color=colour, alpha=0.25, lw=0)
            rate = r.rate
        ax.plot(t, rate * np.log(t), "k--", label="Lai-Robbins bound")
        ax.plot(t, eps * t, ":", color="grey", label="linear worst case eps*t")
        ax.set_xscale("log")
        top = 1.4 * max(
            float(np.max([r.paths.max() for r in runs if (r.k, r.eps) == (k, eps)])), 1.0
        )
        ax.set_ylim(0, top)
        bound = rate * math.log(t[-1])
        if bound > top:
            ax.text(
                0.98, 0.04, f"Lai-Robbins bound at T: {bound:,.0f} (off scale)\n"
                f"linear worst case at T: {eps * t[-1]:,.0f}",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8,
            )  # fmt: skip
        ax.set_title(f"K={k}, eps={eps}")
        ax.set_xlabel("step t (log scale)")
        ax.set_ylabel("pseudo-regret (win-rate units)")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Chapelle-Li Bernoulli bandits: Thompson sampling via the live Decider")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_cold_start(table: pd.DataFrame, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    opps = sorted(table["opportunities"].unique())
    priors = ["flat", "nightly_plug_in", "nightly", "nightly_sampled", "true"]
    labels = {"flat": "flat Beta(1,1)", "nightly_plug_in": "nightly fit (E[m], E[kappa])",
              "nightly": "nightly fit (moment-matched)",
              "nightly_sampled": "nightly fit (a draw per decision)",
              "true": "true family prior"}  # fmt: skip
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(priors)
    for j, prior in enumerate(priors):
        sub = table[table["prior"] == prior].set_index("opportunities").loc[opps]
        x = np.arange(len(opps)) + (j - (len(priors) - 1) / 2) * width
        err = np.vstack(
            [sub["regret_mean"] - sub["regret_lo"], sub["regret_hi"] - sub["regret_mean"]]
        )
        ax.bar(x, sub["regret_mean"], width, yerr=err, capsize=3, label=labels[prior])
    ax.set_xticks(np.arange(len(opps)), [f"{n} opportunities" for n in opps])
    ax.set_ylabel("regret per opportunity (win-rate units)")
    ax.set_title("Cold start: new signals, family priors from the nightly fit vs flat")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cold_start_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`cold_start_experiment` in a settings table (``FULL``,
    ``QUICK``)."""
    keys = ("signals_per_family", "history_per_family", "opportunities", "replicates", "draws",
            "tune")  # fmt: skip
    return {**{k: cfg[k] for k in keys}, "fit_seeds": range(cfg["fit_seeds"])}


def write_results(out_dir: pathlib.Path, *, seed: int = 0, quick: bool = False) -> dict:
    """Run both bandit evaluations and write ``bandits_chapelle_li.{csv,md}``,
    ``bandits_cold_start.{csv,md}`` (and the per-seed ``bandits_cold_start_runs.csv``),
    ``bandits_regret.png`` and ``bandits_cold_start.png`` into ``out_dir``; return the key numbers
    and a Markdown section. Regret is in win-rate units (expected wins lost)."""
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
