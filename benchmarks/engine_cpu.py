"""CPU time of the engine goals (``time.thread_time`` per call, best of rounds), beside the wall
clock of ``bench_engine``: on a loaded machine the CPU figure is the steadier one, and it is how
two versions of the code are compared back to back
(``PYTHONPATH=<tree> OPENBLAS_NUM_THREADS=1 python benchmarks/engine_cpu.py``: the world is
built by ``<tree>``'s code). Same world as
:mod:`benchmarks.bench_engine` (500 symbols, 1,000 signals, 50 open positions). Not one of
``./run bench``'s groups: it prints figures, no goals.

The tick: 1,000 keyed events (every signal once, long and short, held 1-5 days) through
``signals()``, beside the same events as 1,000 ``signal()`` calls and a bare
``Decider.decide_batch`` of the 1,000 signals, timed in the same run; and once more with
Kelly's memo cleared before each round (the first tick after the payoff posteriors moved, e.g.
after a bar, whose new volatility moves every signal's default payoff size)."""

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
    tick = cpu_us(lambda: eng.signals(batch), undo, n=1, rounds=9)
    signal = eng.signal

    def one_by_one() -> list:
        return [signal(e["signal"], e["symbol"], e["side"], e["horizon"], key=e["key"])
                for e in batch]  # fmt: skip

    calls = cpu_us(one_by_one, undo, n=1, rounds=5)
    from bayes_mem.live.modules import _kelly_of_posterior

    def undo_and_forget(out) -> None:  # the first tick after the posteriors moved (a bar)
        undo(out)
        _kelly_of_posterior.cache_clear()

    _kelly_of_posterior.cache_clear()
    cold = cpu_us(lambda: eng.signals(batch), undo_and_forget, n=1, rounds=5)
    idx = eng.decider.indices([e["signal"] for e in batch])
    bare = cpu_us(lambda: eng.decider.decide_batch(idx), n=20)

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
        f"keyed {keyed:.1f} us ({keyed / decide:.0f}x) | short 5d {short:.1f} us | "
        f"bar {one_bar / 1000:.2f} ms | bar + rebuild {rebuild / 1000:.1f} ms"
    )
    print(
        f"CPU tick, 1,000 keyed events: signals() {tick / 1000:.2f} ms (goal <= 5) | the same "
        f"as 1,000 signal() calls {calls / 1000:.2f} ms (ratio {tick / calls:.3f}) | "
        f"signals(), Kelly not memoised {cold / 1000:.2f} ms | Decider.decide_batch of the "
        f"1,000 {bare / 1000:.3f} ms (ratio {tick / bare:.0f}x)"
    )


if __name__ == "__main__":
    main()
