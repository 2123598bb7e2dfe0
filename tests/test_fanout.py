"""The returns fit fanned out on Dask (issue 17, :mod:`bayes_mem.offline.fanout`), on a real
``LocalCluster`` of 2 single-threaded worker processes on loopback (no mocks): same seed, same
draws on 1 and 2 workers; the gathered fit has the pooled fit's layout and passes through its
gate; a worker killed mid-fit is retried and the job publishes, a task that fails for good
stops the job with the previous prior set active; a bad ``--scheduler`` is named and changes
nothing; the two-stage posteriors agree with the full pooled fit (VaR/ES) and the procedure is
calibrated (SBC)."""

from __future__ import annotations

import functools
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_mem.live.gjr_garch import GarchDraws, simulate
from bayes_mem.offline import fanout
from bayes_mem.offline import returns_model as rm

SYMBOLS = ["AAA", "BBB", "CCC", "DDD", "EEE"]
FAST = dict(draws=100, tune=150, chains=2, target_accept=0.9)


def panel(rng: np.random.Generator, n_symbols: int, n_days: int) -> np.ndarray:
    """(days, symbols) daily log returns of GJR-GARCH skew-t symbols with different dynamics."""
    cols = []
    for _ in range(n_symbols):
        d = GarchDraws(
            mu=[3e-4], omega=[rng.uniform(1e-6, 4e-6)], alpha=[rng.uniform(0.02, 0.06)],
            gamma=[rng.uniform(0.05, 0.12)], beta=[rng.uniform(0.84, 0.9)],
            nu=[rng.uniform(5.0, 9.0)], lam=[rng.uniform(-0.2, 0.0)],
        )  # fmt: skip
        cols.append(simulate(d, n_days, rng)[0][0])
    return np.stack(cols, axis=1)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    c = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )  # fmt: skip
    yield c
    c.close()


@pytest.fixture
def client(cluster):
    from distributed import Client

    with Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def returns():
    return panel(np.random.default_rng(3), len(SYMBOLS), 300)


