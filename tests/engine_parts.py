"""Small, fully known parts for engine tests: GJR-GARCH skew-t draws, a decider, a prior set."""

from __future__ import annotations

import datetime as dt

import numpy as np

from bayes_mem.live import BetaPrior, Decider, ReturnModel
from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.prior_set import FamilyPosterior, PriorSet, SymbolPosterior

SYMBOLS = ("AAA", "BBB", "CCC")
FAMILIES = {"momentum": BetaPrior(12.0, 10.0), "reversion": BetaPrior(10.0, 10.0)}
START = dt.date(2024, 1, 2)


def draws(seed: int, n: int = 64, lam: float = -0.1, mu: float = 3e-4) -> GarchDraws:
    """``n`` draws around a typical daily equity GJR-GARCH skew-t (small posterior spread)."""
    rng = np.random.default_rng(seed)
    j = rng.normal(0.0, 1.0, (7, n))
    return GarchDraws(
        mu=mu + 5e-5 * j[0],
        omega=2e-6 * np.exp(0.1 * j[1]),
        alpha=np.clip(0.03 + 0.005 * j[2], 0.005, None),
        gamma=np.clip(0.10 + 0.01 * j[3], 0.0, None),
        beta=np.clip(0.86 + 0.01 * j[4], 0.0, 0.9),
        nu=6.0 + 0.3 * np.abs(j[5]),
        lam=np.clip(lam + 0.02 * j[6], -0.95, 0.95),
    )


def model(symbols=SYMBOLS, n: int = 64, sigma2: float = 1e-4, lam: float = -0.1) -> ReturnModel:
    ds = {s: draws(i, n, lam) for i, s in enumerate(symbols)}
    return ReturnModel(ds, {s: np.full(n, sigma2) for s in symbols})


def decider(seed: int = 0) -> Decider:
    d = Decider(dict(FAMILIES), rng=seed)
    for s in SYMBOLS:
        d.register(f"{s}:mom", "momentum")
        d.register(f"{s}:rev", "reversion")
    return d


def links() -> dict[str, str]:
    return {f"{s}:{k}": s for s in SYMBOLS for k in ("mom", "rev")}


def correlated_returns(days: int, seed: int = 1, rho: float = 0.6) -> np.ndarray:
    """(days, 3) daily log returns, pairwise correlation ``rho``, vol ~1%."""
    rng = np.random.default_rng(seed)
    c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    return 0.01 * rng.standard_normal((days, 3)) @ np.linalg.cholesky(c).T


def day_returns(row: np.ndarray) -> dict[str, float]:
    return {s: float(x) for s, x in zip(SYMBOLS, row, strict=True)}


def prior_set(version: int = 1, *, data_through: str | None = None, n: int = 64) -> PriorSet:
    rng = np.random.default_rng(version)
    fams = {
        "momentum": FamilyPosterior(
            np.clip(0.55 + 0.01 * rng.standard_normal(200), 0.01, 0.99),
            np.exp(np.log(40.0) + 0.2 * rng.standard_normal(200)),
        ),
        "reversion": FamilyPosterior(
            np.clip(0.48 + 0.01 * rng.standard_normal(200), 0.01, 0.99),
            np.exp(np.log(30.0) + 0.2 * rng.standard_normal(200)),
        ),
    }
    syms = {s: SymbolPosterior(draws(10 * version + i, n), np.full(n, 1e-4)) for i, s in
            enumerate(SYMBOLS)}  # fmt: skip
    return PriorSet(
        version=version,
        created_at="2024-06-01T00:00:00+00:00",
        data_through=data_through,
        code_version="test",
        config_hash="0" * 64,
        families=fams,
        symbols=syms,
        diagnostics={"passed": True, "reasons": []},
        regime={
            "hazard": 0.004,
            "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 2.0, "beta0": 2.0},
            "max_run_length": 200,
        },
    )
