"""Thompson sampling over trading signals with Beta-Bernoulli win rates pooled by family.

Each signal belongs to a family (``momentum``, ``mean_reversion`` ...). Its win probability has the
posterior ``Beta(prior.a + wins, prior.b + losses)``, where the prior is the family's (from the
nightly prior set, or a documented default) and the counts are this signal's own outcomes. Counts
are kept raw and the prior is added on read, so replacing a family prior never double-counts.

A decision draws ``p`` from the posterior and acts when ``p`` clears the signal's *hurdle*: with a
payoff history (at least one won and one lost trade), the win rate at which the expected edge
``p * avg_win - (1 - p) * avg_loss`` equals ``min_edge``; without one, ``threshold`` (0.5 by
default). PnL is in the trader's currency per trade.

The hurdle's payoffs are shrunk toward the family's: ``avg_win = (n0 * family_avg_win + W) /
(n0 + w)``, where ``w`` and ``W`` are the signal's (decayed) number of won trades and their summed
PnL, ``family_avg_win`` is the (decayed) average win of all the family's trades, the signal's
included, and ``n0`` is ``payoff_n0`` pseudo-trades (5 by default); the same for losses, with
``-PnL``. Two trades, one win of +100 and one loss of -1, no longer make a hurdle of 1/101 in a
family whose wins and losses are alike. (Linear shrinkage is the posterior mean of the mean size
under a conjugate Gamma model, as in :class:`~bayes_mem.live.payoff.PayoffModel`; an outlier
keeps weight ``1 / (n0 + 1)``.) A signal still needs a win and a loss of its own (raw counts)
before its hurdle leaves ``threshold``. With no family history left (decayed below the smallest
float) the hurdle is ``threshold`` again.

Forgetting multiplies every signal's counts *and PnL sums* by ``discount`` per tick (one tick per
recorded outcome by default, or whenever :meth:`Decider.tick` is called), so posteriors decay
toward the family prior and payoffs toward the family's recent averages, never toward zero. It is
O(1): counts and sums are stored against a global scale that is renormalised long before it could
overflow, and each family keeps running sums of its members' (so recording stays O(1)). Hurdles
are recomputed lazily: per signal on a scalar decision (~0.3 us), for the whole table on the
first large batch after any change (one vectorised pass, ~100-150 us at 10,000 signals).

Correlated outcomes. Trades of one family opened on the same day (a *cluster*: signals firing
together on correlated markets) have correlated outcomes; the nightly fit estimates the family's
intra-cluster correlation ``rho`` (:mod:`bayes_mem.offline.winrate`) and publishes it with the
family prior. Outcomes of *one signal* in one cluster (``record(..., cluster=key)``, ``key`` the
day the trade opened, say) count with their effective weight: ``n`` of them count as ``n / (1 +
(n - 1) rho)`` trades (each weighs ``1 / (1 + (n - 1) rho)``; wins, losses and PnL sums alike;
earlier outcomes of the cluster are re-weighted when another arrives, at the ``rho`` in force
then). A signal's outcomes in different clusters are independent given its win rate and count
fully. The last ``MAX_OPEN_CLUSTERS`` clusters of each signal are remembered; an outcome of an
older one counts as the first of a new cluster. The trader's path passes the cluster everywhere:
:meth:`bayes_mem.live.TradingEngine.settle` and :meth:`bayes_mem.store.PersistentDecider.record`
key each outcome by :func:`trade_day` of its opening (its settlement when the opening is
unknown), and replay the stored outcomes the same way on a restart, with the published ``rho``
set first, so a restart rebuilds the same weights (when ``rho`` did not change in between: a
refresh that changes it re-weights only the clusters that grow afterwards).

Full Bayes (optional). :meth:`Decider.set_family_draws` gives a family the Beta parameters of its
published hyperparameter draws: every decision then draws one of them (uniformly) and samples the
win rate from ``Beta(a_j + wins, b_j + losses)``, so the hyperparameters' uncertainty enters each
decision exactly instead of through the point prior. :meth:`decide` and :meth:`decide_batch` draw
one hyperparameter draw per decision (per signal); :meth:`choose`, one joint posterior draw,
draws one per family per call. :meth:`posterior` and :meth:`metrics` keep using the point prior.

Snapshots are schema ``bayes_mem.decider/2`` (``payoff_n0``; per signal the decayed PnL sums
``wp``/``lp``; per family its running sums), or ``bayes_mem.decider/3`` when they also carry a
family's ``rho`` or draws or a signal's open clusters (which older readers must refuse). Schema 1
snapshots are read too: their PnL sums never decayed, so the decayed sums are rebuilt as decayed
count x raw average (exact when nothing was forgotten, otherwise as if forgotten trades had the
average PnL) and the family sums from the members.

Everything is guarded by one lock; the same seed and the same calls give the same decisions.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, overload

import numpy as np

from bayes_mem.live.priors import DEFAULT_PRIOR, BetaPrior
from bayes_mem.live.validate import (
    check_bool,
    check_discount,
    check_int,
    check_name,
    check_positive,
    check_probability_open,
    check_real,
    check_schema,
    check_time,
    check_trade_id,
)

SNAPSHOT_SCHEMA = "bayes_mem.decider/2"
SNAPSHOT_SCHEMA_CLUSTERED = "bayes_mem.decider/3"  # with rho, draws or open clusters
_OLD_SCHEMAS = ("bayes_mem.decider/1",)  # read, rebuilding the decayed PnL sums (see above)

MAX_OPEN_CLUSTERS = 64  # clusters remembered per signal for the effective weights

DEFAULT_PAYOFF_N0 = 5.0  # pseudo-trades of the family's average win / loss behind a signal's own

# Renormalise stored counts when 1/scale passes this: far from float64 overflow, rare in time
# (every ~147,000 ticks at discount 0.999, every 212 ticks at discount 0.5).
_RENORMALISE_AT = 1e64

# Raw counts (trades, wins, losses, forgetting ticks) are at most this: integers a float holds
# exactly (no process records 2**53 trades; a larger count in a snapshot is corrupt).
MAX_COUNT = 2**53
# Snapshot invariants that hold up to rounding (sums accumulated in another order): this relative
# tolerance is far above the rounding of any realistic history (~1e-16 per operation).
_SNAPSHOT_RTOL = 1e-6

# Up to this many signals, draw with scalar calls instead of one vectorised call.
_SMALL_BATCH = 24

# Rows of the vectorised table (one column per signal). _HURDLE is not finite (NaN, inf) without a
# payoff hurdle; _HURDLE_OR_THR holds the configured threshold there instead (the common case, no
# per-call one); both are valid while the table's version is the decider's. A draw with valid
# hurdles reads only the first _DRAW_ROWS rows. _WP/_LP are the decayed PnL sums / scale, _FAM the
# family's index, _GATE 1.0 once the signal has a win and a loss, else NaN: what the hurdles are
# computed from.
_PA, _PB, _WS, _LS, _HURDLE, _HURDLE_OR_THR, _WP, _LP, _FAM, _GATE = range(10)
_DRAW_ROWS = 6
_ROWS = 10
_STATE_ROWS = [_PA, _PB, _WS, _LS, _WP, _LP, _FAM, _GATE]  # what _sync copies


def trade_day(opened_at: object) -> str:
    """The cluster key of a trade: the UTC calendar day (``"YYYY-MM-DD"``) it opened, the key
    the nightly win-rate fit clusters by (:func:`bayes_mem.offline.recalibrate.winrate_trades`).

    ``opened_at``: a datetime (naive: UTC; a ``pandas.Timestamp`` is one), a date (that day), or
    ISO 8601 text; anything else (None, NaN, NaT, numbers) raises naming the value.

    Examples
    --------
    >>> import datetime as dt
    >>> trade_day(dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))))
    '2026-03-03'
    >>> trade_day("2026-03-02")
    '2026-03-02'
    """
    return check_time(opened_at, "opened_at").date().isoformat()


class DuplicateTradeError(ValueError):
    """An outcome with this trade id was already recorded: by this decider, or (through
    :class:`bayes_mem.store.PersistentDecider` and the store) by any process sharing the store.
    Nothing was recorded. The one exception for a repeated trade id everywhere (re-exported by
    :mod:`bayes_mem.store`); a ValueError, so callers catching that still work.

    Examples
    --------
    >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
    >>> d.register("mom_5d", "momentum")
    >>> d.record("mom_5d", True, 120.0, trade_id="t1")
    >>> try:
    ...     d.record("mom_5d", True, 120.0, trade_id="t1")  # a retry of the same outcome
    ... except DuplicateTradeError as exc:
    ...     print(exc)
    trade_id 't1' was already recorded
    >>> d.posterior("mom_5d")  # counted once
    BetaPrior(a=6.0, b=5.0)
    """


class UnknownSignalError(ValueError, KeyError):
    """A signal (or family) name that was never registered.

    Examples
    --------
    >>> d = Decider(["momentum"])
    >>> try:
    ...     d.decide("mom_5d")
    ... except UnknownSignalError as exc:
    ...     print(exc)
    unknown signal 'mom_5d'; register it first
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _BetaSampler(Protocol):
    """``Generator.beta`` bound to its generator (the decider's or a caller's): ``__self__`` is
    that generator, which also draws the hyperparameter index under full Bayes."""

    @property
    def __self__(self) -> np.random.Generator: ...

    @overload
    def __call__(self, a: float, b: float) -> float: ...

    @overload
    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


