"""A self-contained demo of the live decision path on simulated signals.

Signals in three families fire at random; the decider picks which to trade; each trade settles a
few rounds later (out of order, by trade id); the decider learns from the outcomes. The demo
reports the decisions' PnL against two references on the same fired signals: trading everything,
and an oracle that knows every signal's true win rate.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bayes_mem.live import BetaPrior, Decider

# family name -> (true mean win rate, concentration of the win rates around it)
FAMILIES = {"momentum": (0.53, 40.0), "mean_reversion": (0.48, 40.0), "breakout": (0.50, 15.0)}


@dataclass(frozen=True)
class DemoResult:
    rounds: int
    trades: int
    pnl: float
    pnl_trade_all: float
    pnl_oracle: float
    decider: Decider


def run_demo(
    *, seed: int = 7, rounds: int = 2_000, signals_per_family: int = 20, fire_prob: float = 0.2
) -> DemoResult:
    """Simulate ``rounds`` rounds; PnL is in units of the average loss (a loss costs 1)."""
    rng = np.random.default_rng(seed)
    decider = Decider({name: BetaPrior(1.0, 1.0) for name in FAMILIES}, rng=rng.spawn(1)[0])
    names, true_p = [], []
    for family, (mean, conc) in FAMILIES.items():
        for j in range(signals_per_family):
            name = f"{family}_{j:02d}"
            decider.register(name, family)
            names.append(name)
            true_p.append(rng.beta(mean * conc, (1 - mean) * conc))
    true_p = np.array(true_p)
    win_size = 1.0  # symmetric payoff: +1 on a win, -1 on a loss
    idx_all = decider.indices(names)
    pending: list[tuple[int, int, int, bool]] = []  # (settle round, trade id, signal, won)
    pnl = pnl_all = pnl_oracle = 0.0
    trades = 0
    next_id = 0
    for t in range(rounds):
        while pending and pending[0][0] <= t:
            _, tid, i, won = heapq.heappop(pending)
            decider.record(names[i], won, win_size if won else -1.0, trade_id=tid)
        fired = idx_all[rng.random(idx_all.size) < fire_prob]
        if fired.size == 0:
            continue
        act, _ = decider.decide_batch(fired)
        outcome = rng.random(fired.size) < true_p[fired]
        result = np.where(outcome, win_size, -1.0)
        pnl += float(result[act].sum())
        pnl_all += float(result.sum())
        pnl_oracle += float(result[true_p[fired] * (win_size + 1.0) > 1.0].sum())
        for i, won in zip(fired[act].tolist(), outcome[act].tolist(), strict=True):
            heapq.heappush(pending, (t + 1 + int(rng.integers(0, 5)), next_id, i, won))
            next_id += 1
            trades += 1
    return DemoResult(rounds, trades, pnl, pnl_all, pnl_oracle, decider)


def format_result(result: DemoResult, top: int = 5) -> str:
    d = result.decider
    lines = [
        f"rounds: {result.rounds}   trades taken: {result.trades}",
        f"PnL (units of one loss): decider {result.pnl:+.0f}   trade everything "
        f"{result.pnl_trade_all:+.0f}   oracle {result.pnl_oracle:+.0f}",
        "",
        f"{'signal':<20}{'family':<16}{'trades':>7}{'win rate':>10}{'90% interval':>18}"
        f"{'P(>b/e)':>9}{'pnl':>8}{'sharpe':>8}",
    ]
    metrics = sorted((d.metrics(s) for s in d.signals), key=lambda m: -m.posterior_mean)
    for m in metrics[:top] + metrics[-top:]:
        sharpe = "-" if m.sharpe is None else f"{m.sharpe:.2f}"
        lines.append(
            f"{m.signal:<20}{m.family:<16}{m.trades:>7}{m.posterior_mean:>10.3f}"
            f"{f'[{m.credible_low:.3f}, {m.credible_high:.3f}]':>18}"
            f"{m.p_above_break_even:>9.2f}{m.total_pnl:>8.0f}{sharpe:>8}"
        )
    return "\n".join(lines)


def save_state(decider: Decider, path: Path) -> None:
    """Write the decider snapshot atomically (temp file + rename), owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(decider.to_json())
    tmp.chmod(0o600)
    tmp.replace(path)
