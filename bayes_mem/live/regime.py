"""Learning acts on regime changes: a win/loss changepoint detector per signal family that makes
the decider forget that family's counts when a change is detected.

Each family's settled outcomes (in the order they are recorded) feed a
:class:`~bayes_mem.live.changepoint.BetaBernoulliBOCPD` stream whose regime prior is the family's
Beta prior. When the probability that the family's win rate changed within the last ``k``
outcomes reaches ``threshold``, :meth:`Decider.forget` multiplies the family's counts by
``factor`` (their posteriors move toward the family prior, never to zero). The alarm then stays
quiet until the probability falls below ``rearm``, so one change forgets once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from bayes_mem.live.changepoint import (
    DEFAULT_MAX_RUN_LENGTH,
    BetaBernoulliBOCPD,
    ChangeAlarm,
    load_detector,
)
from bayes_mem.live.decider import Decider, UnknownSignalError
from bayes_mem.live.validate import (
    check_bool,
    check_discount,
    check_name,
    check_real,
    check_schema,
)

SNAPSHOT_SCHEMA = "bayes_mem.regime_forgetting/1"


class RegimeForgetting:
    """Forget a family's win/loss counts when its outcome stream changes regime.

    Parameters
    ----------
    decider : the :class:`Decider` to act on (it is not copied).
    families : the families to watch (default: all the decider's families now).
    factor : forgetting factor in (0, 1] applied to the family's counts on a detected change.
    threshold : P(change within the last ``k`` outcomes) at which the change counts as detected.
    rearm : the probability must fall below this before the family can forget again.
    hazard : prior probability of a change after each outcome (1 / expected regime length).
    k : window in outcomes of the change probability.
    max_run_length : truncation of the run-length distribution.

    Examples
    --------
    A signal that wins 70% of 60 trades and then 20%: the hook forgets once, after the change.

    >>> import numpy as np
    >>> from bayes_mem.live import BetaPrior
    >>> d = Decider({"momentum": BetaPrior(2.0, 2.0)}, rng=0)
    >>> d.register("mom", "momentum")
    >>> hook = RegimeForgetting(d, factor=0.25, hazard=1 / 50)
    >>> rng = np.random.default_rng(0)
    >>> wins = np.concatenate([rng.random(60) < 0.7, rng.random(40) < 0.2]).tolist()
    >>> [i for i, w in enumerate(wins) if hook.record("mom", w, 10.0 if w else -10.0)]
    [71]
    >>> hook.events, round(hook.p_change("momentum"), 3), round(d.posterior_mean("mom"), 3)
    ([('momentum', 72)], 0.334, 0.33)
    >>> RegimeForgetting.from_json(d, hook.to_json()).events  # restored from its snapshot
    [('momentum', 72)]
    """

    def __init__(
        self,
        decider: Decider,
        families: Iterable[str] | None = None,
        *,
        factor: float = 0.25,
        threshold: float = 0.7,
        rearm: float = 0.2,
        hazard: float = 1.0 / 200.0,
        k: int = 30,
        max_run_length: int = DEFAULT_MAX_RUN_LENGTH,
    ) -> None:
        if not isinstance(decider, Decider):
            raise TypeError(f"decider must be a Decider, got {type(decider).__name__}")
        self._decider = decider
        self._factor = check_discount(factor, "factor")
        known = decider.families
        names = list(known) if families is None else [check_name(f, "family") for f in families]
        for name in names:
            if name not in known:
                raise UnknownSignalError(f"unknown family {name!r}; add it to the decider first")
        if len(set(names)) != len(names):
            raise ValueError(f"families must be distinct, got {names!r}")
        self._detectors = {
            name: BetaBernoulliBOCPD(
                1, known[name], hazard=hazard, k=k, max_run_length=max_run_length
            )
            for name in names
        }
        self._alarms = {name: ChangeAlarm(1, on=threshold, off=rearm) for name in names}
        self._last = dict.fromkeys(names, 0.0)
        self._events: list[tuple[str, int]] = []  # (family, outcome number in that family)
        self._lock = threading.Lock()

    @property
    def families(self) -> tuple[str, ...]:
        """The watched families, in the order given (default: the decider's at construction).

        Examples
        --------
        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> RegimeForgetting(d).families, RegimeForgetting(d, ["carry"]).families
        (('momentum', 'carry'), ('carry',))
        """
        return tuple(self._detectors)

    @property
    def factor(self) -> float:
        """The forgetting factor in (0, 1] applied to a family's counts on a detected change.

        Examples
        --------
        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> RegimeForgetting(d, factor=0.5).factor
        0.5
        """
        return self._factor

    @property
    def events(self) -> list[tuple[str, int]]:
        """Forgetting events so far: (family, number of that family's outcomes seen then).

        Examples
        --------
        No change detected yet after a few outcomes:

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> hook = RegimeForgetting(d)
        >>> for i in range(3):
        ...     _ = hook.record("mom", True, 10.0, trade_id=i)
        >>> hook.events
        []
        """
        with self._lock:
            return list(self._events)

    def p_change(self, family: str) -> float:
        """The family's latest P(change within the last k outcomes) (0 before any outcome).

        Examples
        --------
        0 before any outcome; a family not watched is refused:

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> hook = RegimeForgetting(d, ["momentum"])
        >>> hook.p_change("momentum")
        0.0
        >>> hook.p_change("carry")
        Traceback (most recent call last):
            ...
        bayes_mem.live.decider.UnknownSignalError: family 'carry' is not ...
        """
        with self._lock:
            return self._last[self._get(family)]

    def observe(self, family: str, won: bool) -> bool:
        """Feed one settled outcome of ``family``; forget the family's counts when a change is
        detected. Returns whether it forgot.

        Examples
        --------
        For outcomes the decider has already recorded (:meth:`record` does both):

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0)})
        >>> hook = RegimeForgetting(d, hazard=1 / 50)
        >>> [hook.observe("momentum", won) for won in (True, True, True)]
        [False, False, False]
        >>> round(hook.p_change("momentum"), 3)
        0.03
        """
        won = check_bool(won, "won")
        with self._lock:
            name = self._get(family)
            step = self._detectors[name].update(won)
            p = float(step.p_change[0])
            self._last[name] = p
            fired = bool(self._alarms[name].update(p)[0])
            if fired:
                self._decider.forget(self._factor, family=name)
                self._events.append((name, self._detectors[name].steps))
            return fired

    def record(self, signal: str, won: bool, pnl: float, trade_id: str | int | None = None) -> bool:
        """``decider.record(...)`` and then :meth:`observe` for the signal's family (when it is
        watched). Returns whether the family's counts were forgotten.

        Examples
        --------
        The outcome is recorded in the decider (Beta(2, 2) plus one win) and fed to the detector
        (after one outcome P(change) is 0: the regime that began with the stream is no change):

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> hook = RegimeForgetting(d)
        >>> hook.record("mom", True, 25.0, trade_id="t1")
        False
        >>> d.posterior("mom"), hook.p_change("momentum")
        (BetaPrior(a=3.0, b=2.0), 0.0)
        """
        self._decider.record(signal, won, pnl, trade_id)
        family = self._decider.family_of(signal)
        if family not in self._detectors:
            return False
        return self.observe(family, won)

    def _get(self, family: object) -> str:
        if not isinstance(family, str) or family not in self._detectors:
            check_name(family, "family")
            raise UnknownSignalError(
                f"family {family!r} is not watched; watched: {sorted(self._detectors)!r:.200}"
            )
        return family

    # ------------------------------------------------------------------ snapshot
    def snapshot(self) -> dict[str, Any]:
        """Detectors, alarms and events as JSON-ready data (the decider is snapshotted on its
        own).

        Examples
        --------
        JSON-ready: one detector, alarm and latest probability per family, and the events:

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> snap = RegimeForgetting(d, factor=0.5).snapshot()
        >>> snap["schema"], snap["factor"], sorted(snap["families"]), snap["events"]
        ('bayes_mem.regime_forgetting/1', 0.5, ['carry', 'momentum'], [])
        >>> sorted(snap["families"]["momentum"])
        ['alarm', 'detector', 'p_change']
        """
        with self._lock:
            return {
                "schema": SNAPSHOT_SCHEMA,
                "factor": self._factor,
                "families": {
                    name: {
                        "detector": det.snapshot(),
                        "alarm": self._alarms[name].snapshot(),
                        "p_change": self._last[name],
                    }
                    for name, det in self._detectors.items()
                },
                "events": [[f, n] for f, n in self._events],
            }

    def to_json(self) -> str:
        """:meth:`snapshot` as compact JSON text; :meth:`from_json` reads it back.

        Examples
        --------
        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> text = RegimeForgetting(d).to_json()
        >>> json.loads(text)["schema"]
        'bayes_mem.regime_forgetting/1'
        """
        return json.dumps(self.snapshot(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_snapshot(cls, decider: Decider, data: Mapping[str, Any]) -> RegimeForgetting:
        """Rebuild the hook on ``decider`` exactly from :meth:`snapshot` output.

        Examples
        --------
        The restored hook continues exactly where the original stood:

        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> hook = RegimeForgetting(d, hazard=1 / 50)
        >>> for i, won in enumerate([True, False, True]):
        ...     _ = hook.record("mom", won, 10.0 if won else -10.0, trade_id=i)
        >>> again = RegimeForgetting.from_snapshot(d, hook.snapshot())
        >>> again.p_change("momentum") == hook.p_change("momentum")
        True
        >>> again.observe("momentum", True) == hook.observe("momentum", True)
        True
        >>> again.p_change("momentum") == hook.p_change("momentum")
        True
        """
        try:
            check_schema(data, SNAPSHOT_SCHEMA, show_found=False)
            fams = data["families"]
            self = cls(decider, list(fams), factor=data["factor"])
            for name, row in fams.items():
                det = load_detector(row["detector"])
                if not isinstance(det, BetaBernoulliBOCPD) or len(det) != 1:
                    raise ValueError(f"family {name!r}: not a one-stream win/loss detector")
                self._detectors[name] = det
                self._alarms[name] = ChangeAlarm.from_snapshot(row["alarm"])
                p = check_real(row["p_change"], f"families[{name!r}].p_change")
                if not 0.0 <= p <= 1.0:
                    raise ValueError(f"families[{name!r}].p_change must be in [0, 1]")
                self._last[name] = p
            self._events = [(self._get(f), int(n)) for f, n in data["events"]]
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"malformed regime-forgetting snapshot: {exc!r}") from exc
        return self

    @classmethod
    def from_json(cls, decider: Decider, text: str) -> RegimeForgetting:
        """Rebuild the hook on ``decider`` from :meth:`to_json` text; invalid JSON or a malformed
        snapshot raises ``ValueError``.

        Examples
        --------
        >>> from bayes_mem.live import BetaPrior
        >>> d = Decider({"momentum": BetaPrior(2.0, 2.0), "carry": BetaPrior(3.0, 3.0)})
        >>> d.register("mom", "momentum")
        >>> RegimeForgetting.from_json(d, RegimeForgetting(d).to_json()).families
        ('momentum', 'carry')
        >>> RegimeForgetting.from_json(d, "{")
        Traceback (most recent call last):
            ...
        ValueError: regime-forgetting snapshot is not valid JSON: Expecting ...
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"regime-forgetting snapshot is not valid JSON: {exc}") from exc
        return cls.from_snapshot(decider, data)
