"""Portfolio one-day VaR/ES from the symbols' posterior predictives and a correlation.

Positions are currency values (long > 0, short < 0). Two methods:

``"elliptical"`` (default, ~1 ms): for each posterior draw s the portfolio PnL ``sum_i V_i r_i``
(linear in the log returns: first order, error ~ r^2 / 2 of the position) is a skew-t with
location ``sum_i V_i mu_is``, scale ``sqrt(x_s' R x_s)`` with ``x_is = V_i sd_is``, and tail weight
and skew averaged over symbols by their share of the portfolio variance (Euler contributions;
a short position flips its skew). The posterior-predictive VaR/ES are those of the mixture over
draws, solved like a single symbol's. Deterministic, no simulation error. It is an elliptical
(common-shock, t-copula-like) model: joint tail events are more likely than under the Gaussian
copula of the simulation method, so it is the more conservative of the two (measured: ES 0-15%
above the simulation's for 1-50 positions; the linear PnL adds ~r^2/2 per position).

``"simulation"``: each scenario draws, per symbol, one posterior draw and a skew-t innovation,
joined by a Gaussian copula with the normal-scores correlation of standardised residuals
(:mod:`bayes_mem.live.correlation`, estimated the same way); PnL is ``sum_i V_i (exp(r_i) - 1)``,
exact. The Monte Carlo standard errors of VaR and ES (batch means) are reported.

:class:`EulerES` is the sizing engine's per-signal view: built once per bar from the symbols'
long and short ES (any horizon, simple or log units) and the correlation, it gives the ES of a
signed book, its Euler allocation, the marginal ES of a symbol and, in closed form, the largest
position a symbol can add within an ES budget, in microseconds (a square-root-of-quadratic
approximation of the elliptical method; see the class).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy import special
from scipy.linalg.blas import daxpy

from bayes_mem.live.mixture_tail import MixtureTail
from bayes_mem.live.return_model import ReturnModel
from bayes_mem.live.skewt import SkewT
from bayes_mem.live.validate import (
    as_float_array,
    check_int,
    check_level,
    check_name,
    check_real,
)

_BATCHES = 20


@dataclass(frozen=True)
class PortfolioRisk:
    """A book's one-day VaR and ES at ``level`` (:func:`portfolio_risk`'s answer): ``var`` and
    ``es`` in currency (positive = loss), ``gross_exposure`` the sum of the absolute positions
    (currency), ``method`` ``"elliptical"`` or ``"simulation"``; for a simulation, the Monte
    Carlo standard errors ``var_se`` and ``es_se`` (currency, batch means) of ``n_sims``
    scenarios (None otherwise).

    Examples
    --------
    >>> risk = PortfolioRisk(0.975, var=2_100.0, es=2_850.0, method="elliptical",
    ...                      gross_exposure=150_000.0)
    >>> print(f"ES {risk.es:,.0f} = {risk.es_fraction_of_gross:.2%} of gross")
    ES 2,850 = 1.90% of gross
    """

    level: float
    var: float  # currency, positive = loss
    es: float
    method: str
    gross_exposure: float
    var_se: float | None = None  # Monte Carlo standard errors (batch means); None: not simulated
    es_se: float | None = None
    n_sims: int | None = None

    @property
    def es_fraction_of_gross(self) -> float:
        """ES as a fraction of the gross exposure (ES per unit of notional held).

        Examples
        --------
        ES 3,000 on a gross exposure of 100,000 + 50,000:

        >>> PortfolioRisk(0.975, var=2_400.0, es=3_000.0, method="elliptical",
        ...               gross_exposure=150_000.0).es_fraction_of_gross
        0.02
        """
        return self.es / self.gross_exposure


def check_correlation(corr: np.ndarray, n: int) -> np.ndarray:
    """``corr`` as an (n, n) float array, checked: finite, symmetric with a unit diagonal and
    positive definite (a Cholesky factorisation); raises ``ValueError`` naming what is wrong.

    Examples
    --------
    A valid matrix comes back as floats; correlation 1 between two symbols is singular:

    >>> import numpy as np
    >>> check_correlation([[1, 0.5], [0.5, 1]], 2)
    array([[1. , 0.5],
           [0.5, 1. ]])
    >>> check_correlation(np.ones((2, 2)), 2)
    Traceback (most recent call last):
        ...
    ValueError: correlation is not positive definite (singular input: ...
    """
    c = as_float_array(corr, "correlation")
    if c.shape != (n, n):
        raise ValueError(f"correlation must be {n} x {n} (one row per position), got {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ValueError("correlation has non-finite entries")
    if not np.allclose(c, c.T, atol=1e-10) or not np.allclose(np.diag(c), 1.0, atol=1e-10):
        raise ValueError("correlation must be symmetric with a unit diagonal")
    try:
        np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(
            "correlation is not positive definite (singular input: more symbols than days, or "
            "duplicated series); use correlation.shrunk_correlation"
        ) from None
    return c


def portfolio_risk(
    model: ReturnModel,
    positions: Mapping[str, float],
    correlation: np.ndarray,
    *,
    level: float = 0.975,
    method: str = "elliptical",
    n_sims: int = 20_000,
    rng: int | np.random.Generator | None = None,
) -> PortfolioRisk:
    """One-day VaR and ES (currency, positive = loss) of ``positions``; ``correlation`` rows
    follow the order of ``positions``. ``n_sims`` and ``rng`` apply to ``method="simulation"``.

    Examples
    --------
    Two symbols with the same three posterior draws, QQQ 1.5 times SPY's variance, correlation 0.8:

    >>> import numpy as np
    >>> from bayes_mem.live import GarchDraws, ReturnModel
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
    ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
    ...     lam=[-0.1, -0.05, -0.15],
    ... )
    >>> v = draws.long_run_variance
    >>> model = ReturnModel({"SPY": draws, "QQQ": draws}, {"SPY": v, "QQQ": 1.5 * v})
    >>> corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    >>> for book in ({"SPY": 100_000.0, "QQQ": 50_000.0}, {"SPY": 100_000.0, "QQQ": -50_000.0}):
    ...     risk = portfolio_risk(model, book, corr)
    ...     print(f"VaR {risk.var:,.0f}, ES {risk.es:,.0f}")  # the short QQQ hedges
    VaR 2,089, ES 2,864
    VaR 844, ES 1,149
    >>> sim = portfolio_risk(model, book, corr, method="simulation", rng=0)
    >>> print(f"ES {sim.es:,.0f} +- {sim.es_se:.0f} ({sim.n_sims:,} scenarios)")
    ES 1,195 +- 27 (20,000 scenarios)
    """
    level = check_level(level, "level")
    if method not in ("elliptical", "simulation"):
        raise ValueError(f"method must be 'elliptical' or 'simulation', got {method!r}")
    if not positions:
        raise ValueError("positions is empty")
    symbols = list(positions)
    unknown = [s for s in symbols if s not in model.symbols]
    if unknown:
        raise ValueError(f"positions name symbols the model does not have: {unknown[:5]!r}")
    values = np.array([check_real(positions[s], f"position {s!r}") for s in symbols])
    with np.errstate(over="ignore"):  # an overflow is refused below
        gross = float(np.abs(values).sum())
    if gross == 0:
        raise ValueError("all positions are zero")
    if not np.isfinite(gross):
        raise ValueError(f"gross exposure overflows: positions {values[:5].tolist()}")
    # VaR and ES are positively homogeneous in the positions: solve for unit gross exposure
    # (no overflow or underflow of the squared scales) and scale back
    values = values / gross
    corr = check_correlation(correlation, len(symbols))
    idx = np.array([model.symbols.index(s) for s in symbols])
    mu = model._p["mu"][idx]
    sd = np.sqrt(model.sigma2()[idx])
    nu, lam = model._inn.nu[idx], model._p["lam"][idx]
    alpha = 1.0 - level
    if method == "elliptical":
        x = values[:, None] * sd  # (n, S) scale per symbol and draw, per unit of gross
        rx = corr @ x
        var_p = np.sum(x * rx, axis=0)
        share = np.abs(x * rx)
        share /= share.sum(axis=0)
        nu_p = np.sum(share * nu, axis=0)
        lam_p = np.sum(share * np.sign(values)[:, None] * lam, axis=0)
        loc = values @ mu  # (S,)
        scale = np.sqrt(var_p)
        tail = MixtureTail(nu_p[None, :], lam_p[None, :])
        q0 = np.array([loc.mean() - 2.0 * np.sqrt(np.mean(var_p) + loc.var())])
        var_a, es_a, _ = tail.var_es(alpha, loc[None, :], scale[None, :], q0, rtol=1e-6)
        return PortfolioRisk(level, gross * float(var_a[0]), gross * float(es_a[0]), method, gross)
    n_sims = check_int(n_sims, "n_sims", minimum=_BATCHES * 50)
    gen = np.random.default_rng(rng)
    n, s_draws = len(symbols), sd.shape[1]
    u = special.ndtr(gen.standard_normal((n_sims, n)) @ np.linalg.cholesky(corr).T)
    pick = gen.integers(0, s_draws, (n_sims, n))
    cols = np.arange(n)
    inn = SkewT.from_params(nu[cols, pick], lam[cols, pick])
    r = mu[cols, pick] + sd[cols, pick] * inn.ppf(u)
    loss = -(np.expm1(r) @ values)
    var, es = _var_es(loss, level)
    batches = np.array([_var_es(b, level) for b in np.array_split(loss, _BATCHES)])
    se = gross * batches.std(axis=0, ddof=1) / np.sqrt(_BATCHES)
    return PortfolioRisk(
        level, gross * var, gross * es, method, gross, float(se[0]), float(se[1]), n_sims
    )


def _var_es(loss: np.ndarray, level: float) -> tuple[float, float]:
    var = float(np.quantile(loss, level))
    return var, float(loss[loss >= var].mean())


# ---------------------------------------------------------------------------- Euler allocation
_FULL_EVERY = 64  # incremental book updates between full recomputations of Sigma V
# the same for a BookState (O(1) updates of V'Sigma V and V.a; a full recomputation costs a
# matrix-vector product, ~0.1-0.3 ms at 500 symbols)
_BOOK_FULL_EVERY = 256
# a book as given: its (symbol, signed notional) pairs, in the mapping's order
_BookKey = tuple[tuple[str, float], ...]
# what an addition reads of a book: (V, Sigma V, V' Sigma V, V.a, ...) (BookState.state is these
# four; EulerES's cached state adds the updates since the last full computation, the positions
# as a dict and the largest |V_i| since: _CachedState)
_State = tuple[np.ndarray, np.ndarray, float, float, *tuple[object, ...]]
_CachedState = tuple[np.ndarray, np.ndarray, float, float, int, dict[str, float], float]


class EulerES:
    """Portfolio ES of a signed book, its Euler allocation, marginal ES and the largest addition
    within a budget, under a linear / elliptical approximation; built once per bar, then cheap.

    Inputs per symbol ``i``: the stand-alone ES per unit of notional of a long position
    ``e_i^L`` and of a short one ``e_i^S`` (positive loss fractions, e.g. from
    :meth:`ReturnModel.risk` with ``side="long"`` / ``"short"``) and the correlation ``R`` of
    the returns. A book is a mapping symbol -> signed notional ``V_i`` (currency; long > 0,
    short < 0). With ``d_i = (e_i^L + e_i^S) / 2`` and ``a_i = (e_i^S - e_i^L) / 2``,

        ES(V) = sqrt(V' Sigma V) - V . a,    Sigma_ij = d_i R_ij d_j    (currency, loss > 0)

    This is the ES of the linear PnL ``sum_i V_i r_i`` of jointly elliptical returns
    (``ES = k sd - mean``) with the per-symbol asymmetry of the tails (skew and drift) carried by
    the linear term ``a``: a single position of either side gets exactly its stand-alone ES
    (``V e^L`` long, ``|V| e^S`` short), a position hedged by an identical one gets 0, and the
    skew of a long/short book nets out while that of a one-sided book adds up (undiversified:
    conservative). For symbols with one tail weight, no skew and one posterior draw it equals
    :func:`portfolio_risk`'s ``"elliptical"`` method; otherwise it stands for it (measured with
    :meth:`from_model` on books of 2-6 positions, correlations 0-0.9: one-sided books 0-13% above
    it, mixed books -6% to +7%; see ``tests/test_euler_es.py``).

    ES is convex and positively homogeneous of degree 1 in ``V``: the Euler contributions
    ``V_i dES/dV_i`` add up to ES exactly, and the amounts of one symbol that keep ES within a
    budget form an interval (closed form: a quadratic).

    Cost: ``Sigma`` is formed (and ``R`` checked by Cholesky) once; per call the book's
    ``Sigma V`` is cached and updated in O(N) per changed position (the engine changes one
    position at a time), so :meth:`max_addition` and :meth:`marginal_es` on an unchanged book
    cost O(K) for the K positions given (comparing the mapping with the cached one) plus scalar
    arithmetic. Thread-safe (the cached book is replaced atomically).

    Examples
    --------
    One-day ES of 3% (SPY) and 2% (TLT) of notional on either side, correlation -0.3:

    >>> import numpy as np
    >>> euler = EulerES(
    ...     ["SPY", "TLT"], es_long=[0.03, 0.02], es_short=[0.03, 0.02],
    ...     correlation=np.array([[1.0, -0.3], [-0.3, 1.0]]),
    ... )
    >>> euler.es({"SPY": 100_000.0})  # one position: its stand-alone ES
    3000.0
    >>> book = {"SPY": 100_000.0, "TLT": 50_000.0}
    >>> round(euler.es(book)), {s: round(c) for s, c in euler.contributions(book).items()}
    (2864, {'SPY': 2829, 'TLT': 35})
    >>> round(euler.marginal_es(book, "TLT"), 5)  # ES per unit of TLT added
    0.0007
    >>> round(euler.max_addition(book, "SPY", +1, budget=5_000.0))  # SPY to buy within 5,000
    73605
    """

    def __init__(
        self,
        symbols: Sequence[str],
        es_long: Sequence[float] | np.ndarray,
        es_short: Sequence[float] | np.ndarray,
        correlation: np.ndarray,
        *,
        _checked: bool = False,
    ) -> None:
        if _checked:  # from_model(check=False): inputs built by the caller, known valid
            self._setup(tuple(symbols), np.asarray(es_long), np.asarray(es_short), correlation)
            return
        symbols = tuple(check_name(s, "symbol") for s in symbols)
        if not symbols:
            raise ValueError("need at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols must be distinct, got {list(symbols)!r:.200}")
        n = len(symbols)
        arrays = {}
        for name, value in (("es_long", es_long), ("es_short", es_short)):
            x = as_float_array(value, name)
            if x.shape != (n,):
                raise ValueError(f"{name} must have one value per symbol ({n}), got {x.shape}")
            bad = ~(np.isfinite(x) & (x >= 0))
            if np.any(bad):
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{name} of {symbols[i]!r} must be a finite loss fraction >= 0, got {x[i]!r}"
                )
            arrays[name] = x
        corr = check_correlation(correlation, n)
        self._setup(symbols, arrays["es_long"], arrays["es_short"], corr)

    def _setup(
        self, symbols: tuple[str, ...], e_long: np.ndarray, e_short: np.ndarray, corr: np.ndarray
    ) -> None:
        d = 0.5 * (e_long + e_short)
        self.symbols = symbols
        self._index = {sym: i for i, sym in enumerate(symbols)}
        self._sigma = np.ascontiguousarray(corr * np.outer(d, d))
        self._a = 0.5 * (e_short - e_long)
        self._d = d.tolist()
        self._a_list = self._a.tolist()
        self._diag = np.diag(self._sigma).tolist()
        # (positions as given, state): state = (V, Sigma V, V'Sigma V, V.a, updates since the
        # last full computation, positions as a dict, largest |V_i| since), V, Sigma V dense
        self._book: tuple[_BookKey, _CachedState] | None = None

    @classmethod
    def from_model(
        cls,
        model: ReturnModel,
        correlation: np.ndarray,
        *,
        level: float = 0.975,
        symbols: Sequence[str] | None = None,
        horizon: int = 1,
        units: str = "simple",
        check: bool = True,
    ) -> EulerES:
        """From a :class:`ReturnModel`'s per-side ES at ``level`` over ``horizon`` days for
        ``symbols`` (default: all; ``correlation`` rows follow them).

        ``units="simple"`` (default) takes :attr:`RiskForecast.es_simple` (a position's loss as
        a fraction of its notional) through :meth:`ReturnModel.position_risk_arrays`: the
        numbers :meth:`ReturnModel.position_risk` gives in this state, so the engine's CVaR
        budget and portfolio-ES limit read one answer per state whatever the order of the
        calls; ``"log"``
        takes ``es_log`` (PnL linear in log returns, as :func:`portfolio_risk`'s elliptical
        method). The correlation of standardised returns is scaled by ``c_i c_j`` off the
        diagonal, ``c_i = E[sd_i] / sqrt(E[sd_i^2] + Var(mu_i))`` over the posterior draws: the
        draws of different symbols are independent, so the covariance of two returns is
        ``R_ij E[sd_i] E[sd_j]`` while their variances are the predictive ones (about 0.97-0.99:
        a hedge's residual keeps the uncertainty about the two volatilities).

        ``check=False`` skips the correlation's checks (symmetry, unit diagonal, a Cholesky
        factorisation: ~10 ms at 500 symbols) for a caller whose correlation is valid by
        construction, e.g. :func:`~bayes_mem.live.correlation.shrunk_correlation`'s (the
        engine's; the scaled matrix is then positive definite too: ``C R C + I - C^2`` with
        ``0 < c_i <= 1``).

        Examples
        --------
        Two symbols of one return model (one posterior draw); a single long position's ES is its
        stand-alone ES, the same number as :meth:`ReturnModel.position_risk`:

        >>> import numpy as np
        >>> from bayes_mem.live import GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])
        >>> v = draws.long_run_variance
        >>> model = ReturnModel({"SPY": draws, "QQQ": draws}, {"SPY": v, "QQQ": 1.5 * v})
        >>> euler = EulerES.from_model(model, np.array([[1.0, 0.8], [0.8, 1.0]]))
        >>> euler.symbols
        ('SPY', 'QQQ')
        >>> es_spy = model.position_risk("SPY", level=0.975, side="long")[1]
        >>> abs(euler.es({"SPY": 100_000.0}) - 100_000.0 * es_spy) < 1e-6
        True
        """
        if units not in ("simple", "log"):
            raise ValueError(f"units must be 'simple' or 'log', got {units!r}")
        names = list(model.symbols) if symbols is None else [check_name(s) for s in symbols]
        where = {s: i for i, s in enumerate(model.symbols)}
        unknown = [] if symbols is None else [s for s in names if s not in where]
        if unknown:
            raise ValueError(f"symbols not in the model: {unknown[:5]!r}")
        if symbols is None:
            idx = np.arange(len(names), dtype=np.intp)
        else:
            idx = np.array([where[s] for s in names], dtype=np.intp)
        corr = check_correlation(correlation, len(names)) if check else correlation
        if units == "simple":  # the model's cached per-position answers (position_risk's)
            level = check_level(level, "level")
            e_long = model.position_risk_arrays(level, "long", horizon)[1][idx]
            e_short = model.position_risk_arrays(level, "short", horizon)[1][idx]
            h = int(horizon)  # checked by position_risk_arrays
        else:
            long_f = model.risk(level, side="long", horizon=horizon)
            short_f = model.risk(level, side="short", horizon=horizon)
            e_long, e_short = long_f.es_log[idx], short_f.es_log[idx]
            h = long_f.horizon
        var = model.horizon_variance_per_draw(h)[idx]  # (n, S)
        c = np.sqrt(var).mean(axis=1) / np.sqrt(var.mean(axis=1) + h * h * model._mu_var[idx])
        effective = corr * np.outer(c, c)
        np.fill_diagonal(effective, 1.0)
        return cls(names, e_long, e_short, effective, _checked=not check)

    # ------------------------------------------------------------------ book
    def _state(self, positions: Mapping[str, float]) -> _CachedState:
        """The book's dense V, Sigma V, V'Sigma V and V.a (cached; updated in O(N) per changed
        position, in full every ``_FULL_EVERY`` updates or when the book shrinks 16-fold, so
        that rounding stays relative to the book at hand). Bad input raises before anything is
        cached."""
        try:
            key = tuple(positions.items())
        except AttributeError:
            raise TypeError(
                f"positions must be a mapping symbol -> notional, got {type(positions).__name__}"
            ) from None
        cached = self._book
        if cached is not None:
            old_key, state = cached
            if old_key == key:
                return state
            if state[4] < _FULL_EVERY:
                changes = _changes(key, state[5])
                if changes is not None:
                    return self._update(key, state, changes)
        v = np.zeros(len(self.symbols))
        for sym, value in key:
            v[self._position_index(sym)] = check_real(value, f"position {sym!r:.80}")
        return self._full(key, v)

    def _update(
        self, key: _BookKey, state: _CachedState, changes: list[tuple[str, float]]
    ) -> _CachedState:
        """``state`` moved by a few changed positions: O(N) each (``Sigma`` is symmetric: its
        rows are its columns)."""
        v, sv, _, _, count, _, scale = state
        v, sv = v.copy(), sv.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for sym, value in changes:
                i = self._position_index(sym)
                x = check_real(value, f"position {sym!r:.80}")
                delta = x - float(v[i])
                if delta != 0.0:
                    sv += delta * self._sigma[i]
                    v[i] = x
                    scale = max(scale, abs(x))
            if float(np.abs(v).max()) * 16.0 < scale:  # shrunk: rounding of the larger book
                return self._full(key, v)  # would dominate; start afresh
            state = (v, sv, float(v @ sv), float(v @ self._a), count + 1, dict(key), scale)
        return self._keep(key, state)

    def _full(self, key: _BookKey, v: np.ndarray) -> _CachedState:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below
            held = np.flatnonzero(v)
            sv = self._sigma[:, held] @ v[held]
            scale = float(np.abs(v).max(initial=0.0))
            state = (v, sv, float(v @ sv), float(v @ self._a), 0, dict(key), scale)
        return self._keep(key, state)

    def _position_index(self, symbol: object) -> int:
        i = self._index.get(symbol) if isinstance(symbol, str) else None
        if i is None:
            raise ValueError(f"position in unknown symbol {symbol!r:.80}")
        return i

    def _keep(self, key: _BookKey, state: _CachedState) -> _CachedState:
        if not (math.isfinite(state[2]) and math.isfinite(state[3])):
            raise ValueError(f"positions overflow: {key[:3]!r:.200}")
        self._book = (key, state)
        return state

    def es(self, positions: Mapping[str, float]) -> float:
        """Portfolio ES of the book (currency, positive = loss; 0 for an empty book).

        Examples
        --------
        Uncorrelated, no skew: sqrt(3,000^2 + 3,000^2) = 4,242.64; an empty book has none:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> round(euler.es(book), 2), euler.es({})
        (4242.64, 0.0)
        """
        _, _, q, lin, *_ = self._state(positions)
        return math.sqrt(max(q, 0.0)) - lin

    def contributions(self, positions: Mapping[str, float]) -> dict[str, float]:
        """Euler contributions ``V_i dES/dV_i`` (currency) of the symbols in ``positions``; they
        add up to :meth:`es` (up to rounding).

        Examples
        --------
        Two equal, uncorrelated risks share the ES equally, and the shares add up to it:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> parts = euler.contributions(book)
        >>> {s: round(c, 2) for s, c in parts.items()}, round(sum(parts.values()), 2)
        ({'SPY': 2121.32, 'TLT': 2121.32}, 4242.64)
        """
        v, sv, q, *_ = self._state(positions)
        sd = math.sqrt(max(q, 0.0))
        part = v * sv / sd if sd > 0 else np.zeros_like(v)
        contrib = part - v * self._a
        return {sym: float(contrib[self._index[sym]]) for sym in positions}

    def marginal_es(
        self, positions: Mapping[str, float], symbol: str, notional_sign: float | None = None
    ) -> float:
        """``dES / dV`` of ``symbol``'s signed notional (currency per currency: the Euler
        contribution per unit). Of a book without risk (empty) the derivative is one-sided:
        give ``notional_sign`` (+1: buying, -1: selling) there; elsewhere it is ignored.

        Examples
        --------
        ``(Sigma V)_SPY / sd`` = 0.03^2 x 100,000 / 4,242.64 = 0.021213 per unit of SPY; an empty
        book needs the side:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> round(euler.marginal_es(book, "SPY"), 6)
        0.021213
        >>> euler.marginal_es({}, "TLT", notional_sign=-1)  # each unit sold (dV = -1) adds 4% ES
        -0.04
        """
        j = self._symbol_index(symbol)
        _, sv, q, *_ = self._state(positions)
        sd = math.sqrt(max(q, 0.0))
        if sd > 0:
            return float(sv[j]) / sd - self._a_list[j]
        if notional_sign is None:
            raise ValueError(
                "the book carries no risk: the derivative depends on the side, give "
                "notional_sign (+1 buying, -1 selling)"
            )
        return _check_sign(notional_sign) * self._d[j] - self._a_list[j]  # ES = |V| d - V a

    def addition(
        self, positions: Mapping[str, float], symbol: str, notional_sign: float, budget: float
    ) -> tuple[float, float, float]:
        """``(max_addition, es, marginal_es)`` of one book, symbol and side in one pass over the
        book (what :class:`~bayes_mem.live.modules.PortfolioESLimit` reports): the same values
        as the three calls (:meth:`es` of an empty book is 0).

        Examples
        --------
        All three numbers in one pass: the SPY to buy within an ES budget of 5,000 solves
        (3,000 + 0.03 t)^2 + 3,000^2 = 5,000^2, t = 33,333.33:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> cap, es, marginal = euler.addition(book, "SPY", +1, budget=5_000.0)
        >>> round(cap, 2), round(es, 2), round(marginal, 6)
        (33333.33, 4242.64, 0.021213)
        """
        j = self._symbol_index(symbol)
        if notional_sign == 1 and type(notional_sign) is int:  # the engine's +-1: no checks
            sign = 1.0
        elif notional_sign == -1 and type(notional_sign) is int:
            sign = -1.0
        else:
            sign = _check_sign(notional_sign)
        b = budget if type(budget) is float and budget >= 0.0 else check_real(budget, "budget")
        if not b >= 0.0:
            raise ValueError(f"budget must be >= 0 (currency), got {budget!r}")
        return self._addition(self._state(positions), j, sign, b, bool(positions))

    def addition_tracked(
        self, book: BookState, symbol: str, notional_sign: int, budget: float
    ) -> tuple[float, float, float]:
        """:meth:`addition` on a :class:`BookState` the caller keeps in step with its book (the
        engine's hot path: no pass over the book's mapping). ``notional_sign`` +1 or -1,
        ``budget`` >= 0 (not re-checked).

        Examples
        --------
        The same answer as :meth:`addition`, read from a :class:`BookState`:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> state = BookState(euler, book)
        >>> tracked = euler.addition_tracked(state, "SPY", 1, 5_000.0)
        >>> tracked == euler.addition(book, "SPY", 1, 5_000.0)
        True
        """
        if book.euler is not self:
            raise ValueError("the book state was made for another EulerES")
        j = self._symbol_index(symbol)
        return self._addition(book.state, j, float(notional_sign), budget, book.held)

    def _addition(
        self, state: _State, j: int, sign: float, b: float, held: bool
    ) -> tuple[float, float, float]:
        cap = self._max_addition(state, j, sign, b)
        q = state[2]
        sd = _sqrt(q) if q > 0.0 else 0.0
        es = sd - state[3] if held else 0.0
        if sd > 0.0:
            marginal = state[1].item(j) / sd - self._a_list[j]
        else:
            marginal = sign * self._d[j] - self._a_list[j]
        return cap, es, marginal

    def max_addition(
        self,
        positions: Mapping[str, float],
        symbol: str,
        notional_sign: float,
        budget: float,
    ) -> float:
        """The largest notional ``t >= 0`` (currency) such that the book with ``symbol``'s
        position moved by ``notional_sign * t`` (+1 buys, -1 sells) has ES <= ``budget``
        (currency): the upper end of the interval of such ``t`` (ES is convex in ``t``).
        ``math.inf`` if every amount does (only for a symbol without risk: any position large
        enough is its own risk), 0 if no positive amount does.

        ``ES(t) <= budget`` is ``sqrt(Q(t)) <= budget + V.a + sign a_j t`` with ``Q`` quadratic:
        squared, a quadratic inequality, solved in closed form. A hedge of a book that breaches
        the budget is allowed up to where it brings ES back above the budget (if it brings it
        within the budget at all).

        Examples
        --------
        Within an ES budget of 5,000: (3,000 + 0.03 t)^2 + 3,000^2 <= 5,000^2 gives t <= 33,333.33;
        a budget below the book's ES allows no buying of SPY:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> round(euler.max_addition(book, "SPY", +1, budget=5_000.0), 2)
        33333.33
        >>> euler.max_addition(book, "SPY", +1, budget=4_000.0)
        0.0
        """
        j = self._symbol_index(symbol)
        sign = _check_sign(notional_sign)
        b = check_real(budget, "budget")
        if b < 0.0:
            raise ValueError(f"budget must be >= 0 (currency), got {budget!r}")
        return self._max_addition(self._state(positions), j, sign, b)

    def _max_addition(self, state: _State, j: int, sign: float, b: float) -> float:
        """:meth:`max_addition` of checked arguments and the book's state (the engine's hot
        path: plain comparisons instead of ``min``/``max`` calls, the same values)."""
        a_j = self._a_list[j]
        room = b + state[3]
        # room + sign a_j t >= 0, and A t^2 + B t + C <= 0
        lo, hi = 0.0, math.inf
        slope = sign * a_j
        if slope > 0.0:
            x = -room / slope
            if x > lo:
                lo = x
        elif slope < 0.0:
            x = -room / slope
            if x < hi:
                hi = x
        elif room < 0.0:
            return 0.0
        big_a = self._diag[j] - a_j * a_j  # = e^L e^S >= 0
        big_b = 2.0 * sign * (state[1].item(j) - a_j * room)
        big_c = state[2] - room * room
        if big_a > 0.0:
            disc = big_b * big_b - 4.0 * big_a * big_c
            if disc < 0.0:
                return 0.0
            root = _sqrt(disc)
            if big_b >= 0.0:  # the roots without cancellation, the other from their product
                r1 = (-big_b - root) / (2.0 * big_a)
                r2 = big_c / (big_a * r1) if r1 != 0.0 else 0.0
            else:
                r2 = (-big_b + root) / (2.0 * big_a)
                r1 = big_c / (big_a * r2) if r2 != 0.0 else 0.0
            if r1 > r2:
                r1, r2 = r2, r1
            if r1 > lo:
                lo = r1
            if r2 < hi:
                hi = r2
        elif big_b > 0.0:
            x = -big_c / big_b
            if x < hi:
                hi = x
        elif big_b < 0.0:
            x = -big_c / big_b
            if x > lo:
                lo = x
        elif big_c > 0.0:
            return 0.0
        return hi if lo <= hi and hi > 0.0 else 0.0

    def _symbol_index(self, symbol: str) -> int:
        i = self._index.get(symbol) if isinstance(symbol, str) else None
        if i is None:
            raise ValueError(f"unknown symbol {symbol!r:.80}")
        return i


_sqrt = math.sqrt
_MISSING = object()


def _changes(key: _BookKey, old: dict[str, float]) -> list[tuple[str, float]] | None:
    """The (symbol, notional) pairs that differ between a book and the cached one (removed
    symbols as 0), or ``None`` if more than 8 do (a full computation is then cheaper)."""
    out = []
    added = 0
    for sym, value in key:
        before = old.get(sym, _MISSING)
        if before != value:
            out.append((sym, value))
            added += before is _MISSING
            if len(out) > 8:
                return None
    if len(key) - added != len(old):  # some symbols of the cached book are gone
        present = {sym for sym, _ in key}
        out.extend((sym, 0.0) for sym in old if sym not in present)
        if len(out) > 8:
            return None
    return out


def _check_sign(value: object) -> float:
    """+1 or -1 (bool refused)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real) or value not in (1, -1):
        raise ValueError(f"notional_sign must be +1 (buy) or -1 (sell), got {value!r:.40}")
    return float(value)


