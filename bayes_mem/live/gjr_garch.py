"""GJR-GARCH(1,1) with Hansen skewed-t innovations, on daily log returns (fractions, 0.01 = 1%).

    r_t = mu + eps_t,   eps_t = sigma_t z_t,   z_t ~ skew-t(nu, lam) with mean 0 and variance 1
    sigma2_{t+1} = omega + (alpha + gamma 1{eps_t < 0}) eps_t^2 + beta sigma2_t

Constraints of every draw (:class:`GarchDraws` refuses others, naming the draw):

- ``omega > 0``, ``beta >= 0``;
- ``alpha >= 0`` and ``alpha + gamma >= 0``: the news impact of a positive and of a negative shock
  are non-negative. ``gamma`` itself may be negative (the inverse leverage effect of commodities:
  WTI 1987-1991 and 1993-1997, ``gamma`` about -0.09 in both ``arch`` and the Laplace fit);
- persistence ``P = alpha + kappa gamma + beta < 1`` with ``kappa = E[z^2 1{z < 0}]`` under the
  draw's skew-t (:func:`~bayes_mem.live.skewt.asymmetry_weight`): ``E[sigma2_{t+1}] = omega +
  P E[sigma2_t]``, so the long-run variance is ``omega / (1 - P)``. With skewed innovations
  ``kappa`` is not 1/2 (0.537 at nu = 6, lam = -0.1; 0.581 at nu = 5, lam = -0.2; up to 0.93 at
  nu = 2.1, lam = -0.5): the symmetric weight would accept non-stationary draws and misplace the
  long-run variance;
- ``nu >= NU_MIN`` (2.1), ``-1 < lam < 1``.

:class:`GarchDraws` holds S draws of the parameters of one symbol (posterior draws from the nightly
fit, or the Laplace approximation of :func:`fit_laplace`). Every function is vectorised over draws.

:func:`fit_laplace` refuses what it cannot fit, with the reason: stale series
(:class:`StaleSeriesError`: too many exactly-zero returns, or runs of them, or too few non-zero
ones; the likelihood is unbounded there, see :func:`stale_reason`) and fits that did not
converge or degenerated (:class:`LaplaceFitError`). Both are ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, signal, special

from bayes_mem.live.deprecation import warn_renamed
from bayes_mem.live.skewt import SkewT, asymmetry_weight
from bayes_mem.live.tail_table import NU_MIN
from bayes_mem.live.validate import as_float_array

# Tail weight bounded below by NU_MIN (2.1): the innovations' variance must exist, and the live
# tables cover nu >= NU_MIN. The nightly job's prior on nu is truncated there too.

PARAMS = ("mu", "omega", "alpha", "gamma", "beta", "nu", "lam")


@dataclass(frozen=True)
class GarchDraws:
    """S parameter draws of one symbol's GJR-GARCH(1,1)-skew-t model (daily log returns).

    Examples
    --------
    Three draws (in practice: a posterior sample of a few hundred):

    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
    ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
    ...     lam=[-0.1, -0.05, -0.15],
    ... )
    >>> draws.size, draws.kappa.round(3).tolist()
    (3, [0.537, 0.517, 0.562])
    >>> draws.persistence.round(4).tolist()
    [0.9545, 0.9617, 0.9486]
    >>> (draws.long_run_variance**0.5).round(4).tolist()  # long-run daily volatility
    [0.0066, 0.0063, 0.007]
    >>> GarchDraws.from_dict(draws.to_dict()).beta.tolist()
    [0.86, 0.87, 0.85]
    """

    mu: np.ndarray
    omega: np.ndarray
    alpha: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    nu: np.ndarray
    lam: np.ndarray
    if TYPE_CHECKING:  # derived per draw in __post_init__ (not fields: no init, repr, eq)
        _kappa: np.ndarray = field(init=False)
        _persistence: np.ndarray = field(init=False)

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
            (f"nu >= {NU_MIN}", a["nu"] >= NU_MIN),
            ("-1 < lam < 1", np.abs(a["lam"]) < 1),
        ]
        for what, ok in checks:
            if not np.all(ok):
                bad = int(np.argmin(ok))
                raise ValueError(f"draw {bad} violates {what}: {self._describe(a, bad)}")
        kappa = asymmetry_weight(a["nu"], a["lam"])
        pers = a["alpha"] + kappa * a["gamma"] + a["beta"]
        if not np.all(pers < 1):
            bad = int(np.argmax(pers))
            raise ValueError(
                f"draw {bad} violates the persistence alpha + kappa gamma + beta < 1 "
                f"(kappa = E[z^2 1{{z<0}}] = {kappa[bad]:.4g}): it is {pers[bad]:.6g}, "
                f"non-stationary: {self._describe(a, bad)}"
            )
        for name, v in arrays.items():
            v.setflags(write=False)
            object.__setattr__(self, name, v)
        for name, v in (("_kappa", kappa), ("_persistence", pers)):
            v.setflags(write=False)
            object.__setattr__(self, name, v)

    @staticmethod
    def _describe(a: dict[str, np.ndarray], i: int) -> str:
        return ", ".join(f"{k}={a[k][i]:.6g}" for k in PARAMS)

    @property
    def size(self) -> int:
        """The number of draws S.

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> draws.size
        2
        """
        return self.mu.size

    @property
    def kappa(self) -> np.ndarray:
        """Per draw, the asymmetric term's weight ``E[z^2 1{z < 0}]`` under its skew-t.

        Examples
        --------
        Symmetric innovations (``lam = 0``) put half the unit variance below zero:

        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> draws.kappa.round(6).tolist()
        [0.5, 0.5]
        """
        return self._kappa

    @property
    def persistence(self) -> np.ndarray:
        """Per draw, ``alpha + kappa gamma + beta`` (< 1).

        Examples
        --------
        With kappa = 1/2: ``0.03 + 0.06 + 0.86`` = 0.95 and ``0.04 + 0.05 + 0.87`` = 0.96:

        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> draws.persistence.round(6).tolist()
        [0.95, 0.96]
        """
        return self._persistence

    @property
    def long_run_variance(self) -> np.ndarray:
        """Per draw, the unconditional variance ``omega / (1 - persistence)`` (returns' units
        squared).

        Examples
        --------
        ``2e-6 / (1 - 0.95)`` = 4e-5 and ``1.5e-6 / (1 - 0.96)`` = 3.75e-5 (daily variance):

        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> (draws.long_run_variance * 1e5).round(4).tolist()
        [4.0, 3.75]
        """
        return self.omega / (1.0 - self._persistence)

    def innovations(self) -> SkewT:
        """The draws' standardised skew-t innovation laws (one per draw, :class:`SkewT`).

        Examples
        --------
        Symmetric laws: the median is 0 and half the mass is below it:

        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> inn = draws.innovations()
        >>> inn.nu.tolist(), inn.cdf(0.0).round(6).tolist()
        ([6.0, 7.0], [0.5, 0.5])
        """
        return SkewT.from_params(self.nu, self.lam)

    def to_dict(self) -> dict[str, Any]:
        """The draws as a JSON-ready dict: each parameter of ``PARAMS``, a list of floats.

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> doc = draws.to_dict()
        >>> list(doc), doc["beta"]
        (['mu', 'omega', 'alpha', 'gamma', 'beta', 'nu', 'lam'], [0.86, 0.87])
        """
        return {name: getattr(self, name).tolist() for name in PARAMS}

    @classmethod
    def from_dict(cls, data: Any) -> GarchDraws:
        """Draws from :meth:`to_dict` output: exactly the keys of ``PARAMS``, every constraint
        checked again.

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> GarchDraws.from_dict(draws.to_dict()).persistence.round(6).tolist()
        [0.95, 0.96]
        >>> try:
        ...     GarchDraws.from_dict({**draws.to_dict(), "beta": [0.96, 0.87]})
        ... except ValueError as exc:
        ...     print(str(exc)[:60])
        draw 0 violates the persistence alpha + kappa gamma + beta <
        """
        if not isinstance(data, dict) or set(data) != set(PARAMS):
            raise ValueError(f"GarchDraws JSON needs exactly the keys {PARAMS}")
        return cls(**{k: np.asarray(data[k], dtype=float) for k in PARAMS})

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     doc = draws.to_json()
        >>> doc == draws.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("GarchDraws.to_json()", "GarchDraws.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> GarchDraws:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     back = GarchDraws.from_json(draws.to_dict())
        >>> back.to_dict() == draws.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("GarchDraws.from_json()", "GarchDraws.from_dict()")
        return cls.from_dict(data)

    def subset(self, index: np.ndarray) -> GarchDraws:
        """The draws at ``index`` (integer positions or a boolean mask) as new draws.

        Examples
        --------
        >>> draws = GarchDraws(mu=[3e-4, 2e-4], omega=[2e-6, 1.5e-6], alpha=[0.03, 0.04],
        ...                    gamma=[0.12, 0.10], beta=[0.86, 0.87], nu=[6.0, 7.0], lam=[0.0, 0.0])
        >>> sub = draws.subset([1, 1, 0])
        >>> sub.size, sub.beta.tolist()
        (3, [0.87, 0.87, 0.86])
        """
        return GarchDraws(**{k: getattr(self, k)[index] for k in PARAMS})


def variance_step(
    sigma2: np.ndarray,
    eps: np.ndarray,
    omega: np.ndarray,
    alpha: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    """One step of the GJR recursion (all arguments broadcast).

    Examples
    --------
    From ``sigma2 = 1e-4``, a -1% shock weighs ``alpha + gamma`` = 0.15 and a +1% one ``alpha``
    = 0.05: ``1e-6 + 0.15e-4 + 0.9e-4`` = 1.06e-4 against ``1e-6 + 0.05e-4 + 0.9e-4`` = 9.6e-5:

    >>> import numpy as np
    >>> step = variance_step(1e-4, np.array([-0.01, 0.01]), 1e-6, 0.05, 0.1, 0.9)
    >>> (step * 1e4).round(6).tolist()
    [1.06, 0.96]
    """
    return omega + (alpha + gamma * (eps < 0.0)) * (eps * eps) + beta * sigma2


def variance_path(
    returns: np.ndarray, draws: GarchDraws, sigma2_0: np.ndarray | float
) -> np.ndarray:
    """Conditional variances ``sigma2_t`` for t = 0..T (T + 1 values: the last is the one-day-ahead
    forecast after the final return), for every draw: shape (S, T + 1).

    The recursion is linear in sigma2 given the returns, so it runs as an IIR filter.

    Examples
    --------
    Returns equal to ``mu`` are zero shocks: ``sigma2_{t+1} = omega + beta sigma2_t``, so from
    1e-4: ``2e-6 + 0.86e-4`` = 8.8e-5, then ``2e-6 + 0.86 * 8.8e-5`` = 7.768e-5:

    >>> import numpy as np
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> (variance_path(np.array([3e-4, 3e-4]), draws, 1e-4) * 1e5).round(6).tolist()
    [[10.0, 8.8, 7.768]]
    """
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
    """Log-likelihood of ``returns`` per draw; variance starts at the sample variance by default.

    Examples
    --------
    The sum over days of ``log f(z_t) - log(sigma_t) / 2``, checked against that sum written
    out (``f`` the skew-t density, ``z_t`` the standardised shocks):

    >>> import numpy as np
    >>> from bayes_mem.live.skewt import SkewT
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> r = np.array([-0.01, 0.005])
    >>> s2 = variance_path(r, draws, 1e-4)[0, :-1]
    >>> z = (r - 3e-4) / np.sqrt(s2)
    >>> by_hand = np.sum(np.log(SkewT.from_params(6.0, 0.0).pdf(z)) - 0.5 * np.log(s2))
    >>> log_likelihood(r, draws, 1e-4).round(6).tolist(), round(float(by_hand), 6)
    ([6.671166], 6.671166)
    """
    r = np.asarray(returns, dtype=float)
    s0 = float(np.var(r)) if sigma2_0 is None else sigma2_0
    sig2 = variance_path(r, draws, s0)[:, :-1]
    z = (r[None, :] - draws.mu[:, None]) / np.sqrt(sig2)
    inn = SkewT.from_params(draws.nu[:, None], draws.lam[:, None])
    return np.sum(np.log(inn.pdf(z)) - 0.5 * np.log(sig2), axis=1)


def simulate(
    draws: GarchDraws, n_days: int, rng: np.random.Generator, sigma2_0: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_days`` returns per draw; returns (returns (S, n), sigma2 (S, n + 1)). The
    variance starts at ``sigma2_0``, by default at each draw's long-run variance.

    Examples
    --------
    Five days of one draw, starting at its long-run variance ``2e-6 / (1 - 0.95)`` = 4e-5:

    >>> import numpy as np
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> returns, sigma2 = simulate(draws, 5, np.random.default_rng(0))
    >>> returns.shape, sigma2.shape, round(float(sigma2[0, 0]) * 1e5, 6)
    ((1, 5), (1, 6), 4.0)
    >>> returns.round(4).tolist()  # daily log returns
    [[0.0022, -0.0029, -0.0098, -0.0152, 0.0073]]
    """
    inn = draws.innovations()
    sig2 = np.empty((draws.size, n_days + 1))
    sig2[:, 0] = draws.long_run_variance if sigma2_0 is None else sigma2_0
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

