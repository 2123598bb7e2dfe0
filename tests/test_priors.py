import math

import pytest

from bayes_mem.live import BetaPrior


def test_mean_concentration_round_trip():
    p = BetaPrior.from_mean_concentration(0.55, 40.0)
    assert p.a == pytest.approx(22.0) and p.b == pytest.approx(18.0)
    assert p.mean == pytest.approx(0.55) and p.concentration == pytest.approx(40.0)


def test_json_round_trip_is_exact():
    p = BetaPrior(0.1 + 0.2, 1e-7)
    assert BetaPrior.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("a,b", [(0, 1), (-1, 1), (1, math.nan), (math.inf, 1), (1, 0.0)])
def test_rejects_non_positive_or_non_finite(a, b):
    with pytest.raises(ValueError, match="BetaPrior"):
        BetaPrior(a, b)


@pytest.mark.parametrize("a", ["1", None, True, [1]])
def test_rejects_non_numbers(a):
    with pytest.raises(TypeError, match=r"BetaPrior\.a"):
        BetaPrior(a, 1.0)


@pytest.mark.parametrize("data", [{"a": 1}, {"a": 1, "b": 2, "c": 3}, [1, 2], "x"])
def test_from_json_rejects_malformed(data):
    with pytest.raises(ValueError):
        BetaPrior.from_dict(data)


@pytest.mark.parametrize("mean,conc", [(0.0, 2), (1.0, 2), (0.5, 0), (0.5, -1)])
def test_mean_concentration_bounds(mean, conc):
    with pytest.raises(ValueError):
        BetaPrior.from_mean_concentration(mean, conc)
