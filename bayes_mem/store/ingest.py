"""Validation of incoming batches (DataFrames, CSV, Parquet): every problem is reported with its
line, and a batch with any problem is refused whole.

What a value must be (CSV cells are text; DataFrame and Parquet cells may also be typed):

- names (signals, families, symbols, trade ids): the name rule of :mod:`bayes_mem.live.validate`
  (NFC, at most 200 characters, no control or invisible characters, no surrounding whitespace);
  an integer is read as its decimal string. A name breaking the rule is refused, never rewritten.
- numbers: typed numbers (not bool), or text in plain ASCII decimal or scientific notation
  (``-0.0123``, ``1.5e-3``): no ``_`` digit separators, no non-ASCII digits, no surrounding
  whitespace, no ``nan``/``inf``; finite and within the float range.
- timestamps (outcomes' ``settled_at``, ``opened_at``): text in ISO 8601 (``2026-01-02``,
  ``2026-01-02T15:30:00+01:00``, ``...Z``) unless a ``date_format`` (``strptime`` codes, e.g.
  ``%d/%m/%Y %H:%M``) is given, or typed datetimes; a time without an offset is UTC, one with an
  offset is converted to UTC. At most :data:`FUTURE_TOLERANCE` (1 day) after now (UTC).
- dates (returns' ``date``): a calendar date: text ``YYYY-MM-DD`` (ISO 8601; ``YYYYMMDD`` too)
  unless a ``date_format`` without time or offset codes is given (e.g. ``%d/%m/%Y``), or a
  ``datetime.date``, or a naive datetime at midnight; a time of day or an offset is refused (a
  date with an offset is not a calendar date: ``2024-01-02T23:00-01:00`` is January 3 in UTC). At
  most 1 day after today (UTC).
- a header must not repeat a column name (pandas would silently read the first).

Text is never guessed at: ``01/02/2024`` is refused without a ``date_format`` (day-first or
month-first?), as is ``1_0`` or an Arabic-Indic digit for a number.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.live.validate import check_name

MIN_YEAR, MAX_YEAR = 1900, 2200  # the timestamps a trading record can hold
# how far after now (UTC) an outcome's settlement or a return's date may be: a clock or time-zone
# difference, not a date in another year (which would become the panel's last date)
FUTURE_TOLERANCE = dt.timedelta(days=1)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TIME_CODES = re.compile(r"%[-#]?[HIMSfpzZcXT:]")  # strptime codes of a time or an offset


_NO_VALUE: Any = type("_NoValue", (), {"__repr__": lambda self: "<no value>"})()


@dataclass(frozen=True)
class Problem:
    """One bad cell (or header name): where, which column, the value as read, and why.

    Examples
    --------
    >>> from bayes_mem.store import Problem
    >>> p = Problem(3, "pnl", "not a number", "abc")  # CSV line 3, the second data row
    >>> print(p)
    line 3, pnl = 'abc': not a number
    >>> p.to_dict()
    {'line': 3, 'column': 'pnl', 'value': 'abc', 'message': 'not a number'}
    >>> print(Problem("row 7", "signal", "unknown signal 'x'"))  # a DataFrame row, no cell value
    row 7, signal: unknown signal 'x'
    """

    line: int | str  # CSV: file line (header = 1); DataFrame: "row <index label>"
    column: str
    message: str
    value: Any = _NO_VALUE  # the cell as read (left out for header and cross-row problems)

    def __str__(self) -> str:
        where = f"line {self.line}" if isinstance(self.line, int) else str(self.line)
        if self.value is _NO_VALUE:
            return f"{where}, {self.column}: {self.message}"
        return f"{where}, {self.column} = {self.value!r:.80}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: line, column, value (as text; None when not a cell) and message.

        Examples
        --------
        >>> Problem("header", "pnl", "missing column").to_dict()  # no cell: value None
        {'line': 'header', 'column': 'pnl', 'value': None, 'message': 'missing column'}
        """
        value = None if self.value is _NO_VALUE else _json_value(self.value)
        return {"line": self.line, "column": self.column, "value": value,
                "message": self.message}  # fmt: skip


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and value.bit_length() < 54:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return repr(value)[:200]


BAD: Any = type("_Bad", (), {"__repr__": lambda self: "<bad cell>"})()


