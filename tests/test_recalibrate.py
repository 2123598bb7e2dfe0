"""The nightly job end to end on a store of synthetic history: publish, reject, CLI."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_mem.cli import main
from bayes_mem.live.gjr_garch import GarchDraws, simulate, variance_path
from bayes_mem.live.prior_set import active_version, load_active
from bayes_mem.offline import returns_model as rm
from bayes_mem.offline.recalibrate import EXIT_PARTIAL, RecalibrationConfig, recalibrate
from bayes_mem.offline.winrate import WinRateModel
from bayes_mem.store import Store


def fill(store: Store, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    fams = {"momentum": 0.54, "mean_reversion": 0.47, "breakout": 0.5}
    names = {f"{f}_{i:02d}": f for f in fams for i in range(30)}
    store.register_signals(names)
    rows = []
    for name, fam in names.items():
        p = rng.beta(fams[fam] * 30, (1 - fams[fam]) * 30)
        for t in range(int(rng.integers(5, 40))):
            won = bool(rng.random() < p)
            rows.append(
                (f"{name}-{t}", name, won, 1.0 if won else -1.0, f"2026-01-{1 + t % 28:02d}")
            )
    store.ingest_outcomes(
        pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "settled_at"])
    )
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[-0.1]
    )
    dates = pd.bdate_range("2024-01-01", periods=400)
    for sym in ("SPY", "QQQ"):
        r, _ = simulate(truth, dates.size, rng)
        store.ingest_returns(
            pd.DataFrame({"symbol": sym, "date": dates, "return": r[0]}), kind="log"
        )


@pytest.fixture(scope="module")
def winrate_model():
    return WinRateModel()


@pytest.mark.slow
def test_publish_then_a_failed_win_rate_fit_keeps_v1s_win_rates(tmp_path, winrate_model):
    store = Store(data_dir=tmp_path / "data")
    fill(store)
    models = tmp_path / "models"
    config = RecalibrationConfig(returns_draws=50, returns_min_days=300)
    good = recalibrate(store, models, config, winrate_model)
    assert good.status == "active" and good.exit_code == 0, good.verdict
    assert active_version(models) == good.version == 1
    ps = load_active(models)
    assert set(ps.families) == {"momentum", "mean_reversion", "breakout"}
    assert set(ps.symbols) == {"SPY", "QQQ"} and ps.diagnostics["passed"]
    # the regime detector's hazard and prior, fitted on normal scores of data without changes
    assert ps.regime.to_dict()["schema"] == "bayes_mem.regime_prior/1"
    assert ps.regime.hazard <= 1 / 250
    detector = ps.regime_detector()
    assert detector.streams == ("QQQ", "SPY")
    assert detector.update(np.array([0.1, -0.3])).p_change.shape == (2,)
    fit = xr.open_datatree(f"{good.artifact_dir}/winrate_fit.nc", engine="h5netcdf")
    assert (
        json.loads(fit.attrs["config"])["draws"] == 2000
        and fit.attrs["config_hash"] == config.hash()
    )
    counts = store.signal_counts().groupby("family")[["wins", "trades"]].sum()
    for fam, post in ps.families.items():  # the family means follow the data
        assert abs(post.mean.mean() - counts.loc[fam, "wins"] / counts.loc[fam, "trades"]) < 0.02

    short = RecalibrationConfig(
        draws=40, tune=60, chains=2, returns_draws=50, returns_min_days=300, returns_model="laplace"
    )
    bad = recalibrate(store, models, short, winrate_model)
    # the win-rate fit fails (too few draws): that component keeps v1's version while the
    # returns (Laplace) and the regime prior refresh (issue 16: one failure froze them all)
    assert bad.status == "active" and bad.exit_code == EXIT_PARTIAL, bad.components
    assert any("ESS" in r for r in bad.verdict["reasons"])
    assert bad.components["winrate"]["status"] == "carried"
    assert active_version(models) == 2
    live = load_active(models)
    assert live.source("winrate") == ps.source("winrate") and live.source("returns").version == 2
    for fam, post in ps.families.items():  # v1's win rates, unchanged
        np.testing.assert_array_equal(live.families[fam].mean, post.mean)
    rows = store.table("prior_sets").set_index("version")
    assert rows.loc[1, "status"] == "retired" and rows.loc[2, "status"] == "active"
    assert (models / "prior_sets" / "v000002" / "winrate_fit.nc").exists()  # kept for analysts


@pytest.mark.slow
def test_cli_recalibrate_priors_and_ingest(tmp_path, capsys):
    data, models = tmp_path / "data", tmp_path / "models"
    store = Store(data_dir=data)
    fill(store, seed=1)
    store.close()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"returns_draws": 50, "returns_min_days": 300}))
    code = main(["recalibrate", "--data", str(data), "--models", str(models), "--config", str(cfg)])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["status"] == "active" and out["version"] == 1
    assert main(["priors", "list", "--models", str(models)]) == 0
    assert "v000001  active" in capsys.readouterr().out
    assert main(["priors", "activate", "7", "--models", str(models), "--data", str(data)]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("trade_id,signal,won,pnl,settled_at\nz1,nope,true,1,2026-01-01\n")
    assert main(["ingest", "outcomes", str(bad), "--data", str(data)]) == 1
    assert "line 2" in capsys.readouterr().err
    cfg.write_text(json.dumps({"draws": 10, "nonsense": 1}))
    assert (
        main(["recalibrate", "--data", str(data), "--models", str(models), "--config", str(cfg)])
        == 1
    )


@pytest.mark.slow
def test_returns_fit_in_the_nightly_job_and_the_laplace_option(tmp_path, winrate_model):
    from bayes_mem.live.prior_set import load_prior_set

    store = Store(data_dir=tmp_path / "data")
    fill(store, seed=2)
    # a third symbol with too little history is skipped; a late extra day for SPY only
    dates = pd.bdate_range("2024-01-01", periods=400)
    store.ingest_returns(
        pd.DataFrame({"symbol": "NEW", "date": dates[-50:], "return": 0.01 * np.sin(range(50))}),
        kind="log",
    )
    late = pd.DataFrame(
        {"symbol": ["SPY"], "date": [dates[-1] + pd.offsets.BDay()], "return": [-0.05]}
    )
    store.ingest_returns(late, kind="log")
    config = RecalibrationConfig(returns_draws=100, returns_min_days=300)
    assert config.returns_model == "pymc"
    result = recalibrate(store, tmp_path / "models", config, winrate_model)
    summary = result.verdict["summary"]
    assert result.status == "active", result.verdict
    assert "returns_max_rhat" in summary and "returns_lfo_pits" in summary
    assert {"returns_ppc_vol_clustering[SPY]", "returns_ppc_vol_clustering[QQQ]"} <= set(summary)
    assert summary["returns_ppc_correction"] == "holm" and summary["returns_state_ratio_max"] < 25
    ps = load_prior_set(tmp_path / "models", result.version)
    assert set(ps.symbols) == {"SPY", "QQQ"}
    for sym in ps.symbols.values():
        assert sym.draws.size == 100 and np.all(np.abs(sym.draws.lam) < 1)
        assert np.all((sym.draws.beta > 0.5) & (sym.draws.beta < 1.0))
    fit = xr.open_datatree(f"{result.artifact_dir}/returns_fit.nc", engine="h5netcdf")
    assert fit.attrs["config_hash"] == config.hash()
    assert list(fit["posterior"]["symbol"].values) == ["QQQ", "SPY"]
    # the published states are the fit's end-of-window states filtered forward through the
    # days held out of the fit (leave-future-out), each symbol on its own dates: SPY's late -5%
    # day (a date QQQ has no return) is the last day of SPY's series, and the state is the live
    # recursion's through all of it from its sample variance
    post = fit["posterior"].to_dataset().stack(sample=("chain", "draw"))
    panel = store.returns_panel(["QQQ", "SPY"])
    for name in ("QQQ", "SPY"):
        sym = ps.symbols[name]
        own = panel[name].dropna().to_numpy()
        beta = post["beta"].sel(symbol=name).values
        at = np.array([np.flatnonzero(beta == b)[0] for b in sym.draws.beta])
        end = post["last_sigma2_pct"].sel(symbol=name).values[at] / 100.0**2
        held = own[-rm.LFO_DAYS :]
        np.testing.assert_allclose(sym.sigma2, variance_path(held, sym.draws, end)[:, -1],
                                   rtol=1e-12)  # fmt: skip
        assert own.size == (401 if name == "SPY" else 400) and (name != "SPY" or own[-1] == -0.05)
        # the fit starts each symbol's recursion at the sample variance of the days it saw (not
        # of the whole series: a draw of persistence near 1 still carries that start 360 days on,
        # 3e-6 relative in a CI run)
        want = variance_path(own, sym.draws, float(own[: -rm.LFO_DAYS].var()))[:, -1]
        np.testing.assert_allclose(sym.sigma2, want, rtol=1e-9)
    laplace = recalibrate(
        store, tmp_path / "models2", RecalibrationConfig(returns_model="laplace", returns_draws=50,
        returns_min_days=300), winrate_model,
    )  # fmt: skip
    assert set(load_prior_set(tmp_path / "models2", laplace.version).symbols) == {"SPY", "QQQ"}
    with pytest.raises(ValueError, match="returns_model"):
        RecalibrationConfig(returns_model="garch")


def test_nightly_runs_in_one_process_compile_the_win_rate_model_once(tmp_path, monkeypatch):
    """Without an explicit model, recalibrate() uses the process-wide compiled model (a new
    compile per night cost 10-30 s in the walk-forward backtest)."""
    from bayes_mem.offline import compile_cache, winrate

    monkeypatch.setattr(winrate, "_DEFAULT", WinRateModel())  # a cold cache for this test
    calls = []
    real = compile_cache.compile_model
    monkeypatch.setattr(
        compile_cache, "compile_model", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    store = Store(data_dir=tmp_path / "data")
    fill(store)
    config = RecalibrationConfig(
        draws=100, tune=100, chains=2, returns_model="laplace", returns_draws=20, regime=False
    )
    for _ in range(2):
        recalibrate(store, tmp_path / "models", config)
    assert len(calls) == 1
    assert winrate.default_model() is winrate._DEFAULT


# ---------------------------------------------------------- ragged calendars, stale symbols
def calendars_panel(n_symbols: int = 4, n_days: int = 400, seed: int = 0) -> pd.DataFrame:
    """Daily log returns of ``n_symbols`` on different holiday calendars: each misses its own
    ~12% of the business days (NaN there), none shared."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=n_days)
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[-0.1]
    )
    owner = rng.integers(0, n_symbols + 1, n_days)  # whose holiday each date is (n: nobody's)
    owner[owner == n_symbols] = -1
    owner[rng.random(n_days) < 0.5] = -1
    cols = {}
    for j in range(n_symbols):
        r = simulate(truth, n_days, rng)[0][0]
        cols[f"S{j}"] = np.where(owner == j, np.nan, r)
    return pd.DataFrame(cols, index=dates)


