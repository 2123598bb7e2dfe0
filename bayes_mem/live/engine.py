"""The trader's engine: one object from a signal to a sized, explained, recorded decision.

:class:`TradingEngine` is the only object a trader needs. It holds the live state that the
nightly prior set seeds (the win-rate decider with the family priors applied, the payoff model,
the return model rolled forward to today, the regime detector and the correlation of the model's
normal scores) and answers these events, each thread-safe:

``bar(date, returns)``
    one day's log returns for (some of) the symbols: the return model's variance state, the
    regime detector and the correlation window move forward; with a store, the returns are stored
    first (the nightly job fits on them). Before any return model exists (no prior set, too
    little history) the day only joins the in-memory history.
``signal(signal, symbol, side, horizon, key=..., price=...)``
    a signal fired: returns a :class:`~bayes_mem.live.decision.Decision` (act, side, notional in
    currency, quantity when a price is given, the sampled win probability, every limit and
    factor, which limit bound, ``explain()``). An acted decision opens a position in the engine's
    book under ``decision.id`` (the ``key`` when given). The decision is logged (a background
    writer; the hot path never waits for SQL).
``signals(events)``
    the signals of one tick: checked together (a bad event refuses the batch), decided in order
    under one lock, each exactly as ``signal`` would decide it (to the last bit); what does not
    change within a tick (draws, posteriors, risk, budget, Kelly, regime) is computed for all
    events at once, the book-dependent portfolio-ES limit in a loop in event order.
``settle(trade_id, won=, pnl=, notional=)``
    a trade closed: the outcome is stored durably first (refused if the id was stored before),
    then counted in memory (win rate, payoff sizes per unit notional), once.
``end_of_day(date)``
    the day's risk, correlation, regime, portfolio and signal-quality metrics go to the store; the
    day's realised PnL per configuration is kept for the A/B comparison.
``refresh()``
    a newly activated prior set is picked up atomically: the new state is built aside (model
    rolled forward from the set's ``data_through`` through the stored returns, detector and
    correlation primed) and swapped in under the lock, so no decision sees half of two sets. The
    decider keeps its raw counts (nothing counted twice). A bad set keeps the old one; the reason
    is logged and kept in :attr:`TradingEngine.last_refresh_error`.
``use_prior_set(prior_set)``
    the same swap for a prior set held in memory, without a models directory (a backtest's
    nightly job, a test); ``None`` fits the documented default return model (Laplace, per
    symbol with 250+ days) on the engine's history. :meth:`refresh` is built on it.
``component_ages()``
    how old each component of the live prior set is (win rates, returns, regime: each gated and
    versioned on its own, so a component whose nightly fit failed keeps an older version):
    its source version, ``data_through`` and age in calendar days at the last bar. A component
    older than ``max_component_age_days`` is *stale*: a warning is logged (once per component
    version) and every decision names it (:attr:`Decision.stale_priors`, in its ``explain()``).

How a decision is made is an :class:`EngineConfig` of pluggable modules
(:mod:`bayes_mem.live.modules`): the decision rule, the risk budget, Kelly, the portfolio-ES
(correlation) limit and the regime cut, each ``enabled`` or not, each replaceable by a user's
implementation of its protocol. :meth:`EngineConfig.baseline` is the seed plan's trader (raw win
rate >= 0.5, fixed dollars per symbol) as one configuration of the same engine. A ``shadow``
configuration runs on the same events without trading: both decision streams are logged and
:meth:`TradingEngine.daily_pnl` feeds :class:`~bayes_mem.evaluation.abtest.StrategyABTest`.

Units: returns are daily log returns (fractions); notionals, PnL and portfolio value in the account
currency; ``horizon`` in trading days; budgets are fractions of portfolio value.

The engine module imports numpy and scipy only. :meth:`TradingEngine.open` reads a store
(:class:`bayes_mem.store.Store`, SQLAlchemy) and is the one place where the store is imported,
lazily; an engine built from parts (tests, backtests) needs no store at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from bayes_mem.live.changepoint import NormalGammaBOCPD
from bayes_mem.live.correlation import concentration, correlation_breakdown, shrunk_correlation
from bayes_mem.live.decider import (
    Decider,
    DuplicateTradeError,
    UnknownSignalError,
    check_outcome,
    trade_day,
)
from bayes_mem.live.decision import SIDES, Decision
from bayes_mem.live.engine_store import EngineStore, Frame
from bayes_mem.live.event_draws import (
    draw_batch,
    draw_p,
    draw_size_gammas,
    hyper_uniform,
    keyed_material,
    raw_material,
    seed_prefix,
    words_batch,
    words_one,
)
from bayes_mem.live.gjr_garch import fit_laplace, variance_path
from bayes_mem.live.modules import (
    BatchDecisionRule,
    BatchSizingFactor,
    BatchSizingLimit,
    CVaRBudget,
    DecisionRule,
    FixedBudget,
    KellyLimit,
    PortfolioESLimit,
    RegimeCut,
    SizingFactor,
    SizingLimit,
    SteppedSizingLimit,
    ThompsonRule,
    ThresholdRule,
)
from bayes_mem.live.payoff import MAX_SIZE, PayoffModel, draw_sizes
from bayes_mem.live.portfolio import BookState, EulerES, portfolio_risk
from bayes_mem.live.prior_set import ActivePriorSet, PriorSet, apply_family_priors
from bayes_mem.live.priors import BetaPrior
from bayes_mem.live.recording import Recorder
from bayes_mem.live.return_model import ReturnModel, Side, check_horizon, to_log_returns
from bayes_mem.live.validate import (
    NAME_LENGTH,
    check_bool,
    check_int,
    check_name,
    check_positive,
    check_real,
    check_time,
    check_trade_id,
    check_trade_times,
)

log = logging.getLogger(__name__)

CORRELATION_WINDOW = 120  # days of normal scores behind the correlation estimate
BREAKDOWN_WINDOW = 20  # the recent days the breakdown test compares with the rest
HISTORY_DAYS = 500  # days of returns kept in memory (re-priming after a refresh)
# calendar days of the decision log searched for open positions when opening on a store: the
# longest holding period the risk model prices (MAX_HORIZON, 63 trading days) and some slack
OPEN_BOOK_DAYS = 100
DEFAULT_PAYOFF_WEIGHT = 10.0  # pseudo-trades behind the volatility-based payoff default
# calendar days after which a prior-set component (its data_through) is stale: a nightly job
# that failed for a week and a half, holidays included
DEFAULT_MAX_COMPONENT_AGE_DAYS = 10
MIN_FALLBACK_DAYS = 250  # history a symbol needs for the default (Laplace) model
_BOOK_LOG_MAX = 4096  # exposure changes kept for the book states before they are rebuilt
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# PCG64's state space: advancing the engine's generator by this minus n undraws n words (a
# refused decision puts its word back without saving the generator's state, ~2 us, each time)
_PCG64_PERIOD = 2**128


class UnknownSymbolError(ValueError, KeyError):
    """A symbol the engine's return model does not cover.

    A ``ValueError`` and a ``KeyError``; its message is printed without ``KeyError``'s quotes.

    Examples
    --------
    An engine without a return model (yet) covers no symbol:

    >>> from bayes_mem.live import BetaPrior, Decider, TradingEngine
    >>> decider = Decider({"momentum": BetaPrior(1.0, 1.0)})
    >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
    >>> engine.register("spy_mom", "momentum")
    >>> try:
    ...     engine.signal("spy_mom", "SPY")
    ... except KeyError as e:
    ...     print(type(e).__name__, "-", e)
    UnknownSymbolError - unknown symbol 'SPY': not in the return model
    """

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownTradeError(ValueError, KeyError):
    """A trade id the engine has no open decision for (and no signal was named).

    A ``ValueError`` and a ``KeyError``; its message is printed without ``KeyError``'s quotes.

    Examples
    --------
    >>> from bayes_mem.live import BetaPrior, Decider, TradingEngine
    >>> decider = Decider({"momentum": BetaPrior(1.0, 1.0)})
    >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
    >>> try:
    ...     engine.settle("spy_mom@2024-01-03", won=True, pnl=120.0)
    ... except UnknownTradeError as e:
    ...     print(e)  # doctest: +NORMALIZE_WHITESPACE
    unknown trade 'spy_mom@2024-01-03': no open decision has this id (name the signal to record a
    trade the engine did not decide)
    """

    def __str__(self) -> str:
        return str(self.args[0])


# ---------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class EngineConfig:
    """Which modules make a decision (see :mod:`bayes_mem.live.modules`). ``None`` or a module
    with ``enabled=False`` switches a slot off; ``rule`` is required, and at least one of
    ``budget`` and ``kelly`` must be on (a size needs a base). ``pooled_priors``: apply the
    nightly family priors to the win rates, and the families' intra-cluster correlation to
    their outcomes (off: flat Beta(1, 1) per family, independent outcomes). ``full_bayes``
    (with ``pooled_priors``): each decision also draws one of the family's published
    hyperparameter draws (:func:`~bayes_mem.live.prior_set.apply_family_priors`).

    Examples
    --------
    The default (every module on), an ablation of it, and the seed plan's baseline trader:

    >>> live = EngineConfig()
    >>> live.rule.name, [m.name for m in live.limits_on()], live.correlation.name, live.regime.name
    ('thompson', ['cvar', 'kelly'], 'portfolio_es', 'regime')
    >>> ablation = live.without("kelly", "regime")
    >>> ablation.name, ablation.kelly, ablation.regime, [m.name for m in ablation.limits_on()]
    ('live-no_kelly_regime', None, None, ['cvar'])
    >>> base = EngineConfig.baseline(per_symbol=1000.0)
    >>> base.rule
    ThresholdRule(threshold=0.5, prior_rate=0.5, enabled=True, name='threshold')
    >>> base.budget, base.kelly, base.pooled_priors
    (FixedBudget(per_symbol=1000.0, enabled=True, name='fixed'), None, False)
    >>> EngineConfig(budget=None, kelly=None)
    Traceback (most recent call last):
    ...
    ValueError: a configuration needs a budget or a Kelly limit (a base size)
    """

    name: str = "live"
    rule: DecisionRule = field(default_factory=ThompsonRule)
    budget: SizingLimit | None = field(default_factory=CVaRBudget)
    kelly: SizingLimit | None = field(default_factory=KellyLimit)
    correlation: SizingLimit | None = field(default_factory=PortfolioESLimit)
    regime: SizingFactor | None = field(default_factory=RegimeCut)
    pooled_priors: bool = True
    full_bayes: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "config name")
        if not isinstance(self.rule, DecisionRule) or not self.rule.enabled:
            raise TypeError(f"rule must be an enabled DecisionRule, got {self.rule!r}")
        for slot, proto in (
            ("budget", SizingLimit),
            ("kelly", SizingLimit),
            ("correlation", SizingLimit),
            ("regime", SizingFactor),
        ):
            module = getattr(self, slot)
            if module is not None and not isinstance(module, proto):
                raise TypeError(
                    f"{slot} must implement {proto.__name__} (or be None), got {module!r:.80}"
                )
        if not self.limits_on():
            raise ValueError("a configuration needs a budget or a Kelly limit (a base size)")
        check_bool(self.pooled_priors, "pooled_priors")
        check_bool(self.full_bayes, "full_bayes")

    def limits_on(self) -> tuple[SizingLimit, ...]:
        """The enabled sizing limits that set a base size (budget, Kelly).

        Examples
        --------
        The default sizes from the CVaR budget and Kelly; the baseline from a fixed budget:

        >>> [m.name for m in EngineConfig().limits_on()]
        ['cvar', 'kelly']
        >>> [m.name for m in EngineConfig.baseline().limits_on()]
        ['fixed']
        """
        return tuple(m for m in (self.budget, self.kelly) if m is not None and m.enabled)

    def without(self, *slots: str, name: str | None = None) -> EngineConfig:
        """This configuration with the named slots switched off (``"pooled"`` for the family
        priors): the ablations ``ours-no_<slot>``.

        Examples
        --------
        Switching Kelly off names the ablation and leaves the budget as the only base size:

        >>> cfg = EngineConfig().without("kelly")
        >>> cfg.name, cfg.kelly, [m.name for m in cfg.limits_on()]
        ('live-no_kelly', None, ['cvar'])
        >>> EngineConfig().without("pooled").pooled_priors
        False
        """
        changes: dict[str, Any] = {}
        for slot in slots:
            if slot == "pooled":
                changes["pooled_priors"] = False
                changes["full_bayes"] = False
            elif slot in ("budget", "kelly", "correlation", "regime"):
                changes[slot] = None
            else:
                raise ValueError(
                    f"unknown slot {slot!r}; slots: budget, kelly, correlation, regime, pooled"
                )
        return replace(self, name=name or f"{self.name}-no_{'_'.join(slots)}", **changes)

    @classmethod
    def baseline(
        cls, *, per_symbol: float = 750.0, threshold: float = 0.5, name: str = "baseline"
    ) -> EngineConfig:
        """The seed plan's trader: act when the raw running win rate is >= ``threshold`` (0.5
        before any outcome), a fixed ``per_symbol`` currency split over the symbol's signals.

        Examples
        --------
        Act at a raw win rate >= 0.6 with 500 currency per symbol, nothing else on:

        >>> base = EngineConfig.baseline(per_symbol=500.0, threshold=0.6)
        >>> base.name, base.rule.threshold, base.budget.per_symbol
        ('baseline', 0.6, 500.0)
        >>> base.kelly, base.correlation, base.regime, base.pooled_priors
        (None, None, None, False)
        """
        return cls(
            name=name,
            rule=ThresholdRule(threshold),
            budget=FixedBudget(per_symbol),
            kelly=None,
            correlation=None,
            regime=None,
            pooled_priors=False,
        )


# ---------------------------------------------------------------------------------- state
@dataclass
class _Position:
    signal: str
    symbol: str
    side: str
    notional: float  # currency, >= 0
    act: bool
    opened_at: dt.datetime | None = None  # the decision's time (UTC): the trade's cluster day


class _CancelRow:
    """The decision-log row of a cancel (:meth:`TradingEngine.cancel`): the decision's id with
    ``act`` false and notional 0, so the latest row of the id says it is not open. Converted by
    the recorder's writer (``decision_row()``, as a :class:`Decision`), and much cheaper to
    convert than a decision (no explanation, a small detail)."""

    __slots__ = ("config", "decided_at", "horizon", "id", "p_win", "pos", "prior_version")

    def __init__(
        self,
        decided_at: dt.datetime,
        config: str,
        decision_id: str,
        pos: _Position,
        horizon: int,
        p_win: float,
        prior_version: int | None,
    ) -> None:
        self.decided_at = decided_at
        self.config = config
        self.id = decision_id
        self.pos = pos
        self.horizon = horizon
        self.p_win = p_win
        self.prior_version = prior_version

    def decision_row(self) -> dict[str, Any]:
        pos = self.pos
        return {
            "decided_at": self.decided_at,
            "config": self.config,
            "key": self.id,
            "signal": pos.signal,
            "symbol": pos.symbol,
            "side": pos.side,
            "horizon": self.horizon,
            "act": False,
            "notional": 0.0,
            "quantity": None,
            "p_win": self.p_win,
            "binding": None,
            "prior_version": self.prior_version,
            "detail": {"id": self.id, "reason": "cancelled", "cancelled_notional": pos.notional},
        }


class _Market:
    """What every configuration shares: the return model, the regime detector, the normal-score
    window and the caches built from them (invalidated by each bar)."""

    def __init__(
        self,
        model: ReturnModel | None,
        detector: NormalGammaBOCPD | None = None,
        scores: np.ndarray | None = None,
        prior_set: PriorSet | None = None,
    ) -> None:
        self.model = model
        self.symbols: tuple[str, ...] = () if model is None else model.symbols
        self.pos = {s: i for i, s in enumerate(self.symbols)}
        self.detector = detector
        self.prior_set = prior_set
        # the prior set's stale components, as decisions name them (set by the engine's
        # _check_ages at each bar and prior-set swap)
        self.stale: tuple[str, ...] = ()
        n = len(self.symbols)
        self.scores: deque[np.ndarray] = deque(maxlen=CORRELATION_WINDOW)
        if scores is not None:
            for row in scores[-CORRELATION_WINDOW:]:
                self.scores.append(np.asarray(row, dtype=float))
        self.p_change = np.zeros(n)
        if detector is not None and scores is not None:
            for row in scores:
                self.p_change = np.asarray(detector.update(np.asarray(row, float)).p_change)
        self._breakdown: tuple[float | None, float | None] = (None, None)  # (score, p)
        self._breakdown_due: tuple[np.ndarray, list[int]] | None = None
        self._invalidate()

    def advance(self, day: Mapping[str, float]) -> None:
        """One day's log returns (symbols of this market): the model, the normal-score window
        and the regime detector move forward."""
        assert self.model is not None  # only a market with a model is advanced
        self.model.update(day, kind="log")
        row = np.zeros(len(self.symbols))
        scores = self.model.last_normal_score()
        idx = np.fromiter((self.pos[s] for s in day), np.intp, len(day))
        row[idx] = scores[idx]
        self.scores.append(row)
        if self.detector is not None:
            self.p_change = np.asarray(self.detector.update(row).p_change)
        self._invalidate()

    def schedule_breakdown(self, scores: np.ndarray, seed: list[int]) -> None:
        """The day's correlation-breakdown test on ``scores`` (the window as of the close), run
        when first read (:attr:`breakdown_score`): same answer whenever it runs, and never run
        on a day nobody reads it (a configuration without the portfolio-ES module, no
        metrics)."""
        self._breakdown_due = (scores, seed)

    def _resolve_breakdown(self) -> tuple[float | None, float | None]:
        due, self._breakdown_due = self._breakdown_due, None
        if due is not None:
            scores, seed = due
            try:
                b = correlation_breakdown(
                    scores[-BREAKDOWN_WINDOW:], scores[:-BREAKDOWN_WINDOW], n_sim=99,
                    rng=np.random.default_rng(seed),
                )  # fmt: skip
                self._breakdown = (b.score, b.p_value)
            except ValueError as exc:  # e.g. a symbol constant over the window: keep the last
                log.warning("correlation breakdown test skipped: %s", exc)
        return self._breakdown

    @property
    def breakdown_score(self) -> float | None:
        """1 - p of the latest breakdown test (None before the first)."""
        return self._resolve_breakdown()[0]

    @property
    def breakdown_p(self) -> float | None:
        return self._resolve_breakdown()[1]

    def _invalidate(self) -> None:
        self._vol: np.ndarray | None = None
        self._corr: np.ndarray | None = None
        self._corr_ready = False
        self._euler: dict[float, EulerES | None] = {}

    def volatility(self) -> np.ndarray:
        if self._vol is None:
            assert self.model is not None  # asked for known symbols: there is a model
            self._vol = self.model.volatility()
        return self._vol

    def correlation(self) -> np.ndarray | None:
        """Shrunk normal-scores correlation of the window; None with < 2 symbols or 20 days."""
        if not self._corr_ready:
            self._corr_ready = True
            self._corr = None
            if len(self.symbols) >= 2 and len(self.scores) >= 20:
                panel = np.asarray(self.scores)
                if np.all(np.ptp(panel, axis=0) > 0):
                    self._corr, _ = shrunk_correlation(panel)
        return self._corr

    def euler(self, level: float) -> EulerES | None:
        if level not in self._euler:
            corr = self.correlation()
            self._euler[level] = (  # the shrunk correlation is valid by construction
                None
                if corr is None or self.model is None  # a correlation implies a model
                else EulerES.from_model(self.model, corr, level=level, check=False)
            )
        return self._euler[level]


class SignalContext:
    """What a module sees of one signal event and of the engine's state (read-only accessors).

    Draws. The Thompson draw of the win rate and the joint draw of the payoff sizes are one
    counter-based draw from the event's *material* (:mod:`~bayes_mem.live.event_draws`): a
    keyed event's depends only on the engine's seed, the key and the posterior (the outcomes so
    far), a keyless event's on one word of the engine's generator, drawn in event order. They
    are the same numbers whether the event is decided by :meth:`TradingEngine.signal` or within
    a batch (:meth:`TradingEngine.signals`). :attr:`rng` is a numpy generator of the event, for
    a user's module (built on first use, ~10 us).

    Examples
    --------
    A module receives one from the engine; built here by hand for a 4-day long event on SPY
    (no return model, prior Beta(12, 10)):

    >>> from bayes_mem.live import BetaPrior, Decider
    >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
    >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
    >>> engine.register("spy_mom", "momentum", "SPY")
    >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
    >>> ctx.signal, ctx.family, ctx.symbol, ctx.side, ctx.direction, ctx.horizon
    ('spy_mom', 'momentum', 'SPY', 'long', 1, 4)
    >>> round(ctx.win_probability_mean(), 4)  # 12 / (12 + 10)
    0.5455
    """

    __slots__ = (
        "_draw",
        "_draws",
        "_engine",
        "_material",
        "_mean",
        "_p",
        "_params",
        "_rng",
        "direction",
        "family",
        "horizon",
        "key",
        "price",
        "side",
        "signal",
        "symbol",
    )

    def __init__(
        self,
        engine: TradingEngine,
        signal: str,
        family: str,
        symbol: str,
        side: Side,
        horizon: int,
        key: str | None,
        price: float | None,
        material: bytes,
    ) -> None:
        self._engine = engine
        self.signal = signal
        self.family = family
        self.symbol = symbol
        self.side = side
        self.direction = 1 if side == "long" else -1
        self.horizon = horizon
        self.key = key
        self.price = price
        self._material = material
        self._rng: np.random.Generator | None = None
        self._p: float | None = None
        self._mean: float | None = None
        self._params: tuple[tuple, tuple] | None = None
        self._draw: tuple[float, float] | None = None
        # per n the payoff draws of payoff_draws (n = 0: the material's words)
        self._draws: dict[int, Any] = {}

    @property
    def rng(self) -> np.random.Generator:
        """A numpy generator of this event (for a user's module): a keyed event's is
        ``default_rng([seed, *sha256 words of the key])`` (:meth:`TradingEngine._keyed_rng`), a
        keyless event's is seeded by a hash of its material. Built on first use.

        Examples
        --------
        The event's own generator (keyless: seeded from its material); the same object on each read:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> type(ctx.rng).__name__, ctx.rng is ctx.rng
        ('Generator', True)
        """
        got = self._rng
        if got is None:
            if self.key is not None:
                got = self._engine._keyed_rng(self.key)
            else:
                digest = hashlib.blake2b(self._material, digest_size=32).digest()
                got = np.random.default_rng(np.frombuffer(digest, dtype="<u4"))
            self._rng = got
        return got

    def _words(self) -> tuple[int, ...]:
        got = self._draws.get(0)
        if got is None:
            got = self._draws[0] = words_one(self._material)
        return got

    @property
    def portfolio_value(self) -> float:
        """Capital the budgets and Kelly refer to (currency).

        Examples
        --------
        The engine's capital (currency):

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.portfolio_value
        1000000.0
        """
        return self._engine.portfolio_value

    def draw_win_probability(self) -> float:
        """One posterior draw of the signal's win probability (drawn once per decision, with
        :meth:`payoff_draw`: see the class docstring).

        Examples
        --------
        One draw from Beta(12, 10), in (0, 1) and the same on a second call within the decision:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> p = ctx.draw_win_probability()
        >>> 0.0 < p < 1.0, p == ctx.draw_win_probability()
        (True, True)
        """
        if self._p is None:
            a, b, self._mean = self._engine.decider.beta_parameters(self.signal, self._hyper)
            self._p = draw_p(self._material, a, b, self._words())
        return self._p

    def _hyper(self) -> float:
        """The uniform that picks a full-Bayes family's hyperparameter draw for this event."""
        return hyper_uniform(self._material)

    def win_probability_mean(self) -> float:
        """The posterior mean of the signal's win probability (taken once per decision).

        Examples
        --------
        The posterior mean win rate, 12 / (12 + 10) with the Beta(12, 10) prior and no outcomes:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> round(ctx.win_probability_mean(), 4)
        0.5455
        """
        got = self._mean
        if got is None:
            got = self._mean = self._engine.decider.posterior_mean(self.signal)
        return got

    def raw_counts(self) -> tuple[int, int]:
        """Settled ``(wins, trades)`` of the signal, undecayed.

        Examples
        --------
        No trade of the signal has settled yet:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.raw_counts()
        (0, 0)
        """
        return self._engine._raw.get(self.signal, (0, 0))

    def payoff_posterior(self) -> tuple[tuple, tuple]:
        """The posterior parameters of the signal's mean win and loss sizes per unit notional
        (:meth:`PayoffModel.posterior`; a family without history falls back to the mean
        absolute h-day return of the symbol), taken once per decision and shared by the
        Thompson draw and Kelly's nodes.

        Examples
        --------
        Two tuples (win sizes, loss sizes) of posterior parameters per unit notional:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> win, loss = ctx.payoff_posterior()
        >>> len(win), len(loss)
        (6, 6)
        """
        got = self._params
        if got is None:
            scale = self.typical_move()
            got = self._params = self._engine.payoff._posterior_trusted(self.signal, scale)
        return got

    def payoff_draw(self) -> tuple[float, float]:
        """One joint posterior draw ``(W, L)`` (drawn once per decision with the win rate's:
        the rule's draw; the first of :meth:`payoff_draws` when n = 1).

        Examples
        --------
        One joint draw of the mean win and loss sizes per unit notional, both positive:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> w, loss = ctx.payoff_draw()
        >>> w > 0.0 and loss > 0.0, (w, loss) == ctx.payoff_draw()
        (True, True)
        """
        if self._draw is None:
            win, loss = self.payoff_posterior()
            gw, gl = draw_size_gammas(self._material, win[0], loss[0], self._words())
            self._draw = (win[2] * win[1] / gw, loss[2] * loss[1] / gl)
        return self._draw

    def payoff_draws(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` joint posterior draws of the mean win and loss sizes per unit notional (for a
        user's module, from :attr:`rng`; cached per ``n`` within the decision). ``n = 1`` is
        :meth:`payoff_draw`.

        Examples
        --------
        Three joint draws; ``n = 1`` is :meth:`payoff_draw`:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> w, loss = ctx.payoff_draws(3)
        >>> w.shape, loss.shape, bool((w > 0).all() and (loss > 0).all())
        ((3,), (3,), True)
        >>> float(ctx.payoff_draws(1)[0][0]) == ctx.payoff_draw()[0]
        True
        """
        got = self._draws.get(n) if type(n) is int and n > 0 else None
        if got is None:
            if n == 1:
                w, loss = self.payoff_draw()
                got = (np.array([w]), np.array([loss]))
            else:
                got = draw_sizes(self.payoff_posterior(), check_int(n, "n", minimum=1), self.rng)
            self._draws[n] = got
        return got

    def typical_move(self) -> float:
        """Mean absolute log return over the holding period under the model, ``sqrt(2 / pi) x
        vol x sqrt(h)`` (normal approximation), as a fraction.

        Examples
        --------
        Without a return model the move is 1% per sqrt(day): 0.01 x sqrt(4) = 0.02 over 4 days:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> round(ctx.typical_move(), 4)
        0.02
        """
        m = self._engine._market
        if m.model is None:
            return 0.01 * math.sqrt(self.horizon)
        return _SQRT_2_OVER_PI * float(m.volatility()[m.pos[self.symbol]]) * math.sqrt(self.horizon)

    def position_risk(self, level: float) -> tuple[float, float]:
        """``(VaR, ES)`` over the holding period on this side, loss fractions of notional.

        Examples
        --------
        The 4-day (VaR, ES) of a long position at 97.5%, loss fractions of notional (ES >= VaR):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> var, es = ctx.position_risk(0.975)
        >>> 0.0 < var < es < 1.0
        True
        """
        model = self._engine._market.model
        if model is None:
            raise UnknownSymbolError(
                f"no return model: cannot size {self.symbol!r} by risk (no prior set, no history)"
            )
        return model.position_risk(self.symbol, level=level, side=self.side, horizon=self.horizon)

    def signals_on_symbol(self) -> int:
        """How many registered signals are linked to the event's symbol (at least 1).

        Examples
        --------
        How many registered signals trade the event's symbol (the fixed budget splits over them):

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.signals_on_symbol()
        1
        >>> engine.register("spy_rev", "momentum", "SPY")
        >>> ctx.signals_on_symbol()
        2
        """
        return self._engine._per_symbol.get(self.symbol, 1)

    def euler(self, level: float) -> EulerES | None:
        """The market state's Euler ES allocation at ``level`` (None before a correlation exists).

        Examples
        --------
        The Euler ES allocation of the market state; None before correlations exist (one symbol):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.euler(0.975) is None
        True
        """
        return self._engine._market.euler(level)

    def book(self) -> dict[str, float]:
        """The open book: symbol -> signed notional (currency), this configuration's own.

        Examples
        --------
        The engine's open book, symbol -> signed notional (currency); empty before any decision:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.book()
        {}
        """
        return self._engine._exposure

    def book_state(self, level: float) -> BookState | None:
        """The open book under :meth:`euler` at ``level`` as a :class:`~bayes_mem.live.
        portfolio.BookState` kept in step with the book (for ``EulerES.addition_tracked``: no
        pass over the book per decision); None when :meth:`euler` is None.

        Examples
        --------
        None while :meth:`euler` is None (one symbol, no correlation yet):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.book_state(0.975) is None
        True
        """
        return self._engine._book_state(level)

    def breakdown_score(self) -> float | None:
        """The latest correlation-breakdown score (None before any end-of-day test).

        Examples
        --------
        The latest correlation-breakdown score; None before any end-of-day test has run:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.breakdown_score() is None
        True
        """
        return self._engine._market.breakdown_score

    def p_change(self) -> float | None:
        """P(change within the detector's window) of the event's symbol (None without a detector).

        Examples
        --------
        P(change) of the event's symbol from the regime detector; None without a detector:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ctx = SignalContext(engine, "spy_mom", "momentum", "SPY", "long", 4, None, None, b"e1")
        >>> ctx.p_change() is None
        True
        """
        m = self._engine._market
        if m.detector is None:
            return None
        return float(m.p_change[m.pos[self.symbol]])


class SignalBatch:
    """What a module's batch method sees of one tick's events (:meth:`TradingEngine.signals`):
    the events as per-event lists and arrays in event order, and read-only accessors of the
    engine's state, each computed once for the batch with the same operations as the scalar
    accessor of :class:`SignalContext` (the same numbers). The book moves while the batch is
    decided: a limit that reads it does so per event, in order (``limit_steps``, through
    :meth:`book_state`).

    Examples
    --------
    A module's batch method receives one from :meth:`TradingEngine.signals`; built here by hand for
    two events on SPY (one return model draw, prior Beta(12, 10)):

    >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
    >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
    ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
    >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
    >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
    >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
    >>> engine.register("spy_mom", "momentum", "SPY")
    >>> events = [("spy_mom", "SPY", "long", 1, None, None),
    ...           ("spy_mom", "SPY", "short", 4, None, None)]
    >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
    >>> batch.n, batch.sides, batch.horizons, batch.directions, batch.families
    (2, ['long', 'short'], [1, 4], [1, -1], ['momentum', 'momentum'])
    """

    def __init__(self, engine: TradingEngine, parsed: list[_Event], materials: list[bytes]) -> None:
        self._engine = engine
        self.n = len(parsed)
        self.signals = [ev[0] for ev in parsed]
        self.symbols = [ev[1] for ev in parsed]
        self.sides = [ev[2] for ev in parsed]
        self.horizons = [ev[3] for ev in parsed]
        self.keys = [ev[4] for ev in parsed]
        self.prices = [ev[5] for ev in parsed]
        self.directions = [1 if side == "long" else -1 for side in self.sides]
        self.materials = materials
        known = engine.decider._signals
        self.families = [known[s].family.name for s in self.signals]
        m = engine._market
        self.symbol_index = np.fromiter(map(m.pos.__getitem__, self.symbols), np.intp, self.n)
        self._params: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None
        self._param_rows: list[tuple[tuple, tuple]] | None = None
        self._beta: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._draws: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._risk: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._books: dict[float, tuple[BookState, int]] = {}

    @property
    def portfolio_value(self) -> float:
        """Capital the budgets and Kelly refer to (currency).

        Examples
        --------
        The engine's capital (currency):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.portfolio_value
        1000000.0
        """
        return self._engine.portfolio_value

    def typical_move(self) -> np.ndarray:
        """:meth:`SignalContext.typical_move` of every event.

        Examples
        --------
        Per event, in the ratio sqrt(1) : sqrt(4) of the horizons:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> move = batch.typical_move()
        >>> move.shape, round(float(move[1] / move[0]), 4)
        ((2,), 2.0)
        """
        m = self._engine._market
        h = np.sqrt(np.array(self.horizons, dtype=float))
        if m.model is None:
            return 0.01 * h
        return _SQRT_2_OVER_PI * m.volatility()[self.symbol_index] * h

    def payoff_posterior(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """:meth:`SignalContext.payoff_posterior` of every event, as arrays per field.

        Examples
        --------
        Per field an array with one entry per event:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> win, loss = batch.payoff_posterior()
        >>> [a.shape for a in win] == [(2,)] * len(win)
        True
        """
        if self._params is None:
            self._params = self._engine.payoff._posterior_batch(self.signals, self.typical_move())
        return self._params

    def payoff_params(self, i: int) -> tuple[tuple, tuple]:
        """Event ``i``'s payoff posterior as :meth:`SignalContext.payoff_posterior` gives it.

        Examples
        --------
        Event 1's posterior as plain tuples, the same numbers as the batch arrays:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> win, loss = batch.payoff_params(1)
        >>> win[0] == float(batch.payoff_posterior()[0][0][1])
        True
        """
        if self._param_rows is None:
            win, loss = self.payoff_posterior()
            wins = zip(*(x.tolist() for x in win), strict=True)
            losses = zip(*(x.tolist() for x in loss), strict=True)
            self._param_rows = list(zip(wins, losses, strict=True))
        return self._param_rows[i]

    def _beta_parameters(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._beta is None:
            decider = self._engine.decider
            idx = decider.indices(self.signals)
            a, b, mean, full = decider.beta_parameters_batch(idx)
            for i in np.flatnonzero(full).tolist():  # full-Bayes families: the picked draw
                pick = functools.partial(hyper_uniform, self.materials[i])
                a[i], b[i], _ = decider.beta_parameters(self.signals[i], pick)
            self._beta = (a, b, mean)
        return self._beta

    def win_probability_mean(self) -> np.ndarray:
        """:meth:`SignalContext.win_probability_mean` of every event.

        Examples
        --------
        Both events' signal has the Beta(12, 10) prior and no outcomes: 12 / 22 each:

        >>> import numpy as np
        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> np.round(batch.win_probability_mean(), 4)
        array([0.5455, 0.5455])
        """
        return self._beta_parameters()[2]

    def thompson_draws(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p, W, L)``: every event's draw of :meth:`SignalContext.draw_win_probability` and
        :meth:`SignalContext.payoff_draw`, made at once (:func:`~bayes_mem.live.event_draws.
        draw_batch`: the same numbers).

        Examples
        --------
        One win probability and one (W, L) payoff draw per event:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> p, w, loss = batch.thompson_draws()
        >>> p.shape, bool(((0 < p) & (p < 1)).all()), bool((w > 0).all() and (loss > 0).all())
        ((2,), True, True)
        """
        if self._draws is None:
            a, b, _ = self._beta_parameters()
            win, loss = self.payoff_posterior()
            words = words_batch(self.materials)
            p, gw, gl = draw_batch(self.materials, words, a, b, win[0], loss[0])
            self._draws = (p, win[2] * win[1] / gw, loss[2] * loss[1] / gl)
        return self._draws

    def raw_counts(self) -> list[tuple[int, int]]:
        """:meth:`SignalContext.raw_counts` of every event.

        Examples
        --------
        No trade has settled, per event:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.raw_counts()
        [(0, 0), (0, 0)]
        """
        raw = self._engine._raw
        return [raw.get(s, (0, 0)) for s in self.signals]

    def position_risk(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`SignalContext.position_risk` of every event: ``(VaR, ES)`` arrays.

        Examples
        --------
        Per event (VaR, ES) loss fractions; the 4-day short's ES is larger than the 1-day long's:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> var, es = batch.position_risk(0.975)
        >>> bool((var < es).all()), bool(es[1] > es[0])
        (True, True)
        """
        got = self._risk.get(level)
        if got is None:
            model = self._engine._market.model
            if model is None:  # pragma: no cover - no symbol is known without a model
                raise UnknownSymbolError("no return model: cannot size by risk")
            var, es = np.empty(self.n), np.empty(self.n)
            groups: dict[tuple[Side, int], list[int]] = {}
            for i, key in enumerate(zip(self.sides, self.horizons, strict=True)):
                groups.setdefault(key, []).append(i)
            for (side, horizon), at in groups.items():
                v, e = model.position_risk_arrays(level, side, horizon)
                sym = self.symbol_index[at]
                var[at], es[at] = v[sym], e[sym]
            got = self._risk[level] = (var, es)
        return got

    def signals_on_symbol(self) -> list[int]:
        """:meth:`SignalContext.signals_on_symbol` of every event.

        Examples
        --------
        One registered signal trades SPY, per event:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.signals_on_symbol()
        [1, 1]
        """
        per = self._engine._per_symbol
        return [per.get(s, 1) for s in self.symbols]

    def euler(self, level: float) -> EulerES | None:
        """:meth:`SignalContext.euler`: the market state's Euler ES allocation at ``level``.

        Examples
        --------
        None before correlations exist (one symbol):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.euler(0.975) is None
        True
        """
        return self._engine._market.euler(level)

    def book_state(self, level: float) -> BookState | None:
        """:meth:`SignalContext.book_state`: the book as it is now (the batch's acted decisions
        so far included): the engine's book state, synced here with the exposure changes since
        the last read, as :meth:`TradingEngine._book_state` syncs it (fewer lookups).

        Examples
        --------
        None while :meth:`euler` is None:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.book_state(0.975) is None
        True
        """
        eng = self._engine
        log = eng._book_log
        got = self._books.get(level)
        if got is not None:
            state, seen = got
            n = len(log)
            held = eng._book_states.get(level)
            if n >= seen and held is not None and held[0] is state:
                if n > seen:
                    state.sync(eng._exposure, log[seen:n])
                    self._books[level] = eng._book_states[level] = (state, n)
                return state
        current = eng._book_state(level)
        if current is not None:
            self._books[level] = (current, len(log))
        return current

    def breakdown_score(self) -> float | None:
        """:meth:`SignalContext.breakdown_score`: the latest correlation-breakdown score.

        Examples
        --------
        None before any end-of-day breakdown test:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.breakdown_score() is None
        True
        """
        return self._engine._market.breakdown_score

    def p_change(self) -> np.ndarray | None:
        """:meth:`SignalContext.p_change` of every event (None without a detector).

        Examples
        --------
        None without a regime detector:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> batch.p_change() is None
        True
        """
        m = self._engine._market
        if m.detector is None:
            return None
        return np.asarray(m.p_change, dtype=float)[self.symbol_index]

    def context(self, i: int) -> SignalContext:
        """Event ``i``'s :class:`SignalContext` (for a module without a batch method), holding
        what the batch computed already (the same numbers).

        Examples
        --------
        Event 1 as a :class:`SignalContext`, with the batch's draws:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> events = [("spy_mom", "SPY", "long", 1, None, None),
        ...           ("spy_mom", "SPY", "short", 4, None, None)]
        >>> batch = SignalBatch(engine, events, [b"e1", b"e2"])
        >>> p, _, _ = batch.thompson_draws()
        >>> ctx = batch.context(1)
        >>> ctx.side, ctx.horizon, ctx.draw_win_probability() == float(p[1])
        ('short', 4, True)
        """
        ctx = SignalContext(
            self._engine, self.signals[i], self.families[i], self.symbols[i], self.sides[i],
            self.horizons[i], self.keys[i], self.prices[i], self.materials[i],
        )  # fmt: skip
        if self._params is not None:
            ctx._params = self.payoff_params(i)
        if self._draws is not None:
            p, w, loss = self._draws
            ctx._p, ctx._draw = float(p[i]), (float(w[i]), float(loss[i]))
            assert self._beta is not None  # thompson_draws computed it first
            ctx._mean = float(self._beta[2][i])
        return ctx


# ---------------------------------------------------------------------------------- engine
class TradingEngine:
    """See the module docstring. Build with :meth:`open` (models directory + store) or from parts.

    Parameters
    ----------
    decider : the win-rate decider (its families and signals; priors as they should be used).
    model : the live return model (``None``: no risk-based sizing possible).
    portfolio_value : capital, currency.
    config : :class:`EngineConfig` (default: every module on).
    payoff : :class:`~bayes_mem.live.payoff.PayoffModel` (default: empty, pooled per family).
    prior_set : the prior set the state came from (its version goes into each decision).
    signal_symbols : signal -> the symbol it trades (optional; known links are checked).
    scores : (T, N) normal scores of recent days to prime correlation and regime.
    detector : a :class:`~bayes_mem.live.changepoint.NormalGammaBOCPD` over ``model.symbols``.
    store : a :class:`bayes_mem.store.Store` (or any object with its methods) for outcomes,
        returns and metrics; ``None`` keeps everything in memory.
    recorder : a :class:`~bayes_mem.live.recording.Recorder` for the decision log (queued, never
        waits for a database) and the end-of-day metrics (e.g. :class:`bayes_mem.store.
        StoreRecorder`, or :class:`~bayes_mem.live.recording.MemoryRecorder`); None: not logged.
    shadow : a second :class:`EngineConfig` run on the same events without trading.
    seed : seeds the engine's generator and keyed decisions.
    history : recent days ``(date, {symbol: log return})`` (re-priming after a refresh).
    last_date : the last day seen (default: the last day of ``history``).
    models : a model registry whose active prior set :meth:`refresh` follows.
    max_component_age_days : calendar days from a prior-set component's ``data_through`` to the
        last bar beyond which it is stale (warned, and named on every decision); None: never.

    Examples
    --------
    From in-memory parts (one symbol, three posterior draws; no store, nothing logged): a bar, a
    signal sized by the CVaR budget, its settlement.

    >>> import datetime as dt
    >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
    >>> draws = GarchDraws(
    ...     mu=[3e-4, 2e-4, 4e-4], omega=[2e-6, 1.5e-6, 2.5e-6], alpha=[0.03, 0.04, 0.02],
    ...     gamma=[0.12, 0.10, 0.14], beta=[0.86, 0.87, 0.85], nu=[6.0, 7.0, 5.0],
    ...     lam=[-0.1, -0.05, -0.15],
    ... )
    >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
    >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)}, rng=0)
    >>> engine = TradingEngine(decider, model, portfolio_value=1_000_000.0, seed=0)
    >>> engine.register("spy_mom", "momentum", "SPY")
    >>> engine.bar(dt.date(2024, 1, 2), {"SPY": -0.01})  # the day's log return
    >>> d = engine.signal("spy_mom", "SPY", horizon=5, key="spy_mom@2024-01-03", price=470.0)
    >>> d.act, d.binding, round(d.notional), d.quantity
    (True, 'cvar', 111341, 236.0)
    >>> engine.settle(d.id, won=True, pnl=0.01 * d.notional)  # closed: the book is empty again
    >>> engine.book(), engine.open_positions()
    ({}, {})
    """

    def __init__(
        self,
        decider: Decider,
        model: ReturnModel | None,
        *,
        portfolio_value: float,
        config: EngineConfig | None = None,
        payoff: PayoffModel | None = None,
        prior_set: PriorSet | None = None,
        signal_symbols: Mapping[str, str] | None = None,
        scores: np.ndarray | None = None,
        detector: NormalGammaBOCPD | None = None,
        store: EngineStore | None = None,
        recorder: Recorder | None = None,
        shadow: EngineConfig | None = None,
        seed: int = 0,
        history: Sequence[tuple[dt.date, Mapping[str, float]]] = (),
        last_date: dt.date | None = None,
        models: str | Path | None = None,
        max_component_age_days: int | None = DEFAULT_MAX_COMPONENT_AGE_DAYS,
        _market: _Market | None = None,
    ) -> None:
        if not isinstance(decider, Decider):
            raise TypeError(f"decider must be a Decider, got {type(decider).__name__}")
        self.config = EngineConfig() if config is None else config
        if not isinstance(self.config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, got {type(config).__name__}")
        self.portfolio_value = check_positive(portfolio_value, "portfolio_value")
        self.seed = check_int(seed, "seed", minimum=0)
        self.decider = decider
        if payoff is None:
            payoff = _payoff_model(decider)
        self.payoff = payoff
        for s in decider.signals:
            if s not in self.payoff:
                self.payoff.register(s, decider.family_of(s))
        self.store = store
        self.recorder = recorder
        self._market = _market or _Market(model, detector, scores, prior_set)
        self._lock = threading.RLock()
        self._settle_lock = threading.Lock()
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, 1])))
        self._raw_word = self._rng.bit_generator.random_raw  # a keyless event's one word
        self._seed_prefix = seed_prefix(self.seed)  # of every keyed event's draw material
        self._ids = itertools.count()
        self._id_base = ""
        self._raw: dict[str, tuple[int, int]] = {}
        self._open: dict[str, _Position] = {}
        self._made: dict[str, Decision] = {}  # the acted decisions among them (this run's)
        self._exposure: dict[str, float] = {}
        # symbols whose exposure changed, in order, and the book states that follow it (per ES
        # level: the market's EulerES of that level, synced from the log when read)
        self._book_log: list[str] = []
        self._book_states: dict[float, tuple[BookState, int]] = {}
        self._links: dict[str, str] = {}
        self._per_symbol: dict[str, int] = {}
        for sig, sym in (signal_symbols or {}).items():
            self._link(sig, sym)
        self._day_pnl = 0.0
        self._daily: list[tuple[dt.date, float]] = []
        self._history: deque[tuple[dt.date, dict[str, float]]] = deque(
            ((d, dict(r)) for d, r in history), maxlen=HISTORY_DAYS
        )
        self.last_date = (
            last_date
            if last_date is not None
            else (self._history[-1][0] if self._history else None)
        )
        self._active = None if models is None else ActivePriorSet(models)
        if self._active is not None and prior_set is not None:
            self._active.current = prior_set  # refresh() then loads only a newer activation
        self.last_refresh_error: str | None = None
        if max_component_age_days is not None:
            check_int(max_component_age_days, "max_component_age_days", minimum=0)
        self.max_component_age_days = max_component_age_days
        self._stale_warned: set[tuple[str, int]] = set()
        self.shadow: TradingEngine | None = None
        if _market is None:  # a shadow shares its live engine's market (and its dates)
            self._check_ages()
        if shadow is not None:
            self.shadow = self._spawn(shadow)

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(
        cls,
        models: str | Path,
        store: EngineStore | str | Path,
        *,
        portfolio_value: float,
        config: EngineConfig | None = None,
        shadow: EngineConfig | None = None,
        seed: int = 0,
        log_decisions: bool = True,
        history_days: int = 250,
        open_book_days: int = OPEN_BOOK_DAYS,
        max_component_age_days: int | None = DEFAULT_MAX_COMPONENT_AGE_DAYS,
    ) -> TradingEngine:
        """Open the engine on a model registry and a store (a :class:`bayes_mem.store.Store`, an
        SQLAlchemy URL, or the ``Path`` of a data directory holding ``bayes_mem.sqlite``).

        Loads the active prior set (verified; none: flat family priors and the documented
        default return model, a Laplace fit of each stored symbol), restores the
        decider and the payoff model from every stored outcome with the family priors applied,
        rolls each symbol's published variance state forward through every return stored after
        the set's ``data_through``, and primes correlation and regime from the last
        ``history_days`` stored days. With ``log_decisions``, decisions go to the store's
        ``decisions`` table through a background writer (:meth:`close` flushes it), and the
        end-of-day metrics to its metrics tables.

        The open book (live and shadow) is restored from the decision log: every decision of the
        configuration logged in the last ``open_book_days`` calendar days (default
        ``OPEN_BOOK_DAYS``, 100: the longest horizon the risk model prices is 63 trading days)
        whose latest row for its id (the ``key`` column) acted and whose id has no stored
        outcome, on a symbol the return model covers, is an open position again (settle it by
        its id, as before the restart); :meth:`cancel` logs a row that did not act, so a
        cancelled decision stays closed. An older decision never settled is taken as abandoned.
        The latest correlation-breakdown test (``correlation_metrics``) is restored too.
        ``max_component_age_days``: see :class:`TradingEngine`.

        Examples
        --------
        Opening reads a model registry and a store (SQLAlchemy); here an empty store in a temporary
        directory, with no prior set yet (no return model until one is published):

        >>> import tempfile
        >>> from pathlib import Path
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     url = f"sqlite:///{Path(tmp) / 'bayes_mem.sqlite'}"
        ...     with TradingEngine.open(Path(tmp) / "models", url, portfolio_value=1e6) as engine:
        ...         print(engine.prior_version, engine.model, engine.symbols)
        None None ()
        """
        from bayes_mem.store import Store, StoreRecorder

        if isinstance(store, str):
            store = Store(store)
        elif isinstance(store, Path):
            if not (store / "bayes_mem.sqlite").exists():
                raise FileNotFoundError(f"no store at {store} (expected {store}/bayes_mem.sqlite)")
            store = Store(data_dir=store)
        check_int(history_days, "history_days", minimum=BREAKDOWN_WINDOW + 2)
        check_int(open_book_days, "open_book_days", minimum=0)
        active = ActivePriorSet(models)
        active.refresh()
        if active.last_error:
            log.warning("active prior set refused: %s; opening without it", active.last_error)
        prior_set = active.current
        config = EngineConfig() if config is None else config
        decider, payoff, raw = _restore_learning(store, prior_set, config)
        panel = store.returns_panel()
        model, scores, detector = _build_market_state(prior_set, panel, history_days, seed)
        # the recorder writes the decision tables itself: it needs a Store, not just the protocol
        recorder = StoreRecorder(cast(Store, store)) if log_decisions else None
        engine = cls(
            decider,
            model,
            portfolio_value=portfolio_value,
            config=config,
            payoff=payoff,
            prior_set=prior_set,
            signal_symbols=store.signal_symbols(),
            scores=scores,
            detector=detector,
            store=store,
            recorder=recorder,
            shadow=None,
            seed=seed,
            history=_panel_history(panel, HISTORY_DAYS),
            max_component_age_days=max_component_age_days,
        )
        engine._owns_recorder = True
        engine._raw = raw
        engine._active = active
        if shadow is not None:
            engine.shadow = engine._spawn(shadow, store=store)
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=open_book_days)
        for eng in engine._engines():
            eng._restore_book(store.decisions(since=since, config=eng.config.name))
        _restore_breakdown(store, engine._market)
        return engine

    def _restore_book(self, decisions: Frame) -> None:
        """Open positions from decision-log rows (arrival order; see :meth:`open`)."""
        latest: dict[str, tuple[Any, ...]] = {}
        cols = ("key", "signal", "symbol", "side", "act", "notional", "decided_at")
        for key, *row in zip(*(decisions[c] for c in cols), strict=True):
            if isinstance(key, str):
                latest[key] = tuple(row)  # a later row of the same id replaces it
        m = self._market
        for key, (signal, symbol, side, act, notional, decided_at) in latest.items():
            if not act or self.decider.seen_trade(key) or signal not in self.decider:
                continue
            if symbol not in m.pos:
                log.warning("open position %r on %r not restored: the return model does not "
                            "cover the symbol", key, symbol)  # fmt: skip
                continue
            pos = _Position(signal, symbol, side, float(notional), True,
                            check_time(decided_at, "decided_at"))  # fmt: skip
            self._open[key] = pos
            signed = pos.notional if side == "long" else -pos.notional
            self._exposure[symbol] = self._exposure.get(symbol, 0.0) + signed
        self._book_states.clear()
        for symbol, value in list(self._exposure.items()):
            if value == 0.0:  # as _remove_exposure leaves it: no entry for a flat symbol
                del self._exposure[symbol]

    def _spawn(self, config: EngineConfig, store: EngineStore | None = None) -> TradingEngine:
        """A shadow engine: same market state (not updated twice), its own decider, payoff model
        and book; records nothing durable. With a ``store`` its decider is rebuilt from the
        stored outcomes under its own configuration (the effective weights of correlated
        outcomes are its own, as when it learned them live); without one it is a copy of this
        engine's, its priors then set by its configuration."""
        ps = self._market.prior_set
        if store is not None:
            decider, payoff, raw = _restore_learning(store, ps, config)
        else:
            decider = Decider.from_json(self.decider.to_json())
            if ps is not None:
                _apply_priors(decider, ps, config)
            payoff, raw = PayoffModel.from_dict(self.payoff.to_dict()), dict(self._raw)
        shadow = TradingEngine(
            decider,
            None,
            portfolio_value=self.portfolio_value,
            config=config,
            payoff=payoff,
            store=None,
            recorder=self.recorder,
            seed=self.seed,
            _market=self._market,
        )
        shadow._raw = raw
        shadow._links = self._links
        shadow._per_symbol = self._per_symbol
        return shadow

    # ------------------------------------------------------------------ properties
    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols the live return model covers (empty without a model).

        Examples
        --------
        The symbols the return model covers (none without a model):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.symbols
        ('SPY',)
        >>> TradingEngine(decider, None, portfolio_value=1e6).symbols
        ()
        """
        return self._market.symbols

    @property
    def prior_set(self) -> PriorSet | None:
        """The live prior set (None: none loaded).

        Examples
        --------
        The prior set the state came from; None for an engine built from parts without one:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.prior_set is None
        True
        """
        return self._market.prior_set

    @property
    def prior_version(self) -> int | None:
        """The live prior set's version (None: no prior set).

        Examples
        --------
        The live prior set's version; None without a prior set:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.prior_version is None
        True
        """
        ps = self._market.prior_set
        return None if ps is None else ps.version

    @property
    def model(self) -> ReturnModel | None:
        """The live return model (None: no risk-based sizing).

        Examples
        --------
        The live return model (None: no risk-based sizing):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.model is model, engine.model.symbols
        (True, ('SPY',))
        """
        return self._market.model

    def _today(self) -> dt.date:
        return self.last_date if self.last_date is not None else dt.datetime.now(dt.UTC).date()

    def component_ages(self) -> dict[str, dict[str, Any] | None]:
        """Per component of the live prior set (``winrate``, ``returns``, ``regime``): its
        source ``version``, ``fitted_at``, ``data_through``, ``age_days`` (calendar days from
        ``data_through`` to the last bar, or today before any bar) and ``stale`` (older than
        ``max_component_age_days``). A component the set does not hold maps to None; no prior
        set: an empty dict.

        Examples
        --------
        An engine without a prior set has no components to age:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.component_ages()
        {}
        """
        ps = self._market.prior_set
        if ps is None:
            return {}
        today, limit = self._today(), self.max_component_age_days
        out: dict[str, dict[str, Any] | None] = {}
        for name, src in (ps.components or {}).items():
            if src is None:
                out[name] = None
                continue
            age = src.age_days(today)
            out[name] = {
                "version": src.version, "fitted_at": src.fitted_at,
                "data_through": src.data_through, "age_days": age,
                "stale": limit is not None and age is not None and age > limit,
            }  # fmt: skip
        return out

    def prior_status(self) -> dict[str, Any]:
        """The engine's view of its priors: the live set's ``version``, per component its age
        (:meth:`component_ages`), the ``stale`` components as decisions name them, the
        ``max_component_age_days`` and the ``last_refresh_error``.

        Examples
        --------
        The view without a prior set (the default age limit named):

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> status = engine.prior_status()
        >>> status["version"], status["components"], status["stale"], status["last_refresh_error"]
        (None, {}, [], None)
        """
        return {
            "version": self.prior_version,
            "components": self.component_ages(),
            "stale": list(self._market.stale),
            "max_component_age_days": self.max_component_age_days,
            "last_refresh_error": self.last_refresh_error,
        }

    def _check_ages(self) -> None:
        """Recompute the stale components (at each bar and prior-set swap) and warn once per
        stale component version."""
        stale = []
        for name, info in self.component_ages().items():
            if info is None or not info["stale"]:
                continue
            text = (f"{name} v{info['version']} (data through {str(info['data_through'])[:10]},"
                    f" {info['age_days']} d > {self.max_component_age_days} d)")  # fmt: skip
            stale.append(text)
            if (name, info["version"]) not in self._stale_warned:
                self._stale_warned.add((name, info["version"]))
                log.warning("prior set v%s: component %s is stale", self.prior_version, text)
        self._market.stale = tuple(stale)

    def symbol_of(self, signal: str) -> str | None:
        """The symbol a signal is linked to (None: not linked).

        Examples
        --------
        The symbol a registered signal is linked to:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.register("breadth", "momentum")
        >>> engine.symbol_of("spy_mom"), engine.symbol_of("breadth")
        ('SPY', None)
        """
        return self._links.get(signal)

    def correlation(self) -> np.ndarray | None:
        """The current shrunk normal-scores correlation over :attr:`symbols` (None before 20
        days or with one symbol).

        Examples
        --------
        One symbol: there is no correlation matrix:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.correlation() is None
        True
        """
        with self._lock:
            corr = self._market.correlation()
            return None if corr is None else corr.copy()

    def regime(self) -> dict[str, float]:
        """P(change within the detector's window) per symbol (empty without a detector).

        Examples
        --------
        No regime detector was given: empty:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.regime()
        {}
        """
        with self._lock:
            m = self._market
            if m.detector is None:
                return {}
            return dict(zip(m.symbols, m.p_change.tolist(), strict=True))

    def book(self) -> dict[str, float]:
        """Open exposure per symbol: signed notional, currency (a copy).

        Examples
        --------
        A long acted decision enters the book at its signed notional (currency):

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> d.act, engine.book() == {"SPY": d.notional}
        (True, True)
        """
        with self._lock:
            return dict(self._exposure)

    def open_positions(self) -> dict[str, dict[str, Any]]:
        """The acted open decisions by id: signal, symbol, side, notional (currency), opened_at.

        Examples
        --------
        An acted decision is an open position under its id until settled or cancelled:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> pos = engine.open_positions()["k1"]
        >>> pos["signal"], pos["symbol"], pos["side"], pos["notional"] == d.notional
        ('spy_mom', 'SPY', 'long', True)
        """
        with self._lock:
            return {k: vars(p).copy() for k, p in self._open.items() if p.act}

    # ------------------------------------------------------------------ registration
    def register(self, signal: str, family: str, symbol: str | None = None) -> None:
        """Register a signal in a family (stored first), optionally linked to the symbol it
        trades. Registering the same signal again is a no-op; another family or symbol is an
        error, nothing changed.

        Examples
        --------
        A new family is added on first use; registering again is a no-op, another family an error:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.register("gld_carry", "carry", "GLD")
        >>> engine.register("gld_carry", "carry", "GLD")
        >>> sorted(engine.decider.families), engine.symbol_of("gld_carry")
        (['carry', 'momentum'], 'GLD')
        >>> engine.register("gld_carry", "momentum")
        Traceback (most recent call last):
            ...
        ValueError: signal 'gld_carry' is registered in family 'carry', not ...
        """
        check_name(signal)
        check_name(family, "family name")
        if symbol is not None:
            check_name(symbol, "symbol")
            linked = self._links.get(signal)
            if linked is not None and linked != symbol:
                raise ValueError(f"signal {signal!r} trades {linked!r}, not {symbol!r}")
        with self._lock:
            if signal in self.decider and self.decider.family_of(signal) != family:
                raise ValueError(
                    f"signal {signal!r} is registered in family "
                    f"{self.decider.family_of(signal)!r}, not {family!r}"
                )
            if family not in self.decider.families:
                self.decider.add_family(family)
                if self.shadow is not None:
                    self.shadow.decider.add_family(family)
            if self.store is not None:
                self.store.register_signals({signal: family})
                if symbol is not None:
                    self.store.link_signals({signal: symbol})
            for eng in self._engines():
                eng.decider.register(signal, family)
                if signal not in eng.payoff:
                    eng.payoff.register(signal, family)
            if symbol is not None:
                self._link(signal, symbol)

    def _link(self, signal: str, symbol: str) -> None:
        if self._links.get(signal) == symbol:
            return
        self._links[signal] = symbol
        self._per_symbol[symbol] = self._per_symbol.get(symbol, 0) + 1

    def _engines(self) -> list[TradingEngine]:
        return [self] if self.shadow is None else [self, self.shadow]

    # ------------------------------------------------------------------ events: bar
    def bar(self, date: dt.date, returns: Mapping[str, float], *, kind: str = "log") -> None:
        """One day's returns (a mapping symbol -> return; symbols that did not trade are left
        out). ``date`` must be after every date seen. With a store, the returns are stored first;
        then the return model, regime detector and correlation window move forward.

        Examples
        --------
        A day's log return moves the model's variance state forward; dates must increase:

        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.bar(dt.date(2024, 1, 2), {"SPY": -0.01})
        >>> engine.last_date
        datetime.date(2024, 1, 2)
        >>> engine.bar(dt.date(2024, 1, 2), {"SPY": 0.002})
        Traceback (most recent call last):
            ...
        ValueError: bar for 2024-01-02 is not after the last bar ...
        """
        date = _check_date(date)
        if not isinstance(returns, Mapping) or not returns:
            raise TypeError(
                f"returns must be a non-empty mapping symbol -> return, got {returns!r:.80}"
            )
        values = []
        for s, v in returns.items():
            values.append(check_real(v, f"return of {s!r}"))
        log_r = to_log_returns(np.array(values), kind)
        day = dict(zip(returns, log_r.tolist(), strict=True))
        with self._lock:  # the market is taken under the lock: a refresh may have swapped it
            m = self._market
            if m.model is None:  # no model yet: the day only joins the history (names checked)
                for s in returns:
                    check_name(s, "symbol")
            else:
                unknown = [s for s in returns if s not in m.pos]
                if unknown:
                    raise UnknownSymbolError(
                        f"returns for unknown symbols {unknown[:5]!r}; the model covers "
                        f"{len(m.pos)} symbols"
                    )
            if self.last_date is not None and date <= self.last_date:
                raise ValueError(
                    f"bar for {date.isoformat()} is not after the last bar "
                    f"({self.last_date.isoformat()}): dates must increase"
                )
            if self.store is not None:
                _store_returns(self.store, date, day)
            if m.model is not None:
                m.advance(day)
            self._history.append((date, day))
            self.last_date = date
            if self.shadow is not None:
                self.shadow.last_date = date
            self._check_ages()

    def prepare(
        self, horizons: int | Iterable[int] = (1,), sides: str | Iterable[str] = SIDES
    ) -> dict[str, float]:
        """Compute now what the first signals after a :meth:`bar` would otherwise compute on
        their own clock: for the live configuration and the shadow, the built-in modules' risk
        state of every (side, horizon) asked for (:class:`CVaRBudget`'s per-symbol VaR and ES
        at its level; for horizons over one day the simulated paths, and the first time per
        side the common random numbers), and :class:`PortfolioESLimit`'s shrunk correlation,
        Euler ES, book state and the day's correlation-breakdown test. Call it after
        :meth:`bar` (and after :meth:`refresh` or :meth:`use_prior_set`), off the signal path:
        the next signals pay a lookup.

        The numbers are the ones the signals would compute: each piece is the same call, in the
        same state, whoever makes it first, so a decision made after ``prepare`` equals one made
        without it, to the bit, when the signals without it solve the same pairs that day. One
        caveat: each (level, side, horizon)'s VaR and ES are solved from a warm start kept from
        its last solve, and a pair is solved only when a signal of it is sized (a declined one
        sizes nothing). Preparing a pair that no sized signal asks for that day moves its warm
        start, and its later answers can differ from an engine that never prepared it within
        the solver's tolerance: the VaR's CDF within 1% (one day) or 3% (paths) of
        ``1 - level``, the ES second order (under 2e-4 relative in tests/test_engine_prepare.py).
        Prepare the pairs you trade. User modules are not prepared (they compute what they read,
        as before). Without a return model there is nothing to prepare.

        It holds the engine's lock while it runs, like a signal: a signal arriving meanwhile
        waits for it (at 500 symbols about 16 ms for the one-day pairs, 0.36 s for both sides at
        1-5 days; ``benchmarks/bench_engine.py``'s world). Returns the seconds spent per part
        (``"risk"``, ``"portfolio"``), wall clock. ``horizons`` (days, ints in 1..63, or one
        int) and ``sides`` (``"long"``, ``"short"``, or one of them) are checked before anything
        is computed; a bad one raises naming it.

        Examples
        --------
        After a bar, prepare one-day and five-day longs and shorts; a signal then reads them:

        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> engine = TradingEngine(Decider({"momentum": BetaPrior(12.0, 10.0)}), model,
        ...                        portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.bar(dt.date(2024, 1, 2), {"SPY": -0.01})
        >>> sorted(engine.prepare(horizons=(1, 5)))
        ['portfolio', 'risk']
        >>> engine.prepare(horizons=(0,))
        Traceback (most recent call last):
            ...
        ValueError: horizon (days) must be >= 1, got 0
        """
        hs = sorted(
            {check_horizon(h) for h in (horizons if isinstance(horizons, Iterable) else [horizons])}
        )
        ss: list[Side] = []
        for side in [sides] if isinstance(sides, str) else sides:
            if side not in SIDES:
                raise ValueError(f"side must be 'long' or 'short', got {side!r}")
            if side not in ss:
                ss.append(cast(Side, side))
        spent = {"risk": 0.0, "portfolio": 0.0}
        with self._lock:
            m = self._market
            model = m.model
            if model is None:
                return spent
            for eng in self._engines():
                cfg = eng.config
                t0 = time.perf_counter()
                m.volatility()  # every event's typical move (the payoff fallback)
                budget = cfg.budget
                if isinstance(budget, CVaRBudget) and budget.enabled:
                    first = model.symbols[0]
                    for side in ss:
                        for h in hs:  # the arrays (a tick's) and the per-symbol answers
                            model.position_risk(first, level=budget.level, side=side, horizon=h)
                t1 = time.perf_counter()
                limit = cfg.correlation
                if isinstance(limit, PortfolioESLimit) and limit.enabled:
                    level = limit.level
                    if m.euler(level) is not None:
                        eng._book_state(level)
                        m.breakdown_score  # noqa: B018 - resolves the day's test
                spent["risk"] += t1 - t0
                spent["portfolio"] += time.perf_counter() - t1
        return spent

    # ------------------------------------------------------------------ events: signal
    def signal(
        self,
        signal: str,
        symbol: str,
        side: str = "long",
        horizon: int = 1,
        *,
        key: str | None = None,
        price: float | None = None,
    ) -> Decision:
        """Decide and size one fired signal; see the module docstring. ``side`` is ``"long"`` or
        ``"short"``; ``horizon`` the expected holding period in days; ``key`` the event's unique
        id (the decision's draws then depend only on the seed, the key and the outcomes so far,
        and it becomes the trade id: a key already open or settled is refused); ``price`` gives
        ``quantity``. A refused signal changes nothing (an unkeyed one puts the engine's
        generator back); a decision the recorder refuses (a full queue, a closed writer) is
        cancelled and the error raised (its live row may be in the log if only the shadow's was
        refused). The decision log is written in the background: after a crash, the rows not
        yet committed are lost (at most the writer's queue and batch in flight, in practice the
        last ``flush_interval``), and :meth:`open` cannot restore their positions;
        :meth:`flush` before anything that must survive them (see tests/test_engine_crash.py).

        Examples
        --------
        A keyed long signal for 5 days at a price: sized in currency and shares:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", "long", 5, key="spy_mom@2024-01-03", price=470.0)
        >>> d.id, d.act, d.side, d.horizon, d.quantity == float(int(d.notional / 470.0))
        ('spy_mom@2024-01-03', True, 'long', 5, True)
        """
        side, horizon, key, price = _check_args(side, horizon, key, price)
        with self._lock:
            self._check_event(signal, symbol, key)
            decision = None
            material = self._material(key)  # a keyless event: one word of the generator
            try:
                decision = self._decide(signal, symbol, side, horizon, key, price, material)
                if self.shadow is not None:
                    shadow = self.shadow._decide(
                        signal, symbol, side, horizon, key, price, material, decision.id
                    )
                else:
                    shadow = None
            except BaseException:
                if decision is not None:
                    self._cancel(decision.id)
                if key is None:  # a refused decision changes nothing: the word goes back
                    cast(np.random.PCG64, self._rng.bit_generator).advance(_PCG64_PERIOD - 1)
                raise
        if shadow is not None:
            object.__setattr__(decision, "shadow", shadow)  # frozen: set once, here
        if self.recorder is not None:
            try:
                self.recorder.record_decision(decision)  # converted in the writer's thread
                if shadow is not None:
                    self.recorder.record_decision(shadow)
            except BaseException:  # not logged (a full queue, a closed writer): not made
                self._cancel(decision.id)
                raise
        return decision

    def signals(self, events: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[Decision]:
        """Decide the signals that fired in one tick: each event is a tuple ``(signal, symbol[,
        side[, horizon]])`` or a mapping of :meth:`signal`'s arguments (``signal``, ``symbol``,
        ``side``, ``horizon``, ``key``, ``price``). Returns the decisions in order.

        Each decision is the one :meth:`signal` returns when called for the events in the same
        order (tested field by field, to the last bit): the same draws for the same keys
        (keyless events take one word each of the engine's generator, in order), each acted
        decision in the book when the next is sized. What a batch adds: every event is checked
        before anything is decided (a bad event or a key given twice refuses the whole batch,
        nothing changed); the batch is decided under one acquisition of the engine's lock (no
        bar, settle or refresh in between); a module that fails midway cancels the batch's
        earlier decisions and raises; every decision of the batch has the same ``decided_at``.
        Decisions are logged after the batch.

        How (the 1,000-event tick goal): what does not change within a tick is computed for
        all events at once: the counter-based Thompson and payoff draws
        (:func:`~bayes_mem.live.event_draws.draw_batch`, equal to the scalar draws bit for
        bit), the win-rate and payoff posteriors, and every module with a batch method
        (``decide_batch``, ``limit_batch``, ``factor_batch``: see :mod:`bayes_mem.live.modules`).
        What each acted decision changes, the book, is read by the portfolio-ES limit in a
        cheap incremental loop in event order (``limit_steps``: a :class:`~bayes_mem.live.
        portfolio.BookState` moved by each acted decision). A module without these methods (a
        user's own) is called per event with a :class:`SignalContext`, in event order, as
        :meth:`signal` calls it.

        Examples
        --------
        Two events of one tick (a tuple and a mapping), decided in order:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> ds = engine.signals([
        ...     ("spy_mom", "SPY", "long", 5),
        ...     {"signal": "spy_mom", "symbol": "SPY", "side": "short", "key": "k2"},
        ... ])
        >>> [(d.side, d.horizon) for d in ds], ds[1].id
        ([('long', 5), ('short', 1)], 'k2')
        """
        if isinstance(events, Mapping | str | bytes):
            raise TypeError(f"events must be a sequence of events, got {type(events).__name__}")
        parsed = [_event(e, i) for i, e in enumerate(events)]
        keys = [ev[4] for ev in parsed if ev[4] is not None]
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"decision key {twice!r} is given twice in the batch")
        made: list[Decision] = []
        shadows: list[Decision] = []
        with self._lock:
            self._check_events(parsed)
            n_raw = len(parsed) - len(keys)
            raw = self._rng.bit_generator.random_raw(n_raw).tolist() if n_raw else []
            try:
                prefix = self._seed_prefix
                it = iter(raw)
                materials = [
                    raw_material(next(it)) if ev[4] is None else keyed_material(prefix, ev[4])
                    for ev in parsed
                ]
                now = dt.datetime.now(dt.UTC)
                self._decide_batch(parsed, materials, None, made, now)
                if self.shadow is not None:
                    self.shadow._decide_batch(parsed, materials, [d.id for d in made], shadows, now)
            except BaseException:
                for decision in made:
                    self._cancel(decision.id)
                if n_raw:  # the keyless events' words go back
                    cast(np.random.PCG64, self._rng.bit_generator).advance(_PCG64_PERIOD - n_raw)
                raise
        rec = self.recorder
        if shadows:
            for decision, shadow in zip(made, shadows, strict=True):
                object.__setattr__(decision, "shadow", shadow)  # frozen: set once, here
        if rec is not None:
            for decision in made:
                rec.record_decision(decision)
                if decision.shadow is not None:
                    rec.record_decision(decision.shadow)
        return made

    def _check_events(self, parsed: list[_Event]) -> None:
        """:meth:`_check_event` of every event of a batch (lock held), naming the first bad one
        by its index; the common case (known signal and symbol, linked as given, a fresh key)
        checked inline."""
        known = self.decider._signals
        pos = self._market.pos
        links = self._links
        opened = self._open
        settled = self.decider._trade_ids
        for i, (signal, symbol, _, _, key, _) in enumerate(parsed):
            try:
                ok = (
                    signal in known
                    and symbol in pos
                    and links.get(signal, symbol) == symbol
                    and (key is None or (key not in opened and key not in settled))
                )
            except TypeError:  # unhashable: named by the full check
                ok = False
            if not ok:
                try:
                    self._check_event(signal, symbol, key)
                except (ValueError, TypeError) as exc:
                    raise type(exc)(f"event {i}: {exc}") from None

    def _check_event(self, signal: str, symbol: str, key: str | None) -> None:
        """Everything about an event that depends on the engine's state, checked before anything
        is decided (lock held; the arguments themselves by :func:`_check_args`): the one place
        :meth:`signal` and :meth:`signals` refuse an event, so :meth:`_decide` takes it as
        valid."""
        if signal not in self.decider:
            raise UnknownSignalError(f"unknown signal {signal!r}; register it first")
        m = self._market
        try:
            known = symbol in m.pos
        except TypeError:  # unhashable: named by check_name below
            known = False
        if not known:
            check_name(symbol, "symbol")
            raise UnknownSymbolError(
                f"unknown symbol {symbol!r}: not in the return model"
                + ("" if m.prior_set is None else f" of prior set v{m.prior_set.version}")
            )
        linked = self._links.get(signal)
        if linked is not None and linked != symbol:
            raise ValueError(f"signal {signal!r} trades {linked!r}, not {symbol!r}")
        if key is not None:
            if key in self._open:
                raise ValueError(f"decision key {key!r} is already an open decision")
            if self.decider.seen_trade(key):
                raise ValueError(f"decision key {key!r} is a trade already settled")

    def _material(self, key: str | None) -> bytes:
        """The event's draw material (lock held): the seed and the key, or for a keyless event
        one word of the engine's generator (see :mod:`~bayes_mem.live.event_draws`)."""
        if key is not None:
            return keyed_material(self._seed_prefix, key)
        return raw_material(self._raw_word())

    def _decide(
        self,
        signal: str,
        symbol: str,
        side: Side,
        horizon: int,
        key: str | None,
        price: float | None,
        material: bytes,
        decision_id: str | None = None,
    ) -> Decision:
        """Decide one event checked by :func:`_check_args` and :meth:`_check_event` (lock held);
        ``material``: the event's draws (:meth:`_material`; the shadow gets the live decision's,
        so a keyless event too gives every configuration the same draws); ``decision_id``: the
        live decision's id, for the shadow's decision on the same event."""
        if decision_id is None:
            decision_id = key if key is not None else self._new_id()
        cfg = self.config
        family = self.decider._signals[signal].family.name  # known: _check_event
        ctx = SignalContext(self, signal, family, symbol, side, horizon, key, price, material)
        rule = cfg.rule
        act, p, rule_detail = rule.decide(ctx)
        detail: dict[str, Any] = {rule.name: rule_detail}
        limits: dict[str, float] = {}
        cuts: dict[str, float] = {}
        if act:
            for module in (cfg.budget, cfg.kelly, cfg.correlation):
                if module is None or not module.enabled:
                    continue
                cap, more, d = module.limit(ctx)
                name = module.name
                limits[name] = float(cap)
                if more:
                    cuts.update(more)
                detail[name] = d
            regime = cfg.regime
            if regime is not None and regime.enabled:
                f, d = regime.factor(ctx)
                name = regime.name
                cuts[name] = float(f)
                detail[name] = d
        ev = (signal, symbol, side, horizon, key, price)
        const = self._constants(dt.datetime.now(dt.UTC))
        return self._make(decision_id, ev, family, act, p, detail, limits, cuts, const)

    def _constants(self, now: dt.datetime) -> _Constants:
        """What every decision made now shares (for :meth:`_make`)."""
        m = self._market
        version = None if m.prior_set is None else m.prior_set.version
        return self.config.name, self.config.rule.name, version, m.stale, now

    def _make(
        self, decision_id: str, ev: _Event, family: str, act: bool, p: float,
        detail: dict[str, Any], limits: dict[str, float], cuts: dict[str, float],
        const: _Constants,
    ) -> Decision:  # fmt: skip
        """The decision on event ``ev`` (``(signal, symbol, side, horizon, key, price)``) from
        the rule's verdict and the modules' limits and cuts, entered in the book (lock held;
        ``const``: :meth:`_constants`): :meth:`_decide` and :meth:`_decide_batch` both end
        here."""
        signal, symbol, side, horizon, key, price = ev
        binding = None
        notional = 0.0
        reason = "" if act else "rule declined"
        if act:
            for name, cap in limits.items():  # min(limits, key=...): the first smallest
                if binding is None or cap < notional:
                    binding, notional = name, cap
            factor = 1.0
            for f in cuts.values():  # math.prod(cuts.values()), its order: the same product
                factor *= f
            notional *= factor
            if binding is None or not math.isfinite(notional):
                raise ValueError(f"no finite limit bound the position (limits: {limits})")
            if notional <= 1e-9 * self.portfolio_value:  # 0, or the rounding residue of a
                act, reason = False, f"sized to zero by {binding}"  # budget used up exactly
                notional = 0.0
        quantity = None
        if price is not None and act:
            units = notional / price
            if not math.isfinite(units):
                raise ValueError(f"price {price!r} is too small: {notional:g} / price overflows")
            quantity = float(math.floor(units))
        config_name, rule_name, version, stale, now = const
        decision = Decision._of({
            "id": decision_id,
            "config": config_name,
            "signal": signal,
            "family": family,
            "symbol": symbol,
            "side": side,
            "horizon": horizon,
            "act": act,
            "notional": notional,
            "quantity": quantity,
            "price": price,
            "p_win": float(p),
            "rule": rule_name,
            "binding": binding,
            "limits": limits,
            "factors": cuts,
            "detail": detail,
            "prior_version": version,
            "key": key,
            "reason": reason,
            "decided_at": now,
            "stale_priors": stale,
        })  # fmt: skip
        self._open[decision_id] = _Position(signal, symbol, side, notional, act, now)
        if act:
            self._made[decision_id] = decision  # what a cancel row is made from
            signed = notional if side == "long" else -notional
            self._exposure[symbol] = self._exposure.get(symbol, 0.0) + signed
            self._note_exposure(symbol)
        return decision

    def _decide_batch(
        self,
        parsed: list[_Event],
        materials: list[bytes],
        ids: list[str] | None,
        made: list[Decision],
        now: dt.datetime,
    ) -> None:
        """Decide a checked batch in order (lock held), appending each decision to ``made`` as
        it enters the book (so that a failure cancels what was made): see :meth:`signals`.
        ``ids``: the live decisions' ids, for the shadow."""
        cfg = self.config
        batch = SignalBatch(self, parsed, materials)
        n = batch.n
        rule = cfg.rule
        if _batched(rule, "decide_batch", "decide"):
            acts, ps, rule_details = cast(BatchDecisionRule, rule).decide_batch(batch)
            acts = [bool(a) for a in acts]
            ps = [float(p) for p in ps]
        else:
            acts, ps, rule_details = [], [], []
            for i in range(n):
                a, p, d = rule.decide(batch.context(i))
                acts.append(a)
                ps.append(p)
                rule_details.append(d)
        rows = np.flatnonzero(np.array(acts, dtype=bool)) if n else np.zeros(0, np.intp)
        # each enabled slot: (name, kind, what): 0 batched (caps, cuts, details by act row),
        # 1 stepped in event order (a function of the row), 2 per event (the module)
        slots: list[tuple[str, int, Any]] = []
        for module in (cfg.budget, cfg.kelly, cfg.correlation):
            if module is None or not module.enabled:
                continue
            if _batched(module, "limit_batch", "limit"):
                caps, more, details = cast(BatchSizingLimit, module).limit_batch(batch, rows)
                more = {k: np.asarray(v, dtype=float).tolist() for k, v in more.items()}
                slots.append((module.name, 0, (np.asarray(caps, dtype=float).tolist(), more,
                                               details)))  # fmt: skip
            elif _batched(module, "limit_steps", "limit"):
                slots.append((module.name, 1, cast(SteppedSizingLimit, module).limit_steps(batch)))
            else:
                slots.append((module.name, 2, module))
        regime = cfg.regime if cfg.regime is not None and cfg.regime.enabled else None
        regime_rows = None
        if regime is not None and _batched(regime, "factor_batch", "factor"):
            f, f_details = cast(BatchSizingFactor, regime).factor_batch(batch, rows)
            regime_rows = (np.asarray(f, dtype=float).tolist(), f_details)
        rule_name = rule.name
        const = self._constants(now)
        make, new_id, families = self._make, self._new_id, batch.families
        r = 0  # the act row of the event
        for i, ev in enumerate(parsed):
            decision_id = ids[i] if ids is not None else (ev[4] or new_id())
            if not acts[i]:
                made.append(make(decision_id, ev, families[i], False, ps[i],
                                 {rule_name: rule_details[i]}, {}, {}, const))  # fmt: skip
                continue
            detail: dict[str, Any] = {rule_name: rule_details[i]}
            limits: dict[str, float] = {}
            cuts: dict[str, float] = {}
            ctx = None
            for name, kind, what in slots:
                if kind == 0:
                    caps, more, details = what
                    cap, d = caps[r], details[r]
                    for k, v in more.items():
                        cuts[k] = v[r]
                else:
                    if kind == 1:
                        cap, extra, d = what(i)
                    else:
                        ctx = ctx or batch.context(i)
                        cap, extra, d = what.limit(ctx)
                    cap = float(cap)
                    if extra:
                        cuts.update(extra)
                limits[name] = cap
                detail[name] = d
            if regime is not None:
                if regime_rows is not None:
                    f, d = regime_rows[0][r], regime_rows[1][r]
                else:
                    f, d = regime.factor(ctx or batch.context(i))
                    f = float(f)
                cuts[regime.name] = f
                detail[regime.name] = d
            r += 1
            made.append(make(decision_id, ev, families[i], True, ps[i], detail, limits, cuts,
                             const))  # fmt: skip

    def _new_id(self) -> str:
        """A fresh decision id, ``d-`` and 32 hex digits like a uuid4's: 96 random bits drawn
        once per 2^32 ids (os.urandom, not the seeded generators) and a counter (a uuid4 per
        decision costs ~3 us)."""
        n = next(self._ids)
        if n & 0xFFFFFFFF == 0:
            self._id_base = f"d-{uuid.uuid4().hex[:24]}"
        return f"{self._id_base}{n & 0xFFFFFFFF:08x}"

    def _keyed_rng(self, key: str) -> np.random.Generator:
        """The generator of ``default_rng([seed, *sha256(config, key) as uint32 words])``, its
        entropy given as a uint32 array (a list of Python ints costs ~15 us more to coerce).

        Since the batched tick, a decision's own draws (the Thompson draw and the payoff draw)
        no longer come from it but from the counter-based :mod:`~bayes_mem.live.event_draws`
        (this generator costs ~10 us to build); it is :attr:`SignalContext.rng` of a keyed event,
        built only when a user's module asks for it, with its stream unchanged (pinned by
        tests/test_engine.py)."""

        # the key alone (not the configuration): every configuration draws the same random
        # numbers for one event, so a shadow, an ablation or a backtest policy is a paired
        # comparison (common random numbers), differing only by what its modules do
        digest = hashlib.sha256(f"decision\x00{key}".encode()).digest()
        words = max(1, (self.seed.bit_length() + 31) // 32)  # as numpy splits an int: LSW first
        entropy = np.frombuffer(self.seed.to_bytes(4 * words, "little") + digest, dtype="<u4")
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def cancel(self, decision_id: str) -> None:
        """Forget an acted decision that was not executed (its exposure leaves the book). With a
        recorder, the cancel is logged as a row of the decision's id (``act`` false, notional 0,
        reason ``"cancelled"``, per configuration), so :meth:`open` after a restart does not
        restore the position (the latest row of an id decides); like every decision-log row it
        is written in the background (:meth:`flush` before a restart that must see it). An
        unknown or already cancelled id is a no-op.

        Examples
        --------
        A cancelled decision leaves the book; cancelling again is a no-op:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> engine.cancel("k1")
        >>> engine.cancel("k1")
        >>> engine.book(), engine.open_positions()
        ({}, {})
        """
        rec = self.recorder
        if rec is not None:
            for row in self._cancel(decision_id, rows=True):
                rec.record_decision(row)
        else:
            self._cancel(decision_id)

    def _cancel(self, decision_id: str, *, rows: bool = False) -> list[_CancelRow]:
        """Drop the decision from every configuration's book (no log); with ``rows``, returns
        the cancel rows of the acted ones, for :meth:`cancel` to log."""
        out: list[_CancelRow] = []
        with self._lock:
            now = None
            for eng in self._engines():
                pos = eng._open.pop(decision_id, None)
                made = eng._made.pop(decision_id, None)
                if pos is not None and pos.act:
                    eng._remove_exposure(pos)
                    if rows:
                        if now is None:
                            now = dt.datetime.now(dt.UTC)
                        out.append(eng._cancel_row(decision_id, pos, made, now))
        return out

    def _cancel_row(
        self, decision_id: str, pos: _Position, d: Decision | None, now: dt.datetime
    ) -> _CancelRow:
        m = self._market
        return _CancelRow(
            now,
            self.config.name,
            decision_id,
            pos,
            1 if d is None else d.horizon,
            0.0 if d is None else d.p_win,
            (None if m.prior_set is None else m.prior_set.version)
            if d is None
            else d.prior_version,
        )

    def _remove_exposure(self, pos: _Position) -> None:
        left = self._exposure.get(pos.symbol, 0.0) - (
            pos.notional if pos.side == "long" else -pos.notional
        )
        if abs(left) <= 1e-9 * max(1.0, pos.notional):
            self._exposure.pop(pos.symbol, None)
        else:
            self._exposure[pos.symbol] = left
        self._note_exposure(pos.symbol)

    def _note_exposure(self, symbol: str) -> None:
        """Log a change of ``symbol``'s exposure for the book states (lock held); a log grown
        past its bound (e.g. a configuration that never reads a book state) is dropped with the
        states, which are rebuilt from the book when next read."""
        log = self._book_log
        if len(log) >= _BOOK_LOG_MAX:
            log.clear()
            self._book_states.clear()
        log.append(symbol)

    def _book_state(self, level: float) -> BookState | None:
        """This configuration's book under the market's EulerES at ``level``, synced with the
        exposure changes since it was last read (lock held); None without an EulerES."""
        euler = self._market.euler(level)
        if euler is None:
            return None
        log = self._book_log
        got = self._book_states.get(level)
        if got is None or got[0].euler is not euler:
            state = BookState(euler, self._exposure)
        else:
            state = got[0]
            state.sync(self._exposure, log[got[1] :])
        self._book_states[level] = (state, len(log))
        return state

    # ------------------------------------------------------------------ events: settle
    def settle(
        self,
        trade_id: str,
        *,
        won: bool,
        pnl: float,
        notional: float | None = None,
        signal: str | None = None,
        settled_at: dt.datetime | dt.date | str | None = None,
        opened_at: dt.datetime | dt.date | str | None = None,
    ) -> None:
        """Record a closed trade once: stored first (durably; a trade id recorded before, here or
        in the store, is refused with :class:`~bayes_mem.live.DuplicateTradeError`), then
        counted in memory. ``pnl`` in currency (>= 0 when won, <= 0 when lost);
        ``notional`` the position's value (default: the decision's), so the win or loss per unit
        notional is known. A trade the engine did not decide (opened before a restart, or a
        shadow trade of a declined signal) needs ``signal=``; without a ``notional`` it counts for
        the win rate but not for the payoff sizes.

        ``opened_at`` (default: the decision's time; naive: UTC) and ``settled_at`` (default:
        now) are stored with the outcome. The trade's cluster is its signal and the UTC day it
        opened (:func:`~bayes_mem.live.decider.trade_day`; the settlement day when the opening
        is unknown), the nightly win-rate fit's cluster: trades of one signal in one cluster
        count with their effective weight under the family's published ``rho`` (module
        docstring of :mod:`bayes_mem.live.decider`). A backtest that replays history gives the
        historical ``opened_at``.

        Examples
        --------
        A won trade closes the position and counts once; a second settlement of the id is refused:

        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> engine.settle("k1", won=True, pnl=0.01 * d.notional)
        >>> engine.book()
        {}
        >>> engine.settle("k1", won=True, pnl=1.0)
        Traceback (most recent call last):
            ...
        bayes_mem.live.decider.DuplicateTradeError: trade 'k1' was already settled
        """
        won, pnl, tid = check_outcome(won, pnl, trade_id)
        if tid is None:
            raise TypeError("trade_id is required")
        _check_id_length(tid, "trade_id")
        if notional is not None:
            notional = check_positive(notional, "notional")
        settled, opened = check_trade_times(settled_at, opened_at)
        with self._settle_lock:
            with self._lock:
                if self.decider.seen_trade(tid):  # first: whether or not a signal is named
                    raise DuplicateTradeError(f"trade {tid!r} was already settled")
                pos = self._open.get(tid)
                if pos is None:
                    if signal is None:
                        raise UnknownTradeError(
                            f"unknown trade {tid!r}: no open decision has this id (name the "
                            f"signal to record a trade the engine did not decide)"
                        )
                    if signal not in self.decider:
                        raise UnknownSignalError(f"unknown signal {signal!r}; register it first")
                    sig = signal
                else:
                    if signal is not None and signal != pos.signal:
                        raise ValueError(
                            f"trade {tid!r} was decided for signal {pos.signal!r}, not {signal!r}"
                        )
                    sig = pos.signal
                if notional is None and pos is not None and pos.act:
                    notional = pos.notional
                if opened is None and pos is not None and pos.opened_at is not None:
                    opened = min(pos.opened_at, settled)
                if notional is not None and not abs(pnl) / notional <= MAX_SIZE:
                    raise ValueError(
                        f"pnl={pnl!r} on notional={notional!r} is a move of more than "
                        f"{MAX_SIZE:g} per unit notional: not a trade's outcome"
                    )
            if self.store is not None:  # store first, outside the engine lock
                self.store.append_outcome(
                    tid, sig, won, pnl, settled_at=settled, opened_at=opened, notional=notional
                )
            with self._lock:
                size = None if notional is None else abs(pnl) / notional
                cluster = trade_day(settled if opened is None else opened)
                for eng in self._engines():
                    eng._apply_outcome(tid, sig, won, pnl, size, cluster, live=eng is self)

    def _apply_outcome(
        self,
        tid: str,
        signal: str,
        won: bool,
        pnl: float,
        size: float | None,
        cluster: str | None,
        *,
        live: bool,
    ) -> None:
        """Count one outcome in memory (lock held). ``size``: the win or loss per unit notional
        (None: unknown, the payoff model does not see it); ``cluster``: its cluster key (the day
        it opened). A shadow's PnL on the trade is the return per unit notional times its own
        notional."""
        self.decider.record(signal, won, pnl, tid, cluster=cluster)
        if size is not None:
            self.payoff.record(signal, won, size)
        wins, trades = self._raw.get(signal, (0, 0))
        self._raw[signal] = (wins + int(won), trades + 1)
        pos = self._open.pop(tid, None)
        self._made.pop(tid, None)
        if pos is not None and pos.act:
            self._remove_exposure(pos)
            if live:
                self._day_pnl += pnl
            elif size is not None:
                self._day_pnl += (size if won else -size) * pos.notional

    # ------------------------------------------------------------------ events: end of day
    def end_of_day(
        self, date: dt.date, *, level: float = 0.975, metrics: bool = True
    ) -> dict[str, Any]:
        """Close the day: keep the day's realised PnL per configuration, tick a manual
        forgetting clock, run the correlation-breakdown test on the day's window (the
        portfolio-ES module's cut). With ``metrics`` (default), also compute and (with a
        recorder) write the day's metrics (per-symbol VaR/ES with bands, correlation
        concentration and the breakdown test, regime p_change, portfolio ES of the open book,
        each signal's quality). Returns the metrics as a dict (``date`` and ``pnl`` only without
        ``metrics``: a backtest that reads none of them). Days close in order: closing the last
        closed day again (a retry, or trades settled after the close) replaces its metrics and
        adds the PnL realised since to that day (no second forgetting tick); an earlier day is
        refused.

        Examples
        --------
        Closing a day keeps its realised PnL per configuration (currency):

        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> engine.settle("k1", won=True, pnl=250.0)
        >>> out = engine.end_of_day(dt.date(2024, 1, 3), metrics=False)
        >>> out
        {'date': '2024-01-03', 'pnl': {'live': 250.0}}
        """
        date = _check_date(date)
        metrics = check_bool(metrics, "metrics")
        with self._lock:
            closed = self._daily[-1][0] if self._daily else None
            if closed is not None and date < closed:
                raise ValueError(
                    f"end_of_day for {date.isoformat()} is before the last closed day "
                    f"({closed.isoformat()}): days close in order"
                )
            again = date == closed
            m = self._market
            out: dict[str, Any] = {"date": date.isoformat(), "pnl": {}}
            # the test needs more days than symbols (+ 2): none for a wide universe
            n_days, n_sym = len(m.scores), len(m.symbols)
            if n_days >= max(2 * BREAKDOWN_WINDOW, n_sym + 3) and n_sym >= 2:
                m.schedule_breakdown(np.asarray(m.scores), [self.seed, date.toordinal()])
            # the per-symbol forecast only goes to the recorder: not computed without one
            record = metrics and self.recorder is not None
            forecast = m.model.risk(level) if record and m.model is not None else None
            corr = m.correlation() if metrics else None
            if corr is not None:
                conc = concentration(corr)
                out["correlation"] = {
                    "average_correlation": conc.average_correlation,
                    "concentration_score": conc.score,
                    "effective_bets": conc.effective_bets,
                    "breakdown_p": m.breakdown_p,
                    "breakdown_score": m.breakdown_score,
                }
            if metrics:
                out["portfolio"] = _portfolio_metrics(m, dict(self._exposure), corr, level)
                out["regime"] = (
                    None
                    if m.detector is None
                    else dict(zip(m.symbols, m.p_change.tolist(), strict=True))
                )
            for eng in self._engines():
                pnl = eng._day_pnl + (eng._daily.pop()[1] if again else 0.0)
                eng._daily.append((date, pnl))
                out["pnl"][eng.config.name] = pnl
                eng._day_pnl = 0.0
                if eng.decider.clock == "manual" and not again:
                    eng.decider.tick()
                    eng.payoff.tick()
            quality = [self.decider.metrics(s) for s in self.decider.signals] if record else []
        rec = self.recorder
        if record:
            assert rec is not None  # record says there is a recorder
            if forecast is not None:
                rec.log_risk(date, forecast)
            if "correlation" in out:
                rec.log_correlation(date, **out["correlation"])
            if out["regime"] is not None:
                rec.log_regime(date, out["regime"])
            rec.log_portfolio(date, **out["portfolio"])
            if quality:
                rec.log_signal_quality(
                    dt.datetime.combine(date, dt.time(23, 59), tzinfo=dt.UTC), quality
                )
        return out

    def daily_pnl(self) -> dict[str, list[tuple[dt.date, float]]]:
        """Realised PnL per closed day, per configuration (live first, then the shadow).

        Examples
        --------
        PnL per closed day for the live configuration (no shadow here):

        >>> import datetime as dt
        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> _ = engine.end_of_day(dt.date(2024, 1, 3), metrics=False)
        >>> engine.daily_pnl()
        {'live': [(datetime.date(2024, 1, 3), 0.0)]}
        """
        with self._lock:
            return {eng.config.name: list(eng._daily) for eng in self._engines()}

    # ------------------------------------------------------------------ refresh
    def refresh(self) -> bool:
        """Pick up a newly activated prior set; True when one was loaded. Never raises for a bad
        set: it is refused, the old one kept, the reason logged and kept in
        :attr:`last_refresh_error`.

        Examples
        --------
        An engine built from parts follows no model registry: nothing to pick up:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.refresh(), engine.last_refresh_error
        (False, None)
        """
        if self._active is None:
            return False
        try:
            changed = self._active.refresh()
        except Exception as exc:
            changed, self._active.last_error = False, f"{type(exc).__name__}: {exc}"
        if not changed:
            if self._active.last_error:
                self.last_refresh_error = self._active.last_error
                log.warning("prior set refresh refused: %s", self._active.last_error)
            return False
        ps = self._active.current
        assert ps is not None  # refresh() returned True: a set was loaded
        try:
            self.use_prior_set(ps)
        except Exception as exc:
            self._active.current = self._market.prior_set  # the next refresh tries it again
            self.last_refresh_error = f"prior set v{ps.version} could not be loaded: {exc}"
            log.warning("%s", self.last_refresh_error)
            return False
        self.last_refresh_error = None
        log.info("prior set v%d active in the engine", ps.version)
        return True

    def use_prior_set(self, prior_set: PriorSet | None, *, history_days: int = 250) -> None:
        """Swap in ``prior_set`` (held in memory; no models directory needed) atomically, as
        :meth:`refresh` does: the return model is built from its draws and rolled forward from its
        ``data_through`` through the engine's history (the store's returns when it has a store),
        correlation and regime are primed from the normal scores of the last ``history_days``
        days, and the family priors are applied to every configuration's decider (flat for one
        that does not pool), whose raw counts stay (nothing counted twice).

        ``None``: no published set yet; the documented default return model, a Laplace fit of
        each symbol with at least 250 days of history (no regime detector, family priors
        unchanged). Raises (the engine unchanged) when the state cannot be built: e.g. ``None``
        with too little history. (A set without symbols and no history to fall back on leaves
        no return model, as :meth:`refresh` always did: decisions then refuse every symbol.)

        Examples
        --------
        ``None`` with too little history for the default model is refused, the engine unchanged:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.use_prior_set(None)
        Traceback (most recent call last):
            ...
        ValueError: no return model: no prior set and no symbol has 250 days ...
        >>> engine.model is None
        True
        """
        if prior_set is not None and not isinstance(prior_set, PriorSet):
            raise TypeError(f"prior_set must be a PriorSet or None, got {type(prior_set).__name__}")
        history_days = check_int(history_days, "history_days", minimum=BREAKDOWN_WINDOW + 2)
        with self._lock:
            history = list(self._history)
        panel = _history_panel(history) if self.store is None else self.store.returns_panel()
        model, scores, detector = _build_market_state(prior_set, panel, history_days, self.seed)
        if model is None and prior_set is None:
            raise ValueError(
                f"no return model: no prior set and no symbol has {MIN_FALLBACK_DAYS} days of "
                f"history for the default model"
            )
        market = _Market(model, detector, scores, prior_set)
        seen = None if panel is None or len(panel) == 0 else _check_date(panel.index[-1])
        with self._lock:
            for date, day in self._history:  # bars that came in while the state was built
                if seen is None or date > seen:
                    covered = {s: r for s, r in day.items() if s in market.pos}
                    if covered and market.model is not None:
                        market.advance(covered)
            # the latest end of day's breakdown test holds until the next one (as after a restart)
            old = self._market
            market._breakdown, market._breakdown_due = old._breakdown, old._breakdown_due
            for eng in self._engines():
                if prior_set is not None:
                    _apply_priors(eng.decider, prior_set, eng.config)
                eng._market = market
            self._check_ages()

    # ------------------------------------------------------------------ lifecycle
    def flush(self, timeout: float | None = 10.0) -> None:
        """Wait until every decision logged so far is stored (raises if any was refused).

        Examples
        --------
        Without a recorder nothing is queued: returns at once:

        >>> from bayes_mem.live import BetaPrior, Decider
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, None, portfolio_value=1e6)  # no return model
        >>> engine.flush()
        >>> engine.recorder is None
        True
        """
        if self.recorder is not None:
            self.recorder.flush(timeout)

    def close(self) -> None:
        """Flush the decision log; stop the writer if :meth:`open` made it.

        Examples
        --------
        Closing flushes the decision log (here an in-memory recorder):

        >>> from bayes_mem.live.recording import MemoryRecorder
        >>> from bayes_mem.live import BetaPrior, Decider, GarchDraws, ReturnModel
        >>> draws = GarchDraws(mu=[3e-4], omega=[2e-6], alpha=[0.03], gamma=[0.12], beta=[0.86],
        ...                    nu=[6.0], lam=[-0.1])  # one posterior draw
        >>> model = ReturnModel({"SPY": draws}, {"SPY": draws.long_run_variance})
        >>> decider = Decider({"momentum": BetaPrior(12.0, 10.0)})
        >>> engine = TradingEngine(decider, model, portfolio_value=1e6)
        >>> engine.register("spy_mom", "momentum", "SPY")
        >>> engine.recorder = MemoryRecorder()
        >>> d = engine.signal("spy_mom", "SPY", key="k1")
        >>> engine.close()
        >>> len(engine.recorder.decisions)
        1
        """
        if self.recorder is not None and getattr(self, "_owns_recorder", False):
            self.recorder.close()
            self._owns_recorder = False
        elif self.recorder is not None:
            self.recorder.flush()

    def __enter__(self) -> TradingEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TradingEngine({self.config.name!r}, {len(self.decider)} signals, "
            f"{len(self.symbols)} symbols, prior set "
            f"{'none' if self.prior_version is None else f'v{self.prior_version}'})"
        )


# ---------------------------------------------------------------------------------- helpers
def _batched(module: object, method: str, scalar: str) -> bool:
    """Whether ``module`` has the batch ``method`` and it is its class's own at least as much
    as the ``scalar`` method it stands for: a subclass that overrides ``limit`` (say) but
    inherits its parent's ``limit_batch`` is called per event, its own way."""
    mro = type(module).__mro__
    owner = next((c for c in mro if method in vars(c)), None)
    if owner is None:
        return hasattr(module, method)  # set on the instance
    defined = next((c for c in mro if scalar in vars(c)), None)
    return defined is None or defined is owner or not issubclass(defined, owner)


def _check_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp, numpy datetime64 ...
        out = value.date()
        if isinstance(out, dt.date):
            return out
    raise TypeError(f"date must be a datetime.date, got {type(value).__name__} {value!r:.60}")


def _check_id_length(value: str, what: str) -> str:
    """A decision key or trade id the store and the decision log can hold."""
    if len(value) > NAME_LENGTH:
        raise ValueError(
            f"{what} must be at most {NAME_LENGTH} characters, got {len(value)}: {value[:40]!r}..."
        )
    return value


def _restore_breakdown(store: EngineStore, market: _Market) -> None:
    """The latest stored correlation-breakdown test (what the last end of day computed)."""
    frame = store.table("correlation_metrics")
    if len(frame):
        row = frame.sort_values("date").iloc[-1]
        score, p = row["breakdown_score"], row["breakdown_p"]
        market._breakdown = (
            None if score is None or score != score else float(score),
            None if p is None or p != p else float(p),
        )


_EVENT_FIELDS = ("signal", "symbol", "side", "horizon", "key", "price")
_EVENT_FIELD_SET = frozenset(_EVENT_FIELDS)
# an event as _event gives it: (signal, symbol, side, horizon, key, price); the names are
# checked against the engine afterwards (_check_events)
_Event = tuple[Any, Any, Side, int, str | None, float | None]
# what every decision made at one time shares (TradingEngine._constants): the configuration's
# name, the rule's name, the prior set's version, the stale components and the time
_Constants = tuple[str, str, int | None, tuple[str, ...], dt.datetime]


def _event(event: object, i: int) -> _Event:
    """One event of :meth:`TradingEngine.signals` as ``(signal, symbol, side, horizon, key,
    price)``, with :meth:`TradingEngine.signal`'s argument checks."""
    get: Callable[..., Any]  # a dict's get, then a mapping's
    if type(event) is dict and event.keys() <= _EVENT_FIELD_SET:
        # the usual event: a plain dict of valid arguments, checked inline as _check_args
        # and check_trade_id's fast path check them (anything else takes the full checks)
        get = event.get
        side, horizon, key = get("side", "long"), get("horizon", 1), get("key")
        if (
            "signal" in event
            and "symbol" in event
            and (side == "long" or side == "short")
            and type(horizon) is int
            and horizon >= 1
            and get("price") is None
            and (
                key is None
                or (
                    type(key) is str
                    and key.isascii()
                    and key.isprintable()
                    and key.strip() == key
                    and 0 < len(key) <= NAME_LENGTH
                )
            )
        ):
            return event["signal"], event["symbol"], side, horizon, key, None
    if isinstance(event, Mapping):
        unknown = set(event) - set(_EVENT_FIELDS)
        if unknown or "signal" not in event or "symbol" not in event:
            raise TypeError(
                f"event {i}: a mapping needs 'signal' and 'symbol' and may have "
                f"{', '.join(_EVENT_FIELDS[2:])}; got keys {sorted(map(str, event))}"
            )
        get = event.get
        args = (get("signal"), get("symbol"), get("side", "long"), get("horizon", 1),
                get("key"), get("price"))  # fmt: skip
    elif isinstance(event, tuple | list) and 2 <= len(event) <= 4:
        args = (*event, *("long", 1)[len(event) - 2 :], None, None)
    else:
        raise TypeError(
            f"event {i}: expected (signal, symbol[, side[, horizon]]) or a mapping, got "
            f"{event!r:.80}"
        )
    signal, symbol, side, horizon, key, price = args
    try:
        side, horizon, key, price = _check_args(side, horizon, key, price)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"event {i}: {exc}") from None
    return signal, symbol, side, horizon, key, price


def _check_args(
    side: object, horizon: object, key: object, price: object
) -> tuple[Side, int, str | None, float | None]:
    """The arguments of one signal event that do not depend on the engine's state (for
    :meth:`TradingEngine.signal` and each event of :meth:`TradingEngine.signals`)."""
    if side not in SIDES:
        raise ValueError(f"side must be 'long' or 'short', got {side!r}")
    if type(horizon) is not int or horizon < 1:  # the usual case needs no conversion
        horizon = check_int(horizon, "horizon", minimum=1)
    if price is not None:
        price = check_positive(price, "price")
    if key is not None:
        checked = check_trade_id(key, "key")
        assert checked is not None  # key is not None
        key = _check_id_length(checked, "key")
    return side, horizon, key, price


def _payoff_model(decider: Decider) -> PayoffModel:
    """The engine's payoff model: forgets like the decider; a family without history starts
    from the symbol's typical move over the holding period (the return model's volatility: well
    known, so worth ``DEFAULT_PAYOFF_WEIGHT`` trades), pooled as usual once it has trades."""
    return PayoffModel(
        default_weight=DEFAULT_PAYOFF_WEIGHT, discount=decider.discount, clock=decider.clock
    )


def _apply_priors(decider: Decider, prior_set: PriorSet, config: EngineConfig) -> None:
    """The set's family priors (moment-matched point priors), intra-cluster correlations and,
    with ``full_bayes``, hyperparameter draws when ``config`` pools; otherwise flat priors and
    independent outcomes. On the raw counts: nothing is counted twice."""
    if config.pooled_priors:
        apply_family_priors(prior_set, decider, full_bayes=config.full_bayes)
        return
    known = decider.families
    for name in prior_set.families:
        if name in known:
            decider.set_family_prior(name, BetaPrior(1.0, 1.0), rho=0.0)
            decider.set_family_draws(name, None)
        else:
            decider.add_family(name, BetaPrior(1.0, 1.0))


def _restore_learning(
    store: EngineStore, prior_set: PriorSet | None, config: EngineConfig
) -> tuple[Decider, PayoffModel, dict[str, tuple[int, int]]]:
    """Decider, payoff model and raw counts from every stored signal and outcome (arrival
    order), with the family priors of ``prior_set`` when ``config`` pools. An outcome whose
    ``|pnl| / notional`` is beyond ``payoff.MAX_SIZE`` counts for the win rate only."""
    decider = Decider()
    if prior_set is not None:
        _apply_priors(decider, prior_set, config)
    payoff = _payoff_model(decider)
    for signal, family in sorted(store.signals().items()):
        if family not in decider.families:
            decider.add_family(family)
        decider.register(signal, family)
        payoff.register(signal, family)
    raw: dict[str, tuple[int, int]] = {}
    out = store.outcomes()
    for tid, sig, won, pnl, nominal, opened, settled in zip(
        out["trade_id"], out["signal"], out["won"], out["pnl"], out["notional"],
        out["opened_at"], out["settled_at"], strict=True,
    ):  # fmt: skip
        won = bool(won)
        cluster = trade_day(settled if opened is None or opened != opened else opened)
        decider.record(sig, won, float(pnl), tid, cluster=cluster)
        w, t = raw.get(sig, (0, 0))
        raw[sig] = (w + int(won), t + 1)
        if nominal is not None and nominal == nominal and nominal > 0:  # not NaN
            size = abs(float(pnl)) / float(nominal)
            if size <= MAX_SIZE:
                payoff.record(sig, won, size)
            else:  # stored by a batch ingest; settle() refuses such a trade
                log.warning("outcome %r: |pnl| / notional = %g is beyond any price move; "
                            "counted for the win rate only", tid, size)  # fmt: skip
    return decider, payoff, raw


def _build_market_state(
    prior_set: PriorSet | None, panel: Frame | None, history_days: int, seed: int
) -> tuple[ReturnModel | None, np.ndarray | None, NormalGammaBOCPD | None]:
    """The return model rolled forward to the panel's last day, the normal scores of the last
    ``history_days`` days under it, and the primed-to-be regime detector (scores not yet fed).

    With a prior set: its draws, each symbol's variance state at ``data_through`` rolled
    forward through that symbol's returns dated after it. Without: the documented default, a
    Laplace fit of each symbol's stored history (at least 250 days)."""
    from bayes_mem.live.pit import normal_scores

    if panel is None or len(panel) == 0:
        if prior_set is None or not prior_set.symbols:
            return None, None, None
        symbols = sorted(prior_set.symbols)
        model = ReturnModel(
            {s: prior_set.symbols[s].draws for s in symbols},
            {s: prior_set.symbols[s].sigma2 for s in symbols},
        )
        detector = prior_set.regime_detector(symbols) if prior_set.regime is not None else None
        return model, None, detector
    dates = [d if isinstance(d, dt.date) else _check_date(d) for d in panel.index]
    if prior_set is not None and prior_set.symbols:
        symbols = sorted(prior_set.symbols)
        model = ReturnModel(
            {s: prior_set.symbols[s].draws for s in symbols},
            {s: prior_set.symbols[s].sigma2 for s in symbols},
        )
        through = (
            None
            if prior_set.data_through is None
            else dt.date.fromisoformat(str(prior_set.data_through)[:10])
        )
        cols = [s for s in symbols if s in panel.columns]
        values = panel[cols].to_numpy(dtype=float) if cols else np.empty((len(dates), 0))
        for i, d in enumerate(dates):
            if through is not None and d <= through:
                continue
            row = values[i]
            day = {s: float(row[j]) for j, s in enumerate(cols) if math.isfinite(row[j])}
            if day:
                model.update(day, kind="log")
        draws = {s: prior_set.symbols[s].draws for s in symbols}
        detector = prior_set.regime_detector(symbols) if prior_set.regime is not None else None
    else:
        symbols = [s for s in panel.columns if panel[s].notna().sum() >= MIN_FALLBACK_DAYS]
        if not symbols:
            return None, None, None
        rng = np.random.default_rng([seed, 2])
        draws, sigma2 = {}, {}
        for s in symbols:  # the documented default: ReturnModel.from_history, kept per symbol
            r = panel[s].dropna().to_numpy(dtype=float)[-1000:]
            draws[s] = fit_laplace(r, 200, rng).draws
            sigma2[s] = variance_path(r, draws[s], float(np.var(r)))[:, -1]
        model = ReturnModel(draws, sigma2)
        detector = None
    window = panel.iloc[-history_days:]
    scores = np.zeros((len(window), len(symbols)))
    for j, s in enumerate(symbols):
        if s not in window.columns:
            continue
        col = window[s].to_numpy(dtype=float)
        ok = np.isfinite(col)
        if ok.sum() < 2:
            continue
        full = panel[s].to_numpy(dtype=float)
        start = float(np.nanvar(full[-1000:])) if np.isfinite(full).sum() > 1 else 1e-4
        scores[ok, j] = normal_scores(col[ok], draws[s], max(start, 1e-12))
    return model, scores, detector


def _portfolio_metrics(
    m: _Market, book: dict[str, float], corr: np.ndarray | None, level: float
) -> dict[str, float]:
    """One-day VaR / ES of the open book (currency, :func:`portfolio_risk`, elliptical) and its
    gross exposure; zeros for an empty book."""
    out = {"gross_exposure": 0.0, "portfolio_es": 0.0, "portfolio_var": 0.0, "level": level}
    book = {s: v for s, v in book.items() if v != 0.0}
    if not book or m.model is None:
        return out
    idx = [m.pos[s] for s in book]
    sub = np.eye(len(idx)) if corr is None else corr[np.ix_(idx, idx)]
    risk = portfolio_risk(m.model, book, sub, level=level)
    out.update(gross_exposure=risk.gross_exposure, portfolio_es=risk.es, portfolio_var=risk.var)
    return out


def _store_returns(store: EngineStore, date: dt.date, day: Mapping[str, float]) -> None:
    """Store the day's log returns; returns stored before (the trader's own ingest, or a bar
    replayed after a restart) must agree to 1e-12, and are not stored twice."""
    import pandas as pd  # type: ignore[import-untyped]  # no pandas-stubs installed

    stored = store.returns_after(date - dt.timedelta(days=1), list(day))
    have: dict[str, float] = {}
    if len(stored) and _check_date(stored.index[0]) == date:
        have = {s: float(v) for s, v in stored.iloc[0].items() if math.isfinite(v)}
    clash = [s for s, v in have.items() if abs(v - day[s]) > 1e-12 * max(1.0, abs(v))]
    if clash:
        s = clash[0]
        raise ValueError(
            f"the store already holds a different return for {s!r} on {date.isoformat()}: "
            f"{have[s]!r}, not {day[s]!r}"
        )
    new = {s: v for s, v in day.items() if s not in have}
    if new:
        frame = pd.DataFrame(
            {"symbol": list(new), "date": [date] * len(new), "return": list(new.values())}
        )
        store.ingest_returns(frame, kind="log")


def _panel_history(panel: Frame | None, days: int) -> list[tuple[dt.date, dict[str, float]]]:
    if panel is None or len(panel) == 0:
        return []
    tail = panel.iloc[-days:]
    out = []
    for d, row in zip(tail.index, tail.to_numpy(dtype=float), strict=True):
        day = {s: float(v) for s, v in zip(tail.columns, row, strict=True) if math.isfinite(v)}
        out.append((_check_date(d), day))
    return out


def _history_panel(history: list[tuple[dt.date, dict[str, float]]]) -> Frame | None:
    import pandas as pd

    if not history:
        return None
    return pd.DataFrame([r for _, r in history], index=[d for d, _ in history]).sort_index()
