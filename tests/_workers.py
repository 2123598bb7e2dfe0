"""Processes the reliability tests start (``python -m tests._workers VERB ...``) and kill.

- ``append URL WORKER N SHARED SINGLES BATCH``: append N outcomes of its own and try SHARED that
  every worker also tries (the duplicates), interleaved; print a JSON summary of what was stored
  and what was refused as a duplicate.
- ``trader URL SEED EVENTS``: a trader process: restore a :class:`PersistentDecider` from the
  store, then play the day's events file (JSON lines) from where the store says it stopped,
  printing each decision as a JSON line (flushed) so the test can compare after a SIGKILL.
- ``decisions URL CONFIG N MAX_QUEUE BATCH FLUSH_EVERY``: put N decision rows (keys 0..N-1 of
  configuration CONFIG) into a :class:`DecisionWriter` as fast as it takes them, printing a JSON
  line after each put (with the writer's committed count every 50 rows, and after every
  FLUSH_EVERY rows a flush), so the test can SIGKILL it and compare the store with what it said.
"""

from __future__ import annotations

import json
import sys

TRADER_FAMILIES = {"momentum": (2.0, 3.0), "mean_reversion": (5.0, 5.0)}


def outcome_stream(worker: int, n: int, shared: int) -> list[tuple[str, str, bool, float]]:
    """``n`` outcomes of this worker's own and ``shared`` that every worker has too (the same
    trade ids with the same data), interleaved in a worker-specific order."""
    import numpy as np

    rows = [(f"w{worker}-{i}", i, worker) for i in range(n)] + [
        (f"shared-{j}", j, -1) for j in range(shared)
    ]
    order = np.random.default_rng(worker).permutation(len(rows))
    out = []
    for k in order.tolist():
        tid, i, w = rows[k]
        won = (i + w) % 3 != 0
        out.append((tid, f"sig{i % 4}", won, float(1 + i % 7) if won else -1.0))
    return out


def append(url: str, worker: int, n: int, shared: int, singles: int, batch: int) -> None:
    """The first ``singles`` outcomes one by one (the trader's path), the rest in batches of
    ``batch`` (the ingest path); a batch refused for already-stored trade ids is retried without
    exactly those rows."""
    import pandas as pd

    from bayes_mem.store import DuplicateTradeError, IngestError, Store

    stream = outcome_stream(worker, n, shared)
    store = Store(url)
    stored, refused = [], []
    for tid, sig, won, pnl in stream[:singles]:
        try:
            store.append_outcome(tid, sig, won, pnl, settled_at="2026-01-02")
            stored.append(tid)
        except DuplicateTradeError:
            refused.append(tid)
    rest = stream[singles:]
    for start in range(0, len(rest), batch):
        frame = pd.DataFrame(
            rest[start : start + batch], columns=["trade_id", "signal", "won", "pnl"]
        ).assign(settled_at="2026-01-02")
        while len(frame):
            try:
                store.ingest_outcomes(frame)
                stored.extend(frame["trade_id"])
                break
            except IngestError as exc:
                dup = [
                    int(p.line.split()[1]) for p in exc.problems if "already stored" in p.message
                ]
                if len(dup) != len(exc.problems):
                    raise
                refused.extend(frame.loc[dup, "trade_id"])
                frame = frame.drop(index=dup)
    store.close()
    print(json.dumps({"stored": stored, "refused": refused}))


def trader(url: str, seed: int, events_path: str) -> None:
    """Restore from the store, skip the events up to the last stored outcome (those happened
    before the restart), play the rest: print every decision, record every settlement."""
    from bayes_mem.store import PersistentDecider, Store

    with open(events_path) as fh:
        events = [json.loads(line) for line in fh]
    store = Store(url)
    from bayes_mem.live import BetaPrior

    families = {f: BetaPrior(*ab) for f, ab in TRADER_FAMILIES.items()}
    live = PersistentDecider.restore(store, families, seed=seed, discount=0.995)
    for signal, family in sorted({(e["signal"], e["family"]) for e in events}):
        if signal not in live:
            live.register(signal, family)
    stored = set(store.outcomes()["trade_id"])
    start = 1 + max(
        (i for i, e in enumerate(events) if e["kind"] == "settle" and e["trade_id"] in stored),
        default=-1,
    )
    for i, e in enumerate(events[start:], start):
        if e["kind"] == "decide":
            act, p = live.decide(e["signal"], key=e["key"])
            print(json.dumps({"i": i, "act": bool(act), "p": p}), flush=True)
        else:
            live.record(e["signal"], e["won"], e["pnl"], trade_id=e["trade_id"])
    store.close()


