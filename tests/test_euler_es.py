"""EulerES: portfolio ES of a signed book, Euler allocation, marginal ES and max_addition,
against portfolio_risk, finite differences and a brute-force search."""

import math

import numpy as np
import pytest

from bayes_mem.live.gjr_garch import GarchDraws
from bayes_mem.live.portfolio import EulerES, portfolio_risk
from bayes_mem.live.return_model import ReturnModel
from tests.test_live_return_model import random_draws


@pytest.fixture(scope="module")
def model() -> ReturnModel:
    rng = np.random.default_rng(0)
    draws = {f"S{i}": random_draws(rng, 100, vol_scale=1 + 0.3 * i) for i in range(6)}
    sigma2 = {k: d.omega / (1 - d.alpha - d.gamma / 2 - d.beta) for k, d in draws.items()}
    return ReturnModel(draws, sigma2)


def equicorrelation(k: int, rho: float) -> np.ndarray:
    return rho * np.ones((k, k)) + (1 - rho) * np.eye(k)


def random_correlation(rng: np.random.Generator, k: int) -> np.ndarray:
    f = rng.normal(size=(k, 2))
    c = f @ f.T + np.diag(rng.uniform(0.3, 1.0, k))
    s = np.sqrt(np.diag(c))
    return c / np.outer(s, s)


@pytest.fixture
def euler() -> EulerES:
    rng = np.random.default_rng(3)
    e_long = rng.uniform(0.02, 0.06, 5)
    e_short = e_long * rng.uniform(0.7, 1.0, 5)  # negative skew: shorts lose less
    return EulerES(["A", "B", "C", "D", "E"], e_long, e_short, random_correlation(rng, 5))


# ---------------------------------------------------------------- against portfolio_risk
def test_single_positions_are_the_stand_alone_es_of_their_side(model):
    f_long, f_short = model.risk(0.975), model.risk(0.975, side="short")
    e_log = EulerES.from_model(model, np.eye(6), units="log")
    e_simple = EulerES.from_model(model, np.eye(6))
    for i, sym in enumerate(model.symbols):
        for v in (250_000.0, -250_000.0):
            f = f_long if v > 0 else f_short
            assert e_log.es({sym: v}) == pytest.approx(abs(v) * f.es_log[i], rel=2e-5)
            ell = portfolio_risk(model, {sym: v}, np.eye(1))
            assert e_log.es({sym: v}) == pytest.approx(ell.es, rel=1e-5)
            # simple units: the position's loss fraction, as position_risk gives it
            side = "long" if v > 0 else "short"
            es_fraction = model.position_risk(sym, side=side)[1]
            assert e_simple.es({sym: v}) == pytest.approx(abs(v) * es_fraction, rel=1e-4)


def test_equals_portfolio_risk_for_one_tail_shape_and_one_draw():
    # symmetric innovations, one tail weight, one draw: the elliptical method is exactly
    # k sd - mean, which is what EulerES computes
    rng = np.random.default_rng(5)
    draws = {
        f"X{i}": GarchDraws(
            mu=[rng.normal(3e-4, 2e-4)],
            omega=[rng.uniform(1e-6, 4e-6)],
            alpha=[0.03],
            gamma=[0.1],
            beta=[0.85],
            nu=[6.0],
            lam=[0.0],
        )
        for i in range(5)
    }
    m = ReturnModel(draws, {k: d.omega * 40 for k, d in draws.items()})
    for seed in range(6):
        g = np.random.default_rng(seed)
        corr = random_correlation(g, 5)
        pos = {s: float(g.choice([-1, 1]) * g.uniform(1e4, 1e6)) for s in m.symbols}
        e = EulerES.from_model(m, corr, units="log")
        assert e.es(pos) == pytest.approx(portfolio_risk(m, pos, corr).es, rel=1e-5)


