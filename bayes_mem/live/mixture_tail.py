"""Fast lower-tail evaluation of equal-weight mixtures of skew-t components.

For each symbol (row) the one-day predictive is the mixture over S posterior draws of
``mu_s + sd_s Z_s`` with ``Z_s`` Hansen skew-t(``nu_s``, ``lam_s``). :class:`MixtureTail` holds the
per-draw constants (N, S) and evaluates, for a candidate quantile ``q`` per row, the mixture CDF,
its density and the lower partial mean ``E[X 1{X <= q}]`` in one pass, through the tabulated
Student-t tail (:mod:`bayes_mem.live.tail_table`), in cache-sized blocks of rows.

:meth:`MixtureTail.var_es` solves ``F(q) = alpha`` by Newton's method from a warm start and
returns VaR and ES; the ES uses the Rockafellar-Uryasev form ``-q + (q F(q) - E[X 1{X<=q}]) /
alpha``, which is stationary at the root, so the error of an iterate enters it only to second
order. Iteration stops when ``|F(q) - alpha| <= rtol * min(alpha, 1 - alpha)`` (the smaller tail:
levels below 0.5 are as accurate as those above); one more Newton step gives the VaR. With the
default ``rtol = 1e-2`` the relative error of VaR and ES is below ~2e-5 (a Newton step from an
iterate within ~0.3% of the root; tested against the exact scipy evaluation).

:class:`RowTail` is the same computation for a single row (a one-symbol model), arranged for few
numpy calls: contiguous 1-d constants, per-call weights folded into dot products, reused
buffers; it hands back to :class:`MixtureTail` where the table does not cover the iterate.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bayes_mem.live.skewt import SkewT
from bayes_mem.live.tail_table import N_COLS, S_CUT, U_CUT, C, lower_tail, row_offsets, snap_nu
from bayes_mem.live.tail_table import table as tail_table

# what _solve's ``evaluate(q, rows)`` gives: the mixture CDF, density and lower partial mean at
# ``q``, and an optional extra per-row quantity (None: none)
_Evaluation = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]

BLOCK_ELEMENTS = 8192  # components per block: keeps every temporary inside the L2 cache


_TL: np.ndarray | None = None


def _tl_table() -> np.ndarray:
    """The tail table's coefficients of ``TL`` alone, contiguous (built once)."""
    global _TL
    if _TL is None:
        _TL = np.ascontiguousarray(tail_table()[:, 0])
    return _TL


