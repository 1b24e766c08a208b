"""Forwarding one request to the upstream over a keep-alive pool (aiohttp's client).

Why aiohttp and not httpx: profiling put half of the proxy's ~0.8 ms of CPU per
request in the httpx/httpcore/anyio stack; aiohttp's client parses responses in
C and reuses connections with far less Python per request
(``benchmarks/bench_proxy.py`` has the numbers).

The client is a transport, not a browser: no cookie jar (a cookie set for one
client must never be replayed for another), no redirects, no decompression, no
environment proxies, no default ``User-Agent``/``Accept`` headers invented on the
client's behalf.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from yarl import URL

from tokenslo.lab.asgi import Receive, Scope, Send
from tokenslo.proxy.discovery import (
    MAX_DOCUMENT_BYTES,
    WELL_KNOWN,
    Upstream,
    discovery_name,
    proxy_origin,
    rewrite_body,
    rewrite_location,
)
from tokenslo.proxy.headers import body_framing, request_headers, response_headers

log = logging.getLogger("tokenslo.proxy")


# Headers aiohttp would add when the client did not send them; a proxy adds none.
NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
MAX_HEADER_BYTES = 65536  # as large as uvicorn accepts from the client side
KEEPALIVE_SECONDS = 15.0
# Dropped from a rewritten discovery document's response: they described the upstream's bytes.
STALE_AFTER_REWRITE = frozenset({b"content-length", b"content-encoding", b"etag", b"content-md5"})


class ClientGone(Exception):
    """The client disconnected while its request body was being streamed upstream."""


def new_session(timeout: float, max_connections: int) -> aiohttp.ClientSession:
    """The upstream pool; must be created inside the running event loop."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_SECONDS,
        ttl_dns_cache=10,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, 5.0), connect=timeout, sock_read=timeout
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,  # bytes exactly as sent, so Content-Length holds
        trust_env=False,  # never route through an HTTP(S)_PROXY from the environment
        skip_auto_headers=NO_AUTO_HEADERS,
        max_line_size=MAX_HEADER_BYTES,
        max_field_size=MAX_HEADER_BYTES,
    )


def target_url(base: URL, scope: Scope) -> URL:
    """Upstream URL: base path prefix + the client's raw path and query, never re-quoted."""
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = scope.get("query_string", b"").decode("latin-1")
    prefix = base.raw_path.rstrip("/")
    return URL(
        f"{base.scheme}://{base.raw_authority}{prefix}{raw_path}" + (f"?{query}" if query else ""),
        encoded=True,
    )


