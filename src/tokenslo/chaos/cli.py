"""``tokenslo chaos run|validate|list``: Chaos Toolkit experiments against token infrastructure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tokenslo.errors import EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this component's subcommands."""
    run = subparsers.add_parser(
        "run",
        help="run an experiment with `chaos run --rollback-strategy always` and judge the journal",
        description=(
            "Pre-check and validate EXPERIMENT, check the target and Prometheus answer, run it "
            "with the real `chaos run --rollback-strategy always` (rollbacks play even when the "
            "run fails or is interrupted), then judge the journal. Exit 0 hypothesis held, 1 "
            "deviated or failed, 2 bad experiment, 3 target or Prometheus unreachable."
        ),
    )
    run.add_argument("experiment", type=Path)
    run.add_argument(
        "--target",
        type=Path,
        metavar="FILE",
        help="target description (default: env TOKENSLO_TARGET_FILE, else the running lab's)",
    )
    run.add_argument("--journal", type=Path, help="journal file (default journal-<name>.json)")
    run.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="configuration value, as `chaos run --var` (repeatable)",
    )
    run.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="PATH",
        help="SLO files or directories (default: the target's slo_paths)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds before the run is interrupted (rollbacks still run)",
    )
    run.set_defaults(handler=_run)

    validate = subparsers.add_parser(
        "validate", help="pre-check experiments and run `chaos validate` on each"
    )
    validate.add_argument("experiments", type=Path, nargs="+")
    validate.set_defaults(handler=_validate)

    listing = subparsers.add_parser("list", help="list the experiments in a directory")
    listing.add_argument("directory", type=Path, nargs="?", default=Path("experiments"))
    listing.set_defaults(handler=_list)


def _run(args: argparse.Namespace) -> int:
    from tokenslo.chaos import journal, runner

    result = runner.run_experiment(
        args.experiment,
        target_file=args.target,
        journal_path=args.journal,
        variables=runner.parse_vars(args.var),
        slo_paths=args.slo or None,
        timeout=args.timeout,
    )
    for line in journal.summary_lines(result.verdict, str(result.extra.get("title", ""))):
        print(line)
    print(f"journal: {result.journal_path}")
    return result.exit_code


def _validate(args: argparse.Namespace) -> int:
    import os

    from tokenslo.chaos import runner

    for path in args.experiments:
        runner.precheck(path, {}, dict(os.environ))
        runner.chaos_validate(path)
        print(f"{path}: valid")
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    from tokenslo.chaos import runner

    rows = runner.list_experiments(args.directory)
    if not rows:
        print(f"no experiments in {args.directory}", file=sys.stderr)
    for row in rows:
        print(f"{row['file']}\t{row['title']}")
    return EXIT_OK
