"""Validation of incoming batches (DataFrames, CSV, Parquet): every problem is reported with its
line, and a batch with any problem is refused whole."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MIN_YEAR, MAX_YEAR = 1900, 2200  # the timestamps a trading record can hold


@dataclass(frozen=True)
class Problem:
    line: int | str  # CSV: file line (header = 1); DataFrame: "row <index label>"
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if isinstance(self.line, int) else str(self.line)
        return f"{where}, {self.column}: {self.message}"


class IngestError(ValueError):
    """A batch was refused; ``problems`` lists every bad value with its line."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{what}: {len(problems)} problem(s), nothing written: {shown}{more}")


def read_table(source: pd.DataFrame | str | Path) -> tuple[pd.DataFrame, bool]:
    """A DataFrame from a frame, a CSV or a Parquet file; the flag says whether lines are file
    lines (CSV) rather than row labels."""
    if isinstance(source, pd.DataFrame):
        return source, False
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # everything as text: types are checked per value so bad cells are reported, not coerced
        return pd.read_csv(path, dtype=str, keep_default_na=False), True
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path), False
    raise ValueError(f"unsupported file type {suffix!r}: use .csv or .parquet")


def line_of(frame: pd.DataFrame, position: int, from_csv: bool) -> int | str:
    if from_csv:
        return position + 2
    label = frame.index[position]
    if isinstance(label, np.generic):  # numpy 2 would print np.int64(5)
        label = label.item()
    return f"row {label!r}"


def require_columns(frame: pd.DataFrame, required: tuple[str, ...], what: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise IngestError(what, [Problem("header", c, "missing column") for c in missing])


def parse_name(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a non-empty name, got {value!r}")
    if isinstance(value, int | np.integer):
        return str(int(value))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty name, got {value!r}")
    if len(value) > 200:
        raise ValueError(f"name longer than 200 characters ({len(value)})")
    if "\x00" in value:  # PostgreSQL cannot store NUL in text; refused on every backend
        raise ValueError(f"names must not contain NUL characters, got {value!r:.80}")
    return value


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {value!r}")


def parse_float(value: Any) -> float:
    if isinstance(value, bool | np.bool_) or value is None:
        raise ValueError(f"expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"expected a finite number, got {value!r}")
    return out


def parse_timestamp(value: Any, *, optional: bool = False) -> pd.Timestamp | None:
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if optional and isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, str | dt.datetime | dt.date | np.datetime64):
        # numbers would be read as nanoseconds since 1970
        raise ValueError(f"expected a timestamp, got {type(value).__name__} {value!r}")
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"expected a timestamp, got {value!r}") from None
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"expected a timestamp, got {value!r}")
    if not MIN_YEAR <= ts.year <= MAX_YEAR:
        raise ValueError(f"timestamp {value!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_date(value: Any) -> pd.Timestamp:
    ts = parse_timestamp(value)
    assert ts is not None
    if ts != ts.normalize():
        raise ValueError(f"expected a date, got a time of day in {value!r}")
    return ts