class _Family:
    """A family's prior, members and running sums of its members' decayed counts and PnL (each
    divided by the decider's scale, like the members')."""

    __slots__ = ("draws", "index", "lp", "ls", "members", "name", "prior", "rho", "wp", "ws")

    def __init__(self, name: str, prior: BetaPrior, index: int) -> None:
        self.name = name
        self.prior = prior
        self.rho = 0.0  # intra-cluster correlation of the family's outcomes
        self.draws: tuple[np.ndarray, np.ndarray] | None = None  # Beta (a, b) per hyper draw
        self.index = index  # position in the decider's families, for the vectorised hurdles
        self.members: list[int] = []
        self.ws = 0.0  # sum of the members' ws, ls, wp and lp
        self.ls = 0.0
        self.wp = 0.0
        self.lp = 0.0

    def scale(self, factor: float) -> None:
        self.ws *= factor
        self.ls *= factor
        self.wp *= factor
        self.lp *= factor


class _Signal:
    """Mutable per-signal state. ``ws``/``ls`` (counts) and ``wp``/``lp`` (PnL sums) are decayed
    and divided by the decider's scale; the rest is raw."""

    __slots__ = (
        "clusters",
        "family",
        "hurdle",
        "hurdle_version",
        "index",
        "loss_pnl",
        "losses",
        "lp",
        "ls",
        "name",
        "pa",
        "pb",
        "pnl_m2",
        "pnl_mean",
        "pnl_total",
        "trades",
        "win_pnl",
        "wins",
        "wp",
        "ws",
    )

    def __init__(self, name: str, index: int, family: _Family) -> None:
        self.name = name
        self.index = index
        self.family = family
        self.pa = family.prior.a  # the family prior, copied here for the hot path
        self.pb = family.prior.b
        self.ws = 0.0  # effective wins / scale
        self.ls = 0.0  # effective losses / scale
        self.trades = 0  # raw counts, never decayed
        self.wins = 0
        self.losses = 0
        self.pnl_total = 0.0
        self.pnl_mean = 0.0  # Welford running mean and sum of squared deviations of PnL
        self.pnl_m2 = 0.0
        self.win_pnl = 0.0  # sum of PnL over won trades (>= 0), raw
        self.loss_pnl = 0.0  # sum of -PnL over lost trades (>= 0), raw
        self.wp = 0.0  # decayed sum of PnL over won trades / scale
        self.lp = 0.0  # decayed sum of -PnL over lost trades / scale
        self.hurdle: float | None = None  # win rate needed to act; None: no payoff history
        self.hurdle_version = -1  # the decider's version when ``hurdle`` was computed
        # open clusters: key -> [outcomes, ws, ls, wp, lp contributed (stored units)]
        self.clusters: OrderedDict[str, list[float]] | None = None


@dataclass(frozen=True, slots=True)
class SignalMetrics:
    """Quality of one signal. PnL figures are per trade, in the trader's currency.

    Examples
    --------
    >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
    >>> d.register("mom_5d", "momentum")
    >>> for i, pnl in enumerate([120.0, 90.0, -100.0, 110.0]):
    ...     d.record("mom_5d", pnl > 0, pnl, trade_id=i)
    >>> m = d.metrics("mom_5d")
    >>> m.trades, m.wins, round(m.posterior_mean, 3), round(m.avg_win, 2), m.avg_loss
    (4, 3, 0.571, 106.67, 100.0)
    >>> round(m.credible_low, 3), round(m.credible_high, 3), round(m.hurdle, 4)
    (0.355, 0.776, 0.4839)
    """

    signal: str
    family: str
    trades: int
    wins: int
    losses: int
    effective_wins: float  # after forgetting; what the posterior uses
    effective_losses: float
    posterior_a: float
    posterior_b: float
    posterior_mean: float
    posterior_sd: float
    credible_prob: float
    credible_low: float  # equal-tailed credible interval of the win rate
    credible_high: float
    break_even: float  # avg_loss / (avg_win + avg_loss); the threshold without payoff history
    p_above_break_even: float  # posterior P(win rate > break_even)
    total_pnl: float
    mean_pnl: float | None  # None with no trades
    pnl_sd: float | None  # sample sd, None with < 2 trades
    sharpe: float | None  # mean / sd of per-trade PnL; None with < 2 trades or zero sd
    avg_win: float | None
    avg_loss: float | None  # positive number: mean loss size
    expected_edge: float | None  # E[p] * avg_win - (1 - E[p]) * avg_loss; None without payoff
    # what the decision uses: decayed payoffs shrunk toward the family's (None without a payoff
    # hurdle), the family's decayed averages, and the hurdle itself (the threshold without one)
    shrunk_avg_win: float | None
    shrunk_avg_loss: float | None
    family_avg_win: float | None
    family_avg_loss: float | None
    hurdle: float

    def to_dict(self) -> dict[str, Any]:
        """The metrics as a plain dict (field name -> value), e.g. for JSON.

        Examples
        --------
        Every field by name; no trades yet, so the per-trade PnL figures are None:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> row = d.metrics("mom_5d").to_dict()
        >>> row["signal"], row["trades"], row["posterior_mean"], row["mean_pnl"]
        ('mom_5d', 0, 0.5, None)
        >>> import dataclasses
        >>> len(row) == len(dataclasses.fields(SignalMetrics))
        True
        """
        return asdict(self)


