"""The dashboard as a person uses it: the real ``bayes-mem dashboard`` server on loopback (a free
port, a token) and the OS's headless Chromium driven by Playwright (no browser download, no
mock of either). One server and one browser for the module; a small store.

Checked: every page renders its plots and tables with the store's values and no console error;
a sorted table sorts and the family filter filters; a signal named ``<script>alert(1)</script>``
shows as that text and runs nothing; a new day logged on the same store reaches open pages
without a reload; requests without the token are refused.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from bayes_mem.dashboard.synthetic import SyntheticForecast, business_days, fill_store
from bayes_mem.store import Store
from tests import chromium
from tests.test_dashboard import XSS, _registry

TOKEN = "test-token-0123456789abcdef"
PAGES = ("risk", "correlation", "signals", "decisions", "nightly", "regime")


def _need(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what}: .ci/run should provide it")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url_module(request, tmp_path_factory):
    """A store URL for the module: a SQLite file, or a fresh PostgreSQL database (dropped
    afterwards; skipped without BAYES_MEM_TEST_PG_URL, as tests/conftest.py)."""
    if request.param == "sqlite":
        data_dir = tmp_path_factory.mktemp("data")
        data_dir.chmod(0o700)
        yield f"sqlite:///{data_dir / 'bayes_mem.sqlite'}"
        return
    from tests.conftest import fresh_pg_database

    with fresh_pg_database("bm_dash") as url:
        yield url


@pytest.fixture(scope="module")
def app(tmp_path_factory, store_url_module):
    """The running server: (base URL, store URL, synthetic store info)."""
    tmp = tmp_path_factory.mktemp("dashboard")
    url = store_url_module
    with Store(url) as store:
        info = fill_store(store, np.random.default_rng(11), n_days=30,
                          extra_signals={XSS: "carry"})  # fmt: skip
    models = _registry(tmp)
    port = _free_port()
    log = tmp / "server.log"  # a file, not a pipe: a full pipe would block the server
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bayes_mem.cli", "dashboard", "--store", url, "--models",
             str(models), "--port", str(port), "--token", TOKEN, "--refresh", "0.5"],
            stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if "serving" in log.read_text():
                break
            time.sleep(0.2)
        assert "serving" in log.read_text(), log.read_text()
        yield f"http://127.0.0.1:{port}", url, info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package is not installed (pip install bayes_mem[dev])")
    exe = chromium.find_chromium()
    if exe is None:
        _need("no chromium on PATH (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


READ_SOURCE = """(name) => {
  const m = Bokeh.documents[0].get_model_by_name(name);
  if (m == null) return null;
  const d = m.data;
  const out = {};
  const entries = d instanceof Map ? Array.from(d.entries()) : Object.entries(d);
  for (const [k, v] of entries) {
    out[k] = (v != null && typeof v.length === "number" && typeof v !== "string")
      ? Array.from(v, (x) => (x != null && x.shape !== undefined) ? Array.from(x.shape) : x)
      : v;
  }
  return out;
}"""


class Page:
    """One browser tab on one dashboard page, recording console errors and dialogs."""

    def __init__(self, browser, base: str, path: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1600})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(f"{base}/{path}?token={TOKEN}")
        self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length > 0 && "
            "Bokeh.documents[0].get_model_by_name('status') != null",
            timeout=30_000,
        )
        if path not in ("decisions", "nightly"):  # the pages with figures
            self.page.locator(".bk-Figure canvas").first.wait_for(timeout=30_000)
        self.page.evaluate("() => { window.__same_page = 1; }")

    def source(self, name: str) -> dict:
        out = self.page.evaluate(READ_SOURCE, name)
        assert out is not None, f"no source {name!r} on the page"
        return out

    def wait_rows(self, name: str, column: str, n: int | None = None) -> dict:
        cond = "> 0" if n is None else f"=== {n}"
        self.page.wait_for_function(
            f"(name) => {{ const s = ({READ_SOURCE})(name); "
            f"return s && s['{column}'] && s['{column}'].length {cond}; }}",
            arg=name, timeout=30_000,
        )  # fmt: skip
        return self.source(name)

    def close(self) -> None:
        self.context.close()


def _ms(dates) -> list[float]:
    return [pd.Timestamp(d).value / 1e6 for d in dates]


def _table(url: str, name: str) -> pd.DataFrame:
    with Store(url) as store:
        return store.table(name)


def test_every_page_renders_the_stores_values_without_console_errors(app, browser):
    base, url, info = app
    seen = {}
    for path in PAGES:
        page = Page(browser, base, path)
        try:
            if path == "risk":
                series = page.wait_rows("risk_series", "es_log")
                risk = _table(url, "risk_metrics")
                stored = risk[risk["symbol"] == info.symbols[0]].sort_values("date")
                np.testing.assert_allclose(series["es_log"], stored["es_log"])
                np.testing.assert_allclose(series["es_high"], stored["es_high"])
                assert series["date"] == _ms(stored["date"])
                rets = page.source("risk_returns")
                hits = page.source("risk_exceedances")
                assert len(rets["loss"]) == len(stored) - 1
                assert len(hits["loss"]) == sum(rets["exceed"])
                assert page.source("risk_backtest")["symbol"] == info.symbols
                port = page.source("portfolio_series")
                np.testing.assert_allclose(
                    port["portfolio_es"],
                    _table(url, "portfolio_metrics").sort_values("date")["portfolio_es"],
                )
                contrib = page.source("contributions")
                assert np.sum(contrib["contribution"]) == pytest.approx(port["portfolio_es"][-1])
            elif path == "correlation":
                matrix = page.wait_rows("corr_matrix", "image")
                n = len(info.symbols)
                assert matrix["image"] == [[n, n]]
                heat = page.page.locator(".bk-Figure canvas").first.bounding_box()
                page.page.mouse.move(heat["x"] + heat["width"] * 0.3,
                                     heat["y"] + heat["height"] * 0.5)  # fmt: skip
                tip = page.page.locator(".bk-tooltip-row-value")
                tip.first.wait_for(timeout=10_000)
                assert set(tip.all_inner_texts()[:2]) <= set(info.symbols)  # the cell's names
                series = page.source("corr_series")
                np.testing.assert_allclose(
                    series["effective_bets"],
                    _table(url, "correlation_metrics").sort_values("date")["effective_bets"],
                )
            elif path == "signals":
                table = page.wait_rows("signal_table", "signal")
                assert sorted(table["signal"]) == sorted(info.signals)
                sq = _table(url, "signal_quality")
                latest = sq[sq["as_of"] == sq["as_of"].max()].set_index("signal")
                got = pd.Series(table["trades"], index=table["signal"])
                assert (got[latest.index] == latest["trades"]).all()
                assert len(page.source("signal_series")["posterior_mean"]) == len(info.days)
                assert page.source("family_priors")["family"] == ["momentum", "reversion"]
            elif path == "decisions":
                log = page.wait_rows("decision_table", "id")
                ids = sorted(_table(url, "decisions")["id"], reverse=True)
                assert log["id"] == ids[: len(log["id"])]
                assert page.source("config_table")["config"] == ["live", "shadow"]
                pairs = page.source("side_by_side")
                assert len(pairs["key"]) == len(ids) // 2 and set(pairs["shadow"]) == {"shadow"}
                page.page.locator(".bm-decision_log_table .slick-cell").first.wait_for()
            elif path == "nightly":
                runs = page.wait_rows("nightly_table", "version")
                assert runs["version"] == [2, 1] and runs["gate"] == ["rejected", "passed"]
                reason = page.page.locator(".bm-nightly_runs_table .slick-cell",
                                           has_text="<b>r-hat</b> too high")  # fmt: skip
                assert reason.count() == 1  # shown as text, not as bold HTML
                link = page.page.locator("a", has_text="report of v000001")
                assert link.count() == 1
                link.click()
                page.page.wait_for_load_state()
                assert "report one" in page.page.content()
            elif path == "regime":
                table = page.wait_rows("regime_table", "p_change")
                rm = _table(url, "regime_metrics")
                last = rm[rm["date"] == rm["date"].max()].set_index("symbol")["p_change"]
                assert dict(zip(table["symbol"], table["p_change"], strict=True)) == (
                    pytest.approx(last.to_dict())
                )
                assert len(page.source("regime_series")["p_change"]) == len(info.days)
            figures = {"risk": 3, "correlation": 3, "signals": 1, "regime": 1}.get(path, 0)
            boxes = [c.bounding_box() for c in page.page.locator(".bk-Figure canvas").all()]
            big = [b for b in boxes if b and b["width"] > 300 and b["height"] > 200]
            assert len(big) >= figures, (path, boxes)  # each figure drawn at its size
            assert page.errors == [], (path, page.errors)
            seen[path] = True
        finally:
            page.close()
    assert set(seen) == set(PAGES)


def _visible_column(page, table: str, col: int) -> list[str]:
    """The text of column ``col`` in the rendered rows of a SlickGrid, in screen order."""
    rows = page.locator(f".{table} .slick-row").all()
    placed = []
    for r in rows:
        top = r.evaluate("(e) => e.getBoundingClientRect().top")
        placed.append((top, r.locator(".slick-cell").nth(col).inner_text()))
    return [text for _, text in sorted(placed)]


def test_the_signal_table_sorts_filters_and_shows_names_as_text(app, browser):
    base, url, _ = app
    page = Page(browser, base, "signals")
    p = page.page
    try:
        page.wait_rows("signal_table", "signal")
        p.add_init_script("window.alert = () => { window.__alerted = true; };")
        grid = "bm-signal_quality_table"
        p.locator(f".{grid} .slick-row").first.wait_for()
        p.locator(f".{grid} .slick-header-column", has_text="trades").click()
        p.wait_for_timeout(300)
        trades = [int(t.replace(",", "")) for t in _visible_column(p, grid, 3)]
        sq = _table(url, "signal_quality")
        stored = sorted(sq[sq["as_of"] == sq["as_of"].max()]["trades"].tolist())
        assert trades == stored[: len(trades)] and len(trades) >= 5
        # clicking a row shows that signal's posterior over time
        name = _visible_column(p, grid, 0)[0]
        p.locator(f".{grid} .slick-cell", has_text=name).first.click()
        p.wait_for_function(
            "(name) => Bokeh.documents[0].get_model_by_name('signal_pick').value === name",
            arg=name, timeout=15_000,
        )  # fmt: skip
        hist = _table(url, "signal_quality")
        own = hist[hist["signal"] == name].sort_values("as_of")["posterior_mean"].tolist()
        p.wait_for_function(
            f"(want) => {{ const s = ({READ_SOURCE})('signal_series'); "
            "return s && JSON.stringify(s.posterior_mean) === JSON.stringify(want); }",
            arg=own, timeout=15_000,
        )  # fmt: skip
        # the name is shown literally, as text; no script ran
        cell = p.locator(f".{grid} .slick-cell", has_text=XSS)
        assert cell.count() == 1 and cell.inner_text() == XSS
        assert "&lt;script&gt;" in cell.inner_html()
        assert p.evaluate("() => window.__alerted === undefined") and page.dialogs == []
        # filter by family
        p.locator(".bm-family_filter select").select_option("carry")
        n_carry = int((_table(url, "signals")["family"] == "carry").sum())
        table = page.wait_rows("signal_table", "family", n_carry)
        assert set(table["family"]) == {"carry"} and XSS in table["signal"]
        assert page.errors == []
    finally:
        page.close()


def test_requests_without_the_token_are_refused(app):
    base, _, _ = app
    for path in ("/risk", "/signals", "/reports/v000001.html"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(base + path, timeout=30)
        assert exc.value.code == 403
    req = urllib.request.Request(base + "/reports/v000001.html",
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and b"report one" in resp.read()
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{base}/risk?token={'x' * 26}", timeout=30)
    assert exc.value.code == 403


def _log_day(url: str, info, day: dt.date) -> None:
    """One more day on the store, through its log_* methods (what the engine's recorder calls)."""
    n = len(info.symbols)
    vol = np.full(n, 0.02)
    with Store(url) as store:
        store.ingest_returns(
            pd.DataFrame(
                {"symbol": info.symbols, "date": [day] * n, "return": np.linspace(-0.01, 0.01, n)}
            ),
            kind="log",
        )
        store.log_risk(day, SyntheticForecast(tuple(info.symbols), 0.975, 2 * vol, 2.4 * vol, vol))
        store.log_correlation(
            day,
            average_correlation=0.2,
            concentration_score=0.6,
            effective_bets=2.5,
            breakdown_p=0.5,
            breakdown_score=0.25,
        )
        store.log_regime(day, {s: 0.9 for s in info.symbols})
        store.log_portfolio(day, gross_exposure=1e6, portfolio_es=54321.0, portfolio_var=3e4,
                            level=0.975)  # fmt: skip


def test_a_new_day_reaches_open_pages_without_a_reload(app, browser):
    base, url, info = app
    pages = {path: Page(browser, base, path) for path in ("risk", "correlation", "regime")}
    try:
        pages["risk"].wait_rows("portfolio_series", "portfolio_es")
        day = business_days(info.days[-1] + dt.timedelta(days=1), 1)[0]
        while day in info.days or day <= max(info.days):
            day += dt.timedelta(days=1)
        _log_day(url, info, day)
        ms = _ms([day])[0]
        for path, (name, col) in {"risk": ("portfolio_series", "date"),
                                  "correlation": ("corr_series", "date"),
                                  "regime": ("regime_table", "date")}.items():  # fmt: skip
            p = pages[path].page
            p.wait_for_function(
                f"([name, col, ms]) => {{ const s = ({READ_SOURCE})(name); "
                "return s && s[col].length > 0 && Math.max(...s[col]) === ms; }",
                arg=[name, col, ms], timeout=15_000,
            )  # fmt: skip
            assert p.evaluate("() => window.__same_page") == 1  # never reloaded
        port = pages["risk"].source("portfolio_series")
        assert port["portfolio_es"][-1] == 54321.0
        regime = pages["regime"].source("regime_table")
        assert set(regime["p_change"]) == {0.9} and all(regime["alarm"])
        for page in pages.values():
            assert page.errors == []
    finally:
        for page in pages.values():
            page.close()
