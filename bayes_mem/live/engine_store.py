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

    def signals(self) -> dict[str, str]: ...

    def signal_symbols(self) -> dict[str, str]: ...

    def outcomes(self) -> Frame: ...

    def returns_panel(self, symbols: Iterable[str] | None = None) -> Frame: ...

    def returns_after(
        self, date: dt.date | str | None, symbols: Iterable[str] | None = None
    ) -> Frame: ...

    def decisions(
        self, since: dt.datetime | str | None = None, config: str | None = None
    ) -> Frame: ...

    def table(self, name: str) -> Frame: ...

    def register_signals(self, signals: Mapping[str, str]) -> int: ...

    def link_signals(self, mapping: Mapping[str, str]) -> int: ...

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
    ) -> None: ...

    def ingest_returns(
        self, source: Frame, *, kind: str, date_format: str | None = None
    ) -> int: ...