def trading_day(seed: int, n: int = 600) -> list[dict]:
    """A day's events: signals firing (decide, keyed by signal and time) and trades settling."""
    import numpy as np

    rng = np.random.default_rng(seed)
    signals = {f"mom_{i}": "momentum" for i in range(4)} | {
        f"mr_{i}": "mean_reversion" for i in range(3)
    }
    names = sorted(signals)
    events, t = [], 0
    for k in range(n):
        name = names[int(rng.integers(len(names)))]
        if rng.random() < 0.6:
            events.append({"kind": "decide", "signal": name, "family": signals[name],
                           "key": f"{name}@{k}"})  # fmt: skip
        else:
            won = bool(rng.random() < (0.6 if name.startswith("mom") else 0.45))
            pnl = float(rng.uniform(0.5, 2.0)) if won else -float(rng.uniform(0.5, 1.5))
            events.append({"kind": "settle", "signal": name, "family": signals[name],
                           "trade_id": f"T{t}", "won": won, "pnl": pnl})  # fmt: skip
            t += 1
    return events


def decision_row(config: str, i: int) -> dict:
    """The i-th decision row of a writer test (``key`` is ``str(i)``)."""
    import datetime as dt

    return {
        "decided_at": dt.datetime(2026, 1, 2, 14, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        "config": config, "key": str(i), "signal": f"sig{i % 7}", "symbol": f"SYM{i % 3}",
        "side": "long" if i % 2 else "short", "horizon": 1 + i % 10, "act": i % 3 != 0,
        "notional": 100.0 * (i % 50), "quantity": None, "p_win": (i % 97) / 96,
        "binding": "kelly", "prior_version": 1,
        "detail": {"i": i, "kelly": 0.01 * (i % 13), "explain": f"row {i}"},
    }  # fmt: skip


def decisions(url: str, config: str, n: int, max_queue: int, batch: int, flush_every: int) -> None:
    from bayes_mem.store import DecisionWriter, Store

    store = Store(url)
    writer = DecisionWriter(
        store, max_queue=max_queue, batch_size=batch, flush_interval=0.02, put_timeout=120
    )
    print(json.dumps({"ready": True}), flush=True)
    for i in range(n):
        writer.put(decision_row(config, i))
        line: dict[str, int] = {"put": i + 1}
        if (i + 1) % 50 == 0:
            line["committed"] = writer.stats().committed
        if (i + 1) % flush_every == 0:
            writer.flush()
            line["flushed"] = i + 1
        print(json.dumps(line), flush=True)
    writer.close()
    print(json.dumps({"done": n}), flush=True)


# the crash trials' nightly job: the fast returns option; the win-rate fit is replayed from a
# real fit of the same data (tests/test_crash.py makes it once), so a trial costs seconds
CRASH_CONFIG = {
    "returns_model": "laplace", "returns_draws": 50, "returns_min_days": 300,
    "draws": 1000, "tune": 1000, "chains": 2,
}  # fmt: skip


class CannedWinRateModel:
    """Stands in for :class:`WinRateModel`: ``fit`` returns a stored fit (netCDF)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fit(self, data, **kwargs):
        import xarray as xr

        return xr.open_datatree(self.path, engine="h5netcdf").load()


def _slow_io(seconds: float) -> None:
    """Sleep ``seconds`` before each fsync/rename/replace of this process."""
    import os
    import time

    if seconds:
        for name in ("fsync", "rename", "replace"):
            real = getattr(os, name)

            def slow(*a, _real=real, **k):
                time.sleep(seconds)
                return _real(*a, **k)

            setattr(os, name, slow)


def activate_cli(url: str, models: str, version: int, marks, slow_io: float) -> None:
    """``bayes-mem priors activate VERSION --store URL`` in a child process (started by a
    forkserver that imported the CLI): sends "ready" just before the command and ("done", exit
    code) after it; each fsync/rename/replace is slowed by ``slow_io`` seconds."""
    from bayes_mem.cli import main

    _slow_io(slow_io)
    marks.send("ready")
    code = main(["priors", "activate", str(version), "--models", models, "--store", url])
    marks.send(("done", code))


def nightly(url: str, models: str, fit_nc: str, marks, slow_io: float) -> None:
    """One nightly run in a child process (started by a forkserver that imported everything):
    sends "ready", "publish" (write_prior_set entered) and ("done", status, version) to
    ``marks``. ``slow_io`` seconds of sleep before each fsync/rename/replace widen the publish
    window so random kills land inside it."""
    from bayes_mem.offline import recalibrate as rc
    from bayes_mem.store import Store

    _slow_io(slow_io)
    write = rc.write_prior_set

    def marked_write(*a, **k):
        marks.send("publish")
        return write(*a, **k)

    rc.write_prior_set = marked_write
    store = Store(url)
    marks.send("ready")
    result = rc.recalibrate(
        store, models, rc.RecalibrationConfig(**CRASH_CONFIG), CannedWinRateModel(fit_nc)
    )
    marks.send(("done", result.status, result.version))


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    if verb == "append":
        append(args[0], *map(int, args[1:6]))
    elif verb == "trader":
        trader(args[0], int(args[1]), args[2])
    elif verb == "decisions":
        decisions(args[0], args[1], *map(int, args[2:6]))
    else:
        raise SystemExit(f"unknown verb {verb!r}")
