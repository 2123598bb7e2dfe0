"""Tabulated Student-t lower tail for the live risk path.

``scipy.special.stdtr`` costs ~0.45 us per element, and the posterior-predictive VaR/ES of 500
symbols x 200 draws needs several evaluations of 100,000 components per update. Here the lower
tail ``TL(s) = T_nu(-s)`` and the partial mean ``M(s) = -(nu + s^2) / (nu - 1) f_nu(s)`` (even in
``s``) are tabulated with their derivatives on a grid of ``u = s / (C + s)`` in [0, 1] (``s = |t|``;
``u = 1`` is ``s = infinity``), one row per tail weight ``nu``, and read by cubic Hermite
interpolation, stored as the cubic's coefficients per interval so that one gather and two Horner
evaluations give both functions: no transcendental functions per element.
Interpolation error is below 1e-10 absolute (tested against scipy).

Rows are a uniform grid in ``1/nu`` over ``nu >= NU_MIN``: a draw's ``nu`` is *snapped* to the
nearest row (``snap_nu``) when a model is loaded, so the table is exact for the snapped value; the
snap moves ``nu`` by less than 0.5% at ``nu = 5`` (less than 0.02 of the grid step in ``1/nu``).
"""

from __future__ import annotations

import threading

import numpy as np
from scipy import special

NU_MIN = 2.1
N_ROWS = 256  # rows x_i = i * X_STEP, i = 1..N_ROWS, x = 1/nu
X_STEP = (1.0 / NU_MIN) / N_ROWS
N_COLS = 512  # intervals in u over [0, U_CUT]; nodes 0..N_COLS
C = 2.0  # u = s / (C + s)
S_CUT = 60.0  # beyond |t| = S_CUT (rare: a 60-sd move of a draw) the exact scipy path is used
U_CUT = S_CUT / (C + S_CUT)

_table: np.ndarray | None = None
_lock = threading.Lock()


