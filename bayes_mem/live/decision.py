"""What the engine answers when a signal fires: a sized, explained :class:`Decision`.

A decision says whether to act, in which direction and how much: ``notional`` is the position's
value in the account currency (0 when the engine does not act), ``quantity`` the number of units
when the caller gave a price. It carries everything it was made from, so it can be explained to
a trader and logged for an analyst:

- ``p_win``: the sampled win probability (the Thompson draw the act rule used);
- ``limits``: each sizing rule's notional limit (currency), e.g. ``{"cvar": 41_000.0,
  "kelly": 23_500.0, "portfolio_es": 60_000.0}``; the smallest one is ``binding``;
- ``factors``: each multiplicative cut in [0, 1] applied after the limits, e.g.
  ``{"breakdown": 0.9, "regime": 1.0}``;
- ``detail``: per module, the numbers behind its answer (ES per unit notional over the holding
  period, the posterior mean win and loss sizes, the position's marginal portfolio ES ...).

``notional = min(limits) x prod(factors)`` when the rule acts. :meth:`Decision.to_dict` is the
machine-readable form that the engine logs; :meth:`Decision.explain` the one-line story.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal

SIDES: tuple[Literal["long", "short"], ...] = ("long", "short")


@dataclass(frozen=True)
class Decision:
    """One signal decision. Units: currency for ``notional`` and ``limits``; ``quantity`` in
    units of the instrument (``notional / price``, rounded down) when a price was given.

    Examples
    --------
    The engine makes them (:meth:`~bayes_mem.live.engine.TradingEngine.signal`); by hand, a
    decision bound by the Kelly limit, and a declined one:

    >>> import dataclasses
    >>> d = Decision(
    ...     id="spy_mom@2024-01-03", config="live", signal="spy_mom", family="momentum",
    ...     symbol="SPY", side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0,
    ...     price=470.0, p_win=0.5734, rule="thompson", binding="kelly",
    ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
    ...     factors={"breakdown": 1.0, "regime": 1.0},
    ... )
    >>> print(d.explain())  # doctest: +NORMALIZE_WHITESPACE
    spy_mom -> short SPY (5d): thompson p=0.573; limits cvar 41,000, kelly 23,500 *,
    portfolio_es unlimited; -> 23,500.00 (50 units at 470)
    >>> d.signed_notional, d.to_dict()["limits"]  # JSON-ready: no infinity
    (-23500.0, {'cvar': 41000.0, 'kelly': 23500.0, 'portfolio_es': None})
    >>> no = dataclasses.replace(d, act=False, notional=0.0, quantity=0.0, reason="edge <= 0")
    >>> no.explain()
    'spy_mom -> short SPY (5d): thompson p=0.573; no trade (edge <= 0)'
    """

    id: str  # the trade id to settle this decision with (the decision key when one was given)
    config: str  # the engine configuration that made it ("live", "shadow" ...)
    signal: str
    family: str
    symbol: str
    side: str  # "long" or "short"
    horizon: int  # expected holding period, days
    act: bool
    notional: float  # currency, >= 0; 0 when not acting
    quantity: float | None
    price: float | None
    p_win: float  # the sampled win probability
    rule: str  # the decision rule that decided (e.g. "thompson", "threshold")
    binding: str | None  # which limit bound ("cvar", "kelly", "portfolio_es", "fixed" ...)
    limits: dict[str, float] = field(default_factory=dict)
    factors: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    prior_version: int | None = None
    key: str | None = None
    reason: str = ""  # why not acting, when not acting
    # the prior set's components older than the engine's max_component_age_days when decided
    # (e.g. "winrate v3 (data through 2008-07-28, 412 d > 10 d)"); empty: none
    stale_priors: tuple[str, ...] = ()
    decided_at: dt.datetime | None = None  # timezone-aware (UTC), set by the engine
    # the shadow configuration's decision on the same event (not traded), when one runs
    shadow: Decision | None = field(default=None, repr=False, compare=False)

    @classmethod
    def _of(cls, fields: dict[str, Any]) -> Decision:
        """The decision of every field's value in ``fields`` (all of them but ``shadow``),
        without the generated ``__init__``: a frozen dataclass's sets each of its fields
        through ``object.__setattr__`` (~4 us); the engine's hot path builds them here."""
        obj = object.__new__(cls)
        fields["shadow"] = None
        obj.__dict__.update(fields)
        return obj

    @property
    def direction(self) -> int:
        """+1 for a long, -1 for a short.

        Examples
        --------
        A short decision points down:

        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0, price=470.0,
        ...     p_win=0.5734, rule="thompson", binding="kelly",
        ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
        ... )
        >>> d.direction
        -1
        """
        return 1 if self.side == "long" else -1

    @property
    def signed_notional(self) -> float:
        """Notional with the direction's sign (currency).

        Examples
        --------
        A short of 23,500 currency is -23,500 in the book:

        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0, price=470.0,
        ...     p_win=0.5734, rule="thompson", binding="kelly",
        ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
        ... )
        >>> d.signed_notional
        -23500.0
        """
        return self.direction * self.notional

    def explain(self) -> str:
        """One line: the rule's verdict, each limit, each factor and the result.

        Examples
        --------
        Kelly bound (marked ``*``) at 23,500; 50 units at 470 (23,500 / 470 = 50):

        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0, price=470.0,
        ...     p_win=0.5734, rule="thompson", binding="kelly",
        ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
        ... )
        >>> print(d.explain())  # doctest: +NORMALIZE_WHITESPACE
        spy_mom -> short SPY (5d): thompson p=0.573; limits cvar 41,000, kelly 23,500 *,
        portfolio_es unlimited; -> 23,500.00 (50 units at 470)
        """
        head = (
            f"{self.signal} -> {self.side} {self.symbol} ({self.horizon}d): "
            f"{self.rule} p={self.p_win:.3f}"
        )
        stale = f"; stale priors: {', '.join(self.stale_priors)}" if self.stale_priors else ""
        if not self.act:
            return f"{head}; no trade ({self.reason or 'rule declined'}){stale}"
        parts = [head]
        if self.limits:
            parts.append(
                "limits "
                + ", ".join(
                    f"{k} {_money(v)}{' *' if k == self.binding else ''}"
                    for k, v in self.limits.items()
                )
            )
        cuts = [f"{k} x{v:.3f}" for k, v in self.factors.items() if v != 1.0]
        if cuts:
            parts.append(", ".join(cuts))
        size = f"-> {self.notional:,.2f}"
        if self.quantity is not None:
            size += f" ({self.quantity:g} units at {self.price:g})"
        parts.append(size)
        return "; ".join(parts) + stale

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (infinities as ``None``): what the engine logs.

        Examples
        --------
        The infinite portfolio-ES limit becomes ``None`` (JSON has no infinity):

        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0, price=470.0,
        ...     p_win=0.5734, rule="thompson", binding="kelly",
        ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
        ... )
        >>> doc = d.to_dict()
        >>> doc["limits"], doc["side"], doc["decided_at"]
        ({'cvar': 41000.0, 'kelly': 23500.0, 'portfolio_es': None}, 'short', None)
        >>> import json
        >>> json.loads(json.dumps(doc))["limits"]["portfolio_es"] is None
        True
        """
        return {
            "id": self.id,
            "config": self.config,
            "signal": self.signal,
            "family": self.family,
            "symbol": self.symbol,
            "side": self.side,
            "horizon": self.horizon,
            "act": self.act,
            "notional": self.notional,
            "quantity": self.quantity,
            "price": self.price,
            "p_win": self.p_win,
            "rule": self.rule,
            "binding": self.binding,
            "limits": {k: _finite(v) for k, v in self.limits.items()},
            "factors": dict(self.factors),
            "detail": _json_ready(self.detail),
            "prior_version": self.prior_version,
            "key": self.key,
            "reason": self.reason,
            "stale_priors": list(self.stale_priors),
            "decided_at": None if self.decided_at is None else self.decided_at.isoformat(),
            "explain": self.explain(),
        }

    def decision_row(self) -> dict[str, Any]:
        """The row of the store's ``decisions`` table (:mod:`bayes_mem.live.recording`): its
        ``key`` column holds the decision id (the key when one was given), the trade id to
        settle it with; ``detail`` holds the rest of :meth:`to_dict`.

        Examples
        --------
        The ``key`` column holds the decision id; the rest goes to ``detail``:

        >>> import datetime as dt
        >>> d = Decision(
        ...     id="k1", config="live", signal="spy_mom", family="momentum", symbol="SPY",
        ...     side="short", horizon=5, act=True, notional=23_500.0, quantity=50.0, price=470.0,
        ...     p_win=0.5734, rule="thompson", binding="kelly",
        ...     limits={"cvar": 41_000.0, "kelly": 23_500.0, "portfolio_es": float("inf")},
        ... )
        >>> import dataclasses
        >>> d = dataclasses.replace(d, decided_at=dt.datetime(2024, 1, 3, 15, 30, tzinfo=dt.UTC))
        >>> row = d.decision_row()
        >>> row["key"], row["act"], row["notional"], row["binding"], row["decided_at"].isoformat()
        ('k1', True, 23500.0, 'kelly', '2024-01-03T15:30:00+00:00')
        >>> sorted(row["detail"])
        ['detail', 'explain', 'factors', 'family', 'id', 'limits', 'price', 'reason', 'rule']
        """
        doc = self.to_dict()
        detail = {k: doc[k] for k in ("id", "family", "rule", "price", "reason", "limits",
                                      "factors", "detail", "explain")}  # fmt: skip
        return {
            "decided_at": self.decided_at or dt.datetime.now(dt.UTC),
            "config": self.config,
            "key": self.id,
            "signal": self.signal,
            "symbol": self.symbol,
            "side": self.side,
            "horizon": self.horizon,
            "act": self.act,
            "notional": self.notional,
            "quantity": self.quantity,
            "p_win": self.p_win,
            "binding": self.binding,
            "prior_version": self.prior_version,
            "detail": detail,
        }


def _money(v: float) -> str:
    return "unlimited" if math.isinf(v) else f"{v:,.0f}"


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_ready(value.item())
    return value
