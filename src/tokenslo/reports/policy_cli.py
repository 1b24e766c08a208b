"""``tokenslo slo backtest --policy FILE … (--synthetic | --incidents FILE --start --end)``.

Scores alert policies on a synthetic incident set or on a real range of Prometheus data
labelled by an incidents file. ``tokenslo.engine.cli`` owns ``slo backtest`` and its
options; the report is rendered here (the engine may not import the report renderer), so
this module hands the backtest parser its scorer. Exit 0 once the report is written; 2 for
bad input; 3 when Prometheus is unreachable or an SLO had no data in a real range (the
report of the others is written first).
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from tokenslo.errors import InputError, UnavailableError

GAP_WARNING = 0.05  # share of a real range's steps without data worth a warning

if TYPE_CHECKING:
    from tokenslo.core.model import SLO
    from tokenslo.engine.scoring import Scoring
    from tokenslo.spec.policy import Policy


def register(subparsers: argparse._SubParsersAction) -> None:
    """Give ``slo backtest`` (registered by ``tokenslo.engine.cli``) its scorer."""
    subparsers.choices["backtest"].set_defaults(score_policies=run_scoring)


def check_args(args: argparse.Namespace) -> None:
    if args.synthetic and args.incidents:
        raise InputError(
            "--synthetic makes its own incidents: drop --incidents (or --synthetic to score "
            "the real range --start/--end)",
            field="--incidents",
        )
    if not args.policy:
        flag = "--synthetic" if args.synthetic else "--incidents"
        raise InputError(f"{flag} needs at least one --policy FILE", field="--policy")
    if args.synthetic:
        if args.start or args.end:
            raise InputError(
                "--synthetic replays its own range: drop --start/--end", field="--start"
            )
        if args.days is not None and (not math.isfinite(args.days) or args.days <= 0):
            raise InputError(
                f"must be a positive number of days, got {args.days:g}", field="--days"
            )
        return
    if args.seed is not None or args.days is not None:
        raise InputError(
            "--seed and --days shape the synthetic incident set: drop them (or add --synthetic)",
            field="--seed" if args.seed is not None else "--days",
        )
    if not args.incidents:
        raise InputError(
            "--policy needs --synthetic, or --incidents FILE with --start/--end to score a real "
            "range",
            field="--incidents",
        )
    if not args.start or not args.end:
        raise InputError("scoring a real range needs --start and --end", field="--start")


def run_scoring(args: argparse.Namespace) -> int:
    check_args(args)
    from tokenslo.engine import scoring  # imported here: kept off every CLI start
    from tokenslo.reports import policies as report  # pulls in matplotlib
    from tokenslo.spec.policy import load_policies

    chosen = load_policies(args.policy)
    if args.synthetic:
        from tokenslo.engine.cli import SYNTHETIC_DAYS, SYNTHETIC_SEED

        days = SYNTHETIC_DAYS if args.days is None else args.days
        seed = SYNTHETIC_SEED if args.seed is None else args.seed
        result = scoring.score_policies(_slos(args.paths), chosen, days, seed)
    else:
        result = _score_range(args, chosen)
    paths = report.write_reports(result, args.output)
    for row in report.context(result)["summary"]:
        print(
            f"{row['severity']:<7} {row['policy']:<24} alerts {row['alerts']:>4}  "
            f"precision {row['precision']:>6}  recall {row['recall']:<14} "
            f"detection {row['detection']}"
        )
    print("report written to " + ", ".join(str(p) for p in paths))
    for name, share in result.gaps.items():
        if share > GAP_WARNING:
            print(
                f"tokenslo: warning: SLO {name}: {share:.0%} of the steps have no data (counted "
                "as no requests); a step shorter than two scrapes of its counters leaves them "
                "empty: try a longer --step (a multiple of the policies' interval)",
                file=sys.stderr,
            )
    if result.no_data:
        raise UnavailableError(
            "no data in the range for SLO(s): " + ", ".join(result.no_data) + " (left out)"
        )
    return 0


def _slos(paths: list[str]) -> list[SLO]:
    from tokenslo.spec.loader import load_paths

    slos = load_paths(paths)
    if not slos:
        raise InputError("no SLOs found in " + ", ".join(paths))
    return slos


def _score_range(args: argparse.Namespace, policies: list[Policy]) -> Scoring:
    """The real range's scoring: times and files checked before any query."""
    from tokenslo.engine import observed
    from tokenslo.engine.cli import parse_step, parse_time
    from tokenslo.engine.scoring import RealRange, resolution_of
    from tokenslo.prometheus.client import PromClient
    from tokenslo.spec.incidents import load_incidents
    from tokenslo.target import options as target_options

    start = parse_time(args.start, "--start")
    end = parse_time(args.end, "--end")
    if end <= start:
        raise InputError("--end must be after --start", field="--end")
    step = parse_step(args.step) if args.step else resolution_of(policies)
    observed.check_step(step, policies)
    if end - start < step:
        raise InputError("the range is shorter than one step", field="--end")
    incidents = load_incidents(args.incidents)
    target_options.resolve(args)
    slos = _slos(args.paths)
    with PromClient(args.prometheus, timeout=args.timeout) as client:
        real = RealRange(start, end, step, client.shown_url, incidents.file)
        result = observed.score_range(slos, policies, client, real, incidents)
    if not result.timelines:
        raise UnavailableError(
            "no data in the range for any SLO: " + ", ".join(result.no_data) + " (no report)"
        )
    return result
