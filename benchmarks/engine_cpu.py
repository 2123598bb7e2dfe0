"""CPU time of the engine goals (``time.thread_time`` per call, best of rounds), beside the wall
clock of ``bench_engine``: on a loaded machine the CPU figure is the steadier one, and it is how
two versions of the code are compared back to back
(``PYTHONPATH=<tree> OPENBLAS_NUM_THREADS=1 python benchmarks/engine_cpu.py``: the world is
built by ``<tree>``'s code). Same world as
:mod:`benchmarks.bench_engine` (500 symbols, 1,000 signals, 50 open positions). Not one of
``./run bench``'s groups: it prints figures, no goals."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Callable

from benchmarks.bench_engine import START, World


def cpu_us(
    fn: Callable[[], object],
    after: Callable[[object], object] | None = None,
    n: int = 1000,
    rounds: int = 5,
) -> float:
    """Best over ``rounds`` of the mean CPU microseconds of ``fn`` (``after`` untimed)."""
    best = float("inf")
    for _ in range(rounds):
        total = 0.0
        for _ in range(n):
            t0 = time.thread_time()
            out = fn()
            total += time.thread_time() - t0
            if after is not None:
                after(out)
        best = min(best, total / n * 1e6)
    return best


def main() -> None:
    w = World()
    eng = w.engine
    name, sym = w.signal, w.symbol

    def drop(d) -> None:
        eng.cancel(d.id)

    def undo(out) -> None:
        for d in out:
            eng.cancel(d.id)

    decide = cpu_us(lambda: eng.decider.decide(name), n=5000)
    one = cpu_us(lambda: eng.signal(name, sym, "long", 1), drop, 2000)
    count = itertools.count()
    keyed = cpu_us(lambda: eng.signal(name, sym, "long", 1, key=f"k{next(count)}"), drop, 2000)
    short = cpu_us(lambda: eng.signal(name, sym, "short", 5), drop, 2000)
    batch = [
        {"signal": s, "symbol": y, "side": "long" if j % 3 else "short",
         "horizon": 1 + j % 5, "key": f"tick-{j}"}
        for j, (s, y) in enumerate(w.signals)
    ]  # fmt: skip
    tick = cpu_us(lambda: eng.signals(batch), undo, n=1)

    def bar() -> None:
        row = w.returns[w.day % len(w.returns)]
        day = dict(zip(w.symbols, row.tolist(), strict=True))
        eng.bar(START + dt.timedelta(days=w.day), day)
        w.day += 1

    def bar_and_rebuild() -> None:
        bar()
        eng.cancel(eng.signal(name, sym, "long", 1).id)

    one_bar = cpu_us(bar, n=1, rounds=10)
    rebuild = cpu_us(bar_and_rebuild, n=1)
    print(
        f"CPU: decide {decide:.2f} us | signal {one:.1f} us ({one / decide:.0f}x decide) | "
        f"keyed {keyed:.1f} us | short 5d {short:.1f} us | 1,000 keyed signals() "
        f"{tick / 1000:.2f} ms | bar {one_bar / 1000:.2f} ms | "
        f"bar + rebuild {rebuild / 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
