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
        writer's ``put_timeout``."""
        self.writer.put(row)

    def log_risk(self, date: dt.date, forecast: Any) -> None:
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
        self.store.log_correlation(
            date, average_correlation=average_correlation,
            concentration_score=concentration_score, effective_bets=effective_bets,
            breakdown_p=breakdown_p, breakdown_score=breakdown_score,
        )  # fmt: skip

    def log_signal_quality(self, as_of: dt.datetime, metrics: Sequence[Any]) -> None:
        self.store.log_signal_quality(as_of, metrics)

    def log_regime(self, date: dt.date, p_change: Mapping[str, float]) -> None:
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
        self.store.log_portfolio(
            date, gross_exposure=gross_exposure, portfolio_es=portfolio_es,
            portfolio_var=portfolio_var, level=level,
        )  # fmt: skip

    def returns_after(self, date: dt.date | None, symbols: Sequence[str]) -> ReturnsPanel:
        """Stored daily log returns of ``symbols`` (columns in that order) for dates strictly
        after ``date`` (None: all), ascending; NaN where a symbol has none that day."""
        panel = self.store.returns_after(date, list(symbols))
        return ReturnsPanel(
            tuple(panel.index), tuple(panel.columns), panel.to_numpy(dtype=float, copy=True)
        )

    def flush(self, timeout: float | None = None) -> None:
        self.writer.flush(timeout)

    def stats(self) -> WriterStats:
        return self.writer.stats()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> StoreRecorder:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.writer.__exit__(exc_type, exc, tb)
