"""The diagnostics gate (ArviZ 1.x): a fit is published only if it passes every check.

Rank-normalised R-hat <= 1.01, bulk and tail ESS >= 400, zero divergences, E-BFMI >= 0.3 in
every chain, no tree-depth saturation (nutpie names it ``maxdepth_reached``, PyMC's sampler
``reached_max_treedepth``: both are read), chains whose ranks agree (:func:`rank_tests`, the
numbers the report's rank plots print), and posterior predictive checks supplied by the model.
The verdict carries every reason it failed and the numbers behind it, each classified as
computational (the sampler: R-hat, ESS, ranks, divergences, E-BFMI, tree depth) or a misfit
(the model: posterior predictive checks, identification, the published live state).
:func:`fit_gated` refits a fit that failed on computational grounds only, with more tuning, draws
or chains and a higher target acceptance (:class:`RetryPolicy`), and records every attempt; a
misfit is never retried.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import rankdata

from bayes_mem.live.deprecation import warn_renamed

THRESHOLDS = {"rhat": 1.01, "ess_bulk": 400.0, "ess_tail": 400.0, "ebfmi": 0.3, "sd_ratio": 0.9}
#: a posterior predictive p-value outside [PPC_LOW, 1 - PPC_LOW] fails the check
PPC_LOW = 0.005
_DEPTH_FLAGS = ("maxdepth_reached", "reached_max_treedepth")

#: the two kinds of failure: the sampler did not explore the posterior well enough (retried with
#: more tuning, draws or chains and a higher target acceptance), or the model does not describe
#: the data (a misfit: more sampling cannot cure it, never retried)
COMPUTATIONAL = "computational"
MISFIT = "misfit"
#: a component refused after (or instead of) its gate by the nightly job: published values out
#: of bounds, a lost symbol, a failed dependency, nothing to fit (never retried)
REFUSED = "refused"


@dataclass(frozen=True)
class Failure:
    """One failed check: which (``check``: rhat, ess_bulk, ess_tail, rank, divergences, ebfmi,
    tree_depth, sampler_stats, ppc, sd_ratio, live_state; the nightly job's bounds, coverage,
    dependency, no_fit), its ``kind`` (:data:`COMPUTATIONAL`, :data:`MISFIT` or
    :data:`REFUSED`), the message shown to people, and the number behind it.

    Examples
    --------
    >>> f = Failure("rhat", COMPUTATIONAL, "R-hat 1.0300 > 1.01 (tau)", 1.03, "tau")
    >>> f.kind, f.value, f.where
    ('computational', 1.03, 'tau')
    >>> Verdict.of([f], {"max_rhat": 1.03}).retryable  # computational only: a refit may cure it
    True
    """

    check: str
    kind: str
    message: str
    value: float | None = None
    where: str = ""


@dataclass(frozen=True)
class Attempt:
    """One fit and its gate: the sampler settings used, and what failed (empty: passed).

    Examples
    --------
    >>> f = Failure("divergences", COMPUTATIONAL, "3 divergent transitions", 3.0)
    >>> a = Attempt(1, {"draws": 1000, "target_accept": 0.9}, passed=False, failures=(f,))
    >>> a.reasons
    ('3 divergent transitions',)
    """

    number: int
    settings: dict[str, Any]
    passed: bool
    failures: tuple[Failure, ...] = ()
    seconds: float = 0.0

    @property
    def reasons(self) -> tuple[str, ...]:
        """The messages of ``failures``, in order (empty: passed).

        Examples
        --------
        >>> Attempt(2, {"draws": 1500}, passed=True).reasons
        ()
        """
        return tuple(f.message for f in self.failures)


@dataclass(frozen=True)
class Verdict:
    """The gate's decision. ``reasons`` are the messages of ``failures`` (kept for readers of the
    JSON); ``failures`` carry each reason's kind; ``attempts`` every fit that was tried (one
    unless computational failures were retried by :func:`fit_gated`).

    Examples
    --------
    >>> win = Verdict.of([Failure("ppc", MISFIT, "posterior predictive check 'max': p = 0.001")],
    ...                  {"max_rhat": 1.002})
    >>> win.passed, win.retryable, len(win.misfit)
    (False, False, 1)
    >>> returns = Verdict.of([Failure("divergences", COMPUTATIONAL, "2 divergent transitions")], {})
    >>> both = win.merged(returns, "returns")
    >>> both.reasons
    ("posterior predictive check 'max': p = 0.001", 'returns: 2 divergent transitions')
    >>> both.to_dict()["computational"], both.summary
    (['returns: 2 divergent transitions'], {'max_rhat': 1.002})
    """

    passed: bool
    reasons: tuple[str, ...]
    summary: dict[str, Any] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    attempts: tuple[Attempt, ...] = ()

    @classmethod
    def of(cls, failures: list[Failure] | tuple[Failure, ...], summary: dict[str, Any]) -> Verdict:
        """The verdict of these failures (none: passed), their messages as ``reasons``.

        Examples
        --------
        >>> Verdict.of([], {"max_rhat": 1.001}).passed
        True
        >>> rhat = Failure("rhat", COMPUTATIONAL, "R-hat 1.03 > 1.01 (tau)", 1.03)
        >>> Verdict.of([rhat], {}).reasons
        ('R-hat 1.03 > 1.01 (tau)',)
        """
        failures = tuple(failures)
        return cls(not failures, tuple(f.message for f in failures), summary, failures)

    @property
    def computational(self) -> tuple[Failure, ...]:
        """The failures more sampling may cure (:data:`COMPUTATIONAL`).

        Examples
        --------
        >>> v = Verdict.of([Failure("rhat", COMPUTATIONAL, "R-hat 1.03 > 1.01"),
        ...                 Failure("ppc", MISFIT, "posterior predictive check: p = 0.001")], {})
        >>> [f.check for f in v.computational]
        ['rhat']
        """
        return tuple(f for f in self.failures if f.kind == COMPUTATIONAL)

    @property
    def misfit(self) -> tuple[Failure, ...]:
        """The failures that say the model does not describe the data (:data:`MISFIT`).

        Examples
        --------
        >>> v = Verdict.of([Failure("rhat", COMPUTATIONAL, "R-hat 1.03 > 1.01"),
        ...                 Failure("ppc", MISFIT, "posterior predictive check: p = 0.001")], {})
        >>> [f.check for f in v.misfit]
        ['ppc']
        """
        return tuple(f for f in self.failures if f.kind == MISFIT)

    @property
    def retryable(self) -> bool:
        """Failed on computational grounds only: more sampling may cure it.

        Examples
        --------
        A misfit next to a computational failure is not retried:

        >>> comp = Failure("divergences", COMPUTATIONAL, "3 divergent transitions", 3.0)
        >>> misfit = Failure("ppc", MISFIT, "posterior predictive check 'max': p = 0.001")
        >>> Verdict.of([comp], {}).retryable, Verdict.of([comp, misfit], {}).retryable
        (True, False)
        >>> Verdict.of([], {}).retryable  # a pass needs no retry
        False
        """
        return bool(self.failures) and all(f.kind == COMPUTATIONAL for f in self.failures)

    def merged(self, other: Verdict, prefix: str) -> Verdict:
        """This verdict and ``other`` (another model's), the other's messages and summary keys
        prefixed with ``prefix`` (e.g. ``"returns"``).

        Examples
        --------
        >>> win = Verdict.of([], {"max_rhat": 1.002})
        >>> rhat = Failure("rhat", COMPUTATIONAL, "R-hat 1.03 > 1.01")
        >>> ret = Verdict.of([rhat], {"max_rhat": 1.03})
        >>> both = win.merged(ret, "returns")
        >>> both.passed, both.reasons, both.summary
        (False, ('returns: R-hat 1.03 > 1.01',), {'max_rhat': 1.002, 'returns_max_rhat': 1.03})
        """
        extra = tuple(
            Failure(f.check, f.kind, f"{prefix}: {f.message}", f.value, f.where)
            for f in other.failures
        )
        summary = {**self.summary, **{f"{prefix}_{k}": v for k, v in other.summary.items()}}
        attempts = self.attempts + tuple(
            Attempt(a.number, {**a.settings, "component": prefix}, a.passed, a.failures, a.seconds)
            for a in other.attempts
        )
        out = Verdict.of(self.failures + extra, summary)
        return Verdict(out.passed, out.reasons, out.summary, out.failures, attempts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (a prior set's ``diagnostics``): a non-finite number becomes its text
        (``"inf"``, ``"nan"``), as the prior set accepts finite numbers only.

        Examples
        --------
        An infinite value becomes its text (the prior set holds finite numbers only):

        >>> d = Verdict.of([], {"min_ess_bulk": float("inf")}).to_dict()
        >>> d["passed"], d["summary"], d["misfit"]
        (True, {'min_ess_bulk': 'inf'}, [])
        """
        out = asdict(self)
        out["computational"] = [f.message for f in self.computational]
        out["misfit"] = [f.message for f in self.misfit]
        out["refused"] = [f.message for f in self.failures if f.kind == REFUSED]
        return _finite(out)

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     out = Verdict.of([], {}).to_json()
        >>> out == Verdict.of([], {}).to_dict(), caught[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("Verdict.to_json()", "Verdict.to_dict()")
        return self.to_dict()


def _finite(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    if isinstance(x, float | np.floating) and not math.isfinite(x):
        return str(float(x))
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _extreme(ds: Any, how: str) -> tuple[float, str]:
    """Max or min over every variable and element of a Dataset of diagnostics, with its name."""
    best, where = (np.inf if how == "min" else -np.inf), ""
    for name, arr in ds.data_vars.items():
        values = np.asarray(arr.values, dtype=float)
        if values.size == 0 or np.all(np.isnan(values)):
            continue
        v = float(np.nanmin(values) if how == "min" else np.nanmax(values))
        if (how == "min" and v < best) or (how == "max" and v > best):
            best, where = v, str(name)
    return best, where


#: family-wise level of the rank-uniformity check (Holm over the checked elements)
RANK_ALPHA = 0.01
#: at most this many thinned draws per chain enter the rank test (its cost, ArviZ's exact
#: hypergeometric tails, grows with them: ~0.35 s an element at 1,000 a chain, ~0.1 s at 400)
RANK_MAX_DRAWS = 400


def _elements(da: Any) -> list[tuple[str, np.ndarray]]:
    """(label, (chain, draw) array) for every element of a posterior variable: ``tau``,
    ``mean[momentum]``, ``kappa[a, 2]``."""
    other = [d for d in da.dims if d not in ("chain", "draw")]
    arr = np.asarray(da.transpose("chain", "draw", *other).values, dtype=float)
    if not other:
        return [(str(da.name), arr)]
    flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
    coords = [da[d].values if d in da.coords else np.arange(da.sizes[d]) for d in other]
    labels = [", ".join(str(coords[i][j]) for i, j in enumerate(idx))
              for idx in np.ndindex(*[da.sizes[d] for d in other])]  # fmt: skip
    return [(f"{da.name}[{lab}]", flat[:, :, i]) for i, lab in enumerate(labels)]


@dataclass(frozen=True)
class RankTest:
    """The rank-uniformity test of one element: its draws thinned by ``thin``
    (:func:`thin_factor`), their fractional ranks over all chains (chain, draw) and the p-value
    of ArviZ's multi-chain test on them.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.random.default_rng(1).standard_normal((4, 1000))  # 4 chains that agree
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"tau": (("chain", "draw"), x)})})
    >>> test = rank_tests(tree, ["tau"])[0]
    >>> test.name, test.thin, test.ranks.shape, round(test.p, 2)
    ('tau', 3, (4, 334), 0.88)
    """

    name: str
    thin: int
    ranks: np.ndarray
    p: float


def thin_factor(x: np.ndarray) -> int:
    """Thinning step that leaves each chain's draws about independent: the largest over chains
    of draws / that chain's own min(bulk, tail) ESS (ArviZ), so the step follows the chains'
    autocorrelation but not their disagreement (the pooled ESS also falls when chains disagree:
    thinning by it would take the test's power away exactly when it is needed); at least so
    much that :data:`RANK_MAX_DRAWS` draws a chain remain.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.signal import lfilter
    >>> e = np.random.default_rng(1).standard_normal((4, 2000))
    >>> thin_factor(e)  # independent draws: only the cap of RANK_MAX_DRAWS a chain
    5
    >>> thin_factor(lfilter([1.0], [1.0, -0.95], e, axis=1))  # AR(1) chains, phi = 0.95
    67
    """
    from arviz_stats.base import array_stats

    n_chains, n_draws = x.shape
    worst = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(n_chains):
            one = x[j : j + 1]
            bulk = array_stats.ess(one, chain_axis=0, draw_axis=1, method="bulk")
            tail = array_stats.ess(one, chain_axis=0, draw_axis=1, method="tail", prob=0.95)
            e = min(float(bulk), float(tail))  # as ArviZ's thin_factor
            worst = min(worst, e) if np.isfinite(e) else worst
    cap = math.ceil(n_draws / RANK_MAX_DRAWS)
    if not np.isfinite(worst) or worst <= 0:
        return max(1, cap)
    return max(1, cap, math.ceil(n_draws / worst))


def rank_tests(tree: Any, var_names: list[str]) -> list[RankTest]:
    """Whether the chains agree, per element of ``var_names``: ArviZ's multi-chain uniformity
    test of fractional ranks (``mchain_uniformity_test``, the test ``plot_rank`` prints) on
    draws thinned first so that each chain's draws are about independent (:func:`thin_factor`).
    The test treats draws as independent: on raw autocorrelated draws it rejects chains that
    agree (AR(1) chains at lag-1 correlation 0.9, ESS ~600 of 12,000 and R-hat within 1.01, get
    p ~ 0), which is why the report's rank plots printed p = 0.00 for tau and sigma_logk above
    a passed verdict. This one computation feeds the gate and the report's rank plots. Elements
    with one chain or no spread are skipped. Measured calibration (100 runs of 4 AR(1) chains x
    2,000 draws each, phi 0, 0.5, 0.9, 0.95): share of p < 0.01 was 0.01, 0.01, 0.02, 0.00.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = np.random.default_rng(2).standard_normal((4, 1000))
    >>> x[0] += 0.5  # chain 0 sits elsewhere
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"tau": (("chain", "draw"), x)})})
    >>> [(t.name, t.thin, t.p < 1e-6) for t in rank_tests(tree, ["tau"])]
    [('tau', 3, True)]
    """
    from arviz_stats.base import array_stats

    out = []
    post = tree["posterior"]
    for var in var_names:
        if var not in post:
            continue
        for name, x in _elements(post[var]):
            if x.shape[0] < 2 or not np.all(np.isfinite(x)) or np.ptp(x) == 0:
                continue
            k = thin_factor(x)
            y = x[:, ::k]
            ranks = rankdata(y, axis=None).reshape(y.shape) / y.size
            p = float(array_stats.mchain_uniformity_test(ranks, chain_axis=0, draw_axis=1)[0])
            out.append(RankTest(name, k, ranks, p))
    return out


def rank_failures(tests: list[RankTest]) -> tuple[list[Failure], dict[str, Any]]:
    """The gate's reading of :func:`rank_tests`: Holm-adjusted over the elements, an element
    below :data:`RANK_ALPHA` fails (computational: the chains disagree).

    Examples
    --------
    >>> import numpy as np
    >>> tests = [RankTest("tau", 3, np.empty((4, 333)), 1e-4),
    ...          RankTest("sigma", 3, np.empty((4, 333)), 0.4)]
    >>> fails, summary = rank_failures(tests)
    >>> [f.message for f in fails]
    ['rank plot of tau: chains disagree, p = 0.0001 (Holm 0.0002 < 0.01)']
    >>> summary
    {'min_rank_p': 0.0001, 'min_rank_p_at': 'tau', 'min_rank_p_holm': 0.0002}
    """
    if not tests:
        return [], {}
    adj = holm(np.array([t.p for t in tests]))
    worst = int(np.argmin([t.p for t in tests]))
    summary = {"min_rank_p": tests[worst].p, "min_rank_p_at": tests[worst].name,
               "min_rank_p_holm": float(adj[worst])}  # fmt: skip
    fails = [
        Failure("rank", COMPUTATIONAL, f"rank plot of {t.name}: chains disagree, "
                f"p = {t.p:.2g} (Holm {a:.2g} < {RANK_ALPHA})", t.p, t.name)
        for t, a in zip(tests, adj, strict=True)
        if a < RANK_ALPHA
    ]  # fmt: skip
    return fails, summary


class PValues(dict):
    """Posterior predictive p-values by check name (upper tail, P(T_rep >= T_obs)), with the
    number of replicates behind them: a Monte Carlo p-value with R replicates and +1 smoothing
    moves in steps of ``1 / (R + 1)`` (its resolution), from ``1 / (R + 1)`` to ``R / (R + 1)``.

    Examples
    --------
    >>> p = PValues({"max": 0.42, "skewness": 0.998}, replicates=999)
    >>> dict(p), p.replicates, p.resolution
    ({'max': 0.42, 'skewness': 0.998}, 999, 0.001)
    """

    def __init__(
        self,
        values: dict[str, float],
        replicates: int,
        *,
        lower: dict[str, float] | None = None,
        simulated: int | None = None,
    ) -> None:
        super().__init__(values)
        self.replicates = int(replicates)
        #: lower-tail p-values P(T_rep <= T_obs) where they are not ``1 - p`` (sequential
        #: p-values, :func:`sequential_pvalues`); the two-sided p-value is then
        #: ``min(1, 2 min(upper, lower))``
        self.lower = None if lower is None else dict(lower)
        #: replicates simulated in all (sequential p-values stop early), None: ``replicates``
        #: for every check
        self.simulated = None if simulated is None else int(simulated)

    @property
    def resolution(self) -> float:
        """The step of a p-value, ``1 / (replicates + 1)``.

        Examples
        --------
        >>> PValues({"max": 0.5}, replicates=1999).resolution
        0.0005
        """
        return 1.0 / (self.replicates + 1)

    def select(self, names: Iterable[str]) -> PValues:
        """The checks ``names`` only, their lower tails and replicates kept (a plain dict of the
        upper tails would lose the lower tails of sequential p-values).

        Examples
        --------
        >>> p = PValues({"a": 1.0, "b": 0.4}, 2000, lower={"a": 0.2, "b": 0.7}, simulated=90)
        >>> q = p.select(["a"])
        >>> dict(q), q.lower, q.replicates, q.simulated
        ({'a': 1.0}, {'a': 0.2}, 2000, 90)
        """
        keep = [n for n in names if n in self]
        lower = None if self.lower is None else {n: self.lower[n] for n in keep}
        return PValues({n: self[n] for n in keep}, self.replicates, lower=lower,
                       simulated=self.simulated)  # fmt: skip


#: Besag-Clifford: a sequential check stops once this many replicates fell on each side of the
#: observed statistic (:func:`sequential_pvalues`)
SEQUENTIAL_HITS = 20


def sequential_decided(hits: np.ndarray, n: int, h: int = SEQUENTIAL_HITS) -> bool:
    """Whether a sequential simulation may stop after ``n`` replicates: every check has ``h``
    of them on each side of its observed value (``hits``: each check's replicates that reached
    it). The one stopping rule of :func:`sequential_pvalues`.

    Examples
    --------
    >>> import numpy as np
    >>> sequential_decided(np.array([20, 30]), 50), sequential_decided(np.array([20, 35]), 50)
    (True, False)
    """
    return bool(np.all(hits >= h) and np.all(n - hits >= h))


def sequential_pvalues(
    hits: np.ndarray, h: int = SEQUENTIAL_HITS, n_max: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Besag and Clifford's sequential Monte Carlo p-values (Biometrika 78(2), 1991), upper and
    lower tail, of each check (column) of ``hits`` (replicates in the order simulated x checks;
    1 where the replicate's statistic reached the observed one, ``T_rep >= T_obs``).

    A tail's p-value is ``h / L`` when its ``h``-th hit (upper: ``T_rep >= T_obs``; lower: a
    miss, ``T_rep < T_obs``) came at replicate ``L``, and otherwise ``(k + 1) / (n + 1)`` with
    ``k`` its hits among all ``n`` replicates, which must then be ``n_max`` (default: as many as
    given): a simulation may stop once every check has ``h`` replicates on each side, and only
    then. Each tail's p-value is valid (``P(p <= a) <= a`` under the null) whatever the other
    checks did, so ``min(1, 2 min(upper, lower))`` is a valid two-sided one. A check far from
    significance is decided after about ``h / min(p, 1 - p)`` replicates instead of ``n_max``;
    a p-value below ``h / n_max`` is computed from all ``n_max``, as a fixed-size check would.

    Examples
    --------
    20 hits by replicate 50 give the upper tail ``20 / 50``; the 20th miss came at 37:

    >>> import numpy as np
    >>> hits = np.zeros((50, 1), dtype=np.int8)
    >>> hits[[1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 35, 40, 45, 49]] = 1
    >>> up, low = sequential_pvalues(hits, h=20, n_max=20_000)
    >>> float(up[0]), float(low[0])
    (0.4, 0.5405405405405406)

    Without 20 hits the check had to run to ``n_max``:

    >>> up, low = sequential_pvalues(np.zeros((1000, 1), dtype=np.int8), h=20, n_max=1000)
    >>> float(up[0]), float(low[0])  # (0 + 1) / 1001, and 20 / 20
    (0.000999000999000999, 1.0)
    """
    hits = np.asarray(hits)
    if hits.ndim != 2:
        raise ValueError(f"hits must be replicates x checks, got shape {hits.shape}")
    n = hits.shape[0]
    n_max = n if n_max is None else int(n_max)
    h = int(h)
    if h < 1 or n > n_max or n_max < 1:
        raise ValueError(
            f"need h >= 1 and 1 to n_max ({n_max}) replicates, got h={h}, {n} replicates"
        )
    out = []
    for side in (hits != 0, hits == 0):
        count = np.cumsum(side, axis=0)
        reached = count[-1] >= h if n else np.zeros(hits.shape[1], dtype=bool)
        at = np.argmax(count >= h, axis=0) + 1  # replicate of the h-th hit (where reached)
        if np.any(~reached) and n != n_max:
            raise ValueError(
                f"a check has fewer than {h} replicates on one side after {n} of {n_max}: "
                "the simulation stopped too early"
            )
        k = count[-1] if n else np.zeros(hits.shape[1], dtype=np.int64)
        out.append(np.where(reached, h / at, (k + 1) / (n + 1)))
    return out[0], out[1]


def monte_carlo_pvalues(
    observed: np.ndarray,
    replicate: Callable[[], np.ndarray],
    n_rep: int,
    *,
    sequential: bool = True,
    h: int = SEQUENTIAL_HITS,
    check_every: int = 50,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Monte Carlo p-values of several statistics whose replicates come one at a time:
    ``(upper, lower, replicates simulated)``. ``observed``: the statistics of the data (NaN:
    not a check, NaN p-values); ``replicate()``: one replicate's statistics. ``sequential``
    (default): :func:`sequential_pvalues`, stopping (checked every ``check_every``
    replicates) once every check has ``h`` replicates on each side, at most ``n_rep``;
    otherwise all ``n_rep``, upper ``(hits + 1) / (n_rep + 1)`` and ``lower`` None.

    Examples
    --------
    A statistic observed far in the tail runs all 2,000 replicates (its upper p is the
    fixed-size one); one at the replicates' median is decided after 50 (the 20th hit came at
    replicate 38, the 20th miss at 40):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> up, low, n = monte_carlo_pvalues(np.array([0.0, 3.5]), lambda: rng.normal(size=2), 2000)
    >>> n, round(float(up[1]), 5)
    (2000, 0.0005)
    >>> up, low, n = monte_carlo_pvalues(np.array([0.0]), lambda: rng.normal(size=1), 2000)
    >>> n, float(up[0]), float(low[0])
    (50, 0.5263157894736842, 0.5)
    """
    if int(n_rep) < 1:
        raise ValueError(f"n_rep must be at least 1 replicate, got {n_rep!r}")
    observed = np.asarray(observed, dtype=float)
    live = np.isfinite(observed)
    rows = []
    seen = np.zeros(int(live.sum()), dtype=np.int64)
    for i in range(int(n_rep)):
        hit = np.asarray(replicate(), dtype=float)[live] >= observed[live]
        rows.append(hit)
        seen += hit
        n = i + 1
        if sequential and n % check_every == 0 and sequential_decided(seen, n, h):
            break
    hits = np.array(rows, dtype=np.int8).reshape(len(rows), int(live.sum()))
    up = np.full(observed.shape, np.nan)
    if not sequential:
        up[live] = (hits.sum(axis=0) + 1) / (len(rows) + 1)
        return up, None, len(rows)
    low = np.full(observed.shape, np.nan)
    up[live], low[live] = sequential_pvalues(hits, h, int(n_rep))
    return up, low, len(rows)


def two_sided(p: np.ndarray | float) -> np.ndarray:
    """Two-sided p-value of an upper-tail p-value: ``min(1, 2 min(p, 1 - p))``.

    Examples
    --------
    >>> two_sided([0.001, 0.5, 0.998])
    array([0.002, 1.   , 0.004])
    """
    p = np.asarray(p, dtype=float)
    return np.minimum(1.0, 2.0 * np.minimum(p, 1.0 - p))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control under any dependence):
    sorted ascending, ``p_(i) (m - i + 1)`` made monotone, capped at 1. NaN entries are not
    tests (returned as NaN, not counted in m).

    Examples
    --------
    >>> import numpy as np
    >>> holm(np.array([0.01, 0.04, 0.03, np.nan]))  # NaN: not a test, m = 3
    array([0.03, 0.06, 0.06,  nan])
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out[order] = adj
    return out


#: family-wise level of the posterior predictive checks: two-sided, so a single upper-tail
#: p-value fails outside [PPC_LOW, 1 - PPC_LOW]
PPC_ALPHA = 2 * PPC_LOW


def ppc_failures(
    ppc: dict[str, float], correction: str = "none", tests: dict[str, float] | None = None
) -> tuple[list[Failure], dict[str, Any]]:
    """Failures and summary of posterior predictive p-values (upper tail): each made two-sided;
    ``tests``: p-values of tests that are already two-sided or one-sided the right way (small
    means misfit: e.g. a uniformity test of out-of-sample PITs), joined as they are.
    ``correction="holm"`` adjusts all of them for their number (Holm) before comparing with
    :data:`PPC_ALPHA`; ``"none"`` compares each on its own (fails outside [0.005, 0.995]).

    Examples
    --------
    >>> ppc = PValues({"max": 0.999, "mean": 0.4}, replicates=1999)
    >>> fails, summary = ppc_failures(ppc)
    >>> [(f.kind, f.message) for f in fails]
    [('misfit', "posterior predictive check 'max': p = 0.999")]
    >>> summary
    {'ppc_max': 0.999, 'ppc_mean': 0.4, 'ppc_replicates': 1999, 'ppc_resolution': 0.0005,
     'ppc_correction': 'none'}
    >>> fails, _ = ppc_failures(ppc, "holm")  # adjusted for the 2 checks
    >>> [f.message for f in fails]
    ["posterior predictive check 'max': p = 0.999, Holm-adjusted two-sided p = 0.004"]
    """
    if correction not in ("none", "holm"):
        raise ValueError(f"correction must be 'none' or 'holm', got {correction!r}")
    tests = dict(tests or {})
    names = list(ppc) + list(tests)
    p = np.array([float(ppc[n]) for n in ppc] + [float(v) for v in tests.values()])
    lower = getattr(ppc, "lower", None)
    if lower is not None:  # sequential p-values: each tail its own
        sides = np.array([min(1.0, 2.0 * min(float(ppc[n]), float(lower[n]))) for n in ppc])
    else:
        sides = two_sided(p[: len(ppc)])
    p2 = np.concatenate([sides, p[len(ppc) :]])
    adj = holm(p2) if correction == "holm" else p2
    summary: dict[str, Any] = {f"ppc_{n}": float(v) for n, v in zip(names, p, strict=True)}
    replicates = getattr(ppc, "replicates", None)
    if replicates is not None:
        summary["ppc_replicates"] = int(replicates)
        summary["ppc_resolution"] = 1.0 / (replicates + 1)
    simulated = getattr(ppc, "simulated", None)
    if simulated is not None:
        summary["ppc_replicates_simulated"] = int(simulated)
    summary["ppc_correction"] = correction
    if correction == "holm":
        summary["ppc_tests"] = len(names)
    failures = []
    for n, pv, a in zip(names, p, adj, strict=True):
        if np.isfinite(a) and a < PPC_ALPHA:
            adjusted = f", Holm-adjusted two-sided p = {a:.4g}" if correction == "holm" else ""
            kind = "test" if n in tests else "posterior predictive check"
            tail = "" if lower is None or n in tests else f" (lower tail {float(lower[n]):.4g})"
            failures.append(Failure(
                "ppc", MISFIT, f"{kind} {n!r}: p = {pv:.4g}{tail}{adjusted}", float(pv), n,
            ))  # fmt: skip
    return failures, summary


def gate(
    tree: Any,
    var_names: list[str],
    ppc: dict[str, float] | None = None,
    sd_ratios: dict[str, float] | None = None,
    *,
    ppc_correction: str = "none",
    tests: dict[str, float] | None = None,
    extra: list[Failure] | None = None,
    summary_extra: dict[str, Any] | None = None,
) -> Verdict:
    """Check a fit (a DataTree with posterior and sample_stats) on ``var_names``; ``ppc`` maps a
    posterior predictive check's name to its upper-tail p-value (:class:`PValues` also states
    its replicates and resolution in the summary), judged two-sided at :data:`PPC_ALPHA`, each
    on its own (``ppc_correction="none"``: fails outside [0.005, 0.995]) or Holm-adjusted for
    their number (``"holm"``), together with ``tests`` (p-values where small means misfit, see
    :func:`ppc_failures`); ``sd_ratios`` maps a parameter to its posterior sd over its prior
    sd (fails above 0.9: the data did not identify it, its posterior is essentially the prior);
    ``extra``: failures of checks made elsewhere (e.g. the published live state). Sampler checks
    are :data:`COMPUTATIONAL`, the others :data:`MISFIT`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(3)
    >>> zeros = np.zeros((4, 1000), bool)
    >>> stats = xr.Dataset({"diverging": (("chain", "draw"), zeros),
    ...                     "maxdepth_reached": (("chain", "draw"), zeros),
    ...                     "energy": (("chain", "draw"), rng.standard_normal((4, 1000)))})
    >>> post = xr.Dataset({"tau": (("chain", "draw"), rng.standard_normal((4, 1000)))})
    >>> tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})
    >>> verdict = gate(tree, ["tau"], ppc={"max": 0.999})
    >>> verdict.passed, verdict.reasons
    (False, ("posterior predictive check 'max': p = 0.999",))
    >>> round(verdict.summary["max_rhat"], 3), verdict.summary["divergences"]
    (1.0, 0)
    """
    import arviz as az

    fails: list[Failure] = []
    summary: dict[str, Any] = {}

    def comp(check: str, message: str, value: float | None = None, where: str = "") -> None:
        fails.append(Failure(check, COMPUTATIONAL, message, value, where))

    post = tree["posterior"].to_dataset()[var_names]
    rhat, rhat_at = _extreme(az.rhat(post), "max")
    bulk, bulk_at = _extreme(az.ess(post, method="bulk"), "min")
    tail, tail_at = _extreme(az.ess(post, method="tail"), "min")
    summary.update(max_rhat=rhat, min_ess_bulk=bulk, min_ess_tail=tail)
    rank_fails, rank_summary = rank_failures(rank_tests(tree, var_names))
    summary.update(rank_summary)
    if not rhat <= THRESHOLDS["rhat"]:
        comp("rhat", f"R-hat {rhat:.4f} > {THRESHOLDS['rhat']} ({rhat_at})", rhat, rhat_at)
    if not bulk >= THRESHOLDS["ess_bulk"]:
        comp("ess_bulk", f"bulk ESS {bulk:.0f} < {THRESHOLDS['ess_bulk']:.0f} ({bulk_at})",
             bulk, bulk_at)  # fmt: skip
    if not tail >= THRESHOLDS["ess_tail"]:
        comp("ess_tail", f"tail ESS {tail:.0f} < {THRESHOLDS['ess_tail']:.0f} ({tail_at})",
             tail, tail_at)  # fmt: skip
    fails += rank_fails
    stats = tree["sample_stats"].to_dataset()
    div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    summary["divergences"] = div
    if div:
        comp("divergences", f"{div} divergent transitions", float(div))
    if "energy" in stats:
        bfmi = az.bfmi(stats["energy"]).values  # per chain (and fan-out run)
        summary["min_ebfmi"] = float(bfmi.min())
        if bfmi.min() < THRESHOLDS["ebfmi"]:
            comp("ebfmi", f"E-BFMI {bfmi.min():.3f} < {THRESHOLDS['ebfmi']} in a chain",
                 float(bfmi.min()))  # fmt: skip
    else:
        comp("sampler_stats", "no energy in sample_stats: E-BFMI cannot be checked")
    depth_flag = next((f for f in _DEPTH_FLAGS if f in stats), None)
    if depth_flag is None:
        comp("sampler_stats", "no tree-depth statistic in sample_stats")
    else:
        saturated = int(np.asarray(stats[depth_flag]).sum())
        summary["tree_depth_saturated"] = saturated
        if saturated:
            comp("tree_depth", f"{saturated} transitions hit the maximum tree depth",
                 float(saturated))  # fmt: skip
    if ppc or tests:
        ppc_fails, ppc_summary = ppc_failures(ppc or {}, ppc_correction, tests)
        fails += ppc_fails
        summary.update(ppc_summary)
    for name, ratio in (sd_ratios or {}).items():
        summary[f"sd_ratio_{name}"] = ratio
        if not ratio <= THRESHOLDS["sd_ratio"]:
            fails.append(Failure(
                "sd_ratio", MISFIT,
                f"the data do not identify {name}: posterior sd is {ratio:.2f} of the prior's",
                float(ratio), name,
            ))  # fmt: skip
    fails += list(extra or [])
    summary.update(summary_extra or {})
    return Verdict.of(fails, summary)


# ------------------------------------------------------------------------------- retries
@dataclass(frozen=True)
class FitSettings:
    """What a sampler is asked for: draws and tuning steps per chain, chains, target acceptance
    and seed.

    Examples
    --------
    >>> base = FitSettings(draws=1000, tune=1000, chains=4, target_accept=0.9, seed=7)
    >>> RetryPolicy().settings(base, 2)  # the first retry: more draws and tuning, higher acceptance
    FitSettings(draws=1500, tune=2000, chains=4, target_accept=0.95, seed=8)
    """

    draws: int
    tune: int
    chains: int
    target_accept: float
    seed: int = 0


@dataclass(frozen=True)
class Escalation:
    """How one retry changes the settings of the first attempt: draws and tuning multiplied,
    chains added, the gap to acceptance 1 multiplied (0.5: 0.9 -> 0.95, 0.99 -> 0.995), and a
    new seed (first seed + attempt number - 1).

    Examples
    --------
    >>> base = FitSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)
    >>> Escalation(draws=2.0, chains=2, accept_gap=0.5).apply(base, attempt=3)
    FitSettings(draws=2000, tune=1000, chains=6, target_accept=0.95, seed=2)
    """

    draws: float = 1.0
    tune: float = 1.0
    chains: int = 0
    accept_gap: float = 1.0

    def apply(self, base: FitSettings, attempt: int) -> FitSettings:
        """The settings of attempt ``attempt`` (>= 2) from the first attempt's ``base``.

        Examples
        --------
        Half the gap to acceptance 1 (0.9 -> 0.95), twice the tuning, a new seed:

        >>> base = FitSettings(draws=1000, tune=1000, chains=4, target_accept=0.9, seed=10)
        >>> Escalation(tune=2.0, accept_gap=0.5).apply(base, attempt=2)
        FitSettings(draws=1000, tune=2000, chains=4, target_accept=0.95, seed=11)
        """
        return FitSettings(
            draws=math.ceil(base.draws * self.draws),
            tune=math.ceil(base.tune * self.tune),
            chains=base.chains + self.chains,
            target_accept=1.0 - (1.0 - base.target_accept) * self.accept_gap,
            seed=base.seed + attempt - 1,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Attempt 1 uses the base settings; attempt k > 1 the escalation ``schedule[k - 2]`` (the
    last one repeated when the schedule is shorter), up to ``max_attempts`` fits in all. Only a
    verdict that failed on computational grounds alone (:attr:`Verdict.retryable`) is retried.

    Examples
    --------
    >>> base = FitSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)
    >>> policy = RetryPolicy()
    >>> [(s.draws, s.tune, s.chains, round(s.target_accept, 4), s.seed)
    ...  for s in (policy.settings(base, k) for k in (1, 2, 3))]
    [(1000, 1000, 4, 0.9, 0), (1500, 2000, 4, 0.95, 1), (2000, 4000, 6, 0.975, 2)]
    >>> NO_RETRY.max_attempts
    1
    """

    schedule: tuple[Escalation, ...] = (
        Escalation(draws=1.5, tune=2.0, accept_gap=0.5),
        Escalation(draws=2.0, tune=4.0, chains=2, accept_gap=0.25),
    )
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if self.max_attempts > 1 and not self.schedule:
            raise ValueError("a policy with retries needs at least one escalation")

    def settings(self, base: FitSettings, attempt: int) -> FitSettings:
        """The settings of attempt ``attempt`` (1: ``base`` itself; k > 1: ``schedule[k - 2]``,
        the last one repeated).

        Examples
        --------
        >>> base = FitSettings(draws=1000, tune=1000, chains=4, target_accept=0.9)
        >>> policy = RetryPolicy(schedule=(Escalation(draws=2.0),), max_attempts=3)
        >>> [policy.settings(base, k).draws for k in (1, 2, 3)]  # the one escalation, repeated
        [1000, 2000, 2000]
        """
        if attempt == 1:
            return base
        return self.schedule[min(attempt - 2, len(self.schedule) - 1)].apply(base, attempt)


NO_RETRY = RetryPolicy(schedule=(), max_attempts=1)


@dataclass(frozen=True)
class GatedFit:
    """The fit that was kept (the passing one, else the last) and its verdict, whose
    ``attempts`` list every fit tried.

    Examples
    --------
    >>> always = lambda tree: Verdict.of([Failure("ppc", MISFIT, "misfit")], {})
    >>> out = fit_gated(lambda s: "tree", always, FitSettings(500, 500, 4, 0.9))
    >>> out.tree, out.verdict.passed, len(out.verdict.attempts)  # a misfit is never retried
    ('tree', False, 1)
    """

    tree: Any
    verdict: Verdict


def fit_gated(
    fit: Callable[[FitSettings], Any],
    check: Callable[[Any], Verdict],
    base: FitSettings,
    policy: RetryPolicy | None = None,
    *,
    log: Any = None,
) -> GatedFit:
    """Fit at ``base``, gate with ``check``; while the verdict failed on computational grounds
    only and attempts remain, refit at the policy's next settings. A misfit (or a mix of misfit
    and computational failures) is final at once. The returned verdict is the last attempt's,
    with every attempt (settings, failures, seconds) in ``attempts``.

    Examples
    --------
    >>> base = FitSettings(draws=500, tune=500, chains=4, target_accept=0.9)
    >>> def check(settings):  # a stand-in gate: divergences until target_accept >= 0.95
    ...     bad = [Failure("divergences", COMPUTATIONAL, "3 divergent transitions", 3.0)]
    ...     return Verdict.of(bad if settings.target_accept < 0.95 else [], {})
    >>> result = fit_gated(lambda settings: settings, check, base)  # the "fit" is its settings
    >>> result.verdict.passed, [a.passed for a in result.verdict.attempts]
    (True, [False, True])
    >>> result.tree
    FitSettings(draws=750, tune=1000, chains=4, target_accept=0.95, seed=1)
    """
    policy = policy or RetryPolicy()
    attempts: list[Attempt] = []
    for number in range(1, policy.max_attempts + 1):
        settings = policy.settings(base, number)
        t0 = time.perf_counter()
        tree = fit(settings)
        verdict = check(tree)
        attempts.append(Attempt(number, asdict(settings), verdict.passed, verdict.failures,
                                round(time.perf_counter() - t0, 3)))  # fmt: skip
        if verdict.passed or not verdict.retryable or number == policy.max_attempts:
            break
        if log is not None:
            log.warning(
                "attempt %d failed on computational grounds (%s); refitting with %s",
                        number, "; ".join(verdict.reasons), policy.settings(base, number + 1),
            )  # fmt: skip
    summary = {**verdict.summary, "attempts": len(attempts)}
    return GatedFit(tree, Verdict(verdict.passed, verdict.reasons, summary, verdict.failures,
                                  tuple(attempts)))  # fmt: skip
