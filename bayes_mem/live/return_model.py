"""Posterior-predictive risk per symbol from GJR-GARCH-skew-t parameter draws.

Each symbol carries S parameter draws and, per draw, its conditional variance for the next day.
:meth:`ReturnModel.update` rolls every draw forward with the day's return (O(S) per symbol,
vectorised across symbols). :meth:`ReturnModel.risk` gives the posterior-predictive VaR and
expected shortfall: the predictive is the equal-weight mixture of the S skew-t components
``mu_s + sigma_s z``; its quantile is found by safeguarded Newton iterations (vectorised across
symbols, bracketed by the component quantiles) and its ES is the mixture of each component's
closed-form lower partial mean at that quantile. The spread of the components' own ES values is the
credible band of the CVaR across draws.

Side. A long position loses when the return is low, a short one when it is high. The short's loss
``-r`` has the same mixture with ``mu -> -mu`` and ``lam -> -lam`` (Hansen's skew-t reflects into
itself: :meth:`~bayes_mem.live.skewt.SkewT.mirrored`), so ``side="short"`` runs the same solver on
a mirrored :class:`~bayes_mem.live.mixture_tail.MixtureTail` (built on first use).

Horizon. ``horizon=h > 1`` gives the risk of the h-day sum of log returns. Per symbol, ``P`` paths
per draw (``P = ceil(HORIZON_PATHS / S)``, each draw with its own parameters) run the GJR
recursion forward from the draw's current variance for ``h - 1`` days; given a path, the h-day sum
is its first ``h - 1`` returns plus a last day that is the draw's skew-t with the path's variance.
So the h-day predictive is a mixture of ``P S`` skew-t components, solved like the one-day one
(conditional Monte Carlo: no sampling of the last day, and a smooth ES). The simulated days are
importance-sampled towards the side's loss tail (``_IS_ALLOC``; the paths carry their likelihood
ratios as mixture weights). The innovations are common random numbers, fixed per symbol (seeded by
a hash of the symbol's name and parameters, one stream per day and side), so the same state gives
the same answer, a restored snapshot included, and successive bars differ only through the state.
The Monte Carlo standard error of the ES is reported (:attr:`RiskForecast.es_se`); the forecast is
cached per (level, side, horizon, method) until the next :meth:`~ReturnModel.update`. The
predictive sd of the h-day sum is exact (closed form).

State bounds. Every draw's conditional variance stays within ``STATE_RANGE`` = [1e-4, 1e4] times
the draw's long-run variance ``v = omega / (1 - alpha - kappa gamma - beta)`` (volatility between
1% and 100x the long-run one; the recursion alone keeps it above ``omega``, and a -90% day of a
2%-volatility stock lifts it ~2,600x), and ``sqrt(v)`` within ``LONG_RUN_VOL_RANGE`` = [1e-6, 1]
per day (a units check: fractions, not percent). The constructor (and so a snapshot or prior-set
load) refuses states or draws outside, naming the symbol and the draw: they only come from a
degenerate fit (a stale series fitted to omega ~1e-89 had states 1e41 times its long-run variance
and an ES of 6,956) or a corrupted file. :meth:`ReturnModel.update` and the simulated paths of
horizons > 1 clip into the range (documented, and reached only by absurd days), so
:meth:`ReturnModel.risk` sees finite components of bounded spread (tested on extreme accepted
draws: tail weights 2.1-200, skews +-0.95, states at both bounds, long-run volatilities 1e-6 to
1 in one mixture: finite VaR and ES >= VaR, both sides, both methods, one and three days); the
tail table refuses a NaN distance by name instead of reading outside itself.

Units: the model is on daily log returns as fractions (0.01 = 1%). Inputs say whether they are
``"log"`` or ``"simple"`` returns; outputs give both. A loss is a positive number.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import numpy as np

from bayes_mem.live.gjr_garch import PARAMS, GarchDraws, fit_laplace, variance_path
from bayes_mem.live.mixture_quantile import mixture_quantile
from bayes_mem.live.mixture_tail import MixtureTail, RowTail
from bayes_mem.live.pit import to_normal
from bayes_mem.live.skewt import SkewT, asymmetry_weight
from bayes_mem.live.validate import (
    MIN_LEVEL,
    as_float_array,
    check_int,
    check_level,
    check_name,
    check_probability_open,
    check_real,
    check_schema,
)

# a normal score whose mixture CDF is this close to 0 or 1 is computed exactly (scipy): there the
# tail table's absolute error (< 1e-10) over the normal density would exceed ~1e-6
_EXACT_TAIL = 1e-4

ReturnKind = Literal["log", "simple"]
Side = Literal["long", "short"]
# Monte Carlo paths per symbol for horizons > 1 (rounded up to a multiple of the number of draws,
# so that every draw has the same number of paths). Measured at 97.5% on 500 symbols with S = 200
# random GJR draws (nu 4-9, lam -0.3-0): the ES standard error is, median over symbols, 1.1-1.4%
# of the ES at h = 2, 1.9-2.6% at h = 5 (8% for the worst symbol), 3-4.5% at h = 10 (long side
# the larger); it falls like 1 / sqrt(paths) (ReturnModel(horizon_paths=...)).
HORIZON_PATHS = 1000
# Importance sampling of the simulated days: each day's innovation falls in the side's worst
# 0.1%, next 0.9%, next 4% of its law, or the rest, with probabilities _IS_ALLOC instead of the
# strata's own _IS_PROB; a path is weighted by the product of its days' likelihood ratios (the
# weights are self-normalised). Measured: ES standard error 2.5-4x smaller than plain sampling
# at h = 2..5 (the h-day tail is carried by rare large shocks and the variance they feed), and
# plain sampling's own error estimate was unreliable in the upper tail (rare shocks missing).
_IS_EDGES = np.array([0.0, 0.001, 0.01, 0.05, 1.0])
_IS_PROB = np.diff(_IS_EDGES)
_IS_ALLOC = np.array([0.05, 0.10, 0.15, 0.70])
_IS_LOG_RATIO = np.log(_IS_PROB / _IS_ALLOC)
# Newton's stopping rule for the path mixtures: |F(q) - alpha| <= 3% of alpha. The ES is
# stationary at the root, so its error is second order (measured below 1e-4 relative against
# the exact solve, ~1/50 of the Monte Carlo error), and a warm start usually needs one
# evaluation.
_PATH_RTOL = 0.03
# Longest horizon in days: the common random numbers take 9 x (h - 1) x paths bytes per symbol
# and side (500 symbols x 1,000 paths: 4.5 MB per day of horizon and side).
MAX_HORIZON = 63
SNAPSHOT_SCHEMA = "bayes_mem.return_model/1"
# The plausibility bound of a daily return, shared by the live model and the store's ingest: a
# log return within +-1.0, i.e. a simple return in [-63.2%, +171.8%] in one day. Daily moves of
# the instruments this model serves stay far inside it (the largest in the `arch` data the
# evaluation uses: S&P 500 and NASDAQ 1999-2018 within +-0.14, WTI 1986-2019 -0.41, January
# 1991; the S&P 500's worst day, October 1987, was -0.23); a value beyond it is far more likely a
# units error (percent given for a fraction: 5.0 for 5%), an unadjusted split (3:1 or more) or a
# typo than a real move, and after it a GJR-GARCH one-day forecast means little anyway (one such
# day puts the next variance near alpha + gamma, a 30-40% daily volatility). Refused with the
# value named, in the live update and at ingest alike, so the store and the live model hold the
# same days. (A genuine larger move, e.g. a collapse on news, is outside what this model serves.)
MAX_LOG_RETURN = 1.0
_MIN_SIMPLE, _MAX_SIMPLE = math.expm1(-MAX_LOG_RETURN), math.expm1(MAX_LOG_RETURN)
# conditional variance per draw, relative to the draw's long-run variance (module docstring)
STATE_RANGE = (1e-4, 1e4)
# the long-run daily volatility of a draw (fractions): a units check
LONG_RUN_VOL_RANGE = (1e-6, 1.0)


def to_log_returns(values: np.ndarray | Sequence[float], kind: str) -> np.ndarray:
    """Validate returns and convert them to log returns (each within +-:data:`MAX_LOG_RETURN`).

    Examples
    --------
    A simple return of -50% is a log return of ``log(0.5)``; 5.0 (percent given for a fraction)
    is refused:

    >>> to_log_returns([0.01, -0.5], "simple").round(4).tolist()
    [0.01, -0.6931]
    >>> try:
    ...     to_log_returns([5.0], "log")
    ... except ValueError as exc:
    ...     print(exc)  # doctest: +ELLIPSIS
    log returns must be within +-1.0 (a log return of +-1.0 is a -63.2% / +171.8% day: ...
    """
    if kind not in ("log", "simple"):
        raise ValueError(
            f"kind must be 'log' or 'simple' (say which returns these are), got {kind!r}"
        )
    x = np.asarray(values, dtype=float)
    if not np.isfinite(x).all():
        bad = x[~np.isfinite(x)]
        raise ValueError(f"returns must be finite, got {bad[:3].tolist()}")
    if kind == "simple":
        if np.any(x <= -1.0):
            raise ValueError(f"simple returns must be > -1, got {x[x <= -1.0][:3].tolist()}")
        out = np.log1p(x)
    else:
        out = x
    beyond = np.abs(out) > MAX_LOG_RETURN
    if np.any(beyond):
        span = (
            f"log returns must be within +-{MAX_LOG_RETURN}"
            if kind == "log"
            else f"simple returns must be within ({_MIN_SIMPLE:.4f}, {_MAX_SIMPLE:.4f})"
        )
        raise ValueError(
            f"{span} (a log return of +-{MAX_LOG_RETURN} is a {_MIN_SIMPLE:.1%} / "
            f"+{_MAX_SIMPLE:.1%} day: beyond it, more likely a units error than a move), got "
            f"{x[beyond][:3].tolist()}"
        )
    return out


@dataclass(frozen=True)
class RiskForecast:
    """Posterior-predictive risk per symbol of a position on one ``side`` held ``horizon`` days,
    losses as positive fractions.

    For a long position the loss is ``-r`` (``r`` the log return over the horizon, the sum of the
    daily ones), for a short one it is ``r``: ``var_log`` is the ``level`` quantile of that loss
    and ``es_log`` its mean beyond it (a short's ES is the upper-tail mean of ``r``).

    Examples
    --------
    >>> from bayes_mem.live import GarchDraws, ReturnModel
    >>> draws = GarchDraws(  # three posterior draws of one symbol (usually a few hundred)
    ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
    ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
    ...     lam=[-0.1, -0.05, -0.15],
    ... )
    >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
    >>> f = model.risk(0.975)
    >>> f.symbols, f.side, f.horizon
    (('SPY',), 'long', 1)
    >>> f.var_log.round(4).tolist(), f.es_log.round(4).tolist()  # log-return losses
    ([0.0136], [0.0187])
    >>> print(f"ES {f.es_simple[0]:.2%} of the notional")
    ES 1.85% of the notional
    >>> f.es_band(0.9).round(4).tolist()  # 90% credible band of the ES across draws
    [[0.0168, 0.0204]]
    >>> sorted(f.as_dict("SPY"))  # doctest: +NORMALIZE_WHITESPACE
    ['es_band_high', 'es_band_low', 'es_log', 'es_simple', 'level', 'var_log', 'var_simple',
     'volatility']
    """

    symbols: tuple[str, ...]
    level: float  # confidence level, e.g. 0.975: the tail has probability 1 - level
    var_log: np.ndarray  # VaR of the log return, as a loss of the side
    es_log: np.ndarray  # expected shortfall (CVaR) of the log return, as a loss of the side
    volatility: np.ndarray  # predictive sd of the log return over the horizon
    # the side's mixture components (the loss is minus them): (N, S), or (P, N, S) over paths
    _mu: np.ndarray = field(repr=False)
    _sd: np.ndarray = field(repr=False)
    _zes: np.ndarray | None = field(repr=False)  # per draw, for the ES band (one day only)
    side: Side = "long"
    horizon: int = 1  # days
    es_se: np.ndarray | None = None  # Monte Carlo standard error of es_log; None: no simulation
    n_paths: int | None = None  # Monte Carlo paths per symbol; None: no simulation
    # F(q) and the first two lower partial moments of the tail, on demand (tail_variance)
    _tail_moments: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(
        default=None, repr=False, compare=False
    )
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def component_es(self) -> np.ndarray:
        """Each posterior draw's own one-day ES of the log return, shape (N, S).

        Examples
        --------
        One symbol, three draws (log-return losses; their spread gives :meth:`es_band`):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> f.component_es().round(4).tolist()
        [[0.0185, 0.0167, 0.0206]]
        """
        if self._zes is None:
            raise ValueError(
                f"the ES band across draws is one-day only; this forecast is {self.horizon}-day"
            )
        return self._sd * self._zes - self._mu

    def es_band(self, prob: float = 0.9) -> np.ndarray:
        """(N, 2) equal-tailed ``prob`` credible interval of the ES across parameter draws
        (one-day forecasts only).

        Examples
        --------
        A 50% band is inside the 90% one (log-return losses):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> f.es_band(0.5).round(4).tolist(), f.es_band(0.9).round(4).tolist()
        ([[0.0176, 0.0195]], [[0.0168, 0.0204]])
        """
        prob = check_probability_open(prob, "prob")
        return _row_quantiles(self.component_es(), ((1 - prob) / 2, (1 + prob) / 2))

    @property
    def es_band_log(self) -> np.ndarray:
        """The 90% credible band of ES across draws.

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> f.es_band_log.round(4).tolist()  # es_band(0.9)
        [[0.0168, 0.0204]]
        """
        return self.es_band(0.9)

    @property
    def var_simple(self) -> np.ndarray:
        """VaR as a loss fraction of the position's notional (exact: the map is monotone):
        ``1 - exp(-VaR)`` for a long, ``exp(VaR) - 1`` for a short.

        Examples
        --------
        A log-return VaR of 1.3606% is a loss of ``1 - exp(-0.013606)`` = 1.3514% of a long's
        notional:

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> f.var_log.round(6).tolist(), f.var_simple.round(6).tolist()
        ([0.013606], [0.013514])
        """
        if self.side == "short":
            return np.expm1(self.var_log)
        return -np.expm1(-self.var_log)

    @property
    def es_simple(self) -> np.ndarray:
        """ES as a loss fraction of the position's notional.

        Long: ``1 - exp(-ES_log)``. By Jensen's inequality this is an upper bound of the exact
        simple-return ES (conservative); the gap is about half the tail variance of the log
        return, ~1e-4 at daily horizons.

        Short: the loss ``exp(r) - 1`` is convex in ``r``, so ``exp(ES_log) - 1`` is a *lower*
        bound, and the exact value is infinite under the model (a t tail has no exponential
        moments: the expectation is carried by price multiples of hundreds). Reported: the
        expectation to second order in the tail spread, ``exp(ES) - 1 + exp(ES) V / 2`` with
        ``V = Var(r | r >= VaR)`` (:meth:`tail_variance`, closed form): above the Jensen bound by
        about half the tail variance, and equal to the exact expectation of the loss capped at
        any price multiple up to 10x to ~1e-6 at a daily horizon (tested).

        Examples
        --------
        A long's ES is ``1 - exp(-ES_log)``; a short's is above the Jensen bound
        ``exp(ES_log) - 1`` by about half the tail variance:

        >>> import numpy as np
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)
        >>> f.es_log.round(5).tolist(), f.es_simple.round(5).tolist()
        ([0.01866], [0.01849])
        >>> short = model.risk(0.975, side="short")
        >>> np.expm1(short.es_log).round(6).tolist(), short.es_simple.round(6).tolist()
        ([0.016797], [0.016808])
        """
        if self.side == "short":
            e = np.exp(self.es_log)
            return (e - 1.0) + 0.5 * e * self.tail_variance()
        return -np.expm1(-self.es_log)

    def tail_variance(self) -> np.ndarray:
        """Variance of the log return within the loss tail, ``Var(r | loss >= VaR)`` (computed
        on first use, closed form per component, then cached).

        Examples
        --------
        A tail standard deviation of about 0.6% around the long's ES of 1.87% (log returns):

        >>> import numpy as np
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> np.sqrt(f.tail_variance()).round(4).tolist()
        [0.006]
        """
        out = self._cache.get("tail_variance")
        if out is None:
            if self._tail_moments is None:
                raise ValueError("this forecast does not carry its components")
            cdf, m1, m2 = self._tail_moments()
            out = np.maximum(m2 / cdf - (m1 / cdf) ** 2, 0.0)
            out.setflags(write=False)
            self._cache["tail_variance"] = out
        return out

    def as_dict(self, symbol: str) -> dict[str, float]:
        """One symbol's numbers (the band only for one-day forecasts, ``es_se`` only for
        simulated ones; :attr:`side` and :attr:`horizon` are the forecast's own).

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.975)  # long, one day
        >>> {k: round(v, 4) for k, v in f.as_dict("SPY").items()}  # doctest: +NORMALIZE_WHITESPACE
        {'level': 0.975, 'var_log': 0.0136, 'es_log': 0.0187, 'var_simple': 0.0135,
         'es_simple': 0.0185, 'es_band_low': 0.0168, 'es_band_high': 0.0204, 'volatility': 0.0066}
        """
        i = self.symbols.index(symbol)
        out = {
            "level": self.level,
            "var_log": float(self.var_log[i]),
            "es_log": float(self.es_log[i]),
            "var_simple": float(self.var_simple[i]),
            "es_simple": float(self.es_simple[i]),
        }
        if self._zes is not None:
            band = self.es_band(0.9)
            out["es_band_low"], out["es_band_high"] = float(band[i, 0]), float(band[i, 1])
        if self.es_se is not None:
            out["es_se"] = float(self.es_se[i])
        out["volatility"] = float(self.volatility[i])
        return out


class ReturnModel:
    """Live conditional-volatility state for N symbols x S parameter draws. Thread-safe.

    ``horizon_paths``: Monte Carlo paths per symbol for horizons > 1 (rounded up to a multiple
    of S); the ES standard error falls like its square root and the cost grows linearly (see
    :meth:`risk`).

    Examples
    --------
    ``sigma2`` is each draw's conditional variance for the next day (here its long-run one):

    >>> from bayes_mem.live import GarchDraws, ReturnModel
    >>> draws = GarchDraws(  # three posterior draws of one symbol (usually a few hundred)
    ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
    ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
    ...     lam=[-0.1, -0.05, -0.15],
    ... )
    >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
    >>> model.symbols, model.n_draws, model.volatility().round(4).tolist()
    (('SPY',), 3, [0.0066])
    >>> var, es = model.position_risk("SPY")  # 97.5%, long, one day: loss fractions
    >>> print(f"VaR {var:.2%}, ES {es:.2%}")
    VaR 1.35%, ES 1.85%
    >>> model.update({"SPY": -0.03}, kind="log")  # a 3% fall: volatility rises, so does ES
    >>> var, es = model.position_risk("SPY")
    >>> print(f"VaR {var:.2%}, ES {es:.2%}, volatility {model.volatility()[0]:.2%}")
    VaR 2.73%, ES 3.71%, volatility 1.33%
    """

    def __init__(
        self,
        draws: Mapping[str, GarchDraws],
        sigma2: Mapping[str, np.ndarray],
        *,
        horizon_paths: int = HORIZON_PATHS,
    ) -> None:
        horizon_paths = check_int(horizon_paths, "horizon_paths", minimum=1)
        if not draws:
            raise ValueError("need at least one symbol")
        symbols = tuple(check_name(s, "symbol") for s in draws)
        if set(sigma2) != set(symbols):
            raise ValueError(
                f"sigma2 symbols {sorted(sigma2)!r:.200} do not match draws "
                f"{sorted(symbols)!r:.200}"
            )
        sizes = {d.size for d in draws.values()}
        if len(sizes) != 1:
            raise ValueError(f"every symbol needs the same number of draws, got {sorted(sizes)}")
        self._symbols = symbols
        self._pos = {s: i for i, s in enumerate(symbols)}
        p = {k: np.stack([getattr(draws[s], k) for s in symbols]) for k in PARAMS}
        self._p = p
        s2 = np.stack([as_float_array(sigma2[s], f"sigma2 of {s!r}") for s in symbols])
        if s2.shape != p["mu"].shape or not np.all(np.isfinite(s2)) or np.any(s2 <= 0):
            raise ValueError(f"sigma2 must be positive and finite with shape {p['mu'].shape}")
        self._s2_lo, self._s2_hi = _state_bounds(symbols, p, s2)
        self._sigma2 = s2
        self._tail = MixtureTail(p["nu"], p["lam"])  # tail weights snapped to the table grid
        self._inn = self._tail.exact
        self._weights = np.full(s2.shape[1], 1.0 / s2.shape[1])
        self._mu_bar = p["mu"] @ self._weights
        self._mu_var = np.var(p["mu"], axis=1)
        self._alpha_gamma = p["alpha"] + p["gamma"]  # the news impact of a negative shock
        self._z_cache: dict[tuple[float, str], tuple[np.ndarray, np.ndarray]] = {}
        self._warm: dict[float, np.ndarray] = {}  # last standardised quantile per tail level
        # the same for the short side and for horizons > 1, keyed (alpha, side, horizon)
        self._warm_keyed: dict[tuple[float, str, int], np.ndarray] = {}
        self._mirror: tuple[MixtureTail, np.ndarray] | None = None  # the short side's mixture
        self._row_short: RowTail | None = None
        # horizons > 1: common random numbers (days, P, N, S), built on first use
        self._n_rep = -(-horizon_paths // s2.shape[1])  # paths per draw
        self._innovations = {
            side: (
                np.empty((0, self._n_rep, *s2.shape)),
                np.empty((0, self._n_rep, *s2.shape), dtype=np.uint8),
            )
            for side in ("long", "short")
        }
        self._kappa: np.ndarray | None = None  # E[z^2 1{z < 0}] per draw
        self._innovations_lock = threading.Lock()
        self._path_weights: dict[tuple[int, str], np.ndarray] = {}  # importance weights
        # cleared by update: simulated path components per horizon, forecasts for h > 1 and
        # position_risk answers; _version says whether an update came in meanwhile
        self._paths: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._horizon_cache: dict[tuple[float, str, int, str], RiskForecast] = {}
        # (symbol, level, side, horizon) -> (VaR, ES); (level, side, horizon) -> their arrays
        self._position_cache: dict[tuple[str, float, Side, int], tuple[float, float]] = {}
        self._position_arrays: dict[tuple[float, Side, int], tuple[np.ndarray, np.ndarray]] = {}
        self._version = 0
        self._last_z = np.zeros(len(symbols))  # latest standardised residual per symbol
        self._last_r = np.full(len(symbols), np.nan)  # latest log return (NaN: none yet)
        self._prev_sigma2 = s2.copy()  # the variances that return was forecast with
        self._lock = threading.Lock()
        # one symbol: a dedicated path with 1-d constants and reused buffers (under the lock)
        self._row = RowTail(self._tail, 0, p["mu"][0]) if len(symbols) == 1 else None
        self._row_vol: float | None = None  # its predictive sd, cached until the next update
        if self._row is not None:
            self._row_sigma2 = self._sigma2[0]  # a view: updated in place
            row_params = (p["mu"], self._alpha_gamma, p["alpha"], p["omega"], p["beta"])
            self._row_params = tuple(np.array(x[0]) for x in row_params)  # contiguous 1-d
            self._row_bounds = (np.array(self._s2_lo[0]), np.array(self._s2_hi[0]))
            self._row_eps = np.empty(s2.shape[1])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_history(
        cls,
        returns: Mapping[str, Sequence[float] | np.ndarray],
        *,
        kind: ReturnKind,
        n_draws: int = 200,
        rng: int | np.random.Generator | None = None,
    ) -> ReturnModel:
        """The documented default until the nightly job publishes posterior draws: per symbol, a
        maximum-likelihood GJR-GARCH-skew-t fit and ``n_draws`` draws from its Laplace
        approximation; each draw's variance is run through the history to today.

        A symbol whose history cannot be fitted raises, naming it: a stale series
        (:class:`~bayes_mem.live.gjr_garch.StaleSeriesError`), a fit that did not converge or
        degenerated (:class:`~bayes_mem.live.gjr_garch.LaplaceFitError`), both ``ValueError``;
        leave such symbols out (or give them a prior set's draws) rather than guess their risk.

        Examples
        --------
        >>> import numpy as np
        >>> from bayes_mem.live.gjr_garch import GarchDraws, simulate
        >>> truth = GarchDraws(
        ...     mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86], nu=[6.0],
        ...     lam=[-0.1],
        ... )
        >>> returns, _ = simulate(truth, 1000, np.random.default_rng(0))  # four years, log
        >>> model = ReturnModel.from_history({"SPY": returns[0]}, kind="log", n_draws=100, rng=1)
        >>> model.symbols, model.n_draws
        (('SPY',), 100)
        >>> var, es = model.position_risk("SPY")
        >>> print(f"VaR {var:.1%}, ES {es:.1%}")
        VaR 1.2%, ES 1.6%
        """
        rng = np.random.default_rng(rng)
        draws, sigma2 = {}, {}
        for symbol, values in returns.items():
            check_name(symbol, "symbol")
            r = to_log_returns(values, kind)
            fit = fit_laplace(r, n_draws, rng, symbol=symbol)
            draws[symbol] = fit.draws
            sigma2[symbol] = variance_path(r, fit.draws, float(np.var(r)))[:, -1]
        return cls(draws, sigma2)

    # ------------------------------------------------------------------ state
    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols, in the order of every per-symbol array.

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> d = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                nu=[6.0], lam=[-0.1])
        >>> ReturnModel({"SPY": d, "QQQ": d}, {"SPY": [4e-5], "QQQ": [9e-5]}).symbols
        ('SPY', 'QQQ')
        """
        return self._symbols

    @property
    def n_draws(self) -> int:
        """The number of posterior parameter draws per symbol (S).

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.n_draws
        3
        """
        return self._p["mu"].shape[1]

    def sigma2(self) -> np.ndarray:
        """Per-draw conditional variance for the next day, shape (N, S) (a copy).

        Examples
        --------
        Started at each draw's long-run variance (daily log-return units):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> (model.sigma2() ** 0.5).round(4).tolist()  # daily volatility per draw
        [[0.0066, 0.0063, 0.007]]
        """
        with self._lock:
            return self._sigma2.copy()

    def volatility(self) -> np.ndarray:
        """Predictive standard deviation of the next day's log return per symbol.

        Examples
        --------
        A 3% fall doubles it (the GJR term: a negative shock weighs ``alpha + gamma``):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.volatility().round(4).tolist()
        [0.0066]
        >>> model.update({"SPY": -0.03}, kind="log")
        >>> model.volatility().round(4).tolist()
        [0.0133]
        """
        with self._lock:
            return self._volatility()

    def _volatility(self) -> np.ndarray:
        return np.sqrt(self._sigma2 @ self._weights + self._mu_var)

    def last_standardized_residual(self) -> np.ndarray:
        """The latest return of each symbol standardised by its predictive mean and sd, i.e. what
        the correlation estimate should see (volatility removed).

        Examples
        --------
        A 3% fall at a 0.66% daily volatility is about -4.6 standard deviations:

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.update({"SPY": -0.03}, kind="log")
        >>> model.last_standardized_residual().round(2).tolist()
        [-4.57]
        """
        with self._lock:
            return self._last_z.copy()

    def last_normal_score(self) -> np.ndarray:
        """``Phi^-1(F(r))`` of each symbol's latest log return under the predictive it was
        forecast with (the mixture over draws): i.i.d. N(0, 1) while the model holds, fat tails
        and volatility clustering included, so it is what the regime detector should see
        (:class:`~bayes_mem.live.changepoint.NormalGammaBOCPD`). 0 for a symbol without a return
        yet. Tail weights are the table's snapped ones (see :mod:`bayes_mem.live.pit` for the
        offline version).

        The mixture CDF is read from the tabulated Student-t tail (:class:`MixtureTail`,
        absolute error < 1e-10 per component, ~10x cheaper than ``scipy.special.stdtr``); a
        symbol whose CDF is within ``_EXACT_TAIL`` of 0 or 1, where that absolute error would
        move the score by more than ~1e-6, is recomputed exactly (scipy). The score is then
        within 1e-6 of the exact one (tests/test_pit.py).

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
        ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.last_normal_score().tolist()  # no return yet
        [0.0]
        >>> model.update({"SPY": -0.03}, kind="log")  # a 3% fall at 0.64% volatility
        >>> model.last_normal_score().round(2).tolist()
        [-3.17]
        """
        with self._lock:
            seen = np.isfinite(self._last_r)
            out = np.zeros(len(self._symbols))
            if seen.any():
                rows = None if seen.all() else np.flatnonzero(seen)
                sel = slice(None) if rows is None else rows
                mu = self._p["mu"][sel]
                sd = np.sqrt(self._prev_sigma2[sel])
                cdf = self._tail.cdf(self._last_r[sel], mu, sd, rows)
                far = np.flatnonzero((cdf < _EXACT_TAIL) | (cdf > 1.0 - _EXACT_TAIL))
                if far.size:  # deep in a tail: the exact CDF of those few symbols
                    at = far if rows is None else rows[far]
                    z = (self._last_r[at, None] - mu[far]) / sd[far]
                    inn = SkewT.from_params(self._inn.nu[at], self._inn.lam[at])
                    cdf[far] = inn.cdf(z) @ self._weights
                out[seen] = to_normal(cdf)
            return out

    def update(
        self, returns: Mapping[str, float] | Sequence[float] | np.ndarray, *, kind: ReturnKind
    ) -> None:
        """Roll every draw's variance forward with one day's returns.

        ``returns`` is a mapping symbol -> return (a subset: symbols without a return that day are
        left as they are) or a sequence in :attr:`symbols` order.

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(  # three posterior draws of one symbol (usually a few hundred)
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.update({"SPY": -0.03}, kind="log")
        >>> model.volatility().round(4).tolist(), model.last_standardized_residual().round(2)
        ([0.0133], array([-4.57]))
        >>> model.update([0.012], kind="simple")  # a +1.2% day, as a simple return
        >>> model.volatility().round(4).tolist()
        [0.0126]
        """
        if self._row is not None:
            x = self._one_return(returns, kind)
            if x is not None:
                with self._lock:
                    self._update_row(x)
                return
        idx, r = self._align(returns, kind)
        p = self._p
        rows = slice(None) if idx is None else idx  # a full day: views, no copies
        with self._lock:
            mu = p["mu"][rows]
            sig2 = self._sigma2[rows]
            sd_bar = np.sqrt(sig2 @ self._weights + self._mu_var[rows])
            eps = r[:, None] - mu
            shock = np.where(eps < 0.0, self._alpha_gamma[rows], p["alpha"][rows]) * (eps * eps)
            self._prev_sigma2[rows] = sig2
            self._last_r[rows] = r
            new = np.maximum(p["omega"][rows] + shock + p["beta"][rows] * sig2, self._s2_lo[rows])
            self._sigma2[rows] = np.minimum(new, self._s2_hi[rows], out=new)  # the state bounds
            self._last_z[rows] = (r - self._mu_bar[rows]) / sd_bar
            if self._row is not None:
                self._row_vol = None
            self._invalidate()

    def _one_return(self, returns: Any, kind: str) -> float | None:
        """A one-symbol model's day return as a log return, when it is given plainly (a float in
        a list, tuple, float array or one-key mapping) and is valid; ``None`` otherwise: the
        general path then decides (and raises on bad input)."""
        kind_of = type(returns)
        if kind_of is list or kind_of is tuple:
            if len(returns) != 1:
                return None
            value = returns[0]
        elif kind_of is np.ndarray:
            if returns.shape != (1,) or returns.dtype != np.float64:
                return None
            value = returns[0]
        elif isinstance(returns, Mapping):
            if len(returns) != 1:
                return None
            ((symbol, value),) = returns.items()
            if symbol != self._symbols[0]:
                return None
        else:
            return None
        if not isinstance(value, float):  # float or np.float64; anything else: general path
            return None
        x = float(value)
        if kind == "log":
            # NaN, inf and beyond the bound: the general path, which refuses them
            return x if -MAX_LOG_RETURN <= x <= MAX_LOG_RETURN else None
        if kind == "simple" and _MIN_SIMPLE <= x <= _MAX_SIMPLE:
            r = float(np.log1p(x))  # as the general path: the same bits
            return r if -MAX_LOG_RETURN <= r <= MAX_LOG_RETURN else None
        return None

    def _row_volatility(self) -> float:
        """Predictive sd of a one-symbol model (cached until the next update); under the lock."""
        vol = self._row_vol
        if vol is None:
            s2 = float(np.dot(self._row_sigma2, self._weights))
            vol = self._row_vol = math.sqrt(s2 + float(self._mu_var[0]))
        return vol

    def _update_row(self, r: float) -> None:
        """:meth:`update` of a one-symbol model (same arithmetic, in place); under the lock."""
        mu, alpha_gamma, alpha, omega, beta = self._row_params
        sig2 = self._row_sigma2
        sd_bar = self._row_volatility()
        eps = np.subtract(r, mu, out=self._row_eps)
        coef = np.where(eps < 0.0, alpha_gamma, alpha)
        np.copyto(self._prev_sigma2[0], sig2)
        self._last_r[0] = r
        np.multiply(eps, eps, out=eps)
        np.multiply(coef, eps, out=eps)
        np.add(omega, eps, out=eps)
        np.multiply(beta, sig2, out=sig2)
        np.add(eps, sig2, out=sig2)
        np.maximum(sig2, self._row_bounds[0], out=sig2)  # the state bounds (ufuncs: np.clip
        np.minimum(sig2, self._row_bounds[1], out=sig2)  # costs ~4 us more per call)
        self._last_z[0] = (r - float(self._mu_bar[0])) / sd_bar
        self._row_vol = None
        self._invalidate()

    def _invalidate(self) -> None:
        """Forget what depends on the variance state (under the lock): new dictionaries, so a
        reader holding the old one sees a consistent, older state."""
        self._version += 1
        self._paths = {}
        self._horizon_cache = {}
        self._position_cache = {}
        self._position_arrays = {}

    def _align(
        self, returns: Mapping[str, float] | Sequence[float] | np.ndarray, kind: str
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Row indices (``None``: every symbol, in order) and the day's log returns."""
        if isinstance(returns, Mapping):
            unknown = [sym for sym in returns if sym not in self._pos]
            if unknown:
                raise ValueError(f"unknown symbols {unknown[:5]!r}; not in this model")
            bad = [v for v in returns.values() if not _is_number(v)]
            if bad:
                raise TypeError(f"returns must be numbers, got {bad[0]!r}")
            idx = np.fromiter((self._pos[sym] for sym in returns), np.intp, len(returns))
            try:
                values = np.array([float(v) for v in returns.values()])
            except OverflowError:  # an integer beyond the float range
                raise ValueError("returns must be finite, got an integer beyond floats") from None
            return idx, to_log_returns(values, kind)
        values = np.asarray(returns)
        if values.dtype.kind not in "iuf" or values.shape != (len(self._symbols),):
            raise ValueError(
                f"returns must be {len(self._symbols)} numbers in symbol order, got shape "
                f"{values.shape} of {values.dtype}"
            )
        return None, to_log_returns(values, kind)

    # ------------------------------------------------------------------ risk
    def risk(
        self,
        level: float = 0.975,
        *,
        side: Side = "long",
        horizon: int = 1,
        method: str = "fast",
    ) -> RiskForecast:
        """Posterior-predictive VaR and ES at confidence ``level`` for every symbol, of a
        position on ``side`` (``"long"``: the loss is ``-r``; ``"short"``: the loss is ``r``) held
        ``horizon`` days (``r`` the sum of the daily log returns).

        ``horizon=1`` (default) is the one-day predictive, solved directly (the ES credible band
        across draws is computed on demand: :meth:`RiskForecast.es_band`).
        ``method="fast"`` (default) uses the tabulated tail and a warm-started Newton solve:
        relative error below ~2e-5 in either tail (levels >= 0.9, or <= 0.1), absolute error
        below 1e-4 of the predictive volatility in between (1e-6 in return units at a 1%
        volatility). ``method="exact"`` solves with scipy to a relative 1e-10 of the smaller tail
        probability (slow; for checks). Levels must be in [1e-10, 1) (see
        :func:`~bayes_mem.live.validate.check_level`). Both use the tail weights snapped to the
        table grid. A one-symbol model solves on a dedicated single-row path
        (:class:`~bayes_mem.live.mixture_tail.RowTail`: the same method, answers equal to
        rounding). The short side costs what the long side does (a mirrored mixture).

        ``horizon=h`` in 2..``MAX_HORIZON``: the Monte Carlo path mixture of the module
        docstring (:attr:`horizon_paths` paths per symbol; ``method`` chooses how that mixture is
        solved, on the same paths), with the ES's Monte Carlo standard error in
        :attr:`RiskForecast.es_se` and no band across draws. It is cached per (level, side,
        horizon, method) until the next :meth:`update`, and computed from a copy of the state
        outside the lock (updates are not held up). Measured for 500 symbols, S = 200, h = 5 on
        the 2-core development machine: 65-75 ms per (level, side) and bar, 1.1 s once per model
        and side for the random numbers; a cached call is a dictionary lookup.

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(  # three posterior draws of one symbol (usually a few hundred)
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> f = model.risk(0.99)
        >>> f.var_log.round(4).tolist(), f.es_log.round(4).tolist()
        ([0.0179], [0.0236])
        >>> model.risk(0.99, side="short").es_log.round(4).tolist()  # the lighter upper tail
        [0.0204]
        >>> f5 = model.risk(0.99, horizon=5)  # five days: Monte Carlo paths
        >>> f5.es_log.round(3).tolist(), f5.n_paths
        ([0.052], 1002)
        """
        if type(level) is not float or not MIN_LEVEL <= level < 1.0:
            level = check_level(level, "level")
        if method != "fast" and method != "exact":
            raise ValueError(f"method must be 'fast' or 'exact', got {method!r}")
        if type(side) is not str or (side != "long" and side != "short"):
            side = _check_side(side)
        if type(horizon) is not int or horizon != 1:
            horizon = check_horizon(horizon)
            if horizon > 1:
                return self._risk_horizon(level, side, horizon, method)
        alpha = 1.0 - level
        zq, zes = self._component_tail(alpha, side)
        if side == "long":
            tail, mu, inn, mu_bar, row = (
                self._tail,
                self._p["mu"],
                self._inn,
                self._mu_bar,
                self._row,
            )
        else:
            tail, mu = self._mirrored()
            inn, mu_bar, row = tail.exact, -self._mu_bar, self._short_row()
        if row is not None and method == "fast":
            return self._risk_row(level, alpha, zq, zes, side, tail, mu, row)
        with self._lock:
            sd = np.sqrt(self._sigma2)
            vol = self._volatility()
            if method == "exact":
                comp_q = mu + sd * zq
                q = mixture_quantile(
                    alpha, mu, sd, inn, comp_q.min(axis=1), comp_q.max(axis=1), 1e-10
                )
                z = (q[:, None] - mu) / sd
                lower = mu * inn.cdf(z) + sd * inn.partial_mean(z)
                var, es = -q, -(lower @ self._weights) / alpha
                moments = partial(_exact_tail_moments, inn, q, mu, sd)
            else:
                warm = self._get_warm(alpha, side, 1)
                q0 = (mu + sd * zq) @ self._weights if warm is None else mu_bar + vol * warm
                var, es, _ = tail.var_es(alpha, mu, sd, q0)
                self._set_warm(alpha, side, 1, (-var - mu_bar) / vol)
                moments = partial(tail.tail_moments, -var, mu, sd)
        return RiskForecast(
            self._symbols, level, var, es, vol, mu, sd, zes, side=side, _tail_moments=moments
        )

    def _risk_row(
        self,
        level: float,
        alpha: float,
        zq: np.ndarray,
        zes: np.ndarray,
        side: Side,
        tail: MixtureTail,
        mu: np.ndarray,
        row: RowTail,
    ) -> RiskForecast:
        """:meth:`risk` ``method="fast"`` of a one-symbol model (``tail``, ``mu`` and ``row``
        are the side's)."""
        mu_bar = float(self._mu_bar[0]) if side == "long" else -float(self._mu_bar[0])
        with self._lock:
            sd = np.sqrt(self._row_sigma2)
            vol = self._row_volatility()
            warm = self._get_warm(alpha, side, 1)
            if warm is None:
                q0 = float(np.dot(row.mu + sd * zq[0], self._weights))
            else:
                q0 = mu_bar + vol * float(warm[0])
            found = row.var_es(alpha, sd, q0)
            if found is None:  # an iterate outside the fast region: the general solver
                v, e, _ = tail.var_es(alpha, mu, sd[None, :], np.array([q0]))
                var, es = float(v[0]), float(e[0])
            else:
                var, es, _ = found
            self._set_warm(alpha, side, 1, np.array([(-var - mu_bar) / vol]))
        out = np.array([var, es, vol])
        sd = sd[None, :]
        moments = partial(tail.tail_moments, np.array([-var]), mu, sd)
        return RiskForecast(
            self._symbols,
            level,
            out[:1],
            out[1:2],
            out[2:],
            mu,
            sd,
            zes,
            side=side,
            _tail_moments=moments,
        )

    def _get_warm(self, alpha: float, side: str, horizon: int) -> np.ndarray | None:
        if side == "long" and horizon == 1:
            return self._warm.get(alpha)
        return self._warm_keyed.get((alpha, side, horizon))

    def _set_warm(self, alpha: float, side: str, horizon: int, value: np.ndarray) -> None:
        if side == "long" and horizon == 1:
            self._warm[alpha] = value
        else:
            self._warm_keyed[(alpha, side, horizon)] = value

    def _mirrored(self) -> tuple[MixtureTail, np.ndarray]:
        """The short side's mixture (the law of ``-r``: skew reversed) and its locations
        ``-mu``, built on first use (a race builds it twice, identically)."""
        found = self._mirror
        if found is None:
            tail = MixtureTail(self._p["nu"], -self._p["lam"])
            found = self._mirror = (tail, -self._p["mu"])
        return found

    def _short_row(self) -> RowTail | None:
        """A one-symbol model's single-row solver of the short side (``None``: not one
        symbol)."""
        if self._row is None:
            return None
        row = self._row_short
        if row is None:
            tail, neg_mu = self._mirrored()
            row = self._row_short = RowTail(tail, 0, neg_mu[0])
        return row

    def _component_tail(self, alpha: float, side: str = "long") -> tuple[np.ndarray, np.ndarray]:
        """Per draw of the side's law: the standardised alpha-quantile and
        E[-Z | Z <= quantile] (static per level, so cached)."""
        cached = self._z_cache.get((alpha, side))
        if cached is None:
            inn = self._inn if side == "long" else self._mirrored()[0].exact
            zq = inn.ppf(np.full(inn.nu.shape, alpha))
            zes = -inn.partial_mean(zq) / alpha
            cached = (zq, zes)
            self._z_cache[(alpha, side)] = cached
        return cached

    # ------------------------------------------------------------------ horizons > 1
    @property
    def horizon_paths(self) -> int:
        """Monte Carlo paths per symbol for horizons > 1 (the same number for every draw).

        Examples
        --------
        Rounded up to a multiple of the draws: 1,000 requested, 334 per draw x 3 draws:

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> d = GarchDraws(mu=[3e-4] * 3, omega=[2e-6] * 3, alpha=[0.03] * 3, gamma=[0.12] * 3,
        ...                beta=[0.86] * 3, nu=[6.0] * 3, lam=[-0.1] * 3)
        >>> ReturnModel({"SPY": d}, {"SPY": d.long_run_variance}, horizon_paths=1000).horizon_paths
        1002
        """
        return self._n_rep * self.n_draws

    def _risk_horizon(self, level: float, side: Side, horizon: int, method: str) -> RiskForecast:
        """:meth:`risk` for ``horizon > 1``: computed from a copy of the state taken under the
        lock, outside it (an update is not held up), and cached only if no update came in
        meanwhile (otherwise the answer, of the state it was asked in, is returned uncached)."""
        key = (level, side, horizon, method)
        found = self._horizon_cache.get(key)
        if found is not None:
            return found
        alpha = 1.0 - level
        zq, _ = self._component_tail(alpha, side)
        tail = self._tail if side == "long" else self._mirrored()[0]
        z, strata = self._innovations_for(horizon - 1, side)  # once per model, own lock
        with self._lock:
            found = self._horizon_cache.get(key)
            if found is not None:
                return found
            version, sigma2 = self._version, self._sigma2.copy()
            paths = self._paths.get((horizon, side))
            warm = self._warm_keyed.get((alpha, side, horizon))
        if paths is None:
            paths = self._path_components(sigma2, z, strata, horizon, side)
        loc, scale, wts = paths
        vol = self._horizon_volatility(sigma2, horizon)
        center = horizon * (self._mu_bar if side == "long" else -self._mu_bar)
        if method == "exact":
            var, es, se = _exact_path_var_es(alpha, loc, scale, wts, tail.exact, zq)
            moments = partial(_exact_tail_moments, tail.exact, -var, loc, scale, wts)
        else:
            # cold: the one-day components' standardised quantiles on average, at the horizon's
            # predictive sd (Newton then takes a few steps)
            q0 = center + vol * (zq @ self._weights if warm is None else warm)
            var, es, se, _ = tail.var_es_paths(alpha, loc, scale, q0, wts, rtol=_PATH_RTOL)
            moments = partial(tail.tail_moments, -var, loc, scale, wts)
        for a in (var, es, se, vol):
            a.setflags(write=False)
        found = RiskForecast(
            self._symbols,
            level,
            var,
            es,
            vol,
            loc,
            scale,
            None,
            side=side,
            horizon=horizon,
            es_se=se,
            n_paths=self.horizon_paths,
            _tail_moments=moments,
        )
        with self._lock:
            if self._version == version:  # still the current state
                self._paths[(horizon, side)] = paths
                if method == "fast":
                    self._warm_keyed[(alpha, side, horizon)] = (-var - center) / vol
                found = self._horizon_cache.setdefault(key, found)
        return found

    def _path_components(
        self, sigma2: np.ndarray, z: np.ndarray, strata: np.ndarray, horizon: int, side: Side
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Location, scale and importance weight (P, N, S) of the components of the side's loss
        variable (``r`` for a long, ``-r`` for a short: the mixture is solved in its lower tail)
        given each path's first ``h - 1`` days, from the variances ``sigma2`` (N, S)."""
        p = self._p
        sig2 = np.repeat(sigma2[None], self._n_rep, axis=0)
        total = np.zeros_like(sig2)
        eps = np.empty_like(sig2)
        for t in range(horizon - 1):
            np.sqrt(sig2, out=eps)
            eps *= z[t]
            total += eps
            coef = np.where(eps < 0.0, self._alpha_gamma, p["alpha"])
            eps *= eps
            eps *= coef
            sig2 *= p["beta"]
            sig2 += eps
            sig2 += p["omega"]
            np.maximum(sig2, self._s2_lo, out=sig2)  # the state bounds
            np.minimum(sig2, self._s2_hi, out=sig2)
        total += horizon * p["mu"]  # h days of drift: the h - 1 simulated and the last one
        if side == "short":
            np.negative(total, out=total)
        np.sqrt(sig2, out=sig2)
        wts = self._path_weights.get((horizon, side))
        if wts is None:  # static (the strata only); a race computes it twice, identically
            log_w = _IS_LOG_RATIO[strata[: horizon - 1]].sum(axis=0)
            wts = np.exp(log_w - log_w.max(axis=(0, 2), keepdims=True))
            wts /= wts.mean(axis=(0, 2), keepdims=True)  # self-normalised: mean 1 per symbol
            wts.setflags(write=False)
            self._path_weights[(horizon, side)] = wts
        for a in (total, sig2):
            a.setflags(write=False)
        return total, sig2, wts

    def _innovations_for(self, n_days: int, side: Side) -> tuple[np.ndarray, np.ndarray]:
        """Standardised skew-t innovations (days, P, N, S) for the side's paths, at least
        ``n_days`` days, and the importance stratum of each (see ``_IS_EDGES``): common random
        numbers, one stream per (symbol, day, side) seeded by a hash of the symbol's name and
        parameters (so a symbol's numbers do not depend on the other symbols or on the order in
        which horizons were asked for). Built under their own lock (not the state's: an update
        is not held up, ~1 s for 500 symbols x 1,000 paths x 4 days)."""
        z, strata = self._innovations[side]
        if z.shape[0] >= n_days:
            return z, strata
        with self._innovations_lock:
            return self._grow_innovations(n_days, side)

    def _grow_innovations(self, n_days: int, side: Side) -> tuple[np.ndarray, np.ndarray]:
        z, strata = self._innovations[side]
        have = z.shape[0]
        if have >= n_days:
            return z, strata
        n_rep, (n, s) = self._n_rep, self._sigma2.shape
        inn = self._inn
        keys = [
            _path_seed(sym, {k: v[i] for k, v in self._p.items()})
            for i, sym in enumerate(self._symbols)
        ]
        side_key = 0 if side == "long" else 1
        new_z = np.empty((n_days - have, n_rep, n, s))
        new_k = np.empty((n_days - have, n_rep, n, s), dtype=np.uint8)
        for t in range(have, n_days):
            for i in range(n):
                gen = np.random.default_rng(
                    np.random.SeedSequence(keys[i], spawn_key=(t, side_key))
                )
                k = gen.choice(len(_IS_ALLOC), size=(n_rep, s), p=_IS_ALLOC)
                # within the stratum, loss tail first; never exactly 0 or 1 (infinite z)
                u = _IS_EDGES[k] + (gen.random((n_rep, s)) + 2.0**-54) * _IS_PROB[k]
                row = SkewT(inn.nu[i], inn.lam[i], inn.a[i], inn.b[i], inn.k[i], inn.log_c[i])
                new_z[t - have, :, i, :] = row.ppf(u if side == "long" else 1.0 - u)
                new_k[t - have, :, i, :] = k
        found = (np.concatenate([z, new_z]), np.concatenate([strata, new_k]))
        self._innovations[side] = found
        return found

    def horizon_variance_per_draw(self, horizon: int) -> np.ndarray:
        """Variance of the ``horizon``-day sum of log returns given each draw, shape (N, S)
        (exact): given a draw the daily shocks are uncorrelated, and ``E[sigma2_{t+1}] = omega
        + (alpha + gamma kappa + beta) E[sigma2_t]`` with ``kappa = E[z^2 1{z < 0}]``.

        Examples
        --------
        From the long-run variance the expected variance stays there, so five days carry five
        times one day's (up to the tail table's snapping of kappa):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> (model.horizon_variance_per_draw(5) / model.sigma2()).round(3).tolist()
        [[5.0, 5.0, 5.0]]
        """
        horizon = check_horizon(horizon)
        return self._variance_per_draw(self.sigma2(), horizon)

    def _variance_per_draw(self, sigma2: np.ndarray, horizon: int) -> np.ndarray:
        if self._kappa is None:  # a race computes it twice, identically
            self._kappa = self._inn.partial_moment2(np.zeros(self._inn.nu.shape))
        p = self._p
        pers = p["alpha"] + p["gamma"] * self._kappa + p["beta"]
        m = sigma2
        total = m.copy()
        for _ in range(horizon - 1):
            m = p["omega"] + pers * m
            total += m
        return total

    def _horizon_volatility(self, sigma2: np.ndarray, horizon: int) -> np.ndarray:
        """Predictive sd of the h-day sum of log returns (exact: the draws' variances and the
        spread of their means, ``h^2 Var(mu)``)."""
        total = self._variance_per_draw(sigma2, horizon)
        return np.sqrt(total @ self._weights + horizon * horizon * self._mu_var)

    # ------------------------------------------------------------------ hot path
    def position_risk(
        self,
        symbol: str,
        *,
        level: float = 0.975,
        side: Side = "long",
        horizon: int = 1,
    ) -> tuple[float, float]:
        """``(VaR, ES)`` of a position in ``symbol`` as positive loss fractions of its notional
        (simple-return units: :attr:`RiskForecast.var_simple` and
        :attr:`RiskForecast.es_simple` of ``risk(level, side=side, horizon=horizon)``).

        Cached until the next :meth:`update`: the first call per (level, side, horizon) after an
        update solves every symbol at once (one :meth:`risk` call), later calls are a dictionary
        lookup (measured ~0.2 us). Bad input (unknown symbol, side not "long"/"short", horizon
        not an int in 1..MAX_HORIZON, bool refused, level outside [1e-10, 1)) raises naming the
        value and changes nothing.

        Examples
        --------
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(  # three posterior draws of one symbol (usually a few hundred)
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> var, es = model.position_risk("SPY")  # 97.5%, long, one day
        >>> print(f"VaR {var:.2%}, ES {es:.2%}")
        VaR 1.35%, ES 1.85%
        >>> var, es = model.position_risk("SPY", level=0.99, side="short")
        >>> print(f"VaR {var:.2%}, ES {es:.2%}")
        VaR 1.62%, ES 2.07%
        >>> var, es = model.position_risk("SPY", horizon=5)  # held five days
        >>> print(f"VaR {var:.2%}, ES {es:.2%}")
        VaR 2.88%, ES 4.02%
        """
        if type(horizon) is int:  # 1.0 and True hash like 1: they take the checks below
            try:
                found = self._position_cache.get((symbol, level, side, horizon))
            except TypeError:  # unhashable: refused below
                found = None
            if found is not None:
                return found
        return self._position_risk(symbol, level, side, horizon)

    def position_risk_arrays(
        self, level: float, side: Side = "long", horizon: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(VaR, ES)`` of :meth:`position_risk` for every symbol (in :attr:`symbols`' order), as
        read-only arrays: for a caller sizing many positions at once, and what
        :meth:`position_risk` answers from. One :meth:`risk` call per (level, side, horizon)
        and state, cached until the next :meth:`update`: within one state the answers do not
        depend on the order of the calls (a :meth:`risk` call moves its Newton warm start),
        so a batch of decisions sees the numbers one decision at a time would. Arguments
        checked as :meth:`position_risk` checks them.

        Examples
        --------
        Loss fractions of the notional, one per symbol (97.5%, long, one day):

        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> var, es = model.position_risk_arrays(0.975)
        >>> var.round(4).tolist(), es.round(4).tolist(), var.flags.writeable
        ([0.0135], [0.0185], False)
        """
        if type(horizon) is int:
            try:
                found = self._position_arrays.get((level, side, horizon))
            except TypeError:  # unhashable: refused below
                found = None
            if found is not None:
                return found
        level = check_level(level, "level")
        side = _check_side(side)
        horizon = check_horizon(horizon)
        with self._lock:
            found = self._position_arrays.get((level, side, horizon))
            version = self._version
        if found is not None:
            return found
        f = self.risk(level, side=side, horizon=horizon)
        var, es = np.array(f.var_simple, dtype=float), np.array(f.es_simple, dtype=float)
        var.setflags(write=False)
        es.setflags(write=False)
        with self._lock:
            if self._version == version:  # no update since: the answers are current
                var, es = self._position_arrays.setdefault((level, side, horizon), (var, es))
        return var, es

    def _position_risk(
        self, symbol: object, level: object, side: object, horizon: object
    ) -> tuple[float, float]:
        check_name(symbol, "symbol")
        if symbol not in self._pos:
            raise ValueError(f"unknown symbol {symbol!r:.80}; not in this model")
        level = check_level(level, "level")
        side = _check_side(side)
        horizon = check_horizon(horizon)
        version = self._version
        var_a, es_a = self.position_risk_arrays(level, side, horizon)
        var, es = var_a.tolist(), es_a.tolist()
        answers = {
            (s, level, side, horizon): (v, e)
            for s, v, e in zip(self._symbols, var, es, strict=True)
        }
        with self._lock:
            if self._version == version:  # no update since: the answers are current
                self._position_cache.update(answers)
        return answers[(symbol, level, side, horizon)]

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """The model's state as a JSON-ready dict (schema ``SNAPSHOT_SCHEMA``): draws,
        variances, last residuals and Newton warm starts; :meth:`from_snapshot` rebuilds it.

        Examples
        --------
        >>> import json
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> snap = model.snapshot()
        >>> snap["schema"], snap["symbols"], json.loads(json.dumps(snap)) == snap  # plain JSON
        ('bayes_mem.return_model/1', ['SPY'], True)
        """
        with self._lock:
            return {
                "schema": SNAPSHOT_SCHEMA,
                "symbols": list(self._symbols),
                "draws": {k: self._p[k].tolist() for k in PARAMS},
                "sigma2": self._sigma2.tolist(),
                "last_z": self._last_z.tolist(),
                "last_return": [None if np.isnan(x) else x for x in self._last_r.tolist()],
                "prev_sigma2": self._prev_sigma2.tolist(),
                # Newton warm starts: part of the state so that a restored model answers the
                # same to the last digit (answers agree to ~2e-5 whatever the start)
                "horizon_paths": self.horizon_paths,
                "warm_start": {repr(a): c.tolist() for a, c in sorted(self._warm.items())},
                # the same for the short side and horizons > 1: [alpha, side, horizon, starts]
                "warm_start_keyed": [
                    [a, side, h, c.tolist()] for (a, side, h), c in sorted(self._warm_keyed.items())
                ],
            }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> ReturnModel:
        """Rebuild a model from :meth:`snapshot` output. Malformed data raises ValueError or
        TypeError naming the field: a missing field, text or booleans where numbers belong
        (``"0.1"`` is not read as 0.1), a number beyond the float range, a wrong shape, draws
        that break the model's constraints (:class:`GarchDraws`: persistence ``alpha + kappa
        gamma + beta < 1`` ...), a last return beyond :data:`MAX_LOG_RETURN`.

        Examples
        --------
        >>> import json
        >>> from bayes_mem.live import GarchDraws
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04], gamma=[0.12, 0.10],
        ...     beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[-0.1, -0.05],
        ... )
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> model.update({"SPY": -0.03}, kind="log")
        >>> restored = ReturnModel.from_snapshot(json.loads(json.dumps(model.snapshot())))
        >>> restored.position_risk("SPY") == model.position_risk("SPY")
        True
        """
        check_schema(data, SNAPSHOT_SCHEMA, show_found=False)
        try:
            return cls._from_snapshot(data)
        except KeyError as exc:
            raise ValueError(f"malformed return-model snapshot: missing {exc}") from None

    @classmethod
    def _from_snapshot(cls, data: Mapping[str, Any]) -> ReturnModel:
        symbols = data["symbols"]
        if not isinstance(symbols, list) or not symbols:
            raise TypeError(f"snapshot symbols must be a non-empty list of names, got "
                            f"{type(symbols).__name__} {symbols!r:.80}")  # fmt: skip
        n = len(symbols)
        doc = data["draws"]
        if not isinstance(doc, Mapping):
            raise TypeError(f"snapshot draws must be a mapping, got {type(doc).__name__}")
        arrays = {k: _snapshot_array(doc[k], f"draws.{k}", n) for k in PARAMS}
        shape = arrays["mu"].shape
        for k, v in arrays.items():
            if v.shape != shape:
                raise ValueError(f"snapshot draws.{k} has shape {v.shape}, draws.mu {shape}")
        sigma2 = _snapshot_array(data["sigma2"], "sigma2", n, shape)
        draws = {}
        for i, s in enumerate(symbols):
            check_name(s, "snapshot symbol")
            try:
                draws[s] = GarchDraws(**{k: arrays[k][i] for k in PARAMS})
            except ValueError as exc:
                raise ValueError(f"snapshot draws of {s!r}: {exc}") from None
        if len(draws) != n:
            raise ValueError(f"snapshot symbols repeat a name: {symbols!r:.200}")
        paths = data.get("horizon_paths", HORIZON_PATHS)  # absent before horizons
        if isinstance(paths, bool) or not isinstance(paths, int) or not 1 <= paths <= 10**6:
            raise ValueError(f"snapshot horizon_paths must be an int in [1, 1e6]: {paths!r:.40}")
        model = cls(draws, {s: sigma2[i] for i, s in enumerate(symbols)}, horizon_paths=paths)
        last_z = _snapshot_array(data["last_z"], "last_z", n, (n,))
        model._last_z = last_z
        if "last_return" in data:  # absent in snapshots written before normal scores
            raw = data["last_return"]
            if not isinstance(raw, list) or len(raw) != n:
                raise ValueError(f"snapshot last_return must be a list of {n}, got {raw!r:.80}")
            last_r = np.full(n, np.nan)
            for i, x in enumerate(raw):
                if x is not None:  # None: no return yet
                    r = check_real(x, f"snapshot last_return[{i}]")
                    if abs(r) > MAX_LOG_RETURN:
                        raise ValueError(f"snapshot last_return[{i}] = {x!r} is beyond "
                                         f"+-{MAX_LOG_RETURN}")  # fmt: skip
                    last_r[i] = r
            prev = _snapshot_array(data["prev_sigma2"], "prev_sigma2", n, shape)
            if np.any(prev <= 0):
                raise ValueError("snapshot prev_sigma2 must be positive")
            model._last_r, model._prev_sigma2 = last_r, prev
        warm = data.get("warm_start", {})
        if not isinstance(warm, Mapping):
            raise TypeError(f"snapshot warm_start must be a mapping, got {type(warm).__name__}")
        for key, values in warm.items():
            try:
                alpha = float(key)
            except (TypeError, ValueError):
                raise ValueError(f"snapshot warm_start key {key!r:.40} is not a level") from None
            if not 0 < alpha < 1:
                raise ValueError(f"snapshot warm_start key {key!r:.40} is not in (0, 1)")
            model._warm[alpha] = _snapshot_array(values, f"warm_start[{key!r:.40}]", n, (n,))
        keyed = data.get("warm_start_keyed", [])  # absent in snapshots before sides/horizons
        if not isinstance(keyed, list):
            raise ValueError("malformed return-model snapshot: warm_start_keyed")
        for entry in keyed:
            try:
                a, side, h, values = entry
                alpha = check_probability_open(a, "alpha")
                key = (alpha, _check_side(side), check_horizon(h))
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"malformed return-model snapshot: warm_start_keyed {entry!r:.80}"
                ) from exc
            model._warm_keyed[key] = _snapshot_array(values, "warm_start_keyed values", n, (n,))
        return model


def _snapshot_array(
    value: object, what: str, n: int, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """A finite float array of a snapshot: numbers only (text and booleans refused), ``n`` rows
    (or exactly ``shape``)."""
    out = as_float_array(value, f"snapshot {what}")
    want = shape if shape is not None else (n, out.shape[1] if out.ndim == 2 else -1)
    if out.shape != want or out.size == 0:
        raise ValueError(f"snapshot {what} has shape {out.shape}, expected {want}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"snapshot {what} holds a value that is not finite")
    return out


_QUANTILE_PLAN: dict[tuple[int, tuple[float, ...]], tuple[np.ndarray, ...]] = {}


def _row_quantiles(x: np.ndarray, probs: tuple[float, float]) -> np.ndarray:
    """Linear-interpolation quantiles along rows (numpy's default method), via one partition."""
    n = x.shape[1]
    plan = _QUANTILE_PLAN.get((n, probs))
    if plan is None:
        pos = np.asarray(probs) * (n - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        plan = (lo, hi, pos - lo, np.unique(np.concatenate([lo, hi])))
        _QUANTILE_PLAN[(n, probs)] = plan
    lo, hi, frac, kth = plan
    part = np.partition(x, kth, axis=1)
    return part[:, lo] * (1 - frac) + part[:, hi] * frac


def _state_bounds(
    symbols: tuple[str, ...], p: Mapping[str, np.ndarray], sigma2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per (symbol, draw), the variance bounds ``STATE_RANGE`` times the draw's long-run variance;
    refuses draws whose long-run volatility is outside ``LONG_RUN_VOL_RANGE`` and states outside
    the bounds, naming the symbol, the draw and the value."""
    kappa = asymmetry_weight(p["nu"], p["lam"])
    long_run = p["omega"] / (1.0 - (p["alpha"] + kappa * p["gamma"] + p["beta"]))
    vol = np.sqrt(long_run)
    bad = ~((vol >= LONG_RUN_VOL_RANGE[0]) & (vol <= LONG_RUN_VOL_RANGE[1]))
    if bad.any():
        i, s = np.argwhere(bad)[0]
        raise ValueError(
            f"draw {s} of {symbols[i]!r:.80} has a long-run daily volatility of {vol[i, s]:.3g}, "
            f"outside {LONG_RUN_VOL_RANGE} (a degenerate fit, or not fractions)"
        )
    ratio = sigma2 / long_run
    lo, hi = STATE_RANGE
    slack = 1.0 + 1e-9  # a state clipped at a bound, written and read back
    bad = ~((ratio * slack >= lo) & (ratio <= hi * slack))
    if bad.any():
        i, s = np.argwhere(bad)[0]
        raise ValueError(
            f"sigma2 of draw {s} of {symbols[i]!r:.80} is {ratio[i, s]:.3g} times the draw's "
            f"long-run variance {long_run[i, s]:.3g}, outside {STATE_RANGE} (a degenerate fit?)"
        )
    return lo * long_run, hi * long_run


def _check_side(value: object) -> Side:
    if isinstance(value, str) and value in ("long", "short"):
        return "long" if value == "long" else "short"
    raise ValueError(f"side must be 'long' or 'short', got {value!r:.80}")


def check_horizon(value: object) -> int:
    """A number of days in 1..MAX_HORIZON (an int; bool refused).

    Examples
    --------
    >>> check_horizon(5)
    5
    >>> check_horizon(64)
    Traceback (most recent call last):
        ...
    ValueError: horizon must be at most 63 days, got 64
    """
    out = check_int(value, "horizon (days)", minimum=1)
    if out > MAX_HORIZON:
        raise ValueError(f"horizon must be at most {MAX_HORIZON} days, got {value!r}")
    return out


def _path_seed(symbol: str, params: Mapping[str, np.ndarray]) -> int:
    """Entropy of a symbol's common random numbers: a hash of its name and parameter draws
    (stable across processes and platforms, unlike ``hash``)."""
    h = hashlib.blake2b(b"bayes_mem.return_model.paths/1", digest_size=16)
    h.update(symbol.encode("utf-8", "surrogatepass") + b"\x00")
    for k in PARAMS:
        h.update(np.ascontiguousarray(params[k], dtype="<f8").tobytes())
    return int.from_bytes(h.digest(), "little")


def _exact_tail_moments(
    inn: SkewT,
    q: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``F(q)``, ``E[X 1{X <= q}]`` and ``E[X^2 1{X <= q}]`` per row of a mixture of
    components ``mu + sd Z`` ((n, S), or (P, n, S) with optional importance weights of mean 1
    per row; ``inn`` (n, S)), through scipy."""
    z = (q[:, None] - mu) / sd
    f, pm, pm2 = inn.cdf(z), inn.partial_mean(z), inn.partial_moment2(z)
    axes = (1,) if mu.ndim == 2 else (0, 2)
    x1 = mu * f + sd * pm
    x2 = mu * mu * f + 2.0 * mu * sd * pm + sd * sd * pm2
    if weights is not None:
        f, x1, x2 = f * weights, x1 * weights, x2 * weights
    return f.mean(axis=axes), x1.mean(axis=axes), x2.mean(axis=axes)


def _exact_path_var_es(
    alpha: float,
    loc: np.ndarray,
    scale: np.ndarray,
    weights: np.ndarray,
    inn: SkewT,
    zq: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VaR, ES and the ES's Monte Carlo standard error of the (P, n, S) weighted path mixture
    through scipy (see :meth:`~bayes_mem.live.mixture_tail.MixtureTail.var_es_paths`)."""
    n_rep, n, s = loc.shape

    def flat(x: np.ndarray) -> np.ndarray:
        return x.transpose(1, 0, 2).reshape(n, n_rep * s)

    flat_loc, flat_sd, flat_w = flat(loc), flat(scale), flat(weights)
    tiled = SkewT.from_params(np.tile(inn.nu, (1, n_rep)), np.tile(inn.lam, (1, n_rep)))
    comp_q = flat_loc + flat_sd * np.tile(zq, (1, n_rep))
    q = mixture_quantile(
        alpha, flat_loc, flat_sd, tiled, comp_q.min(axis=1), comp_q.max(axis=1), 1e-10, flat_w
    )
    z = (q[:, None] - flat_loc) / flat_sd
    cdf = tiled.cdf(z)
    lower = (flat_loc * cdf + flat_sd * tiled.partial_mean(z)) * flat_w
    wg = q[:, None] * cdf * flat_w - lower  # W E[(q - X)^+] per component
    d = (wg - wg.mean(axis=1, keepdims=True) * flat_w).reshape(n, n_rep, s)
    if n_rep > 1:
        g_var = d.var(axis=1, ddof=1).mean(axis=1) / (n_rep * s)
    else:
        g_var = d[:, 0].var(axis=1) / s
    return -q, -lower.mean(axis=1) / alpha, np.sqrt(g_var) / alpha


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )
