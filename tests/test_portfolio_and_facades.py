"""Portfolio Monte Carlo risk and the seed plan's risk facades."""

import numpy as np
import pytest

from bayes_mem import CorrelationRiskAdjuster, DynamicCVaREngine
from bayes_mem.live.gjr_garch import GarchDraws, simulate
from bayes_mem.live.portfolio import portfolio_risk
from bayes_mem.live.return_model import ReturnModel
from tests.test_live_return_model import random_draws


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    draws = {f"S{i}": random_draws(rng, 100) for i in range(4)}
    sigma2 = {k: d.omega / (1 - d.alpha - d.gamma / 2 - d.beta) for k, d in draws.items()}
    return ReturnModel(draws, sigma2)


def test_one_position_matches_the_symbols_own_forecast(model):
    pr = portfolio_risk(
        model, {"S1": 250_000.0}, np.eye(1), method="simulation", n_sims=200_000, rng=1
    )
    f = model.risk(0.975)
    assert abs(pr.var / 250_000 - f.var_simple[1]) < 4 * pr.var_se / 250_000 + 1e-4
    # es_simple is an upper bound by Jensen's inequality (tiny gap at daily horizons)
    assert abs(pr.es / 250_000 - f.es_simple[1]) < 4 * pr.es_se / 250_000 + 2e-4
    assert pr.var_se > 0 and pr.es_se > 0 and pr.n_sims == 200_000
    # the elliptical method on one position is that symbol's mixture in linear PnL: exact in log
    # units, so VaR/ES equal the symbol's forecast times the position
    ell = portfolio_risk(model, {"S1": 250_000.0}, np.eye(1))
    assert ell.var_se is None and ell.method == "elliptical"
    assert ell.var == pytest.approx(250_000 * f.var_log[1], rel=1e-5)
    assert ell.es == pytest.approx(250_000 * f.es_log[1], rel=1e-5)


@pytest.mark.parametrize("n_pos", [3, 4])
def test_elliptical_is_conservative_against_gaussian_copula_simulation(model, n_pos):
    pos = {s: (1.0 if i % 3 else -0.5) * 100_000 for i, s in enumerate(model.symbols[:n_pos])}
    corr = 0.4 * np.ones((n_pos, n_pos)) + 0.6 * np.eye(n_pos)
    ell = portfolio_risk(model, pos, corr, level=0.99)
    sim = portfolio_risk(model, pos, corr, level=0.99, method="simulation", n_sims=100_000, rng=7)
    assert sim.es - 3 * sim.es_se < ell.es < 1.25 * sim.es
    assert sim.var - 3 * sim.var_se < ell.var < 1.25 * sim.var


def test_diversification_and_hedges(model):
    pos = {s: 100_000.0 for s in model.symbols}
    indep = portfolio_risk(model, pos, np.eye(4))
    together = portfolio_risk(model, pos, 0.95 * np.ones((4, 4)) + 0.05 * np.eye(4))
    assert together.es > 1.5 * indep.es
    hedged = portfolio_risk(
        model, {"S0": 100_000.0, "S1": -100_000.0}, np.array([[1, 0.9], [0.9, 1.0]])
    )
    alone = portfolio_risk(model, {"S0": 100_000.0}, np.eye(1))
    assert hedged.es < alone.es


def test_portfolio_is_seeded(model):
    a = portfolio_risk(model, {"S0": 1.0, "S2": 2.0}, np.eye(2), method="simulation", rng=5)
    b = portfolio_risk(model, {"S0": 1.0, "S2": 2.0}, np.eye(2), method="simulation", rng=5)
    assert a == b


@pytest.mark.parametrize(
    "positions, corr, match",
    [
        ({"S0": 1.0, "S1": 1.0}, np.ones((2, 2)) * 1.0000001, "symmetric|positive"),
        ({"S0": 1.0, "S1": 1.0}, np.array([[1, 2.0], [2.0, 1]]), "positive definite"),
        ({"S0": 1.0, "ZZZ": 1.0}, np.eye(2), "ZZZ"),
        ({"S0": 0.0}, np.eye(1), "zero"),
        ({"S0": np.nan}, np.eye(1), "finite"),
        ({"S0": 1.0}, np.eye(2), "1 x 1"),
        ({}, np.eye(1), "empty"),
    ],
)
def test_bad_portfolio_input_is_refused(model, positions, corr, match):
    before = model.sigma2()
    with pytest.raises(ValueError, match=match):
        portfolio_risk(model, positions, corr)
    np.testing.assert_array_equal(model.sigma2(), before)


