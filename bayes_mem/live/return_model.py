"""Posterior-predictive one-day risk per symbol from GJR-GARCH-skew-t parameter draws.

Each symbol carries S parameter draws and, per draw, its conditional variance for the next day.
:meth:`ReturnModel.update` rolls every draw forward with the day's return (O(S) per symbol,
vectorised across symbols). :meth:`ReturnModel.risk` gives the posterior-predictive VaR and
expected shortfall: the predictive is the equal-weight mixture of the S skew-t components
``mu_s + sigma_s z``; its quantile is found by safeguarded Newton iterations (vectorised across
symbols, bracketed by the component quantiles) and its ES is the mixture of each component's
closed-form lower partial mean at that quantile. The spread of the components' own ES values is the
credible band of the CVaR across draws.

Units: the model is on daily log returns as fractions (0.01 = 1%). Inputs say whether they are
``"log"`` or ``"simple"`` returns; outputs give both. A loss is a positive number.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bayes_mem.live._validate import (
    MIN_LEVEL,
    as_float_array,
    check_level,
    check_name,
    check_probability_open,
    check_real,
)
from bayes_mem.live.gjr_garch import PARAMS, GarchDraws, fit_laplace, variance_path
from bayes_mem.live.mixture_tail import MixtureTail, RowTail
from bayes_mem.live.pit import to_normal
from bayes_mem.live.skewt import SkewT

ReturnKind = Literal["log", "simple"]
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


def to_log_returns(values: np.ndarray, kind: str) -> np.ndarray:
    """Validate returns and convert them to log returns (each within +-:data:`MAX_LOG_RETURN`)."""
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
    """One-day-ahead posterior-predictive risk per symbol, losses as positive fractions."""

    symbols: tuple[str, ...]
    level: float  # confidence level, e.g. 0.975: the tail has probability 1 - level
    var_log: np.ndarray  # VaR of the log return
    es_log: np.ndarray  # expected shortfall (CVaR) of the log return
    volatility: np.ndarray  # predictive sd of the log return
    _mu: np.ndarray = field(repr=False)  # per draw, for the ES band (computed on demand)
    _sd: np.ndarray = field(repr=False)
    _zes: np.ndarray = field(repr=False)

    def component_es(self) -> np.ndarray:
        """Each posterior draw's own one-day ES of the log return, shape (N, S)."""
        return self._sd * self._zes - self._mu

    def es_band(self, prob: float = 0.9) -> np.ndarray:
        """(N, 2) equal-tailed ``prob`` credible interval of the ES across parameter draws."""
        prob = check_probability_open(prob, "prob")
        return _row_quantiles(self.component_es(), ((1 - prob) / 2, (1 + prob) / 2))

    @property
    def es_band_log(self) -> np.ndarray:
        """The 90% credible band of ES across draws."""
        return self.es_band(0.9)

    @property
    def var_simple(self) -> np.ndarray:
        """VaR as a loss fraction of position value (exact: the map is monotone)."""
        return -np.expm1(-self.var_log)

    @property
    def es_simple(self) -> np.ndarray:
        """ES as a loss fraction of position value: ``1 - exp(-ES_log)``. By Jensen's inequality
        this is an upper bound of the exact simple-return ES (conservative); the gap is about
        half the tail variance of the log return, ~1e-4 at daily horizons."""
        return -np.expm1(-self.es_log)

    def as_dict(self, symbol: str) -> dict[str, float]:
        i = self.symbols.index(symbol)
        band = self.es_band(0.9)
        return {
            "level": self.level,
            "var_log": float(self.var_log[i]),
            "es_log": float(self.es_log[i]),
            "var_simple": float(self.var_simple[i]),
            "es_simple": float(self.es_simple[i]),
            "es_band_low": float(band[i, 0]),
            "es_band_high": float(band[i, 1]),
            "volatility": float(self.volatility[i]),
        }


