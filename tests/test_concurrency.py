"""Concurrency: many threads on one decider, several processes appending to one store.

The store variants run on SQLite and on PostgreSQL (``store_url``, see conftest.py). Duplicates
are mixed in on purpose: every worker also tries the same shared trade ids, some one by one
(``append_outcome``, the trader's path) and most in batches (``ingest_outcomes``, where a batch
refused for already-stored ids is retried without exactly those rows).
"""

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from bayes_mem.live import Decider
from bayes_mem.store import SCHEMA_VERSION, Store
from tests._workers import outcome_stream

ROOT = Path(__file__).resolve().parents[1]
WORKERS, OWN, SHARED, SINGLES, BATCH = 4, 10_000, 1_000, 250, 250


@pytest.mark.slow
def test_eight_threads_times_100k_decide_and_record_counts_exactly():
    d = Decider(["f"], discount=0.9999, rng=0)
    names = [f"s{i}" for i in range(32)]
    for n in names:
        d.register(n, "f")
    n_threads, per_thread = 8, 100_000
    errors: list[BaseException] = []
    decisions = [0] * n_threads

    def work(tid: int) -> None:
        try:
            for j in range(per_thread):
                name = names[(tid * 7 + j) % len(names)]
                d.decide(name)
                decisions[tid] += 1
                d.record(name, j % 4 != 0, 2.0 if j % 4 != 0 else -1.5, trade_id=f"{tid}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(decisions) == n_threads * per_thread
    metrics = [d.metrics(n) for n in names]
    assert sum(m.trades for m in metrics) == n_threads * per_thread
    wins_per_thread = sum(j % 4 != 0 for j in range(per_thread))
    assert sum(m.wins for m in metrics) == n_threads * wins_per_thread
    pnl = n_threads * (2.0 * wins_per_thread - 1.5 * (per_thread - wins_per_thread))
    assert sum(m.total_pnl for m in metrics) == pytest.approx(pnl, rel=1e-12)
    assert d.ticks == n_threads * per_thread
    assert len(d.snapshot()["trade_ids"]) == n_threads * per_thread


@pytest.mark.slow
def test_four_processes_append_10k_each_with_duplicates_every_outcome_once(store_url):
    store = Store(store_url)
    store.register_signals({f"sig{i}": "f" for i in range(4)})
    argv = [str(a) for a in (SHARED, SINGLES, BATCH)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests._workers", "append", store_url, str(w), str(OWN), *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WORKERS)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out))
    stored = Counter(t for r in results for t in r["stored"])
    # each worker's own outcomes, once; each shared one stored by exactly one worker and refused
    # as a duplicate by the other three
    assert all(c == 1 for c in stored.values())
    assert len(stored) == WORKERS * OWN + SHARED
    refused = Counter(t for r in results for t in r["refused"])
    assert set(refused) == {f"shared-{j}" for j in range(SHARED)}
    assert all(c == WORKERS - 1 for c in refused.values())
    # the store holds exactly that, with the data the workers sent (the nightly job's counts)
    table = store.outcomes()
    assert len(table) == WORKERS * OWN + SHARED and table["trade_id"].is_unique
    assert set(table["trade_id"]) == set(stored)
    assert table["seq"].is_monotonic_increasing
    want: dict[str, list[int]] = {}
    for w in range(WORKERS):
        for tid, sig, won, _ in outcome_stream(w, OWN, SHARED):
            if tid.startswith(f"w{w}-") or w == 0:  # shared ids once
                want.setdefault(sig, [0, 0])
                want[sig][0] += won
                want[sig][1] += 1
    counts = store.signal_counts().set_index("signal")
    for sig, (wins, trades) in want.items():
        assert (counts.loc[sig, "wins"], counts.loc[sig, "trades"]) == (wins, trades)
    store.close()


@pytest.mark.slow
def test_concurrent_store_opening_upgrades_the_schema_once(store_url):
    """Several processes opening a new store at once: one creates the schema, all succeed."""
    code = "import sys; from bayes_mem.store import Store; print(Store(sys.argv[1]).schema_version)"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        assert out.strip() == str(SCHEMA_VERSION)
    store = Store(store_url)
    assert len(store.table("schema_version")) == 1
    store.close()
