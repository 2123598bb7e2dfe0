"""Trading-engine speed goals (the engine issue), each beside a baseline timed in the same run:

- one signal decision with every module on (Thompson draw, risk lookup, Kelly on 64 quadrature
  nodes per payoff size, portfolio-ES (Euler) limit and regime cut): <= 20 us, printed as a
  ratio to a bare ``Decider.decide`` of the same signal; keyless, with a decision key (a
  generator derived per key), short over 5 days, and with the Kelly optimum inside its cap
  (Newton steps; the Kelly size is memoised per posterior, so a repeated signal pays a lookup);
- 1,000 signals firing in one tick, each with its event key, long and short, held 1-5 days:
  <= 5 ms, through ``TradingEngine.signals`` (also with Kelly's memo cleared: the first tick
  after the payoff posteriors moved; with only the Thompson rule and the CVaR budget on; and in
  the seed baseline's configuration, a raw win-rate threshold and fixed dollars: what deciding,
  recording and booking 1,000 events costs with no risk module) and as 1,000 ``signal()`` calls,
  beside one ``Decider.decide_batch`` over the same 1,000 signals;
- a new bar for 500 symbols (return model, regime detector, correlation window): <= 10 ms, beside
  the model's and the detector's own updates on the same day; also reported: the bar plus what
  it leaves to the next signal (the shrunk correlation, the Euler ES and the risk of every symbol
  for that side and horizon, rebuilt lazily), for a one-day long and then for every (side,
  horizon) of 2-5 days too (each multi-day pair solves the h-day predictive of all 500 symbols:
  what the first signals after a bar wait for); and the bar with ``TradingEngine.prepare`` for
  every (side, horizon) of 1-5 days, then the mean of a first signal per pair beside the same
  signal again (a ratio near 1: ``prepare`` left the signals nothing to compute);
- logging on: a ``StoreRecorder`` on a SQLite store in a temporary directory, and a
  ``MemoryRecorder``, cost at most 10% on the decision path (ratio to the same engine without a
  recorder, interleaved; the rows are written or converted after each round, untimed); also
  reported: the same with the writes (or the conversion) timed;
- opening the engine on a demo-like store (``synthesize``: 300 signals, ~9,000 settled trades,
  12 symbols x 3 years; a prior set of Laplace draws, 200 per symbol, with a regime prior): < 2 s,
  beside reading what it must read (the store's signals, outcomes, returns and links).

The world of the decision goals: 500 symbols (GJR-GARCH skew-t, 200 parameter draws each), 1,000
signals in four families (two per symbol) with 20 settled trades each (notionals given, so the
payoff model has sizes), a regime detector (R = 300), the correlation window and the detector
primed with 150 days, five bars through the engine, 50 open positions. The decided signal has a
clear edge (it acts on every draw), so every module runs; the logging goal uses 50 symbols.
Timed with ``time.perf_counter`` (wall clock): on a loaded machine every figure inflates.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks._timing import Result, warm_up

N_SYMBOLS = 500
N_DRAWS = 200
PRIME_DAYS = 150
FAMILIES = ("momentum", "reversion", "breakout", "carry")
START = dt.date(2024, 1, 2)
PV = 10_000_000.0


# ---------------------------------------------------------------------------------- the world
def _draws(rng: np.random.Generator, n: int):
    from bayes_mem.live.gjr_garch import GarchDraws

    j = rng.normal(0.0, 1.0, (7, n))
    vol = rng.uniform(0.7, 1.6)
    return GarchDraws(
        mu=3e-4 + 5e-5 * j[0],
        omega=2e-6 * vol**2 * np.exp(0.1 * j[1]),
        alpha=np.clip(0.03 + 0.005 * j[2], 0.005, None),
        gamma=np.clip(0.10 + 0.01 * j[3], 0.0, None),
        beta=np.clip(0.86 + 0.01 * j[4], 0.0, 0.9),
        nu=6.0 + 0.3 * np.abs(j[5]),
        lam=np.clip(-0.1 + 0.02 * j[6], -0.95, 0.95),
    )


def market_returns(days: int, n: int = N_SYMBOLS, seed: int = 1) -> np.ndarray:
    """(days, n) daily log returns: one common factor (loading 0.3-0.8), vol ~1%."""
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.3, 0.8, n)
    f = rng.standard_normal((days, 1))
    e = rng.standard_normal((days, n))
    return 0.01 * (f * load + e * np.sqrt(1.0 - load**2))


class World:
    """The engine of the decision goals and what it was built from (see the module docstring)."""

    def __init__(self, *, recorder=None, n_symbols: int = N_SYMBOLS, seed: int = 0) -> None:
        from bayes_mem.live import BetaPrior, Decider, ReturnModel, TradingEngine
        from bayes_mem.live.changepoint import NormalGammaBOCPD, NormalGammaPrior

        rng = np.random.default_rng(seed)
        self.symbols = [f"S{i:03d}" for i in range(n_symbols)]
        draws = {s: _draws(rng, N_DRAWS) for s in self.symbols}
        model = ReturnModel(draws, {s: np.full(N_DRAWS, 1e-4) for s in self.symbols})
        detector = NormalGammaBOCPD(
            self.symbols,
            NormalGammaPrior(0.0, 1.0, 2.0, 2.0),
            hazard=1 / 250,
            max_run_length=300,
        )
        decider = Decider({f: BetaPrior(10.0, 10.0) for f in FAMILIES}, rng=seed)
        self.signals: list[tuple[str, str]] = []  # (signal, symbol)
        links = {}
        for i, s in enumerate(self.symbols):
            for k in range(2):
                name = f"{s}:{FAMILIES[(2 * i + k) % 4]}"
                decider.register(name, FAMILIES[(2 * i + k) % 4])
                links[name] = s
                self.signals.append((name, s))
        # correlation window and detector primed with normal scores of the same market (what
        # open() does from the stored history), then a few bars through the engine
        self.returns = market_returns(PRIME_DAYS + 400, n_symbols)
        self.engine = TradingEngine(
            decider,
            model,
            portfolio_value=PV,
            signal_symbols=links,
            detector=detector,
            recorder=recorder,
            seed=seed,
            scores=self.returns[:PRIME_DAYS] / 0.01,
        )
        self.day = PRIME_DAYS
        for _ in range(5):
            self.next_bar()
        # 20 settled trades per signal with sizes; the decided signal: a clear edge (it acts)
        eng = self.engine
        p_true = rng.uniform(0.45, 0.58, len(self.signals))
        for j, (name, _) in enumerate(self.signals):
            won = rng.random(20) < p_true[j]
            size = np.where(won, rng.gamma(2.0, 0.006, 20), rng.gamma(2.0, 0.005, 20))
            for k in range(20):
                eng.settle(
                    f"h-{name}-{k}",
                    won=bool(won[k]),
                    pnl=float(size[k] if won[k] else -size[k]) * 10_000.0,
                    notional=10_000.0,
                    signal=name,
                )
        self.signal, self.symbol = self.signals[0]
        for k in range(200):
            won = k % 5 < 3  # 60% wins of +1.2%, losses of -1.0%
            eng.settle(
                f"edge-{k}",
                won=won,
                pnl=120.0 if won else -100.0,
                notional=10_000.0,
                signal=self.signal,
            )
        for j in range(2, min(102, len(self.signals)), 2):  # 50 open positions, both sides
            name, sym = self.signals[j]
            eng.signal(name, sym, "long" if j % 4 else "short", 1, key=f"open-{j}")

    def next_bar(self) -> None:
        row = self.returns[self.day % len(self.returns)]
        self.engine.bar(
            START + dt.timedelta(days=self.day), dict(zip(self.symbols, row.tolist(), strict=True))
        )
        self.day += 1


# ---------------------------------------------------------------------------------- timing
def _per_call(fn: Callable[[], object], after: Callable[[object], object] | None, n: int) -> float:
    """Microseconds per call of ``fn`` (``after(result)`` runs untimed after each call)."""
    clock = time.perf_counter
    gc_was = gc.isenabled()
    gc.disable()
    try:
        total = 0.0
        for _ in range(n):
            t0 = clock()
            out = fn()
            total += clock() - t0
            if after is not None:
                after(out)
    finally:
        if gc_was:
            gc.enable()
    return total / n * 1e6


def best_interleaved(
    subject: Callable[[], float], baseline: Callable[[], float], repeat: int
) -> tuple[float, float]:
    """Best of ``repeat`` alternating rounds of two callables that each return microseconds."""
    s_best = b_best = float("inf")
    for _ in range(repeat):
        s_best = min(s_best, subject())
        b_best = min(b_best, baseline())
    return s_best, b_best


# ---------------------------------------------------------------------------------- goals
def bench_one_decision(world: World, repeat: int) -> list[Result]:
    from bayes_mem.live import KellyLimit
    from bayes_mem.live.engine import EngineConfig

    eng = world.engine
    name, sym = world.signal, world.symbol
    cancel = eng.cancel
    signal = eng.signal
    decide = eng.decider.decide
    first = signal(name, sym, "long", 1)
    assert first.act and set(first.limits) == {"cvar", "kelly", "portfolio_es"}, first.explain()
    assert "regime" in first.factors, first.explain()
    cancel(first.id)

    def drop(d) -> None:
        cancel(d.id)

    rounds = 2_000
    keyless, bare = best_interleaved(
        lambda: _per_call(lambda: signal(name, sym, "long", 1), drop, rounds),
        lambda: _per_call(lambda: decide(name), None, rounds),
        repeat,
    )
    count = iter(range(10**9))
    keyed, bare2 = best_interleaved(
        lambda: _per_call(
            lambda: signal(name, sym, "long", 1, key=f"k{next(count)}"), drop, rounds
        ),
        lambda: _per_call(lambda: decide(name), None, rounds),
        repeat,
    )
    short5, bare3 = best_interleaved(
        lambda: _per_call(lambda: signal(name, sym, "short", 5), drop, rounds),
        lambda: _per_call(lambda: decide(name), None, rounds),
        repeat,
    )
    # the same with the Kelly optimum inside its cap (Newton iterations instead of one check)
    cfg = eng.config
    eng.config = EngineConfig(kelly=KellyLimit(cap=20.0))
    try:
        d = signal(name, sym, "long", 1)
        assert d.act and d.limits["kelly"] < 20.0 * PV, d.explain()
        cancel(d.id)
        interior, bare4 = best_interleaved(
            lambda: _per_call(lambda: signal(name, sym, "long", 1), drop, rounds),
            lambda: _per_call(lambda: decide(name), None, rounds),
            repeat,
        )
        # the same, the Kelly size computed afresh each time (its memo cleared, untimed): what a
        # signal pays the first time it fires after its posterior moved
        from bayes_mem.live.modules import _kelly_of_posterior

        def drop_and_forget(d) -> None:
            cancel(d.id)
            _kelly_of_posterior.cache_clear()

        cold, bare5 = best_interleaved(
            lambda: _per_call(lambda: signal(name, sym, "long", 1), drop_and_forget, rounds),
            lambda: _per_call(lambda: decide(name), None, rounds),
            repeat,
        )
    finally:
        eng.config = cfg
    return [
        Result(
            "signal(), all modules on", keyless, "Decider.decide", bare, "<= 20 us", max_us=20.0
        ),
        Result(
            "signal(key=), all modules on", keyed, "Decider.decide", bare2, "<= 20 us", max_us=20.0
        ),
        Result("signal(), short, 5-day hold", short5, "Decider.decide", bare3, "reference"),
        Result("signal(), Kelly inside its cap", interior, "Decider.decide", bare4, "reference"),
        Result("  the same, Kelly not memoised", cold, "Decider.decide", bare5, "reference"),
    ]


def bench_tick(world: World, repeat: int) -> list[Result]:
    eng = world.engine
    # every signal fires once, long or short, held 1-5 days, each with its event key (keys are
    # free again once the decisions are cancelled, so every round decides the same)
    batch = [
        {"signal": name, "symbol": sym, "side": "long" if j % 3 else "short",
         "horizon": 1 + j % 5, "key": f"tick-{j}"}
        for j, (name, sym) in enumerate(world.signals)
    ]  # fmt: skip
    names = [b["signal"] for b in batch]
    idx = eng.decider.indices(names)

    def one_by_one() -> float:
        out = []
        signal = eng.signal
        t0 = time.perf_counter()
        for ev in batch:
            out.append(signal(ev["signal"], ev["symbol"], ev["side"], ev["horizon"], key=ev["key"]))
        t = time.perf_counter() - t0
        for d in out:
            eng.cancel(d.id)
        return t * 1e6

    def batched() -> float:
        t0 = time.perf_counter()
        out = eng.signals(batch)
        t = time.perf_counter() - t0
        for d in out:
            eng.cancel(d.id)
        return t * 1e6

    def bare() -> float:
        return _per_call(lambda: eng.decider.decide_batch(idx), None, 20)

    rows = []
    if hasattr(eng, "signals"):
        ours, base = best_interleaved(batched, bare, repeat)
        rows.append(
            Result(
                "1,000 signals: signals()",
                ours,
                "Decider.decide_batch 1,000",
                base,
                "<= 5 ms",
                max_us=5_000.0,
            )
        )
    if hasattr(eng, "signals"):  # the first tick after the posteriors moved (e.g. a bar)
        from bayes_mem.live.modules import _kelly_of_posterior

        def cold() -> float:
            _kelly_of_posterior.cache_clear()
            return batched()

        ours, base = best_interleaved(cold, bare, repeat)
        rows.append(
            Result(
                "  the same, Kelly not memoised",
                ours,
                "Decider.decide_batch 1,000",
                base,
                "reference",
            )
        )
    if hasattr(eng, "signals"):  # what the per-event work costs with fewer modules on
        from bayes_mem.live.engine import EngineConfig

        cfg = eng.config
        for label, fewer in (
            ("  Thompson + CVaR budget only", cfg.without("kelly", "correlation", "regime")),
            ("  seed baseline configuration", EngineConfig.baseline()),
        ):
            eng.config = fewer
            try:
                ours, base = best_interleaved(batched, bare, repeat)
            finally:
                eng.config = cfg
            rows.append(Result(label, ours, "Decider.decide_batch 1,000", base, "reference"))
    ours, base = best_interleaved(one_by_one, bare, repeat)
    rows.append(
        Result(
            "1,000 signals: signal() each",
            ours,
            "Decider.decide_batch 1,000",
            base,
            "<= 5 ms" if not rows else "reference",
            max_us=None if rows else 5_000.0,
        )
    )
    return rows


def bench_bar(world: World, repeat: int) -> list[Result]:
    from bayes_mem.live import ReturnModel
    from bayes_mem.live.changepoint import load_detector

    eng = world.engine
    syms = world.symbols
    # the baseline: the model's and the detector's own updates, on copies, on the same days
    model = ReturnModel.from_snapshot(eng.model.snapshot())
    detector = load_detector(eng._market.detector.snapshot())
    state = {"t": world.day}

    def parts_only() -> float:
        day = dict(zip(syms, world.returns[state["t"] % len(world.returns)].tolist(), strict=True))
        state["t"] += 1
        t0 = time.perf_counter()
        model.update(day, kind="log")
        detector.update(model.last_normal_score())
        return (time.perf_counter() - t0) * 1e6

    # every (side, horizon) a signal can ask for: one day long, then both sides at 2-5 days
    combos = [("long", 1)] + [(side, h) for side in ("long", "short") for h in range(2, 6)]

    def engine_bar(rebuild: bool, multi: bool = False) -> float:
        row = world.returns[world.day % len(world.returns)]
        day = dict(zip(syms, row.tolist(), strict=True))
        date = START + dt.timedelta(days=world.day)
        world.day += 1
        asks = combos if multi else combos[:1] if rebuild else []
        keys = [f"bar-{world.day}-{side}-{h}" for side, h in asks]
        t0 = time.perf_counter()
        eng.bar(date, day)
        for (side, h), key in zip(asks, keys, strict=True):
            eng.signal(world.signal, world.symbol, side, h, key=key)
        t = (time.perf_counter() - t0) * 1e6
        for key in keys:
            eng.cancel(key)
        return t

    timed: dict[str, float] = {}

    def prepared_bar() -> float:
        """A bar, ``prepare`` for every (side, horizon) of 1-5 days, then one signal per pair
        twice (the second round: every piece already there). Returns the bar + prepare time;
        keeps the mean first and second signal times in ``timed``."""
        row = world.returns[world.day % len(world.returns)]
        day = dict(zip(syms, row.tolist(), strict=True))
        date = START + dt.timedelta(days=world.day)
        world.day += 1
        t0 = time.perf_counter()
        eng.bar(date, day)
        eng.prepare(horizons=range(1, 6))
        t1 = time.perf_counter()
        for round_ in ("first", "again"):
            keys = [f"prep-{world.day}-{round_}-{side}-{h}" for side, h in combos]
            t2 = time.perf_counter()
            for (side, h), key in zip(combos, keys, strict=True):
                eng.signal(world.signal, world.symbol, side, h, key=key)
            t3 = time.perf_counter()
            for key in keys:
                eng.cancel(key)
            us = (t3 - t2) * 1e6 / len(combos)
            timed[round_] = min(timed.get(round_, math.inf), us)
        return (t1 - t0) * 1e6

    rounds = max(repeat, 5)
    bar, base = best_interleaved(lambda: engine_bar(False), parts_only, rounds)
    full, base2 = best_interleaved(lambda: engine_bar(True), parts_only, rounds)
    multi, base3 = best_interleaved(lambda: engine_bar(True, multi=True), parts_only, 3)
    prep, base4 = best_interleaved(prepared_bar, parts_only, 3)
    eng.correlation()
    return [
        Result(
            "bar, 500 symbols", bar, "model + detector update", base, "<= 10 ms", max_us=10_000.0
        ),
        Result(
            "bar + lazy corr/Euler rebuild", full, "model + detector update", base2, "reference"
        ),
        Result(
            "  + h-day risk, 2 sides x 2-5 d",
            multi,
            "model + detector update",
            base3,
            "reference",
        ),
        Result(
            "bar + prepare(), 2 sides x 1-5 d", prep, "model + detector update", base4, "reference"
        ),
        Result(
            "  then a first signal per pair",
            timed["first"],
            "the same signal again",
            timed["again"],
            "reference",
        ),
    ]


def bench_logging(repeat: int) -> list[Result]:
    from bayes_mem.live.recording import MemoryRecorder
    from bayes_mem.store import Store, StoreRecorder

    rows = []
    plain = World(n_symbols=50)
    with tempfile.TemporaryDirectory(prefix="bayes_mem_bench_") as tmp:
        store = Store(data_dir=Path(tmp))
        recorder = StoreRecorder(store)
        memory = MemoryRecorder()
        try:
            for label, rec, settle in (
                ("StoreRecorder", recorder, recorder.flush),  # all rows stored
                ("MemoryRecorder", memory, lambda: memory.decisions),  # all rows converted
            ):
                logged = World(n_symbols=50, recorder=rec)

                def latency(w: World, after: Callable[[], object] | None) -> float:
                    eng = w.engine
                    us = _per_call(
                        lambda: eng.signal(w.signal, w.symbol, "long", 1),
                        lambda d: eng.cancel(d.id),
                        500,
                    )
                    if after is not None:
                        after()  # the writes of this round, untimed
                    return us

                def with_writes(w: World, after: Callable[[], object] | None) -> float:
                    eng = w.engine
                    t0 = time.perf_counter()
                    for _ in range(500):
                        eng.cancel(eng.signal(w.signal, w.symbol, "long", 1).id)
                    if after is not None:
                        after()
                    return (time.perf_counter() - t0) / 500 * 1e6

                ours, base = best_interleaved(
                    lambda w=logged, a=settle: latency(w, a),
                    lambda: latency(plain, None),
                    max(repeat, 7),
                )
                rows.append(
                    Result(
                        f"log on: {label}",
                        ours,
                        "no recorder",
                        base,
                        "ratio <= 1.10",
                        max_ratio=1.10,
                    )
                )
                ours, base = best_interleaved(
                    lambda w=logged, a=settle: with_writes(w, a),
                    lambda: with_writes(plain, None),
                    repeat,
                )
                rows.append(
                    Result(
                        "  incl. " + ("its writes" if rec is recorder else "converting rows"),
                        ours,
                        "no recorder",
                        base,
                        "reference",
                    )
                )
        finally:
            recorder.close()
            store.close()
    return rows


def demo_like_store(root: Path, seed: int = 7) -> tuple[Path, Path]:
    """A store filled like ``bayes-mem demo`` and an active prior set built directly (Laplace
    draws of each symbol's last 1,000 days, family draws around the demo's generating priors, a
    regime prior): what the nightly job publishes, without the MCMC fit. Returns (data, models)."""
    from bayes_mem.demo_nightly import FAMILIES as DEMO_FAMILIES
    from bayes_mem.demo_nightly import synthesize
    from bayes_mem.live.gjr_garch import fit_laplace, variance_path
    from bayes_mem.live.prior_set import (
        FamilyPosterior,
        PriorSet,
        SymbolPosterior,
        activate,
        write_prior_set,
    )
    from bayes_mem.store import Store

    data, models = root / "data", root / "models"
    rng = np.random.default_rng(seed)
    with Store(data_dir=data) as store:
        synthesize(store, rng)
        panel = store.returns_panel()
    symbols = {}
    for s in panel.columns:
        r = panel[s].dropna().to_numpy()[-1000:]
        fit = fit_laplace(r, N_DRAWS, rng)
        symbols[str(s)] = SymbolPosterior(
            fit.draws, variance_path(r, fit.draws, float(np.var(r)))[:, -1]
        )
    families = {
        f: FamilyPosterior(
            np.clip(m + 0.01 * rng.standard_normal(400), 0.01, 0.99),
            np.exp(np.log(c) + 0.2 * rng.standard_normal(400)),
        )
        for f, (m, c) in DEMO_FAMILIES.items()
    }
    ps = PriorSet(
        version=1,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        data_through=str(panel.index.max()),
        code_version="bench",
        config_hash="0" * 64,
        families=families,
        symbols=symbols,
        diagnostics={"passed": True, "reasons": []},
        regime={
            "hazard": 0.004,
            "max_run_length": 300,
            "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 2.0, "beta0": 2.0},
        },
    )
    write_prior_set(ps, models)
    activate(models, 1)
    return data, models


def bench_open(repeat: int) -> list[Result]:
    from bayes_mem.live import EngineConfig, TradingEngine
    from bayes_mem.store import Store

    with tempfile.TemporaryDirectory(prefix="bayes_mem_bench_") as tmp:
        data, models = demo_like_store(Path(tmp))
        with Store(data_dir=data) as store:

            def open_engine() -> float:
                t0 = time.perf_counter()
                eng = TradingEngine.open(
                    models, store, portfolio_value=1e6, shadow=EngineConfig.baseline()
                )
                t = time.perf_counter() - t0
                assert eng.prior_version == 1 and len(eng.symbols) == 12
                eng.close()
                return t * 1e6

            def reads() -> float:
                t0 = time.perf_counter()
                store.signals()
                store.outcomes()
                store.returns_panel()
                store.signal_symbols()
                return (time.perf_counter() - t0) * 1e6

            ours, base = best_interleaved(open_engine, reads, min(repeat, 5))
    return [
        Result(
            "open on a demo-like store", ours, "the store reads alone", base, "< 2 s", max_us=2e6
        )
    ]


def run(repeat: int = 7) -> list[Result]:
    warm_up()
    world = World()
    return [
        *bench_one_decision(world, repeat),
        *bench_tick(world, repeat),
        *bench_bar(world, repeat),
        *bench_logging(repeat),
        *bench_open(repeat),
    ]
