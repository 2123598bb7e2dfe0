"""Calibration of the strategy A/B tests: how often each test calls a difference when there is
none (A/A), and how often it finds a real edge (power), on real daily index returns.

Design. A *random sizer* holds a position ``w ~ N(0, 1)`` (fraction of capital, drawn afresh each
day from its own seeded generator) in the day's simple return ``r`` and earns ``w r + edge``. An
A/A comparison runs two seeds of the same sizer on the same block of consecutive days; a power
run adds ``edge`` (per-day return, fraction of capital) to the test strategy. Blocks are drawn at
random start days of the real series (S&P 500 shipped with ``arch``), so the pnl inherit its fat
tails and volatility clustering. Every test of :meth:`StrategyABTest.statistical_significance`
is scored at the same ``alpha``: the plan's independent t-test, the paired t-test, the Ledoit-Wolf
HAC Sharpe-difference test and the Bayesian ``P(test beats control)`` outside
``[alpha / 2, 1 - alpha / 2]`` (two-sided, like the others).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from bayes_mem.evaluation.abtest import StrategyABTest
from bayes_mem.evaluation.tables import markdown_table
from bayes_mem.live._validate import check_int, check_probability_open

TESTS = ("independent_t", "paired_t", "sharpe_difference", "bayes")


class RandomSizer:
    """Position ``w ~ N(0, 1)`` per day from its own generator; pnl ``w * r + edge``."""

    def __init__(self, seed: int | np.random.SeedSequence, edge: float = 0.0) -> None:
        self._rng = np.random.default_rng(seed)
        self._edge = float(edge)

    def process(self, data: float) -> dict[str, float]:
        w = self._rng.standard_normal()
        return {"pnl": float(w * data + self._edge), "position": float(w)}


@dataclass(frozen=True)
class RejectionRate:
    test: str
    rejections: int
    runs: int

    @property
    def rate(self) -> float:
        return self.rejections / self.runs

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Wilson score interval of the rejection rate."""
        z = stats.norm.ppf(0.5 + level / 2)
        n, p = self.runs, self.rate
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(centre - half, 0.0), min(centre + half, 1.0)


def _rejects(res: dict[str, Any], alpha: float) -> dict[str, bool]:
    sd = res["sharpe_difference"]
    pp = res["bayes"]["prob_positive"]
    return {
        "independent_t": res["p_value"] < alpha,
        "paired_t": res["paired"]["p"] < alpha,
        "sharpe_difference": sd is not None and sd["p_value"] < alpha,
        "bayes": pp > 1 - alpha / 2 or pp < alpha / 2,
    }


def rejection_rates(
    returns: np.ndarray,
    *,
    runs: int = 400,
    days: int = 60,
    edge: float = 0.0,
    alpha: float = 0.05,
    rng: int | np.random.Generator | None = None,
) -> dict[str, RejectionRate]:
    """Share of ``runs`` comparisons of two seeds of :class:`RandomSizer` on random blocks of
    ``days`` consecutive ``returns`` (daily simple returns, fractions) that each test rejects at
    ``alpha``; ``edge`` (per-day return added to the test strategy) 0 is the A/A case."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise ValueError("returns must be a 1-d array of finite daily simple returns")
    runs = check_int(runs, "runs", minimum=1)
    days = check_int(days, "days", minimum=10)
    if days > r.size:
        raise ValueError(f"days={days} exceeds the {r.size} returns available")
    if isinstance(edge, bool) or not isinstance(edge, int | float) or not math.isfinite(edge):
        raise ValueError(f"edge must be a finite per-day return, got {edge!r}")
    alpha = check_probability_open(alpha, "alpha")
    gen = np.random.default_rng(rng)
    counts = dict.fromkeys(TESTS, 0)
    starts = gen.integers(0, r.size - days + 1, size=runs)
    seeds = gen.spawn(2 * runs)
    for i, start in enumerate(starts):
        ab = StrategyABTest(RandomSizer(seeds[2 * i]), RandomSizer(seeds[2 * i + 1], edge))
        ab.run_parallel(r[start : start + days])
        for test, hit in _rejects(ab.statistical_significance(alpha), alpha).items():
            counts[test] += hit
    return {t: RejectionRate(t, counts[t], runs) for t in TESTS}


def sp500_simple_returns() -> np.ndarray:
    """Daily simple returns of the S&P 500 (``arch.data.sp500``, Adj Close, 1999-2018)."""
    try:
        from arch.data import sp500
    except ImportError as exc:  # pragma: no cover - the data extra is part of dev
        raise ImportError("the real-price evaluations need `pip install bayes_mem[data]`") from exc
    px = sp500.load()["Adj Close"].to_numpy()
    return px[1:] / px[:-1] - 1.0


def write_results(out_dir: Path, *, seed: int = 0, quick: bool = False) -> dict[str, Any]:
    """A/A false-positive rates and power of every A/B test on S&P 500 blocks; writes
    ``ab_calibration.csv`` / ``.md`` into ``out_dir`` and returns the summary."""
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = sp500_simple_returns()
    runs = 30 if quick else 400
    cases = [
        ("A/A", 0.0, 60),
        ("A/A", 0.0, 250),
        ("power, edge 0.5%/day", 0.005, 60),
        ("power, edge 0.2%/day", 0.002, 250),
    ]
    rows = []
    for i, (case, edge, days) in enumerate(cases):
        rates = rejection_rates(r, runs=runs, days=days, edge=edge, rng=[seed, i])
        for t, rr in rates.items():
            lo, hi = rr.interval()
            rows.append(
                {"case": case, "days": days, "test": t, "runs": rr.runs, "rate": rr.rate,
                 "ci_low": lo, "ci_high": hi}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(out / "ab_calibration.csv", index=False, float_format="%.6g")
    md = markdown_table(table, floatfmt=".3f")
    (out / "ab_calibration.md").write_text(md + "\n")
    findings = []
    aa_rates = {}
    for days in (60, 250):
        aa = table[(table.case == "A/A") & (table.days == days)].set_index("test")
        aa_rates[str(days)] = {t: float(aa.loc[t, "rate"]) for t in TESTS}
        findings.append(
            f"A/A at a nominal 5% ({runs} comparisons of {days} days): "
            + ", ".join(
                f"{t} {aa.loc[t, 'rate']:.1%} [{aa.loc[t, 'ci_low']:.1%}, "
                f"{aa.loc[t, 'ci_high']:.1%}]"
                for t in TESTS
            )
        )
    markdown = (
        "## Strategy A/B tests: calibration on S&P 500 days\n\n"
        "Two seeds of a random-position strategy on random blocks of real S&P 500 days "
        "(A/A), and with a per-day edge added to one of them (power). Rejection rates at 5%, "
        "Wilson 95% intervals.\n\n" + md + "\n\n" + "\n".join(f"- {f}" for f in findings) + "\n"
    )
    return {
        "runs": runs,
        "aa_rates": aa_rates,
        "table": rows,
        "markdown": markdown,
    }
