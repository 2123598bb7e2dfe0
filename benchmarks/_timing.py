"""Interleaved best-of-N timing: subject and baseline alternate so drift hits both alike."""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Result:
    name: str
    subject_us: float
    baseline_name: str
    baseline_us: float
    goal: str  # human-readable goal, e.g. "ratio <= 3"
    max_ratio: float | None = None  # subject / baseline must be <= this
    min_speedup: float | None = None  # baseline / subject must be >= this
    max_us: float | None = None  # absolute ceiling on the subject

    @property
    def ratio(self) -> float:
        return self.subject_us / self.baseline_us

    @property
    def passed(self) -> bool | None:
        checks = []
        if self.max_ratio is not None:
            checks.append(self.ratio <= self.max_ratio)
        if self.min_speedup is not None:
            checks.append(1.0 / self.ratio >= self.min_speedup)
        if self.max_us is not None:
            checks.append(self.subject_us <= self.max_us)
        return all(checks) if checks else None

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed}


def warm_up(seconds: float = 1.0) -> None:
    """Spin so that CPU frequency scaling settles before the first measurement."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(1_000))


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e6


def best_pair(
    subject: Callable[[], object],
    baseline: Callable[[], object],
    number: int,
    repeat: int,
    baseline_number: int | None = None,
) -> tuple[float, float]:
    """Best per-call microseconds of each, over ``repeat`` alternating rounds of ``number``
    calls (``baseline_number`` for the baseline when it is much slower)."""
    subject(), baseline()  # warm up
    s_best = b_best = float("inf")
    for _ in range(repeat):
        s_best = min(s_best, per_call_us(subject, number))
        b_best = min(b_best, per_call_us(baseline, baseline_number or number))
    return s_best, b_best


def format_table(results: list[Result]) -> str:
    head = (
        f"{'benchmark':<32}{'ours us':>10}  {'baseline':<28}{'base us':>10}{'ratio':>9}  "
        f"{'goal':<15}result"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        verdict = {True: "PASS", False: "FAIL", None: "-"}[r.passed]
        lines.append(
            f"{r.name:<32}{r.subject_us:>10.2f}  {r.baseline_name:<28}{r.baseline_us:>10.2f}"
            f"{r.ratio:>9.3f}  {r.goal:<15}{verdict}"
        )
    return "\n".join(lines)
