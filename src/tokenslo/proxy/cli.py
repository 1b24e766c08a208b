"""``tokenslo proxy``: put the fault engine in front of a real IdP (or any HTTP service).

The admin secret comes from ``TOKENSLO_ADMIN_SECRET`` or ``--admin-secret-file``,
never from a flag (flags show up in ``ps``). Exits 0 on SIGTERM/SIGINT, 2 on bad
input, 3 when the listen address is taken.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from tokenslo.errors import InputError, UnavailableError
from tokenslo.lab.admin_secret import ADMIN_SECRET_ENV, read_admin_secret
from tokenslo.loopback import is_loopback

UVICORN_OPTIONS: dict[str, Any] = {  # keyword arguments of uvicorn.run and uvicorn.Config
    # C parser and loop: the proxy's own HTTP work is most of its CPU per request
    # (benchmarks/bench_proxy.py); both are dependencies, so never a silent fallback.
    "http": "httptools",
    "loop": "uvloop",
    # uvicorn would otherwise believe X-Forwarded-For from loopback clients and rewrite
    # scope["client"]: the chain sent upstream would lose the real peer, and a ``drop``
    # fault could not find the client's socket by its address.
    "proxy_headers": False,
    "access_log": False,  # uvicorn's access log prints query strings (tokens may be there)
    "lifespan": "on",  # closes the upstream pool and stops the fault sweeper
}
log = logging.getLogger("tokenslo.proxy")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the top-level ``proxy`` command."""
    p = subparsers.add_parser(
        "proxy",
        help="HTTP reverse proxy with the lab's fault engine, for real IdPs",
        description="Forward every request to --upstream, applying faults injected through "
        "/admin/faults (the same admin API and fault engine as the lab). Clients and gateways "
        "point at the proxy; experiments point their fault actions at it. Discovery documents "
        "and Location headers are rewritten to the proxy's origin (issuer kept), so clients "
        "that discover through the proxy stay behind it. Admin secret: env "
        f"{ADMIN_SECRET_ENV} or --admin-secret-file.",
    )
    p.add_argument("--upstream", required=True, metavar="URL", help="e.g. https://idp.example")
    p.add_argument(
        "--listen", default="127.0.0.1:9480", metavar="HOST:PORT", help="(127.0.0.1:9480)"
    )
    p.add_argument("--admin-secret-file", metavar="FILE", help="file holding the admin secret")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="upstream timeout (30)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow listening on a non-loopback address (the admin API is then reachable "
        "from the network, protected only by the secret)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.set_defaults(handler=run)


def parse_listen(value: str, allow_remote: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"expected HOST:PORT with a port 1-65535, got {value!r}", field="--listen")
    host = host.strip("[]") or "127.0.0.1"
    if not allow_remote and not is_loopback(host):
        raise InputError(
            f"{host} is not a loopback address; pass --allow-remote to listen on it",
            field="--listen",
        )
    return host, int(port_text)


def check_upstream(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"must be an http(s) URL, got {value!r}", field="--upstream")
    if parts.query or parts.fragment:
        raise InputError("must not have a query or fragment", field="--upstream")
    return value


def _check_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UnavailableError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tokenslo.proxy.app import FaultProxy

    upstream = check_upstream(args.upstream)
    host, port = parse_listen(args.listen, args.allow_remote)
    if not args.timeout > 0:
        raise InputError(f"must be > 0, got {args.timeout}", field="--timeout")
    secret = read_admin_secret(args.admin_secret_file)
    _check_free(host, port)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # HTTP client libraries may log full URLs or headers at INFO/DEBUG: query strings and
    # headers may carry tokens, so these loggers stay at WARNING.
    for noisy in ("aiohttp", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = FaultProxy(upstream, secret, timeout=args.timeout)
    log.info("proxy listening on %s:%d upstream=%s", host, port, upstream)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the
    # previous handler: make that a clean exit. It ignores SIGHUP, so SIGHUP becomes SIGTERM.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    signal.signal(signal.SIGHUP, as_sigterm)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            workers=1,
            log_level="warning" if args.log_level != "debug" else "info",
            timeout_graceful_shutdown=5,
            **UVICORN_OPTIONS,
        )
    except SystemExit:
        pass
    finally:
        log.info("proxy stopped")
    return 0


def as_sigterm(_signum: int, _frame: FrameType | None) -> None:
    """Deliver SIGTERM instead, to whoever handles it now (uvicorn while it serves)."""
    signal.raise_signal(signal.SIGTERM)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
