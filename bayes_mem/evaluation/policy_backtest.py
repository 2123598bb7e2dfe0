"""Walk-forward backtest of the trading policy on real daily prices (issue 6).

Data: by default the widest real universe the shipped data allow
(:func:`~bayes_mem.evaluation.signals.load_universe`): the S&P 500 index (skfolio, 1999-2022),
the NASDAQ composite and WTI crude (arch, to 2018/2019) and skfolio's five factor ETFs MTUM,
QUAL, SIZE, USMV, VLUE (2014-2022), an unbalanced panel: a symbol's returns reach the store and
the engine only while it is listed, and it is traded once the live return model covers it (the
first nightly fit after its first ``returns_min_days`` returns; its earlier signals are shadow
trades only). ``universe="arch3"``: the earlier S&P 500, NASDAQ and WTI of ``arch`` on their
common dates. Nothing is downloaded.

Risk-normalised evidence (issue 18): every policy is also measured scaled to a common ex-ante
volatility (:func:`normalised_returns`: causal EWMA targeting) and per unit of gross exposure
(:func:`exposure_returns`); each module's effect after normalisation is a paired block
bootstrap (:func:`paired_effect`); the deflated Sharpe ratio counts the independent trials
(correlation clusters) among the policies (:func:`dsr_table`); the A/B table compares the
vol-targeted returns with the scale-free Ledoit-Wolf/EWC test and the Bayesian posterior of the
Sharpe difference (:func:`ab_verdict`). Signals: the families of
:mod:`bayes_mem.evaluation.signals` per symbol; each fired signal opens a *shadow trade* at the
close, held ``hold`` days; its outcome (won = return > 0, pnl = return per unit stake) is known
only at settlement (delayed feedback). Shadow trades are tracked whether or not a policy stakes
money on them (a price move is observable either way), so the track record the nightly job
fits, and every policy learns from, is the same for all policies.

Walk-forward: every ``cadence`` trading days after ``warmup`` the REAL nightly job
(:func:`bayes_mem.offline.recalibrate.recalibrate`) runs on a :class:`~bayes_mem.store.Store`
that holds only the outcomes settled and the returns dated up to that day, with one compiled
win-rate model for the whole run. A published (gate-passing) prior set is swapped into each
policy's engine (:meth:`~bayes_mem.live.TradingEngine.use_prior_set`: family priors, the return
model rolled forward, the regime detector); a rejected one leaves the previous set live, as in
production, and is counted. Before the first published set the engine uses the documented
default return model (a Laplace fit of its own history).

Policies: each is ONE :class:`~bayes_mem.live.TradingEngine` with the policy's
:class:`~bayes_mem.live.EngineConfig` (:func:`policy_config`); the backtest only feeds it events
(:func:`run_policy`: ``bar``, ``settle``, ``use_prior_set``, ``signal``, ``end_of_day``), so what
is measured is what the engine trades. A trade's stake is its decision's notional.

- ``baseline`` (the seed plan's "if confidence > threshold: execute", fixed per-symbol dollar
  limits, no learning of thresholds or sizes): :meth:`EngineConfig.baseline`, the signal's raw
  running win rate over its settled shadow trades (0.5 before any settled) >=
  ``baseline_threshold`` (0.5), a stake of ``baseline_symbol_limit / signals_per_symbol`` (the
  seed plan's $750 per symbol, split over the symbol's signals so the symbol never holds more
  than $750). ``baseline_fixed``: the same sizing, every fired signal traded
  (:class:`TradeEverySignal`).
- ``ours``: every module on: Thompson sampling on the expected edge (one joint draw of the
  win rate, pooled by the nightly family priors, and of the payoff sizes); notional = the
  smallest of the CVaR budget (each position's ``hold``-day ES 97.5% on its side within
  ``position_budget`` x capital), fractional Kelly in notional over joint posterior draws of
  the win rate and payoff sizes, and the portfolio-ES limit (the book's one-day ES within
  ``portfolio_budget`` x capital by Euler allocation; hedges are not cut), times the
  correlation-breakdown and regime cuts. ``ours-no_<slot>`` switches one slot off
  (:meth:`EngineConfig.without`: ``budget``, ``kelly``, ``correlation``, ``regime``;
  ``pooled``: flat Beta(1, 1) family priors). Every configuration draws the same random
  numbers for one event (keyed by the trade), so ablations are paired.

Portfolio accounting: a trade of stake S buys ``direction x S / P_open`` units and holds them to
the settlement close, so its daily mark-to-market pnl sums exactly to ``S x ret``. Daily returns
are pnl / ``portfolio_value`` (constant capital, no compounding of the stake), positions are the
open trades' entry notional as fractions of capital.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_mem.evaluation.signals import (
    DEFAULT_SIGNALS,
    ShadowTrades,
    SignalSpec,
    check_prices,
    listed_span,
    load_prices,
    load_universe,
    shadow_trades,
)
from bayes_mem.evaluation.tables import markdown_rows

log = logging.getLogger("bayes_mem.policy_backtest")

#: the engine slots an ``ours-no_<slot>`` policy switches off (:meth:`EngineConfig.without`)
SLOTS = ("pooled", "budget", "kelly", "correlation", "regime")
POLICIES = ("baseline", "baseline_fixed", "ours")
#: the notional (fraction of capital) a shadow outcome is settled with when the policy did not
#: trade it: only its win or loss per unit notional reaches the payoff model
REFERENCE_NOTIONAL = 0.1
MIN_FALLBACK_DAYS = 250  # = bayes_mem.live.engine.MIN_FALLBACK_DAYS (not imported: module light)


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PolicySpec:
    """A policy: ``kind`` in :data:`POLICIES`; ``off`` the engine slots switched off (ours
    only).

    Examples
    --------
    >>> PolicySpec("baseline").name, PolicySpec("ours", frozenset({"pooled"})).name
    ('baseline', 'ours-no_pooled')
    """

    kind: str
    off: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """The policy's name: ``kind`` then ``-no_<slot>`` per switched-off slot, in
        :data:`SLOTS` order.

        Examples
        --------
        >>> PolicySpec("ours", frozenset({"regime", "kelly"})).name
        'ours-no_kelly-no_regime'
        """
        if not self.off:
            return self.kind
        return self.kind + "".join(f"-no_{f}" for f in SLOTS if f in self.off)


def parse_policy(name: object) -> PolicySpec:
    """``"baseline"``, ``"baseline_fixed"``, ``"ours"`` or ``"ours-no_<factor>[-no_<factor>]"``
    with slots from :data:`SLOTS`; anything else raises naming it.

    Examples
    --------
    >>> parse_policy("ours-no_budget")
    PolicySpec(kind='ours', off=frozenset({'budget'}))
    >>> parse_policy("baseline-no_kelly")
    Traceback (most recent call last):
    ...
    ValueError: only 'ours' has switchable slots, got 'baseline-no_kelly'
    """
    if not isinstance(name, str):
        raise TypeError(f"policy name must be a string, got {name!r}")
    kind, *rest = name.split("-")
    if kind not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {POLICIES} (+ '-no_<factor>')")
    off = set()
    for part in rest:
        factor = part[3:] if part.startswith("no_") else None
        if factor not in SLOTS:
            raise ValueError(f"unknown slot {part!r} in policy {name!r}; known: {SLOTS}")
        if kind != "ours":
            raise ValueError(f"only 'ours' has switchable slots, got {name!r}")
        off.add(factor)
    return PolicySpec(kind, frozenset(off))


DEFAULT_POLICIES = ("baseline", "baseline_fixed", "ours", *(f"ours-no_{f}" for f in SLOTS))


@dataclass(frozen=True)
class BacktestConfig:
    """Settings of one backtest. Days are trading days (rows of the price panel); money is in
    the account currency. ``position_budget``: each position's ES 97.5% over its ``hold``-day
    holding period, as a fraction of ``portfolio_value`` (:class:`CVaRBudget`);
    ``portfolio_budget``: the open book's one-day ES 97.5% (:class:`PortfolioESLimit`). The
    ``warmup`` must leave the default return model its 250 days of history.

    Examples
    --------
    The defaults hold trades 5 days and fit nightly every 21 days after 500 days of track record;
    a warmup shorter than the default return model's 250 days is refused:

    >>> cfg = BacktestConfig()
    >>> cfg.hold, cfg.cadence, cfg.warmup, cfg.portfolio_value
    (5, 21, 500, 10000.0)
    >>> BacktestConfig(warmup=100)
    Traceback (most recent call last):
    ...
    ValueError: warmup must be at least 250 days (the default return model's history ...), got 100
    """

    hold: int = 5
    cadence: int = 21
    warmup: int = 500  # days of shadow track record before the first nightly fit and trade
    portfolio_value: float = 10_000.0
    baseline_symbol_limit: float = 750.0  # the seed plan's fixed $750 per symbol
    baseline_threshold: float = 0.5
    position_budget: float = 0.005  # the engine's defaults
    portfolio_budget: float = 0.02
    # nightly job settings (the win-rate fit with small draws for speed)
    fit_draws: int = 1000
    fit_tune: int = 500
    fit_chains: int = 2
    returns_model: str = "laplace"
    returns_window: int = 1000
    returns_draws: int = 100

    def __post_init__(self) -> None:
        for name in ("hold", "cadence", "warmup", "fit_draws", "fit_tune", "fit_chains",
                     "returns_window", "returns_draws"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v <= 0:
                raise ValueError(f"{name} must be a positive whole number, got {v!r}")
        for name in ("portfolio_value", "baseline_symbol_limit"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < math.inf:
                raise ValueError(f"{name} must be positive and finite, got {v!r}")
        for name in ("baseline_threshold", "position_budget", "portfolio_budget"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
                raise ValueError(f"{name} must be in (0, 1), got {v!r}")
        if self.returns_model not in ("laplace", "pymc"):
            raise ValueError(
                f"returns_model must be 'laplace' or 'pymc', got {self.returns_model!r}"
            )
        if self.warmup < MIN_FALLBACK_DAYS:
            raise ValueError(
                f"warmup must be at least {MIN_FALLBACK_DAYS} days (the default return model's "
                f"history before the first published prior set), got {self.warmup}"
            )

    def recalibration(self, seed: int) -> Any:
        """The nightly job's :class:`~bayes_mem.offline.recalibrate.RecalibrationConfig` for
        these settings, seeded with ``seed``.

        Examples
        --------
        >>> rc = BacktestConfig().recalibration(seed=7)
        >>> rc.seed, rc.draws, rc.chains, rc.family_draws_published, rc.returns_model
        (7, 1000, 2, 200, 'laplace')
        """
        from bayes_mem.offline.recalibrate import RecalibrationConfig

        return RecalibrationConfig(
            draws=self.fit_draws,
            tune=self.fit_tune,
            chains=self.fit_chains,
            seed=seed,
            family_draws_published=min(200, self.fit_draws * self.fit_chains),
            returns_window=self.returns_window,
            returns_draws=self.returns_draws,
            returns_model=self.returns_model,
            returns_mcmc_draws=300,
            returns_mcmc_tune=300,
        )


# ---------------------------------------------------------------------------- walk-forward


@dataclass(frozen=True)
class Calibration:
    """One nightly run inside the backtest: ``day`` (row index), its ``date``, the job's
    ``status`` ("active", "rejected" or "error"), the newest date in the store it was handed
    (``outcomes_through``, ``returns_through``), the gate's reasons, seconds, and the prior set
    live after it (the previous one when rejected; None before any was published: the engine
    then fits the documented default return model on its own history).

    Per component (win rates, returns, regime: each gated and versioned on its own),
    ``components`` gives the live set's source ``version``, ``data_through`` and ``age_days``
    (calendar days from it to the night's date; None: the live set holds none of it) and
    ``kinds`` the night's own verdict of each component (``"passed"``, ``"computational"``,
    ``"misfit"``, ``"identification"``, ``"other"``, ``"disabled"``).

    Examples
    --------
    >>> c = Calibration(day=521, date="2001-02-05", status="rejected", version=None,
    ...                 outcomes_through="2001-02-05", returns_through="2001-02-05",
    ...                 reasons=("win rates: R-hat 1.02 > 1.01",), seconds=41.5)
    >>> c.status, c.prior_set, c.components
    ('rejected', None, {})
    """

    day: int
    date: str
    status: str
    version: int | None
    outcomes_through: str | None
    returns_through: str | None
    reasons: tuple[str, ...]
    seconds: float
    prior_set: Any = field(default=None, repr=False)
    components: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)


def recalibration_days(n_days: int, config: BacktestConfig) -> list[int]:
    """Row indices of the nightly runs: ``warmup``, ``warmup + cadence``, ... before the end.

    Examples
    --------
    >>> recalibration_days(1000, BacktestConfig(warmup=500, cadence=200))
    [500, 700, 900]
    """
    return list(range(config.warmup, n_days - 1, config.cadence))


def walk_forward(
    prices: pd.DataFrame,
    trades: ShadowTrades,
    config: BacktestConfig,
    *,
    seed: int = 0,
    work_dir: Path | None = None,
    recalibrate_fn: Callable[..., Any] | None = None,
) -> list[Calibration]:
    """Run the nightly job at every :func:`recalibration_days` day on a store filled only with
    data up to that day; returns one :class:`Calibration` per run. ``recalibrate_fn`` defaults
    to the real :func:`~bayes_mem.offline.recalibrate.recalibrate` (tests may wrap it).

    Examples
    --------
    A stand-in for the nightly job shows the store's bookkeeping without a fit: 8 nights from day
    250 every 21 days, each handed only the outcomes and returns dated up to its own day:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> from types import SimpleNamespace
    >>> def no_fit(store, models, recalibration, **kw):  # the real job: recalibrate()
    ...     return SimpleNamespace(status="rejected", version=None, components={},
    ...                            verdict={"reasons": ["stub: no fit"]})
    >>> nights = walk_forward(prices, trades, cfg, recalibrate_fn=no_fit)
    >>> [(c.day, c.status, c.outcomes_through[:10]) for c in nights[:2]], len(nights)
    ([(250, 'rejected', '2020-12-16'), (271, 'rejected', '2021-01-13')], 8)
    """
    from bayes_mem.live.prior_set import load_prior_set
    from bayes_mem.offline.recalibrate import recalibrate
    from bayes_mem.offline.winrate import default_model
    from bayes_mem.store import Store

    fn = recalibrate if recalibrate_fn is None else recalibrate_fn
    winrate_model = default_model()  # compiled once per process, for every night of every run
    dates = prices.index
    log_returns = np.log(prices.to_numpy()).astype(float)
    log_returns = np.diff(log_returns, axis=0)  # row i: the return of day i + 1
    specs_names = sorted(set(trades.signal.tolist()))
    families = dict(zip(trades.signal.tolist(), trades.family.tolist(), strict=True))
    out: list[Calibration] = []
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        store = Store(data_dir=Path(tmp) / "data")
        models = Path(tmp) / "models"
        store.register_signals({name: families[name] for name in specs_names})
        live = None
        done_trades = 0  # trades are ingested in settlement order
        order = np.argsort(trades.settle_idx, kind="stable")
        done_days = 0  # returns of days 1 .. done_days are stored
        for day in recalibration_days(len(dates), config):
            take = order[done_trades:][trades.settle_idx[order[done_trades:]] <= day]
            if take.size:
                store.ingest_outcomes(
                    pd.DataFrame({
                        "trade_id": [f"{trades.signal[i]}@{int(trades.open_idx[i])}"
                                     for i in take],
                        "signal": trades.signal[take],
                        "won": trades.won[take],
                        "pnl": trades.ret[take],
                        "opened_at": dates[trades.open_idx[take]],
                        "settled_at": dates[trades.settle_idx[take]],
                    })
                )  # fmt: skip
                done_trades += take.size
            if day > done_days:
                rows = slice(done_days, day)  # returns of days done_days + 1 .. day
                for j, sym in enumerate(prices.columns):
                    vals = log_returns[rows, j]
                    listed = np.isfinite(vals)  # an unbalanced panel: only listed days
                    if not listed.any():
                        continue
                    store.ingest_returns(
                        pd.DataFrame({"symbol": sym,
                                      "date": dates[done_days + 1 : day + 1][listed],
                                      "return": vals[listed]}),
                        kind="log",
                    )  # fmt: skip
                done_days = day
            outcomes = store.outcomes()
            o_through = None if outcomes.empty else str(pd.Timestamp(outcomes.settled_at.max()))
            panel = store.returns_panel()
            r_through = None if panel.empty else str(pd.Timestamp(panel.index.max()))
            t0 = time.perf_counter()
            kinds: dict[str, str] = {}
            try:
                result = fn(  # no analyst report: nobody reads a backtest night's page
                    store, models, config.recalibration(seed + day), winrate_model=winrate_model,
                    report=False,
                )  # fmt: skip
                status, version = result.status, result.version
                reasons = tuple(result.verdict.get("reasons", ()))
                kinds = {c: i["kind"] for c, i in getattr(result, "components", {}).items()}
                if status == "active":
                    live = load_prior_set(models, version)
            except ValueError as exc:  # e.g. too few returns for the window: keep the priors
                status, version, reasons = "error", None, (str(exc),)
            seconds = time.perf_counter() - t0
            night = dates[day].date()
            components = _component_ages(live, night)
            log.info("night %s: %s in %.1f s %s %s", night, status, seconds, reasons, components)
            out.append(
                Calibration(day, str(night), status, version, o_through, r_through,
                            reasons, round(seconds, 3), live, components, kinds)
            )  # fmt: skip
        store.close()
    return out


def _component_ages(live: Any, night: Any) -> dict[str, Any]:
    """Per component of the live set: its source version, data_through and age at ``night``
    (calendar days); empty before any set was published."""
    if live is None:
        return {}
    return {
        c: None if src is None else {"version": src.version, "data_through": src.data_through,
                                     "age_days": src.age_days(night)}
        for c, src in live.components.items()
    }  # fmt: skip


def nights_table(calibrations: Sequence[Calibration]) -> pd.DataFrame:
    """One row per nightly run: status, version, reasons and, per component, the live set's
    source version and age (``<component>_version``, ``<component>_age_days``) and the night's
    own verdict kind (``<component>_kind``).

    Examples
    --------
    >>> c = Calibration(521, "2001-02-05", "rejected", None, "2001-02-05", "2001-02-05",
    ...                 ("win rates: R-hat 1.02 > 1.01",), 41.5)
    >>> nights_table([c])[["day", "status", "reasons", "returns_version"]]
       day    status                       reasons returns_version
    0  521  rejected  win rates: R-hat 1.02 > 1.01            None
    """
    rows = []
    for c in calibrations:
        row = {k: v for k, v in dataclasses.asdict(c).items()
               if k not in ("prior_set", "components", "kinds")}  # fmt: skip
        row["reasons"] = "; ".join(c.reasons)
        for comp in ("winrate", "returns", "regime"):
            src = c.components.get(comp)
            row[f"{comp}_version"] = None if src is None else src["version"]
            row[f"{comp}_age_days"] = None if src is None else src["age_days"]
            row[f"{comp}_kind"] = c.kinds.get(comp)
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- policies


@dataclass
class TradeEverySignal:
    """A decision rule that acts on every fired signal (``baseline_fixed``): the seed baseline's
    sizing without its confidence test. Reports the raw running win rate (0.5 before any
    outcome) as ``p_win``, for the record only.

    Examples
    --------
    >>> TradeEverySignal()
    TradeEverySignal(enabled=True, name='every_signal')
    """

    enabled: bool = True
    name: str = "every_signal"

    def decide(self, ctx: Any) -> tuple[bool, float, dict[str, Any]]:
        """Always act; ``p_win`` is the raw win rate of ``ctx.raw_counts()`` (0.5 before any).

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> TradeEverySignal().decide(SimpleNamespace(raw_counts=lambda: (3, 4)))
        (True, 0.75, {'wins': 3, 'trades': 4})
        >>> TradeEverySignal().decide(SimpleNamespace(raw_counts=lambda: (0, 0)))[1]
        0.5
        """
        wins, trades = ctx.raw_counts()
        return True, wins / trades if trades else 0.5, {"wins": wins, "trades": trades}


def policy_config(policy: str | PolicySpec, config: BacktestConfig) -> Any:
    """The :class:`~bayes_mem.live.EngineConfig` of a policy: ``baseline`` is
    :meth:`EngineConfig.baseline` (raw win rate >= ``baseline_threshold``, fixed
    ``baseline_symbol_limit`` per symbol split over its signals); ``baseline_fixed`` the same
    sizing with :class:`TradeEverySignal`; ``ours`` every module on (:class:`CVaRBudget` at
    ``position_budget``, :class:`KellyLimit`, :class:`PortfolioESLimit` at ``portfolio_budget``,
    :class:`RegimeCut`, pooled family priors); ``ours-no_<slot>`` that slot switched off
    (:meth:`EngineConfig.without`).

    Examples
    --------
    >>> cfg = BacktestConfig()
    >>> base = policy_config("baseline_fixed", cfg)
    >>> base.name, type(base.rule).__name__
    ('baseline_fixed', 'TradeEverySignal')
    >>> ours = policy_config("ours-no_kelly", cfg)
    >>> ours.name, ours.kelly, ours.budget.budget, ours.correlation.budget
    ('ours-no_kelly', None, 0.005, 0.02)
    """
    from bayes_mem.live import EngineConfig
    from bayes_mem.live.modules import CVaRBudget, PortfolioESLimit

    spec = parse_policy(policy) if isinstance(policy, str) else policy
    if spec.kind in ("baseline", "baseline_fixed"):
        cfg = EngineConfig.baseline(
            per_symbol=config.baseline_symbol_limit, threshold=config.baseline_threshold,
            name=spec.name,
        )  # fmt: skip
        if spec.kind == "baseline_fixed":
            cfg = dataclasses.replace(cfg, rule=TradeEverySignal())
        return cfg
    ours = EngineConfig(
        name="ours",
        budget=CVaRBudget(budget=config.position_budget),
        correlation=PortfolioESLimit(budget=config.portfolio_budget),
    )
    if not spec.off:
        return ours
    try:
        return ours.without(*[s for s in SLOTS if s in spec.off], name=spec.name)
    except ValueError as exc:  # e.g. neither a budget nor Kelly: no base size
        raise ValueError(f"policy {spec.name!r}: {exc}") from None


def run_policy(
    policy: str | PolicySpec,
    prices: pd.DataFrame,
    trades: ShadowTrades,
    calibrations: Sequence[Calibration],
    config: BacktestConfig,
    *,
    seed: int = 0,
    keep_decisions: bool = False,
) -> dict[str, Any]:
    """Replay the days through ONE :class:`~bayes_mem.live.TradingEngine` configured with the
    policy's :func:`policy_config`; the backtest only feeds it events. Day t, in order:

    1. ``bar(date_t, returns of day t)`` (before any return model exists the day only joins the
       engine's history);
    2. every shadow trade settling at t's close: ``settle(str(i), won=ret > 0, pnl=ret x
       notional)`` with the decision's notional when the engine acted on it, else (declined, or
       opened before the warmup) as a shadow outcome with ``signal=`` and the reference notional
       :data:`REFERENCE_NOTIONAL` x capital, so every policy learns the same win record and the
       same payoff sizes per unit notional (delayed feedback: nothing before settlement);
    3. from ``warmup`` on, on a nightly-calibration day whose live prior set is new:
       ``use_prior_set(set)`` (before the first published set: ``use_prior_set(None)``, the
       documented default model fitted on the engine's history);
    4. each shadow trade opening at t's close: ``signal(sig, symbol, side, horizon=hold,
       key=str(i))``; the acted decision's notional is the trade's stake;
    5. ``end_of_day(date_t, metrics=False)`` (the day closes and the correlation-breakdown test
       runs for the next day's cut; the metrics nobody here reads are not computed).

    Returns per trade: ``stake`` (currency, 0 = not traded), ``act``, ``p_draw`` (the rule's
    win probability), ``es`` (the budget's h-day ES per unit notional), ``binding`` (the limit
    that bound), ``limit_<module>`` (currency; inf: unlimited) and ``factor_<cut>`` from the
    decisions (NaN where not decided or not used); ``realised_pnl`` per day (the engine's own
    realised PnL, currency, by settlement day); with ``keep_decisions`` the
    :class:`~bayes_mem.live.Decision` objects (None for trades not decided). Day t's decisions
    use prices up to t and outcomes settled by t only.

    Examples
    --------
    Skipped here: the replay fits the documented default return model when the warmup ends
    (about 1 s of CPU even for one symbol). With no nightly set, ``baseline_fixed`` stakes the
    per-symbol limit on each trade opened after the warmup (265 days of one random walk, 20-day
    momentum; 2 trades):

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(265))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)},
    ...                       index=pd.bdate_range("2020-01-01", periods=265))
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> res = run_policy("baseline_fixed", prices, trades, [], cfg)  # doctest: +SKIP
    >>> res["stake"][trades.open_idx >= cfg.warmup]  # doctest: +SKIP
    array([750., 750.])
    """
    from bayes_mem.live import BetaPrior, Decider, TradingEngine

    spec = parse_policy(policy) if isinstance(policy, str) else policy
    engine_config = policy_config(spec, config)
    n_days, _ = prices.shape
    symbols = [str(c) for c in prices.columns]
    dates = [ts.date() for ts in pd.DatetimeIndex(prices.index)]
    rets = np.diff(np.log(prices.to_numpy(dtype=float)), axis=0)  # rets[t - 1]: day t
    families = dict(zip(trades.signal.tolist(), trades.family.tolist(), strict=True))
    links = {str(trades.signal[i]): symbols[int(trades.symbol[i])] for i in range(len(trades))}
    decider = Decider({f: BetaPrior(1.0, 1.0) for f in sorted(set(families.values()))})
    for name in sorted(families):
        decider.register(name, families[name])
    engine = TradingEngine(
        decider, None, portfolio_value=config.portfolio_value, config=engine_config,
        signal_symbols=links, seed=seed,
    )  # fmt: skip
    reference = REFERENCE_NOTIONAL * config.portfolio_value
    n = len(trades)
    out: dict[str, Any] = {
        "stake": np.zeros(n),
        "act": np.zeros(n, dtype=bool),
        "p_draw": np.full(n, np.nan),
        "es": np.full(n, np.nan),
        "binding": np.full(n, "", dtype=object),
    }
    kept: list[Any] = [None] * n
    open_decisions: dict[int, Any] = {}
    by_open = _group(trades.open_idx, n_days)
    by_settle = _group(trades.settle_idx, n_days)
    calib = {c.day: c for c in calibrations}
    version: int | None = None
    for t in range(n_days):
        if t >= 1:
            known = set(engine.symbols) if engine.model is not None else None
            day = {s: v for s, v in zip(symbols, rets[t - 1].tolist(), strict=True)
                   if math.isfinite(v) and (known is None or s in known)}  # fmt: skip
            if day:
                engine.bar(dates[t], day)
        for i in by_settle[t]:  # delayed feedback: outcomes known at the settlement close
            ret = float(trades.ret[i])
            d = open_decisions.pop(i, None)
            opened = dates[int(trades.open_idx[i])]  # the cluster: the day it opened
            if d is not None and d.act:
                engine.settle(str(i), won=ret > 0.0, pnl=ret * d.notional, opened_at=opened)
            else:
                engine.settle(str(i), won=ret > 0.0, pnl=ret * reference, notional=reference,
                              signal=str(trades.signal[i]), opened_at=opened)  # fmt: skip
        if t < config.warmup:
            continue
        c = calib.get(t)
        ps = None if c is None else c.prior_set
        if ps is not None and ps.version != version:
            engine.use_prior_set(ps)
            version = ps.version
        elif engine.model is None:  # nothing published yet: the documented default model
            engine.use_prior_set(None)
        known = set(engine.symbols)
        for i in by_open[t]:
            if symbols[int(trades.symbol[i])] not in known:
                continue  # listed after the live return model was fitted: not tradable yet
            d = engine.signal(str(trades.signal[i]), symbols[int(trades.symbol[i])],
                              "long" if trades.direction[i] > 0 else "short", config.hold,
                              key=str(i))  # fmt: skip
            open_decisions[i] = d
            _record_decision(out, i, d, n)
            if keep_decisions:
                kept[i] = d
        engine.end_of_day(dates[t], metrics=False)
    realised = np.zeros(n_days)
    pos = {d: k for k, d in enumerate(dates)}
    for d, pnl in engine.daily_pnl()[engine_config.name]:
        realised[pos[d]] = pnl
    out["realised_pnl"] = realised
    if keep_decisions:
        out["decisions"] = kept
    return out


def _record_decision(out: dict[str, Any], i: int, d: Any, n: int) -> None:
    out["act"][i] = d.act
    out["stake"][i] = d.notional if d.act else 0.0
    out["p_draw"][i] = d.p_win
    out["binding"][i] = d.binding or ""
    budget = d.detail.get("cvar")
    if budget is not None:
        out["es"][i] = budget["es"]
    for prefix, values in (("limit_", d.limits), ("factor_", d.factors)):
        for name, v in values.items():
            key = prefix + name
            if key not in out:
                out[key] = np.full(n, np.nan)
            out[key][i] = v


def _group(idx: np.ndarray, n_days: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(n_days)]
    for i, d in enumerate(idx.tolist()):
        out[d].append(i)
    return out


# ---------------------------------------------------------------------------- accounting


def portfolio_pnl(
    prices: pd.DataFrame, trades: ShadowTrades, stake: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Daily mark-to-market pnl (currency, days x symbols) and open entry notional (signed
    currency, days x symbols, at each close) of trades with the given stakes. A trade holds
    ``direction x stake / P_open`` units from its opening to its settlement close, so its daily
    pnl sums to ``stake x ret`` exactly.

    Examples
    --------
    A 1,000 long bought at 100 (10 units) and held 2 days to 110 via 105: +50 then +50, and
    1,000 of entry notional open at the first two closes:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import ShadowTrades
    >>> prices = pd.DataFrame({"A": [100.0, 105.0, 110.0, 108.0]})
    >>> trade = ShadowTrades(np.array(["A:momentum_20"], dtype=object),
    ...                      np.array(["momentum"], dtype=object), np.array([0]), np.array([0]),
    ...                      np.array([2]), np.array([1]), np.array([0.1]))
    >>> pnl, position = portfolio_pnl(prices, trade, np.array([1000.0]))
    >>> pnl.ravel(), position.ravel()
    (array([ 0., 50., 50.,  0.]), array([1000., 1000.,    0.,    0.]))
    """
    p = prices.to_numpy(dtype=float)
    stake = np.asarray(stake, dtype=float)
    if stake.shape != (len(trades),) or not np.all(np.isfinite(stake)) or np.any(stake < 0):
        raise ValueError(f"stake must be {len(trades)} finite values >= 0")
    pnl = np.zeros_like(p)
    position = np.zeros_like(p)
    for i in np.flatnonzero(stake):
        o, s, j = int(trades.open_idx[i]), int(trades.settle_idx[i]), int(trades.symbol[i])
        units = trades.direction[i] * stake[i] / p[o, j]
        pnl[o + 1 : s + 1, j] += units * np.diff(p[o : s + 1, j])
        position[o:s, j] += trades.direction[i] * stake[i]
    return pnl, position


