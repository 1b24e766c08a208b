"""``tokenslo loadtest run``: Locust headless, then the SLO gate.

Order matters for failing fast and closed: bad input (scenario, durations, SLO
files, credentials) exits 2 before anything runs; an unreachable target or
Prometheus, or a target lacking an endpoint the scenario needs (``preflight``),
exits 3 before any load is sent; then the run (which may stop early, see
``earlystop``), the checks of the SLOs in scope and the outputs. Exit codes: 0 all
checks met, 1 an objective breached, 3 insufficient data / no data / unreachable
Prometheus or target, 2 bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from tokenslo.core.durations import parse_duration
from tokenslo.core.model import SLO
from tokenslo.engine.evaluator import evaluate_window
from tokenslo.errors import InputError, UnavailableError
from tokenslo.load import gate, outputs, pacing, preflight
from tokenslo.load.protocol import SCENARIO_NAMES
from tokenslo.load.recorder import Recorder
from tokenslo.load.runner import RunSpec, run_locust
from tokenslo.load.shapes import SHAPES
from tokenslo.load.target import LoadTarget, resolve_target
from tokenslo.prometheus.client import PromClient
from tokenslo.spec.loader import load_paths
from tokenslo.target.discovery import discover
from tokenslo.target.options import add_target_file


def _duration(text: str, field: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError:
        raise InputError(f"not a duration: {text!r} (e.g. 30s, 5m)", field=field) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"must be positive: {text!r}", field=field)
    return value


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """Validate the run's flags (pure): bad input → exit 2 naming the flag."""
    if args.scenario not in SCENARIO_NAMES:
        raise InputError(
            f"unknown scenario {args.scenario!r} (one of {', '.join(SCENARIO_NAMES)})",
            field="--scenario",
        )
    if args.users < 1:
        raise InputError("must be at least 1", field="--users")
    if not math.isfinite(args.spawn_rate) or args.spawn_rate <= 0:
        raise InputError("must be positive", field="--spawn-rate")
    if args.processes is not None and args.processes < 1:
        raise InputError("must be at least 1", field="--processes")
    if args.workers < 0 or (args.workers and args.processes):
        raise InputError("use either --processes or --workers (≥ 1)", field="--workers")
    return RunSpec(
        pacing=pacing_from_args(args),
        scenario=args.scenario,
        users=args.users,
        spawn_rate=args.spawn_rate,
        duration=_duration(args.duration, "--duration"),
        shape=args.shape,
        processes=args.processes,
        workers=args.workers,
    )


def pacing_from_args(args: argparse.Namespace) -> pacing.Pacing | None:
    rate, wait = getattr(args, "rate", None), getattr(args, "wait", None)
    if rate is not None and wait is not None:
        raise InputError("use either --rate or --wait", field="--wait")
    if rate is not None:
        return pacing.from_rate(rate, args.users)
    return pacing.from_wait(wait) if wait is not None else None


def check_prometheus(url: str) -> PromClient:
    client = PromClient(url)
    client.query("vector(1)", time.time())  # unreachable → UnavailableError (exit 3)
    return client


