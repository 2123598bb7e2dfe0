"""The seed plan's risk integration points, kept by name: ``DynamicCVaREngine`` and
``CorrelationRiskAdjuster``, as thin facades over the live risk API.

The meaning is the statistically sound one: the CVaR is the posterior-predictive, conditional
(GJR-GARCH-skew-t) expected shortfall of the next day, not a historical percentile; correlation
is measured on volatility-standardised residuals; breakdown is a permutation test (Jennrich's
statistic and the shift of the average correlation).

Backed by a :class:`~bayes_mem.live.engine.TradingEngine` (``engine=``), both read the engine's
state instead of fitting their own: ``DynamicCVaREngine`` takes a symbol name where the plan passes
a return series and answers from the engine's return model (the nightly posterior draws, rolled
forward to today); ``CorrelationRiskAdjuster`` takes ``returns_df=None`` and answers from the
engine's correlation of normal scores and its latest breakdown test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bayes_mem.live.correlation import (
    concentration,
    correlation_breakdown,
    limit_factors,
    shrunk_correlation,
)
from bayes_mem.live.return_model import ReturnModel, to_log_returns
from bayes_mem.live.sizing import cvar_position_limit, kelly_binary
from bayes_mem.live.validate import (
    as_float_array,
    check_int,
    check_level,
    check_positive,
    check_probability_open,
    check_real,
)

if TYPE_CHECKING:  # pragma: no cover
    from bayes_mem.live.engine import TradingEngine

_TINY, _HUGE = float(np.finfo(float).smallest_subnormal), float(np.finfo(float).max)
RISKMETRICS_LAMBDA = 0.94  # EWMA decay used to standardise raw returns in the facades
BREAKDOWN_WINDOW = 20  # the seed plan's "last 20 days"


class DynamicCVaREngine:
    """CVaR-based dynamic sizing (seed plan names).

    ``calculate_cvar_limit`` fits the conditional return model to the series it is given (the last
    ``time_window`` days at least) and keeps it: when the next call passes the same series
    extended by a few days, the model is rolled forward instead of refitted, and refitted every
    ``refit_every`` days. Returns are ``returns_kind`` ("simple" by default, as in the plan).

    Examples
    --------
    300 days of simple returns (simulated here from a GJR-GARCH model with 0.6% daily
    volatility); size a position on a 1,000,000 portfolio so that its ES is 2% of it:

    >>> import numpy as np
    >>> from bayes_mem.live.gjr_garch import GarchDraws, simulate
    >>> truth = GarchDraws(
    ...     mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86], nu=[6.0], lam=[-0.1]
    ... )
    >>> log_r, _ = simulate(truth, 300, np.random.default_rng(0))
    >>> cvar = DynamicCVaREngine(confidence_level=0.95, n_draws=100, rng=1)
    >>> size, es = cvar.calculate_cvar_limit(np.expm1(log_r[0]), 1_000_000.0)
    >>> print(f"position {round(size, -3):,.0f}, CVaR {es:.2%}")
    position 1,618,000, CVaR -1.24%
    >>> round(cvar.kelly_optimal_position(win_rate=0.55, avg_win=150.0, avg_loss=100.0), 4)
    0.0625
    """

    def __init__(
        self,
        confidence_level: float = 0.95,
        time_window: int = 252,
        *,
        returns_kind: str = "simple",
        n_draws: int = 200,
        refit_every: int = 20,
        rng: int | np.random.Generator | None = None,
        engine: TradingEngine | None = None,
    ) -> None:
        self.engine = engine
        self.alpha = check_level(confidence_level, "confidence_level")
        self.time_window = check_int(time_window, "time_window", minimum=100)
        if returns_kind not in ("log", "simple"):
            raise ValueError(f"returns_kind must be 'log' or 'simple', got {returns_kind!r}")
        self.returns_kind = returns_kind
        self.n_draws = check_int(n_draws, "n_draws", minimum=10)
        self.refit_every = check_int(refit_every, "refit_every", minimum=1)
        self._rng = np.random.default_rng(rng)
        self._fitted: np.ndarray | None = None  # the series the model was last fitted/rolled to
        self._fitted_at = 0
        self._model: ReturnModel | None = None

    def _model_for(self, returns: np.ndarray) -> ReturnModel:
        seen = self._fitted
        if (
            self._model is not None
            and seen is not None
            and returns.size > seen.size
            and returns.size - self._fitted_at < self.refit_every
            and np.array_equal(returns[: seen.size], seen)
        ):
            for r in returns[seen.size :]:
                self._model.update([r], kind="log")
        else:
            self._model = ReturnModel.from_history(
                {"symbol": returns}, kind="log", n_draws=self.n_draws, rng=self._rng
            )
            self._fitted_at = returns.size
        self._fitted = returns.copy()
        return self._model

    def conditional_risk(self, symbol_returns: str | npt.ArrayLike) -> dict[str, float]:
        """VaR/ES of tomorrow's return (loss fractions) with the ES credible band. With an
        engine, ``symbol_returns`` is the symbol's name.

        Examples
        --------
        Engine-backed (no fit): the 95% one-day VaR and ES of SPY from the engine's return
        model, loss fractions of log and simple returns, and the ES band over the posterior draws
        (one draw here, so a band of width 0):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel, TradingEngine
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> engine = TradingEngine(Decider(["momentum"]), model, portfolio_value=1e6)
        >>> risk = DynamicCVaREngine(0.95, engine=engine).conditional_risk("SPY")
        >>> sorted(risk)  # doctest: +NORMALIZE_WHITESPACE
        ['es_band_high', 'es_band_low', 'es_log', 'es_simple', 'level', 'var_log', 'var_simple',
        'volatility']
        >>> 0.0 < risk["var_simple"] < risk["es_simple"] < risk["es_log"] < 1.0
        True
        >>> round(risk["es_band_high"] - risk["es_band_low"], 12)
        0.0
        """
        if self.engine is not None:
            return self._engine_risk(symbol_returns)
        r = as_float_array(symbol_returns, "symbol_returns")
        if sum(d > 1 for d in r.shape) > 1:  # (T,), (T, 1) or (1, T): one series
            raise ValueError(f"symbol_returns must be one series, got shape {r.shape}")
        r = r.ravel()
        if r.size < self.time_window:
            raise ValueError(f"need at least time_window={self.time_window} returns, got {r.size}")
        log_r = to_log_returns(r, self.returns_kind)
        return self._model_for(log_r).risk(self.alpha).as_dict("symbol")

    def _engine_risk(self, symbol: object) -> dict[str, float]:
        from bayes_mem.live.engine import UnknownSymbolError

        if not isinstance(symbol, str):
            raise TypeError(
                "an engine-backed DynamicCVaREngine takes the symbol's name, got "
                f"{type(symbol).__name__}"
            )
        assert self.engine is not None  # conditional_risk calls this with an engine only
        model = self.engine.model
        if model is None or symbol not in model.symbols:
            raise UnknownSymbolError(f"unknown symbol {symbol!r}: not in the engine's return model")
        return model.risk(self.alpha).as_dict(symbol)

    def calculate_cvar_limit(
        self,
        symbol_returns: str | npt.ArrayLike,
        portfolio_value: float,
        max_portfolio_risk: float = 0.02,
    ) -> tuple[float, float]:
        """``(position_size, cvar)``: the position (currency) whose predictive CVaR is
        ``max_portfolio_risk`` x ``portfolio_value``, and the CVaR as a (negative) simple return.

        Examples
        --------
        The size whose ES is 2% of a 1,000,000 portfolio: 20,000 / ES (ES as a simple-return loss):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel, TradingEngine
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> engine = TradingEngine(Decider(["momentum"]), model, portfolio_value=1e6)
        >>> cvar = DynamicCVaREngine(0.95, engine=engine)
        >>> size, es = cvar.calculate_cvar_limit("SPY", 1_000_000.0, max_portfolio_risk=0.02)
        >>> es < 0.0, abs(size - 20_000.0 / -es) < 1e-6
        (True, True)
        """
        check_positive(portfolio_value, "portfolio_value")
        check_probability_open(max_portfolio_risk, "max_portfolio_risk")
        es = self.conditional_risk(symbol_returns)["es_simple"]
        return cvar_position_limit(es, portfolio_value, max_portfolio_risk), -es

    def kelly_optimal_position(self, win_rate: float, avg_win: float, avg_loss: float) -> float:
        """The plan's fractional Kelly: ``(b p - q) / b`` / 4, capped at 25%, never negative.

        Examples
        --------
        Win rate 60% at even odds (b = 1): full Kelly (1 x 0.6 - 0.4) / 1 = 0.2, a quarter of it
        0.05; no edge gives 0:

        >>> cvar = DynamicCVaREngine()
        >>> round(cvar.kelly_optimal_position(0.6, 100.0, 100.0), 4)
        0.05
        >>> cvar.kelly_optimal_position(0.4, 100.0, 100.0)
        0.0
        """
        p = check_real(win_rate, "win_rate")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"win_rate must be in [0, 1], got {win_rate!r}")
        win = check_positive(avg_win, "avg_win")
        loss = abs(check_real(avg_loss, "avg_loss"))  # the plan passes it as an absolute value
        if loss == 0.0:
            raise ValueError("avg_loss must be non-zero")
        # a ratio beyond the float range (avg_win 1e300, avg_loss 1e-300) is clamped into it:
        # Kelly's optimum is continuous there (p - (1 - p) / b -> p, or 0 without an edge)
        ratio = min(max(win / loss, _TINY), _HUGE)
        return kelly_binary(p, ratio)


class CorrelationRiskAdjuster:
    """Correlation-aware limits (seed plan names) on volatility-standardised returns.

    Examples
    --------
    Three symbols, correlation 0.2 for 100 days and then 0.9 for 20:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> def days(n, rho):  # (n, 3) daily returns with volatilities 1%, 2%, 1.5%
    ...     c = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
    ...     return rng.multivariate_normal(np.zeros(3), c, size=n) * [0.01, 0.02, 0.015]
    >>> returns = np.vstack([days(100, 0.2), days(20, 0.9)])
    >>> adj = CorrelationRiskAdjuster(lookback=60)
    >>> risk = adj.calculate_portfolio_correlation_risk(returns)
    >>> breakdown = adj.detect_correlation_breakdown(returns)
    >>> round(risk, 3), breakdown, round(adj.adjust_position_limit(100_000.0, risk, breakdown))
    (0.702, 0.99, 39865)
    """

    def __init__(self, lookback: int = 60, *, engine: TradingEngine | None = None) -> None:
        self.lookback = check_int(lookback, "lookback", minimum=BREAKDOWN_WINDOW + 2)
        self.correlation_matrix: np.ndarray | None = None
        self.engine = engine

    def _engine_correlation(self) -> np.ndarray:
        assert self.engine is not None  # called with an engine only
        corr = self.engine._market.correlation()
        if corr is None:
            raise ValueError("the engine has no correlation yet (it needs 2 symbols and 20 days)")
        self.correlation_matrix = corr
        return corr

    def _standardised(self, returns_df: object) -> np.ndarray:
        x = as_float_array(returns_df, "returns_df")
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError(f"returns_df must be (days, symbols) with >= 2 symbols, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("returns_df has NaN or inf values")
        if x.shape[0] < 3:
            raise ValueError(f"returns_df needs at least 3 days, got {x.shape[0]}")
        return ewma_standardise(x)

    def calculate_portfolio_correlation_risk(self, returns_df: npt.ArrayLike | None) -> float:
        """The plan's concentration score in [0, 1] from the shrunk correlation of the last
        ``lookback`` days of standardised returns (with an engine and ``returns_df=None``: the
        engine's correlation).

        Examples
        --------
        The score is ``(average correlation + 1) / 2``: independent symbols score about 0.5, nearly
        identical ones near 1 (60 days of 3 symbols):

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> common = rng.normal(0.0, 0.01, size=(60, 1))
        >>> independent = rng.normal(0.0, 0.01, size=(60, 3))
        >>> adj = CorrelationRiskAdjuster(lookback=60)
        >>> low = adj.calculate_portfolio_correlation_risk(independent)
        >>> high = adj.calculate_portfolio_correlation_risk(common + 0.001 * independent)
        >>> round(low, 3), high > 0.9, adj.correlation_matrix.shape
        (0.5, True, (3, 3))
        """
        if self.engine is not None and returns_df is None:
            return concentration(self._engine_correlation()).score
        z = self._standardised(returns_df)[-self.lookback :]
        corr, _ = shrunk_correlation(z)
        self.correlation_matrix = corr
        return concentration(corr).score

    def detect_correlation_breakdown(
        self, returns_df: npt.ArrayLike | None, threshold: float = 0.3
    ) -> float:
        """Evidence in [0, 1] (1 - the combined p-value of :func:`correlation_breakdown`: Jennrich's
        test and the average-correlation shift) that the last 20 days' correlation differs from
        the ``lookback`` days before. ``threshold`` is accepted for the plan's
        signature; the score is a calibrated test, not a thresholded shift. With an engine and
        ``returns_df=None``: the engine's latest test (run at each end of day; 0 before any).

        Examples
        --------
        Engine-backed before any end-of-day test: no evidence (0.0):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel, TradingEngine
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> engine = TradingEngine(Decider(["momentum"]), model, portfolio_value=1e6)
        >>> CorrelationRiskAdjuster(engine=engine).detect_correlation_breakdown(None)
        0.0
        """
        check_probability_open(threshold, "threshold")
        if self.engine is not None and returns_df is None:
            score = self.engine._market.breakdown_score
            return 0.0 if score is None else score
        z = self._standardised(returns_df)
        if z.shape[0] < BREAKDOWN_WINDOW + 3:
            raise ValueError(f"need more than {BREAKDOWN_WINDOW + 2} days, got {z.shape[0]}")
        recent = z[-BREAKDOWN_WINDOW:]
        history = z[-BREAKDOWN_WINDOW - self.lookback : -BREAKDOWN_WINDOW]
        return correlation_breakdown(recent, history, rng=0).score

    def adjust_position_limit(
        self, base_limit: float, correlation_risk: float, breakdown_score: float
    ) -> float:
        """``base_limit`` (currency) times the plan's cuts ``1 - 0.3 x correlation_risk`` and ``1 -
        0.5 x breakdown_score`` (:func:`~bayes_mem.live.correlation.limit_factors`).

        Examples
        --------
        100,000 x (1 - 0.3 x 0.5) x (1 - 0.5 x 0.2) = 100,000 x 0.85 x 0.9 = 76,500:

        >>> round(CorrelationRiskAdjuster().adjust_position_limit(100_000.0, 0.5, 0.2), 6)
        76500.0
        """
        corr_factor, breakdown_factor = limit_factors(correlation_risk, breakdown_score)
        base = check_real(base_limit, "base_limit")
        if base < 0:
            raise ValueError(f"base_limit must be >= 0, got {base_limit!r}")
        return base * corr_factor * breakdown_factor


def ewma_standardise(
    returns: np.ndarray, lam: float = RISKMETRICS_LAMBDA, warmup: int = 20
) -> np.ndarray:
    """Divide each return by its EWMA volatility forecast made the day before.

    Examples
    --------
    A 3% day after 1% days (``warmup`` 2): it is 3 forecast sds; the day after, the forecast
    variance has risen to 0.94 x 1 + 0.06 x 9 (in units of the first days' variance), so a 1%
    day is 1 / sqrt(1.48) = 0.822 sds:

    >>> import numpy as np
    >>> np.round(ewma_standardise(np.array([[0.01], [0.01], [0.03], [0.01]]), warmup=2), 3).ravel()
    array([1.   , 1.   , 3.   , 0.822])
    """
    x = np.asarray(returns, dtype=float)
    # the result does not depend on a symbol's scale: work at unit scale so that the squares
    # neither overflow (huge values) nor underflow (tiny ones)
    scale = np.abs(x).max(axis=0)
    x = x / np.where(scale > 0, scale, 1.0)
    var = np.empty_like(x)
    var[0] = np.mean(x[:warmup] ** 2, axis=0)
    for t in range(1, x.shape[0]):
        var[t] = lam * var[t - 1] + (1 - lam) * x[t - 1] ** 2
    if np.any(var <= 0):
        bad = np.flatnonzero(np.any(var <= 0, axis=0))
        raise ValueError(f"symbols {bad[:5].tolist()} have zero variance; correlation undefined")
    return x / np.sqrt(var)