@pytest.fixture(scope="module")
def two_fits(cluster, returns):
    """The same two-stage fit (subset 2, seed 11) on the cluster with 2 workers, then scaled
    down to 1 (the worker left has already fitted other symbols: the order tasks ran in differs
    too), then back to 2."""
    from distributed import Client

    with Client(cluster, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        two = fanout.FanoutReturnsFitter(c, subset=2).fit(returns, SYMBOLS, seed=11, **FAST)
        cluster.scale(1)
        deadline = time.monotonic() + 60
        while len(c.scheduler_info()["workers"]) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(c.scheduler_info()["workers"]) == 1
        one = fanout.FanoutReturnsFitter(c, subset=2).fit(returns, SYMBOLS, seed=11, **FAST)
        cluster.scale(2)
    return one, two


def test_same_seed_same_draws_on_one_and_two_workers(two_fits):
    one, two = two_fits
    a, b = one["posterior"].to_dataset(), two["posterior"].to_dataset()
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    np.testing.assert_array_equal(
        one["sample_stats"]["energy"].values, two["sample_stats"]["energy"].values
    )


def test_task_seeds_depend_on_seed_and_symbol_only():
    assert fanout.task_seed(3, "SPY") == fanout.task_seed(3, "SPY")
    assert len({fanout.task_seed(s, x) for s in (0, 1) for x in ("SPY", "QQQ")}) == 4
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        fanout.task_seed(-1, "SPY")


def test_the_gathered_fit_has_the_pooled_layout_and_goes_through_the_gate(two_fits, returns):
    _, tree = two_fits
    post = tree["posterior"]
    pooled_vars = {"pi0", "s_pi", "n0", "s_nu", "l0", "s_lam", "u", "w", "x", "persistence",
                   "shock_share", "asymmetry", "long_run_var", "nu", "lam", "mu_pct", "kappa",
                   "alpha", "gamma", "beta", "omega_pct", "last_sigma2_pct"}  # fmt: skip
    assert set(post.data_vars) == pooled_vars
    assert list(post["symbol"].values) == SYMBOLS
    assert post["persistence"].dims == ("chain", "draw", "symbol")
    assert post["pi0"].dims == ("chain", "draw") and post.sizes["draw"] == FAST["draws"]
    # the draw-by-draw identities of the pooled model hold for every symbol
    pers = 1 / (1 + np.exp(-(post["pi0"] + post["s_pi"] * post["u"])))
    np.testing.assert_allclose(pers.values, post["persistence"].values, rtol=1e-9)
    np.testing.assert_allclose(
        np.tanh(post["l0"] + post["s_lam"] * post["x"]).values, post["lam"].values, rtol=1e-9
    )
    subset = tree.attrs["stage1_symbols"].split(",")
    assert len(subset) == 2
    fits = list(tree["sample_stats"]["fit"].values)
    assert fits == ["pooled"] + [s for s in SYMBOLS if s not in subset]
    verdict = rm.check(tree, returns, rng=0, n_rep=200)  # the pooled fit's gate, unchanged
    assert "max_rhat" in verdict.summary and "divergences" in verdict.summary
    assert {f"ppc_left_tail[{s}]" for s in SYMBOLS} <= set(verdict.summary)
    live = rm.draws_for_live(tree, 50, np.random.default_rng(0))
    assert set(live) == set(SYMBOLS) and all(np.all(v > 0) for _, v in live.values())


def test_a_small_book_is_one_pooled_fit(client, returns):
    tree = fanout.FanoutReturnsFitter(client, subset=2).fit(
        returns[:, :2], SYMBOLS[:2], seed=1, **FAST
    )
    assert "fit" not in tree["sample_stats"].dims and "stage1_symbols" not in tree.attrs


def test_a_local_cluster_has_one_single_threaded_process_per_worker(caplog):
    caplog.set_level("INFO", logger="bayes_mem.fanout")
    with fanout.dask_client(n_workers=1) as c:
        workers = c.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [1]
        assert list(c.run(os.getpid).values()) != [os.getpid()]  # a process of its own
    assert "dashboard http://127.0.0.1:" in caplog.text, caplog.text


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="subset must be an integer >= 2, got 1"):
        fanout.FanoutReturnsFitter(None, subset=1)
    with pytest.raises(ValueError, match=r"hyper must be \(draws, 6\)"):
        fanout.build_conditional_model(np.ones(10), 1.0, 1.0, np.ones((3, 5)))
    with pytest.raises(ValueError, match="fanout must be 'off' or 'dask', got 'ray'"):
        from bayes_mem.offline.recalibrate import RecalibrationConfig

        RecalibrationConfig(fanout="ray")
    with pytest.raises(ValueError, match="scheduler 'tcp://x:1' is given but fanout is 'off'"):
        RecalibrationConfig(scheduler="tcp://x:1")
    assert RecalibrationConfig().hash() == RecalibrationConfig(fanout_workers=3).hash()
    assert RecalibrationConfig().hash() != RecalibrationConfig(fanout="dask").hash()


# ------------------------------------------------------------------------------ the nightly job
def fill(store, seed: int = 0, n_symbols: int = 4, n_days: int = 400) -> None:
    """A small store: 2 families x 6 signals of settled trades and ``n_symbols`` symbols."""
    rng = np.random.default_rng(seed)
    names = {f"{f}_{i}": f for f in ("momentum", "breakout") for i in range(6)}
    store.register_signals(names)
    rows = []
    for name in names:
        for t in range(20):
            won = bool(rng.random() < 0.52)
            rows.append((f"{name}-{t}", name, won, 1.0 if won else -1.0,
                         f"2026-01-{1 + t % 28:02d}"))  # fmt: skip
    store.ingest_outcomes(
        pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "settled_at"])
    )
    dates = pd.bdate_range("2024-01-01", periods=n_days)
    r = panel(rng, n_symbols, n_days)
    for j in range(n_symbols):
        store.ingest_returns(
            pd.DataFrame({"symbol": f"S{j}", "date": dates, "return": r[:, j]}), kind="log"
        )