# Stale series. A price that is not updated gives runs of exactly-zero log returns. With beta -> 0
# the variance after a zero day is omega, and as omega -> 0 each zero day that follows a zero day
# (a "repeat") gains -log(omega) / 2 of log-likelihood while each non-zero day that follows one
# (a "break") loses only ~(nu / 2) |log(omega)| at the tail-weight bound: once repeats outnumber
# NU_MIN (2.1) times the breaks the likelihood is unbounded, and the fit ran to omega ~1e-89,
# beta ~1e-50, nu = 2.1 (a real stock with 65% zero days then had an ES of 6,956 in log-return
# units). I.i.d. zeros have repeats / breaks = p / (1 - p), below 2.1 up to p = 0.68; runs of
# mean length L have L - 1. Measured on simulated GJR series with stale runs imposed (1,000
# days): runs of mean length 4 degenerated the fit from ~40% zero days, runs of 20-40 days from
# 5-6% (repeats on ~6% of the days); i.i.d. zeros up to 30% did not (nu is biased, from 6 to
# ~2.5, but the fit is regular). Refused as stale: more than MAX_ZERO_FRACTION zero returns;
# repeats above NU_MIN times the breaks on more than MAX_REPEATED_ZERO_FRACTION of the days
# (a single halt of a week or two is not refused); or fewer than MIN_INFORMATIVE_DAYS non-zero
# returns (with the fit's 100-return minimum the zero fraction already implies 75; the floor
# holds for any series stale_reason screens). "Zero" is |r| <= ZERO_RETURN (float noise of a
# repeated price). What passes and still degenerates is caught by the fit's own checks
# (LaplaceFitError).
MAX_ZERO_FRACTION = 0.25
MAX_REPEATED_ZERO_FRACTION = 0.02
MIN_INFORMATIVE_DAYS = 75
ZERO_RETURN = 1e-12
# A mode is degenerate (LaplaceFitError) when omega collapsed below this fraction of the sample
# variance or nu sits within NU_EDGE of NU_MIN (the logistic map's edge: > 4 prior sds out).
_OMEGA_COLLAPSE = 1e-8
_NU_EDGE = 0.01