def test_the_returns_window_keeps_each_symbols_own_dates():
    """Was: only the dates every symbol traded (dropna), so each symbol's recursion skipped the
    others' holidays (shocks joined across them), and with 4 calendars 400 dates fell to ~225,
    below returns_min_days: the nightly returns step raised."""
    from bayes_mem.offline.recalibrate import returns_window

    panel = calendars_panel()
    shared = len(panel.dropna())
    assert shared < 250  # the old window
    window = returns_window(panel, RecalibrationConfig(returns_window=400, returns_min_days=250))
    assert list(window.columns) == list(panel.columns)
    for c in panel.columns:  # every own return, in order: no shock skipped, none shared away
        own = panel[c].dropna()
        np.testing.assert_array_equal(window[c].dropna().to_numpy(), own.to_numpy())
        assert own.size > 330


def test_stale_symbols_are_skipped_with_the_reason_in_both_returns_paths(caplog):
    """A symbol with 65% zero returns was fitted: by the pooled model (an unbounded likelihood
    inside the one fit of every symbol) and by the Laplace path (nu 2.1, omega ~1e-100), and
    published."""
    from bayes_mem.offline.recalibrate import laplace_returns, returns_window
    from tests.test_gjr_garch import stale_prices

    panel = calendars_panel(2, 1000)
    panel["XYZ"] = stale_prices()
    config = RecalibrationConfig(returns_window=1000, returns_min_days=250, returns_draws=20)
    with caplog.at_level("WARNING", logger="bayes_mem.recalibrate"):
        window = returns_window(panel, config)
        symbols, pit = laplace_returns(panel, config, np.random.default_rng(0))
    assert list(window.columns) == ["S0", "S1"]
    assert set(symbols) == set(pit) == {"S0", "S1"}
    skipped = [r.getMessage() for r in caplog.records if "skipping XYZ" in r.getMessage()]
    assert len(skipped) == 2 and all("of the daily returns are zero" in m for m in skipped)
    for name, post in symbols.items():  # the state after the symbol's own last return
        r = panel[name].dropna().to_numpy()
        want = variance_path(r, post.draws, float(r.var()))[:, -1]
        np.testing.assert_allclose(post.sigma2, want, rtol=1e-12)


