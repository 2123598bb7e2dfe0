"""Classic trading-signal families on daily closes, and their shadow trades.

Prices are daily closing levels (currency per unit, > 0). Every signal gives on day ``t`` a
direction in {+1, -1, 0} computed from ``prices[: t + 1]`` only:

- ``momentum`` (lookback L): ``sign(log P_t - log P_{t-L})``;
- ``mean_reversion`` (5-day z-score, threshold c): ``z = (log P_t - log P_{t-5}) / (sd_60 *
  sqrt(5))`` with ``sd_60`` the standard deviation of the last 60 daily log returns; direction
  ``-sign(z)`` when ``|z| > c``, else 0;
- ``breakout`` (channel N): +1 when ``P_t`` exceeds the highest close of the previous N days,
  -1 when it is below their lowest, else 0.

A day without enough history gives 0. A *shadow trade* of a signal opens at day t's close in the
signal's direction when the signal fires and has no trade open, is held ``hold`` days and settles
at the close of ``t + hold`` with the simple return ``direction * (P_{t+hold} / P_t - 1)`` per
unit of stake; it is won when that return is > 0. Shadow trades are the signals' track record,
recorded whether or not a policy puts money on them (their outcome is just a price move).

The real prices come from the ``arch`` and ``skfolio`` packages' bundled data (the ``data``
extra): no download. :func:`load_prices` is arch's three series on their common dates;
:func:`load_universe` the widest universe (eight series, an unbalanced panel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_mem.evaluation import data

FAMILIES = ("momentum", "mean_reversion", "breakout")
SYMBOLS = ("SP500", "NASDAQ", "WTI")
#: the policy backtest's universe (:func:`load_universe`): every distinct real daily series
#: shipped in the project's pip dependencies, except skfolio's 20-stock panel (kept outside
#: the project as an independent check)
UNIVERSE = ("SP500", "NASDAQ", "WTI", "MTUM", "QUAL", "SIZE", "USMV", "VLUE")


@dataclass(frozen=True)
class SignalSpec:
    """One parameterisation of a signal family: ``param`` is the momentum lookback (days), the
    mean-reversion z threshold, or the breakout channel length (days).

    Examples
    --------
    >>> SignalSpec("momentum", 20), SignalSpec("mean_reversion", 1.5).name
    (SignalSpec(family='momentum', param=20), 'mean_reversion_z1.5')
    """

    family: str
    param: float

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown signal family {self.family!r}; known: {FAMILIES}")
        p = self.param
        if isinstance(p, bool) or not isinstance(p, int | float) or not np.isfinite(p) or p <= 0:
            raise ValueError(f"signal param must be a positive number, got {p!r}")
        if self.family != "mean_reversion" and p != int(p):
            raise ValueError(f"{self.family} needs a whole number of days, got {p!r}")

    @property
    def name(self) -> str:
        """The signal's name: family and parameter (``momentum_20``, ``mean_reversion_z2``).

        Examples
        --------
        >>> SignalSpec("breakout", 55).name, SignalSpec("mean_reversion", 2.0).name
        ('breakout_55', 'mean_reversion_z2')
        """
        if self.family == "mean_reversion":
            return f"mean_reversion_z{self.param:g}"
        return f"{self.family}_{int(self.param)}"

    @property
    def lookback(self) -> int:
        """Days of history needed before the signal can fire.

        Examples
        --------
        The mean-reversion z-score always needs 60 days of returns:

        >>> SignalSpec("breakout", 55).lookback, SignalSpec("mean_reversion", 1.5).lookback
        (55, 60)
        """
        if self.family == "mean_reversion":
            return 60
        return int(self.param)


DEFAULT_SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec("momentum", 20),
    SignalSpec("momentum", 60),
    SignalSpec("momentum", 120),
    SignalSpec("mean_reversion", 1.0),
    SignalSpec("mean_reversion", 2.0),
    SignalSpec("breakout", 20),
    SignalSpec("breakout", 55),
)


def check_prices(prices: object, what: str = "prices") -> np.ndarray:
    """A 1-d float array of positive finite prices; otherwise a ValueError naming the value.

    Examples
    --------
    >>> check_prices([100, 101.5])
    array([100. , 101.5])
    >>> check_prices([100.0, 0.0])
    Traceback (most recent call last):
    ...
    ValueError: prices must be positive and finite, got 0.0 at position 1
    """
    p = np.asarray(prices, dtype=float)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"{what} must be a 1-d series of at least 2 prices, got shape {p.shape}")
    bad = ~np.isfinite(p) | (p <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{what} must be positive and finite, got {float(p[i])!r} at position {i}")
    return p


def directions(prices: object, spec: SignalSpec) -> np.ndarray:
    """Direction (+1, -1, 0) of ``spec`` on every day; day t uses ``prices[: t + 1]`` only.

    Examples
    --------
    2-day momentum compares each close with the one two days before (103 > 100: +1, 99 < 103:
    -1); the 3-day breakout fires only below 101..103 (99) and above 103..99 (104):

    >>> p = [100.0, 101.0, 103.0, 102.0, 99.0, 104.0]
    >>> directions(p, SignalSpec("momentum", 2))
    array([ 0,  0,  1,  1, -1,  1], dtype=int8)
    >>> directions(p, SignalSpec("breakout", 3))
    array([ 0,  0,  0,  0, -1,  1], dtype=int8)
    """
    p = check_prices(prices)
    logp = np.log(p)
    t = p.size
    out = np.zeros(t, dtype=np.int8)
    if spec.family == "momentum":
        L = int(spec.param)
        if t > L:
            out[L:] = np.sign(logp[L:] - logp[:-L]).astype(np.int8)
    elif spec.family == "mean_reversion":
        r = np.diff(logp)  # r[i] is the return of day i + 1
        w = 60
        if t > w:
            # sd of the returns of days t-59 .. t, i.e. r[t-60 : t]
            windows = np.lib.stride_tricks.sliding_window_view(r, w)  # windows[k] = r[k : k+w]
            sd = windows.std(axis=1, ddof=1)  # sd for day k + w
            days = np.arange(w, t)
            z = (logp[days] - logp[days - 5]) / (sd[days - w] * np.sqrt(5.0))
            fire = np.abs(z) > spec.param
            out[days] = np.where(fire, -np.sign(z), 0).astype(np.int8)
    else:  # breakout
        n = int(spec.param)
        if t > n:
            windows = np.lib.stride_tricks.sliding_window_view(p[:-1], n)  # p[k : k+n]
            hi, lo = windows.max(axis=1), windows.min(axis=1)  # channel for day k + n
            days = np.arange(n, t)
            up = p[days] > hi[days - n]
            down = p[days] < lo[days - n]
            out[days] = np.where(up, 1, np.where(down, -1, 0)).astype(np.int8)
    return out


@dataclass(frozen=True)
class ShadowTrades:
    """Every shadow trade, one entry per trade, sorted by open day then signal (arrays).

    Examples
    --------
    Built by :func:`shadow_trades`; one trade by hand:

    >>> import numpy as np
    >>> t = ShadowTrades(signal=np.array(["SP500:momentum_20"], dtype=object),
    ...                  family=np.array(["momentum"], dtype=object), symbol=np.array([0]),
    ...                  open_idx=np.array([20]), settle_idx=np.array([25]),
    ...                  direction=np.array([1]), ret=np.array([0.012]))
    >>> len(t), t.won
    (1, array([ True]))
    """

    signal: np.ndarray  # signal names, e.g. "SP500:momentum_20"
    family: np.ndarray
    symbol: np.ndarray  # symbol index into the price panel's columns
    open_idx: np.ndarray  # day index of the opening close
    settle_idx: np.ndarray  # open_idx + hold
    direction: np.ndarray  # +1 / -1
    ret: np.ndarray  # direction * (P_settle / P_open - 1): return per unit stake (fraction)

    @property
    def won(self) -> np.ndarray:
        """Whether each trade was won (return per unit stake > 0).

        Examples
        --------
        >>> import numpy as np
        >>> t = ShadowTrades(np.array(["a", "b"], dtype=object),
        ...                  np.array(["momentum"] * 2, dtype=object), np.zeros(2, int),
        ...                  np.array([0, 5]), np.array([5, 10]), np.array([1, -1]),
        ...                  np.array([0.01, -0.02]))
        >>> t.won
        array([ True, False])
        """
        return self.ret > 0.0

    def __len__(self) -> int:
        return int(self.open_idx.size)


def signal_names(symbols: tuple[str, ...] | list[str], specs: tuple[SignalSpec, ...]) -> dict:
    """Signal name -> family for every (symbol, spec).

    Examples
    --------
    >>> signal_names(("SP500", "WTI"), (SignalSpec("momentum", 20),))
    {'SP500:momentum_20': 'momentum', 'WTI:momentum_20': 'momentum'}
    """
    return {f"{s}:{spec.name}": spec.family for s in symbols for spec in specs}


def listed_span(prices: np.ndarray, what: str = "prices") -> tuple[int, int]:
    """``(first, stop)``: the rows ``first .. stop - 1`` where a column of an unbalanced panel
    is listed (NaN before its first and after its last price). A gap (NaN) inside the span
    raises naming the row: :func:`load_universe` keeps only dates on which every listed symbol
    has a close.

    Examples
    --------
    >>> import numpy as np
    >>> listed_span(np.array([np.nan, 100.0, 101.0, np.nan]))
    (1, 3)
    """
    ok = ~np.isnan(prices)
    if not ok.any():
        raise ValueError(f"{what} has no price at all")
    first = int(np.argmax(ok))
    stop = int(ok.size - np.argmax(ok[::-1]))
    if not ok[first:stop].all():
        i = first + int(np.argmax(~ok[first:stop]))
        raise ValueError(f"{what} has a gap (NaN) at row {i} inside its listed span")
    return first, stop


def shadow_trades(
    prices: pd.DataFrame, specs: tuple[SignalSpec, ...] = DEFAULT_SIGNALS, hold: int = 5
) -> ShadowTrades:
    """Shadow trades of every (symbol, spec) over a panel of closes (dates x symbols). A signal
    holds one trade at a time; a trade is opened only if its settlement day is in the panel.
    An unbalanced panel (:func:`load_universe`) is allowed: each symbol trades only within its
    listed span (:func:`listed_span`; day indices stay rows of the whole panel).

    Examples
    --------
    2-day momentum held 2 days: long at 103 (day 2, above 100) settled at 106 (+2.91%), then
    long again at 106 (day 4, above 103) settled at 100 (-5.66%):

    >>> import numpy as np
    >>> import pandas as pd
    >>> closes = pd.DataFrame({"A": [100.0, 101.0, 103.0, 102.0, 106.0, 104.0, 100.0]})
    >>> t = shadow_trades(closes, (SignalSpec("momentum", 2),), hold=2)
    >>> t.open_idx, t.settle_idx, t.direction, np.round(t.ret, 4)
    (array([2, 4]), array([4, 6]), array([1, 1]), array([ 0.0291, -0.0566]))
    >>> t.signal[0], t.won
    ('A:momentum_2', array([ True, False]))
    """
    if isinstance(hold, bool) or not isinstance(hold, int | np.integer) or hold <= 0:
        raise ValueError(f"hold must be a positive whole number of days, got {hold!r}")
    if not specs:
        raise ValueError("need at least one signal spec")
    names = {spec.name for spec in specs}
    if len(names) != len(specs):
        raise ValueError(f"signal specs repeat a name: {[s.name for s in specs]}")
    rows: list[tuple] = []
    for j, symbol in enumerate(prices.columns):
        first, stop = listed_span(prices[symbol].to_numpy(dtype=float), f"prices of {symbol!r}")
        if stop - first < 2:
            continue  # a symbol listed for fewer than two days has no signal
        p = check_prices(prices[symbol].to_numpy()[first:stop], f"prices of {symbol!r}")
        for spec in specs:
            d = directions(p, spec)
            name = f"{symbol}:{spec.name}"
            t = 0
            last = p.size - 1 - hold
            while t <= last:
                if d[t] != 0:
                    ret = float(d[t]) * (p[t + hold] / p[t] - 1.0)
                    rows.append((first + t, name, spec.family, j, first + t + hold, int(d[t]), ret))
                    t += hold  # the next trade can open at the settlement close
                else:
                    t += 1
    rows.sort(key=lambda r: (r[0], r[1]))
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 7
    return ShadowTrades(
        signal=np.array(cols[1], dtype=object),
        family=np.array(cols[2], dtype=object),
        symbol=np.array(cols[3], dtype=np.int64),
        open_idx=np.array(cols[0], dtype=np.int64),
        settle_idx=np.array(cols[4], dtype=np.int64),
        direction=np.array(cols[5], dtype=np.int64),
        ret=np.array(cols[6], dtype=float),
    )


def load_prices() -> pd.DataFrame:
    """Daily closes of the S&P 500 and NASDAQ composite ("Adj Close", 1999-2018) and WTI crude
    ("DCOILWTICO") shipped with ``arch``, on their common dates (WTI's missing days dropped).

    Examples
    --------
    >>> frame = load_prices()
    >>> frame.shape, list(frame.columns), str(frame.index[0].date())
    ((5012, 3), ['SP500', 'NASDAQ', 'WTI'], '1999-01-04')
    """
    frame = pd.concat(
        {"SP500": data.load_prices("sp500"), "NASDAQ": data.load_prices("nasdaq"),
         "WTI": data.load_prices("wti")},
        axis=1,
        sort=True,
    ).dropna()  # fmt: skip
    for col in frame.columns:
        check_prices(frame[col].to_numpy(), f"prices of {col!r}")
    return frame.astype(float)


def load_universe(start: str = "1999-01-04") -> pd.DataFrame:
    """The widest real universe the shipped data allow, as an *unbalanced* panel of daily
    closes (dates x :data:`UNIVERSE`), NaN before a symbol's first and after its last close.

    - ``SP500``: skfolio's S&P 500 index (``load_sp500_index``, 1990-2022; the same index as
      arch's ``sp500`` "Adj Close", which ends in 2018, so arch's copy is not added twice);
    - ``NASDAQ``: arch's NASDAQ composite "Adj Close" (1999-2018);
    - ``WTI``: arch's WTI crude ``DCOILWTICO`` (1986-2019);
    - ``MTUM``, ``QUAL``, ``SIZE``, ``USMV``, ``VLUE``: skfolio's five iShares factor ETFs
      (``load_factors_dataset``, 2014-2022).

    From ``start`` (default: the first NASDAQ date, so the backtest's warm-up sees three
    symbols) to the last date of any series. Dates kept: those on which every symbol listed on
    that date (between its own first and last close) has a close, so no listed symbol has a gap
    (WTI's and the equities' holidays differ: a date one of them misses is dropped, as the
    common-dates panel of :func:`load_prices` did). Nothing is downloaded.

    Examples
    --------
    6,018 dates from 1999-01-04 to 2022-12-28; the factor ETFs are listed on 2,260 of them:

    >>> frame = load_universe()
    >>> frame.shape, str(frame.index[-1].date())
    ((6018, 8), '2022-12-28')
    >>> frame.notna().sum().to_dict()
    {'SP500': 6018, 'NASDAQ': 5012, 'WTI': 5014, 'MTUM': 2260, 'QUAL': 2260, 'SIZE': 2260,
     'USMV': 2260, 'VLUE': 2260}
    """
    names = {"SP500": "skfolio_sp500_index", "NASDAQ": "nasdaq", "WTI": "wti",
             **{c: f"skfolio_{c.lower()}" for c in UNIVERSE[3:]}}  # fmt: skip
    cols = {col: data.load_prices(name) for col, name in names.items()}
    frame = pd.concat(cols, axis=1, sort=True).astype(float)
    frame.index = pd.DatetimeIndex(frame.index)
    frame = frame.loc[frame.index >= pd.Timestamp(start)]
    spans = {c: (frame[c].first_valid_index(), frame[c].last_valid_index()) for c in frame}
    listed = pd.DataFrame(
        {c: (frame.index >= a) & (frame.index <= b) for c, (a, b) in spans.items()},
        index=frame.index,
    )
    keep = ~(listed & frame.isna()).any(axis=1)
    frame = frame.loc[keep]
    for col in frame.columns:
        listed_span(frame[col].to_numpy(dtype=float), f"prices of {col!r}")
        seg = frame[col].dropna().to_numpy()
        check_prices(seg, f"prices of {col!r}")
    return frame[list(UNIVERSE)]
