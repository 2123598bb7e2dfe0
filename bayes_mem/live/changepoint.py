"""Bayesian online changepoint detection (Adams & MacKay 2007), vectorised over N streams.

Model. Each stream is a sequence of regimes; after every observation a new regime starts with
probability ``hazard`` (constant, per stream or shared). Within a regime the observations are
i.i.d. given the regime's parameters, which are drawn afresh from a conjugate prior:

- :class:`NormalGammaBOCPD`: Normal with unknown mean and precision, Normal-Gamma prior, so the
  predictive of the next observation is a Student-t. Meant for the *standardised residuals* of
  the conditional-volatility model (:meth:`ReturnModel.last_standardized_residual`), so that a
  volatility rise the GARCH model already expects is not a new regime.
- :class:`BetaBernoulliBOCPD`: a win/loss stream (a signal family's outcomes) with a Beta prior
  on the win rate.

Run length. In Adams & MacKay's convention the run length ``r_t`` after observation ``t`` counts
the observations of the current regime, and ``r_t = 0`` is "a new regime starts right after
``x_t``": its posterior probability equals the hazard at every step (no data bears on it), so it
is useless as an alarm. The outputs therefore use the *regime age* ``a_t = r_t`` given
``r_t >= 1``, the number of observations of the current regime including ``x_t`` (1 means
``x_t`` was the first observation of a new regime):

- ``p_change``: P(a_t <= k | data), the probability that the current regime started at one of
  the last ``k`` observations, i.e. that a change happened within the last ``k`` observations.
  The regime that began with the first observation is not a change: while t <= k, it is
  P(a_t < t).
- ``expected_run_length``: E[a_t | data]; ``map_run_length``: the most probable age.
- ``log_pred``: log p(x_t | x_1..x_{t-1}) (natural log, per unit of x), the one-step predictive
  density; summed over time it is the log marginal likelihood used by the offline estimator.

Truncation. Run lengths are kept up to ``max_run_length`` R; the last bin means "R or more".
Mass that would grow past R is added (in log space) to that bin, so the distribution always sums
to one and nothing is dropped. The bin's sufficient statistics are those of the most recent R
observations (a sliding window), an approximation only for regimes older than R, whose
predictive is then based on their last R observations. Until t reaches R the results are exactly
those of the untruncated recursion. Ages beyond R are reported as R (``expected_run_length`` is
then a lower bound). R is at most ``MAX_RUN_LENGTH`` (10,000), checked before any buffer is
allocated, for snapshots too.

Cost. O(R) per stream and observation, vectorised across streams, in log space: the run-length
posterior is kept as log probabilities (relative to each run's log marginal likelihood, see
:class:`_BOCPD`), so long runs never underflow, and the predictive is scaled by a bound that
keeps every ``exp`` <= 1 (with a fallback to the row maximum if all bins underflow). The
per-run-length statistics live in preallocated buffers twice as wide as needed; each step moves
the window start back by one (the "shift by one" of the recursion costs nothing) and the live
block is copied back once every R + 1 steps. Measured (``python -m benchmarks --only regime``,
R = 300, 2-core VM whose numpy has AVX-512 ``exp``/``log``): 11.6-12.0 us per observation for
one stream and 1.3-1.5 ms per step for 500 streams, about 5x faster than a straightforward numpy
version in the same runs (the ratio holds at 0.16-0.24 when the machine is overloaded; the
absolute times then grow 2-5x). Two transcendental calls per bin (one ``log``, one ``exp``) are
the floor of this recursion: on a numpy without vectorised float64 ``exp``/``log`` they alone
cost ~1.7 ms of the 500-stream step.

The detector is deterministic (no random numbers). Bad input (NaN, inf, wrong shape or type,
non-binary outcomes) raises ``ValueError`` / ``TypeError`` naming the value and leaves the state
exactly as it was. :meth:`snapshot` / :meth:`from_snapshot` round-trip the state exactly
through JSON.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import numpy.typing as npt
from scipy import special

from bayes_mem.live.deprecation import warn_renamed
from bayes_mem.live.priors import BetaPrior
from bayes_mem.live.validate import (
    check_int,
    check_name,
    check_positive,
    check_probability_open,
    check_real,
    check_schema,
)

SNAPSHOT_SCHEMA = "bayes_mem.changepoint/1"
ALARM_SCHEMA = "bayes_mem.change_alarm/1"

#: Largest accepted |x| for the Normal-Gamma model: squares stay far from float64 overflow.
MAX_ABS_OBSERVATION = 1e100

DEFAULT_HAZARD = 1.0 / 250.0  # one regime change a year of daily observations, a priori
DEFAULT_MAX_RUN_LENGTH = 300
#: Largest accepted truncation R (40 years of daily observations): memory is about 136 (R + 1)
#: bytes per stream (a 10,000-day detector over 500 symbols: ~0.7 GB), so a snapshot or a prior
#: set naming a huge R (3e7 allocated 4.3 GB per stream) is refused before anything is allocated.
MAX_RUN_LENGTH = 10_000
DEFAULT_K = 10


@dataclass(frozen=True, slots=True)
class NormalGammaPrior:
    """Normal-Gamma prior of a regime's mean ``m`` and precision ``lam`` (1 / variance):
    ``lam ~ Gamma(alpha0, rate=beta0)``, ``m | lam ~ Normal(mu0, 1 / (kappa0 * lam))``.

    In units of the observations (standardised residuals: unit-free). ``kappa0`` is the prior's
    weight in pseudo-observations for the mean; E[lam] = alpha0 / beta0.

    Examples
    --------
    >>> prior = NormalGammaPrior(mu0=0.0, kappa0=1.0, alpha0=3.0, beta0=2.0)
    >>> prior.alpha0 / prior.beta0  # prior mean of the precision
    1.5
    >>> NormalGammaPrior.from_dict(prior.to_dict()) == prior
    True
    >>> det = NormalGammaBOCPD(["AAPL", "MSFT"], prior, hazard=1 / 250)
    """

    mu0: float = 0.0
    kappa0: float = 1.0
    alpha0: float = 2.0
    beta0: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu0", check_real(self.mu0, "NormalGammaPrior.mu0"))
        for name in ("kappa0", "alpha0", "beta0"):
            value = check_positive(getattr(self, name), f"NormalGammaPrior.{name}")
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, float]:
        """The four hyperparameters as a JSON-ready dict (:meth:`from_dict` reads it back).

        Examples
        --------
        >>> NormalGammaPrior(mu0=0.0, kappa0=1.0, alpha0=3.0, beta0=2.0).to_dict()
        {'mu0': 0.0, 'kappa0': 1.0, 'alpha0': 3.0, 'beta0': 2.0}
        """
        return {"mu0": self.mu0, "kappa0": self.kappa0, "alpha0": self.alpha0, "beta0": self.beta0}

    @classmethod
    def from_dict(cls, data: Any) -> NormalGammaPrior:
        """The prior of a :meth:`to_dict` mapping (exactly its four keys); raises ``ValueError``
        otherwise.

        Examples
        --------
        >>> NormalGammaPrior.from_dict({"mu0": 0.0, "kappa0": 2.0, "alpha0": 3.0, "beta0": 3.0})
        NormalGammaPrior(mu0=0.0, kappa0=2.0, alpha0=3.0, beta0=3.0)
        >>> NormalGammaPrior.from_dict({"mu0": 0.0, "kappa0": 2.0})
        Traceback (most recent call last):
            ...
        ValueError: a NormalGammaPrior is a JSON object with keys ['alpha0', ...
        """
        keys = {"mu0", "kappa0", "alpha0", "beta0"}
        if not isinstance(data, Mapping) or set(data) != keys:
            raise ValueError(f"a NormalGammaPrior is a JSON object with keys {sorted(keys)}")
        return cls(data["mu0"], data["kappa0"], data["alpha0"], data["beta0"])

    def to_json(self) -> dict[str, float]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        The same dict as :meth:`to_dict`, with a :class:`DeprecationWarning`:

        >>> import warnings
        >>> prior = NormalGammaPrior(alpha0=3.0)
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     out = prior.to_json()
        >>> out == prior.to_dict(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("NormalGammaPrior.to_json()", "NormalGammaPrior.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> NormalGammaPrior:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        The same prior as :meth:`from_dict`, with a :class:`DeprecationWarning`:

        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     prior = NormalGammaPrior.from_json(NormalGammaPrior().to_dict())
        >>> prior == NormalGammaPrior(), seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("NormalGammaPrior.from_json()", "NormalGammaPrior.from_dict()")
        return cls.from_dict(data)


class ChangepointStep(NamedTuple):
    """What one :meth:`update` says about each stream (arrays of shape (N,), stream order).

    Examples
    --------
    >>> det = NormalGammaBOCPD(["AAPL", "MSFT"], hazard=1 / 100)
    >>> for x in ([0.3, -0.5], [1.1, 0.2], [-0.4, 0.8]):
    ...     step = det.update(x)
    >>> step.k, step.map_run_length.tolist()
    (10, [3, 3])
    >>> [round(v, 3) for v in step.p_change.tolist()]
    [0.017, 0.018]
    """

    k: int  # the window of ``p_change``, in observations
    p_change: np.ndarray  # P(a change happened within the last k observations)
    expected_run_length: np.ndarray  # E[age of the current regime], observations (>= 1)
    map_run_length: np.ndarray  # most probable age, observations (int, 1..R)
    log_pred: np.ndarray  # log predictive density of this observation (natural log)


def _new_step(fields: tuple) -> ChangepointStep:
    """``ChangepointStep(*fields)`` without the Python-level ``__new__`` (the one-stream hot
    path)."""
    return tuple.__new__(ChangepointStep, fields)


def _check_hazard(hazard: npt.ArrayLike, n: int) -> np.ndarray:
    """A shared hazard or one per stream, each in (0, 1); returned with shape (n,)."""
    if np.ndim(hazard) == 0:
        h = check_probability_open(hazard, "hazard")
        return np.full(n, h)
    arr = np.asarray(hazard)
    if arr.dtype.kind not in "iuf" or arr.shape != (n,):
        raise ValueError(
            f"hazard must be a number or {n} numbers (one per stream), got shape {arr.shape} "
            f"of {arr.dtype}"
        )
    arr = arr.astype(float)
    bad = ~((arr > 0.0) & (arr < 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"hazard must be in (0, 1), got {arr[i]!r} for stream {i}")
    return arr


def _check_run_length(value: object) -> int:
    r = check_int(value, "max_run_length", minimum=2)
    if r > MAX_RUN_LENGTH:
        raise ValueError(f"max_run_length must be <= {MAX_RUN_LENGTH:,}, got {r!r:.40}")
    return r


def _stream_names(streams: int | Sequence[str]) -> tuple[str, ...]:
    if isinstance(streams, int | np.integer) and not isinstance(streams, bool):
        n = check_int(streams, "number of streams", minimum=1)
        return tuple(str(i) for i in range(n))
    if isinstance(streams, str) or not isinstance(streams, Sequence):
        raise TypeError(f"streams must be a count or a sequence of names, got {streams!r:.100}")
    names = tuple(check_name(s, "stream name") for s in streams)
    if not names:
        raise ValueError("need at least one stream")
    if len(set(names)) != len(names):
        dup = next(s for s in names if names.count(s) > 1)
        raise ValueError(f"stream name {dup!r} appears twice")
    return names


def _per_stream(value: npt.ArrayLike, n: int, what: str, positive: bool) -> np.ndarray:
    """A prior parameter, shared (shape (1,)) or one per stream (shape (n,))."""
    if np.ndim(value) == 0:
        v = check_positive(value, what) if positive else check_real(value, what)
        return np.array([v])
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.shape != (n,):
        raise ValueError(f"{what} must be a number or {n} numbers, got shape {arr.shape}")
    arr = arr.astype(float)
    bad = ~np.isfinite(arr) | ((arr <= 0.0) if positive else False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cond = "positive and finite" if positive else "finite"
        raise ValueError(f"{what} must be {cond}, got {arr[i]!r} for stream {i}")
    return arr


def _encode(values: np.ndarray) -> list:
    """Rows of floats for JSON; -inf (zero probability) as null."""
    return [[None if v == -math.inf else v for v in row] for row in values.tolist()]


def _decode(data: Any, shape: tuple[int, int], what: str, allow_neg_inf: bool) -> np.ndarray:
    if not isinstance(data, list) or len(data) != shape[0]:
        raise ValueError(f"state.{what} must be a list of {shape[0]} rows")
    out = np.empty(shape)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != shape[1]:
            raise ValueError(f"state.{what}[{i}] must be a list of {shape[1]} numbers")
        for j, v in enumerate(row):
            if v is None and allow_neg_inf:
                out[i, j] = -math.inf
            else:
                out[i, j] = check_real(v, f"state.{what}[{i}][{j}]")
    return out


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


# Below this sum of scaled probabilities a step falls back to scaling by the row maximum (only
# under extreme outliers with a tight prior; see _BOCPD.update).
_TINY = 1e-250


class _BOCPD:
    """Run-length recursion shared by the models; subclasses supply the marginal likelihoods.

    Stored per stream and run length j (column ``off + j`` of the buffers): the model's
    sufficient statistics of the run's data and ``V_j = log P(r = j | data) - M_j - lam``, where
    ``M_j`` is the log marginal likelihood of the run's data under the regime prior and ``lam``
    a per-stream running constant. Growing a run by one observation leaves ``V`` unchanged (the
    new marginal likelihood ``M'_j`` absorbs the predictive, ``lam`` the normalisation), so each
    step costs the statistics' update, one ``exp`` per bin and a few reductions. ``lam`` is folded
    back into ``V`` whenever the buffers are recentred (every R + 1 steps), so ``V`` stays small.
    With one stream the buffers are 1-d and the per-stream values plain floats (faster).
    """

    model: ClassVar[str] = ""
    _state_names: ClassVar[tuple[str, ...]] = ()  # per-run-length statistics buffers

    def __init__(
        self,
        streams: int | Sequence[str],
        *,
        hazard: float | Sequence[float] | np.ndarray,
        max_run_length: int,
        k: int,
    ) -> None:
        self._names = _stream_names(streams)
        n = len(self._names)
        self._n = n
        self._one = n == 1
        r = _check_run_length(max_run_length)
        self._r = r
        self._k = self._check_k(k)
        self._hazard = _check_hazard(hazard, n)
        self._logh = self._col(np.log(self._hazard))
        self._log1mh = self._col(np.log1p(-self._hazard))
        r1 = r + 1
        self._width = 2 * r1
        self._off = r1  # the live block is [off, off + R + 1): column off + j is run length j
        self._v = self._buffer(-math.inf)
        self._v[..., self._off] = 0.0  # before any data: P(r_0 = 0) = 1, M_0 = 0
        self._lam = self._col(np.zeros(n))
        self._steps = 0
        self._z = np.empty(self._shape(r1))  # scratch: scaled log joint per run length
        self._w = np.empty(self._shape(r1))  # scratch: its exp
        # bin j grows into age j + 1 (bins R - 1 and R both into "R or more"); one product with
        # these columns gives the sum, the mass of ages <= k and the age-weighted sum
        self._moments = np.zeros((r1, 3))
        self._moments[:, 0] = 1.0
        self._moments[: self._k, 1] = 1.0
        self._moments[:, 2] = np.minimum(np.arange(1, r1 + 1), r)
        self._age = np.ascontiguousarray(self._moments[:, 2])
        self._lock = threading.Lock()

    # shapes: 1-d buffers and float per-stream values for one stream, 2-d and (N,) otherwise
    def _shape(self, width: int) -> tuple[int, ...]:
        return (width,) if self._one else (self._n, width)

    def _buffer(self, fill: float) -> np.ndarray:
        return np.full(self._shape(self._width), fill)

    def _col(self, values: np.ndarray) -> Any:
        """Per-stream values (N,) as used against a column: a float for one stream."""
        return float(values[0]) if self._one else np.ascontiguousarray(values, dtype=float)

    def _rows(self, table: np.ndarray) -> np.ndarray:
        """A (P, width) per-run-length table (P = 1 or N) as used against the live block."""
        return np.ascontiguousarray(table[0]) if self._one else table

    # ------------------------------------------------------------------ properties
    @property
    def streams(self) -> tuple[str, ...]:
        return self._names

    @property
    def max_run_length(self) -> int:
        return self._r

    @property
    def k(self) -> int:
        return self._k

    @property
    def hazard(self) -> np.ndarray:
        return self._hazard.copy()

    @property
    def steps(self) -> int:
        """Observations seen per stream."""
        return self._steps

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self._n} streams, max_run_length={self._r}, k={self._k}, "
            f"steps={self._steps})"
        )

    def _check_k(self, k: object) -> int:
        k = check_int(k, "k", minimum=1)
        if k >= self._r:
            raise ValueError(f"k must be < max_run_length ({self._r}), got {k}")
        return k

    # ------------------------------------------------------------------ the recursion
    def update(self, x: npt.ArrayLike) -> ChangepointStep:
        """Absorb one observation per stream (``x``: N values in stream order; a plain number
        when N = 1) and return the step's outputs.

        Examples
        --------
        >>> det = NormalGammaBOCPD(["AAPL", "MSFT"], hazard=1 / 100)
        >>> step = det.update([0.4, -0.2])  # one standardised residual per stream
        >>> step.p_change.tolist(), det.steps
        ([0.0, 0.0], 1)
        """
        xv = self._check_x(x)
        with self._lock:
            if self._one:
                return self._step_one(xv)
            return self._step_many(xv)

    def _step_one(self, x: Any) -> ChangepointStep:
        r, off = self._r, self._off
        # z_j = log P(r_{t-1} = j) + log p(x_t | run j) - lam - u, with u an upper bound of
        # the predictive log density, so exp(z) <= 1 never overflows
        z = self._joint(x, off)
        w = np.exp(z, out=self._w)
        s, s_k, s_age = (w @ self._moments).tolist()  # sum, sum of the first k, age-weighted
        u = self._bound
        if not s > _TINY:  # every bin underflowed: scale by the maximum instead
            m = float(z.max())
            z -= m
            np.exp(z, out=w)
            s, s_k, s_age = (w @ self._moments).tolist()
            u += m
        log_pred = self._lam + u + math.log(s)  # log p(x_t | x_1..x_{t-1})
        lam = self._lam + self._log1mh - log_pred
        v = self._v
        # run length j -> j + 1: column off + j is the new run length j + 1 at offset off - 1;
        # V is unchanged except the last bin, "R or more", which also takes the old bin R
        v[off + r - 1] = _logaddexp(z.item(r - 1), z.item(r)) + u - self._grown_marginal(r)
        new_off = off - 1
        v[new_off] = self._logh - lam  # a new run: P = hazard, M_0 = 0
        self._reset_first(new_off)
        self._lam = lam
        self._steps += 1
        best = int(w.argmax())
        fold = w.item(r - 1) + w.item(r)
        map_age = np.array((r if fold > w.item(best) else min(best + 1, r),), dtype=np.intp)
        if self._steps <= self._k:  # the regime that began with the data is not a change
            s_k = float(w[: self._steps - 1].sum())
        out = np.array((min(s_k / s, 1.0), s_age / s, log_pred))  # min: rounding
        if new_off == 0:
            self._recentre()
        else:
            self._off = new_off
        return _new_step((self._k, out[0:1], out[1:2], map_age, out[2:3]))

    def _step_many(self, x: np.ndarray) -> ChangepointStep:
        r, off = self._r, self._off
        z = self._joint(x, off)
        w = np.exp(z, out=self._w)
        s = w.sum(axis=1)
        u = self._bound
        low = ~(s > _TINY)
        if low.any():  # every bin of some streams underflowed: scale those by their maximum
            rows = np.flatnonzero(low)
            m = z[rows].max(axis=1)
            z[rows] -= m[:, None]
            w[rows] = np.exp(z[rows])
            s[rows] = w[rows].sum(axis=1)
            u = u.copy()
            u[rows] += m
        log_pred = self._lam + u + np.log(s)
        lam = self._lam + self._log1mh - log_pred
        v = self._v
        v[:, off + r - 1] = np.logaddexp(z[:, r - 1], z[:, r]) + u - self._grown_marginal(r)
        new_off = off - 1
        v[:, new_off] = self._logh - lam
        self._reset_first(new_off)
        self._lam = lam
        self._steps += 1
        best = w.argmax(axis=1)
        top = np.take_along_axis(w, best[:, None], axis=1)[:, 0]
        fold = w[:, r - 1] + w[:, r]
        map_age = np.where(fold > top, r, np.minimum(best + 1, r))
        inv_s = 1.0 / s
        # the regime that began with the data is not a change: ages < t only, while t <= k
        within = min(self._k, self._steps - 1)
        p_change = np.minimum(w[:, :within].sum(axis=1) * inv_s, 1.0)  # min: rounding
        expected = (w @ self._age) * inv_s
        if new_off == 0:
            self._recentre()
        else:
            self._off = new_off
        return ChangepointStep(self._k, p_change, expected, map_age, log_pred)

    def _recentre(self) -> None:
        """Copy the live block back to the buffers' right half; fold lam into V."""
        r1 = self._r + 1
        for name in ("_v", *self._state_names):
            buf = getattr(self, name)
            buf[..., r1 : 2 * r1] = buf[..., 0:r1]
        if self._one:
            self._v[r1:] += self._lam
            self._lam = 0.0
        else:
            self._v[:, r1:] += self._lam[:, None]
            self._lam = np.zeros(self._n)
        self._off = r1

    # subclasses ----------------------------------------------------------
    _bound: Any = 0.0  # upper bound of the predictive log density, per stream

    def _check_x(self, x: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _joint(self, x: Any, off: int) -> np.ndarray:  # pragma: no cover
        """Grow every run's statistics by ``x`` in place and return ``V + M' - bound`` per run
        length (``M'``: log marginal likelihood of the run's data and ``x``)."""
        raise NotImplementedError

    def _grown_marginal(self, j: int) -> Any:  # pragma: no cover
        """``M'`` of run length ``j - 1`` after :meth:`_joint` (per stream)."""
        raise NotImplementedError

    def _log_marginal(self, off: int) -> np.ndarray:  # pragma: no cover
        """``M`` of the live block (the runs' data so far)."""
        raise NotImplementedError

    def _reset_first(self, col: int) -> None:  # pragma: no cover
        raise NotImplementedError

    def _prior_json(self) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ reading
    def _log_posterior(self) -> np.ndarray:
        """log P(r_t = j | data), j = 0..R, shape (N, R + 1)."""
        sl = slice(self._off, self._off + self._r + 1)
        lam = self._lam if self._one else self._lam[:, None]
        out = self._v[..., sl] + self._log_marginal(self._off) + lam
        return out.reshape(self._n, self._r + 1)

    def run_length_posterior(self) -> np.ndarray:
        """P(r_t = j | data) for j = 0..R, shape (N, R + 1), in Adams & MacKay's convention
        (column 0 is "a change right after the last observation", probability = hazard; column
        R is "R or more"). Before any data, column 0 holds 1."""
        with self._lock:
            return np.exp(self._log_posterior())

    def age_posterior(self) -> np.ndarray:
        """P(age = a | data) for a = 1..R (column a - 1), shape (N, R): the run-length
        posterior given a regime is under way. Zeros before any data."""
        post = self.run_length_posterior()[:, 1:]
        if self._steps == 0:
            return post
        return post / (1.0 - self._hazard)[:, None]

    def p_change_within(self, k: int) -> np.ndarray:
        """P(a change happened within the last ``k`` observations), 1 <= k < R, per stream (the
        regime that began with the first observation is not a change).

        Examples
        --------
        >>> det = NormalGammaBOCPD(1, hazard=1 / 100)
        >>> for x in (0.1, -0.3, 0.5, -0.2, 0.4, 3.5, 4.0, -3.8):  # calm, then three wild days
        ...     _ = det.update(x)
        >>> det.p_change_within(3).round(3).tolist(), det.p_change_within(10).round(3).tolist()
        ([0.347], [0.499])
        """
        k = self._check_k(k)
        return self.age_posterior()[:, : min(k, max(self._steps - 1, 0))].sum(axis=1)

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (exact: floats round-trip through JSON)."""
        with self._lock:
            sl = slice(self._off, self._off + self._r + 1)
            shape = (self._n, self._r + 1)
            state = {
                "v": _encode(self._v[..., sl].reshape(shape)),
                "lam": np.reshape(self._lam, self._n).tolist(),
            }
            for a in self._state_names:
                state[a.lstrip("_")] = getattr(self, a)[..., sl].reshape(shape).tolist()
            hz = self._hazard
            return {
                "schema": SNAPSHOT_SCHEMA,
                "model": self.model,
                "streams": list(self._names),
                "config": {
                    "hazard": float(hz[0]) if np.all(hz == hz[0]) else hz.tolist(),
                    "max_run_length": self._r,
                    "k": self._k,
                    "prior": self._prior_json(),
                },
                "steps": self._steps,
                "state": state,
            }

    def to_json(self) -> str:
        return json.dumps(self.snapshot(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a detector exactly from :meth:`snapshot` output (its model must be this
        class's; :func:`load_detector` takes either). Malformed data raises ``ValueError``."""
        try:
            return cls._from_snapshot(data)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"malformed changepoint snapshot: {exc!r}") from exc

    @classmethod
    def _from_snapshot(cls, data: Mapping[str, Any]) -> Self:
        check_schema(data, SNAPSHOT_SCHEMA)
        models: dict[str, type[NormalGammaBOCPD] | type[BetaBernoulliBOCPD]] = {
            c.model: c for c in (NormalGammaBOCPD, BetaBernoulliBOCPD)
        }
        target = models.get(data["model"])
        if target is None or (cls is not _BOCPD and target is not cls):
            raise ValueError(f"snapshot model {data['model']!r} cannot be restored as {cls.model}")
        cfg = data["config"]
        # sizes first: the detector's buffers are allocated from them
        r = _check_run_length(cfg["max_run_length"])
        streams, state = data["streams"], data["state"]
        if not isinstance(streams, list) or not isinstance(state, Mapping):
            raise ValueError("snapshot streams must be a list and state an object")
        for name, rows in state.items():
            if name == "lam":
                continue
            if not isinstance(rows, list) or len(rows) != len(streams):
                raise ValueError(f"state.{name} must be a list of {len(streams)} rows")
            if any(not isinstance(row, list) or len(row) != r + 1 for row in rows):
                raise ValueError(f"state.{name} rows must hold {r + 1} numbers")
        self = target(
            streams,
            cfg["prior"],
            hazard=cfg["hazard"],
            max_run_length=cfg["max_run_length"],
            k=cfg["k"],
        )
        steps = check_int(data["steps"], "steps", minimum=0)
        shape = (self._n, self._r + 1)
        state = data["state"]
        v = _decode(state["v"], shape, "v", allow_neg_inf=True)
        lam = _decode([state["lam"]], (1, self._n), "lam", allow_neg_inf=False)[0]
        arrays = {
            a: _decode(state[a.lstrip("_")], shape, a.lstrip("_"), False) for a in self._state_names
        }
        self._check_state(arrays)
        # the buffers' phase follows the step count, so a restored detector recentres (and
        # rounds) exactly when the original would
        r1 = self._r + 1
        off = r1 - steps % r1
        self._v[..., self._off] = -math.inf
        sl = slice(off, off + r1)
        self._v[..., sl] = v[0] if self._one else v
        for a, val in arrays.items():
            getattr(self, a)[..., sl] = val[0] if self._one else val
        self._off = off
        self._lam = self._col(lam)
        self._steps = steps
        logp = self._log_posterior()
        total = np.logaddexp.reduce(logp, axis=1)
        if np.any(np.isnan(logp)) or not np.all(np.abs(total) < 1e-6):
            raise ValueError("state: the run-length probabilities must sum to 1")
        assert isinstance(self, cls)  # target is cls (or, for _BOCPD, a subclass): checked above
        return self

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"changepoint snapshot is not valid JSON: {exc}") from exc
        return cls.from_snapshot(data)

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError


class NormalGammaBOCPD(_BOCPD):
    """BOCPD of N real-valued streams (standardised residuals) with a Normal-Gamma prior per
    regime and a Student-t predictive. See the module docstring.

    Parameters
    ----------
    streams : number of streams, or their names (symbols).
    prior : :class:`NormalGammaPrior` shared by all streams, or a mapping of its field names to a
        number or N numbers (one per stream).
    hazard : probability of a change after each observation, shared or N values, in (0, 1).
    max_run_length : R, the truncation; the last bin is "R or more".
    k : window of ``p_change`` in observations, 1 <= k < R.

    Examples
    --------
    100 standardised residuals of unit variance, then 30 with three times the volatility:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.standard_normal(100), 3.0 * rng.standard_normal(30)])
    >>> det = NormalGammaBOCPD(1, hazard=1 / 100, max_run_length=200, k=10)
    >>> p = np.array([det.update(v).p_change[0] for v in x.tolist()])
    >>> round(float(p[:100].max()), 3), int(np.argmax(p > 0.5))  # first alarm: 5th new day
    (0.42, 104)
    >>> step = det.update(0.5)
    >>> int(step.map_run_length[0]), round(float(step.expected_run_length[0]), 1)
    (33, 29.7)
    """

    model = "normal_gamma"
    _state_names = ("_mu", "_beta")

    def __init__(
        self,
        streams: int | Sequence[str],
        prior: NormalGammaPrior | Mapping[str, Any] | None = None,
        *,
        hazard: float | Sequence[float] | np.ndarray = DEFAULT_HAZARD,
        max_run_length: int = DEFAULT_MAX_RUN_LENGTH,
        k: int = DEFAULT_K,
    ) -> None:
        super().__init__(streams, hazard=hazard, max_run_length=max_run_length, k=k)
        n, r1 = self._n, self._r + 1
        if prior is None:
            prior = NormalGammaPrior()
        if isinstance(prior, NormalGammaPrior):
            prior = prior.to_dict()
        if not isinstance(prior, Mapping) or set(prior) != {"mu0", "kappa0", "alpha0", "beta0"}:
            raise TypeError(
                "prior must be a NormalGammaPrior or a mapping with keys mu0, kappa0, alpha0, "
                f"beta0, got {prior!r:.200}"
            )
        mu0 = _per_stream(prior["mu0"], n, "prior mu0", positive=False)
        kappa0 = _per_stream(prior["kappa0"], n, "prior kappa0", positive=True)
        alpha0 = _per_stream(prior["alpha0"], n, "prior alpha0", positive=True)
        beta0 = _per_stream(prior["beta0"], n, "prior beta0", positive=True)
        self._prior = {"mu0": mu0, "kappa0": kappa0, "alpha0": alpha0, "beta0": beta0}
        # per run length j = 0..R+1: kappa_j = kappa0 + j, alpha_j = alpha0 + j / 2, and the log
        # marginal likelihood of j observations M_j = D_j - alpha_j log beta_j with
        # D_j = lgamma(alpha_j) - lgamma(alpha0) + alpha0 log beta0 + log(kappa0 / kappa_j) / 2
        #       - j log(2 pi) / 2
        j = np.arange(r1 + 1, dtype=float)
        k0, a0, b0 = kappa0[:, None], alpha0[:, None], beta0[:, None]
        kappa = k0 + j
        alpha = a0 + 0.5 * j
        d = (
            special.gammaln(alpha)
            - special.gammaln(a0)
            + a0 * np.log(b0)
            + 0.5 * np.log(k0 / kappa)
            - 0.5 * j * math.log(2.0 * math.pi)
        )
        # predictive log density of run j: D_{j+1} - D_j + alpha_j log beta_j
        #   - alpha_{j+1} log beta_j' <= D_{j+1} - D_j - log(beta0) / 2, as beta_j >= beta0
        bound = np.max(d[:, 1:] - d[:, :-1], axis=1) - 0.5 * np.log(beta0)
        self._bound = self._col(np.broadcast_to(bound, (n,)))
        # update of run j by x: d = x - mu_j; beta_j' = beta_j + a_j d^2; mu_j' = mu_j + d ik_j
        self._a = self._rows(kappa[:, :r1] / (2.0 * (kappa[:, :r1] + 1.0)))
        self._ik = self._rows(1.0 / (kappa[:, :r1] + 1.0))
        self._alpha_next = self._rows(alpha[:, 1:])  # alpha_{j+1}
        self._d_next = self._rows(d[:, 1:])  # D_{j+1}
        self._d_last = float(d[0, r1 - 1])  # D_R (one stream)
        self._d_next_bound = self._rows(d[:, 1:] - bound[:, None])
        self._d = self._rows(d[:, :r1])
        self._alpha = self._rows(alpha[:, :r1])
        self._mu_first = self._col(np.broadcast_to(mu0, (n,)))
        self._beta_first = self._col(np.broadcast_to(beta0, (n,)))
        self._mu = self._buffer(0.0)
        self._beta = self._buffer(1.0)
        self._mu[...] = self._mu_first if self._one else self._mu_first[:, None]
        self._beta[...] = self._beta_first if self._one else self._beta_first[:, None]
        self._dev = np.empty(self._shape(r1))
        self._views: list[Any] = [None] * self._width
        self._kk = np.empty(self._shape(r1))

    @classmethod
    def from_prior_set(
        cls,
        streams: int | Sequence[str],
        published: Mapping[str, Any],
        *,
        max_run_length: int | None = None,
        k: int = DEFAULT_K,
    ) -> NormalGammaBOCPD:
        """A detector from the offline estimate (the output of
        :func:`bayes_mem.offline.regime_prior.estimate_regime_prior`) or the published regime
        prior: its hazard and prior, parsed by :meth:`bayes_mem.live.prior_set.RegimePrior.
        from_dict` (the one parse, bounds included; a :class:`RegimePrior` is taken as is).

        Examples
        --------
        The published regime prior (hazard 1 / 250, a Normal-Gamma prior, 300 run lengths) of two
        symbols' normal scores:

        >>> published = {"hazard": 0.004, "max_run_length": 300,
        ...              "normal_gamma": {"mu0": 0.0, "kappa0": 1.0, "alpha0": 3.0, "beta0": 3.0}}
        >>> det = NormalGammaBOCPD.from_prior_set(["SPY", "QQQ"], published, k=5)
        >>> det.streams, det.max_run_length
        (('SPY', 'QQQ'), 300)
        >>> NormalGammaBOCPD.from_prior_set(1, {"hazard": 0.004})
        Traceback (most recent call last):
            ...
        ValueError: not a regime prior: malformed regime prior: 'normal_gamma'
        """
        from bayes_mem.live.prior_set import PriorSetError, RegimePrior

        try:
            regime = RegimePrior.from_dict(published)
        except PriorSetError as exc:
            raise ValueError(f"not a regime prior: {exc}") from exc
        r = max_run_length or regime.max_run_length or DEFAULT_MAX_RUN_LENGTH
        return cls(streams, regime.normal_gamma, hazard=regime.hazard, max_run_length=r, k=k)

    def _check_x(self, x: Any) -> Any:
        if type(x) is float and self._one:  # fast path for one stream
            if abs(x) <= MAX_ABS_OBSERVATION:  # False for NaN
                return x
            raise ValueError(
                f"x must be finite with |x| <= {MAX_ABS_OBSERVATION:g}, got {x!r} for stream "
                f"{self._names[0]!r}"
            )
        arr = np.asarray(x)
        if (
            arr.dtype.kind not in "iuf"
            or arr.shape not in ((self._n,), ())
            or (arr.shape == () and not self._one)
        ):
            raise ValueError(
                f"x must be {self._n} real numbers in stream order, got shape {arr.shape} of "
                f"{arr.dtype}" + (" (booleans are refused)" if arr.dtype.kind == "b" else "")
            )
        arr = arr.astype(float).reshape(self._n)
        bad = ~(np.abs(arr) <= MAX_ABS_OBSERVATION)
        if bad.any():
            i = np.flatnonzero(bad)[:3]
            named = ", ".join(f"{self._names[j]!r}: {arr[j].item()!r}" for j in i)
            raise ValueError(
                f"x must be finite with |x| <= {MAX_ABS_OBSERVATION:g} (NaN is refused: skip or "
                f"fill the day explicitly), got {named}"
            )
        return float(arr[0]) if self._one else arr[:, None]

    def _joint(self, x: Any, off: int) -> np.ndarray:
        views = self._views[off]
        if views is None:  # the live block's views at this offset, made once
            sl = slice(off, off + self._r + 1)
            views = self._views[off] = (self._mu[..., sl], self._beta[..., sl], self._v[..., sl])
        mu, beta, v = views
        d = np.subtract(x, mu, out=self._dev)
        kk = np.multiply(d, d, out=self._kk)
        kk *= self._a
        beta += kk
        d *= self._ik
        mu += d
        np.log(beta, out=kk)
        kk *= self._alpha_next  # M'_j = D_{j+1} - alpha_{j+1} log beta_j'
        z = np.subtract(v, kk, out=self._dev)  # d is spent: its buffer takes z (less memory)
        z += self._d_next_bound
        return z

    def _grown_marginal(self, j: int) -> Any:
        if self._one:
            return self._d_last - self._kk.item(j - 1)
        return self._d_next[:, j - 1] - self._kk[:, j - 1]

    def _log_marginal(self, off: int) -> np.ndarray:
        beta = self._beta[..., off : off + self._r + 1]
        return self._d - self._alpha * np.log(beta)

    def _reset_first(self, col: int) -> None:
        self._mu[..., col] = self._mu_first
        self._beta[..., col] = self._beta_first

    def _prior_json(self) -> dict[str, Any]:
        return {k: float(v[0]) if v.shape == (1,) else v.tolist() for k, v in self._prior.items()}

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        if np.any(arrays["_beta"] <= 0.0):
            raise ValueError("state.beta must be > 0")


class BetaBernoulliBOCPD(_BOCPD):
    """BOCPD of N win/loss streams with a Beta prior on each regime's win rate (Beta-Bernoulli
    predictive). Observations are booleans or 0/1. Other parameters as
    :class:`NormalGammaBOCPD`; ``prior`` is a :class:`BetaPrior` (default Beta(1, 1)) or a
    mapping ``{"a": ..., "b": ...}`` of numbers or N numbers.

    Examples
    --------
    A family winning two trades in three for 60 trades, then losing every one:

    >>> from bayes_mem.live import BetaPrior
    >>> det = BetaBernoulliBOCPD(["momentum"], BetaPrior(2.0, 2.0), hazard=1 / 100, k=10)
    >>> p = [det.update(won).p_change[0] for won in [True, True, False] * 20 + [False] * 8]
    >>> round(float(max(p[:60])), 3)  # before the change
    0.085
    >>> [round(float(v), 2) for v in p[60:]]  # the losing streak
    [0.1, 0.16, 0.24, 0.34, 0.47, 0.59, 0.65, 0.71]
    """

    model = "beta_bernoulli"
    _state_names = ("_wins", "_marg")

    def __init__(
        self,
        streams: int | Sequence[str],
        prior: BetaPrior | Mapping[str, Any] | None = None,
        *,
        hazard: float | Sequence[float] | np.ndarray = DEFAULT_HAZARD,
        max_run_length: int = DEFAULT_MAX_RUN_LENGTH,
        k: int = DEFAULT_K,
    ) -> None:
        super().__init__(streams, hazard=hazard, max_run_length=max_run_length, k=k)
        n, r1 = self._n, self._r + 1
        if prior is None:
            prior = BetaPrior()
        if isinstance(prior, BetaPrior):
            prior = prior.to_dict()
        if not isinstance(prior, Mapping) or set(prior) != {"a", "b"}:
            raise TypeError(f"prior must be a BetaPrior or a mapping {{'a', 'b'}}, got {prior!r}")
        a0 = _per_stream(prior["a"], n, "prior a", positive=True)
        b0 = _per_stream(prior["b"], n, "prior b", positive=True)
        self._prior = {"a": a0, "b": b0}
        j = np.arange(r1, dtype=float)
        self._bound = 0.0 if self._one else np.zeros(n)  # a probability: log <= 0
        self._a0 = self._col(np.broadcast_to(a0, (n,)))
        if not self._one:
            self._a0 = self._a0[:, None]
        total = (a0 + b0)[:, None] + j  # a_j + b_j = a0 + b0 + j
        self._total = self._rows(total)
        self._log_total = self._rows(np.log(total))
        self._wins = self._buffer(0.0)  # wins in the run's data, per run length
        self._marg = self._buffer(0.0)  # M_j, log marginal likelihood of the run's data
        self._sel = np.empty(self._shape(r1))

    def _check_x(self, x: Any) -> Any:
        if (x is True or x is False) and self._one:
            return x
        arr = np.asarray(x)
        if (
            arr.dtype.kind not in "biuf"
            or arr.shape not in ((self._n,), ())
            or (arr.shape == () and not self._one)
        ):
            raise ValueError(
                f"x must be {self._n} outcomes (bool or 0/1) in stream order, got shape "
                f"{arr.shape} of {arr.dtype}"
            )
        arr = arr.reshape(self._n)
        if arr.dtype.kind != "b":
            bad = ~((arr == 0) | (arr == 1))
            if bad.any():
                i = np.flatnonzero(bad)[:3]
                named = ", ".join(f"{self._names[j]!r}: {arr[j].item()!r}" for j in i)
                raise ValueError(f"outcomes must be True/False or 0/1, got {named}")
            arr = arr == 1
        return bool(arr[0]) if self._one else arr[:, None]

    def _joint(self, x: Any, off: int) -> np.ndarray:
        sl = slice(off, off + self._r + 1)
        wins, marg = self._wins[..., sl], self._marg[..., sl]
        a = np.add(self._a0, wins, out=self._sel)
        pred = np.where(x, a, self._total - a)  # a_j if won else b_j
        np.log(pred, out=pred)
        pred -= self._log_total
        marg += pred
        wins += x
        return np.add(self._v[..., sl], marg, out=self._z)

    def _grown_marginal(self, j: int) -> Any:
        if self._one:
            return self._marg.item(self._off + j - 1)
        return self._marg[:, self._off + j - 1]

    def _log_marginal(self, off: int) -> np.ndarray:
        return self._marg[..., off : off + self._r + 1]

    def _reset_first(self, col: int) -> None:
        self._wins[..., col] = 0.0
        self._marg[..., col] = 0.0

    def _prior_json(self) -> dict[str, Any]:
        return {k: float(v[0]) if v.shape == (1,) else v.tolist() for k, v in self._prior.items()}

    def _check_state(self, arrays: dict[str, np.ndarray]) -> None:
        wins = arrays["_wins"]
        if np.any(wins < 0.0) or np.any(wins > np.arange(self._r + 1)):
            raise ValueError("state.wins must be in [0, run length]")
        if np.any(arrays["_marg"] > 0.0):
            raise ValueError("state.marg must be <= 0 (log probabilities)")


def load_detector(data: Mapping[str, Any] | str) -> NormalGammaBOCPD | BetaBernoulliBOCPD:
    """Restore either detector from its snapshot (a mapping or the JSON text).

    Examples
    --------
    >>> det = NormalGammaBOCPD(["AAPL"], hazard=1 / 100)
    >>> for x in (0.3, -1.2, 0.8):
    ...     _ = det.update(x)
    >>> restored = load_detector(det.to_json())
    >>> type(restored).__name__, restored.streams, restored.steps
    ('NormalGammaBOCPD', ('AAPL',), 3)
    >>> restored.update(0.1).p_change == det.update(0.1).p_change  # the same state exactly
    array([ True])
    """
    detector = _BOCPD.from_json(data) if isinstance(data, str) else _BOCPD.from_snapshot(data)
    assert isinstance(detector, NormalGammaBOCPD | BetaBernoulliBOCPD)  # the snapshot's model
    return detector


# ---------------------------------------------------------------------- acting on it
def regime_factor(
    p_change: float | np.ndarray,
    *,
    floor: float = 0.5,
    start: float = 0.3,
    full: float = 0.8,
) -> float | np.ndarray:
    """Position-limit multiplier in [floor, 1] from P(change within the last k observations):
    1 while ``p_change <= start``, ``floor`` once ``p_change >= full``, linear in between. A
    number gives a float, an array an array of the same shape. Feed it to
    ``combine_limits(regime=...)``.

    Examples
    --------
    >>> import numpy as np
    >>> regime_factor(0.2), regime_factor(0.55), regime_factor(0.9)
    (1.0, 0.75, 0.5)
    >>> regime_factor(np.array([0.2, 0.55, 0.9]), floor=0.0).round(3).tolist()
    [1.0, 0.5, 0.0]
    """
    floor = check_real(floor, "floor")
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")
    start = check_real(start, "start")
    full = check_real(full, "full")
    if not 0.0 <= start < full <= 1.0:
        raise ValueError(f"need 0 <= start < full <= 1, got start={start!r}, full={full!r}")
    if type(p_change) is float:  # one probability (the engine's case): the same arithmetic
        if not 0.0 <= p_change <= 1.0:  # False for NaN
            raise ValueError(f"p_change must be probabilities in [0, 1], got {p_change!r:.200}")
        return 1.0 - (1.0 - floor) * min(max((p_change - start) / (full - start), 0.0), 1.0)
    p = np.asarray(p_change, dtype=float)
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"p_change must be probabilities in [0, 1], got {p_change!r:.200}")
    ramp = np.clip((p - start) / (full - start), 0.0, 1.0)
    out = 1.0 - (1.0 - floor) * ramp
    return float(out) if out.ndim == 0 else out