class ReturnModel:
    """Live conditional-volatility state for N symbols x S parameter draws. Thread-safe."""

    def __init__(
        self,
        draws: Mapping[str, GarchDraws],
        sigma2: Mapping[str, np.ndarray],
    ) -> None:
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
        self._sigma2 = s2
        self._tail = MixtureTail(p["nu"], p["lam"])  # tail weights snapped to the table grid
        self._inn = self._tail.exact
        self._weights = np.full(s2.shape[1], 1.0 / s2.shape[1])
        self._mu_bar = p["mu"] @ self._weights
        self._mu_var = np.var(p["mu"], axis=1)
        self._alpha_gamma = p["alpha"] + p["gamma"]  # the news impact of a negative shock
        self._z_cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._warm: dict[float, np.ndarray] = {}  # last standardised quantile per tail level
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
        approximation; each draw's variance is run through the history to today."""
        rng = np.random.default_rng(rng)
        draws, sigma2 = {}, {}
        for symbol, values in returns.items():
            check_name(symbol, "symbol")
            r = to_log_returns(values, kind)
            fit = fit_laplace(r, n_draws, rng)
            draws[symbol] = fit.draws
            sigma2[symbol] = variance_path(r, fit.draws, float(np.var(r)))[:, -1]
        return cls(draws, sigma2)

    # ------------------------------------------------------------------ state
    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def n_draws(self) -> int:
        return self._p["mu"].shape[1]

    def sigma2(self) -> np.ndarray:
        """Per-draw conditional variance for the next day, shape (N, S) (a copy)."""
        with self._lock:
            return self._sigma2.copy()

    def volatility(self) -> np.ndarray:
        """Predictive standard deviation of the next day's log return per symbol."""
        with self._lock:
            return self._volatility()

    def _volatility(self) -> np.ndarray:
        return np.sqrt(self._sigma2 @ self._weights + self._mu_var)

    def last_standardized_residual(self) -> np.ndarray:
        """The latest return of each symbol standardised by its predictive mean and sd, i.e. what
        the correlation estimate should see (volatility removed)."""
        with self._lock:
            return self._last_z.copy()

    def last_normal_score(self) -> np.ndarray:
        """``Phi^-1(F(r))`` of each symbol's latest log return under the predictive it was
        forecast with (the mixture over draws): i.i.d. N(0, 1) while the model holds, fat tails
        and volatility clustering included, so it is what the regime detector should see
        (:class:`~bayes_mem.live.changepoint.NormalGammaBOCPD`). 0 for a symbol without a return
        yet. Tail weights are the table's snapped ones (see :mod:`bayes_mem.live.pit` for the
        offline version)."""
        with self._lock:
            seen = np.isfinite(self._last_r)
            out = np.zeros(len(self._symbols))
            if seen.any():
                z = (self._last_r[seen, None] - self._p["mu"][seen]) / np.sqrt(
                    self._prev_sigma2[seen]
                )
                inn = SkewT.from_params(self._inn.nu[seen], self._inn.lam[seen])
                out[seen] = to_normal(inn.cdf(z) @ self._weights)
            return out

    def update(
        self, returns: Mapping[str, float] | Sequence[float] | np.ndarray, *, kind: ReturnKind
    ) -> None:
        """Roll every draw's variance forward with one day's returns.

        ``returns`` is a mapping symbol -> return (a subset: symbols without a return that day are
        left as they are) or a sequence in :attr:`symbols` order."""
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
            self._sigma2[rows] = p["omega"][rows] + shock + p["beta"][rows] * sig2
            self._last_z[rows] = (r - self._mu_bar[rows]) / sd_bar
            if self._row is not None:
                self._row_vol = None

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
        self._last_z[0] = (r - float(self._mu_bar[0])) / sd_bar
        self._row_vol = None

    def _align(self, returns: Any, kind: str) -> tuple[np.ndarray | None, np.ndarray]:
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
    def risk(self, level: float = 0.975, *, method: str = "fast") -> RiskForecast:
        """Posterior-predictive one-day VaR and ES at confidence ``level`` for every symbol (the
        ES credible band across draws is computed on demand: :meth:`RiskForecast.es_band`).

        ``method="fast"`` (default) uses the tabulated tail and a warm-started Newton solve:
        relative error below ~2e-5 in either tail (levels >= 0.9, or <= 0.1: the upper tail, for
        short positions), absolute error below 1e-4 of the predictive volatility in between
        (1e-6 in return units at a 1% volatility).
        ``method="exact"`` solves with scipy to a relative 1e-10 of the smaller tail probability
        (slow; for checks). Levels must be in [1e-10, 1) (see
        :func:`~bayes_mem.live._validate.check_level`). Both use the tail weights snapped to the
        table grid. A one-symbol model solves
        on a dedicated single-row path (:class:`~bayes_mem.live.mixture_tail.RowTail`: the same
        method, answers equal to rounding)."""
        if type(level) is not float or not MIN_LEVEL <= level < 1.0:
            level = check_level(level, "level")
        if method != "fast" and method != "exact":
            raise ValueError(f"method must be 'fast' or 'exact', got {method!r}")
        alpha = 1.0 - level
        zq, zes = self._component_tail(alpha)
        mu = self._p["mu"]
        if self._row is not None and method == "fast":
            return self._risk_row(level, alpha, zq, zes)
        with self._lock:
            sd = np.sqrt(self._sigma2)
            vol = self._volatility()
            if method == "exact":
                comp_q = mu + sd * zq
                q = _mixture_quantile(
                    alpha, mu, sd, self._inn, comp_q.min(axis=1), comp_q.max(axis=1), 1e-10
                )
                z = (q[:, None] - mu) / sd
                tail = mu * self._inn.cdf(z) + sd * self._inn.partial_mean(z)
                var, es = -q, -(tail @ self._weights) / alpha
            else:
                warm = self._warm.get(alpha)
                q0 = (mu + sd * zq) @ self._weights if warm is None else self._mu_bar + vol * warm
                var, es, _ = self._tail.var_es(alpha, mu, sd, q0)
                self._warm[alpha] = (-var - self._mu_bar) / vol
        return RiskForecast(self._symbols, level, var, es, vol, mu, sd, zes)

    def _risk_row(
        self, level: float, alpha: float, zq: np.ndarray, zes: np.ndarray
    ) -> RiskForecast:
        """:meth:`risk` ``method="fast"`` of a one-symbol model."""
        mu = self._p["mu"]
        mu_bar = float(self._mu_bar[0])
        with self._lock:
            sd = np.sqrt(self._row_sigma2)
            vol = self._row_volatility()
            warm = self._warm.get(alpha)
            if warm is None:
                q0 = float(np.dot(self._row.mu + sd * zq[0], self._weights))
            else:
                q0 = mu_bar + vol * float(warm[0])
            found = self._row.var_es(alpha, sd, q0)
            if found is None:  # an iterate outside the fast region: the general solver
                v, e, _ = self._tail.var_es(alpha, mu, sd[None, :], np.array([q0]))
                var, es = float(v[0]), float(e[0])
            else:
                var, es, _ = found
            self._warm[alpha] = np.array([(-var - mu_bar) / vol])
        out = np.array([var, es, vol])
        return RiskForecast(self._symbols, level, out[:1], out[1:2], out[2:], mu, sd[None, :], zes)

    def _component_tail(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """Per draw: the standardised alpha-quantile and E[-Z | Z <= quantile] (static per
        level, so cached)."""
        cached = self._z_cache.get(alpha)
        if cached is None:
            zq = self._inn.ppf(np.full(self._inn.nu.shape, alpha))
            zes = -self._inn.partial_mean(zq) / alpha
            cached = (zq, zes)
            self._z_cache[alpha] = cached
        return cached

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
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
                "warm_start": {repr(a): c.tolist() for a, c in sorted(self._warm.items())},
            }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> ReturnModel:
        """Rebuild a model from :meth:`snapshot` output. Malformed data raises ValueError or
        TypeError naming the field: a missing field, text or booleans where numbers belong
        (``"0.1"`` is not read as 0.1), a number beyond the float range, a wrong shape, draws
        that break the model's constraints (:class:`GarchDraws`: persistence ``alpha + gamma / 2
        + beta < 1`` ...), a last return beyond :data:`MAX_LOG_RETURN`."""
        if not isinstance(data, Mapping) or data.get("schema") != SNAPSHOT_SCHEMA:
            raise ValueError(f"not a {SNAPSHOT_SCHEMA} snapshot")
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
        model = cls(draws, {s: sigma2[i] for i, s in enumerate(symbols)})
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


