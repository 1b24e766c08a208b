"""Pure ASGI middleware that applies the engine's active faults to HTTP requests.

Pure ASGI (not BaseHTTPMiddleware) because ``hang``, ``drop`` and ``malformed``
need the raw ``receive``/``send`` channels. The service's metrics middleware
must sit OUTSIDE this one so it counts what the client got: a ``hang`` ends
with a 499 start message sent after the client left (uvicorn discards it, the
metrics wrapper sees it); a ``drop`` sends nothing at all, so it is not counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import struct
from collections.abc import Callable, MutableMapping

from tokenslo.lab.asgi import ASGIApp, Message, Receive, Scope, Send
from tokenslo.lab.faults.engine import Fault, FaultEngine

log = logging.getLogger("tokenslo.lab.faults")


HANG_STATUS = 499  # nginx's "client closed request"
HANG_POLL_SECONDS = 0.5
DROP_WAIT_SECONDS = 2.0


async def call_observed(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, on_done: Callable[[str], None]
) -> None:
    """Run ``app``, then report the status the client got, as request metrics label it.

    For the metrics middlewares that wrap this one (IdP, gateway, proxy): the
    HTTP status; ``"499"`` when the client left before any response (a ``hang``);
    nothing at all when a ``drop`` fault sent nothing. Reported even if ``app`` raises.
    """
    status: list[int] = []

    async def send_wrapper(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        await send(message)

    try:
        await app(scope, receive, send_wrapper)
    finally:
        state = scope.get("state")
        if not (isinstance(state, MutableMapping) and state.get("tokenslo_fault") == "drop"):
            on_done(str(status[0]) if status else str(HANG_STATUS))


class ConnectionDropped(ConnectionError):
    """Raised when no socket could be found to drop (e.g. in-process ASGI transports)."""


class FaultMiddleware:
    """``app.add_middleware(FaultMiddleware, engine=engine)``."""

    def __init__(self, app: ASGIApp, engine: FaultEngine, sweep_interval: float | None = 1.0):
        self.app = app
        self.engine = engine
        if sweep_interval:
            engine.start_sweeper(sweep_interval)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fault = self.engine.match(scope.get("method", "GET"), scope.get("path", "/"))
        if fault is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["tokenslo_fault"] = fault.effect
        handler = _HANDLERS[fault.effect]
        await handler(self, fault, scope, receive, send)

    async def _status(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        body = json.dumps(
            {"error": "fault_injected", "error_description": f"injected fault {fault.id}"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": fault.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _delay(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(fault.delay_seconds or 0.0)
        await self.app(scope, receive, send)

    async def _hang(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the request until the client leaves or the fault ends, then act accordingly."""
        buffered: list[Message] = []
        disconnected = await _wait_for_disconnect(receive, buffered, self.engine, fault.id)
        if disconnected:
            # The server drops this (client gone); outer metrics record 499.
            await send({"type": "http.response.start", "status": HANG_STATUS, "headers": []})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await self.app(scope, _replay(buffered, receive), send)

    async def _drop(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        if not _abort_connection(scope):
            raise ConnectionDropped(f"injected fault {fault.id}: connection dropped")
        try:
            async with asyncio.timeout(DROP_WAIT_SECONDS):
                while (await receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            log.warning("fault drop: server did not notice the closed connection")

    async def _malformed(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, then send only the first half of the body (Content-Length fixed)."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def truncating_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            cut = body[: len(body) // 2]
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(cut)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": cut, "more_body": False})

        await self.app(scope, receive, truncating_send)


_HANDLERS = {
    "status": FaultMiddleware._status,
    "delay": FaultMiddleware._delay,
    "hang": FaultMiddleware._hang,
    "drop": FaultMiddleware._drop,
    "malformed": FaultMiddleware._malformed,
}


async def _wait_for_disconnect(
    receive: Receive, buffered: list[Message], engine: FaultEngine, fault_id: str
) -> bool:
    """True once the client disconnects; False when the fault is gone first.

    Request body messages read meanwhile are kept in ``buffered`` for replay.
    Bounded by the fault's expiry, which the engine caps at ``max_expiry``.
    """
    pending: asyncio.Task | None = None
    try:
        while engine.is_active(fault_id):
            if pending is None:
                pending = asyncio.ensure_future(receive())
            done, _ = await asyncio.wait({pending}, timeout=HANG_POLL_SECONDS)
            if not done:
                continue
            message = pending.result()
            pending = None
            if message["type"] == "http.disconnect":
                return True
            buffered.append(message)
        return False
    finally:
        if pending is not None and not pending.done():
            pending.cancel()


def _replay(buffered: list[Message], receive: Receive) -> Receive:
    queue = list(buffered)

    async def replay() -> Message:
        # Body chunks read while hanging first, then the live channel.
        return queue.pop(0) if queue else await receive()

    return replay


def _abort_connection(scope: Scope) -> bool:
    """Reset the TCP connection of this request; False when its socket is not ours to find.

    ASGI gives no handle on the transport, so the socket is found by its
    addresses among this process's descriptors (Linux /proc), then shut down
    with SO_LINGER 0 so the client sees a reset rather than a response.
    """
    client, server = scope.get("client"), scope.get("server")
    if not client or not server:
        return False
    want_peer = (client[0], int(client[1]))
    want_local = (server[0], int(server[1]))
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for name in fds:
        fd = int(name)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        with sock:
            try:
                if sock.getpeername()[:2] != want_peer or sock.getsockname()[:2] != want_local:
                    continue
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        return True
    return False