def parse_cells(line: int | str, problems: list[Problem], cells: dict[str, tuple]) -> dict:
    """Parse every cell of one row: ``cells`` maps a column to ``(value, parser, kwargs)``; each
    cell that does not parse is recorded in ``problems`` by its own column (all of them, not
    only the first) and is :data:`BAD` in the result.

    Examples
    --------
    Both bad cells of the row are reported, each under its own column:

    >>> problems = []
    >>> row = parse_cells(2, problems, {"won": ("yes", parse_bool, {}),
    ...                                 "pnl": ("1,5", parse_float, {}),
    ...                                 "signal": ("mom_a", parse_name, {"what": "signal"})})
    >>> row["signal"], row["won"] is BAD, [p.column for p in problems]
    ('mom_a', True, ['won', 'pnl'])
    """
    out = {}
    for column, (value, parse, kwargs) in cells.items():
        try:
            out[column] = parse(value, **kwargs)
        except ValueError as exc:
            problems.append(Problem(line, column, str(exc), value))
            out[column] = BAD
    return out


class IngestError(ValueError):
    """A batch was refused; ``problems`` lists every bad value with its line.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from bayes_mem.store import IngestError, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> batch = pd.DataFrame({"symbol": ["SPY", "SPY"], "date": ["2026-03-02", "03/03/2026"],
    ...                       "return": [0.004, "n/a"]})
    >>> try:
    ...     store.ingest_returns(batch, kind="log")
    ... except IngestError as exc:
    ...     print([(p.line, p.column, p.value) for p in exc.problems])
    [('row 1', 'date', '03/03/2026'), ('row 1', 'return', 'n/a')]
    >>> len(store.returns_panel())  # nothing written
    0
    >>> store.close()
    >>> tmp.cleanup()
    """

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{what}: {len(problems)} problem(s), nothing written: {shown}{more}")


def read_table(source: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, bool]:
    """A DataFrame from a frame, a CSV or a Parquet file; the flag says whether lines are file
    lines (CSV) rather than row labels. A repeated column name is refused.

    Examples
    --------
    A CSV is read as text, and its lines are file lines (the header is line 1):

    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "returns.csv")
    >>> import pandas as pd
    >>> pd.DataFrame({"symbol": ["SPY"], "date": ["2026-03-02"], "return": [0.004]}).to_csv(
    ...     path, index=False)
    >>> frame, from_csv = read_table(path)
    >>> frame["return"].tolist(), from_csv, line_of(frame, 0, from_csv)
    (['0.004'], True, 2)
    >>> tmp.cleanup()
    """
    if isinstance(source, pd.DataFrame):
        _unique_columns([str(c) for c in source.columns])
        return source, False
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:  # pandas renames repeats "x.1"
            header = next(csv.reader(fh), [])
        _unique_columns(header)
        # everything as text: types are checked per value so bad cells are reported, not coerced
        return pd.read_csv(path, dtype=str, keep_default_na=False), True
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        _unique_columns([str(c) for c in frame.columns])
        return frame, False
    raise ValueError(f"unsupported file type {suffix!r}: use .csv or .parquet")


def _unique_columns(names: list[str]) -> None:
    seen: set[str] = set()
    repeated = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if repeated:
        raise IngestError(
            "header", [Problem("header", n, "column repeated (which one is meant?)")
                       for n in repeated]
        )  # fmt: skip


def line_of(frame: pd.DataFrame, position: int, from_csv: bool) -> int | str:
    """Where row ``position`` of ``frame`` is, for a message: its file line (CSV, the header
    line 1) or its index label.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"pnl": [1.0, 2.0]}, index=[10, 11])
    >>> line_of(frame, 1, from_csv=True), line_of(frame, 1, from_csv=False)
    (3, 'row 11')
    """
    if from_csv:
        return position + 2
    label = frame.index[position]
    if isinstance(label, np.generic):  # numpy 2 would print np.int64(5)
        label = label.item()
    return f"row {label!r}"


