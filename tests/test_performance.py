"""Performance statistics: hand-computed values, closed forms, and the size, power and coverage
of the Sharpe-difference test and the block-bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem.evaluation import (
    block_bootstrap_ci,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    max_drawdown,
    max_drawdown_ci,
    probabilistic_sharpe_ratio,
    realised_cvar,
    sharpe_difference_test,
    sharpe_ratio,
    sortino_ratio,
    turnover,
    win_rate,
    win_rate_ci,
)

# ---------------------------------------------------------------------------- point statistics


def test_sharpe_hand_computed() -> None:
    r = [0.01, 0.02, -0.01, 0.03]
    # mean 0.0125; squared deviations sum to 8.75e-4, so the ddof-1 sd is sqrt(8.75e-4 / 3)
    per_period = 0.0125 / math.sqrt(8.75e-4 / 3)
    assert sharpe_ratio(r, periods_per_year=1) == pytest.approx(per_period, rel=1e-12)
    assert sharpe_ratio(r, periods_per_year=4) == pytest.approx(2 * per_period, rel=1e-12)
    assert sharpe_ratio(r) == pytest.approx(math.sqrt(252) * per_period, rel=1e-12)
    # a per-period risk-free rate shifts the mean only
    with_rf = 0.0075 / math.sqrt(8.75e-4 / 3)
    assert sharpe_ratio(r, risk_free=0.005, periods_per_year=1) == pytest.approx(with_rf)
    assert sharpe_ratio(r, risk_free=[0.005] * 4, periods_per_year=1) == pytest.approx(with_rf)


def test_sharpe_converges_to_closed_form() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.0004, 0.01, size=200_000)
    assert sharpe_ratio(r) == pytest.approx(0.04 * math.sqrt(252), abs=0.04)


def test_sortino_hand_computed() -> None:
    r = [0.02, -0.01, 0.03, -0.02]
    # mean 0.005; downside deviation over all 4 periods sqrt((1e-4 + 4e-4) / 4)
    assert sortino_ratio(r, periods_per_year=1) == pytest.approx(0.005 / math.sqrt(1.25e-4))
    # target 1%: differences 0.01, -0.02, 0.02, -0.03
    got = sortino_ratio(r, target=0.01, periods_per_year=1)
    assert got == pytest.approx(-0.005 / math.sqrt(13e-4 / 4))
    assert sortino_ratio(r, periods_per_year=9) == pytest.approx(3 * 0.005 / math.sqrt(1.25e-4))


def test_sortino_closed_form_normal() -> None:
    # N(mu, s) with target 0: DD^2 = E[min(r, 0)^2] -> s^2 / 2 when mu = 0; check mu small
    rng = np.random.default_rng(1)
    r = rng.normal(0.001, 0.01, size=400_000)
    mu, s = 0.001, 0.01
    a = -mu / s
    dd2 = s**2 * ((a**2 + 1) * stats.norm.cdf(a) + a * stats.norm.pdf(a))
    assert sortino_ratio(r, periods_per_year=1) == pytest.approx(mu / math.sqrt(dd2), abs=0.005)


def test_max_drawdown_hand_computed() -> None:
    # wealth 1, 1.1, 0.55, 0.66, 0.594, 0.891: worst fall 1.1 -> 0.55
    dd = max_drawdown([0.1, -0.5, 0.2, -0.1, 0.5])
    assert dd.value == pytest.approx(0.5)
    assert (dd.start, dd.trough) == (1, 2)
    # a loss in the first period counts from the starting capital
    dd = max_drawdown([-0.1, -0.1, 0.05])
    assert dd.value == pytest.approx(1 - 0.81)
    assert (dd.start, dd.trough) == (0, 2)
    # later, deeper drawdown from a new peak
    dd = max_drawdown([0.2, -0.1, 0.5, -0.2, -0.25])
    assert dd.value == pytest.approx(1 - 0.8 * 0.75)
    assert (dd.start, dd.trough) == (3, 5)
    assert max_drawdown([0.01, 0.0, 0.02]).value == 0.0
    assert max_drawdown([0.1, -1.0]).value == pytest.approx(1.0)


def test_win_rate_excludes_zeros() -> None:
    assert win_rate([0.01, 0.0, -0.02, 0.03, 0.0, 0.01]) == pytest.approx(0.75)
    assert win_rate([-0.01, 0.0]) == 0.0


def test_realised_cvar_hand_computed() -> None:
    r = [-0.05, -0.03, -0.01, 0.02, 0.01, 0.0, 0.03, 0.04, -0.02, 0.05]
    # T (1 - level) = 2 periods: mean of the two worst losses 5% and 3%
    assert realised_cvar(r, level=0.8) == pytest.approx(0.04)
    # 1.5 periods: (0.05 + 0.5 * 0.03) / 1.5
    assert realised_cvar(r, level=0.85) == pytest.approx(0.065 / 1.5)
    assert realised_cvar(r, level=0.9) == pytest.approx(0.05)


def test_realised_cvar_normal_closed_form() -> None:
    rng = np.random.default_rng(2)
    r = rng.normal(0.0, 0.01, size=400_000)
    es = 0.01 * stats.norm.pdf(stats.norm.ppf(0.975)) / 0.025
    assert realised_cvar(r, 0.975) == pytest.approx(es, rel=0.01)


def test_turnover_hand_computed() -> None:
    w = [[0.0, 0.0], [0.5, -0.5], [0.5, 0.0], [0.0, 0.0]]
    assert turnover(w) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert turnover([0.1, 0.3, 0.2]) == pytest.approx(0.15)
    assert turnover(np.ones((5, 3))) == 0.0


# ---------------------------------------------------------------------------- PSR / DSR


def _psr_direct(r: np.ndarray, sr_star: float) -> float:
    n = r.size
    mu = r.sum() / n
    sd = math.sqrt(((r - mu) ** 2).sum() / (n - 1))
    m2 = ((r - mu) ** 2).mean()
    skew = ((r - mu) ** 3).mean() / m2**1.5
    kurt = ((r - mu) ** 4).mean() / m2**2
    sr = mu / sd
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return 0.5 * math.erfc(-z / math.sqrt(2))


def test_psr_matches_formula() -> None:
    rng = np.random.default_rng(3)
    r = 0.0005 + 0.01 * rng.standard_t(4, size=750) + 0.003 * rng.exponential(size=750)
    for sr_star in (0.0, 0.02, 0.1):
        assert probabilistic_sharpe_ratio(r, sr_star) == pytest.approx(
            _psr_direct(r, sr_star), rel=1e-10
        )
    own = np.mean(r) / np.std(r, ddof=1)
    assert probabilistic_sharpe_ratio(r, own) == pytest.approx(0.5)


def test_expected_max_sharpe_against_monte_carlo() -> None:
    """The Euler-Mascheroni approximation against the mean maximum of n zero-mean Sharpe ratio
    estimates (each from 250 normal returns), with V their cross-trial variance."""
    rng = np.random.default_rng(4)
    for n_trials in (10, 100):
        r = rng.normal(0.0, 0.01, size=(300, n_trials, 250))
        sr = r.mean(axis=2) / r.std(axis=2, ddof=1)
        v = float(sr.var())
        mc = float(sr.max(axis=1).mean())
        assert expected_max_sharpe(n_trials, v) == pytest.approx(mc, rel=0.06)
    assert expected_max_sharpe(1, 0.01) == 0.0
    # standard normals: E max of 100 is 2.5076; the approximation gives ~2.53
    assert expected_max_sharpe(100, 1.0) == pytest.approx(2.5076, rel=0.02)


def test_dsr_decreases_in_trials_and_equals_psr_for_one() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0.001, 0.01, size=1000)
    psr = probabilistic_sharpe_ratio(r)
    assert deflated_sharpe_ratio(r, 1, 0.002) == pytest.approx(psr)
    dsr = [deflated_sharpe_ratio(r, n, 0.002) for n in (1, 2, 10, 100, 1000)]
    assert np.all(np.diff(dsr) < 0)
    assert dsr[-1] < psr
    # more dispersed trials deflate more
    assert deflated_sharpe_ratio(r, 50, 0.004) < deflated_sharpe_ratio(r, 50, 0.001)


# ---------------------------------------------------------------------------- Sharpe difference


def _pair(
    rng: np.random.Generator,
    n: int,
    sr: tuple[float, float] = (0.05, 0.05),
    phi: float = 0.2,
    rho: float = 0.5,
    df: float = 5.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two correlated AR(1) series with unit-variance Student-t innovations and per-period Sharpe
    ratios ``sr`` (1% daily volatility)."""
    z = rng.standard_t(df, size=(n + 50, 2)) / math.sqrt(df / (df - 2))
    z[:, 1] = rho * z[:, 0] + math.sqrt(1 - rho**2) * z[:, 1]
    e = np.empty_like(z)
    e[0] = z[0]
    for t in range(1, len(z)):
        e[t] = phi * e[t - 1] + z[t]
    e = e[50:] * math.sqrt(1 - phi**2) * 0.01
    return e[:, 0] + sr[0] * 0.01, e[:, 1] + sr[1] * 0.01