class MixtureTail:
    """Per-draw constants for rows of skew-t mixture components; ``nu`` is snapped to the
    tail table's grid (see :func:`bayes_mem.live.tail_table.snap_nu`).

    Examples
    --------
    One symbol (row), two draws: the 97.5% VaR and ES of the mixture, with the exact (scipy)
    quantile for comparison:

    >>> import numpy as np
    >>> from bayes_mem.live.mixture_quantile import mixture_quantile
    >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))
    >>> tail.nu.round(4).tolist()  # snapped to the table's rows
    [[4.9778, 8.0239]]
    >>> mu, sd = np.array([[0.0, 0.001]]), np.array([[0.01, 0.012]])  # daily log returns
    >>> var, es, n_eval = tail.var_es(0.025, mu, sd, q0=np.array([-0.02]))
    >>> var.round(6).tolist(), es.round(6).tolist()
    ([0.022227], [0.02983])
    >>> lo, hi = np.array([-1.0]), np.array([0.0])  # a bracket of the quantile
    >>> exact = mixture_quantile(0.025, mu, sd, tail.exact, lo, hi, 1e-12)
    >>> (-exact).round(6).tolist()
    [0.022227]
    """

    def __init__(self, nu: np.ndarray, lam: np.ndarray) -> None:
        row, nu_s = snap_nu(nu)
        inn = SkewT.from_params(nu_s, lam)
        self.exact = inn  # the same (snapped) distribution through scipy, for reference
        a, b, k = inn.a, inn.b, inn.k
        sl, sr = 1.0 - inn.lam, 1.0 + inn.lam
        m0 = -nu_s / (nu_s - 1.0) * np.exp(inn.log_c)  # M(0) of the standard t
        at_split = sl / b * (sl / k * m0 - a / 2.0)
        self.offset = row_offsets(row)
        self.nu = nu_s
        self.split = -a / b
        self.a_left = b * k / sl  # |t| = |z - split| * a_side
        self.a_right = b * k / sr
        self.s_left = sl
        self.s_right = sr
        self.dens_k = -b * k * (nu_s - 1.0)  # density of z = dens_k * M(s) / (nu + s^2)
        self.c1_left = sl * sl / (b * k)  # partial mean = c0 + c1 M + c2 TL on each side
        self.c2_left = -a * sl / b
        self.c0_right = at_split - sr * sr * m0 / (b * k) - a * sr / (2.0 * b)
        self.c1_right = sr * sr / (b * k)
        self.c2_right = a * sr / b
        self._weights = np.full(nu_s.shape[1], 1.0 / nu_s.shape[1])
        self._m2: tuple[np.ndarray, ...] | None = None  # see _second_moment_constants

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, draws) of the constants.

        Examples
        --------
        >>> import numpy as np
        >>> MixtureTail(np.full((3, 4), 6.0), np.zeros((3, 4))).shape
        (3, 4)
        """
        return self.nu.shape

    def evaluate(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture CDF, density and lower partial mean ``E[X 1{X <= q}]`` at ``q``, one value per
        row of ``mu``/``sd`` (the components' locations and scales, (n, S)); ``rows`` says which
        rows of the constants they are (default: all, in order).

        Examples
        --------
        The CDF agrees with the mean of the exact components' CDFs:

        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))  # 1 row, 2 draws
        >>> mu, sd = np.array([[0.0, 0.001]]), np.array([[0.01, 0.012]])  # daily log returns
        >>> q = np.array([-0.02])
        >>> cdf, pdf, pmean = tail.evaluate(q, mu, sd)
        >>> cdf.round(8).tolist(), pdf.round(4).tolist(), pmean.round(8).tolist()
        ([0.03434073], [4.9206], [-0.00094239])
        >>> round(float(tail.exact.cdf((q[:, None] - mu) / sd).mean()), 8)
        0.03434073
        """
        n, s = mu.shape
        block = max(1, BLOCK_ELEMENTS // s)
        if n <= block:
            return self._block(q, mu, sd, slice(None) if rows is None else rows)
        cdf, pdf, pmean = np.empty(n), np.empty(n), np.empty(n)
        for start in range(0, n, block):
            stop = min(start + block, n)
            # all rows: slices (views); a subset: index arrays (copies, but few rows)
            r = slice(start, stop) if rows is None else rows[start:stop]
            cdf[start:stop], pdf[start:stop], pmean[start:stop] = self._block(
                q[start:stop], mu[start:stop], sd[start:stop], r
            )
        return cdf, pdf, pmean

    def cdf(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """The mixture CDF alone at ``q`` (one value per row; arguments as :meth:`evaluate`):
        one gather of the tail table's ``TL`` coefficients per component, no density or partial
        mean (about half of :meth:`evaluate`'s work; the same values to rounding).

        Examples
        --------
        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))  # 1 row, 2 draws
        >>> mu, sd = np.array([[0.0, 0.001]]), np.array([[0.01, 0.012]])  # daily log returns
        >>> q = np.array([-0.02])
        >>> tail.cdf(q, mu, sd).round(8).tolist(), tail.evaluate(q, mu, sd)[0].round(8).tolist()
        ([0.03434073], [0.03434073])
        """
        n, s = mu.shape
        block = max(1, BLOCK_ELEMENTS // s)
        out = np.empty(n)
        tab = _tl_table()  # (4, rows x intervals): the cubic's coefficients of TL
        w = self._weights
        for start in range(0, n, block):
            stop = min(start + block, n)
            r = slice(start, stop) if rows is None else rows[start:stop]
            sdb = sd[start:stop]
            diff = mu[start:stop] + self.split[r] * sdb - q[start:stop, None]  # > 0: left
            right = diff < 0.0
            s_abs = np.where(right, -diff * self.a_right[r], diff * self.a_left[r]) / sdb
            if not s_abs.max(initial=0.0) <= S_CUT:  # beyond the table (or NaN): the exact path
                out[start:stop] = self._block(q[start:stop], mu[start:stop], sdb, r)[0]
                continue
            fu = s_abs / (C + s_abs) * (N_COLS / U_CUT)
            j = np.minimum(fu.astype(np.intp), N_COLS - 1)
            fu -= j
            g = np.take(tab, self.offset[r] + j, axis=1)
            tl = ((g[3] * fu + g[2]) * fu + g[1]) * fu + g[0]
            cdf = np.where(right, 1.0 - self.s_right[r] * tl, self.s_left[r] * tl)
            out[start:stop] = cdf @ w
        return out

    def _block(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, r: np.ndarray | slice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cdf, dens, pm = self._components(q, mu, sd, r)
        w = self._weights
        return cdf @ w, dens @ w, (mu * cdf + sd * pm) @ w

    def _components(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, r: np.ndarray | slice
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per component: CDF and density of ``mu + sd Z`` at ``q`` and ``E[Z 1{Z <= z}]`` at
        the standardised ``z = (q - mu) / sd``."""
        inv_sd = 1.0 / sd
        diff = mu + self.split[r] * sd - q[:, None]  # > 0 left of every component's split
        nu = self.nu[r]
        right = diff < 0.0
        n_right = np.count_nonzero(right)
        if n_right > right.size // 8:  # many components right of their split (e.g. paths)
            s = np.where(right, -diff * self.a_right[r], diff * self.a_left[r]) * inv_sd  # |t|
            tl, m = lower_tail(s, self.offset[r], nu)
            cdf = np.where(right, 1.0 - self.s_right[r] * tl, self.s_left[r] * tl)
            pm = np.where(
                right,
                self.c0_right[r] + self.c1_right[r] * m + self.c2_right[r] * tl,
                self.c1_left[r] * m + self.c2_left[r] * tl,
            )
        else:  # the usual lower tail: all, or all but a few, left of their split
            s = diff * self.a_left[r] * inv_sd  # |t| for left-side components
            tl, m = lower_tail(np.abs(s), self.offset[r], nu)
            cdf = self.s_left[r] * tl
            pm = self.c1_left[r] * m + self.c2_left[r] * tl
            if n_right:  # only those few (the same arithmetic)
                at = np.nonzero(right)
                s_r = -diff[at] * self.a_right[r][at] * inv_sd[at]
                tl_r, m_r = lower_tail(s_r, self.offset[r][at], nu[at])
                s[at], tl[at], m[at] = s_r, tl_r, m_r
                cdf[at] = 1.0 - self.s_right[r][at] * tl_r
                pm[at] = (
                    self.c0_right[r][at] + self.c1_right[r][at] * m_r + self.c2_right[r][at] * tl_r
                )
        dens = self.dens_k[r] * m / (nu + s * s) * inv_sd
        return cdf, dens, pm

    def var_es(
        self,
        alpha: float,
        mu: np.ndarray,
        sd: np.ndarray,
        q0: np.ndarray,
        bracket: tuple[np.ndarray, np.ndarray] | None = None,
        rtol: float = 1e-2,
        max_iter: int = 60,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """VaR and ES (positive losses) of every row at tail probability ``alpha``, starting from
        the guess ``q0``; ``bracket`` (lo, hi) safeguards Newton when given. Also returns the
        number of evaluations used.

        Examples
        --------
        One standardised t(6) (nu snapped to 5.9733): VaR and ES match
        :meth:`~bayes_mem.live.skewt.SkewT.ppf` and
        :meth:`~bayes_mem.live.skewt.SkewT.expected_shortfall` of the exact law:

        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[6.0]]), np.array([[0.0]]))
        >>> var, es, n_eval = tail.var_es(0.05, np.zeros((1, 1)), np.ones((1, 1)), np.array([-1.5]))
        >>> var.round(5).tolist(), es.round(5).tolist(), n_eval
        ([1.5861], [2.21392], 3)
        >>> round(float(-tail.exact.ppf(0.05)[0, 0]), 5)
        1.5861
        >>> round(float(tail.exact.expected_shortfall(0.05)[0, 0]), 5)
        2.21392
        """

        def evaluate(q: np.ndarray, rows: np.ndarray | None) -> _Evaluation:
            if rows is None:
                return (*self.evaluate(q, mu, sd), None)
            return (*self.evaluate(q, mu[rows], sd[rows], rows), None)

        var, es, _, n_eval = _solve(alpha, mu.shape[0], evaluate, q0, bracket, rtol, max_iter)
        return var, es, n_eval

    def var_es_paths(
        self,
        alpha: float,
        loc: np.ndarray,
        scale: np.ndarray,
        q0: np.ndarray,
        weights: np.ndarray | None = None,
        bracket: tuple[np.ndarray, np.ndarray] | None = None,
        rtol: float = 1e-2,
        max_iter: int = 60,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """:meth:`var_es` of rows whose mixture has ``P`` components per draw: ``loc`` and
        ``scale`` are (P, n, S), component ``(j, i, s)`` being ``loc + scale Z`` with draw ``s``'s
        innovation (a Monte Carlo path ``j`` of draw ``s``, conditioned on its last day).
        ``weights`` (P, n, S), if given, are importance weights normalised to mean 1 per row (the
        mixture weights are then ``weights / (P S)``).

        Also returns the Monte Carlo standard error of the ES: with ``g = E[(q - X)^+]`` per
        component (at the solution ``q``), ES is ``-q + mean(W g) / alpha`` (self-normalised:
        ``mean(W) = 1``), so its variance is ``Var(W (g - gbar)) / (P S alpha^2)`` (the error of
        ``q`` enters only to second order: the form is stationary there); the variance is
        estimated within each draw's P paths and averaged over draws (all draws pooled when
        P = 1, which overstates it).

        Examples
        --------
        Two identical paths per draw give :meth:`var_es`'s answer and a zero standard error:

        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))  # 1 row, 2 draws
        >>> mu, sd = np.array([[0.0, 0.001]]), np.array([[0.01, 0.012]])  # daily log returns
        >>> loc, scale = np.stack([mu, mu]), np.stack([sd, sd])  # P = 2 equal paths per draw
        >>> var, es, es_se, n_eval = tail.var_es_paths(0.025, loc, scale, np.array([-0.02]))
        >>> var.round(6).tolist(), es.round(6).tolist(), es_se.tolist()
        ([0.022227], [0.02983], [0.0])
        """
        n = loc.shape[1]

        def evaluate(q: np.ndarray, rows: np.ndarray | None) -> _Evaluation:
            return self.evaluate_paths(q, loc, scale, rows, weights)

        var, es, g_var, n_eval = _solve(alpha, n, evaluate, q0, bracket, rtol, max_iter)
        assert g_var is not None  # evaluate_paths gives the extra quantity (g's variance)
        return var, es, np.sqrt(np.maximum(g_var, 0.0)) / alpha, n_eval

    def evaluate_paths(
        self,
        q: np.ndarray,
        loc: np.ndarray,
        scale: np.ndarray,
        rows: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`evaluate` of (P, n, S) components (see :meth:`var_es_paths`) at ``q`` (one per
        selected row), and the estimated variance of the (weighted) mean over components of
        ``E[(q - X)^+]``.

        Examples
        --------
        Identical paths: :meth:`evaluate`'s values and no Monte Carlo variance:

        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))  # 1 row, 2 draws
        >>> mu, sd = np.array([[0.0, 0.001]]), np.array([[0.01, 0.012]])  # daily log returns
        >>> loc, scale = np.stack([mu, mu]), np.stack([sd, sd])  # P = 2 equal paths per draw
        >>> cdf, pdf, pmean, g_var = tail.evaluate_paths(np.array([-0.02]), loc, scale)
        >>> cdf.round(8).tolist(), pmean.round(8).tolist(), g_var.tolist()
        ([0.03434073], [-0.00094239], [0.0])
        """
        n_rep, n_all, n_draws = loc.shape
        idx = None if rows is None else np.asarray(rows)
        n = n_all if idx is None else idx.size
        block = max(1, BLOCK_ELEMENTS // n_draws)
        w = self._weights
        out = np.empty((4, n))
        for start in range(0, n, block):
            stop = min(start + block, n)
            r = slice(start, stop) if idx is None else idx[start:stop]
            qb = q[start:stop]
            acc = np.zeros((4, stop - start))
            # per (row, draw), sums over paths of W g, (W g)^2, W, W^2 and W W g
            sums = [np.zeros((stop - start, n_draws)) for _ in range(5)]
            for j in range(n_rep):
                mu, sd = loc[j, r], scale[j, r]
                cdf, dens, pm = self._components(qb, mu, sd, r)
                xpm = mu * cdf + sd * pm  # E[X 1{X <= q}] per component
                g = qb[:, None] * cdf - xpm  # E[(q - X)^+] per component
                if weights is not None:
                    wj = weights[j, r]
                    cdf, dens, xpm, g = cdf * wj, dens * wj, xpm * wj, g * wj
                    sums[2] += wj
                    sums[3] += wj * wj
                    sums[4] += wj * g
                acc[0] += cdf @ w
                acc[1] += dens @ w
                acc[2] += xpm @ w
                acc[3] += g @ w
                sums[0] += g
                sums[1] += g * g
            acc /= n_rep
            out[:3, start:stop] = acc[:3]
            out[3, start:stop] = _mean_variance(sums, acc[3], n_rep, weights is not None) @ w
        return out[0], out[1], out[2], out[3]

    def tail_moments(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mixture ``F(q)``, ``E[X 1{X <= q}]`` and ``E[X^2 1{X <= q}]`` per row, for components
        (n, S) or (P, n, S) (averaged over the leading axis, with the importance ``weights`` of
        :meth:`var_es_paths` if given). The second partial moment of each component is
        closed-form in the same tabulated ``T`` and ``M`` (see :mod:`bayes_mem.live.skewt`).

        Examples
        --------
        A standardised t(6) at 0 (nu snapped to 5.9733): half the mass, and half the unit
        variance, lie below 0:

        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[6.0]]), np.array([[0.0]]))
        >>> cdf, m1, m2 = tail.tail_moments(np.zeros(1), np.zeros((1, 1)), np.ones((1, 1)))
        >>> cdf.round(8).tolist(), m2.round(8).tolist()
        ([0.5], [0.5])
        """
        if mu.ndim == 3:
            parts = [
                self.tail_moments(q, mu[j], sd[j], None if weights is None else weights[j])
                for j in range(mu.shape[0])
            ]
            cdf, pm1, pm2 = (np.mean([p[k] for p in parts], axis=0) for k in range(3))
            return cdf, pm1, pm2
        n, s = mu.shape
        block = max(1, BLOCK_ELEMENTS // s)
        out = np.empty((3, n))
        for start in range(0, n, block):
            r = slice(start, min(start + block, n))
            wts = None if weights is None else weights[r]
            out[:, r] = self._moments_block(q[r], mu[r], sd[r], r, wts)
        return out[0], out[1], out[2]

    def _second_moment_constants(self) -> tuple[np.ndarray, ...]:
        """Per component, the second partial moment ``E[Z^2 1{Z <= z}]`` of the standardised law
        as ``M (d1 - g s) + h TL`` left of the split and ``K + M (d1 + g s) - h TL`` right of it
        (``s = |t|``, ``TL = T(-s)``, ``M = M(s)``: the tabulated pair; from
        ``E[T^2 1{T <= t}] = ((nu - 1) t M(t) + nu T(t)) / (nu - 2)`` on each side of Hansen's
        split). Built on first use (7 arrays of the components' shape), then kept:
        ``(g_left, d1_left, h_left, K_right, g_right, d1_right, h_right)``."""
        got = self._m2
        if got is None:
            inn = self.exact
            nu, a, b, k = self.nu, inn.a, inn.b, inn.k
            e1 = (nu - 1.0) / (nu - 2.0)  # E[T^2 1{T <= t}] = e1 t M + e0 T(t)
            e0 = nu / (nu - 2.0)
            m0 = -nu / (nu - 1.0) * np.exp(inn.log_c)  # M(0)
            i20 = nu / (2.0 * (nu - 2.0))  # E[T^2 1{T <= 0}]
            bb = b * b
            per_side = []
            for side in (self.s_left, self.s_right):  # 1 - lam, 1 + lam
                per_side.append((  # pm2 = d2 E[T^2 ..] + d1 M + d0 T on the side
                    side**3 / (bb * k * k), -2.0 * a * side * side / (bb * k), a * a * side / bb
                ))  # fmt: skip
            (d2_l, d1_l, d0_l), (d2_r, d1_r, d0_r) = per_side
            pm2_split = d2_l * i20 + d1_l * m0 + 0.5 * d0_l  # the left part, up to the split
            k_r = pm2_split + d2_r * (e0 - i20) - d1_r * m0 + 0.5 * d0_r
            # a race builds them twice, identically
            got = self._m2 = (d2_l * e1, d1_l, d2_l * e0 + d0_l, k_r, d2_r * e1, d1_r,
                              d2_r * e0 + d0_r)  # fmt: skip
        return got

    def _moments_block(
        self, q: np.ndarray, mu: np.ndarray, sd: np.ndarray, r: slice, wts: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g_l, d1_l, h_l, k_r, g_r, d1_r, h_r = (x[r] for x in self._second_moment_constants())
        inv_sd = 1.0 / sd
        diff = mu + self.split[r] * sd - q[:, None]  # > 0 left of every component's split
        right = diff < 0.0
        n_right = np.count_nonzero(right)
        if n_right > right.size // 8:  # many components right of their split (e.g. paths)
            s = np.where(right, -diff * self.a_right[r], diff * self.a_left[r]) * inv_sd  # |t|
            tl, m = lower_tail(s, self.offset[r], self.nu[r])
            cdf = np.where(right, 1.0 - self.s_right[r] * tl, self.s_left[r] * tl)
            pm1 = np.where(
                right,
                self.c0_right[r] + self.c1_right[r] * m + self.c2_right[r] * tl,
                self.c1_left[r] * m + self.c2_left[r] * tl,
            )
            pm2 = np.where(
                right, k_r + m * (d1_r + g_r * s) - h_r * tl, m * (d1_l - g_l * s) + h_l * tl
            )
        else:  # the usual lower tail: all, or all but a few, left of their split
            s = diff * self.a_left[r] * inv_sd
            tl, m = lower_tail(np.abs(s), self.offset[r], self.nu[r])
            cdf = self.s_left[r] * tl
            pm1 = self.c1_left[r] * m + self.c2_left[r] * tl
            pm2 = m * (d1_l - g_l * s) + h_l * tl
            if n_right:  # only those few (the same arithmetic as the branch above)
                at = np.nonzero(right)
                s_r = -diff[at] * self.a_right[r][at] * inv_sd[at]
                tl_r, m_r = lower_tail(s_r, self.offset[r][at], self.nu[r][at])
                cdf[at] = 1.0 - self.s_right[r][at] * tl_r
                pm1[at] = (
                    self.c0_right[r][at] + self.c1_right[r][at] * m_r + self.c2_right[r][at] * tl_r
                )
                pm2[at] = k_r[at] + m_r * (d1_r[at] + g_r[at] * s_r) - h_r[at] * tl_r
        w = self._weights
        x1 = mu * cdf + sd * pm1
        x2 = mu * (mu * cdf + 2.0 * sd * pm1) + sd * sd * pm2
        if wts is not None:
            cdf, x1, x2 = cdf * wts, x1 * wts, x2 * wts
        return cdf @ w, x1 @ w, x2 @ w


def _mean_variance(
    sums: list[np.ndarray], g_bar: np.ndarray, n_rep: int, weighted: bool
) -> np.ndarray:
    """Per (row, draw): the variance of ``W (g - gbar)`` over a draw's P paths (ddof 1; with
    P = 1, over all draws), divided by the number of components, so that the mean over draws is
    the variance of the self-normalised mean (``sums`` as accumulated by
    :meth:`MixtureTail.evaluate_paths`; ``W = 1`` when not ``weighted``)."""
    s_g, s_gg, s_w, s_ww, s_wg = sums
    n_draws = s_g.shape[1]
    gb = g_bar[:, None]
    if n_rep == 1:  # pooled over draws (the draws' own differences count as noise)
        d = s_g - gb * s_w if weighted else s_g
        return np.broadcast_to(np.var(d, axis=1)[:, None] / n_draws, s_g.shape)
    var = s_gg - s_g * s_g / n_rep
    if weighted:
        var = var - 2.0 * gb * (s_wg - s_g * s_w / n_rep) + gb * gb * (s_ww - s_w * s_w / n_rep)
    return var / ((n_rep - 1) * n_rep * n_draws)


def _solve(
    alpha: float,
    n: int,
    evaluate: Callable[[np.ndarray, np.ndarray | None], _Evaluation],
    q0: np.ndarray,
    bracket: tuple[np.ndarray, np.ndarray] | None,
    rtol: float,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
    """Newton's method on ``F(q) = alpha`` per row (see :meth:`MixtureTail.var_es`);
    ``evaluate(q, rows)`` gives the mixture CDF, density, lower partial mean and an optional
    extra per-row quantity at ``q`` for ``rows`` (``None``: all), which is returned at each
    row's solution."""
    tol = rtol * min(alpha, 1.0 - alpha)
    q = np.array(q0, dtype=float)
    cdf, dens, pmean, extra = evaluate(q, None)
    g = cdf - alpha
    if np.abs(g).max() <= tol:  # the usual case from a warm start
        return g / dens - q, (q * cdf - pmean) / alpha - q, extra, 1
    lo, hi = (np.full(n, -np.inf), np.full(n, np.inf)) if bracket is None else bracket
    lo, hi = lo.copy(), hi.copy()
    var, es = np.empty(n), np.empty(n)
    extra_out = None if extra is None else np.empty(n)
    rows = np.arange(n)
    for it in range(1, max_iter + 1):
        if it > 1:
            cdf, dens, pmean, extra = evaluate(q[rows], rows)
            g = cdf - alpha
        step = q[rows] - g / dens
        ok = (np.abs(g) <= tol) | (it == max_iter)
        done = rows[ok]
        var[done] = -step[ok]
        es[done] = -q[done] + (q[done] * cdf[ok] - pmean[ok]) / alpha
        if extra_out is not None:
            assert extra is not None  # evaluate gives the extra quantity always or never
            extra_out[done] = extra[ok]
        keep = ~ok
        if not keep.any():
            return var, es, extra_out, it
        rows, g, step = rows[keep], g[keep], step[keep]
        lo[rows] = np.where(g < 0, q[rows], lo[rows])
        hi[rows] = np.where(g > 0, q[rows], hi[rows])
        inside = (step > lo[rows]) & (step < hi[rows]) & np.isfinite(step)
        both = np.isfinite(lo[rows]) & np.isfinite(hi[rows])
        q[rows] = np.where(inside, step, np.where(both, 0.5 * (lo[rows] + hi[rows]), step))
    return var, es, extra_out, max_iter  # pragma: no cover - the loop returns at max_iter


