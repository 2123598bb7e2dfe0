"""Beta priors on a win rate: small immutable objects that round-trip to JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bayes_mem.live.deprecation import warn_renamed
from bayes_mem.live.validate import check_positive, check_probability_open


@dataclass(frozen=True, slots=True)
class BetaPrior:
    """Beta(a, b) prior on a signal's win probability (a = pseudo-wins, b = pseudo-losses).

    Examples
    --------
    >>> prior = BetaPrior.from_mean_concentration(0.55, 20.0)
    >>> prior
    BetaPrior(a=11.0, b=9.0)
    >>> round(prior.mean, 3), prior.concentration
    (0.55, 20.0)
    >>> BetaPrior.from_dict(prior.to_dict()) == prior
    True
    >>> DEFAULT_PRIOR  # flat: what a family without a fitted prior gets
    BetaPrior(a=1.0, b=1.0)
    """

    a: float = 1.0
    b: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "a", check_positive(self.a, "BetaPrior.a"))
        object.__setattr__(self, "b", check_positive(self.b, "BetaPrior.b"))

    @classmethod
    def from_mean_concentration(cls, mean: float, concentration: float) -> BetaPrior:
        """Beta with the given mean in (0, 1) and concentration a + b > 0 (pseudo-trades)."""
        m = check_probability_open(mean, "mean")
        k = check_positive(concentration, "concentration")
        return cls(m * k, (1.0 - m) * k)

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def concentration(self) -> float:
        return self.a + self.b

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: Any) -> BetaPrior:
        if not isinstance(data, dict) or set(data) != {"a", "b"}:
            raise ValueError(f"a BetaPrior is a JSON object with keys 'a' and 'b', got {data!r}")
        return cls(data["a"], data["b"])

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text)."""
        warn_renamed("BetaPrior.to_json()", "BetaPrior.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> BetaPrior:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text)."""
        warn_renamed("BetaPrior.from_json()", "BetaPrior.from_dict()")
        return cls.from_dict(data)


#: Prior of a family that was not given one: flat Beta(1, 1). The nightly job replaces it with
#: the family's fitted prior; override per family with ``Decider.set_family_prior``.
DEFAULT_PRIOR = BetaPrior(1.0, 1.0)
