"""``bayes-mem`` command line. Exit codes: 0 success, 2 bad usage or input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bayes-mem", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the live decision path on simulated signals")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--rounds", type=_positive_int, default=2_000, help="rounds to simulate")
    demo.add_argument(
        "--state",
        type=Path,
        default=Path("models") / "demo" / "decider_state.json",
        help="where to write the decider's JSON snapshot (default models/demo/decider_state.json)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from bayes_mem.demo import format_result, run_demo, save_state

        result = run_demo(seed=args.seed, rounds=args.rounds)
        print(format_result(result))
        save_state(result.decider, args.state)
        print(f"\ndecider state written to {args.state}")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
