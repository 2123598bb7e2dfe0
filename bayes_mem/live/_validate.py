"""Input checks shared by the live path: each raises with the offending value named."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np


def check_name(value: object, what: str = "signal name") -> str:
    """A non-empty, non-blank string; returned unchanged (names round-trip exactly)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_real(value: object, what: str) -> float:
    """A finite real number (bool refused) as a Python float."""
    kind = type(value)
    if kind is float or kind is int:  # fast path; type(True) is bool, not int
        out = float(value)
    elif isinstance(value, bool | np.bool_) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__} {value!r}")
    else:
        out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


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
    if kind is str and value and not value[0].isspace():  # fast path for the usual id
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
