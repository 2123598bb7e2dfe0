"""Position sizing: CVaR budget, Kelly under parameter uncertainty, and the combined limit.

Units: ``portfolio_value`` and every position are in the account currency; ``budget`` is a
fraction of portfolio value; expected shortfall is a loss fraction of position value (a positive
number, e.g. ``RiskForecast.es_simple``).

Two Kelly bets, two units -- do not mix them up:

- :func:`kelly_binary` is the textbook bet that loses the whole *stake* on a loss. Its result is
  the capital put at risk (the stake) as a fraction of portfolio value, **not** a notional: a
  trade whose loss is ``L`` per unit notional (e.g. 0.03 for a 3% stop) stakes ``L`` per unit, so
  the notional is ``kelly_binary(...) / L`` x portfolio value. Using ``portfolio_value *
  kelly_binary(...)`` as the notional is ``1 / L`` (~30x) too small.
- :func:`kelly_notional` works directly in notional: it takes the win and loss sizes per unit
  notional (``W = pnl / notional`` of won trades, ``L = -pnl / notional`` of lost ones) and
  returns the notional as a fraction of portfolio value. With ``W = b L``,
  ``kelly_notional(p, b L, L) x L == kelly_binary(p, b)`` (same fraction, cap scaled by ``L``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from bayes_mem.live.validate import as_float_array, check_positive, check_real

DEFAULT_FRACTION = 0.25  # fractional Kelly multiplier (the seed plan's Kelly / 4)
DEFAULT_CAP = 0.25  # never more than 25% of portfolio value (the seed plan's cap)
#: Cap of :func:`kelly_notional`: notional / portfolio value <= 1, i.e. no leverage from one
#: signal. Kelly in notional scales as 1 / (W L) and is routinely several times capital for
#: trades of a few percent (p = 0.55, W = 3%, L = 2.5% gives 7x; a quarter of it still 1.75x),
#: while its inputs are estimates: the cap, not the Kelly fraction, is what stops one estimation
#: error from levering the account. Risk per position is the CVaR budget's job (2% of capital in
#: expected shortfall: a 4% ES allows half of capital), which binds before this cap does.
DEFAULT_NOTIONAL_CAP = 1.0


def _check_fraction(value: object, what: str) -> float:
    v = check_real(value, what)
    if not 0.0 < v <= 1.0:
        raise ValueError(f"{what} must be in (0, 1], got {value!r}")
    return v


def _draws(value: object, what: str) -> np.ndarray:
    """A number or a 1-d array of draws as a float array (at least 1-d)."""
    if type(value) is np.ndarray and value.dtype == np.float64 and value.ndim:
        return value  # the usual posterior draws: no conversion needed
    if type(value) is float:  # a posterior mean: what the general path gives, cheaper
        return np.array([value])
    return np.atleast_1d(as_float_array(value, what))


def cvar_position_limit(es_fraction: float, portfolio_value: float, budget: float = 0.02) -> float:
    """Position value whose predictive expected shortfall equals ``budget`` x portfolio value.

    Examples
    --------
    A 4% expected shortfall and a 2% budget allow half of a 100,000 portfolio:

    >>> cvar_position_limit(0.04, 100_000.0, budget=0.02)
    50000.0
    """
    es = check_positive(es_fraction, "es_fraction")
    pv = check_positive(portfolio_value, "portfolio_value")
    b = _check_fraction(budget, "budget")
    limit = b * pv / es
    if not math.isfinite(limit):
        raise ValueError(
            f"position limit overflows: budget x portfolio_value / es_fraction = {b!r} x {pv!r} / "
            f"{es!r}"
        )
    return limit


def kelly_binary(
    win_prob: np.ndarray | float,
    payoff_ratio: np.ndarray | float,
    *,
    fraction: float = DEFAULT_FRACTION,
    cap: float = DEFAULT_CAP,
) -> float:
    """Fraction of capital maximising posterior-expected log growth of a bet that wins
    ``payoff_ratio`` x stake with probability ``win_prob`` and loses the stake otherwise.

    Pass posterior *draws* (arrays of equal length) of the win probability and the payoff ratio
    (avg win / avg loss): the optimum of ``mean_d[p_d log(1 + f b_d) + (1 - p_d) log(1 - f)]`` is
    smaller than the plug-in ``p - (1 - p) / b`` when the payoff ratio is uncertain. Scalars give
    the plug-in Kelly. The result is multiplied by ``fraction`` and capped at ``cap``; never < 0.

    The result is the capital *lost in full on a loss* (the stake), not a notional: for a trade
    losing ``L`` per unit notional the notional is this divided by ``L`` (or use
    :func:`kelly_notional`, which also takes uncertain loss sizes).

    Examples
    --------
    Plug-in Kelly ``p - (1 - p) / b`` is 0.25 here; quarter Kelly (the default) stakes 6.25%:

    >>> import numpy as np
    >>> round(kelly_binary(0.55, 1.5), 4)
    0.0625
    >>> round(kelly_binary(0.55, 1.5, fraction=1.0, cap=1.0), 4)
    0.25

    An uncertain payoff ratio (posterior draws with mean 1.5) stakes less than the plug-in:

    >>> ratio = np.random.default_rng(0).gamma(4.0, 1.5 / 4.0, 2000)
    >>> round(kelly_binary(0.55, ratio, fraction=1.0, cap=1.0), 4)
    0.2318
    """
    p = _draws(win_prob, "win_prob")
    b = _draws(payoff_ratio, "payoff_ratio")
    try:
        p, b = np.broadcast_arrays(p, b)
    except ValueError:
        raise ValueError(
            f"win_prob and payoff_ratio draws must pair up, got shapes {p.shape} and {b.shape}"
        ) from None
    if p.ndim != 1 or p.size == 0:
        raise ValueError("win_prob and payoff_ratio must be scalars or 1-d arrays of draws")
    if not (np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))):
        raise ValueError("win_prob must be in [0, 1] and finite")
    if not (np.all(np.isfinite(b)) and np.all(b > 0)):
        raise ValueError("payoff_ratio must be positive and finite")
    fraction = _check_fraction(fraction, "fraction")
    cap = check_positive(cap, "cap")

    def slope(f: float) -> float:  # d/df of the expected log growth, decreasing in f
        return float(np.mean(p * b / (1.0 + f * b) - (1.0 - p) / (1.0 - f)))

    if slope(0.0) <= 0.0:
        return 0.0
    hi = 1.0 - 1e-12
    # slope(hi) > 0 only if every draw wins surely
    full = hi if slope(hi) > 0.0 else optimize.brentq(slope, 0.0, hi, xtol=1e-14)
    return min(fraction * full, cap)


def kelly_notional(
    win_prob: np.ndarray | float,
    win_size: np.ndarray | float,
    loss_size: np.ndarray | float,
    *,
    fraction: float = DEFAULT_FRACTION,
    cap: float = DEFAULT_NOTIONAL_CAP,
) -> float:
    """Notional, as a fraction of portfolio value, maximising posterior-expected log growth of a
    trade that returns ``+W`` per unit notional with probability ``p`` and ``-L`` otherwise.

    ``win_prob``, ``win_size`` and ``loss_size`` are scalars or *joint* posterior draws (1-d
    arrays of one length, draw ``d`` = ``(p_d, W_d, L_d)``). ``W_d`` and ``L_d`` are the mean win
    and mean loss per unit notional of draw ``d``, positive fractions (0.03 = 3%). The result
    maximises ``mean_d[p_d log(1 + n W_d) + (1 - p_d) log(1 - n L_d)]`` over ``n >= 0`` with
    ``n L_d < 1`` for every draw, times ``fraction``, capped at ``cap`` (notional / capital; the
    default 1.0 is no leverage, see :data:`DEFAULT_NOTIONAL_CAP`); never < 0.

    Scalars give the plug-in Kelly in notional, ``(p W - (1 - p) L) / (W L)``. The objective is
    linear in ``p``, so uncertainty about the win rate alone changes nothing (the optimum is the
    plug-in at ``E[p]``); uncertainty about the payoffs makes it smaller than the plug-in at the
    posterior means (``W / (1 + n W)`` is concave in ``W``, ``L / (1 - n L)`` convex in ``L``).

    Solved by Newton steps on the derivative of the (concave) objective, started at its
    mean-variance approximation and safeguarded by bisection; the cap is checked on the way, so a
    capped result costs one evaluation. About 15 us for 128 draws.

    Examples
    --------
    Wins of 3% and losses of 2.5% per unit notional at p = 0.55: full Kelly is 7x capital, a
    quarter of it 1.75x, and the default cap (:data:`DEFAULT_NOTIONAL_CAP`, no leverage) binds:

    >>> import numpy as np
    >>> round(kelly_notional(0.55, 0.03, 0.025, fraction=1.0, cap=10.0), 4)
    7.0
    >>> kelly_notional(0.55, 0.03, 0.025), DEFAULT_NOTIONAL_CAP
    (1.0, 1.0)

    Posterior draws of the sizes (same means) shrink the bet:

    >>> rng = np.random.default_rng(1)
    >>> wins, losses = rng.gamma(20.0, 0.03 / 20, 500), rng.gamma(20.0, 0.025 / 20, 500)
    >>> round(kelly_notional(0.55, wins, losses, fraction=1.0, cap=10.0), 4)
    6.4233
    """
    p = _draws(win_prob, "win_prob")
    w = _draws(win_size, "win_size")
    loss = _draws(loss_size, "loss_size")
    if p.shape == (1,) and w.ndim == 1 and w.size > 1 and w.shape == loss.shape:
        p = np.full(w.shape, p[0])  # one p, draws of the sizes: the broadcast's values, cheaper
    elif not p.shape == w.shape == loss.shape:
        try:
            p, w, loss = np.broadcast_arrays(p, w, loss)
        except ValueError:
            raise ValueError(
                "win_prob, win_size and loss_size draws must pair up, got shapes "
                f"{p.shape}, {w.shape} and {loss.shape}"
            ) from None
    if p.ndim != 1 or p.size == 0:
        raise ValueError("win_prob, win_size and loss_size must be scalars or 1-d arrays of draws")
    # min and max propagate NaN, so these comparisons refuse it too
    pmin = float(p.min())
    if not (pmin >= 0.0 and p.max() <= 1.0):
        bad = p[np.argmin((p >= 0.0) & (p <= 1.0))]
        raise ValueError(f"win_prob must be in [0, 1] and finite, got {float(bad)!r}")
    wmax = _max_of_sizes(w, "win_size")
    lmax = _max_of_sizes(loss, "loss_size")
    fraction = _check_fraction(fraction, "fraction")
    cap = check_positive(cap, "cap")
    if pmin == 1.0:  # every draw wins surely: as much as n L_d < 1 allows
        full = (1.0 - 1e-12) / lmax
    elif p.size == 1:
        full = _kelly_notional_plug_in(float(p[0]), float(w[0]), float(loss[0]))
    else:
        full = _kelly_notional_draws(p, w, loss, max(wmax, lmax), lmax, cap / fraction)
    return min(fraction * full, cap)


def kelly_notional_nodes(
    win_prob: float, win_nodes: np.ndarray, loss_nodes: np.ndarray, fraction: float, cap: float
) -> float:
    """:func:`kelly_notional` for a known win probability (a posterior mean) and deterministic
    quadrature nodes of the win and loss sizes (``m`` each, e.g.
    :func:`bayes_mem.live.payoff.size_nodes`): maximises
    ``p mean_j log(1 + n W_j) + (1 - p) mean_j log(1 - n L_j)``, the posterior-expected log
    growth with W and L independent (the objective is separable: each expectation is over one
    size's own posterior), times ``fraction``, at most ``cap``; subject to ``n L_j < 1`` at every
    node. No Monte Carlo noise: the same inputs give the same answer, and a signal with a
    positive edge at ``n = 0`` (``p E[W] > (1 - p) E[L]``) gets a positive answer.

    Trusted inputs (an internal call: ``0 <= p < 1``, positive finite nodes of equal length,
    ``fraction`` in (0, 1], ``cap`` > 0); the public, validated entry is
    :func:`kelly_notional`, to which this is equal on the same nodes paired up.

    Examples
    --------
    One node each is the plug-in bet: ``n* = p / L - q / W`` = 0.55 / 0.025 - 0.45 / 0.03 = 7
    (notional as a multiple of capital); a quarter of it, capped at 1; no edge gives 0:

    >>> import numpy as np
    >>> w, loss = np.array([0.03]), np.array([0.025])
    >>> round(kelly_notional_nodes(0.55, w, loss, fraction=1.0, cap=10.0), 6)
    7.0
    >>> kelly_notional_nodes(0.55, w, loss, fraction=0.25, cap=1.0)
    1.0
    >>> kelly_notional_nodes(0.40, w, loss, fraction=1.0, cap=10.0)
    0.0
    >>> nodes = (np.array([0.02, 0.04]), np.array([0.02, 0.03]))  # equal to kelly_notional's
    >>> a = kelly_notional_nodes(0.55, *nodes, fraction=1.0, cap=10.0)
    >>> b = kelly_notional(0.55, *nodes, fraction=1.0, cap=10.0)
    >>> round(a, 6) == round(b, 6)
    True
    """
    q = 1.0 - win_prob
    if win_prob * float(win_nodes.sum()) <= q * float(loss_nodes.sum()):
        return 0.0  # no edge at n = 0 (the slope only decreases)
    lmax = float(loss_nodes.max())
    stop = cap / fraction
    if stop * lmax < 1.0:  # the cap is feasible: is the slope still >= 0 there? (one evaluation)
        gain = float((win_nodes / (1.0 + stop * win_nodes)).sum())
        pain = float((loss_nodes / (1.0 - stop * loss_nodes)).sum())
        if win_prob * gain >= q * pain:
            return cap
    wmax = float(win_nodes.max())
    p = np.full(win_nodes.shape, win_prob)
    full = _kelly_notional_draws(p, win_nodes, loss_nodes, max(wmax, lmax), lmax, stop)
    return min(fraction * full, cap)


def kelly_notional_nodes_screen(
    win_prob: np.ndarray, win_nodes: np.ndarray, loss_nodes: np.ndarray, fraction: float, cap: float
) -> np.ndarray:
    """:func:`kelly_notional_nodes` of many signals at once where it needs no search: row ``i``
    (``win_prob[i]``, nodes ``win_nodes[i]``, ``loss_nodes[i]``, ``(n, m)`` arrays) is 0 without
    an edge at ``n = 0`` and ``cap`` where the slope is still >= 0 at the cap, exactly the tests
    and the answers of :func:`kelly_notional_nodes` (the same sums, row by row); NaN where the
    optimum lies inside the cap and needs :func:`kelly_notional_nodes` itself. Trusted inputs,
    as there.

    Examples
    --------
    No edge, an edge that the cap binds, and one whose optimum lies inside a larger cap:

    >>> import numpy as np
    >>> w, loss = np.array([[0.03]] * 3), np.array([[0.025]] * 3)
    >>> kelly_notional_nodes_screen(np.array([0.40, 0.55, 0.55]), w, loss, 1.0, 10.0)
    array([ 0., nan, nan])
    >>> kelly_notional_nodes_screen(np.array([0.40, 0.55, 0.55]), w, loss, 0.25, 1.0)
    array([0., 1., 1.])
    """
    q = 1.0 - win_prob
    out = np.full(win_prob.shape, np.nan)
    out[win_prob * win_nodes.sum(axis=1) <= q * loss_nodes.sum(axis=1)] = 0.0
    stop = cap / fraction
    feasible = (stop * loss_nodes.max(axis=1) < 1.0) & np.isnan(out)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows past a node's ruin: not read
        gain = (win_nodes / (1.0 + stop * win_nodes)).sum(axis=1)
        pain = (loss_nodes / (1.0 - stop * loss_nodes)).sum(axis=1)
    out[feasible & (win_prob * gain >= q * pain)] = cap
    return out


def _max_of_sizes(x: np.ndarray, what: str) -> float:
    """The largest of positive, finite sizes; otherwise raises naming the first bad one."""
    xmax = float(x.max())
    if not (x.min() > 0.0 and xmax < math.inf):  # NaN fails both
        bad = x[np.argmin(np.isfinite(x) & (x > 0.0))]
        raise ValueError(f"{what} must be positive and finite, got {float(bad)!r}")
    return xmax


def _kelly_notional_plug_in(p: float, w: float, loss: float) -> float:
    edge = p * w - (1.0 - p) * loss
    if edge <= 0.0:
        return 0.0
    # (p W - (1 - p) L) / (W L), dividing twice so a product of tiny sizes cannot underflow
    return edge / w / loss


def _kelly_notional_draws(
    p: np.ndarray, w: np.ndarray, loss: np.ndarray, s: float, lmax: float, stop: float
) -> float:
    """The optimum over draws before ``fraction``, or ``stop`` if it lies at or beyond ``stop``.
    Some ``p < 1``. ``s`` (the largest size) sets the unit: the optimum is homogeneous of degree
    -1 in the sizes, and at unit scale squares of tiny sizes cannot underflow."""
    d = p.size
    u = np.empty(2 * d)  # outcomes per unit of scaled notional m = n s: W/s (wins), -L/s (losses)
    np.divide(w, s, out=u[:d])
    np.divide(loss, -s, out=u[d:])
    c = np.empty(2 * d)  # probability x outcome: the slope at m is sum(c / (1 + m u)) / d
    np.multiply(p, u[:d], out=c[:d])
    np.multiply(1.0 - p, u[d:], out=c[d:])
    cu = c * u  # >= 0: the curvature at m is -sum(cu / (1 + m u)^2) / d
    g0 = float(c.sum())
    if g0 <= 0.0:  # no edge at n = 0, and the slope only decreases
        return 0.0
    m_stop = stop * s
    lo, hi = 0.0, s / lmax  # slope(lo) > 0; slope -> -inf at hi (a draw with p < 1 loses all)
    stop_checked = m_stop >= hi  # the constraint binds before the cap could
    m = g0 / float(cu.sum())  # the Newton step from 0: the mean-variance Kelly
    q = np.empty(2 * d)
    for _ in range(200):
        if not lo < m < hi:  # Newton left the bracket: bisect
            m = 0.5 * (lo + hi)
        if not stop_checked and m >= m_stop:
            m, stop_checked = m_stop, True  # evaluate at the cap first: is it binding?
        # 1 / (1 + m u) = (1 / m) / (u + 1 / m): one ufunc fewer per evaluation
        np.add(u, 1.0 / m, out=q)
        np.reciprocal(q, out=q)
        g = float(c @ q)  # slope x m d
        np.multiply(q, q, out=q)
        h = float(cu @ q) / m  # -curvature x m d
        if m == m_stop and g >= 0.0:
            return stop
        if g > 0.0:
            lo = m
        elif g < 0.0:
            hi = m
        else:
            return m / s
        step = g / h
        m += step
        # quadratic convergence: after a step of relative size 1e-6 the error is ~1e-12
        if abs(step) <= 1e-6 * m and lo < m < hi:
            return m / s
        if hi - lo <= 1e-15 * hi:
            break
    return min(max(m, lo), hi) / s


def kelly_continuous(
    mean_draws: np.ndarray | float,
    variance: float,
    *,
    fraction: float = DEFAULT_FRACTION,
    cap: float = DEFAULT_CAP,
) -> float:
    """Mean-variance Kelly for continuous returns under uncertainty about the mean.

    Maximising the posterior-expected second-order log growth ``f E[r] - f^2 E[r^2] / 2`` gives
    ``f = E[mu] / (sigma^2 + E[mu]^2 + Var[mu])``: estimation error in the mean (the spread of
    ``mean_draws``) shrinks the bet. ``variance`` is the return variance per period.

    Examples
    --------
    A 0.1% mean return with a 2% standard deviation per period: full Kelly is
    ``0.001 / (0.0004 + 0.001^2)``, about 2.49 x capital; an uncertain mean shrinks it.

    >>> import numpy as np
    >>> round(kelly_continuous(0.001, 0.0004, fraction=1.0, cap=5.0), 4)
    2.4938
    >>> means = np.random.default_rng(0).normal(0.001, 0.001, 1000)
    >>> round(kelly_continuous(means, 0.0004, fraction=1.0, cap=5.0), 4)
    2.3689
    """
    m = _draws(mean_draws, "mean_draws")
    if m.ndim != 1 or m.size == 0 or not np.all(np.isfinite(m)):
        raise ValueError("mean_draws must be a finite scalar or 1-d array")
    var = check_positive(variance, "variance")
    fraction = _check_fraction(fraction, "fraction")
    cap = check_positive(cap, "cap")  # may exceed 1 where leverage is allowed
    # f is homogeneous of degree -1 in the scale of returns: compute at unit scale, where the
    # squares cannot overflow, and divide by the scale
    scale = max(float(np.abs(m).max()), math.sqrt(var))
    m = m / scale
    mu = math.fsum(m.tolist()) / m.size  # exact sum: draws of both signs may cancel
    full = mu / (var / scale / scale + mu * mu + float(m.var())) / scale
    return min(max(fraction * full, 0.0), cap)


@dataclass(frozen=True)
class PositionLimit:
    """A position limit (currency) and why: the binding sizing rule times each risk factor.

    Examples
    --------
    >>> lim = combine_limits(cvar_limit=50_000.0, kelly_limit=40_000.0, regime=0.5)
    >>> lim.limit, lim.binding, lim.base, lim.regime
    (20000.0, 'kelly', 40000.0, 0.5)
    >>> lim.explain()
    'base kelly: 40,000.00; regime x0.500 -> 20,000.00'
    """

    limit: float
    cvar_limit: float | None
    kelly_limit: float | None
    factors: dict[str, float] = field(default_factory=dict)  # multiplicative cuts in (0, 1]

    @property
    def binding(self) -> str:
        """Which sizing rule set the base before the factors.

        Examples
        --------
        The smaller of the two base limits binds; with one of them only, that one:

        >>> combine_limits(cvar_limit=30_000.0, kelly_limit=45_000.0).binding
        'cvar'
        >>> combine_limits(kelly_limit=45_000.0).binding
        'kelly'
        """
        if self.kelly_limit is None:
            return "cvar"
        if self.cvar_limit is None:
            return "kelly"
        return "kelly" if self.kelly_limit < self.cvar_limit else "cvar"

    @property
    def base(self) -> float:
        """The base limit before the factors: the smaller of the CVaR and Kelly limits given
        (currency).

        Examples
        --------
        >>> combine_limits(cvar_limit=30_000.0, kelly_limit=45_000.0, regime=0.5).base
        30000.0
        """
        return min(x for x in (self.cvar_limit, self.kelly_limit) if x is not None)

    @property
    def regime(self) -> float:
        """The regime factor (1.0 when none was given): see :func:`bayes_mem.live.changepoint.
        regime_factor`.

        Examples
        --------
        >>> combine_limits(cvar_limit=30_000.0, regime=0.75).regime
        0.75
        >>> combine_limits(cvar_limit=30_000.0).regime  # none given
        1.0
        """
        return self.factors.get("regime", 1.0)

    def explain(self) -> str:
        """One line: the binding base limit, each factor below 1 and the result (currency).

        Examples
        --------
        A factor of 1 is left out of the line:

        >>> cuts = {"correlation": 1.0, "breakdown": 0.9}
        >>> lim = combine_limits(cvar_limit=30_000.0, factors=cuts)
        >>> lim.explain()
        'base cvar: 30,000.00; breakdown x0.900 -> 27,000.00'
        """
        parts = [f"base {self.binding}: {self.base:,.2f}"]
        parts += [f"{k} x{v:.3f}" for k, v in self.factors.items() if v != 1.0]
        return "; ".join(parts) + f" -> {self.limit:,.2f}"


def combine_limits(
    *,
    cvar_limit: float | None = None,
    kelly_limit: float | None = None,
    factors: dict[str, float] | None = None,
    regime: float | None = None,
) -> PositionLimit:
    """Final limit = min(CVaR limit, Kelly limit) x every factor (correlation, breakdown,
    regime ...), each reported so a trader can see why a position was cut.

    ``regime`` is the changepoint factor in [0, 1] (``regime_factor`` of the probability of a
    recent regime change); it is reported in ``factors`` under ``"regime"``, after the others.
    Omitted, nothing changes (the factor is 1).

    Examples
    --------
    >>> lim = combine_limits(
    ...     cvar_limit=50_000.0, kelly_limit=40_000.0, factors={"correlation": 0.8}, regime=0.5
    ... )
    >>> lim.limit
    16000.0
    >>> print(lim.explain())
    base kelly: 40,000.00; correlation x0.800; regime x0.500 -> 16,000.00
    """
    if cvar_limit is None and kelly_limit is None:
        raise ValueError("need at least one of cvar_limit and kelly_limit")
    for name, v in (("cvar_limit", cvar_limit), ("kelly_limit", kelly_limit)):
        if v is not None and (not math.isfinite(check_real(v, name)) or v < 0):
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    if factors is not None and not isinstance(factors, Mapping):
        raise TypeError(f"factors must be a mapping name -> factor, got {factors!r:.80}")
    factors = dict(factors or {})
    if regime is not None:
        if "regime" in factors:
            raise ValueError("give the regime factor once: as regime= or in factors, not both")
        factors["regime"] = regime
    for name, v in factors.items():
        fv = check_real(v, f"factor {name!r}")
        if not 0.0 <= fv <= 1.0:
            raise ValueError(f"factor {name!r} must be in [0, 1], got {v!r}")
    base = min(x for x in (cvar_limit, kelly_limit) if x is not None)
    limit = base * math.prod(factors.values())
    return PositionLimit(limit, cvar_limit, kelly_limit, factors)
