"""Reading one version folder: the prior set (verified against its manifest), the job's run
record, the per-signal counts the fit saw and the two fits (ArviZ DataTrees)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_mem.live.prior_set import PriorSet, verify_folder
from bayes_mem.offline.run_files import COUNTS_FILE, RUN_FILE


@dataclass
class VersionData:
    """What one version folder holds (``run`` and ``counts`` are absent for versions written
    before the job recorded them).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> vd = load_version(folder)  # a version published without run record, counts or fits
    >>> vd.path.name, vd.run, vd.counts, vd.winrate_tree, vd.returns_tree
    ('v000001', {}, None, None, None)
    """

    path: Path
    prior_set: PriorSet
    run: dict[str, Any]
    counts: pd.DataFrame | None
    winrate_tree: Any
    returns_tree: Any


def load_version(path: str | Path) -> VersionData:
    """Read a version folder: prior set (verified), run record, counts and the fits, each
    checked against the set's manifest first (versions published before manifests: unchecked).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> vd = load_version(folder)
    >>> vd.prior_set.version, list(vd.prior_set.families)
    (1, ['momentum'])
    """
    import xarray as xr

    path = Path(path)
    names = [RUN_FILE, COUNTS_FILE, "winrate_fit.nc", "returns_fit.nc"]
    prior_set, _ = verify_folder(path, [n for n in names if (path / n).exists()])
    run: dict[str, Any] = {}
    if (path / RUN_FILE).exists():
        run = json.loads((path / RUN_FILE).read_text())
    counts = None
    if (path / COUNTS_FILE).exists():
        counts = pd.read_csv(
            path / COUNTS_FILE, dtype={"signal": str, "family": str}, keep_default_na=False
        )
    trees = []
    for name in ("winrate_fit.nc", "returns_fit.nc"):
        file = path / name
        trees.append(xr.open_datatree(file, engine="h5netcdf").load() if file.exists() else None)
    return VersionData(path, prior_set, run, counts, *trees)
