"""A/B tests of trading strategies run side by side on the same market data.

Units: ``pnl`` is whatever one strategy step reports (a currency amount or a per-period return
fraction); both strategies must report it in the same units. Per-step differences are
``test - control``. Sharpe ratios follow :mod:`bayes_mem.evaluation.performance` (annualised with
``periods_per_year``; the PSR/DSR and the Sharpe difference test use per-period ratios).

Numpy/scipy only (no PyMC): the Bayesian estimate is a deterministic grid integration.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from numbers import Real

import numpy as np
from scipy import special, stats

from bayes_mem.evaluation.performance import (
    _series,
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_difference_test,
    sharpe_ratio,
)
from bayes_mem.live._validate import check_probability_open

MIN_PAIRS = 3
MIN_SHARPE_PAIRS = 10  # sharpe_difference_test's minimum

# Prior on the Student-t degrees of freedom: nu - 1 ~ Exponential(mean 29) (Kruschke 2013, "BEST"),
# discretised on these nodes; each node gets the prior mass between its geometric midpoints.
NU_NODES = np.array([1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0, 17.0, 30.0, 60.0, 120.0])


def _nu_log_weights() -> np.ndarray:
    edges = np.sqrt(NU_NODES[:-1] * NU_NODES[1:])
    cdf = 1.0 - np.exp(-(edges - 1.0) / 29.0)
    mass = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return np.log(mass)


def _check_alpha(alpha: object) -> float:
    return check_probability_open(alpha, "alpha")


def _grid_loglik(
    d: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray, prior_sd: float
) -> np.ndarray:
    """Unnormalised log posterior on the (nu, mu, log sigma) grid, shape (K, M, S)."""
    n = d.size
    sigma = np.exp(log_sigma)
    out = np.empty((NU_NODES.size, mu.size, sigma.size))
    chunk = max(1, 2_000_000 // max(1, sigma.size * n))
    for lo in range(0, mu.size, chunk):
        sl = slice(lo, min(lo + chunk, mu.size))
        z2 = ((d[None, None, :] - mu[sl, None, None]) / sigma[None, :, None]) ** 2
        for k, nu in enumerate(NU_NODES):
            out[k, sl] = -0.5 * (nu + 1.0) * np.log1p(z2 / nu).sum(axis=-1)
    const = special.gammaln((NU_NODES + 1) / 2) - special.gammaln(NU_NODES / 2)
    const = n * (const - 0.5 * np.log(NU_NODES * math.pi))
    out += const[:, None, None] + _nu_log_weights()[:, None, None]
    out -= n * log_sigma[None, None, :]
    out -= 0.5 * (mu[None, :, None] / prior_sd) ** 2
    return out


def student_t_posterior(
    differences: object, *, level: float = 0.95, n_mu: int = 81, n_sigma: int = 41
) -> dict[str, float]:
    """Posterior of the location ``mu`` of paired differences under a Student-t likelihood
    ``d_i ~ t_nu(mu, sigma)`` (in the units of the differences).

    Priors (weakly informative, scaled by the data's standard deviation ``sd``):
    ``mu ~ Normal(0, (10 sd)^2)``; ``p(sigma) ~ 1/sigma`` (log-uniform over the grid);
    ``nu - 1 ~ Exponential(mean 29)`` discretised on :data:`NU_NODES` (1 ... 120).

    Method: exact evaluation of the log posterior on a grid in (mu, log sigma) for each nu node,
    summed with the nu prior masses. A coarse 41 x 31 grid starts from the data's mean/median +- 8
    standard errors and widens until the marginal posterior at its edges is below 1e-7 of its
    peak; the final ``n_mu`` x ``n_sigma`` grid covers the region holding the mass. ``edge_mass``
    reports the final relative edge density (small = the grid holds the posterior).

    ``mu`` is the *location* of the t model: for symmetric differences it is the mean difference;
    with skewed differences it sits nearer the median (robustness is the point of the model).

    Returns ``mean``, ``ci_low``, ``ci_high`` (equal-tailed ``level`` credible interval),
    ``prob_positive`` = P(mu > 0 | data), ``nu_mean`` (posterior mean of nu), ``edge_mass``."""
    d = np.asarray(differences, dtype=float)
    if d.ndim != 1 or d.size < MIN_PAIRS:
        raise ValueError(f"differences must be 1-d with >= {MIN_PAIRS} values, got shape {d.shape}")
    if not np.isfinite(d).all():
        i = int(np.argmax(~np.isfinite(d)))
        raise ValueError(f"differences must be finite, got {d[i]!r} at index {i}")
    lvl = check_probability_open(level, "level")
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        raise ValueError(
            f"all differences equal {d[0]!r}: the Student-t scale is zero, no posterior"
        )
    med = float(np.median(d))
    mad = 1.4826 * float(np.median(np.abs(d - med)))
    small = mad if mad > 0.0 else sd
    se = sd / math.sqrt(d.size)
    mean = float(d.mean())
    mu_lo, mu_hi = min(mean, med) - 8 * se, max(mean, med) + 8 * se
    ls_lo, ls_hi = math.log(small / 20.0), math.log(10.0 * sd)
    prior_sd = 10.0 * sd
    refined = False
    for _ in range(12):
        m_, s_ = (n_mu, n_sigma) if refined else (41, 31)  # coarse search, then the final grid
        mu = np.linspace(mu_lo, mu_hi, m_)
        ls = np.linspace(ls_lo, ls_hi, s_)
        lp = _grid_loglik(d, mu, ls, prior_sd)
        w = np.exp(lp - lp.max())
        pm = w.sum(axis=(0, 2))
        ps = w.sum(axis=(0, 1))
        pm_rel, ps_rel = pm / pm.max(), ps / ps.max()
        grew = False
        tol = 1e-5 if refined else 1e-7
        if pm_rel[0] > tol:
            mu_lo, grew = mu_lo - (mu_hi - mu_lo), True
        if pm_rel[-1] > tol:
            mu_hi, grew = mu_hi + (mu_hi - mu_lo), True
        if ps_rel[0] > tol:
            ls_lo, grew = ls_lo - 2.0, True
        if ps_rel[-1] > tol:
            ls_hi, grew = ls_hi + 2.0, True
        if grew:
            continue
        if refined:
            break
        im = np.flatnonzero(pm_rel > 1e-9)
        js = np.flatnonzero(ps_rel > 1e-9)
        mu_lo, mu_hi = mu[max(im[0] - 1, 0)], mu[min(im[-1] + 1, m_ - 1)]
        ls_lo, ls_hi = ls[max(js[0] - 1, 0)], ls[min(js[-1] + 1, s_ - 1)]
        refined = True
    edge = float(max(pm_rel[0], pm_rel[-1], ps_rel[0], ps_rel[-1]))
    p = pm / pm.sum()
    # cumulative distribution at the cell boundaries (each node holds the mass of its cell)
    step = mu[1] - mu[0]
    bounds = np.concatenate([[mu[0] - step / 2], mu + step / 2])
    cdf = np.concatenate([[0.0], np.cumsum(p)])
    q_lo, q_hi = (1.0 - lvl) / 2.0, (1.0 + lvl) / 2.0
    nu_post = w.sum(axis=(1, 2))
    return {
        "mean": float(p @ mu),
        "ci_low": float(np.interp(q_lo, cdf, bounds)),
        "ci_high": float(np.interp(q_hi, cdf, bounds)),
        "prob_positive": float(1.0 - np.interp(0.0, bounds, cdf)),
        "nu_mean": float(nu_post @ NU_NODES / nu_post.sum()),
        "edge_mass": edge,
    }


def _pnl(result: object, step: int, which: str) -> float:
    if not isinstance(result, Mapping):
        raise TypeError(
            f"step {step}: {which} strategy's process() must return a mapping with 'pnl', "
            f"got {type(result).__name__}"
        )
    if "pnl" not in result:
        raise ValueError(
            f"step {step}: {which} strategy's result has no 'pnl' (keys {list(result)})"
        )
    v = result["pnl"]
    if isinstance(v, bool | np.bool_) or not isinstance(v, Real):
        raise TypeError(
            f"step {step}: {which} strategy's pnl must be a real number, "
            f"got {type(v).__name__} {v!r}"
        )
    if not math.isfinite(float(v)):
        raise ValueError(f"step {step}: {which} strategy's pnl must be finite, got {v!r}")
    return float(v)


class _Replay:
    """A recorded per-day PnL stream as a strategy: ``process(day_index)`` returns that day."""

    def __init__(self, days: list[tuple[object, float]]) -> None:
        self._days = days

    def process(self, step: int) -> dict[str, object]:
        date, pnl = self._days[step]
        return {"pnl": pnl, "date": date}


class StrategyABTest:
    """Run a control and a test strategy on the same market data and compare their per-step pnl.

    Each strategy needs a callable ``process(data) -> {'pnl': float, ...}``; ``data`` is one item
    of the market data (a bar, a day). Results accumulate over calls to :meth:`run_parallel` in
    ``self.results['control']`` / ``self.results['test']`` (the strategies' result mappings)."""

    def __init__(self, control_strategy: object, test_strategy: object) -> None:
        for name, s in (("control_strategy", control_strategy), ("test_strategy", test_strategy)):
            if not callable(getattr(s, "process", None)):
                raise TypeError(
                    f"{name} must have a callable process(data) method, got {type(s).__name__}"
                )
        self.control = control_strategy
        self.test = test_strategy
        self.results: dict[str, list[Mapping]] = {"control": [], "test": []}

    @classmethod
    def from_engine(cls, engine: object) -> StrategyABTest:
        """The seed plan's A/B on live events: the engine's live configuration is the test, its
        shadow the control (:class:`~bayes_mem.live.engine.TradingEngine` with ``shadow=``); each
        closed day's realised PnL of both (currency) is one step, fed through
        :meth:`run_parallel`."""
        pnl = getattr(engine, "daily_pnl", None)
        if not callable(pnl) or getattr(engine, "shadow", None) is None:
            raise TypeError("from_engine needs a TradingEngine running a shadow configuration")
        streams = pnl()
        live = streams[engine.config.name]
        shadow = streams[engine.shadow.config.name]
        ab = cls(_Replay(shadow), _Replay(live))
        ab.run_parallel(range(len(live)))
        return ab

    def run_parallel(self, market_data: Iterable, time_period: int | None = None) -> int:
        """Feed each item of ``market_data`` to both strategies (control first) and store both
        results. ``time_period``: use at most the first ``time_period`` items (a positive int; a
        shorter ``market_data`` is used whole); ``None`` uses all. Returns the number of steps
        added. All or nothing: on an error (bad result at some step) nothing is stored and the
        error names the step (0-based within this call) and the strategy."""
        if time_period is not None:
            if isinstance(time_period, bool | np.bool_) or not isinstance(
                time_period, int | np.integer
            ):
                raise TypeError(
                    f"time_period must be a positive int (number of steps) or None, "
                    f"got {type(time_period).__name__} {time_period!r}"
                )
            if time_period < 1:
                raise ValueError(f"time_period must be >= 1 step, got {time_period!r}")
        try:
            items = iter(market_data)
        except TypeError:
            raise TypeError(
                f"market_data must be iterable, got {type(market_data).__name__}"
            ) from None
        new_c: list[Mapping] = []
        new_t: list[Mapping] = []
        for step, data in enumerate(items):
            if time_period is not None and step >= time_period:
                break
            rc = self.control.process(data)
            _pnl(rc, step, "control")
            rt = self.test.process(data)
            _pnl(rt, step, "test")
            new_c.append(rc)
            new_t.append(rt)
        self.results["control"].extend(new_c)
        self.results["test"].extend(new_t)
        return len(new_c)

    def pnl(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-step pnl arrays ``(control, test)``."""
        c = np.array([float(r["pnl"]) for r in self.results["control"]])
        t = np.array([float(r["pnl"]) for r in self.results["test"]])
        return c, t

    def statistical_significance(
        self, alpha: float = 0.05, *, periods_per_year: float = 252
    ) -> dict[str, object]:
        """Compare test with control on the stored steps (at least 3).

        - ``t_statistic``, ``p_value``: the plan's ``scipy.stats.ttest_ind(test, control)`` (pooled
          variance, two-sided). It treats the two series as independent samples and *ignores the
          pairing* by day: with a shared market component it is conservative (low power).
        - ``significant``: ``p_value < alpha`` (the plan's test).
        - ``improvement``: ``(mean(test) - mean(control)) / (std(control) + 1e-8)`` (std ddof 0),
          a standardised effect in control-sd units (the plan's).
        - ``paired``: ``{'t', 'p', 'mean_difference', 'significant'}`` from
          ``scipy.stats.ttest_rel(test, control)`` on the same days.
        - ``sharpe_difference``: Ledoit-Wolf HAC test of SR(test) = SR(control) (per-period
          units, :func:`sharpe_difference_test` fields as a dict); ``None`` with fewer than 10
          steps or a constant series (reason in ``sharpe_difference_note``).
        - ``sharpe_control``, ``sharpe_test``: annualised with ``periods_per_year`` (None if a
          series is constant).
        - ``bayes``: :func:`student_t_posterior` of the mean paired difference with a ``1 - alpha``
          credible interval; ``prob_positive`` = P(test beats control).
        Raises ValueError with fewer than 3 steps or when the t statistics are undefined
        (constant series), never returns NaN."""
        a = _check_alpha(alpha)
        c, t = self.pnl()
        if c.size < MIN_PAIRS:
            raise ValueError(
                f"need at least {MIN_PAIRS} paired steps for the tests, have {c.size} "
                f"(call run_parallel first)"
            )
        if np.std(c) == 0.0 and np.std(t) == 0.0:
            raise ValueError("both strategies' pnl are constant: the t-test is undefined")
        diff = t - c
        if np.std(diff) == 0.0:
            raise ValueError(
                f"the per-step differences are all {float(diff[0])!r}: the paired t-test is "
                "undefined"
            )
        ind = stats.ttest_ind(t, c)
        rel = stats.ttest_rel(t, c)
        out: dict[str, object] = {
            "t_statistic": float(ind.statistic),
            "p_value": float(ind.pvalue),
            "significant": bool(ind.pvalue < a),
            "improvement": float((np.mean(t) - np.mean(c)) / (np.std(c) + 1e-8)),
            "n": int(c.size),
            "paired": {
                "t": float(rel.statistic),
                "p": float(rel.pvalue),
                "mean_difference": float(diff.mean()),
                "significant": bool(rel.pvalue < a),
            },
        }
        const = np.std(c) == 0.0 or np.std(t) == 0.0
        out["sharpe_control"] = (
            None if const else sharpe_ratio(c, periods_per_year=periods_per_year)
        )
        out["sharpe_test"] = None if const else sharpe_ratio(t, periods_per_year=periods_per_year)
        if c.size < MIN_SHARPE_PAIRS or const:
            out["sharpe_difference"] = None
            out["sharpe_difference_note"] = (
                f"needs >= {MIN_SHARPE_PAIRS} steps, have {c.size}"
                if c.size < MIN_SHARPE_PAIRS
                else "a constant pnl series has no Sharpe ratio"
            )
        else:
            res = sharpe_difference_test(t, c, method="hac", level=1.0 - a)
            out["sharpe_difference"] = dataclasses.asdict(res)
        out["bayes"] = student_t_posterior(diff, level=1.0 - a)
        return out


def compare_variants(
    control_pnl: object,
    variants: Mapping[str, object],
    n_trials: int | None = None,
    *,
    trial_sr_variance: float | None = None,
    periods_per_year: float = 252,
) -> dict[str, dict[str, float]]:
    """Each variant's annualised ``sharpe``, per-period ``sharpe_per_period``, ``psr`` (P(true
    SR > 0)) and ``dsr``: the deflated Sharpe ratio for ``n_trials`` trials (default
    ``len(variants)``, the candidates tried), with the cross-trial variance of per-period Sharpe
    ratios estimated from the variants (ddof 1) unless ``trial_sr_variance`` is given. Also
    ``sharpe_diff_p``: Ledoit-Wolf HAC p-value of SR(variant) = SR(control) (paired, same
    length as ``control_pnl``; None below 10 periods). Key ``"control"`` holds the control's
    ``sharpe`` and ``psr``."""
    if not isinstance(variants, Mapping) or len(variants) == 0:
        raise ValueError(
            f"variants must be a non-empty dict name -> pnl array, got {variants!r:.80}"
        )
    c = _series(control_pnl, "control_pnl", min_len=MIN_PAIRS)
    arrs: dict[str, np.ndarray] = {}
    for name, v in variants.items():
        a = _series(v, f"variant {name!r} pnl", min_len=MIN_PAIRS)
        if a.shape != c.shape:
            raise ValueError(
                f"variant {name!r} must be paired with control (shape {c.shape}), got {a.shape}"
            )
        arrs[name] = a
    if n_trials is None:
        n = len(arrs)
    else:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer):
            raise TypeError(f"n_trials must be an int, got {type(n_trials).__name__} {n_trials!r}")
        if n_trials < len(arrs):
            raise ValueError(f"n_trials {n_trials} is below the number of variants {len(arrs)}")
        n = int(n_trials)
    srs = {k: sharpe_ratio(a, periods_per_year=1) for k, a in arrs.items()}
    if trial_sr_variance is None:
        if len(srs) >= 2:
            var = float(np.var(list(srs.values()), ddof=1))
        elif n == 1:
            var = 0.0
        else:
            raise ValueError(
                "one variant cannot estimate the cross-trial Sharpe variance: pass "
                "trial_sr_variance"
            )
    else:
        var = trial_sr_variance  # validated by deflated_sharpe_ratio
    out: dict[str, dict[str, float]] = {
        "control": {
            "sharpe": sharpe_ratio(c, periods_per_year=periods_per_year),
            "psr": probabilistic_sharpe_ratio(c),
        }
    }
    for k, a in arrs.items():
        out[k] = {
            "sharpe": sharpe_ratio(a, periods_per_year=periods_per_year),
            "sharpe_per_period": srs[k],
            "psr": probabilistic_sharpe_ratio(a),
            "dsr": deflated_sharpe_ratio(a, n, var),
            "n_trials": n,
            "sharpe_diff_p": (
                sharpe_difference_test(a, c).p_value if c.size >= MIN_SHARPE_PAIRS else None
            ),
        }
    return out
