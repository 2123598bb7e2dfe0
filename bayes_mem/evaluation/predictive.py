"""Samplers of one-day predictive distributions, one per forecast day, for simulated backtests.

Each sampler holds the predictive of ``n`` consecutive forecast days (daily log returns as
fractions, 0.01 = 1%) and draws ``m`` scenario returns per day: :meth:`sample` returns an
``(n, m)`` array, row ``i`` from day ``i``'s predictive. :meth:`take` selects days (a slice), so
long backtests can be simulated in blocks of days.

- :class:`EmpiricalPredictive`: the empirical distribution of a window of past returns
  (resampling with replacement), the historical-percentile forecaster's predictive.
- :class:`LocationScalePredictive`: ``loc + scale * T`` with ``T`` standard Student-t(``nu``), or
  standard normal when ``nu`` is ``None``.
- :class:`MixturePredictive`: the equal-weight mixture over S posterior draws of
  ``mu_s + sd_s Z_s``, ``Z_s`` Hansen skew-t(``nu_s``, ``lam_s``) with unit variance (the return
  model's predictive): pick a draw uniformly, then draw its skew-t.
- :class:`FilteredEmpiricalPredictive`: filtered historical simulation, ``loc + scale * z`` with
  ``z`` resampled from a pool of standardised residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_mem.live.skewt import SkewT


def _check_m(m: int) -> int:
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
        raise ValueError(f"m (scenarios per day) must be a positive integer, got {m!r}")
    return int(m)


@dataclass(frozen=True)
class EmpiricalPredictive:
    """Day ``i`` resamples ``returns[starts[i] : starts[i] + window]`` uniformly.

    Examples
    --------
    Three forecast days, each resampling a 2-day window of the past returns:

    >>> import numpy as np
    >>> p = EmpiricalPredictive(np.array([0.01, -0.02, 0.03, 0.0]), np.array([0, 1, 2]), 2)
    >>> p.n, p.window
    (3, 2)
    """

    returns: np.ndarray
    starts: np.ndarray
    window: int

    def __post_init__(self) -> None:
        r = np.asarray(self.returns, dtype=float)
        starts = np.asarray(self.starts, dtype=np.intp)
        if r.ndim != 1 or starts.ndim != 1:
            raise ValueError("returns and starts must be 1-d")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if starts.size and (starts.min() < 0 or starts.max() + self.window > r.size):
            raise ValueError("a window runs outside the returns")
        object.__setattr__(self, "returns", r)
        object.__setattr__(self, "starts", starts)

    @property
    def n(self) -> int:
        """Number of forecast days.

        Examples
        --------
        >>> import numpy as np
        >>> p = EmpiricalPredictive(np.array([0.01, -0.02, 0.03, 0.0]), np.array([0, 1, 2]), 2)
        >>> p.n
        3
        """
        return self.starts.size

    def take(self, days: slice) -> EmpiricalPredictive:
        """The predictive of the forecast days ``days`` (a slice).

        Examples
        --------
        >>> import numpy as np
        >>> p = EmpiricalPredictive(np.array([0.01, -0.02, 0.03, 0.0]), np.array([0, 1, 2]), 2)
        >>> p.take(slice(1, None)).starts
        array([1, 2])
        """
        return EmpiricalPredictive(self.returns, self.starts[days], self.window)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` scenario returns per day, shape ``(n, m)``: row ``i`` resampled from day ``i``'s
        window.

        Examples
        --------
        Day 0 draws from ``{0.01, -0.02}``, day 1 from ``{-0.02, 0.03}``, day 2 from
        ``{0.03, 0.0}``:

        >>> import numpy as np
        >>> p = EmpiricalPredictive(np.array([0.01, -0.02, 0.03, 0.0]), np.array([0, 1, 2]), 2)
        >>> p.sample(np.random.default_rng(0), 4)
        array([[-0.02, -0.02, -0.02,  0.01],
               [-0.02, -0.02, -0.02, -0.02],
               [ 0.03,  0.  ,  0.  ,  0.  ]])
        """
        m = _check_m(m)
        idx = rng.integers(0, self.window, size=(self.n, m))
        return self.returns[self.starts[:, None] + idx]


