"""Deprecated names kept as aliases of their new ones: each call warns and forwards.

The naming convention (issue 20): ``to_dict`` / ``from_dict`` for mappings, ``to_json`` /
``from_json`` for JSON text. Classes whose ``to_json`` returned a mapping (or a list) keep it
as a deprecated alias of the new name.
"""

from __future__ import annotations

import warnings


def warn_renamed(old: str, new: str) -> None:
    """Warn (:class:`DeprecationWarning`, attributed to the caller of the deprecated name) that
    ``old`` is deprecated in favour of ``new``.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_renamed("BetaPrior.to_json()", "BetaPrior.to_dict()")
    >>> print(seen[0].message)  # doctest: +NORMALIZE_WHITESPACE
    BetaPrior.to_json() is deprecated, use BetaPrior.to_dict()
    (to_json/from_json are for JSON text)
    """
    warnings.warn(
        f"{old} is deprecated, use {new} (to_json/from_json are for JSON text)",
        DeprecationWarning,
        stacklevel=3,
    )