def test_stands_for_portfolio_risk_within_the_documented_range(model):
    # measured: one-sided books 0-13% above the elliptical method, mixed books -6% to +7%
    dev = {True: [], False: []}
    for trial in range(60):
        g = np.random.default_rng(trial)
        k = int(g.integers(2, 7))
        syms = [str(s) for s in g.choice(model.symbols, k, replace=False)]
        corr = equicorrelation(k, g.uniform(0.0, 0.9))
        mixed = trial % 2 == 0
        pos = {s: float((g.choice([-1, 1]) if mixed else 1) * g.uniform(1e4, 1e6)) for s in syms}
        e = EulerES.from_model(model, corr, symbols=syms, units="log")
        dev[mixed].append(e.es(pos) / portfolio_risk(model, pos, corr).es - 1)
    one_sided, mixed = np.array(dev[False]), np.array(dev[True])
    assert one_sided.min() > -0.005 and one_sided.max() < 0.15, one_sided
    assert mixed.min() > -0.08 and mixed.max() < 0.10, mixed


def test_a_hedge_reduces_risk_and_an_identical_hedge_removes_it(model):
    corr = equicorrelation(2, 0.9)
    e = EulerES.from_model(model, corr, symbols=["S0", "S1"], units="log")
    alone = e.es({"S0": 1e6})
    assert e.es({"S0": 1e6, "S1": -3e5}) < alone < e.es({"S0": 1e6, "S1": 3e5})
    assert e.marginal_es({"S0": 1e6}, "S1", -1) > 0  # buying S1 adds risk: selling removes it
    same = EulerES(
        ["A", "B"], [0.03, 0.03], [0.025, 0.025], np.array([[1, 1 - 1e-10], [1 - 1e-10, 1]])
    )
    assert same.es({"A": 1e6, "B": -1e6}) < 1e-3 * same.es({"A": 1e6})


# ---------------------------------------------------------------- Euler allocation
def book(rng: np.random.Generator, symbols, k: int) -> dict[str, float]:
    chosen = rng.choice(symbols, k, replace=False)
    return {str(s): float(rng.choice([-1, 1]) * rng.uniform(1e4, 1e6)) for s in chosen}


def test_contributions_add_up_and_match_finite_differences(euler):
    for seed in range(10):
        g = np.random.default_rng(seed)
        pos = book(g, euler.symbols, int(g.integers(1, 5)))
        es = euler.es(pos)
        contrib = euler.contributions(pos)
        assert set(contrib) == set(pos)
        assert sum(contrib.values()) == pytest.approx(es, rel=1e-12)
        for sym, v in pos.items():
            h = 1e-5 * abs(v)
            up, down = dict(pos), dict(pos)
            up[sym], down[sym] = v + h, v - h
            fd = (euler.es(up) - euler.es(down)) / (2 * h)
            assert euler.marginal_es(pos, sym) == pytest.approx(fd, rel=1e-6, abs=1e-9)
            assert contrib[sym] == pytest.approx(v * fd, rel=1e-6, abs=1e-6)
        # positive homogeneity of degree 1
        assert euler.es({s: 3.0 * v for s, v in pos.items()}) == pytest.approx(3 * es, rel=1e-12)
        # a symbol not held: the derivative of adding it
        free = next(s for s in euler.symbols if s not in pos)
        h = 1.0
        fd = (euler.es({**pos, free: h}) - euler.es({**pos, free: -h})) / (2 * h)
        assert euler.marginal_es(pos, free) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_marginal_es_of_an_empty_book_is_one_sided(euler):
    # ES of a lone position is |V| e^side: the slope is e^L buying and -e^S selling
    for sym in euler.symbols:
        e_long, e_short = euler.es({sym: 1.0}), euler.es({sym: -1.0})
        assert euler.marginal_es({}, sym, 1) == pytest.approx(e_long, rel=1e-12)
        assert euler.marginal_es({}, sym, -1) == pytest.approx(-e_short, rel=1e-12)
    with pytest.raises(ValueError, match="notional_sign"):
        euler.marginal_es({}, "A")
    assert euler.es({}) == 0.0


