"""Regret of the live decision layer (:class:`~bayes_mem.live.Decider`) on simulated Bernoulli
bandits: the Chapelle & Li experiment of the suite's ``bandits`` section
(:mod:`bayes_mem.evaluation.bandits`).

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

Only numpy/scipy/pandas here, except the figure (matplotlib, imported inside the plotting function).
"""

from __future__ import annotations

import math
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special, stats

from bayes_mem.live import Decider
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
    """Kullback-Leibler divergence KL(Bernoulli(p) || Bernoulli(q)) in nats; p, q in (0, 1).

    Examples
    --------
    ``0.4 log(0.4 / 0.5) + 0.6 log(0.6 / 0.5) = 0.0201`` nats:

    >>> round(kl_bernoulli(0.4, 0.5), 4), kl_bernoulli(0.3, 0.3)
    (0.0201, 0.0)
    """
    p = check_probability_open(p, "p")
    q = check_probability_open(q, "q")
    return p * math.log(p / q) + (1.0 - p) * math.log((1.0 - p) / (1.0 - q))


def chapelle_li_arms(k: int, eps: float) -> np.ndarray:
    """Win probabilities of the Chapelle-Li bandit: arm 0 at 0.5, the ``k - 1`` others at
    ``0.5 - eps``.

    Examples
    --------
    >>> chapelle_li_arms(4, 0.1)
    array([0.5, 0.4, 0.4, 0.4])
    """
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
    (win-rate units) per unit of ``log t`` of any uniformly good policy (Lai & Robbins 1985).

    Examples
    --------
    Two arms 0.1 below the best: ``2 * 0.1 / KL(0.4, 0.5) = 0.2 / 0.0201 = 9.93``:

    >>> round(lai_robbins_rate([0.5, 0.4, 0.4]), 2)
    9.93
    """
    p = _check_probs(probs)
    best = float(p.max())
    return float(sum((best - q) / kl_bernoulli(float(q), best) for q in p if q < best))


def bound_below_linear_from(probs: Sequence[float] | np.ndarray) -> float:
    """The step count ``T`` from which the Lai-Robbins bound ``rate * log T`` falls below the
    linear worst case ``(p* - min p) * T`` (largest root of ``rate * log T = gap * T``): below it
    the asymptotic bound says nothing a finite run can check.

    Examples
    --------
    With rate 9.93 and gap 0.1 the bound ``9.93 log T`` stays above ``0.1 T`` until T = 642:

    >>> T = bound_below_linear_from([0.5, 0.4, 0.4])
    >>> round(T, 1), round(lai_robbins_rate([0.5, 0.4, 0.4]) * math.log(T) / (0.1 * T), 6)
    (642.1, 1.0)
    """
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
    """About ``n`` log-spaced step counts from ``start`` to ``horizon`` (inclusive, distinct).

    Examples
    --------
    >>> log_checkpoints(1000, n=4), log_checkpoints(100, n=5, start=1)
    (array([  10,   46,  215, 1000]), array([  1,   3,  10,  32, 100]))
    """
    horizon = check_int(horizon, "horizon", minimum=2)
    n = check_int(n, "n", minimum=2)
    start = check_int(start, "start", minimum=1)
    if start >= horizon:
        raise ValueError(f"start={start} must be below horizon={horizon}")
    return np.unique(np.round(np.geomspace(start, horizon, n)).astype(np.int64))


def pseudo_regret(arms: np.ndarray, probs: np.ndarray, checkpoints: np.ndarray) -> np.ndarray:
    """Cumulative pseudo-regret ``sum_{s <= t} (max(probs) - probs[arms[s]])`` at each checkpoint
    ``t`` (a step count, 1-based). Win-rate units.

    Examples
    --------
    Pulls of arms 1, 0, 2, 0 cost 0.1, 0, 0.2, 0 against the best arm (0.5):

    >>> import numpy as np
    >>> pseudo_regret(np.array([1, 0, 2, 0]), np.array([0.5, 0.4, 0.3]), np.array([1, 2, 4]))
    array([0.1, 0.1, 0.3])
    """
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
    """Mean of ``x`` (one value per seed) and its Student-t ``level`` confidence interval.

    Examples
    --------
    Mean 2, sd 1, 3 values: half-width ``t_{0.975, 2} / sqrt(3) = 4.303 / 1.732 = 2.484``:

    >>> import numpy as np
    >>> [round(v, 3) for v in mean_interval(np.array([1.0, 2.0, 3.0]))]
    [2.0, -0.484, 4.484]
    """
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
    find the mode region, a fine pass over it) and sampled like the published draws.

    Examples
    --------
    Three signals winning 83 of 166 trades: the family mean is near 0.5, every concentration
    draw within the bounds:

    >>> import numpy as np
    >>> post = family_posterior(np.array([30, 25, 28]), np.array([60, 50, 56]), rng=0)
    >>> post.mean.size, round(float(post.mean.mean()), 2)
    (400, 0.51)
    >>> bool(KAPPA_MIN <= post.kappa.min() and post.kappa.max() <= KAPPA_MAX)
    True
    """
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
    refits the family prior every ``refit_every`` steps (see the module docstring).

    Examples
    --------
    500 steps on the K = 10, eps = 0.1 bandit: about 40 expected wins lost to the best arm,
    against ``0.1 * 500 = 50`` for a policy that never pulls it:

    >>> import numpy as np
    >>> cp, regret = thompson_regret_path(chapelle_li_arms(10, 0.1), 500, seed=0)
    >>> cp[[0, -1]], np.round(regret[[0, -1]], 1)
    (array([ 10, 500]), array([ 0.9, 39.8]))
    """
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
    ``checkpoints[j]``.

    Examples
    --------
    Built by :func:`chapelle_li_runs`:

    >>> runs = chapelle_li_runs(10, 0.1, 200, seeds=range(3))
    >>> runs.k, runs.policy, runs.paths.shape, round(runs.rate, 2)
    (10, 'independent', (3, 25), 44.7)
    """

    k: int
    eps: float
    policy: str
    checkpoints: np.ndarray
    paths: np.ndarray
    rate: float  # Lai-Robbins regret per unit of log t

    def summary(self, slope_from: int | None = None) -> dict[str, float]:
        """Horizon regret (mean and 95% t-interval over seeds), Lai-Robbins bound at the horizon,
        their ratio, the linear worst case ``eps * T``, and the slope of mean regret against
        ``log t`` fitted over checkpoints ``>= slope_from`` (default: the last decade).

        Examples
        --------
        Three seeds of 200 steps: the Lai-Robbins bound ``44.7 log 200 = 237`` is far above the
        linear worst case 20 at this horizon (it falls below it only from T = 3,669):

        >>> s = chapelle_li_runs(10, 0.1, 200, seeds=range(3)).summary()
        >>> round(s["regret_mean"], 2), round(s["lai_robbins_bound"], 1), s["linear_worst_case"]
        (16.87, 236.8, 20.0)
        >>> round(s["bound_below_linear_from"])
        3669
        """
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
    default :func:`log_checkpoints`, ending at ``horizon``).

    Examples
    --------
    >>> runs = chapelle_li_runs(10, 0.1, 200, policy="pooled", seeds=range(2), refit_every=50)
    >>> runs.policy, runs.paths.shape, int(runs.checkpoints[-1])
    ('pooled', (2, 25), 200)
    """
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


def _plot_regret(runs: list[RegretRuns], path: pathlib.Path) -> None:
    from bayes_mem.plotting import pyplot

    plt = pyplot()

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
