"""Input checks shared by the live path: each raises with the offending value named."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def check_name(value: object, what: str = "signal name") -> str:
    """A non-empty, non-blank string without NUL characters (no database stores them: names
    must round-trip through the store); returned unchanged (names round-trip exactly)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters, got {value!r:.80}")
    return value


def check_real(value: object, what: str) -> float:
    """A finite real number (bool refused) as a Python float."""
    kind = type(value)
    if kind is float:  # fast path
        out = value
    elif kind is not int and (isinstance(value, bool | np.bool_) or not isinstance(value, Real)):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__} {value!r}")
    else:  # type(True) is bool, not int
        try:
            out = float(value)
        except OverflowError:  # an integer beyond the float range
            out = math.inf
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r:.60}")
    return out


def as_float_array(value: object, what: str) -> np.ndarray:
    """``value`` as a float array; what numpy cannot read as numbers is refused, naming ``what``
    (rather than numpy's "could not convert ..."). Booleans and strings are refused even where
    numpy would convert them ("0.5", True): they are never meant as numbers here."""
    try:
        raw = np.asarray(value)
        out = np.asarray(raw, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
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
    out = check_real(value, what)
    if out <= 0.0:
        raise ValueError(f"{what} must be > 0, got {value!r}")
    return out


def check_probability_open(value: object, what: str) -> float:
    """A probability strictly inside (0, 1)."""
    out = check_real(value, what)
    if not 0.0 < out < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {value!r}")
    return out


MIN_LEVEL = 1e-10


def check_level(value: object, what: str = "level") -> float:
    """A confidence level in [MIN_LEVEL, 1). Low levels ask for the upper tail (e.g. a short
    position's): its probability ``level`` is resolved through the predictive CDF near 1, whose
    double-precision resolution (~1e-16) is a relative 1e-6 of a 1e-10 tail; below that VaR would
    be noise (and below ~1e-16, ``1 - level`` rounds to 1)."""
    out = check_probability_open(value, what)
    if out < MIN_LEVEL:
        raise ValueError(f"{what} must be >= {MIN_LEVEL} (upper-tail probability), got {value!r}")
    return out


def check_discount(value: object, what: str = "discount") -> float:
    """A forgetting factor in (0, 1]."""
    out = check_real(value, what)
    if not 0.0 < out <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return out


def check_bool(value: object, what: str) -> bool:
    """True/False (Python or numpy bool); 0/1 and strings are refused as ambiguous."""
    if value is True or value is False:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{what} must be a bool, got {type(value).__name__} {value!r}")


def check_int(value: object, what: str, minimum: int | None = None) -> int:
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


def check_trade_id(value: object) -> str | None:
    """None, a non-empty string or an integer; integers are keyed by their decimal string."""
    kind = type(value)
    if kind is str and value and not value[0].isspace() and "\x00" not in value:  # usual id
        return value
    if kind is int:
        return str(value)
    if value is None:
        return None
    if isinstance(value, str):
        return check_name(value, "trade_id")
    if isinstance(value, Integral) and not isinstance(value, bool | np.bool_):
        return str(int(value))
    raise TypeError(f"trade_id must be a str, an int or None, got {type(value).__name__} {value!r}")
