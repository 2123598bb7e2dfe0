"""Sizing: CVaR budget, Kelly under uncertainty against brute force, combined limits."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from bayes_mem.live.sizing import (
    DEFAULT_NOTIONAL_CAP,
    combine_limits,
    cvar_position_limit,
    kelly_binary,
    kelly_continuous,
    kelly_notional,
)
from bayes_mem.live.validate import as_float_array


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


# ---------------------------------------------------------------- Kelly in notional units
def plug_in_notional(p, w, loss):
    return max(0.0, (p * w - (1 - p) * loss) / (w * loss))


def notional_growth(n, p, w, loss):
    """mean_d[p_d log(1 + n W_d) + (1 - p_d) log(1 - n L_d)] for each n (rows)."""
    n = np.asarray(n, dtype=float)[:, None]
    return np.mean(p * np.log1p(n * w) + (1 - p) * np.log1p(-n * loss), axis=1)


def notional_slope(n, p, w, loss):
    return float(np.mean(p * w / (1 + n * w) - (1 - p) * loss / (1 - n * loss)))


def payoff_draws(rng, size, *, win=0.03, loss=0.025, shape=20.0, p=(55, 45)):
    """Independent posterior-like draws of (p, W, L): W and L are Gamma with relative sd
    1 / sqrt(shape) around ``win`` and ``loss``."""
    return (
        rng.beta(*p, size),
        win * rng.gamma(shape, 1 / shape, size),
        loss * rng.gamma(shape, 1 / shape, size),
    )


def test_plug_in_kelly_notional_is_the_closed_form():
    for p, w, loss in [(0.55, 0.03, 0.025), (0.4, 0.06, 0.02), (0.6, 0.01, 0.012), (0.5, 1.0, 0.5)]:
        expect = plug_in_notional(p, w, loss)
        assert kelly_notional(p, w, loss, fraction=1.0, cap=1e9) == pytest.approx(expect, rel=1e-12)
        # the closed form is the stationary point of the log growth
        assert notional_slope(expect, np.array([p]), np.array([w]), np.array([loss])) == (
            pytest.approx(0.0, abs=1e-12)
        )
    assert kelly_notional(0.4, 0.02, 0.02) == 0.0  # no edge
    assert kelly_notional(0.5, 0.02, 0.02) == 0.0  # zero edge
    # fraction, then the cap on notional / capital (default: 1, no leverage)
    assert kelly_notional(0.55, 0.03, 0.025) == pytest.approx(min(0.25 * 7.0, 1.0))
    assert DEFAULT_NOTIONAL_CAP == 1.0 and kelly_notional(0.55, 0.03, 0.025) == 1.0
    assert kelly_notional(0.5, 0.03, 0.025) == pytest.approx(
        0.25 * plug_in_notional(0.5, 0.03, 0.025)  # 0.83: below the cap
    )
    assert kelly_notional(0.55, 0.03, 0.025, fraction=0.5, cap=3.0) == pytest.approx(3.0)
    assert kelly_notional(0.55, 0.03, 0.025, fraction=0.1, cap=3.0) == pytest.approx(0.7)


def test_kelly_notional_times_the_loss_is_kelly_binarys_capital_at_risk():
    """W = b L and n L = f turn one objective into the other: with a known loss size L,
    kelly_notional x L is kelly_binary's fraction of capital lost in full on a loss. The old
    callers used portfolio_value x kelly_binary as the *notional*: 1 / L times too small."""
    loss = 0.025
    for p, b in [(0.55, 1.2), (0.4, 2.0), (0.6, 0.8), (0.7, 3.0)]:
        f = kelly_binary(p, b, fraction=1.0, cap=1.0)
        assert kelly_notional(p, b * loss, loss, fraction=1.0, cap=1e9) * loss == pytest.approx(
            f, rel=1e-9, abs=1e-15
        )
        # fraction and cap carry over, the cap scaled from capital at risk to notional
        assert kelly_notional(p, b * loss, loss, cap=0.25 / loss) * loss == pytest.approx(
            kelly_binary(p, b), rel=1e-9, abs=1e-15
        )
    # over draws of (p, b) with the loss size known, too
    rng = np.random.default_rng(7)
    p, b = rng.beta(60, 40, 300), np.exp(rng.normal(0.0, 0.4, 300))
    assert kelly_notional(p, b * loss, loss, fraction=1.0, cap=1e9) * loss == pytest.approx(
        kelly_binary(p, b, fraction=1.0, cap=1.0), rel=1e-8
    )


def test_kelly_notional_matches_a_brute_force_grid_over_the_same_draws():
    rng = np.random.default_rng(0)
    for shape in (3.0, 20.0, 200.0):
        p, w, loss = payoff_draws(rng, 200, shape=shape)
        ours = kelly_notional(p, w, loss, fraction=1.0, cap=1e9)
        hi = 1.0 / loss.max()
        grid = np.linspace(0.0, hi * (1 - 1e-9), 400_001)
        growth = np.concatenate([notional_growth(g, p, w, loss) for g in np.split(grid[1:], 40)])
        best = grid[1:][np.argmax(growth)]
        assert ours == pytest.approx(best, abs=2 * (grid[1] - grid[0]))
        assert notional_slope(ours, p, w, loss) == pytest.approx(0.0, abs=1e-12)


def test_kelly_notional_agrees_with_a_root_finder_across_random_posteriors():
    """Heavy- and light-tailed payoffs, edges from tiny to huge, optima near the constraint
    n L_d < 1: the Newton iteration agrees with brentq on the slope (an independent solver)."""
    rng = np.random.default_rng(1)
    for _ in range(300):
        d = int(rng.integers(2, 300))
        shape = float(np.exp(rng.uniform(np.log(0.3), np.log(500))))
        win, loss0 = np.exp(rng.uniform(np.log(1e-4), np.log(0.5), 2))
        p, w, loss = payoff_draws(rng, d, win=win, loss=loss0, shape=shape, p=(60, 40))
        hi = 1.0 / loss.max()
        ours = kelly_notional(p, w, loss, fraction=1.0, cap=1e300)
        if notional_slope(0.0, p, w, loss) <= 0:
            assert ours == 0.0
            continue
        top = hi * (1 - 1e-12)  # with some p_d < 1 the slope -> -inf at hi: an interior optimum
        ref = optimize.brentq(notional_slope, 0.0, top, args=(p, w, loss), xtol=1e-300, rtol=1e-14)
        assert ours == pytest.approx(ref, rel=1e-9), (shape, win, loss0)
        # a cap below the optimum binds exactly; one above it changes nothing
        assert kelly_notional(p, w, loss, fraction=1.0, cap=0.5 * ref) == 0.5 * ref
        assert kelly_notional(p, w, loss, fraction=1.0, cap=2.0 * ref) == pytest.approx(
            ref, rel=1e-9
        )


def test_kelly_notional_is_plug_in_when_payoffs_are_known_and_below_it_when_uncertain():
    rng = np.random.default_rng(2)
    p, w, loss = payoff_draws(rng, 200, shape=10.0)
    # known payoffs, uncertain p: the objective is linear in p, the optimum is plug-in at E[p]
    known = kelly_notional(p, 0.03, 0.025, fraction=1.0, cap=1e9)
    assert known == pytest.approx(plug_in_notional(p.mean(), 0.03, 0.025), rel=1e-9)
    same = kelly_notional(p, np.full(200, 0.03), np.full(200, 0.025), fraction=1.0, cap=1e9)
    assert same == pytest.approx(known, rel=1e-9)
    # a scalar p with payoff draws, and joint draws: below the plug-in at the posterior means
    plug = plug_in_notional(p.mean(), w.mean(), loss.mean())
    assert kelly_notional(p.mean(), w, loss, fraction=1.0, cap=1e9) < plug
    joint = kelly_notional(p, w, loss, fraction=1.0, cap=1e9)
    assert joint < plug
    # the wider the payoff posterior (same means), the smaller the bet
    _, w2, l2 = payoff_draws(np.random.default_rng(3), 200, shape=2.0)
    w2, l2 = w2 * w.mean() / w2.mean(), l2 * loss.mean() / l2.mean()
    assert kelly_notional(p, w2, l2, fraction=1.0, cap=1e9) < joint


def test_kelly_notional_converges_to_the_population_optimum_by_numerical_integration():
    """p ~ Beta(55, 45), W ~ 0.03 Gamma(4) / 4 and L ~ 0.025 Gamma(6) / 6 independently: the
    expected log growth is E[p] E log(1 + n W) + (1 - E[p]) E log(1 - n L), integrated by quad
    (L's tail is cut where n L -> 1, beyond the 1e-12 quantile; truncation renormalised)."""
    pbar = 55 / 100
    wd, ld = stats.gamma(4.0, scale=0.03 / 4.0), stats.gamma(6.0, scale=0.025 / 6.0)
    l_top = ld.ppf(1 - 1e-12)

    def neg_growth(n):
        ew = integrate.quad(lambda x: np.log1p(n * x) * wd.pdf(x), 0, np.inf, epsabs=1e-14)[0]
        el = integrate.quad(lambda x: np.log1p(-n * x) * ld.pdf(x), 0, l_top, epsabs=1e-14)[0]
        return -(pbar * ew + (1 - pbar) * el / ld.cdf(l_top))

    ref = optimize.minimize_scalar(
        neg_growth, bounds=(0.0, 1.0 / l_top), method="bounded", options={"xatol": 1e-9}
    ).x
    rng = np.random.default_rng(4)
    n = 400_000
    p, w = rng.beta(55, 45, n), wd.rvs(n, random_state=rng)
    loss = np.minimum(ld.rvs(n, random_state=rng), l_top)
    ours = kelly_notional(p, w, loss, fraction=1.0, cap=1e9)
    assert ours == pytest.approx(ref, rel=0.02)
    assert ref < plug_in_notional(pbar, 0.03, 0.025)  # payoff uncertainty shrinks the bet


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.2, 0.03, 0.02), "win_prob must be in \\[0, 1\\] and finite, got 1.2"),
        (([0.5, math.nan], 0.03, 0.02), "win_prob .* got nan"),
        ((0.5, 0.0, 0.02), "win_size must be positive and finite, got 0.0"),
        ((0.5, [0.03, math.inf], 0.02), "win_size .* got inf"),
        ((0.5, 0.03, -0.02), "loss_size must be positive and finite, got -0.02"),
        ((0.5, 0.03, [0.02, math.nan]), "loss_size .* got nan"),
        (([0.5, 0.6], [0.03, 0.02, 0.01], 0.02), "must pair up"),
        (([[0.5]], 0.03, 0.02), "1-d"),
        (([], 0.03, 0.02), "1-d"),
    ],
)
def test_kelly_notional_refuses_bad_draws_naming_the_value(args, match):
    with pytest.raises(ValueError, match=match):
        kelly_notional(*args)


