"""StrategyABTest: the plan's t-test, paired test, Sharpe difference, Student-t posterior,
A/A calibration and power, bad input, compare_variants (DSR)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from bayes_mem import StrategyABTest
from bayes_mem.evaluation import compare_variants, student_t_posterior


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


def test_plan_t_test_and_paired_equal_scipy():
    ab = StrategyABTest(RandomSizer(1), RandomSizer(2, edge=0.002))
    assert ab.run_parallel(_returns(0, 80), time_period=60) == 60
    c, t = ab.pnl()
    assert c.size == 60
    out = ab.statistical_significance(alpha=0.05)
    ref = stats.ttest_ind(t, c)
    assert out["t_statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert out["significant"] == (ref.pvalue < 0.05)
    assert out["improvement"] == pytest.approx((t.mean() - c.mean()) / (np.std(c) + 1e-8))
    rel = stats.ttest_rel(t, c)
    assert out["paired"]["t"] == pytest.approx(rel.statistic, rel=1e-12)
    assert out["paired"]["p"] == pytest.approx(rel.pvalue, rel=1e-12)
    sd = out["sharpe_difference"]
    assert sd["method"] == "hac" and 0.0 < sd["p_value"] <= 1.0
    b = out["bayes"]
    assert b["ci_low"] < b["mean"] < b["ci_high"] and 0.0 < b["prob_positive"] < 1.0
    assert b["edge_mass"] < 1e-4


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
    pp = np.array([o["bayes"]["prob_positive"] for o in outs])
    bayes_two_sided = np.mean((pp > 0.975) | (pp < 0.025))
    bayes_one_sided = np.mean(pp > 0.975)
    print(f"A/A: ind {ind:.4f} paired {paired:.4f} bayes {bayes_two_sided:.4f} {bayes_one_sided}")
    # binomial sd at 5% and 400 draws is 1.1%
    assert 0.025 <= ind <= 0.08
    assert 0.025 <= paired <= 0.08
    assert 0.025 <= bayes_two_sided <= 0.08
    assert bayes_one_sided <= 0.05


def test_power_when_test_is_better():
    outs = [_run(seed, 80, edge=0.006) for seed in range(1000, 1100)]
    ind = np.mean([o["significant"] for o in outs])
    paired = np.mean([o["paired"]["significant"] for o in outs])
    bayes = np.mean([o["bayes"]["prob_positive"] > 0.975 for o in outs])
    print(f"power: ind {ind:.2f} paired {paired:.2f} bayes {bayes:.2f}")
    assert paired >= 0.7 and ind >= 0.7 and bayes >= 0.7


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
    assert out["n"] == 4 and out["sharpe_difference"] is None
    assert "10" in out["sharpe_difference_note"]
    with pytest.raises(ValueError, match="alpha"):
        ab.statistical_significance(alpha=1.5)


def test_identical_strategies_raise_not_nan():
    ab = StrategyABTest(Fixed([0.1, 0.3, 0.2]), Fixed([0.1, 0.3, 0.2]))
    ab.run_parallel(range(6))
    with pytest.raises(ValueError, match=r"differences are all 0\.0"):
        ab.statistical_significance()
    with pytest.raises(ValueError, match="differences must be finite"):
        student_t_posterior([0.1, math.nan, 0.3])


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