# ---------------------------------------------------------------- max_addition
def brute_force_max_addition(e: EulerES, pos, sym, sign, budget) -> float:
    """Largest t with ES <= budget from ES values only (e.es): a grid, the minimum of ES over t
    by golden-section search (ES is convex in t), then bisection of the upper crossing."""

    def es_at(t):
        out = dict(pos)
        out[sym] = out.get(sym, 0.0) + sign * t
        return e.es(out)

    side = e.es({sym: float(sign)})  # ES of a unit of the side: ES(t) ~ side * t for large t
    gross = sum(abs(v) for v in pos.values())
    t_max = 3 * (budget + 2 * abs(e.es(pos)) + gross) / side + 3 * abs(pos.get(sym, 0.0)) + 1.0
    assert es_at(t_max) > budget
    lo, hi = 0.0, t_max
    for _ in range(200):
        a, b = hi - 0.618034 * (hi - lo), lo + 0.618034 * (hi - lo)
        lo, hi = (lo, b) if es_at(a) <= es_at(b) else (a, hi)
    t_min = min((0.0, 0.5 * (lo + hi)), key=es_at)
    if es_at(t_min) > budget:
        answer = 0.0
    else:
        lo, hi = t_min, t_max
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if es_at(mid) <= budget else (lo, mid)
        answer = lo
    grid = np.linspace(0.0, t_max, 801)
    feasible = [t for t in grid if es_at(t) <= budget]
    assert all(t <= answer * (1 + 1e-9) for t in feasible)
    return answer


def test_max_addition_matches_a_brute_force_search(euler):
    for seed in range(12):
        g = np.random.default_rng(100 + seed)
        pos = book(g, euler.symbols, int(g.integers(1, 5)))
        es0 = euler.es(pos)
        for sym in ("A", "C", "E"):
            for sign in (1, -1):
                for factor in (0.6, 0.95, 1.2, 3.0):
                    budget = factor * es0
                    got = euler.max_addition(pos, sym, sign, budget)
                    ref = brute_force_max_addition(euler, pos, sym, sign, budget)
                    assert got == pytest.approx(ref, rel=1e-7, abs=1e-6), (pos, sym, sign, factor)
                    if 0 < got < math.inf:  # the budget binds there
                        moved = {**pos, sym: pos.get(sym, 0.0) + sign * got}
                        assert euler.es(moved) == pytest.approx(budget, rel=1e-9)


def test_max_addition_hedges_a_book_over_budget():
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    e = EulerES(["A", "B"], [0.04, 0.05], [0.035, 0.045], corr)
    pos = {"A": 1e6}
    budget = 0.8 * e.es(pos)  # the book already breaches it
    assert e.max_addition(pos, "B", 1, budget) == 0.0  # more of the same risk: nothing
    assert e.max_addition(pos, "A", 1, budget) == 0.0
    t = e.max_addition(pos, "B", -1, budget)  # a hedge: allowed up to the interval's end
    assert t > 0 and e.es({"A": 1e6, "B": -t}) == pytest.approx(budget, rel=1e-9)
    assert e.es({"A": 1e6, "B": -1.01 * t}) > budget  # beyond it, net short B risk
    small = 0.02 * t  # a small hedge does not yet bring ES within the budget
    assert e.es({"A": 1e6, "B": -small}) > budget
    assert t == pytest.approx(brute_force_max_addition(e, pos, "B", -1, budget), rel=1e-7)
    # selling A itself: down to a position whose ES is the budget, through zero into a short
    sell = e.max_addition(pos, "A", -1, budget)
    assert sell > 1e6 and e.es({"A": 1e6 - sell}) == pytest.approx(budget, rel=1e-9)


