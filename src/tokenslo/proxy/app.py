"""The fault proxy: a streaming reverse proxy with the lab's fault engine in front.

Requests flow (outside in): metrics → ``FaultMiddleware`` → ``Forwarder``
(``forward.py``). Only the proxy's own paths go through Starlette's routing; data
requests take this plain-ASGI path, which is the hot one.
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

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.asgi import Receive, Scope, Send
from tokenslo.lab.exposition import metrics_response
from tokenslo.lab.faults import (
    FaultEngine,
    FaultMiddleware,
    admin_routes,
    call_observed,
    check_admin,
)
from tokenslo.proxy.discovery import OTHER, WELL_KNOWN, PathLabels
from tokenslo.proxy.forward import Forwarder, new_session

log = logging.getLogger("tokenslo.proxy")

SERVICE = "proxy"
FAULT_MAX_EXPIRY = 3600.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0)
COMMON_CODES = ("200", "400", "401", "404", "499", "500", "502", "503", "504")
UPSTREAM_ERRORS = ("connect", "timeout", "protocol")
CONTROL_PATHS = frozenset({"/admin/faults", "/admin/clock", "/-/metrics", "/-/healthz"})
CLOCK_REFUSAL = (
    "the fault proxy cannot shift the upstream's clock; run the target under libfaketime "
    "and use the set_faketime_offset action (docs/proxy-and-faketime.md)"
)


def is_control_path(path: str) -> bool:
    """Paths the proxy answers itself instead of forwarding."""
    return path in CONTROL_PATHS or path.startswith("/admin/faults/")


class ProxyMetrics:
    """What clients of the proxy experienced, faults included (client-side SLIs).

    ``path`` is bounded by ``PathLabels`` (well-known paths, endpoints learned from the
    upstream's discovery documents, else ``other``): callers choose request paths, and
    must not be able to grow the proxy's series.
    """

    def __init__(self, registry: CollectorRegistry, paths: PathLabels | None = None):
        self.paths = paths or PathLabels()
        self.requests = Counter(
            "tokenslo_proxy_requests_total",
            "Requests through the fault proxy by the HTTP status the client got, the endpoint "
            "path and the metadata field that names it (bounded sets; 'other' for any path not "
            "in the discovery documents).",
            ["code", "path", "endpoint"],
            registry=registry,
        )
        self.duration = Histogram(
            "tokenslo_proxy_request_duration_seconds",
            "Latency through the fault proxy (injected delays included), by endpoint path.",
            ["path", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "tokenslo_proxy_upstream_errors_total",
            "Upstream requests that failed before a response (connect, timeout, protocol).",
            ["reason"],
            registry=registry,
        )
        # Label children resolved once: ``labels()`` takes a lock and builds a key each call.
        self._requests: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}
        for reason in UPSTREAM_ERRORS:
            self.upstream_errors.labels(reason=reason)
        self.declare_paths((*WELL_KNOWN, OTHER))

    def declare_paths(self, paths: list[str] | tuple[str, ...]) -> None:
        """Export zeros for the common codes of these paths, so rates exist before errors do."""
        for path in paths:
            for code in COMMON_CODES:
                self._request_child(code, path)
            self._duration_child(path)

    def _request_child(self, code: str, path: str) -> Any:
        child = self._requests.get((code, path))
        if child is None:
            endpoint = self.paths.endpoint(path)
            child = self._requests.setdefault(
                (code, path), self.requests.labels(code=code, path=path, endpoint=endpoint)
            )
        return child

    def _duration_child(self, path: str) -> Any:
        child = self._durations.get(path)
        if child is None:
            endpoint = self.paths.endpoint(path)
            child = self._durations.setdefault(
                path, self.duration.labels(path=path, endpoint=endpoint)
            )
        return child

    def count(self, code: str, path: str, seconds: float) -> None:
        label = self.paths.label(path)
        self._request_child(code, label).inc()
        self._duration_child(label).observe(seconds)

    def learn_paths(self, paths: dict[str, str]) -> None:
        """Endpoint paths seen in a discovery document become ``path`` label values."""
        added = self.paths.learn(paths)
        if added:
            self.declare_paths(added)
            log.info("proxy path labels learned: %s", " ".join(sorted(added)))


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

        def record(code: str) -> None:
            elapsed = time.perf_counter() - start
            self.metrics.count(code, scope["path"], elapsed)
            # Method and path only: headers and query strings may carry credentials.
            log.debug(
                "proxy %s %s -> %s %.1fms", scope["method"], scope["path"], code, elapsed * 1000
            )

        await call_observed(self.app, scope, receive, send, record)


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
        self.forwarder = Forwarder(
            upstream,
            lambda: new_session(timeout, max_connections),
            lambda reason: self.metrics.upstream_errors.labels(reason=reason).inc(),
            self.metrics.learn_paths,
        )
        faulted = FaultMiddleware(self.forwarder, engine=self.engine, sweep_interval=sweep_interval)
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
            return metrics_response(self.registry)

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
                await self.forwarder.learn_paths()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close upstream connections and stop the fault sweeper thread."""
        await self.forwarder.aclose()
        self.engine.stop_sweeper()


def create_proxy_app(upstream: str, admin_secret: str, **kwargs: Any) -> FaultProxy:
    """``FaultProxy(upstream, admin_secret, ...)``; the name mirrors the lab's ``create_app``."""
    return FaultProxy(upstream, admin_secret, **kwargs)
