"""The seed plan's ``ThompsonSamplingDecider``: the trader's integration point, kept by name.

A thin facade over :class:`bayes_mem.live.Decider` with the statistically correct meaning: with
the default prior, after 7 wins and 3 losses the sampled probability follows Beta(8, 4) (the
plan's sketch added the prior twice), and ``sharpe`` is the per-trade PnL Sharpe ratio.
Signals are registered on first use in one family, ``"default"``, whose prior is
``Beta(alpha_prior, beta_prior)``; use :attr:`decider` for families and the full API.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayes_mem.live._validate import check_probability_open
from bayes_mem.live.decider import Decider, check_outcome
from bayes_mem.live.priors import BetaPrior

DEFAULT_FAMILY = "default"


class ThompsonSamplingDecider:
    """Thompson sampling over signals with a shared Beta(alpha_prior, beta_prior) prior."""

    def __init__(
        self,
        alpha_prior: float = 1,
        beta_prior: float = 1,
        *,
        discount: float = 1.0,
        rng: int | np.random.Generator | None = None,
    ) -> None:
        self.decider = Decider(
            {DEFAULT_FAMILY: BetaPrior(alpha_prior, beta_prior)}, discount=discount, rng=rng
        )

    @property
    def alpha_prior(self) -> float:
        return self.decider.families[DEFAULT_FAMILY].a

    @property
    def beta_prior(self) -> float:
        return self.decider.families[DEFAULT_FAMILY].b

    def register_signal(self, signal_name: str) -> None:
        """Register a signal (idempotent)."""
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
        self, signal_name: str, won: bool, pnl_amount: float, trade_id: str | int | None = None
    ) -> None:
        """Record a settled trade's outcome (``pnl_amount`` in currency)."""
        won, pnl, tid = check_outcome(won, pnl_amount, trade_id)  # refuse before registering
        if tid is not None and self.decider.seen_trade(tid):
            raise ValueError(f"trade_id {tid!r} was already recorded")
        if signal_name not in self.decider:
            self.register_signal(signal_name)
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
