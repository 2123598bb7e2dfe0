"""Posterior of each signal's payoff sizes: how much its trades win and lose per unit notional.

Units. A *size* is a return per unit notional as a non-negative fraction (0.03 = 3%): the win
size of a won trade is ``pnl / notional``, the loss size of a lost trade is ``-pnl / notional``.
:meth:`PayoffModel.draws` gives joint posterior draws of a signal's mean win size ``W`` and mean
loss size ``L``, the payoff inputs of :func:`bayes_mem.live.sizing.kelly_notional`.

Model (wins and losses separately, the same way). Within a family, the sizes of signal ``s`` are
``Gamma(k, rate lam_s)``, mean ``mu_s = k / lam_s``, with one shape ``k`` per family and side. The
conjugate prior ``lam_s ~ Gamma(k n_p + 1, n_p c)`` puts ``n_p`` pseudo-trades of mean size ``c``
behind the signal's own (decayed) ``n_s`` trades summing to ``S_s``; the posterior is
``lam_s ~ Gamma(k (n_p + n_s) + 1, n_p c + S_s)``, so

- ``E[mu_s] = (n_p c + S_s) / (n_p + n_s)``: the signal's mean size shrunk toward ``c`` with
  ``n_p`` pseudo-trades, whatever ``k``;
- ``Var[mu_s] = E[mu_s]^2 / (k (n_p + n_s) - 1)`` (finite when ``k (n_p + n_s) > 1``);
- draws are ``mu_d = k (n_p c + S_s) / G_d`` with ``G_d ~ Gamma(k (n_p + n_s) + 1)``: exact.

Prior centre and strength. ``c`` is the family's pooled mean size, all its signals' decayed trades
(``N_F`` trades summing to ``S_F``; the signal's own are included, an O(n_s / N_F) double use that
keeps one centre per family) plus ``default_weight`` pseudo-trades at the default size ``d``:
``c = (S_F + n_d d) / (N_F + n_d)``. The default is the caller's scale for a family without
history (the engine passes one from the return model's risk over the holding period); per call
(``fallback_win`` / ``fallback_loss``) or for the model (:meth:`PayoffModel.set_default`).
Without any default, ``n_d = 0``. The centre is itself an estimate worth ``N_F + n_d`` trades,
so the signal's prior strength is ``n_p = 1 / (1 / n0 + 1 / (N_F + n_d))``: ``n0`` (5 by default)
for a family with a long history, ``n0 n_d / (n0 + n_d)`` (5/6 of a trade by default) for a family
without any, where the default is only a guess. The centre must be worth at least one trade
(``N_F + n_d >= 1``; ``default_weight`` is at least 1): a family whose decayed history is worth
less than one trade, with no default, has no prior (the posterior would be improper, its draws
degenerate), and :meth:`PayoffModel.draws` refuses it, naming the signal and the side.

Shape. ``1 / k`` is the squared coefficient of variation of the family's pooled sizes (a moment
estimate), blended with ``1 / k = 1`` (exponential sizes) worth 2 trades and bounded to
``[0.25, 100]``. Pooling signals of different mean sizes adds their spread to the variance, so
``k`` is biased low: the posterior of the mean size is wider than a within-signal estimate would
make it, the safe side for Kelly. ``k`` sets only the width, never the posterior mean.

A trade settled at exactly zero PnL is a size-0 observation on the side its ``won`` flag says (as
the :class:`~bayes_mem.live.decider.Decider` counts it): it pulls that side's mean size down.

Forgetting has the :class:`~bayes_mem.live.decider.Decider`'s semantics: each tick multiplies
every count and sum by ``discount`` (one tick per recorded trade with ``clock="outcome"``, or on
:meth:`PayoffModel.tick`), so a model and a decider with the same discount and clock fed the same
trades forget at the same rate. Posteriors decay toward the prior (the default size, weakly),
never to zero; without a default, draws are refused once the family's history has decayed below
one trade. It is O(1): sums are stored against a global scale. Raw trade counts are kept for
reporting.

Each signal's trades must be recorded once (no trade ids are kept here: record after the
decider accepted the trade). One lock guards the state; draws use the caller's seeded generator,
so the same seed and the same calls give the same draws. :meth:`PayoffModel.to_dict` /
:meth:`PayoffModel.from_dict` round-trip the state exactly as JSON-ready data.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from bayes_mem.live.decider import UnknownSignalError
from bayes_mem.live.validate import (
    check_bool,
    check_discount,
    check_int,
    check_name,
    check_positive,
    check_real,
    check_schema,
)

SNAPSHOT_SCHEMA = "bayes_mem.payoff/1"

DEFAULT_N0 = 5.0  # pseudo-trades of the family's mean size behind each signal's own
DEFAULT_WEIGHT = 1.0  # pseudo-trades the default size is worth in a family's centre
SHAPE_LOW, SHAPE_HIGH = 0.25, 100.0  # bounds of a family's Gamma shape k
_SHAPE_PSEUDO = 2.0  # trades of exponential sizes (1 / k = 1) blended into the shape estimate
#: Largest size accepted: a return of 10^8 % of the notional is a unit error (PnL passed instead
#: of PnL / notional); the bound also keeps the stored squares finite.
MAX_SIZE = 1e6

# Renormalise stored sums when 1/scale passes this (as the Decider does).
_RENORMALISE_AT = 1e64
_CACHE_MAX = 4096  # _posterior_trusted answers kept (a new volatility each bar: new fallbacks)

_SIDES = ("win", "loss")


class _Sums:
    """Decayed count, sum and sum of squares of one side's sizes, divided by the model's scale,
    and the raw count."""

    __slots__ = ("n", "raw", "s1", "s2")

    def __init__(self) -> None:
        self.n = 0.0
        self.s1 = 0.0
        self.s2 = 0.0
        self.raw = 0

    def scale(self, factor: float) -> None:
        self.n *= factor
        self.s1 *= factor
        self.s2 *= factor

    def to_list(self) -> list[float]:
        return [self.n, self.s1, self.s2]


class _Post(NamedTuple):
    """Posterior of one side's mean size ``mu = k beta / G`` with ``G ~ Gamma(alpha)``:
    ``alpha = k n_post + 1``, ``beta = strength x centre + own sum``."""

    alpha: float
    beta: float
    k: float
    n_post: float  # prior strength + own decayed count
    centre: float
    strength: float

    @property
    def mean(self) -> float:  # k beta / (alpha - 1), without the cancellation in alpha - 1
        return self.beta / self.n_post

    @property
    def sd(self) -> float | None:  # None where infinite (alpha <= 2)
        return self.mean / math.sqrt(self.alpha - 2.0) if self.alpha > 2.0 else None


class _Family:
    __slots__ = ("loss", "members", "name", "win")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: list[_Signal] = []
        self.win = _Sums()
        self.loss = _Sums()


class _Signal:
    __slots__ = ("family", "index", "loss", "name", "win")

    def __init__(self, name: str, family: _Family, index: int = -1) -> None:
        self.name = name
        self.family = family
        self.index = index  # row of the vectorised table (PayoffModel._rows)
        self.win = _Sums()
        self.loss = _Sums()


class PayoffModel:
    """Posterior mean win and loss sizes per signal, pooled within families. See the module
    docstring for the model and the units.

    Parameters
    ----------
    n0 : prior strength in pseudo-trades of a signal's mean size toward its family's (> 0).
    default_weight : pseudo-trades the default size is worth in a family's centre (>= 1).
    discount : forgetting factor per tick, in (0, 1]; 1 means never forget.
    clock : ``"outcome"`` ticks once per recorded trade; ``"manual"`` only on :meth:`tick`.

    Examples
    --------
    >>> model = PayoffModel()
    >>> model.register("mom_5d", "momentum")
    >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
    ...     model.record("mom_5d", won, size)  # |pnl| / notional of each settled trade
    >>> model.register("mom_20d", "momentum")
    >>> model.record("mom_20d", True, 0.02)
    >>> model.record("mom_20d", False, 0.03)
    >>> [round(x, 4) for x in model.mean("mom_5d")]  # E[W], E[L]: shrunk toward the family's
    [0.0326, 0.0237]
    >>> [round(x, 4) for x in model.mean("mom_20d")]
    [0.0265, 0.0267]
    >>> model.register("rev_1d", "reversal")  # a family without history: needs a default
    >>> model.mean("rev_1d", fallback_win=0.02, fallback_loss=0.02)
    (0.02, 0.02)
    """

    def __init__(
        self,
        n0: float = DEFAULT_N0,
        *,
        default_weight: float = DEFAULT_WEIGHT,
        discount: float = 1.0,
        clock: Literal["outcome", "manual"] = "outcome",
    ) -> None:
        self._n0 = check_positive(n0, "n0")
        self._default_weight = check_real(default_weight, "default_weight")
        if not self._default_weight >= 1.0:  # below, a family without history has too weak a prior
            raise ValueError(f"default_weight must be >= 1 (trades), got {default_weight!r}")
        self._discount = check_discount(discount)
        if clock not in ("outcome", "manual"):
            raise ValueError(f"clock must be 'outcome' or 'manual', got {clock!r}")
        self._clock = clock
        self._default_win: float | None = None
        self._default_loss: float | None = None
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._signals: dict[str, _Signal] = {}
        # the signals' stored sums as columns (win n, win s1, loss n, loss s1) for the
        # vectorised posterior (:meth:`_posterior_batch`), synced from the objects on read: the
        # rows changed since (or all of them after a renormalisation)
        self._rows: list[_Signal] = []
        self._table = np.zeros((4, 0))
        self._dirty: set[int] = set()
        self._scale = 1.0  # effective sum = stored sum * scale
        self._inv_scale = 1.0
        self._ticks = 0
        # _posterior_trusted's answers per (signal, fallback), valid while _version is the one
        # they were computed at: every change of a sum, the scale or the default bumps it
        self._version = 0
        self._cache: dict[tuple[str, float], tuple[tuple, tuple]] = {}
        self._cache_version = 0

    # ------------------------------------------------------------------ configuration
    @property
    def n0(self) -> float:
        """Pseudo-trades of the family's mean size behind each signal's own (> 0).

        Examples
        --------
        >>> PayoffModel().n0, PayoffModel(n0=10.0).n0
        (5.0, 10.0)
        """
        return self._n0

    @property
    def default_weight(self) -> float:
        """Pseudo-trades the default size is worth in a family's centre (>= 1).

        Examples
        --------
        >>> PayoffModel().default_weight, PayoffModel(default_weight=3.0).default_weight
        (1.0, 3.0)
        """
        return self._default_weight

    @property
    def discount(self) -> float:
        """The forgetting factor per tick, in (0, 1] (1: never forget).

        Examples
        --------
        >>> PayoffModel(discount=0.98).discount
        0.98
        """
        return self._discount

    @property
    def clock(self) -> str:
        """``"outcome"`` (a forgetting tick per recorded trade) or ``"manual"`` (on :meth:`tick`).

        Examples
        --------
        >>> PayoffModel().clock, PayoffModel(clock="manual").clock
        ('outcome', 'manual')
        """
        return self._clock

    @property
    def ticks(self) -> int:
        """Forgetting ticks so far.

        Examples
        --------
        With forgetting on and the outcome clock, each recorded trade is one tick:

        >>> model = PayoffModel(discount=0.9)
        >>> model.register("mom_5d", "momentum")
        >>> model.record("mom_5d", True, 0.03)
        >>> model.record("mom_5d", False, 0.02)
        >>> model.ticks
        2
        """
        return self._ticks

    @property
    def default(self) -> tuple[float | None, float | None]:
        """The model's default (win, loss) sizes per unit notional; None where unset.

        Examples
        --------
        Unset until :meth:`set_default`:

        >>> model = PayoffModel()
        >>> model.default
        (None, None)
        >>> model.set_default(win=0.02, loss=0.015)
        >>> model.default
        (0.02, 0.015)
        """
        with self._lock:
            return self._default_win, self._default_loss

    @property
    def signals(self) -> tuple[str, ...]:
        """Registered signal names, in registration order.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.register("fx_carry", "carry")
        >>> model.signals
        ('mom_5d', 'fx_carry')
        """
        with self._lock:
            return tuple(self._signals)

    @property
    def families(self) -> tuple[str, ...]:
        """Family names, in the order they were created.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.register("mom_20d", "momentum")
        >>> model.register("fx_carry", "carry")
        >>> model.families
        ('momentum', 'carry')
        """
        with self._lock:
            return tuple(self._families)

    def family_of(self, signal: str) -> str:
        """The family a registered signal belongs to.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.family_of("mom_5d")
        'momentum'
        """
        with self._lock:
            return self._get(signal).family.name

    def __len__(self) -> int:
        return len(self._signals)

    def __contains__(self, signal: object) -> bool:
        return isinstance(signal, str) and signal in self._signals

    def __repr__(self) -> str:
        return (
            f"PayoffModel({len(self._families)} families, {len(self._signals)} signals, "
            f"n0={self._n0}, discount={self._discount})"
        )

    def set_default(self, *, win: float | None, loss: float | None) -> None:
        """Set the model's default win and loss sizes per unit notional (> 0; None unsets), used
        where a call gives no ``fallback_win`` / ``fallback_loss``.

        Examples
        --------
        A family without history gets a prior from the default: with no trades the posterior mean is
        the default itself (2% win, 1.5% loss per unit notional):

        >>> model = PayoffModel()
        >>> model.register("rev_1d", "reversal")
        >>> model.set_default(win=0.02, loss=0.015)
        >>> [round(x, 6) for x in model.mean("rev_1d")]
        [0.02, 0.015]
        """
        win = None if win is None else check_positive(win, "default win size")
        loss = None if loss is None else check_positive(loss, "default loss size")
        with self._lock:
            self._default_win, self._default_loss = win, loss
            self._version += 1

    # ------------------------------------------------------------------ registration
    def register(self, signal: str, family: str) -> None:
        """Register a signal in a family (created on first use). Registering it again in the
        same family is a no-op; in another family it is an error.

        Examples
        --------
        The family is created on first use; another family for the same signal is an error:

        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.register("mom_5d", "momentum")  # again: a no-op
        >>> model.families, len(model)
        (('momentum',), 1)
        >>> model.register("mom_5d", "carry")
        Traceback (most recent call last):
            ...
        ValueError: signal 'mom_5d' is registered in family 'momentum', not 'carry'
        """
        check_name(signal)
        check_name(family, "family name")
        with self._lock:
            existing = self._signals.get(signal)
            if existing is not None:
                if existing.family.name != family:
                    raise ValueError(
                        f"signal {signal!r} is registered in family {existing.family.name!r}, "
                        f"not {family!r}"
                    )
                return
            self._add(signal, family)

    def _add(self, signal: str, family: str) -> _Signal:
        fam = self._families.get(family)
        if fam is None:
            fam = self._families[family] = _Family(family)
        s = _Signal(signal, fam, len(self._rows))
        fam.members.append(s)
        self._signals[signal] = s
        self._rows.append(s)
        self._dirty.add(s.index)
        self._version += 1
        return s

    # ------------------------------------------------------------------ trades
    def record(self, signal: str, won: bool, size: float) -> None:
        """Record a settled trade of ``signal``: ``won`` and its size per unit notional (>= 0:
        ``pnl / notional`` if won, ``-pnl / notional`` if lost; 0 for a scratch trade; at most
        :data:`MAX_SIZE`).

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.record("mom_5d", True, 0.03)  # won 3% of the notional
        >>> model.record("mom_5d", False, 0.02)  # lost 2% of it
        >>> model.summary("mom_5d")["loss"]["trades"]
        1
        """
        if won is not True and won is not False:
            won = check_bool(won, "won")
        if type(size) is not float or not math.isfinite(size):
            size = check_real(size, "size")
        if not 0.0 <= size <= MAX_SIZE:
            raise ValueError(
                f"size must be in [0, {MAX_SIZE:g}] (a size per unit notional, losses too: "
                f"|pnl| / notional), got {size!r}"
            )
        with self._lock:
            s = self._signals.get(signal) if isinstance(signal, str) else None
            if s is None:
                raise self._unknown(signal)
            if self._discount != 1.0 and self._clock == "outcome":
                self._advance(1)
            inv = self._inv_scale
            self._dirty.add(s.index)
            self._version += 1
            x, x2 = size * inv, size * size * inv
            for sums in (s.win, s.family.win) if won else (s.loss, s.family.loss):
                sums.n += inv
                sums.s1 += x
                sums.s2 += x2
                sums.raw += 1

    # ------------------------------------------------------------------ forgetting
    def tick(self, steps: int = 1) -> None:
        """Advance the forgetting clock: every count and sum is multiplied by
        ``discount ** steps``.

        Examples
        --------
        Three ticks at discount 0.5 weigh the history by 0.5^3 = 1/8 (raw counts are kept):

        >>> model = PayoffModel(discount=0.5, clock="manual")
        >>> model.register("mom_5d", "momentum")
        >>> model.record("mom_5d", True, 0.03)
        >>> model.tick(3)
        >>> win = model.summary("mom_5d")["win"]
        >>> model.ticks, win["effective_trades"], win["trades"]
        (3, 0.125, 1)
        """
        steps = check_int(steps, "steps", minimum=0)
        with self._lock:
            self._advance(steps)

    def forget(self, factor: float, family: str | None = None) -> None:
        """Multiply the counts and sums of all signals (or of one family's) by ``factor`` in
        (0, 1]: their posteriors move toward the prior. Raw trade counts are kept.

        Examples
        --------
        Halving the momentum family's history: the counts halve, the raw trade counts stay:

        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)
        >>> model.forget(0.5, family="momentum")
        >>> win = model.summary("mom_5d")["win"]
        >>> win["effective_trades"], win["trades"]
        (1.0, 2)
        """
        factor = check_discount(factor, "factor")
        if family is not None:
            check_name(family, "family name")
        with self._lock:
            if family is None:
                self._rescale(factor)
                return
            fam = self._families.get(family)
            if fam is None:
                raise UnknownSignalError(
                    f"unknown family {family!r}; known: {sorted(self._families)!r:.200}"
                )
            for s in fam.members:
                s.win.scale(factor)
                s.loss.scale(factor)
                self._dirty.add(s.index)
            fam.win.scale(factor)
            fam.loss.scale(factor)
            self._version += 1

    def _advance(self, steps: int) -> None:
        self._ticks += steps
        if self._discount != 1.0 and steps:
            self._rescale(self._discount**steps)

    def _rescale(self, factor: float) -> None:
        self._version += 1
        scale = self._scale * factor
        if scale < 1.0 / _RENORMALISE_AT:  # also when it underflowed to 0
            holders: list[_Signal | _Family] = [*self._signals.values(), *self._families.values()]
            for holder in holders:
                holder.win.scale(scale)
                holder.loss.scale(scale)
            self._dirty.update(range(len(self._rows)))
            self._scale = self._inv_scale = 1.0
        else:
            self._scale = scale
            self._inv_scale = 1.0 / scale

    # ------------------------------------------------------------------ posterior
    def _posterior(self, own: _Sums, fam: _Sums, default: float | None) -> tuple | None:
        """The fields of one side's :class:`_Post` as a plain tuple (lock held; a tuple is ~0.5
        us cheaper to make); None without a prior: a family history worth less than one trade
        and no default, or only zero sizes."""
        sc = self._scale
        n_f, s_f = fam.n * sc, fam.s1 * sc
        if default is None:
            weight, total = n_f, s_f
        else:
            weight = n_f + self._default_weight
            total = s_f + self._default_weight * default
        if not (weight >= 1.0 and total > 0.0):
            return None
        centre = total / weight
        strength = self._n0 * weight / (self._n0 + weight)  # 1 / (1 / n0 + 1 / weight)
        # _shape's operations, inlined (the scalar hot path; _posterior_batch calls _shape)
        if n_f > 0.0 and s_f > 0.0:
            mean = s_f / n_f
            cv2 = max(fam.s2 * sc / n_f / (mean * mean) - 1.0, 0.0)  # variance / mean^2
            inv_k = (_SHAPE_PSEUDO + n_f * cv2) / (_SHAPE_PSEUDO + n_f)
            k = 1.0 / inv_k
            if k < SHAPE_LOW:
                k = SHAPE_LOW
            elif k > SHAPE_HIGH:
                k = SHAPE_HIGH
        else:
            k = 1.0
        n_post = strength + own.n * sc
        return (k * n_post + 1.0, strength * centre + own.s1 * sc, k, n_post, centre, strength)

    def _both(self, signal: str, fallback_win: object, fallback_loss: object) -> tuple:
        """Both sides' posterior tuples (see :meth:`_posterior`), or an error naming what is
        missing (lock taken here)."""
        if fallback_win is not None:
            fallback_win = check_positive(fallback_win, "fallback_win")
        if fallback_loss is not None:
            fallback_loss = check_positive(fallback_loss, "fallback_loss")
        with self._lock:
            s = self._signals.get(signal) if isinstance(signal, str) else None
            if s is None:
                raise self._unknown(signal)
            win = self._posterior(
                s.win, s.family.win, self._default_win if fallback_win is None else fallback_win
            )
            loss = self._posterior(
                s.loss,
                s.family.loss,
                self._default_loss if fallback_loss is None else fallback_loss,
            )
        if win is None or loss is None:
            side = "win" if win is None else "loss"
            raise ValueError(
                f"signal {signal!r}: family {s.family.name!r} has less than one trade of {side} "
                f"sizes above 0 (after forgetting) and no default {side} size: pass "
                f"fallback_{side}= or call set_default"
            )
        return win, loss

    def draws(
        self,
        signal: str,
        n: int,
        rng: np.random.Generator,
        *,
        fallback_win: float | None = None,
        fallback_loss: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``n`` joint posterior draws of the signal's mean win size ``W`` and mean loss size
        ``L`` per unit notional (positive arrays of length ``n``, independent of each other).

        ``fallback_win`` / ``fallback_loss``: default sizes for this call (> 0), overriding the
        model's (:meth:`set_default`). ``rng`` is the caller's seeded generator; nothing is
        drawn when the call is refused. Two ``Generator.standard_gamma`` calls with a scalar
        shape (~3 us each for 128 draws) make nearly all of the cost.

        Examples
        --------
        Draws of the sizes are the payoff inputs of Kelly in notional:

        >>> import numpy as np
        >>> from bayes_mem.live import kelly_notional
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)  # |pnl| / notional of each settled trade
        >>> wins, losses = model.draws("mom_5d", 256, np.random.default_rng(0))
        >>> round(float(wins.mean()), 4), round(float(losses.mean()), 4)
        (0.0356, 0.0229)
        >>> round(kelly_notional(0.55, wins, losses, cap=5.0), 2)  # quarter Kelly, notional
        2.47
        """
        n = check_int(n, "n", minimum=1)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        win, loss = self._both(signal, fallback_win, fallback_loss)
        gamma = rng.standard_gamma
        w = gamma(win[0], n)  # mu = k beta / G, G ~ Gamma(alpha)
        np.divide(win[2] * win[1], w, out=w)
        lo = gamma(loss[0], n)
        np.divide(loss[2] * loss[1], lo, out=lo)
        return w, lo

    def posterior(
        self,
        signal: str,
        *,
        fallback_win: float | None = None,
        fallback_loss: float | None = None,
    ) -> tuple[tuple, tuple]:
        """Both sides' posterior as opaque parameter tuples, for :func:`draw_sizes` and
        :func:`size_nodes` (the engine takes them once per decision and shares them between the
        Thompson draw and Kelly's nodes). Refused as :meth:`draws` refuses.

        Examples
        --------
        One signal in its family: the centre is its own mean size, so the posterior means are its
        own means, (0.03 + 0.04) / 2 = 0.035 and (0.02 + 0.025) / 2 = 0.0225:

        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)
        >>> params = model.posterior("mom_5d")
        >>> [round(x, 6) for x in posterior_means(params)]
        [0.035, 0.0225]
        >>> model.register("rev_1d", "reversal")  # no history, no default: refused
        >>> model.posterior("rev_1d")
        Traceback (most recent call last):
            ...
        ValueError: signal 'rev_1d': family 'reversal' has less than one ...
        """
        return self._both(signal, fallback_win, fallback_loss)

    def _sync_table(self) -> np.ndarray:
        """The table of the signals' stored sums, synced (lock held)."""
        n = len(self._rows)
        if self._table.shape[1] < n:
            grown = np.zeros((4, max(n, 2 * self._table.shape[1])))
            grown[:, : self._table.shape[1]] = self._table
            self._table = grown
        if self._dirty:
            rows, dirty = self._rows, sorted(self._dirty)
            cols = [(s.win.n, s.win.s1, s.loss.n, s.loss.s1) for s in (rows[i] for i in dirty)]
            self._table[:, dirty] = np.array(cols, dtype=float).T
            self._dirty.clear()
        return self._table

    def _posterior_batch(
        self, signals: list[str], fallback: np.ndarray
    ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """:meth:`_posterior_trusted` of each signal with its fallback (positive, finite: the
        engine's typical moves), vectorised with the same operations in the same order (the same
        bits): per side the arrays ``(alpha, beta, k, n_post, centre, strength)``. Raises as
        :meth:`_posterior_trusted` does, for the first signal it refuses, nothing changed."""
        with self._lock:
            try:
                rows = np.fromiter((self._signals[s].index for s in signals), np.intp, len(signals))
            except (KeyError, TypeError):
                missing = next(s for s in signals if s not in self)
                raise self._unknown(missing) from None
            table = self._sync_table()
            own = np.take(table, rows, axis=1)
            fams = list(self._families.values())
            fam_pos = {id(f): i for i, f in enumerate(fams)}
            fi = np.fromiter(
                (fam_pos[id(self._rows[r].family)] for r in rows.tolist()), np.intp, len(rows)
            )
            sc, dw, n0 = self._scale, self._default_weight, self._n0
            out: list[tuple[np.ndarray, ...]] = []
            bad = None
            for side, (own_n, own_s1) in (("win", (own[0], own[1])), ("loss", (own[2], own[3]))):
                n_f = np.array([getattr(f, side).n * sc for f in fams])
                s_f = np.array([getattr(f, side).s1 * sc for f in fams])
                ks = np.array([self._shape(getattr(f, side), sc) for f in fams])
                weight = n_f[fi] + dw
                total = s_f[fi] + dw * fallback
                valid = (weight >= 1.0) & (total > 0.0)
                if not valid.all():
                    bad = int(np.argmin(valid))
                    break
                centre = total / weight
                strength = n0 * weight / (n0 + weight)
                k = ks[fi]
                n_post = strength + own_n * sc
                out.append((k * n_post + 1.0, strength * centre + own_s1 * sc, k, n_post,
                            centre, strength))  # fmt: skip
        if bad is not None:  # raises, naming what is missing
            self._both(signals[bad], float(fallback[bad]), float(fallback[bad]))
        return out[0], out[1]

    @staticmethod
    def _shape(fam: _Sums, sc: float) -> float:
        """The family's Gamma shape ``k`` of :meth:`_posterior` (the same operations)."""
        n_f, s_f = fam.n * sc, fam.s1 * sc
        if n_f > 0.0 and s_f > 0.0:
            mean = s_f / n_f
            cv2 = max(fam.s2 * sc / n_f / (mean * mean) - 1.0, 0.0)  # variance / mean^2
            inv_k = (_SHAPE_PSEUDO + n_f * cv2) / (_SHAPE_PSEUDO + n_f)
            k = 1.0 / inv_k
            if k < SHAPE_LOW:
                k = SHAPE_LOW
            elif k > SHAPE_HIGH:
                k = SHAPE_HIGH
            return k
        return 1.0

    def _posterior_trusted(self, signal: str, fallback: float) -> tuple[tuple, tuple]:
        """:meth:`posterior` with one positive, finite fallback for both sides (the engine's
        typical move), not re-checked."""
        key = (signal, fallback)
        with self._lock:
            cache = self._cache
            if self._cache_version != self._version or len(cache) >= _CACHE_MAX:
                cache.clear()
                self._cache_version = self._version
            got = cache.get(key)
            if got is not None:
                return got
            s = self._signals.get(signal)
            if s is not None:
                win = self._posterior(s.win, s.family.win, fallback)
                loss = self._posterior(s.loss, s.family.loss, fallback)
                if win is not None and loss is not None:
                    got = cache[key] = (win, loss)
                    return got
        return self._both(signal, fallback, fallback)  # raises, naming what is missing

    def mean(
        self,
        signal: str,
        *,
        fallback_win: float | None = None,
        fallback_loss: float | None = None,
    ) -> tuple[float, float]:
        """Posterior means ``(E[W], E[L])`` of the signal's mean win and loss sizes: its own
        decayed mean sizes shrunk toward its family's (see the module docstring).

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)  # |pnl| / notional of each settled trade
        >>> [round(x, 4) for x in model.mean("mom_5d")]  # own means 0.035 and 0.0225
        [0.035, 0.0225]
        """
        win, loss = self._both(signal, fallback_win, fallback_loss)
        return win[1] / win[3], loss[1] / loss[3]  # k beta / (alpha - 1) = beta / n_post

    def summary(
        self,
        signal: str,
        *,
        fallback_win: float | None = None,
        fallback_loss: float | None = None,
    ) -> dict[str, Any]:
        """What the posterior is made of, per side, JSON-ready (sizes per unit notional; None
        where undefined): raw and decayed trade counts, the signal's own decayed mean size, the
        family's pooled mean, the default used, the prior centre and strength, the shape ``k``
        and the posterior mean and sd of the mean size.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)  # |pnl| / notional of each settled trade
        >>> win = model.summary("mom_5d")["win"]
        >>> win["trades"], win["own_mean"], round(win["posterior_sd"], 4)
        (2, 0.035, 0.0146)
        """
        fallback = {
            "win": None if fallback_win is None else check_positive(fallback_win, "fallback_win"),
            "loss": None
            if fallback_loss is None
            else check_positive(fallback_loss, "fallback_loss"),
        }
        with self._lock:
            s = self._get(signal)
            sc = self._scale
            out: dict[str, Any] = {"signal": s.name, "family": s.family.name}
            for side in _SIDES:
                own: _Sums = getattr(s, side)
                fam: _Sums = getattr(s.family, side)
                default = fallback[side]
                if default is None:
                    default = self._default_win if side == "win" else self._default_loss
                fields = self._posterior(own, fam, default)
                post = None if fields is None else _Post(*fields)
                n_own, n_fam = own.n * sc, fam.n * sc
                out[side] = {
                    "trades": own.raw,
                    "effective_trades": n_own,
                    "own_mean": own.s1 * sc / n_own if n_own > 0.0 else None,
                    "family_trades": fam.raw,
                    "family_effective_trades": n_fam,
                    "family_mean": fam.s1 * sc / n_fam if n_fam > 0.0 else None,
                    "default": default,
                    "prior_centre": None if post is None else post.centre,
                    "prior_strength": None if post is None else post.strength,
                    "shape": None if post is None else post.k,
                    "posterior_mean": None if post is None else post.mean,
                    "posterior_sd": None if post is None else post.sd,
                }
        return out

    # ------------------------------------------------------------------ snapshot
    def to_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data (sums as ``[n, sum, sum of squares]`` against
        ``clock_state.scale``).

        Examples
        --------
        JSON-ready state: configuration, scale, families and signals with their sums:

        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)
        >>> state = model.to_dict()
        >>> sorted(state), state["signals"][0]["wins"], state["signals"][0]["win"]
        (['clock_state', 'config', 'families', 'schema', 'signals'], 2, [2.0, 0.07, 0.0025])
        """
        with self._lock:
            return {
                "schema": SNAPSHOT_SCHEMA,
                "config": {
                    "n0": self._n0,
                    "default_weight": self._default_weight,
                    "discount": self._discount,
                    "clock": self._clock,
                    "default_win": self._default_win,
                    "default_loss": self._default_loss,
                },
                "clock_state": {"scale": self._scale, "ticks": self._ticks},
                "families": [
                    {"name": f.name, "win": f.win.to_list(), "loss": f.loss.to_list()}
                    for f in self._families.values()
                ],
                "signals": [
                    {
                        "name": s.name,
                        "family": s.family.name,
                        "wins": s.win.raw,
                        "losses": s.loss.raw,
                        "win": s.win.to_list(),
                        "loss": s.loss.to_list(),
                    }
                    for s in self._signals.values()
                ],
            }

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text (no NaN or infinity); :meth:`from_json` reads it
        back.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)
        >>> json.loads(model.to_json())["schema"]
        'bayes_mem.payoff/1'
        """
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PayoffModel:
        """Rebuild a model exactly from :meth:`to_dict` output; malformed data raises
        ``ValueError`` naming the bad field.

        Examples
        --------
        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> model.record("mom_5d", True, 0.03)
        >>> model.record("mom_5d", False, 0.02)
        >>> restored = PayoffModel.from_dict(model.to_dict())  # or from_json(model.to_json())
        >>> restored.signals, restored.mean("mom_5d") == model.mean("mom_5d")
        (('mom_5d',), True)
        """
        try:
            return cls._from_dict(data)
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"malformed payoff-model snapshot: {exc!r}") from exc

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> PayoffModel:
        check_schema(data, SNAPSHOT_SCHEMA)
        cfg = data["config"]
        self = cls(
            cfg["n0"],
            default_weight=cfg["default_weight"],
            discount=cfg["discount"],
            clock=cfg["clock"],
        )
        self.set_default(win=cfg["default_win"], loss=cfg["default_loss"])
        for row in data["families"]:
            name = check_name(row["name"], "family name")
            if name in self._families:
                raise ValueError(f"family {name!r} appears twice in the snapshot")
            fam = self._families[name] = _Family(name)
            for side in _SIDES:
                _load_sums(getattr(fam, side), row[side], f"families[{name!r}].{side}")
        for row in data["signals"]:
            name = check_name(row["name"])
            if name in self._signals:
                raise ValueError(f"signal {name!r} appears twice in the snapshot")
            family = check_name(row["family"], "family name")
            if family not in self._families:
                raise ValueError(f"signals[{name!r}]: unknown family {family!r}")
            s = self._add(name, family)
            for side, raw in (("win", "wins"), ("loss", "losses")):
                sums = getattr(s, side)
                _load_sums(sums, row[side], f"signals[{name!r}].{side}")
                sums.raw = check_int(row[raw], f"signals[{name!r}].{raw}", minimum=0)
        for fam in self._families.values():  # family sums are the running sums of the members'
            for side in _SIDES:
                total: _Sums = getattr(fam, side)
                members = [getattr(s, side) for s in fam.members]
                total.raw = sum(m.raw for m in members)
                for i, key in enumerate(("n", "s1", "s2")):
                    want = math.fsum(getattr(m, key) for m in members)
                    got = total.to_list()[i]
                    if not math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-290):
                        raise ValueError(
                            f"families[{fam.name!r}].{side}[{i}] = {got!r} is not the sum of its "
                            f"signals' ({want!r})"
                        )
        clock = data["clock_state"]
        scale = check_real(clock["scale"], "clock_state.scale")
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"clock_state.scale must be in (0, 1], got {scale!r}")
        self._scale, self._inv_scale = scale, 1.0 / scale
        self._ticks = check_int(clock["ticks"], "clock_state.ticks", minimum=0)
        return self

    @classmethod
    def from_json(cls, text: str) -> PayoffModel:
        """Rebuild a model from :meth:`to_json` text; invalid JSON or a malformed snapshot raises
        ``ValueError``.

        Examples
        --------
        The restored model gives the same posterior:

        >>> model = PayoffModel()
        >>> model.register("mom_5d", "momentum")
        >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
        ...     model.record("mom_5d", won, size)
        >>> restored = PayoffModel.from_json(model.to_json())
        >>> restored.posterior("mom_5d") == model.posterior("mom_5d")
        True
        >>> PayoffModel.from_json("[1, 2")
        Traceback (most recent call last):
            ...
        ValueError: payoff-model snapshot is not valid JSON: Expecting ',' ...
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"payoff-model snapshot is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    # ------------------------------------------------------------------ helpers
    def _get(self, signal: str) -> _Signal:
        s = self._signals.get(signal) if isinstance(signal, str) else None
        if s is None:
            raise self._unknown(signal)
        return s

    @staticmethod
    def _unknown(signal: object) -> Exception:
        if not isinstance(signal, str):
            return TypeError(f"signal name must be a str, got {type(signal).__name__} {signal!r}")
        return UnknownSignalError(f"unknown signal {signal!r}; register it first")


def _load_sums(sums: _Sums, row: Any, what: str) -> None:
    if not isinstance(row, list) or len(row) != 3:
        raise ValueError(f"{what} must be a list [n, sum, sum of squares], got {row!r:.80}")
    values = [check_real(v, f"{what}") for v in row]
    if min(values) < 0.0:
        raise ValueError(f"{what} must be >= 0, got {row!r}")
    sums.n, sums.s1, sums.s2 = values


# ---------------------------------------------------------------------------------- nodes
#: Deterministic quadrature nodes per side behind Kelly's expected log growth (see size_nodes).
QUANTILE_NODES = 64
_Q_GRID = 1024  # rows of the quantile table: x = 1 / sqrt(alpha) on a uniform grid over [0, 1]
_q_tables: dict[int, np.ndarray] = {}
_q_lock = threading.Lock()


def _quantile_table(m: int) -> np.ndarray:
    """``log(Q_alpha(u_j) / alpha)`` for ``u_j = (j + 1/2) / m`` and ``alpha = 1 / x_i^2``,
    ``x_i = i / _Q_GRID`` (row 0: alpha = inf, where Q / alpha = 1), built once per ``m`` with
    ``scipy.special.gammaincinv`` (~30 ms for m = 64)."""
    tab = _q_tables.get(m)
    if tab is None:
        from scipy import special

        with _q_lock:
            tab = _q_tables.get(m)
            if tab is None:
                u = (np.arange(m) + 0.5) / m
                x = np.arange(1, _Q_GRID + 1) / _Q_GRID
                alpha = 1.0 / (x * x)
                q = special.gammaincinv(alpha[:, None], u[None, :])
                tab = np.vstack([np.zeros(m), np.log(q / alpha[:, None])])
                tab = np.vstack([tab, tab[-1:]])  # a spare row: x = 1 needs no bounds check
                if not np.all(np.isfinite(tab)):  # pragma: no cover
                    raise RuntimeError("gamma quantile table has non-finite entries")
                _q_tables[m] = tab
    return tab


def gamma_quantiles(alpha: float, m: int = QUANTILE_NODES) -> np.ndarray:
    """The ``m`` mid-quantiles ``Q(u_j)``, ``u_j = (j + 1/2) / m``, of ``Gamma(alpha)`` (shape
    ``alpha``, scale 1): read from a table in ``1 / sqrt(alpha)`` by linear interpolation of
    ``log(Q / alpha)`` for ``alpha >= 1`` (relative error below 1e-5, tested against scipy);
    below 1 (never a payoff posterior, whose shape is ``k n + 1``) exactly by scipy.

    Examples
    --------
    Gamma(1) is the exponential, whose quantile is ``-log(1 - u)``: at u = 1/8, 3/8, 5/8, 7/8:

    >>> import numpy as np
    >>> np.round(gamma_quantiles(1.0, 4), 4)
    array([0.1335, 0.47  , 0.9808, 2.0794])
    >>> np.round(-np.log(1.0 - (np.arange(4) + 0.5) / 4), 4)
    array([0.1335, 0.47  , 0.9808, 2.0794])
    """
    if not alpha >= 1.0:
        from scipy import special

        return special.gammaincinv(alpha, (np.arange(m) + 0.5) / m)
    tab = _quantile_table(m)
    f = _Q_GRID / math.sqrt(alpha)
    i = int(f)
    w = f - i
    out = tab[i] * (1.0 - w)
    out += w * tab[i + 1]
    np.exp(out, out=out)
    out *= alpha
    return out


@overload
def draw_sizes(
    params: tuple[tuple, tuple], n: None, rng: np.random.Generator
) -> tuple[float, float]: ...
@overload
def draw_sizes(
    params: tuple[tuple, tuple], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]: ...
def draw_sizes(
    params: tuple[tuple, tuple], n: int | None, rng: np.random.Generator
) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Joint posterior draws ``(W, L)`` from :meth:`PayoffModel.posterior` parameters: the same
    numbers :meth:`PayoffModel.draws` gives from the same generator (``n=None``: one draw of
    each as floats, the same values as ``n=1``).

    Examples
    --------
    The same numbers as :meth:`PayoffModel.draws` from the same generator:

    >>> import numpy as np
    >>> model = PayoffModel()
    >>> model.register("mom_5d", "momentum")
    >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
    ...     model.record("mom_5d", won, size)
    >>> w, loss = draw_sizes(model.posterior("mom_5d"), 3, np.random.default_rng(0))
    >>> w2, loss2 = model.draws("mom_5d", 3, np.random.default_rng(0))
    >>> bool((w == w2).all() and (loss == loss2).all()), w.shape
    (True, (3,))
    >>> one = draw_sizes(model.posterior("mom_5d"), None, np.random.default_rng(0))
    >>> w1, loss1 = draw_sizes(model.posterior("mom_5d"), 1, np.random.default_rng(0))
    >>> one == (float(w1[0]), float(loss1[0]))  # n=None: n=1's draw, as floats
    True
    """
    win, loss = params
    gamma = rng.standard_gamma
    if n is None:
        return win[2] * win[1] / gamma(win[0]), loss[2] * loss[1] / gamma(loss[0])
    w = gamma(win[0], n)
    np.divide(win[2] * win[1], w, out=w)
    lo = gamma(loss[0], n)
    np.divide(loss[2] * loss[1], lo, out=lo)
    return w, lo


