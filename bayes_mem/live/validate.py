"""Input checks shared by the live path: each raises with the offending value named.

A public module of the lowest layer (live): the store, the offline job and the evaluation import
it too, so one rule holds from the trader's call to the database column.

Names (signals, families, symbols, configurations, trade ids, decision keys) follow one rule,
:func:`check_name`, wherever they enter (the decider, the engine, prior sets, snapshots, the store
and its ingest), so that two names that look the same are the same name and every name the live
path accepts is one the store can hold:

- a ``str`` of 1 to :data:`NAME_LENGTH` (200) characters (Unicode code points);
- in Unicode normalisation form NFC: "A" followed by U+030A COMBINING RING ABOVE is refused with
  its NFC form, U+00C5, suggested. A name is never rewritten: the caller's text is what is
  stored and compared, so a name the caller holds in another form would silently miss it;
- no control, format, surrogate, private-use, unassigned or line/paragraph separator characters
  (Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp: NUL, tab, newline, zero-width space and joiner,
  bidirectional marks, the BOM ...), no whitespace but the ASCII space (U+0020) (no no-break or
  ideographic spaces), and none of the other invisible code points (:data:`INVISIBLE`: the
  remaining Default_Ignorable_Code_Points such as variation selectors and Hangul fillers, and
  the blank Braille pattern);
- not beginning or ending with a space.

ASCII names (the usual case) are checked without any Unicode table look-up.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from numbers import Integral, Real
from typing import Any, cast, overload

import numpy as np

NAME_LENGTH = 200  # characters: the store's VARCHAR(200) columns (bayes_mem.store.schema)

# Invisible code points that are letters or marks, hence printable for ``str.isprintable``: the
# Default_Ignorable_Code_Points outside the categories refused anyway (Unicode 15
# DerivedCoreProperties.txt) and U+2800 BRAILLE PATTERN BLANK.
INVISIBLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2800\u3164\ufe00-\ufe0f\uffa0"
    "\U000e0100-\U000e01ef]"
)
_CONTROL_NAMES = {"\x00": "NUL", "\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN"}


def check_name(value: object, what: str = "signal name") -> str:
    """A name by the rule of the module docstring, returned unchanged (names round-trip exactly);
    TypeError for a non-string, ValueError naming the value and the offending character
    otherwise.

    Examples
    --------
    >>> check_name("momentum 20d")
    'momentum 20d'
    >>> check_name(" SPY", "symbol")
    Traceback (most recent call last):
    ...
    ValueError: symbol must not begin or end with whitespace, got ' SPY'
    >>> check_name("A\\u030a")  # A + combining ring: not NFC
    Traceback (most recent call last):
    ...
    ValueError: signal name 'A\\u030a' is not in Unicode NFC form: write it as '\\xc5'
    """
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()  # for ASCII: no control characters
        and value.strip() == value
        and 0 < len(value) <= NAME_LENGTH
    ):  # fast path (~40 ns): no Unicode tables needed
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r:.80}")
    problem = _name_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {problem}")
    return value


def _name_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a name (None: nothing)."""
    if not value or value.isspace():
        return f"must be a non-empty string, got {value!r:.80}"
    if len(value) > NAME_LENGTH:
        return f"must be at most {NAME_LENGTH} characters, got {len(value)}: {value!r:.60}"
    if value[0].isspace() or value[-1].isspace():
        return f"must not begin or end with whitespace, got {value!r:.80}"
    if not value.isprintable() or INVISIBLE.search(value):
        i, c = next(
            (i, c) for i, c in enumerate(value) if not c.isprintable() or INVISIBLE.match(c)
        )
        cat = unicodedata.category(c)
        label = _CONTROL_NAMES.get(c) or unicodedata.name(
            c, "a control character" if cat == "Cc" else "an unnamed character"
        )
        return (
            f"must not contain U+{ord(c):04X} {label} (category {cat}; "
            f"control, format, invisible and separator characters other than the ASCII space "
            f"are refused), at position {i} of {value!r:.80}"
        )
    if not unicodedata.is_normalized("NFC", value):
        nfc = unicodedata.normalize("NFC", value)
        return f"{value!a:.80} is not in Unicode NFC form: write it as {nfc!a:.80}"
    return None