def require_columns(frame: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    """Raise :class:`IngestError` naming every column of ``required`` that ``frame`` lacks.

    Examples
    --------
    >>> import pandas as pd
    >>> try:
    ...     require_columns(pd.DataFrame({"symbol": []}), ("symbol", "date", "return"), "returns")
    ... except IngestError as exc:
    ...     print(exc)
    returns: 2 problem(s), nothing written: header, date: missing column; header, return:
    missing column
    """
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise IngestError(what, [Problem("header", c, "missing column") for c in missing])


def parse_name(value: Any, what: str = "name") -> str:
    """A name by the rule of :func:`~bayes_mem.live.validate.check_name`; an integer (a numeric
    id in a typed column) is read as its decimal string.

    Examples
    --------
    >>> parse_name("mom_a", "signal"), parse_name(1042, "trade_id")  # an int id becomes text
    ('mom_a', '1042')
    """
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        number = int(value)
        if number.bit_length() > 700:  # more than 200 digits
            raise ValueError(f"{what} must be at most 200 characters, got an integer that long")
        value = str(number)
    if not isinstance(value, str):
        raise ValueError(f"expected a non-empty {what}, got {type(value).__name__} {value!r:.80}")
    return check_name(value, what)


def parse_bool(value: Any) -> bool:
    """A bool: typed, or the text ``true`` / ``false`` (any case, surrounding blanks ignored).

    Examples
    --------
    >>> parse_bool(" TRUE "), parse_bool(False)
    (True, False)
    >>> try:
    ...     parse_bool("yes")
    ... except ValueError as exc:
    ...     print(exc)
    expected true or false, got 'yes'
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def parse_float(value: Any) -> float:
    """A finite number: typed (not bool), or text in plain ASCII decimal/scientific notation.

    Examples
    --------
    >>> parse_float("-1.5e-3"), parse_float(7)
    (-0.0015, 7.0)
    >>> try:
    ...     parse_float("1,5")  # a decimal comma is refused, not guessed
    ... except ValueError as exc:
    ...     print(str(exc)[:58])
    expected a number in plain decimal or scientific notation
    """
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value) or not value.isascii():
            raise ValueError(
                f"expected a number in plain decimal or scientific notation (e.g. -0.0123, "
                f"1.5e-3), got {value!r:.80}"
            )
    elif isinstance(value, bool | np.bool_) or not isinstance(value, Real | Decimal):
        # typed: int, float, numpy numbers, Decimal (Parquet decimals), Fraction; not complex
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.80}")
    try:
        out = float(value)
    except OverflowError:  # a Python int beyond the float range
        raise ValueError(f"number beyond the float range: {value!r:.40}") from None
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r:.80}") from None
    if not math.isfinite(out):
        raise ValueError(f"expected a finite number, got {value!r:.80}")
    return out


def check_date_format(date_format: object, *, dates: bool = False) -> str | None:
    """None (ISO 8601) or a ``strptime`` format string; for ``dates`` (calendar dates) without
    time or offset codes.

    Examples
    --------
    >>> print(check_date_format(None)), check_date_format("%d/%m/%Y", dates=True)
    None
    (None, '%d/%m/%Y')
    >>> try:
    ...     check_date_format("%d/%m/%y")
    ... except ValueError as exc:
    ...     print(str(exc)[:48])
    date_format '%d/%m/%y' has a two-digit year (%y)
    """
    if date_format is None:
        return None
    if not isinstance(date_format, str):
        raise TypeError(f"date_format must be a str or None, got {type(date_format).__name__}")
    if "%" not in date_format:
        raise ValueError(f"date_format must be a strptime format like '%d/%m/%Y', got "
                         f"{date_format!r}")  # fmt: skip
    if re.search(r"%[-#]?y", date_format):  # strptime puts 69-99 in the 1900s, 00-68 in the 2000s
        raise ValueError(f"date_format {date_format!r} has a two-digit year (%y), whose century "
                         f"would be guessed: use %Y")  # fmt: skip
    if dates and _TIME_CODES.search(date_format):
        raise ValueError(f"a date format must not hold a time or an offset, got {date_format!r}")
    return date_format


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_timestamp(
    value: Any,
    *,
    optional: bool = False,
    date_format: str | None = None,
    not_after: dt.datetime | None = None,
) -> pd.Timestamp | None:
    """A UTC timestamp: ISO 8601 text (or text in ``date_format``), or a typed datetime/date; a
    naive time is UTC. ``not_after``: the latest instant accepted (e.g. now + 1 day).

    Examples
    --------
    A time with an offset is converted to UTC; a naive one is taken as UTC:

    >>> parse_timestamp("2026-03-02T15:30:00+01:00")
    Timestamp('2026-03-02 14:30:00+0000', tz='UTC')
    >>> parse_timestamp("02/03/2026 16:00", date_format="%d/%m/%Y %H:%M")
    Timestamp('2026-03-02 16:00:00+0000', tz='UTC')
    >>> print(parse_timestamp("", optional=True))
    None
    """
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if optional and isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str):
        when = _parse_text(value, date_format)
        ts = pd.Timestamp(when)
    elif isinstance(value, dt.datetime | dt.date | np.datetime64):
        # typed values are unambiguous; numbers would be read as nanoseconds since 1970
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"expected a timestamp, got {value!r}") from None
    else:
        raise ValueError(f"expected a timestamp, got {type(value).__name__} {value!r:.80}")
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"expected a timestamp, got {value!r}")
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        raise ValueError(f"timestamp {value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if not_after is not None and ts > not_after:
        raise ValueError(
            f"timestamp {value!r:.60} is in the future (after {not_after:%Y-%m-%d %H:%M} UTC)"
        )
    return ts


def _parse_text(value: str, date_format: str | None) -> dt.datetime:
    if not value.isascii():  # strptime's \d would read other scripts' digits
        raise ValueError(f"expected an ASCII timestamp, got {value!r:.80}")
    if date_format is None:
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"expected an ISO 8601 timestamp (e.g. 2026-01-02 or 2026-01-02T15:30:00+01:00; "
                f"other layouts need a date format), got {value!r:.80}"
            ) from None
    check_date_format(date_format)
    try:
        return dt.datetime.strptime(value, date_format)
    except ValueError:
        raise ValueError(f"expected a timestamp in the format {date_format!r}, got "
                         f"{value!r:.80}") from None  # fmt: skip


def parse_date(
    value: Any, *, date_format: str | None = None, not_after: dt.date | None = None
) -> pd.Timestamp:
    """A calendar date (midnight UTC as a Timestamp): ``YYYY-MM-DD`` text (or text in a
    ``date_format`` without time or offset codes), a ``datetime.date``, or a naive datetime at
    midnight. A time of day or an offset is refused. ``not_after``: the latest date accepted.

    Examples
    --------
    >>> parse_date("2026-03-02"), parse_date("02/03/2026", date_format="%d/%m/%Y")
    (Timestamp('2026-03-02 00:00:00+0000', tz='UTC'),
     Timestamp('2026-03-02 00:00:00+0000', tz='UTC'))
    >>> try:
    ...     parse_date(dt.datetime(2026, 3, 2, 15, 30))  # a time of day is not a date
    ... except ValueError as exc:
    ...     print(str(exc)[:34])
    expected a date, got a time of day
    """
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError(f"expected an ASCII date, got {value!r:.80}")
        if date_format is None:
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f"expected an ISO 8601 date YYYY-MM-DD (a calendar date: no time or offset; "
                    f"other layouts need a date format), got {value!r:.80}"
                ) from None
        else:
            check_date_format(date_format, dates=True)
            try:
                day = dt.datetime.strptime(value, date_format).date()
            except ValueError:
                raise ValueError(f"expected a date in the format {date_format!r}, got "
                                 f"{value!r:.80}") from None  # fmt: skip
        ts = pd.Timestamp(day)
    elif type(value) is dt.date:
        ts = pd.Timestamp(value)
    elif isinstance(value, dt.datetime | np.datetime64):
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"expected a date, got {value!r}") from None
        if ts is pd.NaT or pd.isna(ts):
            raise ValueError(f"expected a date, got {value!r}")
        if ts.tzinfo is not None:
            raise ValueError(f"expected a calendar date, got a time zone in {value!r}")
        if ts != ts.normalize():
            raise ValueError(f"expected a date, got a time of day in {value!r}")
    elif isinstance(value, dt.date):  # a date subclass
        ts = pd.Timestamp(dt.date(value.year, value.month, value.day))
    else:
        raise ValueError(f"expected a date, got {type(value).__name__} {value!r:.80}")
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        raise ValueError(f"date {value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    if not_after is not None and ts.date() > not_after:
        raise ValueError(f"date {value!r:.60} is in the future (after {not_after} UTC)")
    return ts.tz_localize("UTC")


def latest_accepted() -> dt.datetime:
    """The latest settlement instant (and, as a date, return date) accepted now.

    Examples
    --------
    One day ahead of now (UTC), the tolerance for clocks and time zones:

    >>> ahead = latest_accepted() - dt.datetime.now(dt.UTC)
    >>> dt.timedelta(hours=23, minutes=59) < ahead <= FUTURE_TOLERANCE
    True
    """
    return _utcnow() + FUTURE_TOLERANCE
