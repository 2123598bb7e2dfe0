"""The returns fit's posterior predictive simulation as one numba kernel (issue 17).

:func:`bayes_mem.offline.returns_model.posterior_predictive_pvalues` simulates, per symbol, up to
20,000 whole series of its length (20 symbols x 2,520 days: 10^9 simulated days) and compares
three statistics of each with the observed series'. In numpy that was the largest CPU cost of the
nightly returns fit after sampling. :func:`chunk_hits` does one chunk of replicates in a
loop that draws from the same ``numpy.random.Generator`` in the same order as the numpy code
(numba's Generator methods are ports of numpy's: all ``standard_t`` of the chunk, day-major, then
all uniforms), simulates with the same arithmetic in the same order, and computes the statistics
as numpy does (pairwise sums as ``np.add.reduce``, the quantiles' order statistics and linear
interpolation as ``np.quantile``), so that its hits equal the numpy code's comparisons for the
same generator state, to the bit (tested: ``tests/test_ppc_sim.py``). It releases the GIL, so
symbols can be simulated on several threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: the quantiles of the tail statistics (:func:`bayes_mem.offline.returns_model._tail_stats`)
QUANTILES = (0.01, 0.99)


@numba.njit(cache=True, nogil=True)
def _block_sum(a, lo, n):
    """numpy's pairwise summation of a block of at most 128 values: 8 lanes, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    m = n - n % 8
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def _pairwise_sum(a, lo, n):
    """``np.add.reduce`` of the contiguous ``a[lo : lo + n]``, bit for bit: numpy's pairwise
    summation (blocks of at most 128 values, :func:`_block_sum`; above, the sum of the two
    halves, the first ``n // 2`` rounded down to a multiple of 8). Written with an explicit
    stack: numba's on-disk cache of a recursive function crashed on loading (segfault)."""
    if n <= 128:
        return _block_sum(a, lo, n)
    # post-order walk of the split tree; the sum of two numbers is the same in either order
    f_lo = np.empty(128, np.int64)
    f_n = np.empty(128, np.int64)
    f_done = np.zeros(128, np.bool_)
    vals = np.empty(128)
    top = 0
    nv = 0
    f_lo[0], f_n[0], f_done[0] = lo, n, False
    top = 1
    while top:
        top -= 1
        lo_, n_ = f_lo[top], f_n[top]
        if n_ <= 128:
            vals[nv] = _block_sum(a, lo_, n_)
            nv += 1
        elif f_done[top]:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        else:
            n2 = n_ // 2
            n2 -= n2 % 8
            f_done[top] = True
            top += 1
            f_lo[top], f_n[top], f_done[top] = lo_, n2, False
            f_lo[top + 1], f_n[top + 1], f_done[top + 1] = lo_ + n2, n_ - n2, False
            top += 2
    return vals[0]


@numba.njit(cache=True, nogil=True)
def _lerp(a, b, t):
    """numpy's ``_lerp`` (``np.quantile``'s linear interpolation)."""
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@numba.njit(cache=True, nogil=True)
def _order_pair(x, i, j):
    """The ``i``-th and ``j``-th smallest of ``x`` (0-based, ``j`` = ``i`` or ``i + 1``): one
    partition at the pair's inner side and a scan of the few values beyond it (numba's
    ``np.partition`` with four indices was half the statistics' cost)."""
    if j == i:
        p = np.partition(x, i)
        return p[i], p[i]
    if i < x.size - 1 - j:  # a lower quantile: few values below j
        p = np.partition(x, j)
        vi = p[0]
        for t in range(1, j):
            if p[t] > vi:
                vi = p[t]
        return vi, p[j]
    p = np.partition(x, i)
    vj = p[i + 1]
    for t in range(i + 2, x.size):
        if p[t] < vj:
            vj = p[t]
    return p[i], vj