def check_real(value: object, what: str) -> float:
    """A finite real number (bool refused) as a Python float.

    Examples
    --------
    >>> import numpy as np
    >>> check_real(3, "x"), check_real(np.float32(0.5), "x")
    (3.0, 0.5)
    >>> check_real(True, "x")
    Traceback (most recent call last):
    ...
    TypeError: x must be a real number, got bool True
    >>> check_real(float("nan"), "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be finite, got nan
    """
    if type(value) is float:  # fast path
        out = value
    elif type(value) is int or (  # type(True) is bool, not int
        isinstance(value, Real) and not isinstance(value, bool | np.bool_)
    ):
        try:
            out = float(value)
        except OverflowError:  # an integer beyond the float range
            out = math.inf
    else:
        raise TypeError(f"{what} must be a real number, got {type(value).__name__} {value!r}")
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r:.60}")
    return out


def as_float_array(value: object, what: str) -> np.ndarray:
    """``value`` as a float array; what numpy cannot read as numbers is refused, naming ``what``
    (rather than numpy's "could not convert ..."). Booleans and strings are refused even where
    numpy would convert them ("0.5", True): they are never meant as numbers here.

    Examples
    --------
    >>> as_float_array([1, 2.5], "mu").tolist()
    [1.0, 2.5]
    >>> as_float_array(["0.5"], "mu")
    Traceback (most recent call last):
    ...
    TypeError: mu must be numbers, got list ['0.5']
    """
    try:
        raw = np.asarray(value)
        out = np.asarray(raw, dtype=float)
    except OverflowError as exc:  # a Python int beyond the float range, e.g. 10**400
        raise TypeError(
            f"{what} must be numbers within the float range, got {type(value).__name__} "
            f"{value!r:.80}"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise _not_numbers(value, what) from exc
    not_numbers = str | bytes | bool | np.bool_
    if raw.dtype.kind in "bUS" or (
        raw.dtype.kind == "O" and any(isinstance(v, not_numbers) for v in raw.flat)
    ):
        raise _not_numbers(value, what)
    return out


def _not_numbers(value: object, what: str) -> TypeError:
    # built only on failure: the repr of a large array costs milliseconds
    return TypeError(f"{what} must be numbers, got {type(value).__name__} {value!r:.80}")


def check_positive(value: object, what: str) -> float:
    """A finite real number > 0 (:func:`check_real`), as a Python float.

    Examples
    --------
    >>> check_positive(2, "sd")
    2.0
    >>> check_positive(0, "sd")
    Traceback (most recent call last):
    ...
    ValueError: sd must be > 0, got 0
    """
    out = check_real(value, what)
    if out <= 0.0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return out


def check_probability_open(value: object, what: str) -> float:
    """A probability strictly inside (0, 1).

    Examples
    --------
    >>> check_probability_open(0.9, "prob")
    0.9
    >>> check_probability_open(1.0, "prob")
    Traceback (most recent call last):
    ...
    ValueError: prob must be in (0, 1), got 1.0
    """
    out = check_real(value, what)
    if not 0.0 < out < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {value!r}")
    return out


MIN_LEVEL = 1e-10


def check_level(value: object, what: str = "level") -> float:
    """A confidence level in [MIN_LEVEL, 1). Low levels ask for the upper tail (e.g. a short
    position's): its probability ``level`` is resolved through the predictive CDF near 1, whose
    double-precision resolution (~1e-16) is a relative 1e-6 of a 1e-10 tail; below that VaR would
    be noise (and below ~1e-16, ``1 - level`` rounds to 1).

    Examples
    --------
    >>> check_level(0.975), check_level(0.025)  # the lower and the upper tail
    (0.975, 0.025)
    >>> check_level(1e-12)
    Traceback (most recent call last):
    ...
    ValueError: level must be >= 1e-10 (upper-tail probability), got 1e-12
    """
    out = check_probability_open(value, what)
    if out < MIN_LEVEL:
        raise ValueError(f"{what} must be >= {MIN_LEVEL} (upper-tail probability), got {value!r}")
    return out


def check_discount(value: object, what: str = "discount") -> float:
    """A forgetting factor in (0, 1].

    Examples
    --------
    >>> check_discount(1), check_discount(0.99)  # 1: no forgetting
    (1.0, 0.99)
    >>> check_discount(0.0)
    Traceback (most recent call last):
    ...
    ValueError: discount must be in (0, 1], got 0.0
    """
    out = check_real(value, what)
    if not 0.0 < out <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return out


def check_bool(value: object, what: str) -> bool:
    """True/False (Python or numpy bool); 0/1 and strings are refused as ambiguous.

    Examples
    --------
    >>> import numpy as np
    >>> check_bool(np.bool_(True), "flag")
    True
    >>> check_bool(1, "flag")
    Traceback (most recent call last):
    ...
    TypeError: flag must be a bool, got int 1
    """
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{what} must be a bool, got {type(value).__name__} {value!r}")


def check_int(value: object, what: str, minimum: int | None = None) -> int:
    """An integer (Python or numpy; bool and float refused) as a Python int, at least
    ``minimum`` when given.

    Examples
    --------
    >>> import numpy as np
    >>> check_int(np.int64(5), "n", minimum=1)
    5
    >>> check_int(2.0, "n")
    Traceback (most recent call last):
    ...
    TypeError: n must be an integer, got float 2.0
    >>> check_int(0, "n", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """
    if type(value) is int:  # fast path; type(True) is bool
        if minimum is not None and value < minimum:
            raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, Integral):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    out = int(value)
    if minimum is not None and out < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return out


