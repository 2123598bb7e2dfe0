"""``bayes-mem`` command line.

Exit codes: 0 success (for ``recalibrate``: a new prior set is published and active, every
component refreshed); 4 (``recalibrate``) published and active, but a component's fit failed its
gate and the set keeps that component's previous version (or none yet): the JSON summary's
``components`` says which and why; 3 the diagnostics gate rejected every component (the previous
prior set stays active); 1 an error (one line on stderr: a refused prior set, a store that
cannot be opened or written, a bad file); 2 bad usage (the arguments themselves: an unparsable
``--store`` URL or an unknown database included).

``recalibrate --scheduler ADDRESS`` fans the returns fit out on an existing Dask cluster and
``--fanout`` on a local one (:mod:`bayes_mem.offline.fanout`); an unreachable scheduler is an
error (exit 1, naming the address) before anything is written.

``priors list`` prints one line per version: its verdict, sizes and, per component (win rates,
returns, regime), the version it came from and its ``data_through``. ``priors show VERSION``
prints the version's metadata, per component its source, date and age in days (as of today,
UTC), and the night's diagnostics (each component's own verdict included), as JSON.

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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="SQLAlchemy URL (default: SQLite under --data)")
    p.add_argument("--data", type=Path, default=Path("data"), help="data directory (default data/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-mem", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    full = sub.add_parser(
        "demo", help="synthetic store -> nightly job -> a trading day on the published priors"
    )
    full.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    full.add_argument(
        "--dir", type=Path, default=Path("demo"),
        help="demo folder, recreated on every run (default demo/)",
    )  # fmt: skip

    demo = sub.add_parser("demo-live", help="the live decision path alone on simulated signals")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--rounds", type=_positive_int, default=2_000, help="rounds to simulate")
    demo.add_argument(
        "--state", type=Path, default=Path("models") / "demo" / "decider_state.json",
        help="where to write the decider's JSON snapshot (default models/demo/decider_state.json)",
    )  # fmt: skip

    rec = sub.add_parser("recalibrate", help="the nightly job: fit, gate, publish a prior set")
    _store_args(rec)
    rec.add_argument(
        "--models", type=Path, default=Path("models"), help="model registry (default models/)"
    )
    rec.add_argument("--config", type=Path, help="JSON file of RecalibrationConfig fields")
    rec.add_argument("--json", type=Path, help="also write the JSON summary to this file")
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

    priors = sub.add_parser("priors", help="list, show, verify or activate prior sets")
    priors.add_argument("action", choices=["list", "show", "verify", "activate"])
    priors.add_argument("version", nargs="?", type=_positive_int)
    priors.add_argument("--models", type=Path, default=Path("models"))
    _store_args(priors)

    ev = sub.add_parser(
        "evaluate", help="the evaluation suite: tables and figures of every evaluation"
    )
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

    rep = sub.add_parser("report", help="write the analyst report (HTML) of a prior-set version")
    rep.add_argument(
        "version", nargs="?", help="version number (7 or v000007; default: the latest fit)"
    )
    rep.add_argument("--models", type=Path, default=Path("models"), help="model registry")
    rep.add_argument(
        "--previous",
        help="compare with this version (default: the one active before the fit, from run.json)",
    )
    rep.add_argument("--seed", type=int, default=0, help="random seed of the report's checks")
    _store_args(rep)

    ingest = sub.add_parser("ingest", help="append validated signals, outcomes or returns")
    ingest.add_argument("what", choices=["signals", "outcomes", "returns"])
    ingest.add_argument("file", type=Path, help="CSV or Parquet file")
    ingest.add_argument("--kind", choices=["log", "simple"], help="returns only: which returns")
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
    dash.add_argument(
        "--port", type=_port, default=5006, help="TCP port, 1-65535 (default 5006)"
    )
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


def _open_store(args: argparse.Namespace):
    from bayes_mem.store import Store

    return Store(args.store, data_dir=args.data)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
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
        print("\n".join(lines))
        return code
    if args.command == "demo-live":
        from bayes_mem.demo import format_result, run_demo, save_state

        result = run_demo(seed=args.seed, rounds=args.rounds)
        print(format_result(result))
        save_state(result.decider, args.state)
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
        summary = json.dumps(result.to_json(), indent=2, default=str)
        print(summary)
        if args.json:  # owner-only: it names the store's signals and the fit's verdict
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
        for name, sec in summary["sections"].items():
            print(f"{name}: {sec.get('wall_seconds', sec.get('seconds'))} s")
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
        with _open_store(args) as store:
            if args.what == "signals":
                n = store.register_signals(args.file)
            elif args.what == "outcomes":
                n = store.ingest_outcomes(args.file, date_format=args.date_format)
            else:
                if args.kind is None:
                    print(
                        "bayes-mem ingest returns: --kind log|simple is required", file=sys.stderr
                    )
                    return EXIT_USAGE
                n = store.ingest_returns(args.file, kind=args.kind, date_format=args.date_format)
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

    if args.action == "list":
        try:
            active = active_version(args.models)
        except ValueError as exc:
            active = None
            print(f"ACTIVE UNREADABLE: {exc}")
        for v in list_versions(args.models):
            try:
                ps = load_prior_set(args.models, v)
                state = "passed" if gate_passed(ps) else "rejected"
                line = (
                    f"v{v:06d}  {ps.created_at}  {state}  {len(ps.families)} families  "
                    f"{len(ps.symbols)} symbols  " + _components_line(ps)
                )
            except ValueError as exc:
                line = f"v{v:06d}  UNREADABLE: {exc}"
            print(("* " if v == active else "  ") + line)
        return EXIT_OK
    if args.action == "verify":
        failed = 0
        for v in [args.version] if args.version else list_versions(args.models):
            try:
                files = verify_version(args.models, v)
                print(f"v{v:06d}  OK  " + "; ".join(f"{n}: {w}" for n, w in files.items()))
            except ValueError as exc:
                failed += 1
                print(f"v{v:06d}  FAILED: {exc}")
        return EXIT_ERROR if failed else EXIT_OK
    if args.version is None:
        print(f"bayes-mem priors {args.action}: a VERSION is required", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "show":
        print(json.dumps(_show(load_prior_set(args.models, args.version)), indent=2))
        return EXIT_OK
    load_live_prior_set(args.models, args.version)  # refused: nothing opened, nothing changed
    if args.store or (args.data / "bayes_mem.sqlite").exists():
        from bayes_mem.store.prior_records import activation_record

        with _open_store(args) as store:  # a store that cannot be opened: nothing changed
            activate(
                args.models, args.version,
                record=lambda ps: activation_record(store, ps, args.models),
            )  # fmt: skip
    else:
        activate(args.models, args.version)
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
            **src.to_json(), "age_days": src.age_days(today),
            "carried": src.version != ps.version,
        }  # fmt: skip
    return {
        "version": ps.version, "created_at": ps.created_at, "data_through": ps.data_through,
        "code_version": ps.code_version, "config_hash": ps.config_hash,
        "as_of": today.isoformat(), "components": components, "diagnostics": ps.diagnostics,
    }  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    """Validate the version and the store before anything is opened or written."""
    from bayes_mem.live.prior_set import version_dir
    from bayes_mem.offline.report import latest_version, write_version_report

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
    if not args.store and not (args.data / "bayes_mem.sqlite").exists():
        raise ValueError(f"no store at {args.data / 'bayes_mem.sqlite'} (give --data or --store)")
    with _open_store(args) as store:
        path = write_version_report(args.models, version, store, previous=previous, seed=args.seed)
    print(f"report of prior set v{version:06d} written to {path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
