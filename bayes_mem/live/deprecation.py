"""Deprecated names kept as aliases of their new ones: each call warns and forwards.

The naming convention (issue 20): ``to_dict`` / ``from_dict`` for mappings, ``to_json`` /
``from_json`` for JSON text. Classes whose ``to_json`` returned a mapping (or a list) keep it
as a deprecated alias of the new name.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable


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


def renamed_module_attributes(module: str, renamed: dict[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` (PEP 562) serving each deprecated name of ``renamed``
    (old name -> new name, both attributes of ``module``) with a :class:`DeprecationWarning`
    attributed to the importer; any other missing name raises :class:`AttributeError` as usual.

    Examples
    --------
    In a module ``pkg.fits`` whose ``OldFit`` became ``NewFit``::

        __getattr__ = renamed_module_attributes(__name__, {"OldFit": "NewFit"})

    Here with a module built on the spot:

    >>> import sys, types, warnings
    >>> mod = types.ModuleType("demo_fits")
    >>> mod.NewFit = type("NewFit", (), {})
    >>> mod.__getattr__ = renamed_module_attributes("demo_fits", {"OldFit": "NewFit"})
    >>> sys.modules["demo_fits"] = mod
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     mod.OldFit is mod.NewFit
    True
    >>> print(seen[0].message)
    demo_fits.OldFit is deprecated, use NewFit
    >>> del sys.modules["demo_fits"]
    """

    def __getattr__(name: str) -> object:
        new = renamed.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} is deprecated, use {new}", DeprecationWarning, stacklevel=2)
        return getattr(sys.modules[module], new)

    __getattr__.__doc__ = "Deprecated names of this module: " + ", ".join(
        f"``{old}`` (now :obj:`{new}`)" for old, new in renamed.items()
    )
    return __getattr__
