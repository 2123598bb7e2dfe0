"""pyplot for the figures of reports and evaluations, imported lazily (the live path never
imports matplotlib).

:func:`pyplot` selects the non-interactive Agg backend only when pyplot is not imported yet:
in a notebook, whose inline backend is already chosen, switching would stop its figures from
showing (the bug the analyst report once had). Every caller saves its figures to files or
PNG bytes and closes them, which works on any backend.
"""

from __future__ import annotations

import sys
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot``, on the Agg backend unless the process already chose one.

    Examples
    --------
    A figure saved to PNG bytes and closed, as every caller does:

    >>> import io
    >>> plt = pyplot()
    >>> fig, ax = plt.subplots(figsize=(2, 1))
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> buf = io.BytesIO()
    >>> fig.savefig(buf, format="png")
    >>> plt.close(fig)
    >>> buf.getvalue()[1:4]  # the PNG signature
    b'PNG'
    """
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