@numba.njit(cache=True, nogil=True)
def _stats(x, work, idx, gam):
    """``_tail_stats`` of one series ``x`` (overwritten by its demeaned values): the 1% and 99%
    quantiles over the standard deviation and the lag-1 autocorrelation of the squares.
    ``idx``: the quantiles' four order statistics (lower, upper of each), ``gam`` their
    interpolation weights."""
    n = x.size
    m = _pairwise_sum(x, 0, n) / n
    for t in range(n):
        x[t] = x[t] - m
    m2 = _pairwise_sum(x, 0, n) / n
    for t in range(n):
        d = x[t] - m2
        work[t] = d * d
    sd = math.sqrt(_pairwise_sum(work, 0, n) / n)
    a0, a1 = _order_pair(x, idx[0], idx[1])
    b0, b1 = _order_pair(x, idx[2], idx[3])
    lo = _lerp(a0, a1, gam[0])
    hi = _lerp(b0, b1, gam[1])
    for t in range(n):
        work[t] = x[t] * x[t]
    ms = _pairwise_sum(work, 0, n) / n
    for t in range(n):
        work[t] = work[t] - ms
    for t in range(n - 1):
        x[t] = work[t + 1] * work[t]
    num = _pairwise_sum(x, 0, n - 1)
    for t in range(n):
        x[t] = work[t] * work[t]
    den = _pairwise_sum(x, 0, n)
    return lo / sd, hi / sd, num / den


@numba.njit(cache=True, nogil=True)
def chunk_hits(gen, mu, omega, alpha, gamma, beta, nu, lam, a, b, k, sigma2_0, n_days,
               idx, gam, obs, hits):  # fmt: skip
    """Simulate one replicate per draw (arrays of the chunk's draws: GJR parameters, the
    skew-t's ``nu``, ``lam`` and Hansen's ``a``, ``b``, ``k``), each ``n_days`` long from the
    variance ``sigma2_0``, and set ``hits[s, c]`` (replicates x 3, int8) to 1 where replicate
    ``s``'s statistic ``c`` is ``>= obs[c]``, else 0 (in the order simulated: the sequential
    p-values need it). Draws from ``gen`` as ``skewt_draws`` + ``simulate_paths`` do."""
    size = mu.size
    t_abs = np.empty((n_days, size))
    for d in range(n_days):
        for s in range(size):
            t_abs[d, s] = abs(gen.standard_t(nu[s]))
    u = np.empty((n_days, size))
    for d in range(n_days):
        for s in range(size):
            u[d, s] = gen.random()
    # day-major over the replicates (the draws' rows are read in order; each replicate's
    # series is written to its own row, read in order by the statistics)
    paths = np.empty((size, n_days))
    sig2 = sigma2_0.copy()
    half = (1.0 - lam) / 2
    lo_side = -(1.0 - lam)
    hi_side = 1.0 + lam
    for d in range(n_days):
        for s in range(size):
            side = lo_side[s] if u[d, s] < half[s] else hi_side[s]
            z = (side * t_abs[d, s] / k[s] - a[s]) / b[s]
            eps = math.sqrt(sig2[s]) * z
            paths[s, d] = mu[s] + eps
            neg = 1.0 if eps < 0.0 else 0.0
            sig2[s] = omega[s] + (alpha[s] + gamma[s] * neg) * (eps * eps) + beta[s] * sig2[s]
    work = np.empty(n_days)
    for s in range(size):
        x = paths[s]
        left, right, ac = _stats(x, work, idx, gam)
        hits[s, 0] = 1 if left >= obs[0] else 0
        hits[s, 1] = 1 if right >= obs[1] else 0
        hits[s, 2] = 1 if ac >= obs[2] else 0


def quantile_points(n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """The order statistics and interpolation weights of ``np.quantile(x, QUANTILES)`` for a
    series of ``n_days`` (its "linear" method, computed as numpy computes them).

    Examples
    --------
    With 101 days the 1% and 99% quantiles fall exactly on order statistics 1 and 99 (weights
    0), as ``np.quantile`` would take them:

    >>> idx, gam = quantile_points(101)
    >>> idx.tolist(), gam.round(6).tolist()
    ([1, 2, 99, 100], [0.0, 0.0])
    >>> x = np.random.default_rng(0).standard_normal(101)
    >>> s = np.sort(x)
    >>> bool(np.isclose(s[idx[0]] + gam[0] * (s[idx[1]] - s[idx[0]]), np.quantile(x, 0.01)))
    True
    """
    q = np.asarray(QUANTILES, dtype=float)
    virtual = (n_days - 1) * q
    prev = np.floor(virtual).astype(np.int64)
    nxt = prev + 1
    prev = np.clip(prev, 0, n_days - 1)
    nxt = np.clip(nxt, 0, n_days - 1)
    gam = virtual - np.floor(virtual)
    idx = np.array([prev[0], nxt[0], prev[1], nxt[1]], dtype=np.int64)
    return idx, gam.astype(float)