def size_nodes(
    params: tuple[tuple, tuple], m: int = QUANTILE_NODES
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic nodes of the posteriors of ``W`` and ``L`` (``m`` each): ``W_j = k beta /
    Q(1 - u_j)`` with ``Q`` the ``Gamma(alpha)`` mid-quantiles (:func:`gamma_quantiles`), i.e.
    the mid-quantiles of ``W``'s own (inverse-gamma) posterior; the same for ``L``. An
    expectation of a function of ``W`` alone (or ``L`` alone) is the mean over its nodes: the
    midpoint rule in probability, with no Monte Carlo noise. Kelly's expected log growth is a
    sum of such expectations (the win rate enters linearly, W and L are independent), so these
    nodes replace joint draws (:class:`~bayes_mem.live.modules.KellyLimit`).

    Examples
    --------
    64 nodes per side; their means are the midpoint rule's E[W] and E[L], close to the exact
    posterior means 0.035 and 0.0225:

    >>> model = PayoffModel()
    >>> model.register("mom_5d", "momentum")
    >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
    ...     model.record("mom_5d", won, size)
    >>> w, loss = size_nodes(model.posterior("mom_5d"))
    >>> w.shape, round(float(w.mean()), 4), round(float(loss.mean()), 4)
    ((64,), 0.0349, 0.0224)
    """
    win, loss = params
    if not (win[0] >= 1.0 and loss[0] >= 1.0):  # never a payoff posterior (shape k n + 1)
        w = gamma_quantiles(win[0], m)[::-1]
        lo = gamma_quantiles(loss[0], m)[::-1]
        return win[2] * win[1] / w, loss[2] * loss[1] / lo
    base, step = _node_table(m)
    fw = _Q_GRID / math.sqrt(win[0])
    fl = _Q_GRID / math.sqrt(loss[0])
    iw, il = int(fw), int(fl)
    # -log(Q / alpha) interpolated, then exp: alpha / Q, times k beta / alpha
    w = step[iw] * (fw - iw)
    w += base[iw]
    np.exp(w, out=w)
    w *= win[2] * win[1] / win[0]
    lo = step[il] * (fl - il)
    lo += base[il]
    np.exp(lo, out=lo)
    lo *= loss[2] * loss[1] / loss[0]
    return w, lo


def size_nodes_rows(
    win: tuple[np.ndarray, ...], loss: tuple[np.ndarray, ...], m: int = QUANTILE_NODES
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`size_nodes` of many posteriors at once: ``win`` and ``loss`` hold the fields of
    :meth:`PayoffModel.posterior` as arrays (one entry per posterior, e.g.
    :meth:`~bayes_mem.live.engine.SignalBatch.payoff_posterior`). Returns ``(W, L, ok)``: the
    nodes as ``(n, m)`` arrays, row ``i`` equal to the bits of ``size_nodes`` of posterior ``i``
    (the same operations in the same order, per element), where ``ok[i]``; rows with a shape below
    1 (never a payoff posterior; ``size_nodes`` reads them from scipy) are left unset and
    ``ok[i]`` is False.

    Examples
    --------
    >>> model = PayoffModel()
    >>> model.register("mom_5d", "momentum")
    >>> for won, size in [(True, 0.03), (False, 0.02), (True, 0.04), (False, 0.025)]:
    ...     model.record("mom_5d", won, size)
    >>> win, loss = model.posterior("mom_5d")
    >>> rows = tuple(np.array([x]) for x in win), tuple(np.array([x]) for x in loss)
    >>> w, lo, ok = size_nodes_rows(*rows)
    >>> one = size_nodes((win, loss))
    >>> w.shape, bool(ok[0]), bool((w[0] == one[0]).all() and (lo[0] == one[1]).all())
    ((1, 64), True, True)
    """
    ok = (win[0] >= 1.0) & (loss[0] >= 1.0)
    base, step = _node_table(m)
    out = []
    for side in (win, loss):
        alpha = np.where(ok, side[0], 1.0)
        f = _Q_GRID / np.sqrt(alpha)
        i = f.astype(np.intp)  # f >= 1: truncation is int()
        # -log(Q / alpha) interpolated, then exp: alpha / Q, times k beta / alpha
        x = step[i]
        x *= (f - i)[:, None]
        x += base[i]
        np.exp(x, out=x)
        x *= (side[2] * side[1] / side[0])[:, None]
        out.append(x)
    return out[0], out[1], ok


def _node_table(m: int) -> tuple[np.ndarray, np.ndarray]:
    """``-log(Q / alpha)`` per grid row and its step to the next row (for :func:`size_nodes`)."""
    got = _node_tables.get(m)
    if got is None:
        neg = -_quantile_table(m)
        got = _node_tables[m] = (neg[:-1].copy(), np.diff(neg, axis=0))
    return got


_node_tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def posterior_means(params: tuple[tuple, tuple]) -> tuple[float, float]:
    """``(E[W], E[L])`` from :meth:`PayoffModel.posterior` parameters.

    Examples
    --------
    A signal with one 3% win: shrunk toward the family's centre (which here is that same trade),
    so E[W] = 0.03; no loss yet and no default, so the loss side needs a fallback (1%):

    >>> model = PayoffModel()
    >>> model.register("mom_5d", "momentum")
    >>> model.record("mom_5d", True, 0.03)
    >>> params = model.posterior("mom_5d", fallback_loss=0.01)
    >>> [round(x, 6) for x in posterior_means(params)]
    [0.03, 0.01]
    """
    win, loss = params
    return win[1] / win[3], loss[1] / loss[3]
