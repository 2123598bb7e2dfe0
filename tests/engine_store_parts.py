"""A store an engine opens on, and the engine's whole state as one comparable snapshot.

The store holds what :meth:`TradingEngine.open` restores from: the six signals of
:mod:`tests.engine_parts` (and ``DDD:mom``, which trades a symbol no prior set has) with their
symbol links, outcomes with notionals (some unknown), ``DAYS`` days of returns (``AAA`` missing on
a few days, ``DDD`` stored but never modelled), and a models directory whose active prior set's
``data_through`` is day ``THROUGH`` (so the engine rolls its variance state through the rest).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from bayes_mem.live.engine import EngineConfig, TradingEngine
from bayes_mem.live.prior_set import activate, write_prior_set
from bayes_mem.store import Store, schema
from tests import engine_parts as parts

DAYS = 260  # days of returns stored
THROUGH = 199  # the prior set's data_through: day index (0-based) of the last day it saw
MISSING_AAA = (205, 230, 231)  # days without an AAA return (a partial day in the roll-forward)
OUTCOMES = 160
PV = 1_000_000.0
EXTRA = {"DDD:mom": ("momentum", "DDD")}  # a signal trading a symbol no prior set covers


class AlwaysAct:
    """A decision rule that always acts (so every decision opens a position), with the win
    probability of one posterior draw (the engine's generator when the decision has no key)."""

    name = "always"
    enabled = True

    def decide(self, ctx):
        return True, ctx.draw_win_probability(), {"why": "test"}


def day(t: int) -> dt.date:
    return parts.START + dt.timedelta(days=t)


def family_of(signal: str) -> str:
    if signal in EXTRA:
        return EXTRA[signal][0]
    return "momentum" if signal.endswith(":mom") else "reversion"


def fill(store: Store, *, days: int = DAYS, outcomes: int = OUTCOMES, seed: int = 0) -> None:
    """Signals, links, ``outcomes`` outcomes (trade ids ``h-0``...; every 7th without notional)
    and ``days`` days of returns."""
    links = parts.links() | {s: sym for s, (_, sym) in EXTRA.items()}
    store.register_signals({s: family_of(s) for s in links})
    store.link_signals(links)
    rng = np.random.default_rng(seed)
    names = sorted(links)
    rows = []
    for k in range(outcomes):
        sig = names[int(rng.integers(len(names)))]
        won = bool(rng.random() < (0.55 if sig.endswith("mom") else 0.45))
        notional = float(np.round(rng.uniform(5_000, 20_000), 2))
        size = float(rng.gamma(2.0, 0.006))
        pnl = (size if won else -size) * notional
        rows.append((f"h-{k}", sig, won, pnl, None if k % 7 == 3 else notional,
                     pd.Timestamp(day(k % days), tz="UTC")))  # fmt: skip
    store.ingest_outcomes(
        pd.DataFrame(rows, columns=["trade_id", "signal", "won", "pnl", "notional", "settled_at"])
    )
    r = parts.correlated_returns(days, seed=seed + 1)
    frames = []
    for j, sym in enumerate(parts.SYMBOLS):
        keep = [t for t in range(days) if not (sym == "AAA" and t in MISSING_AAA)]
        frames.append(pd.DataFrame({"symbol": sym, "date": [day(t) for t in keep],
                                    "return": r[keep, j]}))  # fmt: skip
    frames.append(pd.DataFrame({"symbol": "DDD", "date": [day(t) for t in range(days)],
                                "return": 0.02 * rng.standard_normal(days)}))  # fmt: skip
    store.ingest_returns(pd.concat(frames, ignore_index=True), kind="log")


def publish(models: Path, version: int = 1, through: int | None = THROUGH):
    """Write and activate ``parts.prior_set(version)`` with ``data_through`` = day ``through``."""
    through_date = None if through is None else day(through).isoformat()
    ps = parts.prior_set(version, data_through=through_date)
    write_prior_set(ps, models)
    activate(models, version)
    return ps


def live_config() -> EngineConfig:
    return EngineConfig(rule=AlwaysAct())


def open_engine(models: Path, store: Store, **kw: Any) -> TradingEngine:
    kw.setdefault("config", live_config())
    kw.setdefault("shadow", EngineConfig.baseline())
    kw.setdefault("seed", 5)
    return TradingEngine.open(models, store, portfolio_value=PV, **kw)


# ---------------------------------------------------------------------------- snapshots
def store_tables(store: Store) -> dict[str, list[tuple]]:
    """Every table of the store, as sorted rows."""
    out = {}
    with store.engine.connect() as conn:
        for name, table in sorted(schema.metadata.tables.items()):
            out[name] = sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
    return out


def _engine_state(e: TradingEngine) -> dict[str, Any]:
    return {
        "decider": e.decider.to_json(),
        "payoff": json.dumps(e.payoff.to_dict(), sort_keys=True),
        "raw": sorted(e._raw.items()),
        "open": {k: vars(p).copy() for k, p in e._open.items()},
        "exposure": sorted(e._exposure.items()),
        "day_pnl": e._day_pnl,
        "daily": list(e._daily),
        "last_date": e.last_date,
        "rng": repr(e._rng.bit_generator.state),
        "links": sorted(e._links.items()),
        "per_symbol": sorted(e._per_symbol.items()),
        "prior_version": e.prior_version,
    }


def snapshot(eng: TradingEngine, store: Store | None = None, recorder: Any = None) -> dict:
    """The engine's whole state (and its shadow's, the shared market's, the store's tables and
    a memory recorder's rows): equal before and after a refused call."""
    out: dict[str, Any] = {"live": _engine_state(eng)}
    if eng.shadow is not None:
        out["shadow"] = _engine_state(eng.shadow)
        out["shadow_shares_market"] = eng.shadow._market is eng._market
    m = eng._market
    out["history"] = [(d, sorted(r.items())) for d, r in eng._history]
    out["market"] = {
        "sigma2": None if m.model is None else m.model.sigma2().tobytes(),
        "last_score": None if m.model is None else m.model.last_normal_score().tobytes(),
        "scores": np.asarray(m.scores).tobytes(),
        "p_change": m.p_change.tobytes(),
        "detector": None if m.detector is None else m.detector.to_json(),
        "breakdown": (m.breakdown_score, m.breakdown_p),
        "prior_set": None if m.prior_set is None else m.prior_set.version,
    }
    if store is not None:
        eng.flush()
        out["store"] = store_tables(store)
    if recorder is not None:
        out["recorded"] = (list(recorder.decisions), len(recorder.logged))
    return out


def diff(a: dict, b: dict, path: str = "") -> list[str]:
    """Where two snapshots differ (for assertion messages)."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += diff(x, y, f"{path}{k}.")
        elif x != y:
            out.append(f"{path}{k}")
    return out


# ---------------------------------------------------------------------------- a trading day
def events(seed: int, days: int = 6, per_day: int = 12, first: int = DAYS) -> list[dict]:
    """``days`` trading days from day ``first``: each a bar, ``per_day`` keyed signals on random
    signals and sides, settlements of some of the decisions still open, and the close."""
    rng = np.random.default_rng(seed)
    names = sorted(parts.links())
    out: list[dict] = []
    open_keys: list[str] = []
    for t in range(first, first + days):
        r = 0.01 * rng.standard_normal(3)
        returns = {s: float(x) for s, x in zip(parts.SYMBOLS, r, strict=True)}
        out.append({"kind": "bar", "date": day(t).isoformat(), "returns": returns})
        for k in range(per_day):
            sig = names[int(rng.integers(len(names)))]
            key = f"{day(t).isoformat()}/{k}"
            out.append({"kind": "signal", "signal": sig, "symbol": sig[:3],
                        "side": "long" if rng.random() < 0.6 else "short",
                        "horizon": int(rng.integers(1, 4)), "key": key})  # fmt: skip
            open_keys.append((key, sig))
            if rng.random() < 0.5 and open_keys:
                done, of = open_keys.pop(int(rng.integers(len(open_keys))))
                out.append({"kind": "settle", "key": done, "signal": of,
                            "won": bool(rng.random() < 0.52),
                            "move": float(abs(rng.normal(0, 0.01)))})  # fmt: skip
        out.append({"kind": "eod", "date": day(t).isoformat()})
    return out


def play(eng: TradingEngine, evs: list[dict], on_decision=None, on_settle=None) -> dict:
    """Play events; returns key -> the decision's numbers (act, p_win, notional, limits,
    factors, prior version) for every signal event."""
    made = {}
    for e in evs:
        if e["kind"] == "bar":
            eng.bar(dt.date.fromisoformat(e["date"]), e["returns"])
        elif e["kind"] == "signal":
            d = eng.signal(e["signal"], e["symbol"], e["side"], e["horizon"], key=e["key"])
            made[e["key"]] = decision_numbers(d)
            if on_decision is not None:
                on_decision(e, d)
        elif e["kind"] == "settle":
            pos = eng._open.get(e["key"])
            notional = pos.notional if pos is not None and pos.act else 1000.0
            pnl = (1 if e["won"] else -1) * e["move"] * notional
            eng.settle(e["key"], won=e["won"], pnl=pnl, notional=notional,
                       signal=None if pos is not None else e["signal"])  # fmt: skip
            if on_settle is not None:
                on_settle(e)
        else:
            eng.end_of_day(dt.date.fromisoformat(e["date"]))
    return made


def decision_numbers(d) -> dict:
    return {"act": d.act, "p_win": d.p_win, "notional": d.notional, "limits": dict(d.limits),
            "factors": dict(d.factors), "prior_version": d.prior_version,
            "shadow": None if d.shadow is None else (d.shadow.act, d.shadow.notional)}  # fmt: skip


# What a restart cannot repeat bit for bit: the risk model's warm-started solvers (a position's
# ES is solved from the last answer to within ~2e-5 relative at one day, ~1e-4 over a
# multi-day horizon: a fresh model starts elsewhere and stops at another point within that) and
# the normal scores that prime the correlation window and the regime detector (re-scored from
# the stored returns on opening: ~1e-5 relative on the portfolio-ES limit). Measured: 7.7e-5.
SIZE_RTOL = 3e-4


def compare_decisions(want: dict, got: dict) -> tuple[list[str], float]:
    """Keys whose decisions differ (act, win draw, prior version, the shadow's act and the names
    of the limits and factors exactly; notional, limits and factors to ``SIZE_RTOL``), and the
    largest relative difference of a size seen."""
    bad, worst = [], 0.0
    for key, w in want.items():
        g = got.get(key)
        if g is None:
            bad.append(f"{key}: not decided")
            continue
        same = [g[n] == w[n] for n in ("act", "p_win", "prior_version")]
        same += [set(g["limits"]) == set(w["limits"]), set(g["factors"]) == set(w["factors"])]
        same.append((g["shadow"] and g["shadow"][0]) == (w["shadow"] and w["shadow"][0]))
        if not all(same):
            bad.append(f"{key}: {g} != {w}")
            continue
        sizes = [(g["notional"], w["notional"])]
        sizes += [(g["limits"][n], w["limits"][n]) for n in w["limits"]]
        sizes += [(g["factors"][n], w["factors"][n]) for n in w["factors"]]
        if w["shadow"]:
            sizes.append((g["shadow"][1], w["shadow"][1]))
        for x, y in sizes:
            rel = abs(x - y) / max(abs(y), 1e-12) if x != y else 0.0
            worst = max(worst, rel)
            if rel > SIZE_RTOL:
                bad.append(f"{key}: {x} != {y} (relative {rel:.2e}): {g} != {w}")
                break
    return bad, worst