@overload
def check_trade_id(value: None, what: str = ...) -> None: ...
@overload
def check_trade_id(value: str | int, what: str = ...) -> str: ...
@overload
def check_trade_id(value: object, what: str = ...) -> str | None: ...
def check_trade_id(value: object, what: str = "trade_id") -> str | None:
    """None, a string by the name rule (:func:`check_name`: at most :data:`NAME_LENGTH`
    characters ...) or an integer, keyed by its decimal string (at most :data:`NAME_LENGTH`
    characters too).

    Examples
    --------
    An integer id is keyed by its decimal string, so ``42`` and ``"42"`` are the same trade:

    >>> check_trade_id(42), check_trade_id("42"), check_trade_id(None)
    ('42', '42', None)
    >>> check_trade_id(True)
    Traceback (most recent call last):
    ...
    TypeError: trade_id must be a str, an int or None, got bool True
    """
    if (
        type(value) is str
        and value.isascii()
        and value.isprintable()
        and value.strip() == value
        and 0 < len(value) <= NAME_LENGTH
    ):  # the usual id: check_name's fast path, inlined (record() is a hot path)
        return value
    if type(value) is int and _ID_INT_MIN < value < _ID_INT_MAX:
        return str(value)
    if value is None:
        return None
    if isinstance(value, str):
        return check_name(value, what)
    if isinstance(value, Integral) and not isinstance(value, bool | np.bool_):
        number = int(value)
        if not _ID_INT_MIN < number < _ID_INT_MAX:  # its decimal string is too long
            digits = len(str(number)) if number.bit_length() < 10_000 else "over 3,000"
            head = str(number)[:40] if number.bit_length() < 10_000 else f"{number:.3e}"
            raise ValueError(
                f"{what} must be at most {NAME_LENGTH} characters, got an integer of {digits} "
                f"characters: {head}..."
            )
        return str(number)
    raise TypeError(f"{what} must be a str, an int or None, got {type(value).__name__} {value!r}")


# integer ids whose decimal string has at most NAME_LENGTH characters (a minus sign included)
_ID_INT_MIN, _ID_INT_MAX = -(10 ** (NAME_LENGTH - 1)), 10**NAME_LENGTH


