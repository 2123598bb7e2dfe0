"""Empirical-Bayes estimate of the regime detector's hazard rate and Normal-Gamma prior.

The live detector (:class:`bayes_mem.live.changepoint.NormalGammaBOCPD`) needs a hazard ``h``
(probability of a regime change after each observation) and a Normal-Gamma prior of a regime's
mean and precision. Both are estimated here from a history of standardised residuals by
maximising the detector's own marginal likelihood, ``sum_t log p(x_t | x_1..x_{t-1})``, which
the recursion gives exactly (up to the run-length truncation) with the regimes summed out:

1. a coarse grid over the hazard, ``alpha0`` and ``kappa0`` (``beta0`` set so that the prior
   mean precision matches the data's, ``mu0`` the data's mean), every configuration run as one
   stream of a single vectorised detector pass per series;
2. L-BFGS-B from the best grid point over all five, in unconstrained coordinates (logit hazard,
   logs of kappa0, alpha0 and beta0, mu0), with central-difference gradients computed in the
   same kind of vectorised pass (11 configurations at once).

numpy/scipy only (it reuses the live detector); the result is a JSON-ready dict for the prior
set. Estimates that end on a bound are reported in ``at_bound``: a flat likelihood in that
direction, worth a look before publishing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize

from bayes_mem.live.changepoint import NormalGammaBOCPD
from bayes_mem.live.validate import check_int

SCHEMA = "bayes_mem.regime_prior/1"
PARAMS = ("hazard", "mu0", "kappa0", "alpha0", "beta0")
DEFAULT_HAZARDS = (1 / 1000, 1 / 500, 1 / 250, 1 / 100, 1 / 50, 1 / 20)
# bounds of the optimisation, in natural units
BOUNDS = {
    "hazard": (1e-5, 0.5),
    "mu0": (-10.0, 10.0),
    "kappa0": (1e-3, 1e3),
    "alpha0": (0.05, 1e3),
    "beta0": (1e-4, 1e4),
}


def _to_theta(p: np.ndarray) -> np.ndarray:
    """(hazard, mu0, kappa0, alpha0, beta0) -> unconstrained coordinates, row-wise."""
    h = p[..., 0]
    return np.stack(
        [np.log(h / (1 - h)), p[..., 1], np.log(p[..., 2]), np.log(p[..., 3]), np.log(p[..., 4])],
        axis=-1,
    )


def _from_theta(t: np.ndarray) -> np.ndarray:
    h = 1 / (1 + np.exp(-t[..., 0]))
    return np.stack([h, t[..., 1], np.exp(t[..., 2]), np.exp(t[..., 3]), np.exp(t[..., 4])], -1)


def log_evidence(
    series: Sequence[np.ndarray], configs: np.ndarray, max_run_length: int
) -> np.ndarray:
    """Total log marginal likelihood (natural log) of all ``series`` under each configuration
    (rows of ``configs``: hazard, mu0, kappa0, alpha0, beta0), one vectorised pass per series.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal(200)  # standardised residuals
    >>> configs = np.array([[0.01, 0.0, 1.0, 2.0, 2.0],   # hazard, mu0, kappa0, alpha0, beta0
    ...                     [0.2, 0.0, 1.0, 2.0, 2.0]])  # frequent regime changes
    >>> np.round(log_evidence([x], configs, max_run_length=100), 2)
    array([-281.81, -296.86])
    """
    configs = np.atleast_2d(np.asarray(configs, dtype=float))
    g = configs.shape[0]
    total = np.zeros(g)
    prior = {
        "mu0": configs[:, 1],
        "kappa0": configs[:, 2],
        "alpha0": configs[:, 3],
        "beta0": configs[:, 4],
    }
    if g == 1:
        prior = {k: float(v[0]) for k, v in prior.items()}
    hazard = configs[:, 0] if g > 1 else float(configs[0, 0])
    for x in series:
        det = NormalGammaBOCPD(g, prior, hazard=hazard, max_run_length=max_run_length, k=1)
        if g == 1:
            for v in x.tolist():
                total += det.update(v).log_pred
        else:
            col = np.empty(g)
            for v in x.tolist():
                col.fill(v)
                total += det.update(col).log_pred
    return total


def _check_series(residuals: Any) -> list[np.ndarray]:
    if isinstance(residuals, np.ndarray):
        if residuals.ndim == 1:
            items = [residuals]
        elif residuals.ndim == 2:
            items = [residuals[:, j] for j in range(residuals.shape[1])]  # (days, symbols)
        else:
            raise ValueError(f"residuals must be 1-d or (days, symbols), got {residuals.shape}")
    elif isinstance(residuals, Sequence) and not isinstance(residuals, str):
        items = list(residuals)
    else:
        raise TypeError(
            f"residuals must be an array or a sequence of arrays, not {residuals!r:.80}"
        )
    out = []
    for i, x in enumerate(items):
        a = np.asarray(x)
        if a.dtype.kind not in "iuf" or a.ndim != 1:
            raise ValueError(f"series {i} must be a 1-d array of numbers, got {a.shape} {a.dtype}")
        a = a.astype(float)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"series {i} has non-finite values (drop missing days first)")
        if a.size < 20:
            raise ValueError(f"series {i} is too short to estimate from ({a.size} < 20)")
        out.append(a)
    if not out:
        raise ValueError("need at least one series")
    return out


def estimate_regime_prior(
    residuals: np.ndarray | Sequence[np.ndarray],
    *,
    hazards: Sequence[float] = DEFAULT_HAZARDS,
    max_run_length: int = 300,
    refine: bool = True,
    max_iter: int = 60,
) -> dict[str, Any]:
    """Estimate the hazard and Normal-Gamma prior by empirical Bayes (see the module docstring).

    ``residuals``: standardised residuals (unit-free), a 1-d series, a (days, symbols) array
    (each column a series) or a list of 1-d series of any lengths; no NaN. ``hazards``: the
    grid's hazard values, per observation. ``refine``: run the L-BFGS-B stage.

    Returns ``{"schema", "method", "hazard", "expected_run_length", "normal_gamma": {"mu0",
    "kappa0", "alpha0", "beta0"}, "max_run_length", "log_evidence", "log_evidence_per_obs",
    "n_obs", "n_series", "at_bound", "converged", "grid_best"}``, plain JSON types;
    ``NormalGammaBOCPD.from_prior_set(symbols, result)`` builds the live detector from it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = np.concatenate([rng.normal(0.0, 1.0, 300), rng.normal(1.5, 1.0, 300)])  # one change
    >>> est = estimate_regime_prior(x, refine=False)  # the grid stage only
    >>> est["hazard"], round(est["expected_run_length"]), est["n_obs"], est["at_bound"]
    (0.004, 250, 600, [])
    >>> {k: round(v, 3) for k, v in est["normal_gamma"].items()}
    {'mu0': 0.706, 'kappa0': 1.0, 'alpha0': 3.0, 'beta0': 4.653}
    """
    series = _check_series(residuals)
    r = check_int(max_run_length, "max_run_length", minimum=2)
    hz = np.asarray(hazards, dtype=float)
    if hz.ndim != 1 or hz.size == 0 or not np.all((hz > 0) & (hz < 1)):
        raise ValueError(f"hazards must be values in (0, 1), got {hazards!r}")
    allx = np.concatenate(series)
    n_obs = int(allx.size)
    mean = float(allx.mean())
    var = float(allx.var()) or 1.0

    # stage 1: grid (beta0 = alpha0 * var, so E[precision] = 1 / var)
    grid = np.array(
        [
            (h, mean, k0, a0, a0 * var)
            for h in hz
            for a0 in (1.0, 3.0, 10.0)
            for k0 in (0.1, 1.0, 10.0)
        ]
    )
    ev = log_evidence(series, grid, r)
    best = grid[int(np.argmax(ev))]
    result = best
    best_ev = float(ev.max())
    converged = None

    if refine:
        lo = _to_theta(np.array([BOUNDS[p][0] for p in PARAMS]))
        hi = _to_theta(np.array([BOUNDS[p][1] for p in PARAMS]))
        step = 1e-4

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            pts = np.repeat(theta[None, :], 11, axis=0)
            for i in range(5):
                pts[1 + 2 * i, i] += step
                pts[2 + 2 * i, i] -= step
            e = log_evidence(series, _from_theta(pts), r)
            grad = (e[1::2] - e[2::2]) / (2 * step)
            return -float(e[0]) / n_obs, -grad / n_obs

        start = np.clip(_to_theta(best), lo + 1e-9, hi - 1e-9)
        fit = optimize.minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi, strict=True)),
            options={"maxiter": check_int(max_iter, "max_iter", minimum=1)},
        )
        cand_ev = -float(fit.fun) * n_obs
        if cand_ev >= best_ev:
            result, best_ev = _from_theta(fit.x), cand_ev
        converged = bool(fit.success)

    values = dict(zip(PARAMS, (float(v) for v in result), strict=True))
    at_bound = [
        p
        for p in PARAMS
        if p != "mu0"
        and (
            math.isclose(values[p], BOUNDS[p][0], rel_tol=1e-3)
            or math.isclose(values[p], BOUNDS[p][1], rel_tol=1e-3)
        )
    ]
    return {
        "schema": SCHEMA,
        "method": "empirical_bayes",
        "hazard": values["hazard"],
        "expected_run_length": 1.0 / values["hazard"],
        "normal_gamma": {p: values[p] for p in ("mu0", "kappa0", "alpha0", "beta0")},
        "max_run_length": r,
        "log_evidence": best_ev,
        "log_evidence_per_obs": best_ev / n_obs,
        "n_obs": n_obs,
        "n_series": len(series),
        "at_bound": at_bound,
        "converged": converged,
        "grid_best": dict(zip(PARAMS, (float(v) for v in best), strict=True)),
    }
