"""Live risk speed goals (issue 3), each printed next to the seed plan's historical-percentile
CVaR on the same data, for scale:

- update + VaR/CVaR of one symbol with S = 200 posterior draws: under 100 us;
- 500 symbols in one vectorised update + VaR/CVaR (S = 200): under 20 ms;
- portfolio VaR/CVaR of 50 positions: under 20 ms.
"""

from __future__ import annotations

import itertools

import numpy as np

from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.portfolio import portfolio_risk
from bayes_mem.live.return_model import ReturnModel
from benchmarks._timing import Result, best_pair

S = 200


def _draws(rng: np.random.Generator, vol: float) -> GarchDraws:
    return GarchDraws(
        mu=rng.normal(3e-4, 1e-4, S),
        omega=rng.uniform(1e-6, 3e-6, S) * vol**2,
        alpha=rng.uniform(0.01, 0.05, S),
        gamma=rng.uniform(0.05, 0.15, S),
        beta=rng.uniform(0.82, 0.86, S),
        nu=rng.uniform(4, 9, S),
        lam=rng.uniform(-0.3, 0.0, S),
    )


def build(n_symbols: int, seed: int = 0) -> tuple[ReturnModel, np.ndarray]:
    """A model of ``n_symbols`` and 252 days of returns per symbol (the percentile's window)."""
    rng = np.random.default_rng(seed)
    draws = {f"SYM{i:03d}": _draws(rng, rng.uniform(0.6, 2.0)) for i in range(n_symbols)}
    sigma2 = {k: d.omega / (1 - d.alpha - d.gamma / 2 - d.beta) for k, d in draws.items()}
    history = rng.standard_t(5, (252, n_symbols)) * 0.01
    return ReturnModel(draws, sigma2), history


def seed_plan_cvar(history: np.ndarray, confidence: float = 0.975) -> np.ndarray:
    """The plan's DynamicCVaREngine.calculate_cvar_limit core, vectorised over symbols."""
    var = np.percentile(history, (1 - confidence) * 100, axis=0)
    return np.array([history[history[:, i] <= var[i], i].mean() for i in range(history.shape[1])])


def bench_one_symbol(repeat: int) -> Result:
    model, history = build(1)
    days = itertools.cycle(np.random.default_rng(1).standard_t(5, 1_000) * 0.01)

    def ours() -> None:
        model.update([next(days)], kind="log")
        model.risk(0.975)

    sub, base = best_pair(ours, lambda: seed_plan_cvar(history), 2_000, repeat)
    return Result(
        "1 symbol: update + VaR/ES", sub, "seed percentile CVaR", base, "< 100 us", max_us=100.0
    )


def bench_many_symbols(repeat: int) -> Result:
    model, history = build(500)
    rng = np.random.default_rng(2)
    days = itertools.cycle(list(rng.standard_t(5, (200, 500)) * 0.01))

    def ours() -> None:
        model.update(next(days), kind="log")
        model.risk(0.975)

    sub, base = best_pair(ours, lambda: seed_plan_cvar(history), 10, repeat)
    return Result(
        "500 symbols: update + VaR/ES",
        sub,
        "seed percentile CVaR x500",
        base,
        "< 20 ms",
        max_us=20_000.0,
    )


def bench_portfolio(repeat: int) -> list[Result]:
    model, history = build(50)
    rng = np.random.default_rng(3)
    positions = {
        s: float(v) for s, v in zip(model.symbols, rng.uniform(-1, 1, 50) * 1e5, strict=True)
    }
    corr = 0.4 * np.ones((50, 50)) + 0.6 * np.eye(50)
    weights = np.array(list(positions.values()))

    def seed_portfolio() -> float:  # historical simulation of the portfolio, the plan's percentile
        pnl = history @ weights
        var = np.percentile(pnl, 2.5)
        return pnl[pnl <= var].mean()

    ell, base = best_pair(
        lambda: portfolio_risk(model, positions, corr), seed_portfolio, 20, repeat
    )
    sim, base2 = best_pair(
        lambda: portfolio_risk(model, positions, corr, method="simulation", n_sims=20_000, rng=1),
        seed_portfolio,
        1,
        max(2, repeat // 3),
    )
    return [
        Result(
            "portfolio of 50 (elliptical)",
            ell,
            "historical portfolio CVaR",
            base,
            "< 20 ms",
            max_us=20_000.0,
        ),
        Result(
            "portfolio of 50 (simulation 20k)", sim, "historical portfolio CVaR", base2, "reference"
        ),
    ]


def run(repeat: int = 7) -> list[Result]:
    return [bench_one_symbol(repeat), bench_many_symbols(repeat), *bench_portfolio(repeat)]
