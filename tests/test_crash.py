"""The nightly job SIGKILLed at random points, publishing included; ``priors activate`` too.

After every kill: ``ACTIVE`` names a complete, verified prior set (the old one or the new one),
every version directory is complete (a half-written one is only ever a ``.tmp-*`` directory),
the trader's :class:`ActivePriorSet` handle holds exactly that set, and the store has at most one
active record; the next run succeeds. A corrupt or truncated active file is refused by the
loader, which keeps the last good set.

Each trial is a child of a forkserver that has already imported PyMC and the job, and the
win-rate fit is replayed from one real fit of the same data (``tests._workers.nightly``), so a
trial takes seconds; half the trials are killed at a uniform random instant of the run, half at a
uniform random instant after publishing began (each fsync/rename/replace is slowed by 10 ms to
widen that window).

``bayes-mem priors activate`` (ACTIVE and the store's statuses, one decision) is SIGKILLed at
uniform random instants over 1.5 times its run (a third of the kills land after it ended):
``ACTIVE`` always names a complete, verified, gate-passed set (the old or the new one), the
store has at most one active row, and either both changed, or neither, or (a kill between the
switch and the commit) ``ACTIVE`` is ahead and ``reconcile`` brings the store in line.
"""

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import time

import numpy as np
import pytest

from bayes_mem.live.prior_set import (
    ActivePriorSet,
    active_version,
    load_active,
    load_prior_set,
    version_dir,
)
from bayes_mem.offline.recalibrate import RecalibrationConfig, _write_fit
from bayes_mem.offline.winrate import WinRateData, WinRateModel
from bayes_mem.store import Store
from tests._workers import CRASH_CONFIG, activate_cli, nightly
from tests.test_recalibrate import fill

TRIALS = 20
SLOW_IO = 0.01


def wait_for(pipe, what: str, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pipe.poll(0.05):
            msg = pipe.recv()
            if msg == what or (isinstance(msg, tuple) and msg[0] == what):
                return msg
    raise AssertionError(f"no {what!r} from the nightly job in {timeout} s")


ACTIVATE_TRIALS = 40


def test_priors_activate_killed_at_random_points_keeps_active_and_store_in_line(tmp_path):
    from bayes_mem.live.prior_set import activate, write_prior_set
    from bayes_mem.store.prior_records import reconcile
    from tests.test_operator_commands import statuses, store_with_rows
    from tests.test_prior_set import make

    models = tmp_path / "models"
    for v in (1, 2, 3):
        write_prior_set(make(v, seed=v), models)
    activate(models, 1)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    store = store_with_rows(url, {1: "active", 2: "candidate", 3: "candidate"})
    trader = ActivePriorSet(models)
    assert trader.refresh()

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests._workers", "bayes_mem.cli", "bayes_mem.store",
                                "bayes_mem.store.prior_records"])  # fmt: skip

    def start(version):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=activate_cli, args=(url, str(models), version, child, SLOW_IO))
        p.start()
        child.close()
        wait_for(parent, "ready", 120)
        return p, parent

    p, pipe = start(2)  # one full run: its duration
    t0 = time.monotonic()
    done = wait_for(pipe, "done", 120)
    run_s = time.monotonic() - t0
    p.join()
    assert done == ("done", 0) and active_version(models) == 2
    assert statuses(store) == {1: "retired", 2: "active", 3: "candidate"}

    rng = np.random.default_rng(7)
    outcomes = {"neither changed": 0, "ACTIVE ahead, reconciled": 0, "both changed": 0}
    for _ in range(ACTIVATE_TRIALS):
        before = active_version(models)
        target = int(rng.choice([v for v in (1, 2, 3) if v != before]))
        p, pipe = start(target)
        time.sleep(rng.uniform(0, 1.5 * run_s))
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
        p.join()
        pipe.close()
        now = active_version(models)
        assert now in (before, target)
        assert load_active(models).version == now  # complete, verified, gate passed
        rows = statuses(store)
        active_rows = [v for v, st in rows.items() if st == "active"]
        assert len(active_rows) <= 1, rows
        if active_rows == [now]:
            outcomes["both changed" if now == target else "neither changed"] += 1
        else:  # killed after the switch, before the commit: ACTIVE is ahead
            assert (now, active_rows) == (target, [before]), (before, target, now, rows)
            reconcile(store, models)
            assert [v for v, st in statuses(store).items() if st == "active"] == [now]
            outcomes["ACTIVE ahead, reconciled"] += 1
        trader.refresh()
        assert trader.current.version == now and trader.last_error is None
    print(f"priors activate kills: {outcomes}; a run takes {run_s:.2f} s")
    assert outcomes["neither changed"] and outcomes["both changed"], outcomes
    store.close()


