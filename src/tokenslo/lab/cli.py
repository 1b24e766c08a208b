"""``tokenslo lab up|down|status``: the local token infrastructure lab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenslo.errors import EXIT_OK, EXIT_UNAVAILABLE
from tokenslo.lab.config import load_lab_config
from tokenslo.lab.orchestrator import lab_down, lab_status, lab_up
from tokenslo.lab.state import LabState
from tokenslo.lab.target_file import TARGET_FILE

DEFAULT_STATE_DIR = Path(".tokenslo/lab")


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser(
        "up", help="start the lab (IdP, gateway, webhook receiver, Alertmanager, Prometheus)"
    )
    up.add_argument("--config", type=Path, help="lab config YAML (overrides the defaults)")
    _state_dir_arg(up)
    up.add_argument(
        "--rules-time-scale",
        type=_positive_float,
        metavar="N",
        help="compress SLO alert windows N times (overrides rules_time_scale)",
    )
    up.set_defaults(handler=cmd_up)

    down = subparsers.add_parser("down", help="stop the lab's recorded processes")
    _state_dir_arg(down)
    down.set_defaults(handler=cmd_down)

    status = subparsers.add_parser("status", help="health of the lab's components")
    _state_dir_arg(status)
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(handler=cmd_status)


def _state_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the lab keeps state, secrets and logs (default {DEFAULT_STATE_DIR}/)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def cmd_up(args: argparse.Namespace) -> int:
    config = load_lab_config(args.config)
    if args.rules_time_scale is not None:
        from dataclasses import replace

        config = replace(config, rules_time_scale=args.rules_time_scale)
    state = lab_up(config, args.state_dir)
    print(render_up(state))
    return EXIT_OK


def render_up(state: LabState) -> str:
    head = "lab already running" if state.already_running else "lab is up"
    lines = [f"{head} (state: {state.state_dir})"]
    for name, component in state.components.items():
        lines.append(f"  {name:<13} {component.url:<26} pid {component.pid}")
    lines.append(
        f"  admin secret  {state.admin_secret_file} (mode 0600; sent as X-Tokenslo-Admin-Secret)"
    )
    lines.append(f"  credentials   {state.credentials_file} (mode 0600)")
    lines.append(f"  alerts        {state.notifications_file}")
    lines.append(f"  target        {state.state_dir / TARGET_FILE} (for --target FILE)")
    lines.extend(f"  note: {note}" for note in state.notes)
    return "\n".join(lines)


def cmd_down(args: argparse.Namespace) -> int:
    stopped = lab_down(args.state_dir)
    print(f"stopped: {', '.join(stopped)}" if stopped else "lab is not running")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    statuses = lab_status(args.state_dir)
    if args.format == "json":
        doc = {
            "running": bool(statuses) and all(s.healthy for s in statuses),
            "components": [
                {"name": s.name, "state": s.state, "pid": s.pid, "url": s.url} for s in statuses
            ],
        }
        print(json.dumps(doc, indent=2))
    elif not statuses:
        print(f"lab is not running (no state in {args.state_dir})", file=sys.stderr)
    else:
        print(f"{'COMPONENT':<13} {'STATE':<10} {'PID':<8} URL")
        for s in statuses:
            print(f"{s.name:<13} {s.state:<10} {s.pid:<8} {s.url}")
    if not statuses or not all(s.healthy for s in statuses):
        return EXIT_UNAVAILABLE
    return EXIT_OK