def test_sharpe_difference_basic_properties() -> None:
    rng = np.random.default_rng(6)
    a, b = _pair(rng, 500, sr=(0.1, 0.0))
    res = sharpe_difference_test(a, b)
    moment_sr = [x.mean() / x.std() for x in (a, b)]  # mu / sqrt(E r^2 - mu^2)
    assert res.difference == pytest.approx(moment_sr[0] - moment_sr[1])
    assert res.ci_low < res.difference < res.ci_high
    assert res.ci_high - res.ci_low == pytest.approx(2 * 1.959964 * res.std_error, rel=1e-5)
    flipped = sharpe_difference_test(b, a)
    assert flipped.difference == pytest.approx(-res.difference)
    assert flipped.p_value == pytest.approx(res.p_value)
    boot = sharpe_difference_test(a, b, method="bootstrap", n_boot=499, rng=1)
    again = sharpe_difference_test(a, b, method="bootstrap", n_boot=499, rng=1)
    assert boot == again
    assert boot.block_size == round(500 ** (1 / 3))
    assert 0 < boot.p_value <= 1


def test_sharpe_difference_hac_se_matches_monte_carlo() -> None:
    """The HAC standard error against the spread of the difference over simulated pairs."""
    rng = np.random.default_rng(7)
    diffs, ses = [], []
    for _ in range(200):
        a, b = _pair(rng, 1000, phi=0.3)
        res = sharpe_difference_test(a, b)
        diffs.append(res.difference)
        ses.append(res.std_error)
    assert float(np.median(ses)) == pytest.approx(float(np.std(diffs)), rel=0.2)


