"""``bayes-mem`` command line.

Exit codes: 0 success (for ``recalibrate``: a new prior set is published and active, every
component refreshed); 4 (``recalibrate``) published and active, but a component's fit failed its
gate and the set keeps that component's previous version (or none yet): the JSON summary's
``components`` says which and why; 3 the diagnostics gate rejected every component (the previous
prior set stays active); 1 an error (one line on stderr: a refused prior set, a store that
cannot be opened or written, a bad file; a refused ``ingest`` batch lists every bad cell, one a
line); 2 bad usage (the arguments themselves: an unparsable ``--store`` URL or an unknown
database included, and a store or model registry that does not exist).

``recalibrate --scheduler ADDRESS`` fans the returns fit out on an existing Dask cluster and
``--fanout`` on a local one (:mod:`bayes_mem.offline.fanout`); an unreachable scheduler is an
error (exit 1, naming the address) before anything is written.

``priors list`` prints a header and one line per version: ``active`` for the active one, its
verdict, sizes and, per component (win rates, returns, regime), the version it came from and its
``data_through``. ``priors show VERSION`` (``7`` or ``v000007``, as ``list`` prints it) prints the
version's metadata, per component its source, date and age in days (as of today, UTC), the priors
themselves (per family the posterior mean and 90% interval of the mean win rate and the
concentration; per symbol the one-day 97.5% ES of a long position from the set's return model at
its ``data_through`` state, with its 90% band across draws); ``--json`` adds the night's
diagnostics (each component's own verdict included).

Every verb that prints takes ``--json``: one JSON document on stdout (``recalibrate`` always
prints one; ``--json FILE`` also writes it to FILE); logs and errors stay on stderr. A store or
model registry that does not exist is an error naming it (exit 2), never a new empty one
(``ingest --create`` makes a new store; ``recalibrate`` creates ``--models`` on its first run).

``priors activate`` is one decision: the version is verified and gate-checked and the store
opened before anything changes; the store's statuses are written in a transaction that commits
only after ``ACTIVE`` was switched, and a commit that fails restores ``ACTIVE``
(:func:`bayes_mem.live.prior_set.activate`). ``priors verify [VERSION]`` checks a version (or
every version) whole: ``prior_set.json`` and every file of its manifest.

``dashboard`` serves the live dashboard (:mod:`bayes_mem.dashboard`) on 127.0.0.1 by default:
the store is opened read-only and never created; a missing store or ``--models`` folder, an
unreachable server, a bad ``--port`` or a non-loopback ``--host`` without ``--token`` exit 2
naming the value, before anything is bound.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REJECTED = 0, 1, 2, 3

INGEST_COLUMNS = """columns (CSV header or Parquet column names; others are ignored):
  signals   name, family
  outcomes  trade_id, signal, won (true/false), pnl, settled_at;
            optional: opened_at, notional (account currency, > 0; empty when unknown)
  returns   symbol, date (a calendar date), return (log or simple, as --kind says)
