"""Per-signal sizing speed goals: the engine sizes each firing signal with ~100-200 posterior draws.

- ``kelly_notional`` over 200 joint draws of (p, W, L), interior optimum (the cap not binding):
  under 30 us, printed beside ``kelly_binary`` (brentq) over the same draws;
- ``PayoffModel.draws`` of 128 (W, L) pairs: <= 1.5x its floor, the numpy work of exact draws
  (per side one ``Generator.standard_gamma`` call of 128 with a scalar shape and one division).
"""

from __future__ import annotations

import numpy as np

from bayes_mem.live import PayoffModel, kelly_binary, kelly_notional
from benchmarks._timing import Result, best_pair, warm_up


def bench_kelly(repeat: int) -> list[Result]:
    rng = np.random.default_rng(0)
    n = 200
    p = rng.beta(55, 45, n)
    w = 0.03 * rng.gamma(20.0, 1 / 20.0, n)
    loss = 0.025 * rng.gamma(20.0, 1 / 20.0, n)
    b = w / loss
    interior, binary = best_pair(
        lambda: kelly_notional(p, w, loss, cap=100.0), lambda: kelly_binary(p, b), 5_000, repeat
    )
    capped, binary2 = best_pair(
        lambda: kelly_notional(p, w, loss), lambda: kelly_binary(p, b), 5_000, repeat
    )
    return [
        Result(
            "kelly_notional, 200 draws", interior, "kelly_binary (brentq)", binary, "< 30 us",
            max_us=30.0,
        ),
        Result("kelly_notional, capped", capped, "kelly_binary (brentq)", binary2, "reference"),
    ]  # fmt: skip


def bench_payoff_draws(repeat: int) -> list[Result]:
    rng = np.random.default_rng(1)
    model = PayoffModel(discount=0.999)
    for i in range(50):
        model.register(f"s{i}", f"family{i % 5}")
    for t in range(10_000):
        won = bool(rng.random() < 0.55)
        model.record(f"s{t % 50}", won, float(rng.gamma(2.0, 0.015 if won else 0.0125)))
    g = np.random.default_rng(2)
    gamma = g.standard_gamma

    def floor() -> None:
        np.divide(0.5, gamma(30.5, 128))
        np.divide(0.4, gamma(20.5, 128))

    ours, base = best_pair(
        lambda: model.draws("s7", 128, g, fallback_win=0.02, fallback_loss=0.02),
        floor,
        20_000,
        repeat,
    )
    return [
        Result(
            "PayoffModel.draws, 128", ours, "2 x (gamma(128), divide)", base, "ratio <= 1.5",
            max_ratio=1.5,
        )
    ]  # fmt: skip


def run(repeat: int = 7) -> list[Result]:
    warm_up()
    return [*bench_kelly(repeat), *bench_payoff_draws(repeat)]
