"""Hansen's (1994) skewed Student-t, standardised to mean 0 and variance 1.

Parameters: ``nu`` > 2 (tail weight; the variance must exist) and ``lam`` in (-1, 1) (skew; 0 gives
the symmetric standardised t, negative puts more mass in the left tail). Every quantity reduces to
the standard Student-t CDF ``T``, density ``f`` and partial mean
``M(t) = -(nu + t^2) / (nu - 1) f(t)`` (McNeil, Frey & Embrechts, Quantitative Risk Management,
Ex. 2.19), so the lower-tail expectation needed for expected shortfall is closed-form. So is the
second partial moment: integrating ``t M'(t) = t^2 f(t)`` by parts gives
``E[T^2 1{T <= t}] = ((nu - 1) t M(t) + nu T(t)) / (nu - 2)``.

Asymmetry weight: ``kappa = E[Z^2 1{Z < 0}]`` (:func:`asymmetry_weight`, the second partial moment
at 0) is the share of the unit variance below zero: 1/2 for ``lam = 0``, more for a negative skew
(0.537 at ``nu = 6, lam = -0.1``; 0.581 at ``nu = 5, lam = -0.2``). It is the weight of the
GJR-GARCH asymmetric term in the persistence and the long-run variance
(:mod:`bayes_mem.live.gjr_garch`).

Reflection: ``-Z`` for ``Z ~ skew-t(nu, lam)`` is ``skew-t(nu, -lam)`` (``a`` is odd in ``lam``,
``b`` even, and the density's two halves swap), so a short position's upper tail is the lower tail
of the mirrored law (:meth:`SkewT.mirrored`).

All functions broadcast over arrays of draws; :class:`SkewT` precomputes the per-draw constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special


@dataclass(frozen=True)
class SkewT:
    """Per-draw constants of Hansen's standardised skewed t (arrays of one shape).

    Examples
    --------
    A left-skewed law (``lam < 0``): its 5% quantile and expected shortfall in units of the
    standard deviation, and the mirrored law (a short position's view) flips the quantile.

    >>> import numpy as np
    >>> z = SkewT.from_params(6.0, -0.1)
    >>> print(f"{float(z.cdf(0.0)):.4f} {float(z.ppf(0.05)):.4f}")
    0.4801 -1.6508
    >>> print(f"{float(z.expected_shortfall(0.05)):.4f} {float(z.mirrored().ppf(0.95)):.4f}")
    2.3418 1.6508
    >>> draws = z.sample(np.random.default_rng(0), 100_000)
    >>> print(f"{draws.std():.2f} {np.quantile(draws, 0.05):.3f}")
    1.00 -1.650
    """

    nu: np.ndarray
    lam: np.ndarray
    a: np.ndarray
    b: np.ndarray
    k: np.ndarray  # sqrt(nu / (nu - 2)): standardised-t to standard-t scale
    log_c: np.ndarray  # log of the standard t(nu) density at 0

    @classmethod
    def from_params(cls, nu: np.ndarray, lam: np.ndarray) -> SkewT:
        """The laws of ``nu`` and ``lam`` (broadcast against each other), constants computed
        once; ``nu <= 2`` or ``|lam| >= 1`` raises ``ValueError``.

        Examples
        --------
        ``k = sqrt(nu / (nu - 2))`` rescales the standardised t to the standard one; ``lam = 0``
        gives ``a = 0, b = 1``:

        >>> z = SkewT.from_params([6.0, 5.0], 0.0)
        >>> z.k.round(6).tolist(), z.a.tolist(), z.b.tolist()
        ([1.224745, 1.290994], [0.0, 0.0], [1.0, 1.0])
        >>> try:
        ...     SkewT.from_params(2.0, 0.0)
        ... except ValueError as exc:
        ...     print(exc)  # doctest: +ELLIPSIS
        nu must be finite and > 2, got min ...
        """
        nu = np.asarray(nu, dtype=float)
        lam = np.asarray(lam, dtype=float)
        nu, lam = np.broadcast_arrays(nu, lam)
        if not np.all(np.isfinite(nu)) or np.any(nu <= 2.0):
            raise ValueError(f"nu must be finite and > 2, got min {np.min(nu)!r}")
        if not np.all(np.isfinite(lam)) or np.any(np.abs(lam) >= 1.0):
            raise ValueError(
                f"lam must be in (-1, 1), got extreme {lam.flat[np.argmax(np.abs(lam))]!r}"
            )
        log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
        k = np.sqrt(nu / (nu - 2.0))
        # Hansen's c is the standardised-t density constant: exp(log_c) * k
        a = 4.0 * lam * np.exp(log_c) * k * (nu - 2.0) / (nu - 1.0)
        b = np.sqrt(1.0 + 3.0 * lam**2 - a**2)
        return cls(nu.copy(), lam.copy(), a, b, k, log_c)

    @property
    def mode_split(self) -> np.ndarray:
        """The point -a/b where the left and right halves meet.

        Examples
        --------
        0 for a symmetric law; right of 0 for a left-skewed one (the mode sits right of the
        mean):

        >>> abs(float(SkewT.from_params(6.0, 0.0).mode_split))
        0.0
        >>> round(float(SkewT.from_params(6.0, -0.1).mode_split), 4)
        0.1494
        """
        return -self.a / self.b

    def _t(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        left = z < self.mode_split
        s = np.where(left, 1.0 - self.lam, 1.0 + self.lam)
        t = (self.b * z + self.a) / s * self.k
        return t, s, left

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """``P(Z <= z)``.

        Examples
        --------
        Symmetric: the standard t(6) CDF at ``z sqrt(6 / 4)`` (checked against scipy):

        >>> import numpy as np
        >>> from scipy import stats
        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> z.cdf(np.array([-1.0, 0.0, 1.0])).round(6).tolist()
        [0.133285, 0.5, 0.866715]
        >>> round(float(stats.t.cdf(-np.sqrt(1.5), 6)), 6)
        0.133285
        """
        t, _, left = self._t(z)
        tt = special.stdtr(self.nu, t)
        return np.where(
            left, (1.0 - self.lam) * tt, (1.0 - self.lam) / 2 + (1.0 + self.lam) * (tt - 0.5)
        )

    def pdf(self, z: np.ndarray) -> np.ndarray:
        """The density at ``z``.

        Examples
        --------
        At 0 the standard t(6) density, ``15 / (16 sqrt(6))``, times ``sqrt(6 / 4)`` (the
        standardising scale): ``15 / 32`` = 0.46875 exactly:

        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> round(float(z.pdf(0.0)), 10)
        0.46875
        """
        t, _, _ = self._t(z)
        return self.b * self.k * _t_pdf(t, self.nu, self.log_c)

    def ppf(self, p: float | np.ndarray) -> np.ndarray:
        """The quantile function, the inverse of :meth:`cdf`.

        Examples
        --------
        Symmetric: the t(6) quantile divided by ``sqrt(6 / 4)`` (checked against scipy):

        >>> import numpy as np
        >>> from scipy import stats
        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> round(float(z.ppf(0.05)), 6), round(float(stats.t.ppf(0.05, 6) / np.sqrt(1.5)), 6)
        (-1.5866, -1.5866)
        >>> w = SkewT.from_params(6.0, -0.1)
        >>> round(float(w.cdf(w.ppf(0.3))), 12)
        0.3
        """
        p = np.asarray(p, dtype=float)
        split = (1.0 - self.lam) / 2  # F at the split point
        left = p < split
        s = np.where(left, 1.0 - self.lam, 1.0 + self.lam)
        tp = np.where(left, p / (1.0 - self.lam), 0.5 + (p - split) / (1.0 + self.lam))
        t = special.stdtrit(self.nu, tp)
        return (t / self.k * s - self.a) / self.b

    def partial_mean(self, z: np.ndarray) -> np.ndarray:
        """``E[Z 1{Z <= z}]`` (closed form).

        Examples
        --------
        At 0 for the symmetric t(6), ``-E|Z| / 2`` = -3/8 (checked by scipy's quadrature):

        >>> import numpy as np
        >>> from scipy import stats
        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> round(float(z.partial_mean(0.0)), 10)
        -0.375
        >>> round(float(stats.t.expect(lambda t: t / np.sqrt(1.5), args=(6,), ub=0.0)), 10)
        -0.375
        """
        t, _, left = self._t(z)
        nu, lam, a, b, k = self.nu, self.lam, self.a, self.b, self.k
        tt = special.stdtr(nu, t)
        m = _t_partial_mean(t, nu, self.log_c)
        m0 = _t_partial_mean(np.zeros_like(t), nu, self.log_c)
        sl, sr = 1.0 - lam, 1.0 + lam
        left_part = sl / b * (sl / k * m - a * tt)
        at_split = sl / b * (sl / k * m0 - a * 0.5)
        right_part = at_split + sr / b * (sr / k * (m - m0) - a * (tt - 0.5))
        return np.where(left, left_part, right_part)

    def partial_moment2(self, z: np.ndarray) -> np.ndarray:
        """``E[Z^2 1{Z <= z}]`` for finite ``z`` (closed form; tends to 1, the variance).

        Examples
        --------
        Half the unit variance lies below 0 for a symmetric law, more for a left skew:

        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> round(float(z.partial_moment2(0.0)), 6), round(float(z.partial_moment2(1e6)), 6)
        (0.5, 1.0)
        >>> round(float(SkewT.from_params(6.0, -0.1).partial_moment2(0.0)), 4)
        0.5372
        """
        t, _, left = self._t(z)
        nu, lam, a, b, k = self.nu, self.lam, self.a, self.b, self.k
        tt = special.stdtr(nu, t)
        m = _t_partial_mean(t, nu, self.log_c)
        m0 = _t_partial_mean(np.zeros_like(t), nu, self.log_c)
        i2 = _t_partial_moment2(t, tt, m, nu)
        i20 = nu / (2.0 * (nu - 2.0))  # at t = 0 (the t is symmetric)
        sl, sr = 1.0 - lam, 1.0 + lam
        # Z = (s t / k - a) / b on each half, where t has density s f(t)
        left_part = sl / b**2 * ((sl / k) ** 2 * i2 - 2.0 * a * sl / k * m + a * a * tt)
        at_split = sl / b**2 * ((sl / k) ** 2 * i20 - 2.0 * a * sl / k * m0 + a * a * 0.5)
        right_part = at_split + sr / b**2 * (
            (sr / k) ** 2 * (i2 - i20) - 2.0 * a * sr / k * (m - m0) + a * a * (tt - 0.5)
        )
        return np.where(left, left_part, right_part)

    def mirrored(self) -> SkewT:
        """The law of ``-Z``: the same tail weight with the skew reversed.

        Examples
        --------
        The mirrored quantile at ``p`` is minus the original's at ``1 - p``:

        >>> z = SkewT.from_params([5.0, 6.0], [-0.2, 0.1])
        >>> z.mirrored().lam.tolist()
        [0.2, -0.1]
        >>> z.mirrored().ppf(0.9).round(6).tolist(), (-z.ppf(0.1)).round(6).tolist()
        ([1.189781, 1.146301], [1.189781, 1.146301])
        """
        return SkewT.from_params(self.nu, -self.lam)

    def expected_shortfall(self, alpha: float | np.ndarray) -> np.ndarray:
        """``-E[Z | Z <= F^-1(alpha)]`` for a tail probability ``alpha`` (a positive loss).

        Examples
        --------
        The 5% ES of the standardised t(6) is 2.21 standard deviations (the normal's: 2.06):

        >>> z = SkewT.from_params(6.0, 0.0)  # symmetric: the standardised t(6)
        >>> round(float(z.expected_shortfall(0.05)), 4)
        2.2133
        >>> round(float(-z.partial_mean(z.ppf(0.05)) / 0.05), 4)  # the definition
        2.2133
        """
        q = self.ppf(alpha)
        return -self.partial_mean(q) / alpha

    def sample(
        self, rng: np.random.Generator, size: tuple[int, ...] | int | None = None
    ) -> np.ndarray:
        """Draws by inversion (:meth:`ppf` of uniforms); ``size`` is broadcast with the laws'
        shape (one draw per law by default).

        Examples
        --------
        >>> import numpy as np
        >>> z = SkewT.from_params([5.0, 8.0], 0.0)  # two laws
        >>> rng = np.random.default_rng(0)
        >>> z.sample(rng).shape, z.sample(rng, (3, 2)).shape
        ((2,), (3, 2))
        >>> x = SkewT.from_params(6.0, -0.1).sample(np.random.default_rng(0), 100_000)
        >>> abs(float(x.mean())) < 0.01, round(float(x.std()), 2)  # standardised
        (True, 1.0)
        """
        shape = np.broadcast_shapes(
            self.nu.shape, size if isinstance(size, tuple) else (() if size is None else (size,))
        )
        return self.ppf(rng.random(shape))


def asymmetry_weight(nu: np.ndarray | float, lam: np.ndarray | float) -> np.ndarray:
    """``kappa = E[Z^2 1{Z < 0}]`` for ``Z ~ skew-t(nu, lam)`` (closed form, broadcast over
    ``nu`` and ``lam``): in (0, 1), 1/2 at ``lam = 0``, ``1 - kappa(nu, -lam)`` by reflection.

    Examples
    --------
    >>> print(f"{float(asymmetry_weight(6.0, 0.0)):.3f} {float(asymmetry_weight(6.0, -0.1)):.3f}")
    0.500 0.537
    """
    nu, lam = np.broadcast_arrays(np.asarray(nu, dtype=float), np.asarray(lam, dtype=float))
    return SkewT.from_params(nu, lam).partial_moment2(np.zeros(nu.shape))


def _t_pdf(t: np.ndarray, nu: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    return np.exp(log_c - (nu + 1.0) / 2.0 * np.log1p(t * t / nu))


def _t_partial_moment2(t: np.ndarray, tt: np.ndarray, m: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """``E[T^2 1{T <= t}]`` for T ~ t(nu) from ``T(t)`` and ``M(t)`` (integration by parts)."""
    return ((nu - 1.0) * t * m + nu * tt) / (nu - 2.0)


def _t_partial_mean(t: np.ndarray, nu: np.ndarray, log_c: np.ndarray) -> np.ndarray:
    """``E[T 1{T <= t}]`` for T ~ t(nu): ``-(nu + t^2) / (nu - 1) f(t)``."""
    return -(nu + t * t) / (nu - 1.0) * _t_pdf(t, nu, log_c)