class UnfitSeriesError(ValueError):
    """A return series :func:`fit_laplace` refuses; ``symbol`` names it (``None`` if unnamed).

    Examples
    --------
    The base of :class:`StaleSeriesError` and :class:`LaplaceFitError`, and a ``ValueError``:

    >>> err = UnfitSeriesError("returns of 'XYZ': too short", "XYZ")
    >>> err.symbol, isinstance(err, ValueError), issubclass(StaleSeriesError, UnfitSeriesError)
    ('XYZ', True, True)
    """

    def __init__(self, message: str, symbol: str | None = None) -> None:
        super().__init__(message)
        self.symbol = symbol


class StaleSeriesError(UnfitSeriesError):
    """Too many exactly-zero returns (stale prices) for a GJR-GARCH fit (see
    ``MAX_ZERO_FRACTION``).

    Examples
    --------
    Half the days without a price change (zero log return) is above ``MAX_ZERO_FRACTION``:

    >>> import numpy as np
    >>> returns = np.zeros(300)
    >>> returns[::2] = 0.01
    >>> err = stale_reason(returns, "XYZ")
    >>> isinstance(err, StaleSeriesError), err.zero_fraction, err.longest_run, err.n_informative
    (True, 0.5, 1, 150)
    """

    def __init__(
        self,
        symbol: str | None,
        zero_fraction: float,
        repeated_fraction: float,
        longest_run: int,
        n_informative: int,
    ) -> None:
        self.zero_fraction = zero_fraction
        self.repeated_fraction = repeated_fraction
        self.longest_run = longest_run
        self.n_informative = n_informative
        super().__init__(
            f"{_label(symbol)}: {zero_fraction:.1%} of the daily returns are zero, "
            f"{repeated_fraction:.1%} of the days repeat a zero (longest run {longest_run} "
            f"days; {n_informative} non-zero returns): stale prices, the GJR-GARCH likelihood "
            f"degenerates there; refused above {MAX_ZERO_FRACTION:.0%} zero returns, above "
            f"{MAX_REPEATED_ZERO_FRACTION:.0%} repeated zeros in runs (repeats > {NU_MIN} "
            f"times the ends of runs) or below {MIN_INFORMATIVE_DAYS} non-zero returns",
            symbol,
        )