class ChangeAlarm:
    """Edge-triggered alarm with hysteresis, per stream: it fires once when ``p_change`` reaches
    ``on`` and re-arms only after it falls below ``off`` (so one change gives one alarm, however
    long the probability stays high).

    Examples
    --------
    >>> alarm = ChangeAlarm(1, on=0.5, off=0.2)
    >>> [bool(alarm.update(p)[0]) for p in (0.1, 0.6, 0.9, 0.3, 0.1, 0.7)]
    [False, True, False, False, False, True]
    """

    def __init__(self, n: int, *, on: float = 0.5, off: float = 0.2) -> None:
        self._n = check_int(n, "n", minimum=1)
        self._on = check_probability_open(on, "on")
        self._off = check_probability_open(off, "off")
        if not self._off < self._on:
            raise ValueError(f"need off < on, got off={off!r}, on={on!r}")
        self._armed = np.ones(self._n, dtype=bool)

    @property
    def on(self) -> float:
        """The probability at which an armed alarm fires.

        Examples
        --------
        >>> ChangeAlarm(2, on=0.6, off=0.1).on
        0.6
        """
        return self._on

    @property
    def off(self) -> float:
        """The probability below which a fired alarm re-arms (< :attr:`on`).

        Examples
        --------
        >>> ChangeAlarm(2, on=0.6, off=0.1).off
        0.1
        """
        return self._off

    @property
    def armed(self) -> np.ndarray:
        """Per stream, whether the alarm can fire (a copy).

        Examples
        --------
        Stream 0 fires at 0.7 and stays disarmed at 0.4 (not below ``off``):

        >>> alarm = ChangeAlarm(2, on=0.5, off=0.2)
        >>> alarm.update([0.7, 0.1]), alarm.armed
        (array([ True, False]), array([False,  True]))
        >>> alarm.update([0.4, 0.1]), alarm.armed
        (array([False, False]), array([False,  True]))
        """
        return self._armed.copy()

    def update(self, p_change: float | np.ndarray) -> np.ndarray:
        """Feed this step's probabilities (N values); return where the alarm fired (bool).

        Examples
        --------
        Two streams: the first fires once however long it stays high, and again only after it fell
        below ``off``; the second, at 0.3 after firing, is not re-armed (0.3 >= ``off``):

        >>> alarm = ChangeAlarm(2, on=0.5, off=0.2)
        >>> [alarm.update(p).tolist() for p in ([0.6, 0.1], [0.9, 0.55], [0.1, 0.3], [0.8, 0.9])]
        [[True, False], [False, True], [False, False], [True, False]]
        """
        p = np.asarray(p_change, dtype=float).reshape(-1)
        if p.shape != (self._n,) or not np.all((p >= 0.0) & (p <= 1.0)):
            raise ValueError(f"p_change must be {self._n} probabilities, got {p_change!r:.200}")
        fired = self._armed & (p >= self._on)
        self._armed = (self._armed & ~fired) | (p < self._off)
        return fired

    def snapshot(self) -> dict[str, Any]:
        """The alarm as JSON-ready data: thresholds and which streams are armed.

        Examples
        --------
        >>> alarm = ChangeAlarm(2, on=0.5, off=0.2)
        >>> _ = alarm.update([0.9, 0.0])
        >>> alarm.snapshot()
        {'schema': 'bayes_mem.change_alarm/1', 'on': 0.5, 'off': 0.2, 'armed': [False, True]}
        """
        return {
            "schema": ALARM_SCHEMA,
            "on": self._on,
            "off": self._off,
            "armed": self._armed.tolist(),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> ChangeAlarm:
        """Rebuild an alarm exactly from :meth:`snapshot` output; raises ``ValueError`` for
        malformed data.

        Examples
        --------
        The restored alarm is still disarmed where the original was:

        >>> alarm = ChangeAlarm(2, on=0.5, off=0.2)
        >>> _ = alarm.update([0.9, 0.0])
        >>> again = ChangeAlarm.from_snapshot(alarm.snapshot())
        >>> again.armed, again.update([0.9, 0.9])
        (array([False,  True]), array([False,  True]))
        """
        check_schema(data, ALARM_SCHEMA, show_found=False)
        armed = data.get("armed")
        if not isinstance(armed, list) or not armed or not all(type(a) is bool for a in armed):
            raise ValueError("alarm snapshot: armed must be a non-empty list of booleans")
        out = cls(len(armed), on=data["on"], off=data["off"])
        out._armed = np.array(armed, dtype=bool)
        return out
