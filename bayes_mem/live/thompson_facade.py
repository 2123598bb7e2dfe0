"""The seed plan's ``ThompsonSamplingDecider``: the trader's integration point, kept by name.

A thin facade over :class:`bayes_mem.live.Decider` with the statistically correct meaning: with
the default prior, after 7 wins and 3 losses the sampled probability follows Beta(8, 4) (the
plan's sketch added the prior twice), and ``sharpe`` is the per-trade PnL Sharpe ratio.
Signals are registered on first use in one family, ``"default"``, whose prior is
``Beta(alpha_prior, beta_prior)``; use :attr:`decider` for families and the full API.

Backed by a :class:`~bayes_mem.live.engine.TradingEngine` (``engine=``), the facade uses the
engine's decider, so its draws see the nightly family priors, and outcomes go through
:meth:`TradingEngine.settle` (stored first, counted once, in the engine's win rates and, when a
``notional`` is given, its payoff sizes). A signal the engine does not know is registered in the
``"default"`` family, as without an engine.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_mem.live.decider import Decider, DuplicateTradeError, check_outcome
from bayes_mem.live.priors import BetaPrior
from bayes_mem.live.validate import check_probability_open

if TYPE_CHECKING:  # pragma: no cover
    from bayes_mem.live.engine import TradingEngine

DEFAULT_FAMILY = "default"


class ThompsonSamplingDecider:
    """Thompson sampling over signals with a shared Beta(alpha_prior, beta_prior) prior.

    Examples
    --------
    >>> ts = ThompsonSamplingDecider(rng=0)
    >>> for i in range(10):  # 7 wins of +100, 3 losses of -80
    ...     ts.update_signal_result("breakout", i < 7, 100.0 if i < 7 else -80.0, trade_id=i)
    >>> ts.decider.posterior("breakout")  # Beta(1 + 7, 1 + 3)
    BetaPrior(a=8.0, b=4.0)
    >>> execute, p = ts.decide_execute("breakout")
    >>> execute, round(p, 3)
    (True, 0.614)
    >>> m = ts.get_signal_quality_metrics("breakout")
    >>> round(m["win_rate"], 4), m["pnl"], round(m["sharpe"], 3), m["total_trades"]
    (0.6667, 460.0, 0.529, 10)
    """

    def __init__(
        self,
        alpha_prior: float = 1,
        beta_prior: float = 1,
        *,
        discount: float = 1.0,
        rng: int | np.random.Generator | None = None,
        engine: TradingEngine | None = None,
    ) -> None:
        prior = BetaPrior(alpha_prior, beta_prior)
        self.engine = engine
        if engine is None:
            self.decider = Decider({DEFAULT_FAMILY: prior}, discount=discount, rng=rng)
            return
        self.decider = engine.decider
        if DEFAULT_FAMILY not in self.decider.families:
            self.decider.add_family(DEFAULT_FAMILY, prior)

    @property
    def alpha_prior(self) -> float:
        """The ``a`` of the ``"default"`` family's Beta prior (pseudo-wins).

        Examples
        --------
        >>> ThompsonSamplingDecider(2.0, 3.0).alpha_prior
        2.0
        """
        return self.decider.families[DEFAULT_FAMILY].a

    @property
    def beta_prior(self) -> float:
        """The ``b`` of the ``"default"`` family's Beta prior (pseudo-losses).

        Examples
        --------
        >>> ThompsonSamplingDecider(2.0, 3.0).beta_prior
        3.0
        """
        return self.decider.families[DEFAULT_FAMILY].b

    def register_signal(self, signal_name: str) -> None:
        """Register a signal (idempotent; with an engine, stored first).

        Examples
        --------
        Registered in the ``"default"`` family; registering again changes nothing:

        >>> ts = ThompsonSamplingDecider()
        >>> ts.register_signal("breakout")
        >>> ts.register_signal("breakout")
        >>> ts.decider.signals, ts.decider.family_of("breakout")
        (('breakout',), 'default')
        """
        if self.engine is not None:
            if signal_name not in self.decider:
                self.engine.register(signal_name, DEFAULT_FAMILY)
            return
        self.decider.register(signal_name, DEFAULT_FAMILY)

    def decide_execute(self, signal_name: str, base_confidence: float = 0.5) -> tuple[bool, float]:
        """Sample the signal's win probability; return ``(execute, sampled_probability)``.

        Without payoff history, execute when the sample exceeds ``base_confidence``; with one,
        when the sampled expected PnL per trade is positive.

        Examples
        --------
        Without payoff history the draw is compared with ``base_confidence``; a high bar declines
        more often (the same draw, a different verdict):

        >>> import numpy as np
        >>> ts = ThompsonSamplingDecider(8.0, 2.0, rng=np.random.default_rng(0))  # mean 0.8
        >>> execute, p = ts.decide_execute("breakout", base_confidence=0.5)
        >>> execute, round(p, 3)
        (True, 0.753)
        >>> ts2 = ThompsonSamplingDecider(8.0, 2.0, rng=np.random.default_rng(0))
        >>> ts2.decide_execute("breakout", base_confidence=0.99)[0]
        False
        """
        threshold = check_probability_open(base_confidence, "base_confidence")
        if signal_name not in self.decider:
            self.register_signal(signal_name)
        return self.decider.decide(signal_name, threshold=threshold)

    def update_signal_result(
        self,
        signal_name: str,
        won: bool,
        pnl_amount: float,
        trade_id: str | int | None = None,
        *,
        notional: float | None = None,
    ) -> None:
        """Record a settled trade's outcome (``pnl_amount`` in currency; ``notional``, the
        position's value, lets an engine learn the payoff size per unit notional).

        Examples
        --------
        A win and a loss from the flat prior: Beta(1 + 1, 1 + 1); a trade id counts once:

        >>> ts = ThompsonSamplingDecider()
        >>> ts.update_signal_result("breakout", True, 120.0, trade_id="t1")
        >>> ts.update_signal_result("breakout", False, -80.0, trade_id="t2")
        >>> ts.decider.posterior("breakout")
        BetaPrior(a=2.0, b=2.0)
        >>> ts.update_signal_result("breakout", True, 120.0, trade_id="t1")
        Traceback (most recent call last):
            ...
        bayes_mem.live.decider.DuplicateTradeError: trade_id 't1' was already ...
        """
        won, pnl, tid = check_outcome(won, pnl_amount, trade_id)  # refuse before registering
        if tid is not None and self.decider.seen_trade(tid):
            raise DuplicateTradeError(f"trade_id {tid!r} was already recorded")
        if signal_name not in self.decider:
            self.register_signal(signal_name)
        if self.engine is not None:
            self.engine.settle(
                tid or f"auto-{uuid.uuid4().hex}", won=won, pnl=pnl, notional=notional,
                signal=signal_name,
            )  # fmt: skip
            return
        self.decider.record(signal_name, won, pnl, tid)

    def get_signal_quality_metrics(self, signal_name: str) -> dict[str, Any]:
        """``win_rate`` (posterior mean), ``uncertainty`` (posterior sd), ``pnl`` (total),
        ``sharpe`` (per-trade PnL mean / sd, ``None`` with fewer than 2 trades), ``total_trades``,
        and every field of :class:`bayes_mem.live.SignalMetrics`.

        Examples
        --------
        Three wins under the flat prior: win rate (1 + 3) / (2 + 3) = 0.8:

        >>> ts = ThompsonSamplingDecider()
        >>> for i, pnl in enumerate([50.0, 70.0, 30.0]):
        ...     ts.update_signal_result("breakout", True, pnl, trade_id=i)
        >>> m = ts.get_signal_quality_metrics("breakout")
        >>> m["win_rate"], m["pnl"], m["total_trades"], round(m["sharpe"], 4)  # mean 50, sd 20
        (0.8, 150.0, 3, 2.5)
        """
        if signal_name not in self.decider:
            self.register_signal(signal_name)
        m = self.decider.metrics(signal_name)
        return {
            "win_rate": m.posterior_mean,
            "uncertainty": m.posterior_sd,
            "pnl": m.total_pnl,
            "sharpe": m.sharpe,
            "total_trades": m.trades,
            **m.to_dict(),
        }