class LaplaceFitError(UnfitSeriesError):
    """The posterior mode was not found or is degenerate; ``fit`` is the :class:`LaplaceFit`
    anyway (for analysis, never for risk).

    Examples
    --------
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> fit = LaplaceFit(draws, draws, 812.5, converged=False, problems=("did not converge",))
    >>> err = LaplaceFitError("XYZ", fit.problems, fit)
    >>> print(err)
    returns of 'XYZ': no usable fit: did not converge
    >>> err.fit.converged, err.symbol
    (False, 'XYZ')
    """

    def __init__(self, symbol: str | None, problems: tuple[str, ...], fit: LaplaceFit) -> None:
        self.problems = problems
        self.fit = fit
        super().__init__(f"{_label(symbol)}: no usable fit: {'; '.join(problems)}", symbol)


def _label(symbol: str | None) -> str:
    return "returns" if symbol is None else f"returns of {symbol!r:.80}"


def stale_reason(returns: np.ndarray, symbol: str | None = None) -> StaleSeriesError | None:
    """The :class:`StaleSeriesError` of a series too stale to fit (``MAX_ZERO_FRACTION``,
    ``MAX_REPEATED_ZERO_FRACTION``, ``MIN_INFORMATIVE_DAYS``), ``None`` otherwise.

    Examples
    --------
    A price stuck every other day (50% zero returns) is stale; 300 normal days are not:

    >>> import numpy as np
    >>> returns = np.zeros(300)
    >>> returns[::2] = 0.01
    >>> print(str(stale_reason(returns, "XYZ"))[:60])
    returns of 'XYZ': 50.0% of the daily returns are zero, 0.0%
    >>> print(stale_reason(np.random.default_rng(0).normal(0.0, 0.01, 300)))
    None
    """
    r = np.asarray(returns, dtype=float).ravel()
    if not r.size:
        return None
    zero = np.abs(r) <= ZERO_RETURN
    n_zero = int(zero.sum())
    n_repeated = int(np.count_nonzero(zero[1:] & zero[:-1]))
    n_breaks = int(np.count_nonzero(~zero[1:] & zero[:-1]))
    n_informative = r.size - n_zero
    runs = n_repeated > NU_MIN * n_breaks and n_repeated > MAX_REPEATED_ZERO_FRACTION * r.size
    if n_zero > MAX_ZERO_FRACTION * r.size or runs or n_informative < MIN_INFORMATIVE_DAYS:
        edges = np.flatnonzero(np.diff(np.r_[0, zero.astype(np.int8), 0]))
        longest = int(np.max(edges[1::2] - edges[::2])) if edges.size else 0
        return StaleSeriesError(
            symbol, n_zero / r.size, n_repeated / r.size, longest, n_informative
        )
    return None


