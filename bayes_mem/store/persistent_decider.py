"""A live decider whose outcomes are written to the store before they count in memory, and that
can be rebuilt exactly from the store after a restart."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_mem.live.decider import (
    Decider,
    DuplicateTradeError,
    UnknownSignalError,
    check_outcome,
    trade_day,
)
from bayes_mem.live.priors import BetaPrior
from bayes_mem.live.validate import check_int, check_trade_times
from bayes_mem.store.store import Store, check_notional


class PersistentDecider:
    """Wraps a :class:`~bayes_mem.live.Decider`: :meth:`record` appends the outcome to the store
    (durably, refusing a stored trade id) and only then updates the decider; registration writes
    the signal too. Everything else is the decider's own (``decide``, ``choose``, ``metrics`` ...).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import Decider
    >>> from bayes_mem.store import PersistentDecider, Store
    >>> tmp = tempfile.TemporaryDirectory()
    >>> store = Store(data_dir=tmp.name)
    >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), store, seed=1)
    >>> pdec.register("mom_a", "momentum")
    >>> for i, won in enumerate([True, True, False]):
    ...     _ = pdec.record("mom_a", won, 10.0 if won else -8.0, f"t{i}")
    >>> restored = PersistentDecider.restore(store, {"momentum": None}, seed=1)  # after a restart
    >>> restored.posterior("mom_a"), restored.posterior("mom_a") == pdec.posterior("mom_a")
    (BetaPrior(a=3.0, b=2.0), True)
    >>> key = "mom_a@2026-03-02T14:30"  # keyed draws: the same decision in both processes
    >>> restored.decide("mom_a", key=key) == pdec.decide("mom_a", key=key)
    True
    >>> store.close()
    >>> tmp.cleanup()
    """

    def __init__(self, decider: Decider, store: Store, *, seed: int | None = None) -> None:
        self.decider = decider
        self.store = store
        self.seed = None if seed is None else check_int(seed, "seed", minimum=0)
        self._lock = threading.Lock()  # store and memory see outcomes in the same order

    def __getattr__(self, name: str) -> Any:
        return getattr(self.decider, name)

    def __contains__(self, signal: object) -> bool:  # dunders bypass __getattr__
        return signal in self.decider

    def __len__(self) -> int:
        return len(self.decider)

    def _keyed_rng(self, key: object) -> np.random.Generator:
        """A generator seeded by ``(seed, key)``: draws that depend only on them."""
        if self.seed is None:
            raise ValueError("keyed decisions need the PersistentDecider's seed")
        if isinstance(key, bool) or not isinstance(key, str | int):
            raise TypeError(f"key must be a string or an integer, got {type(key).__name__}")
        if isinstance(key, str) and not key.strip():
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        digest = hashlib.sha256(str(key).encode()).digest()
        words = np.frombuffer(digest, dtype="<u4").tolist()
        return np.random.default_rng([self.seed, *words])

    def decide(
        self, signal: str, *, threshold: float | None = None, key: str | int | None = None
    ) -> tuple[bool, float]:
        """The decider's decision; with a ``key`` (the signal event's unique id, e.g.
        ``"mom_a@2026-11-25T14:30"``) the draw comes from a generator seeded by ``(seed, key)``,
        so the decision depends only on the seed, the key and the outcomes recorded so far: a
        process restored from the store after a crash makes the same decisions.

        Examples
        --------
        The same key gives the same draw, so the same decision, however often it is asked:

        >>> from bayes_mem.live import Decider
        >>> from bayes_mem.store import Store
        >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), Store("sqlite://"), seed=1)
        >>> pdec.register("mom_a", "momentum")
        >>> key = "mom_a@2026-03-02T14:30"
        >>> pdec.decide("mom_a", key=key) == pdec.decide("mom_a", key=key)
        True
        """
        if key is None:
            return self.decider.decide(signal, threshold=threshold)
        return self.decider.decide(signal, threshold=threshold, rng=self._keyed_rng(key))

    def choose(
        self, signals: Any, k: int = 1, *, key: str | int | None = None, **options: Any
    ) -> list[tuple[str, float]]:
        """The decider's :meth:`~bayes_mem.live.Decider.choose`; ``key`` as in :meth:`decide`
        (one joint draw seeded by ``(seed, key)``).

        Examples
        --------
        One joint draw per key: asking twice with the same key picks the same signal:

        >>> from bayes_mem.live import Decider
        >>> from bayes_mem.store import Store
        >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), Store("sqlite://"), seed=1)
        >>> for name in ("mom_a", "mom_b"):
        ...     pdec.register(name, "momentum")
        >>> first = pdec.choose(["mom_a", "mom_b"], k=1, key="bar-17")
        >>> first == pdec.choose(["mom_a", "mom_b"], k=1, key="bar-17"), len(first)
        (True, 1)
        """
        rng = None if key is None else self._keyed_rng(key)
        return self.decider.choose(signals, k, rng=rng, **options)

    def decide_batch(
        self, signals: Any, *, key: str | int | None = None, **options: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """The decider's :meth:`~bayes_mem.live.Decider.decide_batch`; ``key`` as in
        :meth:`decide`.

        Examples
        --------
        >>> from bayes_mem.live import Decider
        >>> from bayes_mem.store import Store
        >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), Store("sqlite://"), seed=1)
        >>> for name in ("mom_a", "mom_b"):
        ...     pdec.register(name, "momentum")
        >>> act, p = pdec.decide_batch(["mom_a", "mom_b"], key="bar-17")
        >>> act.shape, bool((p == pdec.decide_batch(["mom_a", "mom_b"], key="bar-17")[1]).all())
        ((2,), True)
        """
        rng = None if key is None else self._keyed_rng(key)
        return self.decider.decide_batch(signals, rng=rng, **options)

    def register(self, signal: str, family: str) -> None:
        """Register a signal in a family the decider knows: validated first (names, the family,
        a signal already in another family), then written to the store, then registered in
        memory; a refusal at any step leaves both as they were. (Register through this wrapper,
        not the wrapped decider, so that the two agree.)

        Examples
        --------
        The signal is in the store and in the decider:

        >>> from bayes_mem.live import Decider
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), store)
        >>> pdec.register("mom_a", "momentum")
        >>> store.signals(), "mom_a" in pdec
        ({'mom_a': 'momentum'}, True)
        """
        with self._lock:
            self.decider.check_register(signal, family)  # raises what register() would
            self.store.register_signals({signal: family})
            self.decider.register(signal, family)

    def record(
        self,
        signal: str,
        won: bool,
        pnl: float,
        trade_id: str | int | None = None,
        *,
        settled_at: dt.datetime | None = None,
        opened_at: dt.datetime | None = None,
        notional: float | None = None,
    ) -> str:
        """Record a settled trade; returns its trade id (generated when none is given). A trade
        id recorded before, by this process or by another sharing the store, raises
        :class:`~bayes_mem.live.DuplicateTradeError` and records nothing.
        ``notional`` (account currency, > 0, or None) is stored with the outcome; the decider
        itself does not use it. ``settled_at`` (default now) and ``opened_at`` are stored; the
        trade's cluster (for the family's intra-cluster correlation, see :meth:`restore`) is
        the UTC day it opened, or settled when ``opened_at`` is not given
        (:func:`~bayes_mem.live.decider.trade_day`), as in the nightly fit.

        Examples
        --------
        A win then a loss on the default Beta(1, 1) prior give Beta(2, 2); the store has both:

        >>> from bayes_mem.live import Decider
        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> pdec = PersistentDecider(Decider({"momentum": None}, rng=0), store)
        >>> pdec.register("mom_a", "momentum")
        >>> pdec.record("mom_a", True, 10.0, "t1", notional=1000.0)
        't1'
        >>> _ = pdec.record("mom_a", False, -8.0, "t2")
        >>> pdec.posterior("mom_a"), store.outcomes()["trade_id"].tolist()
        (BetaPrior(a=2.0, b=2.0), ['t1', 't2'])
        """
        won, pnl, tid = check_outcome(won, pnl, trade_id)
        notional = check_notional(notional)
        if signal not in self.decider:
            raise UnknownSignalError(f"unknown signal {signal!r}; register it first")
        tid = tid or f"auto-{uuid.uuid4().hex}"
        settled, opened = check_trade_times(settled_at, opened_at)
        with self._lock:
            if self.decider.seen_trade(tid):
                raise DuplicateTradeError(f"trade_id {tid!r} was already recorded")
            self.store.append_outcome(
                tid, signal, won, pnl, settled_at=settled, opened_at=opened, notional=notional
            )
            cluster = trade_day(settled if opened is None else opened)
            self.decider.record(signal, won, pnl, tid, cluster=cluster)
        return tid

    @classmethod
    def restore(
        cls,
        store: Store,
        families: Mapping[str, BetaPrior | None],
        *,
        seed: int | None = None,
        rho: Mapping[str, float] | None = None,
        **decider_options: Any,
    ) -> PersistentDecider:
        """Rebuild the decider after a restart: every stored signal registered, every stored
        outcome replayed in arrival order (so forgetting gives the same state), with the given
        family priors (families found in the store but not given get the default prior) and
        intra-cluster correlations ``rho`` (family -> [0, 1); e.g. the prior set's
        ``FamilyPosterior.rho_mean``; default independent outcomes), set before the replay so
        each outcome counts with the effective weight :meth:`record` gave it under the same
        ``rho``. ``seed`` seeds keyed decisions (and the decider's own generator unless ``rng``
        is given); ``decider_options`` are :class:`~bayes_mem.live.Decider` keyword arguments.
        A bad ``rho`` (a family not given, a value outside [0, 1)) raises before anything is
        read.

        Examples
        --------
        A store holding two wins and a loss of ``mom_a`` restores Beta(1 + 2, 1 + 1):

        >>> from bayes_mem.store import Store
        >>> store = Store("sqlite://")  # an in-memory SQLite store
        >>> _ = store.register_signals({"mom_a": "momentum"})
        >>> for i, pnl in enumerate([10.0, 12.0, -8.0]):
        ...     store.append_outcome(f"t{i}", "mom_a", pnl > 0, pnl, settled_at="2026-03-02T16:00")
        >>> pdec = PersistentDecider.restore(store, {"momentum": None}, seed=1)
        >>> pdec.posterior("mom_a"), len(pdec)
        (BetaPrior(a=3.0, b=2.0), 1)
        """
        decider_options.setdefault("rng", seed)
        decider = Decider(families, **decider_options)
        for family, value in (rho or {}).items():
            if family not in decider.families:
                raise ValueError(f"rho for family {family!r}, which is not among the families")
            decider.set_family_prior(family, decider.families[family], rho=value)
        known = set(decider.families)
        for signal, family in sorted(store.signals().items()):
            if family not in known:
                decider.add_family(family)
                known.add(family)
            decider.register(signal, family)
        out = store.outcomes()
        for trade_id, signal, won, pnl, opened, settled in zip(
            out["trade_id"], out["signal"], out["won"], out["pnl"], out["opened_at"],
            out["settled_at"], strict=True,
        ):  # fmt: skip
            cluster = trade_day(settled if opened is None or opened != opened else opened)
            decider.record(signal, bool(won), float(pnl), trade_id, cluster=cluster)
        return cls(decider, store, seed=seed)
