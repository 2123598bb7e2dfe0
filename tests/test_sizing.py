"""Sizing: CVaR budget, Kelly under uncertainty against brute force, combined limits."""

import numpy as np
import pytest

from bayes_mem.live.sizing import (
    combine_limits,
    cvar_position_limit,
    kelly_binary,
    kelly_continuous,
)


def brute_force_kelly(p, b, grid=200_001):
    f = np.linspace(0, 0.999, grid)
    growth = np.mean(
        p[:, None] * np.log1p(f[None, :] * b[:, None]) + (1 - p[:, None]) * np.log1p(-f[None, :]),
        axis=0,
    )
    return f[np.argmax(growth)]


def test_plug_in_kelly_is_the_textbook_formula():
    for p, b in [(0.55, 1.0), (0.4, 2.0), (0.6, 0.8)]:
        assert kelly_binary(p, b, fraction=1.0, cap=1.0) == pytest.approx(
            max(0, p - (1 - p) / b), abs=1e-12
        )


def test_kelly_under_uncertainty_matches_a_brute_force_grid_and_is_smaller():
    rng = np.random.default_rng(0)
    p = rng.beta(60, 40, 500)
    b = np.exp(rng.normal(0.0, 0.4, 500))  # uncertain payoff ratio
    ours = kelly_binary(p, b, fraction=1.0, cap=1.0)
    assert ours == pytest.approx(brute_force_kelly(p, b), abs=1e-5)
    plug_in = kelly_binary(p.mean(), b.mean(), fraction=1.0, cap=1.0)
    assert ours < plug_in
    wider = kelly_binary(
        p, np.exp(rng.normal(0.0, 0.8, 500)) * np.exp(-0.24), fraction=1.0, cap=1.0
    )
    assert wider < ours


def test_kelly_fraction_cap_and_no_edge():
    assert kelly_binary(0.9, 3.0) == pytest.approx((0.9 - 0.1 / 3) / 4)
    assert kelly_binary(0.9, 3.0, fraction=1.0) == 0.25  # capped
    assert kelly_binary(0.55, 1.0) == pytest.approx(0.1 / 4)
    assert kelly_binary(0.3, 1.0) == 0.0


def test_continuous_kelly_shrinks_with_uncertainty_about_the_mean():
    sure = kelly_continuous(0.0005, 1e-4, fraction=1.0, cap=100.0)
    assert sure == pytest.approx(0.0005 / (1e-4 + 0.0005**2))
    rng = np.random.default_rng(1)
    unsure = kelly_continuous(rng.normal(0.0005, 0.0005, 10_000), 1e-4, fraction=1.0, cap=100.0)
    assert unsure < sure
    assert kelly_continuous(-0.001, 1e-4) == 0.0
    assert kelly_continuous(0.0005, 1e-4) == 0.25  # a quarter of ~5x leverage, capped


def test_cvar_budget_position():
    # 2% of 1,000,000 at risk with a 4% ES -> 500,000
    assert cvar_position_limit(0.04, 1_000_000, 0.02) == pytest.approx(500_000)


@pytest.mark.parametrize(
    "call",
    [
        lambda: cvar_position_limit(0.0, 1e6),
        lambda: cvar_position_limit(0.04, -1.0),
        lambda: cvar_position_limit(0.04, 1e6, 1.5),
        lambda: cvar_position_limit(np.nan, 1e6),
        lambda: kelly_binary(1.2, 1.0),
        lambda: kelly_binary(0.5, 0.0),
        lambda: kelly_binary(0.5, 1.0, fraction=0.0),
        lambda: kelly_continuous(0.001, 0.0),
        lambda: combine_limits(),
        lambda: combine_limits(cvar_limit=1.0, factors={"regime": 1.5}),
    ],
)
def test_bad_sizing_input_is_refused(call):
    with pytest.raises((ValueError, TypeError)):
        call()


def test_combined_limit_reports_every_factor():
    lim = combine_limits(
        cvar_limit=100_000,
        kelly_limit=80_000,
        factors={"correlation": 0.85, "breakdown": 0.9, "regime": 1.0},
    )
    assert lim.limit == pytest.approx(80_000 * 0.85 * 0.9)
    assert lim.binding == "kelly" and lim.base == 80_000
    text = lim.explain()
    assert "correlation x0.850" in text and "breakdown x0.900" in text and "regime" not in text


@pytest.mark.parametrize("bad", ["0.6", True, np.True_, [0.6, "0.5"], [True, False], b"0.6"])
def test_kelly_refuses_strings_and_booleans(bad):
    with pytest.raises(TypeError, match="win_prob must be numbers"):
        kelly_binary(bad, 1.5)
    with pytest.raises(TypeError, match="payoff_ratio must be numbers"):
        kelly_binary(0.6, bad)
