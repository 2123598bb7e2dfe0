"""Walk-forward risk forecasts of the production returns model: the nightly job's pooled fit.

The risk comparison (:mod:`bayes_mem.evaluation.compare`) forecasts each real series on its own;
the trader's return model comes from the nightly job's *pooled* PyMC fit of all symbols at once.
This module runs that fit walk-forward on the real series together, as the job would have run:

- **Refits.** On the union calendar of the series (:func:`panel`), every ``cadence`` trading
  days from the first day any series has ``window`` days of history, the nightly job's returns
  component (:func:`bayes_mem.offline.recalibrate.fit_returns`, at
  :class:`~bayes_mem.offline.recalibrate.RecalibrationConfig`'s settings: the last
  ``returns_window`` = 1,000 days, 4 chains x 1,000 draws after 1,000 tuning steps, the
  holdout, the gate and its retries; ``returns_draws`` = 200 draws per symbol) is fitted on the
  returns *before* that day. Symbols with fewer than ``returns_min_days`` returns in the window
  are left out of that fit, as the job leaves them out.
- **Between refits** each symbol's published variance state (after its last fitted return) is
  rolled forward day by day through its own returns, as the engine does after a prior set's
  ``data_through``. A refit the gate refuses keeps the previous posterior (the job keeps the
  live set); its days are counted in ``failed_refits``.
- **Forecasts** per series on the same days as the other models (the days after the series'
  first ``window`` returns), by the live :class:`~bayes_mem.live.return_model.ReturnModel`
  (:func:`~bayes_mem.evaluation.var_backtest.rolling_posterior_forecast`): one-day and
  ``horizon``-day VaR/ES of daily log returns (positive loss fractions), and the predictive
  mixture for the Acerbi-Szekely tests.

Each refit's draws are stored in ``fits_dir`` (one ``.npz`` of plain arrays per refit day and a
JSON line of its verdict; no pickle), so a stopped run resumes where it stopped and the
comparison can be recomputed without refitting. Same seed, same draws.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_mem.evaluation.compare import available_series, load_dated_series
from bayes_mem.evaluation.var_backtest import RollingForecast, rolling_posterior_forecast
from bayes_mem.live.gjr_garch import GarchDraws, UnfitSeriesError, variance_path
from bayes_mem.live.validate import check_int

log = logging.getLogger("bayes_mem.pooled_risk")

CADENCE = 126  # trading days between refits: the policy backtest's nightly cadence
_PARAMS = tuple(f.name for f in fields(GarchDraws))


def panel(names: Sequence[str] | None = None) -> pd.DataFrame:
    """Daily log returns of the installed real series (default: all of
    :func:`~bayes_mem.evaluation.compare.available_series`) on the union of their calendars,
    NaN where a series has no return (columns in the order given).

    Examples
    --------
    >>> frame = panel(["sp500", "nasdaq"])
    >>> frame.shape, str(frame.index[0].date()), list(frame.columns)
    ((5030, 2), '1999-01-05', ['sp500', 'nasdaq'])
    """
    names = list(available_series()) if names is None else list(names)
    if not names:
        raise ValueError("no series given")
    return pd.DataFrame({n: load_dated_series(n) for n in names})


@dataclass(frozen=True)
class PooledFit:
    """One refit: its ``day`` (row of the panel: the fit saw the rows before it), the gate's
    verdict, and per symbol the draws and each draw's variance for the symbol's next return
    (empty when the gate refused the fit).

    Examples
    --------
    One posterior draw of symbol ``a`` (a real fit holds 200 per symbol) with its variance
    ``1e-4`` (1% daily volatility) for the next return:

    >>> import numpy as np
    >>> from bayes_mem.live.gjr_garch import GarchDraws
    >>> d = GarchDraws(mu=[0.0], omega=[1e-6], alpha=[0.05], gamma=[0.1], beta=[0.85],
    ...                nu=[500.0], lam=[0.0])
    >>> fit = PooledFit(day=3, date="2024-01-04", passed=True, reasons=(), seconds=40.0,
    ...                 symbols={"a": (d, np.array([1e-4]))})
    >>> fit.passed, list(fit.symbols), fit.key
    (True, ['a'], '')
    """

    day: int
    date: str
    passed: bool
    reasons: tuple[str, ...]
    seconds: float
    symbols: dict[str, tuple[GarchDraws, np.ndarray]]
    key: str = ""  # refit_key: what the refit was made from


def refit_days(frame: pd.DataFrame, window: int, cadence: int) -> list[int]:
    """Rows of ``frame`` on which the walk-forward refits: every ``cadence`` rows from the first
    row at which some series has ``window`` returns before it.

    Examples
    --------
    Series ``a`` has 3 returns before row 3, so refits run on rows 3 and 5:

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [0.01, -0.02, 0.0, 0.01, 0.005, -0.01],
    ...                       "b": [np.nan, np.nan, 0.01, 0.0, -0.01, 0.02]},
    ...                      index=pd.bdate_range("2024-01-01", periods=6))
    >>> refit_days(frame, window=3, cadence=2)
    [3, 5]
    """
    window = check_int(window, "window", minimum=2)
    cadence = check_int(cadence, "cadence", minimum=1)
    counts = frame.notna().cumsum().shift(1, fill_value=0)  # returns before each row
    ready = np.flatnonzero((counts.to_numpy() >= window).any(axis=1))
    if ready.size == 0:
        raise ValueError(f"no series has {window} returns: nothing to forecast")
    return list(range(int(ready[0]), len(frame), cadence))


def _save(fit: PooledFit, fits_dir: Path) -> None:
    arrays = {}
    for sym, (draws, sigma2) in fit.symbols.items():
        for p in _PARAMS:
            arrays[f"{sym}/{p}"] = getattr(draws, p)
        arrays[f"{sym}/sigma2"] = sigma2
    tmp = fits_dir / f".{fit.day:06d}.npz"
    with tmp.open("wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(fits_dir / f"{fit.day:06d}.npz")
    meta = {"day": fit.day, "date": fit.date, "passed": fit.passed, "reasons": list(fit.reasons),
            "seconds": fit.seconds, "symbols": list(fit.symbols), "key": fit.key}  # fmt: skip
    with (fits_dir / "fits.jsonl").open("a") as fh:
        fh.write(json.dumps(meta) + "\n")


def _load(fits_dir: Path) -> dict[int, PooledFit]:
    out: dict[int, PooledFit] = {}
    index = fits_dir / "fits.jsonl"
    if not index.exists():
        return out
    for line in index.read_text().splitlines():
        meta = json.loads(line)
        path = fits_dir / f"{meta['day']:06d}.npz"
        if not path.exists():  # stopped between the two writes: refitted
            continue
        with np.load(path, allow_pickle=False) as z:
            symbols = {
                sym: (GarchDraws(**{p: z[f"{sym}/{p}"] for p in _PARAMS}), z[f"{sym}/sigma2"])
                for sym in meta["symbols"]
            }
        out[meta["day"]] = PooledFit(meta["day"], meta["date"], meta["passed"],
                                     tuple(meta["reasons"]), meta["seconds"], symbols,
                                     meta.get("key", ""))  # fmt: skip
    return out


def refit_key(frame: pd.DataFrame, day: int, config: object) -> str:
    """What refit ``day`` is made from: the configuration's hash (its seed included), the day
    and every return before it (columns, dates and values). A stored refit is reused only when
    its key is this one, so a folder of refits made from other data or settings is refitted,
    never served.

    Examples
    --------
    Only the rows before the day count: rows after it do not change the key, another day does:

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [0.01, -0.02, 0.0, 0.01, 0.005, -0.01],
    ...                       "b": [np.nan, np.nan, 0.01, 0.0, -0.01, 0.02]},
    ...                      index=pd.bdate_range("2024-01-01", periods=6))
    >>> from bayes_mem.offline.recalibrate import RecalibrationConfig
    >>> cfg = RecalibrationConfig(returns_model="pymc")
    >>> key = refit_key(frame, 4, cfg)
    >>> len(key), refit_key(frame.iloc[:5], 4, cfg) == key, refit_key(frame, 5, cfg) == key
    (16, True, False)
    """
    before = frame.iloc[:day]
    h = hashlib.sha256()
    h.update(f"{config.hash()}|{day}|".encode())  # type: ignore[attr-defined]
    h.update(json.dumps([str(c) for c in before.columns]).encode())
    h.update(before.index.asi8.tobytes())
    h.update(np.ascontiguousarray(before.to_numpy(dtype=float)).tobytes())
    return h.hexdigest()[:16]


def walk_forward_fits(
    frame: pd.DataFrame,
    *,
    cadence: int = CADENCE,
    seed: int = 0,
    fits_dir: Path | None = None,
    config: object = None,
) -> list[PooledFit]:
    """The nightly job's returns component refitted on ``frame`` (dates x series of daily log
    returns) every ``cadence`` rows (:func:`refit_days`), each on the rows before its day;
    refit ``k`` is seeded ``seed + k``. With ``fits_dir``, fits already stored there are read
    instead of refitted when made from the same data and settings (:func:`refit_key`), and new
    ones are stored as they finish.

    Examples
    --------
    Skipped: each refit is the nightly job's pooled PyMC fit (30-60 s). A real run on every
    installed series, resumable from a folder:

    >>> import tempfile
    >>> from bayes_mem.offline.recalibrate import RecalibrationConfig
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     fits = walk_forward_fits(panel(), fits_dir=d,
    ...                              config=RecalibrationConfig(returns_model="pymc"))
    >>> [f.passed for f in fits][:3]  # doctest: +SKIP
    [True, True, True]
    """
    from bayes_mem.offline.recalibrate import RecalibrationConfig, fit_returns
    from bayes_mem.offline.returns_model import PooledReturnsFitter

    base = config if config is not None else RecalibrationConfig()
    if not isinstance(base, RecalibrationConfig) or base.returns_model != "pymc":
        raise ValueError("config must be a RecalibrationConfig with returns_model='pymc'")
    seed = check_int(seed, "seed", minimum=0)
    days = refit_days(frame, base.returns_window, cadence)
    done: dict[int, PooledFit] = {}
    if fits_dir is not None:
        fits_dir = Path(fits_dir)
        fits_dir.mkdir(parents=True, exist_ok=True)
        done = _load(fits_dir)
    model = PooledReturnsFitter()  # compiled once per number of symbols, reused across refits
    out = []
    for k, day in enumerate(days):
        cfg = dataclasses.replace(base, seed=seed + k)
        key = refit_key(frame, day, cfg)
        stored = done.get(day)
        if stored is not None and stored.key == key:
            out.append(stored)
            continue
        if stored is not None:
            log.warning("the stored refit of %s was made from other data or settings: refitted",
                        stored.date)  # fmt: skip
        t0 = time.perf_counter()
        fitted = fit_returns(frame.iloc[:day], cfg, np.random.default_rng(cfg.seed), model)
        seconds = round(time.perf_counter() - t0, 1)
        symbols = {s: (p.draws, np.asarray(p.sigma2, float)) for s, p in fitted.symbols.items()}
        fit = PooledFit(day, str(frame.index[day].date()), bool(fitted.verdict.passed),
                        tuple(fitted.verdict.reasons), seconds,
                        symbols if fitted.verdict.passed else {}, key)  # fmt: skip
        log.info("refit %d/%d on %s: %s, %d symbols, %.0f s%s", k + 1, len(days), fit.date,
                 "passed" if fit.passed else "refused", len(fit.symbols), seconds,
                 "" if fit.passed else f" ({'; '.join(fit.reasons)})")  # fmt: skip
        if fits_dir is not None:
            _save(fit, fits_dir)
        out.append(fit)
    return out


def pooled_forecasts(
    frame: pd.DataFrame,
    fits: Sequence[PooledFit],
    *,
    window: int = 1000,
    levels: tuple[float, ...] = (0.975, 0.99),
    horizon: int = 10,
) -> dict[str, RollingForecast]:
    """Per series of ``frame`` with more than ``window`` returns: its forecasts on the days after
    its first ``window`` returns (see the module docstring). The first day uses the latest passed
    refit that covered the series; a series no passed refit covers by then is an error naming
    it.

    Examples
    --------
    One hand-made refit on row 3 covering both series (one draw, 1% volatility): ``a``'s first
    forecast uses it as published (VaR 99% about ``2.326 * 1%``), ``b``'s rolls the variance
    forward through the returns ``b`` had after the fit's data:

    >>> import numpy as np
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [0.01, -0.02, 0.0, 0.01, 0.005, -0.01],
    ...                       "b": [np.nan, np.nan, 0.01, 0.0, -0.01, 0.02]},
    ...                      index=pd.bdate_range("2024-01-01", periods=6))
    >>> from bayes_mem.live.gjr_garch import GarchDraws
    >>> d = GarchDraws(mu=[0.0], omega=[1e-6], alpha=[0.05], gamma=[0.1], beta=[0.85],
    ...                nu=[500.0], lam=[0.0])
    >>> fit = PooledFit(3, "2024-01-04", True, (), 40.0,
    ...                 {"a": (d, np.array([1e-4])), "b": (d, np.array([1e-4]))})
    >>> fc = pooled_forecasts(frame, [fit], window=3, levels=(0.99,), horizon=1)
    >>> np.round(fc["a"].var[0.99], 4), np.round(fc["b"].var[0.99], 4)
    (array([0.0233, 0.0222, 0.0208]), array([0.022]))
    """
    window = check_int(window, "window", minimum=2)
    by_day = sorted(fits, key=lambda f: f.day)
    out = {}
    for name in frame.columns:
        col = frame[name].to_numpy()
        rows = np.flatnonzero(~np.isnan(col))  # the series' own days, as rows of the panel
        r = col[rows]
        if r.size <= window:
            continue
        # a refit on panel row d saw the series' returns before its return searchsorted(rows, d);
        # of the refits between two of its returns the latest with a posterior of it counts
        # (none: a refused refit, the posterior in use stays)
        schedule: dict[int, tuple[PooledFit, int]] = {}
        for f in by_day:
            t = int(np.searchsorted(rows, f.day))
            if window < t < r.size and (_covers(f, name) or t not in schedule):
                schedule[t] = (f, t)
        ready = [f for f in by_day if f.day <= rows[window] and _covers(f, name)]
        if not ready:
            raise ValueError(f"{name}: no passed refit covers its first forecast day")
        schedule[window] = (ready[-1], int(np.searchsorted(rows, ready[-1].day)))
        out[name] = rolling_posterior_forecast(
            r, window=window, levels=levels, horizon=horizon,
            refit=functools.partial(_refit, name, r, schedule),
        )  # fmt: skip
    return out


def _refit(
    name: str, r: np.ndarray, schedule: Mapping[int, tuple[PooledFit, int]], i: int, t: int
) -> tuple[GarchDraws, np.ndarray] | None:
    """The posterior a refit hands the series' return ``t`` (see :func:`pooled_forecasts`):
    its draws and the published variance state (for return ``t_f``, the first after the fit's
    data) rolled forward through ``r[t_f:t]``; None on a day without a refit."""
    got = schedule.get(t)
    if got is None:
        return None
    f, t_f = got
    if not _covers(f, name):
        raise UnfitSeriesError(f"the refit on {f.date} has no posterior of {name}")
    draws, sigma2 = f.symbols[name]
    if t > t_f:
        sigma2 = variance_path(r[t_f:t], draws, sigma2)[:, -1]
    return draws, sigma2


def _covers(fit: PooledFit, name: str) -> bool:
    return fit.passed and name in fit.symbols
