"""Dashboard speed goal (issue 19): with 500 symbols, 10,000 signals and a year (252 business days)
of metrics in a SQLite store, every page renders in under 1 s, and the poll an open page runs
every refresh interval is cheap.

"Renders" is the server's whole share of opening a page: the page's queries, its Bokeh document
built and serialised to the JSON the browser receives (``Document.to_json``), as the server
serves it: its warm-up keeps the risk page's one costly aggregate, the backtest table,
computed ahead of visitors (``server.start_warmer``); the rows "cold" (that cache emptied
before each call) and "backtest table" show what a visitor would wait without it.
Each page is printed next to a plain pandas read (``pandas.read_sql``) of the same whole tables,
timed in the same run (the nightly page reads the registry's files: its baseline parses them
with ``json``). The store (about 2.5 million signal-quality rows) is built first through the
store's ``log_*`` methods from a seeded generator; building it takes a few minutes, not timed.

Run alone: ``python -m benchmarks --only dashboard --repeat 3`` (``BAYES_MEM_BENCH_DASHBOARD_DIR``
names a folder that keeps the store between runs).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.document import Document

from bayes_mem.dashboard import data, pages
from bayes_mem.dashboard.synthetic import FAMILIES, fill_store
from bayes_mem.live.prior_set import FamilyPosterior, PriorSet, activate, write_prior_set
from bayes_mem.store import Store
from benchmarks._timing import Result, best_pair

N_SYMBOLS, N_SIGNALS, N_DAYS = 500, 10_000, 252

#: the tables each page reads (its baseline reads them whole with pandas)
TABLES = {
    "risk": ("risk_metrics", "returns", "portfolio_metrics", "decisions"),
    "correlation": ("correlation_metrics", "returns"),
    "signals": ("signal_quality", "signals", "signal_symbols"),
    "decisions": ("decisions",),
    "regime": ("regime_metrics",),
}


def _registry(models: Path, rng: np.random.Generator, versions: int = 5) -> None:
    for v in range(1, versions + 1):
        fams = {f: FamilyPosterior(np.clip(0.5 + 0.02 * rng.standard_normal(500), 0.01, 0.99),
                                   np.exp(np.log(30.0) + 0.2 * rng.standard_normal(500)))
                for f in FAMILIES}  # fmt: skip
        write_prior_set(PriorSet(
            version=v, created_at=f"2024-12-{v:02d}T00:00:00+00:00",
            data_through=f"2024-11-{v:02d}", code_version="bench", config_hash="0" * 64,
            families=fams, diagnostics={"passed": v != 3, "reasons": [] if v != 3 else
                                        ["winrate: r-hat 1.08 > 1.01"]},
        ), models)  # fmt: skip
    activate(models, versions)


def build(root: Path, seed: int = 0) -> tuple[str, Path]:
    """The benchmark's store and registry under ``root``; returns (store URL, models dir)."""
    rng = np.random.default_rng(seed)
    url = f"sqlite:///{root / 'bayes_mem.sqlite'}"
    with Store(url) as store:
        fill_store(store, rng, n_symbols=N_SYMBOLS, n_signals=N_SIGNALS, n_days=N_DAYS,
                   decisions_per_day=40)  # fmt: skip
    models = root / "models"
    _registry(models, rng)
    return url, models


def render(page: str, ctx: pages.Context, cold: bool = False) -> dict:
    """Build and serialise ``page`` as a visitor gets it from the server (whose warm-up keeps the
    risk page's backtest table computed); ``cold``: that cache emptied first, as if the
    visitor came in the instant a new day arrived."""
    if cold:
        data._BACKTEST_CACHE.clear()
    doc = Document()
    pages.make_document(page, ctx, doc)
    return doc.to_json()


def _read_tables(engine, names: tuple[str, ...]) -> int:
    rows = 0
    with engine.connect() as conn:
        for name in names:
            rows += len(pd.read_sql(f"SELECT * FROM {name}", conn))  # constant names
    return rows


def _read_registry(models: Path) -> int:
    return sum(len(json.loads(p.read_bytes())) for p in models.glob("prior_sets/v*/prior_set.json"))


#: a folder to keep the benchmark's store in between runs (built there once when empty)
KEEP_ENV = "BAYES_MEM_BENCH_DASHBOARD_DIR"


def run(repeat: int = 7) -> list[Result]:
    repeat = max(1, min(repeat, 3))  # a baseline reads 2.5 million rows: seconds per call
    keep = os.environ.get(KEEP_ENV)
    with tempfile.TemporaryDirectory(prefix="bm-dash-bench-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        t0 = time.perf_counter()
        if (root / "bayes_mem.sqlite").exists() and (root / "models").is_dir():
            url, models = f"sqlite:///{root / 'bayes_mem.sqlite'}", root / "models"
            print(f"dashboard benchmark store reused from {root}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            url, models = build(root)
            print(f"dashboard benchmark store: {N_SYMBOLS} symbols, {N_SIGNALS:,} signals, "
                  f"{N_DAYS} days, built in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        source = data.open_source(url, models)
        try:
            ctx = pages.Context(source, 5.0)
            results = []
            for page in pages.PAGES:
                if page == "nightly":
                    base = lambda: _read_registry(models)  # noqa: E731
                    base_name = "json of the prior sets"
                else:
                    names = TABLES[page]
                    base = lambda names=names: _read_tables(source.engine, names)  # noqa: E731
                    base_name = "pandas read " + "+".join(n.split("_")[0] for n in names)
                data.backtest_table(source.engine)  # the server's warm-up (start_warmer)
                sub, bl = best_pair(lambda page=page: render(page, ctx), base, 1, repeat)
                results.append(Result(f"dashboard page /{page}", sub, base_name[:28], bl,
                                      "< 1 s", max_us=1e6))  # fmt: skip
                if page == "risk":  # the instant a new day arrived, before the warm-up ran
                    cold, bl = best_pair(lambda: render("risk", ctx, cold=True), base, 1, repeat)
                    results.append(Result("dashboard page /risk, cold", cold, base_name[:28],
                                          bl, "report"))  # fmt: skip
                    table, bl = best_pair(lambda: data.backtest_table(source.engine, cache=False),
                                          base, 1, repeat)  # fmt: skip
                    results.append(Result("backtest table (warm-up)", table, base_name[:28], bl,
                                          "report"))  # fmt: skip
            sub, bl = best_pair(lambda: data.data_version(source.engine),
                                lambda: _read_tables(source.engine, ("portfolio_metrics",)),
                                20, repeat)  # fmt: skip
            results.append(Result("dashboard refresh poll", sub, "pandas read portfolio", bl,
                                  "< 10 ms", max_us=1e4))  # fmt: skip
            return results
        finally:
            source.close()
