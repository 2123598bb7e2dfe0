"""Position sizing: CVaR budget, Kelly under parameter uncertainty, and the combined limit.

Units: ``portfolio_value`` and every position are in the account currency; ``budget`` and Kelly
fractions are fractions of portfolio value; expected shortfall is a loss fraction of position
value (a positive number, e.g. ``RiskForecast.es_simple``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from bayes_mem.live._validate import as_float_array, check_positive, check_real

DEFAULT_FRACTION = 0.25  # fractional Kelly multiplier (the seed plan's Kelly / 4)
DEFAULT_CAP = 0.25  # never more than 25% of portfolio value (the seed plan's cap)


def _check_fraction(value: object, what: str) -> float:
    v = check_real(value, what)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return v


def _draws(value: object, what: str) -> np.ndarray:
    """A number or a 1-d array of draws as a float array (at least 1-d)."""
    return np.atleast_1d(as_float_array(value, what))


def cvar_position_limit(es_fraction: float, portfolio_value: float, budget: float = 0.02) -> float:
    """Position value whose predictive expected shortfall equals ``budget`` x portfolio value."""
    es = check_positive(es_fraction, "es_fraction")
    pv = check_positive(portfolio_value, "portfolio_value")
    b = _check_fraction(budget, "budget")
    limit = b * pv / es
    if not math.isfinite(limit):
        raise ValueError(
            f"position limit overflows: budget x portfolio_value / es_fraction = {b!r} x {pv!r} / "
            f"{es!r}"
        )
    return limit


def kelly_binary(
    win_prob: np.ndarray | float,
    payoff_ratio: np.ndarray | float,
    *,
    fraction: float = DEFAULT_FRACTION,
    cap: float = DEFAULT_CAP,
) -> float:
    """Fraction of capital maximising posterior-expected log growth of a bet that wins
    ``payoff_ratio`` x stake with probability ``win_prob`` and loses the stake otherwise.

    Pass posterior *draws* (arrays of equal length) of the win probability and the payoff ratio
    (avg win / avg loss): the optimum of ``mean_d[p_d log(1 + f b_d) + (1 - p_d) log(1 - f)]`` is
    smaller than the plug-in ``p - (1 - p) / b`` when the payoff ratio is uncertain. Scalars give
    the plug-in Kelly. The result is multiplied by ``fraction`` and capped at ``cap``; never < 0.
    """
    p = _draws(win_prob, "win_prob")
    b = _draws(payoff_ratio, "payoff_ratio")
    try:
        p, b = np.broadcast_arrays(p, b)
    except ValueError:
        raise ValueError(
            f"win_prob and payoff_ratio draws must pair up, got shapes {p.shape} and {b.shape}"
        ) from None
    if p.ndim != 1 or p.size == 0:
        raise ValueError("win_prob and payoff_ratio must be scalars or 1-d arrays of draws")
    if not (np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))):
        raise ValueError("win_prob must be in [0, 1] and finite")
    if not (np.all(np.isfinite(b)) and np.all(b > 0)):
        raise ValueError("payoff_ratio must be positive and finite")
    fraction = _check_fraction(fraction, "fraction")
    cap = check_positive(cap, "cap")

    def slope(f: float) -> float:  # d/df of the expected log growth, decreasing in f
        return float(np.mean(p * b / (1.0 + f * b) - (1.0 - p) / (1.0 - f)))

    if slope(0.0) <= 0.0:
        return 0.0
    hi = 1.0 - 1e-12
    # slope(hi) > 0 only if every draw wins surely
    full = hi if slope(hi) > 0.0 else optimize.brentq(slope, 0.0, hi, xtol=1e-14)
    return min(fraction * full, cap)


def kelly_continuous(
    mean_draws: np.ndarray | float,
    variance: float,
    *,
    fraction: float = DEFAULT_FRACTION,
    cap: float = DEFAULT_CAP,
) -> float:
    """Mean-variance Kelly for continuous returns under uncertainty about the mean.

    Maximising the posterior-expected second-order log growth ``f E[r] - f^2 E[r^2] / 2`` gives
    ``f = E[mu] / (sigma^2 + E[mu]^2 + Var[mu])``: estimation error in the mean (the spread of
    ``mean_draws``) shrinks the bet. ``variance`` is the return variance per period."""
    m = _draws(mean_draws, "mean_draws")
    if m.ndim != 1 or m.size == 0 or not np.all(np.isfinite(m)):
        raise ValueError("mean_draws must be a finite scalar or 1-d array")
    var = check_positive(variance, "variance")
    fraction = _check_fraction(fraction, "fraction")
    cap = check_positive(cap, "cap")  # may exceed 1 where leverage is allowed
    # f is homogeneous of degree -1 in the scale of returns: compute at unit scale, where the
    # squares cannot overflow, and divide by the scale
    scale = max(float(np.abs(m).max()), math.sqrt(var))
    m = m / scale
    mu = float(m.mean())
    full = mu / (var / scale / scale + mu * mu + float(m.var())) / scale
    return min(max(fraction * full, 0.0), cap)


@dataclass(frozen=True)
class PositionLimit:
    """A position limit (currency) and why: the binding sizing rule times each risk factor."""

    limit: float
    cvar_limit: float | None
    kelly_limit: float | None
    factors: dict[str, float] = field(default_factory=dict)  # multiplicative cuts in (0, 1]

    @property
    def binding(self) -> str:
        """Which sizing rule set the base before the factors."""
        if self.kelly_limit is None:
            return "cvar"
        if self.cvar_limit is None:
            return "kelly"
        return "kelly" if self.kelly_limit < self.cvar_limit else "cvar"

    @property
    def base(self) -> float:
        return min(x for x in (self.cvar_limit, self.kelly_limit) if x is not None)

    @property
    def regime(self) -> float:
        """The regime factor (1.0 when none was given): see :func:`bayes_mem.live.changepoint.
        regime_factor`."""
        return self.factors.get("regime", 1.0)

    def explain(self) -> str:
        parts = [f"base {self.binding}: {self.base:,.2f}"]
        parts += [f"{k} x{v:.3f}" for k, v in self.factors.items() if v != 1.0]
        return "; ".join(parts) + f" -> {self.limit:,.2f}"


def combine_limits(
    *,
    cvar_limit: float | None = None,
    kelly_limit: float | None = None,
    factors: dict[str, float] | None = None,
    regime: float | None = None,
) -> PositionLimit:
    """Final limit = min(CVaR limit, Kelly limit) x every factor (correlation, breakdown,
    regime ...), each reported so a trader can see why a position was cut.

    ``regime`` is the changepoint factor in [0, 1] (``regime_factor`` of the probability of a
    recent regime change); it is reported in ``factors`` under ``"regime"``, after the others.
    Omitted, nothing changes (the factor is 1)."""
    if cvar_limit is None and kelly_limit is None:
        raise ValueError("need at least one of cvar_limit and kelly_limit")
    for name, v in (("cvar_limit", cvar_limit), ("kelly_limit", kelly_limit)):
        if v is not None and (not math.isfinite(check_real(v, name)) or v < 0):
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    if factors is not None and not isinstance(factors, Mapping):
        raise TypeError(f"factors must be a mapping name -> factor, got {factors!r:.80}")
    factors = dict(factors or {})
    if regime is not None:
        if "regime" in factors:
            raise ValueError("give the regime factor once: as regime= or in factors, not both")
        factors["regime"] = regime
    for name, v in factors.items():
        fv = check_real(v, f"factor {name!r}")
        if not 0.0 <= fv <= 1.0:
            raise ValueError(f"factor {name!r} must be in [0, 1], got {v!r}")
    base = min(x for x in (cvar_limit, kelly_limit) if x is not None)
    limit = base * math.prod(factors.values())
    return PositionLimit(limit, cvar_limit, kelly_limit, factors)