def snap_nu(nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index and snapped ``nu`` for each draw (``nu`` > 2; values below NU_MIN are refused,
    values above ``1 / X_STEP`` (~538) go to the first row).

    Examples
    --------
    Rows sit at ``1 / nu = i / (2.1 * 256)``: nu = 5 goes to row ``rint(537.6 / 5)`` = 108, i.e.
    nu = 537.6 / 108 = 4.9778; nu = 1000 to the first row (537.6):

    >>> import numpy as np
    >>> row, nu = snap_nu(np.array([5.0, 1000.0]))
    >>> row.tolist(), nu.round(4).tolist()
    ([108, 1], [4.9778, 537.6])
    """
    nu = np.asarray(nu, dtype=float)
    if not np.all(np.isfinite(nu)) or np.any(nu < NU_MIN):
        raise ValueError(
            f"nu must be finite and >= {NU_MIN} for the live tables, got min {np.min(nu)!r}"
        )
    row = np.clip(np.rint((1.0 / nu) / X_STEP), 1, N_ROWS).astype(np.intp)
    return row, 1.0 / (row * X_STEP)


def _build() -> np.ndarray:
    nu = 1.0 / (np.arange(1, N_ROWS + 1) * X_STEP)  # row r-1 holds nu for row index r
    u = np.arange(N_COLS + 1) / N_COLS * U_CUT
    s = C * u / (1.0 - u)
    nn, ss = np.meshgrid(nu, s, indexing="ij")
    log_c = special.gammaln((nn + 1) / 2) - special.gammaln(nn / 2) - 0.5 * np.log(nn * np.pi)
    pdf = np.exp(log_c - (nn + 1) / 2 * np.log1p(ss**2 / nn))
    tl = special.stdtr(nn, -ss)
    m = -(nn + ss**2) / (nn - 1) * pdf
    ds_du = C / (1.0 - u) ** 2  # ds/du per column
    dtl = -pdf * ds_du  # dTL/du
    dm = ss * pdf * ds_du  # dM/du (M'(s) = s f(s) for s >= 0)
    h = U_CUT / N_COLS
    # cubic Hermite on each interval, in the power basis of w in [0, 1]: c0 + c1 w + c2 w^2 + c3 w^3
    coefs = []
    for v, dv in ((tl, dtl * h), (m, dm * h)):
        v0, v1, d0, d1 = v[:, :-1], v[:, 1:], dv[:, :-1], dv[:, 1:]
        coefs += [v0, d0, 3 * (v1 - v0) - 2 * d0 - d1, 2 * (v0 - v1) + d0 + d1]
    # (power k, function, rows, cols): the k-th coefficient of TL and of M
    table = np.stack([np.stack([coefs[k], coefs[4 + k]]) for k in range(4)])
    # a zero row in front so that row index r (1-based) is table[:, :, r]
    table = np.concatenate([np.zeros((4, 2, 1, N_COLS)), table], axis=2)
    if not np.all(np.isfinite(table)):
        raise RuntimeError("tail table has non-finite entries")  # pragma: no cover
    return np.ascontiguousarray(table.reshape(4, 2, -1))


def table() -> np.ndarray:
    """The (4, 2, rows x intervals) table: cubic coefficient k of TL (``[k, 0]``) and of M
    (``[k, 1]``) per interval, coefficient-major so that a gather gives contiguous operands for
    the Horner steps; built once per process.

    Examples
    --------
    256 rows plus a zero row in front, 512 intervals each:

    >>> tab = table()
    >>> tab.shape, tab.shape[2] == (N_ROWS + 1) * N_COLS, table() is tab
    ((4, 2, 131584), True, True)
    """
    global _table
    if _table is None:
        with _lock:
            if _table is None:
                _table = _build()
    return _table


def row_offsets(row: np.ndarray) -> np.ndarray:
    """Flat index of interval 0 of each row.

    Examples
    --------
    >>> row_offsets([1, 2]).tolist()  # N_COLS = 512 intervals per row
    [512, 1024]
    """
    return np.asarray(row, dtype=np.intp) * N_COLS


def lower_tail(s: np.ndarray, offset: np.ndarray, nu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``TL(s) = T_nu(-s)`` and ``M(s)`` for ``s >= 0`` at rows given by ``offset`` (``nu`` is the
    rows' snapped tail weight, used only beyond ``S_CUT``, where scipy gives the exact values,
    0 at ``s = inf``). A NaN ``s`` raises ``ValueError``.

    Examples
    --------
    The table against scipy's Student-t CDF at the snapped ``nu`` (4.9778):

    >>> import numpy as np
    >>> from scipy import special
    >>> row, nu = snap_nu(np.array([5.0]))
    >>> s = np.array([1.0, 2.0, 100.0])  # the last beyond S_CUT: computed by scipy
    >>> tl, m = lower_tail(s, row_offsets(row), nu)
    >>> tl.round(8).tolist(), m.round(8).tolist()
    ([0.18170552, 0.05109689, 0.0], [-0.32999592, -0.14696467, -1.3e-07])
    >>> float(np.max(np.abs(tl - special.stdtr(nu, -s)))) < 1e-10
    True
    """
    tab = table()
    top = s.max(initial=0.0)
    far_out = not top <= S_CUT  # beyond the table (rare), or NaN
    if far_out:
        if np.isnan(top):  # never indexes with a NaN (it would read outside the table)
            raise ValueError("lower_tail: a standardised distance |t| is NaN")
        s_tab = np.minimum(s, S_CUT)  # inf / inf would be NaN below; these are replaced
    else:
        s_tab = s
    fu = s_tab / (C + s_tab) * (N_COLS / U_CUT)
    j = np.minimum(fu.astype(np.intp), N_COLS - 1)
    w = fu - j
    g = np.take(tab, offset + j, axis=2)  # (4, 2, ...)
    both = ((g[3] * w + g[2]) * w + g[1]) * w + g[0]
    tl, m = both[0], both[1]
    if far_out:
        far = s > S_CUT
        sf = s[far]
        nf = np.broadcast_to(nu, s.shape)[far]
        tl[far] = special.stdtr(nf, -sf)
        log_c = special.gammaln((nf + 1) / 2) - special.gammaln(nf / 2) - 0.5 * np.log(nf * np.pi)
        sf = np.minimum(sf, 1e150)  # M(s) ~ s^(1 - nu) -> 0; s^2 stays finite
        m[far] = -(nf + sf**2) / (nf - 1) * np.exp(log_c - (nf + 1) / 2 * np.log1p(sf**2 / nf))
    return tl, m
