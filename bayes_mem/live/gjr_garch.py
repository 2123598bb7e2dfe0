"""GJR-GARCH(1,1) with Hansen skewed-t innovations, on daily log returns (fractions, 0.01 = 1%).

    r_t = mu + eps_t,   eps_t = sigma_t z_t,   z_t ~ skew-t(nu, lam) with mean 0 and variance 1
    sigma2_{t+1} = omega + (alpha + gamma 1{eps_t < 0}) eps_t^2 + beta sigma2_t

:class:`GarchDraws` holds S draws of the parameters of one symbol (posterior draws from the nightly
fit, or the Laplace approximation of :func:`fit_laplace`). Every function is vectorised over draws.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import optimize, signal, special

from bayes_mem.live._validate import as_float_array
from bayes_mem.live.skewt import SkewT
from bayes_mem.live.tail_table import NU_MIN

# Tail weight bounded below by NU_MIN (2.1): the innovations' variance must exist, and the live
# tables cover nu >= NU_MIN. The nightly job's prior on nu is truncated there too.

PARAMS = ("mu", "omega", "alpha", "gamma", "beta", "nu", "lam")


@dataclass(frozen=True)
class GarchDraws:
    """S parameter draws of one symbol's GJR-GARCH(1,1)-skew-t model (daily log returns)."""

    mu: np.ndarray
    omega: np.ndarray
    alpha: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    nu: np.ndarray
    lam: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for f in fields(self):
            # numbers only: "0.1" or True are refused, not converted
            v = np.atleast_1d(as_float_array(getattr(self, f.name), f.name))
            if v.ndim != 1:
                raise ValueError(f"{f.name} must be a 1-d array of draws, got shape {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"{f.name} has non-finite draws")
            arrays[f.name] = v
        sizes = {v.size for v in arrays.values()}
        if len(sizes) != 1:
            raise ValueError(f"all parameters need the same number of draws, got {sorted(sizes)}")
        a = arrays
        checks = [
            ("omega > 0", a["omega"] > 0),
            ("alpha >= 0", a["alpha"] >= 0),
            ("beta >= 0", a["beta"] >= 0),
            ("alpha + gamma >= 0", a["alpha"] + a["gamma"] >= 0),
            ("alpha + beta < 1", a["alpha"] + a["beta"] < 1),
            # persistence, as the fits define it (a symmetric shock is negative half the time):
            # at 1 or more the variance has no long-run level and grows without bound
            ("alpha + gamma / 2 + beta < 1", a["alpha"] + a["gamma"] / 2 + a["beta"] < 1),
            (f"nu >= {NU_MIN}", a["nu"] >= NU_MIN),
            ("-1 < lam < 1", np.abs(a["lam"]) < 1),
        ]
        for what, ok in checks:
            if not np.all(ok):
                bad = int(np.argmin(ok))
                raise ValueError(f"draw {bad} violates {what}: {self._describe(a, bad)}")
        for name, v in arrays.items():
            v.setflags(write=False)
            object.__setattr__(self, name, v)

    @staticmethod
    def _describe(a: dict[str, np.ndarray], i: int) -> str:
        return ", ".join(f"{k}={a[k][i]:.6g}" for k in PARAMS)

    @property
    def size(self) -> int:
        return self.mu.size

    def innovations(self) -> SkewT:
        return SkewT.from_params(self.nu, self.lam)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name).tolist() for name in PARAMS}

    @classmethod
    def from_json(cls, data: Any) -> GarchDraws:
        if not isinstance(data, dict) or set(data) != set(PARAMS):
            raise ValueError(f"GarchDraws JSON needs exactly the keys {PARAMS}")
        return cls(**{k: np.asarray(data[k], dtype=float) for k in PARAMS})

    def subset(self, index: np.ndarray) -> GarchDraws:
        return GarchDraws(**{k: getattr(self, k)[index] for k in PARAMS})