def test_kelly_notional_of_one_win_rate_is_that_of_its_broadcast_exactly():
    """One posterior-mean win rate with draws of the sizes (the engine's Kelly) takes a cheaper
    path than broadcasting; the answer must not change."""
    rng = np.random.default_rng(11)
    for _ in range(50):
        _, w, loss = payoff_draws(rng, 128)
        p = float(rng.uniform(0.45, 0.65))
        for cap in (1.0, 1e9):
            assert kelly_notional(p, w, loss, cap=cap) == kelly_notional(
                np.broadcast_to(p, w.shape), w, loss, cap=cap
            )


def test_kelly_notional_refuses_bad_fraction_cap_and_types():
    with pytest.raises(ValueError, match="fraction"):
        kelly_notional(0.6, 0.03, 0.02, fraction=0.0)
    with pytest.raises(ValueError, match="cap"):
        kelly_notional(0.6, 0.03, 0.02, cap=-1.0)
    with pytest.raises(TypeError, match="win_size must be numbers"):
        kelly_notional(0.6, "0.03", 0.02)
    with pytest.raises(TypeError, match="loss_size must be numbers"):
        kelly_notional(0.6, 0.03, [True])


def test_kelly_notional_sure_wins_and_tiny_sizes():
    # every draw wins: as much notional as n L_d < 1 allows, then fraction and cap
    assert kelly_notional(1.0, 0.03, 0.02, fraction=1.0, cap=1e9) == pytest.approx(1 / 0.02)
    assert kelly_notional(np.ones(5), 0.03, np.linspace(0.01, 0.02, 5), fraction=1.0, cap=1e9) == (
        pytest.approx(1 / 0.02)
    )
    # homogeneous of degree -1 in the sizes: no underflow at 1e-200, no overflow
    rng = np.random.default_rng(5)
    p, w, loss = payoff_draws(rng, 50)
    base = kelly_notional(p, w, loss, fraction=1.0, cap=1e300)
    tiny = kelly_notional(p, w * 1e-200, loss * 1e-200, fraction=1.0, cap=1e300)
    assert tiny == pytest.approx(base * 1e200, rel=1e-9)
    assert kelly_notional(p, w * 1e-200, loss * 1e-200) == 1.0  # capped, not inf or nan


def test_array_validation_formats_the_value_only_when_refusing():
    """The message's repr of the value was built on every call: ~1 ms for 200 draws, on the
    sizing hot path."""

    class Draws(list):
        reprs = 0

        def __repr__(self):
            Draws.reprs += 1
            return super().__repr__()

    np.testing.assert_array_equal(as_float_array(Draws([0.5, 0.25]), "x"), [0.5, 0.25])
    assert Draws.reprs == 0
    with pytest.raises(TypeError, match="x must be numbers"):
        as_float_array(Draws(["a"]), "x")
    assert Draws.reprs == 1


def test_kelly_continuous_keeps_a_tiny_mean_that_large_draws_of_both_signs_hide():
    """Found by the fuzz test: the draws' mean 3.353e-271 / 3 vanished in a float sum
    (0.01 + 3.353e-271 - 0.01 = 0), so the bet was 0 instead of fraction x mean / variance."""
    from bayes_mem.live.sizing import kelly_continuous

    out = kelly_continuous([0.01, 3.353e-271, -0.01], 1.0, fraction=1.0, cap=1.0)
    spread = 2 * 0.01**2 / 3
    assert out == pytest.approx(3.353e-271 / 3 / (1.0 + spread), rel=1e-12, abs=0.0)
