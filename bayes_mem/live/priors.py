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
        """Beta with the given mean in (0, 1) and concentration a + b > 0 (pseudo-trades).

        Examples
        --------
        A 60% win rate worth 10 trades is 6 pseudo-wins and 4 pseudo-losses:

        >>> BetaPrior.from_mean_concentration(0.6, 10.0)
        BetaPrior(a=6.0, b=4.0)
        """
        m = check_probability_open(mean, "mean")
        k = check_positive(concentration, "concentration")
        return cls(m * k, (1.0 - m) * k)

    @property
    def mean(self) -> float:
        """The prior mean win rate ``a / (a + b)``.

        Examples
        --------
        >>> BetaPrior(3.0, 7.0).mean
        0.3
        """
        return self.a / (self.a + self.b)

    @property
    def concentration(self) -> float:
        """``a + b``: the prior's weight in pseudo-trades.

        Examples
        --------
        >>> BetaPrior(3.0, 7.0).concentration
        10.0
        """
        return self.a + self.b

    def to_dict(self) -> dict[str, Any]:
        """The prior as a JSON-ready dict ``{"a": a, "b": b}``.

        Examples
        --------
        >>> BetaPrior(3.0, 7.0).to_dict()
        {'a': 3.0, 'b': 7.0}
        """
        return {"a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: Any) -> BetaPrior:
        """A prior from :meth:`to_dict` output: exactly the keys ``a`` and ``b``, both > 0.

        Examples
        --------
        >>> BetaPrior.from_dict({"a": 3.0, "b": 7.0})
        BetaPrior(a=3.0, b=7.0)
        >>> BetaPrior.from_dict({"a": 3.0})
        Traceback (most recent call last):
        ...
        ValueError: a BetaPrior is a JSON object with keys 'a' and 'b', got {'a': 3.0}
        """
        if not isinstance(data, dict) or set(data) != {"a", "b"}:
            raise ValueError(f"a BetaPrior is a JSON object with keys 'a' and 'b', got {data!r}")
        return cls(data["a"], data["b"])

    def to_json(self) -> dict[str, Any]:
        """Deprecated alias of :meth:`to_dict` (it never returned JSON text).

        Examples
        --------
        >>> import warnings
        >>> prior = BetaPrior(3.0, 7.0)
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     doc = prior.to_json()
        >>> doc, seen[0].category.__name__
        ({'a': 3.0, 'b': 7.0}, 'DeprecationWarning')
        """
        warn_renamed("BetaPrior.to_json()", "BetaPrior.to_dict()")
        return self.to_dict()

    @classmethod
    def from_json(cls, data: Any) -> BetaPrior:
        """Deprecated alias of :meth:`from_dict` (it reads a mapping, not JSON text).

        Examples
        --------
        >>> import warnings
        >>> prior = BetaPrior(3.0, 7.0)
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     back = BetaPrior.from_json({"a": 3.0, "b": 7.0})
        >>> back == prior, seen[0].category.__name__
        (True, 'DeprecationWarning')
        """
        warn_renamed("BetaPrior.from_json()", "BetaPrior.from_dict()")
        return cls.from_dict(data)


#: Prior of a family that was not given one: flat Beta(1, 1). The nightly job replaces it with
#: the family's fitted prior; override per family with ``Decider.set_family_prior``.
DEFAULT_PRIOR = BetaPrior(1.0, 1.0)
