"""How every lab service is served: uvicorn's httptools protocol with bounded reads.

uvicorn bounds neither how long a client may take to send a request nor, with
httptools, how large its header may be: a 16 MB header was parsed, and a
slowloris client (a header line every few seconds, or a body that never
arrives) held its connection for as long as it liked. So every lab service
runs with a header limit (``MAX_HEADER_BYTES``; larger is answered 400 and
closed), a keep-alive limit, and a request-read deadline: from the moment the
server is ready for a request, the whole request (line, headers, body) must
arrive within ``REQUEST_READ_SECONDS`` or the connection is closed. Handling
time does not count: the deadline ends as soon as the request is complete.
httptools (the C parser uvicorn picks by default) is kept for its speed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from starlette.requests import Request
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tokenslo.lab.admin_secret import ADMIN_SECRET_ENV

MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
REQUEST_READ_SECONDS = 10.0

log = logging.getLogger("tokenslo.lab.serving")


class HeaderTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into a parser error (400)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a header limit and a deadline per request."""

    request_read_seconds = REQUEST_READ_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        self._disarm()  # the whole request is in: handling time is not ours to bound
        super().on_message_complete()

    def on_response_complete(self) -> None:
        self._arm()  # before super(): it may start a pipelined request
        super().on_response_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADER_BYTES:
            raise HeaderTooLarge

    def _arm(self) -> None:
        self._disarm()
        self._read_deadline = self.loop.call_later(self.request_read_seconds, self._too_slow)

    def _disarm(self) -> None:
        deadline = getattr(self, "_read_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._read_deadline = None

    def _too_slow(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            log.info(
                "connection closed: request not received within %gs", self.request_read_seconds
            )
            self.transport.close()


def bounded_protocol(request_read_seconds: float) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with another read deadline (tests use short ones)."""
    return type(
        "BoundedHttpToolsProtocol",
        (BoundedHttpToolsProtocol,),
        {"request_read_seconds": request_read_seconds},
    )


def server_options(request_read_seconds: float = REQUEST_READ_SECONDS) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` shared by every lab service.

    ``proxy_headers`` off: uvicorn would otherwise take the client address from
    ``X-Forwarded-For`` of any caller on 127.0.0.1, and the gateway's replay detection and
    the services' logs must see the address the connection really came from."""
    return {
        "http": bounded_protocol(request_read_seconds),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "proxy_headers": False,
    }


def service_parser(
    prog: str, config_help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """The command line every config-driven lab service (IdP, gateway) takes, so ``lab up``
    starts them all the same way: ``--config``, ``--log-level``, ``--admin-secret-file``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help=config_help)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    parser.add_argument(
        "--admin-secret-file", metavar="FILE", help=f"admin secret (else ${ADMIN_SECRET_ENV})"
    )
    return parser


def log_to_stderr(level: str) -> None:
    """One timestamped line per event on stderr, where ``lab up`` collects each service's log."""
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


class BodyTooLarge(Exception):
    """The request body is (declared or turned out) larger than the endpoint accepts."""


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused (``BodyTooLarge``) as soon as it is known to exceed ``limit``.

    ``request.body()`` buffers everything first; this stops at the declared
    Content-Length or, for chunked bodies, at the first chunk past the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
