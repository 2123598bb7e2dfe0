"""``bayes-mem demo``: the whole loop on a fresh machine, on synthetic history.

1. creates a SQLite store under ``demo/data`` (recreated each run) and fills it: a few hundred
   signals in four families with known true win rates and a few months of settled trades; three
   years of daily returns for a dozen symbols with volatility clustering (GJR-GARCH-t);
2. runs the nightly job into ``demo/models``: win-rate fit, diagnostics gate, prior set;
3. runs a simulated trading day on the published priors: the decider restored from the store,
   family priors applied, signals decided, positions sized by CVaR budget x Kelly x correlation,
   outcomes recorded to the store;
4. ends by printing the ``bayes-mem dashboard`` command that serves the demo's store and models.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_mem.live.gjr_garch import GarchDraws, simulate

MARKER = ".bayes_mem_demo"
FAMILIES = {"momentum": (0.53, 40.0), "mean_reversion": (0.48, 30.0), "breakout": (0.51, 15.0),
            "carry": (0.55, 60.0)}  # fmt: skip
SYMBOLS = ["SPY", "QQQ", "IWM", "EFA", "EEM", "TLT", "IEF", "GLD", "USO", "XLF", "XLE", "XLK"]


@dataclass
class DemoPaths:
    """The demo folder's layout: the store under ``data``, the model registry under ``models``.

    Examples
    --------
    >>> paths = DemoPaths(Path("demo"))
    >>> str(paths.data), str(paths.models)
    ('demo/data', 'demo/models')
    """

    root: Path

    @property
    def data(self) -> Path:
        """The store's data directory, ``<root>/data``.

        Examples
        --------
        >>> str(DemoPaths(Path("/tmp/demo")).data)
        '/tmp/demo/data'
        """
        return self.root / "data"

    @property
    def models(self) -> Path:
        """The model registry, ``<root>/models``.

        Examples
        --------
        >>> str(DemoPaths(Path("/tmp/demo")).models)
        '/tmp/demo/models'
        """
        return self.root / "models"


def prepare_folder(root: Path) -> DemoPaths:
    """(Re)create the demo folder; refuses to wipe a folder the demo did not create.

    Examples
    --------
    A folder the demo made is recreated empty; any other folder is refused:

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = prepare_folder(Path(tmp) / "demo")
    ...     _ = (paths.root / "old.txt").write_text("x")
    ...     again = prepare_folder(Path(tmp) / "demo")  # made by the demo: wiped
    ...     print(sorted(p.name for p in again.root.iterdir()))
    ...     try:
    ...         prepare_folder(Path(tmp))  # not made by the demo
    ...     except ValueError as exc:
    ...         print("refused:", str(exc).endswith("not touching it"))
    ['.bayes_mem_demo']
    refused: True
    """
    if root.exists():
        if not (root / MARKER).exists():
            raise ValueError(f"{root} exists and was not created by the demo; not touching it")
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / MARKER).write_text("created by bayes-mem demo; deleted and recreated on every run\n")
    return DemoPaths(root)


def synthesize(store, rng: np.random.Generator, signals_per_family: int = 75) -> dict[str, float]:
    """Fill ``store``; returns each signal's true win rate.

    Examples
    --------
    Three signals per family (four families), up to 59 trades each, and three years of business
    days of returns for each of the 12 symbols:

    >>> from bayes_mem.store import Store
    >>> store = Store("sqlite://")  # an in-memory SQLite store
    >>> truth = synthesize(store, np.random.default_rng(0), signals_per_family=3)
    >>> len(truth), len(store.signals()), store.returns_panel().shape
    (12, 12, (756, 12))
    >>> all(0.0 < p < 1.0 for p in truth.values())
    True
    """
    truth: dict[str, float] = {}
    names: dict[str, str] = {}
    for fam, (mean, conc) in FAMILIES.items():
        for i in range(signals_per_family):
            name = f"{fam}_{i:03d}"
            names[name] = fam
            truth[name] = float(rng.beta(mean * conc, (1 - mean) * conc))
    store.register_signals(names)
    store.link_signals({name: SYMBOLS[i % len(SYMBOLS)] for i, name in enumerate(names)})
    days = pd.bdate_range(end=pd.Timestamp("2026-11-24"), periods=3 * 252)
    rows = []
    for name, p in truth.items():
        n = int(rng.integers(0, 60))
        settled = rng.choice(days[-120:], n)
        won = rng.random(n) < p
        notional = np.round(rng.uniform(5_000.0, 20_000.0, n), 2)
        # moves per unit notional: wins ~1.2%, losses ~1.0% on average
        size = np.where(won, rng.gamma(2.0, 0.006, n), rng.gamma(2.0, 0.005, n))
        pnl = np.where(won, size, -size) * notional
        rows += [
            (f"{name}-{k}", name, bool(w), float(x), float(v), d)
            for k, (w, x, v, d) in enumerate(zip(won, pnl, notional, settled, strict=True))
        ]
    store.ingest_outcomes(
        pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "notional", "settled_at"])
    )
    # correlated GJR-GARCH returns: a common factor plus idiosyncratic noise
    base = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.87], nu=[6.0], lam=[-0.1]
    )
    market, _ = simulate(base, days.size, rng)
    for k, sym in enumerate(SYMBOLS):
        own, _ = simulate(base, days.size, rng)
        loading = 0.3 + 0.6 * rng.random()
        r = loading * market[0] + np.sqrt(1 - loading**2) * own[0] * (0.7 + 0.1 * (k % 5))
        store.ingest_returns(pd.DataFrame({"symbol": sym, "date": days, "return": r}), kind="log")
    return truth


def trading_day(
    store,
    models: Path,
    rng: np.random.Generator,
    truth: dict[str, float],
    portfolio_value: float = 1e6,
    *,
    seed: int = 7,
) -> list[str]:
    """One simulated day through the trader's engine (:class:`~bayes_mem.live.TradingEngine`,
    opened on the store and the active prior set, the seed plan's baseline as its shadow):
    a day's returns arrive, a dozen signals fire (long or short, held 1-5 days), the engine sizes
    them, the acted trades settle with outcomes drawn from the signals' true win rates, and the day
    closes; returns the report lines.

    Examples
    --------
    Not run here: the engine fits each symbol's returns model when no prior set is published
    (about ten seconds for the demo's 12 symbols). On a store filled by :func:`synthesize` and an
    empty registry it trades on flat priors:

    >>> import tempfile
    >>> from bayes_mem.store import Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> paths = prepare_folder(Path(tmp.name) / "demo")
    >>> paths.models.mkdir()
    >>> store = Store(data_dir=paths.data)
    >>> truth = synthesize(store, np.random.default_rng(0), signals_per_family=3)
    >>> lines = trading_day(store, paths.models, np.random.default_rng(1), truth)  # doctest: +SKIP
    >>> lines[1]  # doctest: +SKIP
    'active prior set: none (the gate rejected every fit): flat priors, Laplace fits'
    >>> store.close()
    >>> tmp.cleanup()
    """
    from bayes_mem.live import EngineConfig, TradingEngine

    signals = sorted(truth)
    panel = store.returns_panel(SYMBOLS)
    today = (pd.Timestamp(panel.index[-1]) + pd.offsets.BDay(1)).date()
    with TradingEngine.open(
        models, store, portfolio_value=portfolio_value, seed=seed,
        shadow=EngineConfig.baseline(per_symbol=0.075 * portfolio_value),
    ) as engine:  # fmt: skip
        ps = engine.prior_set
        day_returns = {s: float(rng.normal(0.0, 0.01)) for s in SYMBOLS}
        engine.bar(today, day_returns)
        corr = engine.correlation()
        regime = engine.regime()
        lines = [
            f"engine: {engine!r}",
            "active prior set: "
            + ("none (the gate rejected every fit): flat priors, Laplace fits" if ps is None
               else f"v{ps.version} ({len(ps.families)} families, {len(ps.symbols)} symbols)"),
            "regime: "
            + (f"hazard {ps.regime.hazard:.4f}, P(change) max {max(regime.values()):.2f}"
               if regime else "no prior published"),
            "correlation: "
            + ("not enough history" if corr is None else
               f"average {corr[np.triu_indices_from(corr, 1)].mean():.2f}"),
            "",
            f"{'signal':<20}{'symbol':<7}{'side':<6}{'days':>5}{'p draw':>8}{'act':>5}"
            f"{'notional $':>13}{'binding':>14}{'baseline $':>12}",
        ]  # fmt: skip
        fired = rng.choice(signals, 12, replace=False)
        explained = []
        for k, name in enumerate(fired):
            symbol = engine.symbol_of(name) or SYMBOLS[k % len(SYMBOLS)]
            side = "long" if rng.random() < 0.7 else "short"
            horizon = int(rng.integers(1, 6))
            d = engine.signal(name, symbol, side, horizon, key=f"demo-{today}-{k}")
            base = d.shadow
            lines.append(
                f"{name:<20}{symbol:<7}{side:<6}{horizon:>5}{d.p_win:>8.3f}"
                f"{'yes' if d.act else 'no':>5}{d.notional:>13,.0f}{d.binding or '-':>14}"
                f"{(base.notional if base is not None else 0.0):>12,.0f}"
            )
            if d.act:
                explained.append(d.explain())
        # the day's trades settle at the close, with outcomes from the signals' true win rates
        for d_id, pos in engine.open_positions().items():
            won = bool(rng.random() < truth[pos["signal"]])
            move = abs(rng.normal(0.0, 0.02))
            engine.settle(d_id, won=won, pnl=(move if won else -move) * pos["notional"])
        eod = engine.end_of_day(today)
    lines += ["", "why (explain() of each trade):", *[f"  {e}" for e in explained[:6]], ""]
    lines.append(
        f"day closed {today}: realised pnl live {eod['pnl']['live']:+,.0f}, "
        f"baseline (shadow) {eod['pnl']['baseline']:+,.0f}; metrics and decisions logged"
    )
    return lines


def run(root: Path = Path("demo"), seed: int = 7) -> tuple[int, list[str]]:
    """The whole demo; returns the nightly job's exit code and the report.

    Examples
    --------
    Not run here: the nightly job samples the win-rate and returns models (minutes). ``bayes-mem
    demo`` calls it and prints the report:

    >>> code, lines = run(Path("demo"), seed=7)  # doctest: +SKIP
    >>> lines[-1]  # doctest: +SKIP
    '  bayes-mem dashboard --data demo/data --models demo/models'
    """
    import time

    from bayes_mem.offline.recalibrate import RecalibrationConfig, recalibrate
    from bayes_mem.store import Store

    t0 = time.perf_counter()
    paths = prepare_folder(root)
    rng = np.random.default_rng(seed)
    with Store(data_dir=paths.data) as store:
        truth = synthesize(store, rng)
        counts = store.signal_counts()
        t1 = time.perf_counter()
        result = recalibrate(store, paths.models, RecalibrationConfig(returns_draws=100, seed=seed))
        t2 = time.perf_counter()
        day = trading_day(store, paths.models, rng, truth, seed=seed)
    lines = [
        f"store: {paths.data / 'bayes_mem.sqlite'}  ({len(counts)} signals, "
        f"{int(counts['trades'].sum())} settled trades, {len(SYMBOLS)} symbols x 3 years)",
        f"nightly job: prior set v{result.version} {result.status} in {t2 - t1:.0f} s "
        f"(gate: {'passed' if result.verdict['passed'] else '; '.join(result.verdict['reasons'])})",
        f"artifacts: {result.artifact_dir}/ (prior_set.json, winrate_fit.nc, returns_fit.nc)",
        f"analyst report: {result.report or 'failed (see the log)'}",
        "",
        *day,
        "",
        f"demo finished in {time.perf_counter() - t0:.0f} s",
        "open the dashboard on its store (http://127.0.0.1:5006/risk, Ctrl-C stops it):",
        f"  {dashboard_command(paths.data, paths.models)}",
    ]
    return result.exit_code, lines


def dashboard_command(data: Path, models: Path) -> str:
    """The ``bayes-mem dashboard`` command line that serves the demo's store and registry.

    Examples
    --------
    A path with a space is quoted for the shell:

    >>> print(dashboard_command(Path("my demo/data"), Path("my demo/models")))
    bayes-mem dashboard --data 'my demo/data' --models 'my demo/models'
    """
    import shlex

    return (f"bayes-mem dashboard --data {shlex.quote(str(data))} "
            f"--models {shlex.quote(str(models))}")  # fmt: skip