def die_once(marker: str, task: fanout.SymbolTask) -> dict:
    """The stage-2 task, but the first task to run kills its own worker process (SIGKILL) while
    the fit is running; the marker file records the killed worker's pid."""
    try:
        with open(marker, "x") as fh:
            fh.write(str(os.getpid()))
    except FileExistsError:
        pass
    else:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return fanout.fit_symbol(task)


def always_fails(task: fanout.SymbolTask) -> dict:
    raise RuntimeError(f"no fit of {task.symbol} tonight")


# the returns fit at the nightly job's own 1,000 + 1,000 draws: with 300 + 300 its gate passed
# locally only at the third attempt, and in CI failed all three (R-hat 1.015; tail ESS of the
# persistence). At these settings seeds 0, 2, 3 passed at the first attempt, seed 1 at the third
# (tail ESS 342 < 400 of the persistence, then a rank plot), in 67-196 s.
JOB = dict(draws=500, tune=500, chains=4, returns_mcmc_draws=1000, returns_mcmc_tune=1000,
           returns_draws=50, returns_min_days=300, fanout="dask", fanout_subset=2)  # fmt: skip


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_a_failed_fanout_keeps_the_active_set(tmp_path, client):
    from bayes_mem.live.prior_set import active_version, list_versions
    from bayes_mem.offline.recalibrate import RecalibrationConfig, recalibrate
    from bayes_mem.store import Store

    store = Store(data_dir=tmp_path / "data")
    fill(store)
    models = tmp_path / "models"
    config = RecalibrationConfig(**JOB)
    marker = tmp_path / "killed.pid"
    before = set(client.run(os.getpid).values())
    fitter = fanout.FanoutReturnsFitter(
        client, subset=2, task=functools.partial(die_once, str(marker))
    )
    result = recalibrate(store, models, config, returns_model=fitter)
    killed = int(marker.read_text())
    assert killed in before
    client.wait_for_workers(2, timeout=60)
    assert killed not in set(client.run(os.getpid).values())
    assert result.status == "active", result.verdict
    assert result.components["returns"]["status"] == "refreshed", result.components["returns"]
    assert active_version(models) == result.version == 1
    assert result.report and Path(result.report).exists()  # the analyst report reads the fit
    rows = store.table("prior_sets")

    failing = fanout.FanoutReturnsFitter(client, subset=2, retries=1, task=always_fails)
    with pytest.raises(fanout.FanoutError, match=r"stage-2 fit of 'S.' failed.*no fit of"):
        recalibrate(store, models, config, returns_model=failing, report=False)
    assert active_version(models) == 1 and list_versions(models) == [1]
    pd.testing.assert_frame_equal(store.table("prior_sets"), rows)
    store.close()


def test_a_bad_scheduler_address_is_named_and_changes_nothing(tmp_path, capsys):
    from bayes_mem.cli import main
    from bayes_mem.store import Store

    data, models = tmp_path / "data", tmp_path / "models"
    store = Store(data_dir=data)
    fill(store, n_symbols=3, n_days=300)
    tables = {t: store.table(t) for t in ("outcomes", "returns", "prior_sets")}
    store.close()
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.perf_counter()
    code = main(["recalibrate", "--data", str(data), "--models", str(models),
                 "--scheduler", address])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"cannot reach the Dask scheduler at '{address}'" in err, err
    assert time.perf_counter() - t0 < fanout.CONNECT_TIMEOUT + 20
    assert not models.exists() or not any(models.rglob("*"))
    store = Store(data_dir=data)
    for name, table in tables.items():
        pd.testing.assert_frame_equal(store.table(name), table)
    store.close()
    assert main(["recalibrate", "--data", str(data), "--models", str(models),
                 "--scheduler", "nonsense://x"]) == 1  # fmt: skip
    assert "'nonsense://x'" in capsys.readouterr().err


# ---------------------------------------------------------------------- statistical checks
#: per-symbol one-day 99% VaR and ES of the two-stage fit within this relative distance of the
#: full pooled fit's (the approximation: the hyperposterior learnt from the subset)
RISK_TOLERANCE = 0.10


