"""What the trading engine records, and the interface it records through (no store imported).

The engine never imports the store (SQLAlchemy, pandas): it is handed a :class:`Recorder`, in
production :class:`bayes_mem.store.StoreRecorder` (decisions go to a background writer, metrics
straight to the store), in tests or store-less runs :class:`MemoryRecorder`. Both check a
decision row with :func:`check_decision` at the caller, so a bad row is refused where it is made.

A decision row is a mapping with exactly these keys (``DECISION_FIELDS``; the optional ones may be
left out and default to None):

==============  ==============================================================================
decided_at      timezone-aware ``datetime.datetime`` (stored as UTC; years 1900-2200)
config          the engine configuration that decided, e.g. ``"live"`` or ``"shadow"``
key             optional: the decision key (str, or int stored as its decimal string)
signal          signal name
symbol          the symbol traded
side            ``"long"`` or ``"short"``
horizon         holding horizon, int trading days, >= 1
act             bool: whether the engine acted
notional        float >= 0, account currency (0 when it did not act)
quantity        optional float >= 0: units of the symbol
p_win           the sampled win probability, in [0, 1]
binding         optional: the name of the limit that bound the size (e.g. ``"kelly"``, ``"cvar"``)
prior_version   optional int >= 1: the prior set decided with
detail          optional mapping, stored as a JSON object (every factor, a draws summary, the
                explanation): numpy scalars and arrays become numbers and lists, dates ISO
                strings, non-finite numbers ``null``; at most ``MAX_DETAIL_CHARS`` characters
==============  ==============================================================================

Names (config, key, signal, symbol, binding) follow the name rule of
:mod:`bayes_mem.live.validate` (at most ``NAME_LENGTH`` = 200 characters, NFC, no control or
invisible characters, no surrounding whitespace: what the store holds). Every check raises
TypeError (wrong type, unknown or missing key) or ValueError (bad value) naming the field and the
value.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, cast, runtime_checkable

import numpy as np

from bayes_mem.live.validate import check_bool, check_int, check_name, check_real

if TYPE_CHECKING:  # pragma: no cover
    from bayes_mem.live.decider import SignalMetrics
    from bayes_mem.live.return_model import RiskForecast

MAX_DETAIL_CHARS = 100_000  # a summary per decision; whole draw arrays are a bug
INT4_MAX = 2**31 - 1  # the integer columns (horizon, prior_version)
MIN_YEAR, MAX_YEAR = 1900, 2200  # as bayes_mem.store.ingest

DECISION_FIELDS = (
    "decided_at", "config", "key", "signal", "symbol", "side", "horizon", "act", "notional",
    "quantity", "p_win", "binding", "prior_version", "detail",
)  # fmt: skip
_FIELD_SET = frozenset(DECISION_FIELDS)
_REQUIRED = frozenset(
    ("decided_at", "config", "signal", "symbol", "side", "horizon", "act", "notional", "p_win")
)
_UTC = dt.UTC


# A name the store can hold: check_name, which includes the length limit NAME_LENGTH (the name is
# kept for callers; an alias, not a wrapper: record_decision checks four names per row).
check_name_length = check_name


def check_aware_datetime(value: object, what: str) -> dt.datetime:
    """A timezone-aware datetime in the years the store accepts, as a plain UTC datetime.

    Examples
    --------
    A New York afternoon becomes the same instant in UTC; a naive datetime is refused:

    >>> import datetime as dt
    >>> ny = dt.timezone(dt.timedelta(hours=-5))
    >>> check_aware_datetime(dt.datetime(2024, 1, 3, 10, 30, tzinfo=ny), "decided_at")
    datetime.datetime(2024, 1, 3, 15, 30, tzinfo=datetime.timezone.utc)
    >>> check_aware_datetime(dt.datetime(2024, 1, 3, 10, 30), "decided_at")
    Traceback (most recent call last):
        ...
    ValueError: decided_at must be timezone-aware (e.g. ...
    """
    if not isinstance(value, dt.datetime):
        raise TypeError(
            f"{what} must be a timezone-aware datetime, got {type(value).__name__} {value!r:.80}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (e.g. tzinfo=datetime.UTC), got {value!r}")
    if type(value) is not dt.datetime:  # pandas.Timestamp and other subclasses
        value = dt.datetime.combine(value.date(), value.timetz())
    if value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"{what} {value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return value


def _optional_name(value: object, what: str) -> str | None:
    return None if value is None else check_name_length(value, what)


def _nonnegative(value: object, what: str) -> float:
    out = value if type(value) is float and math.isfinite(value) else check_real(value, what)
    if out < 0.0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
    return out


def _small_int(value: object, what: str) -> int:
    out = check_int(value, what, minimum=1)
    if out > INT4_MAX:
        raise ValueError(f"{what} must be <= {INT4_MAX}, got {value!r}")
    return out


def _json_default(value: object) -> object:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} {value!r:.60} is not JSON-serialisable")


def _finite(value: object) -> object:
    """``value`` with every non-finite number replaced by None (JSON has no NaN or infinity)."""
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


# one encoder (json.dumps with options builds a new one per call: 1 us of the 4 us a decision's
# detail takes to encode)
_ENCODE = json.JSONEncoder(allow_nan=False, default=_json_default, separators=(",", ":")).encode


def detail_json(detail: object) -> str:
    """The ``detail`` column's JSON object text (see the module docstring).

    Examples
    --------
    numpy numbers become JSON numbers, dates ISO strings, an infinity ``null``:

    >>> import numpy as np
    >>> import datetime as dt
    >>> detail_json({"es": np.float64(0.04), "n": np.int64(3), "cap": float("inf"),
    ...              "day": dt.date(2024, 1, 3), "nodes": np.array([1.0, 2.0])})
    '{"es":0.04,"n":3,"cap":null,"day":"2024-01-03","nodes":[1.0,2.0]}'
    >>> detail_json(None)
    '{}'
    """
    if detail is None:
        return "{}"
    if not isinstance(detail, Mapping):
        raise TypeError(f"detail must be a mapping or None, got {type(detail).__name__}")
    try:
        try:
            text = _ENCODE(detail)
        except ValueError:  # a NaN or an infinity somewhere: null, as JSON has no such numbers
            text = _ENCODE(_finite(detail))
    except (TypeError, ValueError) as exc:  # an unserialisable value, a non-string key, a cycle
        raise TypeError(f"detail is not JSON-serialisable: {exc}") from None
    if len(text) > MAX_DETAIL_CHARS:
        raise ValueError(
            f"detail is {len(text)} characters of JSON, more than {MAX_DETAIL_CHARS}: "
            "store a summary, not the draws"
        )
    return text


def check_decision(row: object) -> dict[str, Any]:
    """A decision row checked and normalised for the ``decisions`` table: a new dict with every
    key of ``DECISION_FIELDS`` (``decided_at`` in UTC, ``key`` a string, ``detail`` JSON text).
    Raises TypeError/ValueError naming the field and the value; see the module docstring.

    Examples
    --------
    The optional fields are filled with None (``detail`` with ``{}``), an int key becomes text:

    >>> import datetime as dt
    >>> row = {
    ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
    ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...     "notional": 25_000.0, "p_win": 0.57,
    ... }
    >>> out = check_decision({**row, "key": 42})
    >>> out["key"], out["quantity"], out["binding"], out["detail"], out["decided_at"].tzinfo
    ('42', None, None, '{}', datetime.timezone.utc)
    >>> check_decision({**row, "side": "flat"})
    Traceback (most recent call last):
        ...
    ValueError: side must be 'long' or 'short', got 'flat'
    """
    if not isinstance(row, Mapping):
        raise TypeError(f"a decision row must be a mapping, got {type(row).__name__}")
    keys = row.keys()
    if not keys <= _FIELD_SET:
        raise TypeError(f"decision row has unknown field(s) {sorted(keys - _FIELD_SET)}")
    if not keys >= _REQUIRED:
        raise TypeError(f"decision row misses field(s) {sorted(_REQUIRED - keys)}")
    get = row.get
    side = row["side"]
    if side != "long" and side != "short":
        raise ValueError(f"side must be 'long' or 'short', got {side!r:.80}")
    act = row["act"]
    if act is not True and act is not False:
        act = check_bool(act, "act")
    p_win = row["p_win"]
    if type(p_win) is not float or not 0.0 <= p_win <= 1.0:
        p_win = check_real(p_win, "p_win")
        if not 0.0 <= p_win <= 1.0:
            raise ValueError(f"p_win must be in [0, 1], got {row['p_win']!r}")
    horizon = row["horizon"]
    if type(horizon) is not int or not 1 <= horizon <= INT4_MAX:
        horizon = _small_int(horizon, "horizon")
    key = get("key")
    if key is not None and type(key) is not str:
        if isinstance(key, int | np.integer) and not isinstance(key, bool | np.bool_):
            key = str(int(key))
        else:
            raise TypeError(f"key must be a str, an int or None, got {type(key).__name__} {key!r}")
    quantity = get("quantity")
    version = get("prior_version")
    return {
        "decided_at": check_aware_datetime(row["decided_at"], "decided_at"),
        "config": check_name_length(row["config"], "config"),
        "key": None if key is None else check_name_length(key, "key"),
        "signal": check_name_length(row["signal"], "signal"),
        "symbol": check_name_length(row["symbol"], "symbol"),
        "side": side,
        "horizon": horizon,
        "act": act,
        "notional": _nonnegative(row["notional"], "notional"),
        "quantity": None if quantity is None else _nonnegative(quantity, "quantity"),
        "p_win": p_win,
        "binding": _optional_name(get("binding"), "binding"),
        "prior_version": None if version is None else _small_int(version, "prior_version"),
        "detail": detail_json(get("detail")),
    }


@dataclass(frozen=True)
class ReturnsPanel:
    """Daily log returns, ``values[t, j]`` of ``symbols[j]`` on ``dates[t]`` (NaN: none stored),
    dates ascending.

    Examples
    --------
    Two days of two symbols, NaN where a symbol did not trade:

    >>> import numpy as np
    >>> import datetime as dt
    >>> panel = ReturnsPanel(
    ...     (dt.date(2024, 1, 2), dt.date(2024, 1, 3)), ("SPY", "QQQ"),
    ...     np.array([[0.01, -0.02], [0.005, np.nan]]),
    ... )
    >>> panel.values.shape, panel.symbols[1], float(panel.values[1, 0])
    ((2, 2), 'QQQ', 0.005)
    >>> bool(np.isnan(panel.values[1, 1]))  # QQQ on 2024-01-03
    True
    """

    dates: tuple[dt.date, ...]
    symbols: tuple[str, ...]
    values: np.ndarray  # (len(dates), len(symbols)) float


_ROW_SOURCE_TYPES: set[type] = set()  # classes whose instances were found to be row sources


def is_row_source(row: object) -> TypeGuard[DecisionRowSource]:
    """Whether ``row`` is a :class:`DecisionRowSource` to be converted later (not a mapping, a
    callable ``decision_row``) rather than a row mapping to check now. A class whose own
    ``decision_row`` qualified is remembered, so an engine decision costs a set lookup on the
    decision path, not an ABC check (~0.2 us).

    Examples
    --------
    >>> from bayes_mem.live.decision import Decision
    >>> d = Decision(id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
    ...              side="long", horizon=5, act=False, notional=0.0, quantity=None, price=None,
    ...              p_win=0.42, rule="thompson", binding=None)
    >>> is_row_source(d), is_row_source({"signal": "spy_mom"}), is_row_source("a string")
    (True, False, False)
    """
    cls = type(row)
    if cls in _ROW_SOURCE_TYPES:
        return True
    if isinstance(row, Mapping) or not callable(getattr(row, "decision_row", None)):
        return False
    if callable(getattr(cls, "decision_row", None)):  # the class's method, not an instance's
        _ROW_SOURCE_TYPES.add(cls)
    return True


class DecisionRowSource(Protocol):
    """A decision recorded as it is, converted to its row (``decision_row()``, a mapping of the
    fields above) by the recorder's writer, off the decision path: an engine
    :class:`~bayes_mem.live.decision.Decision`, or the row of a cancel.

    Examples
    --------
    An engine :class:`~bayes_mem.live.decision.Decision` is one: a recorder converts it with
    ``decision_row()`` when it stores it:

    >>> import datetime as dt
    >>> row = {
    ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
    ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...     "notional": 25_000.0, "p_win": 0.57,
    ... }
    >>> class Source:  # a minimal source: its row, built when asked
    ...     def decision_row(self):
    ...         return row
    >>> rec = MemoryRecorder()
    >>> rec.record_decision(Source())
    >>> rec.decisions[0]["signal"], rec.decisions[0]["notional"]
    ('spy_mom', 25000.0)
    """

    def decision_row(self) -> Mapping[str, Any]:
        """The decision's row: a mapping of the fields of ``DECISION_FIELDS`` (see the module
        docstring).

        Examples
        --------
        A decision's row holds its id in the ``key`` column:

        >>> from bayes_mem.live.decision import Decision
        >>> d = Decision(id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...              side="long", horizon=5, act=False, notional=0.0, quantity=None, price=None,
        ...              p_win=0.42, rule="thompson", binding=None)
        >>> row = d.decision_row()
        >>> row["key"], row["act"], row["p_win"]
        ('k1', False, 0.42)
        """
        ...


@runtime_checkable
class Recorder(Protocol):
    """What the trading engine records through. Decisions are queued (``record_decision`` never
    waits for a database); the metrics calls write at once, and logging a date again replaces
    that date's values. ``flush`` returns once every decision recorded so far is stored and
    raises if any was refused.

    Examples
    --------
    :class:`MemoryRecorder` implements it (checked at run time), as does
    :class:`bayes_mem.store.StoreRecorder`:

    >>> isinstance(MemoryRecorder(), Recorder), isinstance(object(), Recorder)
    (True, False)
    """

    def record_decision(self, row: Mapping[str, Any] | DecisionRowSource) -> None:
        """Queue one decision (a row mapping, checked at once, or a :class:`DecisionRowSource`,
        converted by the writer); never waits for a database.

        Examples
        --------
        >>> import datetime as dt
        >>> row = {
        ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
        ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...     "notional": 25_000.0, "p_win": 0.57,
        ... }
        >>> rec = MemoryRecorder()
        >>> rec.record_decision(row)
        >>> len(rec.decisions), rec.decisions[0]["decided_at"].isoformat()
        (1, '2024-01-03T15:30:00+00:00')
        """
        ...

    def log_risk(self, date: dt.date, forecast: RiskForecast) -> None:
        """Write the day's per-symbol risk forecast (VaR/ES with bands); logging a date again
        replaces it.

        Examples
        --------
        A one-symbol forecast of a return model, kept by the in-memory recorder:

        >>> import datetime as dt
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])
        >>> forecast = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance}).risk(0.975)
        >>> rec = MemoryRecorder()
        >>> rec.log_risk(dt.date(2024, 1, 3), forecast)
        >>> name, (date, logged), _ = rec.logged[0]
        >>> name, date, logged is forecast
        ('log_risk', datetime.date(2024, 1, 3), True)
        """
        ...

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
        """Write the day's correlation concentration and (when it ran) the breakdown test.

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_correlation(dt.date(2024, 1, 3), average_correlation=0.4,
        ...                     concentration_score=0.35, effective_bets=2.1)
        >>> rec.logged[0][2]["effective_bets"], rec.logged[0][2]["breakdown_p"]
        (2.1, None)
        """
        ...

    def log_signal_quality(self, as_of: dt.datetime, metrics: Sequence[SignalMetrics]) -> None:
        """Write each signal's quality (:class:`~bayes_mem.live.decider.SignalMetrics`) as of
        ``as_of``.

        Examples
        --------
        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider
        >>> d = Decider({"momentum": BetaPrior(5.0, 5.0)})
        >>> d.register("mom_5d", "momentum")
        >>> rec = MemoryRecorder()
        >>> as_of = dt.datetime(2024, 1, 3, 23, 59, tzinfo=dt.UTC)
        >>> rec.log_signal_quality(as_of, [d.metrics("mom_5d")])
        >>> rec.logged[0][1][1][0].signal
        'mom_5d'
        """
        ...

    def log_regime(self, date: dt.date, p_change: Mapping[str, float]) -> None:
        """Write the day's P(change) per symbol.

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_regime(dt.date(2024, 1, 3), {"SPY": 0.12, "QQQ": 0.4})
        >>> rec.logged
        [('log_regime', (datetime.date(2024, 1, 3), {'SPY': 0.12, 'QQQ': 0.4}), {})]
        """
        ...

    def log_portfolio(
        self,
        date: dt.date,
        *,
        gross_exposure: float,
        portfolio_es: float,
        portfolio_var: float,
        level: float,
    ) -> None:
        """Write the day's open-book exposure (currency) and its VaR and ES at ``level``.

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_portfolio(dt.date(2024, 1, 3), gross_exposure=250_000.0, portfolio_es=9_000.0,
        ...                   portfolio_var=7_000.0, level=0.975)
        >>> rec.logged[0][2]["portfolio_es"]
        9000.0
        """
        ...

    def returns_after(self, date: dt.date | None, symbols: Sequence[str]) -> ReturnsPanel:
        """The stored daily log returns after ``date`` (None: all) of ``symbols``, in that order.

        Examples
        --------
        A recorder without returns gives an empty panel with the symbols asked for:

        >>> MemoryRecorder().returns_after(None, ["SPY"])
        ReturnsPanel(dates=(), symbols=('SPY',), values=array([], shape=(0, 1), dtype=float64))
        """
        ...

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every decision recorded so far is stored (``timeout`` seconds; None: no
        limit); raise if any was refused.

        Examples
        --------
        An in-memory recorder stores at once:

        >>> rec = MemoryRecorder()
        >>> rec.flush(timeout=1.0)
        >>> rec.decisions
        []
        """
        ...

    def close(self) -> None:
        """Flush, then stop the writer (the recorder takes no more decisions).

        Examples
        --------
        The in-memory recorder has no writer to stop:

        >>> rec = MemoryRecorder()
        >>> rec.close()
        >>> rec.decisions
        []
        """
        ...


