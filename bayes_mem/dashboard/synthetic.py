"""A synthetic store for the dashboard's tests and benchmark: every metrics table filled through
the store's own ``log_*`` methods (the engine's recorder calls the same ones), from a seeded
:class:`numpy.random.Generator`.

Units as in the store: daily log returns, VaR and ES (positive losses) as fractions; notionals
and PnL in account currency; probabilities in [0, 1].
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_mem.store import Store

FAMILIES = ("momentum", "mean_reversion", "breakout", "carry")


@dataclass(frozen=True)
class SyntheticForecast:
    """The part of :class:`bayes_mem.live.RiskForecast` that :meth:`Store.log_risk` reads.

    Examples
    --------
    Two symbols at the 97.5% level, logged through the store's own :meth:`~Store.log_risk`:

    >>> store = Store("sqlite://")  # in memory
    >>> fc = SyntheticForecast(("A", "B"), 0.975, np.array([0.02, 0.03]), np.array([0.024, 0.036]),
    ...                        np.array([0.01, 0.015]))
    >>> store.log_risk(dt.date(2024, 1, 2), fc)
    >>> store.table("risk_metrics")[["symbol", "es_log", "es_low", "es_high"]].round(4)
      symbol  es_log  es_low  es_high
    0      A   0.024  0.0204   0.0276
    1      B   0.036  0.0306   0.0414
    """

    symbols: tuple[str, ...]
    level: float
    var_log: np.ndarray
    es_log: np.ndarray
    volatility: np.ndarray

    def es_band(self, mass: float = 0.9) -> np.ndarray:
        """A band of +-15 % around ES (the real one comes from the posterior draws).

        Examples
        --------
        ES x 0.85 and x 1.15, whatever ``mass``:

        >>> one = np.array([0.02]), np.array([0.024]), np.array([0.01])  # VaR, ES, volatility
        >>> fc = SyntheticForecast(("A",), 0.975, *one)
        >>> fc.es_band(0.9).round(4).tolist()
        [[0.0204, 0.0276]]
        """
        return np.column_stack([self.es_log * 0.85, self.es_log * 1.15])


@dataclass(frozen=True)
class SyntheticStore:
    """What :func:`fill_store` wrote: the symbols, the signals and the business days.

    Examples
    --------
    >>> store = Store("sqlite://")  # in memory
    >>> syn = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=2)
    >>> syn.symbols, syn.signals, syn.days
    (['SYM000', 'SYM001'], ['sig_00000', 'sig_00001', 'sig_00002'],
     [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)])
    """

    symbols: list[str]
    signals: list[str]
    days: list[dt.date]


def business_days(start: dt.date, n: int) -> list[dt.date]:
    """``n`` business days (Monday to Friday) from ``start`` on.

    Examples
    --------
    Friday 5 January 2024, then Monday and Tuesday:

    >>> business_days(dt.date(2024, 1, 5), 3)
    [datetime.date(2024, 1, 5), datetime.date(2024, 1, 8), datetime.date(2024, 1, 9)]
    """
    return [d.date() for d in pd.bdate_range(start, periods=n)]


def fill_store(
    store: Store,
    rng: np.random.Generator,
    *,
    n_symbols: int = 5,
    n_signals: int = 12,
    n_days: int = 40,
    start: dt.date = dt.date(2024, 1, 2),
    extra_signals: dict[str, str] | None = None,
    decisions_per_day: int = 4,
) -> SyntheticStore:
    """Fill ``store`` with ``n_days`` business days of returns and every metric, for
    ``n_symbols`` symbols and ``n_signals`` signals (plus ``extra_signals``: name -> family),
    decisions of a "live" and a "shadow" configuration included.

    Examples
    --------
    Three days of two symbols: every table filled, four decisions a day for each of the two
    configurations:

    >>> store = Store("sqlite://")  # in memory
    >>> syn = fill_store(store, np.random.default_rng(0), n_symbols=2, n_signals=3, n_days=3)
    >>> store.returns_panel().shape, len(store.table("risk_metrics")), len(store.decisions())
    ((3, 2), 6, 24)
    >>> sorted(store.decisions()["config"].unique())
    ['live', 'shadow']
    """
    symbols = [f"SYM{i:03d}" for i in range(n_symbols)]
    names = {f"sig_{i:05d}": FAMILIES[i % len(FAMILIES)] for i in range(n_signals)}
    names.update(extra_signals or {})
    signals = list(names)
    store.register_signals(names)
    store.link_signals({s: symbols[i % n_symbols] for i, s in enumerate(signals)})
    days = business_days(start, n_days)
    vol = rng.uniform(0.01, 0.03, n_symbols)
    factor = rng.standard_normal(n_days)
    rets = 0.5 * factor[:, None] * vol + rng.standard_t(5, (n_days, n_symbols)) * vol * 0.7
    frame = pd.DataFrame({
        "symbol": np.tile(symbols, n_days), "date": np.repeat(days, n_symbols),
        "return": rets.ravel(),
    })  # fmt: skip
    store.ingest_returns(frame, kind="log")
    win = rng.uniform(0.4, 0.6, len(signals))
    trades = np.zeros(len(signals), dtype=np.int64)
    wins = np.zeros(len(signals))
    pnl = np.zeros(len(signals))
    for day in days:
        scale = vol * np.exp(0.2 * rng.standard_normal(n_symbols))
        fc = SyntheticForecast(tuple(symbols), 0.975, 2.0 * scale, 2.4 * scale, scale)
        store.log_risk(day, fc)
        store.log_correlation(
            day, average_correlation=float(rng.uniform(0.1, 0.3)),
            concentration_score=float(rng.uniform(0.55, 0.65)),
            effective_bets=float(rng.uniform(1.0, n_symbols)),
            breakdown_p=float(rng.uniform()), breakdown_score=float(rng.uniform()),
        )  # fmt: skip
        store.log_regime(day, dict(zip(symbols, rng.beta(0.5, 4.0, n_symbols).tolist(),
                                       strict=True)))  # fmt: skip
        store.log_portfolio(day, gross_exposure=float(rng.uniform(5e5, 1e6)),
                            portfolio_es=float(rng.uniform(1e4, 3e4)),
                            portfolio_var=float(rng.uniform(8e3, 2e4)), level=0.975)  # fmt: skip
        n_new = rng.poisson(3.0, len(signals))
        w = rng.binomial(n_new, win)
        trades += n_new
        wins += w
        pnl += (w - (n_new - w)) * 100.0
        a, b = 1.0 + wins, 1.0 + trades - wins
        mean = a / (a + b)
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        store.log_signal_quality(
            dt.datetime.combine(day, dt.time(23, 59), tzinfo=dt.UTC),
            [_Metrics(s, int(trades[i]), float(mean[i]), float(max(mean[i] - 1.645 * sd[i], 0)),
                      float(min(mean[i] + 1.645 * sd[i], 1)), float(rng.uniform()),
                      float(pnl[i]), float(rng.normal(0.5, 0.3)))
             for i, s in enumerate(signals)],
        )  # fmt: skip
        rows = []
        for j in range(decisions_per_day):
            i = int(rng.integers(len(signals)))
            for config in ("live", "shadow"):
                act = bool(rng.uniform() < 0.6)
                rows.append({
                    "decided_at": dt.datetime.combine(day, dt.time(14, j % 60), tzinfo=dt.UTC),
                    "config": config, "key": f"{day.isoformat()}-{j}", "signal": signals[i],
                    "symbol": symbols[i % n_symbols],
                    "side": "long" if rng.uniform() < 0.5 else "short", "horizon": 5,
                    "act": act, "notional": float(rng.uniform(1e4, 5e4)) if act else 0.0,
                    "p_win": float(rng.uniform(0.4, 0.7)),
                    "binding": "kelly" if act else None, "prior_version": None,
                    "detail": {"explanation": f"{config}: p_win drawn, sized by kelly"},
                })  # fmt: skip
        store.append_decisions(rows)
    return SyntheticStore(symbols, signals, days)


@dataclass(frozen=True)
class _Metrics:
    signal: str
    trades: int
    posterior_mean: float
    credible_low: float
    credible_high: float
    p_above_break_even: float
    total_pnl: float
    sharpe: float | None