def test_the_win_rate_fit_takes_the_data_rich_target_acceptance_only_for_a_data_rich_book(
    monkeypatch,
):
    """Issue 17: ``target_accept_data_rich`` for a book whose concentrations are pinned by
    their signals and with enough families; ``target_accept`` otherwise (and the config's
    values are what reach the sampler)."""
    from bayes_mem.offline import recalibrate as rc
    from bayes_mem.offline import winrate

    seen = []

    def fit_gated(model, data, base, **kw):
        seen.append(base)
        return SimpleNamespace(tree=None, verdict=None)

    monkeypatch.setattr(winrate, "fit_gated", fit_gated)

    def book(families, signals, trades):
        counts = pd.DataFrame({
            "family": np.repeat([f"f{i}" for i in range(families)], signals),
            "wins": trades // 2, "trades": trades,
        })  # fmt: skip
        return rc.Outcomes(counts, winrate.WinRateData.from_counts(counts), None)

    config = RecalibrationConfig(target_accept=0.95, target_accept_data_rich=0.85)
    for outcomes in (book(20, 3000, 40), book(19, 3000, 40), book(20, 30, 40)):
        rc.fit_winrate(outcomes, config, model=object())
    assert [s.target_accept for s in seen] == [0.85, 0.95, 0.95]
    with pytest.raises(ValueError, match="target_accept_data_rich must be in"):
        RecalibrationConfig(target_accept_data_rich=1.0)
