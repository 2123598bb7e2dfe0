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
        return self.decider.families[DEFAULT_FAMILY].a

    @property
    def beta_prior(self) -> float:
        return self.decider.families[DEFAULT_FAMILY].b

    def register_signal(self, signal_name: str) -> None:
        """Register a signal (idempotent; with an engine, stored first)."""
        if self.engine is not None:
            if signal_name not in self.decider:
                self.engine.register(signal_name, DEFAULT_FAMILY)
            return
        self.decider.register(signal_name, DEFAULT_FAMILY)

    def decide_execute(self, signal_name: str, base_confidence: float = 0.5) -> tuple[bool, float]:
        """Sample the signal's win probability; return ``(execute, sampled_probability)``.

        Without payoff history, execute when the sample exceeds ``base_confidence``; with one,
        when the sampled expected PnL per trade is positive.
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
        position's value, lets an engine learn the payoff size per unit notional)."""
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
        and every field of :class:`bayes_mem.live.SignalMetrics`."""
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
