"""Hierarchical Beta-Binomial model of signal win rates with clustered outcomes (PyMC 6, nutpie).

Win rates. Signal i of family f wins each trade with probability ``p_i``; the family's signals
have ``p_i ~ Beta(m_f kappa_f, (1 - m_f) kappa_f)`` (``m_f``: the family's long-run mean win
rate, ``kappa_f``: its concentration in pseudo-trades). That Beta is what the live path takes as
the family prior and updates conjugately with a signal's own outcomes. Hyperpriors (one table,
:data:`HYPERPRIORS`, read by the model, the config hash and the identification check)::

    eta0 ~ Normal(0, 1)                  average family logit mean
    tau ~ HalfNormal(0.5)                spread of family logit means
    eta_f = eta0 + d_f,  d ~ ZeroSumNormal(tau),  m_f = logistic(eta_f)
    mu_logk ~ Normal(log 50, 1.5)        typical log concentration (kappa 2.6 .. 950 at 95%)
    sigma_logk ~ HalfNormal(0.75)
    log kappa_f = mu_logk + sigma_logk zk_f,  zk_f ~ Normal(0, 1)

(``d = tau z``, ``z ~ ZeroSumNormal(1)``, unless every family is data-rich: :func:`centred_means`;
``log kappa_f`` is sampled itself, not through ``zk_f``, where the means are centred or where
every family's concentration alone is pinned by its signals: :func:`centred_concentrations`.)

Clustered outcomes. Trades of one family that open on the same day (a *cluster*, e.g. signals
firing together on correlated markets) are not independent. Within a cluster the outcomes follow
a Dirichlet process: trade j wins iff ``U_j < p_{signal(j)}`` where the cluster's ``U`` are drawn
from ``G ~ DP(nu_f, Uniform(0, 1))`` (Chinese restaurant: each trade reuses the uniform of an
earlier trade of the cluster with probability ``k / (nu_f + k)``, k trades before it). So

- every trade still wins with probability ``p_i`` and a signal's trades in *different* clusters
  are independent given ``p_i``: the live conjugate update is exact for them;
- two trades of one cluster are correlated with ``rho_f = 1 / (1 + nu_f)`` (the intra-cluster
  correlation; equal signals give identical outcomes when they share a uniform), and a
  cluster's win count is ``BetaBinomial(n_c, m nu, (1 - m) nu)`` when its signals are alike;
- ``rho_f = 0`` is the independent model above.

Dependence prior, per family: ``logit rho_f ~ Normal(-3, 2)`` (median 0.05, 0.001 .. 0.73 at
95%: independent trades must be able to say so); not pooled across families: a family whose
trades share clusters has hundreds of them, one whose trades never do has no use for its rho.

Likelihood of the clustered model: a composite, moment-matched approximation of the crossed
signal x cluster dependence (the exact marginal likelihood of crossed effects has no closed form
and sampling a latent per cluster and per signal does not fit the time budget), exact when ``rho
= 0`` and, for the family mean, exact in its first two moments; its calibration is checked by
simulation-based calibration against the simulator above (tests/test_winrate_clusters.py).
Per family, from the trade layout: ``N`` trades, ``n_i`` per signal, ``psi`` = (ordered pairs
of trades of *different* signals in one cluster) / (``N^2 - sum n_i^2``: all pairs of trades of
different signals), ``a`` = (ordered pairs of trades of one signal in one cluster) / ``N``,
``n~ = sum n_i^2 / N``. Then

1. cluster totals: ``W_c ~ BetaBinomial(n_c, mu_f nu_f, (1 - mu_f) nu_f)``, ``nu_f = (1 -
   rho_f r_f) / (rho_f r_f)``, with ``mu_f`` a nuisance mean (``logit mu_f ~ Normal(0, 1.5)``)
   integrated out by adaptive Gauss-Hermite quadrature before sampling (:func:`cluster_loglik`);
   the result, a function of one number per family, enters the sampler as a cubic spline on a
   grid refined around its maximum (error < 1e-4 where the likelihood has its mass). ``r_f = 1
   - sd_f / (sqrt(pi) v_f)``, ``sd_f^2 = v_f / (kappa_f + 1)``, is the covariance of two trades
   of *unlike* signals sharing a uniform (``E min(p_a, p_b) - m^2``) over that of alike ones;
   the cluster totals are exactly this Beta-Binomial when the family's signals are alike, and
   match its first two moments otherwise;
2. family luck: the family's realised mean over the fitted window is ``m~_f =
   logistic(eta_f + s_f z_f)``, ``z_f ~ Normal(0, 1)`` (published as ``window_mean``), where
   ``s_f^2 = rho_f r_f psi_f / v_f`` is the common part of the family's pooled win rate (its
   covariance between trades of different signals in one cluster) on the logit scale.
   It is sampled as ``z`` (non-centred) or as ``logit m~`` itself (centred) per family, whichever
   the data make better conditioned (:attr:`ClusterStats.luck_centred`: the luck's sd at the
   clusters' most likely rho above the family mean's own sd);

   Where the luck's scale is evaluated: ``v_f = p^_f (1 - p^_f)`` at the family's observed pooled
   win rate ``p^_f = (wins + 0.5) / (trades + 1)`` (:func:`observed_variance`, data), the point
   where the logit-scale (delta-method) sd of the luck is accurate; the long-run mean's ``m_f (1 -
   m_f)`` would do as well to first order near the data, but not far from it. It was used until
   issue 17, and there a long-run mean far from its window mean made ``m (1 - m)`` small, the luck's
   logit sd large (growing like ``exp(|logit m| / 2)``) and ``r`` small (rho rising to keep the
   ``rho r`` the clusters measure): a heavy tail of the long-run mean given the window mean, in
   which one chain of four parked two families' long-run means 4-6 logits from their window means
   with tau 0.69 against 0.13 (300,000 signals in 100 families, docs/nightly_scale.md). Now, given
   the window mean, ``kappa`` and ``rho``, the long-run mean's likelihood is Normal with a fixed sd.

3. signals: given the luck, ``w_i ~ BetaBinomial(n_i, m~ kappa, (1 - m~) kappa)`` with its
   counts scaled by ``g_f = 1 / (1 + rho^_f (a_f - psi_f n~_f))`` (what remains of a signal's
   sampling variance once the shared part is the luck: ``g > 1`` when signals share clusters,
   ``g < 1`` when a signal has several trades in one cluster), ``log B(a + g w, b + g l) - log
   B(a, b)``; ``g`` is data, fixed at the cluster likelihood's maximum ``rho^_f`` (signals
   alike), so the signals say nothing about rho (a tempered likelihood of fixed temperature)
   and ``g = 1`` is the exact Beta-Binomial (used for ``|g - 1| <= 0.05``: three times cheaper
   per gradient; on 100,000 signals with g 1.00-1.03 the 99% intervals of kappa covered the
   truth in 20 of 20 families either way). The family's signal terms are weighted by
   ``1 / D_f``, ``D_f = 1 + rho^_f^2 R_f / k_f`` (k_f signals): ``R_f = sum_{i != j}
   (O_ij / sqrt(n_i n_j) - psi_f sqrt(n_i n_j))^2``, ``O_ij`` the pairs of trades of signals i
   and j in one cluster, is what the one factor leaves of the pairwise correlation of signals'
   sampling errors (signals trading on overlapping runs of days); it would otherwise count
   their deviations as k independent ones and make kappa too sure (measured on 100,000
   signals: 99% intervals of kappa covered 14 of 20 families without it, 20 with it).
   ``D = 1`` for independent trades and for signals that all trade on the same days.

The variance of the family's pooled rate under 2.-3. is ``sigma^2 / N + rho r sigma^2 psi (1 -
sum n_i^2 / N^2)``, the exact value under the simulator. The published ``m_f`` is the long-run
mean (the luck of the window does not carry over to new trades). Correlated trades of one
family therefore count as what they are worth: a family whose 4,000 trades fell on 700 days of
correlated markets learns its mean from about as much as 700-odd independent trades.

Cost. The per-signal ``p_i`` and the clusters' nuisance means are integrated out. The data
enter as per-family tables indexed by count: the independent model uses survival counts (signals
with more than j wins, losses, trades) and log sums, ``log BetaBinomial(w | n, a, b) =
sum_{j<w} log(a + j) + sum_{j<n-w} log(b + j) - sum_{j<n} log(a + b + j)`` up to a constant,
O(families x max trades per signal) per gradient; the clustered model uses one log-gamma per
distinct (family, count) of the signals' counts (at most families x (3 max trades per signal +
1)) and an O(families) spline for the clusters. A gradient therefore costs the same whatever the
number of signals, trades or clusters; the number of distinct counts grows with the largest
signal's trade count at most. Building the tables is O(trades) plus the cluster quadrature,
O(grid x distinct cluster counts) per family (~0.2 s for 250 clusters of ~600 trades).
Measured on 2 cores, 4 chains x (2,000 + 2,000): 100,000 signals in 20 families, 2.95 million
clustered trades (250 days per family, ``benchmarks/bench_recalibrate.py``): 31 s wall for the
tables, compile, fit, posterior predictive check and gate (the independent model: 15 s). How it
grows (compile excluded): the tables ~0.8 s per million trades; the fit with the largest number
of trades of a signal (up to 15 / 60 / 240 trades per signal at 100,000 signals: 7 / 12 / 35 s,
the last on 12 million trades), not with the number of signals (25,000 or 400,000 signals: the
same); the check is capped (a subset of 300,000 trades, ~3.3 s).

Per-signal posteriors follow conjugately from each hyperparameter draw: ``p_i | draw ~ Beta(m
kappa + wins_i, (1 - m) kappa + losses_i)``, exact for a signal's trades in different clusters
(it ignores what other signals' outcomes in its clusters say about it); the live path counts a
signal's several trades in one cluster with their effective weight (``Decider.record(...,
cluster=)``, the published ``rho``).

The model is compiled once per (number of families, parameterisation, clustered) and refitted by
swapping data.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_mem.offline.diagnostics import PValues, monte_carlo_pvalues
from bayes_mem.offline.progress import fit_progress


@dataclass(frozen=True)
class Prior:
    """One hyperprior: ``Normal(mu, sigma)`` or ``HalfNormal(sigma)``, with what it is about.

    Examples
    --------
    >>> prior = HYPERPRIORS["mu_logk"]  # typical log concentration: Normal(log 50, 1.5)
    >>> str(prior), prior.second_moment, str(HYPERPRIORS["tau"])
    ('Normal(3.91202, 1.5)', 2.25, 'HalfNormal(0.5)')
    >>> Prior("HalfNormal", 0.5).draw(np.random.default_rng(0), 3).round(3).tolist()
    [0.063, 0.066, 0.32]
    """

    dist: str
    sigma: float
    mu: float = 0.0
    about: str = ""

    def __post_init__(self) -> None:
        if self.dist not in ("Normal", "HalfNormal"):
            raise ValueError(f"unsupported prior distribution {self.dist!r}")
        if not (math.isfinite(self.sigma) and self.sigma > 0 and math.isfinite(self.mu)):
            raise ValueError(
                f"a prior needs a finite location and a finite scale > 0, got mu={self.mu!r}, "
                f"sigma={self.sigma!r}"
            )

    def __str__(self) -> str:
        if self.dist == "HalfNormal":
            return f"HalfNormal({self.sigma:g})"
        return f"Normal({self.mu:.6g}, {self.sigma:g})"

    @property
    def second_moment(self) -> float:
        """E[x^2] - E[x]^2 for Normal (its variance), E[x^2] for HalfNormal (a scale's square).

        Examples
        --------
        The variance of a Normal, ``E[x^2]`` of a HalfNormal: ``sigma^2`` either way:

        >>> HYPERPRIORS["logit_rho"].second_moment, HYPERPRIORS["tau"].second_moment
        (4.0, 0.25)
        """
        return self.sigma**2

    def rv(self, name: str, **kwargs):
        """The prior as a PyMC random variable ``name`` of the model in context (``kwargs``:
        e.g. ``dims``).

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model() as model:
        ...     tau = HYPERPRIORS["tau"].rv("tau")
        >>> model.free_RVs, tau.owner.op.name
        ([tau], 'halfnormal')
        """
        import pymc as pm

        if self.dist == "HalfNormal":
            return pm.HalfNormal(name, self.sigma, **kwargs)
        return pm.Normal(name, self.mu, self.sigma, **kwargs)

    def draw(self, rng: np.random.Generator, size=None):
        """``size`` draws of the prior from ``rng`` (numpy, no PyMC), for simulators and tests.

        Examples
        --------
        Normal(0, 1) draws, and the same standard normals folded for HalfNormal(1):

        >>> Prior("Normal", 1.0).draw(np.random.default_rng(0), 3).round(3).tolist()
        [0.126, -0.132, 0.64]
        >>> Prior("HalfNormal", 1.0).draw(np.random.default_rng(0), 3).round(3).tolist()
        [0.126, 0.132, 0.64]
        """
        x = rng.normal(0.0, self.sigma, size)
        return np.abs(x) if self.dist == "HalfNormal" else self.mu + x


#: The model's hyperpriors, written once: the model builds its variables from them, the config
#: hash records them (:data:`PRIORS`), :func:`prior_sd_ratios` and the tests' simulators read them.
HYPERPRIORS: dict[str, Prior] = {
    "eta0": Prior("Normal", 1.0, 0.0, "average family logit mean win rate"),
    "tau": Prior("HalfNormal", 0.5, about="sd of family logit means around eta0"),
    "mu_logk": Prior("Normal", 1.5, math.log(50.0), "typical log concentration (pseudo-trades)"),
    "sigma_logk": Prior("HalfNormal", 0.75, about="sd of family log concentrations"),
    "logit_rho": Prior("Normal", 2.0, -3.0, "logit intra-cluster correlation of a family"),
    "cluster_logit": Prior("Normal", 1.5, 0.0, "nuisance logit mean of cluster win counts"),
}

#: the hyperpriors as text, for the configuration hash and the fit's attributes
PRIORS = {name: str(p) for name, p in HYPERPRIORS.items()}

#: the hyperparameters the diagnostics gate checks (those present in a fit)
GATED_VARS = ["eta0", "tau", "mu_logk", "sigma_logk", "mean", "kappa", "rho"]


def gated_vars(tree) -> list[str]:
    """:data:`GATED_VARS` present in a fit (the independent model has no ``rho``).

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict(
    ...     {"posterior": {"eta0": rng.normal(0.2, 0.05, (2, 100)),
    ...                    "mean": rng.beta(55, 45, (2, 100, 2)),
    ...                    "kappa": rng.gamma(50, 1.0, (2, 100, 2))}},
    ...     coords={"family": ["a", "b"]}, dims={"mean": ["family"], "kappa": ["family"]},
    ... )  # a stand-in for a fit of two families: 2 chains of 100 draws
    >>> gated_vars(tree)  # no tau, mu_logk, sigma_logk or rho in this stand-in
    ['eta0', 'mean', 'kappa']
    """
    return [v for v in GATED_VARS if v in tree["posterior"]]


# ---------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class TradeLayout:
    """Which trade is whose: per trade its family, signal and cluster index (arrays), and whether
    it was won. Signals and clusters are numbered across families; a cluster lies in one family.
    Used by the posterior predictive check and the simulators, not by the sampler.

    Examples
    --------
    >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2", "s2", "s3"],
    ...     "won": [True, False, True, True, False], "cluster": ["d1", "d2", "d1", "d2", "d1"],
    ...     "family": ["f", "f", "f", "f", "g"]})
    >>> data = WinRateData.from_trades(trades)  # s1 and s2 of family f trade on days d1 and d2
    >>> lay = data.layout
    >>> lay.family.tolist(), lay.signal.tolist(), lay.cluster.tolist(), lay.signal_family.tolist()
    ([0, 0, 0, 0, 1], [0, 0, 1, 1, 2], [0, 1, 0, 1, 2], [0, 0, 1])
    """

    family: np.ndarray  # (T,) int
    signal: np.ndarray  # (T,) int, 0 .. S-1
    cluster: np.ndarray  # (T,) int, 0 .. C-1
    won: np.ndarray  # (T,) bool
    signal_family: np.ndarray  # (S,) int

    @property
    def n_signals(self) -> int:
        """The number of signals S (with a trade or not).

        Examples
        --------
        >>> trades = pd.DataFrame({"signal": ["s1", "s2", "s2"], "won": [True, False, True],
        ...     "cluster": ["d1", "d1", "d2"], "family": ["f", "f", "f"]})
        >>> WinRateData.from_trades(trades).layout.n_signals
        2
        """
        return int(self.signal_family.size)


@dataclass(frozen=True)
class ClusterStats:
    """Per family: the distinct per-signal counts as cells (``cell_family``, ``cell_kind`` 0 =
    wins, 1 = losses, 2 = trades, ``cell_value`` the count, ``cell_signals`` how many of the
    family's signals with at least one trade have it; ``k`` such signals per family), survival
    tables of cluster counts (``c_w[f, j]``: clusters with more than j wins; ``c_l``, ``c_n``),
    the layout summaries ``psi``, ``a_same``, ``n_tilde`` (see the module docstring), and the
    clusters' log-likelihood of ``logit rho`` with the nuisance mean integrated out, as a cubic
    spline (:func:`cluster_loglik_table`).

    Examples
    --------
    >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2", "s2", "s3"],
    ...     "won": [True, False, True, True, False], "cluster": ["d1", "d2", "d1", "d2", "d1"],
    ...     "family": ["f", "f", "f", "f", "g"]})
    >>> data = WinRateData.from_trades(trades)  # s1 and s2 of family f trade on days d1 and d2
    >>> cs = data.clusters  # psi: 4 ordered cross-signal pairs in a cluster of 16 - 8 pairs
    >>> cs.n_clusters.tolist(), cs.psi.tolist(), cs.a_same.tolist(), cs.n_tilde.tolist()
    ([2.0, 0.0], [0.5, 0.0], [0.0, 0.0], [2.0, 1.0])
    """

    cell_family: np.ndarray  # (M,) int
    cell_kind: np.ndarray  # (M,) int
    cell_value: np.ndarray  # (M,) float
    cell_signals: np.ndarray  # (M,) float
    k: np.ndarray  # (F,)
    c_w: np.ndarray  # (F, Jc) float
    c_l: np.ndarray
    c_n: np.ndarray
    psi: np.ndarray  # (F,)
    a_same: np.ndarray  # (F,)
    n_tilde: np.ndarray  # (F,)
    n_clusters: np.ndarray  # (F,) clusters with at least two trades
    rho_x: np.ndarray  # (F, G) grid of logit rho
    rho_c: np.ndarray  # (F, G - 1, 4) cubic of the cluster log-likelihood on each grid step
    luck_centred: np.ndarray  # (F,) 1.0: sample the family's realised mean directly
    rho_hat: np.ndarray  # (F,) the clusters' most likely rho (maximum of their likelihood)
    g: np.ndarray  # (F,) the signals' count scale at rho_hat
    temper: np.ndarray  # (F,) weight of the signals' likelihood, 1 / (1 + residual pairs / k)


@dataclass(frozen=True)
class WinRateData:
    """Sufficient statistics: for each family f and j = 0 .. J-1, how many of its signals have more
    than j wins (``w_surv``), losses (``l_surv``) and trades (``n_surv``); with a trade layout
    (:meth:`from_trades`) also the cluster statistics and the layout itself.

    Examples
    --------
    >>> counts = pd.DataFrame({"family": ["a", "a", "b"], "wins": [3, 0, 5], "trades": [5, 0, 8]})
    >>> data = WinRateData.from_counts(counts)
    >>> data.families, data.n_signals.tolist(), data.clustered
    (('a', 'b'), [1.0, 1.0], False)
    >>> data.w_surv[0].tolist()  # family a: one signal with more than 0, 1 and 2 wins
    [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    families: tuple[str, ...]
    w_surv: np.ndarray  # (F, J) float
    l_surv: np.ndarray
    n_surv: np.ndarray
    n_signals: np.ndarray  # (F,) signals with at least one trade
    clusters: ClusterStats | None = None
    layout: TradeLayout | None = None

    @property
    def clustered(self) -> bool:
        """Whether some cluster holds two or more trades (else the independent model is exact).

        Examples
        --------
        Two trades of family f on day d1 make it clustered; one trade per day would not:

        >>> trades = pd.DataFrame({"signal": ["s1", "s2"], "won": [True, False],
        ...     "cluster": ["d1", "d1"], "family": ["f", "f"]})
        >>> WinRateData.from_trades(trades).clustered
        True
        >>> WinRateData.from_trades(trades.assign(cluster=["d1", "d2"])).clustered
        False
        """
        return self.clusters is not None and bool(np.any(self.clusters.n_clusters > 0))

    @classmethod
    def from_counts(cls, counts: pd.DataFrame) -> WinRateData:
        """From per-signal counts (columns family, wins, trades; e.g. ``Store.signal_counts``):
        the independent model (no clusters known). Signals without trades carry no
        information; families without any still get a row.

        Examples
        --------
        Family ``b`` (one signal of 2 trades, 1 won) has one signal with more than 0 trades and more
        than 1 trade, none with more than 2:

        >>> counts = pd.DataFrame({"family": ["a", "b"], "wins": [3, 1], "trades": [4, 2]})
        >>> data = WinRateData.from_counts(counts)
        >>> data.families, data.n_surv[1][:3].tolist(), data.w_surv[1][:2].tolist()
        (('a', 'b'), [1.0, 1.0, 0.0], [1.0, 0.0])
        """
        missing = {"family", "wins", "trades"} - set(counts.columns)
        if missing:
            raise ValueError(f"counts need columns family, wins, trades; missing {sorted(missing)}")
        wins = counts["wins"].to_numpy(np.int64)
        trades = counts["trades"].to_numpy(np.int64)
        if np.any(wins < 0) or np.any(trades < wins):
            bad = int(np.argmax((wins < 0) | (trades < wins)))
            raise ValueError(
                f"counts need 0 <= wins <= trades on every row, got wins={wins[bad]}, "
                f"trades={trades[bad]} on row {bad}"
            )
        families = tuple(sorted(counts["family"].unique()))
        if not families:
            raise ValueError("no signals in the counts")
        fidx = counts["family"].map({f: i for i, f in enumerate(families)}).to_numpy()
        return cls(families, *_signal_tables(fidx, wins, trades, len(families)))

    @classmethod
    def from_trades(cls, trades: pd.DataFrame, families: Mapping[str, str] | None = None):
        """From one row per settled trade: columns signal, won, cluster (any hashable key of the
        day the trade opened, e.g. its date) and family (or ``families``: signal -> family).
        Clusters are per family: the same key in two families is two clusters. With
        ``families``, every family it names gets a row, with trades or not.

        Examples
        --------
        Families from a mapping: family ``g`` has no trades but still gets a row:

        >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2"], "won": [True, False, True],
        ...     "cluster": ["2026-03-02", "2026-03-03", "2026-03-02"]})
        >>> data = WinRateData.from_trades(trades, {"s1": "f", "s2": "f", "s3": "g"})
        >>> data.families, data.n_signals.tolist(), data.layout.cluster.tolist()
        (('f', 'g'), [2.0, 0.0], [0, 1, 0])
        """
        need = {"signal", "won", "cluster"} | (set() if families is not None else {"family"})
        missing = need - set(trades.columns)
        if missing:
            raise ValueError(f"trades need columns {sorted(need)}; missing {sorted(missing)}")
        if len(trades) == 0:
            raise ValueError("no trades")
        frame = trades[["signal", "won", "cluster"]].copy()
        if families is not None:
            frame["family"] = trades["signal"].map(families)
            if frame["family"].isna().any():
                unknown = sorted(set(trades["signal"][frame["family"].isna()]))[:5]
                raise ValueError(f"signals without a family: {unknown}")
        else:
            frame["family"] = trades["family"].to_numpy()
        if frame["cluster"].isna().any():
            raise ValueError(
                f"trades need a cluster key on every row; row "
                f"{int(np.argmax(frame['cluster'].isna().to_numpy()))} has none"
            )
        won = frame["won"].to_numpy()
        if won.dtype != bool and not np.isin(won, (0, 1)).all():
            raise ValueError(f"won must be true/false, got {won[~np.isin(won, (0, 1))][0]!r}")
        won = won.astype(bool)
        fam_names = set(frame["family"].unique())
        fam_names = tuple(sorted(fam_names | set(families.values() if families else ())))
        fidx = frame["family"].map({f: i for i, f in enumerate(fam_names)}).to_numpy(np.int64)
        sig_codes, sig_names = pd.factorize(frame["signal"], sort=True)
        sig_codes = sig_codes.astype(np.int64)
        n_sig = len(sig_names)
        sig_fam = np.full(n_sig, -1)
        sig_fam[sig_codes] = fidx
        clash = np.flatnonzero(sig_fam[sig_codes] != fidx)
        if clash.size:
            raise ValueError(f"signal {sig_names[sig_codes[clash[0]]]!r} is in two families")
        cl_codes = pd.factorize(pd.MultiIndex.from_arrays([fidx, frame["cluster"].to_numpy()]))[0]
        cl_codes = cl_codes.astype(np.int64)
        layout = TradeLayout(fidx, sig_codes, cl_codes, won, sig_fam)
        return cls.from_layout(layout, fam_names)

    @classmethod
    def from_layout(cls, layout: TradeLayout, families: tuple[str, ...]) -> WinRateData:
        """The tables of a trade layout (its ``won`` are the outcomes).

        Examples
        --------
        The same layout with other outcomes (as the posterior predictive check simulates them):

        >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2"], "won": [True, False, True],
        ...     "cluster": ["d1", "d2", "d1"], "family": ["f", "f", "f"]})
        >>> data = WinRateData.from_trades(trades)
        >>> import dataclasses
        >>> lost = dataclasses.replace(data.layout, won=np.zeros(3, bool))
        >>> WinRateData.from_layout(lost, data.families).w_surv[0][:1].tolist()  # no signal won
        [0.0]
        """
        n_fam = len(families)
        w_sig = np.bincount(layout.signal, weights=layout.won, minlength=layout.n_signals)
        n_sig = np.bincount(layout.signal, minlength=layout.n_signals)
        w_sig, n_sig = w_sig.astype(np.int64), n_sig.astype(np.int64)
        tables = _signal_tables(layout.signal_family, w_sig, n_sig, n_fam)
        n_cl = int(layout.cluster.max()) + 1
        cl_fam = np.zeros(n_cl, np.int64)
        cl_fam[layout.cluster] = layout.family
        w_cl = np.bincount(layout.cluster, weights=layout.won, minlength=n_cl).astype(np.int64)
        n_cl_t = np.bincount(layout.cluster, minlength=n_cl).astype(np.int64)
        c_w, c_l, c_n = _survival(cl_fam, [w_cl, n_cl_t - w_cl, n_cl_t], n_fam)
        # pairs of trades in one cluster: all, and those of one signal (cells = signal x cluster:
        # the signals x clusters count matrix, duplicates summed by its sparse construction)
        counts = _cell_counts(layout, n_cl)
        n_cell = counts.data
        cell_sig = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        cell_fam = layout.signal_family[cell_sig]
        pairs_all = np.bincount(cl_fam, weights=n_cl_t * (n_cl_t - 1.0), minlength=n_fam)
        pairs_same = np.bincount(cell_fam, weights=n_cell * (n_cell - 1.0), minlength=n_fam)
        big_n = np.bincount(layout.signal_family, weights=n_sig, minlength=n_fam)
        sum_sq = np.bincount(layout.signal_family, weights=n_sig.astype(float) ** 2,
                             minlength=n_fam)  # fmt: skip
        cross = np.maximum(pairs_all - pairs_same, 0.0)
        denom = big_n**2 - sum_sq
        with np.errstate(divide="ignore", invalid="ignore"):
            psi = np.where(denom > 0, cross / np.where(denom > 0, denom, 1.0), 0.0)
            a_same = np.where(big_n > 0, pairs_same / np.maximum(big_n, 1.0), 0.0)
            n_tilde = np.where(big_n > 0, sum_sq / np.maximum(big_n, 1.0), 0.0)
        used = n_sig > 0
        cells = []
        for kind, values in enumerate((w_sig, n_sig - w_sig, n_sig)):
            key = layout.signal_family[used] * (int(n_sig.max()) + 1) + values[used]
            uniq, cnt = np.unique(key, return_counts=True)
            fam_, val = np.divmod(uniq, int(n_sig.max()) + 1)
            cells.append((fam_, np.full(uniq.size, kind), val.astype(float), cnt.astype(float)))
        cell = [np.concatenate(c) for c in zip(*cells, strict=True)]
        k = np.bincount(layout.signal_family[used], minlength=n_fam).astype(float)
        multi = np.bincount(cl_fam, weights=n_cl_t >= 2, minlength=n_fam)
        cl_tables = [cluster_loglik_table(w_cl[cl_fam == f], n_cl_t[cl_fam == f])
                     for f in range(n_fam)]  # fmt: skip
        rho_x, rho_c = _spline_tables(cl_tables)
        # the luck's sd at the clusters' most likely rho against the family mean's own sd (no
        # floor on rho: a family whose clusters say rho ~ 1e-4 has a luck of sd ~ 1e-3 and
        # centred, it is a funnel in (rho, luck): issue 17, 300,000 x 100, one divergence and
        # the lowest ESS of the fit in that family)
        rho_hat = np.array([1.0 / (1.0 + math.exp(-x[np.argmax(y)])) for x, y in cl_tables])
        luck = np.sqrt(rho_hat * psi / 0.25)
        centred = (luck > _own_sd(big_n, k)).astype(float)
        g = 1.0 / np.maximum(1.0 + rho_hat * (a_same - psi * n_tilde), G_FLOOR)
        g = np.where(np.abs(g - 1.0) <= G_TOL, 1.0, g)  # the exact Beta-Binomial, 3x cheaper
        temper = 1.0 / (
            1.0 + rho_hat**2 * _residual_pairs(layout, n_sig, psi, cross, counts) / np.maximum(k, 1)
        )
        stats = ClusterStats(*cell, k, c_w, c_l, c_n, psi, a_same, n_tilde, multi, rho_x, rho_c,
                             centred, rho_hat, g, temper)  # fmt: skip
        return cls(families, *tables, clusters=stats, layout=layout)


def _survival(fidx: np.ndarray, columns: list[np.ndarray], n_fam: int) -> list[np.ndarray]:
    """For each column of counts, the (families x max count) table of how many rows of each
    family have more than j (j = 0 .. max - 1)."""
    j_max = max(max(int(c.max()) if c.size else 0 for c in columns), 1)
    out = []
    for values in columns:
        hist = np.zeros((n_fam, j_max + 1))
        np.add.at(hist, (fidx, values), 1.0)  # hist[f, v]: rows with exactly v
        out.append(hist[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:])  # [f, j]: rows with > j
    return out


def _signal_tables(fidx, wins, trades, n_fam):
    w, l_, n = _survival(fidx, [wins, trades - wins, trades], n_fam)
    n_signals = np.bincount(fidx[trades > 0], minlength=n_fam).astype(float)
    return w, l_, n, n_signals


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(20)
RHO_GRID = (-16.0, 12.0)  # logit rho covered by the tables (the prior: -6.5 .. +7.5 sd)
G_FLOOR = 0.05  # 1 / g is at least this: counts scaled up at most 20-fold
G_TOL = 0.05  # a count scale within this of 1 is taken as 1 (see the module docstring)
_SPLINE_SHIFT = 1000.0  # family f's spline grid sits at logit rho + f * this in one sorted array


def cluster_loglik(
    logit_rho: np.ndarray, wins: np.ndarray, trades: np.ndarray, *, newton: int = 40
) -> np.ndarray:
    """Log-likelihood of a family's cluster win counts at each ``logit_rho``: ``log integral
    prod_c BetaBinomial(wins_c | trades_c, mu nu, (1 - mu) nu) p(logit mu) dlogit mu`` up to
    the binomial coefficients, ``nu = (1 - rho) / rho``, ``logit mu ~ HYPERPRIORS
    ["cluster_logit"]``; the integral by adaptive Gauss-Hermite quadrature (20 nodes around the
    mode found by Newton's method). Vectorised over ``logit_rho``; costs O(grid x distinct
    counts).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lay = TradeLayout(np.zeros(2000, int), rng.integers(0, 50, 2000),
    ...                   np.repeat(np.arange(200), 10), np.zeros(2000, bool), np.zeros(50, int))
    >>> won = simulate_outcomes(lay, np.array([0.55]), np.array([50.0]), np.array([0.3]),
    ...                         np.random.default_rng(1))
    >>> wins, trades = np.bincount(lay.cluster, weights=won).astype(int), np.full(200, 10)
    >>> x = np.linspace(-6.0, 3.0, 91)  # logit rho
    >>> best = x[np.argmax(cluster_loglik(x, wins, trades))]
    >>> round(float(1.0 / (1.0 + np.exp(-best))), 2)  # the most likely rho; simulated at 0.3
    0.25
    """
    from scipy import special

    x = np.asarray(logit_rho, float)
    prior = HYPERPRIORS["cluster_logit"]
    vw, hw = np.unique(wins, return_counts=True)  # distinct counts
    vl, hl = np.unique(trades - wins, return_counts=True)
    vn, hn = np.unique(trades, return_counts=True)
    nu = np.exp(-x)  # (1 - rho) / rho
    n_c = float(trades.size)
    if n_c == 0:
        return np.zeros_like(x)

    def parts(u: np.ndarray, order: int):
        """``order`` 0: ``(f,)``, f(u) = loglik + log prior at logit mu = u (shape of u);
        ``order`` 2: its first two derivatives in u (what Newton's method needs)."""
        mu = special.expit(u)
        a, b = (mu * nu.reshape(nu.shape + (1,) * (u.ndim - nu.ndim)),
                (1 - mu) * nu.reshape(nu.shape + (1,) * (u.ndim - nu.ndim)))  # fmt: skip
        nn = nu.reshape(nu.shape + (1,) * (u.ndim - nu.ndim))

        def g(fn, base, values, counts):
            return fn(base[..., None] + values) @ counts - n_c * fn(base)

        if order == 0:
            f = g(special.gammaln, a, vw, hw) + g(special.gammaln, b, vl, hl)
            return (f - g(special.gammaln, nn, vn, hn) - 0.5 * ((u - prior.mu) / prior.sigma) ** 2,)
        d = mu * (1 - mu)
        sa = g(special.digamma, a, vw, hw)
        sb = g(special.digamma, b, vl, hl)
        df = nn * d * (sa - sb) - (u - prior.mu) / prior.sigma**2
        ta = g(_trigamma, a, vw, hw)
        tb = g(_trigamma, b, vl, hl)
        d2 = nn * d * (1 - 2 * mu) * (sa - sb) + (nn * d) ** 2 * (ta + tb) - 1 / prior.sigma**2
        return df, d2

    pooled = (wins.sum() + 0.5) / (trades.sum() + 1.0)
    u = np.full(x.shape, math.log(pooled / (1 - pooled)))
    for _ in range(newton):  # the log-likelihood is concave in logit mu near its mode
        df, d2 = parts(u, 2)
        step = np.where(d2 < 0, -df / np.minimum(d2, -1e-12), np.sign(df) * 0.5)
        u = u + np.clip(step, -1.0, 1.0)
        if np.all(np.abs(step) < 1e-10):
            break
    _, d2 = parts(u, 2)
    sd = 1.0 / np.sqrt(np.maximum(-d2, 1e-12))
    nodes = u[..., None] + math.sqrt(2.0) * sd[..., None] * _GH_NODES
    (f,) = parts(nodes, 0)
    log_w = np.log(_GH_WEIGHTS) + _GH_NODES**2
    top = f.max(axis=-1, keepdims=True)
    integral = top[..., 0] + np.log(np.sum(np.exp(f - top + log_w), axis=-1))
    return integral + np.log(math.sqrt(2.0) * sd) - math.log(prior.sigma * math.sqrt(2 * math.pi))


def _trigamma(z: np.ndarray) -> np.ndarray:
    """polygamma(1, z) for z > 0: recurrence to z >= 6, then the asymptotic series (relative
    error < 1e-10); several times faster than scipy's Hurwitz zeta."""
    z = np.asarray(z, float)
    out = np.zeros_like(z)
    for _ in range(6):
        small = z < 6.0
        if not small.any():
            break
        out = out + np.where(small, 1.0 / (z * z), 0.0)
        z = np.where(small, z + 1.0, z)
    r = 1.0 / z
    r2 = r * r
    series = r + r2 / 2 + r * r2 * (1 / 6 - r2 * (1 / 30 - r2 * (1 / 42 - r2 / 30)))
    return out + series


def cluster_loglik_table(wins: np.ndarray, trades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cluster_loglik` of one family on a grid of logit rho over :data:`RHO_GRID`: a
    coarse grid (step 0.25), refined twice around its maximum (to +-8 posterior sd), so the
    spline of it is accurate to better than 1e-6 where the likelihood has its mass.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lay = TradeLayout(np.zeros(2000, int), rng.integers(0, 50, 2000),
    ...                   np.repeat(np.arange(200), 10), np.zeros(2000, bool), np.zeros(50, int))
    >>> won = simulate_outcomes(lay, np.array([0.55]), np.array([50.0]), np.array([0.3]),
    ...                         np.random.default_rng(1))
    >>> wins, trades = np.bincount(lay.cluster, weights=won).astype(int), np.full(200, 10)
    >>> x, y = cluster_loglik_table(wins, trades)
    >>> x.size, round(float(1.0 / (1.0 + np.exp(-x[np.argmax(y)]))), 3)
    (209, 0.243)
    """
    lo, hi = RHO_GRID
    x = np.linspace(lo, hi, 113)
    y = cluster_loglik(x, wins, trades)
    for _ in range(2):
        k = int(np.argmax(y))
        if 0 < k < x.size - 1:
            h = (x[k + 1] - x[k - 1]) / 2
            curv = (y[k + 1] - 2 * y[k] + y[k - 1]) / h**2
            half = min(max(8.0 / math.sqrt(max(-curv, 1e-12)), 2 * h), 4.0)
        else:
            half = 1.0
        fine = np.linspace(max(x[k] - half, lo), min(x[k] + half, hi), 48)
        x, y = np.r_[x, fine], np.r_[y, cluster_loglik(fine, wins, trades)]
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        keep = np.r_[True, np.diff(x) > 1e-6]  # no near-duplicate knots
        x, y = x[keep], y[keep]
    return x, y


def _spline_tables(tables: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Natural cubic splines of several (x, y) tables, padded to a common length (flat beyond
    each table's end): grids (F, G) and coefficients (F, G - 1, 4), ``y = c0 + c1 t + c2 t^2 +
    c3 t^3`` with t the distance from the step's left end."""
    from scipy.interpolate import CubicSpline

    size = max(x.size for x, _ in tables)
    xs, cs = [], []
    for x, y in tables:
        pad = size - x.size
        x = np.r_[x, x[-1] + 1.0 + np.arange(pad)]
        y = np.r_[y, np.full(pad, y[-1])]
        c = CubicSpline(x, y, bc_type="natural").c[::-1].T.copy()  # (G - 1, 4), low power first
        if pad:
            c[-pad:] = [y[-1], 0.0, 0.0, 0.0]
        xs.append(x)
        cs.append(c)
    return np.array(xs), np.array(cs)


def _cell_counts(layout: TradeLayout, n_clusters: int):
    """The signals x clusters matrix of trade counts (CSR, canonical: one entry per non-empty
    (signal, cluster) cell, the trades of a cell summed); O(trades), no hashing."""
    from scipy import sparse

    ones = np.ones(layout.signal.size)
    out = sparse.csr_matrix((ones, (layout.signal, layout.cluster)),
                            shape=(layout.n_signals, n_clusters))  # fmt: skip
    out.sum_duplicates()
    return out


def _residual_pairs(
    layout: TradeLayout, n_sig: np.ndarray, psi: np.ndarray, cross: np.ndarray, counts
) -> np.ndarray:
    """Per family, ``sum_{i != j} (O_ij / sqrt(n_i n_j) - psi sqrt(n_i n_j))^2`` with ``O_ij``
    the pairs of trades of signals i and j in one cluster: the squared correlations between
    signals' sampling errors that the family luck does not explain (per unit rho^2). Computed
    as ``||B'B||_F^2`` minus its diagonal, ``B = diag(n)^(-1/2) x (signals x clusters counts)``
    (``counts``: :func:`_cell_counts`), so without forming signal pairs: one sparse product over
    all families at once (``B`` is block-diagonal by family, a cluster being in one family),
    O(sum_i n_i^2)."""
    from scipy import sparse

    n_fam = psi.size
    n_i = np.maximum(n_sig, 1).astype(float)
    b = sparse.diags(1.0 / np.sqrt(n_i)) @ counts
    btb = (b.T @ b).tocoo()
    cl_fam = np.zeros(btb.shape[0], np.int64)
    cl_fam[layout.cluster] = layout.family
    frob = np.bincount(cl_fam[btb.row], weights=btb.data**2, minlength=n_fam)
    o_ii = np.asarray(counts.multiply(counts).sum(axis=1)).ravel()  # sum_c n_ic^2 per signal
    diag = np.bincount(layout.signal_family, weights=(o_ii / n_i) ** 2, minlength=n_fam)
    return np.maximum(frob - diag - psi * cross, 0.0)


def _own_sd(trades: np.ndarray, signals: np.ndarray) -> np.ndarray:
    """Approximate sd of each family's logit mean from its own trades alone (Beta-Binomial
    overdispersion at kappa 30), as in :func:`centred_means`."""
    per_signal = trades / np.maximum(signals, 1)
    n_eff = trades / (1.0 + np.maximum(per_signal - 1.0, 0.0) / 31.0)
    return 1.0 / np.sqrt(0.25 * np.maximum(n_eff, 1.0))


CENTRE_BELOW = 0.02  # data-only sd of every family's logit mean below which eta is centred


def centred_means(data: WinRateData) -> bool:
    """Whether every family is so well determined by its own data (approximate sd of its logit
    mean below ``CENTRE_BELOW``, 1/25 of tau's prior scale) that the centred parameterisation
    mixes better. Measured: 100,000 signals in 20 families, non-centred: bulk ESS ~300 of
    16,000 draws, R-hat up to 1.017; centred: ESS ~27,000, R-hat 1.001. On 4 families of 75
    signals the centred one diverged (14-59 transitions) and the non-centred one passes.
    Clustered data count their design effect at an intra-cluster correlation of 0.2.

    Examples
    --------
    >>> few = pd.DataFrame({"family": ["a", "b"], "wins": [30, 40], "trades": [50, 80]})
    >>> centred_means(WinRateData.from_counts(few))  # logit sd ~0.3: non-centred
    False
    >>> many = pd.DataFrame({"family": ["a"] * 500, "wins": [300] * 500, "trades": [500] * 500})
    >>> centred_means(WinRateData.from_counts(many))
    True
    """
    total = data.n_surv.sum(axis=1)  # total trades per family: sum_j (signals with > j trades)
    signals = np.maximum(data.n_signals, 1)
    per_signal = total / signals
    n_eff = total / (1.0 + np.maximum(per_signal - 1.0, 0.0) / 31.0)  # overdispersion at kappa 30
    var = 1.0 / (0.25 * np.maximum(n_eff, 1.0))
    if data.clustered:  # the family luck at rho = 0.2
        var = var + 0.2 * data.clusters.psi / 0.25
    return bool(np.all(np.sqrt(var) < CENTRE_BELOW))


def centred_concentrations(data: WinRateData) -> bool:
    """Whether the families' log concentrations are sampled centred: where the means are
    (:func:`centred_means`), or where every family's concentration alone is pinned by its
    signals (approximate sd of its log concentration from its own data below
    ``CENTRE_LOGK_BELOW``, 1/15 of ``sigma_logk``'s prior scale). The second arises with
    clustered trades, whose family luck keeps the means uncertain long after the
    concentrations are known. Measured (issue 17, 1,000,000 signals in 100 families, 10,000
    a family): with the log concentrations non-centred, ``mu_logk`` mixed slowly
    (bulk ESS 332 of 8,000 draws at target acceptance 0.9, gate failed, session 6); centred,
    the gate passed (R-hat 1.006, bulk ESS 776, session 8) with the means still non-centred.

    Examples
    --------
    >>> few = pd.DataFrame({"family": ["a", "b"], "wins": [30, 40], "trades": [50, 80]})
    >>> centred_concentrations(WinRateData.from_counts(few))
    False
    """
    if centred_means(data):
        return True
    return bool(np.all(_own_logk_sd(data) < CENTRE_LOGK_BELOW))


def _own_logk_sd(data: WinRateData) -> np.ndarray:
    """Approximate sd of each family's log concentration from its own signals: the between-signal
    variance m (1 - m) / (kappa + 1) estimated from n signals of t trades on average has relative
    sd ``sqrt(2 / n) (1 + (kappa + 1) / t)`` (at kappa 30, as in :func:`centred_means`)."""
    total = data.n_surv.sum(axis=1)
    signals = np.maximum(data.n_signals, 1).astype(float)
    per_signal = np.maximum(total / signals, 1.0)
    return np.sqrt(2.0 / signals) * (1.0 + 31.0 / per_signal)


CENTRE_LOGK_BELOW = 0.05  # data-only sd of every family's log concentration: centred below


# ---------------------------------------------------------------------------------- model
def build_model(data: WinRateData):
    """The PyMC model of the family win rates for ``data`` (see the module docstring): the
    independent model, or the clustered one when some cluster holds two or more trades; family
    means centred or not by :func:`centred_means`. Not compiled: :class:`WinRateModel` compiles
    and fits it.

    Examples
    --------
    >>> counts = pd.DataFrame({"family": ["a", "a", "b"], "wins": [3, 1, 5], "trades": [5, 4, 8]})
    >>> model = build_model(WinRateData.from_counts(counts))  # no clusters: the independent model
    >>> model.coords["family"], sorted(v.name for v in model.free_RVs)
    (('a', 'b'), ['eta0', 'mu_logk', 'sigma_logk', 'tau', 'z', 'zk'])
    """
    import pymc as pm
    import pytensor.tensor as pt

    hp = HYPERPRIORS
    coords = {"family": list(data.families)}
    clustered = data.clustered
    with pm.Model(coords=coords) as model:
        eta0 = hp["eta0"].rv("eta0")
        tau = hp["tau"].rv("tau")
        mu_logk = hp["mu_logk"].rv("mu_logk")
        sigma_logk = hp["sigma_logk"].rv("sigma_logk")
        # family deviations d ~ ZeroSumNormal(tau): eta0 is exactly the average family logit mean
        if centred_means(data):  # data-rich families: centred
            eta = eta0 + pm.ZeroSumNormal("d", sigma=tau, dims="family")
        else:  # data-poor families: non-centred
            eta = eta0 + tau * pm.ZeroSumNormal("z", sigma=1.0, dims="family")
        if centred_concentrations(data):
            logk = pm.Normal("logk", mu_logk, sigma_logk, dims="family")
        else:
            logk = mu_logk + sigma_logk * pm.Normal("zk", 0.0, 1.0, dims="family")
        mean = pm.Deterministic("mean", pm.math.invlogit(eta), dims="family")
        kappa = pm.Deterministic("kappa", pm.math.exp(logk), dims="family")
        if not clustered:
            w_surv = pm.Data("w_surv", data.w_surv)
            l_surv = pm.Data("l_surv", data.l_surv)
            n_surv = pm.Data("n_surv", data.n_surv)
            j = pm.Data("j", np.arange(data.w_surv.shape[1], dtype=float))
            a = (mean * kappa)[:, None]
            b = ((1.0 - mean) * kappa)[:, None]
            loglik = w_surv * pm.math.log(a + j) + l_surv * pm.math.log(b + j)
            loglik = loglik - n_surv * pm.math.log(a + b + j)
            pm.Potential("loglik", loglik.sum())
            return model
        d = {k: pm.Data(k, v) for k, v in _cluster_arrays(data).items()}
        logit_rho = hp["logit_rho"].rv("logit_rho", dims="family")
        rho = pm.Deterministic("rho", pm.math.invlogit(logit_rho), dims="family")
        # m (1 - m) at the family's observed pooled win rate (data, :func:`observed_variance`),
        # not at its long-run mean: see "Where the luck's scale is evaluated" in the docstring
        var_p = d["var_hat"]
        # r: the covariance of two trades of unlike signals sharing a uniform, over that of alike
        # ones (E min(p_a, p_b) - m^2 over m (1 - m), p_a, p_b from the family's Beta)
        r = pt.clip(1.0 - pt.sqrt(var_p / (kappa + 1.0) / np.pi) / var_p, 0.05, 1.0)
        # 1. cluster totals: their log-likelihood (nuisance mean integrated out) is a cubic
        # spline per family in the logit of their effective correlation rho r
        xg, cg = d["rho_x"], d["rho_c"]  # (F * G,) grids, family f's shifted by f * SHIFT
        rr = rho * r
        lr = pt.clip(pt.log(rr) - pt.log1p(-rr), RHO_GRID[0], RHO_GRID[1])
        shifted = lr + _SPLINE_SHIFT * pt.arange(lr.shape[0])
        step = pt.extra_ops.searchsorted(xg, shifted, side="right") - 1
        t = shifted - xg[step]
        c = cg[step]
        ll_c = c[:, 0] + t * (c[:, 1] + t * (c[:, 2] + t * c[:, 3]))
        # 2. family luck
        luck_sd = pt.sqrt(rr / var_p) * d["sqrt_psi"]
        # the family's realised logit mean over the window: eta + luck_sd z, z ~ Normal(0, 1);
        # sampled directly (centred) where the luck is wider than the data's own sd, as z
        # (non-centred) elsewhere (``luck_centred``, from the data at the clusters' rho)
        cen = d["luck_centred"]
        x = pm.Normal("luck", 0.0, 1.0, dims="family")  # centred families: this density is
        sd_c = pt.maximum(luck_sd, 1e-8)  # swapped for Normal(eta, luck_sd) by the potential
        eta_t = pt.switch(cen, x, eta + luck_sd * x)
        pm.Potential("luck_prior", pt.switch(
            cen, 0.5 * x**2 - 0.5 * ((x - eta) / sd_c) ** 2 - pt.log(sd_c), 0.0
        ).sum())  # fmt: skip
        m_t = pm.Deterministic("window_mean", pm.math.invlogit(eta_t), dims="family")
        # 3. signals: Beta-Binomial at counts scaled by g (data: at the clusters' most likely
        # rho), sum over signals of log B(a + g w, b + g l) - log B(a, b), weighted by temper:
        # log sums over survival counts for families with g = 1, one log-gamma per distinct
        # (family, kind, count) cell for the others
        g, tw = d["g"], d["temper"]
        a, b = m_t * kappa, (1.0 - m_t) * kappa
        j = d["j"]
        ll_s = d["w_surv"] * pt.log(a[:, None] + j) + d["l_surv"] * pt.log(b[:, None] + j)
        ll_s = ((ll_s - d["n_surv"] * pt.log((a + b)[:, None] + j)).sum(axis=1) * tw).sum()
        gl = pt.gammaln
        for kind, base in (("w", a), ("l", b), ("n", a + b)):
            cf = d[f"cell_family_{kind}"]
            term = (
                d[f"cell_signals_{kind}"] * tw[cf] * gl(base[cf] + g[cf] * d[f"cell_value_{kind}"])
            )
            ll_s = ll_s + (term.sum() if kind != "n" else -term.sum())
        ll_s = ll_s - (d["k"] * tw * (gl(a) + gl(b) - gl(a + b))).sum()
        pm.Potential("loglik", ll_c.sum() + ll_s.sum())
    return model


def _cluster_arrays(data: WinRateData) -> dict[str, np.ndarray]:
    """The clustered model's data: families with ``g = 1`` through the survival tables (their
    cells dropped), the others through cells (their survival rows zeroed)."""
    cs = data.clusters
    exact = cs.g == 1.0
    keep = ~exact[cs.cell_family.astype(np.int64)]
    out = {
        "rho_x": (cs.rho_x + _SPLINE_SHIFT * np.arange(cs.rho_x.shape[0])[:, None]).ravel(),
        "rho_c": np.concatenate([cs.rho_c, cs.rho_c[:, -1:]], axis=1).reshape(-1, 4),
        "luck_centred": cs.luck_centred, "g": cs.g, "temper": cs.temper,
        "k": np.where(exact, 0.0, cs.k), "sqrt_psi": np.sqrt(cs.psi),
        "var_hat": observed_variance(data),
        "w_surv": data.w_surv * exact[:, None], "l_surv": data.l_surv * exact[:, None],
        "n_surv": data.n_surv * exact[:, None], "j": np.arange(data.w_surv.shape[1], dtype=float),
    }  # fmt: skip
    for i, kind in enumerate("wln"):
        sel = keep & (cs.cell_kind == i)
        out[f"cell_family_{kind}"] = cs.cell_family[sel].astype(np.int64)
        out[f"cell_value_{kind}"] = cs.cell_value[sel]
        out[f"cell_signals_{kind}"] = cs.cell_signals[sel]
    return out


def observed_variance(data: WinRateData) -> np.ndarray:
    """Per family, ``p^ (1 - p^)`` at its pooled win rate ``p^ = (wins + 0.5) / (trades + 1)``
    over the fitted window (dimensionless): where the clustered model evaluates the binomial
    variance in the luck's logit-scale sd and in ``r`` (see the module docstring).

    Examples
    --------
    >>> counts = pd.DataFrame({"family": ["a", "a", "b"], "wins": [3, 0, 5], "trades": [5, 0, 8]})
    >>> observed_variance(WinRateData.from_counts(counts)).round(4).tolist()
    [0.2431, 0.2377]
    >>> p_a = (3 + 0.5) / (5 + 1)
    >>> round(p_a * (1 - p_a), 4)
    0.2431
    """
    wins = data.w_surv.sum(axis=1)  # sum_j (signals with > j wins) = the family's wins
    trades = data.n_surv.sum(axis=1)
    p_hat = (wins + 0.5) / (trades + 1.0)
    return p_hat * (1.0 - p_hat)


def _data_arrays(data: WinRateData) -> dict[str, np.ndarray]:
    if data.clustered:
        return _cluster_arrays(data)
    j = np.arange(data.w_surv.shape[1], dtype=float)
    return {"w_surv": data.w_surv, "l_surv": data.l_surv, "n_surv": data.n_surv, "j": j}


class WinRateModel:
    """Compile-once, refit-many wrapper (nutpie). One compiled model per (number of families,
    parameterisation, clustered or not).

    Examples
    --------
    >>> model = WinRateModel()  # nothing compiled until the first fit of a given shape
    >>> isinstance(default_model(), WinRateModel)
    True
    """

    def __init__(self) -> None:
        self._compiled: dict[tuple[int, bool, bool], object] = {}
        self._lock = threading.Lock()

    def compiled(self, data: WinRateData):
        """The model for ``data`` compiled by nutpie (cached by shape) with ``data``'s tables set.

        Examples
        --------
        Compiling takes about ten seconds, so it is not run here; the cache key is cheap:

        >>> counts = pd.DataFrame({"family": ["a", "b"], "wins": [3, 1], "trades": [4, 2]})
        >>> data = WinRateData.from_counts(counts)
        >>> (len(data.families), centred_means(data), data.clustered)  # one compiled model per key
        (2, False, False)
        >>> compiled = WinRateModel().compiled(data)  # doctest: +SKIP
        """
        from bayes_mem.offline.compile_cache import compile_model

        key = (len(data.families), centred_means(data), centred_concentrations(data),
               data.clustered)  # fmt: skip
        with self._lock:
            if key not in self._compiled:
                self._compiled[key] = compile_model(build_model(data))
            base = self._compiled[key]
        return base.with_data(**_data_arrays(data))

    def fit(
        self,
        data: WinRateData,
        *,
        draws: int = 2000,
        tune: int = 2000,
        chains: int = 4,
        target_accept: float = 0.99,
        seed: int = 0,
    ):
        """Posterior DataTree (nutpie, seeded), with family names as coordinates. Defaults:
        4 chains x 2,000 draws after 2,000 tuning steps at target acceptance 0.99 (1,000 tuning
        steps left divergences on 4 data-poor families).

        Examples
        --------
        Sampling takes seconds to minutes, so the call is not run here (see :func:`fit_gated` for a
        stand-in of the whole flow):

        >>> counts = pd.DataFrame({"family": ["a", "b"], "wins": [30, 12], "trades": [50, 25]})
        >>> tree = WinRateModel().fit(WinRateData.from_counts(counts), draws=500)  # doctest: +SKIP
        >>> list(tree["posterior"]["family"].values)  # doctest: +SKIP
        ['a', 'b']
        """
        import nutpie

        tree = nutpie.sample(
            self.compiled(data),
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            target_accept=target_accept,
            progress_bar=False,
            progress_callback=fit_progress(f"win-rate fit ({len(data.families)} families)"),
        )
        post = tree["posterior"].to_dataset().assign_coords(family=list(data.families))
        tree["posterior"] = post
        if data.clustered:  # families with a cluster of two or more trades: rho matters there
            tree.attrs["rho_matters"] = [int(x) for x in rho_matters(data)]
        return tree


_DEFAULT = WinRateModel()


def default_model() -> WinRateModel:
    """The process-wide compile cache: every fit in a process with the same number of families
    and parameterisation reuses one compiled model.

    Examples
    --------
    >>> default_model() is default_model()
    True
    """
    return _DEFAULT


def _stacked(post, name: str) -> np.ndarray:
    return post[name].stack(sample=("chain", "draw")).transpose("sample", "family").values


def hyper_draws(tree, n: int | None = None, rng: np.random.Generator | None = None):
    """(mean, kappa) posterior draws per family, arrays (draws, families); optionally ``n``
    draws taken without replacement.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict(
    ...     {"posterior": {"eta0": rng.normal(0.2, 0.05, (2, 100)),
    ...                    "mean": rng.beta(55, 45, (2, 100, 2)),
    ...                    "kappa": rng.gamma(50, 1.0, (2, 100, 2))}},
    ...     coords={"family": ["a", "b"]}, dims={"mean": ["family"], "kappa": ["family"]},
    ... )  # a stand-in for a fit of two families: 2 chains of 100 draws
    >>> mean, kappa = hyper_draws(tree, 5, np.random.default_rng(0))
    >>> mean.shape, kappa.shape
    ((5, 2), (5, 2))
    """
    out = family_draws(tree, n, rng)
    return out["mean"], out["kappa"]


def family_draws(tree, n: int | None = None, rng: np.random.Generator | None = None):
    """Posterior draws per family as arrays (draws, families): ``mean``, ``kappa`` and ``rho``
    (the intra-cluster correlation; zeros for the independent model); optionally ``n`` draws
    taken without replacement (with replacement when ``n`` exceeds the posterior's draws).

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict(
    ...     {"posterior": {"eta0": rng.normal(0.2, 0.05, (2, 100)),
    ...                    "mean": rng.beta(55, 45, (2, 100, 2)),
    ...                    "kappa": rng.gamma(50, 1.0, (2, 100, 2))}},
    ...     coords={"family": ["a", "b"]}, dims={"mean": ["family"], "kappa": ["family"]},
    ... )  # a stand-in for a fit of two families: 2 chains of 100 draws
    >>> draws = family_draws(tree)
    >>> draws["mean"].shape, float(draws["rho"].max())  # no rho: the independent model's zeros
    ((200, 2), 0.0)
    >>> family_draws(tree, 5, np.random.default_rng(0))["kappa"].shape
    (5, 2)
    """
    post = tree["posterior"]
    out = {"mean": _stacked(post, "mean"), "kappa": _stacked(post, "kappa")}
    out["rho"] = _stacked(post, "rho") if "rho" in post else np.zeros_like(out["mean"])
    if n is not None:
        total = out["mean"].shape[0]
        pick = (rng or np.random.default_rng(0)).choice(total, n, replace=n > total)
        out = {k: v[pick] for k, v in out.items()}
    return out


# ---------------------------------------------------------------------------------- simulation
def simulate_outcomes(
    layout: TradeLayout,
    mean: np.ndarray,
    kappa: np.ndarray,
    rho: np.ndarray | None,
    rng: np.random.Generator,
    *,
    p: np.ndarray | None = None,
) -> np.ndarray:
    """Won/lost for every trade of ``layout`` under the model: ``p_i ~ Beta(m kappa, (1 - m)
    kappa)`` per signal (or the given ``p``), and within each cluster a Chinese restaurant with
    concentration ``nu_f = (1 - rho_f) / rho_f``: trade k of a cluster (in layout order) reuses
    the uniform of a uniformly chosen earlier trade of the cluster with probability ``k / (nu +
    k)``, else draws a fresh one; it wins iff its uniform is below its signal's ``p``. Parameters
    are per family; ``rho`` None or 0 gives independent trades.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.integers(0, 50, 2000)  # 2,000 trades of 50 signals in 200 clusters of 10
    >>> cluster = np.repeat(np.arange(200), 10)
    >>> lay = TradeLayout(np.zeros(2000, int), signal, cluster, np.zeros(2000, bool),
    ...                   np.zeros(50, int))
    >>> mean, kappa = np.array([0.55]), np.array([50.0])
    >>> won = simulate_outcomes(lay, mean, kappa, None, np.random.default_rng(1))
    >>> won_rho = simulate_outcomes(lay, mean, kappa, np.array([0.3]), np.random.default_rng(1))
    >>> round(float(won.mean()), 3), round(float(won_rho.mean()), 3)
    (0.56, 0.552)
    >>> round(cluster_dispersion_statistic(won, lay), 2)  # ~1 for independent trades
    0.93
    >>> round(cluster_dispersion_statistic(won_rho, lay), 2)  # ~1 + 9 rho = 3.7
    3.24
    """
    sf = layout.signal_family
    if p is None:
        m, k = np.asarray(mean, float)[sf], np.asarray(kappa, float)[sf]
        p = rng.beta(m * k, (1.0 - m) * k)
    u = rng.random(layout.family.size)
    if rho is not None and np.any(np.asarray(rho) > 0):
        order, slices = _crp_plan(layout)
        rho_t = np.asarray(rho, float)[layout.family[order]]
        nu = np.where(rho_t > 0, (1.0 - rho_t) / np.maximum(rho_t, 1e-300), np.inf)
        us = u[order]  # in cluster order: trade k of a cluster sits k places after its first
        for k, at in enumerate(slices[1:], start=1):
            at = at[rng.random(at.size) < k / (nu[at] + k)]
            if at.size:
                us[at] = us[at - 1 - rng.integers(0, k, at.size)]  # an earlier trade's uniform
        u = np.empty_like(us)
        u[order] = us
    return u < p[layout.signal]


def _crp_plan(layout: TradeLayout) -> tuple[np.ndarray, list[np.ndarray]]:
    """The trades in cluster order (``order``) and, for each position k within a cluster, the
    cluster-order indices of the trades at that position (cached on the layout)."""
    cached = getattr(layout, "_crp", None)
    if cached is not None:
        return cached
    order = np.lexsort((np.arange(layout.cluster.size), layout.cluster))
    cl = layout.cluster[order]
    start = np.r_[0, np.flatnonzero(np.diff(cl)) + 1] if cl.size else np.zeros(0, np.int64)
    size = np.diff(np.r_[start, cl.size])
    pos = np.arange(cl.size) - np.repeat(start, size)
    by_pos = np.argsort(pos, kind="stable")
    bounds = np.searchsorted(pos[by_pos], np.arange(int(pos.max()) + 2 if pos.size else 1))
    slices = [by_pos[bounds[k] : bounds[k + 1]] for k in range(bounds.size - 1)]
    object.__setattr__(layout, "_crp", (order, slices))
    return order, slices


# ---------------------------------------------------------------------------------- checks
def dispersion_statistic(wins: np.ndarray, trades: np.ndarray, family: np.ndarray) -> float:
    """Pearson dispersion of per-signal win counts around their family's pooled win rate:
    sensitive to the concentration (how much signals differ within a family) and, below 1, to
    signals whose outcomes move together.

    Examples
    --------
    >>> wins, trades = np.array([3, 1, 5, 0]), np.array([5, 4, 6, 3])
    >>> family = np.array([0, 0, 1, 1])
    >>> round(dispersion_statistic(wins, trades, family), 4)
    1.6819
    """
    used = trades > 0
    w, n, f = wins[used], trades[used], family[used]
    pooled = np.bincount(f, weights=w) / np.maximum(np.bincount(f, weights=n), 1)
    p = np.clip(pooled[f], 1e-9, 1 - 1e-9)
    return float(np.sum((w - n * p) ** 2 / (n * p * (1 - p))) / max(used.sum(), 1))


def family_dispersions(wins: np.ndarray, trades: np.ndarray, family: np.ndarray) -> np.ndarray:
    """:func:`dispersion_statistic` of each family separately (NaN for a family without trades).

    Examples
    --------
    >>> wins, trades = np.array([3, 1, 5, 0]), np.array([5, 4, 6, 3])
    >>> family_dispersions(wins, trades, np.array([0, 0, 1, 1])).round(4).tolist()
    [0.5512, 2.8125]
    """
    n_fam = int(family.max()) + 1 if family.size else 0
    out = np.full(n_fam, np.nan)
    for f in range(n_fam):
        sel = family == f
        if np.any(trades[sel] > 0):
            out[f] = dispersion_statistic(wins[sel], trades[sel], np.zeros(sel.sum(), np.int64))
    return out


def rho_matters(data: WinRateData) -> np.ndarray:
    """Per family, whether its rho moves its published prior: at rho = 0.5 its luck's sd would
    be at least half the binomial sd of its pooled rate, both on the logit scale (a family with
    a few shared days, or none, is not held to identifying a rho that changes nothing).

    Examples
    --------
    >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2", "s2", "s3"],
    ...     "won": [True, False, True, True, False], "cluster": ["d1", "d2", "d1", "d2", "d1"],
    ...     "family": ["f", "f", "f", "f", "g"]})
    >>> data = WinRateData.from_trades(trades)  # s1 and s2 of family f trade on days d1 and d2
    >>> rho_matters(data).tolist()  # family g has no cluster of two trades
    [True, False]
    """
    cs = data.clusters
    total = data.n_surv.sum(axis=1)
    luck = np.sqrt(0.5 * cs.psi / 0.25)
    return (cs.n_clusters > 0) & (luck >= 0.5 / np.sqrt(0.25 * np.maximum(total, 1.0)))


def prior_sd_ratios(tree) -> dict[str, float]:
    """Per family, the posterior sd of logit(mean), of log(kappa) and (clustered fits, families
    where rho matters: :func:`rho_matters`) of logit(rho) over their prior sd, from
    :data:`HYPERPRIORS` (logit mean_f = eta0 + d_f, log kappa_f = mu_logk + sigma_logk zk_f,
    logit rho_f). Near 1 the data said nothing about that parameter; the gate refuses such a
    fit.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict(
    ...     {"posterior": {"eta0": rng.normal(0.2, 0.05, (2, 100)),
    ...                    "mean": rng.beta(55, 45, (2, 100, 2)),
    ...                    "kappa": rng.gamma(50, 1.0, (2, 100, 2))}},
    ...     coords={"family": ["a", "b"]}, dims={"mean": ["family"], "kappa": ["family"]},
    ... )  # a stand-in for a fit of two families: 2 chains of 100 draws
    >>> {k: round(v, 2) for k, v in prior_sd_ratios(tree).items()}
    {'logit mean[a]': 0.21, 'log kappa[a]': 0.09, 'logit mean[b]': 0.17, 'log kappa[b]': 0.08}
    """
    hp = HYPERPRIORS
    post = tree["posterior"]
    families = [str(f) for f in post["family"].values]
    n_fam = len(families)
    mean = np.asarray(post["mean"]).reshape(-1, n_fam)
    kappa = np.asarray(post["kappa"]).reshape(-1, n_fam)
    prior_logit_mean = math.sqrt(
        hp["eta0"].second_moment + hp["tau"].second_moment * (n_fam - 1) / n_fam
    )  # Var eta0 + E tau^2 (F-1)/F
    prior_log_kappa = math.sqrt(hp["mu_logk"].second_moment + hp["sigma_logk"].second_moment)
    prior_logit_rho = math.sqrt(hp["logit_rho"].second_moment)
    logit = np.log(mean) - np.log1p(-mean)
    shared = tree.attrs.get("rho_matters")
    out = {}
    for i, f in enumerate(families):
        out[f"logit mean[{f}]"] = float(logit[:, i].std() / prior_logit_mean)
        out[f"log kappa[{f}]"] = float(np.log(kappa[:, i]).std() / prior_log_kappa)
    if "rho" in post:
        rho = np.asarray(post["rho"]).reshape(-1, n_fam)
        for i, f in enumerate(families):
            if shared is not None and not shared[i]:
                continue
            out[f"logit rho[{f}]"] = float(np.std(np.log(rho[:, i]) - np.log1p(-rho[:, i]))
                                           / prior_logit_rho)  # fmt: skip
    return out


def posterior_predictive_pvalues(
    counts: pd.DataFrame | WinRateData,
    tree,
    *,
    n_rep: int = 2000,
    rng: int | np.random.Generator | None = None,
    per_family: bool = False,
    max_trades: int = 100_000,
    sequential: bool = True,
) -> PValues:
    """Posterior predictive p-values P(replicated >= observed): the within-family dispersion of
    per-signal win counts (:func:`dispersion_statistic`), the spread of family win rates, and,
    with a trade layout (a :class:`WinRateData` from :meth:`~WinRateData.from_trades`), the
    dispersion of the win counts of clusters with two or more trades. Replications use ``n_rep``
    posterior draws, new ``p_i`` per draw and, with a layout, new outcomes on the same layout
    from the clustered model (:func:`simulate_outcomes`). ``per_family``: also each family's
    signal dispersion (``dispersion[<family>]``). A layout of more than ``max_trades`` trades is
    checked on a random subset of its signals (all their trades) holding about that many: the
    model restricted to some trades is the same model (the restriction of a Chinese restaurant
    to some of its customers is one), so the check stays exact, with less power. Cost: O(n_rep x
    trades checked), about 7 ms per replicate per 100,000 trades (14 s at the defaults).

    ``n_rep`` replicates (posterior draws taken with replacement when the fit has fewer): a
    p-value moves in steps of ``1 / (n_rep + 1)``, stated by the returned :class:`PValues`. At
    the former 200 replicates a check that every replicate reached sat at p = 200 / 201 = 0.995,
    exactly on the gate's bound (three of the backtest's rejections); at 2,000 the bound is ten
    steps inside the range. ``sequential`` (default): Besag and Clifford's sequential p-values
    (:func:`~bayes_mem.offline.diagnostics.monte_carlo_pvalues`; lower tails in
    ``PValues.lower``): the replicates stop once every check has 20 on each side of its
    observed value, so a fit far from failing costs a few hundred replicates, not ``n_rep``.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> tree = az.from_dict(
    ...     {"posterior": {"eta0": rng.normal(0.2, 0.05, (2, 100)),
    ...                    "mean": rng.beta(55, 45, (2, 100, 2)),
    ...                    "kappa": rng.gamma(50, 1.0, (2, 100, 2))}},
    ...     coords={"family": ["a", "b"]}, dims={"mean": ["family"], "kappa": ["family"]},
    ... )  # a stand-in for a fit of two families: 2 chains of 100 draws
    >>> counts = pd.DataFrame({"family": ["a"] * 20 + ["b"] * 20,
    ...     "wins": rng.binomial(30, 0.55, 40), "trades": np.full(40, 30)})
    >>> pv = posterior_predictive_pvalues(counts, tree, n_rep=200, rng=0)
    >>> {k: round(v, 3) for k, v in pv.items()}  # upper tails
    {'dispersion': 1.0, 'family_spread': 0.8}
    >>> {k: round(v, 3) for k, v in pv.lower.items()}, pv.simulated, pv.replicates
    ({'dispersion': 0.02, 'family_spread': 0.14}, 200, 200)

    Only 3 replicates fell below the observed dispersion, so the check ran all 200: its lower
    tail p is 4 / 201, two-sided 0.04 (a pass at the gate's 0.01). The family spread's 20th
    replicate below came at 143 (20 / 143 = 0.14).
    """
    gen = np.random.default_rng(rng)
    if isinstance(counts, WinRateData) and counts.layout is not None:
        lay = counts.layout
        if lay.signal.size > max_trades:
            lay = subset_layout(lay, max_trades, gen)
        return _pvalues_layout(lay, counts.families, tree, n_rep, gen, per_family, sequential)
    if isinstance(counts, WinRateData):
        raise ValueError("posterior_predictive_pvalues needs counts or a WinRateData with a layout")
    families = sorted(counts["family"].unique())
    f = counts["family"].map({x: i for i, x in enumerate(families)}).to_numpy()
    wins = counts["wins"].to_numpy(np.int64)
    trades = counts["trades"].to_numpy(np.int64)
    draws = family_draws(tree, n_rep, gen)

    def stats(w: np.ndarray) -> list[float]:
        out = [dispersion_statistic(w, trades, f), _family_spread(w, trades, f)]
        return out + (list(family_dispersions(w, trades, f)) if per_family else [])

    obs = np.array(stats(wins))
    rows = zip(draws["mean"], draws["kappa"], strict=True)

    def replicate() -> np.ndarray:
        m, k = next(rows)
        p = gen.beta(m[f] * k[f], (1 - m[f]) * k[f])
        return np.array(stats(gen.binomial(trades, p)))

    up, low, run = monte_carlo_pvalues(obs, replicate, len(draws["mean"]), sequential=sequential)
    return _named(up, low, len(draws["mean"]), run, families if per_family else None)


def _family_spread(w: np.ndarray, trades: np.ndarray, f: np.ndarray) -> float:
    rate = np.bincount(f, weights=w) / np.maximum(np.bincount(f, weights=trades), 1)
    return float(np.std(rate))


def _named(up, low, n, run, families, cluster: bool = False) -> PValues:
    """The p-values by check name (``low``: the lower tails of sequential p-values, or None)."""
    names = ["dispersion", "family_spread"] + (["cluster_dispersion"] if cluster else [])
    names += [f"dispersion[{name}]" for name in families or []]
    out = {k: float(p) for k, p in zip(names, up, strict=False) if np.isfinite(p)}
    lower = None if low is None else {k: float(p) for k, p in zip(names, low, strict=False)
                                      if k in out}  # fmt: skip
    return PValues(out, n, lower=lower, simulated=run)


def cluster_dispersion_statistic(won: np.ndarray, layout: TradeLayout) -> float:
    """Pearson dispersion of the win counts of clusters with two or more trades around what
    their trades' signals win on the whole (each trade expected to win at its signal's rate
    (wins + 1) / (trades + 2)): about ``1 + (n - 1) rho`` for clusters of n trades, whatever
    mix of signals each cluster holds. NaN when no cluster holds two trades: nothing to check
    (every replicate would equal the data, and the tie would read as a misfit).

    Examples
    --------
    >>> trades = pd.DataFrame({"signal": ["s1", "s1", "s2", "s2", "s3"],
    ...     "won": [True, False, True, True, False], "cluster": ["d1", "d2", "d1", "d2", "d1"],
    ...     "family": ["f", "f", "f", "f", "g"]})
    >>> data = WinRateData.from_trades(trades)  # s1 and s2 of family f trade on days d1 and d2
    >>> round(cluster_dispersion_statistic(data.layout.won, data.layout), 4)
    0.7143
    >>> alone = WinRateData.from_trades(trades.assign(cluster=["d1", "d2", "d3", "d4", "d5"]))
    >>> cluster_dispersion_statistic(alone.layout.won, alone.layout)  # one trade a day
    nan
    """
    n_cl = int(layout.cluster.max()) + 1
    w_s = np.bincount(layout.signal, weights=won, minlength=layout.n_signals)
    n_s = np.bincount(layout.signal, minlength=layout.n_signals)
    rate = ((w_s + 1.0) / (n_s + 2.0))[layout.signal]
    w = np.bincount(layout.cluster, weights=won, minlength=n_cl)
    expect = np.bincount(layout.cluster, weights=rate, minlength=n_cl)
    var = np.bincount(layout.cluster, weights=rate * (1 - rate), minlength=n_cl)
    big = np.bincount(layout.cluster, minlength=n_cl) >= 2
    if not big.any():
        return math.nan
    return float(np.mean((w[big] - expect[big]) ** 2 / var[big]))


def subset_layout(lay: TradeLayout, max_trades: int, rng: np.random.Generator) -> TradeLayout:
    """The trades of a random subset of signals, about ``max_trades`` of them (signals in random
    order until the total passes it), renumbered (families keep their numbers).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.integers(0, 50, 2000)  # 2,000 trades of 50 signals in 200 clusters of 10
    >>> cluster = np.repeat(np.arange(200), 10)
    >>> lay = TradeLayout(np.zeros(2000, int), signal, cluster, np.zeros(2000, bool),
    ...                   np.zeros(50, int))
    >>> sub = subset_layout(lay, 500, np.random.default_rng(0))
    >>> sub.family.size, sub.n_signals  # whole signals until about 500 trades
    (517, 14)
    """
    n = np.bincount(lay.signal, minlength=lay.n_signals)
    order = rng.permutation(lay.n_signals)
    take = order[: int(np.searchsorted(np.cumsum(n[order]), max_trades)) + 1]
    keep = np.zeros(lay.n_signals, bool)
    keep[take] = True
    rows = keep[lay.signal]
    sig_new = np.full(lay.n_signals, -1)
    sig_new[np.flatnonzero(keep)] = np.arange(keep.sum())
    cl = pd.factorize(lay.cluster[rows])[0].astype(np.int64)
    return TradeLayout(lay.family[rows], sig_new[lay.signal[rows]], cl, lay.won[rows],
                       lay.signal_family[keep])  # fmt: skip


def _pvalues_layout(
    lay: TradeLayout, families, tree, n_rep, gen, per_family, sequential: bool
) -> PValues:
    sf = lay.signal_family
    trades = np.bincount(lay.signal, minlength=lay.n_signals)
    draws = family_draws(tree, n_rep, gen)

    def stats(won: np.ndarray) -> list[float]:
        w = np.bincount(lay.signal, weights=won, minlength=lay.n_signals)
        out = [dispersion_statistic(w, trades, sf), _family_spread(w, trades, sf),
               cluster_dispersion_statistic(won, lay)]  # fmt: skip
        return out + (list(family_dispersions(w, trades, sf)) if per_family else [])

    obs = np.array(stats(lay.won))  # NaN for a family without trades: no p-value
    rows = zip(draws["mean"], draws["kappa"], draws["rho"], strict=True)

    def replicate() -> np.ndarray:
        m, k, r = next(rows)
        return np.array(stats(simulate_outcomes(lay, m, k, r, gen)))

    n = len(draws["mean"])
    up, low, run = monte_carlo_pvalues(obs, replicate, n, sequential=sequential)
    return _named(up, low, n, run, list(families) if per_family else None, True)


# ---------------------------------------------------------------------------------- the gate
def check(tree, data: WinRateData | pd.DataFrame, *, rng: int | None = 0):
    """The win-rate fit's gate: sampler diagnostics on :func:`gated_vars`, the posterior
    predictive checks (:func:`posterior_predictive_pvalues`, 2,000 replicates, each judged
    two-sided at 0.01) and the identification check (:func:`prior_sd_ratios`).

    Examples
    --------
    A stand-in posterior (4 chains of 500 independent draws, no divergences) of two families that
    the data identify and reproduce passes:

    >>> import xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> cd, cdf = ("chain", "draw"), ("chain", "draw", "family")
    >>> post = xr.Dataset({"eta0": (cd, rng.normal(0.2, 0.05, (4, 500))),
    ...                    "mean": (cdf, rng.beta(55, 45, (4, 500, 2))),
    ...                    "kappa": (cdf, rng.gamma(50, 1.0, (4, 500, 2)))},
    ...                   coords={"family": ["a", "b"]})
    >>> zeros = np.zeros((4, 500), bool)
    >>> stats = xr.Dataset({"diverging": (cd, zeros), "maxdepth_reached": (cd, zeros),
    ...                     "energy": (cd, rng.standard_normal((4, 500)))})
    >>> tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    >>> counts = pd.DataFrame({"family": ["a"] * 20 + ["b"] * 20,
    ...     "wins": rng.binomial(30, 0.55, 40), "trades": np.full(40, 30)})
    >>> verdict = check(tree, counts)
    >>> verdict.passed, verdict.summary["ppc_replicates"], verdict.summary["divergences"]
    (True, 2000, 0)
    """
    from bayes_mem.offline.diagnostics import gate

    ppc = posterior_predictive_pvalues(data, tree, rng=rng)
    return gate(tree, gated_vars(tree), ppc, prior_sd_ratios(tree))


def fit_gated(model: WinRateModel, data: WinRateData, base, policy=None, *, rng: int | None = 0):
    """The nightly job's win-rate component: ``model.fit`` at the policy's settings
    (:class:`~bayes_mem.offline.diagnostics.FitSettings` ``base``), gated by :func:`check`,
    computational failures retried with escalated settings, a misfit not
    (:func:`bayes_mem.offline.diagnostics.fit_gated`).

    Examples
    --------
    A stand-in model whose ``fit`` returns a fixed posterior (the one of :func:`check`'s example)
    shows the flow without sampling: one attempt, passed:

    >>> import xarray as xr
    >>> from bayes_mem.offline.diagnostics import FitSettings
    >>> rng = np.random.default_rng(0)
    >>> cd, cdf = ("chain", "draw"), ("chain", "draw", "family")
    >>> post = xr.Dataset({"eta0": (cd, rng.normal(0.2, 0.05, (4, 500))),
    ...                    "mean": (cdf, rng.beta(55, 45, (4, 500, 2))),
    ...                    "kappa": (cdf, rng.gamma(50, 1.0, (4, 500, 2)))},
    ...                   coords={"family": ["a", "b"]})
    >>> zeros = np.zeros((4, 500), bool)
    >>> stats = xr.Dataset({"diverging": (cd, zeros), "maxdepth_reached": (cd, zeros),
    ...                     "energy": (cd, rng.standard_normal((4, 500)))})
    >>> class StandIn:
    ...     def fit(self, data, **settings):
    ...         return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    >>> trades = pd.DataFrame({"signal": np.repeat([f"s{i}" for i in range(8)], 25),
    ...     "won": rng.random(200) < 0.55, "cluster": np.arange(200) // 2,  # two per cluster
    ...     "family": np.repeat(["a", "b"], 100)})
    >>> data = WinRateData.from_trades(trades)
    >>> base = FitSettings(draws=500, tune=500, chains=4, target_accept=0.9, seed=0)
    >>> result = fit_gated(StandIn(), data, base)
    >>> result.verdict.passed, len(result.verdict.attempts), result.tree.attrs["target_accept"]
    (True, 1, 0.9)
    """
    import logging

    from bayes_mem.offline import diagnostics as dg

    def fit(s):
        tree = model.fit(data, draws=s.draws, tune=s.tune, chains=s.chains,
                         target_accept=s.target_accept, seed=s.seed)  # fmt: skip
        tree.attrs["target_accept"] = s.target_accept
        return tree

    return dg.fit_gated(fit, lambda t: check(t, data, rng=rng), base, policy,
                        log=logging.getLogger("bayes_mem.winrate"))  # fmt: skip