@pytest.mark.slow
def test_nightly_job_killed_at_random_points_never_leaves_a_broken_active_set(tmp_path):
    store = Store(data_dir=tmp_path / "data")
    fill(store)
    config = RecalibrationConfig(**CRASH_CONFIG)
    data = WinRateData.from_counts(store.signal_counts())
    tree = WinRateModel().fit(
        data, draws=config.draws, tune=config.tune, chains=config.chains, seed=0
    )
    _write_fit(tree, tmp_path, config)
    fit_nc = str(tmp_path / "winrate_fit.nc")
    models = tmp_path / "models"

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["tests._workers", "bayes_mem.offline.recalibrate", "xarray"])

    def start():
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=nightly, args=(store.url, str(models), fit_nc, child, SLOW_IO))
        p.start()
        child.close()
        wait_for(parent, "ready", 300)
        return p, parent

    # one full run: v1 active, and the durations the kill instants are drawn from
    p, pipe = start()
    t0 = time.monotonic()
    wait_for(pipe, "publish", 300)
    t_pub = time.monotonic()
    done = wait_for(pipe, "done", 300)
    run_s, publish_s = time.monotonic() - t0, time.monotonic() - t_pub
    p.join()
    assert done[1:] == ("active", 1) and p.exitcode == 0
    trader = ActivePriorSet(models)
    assert trader.refresh() and trader.current.version == 1

    rng = np.random.default_rng(2026)
    outcomes = {"before publishing": 0, "while publishing": 0, "after it finished": 0}
    for trial in range(TRIALS):
        before = active_version(models)
        p, pipe = start()
        t_start = time.monotonic()
        if trial % 2:
            wait_for(pipe, "publish", 300)
            time.sleep(rng.uniform(0, publish_s))
        else:
            time.sleep(rng.uniform(0, run_s))
        with contextlib.suppress(ProcessLookupError):  # it may just have finished
            os.kill(p.pid, signal.SIGKILL)
        p.join()
        msgs = []
        try:
            while pipe.poll():
                msgs.append(pipe.recv())
        except (EOFError, OSError, pickle.UnpicklingError):  # the pipe of a killed process
            pass
        pipe.close()
        published = "publish" in msgs or trial % 2
        finished = any(isinstance(m, tuple) and m[0] == "done" for m in msgs)
        key = "after it finished" if finished else "while publishing" if published else None
        outcomes[key or "before publishing"] += 1
        assert time.monotonic() - t_start < 300

        # the active set is a complete old or new version, verified
        now = active_version(models)
        assert now is not None and now >= before
        active = load_active(models)
        assert set(active.families) == {"momentum", "mean_reversion", "breakout"}
        assert set(active.symbols) == {"SPY", "QQQ"} and active.diagnostics["passed"]
        for d in (models / "prior_sets").glob("v[0-9]*"):  # no half-written version directory
            assert load_prior_set(models, int(d.name[1:])).version == int(d.name[1:])
        trader.refresh()
        assert trader.current.version == now and trader.last_error is None
        assert (store.table("prior_sets")["status"] == "active").sum() <= 1

    assert outcomes["while publishing"] >= TRIALS // 2 - 2, outcomes
    print(f"kills: {outcomes}; run {run_s:.2f} s, publish {publish_s:.2f} s")

    # a truncated or corrupt active file is refused; the trader keeps its last good set
    good = trader.current
    path = version_dir(models, good.version) / "prior_set.json"
    raw = path.read_bytes()
    for damaged in (raw[: len(raw) // 2], raw.replace(b'"SPY"', b'"SPX"', 1), b""):
        path.write_bytes(damaged)
        trader.current = None  # a freshly started trader: refuses, has nothing
        assert not trader.refresh() and trader.current is None and trader.last_error
        trader.current = good
        path.write_bytes(damaged)
        assert not trader.refresh() and trader.current is good
    path.write_bytes(raw)

    # the next run succeeds, the store's statuses agree with ACTIVE
    p, pipe = start()
    done = wait_for(pipe, "done", 300)
    p.join()
    assert done[1] == "active" and p.exitcode == 0
    assert active_version(models) == done[2] > good.version
    assert trader.refresh() and trader.current.version == done[2]
    rows = store.table("prior_sets").set_index("version")["status"]
    assert rows[done[2]] == "active" and (rows == "active").sum() == 1
    store.close()