def test_max_addition_of_a_riskless_symbol_is_unbounded_within_budget():
    e = EulerES(["A", "CASH"], [0.04, 0.0], [0.03, 0.0], np.eye(2))
    assert e.max_addition({"A": 1e6}, "CASH", 1, 5e4) == math.inf
    assert e.max_addition({"A": 1e6}, "CASH", -1, 5e4) == math.inf
    assert e.max_addition({"A": 1e6}, "CASH", 1, 3e4) == 0.0  # over budget, and no help
    assert e.max_addition({}, "A", 1, 4e4) == pytest.approx(1e6, rel=1e-12)
    assert e.max_addition({}, "A", -1, 3e4) == pytest.approx(1e6, rel=1e-12)
    assert e.max_addition({}, "A", 1, 0.0) == 0.0


def test_the_book_cache_follows_changes_one_position_at_a_time():
    # incremental updates of Sigma V agree with a fresh object (no cache) along a long walk
    g = np.random.default_rng(9)
    symbols = [f"X{i}" for i in range(30)]
    args = (symbols, g.uniform(0.02, 0.06, 30), g.uniform(0.02, 0.05, 30))
    corr = random_correlation(g, 30)
    euler = EulerES(*args, corr)
    pos: dict[str, float] = {}
    for step in range(300):
        sym = str(g.choice(symbols))
        pos[sym] = pos.get(sym, 0.0) + float(g.normal(0, 1e5))
        if step % 37 == 0:
            pos = {k: v for k, v in pos.items() if k != sym}
        fresh = EulerES(*args, corr)
        assert euler.es(pos) == pytest.approx(fresh.es(pos), rel=1e-10, abs=1e-6)
        assert euler.marginal_es(pos, "X3", 1) == pytest.approx(
            fresh.marginal_es(pos, "X3", 1), rel=1e-9, abs=1e-12
        )
        assert euler.es(dict(pos)) == euler.es(pos)  # the same content: a cache hit


def test_the_cached_book_keeps_its_precision_when_it_shrinks(euler):
    # a book 1e5 times smaller right after a large one: the incremental update would carry the
    # rounding of the large book (seen: 5e-9 relative error); it starts afresh instead
    inputs = (euler.symbols, *_sides(euler), _corr(euler))
    for big in (1e7, 1e9, 1e11):
        for small in (3e3, -7e2, 1.0):
            euler.es({"A": 2e5, "E": big})
            got = euler.es({"A": 2e5 * small / 3e3, "E": small})
            ref = EulerES(*inputs).es({"A": 2e5 * small / 3e3, "E": small})
            assert got == pytest.approx(ref, rel=1e-12)


def _d(e: EulerES) -> np.ndarray:
    return np.array(e._d)


def _sides(e: EulerES) -> tuple[np.ndarray, np.ndarray]:
    d, a = _d(e), np.array(e._a_list)
    return d - a, d + a  # e^L, e^S


def _corr(e: EulerES) -> np.ndarray:
    d = _d(e)
    return e._sigma / np.outer(d, d)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda e: e.es({"A": 1.0, "ZZZ": 2.0}), ValueError, "ZZZ"),
        (lambda e: e.es({"A": float("nan")}), ValueError, "'A'"),
        (lambda e: e.es({"A": True}), TypeError, "'A'"),
        (lambda e: e.es([("A", 1.0)]), TypeError, "mapping"),
        (lambda e: e.es({"A": 1e308, "B": 1e308}), ValueError, "overflow"),
        (lambda e: e.max_addition({"A": 1.0}, "ZZZ", 1, 1.0), ValueError, "ZZZ"),
        (lambda e: e.max_addition({"A": 1.0}, "B", 0, 1.0), ValueError, "notional_sign"),
        (lambda e: e.max_addition({"A": 1.0}, "B", 2, 1.0), ValueError, "notional_sign"),
        (lambda e: e.max_addition({"A": 1.0}, "B", True, 1.0), ValueError, "True"),
        (lambda e: e.max_addition({"A": 1.0}, "B", "long", 1.0), ValueError, "long"),
        (lambda e: e.max_addition({"A": 1.0}, "B", 1, -1.0), ValueError, "budget"),
        (lambda e: e.max_addition({"A": 1.0}, "B", 1, float("inf")), ValueError, "budget"),
        (lambda e: e.marginal_es({"A": 1.0}, "ZZZ"), ValueError, "ZZZ"),
    ],
)
def test_bad_input_is_refused_and_the_cached_book_kept(euler, call, exc, match):
    euler.es({"A": 1e5, "B": -2e5})
    before = euler._book
    with pytest.raises(exc, match=match):
        call(euler)
    assert euler._book is before