@pytest.fixture(scope="module")
def history():
    truth = GarchDraws(
        mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.88], nu=[6.0], lam=[-0.15]
    )
    r, _ = simulate(truth, 600, np.random.default_rng(0))
    return np.expm1(r[0])


def test_dynamic_cvar_engine_keeps_the_seed_contract_and_rolls_forward(history):
    engine = DynamicCVaREngine(confidence_level=0.95, rng=1)
    size, cvar = engine.calculate_cvar_limit(history[:500], 1_000_000, max_portfolio_risk=0.02)
    assert cvar < 0 and size == pytest.approx(0.02 * 1_000_000 / abs(cvar))
    # the next call with three more days rolls the same fit forward instead of refitting
    fitted = engine._model
    _, cvar2 = engine.calculate_cvar_limit(history[:503], 1_000_000)
    assert engine._model is fitted
    fresh = DynamicCVaREngine(confidence_level=0.95, rng=1)
    fresh.calculate_cvar_limit(history[:500], 1_000_000)
    for r in history[500:503]:
        fresh._model.update([r], kind="simple")
    assert cvar2 == pytest.approx(-fresh._model.risk(0.95).es_simple[0], rel=1e-12)
    assert engine.kelly_optimal_position(0.55, 100.0, 100.0) == pytest.approx(0.1 / 4)
    assert engine.kelly_optimal_position(0.9, 300.0, 100.0) == pytest.approx((0.9 - 0.1 / 3) / 4)


@pytest.mark.parametrize(
    "args, match",
    [
        (lambda h: (h[:50], 1e6), "time_window"),
        (lambda h: (np.r_[h[:300], np.nan], 1e6), "finite"),
        (lambda h: (h[:300], 0.0), "portfolio_value"),
        (lambda h: (h[:300], 1e6, 1.5), "max_portfolio_risk"),
        (lambda h: (np.r_[h[:300], -1.5], 1e6), "> -1"),
    ],
)
def test_dynamic_cvar_engine_refuses_bad_input(history, args, match):
    engine = DynamicCVaREngine()
    with pytest.raises(ValueError, match=match):
        engine.calculate_cvar_limit(*args(history))
    assert engine._model is None
    with pytest.raises(ValueError, match="confidence_level"):
        DynamicCVaREngine(confidence_level=1.0)


def test_correlation_adjuster_keeps_the_seed_contract():
    rng = np.random.default_rng(0)
    corr = 0.5 * np.ones((4, 4)) + 0.5 * np.eye(4)
    x = rng.standard_normal((200, 4)) @ np.linalg.cholesky(corr).T * 0.01
    adj = CorrelationRiskAdjuster(lookback=60)
    risk = adj.calculate_portfolio_correlation_risk(x)
    assert 0.65 < risk < 0.85  # average correlation ~0.5 -> (0.5 + 1) / 2
    assert adj.correlation_matrix.shape == (4, 4)
    score = adj.detect_correlation_breakdown(x, threshold=0.3)
    assert 0.0 <= score <= 1.0
    assert adj.adjust_position_limit(100_000, 0.5, 0.4) == pytest.approx(100_000 * 0.85 * 0.8)


def test_volatility_spike_is_not_a_correlation_change():
    # every symbol's volatility quadruples for the last 20 days, correlation unchanged: after
    # standardisation the breakdown test alarms no more often than its level allows
    corr = 0.3 * np.ones((4, 4)) + 0.7 * np.eye(4)
    adj = CorrelationRiskAdjuster(lookback=120)
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((200, 4)) @ np.linalg.cholesky(corr).T * 0.01
        x[-20:] *= 4.0
        alarms += adj.detect_correlation_breakdown(x) > 0.95
    assert alarms <= 4, alarms


def test_correlation_adjuster_refuses_bad_frames():
    adj = CorrelationRiskAdjuster()
    with pytest.raises(ValueError, match="NaN"):
        adj.calculate_portfolio_correlation_risk(np.full((100, 3), np.nan))
    with pytest.raises(ValueError, match="2 symbols"):
        adj.calculate_portfolio_correlation_risk(np.zeros((100, 1)))
    with pytest.raises(ValueError, match=r"zero variance|constant"):
        adj.calculate_portfolio_correlation_risk(np.zeros((100, 3)))
