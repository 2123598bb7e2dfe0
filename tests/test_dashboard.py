"""The dashboard's data layer (no browser) on SQLite and PostgreSQL, its read-only connection,
and the ``bayes-mem dashboard`` verb's refusals of bad input. The browser tests are in
tests/test_dashboard_browser.py."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from bayes_mem.cli import main
from bayes_mem.dashboard import data
from bayes_mem.dashboard.server import OptionError, check_options
from bayes_mem.dashboard.synthetic import fill_store
from bayes_mem.evaluation.es_backtest import z2_statistic
from bayes_mem.evaluation.var_backtest import coverage_tests
from bayes_mem.live.prior_set import activate, write_prior_set
from bayes_mem.store import Store
from tests import engine_parts

XSS = "<script>alert(1)</script>"


@pytest.fixture
def filled(store_url):
    with Store(store_url) as store:
        info = fill_store(store, np.random.default_rng(3), n_days=30, extra_signals={XSS: "carry"})
        tables = {name: store.table(name) for name in (
            "risk_metrics", "signal_quality", "portfolio_metrics", "regime_metrics",
            "correlation_metrics", "decisions", "returns")}  # fmt: skip
    source = data.open_source(store_url, None)
    yield source, info, tables
    source.close()


def test_a_write_through_the_dashboards_connection_fails(filled):
    source, _, tables = filled
    with pytest.raises(sa.exc.DBAPIError), source.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO regime_metrics (date, symbol, p_change) VALUES ('2030-01-02', 'X', 0.5)"
        ))  # fmt: skip
    with pytest.raises(sa.exc.DBAPIError), source.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM decisions"))
    with source.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar() == len(
            tables["decisions"]
        )


def test_risk_history_and_backtest_equal_the_store_and_reuse_the_tests(filled):
    source, info, tables = filled
    sym = info.symbols[1]
    risk = data.risk_history(source.engine, sym)
    stored = tables["risk_metrics"].query("symbol == @sym").sort_values("date")
    np.testing.assert_allclose(risk["es_log"], stored["es_log"])
    np.testing.assert_allclose(risk["es_high"], stored["es_high"])
    assert list(risk["date"].dt.date) == list(stored["date"])
    ret = data.symbol_returns(source.engine, sym)
    aligned = data.align_forecasts(risk, ret)
    # each return is matched with the forecast of the previous stored day
    assert len(aligned) == len(risk) - 1
    np.testing.assert_allclose(aligned["var_log"], stored["var_log"].to_numpy()[:-1])
    np.testing.assert_array_equal(aligned["exceed"], aligned["log_return"] < -aligned["var_log"])
    status = data.backtest_status(aligned, 0.975)
    cov = coverage_tests(aligned["exceed"].to_numpy(), 0.975)
    z2 = z2_statistic(aligned["log_return"].to_numpy(), aligned["var_log"].to_numpy(),
                      aligned["es_log"].to_numpy(), 0.975)  # fmt: skip
    assert status["p_kupiec"] == cov.p_pof and status["p_christoffersen"] == cov.p_ind
    assert status["z2"] == z2 and status["exceedances"] == cov.exceedances
    table = data.backtest_table(source.engine)
    assert table["symbol"].tolist() == info.symbols
    assert table.set_index("symbol").loc[sym, "z2"] == pytest.approx(z2)
    # a shorter window: the table equals each symbol's own status over its last 25 days
    short = data.backtest_table(source.engine, window=25, cache=False).set_index("symbol")
    for s in info.symbols:
        own = data.backtest_status(data.align_forecasts(
            data.risk_history(source.engine, s), data.symbol_returns(source.engine, s)),
            0.975, window=25)  # fmt: skip
        assert own["n"] == 25 and short.loc[s, "n"] == 25
        for key in ("exceedances", "p_kupiec", "p_christoffersen", "z2"):
            assert short.loc[s, key] == pytest.approx(own[key], nan_ok=True), (s, key)


def test_the_cached_backtest_table_follows_a_new_day(filled, store_url):
    source, info, _ = filled
    before = data.backtest_table(source.engine)
    assert data.backtest_table(source.engine).equals(before)  # served from the cache
    day = info.days[-1] + dt.timedelta(days=1)
    n = len(info.symbols)
    with Store(store_url) as store:  # a huge loss on every symbol: one more exceedance each
        store.ingest_returns(pd.DataFrame({"symbol": info.symbols, "date": [day] * n,
                                           "return": [-0.5] * n}), kind="log")  # fmt: skip
    after = data.backtest_table(source.engine)
    assert (after["n"] == before["n"] + 1).all()
    assert (after["exceedances"] == before["exceedances"] + 1).all()
    assert after.equals(data.backtest_table(source.engine, cache=False))


def test_align_forecasts_uses_the_forecast_made_before_the_day():
    risk = pd.DataFrame({"date": pd.to_datetime(["2024-01-02", "2024-01-04"]),
                         "var_log": [0.01, 0.05], "es_log": [0.02, 0.06]})  # fmt: skip
    rets = pd.DataFrame({"date": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04",
                                                 "2024-01-05"]),
                         "log_return": [-0.5, -0.02, -0.02, -0.02]})  # fmt: skip
    out = data.align_forecasts(risk, rets)
    assert list(out["date"].dt.day) == [3, 4, 5]  # 01-02 has no earlier forecast
    assert list(out["var_log"]) == [0.01, 0.01, 0.05]
    assert list(out["exceed"]) == [True, True, False]


def test_portfolio_contributions_add_up_to_the_stored_es(filled):
    source, _, tables = filled
    c = data.es_contributions(source.engine)
    assert len(c) > 0
    last = tables["portfolio_metrics"].sort_values("date").iloc[-1]
    assert c["contribution"].sum() == pytest.approx(last["portfolio_es"])
    assert c["share"].sum() == pytest.approx(1.0)


def test_one_position_carries_the_whole_es(filled, store_url):
    source, info, tables = filled
    day = dt.datetime.combine(info.days[-1] + dt.timedelta(days=1), dt.time(15), tzinfo=dt.UTC)
    with Store(store_url) as store:
        store.append_decisions([{
            "decided_at": day, "config": "live", "signal": info.signals[0],
            "symbol": info.symbols[2], "side": "short", "horizon": 1, "act": True,
            "notional": 1e4, "p_win": 0.6,
        }])  # fmt: skip
    c = data.es_contributions(source.engine)
    assert c["symbol"].tolist() == [info.symbols[2]] and c["notional"].tolist() == [-1e4]
    last = tables["portfolio_metrics"].sort_values("date").iloc[-1]
    assert c["contribution"].tolist() == [pytest.approx(last["portfolio_es"])]


def test_signal_quality_is_the_latest_snapshot_with_family(filled):
    source, info, tables = filled
    q = data.latest_signal_quality(source.engine)
    sq = tables["signal_quality"]
    latest = sq[sq["as_of"] == sq["as_of"].max()].set_index("signal")
    assert sorted(q["signal"]) == sorted(info.signals)
    got = q.set_index("signal")
    np.testing.assert_allclose(got.loc[latest.index, "posterior_mean"], latest["posterior_mean"])
    assert (got.loc[latest.index, "trades"] == latest["trades"]).all()
    assert got.loc[XSS, "family"] == "carry"  # a name is data, kept verbatim
    hist = data.signal_history(source.engine, XSS)
    assert len(hist) == len(sq[sq["signal"] == XSS])
    assert hist["as_of"].is_monotonic_increasing


def test_current_correlation_of_an_in_memory_store_finds_its_own_symbols():
    """Bug (found writing its example): with ``symbols=None`` it looked the symbols up on a
    second connection while its own was open, which an in-memory SQLite engine refuses."""
    store = Store("sqlite://")
    fill_store(store, np.random.default_rng(0), n_symbols=3, n_signals=3, n_days=30)
    syms, corr = data.current_correlation(store.engine)
    assert syms == data.risk_symbols(store.engine) and corr.shape == (3, 3)
    again, same = data.current_correlation(store.engine, syms)  # the symbols given: as before
    assert again == syms and np.array_equal(same, corr)


def test_correlation_decisions_and_regime_equal_the_store(filled):
    source, info, tables = filled
    e = source.engine
    hist = data.correlation_history(e)
    np.testing.assert_allclose(
        hist["effective_bets"], tables["correlation_metrics"].sort_values("date")["effective_bets"]
    )
    syms, corr = data.current_correlation(e)
    assert syms == info.symbols and corr.shape == (len(syms), len(syms))
    np.testing.assert_allclose(np.diag(corr), 1.0)
    log = data.decision_log(e)
    assert log["id"].tolist() == sorted(tables["decisions"]["id"], reverse=True)
    pairs = data.side_by_side(log)
    d = tables["decisions"]
    assert len(pairs) == d["key"].nunique()  # every event decided by both configurations
    row = pairs.iloc[0]
    live = d[(d["key"] == row["key"]) & (d["config"] == "live")].iloc[0]
    other = d[(d["key"] == row["key"]) & (d["config"] == "shadow")].iloc[0]
    assert (row["live_notional"], row["shadow_notional"]) == (live["notional"], other["notional"])
    assert row["shadow"] == "shadow" and log["why"].str.contains("sized by kelly").all()
    summary = data.config_summary(e).set_index("config")
    counts = tables["decisions"].groupby("config")["act"].agg(["count", "sum"])
    assert list(summary.index) == ["live", "shadow"]
    assert (summary["decisions"] == counts["count"]).all()
    assert (summary["acted"] == counts["sum"]).all()
    reg = data.regime_latest(e)
    rm = tables["regime_metrics"]
    last = rm[rm["date"] == rm["date"].max()].set_index("symbol")["p_change"]
    assert reg.set_index("symbol")["p_change"].to_dict() == pytest.approx(last.to_dict())
    assert reg["p_change"].is_monotonic_decreasing
    assert (reg["alarm"] == (reg["p_change"] >= data.ALARM_P_CHANGE)).all()
    alarms = data.regime_alarms(e)
    assert len(alarms) == int((rm["p_change"] >= data.ALARM_P_CHANGE).sum())


def test_data_version_changes_with_a_new_day(filled, store_url):
    source, info, _ = filled
    before = data.data_version(source.engine)
    day = info.days[-1] + dt.timedelta(days=3)
    with Store(store_url) as store:
        store.log_portfolio(day, gross_exposure=1e6, portfolio_es=2e4, portfolio_var=1e4,
                            level=0.975)  # fmt: skip
    after = data.data_version(source.engine)
    assert after != before and after.portfolio == day and after.regime == before.regime


def _registry(tmp_path):
    models = tmp_path / "models"
    write_prior_set(engine_parts.prior_set(1, data_through="2020-01-01"), models)
    activate(models, 1)
    bad = engine_parts.prior_set(2, data_through=dt.date.today().isoformat())
    bad = type(bad)(**{**bad.__dict__, "diagnostics": {
        "passed": False, "reasons": ["<b>r-hat</b> too high"],
        "components": {"winrate": {"status": "rejected", "reasons": ["r-hat 1.08 > 1.01"]}},
    }})  # fmt: skip
    write_prior_set(bad, models)
    (models / "reports").mkdir(mode=0o700)
    (models / "reports" / "v000001.html").write_text("<html><body>report one</body></html>")
    return models


def test_nightly_runs_show_gates_ages_stale_components_and_reports(tmp_path):
    models = _registry(tmp_path)
    today = dt.date(2020, 1, 31)
    runs = data.nightly_runs(models, today=today)
    assert runs["version"].tolist() == [2, 1]
    v1 = runs.set_index("version").loc[1]
    assert v1["active"] and v1["gate"] == "passed" and v1["report"] == "v000001.html"
    assert v1["returns_age_days"] == 30 and "returns (30 d)" in v1["stale"]
    v2 = runs.set_index("version").loc[2]
    assert v2["gate"] == "rejected" and v2["reasons"] == "<b>r-hat</b> too high"
    assert v2["winrate_verdict"] == "rejected (r-hat 1.08 > 1.01)"
    assert v2["report"] == ""
    priors = data.family_priors(models)
    assert priors["family"].tolist() == ["momentum", "reversion"] and (priors["version"] == 1).all()


def test_open_read_only_refuses_a_missing_file_and_creates_nothing(tmp_path):
    path = tmp_path / "none" / "bayes_mem.sqlite"
    with pytest.raises(data.DashboardError, match=r"no store at .*none/bayes_mem\.sqlite"):
        data.open_read_only(f"sqlite:///{path}")
    assert not path.parent.exists()
    with pytest.raises(data.DashboardError, match="not a database URL"):
        data.open_read_only("nonsense")


def test_the_live_path_never_imports_the_dashboard():
    code = (
        "import sys, bayes_mem.live, bayes_mem.live.engine, bayes_mem.live.prior_set\n"
        "print(' '.join(m for m in sys.modules if 'dashboard' in m or m.startswith('bokeh')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip()  # fmt: skip
    assert out == ""


# ---------------------------------------------------------------------------- the CLI verb
@pytest.fixture
def sqlite_store(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    url = f"sqlite:///{data_dir / 'bayes_mem.sqlite'}"
    Store(url).close()
    (tmp_path / "models").mkdir()
    return url, tmp_path / "models"


def _run(argv, capsys):
    code = main(["dashboard", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("port", ["0", "65536", "http", "-3"])
def test_bad_port_exits_2_naming_it(port, capsys, sqlite_store):
    url, models = sqlite_store
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "--store", url, "--models", str(models), "--port", port])
    assert exc.value.code == 2
    assert port in capsys.readouterr().err


def test_missing_store_and_models_exit_2_and_create_nothing(tmp_path, capsys, sqlite_store):
    url, models = sqlite_store
    code, err = _run(["--data", str(tmp_path / "nodata"), "--models", str(models)], capsys)
    assert code == 2 and "nodata/bayes_mem.sqlite" in err
    assert not (tmp_path / "nodata").exists()
    code, err = _run(["--store", url, "--models", str(tmp_path / "nomodels")], capsys)
    assert code == 2 and "nomodels" in err and not (tmp_path / "nomodels").exists()


def test_unreachable_store_url_exits_2_naming_it(capsys, sqlite_store):
    _, models = sqlite_store
    url = "postgresql+psycopg://nobody@127.0.0.1:1/bayes_mem"
    code, err = _run(["--store", url, "--models", str(models)], capsys)
    assert code == 2 and "127.0.0.1:1" in err
    code, err = _run(["--store", "nonsense://x", "--models", str(models)], capsys)
    assert code == 2 and "nonsense" in err


def test_a_host_beyond_loopback_needs_a_token(capsys, sqlite_store):
    url, models = sqlite_store
    code, err = _run(["--store", url, "--models", str(models), "--host", "0.0.0.0"], capsys)
    assert code == 2 and "0.0.0.0" in err and "--token" in err
    with pytest.raises(OptionError, match="--token"):
        check_options("192.168.1.5", 5006, None, 5.0)
    with pytest.raises(OptionError, match="16-200"):
        check_options("127.0.0.1", 5006, "short", 5.0)
    assert check_options("0.0.0.0", 5006, "x" * 20, 5.0).token == "x" * 20
    assert check_options("::1", 5006, None, 5.0).token is None


@pytest.mark.parametrize(
    ("option", "value"),
    [("--refresh", "0"), ("--refresh", "nan"), ("--token", "has a space in it, 24 ch")],
)
def test_bad_refresh_or_token_exits_2_naming_it(option, value, capsys, sqlite_store):
    url, models = sqlite_store
    code, err = _run(["--store", url, "--models", str(models), option, value], capsys)
    assert code == 2 and option in err


def test_a_port_in_use_exits_2_naming_it(capsys, sqlite_store):
    url, models = sqlite_store
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, err = _run(["--store", url, "--models", str(models), "--port", str(port)], capsys)
    assert code == 2 and str(port) in err


def test_every_page_builds_on_an_empty_store_and_registry(store_url, tmp_path):
    from bokeh.document import Document

    from bayes_mem.dashboard import pages

    Store(store_url).close()
    (tmp_path / "models").mkdir()
    source = data.open_source(store_url, tmp_path / "models")
    try:
        for page in pages.PAGES:
            doc = Document()
            update = pages.make_document(page, pages.Context(source), doc)
            update()  # a refresh on the still empty store
            assert len(doc.roots) == 1 and doc.to_json(), page
    finally:
        source.close()