class Forwarder:
    """Pure ASGI app that streams one request to the upstream and the response back.

    ``session_factory`` is called once, lazily, on the first request (the pool
    belongs to the server's event loop, which does not exist at construction).
    """

    def __init__(
        self,
        upstream: str,
        session_factory: Callable[[], aiohttp.ClientSession],
        on_upstream_error: Callable[[str], None],
        on_discovered: Callable[[dict[str, str]], None] = lambda _paths: None,
    ):
        self.base = URL(upstream.rstrip("/"), encoded=True)
        self.upstream = Upstream.parse(upstream)
        self._factory = session_factory
        self._on_error = on_upstream_error
        self._on_discovered = on_discovered
        self.session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def ensure_session(self) -> aiohttp.ClientSession:
        if self.session is None:
            self.session = self._factory()
        return self.session

    async def learn_paths(self, timeout: float = 3.0) -> None:
        """Fetch the upstream's discovery documents once (best effort), so the endpoint
        paths have their own metrics label before any client discovers through the proxy."""
        session = self.ensure_session()
        for name in WELL_KNOWN:
            url = URL(f"{self.base}{name}", encoded=True)
            try:
                async with asyncio.timeout(timeout):
                    async with session.get(url, headers={"Accept-Encoding": "identity"}) as got:
                        if got.status != 200:
                            continue
                        body, whole = await read_capped(got.content, MAX_DOCUMENT_BYTES)
                        encoding = got.headers.get("Content-Encoding", "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("proxy could not read %s upstream: %s", name, type(exc).__name__)
                continue
            # Only the paths matter here, so any origin does.
            rewritten = rewrite_body(body, encoding, self.upstream, "http://proxy")
            if whole and rewritten is not None:
                self._on_discovered(rewritten[1])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.session is None:
            self.session = self._factory()
        client = scope.get("client")
        headers = [
            (n.decode("latin-1"), v.decode("latin-1"))
            for n, v in request_headers(
                scope["headers"], client_ip=client[0] if client else None, scheme=scope["scheme"]
            )
        ]
        # Discovery documents are rewritten, so they are asked for uncompressed.
        document = scope["method"] == "GET" and discovery_name(scope["path"]) is not None
        if document:
            headers = [(n, v) for n, v in headers if n != "accept-encoding"]
            headers.append(("accept-encoding", "identity"))
        gone: list[bool] = []
        body = None
        if body_framing(scope["headers"]) != "none":
            body = _request_body(receive, gone)
        try:
            upstream = await self.session.request(
                scope["method"],
                target_url(self.base, scope),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
            )
        except aiohttp.ClientError as exc:
            if gone:
                return  # nobody to answer; the metrics middleware records 499
            await self._fail(send, scope, *_classify(exc))
            return
        except TimeoutError:
            await self._fail(send, scope, 504, "timeout", "upstream timed out")
            return
        await self._relay(upstream, scope, send, document)

    async def _relay(
        self, upstream: aiohttp.ClientResponse, scope: Scope, send: Send, document: bool
    ) -> None:
        try:
            headers = response_headers(upstream.raw_headers)
            status = upstream.status
            if status == 201 or 300 <= status < 400:
                headers = rewrite_location(headers, self.upstream, proxy_origin(scope))
            if document and status == 200:
                await self._relay_document(upstream, scope, send, headers)
                return
            await send({"type": "http.response.start", "status": status, "headers": headers})
            content = upstream.content
            async for chunk in content.iter_any():
                # A body that arrived whole (the usual small JSON) ends with its only chunk,
                # which saves the server a send of an empty final message.
                done = content.at_eof()
                await send({"type": "http.response.body", "body": chunk, "more_body": not done})
                if done:
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The status line is gone already: all we can do is cut the connection.
            self._on_error("protocol")
            upstream.close()
            log.warning(
                "proxy upstream failed mid-response path=%s error=%s",
                scope["path"],
                type(exc).__name__,
            )
            raise
        finally:
            upstream.release()

    async def _relay_document(
        self, upstream: aiohttp.ClientResponse, scope: Scope, send: Send, headers: list
    ) -> None:
        """A discovery document: read whole (up to MAX_DOCUMENT_BYTES), upstream URLs moved
        to the proxy, Content-Length recomputed. Anything else is relayed unchanged."""
        content = upstream.content
        try:
            body, whole = await read_capped(content, MAX_DOCUMENT_BYTES)
        except (aiohttp.ClientError, TimeoutError):
            # Nothing sent yet, so the client can still get a proper answer.
            upstream.close()
            await self._fail(send, scope, 502, "protocol", "upstream failed mid-response")
            return
        rewritten = None
        if whole:
            encoding = next((v for n, v in headers if n == b"content-encoding"), b"")
            origin = proxy_origin(scope)
            rewritten = rewrite_body(body, encoding.decode("latin-1"), self.upstream, origin)
        if rewritten is None:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": True})
            async for chunk in content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body, moved = rewritten
        self._on_discovered(moved)
        kept = [(n, v) for n, v in headers if n not in STALE_AFTER_REWRITE]
        kept.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": kept})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _fail(self, send: Send, scope: Scope, status: int, reason: str, text: str) -> None:
        self._on_error(reason)
        # Path only: query strings may carry tokens (RFC 6750 §2.3).
        log.warning("proxy %s %s -> %d (%s)", scope["method"], scope["path"], status, text)
        body = json.dumps({"error": "bad_gateway", "error_description": text}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def read_capped(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to a little over ``limit`` bytes of ``content``; True when that was all of it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
    return b"".join(chunks), True


def _classify(exc: aiohttp.ClientError) -> tuple[int, str, str]:
    """(status, metric reason, message) for an upstream failure before any response."""
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return 504, "timeout", "upstream timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return 502, "connect", "upstream unreachable"
    return 502, "protocol", f"upstream error ({type(exc).__name__})"


async def _request_body(receive: Receive, gone: list[bool]) -> AsyncIterator[bytes]:
    """Stream the client's body upstream chunk by chunk (never buffered whole).

    A client that disconnects mid-body aborts the upstream request (``ClientGone``)
    instead of leaving the upstream waiting for bytes that will never come.
    """
    while True:
        message = await receive()
        if message["type"] != "http.request":
            gone.append(True)
            raise ClientGone("client disconnected mid-body")
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
