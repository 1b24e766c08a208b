"""The fault proxy: a streaming reverse proxy with the lab's fault engine in front.

Requests flow (outside in): metrics → ``FaultMiddleware`` → ``Forwarder``.
The fault engine, its admin API and its metrics are the lab's own
(``tokenslo.lab.faults``), so an experiment that injects faults into the lab
IdP injects them the same way into a real IdP placed behind this proxy.

The proxy answers a few paths itself and forwards everything else:
``/admin/faults[/{id}]`` and ``/admin/clock`` (admin secret required),
``/-/metrics`` and ``/-/healthz``. Other ``/admin/*`` paths (e.g. the lab IdP's
key rotation) are forwarded untouched, and are never faulted.

A proxy cannot move the upstream's clock, so ``POST /admin/clock`` is refused
with a pointer to libfaketime (``tokenslo.chaos.faketime``) instead of being
accepted and silently doing nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.faults import FaultEngine, FaultMiddleware, admin_routes, check_admin
from tokenslo.proxy.headers import body_framing, request_headers, response_headers

log = logging.getLogger("tokenslo.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVICE = "proxy"
FAULT_MAX_EXPIRY = 3600.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0)
COMMON_CODES = ("200", "400", "401", "404", "499", "500", "502", "503", "504")
UPSTREAM_ERRORS = ("connect", "timeout", "protocol")
CLIENT_CLOSED = "499"
CONTROL_PATHS = frozenset({"/admin/faults", "/admin/clock", "/-/metrics", "/-/healthz"})
CLOCK_REFUSAL = (
    "the fault proxy cannot shift the upstream's clock; run the target under libfaketime "
    "and use the set_faketime_offset action (docs/proxy-and-faketime.md)"
)


def is_control_path(path: str) -> bool:
    """Paths the proxy answers itself instead of forwarding."""
    return path in CONTROL_PATHS or path.startswith("/admin/faults/")


class ProxyMetrics:
    """What clients of the proxy experienced, faults included (client-side SLIs)."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "tokenslo_proxy_requests_total",
            "Requests through the fault proxy by the HTTP status the client got.",
            ["code"],
            registry=registry,
        )
        self.duration = Histogram(
            "tokenslo_proxy_request_duration_seconds",
            "Latency through the fault proxy (injected delays included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "tokenslo_proxy_upstream_errors_total",
            "Upstream requests that failed before a response (connect, timeout, protocol).",
            ["reason"],
            registry=registry,
        )
        for code in COMMON_CODES:
            self.requests.labels(code=code)
        for reason in UPSTREAM_ERRORS:
            self.upstream_errors.labels(reason=reason)


