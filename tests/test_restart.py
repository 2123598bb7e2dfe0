"""A trader process killed (SIGKILL) mid-day restarts from the store and makes the same
decisions it would have made, with no outcome lost or counted twice; on SQLite and PostgreSQL.

The trader (``tests._workers trader``) uses keyed decisions (:meth:`PersistentDecider.decide`
with the signal event's id as key), so a decision depends only on the seed, the key and the
outcomes recorded before it; on restart it restores from the store and resumes after the last
stored settlement.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from bayes_mem.live import BetaPrior
from bayes_mem.store import PersistentDecider, Store
from tests._workers import TRADER_FAMILIES, trading_day

ROOT = Path(__file__).resolve().parents[1]
SEED = 11


def run_trader(url: str, events: Path, kill_after: int | None = None) -> dict[int, dict]:
    """Decisions printed by one trader process (index -> decision); with ``kill_after``, the
    process is SIGKILLed once it has printed that many."""
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(
            [sys.executable, "-m", "tests._workers", "trader", url, str(SEED), str(events)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
        out: dict[int, dict] = {}
        assert p.stdout is not None
        for line in p.stdout:
            d = json.loads(line)
            out[d.pop("i")] = d
            if kill_after is not None and len(out) == kill_after:
                os.kill(p.pid, signal.SIGKILL)
                # keep reading (the file object's buffer included): what it printed before dying
        p.stdout.close()
        code = p.wait(timeout=300)
        err.seek(0)
        message = err.read()[-3000:]
    assert code == 0 if kill_after is None else code in (0, -signal.SIGKILL), message
    return out


def state(url: str) -> tuple[list, dict]:
    store = Store(url)
    table = store.outcomes()[["trade_id", "signal", "won", "pnl"]]
    families = {f: BetaPrior(*ab) for f, ab in TRADER_FAMILIES.items()}
    live = PersistentDecider.restore(store, families, seed=SEED, discount=0.995)
    posts = {s: live.posterior(s) for s in live.signals}
    store.close()
    return table.to_dict("records"), posts


@pytest.mark.slow
def test_killed_trader_restarts_with_the_same_decisions_and_no_outcome_lost(
    tmp_path, store_url, request
):
    events = tmp_path / "day.jsonl"
    day = trading_day(SEED)
    events.write_text("".join(json.dumps(e) + "\n" for e in day))
    n_decisions = sum(e["kind"] == "decide" for e in day)
    reference_url = f"sqlite:///{tmp_path / 'reference.sqlite'}"
    reference = run_trader(reference_url, events)
    assert sorted(reference) == [i for i, e in enumerate(day) if e["kind"] == "decide"]
    ref_outcomes, ref_posteriors = state(reference_url)
    assert len(ref_outcomes) == len(day) - n_decisions

    rng = np.random.default_rng(zlib.crc32(request.node.name.encode()))
    kill_points = sorted(rng.integers(3, n_decisions - 3, size=2).tolist())
    store_urls = [store_url]
    if store_url.startswith("sqlite"):
        store_urls.append(f"sqlite:///{tmp_path / 'second.sqlite'}")
    for url, kill_after in zip(store_urls, kill_points, strict=False):
        before = run_trader(url, events, kill_after=kill_after)
        assert kill_after <= len(before) < n_decisions  # killed mid-day
        after = run_trader(url, events)
        # decisions made again after the restart (those after the last stored settlement)
        # repeat the killed process's exactly; together they are the uninterrupted day's
        for i in set(before) & set(after):
            assert before[i] == after[i], i
        assert {**before, **after} == reference
        outcomes, posteriors = state(url)
        assert outcomes == ref_outcomes  # every settlement stored once, in the same order
        for name, post in ref_posteriors.items():
            assert posteriors[name].a == pytest.approx(post.a, rel=1e-12)
            assert posteriors[name].b == pytest.approx(post.b, rel=1e-12)


def test_keyed_decisions_are_a_function_of_seed_key_and_outcomes(tmp_path):
    from bayes_mem.live import Decider

    store = Store(data_dir=tmp_path / "d")
    fams = {"f": BetaPrior(2, 2)}
    a = PersistentDecider(Decider(fams, rng=0), store, seed=5)
    a.register("s", "f")
    first = a.decide("s", key="s@1")
    assert a.decide("s", key="s@1") == first  # the same key, the same state: the same draw
    assert a.decide("s", key="s@2") != first
    b = PersistentDecider.restore(store, fams, seed=5)
    assert b.decide("s", key="s@1") == first
    own = a.decider.to_json()
    a.decide("s", key="s@3")
    assert a.decider.to_json() == own  # keyed draws leave the decider's generator alone
    a.record("s", True, 1.0, trade_id="t1")
    assert a.decide("s", key="s@1") != first  # a new outcome changes the posterior
    c = PersistentDecider.restore(store, fams, seed=6)
    assert c.decide("s", key="s@1") != a.decide("s", key="s@1")
    with pytest.raises(TypeError, match="key"):
        a.decide("s", key=1.5)
    with pytest.raises(ValueError, match="key"):
        a.decide("s", key=" ")
    with pytest.raises(ValueError, match="seed"):
        PersistentDecider(Decider(fams), store).decide("s", key="k")
    with pytest.raises(TypeError, match="rng"):
        a.decider.decide("s", rng=3)
    store.close()


@pytest.mark.parametrize("n_signals", [4, 40])  # the scalar path and the vectorised one
def test_keyed_choose_and_batches_repeat_after_a_restore(tmp_path, n_signals):
    from bayes_mem.live import Decider

    store = Store(data_dir=tmp_path / "d")
    fams = {"f": BetaPrior(2, 2), "g": BetaPrior(3, 5)}
    a = PersistentDecider(Decider(fams, rng=0), store, seed=9)
    names = [f"s{i}" for i in range(n_signals)]
    for i, n in enumerate(names):
        a.register(n, "f" if i % 2 else "g")
    rng = np.random.default_rng(1)
    for t in range(3 * n_signals):
        won = bool(rng.random() < 0.5)
        a.record(names[t % n_signals], won, 1.0 if won else -1.0, trade_id=f"t{t}")
    own = a.decider.to_json()
    top = a.choose(names, 3, key="event-7", only_acting=False)
    act, p = a.decide_batch(names, key="event-7")
    assert a.decider.to_json() == own  # keyed draws leave the decider's own generator alone
    b = PersistentDecider.restore(store, fams, seed=9)  # the restarted process
    assert b.choose(names, 3, key="event-7", only_acting=False) == top
    act_b, p_b = b.decide_batch(names, key="event-7")
    np.testing.assert_array_equal(p_b, p)
    np.testing.assert_array_equal(act_b, act)
    assert a.choose(names, 3, key="event-8", only_acting=False) != top or n_signals < 10
    unkeyed = a.choose(names, 3, only_acting=False)  # the decider's own generator, as before
    assert len(unkeyed) == 3 and a.decider.to_json() != own
    with pytest.raises(TypeError, match="rng"):
        a.decider.choose(names, 2, rng="seed")
    with pytest.raises(TypeError, match="rng"):
        a.decider.decide_batch(names, rng=7)
    with pytest.raises(TypeError, match="key"):
        a.choose(names, 2, key=2.5)
    store.close()