def _unpack(theta: np.ndarray) -> dict[str, np.ndarray]:
    """Unconstrained fit parameters -> model parameters. Persistence ``P = alpha + kappa gamma +
    beta`` in (0, _MAX_PERSISTENCE), beta's share of it, and the share ``g = kappa (alpha + gamma)
    / (alpha + kappa gamma)`` of the shock part that negative shocks carry go through logistic
    maps (``kappa`` the draw's :func:`~bayes_mem.live.skewt.asymmetry_weight`): the shock part is
    ``(1 - kappa) alpha + kappa (alpha + gamma)``, so ``g`` in (0, 1) is exactly ``alpha >= 0``
    and ``alpha + gamma >= 0``, ``g = kappa`` is ``gamma = 0`` and ``g < kappa`` a negative gamma
    (inverse leverage). Every point is a valid, covariance-stationary model and the likelihood
    surface has no penalty walls (a wall blows up the Laplace Hessian)."""
    mu, lomega, lpers, lbeta_share, lneg_share, lnu, alam = np.moveaxis(np.atleast_2d(theta), -1, 0)
    nu = NU_MIN + (_NU_MAX - NU_MIN) * special.expit(lnu)
    lam = np.tanh(alam)
    kappa = asymmetry_weight(nu, lam)
    pers = _MAX_PERSISTENCE * special.expit(lpers)
    beta = pers * special.expit(lbeta_share)
    shock = pers - beta  # alpha + kappa gamma
    g = special.expit(lneg_share)
    alpha = (1.0 - g) * shock / (1.0 - kappa)
    return {
        "mu": mu,
        "omega": np.exp(lomega),
        "alpha": alpha,
        "gamma": g * shock / kappa - alpha,
        "beta": beta,
        "nu": nu,
        "lam": lam,
    }


