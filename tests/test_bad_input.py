"""Bad input raises ValueError/TypeError naming the value and leaves the state exactly as it was.

The state comparison uses the full JSON snapshot, RNG state included, so a failed call that
consumed a random draw or half-applied an update is caught.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_mem.live import BetaPrior, Decider, ThompsonSamplingDecider, UnknownSignalError

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

not_bool = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.none(),
    st.lists(st.booleans()),
)
bad_pnl = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, np.nan, np.float64("inf")]),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
    st.lists(st.floats(), max_size=2),
    st.complex_numbers(),
)
bad_name = st.one_of(
    st.sampled_from(["", " ", "\t\n"]),
    st.integers(),
    st.none(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
    st.binary(max_size=3),
)
unknown_name = st.text(min_size=1).filter(
    lambda s: s.strip() and s not in {"mom_a", "mom_b", "mom_new", "mr_a"}
)


def assert_refused(d: Decider, call, exc=(ValueError, TypeError), match=None):
    before = d.to_json()
    with pytest.raises(exc, match=match):
        call()
    assert d.to_json() == before


@SETTINGS
@given(won=not_bool)
def test_record_refuses_non_bool_outcomes(decider, won):
    assert_refused(decider, lambda: decider.record("mom_a", won, 1.0), TypeError, match="won")


@SETTINGS
@given(pnl=bad_pnl)
def test_record_refuses_non_finite_or_non_numeric_pnl(decider, pnl):
    assert_refused(decider, lambda: decider.record("mom_a", True, pnl), match="pnl")


@SETTINGS
@given(x=st.floats(min_value=1e-300, max_value=1e300))
def test_record_refuses_pnl_that_contradicts_the_outcome(decider, x):
    assert_refused(
        decider, lambda: decider.record("mom_a", True, -x), ValueError, match="contradicts"
    )
    assert_refused(
        decider, lambda: decider.record("mom_a", False, x), ValueError, match="contradicts"
    )


@SETTINGS
@given(name=st.one_of(bad_name, unknown_name))
def test_record_and_decide_refuse_bad_or_unknown_signals(decider, name):
    assert_refused(decider, lambda: decider.record(name, True, 1.0))
    assert_refused(decider, lambda: decider.decide(name))
    assert_refused(decider, lambda: decider.decide_batch(["mom_a", name]))
    assert_refused(decider, lambda: decider.choose(["mom_a", name], 1))
    assert_refused(decider, lambda: decider.metrics(name))


def test_unknown_signal_error_names_the_signal(decider):
    with pytest.raises(UnknownSignalError, match="unknown signal 'nope'") as info:
        decider.decide("nope")
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)


@SETTINGS
@given(
    tid=st.one_of(
        st.sampled_from(["", "  "]), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2)
    )
)
def test_record_refuses_bad_trade_ids(decider, tid):
    assert_refused(
        decider, lambda: decider.record("mom_a", True, 1.0, trade_id=tid), match="trade_id"
    )


def test_duplicate_trade_id_is_refused_across_signals_and_types(decider):
    decider.record("mom_a", True, 1.0, trade_id=42)
    assert_refused(
        decider,
        lambda: decider.record("mom_b", False, -1.0, trade_id="42"),
        ValueError,
        match="'42'",
    )
    assert_refused(
        decider, lambda: decider.record("mom_a", True, 1.0, trade_id="t3"), ValueError, match="t3"
    )
    assert decider.seen_trade(42) and decider.seen_trade("t3") and not decider.seen_trade("t999")


@SETTINGS
@given(value=st.one_of(st.floats(), st.integers(), st.text(max_size=3), st.none(), st.booleans()))
def test_discount_and_forget_factor_outside_unit_interval_are_refused(decider, value):
    ok = (
        isinstance(value, float | int)
        and not isinstance(value, bool)
        and 0 < value <= 1
        and math.isfinite(value)
    )
    if ok:
        return
    with pytest.raises((ValueError, TypeError), match="discount"):
        Decider(["f"], discount=value)
    assert_refused(decider, lambda: decider.forget(value), match="factor")


@SETTINGS
@given(
    thr=st.one_of(st.floats().filter(lambda x: not 0 < x < 1), st.text(max_size=2), st.booleans())
)
def test_thresholds_outside_open_unit_interval_are_refused(decider, thr):
    assert_refused(decider, lambda: decider.decide("mom_a", threshold=thr), match="threshold")
    assert_refused(
        decider, lambda: decider.decide_batch(["mom_a"], threshold=thr), match="threshold"
    )
    with pytest.raises((ValueError, TypeError), match="threshold"):
        Decider(["f"], threshold=thr)


@SETTINGS
@given(
    k=st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=5, max_value=10**6),
        st.floats(),
        st.text(max_size=2),
    )
)
def test_choose_refuses_bad_k(decider, k):
    assert_refused(
        decider, lambda: decider.choose(["mom_a", "mom_b", "mr_a", "mom_new"], k), match="k"
    )


def test_choose_refuses_duplicates_and_index_errors(decider):
    assert_refused(
        decider, lambda: decider.choose(["mom_a", "mom_a"], 1), ValueError, match="distinct"
    )
    many = decider.indices(["mom_a"] * 40)
    assert_refused(decider, lambda: decider.choose(many, 1), ValueError, match="distinct")
    assert_refused(decider, lambda: decider.decide_batch(np.array([0, 99])), ValueError, match="99")
    assert_refused(decider, lambda: decider.decide_batch(np.array([-1])), ValueError, match="-1")
    assert_refused(
        decider, lambda: decider.decide_batch(np.zeros((2, 2), int)), ValueError, match="1-d"
    )
    assert_refused(decider, lambda: decider.decide_batch("mom_a"), TypeError, match="sequence")
    assert_refused(decider, lambda: decider.choose({"mom_a"}, 1), TypeError, match="sequence")


@SETTINGS
@given(name=bad_name)
def test_registration_refuses_bad_names(decider, name):
    assert_refused(decider, lambda: decider.register(name, "momentum"))
    assert_refused(decider, lambda: decider.add_family(name))


@SETTINGS
@given(family=unknown_name.filter(lambda s: s not in {"momentum", "mean_reversion"}))
def test_unknown_families_are_refused(decider, family):
    unknown = "unknown family|family name"  # a name breaking the name rule is refused as such
    assert_refused(decider, lambda: decider.register("brand_new", family), match=unknown)
    assert_refused(decider, lambda: decider.forget(0.5, family=family), match=unknown)
    assert_refused(
        decider, lambda: decider.set_family_prior(family, BetaPrior(1, 1)), match=unknown
    )


def test_family_management_errors(decider):
    assert_refused(
        decider, lambda: decider.add_family("momentum"), ValueError, match="already exists"
    )
    assert_refused(
        decider, lambda: decider.set_family_prior("momentum", (1, 2)), TypeError, match="BetaPrior"
    )
    with pytest.raises(TypeError, match="families"):
        Decider("momentum")
    with pytest.raises(TypeError, match="rng"):
        Decider(["f"], rng="seed")
    with pytest.raises(ValueError, match="clock"):
        Decider(["f"], clock="daily")


def test_empty_batch_is_an_empty_answer(decider):
    act, p = decider.decide_batch([])
    assert act.shape == (0,) and p.shape == (0,)


@SETTINGS
@given(won=not_bool, pnl=bad_pnl)
def test_facade_refuses_bad_outcomes_without_side_effects(won, pnl):
    ts = ThompsonSamplingDecider(rng=1)
    ts.update_signal_result("s", True, 1.0)
    before = ts.decider.to_json()
    with pytest.raises((ValueError, TypeError)):
        ts.update_signal_result("s", won, 1.0)
    with pytest.raises((ValueError, TypeError)):
        ts.update_signal_result("s", True, pnl)
    with pytest.raises((ValueError, TypeError)):
        ts.decide_execute("s", base_confidence=1.5)
    assert ts.decider.to_json() == before
    with pytest.raises((ValueError, TypeError)):
        ts.update_signal_result("brand_new", won, 1.0)
    with pytest.raises((ValueError, TypeError)):
        ts.decide_execute("brand_new", base_confidence=0.0)
    assert ts.decider.to_json() == before  # failed calls did not even register the new name