_S_FAST = S_CUT - 1.0  # RowTail reads the table directly below this |t| (no clipping needed)


class RowTail:
    """One row of a :class:`MixtureTail` (S components ``mu_s + sd_s Z_s``) with its constants as
    contiguous 1-d arrays and reusable buffers: VaR/ES of a single mixture in ~30 numpy calls.

    Same method and stopping rule as :meth:`MixtureTail.var_es` (answers agree to rounding).
    Buffers are reused, so calls must be serialised by the caller (:class:`ReturnModel` holds
    its lock).

    Examples
    --------
    The same VaR and ES as :meth:`MixtureTail.var_es` of that row:

    >>> import numpy as np
    >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))
    >>> mu, sd = np.array([0.0, 0.001]), np.array([0.01, 0.012])  # daily log returns
    >>> var, es, n_eval = RowTail(tail, 0, mu).var_es(0.025, sd, q0=-0.02)
    >>> round(var, 6), round(es, 6), n_eval
    (0.022227, 0.02983, 3)
    """

    def __init__(self, tail: MixtureTail, row: int, mu: np.ndarray) -> None:
        n_draws = tail.shape[1]
        w = 1.0 / n_draws

        def one(x: np.ndarray) -> np.ndarray:
            return np.array(x[row], dtype=float)  # a contiguous copy

        self.mu = np.array(mu, dtype=float)
        if self.mu.shape != (n_draws,):
            raise ValueError(f"mu must have shape ({n_draws},), got {self.mu.shape}")
        self.offset = np.array(tail.offset[row], dtype=np.intp)
        self.a_left = one(tail.a_left)
        self.c_left = one(tail.split * tail.a_left)  # s = (mu - q) a_left / sd + c_left
        self.nu = one(tail.nu)
        self.cdf_w = one(tail.s_left) * w  # F = sum cdf_w TL
        self.dens_w = one(tail.dens_k) * w  # f = sum dens_w / sd M / (nu + s^2)
        self.pm_mu_w = self.mu * one(tail.s_left) * w  # E[X 1{X<=q}] = sum A TL + B M with
        self.pm_c2_w = one(tail.c2_left) * w  # A = pm_mu_w + sd pm_c2_w, B = sd pm_c1_w
        self.pm_c1_w = one(tail.c1_left) * w
        self._tab = tail_table()
        self._s = np.empty(n_draws)
        self._fu = np.empty(n_draws)
        self._x = np.empty(n_draws)
        self._w2 = np.empty((2, n_draws))  # the interpolation weight, twice (TL and M rows)
        self._acc = np.empty((2, n_draws))  # TL and M of every component
        self._tl, self._m = self._acc  # views, made once
        self._h = np.empty(n_draws)
        self._dk = np.empty(n_draws)
        self._a = np.empty(n_draws)
        self._b = np.empty(n_draws)

    def var_es(
        self, alpha: float, sd: np.ndarray, q0: float, rtol: float = 1e-2, max_iter: int = 60
    ) -> tuple[float, float, int] | None:
        """VaR and ES (positive losses) at tail probability ``alpha`` for component scales
        ``sd`` (S,), from the guess ``q0``, and the number of evaluations; ``None`` when an
        iterate leaves the region the fast evaluation covers (some component right of its split
        point, or beyond the table): use :meth:`MixtureTail.var_es` then.

        Examples
        --------
        >>> import numpy as np
        >>> tail = MixtureTail(np.array([[5.0, 8.0]]), np.array([[0.0, -0.1]]))
        >>> row = RowTail(tail, 0, np.array([0.0, 0.001]))
        >>> var, es, n_eval = row.var_es(0.025, np.array([0.01, 0.012]), q0=-0.02)
        >>> round(var, 6), round(es, 6)
        (0.022227, 0.02983)
        >>> print(row.var_es(0.975, np.array([0.01, 0.012]), q0=0.02))  # the upper tail: not here
        None
        """
        np.divide(self.a_left, sd, out=self._h)
        np.divide(self.dens_w, sd, out=self._dk)
        tol = rtol * min(alpha, 1.0 - alpha)
        q = q0
        lo, hi = -math.inf, math.inf
        for it in range(1, max_iter + 1):
            found = self._evaluate(q)
            if found is None:
                return None
            cdf, dens = found
            g = cdf - alpha
            step = q - g / dens
            if abs(g) <= tol or it == max_iter:
                np.multiply(self.pm_c2_w, sd, out=self._a)
                np.add(self._a, self.pm_mu_w, out=self._a)
                np.multiply(self.pm_c1_w, sd, out=self._b)
                pmean = float(np.dot(self._a, self._tl)) + float(np.dot(self._b, self._m))
                return -step, -q + (q * cdf - pmean) / alpha, it
            if g < 0.0:
                lo = q
            elif g > 0.0:
                hi = q
            if lo < step < hi and math.isfinite(step):
                q = step
            elif math.isfinite(lo) and math.isfinite(hi):
                q = 0.5 * (lo + hi)
            else:
                q = step
        raise AssertionError("unreachable")  # pragma: no cover - returns at max_iter

    def _evaluate(self, q: float) -> tuple[float, float] | None:
        """Mixture CDF and density at ``q``; TL and M of every component are left in ``_acc``."""
        if not math.isfinite(q):
            return None
        s, fu, w2, acc, x = self._s, self._fu, self._w2, self._acc, self._x
        np.subtract(self.mu, q, out=s)
        np.multiply(s, self._h, out=s)
        np.add(s, self.c_left, out=s)  # |t| of each component (all left of their split)
        if not (np.minimum.reduce(s) >= 0.0 and np.maximum.reduce(s) <= _S_FAST):
            return None
        np.add(s, C, out=fu)  # the table's abscissa, as in tail_table.lower_tail
        np.divide(s, fu, out=fu)
        np.multiply(fu, N_COLS / U_CUT, out=fu)
        j = fu.astype(np.intp)
        np.subtract(fu, j, out=w2[0])
        w2[1] = w2[0]
        np.add(j, self.offset, out=j)
        g = self._tab.take(j, axis=2)  # (4, 2, S): coefficient k of TL and M
        np.multiply(g[3], w2, out=acc)
        np.add(acc, g[2], out=acc)
        np.multiply(acc, w2, out=acc)
        np.add(acc, g[1], out=acc)
        np.multiply(acc, w2, out=acc)
        np.add(acc, g[0], out=acc)
        np.multiply(s, s, out=x)
        np.add(x, self.nu, out=x)
        np.divide(self._dk, x, out=x)
        dens = float(np.dot(x, self._m))
        if not dens > 0.0:
            return None
        return float(np.dot(self.cdf_w, self._tl)), dens
