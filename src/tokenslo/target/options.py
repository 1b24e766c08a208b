"""``--target FILE`` as the commands define it.

``add_target_file`` is the option of commands that use the whole target (clients, endpoints:
``loadtest run``, ``probe``). ``add_arguments`` and ``resolve`` serve commands that need only
Prometheus and SLO paths (status, backtest, reports): explicit ``--prometheus`` and paths win,
the target file fills in the rest."""

from __future__ import annotations

import argparse

from tokenslo.errors import InputError
from tokenslo.target.loader import load_target


def add_target_file(parser: argparse.ArgumentParser) -> None:
    """``--target FILE``, read with ``load_target`` (whose default is the one the help names)."""
    parser.add_argument(
        "--target",
        metavar="FILE",
        help="target description (default: $TOKENSLO_TARGET_FILE, else the running lab's)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="SLO files or directories (default: the target's)"
    )
    parser.add_argument(
        "--prometheus", metavar="URL", help="PromQL API base URL (default: the target's)"
    )
    parser.add_argument(
        "--target",
        metavar="FILE",
        help="target description for Prometheus and SLO paths (default: the running lab's)",
    )


def resolve(args: argparse.Namespace) -> None:
    """Fill ``args.prometheus`` and ``args.paths`` from the target file when not given."""
    if args.prometheus and args.paths:
        return
    target = load_target(args.target)
    if not args.paths:
        args.paths = list(target.slo_paths)
    if not args.prometheus:
        if not target.prometheus_url:
            raise InputError("no --prometheus and the target declares none", field="--prometheus")
        args.prometheus = target.prometheus_url
