"""``tokenslo rules generate``: SLO files → Prometheus rules (or a PrometheusRule)."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tokenslo.core.timescale import check_time_scale
from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.rules import calendar
from tokenslo.rules.generate import FORMATS, render_rules

if TYPE_CHECKING:
    from tokenslo.spec.loader import LoadResult


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this component's subcommands."""
    gen = subparsers.add_parser(
        "generate",
        help="recording and multi-window burn-rate alert rules from SLO files",
        description="Generate Prometheus recording rules and SLOErrorBudgetBurn/SLONoData alerts.",
    )
    gen.add_argument("paths", nargs="+", metavar="PATH", help="SLO files or directories")
    gen.add_argument("-o", "--output", metavar="FILE", help="write here (atomically), not stdout")
    gen.add_argument(
        "--format",
        choices=FORMATS,
        default="prometheus",
        help="plain rule file, or a Kubernetes PrometheusRule (operator)",
    )
    gen.add_argument(
        "--time-scale",
        default="1",
        metavar="N",
        help="divide every window, 'for' and interval by N: compressed time for "
        "lab rehearsals only (default 1)",
    )
    gen.set_defaults(handler=generate)


def parse_time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    return check_time_scale(value, given=text)


def generate(args: argparse.Namespace) -> int:
    from tokenslo.spec.loader import load_result  # imported late: keeps `--help` fast

    scale = parse_time_scale(args.time_scale)
    loaded, now = load_result(args.paths), time.time()
    text = render_rules(loaded.slos, fmt=args.format, time_scale=scale, now=now)
    for skip in calendar.skips(loaded.slos, scale, now):
        print(f"tokenslo: warning: {skip_position(loaded, skip)}: {skip.message}", file=sys.stderr)
    if args.output:
        write_output(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def skip_position(loaded: LoadResult, skip: calendar.Skip) -> str:
    """``file:line:col: field`` of the SLO field a calendar skip blames."""
    from tokenslo.spec.yamlpos import field_path

    doc, index = loaded.places[skip.slo.name]
    path: tuple[str | int, ...] = ("slos", index, *skip.field.split("."))
    line, column = doc.where(path)
    return f"{doc.file}:{line}:{column}: {field_path(path)}"


def write_output(path: Path, text: str) -> None:
    """``-o FILE``: replaced atomically, so Prometheus reloading its rule files never sees
    half a file; a missing directory is bad input, not a traceback."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"directory {str(directory)!r} does not exist", field="-o")
    write_atomically(path, text)