class MemoryRecorder:
    """A :class:`Recorder` in memory, for engine tests and store-less runs: decisions are checked
    like the store's and kept in ``decisions`` (normalised rows, in order); metrics calls are
    kept in ``logged`` as ``(method, args, kwargs)`` (same signatures as the store's, values not
    checked); ``returns_after`` serves the
    panel given (dates after ``date``, the symbols asked for, in that order). Thread-safe.

    A row given as a mapping is checked when recorded; an engine
    :class:`~bayes_mem.live.decision.Decision` is kept as it is and converted and checked when
    ``decisions`` is read (as the store's writer converts it in its own thread): recording one
    costs the decision path a list append, not the row's ~50 us of conversion.

    Examples
    --------
    A decision row recorded and read back normalised; a metrics call kept as it was made:

    >>> import datetime as dt
    >>> row = {
    ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
    ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
    ...     "notional": 25_000.0, "p_win": 0.57,
    ... }
    >>> rec = MemoryRecorder()
    >>> rec.record_decision(row)
    >>> rec.log_regime(dt.date(2024, 1, 3), {"SPY": 0.1})
    >>> rec.decisions[0]["side"], rec.decisions[0]["detail"], rec.logged
    ('long', '{}', [('log_regime', (datetime.date(2024, 1, 3), {'SPY': 0.1}), {})])
    """

    def __init__(self, returns: ReturnsPanel | None = None) -> None:
        # checked rows; engine Decisions (their rows made when first read) until then
        self._decisions: list[dict[str, Any] | DecisionRowSource] = []
        self._converted = 0  # rows before this index are checked rows
        self.logged: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.returns = returns
        self._lock = threading.Lock()

    @property
    def decisions(self) -> list[dict[str, Any]]:
        """The recorded decision rows, in order (normalised, as the store keeps them).

        Examples
        --------
        A :class:`~bayes_mem.live.decision.Decision` is converted and checked when read:

        >>> from bayes_mem.live.decision import Decision
        >>> import datetime as dt
        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="long", horizon=5, act=True, notional=1000.0, quantity=None, price=None,
        ...     p_win=0.6, rule="thompson", binding="cvar",
        ...     decided_at=dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
        ... )
        >>> rec = MemoryRecorder()
        >>> rec.record_decision(d)
        >>> row = rec.decisions[0]
        >>> row["key"], row["binding"], row["notional"]
        ('k1', 'cvar', 1000.0)
        """
        with self._lock:
            rows = self._decisions
            for i in range(self._converted, len(rows)):
                row = rows[i]
                if not isinstance(row, dict):
                    rows[i] = check_decision(row.decision_row())
                self._converted = i + 1
            return cast(list[dict[str, Any]], rows)  # every row converted above

    def record_decision(self, row: Mapping[str, Any] | DecisionRowSource) -> None:
        """Record one decision: a row mapping is checked now (:func:`check_decision`), a
        :class:`DecisionRowSource` when :attr:`decisions` is read.

        Examples
        --------
        A bad row is refused where it is made:

        >>> import datetime as dt
        >>> row = {
        ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
        ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...     "notional": 25_000.0, "p_win": 0.57,
        ... }
        >>> rec = MemoryRecorder()
        >>> rec.record_decision({**row, "p_win": 1.5})
        Traceback (most recent call last):
            ...
        ValueError: p_win must be in [0, 1], got 1.5
        >>> rec.decisions
        []
        """
        # a row mapping is checked now, refusing anything else with a name
        item = row if is_row_source(row) else check_decision(row)
        with self._lock:
            self._decisions.append(item)

    def _log(self, name: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.logged.append((name, args, kwargs))

    def log_risk(self, date: dt.date, forecast: RiskForecast) -> None:
        """Keep the call in ``logged`` (the forecast as given).

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_risk(dt.date(2024, 1, 3), "a RiskForecast")  # values are not checked
        >>> rec.logged
        [('log_risk', (datetime.date(2024, 1, 3), 'a RiskForecast'), {})]
        """
        self._log("log_risk", date, forecast)

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
        """Keep the call in ``logged``.

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_correlation(
        ...     dt.date(2024, 1, 3), average_correlation=0.3, concentration_score=0.2,
        ...     effective_bets=3.0, breakdown_p=0.04, breakdown_score=0.6,
        ... )
        >>> name, args, kwargs = rec.logged[0]
        >>> name, args, kwargs["breakdown_score"]
        ('log_correlation', (datetime.date(2024, 1, 3),), 0.6)
        """
        self._log(
            "log_correlation", date, average_correlation=average_correlation,
            concentration_score=concentration_score, effective_bets=effective_bets,
            breakdown_p=breakdown_p, breakdown_score=breakdown_score,
        )  # fmt: skip

    def log_signal_quality(self, as_of: dt.datetime, metrics: Sequence[SignalMetrics]) -> None:
        """Keep the call in ``logged`` (the metrics as a list).

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_signal_quality(dt.datetime(2024, 1, 3, tzinfo=dt.UTC), ())
        >>> rec.logged[0][1][1]
        []
        """
        self._log("log_signal_quality", as_of, list(metrics))

    def log_regime(self, date: dt.date, p_change: Mapping[str, float]) -> None:
        """Keep the call in ``logged`` (``p_change`` copied to a dict).

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> p = {"SPY": 0.2}
        >>> rec.log_regime(dt.date(2024, 1, 3), p)
        >>> p["SPY"] = 0.9  # the logged copy does not change
        >>> rec.logged[0][1]
        (datetime.date(2024, 1, 3), {'SPY': 0.2})
        """
        self._log("log_regime", date, dict(p_change))

    def log_portfolio(
        self,
        date: dt.date,
        *,
        gross_exposure: float,
        portfolio_es: float,
        portfolio_var: float,
        level: float,
    ) -> None:
        """Keep the call in ``logged``.

        Examples
        --------
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> rec.log_portfolio(dt.date(2024, 1, 3), gross_exposure=1e5, portfolio_es=2e3,
        ...                   portfolio_var=1.5e3, level=0.975)
        >>> name, args, kwargs = rec.logged[0]
        >>> name, kwargs["gross_exposure"], kwargs["portfolio_es"], kwargs["level"]
        ('log_portfolio', 100000.0, 2000.0, 0.975)
        """
        self._log(
            "log_portfolio", date, gross_exposure=gross_exposure, portfolio_es=portfolio_es,
            portfolio_var=portfolio_var, level=level,
        )  # fmt: skip

    def returns_after(self, date: dt.date | None, symbols: Sequence[str]) -> ReturnsPanel:
        """The given panel's rows after ``date`` (None: all), columns ``symbols`` in that order (NaN
        for a symbol it lacks).

        Examples
        --------
        >>> import numpy as np
        >>> import datetime as dt
        >>> rec = MemoryRecorder()
        >>> panel = ReturnsPanel((dt.date(2024, 1, 2), dt.date(2024, 1, 3)), ("SPY", "QQQ"),
        ...                      np.array([[0.01, -0.02], [0.005, 0.003]]))
        >>> got = MemoryRecorder(panel).returns_after(dt.date(2024, 1, 2), ["QQQ", "GLD"])
        >>> got.dates, got.symbols, got.values
        ((datetime.date(2024, 1, 3),), ('QQQ', 'GLD'), array([[0.003,   nan]]))
        """
        symbols = tuple(symbols)
        panel = self.returns
        if panel is None:
            return ReturnsPanel((), symbols, np.empty((0, len(symbols))))
        rows = [i for i, d in enumerate(panel.dates) if date is None or d > date]
        cols = [panel.symbols.index(s) if s in panel.symbols else -1 for s in symbols]
        values = np.full((len(rows), len(symbols)), np.nan)
        for j, c in enumerate(cols):
            if c >= 0:
                values[:, j] = panel.values[rows, c]
        return ReturnsPanel(tuple(panel.dates[i] for i in rows), symbols, values)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing to wait for: rows are kept at once.

        Examples
        --------
        >>> import datetime as dt
        >>> row = {
        ...     "decided_at": dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC), "config": "live",
        ...     "signal": "spy_mom", "symbol": "SPY", "side": "long", "horizon": 5, "act": True,
        ...     "notional": 25_000.0, "p_win": 0.57,
        ... }
        >>> rec = MemoryRecorder()
        >>> rec.record_decision(row)
        >>> rec.flush()
        >>> len(rec.decisions)
        1
        """
        pass

    def close(self) -> None:
        """Nothing to stop; the recorder keeps what it holds.

        Examples
        --------
        >>> rec = MemoryRecorder()
        >>> rec.close()
        >>> rec.decisions
        []
        """
        pass