timestamps and dates are ISO 8601 (2026-01-02, 2026-01-02T15:30:00+01:00) unless --date-format"""


def _version_number(text: str) -> int:
    """A prior-set version as ``priors list`` prints it (``v000007``) or plain (``7``)."""
    digits = text[1:] if text[:1] in "vV" else text
    if not digits.isascii() or not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"not a version like 7 or v000007: {text!r}")
    return int(digits)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store", metavar="URL",
        help="SQLAlchemy URL of the store (default: the SQLite file bayes_mem.sqlite under --data)",
    )  # fmt: skip
    p.add_argument(
        "--data", type=Path, metavar="DIR",
        help="data directory holding bayes_mem.sqlite (default data/); it must exist",
    )  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bayes_mem")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        from bayes_mem import __version__

        return __version__


def _common(json_flag: bool = True) -> argparse.ArgumentParser:
    """Options every verb accepts after its name as well: -v, and --json where it prints."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="debug logging, third-party libraries' INFO lines included (on stderr)",
    )  # fmt: skip
    if json_flag:
        common.add_argument(
            "--json", action="store_true",
            help="print one JSON document on stdout instead of text (logs stay on stderr)",
        )  # fmt: skip
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``bayes-mem`` argument parser: one sub-command per verb (see the module docstring).

    Examples
    --------
    >>> args = build_parser().parse_args(["ingest", "returns", "r.csv", "--kind", "log"])
    >>> args.command, args.what, str(args.file), args.kind, args.create
    ('ingest', 'returns', 'r.csv', 'log', False)
    """
    parser = argparse.ArgumentParser(
        prog="bayes-mem", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="debug logging, third-party libraries' INFO lines included (on stderr)",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()

    full = sub.add_parser(
        "demo", parents=[common],
        help="synthetic store -> nightly job -> a trading day on the published priors",
    )  # fmt: skip
    full.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    full.add_argument(
        "--dir", type=Path, default=Path("demo"),
        help="demo folder, recreated on every run (default demo/)",
    )  # fmt: skip

    demo = sub.add_parser(
        "demo-live", parents=[common],
        help="the live decision path alone on simulated signals",
    )  # fmt: skip
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--rounds", type=_positive_int, default=2_000, help="rounds to simulate")
    demo.add_argument(
        "--state", type=Path, default=Path("models") / "demo" / "decider_state.json",
        help="where to write the decider's JSON snapshot (default models/demo/decider_state.json)",
    )  # fmt: skip

    rec = sub.add_parser(
        "recalibrate", parents=[_common(json_flag=False)],
        help="the nightly job: fit, gate, publish a prior set",
    )  # fmt: skip
    _store_args(rec)
    rec.add_argument(
        "--models", type=Path, default=Path("models"), help="model registry (default models/)"
    )
    rec.add_argument(
        "--config", type=Path, metavar="FILE", help="JSON file of RecalibrationConfig fields"
    )
    rec.add_argument(
        "--json", nargs="?", const=True, metavar="FILE",
        help="the summary is always printed as JSON on stdout; with FILE, also written to FILE "
        "(owner-only)",
    )  # fmt: skip
    rec.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="fan the returns fit out on the Dask cluster whose scheduler is at ADDRESS (e.g. "
        "tcp://10.0.0.5:8786); sets the config's fanout to dask (bayes_mem.offline.fanout)",
    )  # fmt: skip
    rec.add_argument(
        "--fanout", action="store_true",
        help="fan the returns fit out on a local Dask cluster (one worker process per core, or "
        "the config's fanout_workers) unless --scheduler names one",
    )  # fmt: skip

    priors = sub.add_parser(
        "priors", parents=[common], help="list, show, verify or activate prior sets"
    )
    priors.add_argument(
        "action", choices=["list", "show", "verify", "activate"],
        help="list: every version; show VERSION: its priors and metadata; verify [VERSION]: "
        "check every file; activate VERSION: make it the live one",
    )  # fmt: skip
    priors.add_argument(
        "version", nargs="?", type=_version_number, metavar="VERSION",
        help="version number, as priors list prints it (v000007) or plain (7)",
    )  # fmt: skip
    priors.add_argument(
        "--models", type=Path, default=Path("models"), metavar="DIR",
        help="model registry (default models/); it must exist",
    )  # fmt: skip
    _store_args(priors)

    ev = sub.add_parser(
        "evaluate", parents=[common],
        help="the evaluation suite: tables and figures of every evaluation",
    )  # fmt: skip
    ev.add_argument(
        "--out", type=Path, default=Path("docs") / "evaluation",
        help="results folder, replaced only when every section succeeded (default docs/evaluation)",
    )  # fmt: skip
    ev.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ev.add_argument("--quick", action="store_true", help="small settings (seconds, for checks)")
    ev.add_argument(
        "--only", action="append", metavar="SECTION",
        help="run only this section (repeatable): policy, bandits, risk, ab",
    )  # fmt: skip

    rep = sub.add_parser(
        "report", parents=[common],
        help="write the analyst report (HTML) of a prior-set version",
    )  # fmt: skip
    rep.add_argument(
        "version", nargs="?", help="version number (7 or v000007; default: the latest fit)"
    )
    rep.add_argument(
        "--models", type=Path, default=Path("models"), metavar="DIR",
        help="model registry (default models/); it must exist",
    )  # fmt: skip
    rep.add_argument(
        "--previous",
        help="compare with this version (default: the one active before the fit, from run.json)",
    )
    rep.add_argument("--seed", type=int, default=0, help="random seed of the report's checks")
    _store_args(rep)

    ingest = sub.add_parser(
        "ingest", parents=[common], epilog=INGEST_COLUMNS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="append validated signals, outcomes or returns",
        description="Append a validated batch; a batch with any bad cell is refused whole "
        "(every bad cell is reported by line and column) and nothing is written.",
    )  # fmt: skip
    ingest.add_argument(
        "what", choices=["signals", "outcomes", "returns"], help="what the file holds"
    )
    ingest.add_argument("file", type=Path, help="CSV or Parquet file (columns below)")
    ingest.add_argument(
        "--kind", choices=["log", "simple"], help="returns only (required): which returns"
    )
    ingest.add_argument(
        "--create", action="store_true",
        help="create the store (and --data directory) when it does not exist yet; without it a "
        "missing store is an error",
    )  # fmt: skip
    ingest.add_argument(
        "--date-format", metavar="FORMAT",
        help="outcomes and returns: the dates' strptime format, e.g. %%d/%%m/%%Y (default: ISO "
        "8601, YYYY-MM-DD; other layouts are refused, never guessed)",
    )  # fmt: skip
    _store_args(ingest)

    dash = sub.add_parser(
        "dashboard", help="serve the live dashboard (risk, correlation, signals, decisions, "
        "nightly job, regime) on the store and the model registry, read-only",
    )  # fmt: skip
    dash.add_argument(
        "--store", help="SQLAlchemy URL of an existing store, opened read-only (default: the "
        "SQLite file under --data; a missing store is an error, never created)",
    )  # fmt: skip
    dash.add_argument(
        "--data", type=Path, default=Path("data"),
        help="data directory of the SQLite store when --store is not given (default data/)",
    )  # fmt: skip
    dash.add_argument(
        "--models", type=Path, default=Path("models"),
        help="model registry to show on the nightly-job page (default models/; must exist)",
    )  # fmt: skip
    dash.add_argument(
        "--host", default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other than loopback requires --token)",
    )  # fmt: skip
    dash.add_argument("--port", type=_port, default=5006, help="TCP port, 1-65535 (default 5006)")
    dash.add_argument(
        "--token",
        help="access token (16-200 printable characters): every request must carry it "
        "(?token=..., then a cookie); required when --host is not a loopback address",
    )  # fmt: skip
    dash.add_argument(
        "--refresh", type=float, default=5.0,
        help="seconds between an open page's checks for new data (default 5)",
    )  # fmt: skip
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 1-65535, got {value}")
    return value


class MissingPathError(Exception):
    """A models or store path that does not exist: a usage error (exit 2), nothing created.

    Examples
    --------
    :func:`main` turns it into exit code 2 (``EXIT_USAGE``), the message on stderr:

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     code = main(["priors", "list", "--models", os.path.join(tmp, "no-such-models")])
    >>> code == EXIT_USAGE
    True
    """


def _data_dir(args: argparse.Namespace) -> Path:
    return Path("data") if args.data is None else args.data


def _sqlite_file(args: argparse.Namespace) -> Path | None:
    """The SQLite file the store arguments name (None: a server database or in-memory)."""
    if args.store is None:
        return _data_dir(args) / "bayes_mem.sqlite"
    from bayes_mem.store.store import _parse_url

    url = _parse_url(args.store)
    path = url.database if url.get_backend_name() == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


def _check_store(args: argparse.Namespace, *, create: bool = False) -> None:
    """A missing store is an error naming the path, unless ``create`` (``ingest --create``)."""
    file = _sqlite_file(args)
    if file is None or file.exists() or create:
        return
    if args.store is None and not _data_dir(args).is_dir():
        raise MissingPathError(
            f"no data directory {_data_dir(args)} (and so no store {file}): give --data DIR or "
            "--store URL of an existing store (ingest --create makes a new one)"
        )
    raise MissingPathError(
        f"no store {file}: give --data DIR or --store URL of an existing store (ingest --create "
        "makes a new one)"
    )


def _check_models(args: argparse.Namespace) -> None:
    if not args.models.is_dir():
        raise MissingPathError(f"no model registry {args.models}: give --models DIR")


def _open_store(args: argparse.Namespace, *, create: bool = False):
    from bayes_mem.store import Store

    _check_store(args, create=create)
    return Store(args.store, data_dir=_data_dir(args))


# third-party loggers whose INFO lines (sampler progress, compilation, cluster chatter) are hidden
# at the default level: -v shows them
QUIET_LOGGERS = (
    "pytensor", "arviz", "pymc", "numba", "distributed", "dask", "nutpie", "matplotlib",
    "asyncio", "bokeh", "tornado", "fsspec", "PIL", "urllib3", "filelock", "numexpr", "jax",
)  # fmt: skip


class _OwnInfoOnly(logging.Filter):
    """At the default level: INFO from bayes_mem itself, WARNING and above from anyone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return record.name == "bayes_mem" or record.name.startswith(("bayes_mem.", "__main__"))


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _OwnInfoOnly)]:
            handler.removeFilter(old)
        if not verbose:
            handler.addFilter(_OwnInfoOnly())
    for name in QUIET_LOGGERS:  # also the libraries' own handlers (pymc adds one)
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    Examples
    --------
    Register two signals in a new store, then ask a store that does not exist (exit 2):

    >>> import os, tempfile
    >>> import pandas as pd
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "signals.csv")
    >>> pd.DataFrame({"name": ["mom_a", "mom_b"], "family": ["momentum"] * 2}).to_csv(
    ...     path, index=False)
    >>> main(["ingest", "signals", path, "--data", os.path.join(tmp.name, "data"), "--create"])
    2 signals written
    0
    >>> main(["ingest", "signals", path, "--data", os.path.join(tmp.name, "elsewhere")])
    2
    >>> tmp.cleanup()
    """
    args = build_parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", False)
    _configure_logging(args.verbose)
    try:
        if getattr(args, "store", None) is not None:  # a usage error before anything is done
            from bayes_mem.store.store import _parse_url

            _parse_url(args.store)
        return _run(args)
    except Exception as exc:
        code = _error_code(exc)
        if code is None:
            raise
        text = str(exc) or type(exc).__name__
        if code == EXIT_USAGE or _is_database_error(exc):
            text = text.strip().splitlines()[0]
        print(f"bayes-mem {args.command}: error: {text}", file=sys.stderr)
        return code


def _is_database_error(exc: BaseException) -> bool:
    sa = sys.modules.get("sqlalchemy")
    return sa is not None and isinstance(exc, sa.exc.SQLAlchemyError)


def _error_code(exc: BaseException) -> int | None:
    """The exit code of an expected error (None: a bug, let the traceback show)."""
    store = sys.modules.get("bayes_mem.store.store")
    if isinstance(exc, MissingPathError):
        return EXIT_USAGE
    if store is not None and isinstance(exc, store.StoreURLError):
        return EXIT_USAGE
    schema = sys.modules.get("bayes_mem.store.schema")
    if isinstance(exc, ValueError | OSError) or _is_database_error(exc):
        return EXIT_ERROR
    if schema is not None and isinstance(exc, schema.SchemaError):
        return EXIT_ERROR
    return None


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from bayes_mem.demo_nightly import run

        code, lines = run(args.dir, args.seed)
        if args.json:
            _print_json({"dir": str(args.dir), "seed": args.seed, "exit_code": code,
                         "report": lines})  # fmt: skip
        else:
            print("\n".join(lines))
        return code
    if args.command == "demo-live":
        from bayes_mem.demo import format_result, run_demo, save_state

        result = run_demo(seed=args.seed, rounds=args.rounds)
        save_state(result.decider, args.state)
        if args.json:
            _print_json({
                "seed": args.seed, "rounds": result.rounds, "trades": result.trades,
                "pnl": result.pnl, "pnl_trade_all": result.pnl_trade_all,
                "pnl_oracle": result.pnl_oracle, "state": str(args.state),
            })  # fmt: skip
        else:
            print(format_result(result))
            print(f"\ndecider state written to {args.state}")
        return EXIT_OK
    if args.command == "recalibrate":
        from bayes_mem.offline.recalibrate import RecalibrationConfig, recalibrate

        config = (
            RecalibrationConfig.from_file(args.config) if args.config else RecalibrationConfig()
        )
        if args.scheduler is not None or args.fanout:
            import dataclasses

            config = dataclasses.replace(
                config, fanout="dask",
                scheduler=config.scheduler if args.scheduler is None else args.scheduler,
            )  # fmt: skip
        with _open_store(args) as store:
            result = recalibrate(store, args.models, config)
        summary = json.dumps(result.to_dict(), indent=2, default=str)
        print(summary)
        if args.json not in (None, True):  # owner-only: it names the store's signals and verdict
            fd = os.open(args.json, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(summary)
        return result.exit_code
    if args.command == "priors":
        return _priors(args)
    if args.command == "evaluate":
        from bayes_mem.evaluation.suite import EvaluationError, run_suite

        try:
            summary = run_suite(args.out, seed=args.seed, quick=args.quick, only=args.only)
        except EvaluationError as exc:
            print(f"bayes-mem evaluate: {exc}", file=sys.stderr)
            return EXIT_ERROR
        seconds = {
            name: sec.get("wall_seconds", sec.get("seconds"))
            for name, sec in summary["sections"].items()
        }
        if args.json:
            _print_json({"out": str(args.out), "summary": str(args.out / "summary.md"),
                         "seconds": seconds})  # fmt: skip
            return EXIT_OK
        for name, sec in seconds.items():
            print(f"{name}: {sec} s")
        print(f"results in {args.out} (summary: {args.out / 'summary.md'})")
        return EXIT_OK
    if args.command == "report":
        return _report(args)
    if args.command == "dashboard":
        return _dashboard(args)
    if args.command == "ingest":
        if args.what == "signals" and args.date_format is not None:
            print("bayes-mem ingest signals: --date-format is for outcomes and returns",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        if args.what == "returns" and args.kind is None:
            print("bayes-mem ingest returns: --kind log|simple is required", file=sys.stderr)
            return EXIT_USAGE
        from bayes_mem.store import IngestError

        try:
            with _open_store(args, create=args.create) as store:
                if args.what == "signals":
                    n = store.register_signals(args.file)
                elif args.what == "outcomes":
                    n = store.ingest_outcomes(args.file, date_format=args.date_format)
                else:
                    n = store.ingest_returns(
                        args.file, kind=args.kind, date_format=args.date_format
                    )
        except IngestError as exc:  # every problem, one a line: row, column, value, reason
            if args.json:
                _print_json({"what": args.what, "file": str(args.file), "written": 0,
                             "problems": [p.to_dict() for p in exc.problems]})  # fmt: skip
            print(f"bayes-mem ingest: error: {args.what}: {len(exc.problems)} problem(s), "
                  f"nothing written:", file=sys.stderr)  # fmt: skip
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return EXIT_ERROR
        if args.json:
            _print_json({"what": args.what, "file": str(args.file), "written": n, "problems": []})
        else:
            print(f"{n} {args.what} written")
        return EXIT_OK
    return EXIT_USAGE  # pragma: no cover - argparse rejects unknown commands


def _dashboard(args: argparse.Namespace) -> int:
    """Check every option, open the store read-only, then serve; a bad value exits 2 before
    anything is bound or created."""
    from bayes_mem.dashboard.data import DashboardError, open_source
    from bayes_mem.dashboard.server import OptionError, check_options, serve
    from bayes_mem.store.store import sqlite_url

    try:
        options = check_options(args.host, args.port, args.token, args.refresh)
        url = args.store if args.store is not None else sqlite_url(args.data)
        source = open_source(url, args.models)
    except (OptionError, DashboardError) as exc:
        print(f"bayes-mem dashboard: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        serve(source, options)
    except OptionError as exc:
        print(f"bayes-mem dashboard: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _print_json(doc: object) -> None:
    """The one JSON document a verb prints on stdout under --json."""
    print(json.dumps(doc, indent=2, default=str, allow_nan=False))


def _priors(args: argparse.Namespace) -> int:
    from bayes_mem.live.prior_set import (
        activate,
        active_version,
        gate_passed,
        list_versions,
        load_live_prior_set,
        load_prior_set,
        verify_version,
    )

    _check_models(args)
    if args.action == "list":
        try:
            active, active_error = active_version(args.models), None
        except ValueError as exc:
            active, active_error = None, str(exc)
        rows = []
        for v in list_versions(args.models):
            row: dict = {"version": v, "active": v == active}
            try:
                ps = load_prior_set(args.models, v)
                row.update({
                    "created_at": ps.created_at,
                    "gate": "passed" if gate_passed(ps) else "rejected",
                    "families": len(ps.families), "symbols": len(ps.symbols),
                    "components": {n: None if c is None else c.to_dict()
                                   for n, c in (ps.components or {}).items()},
                    "components_text": _components_line(ps),
                })  # fmt: skip
            except ValueError as exc:
                row["error"] = str(exc)
            rows.append(row)
        if args.json:
            for row in rows:
                row.pop("components_text", None)
            _print_json({"active": active, "active_error": active_error, "versions": rows})
            return EXIT_OK
        if active_error is not None:
            print(f"ACTIVE UNREADABLE: {active_error}")
        wide = max([25, *(len(str(r["created_at"])) for r in rows if "error" not in r)])
        print(f"{'VERSION':<7}  {'STATUS':<6}  {'CREATED':<{wide}}  {'GATE':<8}  FAMILIES  "
              "SYMBOLS  COMPONENTS (source version, data through)")  # fmt: skip
        for row in rows:
            status = "active" if row["active"] else ""
            if "error" in row:
                print(f"v{row['version']:06d}  {status:<6}  UNREADABLE: {row['error']}")
                continue
            print(f"v{row['version']:06d}  {status:<6}  {row['created_at']:<{wide}}  "
                  f"{row['gate']:<8}  {row['families']:>8}  {row['symbols']:>7}  "
                  f"{row['components_text']}")  # fmt: skip
        return EXIT_OK
    if args.action == "verify":
        failed, results = 0, []
        for v in [args.version] if args.version else list_versions(args.models):
            try:
                files = verify_version(args.models, v)
                results.append({"version": v, "ok": True, "files": files})
                if not args.json:
                    print(f"v{v:06d}  OK  " + "; ".join(f"{n}: {w}" for n, w in files.items()))
            except ValueError as exc:
                failed += 1
                results.append({"version": v, "ok": False, "error": str(exc)})
                if not args.json:
                    print(f"v{v:06d}  FAILED: {exc}")
        if args.json:
            _print_json({"versions": results})
        return EXIT_ERROR if failed else EXIT_OK
    if args.version is None:
        print(f"bayes-mem priors {args.action}: a VERSION is required", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "show":
        shown = _show(load_prior_set(args.models, args.version))
        if args.json:
            _print_json(shown)
        else:
            print(_show_text(shown))
        return EXIT_OK
    load_live_prior_set(args.models, args.version)  # refused: nothing opened, nothing changed
    if args.store or args.data is not None or (_data_dir(args) / "bayes_mem.sqlite").exists():
        from bayes_mem.store.prior_records import activation_record

        with _open_store(args) as store:  # a store that cannot be opened: nothing changed
            activate(
                args.models, args.version,
                record=lambda ps: activation_record(store, ps, args.models),
            )  # fmt: skip
    else:
        activate(args.models, args.version)
    if args.json:
        _print_json({"active": args.version})
    else:
        print(f"prior set v{args.version} is active")
    return EXIT_OK


def _components_line(ps) -> str:
    """``winrate v1 (through 2008-07-28), returns v2 (through 2008-08-26), regime none``."""
    parts = []
    for name, src in (ps.components or {}).items():
        if src is None:
            parts.append(f"{name} none")
        else:
            through = "?" if src.data_through is None else src.data_through[:10]
            parts.append(f"{name} v{src.version} (through {through})")
    return ", ".join(parts)


def _show(ps) -> dict:
    """What ``priors show`` prints: metadata, per component its source and age, diagnostics."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    components = {}
    for name, src in (ps.components or {}).items():
        components[name] = None if src is None else {
            **src.to_dict(), "age_days": src.age_days(today),
            "carried": src.version != ps.version,
        }  # fmt: skip
    return {
        "version": ps.version, "created_at": ps.created_at, "data_through": ps.data_through,
        "code_version": ps.code_version, "config_hash": ps.config_hash,
        "as_of": today.isoformat(), "components": components,
        "families": _family_priors(ps), "risk": _symbol_risk(ps),
        "diagnostics": ps.diagnostics,
    }  # fmt: skip