def check_time(value: object, what: str, *, not_after: dt.datetime | None = None) -> dt.datetime:
    """A point in time as a timezone-aware UTC datetime: a datetime (naive: UTC; a
    ``pandas.Timestamp`` is one), a date (its 00:00 UTC) or ISO 8601 text; ``not_after`` (aware)
    the latest instant accepted. Anything else (None, NaN, NaT, numbers) raises naming it.

    Examples
    --------
    New York's 09:30 (UTC-5) is 14:30 UTC; a date is its midnight UTC:

    >>> import datetime as dt
    >>> check_time("2026-03-02T09:30:00-05:00", "opened_at").isoformat()
    '2026-03-02T14:30:00+00:00'
    >>> check_time(dt.date(2026, 3, 2), "opened_at").isoformat()
    '2026-03-02T00:00:00+00:00'
    >>> check_time("2026-13-01", "opened_at")
    Traceback (most recent call last):
    ...
    ValueError: opened_at must be an ISO 8601 time, got '2026-13-01'
    """
    when = value
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when.strip())
        except ValueError:
            raise ValueError(f"{what} must be an ISO 8601 time, got {value!r:.80}") from None
    if isinstance(when, dt.datetime):
        if when != when:  # NaT
            raise ValueError(f"{what} must be a time, got {value!r}")
        when = when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    elif isinstance(when, dt.date):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    else:
        raise TypeError(
            f"{what} must be a datetime, a date or ISO 8601 text, got "
            f"{type(value).__name__} {value!r:.80}"
        )
    if not_after is not None and when > not_after:
        raise ValueError(f"{what} {value!r:.80} is after {not_after.isoformat()}")
    return when


def check_trade_times(
    settled_at: object, opened_at: object
) -> tuple[dt.datetime, dt.datetime | None]:
    """A settled trade's ``(settled, opened)`` as UTC datetimes (:func:`check_time`), as the
    store accepts them: settled at most a day from now (default: now), opened (optional) not
    after it.

    Examples
    --------
    >>> settled, opened = check_trade_times("2026-03-02T16:00Z", "2026-03-02T10:00")
    >>> settled.isoformat(), opened.isoformat()
    ('2026-03-02T16:00:00+00:00', '2026-03-02T10:00:00+00:00')
    >>> check_trade_times("2026-03-02", "2026-03-03")  # opened after it settled
    Traceback (most recent call last):
    ...
    ValueError: opened_at '2026-03-03' is after 2026-03-02T00:00:00+00:00
    """
    latest = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    settled = (
        latest - dt.timedelta(days=1)
        if settled_at is None
        else check_time(settled_at, "settled_at", not_after=latest)
    )
    opened = None if opened_at is None else check_time(opened_at, "opened_at", not_after=settled)
    return settled, opened


def check_schema(
    data: object,
    expected: str,
    *,
    also: Collection[str] = (),
    show_found: bool = True,
    message: Callable[[object], str] | None = None,
    error: type[Exception] = ValueError,
    mapping: type | tuple[type, ...] = Mapping,
) -> str:
    """The ``"schema"`` of a stored document (a snapshot, a prior set) read back, checked.

    Parameters
    ----------
    data : object
        The parsed document; it must be a ``mapping`` (default any :class:`Mapping`).
    expected : str
        The schema this reader writes, e.g. ``"bayes_mem.payoff/1"``.
    also : collection of str
        Other schemas it reads (older or extended versions).
    show_found : bool
        Whether the default message ends with what was found: ``"not a <expected> snapshot
        (schema: <found>)"``, else ``"not a <expected> snapshot"``.
    message : callable, optional
        The error's text instead, from what was found (the document's ``"schema"``, ``None``
        if absent, or the type's name when ``data`` is not a mapping).
    error : exception type
        Raised when the schema is neither ``expected`` nor in ``also`` (default ValueError).
    mapping : type or tuple of types
        What counts as a document.

    Returns
    -------
    str
        The document's schema (``expected`` or one of ``also``).

    Examples
    --------
    >>> check_schema({"schema": "bayes_mem.payoff/1"}, "bayes_mem.payoff/1")
    'bayes_mem.payoff/1'
    >>> check_schema([], "bayes_mem.payoff/1")
    Traceback (most recent call last):
    ...
    ValueError: not a bayes_mem.payoff/1 snapshot (schema: 'list')
    """
    is_doc = isinstance(data, mapping)
    schema = cast(Mapping[str, Any], data).get("schema") if is_doc else None
    if schema != expected and schema not in also:
        got = schema if is_doc else type(data).__name__
        if message is not None:
            raise error(message(got))
        raise error(f"not a {expected} snapshot" + (f" (schema: {got!r})" if show_found else ""))
    return cast(str, schema)