class Decider:
    """Thompson-sampling decisions over registered signals. See the module docstring.

    Parameters
    ----------
    families : mapping of family name to :class:`BetaPrior` (``None`` for the default prior), or an
        iterable of family names. More can be added with :meth:`add_family`.
    threshold : win-probability hurdle for signals without payoff history, in (0, 1).
    min_edge : minimum sampled expected PnL per trade (currency) for signals with payoff history.
    payoff_n0 : pseudo-trades (> 0) of the family's average win and loss behind each signal's own
        in the hurdle's payoffs.
    discount : forgetting factor per tick, in (0, 1]; 1 means never forget.
    clock : ``"outcome"`` ticks once per recorded outcome (when forgetting, ``discount < 1``: a
        decider that never forgets has nothing to tick); ``"manual"`` only on :meth:`tick`.
    rng : seed or ``numpy.random.Generator``.

    Examples
    --------
    >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, rng=0)
    >>> d.register("mom_5d", "momentum")
    >>> for i, pnl in enumerate([120.0, 90.0, -100.0, 110.0]):
    ...     d.record("mom_5d", pnl > 0, pnl, trade_id=f"t{i}")
    >>> d.posterior("mom_5d")  # Beta(5 + 3 wins, 5 + 1 loss)
    BetaPrior(a=8.0, b=6.0)
    >>> act, p = d.decide("mom_5d")  # one Thompson draw against the hurdle
    >>> act, round(p, 3)
    (True, 0.522)
    """

    def __init__(
        self,
        families: Mapping[str, BetaPrior | None] | Iterable[str] = (),
        *,
        threshold: float = 0.5,
        min_edge: float = 0.0,
        payoff_n0: float = DEFAULT_PAYOFF_N0,
        discount: float = 1.0,
        clock: Literal["outcome", "manual"] = "outcome",
        rng: int | np.random.Generator | None = None,
    ) -> None:
        self._threshold = check_probability_open(threshold, "threshold")
        self._min_edge = check_real(min_edge, "min_edge")
        self._payoff_n0 = check_positive(payoff_n0, "payoff_n0")
        self._discount = check_discount(discount)
        if clock not in ("outcome", "manual"):
            raise ValueError(f"clock must be 'outcome' or 'manual', got {clock!r}")
        self._clock = clock
        if isinstance(rng, np.random.Generator):
            self._rng = rng
        elif rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
            self._rng = np.random.default_rng(rng)
        else:
            raise TypeError(f"rng must be an int seed, a numpy Generator or None, got {rng!r}")
        # mypy does not model a bound method's __self__, hence the ignore
        self._beta: _BetaSampler = self._rng.beta  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._signals: dict[str, _Signal] = {}
        self._index: dict[str, int] = {}  # name -> position, for vectorised lookups
        self._order: list[_Signal] = []
        self._trade_ids: set[str] = set()
        self._scale = 1.0  # effective count = stored count * scale
        self._inv_scale = 1.0
        self._ticks = 0
        self._table = np.zeros((_ROWS, 64))
        self._dirty: set[int] = set()
        # bumped by whatever can change a hurdle (an outcome, forgetting); cached hurdles carry
        # the version they were computed at
        self._version = 0
        self._table_version = -1
        self._draw_families: list[_Family] = []  # families with hyperparameter draws
        for name, prior in _family_items(families):
            self.add_family(name, prior)

    # ------------------------------------------------------------------ configuration
    @property
    def threshold(self) -> float:
        """The win-probability hurdle for signals without payoff history, in (0, 1).

        Examples
        --------
        >>> Decider(threshold=0.55).threshold
        0.55
        """
        return self._threshold

    @property
    def min_edge(self) -> float:
        """The minimum sampled expected PnL per trade (currency) for signals with payoff history.

        Examples
        --------
        >>> Decider(min_edge=5.0).min_edge
        5.0
        """
        return self._min_edge

    @property
    def payoff_n0(self) -> float:
        """Pseudo-trades of the family's average win and loss behind each signal's own in the
        hurdle.

        Examples
        --------
        >>> Decider().payoff_n0 == DEFAULT_PAYOFF_N0
        True
        """
        return self._payoff_n0

    @property
    def discount(self) -> float:
        """The forgetting factor per tick, in (0, 1] (1: never forget).

        Examples
        --------
        >>> Decider(discount=0.99).discount
        0.99
        """
        return self._discount

    @property
    def clock(self) -> Literal["outcome", "manual"]:
        """``"outcome"`` (a forgetting tick per recorded outcome, when ``discount < 1``) or
        ``"manual"`` (on :meth:`tick`).

        Examples
        --------
        >>> Decider().clock, Decider(clock="manual").clock
        ('outcome', 'manual')
        """
        return self._clock

    @property
    def ticks(self) -> int:
        """Forgetting ticks so far.

        Examples
        --------
        With the outcome clock and forgetting on (discount < 1) each recorded outcome is one tick; a
        decider that never forgets (discount 1) does not tick on outcomes:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, discount=0.9)
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 50.0, trade_id="t1")
        >>> d.record("mom_5d", False, -40.0, trade_id="t2")
        >>> d.ticks
        2
        >>> d.tick(3)
        >>> d.ticks
        5
        """
        return self._ticks

    @property
    def signals(self) -> tuple[str, ...]:
        """Registered signal names, in registration order (the order of :meth:`indices`).

        Examples
        --------
        Registration order:

        >>> d = Decider(["momentum", "carry"])
        >>> d.register("mom_20d", "momentum")
        >>> d.register("fx_carry", "carry")
        >>> d.signals
        ('mom_20d', 'fx_carry')
        """
        with self._lock:
            return tuple(s.name for s in self._order)

    @property
    def families(self) -> dict[str, BetaPrior]:
        """Family name -> its current prior (a copy of the mapping).

        Examples
        --------
        A named family without a prior gets the default one:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.add_family("carry")
        >>> d.families["momentum"], d.families["carry"] == DEFAULT_PRIOR
        (BetaPrior(a=5.0, b=5.0), True)
        """
        with self._lock:
            return {name: f.prior for name, f in self._families.items()}

    def family_of(self, signal: str) -> str:
        """The family a registered signal belongs to.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.family_of("mom_5d")
        'momentum'
        """
        with self._lock:
            return self._get(signal).family.name

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, signal: object) -> bool:
        return isinstance(signal, str) and signal in self._signals

    def __repr__(self) -> str:
        return (
            f"Decider({len(self._families)} families, {len(self._order)} signals, "
            f"threshold={self._threshold}, min_edge={self._min_edge}, "
            f"payoff_n0={self._payoff_n0}, discount={self._discount})"
        )

    # ------------------------------------------------------------------ registration
    def add_family(self, name: str, prior: BetaPrior | None = None) -> None:
        """Declare a signal family with its prior (default: :data:`DEFAULT_PRIOR`).

        Examples
        --------
        A new family with its own prior; declaring it again is an error:

        >>> d = Decider()
        >>> d.add_family("carry", BetaPrior(3.0, 2.0))
        >>> d.families
        {'carry': BetaPrior(a=3.0, b=2.0)}
        >>> d.add_family("carry")
        Traceback (most recent call last):
            ...
        ValueError: family 'carry' already exists; use set_family_prior
        """
        check_name(name, "family name")
        prior = _check_prior(prior)
        with self._lock:
            if name in self._families:
                raise ValueError(f"family {name!r} already exists; use set_family_prior")
            self._families[name] = _Family(name, prior, len(self._families))

    def set_family_prior(self, name: str, prior: BetaPrior, *, rho: float | None = None) -> None:
        """Replace a family's prior; its signals' raw counts are kept and combined on read.
        ``rho`` (in [0, 1)), when given, replaces the family's intra-cluster correlation (the
        weight of later outcomes of one signal in one cluster; see the module docstring).

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 100.0, trade_id=1)
        >>> d.set_family_prior("momentum", BetaPrior(20.0, 20.0))  # the nightly refit
        >>> d.posterior("mom_5d")  # the new prior plus the same one win
        BetaPrior(a=21.0, b=20.0)
        """
        check_name(name, "family name")
        if not isinstance(prior, BetaPrior):
            raise TypeError(f"prior must be a BetaPrior, got {type(prior).__name__} {prior!r}")
        if rho is not None:
            rho = _check_rho(rho)
        with self._lock:
            fam = self._get_family(name)
            fam.prior = prior
            if rho is not None:
                fam.rho = rho
            for i in fam.members:
                s = self._order[i]
                s.pa, s.pb = prior.a, prior.b
                self._dirty.add(i)

    def family_rho(self, name: str) -> float:
        """The family's intra-cluster correlation (0 unless set).

        Examples
        --------
        0 until the nightly fit sets it (:meth:`set_family_prior` with ``rho``):

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.family_rho("momentum")
        0.0
        >>> d.set_family_prior("momentum", BetaPrior(6.0, 4.0), rho=0.1)
        >>> d.family_rho("momentum")
        0.1
        """
        with self._lock:
            return self._get_family(name).rho

    def set_family_draws(
        self,
        name: str,
        draws: tuple[np.ndarray | Sequence[float], np.ndarray | Sequence[float]] | None,
    ) -> None:
        """Full Bayes for a family: ``draws = (a, b)``, the Beta parameters of each published
        hyperparameter draw (``FamilyPosterior.betas()``), equal lengths, all > 0; each decision
        then draws one of them (see the module docstring). ``None`` goes back to the point prior.

        Examples
        --------
        Two hyperparameter draws; each decision picks one by a uniform (here ``pick``), the counts
        are added to it:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.set_family_draws("momentum", ([2.0, 8.0], [8.0, 2.0]))
        >>> d.beta_parameters("mom_5d", pick=lambda: 0.25)  # draw 0; the mean is the point prior's
        (2.0, 8.0, 0.5)
        >>> d.beta_parameters("mom_5d", pick=lambda: 0.75)  # draw 1
        (8.0, 2.0, 0.5)
        >>> d.set_family_draws("momentum", None)  # back to the point prior
        >>> d.beta_parameters("mom_5d")
        (5.0, 5.0, 0.5)
        """
        check_name(name, "family name")
        arrays: tuple[np.ndarray, np.ndarray] | None = None
        if draws is not None:
            try:
                a, b = (np.array(x, dtype=float) for x in draws)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"draws must be a pair of arrays (a, b), got {draws!r:.80}") from (
                    exc
                )
            if a.ndim != 1 or a.shape != b.shape or a.size == 0:
                raise ValueError(f"draws need equal-length 1-d a and b, got {a.shape}, {b.shape}")
            bad = ~(np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"draw {i} has a={a[i]!r}, b={b[i]!r}: both must be finite, > 0")
            a.setflags(write=False)
            b.setflags(write=False)
            arrays = (a, b)
        with self._lock:
            fam = self._get_family(name)
            fam.draws = arrays
            self._draw_families = [f for f in self._families.values() if f.draws is not None]

    def register(self, signal: str, family: str) -> None:
        """Register a signal in an existing family. Registering it again in the same family is a
        no-op; in another family it is an error.

        Examples
        --------
        Again in the same family: a no-op; in another family: an error:

        >>> d = Decider(["momentum", "carry"])
        >>> d.register("mom_5d", "momentum")
        >>> d.register("mom_5d", "momentum")
        >>> len(d)
        1
        >>> d.register("mom_5d", "carry")
        Traceback (most recent call last):
            ...
        ValueError: signal 'mom_5d' is registered in family 'momentum', not 'carry'
        """
        check_name(signal)
        check_name(family, "family name")
        with self._lock:
            fam = self._registration(signal, family)
            if fam is not None:
                self._add_signal(signal, fam)

    def check_register(self, signal: str, family: str) -> bool:
        """Raise what :meth:`register` would raise for these arguments, changing nothing; return
        whether registering would add the signal (False: already registered in ``family``). For
        a caller that must write elsewhere first (the store) and then register without failing.

        Examples
        --------
        A dry run of :meth:`register`:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.check_register("mom_20d", "momentum"), d.check_register("mom_5d", "momentum")
        (True, False)
        >>> "mom_20d" in d  # nothing changed
        False
        """
        check_name(signal)
        check_name(family, "family name")
        with self._lock:
            return self._registration(signal, family) is not None

    def _registration(self, signal: str, family: str) -> _Family | None:
        """The family to add ``signal`` to; None if it is already registered there (lock
        held)."""
        fam = self._get_family(family)
        existing = self._signals.get(signal)
        if existing is None:
            return fam
        if existing.family is not fam:
            raise ValueError(
                f"signal {signal!r} is registered in family {existing.family.name!r}, "
                f"not {family!r}"
            )
        return None

    def _add_signal(self, signal: str, fam: _Family) -> _Signal:
        s = _Signal(signal, len(self._order), fam)
        self._order.append(s)
        self._signals[signal] = s
        self._index[signal] = s.index
        fam.members.append(s.index)
        self._dirty.add(s.index)
        self._version += 1
        return s

    # ------------------------------------------------------------------ decisions
    def decide(
        self,
        signal: str,
        *,
        threshold: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[bool, float]:
        """Draw a win probability for one signal; return ``(act, p)``.

        ``threshold`` overrides the configured one for this call (signals without payoff
        history only). ``rng`` draws from that generator instead of the decider's own (which is
        then left untouched): a generator seeded by the decision's key makes the decision a pure
        function of the seed, the key and the recorded outcomes, so a restarted process repeats it.

        Examples
        --------
        >>> import numpy as np
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, rng=0)
        >>> d.register("mom_5d", "momentum")
        >>> act, p = d.decide("mom_5d")  # no outcomes yet: the hurdle is the threshold, 0.5
        >>> act, round(p, 3)
        (False, 0.444)
        >>> a1 = d.decide("mom_5d", rng=np.random.default_rng(7))  # keyed: repeatable
        >>> a1 == d.decide("mom_5d", rng=np.random.default_rng(7))
        True
        """
        if threshold is None:
            thr = self._threshold
        else:
            thr = check_probability_open(threshold, "threshold")
        beta = self._beta if rng is None else self._beta_of(rng)
        lock = self._lock
        lock.acquire()
        try:
            try:
                s = self._signals[signal]
            except (KeyError, TypeError):
                raise self._unknown(signal) from None
            sc = self._scale
            draws = s.family.draws
            if draws is None:
                p = beta(s.pa + s.ws * sc, s.pb + s.ls * sc)
            else:  # full Bayes: one hyperparameter draw for this decision
                j = int(beta.__self__.integers(draws[0].size))
                p = beta(draws[0][j] + s.ws * sc, draws[1][j] + s.ls * sc)
            hurdle = s.hurdle if s.hurdle_version == self._version else self._hurdle(s)
        finally:
            lock.release()
        return p > (thr if hurdle is None else hurdle), p

    def beta_parameters(
        self, signal: str, pick: Callable[[], float] | None = None
    ) -> tuple[float, float, float]:
        """``(a, b, mean)``: the Beta parameters a win-rate draw for ``signal`` uses now (the
        point prior plus the decayed counts; for a full-Bayes family, the hyperparameter draw
        at ``min(int(u n), n - 1)`` of the ``n`` draws, ``u = pick()`` a uniform, called only
        for such a family) and the posterior mean under the point prior
        (:meth:`posterior_mean`). For a caller that draws from its own counter-based stream
        (the engine's :mod:`~bayes_mem.live.event_draws`).

        Examples
        --------
        Prior Beta(5, 5) plus 3 wins and 1 loss: (8, 6) and mean 8 / 14:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> for i, won in enumerate([True, True, False, True]):
        ...     d.record("mom_5d", won, 10.0 if won else -10.0, trade_id=i)
        >>> a, b, mean = d.beta_parameters("mom_5d")
        >>> a, b, round(mean, 4)
        (8.0, 6.0, 0.5714)
        """
        with self._lock:
            try:
                s = self._signals[signal]
            except (KeyError, TypeError):
                raise self._unknown(signal) from None
            sc = self._scale
            a = s.pa + s.ws * sc
            mean = a / (a + s.pb + s.ls * sc)
            draws = s.family.draws
            if draws is None:
                return a, s.pb + s.ls * sc, mean
            size = draws[0].size
            if pick is None:
                raise ValueError(f"signal {signal!r}: its family draws hyperparameters: give pick")
            j = min(int(pick() * size), size - 1)
            return float(draws[0][j]) + s.ws * sc, float(draws[1][j]) + s.ls * sc, mean

    def beta_parameters_batch(
        self, idx: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`beta_parameters` of the signals at ``idx`` (from :meth:`indices`) under the
        point prior, vectorised with the same operations (the same bits): ``(a, b, mean,
        full_bayes)``, the last a boolean mask of the signals whose family draws
        hyperparameters (their ``a``, ``b`` are the point prior's: call
        :meth:`beta_parameters` for those).

        Examples
        --------
        The same numbers for several signals at once (none of the families draws hyperparameters):

        >>> import numpy as np
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.register("mom_20d", "momentum")
        >>> d.record("mom_20d", True, 10.0, trade_id="t1")
        >>> a, b, mean, full = d.beta_parameters_batch(d.indices(["mom_5d", "mom_20d"]))
        >>> a, b, np.round(mean, 4), full
        (array([5., 6.]), array([5., 5.]), array([0.5   , 0.5455]), array([False, False]))
        """
        with self._lock:
            if self._dirty:
                self._sync()
            t = np.take(self._table[: _FAM + 1], idx, axis=1)
            sc = self._scale
            if sc == 1.0:  # x * 1.0 == x
                ws, ls = t[_WS], t[_LS]
            else:
                ws, ls = t[_WS] * sc, t[_LS] * sc
            a = t[_PA] + ws
            mean = a / (a + t[_PB] + ls)
            b = t[_PB] + ls
            if self._draw_families:
                fams = np.array([f.index for f in self._draw_families], dtype=float)
                full = np.isin(t[_FAM], fams)
            else:
                full = np.zeros(idx.shape[0], dtype=bool)
        return a, b, mean, full

    def indices(self, signals: Sequence[str]) -> np.ndarray:
        """Positions of the named signals, for repeated :meth:`decide_batch` / :meth:`choose`
        calls on the same set without re-resolving names.

        Examples
        --------
        Positions in registration order:

        >>> d = Decider(["momentum"])
        >>> for name in ("mom_5d", "mom_20d", "mom_60d"):
        ...     d.register(name, "momentum")
        >>> d.indices(["mom_60d", "mom_5d"])
        array([2, 0])
        """
        with self._lock:
            return self._resolve(signals)

    @staticmethod
    def _beta_of(rng: object) -> _BetaSampler:
        """The Beta sampler of a caller's generator (see ``rng`` of :meth:`decide`)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator or None, got {type(rng).__name__}")
        return rng.beta  # type: ignore[return-value]  # a bound method (see _BetaSampler)

    def decide_batch(
        self,
        signals: Sequence[str] | np.ndarray,
        *,
        threshold: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One independent draw per signal; return boolean ``act`` and sampled ``p`` arrays in the
        order given. ``signals`` is a sequence of names or an index array from :meth:`indices`.
        ``rng``: as in :meth:`decide`.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, rng=1)
        >>> for name, wins in (("mom_5d", 8), ("mom_20d", 5), ("mom_60d", 2)):
        ...     d.register(name, "momentum")
        ...     for i in range(10):  # ``wins`` of 10 trades won +100, the others lost -100
        ...         d.record(name, i < wins, 100.0 if i < wins else -100.0, trade_id=f"{name}{i}")
        >>> act, p = d.decide_batch(["mom_5d", "mom_20d", "mom_60d"])
        >>> act.tolist(), [round(x, 3) for x in p.tolist()]
        ([True, True, False], [0.648, 0.612, 0.375])
        """
        thr = (
            self._threshold if threshold is None else check_probability_open(threshold, "threshold")
        )
        beta = self._beta if rng is None else self._beta_of(rng)
        with self._lock:
            idx = self._resolve(signals)
            p, hurdle = self._draw(idx, thr, beta)
        return p > hurdle, p

    def choose(
        self,
        signals: Sequence[str] | np.ndarray,
        k: int = 1,
        *,
        threshold: float | None = None,
        only_acting: bool = True,
        rng: np.random.Generator | None = None,
    ) -> list[tuple[str, float]]:
        """Best ``k`` of many signals firing at once, from one joint posterior draw.

        Signals are ranked by the sampled win probability minus their hurdle (the margin by
        which the sampled expected edge clears ``min_edge``, in win-rate units, comparable across
        payoffs) and returned best first as ``(name, p)``. With ``only_acting`` (default) only
        signals that clear their hurdle are returned, so fewer than ``k`` may come back; without
        it, always ``k`` (plain top-k Thompson sampling). ``rng``: as in :meth:`decide`.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, rng=1)
        >>> for name, wins in (("mom_5d", 8), ("mom_20d", 5), ("mom_60d", 2)):
        ...     d.register(name, "momentum")
        ...     for i in range(10):  # ``wins`` of 10 trades won +100, the others lost -100
        ...         d.record(name, i < wins, 100.0 if i < wins else -100.0, trade_id=f"{name}{i}")
        >>> [(name, round(p, 3)) for name, p in d.choose(["mom_5d", "mom_20d", "mom_60d"], k=2)]
        [('mom_5d', 0.648), ('mom_20d', 0.612)]
        """
        thr = (
            self._threshold if threshold is None else check_probability_open(threshold, "threshold")
        )
        k = check_int(k, "k", minimum=1)
        only_acting = check_bool(only_acting, "only_acting")
        beta = self._beta if rng is None else self._beta_of(rng)
        with self._lock:
            idx = self._resolve(signals)
            n = idx.shape[0]
            if k > n:
                raise ValueError(f"k={k} is larger than the number of signals given ({n})")
            order = self._order
            if n <= _SMALL_BATCH:
                ids = idx.tolist()
                if len(set(ids)) != n:
                    raise ValueError("signals given to choose() must be distinct")
                draws, hurdles = self._draw_scalar(ids, thr, beta, joint=True)
                margins = [x - h for x, h in zip(draws, hurdles, strict=True)]
                ranked = sorted(range(n), key=margins.__getitem__, reverse=True)[:k]
                return [
                    (order[ids[j]].name, draws[j])
                    for j in ranked
                    if margins[j] > 0.0 or not only_acting
                ]
            seen = np.zeros(len(order), dtype=bool)
            seen[idx] = True
            if np.count_nonzero(seen) != n:
                raise ValueError("signals given to choose() must be distinct")
            p, hurdle = self._draw(idx, thr, beta, joint=True)
            margin = p - hurdle
            if k == 1:
                top = np.array([np.argmax(margin)])
            else:
                top = np.argpartition(margin, n - k)[n - k :] if k < n else np.arange(n)
                top = top[np.argsort(-margin[top], kind="stable")]
            return [
                (order[idx[j]].name, float(p[j]))
                for j in top.tolist()
                if margin[j] > 0.0 or not only_acting
            ]

    def _draw(
        self, idx: np.ndarray, thr: float, beta: _BetaSampler, joint: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws (by ``beta``, a ``Generator.beta``) and hurdles for the signals at
        ``idx`` (lock held). With hyperparameter draws: one per signal, or one per family when
        ``joint``."""
        if idx.shape[0] <= _SMALL_BATCH:
            draws, hurdles = self._draw_scalar(idx.tolist(), thr, beta, joint)
            return np.array(draws, dtype=float), np.array(hurdles, dtype=float)
        if self._dirty:
            self._sync()
        if self._table_version != self._version and 2 * idx.shape[0] >= len(self._order):
            self._refresh_hurdles()  # a large batch: cache the whole table's hurdles
        fresh = self._table_version == self._version
        rows = self._table[:_DRAW_ROWS] if fresh and not self._draw_families else self._table
        t = np.take(rows, idx, axis=1)
        pa, pb = t[_PA], t[_PB]
        if self._draw_families:  # full Bayes: replace the point prior by hyperparameter draws
            pa, pb = pa.copy(), pb.copy()
            fam_of = t[_FAM]
            gen = beta.__self__
            for f in self._draw_families:
                at = np.flatnonzero(fam_of == f.index)
                if at.size:
                    assert f.draws is not None  # the families in _draw_families have draws
                    j = gen.integers(f.draws[0].size, size=1 if joint else at.size)
                    pa[at], pb[at] = f.draws[0][j], f.draws[1][j]
        if self._scale == 1.0:
            p = beta(pa + t[_WS], pb + t[_LS])
        else:
            sc = self._scale
            p = beta(pa + t[_WS] * sc, pb + t[_LS] * sc)
        if fresh:
            if thr == self._threshold:
                return p, t[_HURDLE_OR_THR]
            h = t[_HURDLE]
        else:  # a small batch after a change: these signals' hurdles only
            h = self._hurdles(t)
        return p, np.where(np.isfinite(h), h, thr)

    def _draw_scalar(
        self, ids: list[int], thr: float, beta: _BetaSampler, joint: bool = False
    ) -> tuple[list[float], list[float]]:
        """Scalar draws for a few signals: ``Generator.beta`` on arrays has ~20 us of fixed
        overhead, a scalar draw ~1 us."""
        order, sc, version = self._order, self._scale, self._version
        draws, hurdles = [], []
        picked: dict[int, int] = {}  # joint: the hyperparameter draw of each family
        for i in ids:
            s = order[i]
            fd = s.family.draws
            if fd is None:
                draws.append(beta(s.pa + s.ws * sc, s.pb + s.ls * sc))
            else:
                j = picked.get(s.family.index) if joint else None
                if j is None:
                    j = int(beta.__self__.integers(fd[0].size))
                    picked[s.family.index] = j
                draws.append(beta(fd[0][j] + s.ws * sc, fd[1][j] + s.ls * sc))
            h = s.hurdle if s.hurdle_version == version else self._hurdle(s)
            hurdles.append(thr if h is None else h)
        return draws, hurdles

    # ------------------------------------------------------------------ hurdles
    def _shrunk_payoffs(self, s: _Signal) -> tuple[float, float] | None:
        """(avg win, avg loss) of the hurdle: decayed, shrunk toward the family's (lock held);
        None without a win and a loss of the signal's own or without family history left."""
        fam = s.family
        if not (s.wins and s.losses and fam.ws > 0.0 and fam.ls > 0.0):
            return None
        n0, sc = self._payoff_n0, self._scale
        # the vectorised _hurdles does the same operations in the same order (same bits)
        avg_win = (n0 * (fam.wp / fam.ws) + s.wp * sc) / (n0 + s.ws * sc)
        avg_loss = (n0 * (fam.lp / fam.ls) + s.lp * sc) / (n0 + s.ls * sc)
        return avg_win, avg_loss

    def _hurdle(self, s: _Signal) -> float | None:
        """The signal's hurdle now, cached with the current version (lock held)."""
        payoffs = self._shrunk_payoffs(s)
        hurdle = None
        if payoffs is not None:
            avg_win, avg_loss = payoffs
            spread = avg_win + avg_loss
            if spread > 0.0:
                hurdle = (avg_loss + self._min_edge) / spread
        s.hurdle, s.hurdle_version = hurdle, self._version
        return hurdle

    def _hurdles(self, t: np.ndarray) -> np.ndarray:
        """:meth:`_hurdle` over table columns ``t``, vectorised: the same floating-point
        operations in the same order, so the same bits. Not finite (NaN, inf) where the scalar
        gives None: no payoff gate (_GATE is NaN), no family history left, or a zero spread."""
        fams = list(self._families.values())
        n0, sc, edge = self._payoff_n0, self._scale, self._min_edge
        fws = np.array([f.ws for f in fams])
        fls = np.array([f.ls for f in fams])
        with np.errstate(divide="ignore", invalid="ignore"):
            kcw = n0 * (np.array([f.wp for f in fams]) / fws)
            kcl = n0 * (np.array([f.lp for f in fams]) / fls)
            kcw[~(fws > 0.0)] = math.nan  # no family history left
            kcl[~(fls > 0.0)] = math.nan
            fam = t[_FAM].astype(np.intp)
            # in place: at 10,000 signals each temporary array costs as much as the arithmetic
            avg_win, avg_loss, tmp = kcw[fam], kcl[fam], np.empty(t.shape[1])
            for avg, pnl, count in ((avg_win, _WP, _WS), (avg_loss, _LP, _LS)):
                if sc == 1.0:  # x * 1.0 == x: skip the products
                    avg += t[pnl]
                    np.add(t[count], n0, out=tmp)
                else:
                    np.multiply(t[pnl], sc, out=tmp)
                    avg += tmp
                    np.multiply(t[count], sc, out=tmp)
                    tmp += n0
                avg /= tmp  # (n0 c + pnl sc) / (n0 + count sc)
            np.add(avg_win, avg_loss, out=tmp)  # the spread, >= 0
            if edge != 0.0:  # x + 0.0 == x
                avg_loss += edge
            avg_loss /= tmp  # a zero spread gives inf or NaN
        avg_loss *= t[_GATE]  # NaN without a win and a loss of the signal's own
        return avg_loss

    def _refresh_hurdles(self) -> None:
        """Recompute the table's hurdle rows for every signal (lock held, table synced)."""
        n = len(self._order)
        h = self._hurdles(self._table[:, :n])
        self._table[_HURDLE, :n] = h
        self._table[_HURDLE_OR_THR, :n] = np.where(np.isfinite(h), h, self._threshold)
        self._table_version = self._version

    def _resolve(self, signals: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(signals, np.ndarray) and signals.dtype.kind in "iu":
            if signals.ndim != 1:
                raise ValueError(f"signal indices must be 1-d, got shape {signals.shape}")
            if signals.size:
                if signals.size <= _SMALL_BATCH:  # numpy reductions cost ~3 us each
                    as_list = signals.tolist()
                    lo, hi = min(as_list), max(as_list)
                else:
                    lo, hi = int(signals.min()), int(signals.max())
                if lo < 0 or hi >= len(self._order):
                    raise ValueError(
                        f"signal indices must be in [0, {len(self._order)}), got [{lo}, {hi}]"
                    )
            return signals
        if isinstance(signals, str | bytes) or not isinstance(signals, Sequence | np.ndarray):
            raise TypeError(
                f"signals must be a sequence of names or an index array, got {signals!r:.80}"
            )
        index = self._index
        try:
            return np.fromiter(map(index.__getitem__, signals), np.intp, len(signals))
        except (KeyError, TypeError):
            bad = next(n for n in signals if not isinstance(n, str) or n not in index)
            raise self._unknown(bad) from None

    def _sync(self) -> None:
        """Copy the rows of changed signals into the vectorised table."""
        n = len(self._order)
        if n > self._table.shape[1]:
            grown = np.zeros((_ROWS, max(n, 2 * self._table.shape[1])))
            grown[:, : self._table.shape[1]] = self._table
            self._table = grown
        order, table = self._order, self._table
        # hurdle rows are left to _refresh_hurdles: every change that dirties a column bumps the
        # version too (a new signal included: its column's hurdle rows are not yet set), except
        # a new prior, which changes no hurdle
        if len(self._dirty) <= _SMALL_BATCH:
            for i in self._dirty:
                s = order[i]
                table[_STATE_ROWS, i] = (
                    s.pa,
                    s.pb,
                    s.ws,
                    s.ls,
                    s.wp,
                    s.lp,
                    s.family.index,
                    1.0 if s.wins and s.losses else math.nan,
                )
            self._dirty.clear()
            return
        dirty = list(self._dirty)
        cols = np.array(
            [
                (
                    s.pa,
                    s.pb,
                    s.ws,
                    s.ls,
                    s.wp,
                    s.lp,
                    s.family.index,
                    1.0 if s.wins and s.losses else math.nan,
                )
                for s in (order[i] for i in dirty)
            ]
        ).T
        table[np.ix_(_STATE_ROWS, dirty)] = cols
        self._dirty.clear()

    # ------------------------------------------------------------------ outcomes
    def record(
        self,
        signal: str,
        won: bool,
        pnl: float,
        trade_id: str | int | None = None,
        *,
        cluster: str | None = None,
    ) -> None:
        """Record a settled trade: ``won`` (bool) and ``pnl`` (currency; >= 0 when won, <= 0 when
        lost). A ``trade_id`` seen before is refused with :class:`DuplicateTradeError`, so retries
        never double count. ``cluster`` (e.g. the day the trade opened): outcomes of this signal
        in one cluster count with their effective weight under the family's ``rho`` (see the
        module docstring).

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> d.record("mom_5d", False, -100.0, trade_id="t2")
        >>> d.posterior("mom_5d"), d.seen_trade("t2")
        (BetaPrior(a=6.0, b=6.0), True)
        """
        won, pnl, trade_id = check_outcome(won, pnl, trade_id)
        if cluster is not None:
            cluster = check_name(cluster, "cluster")
        with self._lock:
            try:
                s = self._signals[signal]
            except (KeyError, TypeError):
                raise self._unknown(signal) from None
            if trade_id is not None:
                if trade_id in self._trade_ids:
                    raise DuplicateTradeError(f"trade_id {trade_id!r} was already recorded")
                self._trade_ids.add(trade_id)
            if self._discount != 1.0 and self._clock == "outcome":
                self._advance(1)
            n = s.trades + 1
            s.trades = n
            s.pnl_total += pnl
            delta = pnl - s.pnl_mean
            s.pnl_mean += delta / n
            s.pnl_m2 += delta * (pnl - s.pnl_mean)
            inv = self._inv_scale
            fam = s.family
            if won:
                s.wins += 1
                s.win_pnl += pnl
            else:
                s.losses += 1
                s.loss_pnl -= pnl
            if cluster is None or fam.rho == 0.0:
                x = abs(pnl) * inv
                if won:
                    s.ws += inv
                    s.wp += x
                    fam.ws += inv
                    fam.wp += x
                else:
                    s.ls += inv
                    s.lp += x
                    fam.ls += inv
                    fam.lp += x
            else:
                self._record_in_cluster(s, cluster, won, abs(pnl))
            self._version += 1  # the family's averages changed: every member's hurdle may have
            self._dirty.add(s.index)

    def _record_in_cluster(self, s: _Signal, key: str, won: bool, size: float) -> None:
        """Add an outcome of ``s`` in cluster ``key`` and re-weight the cluster's earlier ones:
        n outcomes of one cluster weigh ``1 / (1 + (n - 1) rho)`` each (lock held)."""
        if s.clusters is None:
            s.clusters = OrderedDict()
        entry = s.clusters.get(key)
        if entry is None:
            entry = s.clusters[key] = [0.0, 0.0, 0.0, 0.0, 0.0]
            if len(s.clusters) > MAX_OPEN_CLUSTERS:
                s.clusters.popitem(last=False)
        rho = s.family.rho
        n_old = entry[0]
        w_old = 1.0 / (1.0 + (n_old - 1.0) * rho) if n_old else 0.0
        w_new = 1.0 / (1.0 + n_old * rho)
        ratio = w_new / w_old if n_old else 0.0
        inv = self._inv_scale
        add = [0.0, 0.0, 0.0, 0.0]  # ws, ls, wp, lp in stored units
        if won:
            add[0], add[2] = w_new * inv, w_new * size * inv
        else:
            add[1], add[3] = w_new * inv, w_new * size * inv
        fam = s.family
        deltas = []
        for i in range(4):
            new = entry[i + 1] * ratio + add[i]
            deltas.append(new - entry[i + 1])
            entry[i + 1] = new
        entry[0] = n_old + 1.0
        s.ws += deltas[0]
        s.ls += deltas[1]
        s.wp += deltas[2]
        s.lp += deltas[3]
        fam.ws += deltas[0]
        fam.ls += deltas[1]
        fam.wp += deltas[2]
        fam.lp += deltas[3]
        # rounding must not leave a stored sum a hair below zero
        s.ws, s.ls, s.wp, s.lp = max(s.ws, 0.0), max(s.ls, 0.0), max(s.wp, 0.0), max(s.lp, 0.0)

    def seen_trade(self, trade_id: str | int) -> bool:
        """Whether an outcome with this trade id was recorded.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> d.seen_trade("t1"), d.seen_trade("t2")
        (True, False)
        """
        tid = check_trade_id(trade_id)
        with self._lock:
            return tid in self._trade_ids

    # ------------------------------------------------------------------ forgetting
    def tick(self, steps: int = 1) -> None:
        """Advance the forgetting clock: every signal's counts are multiplied by
        ``discount ** steps``. Use with ``clock="manual"`` to forget per day, say.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, discount=0.9, clock="manual")
        >>> d.register("mom_5d", "momentum")
        >>> for i in range(10):
        ...     d.record("mom_5d", True, 100.0, trade_id=i)
        >>> d.posterior("mom_5d")
        BetaPrior(a=15.0, b=5.0)
        >>> d.tick(5)  # five days later: 10 wins count as 10 x 0.9^5 = 5.9
        >>> round(d.posterior("mom_5d").a, 2), d.ticks
        (10.9, 5)
        """
        steps = check_int(steps, "steps", minimum=0)
        with self._lock:
            if self._ticks + steps > MAX_COUNT:
                raise ValueError(f"steps={steps!r} would take the ticks past {MAX_COUNT}")
            self._advance(steps)

    def forget(self, factor: float, family: str | None = None) -> None:
        """Multiply the counts of all signals (or of one family's) by ``factor`` in (0, 1]:
        their posteriors move toward the family prior. Raw trade counts are kept.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> for i in range(4):
        ...     d.record("mom_5d", True, 100.0, trade_id=i)
        >>> d.forget(0.5, family="momentum")  # 4 wins now count as 2
        >>> d.posterior("mom_5d"), d.metrics("mom_5d").trades
        (BetaPrior(a=7.0, b=5.0), 4)
        """
        factor = check_discount(factor, "factor")
        if family is not None:
            check_name(family, "family name")
        with self._lock:
            if family is None:
                self._rescale(factor)
                return
            fam = self._get_family(family)
            for i in fam.members:
                s = self._order[i]
                s.ws *= factor
                s.ls *= factor
                s.wp *= factor
                s.lp *= factor
                _scale_clusters(s, factor)
                self._dirty.add(i)
            fam.scale(factor)
            self._version += 1

    def _advance(self, steps: int) -> None:
        if self._discount == 1.0 or steps == 0:
            self._ticks += steps
            return
        self._ticks += steps
        self._rescale(self._discount**steps)

    def _rescale(self, factor: float) -> None:
        self._version += 1  # shrunk payoffs depend on the scale
        scale = self._scale * factor
        if scale < 1.0 / _RENORMALISE_AT:  # also when it underflowed to 0
            self._renormalise(scale)
        else:
            self._scale = scale
            self._inv_scale = 1.0 / scale

    def _renormalise(self, scale: float) -> None:
        """Fold ``scale`` into every stored count and reset the scale to 1."""
        for s in self._order:
            s.ws *= scale
            s.ls *= scale
            s.wp *= scale
            s.lp *= scale
            _scale_clusters(s, scale)
        for fam in self._families.values():
            fam.scale(scale)
        for row in (_WS, _LS, _WP, _LP):
            self._table[row] *= scale
        self._scale = 1.0
        self._inv_scale = 1.0

    # ------------------------------------------------------------------ reading
    def posterior(self, signal: str) -> BetaPrior:
        """The current Beta posterior of the signal's win rate.

        Examples
        --------
        Beta(5, 5) plus 2 wins and no loss:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> d.record("mom_5d", True, 80.0, trade_id="t2")
        >>> d.posterior("mom_5d")
        BetaPrior(a=7.0, b=5.0)
        """
        with self._lock:
            s = self._get(signal)
            return BetaPrior(s.pa + s.ws * self._scale, s.pb + s.ls * self._scale)

    def posterior_mean(self, signal: str) -> float:
        """``a / (a + b)`` of :meth:`posterior`, without building the prior object.

        Examples
        --------
        Beta(5, 5) plus 1 win: 6 / 11:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> round(d.posterior_mean("mom_5d"), 4)
        0.5455
        """
        with self._lock:
            s = self._get(signal)
            a = s.pa + s.ws * self._scale
            return a / (a + s.pb + s.ls * self._scale)

    def metrics(self, signal: str, prob: float = 0.9) -> SignalMetrics:
        """Quality metrics of one signal with a ``prob`` equal-tailed credible interval.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> m = d.metrics("mom_5d", prob=0.9)  # no trades yet: the family prior
        >>> m.trades, m.posterior_mean, round(m.credible_low, 3), round(m.credible_high, 3)
        (0, 0.5, 0.251, 0.749)
        """
        from scipy import special  # scipy.special only; not needed on the decision path

        prob = check_probability_open(prob, "prob")
        with self._lock:
            s = self._get(signal)
            ew, el = s.ws * self._scale, s.ls * self._scale
            a, b = s.pa + ew, s.pb + el
            fields = (s.name, s.family.name, s.trades, s.wins, s.losses, s.pnl_total)
            mean_pnl, m2 = s.pnl_mean, s.pnl_m2
            avg_win = s.win_pnl / s.wins if s.wins else None
            avg_loss = s.loss_pnl / s.losses if s.losses else None
            payoff = avg_win is not None and avg_loss is not None and avg_win + avg_loss > 0
            shrunk = self._shrunk_payoffs(s)
            hurdle = s.hurdle if s.hurdle_version == self._version else self._hurdle(s)
            fam = s.family
            family_avg_win = fam.wp / fam.ws if fam.ws > 0.0 else None
            family_avg_loss = fam.lp / fam.ls if fam.ls > 0.0 else None
        name, family, trades, wins, losses, total = fields
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
        lo, hi = special.betaincinv(a, b, [(1.0 - prob) / 2.0, (1.0 + prob) / 2.0])
        expected_edge: float | None = None
        if payoff:
            assert avg_win is not None and avg_loss is not None  # payoff says both are known
            break_even = avg_loss / (avg_win + avg_loss)
            expected_edge = mean * avg_win - (1.0 - mean) * avg_loss
        else:
            break_even = self._threshold
        pnl_sd = math.sqrt(m2 / (trades - 1)) if trades >= 2 else None
        return SignalMetrics(
            signal=name,
            family=family,
            trades=trades,
            wins=wins,
            losses=losses,
            effective_wins=ew,
            effective_losses=el,
            posterior_a=a,
            posterior_b=b,
            posterior_mean=mean,
            posterior_sd=sd,
            credible_prob=prob,
            credible_low=float(lo),
            credible_high=float(hi),
            break_even=break_even,
            p_above_break_even=float(special.betaincc(a, b, break_even)),
            total_pnl=total,
            mean_pnl=mean_pnl if trades else None,
            pnl_sd=pnl_sd,
            sharpe=mean_pnl / pnl_sd if pnl_sd else None,
            avg_win=avg_win,
            avg_loss=avg_loss,
            expected_edge=expected_edge,
            shrunk_avg_win=None if shrunk is None else shrunk[0],
            shrunk_avg_loss=None if shrunk is None else shrunk[1],
            family_avg_win=family_avg_win,
            family_avg_loss=family_avg_loss,
            hurdle=self._threshold if hurdle is None else hurdle,
        )

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """The whole state (configuration, priors, counts, trade ids, RNG) as JSON-ready data.

        Examples
        --------
        JSON-ready: configuration, families, signals with their counts, trade ids and the generator:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> snap = d.snapshot()
        >>> sorted(snap)
        ['clock_state', 'config', 'families', 'rng', 'schema', 'signals', 'trade_ids']
        >>> snap["signals"][0]["wins"], snap["trade_ids"], snap["config"]["threshold"]
        (1, ['t1'], 0.5)
        """
        with self._lock:
            families = []
            for f in self._families.values():
                row: dict[str, Any] = {
                    "name": f.name, "prior": f.prior.to_dict(), "sums": [f.ws, f.ls, f.wp, f.lp]
                }  # fmt: skip
                if f.rho:
                    row["rho"] = f.rho
                if f.draws is not None:
                    row["draws"] = {"a": f.draws[0].tolist(), "b": f.draws[1].tolist()}
                families.append(row)
            signals = []
            for s in self._order:
                row = {
                    "name": s.name,
                    "family": s.family.name,
                    "ws": s.ws,
                    "ls": s.ls,
                    "trades": s.trades,
                    "wins": s.wins,
                    "losses": s.losses,
                    "pnl_total": s.pnl_total,
                    "pnl_mean": s.pnl_mean,
                    "pnl_m2": s.pnl_m2,
                    "win_pnl": s.win_pnl,
                    "loss_pnl": s.loss_pnl,
                    "wp": s.wp,
                    "lp": s.lp,
                }
                if s.clusters:
                    row["clusters"] = [[k, int(v[0]), *v[1:]] for k, v in s.clusters.items()]
                signals.append(row)
            extended = any(len(f) > 3 for f in families) or any(len(r) > 14 for r in signals)
            return {
                "schema": SNAPSHOT_SCHEMA_CLUSTERED if extended else SNAPSHOT_SCHEMA,
                "config": {
                    "threshold": self._threshold,
                    "min_edge": self._min_edge,
                    "payoff_n0": self._payoff_n0,
                    "discount": self._discount,
                    "clock": self._clock,
                },
                "clock_state": {"scale": self._scale, "ticks": self._ticks},
                "families": families,
                "signals": signals,
                "trade_ids": sorted(self._trade_ids),
                "rng": _encode_rng_state(self._rng.bit_generator.state),
            }

    def to_json(self) -> str:
        """:meth:`snapshot` as compact JSON text (no NaN or infinity); :meth:`from_json` reads it
        back.

        Examples
        --------
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> text = d.to_json()
        >>> json.loads(text)["families"][0]["prior"]
        {'a': 5.0, 'b': 5.0}
        """
        return json.dumps(self.snapshot(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Decider:
        """Rebuild a decider exactly from :meth:`snapshot` output; malformed data raises
        ``ValueError`` naming the bad field.

        Examples
        --------
        A restored decider (its generator state included) decides as the original would:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)}, rng=0)
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id="t1")
        >>> restored = Decider.from_snapshot(d.snapshot())  # or from_json(d.to_json())
        >>> restored.decide("mom_5d") == d.decide("mom_5d"), restored.seen_trade("t1")
        (True, True)
        """
        try:
            return cls._from_snapshot(data)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"malformed decider snapshot: {exc!r}") from exc

    @classmethod
    def _from_snapshot(cls, data: Mapping[str, Any]) -> Decider:
        schema = check_schema(
            data, SNAPSHOT_SCHEMA, also=(SNAPSHOT_SCHEMA_CLUSTERED, *_OLD_SCHEMAS),
            message=lambda got: f"not a {SNAPSHOT_SCHEMA} snapshot (or "
            f"{SNAPSHOT_SCHEMA_CLUSTERED}, or an older one it reads: {_OLD_SCHEMAS}); "
            f"schema: {got!r}",
        )  # fmt: skip
        extended = schema == SNAPSHOT_SCHEMA_CLUSTERED
        old = schema in _OLD_SCHEMAS
        cfg = data["config"]
        self = cls(
            threshold=cfg["threshold"],
            min_edge=cfg["min_edge"],
            payoff_n0=DEFAULT_PAYOFF_N0 if old else cfg["payoff_n0"],
            discount=cfg["discount"],
            clock=cfg["clock"],
            rng=_decode_rng(data["rng"]),
        )
        for fam in data["families"]:
            self.add_family(fam["name"], BetaPrior.from_dict(fam["prior"]))
            if extended and "rho" in fam:
                self._families[fam["name"]].rho = _check_rho(fam["rho"])
            if extended and "draws" in fam:
                self.set_family_draws(fam["name"], (fam["draws"]["a"], fam["draws"]["b"]))
        decayed = ("ws", "ls") if old else ("ws", "ls", "wp", "lp")
        clock = data["clock_state"]
        scale = check_real(clock["scale"], "clock_state.scale")
        if not 1.0 / _RENORMALISE_AT <= scale <= 1.0:  # renormalised before it gets smaller
            raise ValueError(
                f"clock_state.scale must be in [{1.0 / _RENORMALISE_AT}, 1], got {scale!r}"
            )
        ticks = check_int(clock["ticks"], "clock_state.ticks", minimum=0)
        if ticks > MAX_COUNT:
            raise ValueError(f"clock_state.ticks must be <= {MAX_COUNT}, got {ticks!r:.40}")
        signals = data["signals"]
        if not isinstance(signals, list):
            raise ValueError(f"signals must be a list, got {type(signals).__name__}")
        for row in signals:
            name = check_name(row["name"])
            if name in self._signals:
                raise ValueError(f"signal {name!r} appears twice in the snapshot")
            s = self._add_signal(name, self._get_family(check_name(row["family"], "family")))
            for key in (*decayed, "win_pnl", "loss_pnl", "pnl_m2"):
                value = check_real(row[key], f"signals[{name!r}].{key}")
                if value < 0.0:
                    raise ValueError(f"signals[{name!r}].{key} must be >= 0, got {value!r}")
                setattr(s, key, value)
            for key in ("pnl_total", "pnl_mean"):
                setattr(s, key, check_real(row[key], f"signals[{name!r}].{key}"))
            for key in ("trades", "wins", "losses"):
                value = check_int(row[key], f"signals[{name!r}].{key}", minimum=0)
                if value > MAX_COUNT:
                    raise ValueError(f"signals[{name!r}].{key} must be <= {MAX_COUNT}, got "
                                     f"{value!r:.40}")  # fmt: skip
                setattr(s, key, value)
            if s.wins + s.losses != s.trades:
                raise ValueError(f"signals[{name!r}]: wins + losses != trades")
            if old:  # decayed count x raw average: exact unless something was forgotten
                s.wp = s.ws * (s.win_pnl / s.wins) if s.wins else 0.0
                s.lp = s.ls * (s.loss_pnl / s.losses) if s.losses else 0.0
            if extended and "clusters" in row:
                s.clusters = _read_clusters(row["clusters"], name)
            _check_signal_invariants(s, scale)
        total_trades = sum(s.trades for s in self._order)
        for row in data["families"]:
            fam = self._families[row["name"]]
            members = [self._order[i] for i in fam.members]
            for j, key in enumerate(("ws", "ls", "wp", "lp")):
                total = math.fsum(getattr(s, key) for s in members)
                if old:
                    setattr(fam, key, total)
                    continue
                value = check_real(row["sums"][j], f"families[{fam.name!r}].sums[{j}]")
                if not math.isclose(value, total, rel_tol=_SNAPSHOT_RTOL, abs_tol=1e-290):
                    raise ValueError(
                        f"families[{fam.name!r}].sums[{j}] ({key}) = {value!r} is not the sum of "
                        f"its signals' ({total!r})"
                    )
                setattr(fam, key, value)
        ids = data["trade_ids"]
        if not isinstance(ids, list):
            raise ValueError(f"trade_ids must be a list, got {type(ids).__name__}")
        trade_ids: set[str] = set()
        for t in ids:
            if not isinstance(t, str):
                raise TypeError(f"trade_ids must be strings, got {type(t).__name__} {t!r:.40}")
            tid = check_trade_id(t)
            if tid in trade_ids:
                raise ValueError(f"trade_ids repeat {tid!r}")
            trade_ids.add(tid)
        if len(trade_ids) > total_trades:  # each id is one recorded trade
            raise ValueError(f"trade_ids: {len(trade_ids)} ids for {total_trades} recorded trades")
        self._trade_ids = trade_ids
        self._scale, self._inv_scale = scale, 1.0 / scale
        self._ticks = ticks
        return self

    @classmethod
    def from_json(cls, text: str) -> Decider:
        """Rebuild a decider from :meth:`to_json` text; invalid JSON or a malformed snapshot raises
        ``ValueError``.

        Examples
        --------
        The restored decider has the same posterior and trade ids:

        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", False, -60.0, trade_id="t1")
        >>> restored = Decider.from_json(d.to_json())
        >>> restored.posterior("mom_5d"), restored.seen_trade("t1")
        (BetaPrior(a=5.0, b=6.0), True)
        >>> Decider.from_json("{not json")
        Traceback (most recent call last):
            ...
        ValueError: decider snapshot is not valid JSON: Expecting property ...
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"decider snapshot is not valid JSON: {exc}") from exc
        return cls.from_snapshot(data)

    # ------------------------------------------------------------------ helpers
    def _get(self, signal: str) -> _Signal:
        s = self._signals.get(signal) if isinstance(signal, str) else None
        if s is None:
            raise self._unknown(signal)
        return s

    def _get_family(self, name: str) -> _Family:
        fam = self._families.get(name)
        if fam is None:
            raise UnknownSignalError(
                f"unknown family {name!r}; known: {sorted(self._families)!r:.200}"
            )
        return fam

    @staticmethod
    def _unknown(signal: object) -> Exception:
        if not isinstance(signal, str):
            return TypeError(f"signal name must be a str, got {type(signal).__name__} {signal!r}")
        return UnknownSignalError(f"unknown signal {signal!r}; register it first")


def _read_clusters(rows: Any, signal: str) -> OrderedDict[str, list[float]]:
    """A signal's open clusters from a snapshot: [key, outcomes, ws, ls, wp, lp] rows."""
    if not isinstance(rows, list) or len(rows) > MAX_OPEN_CLUSTERS:
        raise ValueError(f"signals[{signal!r}].clusters must be a list of <= {MAX_OPEN_CLUSTERS}")
    out: OrderedDict[str, list[float]] = OrderedDict()
    for row in rows:
        if not isinstance(row, list) or len(row) != 6:
            raise ValueError(f"signals[{signal!r}].clusters rows are [key, n, ws, ls, wp, lp]")
        key = check_name(row[0], "cluster")
        n = check_int(row[1], f"signals[{signal!r}].clusters[{key!r}].n", minimum=1)
        values = [check_real(x, f"signals[{signal!r}].clusters[{key!r}]") for x in row[2:]]
        if min(values) < 0.0:
            raise ValueError(f"signals[{signal!r}].clusters[{key!r}] has a negative sum")
        out[key] = [float(n), *values]
    return out


def _scale_clusters(s: _Signal, factor: float) -> None:
    """Scale a signal's open-cluster contributions with its stored sums (they are part of them)."""
    if s.clusters:
        for entry in s.clusters.values():
            for i in range(1, 5):
                entry[i] *= factor


def _check_rho(rho: object) -> float:
    value = check_real(rho, "rho")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    return value


def check_outcome(
    won: object, pnl: object, trade_id: object = None
) -> tuple[bool, float, str | None]:
    """Validate one trade outcome; return it normalised (see :meth:`Decider.record`).

    Examples
    --------
    A won trade with PnL 120 and an integer trade id (normalised to text); a contradiction:

    >>> check_outcome(True, 120.0, trade_id=7)
    (True, 120.0, '7')
    >>> check_outcome(False, 35.0)
    Traceback (most recent call last):
        ...
    ValueError: pnl=35.0 contradicts won=False: a won trade has pnl >= 0, ...
    """
    if won is not True and won is not False:
        won = check_bool(won, "won")
    if type(pnl) is not float or not math.isfinite(pnl):
        pnl = check_real(pnl, "pnl")
    if (won and pnl < 0.0) or (not won and pnl > 0.0):
        raise ValueError(
            f"pnl={pnl!r} contradicts won={won!r}: a won trade has pnl >= 0, a lost one <= 0"
        )
    if trade_id is not None:
        trade_id = check_trade_id(trade_id)
    return won, pnl, trade_id


def _check_signal_invariants(s: _Signal, scale: float) -> None:
    """What recording and forgetting guarantee of a signal's state, checked on a snapshot's
    (after its fields' own checks). Decayed quantities are the raw ones discounted, so they
    cannot exceed them: effective wins ``ws * scale <= wins``, losses likewise, decayed PnL sums
    ``wp * scale <= win_pnl`` and ``lp * scale <= loss_pnl``; PnL only where there are trades of
    that side; ``pnl_total = win_pnl - loss_pnl``, ``pnl_mean = pnl_total / trades`` and
    ``0 <= pnl_m2 <= (win_pnl + loss_pnl) ** 2`` (0 below two trades). Sums accumulated in a
    different order agree to a relative ``_SNAPSHOT_RTOL`` of the PnL's absolute size."""
    where = f"signals[{s.name!r}]"
    tol = 1.0 + _SNAPSHOT_RTOL
    for decayed, raw, what in (
        (s.ws, s.wins, "effective wins ws * scale exceed wins"),
        (s.ls, s.losses, "effective losses ls * scale exceed losses"),
        (s.wp, s.win_pnl, "decayed won PnL wp * scale exceeds win_pnl"),
        (s.lp, s.loss_pnl, "decayed lost PnL lp * scale exceeds loss_pnl"),
    ):
        if decayed * scale > raw * tol:
            raise ValueError(f"{where}: {what} ({decayed!r} * {scale!r} > {raw!r})")
    if (s.win_pnl and not s.wins) or (s.loss_pnl and not s.losses):
        raise ValueError(f"{where}: PnL of won (lost) trades without any won (lost) trade")
    size = s.win_pnl + s.loss_pnl  # the sum of |PnL|
    if abs(s.pnl_total - (s.win_pnl - s.loss_pnl)) > _SNAPSHOT_RTOL * size:
        raise ValueError(f"{where}: pnl_total {s.pnl_total!r} != win_pnl - loss_pnl "
                         f"({s.win_pnl!r} - {s.loss_pnl!r})")  # fmt: skip
    if abs(s.pnl_mean * s.trades - s.pnl_total) > _SNAPSHOT_RTOL * size:
        raise ValueError(f"{where}: pnl_mean {s.pnl_mean!r} is not pnl_total / trades "
                         f"({s.pnl_total!r} / {s.trades})")  # fmt: skip
    if s.pnl_m2 > (size * size) * tol or (s.trades < 2 and s.pnl_m2 != 0.0):
        raise ValueError(f"{where}: pnl_m2 {s.pnl_m2!r} is not a sum of squared deviations of "
                         f"{s.trades} PnLs of total size {size!r}")  # fmt: skip


def _check_prior(prior: object) -> BetaPrior:
    if prior is None:
        return DEFAULT_PRIOR
    if not isinstance(prior, BetaPrior):
        raise TypeError(f"prior must be a BetaPrior or None, got {type(prior).__name__} {prior!r}")
    return prior


def _family_items(
    families: Mapping[str, BetaPrior | None] | Iterable[str],
) -> list[tuple[str, BetaPrior | None]]:
    if isinstance(families, str):
        raise TypeError(f"families must be a mapping or an iterable of names, got {families!r}")
    if isinstance(families, Mapping):
        return list(families.items())
    return [(name, None) for name in families]


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _encode_rng_state(state: Any) -> Any:
    if isinstance(state, dict):
        return {k: _encode_rng_state(v) for k, v in state.items()}
    if isinstance(state, np.ndarray):
        return {"ndarray": state.tolist(), "dtype": state.dtype.str}
    if isinstance(state, np.integer):
        return int(state)
    return state


def _decode_rng_state(state: Any) -> Any:
    if isinstance(state, dict):
        if set(state) == {"ndarray", "dtype"}:
            return np.asarray(state["ndarray"], dtype=np.dtype(state["dtype"]))
        return {k: _decode_rng_state(v) for k, v in state.items()}
    return state


def _decode_rng(encoded: Any) -> np.random.Generator:
    """The generator of a snapshot's RNG state; any value the bit generator cannot hold as given
    (negative, too wide, a float or text where an integer belongs: numpy would raise an
    OverflowError, or wrap or truncate silently) is refused with ValueError."""
    try:
        state = _decode_rng_state(encoded)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"invalid RNG state in snapshot: {exc}") from None
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"unsupported bit generator in snapshot: {name!r:.80}")
    if state.get("has_uint32", 0) not in (0, 1):  # a flag numpy would take for any truthy value
        raise ValueError(f"invalid RNG state in snapshot: has_uint32 {state['has_uint32']!r:.40}")
    bitgen = getattr(np.random, name)()
    try:
        bitgen.state = state
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise ValueError(f"invalid RNG state in snapshot: {exc}") from None
    if _encode_rng_state(bitgen.state) != encoded:  # what was set is not what was given
        raise ValueError(
            f"invalid RNG state in snapshot: not a {name} state as given (a value out of range "
            f"or of the wrong type): {encoded!r:.200}"
        )
    return np.random.Generator(bitgen)
