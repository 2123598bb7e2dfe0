"""Bad input to the trading engine: every event refuses it with ValueError/TypeError naming the
value, and nothing changes: the whole snapshot (live and shadow deciders, payoff models, raw
counts, books, open positions, generators, the shared return model's variance state, correlation
window, regime detector, history, daily PnL, the decision log and, with a store, every table) is
equal before and after. In memory, and opened on a store (SQLite, PostgreSQL).

A call has valid arguments except the bad ones: every bad value of every argument alone
(exhaustively, in memory), and random combinations of one or two (hypothesis, in memory and on
each store). The engine (an open position, settled trades, a shadow, a closed day) is shared by
the calls of a test, so a call that changed anything also shows in the calls after it.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_mem.live.engine import EngineConfig, TradingEngine
from bayes_mem.live.recording import MemoryRecorder
from bayes_mem.store import Store
from tests import engine_parts as parts
from tests import engine_store_parts as sp

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
STORE_SETTINGS = settings(SETTINGS, max_examples=40)

HUGE = 10**400  # beyond every float
JUNK = [None, True, False, np.True_, "", " ", "x", "0.5", b"long", 1.5, math.nan, math.inf,
        -math.inf, HUGE, -HUGE, [], ["AAA"], {}, (1,), object(), np.float64("nan"), 1j]  # fmt: skip
BAD_NAMES = ["", " ", "\t\n", "a\x00b", 3, 2.5, True, b"AAA:mom", ["AAA:mom"], ("AAA",), HUGE]
SETTLED = ["settled-1", "named-1"]  # trade ids settled before the calls (every engine)

# ------------------------------------------------------------------------------ bad values
# per event and argument: values that make the call bad when every other argument is valid
# fmt: off
BAD = {
    "signal": {
        "signal": [*BAD_NAMES, None, "nope", "AAA:mom ", "aaa:mom", "AAA:MOM", "ZZZ:mom", "α"],
        # DDD: a symbol no model has; BBB: AAA:mom trades AAA
        "symbol": [*BAD_NAMES, None, "ZZZ", "AAA ", "aaa", "DDD", "BBB"],
        "side": [*JUNK, "sideways", "Long", "SHORT", " long", "buy", "sell"],
        "horizon": [0, -1, -HUGE, HUGE, 64, 10**6, True, False, 1.0, 2.5, "1", None, math.nan,
                    np.float64(3.0), [1]],
        "key": ["", " ", "\n", "a\x00b", 1.5, True, b"k", ["k"], "k" * 201, 10**200, HUGE,
                "open-1", *SETTLED],
        "price": [0, 0.0, -0.0, -1.0, -1e-300, math.nan, math.inf, -math.inf, HUGE, -HUGE, True,
                  "50", [50.0], 1j, np.float64("nan"), 5e-324, 1e-310],
    },
    "settle_open": {  # settling the open position ``open-1`` (its signal known)
        "trade_id": ["", " ", "a\x00b", 1.5, True, b"t", ["t"], "t" * 201, HUGE, "ghost",
                     *SETTLED],
        "won": [v for v in JUNK if v not in (True, False)] + [0, 1, np.float64(1.0)],
        "pnl": [math.nan, math.inf, -math.inf, HUGE, -HUGE, "1.0", None, True, [1.0], 1j,
                np.float64("inf"), -1.0],
        "notional": [0, 0.0, -1.0, math.nan, math.inf, HUGE, True, "100", [100.0], 1j, 1e-300],
        "signal": [*BAD_NAMES, "nope", "CCC:rev"],  # not the position's signal
    },
    "settle_named": {  # settling a trade the engine did not decide (its signal named)
        "trade_id": ["", " ", "a\x00b", 1.5, True, b"t", ["t"], "t" * 201, HUGE, *SETTLED],
        "won": [v for v in JUNK if v not in (True, False)] + [0, 1, np.float64(1.0)],
        "pnl": [math.nan, math.inf, -math.inf, HUGE, -HUGE, "1.0", None, True, [1.0], 1j, 1.0],
        "notional": [0, 0.0, -1.0, math.nan, math.inf, HUGE, True, "100", [100.0], 1j, 1e-300],
        "signal": [*BAD_NAMES, "nope", "ZZZ:mom"],
        "size": [1.01e6, 1e12, 1e300],  # |pnl| / notional beyond any price move
    },
    "bar": {
        "date": ["2024-05-01", 20240501, None, 1.5, True, np.datetime64("NaT", "D"),
                 [parts.START], object(), "same", "earlier", "long ago"],
        "value": [math.nan, math.inf, -math.inf, HUGE, -HUGE, 1e300, -800.0, "0.01", None, True,
                  np.True_, [0.01], 1j, np.float64("nan")],
        "symbol": ["ZZZ", "AAA ", "aaa", "DDD", "BB", 1, None, ("AAA",)],
        "returns": [{}, None, [0.01, 0.02, 0.0], "AAA", 0.01, ()],
        "kind": ["Log", "simple ", "", None, 1, True, "pct"],
        "simple": [-1.0, -1.5, -HUGE],
    },
    "end_of_day": {
        "date": ["2024-05-01", 20240501, None, 1.5, True, [parts.START], object(), "earlier"],
        "level": [0.0, 1.0, -0.5, 1.5, math.nan, math.inf, True, "0.975", None, HUGE],
    },
    "register": {
        "signal": [*BAD_NAMES, None],
        "family": [*BAD_NAMES, None, "reversion"],  # AAA:mom is a momentum signal
        "symbol": [*BAD_NAMES, "BBB"],  # AAA:mom trades AAA
    },
}
# fmt: on


def make_call(eng: TradingEngine, event: str, bad: dict, unkeyed: bool = False):
    """The call of ``event`` with every argument valid except ``bad`` (argument -> value)."""
    if event == "signal":
        key = None if unkeyed else f"fresh-{len(eng._open)}"
        a = {"signal": "AAA:mom", "symbol": "AAA", "side": "long", "horizon": 2, "key": key,
             "price": 50.0} | bad  # fmt: skip
        return lambda: eng.signal(a["signal"], a["symbol"], a["side"], a["horizon"],
                                  key=a["key"], price=a["price"])  # fmt: skip
    if event.startswith("settle"):
        if event == "settle_open":
            a = {"trade_id": "open-1", "won": True, "pnl": 10.0, "notional": None, "signal": None}
        else:
            a = {"trade_id": "fresh-trade", "won": False, "pnl": -3.0, "notional": 100.0,
                 "signal": "BBB:rev"}  # fmt: skip
        a |= bad
        if "size" in bad:
            a["notional"], a["pnl"] = 1.0, -bad["size"]
        return lambda: eng.settle(a["trade_id"], won=a["won"], pnl=a["pnl"],
                                  notional=a["notional"], signal=a["signal"])  # fmt: skip
    if event == "bar":
        date = eng.last_date + dt.timedelta(days=1)
        returns: object = {"AAA": 0.01, "BBB": -0.002}
        kind = "log"
        for name, value in bad.items():
            if name == "date":
                named = {"same": eng.last_date, "earlier": eng.last_date - dt.timedelta(days=1),
                         "long ago": dt.date(1990, 1, 1)}  # fmt: skip
                date = named[value] if isinstance(value, str) and value in named else value
            elif name == "value":
                returns = dict(returns, BBB=value)
            elif name == "symbol":
                returns = dict(returns, **{value: 0.0}) if isinstance(value, str) else \
                    {**returns, value: 0.0}  # fmt: skip
            elif name == "returns":
                returns = value
            elif name == "kind":
                kind = value
            else:  # a simple return of -100% or less
                kind, returns = "simple", {"AAA": value}
        return lambda: eng.bar(date, returns, kind=kind)
    if event == "end_of_day":
        date = bad.get("date", eng.last_date)
        if isinstance(date, str) and date == "earlier":
            date = eng._daily[-1][0] - dt.timedelta(days=1)
        level = bad.get("level", 0.975)
        return lambda: eng.end_of_day(date, level=level)
    a = {"signal": "AAA:mom", "family": "momentum", "symbol": "AAA"} | bad
    return lambda: eng.register(a["signal"], a["family"], a["symbol"])


def refuses(eng, call, what, snap):
    """``call`` raises ValueError/TypeError naming the value, and ``snap()`` is unchanged."""
    before = snap()
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    after = snap()
    assert after == before, (what, sp.diff(before, after))
    return info.value


def names_the_value(exc: BaseException, bad: dict) -> bool:
    """The message names the bad value (its repr or str) or the argument."""
    text = str(exc)
    for name, value in bad.items():
        if name == "date" and value in ("same", "earlier", "long ago"):
            return re.search(r"\d{4}-\d\d-\d\d", text) is not None  # the date, in ISO
        shown = [repr(value)[:30], str(value)[:30], name]
        if any(s and s in text for s in shown):
            return True
    return False


@st.composite
def bad_calls(draw, eng: TradingEngine, events=tuple(BAD)):
    event = draw(st.sampled_from(events))
    names = draw(st.lists(st.sampled_from(sorted(BAD[event])), min_size=1, max_size=2,
                          unique=True))  # fmt: skip
    if event == "bar" and len(names) == 2 and "returns" in names:
        names.remove("returns")  # a bad mapping replaces the values and symbols
    bad = {n: draw(st.sampled_from(BAD[event][n])) for n in names}
    unkeyed = event == "signal" and "key" not in bad and draw(st.booleans())
    return make_call(eng, event, bad, unkeyed), (event, bad, unkeyed)


# ------------------------------------------------------------------------------ in memory
def memory_engine():
    rec = MemoryRecorder()
    eng = TradingEngine(
        parts.decider(0), parts.model(), portfolio_value=sp.PV, config=sp.live_config(),
        signal_symbols=parts.links(), shadow=EngineConfig.baseline(), seed=3, recorder=rec,
    )  # fmt: skip
    returns = parts.correlated_returns(60)
    for t in range(60):
        eng.bar(parts.START + dt.timedelta(days=t), parts.day_returns(returns[t]))
    prepare(eng)
    return eng, rec


def prepare(eng: TradingEngine) -> None:
    """An open position ``open-1``, a settled decision ``settled-1``, a settled named trade
    ``named-1``, a closed day."""
    eng.signal("CCC:mom", "CCC", key="open-1")
    d = eng.signal("BBB:mom", "BBB", key="settled-1")
    eng.settle(d.id, won=True, pnl=0.01 * d.notional)
    eng.settle("named-1", won=False, pnl=-5.0, notional=500.0, signal="AAA:rev")
    eng.end_of_day(eng.last_date)


@pytest.fixture(scope="module")
def mem():
    return memory_engine()


def every_bad_value_alone(eng: TradingEngine, events, snap) -> list[str]:
    """Try every bad value of every argument of ``events`` alone (a signal both keyed and
    unkeyed); the failures, described."""
    failures = []
    for event in events:
        for name, values in BAD[event].items():
            for value in values:
                for unkeyed in (False, True) if event == "signal" and name != "key" else (False,):
                    bad = {name: value}
                    try:
                        exc = refuses(eng, make_call(eng, event, bad, unkeyed), bad, snap)
                    except BaseException as e:  # collected: every bad value is tried
                        failures.append(f"{event} {name}={value!r:.50} (unkeyed {unkeyed}): "
                                        f"{type(e).__name__}: {e!s:.300}")  # fmt: skip
                        continue
                    if not names_the_value(exc, bad):
                        failures.append(f"{event} {name}={value!r:.50}: not named in: {exc}")
    return failures


@pytest.mark.parametrize("event", sorted(BAD))
def test_every_bad_value_alone_is_refused_and_changes_nothing(mem, event):
    eng, rec = mem
    failures = every_bad_value_alone(eng, [event], lambda: sp.snapshot(eng, recorder=rec))
    assert not failures, "\n".join(failures)


@SETTINGS
@given(data=st.data())
def test_random_bad_calls_in_memory_change_nothing(mem, data):
    eng, rec = mem
    call, what = data.draw(bad_calls(eng))
    exc = refuses(eng, call, what, lambda: sp.snapshot(eng, recorder=rec))
    assert names_the_value(exc, what[1]), (what, exc)


def test_the_engine_still_works_after_the_bad_calls(mem):
    eng, rec = mem
    n = len(rec.decisions)
    d = eng.signal("AAA:mom", "AAA", "short", 3, key="after-fuzz", price=10.0)
    assert d.act and d.quantity == math.floor(d.notional / 10.0)
    eng.settle("after-fuzz", won=False, pnl=-1.0)
    eng.bar(eng.last_date + dt.timedelta(days=1), {"AAA": 0.001})
    assert len(rec.decisions) == n + 2
    assert sorted(eng.open_positions()) == ["open-1"]


# ------------------------------------------------------------------------------ on a store
@pytest.fixture
def store_engine(store_url, tmp_path):
    store = Store(store_url)
    sp.fill(store, days=120, outcomes=40)
    sp.publish(tmp_path / "models", 1, through=99)
    eng = sp.open_engine(tmp_path / "models", store)
    prepare(eng)
    yield eng, store
    eng.close()
    store.close()


@STORE_SETTINGS
@given(data=st.data())
def test_random_bad_calls_on_a_store_backed_engine_write_nothing(store_engine, data):
    eng, store = store_engine
    call, what = data.draw(bad_calls(eng))
    exc = refuses(eng, call, what, lambda: sp.snapshot(eng, store))
    assert names_the_value(exc, what[1]), (what, exc)


@pytest.mark.slow  # ~15 s on SQLite, ~25 s on PostgreSQL: 320 calls, each with two store snapshots
def test_every_bad_value_alone_on_a_store_backed_engine_writes_nothing(store_engine):
    eng, store = store_engine
    failures = every_bad_value_alone(eng, sorted(BAD), lambda: sp.snapshot(eng, store))
    assert not failures, "\n".join(failures)


class Refuses:
    """A user's sizing module that refuses (an error of its own) after the live decision."""

    name = "refuses"
    enabled = True

    def limit(self, ctx):
        raise ValueError(f"refuses to size {ctx.signal!r}")


def test_a_shadow_that_refuses_leaves_no_half_made_decision():
    rec = MemoryRecorder()
    shadow = EngineConfig(name="picky", rule=sp.AlwaysAct(), budget=Refuses(), kelly=None,
                          correlation=None, regime=None)  # fmt: skip
    eng = TradingEngine(parts.decider(0), parts.model(), portfolio_value=sp.PV,
                        config=sp.live_config(), signal_symbols=parts.links(), shadow=shadow,
                        seed=3, recorder=rec)  # fmt: skip
    for key in ("k", None):  # keyed and unkeyed (the generators put back)
        before = sp.snapshot(eng, recorder=rec)
        with pytest.raises(ValueError, match="refuses to size 'AAA:mom'"):
            eng.signal("AAA:mom", "AAA", key=key)
        assert sp.snapshot(eng, recorder=rec) == before