def _is_number(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_
    )


def _mixture_quantile(
    alpha: float,
    mu: np.ndarray,
    sd: np.ndarray,
    inn: SkewT,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float,
    max_iter: int = 60,
) -> np.ndarray:
    """Solve mean_s F_s((q - mu_s) / sd_s) = alpha per row: Newton steps kept inside a bracket
    that shrinks every iteration (bisection when Newton leaves it). ``tol`` is relative to the
    smaller tail probability (floored at a few ulps of ``alpha``, F's resolution)."""
    lo, hi = lo.copy(), hi.copy()
    q = 0.5 * (lo + hi)
    tol_abs = max(tol * min(alpha, 1.0 - alpha), 8.0 * np.finfo(float).eps * alpha)
    for _ in range(max_iter):
        z = (q[:, None] - mu) / sd
        g = inn.cdf(z).mean(axis=1) - alpha
        dens = (inn.pdf(z) / sd).mean(axis=1)
        done = np.abs(g) <= tol_abs
        if np.all(done):
            break
        lo = np.where(g < 0, q, lo)
        hi = np.where(g > 0, q, hi)
        step = q - g / np.where(dens > 0, dens, np.inf)
        inside = (step > lo) & (step < hi)
        q = np.where(done, q, np.where(inside, step, 0.5 * (lo + hi)))
    return q