@pytest.mark.parametrize(
    "args, match",
    [
        ((["A", "B"], [0.03], [0.03, 0.02], np.eye(2)), "es_long"),
        ((["A", "B"], [0.03, -0.01], [0.03, 0.02], np.eye(2)), "'B'"),
        ((["A", "B"], [0.03, 0.02], [0.03, np.nan], np.eye(2)), "es_short"),
        ((["A", "A"], [0.03, 0.02], [0.03, 0.02], np.eye(2)), "distinct"),
        ((["A", "B"], [0.03, 0.02], [0.03, 0.02], np.array([[1, 2.0], [2.0, 1]])), "definite"),
        ((["A", "B"], [0.03, 0.02], [0.03, 0.02], np.eye(3)), "2 x 2"),
        (([], [], [], np.eye(0)), "at least one"),
    ],
)
def test_constructor_refuses_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        EulerES(*args)


def test_from_model_refuses_bad_input(model):
    with pytest.raises(ValueError, match="units"):
        EulerES.from_model(model, np.eye(6), units="pct")
    with pytest.raises(ValueError, match="ZZZ"):
        EulerES.from_model(model, np.eye(2), symbols=["S0", "ZZZ"])
    with pytest.raises(ValueError, match="2 x 2"):
        EulerES.from_model(model, np.eye(3), symbols=["S0", "S1"])


def test_addition_is_the_three_calls_in_one_pass(euler):
    """EulerES.addition = (max_addition, es, marginal_es) of the same book, symbol and side,
    the empty book included (ES 0, the one-sided derivative)."""
    rng = np.random.default_rng(11)
    books = [{}, book(rng, euler.symbols, 3), book(rng, euler.symbols, 5)]
    for b in books:
        for sym in ("A", "D"):
            for sign in (1, -1):
                cap, es, marginal = euler.addition(b, sym, sign, 3_000.0)
                assert cap == euler.max_addition(b, sym, sign, 3_000.0)
                assert es == (euler.es(b) if b else 0.0)
                assert marginal == euler.marginal_es(b, sym, sign)
    with pytest.raises(ValueError, match="unknown symbol"):
        euler.addition(books[1], "ZZZ", 1, 3_000.0)


def test_a_tracked_book_state_equals_the_plain_book_through_many_changes(euler):
    """BookState synced with the changed symbols (adds, removals, sign flips, a 16-fold
    shrink, more than _FULL_EVERY updates) gives addition()'s values on the plain book."""
    from bayes_mem.live.portfolio import _BOOK_FULL_EVERY as _FULL_EVERY
    from bayes_mem.live.portfolio import BookState

    rng = np.random.default_rng(5)
    positions: dict[str, float] = {"A": 1_000.0}
    state = BookState(euler, positions)
    for step in range(3 * _FULL_EVERY):
        changed = []
        for _ in range(int(rng.integers(1, 4))):
            sym = euler.symbols[int(rng.integers(len(euler.symbols)))]
            if rng.random() < 0.25:
                positions.pop(sym, None)
            else:
                scale = 1e-3 if step == 100 else 1.0  # one shrink far below the largest seen
                positions[sym] = float(rng.normal(0.0, 5_000.0)) * scale
            changed.append(sym)
        state.sync(positions, changed)
        for sym, sign in (("B", 1), ("E", -1)):
            got = euler.addition_tracked(state, sym, sign, 4_000.0)
            want = euler.addition(dict(positions), sym, sign, 4_000.0)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    other = EulerES(euler.symbols, np.full(5, 0.03), np.full(5, 0.03), np.eye(5))
    with pytest.raises(ValueError, match="another EulerES"):
        other.addition_tracked(state, "A", 1, 1.0)
