"""The store side of the trading engine's :class:`bayes_mem.live.recording.Recorder` interface.

The engine (live path: no SQLAlchemy, no pandas) is handed a :class:`StoreRecorder`: decisions go
to a background :class:`~bayes_mem.store.writer.DecisionWriter` (``record_decision`` never waits
for the database), the end-of-day metrics straight to the store (each call one transaction;
logging a date again replaces its values), and ``returns_after`` answers with plain numpy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from bayes_mem.live.recording import DecisionRowSource, ReturnsPanel
from bayes_mem.store.store import Store
from bayes_mem.store.writer import DecisionWriter, WriterStats


class StoreRecorder:
    """Record the engine's decisions and metrics in ``store``. ``writer_options`` are
    :class:`DecisionWriter` keyword arguments (``max_queue``, ``batch_size``,
    ``flush_interval``, ``put_timeout``, ``retries``). :meth:`close` flushes and stops the writer
    (the store stays open: it is the caller's).

    Examples
    --------
    >>> import datetime as dt, tempfile
    >>> import pandas as pd
    >>> from bayes_mem.store import Store, StoreRecorder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> returns = pd.DataFrame({"symbol": ["SPY", "SPY"], "date": ["2026-03-02", "2026-03-03"],
    ...                         "return": [0.004, -0.011]})
    >>> _ = store.ingest_returns(returns, kind="log")
    >>> with StoreRecorder(store) as recorder:  # what the trading engine is handed
    ...     recorder.log_regime(dt.date(2026, 3, 3), {"SPY": 0.03})
    ...     panel = recorder.returns_after(dt.date(2026, 3, 2), ["SPY"])
    >>> panel.dates, panel.values
    ((datetime.date(2026, 3, 3),), array([[-0.011]]))
    >>> store.table("regime_metrics")
             date symbol  p_change
    0  2026-03-03    SPY      0.03
    >>> store.close()
    >>> tmp.cleanup()
    """

    def __init__(self, store: Store, **writer_options: Any) -> None:
        self.store = store
        self.writer = DecisionWriter(store, **writer_options)

    def record_decision(self, row: Mapping[str, Any] | DecisionRowSource) -> None:
        """Queue one decision row (fields: :mod:`bayes_mem.live.recording`); a bad row raises
        here; a full queue raises :class:`~bayes_mem.store.writer.DecisionQueueFull` after the
        writer's ``put_timeout``.

        Examples
        --------
        >>> import datetime as dt, tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
        ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...        "notional": 10_000.0, "p_win": 0.61}
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.record_decision(row)  # queued: written by the background writer
        >>> store.decisions()[["signal", "notional", "p_win"]]
          signal  notional  p_win
        0  mom_a   10000.0   0.61
        >>> store.close()
        >>> tmp.cleanup()
        """
        self.writer.put(row)

    def log_risk(self, date: dt.date, forecast: Any) -> None:
        """Store a :class:`~bayes_mem.live.RiskForecast` for ``date`` (see :meth:`Store.log_risk`).

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> from bayes_mem.store import Store
        >>> draws = GarchDraws(
        ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
        ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
        ...     lam=[-0.1, -0.05, -0.15],
        ... )
        >>> forecast = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance}).risk(0.975)
        >>> store = Store("sqlite://")  # an in-memory SQLite store: metrics go straight to it
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.log_risk(dt.date(2026, 3, 2), forecast)
        >>> store.table("risk_metrics")[["symbol", "level", "es_log"]].round(4)
          symbol  level  es_log
        0    SPY  0.975  0.0187
        """
        self.store.log_risk(date, forecast)

    def log_correlation(
        self,
        date: dt.date,
        *,
        average_correlation: float,
        concentration_score: float,
        effective_bets: float,
        breakdown_p: float | None = None,
        breakdown_score: float | None = None,
    ) -> None:
        """Store the day's correlation metrics (see :meth:`Store.log_correlation`).

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store: metrics go straight to it
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.log_correlation(dt.date(2026, 3, 2), average_correlation=0.3,
        ...                              concentration_score=0.4, effective_bets=2.5)
        >>> store.table("correlation_metrics")[["average_correlation", "effective_bets"]]
           average_correlation  effective_bets
        0                  0.3             2.5
        """
        self.store.log_correlation(
            date, average_correlation=average_correlation,
            concentration_score=concentration_score, effective_bets=effective_bets,
            breakdown_p=breakdown_p, breakdown_score=breakdown_score,
        )  # fmt: skip

    def log_signal_quality(self, as_of: dt.datetime, metrics: Sequence[Any]) -> None:
        """Store signal-quality snapshots taken at ``as_of`` (see :meth:`Store.log_signal_quality`).

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider
        >>> from bayes_mem.store import Store
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> d.record("mom_5d", True, 120.0, trade_id=1)
        >>> store = Store("sqlite://")  # an in-memory SQLite store: metrics go straight to it
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.log_signal_quality(dt.datetime(2026, 3, 2, 22), [d.metrics("mom_5d")])
        >>> store.table("signal_quality")[["signal", "trades", "posterior_mean"]].round(4)
           signal  trades  posterior_mean
        0  mom_5d       1          0.5455
        """
        self.store.log_signal_quality(as_of, metrics)

    def log_regime(self, date: dt.date, p_change: Mapping[str, float]) -> None:
        """Store the day's change-point probability per symbol (see :meth:`Store.log_regime`).

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store: metrics go straight to it
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.log_regime(dt.date(2026, 3, 2), {"SPY": 0.03})
        >>> store.table("regime_metrics")
                 date symbol  p_change
        0  2026-03-02    SPY      0.03
        """
        self.store.log_regime(date, p_change)

    def log_portfolio(
        self,
        date: dt.date,
        *,
        gross_exposure: float,
        portfolio_es: float,
        portfolio_var: float,
        level: float,
    ) -> None:
        """Store the day's portfolio risk (see :meth:`Store.log_portfolio`).

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store: metrics go straight to it
        >>> with StoreRecorder(store) as recorder:
        ...     recorder.log_portfolio(dt.date(2026, 3, 2), gross_exposure=50_000.0,
        ...                            portfolio_es=1_200.0, portfolio_var=900.0, level=0.975)
        >>> store.table("portfolio_metrics")[["gross_exposure", "portfolio_es", "level"]]
           gross_exposure  portfolio_es  level
        0         50000.0        1200.0  0.975
        """
        self.store.log_portfolio(
            date, gross_exposure=gross_exposure, portfolio_es=portfolio_es,
            portfolio_var=portfolio_var, level=level,
        )  # fmt: skip

    def returns_after(self, date: dt.date | None, symbols: Sequence[str]) -> ReturnsPanel:
        """Stored daily log returns of ``symbols`` (columns in that order) for dates strictly
        after ``date`` (None: all), ascending; NaN where a symbol has none that day.

        Examples
        --------
        Plain numpy for the engine: dates, symbols (in the order asked), a (dates, symbols) array:

        >>> import datetime as dt
        >>> import pandas as pd
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> days = pd.DataFrame({"symbol": ["SPY", "SPY", "QQQ"],
        ...                      "date": ["2026-03-02", "2026-03-03", "2026-03-03"],
        ...                      "return": [0.004, -0.011, 0.002]})
        >>> _ = store.ingest_returns(days, kind="log")
        >>> with StoreRecorder(store) as recorder:
        ...     panel = recorder.returns_after(dt.date(2026, 3, 2), ["SPY", "QQQ"])
        >>> panel.dates, panel.symbols, panel.values.tolist()
        ((datetime.date(2026, 3, 3),), ('SPY', 'QQQ'), [[-0.011, 0.002]])
        """
        panel = self.store.returns_after(date, list(symbols))
        return ReturnsPanel(
            tuple(panel.index), tuple(panel.columns), panel.to_numpy(dtype=float, copy=True)
        )

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every decision queued so far is written (see :meth:`DecisionWriter.flush`).

        Examples
        --------
        >>> import datetime as dt, tempfile
        >>> from bayes_mem.store import Store
        >>> tmp = tempfile.TemporaryDirectory()
        >>> store = Store(data_dir=tmp.name)
        >>> row = {"decided_at": dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC), "config": "live",
        ...        "signal": "mom_a", "symbol": "SPY", "side": "long", "horizon": 5, "act": False,
        ...        "notional": 0.0, "p_win": 0.47}
        >>> recorder = StoreRecorder(store, flush_interval=60)  # would wait up to 60 s for a batch
        >>> recorder.record_decision(row)
        >>> recorder.flush()  # written now
        >>> len(store.decisions())
        1
        >>> recorder.close()
        >>> store.close()
        >>> tmp.cleanup()
        """
        self.writer.flush(timeout)

    def stats(self) -> WriterStats:
        """The decision writer's counts (see :class:`~bayes_mem.store.writer.WriterStats`).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> with StoreRecorder(store) as recorder:
        ...     print(recorder.stats().accepted, recorder.stats().committed)
        0 0
        """
        return self.writer.stats()

    def close(self) -> None:
        """Flush and stop the decision writer; the store stays open (it is the caller's).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> recorder = StoreRecorder(store)
        >>> recorder.close()
        >>> recorder.writer.alive, store.latest_prior_version()  # the store still answers
        (False, 0)
        """
        self.writer.close()

    def __enter__(self) -> StoreRecorder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.writer.__exit__(exc_type, exc, tb)