def server_side(slos: list[SLO], url: str, recorder: Recorder, settle: float) -> list[gate.Check]:
    """Burn rate of every judged SLO over the test window, at the test's end (via the engine)."""
    gated = gate.gated(slos)
    if recorder.first_start is None or recorder.last_end is None:
        return gate.unreachable_checks(gated, "no requests were made, so there is no test window")
    window = float(max(1, math.ceil(recorder.last_end - recorder.first_start)))
    at = recorder.last_end
    time.sleep(max(0.0, min(settle, at + settle - time.time())))  # let the last scrape land
    try:
        counts = evaluate_window(gated, PromClient(url), window, at)
    except UnavailableError as exc:
        return gate.unreachable_checks(gated, str(exc))
    return gate.server_checks(gated, counts, window, recorder)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    settle = _duration(args.settle, "--settle") if args.prometheus else 0.0
    slos = load_paths(args.gate) if args.gate else None  # bad SLO files: exit 2 first
    target: LoadTarget = resolve_target(args.target)
    slos = slos if slos is not None else load_paths(list(target.target.slo_paths))
    endpoints = discover(target.target)  # target down → exit 3 before any load
    roles = frozenset(target.target.clients)
    preflight.check(spec.scenario, endpoints, target.api_url, roles)  # missing → exit 3
    if args.prometheus:
        check_prometheus(args.prometheus)
    with tempfile.TemporaryDirectory(prefix="tokenslo-loadtest-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        result = run_locust(spec, target, workdir)
    recorder = result.recorder
    judged, not_gated = gate.in_scope(
        slos, preflight.scope(spec.scenario, target.api_url, recorder, roles)
    )
    checks = gate.client_checks(judged, recorder)
    if args.prometheus and judged:
        checks += server_side(judged, args.prometheus, recorder, settle)
    checks.sort(key=lambda c: (c.service, c.slo, c.side))
    verdict = gate.verdict(checks, not_gated)
    info = outputs.RunInfo(
        scenario=spec.scenario,
        users=spec.users,
        spawn_rate=spec.spawn_rate,
        duration=spec.duration,
        target=target.idp_url,
        started=recorder.first_start,
        ended=recorder.last_end,
        shape=spec.shape,
        processes=spec.processes or spec.workers or None,
        workers=dict(recorder.workers),
        pacing=spec.pacing.env_value() if spec.pacing else None,
        stopped=recorder.stopped,
        not_gated=tuple(not_gated),
    )
    _write(args.junit, outputs.junit(checks, verdict, info))
    _write(args.json, outputs.to_json(checks, verdict, info, recorder))
    _write(args.markdown, outputs.markdown(checks, verdict, info, recorder))
    sys.stdout.write(outputs.table(checks, verdict, info))
    return verdict.exit_code


def _write(path: str | None, text: str) -> None:
    if not path:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}", file=path) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``run`` to the ``loadtest`` group."""
    p = subparsers.add_parser(
        "run",
        help="run a Locust scenario headless and gate on the SLOs",
        description="Run a Locust scenario against the target (default: the running lab) and "
        "judge every SLO whose loadtest.requests the scenario sends (the others are listed as "
        "not gated). Exit 0 all met, 1 an objective breached (or certainly breached by the "
        "failures alone), 3 insufficient data / no data / target or Prometheus unreachable / "
        "the scenario's endpoints missing from the target's metadata, 2 bad input. "
        "Clients and their secrets come from the target file (docs/target.md).",
    )
    p.add_argument("--scenario", required=True, metavar="NAME", help=", ".join(SCENARIO_NAMES))
    p.add_argument("--users", type=int, default=20, metavar="N", help="peak users (default 20)")
    p.add_argument("--spawn-rate", type=float, default=10.0, metavar="R", help="users/s")
    p.add_argument("--duration", default="30s", metavar="D", help="run time, e.g. 30s, 5m")
    p.add_argument("--shape", choices=tuple(SHAPES), help="load shape (peak = --users)")
    p.add_argument(
        "--rate",
        metavar="R",
        help="paced: R task runs/s in total (each user: R/users); default: users never wait",
    )
    p.add_argument(
        "--wait", metavar="MIN-MAX", help="paced: each user waits MIN..MAX s after a task"
    )
    add_target_file(p)
    p.add_argument(
        "--gate", nargs="+", metavar="PATH", help="SLO files/dirs (default: the target's slo_paths)"
    )
    p.add_argument("--prometheus", metavar="URL", help="also gate on burn rates over the run")
    p.add_argument(
        "--settle", default="3s", metavar="D", help="wait after the run before querying (3s)"
    )
    p.add_argument("--processes", type=int, metavar="N", help="Locust --processes N (forked)")
    p.add_argument(
        "--workers", type=int, default=0, metavar="N", help="one master + N worker processes"
    )
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one case per SLO check)")
    p.add_argument("--json", metavar="FILE", help="write the verdict and checks as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write Markdown ($GITHUB_STEP_SUMMARY)")
    p.add_argument("--workdir", metavar="DIR", help="keep Locust's log and raw results here")
    p.set_defaults(handler=run)
