"""How every lab service is served: uvicorn's h11 protocol with bounded reads.

uvicorn bounds neither how long a client may take to send a request nor, with
httptools, how large its header may be: a 16 MB header was parsed, and a
slowloris client (a header line every few seconds, or a body that never
arrives) held its connection for as long as it liked. So the lab serves with
h11, a header limit (``MAX_HEADER_BYTES``; larger is answered 400 and closed),
a keep-alive limit, and a request-read deadline: from the moment the server is
ready for a request, the whole request (line, headers, body) must arrive within
``REQUEST_READ_SECONDS`` or the connection is closed. Handling time does not
count: the deadline ends as soon as the request is complete.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
REQUEST_READ_SECONDS = 10.0

log = logging.getLogger("tokenslo.lab.serving")


class _BoundedConnection(h11.Connection):
    """h11 bounds a header only while it is incomplete; one large read arrives complete."""

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request):
            size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
            if size > MAX_HEADER_BYTES:
                raise h11.RemoteProtocolError("request header too large", error_status_hint=431)
        return event


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header limit and a deadline for reading each request."""

    request_read_seconds = REQUEST_READ_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _BoundedConnection(h11.SERVER, MAX_HEADER_BYTES)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the request is complete (or the connection is over)

    def on_response_complete(self) -> None:
        self._arm()  # before super(): it may read a pipelined request and complete it
        super().on_response_complete()

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


def bounded_protocol(request_read_seconds: float) -> type[BoundedH11Protocol]:
    """The protocol class with another read deadline (tests use short ones)."""
    return type(
        "BoundedH11Protocol",
        (BoundedH11Protocol,),
        {"request_read_seconds": request_read_seconds},
    )


def server_options(request_read_seconds: float = REQUEST_READ_SECONDS) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` shared by every lab service."""
    return {
        "http": bounded_protocol(request_read_seconds),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


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
