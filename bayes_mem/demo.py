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
    """What :func:`run_demo` did: rounds, trades taken, PnL of the decider and of the two
    references (units of one loss), and the decider itself.

    Examples
    --------
    >>> result = run_demo(seed=7, rounds=100, signals_per_family=2)
    >>> result.rounds, len(result.decider.signals)  # 3 families x 2 signals
    (100, 6)
    """

    rounds: int
    trades: int
    pnl: float
    pnl_trade_all: float
    pnl_oracle: float
    decider: Decider


def run_demo(
    *, seed: int = 7, rounds: int = 2_000, signals_per_family: int = 20, fire_prob: float = 0.2
) -> DemoResult:
    """Simulate ``rounds`` rounds; PnL is in units of the average loss (a loss costs 1).

    Examples
    --------
    A short run of 200 rounds, 3 signals per family: trades the decider took, and the PnL (units
    of one loss) of the decider, of trading every fired signal and of the oracle that knows
    every signal's true win rate (a short run is mostly learning):

    >>> result = run_demo(seed=7, rounds=200, signals_per_family=3)
    >>> result.trades, round(result.pnl), round(result.pnl_trade_all), round(result.pnl_oracle)
    (205, 15, 24, 46)
    """
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
    """The demo's summary as text: the PnL line, then the ``top`` signals with the highest and
    the ``top`` with the lowest posterior mean win rate.

    Examples
    --------
    >>> result = run_demo(seed=7, rounds=200, signals_per_family=3)
    >>> print(format_result(result, top=1))
    rounds: 200   trades taken: 205
    PnL (units of one loss): decider +15   trade everything +24   oracle +46
    <BLANKLINE>
    signal              family           trades  win rate      90% interval  P(>b/e)     pnl  sharpe
    breakout_00         breakout             31     0.788    [0.663, 0.893]     1.00      19    0.76
    mean_reversion_02   mean_reversion       17     0.368    [0.199, 0.554]     0.12      -5   -0.30
    """
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
    """Write the decider snapshot atomically (temp file + rename), owner-only permissions.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> result = run_demo(seed=7, rounds=50, signals_per_family=1)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "demo" / "decider_state.json"
    ...     save_state(result.decider, path)
    ...     print(oct(path.stat().st_mode & 0o777), sorted(json.loads(path.read_text()))[:2])
    0o600 ['clock_state', 'config']
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(decider.to_json())
    tmp.chmod(0o600)
    tmp.replace(path)