class BookState:
    """A book's ``V``, ``Sigma V``, ``V' Sigma V`` and ``V.a`` under one :class:`EulerES`, kept in
    step by its owner: :meth:`sync` with the symbols whose position changed since the last sync
    (no pass over the book: per changed symbol one O(N) update of ``Sigma V``, and
    ``V' Sigma V``, ``V.a`` moved in O(1): ``Q + 2 d (Sigma V)_i + d^2 Sigma_ii``,
    ``V.a + d a_i`` for a change ``d`` of ``V_i``), a full recomputation every
    ``_BOOK_FULL_EVERY`` updates or when the book's gross exposure shrinks 16-fold below the
    largest since the last one (rounding relative to the book at hand). For
    :meth:`EulerES.addition_tracked`. Not thread-safe: the owner serialises (the engine's
    lock).

    Examples
    --------
    A book's state, moved by :meth:`sync` as positions change (here SPY doubled):

    >>> import numpy as np
    >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
    ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
    >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
    >>> state = BookState(euler, book)
    >>> book["SPY"] = 200_000.0
    >>> state.sync(book, ["SPY"])
    >>> cap, es, _ = euler.addition_tracked(state, "TLT", 1, 10_000.0)
    >>> round(es, 2), round(euler.es(book), 2)  # sqrt(6,000^2 + 3,000^2)
    (6708.2, 6708.2)
    """

    __slots__ = ("count", "euler", "gross", "held", "scale", "state", "v")

    def __init__(self, euler: EulerES, positions: Mapping[str, float]) -> None:
        self.euler = euler
        v = np.zeros(len(euler.symbols))
        for sym, value in positions.items():
            v[euler._position_index(sym)] = check_real(value, f"position {sym!r:.80}")
        self._full(v)
        self.held = bool(positions)

    def _full(self, v: np.ndarray) -> None:
        with np.errstate(over="ignore", invalid="ignore"):
            held = np.flatnonzero(v)
            sigma = self.euler._sigma
            # a dense product is cheaper than copying the columns of a quarter of the symbols
            sv = sigma @ v if 4 * held.size > v.size else sigma[:, held] @ v[held]
            self.state = (v, sv, float(v @ sv), float(v @ self.euler._a))
        self.v = v
        self.count = 0
        self.gross = self.scale = float(np.abs(v).sum())  # now, and the largest since
        self._check()

    def _check(self) -> None:
        if not (math.isfinite(self.state[2]) and math.isfinite(self.state[3])):
            raise ValueError("positions overflow")

    def sync(self, positions: Mapping[str, float], changed: Sequence[str]) -> None:
        """Bring the state to ``positions`` (the owner's book, symbol -> signed notional, 0
        or absent: flat), given every symbol whose position changed since the last sync.

        Examples
        --------
        After a sync the tracked numbers equal a state built from the new book:

        >>> import numpy as np
        >>> euler = EulerES(["SPY", "TLT"], es_long=[0.03, 0.04], es_short=[0.03, 0.04],
        ...                 correlation=np.eye(2))  # one-day ES 3% and 4%, uncorrelated
        >>> book = {"SPY": 100_000.0, "TLT": 75_000.0}  # stand-alone ES 3,000 each
        >>> state = BookState(euler, book)
        >>> book["TLT"] = -25_000.0  # TLT sold down to a short
        >>> state.sync(book, ["TLT"])
        >>> fresh = BookState(euler, book)
        >>> np.allclose(state.state[1], fresh.state[1]), round(state.state[2] - fresh.state[2], 6)
        (True, 0.0)
        """
        if not changed:
            return
        eu = self.euler
        v = self.v
        _, sv, q, lin = self.state
        index, sigma, diag, a = eu._index, eu._sigma, eu._diag, eu._a_list
        gross, scale = self.gross, self.scale
        moved = False
        # no np.errstate here (~4 us per use): positions the engine sizes cannot overflow, and
        # an overflow would still be refused by _check
        for sym in changed:
            i = index[sym]
            x = positions.get(sym, 0.0)
            old = v.item(i)
            delta = x - old
            if delta != 0.0:
                q += delta * (2.0 * sv.item(i) + delta * diag[i])
                lin += delta * a[i]
                # sv += delta Sigma_i in place by BLAS axpy (0.3 us; numpy's multiply, then
                # add: 1.2 us); it may fuse the multiply-add, so the last bit may differ
                sv = daxpy(sigma[i], sv, a=delta)
                v[i] = x
                gross += abs(x) - abs(old)
                if gross > scale:
                    scale = gross
                self.count += 1
                moved = True
        self.held = bool(positions)
        if not moved:  # e.g. a decision and its cancel: the same book
            return
        self.gross, self.scale = gross, scale
        if self.count >= _BOOK_FULL_EVERY or gross * 16.0 < scale:
            self._full(v)
            return
        self.state = (v, sv, q, lin)
        self._check()