def _theta0(r_std: np.ndarray) -> np.ndarray:
    """Start of the fit (unit-variance returns): alpha 0.03, gamma 0.08, beta 0.9, nu 6, lam 0
    (kappa 1/2: negative shocks carry g = 0.786 of the shock part)."""
    alpha, gamma, beta, kappa = 0.03, 0.08, 0.9, 0.5
    shock = alpha + kappa * gamma
    pers = shock + beta
    return np.array(
        [
            np.mean(r_std),
            np.log(0.05),
            special.logit(pers / _MAX_PERSISTENCE),
            special.logit(beta / pers),
            special.logit(kappa * (alpha + gamma) / shock),
            special.logit((6.0 - NU_MIN) / (_NU_MAX - NU_MIN)),
            0.0,
        ]
    )


# Weakly informative normal priors on the unconstrained parameters (unit-variance returns), in
# the order of _unpack: mean 0 +- 0.5 sd; omega 0.05 within a factor ~50; persistence 0.97,
# beta's share 0.93, the negative shocks' share 0.79 and nu 6, each +- 1.5 on the logit scale;
# skew 0 +- 0.5. A year of data dominates them; on short or degenerate series they keep the mode
# away from flat ridges (omega -> 0 with beta -> 1 on 100 days) where the Laplace draws would
# explode.
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
    estimate up to the weak priors' pull, which a year of data makes negligible. ``problems``
    says why the fit is not usable (empty when it is; :func:`fit_laplace` raises on them unless
    ``strict=False``).

    Examples
    --------
    Built by :func:`fit_laplace`; by hand, a fit whose mode and draws are one given draw:

    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[0.0])
    >>> fit = LaplaceFit(mle=draws, draws=draws, log_likelihood=812.5, converged=True)
    >>> fit.draws.size, fit.problems  # no problems: usable
    (1, ())
    """

    mle: GarchDraws  # one "draw": the MLE, in fraction units
    draws: GarchDraws  # S draws from the Laplace approximation, in fraction units
    log_likelihood: float
    converged: bool  # the optimiser's verdict (or a gradient below 1e-3 at its end)
    problems: tuple[str, ...] = ()


def _rescale(p: dict[str, np.ndarray], sd: float) -> dict[str, np.ndarray]:
    """Parameters fitted on returns / sd back in the returns' units."""
    return {**p, "mu": p["mu"] * sd, "omega": p["omega"] * sd**2}


