"""``tokenslo slo backtest --synthetic --policy FILE …``: score alert policies.

``tokenslo.engine.cli`` owns ``slo backtest`` and its options; the report is rendered
here (the engine may not import the report renderer), so this module hands the
backtest parser its scorer. Exit 0 once the report is written; 2 for bad input.
"""

from __future__ import annotations

import argparse
import math

from tokenslo.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Give ``slo backtest`` (registered by ``tokenslo.engine.cli``) its scorer."""
    subparsers.choices["backtest"].set_defaults(score_policies=run_scoring)


def check_args(args: argparse.Namespace) -> None:
    if not args.synthetic:
        raise InputError(
            "--policy needs --synthetic (scoring a real range is not implemented)",
            field="--synthetic",
        )
    if not args.policy:
        raise InputError("--synthetic needs at least one --policy FILE", field="--policy")
    if args.start or args.end:
        raise InputError("--synthetic replays its own range: drop --start/--end", field="--start")
    if not math.isfinite(args.days) or args.days <= 0:
        raise InputError(f"must be a positive number of days, got {args.days:g}", field="--days")


def run_scoring(args: argparse.Namespace) -> int:
    check_args(args)
    from tokenslo.engine import scoring  # imported here: kept off every CLI start
    from tokenslo.reports import policies as report  # pulls in matplotlib
    from tokenslo.spec.loader import load_paths
    from tokenslo.spec.policy import load_policies

    chosen = load_policies(args.policy)
    slos = load_paths(args.paths)
    if not slos:
        raise InputError("no SLOs found in " + ", ".join(args.paths))
    result = scoring.score_policies(slos, chosen, args.days, args.seed)
    paths = report.write_reports(result, args.output)
    for row in report.context(result)["summary"]:
        print(
            f"{row['severity']:<7} {row['policy']:<24} alerts {row['alerts']:>4}  "
            f"precision {row['precision']:>6}  recall {row['recall']:<14} "
            f"detection {row['detection']}"
        )
    print("report written to " + ", ".join(str(p) for p in paths))
    return 0
