"""``tokenslo target check FILE``: discovery, endpoints, clients, provider quirks, Prometheus."""

from __future__ import annotations

import argparse
import json

from tokenslo.target import check
from tokenslo.target.loader import load_target


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="check a target description against the real thing",
        description="Discover the IdP (RFC 8414 and OpenID, compared), reach every endpoint, "
        "try every client's credentials, detect token kinds, try introspection and revocation "
        "per client (with a hint when the provider refuses), estimate clock skew from Date, "
        "check fault injection and which SLOs have data in Prometheus. Exit 0 all usable, "
        "1 something fails, 2 bad target file, 3 the IdP or Prometheus unreachable.",
    )
    p.add_argument("file", nargs="?", metavar="FILE", help="target file (default: the lab's)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target = load_target(args.file)
    findings = check.run_checks(target)
    if args.format == "json":
        print(json.dumps({"target": target.source, "findings": check.to_json(findings)}, indent=2))
    else:
        print(render_table(findings))
    return check.exit_code(findings)


def render_table(findings: list[check.Finding]) -> str:
    width = max((len(f.check) for f in findings), default=5)
    lines = [f"{'CHECK':<{width}}  {'STATUS':<11}  DETAIL"]
    for f in findings:
        lines.append(f"{f.check:<{width}}  {f.status:<11}  {f.detail}")
        if f.hint:
            lines.append(f"{'':<{width}}  {'':<11}  hint: {f.hint}")
    return "\n".join(lines)