INTERVAL = 0.9  # the equal-tailed credible intervals priors show prints
ES_LEVEL = 0.975


def _summary(draws) -> dict:
    import numpy as np

    x = np.asarray(draws, dtype=float)
    lo, hi = np.quantile(x, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2])
    return {"mean": float(x.mean()), "interval": [float(lo), float(hi)]}


def _family_priors(ps) -> dict:
    """Per family: the posterior mean and 90% interval of its mean win rate and concentration."""
    return {
        name: {
            "draws": len(f.mean),
            "mean_win_rate": _summary(f.mean),
            "concentration": _summary(f.kappa),
        }
        for name, f in sorted(ps.families.items())
    }


def _symbol_risk(ps) -> dict:
    """Per symbol: the one-day 97.5% ES of a long position, from the prior set's return model
    at its ``data_through`` state, with the 90% band across parameter draws."""
    if not ps.symbols:
        return {}
    from bayes_mem.live.return_model import ReturnModel

    symbols = sorted(ps.symbols)
    model = ReturnModel(
        {s: ps.symbols[s].draws for s in symbols}, {s: ps.symbols[s].sigma2 for s in symbols}
    )
    forecast = model.risk(ES_LEVEL, side="long", horizon=1)
    band = forecast.es_band(INTERVAL)
    out = {}
    for i, s in enumerate(forecast.symbols):
        out[s] = {
            "level": ES_LEVEL, "horizon_days": 1, "side": "long",
            "es_log": float(forecast.es_log[i]), "es_simple": float(forecast.es_simple[i]),
            "es_log_interval": [float(band[i, 0]), float(band[i, 1])],
            "var_log": float(forecast.var_log[i]),
        }  # fmt: skip
    return out


