"""JSON snapshot and exact restore."""

import json

import numpy as np
import pytest

from bayes_mem.live import BetaPrior, Decider


def _exercise(d: Decider, names: list[str], rounds: int = 200, tag: str = "") -> list:
    """A fixed sequence of calls; returns everything the decider answered."""
    out = []
    for t in range(rounds):
        name = names[t % len(names)]
        act, p = d.decide(name)
        out.append((act, p))
        if act:
            won = (t * 7919) % 3 != 0
            d.record(name, won, 1.5 if won else -1.0, trade_id=f"trade-{tag}{t}")
        if t % 50 == 0:
            out.append(d.choose(names, 2, only_acting=False))
            out.append(d.decide_batch(names * 10)[1].tolist())
    return out


@pytest.mark.parametrize("bitgen", [np.random.PCG64, np.random.Philox, np.random.MT19937])
def test_restore_is_exact_and_continues_identically(bitgen):
    names = ["α-momentum", 'o\'brien "quote"', "x; DROP TABLE signals;--", "<b>mr</b>"]
    d = Decider(
        {"fam 1": BetaPrior(2.0, 3.0), "fam 2": None},
        discount=0.7,
        min_edge=0.1,
        rng=np.random.Generator(bitgen(123)),
    )
    for i, name in enumerate(names):
        d.register(name, "fam 1" if i % 2 else "fam 2")
    _exercise(d, names)  # includes renormalisations: 0.7 ** 200 < 1e-30
    text = d.to_json()
    restored = Decider.from_json(text)
    assert restored.to_json() == text
    assert restored.signals == d.signals
    assert _exercise(restored, names, tag="b") == _exercise(d, names, tag="b")
    assert restored.to_json() == d.to_json()


def test_snapshot_is_plain_json(decider):
    data = json.loads(decider.to_json())
    assert data["schema"] == "bayes_mem.decider/2"
    assert {s["name"] for s in data["signals"]} == set(decider.signals)
    assert "t0" in data["trade_ids"]
    assert Decider.from_snapshot(decider.snapshot()).to_json() == decider.to_json()


def _corrupt(decider, mutate):
    data = json.loads(decider.to_json())
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(schema="other/9"), "schema"),
        (lambda d: d.pop("signals"), "signals"),
        (lambda d: d["signals"][0].update(ws=-1.0), "ws"),
        (lambda d: d["signals"][0].update(trades=10**6), "trades"),
        (lambda d: d["signals"][0].update(wins="3"), "wins"),
        (lambda d: d["signals"][0].update(family="ghost"), "ghost"),
        (lambda d: d["signals"].append(dict(d["signals"][0])), "twice"),
        (lambda d: d["signals"][0].update(name=""), "name"),
        (lambda d: d["config"].update(discount=1.5), "discount"),
        (lambda d: d["clock_state"].update(scale=0.0), "scale"),
        (lambda d: d["rng"].update(bit_generator="Evil"), "bit generator"),
        (lambda d: d["rng"]["state"].update(state="x"), "RNG"),
        (lambda d: d.update(trade_ids="t1"), "trade_ids"),
        (lambda d: d["families"][0].update(prior={"a": -1, "b": 1}), "BetaPrior"),
    ],
)
def test_malformed_snapshots_are_refused_with_the_field_named(decider, mutate, match):
    with pytest.raises(ValueError, match=match):
        Decider.from_snapshot(_corrupt(decider, mutate))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"schema": "bayes_mem.decider/1"}', "NaN"])
def test_malformed_json_text_is_refused(text):
    with pytest.raises(ValueError):
        Decider.from_json(text)


def test_nan_in_snapshot_is_refused(decider):
    text = decider.to_json().replace('"pnl_total":', '"pnl_total":NaN,"x":', 1)
    with pytest.raises(ValueError, match="pnl_total"):
        Decider.from_json(text)
