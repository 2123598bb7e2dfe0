"""A trader process on the engine for the crash test (:func:`trader`, started by a forkserver
that has imported everything; or ``python -m tests._engine_trader URL MODELS EVENTS SEED FLUSH``,
printing JSON lines): open :class:`TradingEngine` on the store and the models directory, resume
after the last event the store holds durably, play the rest of the events file (JSON lines,
:func:`tests.engine_store_parts.events`), reporting after each event returns, so the test can
SIGKILL it and compare the store with what it said.

An event is durable when the store holds its effect: a signal's decision row (live), a
settlement's outcome, a bar's returns, a close's portfolio metrics. With FLUSH=1 the trader
flushes the decision log before every event that writes to the store itself (settle, bar, end of
day), so no decision before a durable event can be lost; with FLUSH=0 it never flushes (the
writer commits on its own, every ``flush_interval``).
"""

from __future__ import annotations

import json
import sys


def durable(store, evs: list[dict]) -> list[bool]:
    import datetime as dt

    decided = set(store.decisions(config="live")["key"])
    settled = set(store.outcomes()["trade_id"])
    returns = store.table("returns")
    stored_days = {str(d)[:10] for d in returns["date"]}
    closed = {str(d)[:10] for d in store.table("portfolio_metrics")["date"]}
    out = []
    for e in evs:
        if e["kind"] == "signal":
            out.append(e["key"] in decided)
        elif e["kind"] == "settle":
            out.append(e["key"] in settled)
        elif e["kind"] == "bar":
            out.append(dt.date.fromisoformat(e["date"]).isoformat() in stored_days)
        else:
            out.append(e["date"] in closed)
    return out


def trader(url: str, models: str, events_path: str, seed: int, flush: bool, emit=None) -> None:
    """``emit(message)`` reports (a dict; default: print a JSON line, flushed)."""
    from bayes_mem.live.engine import EngineConfig, TradingEngine
    from bayes_mem.store import Store
    from tests import engine_store_parts as sp

    with open(events_path) as fh:
        evs = [json.loads(line) for line in fh]
    store = Store(url)
    eng = TradingEngine.open(models, store, portfolio_value=sp.PV, config=EngineConfig(),
                             shadow=EngineConfig.baseline(), seed=seed)  # fmt: skip
    done = durable(store, evs)
    start = 1 + max((i for i, d in enumerate(done) if d), default=-1)
    lost = [e["key"] for e, d in zip(evs[:start], done, strict=False)
            if e["kind"] == "signal" and not d]  # fmt: skip
    if emit is None:

        def emit(message: dict) -> None:
            print(json.dumps(message), flush=True)

    emit({"ready": True, "start": start, "lost_before_start": lost})
    rows = 0
    for i, e in enumerate(evs[start:], start):
        if flush and e["kind"] != "signal":
            eng.flush()
        made = sp.play(eng, [e])
        line: dict = {"i": i}
        if made:
            rows += 2  # live and shadow
            line |= {"key": e["key"], "rows": rows, "d": made[e["key"]]}
        elif e["kind"] == "settle":
            line["settled"] = e["key"]
        emit(line)
    eng.close()
    emit({"done": True})


if __name__ == "__main__":
    url, models, events_path, seed, flush = sys.argv[1:]
    trader(url, models, events_path, int(seed), flush == "1")