def fit_laplace(
    returns: np.ndarray,
    n_draws: int = 200,
    rng: np.random.Generator | int | None = None,
    *,
    symbol: str | None = None,
    strict: bool = True,
) -> LaplaceFit:
    """Fit GJR-GARCH(1,1)-skew-t to daily log returns at the posterior mode (weakly informative
    priors on the unconstrained parameters, see ``_PRIOR_SD``) and draw ``n_draws`` parameter
    sets from the Laplace approximation there.

    Refused, naming ``symbol``: fewer than 100 returns, non-finite or constant ones, a sample sd
    outside ``_SD_RANGE`` (ValueError); stale series (:class:`StaleSeriesError`, before any
    fitting); and, when ``strict`` (default), a mode the optimiser did not converge to, or a
    degenerate one (omega below 1e-8 of the sample variance, nu at its bound):
    :class:`LaplaceFitError`, which carries the fit. ``strict=False`` returns such a fit with
    its ``problems`` listed instead.

    Examples
    --------
    Four years of simulated daily returns from a known model, fitted back:

    >>> import numpy as np
    >>> truth = GarchDraws(
    ...     mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86], nu=[6.0], lam=[-0.1]
    ... )
    >>> returns, _ = simulate(truth, 1000, np.random.default_rng(0))
    >>> fit = fit_laplace(returns[0], n_draws=100, rng=1, symbol="SPY")
    >>> fit.converged, fit.problems, fit.draws.size
    (True, (), 100)
    >>> p = {k: float(getattr(fit.mle, k)[0]) for k in ("alpha", "gamma", "beta", "nu")}
    >>> print(f"alpha {p['alpha']:.2f} gamma {p['gamma']:.1f} beta {p['beta']:.2f}")
    alpha 0.03 gamma 0.1 beta 0.84
    >>> round(p["nu"], 1)
    4.9
    >>> vol = float(fit.mle.long_run_variance[0]) ** 0.5  # long-run daily volatility
    >>> print(f"persistence {float(fit.mle.persistence[0]):.2f}, volatility {vol:.4f}")
    persistence 0.93, volatility 0.0063
    """
    r = np.asarray(returns, dtype=float)
    label = _label(symbol)
    if r.ndim != 1 or r.size < 100:
        raise ValueError(
            f"{label}: need a 1-d series of at least 100 daily returns, got shape {r.shape}"
        )
    if not np.all(np.isfinite(r)):
        raise ValueError(f"{label} contain NaN or inf")
    if np.var(r) == 0:
        raise ValueError(f"{label} are constant: volatility is not identified")
    sd = float(np.std(r))
    if not _SD_RANGE[0] <= sd <= _SD_RANGE[1]:
        raise ValueError(
            f"{label} have sample sd {sd:.3g}, outside {_SD_RANGE}: daily log returns as "
            "fractions (0.01 = 1%) are needed, the fit is not reliable at that scale"
        )
    stale = stale_reason(r, symbol)
    if stale is not None:
        raise stale
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
    mode = GarchDraws(**_unpack(theta))
    grad = float(np.max(np.abs(res.jac)))
    converged = bool(res.success) or grad < 1e-3
    problems = []
    if not converged:
        problems.append(
            f"the optimiser did not converge ({res.message}; largest gradient {grad:.3g})"
        )
    if mode.omega[0] < _OMEGA_COLLAPSE:  # r_std has unit variance
        problems.append(f"omega collapsed to {mode.omega[0]:.3g} times the sample variance")
    if mode.nu[0] < NU_MIN + _NU_EDGE:
        problems.append(f"the tail weight nu = {mode.nu[0]:.4g} is at its bound {NU_MIN}")
    fit = LaplaceFit(
        mle=GarchDraws(**_rescale(_unpack(theta), sd)),
        draws=GarchDraws(**_rescale(_unpack(sample), sd)),
        # density of r = density of r / sd, divided by sd
        log_likelihood=float(log_likelihood(r_std, mode)[0]) - r.size * np.log(sd),
        converged=converged,
        problems=tuple(problems),
    )
    if problems and strict:
        raise LaplaceFitError(symbol, fit.problems, fit)
    return fit


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
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
