"""``tokenslo probe``: a black-box exporter of synthetic OAuth 2.0 transactions.

Exit codes: the exporter exits 0 when stopped (SIGTERM/SIGINT or ``--max-runs``);
``--once`` exits 0 if every step succeeded, 1 if a step failed, 3 if the target's
metadata could not be discovered; 2 for bad input (flags, credentials).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from tokenslo.errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, InputError
from tokenslo.prober.config import ProbeConfig, parse_listen, positive
from tokenslo.prober.result import TransactionResult
from tokenslo.prober.runner import Prober, serve_metrics, stop_on_signals
from tokenslo.target.credentials import credentials
from tokenslo.target.loader import load_target
from tokenslo.target.options import add_target_file

log = logging.getLogger("tokenslo.prober")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the top-level ``probe`` command."""
    p = subparsers.add_parser(
        "probe",
        help="black-box prober: synthetic OAuth transactions exported as probe_* metrics",
        description="Every --interval: discover the target (RFC 8414, else OpenID discovery), "
        "issue a client_credentials token, call --api, introspect, revoke, measure revocation "
        "propagation, fetch the JWKS; export probe_* metrics on --listen. The IdP, the API and "
        "the prober client (role prober, its secret included) come from the target file.",
    )
    add_target_file(p)
    p.add_argument(
        "--listen", metavar="HOST:PORT", help="serve /metrics here (e.g. 127.0.0.1:9404)"
    )
    p.add_argument("--interval", type=float, default=15.0, metavar="S", help="seconds (default 15)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="per request (5)")
    p.add_argument(
        "--propagation-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="give up waiting for revocation to propagate after S seconds (10)",
    )
    p.add_argument(
        "--propagation-poll",
        type=float,
        default=0.1,
        metavar="S",
        help="seconds between propagation checks (0.1)",
    )
    p.add_argument("--once", action="store_true", help="one transaction, print it, exit")
    p.add_argument("--format", choices=("table", "json"), default="table", help="for --once")
    p.add_argument("--max-runs", type=int, metavar="N", help="stop after N transactions")
    p.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    p.set_defaults(handler=run_probe)


def config_from_args(args: argparse.Namespace) -> ProbeConfig:
    target = load_target(args.target)
    client = target.client("prober")
    narrow = target.clients.get("narrow_scope")
    return ProbeConfig(
        target=target.discovery_url,
        issuer=target.issuer,
        credentials=credentials(client),
        api=target.api_url,
        interval=positive(args.interval, "--interval"),
        timeout=positive(args.timeout, "--timeout"),
        propagation_timeout=positive(args.propagation_timeout, "--propagation-timeout"),
        propagation_poll=positive(args.propagation_poll, "--propagation-poll"),
        scope=client.token_params.get("scope"),
        resource=client.token_params.get("resource"),
        narrow=credentials(narrow) if narrow is not None else None,
        narrow_params=dict(narrow.token_params) if narrow is not None else {},
        write_api=target.api_write_url,
    )


def run_probe(args: argparse.Namespace) -> int:
    if not args.once and not args.listen:
        raise InputError("--listen HOST:PORT is required unless --once", field="--listen")
    if args.max_runs is not None and args.max_runs < 1:
        raise InputError("must be at least 1", field="--max-runs")
    listen = parse_listen(args.listen) if args.listen else None
    config = config_from_args(args)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    prober = Prober(config)
    if args.once:
        result = prober.run_once()
        print(render_json(result) if args.format == "json" else render_table(result))
        return once_exit_code(result)
    assert listen is not None
    server = serve_metrics(prober.registry, *listen)
    try:
        log.info(
            "serving probe_* metrics on http://%s:%d/metrics; probing %s every %gs",
            listen[0],
            server.server_port,
            config.label,
            config.interval,
        )
        with stop_on_signals() as stop:
            prober.run(stop, args.max_runs)
    finally:
        server.shutdown()
        server.server_close()
    log.info("prober stopped after %d transaction(s)", prober.runs)
    return EXIT_OK


def once_exit_code(result: TransactionResult) -> int:
    if result.unreachable:
        return EXIT_UNAVAILABLE
    return EXIT_OK if result.ok else EXIT_FAILED


def render_table(result: TransactionResult) -> str:
    rows = [("step", "result", "seconds", "detail")]
    for step in result.steps.values():
        seconds = "" if step.duration is None else f"{step.duration:.3f}"
        rows.append((step.step, step.result, seconds, step.detail))
    for stage, waited in result.propagation.items():
        converged = result.propagation_converged.get(stage)
        rows.append((f"propagation:{stage}", "ok" if converged else "timeout", f"{waited:.3f}", ""))
    for source, skew in result.skew.items():
        rows.append((f"skew:{source}", "", f"{skew:+.3f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if result.token_ref:
        lines.append(
            f"token {result.token_ref}: {result.token_size} bytes, ttl {result.token_ttl}s"
        )
    return "\n".join(lines)


def render_json(result: TransactionResult) -> str:
    return json.dumps(
        {
            "target": result.target,
            "ok": result.ok,
            "steps": {
                s.step: {"result": s.result, "seconds": s.duration, "detail": s.detail}
                for s in result.steps.values()
            },
            "propagation_seconds": result.propagation,
            "propagation_converged": result.propagation_converged,
            "clock_skew_seconds": result.skew,
            "token": {
                "sha256_12": result.token_ref,
                "size_bytes": result.token_size,
                "ttl_seconds": result.token_ttl,
                "kid_published": result.kid_published,
            },
        },
        indent=2,
    )