def test_sharpe_difference_hac_size_and_power() -> None:
    """400 pairs of correlated (0.5) AR(1) (0.2) t(5) series, T = 500."""
    rng = np.random.default_rng(8)
    null = [sharpe_difference_test(*_pair(rng, 500)).p_value for _ in range(400)]
    size = float(np.mean(np.array(null) < 0.05))
    assert 0.02 <= size <= 0.09, size
    alt = [sharpe_difference_test(*_pair(rng, 500, sr=(0.2, 0.0))).p_value for _ in range(100)]
    assert float(np.mean(np.array(alt) < 0.05)) >= 0.8


@pytest.mark.slow
def test_sharpe_difference_bootstrap_size_and_power() -> None:
    rng = np.random.default_rng(9)
    null = [
        sharpe_difference_test(*_pair(rng, 500), method="bootstrap", n_boot=499, rng=rng).p_value
        for _ in range(300)
    ]
    size = float(np.mean(np.array(null) < 0.05))
    assert 0.02 <= size <= 0.09, size
    alt = [
        sharpe_difference_test(
            *_pair(rng, 500, sr=(0.2, 0.0)), method="bootstrap", n_boot=499, rng=rng
        ).p_value
        for _ in range(100)
    ]
    assert float(np.mean(np.array(alt) < 0.05)) >= 0.75


# ---------------------------------------------------------------------------- block bootstrap


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    z = rng.standard_normal(n + 100)
    x = np.empty_like(z)
    x[0] = z[0]
    for t in range(1, len(z)):
        x[t] = phi * x[t - 1] + z[t]
    return x[100:]


def test_block_bootstrap_coverage_of_ar1_mean() -> None:
    """Percentile CBB interval for the mean of an AR(1) (phi 0.3), T = 500, true mean 0."""
    rng = np.random.default_rng(10)
    hits = 0
    reps = 300
    for _ in range(reps):
        x = _ar1(rng, 500, 0.3)
        ci = block_bootstrap_ci(x, np.mean, n_boot=400, rng=rng)
        hits += ci.low <= 0.0 <= ci.high
    assert 0.88 <= hits / reps <= 0.98, hits / reps


