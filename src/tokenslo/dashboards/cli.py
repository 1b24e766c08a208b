"""``tokenslo dashboards render``: SLO files → Grafana dashboard JSON files."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this component's subcommands."""
    render = subparsers.add_parser(
        "render",
        help="render the Grafana dashboards for SLO files",
        description="Render the SLO overview and detail dashboards and the executive, on-call "
        "and debug views of token infrastructure as import-ready Grafana JSON (one file per "
        "dashboard, written atomically).",
    )
    render.add_argument("paths", nargs="+", metavar="PATH", help="SLO files or directories")
    render.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="directory to write <dashboard>.json files into (created)",
    )
    render.add_argument(
        "--templates",
        metavar="DIR",
        help="directory of *.json.j2 templates searched before the built-in ones",
    )
    render.set_defaults(handler=render_command)


def render_command(args: argparse.Namespace) -> int:
    from tokenslo.dashboards.generate import render_files, write_dashboards
    from tokenslo.spec.loader import load_paths

    files = render_files(load_paths(args.paths), args.templates)
    for path in write_dashboards(files, args.output):
        print(path, file=sys.stderr)
    return 0
