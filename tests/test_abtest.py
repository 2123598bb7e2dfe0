"""StrategyABTest: the plan's keys (now HAC), the HAC paired test, the Sharpe difference, the
Bayesian block-bootstrap posterior of the Sharpe difference (scale-free, block length, against
the asymptotic normal), the Student-t posterior (kept), A/A calibration and power, bad input,
compare_variants (DSR)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem import StrategyABTest
from bayes_mem.evaluation import compare_variants, student_t_posterior
from bayes_mem.evaluation.abtest import (
    hac_mean_test,
    optimal_block_length,
    sharpe_difference_posterior,
)
from bayes_mem.evaluation.performance import sharpe_difference_test


class RandomSizer:
    """Holds a random position w ~ N(base, 1) (its own seeded rng) in the day's return; pnl is
    w * r + edge. Two seeds of the same strategy are an A/A pair (uncorrelated pnl)."""

    def __init__(self, seed: int, base: float = 0.0, edge: float = 0.0) -> None:
        self.rng = np.random.default_rng(seed)
        self.base = base
        self.edge = edge

    def process(self, data: float) -> dict[str, float]:
        w = self.base + self.rng.standard_normal()
        return {"pnl": float(w * data + self.edge), "position": float(w)}


class Fixed:
    def __init__(self, values: list) -> None:
        self.values = list(values)
        self.i = 0

    def process(self, data: object) -> dict[str, object]:
        v = self.values[self.i % len(self.values)]
        self.i += 1
        return {"pnl": v}


def _returns(seed: int, n: int) -> np.ndarray:
    return 0.01 * np.random.default_rng(seed).standard_t(5, n)


def _run(seed: int, n: int, edge: float = 0.0) -> dict:
    ab = StrategyABTest(RandomSizer(2 * seed + 1), RandomSizer(2 * seed + 2, edge=edge))
    ab.run_parallel(_returns(seed, n))
    return ab.statistical_significance()


def _ewc_lrv_by_hand(x: np.ndarray) -> tuple[float, int]:
    """EWC long-run variance by the textbook sums: nu = floor(0.4 n^(2/3)) cosine transforms."""
    n = x.size
    nu = max(1, int(0.4 * n ** (2 / 3)))
    lam = [
        math.sqrt(2 / n) * sum(math.cos(math.pi * j * (t + 0.5) / n) * x[t] for t in range(n))
        for j in range(1, nu + 1)
    ]
    return sum(v * v for v in lam) / nu, nu


def test_plan_keys_are_the_hac_tests_and_classical_equal_scipy():
    ab = StrategyABTest(RandomSizer(1), RandomSizer(2, edge=0.002))
    assert ab.run_parallel(_returns(0, 80), time_period=60) == 60
    c, t = ab.pnl()
    assert c.size == 60
    out = ab.statistical_significance(alpha=0.05)
    # the i.i.d. references are scipy's
    ref = stats.ttest_ind(t, c)
    rel = stats.ttest_rel(t, c)
    assert out["classical"]["ttest_ind"]["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert out["classical"]["ttest_ind"]["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert out["classical"]["ttest_rel"]["t"] == pytest.approx(rel.statistic, rel=1e-12)
    assert out["classical"]["ttest_rel"]["p"] == pytest.approx(rel.pvalue, rel=1e-12)
    # the plan's keys: the EWC independent-samples test, by hand (6 cosines for 60 days)
    lrv_t, nu = _ewc_lrv_by_hand(t)
    lrv_c, _ = _ewc_lrv_by_hand(c)
    assert nu == 6
    t_ind = (t.mean() - c.mean()) / math.sqrt((lrv_t + lrv_c) / 60)
    df = (lrv_t + lrv_c) ** 2 / ((lrv_t**2 + lrv_c**2) / nu)
    assert nu <= df <= 2 * nu
    assert out["t_statistic"] == pytest.approx(t_ind, rel=1e-10)
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(abs(t_ind), df), rel=1e-10)
    assert out["independent"]["df"] == pytest.approx(df, rel=1e-12)
    assert out["significant"] == (out["p_value"] < 0.05)
    assert out["improvement"] == pytest.approx((t.mean() - c.mean()) / (np.std(c) + 1e-8))
    # the paired EWC test, by hand
    d = t - c
    lrv, _ = _ewc_lrv_by_hand(d)
    tp = d.mean() / math.sqrt(lrv / 60)
    assert out["paired"]["t"] == pytest.approx(tp, rel=1e-10)
    assert out["paired"]["p"] == pytest.approx(2 * stats.t.sf(abs(tp), 6), rel=1e-10)
    assert out["paired"]["df"] == 6
    sd = out["sharpe_difference"]
    assert sd["method"] == "ewc" and 0.0 < sd["p_value"] <= 1.0 and sd["bandwidth"] == 6
    b = out["bayes"]
    assert b["method"] == "bayesian block bootstrap"
    assert b["ci_low"] < b["median"] < b["ci_high"] and 0.0 < b["prob_positive"] < 1.0
    assert b["level"] == 0.95 and b["draws"] == 4000 and b["df"] == 6


def test_hac_mean_test_is_exact_t_on_iid_normal_data():
    """EWC with nu cosines: for i.i.d. normal data t is exactly Student-t(nu) (the cosine
    transforms are i.i.d. normal and orthogonal to the mean), so the size is 5% even with 3
    degrees of freedom (n = 20); 4000 samples, binomial sd 0.34%."""
    rng = np.random.default_rng(8)
    p = np.array([hac_mean_test(rng.standard_normal(20))["p"] for _ in range(4000)])
    assert hac_mean_test(rng.standard_normal(20))["df"] == 2  # floor(0.4 * 20^(2/3)) = 2
    assert 0.043 <= np.mean(p < 0.05) <= 0.057
    assert 0.085 <= np.mean(p < 0.10) <= 0.115
    x = _returns(4, 50) + 0.002
    assert hac_mean_test(x, nu=49)["df"] == 49
    with pytest.raises(ValueError, match=r"nu must be at most n - 1 = 49, got 50"):
        hac_mean_test(x, nu=50)
    with pytest.raises(TypeError, match=r"nu must be an int >= 1, got float 2.0"):
        hac_mean_test(x, nu=2.0)
    with pytest.raises(ValueError, match="x must be finite"):
        hac_mean_test([0.1, math.nan, 0.2])


def test_hac_paired_test_holds_its_size_on_ma4_differences():
    """Differences that are 5-day overlapping sums (MA(4), lag-1 correlation 0.8): the i.i.d.
    paired t-test rejects a true null far too often, the EWC test near 5% (400 series of 250
    days; binomial sd 1.1%)."""
    rng = np.random.default_rng(21)
    iid = hac = 0
    for _ in range(400):
        d = np.convolve(rng.standard_normal(254), np.ones(5), "valid")
        iid += stats.ttest_1samp(d, 0.0).pvalue < 0.05
        hac += hac_mean_test(d)["p"] < 0.05
    assert iid / 400 > 0.2
    assert 0.025 <= hac / 400 <= 0.08, hac / 400


def test_bayes_matches_frequentist_on_large_normal_sample():
    rng = np.random.default_rng(11)
    for loc in (0.03, 0.08, -0.05):
        d = rng.normal(loc, 1.0, 800)
        post = student_t_posterior(d)
        p = stats.ttest_1samp(d, 0.0, alternative="greater").pvalue
        assert post["prob_positive"] == pytest.approx(1.0 - p, abs=0.03)
        assert post["mean"] == pytest.approx(d.mean(), abs=0.1 * d.std() / math.sqrt(d.size))
        half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
        assert post["ci_low"] == pytest.approx(d.mean() - half, abs=0.15 * half)
        assert post["ci_high"] == pytest.approx(d.mean() + half, abs=0.15 * half)


def test_bayes_student_t_is_robust_to_an_outlier():
    rng = np.random.default_rng(5)
    wins = 0
    for _ in range(20):
        d = 1.0 + rng.standard_t(3, 60)
        d[0] = 60.0  # one wild day
        post = student_t_posterior(d)
        assert post["nu_mean"] < 10.0
        wins += abs(post["mean"] - 1.0) < abs(d.mean() - 1.0)
    assert wins >= 19


def test_aa_false_positive_rates_near_nominal():
    """400 A/A comparisons (same strategy, two seeds, 30 days of t(5) returns)."""
    outs = [_run(seed, 30) for seed in range(400)]
    ind = np.mean([o["p_value"] < 0.05 for o in outs])
    paired = np.mean([o["paired"]["p"] < 0.05 for o in outs])
    lw = np.mean([o["sharpe_difference"]["p_value"] < 0.05 for o in outs])
    pp = np.array([o["bayes"]["prob_positive"] for o in outs])
    bayes_two_sided = np.mean((pp > 0.975) | (pp < 0.025))
    bayes_one_sided = np.mean(pp > 0.975)
    print(f"A/A: ind {ind:.4f} paired {paired:.4f} LW {lw:.4f} bayes {bayes_two_sided:.4f} "
          f"{bayes_one_sided}")  # fmt: skip
    # binomial sd at 5% and 400 draws is 1.1%
    assert 0.025 <= ind <= 0.08
    assert 0.025 <= paired <= 0.08
    assert 0.02 <= lw <= 0.085
    assert 0.02 <= bayes_two_sided <= 0.085
    assert bayes_one_sided <= 0.05


def test_power_when_test_is_better():
    outs = [_run(seed, 80, edge=0.006) for seed in range(1000, 1100)]
    ind = np.mean([o["significant"] for o in outs])
    paired = np.mean([o["paired"]["significant"] for o in outs])
    bayes = np.mean([o["bayes"]["prob_positive"] > 0.975 for o in outs])
    print(f"power: ind {ind:.2f} paired {paired:.2f} bayes {bayes:.2f}")
    # EWC with 7 degrees of freedom at 80 days trades power for size (measured: 0.77, 0.73,
    # 0.67 one-sided; the i.i.d. t-tests had 0.81 and 0.79)
    assert paired >= 0.65 and ind >= 0.65 and bayes >= 0.55


def test_paired_beats_independent_with_a_shared_market_component():
    """Same positions up to small noise: the pnl share the market move; ttest_ind ignores it."""
    hits_ind = hits_rel = 0
    for seed in range(40):
        r = _returns(seed, 100)
        noise = np.random.default_rng(seed + 500).normal(0.0, 0.002, (2, 100))
        ab = StrategyABTest(Fixed(list(r + noise[0])), Fixed(list(r + noise[1] + 0.0008)))
        ab.run_parallel(range(100))
        out = ab.statistical_significance()
        hits_ind += out["significant"]
        hits_rel += out["paired"]["significant"]
    assert hits_rel >= 30 and hits_ind <= 10


def test_bad_strategies_and_results():
    with pytest.raises(TypeError, match=r"control_strategy.*process"):
        StrategyABTest(object(), RandomSizer(1))
    with pytest.raises(TypeError, match=r"test_strategy.*process"):
        StrategyABTest(RandomSizer(1), type("S", (), {"process": 3})())
    ab = StrategyABTest(Fixed([0.1, 0.2, 0.3]), Fixed([0.1, 0.2, math.nan]))
    with pytest.raises(ValueError, match=r"step 2: test strategy's pnl must be finite"):
        ab.run_parallel(range(5))
    assert ab.results == {"control": [], "test": []}
    ab = StrategyABTest(Fixed([0.1, "x"]), Fixed([0.1]))
    with pytest.raises(TypeError, match="step 1: control strategy's pnl must be a real number"):
        ab.run_parallel(range(5))
    ab = StrategyABTest(Fixed([True]), Fixed([0.1]))
    with pytest.raises(TypeError, match="step 0: control"):
        ab.run_parallel(range(5))
    ab = StrategyABTest(type("S", (), {"process": lambda self, d: {"x": 1}})(), Fixed([0.1]))
    with pytest.raises(ValueError, match="no 'pnl'"):
        ab.run_parallel(range(5))


def test_time_period_and_state_unchanged_after_error():
    ab = StrategyABTest(Fixed([0.1, 0.3, 0.2, -0.1]), Fixed([0.2, 0.1, 0.4, 0.0]))
    for bad, err in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(err, match="time_period"):
            ab.run_parallel(range(10), time_period=bad)
    with pytest.raises(TypeError, match="market_data"):
        ab.run_parallel(5)
    assert ab.run_parallel(range(2), time_period=10) == 2  # shorter data: all of it
    with pytest.raises(ValueError, match="at least 3 paired steps for the tests, have 2"):
        ab.statistical_significance()
    before = [list(v) for v in ab.results.values()]
    ab.test.values[2] = math.inf
    with pytest.raises(ValueError, match="step 0: test"):
        ab.run_parallel(range(3))
    assert [list(v) for v in ab.results.values()] == before
    ab.test.values[2] = 0.4
    ab.test.i = ab.control.i = 2
    assert ab.run_parallel(range(2)) == 2
    out = ab.statistical_significance()
    assert out["n"] == 4 and out["sharpe_difference"] is None and out["bayes"] is None
    assert (
        "10" in out["sharpe_difference_note"] and out["bayes_note"] == out["sharpe_difference_note"]
    )
    with pytest.raises(ValueError, match="alpha"):
        ab.statistical_significance(alpha=1.5)


def test_identical_strategies_raise_not_nan():
    ab = StrategyABTest(Fixed([0.1, 0.3, 0.2]), Fixed([0.1, 0.3, 0.2]))
    ab.run_parallel(range(6))
    with pytest.raises(ValueError, match=r"differences are all 0\.0"):
        ab.statistical_significance()
    with pytest.raises(ValueError, match="differences must be finite"):
        student_t_posterior([0.1, math.nan, 0.3])


def test_sharpe_posterior_agrees_with_the_asymptotic_normal_on_long_iid_series():
    """5000 i.i.d. normal pairs (correlation 0.5): the posterior of the Sharpe difference is the
    Jobson-Korkie-Memmel / Ledoit-Wolf asymptotic normal N(diff, se^2) up to the noise of the
    EWC long-run variance (116 cosines: sd of its se about 6.6%), and exactly the EWC t
    (location diff, scale se_EWC, 116 df) up to Monte Carlo error."""
    rng = np.random.default_rng(7)
    n = 5000
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], n)
    a, b = 0.03 + z[:, 0], z[:, 1]
    post = sharpe_difference_posterior(a, b, seed=1)
    lw = sharpe_difference_test(a, b)
    ewc = sharpe_difference_test(a, b, method="ewc")
    nu = ewc.bandwidth
    s1, s2 = a.mean() / a.std(), b.mean() / b.std()
    r = np.corrcoef(a, b)[0, 1]
    jkm = math.sqrt((2 - 2 * r + 0.5 * (s1**2 + s2**2 - 2 * s1 * s2 * r**2)) / n)
    assert nu == 116 and post["df"] == 116
    assert lw.std_error == pytest.approx(jkm, rel=0.05)
    assert ewc.std_error == pytest.approx(jkm, rel=0.2)
    assert post["sd"] == pytest.approx(ewc.std_error * math.sqrt(nu / (nu - 2)), rel=0.03)
    assert post["difference"] == pytest.approx(s1 - s2, rel=1e-3)
    assert post["median"] == pytest.approx(lw.difference, abs=0.05 * jkm)
    p_t = stats.t.cdf(ewc.difference / ewc.std_error, nu)
    assert post["prob_positive"] == pytest.approx(p_t, abs=0.01)
    assert post["prob_positive"] == pytest.approx(stats.norm.cdf(lw.difference / jkm), abs=0.05)
    assert post["ci_low"] == pytest.approx(ewc.ci_low, abs=0.05 * jkm)
    assert post["ci_high"] == pytest.approx(ewc.ci_high, abs=0.05 * jkm)
    assert post["block_length"] == 1  # i.i.d.: no blocks needed


def test_block_length_one_for_iid_grows_for_ma4_and_matches_ar1_theory():
    rng = np.random.default_rng(3)
    assert max(optimal_block_length(rng.standard_normal(500)) for _ in range(10)) < 1.5
    ma4 = [optimal_block_length(np.convolve(rng.standard_normal(504), np.ones(5), "valid"))
           for _ in range(10)]  # fmt: skip
    assert np.median(ma4) > 5.0
    # AR(1), phi 0.5: circular-bootstrap optimum (6 phi^2 / (1 - phi^2)^2)^(1/3) n^(1/3)
    e = rng.standard_normal(20000)
    x = np.empty_like(e)
    x[0] = e[0]
    for i in range(1, x.size):
        x[i] = 0.5 * x[i - 1] + e[i]
    theory = (6 * 0.25 / 0.75**2) ** (1 / 3) * x.size ** (1 / 3)
    assert optimal_block_length(x) == pytest.approx(theory, rel=0.15)
    # the posterior uses it on the linearised Sharpe difference, at least min_block
    c = np.convolve(rng.standard_normal(504), np.ones(5), "valid") * 0.01
    t = np.convolve(rng.standard_normal(504), np.ones(5), "valid") * 0.01
    post = sharpe_difference_posterior(t, c)
    assert post["block_length"] >= 4 and post["block_length_auto"] > 3.0
    assert sharpe_difference_posterior(t, c, min_block=25)["block_length"] == 25
    iid = sharpe_difference_posterior(rng.standard_normal(500), rng.standard_normal(500))
    assert iid["block_length"] == 1


def test_exposure_only_difference_is_no_sharpe_difference():
    """Test = 3 x the control's exposure with the same positive edge: the mean pnl differ (the
    old Student-t location model was sure the test is better), the Sharpe ratios do not."""
    pp, old = [], []
    for s in range(30):
        g = np.random.default_rng(100 + s)
        c = 0.001 + 0.01 * g.standard_normal(1000)
        t = 3.0 * (0.001 + 0.01 * g.standard_normal(1000))
        pp.append(sharpe_difference_posterior(t, c, seed=s)["prob_positive"])
        if s < 6:
            old.append(student_t_posterior(t - c)["prob_positive"])
    pp = np.array(pp)
    assert 0.35 <= pp.mean() <= 0.65, pp.mean()
    assert np.mean((pp > 0.975) | (pp < 0.025)) <= 0.1
    assert np.mean(old) > 0.85  # what the raw-difference model said
    # exactly scale-free: scaling one strategy changes no draw
    c, t = _returns(1, 300) + 0.0005, _returns(2, 300)
    base = sharpe_difference_posterior(t, c, seed=4)
    scaled = sharpe_difference_posterior(7.0 * t, c, seed=4)
    for key in ("prob_positive", "mean", "ci_low", "ci_high", "block_length"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9, abs=1e-12), key


def test_sharpe_posterior_same_seed_same_result_and_bad_input():
    c, t = _returns(5, 120), _returns(6, 120) + 0.001
    a = sharpe_difference_posterior(t, c, seed=11, min_block=5)
    assert a == sharpe_difference_posterior(t, c, seed=11, min_block=5)
    assert a != sharpe_difference_posterior(t, c, seed=12, min_block=5)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    assert sharpe_difference_posterior(t, c, seed=g1) == sharpe_difference_posterior(t, c, seed=g2)
    for kwargs, err, match in (
        ({"min_block": 0}, ValueError, r"min_block must be >= 1, got 0"),
        ({"min_block": 61}, ValueError, r"min_block=61 leaves fewer than 2 blocks in 120"),
        ({"min_block": 2.5}, TypeError, r"min_block must be an int >= 1, got float 2.5"),
        ({"draws": 50}, ValueError, r"draws must be >= 100, got 50"),
        ({"seed": "x"}, TypeError, r"seed must be an int >= 0 or a numpy Generator, got 'x'"),
        ({"level": 1.0}, ValueError, "level"),
    ):
        with pytest.raises(err, match=match):
            sharpe_difference_posterior(t, c, **kwargs)
    with pytest.raises(ValueError, match=r"must be paired .* got 120 and 119"):
        sharpe_difference_posterior(t, c[:-1])
    with pytest.raises(ValueError, match=r"control pnl is constant \(0\.5\)"):
        sharpe_difference_posterior(t, np.full(120, 0.5))
    bad = t.copy()
    bad[9] = np.inf
    with pytest.raises(ValueError, match="test must be finite, got inf at index 9"):
        sharpe_difference_posterior(bad, c)
    # through the A/B: the error names the value, the stored steps are untouched
    ab = StrategyABTest(Fixed(list(c)), Fixed(list(t)))
    ab.run_parallel(range(120))
    before = ab.pnl()
    with pytest.raises(ValueError, match=r"min_block must be >= 1, got 0"):
        ab.statistical_significance(min_block=0)
    with pytest.raises(ValueError, match=r"draws must be >= 100, got 10"):
        ab.statistical_significance(draws=10)
    after = ab.pnl()
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))
    assert ab.statistical_significance(seed=3) == ab.statistical_significance(seed=3)


def test_compare_variants_dsr_falls_with_trials():
    rng = np.random.default_rng(3)
    control = rng.normal(0.0, 0.01, 500)
    variants = {f"v{i}": rng.normal(0.0008 * i, 0.01, 500) for i in range(1, 6)}
    rep = compare_variants(control, variants)
    best = rep["v5"]
    assert best["n_trials"] == 5
    assert best["dsr"] < best["psr"]
    assert best["sharpe_per_period"] == pytest.approx(
        variants["v5"].mean() / variants["v5"].std(ddof=1)
    )
    dsrs = [
        compare_variants(control, variants, n_trials=k)["v5"]["dsr"] for k in (5, 20, 100, 1000)
    ]
    assert all(a > b for a, b in itertools.pairwise(dsrs))
    # more variants with the same spread of Sharpe ratios deflate the best one more
    few = compare_variants(control, {k: variants[k] for k in ("v1", "v5")}, trial_sr_variance=1e-3)
    many = compare_variants(control, variants, trial_sr_variance=1e-3)
    assert many["v5"]["dsr"] < few["v5"]["dsr"]
    with pytest.raises(ValueError, match="below the number of variants"):
        compare_variants(control, variants, n_trials=2)
    with pytest.raises(ValueError, match="variant 'v1' must be paired"):
        compare_variants(control, {"v1": control[:10]})
    with pytest.raises(ValueError, match="trial_sr_variance"):
        compare_variants(control, {"v1": variants["v1"]}, n_trials=3)
    bad = variants["v2"].copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"variant 'v2' pnl must be finite, got nan at index 7"):
        compare_variants(control, {"v2": bad})
    with pytest.raises(ValueError, match="control_pnl must be finite"):
        compare_variants(bad, variants)
    with pytest.raises(ValueError, match="non-empty"):
        compare_variants(control, {})
