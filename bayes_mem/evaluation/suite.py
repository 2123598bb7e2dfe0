"""The evaluation suite: one command runs every evaluation and writes its tables (CSV and
Markdown) and figures (PNG) to a folder, with ``summary.md`` / ``summary.json`` on top.

``bayes-mem evaluate --out DIR --seed N [--quick] [--only SECTION ...]`` (``./run evaluate``
writes ``docs/evaluation/``, which the README and the docs pages link). Each section is a module of
:mod:`bayes_mem.evaluation` with ``write_results(out_dir, *, seed, quick) -> dict`` whose
``"markdown"`` entry goes into the summary.

Nothing is lost: the suite writes into a fresh temporary folder next to ``DIR`` and replaces
``DIR`` only when every section succeeded; after a failure the previous results stay as they
were and the partial run is kept (its path is in the error) for inspection. With ``--only``,
the other sections of an existing ``DIR`` are carried over unchanged (each section records the
command, seed and commit that produced it), so one section can be rerun alone.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bayes_mem import __version__

log = logging.getLogger("bayes_mem.evaluate")

#: section name -> (module, title); the order of the summary
SECTIONS: dict[str, tuple[str, str]] = {
    "policy": ("bayes_mem.evaluation.policy_backtest", "Trading policy on real prices"),
    "bandits": ("bayes_mem.evaluation.bandits", "Decision layer: bandit regret"),
    "risk": (
        "bayes_mem.evaluation.compare",
        "Risk forecasts: ours vs arch GJR skew-t, FHS, EWMA (FZ0, DM, MCS, backtests)",
    ),
    "ab": ("bayes_mem.evaluation.ab_calibration", "Strategy A/B tests: calibration"),
}


class EvaluationError(RuntimeError):
    """Some sections failed; ``partial`` is the folder holding what was written.

    Examples
    --------
    >>> from pathlib import Path
    >>> err = EvaluationError({"risk": "ValueError: no data"}, Path("results.tmp"))
    >>> err.failed, str(err).split(";")[0]
    ({'risk': 'ValueError: no data'}, 'evaluation sections failed: risk')
    """

    def __init__(self, failed: dict[str, str], partial: Path) -> None:
        names = ", ".join(failed)
        super().__init__(
            f"evaluation sections failed: {names}; the previous results are unchanged and the "
            f"partial run is in {partial}"
        )
        self.failed = failed
        self.partial = partial


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _check_sections(only: Sequence[str] | None) -> list[str]:
    if only is None:
        return list(SECTIONS)
    if isinstance(only, str) or not only:
        raise ValueError(f"only must be a non-empty list of section names, got {only!r}")
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown evaluation sections {unknown}; known: {list(SECTIONS)}")
    return list(dict.fromkeys(only))


def run_suite(
    out_dir: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the sections (all by default) into ``out_dir`` and return the summary dict (also in
    ``out_dir/summary.json``). Raises :class:`EvaluationError` if a section failed, leaving a
    previous ``out_dir`` untouched.

    Examples
    --------
    The real sections take minutes to hours; a toy section registered for the example shows
    the machinery (the section's folder, ``summary.json`` and ``summary.md``, its Markdown under
    its title). Unknown sections are refused before anything runs:

    >>> import sys
    >>> import tempfile
    >>> import types
    >>> from pathlib import Path
    >>> from unittest import mock
    >>> def write_results(out_dir, *, seed, quick):  # a section's one entry point
    ...     Path(out_dir).mkdir(parents=True)
    ...     return {"markdown": f"seed {seed}"}
    >>> toy = types.ModuleType("toy_section")
    >>> toy.write_results = write_results
    >>> with (tempfile.TemporaryDirectory() as d,
    ...       mock.patch.dict(sys.modules, {"toy_section": toy}),
    ...       mock.patch.dict(SECTIONS, {"toy": ("toy_section", "A toy section")})):
    ...     summary = run_suite(Path(d) / "results", seed=3, only=["toy"])
    ...     files = sorted(p.name for p in (Path(d) / "results").iterdir())
    ...     text = (Path(d) / "results" / "summary.md").read_text()
    >>> files, list(summary["sections"])
    (['summary.json', 'summary.md', 'toy'], ['toy'])
    >>> [line for line in text.splitlines() if line.startswith("## ") or line.startswith("seed")]
    ['## A toy section', 'seed 3']
    >>> run_suite("unused", only=["nope"])
    Traceback (most recent call last):
    ...
    ValueError: unknown evaluation sections ['nope']; known: ['policy', 'bandits', 'risk', 'ab']
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    sections = _check_sections(only)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    summary: dict[str, Any] = {
        "command": _command(out, seed, quick, only),
        "seed": seed,
        "quick": quick,
        "code_version": __version__,
        "git_commit": _git_commit(),
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sections": {},
    }
    failed: dict[str, str] = {}
    if only is not None:
        _carry_over(out, work, summary, keep=[n for n in SECTIONS if n not in sections])
    for name in sections:
        module, title = SECTIONS[name]
        t0 = time.perf_counter()
        log.info("evaluation %s: running", name)
        try:
            result = importlib.import_module(module).write_results(
                work / name, seed=seed, quick=quick
            )
            if not isinstance(result, dict) or not isinstance(result.get("markdown"), str):
                raise TypeError(f"{module}.write_results must return a dict with 'markdown'")
        except Exception as exc:  # a failed section must not hide the others
            failed[name] = f"{type(exc).__name__}: {exc}"
            log.error("evaluation %s failed:\n%s", name, traceback.format_exc())
            summary["sections"][name] = {"title": title, "error": failed[name]}
            continue
        seconds = round(time.perf_counter() - t0, 1)
        log.info("evaluation %s done in %.1f s", name, seconds)
        summary["sections"][name] = {
            "title": title, **result, "wall_seconds": seconds, "command": summary["command"],
            "seed": seed, "quick": quick, "git_commit": summary["git_commit"],
        }  # fmt: skip
    summary["sections"] = {n: summary["sections"][n] for n in SECTIONS if n in summary["sections"]}
    summary["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (work / "summary.md").write_text(_markdown(summary))
    if failed:
        raise EvaluationError(failed, work)
    _replace(work, out)
    return summary


def _carry_over(out: Path, work: Path, summary: dict[str, Any], keep: list[str]) -> None:
    """Copy the sections in ``keep`` (folder and summary entry) from a previous run at ``out``."""
    try:
        previous = json.loads((out / "summary.json").read_text())["sections"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no readable previous run: nothing to carry over
    for name in keep:
        sec = previous.get(name) if isinstance(previous, dict) else None
        if isinstance(sec, dict) and "error" not in sec and (out / name).is_dir():
            shutil.copytree(out / name, work / name)
            summary["sections"][name] = sec


def _command(out: Path, seed: int, quick: bool, only: Sequence[str] | None) -> str:
    parts = ["bayes-mem", "evaluate", "--out", str(out), "--seed", str(seed)]
    if quick:
        parts.append("--quick")
    for name in only or ():
        parts += ["--only", name]
    return " ".join(parts)


def _markdown(summary: dict[str, Any]) -> str:
    head = [
        "# bayes_mem evaluation results",
        "",
        f"Last run: `{summary['command']}` (code {summary['code_version']}"
        + (f", commit {summary['git_commit']}" if summary["git_commit"] else "")
        + f") on {summary['started']}"
        + (" with quick (small) settings: not for conclusions." if summary["quick"] else "."),
        "Each section names the command that produced it; every run is seeded and reproducible. "
        "Tables (CSV and Markdown) and figures (PNG) of each section are in its subfolder.",
        "",
    ]
    body = []
    for name, sec in summary["sections"].items():
        if "error" in sec:
            body += [f"## {sec['title']}", "", f"FAILED: {sec['error']}", ""]
            continue
        made = f"`{sec.get('command', summary['command'])}`"
        if sec.get("git_commit"):
            made += f" at commit {sec['git_commit']}"
        if sec.get("quick"):
            made += ", quick settings"
        seconds = sec.get("wall_seconds", sec.get("seconds"))
        if isinstance(seconds, int | float):
            made += f", {seconds:.0f} s"
        body += [_section_markdown(sec["title"], sec["markdown"]), "", f"_({name}/: {made})_", ""]
    return "\n".join(head + body)


def _section_markdown(title: str, text: str) -> str:
    """A section's Markdown under one ``## title`` heading: its own first heading is replaced,
    deeper headings are kept below level 2."""
    lines = text.strip().splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    out = [f"## {title}"]
    for line in lines:
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * max(level, 3) + line[level:]
        out.append(line)
    return "\n".join(out)


def _replace(work: Path, out: Path) -> None:
    """Put the finished run at ``out``: the old folder is moved aside first and removed only
    after the new one is in place."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