@dataclass(frozen=True)
class LocationScalePredictive:
    """Day ``i``: ``loc[i] + scale[i] * T``, ``T`` ~ Student-t(``nu[i]``) (standard, not unit
    variance), or standard normal when ``nu`` is ``None``.

    Examples
    --------
    A standard t(4) has variance ``4 / 2 = 2``, so scale 1% gives a 1.41% daily sd:

    >>> import numpy as np
    >>> p = LocationScalePredictive(np.array([0.0]), np.array([0.01]), nu=np.array([4.0]))
    >>> round(float(p.sample(np.random.default_rng(0), 20000).std()), 4)
    0.014
    """

    loc: np.ndarray
    scale: np.ndarray
    nu: np.ndarray | None = None

    def __post_init__(self) -> None:
        loc = np.asarray(self.loc, dtype=float)
        scale = np.asarray(self.scale, dtype=float)
        if loc.ndim != 1 or loc.shape != scale.shape:
            raise ValueError(
                f"loc and scale must be 1-d of one shape, got {loc.shape}, {scale.shape}"
            )
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("loc must be finite and scale finite and > 0")
        object.__setattr__(self, "loc", loc)
        object.__setattr__(self, "scale", scale)
        if self.nu is not None:
            nu = np.asarray(self.nu, dtype=float)
            if nu.shape != loc.shape or not np.all(np.isfinite(nu)) or np.any(nu <= 0):
                raise ValueError("nu must be finite, > 0 and of the shape of loc")
            object.__setattr__(self, "nu", nu)

    @property
    def n(self) -> int:
        """Number of forecast days.

        Examples
        --------
        >>> import numpy as np
        >>> p = LocationScalePredictive(np.array([0.0, 0.001]), np.array([0.01, 0.02]))
        >>> p.n
        2
        """
        return self.loc.size

    def take(self, days: slice) -> LocationScalePredictive:
        """The predictive of the forecast days ``days`` (a slice).

        Examples
        --------
        >>> import numpy as np
        >>> p = LocationScalePredictive(np.array([0.0, 0.001]), np.array([0.01, 0.02]))
        >>> p.take(slice(1, 2))
        LocationScalePredictive(loc=array([0.001]), scale=array([0.02]), nu=None)
        """
        nu = None if self.nu is None else self.nu[days]
        return LocationScalePredictive(self.loc[days], self.scale[days], nu)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` scenario returns per day, shape ``(n, m)``.

        Examples
        --------
        Normal days with means 0 and 0.1% and sds 1% and 2%, recovered from 20,000 draws:

        >>> import numpy as np
        >>> p = LocationScalePredictive(np.array([0.0, 0.001]), np.array([0.01, 0.02]))
        >>> x = p.sample(np.random.default_rng(0), 20000)
        >>> x.shape, np.round(x.mean(axis=1), 4), np.round(x.std(axis=1), 3)
        ((2, 20000), array([0.   , 0.001]), array([0.01, 0.02]))
        """
        m = _check_m(m)
        if self.nu is None:
            z = rng.standard_normal((self.n, m))
        else:
            z = rng.standard_t(np.broadcast_to(self.nu[:, None], (self.n, m)))
        return self.loc[:, None] + self.scale[:, None] * z


def sample_skewt(
    rng: np.random.Generator, nu: np.ndarray, lam: np.ndarray, a: np.ndarray, b: np.ndarray,
    k: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Hansen skew-t draws with the constants of :class:`~bayes_mem.live.skewt.SkewT` (arrays of
    one shape, one draw each). Exact: Hansen's variable is ``(s t / k - a) / b`` with ``t`` the
    left half of a Student-t (``s = 1 - lam``) with probability ``(1 - lam) / 2``, else its right
    half (``s = 1 + lam``).

    Examples
    --------
    20,000 left-skewed draws (``nu = 5``, ``lam = -0.3``): mean 0 and sd 1 by construction, and
    the share below zero matches the closed-form CDF at 0:

    >>> import numpy as np
    >>> from bayes_mem.live.skewt import SkewT
    >>> inn = SkewT.from_params(np.full(20000, 5.0), np.full(20000, -0.3))
    >>> z = sample_skewt(np.random.default_rng(0), inn.nu, inn.lam, inn.a, inn.b, inn.k)
    >>> round(float(z.mean()), 1), round(float(z.std()), 2)
    (-0.0, 1.0)
    >>> round(float(np.mean(z < 0)), 2), round(float(inn.cdf(0.0)[0]), 2)
    (0.44, 0.44)
    """
    t = np.abs(rng.standard_t(nu))
    left = rng.random(nu.shape) < (1.0 - lam) / 2.0
    ts = np.where(left, -t * (1.0 - lam), t * (1.0 + lam))
    return (ts / k - a) / b


@dataclass(frozen=True)
class MixturePredictive:
    """Day ``i``: the equal-weight mixture over draws ``s`` of ``mu[i, s] + sd[i, s] Z``, ``Z``
    Hansen skew-t(``nu[i, s]``, ``lam[i, s]``) standardised to variance 1 (arrays (n, S)).

    Examples
    --------
    One day, two posterior draws with means 0 and 0.2% (sd 1%, symmetric t(5)):

    >>> import numpy as np
    >>> p = MixturePredictive(mu=np.array([[0.0, 0.002]]), sd=np.array([[0.01, 0.01]]),
    ...                       nu=np.array([[5.0, 5.0]]), lam=np.array([[0.0, 0.0]]))
    >>> p.n, p.mu.shape
    (1, (1, 2))
    """

    mu: np.ndarray
    sd: np.ndarray
    nu: np.ndarray
    lam: np.ndarray

    def __post_init__(self) -> None:
        arrays = [np.asarray(getattr(self, f), dtype=float) for f in ("mu", "sd", "nu", "lam")]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise ValueError(f"mu, sd, nu, lam must be 2-d (days, draws) of one shape: {shapes}")
        if not np.all(arrays[1] > 0):
            raise ValueError("sd must be > 0")
        for name, a in zip(("mu", "sd", "nu", "lam"), arrays, strict=True):
            object.__setattr__(self, name, a)
        object.__setattr__(self, "_inn", SkewT.from_params(arrays[2], arrays[3]))  # validates

    @property
    def n(self) -> int:
        """Number of forecast days.

        Examples
        --------
        >>> import numpy as np
        >>> p = MixturePredictive(mu=np.array([[0.0, 0.002]]), sd=np.array([[0.01, 0.01]]),
        ...                       nu=np.array([[5.0, 5.0]]), lam=np.array([[0.0, 0.0]]))
        >>> p.n
        1
        """
        return self.mu.shape[0]

    def take(self, days: slice) -> MixturePredictive:
        """The predictive of the forecast days ``days`` (a slice).

        Examples
        --------
        >>> import numpy as np
        >>> p = MixturePredictive(mu=np.array([[0.0, 0.002]]), sd=np.array([[0.01, 0.01]]),
        ...                       nu=np.array([[5.0, 5.0]]), lam=np.array([[0.0, 0.0]]))
        >>> p.take(slice(0, 1)).mu
        array([[0.   , 0.002]])
        """
        return MixturePredictive(self.mu[days], self.sd[days], self.nu[days], self.lam[days])

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` scenario returns per day, shape ``(n, m)``: a draw picked uniformly, then its
        skew-t.

        Examples
        --------
        The mixture mean is ``(0 + 0.002) / 2 = 0.001``; its sd
        ``sqrt(0.01^2 + 0.001^2) = 0.01005``:

        >>> import numpy as np
        >>> p = MixturePredictive(mu=np.array([[0.0, 0.002]]), sd=np.array([[0.01, 0.01]]),
        ...                       nu=np.array([[5.0, 5.0]]), lam=np.array([[0.0, 0.0]]))
        >>> x = p.sample(np.random.default_rng(0), 20000)
        >>> x.shape, round(float(x.mean()), 4), round(float(x.std()), 3)
        ((1, 20000), 0.001, 0.01)
        """
        m = _check_m(m)
        n, s = self.mu.shape
        pick = rng.integers(0, s, size=(n, m))
        rows = np.arange(n)[:, None]
        inn: SkewT = self._inn  # type: ignore[attr-defined]
        consts = (inn.nu, inn.lam, inn.a, inn.b, inn.k)
        z = sample_skewt(rng, *(c[rows, pick] for c in consts))
        return self.mu[rows, pick] + self.sd[rows, pick] * z


@dataclass(frozen=True)
class FilteredEmpiricalPredictive:
    """Filtered historical simulation: day ``i`` is ``loc[i] + scale[i] * z`` with ``z`` drawn
    uniformly from the standardised residuals ``pools[block[i]]`` (one pool per refit).

    Examples
    --------
    Two days sharing one pool of residuals ``{-1, +1}``:

    >>> import numpy as np
    >>> p = FilteredEmpiricalPredictive(loc=np.array([0.0, 0.001]), scale=np.array([0.01, 0.02]),
    ...                                 pools=np.array([[-1.0, 1.0]]), block=np.array([0, 0]))
    >>> p.n, p.pools.shape
    (2, (1, 2))
    """

    loc: np.ndarray
    scale: np.ndarray
    pools: np.ndarray  # (n_blocks, pool size)
    block: np.ndarray  # (n,) index into pools

    def __post_init__(self) -> None:
        loc, scale = (np.asarray(a, dtype=float) for a in (self.loc, self.scale))
        pools = np.asarray(self.pools, dtype=float)
        block = np.asarray(self.block, dtype=np.intp)
        if loc.ndim != 1 or scale.shape != loc.shape or block.shape != loc.shape:
            raise ValueError("loc, scale and block must be 1-d of one shape")
        if pools.ndim != 2 or pools.shape[1] < 1 or not np.all(np.isfinite(pools)):
            raise ValueError("pools must be a finite 2-d array (blocks, residuals)")
        if block.size and (block.min() < 0 or block.max() >= pools.shape[0]):
            raise ValueError("block indexes outside pools")
        if not np.all(scale > 0):
            raise ValueError("scale must be > 0")
        for name, a in (("loc", loc), ("scale", scale), ("pools", pools), ("block", block)):
            object.__setattr__(self, name, a)

    @property
    def n(self) -> int:
        """Number of forecast days.

        Examples
        --------
        >>> import numpy as np
        >>> p = FilteredEmpiricalPredictive(loc=np.array([0.0, 0.001]),
        ...                                 scale=np.array([0.01, 0.02]),
        ...                                 pools=np.array([[-1.0, 1.0]]), block=np.array([0, 0]))
        >>> p.n
        2
        """
        return self.loc.size

    def take(self, days: slice) -> FilteredEmpiricalPredictive:
        """The predictive of the forecast days ``days`` (a slice); the pools are shared.

        Examples
        --------
        >>> import numpy as np
        >>> p = FilteredEmpiricalPredictive(loc=np.array([0.0, 0.001]),
        ...                                 scale=np.array([0.01, 0.02]),
        ...                                 pools=np.array([[-1.0, 1.0]]), block=np.array([0, 0]))
        >>> p.take(slice(1, None)).loc
        array([0.001])
        """
        return FilteredEmpiricalPredictive(
            self.loc[days], self.scale[days], self.pools, self.block[days]
        )

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` scenario returns per day, shape ``(n, m)``: ``loc + scale * z``, ``z`` drawn
        from the day's pool.

        Examples
        --------
        Day 0 takes the values ``0 +- 0.01``, day 1 ``0.001 +- 0.02``:

        >>> import numpy as np
        >>> p = FilteredEmpiricalPredictive(loc=np.array([0.0, 0.001]),
        ...                                 scale=np.array([0.01, 0.02]),
        ...                                 pools=np.array([[-1.0, 1.0]]), block=np.array([0, 0]))
        >>> p.sample(np.random.default_rng(0), 4)
        array([[ 0.01 ,  0.01 ,  0.01 , -0.01 ],
               [-0.019, -0.019, -0.019, -0.019]])
        """
        m = _check_m(m)
        idx = rng.integers(0, self.pools.shape[1], size=(self.n, m))
        return self.loc[:, None] + self.scale[:, None] * self.pools[self.block[:, None], idx]
