"""``tokenslo gameday [FILE]``: the whole game day in one command (see docs/gameday.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tokenslo.lab import LAB_STATE_DIR

HELP = "run a game day: target up, background load, experiments, verdict and report"
DESCRIPTION = (
    "Bring the target up (the local lab unless FILE names a real one), start background "
    "load, run each experiment with `chaos run --rollback-strategy always`, wait for the "
    "SLOs to recover between experiments, then judge every experiment against its "
    "expectation and write reports/<UTC timestamp>/{gameday.html,gameday.md,result.json}. "
    "Without FILE: the bundled default (lab, time scale 60, idp-outage, jwks-unavailable, "
    "clock-skew, clock-skew-beyond-leeway). Exit 0 every expectation met, 1 one missed, "
    "2 bad input, 3 target or Prometheus unreachable, 130 interrupted (Ctrl-C/SIGTERM: "
    "faults rolled back, partial report written)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the top-level ``gameday`` command."""
    p = subparsers.add_parser("gameday", help=HELP, description=DESCRIPTION)
    p.add_argument(
        "file",
        nargs="?",
        type=Path,
        metavar="FILE",
        help="gameday.yaml (default: the bundled lab game day)",
    )
    p.add_argument(
        "--all",
        action="store_true",
        dest="include_extended",
        help="also run the experiments marked extended (every bundled one)",
    )
    p.add_argument(
        "--target",
        metavar="FILE",
        help="run against this target description instead of the file's target "
        "(docs/target.md; e.g. a real IdP behind tokenslo proxy)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the lab running afterwards (when the game day started it)",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(LAB_STATE_DIR),
        help=f"the lab's state dir (default {LAB_STATE_DIR})",
    )
    p.add_argument(
        "--lab-config",
        metavar="FILE",
        help="lab config (ports, …) overriding the game day's target.lab_config",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="reports go to OUT/<UTC timestamp>/ (default reports/)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from tokenslo.gameday.plan import load_plan
    from tokenslo.gameday.run import run_gameday
    from tokenslo.gameday.state import Options

    plan = load_plan(args.file)
    if args.target:
        from dataclasses import replace

        from tokenslo.gameday.plan import Target

        plan = replace(plan, target=Target(kind="external", file=args.target))
    outcome = run_gameday(
        Options(
            plan=plan,
            include_extended=args.include_extended,
            keep=args.keep,
            state_dir=args.state_dir,
            out_dir=args.out,
            lab_config=args.lab_config,
            progress=not args.no_progress,
        )
    )
    if outcome.results:
        print(outcome.table)
    if outcome.report_dir is not None:
        print(f"report: {outcome.report_dir}/gameday.html (also gameday.md, result.json)")
    if outcome.interrupted:
        print(
            "tokenslo: game day interrupted: faults rolled back, partial report written",
            file=sys.stderr,
        )
    if outcome.error is not None:
        raise outcome.error  # one line on stderr and its exit code (tokenslo.cli.main)
    return outcome.exit_code
