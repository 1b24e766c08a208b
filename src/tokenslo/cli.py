"""The ``tokenslo`` command line.

Each command group (``slo``, ``rules``, ``lab`` …) gets its leaves from the
components' own ``cli`` modules: ``register(subparsers)`` adds parsers whose
``handler`` default is called with the parsed arguments. This file only wires
them together and turns expected failures into one-line messages and the exit
codes the README lists (0 ok, 1 failed, 2 bad input, 3 unavailable).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tokenslo import __version__
from tokenslo.errors import EXIT_USAGE, TokensloError
from tokenslo.signals import interrupts_raise

# group → (help, modules providing register(subparsers) for its subcommands)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "slo": (
        "validate, import and evaluate SLO definitions",
        ("tokenslo.spec.cli", "tokenslo.engine.cli", "tokenslo.reports.policy_cli"),
    ),
    "rules": ("generate Prometheus recording and alert rules", ("tokenslo.rules.cli",)),
    "target": ("describe and check what tokenslo points at", ("tokenslo.target.cli",)),
    "lab": ("the local token infrastructure lab", ("tokenslo.lab.cli",)),
    "loadtest": ("Locust load tests that end in an SLO gate", ("tokenslo.load.cli",)),
    "chaos": ("Chaos Toolkit experiments against token infrastructure", ("tokenslo.chaos.cli",)),
    "dashboards": ("render Grafana dashboards from SLOs", ("tokenslo.dashboards.cli",)),
    "report": ("render SLO and game-day reports", ("tokenslo.reports.cli",)),
}

# command → module whose register(subparsers) adds it directly at the top level
# (commands without subcommands, such as `tokenslo probe`).
TOP_LEVEL: dict[str, str] = {
    "probe": "tokenslo.prober.cli",
    "proxy": "tokenslo.proxy.cli",
    "gameday": "tokenslo.gameday.cli",
    "scan": "tokenslo.scan.cli",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its message to one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or, given ``command`` (a group or top-level command), one whose
    other groups have no subcommands: each command only imports its own modules, so a
    command that refuses bad input does so without first importing aiohttp, Locust's
    helpers or the lab (half the start-up time)."""
    parser = _Parser(
        prog="tokenslo",
        description="SLO monitoring and chaos testing for token infrastructure.",
    )
    parser.add_argument("--version", action="version", version=f"tokenslo {__version__}")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_text, modules) in GROUPS.items():
        group = groups.add_parser(name, help=help_text, description=help_text)
        group.set_defaults(handler=_group_help(group))
        leaves = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
        if command in (None, name):
            for module in modules:
                importlib.import_module(module).register(leaves)
    for name, module in TOP_LEVEL.items():
        if command in (None, name):
            importlib.import_module(module).register(groups)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The group or top-level command ``argv`` starts with, if it names one."""
    first = argv[0] if argv else None
    return first if first in GROUPS or first in TOP_LEVEL else None


def _group_help(group: argparse.ArgumentParser):
    def show(_args: argparse.Namespace) -> int:
        group.print_help(sys.stderr)
        return EXIT_USAGE

    return show


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with interrupts_raise():  # SIGTERM/SIGHUP clean up exactly like Ctrl-C
            return int(handler(args) or 0)
    except TokensloError as exc:
        print(f"tokenslo: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tokenslo: interrupted", file=sys.stderr)
        return 130