# ---------------------------------------------------------------------------- the whole run


@dataclass
class BacktestRun:
    """One backtest: the price panel, the shadow trades, the settings, the nightly runs, and
    per policy :func:`run_policy`'s output plus ``returns`` (daily, fraction of capital) and
    ``positions`` (days x symbols, fraction of capital); ``seconds`` per stage.

    Examples
    --------
    Built by :func:`run_backtest`; here by hand with the same accounting
    (:func:`portfolio_pnl`) and fixed stakes in place of the engine's decisions:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> sorted(run.policies), run.start, len(trades)
    (['fixed', 'half', 'odd'], 251, 75)
    """

    prices: pd.DataFrame
    trades: ShadowTrades
    config: BacktestConfig
    calibrations: list[Calibration]
    policies: dict[str, dict[str, np.ndarray]]  # name -> run_policy output + returns/positions
    seconds: dict[str, float]

    @property
    def start(self) -> int:
        """First day of the evaluation window (the day after the first possible trade).

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
        >>> days = pd.bdate_range("2020-01-01", periods=400)
        >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
        >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
        >>> cfg = BacktestConfig(warmup=250)
        >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
        >>> def policy(stake):  # the accounting of run_backtest, without the engine
        ...     pnl, pos = portfolio_pnl(prices, trades, stake)
        ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
        ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
        ...             "positions": pos / cfg.portfolio_value}
        >>> every = np.full(len(trades), 500.0)  # 500 on every trade
        >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
        ...                   "half": policy(every / 2),
        ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
        >>> run.start
        251
        """
        return self.config.warmup + 1

    def returns(self, name: str) -> np.ndarray:
        """Daily portfolio returns (fraction of ``portfolio_value``) over the evaluation window.

        Examples
        --------
        >>> import numpy as np
        >>> import pandas as pd
        >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
        >>> days = pd.bdate_range("2020-01-01", periods=400)
        >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
        >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
        >>> cfg = BacktestConfig(warmup=250)
        >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
        >>> def policy(stake):  # the accounting of run_backtest, without the engine
        ...     pnl, pos = portfolio_pnl(prices, trades, stake)
        ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
        ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
        ...             "positions": pos / cfg.portfolio_value}
        >>> every = np.full(len(trades), 500.0)  # 500 on every trade
        >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
        ...                   "half": policy(every / 2),
        ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
        >>> run.returns("fixed").shape
        (149,)
        """
        return self.policies[name]["returns"][self.start :]

    def positions(self, name: str) -> np.ndarray:
        """Open entry notional per symbol (fraction of ``portfolio_value``, signed) at each close
        of the evaluation window, shape (days, symbols).

        Examples
        --------
        500 of 10,000 per open trade: 5% of capital:

        >>> import numpy as np
        >>> import pandas as pd
        >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
        >>> days = pd.bdate_range("2020-01-01", periods=400)
        >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
        >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
        >>> cfg = BacktestConfig(warmup=250)
        >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
        >>> def policy(stake):  # the accounting of run_backtest, without the engine
        ...     pnl, pos = portfolio_pnl(prices, trades, stake)
        ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
        ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
        ...             "positions": pos / cfg.portfolio_value}
        >>> every = np.full(len(trades), 500.0)  # 500 on every trade
        >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
        ...                   "half": policy(every / 2),
        ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
        >>> pos = run.positions("fixed")
        >>> pos.shape, round(float(abs(pos).max()), 4)
        ((149, 1), 0.05)
        """
        return self.policies[name]["positions"][self.start :]