def _show_text(shown: dict) -> str:
    """``priors show`` for people: metadata, components, the priors themselves."""
    pct = int(INTERVAL * 100)
    lines = [
        f"prior set v{shown['version']:06d}  created {shown['created_at']}  data through "
        f"{shown['data_through']}  code {shown['code_version']}  config {shown['config_hash']}",
        f"gate: {'passed' if (shown['diagnostics'] or {}).get('passed') else 'rejected'} "
        "(diagnostics: priors show --json)",
        "components (source version, data through, age in days as of " + shown["as_of"] + "):",
    ]
    for name, c in shown["components"].items():
        if c is None:
            lines.append(f"  {name:<8} none")
        else:
            carried = ", carried" if c["carried"] else ""
            lines.append(f"  {name:<8} v{c['version']}  {c.get('data_through')}  "
                         f"{c['age_days']} days{carried}")  # fmt: skip
    lines.append(f"win-rate priors per family (posterior mean [{pct}% interval]):")
    lines.append(f"  {'FAMILY':<24}  {'MEAN WIN RATE':<24}  CONCENTRATION")
    for name, f in shown["families"].items():
        m, k = f["mean_win_rate"], f["concentration"]
        lines.append(
            f"  {name:<24}  {m['mean']:.3f} [{m['interval'][0]:.3f}, {m['interval'][1]:.3f}]"
            f"{'':<5}  {k['mean']:.1f} [{k['interval'][0]:.1f}, {k['interval'][1]:.1f}]"
        )
    if not shown["families"]:
        lines.append("  (none)")
    lines.append(f"one-day {ES_LEVEL:.1%} ES of a long position, log-return loss from the "
                 f"data-through state (posterior predictive [{pct}% band across parameter "
                 "draws]):")  # fmt: skip
    lines.append(f"  {'SYMBOL':<24}  ES")
    for sym, r in shown["risk"].items():
        lo, hi = r["es_log_interval"]
        lines.append(f"  {sym:<24}  {r['es_log']:.2%} [{lo:.2%}, {hi:.2%}]")
    if not shown["risk"]:
        lines.append("  (none)")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    """Validate the version and the store before anything is opened or written."""
    from bayes_mem.live.prior_set import version_dir
    from bayes_mem.offline.report import latest_version, write_version_report

    _check_models(args)

    def parse(value: str) -> int:
        text = value[1:] if value[:1] in "vV" else value
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"VERSION must be a version number like 7 or v000007, got {value!r}")
        number = int(text)
        if not (version_dir(args.models, number) / "prior_set.json").exists():
            raise ValueError(f"no prior set version {number} under {args.models / 'prior_sets'}")
        return number

    version = latest_version(args.models) if args.version is None else parse(args.version)
    previous = None if args.previous is None else parse(args.previous)
    with _open_store(args) as store:
        path = write_version_report(args.models, version, store, previous=previous, seed=args.seed)
    if args.json:
        _print_json({"version": version, "previous": previous, "path": str(path)})
    else:
        print(f"report of prior set v{version:06d} written to {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
