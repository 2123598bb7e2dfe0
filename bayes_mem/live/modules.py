"""The engine's pluggable modules: one small protocol per step from a signal to a size.

The seed plan's ``OptimizationModule(enabled=...)``: every step of a decision is a module that is
``enabled`` or not and that a user may replace with an implementation of the same protocol.

========== ========================= ==============================================================
slot       protocol                  built in
========== ========================= ==============================================================
rule       :class:`DecisionRule`     :class:`ThompsonRule` (ours), :class:`ThresholdRule` (seed
                                     baseline: raw win rate >= threshold)
budget     :class:`SizingLimit`      :class:`CVaRBudget` (posterior h-day ES, by side),
                                     :class:`FixedBudget` (seed baseline: fixed currency per
                                     symbol)
kelly      :class:`SizingLimit`      :class:`KellyLimit` (fractional Kelly in notional over the
                                     posterior of the win rate and the payoff sizes)
correlation :class:`SizingLimit`     :class:`PortfolioESLimit` (Euler allocation against a
                                     portfolio ES budget; the breakdown test as a further cut)
regime     :class:`SizingFactor`     :class:`RegimeCut` (changepoint probability of the symbol)
========== ========================= ==============================================================

A **rule** says whether to act and reports the sampled win probability. A **limit** gives a
notional cap (currency, ``math.inf`` for none) and may give multiplicative cuts. A **factor** gives
a cut in [0, 1]. The engine acts on ``min(limits) x prod(cuts)``. Each returns a ``detail`` dict
of the numbers it used, which the :class:`~bayes_mem.live.decision.Decision` carries.

Modules read the engine's state through a :class:`SignalContext` (the request and read-only
accessors of the decider, the payoff model, the return model, the book and the market state);
they hold configuration only, so one module object may serve several engines.

Batches (optional). :meth:`TradingEngine.signals` decides a tick's events at once. A module may
offer a batch method besides its protocol's, reading a :class:`~bayes_mem.live.engine.
SignalBatch` (the events as lists and arrays, the same accessors computed for all events):

- a rule: ``decide_batch(batch) -> (acts, ps, details)``, one entry per event;
- a limit: ``limit_batch(batch, rows) -> (caps, cuts, details)`` for the events at ``rows`` (the
  ones the rule acted on, in order): caps an array, cuts a dict name -> array, details a list;
  or, for a limit that reads the book (which each acted decision moves), ``limit_steps(batch)
  -> step``, a function of an event's index called in event order, each call after the earlier
  decisions entered the book, returning what ``limit`` returns;
- a factor: ``factor_batch(batch, rows) -> (cuts, details)``.

Each must give what the protocol's method gives for each event (the built-in ones do, to the
last bit: tests/test_engine.py compares a batch with one ``signal`` call per event). A module
without them (a user's own) is called per event, in event order, with a :class:`SignalContext`.

Units: ``portfolio_value`` and notionals in the account currency; budgets are fractions of
portfolio value; ES is a loss fraction of the position's notional (positive).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bayes_mem.live.changepoint import regime_factor
from bayes_mem.live.payoff import QUANTILE_NODES, posterior_means, size_nodes, size_nodes_rows
from bayes_mem.live.sizing import (
    DEFAULT_FRACTION,
    kelly_notional_nodes,
    kelly_notional_nodes_screen,
)
from bayes_mem.live.validate import check_positive, check_probability_open, check_real

if TYPE_CHECKING:  # pragma: no cover
    from bayes_mem.live.engine import SignalBatch, SignalContext

__all__ = [
    "CVaRBudget",
    "DecisionRule",
    "FixedBudget",
    "KellyLimit",
    "PortfolioESLimit",
    "RegimeCut",
    "SizingFactor",
    "SizingLimit",
    "ThompsonRule",
    "ThresholdRule",
]


@runtime_checkable
class DecisionRule(Protocol):
    """Whether to act on a fired signal. ``decide`` returns ``(act, p_win, detail)``.

    Examples
    --------
    Any object with ``name``, ``enabled`` and ``decide`` is one (checked at run time), so a user's
    rule can replace the built-in one in an :class:`~bayes_mem.live.engine.EngineConfig`:

    >>> from bayes_mem.live.engine import EngineConfig
    >>> class AlwaysAct:
    ...     name, enabled = "always", True
    ...     def decide(self, ctx):
    ...         return True, 1.0, {}
    >>> isinstance(AlwaysAct(), DecisionRule), isinstance(ThompsonRule(), DecisionRule)
    (True, True)
    >>> isinstance(KellyLimit(), DecisionRule)  # no decide method
    False
    >>> EngineConfig(rule=AlwaysAct()).rule.name
    'always'
    """

    name: str
    enabled: bool

    def decide(self, ctx: SignalContext) -> tuple[bool, float, dict[str, Any]]:
        """``(act, p_win, detail)`` for the event ``ctx``: whether to act, the win probability the
        rule used, and the numbers it used.

        Examples
        --------
        The built-in threshold rule on a stand-in context with 3 wins in 4 settled trades:

        >>> from types import SimpleNamespace
        >>> ThresholdRule(threshold=0.7).decide(SimpleNamespace(raw_counts=lambda: (3, 4)))
        (True, 0.75, {'wins': 3, 'trades': 4})
        """
        ...


@runtime_checkable
class SizingLimit(Protocol):
    """A notional cap. ``limit`` returns ``(notional_cap, cuts, detail)``: the cap in currency
    (``math.inf``: none) and further multiplicative cuts in [0, 1] by name (may be empty).

    Examples
    --------
    The built-in budgets and limits are ones; a rule is not:

    >>> [isinstance(m, SizingLimit) for m in (CVaRBudget(), FixedBudget(), KellyLimit())]
    [True, True, True]
    >>> isinstance(PortfolioESLimit(), SizingLimit), isinstance(ThompsonRule(), SizingLimit)
    (True, False)
    """

    name: str
    enabled: bool

    def limit(self, ctx: SignalContext) -> tuple[float, dict[str, float], dict[str, Any]]:
        """``(notional_cap, cuts, detail)`` for the event ``ctx``: the cap in currency
        (``math.inf``: none), cuts in [0, 1] by name, the numbers used.

        Examples
        --------
        A fixed budget of 600 split over 2 signals on the symbol caps each at 300:

        >>> from types import SimpleNamespace
        >>> FixedBudget(600.0).limit(SimpleNamespace(signals_on_symbol=lambda: 2))
        (300.0, {}, {'per_symbol': 600.0, 'signals': 2})
        """
        ...


@runtime_checkable
class SizingFactor(Protocol):
    """A multiplicative cut in [0, 1]. ``factor`` returns ``(cut, detail)``.

    Examples
    --------
    The regime cut is one; a limit is not:

    >>> isinstance(RegimeCut(), SizingFactor), isinstance(FixedBudget(), SizingFactor)
    (True, False)
    """

    name: str
    enabled: bool

    def factor(self, ctx: SignalContext) -> tuple[float, dict[str, Any]]:
        """``(cut, detail)`` for the event ``ctx``: a multiplicative cut in [0, 1] and the numbers
        used.

        Examples
        --------
        Halfway up the regime ramp (P(change) 0.55 between ``start`` 0.3 and ``full`` 0.8) the
        cut is halfway from 1 to the floor 0.5:

        >>> from types import SimpleNamespace
        >>> RegimeCut().factor(SimpleNamespace(p_change=lambda: 0.55))
        (0.75, {'p_change': 0.55})
        """
        ...


# The optional batch methods (see the module docstring), for typing the engine's calls: the
# engine probes a module for them by class (``_batched`` in :mod:`bayes_mem.live.engine`, which
# also requires the batch method to be at least as much the class's own as the scalar one), so
# these are not runtime-checkable.
class BatchDecisionRule(DecisionRule, Protocol):
    """A :class:`DecisionRule` with ``decide_batch``: ``(acts, ps, details)``, one per event.

    Examples
    --------
    The built-in rules have a batch method; a stand-in batch of two events with 3 of 4 and 1 of 4
    wins settled:

    >>> from types import SimpleNamespace
    >>> batch = SimpleNamespace(raw_counts=lambda: [(3, 4), (1, 4)])
    >>> ThresholdRule(threshold=0.5).decide_batch(batch)
    ([True, False], [0.75, 0.25], [{'wins': 3, 'trades': 4}, {'wins': 1, 'trades': 4}])
    """

    def decide_batch(
        self, batch: SignalBatch
    ) -> tuple[Sequence[bool], Sequence[float], list[dict[str, Any]]]:
        """``(acts, ps, details)``: one entry per event of ``batch``, each what ``decide`` gives for
        it.

        Examples
        --------
        Thompson's batch method on two events' draws (win rates 0.55 and 0.4, sizes 2%): edges
        0.55 x 0.02 - 0.45 x 0.02 = 0.002 and 0.4 x 0.02 - 0.6 x 0.02 = -0.004:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> draws = (np.array([0.55, 0.4]), np.array([0.02, 0.02]), np.array([0.02, 0.02]))
        >>> batch = SimpleNamespace(thompson_draws=lambda: draws)
        >>> acts, ps, details = ThompsonRule().decide_batch(batch)
        >>> acts, ps, [round(d["edge"], 4) for d in details]
        ([True, False], [0.55, 0.4], [0.002, -0.004])
        """
        ...


class BatchSizingLimit(SizingLimit, Protocol):
    """A :class:`SizingLimit` with ``limit_batch``: ``(caps, cuts, details)`` for the events at
    ``rows``; caps (currency) and each cut array-like, one per row.

    Examples
    --------
    The CVaR budget's batch method on two events (ES 4% and 5% of notional, capital 1,000,000):
    0.5% x 1,000,000 / 4% = 125,000 and / 5% = 100,000:

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> risk = (np.array([0.03, 0.04]), np.array([0.04, 0.05]))
    >>> batch = SimpleNamespace(portfolio_value=1e6, position_risk=lambda level: risk)
    >>> caps, cuts, details = CVaRBudget(budget=0.005).limit_batch(batch, np.array([0, 1]))
    >>> np.round(caps), cuts
    (array([125000., 100000.]), {})
    """

    def limit_batch(
        self, batch: SignalBatch, rows: np.ndarray
    ) -> tuple[npt.ArrayLike, Mapping[str, npt.ArrayLike], list[dict[str, Any]]]:
        """``(caps, cuts, details)`` for the events of ``batch`` at ``rows``: caps in currency and
        each cut array-like, one per row.

        Examples
        --------
        The fixed budget for the rows [1] of a batch whose symbols carry 1 and 3 signals:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> batch = SimpleNamespace(signals_on_symbol=lambda: [1, 3])
        >>> FixedBudget(750.0).limit_batch(batch, np.array([1]))
        (array([250.]), {}, [{'per_symbol': 750.0, 'signals': 3}])
        """
        ...


class SteppedSizingLimit(SizingLimit, Protocol):
    """A :class:`SizingLimit` with ``limit_steps``: a function of an event's index, called in
    event order, returning what ``limit`` returns.

    Examples
    --------
    The portfolio-ES limit is one (it reads the book, which each acted decision moves); with no
    correlation estimate yet every step is unlimited:

    >>> from types import SimpleNamespace
    >>> batch = SimpleNamespace(euler=lambda level: None, portfolio_value=1e6)
    >>> step = PortfolioESLimit().limit_steps(batch)
    >>> step(0)
    (inf, {}, {'note': 'no correlation estimate yet'})
    """

    def limit_steps(
        self, batch: SignalBatch
    ) -> Callable[[int], tuple[float, dict[str, float], dict[str, Any]]]:
        """A function of an event's index, called in event order (each call after the earlier
        decisions entered the book), returning what ``limit`` returns.

        Examples
        --------
        Without an Euler ES (one symbol) the step function caps nothing:

        >>> from types import SimpleNamespace
        >>> step = PortfolioESLimit().limit_steps(SimpleNamespace(euler=lambda level: None))
        >>> step(0)[0], step(1)[0]
        (inf, inf)
        """
        ...


class BatchSizingFactor(SizingFactor, Protocol):
    """A :class:`SizingFactor` with ``factor_batch``: ``(cuts, details)`` for the events at
    ``rows``.

    Examples
    --------
    The regime cut's batch method for rows [0, 2] (P(change) 0.1 and 0.9: no cut, the floor):

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> batch = SimpleNamespace(p_change=lambda: np.array([0.1, 0.55, 0.9]))
    >>> cuts, details = RegimeCut().factor_batch(batch, np.array([0, 2]))
    >>> cuts, details
    (array([1. , 0.5]), [{'p_change': 0.1}, {'p_change': 0.9}])
    """

    def factor_batch(
        self, batch: SignalBatch, rows: np.ndarray
    ) -> tuple[npt.ArrayLike, list[dict[str, Any]]]:
        """``(cuts, details)`` for the events of ``batch`` at ``rows``: one cut in [0, 1] and one
        detail per row.

        Examples
        --------
        Without a regime detector no row is cut:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> RegimeCut().factor_batch(SimpleNamespace(p_change=lambda: None), np.array([0, 1]))
        (array([1., 1.]), [{'note': 'no regime detector'}, {'note': 'no regime detector'}])
        """
        ...


# ---------------------------------------------------------------------------------- rules
@dataclass
class ThompsonRule:
    """Thompson sampling on the expected edge per unit notional: one joint posterior draw of the
    win rate ``p`` (the signal's Beta posterior, pooled by family) and of the mean win and loss
    sizes ``W``, ``L`` (:class:`~bayes_mem.live.payoff.PayoffModel`); act when
    ``p W - (1 - p) L > min_edge`` (``min_edge``: a return per unit notional, default 0).

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> ctx = SimpleNamespace(  # a drawn win rate of 55%, drawn mean win and loss sizes of 2%
    ...     draw_win_probability=lambda: 0.55, payoff_draw=lambda: (0.02, 0.02)
    ... )
    >>> act, p, detail = ThompsonRule().decide(ctx)
    >>> act, p, round(detail["edge"], 4)  # 0.55 x 2% - 0.45 x 2%
    (True, 0.55, 0.002)
    >>> ThompsonRule(min_edge=0.005).decide(ctx)[0]
    False
    """

    min_edge: float = 0.0
    enabled: bool = True
    name: str = "thompson"

    def __post_init__(self) -> None:
        self.min_edge = check_real(self.min_edge, "min_edge")

    def decide(self, ctx: SignalContext) -> tuple[bool, float, dict[str, Any]]:
        """Act when the drawn edge ``p W - (1 - p) L`` exceeds ``min_edge``; returns ``(act, p,
        detail)``.

        Examples
        --------
        A drawn win rate of 40% with drawn sizes of 3% (win) and 2% (loss): edge
        0.4 x 0.03 - 0.6 x 0.02 = 0, not above ``min_edge`` 0:

        >>> from types import SimpleNamespace
        >>> ctx = SimpleNamespace(
        ...     draw_win_probability=lambda: 0.4, payoff_draw=lambda: (0.03, 0.02)
        ... )
        >>> act, p, detail = ThompsonRule().decide(ctx)
        >>> act, p, round(detail["edge"], 10)
        (False, 0.4, 0.0)
        """
        p = ctx.draw_win_probability()
        w1, l1 = ctx.payoff_draw()
        edge = p * w1 - (1.0 - p) * l1
        return edge > self.min_edge, p, {"win_size": w1, "loss_size": l1, "edge": edge}

    def decide_batch(self, batch: SignalBatch) -> tuple[list[bool], list[float], list[dict]]:
        """:meth:`decide` of every event of ``batch``, from its draws
        (:meth:`~bayes_mem.live.engine.SignalBatch.thompson_draws`).

        Examples
        --------
        Two events with win rates 0.6 and 0.3, sizes 1% each: edges 0.002 and -0.004:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> draws = (np.array([0.6, 0.3]), np.array([0.01, 0.01]), np.array([0.01, 0.01]))
        >>> batch = SimpleNamespace(thompson_draws=lambda: draws)
        >>> acts, ps, details = ThompsonRule().decide_batch(batch)
        >>> acts, [round(d["edge"], 4) for d in details]
        ([True, False], [0.002, -0.004])
        """
        p, w, loss = batch.thompson_draws()
        edge = p * w - (1.0 - p) * loss
        details = [
            {"win_size": a, "loss_size": b, "edge": e}
            for a, b, e in zip(w.tolist(), loss.tolist(), edge.tolist(), strict=True)
        ]
        return (edge > self.min_edge).tolist(), p.tolist(), details


@dataclass
class ThresholdRule:
    """The seed baseline: act when the signal's raw running win rate (settled wins / settled
    trades; ``prior_rate`` before any outcome) is at least ``threshold``. No learning beyond the
    count, no pooling, no draw.

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> rule = ThresholdRule(threshold=0.55)
    >>> rule.decide(SimpleNamespace(raw_counts=lambda: (6, 10)))  # 6 wins in 10 settled trades
    (True, 0.6, {'wins': 6, 'trades': 10})
    >>> rule.decide(SimpleNamespace(raw_counts=lambda: (0, 0)))  # no outcome yet: prior_rate
    (False, 0.5, {'wins': 0, 'trades': 0})
    """

    threshold: float = 0.5
    prior_rate: float = 0.5
    enabled: bool = True
    name: str = "threshold"

    def __post_init__(self) -> None:
        self.threshold = check_probability_open(self.threshold, "threshold")
        self.prior_rate = check_probability_open(self.prior_rate, "prior_rate")

    def decide(self, ctx: SignalContext) -> tuple[bool, float, dict[str, Any]]:
        """Act when the raw win rate (``prior_rate`` before any outcome) is at least ``threshold``;
        returns ``(act, rate, detail)``.

        Examples
        --------
        5 wins in 10 trades is exactly the default threshold 0.5, which acts:

        >>> from types import SimpleNamespace
        >>> ThresholdRule().decide(SimpleNamespace(raw_counts=lambda: (5, 10)))
        (True, 0.5, {'wins': 5, 'trades': 10})
        """
        wins, trades = ctx.raw_counts()
        rate = wins / trades if trades else self.prior_rate
        return rate >= self.threshold, rate, {"wins": wins, "trades": trades}

    def decide_batch(self, batch: SignalBatch) -> tuple[list[bool], list[float], list[dict]]:
        """:meth:`decide` of every event of ``batch``, from its raw counts.

        Examples
        --------
        Three events: 2 of 5 wins, no outcome (``prior_rate`` 0.6 applies) and 4 of 5 wins:

        >>> from types import SimpleNamespace
        >>> rule = ThresholdRule(threshold=0.55, prior_rate=0.6)
        >>> acts, rates, _ = rule.decide_batch(
        ...     SimpleNamespace(raw_counts=lambda: [(2, 5), (0, 0), (4, 5)])
        ... )
        >>> acts, rates
        ([False, True, True], [0.4, 0.6, 0.8])
        """
        acts, rates, details = [], [], []
        for wins, trades in batch.raw_counts():
            rate = wins / trades if trades else self.prior_rate
            acts.append(rate >= self.threshold)
            rates.append(rate)
            details.append({"wins": wins, "trades": trades})
        return acts, rates, details


# ---------------------------------------------------------------------------------- limits
@dataclass
class CVaRBudget:
    """Posterior CVaR budget: the notional whose ES over the holding period, on the position's
    side, is ``budget`` x portfolio value: ``budget x PV / ES_h``. ES is the posterior-predictive
    h-day ES at ``level`` (a loss fraction of notional, :meth:`ReturnModel.position_risk`).
    Default: 0.5% of capital per position (the book as a whole: :class:`PortfolioESLimit`).

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> ctx = SimpleNamespace(  # capital 1,000,000; VaR 3%, ES 4% of notional over the horizon
    ...     portfolio_value=1_000_000.0, position_risk=lambda level: (0.03, 0.04)
    ... )
    >>> cap, cuts, detail = CVaRBudget(budget=0.005).limit(ctx)
    >>> round(cap), cuts, detail["es"]  # 0.5% x 1,000,000 / 4%
    (125000, {}, 0.04)
    """

    budget: float = 0.005
    level: float = 0.975
    enabled: bool = True
    name: str = "cvar"

    def __post_init__(self) -> None:
        self.budget = check_positive(self.budget, "budget")
        self.level = check_probability_open(self.level, "level")

    def limit(self, ctx: SignalContext) -> tuple[float, dict[str, float], dict[str, Any]]:
        """``budget x portfolio_value / ES`` (currency) at ``level``, with the ES and VaR used in
        the detail.

        Examples
        --------
        Capital 2,000,000, ES 5% of notional: 1% x 2,000,000 / 5% = 400,000:

        >>> from types import SimpleNamespace
        >>> ctx = SimpleNamespace(portfolio_value=2e6, position_risk=lambda level: (0.04, 0.05))
        >>> cap, cuts, detail = CVaRBudget(budget=0.01).limit(ctx)
        >>> round(cap), detail
        (400000, {'es': 0.05, 'var': 0.04, 'level': 0.975, 'budget': 0.01})
        """
        var, es = ctx.position_risk(self.level)
        return (
            self.budget * ctx.portfolio_value / es,
            {},
            {"es": es, "var": var, "level": self.level, "budget": self.budget},
        )

    def limit_batch(
        self, batch: SignalBatch, rows: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict]]:
        """:meth:`limit` of the events of ``batch`` at ``rows``, as arrays.

        Examples
        --------
        Row 1 only (ES 8%): 0.5% x 1,000,000 / 8% = 62,500:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> risk = (np.array([0.03, 0.06]), np.array([0.04, 0.08]))
        >>> batch = SimpleNamespace(portfolio_value=1e6, position_risk=lambda level: risk)
        >>> caps, cuts, details = CVaRBudget().limit_batch(batch, np.array([1]))
        >>> np.round(caps, 6), details[0]["es"]
        (array([62500.]), 0.08)
        """
        var, es = batch.position_risk(self.level)
        var, es = var[rows], es[rows]
        level, budget = self.level, self.budget
        details = [
            {"es": e, "var": v, "level": level, "budget": budget}
            for v, e in zip(var.tolist(), es.tolist(), strict=True)
        ]
        return budget * batch.portfolio_value / es, {}, details


@dataclass
class FixedBudget:
    """The seed baseline's fixed dollars per symbol: ``per_symbol`` currency split equally over
    the signals that trade the symbol (as registered with the engine).

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> FixedBudget(750.0).limit(SimpleNamespace(signals_on_symbol=lambda: 3))  # 3 signals
    (250.0, {}, {'per_symbol': 750.0, 'signals': 3})
    """

    per_symbol: float = 750.0
    enabled: bool = True
    name: str = "fixed"

    def __post_init__(self) -> None:
        self.per_symbol = check_positive(self.per_symbol, "per_symbol")

    def limit(self, ctx: SignalContext) -> tuple[float, dict[str, float], dict[str, Any]]:
        """``per_symbol`` split equally over the signals on the event's symbol (currency).

        Examples
        --------
        1,000 per symbol over 4 signals is 250 each:

        >>> from types import SimpleNamespace
        >>> FixedBudget(1000.0).limit(SimpleNamespace(signals_on_symbol=lambda: 4))
        (250.0, {}, {'per_symbol': 1000.0, 'signals': 4})
        """
        n = max(1, ctx.signals_on_symbol())
        return self.per_symbol / n, {}, {"per_symbol": self.per_symbol, "signals": n}

    def limit_batch(
        self, batch: SignalBatch, rows: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict]]:
        """:meth:`limit` of the events of ``batch`` at ``rows``, as arrays.

        Examples
        --------
        Rows 0 and 1, on symbols carrying 2 and 5 signals: 750 / 2 and 750 / 5:

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> caps, cuts, details = FixedBudget().limit_batch(
        ...     SimpleNamespace(signals_on_symbol=lambda: [2, 5]), np.array([0, 1])
        ... )
        >>> caps, [d["signals"] for d in details]
        (array([375., 150.]), [2, 5])
        """
        per = batch.signals_on_symbol()
        ns = [max(1, per[i]) for i in rows.tolist()]
        caps = np.array([self.per_symbol / n for n in ns], dtype=float)
        return caps, {}, [{"per_symbol": self.per_symbol, "signals": n} for n in ns]


@dataclass
class KellyLimit:
    """Fractional Kelly in notional under parameter uncertainty: maximise the posterior-expected
    log growth ``E[p log(1 + n W) + (1 - p) log(1 - n L)]`` over ``n`` (notional / capital);
    times ``fraction``, at most ``cap`` x capital.

    The objective is linear in ``p`` and ``W``, ``L`` are independent a posteriori, so it is
    ``E[p] E[log(1 + n W)] + (1 - E[p]) E[log(1 - n L)]``: the win rate enters through its
    posterior mean exactly, and each size's expectation is over its own posterior alone. Those
    are computed on ``nodes`` deterministic mid-quantile nodes of each size's posterior
    (:func:`~bayes_mem.live.payoff.size_nodes`; :func:`~bayes_mem.live.sizing.
    kelly_notional_nodes`), not on Monte Carlo joint draws: no noise (the same posterior gives
    the same size, a signal without history and a positive edge is never sized to 0 by an
    unlucky draw) and no generator used. Within 1% of a brute-force Monte Carlo optimum over
    10^6 joint draws (tests/test_sizing.py). The payoff uncertainty makes the optimum smaller
    than plug-in Kelly at the posterior means.

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> from bayes_mem.live.payoff import PayoffModel
    >>> payoff = PayoffModel()  # two wins (3%, 4%) and two losses (2%, 2.5%) per unit notional
    >>> payoff.register("mom_5d", "momentum")
    >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
    ...     payoff.record("mom_5d", won, size)
    >>> ctx = SimpleNamespace(  # capital 1,000,000; posterior mean win rate 42%
    ...     portfolio_value=1_000_000.0,
    ...     win_probability_mean=lambda: 0.42,
    ...     payoff_posterior=lambda: payoff.posterior("mom_5d"),
    ... )
    >>> cap, cuts, detail = KellyLimit(fraction=0.25).limit(ctx)
    >>> round(cap), round(detail["win_size_mean"], 4), round(detail["loss_size_mean"], 4)
    (453972, 0.035, 0.0225)
    """

    fraction: float = DEFAULT_FRACTION
    cap: float = 1.0
    nodes: int = QUANTILE_NODES
    enabled: bool = True
    name: str = "kelly"

    def __post_init__(self) -> None:
        self.fraction = check_real(self.fraction, "fraction")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction!r}")
        self.cap = check_positive(self.cap, "cap")
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 2:
            raise ValueError(f"nodes must be an int >= 2, got {self.nodes!r}")

    def limit(self, ctx: SignalContext) -> tuple[float, dict[str, float], dict[str, Any]]:
        """The fractional-Kelly notional (currency) over the posterior mean win rate and the payoff
        sizes' posteriors; ``(cap, {}, detail)``.

        Examples
        --------
        A win rate of 30% with sizes about 2% (win) and 2% (loss): a negative edge, Kelly sizes 0:

        >>> from types import SimpleNamespace
        >>> from bayes_mem.live.payoff import PayoffModel
        >>> payoff = PayoffModel()
        >>> payoff.register("s", "fam")
        >>> for won, size in [(True, 0.02), (False, 0.02)]:
        ...     payoff.record("s", won, size)
        >>> ctx = SimpleNamespace(portfolio_value=1e6, win_probability_mean=lambda: 0.3,
        ...                       payoff_posterior=lambda: payoff.posterior("s"))
        >>> cap, cuts, detail = KellyLimit().limit(ctx)
        >>> cap, detail["notional_fraction"], detail["fraction"]
        (0.0, 0.0, 0.25)
        """
        p = ctx.win_probability_mean()
        params = ctx.payoff_posterior()
        n = _kelly_of_posterior(p, params, self.nodes, self.fraction, self.cap)
        w_mean, l_mean = posterior_means(params)
        detail = {
            "p_mean": p,
            "win_size_mean": w_mean,
            "loss_size_mean": l_mean,
            "notional_fraction": n,
            "fraction": self.fraction,
        }
        return n * ctx.portfolio_value, {}, detail

    def limit_batch(
        self, batch: SignalBatch, rows: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray], list[dict]]:
        """:meth:`limit` of the events of ``batch`` at ``rows`` (the same numbers), as arrays.

        Examples
        --------
        The batch method gives what :meth:`limit` gives for each row (here one event):

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> from bayes_mem.live.payoff import PayoffModel
        >>> payoff = PayoffModel()
        >>> payoff.register("s", "fam")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     payoff.record("s", won, size)
        >>> params = payoff.posterior("s")
        >>> win, loss = (tuple(np.array([x]) for x in part) for part in params)
        >>> batch = SimpleNamespace(
        ...     portfolio_value=1e6, win_probability_mean=lambda: np.array([0.42]),
        ...     payoff_params=lambda i: params, payoff_posterior=lambda: (win, loss),
        ... )
        >>> caps, _, _ = KellyLimit().limit_batch(batch, np.array([0]))
        >>> ctx = SimpleNamespace(portfolio_value=1e6, win_probability_mean=lambda: 0.42,
        ...                       payoff_posterior=lambda: params)
        >>> round(float(caps[0])), round(KellyLimit().limit(ctx)[0])
        (453972, 453972)
        """
        p_rows = batch.win_probability_mean()[rows]
        means = p_rows.tolist()
        nodes, fraction, cap = self.nodes, self.fraction, self.cap
        win, loss = (tuple(x[rows] for x in part) for part in batch.payoff_posterior())
        # the rows that need no search at once (no edge, or the cap binds: the scalar path's
        # very sums), the rest one by one
        w_nodes, l_nodes, ok = size_nodes_rows(win, loss, nodes)
        screened = kelly_notional_nodes_screen(p_rows, w_nodes, l_nodes, fraction, cap)
        ns = screened.tolist()
        for j in np.flatnonzero(~ok | np.isnan(screened)).tolist():
            ns[j] = _kelly_of_posterior(means[j], batch.payoff_params(int(rows[j])), nodes,
                                        fraction, cap)  # fmt: skip
        w_mean = (win[1] / win[3]).tolist()
        l_mean = (loss[1] / loss[3]).tolist()
        details = [
            {"p_mean": p, "win_size_mean": w, "loss_size_mean": lo, "notional_fraction": n,
             "fraction": fraction}
            for p, w, lo, n in zip(means, w_mean, l_mean, ns, strict=True)
        ]  # fmt: skip
        return np.array(ns, dtype=float) * batch.portfolio_value, {}, details


@functools.lru_cache(maxsize=8192)
def _kelly_of_posterior(
    p: float, params: tuple[tuple, tuple], nodes: int, fraction: float, cap: float
) -> float:
    """:class:`KellyLimit`'s notional fraction, a pure function of the posterior (the win rate's
    mean and the payoff posteriors' parameters, which change only when a trade settles):
    memoised, so a signal that fires again before its posterior moves costs a lookup."""
    w, loss = size_nodes(params, nodes)
    return kelly_notional_nodes(p, w, loss, fraction, cap)


@dataclass
class PortfolioESLimit:
    """The position's place in the book: the largest notional (on its side) for which the
    portfolio's one-day ES stays within ``budget`` x portfolio value, by Euler allocation on the
    current correlation (:class:`~bayes_mem.live.portfolio.EulerES`). A hedge lowers the book's ES
    and is not cut. The latest correlation-breakdown score cuts further by
    ``1 - breakdown_weight x score`` (the seed plan's cut), reported as ``breakdown``.
    Default: the book's one-day ES within 2% of capital (the seed plan's ``max_portfolio_risk``);
    ES of the open book is one-day, whatever the holding periods.

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> import numpy as np
    >>> from bayes_mem.live import EulerES
    >>> euler = EulerES(  # one-day ES 3% (SPY) and 4% (QQQ) of notional, correlation 0.8
    ...     ["SPY", "QQQ"], [0.03, 0.04], [0.03, 0.04], np.array([[1.0, 0.8], [0.8, 1.0]])
    ... )
    >>> ctx = SimpleNamespace(  # a long SPY signal; the book holds 200,000 of QQQ
    ...     portfolio_value=1_000_000.0, symbol="SPY", direction=1, euler=lambda level: euler,
    ...     book=lambda: {"QQQ": 200_000.0}, breakdown_score=lambda: 0.2,
    ... )
    >>> cap, cuts, detail = PortfolioESLimit(budget=0.02).limit(ctx)
    >>> round(cap), cuts, round(detail["portfolio_es"]), round(detail["marginal_es"], 3)
    (433849, {'breakdown': 0.9}, 8000, 0.024)
    """

    budget: float = 0.02
    level: float = 0.975
    breakdown_weight: float = 0.5
    enabled: bool = True
    name: str = "portfolio_es"

    def __post_init__(self) -> None:
        self.budget = check_positive(self.budget, "budget")
        self.level = check_probability_open(self.level, "level")
        w = check_real(self.breakdown_weight, "breakdown_weight")
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"breakdown_weight must be in [0, 1], got {self.breakdown_weight!r}")
        self.breakdown_weight = w

    def limit(self, ctx: SignalContext) -> tuple[float, dict[str, float], dict[str, Any]]:
        """The largest notional (currency) on the event's side keeping the book's one-day ES within
        ``budget x portfolio_value``, and the breakdown cut.

        Examples
        --------
        An empty book and one symbol at 2.5% one-day ES: 2% x 1,000,000 / 2.5% = 800,000 (no
        breakdown test yet, no cut):

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> from bayes_mem.live import EulerES
        >>> euler = EulerES(["SPY", "QQQ"], [0.025, 0.03], [0.025, 0.03], np.eye(2))
        >>> ctx = SimpleNamespace(portfolio_value=1e6, symbol="SPY", direction=1,
        ...                       euler=lambda level: euler, book=lambda: {},
        ...                       breakdown_score=lambda: None)
        >>> cap, cuts, detail = PortfolioESLimit().limit(ctx)
        >>> round(cap), cuts
        (800000, {})
        """
        euler = ctx.euler(self.level)
        if euler is None:  # fewer than two symbols or too little history: no portfolio view
            return math.inf, {}, {"note": "no correlation estimate yet"}
        budget = self.budget * ctx.portfolio_value
        tracked = getattr(ctx, "book_state", None)  # a context without it: the plain book
        state = None if tracked is None else tracked(self.level)
        if state is not None:  # addition_tracked, one call layer less (the hot path)
            if state.euler is not euler:  # pragma: no cover - the engine's state is its own
                raise ValueError("the book state was made for another EulerES")
            cap, es, marginal = euler._addition(
                state.state, euler._symbol_index(ctx.symbol), float(ctx.direction), budget,
                state.held,
            )  # fmt: skip
        else:
            cap, es, marginal = euler.addition(ctx.book(), ctx.symbol, ctx.direction, budget)
        detail: dict[str, Any] = {
            "portfolio_es": es,
            # dES per unit of notional in the position's direction (< 0: a hedge)
            "marginal_es": marginal * ctx.direction,
            "budget": budget,
        }
        score = ctx.breakdown_score()
        cuts = {}
        if score is not None and self.breakdown_weight > 0.0:
            cuts["breakdown"] = 1.0 - self.breakdown_weight * score
            detail["breakdown_score"] = score
        return cap, cuts, detail

    def limit_steps(self, batch: SignalBatch) -> Callable[[int], tuple[float, dict, dict]]:
        """:meth:`limit` of each event in turn, against the book as the earlier decisions of the
        batch left it (read through the engine's :class:`~bayes_mem.live.portfolio.BookState`,
        moved in O(N) per acted decision); what does not change within the batch (the Euler
        ES, the budget, the breakdown cut) read once.

        Examples
        --------
        Without a correlation estimate (an Euler ES of None) every step is unlimited:

        >>> from types import SimpleNamespace
        >>> step = PortfolioESLimit().limit_steps(SimpleNamespace(euler=lambda level: None))
        >>> step(0)
        (inf, {}, {'note': 'no correlation estimate yet'})
        """
        level = self.level
        euler = batch.euler(level)
        if euler is None:
            return lambda i: (math.inf, {}, {"note": "no correlation estimate yet"})
        budget = self.budget * batch.portfolio_value
        score = batch.breakdown_score()
        cut = None
        if score is not None and self.breakdown_weight > 0.0:
            cut = 1.0 - self.breakdown_weight * score
        directions, book_state = batch.directions, batch.book_state
        index = euler._index  # addition_tracked's arithmetic, its checks hoisted out
        where = [index[s] for s in batch.symbols]
        addition = euler._addition

        def step(i: int) -> tuple[float, dict[str, float], dict[str, Any]]:
            sign = directions[i]
            state = book_state(level)
            assert state is not None  # euler(level) is not None, and the market is fixed in a batch
            if state.euler is not euler:  # pragma: no cover - the market is fixed in a batch
                raise ValueError("the book state was made for another EulerES")
            cap, es, marginal = addition(state.state, where[i], float(sign), budget, state.held)
            detail: dict[str, Any] = {"portfolio_es": es, "marginal_es": marginal * sign,
                                      "budget": budget}  # fmt: skip
            if cut is None:
                return cap, {}, detail
            detail["breakdown_score"] = score
            return cap, {"breakdown": cut}, detail

        return step


# ---------------------------------------------------------------------------------- factors
@dataclass
class RegimeCut:
    """Cut a position when its symbol's changepoint detector says the regime moved recently:
    :func:`~bayes_mem.live.changepoint.regime_factor` of P(change within the last k days).

    Examples
    --------
    The engine calls it with a :class:`~bayes_mem.live.engine.SignalContext`; a stand-in with
    only the accessors the module reads shows the arithmetic:

    >>> from types import SimpleNamespace
    >>> cut = RegimeCut(floor=0.5, start=0.3, full=0.8)
    >>> [cut.factor(SimpleNamespace(p_change=lambda: p))[0] for p in (0.1, 0.55, 0.9)]
    [1.0, 0.75, 0.5]
    >>> cut.factor(SimpleNamespace(p_change=lambda: None))  # no detector: no cut
    (1.0, {'note': 'no regime detector'})
    """

    floor: float = 0.5
    start: float = 0.3
    full: float = 0.8
    enabled: bool = True
    name: str = "regime"

    def __post_init__(self) -> None:
        regime_factor(0.0, floor=self.floor, start=self.start, full=self.full)  # validates

    def factor(self, ctx: SignalContext) -> tuple[float, dict[str, Any]]:
        """The cut of the event's symbol from its P(change): 1 below ``start``, ``floor`` above
        ``full``, linear between.

        Examples
        --------
        P(change) 0.8 is at ``full``: the cut is the floor:

        >>> from types import SimpleNamespace
        >>> RegimeCut(floor=0.4).factor(SimpleNamespace(p_change=lambda: 0.8))
        (0.4, {'p_change': 0.8})
        """
        p = ctx.p_change()
        if p is None:
            return 1.0, {"note": "no regime detector"}
        # regime_factor's arithmetic; its arguments were checked when the module was made and
        # p is the detector's probability
        ramp = min(max((p - self.start) / (self.full - self.start), 0.0), 1.0)
        return 1.0 - (1.0 - self.floor) * ramp, {"p_change": p}

    def factor_batch(self, batch: SignalBatch, rows: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        """:meth:`factor` of the events of ``batch`` at ``rows``, as an array.

        Examples
        --------
        Rows 0 and 1, P(change) 0.3 (``start``: no cut) and 0.55 (halfway: 0.75):

        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> cuts, details = RegimeCut().factor_batch(
        ...     SimpleNamespace(p_change=lambda: np.array([0.3, 0.55])), np.array([0, 1])
        ... )
        >>> cuts, details
        (array([1.  , 0.75]), [{'p_change': 0.3}, {'p_change': 0.55}])
        """
        pc = batch.p_change()
        if pc is None:
            return np.ones(len(rows)), [{"note": "no regime detector"} for _ in rows.tolist()]
        p = pc[rows]
        ramp = np.minimum(np.maximum((p - self.start) / (self.full - self.start), 0.0), 1.0)
        return 1.0 - (1.0 - self.floor) * ramp, [{"p_change": x} for x in p.tolist()]