def variance_step(
    sigma2: np.ndarray,
    eps: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    """One step of the GJR recursion (all arguments broadcast)."""
    return omega + (alpha + gamma * (eps < 0.0)) * (eps * eps) + beta * sigma2


def variance_path(
    returns: np.ndarray, draws: GarchDraws, sigma2_0: np.ndarray | float
) -> np.ndarray:
    """Conditional variances ``sigma2_t`` for t = 0..T (T + 1 values: the last is the one-day-ahead
    forecast after the final return), for every draw: shape (S, T + 1).

    The recursion is linear in sigma2 given the returns, so it runs as an IIR filter."""
    r = np.asarray(returns, dtype=float)
    eps = r[None, :] - draws.mu[:, None]
    shock = (draws.alpha[:, None] + draws.gamma[:, None] * (eps < 0)) * eps**2
    drive = draws.omega[:, None] + shock  # drives sigma2_{t+1}
    out = np.empty((draws.size, r.size + 1))
    s0 = np.broadcast_to(np.asarray(sigma2_0, dtype=float), (draws.size,))
    out[:, 0] = s0
    for s in range(draws.size):  # lfilter per draw: beta differs by draw
        zi = np.array([draws.beta[s] * s0[s]])
        out[s, 1:], _ = signal.lfilter([1.0], [1.0, -draws.beta[s]], drive[s], zi=zi)
    return out


def log_likelihood(
    returns: np.ndarray, draws: GarchDraws, sigma2_0: float | None = None
) -> np.ndarray:
    """Log-likelihood of ``returns`` per draw; variance starts at the sample variance by default."""
    r = np.asarray(returns, dtype=float)
    s0 = float(np.var(r)) if sigma2_0 is None else sigma2_0
    sig2 = variance_path(r, draws, s0)[:, :-1]
    z = (r[None, :] - draws.mu[:, None]) / np.sqrt(sig2)
    inn = SkewT.from_params(draws.nu[:, None], draws.lam[:, None])
    return np.sum(np.log(inn.pdf(z)) - 0.5 * np.log(sig2), axis=1)


def simulate(
    draws: GarchDraws, n_days: int, rng: np.random.Generator, sigma2_0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_days`` returns per draw; returns (returns (S, n), sigma2 (S, n + 1))."""
    inn = draws.innovations()
    kappa = 0.5  # start at the symmetric-innovation unconditional variance
    uncond = draws.omega / (1.0 - draws.alpha - kappa * draws.gamma - draws.beta)
    sig2 = np.empty((draws.size, n_days + 1))
    sig2[:, 0] = (
        np.where(uncond > 0, uncond, draws.omega / (1 - draws.beta))
        if sigma2_0 is None
        else sigma2_0
    )
    z = inn.ppf(rng.random((n_days, draws.size)))
    r = np.empty((draws.size, n_days))
    for t in range(n_days):
        eps = np.sqrt(sig2[:, t]) * z[t]
        r[:, t] = draws.mu + eps
        sig2[:, t + 1] = variance_step(
            sig2[:, t], eps, draws.omega, draws.alpha, draws.gamma, draws.beta
        )
    return r, sig2


# ---------------------------------------------------------------------------- fitting (scipy only)
# The fit runs on the returns divided by their sample sd (unit variance: good conditioning at any
# scale, and exactly scale-equivariant: returns times c give mu and sqrt(omega) times c and the
# same other parameters); the parameters are converted back to the returns' units.
# Sample sd of the daily log returns accepted: a units check (fractions, 0.01 = 1%), not a limit
# of the optimiser.
_SD_RANGE = (1e-6, 1.0)
# Tail weight and persistence of the fit are bounded through logistic maps, not penalty walls:
# at a wall the finite-difference Hessian blew up and the Laplace draws collapsed to one point
# (seen: NASDAQ 1999-2000 stalled at nu = 200, WTI at the persistence bound, draws equal to
# 7 digits). Near a bound the fit now gets a wide, honest spread instead.
_NU_MAX = 200.0
_MAX_PERSISTENCE = 0.999


def _unpack(theta: np.ndarray) -> dict[str, np.ndarray]:
    """Unconstrained fit parameters -> model parameters. Persistence ``P = alpha + gamma / 2 +
    beta`` in (0, _MAX_PERSISTENCE) and its split (beta's share, then alpha's share of the
    shock part) go through logistic maps, so every point is a valid, covariance-stationary model
    and the likelihood surface has no penalty walls (a wall blows up the Laplace Hessian)."""
    mu, lomega, lpers, lbeta_share, lalpha_share, lnu, alam = np.moveaxis(
        np.atleast_2d(theta), -1, 0
    )
    pers = _MAX_PERSISTENCE * special.expit(lpers)
    beta = pers * special.expit(lbeta_share)
    shock = pers - beta  # alpha + gamma / 2
    alpha = shock * special.expit(lalpha_share)
    return {
        "mu": mu,
        "omega": np.exp(lomega),
        "alpha": alpha,
        "gamma": 2.0 * (shock - alpha),
        "beta": beta,
        "nu": NU_MIN + (_NU_MAX - NU_MIN) * special.expit(lnu),
        "lam": np.tanh(alam),
    }


def _theta0(r_std: np.ndarray) -> np.ndarray:
    """Start of the fit (unit-variance returns): alpha 0.03, gamma 0.08, beta 0.9, nu 6."""
    alpha, gamma, beta = 0.03, 0.08, 0.9
    pers = alpha + gamma / 2 + beta
    return np.array(
        [
            np.mean(r_std),
            np.log(0.05),
            special.logit(pers / _MAX_PERSISTENCE),
            special.logit(beta / pers),
            special.logit(alpha / (pers - beta)),
            special.logit((6.0 - NU_MIN) / (_NU_MAX - NU_MIN)),
            0.0,
        ]
    )


# Weakly informative normal priors on the unconstrained parameters (unit-variance returns), in
# the order of _unpack: mean 0 +- 0.5 sd; omega 0.05 within a factor ~50; persistence 0.97,
# beta's share 0.93, alpha's share 0.5 and nu 6, each +- 1.5 on the logit scale; skew 0 +- 0.5.
# A year of data dominates them; on short or degenerate series they keep the mode away from
# flat ridges (omega -> 0 with beta -> 1 on 100 days) where the Laplace draws would explode.
_PRIOR_SD = np.array([0.5, 2.0, 1.5, 1.5, 1.5, 1.5, 0.5])


def _prior_mean() -> np.ndarray:
    return _theta0(np.zeros(1))


def _neg_log_posterior(theta: np.ndarray, r_std: np.ndarray, prior_mean: np.ndarray) -> float:
    draws = GarchDraws(**_unpack(theta))
    ll = float(log_likelihood(r_std, draws)[0])
    if not np.isfinite(ll):
        return 1e10
    return -ll + 0.5 * float(np.sum(((theta - prior_mean) / _PRIOR_SD) ** 2))


@dataclass(frozen=True)
class LaplaceFit:
    """Posterior mode and its Laplace (normal, in the unconstrained space) posterior
    approximation, for one symbol. ``mle`` keeps its name: the mode is the maximum-likelihood
    estimate up to the weak priors' pull, which a year of data makes negligible."""

    mle: GarchDraws  # one "draw": the MLE, in fraction units
    draws: GarchDraws  # S draws from the Laplace approximation, in fraction units
    log_likelihood: float
    converged: bool


def _rescale(p: dict[str, np.ndarray], sd: float) -> dict[str, np.ndarray]:
    """Parameters fitted on returns / sd back in the returns' units."""
    return {**p, "mu": p["mu"] * sd, "omega": p["omega"] * sd**2}


def fit_laplace(
    returns: np.ndarray, n_draws: int = 200, rng: np.random.Generator | int | None = None
) -> LaplaceFit:
    """Fit GJR-GARCH(1,1)-skew-t to daily log returns at the posterior mode (weakly informative
    priors on the unconstrained parameters, see ``_PRIOR_SD``) and draw ``n_draws`` parameter
    sets from the Laplace approximation there."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or r.size < 100:
        raise ValueError(f"need a 1-d series of at least 100 daily returns, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns contain NaN or inf")
    if np.var(r) == 0:
        raise ValueError("returns are constant: volatility is not identified")
    sd = float(np.std(r))
    if not _SD_RANGE[0] <= sd <= _SD_RANGE[1]:
        raise ValueError(
            f"returns have sample sd {sd:.3g}, outside {_SD_RANGE}: daily log returns as "
            "fractions (0.01 = 1%) are needed, the fit is not reliable at that scale"
        )
    rng = np.random.default_rng(rng)
    r_std = r / sd  # unit variance
    prior = _prior_mean()
    res = optimize.minimize(
        _neg_log_posterior,
        _theta0(r_std),
        args=(r_std, prior),
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-8},
    )
    res = optimize.minimize(_neg_log_posterior, res.x, args=(r_std, prior), method="BFGS")
    theta = res.x
    hess = _hessian(lambda th: _neg_log_posterior(th, r_std, prior), theta)
    cov = _inverse_pd(hess)
    sample = rng.multivariate_normal(theta, cov, size=n_draws)  # every draw is a valid model
    return LaplaceFit(
        mle=GarchDraws(**_rescale(_unpack(theta), sd)),
        draws=GarchDraws(**_rescale(_unpack(sample), sd)),
        # density of r = density of r / sd, divided by sd
        log_likelihood=float(log_likelihood(r_std, GarchDraws(**_unpack(theta)))[0])
        - r.size * np.log(sd),
        converged=bool(res.success) or np.all(np.abs(res.jac) < 1e-3),
    )


def _hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    n = x.size
    hess = np.empty((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            ei = np.zeros(n)
            ej = np.zeros(n)
            ei[i] = h
            ej[j] = h
            if i == j:
                v = (f(x + ei) - 2 * f0 + f(x - ei)) / h**2
            else:
                v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4 * h * h
                )
            hess[i, j] = hess[j, i] = v
    return hess


def _inverse_pd(hess: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric matrix with eigenvalues floored to keep it positive definite."""
    w, v = np.linalg.eigh((hess + hess.T) / 2)
    w = np.maximum(w, 1e-6 * max(w.max(), 1.0))
    return (v / w) @ v.T