class MetricsMiddleware:
    """Pure ASGI, OUTSIDE the fault middleware: counts the status the client got.

    No response at all means the client left first (a ``hang``) → 499; a ``drop``
    sent nothing and is not counted, as in the lab services.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: ProxyMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if scope.get("state", {}).get("tokenslo_fault") != "drop":
                code = str(status[0]) if status else CLIENT_CLOSED
                elapsed = time.perf_counter() - start
                self.metrics.requests.labels(code=code).inc()
                self.metrics.duration.observe(elapsed)
                # Method and path only: headers and query strings may carry credentials.
                log.debug(
                    "proxy %s %s -> %s %.1fms", scope["method"], scope["path"], code, elapsed * 1000
                )


class Forwarder:
    """Pure ASGI app that streams one request to the upstream and the response back."""

    def __init__(self, upstream: str, client: httpx.AsyncClient, metrics: ProxyMetrics):
        self.upstream = httpx.URL(upstream.rstrip("/"))
        self.client = client
        self.metrics = metrics

    def target(self, scope: Scope) -> httpx.URL:
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        base_path = self.upstream.raw_path.rstrip(b"/")
        return self.upstream.copy_with(
            raw_path=base_path + raw_path + (b"?" + query if query else b"")
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client_ip = scope["client"][0] if scope.get("client") else None
        headers = request_headers(scope["headers"], client_ip=client_ip, scheme=scope["scheme"])
        framing = body_framing(scope["headers"])
        request = self.client.build_request(
            scope["method"],
            self.target(scope),
            headers=headers,
            content=_request_body(receive) if framing != "none" else None,
        )
        try:
            upstream = await self.client.send(request, stream=True)
        except httpx.TimeoutException:
            await self._error(send, scope, 504, "timeout", "upstream timed out")
            return
        except httpx.ConnectError:
            await self._error(send, scope, 502, "connect", "upstream unreachable")
            return
        except httpx.HTTPError as exc:
            await self._error(
                send, scope, 502, "protocol", f"upstream error ({type(exc).__name__})"
            )
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": response_headers(upstream.headers.raw),
                }
            )
            # aiter_raw: bytes exactly as sent (no decompression), so Content-Length holds.
            async for chunk in upstream.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            # The status line is gone already: all we can do is cut the connection.
            self.metrics.upstream_errors.labels(reason="protocol").inc()
            log.warning(
                "proxy upstream failed mid-response path=%s error=%s",
                scope["path"],
                type(exc).__name__,
            )
            raise
        finally:
            await upstream.aclose()

    async def _error(self, send: Send, scope: Scope, status: int, reason: str, text: str) -> None:
        self.metrics.upstream_errors.labels(reason=reason).inc()
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


async def _request_body(receive: Receive):
    """Stream the client's body upstream chunk by chunk (never buffered whole)."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # client disconnected mid-body; httpx sees a short body and fails
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class FaultProxy:
    """The ASGI application served by ``tokenslo proxy`` (and by tests under uvicorn)."""

    def __init__(
        self,
        upstream: str,
        admin_secret: str,
        *,
        timeout: float = 30.0,
        max_connections: int = 200,
        registry: CollectorRegistry | None = None,
        engine: FaultEngine | None = None,
        sweep_interval: float = 1.0,
    ):
        if not admin_secret:
            raise ValueError("admin_secret is required")
        self.upstream = upstream
        self.registry = registry if registry is not None else CollectorRegistry()
        self.engine = engine or FaultEngine(
            service=SERVICE, registry=self.registry, max_expiry=FAULT_MAX_EXPIRY
        )
        self.metrics = ProxyMetrics(self.registry)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,  # redirects are the client's business
            trust_env=False,  # never route through an HTTP(S)_PROXY from the environment
        )
        forwarder = Forwarder(upstream, self.client, self.metrics)
        faulted = FaultMiddleware(forwarder, engine=self.engine, sweep_interval=sweep_interval)
        self.data = MetricsMiddleware(faulted, self.metrics)
        self.control = Starlette(routes=self._control_routes(admin_secret))

    def _control_routes(self, admin_secret: str) -> list[Route]:
        async def clock(request: Request) -> Response:
            if (denied := check_admin(request, admin_secret)) is not None:
                return denied
            if request.method == "GET":
                return JSONResponse({"clock": None, "now": time.time()})
            if request.method == "DELETE":
                return JSONResponse({"cleared": False})
            return JSONResponse(
                {"error": "invalid_request", "error_description": CLOCK_REFUSAL}, status_code=422
            )

        async def metrics(_request: Request) -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        async def healthz(_request: Request) -> Response:
            return JSONResponse({"status": "ok", "upstream": self.upstream})

        faults = [r for r in admin_routes(self.engine, admin_secret) if r.path != "/admin/clock"]
        return [
            *faults,
            Route("/admin/clock", clock, methods=["GET", "POST", "DELETE"]),
            Route("/-/metrics", metrics, methods=["GET"]),
            Route("/-/healthz", healthz, methods=["GET"]),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1003})  # not proxied
        elif is_control_path(scope["path"]):
            await self.control(scope, receive, send)
        else:
            await self.data(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close upstream connections and stop the fault sweeper thread."""
        await self.client.aclose()
        self.engine.stop_sweeper()


def create_proxy_app(upstream: str, admin_secret: str, **kwargs: Any) -> FaultProxy:
    """``FaultProxy(upstream, admin_secret, ...)``; the name mirrors the lab's ``create_app``."""
    return FaultProxy(upstream, admin_secret, **kwargs)