def test_block_bootstrap_reproducible_and_wrappers() -> None:
    rng = np.random.default_rng(11)
    r = 0.0003 + 0.01 * rng.standard_t(5, size=750)
    a = max_drawdown_ci(r, n_boot=500, rng=3)
    assert a == max_drawdown_ci(r, n_boot=500, rng=3)
    assert a.estimate == pytest.approx(max_drawdown(r).value)
    assert 0.0 <= a.low < a.high <= 1.0
    assert a.block_size == 9
    w = win_rate_ci(r, n_boot=500, rng=4, block_size=1)
    assert w.estimate == pytest.approx(win_rate(r))
    # iid resampling of a win rate: close to the binomial interval
    half = 1.96 * math.sqrt(w.estimate * (1 - w.estimate) / r.size)
    assert (w.high - w.low) / 2 == pytest.approx(half, rel=0.2)
    assert w.low < w.estimate < w.high


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: sharpe_ratio([0.01, np.nan, 0.02]), ValueError, "nan at index 1"),
        (lambda: sharpe_ratio([0.01, np.inf]), ValueError, "inf"),
        (lambda: sharpe_ratio([0.01]), ValueError, "at least 2"),
        (lambda: sharpe_ratio([0.01, 0.01]), ValueError, "zero variance"),
        (lambda: sharpe_ratio([0.01, 0.02], periods_per_year=0), ValueError, "periods_per_year"),
        (lambda: sharpe_ratio([0.01, 0.02], periods_per_year=-252), ValueError, "-252"),
        (lambda: sharpe_ratio([0.01, 0.02], risk_free=np.nan), ValueError, "risk_free"),
        (lambda: sharpe_ratio([0.01, 0.02], risk_free=[0.0] * 3), ValueError, "risk_free"),
        (lambda: sharpe_ratio([[0.01, 0.02]]), ValueError, "1-d"),
        (lambda: sharpe_ratio(["a", "b"]), TypeError, "returns"),
        (lambda: sharpe_ratio([True, False]), TypeError, "booleans"),
        (lambda: sortino_ratio([0.01, 0.02]), ValueError, "below the target"),
        (lambda: max_drawdown([0.1, -1.5]), ValueError, "-1.5 at index 1"),
        (lambda: max_drawdown([]), ValueError, "at least 1"),
        (lambda: win_rate([0.0, 0.0]), ValueError, "every return is zero"),
        (lambda: realised_cvar([0.01] * 10, level=0.975), ValueError, "at least 40"),
        (lambda: realised_cvar([0.01] * 10, level=1.0), ValueError, "level"),
        (lambda: turnover([[0.1, 0.2]]), ValueError, "at least 2 periods"),
        (lambda: turnover(np.zeros((2, 2, 2))), ValueError, "shape"),
        (lambda: turnover([[0.1], [np.nan]]), ValueError, "period 1, asset 0"),
        (lambda: probabilistic_sharpe_ratio([0.01, 0.02]), ValueError, "at least 3"),
        (lambda: probabilistic_sharpe_ratio([0.01, 0.0, 0.02], np.inf), ValueError, "bench"),
        (lambda: expected_max_sharpe(0, 0.01), ValueError, "n_trials"),
        (lambda: expected_max_sharpe(2.5, 0.01), TypeError, "n_trials"),
        (lambda: expected_max_sharpe(10, -0.01), ValueError, "trial_sr_variance"),
        (lambda: sharpe_difference_test(np.ones(20), np.arange(20.0)), ValueError, "r1"),
        (lambda: sharpe_difference_test(np.arange(20.0), np.arange(21.0)), ValueError, "21"),
        (lambda: sharpe_difference_test(np.arange(5.0), np.arange(5.0)), ValueError, "10"),
        (
            lambda: sharpe_difference_test(np.arange(20.0), -np.arange(20.0), method="x"),
            ValueError,
            "'x'",
        ),
        (lambda: block_bootstrap_ci([0.01, 0.02], "mean"), TypeError, "callable"),
        (lambda: block_bootstrap_ci([0.01, 0.02, 0.0], np.mean, block_size=5), ValueError, "5"),
        (lambda: block_bootstrap_ci([0.01, 0.02], np.mean, block_size=0), ValueError, "block"),
        (lambda: block_bootstrap_ci([0.01, 0.02], np.mean, n_boot=2), ValueError, "n_boot"),
        (lambda: block_bootstrap_ci([0.01, 0.02], np.mean, rng="x"), TypeError, "rng"),
        (lambda: block_bootstrap_ci([0.01, 0.02], np.mean, level=0.0), ValueError, "level"),
    ],
)
def test_bad_input(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_bootstrap_statistic_returning_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        block_bootstrap_ci(np.arange(10.0), lambda x: np.nan, n_boot=20, rng=0)


def test_pandas_input_and_boolean_series_refused() -> None:
    pd = pytest.importorskip("pandas")
    r = pd.Series([0.01, 0.02, -0.01, 0.03])
    assert sharpe_ratio(r, periods_per_year=1) == pytest.approx(0.0125 / math.sqrt(8.75e-4 / 3))
    with pytest.raises(TypeError, match="booleans"):
        win_rate(pd.Series([True, False, True]))


# ------------------------------------------------------------ reference libraries (issue 20)
def _qs_hac_by_hand(y: np.ndarray, bandwidth: float) -> np.ndarray:
    """Andrews (1991) QS long-run covariance summed over every lag, times T / (T - k): the
    formula the module computed by hand before it called arch."""
    n, k = y.shape
    psi = y.T @ y / n
    for j in range(1, n):
        x = j / bandwidth
        z = 6.0 * np.pi * x / 5.0
        w = 25.0 / (12.0 * np.pi**2 * x**2) * (np.sin(z) / z - np.cos(z))
        g = y[j:].T @ y[:-j] / n
        psi += w * (g + g.T)
    return psi * n / (n - k)


@pytest.mark.parametrize(
    ("n", "k", "phi", "bandwidth"),
    [(300, 4, 0.5, None), (120, 2, -0.3, 0.7), (500, 1, 0.9, 25.0), (60, 3, 0.0, 0.0)],
)
def test_qs_hac_is_arch_and_the_textbook_formula(n, k, phi, bandwidth) -> None:
    from bayes_mem.evaluation.performance import _hac_cov, _qs_bandwidth

    rng = np.random.default_rng(n + k)
    e = rng.standard_normal((n, k))
    y = e.copy()
    for t in range(1, n):
        y[t] += phi * y[t - 1]
    y -= y.mean(axis=0)
    bw = _qs_bandwidth(y) if bandwidth is None else bandwidth
    got = _hac_cov(y, bw)
    want = y.T @ y / (n - k) if bw == 0.0 else _qs_hac_by_hand(y, bw)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_circular_block_indices_are_arch_circular_block_bootstrap(monkeypatch) -> None:
    """Given the same block starts, our indices are arch's CircularBlockBootstrap's, to the
    index; and the bootstrap variance of the mean of an AR(1) agrees with arch's (different
    streams: within Monte Carlo error)."""
    from arch.bootstrap import CircularBlockBootstrap

    from bayes_mem.evaluation import performance
    from bayes_mem.evaluation.performance import circular_block_indices

    n, b = 103, 7
    cbb = CircularBlockBootstrap(b, np.arange(n), seed=np.random.default_rng(5))
    k = -(-n // b)

    class Starts:  # replays the starts arch drew, one replicate per call
        def __init__(self, rows: np.ndarray) -> None:
            self.rows = rows

        def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
            assert (low, high, size) == (0, n, self.rows.shape)
            return self.rows

    arch_idx, starts = [], []
    for _ in range(20):
        gen_state = cbb.generator.bit_generator.state
        idx = cbb.update_indices()
        cbb.generator.bit_generator.state = gen_state
        starts.append(cbb.generator.integers(n, size=k))
        arch_idx.append(np.asarray(idx))
    with monkeypatch.context() as m:
        m.setattr(performance, "_rng", lambda rng: rng)
        ours = circular_block_indices(n, b, 20, Starts(np.array(starts)))
    np.testing.assert_array_equal(ours, np.array(arch_idx))

    rng = np.random.default_rng(1)
    x = np.empty(400)
    x[0] = rng.standard_normal()
    for t in range(1, x.size):
        x[t] = 0.6 * x[t - 1] + rng.standard_normal()
    ours_sd = x[circular_block_indices(x.size, 12, 4000, np.random.default_rng(2))].mean(1).std()
    arch_cbb = CircularBlockBootstrap(12, x, seed=np.random.default_rng(3))
    arch_sd = np.std([d[0][0].mean() for d in arch_cbb.bootstrap(4000)])
    assert ours_sd == pytest.approx(arch_sd, rel=0.06)  # sd of a 4,000-draw sd: ~1.1% each
