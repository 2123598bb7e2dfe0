"""Run every benchmark: ``./run bench`` (or ``python -m benchmarks [--repeat N] [--json PATH]``)."""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks import (
    bench_dashboard,
    bench_decider,
    bench_engine,
    bench_fanout,
    bench_recalibrate,
    bench_regime,
    bench_returns,
    bench_returns_fit,
    bench_risk,
    bench_sizing,
)
from benchmarks._timing import format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats; best is kept")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument(
        "--only",
        action="append",
        choices=[
            "decider",
            "risk",
            "regime",
            "offline",
            "offline_scale",
            "returns",
            "returns_fit",
            "sizing",
            "engine",
            "fanout",
            "dashboard",
        ],
        help="run only this group (offline_scale, 1M signals in 100 families, fanout, 200 "
        "symbols on a local Dask cluster of 1 and 2 workers, about 35 minutes, and dashboard, "
        "its pages on 500 symbols and 10,000 signals, a few minutes, run only when named)",
    )
    args = parser.parse_args(argv)
    parser_groups = {
        "decider": bench_decider.run,
        "risk": bench_risk.run,
        "regime": bench_regime.run,
        "offline": bench_recalibrate.run,
        "offline_scale": bench_recalibrate.run_scale,
        "returns": bench_returns.run,
        "returns_fit": bench_returns_fit.run,
        "sizing": bench_sizing.run,
        "engine": bench_engine.run,
        "fanout": bench_fanout.run,
        "dashboard": bench_dashboard.run,
    }
    results = []
    # minutes each: run only when named (dashboard: building its store takes ~2 minutes)
    on_request = ("offline_scale", "fanout", "dashboard")
    for name in args.only or [g for g in parser_groups if g not in on_request]:
        results += parser_groups[name](repeat=args.repeat)
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([r.as_dict() for r in results], fh, indent=2)
    failed = [r.name for r in results if r.passed is False]
    if failed:
        print(f"\nFAILED goals: {', '.join(failed)}")
        return 1
    print("\nall goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
