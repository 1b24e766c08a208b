"""``tokenslo slo status`` and ``tokenslo slo backtest``.

Both load SLO files, query Prometheus through the one evaluation path
(``tokenslo.engine.evaluator``/``backtest``) and render the result. Exit codes:
status → 0 all ok/ticket, 1 any page, 3 Prometheus unreachable or any SLO
without data/traffic (the output is still printed first); backtest → 0, or 3
when an SLO had no data in a window over the whole range.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence

from tokenslo.core.durations import (
    INSTANT_HINT,
    format_duration,
    parse_duration,
    parse_instant,
)
from tokenslo.engine import backtest as bt
from tokenslo.engine import evaluator
from tokenslo.errors import InputError, UnavailableError
from tokenslo.markdown import md_table
from tokenslo.prometheus.client import PromClient
from tokenslo.target import options as target_options

NONE = "-"
SYNTHETIC_SEED = 1  # --seed and --days of a synthetic incident set, when not given
SYNTHETIC_DAYS = 30.0


# ---------------------------------------------------------------- argument parsing (pure)


def parse_time(text: str, field: str = "--at", now: float | None = None) -> float:
    """``now``, unix seconds or RFC 3339 (with an offset or ``Z``) → unix seconds."""
    if text.strip().lower() == "now":
        return time.time() if now is None else now
    try:
        return parse_instant(text, INSTANT_HINT + ", or now")
    except ValueError as exc:
        raise InputError(str(exc), field=field) from None


def parse_step(text: str) -> float:
    """``30s``/``1m`` or plain seconds."""
    try:
        step = float(text)
    except ValueError:
        try:
            step = parse_duration(text)
        except ValueError:
            raise InputError(f"not a duration: {text!r} (e.g. 15s, 1m)", field="--step") from None
    if not math.isfinite(step) or step <= 0:
        raise InputError(f"step must be positive: {text!r}", field="--step")
    return step


def default_step(start: float, end: float) -> float:
    """About 1000 points over the range, in whole seconds, at least 1 s."""
    return float(max(1, math.ceil((end - start) / 1000)))


# ---------------------------------------------------------------- rendering (pure)


def _pct(value: float | None, digits: int = 3) -> str:
    return NONE if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


def _num(value: float | None) -> str:
    if value is None:
        return NONE
    return "inf" if math.isinf(value) else f"{value:.2f}"


def status_rows(statuses: Sequence[evaluator.SLOStatus]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the status table; one burn column per window in use."""
    windows = sorted({w for s in statuses for w in s.burn_rates}, key=lambda w: parse_duration(w))
    header = ["name", "objective", "sli", "budget left", *(f"burn {w}" for w in windows), "state"]
    rows = [
        [
            s.name,
            f"{s.objective:g}%",
            _pct(s.sli),
            _pct(s.error_budget_remaining, 1),
            *(_num(s.burn_rates.get(w)) if w in s.burn_rates else "" for w in windows),
            s.state,
        ]
        for s in statuses
    ]
    return header, rows


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def render_markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; SLO names and reasons come from files, so every
    cell is escaped (HTML and Markdown markup)."""
    return md_table(header, rows)


def backtest_rows(result: bt.Backtest) -> tuple[list[str], list[list[str]]]:
    header = ["slo", "severity", "windows", "start", "end", "duration"]
    rows = []
    for name, intervals in result.intervals.items():
        for i in intervals:
            rows.append(
                [
                    name,
                    i.severity,
                    f"{format_duration(i.long_window)}/{format_duration(i.short_window)}",
                    evaluator.iso_time(i.start),
                    "(firing)" if i.end is None else evaluator.iso_time(i.end),
                    NONE if i.end is None else format_duration(i.end - i.start),
                ]
            )
    return header, rows


# ---------------------------------------------------------------- handlers (I/O)


def _load(paths: Sequence[str]):
    from tokenslo.spec.loader import load_paths  # the spec component's entry point

    slos = load_paths(paths)
    if not slos:
        raise InputError("no SLOs found in " + ", ".join(paths))
    return slos


def run_status(args: argparse.Namespace) -> int:
    at = parse_time(args.at)
    target_options.resolve(args)
    slos = _load(args.paths)
    with PromClient(args.prometheus, timeout=args.timeout) as client:
        statuses = evaluator.evaluate(slos, client, at)
    if args.format == "json":
        print(json.dumps(evaluator.to_json(statuses), indent=2))
    else:
        header, rows = status_rows(statuses)
        render = render_markdown if args.format == "markdown" else render_table
        print(render(header, rows))
    failure = evaluator.verdict(statuses)
    unknown = evaluator.unknown_message(statuses)
    if failure is not None and unknown and not isinstance(failure, UnavailableError):
        print(f"tokenslo: {unknown}", file=sys.stderr)  # the page wins the exit code
    if failure is not None:
        raise failure
    return 0


def run_backtest(args: argparse.Namespace) -> int:
    if args.synthetic or args.policy or args.incidents:
        return int(args.score_policies(args))
    if not args.start or not args.end:
        raise InputError("--start and --end are required (or --synthetic)", field="--start")
    start = parse_time(args.start, "--start")
    end = parse_time(args.end, "--end")
    if end <= start:
        raise InputError("--end must be after --start", field="--end")
    step = parse_step(args.step) if args.step else default_step(start, end)
    target_options.resolve(args)
    slos = _load(args.paths)
    with PromClient(args.prometheus, timeout=args.timeout) as client:
        result = bt.backtest(slos, client, start, end, step)
    if args.format == "json":
        print(json.dumps(bt.to_json(result), indent=2))
    else:
        header, rows = backtest_rows(result)
        print(render_table(header, rows) if rows else "no alert condition fired in the range")
    if result.no_data:
        raise UnavailableError(
            "no data in the range for SLO(s): "
            + ", ".join(result.no_data)
            + " (no data never passes)"
        )
    return 0


def _no_scoring(_args: argparse.Namespace) -> int:
    raise InputError("alert-policy scoring is not available in this build", field="--policy")


def _common(parser: argparse.ArgumentParser) -> None:
    target_options.add_arguments(parser)
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per query (default 10)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``status`` and ``backtest`` to the ``slo`` group."""
    status = subparsers.add_parser(
        "status",
        help="SLI, error budget and burn rates of SLOs now (or --at TIME)",
        description="Evaluate SLOs at one instant: exit 0 ok/ticket, 1 page, "
        "3 Prometheus unreachable or an SLO without data/traffic.",
    )
    _common(status)
    status.add_argument("--at", default="now", metavar="TIME", help="RFC 3339, unix seconds or now")
    status.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    status.set_defaults(handler=run_status)

    backtest = subparsers.add_parser(
        "backtest",
        help="when each alert condition would have fired over a past range",
        description="Replay a time range with range queries; prints firing intervals per "
        "SLO and condition (for applied).",
    )
    _common(backtest)
    backtest.add_argument("--start", metavar="TIME", help="required unless --synthetic")
    backtest.add_argument("--end", metavar="TIME", help="required unless --synthetic")
    backtest.add_argument(
        "--step",
        metavar="S",
        help="e.g. 15s (default: ~1000 points; scoring: the policies' common interval)",
    )
    backtest.add_argument("--format", choices=("table", "json"), default="table")
    scoring = backtest.add_argument_group(
        "alert-policy scoring",
        "score policies on a synthetic incident set, or on --start/--end against an "
        "incidents file (README: Scoring alert policies)",
    )
    scoring.add_argument(
        "--policy", action="append", default=[], metavar="FILE", help="policy file; repeat"
    )
    scoring.add_argument(
        "--synthetic", action="store_true", help="replay a synthetic incident set per SLO"
    )
    scoring.add_argument(
        "--incidents",
        metavar="FILE",
        help="the real range's incidents (docs/policy-scoring.md); needs --policy",
    )
    scoring.add_argument(
        "--seed", type=int, help=f"synthetic incident set seed (default {SYNTHETIC_SEED})"
    )
    scoring.add_argument(
        "--days", type=float, help=f"synthetic range in days (default {SYNTHETIC_DAYS:g})"
    )
    scoring.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default="reports/policy-scoring",
        help="report directory (default reports/policy-scoring)",
    )
    # tokenslo.reports.policy_cli replaces this hook with the scorer (it renders the report)
    backtest.set_defaults(handler=run_backtest, score_policies=_no_scoring)
