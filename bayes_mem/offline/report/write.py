"""Writing a version's report: where it lives, the atomic owner-only write and the version
lookups of the ``report`` command and the nightly job."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from bayes_mem.live.files import make_private_dirs
from bayes_mem.live.prior_set import PRIOR_SETS, list_versions, version_dir
from bayes_mem.offline.report.build import build_report
from bayes_mem.offline.report.config import REPORTS
from bayes_mem.offline.run_files import RUN_FILE

log = logging.getLogger("bayes_mem.report")


def report_path(models_dir: str | Path, version: int) -> Path:
    """Where a version's report lives: ``models/reports/v000042.html``.

    Examples
    --------
    >>> report_path("models", 42).as_posix()
    'models/reports/v000042.html'
    """
    return Path(models_dir) / REPORTS / f"v{version:06d}.html"


def write_report(text: str, path: str | Path) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename), owner-only.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = write_report("<p>hello</p>", Path(tmp.name) / "reports" / "v000001.html")
    >>> path.read_text(), oct(path.stat().st_mode & 0o777), oct(path.parent.stat().st_mode & 0o777)
    ('<p>hello</p>', '0o600', '0o700')
    """
    path = Path(path)
    make_private_dirs(path.parent)  # 0700 where created; existing directories left as they are
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def latest_version(models_dir: str | Path) -> int:
    """The highest version number under ``models/prior_sets`` (published or rejected).

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> latest_version(tmp.name)
    1
    """
    found = list_versions(models_dir)
    if not found:
        raise ValueError(f"no prior sets under {Path(models_dir) / PRIOR_SETS}")
    return found[-1]


def write_version_report(
    models_dir: str | Path,
    version: int,
    store: Any = None,
    *,
    previous: int | None = None,
    timings: dict[str, float] | None = None,
    seed: int = 0,
) -> Path:
    """Build and write the report of ``version`` to :func:`report_path`. ``previous`` defaults
    to the version the run record names as previously active, else none. Nothing is written
    if the version does not load.

    Examples
    --------
    >>> import tempfile
    >>> from bayes_mem.live import FamilyPosterior, PriorSet, write_prior_set
    >>> prior_set = PriorSet(1, "2026-03-02T22:00:00+00:00", "2026-03-02", "0.1.0", "demo",
    ...     families={"momentum": FamilyPosterior([0.54, 0.56], [40.0, 60.0])},
    ...     diagnostics={"passed": True})
    >>> tmp = tempfile.TemporaryDirectory()  # the models directory
    >>> folder = write_prior_set(prior_set, tmp.name)
    >>> path = write_version_report(tmp.name, 1)  # no store: the risk and quality sections say so
    >>> path.relative_to(tmp.name).as_posix(), path.read_text().startswith("<!DOCTYPE html>")
    ('reports/v000001.html', True)
    """
    folder = version_dir(models_dir, version)
    if not (folder / "prior_set.json").exists():
        raise ValueError(f"no prior set version {version} under {Path(models_dir) / PRIOR_SETS}")
    if previous is None:
        run_file = folder / RUN_FILE
        if run_file.exists():
            previous = json.loads(run_file.read_text()).get("previous_active")
    prev_dir = None
    if previous is not None and previous != version:
        prev_dir = version_dir(models_dir, previous)
        if not (prev_dir / "prior_set.json").exists():
            log.warning("previous version %s is gone; the report compares with none", previous)
            prev_dir = None
    text = build_report(folder, store, prev_dir, timings=timings, seed=seed)
    return write_report(text, report_path(models_dir, version))
