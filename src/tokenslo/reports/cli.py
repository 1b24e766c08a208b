"""``tokenslo report slo``: an SLO report (HTML with charts, or Markdown) from Prometheus.

Exit codes: 0 the report was written (SLOs without data are named on stderr
and shown as such in the report); 2 bad input (flags, timeline file,
templates); 3 Prometheus unreachable, or no SLO had any data (an empty report
would only hide that).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from tokenslo.core.durations import parse_duration
from tokenslo.engine import evaluator
from tokenslo.engine.cli import default_step, parse_step, parse_time
from tokenslo.errors import InputError, UnavailableError
from tokenslo.prometheus.client import PromClient
from tokenslo.reports.data import collect
from tokenslo.reports.model import Experiment, FaultInterval
from tokenslo.target import options as target_options

DEFAULT_RANGE = 3600.0
EXPERIMENT_NUMBERS = ("detection_time", "detection_theory", "budget_consumed", "recovery_time")


# ---------------------------------------------------------------- timeline file (pure parsing)


def parse_timeline(data: Any, file: str) -> tuple[list[FaultInterval], list[Experiment], bool]:
    """``{"faults": [{start, end, label, slos?}], "experiments": [...], "interrupted": bool}``
    (or just the list of faults). Times are unix seconds or RFC 3339."""
    if isinstance(data, list):
        data = {"faults": data}
    if not isinstance(data, dict):
        raise InputError("must be a JSON object with a `faults` list", file=file)
    unknown = sorted(set(data) - {"faults", "experiments", "interrupted"})
    if unknown:
        raise InputError(
            "unknown key (expected faults, experiments, interrupted)", file=file, field=unknown[0]
        )
    faults = [
        _fault(item, f"faults[{i}]", file) for i, item in enumerate(_list(data, "faults", file))
    ]
    experiments = [
        _experiment(item, f"experiments[{i}]", file)
        for i, item in enumerate(_list(data, "experiments", file))
    ]
    interrupted = data.get("interrupted", False)
    if not isinstance(interrupted, bool):
        raise InputError("must be true or false", file=file, field="interrupted")
    return faults, experiments, interrupted


def _list(data: dict, key: str, file: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise InputError("must be a list", file=file, field=key)
    return value


def _time(value: Any, field: str, file: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError("must be unix seconds or an RFC 3339 time", file=file, field=field)
    try:
        return parse_time(str(value), field)
    except InputError as exc:
        raise InputError(exc.message, file=file, field=field) from None


def _fault(item: Any, where: str, file: str) -> FaultInterval:
    if not isinstance(item, dict):
        raise InputError("must be an object with start, end and label", file=file, field=where)
    for key in ("start", "label"):
        if key not in item:
            raise InputError("is required", file=file, field=f"{where}.{key}")
    start = _time(item["start"], f"{where}.start", file)
    end = None if item.get("end") is None else _time(item["end"], f"{where}.end", file)
    if end is not None and end < start:
        raise InputError("is before start", file=file, field=f"{where}.end")
    slos = item.get("slos", [])
    if not isinstance(slos, list) or not all(isinstance(s, str) for s in slos):
        raise InputError("must be a list of SLO names", file=file, field=f"{where}.slos")
    return FaultInterval(start, end, str(item["label"]), tuple(slos))


def _experiment(item: Any, where: str, file: str) -> Experiment:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise InputError("must be an object with a name", file=file, field=f"{where}.name")
    numbers = {}
    for key in EXPERIMENT_NUMBERS:
        value = item.get(key)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InputError("must be a number or null", file=file, field=f"{where}.{key}")
        numbers[key] = None if value is None else float(value)
    alerts = {}
    for key in ("expected_alerts", "fired_alerts"):
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
            raise InputError("must be a list of alert names", file=file, field=f"{where}.{key}")
        alerts[key] = tuple(value)
    return Experiment(
        name=item["name"],
        status=str(item.get("status", "unknown")),
        notes=str(item.get("notes", "")),
        expected_alerts=alerts["expected_alerts"],
        fired_alerts=alerts["fired_alerts"],
        **numbers,
    )


def load_timeline(path: str) -> tuple[list[FaultInterval], list[Experiment], bool]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read timeline: {exc.strerror}", file=path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON: {exc.msg}", file=path, line=exc.lineno, column=exc.colno
        ) from None
    return parse_timeline(data, path)


# ---------------------------------------------------------------- handler (I/O)


def run_slo(args: argparse.Namespace) -> int:
    # Imported here: the HTML renderer pulls in matplotlib, too slow for every CLI start.
    from tokenslo.reports.render import format_of, write_report

    format_of(args.output)  # bad -o fails before any query
    if args.templates and not Path(args.templates).is_dir():
        raise InputError(
            f"template directory {args.templates!r} does not exist", field="--templates"
        )
    end = parse_time(args.end, "--end")
    start = parse_time(args.start, "--start") if args.start else end - DEFAULT_RANGE
    if end <= start:
        raise InputError("--end must be after --start", field="--end")
    step = parse_step(args.step) if args.step else default_step(start, end)
    sli_window = _window(args.sli_window, "--sli-window") if args.sli_window else None
    faults, experiments, interrupted = (
        load_timeline(args.timeline) if args.timeline else ([], [], False)
    )
    from tokenslo.spec.loader import load_paths  # the spec component's entry point

    target_options.resolve(args)
    slos = load_paths(args.paths)
    if not slos:
        raise InputError("no SLOs found in " + ", ".join(args.paths))
    with PromClient(args.prometheus, timeout=args.timeout) as client:
        model = collect(
            slos,
            client,
            start,
            end,
            step,
            title=args.title,
            faults=faults,
            experiments=experiments,
            sli_window=sli_window,
            time_scale=args.time_scale,
            interrupted=interrupted,
        )
    path = write_report(model, args.output, args.templates)
    print(f"report written to {path}")
    unknown = evaluator.unknown_message(model.statuses)
    if unknown and all(s.state in evaluator.UNKNOWN_STATES for s in model.statuses):
        raise UnavailableError(unknown)
    if unknown:
        print(f"tokenslo: {unknown}", file=sys.stderr)
    return 0


def _window(text: str, field: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(str(exc), field=field) from None


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``slo`` to the ``report`` group."""
    slo = subparsers.add_parser(
        "slo",
        help="SLO report (HTML with charts, or Markdown) over a time range",
        description="Status at --end, SLI and burn-rate series, alert firing and fault "
        "intervals over [--start, --end]. The format follows -o: .html (one self-contained "
        "file) or .md (GitHub tables).",
    )
    target_options.add_arguments(slo)
    slo.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.html or FILE.md")
    slo.add_argument("--start", metavar="TIME", help="RFC 3339 or unix seconds (default end − 1h)")
    slo.add_argument("--end", default="now", metavar="TIME", help="RFC 3339, unix seconds or now")
    slo.add_argument("--step", metavar="S", help="e.g. 15s (default: ~1000 points)")
    slo.add_argument(
        "--timeline",
        metavar="FILE.json",
        help="faults to shade (and game-day experiments): see docs/reports.md",
    )
    slo.add_argument(
        "--sli-window",
        metavar="D",
        help="window of the SLI line (default: each SLO's shortest alert window)",
    )
    slo.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="N",
        help="windows divided by N, as the lab's rules_time_scale (default 1)",
    )
    slo.add_argument("--title", default="SLO report")
    slo.add_argument("--templates", metavar="DIR", help="directory of templates overriding ours")
    slo.add_argument("--timeout", type=float, default=10.0, help="seconds per query (default 10)")
    slo.set_defaults(handler=run_slo)