def run_backtest(
    prices: pd.DataFrame | None = None,
    *,
    config: BacktestConfig | None = None,
    policies: Sequence[str] = DEFAULT_POLICIES,
    specs: tuple[SignalSpec, ...] = DEFAULT_SIGNALS,
    seed: int = 0,
    recalibrate_fn: Callable[..., Any] | None = None,
) -> BacktestRun:
    """Signals -> shadow trades -> walk-forward nightly fits -> every policy replayed.

    Examples
    --------
    Skipped here: every policy is replayed through its own engine (see :func:`run_policy`, about
    1 s each even on a small panel), after the walk-forward. The call on a panel of closes:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(300))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)},
    ...                       index=pd.bdate_range("2020-01-01", periods=300))
    >>> run = run_backtest(prices, config=BacktestConfig(warmup=250),
    ...                    policies=("baseline", "ours"),
    ...                    specs=(SignalSpec("momentum", 20),))  # doctest: +SKIP
    >>> list(run.policies), run.start  # doctest: +SKIP
    (['baseline', 'ours'], 251)
    """
    config = config or BacktestConfig()
    parsed = [parse_policy(p) for p in policies]
    if len({p.name for p in parsed}) != len(parsed):
        raise ValueError(f"policies repeat: {list(policies)}")
    prices = load_prices() if prices is None else _check_panel(prices)
    if len(prices) < config.warmup + config.hold + 2:
        raise ValueError(
            f"{len(prices)} days of prices are too few for warmup {config.warmup} and hold "
            f"{config.hold}"
        )
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    trades = shadow_trades(prices, specs, config.hold)
    seconds["signals"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    calibrations = walk_forward(prices, trades, config, seed=seed, recalibrate_fn=recalibrate_fn)
    seconds["walk_forward"] = time.perf_counter() - t0
    log.info("walk-forward: %d nights in %.1f s", len(calibrations), seconds["walk_forward"])
    out: dict[str, dict[str, np.ndarray]] = {}
    for spec in parsed:
        t0 = time.perf_counter()
        res = run_policy(spec, prices, trades, calibrations, config, seed=seed)
        pnl, pos = portfolio_pnl(prices, trades, res["stake"])
        res["returns"] = pnl.sum(axis=1) / config.portfolio_value
        res["positions"] = pos / config.portfolio_value
        out[spec.name] = res
        seconds[spec.name] = time.perf_counter() - t0
        log.info("policy %s: %.1f s", spec.name, seconds[spec.name])
    return BacktestRun(prices, trades, config, calibrations, out, seconds)


def _check_panel(prices: object) -> pd.DataFrame:
    if not isinstance(prices, pd.DataFrame) or prices.shape[1] < 1:
        raise TypeError("prices must be a DataFrame of daily closes (dates x symbols)")
    if not prices.index.is_monotonic_increasing or prices.index.has_duplicates:
        raise ValueError("prices need increasing, unique dates")
    for col in prices.columns:
        col_prices = prices[col].to_numpy(dtype=float)
        first, stop = listed_span(col_prices, f"prices of {col!r}")
        check_prices(col_prices[first:stop], f"prices of {col!r}")
    return prices.astype(float)


# ---------------------------------------------------------------------------- statistics


def _turnover_series(positions: np.ndarray) -> np.ndarray:
    return np.sum(np.abs(np.diff(positions, axis=0)), axis=1)


def policy_metrics(
    run: BacktestRun, name: str, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Annualised Sharpe, max drawdown, daily win rate, realised CVaR 97.5% (fractions of
    capital), turnover (fraction of capital per day), each with a circular block-bootstrap 95%
    interval; trades taken and their win rate; mean and largest gross exposure and the worst
    day (fractions of capital). The drawdown compounds the daily returns, a day that loses more
    than the capital counting as ruin (a drawdown of 100%).

    Examples
    --------
    Half the stakes on the same trades: the same Sharpe ratio, half the CVaR (a constant-capital
    book scales linearly):

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> m = policy_metrics(run, "fixed", n_boot=200)
    >>> m["days"], m["trades"], round(m["trade_win_rate"], 4), round(m["mean_gross_exposure"], 4)
    (149, 29, 0.5517, 0.0483)
    >>> h = policy_metrics(run, "half", n_boot=200)
    >>> round(h["sharpe"] - m["sharpe"], 8), round(h["cvar_975"] / m["cvar_975"], 4)
    (0.0, 0.5)
    """
    from bayes_mem.evaluation import performance as pf

    r = run.returns(name)
    pos = run.positions(name)
    stake = run.policies[name]["stake"]
    taken = stake > 0
    in_window = run.trades.open_idx >= run.config.warmup
    row: dict[str, Any] = {"policy": name, "days": int(r.size),
                           "trades": int(np.sum(taken & in_window))}  # fmt: skip
    row["trade_win_rate"] = (
        float(np.mean(run.trades.won[taken & in_window])) if row["trades"] else float("nan")
    )
    gross = np.abs(pos).sum(axis=1)
    row["mean_gross_exposure"] = float(np.mean(gross))
    row["max_gross_exposure"] = float(np.max(gross)) if gross.size else 0.0
    row["worst_day"] = float(np.min(r)) if r.size else 0.0
    stats: dict[str, Callable[[np.ndarray], float]] = {
        "sharpe": lambda x: _safe(lambda: pf.sharpe_ratio(x)),
        # constant capital: a day losing more than the capital is ruin (wealth 0, drawdown 100%)
        "max_drawdown": lambda x: pf.max_drawdown(np.maximum(x, -1.0)).value,
        "win_rate": lambda x: _safe(lambda: pf.win_rate(x), 0.5),
        "cvar_975": lambda x: pf.realised_cvar(x, 0.975),
    }
    for i, (key, fn) in enumerate(stats.items()):
        if np.all(r == 0):
            row[key], row[f"{key}_low"], row[f"{key}_high"] = float("nan"), None, None
            continue
        ci = pf.block_bootstrap_ci(r, fn, n_boot=n_boot, rng=np.random.default_rng([seed, i]))
        row[key], row[f"{key}_low"], row[f"{key}_high"] = ci.estimate, ci.low, ci.high
    turn = _turnover_series(pos)
    if np.all(turn == 0):
        row["turnover"], row["turnover_low"], row["turnover_high"] = 0.0, 0.0, 0.0
    else:
        ci = pf.block_bootstrap_ci(
            turn, np.mean, n_boot=n_boot, rng=np.random.default_rng([seed, 9])
        )
        row["turnover"], row["turnover_low"], row["turnover_high"] = (
            pf.turnover(pos),
            ci.low,
            ci.high,
        )
    return row


def _safe(fn: Callable[[], float], default: float = 0.0) -> float:
    try:
        return float(fn())
    except ValueError:  # zero variance / all-zero resample
        return default


def _safe_sharpe(r: np.ndarray) -> float | None:
    from bayes_mem.evaluation.performance import sharpe_ratio

    try:
        return sharpe_ratio(r)
    except ValueError:
        return None


class _Replay:
    """A strategy for :class:`StrategyABTest`: ``process(day)`` gives that day's return."""

    def __init__(self, returns: np.ndarray) -> None:
        self._r = returns

    def process(self, day: int) -> dict[str, float]:
        return {"pnl": float(self._r[day])}


#: the common annual volatility every policy is scaled to (:func:`normalised_returns`)
TARGET_VOL = 0.10
#: EWMA half-life (days) of the causal volatility estimate, and days before the first scaled one
VOL_HALFLIFE = 21.0
VOL_WARMUP = 21


def normalised_returns(run: BacktestRun, name: str) -> np.ndarray:
    """A policy's daily returns scaled to :data:`TARGET_VOL` a year *ex ante*: day t's return
    times ``s_t = (TARGET_VOL / sqrt(252)) / sigma_{t-1}``, ``sigma_{t-1}`` an EWMA (half-life
    :data:`VOL_HALFLIFE` days) of the policy's own squared daily returns *before* day t
    (:func:`~bayes_mem.evaluation.performance.vol_target_scale`; the first
    :data:`VOL_WARMUP` days of the window are 0 for every policy, the scale is capped at 100).
    Causal: the leverage of a day uses nothing of that day, as a trader targeting a volatility
    would. Fractions of capital per day.

    Examples
    --------
    Vol targeting removes the stake size: the full and the half stakes give the same normalised
    returns, near the 10% target:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> x = normalised_returns(run, "fixed")
    >>> bool(np.allclose(x, normalised_returns(run, "half"))), bool(x[:VOL_WARMUP].any())
    (True, False)
    >>> round(float(np.std(x[VOL_WARMUP:], ddof=1) * np.sqrt(252)), 3)
    0.095
    """
    from bayes_mem.evaluation.performance import vol_target_scale

    r = run.returns(name)
    if not np.any(r):
        return r.copy()
    scale = vol_target_scale(r, target_annual_vol=TARGET_VOL, halflife=VOL_HALFLIFE,
                             warmup=VOL_WARMUP)  # fmt: skip
    return scale * r


def exposure_returns(run: BacktestRun, name: str) -> np.ndarray:
    """A policy's daily pnl per unit of the gross notional it held into the day
    (:func:`~bayes_mem.evaluation.performance.per_exposure_returns`): its book as if always
    100% of capital gross; 0 on days it held nothing. Return per unit notional.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> e = exposure_returns(run, "fixed")
    >>> bool(np.allclose(e, exposure_returns(run, "half"))), np.round(e[:4], 4)
    (True, array([ 0.    , -0.0107,  0.0093, -0.0081]))
    """
    from bayes_mem.evaluation.performance import per_exposure_returns

    gross = np.abs(run.positions(name)).sum(axis=1)
    return per_exposure_returns(run.returns(name), gross)


def _risk_stats() -> dict[str, Callable[[np.ndarray], float]]:
    from bayes_mem.evaluation import performance as pf

    return {
        "sharpe": lambda x: _safe(lambda: pf.sharpe_ratio(x)),
        "cvar_975": lambda x: pf.realised_cvar(x, 0.975),
        "max_drawdown": lambda x: pf.max_drawdown(np.maximum(x, -1.0)).value,
    }


def normalised_metrics(
    run: BacktestRun, name: str, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Risk-normalised metrics of a policy, each with a circular block-bootstrap 95% interval:
    ``vt_*`` on :func:`normalised_returns` (annualised Sharpe; CVaR 97.5% and max drawdown as
    fractions of capital at the common ex-ante volatility) with the realised annual
    volatility ``vt_vol`` and the mean scale ``vt_mean_scale``; ``px_*`` the same on
    :func:`exposure_returns` (CVaR and drawdown per unit of gross notional).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> m = normalised_metrics(run, "fixed", n_boot=200)
    >>> round(m["vt_vol"], 3), round(m["vt_mean_scale"], 1), m["vt_sharpe_low"] < m["vt_sharpe"]
    (0.095, 12.9, True)
    """
    from bayes_mem.evaluation import performance as pf

    row: dict[str, Any] = {"policy": name}
    series = {"vt": normalised_returns(run, name), "px": exposure_returns(run, name)}
    for k, (prefix, x) in enumerate(series.items()):
        for i, (key, fn) in enumerate(_risk_stats().items()):
            col = f"{prefix}_{key}"
            if not np.any(x):
                row[col], row[f"{col}_low"], row[f"{col}_high"] = float("nan"), None, None
                continue
            gen = np.random.default_rng([seed, 20 + 3 * k + i])
            ci = pf.block_bootstrap_ci(x, fn, n_boot=n_boot, rng=gen)
            row[col], row[f"{col}_low"], row[f"{col}_high"] = ci.estimate, ci.low, ci.high
    vt = series["vt"]
    row["vt_vol"] = float(np.std(vt[VOL_WARMUP:], ddof=1) * math.sqrt(252))
    r = run.returns(name)
    if np.any(r):
        scale = pf.vol_target_scale(r, target_annual_vol=TARGET_VOL, halflife=VOL_HALFLIFE,
                                    warmup=VOL_WARMUP)  # fmt: skip
        row["vt_mean_scale"] = float(np.mean(scale[VOL_WARMUP:]))
    else:
        row["vt_mean_scale"] = float("nan")
    return row


def paired_effect(
    run: BacktestRun,
    control: str,
    test: str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    block_size: int | None = None,
) -> dict[str, Any]:
    """What switching from ``control`` to ``test`` changes after normalisation: the differences
    ``test - control`` of the Sharpe ratio, CVaR 97.5% and max drawdown, on the vol-targeted
    returns (``vt_``) and per unit of gross exposure (``px_``), each with a 95% interval from
    one *paired* circular block bootstrap (the same resampled days for both policies; blocks
    of ``round(T^(1/3))`` days unless given); ``corr_vt``: the correlation of the two
    vol-targeted series (1: the switch only rescaled the book).

    Examples
    --------
    Halving every stake changes nothing after normalisation (differences 0, correlation 1);
    trading only half of the trades does:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> e = paired_effect(run, "fixed", "half", n_boot=200)
    >>> round(e["vt_sharpe_diff"], 8), round(e["corr_vt"], 4)
    (0.0, 1.0)
    >>> round(paired_effect(run, "fixed", "odd", n_boot=200)["corr_vt"], 4)
    0.6168
    """
    from bayes_mem.evaluation import performance as pf

    out: dict[str, Any] = {"control": control, "test": test}
    pairs = {
        "vt": (normalised_returns(run, control), normalised_returns(run, test)),
        "px": (exposure_returns(run, control), exposure_returns(run, test)),
    }
    n = pairs["vt"][0].size
    b = pf.default_block_size(n) if block_size is None else block_size
    idx = pf.circular_block_indices(n, b, n_boot, np.random.default_rng([seed, 40]))
    for prefix, (c, t) in pairs.items():
        for key, fn in _risk_stats().items():
            col = f"{prefix}_{key}_diff"
            if not np.any(c) or not np.any(t):
                out[col], out[f"{col}_low"], out[f"{col}_high"] = float("nan"), None, None
                continue
            reps = np.array([fn(t[i]) - fn(c[i]) for i in idx])
            lo, hi = np.quantile(reps, [0.025, 0.975])
            out[col], out[f"{col}_low"], out[f"{col}_high"] = fn(t) - fn(c), float(lo), float(hi)
    c, t = pairs["vt"]
    ok = np.std(c) > 0 and np.std(t) > 0
    out["corr_vt"] = float(np.corrcoef(c, t)[0, 1]) if ok else float("nan")
    return out


def factor_stats(run: BacktestRun, name: str = "ours") -> pd.DataFrame:
    """Per cut factor of ``name``'s acted decisions in the evaluation window (``factor_<cut>``
    of :func:`run_policy`): how many decisions had it, its mean, standard deviation and 5%,
    50%, 95% quantiles (dimensionless multipliers of the notional), and per limit how often it
    was the binding one.

    Examples
    --------
    A regime cut of 0.5 on the odd-day trades (``factor_regime`` as :func:`run_policy` records
    it); no limit bound any decision:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> run.policies["fixed"]["factor_regime"] = np.where(trades.open_idx % 2, 0.5, 1.0)
    >>> factor_stats(run, "fixed").round(3)
      policy        factor  decisions   mean    sd  q05  median  q95
    0  fixed        regime         29  0.759  0.25  0.5     1.0  1.0
    1  fixed  binding:none         29  1.000   NaN  NaN     NaN  NaN
    """
    res = run.policies[name]
    acted = res["act"] & (run.trades.open_idx >= run.config.warmup)
    rows = []
    for key in sorted(k for k in res if k.startswith("factor_")):
        v = res[key][acted]
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        q = np.quantile(v, [0.05, 0.5, 0.95])
        rows.append({"policy": name, "factor": key[len("factor_"):], "decisions": int(v.size),
                     "mean": float(v.mean()), "sd": float(v.std()), "q05": float(q[0]),
                     "median": float(q[1]), "q95": float(q[2])})  # fmt: skip
    binding = pd.Series(res["binding"][acted]).replace("", "none").value_counts(normalize=True)
    for limit, share in binding.items():
        rows.append({"policy": name, "factor": f"binding:{limit}", "decisions": int(acted.sum()),
                     "mean": float(share)})  # fmt: skip
    return pd.DataFrame(rows)


def dsr_table(run: BacktestRun, *, threshold: float = 0.5) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Deflated Sharpe ratio of every policy (Bailey & Lopez de Prado 2014) against the
    selection among the *independent* trials the policies represent: the policies' daily
    returns are clustered by correlation (:func:`~bayes_mem.evaluation.performance.
    cluster_trials`, average linkage, joined from ``threshold``); the number of trials is the
    number of clusters and the trial variance that of the clusters' Sharpe ratios. Policies
    with identical returns are one trial. Beside it, the naive DSR that counts every policy as
    an independent trial with the variance across all of them. Returns the table (per policy:
    ``sharpe`` annualised, ``psr``, ``dsr``, ``dsr_naive``, ``cluster``) and the trial
    summary (``n_trials``, ``eigen_trials``, ``trial_sr_variance``, ``sr0`` per period, the
    naive ones, the clusters' members).

    Examples
    --------
    The three policies are one cluster of correlated returns (one trial), where the naive count
    sees three:

    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> table, info = dsr_table(run)
    >>> info["n_trials"], info["naive_trials"], info["clusters"]
    (1, 3, [['fixed', 'half', 'odd']])
    >>> table[["policy", "cluster", "sharpe", "psr"]].round(3)
      policy  cluster  sharpe    psr
    0  fixed        0   0.731  0.715
    1   half        0   0.731  0.715
    2    odd        0   1.467  0.869
    """
    from bayes_mem.evaluation import performance as pf

    names = [n for n in run.policies if np.std(run.returns(n)) > 0]
    x = np.column_stack([run.returns(n) for n in names])
    cl = pf.cluster_trials(x, threshold=threshold)
    sr0 = pf.expected_max_sharpe(cl.n_clusters, cl.trial_sr_variance)
    srs = np.array([pf.sharpe_ratio(x[:, j], periods_per_year=1) for j in range(len(names))])
    naive_var = float(np.var(srs, ddof=1)) if len(names) > 1 else 0.0
    sr0_naive = pf.expected_max_sharpe(len(names), naive_var)
    rows = []
    for j, name in enumerate(names):
        r = x[:, j]

        def psr(bench: float, r: np.ndarray = r) -> float:
            return _safe(lambda: pf.probabilistic_sharpe_ratio(r, benchmark_sr=bench),
                         float("nan"))  # fmt: skip

        rows.append({
            "policy": name, "cluster": int(cl.labels[j]), "sharpe": srs[j] * math.sqrt(252),
            "psr": psr(0.0), "dsr": psr(sr0), "dsr_naive": psr(sr0_naive),
        })  # fmt: skip
    info = {
        "threshold": threshold, "policies": len(names), "n_trials": int(cl.n_clusters),
        "eigen_trials": cl.eigen_trials, "trial_sr_variance": cl.trial_sr_variance,
        "sr0_annual": sr0 * math.sqrt(252), "naive_trials": len(names),
        "naive_trial_sr_variance": naive_var, "sr0_naive_annual": sr0_naive * math.sqrt(252),
        "clusters": [[names[j] for j in np.flatnonzero(cl.labels == k)]
                     for k in range(cl.n_clusters)],
    }  # fmt: skip
    return pd.DataFrame(rows), info


def ab_verdict(
    run: BacktestRun, control: str, test: str, alpha: float = 0.05, *, normalise: bool = True
) -> dict[str, Any]:
    """Paired A/B of two policies (:class:`StrategyABTest`), on the vol-targeted returns of
    :func:`normalised_returns` (``normalise=False``: the raw returns): annualised Sharpe of
    each, Ledoit-Wolf p-value of the Sharpe difference (EWC long-run variance, Student-t
    reference), the Bayesian P(SR test > SR control) with its ``1 - alpha`` credible interval
    of the annualised difference (block-bootstrap posterior, blocks of at least the holding
    period ``run.config.hold``, seed 0), the EWC paired test of the mean daily difference (at
    a common volatility a difference of means is a difference of risk-adjusted return), the LW
    p-value on the raw returns for reference, and a verdict on the Sharpe difference.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from bayes_mem.evaluation.signals import SignalSpec, shadow_trades
    >>> days = pd.bdate_range("2020-01-01", periods=400)
    >>> walk = np.cumsum(0.01 * np.random.default_rng(0).standard_normal(400))
    >>> prices = pd.DataFrame({"A": 100 * np.exp(walk)}, index=days)
    >>> cfg = BacktestConfig(warmup=250)
    >>> trades = shadow_trades(prices, (SignalSpec("momentum", 20),), cfg.hold)
    >>> def policy(stake):  # the accounting of run_backtest, without the engine
    ...     pnl, pos = portfolio_pnl(prices, trades, stake)
    ...     return {"stake": stake, "act": stake > 0, "binding": np.full(len(trades), ""),
    ...             "returns": pnl.sum(axis=1) / cfg.portfolio_value,
    ...             "positions": pos / cfg.portfolio_value}
    >>> every = np.full(len(trades), 500.0)  # 500 on every trade
    >>> run = BacktestRun(prices, trades, cfg, [], {"fixed": policy(every),
    ...                   "half": policy(every / 2),
    ...                   "odd": policy(every * (trades.open_idx % 2))}, {})
    >>> ab_verdict(run, "fixed", "half")["verdict"]
    'identical daily returns: the switch changed nothing here'

    Two different books run the full tests (skipped here: the Bayesian posterior's bootstrap
    draws take about 1.5 s):

    >>> v = ab_verdict(run, "fixed", "odd")  # doctest: +SKIP
    >>> v["verdict"], round(v["prob_test_better"], 2)  # doctest: +SKIP
    ('no significant Sharpe difference (p >= 0.05)', 0.82)
    """
    from bayes_mem.evaluation.abtest import StrategyABTest
    from bayes_mem.evaluation.performance import sharpe_difference_test

    raw_c, raw_t = run.returns(control), run.returns(test)
    if normalise:
        c, t = normalised_returns(run, control), normalised_returns(run, test)
    else:
        c, t = raw_c, raw_t
    base = {"control": control, "test": test, "normalised": normalise}
    if np.array_equal(c, t):
        return {**base, "sharpe_control": _safe_sharpe(c), "sharpe_test": _safe_sharpe(t),
                "sharpe_diff_annual": 0.0,
                "verdict": "identical daily returns: the switch changed nothing here"}  # fmt: skip
    ab = StrategyABTest(_Replay(c), _Replay(t))
    ab.run_parallel(range(c.size))
    try:
        res = ab.statistical_significance(alpha, min_block=run.config.hold, seed=0)
    except ValueError as exc:
        return {**base, "verdict": f"untestable: {exc}"}
    sd = res["sharpe_difference"]
    p_sr = None if sd is None else sd["p_value"]
    bayes = res["bayes"]
    sr_c, sr_t = res["sharpe_control"], res["sharpe_test"]
    try:
        p_raw = sharpe_difference_test(raw_t, raw_c, method="ewc").p_value
    except ValueError:
        p_raw = None
    if p_sr is not None and p_sr < alpha:
        verdict = f"{test} {'better' if sd['difference'] > 0 else 'worse'} (Sharpe, p < {alpha})"
    else:
        verdict = f"no significant Sharpe difference (p >= {alpha})"
    ann = math.sqrt(252)
    return {
        **base,
        "sharpe_control": sr_c,
        "sharpe_test": sr_t,
        "sharpe_diff_annual": None if sd is None else sd["difference"] * ann,
        "sharpe_diff_p": p_sr,
        "prob_test_better": None if bayes is None else bayes["prob_positive"],
        "sharpe_diff_ci_low": None if bayes is None else bayes["ci_low"] * ann,
        "sharpe_diff_ci_high": None if bayes is None else bayes["ci_high"] * ann,
        "paired_t_p": res["paired"]["p"],
        "sharpe_diff_p_raw": p_raw,
        "verdict": verdict,
    }


# ---------------------------------------------------------------------------- the suite entry


def quick_config() -> BacktestConfig:
    """Small settings for tests/CI: two nightly fits on the last 650 days.

    Examples
    --------
    >>> cfg = quick_config()
    >>> cfg.warmup, cfg.cadence, cfg.returns_window, QUICK_DAYS
    (300, 200, 300, 650)
    """
    return BacktestConfig(warmup=300, cadence=200, fit_draws=1000, fit_tune=400,
                          returns_window=300, returns_draws=50)  # fmt: skip


QUICK_DAYS = 650
FULL_CADENCE = 126


UNIVERSES = ("wide", "arch3")


def _load_universe(universe: str) -> pd.DataFrame:
    if universe == "wide":
        return load_universe()
    if universe == "arch3":
        return load_prices()
    raise ValueError(f"universe must be one of {UNIVERSES}, got {universe!r}")


def write_results(
    out_dir: Path,
    *,
    seed: int = 0,
    quick: bool = False,
    universe: str = "wide",
    command: str | None = None,
) -> dict:
    """Run the backtest and write into ``out_dir``: ``policy_backtest_metrics.csv/.md`` (raw
    metrics), ``policy_backtest_normalised.csv/.md`` (every policy at the same ex-ante
    volatility and per unit of gross exposure, :func:`normalised_metrics`),
    ``policy_backtest_effects.csv/.md`` (each module's paired effect after normalisation,
    :func:`paired_effect`), ``policy_backtest_factors.csv`` (:func:`factor_stats` of ours),
    ``policy_backtest_dsr.csv/.md`` (:func:`dsr_table`), ``policy_backtest_ab.csv/.md`` (A/B
    on the vol-targeted returns, :func:`ab_verdict`), ``policy_backtest_nights.csv`` and
    ``policy_backtest_equity.png``; return a JSON-serialisable summary with a "markdown"
    section.

    ``universe``: ``"wide"`` (:func:`~bayes_mem.evaluation.signals.load_universe`: eight
    series, an unbalanced panel 1999-2022) or ``"arch3"`` (the earlier S&P 500, NASDAQ and WTI
    on their common dates, 1999-2018). quick=True: the last 650 days, two nightly fits
    (< 1 minute). Full: all dates, a nightly fit every :data:`FULL_CADENCE` days.
    ``command``: the command line recorded with the figure and the summary (default: the
    suite's ``bayes-mem evaluate ... --only policy``).

    Examples
    --------
    Skipped: even the quick run takes close to a minute (two nightly fits, every policy
    replayed):

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:  # doctest: +SKIP
    ...     summary = write_results(d, quick=True)
    ...     print("markdown" in summary)
    True
    """
    from bayes_mem.evaluation.suite import _git_commit

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prices = _load_universe(universe)
    if quick:
        prices = prices.iloc[-QUICK_DAYS:]
        prices = prices.loc[:, prices.notna().any()]
        config = quick_config()
    else:
        config = BacktestConfig(cadence=FULL_CADENCE)
    if command is None:
        command = (f"bayes-mem evaluate --out DIR --seed {seed} --only policy"
                   + (" --quick" if quick else ""))  # fmt: skip
    commit = _git_commit()
    t0 = time.perf_counter()
    run = run_backtest(prices, config=config, seed=seed)
    elapsed = time.perf_counter() - t0
    # the daily series first: the statistics below can be recomputed from them without a rerun
    dates = prices.index[run.start :]
    daily = {f"{k}:{n}": v for n in run.policies for k, v in (
        ("return", run.returns(n)), ("gross", np.abs(run.positions(n)).sum(axis=1)))}  # fmt: skip
    pd.DataFrame(daily, index=pd.Index(dates, name="date")).to_csv(
        out / "policy_backtest_daily.csv", float_format="%.8g"
    )
    n_boot = 200 if quick else 1000
    metrics = pd.DataFrame([policy_metrics(run, n, n_boot=n_boot, seed=seed)
                            for n in run.policies])  # fmt: skip
    normalised = pd.DataFrame([normalised_metrics(run, n, n_boot=n_boot, seed=seed)
                               for n in run.policies])  # fmt: skip
    ablations = [n for n in run.policies if n.startswith("ours-")]
    effects = pd.DataFrame([paired_effect(run, "ours", n, n_boot=n_boot, seed=seed)
                            for n in ablations])  # fmt: skip
    factors = factor_stats(run, "ours")
    dsr, dsr_info = dsr_table(run)
    pairs = [("baseline", "ours"), ("baseline_fixed", "ours")] + [("ours", n) for n in ablations]
    ab = pd.DataFrame([ab_verdict(run, c, t) for c, t in pairs])
    nights = nights_table(run.calibrations)
    for name, frame in (("metrics", metrics), ("normalised", normalised), ("effects", effects),
                        ("factors", factors), ("dsr", dsr), ("ab", ab)):  # fmt: skip
        frame.to_csv(out / f"policy_backtest_{name}.csv", index=False, float_format="%.6g")
    nights.drop(columns=["seconds"]).to_csv(out / "policy_backtest_nights.csv", index=False)
    md = {
        "metrics": _metrics_markdown(metrics),
        "normalised": _normalised_markdown(normalised),
        "effects": _effects_markdown(effects),
        "dsr": _dsr_markdown(dsr, dsr_info),
        "ab": _ab_markdown(ab),
    }
    for name, text in md.items():
        (out / f"policy_backtest_{name}.md").write_text(text + "\n")
    made = f"`{command}` at commit {commit or 'unknown'}"
    _plot_equity(run, out / "policy_backtest_equity.png", caption=made)
    counts = nights["status"].value_counts().to_dict()
    window = (str(prices.index[run.start].date()), str(prices.index[-1].date()))
    spans = {
        str(c): [str(prices[c].first_valid_index().date()),
                 str(prices[c].last_valid_index().date())]
        for c in prices.columns
    }  # fmt: skip
    summary = {
        "seed": seed,
        "quick": quick,
        "universe": universe,
        "symbols": spans,
        "command": command,
        "git_commit": commit,
        "window": list(window),
        "days": int(len(prices) - run.start),
        "config": dataclasses.asdict(config),
        "normalisation": {
            "target_annual_vol": TARGET_VOL,
            "halflife_days": VOL_HALFLIFE,
            "warmup_days": VOL_WARMUP,
        },
        "nights": len(nights),
        "nights_active": int(counts.get("active", 0)),
        "nights_rejected": int(counts.get("rejected", 0)),
        "nights_error": int(counts.get("error", 0)),
        # per component: the nights' verdict kinds and the live version's largest age
        "component_kinds": {
            comp: nights[f"{comp}_kind"].dropna().value_counts().astype(int).to_dict()
            for comp in ("winrate", "returns", "regime")
        },
        "component_max_age_days": {
            comp: None
            if nights[f"{comp}_age_days"].dropna().empty
            else int(nights[f"{comp}_age_days"].dropna().max())
            for comp in ("winrate", "returns", "regime")
        },
        "seconds": round(elapsed, 1),
        "metrics": json.loads(metrics.to_json(orient="records")),
        "normalised": json.loads(normalised.to_json(orient="records")),
        "effects": json.loads(effects.to_json(orient="records")),
        "factors": json.loads(factors.to_json(orient="records")),
        "dsr": json.loads(dsr.to_json(orient="records")),
        "dsr_trials": dsr_info,
        "ab": json.loads(ab.to_json(orient="records")),
    }
    summary["markdown"] = _summary_markdown(summary, md)
    (out / "policy_backtest_summary.json").write_text(
        json.dumps({k: v for k, v in summary.items() if k != "seconds"}, indent=1, sort_keys=True)
    )
    return summary


def _ci(row: pd.Series, key: str, fmt: str) -> str:
    est, lo, hi = row[key], row.get(f"{key}_low"), row.get(f"{key}_high")
    if est is None or (isinstance(est, float) and math.isnan(est)):
        return "-"
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return format(est, fmt)
    return f"{format(est, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def _metrics_markdown(metrics: pd.DataFrame) -> str:
    header = ["policy", "Sharpe", "max drawdown", "daily win rate", "CVaR 97.5%", "turnover/day",
              "trades", "trade win rate", "gross exposure (mean / max)", "worst day"]  # fmt: skip
    rows = [
        [str(r["policy"]), _ci(r, "sharpe", ".2f"), _ci(r, "max_drawdown", ".2%"),
         _ci(r, "win_rate", ".1%"), _ci(r, "cvar_975", ".3%"), _ci(r, "turnover", ".3f"),
         str(r["trades"]), f"{r['trade_win_rate']:.1%}",
         f"{r['mean_gross_exposure']:.1%} / {r['max_gross_exposure']:.0%}",
         f"{r['worst_day']:.2%}"]
        for _, r in metrics.iterrows()
    ]  # fmt: skip
    return markdown_rows(header, rows)


def _fmt(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return format(x, fmt)


def _ab_markdown(ab: pd.DataFrame) -> str:
    header = ["control", "test", "Sharpe control", "Sharpe test", "difference [95% CrI]",
              "p (LW, EWC)", "P(SR test > SR control)", "p (paired mean, EWC)",
              "p (LW, raw returns)", "verdict"]  # fmt: skip
    rows = []
    for _, r in ab.iterrows():
        diff = _fmt(r.get("sharpe_diff_annual"), "+.2f")
        lo, hi = r.get("sharpe_diff_ci_low"), r.get("sharpe_diff_ci_high")
        if diff != "-" and _fmt(lo, ".2f") != "-":
            diff += f" [{lo:+.2f}, {hi:+.2f}]"
        rows.append([
            str(r["control"]), str(r["test"]), _fmt(r.get("sharpe_control"), ".2f"),
            _fmt(r.get("sharpe_test"), ".2f"), diff, _fmt(r.get("sharpe_diff_p"), ".3f"),
            _fmt(r.get("prob_test_better"), ".2f"), _fmt(r.get("paired_t_p"), ".3f"),
            _fmt(r.get("sharpe_diff_p_raw"), ".3f"), str(r["verdict"]),
        ])  # fmt: skip
    return markdown_rows(header, rows)


def _normalised_markdown(frame: pd.DataFrame) -> str:
    vol = f"{TARGET_VOL:.0%} vol"
    header = ["policy", f"Sharpe at {vol}", f"CVaR 97.5% at {vol}", f"max drawdown at {vol}",
              "realised vol", "mean scale", "Sharpe per exposure", "CVaR 97.5% per unit gross",
              "max drawdown per unit gross"]  # fmt: skip
    rows = [
        [str(r["policy"]), _ci(r, "vt_sharpe", ".2f"), _ci(r, "vt_cvar_975", ".3%"),
         _ci(r, "vt_max_drawdown", ".1%"), _fmt(r["vt_vol"], ".1%"),
         _fmt(r["vt_mean_scale"], ".2f"), _ci(r, "px_sharpe", ".2f"),
         _ci(r, "px_cvar_975", ".2%"), _ci(r, "px_max_drawdown", ".0%")]
        for _, r in frame.iterrows()
    ]  # fmt: skip
    return markdown_rows(header, rows)


def _diff_ci(r: pd.Series, key: str, fmt: str) -> str:
    est, lo, hi = r.get(key), r.get(f"{key}_low"), r.get(f"{key}_high")
    if est is None or (isinstance(est, float) and math.isnan(est)):
        return "-"
    text = format(est, "+" + fmt)
    if lo is not None and not (isinstance(lo, float) and math.isnan(lo)):
        text += f" [{format(lo, '+' + fmt)}, {format(hi, '+' + fmt)}]"
        if lo > 0 or hi < 0:
            text = f"**{text}**"
    return text


def _effects_markdown(frame: pd.DataFrame) -> str:
    header = ["ours ->", "corr (vol-targeted)", "Sharpe at common vol",
              "CVaR 97.5% at common vol", "max drawdown at common vol",
              "CVaR 97.5% per unit gross", "max drawdown per unit gross"]  # fmt: skip
    rows = [
        [str(r["test"]), _fmt(r["corr_vt"], ".3f"), _diff_ci(r, "vt_sharpe_diff", ".2f"),
         _diff_ci(r, "vt_cvar_975_diff", ".3%"), _diff_ci(r, "vt_max_drawdown_diff", ".1%"),
         _diff_ci(r, "px_cvar_975_diff", ".2%"), _diff_ci(r, "px_max_drawdown_diff", ".0%")]
        for _, r in frame.iterrows()
    ]  # fmt: skip
    return markdown_rows(header, rows)


def _dsr_markdown(frame: pd.DataFrame, info: dict[str, Any]) -> str:
    header = ["policy", "trial cluster", "Sharpe", "PSR (SR > 0)", "DSR (independent trials)",
              "DSR (every policy a trial)"]  # fmt: skip
    rows = [
        [str(r["policy"]), str(r["cluster"]), f"{r['sharpe']:.2f}", f"{r['psr']:.3f}",
         f"{r['dsr']:.3f}", f"{r['dsr_naive']:.3f}"]
        for _, r in frame.iterrows()
    ]  # fmt: skip
    lines = [markdown_rows(header, rows)]
    clusters = "; ".join("{" + ", ".join(c) + "}" for c in info["clusters"])
    lines += [
        "",
        f"Independent trials: {info['n_trials']} correlation clusters (average linkage, joined "
        f"from correlation {info['threshold']}) of {info['policies']} policies: {clusters}; "
        f"eigenvalue estimate {info['eigen_trials']:.2f}. Trial variance of the clusters' "
        f"per-day Sharpe ratios {info['trial_sr_variance']:.3g}, expected maximum Sharpe under "
        f"the null {info['sr0_annual']:.2f} a year (naive: {info['naive_trials']} trials, "
        f"variance {info['naive_trial_sr_variance']:.3g}, {info['sr0_naive_annual']:.2f}).",
    ]
    return "\n".join(lines)


def _effect_words(e: dict[str, Any], key: str) -> str:
    est, lo, hi = e.get(key), e.get(f"{key}_low"), e.get(f"{key}_high")
    if est is None or lo is None:
        return "untested"
    if lo > 0:
        return "higher"
    if hi < 0:
        return "lower"
    return "no clear change"


def _summary_markdown(s: dict[str, Any], md: dict[str, str]) -> str:
    m = {r["policy"]: r for r in s["metrics"]}
    nm = {r["policy"]: r for r in s["normalised"]}
    eff = {r["test"]: r for r in s["effects"]}
    main = next(r for r in s["ab"] if r["control"] == "baseline" and r["test"] == "ours")
    syms = ", ".join(f"{k} {v[0][:4]}-{v[1][:4]}" for k, v in s["symbols"].items())
    bullets = [
        f"Universe ({s['universe']}): {syms}; walk-forward on {s['days']} days "
        f"({s['window'][0]} to {s['window'][1]}), nightly fit every {s['config']['cadence']} "
        f"days: {s['nights']} fits, {s['nights_active']} published, {s['nights_rejected']} "
        f"rejected by the gate (previous priors kept), {s['nights_error']} errors.",
        f"Raw: ours vs baseline Sharpe {_fmt(m['ours']['sharpe'], '.2f')} vs "
        f"{_fmt(m['baseline']['sharpe'], '.2f')}; max drawdown "
        f"{_fmt(m['ours']['max_drawdown'], '.2%')} vs {_fmt(m['baseline']['max_drawdown'], '.2%')}"
        f" at mean gross exposure {m['ours']['mean_gross_exposure']:.1%} vs "
        f"{m['baseline']['mean_gross_exposure']:.1%} of capital.",
        f"At the same ex-ante volatility ({s['normalisation']['target_annual_vol']:.0%} a year, "
        f"causal EWMA, half-life {s['normalisation']['halflife_days']:g} days): ours Sharpe "
        f"{_fmt(nm['ours']['vt_sharpe'], '.2f')} vs baseline "
        f"{_fmt(nm['baseline']['vt_sharpe'], '.2f')}, CVaR 97.5% "
        f"{_fmt(nm['ours']['vt_cvar_975'], '.3%')} vs {_fmt(nm['baseline']['vt_cvar_975'], '.3%')}"
        f", max drawdown {_fmt(nm['ours']['vt_max_drawdown'], '.1%')} vs "
        f"{_fmt(nm['baseline']['vt_max_drawdown'], '.1%')}; A/B on these returns: LW p = "
        f"{_fmt(main.get('sharpe_diff_p'), '.3f')}, P(SR ours > SR baseline) = "
        f"{_fmt(main.get('prob_test_better'), '.2f')}: {main['verdict']}.",
    ]
    for name, e in eff.items():
        bullets.append(
            f"Switching off {name[len('ours-no_') :]} ({name}): CVaR per unit gross "
            f"{_effect_words(e, 'px_cvar_975_diff')}, CVaR at common vol "
            f"{_effect_words(e, 'vt_cvar_975_diff')}, Sharpe at common vol "
            f"{_effect_words(e, 'vt_sharpe_diff')} (paired block bootstrap, 95%); vol-targeted "
            f"returns correlate {_fmt(e['corr_vt'], '.3f')} with ours'."
        )
    t = s["dsr_trials"]
    ours_dsr = next(r for r in s["dsr"] if r["policy"] == "ours")
    bullets.append(
        f"Deflated Sharpe: {t['n_trials']} independent trials among {t['policies']} policies "
        f"(eigenvalue estimate {t['eigen_trials']:.2f}); ours DSR {ours_dsr['dsr']:.3f} "
        f"(naive, every policy a trial: {ours_dsr['dsr_naive']:.3f})."
    )
    return "\n".join([
        "### Policy backtest on real prices", "",
        f"_Made by {'`' + s['command'] + '`'} at commit {s['git_commit'] or 'unknown'}, "
        f"seed {s['seed']}._", "",
        "Raw metrics:", "", md["metrics"], "",
        "Risk-normalised (each policy scaled to the same ex-ante volatility, and per unit of "
        "gross exposure; 95% block-bootstrap intervals):", "", md["normalised"], "",
        "Each module's effect after normalisation (ablation minus ours, paired block bootstrap "
        "95%; bold: the interval excludes 0):", "", md["effects"], "",
        "Deflated Sharpe ratio:", "", md["dsr"], "",
        "A/B on the vol-targeted returns:", "", md["ab"], "",
        *[f"- {b}" for b in bullets],
    ])  # fmt: skip


#: policies renamed since an older run (the engine's slot names): old name -> new name
RENAMED = {"ours-no_cvar": "ours-no_budget"}


def before_after_markdown(before: Path, after: Path) -> str:
    """Two runs of :func:`write_results` (folders), side by side: what changed per policy in
    exposure, drawdown, CVaR, Sharpe (with the bootstrap intervals), turnover and trades, then
    both runs' tables as written. Policies are matched by name (:data:`RENAMED` maps old
    names).

    Examples
    --------
    Two tiny result folders whose only change is the Sharpe ratio, 0.5 -> 0.8:

    >>> import json
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> def fake_run(folder, sharpe):  # the files write_results leaves, reduced to one policy
    ...     folder.mkdir()
    ...     (folder / "policy_backtest_summary.json").write_text(json.dumps({
    ...         "days": 149, "window": ["2020-12-17", "2021-07-14"], "seed": 0, "quick": True,
    ...         "nights": 2, "nights_active": 2, "nights_rejected": 0, "nights_error": 0}))
    ...     pd.DataFrame({"policy": ["ours"], "mean_gross_exposure": [0.05],
    ...                   "max_drawdown": [0.01], "cvar_975": [0.001], "sharpe": [sharpe],
    ...                   "turnover": [0.003], "trades": [29]}).to_csv(
    ...         folder / "policy_backtest_metrics.csv", index=False)
    ...     for name in ("metrics", "ab"):
    ...         (folder / f"policy_backtest_{name}.md").write_text(f"({name} table)")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     fake_run(Path(d) / "before", 0.5)
    ...     fake_run(Path(d) / "after", 0.8)
    ...     text = before_after_markdown(Path(d) / "before", Path(d) / "after")
    >>> print(text.splitlines()[11])
    | ours | 5.0% -> 5.0% | 1.00% -> 1.00% | 0.100% -> 0.100% | 0.50 -> 0.80 | 0.003 -> 0.003 |
      29 -> 29 |
    """
    runs = {}
    for tag, folder in (("before", Path(before)), ("after", Path(after))):
        summary = json.loads((folder / "policy_backtest_summary.json").read_text())
        metrics = pd.read_csv(folder / "policy_backtest_metrics.csv")
        metrics["policy"] = metrics["policy"].map(lambda n: RENAMED.get(n, n))
        runs[tag] = (summary, metrics.set_index("policy"), folder)
    (sb, mb, fb), (sa, ma, fa) = runs["before"], runs["after"]
    header = ["policy", "gross exposure", "max drawdown", "CVaR 97.5% (daily)", "Sharpe [95%]",
              "turnover/day", "trades"]  # fmt: skip
    rows = []
    for name in [n for n in ma.index if n in mb.index]:
        b, a = mb.loc[name], ma.loc[name]
        rows.append([
            str(name), f"{b['mean_gross_exposure']:.1%} -> {a['mean_gross_exposure']:.1%}",
            f"{b['max_drawdown']:.2%} -> {a['max_drawdown']:.2%}",
            f"{b['cvar_975']:.3%} -> {a['cvar_975']:.3%}",
            f"{_ci(b, 'sharpe', '.2f')} -> {_ci(a, 'sharpe', '.2f')}",
            f"{b['turnover']:.3f} -> {a['turnover']:.3f}",
            f"{int(b['trades'])} -> {int(a['trades'])}",
        ])  # fmt: skip
    lines = [markdown_rows(header, rows)]

    def runline(s: dict[str, Any]) -> str:
        return (f"{s['days']} days ({s['window'][0]} to {s['window'][1]}), seed {s['seed']}"
                f"{', quick settings' if s['quick'] else ''}; {s['nights']} nightly fits, "
                f"{s['nights_active']} published, {s['nights_rejected']} rejected, "
                f"{s['nights_error']} errors")  # fmt: skip

    return "\n".join([
        "# Policy backtest before and after the engine's sizing fixes", "",
        "Written by `python -m bayes_mem.evaluation.policy_backtest --compare BEFORE AFTER "
        "--out FILE` from two result folders of the same command (`--out DIR --seed N`).", "",
        f"- before ({Path(before).name}): {runline(sb)}",
        f"- after ({Path(after).name}): {runline(sa)}", "",
        "Per policy, before -> after (" + ", ".join(f"{o} is now {n}" for o, n in
                                                 RENAMED.items()) + "):", "",
        *lines, "",
        "## Before", "", (fb / "policy_backtest_metrics.md").read_text().strip(), "",
        (fb / "policy_backtest_ab.md").read_text().strip(), "",
        "## After", "", (fa / "policy_backtest_metrics.md").read_text().strip(), "",
        (fa / "policy_backtest_ab.md").read_text().strip(), "",
    ])  # fmt: skip


def _plot_equity(run: BacktestRun, path: Path, caption: str = "") -> None:
    from bayes_mem.plotting import pyplot

    plt = pyplot()

    dates = run.prices.index[run.start :]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (title, fn) in zip(axes, (
        ("raw (constant capital)", run.returns),
        (f"each scaled to {TARGET_VOL:.0%} ex-ante vol",
         lambda n: normalised_returns(run, n)),
    ), strict=True):  # fmt: skip
        for name in run.policies:
            style = "-" if name in ("baseline", "ours", "baseline_fixed") else ":"
            ax.plot(dates, np.cumsum(fn(name)), style, lw=1.2, label=name)
        ax.set_ylabel("cumulative pnl / capital")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=2)
    symbols = ", ".join(str(c) for c in run.prices.columns)
    fig.suptitle(f"Policy backtest: {symbols}", fontsize=10)
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, family="monospace")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bayes_mem.evaluation.policy_backtest --out DIR [--seed N] [--quick]``.

    Examples
    --------
    The ``--compare`` mode (no run: two result folders side by side, see
    :func:`before_after_markdown`):

    >>> import json
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> def fake_run(folder, sharpe):  # the files write_results leaves, reduced to one policy
    ...     folder.mkdir()
    ...     (folder / "policy_backtest_summary.json").write_text(json.dumps({
    ...         "days": 149, "window": ["2020-12-17", "2021-07-14"], "seed": 0, "quick": True,
    ...         "nights": 2, "nights_active": 2, "nights_rejected": 0, "nights_error": 0}))
    ...     pd.DataFrame({"policy": ["ours"], "mean_gross_exposure": [0.05],
    ...                   "max_drawdown": [0.01], "cvar_975": [0.001], "sharpe": [sharpe],
    ...                   "turnover": [0.003], "trades": [29]}).to_csv(
    ...         folder / "policy_backtest_metrics.csv", index=False)
    ...     for name in ("metrics", "ab"):
    ...         (folder / f"policy_backtest_{name}.md").write_text(f"({name} table)")
    >>> import contextlib
    >>> import io
    >>> with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()):
    ...     fake_run(Path(d) / "before", 0.5)
    ...     fake_run(Path(d) / "after", 0.8)
    ...     code = main(["--compare", f"{d}/before", f"{d}/after", "--out", f"{d}/cmp.md"])
    ...     written = (Path(d) / "cmp.md").read_text()
    >>> code, written.splitlines()[0]
    (0, "# Policy backtest before and after the engine's sizing fixes")
    """
    import argparse

    parser = argparse.ArgumentParser(description="Policy backtest on real prices (issue 6)")
    parser.add_argument("--out", type=Path, required=True,
                        help="results folder (with --compare: the Markdown file)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="the last 650 days, two fits")
    parser.add_argument("--universe", choices=UNIVERSES, default="wide",
                        help="wide: eight series 1999-2022 (default); arch3: S&P 500, NASDAQ, "
                             "WTI on common dates")  # fmt: skip
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="no run: write two result folders side by side to --out")  # fmt: skip
    args = parser.parse_args(argv)
    if args.compare:
        text = before_after_markdown(*args.compare)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = " ".join(["python -m bayes_mem.evaluation.policy_backtest", "--out",
                        str(args.out), "--seed", str(args.seed), "--universe", args.universe]
                       + (["--quick"] if args.quick else []))  # fmt: skip
    summary = write_results(args.out, seed=args.seed, quick=args.quick, universe=args.universe,
                            command=command)  # fmt: skip
    print(summary["markdown"])
    print(f"\nwritten to {args.out} in {summary['seconds']:.0f} s")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
