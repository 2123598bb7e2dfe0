"""Expected-shortfall backtests (Acerbi & Szekely 2014, tests 1 and 2) with critical values
simulated under each forecaster's own predictive, and the VaR/ES comparison of four forecasters
on real index prices.

Conventions: ``returns`` are daily log returns X_t (fractions, 0.01 = 1%; a loss is negative);
``var`` and ``es`` are the forecasts made the day before, as positive losses, at confidence
``level`` (tail probability ``alpha = 1 - level``). The exceedance indicator is
``I_t = 1{X_t < -VaR_t}`` and ``N = sum I_t``.

    Z1 = sum_t I_t X_t / ES_t / N + 1       (conditional on exceedances; undefined when N = 0)
    Z2 = sum_t I_t X_t / (T alpha ES_t) + 1 (unconditional)

Both have expectation 0 under a correct forecast (Z1 given N > 0; Z2 when VaR is the exact
quantile) and are negative when the risk is underestimated (losses beyond VaR larger than the ES
says, or, for Z2, also too many exceedances). The tests are one-sided: they reject too small Z.
The p-value is simulated: for each forecast day draw ``n_sims`` scenario returns from that day's
predictive, recompute the statistic on each of the ``n_sims`` simulated paths (with the same VaR
and ES forecasts) and take ``(1 + #{Z_sim <= Z_obs}) / (1 + n_sims)`` (the observed path counted
among the simulations, so the test has size at most its level). Simulated paths without any
exceedance have no Z1 and are left out of its reference distribution.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import pathlib
from dataclasses import asdict, dataclass, field

import numpy as np

from bayes_mem.evaluation.tables import markdown_rows
from bayes_mem.evaluation.var_backtest import (
    RollingForecast,
    rolling_gjr_forecast,
    rolling_historical_forecast,
    rolling_normal_forecast,
    rolling_student_t_forecast,
)
from bayes_mem.live.validate import check_int, check_probability_open

LEVELS = (0.975, 0.99)
MODELS = ("percentile", "normal", "student_t", "ours")
SERIES = ("sp500", "nasdaq")
COLUMNS = (
    "series", "model", "level", "n", "exceedances", "expected", "p_kupiec", "p_ind", "p_cc",
    "z1", "p_z1", "z2", "p_z2", "passes_all",
)  # fmt: skip


def _arrays(
    returns: np.ndarray, var: np.ndarray, es: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, v, e = (np.asarray(a, dtype=float) for a in (returns, var, es))
    if x.ndim != 1 or x.size < 1 or v.shape != x.shape or e.shape != x.shape:
        raise ValueError(
            f"returns, var and es must be 1-d of one length, got {x.shape}, {v.shape}, {e.shape}"
        )
    for name, a in (("returns", x), ("var", v), ("es", e)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite")
    if np.any(e <= 0):
        raise ValueError(f"es must be > 0 (a positive loss), got min {e.min()!r}")
    return x, v, e


def z1_statistic(returns: np.ndarray, var: np.ndarray, es: np.ndarray) -> float:
    """Acerbi-Szekely Z1 of one path; ``nan`` when there is no exceedance.

    Examples
    --------
    Two exceedances of a 2% VaR, ES 3%: ``(-0.03 / 0.03 - 0.025 / 0.03) / 2 + 1 = 0.0833``:

    >>> import numpy as np
    >>> x = np.array([-0.03, 0.01, -0.025, 0.02])  # daily log returns
    >>> var, es = np.full(4, 0.02), np.full(4, 0.03)
    >>> round(z1_statistic(x, var, es), 4), z1_statistic(x, 2 * var, es)
    (0.0833, nan)
    """
    x, v, e = _arrays(returns, var, es)
    hit = x < -v
    if not hit.any():
        return float("nan")
    return float(np.sum(x[hit] / e[hit]) / hit.sum() + 1.0)


def z2_statistic(returns: np.ndarray, var: np.ndarray, es: np.ndarray, level: float) -> float:
    """Acerbi-Szekely Z2 of one path at confidence ``level``.

    Examples
    --------
    The same two exceedances over ``T alpha = 4 * 0.1`` expected: ``-1.8333 / 0.4 + 1``:

    >>> import numpy as np
    >>> x = np.array([-0.03, 0.01, -0.025, 0.02])  # daily log returns
    >>> var, es = np.full(4, 0.02), np.full(4, 0.03)
    >>> round(z2_statistic(x, var, es, 0.9), 4)
    -3.5833
    """
    alpha = 1.0 - check_probability_open(level, "level")
    x, v, e = _arrays(returns, var, es)
    hit = x < -v
    return float(np.sum(x[hit] / e[hit]) / (x.size * alpha) + 1.0)


@dataclass(frozen=True)
class ZTest:
    """Z1 and Z2 of one forecast series at one level, with their simulated p-values.

    Examples
    --------
    Usually built by :func:`es_backtest`; by hand, with a toy reference distribution of Z2:

    >>> import numpy as np
    >>> z = ZTest(0.975, 250, 9, -0.1, 0.3, -0.2, 0.2, 4, np.array([0.0]),
    ...           np.array([-1.0, -0.5, 0.0, 0.5]))
    >>> z
    ZTest(level=0.975, n=250, exceedances=9, z1=-0.1, p_z1=0.3, z2=-0.2, p_z2=0.2, n_sims=4)
    """

    level: float
    n: int
    exceedances: int
    z1: float  # nan without exceedances
    p_z1: float  # 1.0 without exceedances (nothing to test)
    z2: float
    p_z2: float
    n_sims: int
    sim_z1: np.ndarray = field(repr=False)  # the reference distributions
    sim_z2: np.ndarray = field(repr=False)

    def passes(self, size: float = 0.05) -> bool:
        """True when both p-values exceed ``size`` (neither test rejects).

        Examples
        --------
        >>> import numpy as np
        >>> z = ZTest(0.975, 250, 9, -0.1, 0.3, -0.2, 0.04, 4, np.zeros(1), np.zeros(4))
        >>> z.passes(), z.passes(0.01)
        (False, True)
        """
        return min(self.p_z1, self.p_z2) > size

    def critical_value(self, size: float = 0.05) -> float:
        """The simulated ``size`` quantile of Z2 (reject below it).

        Examples
        --------
        The median of the simulated Z2 ``[-1, -0.5, 0, 0.5]`` (linear interpolation):

        >>> import numpy as np
        >>> z = ZTest(0.975, 250, 9, -0.1, 0.3, -0.2, 0.2, 4, np.zeros(1),
        ...           np.array([-1.0, -0.5, 0.0, 0.5]))
        >>> z.critical_value(0.5)
        -0.25
        """
        return float(np.quantile(self.sim_z2, check_probability_open(size, "size")))


def _p_value(sim: np.ndarray, observed: float) -> float:
    return float((1 + np.sum(sim <= observed)) / (1 + sim.size))


def es_backtest(
    forecast: RollingForecast,
    levels: tuple[float, ...] | None = None,
    *,
    n_sims: int = 2000,
    rng: int | np.random.Generator | None = None,
    block_days: int = 250,
) -> dict[float, ZTest]:
    """Acerbi-Szekely Z1/Z2 tests of ``forecast`` at ``levels`` (default: all it has), critical
    values simulated from its own predictive (``forecast.predictive``) with ``n_sims`` paths; the
    same simulated paths serve every level. Days are simulated ``block_days`` at a time (memory
    ~ 8 * block_days * n_sims bytes per array).

    Examples
    --------
    A rolling normal on simulated normal returns (a correct forecast), 50 forecast days and 200
    simulated paths: one exceedance (1.25 expected), neither test rejects:

    >>> import numpy as np
    >>> from bayes_mem.evaluation.var_backtest import rolling_normal_forecast
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(300)
    >>> f = rolling_normal_forecast(r, kind="log", levels=(0.975,), window=250)
    >>> z = es_backtest(f, n_sims=200, rng=0)[0.975]
    >>> z.n, z.exceedances, round(z.z1, 3), round(z.z2, 3), z.passes()
    (50, 1, -0.207, 0.034, True)
    """
    n_sims = check_int(n_sims, "n_sims", minimum=19)
    block_days = check_int(block_days, "block_days", minimum=1)
    if forecast.predictive is None:
        raise ValueError("the forecast has no predictive sampler: simulated tests need one")
    levels = tuple(forecast.var) if levels is None else levels
    levels = tuple(check_probability_open(lv, "level") for lv in levels)
    missing = [lv for lv in levels if lv not in forecast.var or lv not in forecast.es]
    if missing:
        raise ValueError(f"the forecast has no VaR/ES at levels {missing}")
    n = forecast.returns.size
    if forecast.predictive.n != n:
        raise ValueError(f"the predictive covers {forecast.predictive.n} days, the forecast {n}")
    for lv in levels:
        _arrays(forecast.returns, forecast.var[lv], forecast.es[lv])
    gen = np.random.default_rng(rng)
    sums = {lv: np.zeros(n_sims) for lv in levels}
    counts = {lv: np.zeros(n_sims, dtype=np.int64) for lv in levels}
    for start in range(0, n, block_days):
        days = slice(start, min(start + block_days, n))
        x = forecast.predictive.take(days).sample(gen, n_sims)
        for lv in levels:
            hit = x < -forecast.var[lv][days, None]
            sums[lv] += np.where(hit, x / forecast.es[lv][days, None], 0.0).sum(axis=0)
            counts[lv] += hit.sum(axis=0)
    out = {}
    for lv in levels:
        alpha = 1.0 - lv
        v, e = forecast.var[lv], forecast.es[lv]
        z1 = z1_statistic(forecast.returns, v, e)
        z2 = z2_statistic(forecast.returns, v, e, lv)
        seen = counts[lv] > 0
        sim_z1 = sums[lv][seen] / counts[lv][seen] + 1.0
        sim_z2 = sums[lv] / (n * alpha) + 1.0
        p_z1 = 1.0 if np.isnan(z1) else _p_value(sim_z1, z1)
        out[lv] = ZTest(
            lv, n, int(forecast.exceedances(lv).sum()), z1, p_z1, z2, _p_value(sim_z2, z2),
            n_sims, sim_z1, sim_z2,
        )  # fmt: skip
    return out


# ---------------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class BacktestRow:
    """One series x model x level of the comparison (p-values; ``passes_all``: all > size).

    Examples
    --------
    >>> row = BacktestRow("sp500", "ours", 0.99, 1000, 12, 10.0, 0.53, 0.61, 0.72,
    ...                   -0.1, 0.3, -0.05, 0.04, False)
    >>> row.model, row.exceedances, row.passes_all
    ('ours', 12, False)
    """

    series: str
    model: str
    level: float
    n: int
    exceedances: int
    expected: float
    p_kupiec: float
    p_ind: float
    p_cc: float
    z1: float
    p_z1: float
    z2: float
    p_z2: float
    passes_all: bool

    def failed(self, size: float = 0.05) -> list[str]:
        """Names of the tests rejected at ``size``.

        Examples
        --------
        Only Z2's p-value (0.04) is at or below 5%:

        >>> row = BacktestRow("sp500", "ours", 0.99, 1000, 12, 10.0, 0.53, 0.61, 0.72,
        ...                   -0.1, 0.3, -0.05, 0.04, False)
        >>> row.failed(), row.failed(0.01)
        (['z2'], [])
        """
        tests = ("p_kupiec", "p_ind", "p_cc", "p_z1", "p_z2")
        return [t.removeprefix("p_") for t in tests if getattr(self, t) <= size]


@dataclass(frozen=True)
class SeriesBacktest:
    """The comparison on one series: rows, and each model's forecasts and Z tests.

    Examples
    --------
    Built by :func:`backtest_series`; an empty one by hand:

    >>> SeriesBacktest("sp500", rows=[], forecasts={}, ztests={}).series
    'sp500'
    """

    series: str
    rows: list[BacktestRow]
    forecasts: dict[str, RollingForecast]
    ztests: dict[str, dict[float, ZTest]]


def backtest_series(
    returns: np.ndarray,
    *,
    series: str = "series",
    levels: tuple[float, ...] = LEVELS,
    window: int = 1000,
    percentile_window: int = 252,
    refit_every: int = 20,
    n_draws: int = 100,
    n_sims: int = 2000,
    size: float = 0.05,
    seed: int = 0,
) -> SeriesBacktest:
    """Walk-forward VaR/ES backtests of the four forecasters on daily log ``returns``: ours
    (GJR-GARCH-skew-t, ``n_draws`` Laplace draws refit every ``refit_every`` days on ``window``
    days), the seed plan's ``percentile_window``-day historical percentile, a rolling normal and
    a static Student-t (both on ``window`` days; the t refit every ``refit_every`` days). All are
    scored on the same days: those after the first ``max(window, percentile_window)``. Ours
    draws its posterior with ``rng=seed``; the simulations use streams spawned from ``seed``.

    Examples
    --------
    A tiny run (10 forecast days after a 250-day window, 10 draws, 19 simulated paths; the
    real comparison uses thousands of days): one row per model and level, all on the same days:

    >>> import numpy as np
    >>> r = 0.01 * np.random.default_rng(0).standard_normal(260)
    >>> res = backtest_series(r, levels=(0.975,), window=250, percentile_window=250,
    ...                       n_draws=10, n_sims=19)
    >>> [(row.model, row.n) for row in res.rows]
    [('percentile', 10), ('normal', 10), ('student_t', 10), ('ours', 10)]
    >>> sorted(res.ztests["ours"])
    [0.975]
    """
    size = check_probability_open(size, "size")
    seeds = np.random.SeedSequence(seed).spawn(len(MODELS))  # the simulations' streams
    forecasts = {
        "percentile": rolling_historical_forecast(
            returns, kind="log", levels=levels, window=percentile_window
        ),
        "normal": rolling_normal_forecast(returns, kind="log", levels=levels, window=window),
        "student_t": rolling_student_t_forecast(
            returns, kind="log", levels=levels, window=window, refit_every=refit_every
        ),
        "ours": rolling_gjr_forecast(
            returns, kind="log", levels=levels, window=window, refit_every=refit_every,
            n_draws=n_draws, rng=seed,
        ),
    }  # fmt: skip
    n = min(f.returns.size for f in forecasts.values())
    forecasts = {m: f.last(n) for m, f in forecasts.items()}
    rows, ztests = [], {}
    for i, (model, f) in enumerate(forecasts.items()):
        ztests[model] = es_backtest(f, levels, n_sims=n_sims, rng=np.random.default_rng(seeds[i]))
        for lv in levels:
            c, z = f.test(lv), ztests[model][lv]
            row = BacktestRow(
                series, model, lv, c.n, c.exceedances, c.expected, c.p_pof, c.p_ind, c.p_cc,
                z.z1, z.p_z1, z.z2, z.p_z2, c.passes(size) and z.passes(size),
            )  # fmt: skip
            rows.append(row)
    return SeriesBacktest(series, rows, forecasts, ztests)


def load_index_returns(name: str) -> np.ndarray:
    """Daily log returns of the Adj Close of an index shipped with ``arch`` (``"sp500"`` or
    ``"nasdaq"``, 1999-2018; nothing is downloaded). The CSV is read from the installed package
    without importing ``arch`` (whose import takes seconds).

    Examples
    --------
    The S&P 500 (needs the ``arch`` extra): 5,030 daily log returns, the first +1.35%:

    >>> r = load_index_returns("sp500")
    >>> r.size, round(float(r[0]), 5)
    (5030, 0.01349)
    """
    if name not in SERIES:
        raise ValueError(f"series must be one of {SERIES}, got {name!r}")
    spec = importlib.util.find_spec("arch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the index data ship with the 'arch' package: install bayes_mem[data]"
        )
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / name / f"{name}.csv.gz"
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        price = np.array([float(row["Adj Close"]) for row in reader])
    if price.size < 2 or not np.all(np.isfinite(price)) or np.any(price <= 0):
        raise ValueError(f"{path} has missing or non-positive prices")
    return np.log(price[1:] / price[:-1])


# ------------------------------------------------------------------------------------- report
def _fmt(v: object) -> str:
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        if np.isnan(v):
            return "nan"
        return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return str(v)


def markdown_table(rows: list[BacktestRow]) -> str:
    """The rows as a Markdown table of :data:`COLUMNS` (newline-terminated).

    Examples
    --------
    Booleans print as yes / **no**, small floats in 3 significant digits:

    >>> row = BacktestRow("sp500", "ours", 0.99, 1000, 12, 10.0, 0.53, 0.61, 0.72,
    ...                   -0.1, 0.3, -0.05, 0.0004, False)
    >>> table = markdown_table([row])
    >>> table.splitlines()[0][:40]
    '| series | model | level | n | exceedanc'
    >>> print(table.splitlines()[2])
    | sp500 | ours | 0.990 | 1000 | 12 | 10.000 | 0.530 | 0.610 | 0.720 | -0.100 | 0.300 |
      -0.050 | 0.0004 | **no** |
    """
    cells = [[_fmt(getattr(r, c)) for c in COLUMNS] for r in rows]
    return markdown_rows(COLUMNS, cells) + "\n"


def _write_csv(path: pathlib.Path, rows: list[BacktestRow]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([repr(v) if isinstance(v, float) else v for v in asdict(r).values()])


def _plot(path: pathlib.Path, result: SeriesBacktest, level: float) -> None:
    from bayes_mem.plotting import pyplot

    plt = pyplot()

    ours, seed = result.forecasts["ours"], result.forecasts["percentile"]
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2.2, 1]}, layout="constrained"
    )
    days = np.arange(ours.returns.size)
    ax.plot(days, 100 * ours.returns, color="0.6", lw=0.5, label="log return")
    ax.plot(days, -100 * ours.var[level], color="C0", lw=0.9, label=f"ours: -VaR {level:.1%}")
    ax.plot(days, -100 * seed.var[level], color="C3", lw=0.9, label="percentile: -VaR")
    for f, colour, name, mark in ((ours, "C0", "ours", "o"), (seed, "C3", "percentile", "x")):
        hit = f.exceedances(level)
        ax.scatter(days[hit], 100 * f.returns[hit], s=12, color=colour, marker=mark,
                   label=f"{name} exceedances ({hit.sum()})")  # fmt: skip
    ax.set(xlabel="forecast day", ylabel="% (daily log return)",
           title=f"{result.series}: one-day {level:.1%} VaR, walk-forward")  # fmt: skip
    ax.legend(fontsize=7, loc="lower left", ncols=2)
    for model, colour in (("ours", "C0"), ("percentile", "C3"), ("normal", "C2")):
        z = result.ztests[model][level]
        bx.hist(z.sim_z2, bins=50, color=colour, alpha=0.35, density=True,
                label=f"{model}: simulated (5% crit {z.critical_value():.2f})")  # fmt: skip
        bx.axvline(z.z2, color=colour, lw=1.5, label=f"{model}: observed {z.z2:.2f}")
    bx.set(xlabel="Z2", title=f"Z2 at {level:.1%}: observed vs own predictive")
    bx.legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _findings(rows: list[BacktestRow], size: float) -> list[str]:
    out = []
    for s in dict.fromkeys(r.series for r in rows):
        ours = [r for r in rows if r.series == s and r.model == "ours"]
        failed = {f"{r.level:.1%}": r.failed(size) for r in ours if r.failed(size)}
        out.append(
            f"{s}: ours passes all 5 tests at both levels"
            if not failed
            else f"{s}: ours FAILS {failed}"
        )
        for m in MODELS[:-1]:
            fails = {f"{r.level:.1%}": r.failed(size) for r in rows
                     if r.series == s and r.model == m and r.failed(size)}  # fmt: skip
            out.append(f"{s}: {m} fails {fails}" if fails else f"{s}: {m} passes everything")
    return out


def write_results(out_dir: pathlib.Path, *, seed: int = 0, quick: bool = False) -> dict:
    """Run the VaR/ES comparison and write ``var_es_backtest.csv`` / ``.md`` and
    ``var_es_backtest.png`` into ``out_dir``; return a JSON-serialisable summary with a
    "markdown" section. Full: S&P 500 and NASDAQ 1999-2018 (about 4,000 forecast days each,
    ~3 minutes per series). ``quick``: the last 400 forecast days of the S&P 500 with a 400-day
    window, refits every 100 days, 30 draws and 200 simulated paths (seconds; a smoke run, its
    numbers are not evidence).

    Examples
    --------
    Skipped here: even the ``quick`` run fits hundreds of forecast days (several seconds). Its
    summary's keys:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     summary = write_results(d, quick=True)
    >>> sorted(summary)  # doctest: +SKIP
    ['findings', 'markdown', 'ours_passes_all', 'quick', 'rows', 'seed', 'settings',
     'z2_critical_values']
    """
    seed = check_int(seed, "seed", minimum=0)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    size = 0.05
    if quick:
        settings = {"window": 400, "refit_every": 100, "n_draws": 30, "n_sims": 200}
        data = {"sp500": load_index_returns("sp500")[-800:]}
    else:
        settings = {"window": 1000, "refit_every": 20, "n_draws": 100, "n_sims": 2000}
        data = {s: load_index_returns(s) for s in SERIES}
    results = [
        backtest_series(r, series=s, seed=seed + i, size=size, **settings)
        for i, (s, r) in enumerate(data.items())
    ]
    rows = [row for res in results for row in res.rows]
    _write_csv(out_dir / "var_es_backtest.csv", rows)
    table = markdown_table(rows)
    (out_dir / "var_es_backtest.md").write_text(table)
    _plot(out_dir / "var_es_backtest.png", results[0], 0.99)
    findings = _findings(rows, size)
    crit = {
        f"{res.series}/{m}/{lv}": res.ztests[m][lv].critical_value(size)
        for res in results for m in MODELS for lv in LEVELS
    }  # fmt: skip
    markdown = (
        "### VaR and ES backtests\n\n"
        f"Walk-forward one-day forecasts, {rows[0].n} days per series; p-values at a 5% size "
        f"(Z1/Z2 simulated from each model's own predictive, {settings['n_sims']} paths).\n\n"
        + table
        + "\n"
        + "".join(f"- {f}\n" for f in findings)
    )
    ours_ok = {
        res.series: all(r.passes_all for r in res.rows if r.model == "ours") for res in results
    }
    return {
        "quick": quick,
        "seed": seed,
        "settings": settings,
        "rows": [asdict(r) for r in rows],
        "ours_passes_all": ours_ok,
        "z2_critical_values": crit,
        "findings": findings,
        "markdown": markdown,
    }