@pytest.mark.slow
def test_two_stage_risk_forecasts_agree_with_the_full_pooled_fit(client):
    from bayes_mem.live.return_model import ReturnModel

    names = [f"S{j}" for j in range(8)]
    r = panel(np.random.default_rng(5), len(names), 1000)
    settings = dict(draws=500, tune=500, chains=2, target_accept=0.9, seed=4)
    pooled = rm.default_model().fit(r, names, progress=False, **settings)
    staged = fanout.FanoutReturnsFitter(client, subset=4).fit(r, names, progress=False, **settings)
    forecasts = []
    for tree in (pooled, staged):
        live = rm.draws_for_live(tree, 1000, np.random.default_rng(0))
        model = ReturnModel({s: d for s, (d, _) in live.items()},
                            {s: v for s, (_, v) in live.items()})  # fmt: skip
        risk = model.risk(0.99)
        forecasts.append(np.stack([risk.var_log, risk.es_log]))
    rel = np.abs(forecasts[1] / forecasts[0] - 1)
    print(f"two-stage vs pooled 99% VaR / ES, relative difference per symbol: {rel.round(4)}")
    assert rel.max() <= RISK_TOLERANCE, rel


SBC_PARAMS = ("persistence", "shock_share", "long_run_var", "nu", "lam")


def _truth(rng: np.random.Generator, n: int) -> dict:
    """One draw of the pooled model's parameters for ``n`` symbols from its priors (percent
    units, vref = 1)."""
    from scipy import special

    pri = rm.PRIORS
    pers = special.expit(pri["pi0"].sample(rng) + pri["s_pi"].sample(rng) * rng.normal(size=n))
    nu = 2.1 + np.exp(pri["n0"].sample(rng) + pri["s_nu"].sample(rng) * rng.normal(size=n))
    lam = np.tanh(pri["l0"].sample(rng) + pri["s_lam"].sample(rng) * rng.normal(size=n))
    return {"persistence": pers, "nu": nu, "lam": lam,
            "shock_share": pri["shock_share"].sample(rng, n),
            "asymmetry": pri["asymmetry"].sample(rng, n),
            "long_run_var": pri["long_run_var"].sample(rng, n, log_vref=0.0),
            "mu_pct": pri["mu_pct"].sample(rng, n)}  # fmt: skip


@pytest.mark.slow
def test_simulation_based_calibration_of_the_two_stage_procedure():
    """Truth from the pooled model's prior for 3 symbols; stage 1 on 2 of them, stage 2 (the
    task, in-process) on the third: the third's ranks among 99 draws are uniform."""
    from tests.test_pooled_returns_fit import draws_from

    rng = np.random.default_rng(0)
    n_sims, n_days = 40, 300
    one = np.full(3, 1.0 / rm.SCALE**2)
    ranks = {k: [] for k in SBC_PARAMS}
    for s in range(n_sims):
        truth = _truth(rng, 3)
        r = simulate(draws_from(truth), n_days, rng, sigma2_0=np.ones(3))[0].T / rm.SCALE
        stage1 = rm.default_model().fit(
            r[:, :2], ["A", "B"], var0=one[:2], vref=one[:2], draws=200, tune=300, chains=2,
            seed=s, progress=False,
        )  # fmt: skip
        task = fanout.SymbolTask(
            "C", r[:, 2] * rm.SCALE, 1.0, 1.0, fanout.hyper_draws(stage1), draws=200, tune=300,
            chains=2, target_accept=0.9, seed=s,
        )  # fmt: skip
        post = fanout.fit_symbol(task)
        for name in SBC_PARAMS:
            draws = post[name].ravel()[::4][:99]
            ranks[name].append(int(np.sum(draws < truth[name][2])))
    for name, x in ranks.items():
        hist = np.histogram(x, bins=5, range=(0, 100))[0]
        p = stats.chisquare(hist).pvalue
        print(f"SBC {name}: rank histogram {hist.tolist()}, chi-square p {p:.3f}")
        assert p > 0.001, (name, hist)
