"""What the trading engine reads from and writes to its store: a structural protocol.

The live path imports nothing from :mod:`bayes_mem.store` (the layering test enforces it), so
:class:`~bayes_mem.live.engine.TradingEngine` names its store by this protocol instead of by
:class:`bayes_mem.store.Store`. ``Store`` satisfies it; so does anything with these methods
(a test double, a read-only replica wrapper). Frames are pandas DataFrames (typed ``Any``: no
pandas type stubs are installed).

Reads (when the engine opens, refreshes or restores):
  ``signals`` (signal -> family), ``signal_symbols`` (signal -> symbol), ``outcomes`` (every
  settled trade in arrival order), ``returns_panel`` (daily log returns, dates x symbols),
  ``returns_after`` (the same after a date), ``decisions`` (the decision log since an instant,
  of one configuration), ``table`` (a whole table: ``correlation_metrics``).
Writes (each durable before the engine's state moves):
  ``register_signals``, ``link_signals``, ``append_outcome`` (one settled trade, once),
  ``ingest_returns`` (a bar's log returns).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

Frame = Any  # a pandas DataFrame (pandas ships no type stubs here)

__all__ = ["EngineStore", "Frame"]


@runtime_checkable
class EngineStore(Protocol):
    """The store methods the engine calls (see the module docstring).

    Examples
    --------
    :class:`bayes_mem.store.Store` is one:

    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     store = Store(data_dir=tmp)
    ...     isinstance(store, EngineStore), store.signals()
    ...     store.close()
    (True, {})
    """

    def signals(self) -> dict[str, str]:
        """signal -> family of every registered signal.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum"})
        1
        >>> store.signals()
        {'spy_mom': 'momentum'}
        """
        ...

    def signal_symbols(self) -> dict[str, str]:
        """signal -> the symbol it trades, of every linked signal.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum"}), store.link_signals({"spy_mom": "SPY"})
        (1, 1)
        >>> store.signal_symbols()
        {'spy_mom': 'SPY'}
        """
        ...

    def outcomes(self) -> Frame:
        """Every settled trade in arrival order (a DataFrame).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum"})
        1
        >>> store.append_outcome("t1", "spy_mom", True, 120.0, notional=10_000.0)
        >>> store.outcomes()[["trade_id", "won", "pnl", "notional"]].to_dict("records")
        [{'trade_id': 't1', 'won': True, 'pnl': 120.0, 'notional': 10000.0}]
        """
        ...

    def returns_panel(self, symbols: Iterable[str] | None = None) -> Frame:
        """Daily log returns, dates x symbols (NaN where a symbol has none that day).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.returns_panel().shape  # nothing stored yet
        (0, 0)
        """
        ...

    def returns_after(
        self, date: dt.date | str | None, symbols: Iterable[str] | None = None
    ) -> Frame:
        """The returns panel after ``date`` (None: all).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.returns_after(None).shape  # nothing stored yet
        (0, 0)
        """
        ...

    def decisions(self, since: dt.datetime | str | None = None, config: str | None = None) -> Frame:
        """The decision log since ``since`` (an instant), of configuration ``config``.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> len(store.decisions(config="live"))
        0
        """
        ...

    def table(self, name: str) -> Frame:
        """A whole table (the engine reads ``correlation_metrics``).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> len(store.table("correlation_metrics"))
        0
        """
        ...

    def register_signals(self, signals: Mapping[str, str]) -> int:
        """Register signals (signal -> family); returns how many were new.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum", "qqq_rev": "reversal"})
        2
        """
        ...

    def link_signals(self, mapping: Mapping[str, str]) -> int:
        """Link signals to the symbols they trade; returns how many links were new.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum"})
        1
        >>> store.link_signals({"spy_mom": "SPY"})
        1
        """
        ...

    def append_outcome(
        self,
        trade_id: str | int,
        signal: str,
        won: bool,
        pnl: float,
        *,
        settled_at: dt.datetime | None = None,
        opened_at: dt.datetime | None = None,
        notional: float | None = None,
    ) -> None:
        """Append one settled trade durably (each trade id once).

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> store.register_signals({"spy_mom": "momentum"})
        1
        >>> store.append_outcome("t1", "spy_mom", False, -80.0, notional=10_000.0)
        >>> len(store.outcomes())
        1
        """
        ...

    def ingest_returns(self, source: Frame, *, kind: str, date_format: str | None = None) -> int:
        """Append daily returns (columns symbol, date, return); returns how many rows.

        Examples
        --------
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # in memory
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"symbol": ["SPY"], "date": ["2024-01-02"], "return": [0.01]})
        >>> store.ingest_returns(frame, kind="log")
        1
        """
        ...
